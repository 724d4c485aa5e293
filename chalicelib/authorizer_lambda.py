"""The authorizer Lambda's entry point as deployed: a plain handler, without Chalice.

API Gateway invokes it with a REST ``TOKEN`` or ``REQUEST`` event, or an HTTP API payload 2.0
event, and reads back a policy (or a simple response), an error whose message is ``Unauthorized``
(401), or any other error (500, turned into 503 by infra/gateway-responses.yaml).
``app.tessera_authorizer`` does the same through Chalice's wrapper (TOKEN events only); Chalice
needs it to wire Tessera's own demo routes and to run it under ``chalice local``. In AWS the
function's handler is this module instead (``infra/package.py`` sets it in the packaged stack,
``infra/wire.py`` after ``chalice deploy``): importing ``app`` would load Chalice, which alone costs
as much as a bare Chalice app's whole cold start, for a function that never routes a request
(BENCHMARKS.md, cold start).

Both entry points call ``chalicelib.authorizer.handle_event``, so they answer alike;
tests/test_authorizer*.py run every TOKEN case through both.
"""

from __future__ import annotations

from typing import Any

from chalicelib import snapstart, telemetry
from chalicelib.authorizer import handle_event

# What the first event loads, imported in init or, under SnapStart, before the snapshot
# (chalicelib/snapstart.py; tests/test_snapstart.py checks that nothing is left to load).
PRELOAD = (
    "chalicelib.keys",
    "chalicelib.secret_store",
    "chalicelib.api_rules_store",
    "chalicelib.grant_store",
    "chalicelib.scopes",  # scopes of the attached APIs' rules
    "cryptography.hazmat.backends.openssl",
    "encodings.idna",  # host names of the AWS endpoints
)
snapstart.prepare(PRELOAD)


@telemetry.lambda_entry
def handler(event: Any, context: Any) -> dict[str, Any]:
    """Any authorizer event: the answer, ``Unauthorized`` or ``AuthorizerUnavailable``. An event
    that is not API Gateway's is a 401 or a fault, never an allow."""
    return handle_event(event)
