"""Where projections are kept: the same SQLite file or PostgreSQL schema as the ledger by
default, or any other (a consumer process on another machine), on a connection of their own.

A consumer writes the figures an event batch changed and its cursor (the last `seq` applied per
pool) in one transaction, so after a crash it resumes exactly where the figures stand: an event
applied is never applied again, and one not applied is not skipped. Values are decimal text:
sums of amounts may pass 2^63.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fundpool.core.errors import StoreError

SQLITE_PROJECTION_SCHEMA = """
CREATE TABLE IF NOT EXISTS projection_cells (
    pool TEXT NOT NULL,
    name TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (pool, name, key)
) STRICT, WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS projection_series (
    pool TEXT NOT NULL,
    metric TEXT NOT NULL,
    res TEXT NOT NULL,
    bucket_us INTEGER NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (pool, metric, res, bucket_us)
) STRICT, WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS projection_cursors (
    pool TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    at_us INTEGER NOT NULL,
    pos INTEGER NOT NULL DEFAULT 0,
    duplicates INTEGER NOT NULL DEFAULT 0,
    ignored INTEGER NOT NULL DEFAULT 0,
    rejected INTEGER NOT NULL DEFAULT 0
) STRICT, WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS projection_rejects (
    pool TEXT NOT NULL,
    seq INTEGER NOT NULL,
    event_id TEXT,
    code TEXT NOT NULL,
    detail TEXT NOT NULL,
    PRIMARY KEY (pool, seq)
) STRICT, WITHOUT ROWID;
"""

POSTGRES_PROJECTION_SCHEMA = """
CREATE TABLE IF NOT EXISTS projection_cells (
    pool TEXT COLLATE "C" NOT NULL,
    name TEXT COLLATE "C" NOT NULL,
    key TEXT COLLATE "C" NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (pool, name, key)
);
CREATE TABLE IF NOT EXISTS projection_series (
    pool TEXT COLLATE "C" NOT NULL,
    metric TEXT COLLATE "C" NOT NULL,
    res TEXT COLLATE "C" NOT NULL,
    bucket_us BIGINT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (pool, metric, res, bucket_us)
);
CREATE TABLE IF NOT EXISTS projection_cursors (
    pool TEXT COLLATE "C" PRIMARY KEY,
    seq BIGINT NOT NULL,
    at_us BIGINT NOT NULL,
    pos BIGINT NOT NULL DEFAULT 0,
    duplicates BIGINT NOT NULL DEFAULT 0,
    ignored BIGINT NOT NULL DEFAULT 0,
    rejected BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS projection_rejects (
    pool TEXT COLLATE "C" NOT NULL,
    seq BIGINT NOT NULL,
    event_id TEXT,
    code TEXT NOT NULL,
    detail TEXT NOT NULL,
    PRIMARY KEY (pool, seq)
);
"""


def _schema_lock_key(name: str) -> int:
    """A signed 64-bit advisory lock key for creating projection tables under `name`."""
    digest = hashlib.sha256(f"fundpool.projections:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def connect_sqlite(url: str) -> sqlite3.Connection:
    """An autocommit connection to `sqlite:///PATH` (WAL, durable commits), shared between
    threads under the caller's lock, waiting up to 30 s for the file's write lock."""
    path = url.removeprefix("sqlite:///")
    if path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    lite = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30.0)
    lite.execute("PRAGMA journal_mode=WAL")
    lite.execute("PRAGMA synchronous=FULL")
    return lite


def connect_postgres(url: str) -> Any:
    """An autocommit connection to `url` (`?schema=NAME`, default `fundpool`), with the schema
    created if needed and on the search path."""
    import psycopg
    from psycopg import sql

    from fundpool.stores import split_schema

    connect_url, schema = split_schema(url)
    try:
        connection = psycopg.connect(connect_url, autocommit=True, connect_timeout=10)
    except psycopg.OperationalError as error:
        raise StoreError("could not connect to PostgreSQL", reason=str(error)) from error
    schema = schema or "fundpool"
    with connection.transaction():
        # Processes starting together would race on CREATE SCHEMA (a unique violation): they
        # take turns, as the ledger's initialisers do.
        connection.execute("SELECT pg_advisory_xact_lock(%s)", (_schema_lock_key(schema),))
        connection.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(
            sql.Identifier(schema)))
    connection.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
    return connection


@dataclass(frozen=True, slots=True)
class Cursor:
    """How far a pool's projection has got, with what it counted but did not apply."""

    pool: str
    seq: int = 0
    at_us: int = 0
    pos: int = 0  # the outbox position, for the in-process feed
    duplicates: int = 0
    ignored: int = 0
    rejected: int = 0


@dataclass(frozen=True, slots=True)
class Reject:
    pool: str
    seq: int
    event_id: str | None
    code: str
    detail: str


@dataclass(frozen=True, slots=True)
class ProjectionWrite:
    """What one commit writes for one pool."""

    cursor: Cursor
    cells: Sequence[tuple[str, str, int]]
    series: Sequence[tuple[str, str, int, int]]
    prune_before: dict[str, int]  # resolution -> first bucket start kept
    rejects: Sequence[Reject] = ()


class ProjectionStore:
    """Projection tables on a connection of their own (`sqlite:///…` or `postgresql://…`)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._pg = url.startswith(("postgresql://", "postgres://"))
        self._mark = "%s" if self._pg else "?"
        self._connection: Any = self._connect()
        self.initialise()

    @classmethod
    def beside(cls, ledger_store: Any) -> ProjectionStore:
        """Projections in the same database (and schema) as a ledger store."""
        return cls(cls.url_beside(ledger_store))

    @staticmethod
    def url_beside(ledger_store: Any) -> str:
        """The URL of a connection of one's own to a ledger store's database (and schema):
        for the tables that live beside the ledger's (projections, credentials, kept
        responses)."""
        from fundpool.stores.postgres import PostgresStore
        from fundpool.stores.sqlite import SqliteStore

        if isinstance(ledger_store, SqliteStore):
            if ledger_store.path == ":memory:":
                return "sqlite:///:memory:"
            return f"sqlite:///{ledger_store.path}"
        if isinstance(ledger_store, PostgresStore):
            separator = "&" if "?" in ledger_store.url else "?"
            return f"{ledger_store.url}{separator}schema={ledger_store.schema}"
        raise TypeError(f"no store beside {type(ledger_store).__name__}")

    def _connect(self) -> Any:
        if self._pg:
            return connect_postgres(self.url)
        return connect_sqlite(self.url)

    def initialise(self) -> None:
        if self._pg:
            with self._connection.transaction():
                self._connection.execute("SELECT pg_advisory_xact_lock(%s)",
                                         (_schema_lock_key(self.url),))
                self._connection.execute(POSTGRES_PROJECTION_SCHEMA)
        else:
            self._connection.executescript(SQLITE_PROJECTION_SCHEMA)

    def close(self) -> None:
        self._connection.close()

    def _rows(self, query: str, params: Sequence[Any] = ()) -> list[Any]:
        return list(self._connection.execute(query, params).fetchall())

    @contextmanager
    def _transaction(self) -> Iterator[Any]:
        connection = self._connection
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

    # --- reads ----------------------------------------------------------------------------

    def pools(self) -> list[str]:
        return [row[0] for row in self._rows("SELECT pool FROM projection_cursors ORDER BY pool")]

    def cursor(self, pool: str) -> Cursor:
        m = self._mark
        rows = self._rows(
            "SELECT pool, seq, at_us, pos, duplicates, ignored, rejected "
            f"FROM projection_cursors WHERE pool = {m}", (pool,)
        )
        if not rows:
            return Cursor(pool)
        return Cursor(*(rows[0][0], *(int(v) for v in rows[0][1:])))

    def cells(self, pool: str) -> dict[tuple[str, str], int]:
        m = self._mark
        return {
            (name, key): int(value)
            for name, key, value in self._rows(
                f"SELECT name, key, value FROM projection_cells WHERE pool = {m}", (pool,)
            )
        }

    def series(
        self, pool: str, *, metric: str | None = None, res: str | None = None,
        since_us: int | None = None, until_us: int | None = None,
    ) -> list[tuple[tuple[str, str, int], int]]:
        """Series buckets of a pool, by (metric, res, bucket start), ordered."""
        m = self._mark
        where: list[str] = [f"pool = {m}"]
        params: list[Any] = [pool]
        if metric is not None:
            where.append(f"metric = {m}")
            params.append(metric)
        if res is not None:
            where.append(f"res = {m}")
            params.append(res)
        if since_us is not None:
            where.append(f"bucket_us >= {m}")
            params.append(since_us)
        if until_us is not None:
            where.append(f"bucket_us <= {m}")
            params.append(until_us)
        rows = self._rows(
            f"SELECT metric, res, bucket_us, value FROM projection_series "
            f"WHERE {' AND '.join(where)} ORDER BY metric, res, bucket_us",
            params,
        )
        return [((metric_, res_, int(bucket)), int(value)) for metric_, res_, bucket, value in rows]

    def rejects(self, pool: str) -> list[Reject]:
        m = self._mark
        return [
            Reject(pool, int(seq), event_id, code, detail)
            for seq, event_id, code, detail in self._rows(
                f"SELECT seq, event_id, code, detail FROM projection_rejects WHERE pool = {m} "
                "ORDER BY seq", (pool,)
            )
        ]

    # --- writes ---------------------------------------------------------------------------

    def commit(self, writes: Iterable[ProjectionWrite]) -> None:
        """Write each pool's changes and cursor, all in one transaction."""
        m = self._mark
        with self._transaction() as connection:
            cursor = connection.cursor()
            try:
                for write in writes:
                    pool = write.cursor.pool
                    if write.cells:
                        cursor.executemany(
                            "INSERT INTO projection_cells (pool, name, key, value) "
                            f"VALUES ({m}, {m}, {m}, {m}) ON CONFLICT (pool, name, key) "
                            "DO UPDATE SET value = excluded.value",
                            [(pool, name, key, str(value)) for name, key, value in write.cells],
                        )
                    if write.series:
                        cursor.executemany(
                            "INSERT INTO projection_series (pool, metric, res, bucket_us, value) "
                            f"VALUES ({m}, {m}, {m}, {m}, {m}) "
                            "ON CONFLICT (pool, metric, res, bucket_us) "
                            "DO UPDATE SET value = excluded.value",
                            [(pool, metric, res, bucket, str(value))
                             for metric, res, bucket, value in write.series],
                        )
                    for res, before in write.prune_before.items():
                        cursor.execute(
                            f"DELETE FROM projection_series WHERE pool = {m} AND res = {m} "
                            f"AND bucket_us < {m}",
                            (pool, res, before),
                        )
                    if write.rejects:
                        cursor.executemany(
                            "INSERT INTO projection_rejects (pool, seq, event_id, code, detail) "
                            f"VALUES ({m}, {m}, {m}, {m}, {m}) ON CONFLICT (pool, seq) DO NOTHING",
                            [(r.pool, r.seq, r.event_id, r.code, r.detail)
                             for r in write.rejects],
                        )
                    c = write.cursor
                    cursor.execute(
                        "INSERT INTO projection_cursors "
                        "(pool, seq, at_us, pos, duplicates, ignored, rejected) "
                        f"VALUES ({m}, {m}, {m}, {m}, {m}, {m}, {m}) ON CONFLICT (pool) DO UPDATE "
                        "SET seq = excluded.seq, at_us = excluded.at_us, pos = excluded.pos, "
                        "duplicates = excluded.duplicates, ignored = excluded.ignored, "
                        "rejected = excluded.rejected",
                        (c.pool, c.seq, c.at_us, c.pos, c.duplicates, c.ignored, c.rejected),
                    )
            finally:
                cursor.close()

    def reset(self, pool: str | None = None) -> None:
        """Forget projections (all pools, or one) so they are rebuilt from the event log."""
        m = self._mark
        with self._transaction() as connection:
            for table in ("projection_cells", "projection_series", "projection_cursors",
                          "projection_rejects"):
                if pool is None:
                    connection.execute(f"DELETE FROM {table}")
                else:
                    connection.execute(f"DELETE FROM {table} WHERE pool = {m}", (pool,))
