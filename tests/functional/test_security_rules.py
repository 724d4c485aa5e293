"""Security rules (README, "Security", and the RFC sections named below) that no other test file
proved, each through the HTTP API (or the authorizer Lambda) the way an outside test battery
drives it.

The audit that produced this file mapped every rule to its tests; most live next to the code they
cover (test_token_endpoint, test_client_auth, test_forms, test_refresh, test_revocation,
test_introspection, test_metadata, test_authorizer*, test_faults, test_logging, test_infra).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from chalicelib.web import services
from tests.functional.authorizer_support import AUTHORIZER, event, invoker, reconfigure, rejecter
from tests.functional.conftest import STAGE, basic, body, form_post
from tests.functional.refresh_support import (
    auth,
    claims,
    introspect,
    login,
    password_client,
    revoke,
)

TOKEN = "/oauth2/token"
FORM = "application/x-www-form-urlencoded"
OAUTH_ENDPOINTS = ["/oauth2/token", "/oauth2/revoke", "/oauth2/introspect"]
CHALLENGE = 'Basic realm="tessera", charset="UTF-8"'
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def header_names(resp: Any) -> set[str]:
    return {k.lower() for k in resp.headers}


def text_of(resp: Any) -> str:
    raw = resp.body
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw or "")


@pytest.fixture
def client(make_client: Any) -> dict[str, Any]:
    return dict(make_client())


def cc(app_client: Any, client: dict[str, Any], **params: str) -> Any:
    return form_post(
        app_client,
        TOKEN,
        {"grant_type": "client_credentials", **params},
        {"Authorization": basic(client["client_id"], client["client_secret"])},
    )


# --- token endpoint (RFC 6749 §3.2, §5) ------------------------------------------------------


@pytest.mark.parametrize("path", OAUTH_ENDPOINTS)
def test_options_request_to_an_oauth_endpoint_is_405_in_oauth_json(app_client, path):
    r = app_client.http.request("OPTIONS", path, headers={"Content-Type": FORM}, body=b"")
    assert r.status_code == 405
    assert r.headers["Allow"] == "POST"
    assert r.headers["Content-Type"] == "application/json"
    assert body(r)["error"] == "invalid_request"


def _success(app_client: Any, client: dict[str, Any], aws: Any) -> Any:
    return cc(app_client, client)


def _invalid_request(app_client: Any, client: dict[str, Any], aws: Any) -> Any:
    return cc(app_client, client, grant_type="")


def _invalid_client_basic(app_client: Any, client: dict[str, Any], aws: Any) -> Any:
    return cc(app_client, dict(client, client_secret="wrong"))


def _invalid_client_body(app_client: Any, client: dict[str, Any], aws: Any) -> Any:
    params = {"grant_type": "client_credentials", "client_id": client["client_id"]}
    return form_post(app_client, TOKEN, {**params, "client_secret": "wrong"})


def _unauthorized_client(app_client: Any, client: dict[str, Any], aws: Any) -> Any:
    return cc(app_client, client, grant_type="password", username="a", password="b")


def _wrong_method(app_client: Any, client: dict[str, Any], aws: Any) -> Any:
    return app_client.http.get(TOKEN)


def _wrong_content_type(app_client: Any, client: dict[str, Any], aws: Any) -> Any:
    headers = {"Content-Type": "application/json", **auth(client)}
    return app_client.http.post(TOKEN, headers=headers, body=b'{"grant_type":"x"}')


def _unavailable(app_client: Any, client: dict[str, Any], aws: Any) -> Any:
    aws.client("secretsmanager").put_secret_value(
        SecretId=f"tessera/{STAGE}/signing-keys", SecretString="not json"
    )
    return cc(app_client, client)


@pytest.mark.parametrize(
    ("send", "status"),
    [
        pytest.param(_success, 200, id="200-success"),
        pytest.param(_invalid_request, 400, id="400-invalid_request"),
        pytest.param(_unauthorized_client, 400, id="400-unauthorized_client"),
        pytest.param(_wrong_content_type, 400, id="400-content-type"),
        pytest.param(_invalid_client_basic, 401, id="401-basic"),
        pytest.param(_invalid_client_body, 401, id="401-body"),
        pytest.param(_wrong_method, 405, id="405-method"),
        pytest.param(_unavailable, 503, id="503-key-store"),
    ],
)
def test_every_token_endpoint_answer_carries_no_store_and_no_cache(
    app_client, client, aws, send, status
):
    r = send(app_client, client, aws)
    assert r.status_code == status, r.body
    assert r.headers["Cache-Control"] == "no-store"
    assert r.headers["Pragma"] == "no-cache"


def test_empty_client_secret_next_to_basic_counts_as_absent(app_client, client):
    r = cc(app_client, client, client_secret="")
    assert r.status_code == 200, r.body


def test_error_other_than_401_carries_no_www_authenticate_even_with_basic(app_client, client):
    r = cc(app_client, client, scope="not-registered")
    assert r.status_code == 400
    assert "www-authenticate" not in header_names(r)


def test_public_client_using_basic_with_an_empty_secret_is_invalid_client(app_client, make_client):
    public = make_client(public=True, grant_types=["refresh_token"], scopes=["people:read"])
    r = form_post(
        app_client,
        TOKEN,
        {"grant_type": "refresh_token", "refresh_token": "tessera_rt_x_y"},
        {"Authorization": basic(public["client_id"], "")},
    )
    assert r.status_code == 401
    assert body(r)["error"] == "invalid_client"
    assert r.headers["WWW-Authenticate"] == CHALLENGE


# --- introspection (RFC 7662 §2.1): 401 with the challenge only when Basic was used ---------


def test_introspection_caller_failing_basic_gets_www_authenticate(app_client, client):
    headers = {"Authorization": basic(client["client_id"], "wrong")}
    r = form_post(app_client, "/oauth2/introspect", {"token": "x"}, headers)
    assert r.status_code == 401
    assert body(r)["error"] == "invalid_client"
    assert r.headers["WWW-Authenticate"] == CHALLENGE


def test_introspection_caller_failing_body_credentials_gets_no_www_authenticate(app_client, client):
    params = {"token": "x", "client_id": client["client_id"], "client_secret": "wrong"}
    r = form_post(app_client, "/oauth2/introspect", params)
    assert r.status_code == 401
    assert "www-authenticate" not in header_names(r)


def test_introspection_caller_credentials_in_the_query_string_are_refused(app_client, client):
    query = f"?client_id={client['client_id']}&client_secret={client['client_secret']}"
    r = app_client.http.post(
        "/oauth2/introspect" + query, headers={"Content-Type": FORM}, body=b"token=x"
    )
    assert r.status_code == 400
    assert body(r)["error"] == "invalid_request"


# --- password grant (RFC 6749 §4.3.2): every refusal costs one Argon2id check ---------------


@pytest.fixture
def kdf_checks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The PHC strings each Argon2id verification ran against (the real check still runs)."""
    from cryptography.hazmat.primitives.kdf import argon2

    from chalicelib.tokens import passwords

    passwords.verify_password("", None)  # build the cached dummy hash before counting
    real = argon2.Argon2id
    seen: list[str] = []

    class Counting:
        def __new__(cls, **kwargs: Any) -> Any:  # hashing (new users) is not counted
            return real(**kwargs)

        @staticmethod
        def verify_phc_encoded(key: bytes, phc: str) -> None:
            seen.append(phc)
            real.verify_phc_encoded(key, phc)

    monkeypatch.setattr(argon2, "Argon2id", Counting)
    return seen


def _lock(app_client: Any, client: dict[str, Any]) -> None:
    from chalicelib.core.config import settings

    for _ in range(settings().lockout_threshold):
        _password_login(app_client, client, "alice", "wrong password")


def _password_login(app_client: Any, client: dict[str, Any], username: str, password: str) -> Any:
    params = {"grant_type": "password", "username": username, "password": password}
    return form_post(app_client, TOKEN, params, auth(client))


@pytest.mark.parametrize(
    ("prepare", "username", "password"),
    [
        pytest.param(None, "nobody", "correct horse battery", id="unknown-user"),
        pytest.param(None, "alice", "wrong password", id="wrong-password"),
        pytest.param("disable", "alice", "correct horse battery", id="disabled-user"),
        pytest.param("lock", "alice", "correct horse battery", id="locked-user"),
        pytest.param(None, "\u202ealice", "correct horse battery", id="invalid-username"),
    ],
)
def test_every_refused_password_login_runs_one_argon2id_check_with_current_parameters(
    app_client, make_client, make_user, kdf_checks, prepare, username, password
):
    from chalicelib.tokens import passwords

    client = password_client(make_client)
    make_user("alice")
    if prepare == "disable":
        services.user_store().set_disabled("alice", True)
    if prepare == "lock":
        _lock(app_client, client)
    kdf_checks.clear()
    r = _password_login(app_client, client, username, password)
    assert r.status_code == 400
    assert body(r) == {
        "error": "invalid_grant",
        "error_description": "invalid username or password",
    }
    assert len(kdf_checks) == 1
    assert not passwords.needs_rehash(kdf_checks[0])  # the dummy hash costs what a real one does


# --- metadata (RFC 8414) ----------------------------------------------------------------------


def test_metadata_advertises_s256_pkce_before_any_code_flow_client_exists(app_client, client):
    doc = body(app_client.http.get("/.well-known/oauth-authorization-server"))
    assert doc["code_challenge_methods_supported"] == ["S256"]


# --- revocation reaches the API; it keys on jti, never on the token string -------------------


@pytest.fixture
def grant(app_client: Any, make_client: Any, make_user: Any) -> dict[str, Any]:
    client = password_client(make_client)
    make_user("alice")
    return {"client": client, "tokens": login(app_client, client)}


def _authorizes(app_client: Any, token: str) -> bool:
    from chalicelib.web.authorizer import UNAUTHORIZED

    try:
        app_client.lambda_.invoke(AUTHORIZER, event("Bearer " + token))
    except Exception as exc:
        if str(exc) != UNAUTHORIZED:  # a fault is neither an allow nor a refusal
            raise
        return False
    return True


def test_revoked_refresh_token_ends_its_access_tokens_at_the_authorizer_with_checks_on(
    app_client, grant, monkeypatch
):
    reconfigure(monkeypatch, TESSERA_AUTHORIZER_CHECKS_REVOCATION="true")
    access = grant["tokens"]["access_token"]
    assert _authorizes(app_client, access)
    assert revoke(app_client, grant["client"], grant["tokens"]["refresh_token"]).status_code == 200
    assert not _authorizes(app_client, access)


def _other_signature_encoding(token: str) -> str:
    """The same ES256 token with (r, n - s): another valid signature, another token string."""
    head, payload, sig = token.split(".")
    raw = base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4))
    r, s = raw[:32], int.from_bytes(raw[32:], "big")
    flipped = r + (P256_ORDER - s).to_bytes(32, "big")
    return f"{head}.{payload}." + base64.urlsafe_b64encode(flipped).rstrip(b"=").decode()


def test_revoked_access_token_stays_revoked_under_another_signature_encoding(app_client, grant):
    client, access = grant["client"], grant["tokens"]["access_token"]
    twin = _other_signature_encoding(access)
    assert twin != access
    assert body(introspect(app_client, client, twin))["active"] is True  # a genuine twin
    assert revoke(app_client, client, access).status_code == 200
    assert body(introspect(app_client, client, twin)) == {"active": False}


# --- RFC 6750 at the demo API (through the local stack's gateway responses) ------------------


@pytest.fixture
def http(app_client: Any, aws: boto3.Session) -> Iterator[Any]:
    from infra import local_gateway
    from infra.seed import seed_demo

    seed_demo(aws, STAGE)
    local_gateway.install()
    try:
        yield app_client.http
    finally:
        local_gateway.uninstall()


@pytest.fixture
def access_token(app_client: Any, make_client: Any) -> str:
    c = make_client(scopes=["people:read", "articles:write"])
    token: str = body(cc(app_client, c))["access_token"]
    return token


def test_access_token_in_the_query_string_is_not_accepted(http, access_token):
    r = http.get("/people?access_token=" + access_token)
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"] == 'Bearer realm="tessera"'


def test_access_token_in_a_form_body_is_not_accepted(http, access_token):
    r = http.request(
        "GET",
        "/people",
        headers={"Content-Type": FORM},
        body=b"access_token=" + access_token.encode(),
    )
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"] == 'Bearer realm="tessera"'


@pytest.mark.parametrize(
    ("content_type", "payload", "status"),
    [
        pytest.param("text/plain", b"hello", 415, id="text-plain"),
        pytest.param(FORM, b"title=a&body=b", 415, id="form"),
        pytest.param("application/json", b"{not json", 400, id="broken-json"),
        pytest.param("application/json", bytes(range(256)), 400, id="binary"),
    ],
)
def test_demo_api_answers_a_body_that_is_not_a_json_object_with_invalid_request(
    http, access_token, content_type, payload, status
):
    headers = {"Authorization": "Bearer " + access_token, "Content-Type": content_type}
    r = http.post("/articles", headers=headers, body=payload)
    assert r.status_code == status
    assert body(r)["error"] == "invalid_request"


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(b"[" * 100_000 + b"]" * 100_000, id="deep-array"),
        pytest.param(b'{"a":' * 100_000 + b"1" + b"}" * 100_000, id="deep-object"),
    ],
)
def test_deeply_nested_json_is_4xx(http, access_token, payload):
    """The JSON decoder recurses per level: nesting beyond the limit is invalid_request (400),
    not a RecursionError (500)."""
    headers = {"Authorization": "Bearer " + access_token, "Content-Type": "application/json"}
    r = http.post("/articles", headers=headers, body=payload)
    assert r.status_code == 400, text_of(r)
    assert body(r)["error"] == "invalid_request"


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(b'{"title": "\\ud800", "body": "b"}', id="lone-surrogate"),
        pytest.param(b'{"title": "a", "title": "b", "body": "c"}', id="repeated-member"),
        pytest.param(b'{"title": "t", "body": "b", "n": NaN}', id="nan"),
        pytest.param(b'{"title": "t", "body": "' + b"b" * 70_000 + b'"}', id="too-large"),
    ],
)
def test_json_the_demo_api_cannot_store_or_read_one_way_is_4xx(http, access_token, payload):
    headers = {"Authorization": "Bearer " + access_token, "Content-Type": "application/json"}
    r = http.post("/articles", headers=headers, body=payload)
    assert r.status_code == 400, text_of(r)
    assert body(r)["error"] == "invalid_request"


def test_article_with_escaped_and_non_ascii_text_is_stored(http, access_token):
    headers = {"Authorization": "Bearer " + access_token, "Content-Type": "application/json"}
    payload = '{"title": "caf\\u00e9 😀 \\ud83d\\ude00 [{", "body": "' + "é" * 10_000 + '"}'
    r = http.post("/articles", headers=headers, body=payload.encode())
    assert r.status_code == 201, text_of(r)
    assert body(r)["title"] == "café 😀 😀 [{"


@pytest.mark.parametrize(
    "path",
    [
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
        "/.well-known/jwks.json",
        "/account/apps",
    ],
)
def test_get_with_a_content_type_header_is_answered_not_refused_with_415(app_client, path):
    # Clients that send a default Content-Type on every request must not meet Chalice's 415.
    r = app_client.http.get(path, headers={"Content-Type": FORM})
    assert r.status_code == 200, text_of(r)


@pytest.mark.parametrize("path", ["/people", "/people/ada"])
def test_demo_api_get_with_a_content_type_header_is_answered(http, access_token, path):
    headers = {"Authorization": "Bearer " + access_token, "Content-Type": FORM}
    r = http.get(path, headers=headers)
    assert r.status_code == 200, text_of(r)


# --- operations: debug off, no traceback anywhere --------------------------------------------


def test_app_debug_is_off():
    import app as app_module

    assert app_module.app.debug is False


def test_exception_escaping_a_route_gets_a_500_without_traceback(app_client, monkeypatch):
    from chalicelib.web import http as http_edge

    def explode(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("internal detail tessera-marker")

    monkeypatch.setattr(http_edge, "oauth_call", explode)
    r = app_client.http.get("/.well-known/jwks.json")
    assert r.status_code == 500
    assert "Traceback" not in text_of(r)
    assert "tessera-marker" not in text_of(r)


_COOKIES = {"Cookie": "__Host-tessera_session=a.b.c; __Host-tessera_csrf=%ff%00"}
_NON_ASCII_COOKIES = {"Cookie": "__Host-tessera_session=é.é.é; __Host-tessera_csrf=é\u2028"}
_MALFORMED = [
    ("GET", "/oauth2/authorize?client_id=%ff%fe&response_type=%00", {}, b""),
    ("GET", "/oauth2/authorize?response_type=code&response_type=token", {}, b""),
    ("GET", "/oauth2/authorize?" + "a=" + "x" * 8000, _COOKIES, b""),
    ("POST", "/oauth2/authorize", {"Content-Type": FORM, **_COOKIES}, b"\xff\xfe=\x00"),
    ("POST", "/oauth2/authorize", {"Content-Type": FORM}, b"request=%zz&csrf=1&csrf=2"),
    ("POST", "/oauth2/authorize", {"Content-Type": "application/json"}, b"{}"),
    ("POST", "/oauth2/authorize", {"Content-Type": FORM}, b"step=login&request=a.b&csrf=x"),
    ("POST", "/oauth2/authorize", {"Content-Type": FORM}, b"x=" + b"y" * 20000),
    ("GET", "/oauth2/authorize?client_id=x", _NON_ASCII_COOKIES, b""),
    ("POST", "/oauth2/authorize", {"Content-Type": FORM, **_NON_ASCII_COOKIES}, b"csrf=%C3%A9"),
    ("GET", "/account/apps?revoked=1&revoked=%ff", _COOKIES, b""),
    ("GET", "/account/apps", _NON_ASCII_COOKIES, b""),
    ("POST", "/account/logout", {"Content-Type": FORM, **_NON_ASCII_COOKIES}, b"csrf=%C3%A9"),
    ("POST", "/account/login", {"Content-Type": FORM, **_COOKIES}, b"username=%00&password=\xff"),
    ("POST", "/account/login", {"Content-Type": "multipart/form-data; boundary=x"}, b"--x"),
    ("POST", "/account/apps/revoke", {"Content-Type": FORM, **_COOKIES}, b"family=%00&csrf=x"),
    ("POST", "/account/logout", {"Content-Type": "text/plain"}, b"\x00"),
    ("GET", "/.well-known/oauth-authorization-server?x=%ff", {}, b""),
    ("GET", "/.well-known/openid-configuration", {"Accept": "\x00"}, b""),
    ("GET", "/.well-known/jwks.json?kid=../../etc/passwd", {}, b""),
    ("POST", "/oauth2/revoke", {"Content-Type": FORM, "Authorization": "Basic \x00"}, b"\xff"),
    ("POST", "/oauth2/introspect", {"Content-Type": FORM}, b"token=" + b"A" * 16000),
    ("PATCH", "/oauth2/introspect", {"Content-Type": "application/json"}, b"[]"),
]


@pytest.mark.parametrize(
    ("method", "path", "headers", "payload"),
    [pytest.param(*case, id=f"{case[0]}-{case[1][:30]}-{i}") for i, case in enumerate(_MALFORMED)],
)
def test_malformed_input_to_any_route_never_gets_a_5xx_or_a_traceback(
    app_client, method, path, headers, payload
):
    r = app_client.http.request(method, path, headers=headers, body=payload)
    assert r.status_code < 500, text_of(r)
    assert "Traceback" not in text_of(r)
    assert 'File "' not in text_of(r)


@pytest.mark.parametrize(
    ("method", "path", "payload"),
    [
        pytest.param("GET", "/people/%00%ff", b"", id="person-id-bytes"),
        pytest.param("GET", "/people/" + "x" * 3000, b"", id="person-id-long"),
        pytest.param("POST", "/articles", b'{"title": {"a": 1}, "body": []}', id="wrong-types"),
        pytest.param("POST", "/articles", b'{"title": "' + b"t" * 50000 + b'"}', id="huge"),
        pytest.param("POST", "/articles", b'"just a string"', id="not-an-object"),
        pytest.param("POST", "/articles", b"[" * 100_000 + b"]" * 100_000, id="deep"),
        pytest.param("POST", "/articles", b'{"title": "\\ud800", "body": "b"}', id="surrogate"),
    ],
)
def test_malformed_input_to_the_demo_api_never_gets_a_5xx_or_a_traceback(
    http, access_token, method, path, payload
):
    headers = {"Authorization": "Bearer " + access_token, "Content-Type": "application/json"}
    r = http.request(method, path, headers=headers, body=payload)
    assert r.status_code < 500, text_of(r)
    assert "Traceback" not in text_of(r)


@pytest.mark.parametrize(
    "authorization",
    [
        pytest.param("", id="empty"),
        pytest.param("Bearer", id="scheme-only"),
        pytest.param("Bearer " + "A" * 100_000, id="huge"),
        pytest.param("Bearer \x00.\x00.\x00", id="control-chars"),
        pytest.param("Bearer e30.e30.", id="empty-objects"),
    ],
)
def test_malformed_authorization_reaching_the_authorizer_is_refused_with_401(
    app_client, authorization
):
    rejecter(invoker(app_client))(authorization)


# --- logs: the hosted sign-in and the code flow leak nothing ---------------------------------


def test_code_flow_and_hosted_sign_in_never_log_password_code_verifier_cookie_or_token(
    app_client, make_client, make_user, capfd, caplog
):
    import logging

    from tests.functional.test_authorize import (
        PASSWORD,
        REDIRECT,
        VERIFIER,
        Browser,
        authorize_path,
        consent,
        exchange,
        hidden,
        html,
        location,
        sign_in,
    )

    caplog.set_level(logging.DEBUG, logger="tessera")
    spa = make_client(
        grant_types=["authorization_code", "refresh_token"],
        scopes=["people:read"],
        public=True,
        redirect_uris=[REDIRECT],
    )
    make_user("alice", PASSWORD)
    browser = Browser(app_client)
    wrong = "Wrong-" + PASSWORD
    assert sign_in(browser, authorize_path(spa["client_id"]), password=wrong).status_code == 401
    page = sign_in(browser, authorize_path(spa["client_id"]))
    if page.status_code == 200:
        page = consent(browser, page)
    code = location(page)["code"]
    tokens = body(exchange(app_client, spa, code))
    apps = Browser(app_client)
    login_page = apps.get("/account/apps")
    csrf = hidden(html(login_page), "csrf")
    apps.post("/account/login", {"csrf": csrf, "username": "alice", "password": PASSWORD})
    needles = [PASSWORD, wrong, code, VERIFIER, tokens["access_token"], tokens["refresh_token"]]
    needles += [v for b in (browser, apps) for v in b.cookies.values() if len(v) >= 16]
    out, err = capfd.readouterr()
    logged = (
        out
        + err
        + "\n".join(json.dumps(r.__dict__, default=repr) + r.getMessage() for r in caplog.records)
    )
    assert '"log":"request"' in logged.replace(" ", "")  # the capture sees the request lines
    for needle in needles:
        assert needle not in logged
    assert claims(tokens["access_token"])["jti"]  # a jti is what may be logged instead
