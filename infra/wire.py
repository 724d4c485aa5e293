"""Wire the infra stack to what ``chalice deploy`` created (``make deploy``, the two-stack path).

    python -m infra.wire --stage dev parameters --before-deploy  # the infra stack's first deploy
    python -m infra.wire --stage dev chalice-project    # a project copy with concrete policy ARNs
    python -m infra.wire --stage dev parameters         # RotationFunctionArn=, RestApiId=, ...
    python -m infra.wire --stage dev gateway-responses  # RFC 6750 answers on the deployed API
    python -m infra.wire --stage dev authorizer-handler # the authorizer without Chalice
    python -m infra.wire --stage dev authorizer-callers # who may invoke it (infra/callers.py)
    python -m infra.wire --stage dev throttles          # the stage's throttles (infra.package)
    python -m infra.wire gateway-responses --rest-api-id ID --api-stage STAGE  # on another API

The infra stack (infra/template.yaml) must not reference Chalice's resources, so it takes the
rotation function's ARN and the REST API's id, stage and name as parameters, read here from
``.chalice/deployed/<stage>.json``, with the deploy settings (domain, certificate, WAF, alarm topic;
infra/preflight.py). ``chalice deploy`` sends the policy files to IAM as they are, so it runs on a
copy of the project (``build/<stage>/chalice-project``) whose policy files name the caller's
partition, region and account (infra/policies.py); its ``.chalice/deployed`` is this project's.
The stage's throttles are API Gateway stage settings, which only the stage's owner can set: here
the ``throttles`` action, with the packaged stack's defaults (``infra.package.THROTTLES``).
The gateway responses cannot live in that stack: ``chalice deploy`` re-imports the API definition
in ``overwrite`` mode on every run, which drops them, so this puts them back after each deploy and
redeploys the stage (gateway responses take effect with a deployment). ``chalice deploy`` also sets
every function's handler to ``app.<name>``; the authorizer's is then switched to the plain module
``chalicelib.authorizer_lambda.handler`` (same answers, without importing Chalice at cold start),
and given exactly the invoke permissions the stage's ``authorizer_callers`` list (infra/callers.py);
the infra stack exports its ARN as ``tessera-<stage>-AuthorizerFunctionArn``.
The packaged single-stack path does not need this module: there both are part of the template
(infra/package.py).
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path
from typing import Any

from infra import callers, policies, preflight
from infra.package import (
    AUTHORIZER_HANDLER,
    ROOT,
    ROTATION_FUNCTION,
    THROTTLES,
    app_functions,
    demo_on,
    gateway_responses,
    method_setting_path,
    stage_config,
)
from infra.preflight import DeploySettings


def deployed(stage: str, project: Path = ROOT) -> dict[str, dict[str, Any]]:
    """Resources that ``chalice deploy`` recorded for ``stage``, by name."""
    path = project / ".chalice" / "deployed" / f"{stage}.json"
    if not path.exists():
        raise SystemExit(f"{path} not found: run `chalice deploy --stage {stage}` first")
    return {r["name"]: r for r in json.loads(path.read_text())["resources"]}


def parameters(
    stage: str,
    project: Path = ROOT,
    settings: DeploySettings | None = None,
    before_deploy: bool = False,
) -> list[str]:
    """Parameter overrides of the infra stack: the stage, its demo switch, the issuer's domain
    (TESSERA_ISSUER's host) and the deploy settings given; after ``chalice deploy`` also what it
    created (rotation function, REST API), which the rotation schedules, the custom domain's
    mapping, the WAF association and the API alarms need."""
    config = stage_config(stage)
    settings = settings or DeploySettings()
    found = {
        "Stage": stage,
        "Demo": "true" if demo_on(stage) else "false",
        "DomainName": preflight.host_of(config["env"].get("TESSERA_ISSUER", "")),
        "CertificateArn": settings.certificate_arn,
        "HostedZoneId": settings.hosted_zone_id,
        "WebAclArn": settings.web_acl_arn,
        "AlarmTopicArn": settings.alarm_topic_arn,
        "AlarmEmail": settings.alarm_email,
    }
    if not before_deploy:
        resources = deployed(stage, project)
        rotation = resources.get(ROTATION_FUNCTION)
        if rotation is None:
            raise SystemExit(f"chalice deploy recorded no {ROTATION_FUNCTION!r} function")
        rest_api = resources.get("rest_api")
        if rest_api is None:
            raise SystemExit("chalice deploy recorded no REST API")
        found["RotationFunctionArn"] = rotation["lambda_arn"]
        authorizer = resources.get(app_functions()[0])
        if authorizer is not None:  # exported for the APIs that attach it
            found["AuthorizerFunctionArn"] = authorizer["lambda_arn"]
        found["RestApiId"] = rest_api["rest_api_id"]
        found["ApiStage"] = config["api_gateway_stage"]
        found["ApiName"] = config["app_name"]  # chalice deploy names the API after the app
    return [f"{k}={v}" for k, v in found.items() if v]


def chalice_project(
    stage: str, values: dict[str, str], project: Path = ROOT, out: Path | None = None
) -> Path:
    """A copy of the project for ``chalice deploy --project-dir``: the app, its requirements and
    config.json, the policy files rendered with ``values`` (infra/policies.py), and this
    project's ``.chalice/deployed`` linked in, so the deployment record stays where
    ``chalice delete`` and this module read it."""
    target = out or project / "build" / stage / "chalice-project"
    if target.exists():
        shutil.rmtree(target)
    (target / ".chalice").mkdir(parents=True)
    shutil.copy2(project / "app.py", target / "app.py")
    shutil.copy2(project / "requirements.txt", target / "requirements.txt")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for folder in ("chalicelib", "vendor"):
        if (project / folder).is_dir():
            shutil.copytree(project / folder, target / folder, ignore=ignore)
    shutil.copy2(project / ".chalice" / "config.json", target / ".chalice" / "config.json")
    for path in sorted((project / ".chalice").glob("policy-*.json")):
        rendered = policies.render(policies.load(path), values)
        (target / ".chalice" / path.name).write_text(json.dumps(rendered, indent=2) + "\n")
    records = project / ".chalice" / "deployed"
    records.mkdir(exist_ok=True)
    (target / ".chalice" / "deployed").symlink_to(records.resolve(), target_is_directory=True)
    return target


def throttle_operations() -> list[dict[str, str]]:
    """``update_stage`` patch operations for the stage's throttles (the packaged defaults)."""
    ops = []
    for t in THROTTLES:
        for path, method in t.routes:
            prefix = f"{method_setting_path(path)}/{method}/throttling"
            ops.append({"op": "replace", "path": f"{prefix}/rateLimit", "value": str(t.rate)})
            ops.append({"op": "replace", "path": f"{prefix}/burstLimit", "value": str(t.burst)})
    return ops


def set_throttles(apigateway: Any, rest_api_id: str, api_stage: str) -> dict[str, Any]:
    """Apply the throttles to the deployed stage; return its method settings."""
    stage = apigateway.update_stage(
        restApiId=rest_api_id, stageName=api_stage, patchOperations=throttle_operations()
    )
    settings: dict[str, Any] = stage.get("methodSettings", {})
    return settings


def put_gateway_responses(apigateway: Any, rest_api_id: str, api_stage: str) -> list[str]:
    """Put every response of infra/gateway-responses.yaml on the API and redeploy its stage."""
    responses = gateway_responses()
    for response_type, spec in responses.items():
        # DEFAULT_4XX/5XX name no status: each response type keeps its own.
        status = {"statusCode": str(spec["statusCode"])} if "statusCode" in spec else {}
        apigateway.put_gateway_response(
            restApiId=rest_api_id,
            responseType=response_type,
            responseParameters=spec.get("responseParameters", {}),
            responseTemplates=spec.get("responseTemplates", {}),
            **status,
        )
    apigateway.create_deployment(
        restApiId=rest_api_id,
        stageName=api_stage,
        description="tessera gateway responses (infra/wire.py)",
    )
    return sorted(responses)


def set_authorizer_handler(lambda_client: Any, function_arn: str) -> str:
    """Point the deployed authorizer function at the plain handler; waits for Lambda to apply
    it (a function being updated refuses another update, and chalice deploy just updated it)."""
    waiter = lambda_client.get_waiter("function_updated_v2")
    waiter.wait(FunctionName=function_arn)
    lambda_client.update_function_configuration(
        FunctionName=function_arn, Handler=AUTHORIZER_HANDLER
    )
    waiter.wait(FunctionName=function_arn)
    handler: str = lambda_client.get_function_configuration(FunctionName=function_arn)["Handler"]
    return handler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m infra.wire", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--stage", default="dev")
    actions = ["parameters", "chalice-project", "gateway-responses", "authorizer-handler"]
    parser.add_argument("action", choices=[*actions, "authorizer-callers", "throttles"])
    parser.add_argument("--before-deploy", action="store_true", help="parameters: no wiring yet")
    parser.add_argument("--rest-api-id", help="another REST API (default: this stage's)")
    parser.add_argument("--api-stage", help="its stage (default: this stage's api_gateway_stage)")
    preflight.add_arguments(parser)
    args = parser.parse_args(argv)
    if args.action == "parameters":
        found = parameters(
            args.stage, settings=preflight.settings_from(args), before_deploy=args.before_deploy
        )
        print(" ".join(found))
        return 0
    import boto3

    if args.action == "chalice-project":
        print(chalice_project(args.stage, policies.caller_values(boto3.Session())))
        return 0

    if args.action in ("authorizer-handler", "authorizer-callers"):
        name = app_functions()[0]
        function = deployed(args.stage).get(name)
        if function is None:
            raise SystemExit(f"chalice deploy recorded no {name!r} function")
        if args.action == "authorizer-callers":
            listed = callers.callers(args.stage)
            added, removed = callers.sync(boto3.client("lambda"), function["lambda_arn"], listed)
            print(f"{name}: {len(listed)} callers; added {len(added)}, removed {len(removed)}")
            return 0
        handler = set_authorizer_handler(boto3.client("lambda"), function["lambda_arn"])
        print(f"{name}: handler {handler}")
        return 0
    api_id = args.rest_api_id
    if api_id is None:
        rest_api = deployed(args.stage).get("rest_api")
        if rest_api is None:
            raise SystemExit("chalice deploy recorded no REST API")
        api_id = rest_api["rest_api_id"]
    api_stage = args.api_stage or stage_config(args.stage)["api_gateway_stage"]
    if args.action == "throttles":
        set_throttles(boto3.client("apigateway"), api_id, api_stage)
        print(f"throttles of {len(THROTTLES)} groups set on {api_id}/{api_stage}")
        return 0
    done = put_gateway_responses(boto3.client("apigateway"), api_id, api_stage)
    print(f"gateway responses {', '.join(done)} deployed to {api_id}/{api_stage}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
