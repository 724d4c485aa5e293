"""The key rings (signing keys, public keys, peppers) share one loader
(chalicelib.tokens.keys.ParsedSecret): parse once per version of the cached secret, fail closed on
a version that does not parse, and never serve the last good set in place of a bad one.
"""

from __future__ import annotations

import pytest

from chalicelib.core.clock import FakeClock
from chalicelib.tokens.keys import (
    CachedSecret,
    KeySetError,
    SigningKeyRing,
    VerifyingKeyRing,
    bootstrap_key_sets,
)
from chalicelib.tokens.peppers import PepperRing, PepperSetError, bootstrap_pepper_set

TTL = 60.0


class Store:
    """The secret as Secrets Manager would return it, counting the reads."""

    def __init__(self, value: str) -> None:
        self.value = value
        self.reads = 0

    def fetch(self) -> str:
        self.reads += 1
        return self.value


def cached(store: Store, clock: FakeClock) -> CachedSecret:
    return CachedSecret(store.fetch, clock, ttl=TTL, stale_max=600.0)


def test_a_bad_version_fails_closed_on_every_read_until_a_good_one_replaces_it() -> None:
    clock = FakeClock()
    private, _ = bootstrap_key_sets(int(clock.now()))
    store = Store(private)
    ring = SigningKeyRing(cached(store, clock))
    first = ring.current()
    store.value = '{"keys": [{"state": "current"}]}'
    clock.advance(TTL)
    for _ in range(2):  # not remembered: the last good key is never served for a bad version
        with pytest.raises(KeySetError):
            ring.current()
    store.value, _ = bootstrap_key_sets(int(clock.now()))
    clock.advance(TTL)
    assert ring.current().kid != first.kid


def test_each_version_is_parsed_once_and_reread_only_after_the_ttl() -> None:
    clock = FakeClock()
    _, public = bootstrap_key_sets(int(clock.now()))
    store = Store(public)
    ring = VerifyingKeyRing(cached(store, clock))
    keys = ring.jwks()["keys"]
    kid = str(keys[0]["kid"])
    found = ring.verifier(kid)
    assert found is not None
    assert ring.verifier(kid) is found  # the same key object: no second parse
    clock.advance(TTL)
    assert ring.verifier(kid) is found  # re-read, same value: still not parsed again
    assert store.reads == 2


def test_an_unknown_id_forces_one_rate_limited_reread() -> None:
    clock = FakeClock()
    store = Store(bootstrap_pepper_set(int(clock.now())))
    ring = PepperRing(cached(store, clock))
    old = ring.current()
    store.value = bootstrap_pepper_set(int(clock.now()))  # another container rotated
    new_id = PepperRing(cached(Store(store.value), clock)).current().id
    assert ring.get(new_id) is not None  # found by the forced re-read, long before the TTL
    assert ring.get("0badc0de") is None  # unknown, and the re-read is rate limited
    assert store.reads == 2
    assert ring.get(old.id) is None  # the new set replaced the old one


def test_a_pepper_set_without_a_current_pepper_fails_closed() -> None:
    clock = FakeClock()
    store = Store(bootstrap_pepper_set(int(clock.now())).replace('"current"', '"previous"'))
    with pytest.raises(PepperSetError):
        PepperRing(cached(store, clock)).current()
