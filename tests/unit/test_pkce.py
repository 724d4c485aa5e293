"""PKCE (RFC 7636): S256 only, verifier syntax, constant-time comparison of the challenge."""

import pytest

from chalicelib.oauth import pkce

# RFC 7636 Appendix B test vector.
RFC_VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
RFC_CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_s256_matches_the_rfc_test_vector():
    assert pkce.s256(RFC_VERIFIER) == RFC_CHALLENGE
    assert pkce.verify(RFC_VERIFIER, RFC_CHALLENGE)


def test_a_different_verifier_fails():
    assert not pkce.verify(RFC_VERIFIER[:-1] + "A", RFC_CHALLENGE)


@pytest.mark.parametrize(
    "verifier",
    ["a" * 42, "a" * 129, "a" * 42 + "!", "a" * 42 + " ", "ä" * 43, "", "a" * 43 + "\n"],
)
def test_verifier_outside_43_to_128_unreserved_characters_is_refused(verifier):
    assert not pkce.valid_verifier(verifier)
    assert not pkce.verify(verifier, pkce.s256("a" * 43))


def test_verifier_bounds_are_inclusive():
    assert pkce.valid_verifier("a" * 43)
    assert pkce.valid_verifier("-._~" * 32)


def test_plain_challenge_equal_to_the_verifier_does_not_verify():
    # A client that sent method=plain semantics must not pass: the verifier is not its own hash.
    assert not pkce.verify(RFC_VERIFIER, RFC_VERIFIER)
