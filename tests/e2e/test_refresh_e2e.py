"""Issue 3 end to end against the local stack: a real client library (Authlib's OAuth2Session)
refreshes, introspects and revokes; 20 parallel refreshes of one token leave exactly one live
successor, with the retry window on (the default stack) and off (a second stack, window 0).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest
import requests
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.requests_client import OAuth2Session

from tests.e2e.conftest import LocalStack, running_stack

pytestmark = pytest.mark.e2e

PASSWORD = "correct horse battery staple"
SCOPE = "people:read articles:read"
PARALLEL = 20


def _register(stack: LocalStack) -> dict[str, Any]:
    client = stack.admin_json(
        "client", "create", "--name", stack.unique("refresh"),
        "--grant-types", "password,refresh_token", "--scope", SCOPE,
    )  # fmt: skip
    resource_server = stack.admin_json(
        "client", "create", "--name", stack.unique("rs"),
        "--grant-types", "client_credentials", "--introspect",
    )  # fmt: skip
    username = stack.unique("alice")
    stack.admin_json("user", "create", "--username", username, input=PASSWORD + "\n")
    return {"client": client, "rs": resource_server, "username": username}


def _session(stack: LocalStack, client: dict[str, Any]) -> OAuth2Session:
    return OAuth2Session(
        client["client_id"],
        client["client_secret"],
        token_endpoint_auth_method="client_secret_basic",
        revocation_endpoint_auth_method="client_secret_basic",
    )


def _login(stack: LocalStack, reg: dict[str, Any]) -> dict[str, Any]:
    token: dict[str, Any] = _session(stack, reg["client"]).fetch_token(
        stack.token_url, grant_type="password", username=reg["username"], password=PASSWORD
    )
    return token


@pytest.fixture(scope="module")
def registered(local_stack: LocalStack) -> dict[str, Any]:
    return _register(local_stack)


# --- a real client library ------------------------------------------------------------------


def test_authlib_refreshes_introspects_and_revokes(local_stack, registered):
    stack = local_stack
    session = _session(stack, registered["client"])
    first = _login(stack, registered)
    assert first["refresh_token"].startswith("tessera_rt_")

    second = session.refresh_token(stack.token_url, refresh_token=first["refresh_token"])
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]

    rs = _session(stack, registered["rs"])
    seen = rs.introspect_token(stack.base_url + "/oauth2/introspect", token=second["access_token"])
    assert seen.status_code == 200
    assert seen.json()["active"] is True
    assert seen.json()["client_id"] == registered["client"]["client_id"]

    done = session.revoke_token(
        stack.base_url + "/oauth2/revoke",
        token=second["refresh_token"],
        token_type_hint="refresh_token",
    )
    assert done.status_code == 200

    with pytest.raises(OAuthError) as refused:
        session.refresh_token(stack.token_url, refresh_token=second["refresh_token"])
    assert refused.value.error == "invalid_grant"
    gone = rs.introspect_token(stack.base_url + "/oauth2/introspect", token=second["access_token"])
    assert gone.json() == {"active": False}


def test_authlib_revoking_an_access_token_deactivates_it(local_stack, registered):
    stack = local_stack
    token = _login(stack, registered)
    session = _session(stack, registered["client"])
    done = session.revoke_token(stack.base_url + "/oauth2/revoke", token=token["access_token"])
    assert done.status_code == 200
    seen = session.introspect_token(
        stack.base_url + "/oauth2/introspect", token=token["access_token"]
    )
    assert seen.json() == {"active": False}


# --- concurrency ----------------------------------------------------------------------------


def _parallel_refreshes(stack: LocalStack, client: dict[str, Any], token: str) -> list[Any]:
    barrier = threading.Barrier(PARALLEL)

    def one(_: int) -> requests.Response:
        barrier.wait()
        return requests.post(
            stack.token_url,
            data={"grant_type": "refresh_token", "refresh_token": token},
            auth=(client["client_id"], client["client_secret"]),
            timeout=60,
        )

    with ThreadPoolExecutor(PARALLEL) as pool:
        return list(pool.map(one, range(PARALLEL)))


def _family_states(stack: LocalStack, family_id: str) -> tuple[list[str], bool]:
    """The states of the family's refresh tokens, and whether it is revoked, read from the
    emulator directly (scan: tests only)."""
    ddb = boto3.client(
        "dynamodb",
        endpoint_url=stack.emulator_url,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    states: list[str] = []
    revoked = False
    kwargs: dict[str, Any] = {"TableName": "tessera-local"}
    while True:
        page = ddb.scan(**kwargs)
        for item in page["Items"]:
            pk = item["pk"]["S"]
            if pk.startswith("RT#") and item["family_id"]["S"] == family_id:
                states.append(item["state"]["S"])
            if pk == f"FAMILY#{family_id}":
                revoked = item["revoked"]["BOOL"]
        if "LastEvaluatedKey" not in page:
            return states, revoked
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _sid(access_token: str) -> str:
    import jwt

    sid: str = jwt.decode(access_token, algorithms=["ES256"], options={"verify_signature": False})[
        "sid"
    ]
    return sid


def test_parallel_refreshes_with_window_on_all_carry_the_same_successor(local_stack, registered):
    token = _login(local_stack, registered)
    results = _parallel_refreshes(local_stack, registered["client"], token["refresh_token"])
    ok = [r.json() for r in results if r.status_code == 200]
    assert len(ok) == PARALLEL, [r.text for r in results if r.status_code != 200]
    assert len({b["refresh_token"] for b in ok}) == 1
    states, revoked = _family_states(local_stack, _sid(token["access_token"]))
    assert sorted(states) == ["active", "rotated"]
    assert revoked is False


@pytest.fixture(scope="module")
def stack_without_window(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """A second local stack with TESSERA_REFRESH_RETRY_WINDOW=0 (the stack reads the env)."""
    with running_stack(
        tmp_path_factory.mktemp("stack-window-0"), TESSERA_REFRESH_RETRY_WINDOW="0"
    ) as stack:
        yield stack


def test_parallel_refreshes_with_window_off_have_exactly_one_success(stack_without_window):
    stack = stack_without_window
    reg = _register(stack)
    token = _login(stack, reg)
    results = _parallel_refreshes(stack, reg["client"], token["refresh_token"])
    ok = [r.json() for r in results if r.status_code == 200]
    assert len(ok) == 1, [r.status_code for r in results]
    assert {r.json()["error"] for r in results if r.status_code != 200} == {"invalid_grant"}
    states, revoked = _family_states(stack, _sid(token["access_token"]))
    assert sorted(states) == ["active", "rotated"]
    assert revoked is False
    again = requests.post(
        stack.token_url,
        data={"grant_type": "refresh_token", "refresh_token": ok[0]["refresh_token"]},
        auth=(reg["client"]["client_id"], reg["client"]["client_secret"]),
        timeout=60,
    )
    assert again.status_code == 200
