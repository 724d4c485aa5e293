"""Helpers shared by the refresh, revocation, introspection and grants tests (not fixtures)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from chalicelib import aws, services
from tests.conftest import basic, body, form_post

PASSWORD = "correct horse battery"
SCOPES = ["people:read", "articles:read"]


def password_client(make_client: Any, **kwargs: Any) -> dict[str, Any]:
    kwargs.setdefault("grant_types", ["password", "refresh_token"])
    kwargs.setdefault("scopes", list(SCOPES))
    client: dict[str, Any] = make_client(**kwargs)
    return client


def auth(client: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": basic(client["client_id"], client["client_secret"])}


def login(app_client: Any, client: dict[str, Any], username: str = "alice", **extra: str) -> Any:
    params = {"grant_type": "password", "username": username, "password": PASSWORD, **extra}
    r = form_post(app_client, "/oauth2/token", params, auth(client))
    assert r.status_code == 200, r.body
    return body(r)


def refresh(app_client: Any, client: dict[str, Any], token: str, **extra: str) -> Any:
    params = {"grant_type": "refresh_token", "refresh_token": token, **extra}
    return form_post(app_client, "/oauth2/token", params, auth(client))


def revoke(app_client: Any, client: dict[str, Any], token: str, **extra: str) -> Any:
    return form_post(app_client, "/oauth2/revoke", {"token": token, **extra}, auth(client))


def introspect(app_client: Any, client: dict[str, Any], token: str, **extra: str) -> Any:
    return form_post(app_client, "/oauth2/introspect", {"token": token, **extra}, auth(client))


def claims(access_token: str) -> dict[str, Any]:
    """The payload of a JWT we issued (read without verification: our own token)."""
    from jwt.utils import base64url_decode

    payload: dict[str, Any] = json.loads(base64url_decode(access_token.split(".")[1]))
    return payload


def set_env(monkeypatch: pytest.MonkeyPatch, **values: str) -> None:
    """Change settings for the rest of the test: env first, then rebuild every service."""
    from chalicelib.config import settings

    for k, v in values.items():
        monkeypatch.setenv(k, v)
    services.reset()
    settings()


def table_items(prefix: str) -> list[dict[str, Any]]:
    """Every item whose pk starts with ``prefix`` (a scan: tests only)."""
    from chalicelib import table
    from chalicelib.config import settings

    ddb = aws.client("dynamodb")
    items = ddb.scan(TableName=settings().table_name)["Items"]
    return [table.from_item(i) for i in items if i["pk"]["S"].startswith(prefix)]


@contextmanager
def failing(operation: str, code: str, reasons: list[str] | None = None) -> Iterator[list[int]]:
    """Make every ``operation`` call of the services' DynamoDB client fail with ``code``.

    A ``before-call`` handler on the client's own event system answers with the parsed error
    (no request reaches moto), so botocore itself raises what it raises for that answer: the
    service's modeled exception for ``code``. For TransactionCanceledException, ``reasons`` are the
    per-item cancellation codes. Yields a one-element list counting the failed calls.
    """
    from botocore.awsrequest import AWSResponse, HTTPHeaders

    calls = [0]
    client = aws.client("dynamodb")
    parsed: dict[str, Any] = {
        "Error": {"Code": code, "Message": "injected"},
        "ResponseMetadata": {"HTTPStatusCode": 400},
    }
    if reasons is not None:
        parsed["CancellationReasons"] = [{"Code": r} for r in reasons]

    # Returns Any: the stubs type event handlers as returning None, but a before-call handler's
    # (response, parsed) pair is what replaces the call.
    def handler(**_: Any) -> Any:
        calls[0] += 1
        return AWSResponse("https://dynamodb.invalid", 400, HTTPHeaders(), None), parsed

    event = f"before-call.dynamodb.{operation}"
    client.meta.events.register(event, handler, unique_id="tessera-test-fault")
    try:
        yield calls
    finally:
        client.meta.events.unregister(event, unique_id="tessera-test-fault")


@contextmanager
def serialized_emulator() -> Iterator[None]:
    """Make each in-process moto call atomic, as each DynamoDB call is.

    moto applies a TransactWriteItems item by item with no lock (and rolls back by restoring a copy
    of the whole table), so two threads inside it can interleave in ways DynamoDB never allows.
    One lock around each emulated call restores DynamoDB's per-call isolation; how OUR code
    interleaves its calls is untouched, which is what the concurrency tests exercise.
    """
    from moto.core.botocore_stubber import BotocoreStubber

    lock = threading.Lock()
    original: Callable[..., Any] = BotocoreStubber.__call__

    def locked(self: Any, *args: Any, **kwargs: Any) -> Any:
        with lock:
            return original(self, *args, **kwargs)

    BotocoreStubber.__call__ = locked  # type: ignore[method-assign]
    try:
        yield
    finally:
        BotocoreStubber.__call__ = original  # type: ignore[method-assign]
