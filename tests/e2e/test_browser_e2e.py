"""Issue 9 in a real browser: authorization code + PKCE, the hosted pages and the connected apps.

Headless Chromium (Debian's ``chromium`` and ``chromium-driver``, driven by Selenium through the
local chromedriver: Selenium Manager is never asked to download anything) against the local stack.
The client side is a real library, Authlib: it builds the authorization URL with an S256 challenge,
exchanges the code with the verifier and refreshes. The redirect URI is a loopback address served by
a tiny HTTP server in this test, which records what the browser brought back.

Every page is photographed into ``test-artifacts/browser/`` (gitignored; CI keeps them as
artifacts). Missing Chromium skips the module with the command that installs it (``make browser``).
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from authlib.common.security import generate_token
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.requests_client import OAuth2Session

from tests.e2e.conftest import ROOT, LocalStack, _free_ports

pytestmark = pytest.mark.e2e

ARTIFACTS = ROOT / "test-artifacts" / "browser"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)
PAGE_WAIT_S = 30.0  # upper bound for a page to load on a busy CI machine; never asserted on
PASSWORD = "correct horse battery staple"
SCOPE = "people:read articles:read"
# Characters a client may well put in state: the server must hand it back byte for byte.
STATE = "a b/c?d=e&f+g%25~" + generate_token(16)


def _missing_browser() -> str | None:
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not Path(path).is_file():
            return (
                f"{package} is not installed ({path} missing): run `make browser` as root, "
                f"or `sudo apt-get install -y chromium chromium-driver`"
            )
    return None


# --- the redirect URI: a loopback server that records the query --------------------------------


@dataclass
class Callback:
    port: int
    queries: list[dict[str, str]] = field(default_factory=list)

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}/callback"

    def last(self) -> dict[str, str]:
        assert self.queries, "the browser never reached the redirect URI"
        return self.queries[-1]


def _handler(callback: Callback) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            if parts.path == "/callback":
                query = parse_qs(parts.query, keep_blank_values=True)
                callback.queries.append({k: v[0] for k, v in query.items()})
            body = (
                b'<!doctype html><html lang="en"><head><meta charset="utf-8">'
                b"<title>Callback</title></head><body><h1>Back in the app</h1></body></html>"
            )
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the query holds the code."""

    return Handler


@pytest.fixture
def callback() -> Iterator[Callback]:
    (port,) = _free_ports(1)
    cb = Callback(port)
    server = ThreadingHTTPServer(("127.0.0.1", port), _handler(cb))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield cb
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


# --- the browser -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    reason = _missing_browser()
    if reason:
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.binary_location = CHROMIUM
    # The console (CSP violations) and DevTools' network events (where the tab was sent, also
    # to a URI scheme no program handles): the private-use scheme test reads both.
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    # A Service with the driver's path: Selenium Manager (which downloads drivers) is skipped.
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_page_load_timeout(PAGE_WAIT_S)
    driver.set_window_size(1280, 900)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        yield driver
    finally:
        driver.quit()


# Chromium's answers when an element belongs to a document that a navigation has replaced (or is
# replacing): the element is gone, find it again. Selenium maps only the first to its own type.
_REPLACED_DOCUMENT = (
    "stale element",
    "does not belong to the document",
    "no node with given id",
    "cannot find context with specified id",
    "node is detached from document",
)


def _document_replaced(exc: Exception) -> bool:
    from selenium.common.exceptions import (
        NoSuchElementException,
        StaleElementReferenceException,
        WebDriverException,
    )

    if isinstance(exc, StaleElementReferenceException | NoSuchElementException):
        return True
    message = str(getattr(exc, "msg", None) or exc).lower()
    return isinstance(exc, WebDriverException) and any(m in message for m in _REPLACED_DOCUMENT)


class Pages:
    """The few things the test does with a page: read, fill, submit, photograph.

    Navigation-safe: every action waits for the current document to finish loading, finds its
    elements afresh (an element is never kept across a navigation), and is retried, within
    PAGE_WAIT_S, when Chromium reports that the document it was looking at has been replaced.
    """

    def __init__(self, driver: Any) -> None:
        self.driver = driver

    def _retry[T](self, action: Callable[[], T]) -> T:
        deadline = time.monotonic() + PAGE_WAIT_S
        while True:
            try:
                return action()
            except Exception as exc:
                if not _document_replaced(exc) or time.monotonic() > deadline:
                    raise
            time.sleep(0.05)

    def settle(self) -> None:
        """Wait until the current document has loaded completely."""
        _wait_for(
            self.driver,
            lambda d: (
                self._retry(lambda: d.execute_script("return document.readyState")) == "complete"
            ),
        )

    def _find(self, by: str, value: str) -> Any:
        return self.driver.find_element(by, value)

    def open(self, url: str) -> None:
        self.driver.get(url)
        self.settle()

    @property
    def title(self) -> str:
        self.settle()
        return self._retry(lambda: str(self.driver.title))

    @property
    def text(self) -> str:
        from selenium.webdriver.common.by import By

        self.settle()
        return self._retry(lambda: str(self._find(By.TAG_NAME, "body").text))

    def fill(self, field_id: str, value: str) -> None:
        from selenium.webdriver.common.by import By

        def fill_once() -> None:
            element = self._find(By.ID, field_id)  # found anew on every attempt
            element.clear()
            element.send_keys(value)

        self.settle()
        self._retry(fill_once)

    def click(self, css: str) -> None:
        """Click a submit button and wait until the next page has replaced this one and loaded."""
        from selenium.webdriver.common.by import By

        self.settle()
        old = self._retry(lambda: self._find(By.TAG_NAME, "html"))
        try:
            self._retry(lambda: self._find(By.CSS_SELECTOR, css)).click()
        except Exception as exc:
            # The click may report the replaced document when the navigation it started wins
            # the race; anything else is a real failure.
            if not _document_replaced(exc):
                raise
        _wait_for(self.driver, lambda _: self._gone(old))
        self.settle()

    @staticmethod
    def _gone(element: Any) -> bool:
        try:
            element.tag_name  # noqa: B018 - any call on a replaced document's element fails
        except Exception as exc:
            if _document_replaced(exc):
                return True
            raise
        return False

    def has(self, css: str) -> bool:
        from selenium.webdriver.common.by import By

        self.settle()
        return self._retry(lambda: bool(self.driver.find_elements(By.CSS_SELECTOR, css)))

    def shot(self, name: str, width: int = 1280, height: int = 900) -> Path:
        self.settle()
        self.driver.set_window_size(width, height)
        path = ARTIFACTS / f"{name}.png"
        assert self.driver.save_screenshot(str(path)), f"no screenshot {path}"
        if (width, height) != (1280, 900):
            self.driver.set_window_size(1280, 900)
        return path

    def sign_in(self, username: str, password: str) -> None:
        self.fill("username", username)
        self.fill("password", password)
        self.click("button[type=submit]")


# --- the flow ----------------------------------------------------------------------------------


def _register(stack: LocalStack, redirect_uri: str) -> tuple[dict[str, Any], str]:
    client = stack.admin_json(
        "client", "create", "--name", "Photo Sharing " + stack.unique("app"),
        "--grant-types", "authorization_code,refresh_token", "--scope", SCOPE,
        "--public", "--redirect-uri", redirect_uri,
    )  # fmt: skip
    username = stack.unique("alice")
    stack.admin_json("user", "create", "--username", username, input=PASSWORD + "\n")
    return client, username


def _oauth(client: dict[str, Any], redirect_uri: str) -> OAuth2Session:
    return OAuth2Session(
        client["client_id"],
        redirect_uri=redirect_uri,
        scope=SCOPE,
        code_challenge_method="S256",
        token_endpoint_auth_method="none",
    )


def _wait_for(driver: Any, condition: Callable[[Any], bool]) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, PAGE_WAIT_S).until(condition)


def test_browser_signs_in_consents_and_revokes_the_app(
    local_stack: LocalStack, browser: Any, callback: Callback
) -> None:
    stack = local_stack
    client, username = _register(stack, callback.uri)
    oauth = _oauth(client, callback.uri)
    verifier = generate_token(64)
    url, state = oauth.create_authorization_url(
        stack.base_url + "/oauth2/authorize", state=STATE, code_verifier=verifier
    )
    page = Pages(browser)
    browser.delete_all_cookies()

    # Sign-in page, then a wrong password: the same page with the error, no session.
    page.open(url)
    assert page.title.startswith("Sign in")
    assert client["name"] in page.text
    page.shot("01-sign-in")
    page.sign_in(username, "not the password")
    assert page.title.startswith("Sign in")
    assert "Invalid username or password." in page.text
    assert browser.get_cookie("tessera_session") is None
    page.shot("02-sign-in-error")

    # Right password: the consent page (the client is not first-party), scopes in plain words.
    page.sign_in(username, PASSWORD)
    assert page.title.startswith("Allow access")
    assert "See the people directory" in page.text
    assert "Read articles" in page.text
    session_cookie = browser.get_cookie("tessera_session")
    assert session_cookie is not None
    assert session_cookie["httpOnly"]
    assert session_cookie["sameSite"] == "Lax"
    page.shot("03-consent")
    page.shot("03-consent-mobile", 390, 844)

    # Allow: the browser lands on the redirect URI with code, the exact state, and iss.
    page.click("button[value=allow]")
    _wait_for(browser, lambda d: str(d.current_url).startswith(callback.uri))
    got = callback.last()
    assert set(got) == {"code", "state", "iss"}
    assert got["state"] == state == STATE
    assert got["iss"] == stack.base_url

    # The app exchanges the code with its verifier: Authlib checks state too.
    token = oauth.fetch_token(
        stack.token_url,
        authorization_response=str(browser.current_url),
        state=state,
        code_verifier=verifier,
    )
    assert token["token_type"].lower() == "bearer"
    assert token["refresh_token"].startswith("tessera_rt_")
    assert sorted(token["scope"].split()) == sorted(SCOPE.split())
    people = requests.get(
        stack.base_url + "/people",
        headers={"Authorization": "Bearer " + token["access_token"]},
        timeout=30,
    )
    assert people.status_code == 200

    # Connected apps: same browser session (or a fresh sign-in), the app is listed.
    page.open(stack.base_url + "/account/apps")
    if page.title.startswith("Sign in"):
        page.sign_in(username, PASSWORD)
    assert page.title.startswith("Connected apps")
    assert client["name"] in page.text
    page.shot("04-connected-apps")
    page.shot("04-connected-apps-mobile", 390, 844)

    # Revoke: the app disappears and its refresh token is dead.
    page.click(f'button[aria-label="Revoke access for {client["name"]}"]')
    assert page.title.startswith("Connected apps")
    assert "Access revoked." in page.text
    assert client["name"] not in page.text
    page.shot("05-connected-apps-after-revoke")
    with pytest.raises(OAuthError) as refused:
        oauth.refresh_token(stack.token_url, refresh_token=token["refresh_token"])
    assert refused.value.error == "invalid_grant"

    # Sign out: the session cookie is gone and the account page asks to sign in again.
    page.click("form[action='/account/logout'] button")
    assert page.title.startswith("Signed out")
    assert browser.get_cookie("tessera_session") is None
    page.shot("06-signed-out")
    page.open(stack.base_url + "/account/apps")
    assert page.title.startswith("Sign in")
    assert page.has("form[action='/account/login']")
    page.shot("07-account-sign-in")


def test_browser_denial_returns_access_denied_to_the_app(
    local_stack: LocalStack, browser: Any, callback: Callback
) -> None:
    stack = local_stack
    client, username = _register(stack, callback.uri)
    oauth = _oauth(client, callback.uri)
    url, state = oauth.create_authorization_url(
        stack.base_url + "/oauth2/authorize", code_verifier=generate_token(64)
    )
    page = Pages(browser)
    browser.delete_all_cookies()
    page.open(url)
    page.sign_in(username, PASSWORD)
    assert page.title.startswith("Allow access")
    page.click("button[value=deny]")
    _wait_for(browser, lambda d: str(d.current_url).startswith(callback.uri))
    got = callback.last()
    assert got["error"] == "access_denied"
    assert got["state"] == state
    assert got["iss"] == stack.base_url
    assert "code" not in got


def test_browser_unregistered_redirect_uri_shows_an_error_page(
    local_stack: LocalStack, browser: Any, callback: Callback
) -> None:
    stack = local_stack
    client, _ = _register(stack, callback.uri)
    oauth = _oauth(client, "http://127.0.0.1:9/elsewhere")
    url, _ = oauth.create_authorization_url(
        stack.base_url + "/oauth2/authorize", code_verifier=generate_token(64)
    )
    page = Pages(browser)
    page.open(url)
    assert page.title.startswith("Invalid redirect")
    assert str(browser.current_url).startswith(stack.base_url)
    assert not callback.queries
    page.shot("08-error-unregistered-redirect")


# --- a native app's private-use URI scheme (RFC 8252 §7.1) -------------------------------------

PRIVATE_USE = "com.example.tessera-e2e:/callback"


def _documents_requested(driver: Any) -> list[str]:
    """URLs the tab was sent to since the last call (DevTools' performance log; redirects
    included), in order."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        params = message.get("params", {})
        if (
            message.get("method") == "Network.requestWillBeSent"
            and params.get("type") == "Document"
        ):
            urls.append(str(params["request"]["url"]))
    return urls


def _csp_violations(driver: Any) -> list[str]:
    return [
        str(e["message"])
        for e in driver.get_log("browser")
        if "Content Security Policy" in e["message"]
    ]


def test_browser_follows_the_redirect_to_a_private_use_scheme_after_consent(
    local_stack: LocalStack, browser: Any
) -> None:
    """Chromium applies the page's form-action to the redirect after Allow: the consent page's
    CSP must let the browser hand the code to the app's own scheme. No program handles the scheme
    here, so the tab stays; DevTools shows the navigation was sent, and the console shows no CSP
    violation."""
    stack = local_stack
    client, username = _register(stack, PRIVATE_USE)
    oauth = _oauth(client, PRIVATE_USE)
    verifier = generate_token(64)
    url, state = oauth.create_authorization_url(
        stack.base_url + "/oauth2/authorize", code_verifier=verifier
    )
    page = Pages(browser)
    browser.delete_all_cookies()
    page.open(url)
    page.sign_in(username, PASSWORD)
    assert page.title.startswith("Allow access")
    _documents_requested(browser)  # both logs start from here
    _csp_violations(browser)

    from selenium.webdriver.common.by import By

    browser.find_element(By.CSS_SELECTOR, "button[value=allow]").click()
    sent: list[str] = []
    violations: list[str] = []

    def settled(driver: Any) -> bool:
        sent.extend(_documents_requested(driver))
        violations.extend(_csp_violations(driver))
        return bool(violations) or any(u.startswith(PRIVATE_USE + "?") for u in sent)

    _wait_for(browser, settled)
    assert not violations, violations
    target = next(u for u in sent if u.startswith(PRIVATE_USE + "?"))
    got = {k: v[0] for k, v in parse_qs(urlsplit(target).query).items()}
    assert set(got) == {"code", "state", "iss"}
    assert got["state"] == state
    token = oauth.fetch_token(
        stack.token_url, authorization_response=target, state=state, code_verifier=verifier
    )
    assert token["refresh_token"].startswith("tessera_rt_")
    browser.get("about:blank")


def test_missing_browser_skips_with_the_command_that_installs_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import tests.e2e.test_browser_e2e as module

    monkeypatch.setattr(module, "CHROMEDRIVER", str(tmp_path / "chromedriver"))
    reason = _missing_browser()
    assert reason is not None
    assert "chromium-driver is not installed" in reason
    assert "make browser" in reason
    assert "apt-get install -y chromium chromium-driver" in reason
