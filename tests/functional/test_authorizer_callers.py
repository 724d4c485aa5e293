"""Cross-account attachment: the stage setting ``authorizer_callers`` (infra/callers.py) decides
who may invoke the authorizer, in the packaged stack (infra/package.py) and after ``make deploy``
(infra/wire.py), and both deploy paths export the function's ARN.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from infra import callers, package, wire
from infra.provision import load_template

ACCOUNT = "111122223333"
API = "arn:aws:execute-api:eu-west-1:444455556666:a1b2c3d4e5"


def _permissions(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        r["Properties"]
        for r in doc["Resources"].values()
        if r.get("Type") == "AWS::Lambda::Permission"
        and r["Properties"].get("Principal") == callers.PRINCIPAL
    ]


@pytest.fixture
def listed(monkeypatch: pytest.MonkeyPatch) -> list[callers.Caller]:
    found = [callers.parse(ACCOUNT), callers.parse(API)]
    monkeypatch.setattr(callers, "callers", lambda stage, project=None: found)
    return found


def test_packaged_stack_lets_exactly_the_listed_callers_invoke_the_authorizer(listed):
    authorizer, _ = package.app_functions()
    granted = _permissions(package.merge_template("prod"))
    assert len(granted) == 2
    for p in granted:
        # prod runs SnapStart: API Gateway invokes the published version's alias, and a
        # permission on the function would not cover it.
        assert p["FunctionName"] == {"Ref": f"{package.cfn_name(authorizer)}.Alias"}
        assert p["Action"] == "lambda:InvokeFunction"
    by_account = {p["SourceAccount"]: p["SourceArn"] for p in granted}
    any_api = "arn:${AWS::Partition}:execute-api:${AWS::Region}:" + ACCOUNT + ":*/authorizers/*"
    assert by_account == {ACCOUNT: {"Fn::Sub": any_api}, "444455556666": API + "/authorizers/*"}


def test_a_stage_without_callers_grants_no_other_account(monkeypatch):
    config = json.loads((package.ROOT / ".chalice" / "config.json").read_text())
    for stage in ("dev", "prod"):
        assert config["stages"][stage]["authorizer_callers"] == []
        assert _permissions(package.merge_template(stage)) == []


@pytest.mark.parametrize(
    "entry",
    [
        "11112222333",  # 11 digits
        "*",
        "arn:aws:execute-api:eu-west-1:444455556666:*",  # every API: list the account instead
        "arn:aws:execute-api:eu-west-1:444455556666:a1b2c3d4e5/*",
        "arn:aws:lambda:eu-west-1:444455556666:function:x",
        7,
    ],
)
def test_an_entry_that_is_neither_an_account_nor_one_api_is_refused(entry):
    with pytest.raises(SystemExit, match="authorizer_callers"):
        callers.parse(entry)


def test_callers_are_read_from_the_stages_block(tmp_path: Path):
    (tmp_path / ".chalice").mkdir()
    (tmp_path / ".chalice" / "config.json").write_text(
        json.dumps({"stages": {"dev": {"authorizer_callers": [ACCOUNT, API, ACCOUNT]}}})
    )
    assert [c.entry for c in callers.callers("dev", tmp_path)] == [ACCOUNT, API]
    assert callers.callers("prod", tmp_path) == []


def test_make_deploy_syncs_the_callers_permissions_and_leaves_others_alone(env):
    with mock_aws():
        iam = boto3.client("iam", region_name="us-east-1")
        role = iam.create_role(RoleName="authorizer", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        lam = boto3.client("lambda", region_name="us-east-1")
        arn = lam.create_function(
            FunctionName="tessera-dev-tessera_authorizer",
            Runtime="python3.13",
            Role=role,
            Handler="chalicelib.authorizer_lambda.handler",
            Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18},  # an empty zip
        )["FunctionArn"]
        lam.add_permission(  # Tessera's own API, added by chalice deploy: not ours to remove
            FunctionName=arn,
            StatementId="chalice-own-api",
            Action="lambda:InvokeFunction",
            Principal="apigateway.amazonaws.com",
        )
        both = [callers.parse(ACCOUNT), callers.parse(API)]
        added, removed = callers.sync(lam, arn, both)
        assert (len(added), removed) == (2, [])
        assert callers.sync(lam, arn, both) == ([], [])  # idempotent
        callers.sync(lam, arn, both[1:])
        statements = json.loads(lam.get_policy(FunctionName=arn)["Policy"])["Statement"]
    sids = {s["Sid"] for s in statements}
    assert sids == {"chalice-own-api", both[1].statement_id}
    (mine,) = [s for s in statements if s["Sid"] == both[1].statement_id]
    assert mine["Condition"]["ArnLike"]["AWS:SourceArn"] == API + "/authorizers/*"


def test_both_deploy_paths_export_the_authorizer_arn(tmp_path: Path):
    # make deploy: the infra stack exports what wire.parameters reads from chalice deploy.
    outputs = load_template()["Outputs"]
    export = outputs["AuthorizerFunctionArn"]
    assert export["Value"] == {"Ref": "AuthorizerFunctionArn"}
    assert export["Export"]["Name"] == {"Fn::Sub": "tessera-${Stage}-AuthorizerFunctionArn"}
    arn = "arn:aws:lambda:us-east-1:123456789012:function:tessera-dev-tessera_authorizer"
    folder = tmp_path / ".chalice" / "deployed"
    folder.mkdir(parents=True)
    resources = [
        {"name": "rotate_keys", "resource_type": "lambda_function", "lambda_arn": arn + "x"},
        {"name": "tessera_authorizer", "resource_type": "lambda_function", "lambda_arn": arn},
        {"name": "rest_api", "resource_type": "rest_api", "rest_api_id": "a1b2c3"},
    ]
    (folder / "dev.json").write_text(json.dumps({"resources": resources}))
    assert f"AuthorizerFunctionArn={arn}" in wire.parameters("dev", tmp_path)
    # make deploy-stack: the packaged stack exports the function it holds, through the alias of
    # its published version where the stage runs SnapStart (dev does).
    packaged = package.merge_template("dev")["Outputs"]["AuthorizerFunctionArn"]
    authorizer, _ = package.app_functions()
    assert packaged["Value"] == {"Ref": f"{package.cfn_name(authorizer)}.Alias"}
    assert "Export" in packaged
