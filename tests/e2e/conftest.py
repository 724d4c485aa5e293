"""End-to-end fixtures: the real local stack, driven over HTTP and through the admin command.

``local_stack`` (session scope) starts ``python -m infra.local_stack`` as a subprocess, exactly what
``make local`` runs: moto's server and ``chalice local --stage local``, on free ports. It gets its
own state file (``TESSERA_LOCAL_STATE``), so a developer's running ``make local`` is left alone.
The fixture waits (bounded) until the metadata URL answers, showing the stack's output if it does
not, and stops the stack (SIGTERM, which cleans up like Ctrl-C) at the end of the session.

It yields a ``LocalStack``:

- ``base_url``: the API, which is also the issuer (``iss``), e.g. ``http://127.0.0.1:41234``;
  ``token_url``, ``jwks_url``, ``metadata_url`` are derived from it;
- ``audience``: the ``aud`` of access tokens (the local stage's ``TESSERA_AUDIENCE``);
- ``orders_url``: examples/orders, another team's API behind Tessera's authorizer (its rules are
  not registered by the stack: tests register them with the admin command);
- ``emulator_url``: the moto server, for direct AWS calls
  (``boto3.Session(...).client("dynamodb", endpoint_url=stack.emulator_url)``, or ``stack.env``);
- ``env``: environment for subprocesses that talk to this stack (the admin command, scripts);
- ``admin(*args, input=None)``: runs ``python -m chalicelib.admin --stage local *args`` against
  this stack and returns the ``CompletedProcess`` (text, stdout/stderr captured; never raises);
  ``admin_json(*args, input=None)`` adds ``--json``, asserts success and returns the parsed output;
- ``unique(prefix)``: a fresh name: the stack is shared by the whole session, so tests create
  their own clients and users and never assume an empty registry.

Mark end-to-end test modules with ``pytestmark = pytest.mark.e2e``. Requests over plain HTTP to
127.0.0.1 need ``OAUTHLIB_INSECURE_TRANSPORT=1`` when using requests-oauthlib (set it with
``monkeypatch``).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
STARTUP_LIMIT_S = 90.0  # a cold interpreter on a busy 2-core CI machine; normally ~5 s
ADMIN_LIMIT_S = 120.0
_counter = itertools.count(1)


def _free_ports(n: int) -> list[int]:
    """Ports the OS reports free (held open together, so they differ)."""
    socks = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _local_audience() -> str:
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    audience: str = config["stages"]["local"]["environment_variables"]["TESSERA_AUDIENCE"]
    return audience


@dataclass
class LocalStack:
    base_url: str
    emulator_url: str
    audience: str
    env: dict[str, str]
    log_path: Path
    orders_url: str = ""
    _run_id: str = field(default_factory=lambda: os.urandom(3).hex())

    @property
    def token_url(self) -> str:
        return self.base_url + "/oauth2/token"

    @property
    def jwks_url(self) -> str:
        return self.base_url + "/.well-known/jwks.json"

    @property
    def metadata_url(self) -> str:
        return self.base_url + "/.well-known/oauth-authorization-server"

    def admin(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "chalicelib.ops.admin", "--stage", "local", *args],
            input=input,
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=ADMIN_LIMIT_S,
            check=False,
        )

    def admin_json(self, *args: str, input: str | None = None) -> Any:
        done = self.admin(*args, "--json", input=input)
        assert done.returncode == 0, f"admin {' '.join(args)} failed: {done.stderr}"
        return json.loads(done.stdout)

    def unique(self, prefix: str) -> str:
        return f"{prefix}-{self._run_id}-{next(_counter)}"

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")


def _wait_until_serving(proc: subprocess.Popen[bytes], stack: LocalStack) -> None:
    deadline = time.monotonic() + STARTUP_LIMIT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(
                f"the local stack exited with status {proc.returncode}:\n{stack.output()}",
                pytrace=False,
            )
        if _answers(stack.metadata_url) == 200 and _answers(stack.orders_url + "/orders") == 401:
            return
        time.sleep(0.1)
    pytest.fail(
        f"the local stack did not answer within {STARTUP_LIMIT_S:.0f} s:\n{stack.output()}",
        pytrace=False,
    )


def _answers(url: str) -> int | None:
    """The HTTP status a URL answers with, or None if nothing answers yet."""
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, OSError):
        return None


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)  # cleans up like Ctrl-C
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=15)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist (``make test`` runs ``-n logical --dist loadgroup``) every end-to-end test
    goes to one worker, so the run starts one local stack instead of one per worker."""
    if not config.pluginmanager.hasplugin("xdist"):
        return
    for item in items:
        uses_stack = "local_stack" in getattr(item, "fixturenames", ())
        if uses_stack or item.get_closest_marker("e2e") is not None:
            item.add_marker(pytest.mark.xdist_group("e2e"))


@contextlib.contextmanager
def running_stack(workdir: Path, **extra_env: str) -> Iterator[LocalStack]:
    """Start ``python -m infra.local_stack`` on free ports (with ``extra_env`` on top of this
    process's environment), wait until it serves, and stop it on exit."""
    api_port, emulator_port, orders_port = _free_ports(3)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("AWS_ENDPOINT_URL") and k not in {"AWS_PROFILE", "AWS_SESSION_TOKEN"}
    }
    env.update(
        {
            "API_PORT": str(api_port),
            "EMULATOR_PORT": str(emulator_port),
            "ORDERS_PORT": str(orders_port),
            "TESSERA_LOCAL_STATE": str(workdir / "local-stack.json"),
            "PYTHONUNBUFFERED": "1",
            **extra_env,
        }
    )
    stack = LocalStack(
        base_url=f"http://127.0.0.1:{api_port}",
        emulator_url=f"http://127.0.0.1:{emulator_port}",
        orders_url=f"http://127.0.0.1:{orders_port}",
        audience=_local_audience(),
        env=env,
        log_path=workdir / "output.log",
    )
    with stack.log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "infra.local_stack"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_until_serving(proc, stack)
        yield stack
    finally:
        _stop(proc)


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    with running_stack(tmp_path_factory.mktemp("local-stack")) as stack:
        yield stack
