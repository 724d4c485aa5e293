"""Revocation as the API sees it: is this access token's ``jti`` or its family (``sid``) revoked?

A JWT stays valid until it expires, wherever it is checked locally. RFC 7009 §2 lets a server end
the access tokens of a revoked grant "as far as it can see them": introspection always can, and the
authorizer can when a stage turns on ``authorizer_checks_revocation``. This store answers that one
question with one ``BatchGetItem`` (both keys in one round trip), keyed on the ``jti`` and the
family id, never on the token string (signatures have more than one encoding).

Items it reads from the main table (written by the refresh/revocation code):

* ``JTI#<jti>`` / ``JTI``: the access-token deny-list. An entry there is a revocation unless its
  ``revoked`` attribute says otherwise.
* ``FAMILY#<sid>`` / ``FAMILY``: a refresh-token family; revoked when ``revoked`` is set
  (``true``, or the epoch second it happened).

DynamoDB TTL may delete these entries late or early relative to our clock; neither matters here:
an entry that is gone belonged to a token that has expired anyway. Faults become
``BackendUnavailable`` and the caller fails closed.
"""

from __future__ import annotations

from typing import Any

from chalicelib import aws, table
from chalicelib.faults import BackendUnavailable

_MAX_ATTEMPTS = 2  # UnprocessedKeys (throttling) get one more try; then the answer is unknown


def jti_key(jti: str) -> table.Item:
    return table.key(f"JTI#{jti}", "JTI")


def family_key(family_id: str) -> table.Item:
    return table.key(f"FAMILY#{family_id}", "FAMILY")


def _marked_revoked(item: dict[str, Any], default: bool) -> bool:
    attr = item.get("revoked")
    if attr is None:
        return default
    value = table.from_attr(attr)
    return value not in (False, 0, "", None)


class RevocationCheck:
    def __init__(self, ddb: Any, table_name: str) -> None:
        self._ddb = ddb
        self._table = table_name

    def is_revoked(self, jti: str, family_id: str | None) -> bool:
        """True if the token's ``jti`` is deny-listed or its family is revoked. One read."""
        keys = [jti_key(jti)]
        if family_id:
            keys.append(family_key(family_id))
        request: dict[str, Any] = {
            self._table: {
                "Keys": keys,
                "ProjectionExpression": "#pk, #sk, revoked",
                "ExpressionAttributeNames": {"#pk": table.PK, "#sk": table.SK},
            }
        }
        found: list[dict[str, Any]] = []
        with aws.translate_faults("dynamodb"):
            for _ in range(_MAX_ATTEMPTS):
                resp = self._ddb.batch_get_item(RequestItems=request)
                found.extend(resp.get("Responses", {}).get(self._table, []))
                request = resp.get("UnprocessedKeys") or {}
                if not request:
                    break
        if request:
            raise BackendUnavailable("dynamodb", "unprocessed keys")
        for item in found:
            pk = item[table.PK]["S"]
            if pk.startswith("JTI#") and _marked_revoked(item, default=True):
                return True
            if pk.startswith("FAMILY#") and _marked_revoked(item, default=False):
                return True
        return False
