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

The pepper (``chalicelib.tokens.peppers``: states ``current|previous`` only) rotates directly: a new
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
  a pending pepper set must load in ``chalicelib.tokens.peppers``.
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

import logging
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING

from chalicelib.core import audit
from chalicelib.core.clock import Clock
from chalicelib.ops.rotation_kinds import Kind, key_kind, parse_keys, pepper_kind
from chalicelib.ops.rotation_plan import (
    NOT_PUBLISHED,
    Entry,
    Plan,
    RotationError,
    _check_shape,
    plan_rotation,
    publish,
    revoke_entry,
    stamp_demoted,
    with_ledger,
)
from chalicelib.store import aws

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager.client import SecretsManagerClient

    from chalicelib.core.config import Settings


log = logging.getLogger("tessera.rotation")

STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")
PENDING, CURRENT = "AWSPENDING", "AWSCURRENT"


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
        """A new AWSCURRENT version (Secrets Manager moves AWSPREVIOUS to the old one)."""
        with aws.translate_faults("secretsmanager"):
            self._sm.put_secret_value(SecretId=self.secret_id, SecretString=value)


# --- Lambda entry point -------------------------------------------------------------------


def rotator_for(
    secret_id: str, sm: SecretsManagerClient, clock: Clock, settings: Settings
) -> Rotator:
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
    event: Mapping[str, object], sm: SecretsManagerClient, clock: Clock, settings: Settings
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
