"""Shared fixtures: the AWS world (moto, provisioned from infra/template.yaml), the app, a clock.

Each test gets a fresh ``mock_aws`` world and fresh service caches, so nothing leaks between tests.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import boto3
import pytest
from moto import mock_aws

from chalicelib import services
from chalicelib.clock import FakeClock
from infra.provision import provision
from infra.seed import seed_secrets

STAGE = "test"
ISSUER = "https://auth.test.example"
AUDIENCE = "https://api.test.example"
T0 = 1_800_000_000.0

TEST_ENV = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "TESSERA_STAGE": STAGE,
    "TESSERA_ISSUER": ISSUER,
    "TESSERA_AUDIENCE": AUDIENCE,
    "TESSERA_TABLE": f"tessera-{STAGE}",
    "TESSERA_DEMO_TABLE": f"tessera-demo-{STAGE}",
    "TESSERA_SIGNING_KEYS_SECRET": f"tessera/{STAGE}/signing-keys",
    "TESSERA_PUBLIC_KEYS_SECRET": f"tessera/{STAGE}/public-keys",
    "TESSERA_PEPPER_SECRET": f"tessera/{STAGE}/pepper",
}


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    # With AWS_ENDPOINT_URL set, mock_aws does not intercept: clear it.
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_ENDPOINT_URL_DYNAMODB"):
        monkeypatch.delenv(name, raising=False)
    for k, v in TEST_ENV.items():
        monkeypatch.setenv(k, v)
    return dict(TEST_ENV)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def aws(env: dict[str, str], clock: FakeClock) -> Iterator[boto3.Session]:
    with mock_aws():
        session = boto3.Session(region_name="us-east-1")
        provision(session, STAGE)
        seed_secrets(session, STAGE, now=int(clock.now()))
        services.set_clock(clock)
        yield session
        services.set_clock(clock)  # also resets every cached service


@pytest.fixture
def app_client(aws: boto3.Session) -> Iterator[Any]:
    from chalice.test import Client

    import app as app_module
    from chalicelib.config import settings

    # The test client overlays the "local" stage's variables (.chalice/config.json) on os.environ
    # during each call; read the settings now, from the test environment, so a first read inside
    # a call cannot pick up the local stack's table and audience.
    settings()
    with Client(app_module.app, stage_name="local") as c:
        yield c


def basic(client_id: str, secret: str) -> str:
    from urllib.parse import quote_plus

    raw = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
    return "Basic " + base64.b64encode(raw).decode()


def form_post(
    app_client: Any,
    path: str,
    params: dict[str, str] | list[tuple[str, str]],
    headers: dict[str, str] | None = None,
) -> Any:
    h = {"Content-Type": "application/x-www-form-urlencoded"}
    h.update(headers or {})
    return app_client.http.post(path, headers=h, body=urlencode(params))


def body(resp: Any) -> Any:
    return json.loads(resp.body)


@pytest.fixture
def make_client(aws: boto3.Session) -> Any:
    from chalicelib import admin

    def make(**kwargs: Any) -> dict[str, Any]:
        kwargs.setdefault("name", "test app")
        kwargs.setdefault("grant_types", ["client_credentials"])
        kwargs.setdefault("scopes", ["people:read", "articles:read"])
        return admin.create_client(services.client_store(), now=int(T0), **kwargs)

    return make


@pytest.fixture
def make_user(aws: boto3.Session) -> Any:
    from chalicelib import admin

    def make(username: str = "alice", password: str = "correct horse battery") -> dict[str, Any]:
        return admin.create_user(services.user_store(), username, password, now=int(T0))

    return make


os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
