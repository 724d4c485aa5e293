"""scripts/check_rules.py: each of our own rules finds its violation; the tree is clean."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _rules() -> Any:
    spec = importlib.util.spec_from_file_location("check_rules", ROOT / "scripts/check_rules.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


RULES = _rules()


def rules_found(rel: str, source: str) -> list[str]:
    return [rule for _, rule, _ in RULES.check_source(rel, source)]


@pytest.mark.parametrize(
    "source",
    [
        "jwt.decode(t, key)",
        "jwt.decode(t, key, algorithms=algs)",
        "jwt.decode(t, key, algorithms=[])",
        "_JWS.decode_complete(t, key)",
        "jwt.api_jws.decode_complete(t, key, algorithms=algs)",
    ],
)
def test_jwt_decode_without_an_algorithm_list_is_found(source):
    assert rules_found("tests/test_x.py", source) == ["jwt-algorithms"]


@pytest.mark.parametrize(
    "source",
    ['jwt.decode(t, key, algorithms=["ES256"])', "_JWS.decode_complete(t, k, algorithms=[k.alg])"],
)
def test_jwt_decode_with_an_algorithm_list_passes(source):
    assert rules_found("tests/test_x.py", source) == []


@pytest.mark.parametrize(
    "source",
    [
        "ok = secret == given",
        "ok = client.secret_hash != hash_secret(s)",
        "ok = password == other",
        "ok = expected_signature == sig",
        "ok = rec['successor_hash'] == h",
    ],
)
def test_secret_compared_with_equals_is_found(source):
    assert rules_found("chalicelib/x.py", source) == ["compare-digest"]


@pytest.mark.parametrize(
    "source",
    [
        "ok = same(secret, given)",
        'ok = grant_type == "password"',
        "ok = secret is None",
        "ok = settings.pepper_secret == other.pepper_secret",
    ],
)
def test_constant_time_and_non_secret_comparisons_pass(source):
    assert rules_found("chalicelib/x.py", source) == []


@pytest.mark.parametrize(
    "source",
    [
        "ok = hmac.compare_digest(secret, given)",
        "ok = secrets.compare_digest(a, b)",
        "ok = compare_digest(mac, expected)",
    ],
)
def test_compare_digest_outside_the_safe_compare_helper_is_found(source):
    """compare_digest raises on a non-ASCII str (a hostile CSRF token became a 500): runtime code
    compares through chalicelib.untrusted.same, which compares bytes."""
    assert rules_found("chalicelib/x.py", source) == ["safe-compare"]
    assert rules_found("chalicelib/untrusted.py", source) == []


@pytest.mark.parametrize("alg", ["HS256", "hs384", "HS512", "none", "None"])
def test_hmac_or_none_algorithm_in_the_validation_path_is_found(alg):
    assert rules_found("chalicelib/access_tokens.py", f"ALGS = ['ES256', '{alg}']") == [
        "no-hmac-or-none"
    ]


def test_hmac_algorithm_outside_the_validation_path_is_not_a_finding():
    assert rules_found("tests/test_x.py", "ALG = 'HS256'") == []


def test_debug_true_is_found():
    assert rules_found("app.py", "app.debug = True") == ["no-debug"]


@pytest.mark.parametrize(
    "source",
    [
        "print(token)",
        "log.info('issued %s', access_token)",
        "logger.warning('x', extra={'s': client.secret})",
        "log.error(f'bad {password}')",
    ],
)
def test_printing_or_logging_a_secret_is_found(source):
    assert rules_found("chalicelib/x.py", source) == ["logged-secret"]


def test_logging_a_jti_or_token_type_passes():
    source = "log.info('x', extra={'jti': claims.jti, 'hint': token_type_hint})"
    assert rules_found("chalicelib/x.py", source) == []


@pytest.mark.parametrize(
    "source",
    [
        "import socket",
        "import ssl",
        "import http.client",
        "from http import client",
        "from http.client import HTTPSConnection",
        "import urllib.request as request",
        "from socket import create_connection",
    ],
)
def test_runtime_code_opening_connections_itself_is_found(source):
    assert rules_found("chalicelib/x.py", source) == ["no-sockets"]


def test_network_modules_outside_runtime_code_and_harmless_imports_pass():
    assert rules_found("tests/test_x.py", "import socket") == []
    assert rules_found("chalicelib/x.py", "import http\nfrom urllib.parse import urlsplit") == []


def test_the_repository_follows_the_rules(capsys):
    assert RULES.main([]) == 0, capsys.readouterr().out
