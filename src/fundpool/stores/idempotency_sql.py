"""The API's kept answers for `Idempotency-Key` (server/v1/idempotency.py says when they are
used): one row per (caller, key), in the ledger's database on a connection of their own, at the
`api` component's version. Each statement runs on its own (autocommit); the row's state and its
start time decide who holds a key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fundpool.sql import migrate
from fundpool.sql.database import Database, database_of

IN_PROGRESS_S = 60


@dataclass(frozen=True, slots=True)
class _Found:
    request_hash: str
    state: str
    status: int | None
    body: str | None
    started_at_us: int


class IdempotencyStore:
    """The kept responses, on a connection of their own (SQLite file or PostgreSQL schema)."""

    def __init__(self, url: str) -> None:
        self.db = Database(url)
        self.url = self.db.url
        self.db.create()
        # Workers starting together take turns under the migration lock.
        migrate.ensure(self.db, migrate.API)
        self._lock = self.db.lock

    @classmethod
    def beside(cls, ledger_store: Any) -> IdempotencyStore:
        return cls(database_of(ledger_store).url)

    @property
    def _connection(self) -> Any:
        return self.db.connection()

    def close(self) -> None:
        self.db.close()

    def _sql(self, query: str) -> str:
        return self.db.dialect.sql(query)

    def claim(self, caller: str, key: str, digest: str, now_us: int) -> _Found | None:
        """Take the key for a new request (None), or say what holds it."""
        with self._lock:
            inserted = self._connection.execute(self._sql(
                "INSERT INTO api_idempotency (caller, key, request_hash, state, started_at_us) "
                "VALUES (?, ?, ?, 'running', ?) ON CONFLICT (caller, key) DO NOTHING"),
                (caller, key, digest, now_us)).rowcount
            if inserted == 1:
                return None
            row = self._connection.execute(self._sql(
                "SELECT request_hash, state, status, body, started_at_us FROM api_idempotency "
                "WHERE caller = ? AND key = ?"), (caller, key)).fetchone()
            if row is None:  # freed in between: try once more
                return self._retake(caller, key, digest, now_us)
            found = _Found(*row)
            if found.state == "running" and now_us - found.started_at_us > IN_PROGRESS_S * 10**6 \
                    and found.request_hash == digest:
                # The request that took the key died with its worker: take it over.
                taken = self._connection.execute(self._sql(
                    "UPDATE api_idempotency SET started_at_us = ? WHERE caller = ? AND key = ? "
                    "AND state = 'running' AND started_at_us = ?"),
                    (now_us, caller, key, found.started_at_us)).rowcount
                if taken == 1:
                    return None
            return found

    def _retake(self, caller: str, key: str, digest: str, now_us: int) -> _Found | None:
        inserted = self._connection.execute(self._sql(
            "INSERT INTO api_idempotency (caller, key, request_hash, state, started_at_us) "
            "VALUES (?, ?, ?, 'running', ?) ON CONFLICT (caller, key) DO NOTHING"),
            (caller, key, digest, now_us)).rowcount
        return None if inserted == 1 else _Found(digest, "running", None, None, now_us)

    def find(self, caller: str, key: str) -> _Found | None:
        with self._lock:
            row = self._connection.execute(self._sql(
                "SELECT request_hash, state, status, body, started_at_us FROM api_idempotency "
                "WHERE caller = ? AND key = ?"), (caller, key)).fetchone()
        return None if row is None else _Found(*row)

    def keep(self, caller: str, key: str, status: int, body: bytes, now_us: int) -> None:
        """Keep a record under (caller, key) whatever was there: for the API's own small
        records (a payout file's payments), never for a caller's idempotency key."""
        with self._lock:
            self._connection.execute(self._sql(
                "INSERT INTO api_idempotency (caller, key, request_hash, state, status, body, "
                "started_at_us) VALUES (?, ?, '', 'done', ?, ?, ?) ON CONFLICT (caller, key) "
                "DO UPDATE SET state = 'done', status = excluded.status, body = excluded.body, "
                "started_at_us = excluded.started_at_us"),
                (caller, key, status, body.decode(), now_us))

    def prune(self, before_us: int, *, keep_prefix: str = "payout-file:") -> int:
        """Forget the answers kept for requests made before `before_us` (a retry that late
        is a new request); the API's own records under `keep_prefix` stay."""
        with self._lock:
            return int(self._connection.execute(self._sql(
                "DELETE FROM api_idempotency WHERE state = 'done' AND started_at_us < ? "
                "AND caller NOT LIKE ?"), (before_us, keep_prefix + "%")).rowcount)

    def finish(self, caller: str, key: str, status: int, body: bytes) -> None:
        with self._lock:
            self._connection.execute(self._sql(
                "UPDATE api_idempotency SET state = 'done', status = ?, body = ? "
                "WHERE caller = ? AND key = ?"), (status, body.decode(), caller, key))

    def release(self, caller: str, key: str) -> None:
        with self._lock:
            self._connection.execute(self._sql(
                "DELETE FROM api_idempotency WHERE caller = ? AND key = ? AND state = 'running'"),
                (caller, key))


