"""AWS clients: one botocore configuration for every call, created lazily and cached per container.

botocore's session is used directly instead of boto3: boto3 pulls s3transfer and multiprocessing and
costs ~55 ms more at cold start (see BENCHMARKS.md). Standard retry mode with timeouts far below
API Gateway's 29 s limit; when retries run out, stores raise ``BackendUnavailable``.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from chalicelib.faults import BackendUnavailable, ServiceError

_lock = threading.Lock()
_clients: dict[str, Any] = {}
_session: Any = None

# Error codes that mean "the service is struggling", not "your request is wrong".
TRANSIENT_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "InternalServiceError",
        "InternalFailure",
        "ServiceUnavailable",
        "TransactionConflictException",
        "TransactionInProgressException",
        "LimitExceededException",
        "Throttling",
    }
)


def client(service: str) -> Any:
    """The container's client for ``service`` (``dynamodb`` or ``secretsmanager``)."""
    found = _clients.get(service)
    if found is not None:
        return found
    with _lock:
        found = _clients.get(service)
        if found is None:
            found = _clients[service] = _new_client(service)
        return found


def _new_client(service: str) -> Any:
    global _session
    import botocore.session

    if _session is None:
        _session = botocore.session.get_session()
    return _session.create_client(service, config=_config())


def _config() -> Any:
    import botocore.config

    return botocore.config.Config(
        retries={"mode": "standard", "total_max_attempts": 3},  # 3 attempts in all
        connect_timeout=2,
        read_timeout=3,
        tcp_keepalive=True,
    )


def reset() -> None:
    """Forget cached clients (tests, and the local stack when it changes endpoints)."""
    global _session
    with _lock:
        _clients.clear()
        _session = None


# --- Lambda SnapStart (chalicelib.snapstart) -------------------------------------------------

SERVICES = ("dynamodb", "secretsmanager")
_PLACEHOLDER = "preload"  # keys of the clients that only load models: never resolved, never sent


def preload() -> None:
    """Before a snapshot: botocore imported and each service's model, endpoint rules and defaults
    loaded into the container's session. The clients that load them get placeholder keys and are
    dropped unused: the session resolves no credentials and no connection is opened, so the
    snapshot holds neither."""
    global _session
    import botocore.session

    with _lock:
        if _session is None:
            _session = botocore.session.get_session()
        for service in SERVICES:
            _session.create_client(
                service,
                config=_config(),
                aws_access_key_id=_PLACEHOLDER,
                aws_secret_access_key=_PLACEHOLDER,
            )


def after_restore() -> None:
    """After a restore: this container's own clients, built now (credentials resolved here, each
    connection opened by this container). A client built before the snapshot is closed: its
    pooled connections would be the same TLS sessions in every restored container. Its session,
    which cached its credentials, is replaced by one that keeps only the loaded models."""
    global _session
    with _lock:
        stale = list(_clients.values())
        _clients.clear()
        if stale and _session is not None:
            import botocore.session

            loader = _session.get_component("data_loader")
            _session = botocore.session.get_session()
            _session.register_component("data_loader", loader)
    for old in stale:
        old.close()
    for service in SERVICES:
        client(service)


def service_errors() -> tuple[type[Exception], ...]:
    """The exception types of a service's error answer, for ``except`` clauses in stores:
    ``ServiceError`` (chalicelib.aws_lite) and, once botocore is loaded, its ``ClientError``.
    A process that never loaded botocore has no botocore client that could raise one."""
    loaded = sys.modules.get("botocore.exceptions")
    if loaded is None:
        return (ServiceError,)
    return (ServiceError, loaded.ClientError)


def error_response(exc: BaseException) -> dict[str, Any]:
    """The parsed error answer of a ``ClientError`` or ``ServiceError`` ({} for anything else):
    ``Error.Code`` plus members such as ``CancellationReasons`` or ``Item``."""
    response = getattr(exc, "response", None)
    return response if isinstance(response, dict) else {}


def error_code(exc: BaseException) -> str:
    error = error_response(exc).get("Error")
    return str(error.get("Code", "")) if isinstance(error, dict) else ""


@contextmanager
def translate_faults(service: str) -> Iterator[None]:
    """Turn any botocore failure left after retries into ``BackendUnavailable``.

    Stores catch the outcomes they expect (a failed condition) inside this block; whatever
    escapes is a fault of the service or of the deployment, and the caller answers 503.
    """
    try:
        yield
    except BackendUnavailable:
        raise
    except ServiceError as exc:
        raise BackendUnavailable(service, exc.code) from exc
    except Exception as exc:
        # botocore's errors, looked up only on failure and only if botocore is loaded: the
        # stores' happy path, and a process on chalicelib.aws_lite alone, never import it.
        loaded = sys.modules.get("botocore.exceptions")
        if loaded is not None and isinstance(exc, loaded.ClientError | loaded.BotoCoreError):
            raise BackendUnavailable(service, error_code(exc) or type(exc).__name__) from exc
        raise
