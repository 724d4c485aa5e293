"""Apply ``infra/template.yaml`` to an AWS endpoint: the emulator (make local, tests).

moto's CloudFormation ignores Secrets Manager resources and TTL, so instead of ``CreateStack`` this
reads the template and creates each stateful resource with the service's own API, exactly as
declared. Resource types that only matter in AWS (IAM, rotation schedules, gateway responses, the
custom domain, WAF, alarms and dashboard) are listed in ``AWS_ONLY`` and skipped; any other unknown
type is an error, so the template cannot grow a resource that the local stack silently lacks.
Conditions are evaluated with the parameters' defaults (``Stage`` set): a resource whose condition
is false is not created, as in AWS. ``simplify`` also serves ``make package``, which knows only
the wiring parameters.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

TEMPLATE = Path(__file__).with_name("template.yaml")
AWS_ONLY = {
    "AWS::KMS::Alias",
    "AWS::SecretsManager::RotationSchedule",
    "AWS::SecretsManager::ResourcePolicy",
    "AWS::ApiGateway::GatewayResponse",
    "AWS::Lambda::Permission",
    "AWS::IAM::Role",
    "AWS::IAM::Policy",
    "AWS::IAM::ManagedPolicy",
    "AWS::Logs::LogGroup",
    "AWS::ApiGateway::DomainName",
    "AWS::ApiGateway::BasePathMapping",
    "AWS::Route53::RecordSet",
    "AWS::WAFv2::WebACLAssociation",
    "AWS::SNS::Topic",
    "AWS::SNS::Subscription",
    "AWS::CloudWatch::Alarm",
    "AWS::CloudWatch::Dashboard",
}


class _CfnLoader(yaml.SafeLoader):
    """YAML loader that keeps CloudFormation short-form tags as {"Fn::X": value} dicts."""


def _tag(name: str) -> Any:
    def construct(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
        if name in ("Ref", "Condition"):
            return {name: value}
        if name == "GetAtt" and isinstance(value, str):
            value = value.split(".", 1)
        return {f"Fn::{name}": value}

    return construct


_TAGS = ("Ref", "Sub", "GetAtt", "Join", "If", "Equals", "Not", "And", "Or", "Condition")
for _name in (*_TAGS, "Select", "Split", "Base64"):
    _CfnLoader.add_constructor(f"!{_name}", _tag(_name))


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    with path.open() as fh:
        doc = yaml.load(fh, Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass
    assert isinstance(doc, dict)
    return doc


def simplify(expr: Any, params: dict[str, str], conditions: dict[str, Any]) -> Any:
    """A condition evaluated as far as ``params`` allow: True, False, or what is left of it.

    Fn::Equals of two known values is decided; Fn::Not, Fn::And and Fn::Or fold decided parts; a
    ``{"Condition": name}`` is replaced by its (simplified) expression. Unknown parameters stay.
    """
    if isinstance(expr, bool):
        return expr
    ((fn, args),) = expr.items()
    if fn == "Condition":
        return simplify(conditions[args], params, conditions)
    if fn == "Fn::Equals":
        left, right = (_known(a, params) for a in args)
        return expr if left is None or right is None else left == right
    if fn == "Fn::Not":
        inner = simplify(args[0], params, conditions)
        return (not inner) if isinstance(inner, bool) else {"Fn::Not": [inner]}
    if fn in ("Fn::And", "Fn::Or"):
        decisive = fn == "Fn::Or"  # Or: one true part decides; And: one false part
        parts = [simplify(a, params, conditions) for a in args]
        if any(p is decisive for p in parts):
            return decisive
        rest = [p for p in parts if not isinstance(p, bool)]
        if not rest:
            return not decisive
        return rest[0] if len(rest) == 1 else {fn: rest}
    raise ValueError(f"unsupported condition function {fn}")


def _known(value: Any, params: dict[str, str]) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and set(value) == {"Ref"}:
        return params.get(value["Ref"])
    return None


def condition_values(doc: dict[str, Any], params: dict[str, str]) -> dict[str, bool]:
    """Every condition of the template, decided with ``params`` (all parameters known)."""
    conditions = doc.get("Conditions", {})
    found = {name: simplify(expr, params, conditions) for name, expr in conditions.items()}
    undecided = sorted(name for name, value in found.items() if not isinstance(value, bool))
    if undecided:
        raise ValueError(f"conditions depend on unknown parameters: {undecided}")
    return found


def parameter_values(doc: dict[str, Any], given: dict[str, str]) -> dict[str, str]:
    """The parameters' defaults, overridden by ``given``."""
    values = {
        name: str(spec["Default"])
        for name, spec in doc.get("Parameters", {}).items()
        if "Default" in spec
    }
    values.update(given)
    return values


class _Resolver:
    def __init__(self, params: dict[str, str], region: str, account: str) -> None:
        self.values: dict[str, str] = {
            **params,
            "AWS::Region": region,
            "AWS::AccountId": account,
            "AWS::Partition": "aws",
        }

    def __call__(self, value: Any) -> Any:
        if isinstance(value, dict) and len(value) == 1:
            ((k, v),) = value.items()
            if k == "Ref":
                return self.values.get(v, v)
            if k == "Fn::Sub":
                return re.sub(r"\$\{([^}]+)\}", lambda m: str(self.values.get(m[1], m[0])), v)
            if k == "Fn::GetAtt":
                return self.values.get(".".join(v), "")
        if isinstance(value, dict):
            return {k: self(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self(v) for v in value]
        return value


def provision(session: Any, stage: str, template: dict[str, Any] | None = None) -> dict[str, str]:
    """Create every stateful resource of the template for ``stage``; return logical id -> name."""
    doc = template or load_template()
    region = session.region_name or "us-east-1"
    params = parameter_values(doc, {"Stage": stage})
    conditions = condition_values(doc, params)
    resolve = _Resolver(params, region, "123456789012")
    created: dict[str, str] = {}
    for logical_id, resource in doc["Resources"].items():
        rtype = resource["Type"]
        if "Condition" in resource and not conditions[resource["Condition"]]:
            continue
        props = resolve(resource.get("Properties", {}))
        if rtype in AWS_ONLY or rtype.startswith("AWS::Serverless::"):
            continue
        if rtype == "AWS::KMS::Key":
            kms = session.client("kms")
            key = kms.create_key(Description=props.get("Description", ""))["KeyMetadata"]
            resolve.values[logical_id] = key["KeyId"]
            resolve.values[f"{logical_id}.Arn"] = key["Arn"]
        elif rtype == "AWS::DynamoDB::Table":
            _create_table(session.client("dynamodb"), props)
            resolve.values[logical_id] = props["TableName"]
        elif rtype == "AWS::SecretsManager::Secret":
            sm = session.client("secretsmanager")
            kwargs = {"Name": props["Name"], "Description": props.get("Description", "")}
            if "KmsKeyId" in props:
                kwargs["KmsKeyId"] = props["KmsKeyId"]
            if "SecretString" in props:
                kwargs["SecretString"] = props["SecretString"]
            arn = sm.create_secret(**kwargs)["ARN"]
            resolve.values[logical_id] = arn
        else:
            raise ValueError(f"the local stack cannot create {rtype} ({logical_id})")
        created[logical_id] = resolve.values[logical_id]
    return created


def _create_table(ddb: Any, props: dict[str, Any]) -> None:
    kwargs: dict[str, Any] = {
        "TableName": props["TableName"],
        "AttributeDefinitions": props["AttributeDefinitions"],
        "KeySchema": props["KeySchema"],
        "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
    }
    if "GlobalSecondaryIndexes" in props:
        kwargs["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
    if "SSESpecification" in props:
        kwargs["SSESpecification"] = {"Enabled": bool(props["SSESpecification"]["SSEEnabled"])}
    if "DeletionProtectionEnabled" in props:
        kwargs["DeletionProtectionEnabled"] = bool(props["DeletionProtectionEnabled"])
    ddb.create_table(**kwargs)
    ttl = props.get("TimeToLiveSpecification")
    if ttl and ttl.get("Enabled"):
        ddb.update_time_to_live(
            TableName=props["TableName"],
            TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True},
        )
    pitr = props.get("PointInTimeRecoverySpecification")
    if pitr and pitr.get("PointInTimeRecoveryEnabled"):
        ddb.update_continuous_backups(
            TableName=props["TableName"],
            PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
        )
