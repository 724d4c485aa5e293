"""The commit before every stage moved to botocore, measured in the same run as the current code.

``BEFORE_BOTOCORE`` is the last main commit that still had ``chalicelib/aws_lite.py`` (the API
handler and the authorizer called AWS through that standard-library client; dev and prod set
``TESSERA_AWS_CLIENT=lite``). ``worktree()`` checks it out with ``git worktree add`` under
build/bench and removes it afterwards; without the git history (a shallow clone, an export) it
yields None and the rows that need it say so.

``python -m bench.before [--quick]``: that commit's own ``bench.world`` and ``bench.inproc``, run
from its worktree with this venv, for the per-request CPU of password, refresh and revocation as
it deployed them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench import common

BEFORE_BOTOCORE = "a490b771caf083e13c1007735425b098700a9285"
LABEL = "a490b77 (aws_lite)"
# What its dev and prod stages set (its .chalice/config.json): the functions on aws_lite.
SETTINGS = {"TESSERA_AWS_CLIENT": "lite"}


class Unavailable(Exception):
    """The commit cannot be checked out here (no git, or not in this clone's history)."""


def _git(*args: str, cwd: Path = common.ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


@contextmanager
def worktree(name: str) -> Iterator[Path]:
    """``BEFORE_BOTOCORE`` checked out in build/bench/<name>, removed on exit. Raises
    ``Unavailable`` where git or the commit is missing."""
    path = common.BUILD / name
    try:
        found = _git("cat-file", "-e", f"{BEFORE_BOTOCORE}:chalicelib/aws_lite.py")
    except (OSError, subprocess.SubprocessError) as exc:
        raise Unavailable(f"git is not available ({exc})") from exc
    if found.returncode != 0:
        raise Unavailable(f"commit {BEFORE_BOTOCORE[:7]} is not in this clone's history")
    # Left over by an interrupted run: removed (-f also takes over a registered path whose
    # directory is gone). Other worktrees of the repository are never touched.
    _git("worktree", "remove", "--force", str(path))
    shutil.rmtree(path, ignore_errors=True)
    added = _git("worktree", "add", "-f", "--detach", str(path), BEFORE_BOTOCORE)
    if added.returncode != 0:
        raise Unavailable(f"git worktree add failed: {added.stderr.strip()[-300:]}")
    try:
        # Chalice's wheel cache, so packaging that commit fetches nothing new.
        cache = common.ROOT / ".chalice" / "deployments"
        if cache.is_dir():
            shutil.copytree(cache, path / ".chalice" / "deployments", dirs_exist_ok=True)
        yield path
    finally:
        _git("worktree", "remove", "--force", str(path))
        shutil.rmtree(path, ignore_errors=True)


def run_module(tree: Path, module: str, *args: str, timeout: float = 600) -> dict[str, Any]:
    """``python -m <module>`` of that commit (its own code first on the path), this venv."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(tree)
    out = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if out.returncode != 0:
        raise RuntimeError(f"{module} of {LABEL} failed: {out.stderr.strip()[-500:]}")
    return common.parse_result(out.stdout)


def package(tree: Path, out: Path) -> Path:
    """That commit's ``make package`` artifact for dev."""
    env = dict(os.environ, AWS_DEFAULT_REGION="us-east-1", PYTHONPATH=str(tree))
    subprocess.run(
        [sys.executable, "-m", "infra.package", "--stage", "dev", "--out", str(out)],
        cwd=tree,
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    return out / "deployment.zip"


def main(argv: list[str]) -> int:
    quick = ["--quick"] if "--quick" in argv else []
    try:
        with worktree("before-botocore-inproc") as tree:
            world = common.BUILD / "world-before.json"
            run_module(tree, "bench.world", str(world))
            result = run_module(tree, "bench.inproc", str(world), *quick)
    except Unavailable as exc:
        common.emit({"unavailable": str(exc), "commit": BEFORE_BOTOCORE})
        return 0
    endpoint = result.get("endpoint", {})
    common.emit(
        {
            "commit": BEFORE_BOTOCORE,
            "label": LABEL,
            "endpoint": {
                name: {
                    k: endpoint[name][k]
                    for k in ("cpu_us", "calls_warm", "items_warm", "calls_warm_total")
                }
                for name in ("password", "refresh_token", "revoke")
                if name in endpoint
            },
        }
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
