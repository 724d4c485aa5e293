"""The login guard's counters in DynamoDB (the policy is ``chalicelib.oauth.login_guard``).

Items, in the single table (``chalicelib.store.table``):

- ``LOGIN#user#<h>``/``LOGIN``: failures of a username from anywhere;
- ``LOGIN#user#<h>``/``LOGIN#from#<source>``: failures of a username from one source;
- ``LOGIN#ip#<source>``/``LOGIN``: failures from a source, any username;
- ``LOGIN#user#<h>``/``KNOWN#<source>``: the user signed in from there (until its ``ttl``).

``<h>`` is a SHA-256 of the normalized username (people type passwords into that field, so the
name is never stored). A counter has ``failures``, ``last_failure`` and a ``ttl``; one past its
ttl counts as zero (TTL deletion lags) and starts again at 1. Attempts refused while waiting are
``refused``, which extends nothing.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from chalicelib.core.faults import BackendUnavailable
from chalicelib.core.records import Counter, LoginRecords
from chalicelib.store import aws, table
from chalicelib.store.fields import number
from chalicelib.store.users import user_from_item, user_key

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import (
        DeleteTypeDef,
        QueryInputTypeDef,
        TransactWriteItemTypeDef,
    )

SK = "LOGIN"
_TRANSACT_TRIES = 3
_BUMP_TRIES = 3


def user_pk(username: str) -> str:
    """The username's items, keyed by a hash: people type passwords into the username field,
    and a counter is kept for every name tried, so the name itself is never stored."""
    return "LOGIN#user#" + hashlib.sha256(username.encode("utf-8")).hexdigest()


def source_pk(source: str) -> str:
    return f"LOGIN#ip#{source}"


def pair_sk(source: str | None) -> str:
    return f"LOGIN#from#{source or '-'}"


def known_sk(source: str) -> str:
    return f"KNOWN#{source}"


def _ref(item: table.Item) -> tuple[str, str]:
    return item[table.PK]["S"], item[table.SK]["S"]


def _counter(item: table.Item | None, now: int) -> Counter:
    if not item:
        return Counter()
    v = table.from_item(item)
    counter = Counter(
        number(v, "failures", 0), number(v, "last_failure", 0), number(v, table.TTL, 0)
    )
    return counter if counter.expires > now else Counter()


class LoginAttempts:
    """Implements ``chalicelib.oauth.login_guard.Attempts``."""

    def __init__(self, ddb: DynamoDBClient, table_name: str) -> None:
        self._ddb = ddb
        self._table = table_name

    def read(self, username: str, source: str | None, now: int) -> LoginRecords:
        """The user and every counter of this attempt in one ``BatchGetItem``."""
        upk = user_pk(username)
        keys = [user_key(username), table.key(upk, SK), table.key(upk, pair_sk(source))]
        if source is not None:
            keys += [table.key(upk, known_sk(source)), table.key(source_pk(source), SK)]
        items = {_ref(i): i for i in table.batch_get(self._ddb, self._table, keys)}
        user_item = items.get(_ref(user_key(username)))
        known_until = 0
        spraying = Counter()
        if source is not None:
            known_until = _counter(items.get((upk, known_sk(source))), now).expires
            spraying = _counter(items.get((source_pk(source), SK)), now)
        return LoginRecords(
            user=user_from_item(user_item) if user_item and username else None,
            username=_counter(items.get((upk, SK)), now),
            pair=_counter(items.get((upk, pair_sk(source))), now),
            source=spraying,
            known_until=known_until,
        )

    def count_username(
        self, username: str, source: str | None, now: int, until: int, *, failure: bool
    ) -> tuple[int, int]:
        """Count a failure (or a refused attempt) of the username, from anywhere and from this
        source; a failure slides both counters' end to ``until``. Returns both failure counts."""
        upk = user_pk(username)
        wide = self._bump(upk, SK, now, until, failure, sliding=True)
        pair = self._bump(upk, pair_sk(source), now, until, failure, sliding=True)
        return wide, pair

    def count_source(self, source: str, now: int, until: int, *, failure: bool) -> int:
        """Count a failure (or a refused attempt) from ``source`` in a fixed window to ``until``."""
        return self._bump(source_pk(source), SK, now, until, failure)

    def clear(
        self,
        username: str,
        source: str | None,
        *,
        username_seen: int,
        pair_seen: int,
        known_until: int | None,
        now: int,
    ) -> bool:
        """Delete the username's two counters, in one transaction, only if they still count the
        failures read before (an item past its ttl counted zero), and mark the source known
        until ``known_until`` (None: leave the mark). False if a failure was counted since."""
        upk = user_pk(username)
        items: list[TransactWriteItemTypeDef] = [
            {"Delete": self._unchanged(upk, pair_sk(source), pair_seen, now)},
            {"Delete": self._unchanged(upk, SK, username_seen, now)},
        ]
        if source is not None and known_until is not None:
            mark = table.key(upk, known_sk(source))
            mark[table.TTL] = {"N": str(known_until)}
            items.append({"Put": {"TableName": self._table, "Item": mark}})
        for _ in range(_TRANSACT_TRIES):
            with aws.translate_faults("dynamodb"):
                try:
                    self._ddb.transact_write_items(TransactItems=items)
                    return True
                except self._ddb.exceptions.TransactionCanceledException as exc:
                    reasons = exc.response.get("CancellationReasons") or []
                    codes = {str(r.get("Code", "None")) for r in reasons}
            if "ConditionalCheckFailed" in codes:
                return False
            if not codes <= {"None", "TransactionConflict"}:
                raise BackendUnavailable("dynamodb", sorted(codes - {"None"})[0])
        raise BackendUnavailable("dynamodb", "TransactionConflict")

    def unlock(self, username: str) -> bool:
        """Delete the username's failure counters from every source (one query of its items);
        True if there were any. The marks of known sources stay."""
        found = False
        params: QueryInputTypeDef = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :login)",
            "ExpressionAttributeValues": {":pk": {"S": user_pk(username)}, ":login": {"S": SK}},
            "ProjectionExpression": "pk, sk",
            "ConsistentRead": True,
        }
        while True:
            with aws.translate_faults("dynamodb"):
                resp = self._ddb.query(**params)
                for item in resp.get("Items", []):
                    found = True
                    self._ddb.delete_item(TableName=self._table, Key=item)
            start = resp.get("LastEvaluatedKey")
            if not start:
                return found
            params["ExclusiveStartKey"] = start

    def _unchanged(self, pk: str, sk: str, seen: int, now: int) -> DeleteTypeDef:
        return {
            "TableName": self._table,
            "Key": table.key(pk, sk),
            "ConditionExpression": (
                "attribute_not_exists(failures) OR failures = :seen OR #ttl <= :now"
            ),
            "ExpressionAttributeNames": {"#ttl": table.TTL},
            "ExpressionAttributeValues": {":seen": {"N": str(seen)}, ":now": {"N": str(now)}},
        }

    def _bump(
        self, pk: str, sk: str, now: int, expires: int, failure: bool, *, sliding: bool = False
    ) -> int:
        """ADD 1 to ``failures`` (or ``refused``); a counter past its ttl starts again at 1.
        Only a failure slides a sliding counter's ttl: refused attempts extend nothing."""
        field = "failures" if failure else "refused"
        sets = ["#ttl = :exp" if sliding and failure else "#ttl = if_not_exists(#ttl, :exp)"]
        if failure:
            sets.append("last_failure = :now")
        live = (
            f"ADD {field} :one SET " + ", ".join(sets),
            "attribute_not_exists(pk) OR #ttl > :now",
        )
        restart_sets = ["#ttl = :exp", f"{field} = :one"]
        restart_sets += ["last_failure = :now"] if failure else []
        restart = (
            "SET "
            + ", ".join(restart_sets)
            + (" REMOVE refused" if failure else " REMOVE failures, last_failure"),
            "#ttl <= :now",
        )
        for _ in range(_BUMP_TRIES):
            for update, condition in (live, restart):
                with aws.translate_faults("dynamodb"):
                    try:
                        resp = self._ddb.update_item(
                            TableName=self._table,
                            Key=table.key(pk, sk),
                            ExpressionAttributeNames={"#ttl": table.TTL},
                            ExpressionAttributeValues={
                                ":one": {"N": "1"},
                                ":now": {"N": str(now)},
                                ":exp": {"N": str(expires)},
                            },
                            ReturnValues="ALL_NEW",
                            UpdateExpression=update,
                            ConditionExpression=condition,
                        )
                    except self._ddb.exceptions.ConditionalCheckFailedException:
                        continue
                return number(table.from_item(resp["Attributes"]), "failures", 0)
        raise BackendUnavailable("dynamodb", "login counter contention")
