"""AWS calls answered from responses captured once from moto, and counted.

``Recorder`` (capture, under moto) and ``Replayer`` (measurement, no moto in the process) hook
botocore's ``before-send`` event on our own clients: a response returned there ends the call
before any network I/O, so what is measured is our code plus botocore's request building, signing
and response parsing, which Lambda pays too. Responses are keyed by operation and the item or
secret the request names, one map per scenario, so a replayed request sees exactly what the
captured one saw.
"""

from __future__ import annotations

import base64
import json
from collections import Counter
from typing import Any

Canned = dict[str, dict[str, Any]]
Answer = tuple[int, dict[str, str], bytes]  # status, headers, body
# Key sets, peppers and client records are read once per container (then cached) whatever the
# first request is: their responses serve every scenario.
SHARED_OPERATIONS = frozenset({"GetSecretValue"})
SHARED_PREFIXES = ("GetItem:CLIENT#",)


def request_key(operation: str, body: bytes | str | None) -> str:
    """``Op`` or ``Op:<pk or secret id>``, from the JSON body of a DynamoDB/Secrets Manager call."""
    if not body:
        return operation
    try:
        doc = json.loads(body)
    except ValueError:
        return operation
    if not isinstance(doc, dict):
        return operation
    if isinstance(doc.get("Key"), dict):
        pk = doc["Key"].get("pk", {})
        if isinstance(pk, dict) and "S" in pk:
            return f"{operation}:{pk['S']}"
    if isinstance(doc.get("SecretId"), str):
        version = doc.get("VersionStage") or doc.get("VersionId")
        suffix = f"@{version}" if operation == "GetSecretValue" and version else ""
        return f"{operation}:{doc['SecretId']}{suffix}"
    return operation


def count_items(operation: str, body: bytes | str | None) -> int:
    """How many items a batch or transaction names (DynamoDB bills per item)."""
    if operation not in {
        "BatchGetItem",
        "BatchWriteItem",
        "TransactGetItems",
        "TransactWriteItems",
    }:
        return 0
    doc = json.loads(body or b"{}")
    if operation.startswith("Transact"):
        return len(doc.get("TransactItems", []))
    total = 0
    for spec in doc.get("RequestItems", {}).values():
        total += len(spec.get("Keys", [])) if isinstance(spec, dict) else len(spec)
    return total


def _operation(event_name: str) -> str:
    return event_name.rsplit(".", 1)[-1]


class Recorder:
    """Under moto: remember each response by its request's key, per scenario."""

    def __init__(self) -> None:
        self.scenario = "setup"
        self.maps: dict[str, Canned] = {}
        self.calls: Counter[str] = Counter()
        self._pending: str | None = None
        self._pending_scenario = "setup"

    def attach(self, client: Any) -> None:
        client.meta.events.register_first("before-send", self._before_send)
        client.meta.events.register("response-received", self._received)

    def _before_send(self, request: Any, event_name: str, **_: Any) -> None:
        operation = _operation(event_name)
        self._pending = request_key(operation, request.body)
        shared = operation in SHARED_OPERATIONS or self._pending.startswith(SHARED_PREFIXES)
        self._pending_scenario = "setup" if shared else self.scenario
        self.calls[self.scenario] += 1

    def _received(self, response_dict: Any, **_: Any) -> None:
        if response_dict is None or self._pending is None:
            return
        entry = {
            "status": response_dict["status_code"],
            "headers": dict(response_dict["headers"]),
            "body": base64.b64encode(response_dict["body"]).decode("ascii"),
        }
        self.maps.setdefault(self._pending_scenario, {})[self._pending] = entry
        self._pending = None


class _Raw:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Any:
        yield self._data


class Replayer:
    """No moto: answer each call from the current scenario's map; count calls per operation."""

    def __init__(self, maps: dict[str, Canned]) -> None:
        self._maps = maps
        self.scenario = "setup"
        self.calls: Counter[str] = Counter()
        self.items: Counter[str] = Counter()  # items named by batch and transaction calls
        self._decoded: dict[tuple[str, str], tuple[int, dict[str, str], bytes]] = {}

    def attach(self, client: Any) -> None:
        client.meta.events.register_first("before-send", self._before_send)

    def reset_counts(self) -> None:
        self.calls.clear()
        self.items.clear()

    def _before_send(self, request: Any, event_name: str, **_: Any) -> Any:
        from botocore.awsrequest import AWSResponse, HTTPHeaders

        status, headers, body = self._answer(_operation(event_name), request.body)
        return AWSResponse(request.url, status, HTTPHeaders.from_dict(headers), _Raw(body))

    def _answer(self, operation: str, body: bytes | str | None) -> Answer:
        self.calls[operation] += 1
        self.items[operation] += count_items(operation, body)
        key = request_key(operation, body)
        found = self._lookup(key) or self._lookup(operation)
        if found is None:
            raise RuntimeError(f"no canned response for {key} in scenario {self.scenario}")
        return found

    def _lookup(self, key: str) -> tuple[int, dict[str, str], bytes] | None:
        cache_key = (self.scenario, key)
        hit = self._decoded.get(cache_key)
        if hit is not None:
            return hit
        scenario_map = self._maps.get(self.scenario, {})
        entry = scenario_map.get(key)
        if entry is None:
            # A response captured while setting up (e.g. the key set) serves every scenario.
            entry = self._maps.get("setup", {}).get(key)
        if entry is None:
            return None
        decoded = (int(entry["status"]), dict(entry["headers"]), base64.b64decode(entry["body"]))
        self._decoded[cache_key] = decoded
        return decoded
