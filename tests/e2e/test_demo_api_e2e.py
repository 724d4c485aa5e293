"""Issue 4's promise, end to end through ``make local``'s stack: a token from the token endpoint
calls each demo route with the right 200/401/403 answer and RFC 6750 ``WWW-Authenticate`` header,
plain HTTP and with a real OAuth client library (requests-oauthlib).
"""

from __future__ import annotations

import time
from typing import Any

import boto3
import pytest
import requests
from oauthlib.oauth2 import BackendApplicationClient
from requests.auth import HTTPBasicAuth
from requests_oauthlib import OAuth2Session

from chalicelib.tokens import access_tokens, key_objects, keys
from tests.e2e.conftest import LocalStack

pytestmark = pytest.mark.e2e

ALL = "people:read articles:read articles:write"
PASSWORD = "correct horse battery staple"
CHALLENGE = 'Bearer realm="tessera"'
TIMEOUT = 30


@pytest.fixture(autouse=True)
def _plain_http_to_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")


def _client(stack: LocalStack, scope: str) -> dict[str, Any]:
    found: dict[str, Any] = stack.admin_json(
        "client",
        "create",
        "--name",
        stack.unique("demo"),
        "--grant-types",
        "client_credentials",
        "--scope",
        scope,
    )
    return found


def _token(stack: LocalStack, client: dict[str, Any]) -> str:
    r = requests.post(
        stack.token_url,
        data={"grant_type": "client_credentials"},
        auth=HTTPBasicAuth(client["client_id"], client["client_secret"]),
        timeout=TIMEOUT,
    )
    assert r.status_code == 200, r.text
    token: str = r.json()["access_token"]
    return token


@pytest.fixture(scope="module")
def full_token(local_stack: LocalStack) -> str:
    return _token(local_stack, _client(local_stack, ALL))


@pytest.fixture(scope="module")
def people_token(local_stack: LocalStack) -> str:
    return _token(local_stack, _client(local_stack, "people:read"))


def _get(stack: LocalStack, path: str, token: str | None = None) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.get(stack.base_url + path, headers=headers, timeout=TIMEOUT)


@pytest.mark.parametrize("path", ["/people", "/people/ada", "/articles"])
def test_each_read_route_answers_200_with_the_right_scope(local_stack, full_token, path):
    assert _get(local_stack, path, full_token).status_code == 200


def test_seeded_people_are_served(local_stack, full_token):
    people = _get(local_stack, "/people", full_token).json()["people"]
    assert {"ada", "grace", "alan"} <= {p["id"] for p in people}


def test_article_is_created_with_articles_write(local_stack, full_token):
    r = requests.post(
        local_stack.base_url + "/articles",
        json={"title": "From the e2e test", "body": "Hello"},
        headers={"Authorization": f"Bearer {full_token}"},
        timeout=TIMEOUT,
    )
    assert r.status_code == 201, r.text
    listed = _get(local_stack, "/articles", full_token).json()["articles"]
    assert r.json()["id"] in {a["id"] for a in listed}


def test_no_token_gets_401_with_a_bare_challenge(local_stack):
    r = _get(local_stack, "/people")
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"] == CHALLENGE


def test_no_token_gets_a_json_body_in_the_error_shape(local_stack):
    r = _get(local_stack, "/people")
    assert r.status_code == 401
    assert r.headers["Content-Type"] == "application/json"
    assert set(r.json()) == {"error_description"}  # RFC 6750 §3.1: no error code


@pytest.mark.parametrize(("method", "path"), [("GET", "/nothing-here"), ("DELETE", "/people")])
def test_unknown_route_gets_404_not_found_in_json(local_stack, full_token, method, path):
    r = requests.request(
        method,
        local_stack.base_url + path,
        headers={"Authorization": f"Bearer {full_token}"},
        timeout=TIMEOUT,
    )
    assert r.status_code == 404
    assert r.json()["error"] == "not_found"


def test_article_body_that_is_not_json_gets_415(local_stack, full_token):
    r = requests.post(
        local_stack.base_url + "/articles",
        data="title=t&body=b",
        headers={"Authorization": f"Bearer {full_token}", "Content-Type": "text/plain"},
        timeout=TIMEOUT,
    )
    assert r.status_code == 415
    assert r.json()["error"] == "invalid_request"


def test_revoked_access_token_is_refused_by_the_demo_api(local_stack):
    # The local stage checks revocation at the authorizer, like dev and prod.
    client = _client(local_stack, "people:read")
    token = _token(local_stack, client)
    assert _get(local_stack, "/people", token).status_code == 200
    revoked = requests.post(
        local_stack.base_url + "/oauth2/revoke",
        data={"token": token},
        auth=HTTPBasicAuth(client["client_id"], client["client_secret"]),
        timeout=TIMEOUT,
    )
    assert revoked.status_code == 200
    r = _get(local_stack, "/people", token)
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"] == CHALLENGE + ', error="invalid_token"'


def test_access_token_of_a_revoked_refresh_token_is_refused_by_the_demo_api(local_stack):
    client = local_stack.admin_json(
        "client", "create", "--name", local_stack.unique("family"),
        "--grant-types", "password,refresh_token", "--scope", "people:read",
    )  # fmt: skip
    username = local_stack.unique("carol")
    local_stack.admin_json("user", "create", "--username", username, input=PASSWORD + "\n")
    auth = HTTPBasicAuth(client["client_id"], client["client_secret"])
    login = requests.post(
        local_stack.token_url,
        data={"grant_type": "password", "username": username, "password": PASSWORD},
        auth=auth,
        timeout=TIMEOUT,
    )
    assert login.status_code == 200, login.text
    tokens = login.json()
    assert _get(local_stack, "/people", tokens["access_token"]).status_code == 200
    revoked = requests.post(
        local_stack.base_url + "/oauth2/revoke",
        data={"token": tokens["refresh_token"], "token_type_hint": "refresh_token"},
        auth=auth,
        timeout=TIMEOUT,
    )
    assert revoked.status_code == 200
    assert _get(local_stack, "/people", tokens["access_token"]).status_code == 401


def test_tampered_token_gets_401_invalid_token(local_stack, full_token):
    header, payload, signature = full_token.split(".")
    tampered = f"{header}.{payload}.{signature[:-4]}AAAA"
    r = _get(local_stack, "/people", tampered)
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"] == CHALLENGE + ', error="invalid_token"'


def test_expired_token_gets_401_invalid_token(local_stack):
    # Signed with the stack's real key (read from the emulator), but issued long ago.
    sm = boto3.Session(region_name="us-east-1").client(
        "secretsmanager",
        endpoint_url=local_stack.emulator_url,
        aws_access_key_id="local",
        aws_secret_access_key="local",  # the emulator accepts any
    )
    raw = sm.get_secret_value(SecretId="tessera/local/signing-keys")["SecretString"]
    current = next(e for e in keys.parse_key_set(raw) if e.state == "current")
    token, _ = access_tokens.issue(
        key_objects.load_signing_key(current.jwk),
        issuer=local_stack.base_url,
        audience=local_stack.audience,
        subject="someone",
        client_id="someone",
        scope=ALL,
        now=int(time.time()) - 3600,
        lifetime=900,
    )
    r = _get(local_stack, "/people", token)
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"] == CHALLENGE + ', error="invalid_token"'


@pytest.mark.parametrize(
    ("method", "path", "needed"),
    [("GET", "/articles", "articles:read"), ("POST", "/articles", "articles:write")],
)
def test_missing_scope_gets_403_insufficient_scope(local_stack, people_token, method, path, needed):
    r = requests.request(
        method,
        local_stack.base_url + path,
        json={"title": "t", "body": "b"} if method == "POST" else None,
        headers={"Authorization": f"Bearer {people_token}"},
        timeout=TIMEOUT,
    )
    assert r.status_code == 403
    assert r.headers["WWW-Authenticate"] == (
        f'{CHALLENGE}, error="insufficient_scope", scope="{needed}"'
    )


def test_oauth_client_library_calls_the_demo_api(local_stack):
    client = _client(local_stack, "people:read articles:read")
    session = OAuth2Session(client=BackendApplicationClient(client_id=client["client_id"]))
    session.fetch_token(
        token_url=local_stack.token_url,
        auth=HTTPBasicAuth(client["client_id"], client["client_secret"]),
        timeout=TIMEOUT,
    )
    people = session.get(local_stack.base_url + "/people/grace", timeout=TIMEOUT)
    assert people.status_code == 200
    assert people.json()["name"] == "Grace Hopper"
    articles = session.get(local_stack.base_url + "/articles", timeout=TIMEOUT)
    assert articles.status_code == 200
    denied = session.post(
        local_stack.base_url + "/articles", json={"title": "t", "body": "b"}, timeout=TIMEOUT
    )
    assert denied.status_code == 403
