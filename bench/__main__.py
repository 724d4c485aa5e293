"""``make bench``: run every measurement, print one table, write BENCHMARKS.md.

``python -m bench [--quick] [--no-write]``. Each measurement is a fresh interpreter
(``python -m bench.<name>``) that prints one marked JSON line; a measurement that fails is
reported as such and the others still run. Bounded: the whole run takes a few minutes.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import common, cost, report


def run(name: str, *args: str, timeout: float = 400) -> dict[str, Any]:
    started = time.monotonic()
    sys.stderr.write(f"bench: {name} ...\n")
    try:
        out = subprocess.run(
            [sys.executable, "-m", f"bench.{name}", *args],
            cwd=common.ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    if out.returncode != 0:
        tail = out.stderr.strip().splitlines()[-3:]
        return {"error": " | ".join(tail) or f"exit {out.returncode}"}
    result = common.parse_result(out.stdout)
    result["seconds"] = time.monotonic() - started
    return result


def _version(module: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(module)
    except metadata.PackageNotFoundError:
        return "?"


def machine() -> dict[str, Any]:
    cpu = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal"):
            mem_kb = int(line.split()[1])
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=common.ROOT, capture_output=True, text=True
    ).stdout.strip()
    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "load_before": os.getloadavg()[0],
        "python": platform.python_version(),
        "commit": commit or "?",
        "versions": {
            "cryptography": _version("cryptography"),
            "chalice": _version("chalice"),
            "botocore": _version("botocore"),
            "moto": _version("moto"),
        },
    }


def render_only() -> int:
    """Rewrite BENCHMARKS.md from the last run's results (build/bench/results.json)."""
    saved = common.load_json(common.BUILD / "results.json")
    table = report.rows(saved["results"])
    sys.stdout.write(report.console_table(table) + "\n")
    (common.ROOT / "BENCHMARKS.md").write_text(
        report.markdown(saved["machine"], saved["results"], table, cost)
    )
    return 0


def main(argv: list[str]) -> int:
    if "--render" in argv:
        return render_only()
    quick = ["--quick"] if "--quick" in argv else []
    started = time.monotonic()
    info = machine()
    common.BUILD.mkdir(parents=True, exist_ok=True)
    world_path = common.BUILD / "world.json"
    results: dict[str, Any] = {"world": run("world", str(world_path))}
    if "error" not in results["world"]:
        results["inproc"] = run("inproc", str(world_path), *quick)
        results["coldstart"] = run("coldstart", str(world_path), *quick)
    # The commit before the botocore change: its own world and in-process measurements.
    results["before"] = run("before", *quick, timeout=900)
    results["peer"] = run("peer", *quick)
    results["localstack"] = run("localstack", *quick)
    info["load_after"] = os.getloadavg()[0]
    info["seconds"] = time.monotonic() - started
    if "error" not in results.get("peer", {"error": 1}):
        info["versions"]["node"] = results["peer"]["node"]
        info["versions"]["peer"] = results["peer"]["peer"]
    rows = report.rows(results)
    sys.stdout.write(report.console_table(rows) + "\n")
    (common.BUILD / "results.json").write_text(
        json.dumps({"machine": info, "results": results}, indent=1, sort_keys=True)
    )
    if "--no-write" not in argv:
        (common.ROOT / "BENCHMARKS.md").write_text(report.markdown(info, results, rows, cost))
        sys.stdout.write(f"wrote BENCHMARKS.md in {info['seconds']:.0f} s\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
