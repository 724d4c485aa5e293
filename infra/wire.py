"""Wire the infra stack to what ``chalice deploy`` created (``make deploy``, the two-stack path).

    python -m infra.wire --stage dev parameters         # RotationFunctionArn=... (infra stack)
    python -m infra.wire --stage dev gateway-responses  # RFC 6750 answers on the deployed API
    python -m infra.wire --stage dev authorizer-handler # the authorizer without Chalice
    python -m infra.wire gateway-responses --rest-api-id ID --api-stage STAGE  # on another API

The infra stack (infra/template.yaml) must not reference Chalice's functions, so it takes the
rotation function's ARN as a parameter, read here from ``.chalice/deployed/<stage>.json``.
The gateway responses cannot live in that stack: ``chalice deploy`` re-imports the API definition
in ``overwrite`` mode on every run, which drops them, so this puts them back after each deploy and
redeploys the stage (gateway responses take effect with a deployment). ``chalice deploy`` also sets
every function's handler to ``app.<name>``; the authorizer's is then switched to the plain module
``chalicelib.authorizer_lambda.handler`` (same answers, without importing Chalice at cold start).
The packaged single-stack path does not need this module: there both are part of the template
(infra/package.py).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from infra.package import (
    AUTHORIZER_HANDLER,
    ROOT,
    ROTATION_FUNCTION,
    app_functions,
    gateway_responses,
    stage_config,
)


def deployed(stage: str, project: Path = ROOT) -> dict[str, dict[str, Any]]:
    """Resources that ``chalice deploy`` recorded for ``stage``, by name."""
    path = project / ".chalice" / "deployed" / f"{stage}.json"
    if not path.exists():
        raise SystemExit(f"{path} not found: run `chalice deploy --stage {stage}` first")
    return {r["name"]: r for r in json.loads(path.read_text())["resources"]}


def parameters(stage: str, project: Path = ROOT) -> list[str]:
    """Parameter overrides that wire the infra stack to the deployed functions."""
    rotation = deployed(stage, project).get(ROTATION_FUNCTION)
    if rotation is None:
        raise SystemExit(f"chalice deploy recorded no {ROTATION_FUNCTION!r} function")
    return [f"Stage={stage}", f"RotationFunctionArn={rotation['lambda_arn']}"]


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
    parser.add_argument("action", choices=["parameters", "gateway-responses", "authorizer-handler"])
    parser.add_argument("--rest-api-id", help="another REST API (default: this stage's)")
    parser.add_argument("--api-stage", help="its stage (default: this stage's api_gateway_stage)")
    args = parser.parse_args(argv)
    if args.action == "parameters":
        print(" ".join(parameters(args.stage)))
        return 0
    import boto3

    if args.action == "authorizer-handler":
        name = app_functions()[0]
        function = deployed(args.stage).get(name)
        if function is None:
            raise SystemExit(f"chalice deploy recorded no {name!r} function")
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
    done = put_gateway_responses(boto3.client("apigateway"), api_id, api_stage)
    print(f"gateway responses {', '.join(done)} deployed to {api_id}/{api_stage}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
