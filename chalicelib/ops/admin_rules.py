"""Admin commands for the route rules of the APIs that attach the authorizer
(chalicelib.core.api_rules).

    authorizer rules put NAME --api API_ID/STAGE [--api ...] --route "GET /orders orders:read" ...
    authorizer rules put NAME --api API_ID/STAGE --file rules.json   # {"routes": [...], ...}
    authorizer rules show [NAME]      # one rule set, or every one
    authorizer rules delete NAME

``put`` replaces the whole rule set NAME; ``--api``, ``--route``, ``--cache`` and ``--response``
replace the file's members of the same name. An API (``<api-id>/<stage>``) belongs to one rule set
at most. Warm authorizers see a change within ``TESSERA_RULES_CACHE_TTL`` (60 s), plus the API's
own authorizer cache TTL for tokens it has already answered.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Mapping
from pathlib import Path

from chalicelib.core import api_rules
from chalicelib.core.api_rules import RulesError, RuleSet
from chalicelib.ops.admin import AdminError, _emit
from chalicelib.store.api_rules_store import RulesStore
from chalicelib.web import services


def put_rules(
    store: RulesStore, doc: Mapping[str, object], name: str, now: int | None = None
) -> RuleSet:
    """Validate and store a rule set (also used by tests and the local stack's seed)."""
    try:
        rule_set = api_rules.parse_rule_set(doc, name=name)
    except RulesError as exc:
        raise AdminError(str(exc)) from exc
    for other in store.documents():
        if other.get("name") == name:
            continue
        apis = other.get("apis")
        taken = set(rule_set.apis) & set(apis if isinstance(apis, list) else ())
        if taken:
            raise AdminError(
                f"API {sorted(taken)[0]} is already attached to rule set {other.get('name')}"
            )
    store.put(rule_set, int(now if now is not None else time.time()))
    return rule_set


def _document(args: argparse.Namespace) -> dict[str, object]:
    doc: dict[str, object] = {}
    if args.file:
        try:
            loaded = json.loads(Path(args.file).read_text())
        except (OSError, ValueError) as exc:
            raise AdminError(f"cannot read {args.file}: {exc}") from exc
        if not isinstance(loaded, dict):
            raise AdminError(f"{args.file}: a JSON object is expected")
        doc.update(loaded)
    if args.api:
        doc["apis"] = args.api
    if args.route:
        doc["routes"] = args.route
    for member in ("cache", "response"):
        if getattr(args, member):
            doc[member] = getattr(args, member)
    return doc


def _text(rule_set: RuleSet) -> str:
    lines = [
        f"name:     {rule_set.name}",
        f"apis:     {', '.join(rule_set.apis)}",
        f"cache:    {rule_set.cache}",
        f"response: {rule_set.response}",
        "routes:",
    ]
    width = max(len(r.describe()) for r in rule_set.rules)
    lines += [f"  {r.describe():{width}}  {r.scope}" for r in rule_set.rules]
    return "\n".join(lines)


def _put(args: argparse.Namespace) -> None:
    rule_set = put_rules(services.api_rules_store(), _document(args), args.name)
    _emit(args, api_rules.to_document(rule_set), _text(rule_set))


def _show(args: argparse.Namespace) -> None:
    store = services.api_rules_store()
    if args.name:
        try:
            found = store.get(args.name)
        except RulesError as exc:
            raise AdminError(f"rule set {args.name} is stored but invalid: {exc}") from exc
        if found is None:
            raise AdminError(f"no such rule set: {args.name}")
        _emit(args, api_rules.to_document(found), _text(found))
        return
    sets = store.all()
    docs = [api_rules.to_document(s) for s in sets]
    lines = [f"{s.name}  [{', '.join(s.apis)}]  {len(s.rules)} routes  {s.cache}" for s in sets]
    _emit(args, docs, "\n".join(lines) or "(no rule sets: every API is denied)")


def _delete(args: argparse.Namespace) -> None:
    if not services.api_rules_store().delete(args.name):
        raise AdminError(f"no such rule set: {args.name}")
    _emit(args, {"deleted": args.name}, f"deleted rule set {args.name}")


def register(areas: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    authorizer = areas.add_parser("authorizer", help="the authorizer's per-API route rules")
    topics = authorizer.add_subparsers(dest="topic", required=True)
    rules = topics.add_parser("rules", help="route -> scope rules of an attached API")
    actions = rules.add_subparsers(dest="action", required=True)
    p = actions.add_parser("put", help="create or replace a rule set")
    p.add_argument("name", help="the rule set's name (your choice, e.g. the API's)")
    p.add_argument("--api", action="append", default=[], help="<api-id>/<stage>, repeatable")
    p.add_argument(
        "--route", action="append", default=[], help='"METHOD /path/{param} scope", repeatable'
    )
    p.add_argument("--file", help='JSON: {"apis": [...], "routes": [{"method", "path", "scope"}]}')
    p.add_argument("--cache", choices=api_rules.CACHE_MODES, help="token (default) or route")
    p.add_argument("--response", choices=api_rules.RESPONSES, help="policy (default) or simple")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=_put)
    p = actions.add_parser("show", help="one rule set, or all of them")
    p.add_argument("name", nargs="?")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=_show)
    p = actions.add_parser("delete", help="detach an API's rules (its calls are then denied)")
    p.add_argument("name")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=_delete)
