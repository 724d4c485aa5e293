"""The OpenID Connect parameters of an authorization request (Core 1.0 §3.1.2.1) and what they
ask of the sign-in (chalicelib.web.authorize).

- ``nonce``: kept with the code and echoed in the ID token (at most ``MAX_NONCE`` characters,
  no control characters).
- ``prompt``: ``none`` (no page: a code if the browser's session and an earlier consent allow,
  else ``login_required``, ``consent_required`` or ``interaction_required`` to the redirect URI),
  ``login`` (sign in again even with a session), ``consent`` (ask even a first-party app's user),
  ``select_account`` (there is one session per browser: it means sign in, as anyone). ``none``
  with another value, or an unknown value, is ``invalid_request``.
- ``max_age``: a session older than that many seconds must sign in again (``login_required``
  with ``prompt=none``).
- ``id_token_hint``: one of our ID tokens for this client (expiry not checked: a hint). With a
  session of another user, ``prompt=none`` answers ``interaction_required`` (the user is signed
  in, but must switch accounts), and the sign-in page is shown otherwise.
- ``login_hint`` fills in the username. ``request``, ``request_uri`` and ``registration`` are
  refused with their ``*_not_supported`` errors; ``response_mode`` may only be ``query``.

A consent counts for ``prompt=none`` while the user holds a live grant of this client that
covers the requested scope: what the connected-apps page lists, and revoking it withdraws it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple, Protocol

from chalicelib.core.records import Client, Family
from chalicelib.oauth.sessions import Session

if TYPE_CHECKING:  # PyJWT only when a hint must be read: the sign-in page's cold start is lean
    from chalicelib.oauth.oidc import Subjects
    from chalicelib.tokens.key_objects import VerifyingKey

MAX_NONCE = 512
PROMPTS = ("none", "login", "consent", "select_account")
_SIGN_IN_PROMPTS = frozenset({"login", "select_account"})
MAX_AGE_DIGITS = 9
MAX_LOGIN_HINT = 256
_NOT_SUPPORTED = {
    "request": "request_not_supported",
    "request_uri": "request_uri_not_supported",
    "registration": "registration_not_supported",
}


class OidcRequestError(Exception):
    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


class OidcParams(NamedTuple):
    nonce: str | None
    prompt: str  # the prompt values, space-separated ("" for none given)
    max_age: int | None
    login_hint: str | None
    id_token_hint: str | None


def _printable(value: str) -> bool:
    return value.isprintable()


def parse(params: dict[str, str]) -> OidcParams:
    """The OpenID Connect parameters of a request (empty values were already dropped)."""
    for name, error in _NOT_SUPPORTED.items():
        if name in params:
            raise OidcRequestError(error, f"the {name} parameter is not supported")
    if params.get("response_mode", "query") != "query":
        raise OidcRequestError("invalid_request", "only response_mode=query is supported")
    nonce = params.get("nonce")
    if nonce is not None and (len(nonce) > MAX_NONCE or not _printable(nonce)):
        raise OidcRequestError("invalid_request", "nonce is too long or malformed")
    values = params.get("prompt", "").split(" ") if "prompt" in params else []
    if any(v not in PROMPTS for v in values):
        raise OidcRequestError("invalid_request", "unsupported prompt value")
    if "none" in values and len(set(values)) > 1:
        raise OidcRequestError("invalid_request", "prompt=none cannot be combined")
    raw_age = params.get("max_age")
    max_age = None
    if raw_age is not None:
        if not (raw_age.isascii() and raw_age.isdigit() and len(raw_age) <= MAX_AGE_DIGITS):
            raise OidcRequestError("invalid_request", "max_age must be a number of seconds")
        max_age = int(raw_age)
    hint = params.get("login_hint")
    if hint is not None and (len(hint) > MAX_LOGIN_HINT or not _printable(hint)):
        hint = None  # only a convenience: a bad one is dropped
    return OidcParams(
        nonce, " ".join(dict.fromkeys(values)), max_age, hint, params.get("id_token_hint")
    )


def prompts(prompt: str) -> frozenset[str]:
    return frozenset(prompt.split())


def must_sign_in(prompt: str, max_age: int | None, session: Session | None, now: int) -> bool:
    """Whether the request needs a sign-in now: no session, ``prompt`` asks for one, or the
    session is older than ``max_age``."""
    if session is None or prompts(prompt) & _SIGN_IN_PROMPTS:
        return True
    return max_age is not None and now - session.issued_at > max_age


def after_sign_in(prompt: str) -> str:
    """The prompt once the user has signed in for this request: nothing left to ask for."""
    return " ".join(p for p in prompt.split() if p not in _SIGN_IN_PROMPTS)


class Grants(Protocol):
    def families_of(self, username: str, client_id: str | None = None) -> list[Family]: ...


class SessionChecks:
    """What ``prompt=none`` and ``id_token_hint`` need beyond the request: our ID tokens, the
    subjects clients see, and the grants that stand for a consent."""

    def __init__(
        self,
        *,
        issuer: str,
        key_for: Callable[[str], VerifyingKey | None],
        subjects: Subjects,
        grants: Grants,
    ) -> None:
        self._issuer = issuer
        self._key_for = key_for
        self._subjects = subjects
        self._grants = grants

    def hint_subject(self, id_token: str, client: Client) -> str | None:
        """The ``sub`` of an ID token we issued to ``client``, or None."""
        from chalicelib.oauth.oidc import read_id_token

        hint = read_id_token(id_token, self._key_for, self._issuer)
        if hint is None or hint.aud != client.client_id:
            return None
        return hint.sub

    def is_subject(self, sub: str, client: Client, session: Session) -> bool:
        return self._subjects.of(client, session.user_id) == sub

    def consented(self, client: Client, session: Session, scope: str, now: int) -> bool:
        wanted = set(scope.split())
        return any(
            not f.revoked
            and f.expires > now
            and f.user_id == session.user_id
            and wanted <= set(f.scope.split())
            for f in self._grants.families_of(session.username, client.client_id)
        )
