"""``make package``: one deployable CloudFormation artifact for a stage, built offline.

    python -m infra.package --stage dev [--out build/dev]

1. The merge template (``build/<stage>/merge.json``): ``infra/template.yaml`` with its wiring
   parameters bound to Chalice's own resources. Deployed alone (next to ``chalice deploy``) the
   template takes the rotation function's ARN as a parameter; here that parameter becomes
   ``Fn::GetAtt`` of the function Chalice generates, so one stack holds everything. The gateway
   responses (``infra/gateway-responses.yaml``) go into the REST API's OpenAPI definition, so they
   are part of every API deployment; outputs add the issuer, the JWKS URL and the authorizer's ARN
   (``chalice package`` exports neither); the authorizer function's handler becomes
   ``chalicelib.authorizer_lambda.handler``, which does not import Chalice.
2. ``chalice package --merge-template``: ``sam.json`` and ``deployment.zip``. It needs a region but
   no credentials; it fetches the Lambda wheels of requirements.txt from the package index.
3. ``.pyc`` files compiled by this interpreter (the runtime's minor version, which Chalice also
   takes from the interpreter) are added to the zip with ``unchecked-hash`` invalidation:
   ``/var/task`` is read-only, so without them every cold start compiles each module from source.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import os
import py_compile
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import yaml

from infra.provision import load_template

ROOT = Path(__file__).resolve().parent.parent
GATEWAY_RESPONSES = Path(__file__).with_name("gateway-responses.yaml")
ROTATION_FUNCTION = "rotate_keys"  # @app.lambda_function name in app.py; Secrets Manager invokes it
# The authorizer function's handler in AWS: a plain module, not app.py (tests/test_infra.py checks
# that it resolves).
AUTHORIZER_HANDLER = "chalicelib.authorizer_lambda.handler"
DEFAULT_REGION = "us-east-1"  # chalice package needs one; the template itself is region-neutral

# The condition of infra/template.yaml that guards the resources needing the rotation function's
# ARN (a parameter of the standalone stack, given after `chalice deploy`). Packaged: always wired.
WIRING_CONDITION = "HasRotationFunction"


def gateway_responses() -> dict[str, Any]:
    """Response type -> spec, from infra/gateway-responses.yaml (a merge-template fragment)."""
    fragment = yaml.safe_load(GATEWAY_RESPONSES.read_text())
    body = fragment["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]
    responses: dict[str, Any] = body["x-amazon-apigateway-gateway-responses"]
    return responses


def cfn_name(function_name: str) -> str:
    """The logical id Chalice gives a function's resource (``rotate_keys`` -> ``RotateKeys``)."""
    from chalice.utils import to_cfn_resource_name

    return str(to_cfn_resource_name(function_name))


def app_functions() -> tuple[str, str]:
    """(authorizer function name, rotation function name) as declared in app.py."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import app as app_module

    chalice_app = app_module.app
    authorizers = [a.name for a in chalice_app.builtin_auth_handlers]
    if len(authorizers) != 1:
        raise SystemExit(f"expected exactly one @app.authorizer in app.py, found {authorizers}")
    lambdas = [f.name for f in chalice_app.pure_lambda_functions]
    if ROTATION_FUNCTION not in lambdas:
        raise SystemExit(f"app.py has no @app.lambda_function named {ROTATION_FUNCTION!r}")
    return authorizers[0], ROTATION_FUNCTION


def stage_config(stage: str) -> dict[str, Any]:
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    if stage not in config["stages"]:
        raise SystemExit(f"unknown stage {stage!r}: add it to .chalice/config.json")
    env = {**config.get("environment_variables", {})}
    env.update(config["stages"][stage].get("environment_variables", {}))
    return {
        "api_gateway_stage": config["stages"][stage].get("api_gateway_stage", "api"),
        "env": env,
    }


def _replace(value: Any, refs: dict[str, Any]) -> Any:
    if isinstance(value, dict):
        if len(value) == 1 and "Ref" in value and value["Ref"] in refs:
            return refs[value["Ref"]]
        return {k: _replace(v, refs) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace(v, refs) for v in value]
    return value


def merge_template(stage: str) -> dict[str, Any]:
    """infra/template.yaml wired to Chalice's resources, plus gateway responses and outputs."""
    authorizer, rotation = app_functions()
    issuer = stage_config(stage)["env"].get("TESSERA_ISSUER", "").rstrip("/")
    if not issuer:
        raise SystemExit(f"TESSERA_ISSUER is not set for stage {stage!r} in .chalice/config.json")

    doc: dict[str, Any] = load_template()
    doc.pop("AWSTemplateFormatVersion", None)  # Chalice's template has its own
    params = doc["Parameters"]
    del params["RotationFunctionArn"]
    params["Stage"]["Default"] = stage
    params["Stage"]["AllowedValues"] = [stage]  # table and secret names are fixed in config.json
    doc = _replace(doc, {"RotationFunctionArn": {"Fn::GetAtt": [cfn_name(rotation), "Arn"]}})
    assert isinstance(doc, dict)
    del doc["Conditions"][WIRING_CONDITION]
    if not doc["Conditions"]:
        del doc["Conditions"]
    for resource in doc["Resources"].values():
        if resource.get("Condition") == WIRING_CONDITION:
            del resource["Condition"]

    doc["Resources"]["RestAPI"] = {
        "Properties": {
            "DefinitionBody": {"x-amazon-apigateway-gateway-responses": gateway_responses()}
        }
    }
    # The authorizer runs as a plain handler, without importing app.py and Chalice
    # (chalicelib/authorizer_lambda.py): merged over the function Chalice generates.
    doc["Resources"][cfn_name(authorizer)] = {"Properties": {"Handler": AUTHORIZER_HANDLER}}
    authorizer_arn = {"Fn::GetAtt": [cfn_name(authorizer), "Arn"]}
    doc["Outputs"].update(
        {
            "Issuer": {"Description": "iss of every access token", "Value": issuer},
            "JwksUrl": {"Description": "public keys", "Value": issuer + "/.well-known/jwks.json"},
            "AuthorizerFunctionArn": {
                "Description": "TOKEN authorizer that other REST APIs attach (README: Deploy)",
                "Value": authorizer_arn,
                "Export": {"Name": {"Fn::Sub": "${AWS::StackName}-AuthorizerFunctionArn"}},
            },
        }
    )
    return doc


def chalice_package(stage: str, merge: Path, out: Path) -> None:
    env = dict(os.environ)
    env.setdefault("AWS_DEFAULT_REGION", DEFAULT_REGION)
    chalice = Path(sys.executable).with_name("chalice")
    cmd = [str(chalice), "--project-dir", str(ROOT), "package", "--stage", stage]
    cmd += ["--merge-template", str(merge), str(out)]
    subprocess.run(cmd, check=True, env=env)  # noqa: S603 - our own chalice, fixed arguments


def fix_log_groups(template_path: Path) -> None:
    """Point each log group at its function's logical id.

    chalice 1.34 names the API handler ``APIHandler`` but writes its log group as
    ``/aws/lambda/${ApiHandler}``, a resource that does not exist (cfn-lint E1019; the stack would
    not deploy). Such a reference is resolved to the function whose id matches case-insensitively.
    """
    doc = json.loads(template_path.read_text())
    resources = doc["Resources"]
    by_lower = {name.lower(): name for name in resources}
    for resource in resources.values():
        if resource["Type"] != "AWS::Logs::LogGroup":
            continue
        sub = resource["Properties"]["LogGroupName"]["Fn::Sub"]
        target = sub.removeprefix("/aws/lambda/${").removesuffix("}")
        if target not in resources and target.lower() in by_lower:
            fixed = by_lower[target.lower()]
            resource["Properties"]["LogGroupName"] = {"Fn::Sub": "/aws/lambda/${" + fixed + "}"}
    template_path.write_text(json.dumps(doc, indent=2) + "\n")


def compile_pyc(zip_path: Path) -> int:
    """Add ``__pycache__/*.cpython-3XY.pyc`` for every module in the zip; return how many."""
    runtime = json.loads(zip_path.with_name("sam.json").read_text())
    runtimes = {
        r["Properties"]["Runtime"]
        for r in runtime["Resources"].values()
        if r["Type"] == "AWS::Serverless::Function"
    }
    here = f"python{sys.version_info.major}.{sys.version_info.minor}"
    if runtimes != {here}:
        raise SystemExit(f"functions run {sorted(runtimes)} but this interpreter is {here}")

    buffer = io.BytesIO()
    compiled = 0
    with (
        zipfile.ZipFile(zip_path) as src,
        zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as dst,
        tempfile.TemporaryDirectory() as tmp,
    ):
        names = set(src.namelist())
        for info in src.infolist():
            data = src.read(info)
            dst.writestr(info, data)
            if not info.filename.endswith(".py"):
                continue
            cache_name = Path(importlib.util.cache_from_source(info.filename)).as_posix()
            if cache_name in names:
                continue
            source = Path(tmp, "src.py")
            source.write_bytes(data)
            target = Path(tmp, "out.pyc")
            try:
                py_compile.compile(
                    str(source),
                    cfile=str(target),
                    dfile="/var/task/" + info.filename,
                    doraise=True,
                    invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
                )
            except py_compile.PyCompileError:
                continue  # a file the runtime would not import either
            pyc = zipfile.ZipInfo(cache_name, date_time=info.date_time)
            pyc.external_attr = 0o644 << 16
            dst.writestr(pyc, target.read_bytes(), zipfile.ZIP_DEFLATED)
            compiled += 1
    zip_path.write_bytes(buffer.getvalue())
    return compiled


def build(stage: str, out: Path, pyc: bool = True) -> Path:
    """Write ``out/sam.json`` and ``out/deployment.zip``; return the template's path."""
    out.mkdir(parents=True, exist_ok=True)
    merge = out / "merge.json"
    merge.write_text(json.dumps(merge_template(stage), indent=2) + "\n")
    for stale in ("sam.json", "deployment.zip"):
        (out / stale).unlink(missing_ok=True)
    chalice_package(stage, merge, out)
    fix_log_groups(out / "sam.json")
    if pyc:
        count = compile_pyc(out / "deployment.zip")
        print(f"compiled {count} modules into {out / 'deployment.zip'}")
    return out / "sam.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m infra.package", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--stage", default="dev")
    parser.add_argument("--out", type=Path, help="default: build/<stage>")
    parser.add_argument("--no-pyc", action="store_true", help="ship sources only (for measuring)")
    args = parser.parse_args(argv)
    template = build(args.stage, args.out or ROOT / "build" / args.stage, pyc=not args.no_pyc)
    print(f"packaged stage {args.stage}: {template}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
