"""Build the bench world once under moto and capture every AWS response the scenarios need.

``python -m bench.world OUT.json``: provisions the stack from ``infra/template.yaml`` in moto,
registers a client_credentials client, a password+refresh client and a user, runs each scenario
once through the Lambda handler (``app.app(event, context)``) and writes the credentials, the
replayable inputs and the captured responses (``bench.canned``) to OUT.json. The measurement
processes replay them without moto.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from bench import canned, common, events

USERNAME = "bench-user"
PASSWORD = "correct horse battery staple"  # noqa: S105 - the bench user's password


def find_authorizer(app_module: Any) -> str | None:
    """The name of the app module's built-in authorizer, if it has one."""
    from chalice.app import ChaliceAuthorizer

    for name in dir(app_module):
        if isinstance(getattr(app_module, name), ChaliceAuthorizer):
            return name
    return None


def has_route(app_module: Any, path: str) -> bool:
    return path in app_module.app.routes


def _call(app_module: Any, event: dict[str, Any]) -> dict[str, Any]:
    response: dict[str, Any] = app_module.app(event, events.LambdaContext())
    return response


def _body(response: dict[str, Any]) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(response["body"])
    return parsed


def capture() -> dict[str, Any]:
    common.apply_bench_env()
    import boto3
    from moto import mock_aws

    from chalicelib.ops import admin
    from chalicelib.store import aws
    from chalicelib.web import services
    from infra.provision import provision
    from infra.seed import seed_all

    with mock_aws():
        session = boto3.Session(region_name="us-east-1")
        provision(session, common.STAGE)
        # The demo API's rules, bound to the API the bench's authorizer events name.
        seed_all(session, common.STAGE, now=int(time.time()), demo_apis=[f"{events.API_ID}/api"])
        services.reset()
        recorder = canned.Recorder()
        recorder.attach(aws.client("dynamodb"))
        recorder.attach(aws.client("secretsmanager"))

        import app as app_module

        cc = admin.create_client(
            services.client_store(),
            name="bench m2m",
            grant_types=["client_credentials"],
            scopes=common.SCOPE.split(),
        )
        pw = admin.create_client(
            services.client_store(),
            name="bench first-party",
            grant_types=["password", "refresh_token"],
            scopes=common.SCOPE.split(),
        )
        admin.create_user(services.user_store(), USERNAME, PASSWORD)
        world: dict[str, Any] = {
            "cc": {"client_id": cc["client_id"], "client_secret": cc["client_secret"]},
            "pw": {"client_id": pw["client_id"], "client_secret": pw["client_secret"]},
            "user": {"username": USERNAME, "password": PASSWORD},
            "scenarios": {},
        }
        cc_auth = events.basic(str(cc["client_id"]), str(cc["client_secret"]))
        pw_auth = events.basic(str(pw["client_id"]), str(pw["client_secret"]))

        def run(name: str, event: dict[str, Any]) -> dict[str, Any]:
            recorder.scenario = name
            response = _call(app_module, event)
            recorder.scenario = "setup"
            world["scenarios"][name] = {"status": response["statusCode"]}
            return response

        r = run(
            "client_credentials",
            events.token_request(
                {"grant_type": "client_credentials", "scope": common.SCOPE}, cc_auth
            ),
        )
        assert r["statusCode"] == 200, r
        # The authorizer's key set (public keys only), captured whether or not it exists yet.
        services.verifying_keys().verifier(services.signing_keys().current().kid)
        r = run(
            "password",
            events.token_request(
                {"grant_type": "password", "username": USERNAME, "password": PASSWORD}, pw_auth
            ),
        )
        assert r["statusCode"] == 200, r
        first_refresh = _body(r).get("refresh_token")
        if first_refresh:
            world["refresh_token"] = first_refresh
            r = run(
                "refresh_token",
                events.token_request(
                    {"grant_type": "refresh_token", "refresh_token": first_refresh}, pw_auth
                ),
            )
            assert r["statusCode"] == 200, r
            if has_route(app_module, "/oauth2/revoke"):
                rotated = _body(r)["refresh_token"]
                world["revoke_token"] = rotated
                r = run(
                    "revoke",
                    events.form_request(
                        "/oauth2/revoke",
                        {"token": rotated, "token_type_hint": "refresh_token"},
                        pw_auth,
                    ),
                )
                assert r["statusCode"] == 200, r
        world["authorizer"] = find_authorizer(app_module)
        if world["authorizer"]:
            token = _body(
                _call(
                    app_module,
                    events.token_request(
                        {"grant_type": "client_credentials", "scope": common.SCOPE}, cc_auth
                    ),
                )
            )["access_token"]
            recorder.scenario = "authorizer"
            handler = getattr(app_module, world["authorizer"])
            answer = handler(events.authorizer_event(token), events.LambdaContext())
            recorder.scenario = "setup"
            world["scenarios"]["authorizer"] = {"effect": _effect(answer)}
        world["rotation"] = capture_rotation(app_module, recorder)
        world["canned"] = recorder.maps
        world["capture_calls"] = dict(recorder.calls)
        return world


def capture_rotation(app_module: Any, recorder: canned.Recorder) -> dict[str, Any] | None:
    """The rotation function's first step (createSecret) on the signing keys, if it exists."""
    import uuid

    entry = "rotate_keys"
    handler = getattr(app_module, entry, None)
    if handler is None:
        return None
    from chalicelib.store import aws

    sm = aws.client("secretsmanager")
    arn = sm.describe_secret(SecretId=f"tessera/{common.STAGE}/signing-keys")["ARN"]
    event = {"SecretId": arn, "ClientRequestToken": str(uuid.uuid4()), "Step": "createSecret"}
    recorder.scenario = "rotation"
    try:
        handler(event, events.LambdaContext())
    finally:
        recorder.scenario = "setup"
    return {"entry": entry, "event": event}


def _effect(answer: Any) -> str:
    try:
        return str(answer["policyDocument"]["Statement"][0]["Effect"])
    except (KeyError, IndexError, TypeError):
        return "?"


def main(argv: list[str]) -> int:
    out = Path(argv[1]) if len(argv) > 1 else common.BUILD / "world.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(capture(), indent=1, sort_keys=True))
    common.emit({"world": str(out)})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
