"""Admin command: ``python -m chalicelib.admin --stage STAGE <area> <action> ...``.

``--stage local`` talks to the running local stack's emulator (``make local``); ``dev``/``prod``
talk to AWS with the caller's credentials. Resource names come from ``.chalice/config.json``, the
same place the Lambdas get them. Errors are one line on stderr and exit status 2; secrets are
printed once, to stdout, and never logged.

Areas other than clients and users live in their own modules (``admin_*.py``) and register their
subcommands through ``EXTENSIONS``.
"""

from __future__ import annotations

import argparse
import getpass
import importlib
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

from chalicelib.core.config import local_state_path
from chalicelib.core.faults import BackendUnavailable
from chalicelib.core.records import InvalidUsername, normalize_username

# The client and user operations, re-exported: extensions, tests and the local stack use
# admin.AdminError, admin.create_client and the rest.
from chalicelib.ops import admin_records
from chalicelib.store.grant_store import GrantStore
from chalicelib.web import services

AdminError = admin_records.AdminError
check_profile = admin_records.check_profile
check_redirect_uri = admin_records.check_redirect_uri
create_client = admin_records.create_client
create_user = admin_records.create_user
set_profile = admin_records.set_profile

ROOT = Path(__file__).resolve().parents[2]
LOCAL_STATE = ROOT / ".local-stack.json"
# Modules that add subcommands: each has register(subparsers) -> None.
EXTENSIONS: list[str] = [
    "chalicelib.ops.admin_grants",
    "chalicelib.ops.admin_keys",
    "chalicelib.ops.admin_rules",
]


# What --help shows: for operators, so plain text and no module internals.
DESCRIPTION = """\
Manage one Tessera stage: OAuth clients, users, refresh-token grants, signing
keys and the refresh-token pepper.

--stage local talks to the stack that 'make local' runs. dev and prod talk to
AWS with your usual credentials and region (AWS_PROFILE, environment, SSO) and
take the table and secret names from .chalice/config.json."""

EPILOG = """\
examples:
  python -m chalicelib.admin --stage local client create --name demo \\
      --grant-types client_credentials,password,refresh_token --scope people:read
  printf '%s\\n' "$PASSWORD" | \\
      python -m chalicelib.admin --stage local user create --username alice
  python -m chalicelib.admin --stage dev grants list --username alice

Each area and action has its own --help (e.g. client create --help).
Errors are one line on stderr with exit status 2. A client secret is printed
once, to stdout. --audit also writes each change as an audit event (a JSON
line) to stderr, e.g. to keep a record with 2>>admin-audit.log."""


# --- environment --------------------------------------------------------------------------


def use_stage(stage: str) -> None:
    """Point the services at a stage: its names from .chalice/config.json, and for ``local``
    the running emulator recorded by ``make local``."""
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    if stage not in config.get("stages", {}):
        raise AdminError(f"unknown stage: {stage}")
    env = dict(config.get("environment_variables", {}))
    env.update(config["stages"][stage].get("environment_variables", {}))
    if stage == "local":
        state_file = local_state_path(LOCAL_STATE)
        if not state_file.exists():
            raise AdminError("the local stack is not running: start it with `make local`")
        state = json.loads(state_file.read_text())
        env.update(state["env"])
        os.environ.update(
            {
                "AWS_ENDPOINT_URL": state["endpoint"],
                "AWS_ACCESS_KEY_ID": "local",
                "AWS_SECRET_ACCESS_KEY": "local",
                "AWS_DEFAULT_REGION": state.get("region", "us-east-1"),
            }
        )
    os.environ.update(env)
    services.reset()


def read_password(prompt_twice: bool) -> str:
    """The first line of stdin when it is not a terminal, else a prompt (twice). Nothing given is
    "missing", never "too short": the operator forgot to pipe it in."""
    if not sys.stdin.isatty():
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            raise AdminError(
                "no password on stdin: pipe it in as the first line, or run on a terminal"
            )
        return line
    first = getpass.getpass("Password: ")
    if not first:
        raise AdminError("no password given")
    if prompt_twice and getpass.getpass("Repeat password: ") != first:
        raise AdminError("passwords do not match")
    return first


# --- command line -------------------------------------------------------------------------


def _emit(args: argparse.Namespace, data: object, text: str) -> None:
    print(json.dumps(data, indent=2) if getattr(args, "json", False) else text)


def _client_create(args: argparse.Namespace) -> None:
    from chalicelib.core.config import settings

    grant_types = [g.strip() for g in args.grant_types.split(",") if g.strip()]
    if "password" in grant_types and not settings().password_grant:
        # The token endpoint would refuse it (unsupported_grant_type): say so now.
        raise AdminError(
            f"the password grant is off in stage {args.stage} "
            "(TESSERA_PASSWORD_GRANT in .chalice/config.json)"
        )
    result = create_client(
        services.client_store(),
        name=args.name,
        grant_types=grant_types,
        scopes=args.scope.split(),
        public=args.public,
        introspect=args.introspect,
        first_party=args.first_party,
        redirect_uris=args.redirect_uri,
        post_logout_redirect_uris=args.post_logout_redirect_uri,
        subject_type=args.subject_type,
        sector=args.sector,
    )
    secret = result["client_secret"] or "null"
    text = f"client_id:     {result['client_id']}\nclient_secret: {secret}"
    if result["client_secret"]:
        text += "\n(the secret is shown once; store it now)"
    _emit(args, result, text)


def _client_list(args: argparse.Namespace) -> None:
    records = services.client_store().list()
    lines = [
        f"{c.client_id}  {c.name}  [{','.join(c.grant_types)}]  {' '.join(c.scopes)}"
        for c in records
    ]
    _emit(args, [c.public_view() for c in records], "\n".join(lines) or "(no clients)")


def _client_show(args: argparse.Namespace) -> None:
    client = services.client_store().get(args.client_id)
    if client is None:
        raise AdminError(f"no such client: {args.client_id}")
    view = client.public_view()
    _emit(args, view, "\n".join(f"{k}: {v}" for k, v in view.items()))


def _client_delete(args: argparse.Namespace) -> None:
    if not services.client_store().delete(args.client_id):
        raise AdminError(f"no such client: {args.client_id}")
    _emit(args, {"deleted": args.client_id}, f"deleted client {args.client_id}")


def _user_create(args: argparse.Namespace) -> None:
    password = read_password(prompt_twice=True)
    result = create_user(
        services.user_store(),
        args.username,
        password,
        email=args.email,
        email_verified=args.email_verified,
        name=args.name,
    )
    _emit(args, result, f"created user {result['username']} ({result['user_id']})")


def _user_profile(args: argparse.Namespace) -> None:
    result = set_profile(
        services.user_store(),
        args.username,
        email=args.email,
        email_verified=args.email_verified,
        name=args.name,
    )
    _emit(args, result, "\n".join(f"{k}: {v}" for k, v in result.items()))


def _profile_options(p: argparse.ArgumentParser) -> None:
    """The OpenID Connect profile claims (chalicelib.oauth.oidc) a user may carry."""
    p.add_argument("--email", help="released with the email scope")
    p.add_argument(
        "--email-verified", action="store_true", help="the address was confirmed to be theirs"
    )
    p.add_argument("--name", help="full name, released with the profile scope")


def _username(raw: str) -> str:
    try:
        return normalize_username(raw)
    except InvalidUsername as exc:
        raise AdminError(str(exc)) from exc


def end_grants(grants: GrantStore, username: str, now: int) -> list[str]:
    """Revoke every grant of a user (after a disable or delete): refresh tokens stop, and access
    tokens fail introspection and the authorizer's revocation check. The user's record was
    changed first, so no new grant can start meanwhile (``users.receive_check``). Families past
    their end are revoked too: an access token issued just before it may still be running."""
    return [
        f.family_id
        for f in grants.families_of(username)
        if not f.revoked and grants.revoke_family(f.family_id, "user_ended", now)
    ]


def _ended(revoked: list[str]) -> str:
    return f"; ended their sessions and revoked {len(revoked)} grant(s)"


def _user_disable(args: argparse.Namespace) -> None:
    name = _username(args.username)
    # Disabling moves the user to a new epoch: sessions and codes issued before end with it.
    if not services.user_store().set_disabled(name, True):
        raise AdminError(f"no such user: {name}")
    revoked = end_grants(services.grant_store(), name, int(services.clock().now()))
    _emit(
        args,
        {"disabled": name, "revoked_grants": revoked},
        f"disabled user {name}" + _ended(revoked),
    )


def _user_delete(args: argparse.Namespace) -> None:
    name = _username(args.username)
    if not services.user_store().delete(name):
        raise AdminError(f"no such user: {name}")
    revoked = end_grants(services.grant_store(), name, int(services.clock().now()))
    _emit(
        args,
        {"deleted": name, "revoked_grants": revoked},
        f"deleted user {name}" + _ended(revoked),
    )


def _user_unlock(args: argparse.Namespace) -> None:
    name = _username(args.username)
    had_failures = services.login_guard().unlock(name)
    text = f"unlocked user {name}" if had_failures else f"user {name} was not locked"
    _emit(args, {"unlocked": name, "had_failures": had_failures}, text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m chalicelib.admin",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--stage", required=True, help="local, dev or prod")
    parser.add_argument(
        "--audit", action="store_true", help="also write audit events (JSON lines) to stderr"
    )
    areas = parser.add_subparsers(dest="area", required=True)

    client = areas.add_parser("client", help="OAuth clients").add_subparsers(
        dest="action", required=True
    )
    p = client.add_parser("create", help="register a client; prints its id and secret (once)")
    p.add_argument("--name", required=True)
    p.add_argument("--grant-types", required=True, help="comma-separated")
    p.add_argument("--scope", default="", help='space-separated, e.g. "people:read articles:read"')
    p.add_argument("--public", action="store_true", help="a public client (no secret)")
    p.add_argument("--introspect", action="store_true", help="may introspect any token")
    p.add_argument("--first-party", action="store_true", help="your own app: no consent page")
    p.add_argument("--redirect-uri", action="append", default=[], help="repeatable")
    p.add_argument(
        "--post-logout-redirect-uri",
        action="append",
        default=[],
        help="where RP-initiated logout may return (OpenID Connect)",
    )
    p.add_argument(
        "--subject-type",
        choices=["public", "pairwise"],
        default="public",
        help="pairwise: the app sees its own sub for each user (OpenID Connect §8)",
    )
    p.add_argument("--sector", help="pairwise apps of one sector see the same sub")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=_client_create)
    p = client.add_parser("list", help="id, name, grant types and scope of every client")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=_client_list)
    for action, run, what in (
        ("show", _client_show, "every field of a client except its secret"),
        ("delete", _client_delete, "delete a client; its refresh tokens stop working"),
    ):
        p = client.add_parser(action, help=what)
        p.add_argument("client_id")
        p.add_argument("--json", action="store_true")
        p.set_defaults(run=run)

    user = areas.add_parser("user", help="resource owners").add_subparsers(
        dest="action", required=True
    )
    p = user.add_parser("create", help="password from stdin, or prompted twice on a terminal")
    p.add_argument("--username", required=True)
    _profile_options(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=_user_create)
    p = user.add_parser("profile", help="replace the profile claims (absent options are removed)")
    p.add_argument("username")
    _profile_options(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=_user_profile)
    for action, run, what in (
        ("disable", _user_disable, "refuse the user's sign-ins; end their sessions and grants"),
        ("delete", _user_delete, "delete the user; their sessions and grants end"),
        ("unlock", _user_unlock, "forget the user's failed sign-ins (ends a lockout)"),
    ):
        p = user.add_parser(action, help=what)
        p.add_argument("username")
        p.add_argument("--json", action="store_true")
        p.set_defaults(run=run)

    for module in EXTENSIONS:
        importlib.import_module(module).register(areas)
    return parser


def main(argv: list[str] | None = None, *, configure: Callable[[str], None] = use_stage) -> int:
    """Run one command; ``configure`` points the services at the stage (tests pass their own)."""
    from chalicelib.core import audit

    parser = build_parser()
    args = parser.parse_args(argv)
    # stdout carries the command's result (and secrets, once); audit lines only when asked.
    previous = audit.to_stream("stderr" if args.audit else "off")
    try:
        configure(args.stage)
        args.run(args)
    except AdminError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BackendUnavailable as exc:
        print(
            f"error: cannot reach {exc.service} for stage {args.stage} ({exc.reason})"
            + (": is `make local` running?" if args.stage == "local" else ""),
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        problem = aws_setup_problem(exc, args.stage)
        if problem is None:
            raise
        print(f"error: {problem}", file=sys.stderr)
        return 2
    finally:
        audit.to_stream(previous)
    return 0


def aws_setup_problem(exc: BaseException, stage: str) -> str | None:
    """botocore's complaint about the operator's AWS setup (no region, no credentials, an unknown
    profile) as one line, or None for anything else (a bug: its traceback is worth seeing)."""
    errors = sys.modules.get("botocore.exceptions")
    if errors is None or not isinstance(exc, errors.BotoCoreError):
        return None
    if isinstance(exc, errors.NoRegionError):
        return (
            f"no AWS region for stage {stage}: set AWS_REGION or AWS_DEFAULT_REGION, "
            "or a region in your AWS profile"
        )
    first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return f"AWS setup for stage {stage}: {first_line}"


if __name__ == "__main__":
    # Extensions import chalicelib.ops.admin (AdminError): give them this module, not a second copy
    # whose AdminError main() would not catch.
    sys.modules.setdefault("chalicelib.ops.admin", sys.modules[__name__])
    sys.exit(main())
