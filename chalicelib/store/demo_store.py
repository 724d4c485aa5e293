"""The demo API's data: people and articles in their own DynamoDB table (pk/sk).

Not part of the authorization server: it is the protected resource that shows the authorizer at
work. Layout (one partition per kind, so listings are queries, never scans):

* ``PERSON`` / ``<id>``: ``id``, ``name``, ``role``
* ``ARTICLE`` / ``<created, 10 digits>#<id>``: ``id``, ``title``, ``body``, ``author``, ``created``

The store knows DynamoDB, not HTTP; faults become ``BackendUnavailable``.
"""

from __future__ import annotations

import re
import secrets
from typing import TYPE_CHECKING, TypedDict

from chalicelib.store import aws, table

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

    class Article(TypedDict):  # a seed article, as add_article takes it
        id: str
        title: str
        body: str
        author: str
        created: int  # seconds since the epoch


PEOPLE = "PERSON"
ARTICLES = "ARTICLE"
LIST_LIMIT = 100
_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")

SEED_PEOPLE: tuple[dict[str, str], ...] = (
    {"id": "ada", "name": "Ada Lovelace", "role": "analyst"},
    {"id": "grace", "name": "Grace Hopper", "role": "engineer"},
    {"id": "alan", "name": "Alan Turing", "role": "researcher"},
)
SEED_ARTICLES: tuple[Article, ...] = (
    {
        "id": "welcome",
        "title": "Welcome to the demo API",
        "body": "Every route here sits behind the Tessera authorizer.",
        "author": "tessera",
        "created": 1_700_000_000,
    },
    {
        "id": "scopes",
        "title": "Scopes",
        "body": "people:read, articles:read and articles:write open these routes.",
        "author": "tessera",
        "created": 1_700_000_100,
    },
)


def valid_id(value: str) -> bool:
    return bool(_ID.fullmatch(value))


def _article_sk(created: int, article_id: str) -> str:
    return f"{created:010d}#{article_id}"


def _public(item: table.Item) -> dict[str, object]:
    values = table.from_item(item)
    return {k: v for k, v in values.items() if k not in (table.PK, table.SK)}


class DemoStore:
    def __init__(self, ddb: DynamoDBClient, table_name: str) -> None:
        self._ddb = ddb
        self._table = table_name

    def _query(self, pk: str, newest_first: bool = False) -> list[dict[str, object]]:
        with aws.translate_faults("dynamodb"):
            resp = self._ddb.query(
                TableName=self._table,
                KeyConditionExpression="#pk = :pk",
                ExpressionAttributeNames={"#pk": table.PK},
                ExpressionAttributeValues={":pk": {"S": pk}},
                ScanIndexForward=not newest_first,
                Limit=LIST_LIMIT,
            )
        return [_public(item) for item in resp.get("Items", [])]

    def list_people(self) -> list[dict[str, object]]:
        return self._query(PEOPLE)

    def get_person(self, person_id: str) -> dict[str, object] | None:
        if not valid_id(person_id):
            return None
        with aws.translate_faults("dynamodb"):
            resp = self._ddb.get_item(TableName=self._table, Key=table.key(PEOPLE, person_id))
        item = resp.get("Item")
        return _public(item) if item else None

    def list_articles(self) -> list[dict[str, object]]:
        """Newest first."""
        return self._query(ARTICLES, newest_first=True)

    def put_person(self, person: dict[str, str]) -> None:
        item = table.to_item({table.PK: PEOPLE, table.SK: person["id"], **person})
        with aws.translate_faults("dynamodb"):
            self._ddb.put_item(TableName=self._table, Item=item)

    def add_article(
        self, *, title: str, body: str, author: str, created: int, article_id: str | None = None
    ) -> dict[str, object]:
        new_id = article_id or secrets.token_urlsafe(9)
        article: dict[str, object] = {
            "id": new_id,
            "title": title,
            "body": body,
            "author": author,
            "created": created,
        }
        item = table.to_item(
            {table.PK: ARTICLES, table.SK: _article_sk(created, new_id), **article}
        )
        with aws.translate_faults("dynamodb"):
            self._ddb.put_item(TableName=self._table, Item=item)
        return article

    def seed(self) -> None:
        """The demo contents of a new stack (idempotent: same keys, same values)."""
        for person in SEED_PEOPLE:
            self.put_person(person)
        for article in SEED_ARTICLES:
            self.add_article(
                title=article["title"],
                body=article["body"],
                author=article["author"],
                created=article["created"],
                article_id=article["id"],
            )
