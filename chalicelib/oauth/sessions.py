"""Browser sessions and CSRF tokens for the hosted login, consent and connected-apps pages.

A session is a signed cookie (HMAC-SHA256), not a server-side record: it carries the user id,
username, issue and expiry time, a random session id and the id of the key that signed it, so keys
can rotate while live sessions stay valid. The signature is checked before anything in the value
is parsed.

Cookies: ``HttpOnly``, ``SameSite=Lax``, ``Path=/``, no ``Domain``. Where the stage is HTTPS
(``TESSERA_COOKIE_SECURE``, on everywhere but the local stack's plain http) they are ``Secure`` and
named with the ``__Host-`` prefix, which browsers accept only with exactly those attributes: a
sibling subdomain cannot set or shadow them (cookie tossing). Unprefixed names are read only where
the stage is plain http.

CSRF: every form carries a token that is an HMAC of a per-browser nonce kept in its own cookie
(signed double-submit) and of the session id, or of "no session" on the sign-in forms. A token
works only in the session it was made for, and signing in replaces the nonce, so a token or nonce
learnt before sign-in is worth nothing after it. A cross-site page can neither read the nonce nor
forge the HMAC, and ``SameSite=Lax`` already keeps the cookies off cross-site POSTs: two
independent defences.

Ending sessions server-side: a session also carries the user's epoch (chalicelib.store.users), and
the
pages use it only through ``login.signed_in``, which reads the user: disabled, deleted, or moved
to a new epoch since the session began, and the session counts as none.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
from typing import NamedTuple

from chalicelib.core.untrusted import same

SESSION_COOKIE = "tessera_session"
CSRF_COOKIE = "tessera_csrf"
HOST_PREFIX = "__Host-"
SESSION_TTL = 15 * 60
CSRF_TTL = 3600
_NONCE = re.compile(r"[A-Za-z0-9_-]{32}")  # secrets.token_urlsafe(24)


class Session(NamedTuple):
    user_id: str
    username: str
    issued_at: int
    expires_at: int
    sid: str  # random per sign-in: what CSRF tokens are bound to
    epoch: int = 0  # the user's epoch when the session began (chalicelib.store.users)


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
        # surrogatepass: a hostile value (any str) gets a MAC that fails to match, not an error.
        message = f"{purpose}|{data}".encode("utf-8", "surrogatepass")
        return _b64(hmac.new(key, message, hashlib.sha256).digest())

    def issue(
        self, user_id: str, username: str, now: int, ttl: int = SESSION_TTL, *, epoch: int = 0
    ) -> tuple[str, Session]:
        """A new session (a fresh id) and the cookie value that carries it."""
        kid, key = self._current
        session = Session(user_id, username, now, now + ttl, secrets.token_urlsafe(16), epoch)
        payload = _b64(
            json.dumps(
                {
                    "u": user_id,
                    "n": username,
                    "iat": now,
                    "exp": session.expires_at,
                    "s": session.sid,
                    "k": kid,
                    "e": epoch,
                },
                separators=(",", ":"),
            ).encode()
        )
        # The key id also travels outside the signed payload, so the MAC is checked first.
        return payload + "." + kid + "." + self._mac(key, "session", payload), session

    def read(self, cookie: str | None, now: int) -> Session | None:
        if not cookie or len(cookie) > 2048 or cookie.count(".") != 2:
            return None
        payload, kid, mac = cookie.split(".")
        key = self._keys.get(kid)
        if key is None or not same(mac, self._mac(key, "session", payload)):
            return None
        try:  # signed by us: well-formed unless the format changed
            data = json.loads(_unb64(payload))
            if str(data["k"]) != kid:
                return None
            session = Session(
                str(data["u"]),
                str(data["n"]),
                int(data["iat"]),
                int(data["exp"]),
                str(data["s"]),
                int(data.get("e", 0)),
            )
        except (ValueError, KeyError, TypeError):
            return None
        return session if session.expires_at > now else None

    def csrf_token(self, nonce: str, session: Session | None) -> str:
        """The token for a form shown with ``nonce`` in ``session`` (None: a sign-in form)."""
        return self._mac(self._current[1], "csrf", _csrf_data(nonce, session))

    def check_csrf(self, nonce: str | None, token: str | None, session: Session | None) -> bool:
        if not nonce or not token:
            return False
        data = _csrf_data(nonce, session)
        return any(same(token, self._mac(key, "csrf", data)) for key in self._keys.values())

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
        if key is None or not same(mac, self._mac(key, "request", data)):
            return None
        return data


def _csrf_data(nonce: str, session: Session | None) -> str:
    return nonce + "|" + (session.sid if session is not None else "")


def new_nonce() -> str:
    return secrets.token_urlsafe(24)


def derive_key(pepper: bytes) -> bytes:
    """Session keys are derived from the refresh-token peppers (one secret fewer to manage)."""
    return hmac.new(pepper, b"tessera session key v1", hashlib.sha256).digest()


def cookie_name(name: str, *, secure: bool) -> str:
    """The name on the wire: ``__Host-`` prefixed where cookies are ``Secure``."""
    return HOST_PREFIX + name if secure else name


def cookie(name: str, value: str, *, secure: bool, max_age: int) -> str:
    """A ``Set-Cookie`` value; with ``secure`` the attributes ``__Host-`` requires (``Secure``,
    ``Path=/``, no ``Domain``)."""
    attrs = [
        f"{cookie_name(name, secure=secure)}={value}",
        "Path=/",
        "HttpOnly",
        "SameSite=Lax",
        f"Max-Age={max_age}",
    ]
    if secure:
        attrs.append("Secure")
    return "; ".join(attrs)


def read_cookie(header: str | None, name: str) -> str | None:
    """The first cookie called ``name`` (exactly) in a ``Cookie`` header. No size limit of its
    own (API Gateway bounds headers): a sibling domain's large cookies must not lock users out."""
    if not header:
        return None
    for part in header.split(";"):
        k, _, v = part.strip().partition("=")
        if k == name:
            return v
    return None


def page_cookies(header: str | None, *, secure: bool) -> dict[str, str | None]:
    """The page cookies of a request by their plain names (``SESSION_COOKIE``, ``CSRF_COOKIE``),
    read under the stage's wire names. A nonce that is not one this server makes counts as
    absent (a fresh one is set)."""
    nonce = read_cookie(header, cookie_name(CSRF_COOKIE, secure=secure))
    return {
        SESSION_COOKIE: read_cookie(header, cookie_name(SESSION_COOKIE, secure=secure)),
        CSRF_COOKIE: nonce if nonce is not None and _NONCE.fullmatch(nonce) else None,
    }


def csrf_nonce(
    cookies: dict[str, str | None], *, secure: bool, renew: bool = False
) -> tuple[str, list[str]]:
    """The browser's CSRF nonce, and the Set-Cookie to send when it has none yet (or, with
    ``renew``, at sign-in: a new one in any case)."""
    existing = cookies.get(CSRF_COOKIE)
    if existing and not renew:
        return existing, []
    nonce = new_nonce()
    return nonce, [cookie(CSRF_COOKIE, nonce, secure=secure, max_age=CSRF_TTL)]
