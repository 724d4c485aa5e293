"""Authorization codes (RFC 6749 §4.1.2, §10.5; RFC 9700 §4.2).

A code is 256 random bits, single use, valid for ``CODE_TTL`` seconds, bound to the client, the
redirect URI, the PKCE challenge and the user (with the user's epoch, so a code issued before a
disable never exchanges). Only its SHA-256 is stored (a code is high-entropy, so a plain hash is
enough to make a table dump useless). Redemption is one conditional write: the first redemption
marks the code used and records the grant (family) id every token of that exchange will carry,
refresh token or not; a second redemption fails and returns that id so the caller can revoke what
the first use issued (§4.1.2: "SHOULD revoke all tokens previously issued based on that
authorization code").
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from chalicelib.store import aws, table
from chalicelib.store.fields import number, opt_text, text

if TYPE_CHECKING:
    from botocore.exceptions import ClientError
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

CODE_TTL = 120


class CodeGrant(NamedTuple):
    client_id: str
    redirect_uri: str
    code_challenge: str
    user_id: str
    username: str
    scope: str
    expires_at: int
    user_epoch: int = 0  # chalicelib.store.users: the epoch of the session that got the code
    # OpenID Connect (chalicelib.oauth.oidc): the request's nonce and when the user signed in.
    nonce: str = ""
    auth_time: int = 0


class CodeAlreadyUsed(Exception):
    def __init__(self, family_id: str | None) -> None:
        super().__init__("authorization code re-used")
        self.family_id = family_id


def new_code() -> str:
    return secrets.token_urlsafe(32)


def _key(code: str) -> table.Item:
    digest = hashlib.sha256(code.encode("utf-8")).hexdigest()
    return table.key(f"CODE#{digest}", "CODE")


def _old_item(exc: ClientError) -> table.Item | None:
    """The item ``ReturnValuesOnConditionCheckFailure=ALL_OLD`` returns with a failed condition
    (a member of DynamoDB's error answer that the stubs of ``ClientError.response`` do not list)."""
    answer: Mapping[str, Any] = exc.response
    item = answer.get("Item")
    return item if isinstance(item, dict) and item else None


class CodeStore:
    def __init__(self, ddb: DynamoDBClient, table_name: str) -> None:
        self._ddb = ddb
        self._table = table_name

    def save(self, code: str, grant: CodeGrant) -> None:
        item = {
            **{k: v["S"] for k, v in _key(code).items()},
            "client_id": grant.client_id,
            "redirect_uri": grant.redirect_uri,
            "code_challenge": grant.code_challenge,
            "user_id": grant.user_id,
            "username": grant.username,
            "scope": grant.scope,
            "expires_at": grant.expires_at,
            "user_epoch": grant.user_epoch,
            "nonce": grant.nonce or None,  # None: not stored
            "auth_time": grant.auth_time,
            "used": False,
            table.TTL: grant.expires_at + 86400,  # kept a day so re-use can still be detected
        }
        with aws.translate_faults("dynamodb"):
            self._ddb.put_item(
                TableName=self._table,
                Item=table.to_item(item),
                ConditionExpression="attribute_not_exists(pk)",
            )

    def redeem(self, code: str, now: int, family_id: str | None = None) -> CodeGrant | None:
        """Mark the code used (recording the grant its tokens will belong to, in the same write;
        the token endpoint always names one) and return its grant; None if unknown or expired.

        Raises ``CodeAlreadyUsed`` when the code was redeemed before.
        """
        update = "SET used = :t, used_at = :now"
        values: dict[str, AttributeValueTypeDef] = {
            ":t": {"BOOL": True},
            ":f": {"BOOL": False},
            ":now": {"N": str(now)},
        }
        if family_id is not None:
            update += ", family_id = :fid"
            values[":fid"] = {"S": family_id}
        with aws.translate_faults("dynamodb"):
            try:
                resp = self._ddb.update_item(
                    TableName=self._table,
                    Key=_key(code),
                    UpdateExpression=update,
                    ConditionExpression="attribute_exists(pk) AND used = :f",
                    ExpressionAttributeValues=values,
                    ReturnValues="ALL_NEW",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
            except self._ddb.exceptions.ConditionalCheckFailedException as exc:
                old = _old_item(exc)
                if not old:
                    return None
                raise CodeAlreadyUsed(opt_text(table.from_item(old), "family_id")) from exc
        v: Mapping[str, object] = table.from_item(resp["Attributes"])
        if number(v, "expires_at") <= now:
            return None
        return CodeGrant(
            client_id=text(v, "client_id"),
            redirect_uri=text(v, "redirect_uri"),
            code_challenge=text(v, "code_challenge"),
            user_id=text(v, "user_id"),
            username=text(v, "username"),
            scope=text(v, "scope"),
            expires_at=number(v, "expires_at"),
            user_epoch=number(v, "user_epoch", 0),
            nonce=opt_text(v, "nonce") or "",
            auth_time=number(v, "auth_time", 0),
        )
