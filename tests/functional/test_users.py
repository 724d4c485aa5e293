"""Users: the username normalisation policy and the DynamoDB store.

Policy (chalicelib/store/users.py): NFKC, then case-folded; 1-128 characters; no control or format
characters; no surrounding white space. ``sub`` is a random user id, never the username.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.core.records import MAX_USERNAME, InvalidUsername, User, normalize_username
from chalicelib.store.users import UserExists, new_user_id
from chalicelib.web import services

FAKE_PHC = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA"  # not hashed


# --- normalisation -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("Alice", "alice", id="case"),
        pytest.param("ALICE", "alice", id="upper-case"),
        pytest.param("\uff21lice", "alice", id="fullwidth-compatibility-form"),
        pytest.param("Stra\u00dfe", "strasse", id="sharp-s-folds"),
        pytest.param("Zoe\u0308", "zo\u00eb", id="combining-sequence-composed"),
        pytest.param("\u2167", "viii", id="roman-numeral-compatibility"),
        pytest.param("mary ann", "mary ann", id="inner-space-kept"),
    ],
)
def test_usernames_are_nfkc_normalised_and_case_folded(raw: str, expected: str) -> None:
    assert normalize_username(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param("", id="empty"),
        pytest.param(" alice", id="leading-space"),
        pytest.param("alice ", id="trailing-space"),
        pytest.param("\u3000alice", id="ideographic-space-becomes-leading-space"),
        pytest.param("ali\x00ce", id="nul"),
        pytest.param("ali\nce", id="newline"),
        pytest.param("ali\u200bce", id="zero-width-space"),
        pytest.param("ali\u202ece", id="bidi-override"),
        pytest.param("a" * (MAX_USERNAME + 1), id="too-long"),
        pytest.param("\ufdfa" * 8, id="too-long-after-nfkc"),
    ],
)
def test_invalid_usernames_are_refused(raw: str) -> None:
    with pytest.raises(InvalidUsername):
        normalize_username(raw)


def test_longest_allowed_username_is_accepted() -> None:
    assert normalize_username("a" * MAX_USERNAME) == "a" * MAX_USERNAME


@given(st.text(min_size=1, max_size=40))
def test_normalisation_is_idempotent(raw: str) -> None:
    try:
        once = normalize_username(raw)
    except InvalidUsername:
        return
    assert normalize_username(once) == once


# --- user ids --------------------------------------------------------------------------------


def test_user_ids_are_random_and_not_derived_from_the_username() -> None:
    ids = {new_user_id() for _ in range(100)}
    assert len(ids) == 100
    for user_id in ids:
        assert user_id.startswith("u_")
        assert len(user_id) == 2 + 24  # 96 random bits, hex


# --- the store -------------------------------------------------------------------------------


def test_store_returns_the_user_it_created(aws) -> None:
    store = services.user_store()
    store.create(User(username="alice", user_id="u_1", password_hash=FAKE_PHC, created_at=5))
    assert store.get("alice") == User("alice", "u_1", FAKE_PHC, disabled=False, created_at=5)


def test_store_refuses_a_duplicate_username(aws) -> None:
    store = services.user_store()
    store.create(User(username="alice", user_id="u_1", password_hash=FAKE_PHC))
    with pytest.raises(UserExists):
        store.create(User(username="alice", user_id="u_2", password_hash=FAKE_PHC))
    found = store.get("alice")
    assert found is not None
    assert found.user_id == "u_1"


def test_unknown_user_is_none(aws) -> None:
    assert services.user_store().get("nobody") is None


def test_disable_marks_the_user_and_reports_unknown_users(aws) -> None:
    store = services.user_store()
    store.create(User(username="alice", user_id="u_1", password_hash=FAKE_PHC))
    assert store.set_disabled("alice", True)
    found = store.get("alice")
    assert found is not None
    assert found.disabled
    assert not store.set_disabled("nobody", True)
    assert store.get("nobody") is None  # an update never creates a user


def test_set_password_hash_replaces_the_hash_and_keeps_the_user_id(aws) -> None:
    store = services.user_store()
    store.create(User(username="alice", user_id="u_1", password_hash=FAKE_PHC))
    assert store.set_password_hash("alice", FAKE_PHC + "x")
    found = store.get("alice")
    assert found is not None
    assert (found.password_hash, found.user_id) == (FAKE_PHC + "x", "u_1")
    assert not store.set_password_hash("nobody", FAKE_PHC)


def test_delete_removes_the_user(aws) -> None:
    store = services.user_store()
    store.create(User(username="alice", user_id="u_1", password_hash=FAKE_PHC))
    assert store.delete("alice")
    assert store.get("alice") is None
    assert not store.delete("alice")


def test_admin_create_user_stores_the_normalised_name(make_user) -> None:
    created = make_user("ALICE", "correct horse battery")
    assert created["username"] == "alice"
    found = services.user_store().get("alice")
    assert found is not None
    assert found.user_id == created["user_id"]
    assert found.password_hash.startswith("$argon2id$")
