"""Brute-force protection of password logins (RFC 6749 §4.3.2; README, "Security", "Lockout
policy"): chalicelib.oauth.login_guard, through the password grant and the hosted pages.

Two families of properties: guessing stays slow (per username across its variants, per source,
the same answer and work for unknown usernames), and no stranger can deny service to somebody
else (nothing a whole client or page shares; a user keeps signing in where she usually does).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import pytest

from chalicelib.core.errors import InvalidGrant
from chalicelib.core.forms import OAuthRequest
from chalicelib.oauth.login import Attempt
from chalicelib.store.login_attempts import user_pk
from chalicelib.web import services
from tests.functional.conftest import STAGE, basic, body, form_post
from tests.functional.test_authorize import REDIRECT, Browser, authorize_path, hidden, html, sign_in

PASSWORD = "correct horse battery"
THRESHOLD = 5  # the default TESSERA_LOCKOUT_THRESHOLD
BASE = 60  # the default TESSERA_LOCKOUT_BASE_SECONDS
USERNAME_THRESHOLD = 4 * THRESHOLD  # failures of one username from anywhere before it waits


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
    """The username-wide counter."""
    ddb = aws.client("dynamodb")
    resp = ddb.get_item(
        TableName=f"tessera-{STAGE}",
        Key={"pk": {"S": user_pk(username)}, "sk": {"S": "LOGIN"}},
    )
    item: dict[str, Any] | None = resp.get("Item")
    return item


def direct_login(client: dict[str, Any], username: str, password: str, ip: str) -> Any:
    """A password-grant request as API Gateway hands it over, from source address ``ip``."""
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


def refused(client: dict[str, Any], username: str, password: str, ip: str) -> bool:
    try:
        direct_login(client, username, password, ip)
    except InvalidGrant:
        return True
    return False


def guess(client: dict[str, Any], username: str, ip: str, times: int) -> None:
    for _ in range(times):
        assert refused(client, username, "wrong password", ip)


@pytest.fixture
def from_source(monkeypatch) -> Callable[[str], None]:
    """Send the app client's next requests from ``ip`` (chalice.test sends from 127.0.0.1)."""
    from chalice.local import LambdaEventConverter

    def use(ip: str) -> None:
        monkeypatch.setattr(LambdaEventConverter, "LOCAL_SOURCE_IP", ip)

    return use


@pytest.fixture
def strict(monkeypatch, aws):
    """A threshold of 1: one username waits after 1 failure from one source and after 4 from
    anywhere; a source is limited after 10 failures. (The old per-client limit was 100.)"""
    monkeypatch.setenv("TESSERA_LOCKOUT_THRESHOLD", "1")
    services.reset()


@pytest.fixture
def spa(make_client):
    return make_client(
        name="Photo App",
        grant_types=["authorization_code"],
        scopes=["people:read"],
        public=True,
        redirect_uris=[REDIRECT],
    )


def page_sign_in(app_client, spa, username: str = "alice", password: str = PASSWORD) -> Any:
    return sign_in(Browser(app_client), authorize_path(spa["client_id"]), username, password)


def signed_in_on_page(resp: Any) -> bool:
    return 'value="consent"' in html(resp)


def account_sign_in(app_client, username: str = "alice", password: str = PASSWORD) -> Any:
    b = Browser(app_client)
    page = b.get("/account/apps")
    return b.post(
        "/account/login",
        {"csrf": hidden(html(page), "csrf"), "username": username, "password": password},
    )


# --- guessing one username ------------------------------------------------------------------


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


@pytest.mark.parametrize("variant", ["ALICE", "Alice", "\uff41\uff4c\uff49\uff43\uff45"])
def test_username_is_normalized_before_counting(login, variant):
    """Case and width variants (NFKC + casefold) count on alice's counter."""
    fail(login, variant, THRESHOLD)
    assert login("alice", PASSWORD).status_code == 400


def test_lockout_of_one_user_leaves_others_alone(login, make_user):
    make_user("bob", PASSWORD)
    fail(login, "alice", THRESHOLD)
    assert login("bob", PASSWORD).status_code == 200


def test_guessing_one_username_from_many_sources_is_slowed_down(aws, make_client, make_user, clock):
    """Each source gets only its own few guesses, and all sources together a few more: then
    every new source waits too, growing like the per-source wait."""
    c = make_client(grant_types=["password"])
    make_user("alice", PASSWORD)
    for i in range(USERNAME_THRESHOLD // THRESHOLD):
        guess(c, "alice", f"203.0.113.{i + 1}", THRESHOLD)
    assert refused(c, "alice", PASSWORD, "198.51.100.1")  # a source never seen before
    clock.advance(BASE)
    assert "access_token" in direct_login(c, "alice", PASSWORD, "198.51.100.1")


def test_a_known_source_still_waits_after_its_own_guesses(aws, make_client, make_user):
    """Being known where alice signs in exempts nothing from that source's own limit: a guesser
    behind her address gets the per-source wait."""
    c = make_client(grant_types=["password"])
    make_user("alice", PASSWORD)
    assert "access_token" in direct_login(c, "alice", PASSWORD, "192.0.2.10")
    guess(c, "alice", "192.0.2.10", THRESHOLD)
    assert refused(c, "alice", PASSWORD, "192.0.2.10")


def test_failure_counted_between_check_and_success_refuses_the_login(login, clock):
    guard = services.login_guard()
    client_id = login.client["client_id"]
    now = int(clock.now())
    attempt = guard.check("alice", client_id, None, now)
    guard.failed(guard.check("alice", client_id, None, now), now)  # a concurrent guess lands
    with pytest.raises(InvalidGrant):
        guard.succeeded(attempt, now)


def test_a_burst_of_guesses_from_many_sources_cannot_slip_the_right_password_through(login, clock):
    """Guesses read the counters before any of them is counted; a failure counted from another
    source in between still refuses the right one."""
    guard = services.login_guard()
    client_id = login.client["client_id"]
    now = int(clock.now())
    right = guard.check("alice", client_id, "203.0.113.1", now)
    guard.failed(guard.check("alice", client_id, "203.0.113.2", now), now)
    with pytest.raises(InvalidGrant):
        guard.succeeded(right, now)


# --- the guard hands over the user it read ----------------------------------------------------


def test_check_returns_the_user_it_read_for_each_attempt(login, make_user, clock):
    """No prefetch kept on the side: two attempts checked in turn on one thread each carry their
    own user, and each one's success is judged by what its own check read."""
    make_user("bob", PASSWORD)
    guard = services.login_guard()
    client_id = login.client["client_id"]
    now = int(clock.now())
    alice = guard.check("alice", client_id, "192.0.2.1", now)
    bob = guard.check("bob", client_id, "192.0.2.2", now)
    nobody = guard.check("nobody", client_id, "192.0.2.3", now)
    assert (alice.user and alice.user.username, bob.user and bob.user.username) == ("alice", "bob")
    assert nobody.user is None
    guard.succeeded(alice, now)
    guard.succeeded(bob, now)


def test_success_not_checked_by_the_guard_is_refused(login, clock):
    guard = services.login_guard()
    forged = Attempt("alice", login.client["client_id"], None, None)
    with pytest.raises(InvalidGrant):
        guard.succeeded(forged, int(clock.now()))


# --- nobody can lock out somebody else -------------------------------------------------------


def test_strangers_cannot_lock_out_a_client(strict, app_client, spa, make_user, from_source):
    """Failed sign-ins with made-up usernames through a public client's hosted page (no secret
    needed), from many sources: the client's real users still sign in."""
    make_user("alice", PASSWORD)
    stranger = Browser(app_client)
    page = html(stranger.get(authorize_path(spa["client_id"])))
    form = {"request": hidden(page, "request"), "csrf": hidden(page, "csrf"), "step": "login"}
    for i in range(100):  # one form, posted again and again
        from_source(f"10.0.0.{i + 1}")
        attempt = {**form, "username": f"stranger{i}", "password": "guess"}
        assert stranger.post("/oauth2/authorize", attempt).status_code == 401
    from_source("198.51.100.1")
    assert signed_in_on_page(page_sign_in(app_client, spa))


def test_account_page_sign_ins_do_not_share_one_counter(strict, app_client, make_user, from_source):
    make_user("alice", PASSWORD)
    stranger = Browser(app_client)
    csrf = hidden(html(stranger.get("/account/apps")), "csrf")
    for i in range(100):
        from_source(f"10.0.1.{i + 1}")
        attempt = {"csrf": csrf, "username": f"stranger{i}", "password": "guess"}
        assert stranger.post("/account/login", attempt).status_code == 401
    from_source("198.51.100.1")
    assert account_sign_in(app_client).status_code == 303


def test_a_stranger_elsewhere_cannot_lock_a_user_out(app_client, spa, make_user, from_source):
    """Guessing alice's password from one source makes that source wait, not alice."""
    make_user("alice", PASSWORD)
    from_source("203.0.113.66")
    for _ in range(THRESHOLD + 3):
        assert page_sign_in(app_client, spa, "alice", "guess").status_code == 401
    assert not signed_in_on_page(page_sign_in(app_client, spa))  # the guesser's source waits
    from_source("198.51.100.1")  # alice, from a source she never used before
    assert signed_in_on_page(page_sign_in(app_client, spa))


def test_a_user_keeps_signing_in_where_she_usually_does_while_strangers_guess(
    aws, make_client, make_user
):
    """Enough sources guessing alice's password make every new source wait; where she signed
    in before she is not kept out."""
    c = make_client(grant_types=["password"])
    make_user("alice", PASSWORD)
    assert "access_token" in direct_login(c, "alice", PASSWORD, "198.51.100.7")
    for i in range(USERNAME_THRESHOLD // THRESHOLD + 2):
        guess(c, "alice", f"203.0.113.{i + 1}", THRESHOLD)
    assert refused(c, "alice", PASSWORD, "198.51.100.8")
    assert "access_token" in direct_login(c, "alice", PASSWORD, "198.51.100.7")


def test_spraying_behind_a_shared_address_does_not_lock_out_its_regular_users(
    strict, make_client, make_user
):
    c = make_client(grant_types=["password"])
    make_user("alice", PASSWORD)
    make_user("bob", PASSWORD)
    nat = "192.0.2.7"
    assert "access_token" in direct_login(c, "alice", PASSWORD, nat)
    for i in range(10):  # password spraying: one guess per username, from alice's address
        assert refused(c, f"user{i}", "guess", nat)
    assert "access_token" in direct_login(c, "alice", PASSWORD, nat)
    assert refused(c, "bob", PASSWORD, nat)  # never signed in from there: the limit holds


# --- spraying from one source -----------------------------------------------------------------


def test_source_address_over_its_limit_is_refused_even_with_a_valid_login(
    strict, make_client, make_user
):
    c = make_client(grant_types=["password"])
    make_user("alice", PASSWORD)
    for i in range(10):  # password spraying: one guess per username, from one address
        assert refused(c, f"user{i}", "guess", "192.0.2.7")
    assert refused(c, "alice", PASSWORD, "192.0.2.7")


def test_spraying_from_one_address_does_not_lock_others_out(strict, make_client, make_user):
    c = make_client(grant_types=["password"])
    make_user("alice", PASSWORD)
    for i in range(10):
        assert refused(c, f"user{i}", "guess", "192.0.2.7")
    assert "access_token" in direct_login(c, "alice", PASSWORD, "198.51.100.1")


def test_source_address_limit_ends_with_its_window(strict, make_client, make_user, clock):
    c = make_client(grant_types=["password"])
    make_user("alice", PASSWORD)
    for i in range(10):
        assert refused(c, f"user{i}", "guess", "192.0.2.7")
    clock.advance(3600)
    assert "access_token" in direct_login(c, "alice", PASSWORD, "192.0.2.7")


def test_addresses_of_one_ipv6_subnet_count_as_one_source(strict, make_client, make_user):
    """A host usually holds a whole /64: spraying from its addresses is one source."""
    c = make_client(grant_types=["password"])
    make_user("alice", PASSWORD)
    for i in range(10):
        assert refused(c, f"user{i}", "guess", f"2001:db8:1:2::{i + 1:x}")
    assert refused(c, "alice", PASSWORD, "2001:db8:1:2:ffff::1")
    assert "access_token" in direct_login(c, "alice", PASSWORD, "2001:db8:1:3::1")


# --- operations -------------------------------------------------------------------------------


def test_admin_unlock_ends_the_lock(login, capsys):
    from chalicelib.ops import admin

    fail(login, "alice", THRESHOLD)
    assert admin.main(["--stage", "test", "user", "unlock", "Alice"], configure=lambda _: None) == 0
    assert "unlocked" in capsys.readouterr().out
    assert login("alice", PASSWORD).status_code == 200


def test_admin_unlock_ends_the_waits_of_every_source(aws, make_client, make_user, capsys):
    from chalicelib.ops import admin

    c = make_client(grant_types=["password"])
    make_user("alice", PASSWORD)
    sources = [f"203.0.113.{i + 1}" for i in range(USERNAME_THRESHOLD // THRESHOLD)]
    for ip in sources:
        guess(c, "alice", ip, THRESHOLD)
    assert admin.main(["--stage", "test", "user", "unlock", "alice"], configure=lambda _: None) == 0
    assert "unlocked" in capsys.readouterr().out
    for ip in [*sources, "198.51.100.1"]:
        assert "access_token" in direct_login(c, "alice", PASSWORD, ip)


def test_admin_unlock_of_an_unlocked_user_says_so(login, capsys):
    from chalicelib.ops import admin

    assert admin.main(["--stage", "test", "user", "unlock", "alice"], configure=lambda _: None) == 0
    assert "was not locked" in capsys.readouterr().out


# --- cost and equal work -----------------------------------------------------------------------


def _dynamodb_calls() -> list[str]:
    from chalicelib.store import aws as aws_clients

    calls: list[str] = []
    aws_clients.client("dynamodb").meta.events.register(
        "before-call", lambda **kw: calls.append(kw["event_name"])
    )
    return calls


def test_password_login_costs_at_most_three_aws_calls(login):
    assert login("alice", PASSWORD).status_code == 200  # warms the client and key caches
    from chalicelib.store import aws as aws_clients

    calls: list[str] = []

    def count(**kwargs: Any) -> None:
        calls.append(kwargs["event_name"])

    for name in ("dynamodb", "secretsmanager"):
        aws_clients.client(name).meta.events.register("before-call", count)
    assert login("alice", PASSWORD).status_code == 200
    assert len(calls) <= 3, calls


def test_failed_login_with_unknown_and_known_user_make_the_same_aws_calls(login):
    assert login("alice", "warm up").status_code == 400
    calls = _dynamodb_calls()
    login("alice", "wrong password")
    known = list(calls)
    calls.clear()
    login("nobody", "wrong password")
    assert calls == known


def test_a_waiting_attempt_makes_the_same_aws_calls_as_a_wrong_password(login):
    assert login("alice", "warm up").status_code == 400
    calls = _dynamodb_calls()
    login("alice", "wrong password")
    wrong = list(calls)
    fail(login, "alice", THRESHOLD)
    calls.clear()
    login("alice", PASSWORD)  # waits
    assert calls == wrong
