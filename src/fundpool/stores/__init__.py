"""Stores: where a ledger's state lives. SQLite (embedded default) and PostgreSQL."""

from __future__ import annotations

import os
from pathlib import Path

from fundpool.ledger.ports import LedgerStore

DEFAULT_DATA_DIR = "data"
DATA_DIR_ENV = "FUNDPOOL_DATA_DIR"
DB_URL_ENV = "FUNDPOOL_DB_URL"


def open_store(*, data_dir: str | Path | None = None, db_url: str | None = None) -> LedgerStore:
    """Open the store named by `db_url` (`sqlite:///path` or `postgresql://...`), else the SQLite
    file in `data_dir` (default: $FUNDPOOL_DATA_DIR, then ./data). Does not create the schema."""
    url = db_url or os.environ.get(DB_URL_ENV)
    if url:
        if url.startswith(("postgresql://", "postgres://")):
            from fundpool.stores.postgres import PostgresStore

            return PostgresStore(url)
        if url.startswith("sqlite:///"):
            from fundpool.stores.sqlite import SqliteStore

            return SqliteStore(url.removeprefix("sqlite:///"))
        raise ValueError(f"unsupported store URL {url!r}: use sqlite:///PATH or postgresql://...")
    from fundpool.stores.sqlite import SqliteStore

    directory = data_dir or os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR
    return SqliteStore.in_data_dir(directory)
