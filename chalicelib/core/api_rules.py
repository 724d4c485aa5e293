"""Route rules of the APIs that attach Tessera's authorizer, and the IAM policies built from them.

Each API that attaches the authorizer registers a rule set (``admin authorizer rules put``, stored
by ``chalicelib.store.api_rules_store``): a name its team chooses, the API stages it covers
(``<api-id>/<stage>``, as in the execute-api ARN), and one rule per route: method, path template as
the API defines it, scope needed. Nothing about any API lives in Tessera's code.

Matching is exact per template: a literal segment matches itself, ``{param}`` exactly one
non-empty segment (never a ``/``), ``{name+}`` (last, after literals only) one or more. Where
several templates match a path, the most specific wins, as in API Gateway: literal before parameter
before greedy, left to right; a method before ``ANY``.

Policies. API Gateway matches a policy's resources against
``arn:...:<api-id>/<stage>/<METHOD>/<path>``, and there ``*`` matches any characters, ``/``
included: ``GET/orders/*`` alone would also allow ``GET/orders/7/invoice``. So every parameter's
``*`` comes with explicit Deny statements for what it would over-match (a deeper path, an empty
segment); an explicit Deny always wins. API Gateway caches the answer for ``AUTHORIZER_CACHE_TTL``
under the authorizer's cache key, which decides the answer's shape (a rule set's ``cache``):

* ``token`` (TOKEN authorizers such as Chalice's ``CustomAuthorizer``; REQUEST authorizers keyed on
  the Authorization header alone): the cached answer is reused for every route the token calls, so
  it allows every route the token's scopes permit. Such a policy can be exact only if no template's
  pattern reaches another template's paths (``/orders/{id}`` beside ``/orders/export`` or
  ``/orders/{id}/items``): ``parse_rule_set`` refuses those layouts in this mode.
* ``route`` (the cache key includes the route: REST REQUEST authorizers with ``context.httpMethod``
  and ``context.resourcePath`` among the identity sources, HTTP APIs with ``$context.routeKey``; or
  caching off): the answer covers the called route only, so any layout works. It also denies the
  registered routes that API Gateway prefers over it, so even a gateway that caches per token
  cannot let a cached answer reach another registered route (it would wrongly refuse, never allow).

Pure data and string handling, standard library only (app.py imports this at module level).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from functools import cache, lru_cache
from typing import NamedTuple

# Seconds API Gateway keeps an authorizer answer under its cache key (Chalice's and API Gateway's
# default). The revocation check runs once per cache miss, so a revoked token keeps working for at
# most this long: see the README, "The authorizer".
AUTHORIZER_CACHE_TTL = 300

METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")
ANY = "ANY"
CACHE_MODES = ("token", "route")
RESPONSES = ("policy", "simple")  # simple: HTTP API simple responses ({"isAuthorized": ...})
MAX_RULES = 100  # every rule can become three statements' resources: keep answers small
MAX_APIS = 20

LIT, PARAM, GREEDY = 0, 1, 2  # segment kinds, in API Gateway's order of preference
_LITERAL = re.compile(r"[A-Za-z0-9._~@:!$&'()+,;=%-]+")  # no * or ?: IAM wildcards
_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(\+?)\}")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
API_KEY = re.compile(r"[A-Za-z0-9_-]{1,64}/[A-Za-z0-9_$-]{1,128}")


class RulesError(ValueError):
    """A rule set that cannot be stored or enforced as given (one line, for the operator)."""


class Segment(NamedTuple):
    kind: int  # LIT, PARAM or GREEDY
    text: str  # the literal, or the parameter's name


class Template(NamedTuple):
    path: str  # as registered: /orders/{order_id}
    segments: tuple[Segment, ...]

    @property
    def shape(self) -> tuple[tuple[int, str], ...]:
        """The template without parameter names: ``/a/{x}`` and ``/a/{y}`` are one route."""
        return tuple((s.kind, s.text if s.kind == LIT else "") for s in self.segments)

    @property
    def specificity(self) -> tuple[int, ...]:
        return tuple(s.kind for s in self.segments)

    def glob(self) -> str:
        """The path as an execute-api resource: each parameter becomes ``*``."""
        return "/".join(s.text if s.kind == LIT else "*" for s in self.segments)

    def matches(self, path: tuple[str, ...]) -> bool:
        segs = self.segments
        if segs and segs[-1].kind == GREEDY:
            if len(path) < len(segs) or not all(path[len(segs) - 1 :]):
                return False
            segs = segs[:-1]
            path = path[: len(segs)]
        elif len(path) != len(segs):
            return False
        return all(
            (s.kind == LIT and s.text == p) or (s.kind != LIT and p != "")
            for s, p in zip(segs, path, strict=True)
        )


class Rule(NamedTuple):
    method: str  # one of METHODS, or ANY
    template: Template
    scope: str

    @property
    def methods(self) -> tuple[str, ...]:
        return METHODS if self.method == ANY else (self.method,)

    def describe(self) -> str:
        return f"{self.method} {self.template.path}"


class RuleSet(NamedTuple):
    name: str
    apis: tuple[str, ...]  # "<api-id>/<stage>"
    rules: tuple[Rule, ...]
    cache: str = "token"
    response: str = "policy"


class Statements(NamedTuple):
    """Resources relative to ``arn:...:<api-id>/<stage>/``; an explicit Deny wins."""

    allow: tuple[str, ...]
    deny: tuple[str, ...]


# --- parsing and validation ----------------------------------------------------------------


def parse_template(path: object) -> Template:
    if not isinstance(path, str) or not path.startswith("/") or len(path) > 512:
        raise RulesError(f"a path must start with / (got {path!r})")
    if path == "/":
        return Template("/", ())
    raw = path[1:].split("/")
    segments: list[Segment] = []
    for i, part in enumerate(raw):
        found = _PARAM.fullmatch(part)
        if found:
            greedy = found.group(2) == "+"
            if greedy and i != len(raw) - 1:
                raise RulesError(f"{path}: a greedy parameter ({{name+}}) must be last")
            segments.append(Segment(GREEDY if greedy else PARAM, found.group(1)))
        elif _LITERAL.fullmatch(part):
            segments.append(Segment(LIT, part))
        else:
            raise RulesError(f"{path}: bad segment {part!r} (literal, {{param}} or {{name+}})")
    names = [s.text for s in segments if s.kind != LIT]
    if len(names) != len(set(names)):
        raise RulesError(f"{path}: a parameter name is used twice")
    if segments[-1].kind == GREEDY and len(names) > 1:
        # /{bucket}/{key+}: where the parameter ends and the greedy one starts is not in the
        # path, so no policy pattern could keep the parameter to one segment.
        raise RulesError(f"{path}: a greedy parameter cannot follow another parameter")
    return Template(path, tuple(segments))


def parse_rule(method: object, path: object, scope: object) -> Rule:
    from chalicelib.core.scopes import parse_scope

    if not isinstance(method, str) or method.upper() not in (*METHODS, ANY):
        raise RulesError(f"unknown method {method!r} (one of {', '.join(METHODS)} or ANY)")
    template = parse_template(path)
    try:
        scopes = parse_scope(scope if isinstance(scope, str) else "")
    except Exception:
        scopes = frozenset()
    if len(scopes) != 1:
        raise RulesError(f"{method} {path}: exactly one scope is needed (got {scope!r})")
    return Rule(method.upper(), template, next(iter(scopes)))


def parse_route(line: str) -> Rule:
    """``"GET /orders/{id} orders:read"`` (the admin command's ``--route``)."""
    parts = line.split()
    if len(parts) != 3:
        raise RulesError(f"a route is 'METHOD /path scope' (got {line!r})")
    return parse_rule(*parts)


def parse_rule_set(doc: Mapping[str, object], name: str | None = None) -> RuleSet:
    """A rule set from its stored or file form; raises ``RulesError`` naming the problem."""
    if name is None:
        stored = doc.get("name")
        name = stored if isinstance(stored, str) else None
    if name is None or not _NAME.fullmatch(name):
        raise RulesError("a rule set needs a name: letters, digits, '.', '_' or '-' (64 at most)")
    apis = doc.get("apis")
    if not isinstance(apis, list | tuple) or not apis or len(apis) > MAX_APIS:
        raise RulesError(f"{name}: list 1 to {MAX_APIS} APIs as <api-id>/<stage>")
    for api in apis:
        if not isinstance(api, str) or not API_KEY.fullmatch(api):
            raise RulesError(f"{name}: an API is <api-id>/<stage> (got {api!r})")
    cache_mode = doc.get("cache", "token")
    if cache_mode not in CACHE_MODES:
        raise RulesError(f"{name}: cache is one of {', '.join(CACHE_MODES)}")
    response = doc.get("response", "policy")
    if response not in RESPONSES:
        raise RulesError(f"{name}: response is one of {', '.join(RESPONSES)}")
    if response == "simple" and cache_mode != "route":
        raise RulesError(
            f"{name}: simple responses need cache 'route' ($context.routeKey among the HTTP API"
            " authorizer's identity sources): one yes/no cached per token would decide every route"
        )
    routes = doc.get("routes")
    if not isinstance(routes, list | tuple) or not routes or len(routes) > MAX_RULES:
        raise RulesError(f"{name}: list 1 to {MAX_RULES} routes")
    rules = []
    for route in routes:
        if isinstance(route, str):
            rules.append(parse_route(route))
        elif isinstance(route, Mapping):
            rules.append(parse_rule(route.get("method"), route.get("path"), route.get("scope")))
        else:
            raise RulesError(f"{name}: a route is an object with method, path and scope")
    rule_set = RuleSet(name, tuple(dict.fromkeys(apis)), tuple(rules), cache_mode, response)
    check(rule_set)
    return rule_set


def check(rule_set: RuleSet) -> None:
    """Refuse duplicates, and in ``token`` mode any two routes whose patterns overlap."""
    seen: set[tuple[str, tuple[tuple[int, str], ...]]] = set()
    for rule in rule_set.rules:
        key = (rule.method, rule.template.shape)
        if key in seen:
            raise RulesError(f"{rule_set.name}: {rule.describe()} is listed twice")
        seen.add(key)
    rules = rule_set.rules
    if rule_set.cache == "route":
        for a in rules:
            for b in rules:
                shared = preferred_paths(a.template, b.template)
                if (
                    set(a.methods) & set(b.methods)
                    and shared is not None
                    and not _denies_exactly(shared, b.template)
                ):
                    raise RulesError(
                        f"{rule_set.name}: {a.describe()} lies under the greedy parameter of"
                        f" {b.describe()} and has its own parameters: no policy for the greedy"
                        " route could exclude its paths alone"
                    )
        return
    for i, a in enumerate(rules):
        for b in rules[i + 1 :]:
            if set(a.methods) & set(b.methods) and overlaps(a.template, b.template):
                raise RulesError(
                    f"{rule_set.name}: {a.describe()} and {b.describe()} overlap ('*' in an"
                    " execute-api ARN also matches '/'), which a policy cached per token cannot"
                    " tell apart: use cache 'route' (README: attaching the authorizer)"
                )


def to_document(rule_set: RuleSet) -> dict[str, object]:
    """The stored and file form (what ``parse_rule_set`` reads)."""
    return {
        "name": rule_set.name,
        "apis": list(rule_set.apis),
        "cache": rule_set.cache,
        "response": rule_set.response,
        "routes": [
            {"method": r.method, "path": r.template.path, "scope": r.scope} for r in rule_set.rules
        ],
    }


# --- overlap: can one template's pattern reach another template's paths? ---------------------

_ONE = "\x00one"  # exactly one segment, any text
_REP = "\x00rep"  # zero or more segments, any text


def _as_pattern(t: Template) -> tuple[str, ...]:
    """The template's glob at segment level: a ``*`` stands for one or more whole segments,
    because the literals around it are bounded by ``/`` (an empty segment is never a path)."""
    out: list[str] = []
    for s in t.segments:
        out.extend((s.text,) if s.kind == LIT else (_ONE, _REP))
    return tuple(out)


def _as_paths(t: Template) -> tuple[str, ...]:
    """The paths the template stands for, at segment level."""
    out: list[str] = []
    for s in t.segments:
        out.extend({LIT: (s.text,), PARAM: (_ONE,), GREEDY: (_ONE, _REP)}[s.kind])
    return tuple(out)


@cache
def _intersect(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    """Do two segment patterns (literals, ``_ONE``, ``_REP``) share a path?"""
    if not a or not b:
        rest = a or b
        return all(t == _REP for t in rest)
    x, y = a[0], b[0]
    if x == _REP:  # matches nothing, or the segment b's first token stands for
        return _intersect(a[1:], b) or _intersect(a, b[1:])
    if y == _REP:
        return _intersect(a, b[1:]) or _intersect(a[1:], b)
    if _ONE in (x, y) or x == y:
        return _intersect(a[1:], b[1:])
    return False


def overlaps(a: Template, b: Template) -> bool:
    """True if a policy allowing one template's ``glob`` would also match a path of the other."""
    if not a.segments or not b.segments:
        # The root's ARN ends in "GET/": the same string as one empty segment, which the "*" of
        # a one-parameter template ("GET/*") also matches.
        other = a.segments or b.segments
        return not other or (len(other) == 1 and other[0].kind != LIT)
    return _intersect(_as_pattern(a), _as_paths(b)) or _intersect(_as_pattern(b), _as_paths(a))


# --- deciding a request ----------------------------------------------------------------------


def split_path(path: str) -> tuple[str, ...]:
    """``/orders/7`` -> ("orders", "7"); ``/`` and "" -> (). Empty segments are kept (and then
    match no template)."""
    path = path[1:] if path.startswith("/") else path
    return tuple(path.split("/")) if path else ()


def route_for(rule_set: RuleSet, method: str, path: tuple[str, ...]) -> Rule | None:
    """The rule of the route API Gateway would pick for this method and concrete path."""
    found = [r for r in rule_set.rules if method in r.methods and r.template.matches(path)]
    if not found:
        return None
    return min(found, key=lambda r: (r.template.specificity, r.method == ANY))


def rule_for_template(rule_set: RuleSet, method: str, template: Template) -> Rule | None:
    """The rule registered for the route API Gateway names (``resource``, ``routeKey``)."""
    found = [
        r for r in rule_set.rules if method in r.methods and r.template.shape == template.shape
    ]
    return min(found, key=lambda r: r.method == ANY) if found else None


# --- policies --------------------------------------------------------------------------------


def _resource(method: str, parts: Iterable[str]) -> str:
    return method + "/" + "/".join(parts)


def _overmatch(method: str, t: Template) -> list[str]:
    """Deny patterns for what ``t.glob()`` matches beyond ``t``'s own paths: a parameter's ``*``
    spanning a ``/`` (a deeper path) or matching nothing (an empty segment); a greedy parameter's
    ``*`` holding an empty segment (``parse_template`` allows it only after literals)."""
    parts = [s.text if s.kind == LIT else "*" for s in t.segments]
    out = []
    for i, s in enumerate(t.segments):
        if s.kind == LIT:
            continue
        if s.kind == PARAM:
            out.append(_resource(method, [*parts[:i], "*/*", *parts[i + 1 :]]))
        else:
            out += [_resource(method, [*parts[:i], tail]) for tail in ("/*", "*//*", "*/")]
        out.append(_resource(method, [*parts[:i], "", *parts[i + 1 :]]))
    return out


def _greedy(t: Template) -> bool:
    return bool(t.segments) and t.segments[-1].kind == GREEDY


def preferred_paths(a: Template, b: Template) -> Template | None:
    """The paths both templates match on which API Gateway picks ``a``, as a template (literal
    where either is); None if there are none. A greedy template's other segments are literals."""
    if a.specificity >= b.specificity:
        return None
    if _greedy(a) or _greedy(b):
        # The greedy one (the shorter if both are) covers the rest of the other's segments.
        g, o = (
            (a, b)
            if _greedy(a) and not (_greedy(b) and len(b.segments) < len(a.segments))
            else (b, a)
        )
        k = len(g.segments) - 1
        if len(o.segments) < k + 1:
            return None
        pairs, rest = zip(g.segments[:k], o.segments[:k], strict=True), o.segments[k:]
    elif len(a.segments) == len(b.segments):
        pairs, rest = zip(a.segments, b.segments, strict=True), ()
    else:
        return None
    shared: list[Segment] = []
    for x, y in pairs:
        if x.kind == LIT and y.kind == LIT and x.text != y.text:
            return None
        shared.append(x if x.kind == LIT else y)
    return Template("", (*shared, *rest))


def _denies_exactly(shared: Template, answered: Template) -> bool:
    """Can a Deny of ``shared.glob()`` stay off ``answered``'s own paths? Its ``*`` also matches
    deeper paths, which are ``answered``'s own when that ends in a greedy parameter."""
    return not _greedy(answered) or all(s.kind != PARAM for s in shared.segments)


@lru_cache(maxsize=1024)
def token_policy(rule_set: RuleSet, scopes: frozenset[str]) -> Statements:
    """Every route the scopes permit (``cache`` 'token'; overlap-free by ``check``)."""
    allow: dict[str, None] = {}
    deny: dict[str, None] = {}
    for rule in rule_set.rules:
        if rule.scope not in scopes:
            continue
        for method in rule.methods:
            allow[_resource(method, [rule.template.glob()])] = None
            deny.update(dict.fromkeys(_overmatch(method, rule.template)))
    return Statements(tuple(allow), tuple(deny))


@lru_cache(maxsize=1024)
def route_policy(rule_set: RuleSet, rule: Rule, method: str) -> Statements:
    """The one route being called (``cache`` 'route'), with Deny statements for the deeper paths
    its parameters would reach and for every registered route API Gateway prefers to it."""
    deny = dict.fromkeys(_overmatch(method, rule.template))
    for other in rule_set.rules:
        if method not in other.methods or other is rule:
            continue
        shared = preferred_paths(other.template, rule.template)
        if shared is not None:  # _denies_exactly holds: check() refuses the other layouts
            deny[_resource(method, [shared.glob()])] = None
    return Statements((_resource(method, [rule.template.glob()]),), tuple(deny))


def index(rule_sets: Iterable[RuleSet]) -> dict[str, RuleSet | None]:
    """Rule sets by ``<api-id>/<stage>``; an API claimed by two sets maps to None (deny)."""
    found: dict[str, RuleSet | None] = {}
    for rule_set in rule_sets:
        for api in rule_set.apis:
            found[api] = None if api in found else rule_set
    return found
