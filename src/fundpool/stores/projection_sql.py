"""Where projections are kept: the same SQLite file or PostgreSQL schema as the ledger by
default, or any other (a consumer process on another machine), on a connection of their own.
`ProjectionStore` implements monitoring's port of that name (`monitoring/ports.py`), in the
records monitoring defines (`monitoring/records.py`).

A consumer writes the figures an event batch changed and its cursor (the last `seq` applied per
pool) in one transaction, so after a crash it resumes exactly where the figures stand: an event
applied is never applied again, and one not applied is not skipped. Values are decimal text:
sums of amounts may pass 2^63.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fundpool.monitoring import ports
from fundpool.monitoring.records import Cursor, ProjectionWrite, Reject
from fundpool.sql import migrate
from fundpool.sql.database import Database, database_of
from fundpool.sql.query import Where


class ProjectionStore:
    """Projection tables on a connection of their own (`sqlite:///…` or `postgresql://…`),
    created or checked at their component's version (fundpool.sql.migrate.PROJECTIONS)."""

    def __init__(self, url: str) -> None:
        self.db = Database(url)
        self.url = self.db.url
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
        return database_of(ledger_store).url

    def initialise(self) -> None:
        self.db.create()
        migrate.ensure(self.db, migrate.PROJECTIONS)

    def close(self) -> None:
        self.db.close()

    # --- reads ----------------------------------------------------------------------------

    def pools(self) -> list[str]:
        return [row[0] for row in self.db.rows("SELECT pool FROM projection_cursors ORDER BY pool")]

    def cursor(self, pool: str) -> Cursor:
        rows = self.db.rows(
            "SELECT pool, seq, at_us, pos, duplicates, ignored, rejected "
            "FROM projection_cursors WHERE pool = ?", (pool,)
        )
        if not rows:
            return Cursor(pool)
        return Cursor(*(rows[0][0], *(int(v) for v in rows[0][1:])))

    def cells(self, pool: str) -> dict[tuple[str, str], int]:
        return {
            (name, key): int(value)
            for name, key, value in self.db.rows(
                "SELECT name, key, value FROM projection_cells WHERE pool = ?", (pool,)
            )
        }

    def series(
        self, pool: str, *, metric: str | None = None, res: str | None = None,
        since_us: int | None = None, until_us: int | None = None,
    ) -> list[tuple[tuple[str, str, int], int]]:
        """Series buckets of a pool, by (metric, res, bucket start), ordered."""
        where = (Where().eq("pool", pool).eq("metric", metric).eq("res", res)
                 .at_least("bucket_us", since_us).add_if(until_us, "bucket_us <= ?"))
        rows = self.db.rows(
            f"SELECT metric, res, bucket_us, value FROM projection_series{where} "
            "ORDER BY metric, res, bucket_us",
            where.params,
        )
        return [((metric_, res_, int(bucket)), int(value)) for metric_, res_, bucket, value in rows]

    def rejects(self, pool: str) -> list[Reject]:
        return [
            Reject(pool, int(seq), event_id, code, detail)
            for seq, event_id, code, detail in self.db.rows(
                "SELECT seq, event_id, code, detail FROM projection_rejects WHERE pool = ? "
                "ORDER BY seq", (pool,)
            )
        ]

    # --- writes ---------------------------------------------------------------------------

    def commit(self, writes: Iterable[ProjectionWrite]) -> None:
        """Write each pool's changes and cursor, all in one transaction."""
        with self.db.transaction() as tx:
            for write in writes:
                pool = write.cursor.pool
                tx.many(
                    "INSERT INTO projection_cells (pool, name, key, value) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (pool, name, key) DO UPDATE SET value = excluded.value",
                    [(pool, name, key, str(value)) for name, key, value in write.cells],
                )
                tx.many(
                    "INSERT INTO projection_series (pool, metric, res, bucket_us, value) "
                    "VALUES (?, ?, ?, ?, ?) ON CONFLICT (pool, metric, res, bucket_us) "
                    "DO UPDATE SET value = excluded.value",
                    [(pool, metric, res, bucket, str(value))
                     for metric, res, bucket, value in write.series],
                )
                for res, before in write.prune_before.items():
                    tx.execute(
                        "DELETE FROM projection_series WHERE pool = ? AND res = ? "
                        "AND bucket_us < ?",
                        (pool, res, before),
                    )
                tx.many(
                    "INSERT INTO projection_rejects (pool, seq, event_id, code, detail) "
                    "VALUES (?, ?, ?, ?, ?) ON CONFLICT (pool, seq) DO NOTHING",
                    [(r.pool, r.seq, r.event_id, r.code, r.detail) for r in write.rejects],
                )
                c = write.cursor
                tx.execute(
                    "INSERT INTO projection_cursors "
                    "(pool, seq, at_us, pos, duplicates, ignored, rejected) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (pool) DO UPDATE "
                    "SET seq = excluded.seq, at_us = excluded.at_us, pos = excluded.pos, "
                    "duplicates = excluded.duplicates, ignored = excluded.ignored, "
                    "rejected = excluded.rejected",
                    (c.pool, c.seq, c.at_us, c.pos, c.duplicates, c.ignored, c.rejected),
                )

    def reset(self, pool: str | None = None) -> None:
        """Forget projections (all pools, or one) so they are rebuilt from the event log."""
        where = Where().eq("pool", pool)
        with self.db.transaction() as tx:
            for table in ("projection_cells", "projection_series", "projection_cursors",
                          "projection_rejects"):
                tx.execute(f"DELETE FROM {table}{where}", where.params)


_PORT: type[ports.ProjectionStore] = ProjectionStore  # mypy checks that it implements the port
