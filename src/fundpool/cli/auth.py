"""`fundpool keys ...` and `fundpool users ...`: who may call the API, and as what.

The credentials live beside the ledger (`--data-dir` / `--db-url`, as every command). A new or
rotated API key's token is printed once, on stdout, and never again: only a hash of its secret is
kept. A password is read from `--password-stdin` (one line) or prompted for twice, never taken
from the command line, where other users of the machine and the shell history would see it.

Every change is made in the name of the operating-system user running the command
(`cli_actor`), which the store records with it (`auth_changes`; `fundpool keys changes`).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator, Mapping
from contextlib import closing, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from fundpool import compose
from fundpool.cli.actor import local_actor
from fundpool.cli.options import DataDirOption, DbUrlOption, JsonOption, parse_instant
from fundpool.cli.session import Session, session
from fundpool.ledger.docs import iso
from fundpool.runtime import SystemClock

if TYPE_CHECKING:
    from fundpool.auth.model import ApiKeyInfo, AuthChange, UserInfo
    from fundpool.auth.ports import AuthStore
    from fundpool.core.actor import Actor

# The auth store (argon2 and the database) is imported by the commands: `fundpool --help` and
# every other command start without it.

keys_app = typer.Typer(
    name="keys",
    help="API keys: create, list, rotate and revoke. A token is shown once, at creation.",
    no_args_is_help=True,
)
users_app = typer.Typer(
    name="users",
    help="Console users: add, list, change roles or password, disable.",
    no_args_is_help=True,
)

DURATION_UNITS_S = {"d": 86_400, "h": 3_600, "m": 60, "s": 1}
DURATION_S_MAX = 3_650 * 86_400  # ten years: beyond that, say "no expiry" instead
_DURATION = re.compile(r"(\d{1,9})([dhms])")

RoleOption = Annotated[
    list[str],
    typer.Option("--role", help="A role (viewer, cashier, approver, risk, auditor, admin); "
                 "repeat for several.", show_default=False),
]
PasswordStdinOption = Annotated[
    bool,
    typer.Option("--password-stdin", help="Read the password from one line of stdin instead "
                 "of prompting."),
]

WARNING_SHOWN_ONCE = ("warning: this token is shown only now and cannot be shown again "
                      "(only a hash of it is kept); store it somewhere safe")


def parse_duration_s(text: str, option: str) -> int:
    """`90d`, `12h`, `30m` or `45s` to seconds."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise typer.BadParameter(f"{text!r} is not a duration such as 90d, 12h, 30m or 45s",
                                 param_hint=f"'{option}'")
    seconds = int(match[1]) * DURATION_UNITS_S[match[2]]
    if seconds > DURATION_S_MAX:
        raise typer.BadParameter(f"{text!r} is longer than {DURATION_S_MAX // 86_400}d",
                                 param_hint=f"'{option}'")
    return seconds


def read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().removesuffix("\n").removesuffix("\r")
    password: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return password


@contextmanager
def auth_session(data_dir: Path | None, db_url: str | None, as_json: bool
                 ) -> Iterator[tuple[Session, AuthStore, int]]:
    """The ledger session, the auth store beside it (tables created if missing) and now."""
    with session(data_dir, db_url, as_json) as s, closing(compose.auth_store(s.store)) as auth:
        yield s, auth, SystemClock().now_us()


def _when(at_us: int | None) -> str | None:
    return None if at_us is None else iso(at_us)


def key_doc(info: ApiKeyInfo, now_us: int) -> dict[str, object]:
    return {
        "id": info.id,
        "name": info.name,
        "state": info.state(now_us),
        "roles": list(info.roles),
        "scopes": None if info.scopes is None else list(info.scopes),
        "created_at": iso(info.created_at_us),
        "created_at_us": info.created_at_us,
        "expires_at": _when(info.expires_at_us),
        "expires_at_us": info.expires_at_us,
        "revoked_at": _when(info.revoked_at_us),
        "revoked_at_us": info.revoked_at_us,
        "replaced_by": info.replaced_by,
        "created_by": info.created_by,
        "creator": _actor(info.creator),
    }


def user_doc(info: UserInfo) -> dict[str, object]:
    return {
        "id": info.id,
        "username": info.username,
        "roles": list(info.roles),
        "disabled": info.disabled,
        "created_at": iso(info.created_at_us),
        "created_at_us": info.created_at_us,
        "creator": _actor(info.creator),
    }


def _actor(actor: Actor | None) -> dict[str, object] | None:
    return None if actor is None else actor.to_dict()


def change_doc(change: AuthChange) -> dict[str, object]:
    return {"id": change.id, "at": iso(change.at_us), "at_us": change.at_us,
            "action": change.action, "target_kind": change.target_kind,
            "target_id": change.target_id, "target_name": change.target_name,
            "actor": _actor(change.actor), "details": dict(change.details)}


def facts_table(doc: dict[str, object], title: str) -> Table:
    table = Table(title=title, show_header=False, title_justify="left", box=None)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for name, value in doc.items():
        if value is None or name.endswith("_us"):
            continue
        if isinstance(value, dict):  # an actor
            value = value.get("name", "")
        shown = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
        table.add_row(name.replace("_", " "), shown)
    return table


def show_token_once(s: Session, doc: Mapping[str, object], token: str, facts: list[Any]
                    ) -> None:
    """The new key's facts, then its token alone on the last line (easy to copy), then the
    warning on stderr."""
    s.emit(doc, [*facts, Text(""), Text(token)])
    typer.echo(WARNING_SHOWN_ONCE, err=True)


# --- keys ------------------------------------------------------------------------------------


@keys_app.command("create")
def create_key(
    name: Annotated[str, typer.Argument(help="What the key is for, e.g. 'payroll-batch'.")],
    roles: RoleOption,
    scopes: Annotated[
        list[str] | None,
        typer.Option("--scope", help="Narrow the roles to these permissions (e.g. "
                     "ledger:read); repeat for several.", show_default=False),
    ] = None,
    expires_in: Annotated[
        str | None, typer.Option("--expires-in", help="Expire after 90d, 12h, 30m or 45s.")
    ] = None,
    expires_at: Annotated[
        str | None, typer.Option("--expires-at", help="Expire at this time (ISO-8601 with "
                                 "its zone, e.g. 2027-01-01T00:00Z).")
    ] = None,
    data_dir: DataDirOption = None,
    db_url: DbUrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create an API key and print its token, once."""
    if expires_in is not None and expires_at is not None:
        raise typer.BadParameter("give --expires-in or --expires-at, not both",
                                 param_hint="'--expires-in'")
    lifetime_s = None if expires_in is None else parse_duration_s(expires_in, "--expires-in")
    try:
        expires_at_us = None if expires_at is None else parse_instant(expires_at)
    except typer.BadParameter as error:
        raise typer.BadParameter(error.message, param_hint="'--expires-at'") from None
    with auth_session(data_dir, db_url, as_json) as (s, auth, now_us):
        if lifetime_s is not None:
            expires_at_us = now_us + lifetime_s * 1_000_000
        info, token = auth.create_key(name, roles, scopes=scopes, expires_at_us=expires_at_us,
                                      now_us=now_us, actor=local_actor())
        key = key_doc(info, now_us)
        show_token_once(s, {"key": key, "token": token}, token,
                        [facts_table(key, f"API key {info.id} created")])


@keys_app.command("list")
def list_keys(
    data_dir: DataDirOption = None, db_url: DbUrlOption = None, as_json: JsonOption = False
) -> None:
    """Every API key, oldest first, with its state (never a secret)."""
    with auth_session(data_dir, db_url, as_json) as (s, auth, now_us):
        infos = auth.keys()
        table = Table(title="API keys", title_justify="left")
        for column in ("id", "name", "state", "roles", "scopes", "created", "expires",
                       "replaced by"):
            table.add_column(column, no_wrap=column == "id")
        for info in infos:
            table.add_row(
                info.id, info.name, info.state(now_us), ", ".join(info.roles),
                "(all the roles grant)" if info.scopes is None else ", ".join(info.scopes),
                iso(info.created_at_us), _when(info.expires_at_us) or "never",
                info.replaced_by or "",
            )
        s.emit({"keys": [key_doc(info, now_us) for info in infos]},
               table if infos else Text("no API keys"))


@keys_app.command("revoke")
def revoke_key(
    key_id: Annotated[str, typer.Argument(metavar="ID", help="The key's id.")],
    data_dir: DataDirOption = None,
    db_url: DbUrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Revoke an API key at once (revoking it again changes nothing)."""
    with auth_session(data_dir, db_url, as_json) as (s, auth, now_us):
        doc = key_doc(auth.revoke_key(key_id, now_us=now_us, actor=local_actor()), now_us)
        s.emit({"key": doc}, facts_table(doc, f"API key {key_id} revoked"))


@keys_app.command("rotate")
def rotate_key(
    key_id: Annotated[str, typer.Argument(metavar="ID", help="The key's id.")],
    grace: Annotated[
        str, typer.Option("--grace", help="How long the old key keeps working: 0s, 1h, 7d...")
    ] = "0s",
    data_dir: DataDirOption = None,
    db_url: DbUrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Replace an API key with a new one and print its token, once.

    The new key has the old one's name, roles, scopes and expiry; the old stops after --grace."""
    grace_s = parse_duration_s(grace, "--grace")
    with auth_session(data_dir, db_url, as_json) as (s, auth, now_us):
        info, token = auth.rotate_key(key_id, now_us=now_us, grace_s=grace_s,
                                      actor=local_actor())
        key, old = key_doc(info, now_us), key_doc(auth.key(key_id), now_us)
        show_token_once(s, {"key": key, "token": token, "replaced": old}, token, [
            facts_table(key, f"API key {info.id} created"),
            Text(f"it replaces {key_id}, which works until {old['expires_at']}"),
        ])


@keys_app.command("changes")
def list_changes(
    kind: Annotated[
        str | None, typer.Option("--kind", help="Only changes to keys (key) or users (user).")
    ] = None,
    target: Annotated[
        str | None, typer.Option("--target", help="Only changes to this key or user (its id).")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1_000,
                                       help="At most this many, newest first.")] = 100,
    data_dir: DataDirOption = None,
    db_url: DbUrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Who changed which key or user, and when, newest first."""
    if kind not in (None, "key", "user"):
        raise typer.BadParameter("give key or user", param_hint="'--kind'")
    with auth_session(data_dir, db_url, as_json) as (s, auth, _):
        changes = auth.changes(target_kind=kind, target_id=target, limit=limit)
        table = Table(title="changes to keys and users", title_justify="left")
        for column in ("at", "action", "target", "by", "request"):
            table.add_column(column)
        for change in changes:
            actor = change.actor
            table.add_row(iso(change.at_us), change.action,
                          f"{change.target_name} ({change.target_id})",
                          "unknown" if actor is None else f"{actor.kind}:{actor.name}",
                          "" if actor is None else actor.request_id or "")
        s.emit({"changes": [change_doc(c) for c in changes]},
               table if changes else Text("no changes"))


# --- users -----------------------------------------------------------------------------------


@users_app.command("add")
def add_user(
    username: Annotated[str, typer.Argument(help="Letters, digits and _ . @ -; up to 64.")],
    roles: RoleOption,
    password_stdin: PasswordStdinOption = False,
    data_dir: DataDirOption = None,
    db_url: DbUrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Add a console user with a password (12 characters or more)."""
    password = read_password(password_stdin)
    with auth_session(data_dir, db_url, as_json) as (s, auth, now_us):
        doc = user_doc(auth.add_user(username, password, roles, now_us=now_us,
                                     actor=local_actor()))
        s.emit({"user": doc}, facts_table(doc, f"user {username} added"))


@users_app.command("list")
def list_users(
    data_dir: DataDirOption = None, db_url: DbUrlOption = None, as_json: JsonOption = False
) -> None:
    """Every user, by username."""
    with auth_session(data_dir, db_url, as_json) as (s, auth, _):
        infos = auth.users()
        table = Table(title="users", title_justify="left")
        for column in ("username", "id", "roles", "state", "created"):
            table.add_column(column)
        for info in infos:
            table.add_row(info.username, info.id, ", ".join(info.roles),
                          "disabled" if info.disabled else "active", iso(info.created_at_us))
        s.emit({"users": [user_doc(info) for info in infos]},
               table if infos else Text("no users"))


@users_app.command("roles")
def set_roles(
    username: Annotated[str, typer.Argument(help="The user.")],
    roles: RoleOption,
    data_dir: DataDirOption = None,
    db_url: DbUrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Replace a user's roles (their open sessions get the new ones at once)."""
    with auth_session(data_dir, db_url, as_json) as (s, auth, now_us):
        doc = user_doc(auth.set_roles(username, roles, now_us=now_us, actor=local_actor()))
        s.emit({"user": doc}, facts_table(doc, f"roles of {username} set"))


@users_app.command("passwd")
def set_password(
    username: Annotated[str, typer.Argument(help="The user.")],
    password_stdin: PasswordStdinOption = False,
    data_dir: DataDirOption = None,
    db_url: DbUrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Set a user's password; every session of theirs ends."""
    password = read_password(password_stdin)
    with auth_session(data_dir, db_url, as_json) as (s, auth, now_us):
        doc = user_doc(auth.set_password(username, password, now_us=now_us,
                                         actor=local_actor()))
        s.emit({"user": doc}, facts_table(doc, f"password of {username} set; sessions ended"))


@users_app.command("disable")
def disable_user(
    username: Annotated[str, typer.Argument(help="The user.")],
    data_dir: DataDirOption = None,
    db_url: DbUrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Disable a user: no more logins, and every session of theirs ends."""
    with auth_session(data_dir, db_url, as_json) as (s, auth, now_us):
        doc = user_doc(auth.disable_user(username, now_us=now_us, actor=local_actor()))
        s.emit({"user": doc}, facts_table(doc, f"user {username} disabled"))
