"""Brute-force protection for password logins (RFC 6749 §4.3.2, RFC 9700 §2.4).

Every limit that failed sign-ins can fill is keyed by what the one signing in controls: the
username it types and the source it sends from. Nothing is shared by a whole client or page, so no
stranger can lock out the users of an app. Four DynamoDB items per attempt, all read at once:

- ``LOGIN#user#<h>``/``LOGIN#from#<source>``: *this username from this source*. From
  ``threshold`` failures on, the next attempt waits ``base_seconds`` after the last failure,
  doubling with every further failure, at most ``max_seconds``. Stops one source guessing.
- ``LOGIN#user#<h>``/``LOGIN``: *this username from anywhere*, the same growing wait from
  ``USERNAME_FACTOR`` x ``threshold`` failures on. Bounds guessing one account from many sources.
- ``LOGIN#ip#<source>``/``LOGIN``: *this source, any username*: ``SOURCE_FACTOR`` x ``threshold``
  failures in a fixed window of ``max_seconds``, then refused until the window ends. Slows spraying.
- ``LOGIN#user#<h>``/``KNOWN#<source>``: the user signed in here within ``KNOWN_FOR``. The two
  wider limits do not apply to a known source (the first one does): a stranger elsewhere, or
  spraying behind the same NAT, cannot keep a user out of where she usually signs in.

``<h>`` is a SHA-256 of the normalized username (people type passwords into that field); the
source is the address, an IPv6 one cut to its /64 (one host usually holds a whole /64). Failures
of a username are forgotten 24 h after the last one; a success clears both username counters.

Answers: an attempt that must wait gets the wrong-password ``invalid_grant`` after the same work
(the Argon2id check on the dummy hash, the same writes), so "waiting" cannot be told from "wrong
password", for known and unknown usernames alike; the correct password waits too. 429 is not used
on purpose: it would say that a username is being attacked, and with unknown ones that it exists.
Attempts refused while waiting are counted as ``refused`` and extend nothing.

Round trips: ``check`` is one ``BatchGetItem`` (the user and the four items) and returns the user
it read; a failure is one ``UpdateItem`` per counter; a success is one ``TransactWriteItems``
that clears the counters only if no failure was counted since ``check`` read them (else the
correct password is refused too: a burst of parallel guesses cannot slip one through).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from chalicelib.core.errors import InvalidGrant
from chalicelib.core.faults import BackendUnavailable
from chalicelib.oauth.login import Attempt
from chalicelib.store import aws, table
from chalicelib.store.fields import number
from chalicelib.store.users import user_from_item, user_key
from chalicelib.tokens import passwords

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import DeleteTypeDef, TransactWriteItemTypeDef

BAD_CREDENTIALS = "invalid username or password"  # the text of chalicelib.oauth.login
SK = "LOGIN"
USER_MEMORY = 24 * 3600  # failures of a username are forgotten this long after the last one
USERNAME_FACTOR = 4  # username-wide threshold = USERNAME_FACTOR x lockout_threshold failures
SOURCE_FACTOR = 10  # per-source limit = SOURCE_FACTOR x lockout_threshold failures per window
KNOWN_FOR = 30 * 24 * 3600  # a source stays known this long after the user's last sign-in there
KNOWN_REFRESH = 24 * 3600  # ...and the mark is renewed at most once a day
_BATCH_TRIES = 3
_TRANSACT_TRIES = 3


def user_pk(username: str) -> str:
    """The username's items, keyed by a hash: people type passwords into the username field,
    and a counter is kept for every name tried, so the name itself is never stored."""
    return "LOGIN#user#" + hashlib.sha256(username.encode("utf-8")).hexdigest()


def source_pk(source: str) -> str:
    return f"LOGIN#ip#{source}"


def pair_sk(source: str | None) -> str:
    return f"LOGIN#from#{source or '-'}"


def known_sk(source: str) -> str:
    return f"KNOWN#{source}"


def source_of(ip: str | None) -> str | None:
    """What the per-source limits count by: the address, or the /64 of an IPv6 address (a host
    usually holds the whole /64, so counting single addresses would not limit it at all)."""
    if not ip:
        return None
    import ipaddress

    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return ip[:64]  # API Gateway's own placeholders, e.g. in console test invocations
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:
            return str(addr.ipv4_mapped)
        return str(ipaddress.IPv6Network((addr, 64), strict=False))
    return str(addr)


def subject_hint(username: str) -> str:
    """What logs say instead of a username (people type passwords into the username field)."""
    return hashlib.sha256(username.encode("utf-8")).hexdigest()[:12]


class Policy(NamedTuple):
    threshold: int
    base_seconds: int
    max_seconds: int

    @property
    def username_threshold(self) -> int:
        return self.threshold * USERNAME_FACTOR

    @property
    def source_limit(self) -> int:
        return self.threshold * SOURCE_FACTOR

    def wait_seconds(self, failures: int, threshold: int) -> int:
        """How long attempts wait after the ``failures``-th failure of a counter whose waits
        start at ``threshold`` (0: no wait)."""
        if failures < threshold:
            return 0
        doublings = min(failures - threshold, 32)
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
            number(v, "failures", 0), number(v, "last_failure", 0), number(v, table.TTL, 0)
        )
        return counter if counter.expires > now else cls()

    def waits(self, policy: Policy, threshold: int, now: int) -> bool:
        seconds = policy.wait_seconds(self.failures, threshold)
        return bool(seconds) and self.last_failure + seconds > now


@dataclass(frozen=True)
class GuardedAttempt(Attempt):
    """An attempt let through by ``LoginGuard.check``, with the counters it read (the condition
    of ``succeeded``'s reset) and whether the user is known at its source."""

    source: str | None = None
    pair_failures: int = 0
    username_failures: int = 0
    known_until: int = 0


class LoginGuard:
    """Implements the ``LoginGuard`` protocol of chalicelib.oauth.login."""

    def __init__(self, ddb: DynamoDBClient, table_name: str, policy: Policy) -> None:
        self._ddb = ddb
        self._table = table_name
        self._policy = policy

    # -- the protocol --------------------------------------------------------------------

    def check(self, username: str, client_id: str, source_ip: str | None, now: int) -> Attempt:
        """Read the user and the counters in one round trip; refuse (after the same work as a
        wrong password) while this attempt must wait."""
        source = source_of(source_ip)
        items = self._batch_get(self._keys(username, source))
        upk = user_pk(username)
        user_item = items.get(_ref(user_key(username)))
        pair = Counter.from_item(items.get((upk, pair_sk(source))), now)
        wide = Counter.from_item(items.get((upk, SK)), now)
        known_until = 0
        if source is not None:
            known_until = Counter.from_item(items.get((upk, known_sk(source))), now).expires
        known = known_until > now
        reason = ""
        policy = self._policy
        if pair.waits(policy, policy.threshold, now):
            reason = "locked"
        elif not known and wide.waits(policy, policy.username_threshold, now):
            reason = "username_locked"
        elif not known and source is not None:
            spraying = Counter.from_item(items.get((source_pk(source), SK)), now)
            if spraying.failures >= policy.source_limit:
                reason = "rate_limited"
        if reason:
            passwords.verify_password("", None)  # the same time as a wrong password
            self._record(username, source, now, failure=False)
            from chalicelib.core import audit, telemetry

            audit.event(
                "login_refused", user=subject_hint(username), client_id=client_id, reason=reason
            )
            telemetry.count("Lockouts")
            raise InvalidGrant(BAD_CREDENTIALS)
        return GuardedAttempt(
            username=username,
            client_id=client_id,
            source_ip=source_ip,
            user=user_from_item(user_item) if user_item and username else None,
            source=source,
            pair_failures=pair.failures,
            username_failures=wide.failures,
            known_until=known_until,
        )

    def failed(self, attempt: Attempt, now: int) -> None:
        source = source_of(attempt.source_ip)
        wide, pair = self._record(attempt.username, source, now, failure=True)
        policy = self._policy
        for kind, failures, threshold in (
            ("username_at_source", pair, policy.threshold),
            ("username", wide, policy.username_threshold),
        ):
            seconds = policy.wait_seconds(failures, threshold)
            if seconds:
                from chalicelib.core import audit

                audit.event(
                    "lockout",
                    user=subject_hint(attempt.username),
                    client_id=attempt.client_id,
                    kind=kind,
                    failures=failures,
                    locked_seconds=seconds,
                )

    def succeeded(self, attempt: Attempt, now: int) -> None:
        """Clear the username's counters and mark its source known, unless a failure was counted
        since ``check`` read them (a concurrent guess, possibly one that started a wait): then
        refuse this login too."""
        if not isinstance(attempt, GuardedAttempt):
            raise InvalidGrant(BAD_CREDENTIALS)  # not from our check (a caller bug): fail closed
        upk = user_pk(attempt.username)
        items: list[TransactWriteItemTypeDef] = [
            {"Delete": self._unchanged_since_check(upk, pair_sk(attempt.source), attempt, now)},
            {"Delete": self._unchanged_since_check(upk, SK, attempt, now)},
        ]
        if attempt.source is not None and attempt.known_until < now + KNOWN_FOR - KNOWN_REFRESH:
            mark = table.key(upk, known_sk(attempt.source))
            mark[table.TTL] = table.to_attr(now + KNOWN_FOR)
            items.append({"Put": {"TableName": self._table, "Item": mark}})
        for _ in range(_TRANSACT_TRIES):
            with aws.translate_faults("dynamodb"):
                try:
                    self._ddb.transact_write_items(TransactItems=items)
                    return
                except self._ddb.exceptions.TransactionCanceledException as exc:
                    reasons = exc.response.get("CancellationReasons") or []
                    codes = {str(r.get("Code", "None")) for r in reasons}
            if "ConditionalCheckFailed" in codes:
                raise InvalidGrant(BAD_CREDENTIALS)
            if not codes <= {"None", "TransactionConflict"}:
                raise BackendUnavailable("dynamodb", sorted(codes - {"None"})[0])
        raise BackendUnavailable("dynamodb", "TransactionConflict")

    # -- admin -----------------------------------------------------------------------------

    def unlock(self, username: str) -> bool:
        """Forget a username's failures from every source (admin ``user unlock``). True if
        there were any. The sources where the user is known stay known."""
        upk = user_pk(username)
        found = False
        start: dict[str, Any] | None = None
        while True:
            params: dict[str, Any] = {
                "TableName": self._table,
                "KeyConditionExpression": "pk = :pk AND begins_with(sk, :login)",
                "ExpressionAttributeValues": {":pk": {"S": upk}, ":login": {"S": SK}},
                "ProjectionExpression": "pk, sk",
                "ConsistentRead": True,
            }
            if start:
                params["ExclusiveStartKey"] = start
            with aws.translate_faults("dynamodb"):
                resp = self._ddb.query(**params)
                for item in resp.get("Items", []):
                    found = True
                    self._ddb.delete_item(TableName=self._table, Key=item)
            start = resp.get("LastEvaluatedKey")
            if not start:
                break
        from chalicelib.core import audit

        audit.event("user_unlocked", user=subject_hint(username))
        return found

    # -- internals -------------------------------------------------------------------------

    def _keys(self, username: str, source: str | None) -> list[table.Item]:
        upk = user_pk(username)
        keys = [user_key(username), table.key(upk, SK), table.key(upk, pair_sk(source))]
        if source is not None:
            keys += [table.key(upk, known_sk(source)), table.key(source_pk(source), SK)]
        return keys

    def _unchanged_since_check(
        self, pk: str, sk: str, attempt: GuardedAttempt, now: int
    ) -> DeleteTypeDef:
        """Delete one of the username's counters if it counts the failures ``check`` saw (an
        item past its ttl counted zero; refused attempts do not count)."""
        seen = attempt.pair_failures if sk != SK else attempt.username_failures
        return {
            "TableName": self._table,
            "Key": table.key(pk, sk),
            "ConditionExpression": (
                "attribute_not_exists(failures) OR failures = :seen OR #ttl <= :now"
            ),
            "ExpressionAttributeNames": {"#ttl": table.TTL},
            "ExpressionAttributeValues": {
                ":seen": table.to_attr(seen),
                ":now": table.to_attr(now),
            },
        }

    def _batch_get(self, keys: list[table.Item]) -> dict[tuple[str, str], table.Item]:
        """Items by (pk, sk). BatchGetItem answers throttling with UnprocessedKeys, not an error:
        retry those a few times, then it is a fault like any other."""
        found: dict[tuple[str, str], table.Item] = {}
        pending: dict[str, Any] = {self._table: {"Keys": keys, "ConsistentRead": True}}
        for attempt in range(_BATCH_TRIES):
            with aws.translate_faults("dynamodb"):
                resp = self._ddb.batch_get_item(RequestItems=pending)
            for item in resp.get("Responses", {}).get(self._table, []):
                found[_ref(item)] = item
            pending = resp.get("UnprocessedKeys") or {}
            if not pending:
                return found
            time.sleep(0.05 * (2**attempt))
        raise BackendUnavailable("dynamodb", "UnprocessedKeys")

    def _record(
        self, username: str, source: str | None, now: int, *, failure: bool
    ) -> tuple[int, int]:
        """Count a failure (or a refused attempt) on every counter. The username's two counts
        must be stored (else 503); the source's is best effort: the answer to this attempt does
        not depend on it. Returns the username-wide and the per-source failures."""
        upk = user_pk(username)
        memory = now + USER_MEMORY
        wide = self._bump(upk, SK, now, memory, failure, sliding=True)
        pair = self._bump(upk, pair_sk(source), now, memory, failure, sliding=True)
        if source is not None:
            try:
                self._bump(source_pk(source), SK, now, now + self._policy.max_seconds, failure)
            except BackendUnavailable:
                import logging

                logging.getLogger("tessera.login_guard").warning(
                    "login counter not stored", extra={"counter": "source"}
                )
        return wide, pair

    def _bump(
        self, pk: str, sk: str, now: int, expires: int, failure: bool, *, sliding: bool = False
    ) -> int:
        """ADD 1 to ``failures`` (or ``refused``); a counter past its ttl starts again at 1.
        Only a failure slides a sliding counter's ttl: refused attempts extend nothing."""
        field = "failures" if failure else "refused"
        sets = ["#ttl = :exp" if sliding and failure else "#ttl = if_not_exists(#ttl, :exp)"]
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
                            Key=table.key(pk, sk),
                            ExpressionAttributeNames={"#ttl": table.TTL},
                            ExpressionAttributeValues=values,
                            ReturnValues="ALL_NEW",
                            UpdateExpression=form["UpdateExpression"],
                            ConditionExpression=form["ConditionExpression"],
                        )
                    except self._ddb.exceptions.ConditionalCheckFailedException:
                        continue
                return number(table.from_item(resp["Attributes"]), "failures", 0)
        raise BackendUnavailable("dynamodb", "login counter contention")


def _ref(item: table.Item) -> tuple[str, str]:
    return item[table.PK]["S"], item[table.SK]["S"]


def policy_from(settings: Any) -> Policy:
    return Policy(
        threshold=max(1, int(settings.lockout_threshold)),
        base_seconds=max(1, int(settings.lockout_base_seconds)),
        max_seconds=max(1, int(settings.lockout_max_seconds)),
    )
