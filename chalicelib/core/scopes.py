"""Scope syntax and grant rules (RFC 6749 §3.3).

A client gets only scopes it is registered for; a request that names none gets all of them (what
Cognito does for client_credentials, and what a first-party client expects).
"""

from __future__ import annotations

import re

from chalicelib.core.errors import InvalidScope
from chalicelib.core.ports import Registered

# scope-token = 1*( %x21 / %x23-5B / %x5D-7E ), separated by single spaces.
_SCOPE_TOKEN = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]+$")


def parse_scope(raw: str) -> frozenset[str]:
    tokens = raw.split(" ")
    if any(not _SCOPE_TOKEN.match(t) for t in tokens):
        raise InvalidScope("the scope parameter is malformed")
    return frozenset(tokens)


def resolve_scope(client: Registered, requested: str | None) -> str:
    """The granted scope: the request, within the client's registration, or all of it."""
    if requested is None:
        return " ".join(sorted(client.scopes))
    wanted = parse_scope(requested)
    if not wanted <= set(client.scopes):
        raise InvalidScope("the requested scope exceeds what the client is registered for")
    return " ".join(sorted(wanted))
