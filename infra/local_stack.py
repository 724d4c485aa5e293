"""The local stack (``make local``): the emulator and the API in one process, and an attached API.

1. moto's ``ThreadedMotoServer`` on ``127.0.0.1:$EMULATOR_PORT`` (default 5000),
   with two fixes to moto's behaviour (``serialize_emulator``, ``track_current_version``);
2. the resources of ``infra/template.yaml`` created in it (``infra.provision``), so local and AWS
   come from one definition, and their first contents (``infra.seed``);
3. this process's environment pointed at the emulator, with the issuer set to the served address;
4. the state file (``.local-stack.json``, or ``$TESSERA_LOCAL_STATE``) that ``admin --stage local``
   reads to find the emulator;
5. ``chalice local --stage local`` on ``127.0.0.1:$API_PORT`` (default 8000), run in this process;
6. examples/orders, another team's app behind Tessera's authorizer, on ``$ORDERS_PORT`` (default
   8001), in a child process (``infra.local_attached``: two Chalice apps cannot share one
   interpreter, both being ``app``). Its rules are not seeded: register them as its team would
   (the banner shows how); until then the authorizer denies it.

Ctrl-C (or SIGTERM) stops every server and removes the state file. Everything lives in memory:
a restart starts from an empty emulator with new signing keys.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
ORDERS_DIR = ROOT / "examples" / "orders"
ORDERS_LOCAL_API = "orders-local/api"  # the orders API's <api-id>/<stage> in local ARNs
REGION = "us-east-1"
STAGE = "local"
# Credentials for the emulator only; moto accepts any.
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"}
# Settings of a developer's shell that would send our calls elsewhere or mix credentials.
_FOREIGN_AWS_SETTINGS = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_REGION")


class StackError(Exception):
    """A one-line reason the stack cannot start."""


def _port(name: str, default: int) -> int:
    raw = os.environ.get(name, "") or str(default)
    try:
        port = int(raw)
    except ValueError as exc:
        raise StackError(f"{name} must be a port number, got {raw!r}") from exc
    if not 0 < port < 65536:
        raise StackError(f"{name} must be between 1 and 65535, got {port}")
    return port


def _check_free(name: str, port: int) -> None:
    """Fail with one line if the port is taken (moto's server would wait forever instead)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # The servers set SO_REUSEADDR too: a port in TIME_WAIT is free, a listening one is not.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError as exc:
            raise StackError(
                f"port {port} on {HOST} is taken ({exc.strerror}): set {name} to a free port"
            ) from exc


def point_process_at(endpoint: str, issuer: str) -> dict[str, str]:
    """Environment for the app in this process: AWS calls go to the emulator."""
    for name in list(os.environ):
        if name in _FOREIGN_AWS_SETTINGS or name.startswith("AWS_ENDPOINT_URL_"):
            del os.environ[name]
    env = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_DEFAULT_REGION": REGION,
        **FAKE_CREDENTIALS,
        # The local stage in .chalice/config.json leaves the issuer unset: it depends on the port.
        "TESSERA_ISSUER": issuer,
    }
    os.environ.update(env)
    return env


def write_state(path: Path, endpoint: str, api: str, issuer: str) -> None:
    """What ``chalicelib.ops.admin.use_stage`` reads: where the emulator is, and the app's env."""
    state = {"endpoint": endpoint, "region": REGION, "api": api, "env": {"TESSERA_ISSUER": issuer}}
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(state, indent=2) + "\n")
    tmp.replace(path)


def serialize_emulator() -> None:
    """One emulator request at a time, as DynamoDB isolates each request.

    moto applies a ``TransactWriteItems`` item by item without a lock, and cancels by restoring a
    copy of the whole table: two concurrent requests could both pass a condition, or a cancelled
    transaction could erase another's commit, which DynamoDB never allows. Concurrency tests
    (20 parallel refreshes of one token) must see DynamoDB's semantics, so every request to the
    emulator holds one lock. The app's own requests still interleave freely.
    """
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    original = DomainDispatcherApplication.__call__
    if getattr(original, "_tessera_serialized", False):
        return
    lock = threading.Lock()

    def serialized(self: Any, environ: Any, start_response: Any) -> Any:
        with lock:
            return list(original(self, environ, start_response))

    serialized._tessera_serialized = True  # type: ignore[attr-defined]
    DomainDispatcherApplication.__call__ = serialized  # type: ignore[method-assign]


def track_current_version() -> None:
    """Keep moto's record of a secret's current version with the ``AWSCURRENT`` label.

    moto (5.2.5) moves the label in ``UpdateSecretVersionStage`` (the rotation's finishSecret) but
    not its own ``default_version_id``, which a later plain ``PutSecretValue`` (a key revocation)
    demotes to ``AWSPREVIOUS`` instead of the version that holds the label: two versions end up
    labelled ``AWSCURRENT``, and reads by stage return the older one. Secrets Manager always has
    exactly one, so the application code makes the plain call AWS documents, and this patch makes
    the emulator (here and in the functional tests' ``mock_aws``) behave that way.
    """
    from moto.secretsmanager.models import FakeSecret, SecretsManagerBackend

    original = SecretsManagerBackend.update_secret_version_stage
    if getattr(original, "_tessera_tracks_current", False):
        return

    def update(
        self: SecretsManagerBackend,
        secret_id: str,
        version_stage: str,
        remove_from_version_id: str,
        move_to_version_id: str,
    ) -> tuple[str, str]:
        result = original(
            self, secret_id, version_stage, remove_from_version_id, move_to_version_id
        )
        secret = self.secrets[secret_id]
        if version_stage == "AWSCURRENT" and move_to_version_id and isinstance(secret, FakeSecret):
            secret.set_default_version_id(move_to_version_id)
        return result

    update._tessera_tracks_current = True  # type: ignore[attr-defined]
    SecretsManagerBackend.update_secret_version_stage = update  # type: ignore[method-assign]


def _install_gateway() -> None:
    """Local stand-in for API Gateway's gateway responses (RFC 6750 answers), when present."""
    if importlib.util.find_spec("infra.local_gateway") is None:
        return
    importlib.import_module("infra.local_gateway").install()


def _banner(api: str, endpoint: str, orders: str) -> str:
    admin = ".venv/bin/python -m chalicelib.admin --stage local"
    return f"""
Tessera local stack
  API        {api}
  metadata   {api}/.well-known/oauth-authorization-server
  JWKS       {api}/.well-known/jwks.json
  token      {api}/oauth2/token
  orders     {orders}   (examples/orders: another team's API behind the authorizer)
  emulator   {endpoint}   (moto; in memory, gone when this stops)

Next, in another terminal at the project root:
  {admin} client create --name demo \\
       --grant-types client_credentials,password,refresh_token --scope "people:read"
  printf '%s\\n' 'correct horse battery staple' | {admin} user create --username alice
  curl -s -u "$CLIENT_ID:$CLIENT_SECRET" -d grant_type=client_credentials {api}/oauth2/token
  curl -s -u "$CLIENT_ID:$CLIENT_SECRET" -d grant_type=password -d username=alice \\
       --data-urlencode 'password=correct horse battery staple' {api}/oauth2/token
  (then the demo API, refresh, introspection and revocation: README, "Quick start")

Attach the orders API (denied until its team registers its rules):
  {admin} authorizer rules put orders --file examples/orders/rules.json --api {ORDERS_LOCAL_API}

Ctrl-C stops everything.
"""


def tessera_env(stage: str) -> dict[str, str]:
    """Tessera's variables for ``stage``, as ``chalice local`` gives them to Tessera's app."""
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    env = dict(config.get("environment_variables", {}))
    env.update(config["stages"][stage].get("environment_variables", {}))
    return {k: str(v) for k, v in env.items()}


def signing_alg() -> str:
    """The local stage's TESSERA_SIGNING_ALG (this process's environment first, as for the
    app): the algorithm of the seeded keys."""
    from chalicelib.core.config import SIGNING_ALGS

    alg = os.environ.get("TESSERA_SIGNING_ALG") or tessera_env(STAGE).get("TESSERA_SIGNING_ALG")
    alg = (alg or "ES256").upper()
    if alg not in SIGNING_ALGS:
        raise StackError(f"TESSERA_SIGNING_ALG must be one of {', '.join(SIGNING_ALGS)}")
    return alg


def start_attached(project: Path, port: int, api: str) -> subprocess.Popen[bytes]:
    """Another Chalice app behind Tessera's authorizer (infra.local_attached), with this process's
    environment: the emulator, the issuer, the fake credentials."""
    cmd = [sys.executable, "-m", "infra.local_attached", "--project-dir", str(project)]
    cmd += ["--port", str(port), "--api", api]
    return subprocess.Popen(cmd, cwd=ROOT, stdin=subprocess.DEVNULL)  # noqa: S603 - fixed argv


def stop_attached(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def widen_backlog() -> None:
    """Let ``chalice local`` queue a burst of connections.

    It listens with socketserver's backlog of 5: a burst of parallel clients (the concurrency tests
    send 20 refreshes at once) overflows it and the kernel resets connections, which API Gateway
    never does. 128 is the usual listen backlog (werkzeug's, moto's).
    """
    from chalice.local import ThreadedHTTPServer

    ThreadedHTTPServer.request_queue_size = 128


def _serve(api_port: int) -> None:
    """``chalice local`` in this process, so the app sees this process's environment."""
    from chalice.cli import cli

    widen_backlog()

    cli.main(
        args=[
            "--project-dir",
            str(ROOT),
            "local",
            "--stage",
            STAGE,
            "--host",
            HOST,
            "--port",
            str(api_port),
            "--no-autoreload",  # the reloader would start a child without the emulator
        ],
        prog_name="chalice",
        obj={},
        standalone_mode=False,  # exceptions reach us: clean shutdown either way
    )


def run() -> None:
    from chalicelib.core.config import local_state_path

    api_port = _port("API_PORT", 8000)
    emulator_port = _port("EMULATOR_PORT", 5000)
    orders_port = _port("ORDERS_PORT", 8001)
    if len({api_port, emulator_port, orders_port}) != 3:
        raise StackError("API_PORT, EMULATOR_PORT and ORDERS_PORT must differ")
    _check_free("EMULATOR_PORT", emulator_port)
    _check_free("API_PORT", api_port)
    _check_free("ORDERS_PORT", orders_port)

    import boto3
    from moto.server import ThreadedMotoServer

    from infra.provision import provision
    from infra.seed import seed_all

    # moto's werkzeug logs every emulator request; chalice local's own request log is enough.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    endpoint = f"http://{HOST}:{emulator_port}"
    api = f"http://{HOST}:{api_port}"
    state_file = local_state_path(ROOT / ".local-stack.json")
    serialize_emulator()
    track_current_version()
    emulator = ThreadedMotoServer(ip_address=HOST, port=emulator_port, verbose=False)
    emulator.start()
    try:
        point_process_at(endpoint, issuer=api)
        session = boto3.Session(region_name=REGION)  # endpoint and credentials from the env
        provision(session, STAGE)
        seed_all(session, STAGE, alg=signing_alg())
        write_state(state_file, endpoint, api, issuer=api)
        orders = start_attached(ORDERS_DIR, orders_port, ORDERS_LOCAL_API)
        try:
            _install_gateway()
            print(_banner(api, endpoint, f"http://{HOST}:{orders_port}"), flush=True)
            _serve(api_port)
        finally:
            stop_attached(orders)
            state_file.unlink(missing_ok=True)
    finally:
        emulator.stop()


def main() -> int:
    # SIGTERM (the tests' terminate(), a supervisor) cleans up like Ctrl-C; SIGINT is set
    # explicitly because a shell starts background jobs with it ignored.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    from click.exceptions import Abort

    try:
        run()
    except StackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # the API port taken between our check and chalice's bind
        print(f"error: cannot start the local stack: {exc}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, Abort):
        print("\nstopped", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
