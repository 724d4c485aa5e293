"""Peppers: the secret HMAC keys behind refresh-token hashes (RFC 9700 §4.14; README, "Refresh
tokens").

The pepper secret holds a small set::

    {"peppers": [{"id": "1a2b3c4d", "secret": "<b64url of 32 random bytes>",
                  "state": "current|previous", "created": 1700000000}]}

Exactly one pepper is ``current``: new refresh tokens are hashed (and successors derived) with it.
``previous`` peppers still verify the tokens issued under them. Every token names its pepper
(``tessera_rt_<pepper id>_<random>``), so a lookup is one ``GetItem`` whatever the set holds; a
token whose pepper has left the set can no longer be found, i.e. it is invalid.

This module parses and caches the set for the API; the rotation function
(``chalicelib.ops.rotation``) reads the set with the same parser (``parse_pepper_set``, which also
reads its ``published``/``demoted`` stamps) and writes it with its own code, which keeps them.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
from typing import NamedTuple

from chalicelib.tokens.keys import CachedSecret, KeySetError, ParsedSecret, number, stamp

STATES = ("current", "previous")
PEPPER_BYTES = 32
# Pepper ids appear inside tokens, between two "_": lowercase hex only, so the split is unambiguous.
_ID = re.compile(r"[0-9a-f]{8,32}")


class PepperSetError(KeySetError):
    """The stored pepper set is malformed or has no current pepper (a deployment fault)."""


class Pepper(NamedTuple):
    id: str
    secret: bytes
    state: str
    created: int
    # When readers could first see it, and when it stopped hashing (chalicelib.ops.rotation).
    published: int | None = None
    demoted: int | None = None

    def __repr__(self) -> str:  # never the secret
        return f"Pepper(id={self.id!r}, state={self.state!r}, created={self.created!r})"


def valid_id(pepper_id: str) -> bool:
    return _ID.fullmatch(pepper_id) is not None


def encode_secret(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def parse_pepper_set(raw: str) -> list[Pepper]:
    """The pepper set as stored; the one parser for the API and the rotation function. Anything
    malformed is a ``PepperSetError``: no pepper is ever skipped."""
    try:
        doc: object = json.loads(raw)
        items = doc["peppers"] if isinstance(doc, dict) else None
        if not isinstance(items, list):
            raise PepperSetError("no pepper list")
        return [_pepper(item) for item in items]
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        raise PepperSetError("malformed pepper set") from exc


def _pepper(item: object) -> Pepper:
    if not isinstance(item, dict):
        raise PepperSetError("a pepper is not an object")
    pepper = Pepper(
        id=str(item["id"]),
        secret=_unb64(str(item["secret"])),
        state=str(item["state"]),
        created=number(item["created"]),
        published=stamp(item, "published"),
        demoted=stamp(item, "demoted"),
    )
    if pepper.state not in STATES or not valid_id(pepper.id):
        raise PepperSetError("bad pepper state or id")
    if len(pepper.secret) < PEPPER_BYTES:
        raise PepperSetError("pepper too short")
    return pepper


def dump_pepper_set(peppers: list[Pepper]) -> str:
    return json.dumps(
        {
            "peppers": [
                {
                    "id": p.id,
                    "secret": encode_secret(p.secret),
                    "state": p.state,
                    "created": p.created,
                }
                for p in peppers
            ]
        },
        sort_keys=True,
    )


def new_pepper(now: int, state: str = "current") -> Pepper:
    return Pepper(secrets.token_hex(4), secrets.token_bytes(PEPPER_BYTES), state, now)


def bootstrap_pepper_set(now: int) -> str:
    """A first set: one current pepper (JSON for the secret)."""
    return dump_pepper_set([new_pepper(now)])


class _Peppers:
    __slots__ = ("by_id", "current")  # not a NamedTuple: cheaper to define on a cold start

    def __init__(self, current: Pepper, by_id: dict[str, Pepper]) -> None:
        self.current = current
        self.by_id = by_id


def _peppers(raw: str) -> _Peppers:
    peppers = parse_pepper_set(raw)
    current = [p for p in peppers if p.state == "current"]
    if len(current) != 1:
        raise PepperSetError("the pepper set needs exactly one current pepper")
    return _Peppers(current[0], {p.id: p for p in peppers})


class PepperRing:
    """The pepper set of this container, re-parsed only when the cached secret changes."""

    def __init__(self, secret: CachedSecret) -> None:
        self._peppers = ParsedSecret(secret, _peppers)

    def current(self) -> Pepper:
        return self._peppers.get().current

    def get(self, pepper_id: str) -> Pepper | None:
        """The pepper with this id. An unknown id may force one rate-limited re-read: another
        container may already hash with a pepper this one has not seen yet."""
        if not valid_id(pepper_id):
            return None
        return self._peppers.find(lambda peppers: peppers.by_id.get(pepper_id))

    def all(self) -> list[Pepper]:
        """Every known pepper, the current one first (for signing, then verifying)."""
        peppers = self._peppers.get()
        return [peppers.current, *(p for p in peppers.by_id.values() if p.id != peppers.current.id)]
