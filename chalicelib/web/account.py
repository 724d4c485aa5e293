"""The "connected apps" pages: a signed-in user sees which applications hold a grant and revokes
them (RFC 7009's family revocation, from the user's side).

``GET /account/apps`` lists the user's active refresh-token families (a gsi1 query) with client
names, scopes and first/last use. ``POST /account/apps/revoke`` (CSRF-protected) revokes one family
at once: its refresh tokens stop working, and its access tokens fail introspection (and the
authorizer where the revocation check is on). A family is revoked only if it belongs to the
signed-in user. Sign-in here uses the same login code path and brute-force protection as the
password grant and the authorization endpoint; a session ends when its user is disabled or
deleted (``login.signed_in``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Protocol

from chalicelib.core.errors import InvalidGrant
from chalicelib.core.records import Family
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
from chalicelib.store.users import UserStore
from chalicelib.web import pages
from chalicelib.web.pages import Outcome

APPS_PATH = "/account/apps"
LOGIN_PATH = "/account/login"
ACCOUNT_CLIENT = "tessera-account"  # what audit lines name as the client of account sign-ins


class Grants(Protocol):
    def families_of(self, username: str, client_id: str | None = None) -> list[Family]: ...

    def get_family(self, family_id: str) -> Family | None: ...

    def revoke_family(self, family_id: str, reason: str, now: int) -> bool: ...


def _day(epoch: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(epoch))


class AccountPages:
    def __init__(
        self,
        *,
        clients: ClientLookup,
        users: UserStore,
        guard: LoginGuard | None,
        grants: Grants,
        signer: SessionSigner,
        secure_cookies: bool,
        brand: str = "Tessera",
    ) -> None:
        self._clients = clients
        self._users = users
        self._guard = guard
        self._grants = grants
        self._signer = signer
        self._secure = secure_cookies
        self._brand = brand

    def apps(self, cookies: dict[str, str | None], now: int, notice: str = "") -> Outcome:
        session = signed_in(self._signer, self._users, cookies.get(SESSION_COOKIE), now)
        if session is None:
            return self._login_page(cookies)
        return self._apps_page(session, cookies, now, notice)

    def login(
        self,
        form: Sequence[tuple[str, str]],
        cookies: dict[str, str | None],
        source_ip: str | None,
        now: int,
    ) -> Outcome:
        fields = dict(form)
        # The sign-in form was made for "no session" (chalicelib.oauth.sessions).
        if len(fields) != len(form) or not self._signer.check_csrf(
            cookies.get(CSRF_COOKIE), fields.get("csrf"), None
        ):
            return self._forbidden()
        try:
            user = authenticate(
                self._users,
                self._guard,
                raw_username=fields.get("username", ""),
                password=fields.get("password", ""),
                client_id=ACCOUNT_CLIENT,
                source_ip=source_ip,
                now=now,
            )
        except InvalidGrant:
            return self._login_page(
                cookies,
                error="Invalid username or password.",
                username=fields.get("username", "")[:200],
            )
        value, _ = self._signer.issue(user.user_id, user.username, now, epoch=user.epoch)
        # A new CSRF nonce at sign-in: one planted or seen before it is worth nothing now.
        _, set_nonce = csrf_nonce(cookies, secure=self._secure, renew=True)
        return Outcome(
            303,
            {"Location": APPS_PATH, "Cache-Control": "no-store"},
            cookies=[
                cookie(SESSION_COOKIE, value, secure=self._secure, max_age=SESSION_TTL),
                *set_nonce,
            ],
        )

    def revoke(
        self, form: Sequence[tuple[str, str]], cookies: dict[str, str | None], now: int
    ) -> Outcome:
        fields = dict(form)
        session = signed_in(self._signer, self._users, cookies.get(SESSION_COOKIE), now)
        if session is None:
            return self._login_page(cookies)
        if len(fields) != len(form) or not self._signer.check_csrf(
            cookies.get(CSRF_COOKIE), fields.get("csrf"), session
        ):
            return self._forbidden()
        family_id = fields.get("grant", "")
        family = self._grants.get_family(family_id) if family_id else None
        # Only the owner's grants: another user's family id is answered like an unknown one.
        if family is not None and family.user_id == session.user_id:
            self._grants.revoke_family(family_id, "user_revoked", now)
        return Outcome(303, {"Location": APPS_PATH + "?revoked=1", "Cache-Control": "no-store"})

    def logout(
        self, form: Sequence[tuple[str, str]], cookies: dict[str, str | None], now: int
    ) -> Outcome:
        fields = dict(form)
        session = self._signer.read(cookies.get(SESSION_COOKIE), now)
        # Without a live session there is nothing to end (and no session to bind a token to).
        if session is not None and not self._signer.check_csrf(
            cookies.get(CSRF_COOKIE), fields.get("csrf"), session
        ):
            return self._forbidden()
        outcome = pages.error(
            brand=self._brand,
            title="Signed out",
            message="You are signed out.",
            status=200,
            link=(APPS_PATH, "Sign in again"),
        ).outcome()
        outcome.cookies.append(cookie(SESSION_COOKIE, "", secure=self._secure, max_age=0))
        return outcome

    # -- pages ---------------------------------------------------------------------------------

    def _apps_page(
        self, session: Session, cookies: dict[str, str | None], now: int, notice: str
    ) -> Outcome:
        rows = []
        for fam in self._grants.families_of(session.username):
            if fam.revoked or fam.expires <= now or fam.user_id != session.user_id:
                continue
            client = self._clients.get(fam.client_id)
            if client is None:
                continue
            rows.append(
                pages.AppRow(
                    family_id=fam.family_id,
                    client_name=client.name,
                    scopes=fam.scope.split(),
                    first_used=_day(fam.created),
                    last_used=_day(fam.last_used),
                )
            )
        nonce, set_cookie = csrf_nonce(cookies, secure=self._secure)
        outcome = pages.connected_apps(
            brand=self._brand,
            username=session.username,
            rows=rows,
            csrf=self._signer.csrf_token(nonce, session),
            notice=notice,
        ).outcome()
        outcome.cookies.extend(set_cookie)
        return outcome

    def _login_page(
        self, cookies: dict[str, str | None], error: str = "", username: str = ""
    ) -> Outcome:
        nonce, set_cookie = csrf_nonce(cookies, secure=self._secure)
        outcome = pages.account_login(
            brand=self._brand,
            action=LOGIN_PATH,
            csrf=self._signer.csrf_token(nonce, None),
            error=error,
            username=username,
        ).outcome()
        outcome.cookies.extend(set_cookie)
        return outcome

    def _forbidden(self) -> Outcome:
        return pages.error(
            brand=self._brand,
            title="Session expired",
            message="This form is no longer valid. Reload the page and try again.",
            status=403,
        ).outcome()
