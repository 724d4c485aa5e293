"""Backend faults (README, "Security"): when DynamoDB or Secrets Manager keep failing after
botocore's retries, every endpoint answers 503 + Retry-After in OAuth JSON (the authorizer denies)
and the stored state is exactly what it was before the request.

Faults are injected into the services' own botocore clients with a ``before-send`` handler, so the
real retry logic, error parsing and ``aws.translate_faults`` all run; nothing reaches moto for a
faulted attempt. Backoff sleeps are switched off (the attempts still happen).
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest

from chalicelib import aws as aws_clients
from chalicelib import services
from tests.conftest import STAGE, basic, body, form_post

PASSWORD = "correct horse battery"
ARN = "arn:aws:execute-api:us-east-1:123456789012:abcdef1234/api/GET/people"


# --- fault injection ------------------------------------------------------------------------


class _Raw(io.BytesIO):
    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.getvalue()


@dataclass(frozen=True)
class Fault:
    service: aws_clients.Service
    status: int = 0
    code: str = ""
    reasons: tuple[str, ...] = ()
    raises: str = ""  # "read_timeout" | "connect"
    operations: tuple[str, ...] = ()  # only these operations fail (default: all)

    def applies_to(self, operation: str) -> bool:
        return not self.operations or operation in self.operations

    def respond(self, request: Any) -> Any:
        from botocore.awsrequest import AWSResponse, HTTPHeaders
        from botocore.exceptions import EndpointConnectionError, ReadTimeoutError

        if self.raises == "read_timeout":
            raise ReadTimeoutError(endpoint_url=request.url)
        if self.raises == "connect":
            raise EndpointConnectionError(endpoint_url=request.url)
        doc: dict[str, Any] = {"__type": f"com.amazonaws.injected#{self.code}", "message": "x"}
        if self.reasons:
            doc["CancellationReasons"] = [{"Code": r} for r in self.reasons]
            doc["message"] = f"Transaction cancelled [{', '.join(self.reasons)}]"
        headers = HTTPHeaders.from_dict(
            {"x-amzn-ErrorType": self.code, "Content-Type": "application/x-amz-json-1.0"}
        )
        return AWSResponse(request.url, self.status, headers, _Raw(json.dumps(doc).encode()))


FAULTS = {
    "ddb-throughput": Fault("dynamodb", 400, "ProvisionedThroughputExceededException"),
    "ddb-throttling": Fault("dynamodb", 400, "ThrottlingException"),
    "ddb-internal": Fault("dynamodb", 500, "InternalServerError"),
    "ddb-unavailable": Fault("dynamodb", 503, "ServiceUnavailable"),
    "ddb-transaction-conflict": Fault("dynamodb", 400, "TransactionConflictException"),
    "ddb-transaction-canceled-conflict": Fault(
        "dynamodb",
        400,
        "TransactionCanceledException",
        reasons=("TransactionConflict", "None"),
        operations=("TransactWriteItems", "TransactGetItems"),
    ),
    "ddb-read-timeout": Fault("dynamodb", raises="read_timeout"),
    "ddb-connect": Fault("dynamodb", raises="connect"),
    "sm-internal": Fault("secretsmanager", 500, "InternalServiceError"),
    "sm-throttling": Fault("secretsmanager", 400, "ThrottlingException"),
    "sm-read-timeout": Fault("secretsmanager", raises="read_timeout"),
}


@dataclass
class Injector:
    """Counts logical calls and faulted attempts; fails calls chosen by ``fault`` and ``nth``."""

    fault: Fault
    nth: int | None = None  # fail only the nth logical call (all its attempts) of the service
    calls: list[str] = field(default_factory=list)
    faulted: list[str] = field(default_factory=list)

    def before_call(self, **kwargs: Any) -> None:
        self.calls.append(kwargs["event_name"].rsplit(".", 1)[-1])

    def before_send(self, request: Any, **kwargs: Any) -> Any:
        operation = kwargs["event_name"].rsplit(".", 1)[-1]
        if not self.fault.applies_to(operation):
            return None
        if self.nth is not None and len(self.calls) != self.nth:
            return None
        self.faulted.append(operation)
        response = self.fault.respond(request)  # raises for timeouts: nothing else runs then
        # Every before-send handler runs (botocore takes the first response): keep moto's from
        # executing the request we answer, until ``resume_emulator`` (registered last) runs.
        _stubber().enabled = False
        return response

    def resume_emulator(self, **_: Any) -> None:
        _stubber().enabled = True


def _stubber() -> Any:
    from moto.core.models import botocore_stubber

    return botocore_stubber


@contextmanager
def injected(fault: Fault, nth: int | None = None) -> Iterator[Injector]:
    """Fresh services (cold caches: every read really happens) with the fault armed."""
    from chalicelib.config import settings

    services.reset()
    settings()  # read outside the test client's per-call environment overlay
    injector = Injector(fault, nth)
    events = aws_clients.client(fault.service).meta.events
    events.register("before-call", injector.before_call, unique_id="fault-count")
    events.register_first("before-send", injector.before_send, unique_id="fault-send")
    events.register_last("before-send", injector.resume_emulator, unique_id="fault-resume")
    try:
        yield injector
    finally:
        events.unregister("before-call", unique_id="fault-count")
        events.unregister("before-send", unique_id="fault-send")
        events.unregister("before-send", unique_id="fault-resume")
        _stubber().enabled = True


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    from botocore.retries import standard

    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", lambda self, ctx: 0)


# --- the world and the flows ------------------------------------------------------------


def snapshot(ddb: Any) -> list[Any]:
    """Every item of both tables, through a client the faults do not touch."""
    out = []
    for name in (f"tessera-{STAGE}", f"tessera-demo-{STAGE}"):
        items = ddb.scan(TableName=name, ConsistentRead=True)["Items"]
        out.append(sorted(json.dumps(i, sort_keys=True) for i in items))
    return out


@dataclass
class World:
    app: Any
    session: Any
    pw_client: dict[str, Any]
    rs_client: dict[str, Any]  # client_credentials + introspection (a resource server)
    tokens: dict[str, Any]
    ddb: Any = None  # a boto3 client of the test's own, for snapshots


@pytest.fixture
def world(app_client, aws, make_client, make_user) -> World:
    pw = make_client(grant_types=["password", "refresh_token"])
    rs = make_client(grant_types=["client_credentials"], introspect=True)
    make_user("alice", PASSWORD)
    r = form_post(
        app_client,
        "/oauth2/token",
        {"grant_type": "password", "username": "alice", "password": PASSWORD},
        {"Authorization": basic(pw["client_id"], pw["client_secret"])},
    )
    assert r.status_code == 200, r.body
    return World(app_client, aws, pw, rs, body(r), aws.client("dynamodb"))


def _auth(c: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": basic(c["client_id"], c["client_secret"])}


def token_client_credentials(w: World) -> Any:
    return form_post(
        w.app, "/oauth2/token", {"grant_type": "client_credentials"}, _auth(w.rs_client)
    )


def token_password(w: World) -> Any:
    params = {"grant_type": "password", "username": "alice", "password": PASSWORD}
    return form_post(w.app, "/oauth2/token", params, _auth(w.pw_client))


def token_refresh(w: World) -> Any:
    params = {"grant_type": "refresh_token", "refresh_token": w.tokens["refresh_token"]}
    return form_post(w.app, "/oauth2/token", params, _auth(w.pw_client))


def revoke_refresh_token(w: World) -> Any:
    return form_post(
        w.app, "/oauth2/revoke", {"token": w.tokens["refresh_token"]}, _auth(w.pw_client)
    )


def revoke_access_token(w: World) -> Any:
    return form_post(
        w.app, "/oauth2/revoke", {"token": w.tokens["access_token"]}, _auth(w.pw_client)
    )


def introspect_access_token(w: World) -> Any:
    return form_post(
        w.app, "/oauth2/introspect", {"token": w.tokens["access_token"]}, _auth(w.rs_client)
    )


def introspect_refresh_token(w: World) -> Any:
    return form_post(
        w.app, "/oauth2/introspect", {"token": w.tokens["refresh_token"]}, _auth(w.rs_client)
    )


def metadata(w: World) -> Any:
    return w.app.http.get("/.well-known/oauth-authorization-server")


def jwks(w: World) -> Any:
    return w.app.http.get("/.well-known/jwks.json")


def demo_api(w: World) -> Any:
    return w.app.http.get(
        "/people", headers={"Authorization": f"Bearer {w.tokens['access_token']}"}
    )


HTTP_FLOWS: dict[str, Callable[[World], Any]] = {
    f.__name__: f
    for f in (
        token_client_credentials,
        token_password,
        token_refresh,
        revoke_refresh_token,
        revoke_access_token,
        introspect_access_token,
        introspect_refresh_token,
        metadata,
        jwks,
    )
}


def assert_unavailable(resp: Any) -> None:
    assert resp.status_code == 503, resp.body
    assert int(resp.headers["Retry-After"]) > 0
    assert resp.headers["Content-Type"] == "application/json"
    assert body(resp)["error"] == "temporarily_unavailable"
    assert "Traceback" not in resp.body.decode()


# --- the tests --------------------------------------------------------------------------------


def test_a_brownout_ends_in_503_before_the_api_function_times_out(aws):
    """Bounded retries whose worst case (every attempt timing out, plus the first two backoffs of
    standard mode, at most 1 s and 2 s) ends inside the API function's own timeout in every
    deployed stage, so the caller gets 503 + Retry-After, never a Lambda timeout."""
    import json
    from pathlib import Path

    config = json.loads((Path(__file__).parent.parent / ".chalice" / "config.json").read_text())
    for name in ("dynamodb", "secretsmanager"):
        options = vars(aws_clients.client(name).meta.config)  # as botocore built the client
        assert options["retries"] == {"mode": "standard", "total_max_attempts": 3}
        attempts = options["retries"]["total_max_attempts"]
        worst = attempts * (options["connect_timeout"] + options["read_timeout"]) + 1 + 2
        for stage in ("dev", "prod"):
            api_timeout = config["stages"][stage].get("lambda_timeout", config["lambda_timeout"])
            assert worst < api_timeout < 29  # and API Gateway's integration timeout above it


def fresh_tokens(w: World) -> None:
    """A new login, after a case in which the request succeeded and may have used the tokens."""
    resp = token_password(w)
    assert resp.status_code == 200, resp.body
    w.tokens = body(resp)


def check_case(w: World, flow: Callable[[World], Any], fault: Fault, nth: int | None) -> None:
    before = snapshot(w.ddb)
    with injected(fault, nth) as injector:
        resp = flow(w)
    if not injector.faulted:  # this flow never makes the failing call: it just works
        assert resp.status_code == 200, resp.body
        fresh_tokens(w)
        return
    assert_unavailable(resp)
    after = snapshot(w.ddb)
    changed = [
        (sorted(set(a) - set(b)), sorted(set(b) - set(a)))
        for a, b in zip(after, before, strict=True)
    ]
    assert after == before, f"written (new, old): {changed}"


@pytest.mark.parametrize("flow_name", sorted(HTTP_FLOWS))
def test_endpoint_answers_503_and_keeps_state_when_backend_fails(world, subtests, flow_name):
    for fault_name, fault in sorted(FAULTS.items()):
        with subtests.test(fault=fault_name):
            check_case(world, HTTP_FLOWS[flow_name], fault, None)


WRITING_FLOWS = ["token_password", "token_refresh", "revoke_refresh_token", "revoke_access_token"]


@pytest.mark.parametrize("flow_name", WRITING_FLOWS)
def test_failure_of_any_single_call_leaves_state_unchanged(world, subtests, flow_name):
    for fault_name, calls in (("ddb-internal", 7), ("sm-internal", 3)):
        for nth in range(1, calls + 1):
            with subtests.test(fault=fault_name, call=nth):
                check_case(world, HTTP_FLOWS[flow_name], FAULTS[fault_name], nth)


def test_throttled_call_is_retried_before_giving_up(world):
    with injected(FAULTS["ddb-throughput"]) as injector:
        assert_unavailable(token_client_credentials(world))
    assert injector.faulted == ["GetItem"] * 3


def test_read_timeout_is_retried_before_giving_up(world):
    with injected(FAULTS["sm-read-timeout"]) as injector:
        assert_unavailable(jwks(world))
    assert len(injector.faulted) == 3


def test_introspection_never_says_active_on_a_fault(world):
    with injected(FAULTS["sm-internal"]):
        resp = introspect_access_token(world)
    assert resp.status_code == 503
    assert "active" not in body(resp)


def test_authorizer_denies_when_backend_fails(world, monkeypatch, subtests):
    from chalicelib import authorizer

    monkeypatch.setenv("TESSERA_AUTHORIZER_CHECKS_REVOCATION", "true")
    header = f"Bearer {world.tokens['access_token']}"
    for fault_name, fault in sorted(FAULTS.items()):
        with subtests.test(fault=fault_name), injected(fault) as injector:
            try:
                answer: Any = authorizer.handle(header, ARN)
            except authorizer.AuthorizerUnavailable as exc:
                answer = exc
            if not injector.faulted:
                assert answer["policyDocument"]["Statement"][0]["Effect"] == "Allow"
            else:
                assert isinstance(answer, authorizer.AuthorizerUnavailable)


def test_demo_api_is_not_reached_when_the_authorizer_faults(world, monkeypatch, subtests):
    from chalicelib import authorizer

    monkeypatch.setenv("TESSERA_AUTHORIZER_CHECKS_REVOCATION", "true")
    for fault_name in ("ddb-internal", "sm-internal", "ddb-read-timeout"):
        with subtests.test(fault=fault_name), injected(FAULTS[fault_name]) as injector:
            # The test client lets the authorizer's error through (API Gateway answers it with
            # its 503 gateway response); the route never runs and no data leaves.
            with pytest.raises(authorizer.AuthorizerUnavailable):
                demo_api(world)
            assert injector.faulted
