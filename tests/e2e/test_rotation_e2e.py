"""Issue 5 end to end: ``keys rotate`` through the admin command against the local stack changes the
``kid`` of newly issued tokens, while tokens issued before keep verifying against the served JWKS
(checked from the JWKS URL with PyJWT's ``PyJWKClient``, as a resource server would) and keep
passing the authorizer.

The local stage re-reads keys every 5 s (``TESSERA_KEY_CACHE_TTL``) and its publish delay is 15 s
(cache 5 s + stale bound 10 s), so ``keys rotate --wait`` waits at most that long for the seeded
``next`` key.
"""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlencode

import jwt
import pytest

from tests.e2e.conftest import LocalStack

pytestmark = pytest.mark.e2e

PICKUP_LIMIT_S = 30.0  # the token API's key cache is 5 s locally; generous for a busy machine


def _token(stack: LocalStack, client: dict[str, Any]) -> str:
    basic = base64.b64encode(f"{client['client_id']}:{client['client_secret']}".encode()).decode()
    request = urllib.request.Request(  # noqa: S310 - the local stack on 127.0.0.1
        stack.token_url,
        data=urlencode({"grant_type": "client_credentials"}).encode(),
        headers={
            "Authorization": "Basic " + basic,
            "Content-Type": "application/x-www-form-urlencoded",
        },
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as resp:  # noqa: S310
        token: str = json.loads(resp.read())["access_token"]
    return token


def _kid(token: str) -> str:
    return str(jwt.get_unverified_header(token)["kid"])


def _verifies_against_jwks(stack: LocalStack, token: str) -> bool:
    key = jwt.PyJWKClient(stack.jwks_url, cache_jwk_set=False).get_signing_key_from_jwt(token)
    jwt.decode(token, key.key, algorithms=["ES256"], issuer=stack.base_url, audience=stack.audience)
    return True


def _people_status(stack: LocalStack, token: str) -> int:
    request = urllib.request.Request(  # noqa: S310
        stack.base_url + "/people", headers={"Authorization": "Bearer " + token}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:  # noqa: S310
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def test_keys_rotate_changes_the_kid_while_old_tokens_keep_working(local_stack: LocalStack) -> None:
    client = local_stack.admin_json(
        "client",
        "create",
        "--name",
        local_stack.unique("rotation"),
        "--grant-types",
        "client_credentials",
        "--scope",
        "people:read",
    )
    old = _token(local_stack, client)
    listed = local_stack.admin_json("keys", "list")
    assert {r["id"]: r["state"] for r in listed}[_kid(old)] == "current"

    rotated = local_stack.admin_json("keys", "rotate", "--wait")
    assert rotated["promoted"] == rotated["current"]
    assert rotated["current"] != _kid(old)

    deadline = time.monotonic() + PICKUP_LIMIT_S
    new = _token(local_stack, client)
    while _kid(new) == _kid(old):
        assert time.monotonic() < deadline, "the token API never picked up the new key"
        time.sleep(0.5)
        new = _token(local_stack, client)
    assert _kid(new) == rotated["current"]

    states = {r["id"]: r["state"] for r in local_stack.admin_json("keys", "list")}
    assert states[_kid(old)] == "previous"
    for token in (old, new):
        assert _verifies_against_jwks(local_stack, token)
        assert _people_status(local_stack, token) == 200


def test_revoking_after_a_rotation_removes_the_key_for_every_reader(
    local_stack: LocalStack,
) -> None:
    """A revocation writes a plain new current version after finishSecret moved the label: the
    key is gone from the set every reader sees, and its tokens stop working; the others do not."""
    client = local_stack.admin_json(
        "client",
        "create",
        "--name",
        local_stack.unique("revocation"),
        "--grant-types",
        "client_credentials",
        "--scope",
        "people:read",
    )
    old = _token(local_stack, client)
    rotated = local_stack.admin_json("keys", "rotate", "--wait")
    assert rotated["current"] != _kid(old)
    deadline = time.monotonic() + PICKUP_LIMIT_S
    new = _token(local_stack, client)
    while _kid(new) == _kid(old):
        assert time.monotonic() < deadline, "the token API never picked up the new key"
        time.sleep(0.5)
        new = _token(local_stack, client)

    revoked = local_stack.admin_json("keys", "revoke", _kid(old))
    assert revoked == {"revoked": _kid(old), "current": rotated["current"]}
    assert _kid(old) not in {r["id"] for r in local_stack.admin_json("keys", "list")}
    deadline = time.monotonic() + PICKUP_LIMIT_S
    while _people_status(local_stack, old) == 200:
        assert time.monotonic() < deadline, "the authorizer never dropped the revoked key"
        time.sleep(0.5)
    assert _people_status(local_stack, old) == 401
    assert _people_status(local_stack, new) == 200
    assert _verifies_against_jwks(local_stack, new)
