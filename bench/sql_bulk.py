"""Why the ledger's bulk writes keep a hook per database (docs/adr/0014).

Writes the same leg rows (a batch's legs: seq, address, asset, three amounts) into a fresh
ledger's `legs` table, in transactions of `--batch` rows, two ways on each database: through
the store's own bulk hook (`insert_legs`: binary COPY on PostgreSQL, executemany with integer
amounts on SQLite) and through the shared one-text path every other statement takes
(`Transaction.many`, an executemany of `INSERT … VALUES (?, …)`). Prints one JSON line per
figure, the shared path as the same-run baseline:
  {"bench": "sql_bulk", "store": ..., "value": rows/s, "unit": "rows/s",
   "baseline": "shared_executemany", "baseline_value": ..., "ratio": ...}

Usage: python bench/sql_bulk.py [--store sqlite|postgres|all] [--rows 200000] [--batch 2000]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fundpool.sql.database import Transaction
from fundpool.stores.ledger_sql import LEG_COLUMNS, SqlLedgerStore

PG_URL = os.environ.get("FUNDPOOL_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


def leg_rows(count: int) -> list[tuple[Any, ...]]:
    return [(seq // 4 + 1, f"pool:main:usd:acct-{seq % 5_000:05d}:available", "USD",
             1_000_000 + seq, seq % 7, 0) for seq in range(count)]


def timed(store: SqlLedgerStore, rows: list[tuple[Any, ...]], batch: int,
          write: Callable[[Transaction, list[tuple[Any, ...]]], None]) -> float:
    with store.db.transaction(store.write_lock) as tx:
        tx.execute("DELETE FROM legs")
    started = time.perf_counter()
    for start in range(0, len(rows), batch):
        with store.db.transaction(store.write_lock) as tx:
            write(tx, list(rows[start:start + batch]))
    return len(rows) / (time.perf_counter() - started)


def shared(tx: Transaction, rows: list[tuple[Any, ...]]) -> None:
    amounts = [row[:3] + tuple(tx.dialect.amounts(row[3:])) for row in rows]
    tx.many(f"INSERT INTO legs ({LEG_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)", amounts)


def run(name: str, store: SqlLedgerStore, rows: list[tuple[Any, ...]], batch: int) -> None:
    store.initialise()
    timed(store, rows[: batch * 2], batch, store.insert_legs)  # warm-up
    baseline = timed(store, rows, batch, shared)
    value = timed(store, rows, batch, store.insert_legs)
    print(json.dumps({"bench": "sql_bulk", "store": name, "workload": f"legs in {batch}s",
                      "value": round(value), "unit": "rows/s", "baseline": "shared_executemany",
                      "baseline_value": round(baseline), "ratio": round(value / baseline, 2)}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--store", choices=["sqlite", "postgres", "all"], default="all")
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=2_000)
    args = parser.parse_args()
    rows = leg_rows(args.rows)
    if args.store in ("sqlite", "all"):
        from fundpool.stores.sqlite import SqliteStore

        with tempfile.TemporaryDirectory() as directory:
            store = SqliteStore(Path(directory) / "ledger.sqlite3")
            try:
                run("sqlite", store, rows, args.batch)
            finally:
                store.close()
    if args.store in ("postgres", "all"):
        from fundpool.stores.postgres import PostgresStore

        try:
            pg = PostgresStore(PG_URL, schema=f"bench_{uuid.uuid4().hex[:12]}")
        except Exception as error:  # no server: say so, as the other benches do
            print(f"postgres skipped: {error}", file=sys.stderr)
            return
        try:
            run("postgres", pg, rows, args.batch)
        finally:
            pg.drop_schema()
            pg.close()


if __name__ == "__main__":
    main()
