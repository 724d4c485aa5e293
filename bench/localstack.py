"""Throughput of client_credentials through the local stack (``chalice local`` + moto server).

For information only: moto answers every AWS call in the same process and ``chalice local`` is a
development server, so this says nothing about Lambda. ``python -m bench.localstack [--quick]``
starts ``python -m infra.local_stack`` on free loopback ports, registers a client with the admin
command, then runs a bounded load (N requests, 16 connections) and stops the stack.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench import common, events, loadgen


def wait_ready(url: str, proc: subprocess.Popen[Any], timeout: float) -> None:
    """Poll ``url`` until the local stack answers 200 (or exits, or ``timeout`` passes)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("the local stack exited")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:  # noqa: S310 - loopback only
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError("the local stack did not start")


def main(argv: list[str]) -> int:
    quick = "--quick" in argv
    n, repeats = (200, 2) if quick else (600, 3)
    api_port, emulator_port = loadgen.free_port(), loadgen.free_port()
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(
            API_PORT=str(api_port),
            EMULATOR_PORT=str(emulator_port),
            TESSERA_LOCAL_STATE=str(Path(tmp) / "state.json"),
        )
        stack = subprocess.Popen(
            [sys.executable, "-m", "infra.local_stack"],
            cwd=common.ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            api = f"http://127.0.0.1:{api_port}"
            wait_ready(api + "/.well-known/jwks.json", stack, 60)
            created = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "chalicelib.ops.admin",
                    "--stage",
                    "local",
                    "client",
                    "create",
                    "--name",
                    "bench",
                    "--grant-types",
                    "client_credentials",
                    "--scope",
                    common.SCOPE,
                    "--json",
                ],
                cwd=common.ROOT,
                env=env,
                check=True,
                capture_output=True,
                text=True,
                timeout=60,
            )
            client = json.loads(created.stdout)
            auth = events.basic(client["client_id"], client["client_secret"])
            body = "grant_type=client_credentials&scope=" + common.SCOPE.replace(" ", "+")
            url = api + "/oauth2/token"
            loadgen.measured_load(stack.pid, url, 50, 16, auth, body)  # warm-up
            runs = [
                loadgen.measured_load(stack.pid, url, n, 16, auth, body) for _ in range(repeats)
            ]
        finally:
            stack.terminate()
            try:
                stack.wait(timeout=15)
            except subprocess.TimeoutExpired:
                stack.kill()
    common.emit(
        {
            "n": n,
            "repeats": repeats,
            "connections": 16,
            "rps": common.median([r["rps"] for r in runs]),
            "cpu_us": common.median([r["cpu_us_per_request"] for r in runs]),
            "failed": sum(r["failed"] for r in runs),
            "runs": runs,
        }
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
