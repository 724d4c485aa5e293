"""Refresh-token families, their tokens and the access-token deny-list in DynamoDB.

Knows the table, not HTTP and not the protocol (``chalicelib.oauth.refresh_tokens`` decides what a
rotation means). Items, in the single table (``chalicelib.store.table``):

- ``RT#<keyed hash>`` / ``RT``: one refresh token. Only ``HMAC-SHA256(pepper, token)`` is stored,
  never the token. Carries a copy of its family's immutable facts (family id, client, user id,
  username, scope, absolute expiry) so a refresh reads one item, plus its own state (``active`` or
  ``rotated``), idle expiry and, once rotated, when and into which successor (hash + pepper id).
- ``FAMILY#<id>`` / ``FAMILY``: one grant (user + client + scope): created, last used, absolute
  expiry, ``revoked``, the user's epoch when it began. A grant without refresh token (a client
  without that grant type) is a family with no ``RT#`` item, ending with its access token. A
  revoked marker with no other attribute is left by a code re-used before its first exchange wrote
  the grant: that write then fails (``revoke_family(preempt=True)``).
  ``gsi1pk = USERGRANTS#<username>``, ``gsi1sk = <client id>#<family id>``, so a user's grants
  (optionally for one client) are a query, never a scan.
- ``JTI#<jti>`` / ``JTI``: a revoked access token, kept until the token's own ``exp``.

Revocation marks (``revoked = true``) instead of deleting: a deleted family could not tell a
re-presented token from an unknown one, and the mark is what makes every token of the family and
every access token carrying its ``sid`` dead at once. ``ttl`` removes items a day after they could
matter; code compares expiry itself because TTL deletion lags.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from chalicelib.core.faults import BackendUnavailable
from chalicelib.core.records import (
    ACTIVE,
    ROTATED,
    Family,
    RetrySnapshot,
    RotateOutcome,
    TokenRecord,
    may_receive,
)
from chalicelib.store import aws, table
from chalicelib.store.fields import flag, number, opt_number, opt_text, text
from chalicelib.store.users import receive_check, user_from_values, user_key

if TYPE_CHECKING:
    from botocore.exceptions import ClientError
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import (
        QueryInputTypeDef,
        TransactWriteItemTypeDef,
    )

RETENTION = 86400  # seconds an item outlives its expiry before TTL may remove it
_TOKEN_SK = "RT"  # noqa: S105 - a sort key, not a secret
_FAMILY_SK = "FAMILY"
_JTI_SK = "JTI"
# Cancellation reasons that mean "the data said no" or "someone else was writing", not a fault.
_DATA_REASONS = frozenset({"None", "ConditionalCheckFailed", "TransactionConflict"})


def token_key(token_hash: str) -> table.Item:
    return table.key(f"RT#{token_hash}", _TOKEN_SK)


def family_key(family_id: str) -> table.Item:
    return table.key(f"FAMILY#{family_id}", _FAMILY_SK)


def jti_key(jti: str) -> table.Item:
    return table.key(f"JTI#{jti}", _JTI_SK)


def _token_values(rec: TokenRecord) -> dict[str, object]:
    return {
        table.PK: f"RT#{rec.token_hash}",
        table.SK: _TOKEN_SK,
        "family_id": rec.family_id,
        "client_id": rec.client_id,
        "user_id": rec.user_id,
        "username": rec.username,
        "scope": rec.scope,
        "pepper_id": rec.pepper_id,
        "state": rec.state,
        "created": rec.created,
        "expires": rec.expires,
        "idle_expires": rec.idle_expires,
        "rotated_at": rec.rotated_at,
        "successor_hash": rec.successor_hash,
        "successor_pepper": rec.successor_pepper,
        "user_epoch": rec.user_epoch,
        table.TTL: rec.expires + RETENTION,
    }


def _token_from(v: Mapping[str, object]) -> TokenRecord:
    return TokenRecord(
        token_hash=text(v, table.PK).removeprefix("RT#"),
        family_id=text(v, "family_id"),
        client_id=text(v, "client_id"),
        user_id=text(v, "user_id"),
        username=text(v, "username"),
        scope=text(v, "scope"),
        pepper_id=text(v, "pepper_id"),
        state=text(v, "state"),
        created=number(v, "created"),
        expires=number(v, "expires"),
        idle_expires=number(v, "idle_expires"),
        rotated_at=opt_number(v, "rotated_at"),
        successor_hash=opt_text(v, "successor_hash"),
        successor_pepper=opt_text(v, "successor_pepper"),
        user_epoch=number(v, "user_epoch", 0),
    )


def _family_values(f: Family) -> dict[str, object]:
    return {
        table.PK: f"FAMILY#{f.family_id}",
        table.SK: _FAMILY_SK,
        table.GSI1PK: f"USERGRANTS#{f.username}",
        table.GSI1SK: f"{f.client_id}#{f.family_id}",
        "family_id": f.family_id,
        "user_id": f.user_id,
        "username": f.username,
        "client_id": f.client_id,
        "scope": f.scope,
        "created": f.created,
        "last_used": f.last_used,
        "expires": f.expires,
        "revoked": f.revoked,
        "user_epoch": f.user_epoch,
        "auth_time": f.auth_time or None,
        table.TTL: f.expires + RETENTION,
    }


def _family_from(v: Mapping[str, object]) -> Family:
    return Family(
        family_id=text(v, "family_id"),
        user_id=text(v, "user_id"),
        username=text(v, "username"),
        client_id=text(v, "client_id"),
        scope=text(v, "scope"),
        created=number(v, "created"),
        last_used=number(v, "last_used"),
        expires=number(v, "expires"),
        revoked=flag(v, "revoked"),
        revoked_at=opt_number(v, "revoked_at"),
        revoked_reason=opt_text(v, "revoked_reason"),
        user_epoch=number(v, "user_epoch", 0),
        auth_time=number(v, "auth_time", 0),
    )


def _user_ok(v: Mapping[str, object] | None, user_id: str, epoch: int) -> bool:
    return may_receive(user_from_values(v) if v else None, user_id, epoch)


class GrantStore:
    def __init__(self, ddb: DynamoDBClient, table_name: str) -> None:
        self._ddb = ddb
        self._table = table_name

    # -- refresh tokens ----------------------------------------------------------------------

    def create_family(self, family: Family, first: TokenRecord | None) -> bool:
        """Store a new family and its first token (if any) in one transaction, only while the user
        may receive it (``users.receive_check``). False if that check failed or the family id is
        taken (a revoked marker left by a re-used code); faults raise ``BackendUnavailable``."""
        items: list[TransactWriteItemTypeDef] = [
            {
                "Put": {
                    "TableName": self._table,
                    "Item": table.to_item(_family_values(family)),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
            receive_check(self._table, family.username, family.user_id, family.user_epoch),
        ]
        if first is not None:
            items.append(
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": table.to_item(_token_values(first)),
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                }
            )
        with aws.translate_faults("dynamodb"):
            try:
                self._ddb.transact_write_items(TransactItems=items)
            except self._ddb.exceptions.TransactionCanceledException as exc:
                reasons = exc.response.get("CancellationReasons") or []
                codes = [str(r.get("Code", "None")) for r in reasons]
                if "ConditionalCheckFailed" in codes:
                    return False
                raise BackendUnavailable(
                    "dynamodb", next((c for c in codes if c != "None"), "TransactionCanceled")
                ) from exc
        return True

    def get_token(self, token_hash: str) -> TokenRecord | None:
        with aws.translate_faults("dynamodb"):
            resp = self._ddb.get_item(
                TableName=self._table, Key=token_key(token_hash), ConsistentRead=True
            )
        item = resp.get("Item")
        return _token_from(table.from_item(item)) if item else None

    def rotate(
        self, old: TokenRecord, new: TokenRecord, *, successor_pepper: str, now: int
    ) -> RotateOutcome:
        """Retire ``old`` and store ``new`` atomically, in ONE ``TransactWriteItems``:

        0. ``old`` is still active and not expired -> mark it rotated, naming its successor;
        1. ``new`` does not exist yet -> put it;
        2. the family exists and is not revoked -> set ``last_used``;
        3. the user may still receive it (``users.receive_check``: same id, not disabled, the
           epoch the family began under).

        Two racing rotations of one token cannot both commit: the loser's condition 0 fails.
        Faults (throttling, internal errors) raise ``BackendUnavailable``; nothing was written.
        """
        items: list[TransactWriteItemTypeDef] = [
            {
                "Update": {
                    "TableName": self._table,
                    "Key": token_key(old.token_hash),
                    "UpdateExpression": (
                        "SET #st = :rotated, rotated_at = :now, successor_hash = :sh,"
                        " successor_pepper = :sp"
                    ),
                    "ConditionExpression": (
                        "#st = :active AND expires > :now AND idle_expires > :now"
                    ),
                    "ExpressionAttributeNames": {"#st": "state"},
                    "ExpressionAttributeValues": table.to_values(
                        {
                            ":rotated": ROTATED,
                            ":active": ACTIVE,
                            ":now": now,
                            ":sh": new.token_hash,
                            ":sp": successor_pepper,
                        }
                    ),
                }
            },
            {
                "Put": {
                    "TableName": self._table,
                    "Item": table.to_item(_token_values(new)),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
            {
                "Update": {
                    "TableName": self._table,
                    "Key": family_key(old.family_id),
                    "UpdateExpression": "SET last_used = :now",
                    "ConditionExpression": "attribute_exists(pk) AND revoked = :false",
                    "ExpressionAttributeValues": table.to_values({":now": now, ":false": False}),
                }
            },
            receive_check(self._table, old.username, old.user_id, old.user_epoch),
        ]
        with aws.translate_faults("dynamodb"):
            try:
                self._ddb.transact_write_items(TransactItems=items)
            except self._ddb.exceptions.TransactionCanceledException as exc:
                return _cancelled(exc)
        return RotateOutcome.COMMITTED

    def retry_snapshot(self, successor_hash: str, rec: TokenRecord) -> RetrySnapshot:
        """The successor of ``rec``, its family and its user in one consistent ``BatchGetItem``
        (a plain read: it never conflicts with the transactions of concurrent retries)."""
        keys = [token_key(successor_hash), family_key(rec.family_id), user_key(rec.username)]
        found = _by_pk(table.batch_get(self._ddb, self._table, keys))
        succ = found.get(f"RT#{successor_hash}")
        fam = found.get(f"FAMILY#{rec.family_id}")
        return RetrySnapshot(
            successor=_token_from(succ) if succ else None,
            family=_family_from(fam) if fam and "user_id" in fam else None,
            user_ok=_user_ok(found.get(f"USER#{rec.username}"), rec.user_id, rec.user_epoch),
        )

    # -- families ------------------------------------------------------------------------------

    def get_family(self, family_id: str) -> Family | None:
        """The family, or None if unknown (or only a revoked marker: see the module docstring)."""
        with aws.translate_faults("dynamodb"):
            resp = self._ddb.get_item(
                TableName=self._table, Key=family_key(family_id), ConsistentRead=True
            )
        item = resp.get("Item")
        return _family_from(table.from_item(item)) if item and "user_id" in item else None

    def revoke_family(
        self, family_id: str, reason: str, now: int, *, preempt: bool = False
    ) -> bool:
        """Mark a family revoked (the first reason sticks). False if it was already revoked or
        does not exist. Every token of the family, and every access token whose ``sid`` names it,
        is dead from here on. With ``preempt``, a family not written yet gets a revoked marker
        (kept ``RETENTION`` seconds), so the write that would start it fails."""
        condition = "attribute_exists(pk) AND revoked = :false"
        update = "SET revoked = :true, revoked_at = :now, revoked_reason = :r"
        values: dict[str, object] = {":true": True, ":false": False, ":now": now, ":r": reason}
        names: dict[str, str] = {}
        if preempt:
            condition = "attribute_not_exists(pk) OR revoked = :false"
            update += ", #ttl = if_not_exists(#ttl, :ttl)"
            values[":ttl"] = now + RETENTION
            names["#ttl"] = table.TTL
        return table.update_if(
            self._ddb, self._table, family_key(family_id), update, condition, values, names
        )

    def families_of(self, username: str, client_id: str | None = None) -> list[Family]:
        """A user's families (optionally for one client): a query on gsi1, never a scan."""
        condition = "gsi1pk = :p"
        values: dict[str, object] = {":p": f"USERGRANTS#{username}"}
        if client_id is not None:
            condition += " AND begins_with(gsi1sk, :c)"
            values[":c"] = f"{client_id}#"
        kwargs: QueryInputTypeDef = {
            "TableName": self._table,
            "IndexName": table.GSI1,
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": table.to_values(values),
        }
        out: list[Family] = []
        with aws.translate_faults("dynamodb"):
            while True:
                resp = self._ddb.query(**kwargs)
                out.extend(_family_from(table.from_item(i)) for i in resp.get("Items", []))
                if "LastEvaluatedKey" not in resp:
                    break
                kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]
        return out

    # -- access tokens -------------------------------------------------------------------------

    def deny_jti(self, jti: str, exp: int, client_id: str, now: int) -> None:
        """Put an access token's ``jti`` on the deny-list until the token expires."""
        values = {
            table.PK: f"JTI#{jti}",
            table.SK: _JTI_SK,
            "client_id": client_id,
            "revoked_at": now,
            "exp": exp,
            table.TTL: exp,
        }
        with aws.translate_faults("dynamodb"):
            self._ddb.put_item(TableName=self._table, Item=table.to_item(values))

    def is_revoked(self, jti: str, sid: str | None) -> bool:
        """True if an otherwise valid access token must be refused: its ``jti`` is on the
        deny-list, or it names a family (``sid``) that is revoked or gone. ONE ``BatchGetItem``
        (strongly consistent), so introspection and the authorizer pay one round trip.

        Call it only for tokens that passed ``access_tokens.validate``: a deny-list entry outlives
        nothing (its ``ttl`` is the token's ``exp``), and a missing family is treated as revoked
        because a family is always written before any access token naming it is signed.
        """
        keys = [jti_key(jti)]
        if sid:
            keys.append(family_key(sid))
        found = _by_pk(table.batch_get(self._ddb, self._table, keys))
        if f"JTI#{jti}" in found:
            return True
        if sid:
            fam = found.get(f"FAMILY#{sid}")
            return fam is None or bool(fam.get("revoked", False))
        return False


def _by_pk(items: list[table.Item]) -> dict[str, Mapping[str, object]]:
    """Items of a batch read by ``pk`` (one sort key per kind of item here)."""
    out: dict[str, Mapping[str, object]] = {}
    for item in items:
        v: Mapping[str, object] = table.from_item(item)
        out[text(v, table.PK)] = v
    return out


def _cancelled(exc: ClientError) -> RotateOutcome:
    """Read the per-item reasons of a cancelled rotation (items as in ``GrantStore.rotate``)."""
    reasons = exc.response.get("CancellationReasons") or []
    codes = [str(r.get("Code", "None")) for r in reasons]
    codes += ["None"] * (4 - len(codes))
    if codes[2] == "ConditionalCheckFailed":
        return RotateOutcome.FAMILY_REVOKED
    if codes[3] == "ConditionalCheckFailed":
        return RotateOutcome.USER_INVALID
    faults = [c for c in codes if c not in _DATA_REASONS]
    if faults or not reasons:
        raise BackendUnavailable("dynamodb", faults[0] if faults else "TransactionCanceled")
    if "ConditionalCheckFailed" in codes[:2]:
        return RotateOutcome.TOKEN_NOT_ACTIVE
    return RotateOutcome.CONTENDED
