"""The demo resource server behind the authorizer: /people and /articles
(chalicelib.store.demo_store).

By the time a request reaches these handlers API Gateway has run the authorizer and checked the
route against the token's scopes (the demo's rules, infra/demo-rules.json, are registered like any
attached API's); the authorizer's context says who is calling. Bodies are JSON; bad input is
``invalid_request`` like everywhere else.
"""

from __future__ import annotations

from collections.abc import Mapping

from chalice.app import Request, Response

from chalicelib.core.errors import InvalidRequest
from chalicelib.core.untrusted import BadJSON, parse_json
from chalicelib.web import http, services

MAX_TITLE = 200
MAX_BODY = 10_000
MAX_REQUEST = 64 * 1024  # a body of MAX_BODY characters, each escaped as \uXXXX, fits
JSON = "application/json"


class UnsupportedMediaType(InvalidRequest):
    """A body that is not JSON: the status says why (RFC 9110 §15.5.16), the body stays the
    OAuth-style JSON every other error of this API has."""

    status = 415


def caller(current_request: Request) -> dict[str, str]:
    """The authorizer's context (flat strings), e.g. ``sub`` and ``client_id``."""
    found = current_request.context.get("authorizer") or {}
    return {k: v for k, v in found.items() if isinstance(v, str)}


def list_people() -> dict[str, object]:
    return {"people": services.demo_store().list_people()}


def get_person(person_id: str) -> dict[str, object] | Response:
    person = services.demo_store().get_person(person_id)
    if person is None:
        return http.json_response({"error": "not_found"}, 404, http.NO_STORE)
    return person


def list_articles() -> dict[str, object]:
    return {"articles": services.demo_store().list_articles()}


def _text(doc: Mapping[str, object], name: str, limit: int) -> str:
    value = doc.get(name)
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequest(f"{name} is required")
    if len(value) > limit:
        raise InvalidRequest(f"{name} is too long")
    return value


def create_article(raw_body: bytes | str | None, author: str, content_type: str | None) -> Response:
    from chalicelib.core.forms import media_type

    if media_type(content_type) != JSON:
        raise UnsupportedMediaType("the request body must be application/json")
    try:
        doc: object = parse_json(raw_body, max_bytes=MAX_REQUEST)
    except BadJSON:
        raise InvalidRequest("the body must be a JSON object") from None
    if not isinstance(doc, dict):
        raise InvalidRequest("the body must be a JSON object")
    article = services.demo_store().add_article(
        title=_text(doc, "title", MAX_TITLE),
        body=_text(doc, "body", MAX_BODY),
        author=author,
        created=int(services.clock().now()),
    )
    return http.json_response(article, 201, http.NO_STORE)
