"""Infrastructure as code: the template, the IAM policies and the packaged artifact, proven offline.

The template tests read infra/template.yaml; the local-stack test provisions it into ``mock_aws``
exactly as ``make local`` and conftest do; the package tests run ``make package``'s builder once
per stage (``chalice package`` needs no credentials, only the Lambda wheels from the package
index). The policy files hold CloudFormation placeholders; they are evaluated here as IAM would see
them in one account and region (``VALUES``), after ``infra.policies.render``.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from infra import package, policies, preflight, wire
from infra.provision import (
    AWS_ONLY,
    condition_values,
    load_template,
    parameter_values,
    provision,
)

ROOT = Path(__file__).resolve().parents[2]
CHALICE = ROOT / ".chalice"
STAGES = ("dev", "prod")
ACCOUNT = "123456789012"
REGION = "us-east-1"
VALUES = policies.pseudo_values("aws", REGION, ACCOUNT, "amazonaws.com")


# --- a small IAM evaluator: does any Allow statement cover (action, resource)? ----------------


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _matches(pattern: str, value: str, case_sensitive: bool) -> bool:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, 0 if case_sensitive else re.IGNORECASE) is not None


def allows(policy: dict[str, Any], action: str, resource: str) -> bool:
    """True if an Allow statement names the action and the resource (conditions count as met)."""
    for st in policy["Statement"]:
        if st["Effect"] != "Allow":
            continue
        if any(_matches(a, action, False) for a in _as_list(st["Action"])) and any(
            _matches(r, resource, True) for r in _as_list(st["Resource"])
        ):
            return True
    return False


def raw_policy(name: str) -> dict[str, Any]:
    """A policy file as written (with ``${AWS::...}`` placeholders)."""
    return policies.load(CHALICE / name)


def policy(name: str, values: dict[str, str] = VALUES) -> dict[str, Any]:
    """A policy file as IAM receives it in one account, region and partition."""
    doc: dict[str, Any] = policies.render(raw_policy(name), values)
    return doc


def chalice_config() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((CHALICE / "config.json").read_text())
    return doc


def secret_arn(
    stage: str, name: str, partition: str = "aws", region: str = REGION, account: str = ACCOUNT
) -> str:
    return f"arn:{partition}:secretsmanager:{region}:{account}:secret:tessera/{stage}/{name}-AbC123"


def table_arn(stage: str, table: str = "tessera") -> str:
    return f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{table}-{stage}"


def log_stream_arn(function_name: str) -> str:
    return (
        f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/lambda/{function_name}"
        ":log-stream:2026/01/01/[$LATEST]abc"
    )


def function_policies(stage: str, values: dict[str, str] = VALUES) -> dict[str, dict[str, Any]]:
    """Function name -> the policy document its role gets in ``stage``."""
    cfg = chalice_config()["stages"][stage]
    found = {"api_handler": policy(cfg["iam_policy_file"], values)}
    for name, fn in cfg.get("lambda_functions", {}).items():
        found[name] = policy(fn["iam_policy_file"], values)
    return found


# --- the template ---------------------------------------------------------------------------


def resources_of(doc: dict[str, Any], rtype: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in doc["Resources"].items() if v["Type"] == rtype}


def test_every_table_is_on_demand_with_pitr_encryption_and_deletion_protection() -> None:
    tables = resources_of(load_template(), "AWS::DynamoDB::Table")
    assert tables
    for name, table in tables.items():
        props = table["Properties"]
        assert props["BillingMode"] == "PAY_PER_REQUEST", name
        assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True, name
        assert props["SSESpecification"]["SSEEnabled"] is True, name
        assert props["DeletionProtectionEnabled"] is True, name
        assert table["DeletionPolicy"] == "Retain", name


def test_token_table_expires_items_through_the_ttl_attribute() -> None:
    props = load_template()["Resources"]["Table"]["Properties"]
    assert props["TimeToLiveSpecification"] == {"AttributeName": "ttl", "Enabled": True}


def test_every_secret_is_encrypted_with_the_stacks_rotating_kms_key() -> None:
    doc = load_template()
    secrets = resources_of(doc, "AWS::SecretsManager::Secret")
    assert set(secrets) == {"SigningKeysSecret", "PublicKeysSecret", "PepperSecret"}
    for secret in secrets.values():
        assert secret["Properties"]["KmsKeyId"] == {"Ref": "SecretsKey"}
    assert doc["Resources"]["SecretsKey"]["Properties"]["EnableKeyRotation"] is True


@pytest.mark.parametrize("secret", ["SigningKeysSecret", "PepperSecret"])
def test_signing_keys_and_pepper_rotate_on_a_schedule_through_the_rotation_function(
    secret: str,
) -> None:
    doc = load_template()
    schedules = [
        s
        for s in resources_of(doc, "AWS::SecretsManager::RotationSchedule").values()
        if s["Properties"]["SecretId"] == {"Ref": secret}
    ]
    assert len(schedules) == 1
    props = schedules[0]["Properties"]
    assert props["RotationLambdaARN"] == {"Ref": "RotationFunctionArn"}
    assert props["RotateImmediatelyOnUpdate"] is True  # first key set on a new stack
    assert "ScheduleExpression" in props["RotationRules"]
    permission = doc["Resources"][schedules[0]["DependsOn"]]["Properties"]
    assert permission["Principal"] == "secretsmanager.amazonaws.com"
    assert permission["FunctionName"] == {"Ref": "RotationFunctionArn"}
    assert permission["SourceArn"] == {"Ref": secret}


def test_public_key_set_has_no_schedule_of_its_own() -> None:
    # The rotation of the signing keys writes it in the same steps (setSecret).
    schedules = resources_of(load_template(), "AWS::SecretsManager::RotationSchedule")
    assert {"Ref": "PublicKeysSecret"} not in [
        s["Properties"]["SecretId"] for s in schedules.values()
    ]


@pytest.fixture
def local_world(env: dict[str, str]) -> Iterator[tuple[boto3.Session, dict[str, str]]]:
    with mock_aws():
        session = boto3.Session(region_name="us-east-1")
        yield session, provision(session, "itest")


def test_local_stack_holds_every_stateful_resource_of_the_template(
    local_world: tuple[boto3.Session, dict[str, str]],
) -> None:
    session, created = local_world
    doc = load_template()
    stateful = {k for k, v in doc["Resources"].items() if v["Type"] not in AWS_ONLY}
    assert set(created) == stateful
    tables = set(session.client("dynamodb").list_tables()["TableNames"])
    assert tables == {"tessera-itest", "tessera-demo-itest"}
    secrets = {s["Name"] for s in session.client("secretsmanager").list_secrets()["SecretList"]}
    assert secrets == {f"tessera/itest/{n}" for n in ("signing-keys", "public-keys", "pepper")}


def test_local_tables_have_the_templates_ttl_pitr_encryption_and_protection(
    local_world: tuple[boto3.Session, dict[str, str]],
) -> None:
    ddb = local_world[0].client("dynamodb")
    ttl = ddb.describe_time_to_live(TableName="tessera-itest")["TimeToLiveDescription"]
    assert (ttl["AttributeName"], ttl["TimeToLiveStatus"]) == ("ttl", "ENABLED")
    for name in ("tessera-itest", "tessera-demo-itest"):
        backups = ddb.describe_continuous_backups(TableName=name)["ContinuousBackupsDescription"]
        pitr = backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"]
        assert pitr == "ENABLED"
        table = ddb.describe_table(TableName=name)["Table"]
        assert table["SSEDescription"]["Status"] == "ENABLED"
        assert table["DeletionProtectionEnabled"] is True
        assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"


def test_local_secrets_are_encrypted_with_the_provisioned_key(
    local_world: tuple[boto3.Session, dict[str, str]],
) -> None:
    session, created = local_world
    sm = session.client("secretsmanager")
    for logical_id in ("SigningKeysSecret", "PublicKeysSecret", "PepperSecret"):
        assert sm.describe_secret(SecretId=created[logical_id])["KmsKeyId"] == created["SecretsKey"]


def test_local_stack_refuses_a_resource_type_it_cannot_create() -> None:
    doc = load_template()
    doc["Resources"]["Queue"] = {"Type": "AWS::SQS::Queue", "Properties": {}}
    with mock_aws(), pytest.raises(ValueError, match="AWS::SQS::Queue"):
        provision(boto3.Session(region_name="us-east-1"), "itest", doc)


# --- least privilege ------------------------------------------------------------------------


def test_autogenerated_policies_are_off() -> None:
    assert chalice_config()["autogen_policy"] is False


@pytest.mark.parametrize("stage", STAGES)
def test_every_function_of_the_app_has_its_own_policy_file(stage: str) -> None:
    import app as app_module

    chalice_app = app_module.app
    names = [a.name for a in chalice_app.builtin_auth_handlers]
    names += [f.name for f in chalice_app.pure_lambda_functions]
    names += [e.name for e in chalice_app.event_sources]
    functions = chalice_config()["stages"][stage].get("lambda_functions", {})
    for name in names:  # without its own file a function would get the API's policy
        assert (CHALICE / functions[name]["iam_policy_file"]).exists(), name
    policies = function_policies(stage)
    assert len({json.dumps(p, sort_keys=True) for p in policies.values()}) == len(policies)


def test_no_policy_statement_allows_any_action_on_every_resource() -> None:
    files = sorted(CHALICE.glob("policy-*.json"))
    assert len(files) == 3 * len(STAGES)
    for path in files:
        for st in json.loads(path.read_text())["Statement"]:
            assert st["Effect"] == "Allow", path.name  # an allow-list only
            assert "*" not in _as_list(st["Resource"]), (path.name, st.get("Sid"))
            for action in _as_list(st["Action"]):
                assert "*" not in action, (path.name, action)


@pytest.mark.parametrize("stage", STAGES)
def test_authorizer_cannot_read_the_private_signing_keys_or_the_pepper(stage: str) -> None:
    authorizer, _ = package.app_functions()
    p = function_policies(stage)[authorizer]
    assert allows(p, "secretsmanager:GetSecretValue", secret_arn(stage, "public-keys"))
    for secret in ("signing-keys", "pepper"):
        assert not allows(p, "secretsmanager:GetSecretValue", secret_arn(stage, secret))


@pytest.mark.parametrize("stage", STAGES)
def test_authorizer_reads_the_deny_list_exactly_when_its_stage_checks_revocation(
    stage: str,
) -> None:
    authorizer, _ = package.app_functions()
    p = function_policies(stage)[authorizer]
    env = chalice_config()["stages"][stage]["environment_variables"]
    checks = env.get("TESSERA_AUTHORIZER_CHECKS_REVOCATION", "false").lower() == "true"
    assert allows(p, "dynamodb:BatchGetItem", table_arn(stage)) == checks
    for st in p["Statement"]:
        actions = _as_list(st["Action"])
        if any(a.startswith("dynamodb:") for a in actions) and actions != ["dynamodb:Query"]:
            # only deny-list items (JTI#, FAMILY#), never clients' or users' records
            leading = st["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]
            assert sorted(leading) == ["FAMILY#*", "JTI#*"]


@pytest.mark.parametrize("stage", STAGES)
def test_authorizer_queries_only_the_partition_of_the_api_rules(stage: str) -> None:
    from chalicelib.store.api_rules_store import PARTITION

    authorizer, _ = package.app_functions()
    p = function_policies(stage)[authorizer]
    queries = [st for st in p["Statement"] if "dynamodb:Query" in _as_list(st["Action"])]
    assert len(queries) == 1
    assert _as_list(queries[0]["Action"]) == ["dynamodb:Query"]
    assert allows({"Statement": queries}, "dynamodb:Query", table_arn(stage))
    assert len(_as_list(queries[0]["Resource"])) == 1  # the table, not its index
    leading = queries[0]["Condition"]["ForAllValues:StringEquals"]["dynamodb:LeadingKeys"]
    assert leading == [PARTITION]


@pytest.mark.parametrize("stage", STAGES)
def test_authorizer_writes_nothing_to_the_table(stage: str) -> None:
    authorizer, _ = package.app_functions()
    p = function_policies(stage)[authorizer]
    for action in ("PutItem", "UpdateItem", "DeleteItem", "Scan"):
        assert not allows(p, f"dynamodb:{action}", table_arn(stage)), action


@pytest.mark.parametrize("stage", STAGES)
def test_token_api_reads_key_sets_and_pepper_but_never_writes_secrets(stage: str) -> None:
    p = function_policies(stage)["api_handler"]
    for secret in ("signing-keys", "public-keys", "pepper"):  # public: JWKS and introspection
        assert allows(p, "secretsmanager:GetSecretValue", secret_arn(stage, secret))
        assert not allows(p, "secretsmanager:PutSecretValue", secret_arn(stage, secret))
    for action in ("GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query"):
        assert allows(p, f"dynamodb:{action}", table_arn(stage))
    assert allows(p, "dynamodb:Query", table_arn(stage) + "/index/gsi1")
    assert not allows(p, "dynamodb:DeleteTable", table_arn(stage))


@pytest.mark.parametrize("stage", STAGES)
def test_rotation_function_manages_only_its_secrets(stage: str) -> None:
    _, rotation = package.app_functions()
    p = function_policies(stage)[rotation]
    for secret in ("signing-keys", "public-keys", "pepper"):
        for action in ("GetSecretValue", "PutSecretValue", "UpdateSecretVersionStage"):
            assert allows(p, f"secretsmanager:{action}", secret_arn(stage, secret))
    assert not allows(p, "secretsmanager:GetSecretValue", secret_arn(stage, "other"))
    assert not allows(p, "dynamodb:GetItem", table_arn(stage))


@pytest.mark.parametrize("stage", STAGES)
def test_no_function_reaches_another_stages_data(stage: str) -> None:
    other = next(s for s in STAGES if s != stage)
    for name, p in function_policies(stage).items():
        for secret in ("signing-keys", "public-keys", "pepper"):
            assert not allows(p, "secretsmanager:GetSecretValue", secret_arn(other, secret)), name
        assert not allows(p, "dynamodb:GetItem", table_arn(other)), name


@pytest.mark.parametrize("stage", STAGES)
def test_kms_decrypt_is_only_granted_through_secrets_manager_for_named_secrets(stage: str) -> None:
    for name, p in function_policies(stage).items():
        for st in p["Statement"]:
            if not any(a.startswith("kms:") for a in _as_list(st["Action"])):
                continue
            cond = st["Condition"]["StringLike"]
            assert cond["kms:ViaService"] == f"secretsmanager.{REGION}.amazonaws.com", name
            own = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:tessera/{stage}/"
            for arn in _as_list(cond["kms:EncryptionContext:SecretARN"]):
                assert arn.startswith(own), name


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)
    elif isinstance(value, str):
        yield value


def test_policy_arns_name_partition_region_and_account_never_a_wildcard() -> None:
    """No `*` for region or account and no hard-coded `aws` partition: every ARN in every policy
    file is built from ${AWS::Partition}, ${AWS::Region} and ${AWS::AccountId}."""
    arn = re.compile(
        r"^arn:\$\{AWS::Partition\}:[a-z0-9-]+:\$\{AWS::Region\}:\$\{AWS::AccountId\}:"
    )
    for path in sorted(CHALICE.glob("policy-*.json")):
        strings = list(_strings(raw_policy(path.name)))
        arns = [v for v in strings if v.startswith("arn:")]
        assert arns, path.name
        for value in arns:
            assert arn.match(value), (path.name, value)
        assert not [v for v in strings if "amazonaws.com" in v], path.name  # ${AWS::URLSuffix}


@pytest.mark.parametrize("stage", STAGES)
def test_policies_grant_nothing_in_another_account_or_region(stage: str) -> None:
    for name, p in function_policies(stage).items():
        wanted = "public-keys"
        assert allows(p, "secretsmanager:GetSecretValue", secret_arn(stage, wanted)), name
        other_account = secret_arn(stage, wanted, account="210987654321")
        other_region = secret_arn(stage, wanted, region="eu-west-1")
        for arn in (other_account, other_region):
            assert not allows(p, "secretsmanager:GetSecretValue", arn), (name, arn)


def test_policies_work_in_another_partition() -> None:
    """Rendered for AWS China, the same files grant the same secrets there and not in `aws`."""
    china = policies.pseudo_values("aws-cn", "cn-north-1", ACCOUNT, "amazonaws.com.cn")
    p = function_policies("prod", china)["api_handler"]
    ours = secret_arn("prod", "pepper", partition="aws-cn", region="cn-north-1")
    assert allows(p, "secretsmanager:GetSecretValue", ours)
    assert not allows(p, "secretsmanager:GetSecretValue", secret_arn("prod", "pepper"))
    kms = next(st for st in p["Statement"] if st["Sid"] == "DecryptOwnSecretsViaSecretsManager")
    assert kms["Condition"]["StringLike"]["kms:ViaService"] == (
        "secretsmanager.cn-north-1.amazonaws.com.cn"
    )


@pytest.mark.parametrize("stage", STAGES)
def test_each_function_writes_logs_only_to_its_own_log_group_whatever_the_stack_name(
    stage: str,
) -> None:
    """The log permissions name the functions' fixed names (package.function_names, which both
    deploy paths use), not a stack-derived pattern."""
    names = package.function_names(stage)
    by_function = {
        "api_handler": names["APIHandler"],
        **{n: names[package.cfn_name(n)] for n in package.app_functions()},
    }
    found = function_policies(stage)
    assert set(found) == set(by_function)
    for function, p in found.items():
        for other, group in by_function.items():
            can = allows(p, "logs:PutLogEvents", log_stream_arn(group))
            assert can == (other == function), (function, group)


# --- stages ---------------------------------------------------------------------------------


def test_dev_and_prod_differ_only_in_configuration() -> None:
    stages = chalice_config()["stages"]
    # The same settings everywhere, except that dev reserves no concurrency (infra/checkov.yaml:
    # new accounts cannot reserve any).
    assert set(stages["dev"]) | {"reserved_concurrency"} == set(stages["prod"])
    assert set(stages["dev"]["lambda_functions"]) == set(stages["prod"]["lambda_functions"])
    for stage in STAGES:
        env = stages[stage]["environment_variables"]
        assert env["TESSERA_STAGE"] == stage
        assert env["TESSERA_TABLE"] == f"tessera-{stage}"
        for kind in ("signing-keys", "public-keys", "pepper"):
            key = "TESSERA_" + kind.upper().replace("-", "_") + "_SECRET"
            assert env[key] == f"tessera/{stage}/{kind}"


def test_readme_configuration_table_lists_every_setting_with_dev_and_prod() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Configuration per stage\n", 1)[1].split("\n## ", 1)[0]
    rows = {m[1]: m[0] for m in re.finditer(r"^\| `(TESSERA_\w+)`.*$", section, flags=re.MULTILINE)}
    settings = set(
        re.findall(r'"(TESSERA_\w+)"', (ROOT / "chalicelib" / "core" / "config.py").read_text())
    )
    assert settings - set(rows) == set(), "add these to the README configuration table"
    stages = chalice_config()["stages"]
    for name in settings - {"TESSERA_LOCAL_STATE"}:
        cells = [c.strip().strip("`") for c in rows[name].split("|")[1:-1]]
        for stage, cell in zip(STAGES, cells[2:4], strict=True):
            env = {**chalice_config()["environment_variables"]}
            env.update(stages[stage]["environment_variables"])
            if name in env:
                assert cell.split(" ")[0] == env[name], (name, stage)


def test_prod_reserves_concurrency_for_every_function() -> None:
    # checkov's CKV_AWS_115 is skipped for both stages: dev reserves none (infra/checkov.yaml).
    prod = chalice_config()["stages"]["prod"]
    assert prod["reserved_concurrency"] > 0
    for name, fn in prod["lambda_functions"].items():
        assert fn["reserved_concurrency"] > 0, name


# --- the packaged artifact (make package) ---------------------------------------------------


@pytest.fixture(scope="module")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    out = tmp_path_factory.mktemp("package") / "dev"
    template = package.build("dev", out)
    return json.loads(template.read_text()), out / "deployment.zip"


@pytest.fixture(scope="module")
def packaged_prod(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """``make package STAGE=prod``'s template (offline, no credentials)."""
    out = tmp_path_factory.mktemp("package") / "prod"
    doc: dict[str, Any] = json.loads(package.build("prod", out, pyc=False).read_text())
    return doc


def test_packaged_stack_rotates_secrets_with_its_own_rotation_function(
    packaged: tuple[dict[str, Any], Path],
) -> None:
    doc, _ = packaged
    _, rotation = package.app_functions()
    fn = package.cfn_name(rotation)
    assert doc["Resources"][fn]["Type"] == "AWS::Serverless::Function"
    schedules = resources_of(doc, "AWS::SecretsManager::RotationSchedule")
    assert {json.dumps(s["Properties"]["SecretId"]) for s in schedules.values()} == {
        '{"Ref": "SigningKeysSecret"}',
        '{"Ref": "PepperSecret"}',
    }
    for s in schedules.values():
        assert "Condition" not in s
        assert s["Properties"]["RotationLambdaARN"] == {"Fn::GetAtt": [fn, "Arn"]}
    assert "RotationFunctionArn" not in doc["Parameters"]


def test_packaged_api_answers_401_and_403_with_rfc6750_headers(
    packaged: tuple[dict[str, Any], Path],
) -> None:
    doc, _ = packaged
    body = doc["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]
    responses = body["x-amazon-apigateway-gateway-responses"]
    header = "gatewayresponse.header.WWW-Authenticate"
    unauthorized = responses["UNAUTHORIZED"]
    assert unauthorized["statusCode"] == 401
    assert unauthorized["responseParameters"][header] == (
        '\'Bearer realm="tessera", error="invalid_token"\''
    )
    denied = responses["ACCESS_DENIED"]
    assert denied["statusCode"] == 403
    assert 'error="insufficient_scope"' in denied["responseParameters"][header]
    for spec in (unauthorized, denied):
        assert json.loads(spec["responseTemplates"]["application/json"])["error"]


def test_packaged_stack_outputs_issuer_jwks_url_and_authorizer_arn(
    packaged: tuple[dict[str, Any], Path],
) -> None:
    doc, _ = packaged
    authorizer, _ = package.app_functions()
    outputs = doc["Outputs"]
    assert outputs["Issuer"]["Value"] == {"Fn::Sub": "https://${DomainName}"}
    assert outputs["JwksUrl"]["Value"] == {"Fn::Sub": "https://${DomainName}/.well-known/jwks.json"}
    arn = outputs["AuthorizerFunctionArn"]
    assert arn["Value"] == {"Ref": f"{package.cfn_name(authorizer)}.Alias"}  # dev runs SnapStart
    assert doc["Resources"][package.cfn_name(authorizer)]["Type"] == "AWS::Serverless::Function"
    assert "Export" in arn


def _bare_placeholders(value: Any) -> list[str]:
    """Strings holding ``${AWS::...}`` outside ``Fn::Sub`` (IAM would get them literally)."""
    if isinstance(value, dict):
        return [s for k, v in value.items() if k != "Fn::Sub" for s in _bare_placeholders(v)]
    if isinstance(value, list):
        return [s for v in value for s in _bare_placeholders(v)]
    return [value] if isinstance(value, str) and "${AWS::" in value else []


def test_packaged_functions_get_their_policy_files_and_python_3_13(
    packaged: tuple[dict[str, Any], Path],
) -> None:
    doc, _ = packaged
    cfg = chalice_config()["stages"]["dev"]
    files = {"APIHandler": cfg["iam_policy_file"]}
    for name, fn in cfg["lambda_functions"].items():
        files[package.cfn_name(name)] = fn["iam_policy_file"]
    functions = resources_of(doc, "AWS::Serverless::Function")
    assert set(functions) == set(files)
    for logical_id, fn in functions.items():
        assert fn["Properties"]["Runtime"] == "python3.13"
        role = doc["Resources"][fn["Properties"]["Role"]["Fn::GetAtt"][0]]
        (inline,) = role["Properties"]["Policies"]
        expected = policies.to_cloudformation(raw_policy(files[logical_id]))
        assert inline["PolicyDocument"] == expected, logical_id
        assert _bare_placeholders(inline) == [], logical_id


def test_packaged_log_groups_belong_to_existing_functions(
    packaged: tuple[dict[str, Any], Path],
) -> None:
    doc, _ = packaged
    groups = resources_of(doc, "AWS::Logs::LogGroup")
    assert len(groups) == 3
    for group in groups.values():
        sub = group["Properties"]["LogGroupName"]["Fn::Sub"]
        target = sub.removeprefix("/aws/lambda/${").removesuffix("}")
        assert doc["Resources"][target]["Type"] == "AWS::Serverless::Function"


def test_package_ships_runtime_dependencies_only(packaged: tuple[dict[str, Any], Path]) -> None:
    _, zip_path = packaged
    with zipfile.ZipFile(zip_path) as z:
        top = {n.split("/")[0] for n in z.namelist()}
    top = {t for t in top if not t.endswith((".dist-info", ".so")) and t != "__pycache__"}
    # PyJWT, cryptography and what it needs; boto3/botocore come with the runtime; chalice is its
    # runtime stub (chalice/app.py), not the CLI.
    assert top == {"app.py", "chalicelib", "chalice", "jwt", "cryptography", "cffi", "pycparser"}


def test_package_carries_bytecode_for_this_runtime(packaged: tuple[dict[str, Any], Path]) -> None:
    _, zip_path = packaged
    with zipfile.ZipFile(zip_path) as z:
        names = set(z.namelist())
        sources = [n for n in names if n.endswith(".py")]
        pyc = Path(importlib.util.cache_from_source("app.py")).as_posix()
        assert pyc in names
        data = z.read(pyc)
    assert sys.version_info[:2] == (3, 13)
    assert data[:4] == importlib.util.MAGIC_NUMBER
    assert int.from_bytes(data[4:8], "little") == 0b01  # hash-based, unchecked: no stat per import
    missing = [
        s for s in sources if Path(importlib.util.cache_from_source(s)).as_posix() not in names
    ]
    assert len(missing) <= len(sources) // 50, missing[:5]


def test_packaged_functions_import_their_shipped_bytecode_without_compiling(
    packaged: tuple[dict[str, Any], Path], tmp_path: Path
) -> None:
    """As Lambda loads them (read-only /var/task, the runtime's interpreter): importing each
    function's handler module, and what its first events load, compiles no module of the zip."""
    _, zip_path = packaged
    task = tmp_path / "task"
    with zipfile.ZipFile(zip_path) as z:
        z.extractall(task)
    import app as app_module
    from chalicelib import authorizer_lambda

    modules = [
        "app",
        *app_module.PRELOAD,
        "chalicelib.authorizer_lambda",
        *authorizer_lambda.PRELOAD,
    ]
    code = (
        "import importlib, importlib.machinery, json, sys\n"
        "compiled = []\n"
        "original = importlib.machinery.SourceFileLoader.source_to_code\n"
        "def counting(self, data, path, **kw):\n"
        "    compiled.append(path)\n"
        "    return original(self, data, path, **kw)\n"
        "importlib.machinery.SourceFileLoader.source_to_code = counting\n"
        "sys.path.insert(0, '.')\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps([p for p in compiled if not p.startswith(sys.base_prefix)]))\n"
    )
    import subprocess

    out = subprocess.run(
        [sys.executable, "-I", "-S", "-B", "-c", code],
        cwd=task,
        env={"PYTHONPATH": "", "AWS_DEFAULT_REGION": "us-east-1"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout) == []


# --- SnapStart on published versions (the stage setting ``snapstart``) ----------------------


def _invocation_targets(doc: dict[str, Any]) -> list[Any]:
    """Every Lambda ARN the REST API's definition invokes (integrations and authorizers), as the
    template value the ``Fn::Sub`` of its URI puts there."""
    found: list[Any] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for key, v in value.items():
                if key in ("uri", "authorizerUri") and isinstance(v, dict) and "Fn::Sub" in v:
                    sub = v["Fn::Sub"]
                    text, variables = (sub, {}) if isinstance(sub, str) else sub
                    (name,) = re.findall(r"functions/\$\{([^}]+)\}/invocations", text)
                    found.append(variables.get(name, "${" + name + "}"))
                else:
                    walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    walk(doc["Resources"]["RestAPI"]["Properties"]["DefinitionBody"])
    return found


@pytest.mark.parametrize("stage", STAGES)
def test_stages_run_snapstart_on_the_api_and_authorizer_only(stage: str) -> None:
    # On in both: dev exercises the restore hook before prod does (README "SnapStart").
    assert package.snapstart_on(stage) is True
    authorizer, rotation = package.app_functions()
    resources = package.merge_template(stage)["Resources"]
    for logical_id in ("APIHandler", package.cfn_name(authorizer)):
        props = resources[logical_id]["Properties"]
        assert props["SnapStart"] == {"ApplyOn": "PublishedVersions"}
        assert props["AutoPublishAlias"] == package.ALIAS
        # A new version for any change (a new DomainName too), not only new code.
        assert props["AutoPublishAliasAllProperties"] is True
    rotation_props = resources[package.cfn_name(rotation)]["Properties"]
    assert "SnapStart" not in rotation_props
    assert "AutoPublishAlias" not in rotation_props


def test_packaged_api_and_authorizer_are_invoked_through_their_alias(
    packaged: tuple[dict[str, Any], Path],
) -> None:
    """$LATEST is never snapshotted: every integration, the authorizer and API Gateway's invoke
    permissions name the alias of the published version (SAM resolves ``Ref <id>.Alias``)."""
    doc, _ = packaged
    authorizer, _ = package.app_functions()
    api_alias = {"Ref": "APIHandler.Alias"}
    authorizer_alias = {"Ref": f"{package.cfn_name(authorizer)}.Alias"}
    targets = _invocation_targets(doc)
    assert len(targets) > 10  # one integration per route, plus the authorizer
    assert {json.dumps(t) for t in targets} == {json.dumps(api_alias), json.dumps(authorizer_alias)}
    body = json.dumps(doc["Resources"]["RestAPI"]["Properties"]["DefinitionBody"])
    assert "APIHandler.Arn" not in body
    assert f"{package.cfn_name(authorizer)}.Arn" not in body
    api_permissions = [
        r["Properties"]
        for r in resources_of(doc, "AWS::Lambda::Permission").values()
        if r["Properties"]["Principal"] == "apigateway.amazonaws.com"
    ]
    assert sorted(json.dumps(p["FunctionName"]) for p in api_permissions) == sorted(
        [json.dumps(api_alias), json.dumps(authorizer_alias)]
    )
    assert doc["Outputs"]["AuthorizerFunctionArn"]["Value"] == authorizer_alias


def test_a_stage_without_snapstart_invokes_its_functions_unqualified(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(package, "snapstart_on", lambda stage: False)
    authorizer, _ = package.app_functions()
    doc = package.merge_template("dev")
    for logical_id in ("APIHandler", package.cfn_name(authorizer)):
        props = doc["Resources"][logical_id]["Properties"]
        assert "SnapStart" not in props
        assert "AutoPublishAlias" not in props
    arn = {"Fn::GetAtt": [package.cfn_name(authorizer), "Arn"]}
    assert doc["Outputs"]["AuthorizerFunctionArn"]["Value"] == arn
    # What chalice package writes for a function without an alias is left as it is.
    chalice_doc: dict[str, Any] = {
        "Resources": {
            "APIHandler": {"Type": "AWS::Serverless::Function", "Properties": {}},
            "RestAPI": {
                "Type": "AWS::Serverless::Api",
                "Properties": {
                    "DefinitionBody": {
                        "uri": {"Fn::Sub": "functions/${APIHandler.Arn}/invocations"}
                    }
                },
            },
        }
    }
    before = json.dumps(chalice_doc)
    package.invoke_aliases(chalice_doc)
    assert json.dumps(chalice_doc) == before


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_snapstart_setting_is_a_boolean(tmp_path: Path, value: object, monkeypatch) -> None:
    (tmp_path / ".chalice").mkdir()
    (tmp_path / ".chalice" / "config.json").write_text(
        json.dumps({"stages": {"dev": {"snapstart": value}}})
    )
    monkeypatch.setattr(package, "ROOT", tmp_path)
    with pytest.raises(SystemExit, match="snapstart"):
        package.snapstart_on("dev")


# --- the two-stack path (make deploy) -------------------------------------------------------


def _deployed(tmp_path: Path, stage: str, resources: list[dict[str, Any]]) -> Path:
    folder = tmp_path / ".chalice" / "deployed"
    folder.mkdir(parents=True)
    (folder / f"{stage}.json").write_text(
        json.dumps({"resources": resources, "schema_version": "2.0"})
    )
    return tmp_path


def test_infra_stack_is_wired_to_the_deployed_rotation_function_and_api(tmp_path: Path) -> None:
    arn = "arn:aws:lambda:us-east-1:123456789012:function:tessera-dev-rotate_keys"
    auth = "arn:aws:lambda:us-east-1:123456789012:function:tessera-dev-tessera_authorizer"
    project = _deployed(
        tmp_path,
        "dev",
        [
            {"name": "rotate_keys", "resource_type": "lambda_function", "lambda_arn": arn},
            {"name": "tessera_authorizer", "resource_type": "lambda_function", "lambda_arn": auth},
            {"name": "rest_api", "resource_type": "rest_api", "rest_api_id": "a1b2c3"},
        ],
    )
    settings = preflight.DeploySettings(certificate_arn="arn:aws:acm:us-east-1:1:certificate/x")
    assert wire.parameters("dev", project, settings) == [
        "Stage=dev",
        "Demo=true",
        "DomainName=auth-dev.example.com",  # TESSERA_ISSUER's host: chalice deploy's issuer
        "CertificateArn=arn:aws:acm:us-east-1:1:certificate/x",
        f"RotationFunctionArn={arn}",
        f"AuthorizerFunctionArn={auth}",
        "RestApiId=a1b2c3",
        "ApiStage=api",
        "ApiName=tessera",
    ]


def test_infra_stack_first_deploy_has_no_wiring_and_prod_no_demo_table() -> None:
    found = wire.parameters("prod", before_deploy=True)
    assert "Demo=false" in found
    assert not [p for p in found if p.startswith(("RotationFunctionArn=", "RestApiId="))]
    doc = load_template()
    params = {p.split("=", 1)[0]: p.split("=", 1)[1] for p in found}
    decided = condition_values(doc, parameter_values(doc, params))
    assert decided["HasDemo"] is False
    assert decided["HasRotationFunction"] is False
    assert decided["HasCustomDomain"] is False


def test_gateway_responses_are_put_back_on_the_deployed_api(env: dict[str, str]) -> None:
    with mock_aws():
        apigw = boto3.client("apigateway", region_name="us-east-1")
        api = apigw.create_rest_api(name="tessera")["id"]
        root = apigw.get_resources(restApiId=api)["items"][0]["id"]
        apigw.put_method(restApiId=api, resourceId=root, httpMethod="GET", authorizationType="NONE")
        apigw.put_integration(restApiId=api, resourceId=root, httpMethod="GET", type="MOCK")
        assert wire.put_gateway_responses(apigw, api, "api") == sorted(package.gateway_responses())
        got = apigw.get_gateway_response(restApiId=api, responseType="UNAUTHORIZED")
        stages = apigw.get_stages(restApiId=api)["item"]
    expected = package.gateway_responses()["UNAUTHORIZED"]
    assert got["statusCode"] == "401"
    assert got["responseParameters"] == expected["responseParameters"]
    assert [s["stageName"] for s in stages] == ["api"]


def test_packaged_authorizer_runs_the_plain_handler_without_chalice_or_botocore(
    packaged: tuple[dict[str, Any], Path], tmp_path: Path
) -> None:
    """The authorizer's cold start must not pay for Chalice (chalicelib/authorizer_lambda.py):
    the packaged function names the plain handler, and importing it from the unzipped artifact
    alone (no botocore on the path, as Lambda's runtime would add) loads neither."""
    doc, zip_path = packaged
    authorizer, _ = package.app_functions()
    handler = doc["Resources"][package.cfn_name(authorizer)]["Properties"]["Handler"]
    assert handler == package.AUTHORIZER_HANDLER == "chalicelib.authorizer_lambda.handler"
    with zipfile.ZipFile(zip_path) as z:
        z.extractall(tmp_path / "task")
    module, _, attr = handler.rpartition(".")
    code = (
        "import importlib, json, sys\n"
        "sys.path.insert(0, '.')\n"  # /var/task, as Lambda's runtime puts it
        f"fn = getattr(importlib.import_module({module!r}), {attr!r})\n"
        "assert callable(fn)\n"
        "heavy = {'app', 'chalice', 'botocore', 'boto3'}\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in heavy)))\n"
    )
    import subprocess

    out = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code],
        cwd=tmp_path / "task",
        env={"PYTHONPATH": ""},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout) == []


def test_deployed_authorizer_is_switched_to_the_plain_handler(env: dict[str, str]) -> None:
    """make deploy: chalice deploy sets ``app.tessera_authorizer``; wire switches it."""
    with mock_aws():
        iam = boto3.client("iam", region_name="us-east-1")
        role = iam.create_role(RoleName="authorizer", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        lam = boto3.client("lambda", region_name="us-east-1")
        arn = lam.create_function(
            FunctionName="tessera-dev-tessera_authorizer",
            Runtime="python3.13",
            Role=role,
            Handler="app.tessera_authorizer",
            Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18},  # an empty zip
        )["FunctionArn"]
        assert wire.set_authorizer_handler(lam, arn) == package.AUTHORIZER_HANDLER
        assert lam.get_function_configuration(FunctionName=arn)["Handler"] == (
            "chalicelib.authorizer_lambda.handler"
        )


# --- nothing lost, the demo switch (template) -------------------------------------------------

SECRETS_AND_KEY = ("SecretsKey", "SigningKeysSecret", "PublicKeysSecret", "PepperSecret")


def test_secrets_and_their_key_survive_stack_deletion_and_replacement() -> None:
    """Deleting or replacing the stack must not take the signing keys, the pepper (every refresh
    token) or the key that encrypts them."""
    resources = load_template()["Resources"]
    for name in SECRETS_AND_KEY:
        assert resources[name]["DeletionPolicy"] == "Retain", name
        assert resources[name]["UpdateReplacePolicy"] == "Retain", name


def test_local_stack_has_no_demo_table_where_the_demo_is_off() -> None:
    doc = load_template()
    doc["Parameters"]["Demo"]["Default"] = "false"
    with mock_aws():
        session = boto3.Session(region_name=REGION)
        created = provision(session, "itest", doc)
        tables = session.client("dynamodb").list_tables()["TableNames"]
    assert tables == ["tessera-itest"]
    assert "DemoTable" not in created


def _app_routes(demo: str) -> dict[str, list[str]]:
    """app.py's routes as Chalice sees them when it imports app.py with TESSERA_DEMO=demo (as
    chalice package and chalice deploy do with the stage's variables), in a fresh interpreter."""
    import os
    import subprocess

    code = (
        "import json, app\nprint(json.dumps({p: sorted(m) for p, m in app.app.routes.items()}))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "TESSERA_DEMO"}
    if demo:
        env["TESSERA_DEMO"] = demo
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr[-2000:]
    routes: dict[str, list[str]] = json.loads(out.stdout)
    return routes


DEMO_PATHS = {"/people", "/people/{person_id}", "/articles"}


def test_a_stage_with_the_demo_off_declares_no_demo_routes() -> None:
    assert set(_app_routes("true")) >= DEMO_PATHS
    for off in ("false", ""):  # off, and unset: a new stage has no demo unless it asks
        routes = _app_routes(off)
        assert not set(routes) & DEMO_PATHS, off
        assert "/oauth2/token" in routes


def test_demo_is_on_in_local_and_dev_and_off_in_prod() -> None:
    assert [package.demo_on(s) for s in ("local", "dev", "prod")] == [True, True, False]
    prod = chalice_config()["stages"]["prod"]["environment_variables"]
    assert "TESSERA_DEMO_TABLE" not in prod
    assert "DemoTable" not in json.dumps(policy("policy-prod.json"))


# --- the production stack (make package STAGE=prod) -------------------------------------------


def test_prod_template_retains_the_secrets_and_their_key(packaged_prod: dict[str, Any]) -> None:
    resources = packaged_prod["Resources"]
    for name in SECRETS_AND_KEY:
        assert resources[name]["DeletionPolicy"] == "Retain", name
        assert resources[name]["UpdateReplacePolicy"] == "Retain", name
    kinds = {resources[n]["Type"] for n in SECRETS_AND_KEY}
    assert kinds == {"AWS::KMS::Key", "AWS::SecretsManager::Secret"}


def test_prod_template_has_no_demo_routes_table_or_permissions(
    packaged_prod: dict[str, Any],
) -> None:
    resources = packaged_prod["Resources"]
    assert "DemoTable" not in resources
    assert "DemoTableName" not in packaged_prod["Outputs"]
    paths = resources["RestAPI"]["Properties"]["DefinitionBody"]["paths"]
    assert not set(paths) & DEMO_PATHS
    assert "/oauth2/token" in paths
    for fn in resources_of(packaged_prod, "AWS::Serverless::Function").values():
        env = fn["Properties"]["Environment"]["Variables"]
        assert env["TESSERA_DEMO"] == "false"
        assert "TESSERA_DEMO_TABLE" not in env
    assert "tessera-demo" not in json.dumps(packaged_prod)


def test_dev_template_keeps_the_demo(packaged: tuple[dict[str, Any], Path]) -> None:
    doc, _ = packaged
    assert doc["Resources"]["DemoTable"]["Type"] == "AWS::DynamoDB::Table"
    assert "Condition" not in doc["Resources"]["DemoTable"]
    assert set(doc["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]["paths"]) >= DEMO_PATHS


def test_prod_template_has_no_placeholder_domain(packaged_prod: dict[str, Any]) -> None:
    text = json.dumps(packaged_prod)
    for placeholder in package.PLACEHOLDER_DOMAINS:
        assert placeholder not in text


def test_prod_issuer_is_https_on_the_domain_parameter_with_certificate_and_zone(
    packaged_prod: dict[str, Any],
) -> None:
    params = packaged_prod["Parameters"]
    # config.json's prod issuer and audience are placeholders: no default, a deploy must name them
    assert "Default" not in params["DomainName"]
    assert "Default" not in params["Audience"]
    assert re.fullmatch(params["DomainName"]["AllowedPattern"], "auth.acme.io")
    assert not re.fullmatch(params["DomainName"]["AllowedPattern"], "https://auth.acme.io/")
    assert params["CertificateArn"]["Default"] == ""
    assert params["HostedZoneId"]["Default"] == ""
    issuer = {"Fn::Sub": "https://${DomainName}"}
    assert packaged_prod["Outputs"]["Issuer"]["Value"] == issuer
    functions = resources_of(packaged_prod, "AWS::Serverless::Function")
    assert len(functions) == 3
    for fn in functions.values():
        env = fn["Properties"]["Environment"]["Variables"]
        assert env["TESSERA_ISSUER"] == issuer
        assert env["TESSERA_AUDIENCE"] == {"Ref": "Audience"}
    resources = packaged_prod["Resources"]
    domain = resources["ApiDomain"]
    assert domain["Properties"]["DomainName"] == {"Ref": "DomainName"}
    assert domain["Properties"]["RegionalCertificateArn"] == {"Ref": "CertificateArn"}
    assert domain["Properties"]["SecurityPolicy"] == "TLS_1_2"
    mapping = resources["ApiDomainMapping"]["Properties"]
    # the API's stage at the root: the issuer has no /api suffix
    assert mapping == {
        "DomainName": {"Ref": "ApiDomain"},
        "RestApiId": {"Ref": "RestAPI"},
        "Stage": {"Ref": "RestAPI.Stage"},
    }
    record = resources["ApiDomainRecord"]
    assert record["Properties"]["HostedZoneId"] == {"Ref": "HostedZoneId"}
    assert record["Properties"]["AliasTarget"]["DNSName"] == {
        "Fn::GetAtt": ["ApiDomain", "RegionalDomainName"]
    }
    conditions = packaged_prod["Conditions"]
    # created when a certificate is given; the record also needs the zone
    assert "CertificateArn" in json.dumps(conditions[domain["Condition"]])
    assert "HostedZoneId" in json.dumps(conditions[record["Condition"]])


def test_prod_template_throttles_every_oauth_endpoint_on_its_stage(
    packaged_prod: dict[str, Any],
) -> None:
    api = packaged_prod["Resources"]["RestAPI"]["Properties"]
    settings = {(m["ResourcePath"], m["HttpMethod"]): m for m in api["MethodSettings"]}
    paths = api["DefinitionBody"]["paths"]
    params = packaged_prod["Parameters"]
    wanted = {
        ("/oauth2/token", "POST"),
        ("/oauth2/authorize", "GET"),  # authorize
        ("/oauth2/authorize", "POST"),  # sign-in and consent form
        ("/account/login", "POST"),  # sign-in
        ("/oauth2/revoke", "POST"),
        ("/oauth2/introspect", "POST"),
    }
    for path, method in wanted:
        setting = settings[(package.method_setting_path(path), method)]
        assert method.lower() in paths[path], (path, method)  # a route that exists
        for key in ("ThrottlingRateLimit", "ThrottlingBurstLimit"):
            assert params[setting[key]["Ref"]]["Default"] > 0, (path, method, key)
    stage_wide = settings[("/*", "*")]
    assert params[stage_wide["ThrottlingRateLimit"]["Ref"]]["Default"] > 0
    assert package.method_setting_path("/oauth2/token") == "/~1oauth2~1token"


def test_prod_template_associates_an_optional_waf_web_acl(packaged_prod: dict[str, Any]) -> None:
    assert packaged_prod["Parameters"]["WebAclArn"]["Default"] == ""
    association = packaged_prod["Resources"]["WebAclAssociation"]
    assert association["Type"] == "AWS::WAFv2::WebACLAssociation"
    assert association["Properties"]["WebACLArn"] == {"Ref": "WebAclArn"}
    condition = packaged_prod["Conditions"][association["Condition"]]
    assert json.dumps(condition) == json.dumps(
        {"Fn::Not": [{"Fn::Equals": [{"Ref": "WebAclArn"}, ""]}]}
    )
    arn, names = association["Properties"]["ResourceArn"]["Fn::Sub"]
    assert arn.startswith("arn:${AWS::Partition}:apigateway:${AWS::Region}::/restapis/")
    assert names == {"Api": {"Ref": "RestAPI"}, "ApiStageName": {"Ref": "RestAPI.Stage"}}


def _alarms(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return resources_of(doc, "AWS::CloudWatch::Alarm")


def _alarm_metrics(alarm: dict[str, Any]) -> set[tuple[str, str]]:
    props = alarm["Properties"]
    if "MetricName" in props:
        return {(props["Namespace"], props["MetricName"])}
    return {
        (m["MetricStat"]["Metric"]["Namespace"], m["MetricStat"]["Metric"]["MetricName"])
        for m in props["Metrics"]
        if "MetricStat" in m
    }


def test_prod_template_alarms_on_5xx_503_reuse_authorizer_rotation_and_throttles(
    packaged_prod: dict[str, Any],
) -> None:
    alarms = _alarms(packaged_prod)
    assert len(alarms) >= 4
    watched = set().union(*(_alarm_metrics(a) for a in alarms.values()))
    assert watched >= {
        ("AWS/ApiGateway", "5XXError"),
        ("Tessera", "BackendUnavailable"),
        ("Tessera", "RefreshReuseDetected"),
        ("Tessera", "AuthorizerError"),
        ("Tessera", "RotationFailure"),
        ("AWS/Lambda", "Throttles"),
    }
    topic = {"Fn::If": ["CreateAlarmTopic", {"Ref": "AlarmTopic"}, {"Ref": "AlarmTopicArn"}]}
    for name, alarm in alarms.items():
        assert alarm["Properties"]["AlarmActions"] == [topic], name
        assert alarm["Properties"]["TreatMissingData"] == "notBreaching", name
    assert packaged_prod["Resources"]["AlarmTopic"]["Type"] == "AWS::SNS::Topic"
    assert packaged_prod["Parameters"]["AlarmTopicArn"]["Default"] == ""


def test_alarms_watch_the_functions_and_api_the_stack_deploys(
    packaged_prod: dict[str, Any],
) -> None:
    """The alarms' FunctionName and ApiName dimensions are the packaged functions' and API's
    names, and the Tessera metrics' dimensions are the contract's (service, Stage)."""
    resources = packaged_prod["Resources"]
    functions = {
        fn["Properties"]["FunctionName"]
        for fn in resources_of(packaged_prod, "AWS::Serverless::Function").values()
    }
    assert functions == set(package.function_names("prod").values())
    api_name = resources["RestAPI"]["Properties"]["Name"]
    assert api_name == resources["RestAPI"]["Properties"]["DefinitionBody"]["info"]["title"]
    for name, alarm in _alarms(packaged_prod).items():
        props = alarm["Properties"]
        stats = [m["MetricStat"]["Metric"] for m in props.get("Metrics", []) if "MetricStat" in m]
        metrics = stats or [props]
        for metric in metrics:
            dims = {d["Name"]: d["Value"] for d in metric["Dimensions"]}
            if metric["Namespace"] == "AWS/Lambda":
                resolved = dims["FunctionName"]["Fn::Sub"].replace("${Stage}", "prod")
                assert resolved in functions, name
            elif metric["Namespace"] == "AWS/ApiGateway":
                assert dims == {"ApiName": api_name, "Stage": {"Ref": "RestAPI.Stage"}}, name
            else:
                assert dims == {"service": "tessera", "Stage": {"Ref": "Stage"}}, name


def _dashboard_metrics(rows: list[list[Any]]) -> Iterator[list[Any]]:
    """A metric widget's rows with CloudWatch's shorthand expanded: "." repeats the previous
    row's item at that position, a leading "..." repeats its leading items; options dropped."""
    previous: list[Any] = []
    for row in rows:
        items = row[:-1] if isinstance(row[-1], dict) else row
        if items[0] == "...":
            full = previous[: len(previous) - len(items) + 1] + items[1:]
        else:
            full = [previous[i] if v == "." else v for i, v in enumerate(items)]
        previous = full
        yield full


def _contract() -> dict[str, str]:
    """README "Metrics" table: metric name -> its dimensions cell."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### Metrics (the contract)\n", 1)[1].split("\n### ", 1)[0]
    return {m[1]: m[2] for m in re.finditer(r"^\| `(\w+)` \| ([^|]*) \|", section, re.MULTILINE)}


def test_dashboard_shows_every_metric_of_the_readme_contract(
    packaged_prod: dict[str, Any],
) -> None:
    body, names = packaged_prod["Resources"]["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    assert set(names) == {"ApiName", "ApiStage"}
    text = re.sub(r"\$\{[^}]+\}", "x", body)  # what Fn::Sub fills in
    widgets = json.loads(text)["widgets"]
    rows = [m for w in widgets for m in _dashboard_metrics(w["properties"].get("metrics", []))]
    shown = {m[1] for m in rows if m[0] == "Tessera"}
    for m in rows:  # namespace, name, then dimension name/value pairs
        assert len(m) % 2 == 0, m
        if m[0] == "Tessera":
            assert m[2:6] == ["service", "tessera", "Stage", "x"], m
    contract = _contract()
    assert shown == set(contract)
    alarmed = set().union(*(_alarm_metrics(a) for a in _alarms(packaged_prod).values()))
    assert {m for ns, m in alarmed if ns == "Tessera"} <= set(contract)
    for name, dims in contract.items():
        assert "`service`" in dims, name
        assert "`Stage`" in dims, name
    alarm_widget = next(w for w in widgets if w["type"] == "alarm")
    assert len(alarm_widget["properties"]["alarms"]) == len(_alarms(packaged_prod))


def test_rotation_schedules_wait_for_the_rotation_functions_log_group(
    packaged_prod: dict[str, Any],
) -> None:
    """The first rotation runs when the schedule is created: its log lines must have a group
    with the stage's retention to go to, not one Lambda creates without retention."""
    _, rotation = package.app_functions()
    group = package.log_group_of(packaged_prod, package.cfn_name(rotation))
    assert group is not None
    schedules = resources_of(packaged_prod, "AWS::SecretsManager::RotationSchedule")
    assert len(schedules) == 2
    for name, schedule in schedules.items():
        assert group in schedule["DependsOn"], name


def test_prod_functions_name_their_own_log_groups_in_every_partition(
    packaged_prod: dict[str, Any],
) -> None:
    for role in resources_of(packaged_prod, "AWS::IAM::Role").values():
        (inline,) = role["Properties"]["Policies"]
        assert _bare_placeholders(inline) == []
        assert not [v for v in _strings(inline) if v.startswith("arn:aws:")]


# --- refusing a placeholder issuer (make deploy, make deploy-stack) ---------------------------


@pytest.mark.parametrize(
    ("name", "placeholder"),
    [
        ("https://auth.example.com", True),
        ("auth.example.org", True),
        ("example.net", True),
        ("https://auth.test", True),
        ("localhost", True),
        ("", True),
        ("https://auth.acme.io", False),
        ("auth.examples.com", False),
        ("orders-api", False),
    ],
)
def test_placeholder_names_are_the_ones_reserved_for_examples(name: str, placeholder: bool) -> None:
    assert package.is_placeholder(name) is placeholder


CERT = "arn:aws:acm:eu-west-1:111122223333:certificate/0f1e2d3c"


def _preflight(*args: str) -> tuple[int, str]:
    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = preflight.main(list(args))
    return code, err.getvalue()


def test_prod_stack_with_a_placeholder_issuer_is_refused_in_one_line() -> None:
    code, err = _preflight("--stage", "prod", "check-stack")
    assert code == 2
    assert err.count("\n") == 1
    assert err.startswith("error: stage prod: the issuer https://auth.example.com is a placeholder")
    assert "DOMAIN=" in err


def test_prod_stack_needs_a_real_audience_and_a_certificate() -> None:
    code, err = _preflight("--stage", "prod", "--domain", "auth.acme.io", "check-stack")
    assert (code, err.count("\n")) == (2, 1)
    assert "audience https://api.example.com is a placeholder" in err
    args = ["--stage", "prod", "--domain", "auth.acme.io", "--audience", "https://api.acme.io"]
    code, err = _preflight(*args, "check-stack")
    assert (code, err.count("\n")) == (2, 1)
    assert "CERTIFICATE_ARN is required" in err
    assert _preflight(*args, "--certificate-arn", CERT, "check-stack") == (0, "")


def test_dev_stack_accepts_placeholders() -> None:
    assert _preflight("--stage", "dev", "check-stack") == (0, "")
    assert _preflight("--stage", "dev", "check-chalice") == (0, "")


def test_chalice_deploy_takes_the_issuer_from_config_only() -> None:
    """make deploy: chalice deploy sets TESSERA_ISSUER from config.json, so DOMAIN cannot change
    it, and prod's placeholder there is refused."""
    code, err = _preflight("--stage", "dev", "--domain", "auth.acme.io", "check-chalice")
    assert (code, err.count("\n")) == (2, 1)
    assert "TESSERA_ISSUER" in err
    code, err = _preflight("--stage", "prod", "--certificate-arn", CERT, "check-chalice")
    assert (code, err.count("\n")) == (2, 1)
    assert "is a placeholder" in err


def test_stack_parameters_carry_every_setting_given() -> None:
    s = preflight.DeploySettings(
        domain="auth.acme.io", certificate_arn=CERT, audience="https://api.acme.io"
    )
    assert preflight.stack_parameters("prod", s) == [
        "Stage=prod",
        "DomainName=auth.acme.io",
        f"CertificateArn={CERT}",
        "Audience=https://api.acme.io",
    ]


@pytest.mark.parametrize("target", ["deploy-stack", "deploy"])
def test_make_refuses_a_prod_deploy_with_a_placeholder_issuer(target: str) -> None:
    """The Makefile stops at the preflight: nothing is packaged, no AWS call is made."""
    import subprocess

    out = subprocess.run(
        ["make", "-s", target, "STAGE=prod", "BUCKET=some-bucket"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode != 0
    first = out.stderr.splitlines()[0]
    assert first.startswith(
        "error: stage prod: the issuer https://auth.example.com is a placeholder"
    )
    assert "aws " not in out.stdout


# --- the two-stack path: chalice deploy with concrete ARNs, throttles --------------------------


def test_chalice_deploy_gets_policies_naming_the_callers_account(
    env: dict[str, str], tmp_path: Path
) -> None:
    project = tmp_path / "project"
    (project / ".chalice").mkdir(parents=True)
    (project / "chalicelib").mkdir()
    for name in ("app.py", "requirements.txt", "chalicelib/__init__.py", ".chalice/config.json"):
        (project / name).write_text((ROOT / name).read_text())
    for path in CHALICE.glob("policy-*.json"):
        (project / ".chalice" / path.name).write_text(path.read_text())
    with mock_aws():
        values = policies.caller_values(boto3.Session(region_name="eu-west-1"))
    assert values == policies.pseudo_values("aws", "eu-west-1", ACCOUNT, "amazonaws.com")
    staged = wire.chalice_project("prod", values, project=project)
    rendered = json.loads((staged / ".chalice" / "policy-prod.json").read_text())
    assert "${" not in json.dumps(rendered)
    assert allows(
        rendered,
        "secretsmanager:GetSecretValue",
        secret_arn("prod", "pepper", region="eu-west-1"),
    )
    assert (staged / ".chalice" / "config.json").read_text() == (
        project / ".chalice" / "config.json"
    ).read_text()
    assert (staged / ".chalice" / "deployed").resolve() == (project / ".chalice" / "deployed")


def test_throttles_are_set_on_the_deployed_stage(env: dict[str, str]) -> None:
    with mock_aws():
        apigw = boto3.client("apigateway", region_name=REGION)
        api = apigw.create_rest_api(name="tessera")["id"]
        root = apigw.get_resources(restApiId=api)["items"][0]["id"]
        apigw.put_method(restApiId=api, resourceId=root, httpMethod="GET", authorizationType="NONE")
        apigw.put_integration(restApiId=api, resourceId=root, httpMethod="GET", type="MOCK")
        apigw.create_deployment(restApiId=api, stageName="api")
        wire.set_throttles(apigw, api, "api")
        settings = apigw.get_stage(restApiId=api, stageName="api")["methodSettings"]
    for t in package.THROTTLES:
        for path, method in t.routes:
            key = package.method_setting_path(path).removeprefix("/") + "/" + method
            assert settings[key]["throttlingRateLimit"] == t.rate, key
            assert settings[key]["throttlingBurstLimit"] == t.burst, key
