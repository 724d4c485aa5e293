"""JWS compact serialization and JWK handling (RFC 7515, RFC 7517, RFC 7518, RFC 8725).

PyJWT is the independent implementation: what we sign must verify there, and what it signs must
verify here. Everything else checks the strictness rules: one algorithm per key, bound to the key
type; canonical base64url only; no private material where public keys are loaded.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from chalicelib import jose

CLAIMS = {"iss": "https://issuer.example", "sub": "s", "aud": "https://api.example", "exp": 2**31}


@pytest.fixture(scope="module")
def es_jwk() -> dict[str, str]:
    return jose.generate_private_jwk("es-1", "ES256")


@pytest.fixture(scope="module")
def rs_jwk() -> dict[str, str]:
    return jose.generate_private_jwk("rs-1", "RS256")


def public_part(jwk: dict[str, str]) -> dict[str, str]:
    return jose.load_signing_key(jwk).verifying_key().public_jwk()


def verifies(jwk_public: dict[str, str], token: str) -> bool:
    key = jose.load_verifying_key(jwk_public)
    jws = jose.parse_compact(token, 4096)
    return key.verify(jws.signing_input, jws.signature)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# --- interoperability with PyJWT --------------------------------------------------------------


@pytest.mark.parametrize("fixture", ["es_jwk", "rs_jwk"])
def test_token_we_sign_verifies_in_pyjwt(fixture: str, request: pytest.FixtureRequest) -> None:
    private = request.getfixturevalue(fixture)
    token = jose.load_signing_key(private).sign(CLAIMS, "at+jwt")
    pyjwk = jwt.PyJWK(public_part(private))
    decoded = jwt.decode(
        token, pyjwk.key, algorithms=[private["alg"]], audience="https://api.example"
    )
    assert decoded == CLAIMS
    header = jwt.get_unverified_header(token)
    assert header == {"alg": private["alg"], "typ": "at+jwt", "kid": private["kid"]}


@pytest.mark.parametrize("fixture", ["es_jwk", "rs_jwk"])
def test_token_pyjwt_signs_verifies_with_our_key(
    fixture: str, request: pytest.FixtureRequest
) -> None:
    private = request.getfixturevalue(fixture)
    signer = jose.load_signing_key(private)
    token = jwt.encode(
        CLAIMS, signer.key, algorithm=private["alg"], headers={"kid": signer.kid, "typ": "at+jwt"}
    )
    assert verifies(public_part(private), token)
    assert jose.parse_compact(token, 4096).header["typ"] == "at+jwt"


def test_pyjwt_reads_our_public_jwk_as_the_same_key(es_jwk: dict[str, str]) -> None:
    ours = jose.load_signing_key(es_jwk).key.public_key()
    theirs = jwt.PyJWK(public_part(es_jwk)).key
    assert isinstance(ours, ec.EllipticCurvePublicKey)
    assert isinstance(theirs, ec.EllipticCurvePublicKey)
    assert ours.public_numbers() == theirs.public_numbers()


# --- signatures -------------------------------------------------------------------------------


def test_signature_does_not_cover_a_changed_payload(es_jwk: dict[str, str]) -> None:
    token = jose.load_signing_key(es_jwk).sign(CLAIMS, "at+jwt")
    head, _, sig = token.split(".")
    forged = head + "." + b64(json.dumps({**CLAIMS, "sub": "admin"}).encode()) + "." + sig
    assert not verifies(public_part(es_jwk), forged)


def test_es256_signature_in_der_form_is_rejected(es_jwk: dict[str, str]) -> None:
    signer = jose.load_signing_key(es_jwk)
    token = signer.sign(CLAIMS, "at+jwt")
    raw = jose.parse_compact(token, 4096).signature
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    head, payload, _ = token.split(".")
    assert not verifies(public_part(es_jwk), f"{head}.{payload}.{b64(der)}")


def test_rs256_signature_does_not_verify_with_an_es256_key(
    es_jwk: dict[str, str], rs_jwk: dict[str, str]
) -> None:
    token = jose.load_signing_key(rs_jwk).sign(CLAIMS, "at+jwt")
    assert not verifies(public_part(es_jwk), token)


def test_es256_key_with_other_algorithm_label_verifies_nothing(es_jwk: dict[str, str]) -> None:
    signer = jose.load_signing_key(es_jwk)
    token = signer.sign(CLAIMS, "at+jwt")
    jws = jose.parse_compact(token, 4096)
    mislabelled = jose.VerifyingKey(signer.kid, "RS256", signer.key.public_key())
    assert not mislabelled.verify(jws.signing_input, jws.signature)


# --- base64url strictness (RFC 7515 §2) ------------------------------------------------------


def test_b64url_round_trips_every_length() -> None:
    for n in range(8):
        data = bytes(range(250, 250 - n, -1))
        assert jose.b64url_decode(jose.b64url_encode(data)) == data


@pytest.mark.parametrize(
    "encoded",
    [
        pytest.param("YQ==", id="padding"),
        pytest.param("YQ=", id="partial-padding"),
        pytest.param("+/8", id="standard-alphabet"),
        pytest.param("YR", id="non-canonical-trailing-bits"),
        pytest.param("YQ\n", id="trailing-newline"),
        pytest.param("Y Q", id="inner-space"),
        pytest.param("Y", id="impossible-length"),
        pytest.param("YQé", id="non-ascii"),
    ],
)
def test_b64url_decode_rejects_non_canonical_input(encoded: str) -> None:
    with pytest.raises(jose.JoseError):
        jose.b64url_decode(encoded)


# --- JWK loading: one algorithm per key, bound to its type -----------------------------------


def test_rsa_jwk_labelled_es256_is_refused(rs_jwk: dict[str, str]) -> None:
    with pytest.raises(jose.JoseError):
        jose.load_signing_key({**rs_jwk, "alg": "ES256"})
    with pytest.raises(jose.JoseError):
        jose.load_verifying_key({**public_part(rs_jwk), "alg": "ES256"})


def test_ec_jwk_labelled_rs256_is_refused(es_jwk: dict[str, str]) -> None:
    with pytest.raises(jose.JoseError):
        jose.load_signing_key({**es_jwk, "alg": "RS256"})
    with pytest.raises(jose.JoseError):
        jose.load_verifying_key({**public_part(es_jwk), "alg": "RS256"})


@pytest.mark.parametrize("alg", [None, "HS256", "none", "ES384", "PS256", "EdDSA"])
def test_jwk_without_one_of_our_algorithms_is_refused(es_jwk: dict[str, str], alg: Any) -> None:
    jwk = {k: v for k, v in public_part(es_jwk).items() if k != "alg"}
    if alg is not None:
        jwk["alg"] = alg
    with pytest.raises(jose.JoseError):
        jose.load_verifying_key(jwk)


def test_symmetric_jwk_is_refused() -> None:
    with pytest.raises(jose.JoseError):
        jose.load_verifying_key({"kty": "oct", "kid": "h", "alg": "HS256", "k": b64(b"x" * 32)})


def test_jwk_without_kid_is_refused(es_jwk: dict[str, str]) -> None:
    jwk = {k: v for k, v in public_part(es_jwk).items() if k != "kid"}
    with pytest.raises(jose.JoseError):
        jose.load_verifying_key(jwk)


def test_ec_jwk_on_another_curve_is_refused(es_jwk: dict[str, str]) -> None:
    with pytest.raises(jose.JoseError):
        jose.load_verifying_key({**public_part(es_jwk), "crv": "P-384"})


def test_ec_point_not_on_the_curve_is_refused(es_jwk: dict[str, str]) -> None:
    jwk = public_part(es_jwk)
    y = int.from_bytes(jose.b64url_decode(jwk["y"]), "big")
    with pytest.raises(jose.JoseError):
        jose.load_verifying_key({**jwk, "y": b64(((y + 1) % 2**256).to_bytes(32, "big"))})


def test_jwk_meant_for_encryption_is_refused(es_jwk: dict[str, str]) -> None:
    with pytest.raises(jose.JoseError):
        jose.load_verifying_key({**public_part(es_jwk), "use": "enc"})


@pytest.mark.parametrize("member", ["d", "p", "q", "dp", "dq", "qi", "oth"])
def test_load_verifying_key_refuses_private_members(rs_jwk: dict[str, str], member: str) -> None:
    jwk = {**public_part(rs_jwk), member: rs_jwk.get(member, "AQAB")}
    with pytest.raises(jose.JoseError):
        jose.load_verifying_key(jwk)


def test_load_verifying_key_refuses_a_private_ec_jwk(es_jwk: dict[str, str]) -> None:
    with pytest.raises(jose.JoseError):
        jose.load_verifying_key(es_jwk)


def test_rsa_key_under_2048_bits_is_refused() -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()  # noqa: S505
    nums = small.public_numbers()
    jwk = {
        "kty": "RSA",
        "kid": "small",
        "alg": "RS256",
        "n": b64(nums.n.to_bytes(128, "big")),
        "e": b64(nums.e.to_bytes(3, "big")),
    }
    with pytest.raises(jose.JoseError):
        jose.load_verifying_key(jwk)


@pytest.mark.parametrize("fixture", ["es_jwk", "rs_jwk"])
def test_public_jwk_carries_kid_alg_use_and_no_private_member(
    fixture: str, request: pytest.FixtureRequest
) -> None:
    private = request.getfixturevalue(fixture)
    public = public_part(private)
    assert public["kid"] == private["kid"]
    assert public["alg"] == private["alg"]
    assert public["use"] == "sig"
    assert not {"d", "p", "q", "dp", "dq", "qi", "oth", "k"} & set(public)


def test_private_jwk_round_trips_to_the_same_key(es_jwk: dict[str, str]) -> None:
    signer = jose.load_signing_key(es_jwk)
    assert isinstance(signer.key, ec.EllipticCurvePrivateKey)
    assert (
        jose.b64url_encode(signer.key.private_numbers().private_value.to_bytes(32, "big"))
        == (es_jwk["d"])
    )


# --- compact serialization parsing ----------------------------------------------------------


def test_parse_compact_refuses_tokens_over_the_cap_before_decoding() -> None:
    # Over the cap and not even base64url: the size check must come first.
    with pytest.raises(jose.JoseError, match="too large"):
        jose.parse_compact("!" * 5000, 4096)


@pytest.mark.parametrize(
    "token",
    [
        pytest.param("a.b", id="two-segments"),
        pytest.param("a.b.c.d.e", id="jwe-five-segments"),
        pytest.param("eyJhbGciOiJFUzI1NiJ9..c2ln", id="empty-payload"),
        pytest.param("eyJhbGciOiJFUzI1NiJ9.e30.", id="empty-signature"),
        pytest.param('{"payload":"e30","signatures":[]}', id="json-serialization"),
        pytest.param(b64(b"[1]") + ".e30.c2ln", id="header-not-object"),
        pytest.param(b64(b"{nope") + ".e30.c2ln", id="header-not-json"),
        pytest.param("eyJhbGciOiJFUzI1NiJ9.ZQé.c2ln", id="non-ascii-payload"),
        pytest.param("eyJhbGciOiJFUzI1NiJ9.e30.c2ln=", id="padded-signature"),
    ],
)
def test_parse_compact_refuses_malformed_tokens(token: str) -> None:
    with pytest.raises(jose.JoseError):
        jose.parse_compact(token, 4096)
