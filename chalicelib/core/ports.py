"""The value types and Protocols the layers share, so that no layer takes them from a module
above it or beside it.

- ``Registered``: what a client is registered for (its scopes), all that scope resolution needs.
- The outcomes of starting and rotating a refresh-token family (a grant, RFC 6749 §6): the token
  endpoint asks for them, ``chalicelib.oauth.refresh_tokens`` produces them.
"""

from __future__ import annotations

import secrets
from typing import NamedTuple, Protocol


class Registered(Protocol):
    """A client as scope resolution sees it (``chalicelib.store.clients.Client`` is one)."""

    @property
    def scopes(self) -> tuple[str, ...]: ...


class IssuedRefresh(NamedTuple):
    token: str | None  # None: a grant without refresh token (the client lacks the grant type)
    family_id: str


class GrantRefused(Exception):
    """No grant was written: the user may not receive one now, or the grant id was revoked
    before it could be written (a code re-used while its first exchange was in flight)."""


class RotatedRefresh(NamedTuple):
    token: str
    family_id: str
    subject: str
    scope: str  # the scope of the new access token (possibly narrowed)


def new_family_id() -> str:
    """A refresh-token family (one grant) id: 128 random bits."""
    return secrets.token_hex(16)
