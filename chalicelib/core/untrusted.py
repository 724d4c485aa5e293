"""The one way to compare and to parse values that arrive in a request.

- ``same(a, b)``: constant-time equality through ``hmac.compare_digest`` on bytes. On a ``str``
  with a non-ASCII character ``compare_digest`` raises ``TypeError`` instead of answering, so a
  hostile CSRF token or signature became a 500; every ``str`` is encoded first (any string
  encodes under ``surrogatepass``, so this never raises). ``scripts/check_rules.py`` keeps every
  other module off ``compare_digest``.
- ``parse_json(raw, max_bytes=..., max_depth=...)``: a JSON document (RFC 8259) within a size
  and a nesting limit, UTF-8 only, with no repeated member names, no ``NaN``/``Infinity`` and no
  lone surrogates (they cannot be stored or sent on). Anything else raises ``BadJSON``, a
  ``ValueError`` that callers turn into their 4xx: never ``RecursionError`` or a 500.
"""

from __future__ import annotations

import hmac
import json
from typing import NoReturn

MAX_JSON_BYTES = 64 * 1024
MAX_JSON_DEPTH = 32


def same(a: str | bytes, b: str | bytes) -> bool:
    """Whether two secrets are equal, in time independent of where they differ."""
    left = a.encode("utf-8", "surrogatepass") if isinstance(a, str) else a
    right = b.encode("utf-8", "surrogatepass") if isinstance(b, str) else b
    return hmac.compare_digest(left, right)


class BadJSON(ValueError):
    """The input is not a JSON document this server accepts (the message names the reason)."""


def _no_repeats(pairs: list[tuple[str, object]]) -> dict[str, object]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise BadJSON("a member name is repeated")
    return out


def _no_constant(name: str) -> NoReturn:
    raise BadJSON(f"{name} is not JSON")


_DECODER = json.JSONDecoder(object_pairs_hook=_no_repeats, parse_constant=_no_constant)


def _deeper_than(text: str, limit: int) -> bool:
    """Whether arrays/objects nest deeper than ``limit`` (brackets inside strings do not count).
    Checked before parsing: the decoder recurses once per level."""
    if text.count("[") + text.count("{") <= limit:
        return False  # the usual case: too few brackets to nest that deep
    depth = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > limit:
                return True
        elif ch in "]}":
            depth -= 1
    return False


def parse_json(
    raw: bytes | str | None, *, max_bytes: int = MAX_JSON_BYTES, max_depth: int = MAX_JSON_DEPTH
) -> object:
    """The document in ``raw``, or ``BadJSON``: narrow it with ``isinstance`` where it is read."""
    if raw is None:
        raise BadJSON("no document")
    size = len(raw.encode("utf-8", "surrogatepass")) if isinstance(raw, str) else len(raw)
    if size > max_bytes:
        raise BadJSON("the document is too large")
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError:
        raise BadJSON("the document is not UTF-8") from None
    if _deeper_than(text, max_depth):
        raise BadJSON("the document is nested too deeply")
    try:
        doc: object = _DECODER.decode(text)
        if "\\u" in text or isinstance(raw, str):
            # A "\ud800" escape (or a str argument) can leave a lone surrogate: not storable.
            json.dumps(doc, ensure_ascii=False).encode("utf-8")
    except BadJSON:
        raise
    except (ValueError, RecursionError):  # UnicodeEncodeError is a ValueError too
        raise BadJSON("the document is not valid JSON") from None
    return doc
