"""`fundpool events consume` keeps its projections beside the ledger store by default: in the
ledger's SQLite file, or in its PostgreSQL database and schema (the store's own URL)."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer

from fundpool.cli.events import projections_of
from fundpool.stores.postgres import PostgresStore
from fundpool.stores.sqlite import SqliteStore
from tests.conftest import PG_URL, new_pg_schema, require_postgres


def test_projections_beside_a_sqlite_ledger(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "ledger.sqlite3")
    assert projections_of(store, None) == f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    assert projections_of(store, str(tmp_path / "p.db")) == f"sqlite:///{tmp_path / 'p.db'}"


def test_projections_beside_a_postgres_ledger() -> None:
    require_postgres()
    schema = new_pg_schema()
    store = PostgresStore(PG_URL, schema)
    try:
        separator = "&" if "?" in PG_URL else "?"
        assert projections_of(store, None) == f"{PG_URL}{separator}schema={schema}"
    finally:
        store.close()


def test_no_store_and_no_option_is_a_bad_parameter() -> None:
    with pytest.raises(typer.BadParameter):
        projections_of(None, None)
