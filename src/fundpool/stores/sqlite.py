"""The embedded store: one SQLite file in WAL mode with synchronous=FULL (docs/adr/0004).

Writers exclude each other with `BEGIN IMMEDIATE`, so several processes may share one file.
Balances are stored in ANY columns: an INTEGER while they fit in 64 bits, decimal TEXT beyond
(SQLite's INTEGER stops at 2^63 - 1; docs/adr/0001). Readers take `int()` of either.
Everything but the bulk writes of a batch is `SqlLedgerStore`'s.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fundpool.sql.database import Database, Transaction
from fundpool.sql.url import DatabaseUrl
from fundpool.stores.ledger_sql import (
    BALANCE_UPSERT,
    ENTRY_COLUMNS,
    LEG_COLUMNS,
    SqlLedgerStore,
)
from fundpool.stores.rows import text_amounts


class SqliteStore(SqlLedgerStore):
    """A ledger in one SQLite file (`path`), or in memory with ':memory:' for throwaway use."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        # A store that does not exist yet is created by `initialise()` alone: a read pointed at
        # the wrong directory must say `store_not_initialised`, not leave an empty file there.
        self.db = Database(DatabaseUrl("sqlite", self.path), create=False)

    @classmethod
    def in_data_dir(cls, data_dir: str | Path) -> SqliteStore:
        return cls(Path(data_dir) / "ledger.sqlite3")

    def insert_journal(self, tx: Transaction, rows: list[tuple[Any, ...]]) -> None:
        tx.connection.executemany(
            f"INSERT INTO journal ({ENTRY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)", rows
        )

    def insert_legs(self, tx: Transaction, rows: list[tuple[Any, ...]]) -> None:
        _insert_amounts(
            tx, f"INSERT INTO legs ({LEG_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)", rows, 3
        )

    def upsert_balances(self, tx: Transaction, rows: list[tuple[Any, ...]]) -> None:
        _insert_amounts(
            tx,
            BALANCE_UPSERT.format(source="VALUES (?, ?, ?, ?, ?)"),
            rows,
            2,
        )


def _insert_amounts(tx: Transaction, sql: str, rows: list[tuple[Any, ...]],
                    first_amount: int) -> None:
    """Insert rows whose columns from `first_amount` on are amounts: as integers, and if one of
    them does not fit in 64 bits, all of them again as decimal text. The savepoint undoes the
    rows the first attempt wrote before it met the wide value."""
    connection = tx.connection
    connection.execute("SAVEPOINT amounts")
    try:
        connection.executemany(sql, rows)
    except OverflowError:
        connection.execute("ROLLBACK TO amounts")
        connection.executemany(sql, text_amounts(rows, first_amount))
    connection.execute("RELEASE amounts")
