"""Pairwise-subject salts by sector in DynamoDB (OpenID Connect Core §8; the subjects themselves
are ``chalicelib.oauth.oidc``).

Item ``SECTOR#<sector>``/``SECTOR``: 256 random bits, made on first use by one conditional put,
so two racing makers agree on one, and never changed: a pairwise ``sub`` is stable for as long as
the user exists. Cached for the container's life.
"""

from __future__ import annotations

import base64
import secrets
import threading
from typing import TYPE_CHECKING

from chalicelib.store import aws, table

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient


def _sector_key(sector: str) -> table.Item:
    return table.key(f"SECTOR#{sector}", "SECTOR")


class SectorSalts:
    """Implements ``chalicelib.oauth.oidc.Salts``."""

    def __init__(self, ddb: DynamoDBClient, table_name: str) -> None:
        self._ddb = ddb
        self._table = table_name
        self._cache: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def salt(self, sector: str) -> bytes:
        found = self._cache.get(sector)
        if found is None:
            found = self._read(sector) or self._make(sector)
            with self._lock:
                if len(self._cache) > 10_000:
                    self._cache.clear()
                self._cache[sector] = found
        return found

    def _read(self, sector: str) -> bytes | None:
        with aws.translate_faults("dynamodb"):
            resp = self._ddb.get_item(
                TableName=self._table, Key=_sector_key(sector), ConsistentRead=True
            )
        item = resp.get("Item")
        return base64.urlsafe_b64decode(item["salt"]["S"]) if item else None

    def _make(self, sector: str) -> bytes:
        salt = secrets.token_bytes(32)
        item: table.Item = {
            **_sector_key(sector),
            "salt": {"S": base64.urlsafe_b64encode(salt).decode("ascii")},
        }
        if not table.put_new(self._ddb, self._table, item):
            return self._read(sector) or salt  # another maker won: its salt
        return salt
