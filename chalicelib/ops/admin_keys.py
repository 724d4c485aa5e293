"""Admin commands for the signing keys and the refresh-token pepper (chalicelib.ops.rotation).

``keys list``, ``keys rotate``, ``keys revoke KID``, ``pepper list``, ``pepper rotate``,
``pepper revoke ID``. ``rotate`` runs the same four steps as the rotation Lambda, in order, with a
fresh ClientRequestToken (there is no Lambda to invoke locally). Secret material is never printed.
"""

from __future__ import annotations

import argparse
import time

from chalicelib.core.config import settings
from chalicelib.ops.admin import AdminError, _emit
from chalicelib.ops.rotation import Rotator
from chalicelib.ops.rotation_kinds import key_kind, pepper_kind
from chalicelib.ops.rotation_plan import Entry, Plan, RotationError
from chalicelib.store import aws
from chalicelib.web import services


def key_rotator() -> Rotator:
    s = settings()
    return Rotator(
        aws.client("secretsmanager"),
        key_kind(s, s.signing_alg),
        s.signing_keys_secret,
        services.clock(),
        public_secret_id=s.public_keys_secret,
    )


def pepper_rotator() -> Rotator:
    s = settings()
    if not s.pepper_secret:
        raise AdminError("this stage has no pepper secret (TESSERA_PEPPER_SECRET)")
    return Rotator(aws.client("secretsmanager"), pepper_kind(s), s.pepper_secret, services.clock())


def _when(epoch: int | None) -> str:
    if epoch is None:
        return "-"
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def _row(e: Entry) -> dict[str, object]:
    row: dict[str, object] = {"id": e.id, "state": e.state, "created": e.created}
    if "alg" in e.body:
        row["alg"] = e.body["alg"]
    if e.published is not None:
        row["published"] = e.published
    if e.demoted is not None:
        row["demoted"] = e.demoted
    return row


def _line(e: Entry) -> str:
    alg = str(e.body.get("alg", "-"))
    demoted = f"  demoted {_when(e.demoted)}" if e.demoted is not None else ""
    return f"{e.id}  {alg:5}  {e.state:8}  created {_when(e.created)}{demoted}"


def _list(args: argparse.Namespace, rotator: Rotator) -> None:
    entries = rotator.current_entries()
    lines = [_line(e) for e in entries]
    _emit(args, [_row(e) for e in entries], "\n".join(lines) or "(empty set)")


def _plan_text(plan: Plan | None, entries: list[Entry]) -> str:
    current = next((e.id for e in entries if e.state == "current"), "-")
    if plan is None:
        return f"nothing to do; current: {current}"
    lines = [f"current: {current}"]
    if plan.promoted:
        lines.append(f"promoted: {plan.promoted}")
    if plan.ready_at is not None:
        lines.append(
            f"not promoted yet: next key is published long enough at {_when(plan.ready_at)}"
        )
    lines += [f"retired: {r}" for r in plan.retired]
    lines += [f"added: {a}" for a in plan.added]
    return "\n".join(lines)


def _rotate(args: argparse.Namespace, rotator: Rotator) -> None:
    try:
        plan = rotator.rotate_now()
        if getattr(args, "wait", False) and plan is not None and plan.ready_at is not None:
            # The next key is not published long enough to sign: wait for it, never skip it.
            time.sleep(max(0.0, plan.ready_at - services.clock().now()) + 1)
            plan = rotator.rotate_now()
    except RotationError as exc:
        raise AdminError(f"rotation failed: {exc}") from exc
    entries = rotator.current_entries()
    data = {
        "current": next((e.id for e in entries if e.state == "current"), None),
        "promoted": plan.promoted if plan else None,
        "retired": list(plan.retired) if plan else [],
        "added": list(plan.added) if plan else [],
        "ready_at": plan.ready_at if plan else None,
    }
    _emit(args, data, _plan_text(plan, entries))


def _revoke(args: argparse.Namespace, rotator: Rotator) -> None:
    try:
        entries = rotator.revoke(args.id)
    except RotationError as exc:
        raise AdminError(str(exc)) from exc
    current = next((e.id for e in entries if e.state == "current"), None)
    _emit(
        args,
        {"revoked": args.id, "current": current},
        f"revoked {args.id}; current: {current}\n"
        "tokens signed with it now fail (within the key cache interval, see README)",
    )


def register(areas: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    for area, rotator, what in (
        ("keys", key_rotator, "signing keys (JWKS)"),
        ("pepper", pepper_rotator, "refresh-token pepper"),
    ):
        sub = areas.add_parser(area, help=what).add_subparsers(dest="action", required=True)
        p = sub.add_parser("list", help="id, alg, state, created (never secret material)")
        p.add_argument("--json", action="store_true")
        p.set_defaults(run=lambda args, r=rotator: _list(args, r()))
        p = sub.add_parser("rotate", help="run one rotation now (the rotation function's steps)")
        p.add_argument("--json", action="store_true")
        if area == "keys":
            p.add_argument(
                "--wait",
                action="store_true",
                help="if the next key is too young to sign, wait until it may, then rotate",
            )
        p.set_defaults(run=lambda args, r=rotator: _rotate(args, r()))
        p = sub.add_parser("revoke", help="remove one entry at once (compromise)")
        p.add_argument("id")
        p.add_argument("--json", action="store_true")
        p.set_defaults(run=lambda args, r=rotator: _revoke(args, r()))
