"""A subject's state is checked wherever a code or token is issued, and a re-used code revokes
what it issued (RFC 6749 §4.1.2, §10.5).

Driven through the app in-process, with the admin command run as an operator runs it
(``user disable`` / ``user delete``): hosted sign-in sessions, codes issued before, refresh
tokens, password-grant tokens, introspection and the authorizer with its revocation check on.
"""

from __future__ import annotations

import io
import sys
from typing import Any

import pytest

from chalicelib.ops import admin
from chalicelib.web import services
from tests.functional.authorizer_support import invoker, reconfigure, rejecter
from tests.functional.conftest import basic, body, form_post
from tests.functional.test_authorize import (
    PASSWORD,
    REDIRECT,
    Browser,
    account_sign_in,
    authorize_path,
    consent,
    exchange,
    get_code,
    html,
    location,
    sign_in,
)


@pytest.fixture
def operator(aws: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Any:
    """The admin command, in-process against the test world (as tests/functional/test_admin.py
    runs it)."""

    def run(*args: str) -> str:
        monkeypatch.setattr(sys, "stdin", io.StringIO(""))
        status = admin.main(["--stage", "test", *args], configure=lambda stage: None)
        out, err = capsys.readouterr()
        assert status == 0, err
        return out

    return run


@pytest.fixture
def spa(make_client: Any) -> dict[str, Any]:
    """A public third-party app: code + PKCE and refresh tokens, consent required."""
    result: dict[str, Any] = make_client(
        name="Photo App",
        grant_types=["authorization_code", "refresh_token"],
        scopes=["people:read", "articles:read"],
        public=True,
        redirect_uris=[REDIRECT],
    )
    return result


@pytest.fixture
def first_party(make_client: Any) -> dict[str, Any]:
    """A first-party app without the refresh_token grant: no consent page, access tokens only."""
    result: dict[str, Any] = make_client(
        name="Portal",
        grant_types=["authorization_code"],
        scopes=["people:read"],
        public=True,
        first_party=True,
        redirect_uris=[REDIRECT],
    )
    return result


@pytest.fixture
def alice(make_user: Any) -> dict[str, Any]:
    result: dict[str, Any] = make_user("alice", PASSWORD)
    return result


@pytest.fixture
def resource_server(make_client: Any) -> dict[str, Any]:
    result: dict[str, Any] = make_client(grant_types=["client_credentials"], introspect=True)
    return result


@pytest.fixture
def authorizer_rejects(app_client: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The deployed authorizer Lambda's handler, with the revocation check on (as in prod)."""
    reconfigure(monkeypatch, TESSERA_AUTHORIZER_CHECKS_REVOCATION="true")
    invoke = invoker(app_client, "plain")
    return invoke, rejecter(invoke)


def active(app_client: Any, resource_server: dict[str, Any], token: str) -> bool:
    r = form_post(
        app_client,
        "/oauth2/introspect",
        {"token": token},
        {"Authorization": basic(resource_server["client_id"], resource_server["client_secret"])},
    )
    assert r.status_code == 200, r.body
    result: bool = body(r)["active"]
    return result


def refresh(app_client: Any, client: dict[str, Any], token: str) -> Any:
    return form_post(
        app_client,
        "/oauth2/token",
        {"grant_type": "refresh_token", "refresh_token": token, "client_id": client["client_id"]},
    )


def tokens_for(app_client: Any, client: dict[str, Any]) -> dict[str, Any]:
    r = exchange(app_client, client, get_code(app_client, client)["code"])
    assert r.status_code == 200, r.body
    result: dict[str, Any] = body(r)
    return result


def asks_to_sign_in(resp: Any) -> bool:
    return resp.status_code == 200 and 'name="step" value="login"' in html(resp)


# --- sessions -> codes ------------------------------------------------------------------------


def test_disabled_user_gets_no_code_from_existing_session(app_client, first_party, alice, operator):
    b = Browser(app_client)
    assert "code" in location(sign_in(b, authorize_path(first_party["client_id"])))

    operator("user", "disable", "alice")

    again = b.get(authorize_path(first_party["client_id"]))
    assert "Location" not in again.headers
    assert asks_to_sign_in(again)


def test_disabled_user_gets_no_code_from_an_open_consent_page(app_client, spa, alice, operator):
    b = Browser(app_client)
    consent_page = sign_in(b, authorize_path(spa["client_id"]))
    assert 'value="consent"' in html(consent_page)

    operator("user", "disable", "alice")

    resp = consent(b, consent_page)
    assert "Location" not in resp.headers
    assert asks_to_sign_in(resp)


def test_session_from_before_disable_stays_ended_after_reenable(
    app_client, first_party, alice, operator
):
    b = Browser(app_client)
    sign_in(b, authorize_path(first_party["client_id"]))
    account = Browser(app_client)
    account_sign_in(account)

    operator("user", "disable", "alice")
    assert services.user_store().set_disabled("alice", False)  # an operator re-enables her

    assert asks_to_sign_in(b.get(authorize_path(first_party["client_id"])))
    assert 'action="/account/login"' in html(account.get("/account/apps"))
    # Signing in again works: only what was issued before the disable ended.
    code = location(sign_in(b, authorize_path(first_party["client_id"])))["code"]
    assert exchange(app_client, first_party, code).status_code == 200


def test_session_of_a_deleted_user_gives_nothing_to_a_new_user_of_that_name(
    app_client, first_party, alice, make_user, operator
):
    b = Browser(app_client)
    sign_in(b, authorize_path(first_party["client_id"]))

    operator("user", "delete", "alice")
    make_user("alice", "another password entirely")

    assert asks_to_sign_in(b.get(authorize_path(first_party["client_id"])))


# --- codes -> tokens ----------------------------------------------------------------------------


def test_code_issued_before_disable_does_not_exchange(app_client, spa, alice, operator):
    code = get_code(app_client, spa)["code"]

    operator("user", "disable", "alice")

    r = exchange(app_client, spa, code)
    assert r.status_code == 400
    assert body(r)["error"] == "invalid_grant"
    assert "access_token" not in body(r)


def test_code_issued_before_disable_does_not_exchange_after_reenable(
    app_client, spa, alice, operator
):
    code = get_code(app_client, spa)["code"]

    operator("user", "disable", "alice")
    assert services.user_store().set_disabled("alice", False)

    r = exchange(app_client, spa, code)
    assert r.status_code == 400
    assert body(r)["error"] == "invalid_grant"


def test_code_issued_before_delete_does_not_exchange(app_client, first_party, alice, operator):
    code = get_code(app_client, first_party)["code"]

    operator("user", "delete", "alice")

    r = exchange(app_client, first_party, code)
    assert r.status_code == 400
    assert body(r)["error"] == "invalid_grant"


# --- grants ------------------------------------------------------------------------------------


def test_disabling_user_ends_sessions_and_grants(
    app_client, spa, alice, resource_server, authorizer_rejects, operator
):
    invoke, rejects = authorizer_rejects
    tokens = tokens_for(app_client, spa)
    account = Browser(app_client)
    account_sign_in(account)
    assert active(app_client, resource_server, tokens["access_token"])
    assert invoke("Bearer " + tokens["access_token"])["policyDocument"]

    out = operator("user", "disable", "alice")

    assert body(refresh(app_client, spa, tokens["refresh_token"]))["error"] == "invalid_grant"
    assert not active(app_client, resource_server, tokens["refresh_token"])
    assert not active(app_client, resource_server, tokens["access_token"])
    rejects("Bearer " + tokens["access_token"])
    assert 'action="/account/login"' in html(account.get("/account/apps"))
    assert "1 grant" in out
    # Re-enabling does not bring any of it back.
    assert services.user_store().set_disabled("alice", False)
    assert body(refresh(app_client, spa, tokens["refresh_token"]))["error"] == "invalid_grant"
    assert not active(app_client, resource_server, tokens["access_token"])


def test_deleting_user_ends_sessions_and_grants(
    app_client, spa, alice, make_user, resource_server, authorizer_rejects, operator
):
    _, rejects = authorizer_rejects
    tokens = tokens_for(app_client, spa)
    account = Browser(app_client)
    account_sign_in(account)

    operator("user", "delete", "alice")
    make_user("alice", PASSWORD)  # a new account under the same name inherits nothing

    assert body(refresh(app_client, spa, tokens["refresh_token"]))["error"] == "invalid_grant"
    assert not active(app_client, resource_server, tokens["refresh_token"])
    assert not active(app_client, resource_server, tokens["access_token"])
    rejects("Bearer " + tokens["access_token"])
    assert 'action="/account/login"' in html(account.get("/account/apps"))


def test_grant_from_before_a_disable_never_refreshes_again(app_client, spa, alice):
    """Even a family the disable did not revoke (say, one the grants index did not show yet):
    the refresh checks the user's epoch, so re-enabling the user does not revive it."""
    tokens = tokens_for(app_client, spa)
    users = services.user_store()
    assert users.set_disabled("alice", True)  # the record only: no grant is revoked here
    assert users.set_disabled("alice", False)

    r = refresh(app_client, spa, tokens["refresh_token"])

    assert r.status_code == 400
    assert body(r)["error"] == "invalid_grant"


def test_password_grant_tokens_end_when_user_is_disabled(
    app_client, make_client, alice, resource_server, authorizer_rejects, operator
):
    """A client without the refresh_token grant: its access token still belongs to a grant the
    disable revokes."""
    _, rejects = authorizer_rejects
    client = make_client(grant_types=["password"], scopes=["people:read"])
    r = form_post(
        app_client,
        "/oauth2/token",
        {"grant_type": "password", "username": "alice", "password": PASSWORD},
        {"Authorization": basic(client["client_id"], client["client_secret"])},
    )
    access_token = body(r)["access_token"]
    assert "refresh_token" not in body(r)
    assert active(app_client, resource_server, access_token)

    operator("user", "disable", "alice")

    assert not active(app_client, resource_server, access_token)
    rejects("Bearer " + access_token)


# --- code re-use (RFC 6749 §4.1.2) ------------------------------------------------------------


def test_code_reuse_revokes_access_token_without_refresh_grant(
    app_client, first_party, alice, resource_server, authorizer_rejects
):
    invoke, rejects = authorizer_rejects
    code = get_code(app_client, first_party)["code"]
    first = exchange(app_client, first_party, code)
    access_token = body(first)["access_token"]
    assert "refresh_token" not in body(first)
    assert active(app_client, resource_server, access_token)
    assert invoke("Bearer " + access_token)["policyDocument"]

    second = exchange(app_client, first_party, code)

    assert body(second)["error"] == "invalid_grant"
    assert not active(app_client, resource_server, access_token)
    rejects("Bearer " + access_token)


def test_code_reused_while_its_first_exchange_is_in_flight_issues_nothing(app_client, spa, alice):
    """The re-use lands after the first exchange burnt the code but before it stored its grant:
    the first exchange must then issue nothing (it cannot be told from the thief's)."""
    from chalicelib.store import aws

    code = get_code(app_client, spa)["code"]
    answers: list[Any] = []

    def reuse_first(**_: Any) -> None:
        if not answers:
            answers.append(exchange(app_client, spa, code))

    client = aws.client("dynamodb")
    event = "before-call.dynamodb.TransactWriteItems"
    client.meta.events.register(event, reuse_first, unique_id="reuse-in-flight")
    try:
        first = exchange(app_client, spa, code)
    finally:
        client.meta.events.unregister(event, unique_id="reuse-in-flight")

    assert body(answers[0])["error"] == "invalid_grant"
    assert first.status_code == 400
    assert body(first)["error"] == "invalid_grant"
