"""The ``aws`` fixture's world: a copy of one provisioned world must be what provisioning gives.

``conftest._provisioned_world`` provisions once per process and then deep-copies moto's backends
into each test's ``mock_aws``. These tests compare a copied world with a freshly provisioned one
(so a moto upgrade that breaks the copy fails here, not as odd failures elsewhere) and check that
what one world holds never reaches the next.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests.functional.conftest import T0, TEST_ENV, _provisioned_world

TABLE = TEST_ENV["TESSERA_TABLE"]
SIGNING = TEST_ENV["TESSERA_SIGNING_KEYS_SECRET"]


@contextmanager
def world(monkeypatch: pytest.MonkeyPatch, *, fresh: bool) -> Iterator[boto3.Session]:
    with monkeypatch.context() as mp:
        if fresh:
            mp.setenv("TESSERA_TEST_FRESH_WORLD", "1")
        else:
            mp.delenv("TESSERA_TEST_FRESH_WORLD", raising=False)
        with mock_aws():
            session = boto3.Session(region_name="us-east-1")
            _provisioned_world(session, int(T0))
            yield session


def describe(session: boto3.Session) -> dict[str, Any]:
    """Everything provisioning and seeding decide, without ids and timestamps."""
    ddb = session.client("dynamodb")
    sm = session.client("secretsmanager")
    kms = session.client("kms")
    key_ids = {k["KeyId"] for k in kms.list_keys()["Keys"]}
    key_arns = {k["KeyArn"] for k in kms.list_keys()["Keys"]}
    tables = {}
    for name in sorted(ddb.list_tables()["TableNames"]):
        t = ddb.describe_table(TableName=name)["Table"]
        backups = ddb.describe_continuous_backups(TableName=name)["ContinuousBackupsDescription"]
        tables[name] = {
            "keys": t["KeySchema"],
            "attributes": sorted(t["AttributeDefinitions"], key=lambda a: a["AttributeName"]),
            "gsis": sorted(
                (g["IndexName"], json.dumps(g["KeySchema"]), json.dumps(g["Projection"]))
                for g in t.get("GlobalSecondaryIndexes", [])
            ),
            "billing": t["BillingModeSummary"]["BillingMode"],
            "sse": t["SSEDescription"]["Status"],
            "protected": t["DeletionProtectionEnabled"],
            "ttl": ddb.describe_time_to_live(TableName=name)["TimeToLiveDescription"],
            "pitr": backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"],
            "items": ddb.scan(TableName=name)["Count"],
        }
    secrets = {}
    for s in sorted(sm.list_secrets()["SecretList"], key=lambda s: s["Name"]):
        versions = sm.list_secret_version_ids(SecretId=s["Name"])["Versions"]
        value = json.loads(sm.get_secret_value(SecretId=s["Name"])["SecretString"])
        secrets[s["Name"]] = {
            "encrypted with the world's key": s.get("KmsKeyId") in key_ids | key_arns,
            "stages": sorted(sorted(v["VersionStages"]) for v in versions),
            "entries": sorted(
                (e.get("state"), e.get("created")) for e in next(iter(value.values()))
            ),
        }
    return {"kms keys": len(key_ids), "tables": tables, "secrets": secrets}


def test_copied_world_is_what_a_fresh_provisioning_gives(env, monkeypatch):
    with world(monkeypatch, fresh=False):
        pass  # the process's provisioned world exists from here on
    with world(monkeypatch, fresh=True) as session:
        fresh = describe(session)
    with world(monkeypatch, fresh=False) as session:
        copied = describe(session)
    assert set(fresh["tables"]) == {TABLE, TEST_ENV["TESSERA_DEMO_TABLE"]}
    assert len(fresh["secrets"]) == 3
    assert copied == fresh


def test_items_written_in_one_world_are_gone_in_the_next(env, monkeypatch):
    with world(monkeypatch, fresh=False) as session:
        item = {"pk": {"S": "CLIENT#leak"}, "sk": {"S": "CLIENT"}}
        session.client("dynamodb").put_item(TableName=TABLE, Item=item)
    with world(monkeypatch, fresh=False) as session:
        found = session.client("dynamodb").get_item(TableName=TABLE, Key=item)
        assert "Item" not in found


def versions(sm: Any) -> list[tuple[str, list[str]]]:
    """A secret's versions and their stages; moto stamps the listing's dates at call time, so a
    listing taken a second later differs in its dates alone."""
    listed = sm.list_secret_version_ids(SecretId=SIGNING)["Versions"]
    return sorted((v["VersionId"], v["VersionStages"]) for v in listed)


def test_secret_versions_written_in_one_world_are_gone_in_the_next(env, monkeypatch):
    with world(monkeypatch, fresh=False) as session:
        sm = session.client("secretsmanager")
        before = versions(sm)
        sm.put_secret_value(SecretId=SIGNING, SecretString='{"keys": []}')
    with world(monkeypatch, fresh=False) as session:
        sm = session.client("secretsmanager")
        assert versions(sm) == before
        assert json.loads(sm.get_secret_value(SecretId=SIGNING)["SecretString"])["keys"]


def test_a_table_deleted_in_one_world_is_back_in_the_next(env, monkeypatch):
    with world(monkeypatch, fresh=False) as session:
        ddb = session.client("dynamodb")
        ddb.update_table(TableName=TABLE, DeletionProtectionEnabled=False)
        ddb.delete_table(TableName=TABLE)
    with world(monkeypatch, fresh=False) as session:
        table = session.client("dynamodb").describe_table(TableName=TABLE)["Table"]
        assert table["DeletionProtectionEnabled"] is True
