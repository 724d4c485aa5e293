"""The token endpoint (RFC 6749 §3.2, §4.3, §4.4, §5, §6) issuing RFC 9068 access tokens.

Grants: ``client_credentials`` (confidential clients only, ``sub`` = client id, no refresh token),
``password`` (only where the stage enables it, for confidential clients registered for it,
behind the login guard),
``authorization_code`` with PKCE (RFC 7636 §4.6; codes from ``chalicelib.web.authorize``) and
``refresh_token`` (delegated to ``chalicelib.oauth.refresh_tokens``). Every failure is an
``OAuthError``;
a token is returned only after every write it depends on has committed.

Every token issued to a user belongs to a grant (a family, carried as ``sid``), with or without a
refresh token: it is what a re-used code, the user on the connected-apps page and an admin
disabling or deleting the user revoke. The grant is written in one transaction with a check that
the user may still receive it (``users.receive_check``: not disabled or deleted, same epoch as the
sign-in or code), so that check and the issue cannot be told apart in time.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Protocol

from chalicelib.core import audit
from chalicelib.core.clock import Clock
from chalicelib.core.config import Settings
from chalicelib.core.errors import (
    InvalidGrant,
    InvalidRequest,
    MethodNotAllowed,
    UnauthorizedClient,
    UnsupportedGrantType,
)
from chalicelib.core.forms import OAuthRequest
from chalicelib.core.ports import (
    Codes,
    GrantRefused,
    IssuedRefresh,
    RotatedRefresh,
    Users,
    new_family_id,
)
from chalicelib.core.records import Client, CodeAlreadyUsed, CodeGrant, Family, may_receive
from chalicelib.core.scopes import parse_scope, resolve_scope
from chalicelib.oauth import pkce
from chalicelib.oauth.client_auth import ClientLookup, authenticate_client
from chalicelib.oauth.login import BAD_CREDENTIALS, LoginGuard, authenticate
from chalicelib.tokens import access_tokens
from chalicelib.tokens.keys import KeySetError, SigningKeyRing

if TYPE_CHECKING:  # oidc and the key objects (PyJWT, cryptography) load only where they are used
    from chalicelib.oauth.oidc import IdTokens, SignIn
    from chalicelib.tokens.key_objects import SigningKey

log = logging.getLogger("tessera.token")

CODE_INVALID = "the authorization code is invalid or expired"


@contextmanager
def _unusable_key_is_a_fault() -> Iterator[None]:
    """A signing key the secret holds but that cannot be loaded or cannot sign (bad numbers,
    wrong length) is a deployment fault like an unreadable set: 503 + Retry-After, never a 500
    traceback."""
    try:
        yield
    except (ValueError, TypeError) as exc:  # key_objects.InvalidKey is a ValueError
        raise KeySetError("the current signing key is unusable") from exc


class RefreshGrants(Protocol):
    """Refresh-token families (implemented by ``chalicelib.oauth.refresh_tokens``)."""

    def start(
        self,
        *,
        client: Client,
        subject: str,
        username: str,
        scope: str,
        now: int,
        epoch: int = 0,
        family_id: str | None = None,
        access_only_until: int | None = None,
        auth_time: int = 0,
    ) -> IssuedRefresh:
        """A new grant for a user, if the user may receive it (else ``GrantRefused``). With
        ``access_only_until`` it has no refresh token and ends then (its access token's end)."""
        ...

    def family(self, family_id: str) -> Family | None: ...

    def rotate(
        self, *, client: Client, token: str, requested_scope: frozenset[str] | None, now: int
    ) -> RotatedRefresh: ...

    def revoke_family(
        self, family_id: str, reason: str, now: int, *, preempt: bool = False
    ) -> None:
        """With ``preempt``, a grant not written yet is refused when its writer gets there."""
        ...


class TokenEndpoint:
    def __init__(
        self,
        *,
        settings: Settings,
        clock: Clock,
        clients: ClientLookup,
        users: Users,
        keys: SigningKeyRing,
        refresh: RefreshGrants | None = None,
        guard: LoginGuard | None = None,
        codes: Codes | None = None,
        id_tokens: IdTokens | None = None,
    ) -> None:
        self._s = settings
        self._clock = clock
        self._clients = clients
        self._users = users
        self._keys = keys
        self._refresh = refresh
        self._guard = guard
        self._codes = codes
        self._id_tokens = id_tokens

    def handle(self, request: OAuthRequest) -> dict[str, object]:
        if request.method != "POST":
            raise MethodNotAllowed(
                "the token endpoint accepts POST only", headers={"Allow": "POST"}
            )
        form = request.form()
        grant_type = form.get("grant_type")
        if grant_type is None:
            raise InvalidRequest("grant_type is required")
        client = authenticate_client(request, form, self._clients, self._s.realm)
        if (
            grant_type not in self._s.grant_types
            or (grant_type == "refresh_token" and self._refresh is None)
            or (grant_type == "authorization_code" and self._codes is None)
        ):
            raise UnsupportedGrantType("the grant type is not supported")
        if not client.allows(grant_type):
            raise UnauthorizedClient("the client is not registered for this grant type")
        now = int(self._clock.now())
        # The signing key, once per request and before any grant writes: a key-store fault after
        # a committed refresh-token write would answer 503 with the old token already rotated
        # away. The access token and the ID token of this answer are signed with this one key.
        with _unusable_key_is_a_fault():
            signer = self._keys.current()
        if grant_type == "client_credentials":
            return self._client_credentials(client, form, now, signer)
        if grant_type == "password":
            return self._password(client, form, request.source_ip, now, signer)
        if grant_type == "authorization_code":
            return self._authorization_code(client, form, now, signer)
        return self._refresh_token(client, form, now, signer)

    # -- grants ----------------------------------------------------------------------------

    def _client_credentials(
        self, client: Client, form: dict[str, str], now: int, signer: SigningKey
    ) -> dict[str, object]:
        if client.public:
            raise UnauthorizedClient("client_credentials requires a confidential client")
        scope = resolve_scope(client, form.get("scope"))
        return self._respond(signer, client, subject=client.client_id, scope=scope, now=now)

    def _password(
        self,
        client: Client,
        form: dict[str, str],
        source_ip: str | None,
        now: int,
        signer: SigningKey,
    ) -> dict[str, object]:
        if client.public:
            raise UnauthorizedClient("the password grant requires a confidential client")
        raw_username, password = form.get("username"), form.get("password")
        if raw_username is None or password is None:
            raise InvalidRequest("username and password are required")
        scope = resolve_scope(client, form.get("scope"))
        user = authenticate(
            self._users,
            self._guard,
            raw_username=raw_username,
            password=password,
            client_id=client.client_id,
            source_ip=source_ip,
            now=now,
        )
        grant = self._grant(
            client,
            subject=user.user_id,
            username=user.username,
            epoch=user.epoch,
            scope=scope,
            now=now,
            refused=BAD_CREDENTIALS,
        )
        subject = self._subject(client, user.user_id)
        return self._respond(signer, client, subject=subject, scope=scope, now=now, refresh=grant)

    def _authorization_code(
        self, client: Client, form: dict[str, str], now: int, signer: SigningKey
    ) -> dict[str, object]:
        """RFC 6749 §4.1.3 with RFC 7636 §4.6: every mismatch is ``invalid_grant``."""
        assert self._codes is not None
        code = form.get("code")
        if code is None:
            raise InvalidRequest("code is required")
        verifier = form.get("code_verifier")
        if verifier is not None and not pkce.valid_verifier(verifier):
            raise InvalidGrant("code_verifier must be 43-128 unreserved characters")
        # The grant id is fixed before the code is burnt and recorded in the same write, so a
        # second redemption always knows what to revoke, even before the grant is written.
        family_id = new_family_id()
        try:
            grant = self._codes.redeem(code, now, family_id)
        except CodeAlreadyUsed as used:
            # §4.1.2: a code used twice may be stolen; revoke what its first use issued.
            if used.family_id and self._refresh is not None:
                self._refresh.revoke_family(used.family_id, "code_reuse", now, preempt=True)
                audit.event("code_reuse", family=used.family_id, client_id=client.client_id)
            raise InvalidGrant(CODE_INVALID) from None
        if grant is None or grant.client_id != client.client_id:
            raise InvalidGrant(CODE_INVALID)
        # The same redirect_uri as the authorization request; it may be left out only by a
        # client with a single registered URI (which the request then defaulted to).
        sent_uri = form.get("redirect_uri")
        if sent_uri is None and client.redirect_uris != (grant.redirect_uri,):
            raise InvalidGrant("redirect_uri does not match the authorization request")
        if sent_uri is not None and sent_uri != grant.redirect_uri:
            raise InvalidGrant("redirect_uri does not match the authorization request")
        if grant.code_challenge:
            if verifier is None or not pkce.verify(verifier, grant.code_challenge):
                raise InvalidGrant("PKCE verification failed")
        elif verifier is not None or client.public:
            raise InvalidGrant("PKCE verification failed")
        # The user's record and sub are read before the grant is written: the grant's own
        # check of the user then covers what the ID token says.
        sign_in = self._sign_in(grant, family_id)
        subject = self._subject(client, grant.user_id)
        issued = self._grant(
            client,
            subject=grant.user_id,
            username=grant.username,
            epoch=grant.user_epoch,
            scope=grant.scope,
            now=now,
            family_id=family_id,
            refused=CODE_INVALID,
            auth_time=grant.auth_time,
        )
        return self._respond(
            signer,
            client,
            subject=subject,
            scope=grant.scope,
            now=now,
            refresh=issued,
            sign_in=sign_in,
        )

    def _refresh_token(
        self, client: Client, form: dict[str, str], now: int, signer: SigningKey
    ) -> dict[str, object]:
        assert self._refresh is not None
        token = form.get("refresh_token")
        if token is None:
            raise InvalidRequest("refresh_token is required")
        raw_scope = form.get("scope")
        requested = parse_scope(raw_scope) if raw_scope is not None else None
        rotated = self._refresh.rotate(
            client=client, token=token, requested_scope=requested, now=now
        )
        # After the rotation committed: a fault reading the grant's sign-in below answers 503,
        # and the client's retry (inside the retry window) gets the same successor back.
        sign_in = self._refreshed_sign_in(rotated)
        return self._respond(
            signer,
            client,
            subject=self._subject(client, rotated.subject),
            scope=rotated.scope,
            now=now,
            refresh=IssuedRefresh(rotated.token, rotated.family_id),
            sign_in=sign_in,
        )

    # -- OpenID Connect (chalicelib.oauth.oidc)
    # ------------------------------------------------------

    def _subject(self, client: Client, user_id: str) -> str:
        """The ``sub`` this client sees for a user: the user id, or its pairwise value."""
        return self._id_tokens.subject(client, user_id) if self._id_tokens else user_id

    def _sign_in(self, grant: CodeGrant, family_id: str) -> SignIn | None:
        """The sign-in an ID token describes, if the code's scope asks for one (§3.1.3.3)."""
        from chalicelib.oauth.oidc import SignIn, wants_id_token

        if self._id_tokens is None or not wants_id_token(grant.scope):
            return None
        user = self._users.get(grant.username)
        if user is None or user.user_id != grant.user_id:
            raise InvalidGrant(CODE_INVALID)
        return SignIn(user, family_id, grant.auth_time, grant.nonce or None, grant.scope)

    def _refreshed_sign_in(self, rotated: RotatedRefresh) -> SignIn | None:
        """§12.2: the same sign-in again (its ``auth_time`` and ``sid``), without ``nonce``."""
        from chalicelib.oauth.oidc import SignIn, wants_id_token

        if self._id_tokens is None or not wants_id_token(rotated.scope):
            return None
        assert self._refresh is not None
        family = self._refresh.family(rotated.family_id)
        user = self._users.get(family.username) if family is not None else None
        if family is None or not may_receive(user, family.user_id, family.user_epoch):
            raise InvalidGrant("the refresh token is invalid, expired or revoked")
        if not family.auth_time:  # not begun by an OpenID sign-in (a password grant)
            return None
        assert user is not None
        return SignIn(user, family.family_id, family.auth_time, None, rotated.scope)

    def _grant(
        self,
        client: Client,
        *,
        subject: str,
        username: str,
        epoch: int,
        scope: str,
        now: int,
        refused: str,
        family_id: str | None = None,
        auth_time: int = 0,
    ) -> IssuedRefresh | None:
        """The grant a user's tokens belong to (a refresh family if the client may refresh),
        written only if the user may still receive it; else ``invalid_grant``."""
        if self._refresh is None:
            return None
        # Without refresh token, the grant lasts as long as its one access token can be used.
        access_only_until = (
            None
            if client.allows("refresh_token")
            else now + self._s.access_token_ttl + self._s.clock_leeway
        )
        try:
            return self._refresh.start(
                client=client,
                subject=subject,
                username=username,
                scope=scope,
                now=now,
                epoch=epoch,
                family_id=family_id,
                access_only_until=access_only_until,
                auth_time=auth_time,
            )
        except GrantRefused:
            log.info("grant refused", extra={"client_id": client.client_id})
            raise InvalidGrant(refused) from None

    # -- response ----------------------------------------------------------------------------

    def _respond(
        self,
        signer: SigningKey,
        client: Client,
        *,
        subject: str,
        scope: str,
        now: int,
        refresh: IssuedRefresh | None = None,
        sign_in: SignIn | None = None,
    ) -> dict[str, object]:
        with _unusable_key_is_a_fault():
            token, claims = access_tokens.issue(
                signer,
                issuer=self._s.issuer,
                audience=self._s.audience,
                subject=subject,
                client_id=client.client_id,
                scope=scope,
                now=now,
                lifetime=self._s.access_token_ttl,
                family_id=refresh.family_id if refresh else None,
            )
            id_token = None
            if sign_in is not None and self._id_tokens is not None:
                id_token = self._id_tokens.issue(signer, client, sign_in, token, now)
        body: dict[str, object] = {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": self._s.access_token_ttl,
            "scope": scope,
        }
        if refresh is not None and refresh.token is not None:
            body["refresh_token"] = refresh.token
        if id_token is not None:
            body["id_token"] = id_token
        audit.event(
            "token_issued",
            jti=claims["jti"],
            client_id=client.client_id,
            sub=subject,
            family=claims.get("sid"),
            scope=scope,
        )
        return body
