"""The server store: one PostgreSQL schema per ledger, on psycopg 3.

Writers of one ledger exclude each other with a transaction-scoped advisory lock whose key is
derived from the schema name, so any number of processes may share a ledger and the hash chain
still has one total order. Amounts are NUMERIC(39,0): exact, and wide enough for 2^128 - 1 and
its negation (docs/adr/0001). Text keys use the "C" collation, so rows sort by their bytes as they
do in the SQLite store. Everything but the bulk writes of a batch is `SqlLedgerStore`'s; those
of a large batch go in with COPY in the binary format (docs/adr/0014 has the figures), those of
a small one as array inserts that wait in the pipeline for the commit (docs/adr/0017).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from operator import itemgetter
from typing import Any

from fundpool.sql.database import Connection, Database, Transaction
from fundpool.sql.database import lock_key as database_lock_key
from fundpool.sql.url import DEFAULT_SCHEMA, SCHEMA_NAME_PATTERN, DatabaseUrl, redact
from fundpool.stores.ledger_sql import (
    BALANCE_COLUMNS,
    BALANCE_UPSERT,
    ENTRY_COLUMNS,
    LEG_COLUMNS,
    SqlLedgerStore,
)

__all__ = ["DEFAULT_SCHEMA", "PostgresStore", "lock_key", "redact"]

# Per connection: a batch's new balances are copied here, then merged in one statement.
BALANCES_STAGE = """
CREATE TEMPORARY TABLE IF NOT EXISTS fundpool_balances_in (
    address TEXT COLLATE "C" NOT NULL,
    asset TEXT COLLATE "C" NOT NULL,
    posted NUMERIC(39, 0) NOT NULL,
    pending_out NUMERIC(39, 0) NOT NULL,
    pending_in NUMERIC(39, 0) NOT NULL
)
"""
JOURNAL_TYPES = ("int8", "text", "text", "int8", "bytea", "bytea")
LEG_TYPES = ("int8", "text", "text", "numeric", "numeric", "numeric")
BALANCE_TYPES = ("text", "text", "numeric", "numeric", "numeric")
_ACCOUNT_ORDER = itemgetter(1, 2, 0)  # a leg row's (address, asset, seq)
# A bulk write (`write(bulk=True)`) copies as many rows as this or more, which is twice as fast
# per row once rows dominate (docs/adr/0017: at 16,384 leg rows COPY wrote 134k-209k rows/s,
# unnest 53k-90k); fewer, and every write in pipeline mode, go as one array insert per table.
COPY_ROWS_MIN = 512
JOURNAL_INSERT = (f"INSERT INTO journal ({ENTRY_COLUMNS}) SELECT * FROM unnest("
                  "?::int8[], ?::text[], ?::text[], ?::int8[], ?::bytea[], ?::bytea[])")
LEG_INSERT = (f"INSERT INTO legs ({LEG_COLUMNS}) SELECT * FROM unnest("
              "?::int8[], ?::text[], ?::text[], ?::numeric[], ?::numeric[], ?::numeric[])")
BALANCE_ARRAYS = "SELECT * FROM unnest(?::text[], ?::text[], ?::numeric[], ?::numeric[], " \
                 "?::numeric[])"


def lock_key(schema: str) -> int:
    """The advisory lock that serialises the writers of the ledger in `schema`: a signed 64-bit
    number, the same in every process (`Database.lock_key` of the store's write lock)."""
    return database_lock_key(f"{SqlLedgerStore.write_lock}:{schema}")


def _stage(connection: Connection) -> None:
    connection.execute(BALANCES_STAGE)


class PostgresStore(SqlLedgerStore):
    """A ledger in the schema `schema` of the PostgreSQL database at `url`."""

    def __init__(self, url: str, schema: str = DEFAULT_SCHEMA) -> None:
        if not SCHEMA_NAME_PATTERN.match(schema):
            raise ValueError(
                f"schema name {schema!r}: use letters, digits and '_', starting with a letter"
            )
        self._url = url
        self.schema = schema
        self.db = Database(DatabaseUrl("postgresql", url, schema), on_connect=_stage)

    @property
    def url(self) -> str:
        """The server's URL, without the schema (`db.url` has both)."""
        return self._url

    def drop_schema(self) -> None:
        """Drop the ledger's schema and everything in it. For tests and throwaway ledgers."""
        self.db.drop_schema()

    def insert_journal(self, tx: Transaction, rows: list[tuple[Any, ...]]) -> None:
        if tx.pipelined or len(rows) < COPY_ROWS_MIN:
            tx.send(JOURNAL_INSERT, _columns(rows, 6))
            return
        _copy(tx, f"journal ({ENTRY_COLUMNS})", rows, JOURNAL_TYPES)

    def insert_legs(self, tx: Transaction, rows: list[tuple[Any, ...]]) -> None:
        if tx.pipelined or len(rows) < COPY_ROWS_MIN:
            tx.send(LEG_INSERT, _columns(rows, 6))
            return
        # In account order, consecutive rows land on the same pages of `legs_by_account`
        # instead of all over it; the primary key's new entries are all at its end anyway.
        rows.sort(key=_ACCOUNT_ORDER)
        _copy(tx, f"legs ({LEG_COLUMNS})", rows, LEG_TYPES)

    def upsert_balances(self, tx: Transaction, rows: list[tuple[Any, ...]]) -> None:
        rows.sort()  # the same for the primary key of `balances` (keys are unique)
        if tx.pipelined or len(rows) < COPY_ROWS_MIN:
            tx.send(BALANCE_UPSERT.format(source=BALANCE_ARRAYS), _columns(rows, 5))
            return
        # The staging table is this connection's own; what an earlier write left is cleared.
        tx.connection.execute("TRUNCATE pg_temp.fundpool_balances_in")
        _copy(tx, f"pg_temp.fundpool_balances_in ({BALANCE_COLUMNS})", rows, BALANCE_TYPES)
        tx.connection.execute(BALANCE_UPSERT.format(
            source=f"SELECT {BALANCE_COLUMNS} FROM pg_temp.fundpool_balances_in"))


def _columns(rows: Sequence[Sequence[Any]], width: int) -> list[list[Any]]:
    """Rows as one list per column, for the array inserts."""
    columns: list[list[Any]] = [[] for _ in range(width)]
    for row in rows:
        for column, value in zip(columns, row, strict=True):
            column.append(value)
    return columns


def _copy(tx: Transaction, target: str, rows: Iterable[Sequence[Any]],
          binary_types: Sequence[str]) -> None:
    tx.copy(target, rows, binary_types)
