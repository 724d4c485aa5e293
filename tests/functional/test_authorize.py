"""Authorization code + PKCE (RFC 6749 §4.1, RFC 7636, RFC 9700 §2.1, RFC 9207), the hosted
sign-in/consent pages and the connected-apps page, driven through the app in-process."""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from chalicelib.oauth import pkce
from tests.functional.conftest import ISSUER, basic, body, form_post

REDIRECT = "https://app.example/cb"
VERIFIER = "v" * 20 + "-._~" + "x" * 30
CHALLENGE = pkce.s256(VERIFIER)
PASSWORD = "correct horse battery"
# The page cookies' names on an https stage (the tests' settings): __Host- prefixed.
SESSION = "__Host-tessera_session"
CSRF = "__Host-tessera_csrf"


class Browser:
    """A tiny cookie-keeping browser over chalice.test's client."""

    def __init__(self, app_client):
        self.http = app_client.http
        self.cookies: dict[str, str] = {}

    def _headers(self, extra=None):
        h = dict(extra or {})
        if self.cookies:
            h["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        return h

    def _keep(self, resp):
        raw = resp.headers.get("Set-Cookie") or resp.headers.get("set-cookie")
        values = raw if isinstance(raw, list) else ([raw] if raw else [])
        for v in values:
            name, _, rest = v.partition("=")
            value = rest.split(";", 1)[0]
            if "Max-Age=0" in v:
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value
        return resp

    def get(self, path):
        return self._keep(self.http.get(path, headers=self._headers()))

    def post(self, path, fields):
        h = self._headers({"Content-Type": "application/x-www-form-urlencoded"})
        return self._keep(self.http.post(path, headers=h, body=urlencode(fields)))


def hidden(html: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert found, f"no hidden field {name}"
    return found.group(1).replace("&quot;", '"').replace("&amp;", "&")


def html(resp) -> str:
    return resp.body.decode() if isinstance(resp.body, bytes) else resp.body


def authorize_path(client_id: str, **overrides: str | None) -> str:
    params: dict[str, str | None] = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT,
        "scope": "people:read",
        "state": "st-123",
        "code_challenge": CHALLENGE,
        "code_challenge_method": "S256",
    }
    params.update(overrides)
    return "/oauth2/authorize?" + urlencode({k: v for k, v in params.items() if v is not None})


def location(resp) -> dict[str, str]:
    assert resp.status_code == 303, html(resp)
    loc = resp.headers["Location"]
    assert loc.startswith(REDIRECT)
    return {k: v[0] for k, v in parse_qs(urlsplit(loc).query).items()}


@pytest.fixture
def spa(make_client):
    """A public single-page app: code + PKCE, refresh tokens, consent required."""
    return make_client(
        name="Photo App",
        grant_types=["authorization_code", "refresh_token"],
        scopes=["people:read", "articles:read"],
        public=True,
        redirect_uris=[REDIRECT],
    )


@pytest.fixture
def alice(make_user):
    return make_user("alice", PASSWORD)


def sign_in(browser: Browser, path: str, username="alice", password=PASSWORD):
    page = browser.get(path)
    assert page.status_code == 200, html(page)
    return browser.post(
        "/oauth2/authorize",
        {
            "request": hidden(html(page), "request"),
            "csrf": hidden(html(page), "csrf"),
            "step": "login",
            "username": username,
            "password": password,
        },
    )


def consent(browser: Browser, page, decision="allow"):
    return browser.post(
        "/oauth2/authorize",
        {
            "request": hidden(html(page), "request"),
            "csrf": hidden(html(page), "csrf"),
            "step": "consent",
            "decision": decision,
        },
    )


def get_code(app_client, client, **overrides) -> dict[str, str]:
    b = Browser(app_client)
    page = sign_in(b, authorize_path(client["client_id"], **overrides))
    if page.status_code == 200:  # consent page for third-party apps
        page = consent(b, page)
    return location(page)


def exchange(app_client, client, code, verifier=VERIFIER, redirect_uri=REDIRECT, **extra):
    params = {"grant_type": "authorization_code", "code": code, "client_id": client["client_id"]}
    if redirect_uri is not None:
        params["redirect_uri"] = redirect_uri
    if verifier is not None:
        params["code_verifier"] = verifier
    params.update(extra)
    return form_post(app_client, "/oauth2/token", params)


def test_full_flow_issues_tokens_for_the_signed_in_user(app_client, spa, alice):
    got = get_code(app_client, spa)
    assert got["state"] == "st-123"
    assert got["iss"] == ISSUER
    r = exchange(app_client, spa, got["code"])
    assert r.status_code == 200, r.body
    tokens = body(r)
    assert tokens["scope"] == "people:read"
    assert tokens["refresh_token"].startswith("tessera_rt_")
    claims = json.loads(
        __import__("base64").urlsafe_b64decode(tokens["access_token"].split(".")[1] + "==")
    )
    assert claims["sub"] == alice["user_id"]
    assert claims["client_id"] == spa["client_id"]


def test_sign_in_page_has_csrf_and_no_external_assets(app_client, spa):
    page = Browser(app_client).get(authorize_path(spa["client_id"]))
    text = html(page)
    assert page.status_code == 200
    assert "Photo App" in text
    assert 'name="csrf"' in text
    assert "http://" not in text.replace("form-action", "")
    assert "<script" not in text
    assert page.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]


def test_consent_page_lists_scopes_in_plain_words(app_client, spa, alice):
    b = Browser(app_client)
    page = sign_in(b, authorize_path(spa["client_id"], scope="people:read articles:read"))
    assert page.status_code == 200
    assert "See the people directory" in html(page)
    assert "Read articles" in html(page)


def test_consent_page_links_to_connected_apps(app_client, spa, alice):
    b = Browser(app_client)
    text = html(sign_in(b, authorize_path(spa["client_id"])))
    links = re.findall(r'<a href="([^"]+)"[^>]*>([^<]+)</a>', text)
    assert ("/account/apps", "Connected apps") in links
    assert "Connected apps" in html(b.get("/account/apps"))  # where the link leads


def test_first_party_client_skips_consent(app_client, make_client, alice):
    client = make_client(
        grant_types=["authorization_code"],
        public=True,
        first_party=True,
        redirect_uris=[REDIRECT],
    )
    resp = sign_in(Browser(app_client), authorize_path(client["client_id"]))
    assert "code" in location(resp)


def test_denied_consent_redirects_access_denied_with_state(app_client, spa, alice):
    b = Browser(app_client)
    page = sign_in(b, authorize_path(spa["client_id"]))
    got = location(consent(b, page, "deny"))
    assert got["error"] == "access_denied"
    assert got["state"] == "st-123"
    assert "code" not in got


@pytest.mark.parametrize(
    ("client_id", "redirect_uri"),
    [
        ("no-such-client", REDIRECT),
        (None, REDIRECT),
        ("SPA", "https://evil.example/cb"),
        ("SPA", REDIRECT + "/more"),
        ("SPA", REDIRECT + "?x=1"),
        ("SPA", "https://APP.example/cb"),
    ],
)
def test_bad_client_or_redirect_uri_is_shown_on_a_page_never_redirected(
    app_client, spa, client_id, redirect_uri
):
    cid = spa["client_id"] if client_id == "SPA" else client_id
    resp = Browser(app_client).get(authorize_path(cid, redirect_uri=redirect_uri))
    assert resp.status_code == 400
    assert "Location" not in resp.headers
    assert "text/html" in resp.headers["Content-Type"]


def test_redirect_uri_may_be_omitted_only_with_one_registered(app_client, spa, alice):
    got = get_code(app_client, spa, redirect_uri=None)
    assert "code" in got
    assert body(exchange(app_client, spa, got["code"], redirect_uri=None))["access_token"]


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"response_type": None}, "unsupported_response_type"),
        ({"code_challenge": None, "code_challenge_method": None}, "invalid_request"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge_method": None}, "invalid_request"),
        ({"code_challenge": "short"}, "invalid_request"),
        ({"scope": "admin"}, "invalid_scope"),
    ],
)
def test_invalid_requests_redirect_the_error_with_state_and_iss(app_client, spa, overrides, error):
    got = location(Browser(app_client).get(authorize_path(spa["client_id"], **overrides)))
    assert got["error"] == error
    assert got["state"] == "st-123"
    assert got["iss"] == ISSUER


def test_repeated_parameter_is_invalid_request(app_client, spa):
    path = authorize_path(spa["client_id"]) + "&scope=articles:read"
    got = location(Browser(app_client).get(path))
    assert got["error"] == "invalid_request"


def test_wrong_password_and_unknown_user_get_the_same_page(app_client, spa, alice):
    wrong = sign_in(Browser(app_client), authorize_path(spa["client_id"]), password="nope-nope")
    unknown = sign_in(Browser(app_client), authorize_path(spa["client_id"]), username="nobody")
    assert wrong.status_code == unknown.status_code == 401
    assert "Invalid username or password." in html(wrong)

    def strip(t):
        return re.sub(r'value="[^"]*"', "", t)

    assert strip(html(wrong)) == strip(html(unknown))


def test_login_post_without_csrf_token_is_refused(app_client, spa, alice):
    b = Browser(app_client)
    page = b.get(authorize_path(spa["client_id"]))
    resp = b.post(
        "/oauth2/authorize",
        {
            "request": hidden(html(page), "request"),
            "csrf": "forged",
            "step": "login",
            "username": "alice",
            "password": PASSWORD,
        },
    )
    assert resp.status_code == 403
    assert SESSION not in b.cookies


def test_login_post_from_another_browser_is_refused(app_client, spa, alice):
    page = Browser(app_client).get(authorize_path(spa["client_id"]))
    other = Browser(app_client)
    other.get(authorize_path(spa["client_id"]))  # has its own csrf cookie
    resp = other.post(
        "/oauth2/authorize",
        {
            "request": hidden(html(page), "request"),
            "csrf": hidden(html(page), "csrf"),
            "step": "login",
            "username": "alice",
            "password": PASSWORD,
        },
    )
    assert resp.status_code == 403


def test_tampered_authorization_request_is_refused(app_client, spa, alice):
    b = Browser(app_client)
    page = b.get(authorize_path(spa["client_id"]))
    blob = hidden(html(page), "request")
    resp = b.post(
        "/oauth2/authorize",
        {
            "request": "x" + blob,
            "csrf": hidden(html(page), "csrf"),
            "step": "login",
            "username": "alice",
            "password": PASSWORD,
        },
    )
    assert resp.status_code == 400
    assert "Location" not in resp.headers


def test_session_cookie_is_httponly_samesite_lax_and_secure(app_client, spa, alice):
    b = Browser(app_client)
    page = b.get(authorize_path(spa["client_id"]))
    resp = b.post(
        "/oauth2/authorize",
        {
            "request": hidden(html(page), "request"),
            "csrf": hidden(html(page), "csrf"),
            "step": "login",
            "username": "alice",
            "password": PASSWORD,
        },
    )
    raw = resp.headers.get("Set-Cookie")
    cookies = raw if isinstance(raw, list) else [raw]
    session = next(c for c in cookies if c.startswith(SESSION + "="))
    assert "HttpOnly" in session
    assert "SameSite=Lax" in session
    assert "Secure" in session


def test_signed_in_browser_is_not_asked_to_sign_in_again(app_client, spa, alice):
    b = Browser(app_client)
    consent_page = sign_in(b, authorize_path(spa["client_id"]))
    assert consent_page.status_code == 200
    again = b.get(authorize_path(spa["client_id"], state="second"))
    assert 'name="step" value="consent"' in html(again)


# --- the token exchange ------------------------------------------------------------------------


def test_code_is_single_use_and_reuse_revokes_what_it_issued(app_client, spa, alice):
    code = get_code(app_client, spa)["code"]
    first = body(exchange(app_client, spa, code))
    second = exchange(app_client, spa, code)
    assert second.status_code == 400
    assert body(second)["error"] == "invalid_grant"
    refreshed = form_post(
        app_client,
        "/oauth2/token",
        {
            "grant_type": "refresh_token",
            "refresh_token": first["refresh_token"],
            "client_id": spa["client_id"],
        },
    )
    assert body(refreshed)["error"] == "invalid_grant"


@pytest.mark.parametrize(
    "verifier",
    [None, "w" * 43, VERIFIER + "x", "short", CHALLENGE],
)
def test_wrong_or_missing_code_verifier_is_invalid_grant(app_client, spa, alice, verifier):
    code = get_code(app_client, spa)["code"]
    r = exchange(app_client, spa, code, verifier=verifier)
    assert r.status_code == 400
    assert body(r)["error"] == "invalid_grant"


def test_code_is_bound_to_its_client(app_client, spa, make_client, alice):
    other = make_client(grant_types=["authorization_code"], public=True, redirect_uris=[REDIRECT])
    code = get_code(app_client, spa)["code"]
    r = exchange(app_client, other, code)
    assert body(r)["error"] == "invalid_grant"


def test_code_is_bound_to_its_redirect_uri(app_client, make_client, alice):
    client = make_client(
        grant_types=["authorization_code"],
        public=True,
        redirect_uris=[REDIRECT, "https://app.example/other"],
    )
    code = get_code(app_client, client)["code"]
    r = exchange(app_client, client, code, redirect_uri="https://app.example/other")
    assert body(r)["error"] == "invalid_grant"


def test_code_expires(app_client, spa, alice, clock):
    code = get_code(app_client, spa)["code"]
    clock.advance(121)
    assert body(exchange(app_client, spa, code))["error"] == "invalid_grant"


def test_confidential_client_authenticates_and_may_skip_pkce(app_client, make_client, alice):
    web = make_client(
        grant_types=["authorization_code"], redirect_uris=[REDIRECT], first_party=True
    )
    code = get_code(app_client, web, code_challenge=None, code_challenge_method=None)["code"]
    no_auth = exchange(app_client, web, code, verifier=None)
    assert body(no_auth)["error"] == "invalid_client"
    code = get_code(app_client, web, code_challenge=None, code_challenge_method=None)["code"]
    ok = form_post(
        app_client,
        "/oauth2/token",
        {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT},
        {"Authorization": basic(web["client_id"], web["client_secret"])},
    )
    assert ok.status_code == 200, ok.body


def test_metadata_advertises_the_code_flow(app_client, spa):
    doc = body(app_client.http.get("/.well-known/oauth-authorization-server"))
    assert doc["authorization_endpoint"] == ISSUER + "/oauth2/authorize"
    assert doc["response_types_supported"] == ["code"]
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert "authorization_code" in doc["grant_types_supported"]


# --- connected apps ------------------------------------------------------------------------


def account_sign_in(b: Browser):
    page = b.get("/account/apps")
    assert 'action="/account/login"' in html(page)
    resp = b.post(
        "/account/login",
        {"csrf": hidden(html(page), "csrf"), "username": "alice", "password": PASSWORD},
    )
    assert resp.status_code == 303
    return b.get("/account/apps")


def test_connected_apps_lists_the_grant_and_revokes_it(app_client, spa, alice):
    tokens = body(exchange(app_client, spa, get_code(app_client, spa)["code"]))
    b = Browser(app_client)
    page = account_sign_in(b)
    assert "Photo App" in html(page)
    grant = hidden(html(page), "grant")
    done = b.post("/account/apps/revoke", {"csrf": hidden(html(page), "csrf"), "grant": grant})
    assert done.status_code == 303
    after = b.get("/account/apps")
    assert "Photo App" not in html(after)
    refreshed = form_post(
        app_client,
        "/oauth2/token",
        {
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": spa["client_id"],
        },
    )
    assert body(refreshed)["error"] == "invalid_grant"


def test_revoke_without_csrf_does_nothing(app_client, spa, alice):
    tokens = body(exchange(app_client, spa, get_code(app_client, spa)["code"]))
    b = Browser(app_client)
    page = account_sign_in(b)
    resp = b.post("/account/apps/revoke", {"csrf": "forged", "grant": hidden(html(page), "grant")})
    assert resp.status_code == 403
    refreshed = form_post(
        app_client,
        "/oauth2/token",
        {
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": spa["client_id"],
        },
    )
    assert refreshed.status_code == 200


def test_logout_ends_the_session(app_client, spa, alice):
    b = Browser(app_client)
    page = account_sign_in(b)
    b.post("/account/logout", {"csrf": hidden(html(page), "csrf")})
    assert 'action="/account/login"' in html(b.get("/account/apps"))


# --- redirects: open-redirect attempts, state, iss, registered query ------------------------

OPEN_REDIRECT_ATTEMPTS = [
    "https://app.example/cb/../../evil",
    "https://app.example/cb#frag",
    "https://app.example.evil.example/cb",
    "https://app.example@evil.example/cb",
    "//evil.example/cb",
    "https://app.example/cb%2F..%2Fevil",
    "https://app.example/cb ",
    "http://app.example/cb",
    "https://app.example/CB",
    "https://app.example:443/cb",
]


def test_open_redirect_attempts_are_shown_on_a_page(app_client, spa):
    """Exact string matching: lookalikes, path tricks and normalised forms all fail (one world
    for all variants keeps the suite fast)."""
    b = Browser(app_client)
    for uri in OPEN_REDIRECT_ATTEMPTS:
        resp = b.get(authorize_path(spa["client_id"], redirect_uri=uri, response_type="token"))
        assert resp.status_code == 400, uri
        assert "Location" not in resp.headers, uri


def test_invalid_request_with_an_unregistered_redirect_uri_stays_on_a_page(app_client, spa):
    """An error that would normally be redirected is shown on a page while the redirect URI is
    in doubt (RFC 6749 §4.1.2.1): otherwise the endpoint is an open redirector."""
    path = authorize_path(
        spa["client_id"], redirect_uri="https://evil.example/cb", response_type="token"
    )
    resp = Browser(app_client).get(path)
    assert resp.status_code == 400
    assert "Location" not in resp.headers
    assert "evil.example" not in html(resp)


def test_unknown_client_with_an_invalid_request_is_not_redirected(app_client):
    resp = Browser(app_client).get(authorize_path("no-such-client", response_type="token"))
    assert resp.status_code == 400
    assert "Location" not in resp.headers


SPECIAL_STATE = "a b&c=d/e?f+g%41#h~é\"'<>"


def test_state_is_echoed_exactly_with_the_code(app_client, spa, alice):
    got = get_code(app_client, spa, state=SPECIAL_STATE)
    assert got["state"] == SPECIAL_STATE


def test_state_is_echoed_exactly_with_an_error(app_client, spa):
    resp = Browser(app_client).get(
        authorize_path(spa["client_id"], state=SPECIAL_STATE, scope="admin")
    )
    got = location(resp)
    assert got["error"] == "invalid_scope"
    assert got["state"] == SPECIAL_STATE


def test_without_state_no_state_is_returned(app_client, spa, alice):
    got = get_code(app_client, spa, state=None)
    assert "state" not in got
    assert got["iss"] == ISSUER


def test_denied_consent_carries_iss(app_client, spa, alice):
    b = Browser(app_client)
    got = location(consent(b, sign_in(b, authorize_path(spa["client_id"])), "deny"))
    assert got["iss"] == ISSUER


def test_metadata_says_the_response_carries_iss(app_client, spa):
    doc = body(app_client.http.get("/.well-known/oauth-authorization-server"))
    assert doc["authorization_response_iss_parameter_supported"] is True


def test_redirect_with_the_code_is_not_cached(app_client, spa, alice):
    b = Browser(app_client)
    resp = consent(b, sign_in(b, authorize_path(spa["client_id"])))
    assert resp.status_code == 303
    assert resp.headers["Cache-Control"] == "no-store"


def test_registered_redirect_uri_with_a_query_keeps_it(app_client, make_client, alice):
    registered = "https://app.example/cb?tenant=a%20b&x=1"
    client = make_client(
        grant_types=["authorization_code"],
        public=True,
        first_party=True,
        redirect_uris=[registered],
    )
    b = Browser(app_client)
    path = authorize_path(client["client_id"], redirect_uri=registered)
    resp = sign_in(b, path)
    assert resp.status_code == 303
    loc = resp.headers["Location"]
    assert loc.startswith(registered + "&")
    query = parse_qs(urlsplit(loc).query)
    assert query["tenant"] == ["a b"]
    assert query["x"] == ["1"]
    assert query["state"] == ["st-123"]
    tokens = exchange(app_client, client, query["code"][0], redirect_uri=registered)
    assert tokens.status_code == 200, tokens.body


def test_challenge_with_a_trailing_newline_is_refused(app_client, spa):
    got = location(
        Browser(app_client).get(authorize_path(spa["client_id"], code_challenge=CHALLENGE + "\n"))
    )
    assert got["error"] == "invalid_request"


# --- native apps: loopback redirect URIs match with any port (RFC 8252 §7.3) -----------------

LOOPBACK = "http://127.0.0.1/callback"


@pytest.fixture
def native(make_client):
    return make_client(
        name="Desktop App",
        grant_types=["authorization_code"],
        public=True,
        first_party=True,
        redirect_uris=[LOOPBACK],
    )


def test_loopback_redirect_uri_of_a_native_app_matches_any_port(app_client, native, alice):
    uri = "http://127.0.0.1:51004/callback"
    resp = sign_in(Browser(app_client), authorize_path(native["client_id"], redirect_uri=uri))
    assert resp.status_code == 303
    loc = resp.headers["Location"]
    assert loc.startswith(uri + "?code=")
    code = parse_qs(urlsplit(loc).query)["code"][0]
    assert exchange(app_client, native, code, redirect_uri=uri).status_code == 200
    code = parse_qs(
        urlsplit(
            sign_in(
                Browser(app_client), authorize_path(native["client_id"], redirect_uri=uri)
            ).headers["Location"]
        ).query
    )["code"][0]
    other_port = exchange(app_client, native, code, redirect_uri="http://127.0.0.1:51005/callback")
    assert body(other_port)["error"] == "invalid_grant"


LOOPBACK_LOOKALIKES = [
    "http://127.0.0.1:51004/callback/other",
    "http://127.0.0.1:51004/callback?x=1",
    "http://localhost:51004/callback",
    "http://[::1]:51004/callback",
    "https://127.0.0.1:51004/callback",
    "http://127.0.0.1:99999/callback",
    "http://127.0.0.1:51004@evil.example/callback",
    "http://evil.example:51004/callback",
]


def test_loopback_port_exception_changes_nothing_else(app_client, native):
    b = Browser(app_client)
    for uri in LOOPBACK_LOOKALIKES:
        resp = b.get(authorize_path(native["client_id"], redirect_uri=uri))
        assert resp.status_code == 400, uri
        assert "Location" not in resp.headers, uri


def test_loopback_port_exception_is_for_public_clients_only(app_client, make_client):
    web = make_client(
        grant_types=["authorization_code"], redirect_uris=[LOOPBACK], first_party=True
    )
    path = authorize_path(web["client_id"], redirect_uri="http://127.0.0.1:51004/callback")
    resp = Browser(app_client).get(path)
    assert resp.status_code == 400
    assert "Location" not in resp.headers


# --- PKCE for confidential clients -----------------------------------------------------------


def test_confidential_client_using_pkce_must_present_the_verifier(app_client, make_client, alice):
    web = make_client(
        grant_types=["authorization_code"], redirect_uris=[REDIRECT], first_party=True
    )
    auth = {"Authorization": basic(web["client_id"], web["client_secret"])}
    params = {"grant_type": "authorization_code", "redirect_uri": REDIRECT}
    code = get_code(app_client, web)["code"]
    wrong = form_post(
        app_client, "/oauth2/token", {**params, "code": code, "code_verifier": "w" * 43}, auth
    )
    assert body(wrong)["error"] == "invalid_grant"
    code = get_code(app_client, web)["code"]
    ok = form_post(
        app_client, "/oauth2/token", {**params, "code": code, "code_verifier": VERIFIER}, auth
    )
    assert ok.status_code == 200, ok.body


def test_verifier_for_a_code_issued_without_challenge_is_refused(app_client, make_client, alice):
    """PKCE downgrade (RFC 9700 §2.1.1): a verifier for a code without a challenge is refused."""
    web = make_client(
        grant_types=["authorization_code"], redirect_uris=[REDIRECT], first_party=True
    )
    code = get_code(app_client, web, code_challenge=None, code_challenge_method=None)["code"]
    r = form_post(
        app_client,
        "/oauth2/token",
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "code_verifier": VERIFIER,
        },
        {"Authorization": basic(web["client_id"], web["client_secret"])},
    )
    assert body(r)["error"] == "invalid_grant"


# --- sign-in: brute force, consent without a session, expiry --------------------------------


def test_hosted_sign_in_locks_like_the_password_grant(app_client, spa, alice, clock):
    """Same guard as the password grant: after the threshold of failures even the right password
    gets the same 'invalid' page (no session), until the lock ends."""
    from chalicelib.core.config import settings

    threshold = settings().lockout_threshold
    for _ in range(threshold):
        assert (
            sign_in(
                Browser(app_client), authorize_path(spa["client_id"]), password="bad-bad"
            ).status_code
            == 401
        )
    locked = Browser(app_client)
    resp = sign_in(locked, authorize_path(spa["client_id"]))
    assert resp.status_code == 401
    assert "Invalid username or password." in html(resp)
    assert SESSION not in locked.cookies
    clock.advance(settings().lockout_base_seconds + 1)
    assert 'value="consent"' in html(sign_in(Browser(app_client), authorize_path(spa["client_id"])))


def test_hosted_sign_in_failures_lock_the_account_page_too(app_client, spa, alice):
    from chalicelib.core.config import settings

    for _ in range(settings().lockout_threshold):
        sign_in(Browser(app_client), authorize_path(spa["client_id"]), password="bad-bad")
    b = Browser(app_client)
    page = b.get("/account/apps")
    resp = b.post(
        "/account/login",
        {"csrf": hidden(html(page), "csrf"), "username": "alice", "password": PASSWORD},
    )
    assert resp.status_code == 401
    assert SESSION not in b.cookies


def test_consent_post_without_a_session_issues_no_code(app_client, spa, alice):
    signed_in = Browser(app_client)
    consent_page = sign_in(signed_in, authorize_path(spa["client_id"]))
    stranger = Browser(app_client)
    stranger.cookies[CSRF] = signed_in.cookies[CSRF]  # even with the nonce
    resp = consent(stranger, consent_page)
    assert resp.status_code != 303
    assert 'value="login"' in html(resp)


def test_session_expires_after_session_ttl(app_client, spa, alice, clock):
    from chalicelib.oauth.sessions import SESSION_TTL

    b = Browser(app_client)
    sign_in(b, authorize_path(spa["client_id"]))
    clock.advance(SESSION_TTL - 1)
    assert 'value="consent"' in html(b.get(authorize_path(spa["client_id"])))
    clock.advance(2)
    assert 'value="login"' in html(b.get(authorize_path(spa["client_id"])))
    assert 'action="/account/login"' in html(b.get("/account/apps"))


def test_sign_in_form_expires(app_client, spa, alice, clock):
    from chalicelib.web.authorize_request import REQUEST_TTL

    b = Browser(app_client)
    page = b.get(authorize_path(spa["client_id"]))
    clock.advance(REQUEST_TTL + 1)
    resp = b.post(
        "/oauth2/authorize",
        {
            "request": hidden(html(page), "request"),
            "csrf": hidden(html(page), "csrf"),
            "step": "login",
            "username": "alice",
            "password": PASSWORD,
        },
    )
    assert resp.status_code == 400
    assert SESSION not in b.cookies


def test_failed_sign_in_keeps_the_username_escaped(app_client, spa):
    resp = sign_in(
        Browser(app_client), authorize_path(spa["client_id"]), username='<b>"x', password="nope"
    )
    assert resp.status_code == 401
    assert 'value="&lt;b&gt;&quot;x"' in html(resp)
    assert "<b>" not in html(resp)


# --- account pages: CSRF and ownership ---------------------------------------------------------


def test_account_login_without_csrf_is_refused(app_client, alice):
    b = Browser(app_client)
    b.get("/account/apps")
    resp = b.post("/account/login", {"csrf": "forged", "username": "alice", "password": PASSWORD})
    assert resp.status_code == 403
    assert SESSION not in b.cookies


def test_logout_without_csrf_keeps_the_session(app_client, alice):
    b = Browser(app_client)
    account_sign_in(b)
    resp = b.post("/account/logout", {"csrf": "forged"})
    assert resp.status_code == 403
    assert SESSION in b.cookies
    assert "Connected apps" in html(b.get("/account/apps"))


def test_user_cannot_revoke_another_users_grant(app_client, spa, alice, make_user):
    tokens = body(exchange(app_client, spa, get_code(app_client, spa)["code"]))
    alices = Browser(app_client)
    grant = hidden(html(account_sign_in(alices)), "grant")
    make_user("bob", PASSWORD)
    bobs = Browser(app_client)
    page = bobs.get("/account/apps")
    bobs.post(
        "/account/login",
        {"csrf": hidden(html(page), "csrf"), "username": "bob", "password": PASSWORD},
    )
    page = bobs.get("/account/apps")
    bobs.post("/account/apps/revoke", {"csrf": hidden(html(page), "csrf"), "grant": grant})
    refreshed = form_post(
        app_client,
        "/oauth2/token",
        {
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": spa["client_id"],
        },
    )
    assert refreshed.status_code == 200


# --- CORS for single-page apps -------------------------------------------------------------


def _token_from_origin(app_client, client, origin):
    return form_post(
        app_client,
        "/oauth2/token",
        {"grant_type": "refresh_token", "refresh_token": "nope", "client_id": client["client_id"]},
        {"Origin": origin},
    )


def test_token_answer_is_readable_by_the_apps_own_origin(app_client, spa):
    resp = _token_from_origin(app_client, spa, "https://app.example")
    assert resp.headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert resp.headers["Vary"] == "Origin"


@pytest.mark.parametrize(
    "origin",
    ["https://evil.example", "https://app.example.evil.example", "null", "http://app.example"],
)
def test_token_answer_is_not_readable_by_other_origins(app_client, spa, origin):
    resp = _token_from_origin(app_client, spa, origin)
    assert "Access-Control-Allow-Origin" not in resp.headers


def test_no_cors_for_a_client_without_redirect_uris(app_client, make_client):
    machine = make_client()
    resp = form_post(
        app_client,
        "/oauth2/token",
        {
            "grant_type": "client_credentials",
            "client_id": machine["client_id"],
            "client_secret": machine["client_secret"],
        },
        {"Origin": "https://app.example"},
    )
    assert resp.status_code == 200
    assert "Access-Control-Allow-Origin" not in resp.headers


# --- bad input on the page forms is a 4xx, never a 500 -------------------------------------

NON_ASCII = "é" * 43  # hmac.compare_digest raises TypeError on a non-ASCII str


def _post_with_csrf(app_client, client_id: str, form: str, csrf: str):
    """Post one of the page forms, signed in where the form needs it, with ``csrf``."""
    b = Browser(app_client)
    if form == "authorize-login":
        page = b.get(authorize_path(client_id))
        fields = {"request": hidden(html(page), "request"), "step": "login"}
        fields |= {"username": "alice", "password": PASSWORD}
        return b, b.post("/oauth2/authorize", {**fields, "csrf": csrf})
    if form == "authorize-consent":
        page = sign_in(b, authorize_path(client_id))
        fields = {"request": hidden(html(page), "request"), "step": "consent"}
        return b, b.post("/oauth2/authorize", {**fields, "decision": "allow", "csrf": csrf})
    if form == "account-login":
        b.get("/account/apps")
        fields = {"username": "alice", "password": PASSWORD, "csrf": csrf}
        return b, b.post("/account/login", fields)
    account_sign_in(b)
    if form == "account-logout":
        return b, b.post("/account/logout", {"csrf": csrf})
    return b, b.post("/account/apps/revoke", {"csrf": csrf, "grant": "x"})


PAGE_FORMS = [
    "authorize-login",
    "authorize-consent",
    "account-login",
    "account-logout",
    "account-revoke",
]


@pytest.mark.parametrize("form", PAGE_FORMS)
@pytest.mark.parametrize("csrf", [NON_ASCII, "\u2028", "😀" * 11, "\x00"])
def test_non_ascii_csrf_token_is_4xx(app_client, spa, alice, form, csrf):
    b, resp = _post_with_csrf(app_client, spa["client_id"], form, csrf)
    assert resp.status_code == 403, html(resp)
    assert "Location" not in resp.headers
    signed_in = form in ("authorize-consent", "account-logout", "account-revoke")
    assert (SESSION in b.cookies) == signed_in


def test_non_ascii_request_signature_is_4xx(app_client, spa, alice):
    b = Browser(app_client)
    page = b.get(authorize_path(spa["client_id"]))
    encoded, kid, _mac = hidden(html(page), "request").split(".")
    for blob in (f"{encoded}.{kid}.{NON_ASCII}", f"{encoded}.{NON_ASCII}.x", f"{NON_ASCII}.a.b"):
        resp = b.post(
            "/oauth2/authorize",
            {"request": blob, "csrf": hidden(html(page), "csrf"), "step": "login"},
        )
        assert resp.status_code == 400, html(resp)
        assert "Location" not in resp.headers


# --- CSRF is bound to the session; the nonce is replaced at sign-in --------------------------


def test_csrf_token_from_another_session_is_refused(app_client, spa, alice, make_user):
    """A consent token works only in the session its page was made for, even when the other
    browser carries the same CSRF nonce (planted, or read before sign-in)."""
    victim = Browser(app_client)
    victims_page = sign_in(victim, authorize_path(spa["client_id"]))
    make_user("mallory", PASSWORD)
    attacker = Browser(app_client)
    attackers_page = sign_in(attacker, authorize_path(spa["client_id"]), username="mallory")
    victim.cookies[CSRF] = attacker.cookies[CSRF]  # the attacker's nonce, planted
    forged = {
        "request": hidden(html(victims_page), "request"),
        "csrf": hidden(html(attackers_page), "csrf"),
        "step": "consent",
        "decision": "allow",
    }
    resp = victim.post("/oauth2/authorize", forged)
    assert resp.status_code == 403
    assert "Location" not in resp.headers


def test_csrf_token_from_another_session_is_refused_on_the_account_pages(
    app_client, spa, alice, make_user
):
    tokens = body(exchange(app_client, spa, get_code(app_client, spa)["code"]))
    victim = Browser(app_client)
    grant = hidden(html(account_sign_in(victim)), "grant")
    make_user("mallory", PASSWORD)
    attacker = Browser(app_client)
    page = attacker.get("/account/apps")
    attacker.post(
        "/account/login",
        {"csrf": hidden(html(page), "csrf"), "username": "mallory", "password": PASSWORD},
    )
    attackers_csrf = hidden(html(attacker.get("/account/apps")), "csrf")
    victim.cookies[CSRF] = attacker.cookies[CSRF]
    for path, fields in (
        ("/account/apps/revoke", {"csrf": attackers_csrf, "grant": grant}),
        ("/account/logout", {"csrf": attackers_csrf}),
    ):
        assert victim.post(path, fields).status_code == 403, path
    assert SESSION in victim.cookies
    refreshed = form_post(
        app_client,
        "/oauth2/token",
        {
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": spa["client_id"],
        },
    )
    assert refreshed.status_code == 200


def test_csrf_nonce_replaced_at_sign_in(app_client, spa, alice):
    """Signing in sets a new nonce: one an attacker planted or read before is worthless after."""
    b = Browser(app_client)
    login_page = b.get(authorize_path(spa["client_id"]))
    before = b.cookies[CSRF]
    consent_page = b.post(
        "/oauth2/authorize",
        {
            "request": hidden(html(login_page), "request"),
            "csrf": hidden(html(login_page), "csrf"),
            "step": "login",
            "username": "alice",
            "password": PASSWORD,
        },
    )
    assert consent_page.status_code == 200
    assert b.cookies[CSRF] != before
    stale = b.cookies[CSRF]
    b.cookies[CSRF] = before  # the old nonce with the new page's token
    assert consent(b, consent_page).status_code == 403
    b.cookies[CSRF] = stale
    assert "code" in location(consent(b, consent_page))


def test_csrf_nonce_replaced_at_account_sign_in(app_client, alice):
    b = Browser(app_client)
    page = b.get("/account/apps")
    before = b.cookies[CSRF]
    resp = b.post(
        "/account/login",
        {"csrf": hidden(html(page), "csrf"), "username": "alice", "password": PASSWORD},
    )
    assert resp.status_code == 303
    assert b.cookies[CSRF] != before
    assert "Connected apps" in html(b.get("/account/apps"))


# --- page cookies: __Host- prefix where the stage is https -----------------------------------


def _set_cookies(resp) -> list[str]:
    raw = resp.headers.get("Set-Cookie")
    return raw if isinstance(raw, list) else ([raw] if raw else [])


def test_cookies_use_host_prefix_on_https(app_client, spa, alice):
    """``__Host-`` cookies (RFC 6265bis §4.1.3.2) can be set only by this host, Secure, Path=/,
    without Domain: a sibling subdomain cannot plant a session or a CSRF nonce."""
    b = Browser(app_client)
    page = b.get(authorize_path(spa["client_id"]))
    sent = _set_cookies(page)
    signed_in = b.post(
        "/oauth2/authorize",
        {
            "request": hidden(html(page), "request"),
            "csrf": hidden(html(page), "csrf"),
            "step": "login",
            "username": "alice",
            "password": PASSWORD,
        },
    )
    sent += _set_cookies(signed_in)
    sent += _set_cookies(b.post("/account/logout", {"csrf": hidden(html(signed_in), "csrf")}))
    names = {c.split("=", 1)[0] for c in sent}
    assert names == {SESSION, CSRF}
    for c in sent:
        attrs = c.split("; ")
        assert {"Secure", "Path=/", "HttpOnly", "SameSite=Lax"} <= set(attrs), c
        assert not any(a.lower().startswith("domain=") for a in attrs), c


def test_unprefixed_cookies_are_ignored_on_https(app_client, spa, alice):
    """A session or nonce under the plain name (which a sibling subdomain could set) counts for
    nothing where the stage is https."""
    signed_in = Browser(app_client)
    sign_in(signed_in, authorize_path(spa["client_id"]))
    tossed = Browser(app_client)
    tossed.cookies["tessera_session"] = signed_in.cookies[SESSION]
    tossed.cookies["tessera_csrf"] = signed_in.cookies[CSRF]
    page = tossed.get(authorize_path(spa["client_id"]))
    assert 'value="login"' in html(page)
    assert CSRF in tossed.cookies  # a nonce of its own, under the prefixed name


def test_plain_http_stage_keeps_unprefixed_cookie_names(app_client, spa, alice, monkeypatch):
    """The local stack (plain http, TESSERA_COOKIE_SECURE=false): browsers refuse __Host- cookies
    without Secure, and Secure cookies over http, so names and flags stay plain."""
    from chalicelib.core.config import settings

    monkeypatch.setenv("TESSERA_COOKIE_SECURE", "false")
    settings.cache_clear()
    assert settings().cookie_secure is False  # read now, not inside a call (see app_client)
    b = Browser(app_client)
    consent_page = sign_in(b, authorize_path(spa["client_id"]))
    assert set(b.cookies) == {"tessera_session", "tessera_csrf"}
    assert "code" in location(consent(b, consent_page))
    for c in _set_cookies(consent_page):
        assert "Secure" not in c.split("; ")


# --- native apps get their code: the page's CSP allows its redirect; URLs built by urllib --------

PRIVATE_USE = "com.example.photos:/callback"


def form_action_allows(csp: str, target: str, self_origin: str = ISSUER) -> bool:
    """Whether a redirect to ``target`` after a form is sent passes the page's ``form-action``
    (CSP3 §6.7.2.1: scheme-source and host-source matching; paths are ignored after a redirect)."""
    directives = {d.split()[0]: d.split()[1:] for d in csp.split(";") if d.strip()}
    want = urlsplit(target)
    port = want.port or {"http": 80, "https": 443}.get(want.scheme)
    for source in directives.get("form-action", []):
        if source == "'self'":
            source = self_origin
        if source.endswith(":") and "/" not in source:
            schemes = {"http", "https"} if source == "http:" else {source[:-1]}
            if want.scheme in schemes:
                return True
            continue
        have = urlsplit(source)
        have_port = have.port or {"http": 80, "https": 443}.get(have.scheme)
        scheme_ok = want.scheme == have.scheme or (have.scheme, want.scheme) == ("http", "https")
        if scheme_ok and want.hostname == have.hostname and port == have_port:
            return True
    return False


def test_form_action_matcher_matches_like_a_browser():
    csp = "default-src 'none'; form-action 'self' com.example.app: https://app.example:8443"
    assert form_action_allows(csp, ISSUER + "/oauth2/authorize")
    assert form_action_allows(csp, "com.example.app:/cb?code=1")
    assert form_action_allows(csp, "https://app.example:8443/cb")
    assert not form_action_allows(csp, "https://app.example/cb")
    assert not form_action_allows(csp, "com.example.evil:/cb")
    assert form_action_allows("form-action 'self' http: https:", "https://evil.example/cb")
    assert not form_action_allows("form-action 'self' http: https:", PRIVATE_USE)


def _redirect_after_consent(app_client, client, redirect_uri, decision="allow"):
    b = Browser(app_client)
    login_page = b.get(authorize_path(client["client_id"], redirect_uri=redirect_uri))
    consent_page = sign_in(b, authorize_path(client["client_id"], redirect_uri=redirect_uri))
    assert consent_page.status_code == 200, html(consent_page)
    return login_page, consent_page, consent(b, consent_page, decision)


def test_csp_allows_redirect_to_private_use_scheme(app_client, make_client, alice):
    """RFC 8252 §7.1: the consent form's answer redirects to the app's private-use scheme, and
    browsers apply form-action to that redirect: the page's CSP must allow it, and only it."""
    native = make_client(
        name="Photos",
        grant_types=["authorization_code"],
        public=True,
        redirect_uris=[PRIVATE_USE],
    )
    login_page, consent_page, done = _redirect_after_consent(app_client, native, PRIVATE_USE)
    target = done.headers["Location"]
    assert target.startswith(PRIVATE_USE + "?code=")
    for page in (login_page, consent_page):
        csp = page.headers["Content-Security-Policy"]
        assert form_action_allows(csp, target), csp
        assert form_action_allows(csp, ISSUER + "/oauth2/authorize")
        assert not form_action_allows(csp, "https://evil.example/cb")
        assert not form_action_allows(csp, "com.example.evil:/cb")
        assert "frame-ancestors 'none'" in csp
        assert "default-src 'none'" in csp
    code = parse_qs(urlsplit(target).query)["code"][0]
    assert exchange(app_client, native, code, redirect_uri=PRIVATE_USE).status_code == 200


def test_csp_allows_the_denial_redirect_to_a_private_use_scheme(app_client, make_client, alice):
    native = make_client(
        grant_types=["authorization_code"], public=True, redirect_uris=[PRIVATE_USE]
    )
    _, consent_page, done = _redirect_after_consent(app_client, native, PRIVATE_USE, "deny")
    target = done.headers["Location"]
    assert parse_qs(urlsplit(target).query)["error"] == ["access_denied"]
    assert form_action_allows(consent_page.headers["Content-Security-Policy"], target)


def test_csp_allows_redirect_to_the_loopback_port_of_the_request(app_client, native, alice):
    uri = "http://127.0.0.1:51004/callback"
    b = Browser(app_client)
    page = b.get(authorize_path(native["client_id"], redirect_uri=uri))
    csp = page.headers["Content-Security-Policy"]
    done = sign_in(b, authorize_path(native["client_id"], redirect_uri=uri))
    assert form_action_allows(csp, done.headers["Location"])
    assert not form_action_allows(csp, "http://127.0.0.1:51005/callback")
    assert not form_action_allows(csp, "https://evil.example/callback")


def test_csp_of_a_web_app_names_only_its_origin(app_client, spa, alice):
    _, consent_page, done = _redirect_after_consent(app_client, spa, REDIRECT)
    csp = consent_page.headers["Content-Security-Policy"]
    assert form_action_allows(csp, done.headers["Location"])
    assert not form_action_allows(csp, "https://evil.example/cb")
    assert not form_action_allows(csp, "http://app.example/cb")


def test_account_pages_allow_forms_to_this_server_only(app_client, alice):
    b = Browser(app_client)
    for page in (b.get("/account/apps"), account_sign_in(b)):
        csp = page.headers["Content-Security-Policy"]
        assert form_action_allows(csp, ISSUER + "/account/login")
        assert not form_action_allows(csp, "https://app.example/cb")
        assert not form_action_allows(csp, PRIVATE_USE)


def test_redirect_uri_with_empty_query(app_client, make_client, alice):
    """``…/cb?`` registered: the code is added as ``…/cb?code=…``, never ``??code=``."""
    registered = "https://app.example/cb?"
    client = make_client(
        grant_types=["authorization_code"], public=True, redirect_uris=[registered]
    )
    _, _, done = _redirect_after_consent(app_client, client, registered)
    target = done.headers["Location"]
    assert target.startswith("https://app.example/cb?code=")
    assert "??" not in target
    query = parse_qs(urlsplit(target).query)
    assert query["state"] == ["st-123"]
    assert (
        exchange(app_client, client, query["code"][0], redirect_uri=registered).status_code == 200
    )
    _, _, denied = _redirect_after_consent(app_client, client, registered, "deny")
    assert denied.headers["Location"].startswith("https://app.example/cb?error=access_denied&")
    error = Browser(app_client).get(
        authorize_path(client["client_id"], redirect_uri=registered, scope="admin")
    )
    assert error.headers["Location"].startswith("https://app.example/cb?error=invalid_scope&")


@pytest.mark.parametrize(
    ("uri", "written"),
    [
        ("com.example.app:///cb", "com.example.app:/cb"),
        ("HTTPS://app.example/cb", "https://app.example/cb"),
    ],
)
def test_redirect_uri_that_urllib_would_rewrite_is_refused_at_registration(uri, written):
    """The code is added with urllib.parse, which writes some URIs differently: such a URI is
    refused with the form to register instead, so the app always gets its own URI back."""
    from chalicelib.ops.admin import AdminError, check_redirect_uri

    with pytest.raises(AdminError, match=re.escape(repr(written))):
        check_redirect_uri(uri)
    check_redirect_uri(written)
