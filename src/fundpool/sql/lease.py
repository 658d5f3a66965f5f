"""A lease one process holds among many: a PostgreSQL session advisory lock on a connection of
its own, so the lease ends when the process or its connection does (a worker that dies gives it
up at once, and the next one to ask takes it over)."""

from __future__ import annotations

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
            row = connection.execute("SELECT pg_try_advisory_lock(%s)", (self._key,)).fetchone()
        return bool(row and row[0])

    def close(self) -> None:
        """Give the lease up (with the connection that holds it)."""
        self._db.close()
