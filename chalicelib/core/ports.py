"""The value types and Protocols the layers share, so that no layer takes them from a module
above it or beside it.

- ``Registered``: what a client is registered for (its scopes), all that scope resolution needs.
- The outcomes of starting and rotating a refresh-token family (a grant, RFC 6749 §6): the token
  endpoint asks for them, ``chalicelib.oauth.refresh_tokens`` produces them.
- ``Users`` and ``Codes``: the store operations the protocol (``chalicelib.oauth``) calls on
  users and authorization codes, implemented by ``chalicelib.store.users`` and ``.auth_codes``.
  The records they carry are ``chalicelib.core.records``. Ports used by one consumer only sit
  beside it (``refresh_tokens.Store``, ``login_guard.Attempts``, ``oidc.Salts``).
"""

from __future__ import annotations

import secrets
from typing import NamedTuple, Protocol

from chalicelib.core.records import CodeGrant, User


class Registered(Protocol):
    """A client as scope resolution sees it (``chalicelib.core.records.Client`` is one)."""

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


class Users(Protocol):
    """The user records the protocol reads (``chalicelib.store.users.UserStore``)."""

    def get(self, username: str) -> User | None: ...

    def may_receive_now(self, username: str, user_id: str, epoch: int) -> bool:
        """``records.may_receive`` on a fresh (strongly consistent) read of the user."""
        ...

    def set_password_hash(self, username: str, phc: str) -> bool: ...


class Codes(Protocol):
    """Authorization codes as the token endpoint redeems them
    (``chalicelib.store.auth_codes.CodeStore``)."""

    def redeem(self, code: str, now: int, family_id: str | None = None) -> CodeGrant | None:
        """Burn the code and return its grant (None: unknown or expired); ``CodeAlreadyUsed``
        with the grant id its first redemption recorded."""
        ...
