"""Admin ``grants list`` / ``grants revoke``: a user's refresh-token families."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib.ops import admin
from chalicelib.store import aws
from tests.functional.conftest import T0, body
from tests.functional.refresh_support import login, password_client, refresh


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()  # drop what earlier requests printed (the JSON request/audit log lines)
    code = admin.main(["--stage", "test", *argv], configure=lambda stage: None)
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def setup(app_client: Any, make_client: Any, make_user: Any) -> dict[str, Any]:
    """alice has one grant with client a and one with client b."""
    a, b = password_client(make_client), password_client(make_client)
    make_user("alice")
    return {"a": a, "b": b, "ta": login(app_client, a), "tb": login(app_client, b)}


def test_list_shows_each_grant_with_client_scope_created_and_last_used(
    app_client, setup, capsys, clock
):
    clock.advance(100)
    refresh(app_client, setup["a"], setup["ta"]["refresh_token"])
    code, out, _ = run(capsys, "grants", "list", "--username", "Alice", "--json")
    assert code == 0
    grants = {g["client_id"]: g for g in json.loads(out)}
    assert set(grants) == {setup["a"]["client_id"], setup["b"]["client_id"]}
    a = grants[setup["a"]["client_id"]]
    assert a["scope"] == "articles:read people:read"
    assert a["created"] == int(T0)
    assert a["last_used"] == int(T0) + 100


def test_list_text_names_the_clients(setup, capsys):
    code, out, _ = run(capsys, "grants", "list", "--username", "alice")
    assert code == 0
    assert setup["a"]["client_id"] in out
    assert setup["b"]["client_id"] in out


def test_list_is_a_query_not_a_scan(setup, capsys):
    operations: list[str] = []

    def record(model: Any, **_: Any) -> None:
        operations.append(model.name)

    events = aws.client("dynamodb").meta.events
    events.register("before-call.dynamodb", record, unique_id="count-ops")
    try:
        run(capsys, "grants", "list", "--username", "alice")
    finally:
        events.unregister("before-call.dynamodb", unique_id="count-ops")
    assert operations == ["Query"]


@pytest.mark.parametrize("action", ["list", "revoke"])
def test_grants_of_an_unknown_user_are_a_one_line_error(setup, capsys, action):
    code, out, err = run(capsys, "grants", action, "--username", "nobody", "--json")
    assert code == 2
    assert out == ""
    assert err.splitlines() == ["error: no such user: nobody"]


@pytest.mark.parametrize("action", ["list", "revoke"])
def test_grants_for_an_unknown_client_are_a_one_line_error(setup, capsys, action):
    code, out, err = run(capsys, "grants", action, "--username", "alice", "--client", "nope")
    assert code == 2
    assert out == ""
    assert err.splitlines() == ["error: no such client: nope"]


def test_list_of_a_known_user_without_grants_is_empty(setup, capsys, make_user):
    make_user("bob")
    code, out, _ = run(capsys, "grants", "list", "--username", "bob", "--json")
    assert code == 0
    assert json.loads(out) == []


def test_revoke_for_one_client_ends_only_that_grant(app_client, setup, capsys):
    code, _, _ = run(
        capsys, "grants", "revoke", "--username", "alice", "--client", setup["a"]["client_id"]
    )
    assert code == 0
    assert body(refresh(app_client, setup["a"], setup["ta"]["refresh_token"]))["error"] == (
        "invalid_grant"
    )
    assert refresh(app_client, setup["b"], setup["tb"]["refresh_token"]).status_code == 200


def test_revoke_all_ends_every_grant_of_the_user(app_client, setup, capsys):
    code, out, _ = run(capsys, "grants", "revoke", "--username", "alice", "--json")
    assert code == 0
    assert len(json.loads(out)["revoked"]) == 2
    for client, tokens in (("a", "ta"), ("b", "tb")):
        r = refresh(app_client, setup[client], setup[tokens]["refresh_token"])
        assert body(r)["error"] == "invalid_grant"


def test_revoked_grants_leave_the_list(setup, capsys):
    run(capsys, "grants", "revoke", "--username", "alice", "--client", setup["a"]["client_id"])
    _, out, _ = run(capsys, "grants", "list", "--username", "alice", "--json")
    assert [g["client_id"] for g in json.loads(out)] == [setup["b"]["client_id"]]


def test_expired_grants_leave_the_list(setup, capsys, clock):
    clock.advance(30 * 86400)
    _, out, _ = run(capsys, "grants", "list", "--username", "alice", "--json")
    assert json.loads(out) == []


def test_invalid_username_is_a_one_line_error(setup, capsys):
    code, _, err = run(capsys, "grants", "list", "--username", " ")
    assert code == 2
    assert err.startswith("error: ")
