"""RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0): ``GET|POST /oauth2/logout``.

Parameters: ``id_token_hint`` (one of our ID tokens, expired or not: a hint), ``client_id``,
``post_logout_redirect_uri`` (only one the client registered, exact match, and only when the
client is known from ``client_id`` or the hint), ``state`` (returned with that redirect).
Anything wrong (a bad hint, a hint for another client than ``client_id``, an unregistered
address, a repeated parameter) is an error page: no sign-out, no redirect.

What a sign-out ends: the browser's session here (its cookie), and the grant named by the hint's
``sid`` (its refresh and access tokens, as a revocation does): the app's sign-in.

When it happens at once: with a hint whose subject is the browser's signed-in user, or with a
hint and no session to be seen (the app's form POST is cross-site, so no SameSite=Lax cookie comes
with it). A GET with neither a hint nor a session has nothing to end. Every other request shows a
confirmation page first (§2: the OP asks when the hint is missing or names someone else), whose
form is CSRF-protected like the sign-in forms: a page elsewhere cannot sign the user out.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple, Protocol

from chalicelib.core.records import Client, Family
from chalicelib.oauth.client_auth import ClientLookup
from chalicelib.oauth.oidc import IdTokenHint, Subjects, read_id_token
from chalicelib.oauth.sessions import CSRF_COOKIE, SESSION_COOKIE, SessionSigner, cookie, csrf_nonce
from chalicelib.tokens.key_objects import VerifyingKey
from chalicelib.web import pages
from chalicelib.web.authorize_request import with_query
from chalicelib.web.pages import Outcome

LOGOUT_PATH = "/oauth2/logout"
_FIELDS = ("id_token_hint", "client_id", "post_logout_redirect_uri", "state")


class Grants(Protocol):
    def family(self, family_id: str) -> Family | None: ...

    def revoke_family(self, family_id: str, reason: str, now: int) -> None: ...


class _Refused(Exception):
    pass


class _Plan(NamedTuple):
    fields: dict[str, str]  # the request's own parameters, for the confirmation form
    hint: IdTokenHint | None
    client: Client | None
    redirect: str | None
    state: str | None


class LogoutEndpoint:
    def __init__(
        self,
        *,
        issuer: str,
        key_for: Callable[[str], VerifyingKey | None],
        clients: ClientLookup,
        subjects: Subjects,
        grants: Grants,
        signer: SessionSigner,
        secure_cookies: bool,
        brand: str = "Tessera",
    ) -> None:
        self._issuer = issuer
        self._key_for = key_for
        self._clients = clients
        self._subjects = subjects
        self._grants = grants
        self._signer = signer
        self._secure = secure_cookies
        self._brand = brand

    def get(
        self, query: Sequence[tuple[str, str]], cookies: dict[str, str | None], now: int
    ) -> Outcome:
        return self._request(query, cookies, now, cookies_seen=True)

    def post(
        self,
        form: Sequence[tuple[str, str]] | None,
        cookies: dict[str, str | None],
        now: int,
    ) -> Outcome:
        if form is None:
            return self._error("The sign-out request was malformed.")
        if ("step", "confirm") not in form:
            # An app's logout request sent as a form: often cross-site, so without our cookies.
            return self._request(form, cookies, now, cookies_seen=False)
        try:
            fields = _single(form)
            plan = self._plan(fields)
        except _Refused as exc:
            return self._error(str(exc))
        if not self._signer.check_csrf(cookies.get(CSRF_COOKIE), fields.get("csrf"), None):
            return pages.error(
                brand=self._brand,
                title="Session expired",
                message="This form is no longer valid. Go back to the application.",
                status=403,
            ).outcome()
        return self._sign_out(plan, now)

    # -- steps ---------------------------------------------------------------------------------

    def _request(
        self,
        params: Sequence[tuple[str, str]],
        cookies: dict[str, str | None],
        now: int,
        *,
        cookies_seen: bool,
    ) -> Outcome:
        try:
            plan = self._plan(_single(params))
        except _Refused as exc:
            return self._error(str(exc))
        session = self._signer.read(cookies.get(SESSION_COOKIE), now)
        if plan.hint is not None and plan.client is not None:
            if session is None or self._subjects.of(plan.client, session.user_id) == plan.hint.sub:
                return self._sign_out(plan, now)
        elif session is None and cookies_seen:
            return self._sign_out(plan, now)  # nothing to end here: only the redirect
        return self._confirm(plan, cookies)

    def _plan(self, fields: dict[str, str]) -> _Plan:
        hint = None
        if "id_token_hint" in fields:
            hint = read_id_token(fields["id_token_hint"], self._key_for, self._issuer)
            if hint is None:
                raise _Refused("The application sent a sign-out request this server cannot read.")
        client_id = fields.get("client_id")
        if hint is not None and client_id is not None and hint.aud != client_id:
            raise _Refused("The sign-out request names two different applications.")
        client_id = client_id or (hint.aud if hint is not None else None)
        client = self._clients.get(client_id) if client_id is not None else None
        if client_id is not None and client is None:
            raise _Refused("This application is not registered.")
        redirect = fields.get("post_logout_redirect_uri")
        if redirect is not None and (
            client is None or redirect not in client.post_logout_redirect_uris
        ):
            raise _Refused("The application asked to return to an address it has not registered.")
        kept = {name: fields[name] for name in _FIELDS if name in fields}
        return _Plan(kept, hint, client, redirect, fields.get("state"))

    def _sign_out(self, plan: _Plan, now: int) -> Outcome:
        if plan.hint is not None and plan.hint.sid is not None:
            family = self._grants.family(plan.hint.sid)
            # The hint's grant, if it is the hint's client's and still live.
            if family is not None and family.client_id == plan.hint.aud and not family.revoked:
                self._grants.revoke_family(plan.hint.sid, "logout", now)
        if plan.redirect is not None:
            params = {"state": plan.state} if plan.state is not None else {}
            outcome = Outcome(
                303,
                {"Location": with_query(plan.redirect, params), "Cache-Control": "no-store"},
            )
        else:
            outcome = pages.error(
                brand=self._brand, title="Signed out", message="You are signed out.", status=200
            ).outcome()
        outcome.cookies.append(cookie(SESSION_COOKIE, "", secure=self._secure, max_age=0))
        return outcome

    def _confirm(self, plan: _Plan, cookies: dict[str, str | None]) -> Outcome:
        # Bound to "no session": the app's cross-site form shows this page without our cookies,
        # and the answer then comes back with them. The nonce cookie still ties it to this
        # browser (signed double-submit).
        nonce, set_cookie = csrf_nonce(cookies, secure=self._secure)
        outcome = pages.logout_confirm(
            brand=self._brand,
            action=LOGOUT_PATH,
            fields=plan.fields,
            csrf=self._signer.csrf_token(nonce, None),
            redirects_to=plan.redirect,
        ).outcome()
        outcome.cookies.extend(set_cookie)
        return outcome

    def _error(self, message: str) -> Outcome:
        return pages.error(brand=self._brand, title="Cannot sign out", message=message).outcome()


def _single(pairs: Sequence[tuple[str, str]]) -> dict[str, str]:
    """Pairs to a dict: a repeated parameter is refused, an empty value counts as absent."""
    names = [name for name, _ in pairs]
    if len(names) != len(set(names)):
        raise _Refused("The sign-out request was malformed.")
    return {name: value for name, value in pairs if value != ""}
