"""Key objects (chalicelib.tokens.key_objects): JWKs loaded through PyJWT under Tessera's binding
rules
(RFC 7517, RFC 7518, RFC 8725 §3.1): one algorithm per key, bound to the key type; ES256 on P-256
and RS256 of at least 2048 bits only; no private material where public keys are loaded; the
published JWK carries ``kid``, ``alg``, ``use`` and nothing private. What we sign also verifies
with joserfc, an implementation independent of PyJWT.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import RSAAlgorithm

from chalicelib.tokens import access_tokens, key_objects
from chalicelib.tokens.key_objects import InvalidKey, load_signing_key, load_verifying_key

CLAIMS = {"iss": "https://issuer.example", "sub": "s", "aud": "https://api.example", "exp": 2**31}


@pytest.fixture(scope="module")
def es_jwk() -> dict[str, str]:
    return key_objects.generate_private_jwk("es-1", "ES256")


@pytest.fixture(scope="module")
def rs_jwk() -> dict[str, str]:
    return key_objects.generate_private_jwk("rs-1", "RS256")


def public_part(jwk: dict[str, str]) -> dict[str, str]:
    return load_signing_key(jwk).verifying_key().public_jwk()


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# --- signing and verifying ---------------------------------------------------------------------


@pytest.mark.parametrize("fixture", ["es_jwk", "rs_jwk"])
def test_signed_token_names_alg_typ_kid_and_verifies_with_the_public_jwk(
    fixture: str, request: pytest.FixtureRequest
) -> None:
    private = request.getfixturevalue(fixture)
    token = load_signing_key(private).sign(CLAIMS, "at+jwt")
    head, payload, _ = token.split(".")
    header = json.loads(base64.urlsafe_b64decode(head + "=="))
    assert header == {"alg": private["alg"], "typ": "at+jwt", "kid": private["kid"]}
    assert json.loads(base64.urlsafe_b64decode(payload + "==")) == CLAIMS
    assert load_verifying_key(public_part(private)).verifies(token)


@pytest.mark.parametrize("fixture", ["es_jwk", "rs_jwk"])
def test_signed_token_verifies_in_joserfc_from_the_published_jwk(
    fixture: str, request: pytest.FixtureRequest
) -> None:
    joserfc_jws = pytest.importorskip("joserfc.jws")
    joserfc_jwk = pytest.importorskip("joserfc.jwk")
    private = request.getfixturevalue(fixture)
    token = load_signing_key(private).sign(CLAIMS, "at+jwt")
    key = joserfc_jwk.import_key(public_part(private))
    verified = joserfc_jws.deserialize_compact(token, key, algorithms=[private["alg"]])
    assert json.loads(verified.payload) == CLAIMS


def test_signature_does_not_cover_a_changed_payload(es_jwk: dict[str, str]) -> None:
    head, _, sig = load_signing_key(es_jwk).sign(CLAIMS, "at+jwt").split(".")
    forged = head + "." + b64(json.dumps({**CLAIMS, "sub": "admin"}).encode()) + "." + sig
    assert not load_verifying_key(public_part(es_jwk)).verifies(forged)


def test_rs256_token_does_not_verify_with_an_es256_key(
    es_jwk: dict[str, str], rs_jwk: dict[str, str]
) -> None:
    token = load_signing_key(rs_jwk).sign(CLAIMS, "at+jwt")
    assert not load_verifying_key(public_part(es_jwk)).verifies(token)


@pytest.mark.parametrize("fixture", ["es_jwk", "rs_jwk"])
def test_access_token_issued_with_either_algorithm_validates(
    fixture: str, request: pytest.FixtureRequest
) -> None:
    signer = load_signing_key(request.getfixturevalue(fixture))
    token, _ = access_tokens.issue(
        signer,
        issuer="https://issuer.example",
        audience="https://api.example",
        subject="u",
        client_id="c",
        scope="people:read",
        now=1_800_000_000,
        lifetime=900,
    )
    claims = access_tokens.validate(
        token,
        {signer.kid: signer.verifying_key()}.get,
        issuer="https://issuer.example",
        audience="https://api.example",
        now=1_800_000_001,
        leeway=0,
    )
    assert (claims.kid, claims.sub) == (signer.kid, "u")


def test_signing_key_and_its_verifying_key_share_kid_alg_and_public_numbers(
    es_jwk: dict[str, str],
) -> None:
    signer = load_signing_key(es_jwk)
    verifier = signer.verifying_key()
    assert (verifier.kid, verifier.alg) == (signer.kid, signer.alg) == ("es-1", "ES256")
    assert isinstance(signer.key, ec.EllipticCurvePrivateKey)
    assert isinstance(verifier.key, ec.EllipticCurvePublicKey)
    assert signer.key.public_key().public_numbers() == verifier.key.public_numbers()


# --- generation ------------------------------------------------------------------------------


@pytest.mark.parametrize("fixture", ["es_jwk", "rs_jwk"])
def test_generated_jwk_is_bound_to_its_algorithm_and_private(
    fixture: str, request: pytest.FixtureRequest
) -> None:
    private = request.getfixturevalue(fixture)
    assert private["use"] == "sig"
    assert "d" in private
    assert "key_ops" not in private
    signer = load_signing_key(private)
    assert signer.alg == private["alg"]
    if private["alg"] == "RS256":
        assert isinstance(signer.key, rsa.RSAPrivateKey)
        assert signer.key.key_size >= 2048
    else:
        assert isinstance(signer.key, ec.EllipticCurvePrivateKey)
        assert isinstance(signer.key.curve, ec.SECP256R1)


@pytest.mark.parametrize("alg", ["HS256", "none", "ES384", "PS256", "EdDSA"])
def test_generating_a_key_for_another_algorithm_is_refused(alg: str) -> None:
    with pytest.raises(InvalidKey):
        key_objects.generate_private_jwk("k", alg)


# --- loading: one algorithm per key, bound to its type ------------------------------------------


def test_rsa_jwk_labelled_es256_is_refused(rs_jwk: dict[str, str]) -> None:
    with pytest.raises(InvalidKey):
        load_signing_key({**rs_jwk, "alg": "ES256"})
    with pytest.raises(InvalidKey):
        load_verifying_key({**public_part(rs_jwk), "alg": "ES256"})


def test_ec_jwk_labelled_rs256_is_refused(es_jwk: dict[str, str]) -> None:
    with pytest.raises(InvalidKey):
        load_signing_key({**es_jwk, "alg": "RS256"})
    with pytest.raises(InvalidKey):
        load_verifying_key({**public_part(es_jwk), "alg": "RS256"})


@pytest.mark.parametrize("alg", [None, "HS256", "none", "ES384", "PS256", "EdDSA", ["ES256"]])
def test_jwk_without_one_of_our_algorithms_is_refused(es_jwk: dict[str, str], alg: Any) -> None:
    # Without "alg", PyJWT would infer one from the key type: we never let it.
    jwk: dict[str, Any] = {k: v for k, v in public_part(es_jwk).items() if k != "alg"}
    if alg is not None:
        jwk["alg"] = alg
    with pytest.raises(InvalidKey):
        load_verifying_key(jwk)


def test_symmetric_jwk_is_refused() -> None:
    oct_jwk = {"kty": "oct", "kid": "h", "alg": "HS256", "k": b64(b"x" * 32)}
    with pytest.raises(InvalidKey):
        load_verifying_key(oct_jwk)
    with pytest.raises(InvalidKey):
        load_signing_key({**oct_jwk, "d": "x"})


def test_jwk_without_kid_is_refused(es_jwk: dict[str, str]) -> None:
    jwk = {k: v for k, v in public_part(es_jwk).items() if k != "kid"}
    with pytest.raises(InvalidKey):
        load_verifying_key(jwk)


def test_ec_jwk_on_another_curve_is_refused(es_jwk: dict[str, str]) -> None:
    with pytest.raises(InvalidKey):
        load_verifying_key({**public_part(es_jwk), "crv": "P-384"})


def test_ec_point_not_on_the_curve_is_refused(es_jwk: dict[str, str]) -> None:
    jwk = public_part(es_jwk)
    y = int.from_bytes(base64.urlsafe_b64decode(jwk["y"] + "="), "big")
    with pytest.raises(InvalidKey):
        load_verifying_key({**jwk, "y": b64(((y + 1) % 2**256).to_bytes(32, "big"))})


def test_private_scalar_not_matching_the_public_point_is_refused(es_jwk: dict[str, str]) -> None:
    with pytest.raises(InvalidKey):
        load_signing_key({**es_jwk, "d": es_jwk["x"]})


def test_jwk_meant_for_encryption_is_refused(es_jwk: dict[str, str]) -> None:
    with pytest.raises(InvalidKey):
        load_verifying_key({**public_part(es_jwk), "use": "enc"})


@pytest.mark.parametrize("member", ["d", "p", "q", "dp", "dq", "qi", "oth", "k"])
def test_public_loader_refuses_private_members(rs_jwk: dict[str, str], member: str) -> None:
    jwk = {**public_part(rs_jwk), member: rs_jwk.get(member, "AQAB")}
    with pytest.raises(InvalidKey):
        load_verifying_key(jwk)


def test_public_loader_refuses_a_private_ec_jwk(es_jwk: dict[str, str]) -> None:
    with pytest.raises(InvalidKey):
        load_verifying_key(es_jwk)


def test_signing_loader_refuses_a_public_jwk(es_jwk: dict[str, str]) -> None:
    with pytest.raises(InvalidKey):
        load_signing_key(public_part(es_jwk))


def test_rsa_key_under_2048_bits_is_refused() -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505
    private = {**RSAAlgorithm.to_jwk(small, as_dict=True), "kid": "small", "alg": "RS256"}
    public = {**RSAAlgorithm.to_jwk(small.public_key(), as_dict=True), "kid": "s", "alg": "RS256"}
    with pytest.raises(InvalidKey, match="too small"):
        load_signing_key(private)
    with pytest.raises(InvalidKey, match="too small"):
        load_verifying_key(public)


def test_load_error_is_not_chained_to_pyjwts_message(es_jwk: dict[str, str]) -> None:
    with pytest.raises(InvalidKey) as caught:
        load_signing_key({**es_jwk, "x": es_jwk["x"][:-2]})
    # PyJWT's messages may quote the JWK (private members included): not kept for tracebacks.
    assert caught.value.__cause__ is None
    assert es_jwk["d"] not in str(caught.value)


# --- the published JWK ---------------------------------------------------------------------------


@pytest.mark.parametrize("fixture", ["es_jwk", "rs_jwk"])
def test_public_jwk_carries_kid_alg_use_and_no_private_member(
    fixture: str, request: pytest.FixtureRequest
) -> None:
    private = request.getfixturevalue(fixture)
    public = public_part(private)
    assert public["kid"] == private["kid"]
    assert public["alg"] == private["alg"]
    assert public["use"] == "sig"
    assert "key_ops" not in public  # RFC 7517 §4.3: not together with "use"
    assert not key_objects.PRIVATE_MEMBERS & set(public)
    assert load_verifying_key(public).public_jwk() == public
