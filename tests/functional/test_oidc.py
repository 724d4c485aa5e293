"""OpenID Connect (issue 18), in-process: ID tokens, nonce, claims, prompt and max_age, userinfo,
discovery, RP-initiated logout, pairwise subjects, refresh and revocation of the sign-in.

Every ID token is checked the way a relying party would: PyJWT verifies the signature with the
key the JWKS document publishes, then ``aud`` and ``iss``; hashes are recomputed here.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
import pytest

from chalicelib.web import services
from tests.functional.conftest import AUDIENCE, ISSUER, T0, basic, body, form_post
from tests.functional.test_authorize import (
    CHALLENGE,
    PASSWORD,
    REDIRECT,
    Browser,
    consent,
    exchange,
    hidden,
    html,
    sign_in,
)

OIDC_SCOPE = "openid profile email people:read"
NONCE = "n-0S6_WzA2Mj"
LOGOUT_TARGET = "https://app.example/signed-out"


# --- helpers -----------------------------------------------------------------------------------


def oidc_path(client_id: str, **overrides: str | None) -> str:
    params: dict[str, str | None] = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT,
        "scope": OIDC_SCOPE,
        "state": "st-9",
        "nonce": NONCE,
        "code_challenge": CHALLENGE,
        "code_challenge_method": "S256",
    }
    params.update(overrides)
    return "/oauth2/authorize?" + urlencode({k: v for k, v in params.items() if v is not None})


def redirect_params(resp: Any, target: str = REDIRECT) -> dict[str, str]:
    assert resp.status_code == 303, html(resp)
    loc = resp.headers["Location"]
    assert loc.startswith(target), loc
    return {k: v[0] for k, v in parse_qs(urlsplit(loc).query).items()}


def jwks_key(app_client: Any, token: str) -> Any:
    keys = jwt.PyJWKSet.from_dict(body(app_client.http.get("/.well-known/jwks.json")))
    kid = jwt.get_unverified_header(token)["kid"]
    return next(k for k in keys.keys if k.key_id == kid)


def id_claims(app_client: Any, token: str, client_id: str) -> dict[str, Any]:
    """The claims of an ID token, verified as a relying party does (the tests' clock is not the
    real one, so times are compared by the tests themselves)."""
    claims: dict[str, Any] = jwt.decode(
        token,
        jwks_key(app_client, token),
        algorithms=["ES256"],
        audience=client_id,
        issuer=ISSUER,
        options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
    )
    return claims


def unverified(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(
        token, algorithms=["ES256"], options={"verify_signature": False}
    )
    return claims


def half_sha256(value: str) -> str:
    digest = hashlib.sha256(value.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()


def code_for(browser: Browser, path: str, username: str = "alice") -> dict[str, str]:
    """Sign in (and consent when asked) in ``browser``; the redirect's parameters."""
    page = sign_in(browser, path, username=username)
    if page.status_code == 200:
        page = consent(browser, page)
    return redirect_params(page)


def tokens_for(app_client: Any, client: dict[str, Any], browser: Browser, **overrides: str | None):
    got = code_for(browser, oidc_path(client["client_id"], **overrides))
    r = exchange(app_client, client, got["code"])
    assert r.status_code == 200, r.body
    return body(r)


def refresh(app_client: Any, client: dict[str, Any], token: str, **extra: str) -> Any:
    params = {"grant_type": "refresh_token", "refresh_token": token}
    params["client_id"] = client["client_id"]
    params.update(extra)
    return form_post(app_client, "/oauth2/token", params)


def userinfo(app_client: Any, token: str, method: str = "GET") -> Any:
    headers = {"Authorization": "Bearer " + token}
    if method == "GET":
        return app_client.http.get("/oauth2/userinfo", headers=headers)
    return app_client.http.post("/oauth2/userinfo", headers=headers, body=b"")


@pytest.fixture
def rp(make_client):
    """A public single-page app using OpenID Connect: consent required, refresh tokens."""
    return make_client(
        name="Photo App",
        grant_types=["authorization_code", "refresh_token"],
        scopes=["openid", "profile", "email", "people:read"],
        public=True,
        redirect_uris=[REDIRECT],
        post_logout_redirect_uris=[LOGOUT_TARGET],
    )


@pytest.fixture
def first_party(make_client):
    return make_client(
        name="Our Portal",
        grant_types=["authorization_code", "refresh_token"],
        scopes=["openid", "profile", "email", "people:read"],
        public=True,
        first_party=True,
        redirect_uris=[REDIRECT],
        post_logout_redirect_uris=[LOGOUT_TARGET],
    )


@pytest.fixture
def alice(aws):
    from chalicelib.ops import admin_records as admin
    from tests.functional.conftest import _shared_hash

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(admin, "hash_password", _shared_hash)
        return admin.create_user(
            services.user_store(),
            "alice",
            PASSWORD,
            now=int(T0),
            email="alice@example.com",
            email_verified=True,
            name="Alice Liddell",
        )


# --- ID tokens ---------------------------------------------------------------------------------


def test_code_flow_with_openid_returns_a_verifiable_id_token_for_the_client(
    app_client, rp, alice, clock
):
    signed_in_at = int(clock.now())
    got = code_for(Browser(app_client), oidc_path(rp["client_id"]))
    clock.advance(5)
    tokens = body(exchange(app_client, rp, got["code"]))
    header = jwt.get_unverified_header(tokens["id_token"])
    assert header["typ"] == "JWT"
    assert header["alg"] == "ES256"
    claims = id_claims(app_client, tokens["id_token"], rp["client_id"])
    now = int(clock.now())
    assert claims["iss"] == ISSUER
    assert claims["sub"] == alice["user_id"]
    assert claims["aud"] == rp["client_id"]
    assert claims["iat"] == now
    assert claims["exp"] == now + 900
    assert claims["auth_time"] == signed_in_at
    assert claims["nonce"] == NONCE
    assert claims["at_hash"] == half_sha256(tokens["access_token"])
    assert claims["sid"] == unverified(tokens["access_token"])["sid"]
    assert "azp" not in claims  # a single audience, the client itself


def test_id_token_carries_the_profile_and_email_the_scopes_release(app_client, rp, alice):
    tokens = tokens_for(app_client, rp, Browser(app_client))
    claims = id_claims(app_client, tokens["id_token"], rp["client_id"])
    assert claims["preferred_username"] == "alice"
    assert claims["name"] == "Alice Liddell"
    assert claims["email"] == "alice@example.com"
    assert claims["email_verified"] is True


def test_openid_alone_releases_no_profile_or_email(app_client, rp, alice):
    tokens = tokens_for(app_client, rp, Browser(app_client), scope="openid")
    claims = id_claims(app_client, tokens["id_token"], rp["client_id"])
    assert not {"preferred_username", "name", "email", "email_verified"} & claims.keys()


def test_without_the_openid_scope_there_is_no_id_token(app_client, rp, alice):
    tokens = tokens_for(app_client, rp, Browser(app_client), scope="people:read")
    assert "id_token" not in tokens


def test_a_request_without_nonce_gets_an_id_token_without_nonce(app_client, rp, alice):
    tokens = tokens_for(app_client, rp, Browser(app_client), nonce=None)
    assert "nonce" not in id_claims(app_client, tokens["id_token"], rp["client_id"])


def test_nonce_is_echoed_byte_for_byte(app_client, rp, alice):
    odd = "a b/c?d=e&f+g%25~é" + "x" * 400
    tokens = tokens_for(app_client, rp, Browser(app_client), nonce=odd)
    assert id_claims(app_client, tokens["id_token"], rp["client_id"])["nonce"] == odd


@pytest.mark.parametrize("nonce", ["x" * 513, "line\nbreak"])
def test_oversized_or_control_character_nonce_is_invalid_request(app_client, rp, nonce):
    r = app_client.http.get(oidc_path(rp["client_id"], nonce=nonce))
    got = redirect_params(r)
    assert got["error"] == "invalid_request"
    assert got["state"] == "st-9"


def test_id_token_of_one_client_fails_another_clients_audience_check(
    app_client, rp, first_party, alice
):
    tokens = tokens_for(app_client, rp, Browser(app_client))
    with pytest.raises(jwt.InvalidAudienceError):
        id_claims(app_client, tokens["id_token"], first_party["client_id"])


def test_password_grant_issues_no_id_token(app_client, make_client, alice):
    c = make_client(grant_types=["password"], scopes=["openid", "people:read"])
    r = form_post(
        app_client,
        "/oauth2/token",
        {"grant_type": "password", "username": "alice", "password": PASSWORD},
        {"Authorization": basic(c["client_id"], c["client_secret"])},
    )
    assert r.status_code == 200, r.body
    assert "id_token" not in body(r)


# --- refresh and revocation --------------------------------------------------------------------


def test_refresh_issues_an_id_token_for_the_same_sign_in(app_client, rp, alice, clock):
    tokens = tokens_for(app_client, rp, Browser(app_client))
    first = id_claims(app_client, tokens["id_token"], rp["client_id"])
    clock.advance(600)
    r = refresh(app_client, rp, tokens["refresh_token"])
    assert r.status_code == 200, r.body
    again = body(r)
    second = id_claims(app_client, again["id_token"], rp["client_id"])
    for same in ("iss", "sub", "aud", "auth_time", "sid", "email", "name"):
        assert second[same] == first[same], same
    assert second["iat"] == first["iat"] + 600
    assert second["at_hash"] == half_sha256(again["access_token"])
    assert "nonce" not in second  # §12.2: the nonce belonged to the authentication request


def test_refresh_narrowed_below_openid_has_no_id_token(app_client, rp, alice):
    tokens = tokens_for(app_client, rp, Browser(app_client))
    r = refresh(app_client, rp, tokens["refresh_token"], scope="people:read")
    assert r.status_code == 200, r.body
    assert "id_token" not in body(r)


def test_revoking_the_grant_ends_refresh_and_userinfo(app_client, rp, alice):
    tokens = tokens_for(app_client, rp, Browser(app_client))
    assert userinfo(app_client, tokens["access_token"]).status_code == 200
    r = form_post(
        app_client,
        "/oauth2/revoke",
        {"token": tokens["refresh_token"], "client_id": rp["client_id"]},
    )
    assert r.status_code == 200
    assert body(refresh(app_client, rp, tokens["refresh_token"]))["error"] == "invalid_grant"
    r = userinfo(app_client, tokens["access_token"])
    assert r.status_code == 401
    assert 'error="invalid_token"' in r.headers["WWW-Authenticate"]


# --- userinfo ----------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_userinfo_answers_the_id_tokens_subject_and_released_claims(app_client, rp, alice, method):
    tokens = tokens_for(app_client, rp, Browser(app_client))
    r = userinfo(app_client, tokens["access_token"], method)
    assert r.status_code == 200, r.body
    assert r.headers["Cache-Control"] == "no-store"
    assert body(r) == {
        "sub": id_claims(app_client, tokens["id_token"], rp["client_id"])["sub"],
        "preferred_username": "alice",
        "name": "Alice Liddell",
        "email": "alice@example.com",
        "email_verified": True,
    }


def test_userinfo_accepts_the_token_in_a_form_body(app_client, rp, alice):
    tokens = tokens_for(app_client, rp, Browser(app_client), scope="openid email")
    r = form_post(app_client, "/oauth2/userinfo", {"access_token": tokens["access_token"]})
    assert r.status_code == 200, r.body
    assert body(r)["email"] == "alice@example.com"
    assert "name" not in body(r)


def test_userinfo_without_a_token_is_a_401_challenge_without_error_code(app_client):
    r = app_client.http.get("/oauth2/userinfo")
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"] == 'Bearer realm="tessera"'


def test_userinfo_with_a_token_lacking_openid_is_403_insufficient_scope(app_client, rp, alice):
    tokens = tokens_for(app_client, rp, Browser(app_client), scope="people:read")
    r = userinfo(app_client, tokens["access_token"])
    assert r.status_code == 403
    assert r.headers["WWW-Authenticate"] == (
        'Bearer realm="tessera", error="insufficient_scope", scope="openid"'
    )
    assert body(r)["error"] == "insufficient_scope"


def test_userinfo_refuses_an_id_token_as_bearer(app_client, rp, alice):
    tokens = tokens_for(app_client, rp, Browser(app_client))
    r = userinfo(app_client, tokens["id_token"])
    assert r.status_code == 401
    assert 'error="invalid_token"' in r.headers["WWW-Authenticate"]


def test_userinfo_refuses_an_expired_token(app_client, rp, alice, clock):
    tokens = tokens_for(app_client, rp, Browser(app_client))
    clock.advance(900)
    r = userinfo(app_client, tokens["access_token"])
    assert r.status_code == 401
    assert 'error="invalid_token"' in r.headers["WWW-Authenticate"]


def test_userinfo_refuses_a_token_once_its_user_is_disabled(app_client, rp, alice):
    tokens = tokens_for(app_client, rp, Browser(app_client))
    services.user_store().set_disabled("alice", True)
    assert userinfo(app_client, tokens["access_token"]).status_code == 401


def test_userinfo_refuses_a_client_credentials_token_even_with_openid(app_client, make_client):
    c = make_client(scopes=["openid"])
    r = form_post(
        app_client,
        "/oauth2/token",
        {"grant_type": "client_credentials"},
        {"Authorization": basic(c["client_id"], c["client_secret"])},
    )
    r = userinfo(app_client, body(r)["access_token"])
    assert r.status_code == 401  # no user signed in: nobody to describe


def test_userinfo_refuses_a_token_in_the_query_string(app_client, rp, alice):
    tokens = tokens_for(app_client, rp, Browser(app_client))
    r = app_client.http.get("/oauth2/userinfo?access_token=" + tokens["access_token"])
    assert r.status_code == 400
    assert body(r)["error"] == "invalid_request"


def test_userinfo_refuses_two_ways_of_sending_the_token(app_client, rp, alice):
    tokens = tokens_for(app_client, rp, Browser(app_client))
    r = form_post(
        app_client,
        "/oauth2/userinfo",
        {"access_token": tokens["access_token"]},
        {"Authorization": "Bearer " + tokens["access_token"]},
    )
    assert r.status_code == 400
    assert body(r)["error"] == "invalid_request"


def test_userinfo_other_methods_are_405(app_client):
    r = app_client.http.put("/oauth2/userinfo")
    assert r.status_code == 405
    assert r.headers["Allow"] == "GET, POST"


def test_userinfo_preflight_lets_any_page_send_the_authorization_header(app_client):
    r = app_client.http.request(
        "OPTIONS",
        "/oauth2/userinfo",
        headers={
            "Origin": "https://spa.example",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    assert r.status_code == 204
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    assert "Authorization" in r.headers["Access-Control-Allow-Headers"]
    assert "Set-Cookie" not in r.headers


# --- the authorizer and ID tokens --------------------------------------------------------------


def test_authorizer_refuses_an_id_token_presented_as_an_access_token(app_client, rp, alice):
    from tests.functional.authorizer_support import invoker, rejecter

    tokens = tokens_for(app_client, rp, Browser(app_client))
    rejecter(invoker(app_client))("Bearer " + tokens["id_token"])


def test_authorizer_refuses_access_token_claims_signed_as_an_id_token(app_client, rp, alice):
    """Only ``typ`` differs: the access token's own claims, signed by the real key as a JWT."""
    from tests.functional.authorizer_support import allowed_routes, invoker, rejecter

    tokens = tokens_for(app_client, rp, Browser(app_client))
    claims = unverified(tokens["access_token"])
    signer = services.signing_keys().current()
    invoke = invoker(app_client)
    assert allowed_routes(invoke("Bearer " + signer.sign(claims, "at+jwt")))
    rejecter(invoke)("Bearer " + signer.sign(claims, "JWT"))


# --- prompt, max_age, hints --------------------------------------------------------------------


def test_prompt_none_without_a_session_is_login_required(app_client, rp):
    got = redirect_params(app_client.http.get(oidc_path(rp["client_id"], prompt="none")))
    assert got["error"] == "login_required"
    assert got["state"] == "st-9"
    assert got["iss"] == ISSUER


def test_prompt_none_with_a_session_of_a_first_party_app_returns_a_code(
    app_client, first_party, alice
):
    b = Browser(app_client)
    code_for(b, oidc_path(first_party["client_id"]))
    got = redirect_params(b.get(oidc_path(first_party["client_id"], prompt="none")))
    assert "code" in got


def test_prompt_none_needs_an_earlier_consent_and_revoking_it_withdraws_it(app_client, rp, alice):
    b = Browser(app_client)
    page = sign_in(b, oidc_path(rp["client_id"]))
    assert 'value="consent"' in html(page)  # no consent yet
    got = redirect_params(b.get(oidc_path(rp["client_id"], prompt="none")))
    assert got["error"] == "consent_required"
    got = redirect_params(consent(b, page))
    tokens = body(exchange(app_client, rp, got["code"]))  # the grant stands for the consent
    got = redirect_params(b.get(oidc_path(rp["client_id"], prompt="none")))
    assert "code" in got
    got = redirect_params(b.get(oidc_path(rp["client_id"], prompt="none", scope="openid email")))
    assert "code" in got  # a narrower scope is covered
    revoke = {"token": tokens["refresh_token"], "client_id": rp["client_id"]}
    assert form_post(app_client, "/oauth2/revoke", revoke).status_code == 200
    got = redirect_params(b.get(oidc_path(rp["client_id"], prompt="none")))
    assert got["error"] == "consent_required"


def test_prompt_login_asks_a_signed_in_user_again_and_renews_auth_time(
    app_client, first_party, alice, clock
):
    b = Browser(app_client)
    code_for(b, oidc_path(first_party["client_id"]))
    clock.advance(30)
    page = b.get(oidc_path(first_party["client_id"], prompt="login"))
    assert page.status_code == 200
    assert 'name="password"' in html(page)
    got = code_for(b, oidc_path(first_party["client_id"], prompt="login"))
    claims = id_claims(
        app_client,
        body(exchange(app_client, first_party, got["code"]))["id_token"],
        first_party["client_id"],
    )
    assert claims["auth_time"] == int(clock.now())


def test_prompt_consent_asks_even_for_a_first_party_app(app_client, first_party, alice):
    b = Browser(app_client)
    code_for(b, oidc_path(first_party["client_id"]))
    page = b.get(oidc_path(first_party["client_id"], prompt="consent"))
    assert page.status_code == 200
    assert 'value="consent"' in html(page)


def test_max_age_exceeded_asks_for_a_sign_in_and_prompt_none_gets_login_required(
    app_client, first_party, alice, clock
):
    b = Browser(app_client)
    code_for(b, oidc_path(first_party["client_id"]))
    signed_in_at = int(clock.now())
    clock.advance(61)
    got = redirect_params(b.get(oidc_path(first_party["client_id"], max_age="120")))
    claims = id_claims(
        app_client,
        body(exchange(app_client, first_party, got["code"]))["id_token"],
        first_party["client_id"],
    )
    assert claims["auth_time"] == signed_in_at  # within max_age: the session is used
    page = b.get(oidc_path(first_party["client_id"], max_age="60"))
    assert page.status_code == 200
    assert 'name="password"' in html(page)
    got = redirect_params(b.get(oidc_path(first_party["client_id"], max_age="60", prompt="none")))
    assert got["error"] == "login_required"


def test_consent_given_after_max_age_has_passed_asks_for_a_sign_in(app_client, rp, alice, clock):
    b = Browser(app_client)
    page = sign_in(b, oidc_path(rp["client_id"], max_age="60"))
    assert 'value="consent"' in html(page)
    clock.advance(61)
    again = consent(b, page)
    assert again.status_code == 200
    assert 'name="password"' in html(again)


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"prompt": "none login"}, "invalid_request"),
        ({"prompt": "create"}, "invalid_request"),
        ({"max_age": "-1"}, "invalid_request"),
        ({"max_age": "1e3"}, "invalid_request"),
        ({"request": "eyJhbGciOiJub25lIn0.e30."}, "request_not_supported"),
        ({"request_uri": "https://app.example/r"}, "request_uri_not_supported"),
        ({"registration": "{}"}, "registration_not_supported"),
        ({"response_mode": "form_post"}, "invalid_request"),
        ({"id_token_hint": "not-a-token"}, "invalid_request"),
    ],
)
def test_malformed_openid_parameters_are_errors_at_the_redirect(app_client, rp, overrides, error):
    got = redirect_params(app_client.http.get(oidc_path(rp["client_id"], **overrides)))
    assert got["error"] == error
    assert got["state"] == "st-9"


def test_id_token_hint_of_the_signed_in_user_lets_prompt_none_through(
    app_client, first_party, alice
):
    b = Browser(app_client)
    tokens = tokens_for(app_client, first_party, b)
    got = redirect_params(
        b.get(oidc_path(first_party["client_id"], prompt="none", id_token_hint=tokens["id_token"]))
    )
    assert "code" in got


def id_token_of(app_client: Any, client: dict[str, Any], username: str) -> str:
    """An ID token of ``username``, signed in from a browser of their own."""
    got = code_for(Browser(app_client), oidc_path(client["client_id"]), username=username)
    return str(body(exchange(app_client, client, got["code"]))["id_token"])


def test_id_token_hint_of_another_user_is_interaction_required(
    app_client, first_party, alice, make_user
):
    make_user("bob", PASSWORD)
    bobs = id_token_of(app_client, first_party, "bob")
    b = Browser(app_client)
    code_for(b, oidc_path(first_party["client_id"]), username="alice")
    got = redirect_params(
        b.get(oidc_path(first_party["client_id"], prompt="none", id_token_hint=bobs))
    )
    assert got["error"] == "interaction_required"
    page = b.get(oidc_path(first_party["client_id"], id_token_hint=bobs))
    assert 'name="password"' in html(page)  # without prompt=none: sign in as the hinted user


def test_id_token_hint_for_another_client_is_invalid_request(app_client, rp, first_party, alice):
    tokens = tokens_for(app_client, rp, Browser(app_client))
    got = redirect_params(
        app_client.http.get(oidc_path(first_party["client_id"], id_token_hint=tokens["id_token"]))
    )
    assert got["error"] == "invalid_request"


def test_access_token_is_not_an_id_token_hint(app_client, first_party, alice):
    tokens = tokens_for(app_client, first_party, Browser(app_client))
    got = redirect_params(
        app_client.http.get(
            oidc_path(first_party["client_id"], id_token_hint=tokens["access_token"])
        )
    )
    assert got["error"] == "invalid_request"


def test_login_hint_fills_in_the_username_escaped(app_client, rp):
    page = app_client.http.get(oidc_path(rp["client_id"], login_hint='al"<ice>'))
    assert 'value="al&quot;&lt;ice&gt;"' in html(page)


# --- discovery ---------------------------------------------------------------------------------


def test_openid_configuration_has_the_provider_members(app_client, rp):
    doc = body(app_client.http.get("/.well-known/openid-configuration"))
    assert doc["issuer"] == ISSUER
    assert doc["authorization_endpoint"] == ISSUER + "/oauth2/authorize"
    assert doc["token_endpoint"] == ISSUER + "/oauth2/token"
    assert doc["userinfo_endpoint"] == ISSUER + "/oauth2/userinfo"
    assert doc["end_session_endpoint"] == ISSUER + "/oauth2/logout"
    assert doc["jwks_uri"] == ISSUER + "/.well-known/jwks.json"
    assert doc["response_types_supported"] == ["code"]
    assert doc["subject_types_supported"] == ["public", "pairwise"]
    assert doc["id_token_signing_alg_values_supported"] == ["ES256"]
    assert {"openid", "profile", "email"} <= set(doc["scopes_supported"])
    assert {"sub", "iss", "auth_time", "nonce", "at_hash", "sid", "email", "name"} <= set(
        doc["claims_supported"]
    )
    assert doc["request_uri_parameter_supported"] is False  # its default would be true
    assert doc == body(app_client.http.get("/.well-known/oauth-authorization-server"))


def test_openid_configuration_passes_authlibs_provider_checks_but_the_rs256_rule(app_client, rp):
    """Authlib's Discovery validator, member by member: the one it refuses is the documented
    deviation (ES256 keys; Discovery §3 wants RS256 listed)."""
    from authlib.oidc.discovery import OpenIDProviderMetadata

    doc = OpenIDProviderMetadata(body(app_client.http.get("/.well-known/openid-configuration")))
    failed = set()
    for name in dir(doc):
        if name.startswith("validate_"):
            try:
                getattr(doc, name)()
            except ValueError:
                failed.add(name.removeprefix("validate_"))
    assert failed == {"id_token_signing_alg_values_supported"}


def test_signing_algorithms_listed_are_those_of_the_published_keys(app_client, rp):
    doc = body(app_client.http.get("/.well-known/openid-configuration"))
    keys = body(app_client.http.get("/.well-known/jwks.json"))["keys"]
    assert doc["id_token_signing_alg_values_supported"] == sorted({k["alg"] for k in keys})


def test_a_stage_without_the_code_flow_advertises_no_provider_members(app_client, monkeypatch):
    from tests.functional.authorizer_support import reconfigure

    monkeypatch.delenv("TESSERA_PEPPER_SECRET")
    reconfigure(monkeypatch)
    doc = body(app_client.http.get("/.well-known/openid-configuration"))
    assert "authorization_endpoint" not in doc
    assert "userinfo_endpoint" not in doc


# --- RP-initiated logout -----------------------------------------------------------------------


def logout_path(**params: str) -> str:
    return "/oauth2/logout?" + urlencode(params)


def test_logout_with_the_users_id_token_ends_session_and_grant_and_returns(app_client, rp, alice):
    from tests.functional.test_authorize import SESSION

    b = Browser(app_client)
    tokens = tokens_for(app_client, rp, b)
    assert SESSION in b.cookies
    r = b.get(
        logout_path(
            id_token_hint=tokens["id_token"], post_logout_redirect_uri=LOGOUT_TARGET, state="s-1"
        )
    )
    assert redirect_params(r, LOGOUT_TARGET) == {"state": "s-1"}
    assert SESSION not in b.cookies
    assert body(refresh(app_client, rp, tokens["refresh_token"]))["error"] == "invalid_grant"
    assert userinfo(app_client, tokens["access_token"]).status_code == 401
    got = redirect_params(b.get(oidc_path(rp["client_id"], prompt="none")))
    assert got["error"] == "login_required"


def test_logout_to_an_unregistered_address_is_an_error_page_and_ends_nothing(app_client, rp, alice):
    from tests.functional.test_authorize import SESSION

    b = Browser(app_client)
    tokens = tokens_for(app_client, rp, b)
    for target in (REDIRECT, LOGOUT_TARGET + "/", "https://evil.example/"):
        r = b.get(logout_path(id_token_hint=tokens["id_token"], post_logout_redirect_uri=target))
        assert r.status_code == 400
        assert "Location" not in r.headers
    assert SESSION in b.cookies
    assert refresh(app_client, rp, tokens["refresh_token"]).status_code == 200


def test_logout_redirect_needs_the_client_to_be_known(app_client, rp):
    r = app_client.http.get(logout_path(post_logout_redirect_uri=LOGOUT_TARGET))
    assert r.status_code == 400
    r = app_client.http.get(
        logout_path(client_id=rp["client_id"], post_logout_redirect_uri=LOGOUT_TARGET)
    )
    assert redirect_params(r, LOGOUT_TARGET) == {}


def test_logout_hint_for_another_client_than_client_id_is_an_error(
    app_client, rp, first_party, alice
):
    tokens = tokens_for(app_client, rp, Browser(app_client))
    r = app_client.http.get(
        logout_path(id_token_hint=tokens["id_token"], client_id=first_party["client_id"])
    )
    assert r.status_code == 400


def test_access_token_is_not_a_logout_hint(app_client, rp, alice):
    tokens = tokens_for(app_client, rp, Browser(app_client))
    r = app_client.http.get(logout_path(id_token_hint=tokens["access_token"]))
    assert r.status_code == 400


def test_logout_without_hint_asks_first_and_needs_the_forms_csrf_token(app_client, rp, alice):
    from tests.functional.test_authorize import SESSION

    b = Browser(app_client)
    tokens = tokens_for(app_client, rp, b)
    page = b.get(logout_path(client_id=rp["client_id"], post_logout_redirect_uri=LOGOUT_TARGET))
    assert page.status_code == 200
    assert "Sign out?" in html(page)
    assert SESSION in b.cookies
    fields = {
        "step": "confirm",
        "client_id": rp["client_id"],
        "post_logout_redirect_uri": LOGOUT_TARGET,
    }
    assert b.post("/oauth2/logout", {**fields, "csrf": "forged"}).status_code == 403
    assert SESSION in b.cookies
    r = b.post("/oauth2/logout", {**fields, "csrf": hidden(html(page), "csrf")})
    assert redirect_params(r, LOGOUT_TARGET) == {}
    assert SESSION not in b.cookies
    # No hint: the app's grant is not named, so it lives on.
    assert refresh(app_client, rp, tokens["refresh_token"]).status_code == 200


def test_logout_with_another_users_hint_asks_first(app_client, first_party, alice, make_user):
    from tests.functional.test_authorize import SESSION

    make_user("bob", PASSWORD)
    bobs = id_token_of(app_client, first_party, "bob")
    b = Browser(app_client)
    code_for(b, oidc_path(first_party["client_id"]), username="alice")
    page = b.get(logout_path(id_token_hint=bobs))
    assert page.status_code == 200
    assert "Sign out?" in html(page)
    assert SESSION in b.cookies


def test_apps_cross_site_logout_form_with_a_hint_ends_the_grant(app_client, rp, alice):
    tokens = tokens_for(app_client, rp, Browser(app_client))
    # Cross-site: no cookie comes with the app's form.
    r = form_post(
        app_client,
        "/oauth2/logout",
        {
            "id_token_hint": tokens["id_token"],
            "post_logout_redirect_uri": LOGOUT_TARGET,
            "state": "s-2",
        },
    )
    assert redirect_params(r, LOGOUT_TARGET) == {"state": "s-2"}
    assert body(refresh(app_client, rp, tokens["refresh_token"]))["error"] == "invalid_grant"


def test_expired_id_token_is_still_a_logout_hint(app_client, rp, alice, clock):
    tokens = tokens_for(app_client, rp, Browser(app_client))
    clock.advance(3600)
    r = app_client.http.get(
        logout_path(id_token_hint=tokens["id_token"], post_logout_redirect_uri=LOGOUT_TARGET)
    )
    assert redirect_params(r, LOGOUT_TARGET) == {}


def test_repeated_logout_parameter_is_an_error_page(app_client, rp):
    r = app_client.http.get(
        "/oauth2/logout?"
        + urlencode([("client_id", rp["client_id"]), ("client_id", rp["client_id"])])
    )
    assert r.status_code == 400


# --- pairwise subjects -------------------------------------------------------------------------


def pairwise_client(make_client: Any, redirect: str = REDIRECT, **extra: Any) -> dict[str, Any]:
    client: dict[str, Any] = make_client(
        name="Pairwise App",
        grant_types=["authorization_code", "refresh_token"],
        scopes=["openid", "profile"],
        public=True,
        first_party=True,
        redirect_uris=[redirect],
        subject_type="pairwise",
        **extra,
    )
    return client


def test_pairwise_client_sees_its_own_stable_sub_everywhere(app_client, make_client, alice):
    c = pairwise_client(make_client)
    tokens = tokens_for(app_client, c, Browser(app_client), scope="openid profile")
    sub = id_claims(app_client, tokens["id_token"], c["client_id"])["sub"]
    assert sub != alice["user_id"]
    assert alice["user_id"] not in tokens["access_token"] + tokens["id_token"]
    assert unverified(tokens["access_token"])["sub"] == sub
    assert body(userinfo(app_client, tokens["access_token"]))["sub"] == sub
    again = tokens_for(app_client, c, Browser(app_client), scope="openid profile")
    assert id_claims(app_client, again["id_token"], c["client_id"])["sub"] == sub
    r = refresh(app_client, c, tokens["refresh_token"])
    assert id_claims(app_client, body(r)["id_token"], c["client_id"])["sub"] == sub


def sub_of(app_client: Any, client: dict[str, Any]) -> str:
    """The ``sub`` of alice's ID token for ``client`` (signed in at its one redirect URI)."""
    target = client["redirect_uris"][0]
    page = sign_in(
        Browser(app_client), oidc_path(client["client_id"], scope="openid", redirect_uri=target)
    )
    r = exchange(app_client, client, redirect_params(page, target)["code"], redirect_uri=target)
    return str(id_claims(app_client, body(r)["id_token"], client["client_id"])["sub"])


def test_pairwise_subs_differ_between_sectors_and_agree_within_one(app_client, make_client, alice):
    one = pairwise_client(make_client)
    same_host = pairwise_client(make_client)
    other_host = pairwise_client(make_client, "https://other.example/cb")
    public = make_client(
        grant_types=["authorization_code"],
        scopes=["openid"],
        public=True,
        first_party=True,
        redirect_uris=[REDIRECT],
    )
    assert one["sector"] == same_host["sector"] == "app.example"
    assert sub_of(app_client, one) == sub_of(app_client, same_host)
    assert sub_of(app_client, one) != sub_of(app_client, other_host)
    assert sub_of(app_client, public) == alice["user_id"]


def test_introspecting_a_pairwise_clients_refresh_token_names_its_own_sub(
    app_client, make_client, alice
):
    c = make_client(
        grant_types=["authorization_code", "refresh_token"],
        scopes=["openid"],
        first_party=True,
        redirect_uris=[REDIRECT],
        subject_type="pairwise",
    )
    got = code_for(Browser(app_client), oidc_path(c["client_id"], scope="openid"))
    r = exchange(app_client, c, got["code"], client_secret=c["client_secret"])
    tokens = body(r)
    sub = id_claims(app_client, tokens["id_token"], c["client_id"])["sub"]
    auth = {"Authorization": basic(c["client_id"], c["client_secret"])}
    for token in (tokens["refresh_token"], tokens["access_token"]):
        found = body(form_post(app_client, "/oauth2/introspect", {"token": token}, auth))
        assert found["active"] is True
        assert found["sub"] == sub


def test_userinfo_errors_are_readable_by_any_page(app_client):
    r = app_client.http.get("/oauth2/userinfo", headers={"Origin": "https://spa.example"})
    assert r.status_code == 401
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    assert r.headers["Access-Control-Expose-Headers"] == "WWW-Authenticate"


def test_pairwise_sector_defaults_to_the_client_for_loopback_and_native_apps(make_client):
    loopback = pairwise_client(make_client, "http://127.0.0.1/cb")
    assert loopback["sector"] == loopback["client_id"]
    native = pairwise_client(make_client, "com.example.app:/cb")
    assert native["sector"] == native["client_id"]
    chosen = pairwise_client(make_client, "com.example.app:/cb", sector="example.com")
    assert chosen["sector"] == "example.com"


# --- admin: profile claims and registration ----------------------------------------------------


def test_admin_sets_and_removes_profile_claims(app_client, rp, alice):
    from chalicelib.ops import admin

    admin.set_profile(
        services.user_store(), "Alice", email="a@new.example", email_verified=False, name=None
    )
    tokens = tokens_for(app_client, rp, Browser(app_client))
    assert body(userinfo(app_client, tokens["access_token"])) == {
        "sub": alice["user_id"],
        "preferred_username": "alice",
        "email": "a@new.example",
        "email_verified": False,
    }


@pytest.mark.parametrize(
    ("email", "name"),
    [("no-at-sign", None), ("a@b@c", None), ("a b@c", None), (None, "\x00"), (None, "x" * 201)],
)
def test_admin_refuses_malformed_profile_claims(aws, email, name):
    from chalicelib.ops import admin

    with pytest.raises(admin.AdminError):
        admin.create_user(services.user_store(), "carol", PASSWORD, email=email, name=name)


def test_admin_command_creates_a_user_with_profile_and_updates_it(aws, capsys):
    from chalicelib.ops import admin

    def run(*argv: str) -> dict[str, Any]:
        assert admin.main(["--stage", "test", *argv, "--json"], configure=lambda s: None) == 0
        return dict(json.loads(capsys.readouterr().out))

    import sys
    from io import StringIO

    sys.stdin = StringIO(PASSWORD + "\n")
    try:
        run("user", "create", "--username", "dora", "--email", "d@example.com", "--name", "Dora")
    finally:
        sys.stdin = sys.__stdin__
    user = services.user_store().get("dora")
    assert user is not None
    assert (user.email, user.email_verified, user.name) == ("d@example.com", False, "Dora")
    out = run("user", "profile", "dora", "--email", "d@example.com", "--email-verified")
    assert out == {
        "username": "dora",
        "email": "d@example.com",
        "email_verified": True,
        "name": None,
    }
    user = services.user_store().get("dora")
    assert user is not None
    assert (user.email_verified, user.name) == (True, None)


def test_admin_refuses_an_insecure_post_logout_redirect_uri(aws):
    from chalicelib.ops import admin

    with pytest.raises(admin.AdminError):
        admin.create_client(
            services.client_store(),
            name="x",
            grant_types=["authorization_code"],
            scopes=["openid"],
            redirect_uris=[REDIRECT],
            post_logout_redirect_uris=["http://app.example/bye"],
        )


def test_pages_name_the_openid_scopes_in_plain_words(app_client, rp, alice):
    b = Browser(app_client)
    page = sign_in(b, oidc_path(rp["client_id"]))
    text = html(page)
    assert "Know who you are" in text
    assert "See your email address" in text
    assert "See your name and username" in text
    # Who the user is comes first, then what the app may do.
    assert text.index("Know who you are") < text.index("See the people directory")


def test_access_tokens_keep_the_resource_servers_audience(app_client, rp, alice):
    tokens = tokens_for(app_client, rp, Browser(app_client))
    assert unverified(tokens["access_token"])["aud"] == AUDIENCE
