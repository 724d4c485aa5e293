"""First contents of a new stack: a signing-key set, a refresh-token pepper, the demo data and the
demo API's authorizer rules.

Used by the local stack, the tests and the benchmarks. In AWS the rotation function's
``createSecret`` step fills an empty key or pepper set the same way (the rotation schedule rotates
once on creation); the demo's rules are registered with the admin command like any other API's
(README, "Deploy to AWS").
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from chalicelib.tokens.keys import bootstrap_key_sets, parse_key_set
from chalicelib.tokens.peppers import bootstrap_pepper_set, parse_pepper_set

# The demo API's route rules: data, registered like any attached API's (chalicelib.core.api_rules).
DEMO_RULES = Path(__file__).with_name("demo-rules.json")
# Tessera's own API as the local gateway names it in ARNs (infra/local_gateway.py).
LOCAL_DEMO_API = "tessera-demo/api"


def seed_secrets(session: Any, stage: str, now: int | None = None, alg: str = "ES256") -> None:
    """A first signing-key set (``current`` and ``next`` keys of ``alg``, the stage's
    ``TESSERA_SIGNING_ALG``) and pepper, where the sets are empty."""
    sm = session.client("secretsmanager")
    at = int(now if now is not None else time.time())
    seed_pepper(sm, stage, at)
    private_id = f"tessera/{stage}/signing-keys"
    current = sm.get_secret_value(SecretId=private_id)["SecretString"]
    if parse_key_set(current):
        return
    private, public = bootstrap_key_sets(at, alg)
    sm.put_secret_value(SecretId=private_id, SecretString=private)
    sm.put_secret_value(SecretId=f"tessera/{stage}/public-keys", SecretString=public)


def seed_pepper(sm: Any, stage: str, now: int) -> None:
    """A first refresh-token pepper if the set is empty (the template seeds ``{"peppers": []}``)."""
    pepper_id = f"tessera/{stage}/pepper"
    if parse_pepper_set(sm.get_secret_value(SecretId=pepper_id)["SecretString"]):
        return
    sm.put_secret_value(SecretId=pepper_id, SecretString=bootstrap_pepper_set(now))


def seed_demo(session: Any, stage: str) -> None:
    """The demo API's people and articles (chalicelib.store.demo_store), idempotent."""
    from chalicelib.store.demo_store import DemoStore

    DemoStore(session.client("dynamodb"), f"tessera-demo-{stage}").seed()


def demo_rules(apis: Iterable[str]) -> Any:
    """The demo's rule set (infra/demo-rules.json), bound to ``apis`` (``<api-id>/<stage>``)."""
    from chalicelib.core.api_rules import parse_rule_set

    doc = json.loads(DEMO_RULES.read_text())
    return parse_rule_set({**doc, "apis": list(apis)})


def seed_demo_rules(session: Any, stage: str, apis: Iterable[str], now: int | None = None) -> None:
    """Attach the demo API to the authorizer, as ``admin authorizer rules put`` would."""
    from chalicelib.store.api_rules_store import RulesStore

    store = RulesStore(session.client("dynamodb"), f"tessera-{stage}")
    store.put(demo_rules(apis), int(now if now is not None else time.time()))


def seed_all(
    session: Any,
    stage: str,
    now: int | None = None,
    demo_apis: Iterable[str] = (LOCAL_DEMO_API,),
    alg: str = "ES256",
) -> None:
    """Everything a new local stack needs beyond the template's resources (idempotent)."""
    seed_secrets(session, stage, now, alg)
    seed_demo(session, stage)
    seed_demo_rules(session, stage, demo_apis, now)
