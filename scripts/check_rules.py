"""Tessera's own static rules (README, "Security", "Checks"), checked on the syntax tree:
``make lint`` runs this.

1. ``jwt.decode(...)`` and every ``decode_complete(...)`` (PyJWT's, whatever the instance) name
   their algorithms: ``algorithms=[...]`` (a non-empty list or tuple literal).
2. Secrets are compared in constant time, never ``==`` / ``!=``: a comparison of two
   non-literal operands one of which is named like a secret, password, hash, digest, MAC or
   signature is an error (runtime code: app.py, chalicelib/).
3. No HS256/HS384/HS512 and no ``"none"`` algorithm in the token validation path
   (chalicelib/key_objects.py, access_tokens.py, authorizer.py, introspection.py).
4. No ``app.debug`` switched on anywhere (tracebacks in 500 bodies).
5. No ``print`` or log call whose arguments mention a variable named token, secret or password
   (runtime code). Log the ``jti``, family id or a hash prefix instead.
6. ``compare_digest`` is called only in chalicelib/untrusted.py (runtime code): everything else
   uses ``untrusted.same``, which compares bytes (``compare_digest`` raises on non-ASCII ``str``,
   so a hostile token became a 500).
7. Runtime code opens no network connection itself: no import of ``socket``, ``ssl``,
   ``http.client``, ``urllib.request`` or ``asyncio``. AWS is reached through botocore
   (chalicelib/aws.py), whose HTTP, TLS and signing are well kept and tested.

Usage: ``python scripts/check_rules.py [paths...]`` (default: the repository). Exit status 1 and one
``path:line: rule: message`` line per finding.
"""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SKIP_DIRS = {".venv", ".venv-tools", "build", ".git", ".chalice", "node_modules", "__pycache__"}
VALIDATION_PATH = {
    "chalicelib/key_objects.py",
    "chalicelib/access_tokens.py",
    "chalicelib/authorizer.py",
    "chalicelib/introspection.py",
}
SECRETISH = re.compile(
    r"(secret|passw(or)?d|(^|_)hash(es)?($|_)|_hash$|digest|(^|_)mac($|_)|signature)", re.I
)
# Settings that hold the NAME of a Secrets Manager secret, not its value.
SECRET_IDS = {"signing_keys_secret", "public_keys_secret", "pepper_secret", "secret_id"}
LOGGED_NAME = re.compile(r"(^|_)(tokens?|secrets?|passw(or)?ds?)($|_)", re.I)
LOG_METHODS = {"debug", "info", "warning", "warn", "error", "exception", "critical", "log"}
LOGGER_NAMES = re.compile(r"^(log|logger|logging|_log|LOG|LOGGER)$")
HMAC_ALGS = {"HS256", "HS384", "HS512"}
SAFE_COMPARE = "chalicelib/untrusted.py"
# Modules that open connections; runtime code leaves that to botocore (rule 7).
NETWORK_MODULES = {"socket", "ssl", "http.client", "urllib.request", "asyncio"}


def is_runtime(rel: str) -> bool:
    return rel == "app.py" or rel.startswith("chalicelib/")


def _identifier(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
        return str(node.slice.value)
    return None


def _names_in(node: ast.AST) -> Iterator[str]:
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name | ast.Attribute):
            found = _identifier(sub)
            if found:
                yield found


class Checker(ast.NodeVisitor):
    def __init__(self, rel: str) -> None:
        self.rel = rel
        self.findings: list[tuple[int, str, str]] = []

    def report(self, node: ast.AST, rule: str, message: str) -> None:
        self.findings.append((getattr(node, "lineno", 0), rule, message))

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr in ("decode", "decode_complete"):
            owner = _identifier(func.value)
            if owner == "jwt" or func.attr == "decode_complete":
                algs = next((k.value for k in node.keywords if k.arg == "algorithms"), None)
                if not isinstance(algs, ast.List | ast.Tuple) or not algs.elts:
                    self.report(node, "jwt-algorithms", f"{func.attr} without algorithms=[...]")
        if (
            is_runtime(self.rel)
            and self.rel != SAFE_COMPARE
            and _identifier(func) == "compare_digest"
        ):
            self.report(node, "safe-compare", "compare_digest outside untrusted.same")
        if is_runtime(self.rel) and self._is_print_or_log(func):
            args: list[ast.expr] = [*node.args, *(k.value for k in node.keywords)]
            for arg in args:
                for name in _names_in(arg):
                    if LOGGED_NAME.search(name) and not name.endswith(("_type", "_hint")):
                        self.report(node, "logged-secret", f"{name!r} passed to print/log")
        self.generic_visit(node)

    @staticmethod
    def _is_print_or_log(func: ast.AST) -> bool:
        if isinstance(func, ast.Name):
            return func.id == "print"
        if isinstance(func, ast.Attribute) and func.attr in LOG_METHODS:
            owner = _identifier(func.value)
            return bool(owner and LOGGER_NAMES.match(owner))
        return False

    def visit_Compare(self, node: ast.Compare) -> None:
        if is_runtime(self.rel) and any(isinstance(op, ast.Eq | ast.NotEq) for op in node.ops):
            operands = [node.left, *node.comparators]
            if not any(isinstance(o, ast.Constant) for o in operands):
                for operand in operands:
                    name = _identifier(operand)
                    if name and name not in SECRET_IDS and SECRETISH.search(name):
                        self.report(
                            node,
                            "compare-digest",
                            f"{name!r} compared with ==/!= (use untrusted.same)",
                        )
                        break
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        value = node.value
        if (
            self.rel in VALIDATION_PATH
            and isinstance(value, str)
            and (value.upper() in HMAC_ALGS or value.lower() == "none")
        ):
            self.report(node, "no-hmac-or-none", f"{value!r} in the validation path")
        self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._check_module(node, alias.name)
        self.generic_visit(node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.module and node.level == 0:
            self._check_module(node, node.module)
            for alias in node.names:  # ``from http import client``
                self._check_module(node, f"{node.module}.{alias.name}")
        self.generic_visit(node)

    def _check_module(self, node: ast.AST, module: str) -> None:
        if is_runtime(self.rel) and module in NETWORK_MODULES:
            self.report(node, "no-sockets", f"{module} imported (reach AWS through botocore)")

    def visit_Assign(self, node: ast.Assign) -> None:
        for target in node.targets:
            if (
                isinstance(target, ast.Attribute)
                and target.attr == "debug"
                and isinstance(node.value, ast.Constant)
                and node.value.value is True
            ):
                self.report(node, "no-debug", "debug = True")
        self.generic_visit(node)


def check_source(rel: str, source: str) -> list[tuple[int, str, str]]:
    checker = Checker(rel)
    checker.visit(ast.parse(source, filename=rel))
    return sorted(checker.findings)


def python_files(paths: list[Path]) -> Iterator[Path]:
    for path in paths:
        if path.is_file() and path.suffix == ".py":
            yield path
        elif path.is_dir():
            for found in sorted(path.rglob("*.py")):
                if not SKIP_DIRS.intersection(found.relative_to(path).parts):
                    yield found


def main(argv: list[str]) -> int:
    paths = [Path(a).resolve() for a in argv] or [ROOT]
    failures = 0
    for path in python_files(paths):
        rel = path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else str(path)
        for line, rule, message in check_source(rel, path.read_text(encoding="utf-8")):
            print(f"{rel}:{line}: {rule}: {message}")
            failures += 1
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
