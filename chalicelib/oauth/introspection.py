"""Token introspection endpoint ``POST /oauth2/introspect`` (RFC 7662).

- The caller must authenticate as a confidential client (§2.1); bad or missing credentials, or a
  public client, get 401 ``invalid_client``.
- Visibility (§2.1, §4): a client registered with ``--introspect`` (a resource server) may
  introspect any token; any other confidential client only tokens issued to it.
- An active answer (§2.2) carries ``active``, ``scope``, ``client_id``, ``sub``, ``exp``, ``iat``,
  ``iss``, ``token_type``; access tokens add ``aud`` and ``jti`` (``token_type`` ``Bearer``),
  refresh tokens say ``refresh_token`` and describe their family (scope of the grant, the user,
  ``exp`` = when this token stops working: idle or absolute, whichever comes first).
- Everything else — malformed, unknown, expired, revoked (deny-listed ``jti``, revoked family),
  rotated, or not visible to the caller — is exactly ``{"active": false}``, so the answer never
  tells a caller more than "not for you".
- Access tokens go through ``access_tokens.validate``, the authorizer's validator, then the
  deny-list and family check (``GrantStore.is_revoked``). A storage fault is never an active
  answer: it propagates and the caller gets 503.
- ``token_type_hint`` is accepted and ignored: the two token formats are disjoint.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalicelib.core.clock import Clock
from chalicelib.core.config import Settings
from chalicelib.core.errors import InvalidClient, InvalidRequest, MethodNotAllowed
from chalicelib.core.forms import OAuthRequest
from chalicelib.core.records import ACTIVE, Client
from chalicelib.oauth.client_auth import ClientLookup, authenticate_client
from chalicelib.oauth.refresh_tokens import RefreshTokens, looks_like_refresh_token
from chalicelib.tokens import access_tokens
from chalicelib.tokens.key_objects import Verifiers

if TYPE_CHECKING:
    from chalicelib.oauth.oidc import Subjects

INACTIVE: dict[str, object] = {"active": False}


class IntrospectionEndpoint:
    def __init__(
        self,
        *,
        settings: Settings,
        clock: Clock,
        clients: ClientLookup,
        refresh: RefreshTokens,
        revocations: access_tokens.RevocationCheck,
        keys: Verifiers,
        subjects: Subjects | None = None,
    ) -> None:
        self._s = settings
        self._subjects = subjects  # a pairwise client's refresh tokens name its own sub
        self._clock = clock
        self._clients = clients
        self._refresh = refresh
        self._revocations = revocations
        self._keys = keys

    def handle(self, request: OAuthRequest) -> dict[str, object]:
        if request.method != "POST":
            raise MethodNotAllowed(
                "the introspection endpoint accepts POST only", headers={"Allow": "POST"}
            )
        form = request.form()
        caller = authenticate_client(request, form, self._clients, self._s.realm)
        if caller.public:
            raise InvalidClient("introspection requires a confidential client")
        token = form.get("token")
        if token is None:
            raise InvalidRequest("token is required")
        now = int(self._clock.now())
        if looks_like_refresh_token(token):
            return self._refresh_token(caller, token, now)
        return self._access_token(caller, token, now)

    @staticmethod
    def _visible(caller: Client, client_id: str) -> bool:
        return caller.introspect or caller.client_id == client_id

    def _access_token(self, caller: Client, token: str, now: int) -> dict[str, object]:
        try:
            claims = access_tokens.validate_for(token, self._keys.verifier, self._s, now)
        except access_tokens.InvalidToken:
            return dict(INACTIVE)
        if now >= claims.exp:  # the validator's leeway is for clock skew, not for us
            return dict(INACTIVE)
        if not self._visible(caller, claims.client_id):
            return dict(INACTIVE)
        if self._revocations.is_revoked(claims.jti, claims.sid):
            return dict(INACTIVE)
        return {
            "active": True,
            "scope": claims.scope,
            "client_id": claims.client_id,
            "sub": claims.sub,
            "exp": claims.exp,
            "iat": claims.iat,
            "iss": claims.iss,
            "aud": claims.aud,
            "jti": claims.jti,
            "token_type": "Bearer",
        }

    def _refresh_token(self, caller: Client, token: str, now: int) -> dict[str, object]:
        rec = self._refresh.find(token)
        if rec is None or rec.state != ACTIVE or not self._visible(caller, rec.client_id):
            return dict(INACTIVE)
        exp = min(rec.expires, rec.idle_expires)
        if now >= exp:
            return dict(INACTIVE)
        family = self._refresh.family(rec.family_id)
        if family is None or family.revoked:
            return dict(INACTIVE)
        sub = family.user_id
        client = self._clients.get(family.client_id) if self._subjects is not None else None
        if client is not None and self._subjects is not None:
            sub = self._subjects.of(client, family.user_id)  # as its access tokens say
        return {
            "active": True,
            "scope": family.scope,
            "client_id": family.client_id,
            "sub": sub,
            "exp": exp,
            "iat": rec.created,
            "iss": self._s.issuer,
            "token_type": "refresh_token",
        }
