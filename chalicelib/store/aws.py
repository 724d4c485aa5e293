"""AWS clients: the one botocore configuration of every call, each client built once per container.

Every stage, the local stack and the tests use these clients; stores receive them injected
(``chalicelib.web.services``). botocore's session is used directly instead of boto3: boto3 pulls
s3transfer and multiprocessing and costs ~55 ms more at cold start. Standard retry mode with
bounded attempts and timeouts far below API Gateway's 29 s limit; what still fails after the
retries becomes ``BackendUnavailable`` (``translate_faults``): the HTTP layer answers 503.

botocore is imported when the first client is built, never at import: the authorizer's module
graph stays free of it until its first event. The client types come from the published stub
packages (``mypy-boto3-dynamodb``, ``mypy-boto3-secretsmanager``, ``botocore-stubs``) and are
imported for the type checker only.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Literal, overload

from chalicelib.core.faults import BackendUnavailable

if TYPE_CHECKING:
    from botocore.client import BaseClient
    from botocore.config import Config
    from botocore.session import Session
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_secretsmanager.client import SecretsManagerClient

Service = Literal["dynamodb", "secretsmanager"]

# 3 attempts in all; connect 1 s, read 2 s. DynamoDB and Secrets Manager answer in milliseconds,
# so these only bound a brownout. Worst case for one call, every attempt timing out plus two
# backoffs (at most 1 s and 2 s): 3 x 3 s + 3 s = 12 s, inside the API function's 15 s timeout,
# so a brownout is answered 503 + Retry-After, not a Lambda timeout
# (tests/functional/test_faults.py).
MAX_ATTEMPTS = 3
CONNECT_TIMEOUT = 1
READ_TIMEOUT = 2

_lock = threading.Lock()
_clients: dict[str, BaseClient] = {}
_session: Session | None = None


@overload
def client(service: Literal["dynamodb"]) -> DynamoDBClient: ...
@overload
def client(service: Literal["secretsmanager"]) -> SecretsManagerClient: ...
def client(service: Service) -> BaseClient:
    """The container's client for ``service``, built on first use."""
    found = _clients.get(service)
    if found is not None:
        return found
    with _lock:
        found = _clients.get(service)
        if found is None:
            found = _clients[service] = _new_client(service)
        return found


def _new_client(service: Service) -> BaseClient:
    global _session
    import botocore.session

    if _session is None:
        _session = botocore.session.get_session()
    return _session.create_client(service, config=_config())


def _config() -> Config:
    import botocore.config

    return botocore.config.Config(
        retries={"mode": "standard", "total_max_attempts": MAX_ATTEMPTS},
        connect_timeout=CONNECT_TIMEOUT,
        read_timeout=READ_TIMEOUT,
        tcp_keepalive=True,
    )


def reset() -> None:
    """Forget cached clients (tests, and the local stack when it changes endpoints)."""
    global _session
    with _lock:
        _clients.clear()
        _session = None


# --- Lambda SnapStart (chalicelib.web.snapstart) -------------------------------------------------

SERVICES: tuple[Service, ...] = ("dynamodb", "secretsmanager")
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
    build_clients()


def build_clients() -> None:
    """Every client the functions use, built now (no call is made)."""
    for service in SERVICES:
        client(service)


@contextmanager
def translate_faults(service: str) -> Iterator[None]:
    """Turn any botocore failure left after retries into ``BackendUnavailable``.

    Stores catch the outcomes they expect (a failed condition, as the client's modeled exception)
    inside this block; whatever escapes is a fault of the service or of the deployment, and the
    caller answers 503. Nothing runs here on success.
    """
    try:
        yield
    except Exception as exc:
        # Looked up only on failure; loaded with the client that raised, so this costs nothing.
        from botocore.exceptions import BotoCoreError, ClientError

        if isinstance(exc, ClientError):
            code = exc.response.get("Error", {}).get("Code") or type(exc).__name__
            raise BackendUnavailable(service, code) from exc
        if isinstance(exc, BotoCoreError):
            raise BackendUnavailable(service, type(exc).__name__) from exc
        raise
