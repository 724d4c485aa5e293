"""Rotation of the signing keys (RFC 7517 key sets) and the refresh-token pepper.

Signing keys move through four states::

    next      published (verifiers know it), not signing yet
    current   signs new access tokens
    previous  no longer signs, still published until its last token has expired
    (retired) removed from the set

One rotation run (``plan_rotation``, a pure function) retires the ``previous`` keys past their
bound, promotes ``next`` to ``current`` (and ``current`` to ``previous``) if ``next`` has been
published for at least ``Timing.publish_delay``, and makes sure a fresh ``next`` exists. If ``next``
is too young the run promotes nothing: it only retires and tops up, and says when ``next`` will be
ready (a deferred run is safe to repeat any time).

The pepper (``chalicelib.peppers``: states ``current|previous`` only) rotates directly: a new
current pepper, the old one previous until every refresh token hashed with it has expired. That is
safe without a ``next`` state because every refresh token names its pepper and a container that
meets an unknown pepper id re-reads the set (``PepperRing.get``), as the authorizer does for kids.

Mapping onto Secrets Manager's rotation (the four steps; every step is idempotent and can resume
after a failure half-way, because Secrets Manager retries a failed step with the same token):

- ``createSecret``: the new set is stored as a new version of the secret labelled ``AWSPENDING``
  (``VersionId`` = the ``ClientRequestToken``). Skipped if that version already exists.
- ``setSecret``: signing keys only: the public half of the pending set is written to the public-key
  secret, which the authorizer and the JWKS endpoint read. New keys get a ``published`` stamp there.
  Keys of the current set stay in it, so whatever signs before ``finishSecret`` still verifies.
- ``testSecret``: every pending key loads, signs and verifies with the *published* public key, and
  the key about to sign was published at least ``publish_delay`` ago (or nothing signed before);
  a pending pepper set must load in ``chalicelib.peppers``.
- ``finishSecret``: ``AWSCURRENT`` moves to the pending version (``AWSPREVIOUS`` follows by itself),
  then the keys that stopped signing get a ``demoted`` stamp in the public set.

The staging labels carry *whole sets*, not single keys: a verifier needs next, current and previous
at the same time, and ``AWSPREVIOUS`` is a single older version, not a list of live keys. So the key
states live inside the secret, and the labels only stage one rotation run. The ``published`` and
``demoted`` stamps live in the public set because they mark the instants verifiers could see a
change, which Secrets Manager does not record (a stalled run may finish long after it started).
The pepper has no second secret: its ``demoted`` stamp is written into the pending version at
createSecret, so finishSecret refuses a pepper run older than ``publish_delay`` (the old pepper
would be retired early by the stall); ``pepper rotate`` abandons it and starts afresh.
"""

from __future__ import annotations

import base64
import json
import logging
import secrets
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from chalicelib import audit, aws, key_objects
from chalicelib.clock import Clock
from chalicelib.keys import STATES, KeySetError, new_kid

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager.client import SecretsManagerClient

log = logging.getLogger("tessera.rotation")

STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")
PENDING, CURRENT = "AWSPENDING", "AWSCURRENT"
_STAGING = "TESSERA_STAGING"  # a revocation's new version, for the instant before it is current
_PROBE = {"probe": "rotation testSecret"}
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
    def for_keys(cls, s: Any) -> Timing:
        bound = cls.cache_bound(s.key_cache_ttl, s.key_stale_max)
        return cls(
            publish_delay=bound + s.key_cache_ttl,
            retire_after=bound + s.access_token_ttl + s.clock_leeway,
        )

    @classmethod
    def for_peppers(cls, s: Any) -> Timing:
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
    body: dict[str, Any] = field(compare=False)
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


# --- the two kinds of secret --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Kind:
    """What differs between the signing-key set and the pepper set."""

    name: str
    parse: Callable[[str], list[Entry]]
    dump: Callable[[list[Entry]], str]
    make: Callable[[str, int], Entry]
    check: Callable[[list[Entry], dict[str, Entry]], None]
    timing: Timing
    dump_public: Callable[[list[Entry]], str] | None = None  # keys only
    staged: bool = True  # uses the ``next`` state (keys); the pepper does not


def _stamps(item: dict[str, Any]) -> tuple[int | None, int | None]:
    pub, dem = item.get("published"), item.get("demoted")
    return (int(pub) if pub is not None else None, int(dem) if dem is not None else None)


def parse_keys(raw: str) -> list[Entry]:
    try:
        out = []
        for item in json.loads(raw)["keys"]:
            if item["state"] not in STATES:
                raise KeySetError("unknown key state")
            jwk = dict(item["jwk"])
            published, demoted = _stamps(item)
            out.append(
                Entry(str(jwk["kid"]), item["state"], int(item["created"]), jwk, published, demoted)
            )
    except (KeyError, TypeError, ValueError) as exc:
        raise KeySetError("malformed key set") from exc
    return out


def dump_private_keys(entries: list[Entry]) -> str:
    """Same shape as ``chalicelib.keys.dump_key_set`` (stamps live in the public set only)."""
    return json.dumps(
        {"keys": [{"state": e.state, "created": e.created, "jwk": e.body} for e in entries]},
        sort_keys=True,
    )


def dump_public_keys(entries: list[Entry]) -> str:
    items = []
    for e in entries:
        jwk = e.body if "d" not in e.body else _public_jwk(e.body)
        item: dict[str, Any] = {"state": e.state, "created": e.created, "jwk": jwk}
        if e.published is not None:
            item["published"] = e.published
        if e.demoted is not None:
            item["demoted"] = e.demoted
        items.append(item)
    return json.dumps({"keys": items}, sort_keys=True)


def _public_jwk(private_jwk: dict[str, Any]) -> dict[str, str]:
    return key_objects.load_signing_key(private_jwk).verifying_key().public_jwk()


def _make_key(alg: str) -> Callable[[str, int], Entry]:
    def make(state: str, now: int) -> Entry:
        kid = new_kid(now)
        return Entry(kid, state, now, key_objects.generate_private_jwk(kid, alg))

    return make


def _check_keys(pending: list[Entry], published: dict[str, Entry]) -> None:
    """Each pending key loads, signs, and verifies with the public key verifiers were given."""
    for e in pending:
        try:
            signer = key_objects.load_signing_key(e.body)
            pub = published.get(e.id)
            if pub is None:
                raise RotationError(f"key {e.id} is not in the public set")
            verifier = key_objects.load_verifying_key(pub.body)
            if not verifier.verifies(signer.sign(_PROBE, "JWT")):
                raise RotationError(f"public key {e.id} does not match its private key")
        except key_objects.InvalidKey as exc:
            raise RotationError(f"key {e.id} does not load") from exc


def parse_peppers(raw: str) -> list[Entry]:
    from chalicelib.peppers import STATES as PEPPER_STATES

    try:
        out = []
        for item in json.loads(raw)["peppers"]:
            if item["state"] not in PEPPER_STATES:
                raise KeySetError("unknown pepper state")
            published, demoted = _stamps(item)
            body = {"secret": str(item["secret"])}
            out.append(
                Entry(
                    str(item["id"]), item["state"], int(item["created"]), body, published, demoted
                )
            )
    except (KeyError, TypeError, ValueError) as exc:
        raise KeySetError("malformed pepper set") from exc
    return out


def dump_peppers(entries: list[Entry]) -> str:
    items = []
    for e in entries:
        item: dict[str, Any] = {
            "id": e.id,
            "secret": e.body["secret"],
            "state": e.state,
            "created": e.created,
        }
        if e.published is not None:
            item["published"] = e.published
        if e.demoted is not None:
            item["demoted"] = e.demoted
        items.append(item)
    return json.dumps({"peppers": items}, sort_keys=True)


def _make_pepper(state: str, now: int) -> Entry:
    from chalicelib.peppers import PEPPER_BYTES

    secret = base64.urlsafe_b64encode(secrets.token_bytes(PEPPER_BYTES)).rstrip(b"=")
    return Entry(secrets.token_hex(4), state, now, {"secret": secret.decode("ascii")})


def _check_peppers(pending: list[Entry], published: dict[str, Entry]) -> None:
    """The refresh-token code (chalicelib.peppers) accepts the set exactly as written."""
    from chalicelib.peppers import parse_pepper_set

    try:
        parse_pepper_set(dump_peppers(pending))
    except KeySetError as exc:
        raise RotationError("the pending pepper set would not load") from exc


def key_kind(s: Any, alg: str = "ES256") -> Kind:
    return Kind(
        name="signing keys",
        parse=parse_keys,
        dump=dump_private_keys,
        make=_make_key(alg),
        check=_check_keys,
        timing=Timing.for_keys(s),
        dump_public=dump_public_keys,
    )


def pepper_kind(s: Any) -> Kind:
    return Kind(
        name="pepper",
        parse=parse_peppers,
        dump=dump_peppers,
        make=_make_pepper,
        check=_check_peppers,
        timing=Timing.for_peppers(s),
        staged=False,
    )


# --- Secrets Manager orchestration --------------------------------------------------------


class Rotator:
    """The four rotation steps for one secret (and its public twin, for signing keys)."""

    def __init__(
        self,
        sm: SecretsManagerClient,
        kind: Kind,
        secret_id: str,
        clock: Clock,
        public_secret_id: str | None = None,
    ) -> None:
        if (public_secret_id is None) != (kind.dump_public is None):
            raise ValueError("a public secret goes with the signing-key kind only")
        self._sm = sm
        self.kind = kind
        self.secret_id = secret_id
        self.public_secret_id = public_secret_id
        self._clock = clock

    def _now(self) -> int:
        return int(self._clock.now())

    # reads and writes ------------------------------------------------------------------------

    def _read(self, secret_id: str, *, stage: str = CURRENT, version: str | None = None) -> str:
        kwargs: dict[str, str] = {"SecretId": secret_id, "VersionStage": stage}
        if version is not None:
            kwargs["VersionId"] = version
        with aws.translate_faults("secretsmanager"):
            return str(self._sm.get_secret_value(**kwargs)["SecretString"])

    def _pending(self, token: str) -> str | None:
        with aws.translate_faults("secretsmanager"):
            try:
                resp = self._sm.get_secret_value(
                    SecretId=self.secret_id, VersionId=token, VersionStage=PENDING
                )
            except self._sm.exceptions.ResourceNotFoundException:
                return None
        return str(resp["SecretString"])

    def _require_pending(self, token: str) -> list[Entry]:
        raw = self._pending(token)
        if raw is None:
            raise RotationError("no pending version for this rotation token")
        return self.kind.parse(raw)

    def _ledger(self) -> list[Entry]:
        """The stamps verifiers' view carries: the public set for keys, the set itself otherwise."""
        if self.public_secret_id is not None:
            return parse_keys(self._read(self.public_secret_id))
        return self.kind.parse(self._read(self.secret_id))

    def _write_public(self, entries: list[Entry]) -> bool:
        assert self.public_secret_id is not None
        assert self.kind.dump_public is not None
        new = self.kind.dump_public(entries)
        if new == self._read(self.public_secret_id):
            return False
        with aws.translate_faults("secretsmanager"):
            self._sm.put_secret_value(SecretId=self.public_secret_id, SecretString=new)
        return True

    def versions(self) -> dict[str, list[str]]:
        with aws.translate_faults("secretsmanager"):
            meta = self._sm.describe_secret(SecretId=self.secret_id)
        return {k: list(v) for k, v in meta.get("VersionIdsToStages", {}).items()}

    def current_entries(self) -> list[Entry]:
        entries = self.kind.parse(self._read(self.secret_id))
        if self.public_secret_id is not None:
            entries = with_ledger(entries, self._ledger())
        return entries

    # the four steps ----------------------------------------------------------------------------

    def create_secret(self, token: str) -> Plan | None:
        """Store the next set as the AWSPENDING version ``token`` (nothing if it exists)."""
        if self._pending(token) is not None:
            return None
        plan = plan_rotation(
            self.current_entries(),
            self._now(),
            self.kind.timing,
            self.kind.make,
            staged=self.kind.staged,
        )
        with aws.translate_faults("secretsmanager"):
            self._sm.put_secret_value(
                SecretId=self.secret_id,
                ClientRequestToken=token,
                SecretString=self.kind.dump(plan.entries),
                VersionStages=[PENDING],
            )
        log.info(
            "rotation planned",
            extra={
                "secret": self.kind.name,
                "promoted": plan.promoted,
                "retired": list(plan.retired),
                "added": list(plan.added),
                "ready_at": plan.ready_at,
            },
        )
        return plan

    def set_secret(self, token: str) -> None:
        """Publish the pending set's public half where verifiers read it (signing keys only)."""
        pending = self._require_pending(token)
        if self.public_secret_id is None:
            return
        self._write_public(publish(pending, self._ledger(), self._now()))

    def test_secret(self, token: str) -> None:
        """The pending set is well formed, matches what is published, and signs only with an
        entry verifiers have known for ``publish_delay``."""
        pending = self._require_pending(token)
        if not pending:
            raise RotationError("pending set is empty")
        _check_shape(pending)
        if self.public_secret_id is not None:
            ledger = {e.id: e for e in parse_keys(self._read(self.public_secret_id))}
        else:
            ledger = {e.id: e for e in pending}
        self.kind.check(pending, ledger)
        in_use = [e for e in self.kind.parse(self._read(self.secret_id)) if e.state == "current"]
        new = next(e for e in pending if e.state == "current")
        if not self.kind.staged or not in_use or in_use[0].id == new.id:
            return  # unstaged (readers re-read on an unknown id), first set, or no promotion
        seen = ledger.get(new.id)
        published = seen.published_at() if seen is not None else NOT_PUBLISHED
        if self._now() < published + self.kind.timing.publish_delay:
            raise RotationError(f"{new.id} would be used before verifiers are sure to know it")

    def finish_secret(self, token: str) -> None:
        """Make the pending version current, then stamp when the demoted entries stopped."""
        versions = self.versions()
        current = next((v for v, stages in versions.items() if CURRENT in stages), None)
        if current != token:
            if PENDING not in versions.get(token, []):
                raise RotationError("rotation token is not the pending version")
            if not self.kind.staged:
                self._refuse_stale_run(self._require_pending(token))
            with aws.translate_faults("secretsmanager"):
                kwargs: dict[str, str] = {
                    "SecretId": self.secret_id,
                    "VersionStage": CURRENT,
                    "MoveToVersionId": token,
                }
                if current is not None:
                    kwargs["RemoveFromVersionId"] = current
                self._sm.update_secret_version_stage(**kwargs)
        if PENDING in versions.get(token, []):
            # Secrets Manager drops the label after a scheduled rotation; on-demand runs (admin)
            # drop it here, so a leftover AWSPENDING always means "a run did not finish".
            with aws.translate_faults("secretsmanager"):
                self._sm.update_secret_version_stage(
                    SecretId=self.secret_id, VersionStage=PENDING, RemoveFromVersionId=token
                )
        if self.public_secret_id is not None:
            entries = with_ledger(self.kind.parse(self._read(self.secret_id)), self._ledger())
            self._write_public(stamp_demoted(entries, self._now()))

    def _refuse_stale_run(self, pending: list[Entry]) -> None:
        """An unstaged run stamps its demotion at createSecret: finishing it much later would
        shorten the old entry's life by the stall, so refuse (a fresh run is always correct)."""
        started = max(e.created for e in pending)
        if self._now() > started + self.kind.timing.publish_delay:
            raise RotationError(
                f"{self.kind.name} rotation started too long ago: start a fresh one "
                "(admin: pepper rotate; Secrets Manager: cancel and rotate again)"
            )

    def step(self, step: str, token: str) -> None:
        if step == "createSecret":
            self.create_secret(token)
        elif step == "setSecret":
            self.set_secret(token)
        elif step == "testSecret":
            self.test_secret(token)
        elif step == "finishSecret":
            self.finish_secret(token)
        else:
            raise RotationError(f"unknown rotation step {step!r}")

    # on demand (admin) ---------------------------------------------------------------------------

    def cancel_pending(self) -> list[str]:
        """Drop AWSPENDING from a version that never became current (an unfinished run)."""
        dropped = []
        for version, stages in self.versions().items():
            if PENDING in stages and CURRENT not in stages:
                with aws.translate_faults("secretsmanager"):
                    self._sm.update_secret_version_stage(
                        SecretId=self.secret_id, VersionStage=PENDING, RemoveFromVersionId=version
                    )
                dropped.append(version)
        return dropped

    def rotate_now(self, token: str | None = None) -> Plan | None:
        """The four steps in order with a fresh token, as Secrets Manager would run them.

        An unfinished earlier run is abandoned rather than resumed: a fresh plan from the current
        set is always correct, and its stamps start now.
        """
        self.cancel_pending()
        token = token or str(uuid.uuid4())
        plan = self.create_secret(token)
        for name in STEPS[1:]:
            self.step(name, token)
        return plan

    def revoke(self, entry_id: str) -> list[Entry]:
        """Remove an entry from the public and private sets at once (public first)."""
        self.cancel_pending()  # a pending set made before the revocation would bring it back
        entries = self.current_entries()
        new = revoke_entry(entries, entry_id, self._now(), self.kind.make, staged=self.kind.staged)
        if self.public_secret_id is not None:
            self._write_public(publish(new, self._ledger(), self._now()))
        self._replace_current(self.kind.dump(new))
        return new

    def _replace_current(self, value: str) -> None:
        """A new AWSCURRENT version, moved there explicitly like finishSecret does.

        A plain ``put_secret_value`` would do in AWS, but moto (the local stack and the tests)
        loses track of AWSCURRENT after a label move and would leave two versions labelled current.
        """
        token = str(uuid.uuid4())
        current = next((v for v, st in self.versions().items() if CURRENT in st), None)
        with aws.translate_faults("secretsmanager"):
            self._sm.put_secret_value(
                SecretId=self.secret_id,
                ClientRequestToken=token,
                SecretString=value,
                VersionStages=[_STAGING],
            )
            kwargs = {"SecretId": self.secret_id, "VersionStage": CURRENT, "MoveToVersionId": token}
            if current is not None:
                kwargs["RemoveFromVersionId"] = current
            self._sm.update_secret_version_stage(**kwargs)
            self._sm.update_secret_version_stage(
                SecretId=self.secret_id, VersionStage=_STAGING, RemoveFromVersionId=token
            )


# --- Lambda entry point -------------------------------------------------------------------


def rotator_for(secret_id: str, sm: SecretsManagerClient, clock: Clock, settings: Any) -> Rotator:
    """The rotator for a secret named in a rotation event (its ARN or name)."""
    with aws.translate_faults("secretsmanager"):
        name = str(sm.describe_secret(SecretId=secret_id)["Name"])
    if name == settings.signing_keys_secret:
        return Rotator(
            sm,
            key_kind(settings, settings.signing_alg),
            secret_id,
            clock,
            public_secret_id=settings.public_keys_secret,
        )
    if settings.pepper_secret and name == settings.pepper_secret:
        return Rotator(sm, pepper_kind(settings), secret_id, clock)
    raise RotationError("this function does not rotate that secret")


def handle_event(
    event: dict[str, Any], sm: SecretsManagerClient, clock: Clock, settings: Any
) -> None:
    """Secrets Manager's rotation event: {SecretId, ClientRequestToken, Step}."""
    try:
        secret_id = str(event["SecretId"])
        token = str(event["ClientRequestToken"])
        step = str(event["Step"])
    except KeyError as exc:
        raise RotationError("not a rotation event") from exc
    if step not in STEPS:
        raise RotationError(f"unknown rotation step {step!r}")
    rotator = rotator_for(secret_id, sm, clock, settings)
    stages = rotator.versions().get(token)
    if step != "finishSecret" and stages is not None and CURRENT in stages:
        log.info("rotation already finished", extra={"secret": rotator.kind.name, "step": step})
        return
    if step != "finishSecret" and stages is not None and PENDING not in stages:
        # A newer run (or a revocation) replaced this one: never resurrect its set.
        raise RotationError("rotation token is not the pending version")
    if stages is None and step != "createSecret":
        raise RotationError("no version for this rotation token")
    log.info("rotation step", extra={"secret": rotator.kind.name, "step": step})
    rotator.step(step, token)
    if step == "finishSecret":
        audit.event("key_rotated", kind=rotator.kind.name, stage=settings.stage)
