"""What each store answers when DynamoDB says no, over the client every stage deploys.

The stores catch the outcomes they expect as botocore's modeled exceptions and let everything else
become ``BackendUnavailable``. Here each store operation whose outcome hangs on an error answer runs
on ``chalicelib.store.aws``'s DynamoDB client against moto: conditional puts (``ClientExists``,
``UserExists``, a pairwise salt two containers make at once), a condition failure that returns the
old item (a re-used authorization code names its family), a cancelled transaction read through its
``CancellationReasons`` (rotation of a revoked family, of a disabled user's token; a grant started
for a user who may no longer receive it; a login success raced by a counted guess), a batch read
answered with ``UnprocessedKeys`` (asked again with growing pauses, a fault after three rounds), and
an invalid request, which is a fault.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

import pytest

from chalicelib.core.faults import BackendUnavailable
from chalicelib.core.records import (
    ACTIVE,
    Client,
    CodeAlreadyUsed,
    CodeGrant,
    Family,
    RotateOutcome,
    TokenRecord,
    User,
)
from chalicelib.store import aws as aws_clients
from chalicelib.store.auth_codes import CodeStore
from chalicelib.store.clients import ClientExists, ClientStore
from chalicelib.store.grant_store import GrantStore
from chalicelib.store.users import UserExists, UserStore
from tests.functional.conftest import STAGE

NOW = 1_900_000_000
TABLE = f"tessera-{STAGE}"


@pytest.fixture
def ddb(aws: Any) -> Any:
    """The container's DynamoDB client (chalicelib.store.aws), in the test's moto world."""
    return aws_clients.client("dynamodb")


def _id() -> str:
    return secrets.token_hex(6)


def test_creating_a_client_twice_is_client_exists(ddb: Any) -> None:
    store = ClientStore(ddb, TABLE)
    client = Client(client_id=_id(), name="n", grant_types=("client_credentials",), scopes=("a",))
    store.create(client)
    with pytest.raises(ClientExists):
        store.create(client)
    assert store.get(client.client_id) == client


def test_creating_a_user_twice_is_user_exists(ddb: Any) -> None:
    store = UserStore(ddb, TABLE)
    user = User(username=f"u{_id()}", user_id="u_" + _id(), password_hash="$argon2id$x")
    store.create(user)
    with pytest.raises(UserExists):
        store.create(user)
    assert store.set_disabled(user.username, True) is True
    assert store.set_disabled("nobody-" + _id(), True) is False


def test_reused_code_names_the_family_its_first_use_started(ddb: Any) -> None:
    store = CodeStore(ddb, TABLE)
    code = secrets.token_urlsafe(32)
    grant = CodeGrant(
        client_id="c",
        redirect_uri="https://app.example/cb",
        code_challenge="x" * 43,
        user_id="u_1",
        username="alice",
        scope="a",
        expires_at=NOW + 120,
    )
    store.save(code, grant)
    assert store.redeem(code, NOW, family_id="fam-1") == grant
    with pytest.raises(CodeAlreadyUsed) as caught:
        store.redeem(code, NOW, family_id="fam-2")
    assert caught.value.family_id == "fam-1"
    assert store.redeem("unknown-" + _id(), NOW) is None


def _family(user: User, family_id: str) -> tuple[Family, TokenRecord]:
    family = Family(
        family_id=family_id,
        user_id=user.user_id,
        username=user.username,
        client_id="c",
        scope="a",
        created=NOW,
        last_used=NOW,
        expires=NOW + 86400,
    )
    token = _token(family, "h-" + _id())
    return family, token


def _token(family: Family, token_hash: str) -> TokenRecord:
    return TokenRecord(
        token_hash=token_hash,
        family_id=family.family_id,
        client_id=family.client_id,
        user_id=family.user_id,
        username=family.username,
        scope=family.scope,
        pepper_id="p1",
        state=ACTIVE,
        created=NOW,
        expires=family.expires,
        idle_expires=NOW + 3600,
    )


@pytest.mark.parametrize(
    ("spoil", "outcome"),
    [
        (None, RotateOutcome.COMMITTED),
        ("revoke_family", RotateOutcome.FAMILY_REVOKED),
        ("disable_user", RotateOutcome.USER_INVALID),
        ("rotate_first", RotateOutcome.TOKEN_NOT_ACTIVE),
    ],
)
def test_rotation_outcome_is_read_from_the_cancellation_reasons(
    ddb: Any, spoil: str | None, outcome: RotateOutcome
) -> None:
    users, grants = UserStore(ddb, TABLE), GrantStore(ddb, TABLE)
    user = User(username=f"u{_id()}", user_id="u_" + _id(), password_hash="$argon2id$x")
    users.create(user)
    family, first = _family(user, "f-" + _id())
    grants.create_family(family, first)
    if spoil == "revoke_family":
        assert grants.revoke_family(family.family_id, "test", NOW) is True
        assert grants.revoke_family(family.family_id, "test", NOW) is False
    elif spoil == "disable_user":
        users.set_disabled(user.username, True)
    elif spoil == "rotate_first":
        other = _token(family, "h-" + _id())
        assert grants.rotate(first, other, successor_pepper="p1", now=NOW) is (
            RotateOutcome.COMMITTED
        )
    second = _token(family, "h-" + _id())
    assert grants.rotate(first, second, successor_pepper="p1", now=NOW + 1) is outcome


def test_an_invalid_request_is_a_fault(ddb: Any) -> None:
    with pytest.raises(BackendUnavailable) as caught:
        GrantStore(ddb, "no-such-table-" + _id()).get_family("f")
    assert caught.value.reason == "ResourceNotFoundException"


@pytest.mark.parametrize(
    ("spoil", "written"),
    [
        (None, True),
        ("disable_user", False),
        ("disable_and_enable_user", False),
        ("delete_user", False),
        ("revoke_before_written", False),
    ],
)
def test_a_grant_is_written_only_while_its_user_may_receive_it(
    ddb: Any, spoil: str | None, written: bool
) -> None:
    """The cancelled transaction of ``create_family`` (user check or a re-used code's revoked
    marker) is a refusal, never a fault, and nothing of the grant is stored."""
    users, grants = UserStore(ddb, TABLE), GrantStore(ddb, TABLE)
    user = User(username=f"u{_id()}", user_id="u_" + _id(), password_hash="$argon2id$x")
    users.create(user)
    family, first = _family(user, "f-" + _id())
    if spoil in ("disable_user", "disable_and_enable_user"):
        users.set_disabled(user.username, True)
    if spoil == "disable_and_enable_user":
        users.set_disabled(user.username, False)
    if spoil == "delete_user":
        users.delete(user.username)
    if spoil == "revoke_before_written":
        assert grants.revoke_family(family.family_id, "code_reuse", NOW, preempt=True) is True
    assert grants.create_family(family, first) is written
    assert (grants.get_family(family.family_id) is not None) is written
    assert (grants.get_token(first.token_hash) is not None) is written
    assert grants.is_revoked("jti-" + _id(), family.family_id) is not written


def test_login_guard_reads_its_transaction_and_unlock_query(ddb: Any) -> None:
    """A success raced by a counted guess is refused (read from the cancelled transaction's
    reasons); a clean success commits; ``unlock`` finds every source's counter with a query."""
    from chalicelib.core.errors import InvalidGrant
    from chalicelib.oauth.login_guard import LoginGuard, Policy
    from chalicelib.store.login_attempts import LoginAttempts

    policy = Policy(threshold=2, base_seconds=60, max_seconds=3600)
    guard = LoginGuard(LoginAttempts(ddb, TABLE), policy)
    name = f"u{_id()}"
    raced = guard.check(name, "c", "192.0.2.1", NOW)
    guard.failed(guard.check(name, "c", "192.0.2.2", NOW), NOW)
    with pytest.raises(InvalidGrant):
        guard.succeeded(raced, NOW)
    guard.succeeded(guard.check(name, "c", "192.0.2.1", NOW), NOW)
    for _ in range(2):
        guard.failed(guard.check(name, "c", "192.0.2.3", NOW), NOW)
    with pytest.raises(InvalidGrant):
        guard.check(name, "c", "192.0.2.3", NOW)  # that source waits now
    assert guard.unlock(name) is True
    assert guard.check(name, "c", "192.0.2.3", NOW).username == name
    assert guard.unlock(name) is False


def test_racing_makers_of_a_pairwise_salt_agree_on_one(ddb: Any) -> None:
    """Another container makes the sector's salt between this one's read and its conditional put:
    the failed condition is no fault, and both containers use the winner's salt."""
    from chalicelib.store.sector_salts import SectorSalts

    mine, theirs = SectorSalts(ddb, TABLE), SectorSalts(ddb, TABLE)
    sector = f"app-{_id()}.example"
    winner: list[bytes] = []

    def other_container_first(**_: Any) -> None:
        if not winner:
            winner.append(b"")  # the other container's own PutItem passes through
            winner[0] = theirs.salt(sector)

    event = "before-call.dynamodb.PutItem"
    ddb.meta.events.register(event, other_container_first, unique_id="salt-race")
    try:
        got = mine.salt(sector)
    finally:
        ddb.meta.events.unregister(event, unique_id="salt-race")
    assert len(winner[0]) == 32
    assert got == winner[0]
    assert SectorSalts(ddb, TABLE).salt(sector) == got


def _unprocessed_batches(ddb: Any, keys: list[Any], rounds: int) -> list[int]:
    """The next ``rounds`` BatchGetItem calls are throttled the way DynamoDB throttles them: a 200
    answer that reads nothing and hands every key back as ``UnprocessedKeys``. Later calls reach
    moto. Returns a one-element list counting the calls."""
    from botocore.awsrequest import AWSResponse, HTTPHeaders

    calls = [0]
    parsed = {
        "Responses": {},
        "UnprocessedKeys": {TABLE: {"Keys": keys, "ConsistentRead": True}},
        "ResponseMetadata": {"HTTPStatusCode": 200},
    }

    def handler(**_: Any) -> Any:  # a before-call handler's (response, parsed) replaces the call
        calls[0] += 1
        if calls[0] > rounds:
            return None
        return AWSResponse("https://dynamodb.invalid", 200, HTTPHeaders(), None), parsed

    ddb.meta.events.register("before-call.dynamodb.BatchGetItem", handler, unique_id="unproc")
    return calls


def test_a_throttled_batch_read_is_asked_again_with_growing_pauses_then_read(
    ddb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """UnprocessedKeys (DynamoDB's throttling answer to BatchGetItem) are asked again after a
    pause that doubles, and the read then answers as if nothing happened: a deny-listed token is
    still refused."""
    from chalicelib.store.grant_store import family_key, jti_key

    pauses: list[float] = []
    monkeypatch.setattr(time, "sleep", pauses.append)  # the pauses, not their wait
    grants, jti, sid = GrantStore(ddb, TABLE), "jti-" + _id(), "fam-" + _id()
    grants.deny_jti(jti, NOW + 60, "c", NOW)
    calls = _unprocessed_batches(ddb, [jti_key(jti), family_key(sid)], rounds=2)
    try:
        assert grants.is_revoked(jti, sid) is True
    finally:
        ddb.meta.events.unregister("before-call.dynamodb.BatchGetItem", unique_id="unproc")
    assert calls[0] == 3
    assert pauses == [0.05, 0.1]


def test_a_batch_read_throttled_every_time_is_a_fault_after_three_rounds(
    ddb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bounded: three rounds of UnprocessedKeys, then ``BackendUnavailable`` (503 to the caller),
    never an answer made from a partial read."""
    from chalicelib.store import table
    from chalicelib.store.grant_store import family_key, jti_key

    monkeypatch.setattr(time, "sleep", lambda _: None)
    jti, sid = "jti-" + _id(), "fam-" + _id()
    calls = _unprocessed_batches(ddb, [jti_key(jti), family_key(sid)], rounds=10)
    try:
        with pytest.raises(BackendUnavailable):
            GrantStore(ddb, TABLE).is_revoked(jti, sid)
    finally:
        ddb.meta.events.unregister("before-call.dynamodb.BatchGetItem", unique_id="unproc")
    assert calls[0] == table.BATCH_TRIES == 3
