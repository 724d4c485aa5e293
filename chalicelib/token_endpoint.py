"""The token endpoint (RFC 6749 §3.2, §4.3, §4.4, §5, §6) issuing RFC 9068 access tokens.

Grants: ``client_credentials`` (confidential clients only, ``sub`` = client id, no refresh token),
``password`` (only for confidential clients registered for it, behind the login guard), and
``refresh_token`` (delegated to ``chalicelib.refresh_tokens``). Every failure is an ``OAuthError``;
a token is returned only after every write it depends on has committed.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any, Protocol

from chalicelib import access_tokens, jose, passwords
from chalicelib.client_auth import ClientLookup, authenticate_client
from chalicelib.clients import Client
from chalicelib.clock import Clock
from chalicelib.config import Settings
from chalicelib.errors import (
    InvalidGrant,
    InvalidRequest,
    InvalidScope,
    MethodNotAllowed,
    UnauthorizedClient,
    UnsupportedGrantType,
)
from chalicelib.forms import OAuthRequest
from chalicelib.keys import KeySetError, SigningKeyRing
from chalicelib.users import InvalidUsername, User, UserStore, normalize_username

log = logging.getLogger("tessera.token")

# RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ), separated by single spaces.
_SCOPE_TOKEN = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]+$")
BAD_CREDENTIALS = "invalid username or password"


@dataclass(frozen=True, slots=True)
class IssuedRefresh:
    token: str
    family_id: str


@dataclass(frozen=True, slots=True)
class RotatedRefresh:
    token: str
    family_id: str
    subject: str
    scope: str  # the scope of the new access token (possibly narrowed)


class RefreshGrants(Protocol):
    """Refresh-token families (implemented by ``chalicelib.refresh_tokens``)."""

    def start(
        self, *, client: Client, subject: str, username: str, scope: str, now: int
    ) -> IssuedRefresh: ...

    def rotate(
        self, *, client: Client, token: str, requested_scope: frozenset[str] | None, now: int
    ) -> RotatedRefresh: ...


class LoginGuard(Protocol):
    """Brute-force protection for password logins (RFC 6749 §4.3.2)."""

    def check(self, username: str, client_id: str, source_ip: str | None, now: int) -> None:
        """Raise ``InvalidGrant`` (same text as bad credentials) while locked."""

    def failed(self, username: str, client_id: str, source_ip: str | None, now: int) -> None: ...

    def succeeded(self, username: str, client_id: str, source_ip: str | None, now: int) -> None: ...


def parse_scope(raw: str) -> frozenset[str]:
    tokens = raw.split(" ")
    if any(not _SCOPE_TOKEN.match(t) for t in tokens):
        raise InvalidScope("the scope parameter is malformed")
    return frozenset(tokens)


def resolve_scope(client: Client, requested: str | None) -> str:
    """The granted scope: the request, which must be within the client's registration; if the
    request names none, every scope the client is registered for (the Cognito behaviour)."""
    if requested is None:
        return " ".join(sorted(client.scopes))
    wanted = parse_scope(requested)
    if not wanted <= set(client.scopes):
        raise InvalidScope("the requested scope exceeds what the client is registered for")
    return " ".join(sorted(wanted))


class TokenEndpoint:
    GRANTS = ("client_credentials", "password", "refresh_token")

    def __init__(
        self,
        *,
        settings: Settings,
        clock: Clock,
        clients: ClientLookup,
        users: UserStore,
        keys: SigningKeyRing,
        refresh: RefreshGrants | None = None,
        guard: LoginGuard | None = None,
    ) -> None:
        self._s = settings
        self._clock = clock
        self._clients = clients
        self._users = users
        self._keys = keys
        self._refresh = refresh
        self._guard = guard

    def handle(self, request: OAuthRequest) -> dict[str, Any]:
        if request.method != "POST":
            raise MethodNotAllowed(
                "the token endpoint accepts POST only", headers={"Allow": "POST"}
            )
        form = request.form()
        grant_type = form.get("grant_type")
        if grant_type is None:
            raise InvalidRequest("grant_type is required")
        client = authenticate_client(request, form, self._clients, self._s.realm)
        if grant_type not in self.GRANTS or (
            grant_type == "refresh_token" and self._refresh is None
        ):
            raise UnsupportedGrantType("the grant type is not supported")
        if not client.allows(grant_type):
            raise UnauthorizedClient("the client is not registered for this grant type")
        now = int(self._clock.now())
        # Load the signing key before any grant writes: a key-store fault after a committed
        # refresh-token write would answer 503 with the old token already rotated away.
        try:
            self._keys.current()
        except (jose.JoseError, ValueError, TypeError) as exc:
            raise KeySetError("the current signing key is unusable") from exc
        if grant_type == "client_credentials":
            return self._client_credentials(client, form, now)
        if grant_type == "password":
            return self._password(client, form, request.source_ip, now)
        return self._refresh_token(client, form, now)

    # -- grants ----------------------------------------------------------------------------

    def _client_credentials(self, client: Client, form: dict[str, str], now: int) -> dict[str, Any]:
        if client.public:
            raise UnauthorizedClient("client_credentials requires a confidential client")
        scope = resolve_scope(client, form.get("scope"))
        return self._respond(client, subject=client.client_id, scope=scope, now=now)

    def _password(
        self, client: Client, form: dict[str, str], source_ip: str | None, now: int
    ) -> dict[str, Any]:
        if client.public:
            raise UnauthorizedClient("the password grant requires a confidential client")
        raw_username, password = form.get("username"), form.get("password")
        if raw_username is None or password is None:
            raise InvalidRequest("username and password are required")
        scope = resolve_scope(client, form.get("scope"))
        try:
            username = normalize_username(raw_username)
        except InvalidUsername:
            username = ""
        if self._guard is not None:
            self._guard.check(username, client.client_id, source_ip, now)
        user: User | None = self._users.get(username) if username else None
        # Always run the KDF: unknown users cost the same time as a wrong password.
        ok = passwords.verify_password(password, user.password_hash if user else None)
        if not ok or user is None or user.disabled:
            if self._guard is not None:
                self._guard.failed(username, client.client_id, source_ip, now)
            raise InvalidGrant(BAD_CREDENTIALS)
        if self._guard is not None:
            self._guard.succeeded(username, client.client_id, source_ip, now)
        if passwords.needs_rehash(user.password_hash):
            self._users.set_password_hash(user.username, passwords.hash_password(password))
        refresh = None
        if self._refresh is not None and client.allows("refresh_token"):
            refresh = self._refresh.start(
                client=client, subject=user.user_id, username=user.username, scope=scope, now=now
            )
        return self._respond(client, subject=user.user_id, scope=scope, now=now, refresh=refresh)

    def _refresh_token(self, client: Client, form: dict[str, str], now: int) -> dict[str, Any]:
        assert self._refresh is not None
        token = form.get("refresh_token")
        if token is None:
            raise InvalidRequest("refresh_token is required")
        raw_scope = form.get("scope")
        requested = parse_scope(raw_scope) if raw_scope is not None else None
        rotated = self._refresh.rotate(
            client=client, token=token, requested_scope=requested, now=now
        )
        return self._respond(
            client,
            subject=rotated.subject,
            scope=rotated.scope,
            now=now,
            refresh=IssuedRefresh(rotated.token, rotated.family_id),
        )

    # -- response ----------------------------------------------------------------------------

    def _respond(
        self,
        client: Client,
        *,
        subject: str,
        scope: str,
        now: int,
        refresh: IssuedRefresh | None = None,
    ) -> dict[str, Any]:
        try:
            token, claims = access_tokens.issue(
                self._keys.current(),
                issuer=self._s.issuer,
                audience=self._s.audience,
                subject=subject,
                client_id=client.client_id,
                scope=scope,
                now=now,
                lifetime=self._s.access_token_ttl,
                family_id=refresh.family_id if refresh else None,
            )
        except (jose.JoseError, ValueError, TypeError) as exc:
            # A key the secret holds but that cannot sign (bad numbers, wrong length) is a
            # deployment fault like an unreadable set: 503 + Retry-After, never a 500 traceback.
            raise KeySetError("the current signing key is unusable") from exc
        body: dict[str, Any] = {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": self._s.access_token_ttl,
            "scope": scope,
        }
        if refresh is not None:
            body["refresh_token"] = refresh.token
        log.info(
            "token issued",
            extra={
                "jti": claims["jti"],
                "client_id": client.client_id,
                "family": claims.get("sid"),
            },
        )
        return body
