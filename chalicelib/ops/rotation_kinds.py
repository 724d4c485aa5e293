"""The two kinds of rotated secret: signing keys (a private and a public set) and the
refresh-token pepper. Each says how its set is parsed, written, created and checked before a
write; the plan (``chalicelib.ops.rotation_plan``) is the same for both."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from chalicelib.ops.rotation_plan import Entry, RotationError, Timing
from chalicelib.tokens import key_objects
from chalicelib.tokens.keys import KeySetError, new_kid, parse_key_set

if TYPE_CHECKING:
    from chalicelib.core.config import Settings

# What testSecret signs to match a key pair.
_PROBE: dict[str, object] = {"probe": "rotation testSecret"}

# --- the two kinds of secret --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Kind:
    """What differs between the signing-key set and the pepper set."""

    name: str
    parse: Callable[[str], list[Entry]]
    dump: Callable[[list[Entry]], str]
    make: Callable[[str, int], Entry]
    check: Callable[[list[Entry], dict[str, Entry]], None]
    timing: Timing
    dump_public: Callable[[list[Entry]], str] | None = None  # keys only
    staged: bool = True  # uses the ``next`` state (keys); the pepper does not


def parse_keys(raw: str) -> list[Entry]:
    """A key set (private or public) through the token API's own parser: what the rotation reads
    is exactly what the token API and the authorizer accept."""
    return [
        Entry(e.kid, e.state, e.created, e.jwk, e.published, e.demoted) for e in parse_key_set(raw)
    ]


def dump_private_keys(entries: list[Entry]) -> str:
    """Same shape as ``chalicelib.tokens.keys.dump_key_set`` (stamps live in the public set
    only)."""
    return json.dumps(
        {"keys": [{"state": e.state, "created": e.created, "jwk": e.body} for e in entries]},
        sort_keys=True,
    )


def dump_public_keys(entries: list[Entry]) -> str:
    items = []
    for e in entries:
        jwk = e.body if "d" not in e.body else _public_jwk(e.body)
        items.append(_stamped({"state": e.state, "created": e.created, "jwk": jwk}, e))
    return json.dumps({"keys": items}, sort_keys=True)


def _stamped(item: dict[str, object], e: Entry) -> dict[str, object]:
    """A set's item with the entry's stamps, where it has them."""
    if e.published is not None:
        item["published"] = e.published
    if e.demoted is not None:
        item["demoted"] = e.demoted
    return item


def _public_jwk(private_jwk: Mapping[str, object]) -> dict[str, str]:
    return key_objects.load_signing_key(private_jwk).verifying_key().public_jwk()


def _make_key(alg: str) -> Callable[[str, int], Entry]:
    def make(state: str, now: int) -> Entry:
        kid = new_kid(now)
        return Entry(kid, state, now, key_objects.generate_private_jwk(kid, alg))

    return make


def _check_keys(pending: list[Entry], published: dict[str, Entry]) -> None:
    """Each pending key loads, signs, and verifies with the public key verifiers were given."""
    for e in pending:
        try:
            signer = key_objects.load_signing_key(e.body)
            pub = published.get(e.id)
            if pub is None:
                raise RotationError(f"key {e.id} is not in the public set")
            verifier = key_objects.load_verifying_key(pub.body)
            if not verifier.verifies(signer.sign(_PROBE, "JWT")):
                raise RotationError(f"public key {e.id} does not match its private key")
        except key_objects.InvalidKey as exc:
            raise RotationError(f"key {e.id} does not load") from exc


def parse_peppers(raw: str) -> list[Entry]:
    """The pepper set through the refresh-token code's own parser (``parse_pepper_set``)."""
    from chalicelib.tokens.peppers import encode_secret, parse_pepper_set

    return [
        Entry(p.id, p.state, p.created, {"secret": encode_secret(p.secret)}, p.published, p.demoted)
        for p in parse_pepper_set(raw)
    ]


def dump_peppers(entries: list[Entry]) -> str:
    items = [
        _stamped(
            {"id": e.id, "secret": e.body["secret"], "state": e.state, "created": e.created}, e
        )
        for e in entries
    ]
    return json.dumps({"peppers": items}, sort_keys=True)


def _make_pepper(state: str, now: int) -> Entry:
    from chalicelib.tokens.peppers import PEPPER_BYTES, encode_secret

    secret = encode_secret(secrets.token_bytes(PEPPER_BYTES))
    return Entry(secrets.token_hex(4), state, now, {"secret": secret})


def _check_peppers(pending: list[Entry], published: dict[str, Entry]) -> None:
    """The refresh-token code (chalicelib.tokens.peppers) accepts the set exactly as written."""
    from chalicelib.tokens.peppers import parse_pepper_set

    try:
        parse_pepper_set(dump_peppers(pending))
    except KeySetError as exc:
        raise RotationError("the pending pepper set would not load") from exc


def key_kind(s: Settings, alg: str = "ES256") -> Kind:
    return Kind(
        name="signing keys",
        parse=parse_keys,
        dump=dump_private_keys,
        make=_make_key(alg),
        check=_check_keys,
        timing=Timing.for_keys(s),
        dump_public=dump_public_keys,
    )


def pepper_kind(s: Settings) -> Kind:
    return Kind(
        name="pepper",
        parse=parse_peppers,
        dump=dump_peppers,
        make=_make_pepper,
        check=_check_peppers,
        timing=Timing.for_peppers(s),
        staged=False,
    )
