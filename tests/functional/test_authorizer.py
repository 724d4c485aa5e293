"""The authorizer where it meets the rest of the system: tokens from the token endpoint, the clock,
the key store (public set only, unknown-kid floods, outages), the revocation check, the RFC 6750
answers over HTTP (through infra/local_gateway.py, as in the local stack) and the demo API.

Forged-token rules are in tests/functional/test_authorizer_rules.py; each test here gets a fresh
world.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from chalicelib.core.clock import FakeClock
from chalicelib.core.config import settings
from chalicelib.store import aws as aws_clients
from chalicelib.tokens import access_tokens, key_objects, keys
from chalicelib.web import services
from chalicelib.web.authorizer import AuthorizerUnavailable
from tests.functional.authorizer_support import (
    ARN_PREFIX,
    AUTHORIZER,
    ENTRY_POINTS,
    Calls,
    Forge,
    Invoke,
    allowed_routes,
    es256,
    invoker,
    jws,
    reconfigure,
    rejecter,
)
from tests.functional.conftest import AUDIENCE, ISSUER, STAGE, basic, body, form_post


@pytest.fixture
def forge(app_client: Any, clock: FakeClock) -> Forge:
    return Forge(services.signing_keys().current(), clock.now())


@pytest.fixture(params=ENTRY_POINTS)
def invoke(app_client: Any, request: pytest.FixtureRequest) -> Invoke:
    return invoker(app_client, request.param)


@pytest.fixture
def rejects(invoke: Invoke) -> Callable[[str], None]:
    return rejecter(invoke)


@pytest.fixture
def secret_reads(app_client: Any) -> Calls:
    return Calls("secretsmanager", "secrets-manager", "GetSecretValue")


# --- tokens over time ------------------------------------------------------------------------


def test_token_from_the_token_endpoint_is_accepted(invoke, app_client, make_client):
    c = make_client(scopes=["people:read", "articles:write"])
    r = form_post(
        app_client,
        "/oauth2/token",
        {"grant_type": "client_credentials"},
        {"Authorization": basic(c["client_id"], c["client_secret"])},
    )
    answer = invoke("Bearer " + body(r)["access_token"])
    assert allowed_routes(answer) == ["GET/people", "GET/people/*", "POST/articles"]
    assert answer["context"]["client_id"] == c["client_id"]


def test_token_is_rejected_once_the_clock_passes_expiry_and_leeway(invoke, rejects, forge, clock):
    token = forge.token(exp=forge.now + 60)
    assert allowed_routes(invoke("Bearer " + token))
    clock.advance(60 + settings().clock_leeway)
    rejects("Bearer " + token)


def test_leeway_is_capped_at_sixty_seconds(monkeypatch, rejects, forge):
    reconfigure(monkeypatch, TESSERA_CLOCK_LEEWAY="3600")
    rejects("Bearer " + forge.token(exp=forge.now - 61))


def test_validator_caps_leeway_whatever_the_caller_passes(forge):
    # Introspection and the authorizer share the validator; neither can widen the 60 s bound.
    token = forge.token(iat=forge.now - 1000, nbf=forge.now - 1000, exp=forge.now - 61)
    with pytest.raises(access_tokens.InvalidToken, match="expired"):
        access_tokens.validate(
            token,
            services.verifying_keys().verifier,
            issuer=ISSUER,
            audience=AUDIENCE,
            now=forge.now,
            leeway=3600,
        )


# --- keys: public set only, unknown kids, outages --------------------------------------------


def test_authorizer_reads_only_the_public_key_set(app_client, forge, invoke):
    seen: list[str] = []

    def record(params: dict[str, Any], **kwargs: Any) -> None:
        seen.append(params["SecretId"])

    # Registered after the forge fixture read the private set (as the token API would).
    aws_clients.client("secretsmanager").meta.events.register(
        "provide-client-params.secrets-manager.GetSecretValue", record
    )
    invoke("Bearer " + forge.token())
    assert seen == [f"tessera/{STAGE}/public-keys"]


def test_unknown_kid_flood_reads_the_key_store_at_most_once_per_interval(
    invoke, rejects, forge, clock, secret_reads
):
    invoke("Bearer " + forge.token())  # keys loaded
    before = secret_reads.count
    for i in range(25):
        rejects("Bearer " + forge.token(forge.header(kid=f"made-up-{i}")))
    assert secret_reads.count - before <= 1
    clock.advance(keys.UNKNOWN_KID_REFRESH_INTERVAL)
    for i in range(25):
        rejects("Bearer " + forge.token(forge.header(kid=f"more-made-up-{i}")))
    assert secret_reads.count - before <= 2


def test_new_key_is_found_by_one_refresh_before_the_cache_expires(invoke, forge, aws, clock):
    invoke("Bearer " + forge.token())  # the cache holds the current set
    sm = aws.client("secretsmanager")
    public_id = f"tessera/{STAGE}/public-keys"
    entries = keys.parse_key_set(sm.get_secret_value(SecretId=public_id)["SecretString"])
    fresh = keys.new_key_entry("fresh-key", "next", int(clock.now()))
    public = keys.public_entries([fresh])
    sm.put_secret_value(SecretId=public_id, SecretString=keys.dump_key_set(entries + public))
    signer = key_objects.load_signing_key(fresh.jwk)
    assert isinstance(signer.key, ec.EllipticCurvePrivateKey)
    fresh_key: ec.EllipticCurvePrivateKey = signer.key
    token = jws(forge.header(kid="fresh-key"), forge.claims(), lambda d: es256(fresh_key, d))
    assert allowed_routes(invoke("Bearer " + token))


def test_known_keys_keep_working_while_the_key_store_is_down(invoke, forge, clock, secret_reads):
    invoke("Bearer " + forge.token())
    secret_reads.failing = True
    clock.advance(settings().key_cache_ttl + 1)  # the cache wants a re-read; the store is down
    assert allowed_routes(invoke("Bearer " + forge.token()))


def test_key_store_outage_past_the_stale_bound_fails_closed(invoke, forge, clock, secret_reads):
    invoke("Bearer " + forge.token())
    secret_reads.failing = True
    clock.advance(settings().key_stale_max + 1)
    with pytest.raises(AuthorizerUnavailable):
        invoke("Bearer " + forge.token())


def test_key_store_down_on_a_cold_start_fails_closed(invoke, forge, secret_reads):
    secret_reads.failing = True
    with pytest.raises(AuthorizerUnavailable):
        invoke("Bearer " + forge.token())


def test_key_store_outage_is_not_asked_on_every_call(invoke, forge, clock, secret_reads):
    invoke("Bearer " + forge.token())
    secret_reads.failing = True
    clock.advance(settings().key_cache_ttl + 1)
    before = secret_reads.count
    for _ in range(20):
        invoke("Bearer " + forge.token())
    assert secret_reads.count - before == 1


def test_malformed_public_key_set_fails_closed(invoke, forge, aws):
    aws.client("secretsmanager").put_secret_value(
        SecretId=f"tessera/{STAGE}/public-keys", SecretString='{"keys": [{"state": "current"}]}'
    )
    with pytest.raises(AuthorizerUnavailable):
        invoke("Bearer " + forge.token())


def test_fault_answer_carries_no_detail(invoke, forge, secret_reads):
    secret_reads.failing = True
    with pytest.raises(AuthorizerUnavailable) as caught:
        invoke("Bearer " + forge.token())
    assert str(caught.value) == "authorizer unavailable"
    assert caught.value.__cause__ is None
    assert caught.value.__context__ is None


def test_unparsable_method_arn_is_a_fault_not_an_allow(app_client, forge):
    with pytest.raises(AuthorizerUnavailable):
        app_client.lambda_.invoke(
            AUTHORIZER,
            {
                "type": "TOKEN",
                "authorizationToken": "Bearer " + forge.token(),
                "methodArn": "nonsense",
            },
        )


@pytest.mark.parametrize(
    "malformed",
    [None, [], "Bearer x", {}, {"methodArn": ARN_PREFIX + "/GET/people"}, {"type": "TOKEN"}],
)
def test_plain_handler_never_allows_an_event_that_is_not_api_gateways(app_client, forge, malformed):
    """The deployed entry point reads the event itself: without a token it is 401, with a token
    but no method ARN a fault; never a policy, never a KeyError."""
    from chalicelib.authorizer_lambda import handler
    from chalicelib.web.authorizer import Unauthorized

    with pytest.raises(Unauthorized):
        handler(malformed, None)
    with pytest.raises(AuthorizerUnavailable):
        handler({"type": "TOKEN", "authorizationToken": "Bearer " + forge.token()}, None)


# --- revocation ------------------------------------------------------------------------------


def _mark(session: boto3.Session, pk: str, sk: str, revoked: bool) -> None:
    session.client("dynamodb").put_item(
        TableName=f"tessera-{STAGE}",
        Item={"pk": {"S": pk}, "sk": {"S": sk}, "revoked": {"BOOL": revoked}},
    )


@pytest.fixture
def revocation_on(monkeypatch: pytest.MonkeyPatch, app_client: Any) -> None:
    reconfigure(monkeypatch, TESSERA_AUTHORIZER_CHECKS_REVOCATION="true")


def test_deny_listed_jti_is_allowed_when_the_check_is_off(invoke, forge, aws):
    _mark(aws, "JTI#revoked-jti", "JTI", True)
    assert allowed_routes(invoke("Bearer " + forge.token(jti="revoked-jti")))


def test_deny_listed_jti_is_rejected_when_the_check_is_on(revocation_on, rejects, forge, aws):
    _mark(aws, "JTI#revoked-jti", "JTI", True)
    rejects("Bearer " + forge.token(jti="revoked-jti"))


def test_revoked_family_is_rejected_when_the_check_is_on(revocation_on, rejects, forge, aws):
    _mark(aws, "FAMILY#fam-1", "FAMILY", True)
    rejects("Bearer " + forge.token(sid="fam-1"))


def test_live_family_is_allowed_when_the_check_is_on(revocation_on, invoke, forge, aws):
    _mark(aws, "FAMILY#fam-2", "FAMILY", False)
    assert allowed_routes(invoke("Bearer " + forge.token(sid="fam-2")))


def test_revocation_check_is_one_read_per_authorization(revocation_on, invoke, forge, aws):
    _mark(aws, "FAMILY#fam-3", "FAMILY", False)
    invoke("Bearer " + forge.token(sid="fam-3"))  # a warm container: rules and keys cached
    calls: list[str] = []
    aws_clients.client("dynamodb").meta.events.register(
        "before-call.dynamodb", lambda model, **kwargs: calls.append(model.name)
    )
    invoke("Bearer " + forge.token(sid="fam-3"))
    assert calls == ["BatchGetItem"]


def test_revocation_store_down_fails_closed(revocation_on, invoke, forge):
    reads = Calls("dynamodb", "dynamodb", "BatchGetItem")
    reads.failing = True
    with pytest.raises(AuthorizerUnavailable):
        invoke("Bearer " + forge.token())


# --- the demo's routes and its registered rules agree -----------------------------------------


def test_every_demo_route_behind_the_authorizer_has_a_registered_rule():
    import app as app_module
    from infra.seed import demo_rules

    protected = {
        (method, path)
        for path, methods in app_module.app.routes.items()
        for method, entry in methods.items()
        if entry.authorizer is not None
    }
    assert protected == {(r.method, r.template.path) for r in demo_rules(["x/y"]).rules}


def test_authorizer_cache_ttl_is_the_documented_one():
    import app as app_module

    registered = app_module.tessera_authorizer.config.ttl_seconds
    assert registered == 300


# --- RFC 6750 answers over HTTP (the local stack's gateway responses) -----------------------


@pytest.fixture
def http(app_client: Any, aws: boto3.Session) -> Iterator[Any]:
    """The test client's HTTP side, answering like the local stack (infra/local_gateway.py),
    with the demo table seeded as ``make local`` seeds it."""
    from infra import local_gateway
    from infra.seed import seed_demo

    seed_demo(aws, STAGE)
    local_gateway.install()
    try:
        yield app_client.http
    finally:
        local_gateway.uninstall()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": "Bearer " + token}


def issued_token(app_client: Any, make_client: Any, scopes: list[str]) -> str:
    c = make_client(scopes=scopes)
    r = form_post(
        app_client,
        "/oauth2/token",
        {"grant_type": "client_credentials"},
        {"Authorization": basic(c["client_id"], c["client_secret"])},
    )
    assert r.status_code == 200, r.body
    token: str = body(r)["access_token"]
    return token


def test_request_without_token_gets_401_challenge_without_error_code(http):
    r = http.get("/people")
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"] == 'Bearer realm="tessera"'


def test_request_without_token_gets_a_json_body_without_error_code(http):
    r = http.get("/people")
    assert r.status_code == 401
    assert r.headers["Content-Type"] == "application/json"
    found = body(r)
    assert set(found) == {"error_description"}  # RFC 6750 §3.1: no error code
    assert "Bearer" in found["error_description"]


@pytest.mark.parametrize(
    ("method", "path", "headers"),
    [
        ("GET", "/nothing-here", {}),
        ("GET", "/people/ada/friends", {}),
        ("DELETE", "/people", {}),
        ("PUT", "/articles", {"Authorization": "Bearer x.y.z"}),
        ("GET", "/nothing-here", {"Authorization": "Bearer x.y.z"}),
    ],
)
def test_unknown_route_gets_404_not_found_in_json(http, method, path, headers):
    r = http.request(method, path, headers=headers)
    assert r.status_code == 404
    assert r.headers["Content-Type"] == "application/json"
    assert body(r)["error"] == "not_found"


def test_request_with_another_scheme_gets_401_challenge_without_error_code(http):
    r = http.get("/people", headers={"Authorization": "Basic YWxpY2U6c2VjcmV0"})
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"] == 'Bearer realm="tessera"'


def test_invalid_token_gets_401_invalid_token(http, forge):
    r = http.get("/people", headers=bearer(forge.token(iss="https://evil.example")))
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"] == 'Bearer realm="tessera", error="invalid_token"'
    assert body(r)["error"] == "invalid_token"


def test_expired_token_gets_401_invalid_token_so_the_client_refreshes(http, forge, clock):
    token = forge.token()
    clock.advance(900 + settings().clock_leeway)
    r = http.get("/people", headers=bearer(token))
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"] == 'Bearer realm="tessera", error="invalid_token"'


def test_missing_scope_gets_403_insufficient_scope_naming_the_scope(http, forge):
    r = http.post("/articles", headers=bearer(forge.token(scope="articles:read")), body=b"{}")
    assert r.status_code == 403
    assert r.headers["WWW-Authenticate"] == (
        'Bearer realm="tessera", error="insufficient_scope", scope="articles:write"'
    )
    assert body(r)["scope"] == "articles:write"


def test_authorizer_fault_gets_503_with_retry_after(http, forge, secret_reads):
    secret_reads.failing = True
    r = http.get("/people", headers=bearer(forge.token()))
    assert r.status_code == 503
    assert r.headers["Retry-After"] == "2"
    assert body(r)["error"] == "temporarily_unavailable"


# --- the demo API with a token from the token endpoint ------------------------------------


def test_people_are_listed_with_people_read(http, app_client, make_client):
    token = issued_token(app_client, make_client, ["people:read"])
    r = http.get("/people", headers=bearer(token))
    assert r.status_code == 200
    assert {p["id"] for p in body(r)["people"]} >= {"ada", "grace", "alan"}


def test_one_person_is_read_with_people_read(http, app_client, make_client):
    token = issued_token(app_client, make_client, ["people:read"])
    r = http.get("/people/grace", headers=bearer(token))
    assert r.status_code == 200
    assert body(r)["name"] == "Grace Hopper"


def test_unknown_person_is_404(http, app_client, make_client):
    token = issued_token(app_client, make_client, ["people:read"])
    assert http.get("/people/nobody", headers=bearer(token)).status_code == 404


def test_articles_are_listed_with_articles_read(http, app_client, make_client):
    token = issued_token(app_client, make_client, ["articles:read"])
    r = http.get("/articles", headers=bearer(token))
    assert r.status_code == 200
    assert "welcome" in {a["id"] for a in body(r)["articles"]}


def test_people_read_token_cannot_read_articles(http, app_client, make_client):
    token = issued_token(app_client, make_client, ["people:read"])
    r = http.get("/articles", headers=bearer(token))
    assert r.status_code == 403
    assert 'scope="articles:read"' in r.headers["WWW-Authenticate"]


def test_article_is_created_with_articles_write_and_authored_by_the_subject(
    http, app_client, make_client
):
    c = make_client(scopes=["articles:read", "articles:write"])
    r = form_post(
        app_client,
        "/oauth2/token",
        {"grant_type": "client_credentials"},
        {"Authorization": basic(c["client_id"], c["client_secret"])},
    )
    token = body(r)["access_token"]
    r = http.post(
        "/articles",
        headers={**bearer(token), "Content-Type": "application/json"},
        body=b'{"title": "Hello", "body": "First post"}',
    )
    assert r.status_code == 201, r.body
    created = body(r)
    assert created["author"] == c["client_id"]  # client_credentials: sub is the client id
    listed = body(http.get("/articles", headers=bearer(token)))["articles"]
    assert created["id"] in {a["id"] for a in listed}


@pytest.mark.parametrize(
    "content_type", [None, "text/plain", "application/x-www-form-urlencoded", "application/jsonx"]
)
def test_article_body_that_is_not_json_is_refused_with_415(http, forge, content_type):
    headers = bearer(forge.token(scope="articles:read articles:write"))
    if content_type is not None:
        headers["Content-Type"] = content_type
    before = body(http.get("/articles", headers=headers))["articles"]
    r = http.post("/articles", headers=headers, body=b'{"title": "Hello", "body": "First post"}')
    assert r.status_code == 415
    assert r.headers["Content-Type"] == "application/json"
    assert body(r)["error"] == "invalid_request"
    assert body(http.get("/articles", headers=headers))["articles"] == before


def test_article_json_with_a_charset_is_accepted(http, forge):
    r = http.post(
        "/articles",
        headers={
            **bearer(forge.token(scope="articles:write")),
            "Content-Type": "application/json; charset=utf-8",
        },
        body=b'{"title": "Hello", "body": "First post"}',
    )
    assert r.status_code == 201, r.body


def test_article_without_title_is_invalid_request(http, forge):
    r = http.post(
        "/articles",
        headers={**bearer(forge.token()), "Content-Type": "application/json"},
        body=b'{"body": "no title"}',
    )
    assert r.status_code == 400
    assert body(r)["error"] == "invalid_request"


# --- what AWS answers: infra/gateway-responses.yaml --------------------------------------------


def _gateway_responses() -> dict[str, Any]:
    from pathlib import Path

    import yaml

    doc = yaml.safe_load(Path("infra/gateway-responses.yaml").read_text())
    found: dict[str, Any] = doc["Resources"]["RestAPI"]["Properties"]["DefinitionBody"][
        "x-amazon-apigateway-gateway-responses"
    ]
    return found


def test_aws_unauthorized_answer_is_the_local_invalid_token_answer():
    from infra import local_gateway

    aws_401 = _gateway_responses()["UNAUTHORIZED"]
    local_401 = local_gateway.invalid_token()
    assert aws_401["statusCode"] == local_401.CODE == 401
    header = aws_401["responseParameters"]["gatewayresponse.header.WWW-Authenticate"]
    assert header == "'" + local_401.headers["WWW-Authenticate"] + "'"
    assert json.loads(aws_401["responseTemplates"]["application/json"]) == json.loads(
        local_401.body or b""
    )


def test_aws_access_denied_answer_is_insufficient_scope_without_the_scope():
    from infra import local_gateway

    aws_403 = _gateway_responses()["ACCESS_DENIED"]
    local_403 = local_gateway.insufficient_scope(None)
    assert aws_403["statusCode"] == local_403.CODE == 403
    header = aws_403["responseParameters"]["gatewayresponse.header.WWW-Authenticate"]
    assert header == "'" + local_403.headers["WWW-Authenticate"] + "'"


def test_aws_missing_authentication_token_answer_is_the_local_not_found_answer():
    from infra import local_gateway

    aws_404 = _gateway_responses()["MISSING_AUTHENTICATION_TOKEN"]
    local_404 = local_gateway.not_found()
    assert aws_404["statusCode"] == local_404.CODE == 404
    assert json.loads(aws_404["responseTemplates"]["application/json"]) == json.loads(
        local_404.body or b""
    )


def test_aws_gateway_responses_cover_every_answer_the_gateway_itself_gives():
    assert set(_gateway_responses()) >= {
        "UNAUTHORIZED",
        "ACCESS_DENIED",
        "MISSING_AUTHENTICATION_TOKEN",
        "AUTHORIZER_CONFIGURATION_ERROR",
        "AUTHORIZER_FAILURE",
        "THROTTLED",
        "DEFAULT_4XX",  # every other 4xx of the gateway (e.g. REQUEST_TOO_LARGE)
        "DEFAULT_5XX",  # every other 5xx (e.g. INTEGRATION_TIMEOUT)
    }


@pytest.mark.parametrize("response_type", sorted(_gateway_responses()))
def test_every_aws_gateway_response_has_the_readmes_json_error_shape(response_type):
    spec = _gateway_responses()[response_type]
    template = spec["responseTemplates"]["application/json"]
    # The only variable used: the response type, never the request's input.
    assert set(re.findall(r"\$[\w.]+", template)) <= {"$context.error.responseType"}
    rendered = json.loads(template.replace("$context.error.responseType", "REQUEST_TOO_LARGE"))
    assert set(rendered) == {"error", "error_description"}
    assert re.fullmatch(r"[a-z_]+", rendered["error"])


@pytest.mark.parametrize("response_type", ["AUTHORIZER_CONFIGURATION_ERROR", "AUTHORIZER_FAILURE"])
def test_aws_authorizer_failure_is_503_with_retry_after(response_type):
    from infra import local_gateway

    found = _gateway_responses()[response_type]
    local_503 = local_gateway.unavailable()
    assert found["statusCode"] == local_503.CODE == 503
    assert found["responseParameters"]["gatewayresponse.header.Retry-After"] == "'2'"


def test_openid_configuration_names_the_jwks_for_http_api_jwt_authorizers(app_client):
    # API Gateway's JWT authorizer reads <issuer>/.well-known/openid-configuration for jwks_uri.
    doc = body(app_client.http.get("/.well-known/openid-configuration"))
    assert doc["issuer"] == ISSUER
    assert doc["jwks_uri"] == ISSUER + "/.well-known/jwks.json"
    assert doc == body(app_client.http.get("/.well-known/oauth-authorization-server"))
