"""Small helpers shared by the measurements: the bench stage's settings, statistics, JSON I/O."""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build" / "bench"

STAGE = "bench"
ISSUER = "https://auth.bench.example"
AUDIENCE = "https://api.bench.example"
SCOPE = "people:read articles:read"

# The environment a Tessera function sees in the bench (fake credentials: nothing leaves the box).
BENCH_ENV = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "TESSERA_STAGE": STAGE,
    "TESSERA_ISSUER": ISSUER,
    "TESSERA_AUDIENCE": AUDIENCE,
    "TESSERA_TABLE": f"tessera-{STAGE}",
    "TESSERA_DEMO": "true",  # the demo routes, as dev deploys them
    "TESSERA_DEMO_TABLE": f"tessera-demo-{STAGE}",
    "TESSERA_SIGNING_KEYS_SECRET": f"tessera/{STAGE}/signing-keys",
    "TESSERA_PUBLIC_KEYS_SECRET": f"tessera/{STAGE}/public-keys",
    "TESSERA_PEPPER_SECRET": f"tessera/{STAGE}/pepper",
    "TESSERA_PASSWORD_GRANT": "true",
}

_FOREIGN = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_REGION")


def apply_bench_env() -> None:
    """Point this process at the bench stage; drop settings that would send calls elsewhere."""
    for name in list(os.environ):
        if name in _FOREIGN or name.startswith("AWS_ENDPOINT_URL"):
            del os.environ[name]
    os.environ.update(BENCH_ENV)


def median(values: list[float]) -> float:
    return float(statistics.median(values))


def cpu_us_per_call(fn: Callable[[int], object], n: int) -> tuple[float, float]:
    """Run ``fn(i)`` for i in range(n); return (CPU µs per call, wall µs per call)."""
    c0, w0 = time.process_time(), time.perf_counter()
    for i in range(n):
        fn(i)
    c1, w1 = time.process_time(), time.perf_counter()
    return (c1 - c0) * 1e6 / n, (w1 - w0) * 1e6 / n


RESULT_PREFIX = "BENCH-RESULT "


def emit(result: dict[str, Any]) -> None:
    """A measurement's answer: one JSON line on stdout, marked (the app logs to stdout too)."""
    sys.stdout.write(RESULT_PREFIX + json.dumps(result, sort_keys=True) + "\n")
    sys.stdout.flush()


def parse_result(stdout: str) -> dict[str, Any]:
    for line in reversed(stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            found: dict[str, Any] = json.loads(line[len(RESULT_PREFIX) :])
            return found
    raise ValueError("no result line")


def load_json(path: Path) -> Any:
    return json.loads(path.read_text())
