"""Faults of the backing services, as the rest of the code sees them.

Stores translate AWS errors into ``BackendUnavailable`` so protocol code never sees an AWS client;
the HTTP layer answers it with 503 and ``Retry-After`` (nothing issued, nothing lost).
``ServiceError`` is an error answer of a service from ``chalicelib.aws_lite``, the counterpart of
botocore's ``ClientError``: stores catch the ones they expect (a failed condition) from either.
"""

from __future__ import annotations

from typing import Any


class BackendUnavailable(Exception):
    """DynamoDB or Secrets Manager failed after the configured retries (or timed out)."""

    def __init__(self, service: str, reason: str) -> None:
        super().__init__(f"{service}: {reason}")
        self.service = service
        self.reason = reason


class ServiceError(Exception):
    """An AWS error answer that retrying cannot fix: a failed condition, a cancelled transaction,
    a missing resource. Shaped like botocore's ``ClientError``: ``response["Error"]["Code"]`` and
    ``["Message"]``, plus the other members of the error document (``CancellationReasons``,
    ``Item``), so a store reads either the same way (``chalicelib.aws.error_code``)."""

    def __init__(self, service: str, code: str, document: dict[str, Any]) -> None:
        super().__init__(f"{service}: {code}")
        self.service = service
        self.code = code
        message = document.get("message", document.get("Message", ""))
        extra = {k: v for k, v in document.items() if k not in {"__type", "message", "Message"}}
        self.response: dict[str, Any] = {
            **extra,
            "Error": {"Code": code, "Message": str(message)},
        }
