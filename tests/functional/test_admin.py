"""The admin command (``python -m chalicelib.admin``): what an operator sees and relies on.

Most tests run ``admin.main`` in-process against the ``aws`` fixture's moto world, with a no-op
stage configuration (the fixture already points the services at it). The stage handling itself
(``--stage local`` without a running or reachable stack) runs the real command in a subprocess,
so nothing leaks into this process's environment. The admin command against a live local stack
is exercised by tests/e2e.
"""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from chalicelib.ops import admin
from chalicelib.web import services
from tests.functional.conftest import body, form_post

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse battery"


@dataclass
class Run:
    status: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


@pytest.fixture
def cli(aws: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Any:
    """Run the admin command in-process against the test world; stdin is text (not a terminal)."""

    def run(*args: str, stdin: str | None = None) -> Run:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin or ""))
        status = admin.main(["--stage", "test", *args], configure=lambda stage: None)
        out, err = capsys.readouterr()
        return Run(status, out, err)

    return run


def _create_client(cli: Any, *extra: str) -> dict[str, Any]:
    done = cli("client", "create", "--name", "app", "--json", *extra)
    assert done.status == 0, done.err
    result: dict[str, Any] = done.json()
    return result


def _password_grant(app_client: Any, client: dict[str, Any], username: str) -> Any:
    return form_post(
        app_client,
        "/oauth2/token",
        {
            "grant_type": "password",
            "username": username,
            "password": PASSWORD,
            "client_id": client["client_id"],
            "client_secret": client["client_secret"],
        },
    )


def _assert_one_line_error(done: Run) -> None:
    assert done.status == 2
    assert done.out == ""
    lines = done.err.strip().splitlines()
    assert len(lines) == 1, done.err
    assert lines[0].startswith("error: ")
    assert "Traceback" not in done.err


# --- clients ------------------------------------------------------------------------------


def test_client_create_prints_id_and_a_working_secret(cli: Any) -> None:
    done = cli("client", "create", "--name", "app", "--grant-types", "client_credentials")

    assert done.status == 0
    fields = dict(line.split(":", 1) for line in done.out.splitlines() if ":" in line)
    client_id, secret = fields["client_id"].strip(), fields["client_secret"].strip()
    stored = services.client_store().get(client_id)
    assert stored is not None
    assert stored.check_secret(secret)


def test_client_secret_is_not_stored_in_the_clear(cli: Any) -> None:
    client = _create_client(cli, "--grant-types", "client_credentials")

    stored = services.client_store().get(client["client_id"])
    assert stored is not None
    assert client["client_secret"] not in (stored.secret_hash or "")


def test_client_create_json_output_describes_the_client(cli: Any) -> None:
    client = _create_client(
        cli, "--grant-types", "client_credentials,password", "--scope", "people:read articles:read"
    )

    assert client["client_id"]
    assert client["client_secret"].startswith("tessera_cs_")
    assert client["grant_types"] == ["client_credentials", "password"]
    assert client["scope"] == "people:read articles:read"
    assert client["public"] is False


def test_public_client_has_null_secret_in_json(cli: Any) -> None:
    client = _create_client(
        cli,
        "--public",
        "--grant-types",
        "authorization_code",
        "--redirect-uri",
        "https://app.example/cb",
    )

    assert client["client_secret"] is None
    assert client["public"] is True


def test_public_client_has_null_secret_in_text(cli: Any) -> None:
    done = cli(
        "client",
        "create",
        "--name",
        "spa",
        "--public",
        "--grant-types",
        "authorization_code",
        "--redirect-uri",
        "https://app.example/cb",
    )

    assert done.status == 0
    assert "client_secret: null" in done.out


def test_client_list_shows_every_client_without_secrets(cli: Any) -> None:
    first = _create_client(cli, "--grant-types", "client_credentials")
    second = _create_client(cli, "--grant-types", "client_credentials")

    listed = cli("client", "list", "--json")
    text = cli("client", "list")

    assert {c["client_id"] for c in listed.json()} == {first["client_id"], second["client_id"]}
    for output in (listed.out, text.out):
        assert "tessera_cs_" not in output
        assert "sha256:" not in output
        assert "secret" not in output


def test_client_show_never_shows_the_secret_or_its_hash(cli: Any) -> None:
    client = _create_client(cli, "--grant-types", "client_credentials")

    shown = cli("client", "show", client["client_id"], "--json")
    text = cli("client", "show", client["client_id"])

    assert shown.json()["client_id"] == client["client_id"]
    for output in (shown.out, text.out):
        assert client["client_secret"] not in output
        assert "sha256:" not in output
        assert "secret" not in output


def test_client_delete_removes_the_client(cli: Any) -> None:
    client = _create_client(cli, "--grant-types", "client_credentials")

    deleted = cli("client", "delete", client["client_id"])

    assert deleted.status == 0
    assert services.client_store().get(client["client_id"]) is None
    _assert_one_line_error(cli("client", "show", client["client_id"]))


def test_deleting_an_unknown_client_is_an_error(cli: Any) -> None:
    _assert_one_line_error(cli("client", "delete", "no-such-client"))


def test_unknown_grant_type_is_a_one_line_error_and_creates_nothing(cli: Any) -> None:
    done = cli("client", "create", "--name", "app", "--grant-types", "client_credentials,implicit")

    _assert_one_line_error(done)
    assert "unknown grant type" in done.err
    assert services.client_store().list() == []


def test_public_client_cannot_have_client_credentials(cli: Any) -> None:
    done = cli(
        "client", "create", "--name", "app", "--public", "--grant-types", "client_credentials"
    )

    _assert_one_line_error(done)


def test_password_client_is_refused_where_the_stage_disables_the_grant(
    cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chalicelib.core.config import settings

    monkeypatch.setenv("TESSERA_PASSWORD_GRANT", "false")
    settings.cache_clear()
    done = cli("client", "create", "--name", "app", "--grant-types", "password,refresh_token")

    _assert_one_line_error(done)
    assert "TESSERA_PASSWORD_GRANT" in done.err
    assert services.client_store().list() == []


# --- users --------------------------------------------------------------------------------


def test_user_created_with_password_from_stdin_can_get_a_token(
    cli: Any, app_client: Any, make_client: Any
) -> None:
    client = make_client(grant_types=["password"])

    created = cli("user", "create", "--username", "Alice", "--json", stdin=PASSWORD + "\n")

    assert created.status == 0, created.err
    assert created.json()["username"] == "alice"
    assert PASSWORD not in created.out
    r = _password_grant(app_client, client, "alice")
    assert r.status_code == 200, r.body


def test_duplicate_username_is_a_one_line_error(cli: Any) -> None:
    assert cli("user", "create", "--username", "alice", stdin=PASSWORD).status == 0

    done = cli("user", "create", "--username", "ALICE", stdin="another password here")

    _assert_one_line_error(done)
    assert "already exists" in done.err


def test_short_password_is_refused(cli: Any) -> None:
    done = cli("user", "create", "--username", "alice", stdin="short")

    _assert_one_line_error(done)
    assert services.user_store().get("alice") is None


@pytest.mark.parametrize("stdin", ["", "\n"])
def test_user_create_without_a_password_on_stdin_says_it_is_missing(cli: Any, stdin: str) -> None:
    done = cli("user", "create", "--username", "alice", stdin=stdin)

    _assert_one_line_error(done)
    assert "no password" in done.err
    assert "at least" not in done.err
    assert services.user_store().get("alice") is None


def test_user_unlock_prints_only_its_result(cli: Any, make_user: Any) -> None:
    make_user("alice", PASSWORD)

    done = cli("user", "unlock", "alice")

    assert done.status == 0
    assert done.out == "user alice was not locked\n"
    assert done.err == ""  # no audit JSON line unless --audit asks for it


def test_disabled_user_cannot_get_tokens(cli: Any, app_client: Any, make_client: Any) -> None:
    client = make_client(grant_types=["password"])
    cli("user", "create", "--username", "alice", stdin=PASSWORD)
    assert _password_grant(app_client, client, "alice").status_code == 200

    disabled = cli("user", "disable", "Alice")

    assert disabled.status == 0
    r = _password_grant(app_client, client, "alice")
    assert r.status_code == 400
    assert body(r)["error"] == "invalid_grant"


def test_deleted_user_cannot_get_tokens(cli: Any, app_client: Any, make_client: Any) -> None:
    client = make_client(grant_types=["password"])
    cli("user", "create", "--username", "alice", stdin=PASSWORD)

    deleted = cli("user", "delete", "alice")

    assert deleted.status == 0
    assert services.user_store().get("alice") is None
    r = _password_grant(app_client, client, "alice")
    assert body(r)["error"] == "invalid_grant"


def test_disabling_an_unknown_user_is_an_error(cli: Any) -> None:
    _assert_one_line_error(cli("user", "disable", "nobody"))


# --- stages -------------------------------------------------------------------------------


def test_unknown_stage_is_a_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    status = admin.main(["--stage", "staging", "client", "list"])
    out, err = capsys.readouterr()

    _assert_one_line_error(Run(status, out, err))
    assert "unknown stage" in err


def _run_command(state_file: Path, *args: str) -> Run:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")}
    env["TESSERA_LOCAL_STATE"] = str(state_file)
    done = subprocess.run(
        [sys.executable, "-m", "chalicelib.ops.admin", "--stage", "local", *args],
        cwd=ROOT,
        env=env,
        input="",
        capture_output=True,
        text=True,
        timeout=120,  # a hang guard, not a measurement: retries are bounded in chalicelib.store.aws
        check=False,
    )
    return Run(done.returncode, done.stdout, done.stderr)


def test_local_stage_without_a_running_stack_says_so(tmp_path: Path) -> None:
    done = _run_command(tmp_path / "absent.json", "client", "list")

    _assert_one_line_error(done)
    assert "make local" in done.err


def test_unreachable_local_stack_is_a_one_line_error(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port nobody listens on once closed
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    state = tmp_path / "state.json"
    state.write_text(
        json.dumps(
            {"endpoint": dead, "region": "us-east-1", "api": dead, "env": {"TESSERA_ISSUER": dead}}
        )
    )

    done = _run_command(state, "client", "list")

    _assert_one_line_error(done)
    assert "cannot reach dynamodb" in done.err


def test_missing_aws_region_is_a_one_line_error(tmp_path: Path) -> None:
    empty = tmp_path / "aws-config"
    empty.write_text("")
    with socket.socket() as sock:  # even if a region were found, nothing leaves this machine
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("AWS_") and not k.startswith("TESSERA_")
    }
    env.update(
        {
            "AWS_CONFIG_FILE": str(empty),
            "AWS_SHARED_CREDENTIALS_FILE": str(empty),
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_ENDPOINT_URL": dead,
        }
    )
    done = subprocess.run(
        [sys.executable, "-m", "chalicelib.ops.admin", "--stage", "dev", "client", "list"],
        cwd=ROOT,
        env=env,
        input="",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    _assert_one_line_error(Run(done.returncode, done.stdout, done.stderr))
    assert "no AWS region" in done.stderr
    assert "AWS_REGION" in done.stderr


@pytest.mark.parametrize(
    "args",
    [[], ["client"], ["client", "create"], ["user"], ["user", "unlock"], ["grants", "list"]],
)
def test_help_is_plain_text_for_operators_without_internals(args: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "chalicelib.ops.admin", *args, "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: python -m chalicelib.admin")
    for internal in ("``", "EXTENSIONS", "admin_", "chalicelib.oauth.login_guard", "subcommands"):
        assert internal not in done.stdout, internal


def test_client_ids_are_lowercase_alphanumeric_and_never_look_like_options():
    from chalicelib.store.clients import new_client_id

    ids = {new_client_id() for _ in range(2000)}
    assert len(ids) == 2000
    alphabet = set("abcdefghijklmnopqrstuvwxyz0123456789")
    assert all(len(i) == 26 and set(i) <= alphabet for i in ids)
    assert not any(i.startswith("-") for i in ids)
