"""base64url (RFC 7515 §2): a token is accepted only when every segment is the canonical unpadded
spelling of its bytes, so one token has exactly one spelling (revocation, logs and caches may key
on it). Checked through ``access_tokens.validate``, i.e. PyJWT's decoding plus our refusal of
padding: other spellings of the same bytes (padding, spare bits set in the last character, the
standard alphabet) are refused even when the signature over them is genuine.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from hypothesis import example, given, settings
from hypothesis import strategies as st

from chalicelib.tokens import access_tokens, key_objects

ISSUER = "https://auth.test.example"
AUDIENCE = "https://api.test.example"
NOW = 1_800_000_000
SIGNER = key_objects.load_signing_key(key_objects.generate_private_jwk("k1", "ES256"))
KEY_FOR = {"k1": SIGNER.verifying_key()}.get
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_+/=. \n\x00é"
_URLSAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def is_canonical(text: str) -> bool:
    """Whether ``text`` is the unpadded base64url encoding of some bytes (the definition)."""
    if not set(text) <= _URLSAFE or len(text) % 4 == 1:
        return False
    return b64(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))) == text


def sign(head: str, payload: str) -> str:
    assert isinstance(SIGNER.key, ec.EllipticCurvePrivateKey)
    r, s = decode_dss_signature(
        SIGNER.key.sign(f"{head}.{payload}".encode(), ec.ECDSA(hashes.SHA256()))
    )
    return b64(r.to_bytes(32, "big") + s.to_bytes(32, "big"))


def segments(pad: int = 0) -> list[str]:
    """Header, claims and signature of a valid token; ``pad`` lengthens the header and claims
    (an ignored header member, a longer jti) so their last character carries spare bits. Five
    '?' in a row (0x3f) always encode to a '_' somewhere, for the standard-alphabet case."""
    header = {"alg": "ES256", "typ": "at+jwt", "kid": "k1", "x": "?" * (5 + pad)}
    claims = {
        "iss": ISSUER,
        "sub": "u_1",
        "aud": AUDIENCE,
        "client_id": "c1",
        "scope": "people:read",
        "jti": "j" * 16 + "?" * (5 + pad),
        "iat": NOW,
        "exp": NOW + 900,
    }
    head = b64(json.dumps(header).encode())
    payload = b64(json.dumps(claims).encode())
    return [head, payload, sign(head, payload)]


def accepted(parts: list[str]) -> bool:
    try:
        access_tokens.validate(
            ".".join(parts), KEY_FOR, issuer=ISSUER, audience=AUDIENCE, now=NOW + 1, leeway=0
        )
    except access_tokens.InvalidToken:
        return False
    return True


def respelled(parts: list[str], index: int, spelling: str) -> list[str]:
    """``parts`` with segment ``index`` spelled ``spelling``; a changed header or claims segment
    is signed again with the real key, so only the spelling can make it fail."""
    out = list(parts)
    out[index] = spelling
    if index < 2:
        out[2] = sign(out[0], out[1])
    return out


def spare_bit_spellings(text: str) -> list[str]:
    """The other spellings of ``text``'s bytes that set bits beyond the data in the last char."""
    spare = {2: 4, 3: 2}.get(len(text) % 4, 0)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    value = alphabet.index(text[-1])
    return [text[:-1] + alphabet[value | bits] for bits in range(1, 2**spare)]


# Lengths chosen so each segment's last character has spare bits (86 signature characters: 4).
PARTS = next(p for p in (segments(pad) for pad in range(4)) if all(len(s) % 4 > 1 for s in p[:2]))


def test_the_canonical_token_is_accepted() -> None:
    assert accepted(PARTS)


@pytest.mark.parametrize("index", [0, 1, 2], ids=["header", "claims", "signature"])
def test_same_bytes_with_spare_bits_set_are_refused(index: int) -> None:
    variants = spare_bit_spellings(PARTS[index])
    assert variants
    for variant in variants:
        assert base64.urlsafe_b64decode(variant + "==") == base64.urlsafe_b64decode(
            PARTS[index] + "=="
        )
        assert not accepted(respelled(PARTS, index, variant))


@pytest.mark.parametrize("index", [0, 1, 2], ids=["header", "claims", "signature"])
@pytest.mark.parametrize("padding", ["=", "==", "==="])
def test_same_bytes_with_padding_are_refused(index: int, padding: str) -> None:
    assert not accepted(respelled(PARTS, index, PARTS[index] + padding))


@pytest.mark.parametrize("index", [0, 1, 2], ids=["header", "claims", "signature"])
def test_same_bytes_in_the_standard_alphabet_are_refused(index: int) -> None:
    parts = PARTS
    while "-" not in parts[index] and "_" not in parts[index]:
        parts = respelled(parts, 0, parts[0])  # signed again: ECDSA signatures differ each time
    standard = parts[index].replace("-", "+").replace("_", "/")
    assert not accepted(respelled(parts, index, standard))


@settings(max_examples=300, deadline=None)
@given(
    index=st.sampled_from([0, 1, 2]),
    cut=st.integers(min_value=0, max_value=3),
    tail=st.text(alphabet=_ALPHABET, max_size=4),
)
@example(index=2, cut=1, tail="B")
@example(index=2, cut=0, tail="==")
def test_a_token_is_accepted_only_with_canonical_segments(index: int, cut: int, tail: str) -> None:
    spelling = PARTS[index][: len(PARTS[index]) - cut] + tail
    parts = respelled(PARTS, index, spelling)
    outcome: Any = accepted(parts)
    if outcome:
        assert is_canonical(spelling)
