"""Signing and verifying key objects, built by PyJWT from the stored JWKs (RFC 7517, RFC 7518).

PyJWT's ``PyJWK`` turns a JWK into a cryptography key bound to one algorithm, and its algorithm
classes write keys back as JWKs; cryptography generates new keys. On top, Tessera's rules where
PyJWT is lenient: only ES256 on P-256 and RS256 on RSA of at least 2048 bits (never HS*, never
``none``); a JWK's ``alg`` must match its ``kty``/``crv`` and it must carry a ``kid``; the public
loader refuses private members (a public set that carries them is a deployment mistake); the
published JWK has ``kid``, ``alg``, ``use`` and no private member. Loaded once per key-set version
(chalicelib.tokens.keys), never per token.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple, Protocol

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

SUPPORTED_ALGS = ("ES256", "RS256")
_KEY_TYPE = {"ES256": "EC", "RS256": "RSA"}
# JWK members that only private (or symmetric) keys have (RFC 7518 §6.2.2, §6.3.2, §6.4).
PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
MIN_RSA_BITS = 2048


class InvalidKey(ValueError):
    """A JWK that cannot be one of our keys. The message is for logs, never for clients."""


def _public_jwk(
    kid: str, alg: str, key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey
) -> dict[str, str]:
    if isinstance(key, ec.EllipticCurvePublicKey):
        members = ECAlgorithm.to_jwk(key, as_dict=True)
    else:
        members = RSAAlgorithm.to_jwk(key, as_dict=True)
    # PyJWT adds key_ops; RFC 7517 §4.3 says not to send it together with "use".
    jwk = {name: str(value) for name, value in members.items() if name != "key_ops"}
    jwk.update(kid=kid, alg=alg, use="sig")
    return jwk


class VerifyingKey(NamedTuple):
    """A public key bound to exactly one algorithm; ``jwk`` is what PyJWT verifies with."""

    kid: str
    alg: str
    key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey
    jwk: jwt.PyJWK

    def public_jwk(self) -> dict[str, str]:
        """The JWK published in the JWKS document."""
        return _public_jwk(self.kid, self.alg, self.key)

    def verifies(self, token: str) -> bool:
        """Whether ``token`` is a compact JWS this key signed (signature only, no claims)."""
        try:
            jwt.api_jws.decode_complete(token, self.jwk, algorithms=[self.alg])
        except jwt.PyJWTError:
            return False
        return True


class SigningKey(NamedTuple):
    """A private key bound to exactly one algorithm."""

    kid: str
    alg: str
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
    jwk: jwt.PyJWK

    def sign(self, payload: dict[str, object], typ: str) -> str:
        """A compact JWS of ``payload`` with header ``alg``, ``kid``, ``typ`` (PyJWT signs)."""
        try:
            return jwt.encode(
                payload, self.jwk, algorithm=self.alg, headers={"kid": self.kid, "typ": typ}
            )
        except jwt.PyJWTError as exc:
            raise InvalidKey(f"the key cannot sign ({type(exc).__name__})") from None

    def verifying_key(self) -> VerifyingKey:
        return load_verifying_key(_public_jwk(self.kid, self.alg, self.key.public_key()))


def generate_private_jwk(kid: str, alg: str = "ES256") -> dict[str, str]:
    """A new private JWK for ``alg``; the JWK carries its ``alg`` so the key is bound to it."""
    if alg == "ES256":
        members = ECAlgorithm.to_jwk(ec.generate_private_key(ec.SECP256R1()), as_dict=True)
    elif alg == "RS256":
        key = rsa.generate_private_key(public_exponent=65537, key_size=MIN_RSA_BITS)
        members = RSAAlgorithm.to_jwk(key, as_dict=True)
    else:
        raise InvalidKey("unsupported algorithm")
    jwk = {name: str(value) for name, value in members.items() if name != "key_ops"}
    jwk.update(kid=kid, alg=alg, use="sig")
    return jwk


def _check_binding(jwk: Mapping[str, object]) -> tuple[str, str]:
    kid, alg, kty = jwk.get("kid"), jwk.get("alg"), jwk.get("kty")
    if not isinstance(kid, str) or not kid:
        raise InvalidKey("JWK without kid")
    # Each key is bound to one algorithm, and the algorithm to the key type. PyJWT would infer
    # an algorithm for a JWK without one (HS256 for "oct"): we never let it.
    if not isinstance(alg, str) or _KEY_TYPE.get(alg) != kty:
        raise InvalidKey("JWK algorithm does not match key type")
    if kty == "EC" and jwk.get("crv") != "P-256":
        raise InvalidKey("unsupported curve")
    if jwk.get("use", "sig") != "sig":
        raise InvalidKey("JWK is not meant for signatures")
    return kid, alg


def _pyjwk(jwk: Mapping[str, object], alg: str) -> jwt.PyJWK:
    try:
        return jwt.PyJWK(dict(jwk), algorithm=alg)
    except (jwt.PyJWTError, ValueError, TypeError) as exc:
        # Bad numbers, wrong lengths, a point off the curve. Not chained: some of PyJWT's
        # messages quote the JWK, which may hold private members.
        raise InvalidKey(f"JWK does not load ({type(exc).__name__})") from None


def _check_size(key: object) -> None:
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey) and key.key_size < MIN_RSA_BITS:
        raise InvalidKey("RSA key too small")


def load_signing_key(jwk: Mapping[str, object]) -> SigningKey:
    """A private JWK as a key object bound to its ``alg``; ``InvalidKey`` for anything else."""
    kid, alg = _check_binding(jwk)
    if "d" not in jwk:
        raise InvalidKey("not a private key")
    pyjwk = _pyjwk(jwk, alg)
    key = pyjwk.key
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise InvalidKey("not a private key")
    _check_size(key)
    return SigningKey(kid, alg, key, pyjwk)


def load_verifying_key(jwk: Mapping[str, object]) -> VerifyingKey:
    """A public JWK as a key object bound to its ``alg``. Private members are refused."""
    kid, alg = _check_binding(jwk)
    if PRIVATE_MEMBERS & jwk.keys():
        raise InvalidKey("private material in a public key set")
    pyjwk = _pyjwk(jwk, alg)
    key = pyjwk.key
    if not isinstance(key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
        raise InvalidKey("not a public key")
    _check_size(key)
    return VerifyingKey(kid, alg, key, pyjwk)


class Verifiers(Protocol):
    """What validates a token's signature: the verifying key a ``kid`` names (a key ring)."""

    def verifier(self, kid: str) -> VerifyingKey | None: ...
