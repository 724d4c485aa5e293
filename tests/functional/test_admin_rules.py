"""``admin authorizer rules put/show/delete``: how a team attaches its API to the authorizer.

Run in-process against the ``aws`` fixture's moto world, like tests/functional/test_admin.py; what
the
authorizer then answers is in tests/functional/test_authorizer_events.py.
"""

from __future__ import annotations

import io
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from chalicelib.ops import admin
from chalicelib.web import services
from tests.functional.conftest import TEST_API


@dataclass
class Run:
    status: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


@pytest.fixture
def cli(aws: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Any:
    def run(*args: str) -> Run:
        monkeypatch.setattr(sys, "stdin", io.StringIO(""))
        status = admin.main(
            ["--stage", "test", "authorizer", "rules", *args], configure=lambda s: None
        )
        out, err = capsys.readouterr()
        return Run(status, out, err)

    return run


def one_line_error(done: Run, *words: str) -> None:
    assert done.status == 2
    assert done.out == ""
    lines = done.err.strip().splitlines()
    assert len(lines) == 1, done.err
    assert lines[0].startswith("error: ")
    for word in words:
        assert word in lines[0]


ROUTES = ["--route", "GET /orders orders:read", "--route", "GET /orders/{order_id} orders:read"]


def test_put_stores_the_rule_set_and_show_prints_it(cli):
    done = cli("put", "orders", "--api", "abc123defg/prod", *ROUTES, "--json")
    assert done.status == 0, done.err
    assert done.json()["routes"][1] == {
        "method": "GET",
        "path": "/orders/{order_id}",
        "scope": "orders:read",
    }
    shown = cli("show", "orders")
    assert "abc123defg/prod" in shown.out
    assert "GET /orders/{order_id}  orders:read" in shown.out
    stored = services.api_rules_store().get("orders")
    assert stored is not None
    assert stored.apis == ("abc123defg/prod",)


def test_put_reads_a_rules_file_and_flags_replace_its_members(cli, tmp_path: Path):
    path = tmp_path / "rules.json"
    path.write_text(json.dumps({"apis": ["fromfile/x"], "routes": ["POST /orders orders:write"]}))
    done = cli("put", "orders", "--file", str(path), "--api", "abc123defg/prod", "--json")
    assert done.status == 0, done.err
    assert done.json()["apis"] == ["abc123defg/prod"]
    assert done.json()["routes"] == [{"method": "POST", "path": "/orders", "scope": "orders:write"}]


def test_put_again_replaces_the_whole_rule_set(cli):
    cli("put", "orders", "--api", "abc123defg/prod", *ROUTES)
    cli("put", "orders", "--api", "abc123defg/prod", "--route", "DELETE /orders/{id} orders:admin")
    stored = services.api_rules_store().get("orders")
    assert stored is not None
    assert [r.describe() for r in stored.rules] == ["DELETE /orders/{id}"]


def test_show_without_a_name_lists_every_rule_set(cli):
    cli("put", "orders", "--api", "abc123defg/prod", *ROUTES)
    listed = cli("show", "--json").json()
    assert {d["name"] for d in listed} == {"demo", "orders"}  # the seeded demo API is one of them


def test_delete_detaches_the_api(cli):
    cli("put", "orders", "--api", "abc123defg/prod", *ROUTES)
    assert cli("delete", "orders").status == 0
    assert services.api_rules_store().get("orders") is None
    one_line_error(cli("delete", "orders"), "no such rule set")


def test_an_api_belongs_to_one_rule_set_at_most(cli):
    one_line_error(cli("put", "other", "--api", TEST_API, *ROUTES), TEST_API, "demo")


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--route", "GET /orders orders:read"], ["API"]),
        (["--api", "abc123defg/prod"], ["routes"]),
        (["--api", "nostage", *ROUTES], ["<api-id>/<stage>"]),
        (["--api", "a/b", "--route", "GET orders orders:read"], ["start with /"]),
        (["--api", "a/b", "--route", "GET /orders"], ["METHOD /path scope"]),
        (
            [
                "--api",
                "a/b",
                "--route",
                "GET /orders/{id} orders:read",
                "--route",
                "GET /orders/export orders:admin",
            ],
            ["overlap", "cache 'route'"],
        ),
        (["--api", "a/b", *ROUTES, "--response", "simple"], ["routeKey"]),
        (["--api", "a/b", "--file", "/no/such/file.json"], ["cannot read"]),
    ],
)
def test_a_rule_set_that_cannot_be_enforced_is_refused_in_one_line(cli, args, words):
    one_line_error(cli("put", "orders", *args), *words)
    assert services.api_rules_store().get("orders") is None


def test_showing_an_unknown_rule_set_is_an_error(cli):
    one_line_error(cli("show", "nope"), "no such rule set")
