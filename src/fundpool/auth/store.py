"""Where API keys, users and their sessions are kept, and how a caller proves who it is.

The tables live beside the ledger (the same SQLite file or PostgreSQL schema) on a connection of
their own, as the projections do. The HTTP server calls the store from a thread pool, so one lock
guards the connection; argon2 runs outside it, so a login does not hold up other requests.

The store reads no clock: every time is integer microseconds since the epoch (UTC), passed in as
`now_us`. Authentication fails with a subclass of `AuthenticationFailed` (errors.py); a detail
never tells an unknown key or user from a wrong secret or password.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

from fundpool.auth.errors import (
    KEY_NAME_CHARS_MAX,
    PASSWORD_CHARS_MAX,
    PASSWORD_CHARS_MIN,
    InvalidCredentials,
    InvalidKeyExpiry,
    InvalidKeyName,
    InvalidRoles,
    InvalidUsername,
    KeyAlreadyRotated,
    KeyExpired,
    KeyRevoked,
    SessionExpired,
    UnknownKey,
    UnknownUser,
    UserDisabled,
    UserExists,
    WeakPassword,
)
from fundpool.auth.roles import Permission, Role, permissions_of
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
from fundpool.core.errors import StoreError
from fundpool.stores import split_schema
from fundpool.stores.projection_sql import ProjectionStore, connect_postgres, connect_sqlite

US_PER_S = 1_000_000
SESSION_TTL_S_DEFAULT = 8 * 3600
SESSION_TTL_S_MAX = 30 * 24 * 3600
ROTATION_GRACE_S_MAX = 30 * 24 * 3600
USERNAME_PATTERN = re.compile(r"[A-Za-z0-9_.@-]{1,64}")
# A dummy hash to compare with when no row has the id, so both paths do the same work.
_NO_SECRET_HASH = "0" * 64

# --- values ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling and what they may do: an API key, or a user through a session."""

    kind: Literal["key", "user"]
    id: str  # the key's id or the user's id
    name: str  # the key's name or the username
    roles: frozenset[Role]
    permissions: frozenset[Permission]
    session_id: str | None = None
    csrf_hash: str | None = None  # sessions only
    expires_at_us: int | None = None


@dataclass(frozen=True, slots=True)
class ApiKeyInfo:
    """An API key as it may be shown: never its secret, nor the secret's hash."""

    id: str
    name: str
    roles: tuple[str, ...]
    scopes: tuple[str, ...] | None
    created_at_us: int
    expires_at_us: int | None
    revoked_at_us: int | None
    replaced_by: str | None
    created_by: str

    def state(self, now_us: int) -> Literal["active", "expired", "revoked"]:
        if self.revoked_at_us is not None:
            return "revoked"
        if self.expires_at_us is not None and now_us >= self.expires_at_us:
            return "expired"
        return "active"


@dataclass(frozen=True, slots=True)
class UserInfo:
    """A user as it may be shown: never the password hash."""

    id: str
    username: str
    roles: tuple[str, ...]
    disabled: bool
    created_at_us: int


# --- validation ------------------------------------------------------------------------------


def check_roles(roles: Iterable[str]) -> tuple[Role, ...]:
    """Known roles, sorted and without repeats; none at all is `InvalidRoles`."""
    checked: set[Role] = set()
    for role in roles:
        try:
            checked.add(Role(role))
        except ValueError:
            raise InvalidRoles(f"unknown role {role!r}", role=role,
                               known=[r.value for r in Role]) from None
    if not checked:
        raise InvalidRoles("give at least one role", known=[r.value for r in Role])
    return tuple(sorted(checked))


def check_scopes(scopes: Iterable[str] | None) -> tuple[Permission, ...] | None:
    """Known permissions, sorted and without repeats; None is no narrowing. An empty list
    would leave a key that can do nothing, which is always a mistake."""
    if scopes is None:
        return None
    checked: set[Permission] = set()
    for scope in scopes:
        try:
            checked.add(Permission(scope))
        except ValueError:
            raise InvalidRoles(f"unknown scope {scope!r}", scope=scope,
                               known=[p.value for p in Permission]) from None
    if not checked:
        raise InvalidRoles("an empty scope list grants nothing; omit scopes instead")
    return tuple(sorted(checked))


def check_username(username: str) -> str:
    if not USERNAME_PATTERN.fullmatch(username):
        raise InvalidUsername(username=username[:80])
    return username


def check_password(password: str) -> str:
    if not PASSWORD_CHARS_MIN <= len(password) <= PASSWORD_CHARS_MAX:
        raise WeakPassword(characters=len(password))
    return password


def check_key_name(name: str) -> str:
    if not 1 <= len(name) <= KEY_NAME_CHARS_MAX or not name.isprintable():
        raise InvalidKeyName(name=name[:80])
    return name


def _join(values: Iterable[str]) -> str:
    return ",".join(sorted(values))


def _split(text: str | None) -> tuple[str, ...]:
    return tuple(value for value in (text or "").split(",") if value)


def _known_roles(values: Iterable[str]) -> frozenset[Role]:
    # A role this version does not know (written by a newer one) grants nothing: fail closed.
    known = {r.value for r in Role}
    return frozenset(Role(value) for value in values if value in known)


def _known_scopes(values: Iterable[str] | None) -> frozenset[Permission] | None:
    # An unknown scope narrows to nothing more than the known ones do: fail closed as well.
    if values is None:
        return None
    known = {p.value for p in Permission}
    return frozenset(Permission(value) for value in values if value in known)


# --- tables ----------------------------------------------------------------------------------

SQLITE_AUTH_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    roles TEXT NOT NULL,
    scopes TEXT,
    created_at_us INTEGER NOT NULL,
    expires_at_us INTEGER,
    revoked_at_us INTEGER,
    replaced_by TEXT,
    created_by TEXT NOT NULL
) STRICT, WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS users (
    id TEXT PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    roles TEXT NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0,
    created_at_us INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS user_sessions (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id),
    secret_hash TEXT NOT NULL,
    csrf_hash TEXT NOT NULL,
    created_at_us INTEGER NOT NULL,
    expires_at_us INTEGER NOT NULL,
    revoked_at_us INTEGER
) STRICT, WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS user_sessions_by_user ON user_sessions (user_id);
"""

POSTGRES_AUTH_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT COLLATE "C" PRIMARY KEY,
    name TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    roles TEXT NOT NULL,
    scopes TEXT,
    created_at_us BIGINT NOT NULL,
    expires_at_us BIGINT,
    revoked_at_us BIGINT,
    replaced_by TEXT COLLATE "C",
    created_by TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS users (
    id TEXT COLLATE "C" PRIMARY KEY,
    username TEXT COLLATE "C" NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    roles TEXT NOT NULL,
    disabled BOOLEAN NOT NULL DEFAULT FALSE,
    created_at_us BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS user_sessions (
    id TEXT COLLATE "C" PRIMARY KEY,
    user_id TEXT COLLATE "C" NOT NULL REFERENCES users (id),
    secret_hash TEXT NOT NULL,
    csrf_hash TEXT NOT NULL,
    created_at_us BIGINT NOT NULL,
    expires_at_us BIGINT NOT NULL,
    revoked_at_us BIGINT
);
CREATE INDEX IF NOT EXISTS user_sessions_by_user ON user_sessions (user_id);
"""

KEY_COLUMNS = ("id, name, roles, scopes, created_at_us, expires_at_us, revoked_at_us, "
               "replaced_by, created_by")
USER_COLUMNS = "id, username, roles, disabled, created_at_us"


def _lock_key(name: str) -> int:
    """A signed 64-bit advisory lock key for creating the auth tables under schema `name`."""
    digest = hashlib.sha256(f"fundpool.auth:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _integrity_errors(pg: bool) -> tuple[type[Exception], ...]:
    if pg:
        import psycopg

        return (psycopg.IntegrityError,)
    return (sqlite3.IntegrityError,)


def _key_info(row: Sequence[Any]) -> ApiKeyInfo:
    key_id, name, roles, scopes, created, expires, revoked, replaced_by, created_by = row
    return ApiKeyInfo(
        id=key_id, name=name, roles=_split(roles),
        scopes=None if scopes is None else _split(scopes),
        created_at_us=int(created),
        expires_at_us=None if expires is None else int(expires),
        revoked_at_us=None if revoked is None else int(revoked),
        replaced_by=replaced_by, created_by=created_by,
    )


def _user_info(row: Sequence[Any]) -> UserInfo:
    user_id, username, roles, disabled, created = row
    return UserInfo(id=user_id, username=username, roles=_split(roles), disabled=bool(disabled),
                    created_at_us=int(created))


# --- the store -------------------------------------------------------------------------------


class AuthStore:
    """API keys, users and sessions on a connection of their own (`sqlite:///…` or
    `postgresql://…?schema=NAME`). Safe to share between threads."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._pg = url.startswith(("postgresql://", "postgres://"))
        self._mark = "%s" if self._pg else "?"
        # Within a transaction, PostgreSQL must lock the rows it reads to decide a write;
        # SQLite's BEGIN IMMEDIATE already holds the whole database.
        self._for_update = " FOR UPDATE" if self._pg else ""
        self._integrity_errors = _integrity_errors(self._pg)
        self._lock = threading.Lock()
        self._closed = False
        # Initialisers of the same schema's auth tables take turns under a lock named by it.
        self._schema = (split_schema(url)[1] or "fundpool") if self._pg else ""
        self._connection: Any = self._connect()
        self.initialise()

    @classmethod
    def beside(cls, ledger_store: Any) -> AuthStore:
        """The auth tables in the same database (and schema) as a ledger store."""
        return cls(ProjectionStore.url_beside(ledger_store))

    def _connect(self) -> Any:
        if self._pg:
            return connect_postgres(self.url)
        lite = connect_sqlite(self.url)
        lite.execute("PRAGMA foreign_keys=ON")
        return lite

    def _conn(self) -> Any:
        """The connection, opened again if the server dropped it. Call with the lock held."""
        if self._closed:
            raise StoreError("the auth store is closed")
        if self._pg and (self._connection.broken or self._connection.closed):
            self._connection = self._connect()
        return self._connection

    def initialise(self) -> None:
        """Create the tables if they are not there (safe to run again, and concurrently)."""
        with self._lock:
            connection = self._conn()
            if self._pg:
                with connection.transaction():
                    connection.execute("SELECT pg_advisory_xact_lock(%s)",
                                       (_lock_key(self._schema),))
                    connection.execute(POSTGRES_AUTH_SCHEMA)
            else:
                connection.executescript(SQLITE_AUTH_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._connection.close()

    def _rows(self, query: str, params: Sequence[Any] = ()) -> list[Any]:
        with self._lock:
            return list(self._conn().execute(query, params).fetchall())

    @contextmanager
    def _transaction(self) -> Iterator[Any]:
        """The connection in one transaction, with the lock held throughout."""
        with self._lock:
            connection = self._conn()
            if self._pg:
                with connection.transaction():
                    yield connection
                return
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield connection
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")

    # --- API keys -------------------------------------------------------------------------

    def create_key(
        self, name: str, roles: Iterable[str], *, scopes: Iterable[str] | None = None,
        expires_at_us: int | None = None, now_us: int, created_by: str = "cli",
    ) -> tuple[ApiKeyInfo, str]:
        """A new API key, and its token `fpk_<id>_<secret>`: shown this once, never stored."""
        check_key_name(name)
        checked_roles = check_roles(roles)
        checked_scopes = check_scopes(scopes)
        if expires_at_us is not None and expires_at_us <= now_us:
            raise InvalidKeyExpiry(expires_at_us=expires_at_us, now_us=now_us)
        key_id, secret = new_id(), new_secret()
        with self._transaction() as connection:
            self._insert_key(connection, key_id, name, hash_secret(secret), checked_roles,
                             checked_scopes, now_us, expires_at_us, created_by)
        return self.key(key_id), format_token(KEY_PREFIX, key_id, secret)

    def _insert_key(
        self, connection: Any, key_id: str, name: str, secret_hash: str, roles: Iterable[str],
        scopes: Iterable[str] | None, now_us: int, expires_at_us: int | None, created_by: str,
    ) -> None:
        m = self._mark
        connection.execute(
            "INSERT INTO api_keys (id, name, secret_hash, roles, scopes, created_at_us, "
            f"expires_at_us, created_by) VALUES ({m}, {m}, {m}, {m}, {m}, {m}, {m}, {m})",
            (key_id, name, secret_hash, _join(roles), None if scopes is None else _join(scopes),
             now_us, expires_at_us, created_by),
        )

    def keys(self) -> list[ApiKeyInfo]:
        """Every API key, oldest first."""
        rows = self._rows(f"SELECT {KEY_COLUMNS} FROM api_keys ORDER BY created_at_us, id")
        return [_key_info(row) for row in rows]

    def key(self, key_id: str) -> ApiKeyInfo:
        rows = self._rows(f"SELECT {KEY_COLUMNS} FROM api_keys WHERE id = {self._mark}",
                          (key_id,))
        if not rows:
            raise UnknownKey(key_id=key_id)
        return _key_info(rows[0])

    def revoke_key(self, key_id: str, *, now_us: int) -> ApiKeyInfo:
        """Stop a key at once. Revoking it again keeps the first revocation's time."""
        m = self._mark
        with self._transaction() as connection:
            updated = connection.execute(
                f"UPDATE api_keys SET revoked_at_us = COALESCE(revoked_at_us, {m}) WHERE id = {m}",
                (now_us, key_id),
            ).rowcount
        if not updated:
            raise UnknownKey(key_id=key_id)
        return self.key(key_id)

    def rotate_key(self, key_id: str, *, now_us: int, grace_s: int = 0
                   ) -> tuple[ApiKeyInfo, str]:
        """A new key with the old one's name, roles, scopes and expiry; the old one keeps
        working for `grace_s` seconds (never past its own expiry), so callers can switch."""
        if not 0 <= grace_s <= ROTATION_GRACE_S_MAX:
            raise InvalidKeyExpiry("the grace period is out of bounds", grace_s=grace_s,
                                   max_s=ROTATION_GRACE_S_MAX)
        m = self._mark
        new_key_id, secret = new_id(), new_secret()
        with self._transaction() as connection:
            rows = connection.execute(
                f"SELECT {KEY_COLUMNS} FROM api_keys WHERE id = {m}{self._for_update}",
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
                             old.scopes, now_us, old.expires_at_us, old.created_by)
            connection.execute(
                f"UPDATE api_keys SET replaced_by = {m}, expires_at_us = {m} WHERE id = {m}",
                (new_key_id, old_expires_at_us, key_id),
            )
        return self.key(new_key_id), format_token(KEY_PREFIX, new_key_id, secret)

    def authenticate_key(self, token: str, *, now_us: int) -> Principal:
        """The caller holding the API key `token`."""
        key_id, secret = parse_token(token, KEY_PREFIX)
        rows = self._rows(
            f"SELECT secret_hash, {KEY_COLUMNS} FROM api_keys WHERE id = {self._mark}", (key_id,)
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

    def add_user(self, username: str, password: str, roles: Iterable[str], *, now_us: int
                 ) -> UserInfo:
        check_username(username)
        checked_roles = check_roles(roles)
        password_hash = hash_password(check_password(password))  # slow: outside the lock
        m = self._mark
        user_id = new_id()
        try:
            with self._transaction() as connection:
                connection.execute(
                    "INSERT INTO users (id, username, password_hash, roles, disabled, "
                    f"created_at_us) VALUES ({m}, {m}, {m}, {m}, {m}, {m})",
                    (user_id, username, password_hash, _join(checked_roles), False, now_us),
                )
        except self._integrity_errors as error:
            # The username's unique constraint decides, so two processes adding the same
            # user at once cannot both succeed.
            raise UserExists(username=username) from error
        return self.user(username)

    def users(self) -> list[UserInfo]:
        """Every user, by username."""
        return [_user_info(row) for row in
                self._rows(f"SELECT {USER_COLUMNS} FROM users ORDER BY username")]

    def user(self, username: str) -> UserInfo:
        rows = self._rows(f"SELECT {USER_COLUMNS} FROM users WHERE username = {self._mark}",
                          (username,))
        if not rows:
            raise UnknownUser(username=username)
        return _user_info(rows[0])

    def set_roles(self, username: str, roles: Iterable[str]) -> UserInfo:
        """Replace a user's roles; open sessions have the new ones from their next request."""
        checked = check_roles(roles)
        m = self._mark
        with self._transaction() as connection:
            updated = connection.execute(
                f"UPDATE users SET roles = {m} WHERE username = {m}", (_join(checked), username)
            ).rowcount
        if not updated:
            raise UnknownUser(username=username)
        return self.user(username)

    def set_password(self, username: str, password: str) -> UserInfo:
        """Replace a user's password and end every session of theirs: whoever knew the old one
        is logged out too."""
        password_hash = hash_password(check_password(password))
        m = self._mark
        with self._transaction() as connection:
            rows = connection.execute(
                f"SELECT id FROM users WHERE username = {m}{self._for_update}", (username,)
            ).fetchall()
            if not rows:
                raise UnknownUser(username=username)
            connection.execute(f"UPDATE users SET password_hash = {m} WHERE id = {m}",
                               (password_hash, rows[0][0]))
            connection.execute(f"DELETE FROM user_sessions WHERE user_id = {m}", (rows[0][0],))
        return self.user(username)

    def disable_user(self, username: str, *, now_us: int) -> UserInfo:
        """Refuse the user's logins and revoke their sessions (idempotent)."""
        m = self._mark
        with self._transaction() as connection:
            rows = connection.execute(
                f"SELECT id FROM users WHERE username = {m}{self._for_update}", (username,)
            ).fetchall()
            if not rows:
                raise UnknownUser(username=username)
            connection.execute(f"UPDATE users SET disabled = {m} WHERE id = {m}",
                               (True, rows[0][0]))
            connection.execute(
                f"UPDATE user_sessions SET revoked_at_us = {m} "
                f"WHERE user_id = {m} AND revoked_at_us IS NULL", (now_us, rows[0][0])
            )
        return self.user(username)

    # --- sessions -------------------------------------------------------------------------

    def login(self, username: str, password: str, *, now_us: int,
              ttl_s: int = SESSION_TTL_S_DEFAULT) -> tuple[Principal, str, str]:
        """(principal, session token `fps_...`, CSRF token) for a username and password.

        An unknown user and a wrong password fail alike, after the same argon2 work."""
        if not 1 <= ttl_s <= SESSION_TTL_S_MAX:
            raise ValueError(f"session ttl_s must be 1..{SESSION_TTL_S_MAX}, not {ttl_s}")
        if not USERNAME_PATTERN.fullmatch(username) or len(password) > PASSWORD_CHARS_MAX:
            raise InvalidCredentials()
        m = self._mark
        rows = self._rows(f"SELECT password_hash FROM users WHERE username = {m}", (username,))
        if not rows:
            verify_dummy_password(password)
            raise InvalidCredentials()
        verified_hash: str = rows[0][0]
        if not password_matches(verified_hash, password):
            raise InvalidCredentials()
        new_hash = hash_password(password) if password_needs_rehash(verified_hash) else None
        session_id, secret, csrf = new_id(), new_secret(), new_csrf_token()
        expires_at_us = now_us + ttl_s * US_PER_S
        with self._transaction() as connection:
            rows = connection.execute(
                "SELECT id, password_hash, roles, disabled FROM users "
                f"WHERE username = {m}{self._for_update}", (username,)
            ).fetchall()
            # The password changed (or the user went) while argon2 ran: the one verified is
            # no longer theirs.
            if not rows or rows[0][1] != verified_hash:
                raise InvalidCredentials()
            user_id, _, roles_text, disabled = rows[0]
            if disabled:
                raise UserDisabled(username=username)
            if new_hash is not None:
                connection.execute(f"UPDATE users SET password_hash = {m} WHERE id = {m}",
                                   (new_hash, user_id))
            # Bounds the table: a user's ended sessions go when they log in again.
            connection.execute(
                f"DELETE FROM user_sessions WHERE user_id = {m} "
                f"AND (expires_at_us <= {m} OR revoked_at_us IS NOT NULL)", (user_id, now_us)
            )
            connection.execute(
                "INSERT INTO user_sessions (id, user_id, secret_hash, csrf_hash, created_at_us, "
                f"expires_at_us) VALUES ({m}, {m}, {m}, {m}, {m}, {m})",
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
            f"JOIN users u ON u.id = s.user_id WHERE s.id = {self._mark}", (session_id,)
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
        m = self._mark
        with self._transaction() as connection:
            connection.execute(
                f"UPDATE user_sessions SET revoked_at_us = {m} "
                f"WHERE id = {m} AND revoked_at_us IS NULL", (now_us, session_id)
            )
