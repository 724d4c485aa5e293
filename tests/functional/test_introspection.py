"""Introspection endpoint (RFC 7662): who may ask, and every answer."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.tokens import access_tokens, key_objects
from tests.functional.conftest import AUDIENCE, ISSUER, T0, basic, body, form_post
from tests.functional.refresh_support import (
    auth,
    claims,
    failing,
    introspect,
    login,
    password_client,
    refresh,
    revoke,
)

INACTIVE = {"active": False}


@pytest.fixture
def setup(app_client: Any, make_client: Any, make_user: Any) -> dict[str, Any]:
    client = password_client(make_client)
    make_user("alice")
    return {
        "client": client,
        "tokens": login(app_client, client),
        "other": password_client(make_client),
        "rs": make_client(grant_types=["client_credentials"], introspect=True),
    }


def test_active_access_token_answer_carries_the_rfc_7662_members(app_client, setup):
    at = setup["tokens"]["access_token"]
    r = introspect(app_client, setup["client"], at)
    assert r.status_code == 200
    assert r.headers["Cache-Control"] == "no-store"
    c = claims(at)
    assert body(r) == {
        "active": True,
        "scope": c["scope"],
        "client_id": setup["client"]["client_id"],
        "sub": c["sub"],
        "exp": c["exp"],
        "iat": c["iat"],
        "iss": ISSUER,
        "aud": AUDIENCE,
        "jti": c["jti"],
        "token_type": "Bearer",
    }


def test_active_refresh_token_answer_describes_its_family(app_client, setup):
    r = introspect(app_client, setup["client"], setup["tokens"]["refresh_token"])
    b = body(r)
    assert b["active"] is True
    assert b["token_type"] == "refresh_token"
    assert b["client_id"] == setup["client"]["client_id"]
    assert b["sub"] == claims(setup["tokens"]["access_token"])["sub"]
    assert b["scope"] == "articles:read people:read"
    assert b["exp"] == int(T0) + 7 * 86400  # idle timeout comes before the absolute lifetime
    assert b["iss"] == ISSUER


def test_resource_server_may_introspect_any_clients_token(app_client, setup):
    assert body(introspect(app_client, setup["rs"], setup["tokens"]["access_token"]))["active"]
    assert body(introspect(app_client, setup["rs"], setup["tokens"]["refresh_token"]))["active"]


def test_other_client_sees_access_token_as_inactive(app_client, setup):
    r = introspect(app_client, setup["other"], setup["tokens"]["access_token"])
    assert body(r) == INACTIVE


def test_other_client_sees_refresh_token_as_inactive(app_client, setup):
    r = introspect(app_client, setup["other"], setup["tokens"]["refresh_token"])
    assert body(r) == INACTIVE


def test_expired_access_token_is_inactive(app_client, setup, clock):
    clock.advance(900)
    assert body(introspect(app_client, setup["client"], setup["tokens"]["access_token"])) == (
        INACTIVE
    )


def test_revoked_access_token_is_inactive(app_client, setup):
    at = setup["tokens"]["access_token"]
    revoke(app_client, setup["client"], at)
    assert body(introspect(app_client, setup["rs"], at)) == INACTIVE


def test_access_token_of_revoked_family_is_inactive(app_client, setup):
    revoke(app_client, setup["client"], setup["tokens"]["refresh_token"])
    assert body(introspect(app_client, setup["rs"], setup["tokens"]["access_token"])) == INACTIVE


def test_revoked_refresh_token_is_inactive(app_client, setup):
    rt = setup["tokens"]["refresh_token"]
    revoke(app_client, setup["client"], rt)
    assert body(introspect(app_client, setup["client"], rt)) == INACTIVE


def test_rotated_refresh_token_is_inactive_and_successor_active(app_client, setup):
    c, rt = setup["client"], setup["tokens"]["refresh_token"]
    successor = body(refresh(app_client, c, rt))["refresh_token"]
    assert body(introspect(app_client, c, rt)) == INACTIVE
    assert body(introspect(app_client, c, successor))["active"] is True


def test_idle_expired_refresh_token_is_inactive(app_client, setup, clock):
    clock.advance(7 * 86400)
    assert body(introspect(app_client, setup["client"], setup["tokens"]["refresh_token"])) == (
        INACTIVE
    )


@pytest.mark.parametrize(
    "token", ["tessera_rt_00000000_" + "A" * 43, "garbage", "a.b.c", "x" * 5000]
)
def test_unknown_or_malformed_token_is_inactive(app_client, setup, token):
    assert body(introspect(app_client, setup["client"], token)) == INACTIVE


def test_token_signed_by_a_foreign_key_is_inactive(app_client, setup):
    foreign = key_objects.load_signing_key(key_objects.generate_private_jwk("foreign", "ES256"))
    c = claims(setup["tokens"]["access_token"])
    forged, _ = access_tokens.issue(
        foreign,
        issuer=ISSUER,
        audience=AUDIENCE,
        subject=c["sub"],
        client_id=c["client_id"],
        scope=c["scope"],
        now=int(T0),
        lifetime=900,
    )
    assert body(introspect(app_client, setup["rs"], forged)) == INACTIVE


def test_bad_caller_credentials_are_401(app_client, setup):
    headers = {"Authorization": basic(setup["client"]["client_id"], "wrong")}
    r = form_post(app_client, "/oauth2/introspect", {"token": "x"}, headers)
    assert r.status_code == 401
    assert body(r)["error"] == "invalid_client"


def test_missing_caller_credentials_are_401(app_client, setup):
    r = form_post(app_client, "/oauth2/introspect", {"token": setup["tokens"]["access_token"]})
    assert r.status_code == 401


def test_public_client_may_not_introspect(app_client, setup, make_client):
    public = make_client(public=True, grant_types=["refresh_token"])
    params = {"token": setup["tokens"]["access_token"], "client_id": public["client_id"]}
    r = form_post(app_client, "/oauth2/introspect", params)
    assert r.status_code == 401
    assert body(r)["error"] == "invalid_client"


def test_missing_token_is_invalid_request(app_client, setup):
    r = form_post(app_client, "/oauth2/introspect", {}, auth(setup["client"]))
    assert r.status_code == 400
    assert body(r)["error"] == "invalid_request"


def test_hint_does_not_change_the_answer(app_client, setup):
    r = introspect(
        app_client,
        setup["client"],
        setup["tokens"]["access_token"],
        token_type_hint="refresh_token",
    )
    assert body(r)["active"] is True


def test_storage_fault_is_503_never_active(app_client, setup):
    with failing("BatchGetItem", "InternalServerError"):
        r = introspect(app_client, setup["client"], setup["tokens"]["access_token"])
    assert r.status_code == 503
    assert r.headers["Retry-After"]
    assert "active" not in body(r)


def test_storage_fault_on_refresh_token_is_503_never_active(app_client, setup):
    with failing("GetItem", "ThrottlingException"):
        r = introspect(app_client, setup["client"], setup["tokens"]["refresh_token"])
    assert r.status_code == 503
    assert "active" not in body(r)


def test_json_body_is_an_oauth_error_not_415(app_client, setup):
    headers = {"Content-Type": "application/json", **auth(setup["client"])}
    r = app_client.http.post("/oauth2/introspect", headers=headers, body=b'{"token": "x"}')
    assert r.status_code == 400
    assert body(r)["error"] == "invalid_request"
