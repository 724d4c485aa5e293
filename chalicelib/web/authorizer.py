"""API Gateway Lambda authorizer for Tessera's access tokens (RFC 6750 §2.1, RFC 9068 §4), for any
API that attaches it.

``handle_event`` reads the three event shapes AWS documents for Lambda authorizers:

* REST ``TOKEN``: ``authorizationToken`` and ``methodArn``;
* REST ``REQUEST`` (HTTP API payload 1.0 has the same shape): ``methodArn``, ``headers``,
  ``multiValueHeaders``, ``resource`` (the matched route);
* HTTP API payload 2.0: ``routeArn``, ``routeKey``, ``identitySource``, ``headers`` (lower case).

Every shape gets the same checks: exactly one Bearer token, ``access_tokens.validate`` (shared
with introspection), the revocation check where the stage enables it, then the rules the called API
registered (``chalicelib.core.api_rules``, read through ``api_rules_store.CachedRules``) against the
token's scopes. Outcomes:

* allowed: an IAM policy (REST; HTTP APIs with policy responses) or ``{"isAuthorized": true}``
  (HTTP simple responses), with flat string context ``sub``, ``client_id``, ``scope``, ``jti``
  (``principalId`` is ``sub``). A route outside the policy is answered 403 by API Gateway
  (ACCESS_DENIED, RFC 6750 ``insufficient_scope``); an API without rules, a route not in them, a
  token whose scopes open nothing: a Deny;
* ``Unauthorized`` (the exact message API Gateway maps to 401, RFC 6750 ``invalid_token``): a
  missing, malformed, invalid, expired or revoked token, or an event of no known shape;
* ``AuthorizerUnavailable`` for anything unexpected (key store or rules past their stale bound,
  the revocation read failing, an unparsable ARN, a bug): API Gateway answers 500, which
  infra/gateway-responses.yaml turns into 503 + Retry-After. It never allows, is not cached by API
  Gateway, and carries no detail.

No AWS client here: keys, rules and the revocation check come in as objects
(``chalicelib.web.services``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import NamedTuple, Protocol

from chalicelib.core import api_rules
from chalicelib.core.api_rules import RulesError, RuleSet, Statements, Template
from chalicelib.core.clock import Clock
from chalicelib.oauth.bearer import bearer_token
from chalicelib.tokens import access_tokens
from chalicelib.tokens.key_objects import VerifyingKey

log = logging.getLogger("tessera.authorizer")

UNAUTHORIZED = "Unauthorized"  # the exact Lambda error message API Gateway maps to 401
# RFC 6750 §2.1: credentials = "Bearer" 1*SP b64token; the scheme is case-insensitive (RFC 9110
# §11.1). Exactly one token: anything after it (a second token, a comma) does not match.
_INVOKE = "execute-api:Invoke"


class Unauthorized(Exception):
    """No usable access token: API Gateway answers 401."""

    def __init__(self) -> None:
        super().__init__(UNAUTHORIZED)


class AuthorizerUnavailable(Exception):
    """The authorizer cannot decide (a fault): API Gateway answers 500/503, never allows."""

    def __init__(self) -> None:
        super().__init__("authorizer unavailable")


class RuleSource(Protocol):
    def for_api(self, api: str) -> RuleSet | None: ...


# --- what API Gateway asks -------------------------------------------------------------------


class Call(NamedTuple):
    """One authorization question, whatever the event's shape."""

    authorization: object  # the Authorization header's value as received (None if absent)
    arn: str  # methodArn or routeArn
    http: bool = False  # HTTP API payload 2.0 (may expect a simple response)
    template: Template | None = None  # the route API Gateway matched, where the event names it
    route_keyed: bool = False  # HTTP: the routeKey is among the identity sources (cache key)


class Target(NamedTuple):
    prefix: str  # arn:<partition>:execute-api:<region>:<account>:<api-id>/<stage>
    api: str  # <api-id>/<stage>: what rule sets are bound to
    method: str
    path: tuple[str, ...]


def _header(headers: object, name: str) -> object:
    """A header's value, by case-insensitive name (REST keeps the client's case)."""
    if not isinstance(headers, Mapping):
        return None
    found = [v for k, v in headers.items() if isinstance(k, str) and k.lower() == name]
    return found[0] if len(found) == 1 else None


def _route(raw: object) -> Template:
    """The route template an event names; a missing or unreadable one is a malformed event."""
    try:
        return api_rules.parse_template(raw)
    except RulesError:
        raise Unauthorized() from None


def _arn(raw: object) -> str:
    return raw if isinstance(raw, str) else ""  # "" does not parse: a fault, never an allow


def read_event(event: object) -> Call:
    """The question in a TOKEN, REST REQUEST or HTTP API 2.0 event; ``Unauthorized`` for
    anything else (not API Gateway's, or not a shape we know: never an allow)."""
    if not isinstance(event, Mapping):
        raise Unauthorized()
    kind = event.get("type")
    if event.get("version") == "2.0" and kind == "REQUEST":
        route_key, sources = event.get("routeKey"), event.get("identitySource", [])
        if not isinstance(route_key, str) or not isinstance(sources, list):
            raise Unauthorized()
        template = None  # $default: decided by the path
        if route_key != "$default":
            template = _route(route_key.partition(" ")[2])
        return Call(
            authorization=_header(event.get("headers"), "authorization"),
            arn=_arn(event.get("routeArn")),
            http=True,
            template=template,
            route_keyed=template is not None and route_key in sources,
        )
    if kind == "REQUEST":
        authorization = _header(event.get("headers"), "authorization")
        multi = _header(event.get("multiValueHeaders"), "authorization")
        if isinstance(multi, list) and len(multi) != 1:
            authorization = None  # two Authorization headers: not exactly one credential
        template = _route(event.get("resource"))
        return Call(authorization, _arn(event.get("methodArn")), template=template)
    if kind == "TOKEN":
        return Call(event.get("authorizationToken"), _arn(event.get("methodArn")))
    raise Unauthorized()


@lru_cache(maxsize=1024)
def parse_arn(arn: str) -> Target:
    """``arn:aws:execute-api:<region>:<account>:<api-id>/<stage>/<METHOD>/<path>``."""
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn" or parts[2] != "execute-api":
        raise ValueError("not an execute-api ARN")
    pieces = parts[5].split("/", 3)
    if len(pieces) < 3 or not all(pieces[:3]):
        raise ValueError("ARN without API id, stage or method")
    api_id, stage, method = pieces[:3]
    if method not in api_rules.METHODS:
        raise ValueError("ARN without an HTTP method")
    path = api_rules.split_path(pieces[3]) if len(pieces) == 4 else ()
    prefix = ":".join(parts[:5]) + f":{api_id}/{stage}"
    return Target(prefix, f"{api_id}/{stage}", method, path)


# --- the answer ------------------------------------------------------------------------------


def _policy(
    claims: access_tokens.AccessTokenClaims, statements: list[dict[str, object]]
) -> dict[str, object]:
    return {
        "principalId": claims.sub,
        "policyDocument": {"Version": "2012-10-17", "Statement": statements},
        "context": context_of(claims),
    }


def context_of(claims: access_tokens.AccessTokenClaims) -> dict[str, str]:
    # API Gateway turns context values into strings and rejects nested ones: flat strings only.
    return {
        "sub": claims.sub,
        "client_id": claims.client_id,
        "scope": claims.scope,
        "jti": claims.jti,
    }


def _statement(effect: str, prefix: str, resources: tuple[str, ...]) -> dict[str, object]:
    return {
        "Action": _INVOKE,
        "Effect": effect,
        "Resource": [f"{prefix}/{r}" for r in resources],
    }


def decide(call: Call, target: Target, rule_set: RuleSet, scopes: frozenset[str]) -> Statements:
    """What the policy allows and denies (relative resources); empty ``allow`` means none."""
    if rule_set.cache == "token":
        return api_rules.token_policy(rule_set, scopes)
    if call.template is not None:
        found = api_rules.rule_for_template(rule_set, target.method, call.template)
    else:
        found = api_rules.route_for(rule_set, target.method, target.path)
    if found is None or found.scope not in scopes:
        return Statements((), ())
    return api_rules.route_policy(rule_set, found, target.method)


def answer(
    call: Call, target: Target, rule_set: RuleSet | None, claims: access_tokens.AccessTokenClaims
) -> dict[str, object]:
    """The authorizer's answer for a valid token."""
    if rule_set is None:
        log.info("denied: no rules for this API", extra={"api": target.api})
        statements = Statements((), ())
    else:
        statements = decide(call, target, rule_set, frozenset(claims.scope.split()))
    if call.http and rule_set is not None and rule_set.response == "simple":
        allowed = bool(statements.allow)
        if allowed and not call.route_keyed:
            # One yes cached per token would answer every route: refuse until the API keys its
            # authorizer cache on the route too.
            log.warning("denied: simple responses need $context.routeKey in the identity sources")
            allowed = False
        simple: dict[str, object] = {"isAuthorized": allowed}
        if allowed:
            simple["context"] = context_of(claims)
        return simple
    if not statements.allow:
        whole = ("*",) if rule_set is None or rule_set.cache == "token" else None
        denied = whole or (target.method + "/" + "/".join(target.path),)
        return _policy(claims, [_statement("Deny", target.prefix, denied)])
    found = [_statement("Allow", target.prefix, statements.allow)]
    if statements.deny:
        found.append(_statement("Deny", target.prefix, statements.deny))
    return _policy(claims, found)


class Authorizer:
    def __init__(
        self,
        *,
        key_for: Callable[[str], VerifyingKey | None],
        issuer: str,
        audience: str,
        leeway: int,
        clock: Clock,
        rules: RuleSource,
        revocation: access_tokens.RevocationCheck | None = None,
    ) -> None:
        self._key_for = key_for
        self._issuer = issuer
        self._audience = audience
        self._leeway = leeway
        self._clock = clock
        self._rules = rules
        self._revocation = revocation

    def authorize(self, authorization: object, method_arn: str) -> dict[str, object]:
        """A REST TOKEN authorization (``answer`` for any event's ``Call``)."""
        return self.answer(Call(authorization, method_arn))

    def answer(self, call: Call) -> dict[str, object]:
        """The answer for a valid token, or ``Unauthorized``. Faults propagate to
        ``handle_event``."""
        token = bearer_token(call.authorization)
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
        target = parse_arn(call.arn)
        return answer(call, target, self._rules.for_api(target.api), claims)
