"""Admin commands for refresh-token grants (families): ``grants list`` and ``grants revoke``.

``grants list --username U [--json]``: the user's active grants — client, scope, created, last
used — from one query on gsi1 (``USERGRANTS#<username>``), never a scan.
``grants revoke --username U [--client ID]``: revokes those grants (all of the user's, or only
one client's). Revoking a family kills its refresh tokens at once and the access tokens carrying
its ``sid`` wherever revocation is checked (introspection; the authorizer when enabled); other
access tokens run out within their short lifetime.
"""

from __future__ import annotations

import argparse
import time

from chalicelib.core.records import Family
from chalicelib.ops.admin import _emit
from chalicelib.web import services


def _username(raw: str) -> str:
    from chalicelib.core.records import InvalidUsername, normalize_username
    from chalicelib.ops.admin import AdminError

    try:
        return normalize_username(raw)
    except InvalidUsername as exc:
        raise AdminError(str(exc)) from exc


def active_grants(username: str, client_id: str | None, now: int) -> list[Family]:
    """Families that can still refresh: not revoked, not past their absolute expiry."""
    families = services.grant_store().families_of(username, client_id)
    return [f for f in families if not f.revoked and now < f.expires]


def _known_or_error(username: str, client_id: str | None, found: list[Family]) -> None:
    """No grants for a user (or client) that does not exist is a typo, not "none": say so, like
    every other admin command. Read only when nothing was found (a deleted user's leftover
    grants are still listed and revocable)."""
    from chalicelib.ops.admin import AdminError

    if found:
        return
    if services.user_store().get(username) is None:
        raise AdminError(f"no such user: {username}")
    if client_id is not None and services.client_store().get(client_id) is None:
        raise AdminError(f"no such client: {client_id}")


def _view(f: Family) -> dict[str, object]:
    return {
        "family_id": f.family_id,
        "client_id": f.client_id,
        "scope": f.scope,
        "created": f.created,
        "last_used": f.last_used,
        "expires": f.expires,
    }


def _iso(epoch: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def _list(args: argparse.Namespace) -> None:
    name = _username(args.username)
    found = active_grants(name, args.client, int(services.clock().now()))
    _known_or_error(name, args.client, found)
    lines = [
        f"{f.client_id}  scope={f.scope!r}  created={_iso(f.created)}"
        f"  last_used={_iso(f.last_used)}  family={f.family_id}"
        for f in found
    ]
    _emit(args, [_view(f) for f in found], "\n".join(lines) or f"(no active grants for {name})")


def _revoke(args: argparse.Namespace) -> None:
    name = _username(args.username)
    now = int(services.clock().now())
    store = services.grant_store()
    found = active_grants(name, args.client, now)
    _known_or_error(name, args.client, found)
    revoked = [f.family_id for f in found if store.revoke_family(f.family_id, "admin", now)]
    text = f"revoked {len(revoked)} grant(s) of {name}" + (
        f" for client {args.client}" if args.client else ""
    )
    _emit(args, {"username": name, "client_id": args.client, "revoked": revoked}, text)


def register(areas: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    grants = areas.add_parser("grants", help="refresh-token grants (families)").add_subparsers(
        dest="action", required=True
    )
    p = grants.add_parser("list", help="a user's active grants")
    p.add_argument("--username", required=True)
    p.add_argument("--client", default=None, help="only this client's grants")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=_list)
    p = grants.add_parser("revoke", help="revoke a user's grants (all, or one client's)")
    p.add_argument("--username", required=True)
    p.add_argument("--client", default=None, help="only this client's grants")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=_revoke)
