"""Bounded loopback load against one server process, with that process's CPU accounting.

The requests come from ``bench/peer/loadgen.js`` (Node, keep-alive, C connections, N requests,
then it exits); the server's CPU is read from ``/proc/<pid>/stat`` (utime + stime) before and after,
so the load generator's own CPU is not counted. Targets must be on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
from pathlib import Path
from typing import Any

PEER_DIR = Path(__file__).resolve().parent / "peer"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` and its threads, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # After the ")" field 3 is index 0: utime is field 14 -> index 11, stime 15 -> index 12.
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def load(url: str, n: int, connections: int, authorization: str, body: str) -> dict[str, Any]:
    if not url.startswith("http://127.0.0.1:"):
        raise ValueError("loopback targets only")
    out = subprocess.run(
        ["node", str(PEER_DIR / "loadgen.js"), url, str(n), str(connections), authorization, body],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def measured_load(
    pid: int, url: str, n: int, connections: int, authorization: str, body: str
) -> dict[str, Any]:
    """One bounded run; the server's CPU per successful request, and requests per second."""
    before = process_cpu_seconds(pid)
    result = load(url, n, connections, authorization, body)
    after = process_cpu_seconds(pid)
    ok = max(1, int(result["ok"]))
    return {
        "ok": result["ok"],
        "failed": result["failed"],
        "rps": result["ok"] / result["seconds"],
        "cpu_us_per_request": (after - before) * 1e6 / ok,
    }


def ensure_node_modules() -> None:
    """Install the peer from the committed lockfile (npm ci) if it is not there yet."""
    if (PEER_DIR / "node_modules" / "oidc-provider").is_dir():
        return
    subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=PEER_DIR,
        check=True,
        timeout=300,
    )
