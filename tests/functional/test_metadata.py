"""Authorization server metadata (RFC 8414 §2, §3) and the JWKS document (RFC 7517 §5)."""

from __future__ import annotations

from typing import Any

import jwt

from chalicelib.web import services
from tests.functional.authorizer_support import reconfigure
from tests.functional.conftest import ISSUER, basic, body, form_post

METADATA = "/.well-known/oauth-authorization-server"
JWKS = "/.well-known/jwks.json"
PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}


def metadata(app_client: Any) -> dict[str, Any]:
    r = app_client.http.get(METADATA)
    assert r.status_code == 200, r.body
    assert r.headers["Content-Type"] == "application/json"
    doc: dict[str, Any] = body(r)
    return doc


def jwks(app_client: Any) -> Any:
    r = app_client.http.get(JWKS)
    assert r.status_code == 200, r.body
    return r


# --- metadata ----------------------------------------------------------------------------------


def test_issuer_is_identical_to_the_iss_of_issued_tokens(app_client, make_client):
    c = make_client()
    r = form_post(
        app_client,
        "/oauth2/token",
        {"grant_type": "client_credentials"},
        {"Authorization": basic(c["client_id"], c["client_secret"])},
    )
    token = body(r)["access_token"]
    iss = jwt.decode(token, algorithms=["ES256"], options={"verify_signature": False})["iss"]
    assert metadata(app_client)["issuer"] == iss == ISSUER


def test_endpoints_and_jwks_uri_are_absolute_urls_under_the_issuer(app_client):
    doc = metadata(app_client)
    assert doc["token_endpoint"] == ISSUER + "/oauth2/token"
    assert doc["jwks_uri"] == ISSUER + "/.well-known/jwks.json"


def test_token_endpoint_auth_methods_are_listed(app_client):
    assert metadata(app_client)["token_endpoint_auth_methods_supported"] == [
        "client_secret_basic",
        "client_secret_post",
        "none",
    ]


def test_client_credentials_is_advertised(app_client):
    assert "client_credentials" in metadata(app_client)["grant_types_supported"]


def test_metadata_is_the_same_whichever_clients_are_registered_or_deleted(
    app_client, make_client, clock
):
    # RFC 8414 §2: metadata states what the server supports, the same for every reader.
    before = metadata(app_client)
    password = make_client(grant_types=["password", "refresh_token"], scopes=["invoices:read"])
    make_client(grant_types=["client_credentials"], scopes=["people:read"])
    assert metadata(app_client) == before
    clock.advance(61)  # past TESSERA_CLIENT_CACHE_TTL: nothing cached can explain the answer
    assert metadata(app_client) == before
    services.client_store().delete(password["client_id"])
    clock.advance(61)
    assert metadata(app_client) == before


def test_every_grant_the_stage_supports_is_advertised_before_any_client_exists(app_client):
    # The test stage has a pepper (refresh tokens, codes) and the password grant on.
    assert metadata(app_client)["grant_types_supported"] == [
        "client_credentials",
        "password",
        "refresh_token",
        "authorization_code",
    ]


def test_refresh_token_and_code_flow_are_not_advertised_where_no_pepper_is_configured(
    app_client, monkeypatch
):
    reconfigure(monkeypatch, TESSERA_PEPPER_SECRET="")
    doc = metadata(app_client)
    assert doc["grant_types_supported"] == ["client_credentials", "password"]
    assert "authorization_endpoint" not in doc


def test_password_grant_is_neither_advertised_nor_accepted_where_the_stage_disables_it(
    app_client, make_client, make_user, monkeypatch
):
    c = make_client(grant_types=["password"])
    make_user("alice", "correct horse battery staple")
    reconfigure(monkeypatch, TESSERA_PASSWORD_GRANT="false")
    assert "password" not in metadata(app_client)["grant_types_supported"]
    r = form_post(
        app_client,
        "/oauth2/token",
        {
            "grant_type": "password",
            "username": "alice",
            "password": "correct horse battery staple",
        },
        {"Authorization": basic(c["client_id"], c["client_secret"])},
    )
    assert r.status_code == 400
    assert body(r)["error"] == "unsupported_grant_type"


def test_grant_types_are_only_ones_the_token_endpoint_implements(app_client):
    advertised = set(metadata(app_client)["grant_types_supported"])
    assert advertised <= {"client_credentials", "password", "refresh_token", "authorization_code"}
    assert "implicit" not in advertised


def test_scopes_supported_are_openids_since_each_attached_api_defines_its_own(
    app_client, make_client
):
    # API scopes are in the rules each API registers (admin authorizer rules), which change as
    # teams attach: listing them would make the document differ from moment to moment. The
    # OpenID Connect scopes are the server's own (chalicelib.oauth.discovery).
    before = metadata(app_client)
    make_client(scopes=["invoices:read"])
    assert before["scopes_supported"] == ["email", "openid", "profile"]
    assert metadata(app_client) == before


# --- JWKS --------------------------------------------------------------------------------------


def test_jwks_holds_public_keys_only(app_client):
    keys = body(jwks(app_client))["keys"]
    assert keys
    for key in keys:
        assert not PRIVATE_MEMBERS & set(key), sorted(key)


def test_every_jwks_key_has_its_own_kid_alg_and_use(app_client):
    keys = body(jwks(app_client))["keys"]
    kids = [k["kid"] for k in keys]
    assert len(kids) == len(set(kids))
    for key in keys:
        assert key["kid"]
        assert key["alg"] in {"ES256", "RS256"}
        assert key["use"] == "sig"
        assert key["kty"] == {"ES256": "EC", "RS256": "RSA"}[key["alg"]]


def test_jwks_keys_load_in_pyjwt(app_client):
    keyset = jwt.PyJWKSet.from_dict(body(jwks(app_client)))
    assert {k.algorithm_name for k in keyset.keys} <= {"ES256", "RS256"}


def test_jwks_publishes_the_signing_key_and_the_next_one(app_client, make_client):
    c = make_client()
    r = form_post(
        app_client,
        "/oauth2/token",
        {"grant_type": "client_credentials"},
        {"Authorization": basic(c["client_id"], c["client_secret"])},
    )
    kid = jwt.get_unverified_header(body(r)["access_token"])["kid"]
    kids = [k["kid"] for k in body(jwks(app_client))["keys"]]
    assert kid in kids
    assert len(kids) >= 2  # the next key is published before it signs


def test_jwks_is_cacheable_for_a_bounded_time(app_client):
    r = jwks(app_client)
    assert r.headers["Cache-Control"] == "public, max-age=300"
    assert r.headers["Content-Type"] == "application/json"


def test_jwks_with_an_unusable_public_key_is_503_not_500(app_client, aws):
    import json as _json

    sm = aws.client("secretsmanager")
    secret_id = "tessera/test/public-keys"
    doc = _json.loads(sm.get_secret_value(SecretId=secret_id)["SecretString"])
    doc["keys"][0]["jwk"]["d"] = doc["keys"][0]["jwk"]["x"]  # private material: refused
    sm.put_secret_value(SecretId=secret_id, SecretString=_json.dumps(doc))
    resp = app_client.http.get("/.well-known/jwks.json")
    assert resp.status_code == 503
    assert _json.loads(resp.body)["error"] == "temporarily_unavailable"
    assert resp.headers["Retry-After"]
