"""Cold start of each Lambda entry point from the packaged artifact, as Lambda loads it.

``python -m bench.coldstart WORLD.json [--quick]``:

1. package Tessera with ``chalice package`` (what ``make package`` ships, if that target exists,
   else Chalice's default) and a bare Chalice hello-world the same way, into build/bench/cold/;
2. unzip each twice: as shipped (no ``.pyc``: Lambda's /var/task is read-only, so every cold start
   compiles from source) and with ``.pyc`` compiled in (``compileall``, unchecked-hash, so the
   zip's 1980 timestamps do not invalidate them);
3. for each entry point, start a fresh interpreter (``python -I -S -B``) whose path holds only the
   unzipped package and the runtime's boto3/botocore (with their ``.pyc``, as the Lambda runtime
   image has them), and time ``import app`` and the first event. AWS calls go over loopback to a
   small server answering the responses ``bench.world`` captured, so botocore's real HTTPS path
   runs;
4. the same for: reference functions written the plain way (``REFERENCE_AUTHORIZER``,
   ``REFERENCE_API``: boto3 clients at import, PyJWT, nothing else); Tessera's functions after a
   SnapStart restore (the before-snapshot hooks end init, then the after-restore hooks and the
   first event are timed); and the functions of the commit before every stage moved to botocore
   (``bench.before``), checked out in a git worktree and packaged by its own ``make package``.
"""

from __future__ import annotations

import compileall
import http.server
import json
import os
import py_compile
import shutil
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path
from typing import Any

from bench import before, canned, common, events, tls

COLD = common.BUILD / "cold"
SITE = Path(sys.prefix) / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
# The Lambda Python runtime's own packages, snapshot_restore_py (the SnapStart hook registry) too.
RUNTIME_PACKAGES = (
    "boto3",
    "botocore",
    "s3transfer",
    "jmespath",
    "dateutil",
    "urllib3",
    "six.py",
    "snapshot_restore_py.py",
)

HELLO_APP = """from chalice import Chalice

app = Chalice(app_name="hello")


@app.route("/")
def index():
    return {"hello": "world"}
"""

# What the Lambda runtime has imported before it loads the handler module: the standard-library
# imports of awslambdaric 4.2.2 (bootstrap.py and the modules it loads; simplejson, its JSON
# library, is left out: it is not on this path and no app uses it). Paid by every function, the
# bare app included, before its cold start begins; RUNTIME_PRELOAD="" measures a bare interpreter.
RUNTIME_MODULES = "importlib json logging os sys time traceback decimal math enum"

CHILD = r"""
import sys, time
for name in PRELOAD.split():
    __import__(name)
t0 = time.perf_counter()
sys.path[:0] = PATHS
import importlib
module = importlib.import_module(MODULE)
t1 = time.perf_counter()
snapshot_ms = restore_ms = 0.0
if RESTORE:
    # SnapStart as Lambda runs it: the before-snapshot hooks (reverse order of registration) end
    # init at publication; in a restored container the after-restore hooks (in order) run before
    # its first event. Timed from here: the restore hooks and the first event.
    import snapshot_restore_py
    for func, args, kwargs in reversed(snapshot_restore_py.get_before_snapshot()):
        func(*args, **kwargs)
    t_snapshot = time.perf_counter()
    for func, args, kwargs in snapshot_restore_py.get_after_restore():
        func(*args, **kwargs)
    t_restored = time.perf_counter()
    snapshot_ms, restore_ms = (t_snapshot - t1) * 1e3, (t_restored - t_snapshot) * 1e3
import json
event = json.loads(EVENT)
handler = getattr(module, ATTR)
class Context:
    function_name = "cold"; memory_limit_in_mb = 1024; aws_request_id = "cold"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:cold"
    def get_remaining_time_in_millis(self): return 30000
t2 = time.perf_counter()
try:
    answer = handler(event, Context())
except Exception as exc:  # the authorizer answers 401 with an exception: still a cold start
    answer = f"{type(exc).__name__}: {exc}"
t3 = time.perf_counter()
print(json.dumps({"import_ms": (t1 - t0) * 1e3, "first_ms": (t3 - t2) * 1e3,
                  "snapshot_ms": snapshot_ms, "restore_ms": restore_ms,
                  "answer": str(answer)[:200]}))
"""


# Authorizer variants: result-label suffix -> (Chalice entry instead of the deployed handler,
# settings). "" is the deployed configuration: the plain handler of the packaged template,
# the revocation check on.
AUTHORIZER_VARIANTS: dict[str, tuple[bool, dict[str, str]]] = {
    "": (False, {"TESSERA_AUTHORIZER_CHECKS_REVOCATION": "true"}),
    "+chalice": (True, {"TESSERA_AUTHORIZER_CHECKS_REVOCATION": "true"}),
}
BARE = "+bare-interpreter"  # label suffix of the runs without the runtime's modules preloaded


def site_packages() -> Path:
    return SITE / "site-packages"


def runtime_dir() -> Path:
    """The Lambda runtime's own packages: boto3, botocore and their dependencies."""
    target = COLD / "runtime"
    target.mkdir(parents=True, exist_ok=True)
    for name in RUNTIME_PACKAGES:
        if not (target / name).is_symlink():
            (target / name).symlink_to(site_packages() / name)
    return target


def package(app_dir: Path, out: Path, stage: str | None) -> Path:
    if out.exists():
        shutil.rmtree(out)
    cmd = [str(Path(sys.executable).parent / "chalice"), "package"]
    if stage:
        cmd += ["--stage", stage]
    cmd.append(str(out))
    env = dict(os.environ, AWS_DEFAULT_REGION="us-east-1")
    subprocess.run(cmd, cwd=app_dir, env=env, check=True, capture_output=True, timeout=300)
    return out / "deployment.zip"


# The floor of any function whose first event reads DynamoDB and Secrets Manager over HTTPS, written
# with the standard library only: import ssl, load the default CA bundle, then one connection,
# handshake and POST per service (the authorizer's two services; its two DynamoDB calls, rules and
# revocation, share one connection), answered by the canned server.
TLS_FLOOR = """import os, socket, ssl
from urllib.parse import urlsplit


def handler(event, context):
    url = urlsplit(os.environ["AWS_ENDPOINT_URL"])
    tls = ssl.create_default_context()
    statuses = []
    for target in ("secretsmanager.GetSecretValue", "DynamoDB_20120810.BatchGetItem"):
        raw = socket.create_connection((url.hostname, url.port), timeout=5)
        with tls.wrap_socket(raw, server_hostname=url.hostname) as conn:
            conn.sendall(
                b"POST / HTTP/1.1\\r\\nhost: " + url.netloc.encode() + b"\\r\\nx-amz-target: "
                + target.encode() + b"\\r\\ncontent-length: 2\\r\\nconnection: close\\r\\n\\r\\n{}"
            )
            answer = b""
            while chunk := conn.recv(65536):
                answer += chunk
        statuses.append(answer.split(b" ", 2)[1].decode())
    return statuses
"""


# The reference: an authorizer written the plain way, as AWS's examples write one. A boto3 client
# created at import; on the first event the same public key set Tessera reads, then PyJWT's PyJWK
# and jwt.decode checking iss, aud and exp; nothing else (no rules, no revocation check, no
# telemetry). Same HTTPS floor: one connection to Secrets Manager.
REFERENCE_AUTHORIZER = """import json, os

import boto3
import jwt

secrets = boto3.client("secretsmanager")
keys = None


def verify(token):
    global keys
    if keys is None:
        secret = secrets.get_secret_value(
            SecretId=os.environ["TESSERA_PUBLIC_KEYS_SECRET"], VersionStage="AWSCURRENT"
        )
        keys = {k["jwk"]["kid"]: k["jwk"] for k in json.loads(secret["SecretString"])["keys"]}
    key = jwt.PyJWK(keys[jwt.get_unverified_header(token)["kid"]])
    return jwt.decode(
        token,
        key,
        algorithms=[key.algorithm_name],
        audience=os.environ["TESSERA_AUDIENCE"],
        issuer=os.environ["TESSERA_ISSUER"],
        options={"require": ["exp", "iss", "aud"]},
    )


def handler(event, context):
    claims = verify(event["authorizationToken"].removeprefix("Bearer "))
    statement = {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": event["methodArn"]}
    return {
        "principalId": claims["sub"],
        "policyDocument": {"Version": "2012-10-17", "Statement": [statement]},
    }
"""

# The reference for the API handler: the same, plus a DynamoDB client created at import and one
# get_item on the first event (the client record Tessera's token request reads).
REFERENCE_API = """import os

import boto3

from reference_authorizer import handler as authorize

dynamodb = boto3.client("dynamodb")


def handler(event, context):
    answer = authorize(event, context)
    item = dynamodb.get_item(
        TableName=os.environ["TESSERA_TABLE"],
        Key={"pk": {"S": "CLIENT#" + os.environ["REFERENCE_CLIENT_ID"]}, "sk": {"S": "CLIENT"}},
    )
    answer["context"] = {"client": str("Item" in item)}
    return answer
"""


def reference() -> Path:
    root = COLD / "reference"
    root.mkdir(parents=True, exist_ok=True)
    (root / "reference_authorizer.py").write_text(REFERENCE_AUTHORIZER)
    (root / "reference_api.py").write_text(REFERENCE_API)
    compileall.compile_dir(
        str(root), quiet=1, invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH
    )
    return root


def tls_floor() -> Path:
    root = COLD / "floor"
    root.mkdir(parents=True, exist_ok=True)
    (root / "tls_floor.py").write_text(TLS_FLOOR)
    return root


def hello_app() -> Path:
    root = COLD / "hello-src"
    if root.exists():
        shutil.rmtree(root)
    (root / ".chalice").mkdir(parents=True)
    (root / "app.py").write_text(HELLO_APP)
    (root / "requirements.txt").write_text("")
    (root / ".chalice" / "config.json").write_text(
        json.dumps({"version": "2.0", "app_name": "hello", "stages": {"dev": {}}})
    )
    return root


def package_tessera(out: Path) -> tuple[Path, str]:
    """The artifact ``make package`` builds (infra.package), else Chalice's default package."""
    if (common.ROOT / "infra" / "package.py").is_file():
        if out.exists():
            shutil.rmtree(out)
        env = dict(os.environ, AWS_DEFAULT_REGION="us-east-1")
        subprocess.run(
            [sys.executable, "-m", "infra.package", "--stage", "dev", "--out", str(out)],
            cwd=common.ROOT,
            env=env,
            check=True,
            capture_output=True,
            timeout=300,
        )
        return out / "deployment.zip", "make package"
    return package(common.ROOT, out, "dev"), "chalice package"


def unzip(archive: Path, target: Path, with_pyc: bool, recompile: bool = False) -> Path:
    """The package as Lambda unzips it, with ``.pyc`` (compiled here if the zip has none, or
    always with ``recompile``) or without (any shipped ``__pycache__`` removed)."""
    if target.exists():
        shutil.rmtree(target)
    with zipfile.ZipFile(archive) as z:
        z.extractall(target)
    if not with_pyc or recompile:
        for cache in list(target.rglob("__pycache__")):
            shutil.rmtree(cache)
    if with_pyc and not any(target.rglob("*.pyc")):
        compileall.compile_dir(
            str(target),
            quiet=1,
            invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
        )
    return target


class CannedAWS(http.server.ThreadingHTTPServer):
    """Answers DynamoDB and Secrets Manager JSON calls over loopback from captured responses."""

    def __init__(self, maps: dict[str, canned.Canned]) -> None:
        merged: canned.Canned = {}
        for scenario_map in maps.values():
            merged.update(scenario_map)
        self.responses = merged
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(http.server.BaseHTTPRequestHandler):
    server: CannedAWS
    protocol_version = "HTTP/1.1"
    # Head and body leave in two writes; with Nagle's algorithm the body would wait for the
    # client's delayed ACK (~40 ms), a cost of this server that AWS's endpoints do not have.
    disable_nagle_algorithm = True

    def do_POST(self) -> None:
        import base64

        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        operation = self.headers.get("X-Amz-Target", "").rsplit(".", 1)[-1]
        entry = self.server.responses.get(canned.request_key(operation, body))
        if entry is None:
            entry = self.server.responses.get(operation)
        if entry is None:
            self.send_response(500)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        data = base64.b64decode(entry["body"])
        self.send_response(int(entry["status"]))
        for k, v in entry["headers"].items():
            if k.lower() not in {
                "content-length",
                "transfer-encoding",
                "connection",
                "server",
                "date",
            }:
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        return


def cold_run(
    task: Path,
    runtime: Path,
    handler: str,
    event: dict[str, Any],
    env: dict[str, str],
    preload: str = RUNTIME_MODULES,
    restore: bool = False,
    extra_path: tuple[Path, ...] = (),
) -> dict[str, Any]:
    """One cold start of ``handler`` (Lambda's ``module.attribute`` setting) in a new process;
    with ``restore``, its first event after a SnapStart restore."""
    module, _, attr = handler.rpartition(".")
    paths = [str(task), *(str(p) for p in extra_path), str(runtime)]
    code = (
        CHILD.replace("PRELOAD", repr(preload))
        .replace("PATHS", repr(paths))
        .replace("RESTORE", repr(restore))
        .replace("MODULE", repr(module))
        .replace("ATTR", repr(attr))
        .replace("EVENT", repr(json.dumps(event)))
    )
    # As Lambda tells a function how its container started (chalicelib/web/snapstart.py reads it).
    env = dict(env, AWS_LAMBDA_INITIALIZATION_TYPE="snap-start" if restore else "on-demand")
    out = subprocess.run(
        [sys.executable, "-I", "-S", "-B", "-c", code],
        cwd=str(task),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if out.returncode != 0:
        raise RuntimeError(f"cold start of {handler} failed: {out.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    if restore:
        result["total_ms"] = result["restore_ms"] + result["first_ms"]
    else:
        result["total_ms"] = result["import_ms"] + result["first_ms"]
    return result


def summary(runs: list[dict[str, Any]], handler: str) -> dict[str, Any]:
    keys = ("import_ms", "snapshot_ms", "restore_ms", "first_ms", "total_ms")
    found: dict[str, Any] = {k: common.median([r[k] for r in runs]) for k in keys}
    found.update(handler=handler, answer=runs[0]["answer"])
    return found


def handlers(template: Path) -> dict[str, str]:
    """Function logical id -> its Lambda handler setting, from a packaged template."""
    doc = json.loads(template.read_text())
    return {
        name: res["Properties"]["Handler"]
        for name, res in doc["Resources"].items()
        if res.get("Type") == "AWS::Serverless::Function"
    }


def handler_of(functions: dict[str, str], entry: str) -> str:
    """The handler Lambda runs for a Chalice entry point ("app" is the API handler)."""
    from chalice.utils import to_cfn_resource_name

    return functions["APIHandler" if entry == "app" else to_cfn_resource_name(entry)]


def fresh_token(world: dict[str, Any]) -> str:
    """A valid access token signed by the captured key set (the bench process may import us)."""
    from chalicelib.tokens import access_tokens, key_objects, keys

    prefix = f"GetSecretValue:tessera/{common.STAGE}/signing-keys"
    body = next(v for k, v in world["canned"]["setup"].items() if k.startswith(prefix))["body"]
    import base64

    secret = json.loads(base64.b64decode(body))["SecretString"]
    current = next(e for e in keys.parse_key_set(secret) if e.state == "current")
    token, _ = access_tokens.issue(
        key_objects.load_signing_key(current.jwk),
        issuer=common.ISSUER,
        audience=common.AUDIENCE,
        subject="cold",
        client_id="cold",
        scope=common.SCOPE,
        now=int(time.time()),
        lifetime=900,
    )
    return token


def main(argv: list[str]) -> int:
    world = common.load_json(Path(argv[1]) if len(argv) > 1 else common.BUILD / "world.json")
    repeats = 3 if "--quick" in argv else 7
    COLD.mkdir(parents=True, exist_ok=True)
    runtime = runtime_dir()
    tessera_zip, packager = package_tessera(COLD / "tessera-pkg")
    with zipfile.ZipFile(tessera_zip) as z:
        shipped_pyc = any(name.endswith(".pyc") for name in z.namelist())
    hello_zip = package(hello_app(), COLD / "hello-pkg", None)
    trees = {
        ("tessera", False): unzip(tessera_zip, COLD / "tessera", False),
        ("tessera", True): unzip(tessera_zip, COLD / "tessera-pyc", True),
        ("hello", False): unzip(hello_zip, COLD / "hello", False),
        ("hello", True): unzip(hello_zip, COLD / "hello-pyc", True),
        ("floor", False): tls_floor(),
        ("floor", True): tls_floor(),
    }
    # HTTPS, as AWS endpoints are: the client pays the ssl import, the CA bundle (the system's
    # roots plus the loopback certificate) and the handshake, as it does in Lambda.
    cert, key = tls.self_signed(COLD / "tls")
    bundle = tls.trust_bundle(COLD / "tls", cert)
    server = CannedAWS(world["canned"])
    server.socket = tls.server_context(cert, key).wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "AWS_", "SSL_"))}
    env.update(common.BENCH_ENV)
    env["AWS_ENDPOINT_URL"] = f"https://{tls.HOST}:{server.server_address[1]}"
    env["SSL_CERT_FILE"] = str(bundle)  # OpenSSL's default verify file (the HTTPS floor)
    env["AWS_CA_BUNDLE"] = str(bundle)  # botocore's
    cc = events.basic(world["cc"]["client_id"], world["cc"]["client_secret"])
    functions = handlers(tessera_zip.parent / "sam.json")
    # (tree, handler, event, result label, settings over BENCH_ENV, modules preloaded)
    Entry = tuple[str, str, dict[str, Any], str, dict[str, str], str]
    hello_event = events.proxy_event("/", "GET")
    entries: list[Entry] = [
        ("hello", "app.app", hello_event, "hello", {}, RUNTIME_MODULES),
        ("hello", "app.app", hello_event, f"hello{BARE}", {}, ""),
        ("floor", "tls_floor.handler", {}, "tls_floor", {}, RUNTIME_MODULES),
        ("floor", "tls_floor.handler", {}, f"tls_floor{BARE}", {}, ""),
        (
            "tessera",
            handler_of(functions, "app"),
            events.token_request({"grant_type": "client_credentials", "scope": common.SCOPE}, cc),
            "app",
            {},
            RUNTIME_MODULES,
        ),
    ]
    # The API handler as deployed, in an interpreter with nothing preloaded.
    api = entries[-1]
    entries.append(("tessera", api[1], api[2], f"app{BARE}", {}, ""))
    if world.get("authorizer"):
        entry = world["authorizer"]
        event = events.authorizer_event(fresh_token(world))
        # As dev and prod deploy it (.chalice/config.json, the packaged template): the plain
        # handler and the revocation check on (one BatchGetItem, answered from the password
        # scenario's recording: no item for this token, so "not revoked"); then through
        # Chalice's entry point, for comparison.
        for label, (chalice_entry, settings) in AUTHORIZER_VARIANTS.items():
            handler = f"app.{entry}" if chalice_entry else handler_of(functions, entry)
            entries.append(
                ("tessera", handler, event, f"{entry}{label}", settings, RUNTIME_MODULES)
            )
        deployed = AUTHORIZER_VARIANTS[""][1]
        handler = handler_of(functions, entry)
        entries.append(("tessera", handler, event, f"{entry}{BARE}", deployed, ""))
    if world.get("rotation"):
        rotation = world["rotation"]
        handler = handler_of(functions, rotation["entry"])
        label = rotation["entry"]
        entries.append(("tessera", handler, rotation["event"], label, {}, RUNTIME_MODULES))
    results: dict[str, Any] = {}

    Spec = tuple[str, Path, str, dict[str, Any], dict[str, Any]]  # label, tree, handler, event, kw

    def measure(specs: list[Spec]) -> None:
        """Each spec ``repeats`` times, interleaved (a ratio between them then sees the same
        load), after one discarded run each (the first read of freshly unzipped files)."""
        runs: dict[str, list[dict[str, Any]]] = {label: [] for label, *_ in specs}
        for i in range(repeats + 1):
            for label, tree, handler, event, kw in specs:
                settings = kw.get("settings", {})
                options = {k: v for k, v in kw.items() if k != "settings"}
                found = cold_run(tree, runtime, handler, event, dict(env, **settings), **options)
                if i:
                    runs[label].append(found)
        for label, _, handler, _, _ in specs:
            results[label] = summary(runs[label], handler)

    before_note = ""
    try:
        for app_name, handler, event, label, settings, preload in entries:
            measure(
                [
                    (
                        f"{label}|{'pyc' if with_pyc else 'nopyc'}",
                        trees[(app_name, with_pyc)],
                        handler,
                        event,
                        {"settings": settings, "preload": preload},
                    )
                    for with_pyc in (False, True)
                ]
            )
        tessera = trees[("tessera", True)]
        if world.get("authorizer"):
            auth_event = events.authorizer_event(fresh_token(world))
            auth_handler = handler_of(functions, world["authorizer"])
            deployed = AUTHORIZER_VARIANTS[""][1]
            # Each function against a reference written the plain way, interleaved: their own
            # module first, PyJWT and cryptography from the package's tree (the same files and
            # .pyc), boto3 from the runtime.
            ref = reference()
            ref_env = {"REFERENCE_CLIENT_ID": world["cc"]["client_id"]}
            for suffix, preload in (("", RUNTIME_MODULES), (BARE, "")):
                for name, ref_name, handler, event, settings in (
                    (
                        "tessera_authorizer",
                        "reference_authorizer",
                        auth_handler,
                        auth_event,
                        deployed,
                    ),
                    ("app", "reference_api", api[1], api[2], {}),
                ):
                    measure(
                        [
                            (
                                f"vs-reference:{name}{suffix}|pyc",
                                tessera,
                                handler,
                                event,
                                {"settings": settings, "preload": preload},
                            ),
                            (
                                f"{ref_name}{suffix}|pyc",
                                ref,
                                f"{ref_name}.handler",
                                auth_event,
                                {"settings": ref_env, "preload": preload, "extra_path": (tessera,)},
                            ),
                        ]
                    )
            # After a SnapStart restore (init done; the restore hooks and the first event),
            # interleaved with the full cold start of the commit before every stage moved to
            # botocore: its own package, fresh .pyc (its packager shipped stale bytecode for
            # chalicelib/: measured at its best), as its dev stage deployed it.
            restored: list[Spec] = [
                (
                    "tessera_authorizer+restore|pyc",
                    tessera,
                    auth_handler,
                    auth_event,
                    {"settings": deployed, "restore": True},
                ),
                ("app+restore|pyc", tessera, api[1], api[2], {"restore": True}),
            ]
            try:
                with before.worktree("before-botocore-cold") as tree:
                    old_zip = before.package(tree, COLD / "before-pkg")
                    old_tree = unzip(old_zip, COLD / "before-pyc", True, recompile=True)
                    old_functions = handlers(old_zip.parent / "sam.json")
                    old_settings = {**before.SETTINGS, **deployed}
                    restored += [
                        (
                            "before:tessera_authorizer|pyc",
                            old_tree,
                            handler_of(old_functions, world["authorizer"]),
                            auth_event,
                            {"settings": old_settings},
                        ),
                        (
                            "before:app|pyc",
                            old_tree,
                            handler_of(old_functions, "app"),
                            api[2],
                            {"settings": before.SETTINGS},
                        ),
                    ]
                    measure(restored)
            except before.Unavailable as exc:
                before_note = str(exc)
                measure(restored)
    finally:
        server.shutdown()
    common.emit(
        {
            "repeats": repeats,
            "runtime_modules": RUNTIME_MODULES,
            "packager": packager,
            "shipped_pyc": shipped_pyc,
            "zip_bytes": {"tessera": tessera_zip.stat().st_size, "hello": hello_zip.stat().st_size},
            "results": results,
            "before": {
                "commit": before.BEFORE_BOTOCORE,
                "label": before.LABEL,
                "note": before_note,
            },
        }
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
