"""Token revocation endpoint ``POST /oauth2/revoke`` (RFC 7009).

- The client authenticates as at the token endpoint (§2.1); a public client identifies itself
  with ``client_id`` and may revoke its own tokens.
- ``token_type_hint`` is optional and only a hint (§2.1): our two kinds of token have disjoint
  formats, so the token is always found whatever the hint says. A hint we do not know is ignored;
  ``unsupported_token_type`` (§2.2.1) is never needed because both kinds can be revoked.
- A refresh token revokes its whole family (§2.1: "SHOULD also invalidate ... the same
  authorization grant"): every refresh token of the grant, and every access token carrying its
  ``sid``, as far as this server sees them (introspection; the authorizer when it checks).
- An access token (a JWT we issued, still valid) has its ``jti`` put on the deny-list until it
  expires. Only that token: its refresh family lives on.
- Unknown, malformed or expired tokens: 200 (§2.2). A token issued to ANOTHER client is never
  revoked, and the answer is the same 200: an error would tell a client holding someone else's
  token that it is valid (the README explains).
- Storage faults propagate as ``BackendUnavailable``: 503 with ``Retry-After``, and the client
  retries, since nothing says the token is dead.
"""

from __future__ import annotations

import logging
from typing import Protocol

from chalicelib.core import audit
from chalicelib.core.clock import Clock
from chalicelib.core.config import Settings
from chalicelib.core.errors import InvalidRequest, MethodNotAllowed
from chalicelib.core.forms import OAuthRequest
from chalicelib.oauth.client_auth import ClientLookup, authenticate_client
from chalicelib.oauth.refresh_tokens import RefreshTokens, looks_like_refresh_token
from chalicelib.tokens import access_tokens
from chalicelib.tokens.key_objects import Verifiers

log = logging.getLogger("tessera.revocation")


class DenyList(Protocol):
    def deny_jti(self, jti: str, exp: int, client_id: str, now: int) -> None: ...


class RevocationEndpoint:
    def __init__(
        self,
        *,
        settings: Settings,
        clock: Clock,
        clients: ClientLookup,
        refresh: RefreshTokens,
        deny_list: DenyList,
        keys: Verifiers,
    ) -> None:
        self._s = settings
        self._clock = clock
        self._clients = clients
        self._refresh = refresh
        self._deny = deny_list
        self._keys = keys

    def handle(self, request: OAuthRequest) -> None:
        """Revoke what the form names, if the caller may; returns nothing (200, empty body)."""
        if request.method != "POST":
            raise MethodNotAllowed(
                "the revocation endpoint accepts POST only", headers={"Allow": "POST"}
            )
        form = request.form()
        client = authenticate_client(request, form, self._clients, self._s.realm)
        token = form.get("token")
        if token is None:
            raise InvalidRequest("token is required")
        now = int(self._clock.now())
        if looks_like_refresh_token(token):
            self._revoke_refresh(client.client_id, token, now)
        else:
            self._revoke_access(client.client_id, token, now)

    def _revoke_refresh(self, client_id: str, token: str, now: int) -> None:
        rec = self._refresh.find(token)
        if rec is None:
            return
        if rec.client_id != client_id:
            log.warning(
                "revocation of another client's token ignored", extra={"family": rec.family_id}
            )
            return
        self._refresh.revoke(rec, "revoked", now)

    def _revoke_access(self, client_id: str, token: str, now: int) -> None:
        try:
            claims = access_tokens.validate_for(token, self._keys.verifier, self._s, now)
        except access_tokens.InvalidToken:
            return  # invalid or expired: nothing to do (RFC 7009 §2.2)
        if claims.client_id != client_id:
            log.warning("revocation of another client's token ignored", extra={"jti": claims.jti})
            return
        # Denied until the token could no longer pass validation anyway (exp + leeway).
        self._deny.deny_jti(claims.jti, claims.exp + self._s.clock_leeway, client_id, now)
        log.info("access token revoked", extra={"jti": claims.jti})
        audit.event("access_token_revoked", jti=claims.jti, client_id=client_id)
