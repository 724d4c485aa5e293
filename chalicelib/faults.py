"""Faults of the backing services, as the rest of the code sees them.

Stores translate AWS errors into ``BackendUnavailable`` (``chalicelib.aws.translate_faults``) so
protocol code never sees an AWS client; the HTTP layer answers it with 503 and ``Retry-After``
(nothing issued, nothing lost).
"""

from __future__ import annotations


class BackendUnavailable(Exception):
    """DynamoDB or Secrets Manager failed after the configured retries (or timed out)."""

    def __init__(self, service: str, reason: str) -> None:
        super().__init__(f"{service}: {reason}")
        self.service = service
        self.reason = reason
