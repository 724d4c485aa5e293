"""The authorization endpoint (RFC 6749 §4.1, RFC 7636, RFC 9700 §2.1, RFC 9207) and its pages.

Flow: ``GET /oauth2/authorize`` validates the client and its exact redirect URI first. While either
is in doubt, errors are shown on a page and never redirected (§4.1.2.1: an open redirector is worse
than an error page). After that, every error goes back to the client's redirect URI with ``state``
and ``iss``. Without a session the sign-in page is shown; first-party clients skip consent, others
get a consent page that lists the scopes in plain words. The authorization request travels between
the pages in a signed hidden field, so a form cannot change the client, redirect URI, scope or PKCE
challenge, and every form carries a CSRF token (chalicelib.oauth.sessions). A session counts only
while
its user may still receive a code (``login.signed_in``: not disabled or deleted since); the code
carries the user's epoch, and the exchange checks the user again (chalicelib.oauth.token_endpoint).
OpenID Connect's parameters (``nonce``, ``prompt``, ``max_age``, ``id_token_hint``, ...) are read
and judged by chalicelib.oauth.oidc_request; the code keeps the nonce and the sign-in time.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from urllib.parse import urlencode, urlsplit, urlunsplit

from chalicelib.core.config import Settings
from chalicelib.core.errors import InvalidGrant, InvalidScope
from chalicelib.core.records import Client, CodeGrant
from chalicelib.core.scopes import resolve_scope
from chalicelib.oauth import oidc_request, pkce
from chalicelib.oauth.client_auth import ClientLookup
from chalicelib.oauth.login import LoginGuard, authenticate, signed_in
from chalicelib.oauth.sessions import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    SESSION_TTL,
    Session,
    SessionSigner,
    cookie,
    csrf_nonce,
)
from chalicelib.store.auth_codes import CODE_TTL, CodeStore, new_code
from chalicelib.store.users import UserStore
from chalicelib.web import pages
from chalicelib.web.pages import Outcome

AUTHORIZE_PATH = "/oauth2/authorize"
# How long a sign-in or consent form stays usable (the request travels in it, signed).
REQUEST_TTL = 30 * 60
_LOOPBACK = re.compile(r"(127\.0\.0\.1|\[::1\])(:[0-9]{1,5})?")


@dataclass(frozen=True, slots=True)
class AuthRequest:
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


class _PageError(Exception):
    def __init__(self, title: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.title = title
        self.message = message
        self.status = status


class _RedirectError(Exception):
    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


def _single(params: Sequence[tuple[str, str]]) -> dict[str, str]:
    """Query/form pairs to a dict; a repeated parameter is an error (§3.1), empty = absent."""
    out: dict[str, str] = {}
    seen: set[str] = set()
    for name, value in params:
        if name in seen:
            raise _RedirectError("invalid_request", "a parameter was sent more than once")
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


class AuthorizationEndpoint:
    def __init__(
        self,
        *,
        settings: Settings,
        clients: ClientLookup,
        users: UserStore,
        guard: LoginGuard | None,
        codes: CodeStore,
        signer: SessionSigner,
        secure_cookies: bool,
        brand: str = "Tessera",
        checks: oidc_request.SessionChecks | None = None,
    ) -> None:
        self._s = settings
        self._checks = checks
        self._clients = clients
        self._users = users
        self._guard = guard
        self._codes = codes
        self._signer = signer
        self._secure = secure_cookies
        self._brand = brand

    # -- entry points ------------------------------------------------------------------------

    def get(
        self, query: Sequence[tuple[str, str]], cookies: dict[str, str | None], now: int
    ) -> Outcome:
        names = [n for n, _ in query]
        client_id_values = [v for n, v in query if n == "client_id"]
        redirect_values = [v for n, v in query if n == "redirect_uri"]
        try:
            if len(client_id_values) != 1 or len(redirect_values) > 1:
                raise _PageError("Invalid request", "The application sent a malformed request.")
            client, redirect_uri = self._client_and_redirect(
                client_id_values[0], redirect_values[0] if redirect_values else None
            )
        except _PageError as exc:
            return pages.error(
                brand=self._brand, title=exc.title, message=exc.message, status=exc.status
            ).outcome()
        state = (
            next((v for n, v in query if n == "state"), None) if names.count("state") == 1 else None
        )
        try:
            request = self._validate(client, redirect_uri, _single(query))
        except _RedirectError as exc:
            return self._redirect_error(redirect_uri, exc.error, exc.description, state)
        session = signed_in(self._signer, self._users, cookies.get(SESSION_COOKIE), now)
        return self._continue(client, request, session, cookies, now)

    def post(
        self,
        form: Sequence[tuple[str, str]],
        cookies: dict[str, str | None],
        source_ip: str | None,
        now: int,
    ) -> Outcome:
        try:
            fields = _single(form)
        except _RedirectError:
            return pages.error(
                brand=self._brand, title="Invalid request", message="The form was malformed."
            ).outcome()
        request = self._open_request(fields.get("request"), now)
        if request is None:
            return pages.error(
                brand=self._brand,
                title="Invalid request",
                message=(
                    "The sign-in form has expired or was altered. Start again from the application."
                ),
            ).outcome()
        try:
            client, redirect_uri = self._client_and_redirect(
                request.client_id, request.redirect_uri
            )
        except _PageError as exc:
            return pages.error(
                brand=self._brand, title=exc.title, message=exc.message, status=exc.status
            ).outcome()
        step = fields.get("step")
        if step == "login":
            # The sign-in form was made for "no session" (chalicelib.oauth.sessions).
            if not self._signer.check_csrf(cookies.get(CSRF_COOKIE), fields.get("csrf"), None):
                return self._expired_form()
            try:
                user = authenticate(
                    self._users,
                    self._guard,
                    raw_username=fields.get("username", ""),
                    password=fields.get("password", ""),
                    client_id=client.client_id,
                    source_ip=source_ip,
                    now=now,
                )
            except InvalidGrant:
                return self._login_page(
                    client,
                    request,
                    cookies,
                    now,
                    error="Invalid username or password.",
                    username=fields.get("username", "")[:200],
                )
            value, fresh = self._signer.issue(user.user_id, user.username, now, epoch=user.epoch)
            # A new CSRF nonce at sign-in: one planted or seen before it is worth nothing now.
            nonce, set_nonce = csrf_nonce(cookies, secure=self._secure, renew=True)
            # Signed in for this request: prompt=login, max_age and the hint are satisfied.
            request = replace(
                request, prompt=oidc_request.after_sign_in(request.prompt), hint_sub=None
            )
            outcome = self._continue(client, request, fresh, {**cookies, CSRF_COOKIE: nonce}, now)
            outcome.cookies.append(
                cookie(SESSION_COOKIE, value, secure=self._secure, max_age=SESSION_TTL)
            )
            outcome.cookies.extend(set_nonce)
            return outcome
        current = signed_in(self._signer, self._users, cookies.get(SESSION_COOKIE), now)
        if step == "consent" and current is not None:
            # The consent form was made for this session; a token of another one is refused.
            if not self._signer.check_csrf(cookies.get(CSRF_COOKIE), fields.get("csrf"), current):
                return self._expired_form()
            if fields.get("decision") == "allow":
                if oidc_request.must_sign_in(request.prompt, request.max_age, current, now):
                    # The consent page stood open past max_age: sign in again first.
                    return self._login_page(client, request, cookies, now)
                return self._issue_code(client, request, current, now)
            return self._redirect_error(
                redirect_uri, "access_denied", "the user denied access", request.state
            )
        # No session (it expired on the consent page) or no step: sign in again; nothing changes.
        return self._login_page(client, request, cookies, now)

    # -- validation ----------------------------------------------------------------------------

    def _client_and_redirect(self, client_id: str, redirect_uri: str | None) -> tuple[Client, str]:
        client = self._clients.get(client_id)
        if client is None or not client.allows("authorization_code"):
            raise _PageError(
                "Unknown application", "This application is not registered for sign-in."
            )
        if redirect_uri is None:
            if len(client.redirect_uris) != 1:
                raise _PageError("Invalid redirect", "The application did not say where to return.")
            return client, client.redirect_uris[0]
        if not any(
            redirect_matches(registered, redirect_uri, native=client.public)
            for registered in client.redirect_uris
        ):
            raise _PageError(
                "Invalid redirect",
                "The application asked to return to an address it has not registered.",
            )
        return client, redirect_uri

    def _validate(self, client: Client, redirect_uri: str, params: dict[str, str]) -> AuthRequest:
        if params.get("response_type") != "code":
            raise _RedirectError(
                "unsupported_response_type", "only response_type=code is supported"
            )
        challenge = params.get("code_challenge")
        method = params.get("code_challenge_method")
        if challenge is None:
            if method is not None:
                raise _RedirectError(
                    "invalid_request", "code_challenge_method without code_challenge"
                )
            if client.public:
                raise _RedirectError(
                    "invalid_request", "PKCE (code_challenge with S256) is required"
                )
        else:
            if method != "S256":
                raise _RedirectError("invalid_request", "code_challenge_method must be S256")
            if not pkce.valid_challenge(challenge):
                raise _RedirectError("invalid_request", "code_challenge is malformed")
        try:
            scope = resolve_scope(client, params.get("scope"))
        except InvalidScope as exc:
            raise _RedirectError("invalid_scope", exc.description or "invalid scope") from exc
        try:
            oidc = oidc_request.parse(params)
        except oidc_request.OidcRequestError as exc:
            raise _RedirectError(exc.error, exc.description) from exc
        hint_sub = None
        if oidc.id_token_hint is not None:
            hint_sub = (
                self._checks.hint_subject(oidc.id_token_hint, client) if self._checks else None
            )
            if hint_sub is None:
                raise _RedirectError("invalid_request", "id_token_hint is not an ID token for you")
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

    # -- steps ---------------------------------------------------------------------------------

    def _continue(
        self,
        client: Client,
        request: AuthRequest,
        session: Session | None,
        cookies: dict[str, str | None],
        now: int,
    ) -> Outcome:
        prompt = oidc_request.prompts(request.prompt)
        silent = "none" in prompt
        if session is None or oidc_request.must_sign_in(
            request.prompt, request.max_age, session, now
        ):
            if silent:
                return self._redirect_error(
                    request.redirect_uri, "login_required", "the user must sign in", request.state
                )
            return self._login_page(client, request, cookies, now)
        if (
            request.hint_sub is not None
            and self._checks is not None
            and not self._checks.is_subject(request.hint_sub, client, session)
        ):
            if silent:
                return self._redirect_error(
                    request.redirect_uri,
                    "interaction_required",
                    "another user is signed in",
                    request.state,
                )
            return self._login_page(client, request, cookies, now)
        if client.first_party and "consent" not in prompt:
            return self._issue_code(client, request, session, now)
        if silent:
            if self._checks is not None and self._checks.consented(
                client, session, request.scope, now
            ):
                return self._issue_code(client, request, session, now)
            return self._redirect_error(
                request.redirect_uri, "consent_required", "the user must consent", request.state
            )
        nonce, set_cookie = csrf_nonce(cookies, secure=self._secure)
        outcome = pages.consent(
            brand=self._brand,
            client_name=client.name,
            username=session.username,
            scopes=request.scope.split(),
            action=AUTHORIZE_PATH,
            request_blob=self._request_blob(request, now),
            csrf=self._signer.csrf_token(nonce, session),
            redirects_to=request.redirect_uri,
        ).outcome()
        outcome.cookies.extend(set_cookie)
        return outcome

    def _login_page(
        self,
        client: Client,
        request: AuthRequest,
        cookies: dict[str, str | None],
        now: int,
        error: str = "",
        username: str = "",
    ) -> Outcome:
        nonce, set_cookie = csrf_nonce(cookies, secure=self._secure)
        outcome = pages.login(
            brand=self._brand,
            client_name=client.name,
            action=AUTHORIZE_PATH,
            request_blob=self._request_blob(request, now),
            csrf=self._signer.csrf_token(nonce, None),
            redirects_to=request.redirect_uri,
            error=error,
            username=username or request.login_hint or "",
        ).outcome()
        outcome.cookies.extend(set_cookie)
        return outcome

    def _expired_form(self) -> Outcome:
        return pages.error(
            brand=self._brand,
            title="Session expired",
            message=(
                "Your sign-in form is no longer valid. Go back to the application and start again."
            ),
            status=403,
        ).outcome()

    def _issue_code(
        self, client: Client, request: AuthRequest, session: Session, now: int
    ) -> Outcome:
        code = new_code()
        self._codes.save(
            code,
            CodeGrant(
                client_id=client.client_id,
                redirect_uri=request.redirect_uri,
                code_challenge=request.code_challenge or "",
                user_id=session.user_id,
                username=session.username,
                scope=request.scope,
                expires_at=now + CODE_TTL,
                user_epoch=session.epoch,
                nonce=request.nonce or "",
                auth_time=session.issued_at,
            ),
        )
        params = {"code": code}
        if request.state is not None:
            params["state"] = request.state
        params["iss"] = self._s.issuer
        return Outcome(
            303,
            {"Location": with_query(request.redirect_uri, params), "Cache-Control": "no-store"},
        )

    # -- helpers -------------------------------------------------------------------------------

    def _request_blob(self, request: AuthRequest, now: int) -> str:
        return self._signer.sign_blob(
            json.dumps({"request": asdict(request), "exp": now + REQUEST_TTL})
        )

    def _open_request(self, blob: str | None, now: int) -> AuthRequest | None:
        """The authorization request of a form, if its signature holds and it has not expired."""
        raw = self._signer.open_blob(blob)
        if raw is None:
            return None
        data = json.loads(raw)
        if int(data["exp"]) <= now:
            return None
        return AuthRequest(**data["request"])

    def _redirect_error(
        self, redirect_uri: str, error: str, description: str, state: str | None
    ) -> Outcome:
        params = {"error": error, "error_description": description}
        if state is not None:
            params["state"] = state
        params["iss"] = self._s.issuer
        return Outcome(
            303, {"Location": with_query(redirect_uri, params), "Cache-Control": "no-store"}
        )
