"""The peer: node-oidc-provider (npm ``oidc-provider``) issuing ES256 JWT access tokens for the
client_credentials grant, in-memory adapter, under a bounded loopback load.

``python -m bench.peer [--quick]`` prints the server's CPU per token (its own process accounting)
and its throughput, median over repeated runs.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Any

from bench import common, events, loadgen

CLIENT_ID = "bench-peer-client"
CLIENT_SECRET = "bench-peer-secret-0123456789abcdef"  # noqa: S105 - a bench-only secret


def node_version() -> str:
    return subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()


def main(argv: list[str]) -> int:
    quick = "--quick" in argv
    n, repeats = (1000, 3) if quick else (3000, 5)
    loadgen.ensure_node_modules()
    port = loadgen.free_port()
    env = dict(os.environ, NODE_ENV="production")
    server = subprocess.Popen(
        ["node", "server.js", str(port), CLIENT_ID, CLIENT_SECRET, common.AUDIENCE],
        cwd=loadgen.PEER_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert server.stdout is not None
        if server.stdout.readline().strip() != "ready":
            raise RuntimeError("the peer did not start")
        url = f"http://127.0.0.1:{port}/token"
        auth = events.basic(CLIENT_ID, CLIENT_SECRET)
        body = "grant_type=client_credentials&scope=" + common.SCOPE.replace(" ", "+")
        loadgen.measured_load(server.pid, url, 500, 16, auth, body)  # warm-up (JIT)
        runs = [loadgen.measured_load(server.pid, url, n, 16, auth, body) for _ in range(repeats)]
    finally:
        server.terminate()
        server.wait(timeout=10)
    version = (loadgen.PEER_DIR / "node_modules" / "oidc-provider" / "package.json").read_text()
    import json

    result: dict[str, Any] = {
        "peer": "oidc-provider " + json.loads(version)["version"],
        "node": node_version(),
        "n": n,
        "repeats": repeats,
        "connections": 16,
        "cpu_us": common.median([r["cpu_us_per_request"] for r in runs]),
        "rps": common.median([r["rps"] for r in runs]),
        "failed": sum(r["failed"] for r in runs),
        "runs": runs,
        "at": time.time(),
    }
    common.emit(result)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
