"""Signing-key sets (RFC 7517) and their container-level caches.

Two secrets hold the keys. The private set (signing-keys secret) is read only by the token API and
the rotation function; the public set (public-keys secret) is what the authorizer reads, so its role
never needs access to private keys. Both have the same shape::

    {"keys": [{"state": "next|current|previous", "created": 1700000000, "jwk": {...}}]}

Exactly one key is ``current`` (signs); ``next`` and ``previous`` are published so that tokens
validate before a key signs and after it stops signing (see chalicelib.ops.rotation).

One parser (``parse_key_set``) reads both sets for every reader, the rotation function included
(it also reads the public set's ``published``/``demoted`` stamps); a malformed set is an error,
never a set with a key left out.

Caches: a set is re-read after ``key_cache_ttl`` seconds and parsed once per version
(``ParsedSecret``, shared with the pepper ring). If the key store is unreachable, the last
good set keeps working for ``key_stale_max`` seconds, then callers fail closed. An unknown ``kid``
may force one early re-read, at most once per ``UNKNOWN_KID_REFRESH_INTERVAL``, so a flood of
made-up ``kid`` values cannot hammer Secrets Manager. After a failed read the store is not asked
again for ``FETCH_FAILURE_BACKOFF`` seconds: during an outage one caller per interval pays the
retries and timeouts, the others get the last good set (or fail closed) at once.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, NamedTuple

from chalicelib.core import telemetry
from chalicelib.core.clock import Clock
from chalicelib.core.faults import BackendUnavailable

# chalicelib.tokens.key_objects (PyJWT, cryptography: ~50 ms of imports) is imported where keys are
# loaded: chalicelib.web.http imports this module on every cold start, for KeySetError, and most
# routes never load a key.
if TYPE_CHECKING:
    from chalicelib.tokens.key_objects import SigningKey, VerifyingKey

STATES = ("next", "current", "previous")
UNKNOWN_KID_REFRESH_INTERVAL = 30.0
FETCH_FAILURE_BACKOFF = 10.0


class KeySetError(ValueError):
    """A stored key set is malformed (a deployment fault: fail closed)."""


class KeyEntry(NamedTuple):
    kid: str
    alg: str
    state: str
    created: int
    jwk: Mapping[str, object]
    # The public set's stamps (chalicelib.ops.rotation): when verifiers could first see the key,
    # and when it stopped signing. The private set has none; ``dump_key_set`` never writes them.
    published: int | None = None
    demoted: int | None = None


def parse_key_set(raw: str) -> list[KeyEntry]:
    """A key set (private or public) as stored; the one parser for the token API, the authorizer
    and the rotation function. Anything malformed is a ``KeySetError``: no key is ever skipped."""
    try:
        doc: object = json.loads(raw)
        items = doc["keys"] if isinstance(doc, dict) else None
        if not isinstance(items, list):
            raise KeySetError("no key list")
        return [_key_entry(item) for item in items]
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        raise KeySetError("malformed key set") from exc


def _key_entry(item: object) -> KeyEntry:
    if not isinstance(item, dict) or not isinstance(item["jwk"], dict):
        raise KeySetError("a key is not an object")
    jwk: dict[str, object] = dict(item["jwk"])
    state = item["state"]
    if not isinstance(state, str) or state not in STATES:
        raise KeySetError("unknown key state")
    return KeyEntry(
        str(jwk["kid"]),
        str(jwk["alg"]),
        state,
        number(item["created"]),
        jwk,
        stamp(item, "published"),
        stamp(item, "demoted"),
    )


def number(value: object) -> int:
    """An integer member of a stored set (``int()``'s rules); anything else is a ``TypeError``."""
    if isinstance(value, int | float | str):
        return int(value)
    raise TypeError("not a number")


def stamp(item: dict[str, object], name: str) -> int | None:
    """An optional time stamp of a set's entry (``published``, ``demoted``)."""
    value = item.get(name)
    return None if value is None else number(value)


def dump_key_set(entries: list[KeyEntry]) -> str:
    return json.dumps(
        {"keys": [{"state": e.state, "created": e.created, "jwk": e.jwk} for e in entries]},
        sort_keys=True,
    )


def public_entries(entries: list[KeyEntry]) -> list[KeyEntry]:
    """The public half of a private set, in the same states."""
    from chalicelib.tokens.key_objects import load_signing_key

    out = []
    for e in entries:
        public = load_signing_key(e.jwk).verifying_key().public_jwk()
        out.append(KeyEntry(e.kid, e.alg, e.state, e.created, public))
    return out


def new_key_entry(kid: str, state: str, created: int, alg: str = "ES256") -> KeyEntry:
    from chalicelib.tokens.key_objects import generate_private_jwk

    return KeyEntry(kid, alg, state, created, generate_private_jwk(kid, alg))


class CachedSecret:
    """A secret's value, re-read on a bounded interval, kept through outages for a bounded time."""

    def __init__(
        self,
        fetch: Callable[[], str],
        clock: Clock,
        ttl: float,
        stale_max: float,
    ) -> None:
        self._fetch = fetch
        self._clock = clock
        self._ttl = ttl
        self._stale_max = stale_max
        # (value, version), replaced whole: a reader never pairs one read's value with another's
        # version (the version bumps whenever the value changes, so parsed forms can be memoised).
        self._held: tuple[str, int] | None = None
        self._fetched_at = 0.0
        self._last_forced = float("-inf")
        self._failed_at = float("-inf")
        self._lock = threading.Lock()
        self._forced_lock = threading.Lock()

    def get(self) -> str:
        return self.get_versioned()[0]

    def get_versioned(self) -> tuple[str, int]:
        """The value and its version, as one read."""
        now = self._clock.now()
        held = self._held
        if held is not None and now - self._fetched_at < self._ttl:
            return held
        return self._refresh(now)

    def force_refresh(self) -> bool:
        """Re-read now unless that was done within the rate limit. True if a read happened."""
        now = self._clock.now()
        with self._forced_lock:
            if now - self._last_forced < UNKNOWN_KID_REFRESH_INTERVAL:
                return False
            self._last_forced = now
        try:
            self._refresh(now)
        except BackendUnavailable:
            return False
        return True

    def _refresh(self, now: float) -> tuple[str, int]:
        with self._lock:
            if now - self._failed_at < FETCH_FAILURE_BACKOFF:
                return self._stale(now, BackendUnavailable("secretsmanager", "backing off"))
            try:
                value = self._fetch()
            except BackendUnavailable as exc:
                self._failed_at = now
                return self._stale(now, exc)
            held = self._held
            if held is None or value != held[0]:
                held = self._held = (value, held[1] + 1 if held else 1)
            self._fetched_at = now
            self._failed_at = float("-inf")
            return held

    def _stale(self, now: float, fault: BackendUnavailable) -> tuple[str, int]:
        """The last good value while it is younger than ``stale_max``; past that, fail closed."""
        held = self._held
        if held is not None and now - self._fetched_at < self._stale_max:
            telemetry.count("KeyCacheStaleFallback")
            return held
        raise fault


class ParsedSecret[T]:
    """A cached secret's parsed form, built once per version of the secret.

    What every key ring shares: the value comes from the ``CachedSecret`` (with its TTL, stale-max
    and back-off); ``parse`` runs only when that value changed. A version that does not parse
    raises from ``parse`` (the caller fails closed) and is not remembered, so every read tries it
    again until a good version replaces it; the last good form is never served for a bad one.
    """

    def __init__(self, secret: CachedSecret, parse: Callable[[str], T]) -> None:
        self._secret = secret
        self._parse = parse
        self._loaded: tuple[int, T] | None = None

    def get(self) -> T:
        raw, version = self._secret.get_versioned()
        loaded = self._loaded
        if loaded is not None and loaded[0] == version:
            return loaded[1]
        parsed = self._parse(raw)
        self._loaded = (version, parsed)
        return parsed

    def find[R](self, lookup: Callable[[T], R | None]) -> R | None:
        """``lookup`` in the parsed form; if it finds nothing, one rate-limited re-read of the
        secret (another container may already use an entry this one has not seen) and again."""
        found = lookup(self.get())
        if found is None and self._secret.force_refresh():
            found = lookup(self.get())
        return found


class _SigningKeys:
    # A plain class, not a NamedTuple: this module is on every cold start, and a NamedTuple costs
    # a few hundred microseconds to define.
    __slots__ = ("current", "jwks", "verifiers")

    def __init__(
        self,
        current: SigningKey,
        verifiers: dict[str, VerifyingKey],
        jwks: list[dict[str, str]],
    ) -> None:
        self.current = current
        self.verifiers = verifiers
        self.jwks = jwks


def _signing_keys(raw: str) -> _SigningKeys:
    entries = parse_key_set(raw)
    current = [e for e in entries if e.state == "current"]
    if len(current) != 1:
        raise KeySetError("key set needs exactly one current key")
    from chalicelib.tokens.key_objects import load_signing_key

    signers = {e.kid: load_signing_key(e.jwk) for e in entries}
    verifiers = {kid: s.verifying_key() for kid, s in signers.items()}
    jwks = [verifiers[e.kid].public_jwk() for e in entries]
    return _SigningKeys(signers[current[0].kid], verifiers, jwks)


class SigningKeyRing:
    """The token API's view: the signing key and the verifying keys, loaded once per version."""

    def __init__(self, secret: CachedSecret) -> None:
        self._keys = ParsedSecret(secret, _signing_keys)

    def current(self) -> SigningKey:
        return self._keys.get().current

    def verifier(self, kid: str) -> VerifyingKey | None:
        return self._keys.get().verifiers.get(kid)

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        return {"keys": list(self._keys.get().jwks)}


class _VerifyingKeys:
    __slots__ = ("jwks", "verifiers")

    def __init__(self, verifiers: dict[str, VerifyingKey], jwks: list[dict[str, str]]) -> None:
        self.verifiers = verifiers
        self.jwks = jwks


def _verifying_keys(raw: str) -> _VerifyingKeys:
    entries = parse_key_set(raw)
    from chalicelib.tokens.key_objects import InvalidKey, load_verifying_key

    try:
        verifiers = {e.kid: load_verifying_key(e.jwk) for e in entries}
    except InvalidKey as exc:
        # A stored key that cannot be loaded is a deployment fault: fail closed (503).
        raise KeySetError("public key set holds an unusable key") from exc
    return _VerifyingKeys(verifiers, [verifiers[e.kid].public_jwk() for e in entries])


class VerifyingKeyRing:
    """The authorizer's view: public keys only, with a rate-limited re-read for unknown kids."""

    def __init__(self, secret: CachedSecret) -> None:
        self._keys = ParsedSecret(secret, _verifying_keys)

    def verifier(self, kid: str) -> VerifyingKey | None:
        return self._keys.find(lambda keys: keys.verifiers.get(kid))

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """The published set (next, current, previous): what the JWKS endpoint serves, so
        outside verifiers and the authorizer trust the same keys from the same instant."""
        return {"keys": list(self._keys.get().jwks)}


def new_kid(now: int) -> str:
    import secrets

    return time_kid_prefix(now) + secrets.token_hex(4)


def time_kid_prefix(now: int) -> str:
    import time

    return time.strftime("%Y%m%d", time.gmtime(now)) + "-"


def bootstrap_key_sets(now: int, alg: str = "ES256") -> tuple[str, str]:
    """A first key set: one ``current`` key and one ``next`` key already published, so the first
    rotation can promote a key every cache has seen. Returns (private set, public set) JSON."""
    entries = [
        new_key_entry(new_kid(now), "current", now, alg),
        new_key_entry(new_kid(now), "next", now, alg),
    ]
    return dump_key_set(entries), dump_key_set(public_entries(entries))
