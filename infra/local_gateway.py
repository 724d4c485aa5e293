"""The local stack's stand-in for API Gateway's gateway responses (infra/gateway-responses.yaml).

``chalice local`` and ``chalice.test.Client`` run the built-in authorizer, but not like API
Gateway: an authorizer raising ``Unauthorized`` drops the connection instead of answering 401, any
other exception does the same, and gateway responses do not exist. ``install()`` wraps Chalice's
``LocalGatewayAuthorizer.authorize`` so that the local server answers as RFC 6750 §3 says:

==========================================  ======  =============================================
situation                                   status  WWW-Authenticate
==========================================  ======  =============================================
no Authorization header, or not Bearer      401     Bearer realm="tessera"
invalid, expired or revoked Bearer token    401     Bearer realm="tessera", error="invalid_token"
valid token without the route's scope       403     Bearer realm="tessera",
                                                    error="insufficient_scope", scope="<needed>"
authorizer fault (AuthorizerUnavailable)    503     (Retry-After: 2)
no route for this method and path           404     (none)
==========================================  ======  =============================================

Every body is JSON in the README's error shape (``error``, ``error_description``), except that
the first row has no ``error`` (RFC 6750 §3.1: no error code for a request without credentials).
In AWS the first row gets the second row's header and body and the third has no ``scope``
attribute (API Gateway cannot tell these apart; see infra/gateway-responses.yaml); an unknown
route that carries an Authorization header may get API Gateway's 403 there instead of the 404.
Everything else is the same. Local stack and tests only: production code never imports this
module.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from chalice import local

from chalicelib.authorizer import UNAUTHORIZED, bearer_token
from chalicelib.routes_scopes import required_scope

DEFAULT_REALM = "tessera"
INVALID_TOKEN_DESCRIPTION = "the access token is missing, invalid or expired"  # noqa: S105
NO_TOKEN_DESCRIPTION = "this route needs an access token: Authorization: Bearer <token>"  # noqa: S105
NOT_FOUND_DESCRIPTION = "no route matches this method and path"
INSUFFICIENT_SCOPE_DESCRIPTION = "the access token does not grant the scope this route needs"
UNAVAILABLE_DESCRIPTION = "the service is temporarily unavailable, retry later"
RETRY_AFTER = "2"

_original: Callable[..., Any] | None = None
_original_handle: Callable[..., Any] | None = None


class GatewayResponse(local.LocalGatewayException):
    """An answer of the (local) gateway itself, before or instead of the route."""

    def __init__(self, status: int, headers: dict[str, Any], body: dict[str, str]) -> None:
        headers = {"Content-Type": "application/json", **headers}
        super().__init__(headers, json.dumps(body, separators=(",", ":")).encode())
        self.CODE = status


def _realm() -> str:
    try:
        from chalicelib.config import settings

        return settings().realm
    except Exception:
        return DEFAULT_REALM


def challenge(realm: str, error: str | None = None, scope: str | None = None) -> str:
    """A ``WWW-Authenticate: Bearer`` value (RFC 6750 §3)."""
    parts = [f'realm="{realm}"']
    if error:
        parts.append(f'error="{error}"')
    if scope:
        parts.append(f'scope="{scope}"')
    return "Bearer " + ", ".join(parts)


def no_token() -> GatewayResponse:
    # RFC 6750 §3.1: no error code when the request carried no credentials, in the header or body.
    return GatewayResponse(
        401,
        {"WWW-Authenticate": challenge(_realm()), "x-amzn-ErrorType": "UnauthorizedException"},
        {"error_description": NO_TOKEN_DESCRIPTION},
    )


def not_found() -> GatewayResponse:
    """API Gateway's MISSING_AUTHENTICATION_TOKEN (no route for this method and path), as
    infra/gateway-responses.yaml configures it: 404 instead of its default 403."""
    return GatewayResponse(
        404,
        {"x-amzn-ErrorType": "MissingAuthenticationTokenException"},
        {"error": "not_found", "error_description": NOT_FOUND_DESCRIPTION},
    )


def invalid_token() -> GatewayResponse:
    return GatewayResponse(
        401,
        {
            "WWW-Authenticate": challenge(_realm(), "invalid_token"),
            "x-amzn-ErrorType": "UnauthorizedException",
        },
        {"error": "invalid_token", "error_description": INVALID_TOKEN_DESCRIPTION},
    )


def insufficient_scope(scope: str | None) -> GatewayResponse:
    body = {"error": "insufficient_scope", "error_description": INSUFFICIENT_SCOPE_DESCRIPTION}
    if scope:
        body["scope"] = scope
    return GatewayResponse(
        403,
        {
            "WWW-Authenticate": challenge(_realm(), "insufficient_scope", scope),
            "x-amzn-ErrorType": "AccessDeniedException",
        },
        body,
    )


def unavailable() -> GatewayResponse:
    return GatewayResponse(
        503,
        {"Retry-After": RETRY_AFTER, "x-amzn-ErrorType": "AuthorizerConfigurationException"},
        {"error": "temporarily_unavailable", "error_description": UNAVAILABLE_DESCRIPTION},
    )


def _offers_bearer(header: object) -> bool:
    """Did the client attempt Bearer authentication at all (RFC 6750 §3.1)?"""
    if not isinstance(header, str):
        return False
    return header.strip().split(" ", 1)[0].lower() == "bearer" or bearer_token(header) is not None


def _authorize(self: Any, raw_path: str, lambda_event: Any, lambda_context: Any) -> Any:
    assert _original is not None
    request_context = lambda_event.get("requestContext") or {}
    try:
        return _original(self, raw_path, lambda_event, lambda_context)
    except local.NotAuthorizedError:  # Chalice: no Authorization header
        raise no_token() from None
    except local.ForbiddenError:  # the policy does not cover this route
        needed = required_scope(
            request_context.get("httpMethod", ""), request_context.get("resourcePath", "")
        )
        raise insufficient_scope(needed) from None
    except GatewayResponse:
        raise
    except local.LocalGatewayException:  # the authorizer returned nothing usable
        raise unavailable() from None
    except Exception as exc:
        if str(exc) == UNAUTHORIZED:
            header = (lambda_event.get("headers") or {}).get("authorization")
            raise (invalid_token() if _offers_bearer(header) else no_token()) from None
        raise unavailable() from None


def _handle_request(
    self: Any, method: str, path: str, headers: Any, body: bytes | None
) -> dict[str, Any]:
    """No route for this method and path: API Gateway answers before any Lambda runs (its
    MISSING_AUTHENTICATION_TOKEN), where Chalice would answer 403 in its own shape, or let the app
    answer 405 for a method the path lacks."""
    assert _original_handle is not None
    try:
        event = self._generate_lambda_event(method, path, headers, body)
    except ValueError:  # Chalice: no such path
        raise not_found() from None
    views = self._app_object.routes[event["requestContext"]["resourcePath"]]
    if method != "OPTIONS" and method not in views:  # OPTIONS: Chalice's CORS preflight answer
        raise not_found()
    result: dict[str, Any] = _original_handle(self, method, path, headers, body)
    return result


def install() -> None:
    """Make ``chalice local`` / ``chalice.test.Client`` answer like our gateway responses."""
    global _original, _original_handle
    if _original is not None:
        return
    _original = local.LocalGatewayAuthorizer.authorize
    _original_handle = local.LocalGateway.handle_request
    local.LocalGatewayAuthorizer.authorize = _authorize  # type: ignore[method-assign]
    local.LocalGateway.handle_request = _handle_request  # type: ignore[method-assign]


def uninstall() -> None:
    """Restore Chalice's own behaviour (tests)."""
    global _original, _original_handle
    if _original is None or _original_handle is None:
        return
    local.LocalGatewayAuthorizer.authorize = _original  # type: ignore[method-assign]
    local.LocalGateway.handle_request = _original_handle  # type: ignore[method-assign]
    _original = _original_handle = None
