"""The authorization request (RFC 6749 §4.1.1, RFC 7636, RFC 9700 §2.1, OpenID Connect Core
§3.1.2.1): its parameters read and judged before any page is shown, and its trip between the pages.

Two stages, because their errors go to different places: ``client_and_redirect`` settles the
client and its exact redirect URI, and while either is in doubt the error (``PageError``) is shown
on a page, never redirected (§4.1.2.1); ``validate`` then judges the rest (response type, PKCE,
scope, OpenID Connect's parameters via chalicelib.oauth.oidc_request), and its errors
(``RedirectError``) go back to the client. ``seal``/``unseal`` carry the judged request in the
forms' signed hidden field. The flow and the pages are chalicelib.web.authorize's.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from urllib.parse import urlencode, urlsplit, urlunsplit

from chalicelib.core.errors import InvalidScope
from chalicelib.core.records import Client
from chalicelib.core.scopes import resolve_scope
from chalicelib.oauth import oidc_request, pkce
from chalicelib.oauth.client_auth import ClientLookup
from chalicelib.oauth.sessions import SessionSigner

# How long a sign-in or consent form stays usable (the request travels in it, signed).
REQUEST_TTL = 30 * 60
_LOOPBACK = re.compile(r"(127\.0\.0\.1|\[::1\])(:[0-9]{1,5})?")


@dataclass(frozen=True, slots=True)
class AuthRequest:
    """A judged authorization request: what a code will be issued for."""

    client_id: str
    redirect_uri: str
    scope: str
    state: str | None
    code_challenge: str | None
    # OpenID Connect (chalicelib.oauth.oidc_request): hint_sub is the sub of a verified
    # id_token_hint.
    nonce: str | None = None
    prompt: str = ""
    max_age: int | None = None
    login_hint: str | None = None
    hint_sub: str | None = None


class PageError(Exception):
    """The client or its redirect URI is in doubt: an error page, never a redirect."""

    def __init__(self, title: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.title = title
        self.message = message
        self.status = status


class RedirectError(Exception):
    """An error the client hears of at its redirect URI (with ``state`` and ``iss``)."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


def single(params: Sequence[tuple[str, str]]) -> dict[str, str]:
    """Query/form pairs to a dict; a repeated parameter is an error (§3.1), empty = absent."""
    out: dict[str, str] = {}
    seen: set[str] = set()
    for name, value in params:
        if name in seen:
            raise RedirectError("invalid_request", "a parameter was sent more than once")
        seen.add(name)
        if value != "":
            out[name] = value
    return out


def redirect_matches(registered: str, requested: str, *, native: bool) -> bool:
    """Exact string match (RFC 9700 §4.1.1): no prefixes, wildcards or normalisation.

    The one exception, for native apps (public clients) only: a loopback IP redirect URI
    (``http://127.0.0.1/...`` or ``http://[::1]/...``) matches with any port, because the app
    listens on whatever port the OS gives it (RFC 8252 §7.3). Host, path and query stay exact.
    """
    if requested == registered:
        return True
    if not native:
        return False
    reg, req = urlsplit(registered), urlsplit(requested)
    reg_host, req_host = _LOOPBACK.fullmatch(reg.netloc), _LOOPBACK.fullmatch(req.netloc)
    if reg.scheme != "http" or reg_host is None or req_host is None:
        return False
    port = req_host.group(2)
    return (
        req.scheme == "http"
        and req_host.group(1) == reg_host.group(1)
        and (port is None or 0 < int(port[1:]) < 65536)
        and (req.path, req.query, req.fragment) == (reg.path, reg.query, reg.fragment)
        and "#" not in requested
    )


def with_query(uri: str, params: dict[str, str]) -> str:
    """``uri`` with ``params`` added to its query, built with urllib.parse: the registered URI's
    own query stays as it is (RFC 6749 §3.1.2), and an empty one (``/cb?``) gives ``/cb?code=``.
    Registration keeps to URIs that urllib reproduces exactly (chalicelib.ops.admin)."""
    parts = urlsplit(uri)
    query = "&".join(q for q in (parts.query, urlencode(params)) if q)
    return urlunsplit(parts._replace(query=query))


def client_and_redirect(
    clients: ClientLookup, client_id: str, redirect_uri: str | None
) -> tuple[Client, str]:
    """The client and the redirect URI to use: a ``PageError`` (shown, never redirected) while
    either is in doubt."""
    client = clients.get(client_id)
    if client is None or not client.allows("authorization_code"):
        raise PageError("Unknown application", "This application is not registered for sign-in.")
    if redirect_uri is None:
        if len(client.redirect_uris) != 1:
            raise PageError("Invalid redirect", "The application did not say where to return.")
        return client, client.redirect_uris[0]
    if not any(
        redirect_matches(registered, redirect_uri, native=client.public)
        for registered in client.redirect_uris
    ):
        raise PageError(
            "Invalid redirect",
            "The application asked to return to an address it has not registered.",
        )
    return client, redirect_uri


def validate(
    client: Client,
    redirect_uri: str,
    params: dict[str, str],
    checks: oidc_request.SessionChecks | None,
) -> AuthRequest:
    """The rest of the request, judged for this client: a ``RedirectError`` for the client."""
    if params.get("response_type") != "code":
        raise RedirectError("unsupported_response_type", "only response_type=code is supported")
    challenge = params.get("code_challenge")
    method = params.get("code_challenge_method")
    if challenge is None:
        if method is not None:
            raise RedirectError("invalid_request", "code_challenge_method without code_challenge")
        if client.public:
            raise RedirectError("invalid_request", "PKCE (code_challenge with S256) is required")
    else:
        if method != "S256":
            raise RedirectError("invalid_request", "code_challenge_method must be S256")
        if not pkce.valid_challenge(challenge):
            raise RedirectError("invalid_request", "code_challenge is malformed")
    try:
        scope = resolve_scope(client, params.get("scope"))
    except InvalidScope as exc:
        raise RedirectError("invalid_scope", exc.description or "invalid scope") from exc
    try:
        oidc = oidc_request.parse(params)
    except oidc_request.OidcRequestError as exc:
        raise RedirectError(exc.error, exc.description) from exc
    hint_sub = None
    if oidc.id_token_hint is not None:
        hint_sub = checks.hint_subject(oidc.id_token_hint, client) if checks else None
        if hint_sub is None:
            raise RedirectError("invalid_request", "id_token_hint is not an ID token for you")
    return AuthRequest(
        client.client_id,
        redirect_uri,
        scope,
        params.get("state"),
        challenge,
        nonce=oidc.nonce,
        prompt=oidc.prompt,
        max_age=oidc.max_age,
        login_hint=oidc.login_hint,
        hint_sub=hint_sub,
    )


def seal(signer: SessionSigner, request: AuthRequest, now: int) -> str:
    """The request as the signed hidden field of a sign-in or consent form."""
    return signer.sign_blob(json.dumps({"request": asdict(request), "exp": now + REQUEST_TTL}))


def unseal(signer: SessionSigner, blob: str | None, now: int) -> AuthRequest | None:
    """The authorization request of a form, if its signature holds and it has not expired."""
    raw = signer.open_blob(blob)
    if raw is None:
        return None
    data: object = json.loads(raw)  # what seal() wrote: the signature holds
    if not isinstance(data, dict) or int(data["exp"]) <= now:
        return None
    return AuthRequest(**data["request"])
