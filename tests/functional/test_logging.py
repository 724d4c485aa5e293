"""Logging policy (README, "Security"): a request line per request, audit events for what
matters, and never a password, client secret, refresh token or access token in any log output —
checked with every logger at DEBUG (botocore's included) and the process's stdout/stderr captured.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib.web import services
from tests.functional.conftest import basic, body, form_post

PASSWORD = "correct horse battery staple"
ARN = "arn:aws:execute-api:us-east-1:123456789012:abcdef1234/api/GET/people"


@pytest.fixture(autouse=True)
def audit_on_stdout() -> None:
    """The admin command moves audit lines to stderr for the rest of its process."""
    from chalicelib.core import audit

    audit.to_stdout()


class _Everything(logging.Handler):
    """Keeps each record's message and every attribute (``extra`` fields included)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.ours: list[str] = []  # from tessera.* loggers

    def emit(self, record: logging.LogRecord) -> None:
        lines = [record.getMessage(), json.dumps(record.__dict__, default=repr)]
        if record.exc_info:
            lines.append(logging.Formatter().formatException(record.exc_info))
        self.lines += lines
        if record.name.startswith("tessera"):
            self.ours += lines


@pytest.fixture
def all_logs() -> Iterator[_Everything]:
    """Every logger at DEBUG, a handler on the root and on each logger that does not propagate."""
    handler = _Everything()
    manager = logging.root.manager
    loggers = [logging.root] + [
        lg for lg in manager.loggerDict.values() if isinstance(lg, logging.Logger)
    ]
    saved = [(lg, lg.level, lg.propagate) for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.DEBUG)
    attached = [lg for lg in loggers if lg is logging.root or not lg.propagate]
    for lg in attached:
        lg.addHandler(handler)
    try:
        yield handler
    finally:
        for lg in attached:
            lg.removeHandler(handler)
        for lg, level, propagate in saved:
            lg.setLevel(level)
            lg.propagate = propagate


def _request_lines(out: str) -> list[dict[str, Any]]:
    lines = [json.loads(x) for x in out.splitlines() if x.startswith("{")]
    return [x for x in lines if x.get("log") == "request"]


def _audit_events(out: str) -> list[str]:
    lines = [json.loads(x) for x in out.splitlines() if x.startswith("{")]
    return [x["event"] for x in lines if x.get("log") == "audit"]


def test_no_secret_or_token_ever_reaches_the_logs(
    app_client, aws, all_logs, capfd, monkeypatch, make_client, clock
):
    from chalicelib import authorizer_lambda
    from chalicelib.ops import admin
    from chalicelib.web import authorizer

    # Admin: a user created through the command (password on stdin), clients through the store.
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert (
        admin.main(
            ["--stage", "test", "user", "create", "--username", "alice"], configure=lambda _: None
        )
        == 0
    )
    pw = make_client(grant_types=["password", "refresh_token"])
    rs = make_client(grant_types=["client_credentials"], introspect=True)
    secrets_seen = [PASSWORD, pw["client_secret"], rs["client_secret"]]
    secrets_seen += [basic(c["client_id"], c["client_secret"]) for c in (pw, rs)]
    tokens: list[str] = []

    def post(path: str, params: dict[str, str], client: dict[str, Any]) -> Any:
        return form_post(
            app_client,
            path,
            params,
            {"Authorization": basic(client["client_id"], client["client_secret"])},
        )

    r = post("/oauth2/token", {"grant_type": "client_credentials"}, rs)
    assert r.status_code == 200
    tokens.append(body(r)["access_token"])
    login = {"grant_type": "password", "username": "alice", "password": PASSWORD}
    r = post("/oauth2/token", login, pw)
    assert r.status_code == 200
    first = body(r)
    tokens += [first["access_token"], first["refresh_token"]]
    # A password typed into the username field, and a wrong password.
    typo = "hunter2 typed-as-username"
    assert post("/oauth2/token", {**login, "username": typo}, pw).status_code == 400
    assert post("/oauth2/token", {**login, "password": "Wrong " + PASSWORD}, pw).status_code == 400
    secrets_seen.append("Wrong " + PASSWORD)
    r = post(
        "/oauth2/token",
        {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
        pw,
    )
    assert r.status_code == 200
    second = body(r)
    tokens += [second["access_token"], second["refresh_token"]]
    # Re-use of the rotated token, after the retry window, revokes the family (an audit event).
    clock.advance(60)
    assert (
        post(
            "/oauth2/token",
            {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
            pw,
        ).status_code
        == 400
    )
    for token in tokens:
        assert post("/oauth2/introspect", {"token": token}, rs).status_code == 200
    assert post("/oauth2/revoke", {"token": second["access_token"]}, pw).status_code == 200
    assert post("/oauth2/revoke", {"token": second["refresh_token"]}, pw).status_code == 200
    # The authorizer, with a valid, a revoked and a tampered token, and the demo API.
    monkeypatch.setenv("TESSERA_AUTHORIZER_CHECKS_REVOCATION", "true")
    services.reset()
    for token in (tokens[0], second["access_token"], tokens[0][:-4] + "AAAA"):
        with contextlib.suppress(authorizer.Unauthorized):
            authorizer_lambda.handle(f"Bearer {token}", ARN)
    assert (
        app_client.http.get("/people", headers={"Authorization": f"Bearer {tokens[0]}"}).status_code
        == 200
    )
    # A bad client secret (the attempt is a secret too).
    wrong = dict(rs, client_secret=rs["client_secret"] + "x")
    secrets_seen.append(wrong["client_secret"])
    assert post("/oauth2/token", {"grant_type": "client_credentials"}, wrong).status_code == 401

    out, err = capfd.readouterr()
    text = "\n".join(all_logs.lines) + out + err
    assert len(all_logs.lines) > 50  # botocore at DEBUG: the capture really sees everything
    needles = list(secrets_seen)
    for token in tokens:
        needles.append(token)
        if token.count(".") == 2:
            needles.append(token.rsplit(".", 1)[1])  # the signature alone
        else:
            needles.append(token[-43:])  # the random part of a refresh token (may hold "_")
    for needle in needles:
        assert needle not in text
    # A username is a lookup key, so botocore's own DEBUG wire log (off in production) shows what
    # was typed; our logs and stdout never do, and the login counters store only its hash.
    assert typo not in "\n".join(all_logs.ours) + out + err
    assert typo not in json.dumps(aws.client("dynamodb").scan(TableName="tessera-test")["Items"])


def test_each_request_writes_one_json_request_line(app_client, capfd, make_client):
    c = make_client()
    capfd.readouterr()
    form_post(
        app_client,
        "/oauth2/token",
        {"grant_type": "client_credentials", "scope": "nope"},
        {"Authorization": basic(c["client_id"], c["client_secret"])},
    )
    (line,) = _request_lines(capfd.readouterr().out)
    assert line["endpoint"] == "/oauth2/token"
    assert line["client_id"] == c["client_id"]
    assert line["grant_type"] == "client_credentials"
    assert (line["status"], line["outcome"], line["error"]) == (400, "rejected", "invalid_scope")
    assert isinstance(line["latency_ms"], float)
    assert "request_id" in line


def test_request_line_never_carries_a_secret_typed_into_the_client_id(app_client, capfd):
    form_post(
        app_client,
        "/oauth2/token",
        {"grant_type": "client_credentials", "client_id": "tessera_cs_this is a secret!"},
    )
    (line,) = _request_lines(capfd.readouterr().out)
    assert line["client_id"] is None


def test_token_issue_and_lockout_are_audit_events(app_client, capfd, make_client, make_user):
    c = make_client(grant_types=["password"])
    make_user("alice", PASSWORD)
    auth = {"Authorization": basic(c["client_id"], c["client_secret"])}
    login = {"grant_type": "password", "username": "alice", "password": PASSWORD}
    form_post(app_client, "/oauth2/token", login, auth)
    for _ in range(5):
        form_post(app_client, "/oauth2/token", {**login, "password": "nope"}, auth)
    form_post(app_client, "/oauth2/token", login, auth)
    events = _audit_events(capfd.readouterr().out)
    assert events.count("token_issued") == 1
    assert "lockout" in events
    assert "login_refused" in events


def test_audit_event_drops_fields_that_could_carry_a_secret(capfd):
    from chalicelib.core import audit

    audit.event("token_issued", jti="j1", access_token="eyJ...", client_secret="s3cr3t")
    (line,) = [json.loads(x) for x in capfd.readouterr().out.splitlines()]
    assert line == {"log": "audit", "event": "token_issued", "jti": "j1", "ts": line["ts"]}


def test_admin_command_writes_audit_lines_to_stderr_only_when_asked(aws, capsys, make_user):
    from chalicelib.ops import admin

    make_user("alice", PASSWORD)
    code = admin.main(
        ["--stage", "test", "--audit", "user", "unlock", "alice", "--json"],
        configure=lambda _: None,
    )
    out, err = capsys.readouterr()
    assert code == 0
    assert json.loads(out) == {"unlocked": "alice", "had_failures": False}
    assert '"event":"user_unlocked"' in err
