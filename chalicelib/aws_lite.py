"""A standard-library client for the AWS JSON protocol: the functions' cold-start path.

The API handler and the authorizer call DynamoDB (items, queries, transactions) and Secrets
Manager (``GetSecretValue``). Importing botocore, building a session and a client per service
costs several times the rest of a cold start (BENCHMARKS.md), so this module speaks the JSON
protocol directly: a POST to ``/`` with ``X-Amz-Target``, signed with Signature Version 4
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv4-signing.html) using ``hmac`` and
``hashlib``, over ``chalicelib.http_client``. Credentials, region and endpoint come from the
environment Lambda sets (``config.aws_environment``). One keep-alive connection per endpoint,
short timeouts, a bounded retry with jittered backoff on throttling, 5xx and connection failures;
whatever still fails raises ``BackendUnavailable``, as ``aws.translate_faults`` does for botocore.
An error answer that retrying cannot fix (a failed condition) raises ``faults.ServiceError``,
shaped like botocore's ``ClientError``, which stores catch through ``aws.service_errors()``.

Clients are duck-typed like the botocore clients the stores use (``get_item``,
``transact_write_items``...), so every store works unchanged on either. Responses are the
service's JSON as is, which is what botocore returns for the types we store (``S``, ``N``,
``BOOL``, ``SS``, ``L``, ``M``: no binary attribute, no timestamp we read). Selected by
``TESSERA_AWS_CLIENT=lite``; the admin CLI and the rotation function use botocore.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from chalicelib.aws import TRANSIENT_CODES
from chalicelib.config import AwsEnvironment, ConfigError, aws_environment
from chalicelib.faults import BackendUnavailable, ServiceError
from chalicelib.http_client import Connection, HttpError

ALGORITHM = "AWS4-HMAC-SHA256"


class Service(NamedTuple):
    name: str  # our name, the one BackendUnavailable reports (as aws.translate_faults)
    signing_name: str
    endpoint_prefix: str
    target_prefix: str
    content_type: str
    endpoint_env: str  # the service-specific AWS_ENDPOINT_URL_<ID> variable


SERVICES = {
    "secretsmanager": Service(
        "secretsmanager",
        "secretsmanager",
        "secretsmanager",
        "secretsmanager",
        "application/x-amz-json-1.1",
        "AWS_ENDPOINT_URL_SECRETS_MANAGER",
    ),
    "dynamodb": Service(
        "dynamodb",
        "dynamodb",
        "dynamodb",
        "DynamoDB_20120810",
        "application/x-amz-json-1.0",
        "AWS_ENDPOINT_URL_DYNAMODB",
    ),
}

MAX_ATTEMPTS = 3  # as chalicelib.aws: 3 attempts in all
TIMEOUT = 2.0  # seconds per attempt (connect, and each read)
BUDGET = 4.0  # no new attempt after this many seconds (the authorizer times out at 5 s)
BACKOFF_BASE = 0.05
BACKOFF_CAP = 0.5


class AwsError(Exception):
    """An error answer of the service (status, code and its JSON document), or a transport
    failure (status 0)."""

    def __init__(self, status: int, code: str, document: dict[str, Any] | None = None) -> None:
        super().__init__(f"{status} {code}")
        self.status = status
        self.code = code
        self.document = document or {}

    @property
    def transient(self) -> bool:
        return (
            self.status == 0
            or self.status >= 500
            or self.status == 429
            or (self.code in TRANSIENT_CODES)
        )


# -- Signature Version 4 --------------------------------------------------------------------------


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def signing_key(secret_key: str, date: str, region: str, service: str) -> bytes:
    k_date = _hmac(("AWS4" + secret_key).encode(), date)
    return _hmac(_hmac(_hmac(k_date, region), service), "aws4_request")


def authorization(
    *,
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    body: bytes,
    access_key: str,
    secret_key: str,
    region: str,
    service: str,
    amz_date: str,
) -> str:
    """The ``Authorization`` header for a request whose ``headers`` (all signed) include ``host``
    and ``x-amz-date`` (and ``x-amz-security-token`` with temporary credentials).

    ``path`` must already be URI-encoded and ``query`` canonical (sorted, encoded); the JSON
    protocol always sends ``/`` and no query.
    """
    canonical = {k.lower(): " ".join(v.split()) for k, v in headers.items()}
    names = sorted(canonical)
    signed = ";".join(names)
    request = "\n".join(
        [
            method,
            path,
            query,
            "".join(f"{n}:{canonical[n]}\n" for n in names),
            signed,
            hashlib.sha256(body).hexdigest(),
        ]
    )
    date = amz_date[:8]
    scope = f"{date}/{region}/{service}/aws4_request"
    to_sign = "\n".join([ALGORITHM, amz_date, scope, hashlib.sha256(request.encode()).hexdigest()])
    mac = hmac.new(signing_key(secret_key, date, region, service), to_sign.encode(), "sha256")
    return (
        f"{ALGORITHM} Credential={access_key}/{scope}, SignedHeaders={signed}, "
        f"Signature={mac.hexdigest()}"
    )


def _jitter(cap: float) -> float:
    """Full jitter in [0, cap] (spreads the retries of many containers apart). ``secrets`` is
    imported on the first retry only: most cold starts never retry."""
    import secrets

    return cap * secrets.randbelow(1001) / 1000


def amz_date(now: float) -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))


# -- the client -----------------------------------------------------------------------------------


def error_document(body: bytes) -> dict[str, Any]:
    """The JSON object of an error answer ({} if it is not one)."""
    try:
        doc = json.loads(body)
    except ValueError:
        return {}
    return doc if isinstance(doc, dict) else {}


def error_code(status: int, headers: Mapping[str, str], body: bytes) -> str:
    """The error code of a JSON-protocol error answer, as botocore reads it."""
    raw = headers.get("x-amzn-errortype", "")
    if not raw:
        doc = error_document(body)
        raw = str(doc.get("__type") or doc.get("code") or "")
    code = raw.split(":", 1)[0].rsplit("#", 1)[-1]
    return code or f"HTTP{status}"


class Client:
    """One AWS JSON-protocol service, one keep-alive connection (thread-safe: calls serialise)."""

    def __init__(
        self,
        service: str,
        env: AwsEnvironment,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.service = SERVICES[service]
        self._env = env
        endpoint = env.endpoint(self.service.endpoint_env) or (
            f"https://{self.service.endpoint_prefix}.{env.region}.amazonaws.com"
        )
        parts = urlsplit(endpoint)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ConfigError(f"bad endpoint URL for {service}")
        self.endpoint = endpoint
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._netloc = parts.netloc
        self._path = parts.path or "/"
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._conn: Connection | None = None

    # The operations the functions use (the admin CLI and rotation use botocore), named and
    # shaped like botocore's client methods: keyword parameters in, the service's JSON out.
    def get_secret_value(self, **params: Any) -> dict[str, Any]:
        return self.call("GetSecretValue", params)

    def get_item(self, **params: Any) -> dict[str, Any]:
        return self.call("GetItem", params)

    def batch_get_item(self, **params: Any) -> dict[str, Any]:
        return self.call("BatchGetItem", params)

    def query(self, **params: Any) -> dict[str, Any]:
        return self.call("Query", params)

    def put_item(self, **params: Any) -> dict[str, Any]:
        return self.call("PutItem", params)

    def update_item(self, **params: Any) -> dict[str, Any]:
        return self.call("UpdateItem", params)

    def delete_item(self, **params: Any) -> dict[str, Any]:
        return self.call("DeleteItem", params)

    def transact_write_items(self, **params: Any) -> dict[str, Any]:
        # As botocore does (the parameter's idempotency-token trait): one token per call, the
        # same on every retry, so a transaction that committed but whose answer was lost is not
        # run again against its own outcome (its conditions would fail).
        if "ClientRequestToken" not in params:
            params["ClientRequestToken"] = os.urandom(16).hex()
        return self.call("TransactWriteItems", params)

    def call(self, operation: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """One operation with bounded retries. An error answer that retrying cannot fix raises
        ``ServiceError`` at once (stores expect some: a failed condition); throttling, 5xx and
        transport failures are retried, then raise ``BackendUnavailable``."""
        body = json.dumps(params, separators=(",", ":")).encode()
        started = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            try:
                return self._attempt(operation, body)
            except AwsError as exc:
                if not exc.transient:
                    raise ServiceError(self.service.name, exc.code, exc.document) from None
                spent = time.monotonic() - started
                if attempt >= MAX_ATTEMPTS or spent >= BUDGET:
                    raise BackendUnavailable(self.service.name, exc.code) from exc
            delay = _jitter(min(BACKOFF_CAP, BACKOFF_BASE * 2**attempt))
            self._sleep(delay)

    def _attempt(self, operation: str, body: bytes) -> dict[str, Any]:
        headers = {
            "host": self._netloc,
            "content-type": self.service.content_type,
            "x-amz-date": amz_date(self._clock()),
            "x-amz-target": f"{self.service.target_prefix}.{operation}",
        }
        creds = self._env
        if creds.session_token:
            headers["x-amz-security-token"] = creds.session_token
        headers["authorization"] = authorization(
            method="POST",
            path=self._path,
            query="",
            headers=headers,
            body=body,
            access_key=creds.access_key_id,
            secret_key=creds.secret_access_key,
            region=creds.region,
            service=self.service.signing_name,
            amz_date=headers["x-amz-date"],
        )
        headers["content-length"] = str(len(body))
        with self._lock:
            status, answer_headers, data = self._exchange(body, headers)
        if status == 200:
            try:
                doc = json.loads(data) if data else {}
            except ValueError:
                raise AwsError(status, "InvalidResponse") from None
            if not isinstance(doc, dict):
                raise AwsError(status, "InvalidResponse")
            return doc
        raise AwsError(status, error_code(status, answer_headers, data), error_document(data))

    def _exchange(self, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        """POST over the kept-alive connection. A connection the server closed while idle is
        reopened once and the request sent again: it was never answered, and the server had
        not read it (``HttpError.stale``). Transport failures are ``AwsError(0)``."""
        for attempt in (1, 2):
            conn = self._conn or self._connect()
            try:
                answer = conn.post(self._path, headers, body)
            except HttpError as exc:
                if exc.stale and attempt == 1:
                    continue
                raise AwsError(0, exc.reason) from exc
            return answer.status, answer.headers, answer.body
        raise AssertionError("unreachable")  # pragma: no cover

    def _connect(self) -> Connection:
        tls = _tls_context() if self._https else None
        port = self._port or (443 if self._https else 80)
        self._conn = Connection(self._host, port, tls=tls, timeout=TIMEOUT)
        return self._conn

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def close(self) -> None:
        with self._lock:
            self._close()


_lock = threading.Lock()
_clients: dict[str, Client] = {}
_tls: list[Any] = []


def _tls_context() -> Any:
    """One verifying TLS context per container (loading the CA store costs a few ms)."""
    if not _tls:
        import ssl

        _tls.append(ssl.create_default_context())
    return _tls[0]


def client(service: str) -> Client:
    """The container's lite client for ``service`` (``dynamodb`` or ``secretsmanager``)."""
    found = _clients.get(service)
    if found is not None:
        return found
    with _lock:
        found = _clients.get(service)
        if found is None:
            found = _clients[service] = Client(service, aws_environment())
        return found


def reset() -> None:
    """Forget cached clients and close their connections (tests; the local stack)."""
    with _lock:
        for found in _clients.values():
            found.close()
        _clients.clear()
        _tls.clear()
