"""JWT access tokens: issuing and validating (RFC 9068, with RFC 8725's best practices).

PyJWT signs (``jwt.encode`` with a key bound to one algorithm, chalicelib.tokens.key_objects) and
verifies the JWS (``PyJWS.decode_complete`` with the key's ``PyJWK``: strict base64url, the
signature, the header's ``alg`` equal to the key's). Validation is shared by the authorizer and
introspection, and layers Tessera's rules where PyJWT is lenient or silent: size cap before any
parsing, compact JWS only, no ``=`` padding, ``typ`` at+jwt, ``alg`` ES256/RS256 only and equal to
the algorithm bound to the key found by ``kid`` (never HS*, never ``none``; ``kid`` is a lookup,
length-capped), ``crit``/``b64``/``zip``/``enc`` refused, duplicate members in header or claims
refused, keys in the header (``jwk``, ``jku``, ``x5u``, ``x5c``) ignored; then the claims: all
required, ``iss`` exact, ``aud`` containing ours, times integers checked against the injected
clock with at most 60 s leeway, identifiers non-empty strings.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import NamedTuple, Protocol

import jwt

from chalicelib.tokens.key_objects import SUPPORTED_ALGS, SigningKey, VerifyingKey

MAX_TOKEN_LENGTH = 4096
MAX_KID_LENGTH = 128
MAX_LEEWAY = 60  # seconds; RFC 8725 leaves it open, our rule caps it
TYP = "at+jwt"
_ACCEPTED_TYP = {"at+jwt", "application/at+jwt"}
REQUIRED_CLAIMS = ("iss", "exp", "aud", "sub", "client_id", "iat", "jti", "scope")
# Header parameters that change how the token must be read (RFC 7515 §4.1.11 crit, RFC 7797 b64,
# RFC 7516 zip/enc): none of our tokens carries one, so any of them means "not ours".
_REFUSED_HEADER = ("crit", "b64", "zip", "enc")


class InvalidToken(ValueError):
    """The token must not be accepted. The message is for logs only."""


class AccessTokenClaims(NamedTuple):
    iss: str
    sub: str
    aud: str | list[str]
    client_id: str
    scope: str
    jti: str
    iat: int
    exp: int
    sid: str | None
    kid: str

    @property
    def scopes(self) -> frozenset[str]:
        return frozenset(self.scope.split())


class RevocationCheck(Protocol):
    """Whether a valid token was revoked since: its ``jti`` deny-listed or its family (``sid``)
    revoked (``GrantStore.is_revoked``; used by the authorizer and by introspection)."""

    def is_revoked(self, jti: str, sid: str | None) -> bool: ...


def _new_jti() -> str:
    # secrets (with random) is imported here, not at module level: the authorizer validates
    # tokens and never issues one, and its cold start should not pay for it.
    import secrets

    return secrets.token_urlsafe(16)


def issue(
    signer: SigningKey,
    *,
    issuer: str,
    audience: str,
    subject: str,
    client_id: str,
    scope: str,
    now: int,
    lifetime: int,
    family_id: str | None = None,
) -> tuple[str, dict[str, object]]:
    """Sign a new access token; returns the token and its claims (for logging the jti)."""
    claims: dict[str, object] = {
        "iss": issuer,
        "sub": subject,
        "aud": audience,
        "client_id": client_id,
        "scope": scope,
        "jti": _new_jti(),
        "iat": now,
        "nbf": now,
        "exp": now + lifetime,
    }
    if family_id:
        claims["sid"] = family_id
    return signer.sign(claims, TYP), claims


class _DuplicateMember(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, object]]) -> dict[str, object]:
    """JSON object hook: a member named twice is an error (one token, one meaning)."""
    out = dict(pairs)  # built in C; a repeated name leaves fewer members than pairs
    if len(out) != len(pairs):
        raise _DuplicateMember("duplicate member")
    return out


_STRICT_JSON = json.JSONDecoder(object_pairs_hook=_no_duplicates)


# PyJWT's JWS layer, built once (no per-call options). With a PyJWK it verifies with the algorithm
# the key is bound to and refuses any other header alg; the instance knows only our two anyway.
_JWS = jwt.PyJWS(algorithms=SUPPORTED_ALGS, options={"enforce_minimum_key_length": True})
# Decoded protected headers of tokens that validated, by their encoded form. Every token a key
# signs carries the same header, so the authorizer decodes it once per key, not once per token.
# Only validated headers are remembered, so made-up tokens cannot fill the (bounded) cache.
_HEADERS: dict[str, dict[str, object]] = {}
_HEADERS_MAX = 64


class ValidationSettings(Protocol):
    @property
    def issuer(self) -> str: ...

    @property
    def audience(self) -> str: ...

    @property
    def clock_leeway(self) -> int: ...


def validate_for(
    token: str,
    key_for: Callable[[str], VerifyingKey | None],
    settings: ValidationSettings,
    now: float,
) -> AccessTokenClaims:
    """``validate`` with the stage's issuer, audience and leeway: the one call introspection and
    revocation share, so both apply exactly the same rules."""
    return validate(
        token,
        key_for,
        issuer=settings.issuer,
        audience=settings.audience,
        now=now,
        leeway=settings.clock_leeway,
    )


def _int_claim(payload: dict[str, object], name: str) -> int:
    value = payload[name]
    # bool is an int subclass; a JSON true is not a time. Nor is null, a string or a float.
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidToken(f"{name} is not an integer")
    return value


def _header(segment: str) -> dict[str, object]:
    cached = _HEADERS.get(segment)
    if cached is not None:
        return cached
    try:
        # Lenient decoding is enough here: PyJWT decodes the same segment strictly (alphabet,
        # no spare bits) before anything is accepted, and its result is compared with ours.
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        header: object = _STRICT_JSON.decode(raw.decode("utf-8"))
    except _DuplicateMember:
        raise InvalidToken("duplicate header member") from None
    except (ValueError, RecursionError):
        raise InvalidToken("malformed header") from None
    if not isinstance(header, dict):
        raise InvalidToken("header is not an object")
    return header


def validate(
    token: str,
    key_for: Callable[[str], VerifyingKey | None],
    *,
    issuer: str,
    audience: str,
    now: float,
    leeway: int,
) -> AccessTokenClaims:
    """Return the claims of a valid token or raise ``InvalidToken``.

    ``key_for`` maps an (untrusted) ``kid`` to a known key; it is a lookup, never a path.
    ``leeway`` is clamped to 0..60 s whatever the caller passes.
    """
    leeway = max(0, min(leeway, MAX_LEEWAY))
    # The size cap comes first, before any decoding (unbounded segments were an Authlib/joserfc
    # advisory).
    if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH:
        raise InvalidToken("token too large")
    # Compact JWS only: three non-empty segments (no JWE, no JSON serialization). PyJWT accepts
    # '=' padding (some issuers send it); one token has one spelling, so we do not.
    segments = token.split(".")
    if len(segments) != 3 or not all(segments) or not token.isascii() or "=" in token:
        raise InvalidToken("not a compact JWS")
    header = _header(segments[0])
    typ = header.get("typ")
    if not isinstance(typ, str) or typ.lower() not in _ACCEPTED_TYP:
        raise InvalidToken("wrong typ")
    for name in _REFUSED_HEADER:
        if name in header:
            raise InvalidToken(f"{name} in header")
    alg = header.get("alg")
    if alg not in SUPPORTED_ALGS:
        raise InvalidToken("algorithm not allowed")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid or len(kid) > MAX_KID_LENGTH:
        raise InvalidToken("missing or bad kid")
    key = key_for(kid)
    if key is None:
        raise InvalidToken("unknown kid")
    if key.alg != alg:
        raise InvalidToken("algorithm does not match key")
    try:
        decoded = _JWS.decode_complete(token, key.jwk, algorithms=[key.alg])
    except (jwt.PyJWTError, ValueError, TypeError) as exc:
        # PyJWT's exception names are fixed strings; its messages may quote the token.
        raise InvalidToken(type(exc).__name__) from None
    if decoded["header"] != header:
        raise InvalidToken("header decodes differently")
    # The claims are decoded once, here (PyJWS hands over the verified bytes). PyJWT's claim
    # checks (jwt.decode) are not used: they read the wall clock, not the injected one, and accept
    # any int()-able time ("5", 5.9); ours are stricter and running both would cost more.
    try:
        # UTF-8 only (RFC 8259 §8.1); duplicate members refused.
        payload: object = _STRICT_JSON.decode(decoded["payload"].decode("utf-8"))
    except _DuplicateMember:
        raise InvalidToken("duplicate claim") from None
    except (ValueError, RecursionError):
        raise InvalidToken("payload is not JSON") from None
    if not isinstance(payload, dict):
        raise InvalidToken("payload is not an object")
    claims: dict[str, object] = payload
    for name in REQUIRED_CLAIMS:
        if name not in claims:
            raise InvalidToken(f"missing {name}")
    text: dict[str, str] = {}
    for name in ("iss", "sub", "client_id", "scope", "jti"):
        value = claims[name]
        if not isinstance(value, str):
            raise InvalidToken(f"{name} is not a string")
        text[name] = value
    for name in ("sub", "client_id", "jti"):
        if not text[name]:
            raise InvalidToken(f"{name} is empty")
    if text["iss"] != issuer:  # exact: never a prefix or substring (CVE-2024-53861)
        raise InvalidToken("wrong issuer")
    aud = claims["aud"]
    audiences: list[str]
    if isinstance(aud, str):
        audiences = [aud]
    elif isinstance(aud, list) and all(isinstance(a, str) for a in aud):
        audiences = aud
    else:
        raise InvalidToken("bad aud")
    if audience not in audiences:
        raise InvalidToken("wrong audience")
    exp = _int_claim(claims, "exp")
    iat = _int_claim(claims, "iat")
    if now >= exp + leeway:
        raise InvalidToken("expired")
    if iat > now + leeway:
        raise InvalidToken("issued in the future")
    # Optional, but present means a time: a null nbf is refused, not read as "no nbf".
    if "nbf" in claims and _int_claim(claims, "nbf") > now + leeway:
        raise InvalidToken("not yet valid")
    sid = claims.get("sid")
    if sid is not None and (not isinstance(sid, str) or not sid):
        # Revocation checks key on sid: a token whose family cannot be named is not accepted.
        raise InvalidToken("bad sid")
    if len(_HEADERS) < _HEADERS_MAX:
        _HEADERS[segments[0]] = header
    return AccessTokenClaims(
        iss=text["iss"],
        sub=text["sub"],
        aud=aud if isinstance(aud, str) else audiences,
        client_id=text["client_id"],
        scope=text["scope"],
        jti=text["jti"],
        iat=iat,
        exp=exp,
        sid=sid,
        kid=kid,
    )
