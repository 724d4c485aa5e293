"""Signing-key and pepper rotation (chalicelib.ops.rotation): no valid token is ever rejected.

Tokens come from the token endpoint and are checked where users meet them: the authorizer
(``services.authorizer()``, public key set) and introspection (``/oauth2/introspect``, private
set). The services keep their caches across each test, as a Lambda container does, and the clock
is the fake one, so cache expiry and key timing happen as they would in production.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import jwt
import pytest
from botocore.exceptions import EndpointConnectionError
from jwt.utils import base64url_decode

import app as app_module
from chalicelib.authorizer_lambda import handle as authorizer_handle
from chalicelib.core.config import SIGNING_ALGS, settings
from chalicelib.core.faults import BackendUnavailable
from chalicelib.ops import admin
from chalicelib.ops.admin_keys import key_rotator, pepper_rotator
from chalicelib.ops.rotation import STEPS
from chalicelib.ops.rotation_plan import RotationError, Timing, plan_rotation
from chalicelib.store import aws
from chalicelib.web import services
from chalicelib.web.authorizer import AuthorizerUnavailable, Unauthorized
from tests.functional.conftest import STAGE, basic, body, form_post

METHOD_ARN = "arn:aws:execute-api:us-east-1:123456789012:abc123/api/GET/people"
KEYS = f"tessera/{STAGE}/signing-keys"
PUBLIC = f"tessera/{STAGE}/public-keys"
PEPPER = f"tessera/{STAGE}/pepper"


# --- helpers ------------------------------------------------------------------------------


@pytest.fixture(params=SIGNING_ALGS)
def signing_alg(request: pytest.FixtureRequest) -> str:
    """Every case runs for each algorithm a stage may choose (TESSERA_SIGNING_ALG): the seeded
    keys and every key rotation creates have that algorithm."""
    alg: str = request.param
    return alg


@pytest.fixture
def client(make_client: Any) -> dict[str, Any]:
    """A confidential client that may also introspect its tokens."""
    c: dict[str, Any] = make_client(introspect=True)
    return c


def _auth(c: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": basic(c["client_id"], c["client_secret"])}


def issue(app_client: Any, c: dict[str, Any]) -> str:
    r = form_post(app_client, "/oauth2/token", {"grant_type": "client_credentials"}, _auth(c))
    assert r.status_code == 200, r.body
    token: str = body(r)["access_token"]
    return token


def header(token: str) -> dict[str, Any]:
    h: dict[str, Any] = jwt.get_unverified_header(token)
    return h


def exp_of(token: str) -> int:
    return int(json.loads(base64url_decode(token.split(".")[1]))["exp"])


def authorizer_accepts(token: str) -> bool:
    try:
        services.authorizer().authorize("Bearer " + token, METHOD_ARN)
    except Unauthorized:
        return False
    return True


def introspection_active(app_client: Any, c: dict[str, Any], token: str) -> bool:
    r = form_post(app_client, "/oauth2/introspect", {"token": token}, _auth(c))
    assert r.status_code == 200, r.body
    return bool(body(r)["active"])


def stored(secret_id: str, **kwargs: str) -> dict[str, Any]:
    """A secret as stored (no cache); AWSCURRENT unless told (moto needs the stage spelled out)."""
    kwargs.setdefault("VersionStage", "AWSCURRENT")
    raw = aws.client("secretsmanager").get_secret_value(SecretId=secret_id, **kwargs)
    doc: dict[str, Any] = json.loads(raw["SecretString"])
    return doc


def states(secret_id: str, **kwargs: str) -> dict[str, str]:
    return {k["jwk"]["kid"]: k["state"] for k in stored(secret_id, **kwargs)["keys"]}


def kid_in(state: str, secret_id: str = KEYS) -> str:
    return next(k for k, s in states(secret_id).items() if s == state)


def versions(secret_id: str) -> dict[str, list[str]]:
    meta = aws.client("secretsmanager").describe_secret(SecretId=secret_id)
    return {k: list(v) for k, v in meta["VersionIdsToStages"].items()}


def timing() -> Timing:
    return Timing.for_keys(settings())


@contextmanager
def failing(operation: str, *, times: int = 1, secret_id: str | None = None) -> Iterator[None]:
    """Secrets Manager unreachable for ``operation`` (optionally on one secret), ``times`` calls."""
    sm = aws.client("secretsmanager")
    left = [times]

    def unreachable(params: dict[str, Any], **_: Any) -> None:
        if left[0] > 0 and (secret_id is None or params.get("SecretId") == secret_id):
            left[0] -= 1
            raise EndpointConnectionError(endpoint_url="https://secretsmanager.invalid")

    event = f"before-parameter-build.secrets-manager.{operation}"
    sm.meta.events.register(event, unreachable)
    try:
        yield
    finally:
        sm.meta.events.unregister(event, unreachable)


def run_admin(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    status = admin.main(["--stage", STAGE, *args], configure=lambda _stage: None)
    out, err = capsys.readouterr()
    return status, out, err


# --- timing -------------------------------------------------------------------------------


def test_default_timing_covers_every_cache_and_the_last_token(aws: Any) -> None:
    t = timing()
    # key_cache_ttl 300, key_stale_max 3600, access_token_ttl 900, leeway 30
    assert t.publish_delay == 3600 + 300
    assert t.retire_after == 3600 + 900 + 30


def test_jwks_max_age_fits_inside_the_publish_delay(app_client: Any) -> None:
    r = app_client.http.get("/.well-known/jwks.json")
    max_age = int(r.headers["Cache-Control"].split("max-age=")[1])
    s = settings()
    # A key is announced for our own cache (up to the stale bound) plus one client max-age.
    assert timing().publish_delay >= max(s.key_cache_ttl, s.key_stale_max) + max_age


def test_jwks_serves_the_public_set_including_next(app_client: Any) -> None:
    r = app_client.http.get("/.well-known/jwks.json")
    served = {k["kid"] for k in body(r)["keys"]}
    assert served == set(states(PUBLIC))
    assert kid_in("next") in served
    assert all("d" not in k for k in body(r)["keys"])


# --- the whole timeline -------------------------------------------------------------------


def test_full_rotation_timeline_never_rejects_a_valid_token(
    app_client: Any, client: dict[str, Any], clock: Any, signing_alg: str
) -> None:
    """Rotate every 2400 s (some runs wait for the next key, some promote), issue a token every
    150 s, and check every unexpired token at the authorizer at every instant, and at
    introspection when issued and just before it expires."""
    rotator = key_rotator()
    start = clock.now()
    tokens: list[str] = []
    promoted: list[str] = []
    first_kid = kid_in("current")
    next_rotation = start + 2400
    while clock.now() < start + 16_000:
        if clock.now() >= next_rotation:
            plan = rotator.rotate_now()
            if plan is not None and plan.promoted:
                promoted.append(plan.promoted)
            next_rotation += 2400
        token = issue(app_client, client)
        tokens.append(token)
        assert authorizer_accepts(token), "a token was rejected right after issue"
        assert introspection_active(app_client, client, token)
        now = clock.now()
        for t in tokens:
            if now < exp_of(t):
                assert authorizer_accepts(t), f"valid token rejected at +{now - start:.0f}s"
            if exp_of(t) - 150 <= now < exp_of(t):
                assert introspection_active(app_client, client, t)
        clock.advance(150)
    assert len(promoted) == 3
    assert {header(t)["alg"] for t in tokens} == {signing_alg}
    issued_kids = [header(t)["kid"] for t in tokens]
    assert set(promoted) <= set(issued_kids)
    # The first key was retired once its last token had expired; its tokens fail everywhere.
    assert first_kid not in states(KEYS)
    assert first_kid not in states(PUBLIC)
    assert not authorizer_accepts(tokens[0])
    assert not introspection_active(app_client, client, tokens[0])


def test_switching_the_stages_algorithm_by_rotation_never_rejects_a_valid_token(
    app_client: Any, client: dict[str, Any], clock: Any, signing_alg: str, monkeypatch: Any
) -> None:
    """TESSERA_SIGNING_ALG changed on a live stage: the keys rotation creates from then on have
    the new algorithm and are published before they sign, as any next key; the old algorithm's
    keys keep verifying their tokens until those expire."""
    other = next(a for a in SIGNING_ALGS if a != signing_alg)
    monkeypatch.setenv("TESSERA_SIGNING_ALG", other)
    services.reset()
    settings()  # pinned before the test client overlays the local stage's variables
    start = clock.now()
    tokens: list[str] = []
    next_rotation = start + 2400
    while clock.now() < start + 12_000:
        if clock.now() >= next_rotation:
            key_rotator().rotate_now()
            next_rotation += 2400
        tokens.append(issue(app_client, client))
        now = clock.now()
        for t in tokens:
            if now < exp_of(t):
                assert authorizer_accepts(t), f"valid token rejected at +{now - start:.0f}s"
        clock.advance(300)
    algs = [header(t)["alg"] for t in tokens]
    assert algs[0] == signing_alg
    assert algs[-1] == other
    assert algs == sorted(algs, key=lambda a: a == other)  # switched once, never back


def test_key_stays_published_until_its_last_token_has_expired(
    app_client: Any, client: dict[str, Any], clock: Any
) -> None:
    t = timing()
    old_kid = kid_in("current")
    clock.advance(t.publish_delay)
    issue(app_client, client)  # this container caches the set it signs with
    key_rotator().rotate_now()  # old key demoted now, but containers may sign with it a while
    demoted_at = clock.now()
    clock.advance(settings().key_cache_ttl - 1)
    last = issue(app_client, client)  # still signs with the cached, now demoted key
    assert header(last)["kid"] == old_kid
    clock.t = demoted_at + t.retire_after - 1
    key_rotator().rotate_now()
    assert old_kid in states(PUBLIC)
    clock.t = demoted_at + t.retire_after
    key_rotator().rotate_now()
    assert old_kid not in states(PUBLIC)
    assert clock.now() > exp_of(last) + settings().clock_leeway


def test_rotation_waits_while_next_key_is_too_young(aws: Any, clock: Any) -> None:
    before = states(KEYS)
    clock.advance(timing().publish_delay - 1)
    plan = key_rotator().rotate_now()
    assert plan is not None
    assert plan.promoted is None
    assert plan.ready_at == int(clock.now()) + 1
    assert states(KEYS) == before


def test_first_rotation_of_an_empty_set_bootstraps_current_and_next(
    app_client: Any, client: dict[str, Any]
) -> None:
    sm = aws.client("secretsmanager")
    sm.put_secret_value(SecretId=KEYS, SecretString='{"keys": []}')
    sm.put_secret_value(SecretId=PUBLIC, SecretString='{"keys": []}')
    arn = sm.describe_secret(SecretId=KEYS)["ARN"]
    token = str(uuid.uuid4())
    for step in STEPS:
        app_module.rotate_keys({"SecretId": arn, "ClientRequestToken": token, "Step": step}, None)
    assert sorted(states(KEYS).values()) == ["current", "next"]
    assert states(PUBLIC) == states(KEYS)
    access = issue(app_client, client)
    assert header(access)["kid"] == kid_in("current")
    assert authorizer_accepts(access)


# --- the four steps, one by one -----------------------------------------------------------


@pytest.fixture
def ready(aws: Any, clock: Any) -> dict[str, str]:
    """The seeded next key has been published long enough; a rotation token."""
    clock.advance(timing().publish_delay)
    return {"current": kid_in("current"), "next": kid_in("next"), "token": str(uuid.uuid4())}


def test_create_secret_stages_the_new_set_without_touching_current(ready: dict[str, str]) -> None:
    public_before = stored(PUBLIC)
    key_rotator().create_secret(ready["token"])
    assert "AWSPENDING" in versions(KEYS)[ready["token"]]
    assert states(KEYS) == {ready["current"]: "current", ready["next"]: "next"}
    pending = states(KEYS, VersionId=ready["token"], VersionStage="AWSPENDING")
    assert pending[ready["current"]] == "previous"
    assert pending[ready["next"]] == "current"
    assert list(pending.values()).count("next") == 1
    assert stored(PUBLIC) == public_before


def test_set_secret_publishes_the_new_next_key_before_it_can_sign(
    ready: dict[str, str], clock: Any
) -> None:
    r = key_rotator()
    r.create_secret(ready["token"])
    r.set_secret(ready["token"])
    pending = states(KEYS, VersionId=ready["token"], VersionStage="AWSPENDING")
    new_next = next(k for k, s in pending.items() if s == "next")
    published = {k["jwk"]["kid"]: k for k in stored(PUBLIC)["keys"]}
    assert set(published) == set(pending)
    assert published[new_next]["published"] == int(clock.now())
    assert all("d" not in k["jwk"] for k in published.values())
    assert states(KEYS)[ready["current"]] == "current"  # still signing


def test_test_secret_refuses_a_set_missing_from_the_public_keys(ready: dict[str, str]) -> None:
    r = key_rotator()
    r.create_secret(ready["token"])
    with pytest.raises(RotationError, match="not in the public set"):
        r.test_secret(ready["token"])


def test_test_secret_refuses_to_sign_with_a_key_published_too_recently(
    aws: Any, clock: Any
) -> None:
    r = key_rotator()
    clock.advance(10)
    early = Timing(publish_delay=0, retire_after=timing().retire_after)
    plan = plan_rotation(r.current_entries(), int(clock.now()), early, r.kind.make)
    token = str(uuid.uuid4())
    aws.client("secretsmanager").put_secret_value(
        SecretId=KEYS,
        ClientRequestToken=token,
        SecretString=r.kind.dump(plan.entries),
        VersionStages=["AWSPENDING"],
    )
    r.set_secret(token)
    with pytest.raises(RotationError, match="before verifiers are sure to know it"):
        r.test_secret(token)


def test_finish_secret_makes_the_set_current_and_stamps_the_demotion(
    ready: dict[str, str], clock: Any
) -> None:
    r = key_rotator()
    for step in STEPS[:3]:
        r.step(step, ready["token"])
    r.finish_secret(ready["token"])
    assert versions(KEYS)[ready["token"]] == ["AWSCURRENT"]
    assert states(KEYS)[ready["next"]] == "current"
    old = next(k for k in stored(PUBLIC)["keys"] if k["jwk"]["kid"] == ready["current"])
    assert old["state"] == "previous"
    assert old["demoted"] == int(clock.now())


def test_tokens_validate_through_every_step_and_new_ones_use_the_new_key(
    app_client: Any, client: dict[str, Any], ready: dict[str, str], clock: Any
) -> None:
    old = issue(app_client, client)
    assert header(old)["kid"] == ready["current"]
    r = key_rotator()
    for step in STEPS:
        r.step(step, ready["token"])
        clock.advance(30)
        assert authorizer_accepts(old), step
        assert introspection_active(app_client, client, old), step
    clock.advance(settings().key_cache_ttl)
    new = issue(app_client, client)
    assert header(new)["kid"] == ready["next"]
    assert authorizer_accepts(new)
    assert introspection_active(app_client, client, new)
    assert authorizer_accepts(old)


def test_every_step_can_run_twice(ready: dict[str, str]) -> None:
    r = key_rotator()
    for step in STEPS:
        r.step(step, ready["token"])
        keys_after, public_after = versions(KEYS), stored(PUBLIC)
        public_versions = versions(PUBLIC)
        r.step(step, ready["token"])
        assert versions(KEYS) == keys_after, step
        assert stored(PUBLIC) == public_after, step
        assert versions(PUBLIC) == public_versions, step
    assert states(KEYS)[ready["next"]] == "current"


def test_create_secret_failing_is_retried_with_the_same_token(ready: dict[str, str]) -> None:
    r = key_rotator()
    with failing("PutSecretValue"), pytest.raises(BackendUnavailable):
        r.create_secret(ready["token"])
    assert ready["token"] not in versions(KEYS)
    for step in STEPS:
        r.step(step, ready["token"])
    assert states(KEYS)[ready["next"]] == "current"


def test_set_secret_failing_leaves_both_sets_as_they_were(ready: dict[str, str]) -> None:
    r = key_rotator()
    r.create_secret(ready["token"])
    public_before = stored(PUBLIC)
    with failing("PutSecretValue", secret_id=PUBLIC), pytest.raises(BackendUnavailable):
        r.set_secret(ready["token"])
    assert stored(PUBLIC) == public_before
    assert states(KEYS)[ready["current"]] == "current"
    for step in STEPS[1:]:
        r.step(step, ready["token"])
    assert states(KEYS)[ready["next"]] == "current"


def test_finish_secret_failing_half_way_resumes_through_the_handler(
    ready: dict[str, str], clock: Any
) -> None:
    """The label moved, then the demotion stamp could not be written; the retry completes it."""
    arn = aws.client("secretsmanager").describe_secret(SecretId=KEYS)["ARN"]

    def event(step: str) -> dict[str, str]:
        return {"SecretId": arn, "ClientRequestToken": ready["token"], "Step": step}

    for step in STEPS[:3]:
        app_module.rotate_keys(event(step), None)
    with failing("PutSecretValue", secret_id=PUBLIC), pytest.raises(BackendUnavailable):
        app_module.rotate_keys(event("finishSecret"), None)
    assert "AWSCURRENT" in versions(KEYS)[ready["token"]]
    assert "demoted" not in json.dumps(stored(PUBLIC))
    clock.advance(5)
    app_module.rotate_keys(event("finishSecret"), None)
    old = next(k for k in stored(PUBLIC)["keys"] if k["jwk"]["kid"] == ready["current"])
    assert old["demoted"] == int(clock.now())


def test_handler_ignores_steps_of_a_finished_rotation(ready: dict[str, str]) -> None:
    arn = aws.client("secretsmanager").describe_secret(SecretId=KEYS)["ARN"]
    for step in STEPS:
        app_module.rotate_keys(
            {"SecretId": arn, "ClientRequestToken": ready["token"], "Step": step}, None
        )
    before = versions(KEYS), stored(PUBLIC)
    app_module.rotate_keys(
        {"SecretId": arn, "ClientRequestToken": ready["token"], "Step": "createSecret"}, None
    )
    assert (versions(KEYS), stored(PUBLIC)) == before


def test_handler_refuses_a_rotation_superseded_by_a_newer_one(ready: dict[str, str]) -> None:
    arn = aws.client("secretsmanager").describe_secret(SecretId=KEYS)["ARN"]
    app_module.rotate_keys(
        {"SecretId": arn, "ClientRequestToken": ready["token"], "Step": "createSecret"}, None
    )
    key_rotator().rotate_now()  # abandons the first run
    with pytest.raises(RotationError, match="not the pending version"):
        app_module.rotate_keys(
            {"SecretId": arn, "ClientRequestToken": ready["token"], "Step": "setSecret"}, None
        )


def test_handler_refuses_a_secret_it_does_not_own(aws: Any) -> None:
    sm = aws.client("secretsmanager")
    arn = sm.create_secret(Name="someone/else", SecretString="{}")["ARN"]
    with pytest.raises(RotationError, match="does not rotate"):
        app_module.rotate_keys(
            {"SecretId": arn, "ClientRequestToken": str(uuid.uuid4()), "Step": "createSecret"},
            None,
        )


# --- Secrets Manager unreachable ----------------------------------------------------------


def test_outage_keeps_cached_keys_for_the_stale_bound_then_fails_closed(
    app_client: Any, client: dict[str, Any], clock: Any
) -> None:
    s = settings()
    start = clock.now()
    assert authorizer_accepts(issue(app_client, client))  # both caches filled
    with failing("GetSecretValue", times=10**6):
        clock.t = start + s.key_stale_max - 1
        token = issue(app_client, client)
        assert authorizer_accepts(token)
        clock.t = start + s.key_stale_max
        r = form_post(
            app_client, "/oauth2/token", {"grant_type": "client_credentials"}, _auth(client)
        )
        assert r.status_code == 503
        assert "Retry-After" in r.headers
        with pytest.raises(AuthorizerUnavailable):  # deny: never an allow
            authorizer_handle("Bearer " + token, METHOD_ARN)


# --- admin --------------------------------------------------------------------------------


def test_admin_keys_list_shows_kid_alg_state_and_created(
    aws: Any, capsys: pytest.CaptureFixture[str], signing_alg: str
) -> None:
    status, out, _ = run_admin(capsys, "keys", "list", "--json")
    assert status == 0
    rows = json.loads(out)
    assert {r["id"]: r["state"] for r in rows} == states(KEYS)
    assert all(r["alg"] == signing_alg and isinstance(r["created"], int) for r in rows)
    assert '"d"' not in out


def test_admin_keys_rotate_promotes_the_next_key(
    aws: Any, clock: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    next_kid = kid_in("next")
    clock.advance(timing().publish_delay)
    status, out, _ = run_admin(capsys, "keys", "rotate", "--json")
    assert status == 0
    assert json.loads(out)["current"] == next_kid
    assert kid_in("current") == next_kid


def test_admin_keys_rotate_says_when_the_next_key_will_be_ready(
    aws: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, _ = run_admin(capsys, "keys", "rotate")
    assert status == 0
    assert "not promoted yet" in out


def test_admin_revoke_of_current_key_promotes_next_and_its_tokens_fail(
    app_client: Any, client: dict[str, Any], clock: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    token = issue(app_client, client)
    compromised, successor = kid_in("current"), kid_in("next")
    status, _, _ = run_admin(capsys, "keys", "revoke", compromised)
    assert status == 0
    assert compromised not in states(KEYS)
    assert compromised not in states(PUBLIC)
    assert kid_in("current") == successor
    assert "next" in states(KEYS).values()
    clock.advance(settings().key_cache_ttl)  # caches pick it up within key_cache_ttl
    assert not authorizer_accepts(token)
    assert not introspection_active(app_client, client, token)
    served = {k["kid"] for k in body(app_client.http.get("/.well-known/jwks.json"))["keys"]}
    assert compromised not in served
    fresh = issue(app_client, client)
    assert header(fresh)["kid"] == successor
    assert authorizer_accepts(fresh)


def test_admin_revoke_refuses_the_only_current_key_without_a_next(
    aws: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    sm = aws.client("secretsmanager")
    only = [k for k in stored(KEYS)["keys"] if k["state"] == "current"]
    sm.put_secret_value(SecretId=KEYS, SecretString=json.dumps({"keys": only}))
    status, _, err = run_admin(capsys, "keys", "revoke", only[0]["jwk"]["kid"])
    assert status == 2
    assert "only current" in err
    assert kid_in("current") == only[0]["jwk"]["kid"]


def test_admin_revoke_of_unknown_kid_is_an_error(
    aws: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _, err = run_admin(capsys, "keys", "revoke", "no-such-kid")
    assert status == 2
    assert "no-such-kid" in err


def test_revoke_cancels_a_pending_rotation_that_would_bring_the_key_back(
    ready: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    r = key_rotator()
    r.create_secret(ready["token"])
    status, _, _ = run_admin(capsys, "keys", "revoke", ready["current"])
    assert status == 0
    with pytest.raises(RotationError):
        r.step("finishSecret", ready["token"])
    assert ready["current"] not in states(KEYS)


def test_revoking_the_key_a_rotation_promoted_leaves_one_current_set_without_it(
    ready: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """finishSecret moves AWSCURRENT by label; the revocation after it writes a new current
    version. Exactly one version is current afterwards, and it is the one without the key."""
    key_rotator().rotate_now()
    promoted = kid_in("current")
    assert promoted == ready["next"]
    status, _, _ = run_admin(capsys, "keys", "revoke", promoted)
    assert status == 0
    current = [v for v, stages in versions(KEYS).items() if "AWSCURRENT" in stages]
    assert len(current) == 1
    assert promoted not in states(KEYS)
    assert promoted not in states(PUBLIC)
    assert "current" in states(KEYS).values()


# --- the refresh-token pepper -------------------------------------------------------------


def pepper_states() -> dict[str, str]:
    return {p["id"]: p["state"] for p in stored(PEPPER)["peppers"]}


def test_pepper_rotation_keeps_live_refresh_tokens_working(
    app_client: Any, make_client: Any, make_user: Any, clock: Any
) -> None:
    from tests.functional.refresh_support import login, password_client, refresh

    c = password_client(make_client)
    make_user()
    before = login(app_client, c)
    old_pepper = next(p for p, s in pepper_states().items() if s == "current")
    pepper_rotator().rotate_now()
    assert pepper_states()[old_pepper] == "previous"
    new_pepper = next(p for p, s in pepper_states().items() if s == "current")
    clock.advance(settings().key_cache_ttl)
    r = refresh(app_client, c, before["refresh_token"])
    assert r.status_code == 200, r.body
    assert f"_{new_pepper}_" in body(r)["refresh_token"]
    assert refresh(app_client, c, body(r)["refresh_token"]).status_code == 200


def test_previous_pepper_is_retired_after_the_refresh_token_lifetime(
    aws: Any, clock: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    first = next(iter(pepper_states()))
    pepper_rotator().rotate_now()
    demoted_at = clock.now()
    retire_after = Timing.for_peppers(settings()).retire_after
    assert retire_after >= settings().refresh_token_absolute_ttl
    clock.t = demoted_at + retire_after - 1
    status, _, _ = run_admin(capsys, "pepper", "rotate")
    assert status == 0
    assert first in pepper_states()
    clock.t = demoted_at + retire_after
    pepper_rotator().rotate_now()
    assert first not in pepper_states()


def test_pepper_rotation_through_the_handler_loads_in_the_refresh_code(aws: Any) -> None:
    from chalicelib.tokens.peppers import parse_pepper_set

    sm = aws.client("secretsmanager")
    arn = sm.describe_secret(SecretId=PEPPER)["ARN"]
    token = str(uuid.uuid4())
    for step in STEPS:
        app_module.rotate_keys({"SecretId": arn, "ClientRequestToken": token, "Step": step}, None)
    loaded = parse_pepper_set(
        sm.get_secret_value(SecretId=PEPPER, VersionStage="AWSCURRENT")["SecretString"]
    )
    assert sorted(p.state for p in loaded) == ["current", "previous"]


def test_pepper_run_left_unfinished_too_long_is_refused_then_restarted(
    aws: Any, clock: Any
) -> None:
    r = pepper_rotator()
    before = pepper_states()
    token = str(uuid.uuid4())
    r.create_secret(token)
    clock.advance(Timing.for_peppers(settings()).publish_delay + 1)
    with pytest.raises(RotationError, match="too long ago"):
        r.finish_secret(token)
    assert pepper_states() == before
    r.rotate_now()
    assert sorted(pepper_states().values()) == ["current", "previous"]
