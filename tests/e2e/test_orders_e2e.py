"""Another team's API attached to Tessera's authorizer, end to end through ``make local``'s stack.

examples/orders is a separate Chalice app (its own .chalice/config.json) that names the authorizer
by ARN (a ``CustomAuthorizer``) and runs on its own ``chalice local`` port beside Tessera, against
the same emulator (infra.local_attached). Its rules are registered here the way its team would,
with the admin command and its rules.json: nothing of the orders API is in Tessera's code.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests
from requests.auth import HTTPBasicAuth

from infra.local_stack import ORDERS_LOCAL_API
from tests.e2e.conftest import ROOT, LocalStack

pytestmark = pytest.mark.e2e

TIMEOUT = 30
RULES_TTL = 2  # TESSERA_RULES_CACHE_TTL of the local stage


def _token(stack: LocalStack, scope: str) -> tuple[str, dict[str, Any]]:
    client: dict[str, Any] = stack.admin_json(
        "client", "create", "--name", stack.unique("orders"),
        "--grant-types", "client_credentials", "--scope", scope,
    )  # fmt: skip
    r = requests.post(
        stack.token_url,
        data={"grant_type": "client_credentials"},
        auth=HTTPBasicAuth(client["client_id"], client["client_secret"]),
        timeout=TIMEOUT,
    )
    assert r.status_code == 200, r.text
    return r.json()["access_token"], client


def _call(
    stack: LocalStack, method: str, path: str, token: str | None = None, body: Any = None
) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.request(
        method, stack.orders_url + path, headers=headers, json=body, timeout=TIMEOUT
    )


@pytest.fixture(scope="module")
def orders(local_stack: LocalStack) -> dict[str, Any]:
    """The orders API before and after its team registers its rules."""
    token, client = _token(local_stack, "orders:read orders:write")
    before = _call(local_stack, "GET", "/orders", token)
    put = local_stack.admin(
        "authorizer", "rules", "put", "orders",
        "--file", str(ROOT / "examples" / "orders" / "rules.json"), "--api", ORDERS_LOCAL_API,
    )  # fmt: skip
    assert put.returncode == 0, put.stderr
    time.sleep(RULES_TTL + 0.5)  # a warm authorizer re-reads the rules within their TTL
    return {"before": before, "token": token, "client": client}


def test_an_api_nobody_registered_is_denied(orders):
    assert orders["before"].status_code == 403


def test_orders_are_created_and_read_with_the_registered_scopes(local_stack, orders):
    token = orders["token"]
    created = _call(local_stack, "POST", "/orders", token, {"item": "tea", "quantity": 2})
    assert created.status_code == 201, created.text
    order = created.json()
    assert order["owner"] == orders["client"]["client_id"]  # the authorizer's context: sub
    assert _call(local_stack, "GET", f"/orders/{order['id']}", token).json() == order
    listed = _call(local_stack, "GET", "/orders", token).json()["orders"]
    assert order in listed


def test_wrong_scope_is_403_insufficient_scope(local_stack, orders):
    reader, _ = _token(local_stack, "orders:read")
    r = _call(local_stack, "POST", "/orders", reader, {"item": "tea", "quantity": 1})
    assert r.status_code == 403
    assert r.headers["WWW-Authenticate"] == (
        'Bearer realm="tessera", error="insufficient_scope", scope="orders:write"'
    )
    assert r.json()["error"] == "insufficient_scope"
    assert _call(local_stack, "GET", "/orders", reader).status_code == 200


def test_token_of_another_api_scope_is_403(local_stack, orders):
    people, _ = _token(local_stack, "people:read")
    assert _call(local_stack, "GET", "/orders", people).status_code == 403


def test_no_token_is_401(local_stack, orders):
    r = _call(local_stack, "GET", "/orders")
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"] == 'Bearer realm="tessera"'


def test_revoked_token_is_401_invalid_token(local_stack, orders):
    token, client = _token(local_stack, "orders:read")
    assert _call(local_stack, "GET", "/orders", token).status_code == 200
    revoked = requests.post(
        local_stack.base_url + "/oauth2/revoke",
        data={"token": token, "token_type_hint": "access_token"},
        auth=HTTPBasicAuth(client["client_id"], client["client_secret"]),
        timeout=TIMEOUT,
    )
    assert revoked.status_code == 200
    r = _call(local_stack, "GET", "/orders", token)
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"] == 'Bearer realm="tessera", error="invalid_token"'


def test_a_route_under_a_parameter_is_not_reached_through_it(local_stack, orders):
    token = orders["token"]
    order = _call(local_stack, "POST", "/orders", token, {"item": "cake", "quantity": 1}).json()
    assert _call(local_stack, "GET", f"/orders/{order['id']}", token).status_code == 200
    assert _call(local_stack, "GET", f"/orders/{order['id']}/invoice", token).status_code == 403


def test_the_registered_rules_are_shown_by_the_admin_command(local_stack, orders):
    shown = local_stack.admin_json("authorizer", "rules", "show", "orders")
    assert shown["apis"] == [ORDERS_LOCAL_API]
    assert {(r["method"], r["path"]) for r in shown["routes"]} == {
        ("GET", "/orders"), ("POST", "/orders"), ("GET", "/orders/{order_id}"),
    }  # fmt: skip
