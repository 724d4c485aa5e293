"""Orders: another team's small API, protected by Tessera's authorizer by ARN.

Nothing here imports or copies Tessera. The authorizer is a Lambda function named by its ARN
(``TESSERA_AUTHORIZER_ARN``, per stage in .chalice/config.json) and attached as a Chalice
``CustomAuthorizer`` (a REST TOKEN authorizer, cached per token for ``ttl_seconds``). Which scope
each route needs is this team's data, registered with Tessera's admin command from rules.json:

    python -m chalicelib.admin --stage STAGE authorizer rules put orders \\
        --file examples/orders/rules.json --api <api-id>/<stage>

API Gateway passes the authorizer's context to each route: ``sub`` (who is calling; the client id
for client_credentials), ``client_id``, ``scope``, ``jti``, all strings. Orders live in memory: this
is an example of attaching the authorizer, not of storing orders.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
from typing import Any

from chalice.app import Chalice, CustomAuthorizer, Response

app = Chalice(app_name="orders")
app.debug = False

# The function's ARN; API Gateway calls it through the Lambda invocation URI of its region.
AUTHORIZER_ARN = os.environ.get(
    "TESSERA_AUTHORIZER_ARN", "arn:aws:lambda:us-east-1:123456789012:function:tessera-authorizer"
)
_partition, _region = AUTHORIZER_ARN.split(":")[1], AUTHORIZER_ARN.split(":")[3]
tessera = CustomAuthorizer(
    "tessera",
    header="Authorization",
    authorizer_uri=(
        f"arn:{_partition}:apigateway:{_region}:lambda:path/2015-03-31/functions/"
        f"{AUTHORIZER_ARN}/invocations"
    ),
    ttl_seconds=300,  # the policy covers every route the token may call (rules.json: cache token)
)

_lock = threading.Lock()
_orders: dict[str, dict[str, Any]] = {}
MAX_ITEM = 100


def _caller() -> str:
    """The token's subject, as the authorizer passed it."""
    request = app.current_request
    context = (request.context if request else {}).get("authorizer") or {}
    sub = context.get("sub")
    return sub if isinstance(sub, str) else ""


def _json(body: Any, status: int = 200) -> Response:
    return Response(
        body=json.dumps(body),
        status_code=status,
        headers={"Content-Type": "application/json", "Cache-Control": "no-store"},
    )


@app.route("/orders", methods=["GET"], authorizer=tessera)
def list_orders() -> Response:
    """The caller's orders (scope orders:read)."""
    mine = [o for o in _orders.values() if o["owner"] == _caller()]
    return _json({"orders": sorted(mine, key=lambda o: o["id"])})


@app.route("/orders", methods=["POST"], authorizer=tessera)
def create_order() -> Response:
    """A new order of the caller (scope orders:write): ``{"item": str, "quantity": int}``."""
    request = app.current_request
    try:
        doc = json.loads((request.raw_body if request else b"") or b"")
    except (ValueError, UnicodeDecodeError):
        doc = None
    item = doc.get("item") if isinstance(doc, dict) else None
    quantity = doc.get("quantity") if isinstance(doc, dict) else None
    if not isinstance(item, str) or not 0 < len(item) <= MAX_ITEM:
        return _json({"error": "invalid_request", "error_description": "item is required"}, 400)
    if not isinstance(quantity, int) or isinstance(quantity, bool) or not 0 < quantity <= 1000:
        return _json({"error": "invalid_request", "error_description": "quantity 1-1000"}, 400)
    order: dict[str, Any] = {"id": secrets.token_hex(6), "owner": _caller(), "item": item}
    order["quantity"] = quantity
    with _lock:
        _orders[order["id"]] = order
    return _json(order, 201)


@app.route("/orders/{order_id}", methods=["GET"], authorizer=tessera)
def get_order(order_id: str) -> Response:
    """One of the caller's orders (scope orders:read); another caller's is not found."""
    order = _orders.get(order_id)
    if order is None or order["owner"] != _caller():
        return _json({"error": "not_found"}, 404)
    return _json(order)


@app.route("/orders/{order_id}/invoice", methods=["GET"], authorizer=tessera)
def get_invoice(order_id: str) -> Response:
    """Deliberately absent from rules.json: the authorizer denies a route nobody registered, and
    the policy cached for ``GET /orders/{order_id}`` (``GET/orders/*``, whose ``*`` also matches
    ``/``) carries a Deny for every deeper path, so it never reaches this one either. Registering
    it needs ``"cache": "route"`` (it lies under a parameter; README, attaching the authorizer)."""
    return _json({"order": order_id, "total": "0.00"})
