"""OpenID Connect Core 1.0: ID tokens, the claims they and userinfo carry, and subjects.

- ID tokens (§2, §3.1.3.6): issued by the token endpoint for a code-flow grant whose scope holds
  ``openid``, and again at every refresh of that grant (§12.2: same ``sub``, ``auth_time`` and
  ``sid``, a new ``iat``, no ``nonce``). Signed with the key that signs access tokens, header
  ``typ: JWT``: never ``at+jwt``, so no validator of access tokens (the authorizer, userinfo,
  introspection) accepts an ID token, and ``id_token_hint`` accepts no access token. ``aud`` is
  the client id alone, so ``azp`` is never needed (§2). ``sid`` is the grant (the refresh
  family): what a refresh keeps, what logout and revocation end.
- Claims (§5.4): ``profile`` gives ``preferred_username`` and ``name``, ``email`` gives ``email``
  and ``email_verified``, from the user record (set with the admin command). They are in the ID
  token and at the userinfo endpoint alike.
- Subjects (§8): ``public`` is the user id; ``pairwise`` (per client) is
  ``base64url(HMAC-SHA256(salt, sector || 0x00 || user id))``, where the salt is 256 random bits
  kept per sector (``Salts``: ``chalicelib.store.sector_salts``), made once and never changed: a
  pairwise ``sub`` is stable for as long as the user exists. A pairwise client sees only that
  value, in its ID tokens, userinfo answers and access tokens.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from typing import NamedTuple, Protocol
from urllib.parse import urlsplit

import jwt

from chalicelib.core.records import Client, User
from chalicelib.tokens.key_objects import SUPPORTED_ALGS, SigningKey, VerifyingKey

OPENID = "openid"
ID_TOKEN_TYP = "JWT"  # noqa: S105 - a JOSE header value, not a secret
MAX_ID_TOKEN = 8192
PUBLIC, PAIRWISE = "public", "pairwise"
SUBJECT_TYPES = (PUBLIC, PAIRWISE)
CLAIMS_SUPPORTED = (
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "at_hash",
    "sid",
    "preferred_username",
    "name",
    "email",
    "email_verified",
)
# at_hash (§3.1.3.6): the left half of the hash that goes with the signing algorithm.
_HASH_OF_ALG = {"ES256": hashlib.sha256, "RS256": hashlib.sha256}
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def wants_id_token(scope: str) -> bool:
    return OPENID in scope.split()


def at_hash(access_token: str, alg: str) -> str:
    digest = _HASH_OF_ALG[alg](access_token.encode("ascii")).digest()
    return _b64(digest[: len(digest) // 2])


def scope_claims(user: User, scopes: frozenset[str]) -> dict[str, object]:
    """The user's claims that ``scopes`` release (§5.4); a claim the user lacks is left out."""
    out: dict[str, object] = {}
    if "profile" in scopes:
        out["preferred_username"] = user.username
        if user.name:
            out["name"] = user.name
    if "email" in scopes and user.email:
        out["email"] = user.email
        out["email_verified"] = user.email_verified
    return out


# --- subjects ------------------------------------------------------------------------------


def default_sector(client_id: str, redirect_uris: list[str] | tuple[str, ...]) -> str:
    """The sector of a pairwise client (§8.1): the one host of its https redirect URIs. Loopback
    and private-use redirect URIs name no web site, and several hosts would need a sector
    identifier document: those clients are a sector of their own (their client id)."""
    hosts = set()
    for uri in redirect_uris:
        parts = urlsplit(uri)
        host = parts.hostname if parts.scheme == "https" else None
        if host is None or host in _LOOPBACK_HOSTS:
            return client_id
        hosts.add(host)
    return hosts.pop() if len(hosts) == 1 else client_id


class Salts(Protocol):
    """A sector's pairwise salt (implemented by ``chalicelib.store.sector_salts``)."""

    def salt(self, sector: str) -> bytes: ...


class Subjects:
    """The ``sub`` a client sees for a user (§8)."""

    def __init__(self, salts: Salts) -> None:
        self._salts = salts

    def of(self, client: Client, user_id: str) -> str:
        if client.subject_type != PAIRWISE:
            return user_id
        sector = client.sector or client.client_id
        mac = hmac.new(self._salts.salt(sector), f"{sector}\x00{user_id}".encode(), hashlib.sha256)
        return _b64(mac.digest())


# --- ID tokens -----------------------------------------------------------------------------


def sign_id_token(signer: SigningKey, claims: dict[str, object]) -> str:
    """The one place an ID token is signed: PyJWT's ``jwt.encode`` with the access tokens'
    current key object, header ``typ`` JWT and the key's ``kid`` (key_objects.SigningKey)."""
    return signer.sign(claims, ID_TOKEN_TYP)


class SignIn(NamedTuple):
    """What an ID token says about the sign-in behind a grant."""

    user: User
    family_id: str  # the grant: the ID token's sid
    auth_time: int
    nonce: str | None
    scope: str


class IdTokens:
    def __init__(self, *, issuer: str, lifetime: int, subjects: Subjects) -> None:
        self._issuer = issuer
        self._lifetime = lifetime
        self._subjects = subjects

    def subject(self, client: Client, user_id: str) -> str:
        return self._subjects.of(client, user_id)

    def issue(
        self,
        signer: SigningKey,
        client: Client,
        sign_in: SignIn,
        access_token: str,
        now: int,
    ) -> str:
        claims: dict[str, object] = {
            "iss": self._issuer,
            "sub": self._subjects.of(client, sign_in.user.user_id),
            "aud": client.client_id,
            "exp": now + self._lifetime,
            "iat": now,
            "auth_time": sign_in.auth_time,
            "at_hash": at_hash(access_token, signer.alg),
            "sid": sign_in.family_id,
        }
        if sign_in.nonce:
            claims["nonce"] = sign_in.nonce
        claims.update(scope_claims(sign_in.user, frozenset(sign_in.scope.split())))
        return sign_id_token(signer, claims)


class IdTokenHint(NamedTuple):
    """A genuine ID token of ours, as an ``id_token_hint`` (expiry not checked: a hint)."""

    sub: str
    aud: str
    sid: str | None


# Header members that change how a token must be read: none of our ID tokens carries one.
_REFUSED_HEADER = ("crit", "b64", "zip", "enc")


def read_id_token(
    token: str, key_for: Callable[[str], VerifyingKey | None], issuer: str
) -> IdTokenHint | None:
    """The hint if ``token`` is an ID token this server signed (with any key still published),
    else None. As strict as the access-token validator on the JWS (size cap first, compact and
    unpadded, ``alg`` bound to the key found by ``kid``, PyJWT verifies), but ``typ`` must be
    JWT, so an access token is not a hint; expiry is not checked (RP-Initiated Logout §2)."""
    if not isinstance(token, str) or len(token) > MAX_ID_TOKEN:
        return None
    segments = token.split(".")
    if len(segments) != 3 or not all(segments) or not token.isascii() or "=" in token:
        return None
    try:
        header = jwt.get_unverified_header(token)
    except (jwt.PyJWTError, ValueError, RecursionError):
        return None
    typ, alg, kid = header.get("typ"), header.get("alg"), header.get("kid")
    if not isinstance(typ, str) or typ.upper() != ID_TOKEN_TYP:
        return None
    if any(name in header for name in _REFUSED_HEADER) or alg not in SUPPORTED_ALGS:
        return None
    if not isinstance(kid, str) or not kid or len(kid) > 128:
        return None
    key = key_for(kid)
    if key is None or key.alg != alg:
        return None
    try:
        decoded = jwt.api_jws.decode_complete(token, key.jwk, algorithms=[key.alg])
        payload = json.loads(decoded["payload"].decode("utf-8"))
    except (jwt.PyJWTError, ValueError, TypeError, RecursionError):
        return None
    if not isinstance(payload, dict) or payload.get("iss") != issuer:  # exact, never a prefix
        return None
    sub, aud, sid = payload.get("sub"), payload.get("aud"), payload.get("sid")
    if isinstance(aud, list) and len(aud) == 1:
        aud = aud[0]
    if not (isinstance(sub, str) and sub and isinstance(aud, str) and aud):
        return None
    return IdTokenHint(sub, aud, sid if isinstance(sid, str) and sid else None)
