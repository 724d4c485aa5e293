"""First contents of a new stack: a signing-key set, a refresh-token pepper and the demo data.

Used by the local stack and the tests. In AWS the rotation function's ``createSecret`` step fills
an empty key or pepper set the same way (the rotation schedule rotates once on creation).
"""

from __future__ import annotations

import time
from typing import Any

from chalicelib.keys import bootstrap_key_sets, parse_key_set
from chalicelib.peppers import bootstrap_pepper_set, parse_pepper_set


def seed_secrets(session: Any, stage: str, now: int | None = None) -> None:
    sm = session.client("secretsmanager")
    at = int(now if now is not None else time.time())
    seed_pepper(sm, stage, at)
    private_id = f"tessera/{stage}/signing-keys"
    current = sm.get_secret_value(SecretId=private_id)["SecretString"]
    if parse_key_set(current):
        return
    private, public = bootstrap_key_sets(at)
    sm.put_secret_value(SecretId=private_id, SecretString=private)
    sm.put_secret_value(SecretId=f"tessera/{stage}/public-keys", SecretString=public)


def seed_pepper(sm: Any, stage: str, now: int) -> None:
    """A first refresh-token pepper if the set is empty (the template seeds ``{"peppers": []}``)."""
    pepper_id = f"tessera/{stage}/pepper"
    if parse_pepper_set(sm.get_secret_value(SecretId=pepper_id)["SecretString"]):
        return
    sm.put_secret_value(SecretId=pepper_id, SecretString=bootstrap_pepper_set(now))


def seed_demo(session: Any, stage: str) -> None:
    """The demo API's people and articles (chalicelib.demo_store), idempotent."""
    from chalicelib.demo_store import DemoStore

    DemoStore(session.client("dynamodb"), f"tessera-demo-{stage}").seed()


def seed_all(session: Any, stage: str, now: int | None = None) -> None:
    """Everything a new local stack needs beyond the template's resources (idempotent)."""
    seed_secrets(session, stage, now)
    seed_demo(session, stage)
