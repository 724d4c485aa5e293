"""Rule sets of the APIs that attach the authorizer (chalicelib.core.api_rules), in DynamoDB.

Items, in the single table (chalicelib.store.table): pk ``APIRULES``, sk ``API#<name>``, holding
the rule
set's document (``name``, ``apis``, ``cache``, ``response``, ``routes``) and ``updated``. All rule
sets share one partition, so the authorizer reads every one of them with a single Query: one round
trip per cold container, then one per ``rules_cache_ttl`` (``TESSERA_RULES_CACHE_TTL``, 60 s)
while warm. Its role may Query that partition and nothing else of it.

``CachedRules`` is the authorizer's view: rules indexed by ``<api-id>/<stage>``. Like the key
sets (chalicelib.tokens.keys), the last good read keeps serving while DynamoDB is unreachable, for
``key_stale_max`` seconds, then every call fails closed; after a failed read the table is not asked
again for ``FETCH_FAILURE_BACKOFF`` seconds. A stored rule set that no longer parses is left out
(its APIs are then unknown: denied) and logged by name.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from chalicelib.core import api_rules
from chalicelib.core.api_rules import RulesError, RuleSet
from chalicelib.core.clock import Clock
from chalicelib.core.faults import BackendUnavailable
from chalicelib.store import aws, table

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import QueryInputTypeDef

log = logging.getLogger("tessera.api_rules")

PARTITION = "APIRULES"
FETCH_FAILURE_BACKOFF = 10.0


def _key(name: str) -> table.Item:
    return table.key(PARTITION, f"API#{name}")


class RulesStore:
    def __init__(self, ddb: DynamoDBClient, table_name: str) -> None:
        self._ddb = ddb
        self._table = table_name

    def put(self, rule_set: RuleSet, now: int) -> None:
        """Create or replace the rule set named ``rule_set.name``."""
        doc = api_rules.to_document(rule_set)
        item = table.to_item({table.PK: PARTITION, table.SK: f"API#{rule_set.name}", **doc})
        item["updated"] = table.to_attr(now)
        with aws.translate_faults("dynamodb"):
            self._ddb.put_item(TableName=self._table, Item=item)

    def get(self, name: str) -> RuleSet | None:
        with aws.translate_faults("dynamodb"):
            found = self._ddb.get_item(TableName=self._table, Key=_key(name), ConsistentRead=True)
        item = found.get("Item")
        return api_rules.parse_rule_set(table.from_item(item)) if item else None

    def delete(self, name: str) -> bool:
        with aws.translate_faults("dynamodb"):
            gone = self._ddb.delete_item(
                TableName=self._table, Key=_key(name), ReturnValues="ALL_OLD"
            )
        return bool(gone.get("Attributes"))

    def documents(self) -> list[dict[str, object]]:
        """Every stored rule set as stored, in one Query (more only past 1 MB of rules)."""
        params: QueryInputTypeDef = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :p",
            "ExpressionAttributeValues": {":p": {"S": PARTITION}},
            "ConsistentRead": True,
        }
        found: list[dict[str, object]] = []
        with aws.translate_faults("dynamodb"):
            while True:
                page = self._ddb.query(**params)
                found.extend(table.from_item(item) for item in page.get("Items", []))
                more = page.get("LastEvaluatedKey")
                if not more:
                    return found
                params["ExclusiveStartKey"] = more

    def all(self) -> list[RuleSet]:
        """Every rule set that parses (a malformed one is logged and left out)."""
        out = []
        for doc in self.documents():
            try:
                out.append(api_rules.parse_rule_set(doc))
            except RulesError as exc:
                log.warning(
                    "stored rule set ignored", extra={"rule_set": doc.get("name"), "why": str(exc)}
                )
        return out


class CachedRules:
    """Rule sets by API, re-read after ``ttl``; kept through outages for ``stale_max``."""

    def __init__(self, store: RulesStore, clock: Clock, ttl: float, stale_max: float) -> None:
        self._store = store
        self._clock = clock
        self._ttl = ttl
        self._stale_max = stale_max
        self._index: dict[str, RuleSet | None] | None = None
        self._fetched_at = 0.0
        self._failed_at = float("-inf")
        self._lock = threading.Lock()

    def for_api(self, api: str) -> RuleSet | None:
        """The rule set of ``<api-id>/<stage>``, or None (unknown, or claimed by two sets)."""
        return self._current().get(api)

    def _current(self) -> dict[str, RuleSet | None]:
        now = self._clock.now()
        found = self._index
        if found is not None and now - self._fetched_at < self._ttl:
            return found
        with self._lock:
            if self._index is not None and now - self._fetched_at < self._ttl:
                return self._index
            if now - self._failed_at >= FETCH_FAILURE_BACKOFF:
                try:
                    self._index = api_rules.index(self._store.all())
                except BackendUnavailable:
                    self._failed_at = now
                else:
                    self._fetched_at = now
                    self._failed_at = float("-inf")
                    return self._index
            if self._index is not None and now - self._fetched_at < self._stale_max:
                return self._index
            raise BackendUnavailable("dynamodb", "authorizer rules unavailable")
