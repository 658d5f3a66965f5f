"""A lease one process holds among many: a PostgreSQL session advisory lock on a connection of
its own, so the lease ends when the process or its connection does (a worker that dies gives it
up at once, and the next one to ask takes it over). `SessionLocks` are the same locks on a
connection another part owns (the projection consumers' leases, bus/leases.py): every
statement of the advisory locks is in this module."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from fundpool.core.errors import StoreError
from fundpool.sql.database import Database


class AdvisoryLease:
    """The lease named `name` in `db`'s schema. Not for SQLite: one process owns that file."""

    def __init__(self, db: Database, name: str) -> None:
        if not db.is_postgres:
            raise ValueError("an advisory lease needs PostgreSQL")
        self._db = db
        self._key = db.lock_key(name)

    def try_take(self) -> bool:
        """Take the lease if nobody holds it; True when this process holds it now. A broken
        connection raises (the caller retries later: the lease was lost with it)."""
        with self._db.lock:
            connection = self._db.current  # never opened again: the lease died with it
            if connection is None or connection.broken or connection.closed:
                raise StoreError("the lease's connection is gone", store=self._db.shown)
            return SessionLocks(lambda: connection).try_lock(self._key)

    def close(self) -> None:
        """Give the lease up (with the connection that holds it)."""
        self._db.close()


class SessionLocks:
    """PostgreSQL session advisory locks, keyed by `sql.database.lock_key`, on the connection
    `connection()` gives now (the caller's own, so that losing it loses the locks with it)."""

    def __init__(self, connection: Callable[[], Any]) -> None:
        self._connection = connection

    def _one(self, query: str, params: Sequence[Any] = ()) -> Any:
        return self._connection().execute(query, params).fetchone()[0]

    def try_lock(self, key: int) -> bool:
        return bool(self._one("SELECT pg_try_advisory_lock(%s)", (key,)))

    def unlock(self, key: int) -> None:
        self._one("SELECT pg_advisory_unlock(%s)", (key,))

    def lock_shared(self, key: int) -> None:
        """Wait for, and hold, a shared lock on `key`."""
        self._one("SELECT pg_advisory_lock_shared(%s)", (key,))

    def holders(self, key: int) -> int:
        """How many sessions of this database hold a lock on `key` (shared or not)."""
        unsigned = key & 0xFFFF_FFFF_FFFF_FFFF
        return int(self._one(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "AND classid = %s::bigint::oid AND objid = %s::bigint::oid AND objsubid = 1",
            (unsigned >> 32, unsigned & 0xFFFF_FFFF),
        ))

    def unlock_all(self) -> None:
        self._connection().execute("SELECT pg_advisory_unlock_all()")
