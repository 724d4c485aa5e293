"""Refresh tokens (RFC 6749 §6, §10.4; RFC 9700 §4.14): families, rotation, re-use detection.

The protocol logic only; storage is the ``Store`` protocol (``chalicelib.store.grant_store``).

Format: ``tessera_rt_<pepper id>_<43 base64url chars>`` = 256 bits, opaque, with a prefix secret
scanners can match. The table stores ``HMAC-SHA256(pepper, token)`` only. The pepper id inside the
token picks the pepper, so a lookup is one ``GetItem`` even while an old pepper is being retired.

Families: the password and authorization-code grants start a family (one grant: user + client +
scope), only while the user may receive it (``users.receive_check``, in the same transaction);
every refresh rotates it, retiring the presented token and storing its successor in ONE
conditional transaction, which checks the user the same way (disabled, deleted, or a new epoch
since the grant began: refused). A client without the ``refresh_token`` grant gets a family with
no token, ending with its access token: the ``sid`` that makes that token revocable.

Retry window: a client that lost the response of a refresh (or two tabs refreshing at once)
re-presents the token it just rotated. Inside the window it gets the *same* successor back, and a
fresh access token, while that successor is unused: no second branch of the family exists. The
successor is not stored anywhere in clear: it is *derived*,
``HMAC(pepper, "successor" || presented token)``, so only the holder of the old token can
recompute it, and the table keeps only keyed hashes. After the window, or once the successor has
itself been used, re-use of a retired token means two parties hold the family: it is revoked
(the newest token dies too) and the answer is ``invalid_grant``.

Overlap, with the window off (0): a re-use less than ``OVERLAP_GRACE`` seconds after the rotation
is not treated as theft (with the window on, the window absorbs such requests). The request may
have been sent together with the one that won (a client's parallel requests, queued behind each
other on a busy server), and the server cannot tell it from a replay; revoking would kill the
winner's fresh successor. It gets ``invalid_grant`` and nothing else: unlike the retry window it
never hands out a token. Re-use after the grace revokes. The trade-off: a thief who refreshes
first and is followed by the real client within the grace is not detected then: the thief keeps
the family until a retired token shows up after the grace, an admin revokes it, or it expires.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
from typing import Protocol

from chalicelib.core import audit, telemetry
from chalicelib.core.errors import InvalidGrant, InvalidScope, TemporarilyUnavailable
from chalicelib.core.ports import GrantRefused, IssuedRefresh, RotatedRefresh, new_family_id
from chalicelib.core.records import (
    ACTIVE,
    ROTATED,
    Client,
    Family,
    RetrySnapshot,
    RotateOutcome,
    TokenRecord,
)
from chalicelib.core.untrusted import same
from chalicelib.tokens.peppers import Pepper

log = logging.getLogger("tessera.refresh")

PREFIX = "tessera_rt_"
RANDOM_BYTES = 32  # 256 bits (RFC 6749 §10.10: guessing at most 2^-128; we give 2^-256)
MAX_TOKEN_LENGTH = 200
OVERLAP_GRACE = 10  # seconds; see the module docstring
_HASH_LABEL = b"tessera refresh-token hash\x00"
_SUCCESSOR_LABEL = b"tessera refresh-token successor\x00"
INVALID = "the refresh token is invalid, expired or revoked"


class Peppers(Protocol):
    def current(self) -> Pepper: ...

    def get(self, pepper_id: str) -> Pepper | None: ...


class Store(Protocol):
    def create_family(self, family: Family, first: TokenRecord | None) -> bool: ...

    def get_token(self, token_hash: str) -> TokenRecord | None: ...

    def rotate(
        self, old: TokenRecord, new: TokenRecord, *, successor_pepper: str, now: int
    ) -> RotateOutcome: ...

    def retry_snapshot(self, successor_hash: str, rec: TokenRecord) -> RetrySnapshot: ...

    def get_family(self, family_id: str) -> Family | None: ...

    def revoke_family(
        self, family_id: str, reason: str, now: int, *, preempt: bool = False
    ) -> bool: ...


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def token_hash(pepper: Pepper, token: str) -> str:
    return hmac.new(pepper.secret, _HASH_LABEL + token.encode("utf-8"), hashlib.sha256).hexdigest()


def successor_of(pepper: Pepper, token: str) -> str:
    """The successor of ``token`` under ``pepper``: deterministic, 256 bits, secret without both."""
    mac = hmac.new(pepper.secret, _SUCCESSOR_LABEL + token.encode("utf-8"), hashlib.sha256)
    return f"{PREFIX}{pepper.id}_{_b64(mac.digest())}"


def pepper_id_of(token: str) -> str | None:
    """The pepper id a well-formed token names, or None (never raises on garbage)."""
    if len(token) > MAX_TOKEN_LENGTH or not token.startswith(PREFIX):
        return None
    pepper_id, sep, rest = token[len(PREFIX) :].partition("_")
    return pepper_id if sep and rest else None


def looks_like_refresh_token(token: str) -> bool:
    return pepper_id_of(token) is not None


class RefreshTokens:
    """Implements ``token_endpoint.RefreshGrants`` plus the lookups revocation and
    introspection need."""

    def __init__(
        self,
        *,
        store: Store,
        peppers: Peppers,
        absolute_ttl: int,
        idle_ttl: int,
        retry_window: int,
    ) -> None:
        self._store = store
        self._peppers = peppers
        self._absolute_ttl = absolute_ttl
        self._idle_ttl = idle_ttl
        self._window = max(0, retry_window)

    # -- RefreshGrants -------------------------------------------------------------------------

    def start(
        self,
        *,
        client: Client,
        subject: str,
        username: str,
        scope: str,
        now: int,
        epoch: int = 0,
        family_id: str | None = None,
        access_only_until: int | None = None,
        auth_time: int = 0,
    ) -> IssuedRefresh:
        """A new family and its first token (none with ``access_only_until``: the family then
        ends at that time), if the user may receive it; else ``GrantRefused``. ``family_id`` may
        be chosen by the caller (the code grant records it on the code before any token exists,
        so a re-used code finds it)."""
        family = Family(
            family_id=family_id or new_family_id(),
            user_id=subject,
            username=username,
            client_id=client.client_id,
            scope=scope,
            created=now,
            last_used=now,
            expires=now + self._absolute_ttl if access_only_until is None else access_only_until,
            user_epoch=epoch,
            auth_time=auth_time,
        )
        token = first = None
        if access_only_until is None:
            pepper = self._peppers.current()
            token = f"{PREFIX}{pepper.id}_{secrets.token_urlsafe(RANDOM_BYTES)}"
            first = self._record(family, pepper, token, now)
        if not self._store.create_family(family, first):
            raise GrantRefused()
        log.info("grant started", extra={"family": family.family_id, "refresh": first is not None})
        return IssuedRefresh(token, family.family_id)

    def rotate(
        self, *, client: Client, token: str, requested_scope: frozenset[str] | None, now: int
    ) -> RotatedRefresh:
        found = self.find(token)
        if found is None:
            raise InvalidGrant(INVALID)
        rec = found
        if rec.client_id != client.client_id:
            # RFC 6749 §6: the token is bound to its client. Not a re-use: nothing changes.
            log.warning("refresh token of another client", extra={"family": rec.family_id})
            raise InvalidGrant(INVALID)
        if now >= rec.expires:
            raise InvalidGrant(INVALID)
        scope = self._narrow(rec.scope, requested_scope)
        if rec.state == ACTIVE:
            if now >= rec.idle_expires:
                raise InvalidGrant(INVALID)
            rotated = self._advance(rec, token, scope, now)
            if rotated is not None:
                return rotated
            # Lost a race with a concurrent refresh of the same token: see what it left.
            again = self._store.get_token(rec.token_hash)
            if again is None:
                raise InvalidGrant(INVALID)
            rec = again
        if rec.state == ROTATED:
            return self._reuse(rec, token, scope, now)
        raise InvalidGrant(INVALID)

    # -- lookups for revocation and introspection ------------------------------------------------

    def find(self, token: str) -> TokenRecord | None:
        """The record of a presented token, or None for anything unknown or malformed."""
        pepper_id = pepper_id_of(token)
        if pepper_id is None:
            return None
        pepper = self._peppers.get(pepper_id)
        if pepper is None:
            return None
        return self._store.get_token(token_hash(pepper, token))

    def family(self, family_id: str) -> Family | None:
        return self._store.get_family(family_id)

    def revoke(self, rec: TokenRecord, reason: str, now: int) -> None:
        self.revoke_family(rec.family_id, reason, now, client_id=rec.client_id)

    def revoke_family(
        self,
        family_id: str,
        reason: str,
        now: int,
        client_id: str | None = None,
        *,
        preempt: bool = False,
    ) -> None:
        if self._store.revoke_family(family_id, reason, now, preempt=preempt):
            log.warning("refresh family revoked", extra={"family": family_id, "reason": reason})
            audit.event(
                "refresh_reuse" if reason == "reuse" else "refresh_family_revoked",
                family=family_id,
                client_id=client_id,
                reason=reason,
            )
            if reason == "reuse":
                telemetry.count("RefreshReuseDetected")

    # -- internals ---------------------------------------------------------------------------

    def _record(self, family: Family, pepper: Pepper, token: str, now: int) -> TokenRecord:
        return TokenRecord(
            token_hash=token_hash(pepper, token),
            family_id=family.family_id,
            client_id=family.client_id,
            user_id=family.user_id,
            username=family.username,
            scope=family.scope,
            pepper_id=pepper.id,
            state=ACTIVE,
            created=now,
            expires=family.expires,
            idle_expires=min(now + self._idle_ttl, family.expires),
            user_epoch=family.user_epoch,
        )

    @staticmethod
    def _narrow(granted: str, requested: frozenset[str] | None) -> str:
        """RFC 6749 §6: the scope may narrow for this access token, never widen."""
        if requested is None:
            return granted
        if not requested <= frozenset(granted.split()):
            raise InvalidScope("the requested scope exceeds the original grant")
        return " ".join(sorted(requested))

    def _advance(self, rec: TokenRecord, token: str, scope: str, now: int) -> RotatedRefresh | None:
        """Rotate; None if a concurrent request got there first."""
        pepper = self._peppers.current()
        successor = successor_of(pepper, token)
        family = Family(
            family_id=rec.family_id,
            user_id=rec.user_id,
            username=rec.username,
            client_id=rec.client_id,
            scope=rec.scope,  # the new token keeps the family's original scope
            created=now,
            last_used=now,
            expires=rec.expires,
            user_epoch=rec.user_epoch,
        )
        new = self._record(family, pepper, successor, now)
        outcome = self._store.rotate(rec, new, successor_pepper=pepper.id, now=now)
        if outcome is RotateOutcome.COMMITTED:
            audit.event("refresh_rotated", family=rec.family_id, client_id=rec.client_id)
            return RotatedRefresh(successor, rec.family_id, rec.user_id, scope)
        if outcome is RotateOutcome.TOKEN_NOT_ACTIVE:
            return None
        if outcome is RotateOutcome.CONTENDED:
            # Another transaction held one of the items. If it rotated our token, the re-read
            # in rotate() finds it rotated; if the token is still active, nothing happened.
            again = self._store.get_token(rec.token_hash)
            if again is not None and again.state == ROTATED:
                return None
            raise TemporarilyUnavailable()
        log.info("refresh refused", extra={"family": rec.family_id, "outcome": outcome.value})
        raise InvalidGrant(INVALID)

    def _reuse(self, rec: TokenRecord, token: str, scope: str, now: int) -> RotatedRefresh:
        """A retired token came back: the retry window, an overlapping request, or theft."""
        age = now - (rec.rotated_at or 0)
        if age < self._window and rec.successor_hash and rec.successor_pepper:
            pepper = self._peppers.get(rec.successor_pepper)
            successor = successor_of(pepper, token) if pepper else None
            if (
                successor is not None
                and pepper is not None
                and same(token_hash(pepper, successor), rec.successor_hash)
            ):
                snap = self._store.retry_snapshot(rec.successor_hash, rec)
                if snap.family is None or snap.family.revoked or not snap.user_ok:
                    raise InvalidGrant(INVALID)
                nxt = snap.successor
                if nxt is not None and nxt.state == ACTIVE and now < nxt.idle_expires:
                    log.info("refresh retried inside the window", extra={"family": rec.family_id})
                    return RotatedRefresh(successor, rec.family_id, rec.user_id, scope)
                # The successor was already used: this is a second holder, not a retry.
        elif self._window == 0 and age < OVERLAP_GRACE:
            log.info("refresh overlapped its rotation", extra={"family": rec.family_id})
            raise InvalidGrant(INVALID)
        self.revoke(rec, "reuse", now)
        raise InvalidGrant(INVALID)
