"""The DynamoDB single-table layout: key names and item (de)serialisation, in one place.

One table holds every record of the authorization server (clients, users, refresh-token families
and tokens, the access-token deny-list, login throttles). Items are addressed by ``pk``/``sk``; the
``gsi1`` index serves the few listings (clients, a user's grants) as queries, never scans. ``ttl``
lets DynamoDB delete expired items eventually, but code always compares expiry itself: TTL deletion
can lag by days.

Only the low-level client is used: ``boto3.resource`` costs cold-start time, and its calls are not
seen by Chalice's policy generator.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

from chalicelib.core.faults import BackendUnavailable
from chalicelib.store import aws

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import (
        AttributeValueTypeDef,
        KeysAndAttributesUnionTypeDef,
        UpdateItemInputTypeDef,
    )

    # An item as the client sends and returns it: attribute name -> {"S": ...} and the like.
    Item = dict[str, AttributeValueTypeDef]

PK = "pk"
SK = "sk"
GSI1 = "gsi1"
GSI1PK = "gsi1pk"
GSI1SK = "gsi1sk"
TTL = "ttl"
BATCH_TRIES = 3  # BatchGetItem rounds before leftover UnprocessedKeys are a fault


def key(pk: str, sk: str) -> Item:
    return {PK: {"S": pk}, SK: {"S": sk}}


def to_attr(value: object) -> AttributeValueTypeDef:
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int):
        return {"N": str(value)}
    if isinstance(value, str):
        return {"S": value}
    if value is None:
        return {"NULL": True}
    if isinstance(value, list | tuple):
        return {"L": [to_attr(v) for v in value]}
    if isinstance(value, dict):
        return {"M": {k: to_attr(v) for k, v in value.items()}}
    raise TypeError(f"cannot store {type(value).__name__}")


def from_attr(attr: AttributeValueTypeDef) -> object:
    """The value of one attribute: str, int, float, bool, None, or a list or dict of those (a
    string set becomes a sorted list). The caller narrows it to what it stored there."""
    if "S" in attr:
        return attr["S"]
    if "BOOL" in attr:
        return attr["BOOL"]
    if "N" in attr:
        number = attr["N"]
        return int(number) if "." not in number else float(number)
    if "NULL" in attr:
        return None
    if "L" in attr:
        return [from_attr(v) for v in attr["L"]]
    if "M" in attr:
        return {k: from_attr(v) for k, v in attr["M"].items()}
    if "SS" in attr:
        return sorted(attr["SS"])
    raise TypeError(f"unsupported attribute type {next(iter(attr), None)}")


def to_item(values: Mapping[str, object]) -> Item:
    return {k: to_attr(v) for k, v in values.items() if v is not None}


def to_values(values: Mapping[str, object]) -> dict[str, AttributeValueTypeDef]:
    """An expression's ``:name`` values (None kept: ``NULL`` is a value a condition may compare)."""
    return {k: to_attr(v) for k, v in values.items()}


def from_item(item: Mapping[str, AttributeValueTypeDef]) -> dict[str, object]:
    return {k: from_attr(v) for k, v in item.items()}


def put_new(ddb: DynamoDBClient, table_name: str, item: Item) -> bool:
    """Write ``item`` unless an item with its key exists: True if written, False if one was there.
    Every other failure is a fault (``BackendUnavailable``). Creating records is one conditional
    write, so two racing creators never both win."""
    with aws.translate_faults("dynamodb"):
        try:
            ddb.put_item(
                TableName=table_name, Item=item, ConditionExpression="attribute_not_exists(pk)"
            )
        except ddb.exceptions.ConditionalCheckFailedException:
            return False
    return True


def update_if(
    ddb: DynamoDBClient,
    table_name: str,
    key: Item,
    update: str,
    condition: str,
    values: Mapping[str, object],
    names: Mapping[str, str] | None = None,
) -> bool:
    """Apply ``update`` to the item at ``key`` if ``condition`` holds: True if applied, False if
    the condition failed. Every other failure is a fault (``BackendUnavailable``)."""
    params: UpdateItemInputTypeDef = {
        "TableName": table_name,
        "Key": key,
        "UpdateExpression": update,
        "ConditionExpression": condition,
        "ExpressionAttributeValues": to_values(values),
    }
    if names:  # DynamoDB refuses an empty ExpressionAttributeNames
        params["ExpressionAttributeNames"] = dict(names)
    with aws.translate_faults("dynamodb"):
        try:
            ddb.update_item(**params)
        except ddb.exceptions.ConditionalCheckFailedException:
            return False
    return True


def batch_get(ddb: DynamoDBClient, table_name: str, keys: list[Item]) -> list[Item]:
    """The items of ``keys`` that exist, in one strongly consistent ``BatchGetItem`` (at most
    100 keys). DynamoDB answers throttling here with ``UnprocessedKeys``, not an error: those are
    asked again after a short, doubling pause, ``BATCH_TRIES`` rounds in all, then it is a fault
    (``BackendUnavailable``) like any other."""
    found: list[Item] = []
    pending: dict[str, KeysAndAttributesUnionTypeDef] = {
        table_name: {"Keys": keys, "ConsistentRead": True}
    }
    for attempt in range(BATCH_TRIES):
        if attempt:
            time.sleep(0.05 * 2 ** (attempt - 1))
        with aws.translate_faults("dynamodb"):
            resp = ddb.batch_get_item(RequestItems=pending)
        found.extend(resp.get("Responses", {}).get(table_name, []))
        left = resp.get("UnprocessedKeys") or {}
        if not left:
            return found
        pending = dict(left)
    raise BackendUnavailable("dynamodb", "UnprocessedKeys")
