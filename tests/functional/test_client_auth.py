"""Client authentication at the token endpoint (RFC 6749 §2.3, §2.3.1, §3.2.1, §5.2).

Every test posts a real request at ``/oauth2/token``. ``client_credentials`` is the grant used to
observe the outcome: 200 means the client authenticated, ``unauthorized_client`` (400) means it
authenticated but may not use the grant, ``invalid_client`` (401) means it did not authenticate.
"""

from __future__ import annotations

import base64
import re
from typing import Any

import pytest
from authlib.common.urls import url_encode
from authlib.oauth2.auth import ClientAuth

from chalicelib.core.records import Client, hash_secret
from chalicelib.store.clients import SECRET_PREFIX
from chalicelib.web import services
from tests.functional.conftest import T0, basic, body, form_post

TOKEN = "/oauth2/token"
CC = {"grant_type": "client_credentials"}
CHALLENGE = 'Basic realm="tessera", charset="UTF-8"'


def register(client_id: str, secret: str | None, grant_types: tuple[str, ...]) -> None:
    """A client with an id and secret of our choosing (the admin command only makes URL-safe
    ones), to prove the Basic decoding handles characters that must be encoded."""
    services.client_store().create(
        Client(
            client_id=client_id,
            name="odd",
            grant_types=grant_types,
            scopes=("people:read",),
            public=secret is None,
            secret_hash=hash_secret(secret) if secret is not None else None,
            created_at=int(T0),
        )
    )


def header_names(resp: Any) -> set[str]:
    return {k.lower() for k in resp.headers}


# --- client_secret_basic ---------------------------------------------------------------------


def test_basic_credentials_authenticate_a_confidential_client(app_client, make_client):
    c = make_client()
    r = form_post(
        app_client, TOKEN, CC, {"Authorization": basic(c["client_id"], c["client_secret"])}
    )
    assert r.status_code == 200, r.body
    assert body(r)["access_token"]


def test_basic_credentials_are_form_urlencoded_before_base64(app_client):
    client_id, secret = "partner:1/é app", "p@ss:w%rd+/&=ü"
    register(client_id, secret, ("client_credentials",))
    r = form_post(app_client, TOKEN, CC, {"Authorization": basic(client_id, secret)})
    assert r.status_code == 200, r.body


def test_issued_credentials_work_with_an_encoder_that_skips_form_encoding(app_client, make_client):
    # Authlib (like requests' HTTPBasicAuth) base64-encodes "id:secret" without form-encoding
    # it first. Issued ids and secrets use only unreserved characters, so both spellings agree.
    c = make_client()
    auth = ClientAuth(c["client_id"], c["client_secret"], "client_secret_basic")
    _, headers, data = auth.prepare(
        "POST",
        "https://auth.test.example/oauth2/token",
        {"Content-Type": "application/x-www-form-urlencoded"},
        url_encode([("grant_type", "client_credentials")]),
    )
    r = app_client.http.post(TOKEN, headers=dict(headers), body=data)
    assert r.status_code == 200, r.body


def test_basic_credentials_with_unencoded_colon_in_secret_still_split_at_the_first_colon(
    app_client,
):
    register("plain-id", "a:b", ("client_credentials",))
    raw = base64.b64encode(b"plain-id:a:b").decode()
    r = form_post(app_client, TOKEN, CC, {"Authorization": f"Basic {raw}"})
    assert r.status_code == 200, r.body


def test_basic_with_the_same_client_id_in_the_body_is_accepted(app_client, make_client):
    c = make_client()
    r = form_post(
        app_client,
        TOKEN,
        {**CC, "client_id": c["client_id"]},
        {"Authorization": basic(c["client_id"], c["client_secret"])},
    )
    assert r.status_code == 200, r.body


def test_basic_with_another_client_id_in_the_body_is_invalid_request(app_client, make_client):
    c = make_client()
    r = form_post(
        app_client,
        TOKEN,
        {**CC, "client_id": "someone-else"},
        {"Authorization": basic(c["client_id"], c["client_secret"])},
    )
    assert r.status_code == 400
    assert body(r)["error"] == "invalid_request"


# --- client_secret_post ----------------------------------------------------------------------


def test_body_credentials_authenticate_a_confidential_client(app_client, make_client):
    c = make_client()
    r = form_post(
        app_client,
        TOKEN,
        {**CC, "client_id": c["client_id"], "client_secret": c["client_secret"]},
    )
    assert r.status_code == 200, r.body


def test_body_credentials_with_characters_that_need_encoding(app_client):
    client_id, secret = "partner:3/é", "p@ss:w%rd+/&=ü"
    register(client_id, secret, ("client_credentials",))
    r = form_post(app_client, TOKEN, {**CC, "client_id": client_id, "client_secret": secret})
    assert r.status_code == 200, r.body


# --- one method per request --------------------------------------------------------------------


def test_basic_and_body_secret_together_is_invalid_request(app_client, make_client):
    c = make_client()
    r = form_post(
        app_client,
        TOKEN,
        {**CC, "client_id": c["client_id"], "client_secret": c["client_secret"]},
        {"Authorization": basic(c["client_id"], c["client_secret"])},
    )
    assert r.status_code == 400
    assert body(r)["error"] == "invalid_request"


def test_client_secret_in_the_query_string_is_refused(app_client, make_client):
    c = make_client()
    r = app_client.http.post(
        f"{TOKEN}?client_id={c['client_id']}&client_secret={c['client_secret']}",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        body="grant_type=client_credentials",
    )
    assert r.status_code == 400
    assert body(r)["error"] == "invalid_request"
    assert "access_token" not in body(r)


# --- public and confidential clients ---------------------------------------------------------


def test_public_client_is_identified_by_client_id_alone(app_client):
    # A public client registered (against the admin command's rules) for client_credentials:
    # it gets past authentication with only its id, and is then refused the grant.
    register("public-app", None, ("client_credentials",))
    r = form_post(app_client, TOKEN, {**CC, "client_id": "public-app"})
    assert r.status_code == 400
    assert body(r)["error"] == "unauthorized_client"


def test_public_client_presenting_a_secret_is_invalid_client(app_client):
    register("public-app", None, ("client_credentials",))
    r = form_post(app_client, TOKEN, {**CC, "client_id": "public-app", "client_secret": "anything"})
    assert r.status_code == 401
    assert body(r)["error"] == "invalid_client"


def test_confidential_client_without_its_secret_is_invalid_client(app_client, make_client):
    c = make_client()
    r = form_post(app_client, TOKEN, {**CC, "client_id": c["client_id"]})
    assert r.status_code == 401
    assert body(r)["error"] == "invalid_client"


def test_request_without_any_client_is_invalid_client(app_client):
    r = form_post(app_client, TOKEN, CC)
    assert r.status_code == 401
    assert body(r)["error"] == "invalid_client"


# --- failures ----------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["basic", "post"])
def test_wrong_secret_is_invalid_client_401(app_client, make_client, method):
    c = make_client()
    if method == "basic":
        r = form_post(app_client, TOKEN, CC, {"Authorization": basic(c["client_id"], "wrong")})
    else:
        r = form_post(
            app_client, TOKEN, {**CC, "client_id": c["client_id"], "client_secret": "wrong"}
        )
    assert r.status_code == 401
    assert body(r)["error"] == "invalid_client"
    assert "access_token" not in body(r)


def test_unknown_client_gets_the_same_answer_as_a_wrong_secret(app_client, make_client):
    c = make_client()
    wrong = form_post(
        app_client, TOKEN, {**CC, "client_id": c["client_id"], "client_secret": "wrong"}
    )
    unknown = form_post(
        app_client, TOKEN, {**CC, "client_id": "no-such-client", "client_secret": "wrong"}
    )
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.body == wrong.body


def test_www_authenticate_is_sent_when_basic_credentials_fail(app_client, make_client):
    c = make_client()
    r = form_post(app_client, TOKEN, CC, {"Authorization": basic(c["client_id"], "wrong")})
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"] == CHALLENGE


@pytest.mark.parametrize(
    "authorization",
    [
        pytest.param("Basic !!!", id="not-base64"),
        pytest.param("Basic " + base64.b64encode(b"no-colon").decode(), id="no-colon"),
        pytest.param("Basic " + base64.b64encode(b"\xff:\xfe").decode(), id="not-utf8"),
        pytest.param("Bearer some.jwt.value", id="other-scheme"),
        pytest.param("Basic", id="empty"),
    ],
)
def test_garbage_authorization_header_is_invalid_client_with_challenge(app_client, authorization):
    r = form_post(app_client, TOKEN, CC, {"Authorization": authorization})
    assert r.status_code == 401
    assert body(r)["error"] == "invalid_client"
    assert r.headers["WWW-Authenticate"] == CHALLENGE


def test_no_www_authenticate_when_body_credentials_fail(app_client, make_client):
    c = make_client()
    r = form_post(app_client, TOKEN, {**CC, "client_id": c["client_id"], "client_secret": "wrong"})
    assert r.status_code == 401
    assert "www-authenticate" not in header_names(r)


def test_no_www_authenticate_when_no_credentials_were_sent(app_client):
    r = form_post(app_client, TOKEN, CC)
    assert r.status_code == 401
    assert "www-authenticate" not in header_names(r)


def test_deleted_client_cannot_authenticate(app_client, make_client):
    c = make_client()
    services.client_store().delete(c["client_id"])
    r = form_post(
        app_client, TOKEN, CC, {"Authorization": basic(c["client_id"], c["client_secret"])}
    )
    assert r.status_code == 401
    assert body(r)["error"] == "invalid_client"


# --- issued secrets ----------------------------------------------------------------------------


def test_issued_secret_is_prefixed_url_safe_and_256_bits(make_client):
    secret = make_client()["client_secret"]
    assert secret.startswith(SECRET_PREFIX)
    random_part = secret[len(SECRET_PREFIX) :]
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", random_part)  # 43 base64url chars = 256 bits
    assert make_client()["client_secret"] != secret


def test_store_keeps_only_a_digest_of_the_secret(aws, make_client):
    c = make_client()
    table = aws.client("dynamodb").scan(TableName="tessera-test")["Items"]
    stored = repr(table)
    assert c["client_id"] in stored
    assert c["client_secret"] not in stored
    assert c["client_secret"][len(SECRET_PREFIX) :] not in stored
