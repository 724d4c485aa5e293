"""API Gateway TOKEN authorizer for Tessera's access tokens (RFC 6750 §2.1, RFC 9068 §4).

Turns the ``Authorization`` header that API Gateway hands over into one of three outcomes, which
is all a TOKEN authorizer can express:

* an IAM policy that allows every protected route the token's scopes permit
  (``chalicelib.routes_scopes``), with flat string context (``sub``, ``client_id``, ``scope``,
  ``jti``). A route outside the policy is answered 403 by API Gateway (ACCESS_DENIED, RFC 6750
  ``insufficient_scope``). A token that permits no route gets an explicit Deny;
* an exception whose message is exactly ``Unauthorized``: API Gateway answers 401 (UNAUTHORIZED,
  RFC 6750 ``invalid_token``). Missing, malformed, invalid, expired and revoked tokens end here;
* ``AuthorizerUnavailable`` for anything unexpected (key store down past the stale bound, the
  revocation read failing, a bug): API Gateway answers 500 (AUTHORIZER_CONFIGURATION_ERROR /
  AUTHORIZER_FAILURE, which infra/gateway-responses.yaml turns into 503 + Retry-After). It never
  allows, is not cached by API Gateway, and carries no detail.

Validation is ``access_tokens.validate`` (shared with introspection). No boto3 here: keys and the
revocation check come in as objects (``chalicelib.services``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from chalicelib import access_tokens, routes_scopes, telemetry
from chalicelib.clock import Clock
from chalicelib.key_objects import VerifyingKey

log = logging.getLogger("tessera.authorizer")

UNAUTHORIZED = "Unauthorized"  # the exact Lambda error message API Gateway maps to 401
_MAX_HEADER = access_tokens.MAX_TOKEN_LENGTH + 64
# RFC 6750 §2.1: credentials = "Bearer" 1*SP b64token; the scheme is case-insensitive (RFC 9110
# §11.1). Exactly one token: anything after it (a second token, a comma) does not match.
_BEARER = re.compile(r"(?i:bearer) +([A-Za-z0-9\-._~+/]+=*)")


class Unauthorized(Exception):
    """No usable access token: API Gateway answers 401."""

    def __init__(self) -> None:
        super().__init__(UNAUTHORIZED)


class AuthorizerUnavailable(Exception):
    """The authorizer cannot decide (a fault): API Gateway answers 500/503, never allows."""

    def __init__(self) -> None:
        super().__init__("authorizer unavailable")


def bearer_token(header: object) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` value, or None."""
    if not isinstance(header, str) or len(header) > _MAX_HEADER:
        return None
    found = _BEARER.fullmatch(header.strip(" \t"))
    return found.group(1) if found else None


@lru_cache(maxsize=512)
def api_arn_prefix(method_arn: str) -> str:
    """``arn:aws:execute-api:<region>:<account>:<api-id>/<stage>`` of a method ARN."""
    parts = method_arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn" or parts[2] != "execute-api":
        raise ValueError("not an execute-api ARN")
    api_id, _, rest = parts[5].partition("/")
    stage = rest.partition("/")[0]
    if not api_id or not stage:
        raise ValueError("method ARN without API id or stage")
    return ":".join(parts[:5]) + ":" + api_id + "/" + stage


def policy_for(claims: access_tokens.AccessTokenClaims, method_arn: str) -> dict[str, Any]:
    """The authorizer answer for a valid token: every route its scopes permit, on this API/stage.

    API Gateway caches this per token and evaluates it for the token's later calls to any route,
    so it must not be narrowed to the route of the current call.
    """
    effect, resources = _statement(api_arn_prefix(method_arn), claims.scope)
    statement = {"Action": "execute-api:Invoke", "Effect": effect, "Resource": list(resources)}
    return {
        "principalId": claims.sub,
        "policyDocument": {"Version": "2012-10-17", "Statement": [statement]},
        # API Gateway turns context values into strings and rejects nested ones: flat strings only.
        "context": {
            "sub": claims.sub,
            "client_id": claims.client_id,
            "scope": claims.scope,
            "jti": claims.jti,
        },
    }


@lru_cache(maxsize=512)
def _statement(prefix: str, scope: str) -> tuple[str, tuple[str, ...]]:
    """Effect and resources for a scope string on one API stage (few distinct: memoised)."""
    rules = routes_scopes.allowed(frozenset(scope.split()))
    if not rules:
        return "Deny", (f"{prefix}/*",)
    return "Allow", tuple(f"{prefix}/{routes_scopes.arn_suffix(rule)}" for rule in rules)


class Authorizer:
    def __init__(
        self,
        *,
        key_for: Callable[[str], VerifyingKey | None],
        issuer: str,
        audience: str,
        leeway: int,
        clock: Clock,
        revocation: access_tokens.RevocationCheck | None = None,
    ) -> None:
        self._key_for = key_for
        self._issuer = issuer
        self._audience = audience
        self._leeway = leeway
        self._clock = clock
        self._revocation = revocation

    def authorize(self, authorization: object, method_arn: str) -> dict[str, Any]:
        """The policy for a valid token, or ``Unauthorized``. Faults propagate to ``handle``."""
        token = bearer_token(authorization)
        if token is None:
            log.info("rejected: no bearer token")
            raise Unauthorized()
        try:
            claims = access_tokens.validate(
                token,
                self._key_for,
                issuer=self._issuer,
                audience=self._audience,
                now=self._clock.now(),
                leeway=self._leeway,
            )
        except access_tokens.InvalidToken as exc:
            # Our own fixed reason strings; never the token.
            log.info("rejected: %s", exc)
            raise Unauthorized() from None
        if self._revocation is not None and self._revocation.is_revoked(claims.jti, claims.sid):
            log.info("rejected: revoked", extra={"jti": claims.jti})
            raise Unauthorized()
        return policy_for(claims, method_arn)


def handle(authorization: object, method_arn: str) -> dict[str, Any]:
    """The authorizer Lambda's body: a policy, ``Unauthorized``, or ``AuthorizerUnavailable``."""
    from chalicelib import services

    try:
        result: dict[str, Any] = services.authorizer().authorize(authorization, method_arn)
        telemetry.count_authorizer_answer(result)
        return result
    except Unauthorized:
        telemetry.count("AuthorizerDeny")
        raise
    except Exception as exc:  # any fault denies: never an allow, never the details
        log.error("authorizer fault", extra={"error_type": type(exc).__name__})
    telemetry.count("AuthorizerError")
    raise AuthorizerUnavailable()
