"""Issue 2's promise, end to end: from ``make local``'s stack, the admin command and a real OAuth
client library, to tokens that verify against the served JWKS (RFC 9068 claims, RFC 7517 keys).

The tokens are checked the way a resource server would, from the JWKS URL: with PyJWT's
``PyJWKClient`` (the library Tessera itself signs with) and with two implementations independent of
it, joserfc and Authlib's JOSE module.
"""

from __future__ import annotations

import warnings
from typing import Any

import jwt
import pytest
import requests
from oauthlib.oauth2 import BackendApplicationClient, LegacyApplicationClient
from requests.auth import HTTPBasicAuth
from requests_oauthlib import OAuth2Session

from tests.e2e.conftest import LocalStack

pytestmark = pytest.mark.e2e

PASSWORD = "correct horse battery staple"
SCOPE = "people:read articles:read"
RFC9068_CLAIMS = ["iss", "sub", "aud", "exp", "iat", "jti", "client_id", "scope"]


@pytest.fixture(autouse=True)
def _plain_http_to_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    # oauthlib refuses http:// URLs; the local stack serves plain HTTP on 127.0.0.1 only.
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")


@pytest.fixture(scope="module")
def registered(local_stack: LocalStack) -> dict[str, Any]:
    """A confidential client for both grants and a user, created with the admin command."""
    client = local_stack.admin_json(
        "client",
        "create",
        "--name",
        local_stack.unique("foundation"),
        "--grant-types",
        "password,client_credentials",
        "--scope",
        SCOPE,
    )
    username = local_stack.unique("alice")
    user = local_stack.admin_json("user", "create", "--username", username, input=PASSWORD + "\n")
    return {"client": client, "user": user, "username": username}


def _verified_claims(stack: LocalStack, token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    signing_key = jwt.PyJWKClient(stack.jwks_url).get_signing_key_from_jwt(token)
    claims = jwt.decode(
        token,
        signing_key.key,
        algorithms=["ES256"],
        issuer=stack.base_url,
        audience=stack.audience,
        options={"require": RFC9068_CLAIMS},
    )
    header = jwt.get_unverified_header(token)
    assert header["kid"] == signing_key.key_id
    return header, claims


def _assert_rfc9068(
    header: dict[str, Any], claims: dict[str, Any], stack: LocalStack, client_id: str
) -> None:
    assert header["typ"] == "at+jwt"
    assert header["alg"] == "ES256"
    assert claims["iss"] == stack.base_url
    assert stack.audience in ([claims["aud"]] if isinstance(claims["aud"], str) else claims["aud"])
    assert claims["client_id"] == client_id
    assert set(claims["scope"].split()) == set(SCOPE.split())
    assert isinstance(claims["iat"], int)
    assert isinstance(claims["exp"], int)
    assert claims["exp"] > claims["iat"]
    assert isinstance(claims["jti"], str)
    assert len(claims["jti"]) >= 16


def test_client_credentials_token_from_oauth2session_verifies_against_jwks(
    local_stack: LocalStack, registered: dict[str, Any]
) -> None:
    client = registered["client"]
    session = OAuth2Session(client=BackendApplicationClient(client_id=client["client_id"]))
    token = session.fetch_token(
        token_url=local_stack.token_url,
        auth=HTTPBasicAuth(client["client_id"], client["client_secret"]),
    )

    assert token["token_type"] == "Bearer"
    assert "refresh_token" not in token
    header, claims = _verified_claims(local_stack, token["access_token"])
    _assert_rfc9068(header, claims, local_stack, client["client_id"])
    assert claims["sub"] == client["client_id"]
    assert claims["exp"] - claims["iat"] == token["expires_in"]


def test_password_token_from_oauth2session_verifies_against_jwks(
    local_stack: LocalStack, registered: dict[str, Any]
) -> None:
    client = registered["client"]
    session = OAuth2Session(client=LegacyApplicationClient(client_id=client["client_id"]))
    token = session.fetch_token(
        token_url=local_stack.token_url,
        username=registered["username"],
        password=PASSWORD,
        auth=HTTPBasicAuth(client["client_id"], client["client_secret"]),
    )

    header, claims = _verified_claims(local_stack, token["access_token"])
    _assert_rfc9068(header, claims, local_stack, client["client_id"])
    assert claims["sub"] == registered["user"]["user_id"]


def test_token_verifies_from_the_jwks_url_with_joserfc_and_authlib(
    local_stack: LocalStack, registered: dict[str, Any]
) -> None:
    client = registered["client"]
    session = OAuth2Session(client=BackendApplicationClient(client_id=client["client_id"]))
    token = session.fetch_token(
        token_url=local_stack.token_url,
        auth=HTTPBasicAuth(client["client_id"], client["client_secret"]),
    )["access_token"]
    jwks = requests.get(local_stack.jwks_url, timeout=10).json()

    joserfc_jwt = pytest.importorskip("joserfc.jwt")
    joserfc_jwk = pytest.importorskip("joserfc.jwk")
    decoded = joserfc_jwt.decode(token, joserfc_jwk.KeySet.import_key_set(jwks), ["ES256"])
    assert decoded.header["typ"] == "at+jwt"
    joserfc_jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": local_stack.base_url},
        aud={"essential": True, "value": local_stack.audience},
        exp={"essential": True},
    ).validate(decoded.claims)
    assert decoded.claims["client_id"] == client["client_id"]

    from authlib.deprecate import AuthlibDeprecationWarning

    with warnings.catch_warnings():
        # authlib.jose says to use joserfc: both are checked here.
        warnings.simplefilter("ignore", AuthlibDeprecationWarning)
        from authlib.jose import JsonWebKey, JsonWebToken

        claims = JsonWebToken(["ES256"]).decode(
            token,
            JsonWebKey.import_key_set(jwks),
            claims_options={
                "iss": {"essential": True, "value": local_stack.base_url},
                "aud": {"essential": True, "value": local_stack.audience},
            },
        )
        claims.validate()
    assert claims["sub"] == client["client_id"]


def test_each_token_has_its_own_jti(local_stack: LocalStack, registered: dict[str, Any]) -> None:
    client = registered["client"]
    session = OAuth2Session(client=BackendApplicationClient(client_id=client["client_id"]))
    auth = HTTPBasicAuth(client["client_id"], client["client_secret"])
    tokens = [session.fetch_token(token_url=local_stack.token_url, auth=auth) for _ in range(2)]

    jtis = {_verified_claims(local_stack, t["access_token"])[1]["jti"] for t in tokens}
    assert len(jtis) == 2


def test_metadata_names_the_served_issuer_and_endpoints(local_stack: LocalStack) -> None:
    meta = requests.get(local_stack.metadata_url, timeout=10).json()

    assert meta["issuer"] == local_stack.base_url
    assert meta["token_endpoint"] == local_stack.token_url
    assert meta["jwks_uri"] == local_stack.jwks_url


def test_jwks_serves_public_keys_only(local_stack: LocalStack) -> None:
    keys = requests.get(local_stack.jwks_url, timeout=10).json()["keys"]

    assert keys
    for key in keys:
        assert {"kid", "alg", "use"} <= key.keys()
        assert "d" not in key  # the private part of an EC or RSA key
