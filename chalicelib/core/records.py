"""The records the protocol reads and the stores keep: clients, users, grants (refresh-token
families and their tokens), authorization codes and login counters, with the rules that belong to
the record itself (the username policy, ``may_receive``, a client's secret check).

Plain values: no storage here. ``chalicelib.store`` reads and writes them, ``chalicelib.oauth``
decides with them, and neither imports the other (README "Layout").
"""

from __future__ import annotations

import enum
import hashlib
import unicodedata
from typing import NamedTuple

from chalicelib.core.untrusted import same

# --- clients (RFC 6749 §2) -------------------------------------------------------------------


def hash_secret(secret: str) -> str:
    """What is stored of a client secret (256 random bits, so a plain SHA-256 is enough)."""
    return "sha256:" + hashlib.sha256(secret.encode("utf-8")).hexdigest()


class Client(NamedTuple):
    client_id: str
    name: str
    grant_types: tuple[str, ...]
    scopes: tuple[str, ...]
    public: bool = False
    secret_hash: str | None = None
    introspect: bool = False
    first_party: bool = False
    redirect_uris: tuple[str, ...] = ()
    created_at: int = 0
    # OpenID Connect (chalicelib.oauth.oidc, .logout): where RP-initiated logout may return to, and
    # the subject type: "public" (the user id) or "pairwise" (one per sector, a host).
    post_logout_redirect_uris: tuple[str, ...] = ()
    subject_type: str = "public"
    sector: str = ""

    @property
    def confidential(self) -> bool:
        return not self.public

    def allows(self, grant_type: str) -> bool:
        return grant_type in self.grant_types

    def check_secret(self, secret: str) -> bool:
        if self.public or not self.secret_hash:
            return False
        return same(hash_secret(secret), self.secret_hash)

    def public_view(self) -> dict[str, object]:
        """What the admin command shows: everything but the secret's digest."""
        return {
            "client_id": self.client_id,
            "name": self.name,
            "grant_types": list(self.grant_types),
            "scope": " ".join(self.scopes),
            "public": self.public,
            "introspect": self.introspect,
            "first_party": self.first_party,
            "redirect_uris": list(self.redirect_uris),
            "created_at": self.created_at,
            "post_logout_redirect_uris": list(self.post_logout_redirect_uris),
            "subject_type": self.subject_type,
            "sector": self.sector,
        }


# --- users (resource owners) -----------------------------------------------------------------
# Username policy: Unicode NFKC, then case-folded; 1-128 characters after that, no control
# characters, no surrounding white space, applied on every path that takes a username.

MAX_USERNAME = 128


class InvalidUsername(ValueError):
    pass


def normalize_username(raw: str) -> str:
    name = unicodedata.normalize("NFKC", raw).casefold()
    if not name or len(name) > MAX_USERNAME or name != name.strip():
        raise InvalidUsername("username must be 1-128 characters without surrounding spaces")
    if any(unicodedata.category(ch).startswith("C") for ch in name):
        raise InvalidUsername("username must not contain control characters")
    return name


class User(NamedTuple):
    username: str
    user_id: str
    password_hash: str
    disabled: bool = False
    created_at: int = 0
    epoch: int = 0  # bumped by every disable (chalicelib.store.users)
    # OpenID Connect profile claims (chalicelib.oauth.oidc), set with the admin command.
    email: str | None = None
    email_verified: bool = False
    name: str | None = None


def may_receive(user: User | None, user_id: str, epoch: int) -> bool:
    """Whether the subject ``user_id``, whose session, code or grant was issued under ``epoch``,
    may be given something now: it still exists under that id, is not disabled, and nothing
    ended what was issued to it since."""
    if user is None:
        return False
    return user.user_id == user_id and not user.disabled and user.epoch == epoch


# --- grants: refresh-token families and their tokens (RFC 6749 §6) ----------------------------

ACTIVE = "active"
ROTATED = "rotated"


class TokenRecord(NamedTuple):
    token_hash: str
    family_id: str
    client_id: str
    user_id: str
    username: str
    scope: str
    pepper_id: str
    state: str
    created: int
    expires: int  # absolute: the family's end
    idle_expires: int  # this token's end if it is not used
    rotated_at: int | None = None
    successor_hash: str | None = None
    successor_pepper: str | None = None
    user_epoch: int = 0  # the user's epoch when the family began


class Family(NamedTuple):
    family_id: str
    user_id: str
    username: str
    client_id: str
    scope: str
    created: int
    last_used: int
    expires: int
    revoked: bool = False
    revoked_at: int | None = None
    revoked_reason: str | None = None
    user_epoch: int = 0
    auth_time: int = 0  # OpenID Connect: when the user signed in for this grant (0: not known)


class RotateOutcome(enum.Enum):
    COMMITTED = "committed"
    TOKEN_NOT_ACTIVE = "token_not_active"  # noqa: S105 - rotated or expired since it was read
    FAMILY_REVOKED = "family_revoked"  # revoked or gone
    USER_INVALID = "user_invalid"  # disabled, deleted, replaced or a new epoch
    CONTENDED = "contended"  # another transaction held an item: outcome unknown


class RetrySnapshot(NamedTuple):
    """What the retry window needs, read in one consistent read."""

    successor: TokenRecord | None
    family: Family | None
    user_ok: bool


# --- authorization codes (RFC 6749 §4.1.2) ----------------------------------------------------


class CodeGrant(NamedTuple):
    client_id: str
    redirect_uri: str
    code_challenge: str
    user_id: str
    username: str
    scope: str
    expires_at: int
    user_epoch: int = 0  # the epoch of the session that got the code
    # OpenID Connect (chalicelib.oauth.oidc): the request's nonce and when the user signed in.
    nonce: str = ""
    auth_time: int = 0


class CodeAlreadyUsed(Exception):
    def __init__(self, family_id: str | None) -> None:
        super().__init__("authorization code re-used")
        self.family_id = family_id


# --- login counters (chalicelib.oauth.login_guard) --------------------------------------------


class Counter(NamedTuple):
    """One failed-login counter as stored; a counter past its ``expires`` counts as zero."""

    failures: int = 0
    last_failure: int = 0
    expires: int = 0


class LoginRecords(NamedTuple):
    """What a sign-in attempt's check reads in one round trip: the user (None if unknown) and
    the counters of the username, of the username at the source, of the source, and until when
    the user is known at the source (0: not known)."""

    user: User | None
    username: Counter
    pair: Counter
    source: Counter
    known_until: int
