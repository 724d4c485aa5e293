"""Resource owners (users) in DynamoDB; the record and the username policy are
``chalicelib.core.records``.

Username policy: Unicode NFKC, then case-folded; 1-128 characters after that, no control
characters, no surrounding white space. ``normalize_username`` is applied on every path that takes a
username (token endpoint, admin command), so ``Alice`` and ``alice`` are the same account.
The token ``sub`` is a random, stable user id, not the username.

Whether a subject may be given anything now (a session's use, a code, a grant, a token) is one
rule, ``may_receive``, also written as a DynamoDB condition (``receive_check``) for the writes that
start or extend a grant, so a disable that lands between a read and a write still wins. The user's
``epoch`` is part of it: sessions, codes and grants carry the epoch they were issued under, and
disabling bumps it, so nothing issued before a disable comes back when the user is enabled again.
A deleted user has no record; one created again under the name gets a new user id.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from chalicelib.core.records import User, may_receive
from chalicelib.store import aws, table
from chalicelib.store.fields import flag, number, opt_text, text

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef


class UserExists(Exception):
    pass


def user_key(username: str) -> table.Item:
    return table.key(f"USER#{username}", "USER")


def user_from_item(item: table.Item) -> User:
    return user_from_values(table.from_item(item))


def user_from_values(v: Mapping[str, object]) -> User:
    return User(
        username=text(v, "username"),
        user_id=text(v, "user_id"),
        password_hash=text(v, "password_hash"),
        disabled=flag(v, "disabled"),
        created_at=number(v, "created_at", 0),
        epoch=number(v, "epoch", 0),
        email=opt_text(v, "email"),
        email_verified=flag(v, "email_verified"),
        name=opt_text(v, "name"),
    )


def receive_check(
    table_name: str, username: str, user_id: str, epoch: int
) -> TransactWriteItemTypeDef:
    """``may_receive`` as a ``TransactWriteItems`` ``ConditionCheck`` on the user's record."""
    # Records written before epochs existed have none: that is epoch 0.
    same_epoch = "epoch = :epoch" if epoch else "(attribute_not_exists(epoch) OR epoch = :epoch)"
    return {
        "ConditionCheck": {
            "TableName": table_name,
            "Key": user_key(username),
            "ConditionExpression": (
                "attribute_exists(pk) AND user_id = :uid"
                " AND (attribute_not_exists(disabled) OR disabled = :false) AND " + same_epoch
            ),
            "ExpressionAttributeValues": {
                ":uid": {"S": user_id},
                ":false": {"BOOL": False},
                ":epoch": {"N": str(epoch)},
            },
        }
    }


def new_user_id() -> str:
    import secrets  # not at import: the authorizer loads this module, never creates users

    return "u_" + secrets.token_hex(12)


class UserStore:
    def __init__(self, ddb: DynamoDBClient, table_name: str) -> None:
        self._ddb = ddb
        self._table = table_name

    def get(self, username: str) -> User | None:
        with aws.translate_faults("dynamodb"):
            resp = self._ddb.get_item(
                TableName=self._table, Key=user_key(username), ConsistentRead=True
            )
        item = resp.get("Item")
        return user_from_item(item) if item else None

    def create(self, user: User) -> None:
        values = {
            table.PK: f"USER#{user.username}",
            table.SK: "USER",
            "username": user.username,
            "user_id": user.user_id,
            "password_hash": user.password_hash,
            "disabled": user.disabled,
            "created_at": user.created_at,
            "epoch": user.epoch,
            "email": user.email,
            "email_verified": user.email_verified,
            "name": user.name,
        }
        if not table.put_new(self._ddb, self._table, table.to_item(values)):
            raise UserExists(user.username)

    def _update_existing(
        self,
        username: str,
        expr: str,
        values: Mapping[str, object],
        names: dict[str, str] | None = None,
    ) -> bool:
        return table.update_if(
            self._ddb, self._table, user_key(username), expr, "attribute_exists(pk)", values, names
        )

    def may_receive_now(self, username: str, user_id: str, epoch: int) -> bool:
        """``may_receive`` on a fresh (strongly consistent) read of the user."""
        return may_receive(self.get(username), user_id, epoch)

    def set_disabled(self, username: str, disabled: bool) -> bool:
        """Disabling also moves the user to a new epoch: every session, code and grant issued
        before stays ended, even once the user is enabled again."""
        if disabled:
            return self._update_existing(
                username, "SET disabled = :d ADD epoch :one", {":d": True, ":one": 1}
            )
        return self._update_existing(username, "SET disabled = :d", {":d": False})

    def set_password_hash(self, username: str, phc: str) -> bool:
        return self._update_existing(username, "SET password_hash = :h", {":h": phc})

    def set_profile(
        self, username: str, *, email: str | None, email_verified: bool, name: str | None
    ) -> bool:
        """Replace the profile claims (``None`` removes one); False for an unknown user."""
        sets, removes = ["#v = :v"], []
        values: dict[str, object] = {":v": email_verified}
        for ref, value in (("#e", email), ("#n", name)):
            if value is None:
                removes.append(ref)
            else:
                sets.append(f"{ref} = :{ref[1:]}")
                values[":" + ref[1:]] = value
        expr = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
        # Names through placeholders: "name" is a DynamoDB reserved word.
        names = {"#e": "email", "#v": "email_verified", "#n": "name"}
        return self._update_existing(username, expr, values, names=names)

    def delete(self, username: str) -> bool:
        with aws.translate_faults("dynamodb"):
            resp = self._ddb.delete_item(
                TableName=self._table, Key=user_key(username), ReturnValues="ALL_OLD"
            )
        return "Attributes" in resp
