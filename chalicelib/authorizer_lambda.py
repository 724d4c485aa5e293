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

Both entry points call ``handle_event`` here, so they answer alike;
tests/functional/test_authorizer*.py run every TOKEN case through both.
"""

from __future__ import annotations

import logging

from chalicelib.core import telemetry
from chalicelib.web import snapstart
from chalicelib.web.authorizer import AuthorizerUnavailable, Unauthorized, read_event

log = logging.getLogger("tessera.authorizer")

# What the first event loads, imported in init or, under SnapStart, before the snapshot
# (chalicelib/web/snapstart.py; tests/functional/test_snapstart.py checks that nothing is left
# to load).
PRELOAD = (
    "chalicelib.tokens.keys",
    "chalicelib.store.secret_store",
    "chalicelib.store.api_rules_store",
    "chalicelib.store.grant_store",
    "chalicelib.core.scopes",  # scopes of the attached APIs' rules
    "cryptography.hazmat.backends.openssl",
    "encodings.idna",  # host names of the AWS endpoints
)
snapstart.prepare(PRELOAD)


@telemetry.lambda_entry
def handler(event: object, context: object) -> dict[str, object]:
    """An authorizer event of every shape: the answer, ``Unauthorized`` or
    ``AuthorizerUnavailable``. An event that is not API Gateway's is a 401 or a fault, never an
    allow."""
    return handle_event(event)


def handle(authorization: object, method_arn: str) -> dict[str, object]:
    """A REST TOKEN authorization: what Chalice's built-in authorizer passes on."""
    event = {"type": "TOKEN", "authorizationToken": authorization, "methodArn": method_arn}
    return handle_event(event)


def handle_event(event: object) -> dict[str, object]:
    """The authorizer Lambda's body: an answer, ``Unauthorized``, or ``AuthorizerUnavailable``."""
    # The wiring is imported here, not by chalicelib.web.authorizer: the authorizer's rules and
    # validation know nothing of how they are built (no import circle with services).
    from chalicelib.web import services

    try:
        call = read_event(event)
        result = services.authorizer().answer(call)
        telemetry.count_authorizer_answer(result)
        return result
    except Unauthorized:
        telemetry.count("AuthorizerDeny")
        raise
    except Exception as exc:  # any fault denies: never an allow, never the details
        log.error("authorizer fault", extra={"error_type": type(exc).__name__})
    telemetry.count("AuthorizerError")
    raise AuthorizerUnavailable()
