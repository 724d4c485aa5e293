"""Strict parsing of OAuth requests (RFC 6749 §3.2, §2.3.1).

- Only ``application/x-www-form-urlencoded`` bodies; anything else is ``invalid_request``.
- A parameter sent twice is ``invalid_request`` (§3.1, §3.2); an empty value counts as absent.
- Unknown parameters are ignored.
- HTTP Basic credentials are themselves form-urlencoded before base64 (§2.3.1).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from urllib.parse import unquote_plus

from chalicelib.core.errors import InvalidClient, InvalidRequest

FORM = "application/x-www-form-urlencoded"
MAX_BODY = 16 * 1024
# A "%" not followed by two hex digits: a real encoder never produces it, and decoders disagree on
# what it means (left as is, or an error), so one request could mean two things. Refuse it.
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


def form_decode(text: str) -> str:
    """One ``application/x-www-form-urlencoded`` name or value: '+' is a space, %XX are UTF-8
    bytes. Malformed escapes and invalid UTF-8 raise ``ValueError``."""
    if _BAD_ESCAPE.search(text):
        raise ValueError("malformed percent-encoding")
    return unquote_plus(text, errors="strict")


def header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive header lookup that works for plain dicts and Chalice's header mapping."""
    lname = name.lower()
    for k, v in headers.items():
        if k.lower() == lname:
            return v
    return None


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def parse_form(content_type: str | None, body: bytes | None) -> dict[str, str]:
    if media_type(content_type) != FORM:
        raise InvalidRequest("the request body must be application/x-www-form-urlencoded")
    raw = body or b""
    if len(raw) > MAX_BODY:
        raise InvalidRequest("the request body is too large")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidRequest("the request body is not valid UTF-8") from exc
    params: dict[str, str] = {}
    seen: set[str] = set()
    for pair in text.split("&"):
        if not pair:
            continue
        name, _, value = pair.partition("=")
        try:
            name = form_decode(name)
            value = form_decode(value)
        except ValueError as exc:  # UnicodeDecodeError is a ValueError too
            raise InvalidRequest("the request body is not correctly form-encoded") from exc
        if name in seen:
            raise InvalidRequest("a parameter was sent more than once")
        seen.add(name)
        if value != "":
            params[name] = value
    return params


def parse_basic(authorization: str) -> tuple[str, str]:
    """Client id and secret from an ``Authorization: Basic`` header, or ``invalid_client``."""
    scheme, _, encoded = authorization.strip().partition(" ")
    if scheme.lower() != "basic" or not encoded.strip():
        raise InvalidClient("unsupported authorization scheme")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise InvalidClient("malformed basic credentials") from exc
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        raise InvalidClient("malformed basic credentials")
    try:
        client_id = form_decode(client_id)
        secret = form_decode(secret)
    except ValueError as exc:
        raise InvalidClient("malformed basic credentials") from exc
    if not client_id:
        raise InvalidClient("malformed basic credentials")
    return client_id, secret


class OAuthRequest:
    """An HTTP request as protocol code sees it: no Chalice, no API Gateway event shapes."""

    __slots__ = ("body", "headers", "method", "query", "source_ip")

    def __init__(
        self,
        method: str,
        headers: Mapping[str, str],
        body: bytes | None = None,
        query: Mapping[str, object] | None = None,
        source_ip: str | None = None,
    ) -> None:
        self.method = method.upper()
        self.headers = {k.lower(): v for k, v in headers.items()}
        self.body = body
        self.query = dict(query or {})
        self.source_ip = source_ip

    def form(self) -> dict[str, str]:
        """The POST form, with the checks every OAuth endpoint shares."""
        if self.query:
            # Credentials and grants never travel in the URI (RFC 6749 §2.3.1, §3.2).
            raise InvalidRequest("parameters must be sent in the request body")
        return parse_form(self.headers.get("content-type"), self.body)
