"""Which scope each protected route needs: the one table the authorizer and the local gateway read.

Paths are written as Chalice routes (``{id}`` for a path parameter). The authorizer turns the
table into an IAM policy that allows *every* route the token's scopes permit, because API Gateway
caches that policy per token (``AUTHORIZER_CACHE_TTL``) and applies it to the token's next calls
on any route; a policy naming only the route being called would deny the others from the cache.

Pure data and string handling: no imports beyond the standard library (app.py imports this at
module level for the cache TTL).
"""

from __future__ import annotations

import re
from typing import NamedTuple

# Seconds API Gateway keeps an authorizer answer per token (Chalice's and API Gateway's default).
# The revocation check (settings.authorizer_checks_revocation) runs once per cache miss, so a
# revoked token keeps working for at most this long: see the README, "The authorizer".
AUTHORIZER_CACHE_TTL = 300


class RouteRule(NamedTuple):
    method: str
    path: str  # Chalice notation, exactly as in app.py: /people/{person_id}
    scope: str


# fmt: off
PROTECTED_ROUTES: tuple[RouteRule, ...] = (
    #         method   path                   scope needed
    RouteRule("GET",   "/people",             "people:read"),
    RouteRule("GET",   "/people/{person_id}", "people:read"),
    RouteRule("GET",   "/articles",           "articles:read"),
    RouteRule("POST",  "/articles",           "articles:write"),
)
# fmt: on

_PARAM = re.compile(r"\{[^/{}]+\}")


def allowed(scopes: frozenset[str]) -> list[RouteRule]:
    """Every protected route that a token with ``scopes`` may call."""
    return [rule for rule in PROTECTED_ROUTES if rule.scope in scopes]


def required_scope(method: str, path: str) -> str | None:
    """The scope a route needs (``path`` in Chalice notation), or None if it is not protected."""
    for rule in PROTECTED_ROUTES:
        if rule.method == method and rule.path == path:
            return rule.scope
    return None


def arn_suffix(rule: RouteRule) -> str:
    """``GET/people/*`` for ``GET /people/{id}``: the method ARN holds the concrete path, so a
    path parameter must become a wildcard or the policy would never match it."""
    return rule.method + "/" + _PARAM.sub("*", rule.path).lstrip("/")
