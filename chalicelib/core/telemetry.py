"""What one Lambda invocation tells CloudWatch: its log lines and its metrics.

- An invocation is opened around each event: the API handler's request middleware (app.py), the
  authorizer's handler (chalicelib/authorizer_lambda.py) and the rotation function
  (``lambda_entry``). It records the Lambda request id and whether it is the process's first
  (the cold start), and at its end writes the metrics it counted.
- Log lines: ``tessera.*`` loggers write one JSON object per line on stdout: level, logger,
  message, the record's scalar ``extra`` fields, ``function_request_id`` and ``cold_start``;
  their level is the stage setting ``TESSERA_LOG_LEVEL``. chalicelib.core.audit adds the same two
  fields to its request and audit lines (those are written at any level).
- Metrics: ``count(name)`` adds one to a metric of README "Metrics (the contract)"; the
  invocation's counts leave as one CloudWatch embedded metric format (EMF) document on stdout,
  namespace ``Tessera``, unit ``Count``, dimensions ``service``, ``Stage`` and the metric's own
  (``Grant``, ``Step``) in a directive of its own, so it spreads to no other metric. A second
  document is written only if one dimension took two values in one invocation. Outside an
  invocation (the admin command) counts are dropped: only Lambda's logs become metrics.

Standard library only, modules the functions load anyway (json, logging, threading): the
authorizer's cold start pays for this one (README "Why not Powertools": measured).
"""

from __future__ import annotations

import functools
import json
import logging
import sys
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TextIO, TypedDict

from chalicelib.core import config

NAMESPACE = "Tessera"
SERVICE = "tessera"
UNIT = "Count"
BASE_DIMENSIONS = ("service", "Stage")
GRANTS = frozenset({"authorization_code", "refresh_token", "client_credentials", "password"})
STEPS = frozenset({"createSecret", "setSecret", "testSecret", "finishSecret"})
# The contract: each metric, and the dimension it adds to (service, Stage) with the values that
# dimension may take. A fixed set: every distinct dimension value is a metric CloudWatch bills.
METRICS: dict[str, tuple[str, frozenset[str]] | None] = {
    "TokensIssued": ("Grant", GRANTS),
    "InvalidClient": None,
    "InvalidGrant": None,
    "Lockouts": None,
    "RefreshReuseDetected": None,
    "AuthorizerAllow": None,
    "AuthorizerDeny": None,
    "AuthorizerError": None,
    "BackendUnavailable": None,
    "KeyCacheStaleFallback": None,
    "RotationStep": ("Step", STEPS),
    "RotationFailure": None,
}
# OAuth error codes (RFC 6749 §5.2) counted when an answer carries them.
ERROR_METRICS = {"invalid_client": "InvalidClient", "invalid_grant": "InvalidGrant"}
ISSUING_ROUTE = "/oauth2/token"  # its 200 is a token issued

log = logging.getLogger("tessera.telemetry")

# (metric name, its own dimension as (name, value), or None) -> count in this invocation
_Key = tuple[str, tuple[str, str] | None]

if TYPE_CHECKING:  # for the checker only: nothing to build at a cold start

    class _Directive(TypedDict):
        """An EMF document's ``CloudWatchMetrics`` entry: the metrics sharing one dimension set."""

        Namespace: str
        Dimensions: list[list[str]]
        Metrics: list[dict[str, str]]


class _Invocation:
    __slots__ = ("cold_start", "counts", "request_id")

    def __init__(self, request_id: str | None, cold_start: bool) -> None:
        self.request_id = request_id
        self.cold_start = cold_start
        self.counts: dict[_Key, int] = {}


_state = threading.local()  # the open invocation of this thread (chalice local serves threads)
# The next invocation is this process's first, and nobody waited for the process to start: with
# provisioned concurrency Lambda starts it ahead of any request (as Powertools counts it).
_first = [not config.initialized_ahead()]


def restored() -> None:
    """A container restored from a SnapStart snapshot: its next invocation waited for the restore,
    and is its cold start (chalicelib.web.snapstart)."""
    _first[0] = True


def _current() -> _Invocation | None:
    current: _Invocation | None = getattr(_state, "current", None)
    return current


# --- invocations ----------------------------------------------------------------------------


class Invocation:
    """``with Invocation(context):`` around one event. ``context`` is Lambda's (its
    ``aws_request_id``), or None where there is none (tests, Chalice's local authorizer)."""

    __slots__ = ("_context", "_outer")

    def __init__(self, context: object) -> None:
        self._context = context
        self._outer: _Invocation | None = None

    def __enter__(self) -> None:
        _configure_logging()
        request_id = getattr(self._context, "aws_request_id", None)
        self._outer = _current()
        _state.current = _Invocation(request_id if isinstance(request_id, str) else None, _first[0])
        _first[0] = False

    def __exit__(self, *_exc: object) -> None:
        finished = _current()
        _state.current = self._outer
        if finished is not None and finished.counts:
            try:
                _write_metrics(finished)
            except (OSError, ValueError):  # stdout gone: the answer still goes back
                return


def lambda_entry[E, C, R](handler: Callable[[E, C], R]) -> Callable[[E, C], R]:
    """A Lambda handler ``(event, context)`` run as one invocation."""

    @functools.wraps(handler)
    def run(event: E, context: C) -> R:
        with Invocation(context):
            return handler(event, context)

    return run


def fields() -> dict[str, object]:
    """The invocation's fields for a log line (none outside an invocation)."""
    current = _current()
    if current is None:
        return {}
    return {"function_request_id": current.request_id, "cold_start": current.cold_start}


# --- metrics --------------------------------------------------------------------------------


def count(name: str, dimension: str | None = None) -> None:
    """One more ``name`` in this invocation; ``dimension`` is the value of the metric's own
    dimension (``Grant``, ``Step``). Never raises: a metric or value outside the contract is
    dropped with a warning, so a counting mistake cannot fail a request."""
    current = _current()
    if current is None:
        return
    if name not in METRICS:
        log.warning("metric outside the contract dropped", extra={"metric": name})
        return
    own = METRICS[name]
    key: _Key
    if own is None:
        key = (name, None)
    elif dimension in own[1]:
        key = (name, (own[0], dimension))
    else:
        log.warning("metric dimension outside the contract dropped", extra={"metric": name})
        return
    current.counts[key] = current.counts.get(key, 0) + 1


def count_answer(endpoint: str | None, status: int, error: str | None, grant: str | None) -> None:
    """The metrics an HTTP answer stands for: a token issued (the token endpoint's 200, after
    its writes committed) per grant type, and the client and grant errors."""
    if status == 200 and endpoint == ISSUING_ROUTE and grant is not None:
        count("TokensIssued", grant)
    elif error in ERROR_METRICS:
        count(ERROR_METRICS[error])


def count_authorizer_answer(answer: object) -> None:
    """``AuthorizerAllow`` for a policy that allows anything, else ``AuthorizerDeny``."""
    count("AuthorizerAllow" if _allows(answer) else "AuthorizerDeny")


def _allows(answer: object) -> bool:
    if not isinstance(answer, dict):
        return False
    if "isAuthorized" in answer:  # an HTTP API's simple response
        return answer["isAuthorized"] is True
    statements = (answer.get("policyDocument") or {}).get("Statement") or []
    return any(isinstance(s, dict) and s.get("Effect") == "Allow" for s in statements)


def rotation_failed(event: object, exc: BaseException) -> None:
    """``RotationFailure``, and a line naming the step and the error's type (the Lambda runtime
    then logs the error itself, and Secrets Manager retries the step)."""
    count("RotationFailure")
    step = event.get("Step") if isinstance(event, dict) else None
    logging.getLogger("tessera.rotation").error(
        "rotation step failed",
        extra={"step": step if step in STEPS else None, "error_type": type(exc).__name__},
    )


def documents(counts: dict[_Key, int], stage: str, now: float) -> list[dict[str, object]]:
    """The EMF documents for an invocation's counts: one, unless a dimension took two values
    (its second value goes into a second document, which the first's top-level keys would
    contradict)."""
    # Each document with its metric directives (the list inside its "_aws"), kept at hand typed.
    docs: list[tuple[dict[str, object], list[_Directive]]] = []
    for (name, own), value in counts.items():
        dims = [*BASE_DIMENSIONS, own[0]] if own is not None else list(BASE_DIMENSIONS)
        found = next(((d, ds) for d, ds in docs if _fits(d, name, own)), None)
        if found is None:
            directives: list[_Directive] = []
            doc: dict[str, object] = {
                "_aws": {"Timestamp": int(now * 1000), "CloudWatchMetrics": directives},
                "service": SERVICE,
                "Stage": stage,
            }
            docs.append((doc, directives))
        else:
            doc, directives = found
        directive = next((d for d in directives if d["Dimensions"] == [dims]), None)
        if directive is None:
            directive = {"Namespace": NAMESPACE, "Dimensions": [dims], "Metrics": []}
            directives.append(directive)
        directive["Metrics"].append({"Name": name, "Unit": UNIT})
        if own is not None:
            doc[own[0]] = own[1]
        doc[name] = value
    return [doc for doc, _ in docs]


def _fits(doc: dict[str, object], name: str, own: tuple[str, str] | None) -> bool:
    return name not in doc and (own is None or doc.get(own[0], own[1]) == own[1])


def _stage() -> str:
    try:
        return config.settings().stage
    except config.ConfigError:  # a broken deployment still says which stage it is
        return config.stage_name()


def _write_metrics(finished: _Invocation) -> None:
    extra = {"function_request_id": finished.request_id, "cold_start": finished.cold_start}
    for doc in documents(finished.counts, _stage(), time.time()):
        doc.update(extra)
        _write(json.dumps(doc, separators=(",", ":")))


_stream = ["stdout"]
STREAMS = ("stdout", "stderr", "off")


def use_stream(name: str) -> str:
    """Where the process's JSON lines go: ``stdout`` (Lambda), ``stderr`` or ``off`` (command-line
    tools, whose stdout is their result: chalicelib.core.audit.to_stream). Returns the previous
    one."""
    if name not in STREAMS:
        raise ValueError(name)
    previous, _stream[0] = _stream[0], name
    return previous


def stream() -> TextIO | None:
    """``sys.stdout`` (or stderr) as it is now, Lambda's or a test's capture; None when off."""
    out: TextIO | None = None if _stream[0] == "off" else getattr(sys, _stream[0])
    return out


def _write(line: str) -> None:
    out = stream()
    if out is None:
        return
    out.write(line + "\n")
    out.flush()


# --- log lines ------------------------------------------------------------------------------

# A LogRecord's own attributes: the rest of its __dict__ is what ``extra=`` added.
_RECORD_ATTRS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonLines(logging.Formatter):
    """One JSON object per record: what happened, in which invocation. ``extra`` values that are
    not str, int, float, bool, None or a list of those are left out (never a repr of an object
    that might hold a secret); an exception is named by its type only."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "ts": round(record.created, 3),
        }
        for key, value in record.__dict__.items():
            if key not in _RECORD_ATTRS and key not in line and _scalar_or_list(value):
                line[key] = value
        if record.exc_info and record.exc_info[0] is not None:
            line["error_type"] = record.exc_info[0].__name__
        line.update(fields())
        return json.dumps(line, separators=(",", ":"))


def _scalar_or_list(value: object) -> bool:
    if isinstance(value, list | tuple):
        return all(_scalar_or_list(v) and not isinstance(v, list | tuple) for v in value)
    return value is None or isinstance(value, str | int | float | bool)


class _Stdout(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        try:
            _write(self.format(record))
        except Exception:  # a line that cannot be written never fails the request
            self.handleError(record)


def _configure_logging() -> None:
    """The ``tessera`` loggers: JSON lines on stdout at the stage's level (on every invocation:
    the level is read from the environment each time, a dict lookup)."""
    root = logging.getLogger("tessera")
    if not any(isinstance(h, _Stdout) for h in root.handlers):
        handler = _Stdout()
        handler.setFormatter(JsonLines())
        root.addHandler(handler)
        # Lambda's root handler would write each line again, in its own text format.
        root.propagate = False
    try:
        level = config.log_level()
        wrong = False
    except config.ConfigError:
        level, wrong = "INFO", True
    if root.level != logging.getLevelName(level):
        root.setLevel(level)
    if wrong:
        log.warning("TESSERA_LOG_LEVEL is not a level: logging at INFO")
