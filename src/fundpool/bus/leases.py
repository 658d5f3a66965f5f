"""The leases that let consumer processes share the pools of one projection store: a consumer
applies a pool only while it holds the pool's lease (docs/monitoring.md, ADR 0011).

- PostgreSQL projections: a session advisory lock, `pg_try_advisory_lock(lease_key(schema,
  pool))`, taken on the projection store's own connection, the one its commits use, so a lost
  connection loses the lock and the writes together. Every consumer of the schema also holds a
  shared "member" lock (`members_key(schema)`); each takes at most ceil(pools / members) pools
  and gives back the extra, so processes started with the same pools share them, and when one
  dies (its connection closes, its locks go) the others take its pools on their next poll
  (every second). Its unacknowledged messages come back after `ack_wait`; whatever it had
  committed is a duplicate by then.
- SQLite projections: one consumer process at a time, enforced by an exclusive lock on the file
  `<projections>.consumer-lock`; a second process waits as a standby and takes over when the
  first exits.

The advisory locks' statements are the SQL layer's (`sql/lease.py`, `SessionLocks`).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from typing import IO, Any, Protocol

from fundpool.sql.database import lock_key
from fundpool.sql.lease import SessionLocks
from fundpool.sql.url import DEFAULT_SCHEMA, parse_url


class Leases(Protocol):
    """How a consumer takes, shares and gives back the pools of its projection store."""

    def share(self, pools: int) -> int:
        """How many of `pools` pools this process should hold now."""
        ...

    def take(self, pool: str) -> bool:
        """Take `pool`'s lease if no other process holds it."""
        ...

    def give_back(self, pool: str) -> None: ...

    def leave(self) -> None:
        """Give back every lease, and stop counting as a member (the consumer closes)."""
        ...

    def lost(self) -> None:
        """The projection store's connection was lost, and every lease with it."""
        ...


def lease_key(schema: str, pool: str) -> int:
    """The advisory lock a consumer holds while it applies `pool` into `schema`: a signed
    64-bit number, the same in every process."""
    return lock_key(f"fundpool.projector:{schema}:{pool}")


def members_key(schema: str) -> int:
    """The lock every consumer of `schema` holds shared, so each can count the others."""
    return lock_key(f"fundpool.projector-members:{schema}")


class AdvisoryLeases:
    """The leases of PostgreSQL projections: session advisory locks on `connection()`, the
    projection store's own connection (the lease and the commits share it, so a lost
    connection takes both: a stale holder can never commit)."""

    def __init__(self, schema: str, connection: Callable[[], Any]) -> None:
        self.schema = schema
        self._locks = SessionLocks(connection)
        self._member = False

    def members(self) -> int:
        """How many consumers of the schema there are, this one included (it joins first)."""
        key = members_key(self.schema)
        if not self._member:
            self._locks.lock_shared(key)
            self._member = True
        return self._locks.holders(key)

    def share(self, pools: int) -> int:
        return math.ceil(pools / max(1, self.members()))

    def take(self, pool: str) -> bool:
        return self._locks.try_lock(lease_key(self.schema, pool))

    def give_back(self, pool: str) -> None:
        self._locks.unlock(lease_key(self.schema, pool))

    def leave(self) -> None:
        with contextlib.suppress(Exception):
            self._locks.unlock_all()
        self._member = False

    def lost(self) -> None:
        self._member = False


class FileLease:
    """An exclusive lock on a file, `<projections>.consumer-lock`: the one SQLite projection
    consumer. It holds every pool or none; a second process waits as a standby."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._file: IO[bytes] | None = None

    def acquire(self) -> bool:
        if self._file is not None:
            return True
        import fcntl

        handle = open(self.path, "ab")  # noqa: SIM115 - held open while the lease is
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        self._file = handle
        return True

    def release(self) -> None:
        if self._file is not None:
            self._file.close()  # closing the file releases its lock
            self._file = None


    def share(self, pools: int) -> int:
        return pools

    def take(self, pool: str) -> bool:
        return self.acquire()

    def give_back(self, pool: str) -> None:
        """The file stays locked while the process holds any pool: it is given up on leave."""

    def leave(self) -> None:
        self.release()

    def lost(self) -> None:
        self.release()


class NoLeases:
    """Projections in memory: nothing to share with another process."""

    def share(self, pools: int) -> int:
        return pools

    def take(self, pool: str) -> bool:
        return True

    def give_back(self, pool: str) -> None:
        pass

    def leave(self) -> None:
        pass

    def lost(self) -> None:
        pass


def leases_for(url: str, connection: Callable[[], Any]) -> Leases:
    """The leases of the projection store at `url`, whose current connection `connection()`
    gives (it changes when the store is opened again after a lost connection)."""
    location = parse_url(url)
    if location.is_postgres:
        return AdvisoryLeases(location.schema or DEFAULT_SCHEMA, connection)
    if location.target == ":memory:":
        return NoLeases()
    return FileLease(f"{location.target}.consumer-lock")
