"""Functional tests' fixtures: the AWS world (moto in-process, provisioned from
infra/template.yaml), the app, a clock, clients and users.

Each test gets a fresh ``mock_aws`` world (a copy of one provisioned world) and fresh service
caches, so nothing leaks between tests.
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

from chalicelib.core.clock import FakeClock
from chalicelib.web import services
from infra.local_stack import track_current_version
from infra.provision import provision
from infra.seed import LOCAL_DEMO_API, seed_demo_rules, seed_secrets

STAGE = "test"
ISSUER = "https://auth.test.example"
AUDIENCE = "https://api.test.example"
T0 = 1_800_000_000.0
# The demo API as the tests' API Gateway events name it (<api-id>/<stage>). The demo's rules are
# seeded for it, for the names other tests' events use (bench.events' too), for Chalice's own
# local ARNs (the test client without infra/local_gateway.py) and for the local gateway's name.
TEST_API = "a1b2c3d4e5/api"
DEMO_APIS = (TEST_API, "abcdef1234/api", "abc123defg/api", "ymy8tbxw7b/api", LOCAL_DEMO_API)

TEST_ENV = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "TESSERA_STAGE": STAGE,
    "TESSERA_ISSUER": ISSUER,
    "TESSERA_AUDIENCE": AUDIENCE,
    "TESSERA_TABLE": f"tessera-{STAGE}",
    "TESSERA_DEMO": "true",
    "TESSERA_DEMO_TABLE": f"tessera-demo-{STAGE}",
    "TESSERA_SIGNING_KEYS_SECRET": f"tessera/{STAGE}/signing-keys",
    "TESSERA_PUBLIC_KEYS_SECRET": f"tessera/{STAGE}/public-keys",
    "TESSERA_PEPPER_SECRET": f"tessera/{STAGE}/pepper",
    "TESSERA_PASSWORD_GRANT": "true",
}

# app.py declares the demo routes only when TESSERA_DEMO is on at its import
# (chalicelib.core.config's
# demo_enabled): on for the whole test process, as in the local and dev stages.
os.environ.setdefault("TESSERA_DEMO", "true")
# Secrets Manager's labels as AWS keeps them, which moto does not by itself (see the function).
track_current_version()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist (``make test``), the tests of the packaged artifact (test_infra's
    ``packaged`` fixture) share one worker: ``chalice package`` writes its dependency cache in
    .chalice/deployments in place, so two workers packaging at once could read a half-written zip.
    """
    if not config.pluginmanager.hasplugin("xdist"):
        return
    for item in items:
        if "packaged" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group("package"))


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


# moto's backends of a provisioned and seeded world, per (stage, seed time, key algorithm): see
# _provisioned_world.
_WORLDS: dict[tuple[str, int, str], list[tuple[Any, str, dict[str, Any]]]] = {}
_REGION = "us-east-1"


def _provisioned_world(session: boto3.Session, now: int, alg: str = "ES256") -> None:
    """Fill the active (empty) ``mock_aws`` world: the template's resources, seeded secrets and the
    demo API's authorizer rules.

    Provisioning costs ~0.3 s of CPU (moto makes an RSA-2048 key for every KMS key, plus the key
    sets), so the first call in a process provisions and keeps a deep copy of moto's regional
    backends; later calls give each test its own deep copy of that state (~5 ms): the same tables,
    secrets, versions and staging labels as a fresh provisioning, with the same key material.
    ``TESSERA_TEST_FRESH_WORLD=1`` provisions every time (to rule the copy out).
    """
    import copy

    from moto.core.base_backend import BackendDict
    from moto.core.models import MockAWS

    key = (STAGE, now, alg)
    saved = _WORLDS.get(key)
    outermost = MockAWS._nested_count == 1  # else the world is not empty: no copy of it
    if saved is None or not outermost or os.environ.get("TESSERA_TEST_FRESH_WORLD") == "1":
        provision(session, STAGE)
        seed_secrets(session, STAGE, now=now, alg=alg)
        seed_demo_rules(session, STAGE, DEMO_APIS, now=now)
        if not outermost:
            return
        _WORLDS[key] = [
            (backends, account, copy.deepcopy(regional[_REGION].__dict__))
            for backends in BackendDict._instances  # type: ignore[misc]
            for account, regional in backends.items()
            if _REGION in regional.keys()  # noqa: SIM118 (`in` also matches regions not created)
        ]
        return
    for backends, account, state in saved:
        backends[account][_REGION].__dict__ = copy.deepcopy(state)


@pytest.fixture
def signing_alg() -> str:
    """The stage's TESSERA_SIGNING_ALG, and the algorithm of the seeded keys. A module may
    override it with params (tests/functional/test_rotation.py runs every case for both
    algorithms)."""
    return "ES256"


@pytest.fixture
def aws(
    env: dict[str, str],
    clock: FakeClock,
    signing_alg: str,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[boto3.Session]:
    monkeypatch.setenv("TESSERA_SIGNING_ALG", signing_alg)
    with mock_aws():
        session = boto3.Session(region_name=_REGION)
        _provisioned_world(session, int(clock.now()), signing_alg)
        services.set_clock(clock)
        yield session
        services.set_clock(clock)  # also resets every cached service


@pytest.fixture
def app_client(aws: boto3.Session) -> Iterator[Any]:
    from chalice.test import Client

    import app as app_module
    from chalicelib.core.config import settings

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
    from chalicelib.ops import admin_records as admin

    def make(**kwargs: Any) -> dict[str, Any]:
        kwargs.setdefault("name", "test app")
        kwargs.setdefault("grant_types", ["client_credentials"])
        kwargs.setdefault("scopes", ["people:read", "articles:read"])
        return admin.create_client(services.client_store(), now=int(T0), **kwargs)

    return make


# Argon2id hashes made by make_user, per password (see make_user).
_USER_HASHES: dict[str, str] = {}


def _shared_hash(password: str) -> str:
    from chalicelib.tokens.passwords import hash_password

    found = _USER_HASHES.get(password)
    if found is None:
        found = _USER_HASHES[password] = hash_password(password)
    return found


@pytest.fixture
def make_user(aws: boto3.Session) -> Any:
    """Create a user through ``admin.create_user``.

    Hashing costs ~30 ms of CPU and hundreds of tests create users, so the Argon2id hash of each
    password is made once per process and reused: a real hash with the real parameters (sign-in
    verifies it for real), only its salt is shared between users with the same password. The
    hashing itself is tested through ``admin`` and ``passwords`` directly.
    """
    from chalicelib.ops import admin_records as admin

    def make(username: str = "alice", password: str = "correct horse battery") -> dict[str, Any]:
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(admin, "hash_password", _shared_hash)
            return admin.create_user(services.user_store(), username, password, now=int(T0))

    return make


os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")


def _share_botocore_data() -> None:
    """One botocore data loader for the whole test process.

    Every test resets the services, so the app builds new botocore sessions and clients; each new
    session would parse the service models and endpoint rules from JSON again (~0.1 s of CPU per
    client). The loader only reads botocore's static data files, so sharing it changes nothing
    else: sessions, credentials and clients stay per test.
    """
    import functools

    import botocore.loaders
    import botocore.session

    botocore.session.create_loader = functools.cache(botocore.loaders.create_loader)


_share_botocore_data()
