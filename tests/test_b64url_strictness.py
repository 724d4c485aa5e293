"""base64url decoding (RFC 7515 §2) accepts exactly the canonical unpadded spelling of some bytes.

A property test against the definition: a string decodes if and only if encoding the result gives
the same string back. It guards the single-pass decoder in chalicelib.jose (the authorizer runs it
three times per token) against accepting any other spelling.
"""

from __future__ import annotations

import base64

from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib import jose

_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_+/=. \n\x00é"


@settings(max_examples=3000, deadline=None)
@given(st.text(alphabet=_ALPHABET, max_size=12))
def test_b64url_decode_accepts_only_the_canonical_spelling(candidate: str) -> None:
    try:
        decoded = jose.b64url_decode(candidate)
    except jose.JoseError:
        decoded = None
    canonical = False
    try:
        raw = base64.urlsafe_b64decode(candidate + "=" * (-len(candidate) % 4))
        canonical = jose.b64url_encode(raw) == candidate
    except ValueError:
        pass
    assert (decoded is not None) == canonical
    if decoded is not None:
        assert jose.b64url_encode(decoded) == candidate


@given(st.binary(max_size=64))
def test_b64url_round_trips_any_bytes(data: bytes) -> None:
    assert jose.b64url_decode(jose.b64url_encode(data)) == data
