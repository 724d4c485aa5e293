"""In-process measurements: authorizer cost vs the ES256 floor, token endpoint compute, round trips.

``python -m bench.inproc WORLD.json [--quick]``: a fresh interpreter without moto. AWS calls are
answered from the responses ``bench.world`` captured (``bench.canned.Replayer``) and counted.
CPU is ``time.process_time`` over many calls; each figure is the median of several repeats, and
each ratio is taken within one repeat (same process, same minute) before the median.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import canned, common, events


class Harness:
    def __init__(self, world: dict[str, Any]) -> None:
        common.apply_bench_env()
        self.world = world
        self.replayer = canned.Replayer(world["canned"])
        import app as app_module

        self.app_module = app_module
        self.fresh_container()

    def fresh_container(self) -> None:
        """What a new Lambda container has: no services, no clients, no caches. The stores'
        botocore clients are answered by the replayer."""
        from chalicelib.store import aws
        from chalicelib.web import services

        services.reset()
        self.replayer.attach(aws.client("dynamodb"))
        self.replayer.attach(aws.client("secretsmanager"))

    def call(self, event: dict[str, Any]) -> dict[str, Any]:
        response: dict[str, Any] = self.app_module.app(event, events.LambdaContext())
        return response


# --- token endpoint -------------------------------------------------------------------------


def scenario_events(world: dict[str, Any], name: str, n: int) -> list[dict[str, Any]]:
    cc = events.basic(world["cc"]["client_id"], world["cc"]["client_secret"])
    pw = events.basic(world["pw"]["client_id"], world["pw"]["client_secret"])
    user = world["user"]
    make: Callable[[], dict[str, Any]]
    if name == "client_credentials":
        make = lambda: events.token_request(  # noqa: E731
            {"grant_type": "client_credentials", "scope": common.SCOPE}, cc
        )
    elif name == "password":
        make = lambda: events.token_request(  # noqa: E731
            {"grant_type": "password", "username": user["username"], "password": user["password"]},
            pw,
        )
    elif name == "refresh_token":
        make = lambda: events.token_request(  # noqa: E731
            {"grant_type": "refresh_token", "refresh_token": world["refresh_token"]}, pw
        )
    elif name == "revoke":
        make = lambda: events.form_request(  # noqa: E731
            "/oauth2/revoke",
            {"token": world["revoke_token"], "token_type_hint": "refresh_token"},
            pw,
        )
    else:
        raise ValueError(name)
    return [make() for _ in range(n)]


def stub_argon2(password: str) -> None:
    """Replace the Argon2id check by an exact comparison, so the rest of the grant is visible."""
    from chalicelib.tokens import passwords

    def verify(candidate: str, phc: str | None) -> bool:
        return phc is not None and candidate == password

    passwords.verify_password = verify  # type: ignore[assignment]


def measure_argon2(repeats: int) -> dict[str, float]:
    from chalicelib.tokens import passwords

    phc = passwords.hash_password("correct horse battery staple")
    cpu, wall = [], []
    for _ in range(repeats):
        c, w = common.cpu_us_per_call(
            lambda _i: passwords.verify_password("correct horse battery staple", phc), 1
        )
        cpu.append(c)
        wall.append(w)
    return {"cpu_ms": common.median(cpu) / 1000, "wall_ms": common.median(wall) / 1000}


def measure_endpoint(h: Harness, name: str, n: int, repeats: int) -> dict[str, Any]:
    # Round trips of the first request in a new container, then of a warm one.
    h.fresh_container()
    h.replayer.scenario = name
    h.replayer.reset_counts()
    first = h.call(scenario_events(h.world, name, 1)[0])
    cold_calls = dict(h.replayer.calls)
    warm_events = scenario_events(h.world, name, 50)
    for e in warm_events:
        h.call(e)
    h.replayer.reset_counts()
    cpu, wall = [], []
    statuses: set[int] = {first["statusCode"]}
    for r in range(repeats):
        # As the Lambda runtime does: the event arrives as JSON, the response leaves as JSON.
        batch = [json.dumps(e) for e in scenario_events(h.world, name, n)]

        def one(i: int, batch: list[str] = batch) -> None:
            response = h.call(json.loads(batch[i]))
            json.dumps(response)
            statuses.add(response["statusCode"])

        c, w = common.cpu_us_per_call(one, n)
        cpu.append(c)
        wall.append(w)
        if r == 0:
            warm_calls = {k: v / n for k, v in h.replayer.calls.items()}
            warm_items = {k: v / n for k, v in h.replayer.items.items() if v}
    h.replayer.scenario = "setup"
    return {
        "cpu_us": common.median(cpu),
        "wall_us": common.median(wall),
        "cpu_runs": cpu,
        "n": n,
        "repeats": repeats,
        "statuses": sorted(statuses),
        "calls_first": cold_calls,
        "calls_first_total": sum(cold_calls.values()),
        "calls_warm": warm_calls,
        "calls_warm_total": sum(warm_calls.values()),
        "items_warm": warm_items,
    }


def uncached_client_calls(h: Harness, n: int) -> float:
    """client_credentials round trips when the client record is not cached (cache TTL 0)."""
    from chalicelib.core.config import settings

    os.environ["TESSERA_CLIENT_CACHE_TTL"] = "0"
    settings.cache_clear()
    try:
        h.fresh_container()
        h.replayer.scenario = "client_credentials"
        h.call(scenario_events(h.world, "client_credentials", 1)[0])  # loads the key set
        h.replayer.reset_counts()
        for e in scenario_events(h.world, "client_credentials", n):
            h.call(e)
        return sum(h.replayer.calls.values()) / n
    finally:
        os.environ.pop("TESSERA_CLIENT_CACHE_TTL", None)
        settings.cache_clear()
        h.fresh_container()
        h.replayer.scenario = "setup"


# --- authorizer -----------------------------------------------------------------------------


def measure_authorizer(h: Harness, n: int, repeats: int) -> dict[str, Any]:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
    from jwt.utils import base64url_decode

    from chalicelib.core.config import settings
    from chalicelib.tokens import access_tokens
    from chalicelib.web import services

    h.fresh_container()
    s = settings()
    signer = services.signing_keys().current()
    now = int(time.time())
    tokens = [
        access_tokens.issue(
            signer,
            issuer=s.issuer,
            audience=s.audience,
            subject=f"client-{i}",
            client_id=f"client-{i}",
            scope=common.SCOPE,
            now=now,
            lifetime=900,
        )[0]
        for i in range(n)
    ]
    public_key = signer.key.public_key()
    assert isinstance(public_key, ec.EllipticCurvePublicKey)  # the benchmark's keys are ES256
    algorithm = ec.ECDSA(hashes.SHA256())
    prepared = []
    for t in tokens:
        head, payload, sig = t.split(".")
        raw = base64url_decode(sig)
        der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
        prepared.append((der, (head + "." + payload).encode("ascii")))

    def floor(i: int) -> None:
        der, signing_input = prepared[i]
        public_key.verify(der, signing_input, algorithm)

    ring = services.verifying_keys()
    ring.verifier(signer.kid)  # warm keys: the public set is loaded before timing

    def validate(i: int) -> None:
        access_tokens.validate(
            tokens[i],
            ring.verifier,
            issuer=s.issuer,
            audience=s.audience,
            now=time.time(),
            leeway=s.clock_leeway,
        )

    # The deployed entry point: the plain handler (chalicelib.authorizer_lambda), not Chalice's.
    from chalicelib import authorizer_lambda

    handler = authorizer_lambda.handler if h.world.get("authorizer") else None
    auth_events = [events.authorizer_event(t) for t in tokens]
    context = events.LambdaContext()
    effects: set[str] = set()

    def lambda_entry(i: int) -> None:
        assert handler is not None
        document = handler(auth_events[i], context)["policyDocument"]
        assert isinstance(document, dict)
        effects.add(document["Statement"][0]["Effect"])

    def body(i: int) -> None:
        authorizer_lambda.handle(auth_events[i]["authorizationToken"], auth_events[i]["methodArn"])

    if handler is not None:
        h.replayer.scenario = "authorizer"
        lambda_entry(0)  # the first call loads the public key set (counted as a cold call)
    h.replayer.reset_counts()
    results: dict[str, list[float]] = {"floor": [], "validate": [], "body": [], "handler": []}
    for _ in range(repeats):
        results["floor"].append(common.cpu_us_per_call(floor, n)[0])
        results["validate"].append(common.cpu_us_per_call(validate, n)[0])
        if handler is not None:
            results["body"].append(common.cpu_us_per_call(body, n)[0])
            results["handler"].append(common.cpu_us_per_call(lambda_entry, n)[0])
    warm_calls = sum(h.replayer.calls.values()) / (2 * n * repeats)
    h.replayer.scenario = "setup"
    out: dict[str, Any] = {
        "n": n,
        "repeats": repeats,
        "floor_us": common.median(results["floor"]),
        "validate_us": common.median(results["validate"]),
        "validate_ratio": common.median(
            [v / f for v, f in zip(results["validate"], results["floor"], strict=True)]
        ),
        "runs": results,
        "has_handler": handler is not None,
        "warm_calls": warm_calls if handler is not None else None,
    }
    if handler is not None:
        out["body_us"] = common.median(results["body"])
        out["body_ratio"] = common.median(
            [v / f for v, f in zip(results["body"], results["floor"], strict=True)]
        )
        out["handler_us"] = common.median(results["handler"])
        out["handler_ratio"] = common.median(
            [v / f for v, f in zip(results["handler"], results["floor"], strict=True)]
        )
        out["effects"] = sorted(effects)
    return out


def main(argv: list[str]) -> int:
    world = common.load_json(Path(argv[1]) if len(argv) > 1 else common.BUILD / "world.json")
    quick = "--quick" in argv
    n, repeats = (200, 3) if quick else (1000, 7)
    h = Harness(world)
    result: dict[str, Any] = {
        "argon2id": measure_argon2(5 if quick else 11),
        "authorizer": measure_authorizer(h, n, repeats),
    }
    if "--authorizer-only" in argv:
        common.emit(result)
        return 0
    stub_argon2(world["user"]["password"])
    endpoint: dict[str, Any] = {}
    for name in ("client_credentials", "password", "refresh_token", "revoke"):
        if name in world["scenarios"]:
            endpoint[name] = measure_endpoint(h, name, n // 2, repeats)
    result["endpoint"] = endpoint
    result["cc_uncached_calls"] = uncached_client_calls(h, 20)
    common.emit(result)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
