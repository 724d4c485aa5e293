"""A stage that signs RS256 (``TESSERA_SIGNING_ALG=RS256``), end to end: what an HTTP API's native
JWT authorizer needs (AWS's page lists RSA algorithms only) and what any resource server does with
the JWKS URL, here PyJWT's ``PyJWKClient``; Tessera's own authorizer accepts the same tokens.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
import requests

from tests.e2e.conftest import LocalStack, running_stack

pytestmark = pytest.mark.e2e

TIMEOUT = 30


@pytest.fixture(scope="module")
def rs256_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    with running_stack(tmp_path_factory.mktemp("stack-rs256"), TESSERA_SIGNING_ALG="RS256") as s:
        yield s


@pytest.fixture(scope="module")
def token(rs256_stack: LocalStack) -> str:
    client: dict[str, Any] = rs256_stack.admin_json(
        "client", "create", "--name", rs256_stack.unique("rs256"),
        "--grant-types", "client_credentials", "--scope", "people:read",
    )  # fmt: skip
    r = requests.post(
        rs256_stack.token_url,
        data={"grant_type": "client_credentials"},
        auth=(client["client_id"], client["client_secret"]),
        timeout=TIMEOUT,
    )
    assert r.status_code == 200, r.text
    found: str = r.json()["access_token"]
    return found


def test_jwks_publishes_rsa_keys_of_2048_bits_or_more_for_rs256(rs256_stack):
    keys = requests.get(rs256_stack.jwks_url, timeout=TIMEOUT).json()["keys"]
    assert len(keys) == 2  # current and next
    for key in keys:
        assert (key["kty"], key["alg"], key["use"]) == ("RSA", "RS256", "sig")
        modulus = base64.urlsafe_b64decode(key["n"] + "=" * (-len(key["n"]) % 4))
        assert len(modulus) * 8 >= 2048
        assert not {"d", "p", "q", "dp", "dq", "qi"} & set(key)


def test_rs256_token_verifies_with_pyjwkclient_from_the_jwks_url(rs256_stack, token):
    assert jwt.get_unverified_header(token)["alg"] == "RS256"
    key = jwt.PyJWKClient(rs256_stack.jwks_url).get_signing_key_from_jwt(token)
    claims = jwt.decode(
        token,
        key.key,
        algorithms=["RS256"],
        issuer=rs256_stack.base_url,
        audience=rs256_stack.audience,
    )
    assert claims["scope"] == "people:read"


def test_rs256_token_passes_tesseras_own_authorizer(rs256_stack, token):
    r = requests.get(
        rs256_stack.base_url + "/people",
        headers={"Authorization": f"Bearer {token}"},
        timeout=TIMEOUT,
    )
    assert r.status_code == 200, r.text
