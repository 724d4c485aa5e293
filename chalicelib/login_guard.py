"""Brute-force protection for password logins (RFC 6749 §4.3.2, RFC 9700 §2.4).

Three counters, each one DynamoDB item updated with atomic ``ADD`` (no lost updates under
concurrency) and a ``ttl`` that code compares itself (TTL deletion lags):

- ``LOGIN#user#<sha256(username)>`` — *lockout*. Failures since the last successful login,
  forgotten 24 h after the last failure. From ``lockout_threshold`` failures on, the username is
  locked for ``lockout_base_seconds`` after the last failure, doubling with every further failure,
  at most ``lockout_max_seconds``. Kept for unknown usernames too: lockout looks the same for them.
- ``LOGIN#client#<client_id>`` and ``LOGIN#ip#<source ip>`` — *rate limits*. Failures in a fixed
  window of ``lockout_max_seconds``; over the limit, password logins through that client / from
  that address are refused until the window ends. The limits are much higher than the username
  threshold (``IP_FACTOR``, ``CLIENT_FACTOR``): many honest users share an address (NAT) or a
  client, so these only slow down password spraying, and they never lock an account elsewhere.
  A success does not reset them (an attacker owning one account could otherwise reset them).

Answers: a locked or rate-limited attempt gets the same ``invalid_grant`` and description as a wrong
password and costs the same work (the Argon2id check on the dummy hash, the same number of writes),
so "locked" cannot be told from "wrong password" (and the correct password is refused while locked).
429 is not used on purpose: it would reveal that a username is locked, i.e. that someone is
attacking it, and with unknown usernames that it exists. Attempts refused while locked are recorded
(``refused``) but do not extend the lock: a user retrying the right password is not punished.

Round trips: one ``BatchGetItem`` reads the user and the counters (``check``; the token endpoint's
``users.get`` is then served from that read by ``users()``), one conditional ``DeleteItem`` on
success (which also closes the race with concurrent failures), one ``UpdateItem`` per counter on
failure. A password login with refresh token costs three AWS calls in total.
"""

from __future__ import annotations

import hashlib
import threading
import time
from typing import TYPE_CHECKING, Any, NamedTuple

from chalicelib import aws, passwords, table
from chalicelib.errors import InvalidGrant
from chalicelib.faults import BackendUnavailable
from chalicelib.users import User, UserStore, user_from_item, user_key

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

BAD_CREDENTIALS = "invalid username or password"  # the text of chalicelib.token_endpoint / login
SK = "LOGIN"
USER_MEMORY = 24 * 3600  # failures of a username are forgotten this long after the last one
IP_FACTOR = 10  # per-address limit = IP_FACTOR x lockout_threshold failures per window
CLIENT_FACTOR = 100  # per-client limit = CLIENT_FACTOR x lockout_threshold failures per window
_BATCH_TRIES = 3


def user_pk(username: str) -> str:
    """The username's counter, keyed by a hash: people type passwords into the username field,
    and a counter is kept for every name tried, so the name itself is never stored."""
    return "LOGIN#user#" + hashlib.sha256(username.encode("utf-8")).hexdigest()


def client_pk(client_id: str) -> str:
    return f"LOGIN#client#{client_id}"


def ip_pk(ip: str) -> str:
    return f"LOGIN#ip#{ip}"


def subject_hint(username: str) -> str:
    """What logs say instead of a username (people type passwords into the username field)."""
    return hashlib.sha256(username.encode("utf-8")).hexdigest()[:12]


class Policy(NamedTuple):
    threshold: int
    base_seconds: int
    max_seconds: int

    @property
    def ip_limit(self) -> int:
        return self.threshold * IP_FACTOR

    @property
    def client_limit(self) -> int:
        return self.threshold * CLIENT_FACTOR

    def lock_seconds(self, failures: int) -> int:
        """How long a username stays locked after its ``failures``-th failure (0: not locked)."""
        if failures < self.threshold:
            return 0
        doublings = min(failures - self.threshold, 32)
        return int(min(self.max_seconds, self.base_seconds * (2**doublings)))


class Counter(NamedTuple):
    failures: int = 0
    last_failure: int = 0
    expires: int = 0  # the item's ttl; a counter past it counts as zero

    @classmethod
    def from_item(cls, item: table.Item | None, now: int) -> Counter:
        if not item:
            return cls()
        v = table.from_item(item)
        counter = cls(
            int(v.get("failures", 0)), int(v.get("last_failure", 0)), int(v.get(table.TTL, 0))
        )
        return counter if counter.expires > now else cls()


class Seen(NamedTuple):
    """What ``check`` read, kept for the ``users()`` view and ``succeeded``'s conditional reset."""

    username: str
    user: User | None
    user_failures: int
    user_item_exists: bool


class LoginGuard:
    """Implements the ``LoginGuard`` protocol of chalicelib.token_endpoint / chalicelib.login."""

    def __init__(
        self, ddb: DynamoDBClient, table_name: str, policy: Policy, users: UserStore
    ) -> None:
        self._ddb = ddb
        self._table = table_name
        self._policy = policy
        self._users = users
        self._local = threading.local()

    # -- the protocol --------------------------------------------------------------------

    def check(self, username: str, client_id: str, source_ip: str | None, now: int) -> None:
        """Read the user and the counters in one round trip; refuse (after the same work as a
        wrong password) while the username is locked or the client/address is over its limit."""
        self._local.seen = None
        items = self._batch_get(self._keys(username, client_id, source_ip))
        counter_item = items.get(user_pk(username))
        user_counter = Counter.from_item(counter_item, now)
        user_item = items.get(user_key(username)[table.PK]["S"])
        user = user_from_item(user_item) if user_item else None
        self._local.seen = Seen(username, user, user_counter.failures, user_counter.expires > now)
        locked = self._locked_user(user_counter, now)
        limited = Counter.from_item(items.get(client_pk(client_id)), now).failures >= (
            self._policy.client_limit
        )
        if source_ip:
            ip_failures = Counter.from_item(items.get(ip_pk(source_ip)), now).failures
            limited = limited or ip_failures >= self._policy.ip_limit
        if locked or limited:
            self._local.seen = None
            passwords.verify_password("", None)  # the same time as a wrong password
            self._record(username, client_id, source_ip, now, failure=False)
            from chalicelib import audit

            audit.event(
                "login_refused",
                user=subject_hint(username),
                client_id=client_id,
                reason="locked" if locked else "rate_limited",
            )
            raise InvalidGrant(BAD_CREDENTIALS)

    def failed(self, username: str, client_id: str, source_ip: str | None, now: int) -> None:
        self._local.seen = None
        failures = self._record(username, client_id, source_ip, now, failure=True)
        seconds = self._policy.lock_seconds(failures)
        if seconds:
            from chalicelib import audit

            audit.event(
                "lockout",
                user=subject_hint(username),
                client_id=client_id,
                failures=failures,
                locked_seconds=seconds,
            )

    def succeeded(self, username: str, client_id: str, source_ip: str | None, now: int) -> None:
        """Reset the username's counter, unless a failure was counted since ``check`` read it
        (a concurrent guess, possibly one that locked the account): then refuse this login too."""
        seen: Seen | None = getattr(self._local, "seen", None)
        self._local.seen = None
        if seen is None or seen.username != username:
            # Not preceded by our check (a caller bug): fail closed.
            raise InvalidGrant(BAD_CREDENTIALS)
        if seen.user_item_exists:
            condition = "failures = :seen"
            values: dict[str, Any] = {":seen": table.to_attr(seen.user_failures)}
            if seen.user_failures == 0:
                condition = "attribute_not_exists(failures) OR failures = :seen"
        else:
            condition = "attribute_not_exists(pk) OR #ttl <= :now"
            values = {":now": table.to_attr(now)}
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "Key": table.key(user_pk(username), SK),
            "ConditionExpression": condition,
            "ExpressionAttributeValues": values,
        }
        if "#ttl" in condition:
            kwargs["ExpressionAttributeNames"] = {"#ttl": table.TTL}
        with aws.translate_faults("dynamodb"):
            try:
                self._ddb.delete_item(**kwargs)
            except self._ddb.exceptions.ConditionalCheckFailedException as exc:
                raise InvalidGrant(BAD_CREDENTIALS) from exc

    def users(self) -> PrefetchedUsers:
        """A user store whose ``get`` returns what ``check`` read (no second round trip)."""
        return PrefetchedUsers(self, self._users)

    def take_prefetched(self, username: str) -> tuple[bool, User | None]:
        seen: Seen | None = getattr(self._local, "seen", None)
        if seen is not None and seen.username == username:
            return True, seen.user
        return False, None

    # -- admin -----------------------------------------------------------------------------

    def unlock(self, username: str) -> bool:
        """Forget a username's failures (admin ``user unlock``). True if there were any."""
        with aws.translate_faults("dynamodb"):
            resp = self._ddb.delete_item(
                TableName=self._table,
                Key=table.key(user_pk(username), SK),
                ReturnValues="ALL_OLD",
            )
        from chalicelib import audit

        audit.event("user_unlocked", user=subject_hint(username))
        return "Attributes" in resp

    def status(self, username: str, now: int) -> dict[str, int]:
        with aws.translate_faults("dynamodb"):
            resp = self._ddb.get_item(
                TableName=self._table, Key=table.key(user_pk(username), SK), ConsistentRead=True
            )
        counter = Counter.from_item(resp.get("Item"), now)
        until = self._lock_until(counter)
        return {"failures": counter.failures, "locked_until": until if until > now else 0}

    # -- internals -------------------------------------------------------------------------

    def _lock_until(self, counter: Counter) -> int:
        seconds = self._policy.lock_seconds(counter.failures)
        return counter.last_failure + seconds if seconds else 0

    def _locked_user(self, counter: Counter, now: int) -> bool:
        return self._lock_until(counter) > now

    def _keys(self, username: str, client_id: str, source_ip: str | None) -> list[table.Item]:
        keys = [
            user_key(username),
            table.key(user_pk(username), SK),
            table.key(client_pk(client_id), SK),
        ]
        if source_ip:
            keys.append(table.key(ip_pk(source_ip), SK))
        return keys

    def _batch_get(self, keys: list[table.Item]) -> dict[str, table.Item]:
        """Items by pk. BatchGetItem answers throttling with UnprocessedKeys, not an error:
        retry those a few times, then it is a fault like any other."""
        found: dict[str, table.Item] = {}
        pending: dict[str, Any] = {self._table: {"Keys": keys, "ConsistentRead": True}}
        for attempt in range(_BATCH_TRIES):
            with aws.translate_faults("dynamodb"):
                resp = self._ddb.batch_get_item(RequestItems=pending)
            for item in resp.get("Responses", {}).get(self._table, []):
                found[item[table.PK]["S"]] = item
            pending = resp.get("UnprocessedKeys") or {}
            if not pending:
                return found
            time.sleep(0.05 * (2**attempt))
        raise BackendUnavailable("dynamodb", "UnprocessedKeys")

    def _record(
        self, username: str, client_id: str, source_ip: str | None, now: int, *, failure: bool
    ) -> int:
        """Count a failure (or a refused attempt) on every counter; the username's count first,
        and it must be stored (else 503). The client and address counts are best effort: the
        answer to this attempt does not depend on them. Returns the username's failures."""
        failures = self._bump(user_pk(username), now, now + USER_MEMORY, failure, sliding=True)
        window_end = now + self._policy.max_seconds
        extra = [client_pk(client_id)] + ([ip_pk(source_ip)] if source_ip else [])
        for pk in extra:
            try:
                self._bump(pk, now, window_end, failure, sliding=False)
            except BackendUnavailable:
                import logging

                logging.getLogger("tessera.login_guard").warning(
                    "login counter not stored", extra={"counter": pk.split("#")[1]}
                )
        return failures

    def _bump(self, pk: str, now: int, expires: int, failure: bool, *, sliding: bool) -> int:
        """ADD 1 to ``failures`` (or ``refused``); a counter past its ttl starts again at 1."""
        field = "failures" if failure else "refused"
        sets = ["#ttl = :exp" if sliding else "#ttl = if_not_exists(#ttl, :exp)"]
        if failure:
            sets.append("last_failure = :now")
        live = {
            "UpdateExpression": f"ADD {field} :one SET " + ", ".join(sets),
            "ConditionExpression": "attribute_not_exists(pk) OR #ttl > :now",
        }
        restart_sets = ["#ttl = :exp", f"{field} = :one"]
        restart_sets += ["last_failure = :now"] if failure else []
        restart = {
            "UpdateExpression": "SET "
            + ", ".join(restart_sets)
            + (" REMOVE refused" if failure else " REMOVE failures, last_failure"),
            "ConditionExpression": "#ttl <= :now",
        }
        values = {
            ":one": table.to_attr(1),
            ":now": table.to_attr(now),
            ":exp": table.to_attr(expires),
        }
        for _ in range(3):
            for form in (live, restart):
                with aws.translate_faults("dynamodb"):
                    try:
                        resp = self._ddb.update_item(
                            TableName=self._table,
                            Key=table.key(pk, SK),
                            ExpressionAttributeNames={"#ttl": table.TTL},
                            ExpressionAttributeValues=values,
                            ReturnValues="ALL_NEW",
                            UpdateExpression=form["UpdateExpression"],
                            ConditionExpression=form["ConditionExpression"],
                        )
                    except self._ddb.exceptions.ConditionalCheckFailedException:
                        continue
                return int(table.from_item(resp["Attributes"]).get("failures", 0))
        raise BackendUnavailable("dynamodb", "login counter contention")


class PrefetchedUsers:
    """The user store as the token endpoint sees it, behind the guard: ``get`` right after
    ``check`` costs no round trip; everything else goes to the real store."""

    def __init__(self, guard: LoginGuard, store: UserStore) -> None:
        self._guard = guard
        self._store = store

    def get(self, username: str) -> User | None:
        hit, user = self._guard.take_prefetched(username)
        return user if hit else self._store.get(username)

    def set_password_hash(self, username: str, phc: str) -> bool:
        return self._store.set_password_hash(username, phc)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


def policy_from(settings: Any) -> Policy:
    return Policy(
        threshold=max(1, int(settings.lockout_threshold)),
        base_seconds=max(1, int(settings.lockout_base_seconds)),
        max_seconds=max(1, int(settings.lockout_max_seconds)),
    )
