"""JWS compact serialization (RFC 7515) and JWK (RFC 7517/7518) for the two algorithms we use.

Why not PyJWT here: the authorizer's cold start would pay ~450 ms compiling PyJWT (Lambda ships no
.pyc), PyJWT adds ~60 us per decode, it does not check ``typ`` or cap sizes, and its history of
algorithm confusion (CVE-2017-11424, CVE-2022-29217) comes from accepting key material that is not
bound to one algorithm. This module is deliberately small: a key object carries exactly one
asymmetric algorithm, verification never looks at any key the header brings (``jwk``, ``jku``,
``x5u``, ``x5c``), and there is no HMAC and no ``none``. Tests cross-check it against PyJWT.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any, NamedTuple

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

SUPPORTED_ALGS = ("ES256", "RS256")
# base64url -> standard alphabet; '+', '/' and '=' become '!', which strict decoding rejects.
_TO_STANDARD = bytes.maketrans(b"-_+/=", b"+/!!!")
_PADDING = {0: b"", 2: b"==", 3: b"="}
# The last character of a canonical encoding leaves no bits set beyond the data: with 2 (or 3)
# characters in the last group its value is a multiple of 16 (or 4).
_CANONICAL_LAST = {2: frozenset(b"AQgw"), 3: frozenset(b"AEIMQUYcgkosw048")}
# Algorithm objects are immutable: build them once, not per verification.
_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())
_SHA256 = hashes.SHA256()
_PKCS1V15 = padding.PKCS1v15()
# JWK members that only private (or symmetric) keys have (RFC 7518 §6.2.2, §6.3.2, §6.4).
PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_EC_COORD = 32  # P-256 coordinates and private scalar are exactly 32 bytes (RFC 7518 §6.2.1.2)
MIN_RSA_BITS = 2048


class JoseError(ValueError):
    """Malformed or unverifiable JOSE input. The message is for logs, never for clients."""


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(data: str | bytes) -> bytes:
    """Strict base64url without padding (RFC 7515 §2): other alphabets and '=' are rejected.

    One C pass does the work (it runs three times per token in the authorizer): the translation
    maps the URL-safe alphabet onto the standard one and every character that must not appear
    ('+', '/', '=') onto one that strict decoding rejects, as it rejects anything else outside
    the alphabet.
    """
    try:
        raw = data.encode("ascii") if isinstance(data, str) else data
    except UnicodeEncodeError as exc:
        raise JoseError("invalid base64url") from exc
    rem = len(raw) % 4
    if rem == 1:
        raise JoseError("invalid base64url")
    # Reject non-canonical encodings (trailing bits set): one token, one spelling.
    if rem and raw[-1] not in _CANONICAL_LAST[rem]:
        raise JoseError("non-canonical base64url")
    try:
        return binascii.a2b_base64(raw.translate(_TO_STANDARD) + _PADDING[rem], strict_mode=True)
    except binascii.Error as exc:
        raise JoseError("invalid base64url") from exc


def _int_to_b64(value: int, length: int | None = None) -> str:
    size = length if length is not None else max(1, (value.bit_length() + 7) // 8)
    return b64url_encode(value.to_bytes(size, "big"))


def _b64_to_int(value: Any, length: int | None = None) -> int:
    if not isinstance(value, str) or not value:
        raise JoseError("missing JWK member")
    raw = b64url_decode(value)
    if length is not None and len(raw) != length:
        raise JoseError("JWK member has the wrong length")
    return int.from_bytes(raw, "big")


class VerifyingKey(NamedTuple):
    """A public key bound to exactly one algorithm."""

    kid: str
    alg: str
    key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey

    def verify(self, signing_input: bytes, signature: bytes) -> bool:
        try:
            if self.alg == "ES256" and isinstance(self.key, ec.EllipticCurvePublicKey):
                if len(signature) != 64:
                    return False
                der = encode_dss_signature(
                    int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
                )
                self.key.verify(der, signing_input, _ECDSA_SHA256)
                return True
            if self.alg == "RS256" and isinstance(self.key, rsa.RSAPublicKey):
                self.key.verify(signature, signing_input, _PKCS1V15, _SHA256)
                return True
        except InvalidSignature:
            return False
        return False

    def public_jwk(self) -> dict[str, str]:
        jwk: dict[str, str] = {"kid": self.kid, "alg": self.alg, "use": "sig"}
        if isinstance(self.key, ec.EllipticCurvePublicKey):
            nums = self.key.public_numbers()
            jwk.update(kty="EC", crv="P-256", x=_int_to_b64(nums.x, 32), y=_int_to_b64(nums.y, 32))
        else:
            rnums = self.key.public_numbers()
            jwk.update(kty="RSA", n=_int_to_b64(rnums.n), e=_int_to_b64(rnums.e))
        return jwk


class SigningKey(NamedTuple):
    """A private key bound to exactly one algorithm."""

    kid: str
    alg: str
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

    def sign(self, payload: dict[str, Any], typ: str) -> str:
        header = {"alg": self.alg, "typ": typ, "kid": self.kid}
        signing_input = (
            _json_b64(header).encode("ascii") + b"." + _json_b64(payload).encode("ascii")
        )
        if isinstance(self.key, ec.EllipticCurvePrivateKey):
            r, s = decode_dss_signature(self.key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
            signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        else:
            signature = self.key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
        return signing_input.decode("ascii") + "." + b64url_encode(signature)

    def verifying_key(self) -> VerifyingKey:
        return VerifyingKey(self.kid, self.alg, self.key.public_key())


def _json_b64(obj: dict[str, Any]) -> str:
    return b64url_encode(json.dumps(obj, separators=(",", ":"), sort_keys=True).encode("utf-8"))


def generate_private_jwk(kid: str, alg: str = "ES256") -> dict[str, str]:
    """A new private JWK for ``alg``; the JWK carries its ``alg`` so the key is bound to it."""
    if alg == "ES256":
        key = ec.generate_private_key(ec.SECP256R1())
        nums = key.private_numbers()
        pub = nums.public_numbers
        return {
            "kty": "EC",
            "crv": "P-256",
            "kid": kid,
            "alg": alg,
            "use": "sig",
            "x": _int_to_b64(pub.x, 32),
            "y": _int_to_b64(pub.y, 32),
            "d": _int_to_b64(nums.private_value, 32),
        }
    if alg == "RS256":
        rkey = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        rn = rkey.private_numbers()
        return {
            "kty": "RSA",
            "kid": kid,
            "alg": alg,
            "use": "sig",
            "n": _int_to_b64(rn.public_numbers.n),
            "e": _int_to_b64(rn.public_numbers.e),
            "d": _int_to_b64(rn.d),
            "p": _int_to_b64(rn.p),
            "q": _int_to_b64(rn.q),
            "dp": _int_to_b64(rn.dmp1),
            "dq": _int_to_b64(rn.dmq1),
            "qi": _int_to_b64(rn.iqmp),
        }
    raise JoseError("unsupported algorithm")


def _check_binding(jwk: dict[str, Any]) -> tuple[str, str]:
    kid, alg, kty = jwk.get("kid"), jwk.get("alg"), jwk.get("kty")
    if not isinstance(kid, str) or not kid:
        raise JoseError("JWK without kid")
    # Each key is bound to one algorithm, and the algorithm to the key type.
    if (alg, kty) not in {("ES256", "EC"), ("RS256", "RSA")}:
        raise JoseError("JWK algorithm does not match key type")
    if kty == "EC" and jwk.get("crv") != "P-256":
        raise JoseError("unsupported curve")
    if jwk.get("use", "sig") != "sig":
        raise JoseError("JWK is not meant for signatures")
    return kid, str(alg)


def load_signing_key(jwk: dict[str, Any]) -> SigningKey:
    """A private JWK as a key object bound to its ``alg``; ``JoseError`` for anything else."""
    kid, alg = _check_binding(jwk)
    try:
        if alg == "ES256":
            pub = ec.EllipticCurvePublicNumbers(
                _b64_to_int(jwk.get("x"), _EC_COORD),
                _b64_to_int(jwk.get("y"), _EC_COORD),
                ec.SECP256R1(),
            )
            d = _b64_to_int(jwk.get("d"), _EC_COORD)
            return SigningKey(kid, alg, ec.EllipticCurvePrivateNumbers(d, pub).private_key())
        rpub = rsa.RSAPublicNumbers(_b64_to_int(jwk.get("e")), _b64_to_int(jwk.get("n")))
        rpriv = rsa.RSAPrivateNumbers(
            p=_b64_to_int(jwk.get("p")),
            q=_b64_to_int(jwk.get("q")),
            d=_b64_to_int(jwk.get("d")),
            dmp1=_b64_to_int(jwk.get("dp")),
            dmq1=_b64_to_int(jwk.get("dq")),
            iqmp=_b64_to_int(jwk.get("qi")),
            public_numbers=rpub,
        ).private_key()
    except JoseError:
        raise
    except ValueError as exc:  # cryptography: inconsistent numbers, point not on the curve
        raise JoseError("invalid private key") from exc
    if rpriv.key_size < MIN_RSA_BITS:
        raise JoseError("RSA key too small")
    return SigningKey(kid, alg, rpriv)


def load_verifying_key(jwk: dict[str, Any]) -> VerifyingKey:
    """A public JWK as a key object bound to its ``alg``. Private members are refused: a public
    key set that carries them is a deployment mistake that must not go unnoticed."""
    kid, alg = _check_binding(jwk)
    if PRIVATE_MEMBERS & jwk.keys():
        raise JoseError("private material in a public key set")
    try:
        if alg == "ES256":
            key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey = ec.EllipticCurvePublicNumbers(
                _b64_to_int(jwk.get("x"), _EC_COORD),
                _b64_to_int(jwk.get("y"), _EC_COORD),
                ec.SECP256R1(),
            ).public_key()
        else:
            key = rsa.RSAPublicNumbers(
                _b64_to_int(jwk.get("e")), _b64_to_int(jwk.get("n"))
            ).public_key()
    except JoseError:
        raise
    except ValueError as exc:  # point not on the curve, bad RSA numbers
        raise JoseError("invalid public key") from exc
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < MIN_RSA_BITS:
        raise JoseError("RSA key too small")
    return VerifyingKey(kid, alg, key)


class CompactJWS(NamedTuple):
    header: dict[str, Any]
    payload: bytes
    signing_input: bytes
    signature: bytes


_JSON = json.JSONDecoder()
# Parsed protected headers by their encoded form. Every token a key signs carries the same header,
# so the authorizer decodes it once per key instead of once per token. Parsing is a pure function
# of the string; the cache is bounded (headers beyond the bound are parsed, not remembered) and
# callers get a copy.
_HEADER_CACHE: dict[str, dict[str, Any]] = {}
_HEADER_CACHE_MAX = 64


def _parse_header(segment: str) -> dict[str, Any]:
    cached = _HEADER_CACHE.get(segment)
    if cached is not None:
        return dict(cached)
    header = _JSON.decode(b64url_decode(segment).decode("utf-8"))
    if not isinstance(header, dict):
        raise JoseError("header is not an object")
    if len(_HEADER_CACHE) < _HEADER_CACHE_MAX:
        _HEADER_CACHE[segment] = dict(header)
    return header


def parse_compact(token: str, max_length: int) -> CompactJWS:
    """Split and decode a compact JWS without trusting anything in it.

    The size cap comes first, before any decoding (unbounded segments were an Authlib/joserfc
    advisory). JSON serialization and JWE (five segments) are not accepted.
    """
    if not isinstance(token, str) or len(token) > max_length:
        raise JoseError("token too large")
    parts = token.split(".")
    if len(parts) != 3 or not all(parts):
        raise JoseError("not a compact JWS")
    try:
        header = _parse_header(parts[0])
    except (JoseError, ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise JoseError("malformed header") from exc
    if not isinstance(header, dict):
        raise JoseError("header is not an object")
    return CompactJWS(
        header=header,
        payload=b64url_decode(parts[1]),
        signing_input=(parts[0] + "." + parts[1]).encode("ascii"),
        signature=b64url_decode(parts[2]),
    )
