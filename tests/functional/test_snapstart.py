"""Lambda init and SnapStart: the functions' init and hooks (chalicelib/web/snapstart.py) run as
Lambda's runtime runs them.

The hooks are registered with AWS's ``snapshot_restore_py`` (the registry the Python runtime ships)
and run from it: before-snapshot hooks in reverse order of registration, after-restore hooks in
order. AWS calls go over real connections to moto's emulator server, through a TCP proxy that
records each connection (open or closed, and what the client sent), so "no connection before the
snapshot", "old connections closed after the restore" and "which credentials signed a request"
are observed on the wire, not inferred.
"""

from __future__ import annotations

import gc
import http.client
import http.server
import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import botocore.credentials
import pytest
import snapshot_restore_py

import app as api_entry
from chalicelib import authorizer_lambda as authorizer_entry
from chalicelib.core import telemetry
from chalicelib.core.clock import SYSTEM_CLOCK
from chalicelib.ops import admin_records as admin
from chalicelib.store import aws as aws_clients
from chalicelib.web import services, snapstart
from infra.provision import provision
from infra.seed import seed_demo_rules, seed_secrets
from tests.functional.authorizer_support import Forge, event
from tests.functional.conftest import DEMO_APIS, TEST_ENV

ROOT = Path(__file__).resolve().parents[2]
STAGE = "snap"
BEFORE_KEY = "AKIASNAPSHOTINIT"  # the credentials of the process that took the snapshot
RESTORED_KEY = "AKIARESTOREDCONT"  # those of the restored container


# --- moto's emulator server, and a proxy that watches the connections to it -----------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class _Session:
    """What infra.provision and infra.seed need of a boto3 session, on the emulator."""

    region_name = "us-east-1"

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint

    def client(self, name: str) -> Any:
        import boto3

        return boto3.client(
            name,
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )


@pytest.fixture(scope="module")
def emulator() -> Iterator[str]:
    """A provisioned and seeded stack on moto's server, in its own process (moto's state is per
    process; the in-process tests of this worker reset it)."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("moto's server did not start") from None
                time.sleep(0.05)
        endpoint = f"http://127.0.0.1:{port}"
        session = _Session(endpoint)
        provision(session, STAGE)
        seed_secrets(session, STAGE, now=int(time.time()))
        seed_demo_rules(session, STAGE, DEMO_APIS, now=int(time.time()))
        yield endpoint
    finally:
        proc.terminate()
        proc.wait(timeout=10)


class Connection:
    def __init__(self) -> None:
        self.requests: list[dict[str, str]] = []  # the headers of each request on it
        self.closed = threading.Event()  # the client closed it

    def sent(self, text: str) -> bool:
        return any(text in value for r in self.requests for value in r.values())


class _Forward(http.server.BaseHTTPRequestHandler):
    """One client connection: kept alive between requests, as AWS's endpoints keep them (moto's
    server closes each one), each request forwarded to the emulator."""

    protocol_version = "HTTP/1.1"
    server: _ProxyServer

    def setup(self) -> None:
        super().setup()
        self.connection_record = Connection()
        self.server.connections.append(self.connection_record)

    def finish(self) -> None:
        super().finish()
        self.connection_record.closed.set()

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.connection_record.requests.append(dict(self.headers))
        upstream = http.client.HTTPConnection(*self.server.upstream, timeout=30)
        try:
            upstream.request("POST", self.path, body, dict(self.headers))
            answer = upstream.getresponse()
            data = answer.read()
        finally:
            upstream.close()
        self.send_response(answer.status)
        for name, value in answer.getheaders():
            if name.lower() not in ("connection", "content-length", "server", "date"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


class _ProxyServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    upstream: tuple[str, int]
    connections: list[Connection]


class Proxy:
    """127.0.0.1:<port> in front of the emulator, recording each client connection."""

    def __init__(self, upstream: str) -> None:
        host, port = upstream.removeprefix("http://").split(":")
        self.server = _ProxyServer(("127.0.0.1", 0), _Forward)
        self.server.upstream = (host, int(port))
        self.server.connections = []
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def connections(self) -> list[Connection]:
        return self.server.connections

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _stage_env(endpoint: str, access_key: str) -> dict[str, str]:
    env = {k: v for k, v in TEST_ENV.items() if not k.startswith("TESSERA_")}
    env.update(
        AWS_ENDPOINT_URL=endpoint,
        AWS_ACCESS_KEY_ID=access_key,
        TESSERA_STAGE=STAGE,
        TESSERA_ISSUER=TEST_ENV["TESSERA_ISSUER"],
        TESSERA_AUDIENCE=TEST_ENV["TESSERA_AUDIENCE"],
        TESSERA_TABLE=f"tessera-{STAGE}",
        TESSERA_DEMO="true",
        TESSERA_DEMO_TABLE=f"tessera-demo-{STAGE}",
        TESSERA_SIGNING_KEYS_SECRET=f"tessera/{STAGE}/signing-keys",
        TESSERA_PUBLIC_KEYS_SECRET=f"tessera/{STAGE}/public-keys",
        TESSERA_PEPPER_SECRET=f"tessera/{STAGE}/pepper",
        TESSERA_AUTHORIZER_CHECKS_REVOCATION="true",
    )
    return env


def _use(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL_DYNAMODB", "TESSERA_AWS_CLIENT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def token(emulator: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """An access token signed with the stack's current key (read without the proxy). The
    functions run on the system clock here (another test may have left a fake one)."""
    _use(monkeypatch, _stage_env(emulator, "testing"))
    services.set_clock(SYSTEM_CLOCK)  # also resets every built service
    yield Forge(services.signing_keys().current(), time.time()).token()
    services.reset()


@pytest.fixture
def proxy(emulator: str, token: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Proxy]:
    """The functions' AWS endpoint is the proxy; the snapshot's process has BEFORE_KEY."""
    found = Proxy(emulator)
    _use(monkeypatch, _stage_env(found.endpoint, BEFORE_KEY))
    services.reset()
    yield found
    services.reset()
    found.close()


Hook = tuple[Callable[..., object], tuple[object, ...], dict[str, object]]


def before_snapshot_hooks() -> list[Hook]:
    # The library annotates its registries as lists of callables; they hold (func, args, kwargs).
    return cast("list[Hook]", snapshot_restore_py.get_before_snapshot())


def after_restore_hooks() -> list[Hook]:
    return cast("list[Hook]", snapshot_restore_py.get_after_restore())


@pytest.fixture(autouse=True)
def _process_state() -> Iterator[None]:
    """The restore hooks mark this process's next invocation as a cold start and reseed
    ``random``: put both back for the tests that share the worker."""
    first = list(telemetry._first)
    state = random.getstate()
    yield
    telemetry._first[:] = first
    random.setstate(state)


def run_before_snapshot() -> None:
    """What Lambda's runtime does before it snapshots: reverse order of registration."""
    for func, args, kwargs in reversed(before_snapshot_hooks()):
        func(*args, **kwargs)


def run_after_restore() -> None:
    """What it does in a restored container, before the first event: order of registration."""
    for func, args, kwargs in after_restore_hooks():
        func(*args, **kwargs)


def _credentials_with(access_key: str) -> list[object]:
    return [
        o
        for o in gc.get_objects()
        if isinstance(o, botocore.credentials.Credentials)
        and getattr(o, "access_key", None) == access_key
    ]


def _authorize(token: str) -> dict[str, Any]:
    answer: dict[str, Any] = authorizer_entry.handler(event("Bearer " + token), None)
    return answer


def _allowed(answer: dict[str, Any]) -> bool:
    return any(s["Effect"] == "Allow" for s in answer["policyDocument"]["Statement"])


# --- registration ------------------------------------------------------------------------------


def test_each_function_registers_its_hooks_with_the_runtimes_library() -> None:
    before = before_snapshot_hooks()
    assert (snapstart.before_snapshot, (api_entry.PRELOAD,), {}) in before
    assert (snapstart.before_snapshot, (authorizer_entry.PRELOAD,), {}) in before
    after = [func for func, _, _ in after_restore_hooks()]
    assert after.count(snapstart.after_restore) == 1  # once, whichever entries a process loads


def test_without_the_runtimes_library_nothing_is_registered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", None)  # import fails, as off Lambda
    assert snapstart.register(("chalicelib.tokens.keys",)) is False


# --- before the snapshot --------------------------------------------------------------------------


def test_the_snapshot_holds_no_connection_credentials_or_secret(proxy: Proxy) -> None:
    run_before_snapshot()
    # No AWS call at all, so no key set, pepper, client record or rule was read into memory.
    assert proxy.connections == []
    gc.collect()
    assert _credentials_with(BEFORE_KEY) == []


# --- after the restore ----------------------------------------------------------------------------


def test_after_restore_the_next_event_uses_new_connections_and_credentials(
    proxy: Proxy, token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worst case: the process made AWS calls before the snapshot (connections pooled,
    credentials resolved, the key set cached and fresh). A restored container reuses none of it."""
    run_before_snapshot()
    assert _allowed(_authorize(token))
    # Code that still holds a client from before the snapshot cannot keep its connections.
    held = [aws_clients.client("dynamodb"), aws_clients.client("secretsmanager")]
    pooled = list(proxy.connections)
    assert pooled
    assert all(not c.closed.is_set() for c in pooled)
    sent_before = {id(c): len(c.requests) for c in pooled}
    assert all(c.sent(f"Credential={BEFORE_KEY}/") for c in pooled)

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", RESTORED_KEY)  # this container's credentials
    run_after_restore()
    for c in pooled:
        assert c.closed.wait(5), "a connection from before the snapshot is still open"
    assert not {id(aws_clients.client(s)) for s in ("dynamodb", "secretsmanager")} & {
        id(c) for c in held
    }
    del held
    gc.collect()
    assert _credentials_with(BEFORE_KEY) == []  # nothing else kept them

    assert _allowed(_authorize(token))
    fresh = [c for c in proxy.connections if c not in pooled]
    assert fresh
    assert all(len(c.requests) == sent_before[id(c)] for c in pooled)
    assert all(c.sent(f"Credential={RESTORED_KEY}/") for c in fresh)
    assert not any(c.sent(BEFORE_KEY) for c in fresh)
    # The key set is read again: its cache, fresh before the snapshot, was dropped with its
    # fetch time.
    assert any(c.sent("secretsmanager.GetSecretValue") for c in fresh)


def test_restored_containers_draw_different_random_sequences(
    proxy: Proxy,
) -> None:
    """botocore's retry jitter draws from ``random``: containers restored from one snapshot must
    not all back off alike."""
    run_before_snapshot()
    snapshot = random.getstate()
    draws = []
    for _ in range(2):
        random.setstate(snapshot)  # each restore starts from the snapshot's state
        run_after_restore()
        draws.append([random.random() for _ in range(4)])
    assert draws[0] != draws[1]


def test_first_invocation_after_restore_reports_a_cold_start(
    proxy: Proxy, token: str, capsys: pytest.CaptureFixture[str]
) -> None:
    def cold_start_of_last_invocation() -> bool:
        lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
        flag: bool = lines[-1]["cold_start"]
        return flag

    run_before_snapshot()
    run_after_restore()
    _authorize(token)
    assert cold_start_of_last_invocation() is True
    _authorize(token)
    assert cold_start_of_last_invocation() is False
    run_after_restore()
    _authorize(token)
    assert cold_start_of_last_invocation() is True


# --- nothing left to load on the first event ------------------------------------------------------

# In a fresh interpreter whose AWS_LAMBDA_INITIALIZATION_TYPE is argv[3], as Lambda starts it:
# the entry module imported (its init), then for "snap-start" the before-snapshot hooks, then
# counters of what is left of init's work (botocore data files read: service models, endpoint
# rules; AWS clients built), the after-restore hooks (snap-start), and each event. Prints the
# modules each event loaded (none expected: PRELOAD is complete), its answer, and the work left
# to the restore hooks and to the events.
_FIRST_EVENTS = r"""
import json, sys
import botocore.loaders, botocore.session
import snapshot_restore_py
from bench import events
snapstart = sys.argv[3] == "snap-start"
entry = __import__(sys.argv[1], fromlist=["*"])
if snapstart:
    for func, args, kwargs in reversed(snapshot_restore_py.get_before_snapshot()):
        func(*args, **kwargs)
work = {"data files read": 0, "clients built": 0}
def counting(name, original):
    def run(*args, **kwargs):
        work[name] += 1
        return original(*args, **kwargs)
    return run
botocore.loaders.JSONFileLoader.load_file = counting(
    "data files read", botocore.loaders.JSONFileLoader.load_file)
botocore.session.Session.create_client = counting(
    "clients built", botocore.session.Session.create_client)
if snapstart:
    for func, args, kwargs in snapshot_restore_py.get_after_restore():
        func(*args, **kwargs)
restore_work = dict(work)
results = []
for ev in json.loads(sys.argv[2]):
    before = set(sys.modules)
    try:
        answer = (entry.app if hasattr(entry, "app") else entry.handler)(ev, events.LambdaContext())
        outcome = answer.get("statusCode") or answer["policyDocument"]["Statement"][0]["Effect"]
    except Exception as exc:
        outcome = type(exc).__name__
    results.append({"outcome": outcome, "loaded": sorted(set(sys.modules) - before)})
events_work = {k: work[k] - restore_work[k] for k in work}
print(json.dumps({"events": results, "restore": restore_work, "work": events_work}))
"""
INITS = ("snap-start", "on-demand")


def _first_events(
    env: dict[str, str], module: str, evs: list[dict[str, Any]], init: str
) -> tuple[list[Any], dict[str, int]]:
    out = subprocess.run(
        [sys.executable, "-c", _FIRST_EVENTS, module, json.dumps(evs), init],
        cwd=ROOT,
        env={
            **env,
            "PATH": os.environ.get("PATH", ""),
            "PYTHONPATH": str(ROOT),
            "AWS_LAMBDA_INITIALIZATION_TYPE": init,
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    found = json.loads(out.stdout.strip().splitlines()[-1])
    # Under SnapStart the restore hooks build the container's two clients from models loaded
    # before the snapshot; without it, init built them.
    restored = {"data files read": 0, "clients built": 2 if init == "snap-start" else 0}
    assert found["restore"] == restored
    return found["events"], found["work"]


@pytest.mark.parametrize("init", INITS)
def test_after_init_the_authorizer_loads_nothing_more(emulator: str, token: str, init: str) -> None:
    from bench import events

    results, work = _first_events(
        _stage_env(emulator, "testing"),
        "chalicelib.authorizer_lambda",
        [events.authorizer_event(token), events.authorizer_event(token, "/articles")],
        init,
    )
    assert [r["outcome"] for r in results] == ["Allow", "Allow"]
    assert [r["loaded"] for r in results] == [[], []]
    assert work == {"data files read": 0, "clients built": 0}


@pytest.mark.parametrize("init", INITS)
def test_after_init_the_api_routes_load_nothing_more(emulator: str, token: str, init: str) -> None:
    from bench import events

    client = admin.create_client(
        services.client_store(),
        name="snapstart",
        grant_types=["client_credentials"],
        scopes=["people:read"],
        introspect=True,
    )
    auth = events.basic(str(client["client_id"]), str(client["client_secret"]))
    evs = [
        events.token_request({"grant_type": "client_credentials"}, auth),
        events.form_request("/oauth2/introspect", {"token": token}, auth),
        events.form_request("/oauth2/revoke", {"token": token}, auth),
        events.proxy_event("/.well-known/jwks.json", "GET"),
        events.proxy_event("/.well-known/openid-configuration", "GET"),
        events.proxy_event("/oauth2/authorize", "GET"),  # no client_id: the error page
    ]
    results, work = _first_events(_stage_env(emulator, "testing"), "app", evs, init)
    assert [r["outcome"] for r in results] == [200, 200, 200, 200, 200, 400]
    assert [r["loaded"] for r in results] == [[]] * len(evs)
    assert work == {"data files read": 0, "clients built": 0}
