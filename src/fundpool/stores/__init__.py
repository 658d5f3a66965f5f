"""Stores: where a ledger's state lives. SQLite (embedded default) and PostgreSQL, both on the
one SQL layer (fundpool.sql)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from fundpool.ledger.ports import LedgerStore
from fundpool.sql.dialect import driver_errors
from fundpool.sql.url import parse_url, split_schema

if TYPE_CHECKING:  # the payments' model is not loaded by every command that opens a store
    from fundpool.payments.ports import PaymentStore

__all__ = ["DATA_DIR_ENV", "DB_URL_ENV", "DEFAULT_DATA_DIR", "driver_errors", "open_store",
           "payment_store", "split_schema"]

DEFAULT_DATA_DIR = "data"
DATA_DIR_ENV = "FUNDPOOL_DATA_DIR"
DB_URL_ENV = "FUNDPOOL_DB_URL"


def open_store(*, data_dir: str | Path | None = None, db_url: str | None = None) -> LedgerStore:
    """Open the store named by `db_url` (`sqlite:///path`, or `postgresql://...` with an
    optional `?schema=NAME`, default `fundpool`), else the SQLite file in `data_dir` (default:
    $FUNDPOOL_DATA_DIR, then ./data). Does not create the schema: `initialise()` does. A URL
    of another kind is `unsupported_database_url`."""
    url = db_url or os.environ.get(DB_URL_ENV)
    if url:
        location = parse_url(url)
        if location.is_postgres:
            from fundpool.stores.postgres import PostgresStore

            if location.schema is None:
                return PostgresStore(location.target)
            return PostgresStore(location.target, location.schema)
        from fundpool.stores.sqlite import SqliteStore

        return SqliteStore(location.target)
    from fundpool.stores.sqlite import SqliteStore

    directory = data_dir or os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR
    return SqliteStore.in_data_dir(directory)


def payment_store(store: LedgerStore) -> PaymentStore:
    """The payments kept in the same database as `store`'s ledger."""
    from fundpool.stores.payments_sql import SqlPaymentStore

    return SqlPaymentStore(store)
