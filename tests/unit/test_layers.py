"""The import contract (pyproject.toml [tool.importlinter]): the tree keeps it, and a wrong-way
import breaks it, so `make lint` fails on one."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(tree / "pyproject.toml"), "--no-cache"],
        cwd=tree,
        env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def tree_copy(tmp_path: Path) -> Path:
    shutil.copytree(
        ROOT / "chalicelib", tmp_path / "chalicelib", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_tree_keeps_the_layer_contract(tree_copy):
    result = lint_imports(tree_copy)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 kept, 0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "wrong_import"),
    [
        ("core/clock.py", "from chalicelib.store import aws"),  # core imports a layer above it
        ("store/users.py", "from chalicelib.tokens import keys"),  # store and tokens are siblings
        ("oauth/pkce.py", "from chalicelib.web import pages"),  # protocol imports the web edge
        ("oauth/pkce.py", "from chalicelib.store import users"),  # protocol bypasses the ports
        ("oauth/login_guard.py", "from chalicelib.store import aws"),  # ... to talk to DynamoDB
        ("tokens/keys.py", "from chalicelib.store import secret_store"),  # tokens beside store
        ("store/users.py", "from chalicelib.oauth import login"),  # store implements, not uses
        ("web/cors.py", "from chalicelib.ops import rotation"),  # the API path imports ops
        ("ops/rotation.py", "from chalicelib import admin"),  # a layer imports an entry point
    ],
)
def test_a_wrong_way_import_breaks_the_contract(tree_copy, module, wrong_import):
    path = tree_copy / "chalicelib" / module
    path.write_text(path.read_text() + f"\n{wrong_import}  # noqa\n")
    result = lint_imports(tree_copy)
    assert result.returncode != 0
    assert "BROKEN" in result.stdout
    assert "chalicelib." + module.removesuffix(".py").replace("/", ".") in result.stdout
