"""Where API keys, users and their sessions are kept, and how a caller proves who it is.

The tables live beside the ledger (the same SQLite file or PostgreSQL schema) on a connection of
their own, as the projections do. The HTTP server calls the store from a thread pool, so one lock
guards the connection; argon2 runs outside it, so a login does not hold up other requests.

The store reads no clock: every time is integer microseconds since the epoch (UTC), passed in as
`now_us`. Authentication fails with a subclass of `AuthenticationFailed` (errors.py); a detail
never tells an unknown key or user from a wrong secret or password.

Every change to a key or a user (created, rotated, revoked; added, roles set, password set,
disabled) appends a row to `auth_changes` in the transaction that makes it, with the actor
who made it: the change and its record are kept together or not at all. A change that changes
nothing (revoking a revoked key, disabling a disabled user) records nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal, cast

from fundpool.auth.errors import (
    PASSWORD_CHARS_MAX,
    InvalidCredentials,
    InvalidKeyExpiry,
    KeyAlreadyRotated,
    KeyExpired,
    KeyRevoked,
    SelfGrant,
    SessionExpired,
    UnknownKey,
    UnknownUser,
    UserDisabled,
    UserExists,
)
from fundpool.auth.model import (
    _NO_SECRET_HASH,
    CHANGES_LIMIT_MAX,
    ROTATION_GRACE_S_MAX,
    SESSION_TTL_S_DEFAULT,
    SESSION_TTL_S_MAX,
    US_PER_S,
    USERNAME_PATTERN,
    ApiKeyInfo,
    AuthChange,
    Principal,
    UserInfo,
    _join,
    _known_roles,
    _known_scopes,
    _split,
    check_key_name,
    check_password,
    check_roles,
    check_scopes,
    check_username,
)
from fundpool.auth.roles import permissions_of
from fundpool.auth.secrets import (
    KEY_PREFIX,
    SESSION_PREFIX,
    TOKEN_TEXT_MAX,
    format_token,
    hash_password,
    hash_secret,
    new_csrf_token,
    new_id,
    new_secret,
    parse_token,
    password_matches,
    password_needs_rehash,
    secret_matches,
    verify_dummy_password,
)
from fundpool.core.actor import SYSTEM, Actor
from fundpool.sql import migrate
from fundpool.sql.database import Database, Transaction, database_of
from fundpool.sql.query import Where
from fundpool.sql.query import limit as limit_clause
from fundpool.stores.actor_json import actor_from_text, actor_text

KEY_COLUMNS = ("id, name, roles, scopes, created_at_us, expires_at_us, revoked_at_us, "
               "replaced_by, created_by, creator")
USER_COLUMNS = "id, username, roles, disabled, created_at_us, creator"
CHANGE_COLUMNS = "id, at_us, action, target_kind, target_id, target_name, actor, details"


def _key_info(row: Sequence[Any]) -> ApiKeyInfo:
    (key_id, name, roles, scopes, created, expires, revoked, replaced_by, created_by,
     creator) = row
    return ApiKeyInfo(
        id=key_id, name=name, roles=_split(roles),
        scopes=None if scopes is None else _split(scopes),
        created_at_us=int(created),
        expires_at_us=None if expires is None else int(expires),
        revoked_at_us=None if revoked is None else int(revoked),
        replaced_by=replaced_by, created_by=created_by, creator=actor_from_text(creator),
    )


def _user_info(row: Sequence[Any]) -> UserInfo:
    user_id, username, roles, disabled, created, creator = row
    return UserInfo(id=user_id, username=username, roles=_split(roles), disabled=bool(disabled),
                    created_at_us=int(created), creator=actor_from_text(creator))


def _change(row: Sequence[Any]) -> AuthChange:
    change_id, at_us, action, target_kind, target_id, target_name, actor, details = row
    return AuthChange(int(change_id), int(at_us), action,
                      cast(Literal["key", "user"], target_kind), target_id, target_name,
                      actor_from_text(actor), json.loads(details))


def created_by_text(actor: Actor) -> str:
    """The `created_by` text a key keeps beside its creator: `<kind>:<name>`, as the API wrote
    it before actors were kept (`user:alice`, `key:ops-bot`, `cli:root`)."""
    return f"{actor.kind}:{actor.name}"


# --- the store -------------------------------------------------------------------------------


def _foreign_keys(connection: Any) -> None:
    """Sessions reference their user: SQLite checks it only when told to, per connection."""
    if not hasattr(connection, "broken"):  # a sqlite3 connection
        connection.execute("PRAGMA foreign_keys=ON")


class AuthStore:
    """API keys, users and sessions on a connection of their own (`sqlite:///…` or
    `postgresql://…?schema=NAME`). Safe to share between threads."""

    def __init__(self, url: str) -> None:
        self.db = Database(url, on_connect=_foreign_keys)
        self.url = self.db.url
        self.initialise()

    @classmethod
    def beside(cls, ledger_store: Any) -> AuthStore:
        """The auth tables in the same database (and schema) as a ledger store."""
        return cls(database_of(ledger_store).url)

    def initialise(self) -> None:
        """Create the tables at the auth component's version, or check that they are at it
        (safe to run again, and concurrently)."""
        self.db.create()
        migrate.ensure(self.db, migrate.AUTH)

    def close(self) -> None:
        self.db.close()

    def _rows(self, query: str, params: Sequence[Any] = ()) -> list[Any]:
        return self.db.rows(query, params)

    # --- API keys -------------------------------------------------------------------------

    def create_key(
        self, name: str, roles: Iterable[str], *, scopes: Iterable[str] | None = None,
        expires_at_us: int | None = None, now_us: int, actor: Actor = SYSTEM,
    ) -> tuple[ApiKeyInfo, str]:
        """A new API key, and its token `fpk_<id>_<secret>`: shown this once, never stored.
        `actor` is who creates it (recorded on the key and in `auth_changes`)."""
        check_key_name(name)
        checked_roles = check_roles(roles)
        checked_scopes = check_scopes(scopes)
        if expires_at_us is not None and expires_at_us <= now_us:
            raise InvalidKeyExpiry(expires_at_us=expires_at_us, now_us=now_us)
        key_id, secret = new_id(), new_secret()
        with self.db.transaction() as connection:
            self._insert_key(connection, key_id, name, hash_secret(secret), checked_roles,
                             checked_scopes, now_us, expires_at_us, actor)
            _record(connection, now_us, "key.created", "key", key_id, name, actor,
                    {"roles": list(checked_roles),
                     "scopes": None if checked_scopes is None else list(checked_scopes),
                     "expires_at_us": expires_at_us})
        return self.key(key_id), format_token(KEY_PREFIX, key_id, secret)

    def _insert_key(
        self, connection: Any, key_id: str, name: str, secret_hash: str, roles: Iterable[str],
        scopes: Iterable[str] | None, now_us: int, expires_at_us: int | None, actor: Actor,
    ) -> None:
        connection.execute(
            "INSERT INTO api_keys (id, name, secret_hash, roles, scopes, created_at_us, "
            "expires_at_us, created_by, creator) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (key_id, name, secret_hash, _join(roles), None if scopes is None else _join(scopes),
             now_us, expires_at_us, created_by_text(actor), actor_text(actor)),
        )

    def keys(self) -> list[ApiKeyInfo]:
        """Every API key, oldest first."""
        rows = self._rows(f"SELECT {KEY_COLUMNS} FROM api_keys ORDER BY created_at_us, id")
        return [_key_info(row) for row in rows]

    def key(self, key_id: str) -> ApiKeyInfo:
        rows = self._rows(f"SELECT {KEY_COLUMNS} FROM api_keys WHERE id = ?",
                          (key_id,))
        if not rows:
            raise UnknownKey(key_id=key_id)
        return _key_info(rows[0])

    def revoke_key(self, key_id: str, *, now_us: int, actor: Actor = SYSTEM) -> ApiKeyInfo:
        """Stop a key at once. Revoking it again keeps the first revocation's time (and records
        no second change)."""
        with self.db.transaction() as connection:
            row = connection.one(
                f"SELECT name, revoked_at_us FROM api_keys WHERE id = ?"
                f"{self.db.dialect.for_update}", (key_id,))
            if row is None:
                raise UnknownKey(key_id=key_id)
            if row[1] is None:
                connection.execute("UPDATE api_keys SET revoked_at_us = ? WHERE id = ?",
                                   (now_us, key_id))
                _record(connection, now_us, "key.revoked", "key", key_id, row[0], actor, {})
        return self.key(key_id)

    def rotate_key(self, key_id: str, *, now_us: int, grace_s: int = 0,
                   actor: Actor = SYSTEM) -> tuple[ApiKeyInfo, str]:
        """A new key with the old one's name, roles, scopes and expiry; the old one keeps
        working for `grace_s` seconds (never past its own expiry), so callers can switch. The
        new key's creator is `actor`, who rotated it."""
        if not 0 <= grace_s <= ROTATION_GRACE_S_MAX:
            raise InvalidKeyExpiry("the grace period is out of bounds", grace_s=grace_s,
                                   max_s=ROTATION_GRACE_S_MAX)
        new_key_id, secret = new_id(), new_secret()
        with self.db.transaction() as connection:
            rows = connection.execute(
                f"SELECT {KEY_COLUMNS} FROM api_keys WHERE id = ?{self.db.dialect.for_update}",
                (key_id,),
            ).fetchall()
            if not rows:
                raise UnknownKey(key_id=key_id)
            old = _key_info(rows[0])
            if old.revoked_at_us is not None:
                raise KeyRevoked(key_id=key_id)
            if old.replaced_by is not None:
                raise KeyAlreadyRotated(key_id=key_id, replaced_by=old.replaced_by)
            if old.state(now_us) == "expired":
                raise KeyExpired(key_id=key_id, expires_at_us=old.expires_at_us)
            grace_end_us = now_us + grace_s * US_PER_S
            old_expires_at_us = (grace_end_us if old.expires_at_us is None
                                 else min(old.expires_at_us, grace_end_us))
            self._insert_key(connection, new_key_id, old.name, hash_secret(secret), old.roles,
                             old.scopes, now_us, old.expires_at_us, actor)
            connection.execute(
                "UPDATE api_keys SET replaced_by = ?, expires_at_us = ? WHERE id = ?",
                (new_key_id, old_expires_at_us, key_id),
            )
            _record(connection, now_us, "key.rotated", "key", key_id, old.name, actor,
                    {"replaced_by": new_key_id, "grace_s": grace_s,
                     "expires_at_us": old_expires_at_us})
        return self.key(new_key_id), format_token(KEY_PREFIX, new_key_id, secret)

    def authenticate_key(self, token: str, *, now_us: int) -> Principal:
        """The caller holding the API key `token`."""
        key_id, secret = parse_token(token, KEY_PREFIX)
        rows = self._rows(
            f"SELECT secret_hash, {KEY_COLUMNS} FROM api_keys WHERE id = ?", (key_id,)
        )
        matches = secret_matches(secret, rows[0][0] if rows else _NO_SECRET_HASH)
        if not rows or not matches:
            raise InvalidCredentials()
        info = _key_info(rows[0][1:])
        if info.revoked_at_us is not None:
            raise KeyRevoked(key_id=key_id)
        if info.expires_at_us is not None and now_us >= info.expires_at_us:
            raise KeyExpired(key_id=key_id, expires_at_us=info.expires_at_us)
        roles = _known_roles(info.roles)
        return Principal(kind="key", id=info.id, name=info.name, roles=roles,
                         permissions=permissions_of(roles, _known_scopes(info.scopes)),
                         expires_at_us=info.expires_at_us)

    # --- users ----------------------------------------------------------------------------

    def add_user(self, username: str, password: str, roles: Iterable[str], *, now_us: int,
                 actor: Actor = SYSTEM) -> UserInfo:
        check_username(username)
        checked_roles = check_roles(roles)
        password_hash = hash_password(check_password(password))  # slow: outside the lock
        user_id = new_id()
        try:
            with self.db.transaction() as connection:
                connection.execute(
                    "INSERT INTO users (id, username, password_hash, roles, disabled, "
                    "created_at_us, creator) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (user_id, username, password_hash, _join(checked_roles), False, now_us,
                     actor_text(actor)),
                )
                _record(connection, now_us, "user.created", "user", user_id, username, actor,
                        {"roles": list(checked_roles)})
        except self.db.dialect.integrity_errors as error:
            # The username's unique constraint decides, so two processes adding the same
            # user at once cannot both succeed.
            raise UserExists(username=username) from error
        return self.user(username)

    def users(self) -> list[UserInfo]:
        """Every user, by username."""
        return [_user_info(row) for row in
                self._rows(f"SELECT {USER_COLUMNS} FROM users ORDER BY username")]

    def user(self, username: str) -> UserInfo:
        rows = self._rows(f"SELECT {USER_COLUMNS} FROM users WHERE username = ?",
                          (username,))
        if not rows:
            raise UnknownUser(username=username)
        return _user_info(rows[0])

    def set_roles(self, username: str, roles: Iterable[str], *, now_us: int,
                  actor: Actor = SYSTEM) -> UserInfo:
        """Replace a user's roles; open sessions have the new ones from their next request.
        The change records the roles before and after."""
        checked = check_roles(roles)
        with self.db.transaction() as connection:
            user_id, before, _ = self._locked_user(connection, username)
            if actor.kind == "user" and actor.id == user_id:
                raise SelfGrant(username=username)
            connection.execute("UPDATE users SET roles = ? WHERE id = ?",
                               (_join(checked), user_id))
            _record(connection, now_us, "user.roles_changed", "user", user_id, username, actor,
                    {"roles_before": list(before), "roles": list(checked)})
        return self.user(username)

    def set_password(self, username: str, password: str, *, now_us: int,
                     actor: Actor = SYSTEM) -> UserInfo:
        """Replace a user's password and end every session of theirs: whoever knew the old one
        is logged out too."""
        password_hash = hash_password(check_password(password))
        with self.db.transaction() as connection:
            user_id, _, _ = self._locked_user(connection, username)
            connection.execute("UPDATE users SET password_hash = ? WHERE id = ?",
                               (password_hash, user_id))
            ended = connection.execute("DELETE FROM user_sessions WHERE user_id = ?",
                                       (user_id,)).rowcount
            _record(connection, now_us, "user.password_changed", "user", user_id, username,
                    actor, {"sessions_ended": max(0, ended)})
        return self.user(username)

    def disable_user(self, username: str, *, now_us: int, actor: Actor = SYSTEM) -> UserInfo:
        """Refuse the user's logins and revoke their sessions (idempotent: disabling a
        disabled user records no second change)."""
        with self.db.transaction() as connection:
            user_id, _, disabled = self._locked_user(connection, username)
            connection.execute("UPDATE users SET disabled = ? WHERE id = ?", (True, user_id))
            revoked = connection.execute(
                "UPDATE user_sessions SET revoked_at_us = ? "
                "WHERE user_id = ? AND revoked_at_us IS NULL", (now_us, user_id)
            ).rowcount
            if not disabled:
                _record(connection, now_us, "user.disabled", "user", user_id, username, actor,
                        {"sessions_revoked": max(0, revoked)})
        return self.user(username)

    def _locked_user(self, connection: Transaction, username: str
                     ) -> tuple[str, tuple[str, ...], bool]:
        """The user's (id, roles, disabled), its row locked for the rest of the transaction
        (PostgreSQL; SQLite's write transaction holds the whole file); `unknown_user` if
        there is none."""
        row = connection.one(
            f"SELECT id, roles, disabled FROM users WHERE username = ?"
            f"{self.db.dialect.for_update}", (username,))
        if row is None:
            raise UnknownUser(username=username)
        return str(row[0]), _split(row[1]), bool(row[2])

    # --- the trail of changes -------------------------------------------------------------

    def changes(self, *, target_kind: str | None = None, target_id: str | None = None,
                limit: int = 100, before: int | None = None) -> list[AuthChange]:
        """Changes to keys and users, newest first, at most `limit` (bounded by
        `CHANGES_LIMIT_MAX`); `before` is the id of the last one seen, for the next page."""
        where = (Where().eq("target_kind", target_kind).eq("target_id", target_id)
                 .before("id", before))
        rows = self._rows(
            f"SELECT {CHANGE_COLUMNS} FROM auth_changes{where} ORDER BY id DESC"
            f"{limit_clause(max(1, min(limit, CHANGES_LIMIT_MAX)))}", where.params)
        return [_change(row) for row in rows]

    # --- sessions -------------------------------------------------------------------------

    def login(self, username: str, password: str, *, now_us: int,
              ttl_s: int = SESSION_TTL_S_DEFAULT) -> tuple[Principal, str, str]:
        """(principal, session token `fps_...`, CSRF token) for a username and password.

        An unknown user and a wrong password fail alike, after the same argon2 work."""
        if not 1 <= ttl_s <= SESSION_TTL_S_MAX:
            raise ValueError(f"session ttl_s must be 1..{SESSION_TTL_S_MAX}, not {ttl_s}")
        if not USERNAME_PATTERN.fullmatch(username) or len(password) > PASSWORD_CHARS_MAX:
            raise InvalidCredentials()
        rows = self._rows("SELECT password_hash FROM users WHERE username = ?", (username,))
        if not rows:
            verify_dummy_password(password)
            raise InvalidCredentials()
        verified_hash: str = rows[0][0]
        if not password_matches(verified_hash, password):
            raise InvalidCredentials()
        new_hash = hash_password(password) if password_needs_rehash(verified_hash) else None
        session_id, secret, csrf = new_id(), new_secret(), new_csrf_token()
        expires_at_us = now_us + ttl_s * US_PER_S
        with self.db.transaction() as connection:
            rows = connection.execute(
                "SELECT id, password_hash, roles, disabled FROM users "
                f"WHERE username = ?{self.db.dialect.for_update}", (username,)
            ).fetchall()
            # The password changed (or the user went) while argon2 ran: the one verified is
            # no longer theirs.
            if not rows or rows[0][1] != verified_hash:
                raise InvalidCredentials()
            user_id, _, roles_text, disabled = rows[0]
            if disabled:
                raise UserDisabled(username=username)
            if new_hash is not None:
                connection.execute("UPDATE users SET password_hash = ? WHERE id = ?",
                                   (new_hash, user_id))
            # Bounds the table: a user's ended sessions go when they log in again.
            connection.execute(
                "DELETE FROM user_sessions WHERE user_id = ? "
                "AND (expires_at_us <= ? OR revoked_at_us IS NOT NULL)", (user_id, now_us)
            )
            connection.execute(
                "INSERT INTO user_sessions (id, user_id, secret_hash, csrf_hash, created_at_us, "
                "expires_at_us) VALUES (?, ?, ?, ?, ?, ?)",
                (session_id, user_id, hash_secret(secret), hash_secret(csrf), now_us,
                 expires_at_us),
            )
        roles = _known_roles(_split(roles_text))
        principal = Principal(kind="user", id=user_id, name=username, roles=roles,
                              permissions=permissions_of(roles), session_id=session_id,
                              csrf_hash=hash_secret(csrf), expires_at_us=expires_at_us)
        return principal, format_token(SESSION_PREFIX, session_id, secret), csrf

    def authenticate_session(self, token: str, *, now_us: int) -> Principal:
        """The user whose session token `token` is; their roles as they are now."""
        session_id, secret = parse_token(token, SESSION_PREFIX)
        rows = self._rows(
            "SELECT s.secret_hash, s.csrf_hash, s.expires_at_us, s.revoked_at_us, u.id, "
            "u.username, u.roles, u.disabled FROM user_sessions s "
            "JOIN users u ON u.id = s.user_id WHERE s.id = ?", (session_id,)
        )
        matches = secret_matches(secret, rows[0][0] if rows else _NO_SECRET_HASH)
        if not rows or not matches:
            raise InvalidCredentials()
        _, csrf_hash, expires_at_us, revoked_at_us, user_id, username, roles_text, disabled = (
            rows[0])
        if disabled:
            raise UserDisabled(username=username)
        if revoked_at_us is not None:
            raise InvalidCredentials()
        if now_us >= expires_at_us:
            raise SessionExpired(expires_at_us=int(expires_at_us))
        roles = _known_roles(_split(roles_text))
        return Principal(kind="user", id=user_id, name=username, roles=roles,
                         permissions=permissions_of(roles), session_id=session_id,
                         csrf_hash=csrf_hash, expires_at_us=int(expires_at_us))

    def check_csrf(self, principal: Principal, csrf_token: str | None) -> bool:
        """Whether `csrf_token` is the one issued with the principal's session. A key has no
        CSRF token (browsers do not send keys on their own): always False."""
        if principal.csrf_hash is None or not csrf_token or len(csrf_token) > TOKEN_TEXT_MAX:
            return False
        return secret_matches(csrf_token, principal.csrf_hash)

    def logout(self, session_id: str, *, now_us: int) -> None:
        """End a session (idempotent; an unknown session is already ended)."""
        with self.db.transaction() as connection:
            connection.execute(
                "UPDATE user_sessions SET revoked_at_us = ? "
                "WHERE id = ? AND revoked_at_us IS NULL", (now_us, session_id)
            )


def _record(connection: Transaction, at_us: int, action: str, target_kind: str,
            target_id: str, target_name: str, actor: Actor, details: Mapping[str, Any]) -> None:
    """Append a change to `auth_changes`, in the transaction that makes it."""
    connection.execute(
        f"INSERT INTO auth_changes ({CHANGE_COLUMNS.removeprefix('id, ')}) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (at_us, action, target_kind, target_id, target_name, actor_text(actor),
         json.dumps(dict(details), sort_keys=True, separators=(",", ":"))))
