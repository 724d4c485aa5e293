"""The pure rotation logic (no AWS): the key or pepper set's entries, the timing rules, and the
plan of one rotation (what to create, promote, demote, retire). Its runner is
``chalicelib.ops.rotation``; the two kinds of set are ``chalicelib.ops.rotation_kinds``."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from chalicelib.tokens.keys import KeySetError

if TYPE_CHECKING:
    from chalicelib.core.config import Settings

# "Not in the set verifiers read": an entry with this stamp is never old enough to be used.
NOT_PUBLISHED = 2**53


class RotationError(Exception):
    """A rotation step cannot proceed (Secrets Manager marks the rotation failed and retries)."""


class RevokeRefused(RotationError):
    """Revoking this entry would leave nothing to sign with."""


class UnknownEntry(RotationError):
    """No key (or pepper) with that id in the set."""


# --- timing -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Timing:
    """How long an entry is published before use, and known after use.

    ``publish_delay``: from the first write of an entry to the set verifiers read, until it may
    be used. Verifiers read the set through a cache that is at most ``cache_bound`` old (re-read
    every ``key_cache_ttl``; kept up to ``key_stale_max`` while Secrets Manager is unreachable),
    and the JWKS document may sit in a client's cache for ``max-age`` = ``key_cache_ttl`` on top.

    ``retire_after``: from the demotion of an entry until it may be removed. Token-API containers
    may keep using it for ``cache_bound`` after the demotion, and what they issue lives for
    ``lifetime`` (+ ``leeway`` at the verifier).
    """

    publish_delay: int
    retire_after: int

    @staticmethod
    def cache_bound(key_cache_ttl: int, key_stale_max: int) -> int:
        return max(key_cache_ttl, key_stale_max)

    @classmethod
    def for_keys(cls, s: Settings) -> Timing:
        bound = cls.cache_bound(s.key_cache_ttl, s.key_stale_max)
        return cls(
            publish_delay=bound + s.key_cache_ttl,
            retire_after=bound + s.access_token_ttl + s.clock_leeway,
        )

    @classmethod
    def for_peppers(cls, s: Settings) -> Timing:
        bound = cls.cache_bound(s.key_cache_ttl, s.key_stale_max)
        return cls(
            publish_delay=bound,
            retire_after=bound + s.refresh_token_absolute_ttl + s.clock_leeway,
        )


# --- entries and the pure rotation logic --------------------------------------------------


@dataclass(frozen=True, slots=True)
class Entry:
    """One key or pepper, whatever the secret's own JSON shape (``body`` keeps the rest)."""

    id: str
    state: str
    created: int
    body: Mapping[str, object] = field(compare=False)  # a JWK, or the pepper's secret
    published: int | None = None
    demoted: int | None = None

    def published_at(self) -> int:
        # Sets written before stamps existed (seed, bootstrap) were published when created.
        return self.published if self.published is not None else self.created


@dataclass(frozen=True, slots=True)
class Plan:
    entries: list[Entry]
    promoted: str | None = None
    retired: tuple[str, ...] = ()
    added: tuple[str, ...] = ()
    ready_at: int | None = None  # when a waiting ``next`` becomes eligible


def _check_shape(entries: list[Entry]) -> None:
    if not entries:
        return
    if sum(e.state == "current" for e in entries) != 1:
        raise KeySetError("set needs exactly one current entry")
    if sum(e.state == "next" for e in entries) > 1:
        raise KeySetError("set has more than one next entry")
    if len({e.id for e in entries}) != len(entries):
        raise KeySetError("duplicate id in set")


def plan_rotation(
    entries: list[Entry],
    now: int,
    timing: Timing,
    make: Callable[[str, int], Entry],
    *,
    staged: bool = True,
) -> Plan:
    """One rotation run over a set (see the module docstring). Pure apart from ``make``.

    ``staged=False`` (the pepper) has no ``next`` state: every run makes a new current entry and
    demotes the old one; readers find an entry they have not seen yet by re-reading the set.
    """
    if not staged:
        return _plan_direct(entries, now, timing, make)
    if not entries:
        # First run on an empty set (a fresh deploy): a current entry, and a next one that the
        # verifiers learn in the same write, so the first real rotation can promote it.
        boot = [make("current", now), make("next", now)]
        return Plan([replace(e, published=now) for e in boot], added=tuple(e.id for e in boot))
    _check_shape(entries)
    # A previous entry without a demotion stamp starts its clock now (never retired early).
    entries = [
        replace(e, demoted=now) if e.state == "previous" and e.demoted is None else e
        for e in entries
    ]
    retired = tuple(e.id for e in entries if _retirable(e, now, timing))
    kept = [e for e in entries if e.id not in retired]
    nxt = next((e for e in kept if e.state == "next"), None)
    promoted: str | None = None
    ready_at: int | None = None
    if nxt is not None:
        ready = nxt.published_at() + timing.publish_delay
        if now >= ready:
            promoted = nxt.id
            kept = [_promote(e, nxt.id, now) for e in kept]
        else:
            ready_at = ready
    added: tuple[str, ...] = ()
    if not any(e.state == "next" for e in kept):
        fresh = replace(make("next", now), published=now)
        kept.append(fresh)
        added = (fresh.id,)
    return Plan(kept, promoted=promoted, retired=retired, added=added, ready_at=ready_at)


def _retirable(e: Entry, now: int, timing: Timing) -> bool:
    return (
        e.state == "previous" and e.demoted is not None and now >= e.demoted + timing.retire_after
    )


def _plan_direct(
    entries: list[Entry], now: int, timing: Timing, make: Callable[[str, int], Entry]
) -> Plan:
    fresh = replace(make("current", now), published=now)
    if not entries:
        return Plan([fresh], promoted=fresh.id, added=(fresh.id,))
    _check_shape(entries)
    retired = tuple(e.id for e in entries if _retirable(e, now, timing))
    kept = [
        replace(e, state="previous", demoted=e.demoted if e.state == "previous" else now)
        for e in entries
        if e.id not in retired
    ]
    kept = [replace(e, demoted=now) if e.demoted is None else e for e in kept]
    return Plan([*kept, fresh], promoted=fresh.id, retired=retired, added=(fresh.id,))


def _promote(e: Entry, next_id: str, now: int) -> Entry:
    if e.id == next_id:
        return replace(e, state="current")
    if e.state == "current":
        return replace(e, state="previous", demoted=now)
    return e


def revoke_entry(
    entries: list[Entry],
    entry_id: str,
    now: int,
    make: Callable[[str, int], Entry],
    *,
    staged: bool = True,
) -> list[Entry]:
    """Remove an entry at once. A current key can go only if a next key exists to take its place
    (a revoked current pepper is simply replaced by a new one)."""
    target = next((e for e in entries if e.id == entry_id), None)
    if target is None:
        raise UnknownEntry(entry_id)
    rest = [e for e in entries if e.id != entry_id]
    if not staged:
        if target.state == "current":
            rest.append(replace(make("current", now), published=now))
        return rest
    if target.state == "current":
        nxt = next((e for e in rest if e.state == "next"), None)
        if nxt is None:
            raise RevokeRefused(
                "refusing to revoke the only current entry: no next entry to promote "
                "(run a rotation first so a next entry exists)"
            )
        rest = [replace(e, state="current") if e.id == nxt.id else e for e in rest]
    if not any(e.state == "next" for e in rest):
        rest.append(replace(make("next", now), published=now))
    return rest


def publish(pending: list[Entry], ledger: Iterable[Entry], now: int) -> list[Entry]:
    """The pending set with the stamps it has (or gets now) in the set verifiers read."""
    known = {e.id: e for e in ledger}
    out = []
    for e in pending:
        old = known.get(e.id)
        published = old.published_at() if old is not None else now
        demoted = old.demoted if old is not None and e.state == "previous" else None
        out.append(replace(e, published=published, demoted=demoted))
    return out


def with_ledger(entries: list[Entry], ledger: Iterable[Entry]) -> list[Entry]:
    """Entries with the stamps the ledger has for them; one missing from it is not published."""
    known = {e.id: e for e in ledger}
    out = []
    for e in entries:
        old = known.get(e.id)
        if old is None:
            out.append(replace(e, published=NOT_PUBLISHED, demoted=None))
        else:
            out.append(replace(e, published=old.published_at(), demoted=old.demoted))
    return out


def stamp_demoted(entries: list[Entry], now: int) -> list[Entry]:
    return [
        replace(e, demoted=now) if e.state == "previous" and e.demoted is None else e
        for e in entries
    ]
