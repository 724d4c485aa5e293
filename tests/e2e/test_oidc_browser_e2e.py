"""Issue 18 in a real browser: OpenID Connect relying parties sign a user in through the hosted
pages of the local stack (headless Chromium, as in test_browser_e2e.py, whose fixtures this
module shares).

Two relying-party libraries, each on its own, as an app would use them:

- Authlib's OpenID Connect client: the same ``OAuth2Mixin`` + ``OpenIDMixin`` its Flask and Django
  integrations are made of (here without a web framework), over its ``OAuth2Session``. It reads
  the discovery document, builds the request with a nonce and PKCE, exchanges the code, validates
  the ID token (``parse_id_token``: signature from the JWKS, ``iss``, ``aud``, ``exp``, ``nonce``,
  ``at_hash``), calls userinfo, refreshes, and signs out (``create_logout_url``).
- requests-oauthlib for the protocol plus PyJWT for the ID token (``PyJWKClient`` on the JWKS,
  ``jwt.decode`` with audience, issuer and required claims), for a pairwise client.

And what the specifications say must fail, fails: a wrong or missing nonce, an ID token for
another client, ``prompt=none`` without a session, ``max_age`` exceeded, userinfo with a token
lacking ``openid``, and an ID token presented to the API as an access token.
"""

from __future__ import annotations

import base64
import hashlib
import time
from typing import Any

import jwt
import pytest
import requests
from authlib.common.security import generate_token
from authlib.integrations.base_client import BaseApp, OAuth2Mixin, OpenIDMixin
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from joserfc.errors import InvalidClaimError, MissingClaimError
from requests_oauthlib import OAuth2Session as OAuthlibSession

from tests.e2e.conftest import LocalStack
from tests.e2e.test_browser_e2e import (  # noqa: F401 - browser and callback are fixtures
    PASSWORD,
    Callback,
    Pages,
    _wait_for,
    browser,
    callback,
)

pytestmark = pytest.mark.e2e

SCOPE = "openid profile email people:read"


class RelyingParty(OAuth2Mixin, OpenIDMixin, BaseApp):  # type: ignore[misc]
    """Authlib's OpenID Connect client without a web framework."""

    client_cls = OAuth2Session


class _NoFramework:
    """Where Authlib's framework integrations would store a refreshed token: nowhere."""

    def update_token(self, *args: Any, **kwargs: Any) -> None:
        return None


def _authlib(stack: LocalStack, client_id: str) -> RelyingParty:
    return RelyingParty(
        _NoFramework(),
        client_id=client_id,
        server_metadata_url=stack.base_url + "/.well-known/openid-configuration",
        client_kwargs={
            "scope": SCOPE,
            "code_challenge_method": "S256",
            "token_endpoint_auth_method": "none",
        },
    )


def _user(stack: LocalStack) -> tuple[str, str]:
    username = stack.unique("alice")
    email = username + "@example.com"
    stack.admin_json(
        "user", "create", "--username", username, "--email", email, "--email-verified",
        "--name", "Alice Liddell", input=PASSWORD + "\n",
    )  # fmt: skip
    return username, email


def _at_hash(access_token: str) -> str:
    digest = hashlib.sha256(access_token.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()


def _arrive(driver: Any, target: str) -> str:
    _wait_for(driver, lambda d: str(d.current_url).startswith(target))
    return str(driver.current_url)


def test_authlib_oidc_client_signs_in_refreshes_and_signs_out(
    local_stack: LocalStack,
    browser: Any,  # noqa: F811 - the shared fixture
    callback: Callback,  # noqa: F811
) -> None:
    stack = local_stack
    signed_out = f"http://127.0.0.1:{callback.port}/signed-out"
    client = stack.admin_json(
        "client", "create", "--name", "Photo Sharing " + stack.unique("oidc"),
        "--grant-types", "authorization_code,refresh_token", "--scope", SCOPE, "--public",
        "--redirect-uri", callback.uri, "--post-logout-redirect-uri", signed_out,
    )  # fmt: skip
    username, email = _user(stack)
    rp = _authlib(stack, client["client_id"])
    page = Pages(browser)
    browser.delete_all_cookies()

    # Sign in and consent: the consent page names what the OpenID scopes release.
    request = rp.create_authorization_url(redirect_uri=callback.uri)
    assert request["nonce"]
    page.open(request["url"])
    page.sign_in(username, PASSWORD)
    assert page.title.startswith("Allow access")
    for words in ("Know who you are", "See your name and username", "See your email address"):
        assert words in page.text
    page.shot("oidc-01-consent")
    page.click("button[value=allow]")
    token = rp.fetch_access_token(
        redirect_uri=callback.uri,
        authorization_response=_arrive(browser, callback.uri),
        state=request["state"],
        code_verifier=request["code_verifier"],
    )

    # The ID token passes Authlib's validation with the request's nonce.
    user = rp.parse_id_token(token, nonce=request["nonce"])
    assert user["iss"] == stack.base_url
    assert user["aud"] == client["client_id"]
    assert user["nonce"] == request["nonce"]
    assert (user["preferred_username"], user["email"], user["email_verified"]) == (
        username,
        email,
        True,
    )
    assert user["name"] == "Alice Liddell"
    assert user["at_hash"] == _at_hash(token["access_token"])

    # A wrong nonce, and the ID token offered to another client: refused by the same library.
    with pytest.raises(InvalidClaimError, match="nonce"):
        rp.parse_id_token(token, nonce=generate_token(20))
    other = _authlib(stack, "some-other-client")
    # By default Authlib sees an aud that is not its client id as a token issued to another
    # party without azp (§2); told to check aud itself, it refuses the audience.
    with pytest.raises(MissingClaimError, match="azp"):
        other.parse_id_token(token, nonce=request["nonce"])
    with pytest.raises(InvalidClaimError, match="aud"):
        other.parse_id_token(
            token,
            nonce=request["nonce"],
            claims_options={"aud": {"essential": True, "values": ["some-other-client"]}},
        )

    # Userinfo: the same subject and claims; the API takes the access token, not the ID token.
    info = rp.userinfo(token=token)
    assert info["sub"] == user["sub"]
    assert info["email"] == email
    api = stack.base_url + "/people"
    assert requests.get(api, headers=_bearer(token["access_token"]), timeout=30).status_code == 200
    refused = requests.get(api, headers=_bearer(token["id_token"]), timeout=30)
    assert refused.status_code == 401

    # Silent re-authentication: prompt=none with the session and the earlier consent.
    silent = rp.create_authorization_url(redirect_uri=callback.uri, prompt="none")
    page.open(silent["url"])
    _arrive(browser, callback.uri)
    assert "code" in callback.last()

    # Refresh: a new ID token for the same sign-in, still valid for Authlib.
    token_endpoint = rp.load_server_metadata()["token_endpoint"]
    again = _session(client, token).refresh_token(token_endpoint)
    renewed = rp.parse_id_token(again, nonce=None)
    for same in ("sub", "sid", "auth_time", "aud"):
        assert renewed[same] == user[same], same
    assert "nonce" not in renewed

    # max_age exceeded: prompt=none answers login_required at the redirect URI.
    time.sleep(2.1)
    aged = rp.create_authorization_url(redirect_uri=callback.uri, prompt="none", max_age=1)
    page.open(aged["url"])
    _arrive(browser, callback.uri)
    assert callback.last()["error"] == "login_required"
    assert callback.last()["state"] == aged["state"]

    # RP-initiated logout with the ID token: back at the registered address with state.
    logout = rp.create_logout_url(
        post_logout_redirect_uri=signed_out, id_token_hint=again["id_token"]
    )
    page.open(logout["url"])
    landed = _arrive(browser, signed_out)
    assert landed == f"{signed_out}?state={logout['state']}"
    assert browser.get_cookie("tessera_session") is None

    # The session and the grant have ended.
    with pytest.raises(OAuthError) as ended:
        _session(client, again).refresh_token(token_endpoint)
    assert ended.value.error == "invalid_grant"
    assert rp.get(rp.load_server_metadata()["userinfo_endpoint"], token=again).status_code == 401
    after = rp.create_authorization_url(redirect_uri=callback.uri, prompt="none")
    page.open(after["url"])
    _arrive(browser, callback.uri)
    assert callback.last()["error"] == "login_required"


def _session(client: dict[str, Any], token: dict[str, Any]) -> OAuth2Session:
    return OAuth2Session(client["client_id"], token=token, token_endpoint_auth_method="none")


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": "Bearer " + token}


def test_requests_oauthlib_with_pyjwt_signs_in_a_pairwise_first_party_app(
    local_stack: LocalStack,
    browser: Any,  # noqa: F811 - the shared fixture
    callback: Callback,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")  # the local stack is plain http
    stack = local_stack
    client = stack.admin_json(
        "client", "create", "--name", "Portal " + stack.unique("oidc"),
        "--grant-types", "authorization_code", "--scope", SCOPE, "--public", "--first-party",
        "--redirect-uri", callback.uri, "--subject-type", "pairwise",
    )  # fmt: skip
    username, email = _user(stack)
    discovery = requests.get(stack.base_url + "/.well-known/openid-configuration", timeout=30)
    provider = discovery.json()
    assert "pairwise" in provider["subject_types_supported"]
    page = Pages(browser)
    browser.delete_all_cookies()

    def sign_in(scope: str, nonce: str | None, **extra: str) -> dict[str, Any]:
        oauth = OAuthlibSession(
            client["client_id"], redirect_uri=callback.uri, scope=scope.split(), pkce="S256"
        )
        params = {"nonce": nonce, **extra} if nonce else extra
        url, _ = oauth.authorization_url(provider["authorization_endpoint"], **params)
        page.open(url)
        if page.title.startswith("Sign in"):
            page.sign_in(username, PASSWORD)  # a first-party app: no consent page
        token: dict[str, Any] = oauth.fetch_token(
            provider["token_endpoint"],
            authorization_response=_arrive(browser, callback.uri),
            include_client_id=True,
        )
        return token

    nonce = generate_token(24)
    token = sign_in(SCOPE, nonce)
    id_token = token["id_token"]
    assert jwt.get_unverified_header(id_token)["typ"] == "JWT"
    key = jwt.PyJWKClient(provider["jwks_uri"]).get_signing_key_from_jwt(id_token)
    # What the provider says it signs with; the decoder is told exactly that.
    assert provider["id_token_signing_alg_values_supported"] == ["ES256"]

    def verify(audience: str) -> dict[str, Any]:
        claims: dict[str, Any] = jwt.decode(
            id_token,
            key,
            algorithms=["ES256"],
            audience=audience,
            issuer=provider["issuer"],
            options={"require": ["iss", "sub", "aud", "exp", "iat", "auth_time", "sid"]},
        )
        return claims

    claims = verify(client["client_id"])
    assert claims["nonce"] == nonce
    assert claims["at_hash"] == _at_hash(token["access_token"])
    assert claims["email"] == email
    with pytest.raises(jwt.InvalidAudienceError):
        verify("some-other-client")

    # Pairwise: the app's own sub, the same in the ID token, userinfo and the access token.
    info = requests.get(
        provider["userinfo_endpoint"], headers=_bearer(token["access_token"]), timeout=30
    )
    assert info.status_code == 200
    assert info.json()["sub"] == claims["sub"]
    access = jwt.decode(
        token["access_token"], algorithms=["ES256"], options={"verify_signature": False}
    )
    assert access["sub"] == claims["sub"]
    public_view = stack.admin_json("client", "show", client["client_id"])
    assert public_view["subject_type"] == "pairwise"

    # A request without nonce: the ID token has none, and an app expecting one must refuse it.
    bare = sign_in(SCOPE, None, prompt="none")
    bare_claims = jwt.decode(
        bare["id_token"], key, algorithms=["ES256"], audience=client["client_id"]
    )
    assert "nonce" not in bare_claims
    assert bare_claims["sub"] == claims["sub"]  # stable across sign-ins
    from authlib.oidc.core import CodeIDToken

    expecting = CodeIDToken(
        bare_claims, {}, None, {"nonce": nonce, "client_id": client["client_id"]}
    )
    with pytest.raises(MissingClaimError, match="nonce"):
        expecting.validate(leeway=60)

    # Userinfo with a token lacking openid: 403 insufficient_scope, as RFC 6750 says.
    narrow = sign_in("people:read", None, prompt="none")
    assert "id_token" not in narrow
    r = requests.get(
        provider["userinfo_endpoint"], headers=_bearer(narrow["access_token"]), timeout=30
    )
    assert r.status_code == 403
    assert 'error="insufficient_scope"' in r.headers["WWW-Authenticate"]

    # prompt=none in a browser without a session: login_required, no page shown.
    browser.delete_all_cookies()
    oauth = OAuthlibSession(client["client_id"], redirect_uri=callback.uri, scope=["openid"])
    url, state = oauth.authorization_url(
        provider["authorization_endpoint"], prompt="none", code_challenge="x" * 43,
        code_challenge_method="S256",
    )  # fmt: skip
    page.open(url)
    _arrive(browser, callback.uri)
    assert callback.last()["error"] == "login_required"
    assert callback.last()["state"] == state
