"""JWT access tokens: issuing and validating (RFC 9068, with RFC 8725's best practices).

Validation is shared by the authorizer and introspection, so both apply the same rules:
size cap before parsing, compact JWS only, ``typ`` at+jwt, the header's ``alg`` must equal the
algorithm bound to the key found by ``kid`` (never HS*, never ``none``), unknown ``crit`` rejected,
keys in the header (``jwk``, ``jku``, ``x5u``, ``x5c``) ignored, ``iss`` compared exactly, ``aud``
must contain our audience, time claims checked with bounded leeway, all required claims present.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

from chalicelib import jose

MAX_TOKEN_LENGTH = 4096
MAX_KID_LENGTH = 128
MAX_LEEWAY = 60  # seconds; RFC 8725 leaves it open, our rule caps it
TYP = "at+jwt"
_ACCEPTED_TYP = {"at+jwt", "application/at+jwt"}
REQUIRED_CLAIMS = ("iss", "exp", "aud", "sub", "client_id", "iat", "jti", "scope")


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
    signer: jose.SigningKey,
    *,
    issuer: str,
    audience: str,
    subject: str,
    client_id: str,
    scope: str,
    now: int,
    lifetime: int,
    family_id: str | None = None,
) -> tuple[str, dict[str, Any]]:
    """Sign a new access token; returns the token and its claims (for logging the jti)."""
    claims: dict[str, Any] = {
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


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """JSON object hook: a member named twice is an error (one token, one meaning)."""
    out = dict(pairs)  # built in C; a repeated name leaves fewer members than pairs
    if len(out) != len(pairs):
        raise InvalidToken("duplicate claim")
    return out


_CLAIMS_DECODER = json.JSONDecoder(object_pairs_hook=_no_duplicates)


class ValidationSettings(Protocol):
    @property
    def issuer(self) -> str: ...

    @property
    def audience(self) -> str: ...

    @property
    def clock_leeway(self) -> int: ...


def validate_for(
    token: str,
    key_for: Callable[[str], jose.VerifyingKey | None],
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


def _int_claim(payload: dict[str, Any], name: str, required: bool) -> int | None:
    value = payload.get(name)
    if value is None and not required:
        return None
    # bool is an int subclass; a JSON true is not a time.
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidToken(f"{name} is not an integer")
    return value


def validate(
    token: str,
    key_for: Callable[[str], jose.VerifyingKey | None],
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
    try:
        jws = jose.parse_compact(token, MAX_TOKEN_LENGTH)
    except jose.JoseError as exc:
        raise InvalidToken(str(exc)) from exc
    header = jws.header
    typ = header.get("typ")
    if not isinstance(typ, str) or typ.lower() not in _ACCEPTED_TYP:
        raise InvalidToken("wrong typ")
    if "crit" in header:
        raise InvalidToken("unsupported crit")
    alg = header.get("alg")
    if alg not in jose.SUPPORTED_ALGS:
        raise InvalidToken("algorithm not allowed")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid or len(kid) > MAX_KID_LENGTH:
        raise InvalidToken("missing or bad kid")
    key = key_for(kid)
    if key is None:
        raise InvalidToken("unknown kid")
    if key.alg != alg:
        raise InvalidToken("algorithm does not match key")
    if not key.verify(jws.signing_input, jws.signature):
        raise InvalidToken("bad signature")

    try:
        # UTF-8 only (RFC 8259 §8.1); one decoder built once instead of one per json.loads call.
        payload = _CLAIMS_DECODER.decode(jws.payload.decode("utf-8"))
    except InvalidToken:
        raise
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise InvalidToken("payload is not JSON") from exc
    if not isinstance(payload, dict):
        raise InvalidToken("payload is not an object")
    for name in REQUIRED_CLAIMS:
        if name not in payload:
            raise InvalidToken(f"missing {name}")
    for name in ("iss", "sub", "client_id", "scope", "jti"):
        if not isinstance(payload[name], str):
            raise InvalidToken(f"{name} is not a string")
    for name in ("iss", "sub", "client_id", "jti"):
        if not payload[name]:
            raise InvalidToken(f"{name} is empty")
    if payload["iss"] != issuer:
        raise InvalidToken("wrong issuer")
    aud = payload["aud"]
    if isinstance(aud, str):
        audiences = [aud]
    elif isinstance(aud, list) and all(isinstance(a, str) for a in aud):
        audiences = aud
    else:
        raise InvalidToken("bad aud")
    if audience not in audiences:
        raise InvalidToken("wrong audience")
    exp = _int_claim(payload, "exp", True)
    iat = _int_claim(payload, "iat", True)
    nbf = _int_claim(payload, "nbf", False)
    assert exp is not None
    assert iat is not None
    if now >= exp + leeway:
        raise InvalidToken("expired")
    if nbf is not None and nbf > now + leeway:
        raise InvalidToken("not yet valid")
    if iat > now + leeway:
        raise InvalidToken("issued in the future")
    sid = payload.get("sid")
    if sid is not None and (not isinstance(sid, str) or not sid):
        # Revocation checks key on sid: a token whose family cannot be named is not accepted.
        raise InvalidToken("bad sid")
    return AccessTokenClaims(
        iss=payload["iss"],
        sub=payload["sub"],
        aud=aud,
        client_id=payload["client_id"],
        scope=payload["scope"],
        jti=payload["jti"],
        iat=iat,
        exp=exp,
        sid=sid,
        kid=kid,
    )
