"""Who may invoke the authorizer function from other accounts: the stage setting
``authorizer_callers``.

In .chalice/config.json, per stage, a list of AWS accounts (any API of theirs, in the stack's
region) or single APIs::

    "authorizer_callers": ["111122223333", "arn:aws:execute-api:eu-west-1:444455556666:a1b2c3d4e5"]

Each entry becomes one resource-based permission of the authorizer function: principal
``apigateway.amazonaws.com``, action ``lambda:InvokeFunction``, source ARN
``arn:<partition>:execute-api:<region>:<account>:<api-id or *>/authorizers/*`` and source account.
The packaged stack holds them as ``AWS::Lambda::Permission`` resources (infra/package.py);
``make deploy`` writes them with ``lambda:AddPermission`` after ``chalice deploy`` and removes the
ones no longer listed (infra/wire.py; statement ids ``tessera-caller-<hash of the entry>``). An API
in Tessera's own account may be listed too, or add its own permission (README).
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any, NamedTuple

ROOT = Path(__file__).resolve().parent.parent
STATEMENT_PREFIX = "tessera-caller-"
PRINCIPAL = "apigateway.amazonaws.com"
_ACCOUNT = re.compile(r"\d{12}")
_API_ARN = re.compile(
    r"arn:(?P<partition>aws|aws-cn|aws-us-gov):execute-api:(?P<region>[a-z]{2}(-[a-z]+)+-\d):"
    r"(?P<account>\d{12}):(?P<api>[a-z0-9]{1,32})"
)


class Caller(NamedTuple):
    entry: str  # as written in the stage setting
    account: str
    api_arn: str | None  # one API (arn:...:execute-api:<region>:<account>:<api-id>), or None

    @property
    def statement_id(self) -> str:
        return STATEMENT_PREFIX + hashlib.sha256(self.entry.encode()).hexdigest()[:16]

    def source_arn(self, partition: str, region: str) -> str:
        """The permission's source ARN; an account's APIs in ``region`` and ``partition``."""
        if self.api_arn is not None:
            return self.api_arn + "/authorizers/*"
        return f"arn:{partition}:execute-api:{region}:{self.account}:*/authorizers/*"

    def cfn_source_arn(self) -> Any:
        if self.api_arn is not None:
            return self.api_arn + "/authorizers/*"
        return {
            "Fn::Sub": "arn:${AWS::Partition}:execute-api:${AWS::Region}:"
            f"{self.account}:*/authorizers/*"
        }


def parse(entry: object) -> Caller:
    if isinstance(entry, str) and _ACCOUNT.fullmatch(entry):
        return Caller(entry, entry, None)
    found = _API_ARN.fullmatch(entry) if isinstance(entry, str) else None
    if found is None:
        raise SystemExit(
            f"authorizer_callers: {entry!r} is neither a 12-digit account id nor an API's ARN"
            " (arn:aws:execute-api:<region>:<account>:<api-id>)"
        )
    return Caller(str(entry), found.group("account"), str(entry))


def callers(stage: str, project: Path = ROOT) -> list[Caller]:
    """The stage's ``authorizer_callers`` from .chalice/config.json (none if unset)."""
    config = json.loads((project / ".chalice" / "config.json").read_text())
    raw = config["stages"].get(stage, {}).get("authorizer_callers", [])
    if not isinstance(raw, list):
        raise SystemExit(f"authorizer_callers of stage {stage!r} must be a list")
    found = [parse(entry) for entry in raw]
    return list({c.entry: c for c in found}.values())


def permissions(found: list[Caller], function: Any) -> dict[str, dict[str, Any]]:
    """CloudFormation permissions (logical id -> resource) for ``function`` (a template value)."""
    return {
        "AuthorizerCaller" + c.statement_id.removeprefix(STATEMENT_PREFIX): {
            "Type": "AWS::Lambda::Permission",
            "Properties": {
                "FunctionName": function,
                "Action": "lambda:InvokeFunction",
                "Principal": PRINCIPAL,
                "SourceAccount": c.account,
                "SourceArn": c.cfn_source_arn(),
            },
        }
        for c in found
    }


def sync(lambda_client: Any, function_arn: str, found: list[Caller]) -> tuple[list[str], list[str]]:
    """Make the function's ``tessera-caller-*`` permissions exactly ``found`` (make deploy);
    other statements are left alone. Returns (added, removed) statement ids."""
    partition, region = function_arn.split(":")[1], function_arn.split(":")[3]
    try:
        policy = json.loads(lambda_client.get_policy(FunctionName=function_arn)["Policy"])
    except lambda_client.exceptions.ResourceNotFoundException:
        policy = {"Statement": []}
    present = {s["Sid"] for s in policy["Statement"] if s["Sid"].startswith(STATEMENT_PREFIX)}
    wanted = {c.statement_id: c for c in found}
    removed = sorted(present - set(wanted))
    for sid in removed:
        lambda_client.remove_permission(FunctionName=function_arn, StatementId=sid)
    added = sorted(set(wanted) - present)
    for sid in added:
        c = wanted[sid]
        lambda_client.add_permission(
            FunctionName=function_arn,
            StatementId=sid,
            Action="lambda:InvokeFunction",
            Principal=PRINCIPAL,
            SourceArn=c.source_arn(partition, region),
            SourceAccount=c.account,
        )
    return added, removed
