"""Browser sessions and CSRF tokens for the hosted login, consent and connected-apps pages.

A session is a signed cookie (HMAC-SHA256), not a server-side record: it carries the user id,
username, issue and expiry time and the id of the key that signed it, so keys can rotate while live
sessions stay valid. Cookie attributes: ``HttpOnly``, ``SameSite=Lax``, ``Path=/``, and ``Secure``
everywhere except the local stack (plain http on loopback).

CSRF: every form carries a token that is an HMAC of a per-browser nonce kept in its own cookie
(signed double-submit). A cross-site page can neither read the nonce nor forge the HMAC, and
``SameSite=Lax`` already keeps the cookies off cross-site POSTs: two independent defences.

Ending sessions server-side: a session also carries the user's epoch (chalicelib.users), and the
pages use it only through ``login.signed_in``, which reads the user: disabled, deleted, or moved
to a new epoch since the session began, and the session counts as none.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from typing import NamedTuple

SESSION_COOKIE = "tessera_session"
CSRF_COOKIE = "tessera_csrf"
SESSION_TTL = 15 * 60


class Session(NamedTuple):
    user_id: str
    username: str
    issued_at: int
    expires_at: int
    epoch: int = 0  # the user's epoch when the session began (chalicelib.users)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(data: str) -> bytes:
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))


class SessionSigner:
    """Signs with the first key; verifies with any key it knows (key id carried in the value)."""

    def __init__(self, keys: list[tuple[str, bytes]]) -> None:
        if not keys:
            raise ValueError("no session keys")
        self._current = keys[0]
        self._keys = dict(keys)

    def _mac(self, key: bytes, purpose: str, data: str) -> str:
        return _b64(hmac.new(key, f"{purpose}|{data}".encode(), hashlib.sha256).digest())

    def issue(
        self, user_id: str, username: str, now: int, ttl: int = SESSION_TTL, *, epoch: int = 0
    ) -> str:
        kid, key = self._current
        payload = _b64(
            json.dumps(
                {"u": user_id, "n": username, "iat": now, "exp": now + ttl, "k": kid, "e": epoch},
                separators=(",", ":"),
            ).encode()
        )
        return payload + "." + self._mac(key, "session", payload)

    def read(self, cookie: str | None, now: int) -> Session | None:
        if not cookie or len(cookie) > 2048 or cookie.count(".") != 1:
            return None
        payload, mac = cookie.split(".")
        try:
            data = json.loads(_unb64(payload))
            key = self._keys.get(str(data["k"]))
            if key is None or not hmac.compare_digest(mac, self._mac(key, "session", payload)):
                return None
            session = Session(
                str(data["u"]),
                str(data["n"]),
                int(data["iat"]),
                int(data["exp"]),
                int(data.get("e", 0)),
            )
        except (ValueError, KeyError, TypeError):
            return None
        return session if session.expires_at > now else None

    def csrf_token(self, nonce: str) -> str:
        return self._mac(self._current[1], "csrf", nonce)

    def check_csrf(self, nonce: str | None, token: str | None) -> bool:
        if not nonce or not token:
            return False
        return any(
            hmac.compare_digest(token, self._mac(key, "csrf", nonce)) for key in self._keys.values()
        )

    def sign_blob(self, data: str) -> str:
        """Tamper-proof carrier for the authorization request between the pages."""
        kid, key = self._current
        return _b64(data.encode()) + "." + kid + "." + self._mac(key, "request", data)

    def open_blob(self, blob: str | None) -> str | None:
        if not blob or blob.count(".") != 2 or len(blob) > 8192:
            return None
        encoded, kid, mac = blob.split(".")
        key = self._keys.get(kid)
        try:
            data = _unb64(encoded).decode()
        except ValueError:
            return None
        if key is None or not hmac.compare_digest(mac, self._mac(key, "request", data)):
            return None
        return data


def new_nonce() -> str:
    return secrets.token_urlsafe(24)


def derive_key(pepper: bytes) -> bytes:
    """Session keys are derived from the refresh-token peppers (one secret fewer to manage)."""
    return hmac.new(pepper, b"tessera session key v1", hashlib.sha256).digest()


def cookie(name: str, value: str, *, secure: bool, max_age: int) -> str:
    attrs = [f"{name}={value}", "Path=/", "HttpOnly", "SameSite=Lax", f"Max-Age={max_age}"]
    if secure:
        attrs.append("Secure")
    return "; ".join(attrs)


def read_cookie(header: str | None, name: str) -> str | None:
    if not header:
        return None
    for part in header.split(";"):
        k, _, v = part.strip().partition("=")
        if k == name:
            return v
    return None


def csrf_nonce(cookies: dict[str, str | None], *, secure: bool) -> tuple[str, list[str]]:
    """The browser's CSRF nonce, and the Set-Cookie to send when it has none yet."""
    existing = cookies.get(CSRF_COOKIE)
    if existing:
        return existing, []
    nonce = new_nonce()
    return nonce, [cookie(CSRF_COOKIE, nonce, secure=secure, max_age=3600)]
