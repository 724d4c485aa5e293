"""Refresh tokens (RFC 6749 §6, RFC 9700 §4.14): issuing, rotation, the retry window, re-use
detection, client binding, scope, lifetimes, pepper rotation, faults and concurrency."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from typing import Any

import pytest

from chalicelib.tokens.peppers import dump_pepper_set, new_pepper, parse_pepper_set
from chalicelib.web import services
from tests.functional.conftest import STAGE, T0, body, form_post
from tests.functional.refresh_support import (
    auth,
    claims,
    failing,
    login,
    password_client,
    refresh,
    serialized_emulator,
    set_env,
    table_items,
)


@pytest.fixture
def setup(app_client: Any, make_client: Any, make_user: Any) -> dict[str, Any]:
    """A confidential client registered for password + refresh_token, a user, a first login."""
    client = password_client(make_client)
    make_user("alice")
    return {"client": client, "tokens": login(app_client, client)}


def _error(resp: Any) -> str:
    return str(body(resp)["error"])


# --- issuing --------------------------------------------------------------------------------


def test_password_grant_issues_prefixed_256_bit_refresh_token(setup):
    from jwt.utils import base64url_decode

    rt = setup["tokens"]["refresh_token"]
    assert rt.startswith("tessera_rt_")
    pepper_id, random_part = rt[len("tessera_rt_") :].split("_", 1)
    assert pepper_id
    assert len(base64url_decode(random_part)) == 32


def test_access_token_from_password_grant_carries_family_as_sid(setup):
    rt_items = table_items("RT#")
    assert len(rt_items) == 1
    assert claims(setup["tokens"]["access_token"])["sid"] == rt_items[0]["family_id"]


def test_no_refresh_token_for_client_not_registered_for_it(app_client, make_client, make_user):
    client = password_client(make_client, grant_types=["password"])
    make_user("alice")
    assert "refresh_token" not in login(app_client, client)


def test_client_credentials_never_issues_refresh_token(app_client, make_client):
    client = make_client(grant_types=["client_credentials", "refresh_token"])
    r = form_post(app_client, "/oauth2/token", {"grant_type": "client_credentials"}, auth(client))
    assert r.status_code == 200
    assert "refresh_token" not in body(r)


def test_table_stores_only_keyed_hashes_of_refresh_tokens(app_client, setup):
    first = setup["tokens"]["refresh_token"]
    second = body(refresh(app_client, setup["client"], first))["refresh_token"]
    dump = json.dumps(table_items(""))
    assert first not in dump
    assert second not in dump
    # The key is an HMAC under the pepper, not a plain digest anyone could recompute.
    assert hashlib.sha256(first.encode()).hexdigest() not in dump


def test_refresh_token_hash_is_keyed_with_the_current_pepper(aws, setup):
    raw = aws.client("secretsmanager").get_secret_value(SecretId=f"tessera/{STAGE}/pepper")
    (pepper,) = parse_pepper_set(raw["SecretString"])
    rt = setup["tokens"]["refresh_token"]
    assert rt.startswith(f"tessera_rt_{pepper.id}_")
    expected = hmac.new(
        pepper.secret, b"tessera refresh-token hash\x00" + rt.encode(), hashlib.sha256
    ).hexdigest()
    (item,) = table_items("RT#")
    assert item["pk"] == f"RT#{expected}"
    assert item["pepper_id"] == pepper.id


# --- rotation -------------------------------------------------------------------------------


def test_refresh_returns_new_refresh_token_and_access_token(app_client, setup):
    r = refresh(app_client, setup["client"], setup["tokens"]["refresh_token"])
    assert r.status_code == 200, r.body
    b = body(r)
    assert b["refresh_token"] != setup["tokens"]["refresh_token"]
    assert b["refresh_token"].startswith("tessera_rt_")
    assert b["token_type"] == "Bearer"
    assert r.headers["Cache-Control"] == "no-store"
    old, new = claims(setup["tokens"]["access_token"]), claims(b["access_token"])
    assert new["sid"] == old["sid"]
    assert new["sub"] == old["sub"]
    assert new["jti"] != old["jti"]


def test_successor_refreshes_again(app_client, setup):
    c = setup["client"]
    second = body(refresh(app_client, c, setup["tokens"]["refresh_token"]))["refresh_token"]
    r = refresh(app_client, c, second)
    assert r.status_code == 200, r.body


def test_rotation_retires_the_presented_token(app_client, setup, clock):
    c, first = setup["client"], setup["tokens"]["refresh_token"]
    refresh(app_client, c, first)
    clock.advance(60)
    r = refresh(app_client, c, first)
    assert r.status_code == 400
    assert _error(r) == "invalid_grant"


# --- re-use and the retry window ------------------------------------------------------------


def test_reuse_after_window_revokes_family_including_newest_token(app_client, setup, clock):
    c, first = setup["client"], setup["tokens"]["refresh_token"]
    second = body(refresh(app_client, c, first))["refresh_token"]
    clock.advance(6)  # window is 5 s
    assert _error(refresh(app_client, c, first)) == "invalid_grant"
    r = refresh(app_client, c, second)
    assert r.status_code == 400
    assert _error(r) == "invalid_grant"
    (family,) = table_items("FAMILY#")
    assert family["revoked"] is True
    assert family["revoked_reason"] == "reuse"


def test_reuse_inside_window_returns_same_successor(app_client, setup, clock):
    c, first = setup["client"], setup["tokens"]["refresh_token"]
    r1 = refresh(app_client, c, first)
    clock.advance(4)
    r2 = refresh(app_client, c, first)
    assert r2.status_code == 200, r2.body
    assert body(r2)["refresh_token"] == body(r1)["refresh_token"]
    assert body(r2)["access_token"] != body(r1)["access_token"]


def test_retry_inside_window_leaves_one_live_successor(app_client, setup, clock):
    c, first = setup["client"], setup["tokens"]["refresh_token"]
    successor = body(refresh(app_client, c, first))["refresh_token"]
    refresh(app_client, c, first)
    assert [i["state"] for i in table_items("RT#")].count("active") == 1
    clock.advance(1)
    assert refresh(app_client, c, successor).status_code == 200


def test_reuse_inside_window_after_successor_was_used_revokes_family(app_client, setup, clock):
    c, first = setup["client"], setup["tokens"]["refresh_token"]
    second = body(refresh(app_client, c, first))["refresh_token"]
    clock.advance(1)
    third = body(refresh(app_client, c, second))["refresh_token"]
    clock.advance(1)
    assert _error(refresh(app_client, c, first)) == "invalid_grant"
    assert _error(refresh(app_client, c, third)) == "invalid_grant"


def test_window_zero_never_hands_out_a_successor_twice(app_client, setup, monkeypatch):
    set_env(monkeypatch, TESSERA_REFRESH_RETRY_WINDOW="0")
    c, first = setup["client"], setup["tokens"]["refresh_token"]
    second = body(refresh(app_client, c, first))["refresh_token"]
    r = refresh(app_client, c, first)
    assert _error(r) == "invalid_grant"
    # Overlapping the rotation (same instant) is not theft: the successor lives.
    assert refresh(app_client, c, second).status_code == 200


def test_window_zero_reuse_after_overlap_revokes_family(app_client, setup, clock, monkeypatch):
    set_env(monkeypatch, TESSERA_REFRESH_RETRY_WINDOW="0")
    c, first = setup["client"], setup["tokens"]["refresh_token"]
    second = body(refresh(app_client, c, first))["refresh_token"]
    clock.advance(10)  # OVERLAP_GRACE
    assert _error(refresh(app_client, c, first)) == "invalid_grant"
    assert _error(refresh(app_client, c, second)) == "invalid_grant"


# --- client binding and scope ---------------------------------------------------------------


def test_token_of_another_client_is_invalid_grant(app_client, setup, make_client):
    other = password_client(make_client)
    r = refresh(app_client, other, setup["tokens"]["refresh_token"])
    assert r.status_code == 400
    assert _error(r) == "invalid_grant"


def test_token_presented_by_another_client_still_works_for_its_own(app_client, setup, make_client):
    other = password_client(make_client)
    refresh(app_client, other, setup["tokens"]["refresh_token"])
    assert refresh(app_client, setup["client"], setup["tokens"]["refresh_token"]).status_code == 200


def test_scope_may_narrow_for_the_new_access_token(app_client, setup):
    r = refresh(app_client, setup["client"], setup["tokens"]["refresh_token"], scope="people:read")
    assert r.status_code == 200, r.body
    assert body(r)["scope"] == "people:read"
    assert claims(body(r)["access_token"])["scope"] == "people:read"


def test_new_refresh_token_keeps_the_original_scope_after_narrowing(app_client, setup):
    c = setup["client"]
    narrowed = refresh(app_client, c, setup["tokens"]["refresh_token"], scope="people:read")
    r = refresh(app_client, c, body(narrowed)["refresh_token"])
    assert claims(body(r)["access_token"])["scope"] == "articles:read people:read"


def test_scope_cannot_widen(app_client, make_client, make_user):
    client = password_client(make_client)
    make_user("alice")
    tokens = login(app_client, client, scope="people:read")
    r = refresh(app_client, client, tokens["refresh_token"], scope="people:read articles:read")
    assert r.status_code == 400
    assert _error(r) == "invalid_scope"


def test_refused_widening_does_not_consume_the_token(app_client, make_client, make_user):
    client = password_client(make_client)
    make_user("alice")
    tokens = login(app_client, client, scope="people:read")
    refresh(app_client, client, tokens["refresh_token"], scope="articles:read")
    assert refresh(app_client, client, tokens["refresh_token"]).status_code == 200


# --- lifetimes ------------------------------------------------------------------------------


def test_token_unused_for_the_idle_timeout_is_refused(app_client, setup, clock):
    clock.advance(7 * 86400)
    r = refresh(app_client, setup["client"], setup["tokens"]["refresh_token"])
    assert _error(r) == "invalid_grant"


def test_token_used_just_before_the_idle_timeout_works(app_client, setup, clock):
    clock.advance(7 * 86400 - 1)
    assert refresh(app_client, setup["client"], setup["tokens"]["refresh_token"]).status_code == 200


def test_family_ends_at_its_absolute_lifetime_despite_use(app_client, setup, clock):
    c, token = setup["client"], setup["tokens"]["refresh_token"]
    for _ in range(4):  # every 6 days: always within the 7-day idle timeout
        clock.advance(6 * 86400)
        r = refresh(app_client, c, token)
        assert r.status_code == 200, r.body
        token = body(r)["refresh_token"]
    clock.advance(6 * 86400)
    assert clock.now() - T0 == 30 * 86400
    assert _error(refresh(app_client, c, token)) == "invalid_grant"


# --- what ends a family ---------------------------------------------------------------------


def test_disabled_user_ends_refresh(app_client, setup):
    services.user_store().set_disabled("alice", True)
    assert _error(refresh(app_client, setup["client"], setup["tokens"]["refresh_token"])) == (
        "invalid_grant"
    )


def test_deleted_user_ends_refresh(app_client, setup):
    services.user_store().delete("alice")
    assert _error(refresh(app_client, setup["client"], setup["tokens"]["refresh_token"])) == (
        "invalid_grant"
    )


def test_deleted_client_ends_refresh(app_client, setup, clock):
    services.client_store().delete(setup["client"]["client_id"])
    clock.advance(61)  # past the client cache
    r = refresh(app_client, setup["client"], setup["tokens"]["refresh_token"])
    assert r.status_code == 401
    assert _error(r) == "invalid_client"


@pytest.mark.parametrize(
    "token",
    ["tessera_rt_00000000_" + "A" * 43, "not-a-refresh-token", "tessera_rt_", "tessera_rt_zz_x"],
)
def test_unknown_or_malformed_token_is_invalid_grant(app_client, setup, token):
    r = refresh(app_client, setup["client"], token)
    assert r.status_code == 400
    assert _error(r) == "invalid_grant"


# --- peppers --------------------------------------------------------------------------------


def _put_peppers(aws: Any, peppers: list[Any]) -> None:
    aws.client("secretsmanager").put_secret_value(
        SecretId=f"tessera/{STAGE}/pepper", SecretString=dump_pepper_set(peppers)
    )


def _peppers(aws: Any) -> list[Any]:
    sm = aws.client("secretsmanager")
    return parse_pepper_set(sm.get_secret_value(SecretId=f"tessera/{STAGE}/pepper")["SecretString"])


def test_token_under_previous_pepper_still_refreshes_and_moves_to_current(
    aws, app_client, setup, clock
):
    (old,) = _peppers(aws)
    new = new_pepper(int(clock.now()))
    _put_peppers(aws, [new, type(old)(old.id, old.secret, "previous", old.created)])
    clock.advance(301)  # past the secret cache
    r = refresh(app_client, setup["client"], setup["tokens"]["refresh_token"])
    assert r.status_code == 200, r.body
    assert body(r)["refresh_token"].startswith(f"tessera_rt_{new.id}_")


def test_token_whose_pepper_left_the_set_is_invalid_grant(aws, app_client, setup, clock):
    _put_peppers(aws, [new_pepper(int(clock.now()))])
    clock.advance(301)
    assert _error(refresh(app_client, setup["client"], setup["tokens"]["refresh_token"])) == (
        "invalid_grant"
    )


# --- public clients -------------------------------------------------------------------------


def _public_family(make_client: Any, make_user: Any, grants: list[str]) -> tuple[Any, str]:
    public = make_client(
        public=True,
        grant_types=grants,
        scopes=["people:read"],
        redirect_uris=["https://app.example/callback"],
    )
    user = make_user("bob")
    client = services.cached_clients().get(public["client_id"])
    assert client is not None
    issued = services.refresh_grants().start(
        client=client, subject=user["user_id"], username="bob", scope="people:read", now=int(T0)
    )
    assert issued.token is not None
    return public, issued.token


def test_public_client_registered_for_refresh_gets_rotated_tokens(
    app_client, make_client, make_user
):
    public, token = _public_family(make_client, make_user, ["refresh_token"])
    params = {
        "grant_type": "refresh_token",
        "refresh_token": token,
        "client_id": public["client_id"],
    }
    r = form_post(app_client, "/oauth2/token", params)
    assert r.status_code == 200, r.body
    assert body(r)["refresh_token"] != token


def test_public_client_not_registered_for_refresh_is_refused(app_client, make_client, make_user):
    public, token = _public_family(make_client, make_user, ["authorization_code"])
    params = {
        "grant_type": "refresh_token",
        "refresh_token": token,
        "client_id": public["client_id"],
    }
    r = form_post(app_client, "/oauth2/token", params)
    assert r.status_code == 400
    assert _error(r) == "unauthorized_client"


# --- faults ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "reasons"),
    [
        ("TransactionCanceledException", ["None", "None", "ThrottlingError", "None"]),
        ("TransactionCanceledException", ["TransactionConflict", "None", "None", "None"]),
        ("ThrottlingException", None),
        ("ProvisionedThroughputExceededException", None),
        ("InternalServerError", None),
    ],
)
def test_storage_fault_mid_refresh_is_503_and_issues_nothing(app_client, setup, code, reasons):
    c, first = setup["client"], setup["tokens"]["refresh_token"]
    with failing("TransactWriteItems", code, reasons) as calls:
        r = refresh(app_client, c, first)
    assert calls[0] >= 1
    assert r.status_code == 503
    assert r.headers["Retry-After"]
    assert _error(r) == "temporarily_unavailable"
    assert "refresh_token" not in body(r)
    assert "access_token" not in body(r)


def test_storage_fault_mid_refresh_leaves_state_unchanged(app_client, setup):
    c, first = setup["client"], setup["tokens"]["refresh_token"]
    with failing("TransactWriteItems", "InternalServerError"):
        refresh(app_client, c, first)
    assert [i["state"] for i in table_items("RT#")] == ["active"]
    assert refresh(app_client, c, first).status_code == 200


def test_fault_reading_the_token_is_503(app_client, setup):
    with failing("GetItem", "ThrottlingException"):
        r = refresh(app_client, setup["client"], setup["tokens"]["refresh_token"])
    assert r.status_code == 503


# --- concurrency (in-process threads against moto) -------------------------------------------


def _parallel_refreshes(client: dict[str, Any], token: str, n: int = 20) -> list[Any]:
    from urllib.parse import urlencode

    from chalicelib.core.forms import OAuthRequest
    from chalicelib.web import http

    raw = urlencode({"grant_type": "refresh_token", "refresh_token": token}).encode()
    headers = {"Content-Type": "application/x-www-form-urlencoded", **auth(client)}
    endpoint = services.token_endpoint()
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n

    def one(i: int) -> None:
        barrier.wait()
        req = OAuthRequest("POST", headers, raw)
        results[i] = http.oauth_call(lambda: endpoint.handle(req))

    with serialized_emulator():
        threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    return results


def test_parallel_refreshes_with_window_off_have_exactly_one_winner(setup, monkeypatch):
    set_env(monkeypatch, TESSERA_REFRESH_RETRY_WINDOW="0")
    results = _parallel_refreshes(setup["client"], setup["tokens"]["refresh_token"])
    ok = [json.loads(r.body) for r in results if r.status_code == 200]
    assert len(ok) == 1
    assert {json.loads(r.body)["error"] for r in results if r.status_code != 200} == {
        "invalid_grant"
    }
    active = [i for i in table_items("RT#") if i["state"] == "active"]
    assert len(active) == 1
    assert table_items("FAMILY#")[0]["revoked"] is False


def test_parallel_refreshes_with_window_on_all_get_the_same_successor(setup):
    results = _parallel_refreshes(setup["client"], setup["tokens"]["refresh_token"])
    assert [r.status_code for r in results] == [200] * 20
    successors = {json.loads(r.body)["refresh_token"] for r in results}
    assert len(successors) == 1
    assert len([i for i in table_items("RT#") if i["state"] == "active"]) == 1


# --- cost -----------------------------------------------------------------------------------


def test_warm_refresh_costs_two_aws_calls(app_client, setup):
    from chalicelib.store import aws

    calls: list[str] = []

    def record(model: Any, **_: Any) -> None:
        calls.append(model.name)

    clients = [aws.client("dynamodb"), aws.client("secretsmanager")]
    for c in clients:
        c.meta.events.register("before-call", record, unique_id="count-calls")
    try:
        r = refresh(app_client, setup["client"], setup["tokens"]["refresh_token"])
    finally:
        for c in clients:
            c.meta.events.unregister("before-call", unique_id="count-calls")
    assert r.status_code == 200
    assert calls == ["GetItem", "TransactWriteItems"]
