"""The functions' log output as CloudWatch Logs receives it (chalicelib.core.telemetry): every line
carries the Lambda request id and the cold-start flag, and each invocation that counted something
writes one embedded metric format (EMF) document whose names, units and dimensions are README
"Metrics (the contract)".

The handlers run as the Lambda runtime runs them, by the names the packaged template gives
(``app.app``, ``chalicelib.authorizer_lambda.handler``, ``app.rotate_keys``), with API Gateway's
events and a context carrying a request id; stdout is read per invocation. AWS is moto; faults
are injected as in tests/functional/test_faults.py. The cold-start flag is checked in fresh
interpreters.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import app as app_module
from bench import events
from chalicelib import authorizer_lambda
from chalicelib.core import telemetry
from chalicelib.core.config import settings
from chalicelib.store import aws
from chalicelib.web import authorizer
from tests.functional.conftest import STAGE, TEST_ENV
from tests.functional.test_authorize import CHALLENGE, REDIRECT, VERIFIER, get_code
from tests.functional.test_faults import FAULTS, injected, no_backoff

__all__ = ["no_backoff"]  # tests/functional/test_faults.py's fixture: retries without sleeping

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse battery"
Metrics = Counter[tuple[str, str | None]]  # (metric, its own dimension's value) -> value


# --- the contract, read from the README -------------------------------------------------------


def contract() -> dict[str, tuple[list[str], set[str]]]:
    """README "Metrics (the contract)": metric -> (its dimension names, the allowed values of
    its own dimension, if it has one)."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### Metrics (the contract)\n", 1)[1].split("\n### ", 1)[0]
    assert "Namespace `Tessera`; unit `Count`" in section
    out = {}
    for m in re.finditer(r"^\| `(\w+)` \| ([^|]*) \|", section, re.MULTILINE):
        cell = m[2]
        values = set(re.findall(r"`(\w+)`", "".join(re.findall(r"\(([^)]*)\)", cell))))
        names = re.findall(r"`(\w+)`", re.sub(r"\([^)]*\)", "", cell))
        out[m[1]] = (names, values)
    assert len(out) == 12
    return out


CONTRACT = contract()


def emf_metrics(doc: dict[str, Any]) -> Metrics:
    """The metrics of one EMF document, after checking it against the EMF specification
    (``_aws`` with a millisecond Timestamp and metric directives; each dimension and metric a
    member of the document) and the contract (namespace, unit, exact dimension set, values)."""
    meta = doc["_aws"]
    assert isinstance(meta["Timestamp"], int)
    assert abs(meta["Timestamp"] - time.time() * 1000) < 60_000
    found: Metrics = Counter()
    assert meta["CloudWatchMetrics"]
    for directive in meta["CloudWatchMetrics"]:
        assert directive["Namespace"] == "Tessera"
        (dimensions,) = directive["Dimensions"]  # one dimension set: what the alarms name
        for name in dimensions:
            assert isinstance(doc[name], str), name
        assert directive["Metrics"]
        for metric in directive["Metrics"]:
            name = metric["Name"]
            assert metric["Unit"] == "Count", name
            names, values = CONTRACT[name]
            assert sorted(dimensions) == sorted(names), name
            assert doc["service"] == "tessera"
            assert doc["Stage"] == STAGE
            own = [d for d in dimensions if d not in ("service", "Stage")]
            if own:
                assert doc[own[0]] in values, (name, doc[own[0]])
            value = doc[name]
            assert isinstance(value, int), name
            assert value >= 1, name
            found[(name, doc[own[0]] if own else None)] += value
    return found


# --- the Lambda runtime, as far as the functions can tell ---------------------------------------


class Context(events.LambdaContext):
    def __init__(self) -> None:
        self.aws_request_id = str(uuid.uuid4())


@dataclass
class Invocation:
    request_id: str
    answer: Any
    lines: list[dict[str, Any]]

    @property
    def emf(self) -> list[dict[str, Any]]:
        return [line for line in self.lines if "_aws" in line]

    @property
    def metrics(self) -> Metrics:
        """All the invocation wrote, after checking it: each line JSON with the request id and
        one cold-start flag; at most one EMF document."""
        assert self.lines
        for line in self.lines:
            assert line["function_request_id"] == self.request_id, line
            assert line["cold_start"] is self.lines[0]["cold_start"], line
        assert isinstance(self.lines[0]["cold_start"], bool)
        assert len(self.emf) <= 1
        return sum((emf_metrics(doc) for doc in self.emf), Counter())

    def logged(self, kind: str) -> list[dict[str, Any]]:
        return [line for line in self.lines if line.get("log") == kind]


@pytest.fixture
def run(aws: Any, capfd: pytest.CaptureFixture[str]) -> Callable[..., Invocation]:
    """Invoke a handler once, as Lambda does; what it wrote on stdout, line by line."""
    settings()

    def invoke(handler: Callable[[Any, Any], Any], event: Any) -> Invocation:
        capfd.readouterr()
        context = Context()
        try:
            answer = handler(event, context)
        except Exception as exc:  # the authorizer's 401, a failed rotation step
            answer = exc
        out = capfd.readouterr().out
        lines = [json.loads(x) for x in out.splitlines() if x.strip()]  # JSON, every one
        assert all(isinstance(x, dict) for x in lines)
        return Invocation(context.aws_request_id, answer, lines)

    return invoke


def api(run: Callable[..., Invocation], event: dict[str, Any]) -> Invocation:
    inv = run(app_module.app, event)
    (request_line,) = inv.logged("request")
    assert request_line["request_id"] == event["requestContext"]["requestId"]  # API Gateway's
    assert request_line["status"] == inv.answer["statusCode"]
    return inv


def get(path: str, query: dict[str, str]) -> dict[str, Any]:
    event = events.proxy_event(path, "GET")
    event["queryStringParameters"] = dict(query)
    event["multiValueQueryStringParameters"] = {k: [v] for k, v in query.items()}
    return event


def basic(c: dict[str, Any], secret: str | None = None) -> str:
    return events.basic(c["client_id"], secret or c["client_secret"])


def status(inv: Invocation) -> int:
    code: int = inv.answer["statusCode"]
    return code


def answer(inv: Invocation) -> Any:
    return json.loads(inv.answer["body"])


# --- the API handler ---------------------------------------------------------------------------


@dataclass
class World:
    cc: dict[str, Any]  # client_credentials, may introspect
    pw: dict[str, Any]  # password + refresh_token
    spa: dict[str, Any]  # authorization_code + PKCE, public


@pytest.fixture
def world(app_client: Any, make_client: Any, make_user: Any) -> World:
    make_user("alice", PASSWORD)
    make_user("bob", PASSWORD)
    return World(
        cc=make_client(grant_types=["client_credentials"], introspect=True),
        pw=make_client(grant_types=["password", "refresh_token"]),
        spa=make_client(
            grant_types=["authorization_code", "refresh_token"],
            public=True,
            redirect_uris=[REDIRECT],
        ),
    )


def password_grant(w: World, username: str = "alice", password: str = PASSWORD) -> dict[str, Any]:
    form = {"grant_type": "password", "username": username, "password": password}
    return events.token_request(form, basic(w.pw))


def test_every_token_grant_logs_request_id_cold_start_and_tokens_issued_per_grant(
    run: Any, world: World, app_client: Any
) -> None:
    cc = events.token_request({"grant_type": "client_credentials"}, basic(world.cc))
    inv = api(run, cc)
    assert status(inv) == 200
    assert inv.metrics == {("TokensIssued", "client_credentials"): 1}

    inv = api(run, password_grant(world))
    assert status(inv) == 200
    assert inv.metrics == {("TokensIssued", "password"): 1}
    (issued,) = [x for x in inv.logged("audit") if x["event"] == "token_issued"]
    assert issued["function_request_id"] == inv.request_id

    refresh = {"grant_type": "refresh_token", "refresh_token": answer(inv)["refresh_token"]}
    inv = api(run, events.token_request(refresh, basic(world.pw)))
    assert status(inv) == 200
    assert inv.metrics == {("TokensIssued", "refresh_token"): 1}

    code = get_code(app_client, world.spa)["code"]
    exchange = {
        "grant_type": "authorization_code",
        "code": code,
        "client_id": world.spa["client_id"],
        "redirect_uri": REDIRECT,
        "code_verifier": VERIFIER,
    }
    inv = api(run, events.token_request(exchange, None))
    assert status(inv) == 200
    assert inv.metrics == {("TokensIssued", "authorization_code"): 1}


def test_revoke_introspect_and_the_authorize_page_log_request_id_and_cold_start(
    run: Any, world: World
) -> None:
    tokens = answer(api(run, password_grant(world)))
    revoke = events.form_request(
        "/oauth2/revoke", {"token": tokens["refresh_token"]}, basic(world.pw)
    )
    introspect = events.form_request(
        "/oauth2/introspect", {"token": tokens["access_token"]}, basic(world.cc)
    )
    page = get(
        "/oauth2/authorize",
        {
            "response_type": "code",
            "client_id": world.spa["client_id"],
            "redirect_uri": REDIRECT,
            "scope": "people:read",
            "state": "s1",
            "code_challenge": CHALLENGE,
            "code_challenge_method": "S256",
        },
    )
    for event in (revoke, introspect, page):
        inv = api(run, event)
        assert status(inv) == 200
        assert inv.metrics == {}  # nothing the contract counts: no EMF document at all
        assert inv.emf == []


def test_client_and_grant_errors_lockouts_and_refresh_reuse_are_counted(
    run: Any, world: World, clock: Any
) -> None:
    wrong = events.token_request({"grant_type": "client_credentials"}, basic(world.cc, "nope"))
    inv = api(run, wrong)
    assert status(inv) == 401
    assert inv.metrics == {("InvalidClient", None): 1}

    wrong = events.form_request("/oauth2/revoke", {"token": "x"}, basic(world.pw, "nope"))
    assert api(run, wrong).metrics == {("InvalidClient", None): 1}

    # Five wrong passwords for bob; the sixth attempt is refused before its password is checked.
    for _ in range(5):
        inv = api(run, password_grant(world, "bob", "wrong password"))
        assert inv.metrics == {("InvalidGrant", None): 1}
    inv = api(run, password_grant(world, "bob"))
    assert answer(inv)["error"] == "invalid_grant"
    assert inv.metrics == {("Lockouts", None): 1, ("InvalidGrant", None): 1}

    first = answer(api(run, password_grant(world)))["refresh_token"]
    refresh = events.token_request(
        {"grant_type": "refresh_token", "refresh_token": first}, basic(world.pw)
    )
    assert status(api(run, refresh)) == 200
    clock.advance(60)  # past the retry window: the rotated token came back
    inv = api(run, refresh)
    assert status(inv) == 400
    assert inv.metrics == {("RefreshReuseDetected", None): 1, ("InvalidGrant", None): 1}


def test_an_aws_fault_answered_503_is_counted_as_backend_unavailable(
    run: Any, world: World
) -> None:
    cc = events.token_request({"grant_type": "client_credentials"}, basic(world.cc))
    page = get("/oauth2/authorize", {"response_type": "code", "client_id": world.spa["client_id"]})
    for event in (cc, page):
        with injected(FAULTS["ddb-internal"]):
            inv = api(run, event)
        assert status(inv) == 503
        assert inv.metrics == {("BackendUnavailable", None): 1}
        (line,) = [x for x in inv.lines if x.get("level") == "WARNING"]
        assert line["function_request_id"] == inv.request_id


# --- the authorizer ------------------------------------------------------------------------------


@pytest.fixture
def access_token(run: Any, world: World) -> str:
    cc = events.token_request({"grant_type": "client_credentials"}, basic(world.cc))
    token: str = answer(api(run, cc))["access_token"]
    return token


def test_authorizer_counts_allow_and_deny_and_logs_why_it_rejected_at_the_default_level(
    run: Any, access_token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TESSERA_LOG_LEVEL", raising=False)  # the default level
    inv = run(authorizer_lambda.handler, events.authorizer_event(access_token))
    assert inv.answer["policyDocument"]["Statement"][0]["Effect"] == "Allow"
    assert inv.metrics == {("AuthorizerAllow", None): 1}

    tampered = access_token[:-4] + ("AAAA" if not access_token.endswith("AAAA") else "BBBB")
    for event in (
        events.authorizer_event(tampered),
        {**events.authorizer_event(""), "authorizationToken": "Basic x"},
    ):
        inv = run(authorizer_lambda.handler, event)
        assert str(inv.answer) == "Unauthorized"
        assert inv.metrics == {("AuthorizerDeny", None): 1}
        (why,) = [x for x in inv.lines if x.get("logger") == "tessera.authorizer"]
        assert why["level"] == "INFO"
        assert why["message"].startswith("rejected: ")
        assert access_token[-20:] not in json.dumps(inv.lines)


def test_an_explicit_deny_policy_counts_as_a_deny(run: Any, make_client: Any) -> None:
    """A valid token whose scopes permit no route gets a Deny policy: a deny, not an allow."""
    c = make_client(scopes=["profile"])
    cc = events.token_request({"grant_type": "client_credentials"}, basic(c))
    token = answer(api(run, cc))["access_token"]
    inv = run(authorizer_lambda.handler, events.authorizer_event(token))
    assert inv.answer["policyDocument"]["Statement"][0]["Effect"] == "Deny"
    assert inv.metrics == {("AuthorizerDeny", None): 1}


def test_authorizer_failing_closed_counts_an_error_and_a_stale_key_set_a_fallback(
    run: Any, access_token: str, clock: Any
) -> None:
    with injected(FAULTS["sm-internal"]):  # cold caches: the key set cannot be read
        inv = run(authorizer_lambda.handler, events.authorizer_event(access_token))
    assert isinstance(inv.answer, authorizer.AuthorizerUnavailable)
    assert inv.metrics == {("AuthorizerError", None): 1}
    (fault,) = [x for x in inv.lines if x.get("level") == "ERROR"]
    assert fault["error_type"] == "BackendUnavailable"

    # The key set is read once (the first Secrets Manager call), then fails once it is due again.
    with injected(FAULTS["sm-internal"], nth=2) as injector:
        inv = run(authorizer_lambda.handler, events.authorizer_event(access_token))
        assert inv.metrics == {("AuthorizerAllow", None): 1}
        clock.advance(settings().key_cache_ttl + 1)
        inv = run(authorizer_lambda.handler, events.authorizer_event(access_token))
        assert injector.faulted
    assert inv.metrics == {("AuthorizerAllow", None): 1, ("KeyCacheStaleFallback", None): 1}


# --- rotation ------------------------------------------------------------------------------------


def rotation_event(step: str, token: str) -> dict[str, str]:
    arn = aws.client("secretsmanager").describe_secret(
        SecretId=TEST_ENV["TESSERA_SIGNING_KEYS_SECRET"]
    )["ARN"]
    return {"SecretId": arn, "ClientRequestToken": token, "Step": step}


def test_each_rotation_step_and_a_failed_one_are_counted(run: Any) -> None:
    token = str(uuid.uuid4())
    for step in ("createSecret", "setSecret", "testSecret", "finishSecret"):
        inv = run(app_module.rotate_keys, rotation_event(step, token))
        assert inv.answer is None
        assert inv.metrics == {("RotationStep", step): 1}
    inv = run(app_module.rotate_keys, rotation_event("setSecret", str(uuid.uuid4())))
    assert isinstance(inv.answer, Exception)
    assert inv.metrics == {("RotationFailure", None): 1}
    (failed,) = [x for x in inv.lines if x.get("level") == "ERROR"]
    assert (failed["step"], failed["error_type"]) == ("setSecret", "RotationError")


# --- one invocation, one document ---------------------------------------------------------------


def test_one_invocation_writes_one_document_unless_a_dimension_takes_two_values(
    env: dict[str, str], capfd: pytest.CaptureFixture[str]
) -> None:
    capfd.readouterr()
    with telemetry.Invocation(Context()):
        for name in ("InvalidGrant", "Lockouts", "InvalidGrant"):
            telemetry.count(name)
        telemetry.count("TokensIssued", "password")
        telemetry.count("TokensIssued", "refresh_token")  # cannot share the first document
        telemetry.count("TokensIssued", "device_code")  # outside the contract: dropped
        telemetry.count("Made-up")  # likewise
    lines = [json.loads(x) for x in capfd.readouterr().out.splitlines()]
    docs = [x for x in lines if "_aws" in x]
    assert len(docs) == 2
    assert emf_metrics(docs[0]) == {
        ("InvalidGrant", None): 2,
        ("Lockouts", None): 1,
        ("TokensIssued", "password"): 1,
    }
    assert emf_metrics(docs[1]) == {("TokensIssued", "refresh_token"): 1}
    assert [x["metric"] for x in lines if "_aws" not in x] == ["TokensIssued", "Made-up"]


def test_nothing_is_counted_outside_an_invocation(
    env: dict[str, str], capfd: pytest.CaptureFixture[str]
) -> None:
    """The admin command and the stores' own tests: no metric lines on their output."""
    capfd.readouterr()
    telemetry.count("InvalidGrant")
    with telemetry.Invocation(None):
        pass
    assert capfd.readouterr().out == ""


# --- the log level -------------------------------------------------------------------------------


def test_log_level_is_a_stage_setting_and_request_lines_and_metrics_ignore_it(
    run: Any, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    assert config["environment_variables"]["TESSERA_LOG_LEVEL"] == "INFO"
    deny = {**events.authorizer_event(""), "authorizationToken": "Basic x"}

    monkeypatch.setenv("TESSERA_LOG_LEVEL", "WARNING")
    inv = run(authorizer_lambda.handler, deny)
    assert inv.metrics == {("AuthorizerDeny", None): 1}
    assert [x for x in inv.lines if x.get("logger") == "tessera.authorizer"] == []
    wrong = events.token_request({"grant_type": "client_credentials"}, basic(world.cc, "no"))
    inv = api(run, wrong)
    assert inv.metrics == {("InvalidClient", None): 1}  # and its request line (api() checks)

    monkeypatch.setenv("TESSERA_LOG_LEVEL", "verbose")  # a mistake: INFO, and a warning
    inv = run(authorizer_lambda.handler, deny)
    messages = [x["message"] for x in inv.lines if "message" in x]
    assert messages == [
        "TESSERA_LOG_LEVEL is not a level: logging at INFO",
        "rejected: no bearer token",
    ]


def test_extra_fields_that_are_not_plain_values_are_left_out_of_log_lines(
    capfd: pytest.CaptureFixture[str],
) -> None:
    import logging

    class Secretive:
        def __repr__(self) -> str:
            return "s3cr3t"

    with telemetry.Invocation(Context()):
        logging.getLogger("tessera.test").warning(
            "something", extra={"jti": "j1", "ids": ["a", "b"], "thing": Secretive()}
        )
    (line,) = [json.loads(x) for x in capfd.readouterr().out.splitlines()]
    assert line["jti"] == "j1"
    assert line["ids"] == ["a", "b"]
    assert "thing" not in line
    assert "s3cr3t" not in json.dumps(line)


# --- the cold-start flag, in fresh interpreters ------------------------------------------------

COLD = """
import json, os, sys
sys.path.insert(0, {root!r})
from bench import events
handler = {handler}
for request_id in ("first", "second"):
    context = events.LambdaContext()
    context.aws_request_id = request_id
    try:
        handler({event!r}, context)
    except Exception:
        pass
"""


AUTHORIZER = "__import__('chalicelib.authorizer_lambda').authorizer_lambda.handler"
NO_BEARER = {"type": "TOKEN", "authorizationToken": "Basic x", "methodArn": "arn:x"}


@pytest.mark.parametrize(
    ("handler", "event", "init", "first"),
    [
        ("__import__('app').app", events.token_request({"grant_type": "x"}, None), "", True),
        (AUTHORIZER, NO_BEARER, "on-demand", True),
        ("__import__('app').rotate_keys", {"Step": "createSecret"}, "", True),
        # Provisioned concurrency starts the process before any request waits for it.
        (AUTHORIZER, NO_BEARER, "provisioned-concurrency", False),
    ],
    ids=["api", "authorizer", "rotation", "provisioned"],
)
def test_first_invocation_of_a_new_process_is_the_cold_start(
    handler: str, event: dict[str, Any], init: str, first: bool, env: dict[str, str]
) -> None:
    code = COLD.format(root=str(ROOT), handler=handler, event=event)
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**env, "PATH": "/usr/bin:/bin", "AWS_LAMBDA_INITIALIZATION_TYPE": init},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    lines = [json.loads(x) for x in done.stdout.splitlines()]
    flags = {(x["function_request_id"], x["cold_start"]) for x in lines}
    assert flags == {("first", first), ("second", False)}, done.stdout
