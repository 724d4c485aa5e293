"""AWS clients: one botocore configuration for every call, created lazily and cached per container.

botocore's session is used directly instead of boto3: boto3 pulls s3transfer and multiprocessing and
costs ~55 ms more at cold start (see BENCHMARKS.md). Standard retry mode with timeouts far below
API Gateway's 29 s limit; when retries run out, stores raise ``BackendUnavailable``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from chalicelib.faults import BackendUnavailable

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
    import botocore.config
    import botocore.session

    if _session is None:
        _session = botocore.session.get_session()
    config = botocore.config.Config(
        retries={"mode": "standard", "total_max_attempts": 3},  # 3 attempts in all
        connect_timeout=2,
        read_timeout=3,
        tcp_keepalive=True,
    )
    return _session.create_client(service, config=config)


def reset() -> None:
    """Forget cached clients (tests, and the local stack when it changes endpoints)."""
    global _session
    with _lock:
        _clients.clear()
        _session = None


def error_code(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


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
    except Exception as exc:
        # Imported only on failure: the stores' happy path (and chalicelib.aws_lite, whose
        # failures are already BackendUnavailable) never loads botocore for this.
        from botocore.exceptions import BotoCoreError, ClientError

        if isinstance(exc, ClientError | BotoCoreError):
            raise BackendUnavailable(service, error_code(exc) or type(exc).__name__) from exc
        raise
