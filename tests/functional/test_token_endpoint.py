"""The token endpoint (RFC 6749 §3.2, §4.3, §4.4, §5) and the access tokens it issues (RFC 9068).

Each test posts real requests at ``/oauth2/token`` through Chalice's test client against moto.
Access tokens are verified with PyJWT (an independent implementation) and the served JWKS.
Client authentication has its own file (tests/functional/test_client_auth.py).
"""

from __future__ import annotations

import json
import re
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

from chalicelib.core.records import Client, User, hash_secret
from chalicelib.tokens import passwords
from chalicelib.web import services
from tests.functional.conftest import AUDIENCE, ISSUER, T0, basic, body, form_post

TOKEN = "/oauth2/token"
FORM = "application/x-www-form-urlencoded"
PASSWORD = "correct horse battery"
# RFC 6749 §5.2: error_description is limited to %x20-21 / %x23-5B / %x5D-7E.
DESCRIPTION_CHARS = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]*")


def cc(app_client: Any, client: dict[str, Any], **params: str) -> Any:
    """A client_credentials request with Basic authentication."""
    return form_post(
        app_client,
        TOKEN,
        {"grant_type": "client_credentials", **params},
        {"Authorization": basic(client["client_id"], client["client_secret"])},
    )


def login(app_client: Any, client: dict[str, Any], username: str, password: str, **extra: str):
    return form_post(
        app_client,
        TOKEN,
        {"grant_type": "password", "username": username, "password": password, **extra},
        {"Authorization": basic(client["client_id"], client["client_secret"])},
    )


def assert_oauth_error(resp: Any, status: int, error: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.body
    assert resp.headers["Content-Type"] == "application/json"
    doc = body(resp)
    assert doc["error"] == error
    assert set(doc) <= {"error", "error_description"}
    return dict(doc)


def verify_with_pyjwt(app_client: Any, token: str) -> dict[str, Any]:
    """PyJWT with the served JWKS: the key found by the token's kid, ES256 only."""
    jwks = body(app_client.http.get("/.well-known/jwks.json"))
    kid = jwt.get_unverified_header(token)["kid"]
    (jwk,) = [k for k in jwks["keys"] if k["kid"] == kid]
    key = jwt.PyJWK(jwk).key
    claims: dict[str, Any] = jwt.decode(
        token,
        key,
        algorithms=["ES256"],
        audience=AUDIENCE,
        issuer=ISSUER,
        options={"require": ["iss", "sub", "aud", "exp", "iat", "jti"]},
        leeway=10**10,  # the fake clock is far from the wall clock; time is checked separately
    )
    return claims


@pytest.fixture
def client(make_client: Any) -> dict[str, Any]:
    return dict(make_client())


@pytest.fixture
def password_client(make_client: Any) -> dict[str, Any]:
    return dict(make_client(grant_types=["password"]))


@pytest.fixture
def alice(make_user: Any) -> dict[str, Any]:
    return dict(make_user("Alice", PASSWORD))


def register_client(client_id: str, grant_types: tuple[str, ...], public: bool) -> str | None:
    secret = None if public else "tessera_cs_" + client_id
    services.client_store().create(
        Client(
            client_id=client_id,
            name="direct",
            grant_types=grant_types,
            scopes=("people:read",),
            public=public,
            secret_hash=hash_secret(secret) if secret else None,
            created_at=int(T0),
        )
    )
    return secret


# --- method and content type (§3.2) ---------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH", "HEAD"])
def test_methods_other_than_post_get_405_invalid_request_with_allow_post(app_client, method):
    r = app_client.http.request(method, TOKEN, headers={"Content-Type": FORM}, body=b"")
    assert r.status_code == 405
    assert r.headers["Allow"] == "POST"
    assert r.headers["Cache-Control"] == "no-store"
    if method != "HEAD":
        assert_oauth_error(r, 405, "invalid_request")


@pytest.mark.parametrize(
    ("content_type", "payload"),
    [
        pytest.param("application/json", b'{"grant_type":"client_credentials"}', id="json"),
        pytest.param(None, b"grant_type=client_credentials", id="no-content-type"),
        pytest.param(
            "multipart/form-data; boundary=XyZ",
            b'--XyZ\r\nContent-Disposition: form-data; name="grant_type"\r\n\r\n'
            b"client_credentials\r\n--XyZ--\r\n",
            id="multipart",
        ),
        pytest.param("text/plain", b"grant_type=client_credentials", id="text-plain"),
        pytest.param("application/octet-stream", b"\x00\x01", id="octet-stream"),
    ],
)
def test_body_that_is_not_form_encoded_is_invalid_request_json(
    app_client, client, content_type, payload
):
    headers = {"Authorization": basic(client["client_id"], client["client_secret"])}
    if content_type is not None:
        headers["Content-Type"] = content_type
    r = app_client.http.post(TOKEN, headers=headers, body=payload)
    assert_oauth_error(r, 400, "invalid_request")
    assert r.status_code != 415


def test_charset_parameter_on_the_content_type_is_accepted(app_client, client):
    r = form_post(
        app_client,
        TOKEN,
        {"grant_type": "client_credentials"},
        {
            "Content-Type": "application/x-www-form-urlencoded; charset=UTF-8",
            "Authorization": basic(client["client_id"], client["client_secret"]),
        },
    )
    assert r.status_code == 200, r.body


# --- parameters (§3.1, §3.2) ----------------------------------------------------------------


def test_repeated_grant_type_is_invalid_request(app_client, client):
    r = form_post(
        app_client,
        TOKEN,
        [("grant_type", "client_credentials"), ("grant_type", "client_credentials")],
        {"Authorization": basic(client["client_id"], client["client_secret"])},
    )
    assert_oauth_error(r, 400, "invalid_request")


def test_repeated_client_id_is_invalid_request(app_client, client):
    r = form_post(
        app_client,
        TOKEN,
        [
            ("grant_type", "client_credentials"),
            ("client_id", client["client_id"]),
            ("client_id", client["client_id"]),
            ("client_secret", client["client_secret"]),
        ],
    )
    assert_oauth_error(r, 400, "invalid_request")


def test_repeated_scope_is_invalid_request(app_client, client):
    r = form_post(
        app_client,
        TOKEN,
        [("grant_type", "client_credentials"), ("scope", "people:read"), ("scope", "x")],
        {"Authorization": basic(client["client_id"], client["client_secret"])},
    )
    assert_oauth_error(r, 400, "invalid_request")


def test_empty_scope_counts_as_absent(app_client, client):
    r = cc(app_client, client, scope="")
    assert r.status_code == 200, r.body
    assert body(r)["scope"] == "articles:read people:read"


def test_empty_grant_type_counts_as_missing(app_client, client):
    r = cc(app_client, client, grant_type="")
    doc = assert_oauth_error(r, 400, "invalid_request")
    assert doc["error"] != "unsupported_grant_type"


def test_unknown_parameters_are_ignored(app_client, client):
    r = cc(app_client, client, colour="blue", audience="https://evil.example", sub="admin")
    assert r.status_code == 200, r.body
    claims = verify_with_pyjwt(app_client, body(r)["access_token"])
    assert claims["sub"] == client["client_id"]
    assert claims["aud"] == AUDIENCE


def test_parameters_in_the_query_string_are_refused(app_client, client):
    r = app_client.http.post(
        f"{TOKEN}?grant_type=client_credentials",
        headers={
            "Content-Type": FORM,
            "Authorization": basic(client["client_id"], client["client_secret"]),
        },
        body=b"",
    )
    assert_oauth_error(r, 400, "invalid_request")


def test_missing_grant_type_is_invalid_request(app_client, client):
    r = form_post(
        app_client,
        TOKEN,
        {"scope": "people:read"},
        {"Authorization": basic(client["client_id"], client["client_secret"])},
    )
    assert_oauth_error(r, 400, "invalid_request")


@pytest.mark.parametrize(
    "grant_type",
    ["implicit", "urn:ietf:params:oauth:grant-type:jwt-bearer", "CLIENT_CREDENTIALS"],
)
def test_unknown_grant_type_is_unsupported_grant_type(app_client, client, grant_type):
    r = cc(app_client, client, grant_type=grant_type)
    assert_oauth_error(r, 400, "unsupported_grant_type")


# --- error responses (§5.2) -------------------------------------------------------------------


def test_errors_carry_no_store_and_no_cache_headers(app_client, client):
    r = cc(app_client, client, scope="not-registered")
    assert_oauth_error(r, 400, "invalid_scope")
    assert r.headers["Cache-Control"] == "no-store"
    assert r.headers["Pragma"] == "no-cache"


def test_error_description_never_echoes_input(app_client, client, password_client):
    marker = 'x"y\n\u2028é<zqx>\\'
    auth = {"Authorization": basic(client["client_id"], client["client_secret"])}
    responses = [
        form_post(app_client, TOKEN, {"grant_type": marker}, auth),
        form_post(app_client, TOKEN, {"grant_type": "client_credentials", "scope": marker}, auth),
        form_post(app_client, TOKEN, [("grant_type", "password"), (marker, "1"), (marker, "2")]),
        form_post(
            app_client,
            TOKEN,
            {"grant_type": "client_credentials", "client_id": marker, "client_secret": marker},
        ),
        form_post(
            app_client, TOKEN, {"grant_type": "client_credentials"}, {"Authorization": marker}
        ),
        login(app_client, password_client, marker, marker),
    ]
    for r in responses:
        assert 400 <= r.status_code < 500, r.body
        text = r.body.decode("utf-8")
        assert "zqx" not in text
        doc = json.loads(text)
        assert DESCRIPTION_CHARS.fullmatch(doc.get("error_description", ""))


# --- success (§5.1) ---------------------------------------------------------------------------


def test_success_body_has_token_type_expiry_and_scope(app_client, client):
    r = cc(app_client, client)
    assert r.status_code == 200, r.body
    doc = body(r)
    assert set(doc) == {"access_token", "token_type", "expires_in", "scope"}
    assert doc["token_type"] == "Bearer"
    assert doc["expires_in"] == 900
    assert doc["scope"] == "articles:read people:read"


def test_success_carries_no_store_and_no_cache_headers(app_client, client):
    r = cc(app_client, client)
    assert r.status_code == 200
    assert r.headers["Cache-Control"] == "no-store"
    assert r.headers["Pragma"] == "no-cache"
    assert r.headers["Content-Type"] == "application/json"


# --- client_credentials (§4.4) ----------------------------------------------------------------


def test_client_credentials_subject_is_the_client_id(app_client, client):
    claims = verify_with_pyjwt(app_client, body(cc(app_client, client))["access_token"])
    assert claims["sub"] == client["client_id"]
    assert claims["client_id"] == client["client_id"]


def test_client_credentials_issues_no_refresh_token(app_client, make_client):
    c = make_client(grant_types=["client_credentials", "refresh_token"])
    r = cc(app_client, c)
    assert r.status_code == 200, r.body
    assert "refresh_token" not in body(r)


def test_client_credentials_refused_to_a_public_client(app_client):
    register_client("public-cc", ("client_credentials",), public=True)
    r = form_post(app_client, TOKEN, {"grant_type": "client_credentials", "client_id": "public-cc"})
    assert_oauth_error(r, 400, "unauthorized_client")


def test_client_not_registered_for_client_credentials_is_unauthorized_client(
    app_client, password_client
):
    r = cc(app_client, password_client)
    assert_oauth_error(r, 400, "unauthorized_client")


def test_default_scope_is_every_registered_scope(app_client, client):
    claims = verify_with_pyjwt(app_client, body(cc(app_client, client))["access_token"])
    assert claims["scope"] == "articles:read people:read"


def test_narrower_scope_is_granted(app_client, client):
    r = cc(app_client, client, scope="people:read")
    assert body(r)["scope"] == "people:read"
    assert verify_with_pyjwt(app_client, body(r)["access_token"])["scope"] == "people:read"


def test_scope_wider_than_the_registration_is_invalid_scope(app_client, client):
    r = cc(app_client, client, scope="people:read people:write")
    assert_oauth_error(r, 400, "invalid_scope")


@pytest.mark.parametrize(
    "scope",
    [
        pytest.param("people:read  articles:read", id="double-space"),
        pytest.param(" people:read", id="leading-space"),
        pytest.param("people:read ", id="trailing-space"),
        pytest.param('people:"read"', id="quote"),
        pytest.param("people\\read", id="backslash"),
        pytest.param("people:read\tarticles:read", id="tab"),
        pytest.param("péople:read", id="non-ascii"),
    ],
)
def test_malformed_scope_is_invalid_scope(app_client, client, scope):
    assert_oauth_error(cc(app_client, client, scope=scope), 400, "invalid_scope")


# --- password grant (§4.3) --------------------------------------------------------------------


def test_password_grant_issues_a_token_whose_subject_is_the_user_id(
    app_client, password_client, alice
):
    r = login(app_client, password_client, "alice", PASSWORD)
    assert r.status_code == 200, r.body
    claims = verify_with_pyjwt(app_client, body(r)["access_token"])
    assert claims["sub"] == alice["user_id"]
    assert claims["sub"] != "alice"
    assert claims["client_id"] == password_client["client_id"]


def test_password_grant_refused_to_a_client_not_registered_for_it(app_client, client):
    # No user needed: the grant is refused before any password is looked at.
    r = login(app_client, client, "alice", PASSWORD)
    assert_oauth_error(r, 400, "unauthorized_client")


def test_password_grant_refused_to_a_public_client(app_client):
    register_client("public-pw", ("password",), public=True)
    r = form_post(
        app_client,
        TOKEN,
        {"grant_type": "password", "client_id": "public-pw", "username": "a", "password": "b"},
    )
    assert_oauth_error(r, 400, "unauthorized_client")


def test_password_grant_without_password_is_invalid_request(app_client, password_client):
    r = form_post(
        app_client,
        TOKEN,
        {"grant_type": "password", "username": "alice"},
        {"Authorization": basic(password_client["client_id"], password_client["client_secret"])},
    )
    assert_oauth_error(r, 400, "invalid_request")


def test_unknown_username_and_wrong_password_get_identical_answers(
    app_client, password_client, alice
):
    wrong_password = login(app_client, password_client, "alice", "not the password")
    unknown_user = login(app_client, password_client, "mallory", "not the password")
    assert_oauth_error(wrong_password, 400, "invalid_grant")
    assert unknown_user.status_code == wrong_password.status_code
    assert unknown_user.body == wrong_password.body
    assert unknown_user.headers == wrong_password.headers


def test_disabled_user_is_refused_like_a_wrong_password(app_client, password_client, alice):
    wrong_password = login(app_client, password_client, "alice", "not the password")
    services.user_store().set_disabled("alice", True)
    disabled = login(app_client, password_client, "alice", PASSWORD)
    assert disabled.status_code == wrong_password.status_code == 400
    assert disabled.body == wrong_password.body


def test_invalid_username_is_refused_like_a_wrong_password(app_client, password_client, alice):
    wrong_password = login(app_client, password_client, "alice", "not the password")
    invalid = login(app_client, password_client, " alice\x00", PASSWORD)
    assert invalid.status_code == wrong_password.status_code
    assert invalid.body == wrong_password.body


FULLWIDTH_ALICE = "\uff21\uff4c\uff49\uff43\uff45"  # NFKC turns it into "Alice"


@pytest.mark.parametrize("spelling", ["ALICE", FULLWIDTH_ALICE], ids=["upper-case", "fullwidth"])
def test_username_is_normalised_before_lookup(app_client, password_client, alice, spelling):
    r = login(app_client, password_client, spelling, PASSWORD)
    assert r.status_code == 200, r.body
    assert verify_with_pyjwt(app_client, body(r)["access_token"])["sub"] == alice["user_id"]


def test_weaker_stored_hash_is_replaced_after_a_successful_login(app_client, password_client):
    weak = Argon2id(
        salt=b"0123456789abcdef", length=32, iterations=1, lanes=1, memory_cost=8 * 1024
    ).derive_phc_encoded(PASSWORD.encode())
    assert passwords.needs_rehash(weak)
    store = services.user_store()
    store.create(User(username="bob", user_id="u_bob", password_hash=weak, created_at=int(T0)))
    r = login(app_client, password_client, "bob", PASSWORD)
    assert r.status_code == 200, r.body
    stored = store.get("bob")
    assert stored is not None
    assert stored.password_hash != weak
    assert not passwords.needs_rehash(stored.password_hash)
    assert passwords.verify_password(PASSWORD, stored.password_hash)


def test_current_hash_is_not_rewritten_on_login(app_client, password_client, alice):
    before = services.user_store().get("alice")
    assert before is not None
    assert login(app_client, password_client, "alice", PASSWORD).status_code == 200
    after = services.user_store().get("alice")
    assert after is not None
    assert after.password_hash == before.password_hash


def test_password_grant_scope_follows_the_client_registration(app_client, password_client, alice):
    narrow = login(app_client, password_client, "alice", PASSWORD, scope="people:read")
    assert body(narrow)["scope"] == "people:read"
    wide = login(app_client, password_client, "alice", PASSWORD, scope="admin")
    assert_oauth_error(wide, 400, "invalid_scope")


# --- the access token (RFC 9068) --------------------------------------------------------------


def test_access_token_header_is_es256_at_jwt_with_a_kid_from_the_jwks(app_client, client):
    token = body(cc(app_client, client))["access_token"]
    header = jwt.get_unverified_header(token)
    assert header["typ"] == "at+jwt"
    assert header["alg"] == "ES256"
    kids = [k["kid"] for k in body(app_client.http.get("/.well-known/jwks.json"))["keys"]]
    assert header["kid"] in kids


def test_access_token_claims_verify_with_pyjwt(app_client, client):
    token = body(cc(app_client, client, scope="people:read"))["access_token"]
    claims = verify_with_pyjwt(app_client, token)
    issuer = body(app_client.http.get("/.well-known/oauth-authorization-server"))["issuer"]
    assert claims["iss"] == issuer == ISSUER
    assert claims["aud"] == AUDIENCE
    assert claims["sub"] == client["client_id"]
    assert claims["client_id"] == client["client_id"]
    assert claims["scope"] == "people:read"
    assert claims["iat"] == int(T0)
    assert claims["exp"] - claims["iat"] == 900
    assert isinstance(claims["jti"], str)
    assert len(claims["jti"]) >= 22  # >= 128 random bits


def test_access_token_jti_is_unique(app_client, client):
    jtis = {
        verify_with_pyjwt(app_client, body(cc(app_client, client))["access_token"])["jti"]
        for _ in range(5)
    }
    assert len(jtis) == 5


def test_access_token_lifetime_follows_configuration(app_client, client, monkeypatch):
    monkeypatch.setenv("TESSERA_ACCESS_TOKEN_TTL", "300")
    services.reset()
    from chalicelib.core.config import settings

    assert settings().access_token_ttl == 300  # read outside the test client's env overlay
    r = cc(app_client, client)
    assert body(r)["expires_in"] == 300
    claims = verify_with_pyjwt(app_client, body(r)["access_token"])
    assert claims["exp"] - claims["iat"] == 300


def test_access_token_is_rejected_by_pyjwt_for_another_audience(app_client, client):
    token = body(cc(app_client, client))["access_token"]
    jwks = body(app_client.http.get("/.well-known/jwks.json"))
    key = jwt.PyJWK(jwks["keys"][0]).key
    with pytest.raises(jwt.InvalidTokenError):
        jwt.decode(token, key, algorithms=["ES256"], audience="https://other.example")


# --- faults: never a traceback ----------------------------------------------------------------


def put_signing_keys(aws: Any, value: str) -> None:
    aws.client("secretsmanager").put_secret_value(
        SecretId="tessera/test/signing-keys", SecretString=value
    )


def assert_unavailable(resp: Any) -> None:
    assert_oauth_error(resp, 503, "temporarily_unavailable")
    assert int(resp.headers["Retry-After"]) > 0
    assert "Traceback" not in resp.body.decode()


def test_unreadable_key_set_is_503_with_retry_after(app_client, client, aws):
    put_signing_keys(aws, "not json")
    assert_unavailable(cc(app_client, client))


def test_key_set_without_a_current_key_is_503(app_client, client, aws):
    put_signing_keys(aws, json.dumps({"keys": []}))
    assert_unavailable(cc(app_client, client))


def test_malformed_private_key_in_the_key_set_is_503(app_client, client, aws):
    from chalicelib.tokens.key_objects import generate_private_jwk

    jwk = generate_private_jwk("broken", "ES256")
    jwk["d"] = jwk["x"]  # a scalar that does not match the public point
    put_signing_keys(aws, json.dumps({"keys": [{"state": "current", "created": 1, "jwk": jwk}]}))
    assert_unavailable(cc(app_client, client))


@pytest.mark.parametrize(
    ("headers", "payload"),
    [
        pytest.param({"Content-Type": FORM}, bytes(range(256)), id="binary-body"),
        pytest.param({"Content-Type": FORM}, b"grant_type=\xc3\x28", id="invalid-utf8"),
        pytest.param({"Content-Type": FORM}, b"a=" + b"x" * (16 * 1024 + 1), id="over-16KiB"),
        pytest.param({"Content-Type": FORM}, b"grant_type=%", id="bare-percent"),
        pytest.param({"Content-Type": FORM}, b"grant_type=%zzz", id="bad-escape"),
        pytest.param({"Content-Type": FORM}, b"&&&==&=&", id="only-separators"),
        pytest.param(
            {"Content-Type": FORM, "Authorization": "Basic \x00\xff"},
            b"grant_type=client_credentials",
            id="basic-control-chars",
        ),
        pytest.param(
            {"Content-Type": FORM, "Authorization": "Basic " + "A" * 20000},
            b"grant_type=client_credentials",
            id="basic-huge",
        ),
        pytest.param(
            {"Content-Type": FORM, "Authorization": "Basic Og=="},  # ":"
            b"grant_type=client_credentials",
            id="basic-empty-id",
        ),
        pytest.param({"Content-Type": "application/x-www-form-urlencoded;;;"}, b"a", id="ct-odd"),
        pytest.param({"Content-Type": "\x00"}, b"grant_type=password", id="ct-nul"),
    ],
)
def test_odd_input_gets_a_4xx_oauth_error(app_client, headers, payload):
    r = app_client.http.post(TOKEN, headers=headers, body=payload)
    assert 400 <= r.status_code < 500, r.body
    assert r.headers["Content-Type"] == "application/json"
    assert "error" in body(r)
    assert r.headers["Cache-Control"] == "no-store"
