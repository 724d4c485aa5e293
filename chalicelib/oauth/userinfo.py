"""The UserInfo endpoint ``GET|POST /oauth2/userinfo`` (OpenID Connect Core 1.0 §5.3).

- The access token comes as ``Authorization: Bearer`` (RFC 6750 §2.1) or, on a POST, as the
  form field ``access_token`` (§2.2); never in the query string, and only one way per request.
- It is validated exactly like the authorizer does (``access_tokens.validate``: ``typ`` at+jwt,
  so an ID token is refused), then against revocation: a revoked token or grant, or a user
  disabled or deleted since, is ``invalid_token``. The grant (``sid``) names the user.
- Answers (RFC 6750 §3): no credentials -> 401 with ``WWW-Authenticate: Bearer realm=...`` and no
  error code; a bad, expired or revoked token -> 401 ``invalid_token``; a token without the
  ``openid`` scope -> 403 ``insufficient_scope``; a malformed request -> 400 ``invalid_request``.
- The claims are those of the ID token (chalicelib.oauth.oidc): ``sub`` as this client sees it, and
  what the token's scopes release.
- CORS: any origin may read the answers. Only a bearer token opens this endpoint, never a cookie,
  so a page can learn nothing it does not already hold the token for.
"""

from __future__ import annotations

from typing import Protocol

from chalicelib.core.clock import Clock
from chalicelib.core.config import Settings
from chalicelib.core.errors import InvalidRequest, MethodNotAllowed, OAuthError
from chalicelib.core.forms import FORM, OAuthRequest, media_type, parse_form
from chalicelib.core.ports import Users
from chalicelib.core.records import Family, may_receive
from chalicelib.oauth.bearer import bearer_token
from chalicelib.oauth.client_auth import ClientLookup
from chalicelib.oauth.oidc import OPENID, Subjects, scope_claims
from chalicelib.tokens import access_tokens
from chalicelib.tokens.key_objects import Verifiers

CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, POST",
    "Access-Control-Allow-Headers": "Authorization, Content-Type",
    "Access-Control-Max-Age": "600",
    "Access-Control-Expose-Headers": "WWW-Authenticate",  # so a page can read why it failed
}


class Grants(Protocol):
    def is_revoked(self, jti: str, sid: str | None) -> bool: ...

    def get_family(self, family_id: str) -> Family | None: ...


def _challenge(realm: str, error: str | None = None, description: str | None = None) -> str:
    parts = [f'Bearer realm="{realm}"']
    if error:
        parts.append(f'error="{error}"')
    if description:
        parts.append(f'error_description="{description}"')
    return ", ".join(parts)


class NoCredentials(OAuthError):
    """RFC 6750 §3.1: a request without a token gets the challenge and no error code."""

    status = 401

    def body(self) -> dict[str, str]:
        return {}


class InvalidToken(OAuthError):
    error = "invalid_token"
    status = 401


class InsufficientScope(OAuthError):
    error = "insufficient_scope"
    status = 403


class UserinfoEndpoint:
    def __init__(
        self,
        *,
        settings: Settings,
        clock: Clock,
        keys: Verifiers,
        grants: Grants,
        users: Users,
        clients: ClientLookup,
        subjects: Subjects,
    ) -> None:
        self._s = settings
        self._clock = clock
        self._keys = keys
        self._grants = grants
        self._users = users
        self._clients = clients
        self._subjects = subjects

    def handle(self, request: OAuthRequest) -> dict[str, object]:
        if request.method not in ("GET", "POST"):
            raise MethodNotAllowed(
                "the userinfo endpoint accepts GET and POST", headers={"Allow": "GET, POST"}
            )
        token = self._token(request)
        now = int(self._clock.now())
        try:
            claims = access_tokens.validate_for(token, self._keys.verifier, self._s, now)
        except access_tokens.InvalidToken:
            raise self._invalid("the access token is invalid or expired") from None
        if now >= claims.exp:  # the validator's leeway is for clock skew, not for us
            raise self._invalid("the access token is invalid or expired")
        if claims.sid is None or self._grants.is_revoked(claims.jti, claims.sid):
            raise self._invalid("the access token is revoked or not a user's")
        if OPENID not in claims.scopes:
            raise InsufficientScope(
                "the access token lacks the openid scope",
                headers={
                    "WWW-Authenticate": _challenge(self._s.realm, "insufficient_scope")
                    + f', scope="{OPENID}"'
                },
            )
        family = self._grants.get_family(claims.sid)
        user = self._users.get(family.username) if family is not None else None
        client = self._clients.get(claims.client_id)
        if (
            family is None
            or client is None
            or family.client_id != claims.client_id
            or not may_receive(user, family.user_id, family.user_epoch)
        ):
            raise self._invalid("the access token is revoked or not a user's")
        assert user is not None
        return {"sub": self._subjects.of(client, user.user_id), **scope_claims(user, claims.scopes)}

    def _token(self, request: OAuthRequest) -> str:
        """The one bearer token of the request (RFC 6750 §2: exactly one method)."""
        if "access_token" in request.query:
            raise self._malformed("the access token must not be sent in the query string")
        authorization = request.headers.get("authorization")
        in_body = None
        if request.method == "POST" and media_type(request.headers.get("content-type")) == FORM:
            in_body = parse_form(request.headers.get("content-type"), request.body).get(
                "access_token"
            )
        if authorization is not None and in_body is not None:
            raise self._malformed("send the access token one way only")
        if in_body is not None:
            return in_body
        if authorization is None or authorization.split(" ", 1)[0].lower() != "bearer":
            raise NoCredentials(
                "no access token", headers={"WWW-Authenticate": _challenge(self._s.realm)}
            )
        token = bearer_token(authorization)
        if token is None:
            raise self._malformed("the Authorization header is malformed")
        return token

    def _invalid(self, description: str) -> InvalidToken:
        return InvalidToken(
            description,
            headers={"WWW-Authenticate": _challenge(self._s.realm, "invalid_token", description)},
        )

    def _malformed(self, description: str) -> InvalidRequest:
        return InvalidRequest(
            description,
            headers={"WWW-Authenticate": _challenge(self._s.realm, "invalid_request", description)},
        )
