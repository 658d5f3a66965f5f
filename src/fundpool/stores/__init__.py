"""Stores: where a ledger's state lives. SQLite (embedded default) and PostgreSQL."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from fundpool.ledger.ports import LedgerStore
from fundpool.payments.ports import PaymentStore

DEFAULT_DATA_DIR = "data"
DATA_DIR_ENV = "FUNDPOOL_DATA_DIR"
DB_URL_ENV = "FUNDPOOL_DB_URL"


def open_store(*, data_dir: str | Path | None = None, db_url: str | None = None) -> LedgerStore:
    """Open the store named by `db_url` (`sqlite:///path`, or `postgresql://...` with an
    optional `?schema=NAME`, default `fundpool`), else the SQLite file in `data_dir` (default:
    $FUNDPOOL_DATA_DIR, then ./data). Does not create the schema: `initialise()` does."""
    url = db_url or os.environ.get(DB_URL_ENV)
    if url:
        if url.startswith(("postgresql://", "postgres://")):
            from fundpool.stores.postgres import PostgresStore

            connect_url, schema = split_schema(url)
            if schema is None:
                return PostgresStore(connect_url)
            return PostgresStore(connect_url, schema)
        if url.startswith("sqlite:///"):
            from fundpool.stores.sqlite import SqliteStore

            return SqliteStore(url.removeprefix("sqlite:///"))
        raise ValueError(f"unsupported store URL {url!r}: use sqlite:///PATH or postgresql://...")
    from fundpool.stores.sqlite import SqliteStore

    directory = data_dir or os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR
    return SqliteStore.in_data_dir(directory)


def payment_store(store: LedgerStore) -> PaymentStore:
    """The payments kept in the same database as `store`'s ledger."""
    from fundpool.stores.sqlite import SqliteStore

    if isinstance(store, SqliteStore):
        from fundpool.stores.sqlite_payments import SqlitePaymentStore

        return SqlitePaymentStore(store)
    from fundpool.stores.postgres import PostgresStore

    if isinstance(store, PostgresStore):
        from fundpool.stores.postgres_payments import PostgresPaymentStore

        return PostgresPaymentStore(store)
    raise TypeError(f"no payment store for {type(store).__name__}")


def split_schema(url: str) -> tuple[str, str | None]:
    """Take the `schema` query parameter out of a PostgreSQL URL (libpq would refuse it).
    `PostgresStore` checks the name."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    schemas = [value for key, value in query if key == "schema"]
    rest = [(key, value) for key, value in query if key != "schema"]
    schema = schemas[-1] if schemas else None
    return urlunsplit(parts._replace(query=urlencode(rest))), schema


def driver_errors() -> tuple[type[BaseException], ...]:
    """The database drivers' own exception bases (what a store raises when the database itself
    fails), for entry points that turn them into `store_error`."""
    import sqlite3

    errors: list[type[BaseException]] = [sqlite3.Error]
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is a declared dependency
        pass
    else:
        errors.append(psycopg.Error)
    return tuple(errors)
