"""``make package``: one deployable CloudFormation artifact for a stage, built offline.

    python -m infra.package --stage dev [--out build/dev]

1. The merge template (``build/<stage>/merge.json``): ``infra/template.yaml`` with its wiring
   parameters bound to Chalice's own resources. Deployed alone (next to ``chalice deploy``) the
   template takes the rotation function's ARN, the REST API's id, stage and name as parameters;
   here they become ``Fn::GetAtt``/``Ref`` of what Chalice generates, so one stack holds
   everything, and the conditions they decide are resolved (a stage with the demo off has no demo
   table at all). Added: the issuer's parameters (``DomainName``, ``Audience``; the functions'
   ``TESSERA_ISSUER`` is ``https://<DomainName>``), the stage's throttles (``THROTTLES``: API
   Gateway method settings, one parameter pair each), fixed function names (Chalice's
   ``tessera-<stage>[-<function>]``, which the alarms and the log permissions name), the gateway
   responses (``infra/gateway-responses.yaml``, in the API's OpenAPI definition so every
   deployment has them), outputs (issuer, JWKS URL, authorizer ARN), and the authorizer's handler
   ``chalicelib.authorizer_lambda.handler``, which does not import Chalice. Where the stage's
   ``snapstart`` setting is on, the API and authorizer functions publish a version per deployment
   under the alias ``live`` with SnapStart on published versions, and everything that invokes them
   (the API's integrations and authorizer, their permissions, the cross-account callers and the
   exported authorizer ARN) names the alias: ``$LATEST`` is never snapshotted.
2. ``chalice package --merge-template``: ``sam.json`` and ``deployment.zip``. It needs a region but
   no credentials; it fetches the Lambda wheels of requirements.txt from the package index.
3. ``sam.json`` finished: the policy files' ``${AWS::...}`` placeholders become ``Fn::Sub``
   (infra/policies.py), log groups point at their functions, and the rotation schedules wait for
   the rotation function's log group (the first rotation runs when the schedule is created).
4. ``.pyc`` files compiled by this interpreter (the runtime's minor version, which Chalice also
   takes from the interpreter) are added to the zip with ``unchecked-hash`` invalidation:
   ``/var/task`` is read-only, so without them every cold start compiles each module from source.
   Any ``.pyc`` already in the zip (Chalice copies ``chalicelib/__pycache__`` as it finds it) is
   replaced: timestamp-based bytecode is stale once unzipped.
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
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import yaml

from infra import callers, policies
from infra.provision import load_template, simplify

ROOT = Path(__file__).resolve().parent.parent
GATEWAY_RESPONSES = Path(__file__).with_name("gateway-responses.yaml")
ROTATION_FUNCTION = "rotate_keys"  # @app.lambda_function name in app.py; Secrets Manager invokes it
# The authorizer function's handler in AWS: a plain module, not app.py
# (tests/functional/test_infra.py checks that it resolves).
AUTHORIZER_HANDLER = "chalicelib.authorizer_lambda.handler"
DEFAULT_REGION = "us-east-1"  # chalice package needs one; the template itself is region-neutral
# SnapStart (per stage): the alias API Gateway invokes, pointing at the version each deployment
# publishes. Only published versions are snapshotted; $LATEST would run every init in full.
ALIAS = "live"

# Host names reserved for examples and tests (RFC 2606, RFC 6761): an issuer there is a placeholder.
PLACEHOLDER_DOMAINS = ("example.com", "example.net", "example.org")
PLACEHOLDER_TLDS = ("example", "test", "invalid", "localhost")
HOSTNAME = r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$"


class Throttle(NamedTuple):
    """One throttle of the API's stage: parameters ``<name>RateLimit`` and ``<name>BurstLimit``."""

    name: str
    routes: tuple[tuple[str, str], ...]  # (path, method); ("/*", "*") is every other method
    rate: float  # requests per second, steady
    burst: int  # requests at once
    what: str


# Per stage, per method (API Gateway MethodSettings). The stage-wide pair applies to every method
# without its own. Sign-in is the tightest: each attempt costs an Argon2id hash, and the login
# guard bounds guesses per username and per source, not the total rate from many sources.
THROTTLES = (
    Throttle("Stage", (("/*", "*"),), 200, 400, "every method without its own limit"),
    Throttle("Token", (("/oauth2/token", "POST"),), 100, 200, "token endpoint"),
    Throttle("Authorize", (("/oauth2/authorize", "GET"),), 50, 100, "authorization pages"),
    Throttle(
        "SignIn",
        (("/oauth2/authorize", "POST"), ("/account/login", "POST")),
        10,
        20,
        "sign-in and consent forms, account sign-in",
    ),
    Throttle("Revoke", (("/oauth2/revoke", "POST"),), 50, 100, "revocation"),
    Throttle("Introspect", (("/oauth2/introspect", "POST"),), 100, 200, "introspection"),
)


def method_setting_path(path: str) -> str:
    """API Gateway's encoding of a resource path in method settings: ``/oauth2/token`` ->
    ``/~1oauth2~1token``; ``/*`` (every resource) stays."""
    return path if path == "/*" else "/" + path.replace("/", "~1")


def is_placeholder(url_or_host: str) -> bool:
    """True for an issuer or audience on a name reserved for examples (``auth.example.com``)."""
    host = (urlsplit(url_or_host).hostname if "//" in url_or_host else url_or_host) or ""
    host = host.lower().rstrip(".")
    return (
        not host
        or host.endswith(tuple("." + d for d in PLACEHOLDER_DOMAINS))
        or host in PLACEHOLDER_DOMAINS
        or host.rsplit(".", 1)[-1] in PLACEHOLDER_TLDS
    )


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
        "app_name": config["app_name"],
        "api_gateway_stage": config["stages"][stage].get("api_gateway_stage", "api"),
        "env": env,
    }


def snapstart_on(stage: str) -> bool:
    """The stage's ``snapstart`` setting (its block in .chalice/config.json; off if absent)."""
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    value = config["stages"].get(stage, {}).get("snapstart", False)
    if not isinstance(value, bool):
        raise SystemExit(f"snapstart of stage {stage!r} must be true or false")
    return value


def invoked(function_logical_id: str, stage: str) -> dict[str, Any]:
    """What API Gateway and other accounts invoke: the function's alias where SnapStart is on
    (``Ref`` of ``<id>.Alias``, which SAM resolves to the alias ARN), else the function."""
    if snapstart_on(stage):
        return {"Ref": f"{function_logical_id}.Alias"}
    return {"Fn::GetAtt": [function_logical_id, "Arn"]}


def demo_on(stage: str) -> bool:
    """The stage's demo switch, ``TESSERA_DEMO`` (chalicelib.core.config.demo_enabled reads the
    same)."""
    raw = stage_config(stage)["env"].get("TESSERA_DEMO", "")
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def serves_customers(stage: str) -> bool:
    """A stage with the demo off serves real clients: it refuses placeholder issuers (prod)."""
    return not demo_on(stage)


def function_names(stage: str) -> dict[str, str]:
    """Logical id -> function name, as ``chalice deploy`` names them: ``tessera-<stage>`` for the
    API handler, ``tessera-<stage>-<function>`` for the others. The packaged stack sets the same
    names, so alarms, dashboard and log permissions name the same functions in both paths."""
    app_name = stage_config(stage)["app_name"]
    authorizer, rotation = app_functions()
    return {
        "APIHandler": f"{app_name}-{stage}",
        cfn_name(authorizer): f"{app_name}-{stage}-{authorizer}",
        cfn_name(rotation): f"{app_name}-{stage}-{rotation}",
    }


def api_name(stage: str) -> str:
    """The packaged REST API's name (CloudWatch's ApiName dimension): one per stage."""
    return f"{stage_config(stage)['app_name']}-{stage}"


def _default(value: str, stage: str) -> dict[str, str]:
    """A parameter default from .chalice/config.json, except a placeholder where the stage serves
    customers: there the parameter has no default, and deploying without a real value fails."""
    return {} if serves_customers(stage) and is_placeholder(value) else {"Default": value}


def _replace(value: Any, refs: dict[str, Any]) -> Any:
    """``value`` with every ``Ref`` of a name in ``refs`` (also ``${name}`` in ``Fn::Sub``)
    replaced by its binding."""
    if isinstance(value, dict):
        if len(value) == 1 and "Ref" in value and value["Ref"] in refs:
            return refs[value["Ref"]]
        if len(value) == 1 and isinstance(value.get("Fn::Sub"), str):
            used = {n for n in refs if "${" + n + "}" in value["Fn::Sub"]}
            if used:
                return {"Fn::Sub": [value["Fn::Sub"], {n: refs[n] for n in sorted(used)}]}
        return {k: _replace(v, refs) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace(v, refs) for v in value]
    return value


def _choose_ifs(value: Any, decided: dict[str, bool]) -> Any:
    """``Fn::If`` on a decided condition replaced by the branch it takes."""
    if isinstance(value, dict):
        branches = value.get("Fn::If")
        if len(value) == 1 and isinstance(branches, list) and branches[0] in decided:
            return _choose_ifs(branches[1] if decided[branches[0]] else branches[2], decided)
        return {k: _choose_ifs(v, decided) for k, v in value.items()}
    if isinstance(value, list):
        return [_choose_ifs(v, decided) for v in value]
    return value


def bind(doc: dict[str, Any], bindings: dict[str, Any], known: dict[str, str]) -> dict[str, Any]:
    """The template with wiring parameters bound: ``bindings`` (parameter -> template value)
    replace the parameters; ``known`` (parameter -> value it has once bound) decide conditions.
    A resource or output whose condition is now false is dropped, a true one loses its condition,
    and ``Fn::If`` on a decided condition becomes its branch."""
    conditions = doc.get("Conditions", {})
    simplified = {name: simplify(expr, known, conditions) for name, expr in conditions.items()}
    decided = {n: v for n, v in simplified.items() if isinstance(v, bool)}
    for section in ("Resources", "Outputs"):
        for name in list(doc.get(section, {})):
            entry = doc[section][name]
            cond = entry.get("Condition")
            if cond in decided:
                if decided[cond]:
                    del entry["Condition"]
                else:
                    del doc[section][name]
    doc["Conditions"] = {n: v for n, v in simplified.items() if n not in decided}
    if not doc["Conditions"]:
        del doc["Conditions"]
    for name in bindings:
        doc["Parameters"].pop(name, None)
    bound: dict[str, Any] = _replace(_choose_ifs(doc, decided), bindings)
    return bound


def throttle_parameters() -> dict[str, Any]:
    params: dict[str, Any] = {}
    for t in THROTTLES:
        params[f"{t.name}RateLimit"] = {
            "Type": "Number",
            "Default": t.rate,
            "MinValue": 0,
            "Description": f"Steady requests per second: {t.what}",
        }
        params[f"{t.name}BurstLimit"] = {
            "Type": "Number",
            "Default": t.burst,
            "MinValue": 0,
            "Description": f"Requests at once: {t.what}",
        }
    return params


def method_settings() -> list[dict[str, Any]]:
    """The API stage's MethodSettings: one entry per throttled route, values from parameters."""
    return [
        {
            "ResourcePath": method_setting_path(path),
            "HttpMethod": method,
            "ThrottlingRateLimit": {"Ref": f"{t.name}RateLimit"},
            "ThrottlingBurstLimit": {"Ref": f"{t.name}BurstLimit"},
        }
        for t in THROTTLES
        for path, method in t.routes
    ]


def merge_template(stage: str) -> dict[str, Any]:
    """infra/template.yaml bound to Chalice's resources, plus the issuer's parameters, throttles,
    function names, gateway responses and outputs."""
    authorizer, rotation = app_functions()
    config = stage_config(stage)
    issuer = config["env"].get("TESSERA_ISSUER", "").rstrip("/")
    audience = config["env"].get("TESSERA_AUDIENCE", "")
    if not issuer or not audience:
        raise SystemExit(f"set TESSERA_ISSUER and TESSERA_AUDIENCE of stage {stage!r}")
    name = api_name(stage)

    doc: dict[str, Any] = load_template()
    doc.pop("AWSTemplateFormatVersion", None)  # Chalice's template has its own
    params = doc["Parameters"]
    params["Stage"]["Default"] = stage
    params["Stage"]["AllowedValues"] = [stage]  # table and secret names are fixed in config.json
    demo = "true" if demo_on(stage) else "false"
    doc = bind(
        doc,
        bindings={
            "RotationFunctionArn": {"Fn::GetAtt": [cfn_name(rotation), "Arn"]},
            "AuthorizerFunctionArn": invoked(cfn_name(authorizer), stage),
            "RestApiId": {"Ref": "RestAPI"},
            "ApiStage": {"Ref": "RestAPI.Stage"},
            "ApiName": name,
            "Demo": demo,
        },
        known={
            "RotationFunctionArn": "bound",
            "AuthorizerFunctionArn": "bound",
            "RestApiId": "bound",
            "Demo": demo,
        },
    )
    params = doc["Parameters"]
    # The issuer is https://<DomainName>: required here (no empty default), from config.json.
    host = urlsplit(issuer).hostname or ""
    params["DomainName"] = {
        **{k: v for k, v in params["DomainName"].items() if k not in ("Default", "AllowedPattern")},
        "AllowedPattern": HOSTNAME,
        **_default(host, stage),
    }
    params["Audience"] = {
        "Type": "String",
        "MinLength": 1,
        "Description": "aud of every access token: the identifier of the APIs the tokens are for",
        **_default(audience, stage),
    }
    params.update(throttle_parameters())

    resources = doc["Resources"]
    resources["RestAPI"] = {
        "Properties": {
            "Name": name,
            "MethodSettings": method_settings(),
            "DefinitionBody": {
                "info": {"title": name},
                "x-amazon-apigateway-gateway-responses": gateway_responses(),
            },
        }
    }
    issuer_value = {"Fn::Sub": "https://${DomainName}"}
    for logical_id, function_name in function_names(stage).items():
        resources[logical_id] = {
            "Properties": {
                "FunctionName": function_name,
                "Environment": {
                    "Variables": {
                        "TESSERA_ISSUER": issuer_value,
                        "TESSERA_AUDIENCE": {"Ref": "Audience"},
                    }
                },
            }
        }
    # The authorizer runs as a plain handler, without importing app.py and Chalice
    # (chalicelib/authorizer_lambda.py): merged over the function Chalice generates.
    resources[cfn_name(authorizer)]["Properties"]["Handler"] = AUTHORIZER_HANDLER
    if snapstart_on(stage):
        # Each deployment publishes a version (any property change, not only the code: a new
        # DomainName must reach the alias too), snapshotted once; restores start from it
        # (chalicelib/web/snapstart.py). The rotation function keeps plain invocations.
        for logical_id in ("APIHandler", cfn_name(authorizer)):
            resources[logical_id]["Properties"].update(
                {
                    "AutoPublishAlias": ALIAS,
                    "AutoPublishAliasAllProperties": True,
                    "SnapStart": {"ApplyOn": "PublishedVersions"},
                }
            )
    authorizer_arn = invoked(cfn_name(authorizer), stage)
    # Other accounts' APIs may invoke it: exactly the stage's authorizer_callers (infra/callers.py).
    resources.update(callers.permissions(callers.callers(stage), authorizer_arn))
    doc["Outputs"].update(
        {
            "Issuer": {"Description": "iss of every access token", "Value": issuer_value},
            "JwksUrl": {
                "Description": "public keys",
                "Value": {"Fn::Sub": "https://${DomainName}/.well-known/jwks.json"},
            },
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


def finish(template_path: Path) -> None:
    """What ``chalice package`` cannot write: the policies' ARNs for this account, region and
    partition, log groups of the right functions, rotation after its log group exists, and API
    Gateway invoking the aliases of the functions that publish one."""
    doc = json.loads(template_path.read_text())
    fix_log_groups(doc)
    invoke_aliases(doc)
    for resource in doc["Resources"].values():
        if resource["Type"] == "AWS::IAM::Role":
            for inline in resource["Properties"].get("Policies", []):
                inline["PolicyDocument"] = policies.to_cloudformation(inline["PolicyDocument"])
    rotation_log_group = log_group_of(doc, cfn_name(ROTATION_FUNCTION))
    if rotation_log_group:
        for resource in doc["Resources"].values():
            if resource["Type"] == "AWS::SecretsManager::RotationSchedule":
                after = resource.get("DependsOn", [])
                after = [after] if isinstance(after, str) else after
                resource["DependsOn"] = [*after, rotation_log_group]
    template_path.write_text(json.dumps(doc, indent=2) + "\n")


def invoke_aliases(doc: dict[str, Any]) -> None:
    """Point API Gateway at the alias of each function with ``AutoPublishAlias``.

    Chalice writes the REST API's integrations and its authorizer as ``${<Function>.Arn}`` (the
    unqualified function: ``$LATEST``, which SnapStart never snapshotted) and grants API Gateway
    ``lambda:InvokeFunction`` on the function, which does not cover an alias. Both become
    ``Ref <Function>.Alias``, which SAM resolves to the alias ARN (in ``Fn::Sub`` as a variable:
    cfn-lint, which checks the template before SAM's transform, reads ``${X.Alias}`` as an
    attribute that does not exist).
    """
    resources = doc["Resources"]
    aliased = [
        logical_id
        for logical_id, r in resources.items()
        if r["Type"] == "AWS::Serverless::Function" and r["Properties"].get("AutoPublishAlias")
    ]
    for logical_id in aliased:
        alias = {"Ref": f"{logical_id}.Alias"}
        for r in resources.values():
            if r["Type"] == "AWS::Serverless::Api":
                r["Properties"]["DefinitionBody"] = _sub_alias(
                    r["Properties"]["DefinitionBody"], logical_id, alias
                )
            elif r["Type"] == "AWS::Lambda::Permission" and r["Properties"]["FunctionName"] in (
                {"Ref": logical_id},
                {"Fn::GetAtt": [logical_id, "Arn"]},
            ):
                r["Properties"]["FunctionName"] = alias


def _sub_alias(value: Any, logical_id: str, alias: dict[str, Any]) -> Any:
    """``value`` with ``${<logical_id>.Arn}`` in every ``Fn::Sub`` replaced by a variable bound to
    ``alias``."""
    if isinstance(value, dict):
        sub = value.get("Fn::Sub")
        if len(value) == 1 and sub is not None:
            text, variables = (sub, {}) if isinstance(sub, str) else (sub[0], dict(sub[1]))
            arn = "${" + logical_id + ".Arn}"
            if arn not in text:
                return value
            name = f"{logical_id}Alias"
            variables[name] = alias
            return {"Fn::Sub": [text.replace(arn, "${" + name + "}"), variables]}
        return {k: _sub_alias(v, logical_id, alias) for k, v in value.items()}
    if isinstance(value, list):
        return [_sub_alias(v, logical_id, alias) for v in value]
    return value


def log_group_of(doc: dict[str, Any], function: str) -> str | None:
    """The logical id of the log group named after ``function``, if the template has one."""
    for logical_id, resource in doc["Resources"].items():
        name = resource["Properties"].get("LogGroupName")
        if resource["Type"] == "AWS::Logs::LogGroup" and name == {
            "Fn::Sub": "/aws/lambda/${" + function + "}"
        }:
            return str(logical_id)
    return None


def fix_log_groups(doc: dict[str, Any]) -> None:
    """Point each log group at its function's logical id.

    chalice 1.34 names the API handler ``APIHandler`` but writes its log group as
    ``/aws/lambda/${ApiHandler}``, a resource that does not exist (cfn-lint E1019; the stack would
    not deploy). Such a reference is resolved to the function whose id matches case-insensitively.
    """
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
        for info in src.infolist():
            if info.filename.endswith(".pyc"):
                # Chalice copies chalicelib/ with the developer's __pycache__: timestamp-based
                # bytecode that the unzipped sources' mtimes make stale, so Lambda would compile
                # those modules at every cold start. Every module is compiled here instead.
                continue
            data = src.read(info)
            dst.writestr(info, data)
            if not info.filename.endswith(".py"):
                continue
            cache_name = Path(importlib.util.cache_from_source(info.filename)).as_posix()
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
    finish(out / "sam.json")
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
