"""Password hashing: Argon2id in PHC strings, parameters carried with the hash (RFC 9106)."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

from chalicelib.tokens import passwords

PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def stored() -> str:
    return passwords.hash_password(PASSWORD)


def phc(memory_kib: int, iterations: int, lanes: int) -> str:
    kdf = Argon2id(
        salt=b"0123456789abcdef",
        length=32,
        iterations=iterations,
        lanes=lanes,
        memory_cost=memory_kib,
    )
    return kdf.derive_phc_encoded(PASSWORD.encode())


def test_hash_is_an_argon2id_phc_string_with_its_parameters(stored: str) -> None:
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")


def test_hashes_of_the_same_password_differ_by_salt(stored: str) -> None:
    assert passwords.hash_password(PASSWORD) != stored


def test_the_right_password_verifies(stored: str) -> None:
    assert passwords.verify_password(PASSWORD, stored)


def test_a_wrong_password_does_not_verify(stored: str) -> None:
    assert not passwords.verify_password(PASSWORD + "!", stored)


def test_no_stored_hash_never_verifies_even_with_the_dummy_password() -> None:
    # Unknown users are checked against a dummy hash; that check must never succeed.
    assert not passwords.verify_password(PASSWORD, None)
    assert not passwords.verify_password("", None)


def test_a_malformed_stored_hash_does_not_verify_and_does_not_raise() -> None:
    assert not passwords.verify_password(PASSWORD, "$argon2id$garbage")
    assert not passwords.verify_password(PASSWORD, "sha256:abcdef")


def test_a_hash_with_the_current_parameters_needs_no_rehash(stored: str) -> None:
    assert not passwords.needs_rehash(stored)


@pytest.mark.parametrize(
    ("memory_kib", "iterations", "lanes"),
    [
        pytest.param(8 * 1024, 2, 1, id="less-memory"),
        pytest.param(19 * 1024, 1, 1, id="fewer-iterations"),
        pytest.param(19 * 1024, 2, 2, id="other-lanes"),
    ],
)
def test_weaker_parameters_need_a_rehash(memory_kib: int, iterations: int, lanes: int) -> None:
    assert passwords.needs_rehash(phc(memory_kib, iterations, lanes))


def test_stronger_parameters_need_no_rehash() -> None:
    assert not passwords.needs_rehash(phc(32 * 1024, 3, 1))


def test_a_hash_of_another_scheme_needs_a_rehash() -> None:
    assert passwords.needs_rehash("$2b$12$abcdefghijklmnopqrstuv")
    assert passwords.needs_rehash("$argon2i$v=19$m=65536,t=3,p=1$c2FsdA$aGFzaA")


def test_a_hash_with_old_parameters_still_verifies() -> None:
    assert passwords.verify_password(PASSWORD, phc(8 * 1024, 1, 1))
