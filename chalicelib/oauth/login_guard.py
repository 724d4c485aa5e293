"""Brute-force protection for password logins (RFC 6749 §4.3.2, RFC 9700 §2.4).

Every limit that failed sign-ins can fill is keyed by what the one signing in controls: the
username it types and the source it sends from. Nothing is shared by a whole client or page, so no
stranger can lock out the users of an app. Four counters per attempt, all read at once (stored by
``chalicelib.store.login_attempts``, behind the ``Attempts`` protocol):

- *this username from this source*: from ``threshold`` failures on, the next attempt waits
  ``base_seconds`` after the last failure, doubling with every further failure, at most
  ``max_seconds``. Stops one source guessing.
- *this username from anywhere*: the same growing wait from ``USERNAME_FACTOR`` x ``threshold``
  failures on. Bounds guessing one account from many sources.
- *this source, any username*: ``SOURCE_FACTOR`` x ``threshold`` failures in a fixed window of
  ``max_seconds``, then refused until the window ends. Slows spraying.
- *known sources*: the user signed in here within ``KNOWN_FOR``. The two wider limits do not
  apply to a known source (the first one does): a stranger elsewhere, or spraying behind the same
  NAT, cannot keep a user out of where she usually signs in.

The username is stored only as a SHA-256 (people type passwords into that field); the
source is the address, an IPv6 one cut to its /64 (one host usually holds a whole /64). Failures
of a username are forgotten 24 h after the last one; a success clears both username counters.

Answers: an attempt that must wait gets the wrong-password ``invalid_grant`` after the same work
(the Argon2id check on the dummy hash, the same writes), so "waiting" cannot be told from "wrong
password", for known and unknown usernames alike; the correct password waits too. 429 is not used
on purpose: it would say that a username is being attacked, and with unknown ones that it exists.
Attempts refused while waiting are counted as ``refused`` and extend nothing.

Round trips: ``check`` is one ``BatchGetItem`` (the user and the four items) and returns the user
it read; a failure is one ``UpdateItem`` per counter; a success is one ``TransactWriteItems``
that clears the counters only if no failure was counted since ``check`` read them (else the
correct password is refused too: a burst of parallel guesses cannot slip one through).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from chalicelib.core.config import Settings
from chalicelib.core.errors import InvalidGrant
from chalicelib.core.faults import BackendUnavailable
from chalicelib.core.records import Counter, LoginRecords
from chalicelib.oauth.login import Attempt
from chalicelib.tokens import passwords

BAD_CREDENTIALS = "invalid username or password"  # the text of chalicelib.oauth.login
USER_MEMORY = 24 * 3600  # failures of a username are forgotten this long after the last one
USERNAME_FACTOR = 4  # username-wide threshold = USERNAME_FACTOR x lockout_threshold failures
SOURCE_FACTOR = 10  # per-source limit = SOURCE_FACTOR x lockout_threshold failures per window
KNOWN_FOR = 30 * 24 * 3600  # a source stays known this long after the user's last sign-in there
KNOWN_REFRESH = 24 * 3600  # ...and the mark is renewed at most once a day


class Attempts(Protocol):
    """Where the counters live (implemented by ``chalicelib.store.login_attempts``)."""

    def read(self, username: str, source: str | None, now: int) -> LoginRecords: ...

    def count_username(
        self, username: str, source: str | None, now: int, until: int, *, failure: bool
    ) -> tuple[int, int]: ...

    def count_source(self, source: str, now: int, until: int, *, failure: bool) -> int: ...

    def clear(
        self,
        username: str,
        source: str | None,
        *,
        username_seen: int,
        pair_seen: int,
        known_until: int | None,
        now: int,
    ) -> bool: ...

    def unlock(self, username: str) -> bool: ...


def source_of(ip: str | None) -> str | None:
    """What the per-source limits count by: the address, or the /64 of an IPv6 address (a host
    usually holds the whole /64, so counting single addresses would not limit it at all)."""
    if not ip:
        return None
    import ipaddress

    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return ip[:64]  # API Gateway's own placeholders, e.g. in console test invocations
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:
            return str(addr.ipv4_mapped)
        return str(ipaddress.IPv6Network((addr, 64), strict=False))
    return str(addr)


def subject_hint(username: str) -> str:
    """What logs say instead of a username (people type passwords into the username field)."""
    return hashlib.sha256(username.encode("utf-8")).hexdigest()[:12]


class Policy(NamedTuple):
    threshold: int
    base_seconds: int
    max_seconds: int

    @property
    def username_threshold(self) -> int:
        return self.threshold * USERNAME_FACTOR

    @property
    def source_limit(self) -> int:
        return self.threshold * SOURCE_FACTOR

    def wait_seconds(self, failures: int, threshold: int) -> int:
        """How long attempts wait after the ``failures``-th failure of a counter whose waits
        start at ``threshold`` (0: no wait)."""
        if failures < threshold:
            return 0
        doublings = min(failures - threshold, 32)
        return int(min(self.max_seconds, self.base_seconds * (2**doublings)))

    def waits(self, counter: Counter, threshold: int, now: int) -> bool:
        """Whether an attempt must still wait after the failures ``counter`` holds."""
        seconds = self.wait_seconds(counter.failures, threshold)
        return bool(seconds) and counter.last_failure + seconds > now


@dataclass(frozen=True)
class GuardedAttempt(Attempt):
    """An attempt let through by ``LoginGuard.check``, with the counters it read (the condition
    of ``succeeded``'s reset) and whether the user is known at its source."""

    source: str | None = None
    pair_failures: int = 0
    username_failures: int = 0
    known_until: int = 0


class LoginGuard:
    """Implements the ``LoginGuard`` protocol of chalicelib.oauth.login."""

    def __init__(self, attempts: Attempts, policy: Policy) -> None:
        self._attempts = attempts
        self._policy = policy

    # -- the protocol --------------------------------------------------------------------

    def check(self, username: str, client_id: str, source_ip: str | None, now: int) -> Attempt:
        """Read the user and the counters in one round trip; refuse (after the same work as a
        wrong password) while this attempt must wait."""
        source = source_of(source_ip)
        found = self._attempts.read(username, source, now)
        known = found.known_until > now
        reason = ""
        policy = self._policy
        if policy.waits(found.pair, policy.threshold, now):
            reason = "locked"
        elif not known and policy.waits(found.username, policy.username_threshold, now):
            reason = "username_locked"
        elif not known and source is not None and found.source.failures >= policy.source_limit:
            reason = "rate_limited"
        if reason:
            passwords.verify_password("", None)  # the same time as a wrong password
            self._record(username, source, now, failure=False)
            from chalicelib.core import audit, telemetry

            audit.event(
                "login_refused", user=subject_hint(username), client_id=client_id, reason=reason
            )
            telemetry.count("Lockouts")
            raise InvalidGrant(BAD_CREDENTIALS)
        return GuardedAttempt(
            username=username,
            client_id=client_id,
            source_ip=source_ip,
            user=found.user,
            source=source,
            pair_failures=found.pair.failures,
            username_failures=found.username.failures,
            known_until=found.known_until,
        )

    def failed(self, attempt: Attempt, now: int) -> None:
        source = source_of(attempt.source_ip)
        wide, pair = self._record(attempt.username, source, now, failure=True)
        policy = self._policy
        for kind, failures, threshold in (
            ("username_at_source", pair, policy.threshold),
            ("username", wide, policy.username_threshold),
        ):
            seconds = policy.wait_seconds(failures, threshold)
            if seconds:
                from chalicelib.core import audit

                audit.event(
                    "lockout",
                    user=subject_hint(attempt.username),
                    client_id=attempt.client_id,
                    kind=kind,
                    failures=failures,
                    locked_seconds=seconds,
                )

    def succeeded(self, attempt: Attempt, now: int) -> None:
        """Clear the username's counters and mark its source known, unless a failure was counted
        since ``check`` read them (a concurrent guess, possibly one that started a wait): then
        refuse this login too."""
        if not isinstance(attempt, GuardedAttempt):
            raise InvalidGrant(BAD_CREDENTIALS)  # not from our check (a caller bug): fail closed
        renew = attempt.known_until < now + KNOWN_FOR - KNOWN_REFRESH
        if not self._attempts.clear(
            attempt.username,
            attempt.source,
            username_seen=attempt.username_failures,
            pair_seen=attempt.pair_failures,
            known_until=now + KNOWN_FOR if renew else None,
            now=now,
        ):
            raise InvalidGrant(BAD_CREDENTIALS)

    # -- admin -----------------------------------------------------------------------------

    def unlock(self, username: str) -> bool:
        """Forget a username's failures from every source (admin ``user unlock``). True if
        there were any. The sources where the user is known stay known."""
        found = self._attempts.unlock(username)
        from chalicelib.core import audit

        audit.event("user_unlocked", user=subject_hint(username))
        return found

    # -- internals -------------------------------------------------------------------------

    def _record(
        self, username: str, source: str | None, now: int, *, failure: bool
    ) -> tuple[int, int]:
        """Count a failure (or a refused attempt) on every counter. The username's two counts
        must be stored (else 503); the source's is best effort: the answer to this attempt does
        not depend on it. Returns the username-wide and the per-source failures."""
        wide, pair = self._attempts.count_username(
            username, source, now, now + USER_MEMORY, failure=failure
        )
        if source is not None:
            try:
                self._attempts.count_source(
                    source, now, now + self._policy.max_seconds, failure=failure
                )
            except BackendUnavailable:
                import logging

                logging.getLogger("tessera.login_guard").warning(
                    "login counter not stored", extra={"counter": "source"}
                )
        return wide, pair


def policy_from(settings: Settings) -> Policy:
    """The stage's lockout settings, each at least 1."""
    return Policy(
        threshold=max(1, settings.lockout_threshold),
        base_seconds=max(1, settings.lockout_base_seconds),
        max_seconds=max(1, settings.lockout_max_seconds),
    )
