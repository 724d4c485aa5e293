"""The authorization endpoint (RFC 6749 §4.1, RFC 7636, RFC 9700 §2.1, RFC 9207): the flow and its
pages, from a judged request to a code.

``GET /oauth2/authorize`` has its request judged by chalicelib.web.authorize_request: while the
client or its exact redirect URI is in doubt the error is shown on a page, never redirected
(§4.1.2.1: an open redirector is worse than an error page); after that, every error goes back to
the client's redirect URI with ``state`` and ``iss``. Without a session the sign-in page is shown;
first-party clients skip consent, others get a consent page that lists the scopes in plain words.
The request travels between the pages in a signed hidden field (``authorize_request.seal``), so a
form cannot change the client, redirect URI, scope or PKCE challenge, and every form carries a
CSRF token (chalicelib.oauth.sessions). A session counts only while its user may still receive a
code (``login.signed_in``: not disabled or deleted since); the code carries the user's epoch, and
the exchange checks the user again (chalicelib.oauth.token_endpoint). OpenID Connect's
``prompt``, ``max_age`` and ``id_token_hint`` decide here whether to ask again
(chalicelib.oauth.oidc_request); the code keeps the nonce and the sign-in time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from chalicelib.core.config import Settings
from chalicelib.core.errors import InvalidGrant
from chalicelib.core.records import Client, CodeGrant
from chalicelib.oauth import oidc_request
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
from chalicelib.web.authorize_request import (
    AuthRequest,
    PageError,
    RedirectError,
    client_and_redirect,
    seal,
    single,
    unseal,
    validate,
    with_query,
)
from chalicelib.web.pages import Outcome

AUTHORIZE_PATH = "/oauth2/authorize"


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
                raise PageError("Invalid request", "The application sent a malformed request.")
            client, redirect_uri = client_and_redirect(
                self._clients, client_id_values[0], redirect_values[0] if redirect_values else None
            )
        except PageError as exc:
            return pages.error(
                brand=self._brand, title=exc.title, message=exc.message, status=exc.status
            ).outcome()
        state = (
            next((v for n, v in query if n == "state"), None) if names.count("state") == 1 else None
        )
        try:
            request = validate(client, redirect_uri, single(query), self._checks)
        except RedirectError as exc:
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
            fields = single(form)
        except RedirectError:
            return pages.error(
                brand=self._brand, title="Invalid request", message="The form was malformed."
            ).outcome()
        request = unseal(self._signer, fields.get("request"), now)
        if request is None:
            return pages.error(
                brand=self._brand,
                title="Invalid request",
                message=(
                    "The sign-in form has expired or was altered. Start again from the application."
                ),
            ).outcome()
        try:
            client, redirect_uri = client_and_redirect(
                self._clients, request.client_id, request.redirect_uri
            )
        except PageError as exc:
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
            request_blob=seal(self._signer, request, now),
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
            request_blob=seal(self._signer, request, now),
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
