"""`fundpool keys ...` and `fundpool users ...` end to end through typer's CliRunner, on a SQLite
ledger in tmp_path."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from fundpool.auth.errors import KeyExpired, KeyRevoked
from fundpool.auth.secrets import parse_token
from fundpool.cli.auth import parse_duration_s
from fundpool.cli.main import app
from fundpool.runtime import SystemClock
from fundpool.stores.auth_sql import AuthStore

# Environment a developer may have set must not point the tests at another store.
runner = CliRunner(env={"FUNDPOOL_DB_URL": None, "FUNDPOOL_DATA_DIR": None})
PASSWORD = "correct horse battery"


class Cli:
    """Runs `fundpool <args> --data-dir <dir>` and checks the exit code."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir

    def __call__(self, *args: str, code: int = 0, stdin: str | None = None) -> Result:
        result = runner.invoke(app, [*args, "--data-dir", str(self.data_dir)], input=stdin)
        assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
        assert "Traceback" not in result.output
        return result

    def json(self, *args: str, code: int = 0, stdin: str | None = None) -> Any:
        return json.loads(self(*args, "--json", code=code, stdin=stdin).stdout)

    def auth(self) -> AuthStore:
        return AuthStore(f"sqlite:///{self.data_dir / 'ledger.sqlite3'}")


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    cli = Cli(tmp_path / "ledger")
    cli("ledger", "init")
    return cli


def test_create_prints_the_token_once(cli: Cli) -> None:
    result = cli("keys", "create", "payroll", "--role", "cashier", "--role", "viewer")
    token = result.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"fpk_[0-9a-f]{16}_[A-Za-z0-9_-]{43}", token)
    assert "cannot be shown again" in result.stderr
    auth = cli.auth()
    try:
        principal = auth.authenticate_key(token, now_us=SystemClock().now_us())
    finally:
        auth.close()
    assert principal.name == "payroll"
    # `list` never shows it again.
    listed = cli("keys", "list")
    assert token not in listed.stdout
    assert parse_token(token, "fpk")[1] not in listed.stdout


def test_create_list_rotate_revoke(cli: Cli) -> None:
    created = cli.json("keys", "create", "ci", "--role", "admin", "--scope", "ledger:read",
                       "--expires-in", "90d")
    key = created["key"]
    assert created["token"].startswith(f"fpk_{key['id']}_")
    assert key["roles"] == ["admin"]
    assert key["scopes"] == ["ledger:read"]
    assert key["state"] == "active"
    assert key["expires_at_us"] - key["created_at_us"] == 90 * 86_400 * 1_000_000

    listed = cli.json("keys", "list")["keys"]
    assert [k["id"] for k in listed] == [key["id"]]
    assert "token" not in listed[0]

    rotated = cli.json("keys", "rotate", key["id"], "--grace", "1h")
    new = rotated["key"]
    assert rotated["token"].startswith(f"fpk_{new['id']}_")
    assert rotated["replaced"]["replaced_by"] == new["id"]
    assert rotated["replaced"]["expires_at_us"] == new["created_at_us"] + 3600 * 1_000_000
    assert (new["name"], new["roles"], new["scopes"], new["expires_at_us"]) == (
        "ci", ["admin"], ["ledger:read"], key["expires_at_us"])

    revoked = cli.json("keys", "revoke", new["id"])["key"]
    assert revoked["state"] == "revoked"
    auth = cli.auth()
    try:
        with pytest.raises(KeyRevoked):
            auth.authenticate_key(rotated["token"], now_us=SystemClock().now_us())
    finally:
        auth.close()
    states = {k["id"]: k["state"] for k in cli.json("keys", "list")["keys"]}
    assert states == {key["id"]: "active", new["id"]: "revoked"}
    human = cli("keys", "list").stdout
    assert key["id"] in human
    assert "revoked" in human


def test_rotate_without_grace_stops_the_old_key(cli: Cli) -> None:
    created = cli.json("keys", "create", "ci", "--role", "viewer")
    cli("keys", "rotate", created["key"]["id"])
    auth = cli.auth()
    try:
        with pytest.raises(KeyExpired):
            auth.authenticate_key(created["token"], now_us=SystemClock().now_us())
    finally:
        auth.close()


def test_create_with_an_expiry_time(cli: Cli) -> None:
    key = cli.json("keys", "create", "ci", "--role", "viewer",
                   "--expires-at", "2999-01-01T00:00:00Z")["key"]
    assert key["expires_at"] == "2999-01-01T00:00:00.000000Z"
    past = cli.json("keys", "create", "ci", "--role", "viewer",
                    "--expires-at", "2001-01-01T00:00:00Z", code=2)
    assert past["code"] == "invalid_expiry"


def test_domain_errors_exit_2_with_their_code(cli: Cli) -> None:
    assert cli.json("keys", "create", "ci", "--role", "boss", code=2)["code"] == "invalid_roles"
    assert cli.json("keys", "revoke", "0123456789abcdef", code=2)["code"] == "unknown_key"
    result = cli("keys", "rotate", "0123456789abcdef", code=2)
    assert "error[unknown_key]" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["--expires-in", "90"],
        ["--expires-in", "ninety days"],
        ["--expires-in", "99999d"],
        ["--expires-at", "tomorrow"],
        ["--expires-at", "2999-01-01T00:00:00"],  # no zone
        ["--expires-in", "1d", "--expires-at", "2999-01-01T00:00:00Z"],
    ],
)
def test_bad_expiry_options_are_usage_errors(cli: Cli, args: list[str]) -> None:
    cli("keys", "create", "ci", "--role", "viewer", *args, code=2)
    assert cli.json("keys", "list")["keys"] == []


def test_parse_duration() -> None:
    assert [parse_duration_s(text, "--grace") for text in ("90d", "12h", "30m", "45s", "0s")] == [
        90 * 86_400, 12 * 3_600, 30 * 60, 45, 0]


def test_users(cli: Cli) -> None:
    added = cli.json("users", "add", "alice", "--role", "approver", "--password-stdin",
                     stdin=PASSWORD + "\n")["user"]
    assert (added["username"], added["roles"], added["disabled"]) == (
        "alice", ["approver"], False)
    assert PASSWORD not in json.dumps(added)
    auth = cli.auth()
    try:
        principal, _, _ = auth.login("alice", PASSWORD, now_us=SystemClock().now_us())
        assert principal.name == "alice"
    finally:
        auth.close()

    duplicate = cli.json("users", "add", "alice", "--role", "viewer", "--password-stdin",
                         stdin=PASSWORD + "\n", code=2)
    assert duplicate["code"] == "user_exists"
    weak = cli.json("users", "add", "bob", "--role", "viewer", "--password-stdin",
                    stdin="short\n", code=2)
    assert weak["code"] == "weak_password"

    assert cli.json("users", "roles", "alice", "--role", "risk")["user"]["roles"] == ["risk"]
    cli("users", "passwd", "alice", "--password-stdin", stdin="another long passphrase\r\n")
    auth = cli.auth()
    try:
        auth.login("alice", "another long passphrase", now_us=SystemClock().now_us())
    finally:
        auth.close()
    assert cli.json("users", "disable", "alice")["user"]["disabled"] is True
    users = cli.json("users", "list")["users"]
    assert [(u["username"], u["disabled"]) for u in users] == [("alice", True)]
    assert "disabled" in cli("users", "list").stdout
    assert cli.json("users", "disable", "carol", code=2)["code"] == "unknown_user"


def test_users_add_prompts_twice(cli: Cli) -> None:
    cli("users", "add", "alice", "--role", "viewer", stdin=f"{PASSWORD}\n{PASSWORD}\n")
    auth = cli.auth()
    try:
        auth.login("alice", PASSWORD, now_us=SystemClock().now_us())
    finally:
        auth.close()


def test_commands_need_a_ledger(tmp_path: Path) -> None:
    result = Cli(tmp_path / "nothing")("keys", "list", code=2)
    assert "error[store_not_initialised]" in result.stderr
    assert not (tmp_path / "nothing").exists()


def test_every_change_names_the_operating_system_user(cli: Cli,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOGNAME", "ops-carol")  # getpass.getuser reads it first
    key = cli.json("keys", "create", "ci", "--role", "viewer")["key"]
    assert key["created_by"] == "cli:ops-carol"
    assert key["creator"] == {"kind": "cli", "id": "ops-carol", "name": "ops-carol",
                              "roles": ["admin"]}
    cli("keys", "rotate", key["id"])
    cli("users", "add", "alice", "--role", "viewer", "--password-stdin", stdin=PASSWORD + "\n")
    cli("users", "roles", "alice", "--role", "risk")
    cli("users", "passwd", "alice", "--password-stdin", stdin="another long passphrase\n")
    cli("users", "disable", "alice")
    cli.json("keys", "revoke", key["id"])
    changes = cli.json("keys", "changes")["changes"]
    assert [c["action"] for c in changes] == [
        "key.revoked", "user.disabled", "user.password_changed", "user.roles_changed",
        "user.created", "key.rotated", "key.created"]
    assert {(c["actor"]["kind"], c["actor"]["id"]) for c in changes} == {("cli", "ops-carol")}
    only_keys = cli.json("keys", "changes", "--kind", "key", "--target", key["id"])["changes"]
    assert [c["action"] for c in only_keys] == ["key.revoked", "key.rotated", "key.created"]
    assert "ops-carol" in cli("keys", "changes", "--limit", "1").stdout
    cli("keys", "changes", "--kind", "nothing", code=2)
