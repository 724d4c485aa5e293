"""``make loadtest``: a bounded mixed workload against the local stack, then a consistency check.

Starts ``python -m infra.local_stack`` on free loopback ports (its own state file, so a running
``make local`` is left alone), registers a resource-server client (client_credentials +
introspection), a password client with refresh tokens and a few users, then runs 16 concurrent
virtual users for at most 60 s (default 30 s; ``LOADTEST_SECONDS``). Each one repeats:

    client_credentials -> password login -> demo API (GET /people) -> introspect the access token
    -> refresh -> refresh -> (every other cycle) revoke the refresh token -> introspect it

It reports throughput, p50/p99 latency per operation and the number of 5xx answers (must be 0),
then checks through the store that every refresh token issued is exactly what the workload says:
retired by rotation, revoked with its family, or still active — nothing lost, nothing
double-spent. Exit status 0 only if all of that holds. Loopback only; not part of ``make test``
(moto and ``chalice local`` dominate the numbers: they say nothing about Lambda).
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus, urlencode

from bench.localstack import wait_ready

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
WORKERS = 16
MAX_SECONDS = 60.0
USERS = 4
PASSWORD = "load test password 1"  # noqa: S105 - a throwaway local user


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Stats:
    lock: threading.Lock = field(default_factory=threading.Lock)
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: dict[str, dict[int, int]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(int))
    )
    errors: list[str] = field(default_factory=list)
    # refresh token -> what the workload did with it: "active", "rotated", "revoked"
    expected: dict[str, str] = field(default_factory=dict)

    def record(self, op: str, status: int, seconds: float) -> None:
        with self.lock:
            self.latencies[op].append(seconds * 1000)
            self.statuses[op][status] += 1

    def expect(self, token: str, state: str) -> None:
        with self.lock:
            self.expected[token] = state

    def error(self, text: str) -> None:
        with self.lock:
            self.errors.append(text)


class Client:
    """One HTTP connection per request (chalice local speaks HTTP/1.0)."""

    def __init__(self, port: int, stats: Stats) -> None:
        self.port = port
        self.stats = stats

    def call(
        self, op: str, method: str, path: str, body: str | None, headers: dict[str, str]
    ) -> tuple[int, Any]:
        conn = http.client.HTTPConnection(HOST, self.port, timeout=30)
        started = time.perf_counter()
        try:
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            raw = resp.read()
            status = resp.status
        finally:
            conn.close()
        self.stats.record(op, status, time.perf_counter() - started)
        try:
            data = json.loads(raw) if raw else None
        except ValueError:
            data = None
        return status, data

    def form(self, op: str, path: str, params: dict[str, str], auth: str) -> tuple[int, Any]:
        headers = {"Content-Type": "application/x-www-form-urlencoded", "Authorization": auth}
        return self.call(op, "POST", path, urlencode(params), headers)


def basic(client: dict[str, Any]) -> str:
    raw = f"{quote_plus(client['client_id'])}:{quote_plus(client['client_secret'])}"
    return "Basic " + base64.b64encode(raw.encode()).decode()


def virtual_user(
    n: int, port: int, rs: dict[str, Any], pw: dict[str, Any], deadline: float, stats: Stats
) -> None:
    c = Client(port, stats)
    rs_auth, pw_auth = basic(rs), basic(pw)
    cycle = 0
    while time.monotonic() < deadline:
        cycle += 1
        try:
            status, _ = c.form(
                "client_credentials", "/oauth2/token", {"grant_type": "client_credentials"}, rs_auth
            )
            expect(stats, "client_credentials", status, 200)
            login = {"grant_type": "password", "username": f"load{n % USERS}", "password": PASSWORD}
            status, tokens = c.form("password", "/oauth2/token", login, pw_auth)
            if not expect(stats, "password", status, 200):
                continue
            refresh = tokens["refresh_token"]
            stats.expect(refresh, "active")
            bearer = {"Authorization": "Bearer " + tokens["access_token"]}
            status, _ = c.call("demo_api", "GET", "/people", None, bearer)
            expect(stats, "demo_api", status, 200)
            status, info = c.form(
                "introspect", "/oauth2/introspect", {"token": tokens["access_token"]}, rs_auth
            )
            if expect(stats, "introspect", status, 200) and not (info or {}).get("active"):
                stats.error("introspect: a fresh access token is not active")
            for _ in range(2):
                params = {"grant_type": "refresh_token", "refresh_token": refresh}
                status, rotated = c.form("refresh", "/oauth2/token", params, pw_auth)
                if not expect(stats, "refresh", status, 200):
                    break
                stats.expect(refresh, "rotated")
                refresh = rotated["refresh_token"]
                stats.expect(refresh, "active")
            if cycle % 2 == 0:
                status, _ = c.form("revoke", "/oauth2/revoke", {"token": refresh}, pw_auth)
                if expect(stats, "revoke", status, 200):
                    stats.expect(refresh, "revoked")
            status, info = c.form("introspect", "/oauth2/introspect", {"token": refresh}, rs_auth)
            want_active = cycle % 2 == 1
            if (
                expect(stats, "introspect", status, 200)
                and bool((info or {}).get("active")) != want_active
            ):
                stats.error(
                    f"introspect: refresh token active={not want_active}, expected {want_active}"
                )
        except (OSError, http.client.HTTPException) as exc:
            stats.error(f"worker {n}: {type(exc).__name__}: {exc}")


def expect(stats: Stats, op: str, status: int, wanted: int) -> bool:
    if status != wanted:
        stats.error(f"{op}: status {status}, expected {wanted}")
        return False
    return True


def check_refresh_tokens(stats: Stats) -> list[str]:
    """Every refresh token issued is in the state the workload left it in (read from the store)."""
    from chalicelib.core.records import ACTIVE, ROTATED
    from chalicelib.web import services

    refresh = services.refresh_grants()
    problems = []
    for token, want in stats.expected.items():
        rec = refresh.find(token)
        if rec is None:
            problems.append(f"a refresh token the workload got is not stored ({want})")
            continue
        family = refresh.family(rec.family_id)
        revoked = family is None or family.revoked
        if want == "revoked":
            ok = revoked
        elif want == "rotated":
            ok = rec.state == ROTATED
        else:
            ok = rec.state == ACTIVE and not revoked
        if not ok:
            problems.append(f"expected {want}, found state={rec.state} family_revoked={revoked}")
    return problems


def _report(stats: Stats, seconds: float) -> int:
    total = sum(len(v) for v in stats.latencies.values())
    fives = sum(n for per in stats.statuses.values() for s, n in per.items() if s >= 500)
    print(f"\n{total} requests in {seconds:.1f} s: {total / seconds:.1f} req/s, {WORKERS} clients")
    print(f"{'operation':<20}{'count':>8}{'p50 ms':>10}{'p99 ms':>10}  statuses")
    every: list[float] = []
    for op, values in sorted(stats.latencies.items()):
        every += values
        print(
            f"{op:<20}{len(values):>8}{statistics.median(values):>10.1f}"
            f"{_p99(values):>10.1f}  {dict(stats.statuses[op])}"
        )
    if every:
        print(f"{'all':<20}{len(every):>8}{statistics.median(every):>10.1f}{_p99(every):>10.1f}")
    print(f"5xx answers: {fives}")
    return fives


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def main() -> int:
    seconds = min(float(os.environ.get("LOADTEST_SECONDS", "30")), MAX_SECONDS)
    api_port, emulator_port = _free_port(), _free_port()
    with tempfile.TemporaryDirectory() as tmp:
        state = str(Path(tmp) / "state.json")
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(
            API_PORT=str(api_port), EMULATOR_PORT=str(emulator_port), TESSERA_LOCAL_STATE=state
        )
        log = (Path(tmp) / "stack.log").open("wb")
        stack = subprocess.Popen(
            [sys.executable, "-m", "infra.local_stack"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_ready(f"http://{HOST}:{api_port}/.well-known/jwks.json", stack, 90)
            return _run(api_port, state, seconds)
        finally:
            stack.terminate()
            try:
                stack.wait(timeout=15)
            except subprocess.TimeoutExpired:
                stack.kill()
            log.close()


def _run(api_port: int, state: str, seconds: float) -> int:
    # This process talks to the stack's emulator like the admin command does.
    os.environ["TESSERA_LOCAL_STATE"] = state
    from chalicelib.ops import admin
    from chalicelib.web import services

    admin.use_stage("local")
    scope = ["people:read", "articles:read"]
    rs = admin.create_client(
        services.client_store(),
        name="load rs",
        grant_types=["client_credentials"],
        scopes=scope,
        introspect=True,
    )
    pw = admin.create_client(
        services.client_store(),
        name="load app",
        grant_types=["password", "refresh_token"],
        scopes=scope,
    )
    for i in range(USERS):
        admin.create_user(services.user_store(), f"load{i}", PASSWORD)
    stats = Stats()
    print(f"load test: {WORKERS} clients for {seconds:.0f} s against http://{HOST}:{api_port}")
    started = time.monotonic()
    deadline = started + seconds
    threads = [
        threading.Thread(target=virtual_user, args=(n, api_port, rs, pw, deadline, stats))
        for n in range(WORKERS)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    fives = _report(stats, time.monotonic() - started)
    problems = check_refresh_tokens(stats)
    counts: dict[str, int] = defaultdict(int)
    for want in stats.expected.values():
        counts[want] += 1
    print(
        f"refresh tokens checked: {len(stats.expected)} {dict(counts)}; mismatches: {len(problems)}"
    )
    for line in (stats.errors + problems)[:20]:
        print("  " + line)
    ok = fives == 0 and not stats.errors and not problems and len(stats.expected) > 0
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
