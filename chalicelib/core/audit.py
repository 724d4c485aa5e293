"""Audit events and request logs: one JSON object per line on stdout (CloudWatch Logs in Lambda).

Two kinds of line, both from here so their shape is decided in one place:

- ``{"log": "request", ...}``: one per HTTP request (request id, endpoint, method, client id, grant
  type, outcome, error code, status, latency in ms), written by the HTTP middleware in app.py.
- ``{"log": "audit", "event": ...}``: security events — ``token_issued``,
  ``refresh_rotated``, ``refresh_reuse`` (family revoked), ``refresh_family_revoked``,
  ``access_token_revoked``, ``code_reuse``, ``lockout``, ``login_refused``, ``user_unlocked``,
  ``key_rotated`` — through ``event()``.

Both carry the invocation's ``function_request_id`` (Lambda's request id; ``request_id`` of a
request line is API Gateway's) and ``cold_start`` (chalicelib.core.telemetry), and are written
whatever ``TESSERA_LOG_LEVEL`` says: they are the record of what happened.

Logging policy: never a token, secret, password or raw Authorization header. Identify tokens
by ``jti`` or family id, users by id (or a hash prefix of the username, see ``login_guard``),
clients by id. Values that come from the request (client id, grant type) are logged only when
they have the shape of what they claim to be, so a secret pasted into the wrong field never
reaches a log line.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Protocol, TextIO

from chalicelib.core import telemetry

if TYPE_CHECKING:  # for the checker only: nothing to build at a cold start

    class HttpRequest(Protocol):
        """What the request line reads of a request (Chalice's ``Request`` has it): core knows no
        HTTP framework."""

        @property
        def method(self) -> str: ...
        @property
        def path(self) -> str: ...
        @property
        def headers(self) -> Mapping[str, str]: ...
        @property
        def context(self) -> Mapping[str, object]: ...
        @property
        def raw_body(self) -> bytes | str: ...

    class HttpResponse(Protocol):
        """What it reads of the answer (Chalice's ``Response``)."""

        @property
        def status_code(self) -> int: ...
        @property
        def body(self) -> object: ...


_CLIENT_ID = re.compile(r"^[A-Za-z0-9_\-.]{1,64}$")
_GRANT_TYPES = frozenset({"client_credentials", "password", "refresh_token", "authorization_code"})
# Fields an audit event may carry; anything else is dropped (a guard against a caller passing a
# token by mistake). Values must be str, int, bool or None.
ALLOWED_FIELDS = frozenset(
    {
        "client_id",
        "jti",
        "family",
        "sub",
        "user",
        "scope",
        "grant_type",
        "reason",
        "failures",
        "locked_seconds",
        "kid",
        "token_type",
        "count",
        "stage",
        "state",
        "kind",
    }
)


def to_stderr() -> None:
    """Command-line tools (the admin command): stdout is their result, audit lines go to stderr."""
    to_stream("stderr")


def to_stdout() -> None:
    to_stream("stdout")


def to_stream(name: str) -> str:
    """Send the lines to ``"stdout"`` (Lambda), ``"stderr"`` or nowhere (``"off"``: the admin
    command unless asked, whose operator has no use for JSON lines); returns the previous one.
    The other JSON lines of the process (chalicelib.core.telemetry) go the same way."""
    return telemetry.use_stream(name)


class _StdoutHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stdout`` is at the time (Lambda's, or a test's capture)."""

    def __init__(self) -> None:
        super().__init__(sys.stdout)

    @property
    def stream(self) -> TextIO | None:
        return telemetry.stream()

    @stream.setter
    def stream(self, _value: object) -> None:
        pass


def _logger() -> logging.Logger:
    log = logging.getLogger("tessera.audit")
    if not log.handlers:
        handler = _StdoutHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False  # Chalice's "tessera" logger would add a non-JSON prefix
    return log


def _emit(record: dict[str, object]) -> None:
    if telemetry.stream() is None:
        return
    record.update(telemetry.fields())
    try:
        line = json.dumps(record, separators=(",", ":"), sort_keys=True, default=str)
    except (TypeError, ValueError):  # pragma: no cover - only str/int/bool values are passed
        return
    _logger().info(line)


def event(name: str, **fields: object) -> None:
    """One audit line. Unknown field names and non-scalar values are dropped, not logged."""
    record: dict[str, object] = {"log": "audit", "event": name, "ts": int(time.time())}
    for key, value in fields.items():
        if key in ALLOWED_FIELDS and (value is None or isinstance(value, str | int | bool)):
            record[key] = value
    _emit(record)


def safe_client_id(value: object) -> str | None:
    return value if isinstance(value, str) and _CLIENT_ID.match(value) else None


def _request_facts(request: HttpRequest) -> tuple[str | None, str | None]:
    """The claimed client id and grant type of a form POST, parsed leniently (never raises)."""
    try:
        from chalicelib.core.forms import header, parse_basic, parse_form

        headers = dict(request.headers or {})
        client_id: str | None = None
        grant_type: str | None = None
        authorization = header(headers, "authorization")
        if authorization and authorization.strip().lower().startswith("basic "):
            client_id = parse_basic(authorization)[0]
        if request.method == "POST":
            body = request.raw_body  # bytes from Chalice; its annotation also allows str
            form = parse_form(
                header(headers, "content-type"),
                body.encode("utf-8") if isinstance(body, str) else body,
            )
            client_id = client_id or form.get("client_id")
            grant_type = form.get("grant_type")
    except Exception:  # a malformed request: the endpoint itself answers it
        return None, None
    return safe_client_id(client_id), grant_type if grant_type in _GRANT_TYPES else None


def _error_code(response: HttpResponse) -> str | None:
    if response.status_code < 400:
        return None
    try:
        body = response.body
        data: object = json.loads(body) if isinstance(body, str | bytes) else body
        code = data.get("error") if isinstance(data, dict) else None
    except ValueError:
        return None
    return code if isinstance(code, str) and re.fullmatch(r"[a-z_]{1,40}", code) else None


def outcome(status: int) -> str:
    if status < 400:
        return "ok"
    if status >= 500:
        return "fault"
    return "rejected"


def log_request[Req: HttpRequest, Resp: HttpResponse](
    request: Req, get_response: Callable[[Req], Resp]
) -> Resp:
    """Run the request, then write its request line (also when the handler raised)."""
    started = time.perf_counter()
    response = None
    try:
        response = get_response(request)
        return response
    finally:
        elapsed = round((time.perf_counter() - started) * 1000, 2)
        status = response.status_code if response is not None else 500
        client_id, grant_type = _request_facts(request)
        context = request.context or {}
        path = context.get("resourcePath") or request.path
        endpoint = path if isinstance(path, str) else None
        error = _error_code(response) if response is not None else "server_error"
        telemetry.count_answer(endpoint, status, error, grant_type)
        _emit(
            {
                "log": "request",
                "request_id": context.get("requestId"),
                "endpoint": endpoint,
                "method": request.method,
                "client_id": client_id,
                "grant_type": grant_type,
                "status": status,
                "outcome": outcome(status),
                "error": error,
                "latency_ms": elapsed,
            }
        )
