"""Stored key and pepper sets are read by one parser (chalicelib.tokens.keys.parse_key_set,
chalicelib.tokens.peppers.parse_pepper_set), whoever reads them: the token API, the authorizer and
the rotation function (chalicelib.ops.rotation_kinds). A malformed set is an error for all of them,
never a key or pepper silently left out or carried along.
"""

from __future__ import annotations

import json

import pytest

from chalicelib.ops.rotation_kinds import parse_keys, parse_peppers
from chalicelib.tokens.key_objects import generate_private_jwk
from chalicelib.tokens.keys import KeySetError, parse_key_set
from chalicelib.tokens.peppers import PepperSetError, encode_secret, parse_pepper_set

JWK = generate_private_jwk("k1", "ES256")
SECRET = encode_secret(bytes(range(32)))


def key_set(**changes: object) -> str:
    item: dict[str, object] = {"state": "current", "created": 1_700_000_000, "jwk": dict(JWK)}
    item.update(changes)
    return json.dumps({"keys": [item]})


def pepper_set(**changes: object) -> str:
    item: dict[str, object] = {
        "id": "1a2b3c4d",
        "secret": SECRET,
        "state": "current",
        "created": 1_700_000_000,
    }
    item.update(changes)
    return json.dumps({"peppers": [item]})


MALFORMED_KEY_SETS = {
    "not JSON": "{",
    "no key list": json.dumps({"keys": {"k1": JWK}}),
    "a key that is not an object": json.dumps({"keys": ["k1"]}),
    "a JWK that is not an object": key_set(jwk="k1"),
    "a JWK without alg": key_set(jwk={k: v for k, v in JWK.items() if k != "alg"}),
    "a JWK without kid": key_set(jwk={k: v for k, v in JWK.items() if k != "kid"}),
    "an unknown state": key_set(state="spare"),
    "no created time": json.dumps({"keys": [{"state": "current", "jwk": JWK}]}),
    "a created time that is not a number": key_set(created="yesterday"),
    "an infinite created time": key_set(created=float("inf")),
    "a published stamp that is not a number": key_set(published=[1]),
    "a demoted stamp that is not a number": key_set(demoted="later"),
}


@pytest.mark.parametrize("raw", MALFORMED_KEY_SETS.values(), ids=MALFORMED_KEY_SETS.keys())
def test_a_malformed_key_set_is_an_error_for_the_token_api_and_the_rotation_alike(raw: str) -> None:
    with pytest.raises(KeySetError):
        parse_key_set(raw)
    with pytest.raises(KeySetError):
        parse_keys(raw)


def test_the_rotation_reads_the_same_keys_and_stamps_as_the_token_api() -> None:
    raw = key_set(published=1_700_000_100, demoted=1_700_000_200)
    (entry,) = parse_key_set(raw)
    (rotated,) = parse_keys(raw)
    assert (rotated.id, rotated.state, rotated.created) == (entry.kid, "current", 1_700_000_000)
    assert (rotated.published, rotated.demoted) == (1_700_000_100, 1_700_000_200)
    assert rotated.body == JWK == entry.jwk
    assert entry.alg == "ES256"


MALFORMED_PEPPER_SETS = {
    "no pepper list": json.dumps({"peppers": "1a2b3c4d"}),
    "a pepper that is not an object": json.dumps({"peppers": [SECRET]}),
    "an id that cannot appear in a token": pepper_set(id="Not_Hex"),
    "a secret shorter than 32 bytes": pepper_set(secret=encode_secret(b"short")),
    "the key state next (peppers have none)": pepper_set(state="next"),
    "a created time that is not a number": pepper_set(created=None),
    "a published stamp that is not a number": pepper_set(published={"at": 1}),
}


@pytest.mark.parametrize("raw", MALFORMED_PEPPER_SETS.values(), ids=MALFORMED_PEPPER_SETS.keys())
def test_a_malformed_pepper_set_is_an_error_for_the_api_and_the_rotation_alike(raw: str) -> None:
    with pytest.raises(PepperSetError):
        parse_pepper_set(raw)
    with pytest.raises(KeySetError):
        parse_peppers(raw)


def test_the_rotation_keeps_the_pepper_bytes_the_api_hashes_with() -> None:
    raw = pepper_set(demoted=1_700_000_300)
    (pepper,) = parse_pepper_set(raw)
    (entry,) = parse_peppers(raw)
    assert entry.body == {"secret": SECRET}
    assert pepper.secret == bytes(range(32))
    assert (entry.id, entry.state, entry.published, entry.demoted) == (
        "1a2b3c4d",
        "current",
        None,
        1_700_000_300,
    )
