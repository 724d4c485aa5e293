"""Brute-force protection of the password grant (RFC 6749 §4.3.2): chalicelib.login_guard."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib import services
from chalicelib.errors import InvalidGrant
from chalicelib.forms import OAuthRequest
from chalicelib.login_guard import user_pk
from tests.conftest import STAGE, basic, body, form_post

PASSWORD = "correct horse battery"
THRESHOLD = 5  # the default TESSERA_LOCKOUT_THRESHOLD
BASE = 60  # the default TESSERA_LOCKOUT_BASE_SECONDS


@pytest.fixture
def login(app_client, make_client, make_user):
    c = make_client(grant_types=["password"])
    make_user("alice", PASSWORD)

    def attempt(username: str, password: str) -> Any:
        return form_post(
            app_client,
            "/oauth2/token",
            {"grant_type": "password", "username": username, "password": password},
            {"Authorization": basic(c["client_id"], c["client_secret"])},
        )

    attempt.client = c  # type: ignore[attr-defined]
    return attempt


def fail(login, username: str, times: int) -> None:
    for _ in range(times):
        assert login(username, "wrong password").status_code == 400


def counter_item(aws, username: str) -> dict[str, Any] | None:
    ddb = aws.client("dynamodb")
    resp = ddb.get_item(
        TableName=f"tessera-{STAGE}",
        Key={"pk": {"S": user_pk(username)}, "sk": {"S": "LOGIN"}},
    )
    item: dict[str, Any] | None = resp.get("Item")
    return item


def test_correct_password_is_refused_while_locked(login):
    fail(login, "alice", THRESHOLD)
    r = login("alice", PASSWORD)
    assert r.status_code == 400
    assert body(r) == {
        "error": "invalid_grant",
        "error_description": "invalid username or password",
    }


def test_locked_answer_is_identical_to_wrong_password(login):
    wrong = login("alice", "wrong password")
    fail(login, "alice", THRESHOLD - 1)
    locked = login("alice", PASSWORD)
    assert (locked.status_code, locked.body) == (wrong.status_code, wrong.body)
    assert locked.headers.get("Retry-After") is None


def test_lock_ends_after_base_interval(login, clock):
    fail(login, "alice", THRESHOLD)
    clock.advance(BASE - 1)
    assert login("alice", PASSWORD).status_code == 400
    clock.advance(1)
    assert login("alice", PASSWORD).status_code == 200


def test_lock_interval_doubles_with_further_failures(login, clock):
    fail(login, "alice", THRESHOLD)
    clock.advance(BASE)
    fail(login, "alice", 1)  # the first failure after the lock: locked for 2 x base
    clock.advance(2 * BASE - 1)
    assert login("alice", PASSWORD).status_code == 400
    clock.advance(1)
    assert login("alice", PASSWORD).status_code == 200


def test_attempts_while_locked_do_not_extend_the_lock(login, clock):
    fail(login, "alice", THRESHOLD)
    for _ in range(3):
        clock.advance(10)
        assert login("alice", PASSWORD).status_code == 400
    clock.advance(BASE - 30)
    assert login("alice", PASSWORD).status_code == 200


def test_success_resets_the_failure_count(login, aws):
    fail(login, "alice", THRESHOLD - 1)
    assert login("alice", PASSWORD).status_code == 200
    assert counter_item(aws, "alice") is None
    fail(login, "alice", THRESHOLD - 1)
    assert login("alice", PASSWORD).status_code == 200


def test_failures_are_forgotten_a_day_after_the_last_one(login, clock):
    fail(login, "alice", THRESHOLD - 1)
    clock.advance(24 * 3600)
    fail(login, "alice", 1)  # would be the threshold-th failure if the old ones still counted
    assert login("alice", PASSWORD).status_code == 200


def test_unknown_username_is_counted_like_a_known_one(login, aws):
    fail(login, "alice", 2)
    fail(login, "mallory", 2)
    known, unknown = counter_item(aws, "alice"), counter_item(aws, "mallory")
    assert known is not None
    assert unknown is not None
    assert unknown["failures"] == known["failures"] == {"N": "2"}
    assert set(unknown) == set(known)


def test_unknown_username_answers_like_a_locked_known_one(login):
    fail(login, "alice", THRESHOLD)
    fail(login, "mallory", THRESHOLD)
    a, m = login("alice", "another guess"), login("mallory", "another guess")
    assert (a.status_code, a.body, sorted(a.headers)) == (m.status_code, m.body, sorted(m.headers))


def test_username_is_normalized_before_counting(login):
    fail(login, "ALICE", THRESHOLD)
    assert login("alice", PASSWORD).status_code == 400


def test_lockout_of_one_user_leaves_others_alone(login, make_user):
    make_user("bob", PASSWORD)
    fail(login, "alice", THRESHOLD)
    assert login("bob", PASSWORD).status_code == 200


def test_admin_unlock_ends_the_lock(login, capsys):
    from chalicelib import admin

    fail(login, "alice", THRESHOLD)
    assert admin.main(["--stage", "test", "user", "unlock", "Alice"], configure=lambda _: None) == 0
    assert "unlocked" in capsys.readouterr().out
    assert login("alice", PASSWORD).status_code == 200


def test_admin_unlock_of_an_unlocked_user_says_so(login, capsys):
    from chalicelib import admin

    assert admin.main(["--stage", "test", "user", "unlock", "alice"], configure=lambda _: None) == 0
    assert "was not locked" in capsys.readouterr().out


def test_failure_counted_between_check_and_success_refuses_the_login(login, clock):
    guard = services.login_guard()
    client_id = login.client["client_id"]
    now = int(clock.now())
    guard.check("alice", client_id, None, now)
    guard.failed("alice", client_id, None, now)  # a concurrent wrong guess lands first
    with pytest.raises(InvalidGrant):
        guard.succeeded("alice", client_id, None, now)


def direct_login(client: dict[str, Any], username: str, password: str, ip: str) -> Any:
    from urllib.parse import urlencode

    request = OAuthRequest(
        "POST",
        {
            "Content-Type": "application/x-www-form-urlencoded",
            "Authorization": basic(client["client_id"], client["client_secret"]),
        },
        urlencode({"grant_type": "password", "username": username, "password": password}).encode(),
        source_ip=ip,
    )
    return services.token_endpoint().handle(request)


@pytest.fixture
def strict(monkeypatch, aws):
    """A threshold of 1: the per-address limit is 10 failures, the per-client limit 100."""
    monkeypatch.setenv("TESSERA_LOCKOUT_THRESHOLD", "1")
    services.reset()


def test_source_address_over_its_limit_is_refused_even_with_a_valid_login(
    strict, make_client, make_user, clock
):
    c = make_client(grant_types=["password"])
    make_user("alice", PASSWORD)
    guard = services.login_guard()
    for i in range(10):  # password spraying: one guess per username, from one address
        guard.failed(f"user{i}", c["client_id"], "192.0.2.7", int(clock.now()))
    with pytest.raises(InvalidGrant):
        direct_login(c, "alice", PASSWORD, "192.0.2.7")


def test_spraying_from_one_address_does_not_lock_others_out(strict, make_client, make_user, clock):
    c = make_client(grant_types=["password"])
    make_user("alice", PASSWORD)
    guard = services.login_guard()
    for i in range(10):
        guard.failed(f"user{i}", c["client_id"], "192.0.2.7", int(clock.now()))
    assert "access_token" in direct_login(c, "alice", PASSWORD, "198.51.100.1")


def test_source_address_limit_ends_with_its_window(strict, make_client, make_user, clock):
    c = make_client(grant_types=["password"])
    make_user("alice", PASSWORD)
    guard = services.login_guard()
    for i in range(10):
        guard.failed(f"user{i}", c["client_id"], "192.0.2.7", int(clock.now()))
    clock.advance(3600)
    assert "access_token" in direct_login(c, "alice", PASSWORD, "192.0.2.7")


def test_client_over_its_limit_is_refused(strict, make_client, make_user, clock):
    c = make_client(grant_types=["password"])
    other = make_client(grant_types=["password"])
    make_user("alice", PASSWORD)
    guard = services.login_guard()
    for i in range(100):
        guard.failed(f"user{i}", c["client_id"], None, int(clock.now()))
    with pytest.raises(InvalidGrant):
        direct_login(c, "alice", PASSWORD, "198.51.100.1")
    assert "access_token" in direct_login(other, "alice", PASSWORD, "198.51.100.1")


def test_password_login_costs_at_most_three_aws_calls(login):
    assert login("alice", PASSWORD).status_code == 200  # warms the client and key caches
    from chalicelib import aws as aws_clients

    calls: list[str] = []

    def count(**kwargs: Any) -> None:
        calls.append(kwargs["event_name"])

    for name in ("dynamodb", "secretsmanager"):
        aws_clients.client(name).meta.events.register("before-call", count)
    assert login("alice", PASSWORD).status_code == 200
    assert len(calls) <= 3, calls


def test_failed_login_with_unknown_and_known_user_make_the_same_aws_calls(login):
    assert login("alice", "warm up").status_code == 400
    from chalicelib import aws as aws_clients

    calls: list[str] = []
    aws_clients.client("dynamodb").meta.events.register(
        "before-call", lambda **kw: calls.append(kw["event_name"])
    )
    login("alice", "wrong password")
    known = list(calls)
    calls.clear()
    login("nobody", "wrong password")
    assert calls == known
