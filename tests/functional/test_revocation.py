"""Revocation endpoint (RFC 7009) and what revocation does to both kinds of token."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.web import services
from tests.functional.conftest import T0, basic, body, form_post
from tests.functional.refresh_support import (
    auth,
    claims,
    failing,
    introspect,
    login,
    password_client,
    refresh,
    revoke,
    table_items,
)


@pytest.fixture
def setup(app_client: Any, make_client: Any, make_user: Any) -> dict[str, Any]:
    client = password_client(make_client)
    make_user("alice")
    return {"client": client, "tokens": login(app_client, client)}


def test_revocation_answers_200_with_empty_body_and_no_store(app_client, setup):
    r = revoke(app_client, setup["client"], setup["tokens"]["refresh_token"])
    assert r.status_code == 200
    assert r.body in (b"", "")
    assert r.headers["Cache-Control"] == "no-store"


def test_revoked_refresh_token_no_longer_refreshes(app_client, setup):
    c, rt = setup["client"], setup["tokens"]["refresh_token"]
    revoke(app_client, c, rt)
    r = refresh(app_client, c, rt)
    assert r.status_code == 400
    assert body(r)["error"] == "invalid_grant"


def test_revoking_an_old_refresh_token_revokes_the_newest_of_its_family(app_client, setup, clock):
    c, first = setup["client"], setup["tokens"]["refresh_token"]
    second = body(refresh(app_client, c, first))["refresh_token"]
    clock.advance(1)
    revoke(app_client, c, first)
    assert body(refresh(app_client, c, second))["error"] == "invalid_grant"


def test_revoking_refresh_token_ends_access_tokens_of_its_family(app_client, setup):
    c = setup["client"]
    revoke(app_client, c, setup["tokens"]["refresh_token"])
    assert body(introspect(app_client, c, setup["tokens"]["access_token"])) == {"active": False}


def test_revoking_refresh_token_marks_family_not_deletes_it(app_client, setup):
    revoke(app_client, setup["client"], setup["tokens"]["refresh_token"])
    (family,) = table_items("FAMILY#")
    assert family["revoked"] is True
    assert family["revoked_reason"] == "revoked"


def test_revoked_access_token_is_denied_by_jti(app_client, setup):
    c, at = setup["client"], setup["tokens"]["access_token"]
    revoke(app_client, c, at)
    assert body(introspect(app_client, c, at)) == {"active": False}
    (item,) = table_items("JTI#")
    assert item["pk"] == "JTI#" + claims(at)["jti"]


def test_deny_list_entry_expires_with_the_access_token(app_client, setup):
    at = setup["tokens"]["access_token"]
    revoke(app_client, setup["client"], at)
    (item,) = table_items("JTI#")
    assert claims(at)["exp"] <= item["ttl"] <= claims(at)["exp"] + 60


def test_revoking_access_token_leaves_its_refresh_family_alive(app_client, setup):
    c = setup["client"]
    revoke(app_client, c, setup["tokens"]["access_token"])
    r = refresh(app_client, c, setup["tokens"]["refresh_token"])
    assert r.status_code == 200
    assert body(introspect(app_client, c, body(r)["access_token"]))["active"] is True


def test_wrong_hint_still_finds_refresh_token(app_client, setup):
    c, rt = setup["client"], setup["tokens"]["refresh_token"]
    revoke(app_client, c, rt, token_type_hint="access_token")
    assert body(refresh(app_client, c, rt))["error"] == "invalid_grant"


def test_wrong_hint_still_finds_access_token(app_client, setup):
    c, at = setup["client"], setup["tokens"]["access_token"]
    revoke(app_client, c, at, token_type_hint="refresh_token")
    assert body(introspect(app_client, c, at)) == {"active": False}


def test_unknown_hint_is_ignored(app_client, setup):
    c, rt = setup["client"], setup["tokens"]["refresh_token"]
    r = revoke(app_client, c, rt, token_type_hint="id_token")
    assert r.status_code == 200
    assert body(refresh(app_client, c, rt))["error"] == "invalid_grant"


@pytest.mark.parametrize(
    "token", ["tessera_rt_00000000_" + "A" * 43, "garbage", "a.b.c", "tessera_rt_x"]
)
def test_unknown_or_malformed_token_gets_200(app_client, setup, token):
    assert revoke(app_client, setup["client"], token).status_code == 200


def test_expired_access_token_gets_200_and_needs_no_deny_entry(app_client, setup, clock):
    clock.advance(900 + 61)
    r = revoke(app_client, setup["client"], setup["tokens"]["access_token"])
    assert r.status_code == 200
    assert table_items("JTI#") == []


def test_refresh_token_of_another_client_is_not_revoked_and_answer_is_200(
    app_client, setup, make_client
):
    other = password_client(make_client)
    r = revoke(app_client, other, setup["tokens"]["refresh_token"])
    assert r.status_code == 200
    assert refresh(app_client, setup["client"], setup["tokens"]["refresh_token"]).status_code == 200


def test_access_token_of_another_client_is_not_revoked_and_answer_is_200(
    app_client, setup, make_client
):
    other = password_client(make_client)
    at = setup["tokens"]["access_token"]
    assert revoke(app_client, other, at).status_code == 200
    assert body(introspect(app_client, setup["client"], at))["active"] is True


def test_revocation_requires_client_authentication(app_client, setup):
    r = form_post(app_client, "/oauth2/revoke", {"token": setup["tokens"]["refresh_token"]})
    assert r.status_code == 401
    assert body(r)["error"] == "invalid_client"
    assert refresh(app_client, setup["client"], setup["tokens"]["refresh_token"]).status_code == 200


def test_revocation_with_wrong_secret_is_401_with_challenge(app_client, setup):
    headers = {"Authorization": basic(setup["client"]["client_id"], "wrong")}
    r = form_post(app_client, "/oauth2/revoke", {"token": "x"}, headers)
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"].startswith("Basic")


def test_missing_token_is_invalid_request(app_client, setup):
    r = form_post(app_client, "/oauth2/revoke", {}, auth(setup["client"]))
    assert r.status_code == 400
    assert body(r)["error"] == "invalid_request"


def test_json_body_is_an_oauth_error_not_415(app_client, setup):
    headers = {"Content-Type": "application/json", **auth(setup["client"])}
    r = app_client.http.post("/oauth2/revoke", headers=headers, body=b'{"token": "x"}')
    assert r.status_code == 400
    assert body(r)["error"] == "invalid_request"


def test_get_is_refused_with_405(app_client):
    r = app_client.http.get("/oauth2/revoke")
    assert r.status_code == 405
    assert body(r)["error"] == "invalid_request"


def test_storage_failure_revoking_refresh_token_is_503(app_client, setup):
    with failing("UpdateItem", "ProvisionedThroughputExceededException"):
        r = revoke(app_client, setup["client"], setup["tokens"]["refresh_token"])
    assert r.status_code == 503
    assert r.headers["Retry-After"]
    assert body(r)["error"] == "temporarily_unavailable"


def test_storage_failure_revoking_access_token_is_503(app_client, setup):
    with failing("PutItem", "InternalServerError"):
        r = revoke(app_client, setup["client"], setup["tokens"]["access_token"])
    assert r.status_code == 503
    assert r.headers["Retry-After"]


def test_public_client_may_revoke_its_own_refresh_token(app_client, make_client, make_user):
    public = make_client(public=True, grant_types=["refresh_token"], scopes=["people:read"])
    user = make_user("bob")
    client = services.cached_clients().get(public["client_id"])
    assert client is not None
    issued = services.refresh_grants().start(
        client=client,
        subject=user["user_id"],
        username="bob",
        scope="people:read",
        now=int(T0),
    )
    params = {"token": issued.token, "client_id": public["client_id"]}
    assert form_post(app_client, "/oauth2/revoke", params).status_code == 200
    (family,) = table_items("FAMILY#")
    assert family["revoked"] is True


def test_metadata_lists_revocation_introspection_and_refresh_grant(app_client, setup):
    doc = body(app_client.http.get("/.well-known/oauth-authorization-server"))
    assert doc["revocation_endpoint"] == doc["issuer"] + "/oauth2/revoke"
    assert doc["introspection_endpoint"] == doc["issuer"] + "/oauth2/introspect"
    assert "refresh_token" in doc["grant_types_supported"]
