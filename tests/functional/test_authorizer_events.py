"""The authorizer for any API that attaches it: the three event shapes AWS documents, rules that
the attaching team registered (nothing of theirs in Tessera's code), and how those rules are read.

Events are built as AWS's pages show them ("Input to an API Gateway Lambda authorizer" for REST
TOKEN and REQUEST, "Working with AWS Lambda authorizers for HTTP APIs" for payload 2.0) and sent to
the deployed entry point, ``chalicelib.authorizer_lambda.handler``. Policies are evaluated the way
IAM evaluates them (``infra.local_gateway.policy_allows``).
"""

from __future__ import annotations

import io
import sys
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.authorizer_lambda import handler
from chalicelib.core import config
from chalicelib.core.clock import FakeClock
from chalicelib.ops import admin
from chalicelib.ops.admin_rules import put_rules
from chalicelib.web import services
from chalicelib.web.authorizer import AuthorizerUnavailable, Unauthorized
from infra.local_gateway import policy_allows
from tests.functional.authorizer_support import Calls, Forge, reconfigure
from tests.functional.conftest import STAGE, TEST_API

ACCOUNT = "123456789012"
ORDERS_REST = "ordersrest1/prod"  # an attached REST API
ORDERS_HTTP = "ordershttp1/$default"  # an attached HTTP API
ORDER_ROUTES = [
    "GET /orders orders:read",
    "POST /orders orders:write",
    "GET /orders/{order_id} orders:read",
]


def arn(api: str, method: str, path: str) -> str:
    return f"arn:aws:execute-api:us-east-1:{ACCOUNT}:{api}/{method}{path}"


def token_event(authorization: str | None, api: str, method: str, path: str) -> dict[str, Any]:
    return {
        "type": "TOKEN",
        "authorizationToken": authorization,
        "methodArn": arn(api, method, path),
    }


def request_event(
    authorization: str | None, api: str, method: str, path: str, resource: str
) -> dict[str, Any]:
    """A REST REQUEST event, shaped as AWS's example (there: GET /request, stage test)."""
    api_id, stage = api.split("/")
    headers = {
        "X-AMZ-Date": "20170718T062915Z",
        "Accept": "*/*",
        "CloudFront-Viewer-Country": "US",
        "Host": f"{api_id}.execute-api.us-east-1.amazonaws.com",
        "User-Agent": "curl/8.5.0",
        "X-Forwarded-For": "192.0.2.10",
    }
    if authorization is not None:
        headers["Authorization"] = authorization
    return {
        "type": "REQUEST",
        "methodArn": arn(api, method, path),
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": {},
        "multiValueQueryStringParameters": {},
        "pathParameters": {},
        "stageVariables": {},
        "requestContext": {
            "path": f"/{stage}{path}",
            "accountId": ACCOUNT,
            "resourceId": "05c7jb",
            "stage": stage,
            "requestId": "b71f2b2a-7a7e-4a3b-8d1b-6d0ecf8c1e3a",
            "identity": {"apiKey": "", "sourceIp": "192.0.2.10"},
            "resourcePath": resource,
            "httpMethod": method,
            "apiId": api_id,
        },
    }


def http_event(
    authorization: str | None,
    api: str,
    method: str,
    path: str,
    route: str,
    identity: list[str] | None = None,
) -> dict[str, Any]:
    """An HTTP API payload 2.0 event, shaped as AWS's example. ``identity`` holds the identity
    sources' values; by default the Authorization header and the route key."""
    api_id, stage = api.split("/")
    route_key = f"{method} {route}"
    headers = {"accept": "*/*", "host": f"{api_id}.execute-api.us-east-1.amazonaws.com"}
    if authorization is not None:
        headers["authorization"] = authorization
    return {
        "version": "2.0",
        "type": "REQUEST",
        "routeArn": arn(api, method, path),
        "identitySource": identity if identity is not None else [authorization, route_key],
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": "",
        "cookies": [],
        "headers": headers,
        "queryStringParameters": {},
        "requestContext": {
            "accountId": ACCOUNT,
            "apiId": api_id,
            "domainName": f"{api_id}.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": api_id,
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "192.0.2.10",
                "userAgent": "curl/8.5.0",
            },
            "requestId": "id",
            "routeKey": route_key,
            "stage": stage,
            "time": "12/Mar/2027:19:03:58 +0000",
            "timeEpoch": 1804878238390,
        },
        "pathParameters": {},
        "stageVariables": {},
    }


@pytest.fixture
def forge(app_client: Any, clock: FakeClock) -> Forge:
    return Forge(services.signing_keys().current(), clock.now())


@pytest.fixture
def attach(aws: Any) -> Callable[..., Any]:
    """Register an API's rules the way a team does (``admin authorizer rules put``)."""

    def put(name: str, apis: list[str], routes: list[str], **extra: str) -> Any:
        doc = {"apis": apis, "routes": routes, **extra}
        return put_rules(services.api_rules_store(), doc, name)

    return put


def allowed(answer: dict[str, Any], api: str, method: str, path: str) -> bool:
    return policy_allows(answer["policyDocument"], arn(api, method, path))


def bearer(forge: Forge, **claims: Any) -> str:
    return "Bearer " + forge.token(**claims)


# --- an attached API, registered with the admin command ----------------------------------------


def test_api_attached_with_the_admin_command_is_protected_by_its_own_rules(
    aws, forge, capsys, monkeypatch
):
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    args = ["--stage", STAGE, "authorizer", "rules", "put", "orders", "--api", ORDERS_REST]
    for route in ORDER_ROUTES:
        args += ["--route", route]
    assert admin.main(args, configure=lambda stage: None) == 0, capsys.readouterr().err
    answer = handler(
        token_event(bearer(forge, scope="orders:read"), ORDERS_REST, "GET", "/orders/7"), None
    )
    assert allowed(answer, ORDERS_REST, "GET", "/orders/7")
    assert allowed(answer, ORDERS_REST, "GET", "/orders")
    assert not allowed(answer, ORDERS_REST, "POST", "/orders")
    # The same policy, cached per token, reaches no deeper route and no other API.
    assert not allowed(answer, ORDERS_REST, "GET", "/orders/7/invoice")
    assert not allowed(answer, TEST_API, "GET", "/people")


def test_api_without_rules_and_route_without_a_rule_are_denied(attach, forge):
    attach("orders", [ORDERS_REST], ORDER_ROUTES)
    token = bearer(forge, scope="orders:read orders:write")
    unknown_api = handler(token_event(token, "nosuchapi1/prod", "GET", "/orders"), None)
    assert not allowed(unknown_api, "nosuchapi1/prod", "GET", "/orders")
    answer = handler(token_event(token, ORDERS_REST, "DELETE", "/orders/7"), None)
    assert not allowed(answer, ORDERS_REST, "DELETE", "/orders/7")


def test_a_team_changing_its_rules_needs_no_change_to_tessera(attach, forge, clock):
    attach("orders", [ORDERS_REST], ORDER_ROUTES)
    token = bearer(forge, scope="orders:read")
    assert not allowed(
        handler(token_event(token, ORDERS_REST, "GET", "/invoices"), None),
        ORDERS_REST,
        "GET",
        "/invoices",
    )
    attach("orders", [ORDERS_REST], [*ORDER_ROUTES, "GET /invoices orders:read"])
    # A warm container re-reads the rules once their TTL has passed.
    clock.advance(config.settings().rules_cache_ttl)
    assert allowed(
        handler(token_event(token, ORDERS_REST, "GET", "/invoices"), None),
        ORDERS_REST,
        "GET",
        "/invoices",
    )


# --- the three event shapes ---------------------------------------------------------------------


def test_rest_request_event_gets_the_policy_a_token_event_gets(forge):
    token = bearer(forge, scope="people:read")
    by_token = handler(token_event(token, TEST_API, "GET", "/people/ada"), None)
    by_request = handler(
        request_event(token, TEST_API, "GET", "/people/ada", "/people/{person_id}"), None
    )
    assert by_request == by_token
    assert allowed(by_request, TEST_API, "GET", "/people/ada")
    assert not allowed(by_request, TEST_API, "GET", "/people/ada/salary")


def test_rest_request_event_on_a_route_keyed_cache_allows_the_called_route_only(attach, forge):
    attach(
        "people",
        [ORDERS_REST],
        ["GET /people/{id} people:read", "GET /people/{id}/salary people:salary"],
        cache="route",
    )
    token = bearer(forge, scope="people:read people:salary")
    person = handler(request_event(token, ORDERS_REST, "GET", "/people/ada", "/people/{id}"), None)
    assert allowed(person, ORDERS_REST, "GET", "/people/grace")  # same route, other value
    assert not allowed(person, ORDERS_REST, "GET", "/people/ada/salary")
    salary = handler(
        request_event(token, ORDERS_REST, "GET", "/people/ada/salary", "/people/{id}/salary"), None
    )
    assert allowed(salary, ORDERS_REST, "GET", "/people/ada/salary")
    reader = bearer(forge, scope="people:read")
    denied = handler(
        request_event(reader, ORDERS_REST, "GET", "/people/ada/salary", "/people/{id}/salary"), None
    )
    assert not allowed(denied, ORDERS_REST, "GET", "/people/ada/salary")


def test_rest_request_event_for_a_route_not_registered_is_denied(attach, forge):
    attach("orders", [ORDERS_REST], ORDER_ROUTES, cache="route")
    answer = handler(
        request_event(
            bearer(forge, scope="orders:read"),
            ORDERS_REST,
            "GET",
            "/orders/7/invoice",
            "/orders/{order_id}/invoice",
        ),
        None,
    )
    assert not allowed(answer, ORDERS_REST, "GET", "/orders/7/invoice")


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="no-header"),
        pytest.param({"Authorization": "Basic YWxpY2U6c2VjcmV0"}, id="basic"),
        pytest.param({"Authorization": "Bearer"}, id="scheme-only"),
    ],
)
def test_rest_request_event_without_one_bearer_token_is_401(forge, headers):
    event = request_event(None, TEST_API, "GET", "/people", "/people")
    event["headers"].update(headers)
    event["multiValueHeaders"] = {k: [v] for k, v in event["headers"].items()}
    with pytest.raises(Unauthorized):
        handler(event, None)


def test_rest_request_event_with_two_authorization_headers_is_401(forge):
    token = bearer(forge)
    event = request_event(token, TEST_API, "GET", "/people", "/people")
    event["multiValueHeaders"]["Authorization"] = [token, token]
    with pytest.raises(Unauthorized):
        handler(event, None)


def test_http_api_with_policy_responses_gets_an_iam_policy(attach, forge):
    attach("orders-http", [ORDERS_HTTP], ORDER_ROUTES)
    token = bearer(forge, scope="orders:read", sub="user-9", client_id="app-3", jti="j-1")
    answer = handler(http_event(token, ORDERS_HTTP, "GET", "/orders/7", "/orders/{order_id}"), None)
    assert allowed(answer, ORDERS_HTTP, "GET", "/orders/7")
    assert allowed(answer, ORDERS_HTTP, "GET", "/orders")
    assert not allowed(answer, ORDERS_HTTP, "POST", "/orders")
    assert not allowed(answer, ORDERS_HTTP, "GET", "/orders/7/invoice")
    assert answer["principalId"] == "user-9"
    assert answer["context"] == {
        "sub": "user-9",
        "client_id": "app-3",
        "scope": "orders:read",
        "jti": "j-1",
    }


def test_http_api_simple_responses_say_yes_only_to_routes_the_scopes_permit(attach, forge):
    attach("orders-http", [ORDERS_HTTP], ORDER_ROUTES, cache="route", response="simple")
    token = bearer(forge, scope="orders:read", sub="user-9", client_id="app-3", jti="j-1")
    yes = handler(http_event(token, ORDERS_HTTP, "GET", "/orders/7", "/orders/{order_id}"), None)
    assert yes == {
        "isAuthorized": True,
        "context": {"sub": "user-9", "client_id": "app-3", "scope": "orders:read", "jti": "j-1"},
    }
    assert handler(http_event(token, ORDERS_HTTP, "POST", "/orders", "/orders"), None) == {
        "isAuthorized": False
    }
    deeper = http_event(token, ORDERS_HTTP, "GET", "/orders/7/invoice", "/orders/{id}/invoice")
    assert handler(deeper, None) == {"isAuthorized": False}


def test_http_api_simple_response_is_no_unless_the_route_is_in_the_cache_key(attach, forge):
    attach("orders-http", [ORDERS_HTTP], ORDER_ROUTES, cache="route", response="simple")
    token = bearer(forge, scope="orders:read")
    event = http_event(token, ORDERS_HTTP, "GET", "/orders", "/orders", identity=[token])
    # Cached per token alone, this "yes" would also answer POST /orders.
    assert handler(event, None) == {"isAuthorized": False}


def test_http_api_default_route_is_decided_by_the_path(attach, forge):
    attach("orders-http", [ORDERS_HTTP], ORDER_ROUTES)
    event = http_event(bearer(forge, scope="orders:read"), ORDERS_HTTP, "GET", "/orders/7", "")
    event["routeKey"] = event["requestContext"]["routeKey"] = "$default"
    answer = handler(event, None)
    assert allowed(answer, ORDERS_HTTP, "GET", "/orders/7")
    assert not allowed(answer, ORDERS_HTTP, "GET", "/orders/7/x")


SHAPES = {
    "token": lambda auth: token_event(auth, TEST_API, "GET", "/people"),
    "request": lambda auth: request_event(auth, TEST_API, "GET", "/people", "/people"),
    "http": lambda auth: http_event(auth, TEST_API, "GET", "/people", "/people"),
}


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize(
    "claims",
    [
        pytest.param(
            {"exp": 1_700_000_000, "iat": 1_699_999_000, "nbf": 1_699_999_000}, id="expired"
        ),
        pytest.param({"iss": "https://evil.example"}, id="other-issuer"),
        pytest.param({"aud": "https://other.example"}, id="other-audience"),
    ],
)
def test_every_event_shape_rejects_an_invalid_token_with_401(forge, shape, claims):
    with pytest.raises(Unauthorized):
        handler(SHAPES[shape](bearer(forge, **claims)), None)


@pytest.mark.parametrize("shape", SHAPES)
def test_every_event_shape_rejects_a_revoked_token_with_401(forge, aws, monkeypatch, shape):
    reconfigure(monkeypatch, TESSERA_AUTHORIZER_CHECKS_REVOCATION="true")
    aws.client("dynamodb").put_item(
        TableName=f"tessera-{STAGE}",
        Item={"pk": {"S": "JTI#gone"}, "sk": {"S": "JTI"}, "revoked": {"BOOL": True}},
    )
    with pytest.raises(Unauthorized):
        handler(SHAPES[shape](bearer(forge, jti="gone")), None)
    context = handler(SHAPES[shape](bearer(forge, jti="live")), None)["context"]
    assert isinstance(context, dict)
    assert context["jti"] == "live"


@pytest.mark.parametrize("shape", SHAPES)
def test_every_event_shape_passes_the_same_flat_string_context(forge, shape):
    token = bearer(forge, sub="u-1", client_id="c-1", scope="people:read", jti="j-9")
    answer = handler(SHAPES[shape](token), None)
    assert answer["principalId"] == "u-1"
    assert answer["context"] == {
        "sub": "u-1",
        "client_id": "c-1",
        "scope": "people:read",
        "jti": "j-9",
    }


# --- malformed and unknown events: a deny, never an allow or a crash ---------------------------


def _not_allowed(run: Callable[[], Any]) -> None:
    try:
        answer = run()
    except (Unauthorized, AuthorizerUnavailable):
        return
    if "isAuthorized" in answer:
        assert answer["isAuthorized"] is False
    else:
        assert not any(s["Effect"] == "Allow" for s in answer["policyDocument"]["Statement"])


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda t: {"type": "WEBSOCKET", "authorizationToken": t}, id="unknown-type"),
        pytest.param(lambda t: {**SHAPES["http"](t), "version": "3.0"}, id="unknown-version"),
        pytest.param(lambda t: {**SHAPES["token"](t), "type": "token"}, id="type-lower-case"),
        pytest.param(lambda t: {**SHAPES["token"](t), "methodArn": None}, id="no-method-arn"),
        pytest.param(lambda t: {**SHAPES["token"](t), "methodArn": "arn:aws:s3:::b"}, id="s3-arn"),
        pytest.param(lambda t: {**SHAPES["token"](t), "methodArn": ["x"]}, id="arn-list"),
        pytest.param(
            lambda t: {**SHAPES["request"](t), "headers": [["Authorization", t]]}, id="headers-list"
        ),
        pytest.param(lambda t: {**SHAPES["request"](t), "headers": None}, id="headers-null"),
        pytest.param(lambda t: {**SHAPES["request"](t), "resource": 7}, id="resource-number"),
        pytest.param(
            lambda t: {**SHAPES["request"](t), "resource": "/people/*"}, id="resource-glob"
        ),
        pytest.param(lambda t: {**SHAPES["http"](t), "routeArn": ""}, id="no-route-arn"),
        pytest.param(
            lambda t: {**SHAPES["http"](t), "routeKey": ["GET /people"]}, id="route-key-list"
        ),
        pytest.param(lambda t: {**SHAPES["http"](t), "identitySource": "x"}, id="identity-string"),
        pytest.param(
            lambda t: {**SHAPES["http"](t), "headers": {"authorization": [t]}}, id="header-list"
        ),
        pytest.param(
            lambda t: {
                **SHAPES["token"](t),
                "methodArn": SHAPES["token"](t)["methodArn"].replace("/GET/", "/*/"),
            },
            id="wildcard-method",
        ),
    ],
)
def test_malformed_or_unknown_event_is_never_an_allow(forge, make):
    _not_allowed(lambda: handler(make(bearer(forge)), None))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(shape=st.sampled_from(sorted(SHAPES)), key=st.text(max_size=16), value=json_values)
def test_any_changed_event_member_is_answered_without_a_crash(forge, shape, key, value):
    """Whatever one member of an event becomes, the answer is an allow for a registered route the
    token may call, a deny, a 401 or a fault; never any other exception."""
    event = SHAPES[shape](bearer(forge, scope="articles:read"))
    event[key] = value
    try:
        answer = handler(event, None)
    except (Unauthorized, AuthorizerUnavailable):
        return
    if "isAuthorized" not in answer:
        # Whatever was changed, only the token's own routes on the demo API can be allowed.
        assert not allowed(answer, TEST_API, "GET", "/people")


# --- reading the rules ------------------------------------------------------------------------


def test_rules_are_read_once_per_cold_container_then_once_per_rules_ttl(forge, clock):
    reads = Calls("dynamodb", "dynamodb", "Query")
    token = bearer(forge, exp=int(clock.now()) + 3600)
    for _ in range(5):
        handler(token_event(token, TEST_API, "GET", "/people"), None)
    assert reads.count == 1
    clock.advance(config.settings().rules_cache_ttl)
    handler(token_event(token, TEST_API, "GET", "/people"), None)
    assert reads.count == 2


def test_rules_outage_keeps_the_last_rules_for_the_stale_bound_then_fails_closed(forge, clock):
    token = bearer(forge, exp=int(clock.now()) + 7200)
    event = token_event(token, TEST_API, "GET", "/people")
    assert allowed(handler(event, None), TEST_API, "GET", "/people")
    reads = Calls("dynamodb", "dynamodb", "Query")
    reads.failing = True
    clock.advance(config.settings().rules_cache_ttl)
    assert allowed(handler(event, None), TEST_API, "GET", "/people")
    clock.advance(config.settings().key_stale_max)
    with pytest.raises(AuthorizerUnavailable):
        handler(event, None)


def test_rules_unreadable_on_a_cold_start_fail_closed(forge):
    reads = Calls("dynamodb", "dynamodb", "Query")
    reads.failing = True
    with pytest.raises(AuthorizerUnavailable):
        handler(token_event(bearer(forge), TEST_API, "GET", "/people"), None)


def test_an_api_claimed_by_two_stored_rule_sets_is_denied(aws, attach, forge):
    attach("orders", [ORDERS_REST], ORDER_ROUTES)
    # Written past the admin command (which refuses it), as a race of two operators could.
    from chalicelib.core.api_rules import parse_rule_set

    rogue = parse_rule_set(
        {"apis": [ORDERS_REST], "routes": ["ANY /{proxy+} orders:read"]}, name="rogue"
    )
    services.api_rules_store().put(rogue, 0)
    answer = handler(
        token_event(bearer(forge, scope="orders:read"), ORDERS_REST, "GET", "/orders"), None
    )
    assert not allowed(answer, ORDERS_REST, "GET", "/orders")


def test_a_stored_rule_set_that_no_longer_parses_denies_only_its_own_apis(aws, attach, forge):
    attach("orders", [ORDERS_REST], ORDER_ROUTES)
    aws.client("dynamodb").update_item(
        TableName=f"tessera-{STAGE}",
        Key={"pk": {"S": "APIRULES"}, "sk": {"S": "API#orders"}},
        UpdateExpression="SET #c = :c",
        ExpressionAttributeNames={"#c": "cache"},
        ExpressionAttributeValues={":c": {"S": "forever"}},
    )
    token = bearer(forge, scope="orders:read people:read")
    assert not allowed(
        handler(token_event(token, ORDERS_REST, "GET", "/orders"), None),
        ORDERS_REST,
        "GET",
        "/orders",
    )
    assert allowed(
        handler(token_event(token, TEST_API, "GET", "/people"), None), TEST_API, "GET", "/people"
    )
