"""The HTTP edge: Chalice requests in, JSON responses out, every failure an OAuth error.

This is the one place where protocol errors become responses. Nothing raised below it reaches the
client as a traceback: unexpected exceptions are logged (type only, never request data) and answered
with ``server_error``; backend faults with 503 ``temporarily_unavailable`` and ``Retry-After``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from chalice.app import Request, Response

from chalicelib.core import telemetry
from chalicelib.core.config import ConfigError
from chalicelib.core.errors import OAuthError, ServerError, TemporarilyUnavailable
from chalicelib.core.faults import BackendUnavailable
from chalicelib.core.forms import OAuthRequest
from chalicelib.tokens.keys import KeySetError

if TYPE_CHECKING:  # annotations only: both are imported when a page or CORS answer needs them
    from chalicelib.oauth.client_auth import ClientLookup
    from chalicelib.web.pages import Outcome

log = logging.getLogger("tessera.http")

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def json_response(
    body: object, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    merged: dict[str, str | list[str]] = {"Content-Type": "application/json"}
    merged.update(headers or {})
    return Response(
        body=json.dumps(body, separators=(",", ":")), status_code=status, headers=merged
    )


def to_oauth_request(current_request: Request) -> OAuthRequest:
    return OAuthRequest(
        method=current_request.method,
        headers=dict(current_request.headers),
        body=_raw_body(current_request),
        query=dict(current_request.query_params or {}),
        source_ip=source_ip(current_request),
    )


def source_ip(current_request: Request) -> str | None:
    """The caller's address as API Gateway saw it (``requestContext.identity.sourceIp``)."""
    ip = (current_request.context.get("identity") or {}).get("sourceIp")
    return str(ip) if ip else None


def _raw_body(current_request: Request) -> bytes:
    # Chalice declares str | bytes; it always hands over bytes (b"" without a body).
    raw = current_request.raw_body
    return raw if isinstance(raw, bytes) else raw.encode("utf-8")


def error_response(err: OAuthError) -> Response:
    headers = dict(NO_STORE)
    headers.update(err.headers)
    return json_response(err.body(), err.status, headers)


def oauth_call(handler: Callable[[], object], *, no_store: bool = True) -> Response:
    """Run an endpoint body; map every outcome to a JSON response with the right status."""
    try:
        body = handler()
    except OAuthError as err:
        return error_response(err)
    except BackendUnavailable as exc:
        log.warning("backend unavailable", extra={"service": exc.service, "reason": exc.reason})
        telemetry.count("BackendUnavailable")
        return error_response(TemporarilyUnavailable())
    except (KeySetError, ConfigError) as exc:
        log.error("deployment fault", extra={"error_type": type(exc).__name__})
        return error_response(TemporarilyUnavailable())
    except Exception as exc:
        log.error("unexpected fault", extra={"error_type": type(exc).__name__})
        return error_response(ServerError("internal error"))
    if isinstance(body, Response):
        return body
    return json_response(body, 200, NO_STORE if no_store else None)


# --- hosted pages (authorization endpoint, connected apps) ---------------------------------


def query_pairs(current_request: Request) -> list[tuple[str, str]]:
    """Query parameters as (name, value) pairs, keeping repeats so they can be refused."""
    params = current_request.query_params
    if params is None:
        return []
    return [(name, value) for name in params for value in params.getlist(name)]


def form_pairs(current_request: Request) -> list[tuple[str, str]] | None:
    """An HTML form post as pairs; None when it is not form-encoded or not UTF-8."""
    from urllib.parse import parse_qsl

    from chalicelib.core.forms import FORM, MAX_BODY, media_type

    if media_type(current_request.headers.get("content-type")) != FORM:
        return None
    raw = _raw_body(current_request)
    if len(raw) > MAX_BODY:
        return None
    try:
        return parse_qsl(raw.decode("utf-8"), keep_blank_values=True, errors="strict")
    except (UnicodeDecodeError, ValueError):
        return None


def page_cookies(current_request: Request) -> dict[str, str | None]:
    """The session and CSRF cookies by their plain names, read under the stage's wire names
    (``__Host-`` prefixed where cookies are Secure: chalicelib.oauth.sessions)."""
    from chalicelib.core.config import settings
    from chalicelib.oauth.sessions import page_cookies as read

    return read(current_request.headers.get("cookie"), secure=settings().cookie_secure)


def page_call(handler: Callable[[], Outcome]) -> Response:
    """Run a page handler (returns ``chalicelib.web.pages.Outcome``); faults become HTML pages."""
    from chalicelib.web import pages

    try:
        outcome = handler()
    except (BackendUnavailable, KeySetError, ConfigError) as exc:
        log.warning("page unavailable", extra={"error_type": type(exc).__name__})
        if isinstance(exc, BackendUnavailable):
            telemetry.count("BackendUnavailable")
        page = pages.error(
            brand="Tessera",
            title="Temporarily unavailable",
            message="Sign-in is temporarily unavailable. Please try again in a moment.",
            status=503,
        )
        headers: dict[str, str | list[str]] = {**pages.SECURITY_HEADERS, "Retry-After": "2"}
        return Response(body=page.html, status_code=page.status, headers=headers)
    except Exception as exc:
        log.error("unexpected fault", extra={"error_type": type(exc).__name__})
        page = pages.error(
            brand="Tessera", title="Something went wrong", message="Please try again.", status=500
        )
        return Response(body=page.html, status_code=500, headers=dict(pages.SECURITY_HEADERS))
    out: dict[str, str | list[str]] = dict(outcome.headers)
    if outcome.cookies:
        out["Set-Cookie"] = list(outcome.cookies)
    return Response(body=outcome.body, status_code=outcome.status, headers=out)


def with_cors(response: Response, request: OAuthRequest, clients: ClientLookup) -> Response:
    """Let a browser app read the answer when the request comes from one of its redirect URIs'
    origins (chalicelib.web.cors). The client is named by ``client_id`` in the form body."""
    from chalicelib.web.cors import allow_origin

    origin = request.headers.get("origin")
    if not origin:
        return response
    try:
        client_id = request.form().get("client_id")
        client = clients.get(client_id) if client_id else None
    except (OAuthError, BackendUnavailable):
        client = None
    allowed = allow_origin(origin, client)
    if allowed is not None:
        response.headers["Access-Control-Allow-Origin"] = allowed
        response.headers["Vary"] = "Origin"
    return response
