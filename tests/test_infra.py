"""Infrastructure as code: the template, the IAM policies and the packaged artifact, proven offline.

The template tests read infra/template.yaml; the local-stack test provisions it into ``mock_aws``
exactly as ``make local`` and conftest do; the package tests run ``make package``'s builder once
(``chalice package`` needs no credentials, only the Lambda wheels from the package index).
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

from infra import package, wire
from infra.provision import AWS_ONLY, load_template, provision

ROOT = Path(__file__).resolve().parent.parent
CHALICE = ROOT / ".chalice"
STAGES = ("dev", "prod")
ACCOUNT = "123456789012"


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


def policy(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((CHALICE / name).read_text())
    return doc


def chalice_config() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((CHALICE / "config.json").read_text())
    return doc


def secret_arn(stage: str, name: str) -> str:
    return f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:tessera/{stage}/{name}-AbC123"


def table_arn(stage: str, table: str = "tessera") -> str:
    return f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/{table}-{stage}"


def function_policies(stage: str) -> dict[str, dict[str, Any]]:
    """Function name -> the policy document its role gets in ``stage``."""
    cfg = chalice_config()["stages"][stage]
    found = {"api_handler": policy(cfg["iam_policy_file"])}
    for name, fn in cfg.get("lambda_functions", {}).items():
        found[name] = policy(fn["iam_policy_file"])
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
    from chalicelib.api_rules_store import PARTITION

    authorizer, _ = package.app_functions()
    p = function_policies(stage)[authorizer]
    queries = [st for st in p["Statement"] if "dynamodb:Query" in _as_list(st["Action"])]
    assert len(queries) == 1
    assert _as_list(queries[0]["Action"]) == ["dynamodb:Query"]
    assert queries[0]["Resource"] == [table_arn(stage).replace("us-east-1:" + ACCOUNT, "*:*")]
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
            assert cond["kms:ViaService"] == "secretsmanager.*.amazonaws.com", name
            for arn in _as_list(cond["kms:EncryptionContext:SecretARN"]):
                assert arn.startswith(f"arn:aws:secretsmanager:*:*:secret:tessera/{stage}/"), name


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
    settings = set(re.findall(r'"(TESSERA_\w+)"', (ROOT / "chalicelib" / "config.py").read_text()))
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
    issuer = chalice_config()["stages"]["dev"]["environment_variables"]["TESSERA_ISSUER"]
    outputs = doc["Outputs"]
    assert outputs["Issuer"]["Value"] == issuer
    assert outputs["JwksUrl"]["Value"] == issuer + "/.well-known/jwks.json"
    arn = outputs["AuthorizerFunctionArn"]
    assert arn["Value"] == {"Fn::GetAtt": [package.cfn_name(authorizer), "Arn"]}
    assert doc["Resources"][package.cfn_name(authorizer)]["Type"] == "AWS::Serverless::Function"
    assert "Export" in arn


def test_packaged_functions_get_their_policy_files_and_python_3_13(
    packaged: tuple[dict[str, Any], Path],
) -> None:
    doc, _ = packaged
    policies = function_policies("dev")
    names = {package.cfn_name(n) if n != "api_handler" else "APIHandler": n for n in policies}
    functions = resources_of(doc, "AWS::Serverless::Function")
    assert set(functions) == set(names)
    for logical_id, fn in functions.items():
        assert fn["Properties"]["Runtime"] == "python3.13"
        role = doc["Resources"][fn["Properties"]["Role"]["Fn::GetAtt"][0]]
        (inline,) = role["Properties"]["Policies"]
        assert inline["PolicyDocument"] == policies[names[logical_id]], logical_id


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
    # cryptography and what it needs; boto3/botocore come with the runtime; chalice is its
    # runtime stub (chalice/app.py), not the CLI.
    assert top == {"app.py", "chalicelib", "chalice", "cryptography", "cffi", "pycparser"}


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


# --- the two-stack path (make deploy) -------------------------------------------------------


def _deployed(tmp_path: Path, stage: str, resources: list[dict[str, Any]]) -> Path:
    folder = tmp_path / ".chalice" / "deployed"
    folder.mkdir(parents=True)
    (folder / f"{stage}.json").write_text(
        json.dumps({"resources": resources, "schema_version": "2.0"})
    )
    return tmp_path


def test_infra_stack_is_wired_to_the_deployed_rotation_function(tmp_path: Path) -> None:
    arn = "arn:aws:lambda:us-east-1:123456789012:function:tessera-dev-rotate_keys"
    project = _deployed(
        tmp_path,
        "dev",
        [{"name": "rotate_keys", "resource_type": "lambda_function", "lambda_arn": arn}],
    )
    assert wire.parameters("dev", project) == ["Stage=dev", f"RotationFunctionArn={arn}"]


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
