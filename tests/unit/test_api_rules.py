"""Per-API route rules (chalicelib.core.api_rules): templates, matching, and the policies built from
them, evaluated the way IAM evaluates an authorizer's policy (infra.local_gateway.policy_allows:
``*`` matches any characters, ``/`` included; an explicit Deny wins).

The central property (README, "Policies never over-match"): whatever the rule set, the token's
scopes and the path, a policy allows a path exactly when the route API Gateway
would pick for it is one the token may call (cache 'token'), or is the very route that was
answered (cache 'route'). Checked on hand-picked cases and on generated rule sets.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from chalicelib.core import api_rules
from chalicelib.core.api_rules import RulesError, RuleSet, Statements
from infra.local_gateway import policy_allows

PREFIX = "arn:aws:execute-api:us-east-1:123456789012:a1b2c3d4e5/api"


def rule_set(*routes: str, cache: str = "token", response: str = "policy") -> RuleSet:
    doc = {"apis": ["a1b2c3d4e5/api"], "routes": list(routes), "cache": cache}
    return api_rules.parse_rule_set({**doc, "response": response}, name="t")


def allows(statements: Statements, method: str, path: str) -> bool:
    doc = [
        {
            "Action": "execute-api:Invoke",
            "Effect": effect,
            "Resource": [f"{PREFIX}/{r}" for r in rs],
        }
        for effect, rs in (("Allow", statements.allow), ("Deny", statements.deny))
        if rs
    ]
    return policy_allows({"Statement": doc}, f"{PREFIX}/{method}/{path.removeprefix('/')}")


# --- templates -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "orders",
        "/orders//x",
        "/orders/",
        "/or*ders",
        "/orders/?",
        "/a/{p+}/b",
        "/a/{p}/{p}",
        "/{}",
        "/b/{bucket}/{key+}",
    ],
)
def test_malformed_path_templates_are_refused(path):
    with pytest.raises(RulesError):
        api_rules.parse_template(path)


def test_a_parameter_matches_exactly_one_segment_never_a_slash():
    t = api_rules.parse_template("/orders/{order_id}")
    assert t.matches(("orders", "7"))
    assert not t.matches(("orders", "7", "invoice"))
    assert not t.matches(("orders",))
    assert not t.matches(("orders", ""))


def test_a_greedy_parameter_matches_one_or_more_segments():
    t = api_rules.parse_template("/files/{path+}")
    assert t.matches(("files", "a"))
    assert t.matches(("files", "a", "b", "c"))
    assert not t.matches(("files",))


def test_the_most_specific_route_wins_as_in_api_gateway():
    rules = rule_set(
        "GET /orders/{id} orders:read",
        "GET /orders/export orders:export",
        "ANY /orders/{id}/items items:any",
        "GET /orders/{id}/items items:read",
        cache="route",
    )
    found = api_rules.route_for
    assert found(rules, "GET", ("orders", "export")).scope == "orders:export"  # type: ignore[union-attr]
    assert found(rules, "GET", ("orders", "7")).scope == "orders:read"  # type: ignore[union-attr]
    assert found(rules, "GET", ("orders", "7", "items")).scope == "items:read"  # type: ignore[union-attr]
    assert found(rules, "PUT", ("orders", "7", "items")).scope == "items:any"  # type: ignore[union-attr]
    assert found(rules, "GET", ("orders", "7", "other")) is None


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("GET /orders/{id}", "GET /orders/export"),  # a literal beside a parameter
        ("GET /orders/{id}", "GET /orders/{id}/items"),  # a route under a parameter
        ("GET /a/{x}/c", "GET /a/b/{y}"),  # crossed literals
        ("GET /files/{p+}", "GET /files/readme"),  # under a greedy parameter
        ("ANY /orders/{id}", "GET /orders/export"),  # ANY covers GET
    ],
)
def test_token_cache_refuses_routes_whose_patterns_overlap(first, second):
    with pytest.raises(RulesError, match="overlap"):
        rule_set(f"{first} s:one", f"{second} s:two")
    assert rule_set(f"{first} s:one", f"{second} s:two", cache="route")


@pytest.mark.parametrize(
    "routes",
    [
        ("GET /people", "GET /people/{id}", "GET /articles", "POST /articles"),
        ("GET /orders/{id}", "DELETE /orders/{id}", "GET /invoices/{id}"),
        ("GET /a/{x}/b", "GET /a/{x}/c"),
    ],
)
def test_token_cache_accepts_routes_that_do_not_overlap(routes):
    assert rule_set(*(f"{r} s:x" for r in routes))


def test_route_cache_refuses_a_parameterised_route_under_a_greedy_one():
    # A Deny of GET/users/* would also hit the greedy route's own deeper paths (users/a/b).
    with pytest.raises(RulesError, match="greedy"):
        rule_set("ANY /{proxy+} s:x", "GET /users/{id} s:y", cache="route")
    assert rule_set("ANY /{proxy+} s:x", "GET /users/me s:y", cache="route")


def test_the_same_route_twice_is_refused_whatever_its_parameter_names():
    with pytest.raises(RulesError, match="twice"):
        rule_set("GET /orders/{a} s:x", "GET /orders/{b} s:y", cache="route")


def test_simple_responses_need_a_cache_keyed_on_the_route():
    with pytest.raises(RulesError, match="routeKey"):
        rule_set("GET /orders s:x", response="simple")
    assert rule_set("GET /orders s:x", cache="route", response="simple")


@pytest.mark.parametrize(
    "doc",
    [
        {"routes": ["GET /a s:x"]},
        {"apis": [], "routes": ["GET /a s:x"]},
        {"apis": ["no-stage"], "routes": ["GET /a s:x"]},
        {"apis": ["a/b"], "routes": []},
        {"apis": ["a/b"], "routes": ["GET /a"]},
        {"apis": ["a/b"], "routes": ["GET /a two scopes"]},
        {"apis": ["a/b"], "routes": ["FETCH /a s:x"]},
        {"apis": ["a/b"], "routes": [{"method": "GET", "path": "/a", "scope": "bad\x7fscope"}]},
        {"apis": ["a/b"], "routes": ["GET /a s:x"], "cache": "sometimes"},
    ],
)
def test_malformed_rule_sets_are_refused_with_a_reason(doc):
    with pytest.raises(RulesError):
        api_rules.parse_rule_set(doc, name="t")


def test_stored_form_reads_back_to_the_same_rule_set():
    rules = rule_set("GET /orders/{id} orders:read", "ANY /orders orders:any", cache="route")
    assert api_rules.parse_rule_set(api_rules.to_document(rules)) == rules


def test_an_api_claimed_by_two_rule_sets_is_known_by_neither():
    a = rule_set("GET /a s:x")
    b = a._replace(name="other", apis=("a1b2c3d4e5/api", "zz/prod"))
    found = api_rules.index([a, b])
    assert found["a1b2c3d4e5/api"] is None
    assert found["zz/prod"] == b


# --- policies: the deeper route is never let through ------------------------------------------


def test_parameter_wildcard_never_lets_a_deeper_route_through():
    rules = rule_set("GET /people/{id} people:read")
    policy = api_rules.token_policy(rules, frozenset({"people:read"}))
    assert "GET/people/*" in policy.allow
    assert allows(policy, "GET", "/people/ada")
    assert not allows(policy, "GET", "/people/ada/salary")
    assert not allows(policy, "GET", "/people/ada/salary/2026")
    assert not allows(policy, "GET", "/people/")
    assert not allows(policy, "GET", "/people")
    assert not allows(policy, "POST", "/people/ada")


def test_token_policy_covers_every_route_the_scopes_permit_and_no_other():
    rules = rule_set(
        "GET /orders orders:read",
        "GET /orders/{id} orders:read",
        "DELETE /orders/{id} orders:write",
        "GET /invoices/{id}/pdf billing:read",
    )
    policy = api_rules.token_policy(rules, frozenset({"orders:read"}))
    assert allows(policy, "GET", "/orders")
    assert allows(policy, "GET", "/orders/7")
    assert not allows(policy, "DELETE", "/orders/7")
    assert not allows(policy, "GET", "/invoices/7/pdf")
    assert api_rules.token_policy(rules, frozenset({"other"})).allow == ()


def test_route_policy_with_a_route_under_a_parameter():
    rules = rule_set(
        "GET /people/{id} people:read", "GET /people/{id}/salary people:salary", cache="route"
    )
    person, salary = rules.rules
    policy = api_rules.route_policy(rules, person, "GET")
    assert allows(policy, "GET", "/people/ada")
    assert not allows(policy, "GET", "/people/ada/salary")
    policy = api_rules.route_policy(rules, salary, "GET")
    assert allows(policy, "GET", "/people/ada/salary")
    assert not allows(policy, "GET", "/people/ada/salary/x")
    assert not allows(policy, "GET", "/people/ada/x/salary")
    assert not allows(policy, "GET", "/people/ada")


def test_route_policy_denies_the_literal_route_api_gateway_prefers():
    rules = rule_set("GET /orders/{id} orders:read", "GET /orders/export admin:x", cache="route")
    by_id = rules.rules[0]
    policy = api_rules.route_policy(rules, by_id, "GET")
    assert allows(policy, "GET", "/orders/7")
    assert not allows(policy, "GET", "/orders/export")


def test_any_method_is_listed_verb_by_verb_never_as_a_wildcard():
    rules = rule_set("ANY /orders s:x")
    policy = api_rules.token_policy(rules, frozenset({"s:x"}))
    assert all(not r.startswith("*") for r in policy.allow)
    assert {r.split("/", 1)[0] for r in policy.allow} == set(api_rules.METHODS)
    assert not allows(policy, "GET", "/x/orders")


# --- the property, on generated rule sets ------------------------------------------------------

SEGMENTS = ["a", "b", "c"]
SCOPES = ["s1", "s2", "s3"]


@st.composite
def templates(draw: st.DrawFn) -> str:
    kinds = draw(st.lists(st.sampled_from(["a", "b", "c", "p", "p"]), max_size=3))
    if kinds and draw(st.integers(0, 5)) == 0:
        kinds = [k for k in kinds[:-1] if k != "p"] + ["g"]  # greedy: after literals only
    parts = [f"{{p{i}}}" if k == "p" else "{g+}" if k == "g" else k for i, k in enumerate(kinds)]
    return "/" + "/".join(parts)


@st.composite
def routes(draw: st.DrawFn) -> list[str]:
    found: dict[tuple[str, object], str] = {}
    for _ in range(draw(st.integers(1, 5))):
        method = draw(st.sampled_from(["GET", "GET", "POST", "ANY"]))
        path = draw(templates())
        scope = draw(st.sampled_from(SCOPES))
        found.setdefault((method, api_rules.parse_template(path).shape), f"{method} {path} {scope}")
    return list(found.values())


paths = st.lists(st.sampled_from([*SEGMENTS, "z", ""]), max_size=5).map(lambda s: "/".join(s))
methods = st.sampled_from(["GET", "POST", "DELETE"])


def valid_subset(lines: list[str], cache: str) -> RuleSet:
    """The rule set of those routes, leaving out each one the mode refuses beside the others."""
    kept: list[str] = []
    for line in lines:
        try:
            rule_set(*kept, line, cache=cache)
        except RulesError:
            continue
        kept.append(line)
    return rule_set(*kept, cache=cache)


@settings(max_examples=400, deadline=None)
@given(routes(), st.sets(st.sampled_from(SCOPES)), st.lists(st.tuples(methods, paths), max_size=12))
def test_token_policy_allows_exactly_the_routes_the_scopes_permit(lines, scopes, calls):
    rules = valid_subset(lines, "token")
    policy = api_rules.token_policy(rules, frozenset(scopes))
    for method, path in calls:
        found = api_rules.route_for(rules, method, api_rules.split_path(path))
        expected = found is not None and found.scope in scopes
        assert allows(policy, method, path) == expected, (method, path, policy)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(routes(), st.lists(st.tuples(methods, paths), max_size=12), st.data())
def test_route_policy_allows_exactly_the_route_it_answers(lines, calls, data):
    rules = valid_subset(lines, "route")
    answered = data.draw(st.sampled_from(rules.rules))
    method = data.draw(st.sampled_from(answered.methods))
    # API Gateway asks about the route it picked: one of the answered route's own paths.
    sample = tuple("z" if s.kind else s.text for s in answered.template.segments)
    assume(api_rules.route_for(rules, method, sample) == answered)
    policy = api_rules.route_policy(rules, answered, method)
    for other_method, path in [*calls, (method, data.draw(paths))]:
        found = api_rules.route_for(rules, other_method, api_rules.split_path(path))
        expected = found == answered and other_method == method
        assert allows(policy, other_method, path) == expected, (other_method, path, policy)
