"""Resource-owner authentication, shared by the password grant and the hosted login pages.

One code path so all of them get the same brute-force protection (RFC 6749 §4.3.2) and the same
answer for an unknown user, a wrong password, a disabled account and a locked account: the caller
cannot tell them apart, in body or in timing (the Argon2id check always runs, on a dummy hash if
needed).

``signed_in`` is the other half: a hosted page's session is used only while its user may still
receive things (``records.may_receive``), so disabling or deleting a user ends their sessions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from chalicelib.core.errors import InvalidGrant
from chalicelib.core.ports import Users
from chalicelib.core.records import InvalidUsername, User, normalize_username
from chalicelib.tokens import passwords

if TYPE_CHECKING:  # the token endpoint imports this module and never reads a session
    from chalicelib.oauth.sessions import Session, SessionSigner

BAD_CREDENTIALS = "invalid username or password"


@dataclass(frozen=True)
class Attempt:
    """One sign-in attempt as the guard's ``check`` let it through: the user it read with its
    counters (``None`` for an unknown username). ``failed``/``succeeded`` take it back, so what
    they write is tied to what was read, not to whatever ran last on the thread."""

    username: str
    client_id: str
    source_ip: str | None
    user: User | None


class LoginGuard(Protocol):
    """Brute-force protection (implemented by chalicelib.oauth.login_guard)."""

    def check(self, username: str, client_id: str, source_ip: str | None, now: int) -> Attempt:
        """The attempt with its user, or ``InvalidGrant`` (same text as bad credentials) while
        the attempt must wait."""

    def failed(self, attempt: Attempt, now: int) -> None: ...

    def succeeded(self, attempt: Attempt, now: int) -> None: ...


def authenticate(
    users: Users,
    guard: LoginGuard | None,
    *,
    raw_username: str,
    password: str,
    client_id: str,
    source_ip: str | None,
    now: int,
) -> User:
    """The user, or ``InvalidGrant(BAD_CREDENTIALS)`` for every kind of failure."""
    try:
        username = normalize_username(raw_username)
    except InvalidUsername:
        username = ""
    attempt = None
    if guard is not None:
        # The guard reads the user with its counters in one round trip.
        attempt = guard.check(username, client_id, source_ip, now)
        user = attempt.user
    else:
        user = users.get(username) if username else None
    ok = passwords.verify_password(password, user.password_hash if user else None)
    if not ok or user is None or user.disabled:
        if guard is not None and attempt is not None:
            guard.failed(attempt, now)
        raise InvalidGrant(BAD_CREDENTIALS)
    if guard is not None and attempt is not None:
        guard.succeeded(attempt, now)
    if passwords.needs_rehash(user.password_hash):
        users.set_password_hash(user.username, passwords.hash_password(password))
    return user


def signed_in(signer: SessionSigner, users: Users, cookie: str | None, now: int) -> Session | None:
    """The browser's session, if its cookie is genuine and unexpired AND its user may still
    receive things: not disabled or deleted since the session began (one read of the user)."""
    session = signer.read(cookie, now)
    if session is None:
        return None
    if not users.may_receive_now(session.username, session.user_id, session.epoch):
        return None
    return session
