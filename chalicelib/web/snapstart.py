"""Lambda init and SnapStart: what a function does before its first event, and around a snapshot.

Where the stage's ``snapstart`` setting is on (infra/package.py), Lambda runs a function's init
once, when a version is published, snapshots the process, and starts later containers from that
snapshot. The entry modules (``app.py``, ``chalicelib.authorizer_lambda``) call ``prepare`` at
import with the modules their events load lazily: it registers the hooks with
``snapshot_restore_py``, which Lambda's Python runtime ships (elsewhere it is absent and nothing is
registered; without SnapStart the runtime never calls them), and in a container started without a
snapshot does the same work in init, clients included.

- Before the snapshot: the configuration read, those modules imported and botocore's service
  models loaded (``chalicelib.store.aws.preload``). No AWS call, no client, no credentials, no key,
  pepper or client record: the snapshot holds code and configuration only.
- After each restore, before the first event: ``random`` reseeded (botocore's retry jitter draws
  from it; every container restored from one snapshot would draw the same sequence), the built
  services dropped with their caches (key sets, rules, client records, whose fetch times would be
  the snapshot's), this container's own AWS clients (credentials resolved and connections opened
  here; a client from before the snapshot is closed), and the next invocation reported as the
  container's cold start. Tokens, ids and peppers come from ``secrets`` (``os.urandom``), which a
  restore does not replay.
"""

from __future__ import annotations

import importlib
import os
import random
import threading

from chalicelib.core import config, telemetry
from chalicelib.store import aws
from chalicelib.web import services

_lock = threading.Lock()
_preloads: set[tuple[str, ...]] = set()  # module lists already registered
_restore_registered = [False]


# AWS_LAMBDA_INITIALIZATION_TYPE of a container that starts without a snapshot.
_PLAIN_INITS = frozenset({"on-demand", "provisioned-concurrency"})


def prepare(modules: tuple[str, ...]) -> None:
    """An entry module's init, at its import. Under SnapStart the hooks do the work around the
    snapshot. A container started without one (``on-demand``, or provisioned concurrency) does it
    all now: configuration, ``modules``, and its AWS clients (no call yet), as Lambda's guidance
    has it (init runs before the first request is waiting, at the full CPU Lambda gives init).
    Elsewhere (tests, ``chalice local``) nothing: they build lazily, from their own settings."""
    register(modules)
    if os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE") in _PLAIN_INITS:
        before_snapshot(modules)
        aws.build_clients()


def register(modules: tuple[str, ...]) -> bool:
    """Register the hooks for a function whose events import ``modules``; False where the
    runtime's ``snapshot_restore_py`` is absent (tests, ``chalice local``, the bench)."""
    try:
        import snapshot_restore_py
    except ImportError:
        return False
    with _lock:
        if modules not in _preloads:
            _preloads.add(modules)
            snapshot_restore_py.register_before_snapshot(before_snapshot, modules)
        if not _restore_registered[0]:
            _restore_registered[0] = True
            snapshot_restore_py.register_after_restore(after_restore)
    return True


def before_snapshot(modules: tuple[str, ...]) -> None:
    """Init as far as it may go without AWS: what every restored container would otherwise load
    on its first event. Raises on a bad configuration, which fails the version's publication
    instead of every restore."""
    config.settings()
    for name in modules:
        importlib.import_module(name)
    aws.preload()


def after_restore() -> None:
    """Make this container its own: nothing that must not be shared between containers restored
    from one snapshot is used again. No call to an AWS service: the first event reads what it
    needs."""
    random.seed()  # from os.urandom
    services.forget_built()
    aws.after_restore()
    telemetry.restored()
