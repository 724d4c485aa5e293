"""The local stack's stand-in for API Gateway in front of Tessera's authorizer.

``chalice local`` and ``chalice.test.Client`` run only built-in authorizers (and admit every
request on a ``CustomAuthorizer`` route), evaluate only the Allow statements of a policy, drop the
connection when an authorizer raises, and know no gateway responses. ``install()`` replaces
Chalice's ``LocalGatewayAuthorizer.authorize`` so that a route behind Tessera's authorizer (the
built-in ``tessera_authorizer`` of Tessera's own app, or any ``CustomAuthorizer`` of an attached
app such as examples/orders) is decided as in AWS:

1. no header: 401, without calling the authorizer (API Gateway checks the identity source);
2. a REST ``TOKEN`` event with the method ARN API Gateway would send
   (``arn:aws:execute-api:us-east-1:123456789012:<api-id>/<stage>/<METHOD>/<path>``, the API
   id and stage given to ``install``), handed to the deployed entry point,
   ``chalicelib.authorizer_lambda.handler``;
3. the policy evaluated like IAM (``policy_allows``): an explicit Deny wins, otherwise an Allow
   whose resource pattern matches (``*`` any characters, ``/`` included; ``?`` one character);
4. the answer as in infra/gateway-responses.yaml, with RFC 6750 headers:

==========================================  ======  =============================================
situation                                   status  WWW-Authenticate
==========================================  ======  =============================================
no Authorization header, or not Bearer      401     Bearer realm="tessera"
invalid, expired or revoked Bearer token    401     Bearer realm="tessera", error="invalid_token"
valid token, the policy does not allow it   403     Bearer realm="tessera",
                                                    error="insufficient_scope", scope="<needed>"
authorizer fault (AuthorizerUnavailable)    503     (Retry-After: 2)
no route for this method and path           404     (none)
==========================================  ======  =============================================

Every body is JSON in the README's error shape (``error``, ``error_description``), except that
the first row has no ``error`` (RFC 6750 §3.1: no error code for a request without credentials).
In AWS the first row gets the second row's header and body and the third has no ``scope``
attribute (API Gateway cannot tell these apart; see infra/gateway-responses.yaml); an unknown
route that carries an Authorization header may get API Gateway's 403 there instead of the 404;
and answers are cached per token for the authorizer's TTL (here every request calls the
authorizer). Local stack and tests only: production code never imports this module.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from chalice import local
from chalice.app import ChaliceAuthorizer, CustomAuthorizer

from chalicelib.oauth.bearer import bearer_token
from chalicelib.web.authorizer import UNAUTHORIZED
from infra.seed import LOCAL_DEMO_API

DEFAULT_REALM = "tessera"
INVALID_TOKEN_DESCRIPTION = "the access token is missing, invalid or expired"  # noqa: S105
NO_TOKEN_DESCRIPTION = "this route needs an access token: Authorization: Bearer <token>"  # noqa: S105
NOT_FOUND_DESCRIPTION = "no route matches this method and path"
INSUFFICIENT_SCOPE_DESCRIPTION = "the access token does not grant the scope this route needs"
UNAVAILABLE_DESCRIPTION = "the service is temporarily unavailable, retry later"
RETRY_AFTER = "2"
REGION = "us-east-1"
ACCOUNT = "123456789012"

_original: Callable[..., Any] | None = None
_original_handle: Callable[..., Any] | None = None
_api = LOCAL_DEMO_API  # <api-id>/<stage> of the app this process serves


class GatewayResponse(local.LocalGatewayException):
    """An answer of the (local) gateway itself, before or instead of the route."""

    def __init__(self, status: int, headers: dict[str, Any], body: dict[str, str]) -> None:
        headers = {"Content-Type": "application/json", **headers}
        super().__init__(headers, json.dumps(body, separators=(",", ":")).encode())
        self.CODE = status


def _realm() -> str:
    try:
        from chalicelib.core.config import settings

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


# --- IAM's evaluation of an authorizer policy ------------------------------------------------


def _pattern(resource: str) -> re.Pattern[str]:
    # IAM resource patterns: * is any run of characters (/ included), ? one character.
    parts = [".*" if c == "*" else "." if c == "?" else re.escape(c) for c in resource]
    return re.compile("".join(parts), re.DOTALL)


def policy_allows(policy: Any, arn: str) -> bool:
    """Does an ``execute-api:Invoke`` policy allow ``arn``? An explicit Deny wins; no matching
    Allow is a deny. A malformed policy allows nothing."""
    if not isinstance(policy, dict) or not isinstance(policy.get("Statement"), list):
        return False
    allowed = False
    for statement in policy["Statement"]:
        if not isinstance(statement, dict):
            return False
        actions = statement.get("Action")
        actions = [actions] if isinstance(actions, str) else actions
        resources = statement.get("Resource")
        resources = [resources] if isinstance(resources, str) else resources
        if not isinstance(actions, list) or not isinstance(resources, list):
            return False
        if "execute-api:Invoke" not in actions:
            continue
        if any(isinstance(r, str) and _pattern(r).fullmatch(arn) for r in resources):
            if statement.get("Effect") == "Deny":
                return False
            allowed = allowed or statement.get("Effect") == "Allow"
    return allowed


# --- the local gateway -----------------------------------------------------------------------


def method_arn(method: str, raw_path: str, api: str | None = None) -> str:
    """The ARN API Gateway names a call by (``GET/`` for the root)."""
    path = raw_path.split("?", 1)[0].removeprefix("/")
    return f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{api or _api}/{method}/{path}"


def _offers_bearer(header: object) -> bool:
    """Did the client attempt Bearer authentication at all (RFC 6750 §3.1)?"""
    if not isinstance(header, str):
        return False
    return header.strip().split(" ", 1)[0].lower() == "bearer" or bearer_token(header) is not None


def _needed_scope(method: str, raw_path: str) -> str | None:
    """The scope the called route's rule names (for the local 403's ``scope`` attribute)."""
    try:
        from chalicelib.core import api_rules
        from chalicelib.web import services

        rule_set = services.api_rules().for_api(_api)
        path = api_rules.split_path(raw_path.split("?", 1)[0])
        found = api_rules.route_for(rule_set, method, path) if rule_set else None
    except Exception:
        return None
    return found.scope if found else None


def _header_name(authorizer: Any) -> str | None:
    """The identity header of an authorizer that Tessera's function answers, else None."""
    if isinstance(authorizer, CustomAuthorizer):
        return str(authorizer._header)  # what API Gateway's TOKEN authorizer reads
    if isinstance(authorizer, ChaliceAuthorizer):
        return "Authorization"
    return None


def _authorize(self: Any, raw_path: str, lambda_event: Any, lambda_context: Any) -> Any:
    assert _original is not None
    route = self._route_for_event(lambda_event)
    header_name = _header_name(route.authorizer) if route is not None else None
    if header_name is None:  # no authorizer, or one Chalice handles itself (Cognito)
        return _original(self, raw_path, lambda_event, lambda_context)
    headers = lambda_event.get("headers") or {}
    header = next((v for k, v in headers.items() if k.lower() == header_name.lower()), None)
    if not header:
        raise no_token()
    method = lambda_event["requestContext"]["httpMethod"]
    arn = method_arn(method, raw_path)
    from chalicelib.authorizer_lambda import handler

    try:
        answer = handler({"type": "TOKEN", "authorizationToken": header, "methodArn": arn}, None)
    except Exception as exc:
        if str(exc) == UNAUTHORIZED:
            raise (invalid_token() if _offers_bearer(header) else no_token()) from None
        raise unavailable() from None
    context = answer.get("context") if isinstance(answer, dict) else None
    if not isinstance(context, dict):
        raise unavailable()
    if not policy_allows(answer.get("policyDocument"), arn):
        raise insufficient_scope(_needed_scope(method, raw_path))
    lambda_event["requestContext"]["authorizer"] = {
        **context,
        "principalId": answer.get("principalId"),
    }
    return lambda_event, lambda_context


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


def install(api: str = LOCAL_DEMO_API) -> None:
    """Put the stand-in in front of ``chalice local`` / ``chalice.test.Client``; ``api`` is the
    ``<api-id>/<stage>`` this process's app is known by (what its rule set is bound to)."""
    global _original, _original_handle, _api
    _api = api
    if _original is not None:
        return
    _original = local.LocalGatewayAuthorizer.authorize
    _original_handle = local.LocalGateway.handle_request
    local.LocalGatewayAuthorizer.authorize = _authorize  # type: ignore[method-assign]
    local.LocalGateway.handle_request = _handle_request  # type: ignore[method-assign]


def uninstall() -> None:
    """Restore Chalice's own behaviour (tests)."""
    global _original, _original_handle, _api
    _api = LOCAL_DEMO_API
    if _original is None or _original_handle is None:
        return
    local.LocalGatewayAuthorizer.authorize = _original  # type: ignore[method-assign]
    local.LocalGateway.handle_request = _original_handle  # type: ignore[method-assign]
    _original = _original_handle = None
