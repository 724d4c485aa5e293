"""chalicelib.aws_lite: the standard-library AWS client of the deployed functions.

Signing is checked against AWS's published SigV4 test suite and against botocore's signer; the
calls run for real against moto's emulator server (mock_aws only intercepts botocore) and are
compared with botocore's answers to the same calls; retries and fault mapping run against a closed
port and a tiny local server that answers errors.
"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chalicelib import aws, aws_lite, services
from chalicelib.config import ConfigError, aws_environment, settings
from chalicelib.faults import BackendUnavailable, ServiceError
from chalicelib.grant_store import GrantStore, family_key
from chalicelib.secret_store import SecretStore
from tests.lite_support import STAGE, TABLE, Session, emulator_server, free_port, lite_env

SUITE_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"  # AWS's published example secret


# -- Signature Version 4 --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "signature"),
    [
        # AWS SigV4 test suite, get-vanilla and post-vanilla (example.amazonaws.com, 20150830).
        ("GET", "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),
        ("POST", "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"),
    ],
)
def test_signature_matches_the_published_sigv4_test_suite(method: str, signature: str) -> None:
    header = aws_lite.authorization(
        method=method,
        path="/",
        query="",
        headers={"Host": "example.amazonaws.com", "X-Amz-Date": "20150830T123600Z"},
        body=b"",
        access_key="AKIDEXAMPLE",
        secret_key=SUITE_KEY,
        region="us-east-1",
        service="service",
        amz_date="20150830T123600Z",
    )
    assert header == (
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
        f"SignedHeaders=host;x-amz-date, Signature={signature}"
    )


def test_signature_of_a_json_call_with_a_session_token_matches_botocore(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import datetime

    import botocore.auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    body = b'{"SecretId":"tessera/lite/public-keys","VersionStage":"AWSCURRENT"}'
    headers = {
        "host": "secretsmanager.eu-west-1.amazonaws.com",
        "content-type": "application/x-amz-json-1.1",
        "x-amz-date": "20261127T101500Z",
        "x-amz-target": "secretsmanager.GetSecretValue",
        "x-amz-security-token": "session-token",
    }
    ours = aws_lite.authorization(
        method="POST",
        path="/",
        query="",
        headers=headers,
        body=body,
        access_key="AKIDEXAMPLE",
        secret_key=SUITE_KEY,
        region="eu-west-1",
        service="secretsmanager",
        amz_date="20261127T101500Z",
    )
    # botocore adds x-amz-date (from its clock) and the token header itself, and signs host.
    request = AWSRequest(
        method="POST",
        url="https://secretsmanager.eu-west-1.amazonaws.com/",
        data=body,
        headers={"content-type": headers["content-type"], "x-amz-target": headers["x-amz-target"]},
    )
    at = datetime.datetime(2026, 11, 27, 10, 15, 0)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: at)
    credentials = Credentials("AKIDEXAMPLE", SUITE_KEY, "session-token")
    botocore.auth.SigV4Auth(credentials, "secretsmanager", "eu-west-1").add_auth(request)
    assert ours == request.headers["Authorization"]


# -- against moto's emulator server, side by side with botocore ---------------------------------


@pytest.fixture(scope="module")
def emulator() -> Iterator[Session]:
    with emulator_server() as session:
        yield session


def test_get_secret_value_answers_what_botocore_answers(emulator: Session) -> None:
    sm = emulator.client("secretsmanager")
    sm.put_secret_value(SecretId=f"tessera/{STAGE}/public-keys", SecretString='{"keys": []}')
    lite = aws_lite.Client("secretsmanager", lite_env(emulator.endpoint, token="session"))
    ask = {"SecretId": f"tessera/{STAGE}/public-keys", "VersionStage": "AWSCURRENT"}
    ours = lite.get_secret_value(**ask)
    theirs = sm.get_secret_value(**ask)
    for name in ("ARN", "Name", "VersionId", "SecretString", "VersionStages"):
        assert ours[name] == theirs[name]


def test_secret_store_reads_the_same_text_over_either_client(emulator: Session) -> None:
    name = f"tessera/{STAGE}/public-keys"
    lite = aws_lite.Client("secretsmanager", lite_env(emulator.endpoint))
    assert SecretStore(lite).read(name) == SecretStore(emulator.client("secretsmanager")).read(name)


def test_unknown_secret_is_backend_unavailable_with_the_service_error_code(
    emulator: Session,
) -> None:
    lite = aws_lite.Client("secretsmanager", lite_env(emulator.endpoint))
    with pytest.raises(BackendUnavailable) as caught:
        SecretStore(lite).read("tessera/nowhere/public-keys")
    assert (caught.value.service, caught.value.reason) == (
        "secretsmanager",
        "ResourceNotFoundException",
    )


def test_batch_get_item_answers_what_botocore_answers(emulator: Session) -> None:
    ddb = emulator.client("dynamodb")
    GrantStore(ddb, TABLE).deny_jti("jti-batch", exp=2_000_000_000, client_id="c", now=1)
    keys = [
        {"pk": {"S": "JTI#jti-batch"}, "sk": {"S": "JTI"}},
        {"pk": {"S": "JTI#absent"}, "sk": {"S": "JTI"}},
    ]
    ask = {"RequestItems": {TABLE: {"Keys": keys, "ConsistentRead": True}}}
    lite = aws_lite.Client("dynamodb", lite_env(emulator.endpoint))
    ours = lite.batch_get_item(**ask)
    theirs = ddb.batch_get_item(**ask)
    assert ours["Responses"] == theirs["Responses"]
    assert not ours.get("UnprocessedKeys")


@pytest.mark.parametrize(
    ("jti", "sid", "revoked"),
    [
        ("denied-jti", None, True),
        ("fresh-jti", None, False),
        ("fresh-jti", "live-family", False),
        ("fresh-jti", "revoked-family", True),
        ("fresh-jti", "missing-family", True),
    ],
)
def test_revocation_check_over_lite_agrees_with_botocore(
    emulator: Session, jti: str, sid: str | None, revoked: bool
) -> None:
    ddb = emulator.client("dynamodb")
    GrantStore(ddb, TABLE).deny_jti("denied-jti", exp=2_000_000_000, client_id="c", now=1)
    for family, is_revoked in (("live-family", False), ("revoked-family", True)):
        item = dict(family_key(family), revoked={"BOOL": is_revoked})
        ddb.put_item(TableName=TABLE, Item=item)
    lite = GrantStore(aws_lite.Client("dynamodb", lite_env(emulator.endpoint)), TABLE)
    assert lite.is_revoked(jti, sid) is revoked
    assert GrantStore(ddb, TABLE).is_revoked(jti, sid) is revoked


# -- retries and fault mapping --------------------------------------------------------------------


class _Scripted(http.server.ThreadingHTTPServer):
    """Answers each POST with the next (status, body) of a script, then repeats the last."""

    def __init__(self, script: list[tuple[int, dict[str, Any]]]) -> None:
        self.script = list(script)
        self.seen: list[dict[str, str]] = []
        self.bodies: list[dict[str, Any]] = []
        super().__init__(("127.0.0.1", 0), _ScriptedHandler)


class _ScriptedHandler(http.server.BaseHTTPRequestHandler):
    server: _Scripted
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.server.seen.append({k.lower(): v for k, v in self.headers.items()})
        self.server.bodies.append(json.loads(body))
        status, doc = (
            self.server.script.pop(0) if len(self.server.script) > 1 else (self.server.script[0])
        )
        # "_drop": answer, then close the connection without saying so (an idle timeout).
        self.close_connection = bool(doc.get("_drop"))
        data = json.dumps({k: v for k, v in doc.items() if k != "_drop"}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/x-amz-json-1.0")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def scripted() -> Iterator[Any]:
    servers: list[_Scripted] = []

    def start(
        script: list[tuple[int, dict[str, Any]]],
    ) -> tuple[_Scripted, aws_lite.Client, list[float]]:
        server = _Scripted(script)
        servers.append(server)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        sleeps: list[float] = []
        endpoint = f"http://127.0.0.1:{server.server_address[1]}"
        return server, aws_lite.Client("dynamodb", lite_env(endpoint), sleep=sleeps.append), sleeps

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


THROTTLED = (
    400,
    {"__type": "com.amazonaws.dynamodb.v20120810#ThrottlingException", "message": "slow down"},
)


def test_server_errors_are_retried_three_times_then_backend_unavailable(scripted: Any) -> None:
    server, lite, sleeps = scripted([(500, {"__type": "InternalServerError"})])
    with pytest.raises(BackendUnavailable) as caught:
        lite.batch_get_item(RequestItems={})
    assert (caught.value.service, caught.value.reason) == ("dynamodb", "InternalServerError")
    assert len(server.seen) == 3
    assert len(sleeps) == 2
    assert all(0 <= s <= aws_lite.BACKOFF_CAP for s in sleeps)


def test_throttling_is_retried_and_a_later_success_is_returned(scripted: Any) -> None:
    server, lite, _ = scripted([THROTTLED, (200, {"Responses": {"t": []}})])
    assert lite.batch_get_item(RequestItems={}) == {"Responses": {"t": []}}
    assert len(server.seen) == 2


def test_client_errors_are_not_retried_and_keep_their_document(scripted: Any) -> None:
    failed = {
        "__type": "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException",
        "message": "The conditional request failed",
        "Item": {"pk": {"S": "x"}},
    }
    server, lite, sleeps = scripted([(400, failed)])
    with pytest.raises(ServiceError) as caught:
        lite.put_item(TableName="t", Item={})
    assert aws.error_code(caught.value) == "ConditionalCheckFailedException"
    assert aws.error_response(caught.value)["Item"] == {"pk": {"S": "x"}}
    assert caught.value.response["Error"]["Message"] == "The conditional request failed"
    assert len(server.seen) == 1
    assert sleeps == []


def test_unexpected_client_error_in_a_store_is_backend_unavailable(scripted: Any) -> None:
    not_found = {"__type": "com.amazonaws.dynamodb.v20120810#ResourceNotFoundException"}
    _, lite, _ = scripted([(400, not_found)])
    with pytest.raises(BackendUnavailable) as caught:
        GrantStore(lite, TABLE).is_revoked("j", None)
    assert (caught.value.service, caught.value.reason) == ("dynamodb", "ResourceNotFoundException")


def test_transaction_retries_carry_one_idempotency_token(scripted: Any) -> None:
    """A retried TransactWriteItems (its first answer lost) must not run against its own outcome:
    like botocore, one ClientRequestToken per call, the same on every attempt."""
    server, lite, _ = scripted([(500, {"__type": "InternalServerError"}), (200, {})])
    lite.transact_write_items(TransactItems=[])
    lite.transact_write_items(TransactItems=[])
    tokens = [b["ClientRequestToken"] for b in server.bodies]
    assert tokens[0] == tokens[1] != tokens[2]
    assert all(1 <= len(t) <= 36 for t in tokens)


def test_requests_are_signed_json_protocol_posts(scripted: Any) -> None:
    server, lite, _ = scripted([(200, {})])
    lite.batch_get_item(RequestItems={})
    seen = server.seen[0]
    assert seen["x-amz-target"] == "DynamoDB_20120810.BatchGetItem"
    assert seen["content-type"] == "application/x-amz-json-1.0"
    assert seen["authorization"].startswith(
        "AWS4-HMAC-SHA256 Credential=testing/" + seen["x-amz-date"][:8] + "/us-east-1/dynamodb/"
    )


def test_one_kept_alive_connection_serves_successive_calls(scripted: Any) -> None:
    _, lite, _ = scripted([(200, {})])
    lite.batch_get_item(RequestItems={})
    conn = lite._conn
    lite.batch_get_item(RequestItems={})
    assert conn is not None
    assert lite._conn is conn


def test_connection_the_server_closed_while_idle_is_reopened_transparently(scripted: Any) -> None:
    server, lite, sleeps = scripted([(200, {"_drop": True}), (200, {"Responses": {}})])
    lite.batch_get_item(RequestItems={})
    assert lite.batch_get_item(RequestItems={}) == {"Responses": {}}
    assert len(server.seen) == 2
    assert sleeps == []


def test_closed_port_is_backend_unavailable_after_three_attempts() -> None:
    sleeps: list[float] = []
    lite = aws_lite.Client(
        "secretsmanager", lite_env(f"http://127.0.0.1:{free_port()}"), sleep=sleeps.append
    )
    with pytest.raises(BackendUnavailable) as caught:
        lite.get_secret_value(SecretId="x")
    assert caught.value.service == "secretsmanager"
    assert caught.value.reason == "ConnectionRefusedError"
    assert len(sleeps) == 2


# -- configuration and wiring ---------------------------------------------------------------------


def test_service_endpoint_variable_wins_over_the_general_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:2")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "a")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "b")
    env = aws_environment()
    assert aws_lite.Client("dynamodb", env).endpoint == "http://127.0.0.1:2"
    assert aws_lite.Client("secretsmanager", env).endpoint == "http://127.0.0.1:1"


def test_default_endpoint_is_the_regional_https_one(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SECRETS_MANAGER", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_REGION", "eu-central-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "a")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "b")
    client = aws_lite.Client("secretsmanager", aws_environment())
    assert client.endpoint == "https://secretsmanager.eu-central-1.amazonaws.com"


def test_missing_credentials_are_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
    with pytest.raises(ConfigError):
        aws_environment()


def test_unknown_aws_client_setting_is_a_configuration_error(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TESSERA_AWS_CLIENT", "boto4")
    settings.cache_clear()
    try:
        with pytest.raises(ConfigError):
            settings()
    finally:
        settings.cache_clear()


@pytest.mark.parametrize(("choice", "kind"), [("lite", aws_lite.Client), ("", type(None))])
def test_runtime_client_follows_the_setting(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, choice: str, kind: type
) -> None:
    monkeypatch.setenv("TESSERA_AWS_CLIENT", choice)
    services.reset()
    try:
        client = services.runtime_aws("dynamodb")
        if kind is aws_lite.Client:
            assert isinstance(client, aws_lite.Client)
        else:
            assert not isinstance(client, aws_lite.Client)
            assert client is aws.client("dynamodb")
    finally:
        services.reset()


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """A scripted server over TLS with a certificate for ``localhost`` only; yields its port
    and a CA bundle that trusts it."""
    from bench import tls

    cert, key = tls.self_signed(tmp_path)
    server = _Scripted([(200, {"SecretString": "s"})])
    server.socket = tls.server_context(cert, key).wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1], tls.trust_bundle(tmp_path, cert)
    finally:
        server.shutdown()
        server.server_close()


def _over_tls(host: str, port: int) -> dict[str, Any]:
    aws_lite.reset()  # the TLS context is built once per container, from SSL_CERT_FILE
    lite = aws_lite.Client(
        "secretsmanager", lite_env(f"https://{host}:{port}"), sleep=lambda s: None
    )
    try:
        return lite.get_secret_value(SecretId="x")
    finally:
        lite.close()
        aws_lite.reset()


def test_https_endpoint_with_a_trusted_certificate_answers(
    tls_server: tuple[int, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    port, bundle = tls_server
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    assert _over_tls("localhost", port) == {"SecretString": "s"}


def test_https_endpoint_with_an_untrusted_certificate_is_refused(
    tls_server: tuple[int, Path],
) -> None:
    port, _ = tls_server
    with pytest.raises(BackendUnavailable) as caught:
        _over_tls("localhost", port)
    assert caught.value.reason == "SSLCertVerificationError"


def test_https_endpoint_whose_certificate_names_another_host_is_refused(
    tls_server: tuple[int, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    port, bundle = tls_server
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    with pytest.raises(BackendUnavailable) as caught:
        _over_tls("127.0.0.1", port)  # the certificate names localhost only
    assert caught.value.reason == "SSLCertVerificationError"


def test_every_store_of_the_functions_uses_the_selected_client(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TESSERA_AWS_CLIENT", "lite")
    monkeypatch.setenv("TESSERA_DEMO_TABLE", "tessera-demo-lite")
    services.reset()
    try:
        stores = [
            services.client_store(),
            services.user_store(),
            services.grant_store(),
            services.code_store(),
            services.demo_store(),
            services.login_guard(),
        ]
        assert all(isinstance(store._ddb, aws_lite.Client) for store in stores)
        assert isinstance(services.secret_store()._sm, aws_lite.Client)
    finally:
        services.reset()


def test_admin_command_uses_botocore_whatever_the_stage_deploys(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An operator's credentials may come from a profile or SSO, which only botocore reads."""
    import os

    from chalicelib import admin

    monkeypatch.setattr(os, "environ", dict(os.environ))
    try:
        admin.use_stage("prod")
        assert settings().aws_client == "botocore"
        assert not isinstance(services.runtime_aws("dynamodb"), aws_lite.Client)
    finally:
        services.reset()
