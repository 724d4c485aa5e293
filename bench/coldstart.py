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
   small server answering the responses ``bench.world`` captured, so the real HTTP path runs
   (botocore's, or ``chalicelib.aws_lite``'s for the authorizer as deployed).
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

from bench import canned, common, events

COLD = common.BUILD / "cold"
SITE = Path(sys.prefix) / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six.py")

HELLO_APP = """from chalice import Chalice

app = Chalice(app_name="hello")


@app.route("/")
def index():
    return {"hello": "world"}
"""

CHILD = r"""
import sys, time
t0 = time.perf_counter()
sys.path[:0] = [TASK, RUNTIME]
import app
t1 = time.perf_counter()
import json
event = json.loads(EVENT)
handler = app.app if ENTRY == "app" else getattr(app, ENTRY)
class Context:
    function_name = "cold"; memory_limit_in_mb = 1024; aws_request_id = "cold"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:cold"
    def get_remaining_time_in_millis(self): return 30000
t2 = time.perf_counter()
answer = handler(event, Context())
t3 = time.perf_counter()
print(json.dumps({"import_ms": (t1 - t0) * 1e3, "first_ms": (t3 - t2) * 1e3,
                  "answer": str(answer)[:200]}))
"""


# Authorizer variants: result-label suffix -> settings. "" is the deployed configuration.
AUTHORIZER_VARIANTS = {
    "": {"TESSERA_AUTHORIZER_AWS_CLIENT": "lite", "TESSERA_AUTHORIZER_CHECKS_REVOCATION": "true"},
    "+botocore": {
        "TESSERA_AUTHORIZER_AWS_CLIENT": "botocore",
        "TESSERA_AUTHORIZER_CHECKS_REVOCATION": "true",
    },
    "+lite-norevocation": {
        "TESSERA_AUTHORIZER_AWS_CLIENT": "lite",
        "TESSERA_AUTHORIZER_CHECKS_REVOCATION": "false",
    },
    "+botocore-norevocation": {
        "TESSERA_AUTHORIZER_AWS_CLIENT": "botocore",
        "TESSERA_AUTHORIZER_CHECKS_REVOCATION": "false",
    },
}


def site_packages() -> Path:
    return SITE / "site-packages"


def runtime_dir() -> Path:
    """The Lambda runtime's own packages: boto3, botocore and their dependencies."""
    target = COLD / "runtime"
    if target.is_dir():
        return target
    target.mkdir(parents=True)
    for name in RUNTIME_PACKAGES:
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


def unzip(archive: Path, target: Path, with_pyc: bool) -> Path:
    """The package as Lambda unzips it, with ``.pyc`` (compiled here if the zip has none) or
    without (any shipped ``__pycache__`` removed)."""
    if target.exists():
        shutil.rmtree(target)
    with zipfile.ZipFile(archive) as z:
        z.extractall(target)
    if not with_pyc:
        for cache in list(target.rglob("__pycache__")):
            shutil.rmtree(cache)
    elif not any(target.rglob("*.pyc")):
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
    task: Path, runtime: Path, entry: str, event: dict[str, Any], env: dict[str, str]
) -> dict[str, Any]:
    code = (
        CHILD.replace("TASK", repr(str(task)))
        .replace("RUNTIME", repr(str(runtime)))
        .replace("ENTRY", repr(entry))
        .replace("EVENT", repr(json.dumps(event)))
    )
    out = subprocess.run(
        [sys.executable, "-I", "-S", "-B", "-c", code],
        cwd=str(task),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if out.returncode != 0:
        raise RuntimeError(f"cold start of {entry} failed: {out.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    result["total_ms"] = result["import_ms"] + result["first_ms"]
    return result


def fresh_token(world: dict[str, Any]) -> str:
    """A valid access token signed by the captured key set (the bench process may import us)."""
    from chalicelib import access_tokens, jose, keys

    prefix = f"GetSecretValue:tessera/{common.STAGE}/signing-keys"
    body = next(v for k, v in world["canned"]["setup"].items() if k.startswith(prefix))["body"]
    import base64

    secret = json.loads(base64.b64decode(body))["SecretString"]
    current = next(e for e in keys.parse_key_set(secret) if e.state == "current")
    token, _ = access_tokens.issue(
        jose.load_signing_key(current.jwk),
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
    }
    server = CannedAWS(world["canned"])
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "AWS_"))}
    env.update(common.BENCH_ENV)
    env["AWS_ENDPOINT_URL"] = f"http://127.0.0.1:{server.server_address[1]}"
    cc = events.basic(world["cc"]["client_id"], world["cc"]["client_secret"])
    # (tree, entry point, event, result label, settings over BENCH_ENV)
    entries: list[tuple[str, str, dict[str, Any], str, dict[str, str]]] = [
        ("hello", "app", events.proxy_event("/", "GET"), "hello", {}),
        (
            "tessera",
            "app",
            events.token_request({"grant_type": "client_credentials", "scope": common.SCOPE}, cc),
            "app",
            {},
        ),
    ]
    if world.get("authorizer"):
        entry = world["authorizer"]
        event = events.authorizer_event(fresh_token(world))
        # As dev and prod deploy it (.chalice/config.json): the standard-library AWS client and
        # the revocation check on (one BatchGetItem, answered from the password scenario's
        # recording: no item for this token, so "not revoked"); then botocore, for comparison.
        for label, settings in AUTHORIZER_VARIANTS.items():
            entries.append(("tessera", entry, event, f"{entry}{label}", settings))
    if world.get("rotation"):
        rotation = world["rotation"]
        entries.append(("tessera", rotation["entry"], rotation["event"], rotation["entry"], {}))
    results: dict[str, Any] = {}
    try:
        for app_name, entry, event, label, settings in entries:
            run_env = dict(env, **settings)
            for with_pyc in (False, True):
                tree = trees[(app_name, with_pyc)]
                # One discarded run: the first read of freshly unzipped files pays the disk.
                cold_run(tree, runtime, entry, event, run_env)
                runs = [cold_run(tree, runtime, entry, event, run_env) for _ in range(repeats)]
                results[f"{label}|{'pyc' if with_pyc else 'nopyc'}"] = {
                    "import_ms": common.median([r["import_ms"] for r in runs]),
                    "first_ms": common.median([r["first_ms"] for r in runs]),
                    "total_ms": common.median([r["total_ms"] for r in runs]),
                    "answer": runs[0]["answer"],
                }
    finally:
        server.shutdown()
    common.emit(
        {
            "repeats": repeats,
            "packager": packager,
            "shipped_pyc": shipped_pyc,
            "zip_bytes": {"tessera": tessera_zip.stat().st_size, "hello": hello_zip.stat().st_size},
            "results": results,
        }
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
