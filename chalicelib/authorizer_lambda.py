"""The authorizer Lambda's entry point as deployed: a plain handler, without Chalice.

API Gateway invokes a TOKEN authorizer with ``{"type", "authorizationToken", "methodArn"}`` and
reads back a policy, or an error whose message is ``Unauthorized`` (401), or any other error
(500, turned into 503 by infra/gateway-responses.yaml). ``app.tessera_authorizer`` does the same
through Chalice's wrapper; Chalice needs it to wire the routes and to run the authorizer under
``chalice local``. In AWS the function's handler is this module instead (``infra/package.py``
sets it in the packaged stack, ``infra/wire.py`` after ``chalice deploy``): importing ``app``
would load Chalice, which alone costs as much as a bare Chalice app's whole cold start, for a
function that never routes a request (BENCHMARKS.md, cold start).

Both entry points call ``chalicelib.authorizer.handle`` with the same two values, so they answer
alike; tests/test_authorizer*.py run every case through both.
"""

from __future__ import annotations

from typing import Any

from chalicelib import telemetry
from chalicelib.authorizer import handle


@telemetry.lambda_entry
def handler(event: Any, context: Any) -> dict[str, Any]:
    """A TOKEN authorizer event: the policy, ``Unauthorized`` or ``AuthorizerUnavailable``.

    A malformed event (not from API Gateway) has no bearer token (401) or no parsable method ARN
    (a fault): neither can allow.
    """
    if not isinstance(event, dict):
        event = {}
    method_arn = event.get("methodArn")
    if not isinstance(method_arn, str):
        method_arn = ""
    return handle(event.get("authorizationToken"), method_arn)
