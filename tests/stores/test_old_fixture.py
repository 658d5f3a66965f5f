"""The stores written by the code before issue 13 (tests/fixtures/old_store_v1) are sound.

A copy of each fixture holds every figure expected.json records (row counts, the journal head,
sample ids), read with plain SQL as the generator read them; brought to this code's schema
version (`fundpool.sql.migrate`: the current code reads a store at its own version, and
refuses an older one), its hash chain and balances verify, its entries, payments and events are
found, and its API keys and users are let in. The upgrade itself, and what it must keep, is
tested in tests/sql/test_upgrade_old_store.py with the same helpers (tests/sql/old_store.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fundpool.sql import migrate
from fundpool.stores import open_store
from tests.conftest import PG_URL, new_pg_schema, require_postgres
from tests.fixtures.old_stores import (
    COUNTED_TABLES,
    FIXTURE_DIR,
    FIXTURE_SCHEMA,
    POSTGRES_FIXTURE,
    SQLITE_FIXTURE,
    copy_sqlite_fixture,
    dump_statements,
    expected,
    load_postgres_fixture,
)
from tests.sql.old_store import OldStore, check_with_current_code, drop_pg_schema, figures_kept

SQLITE_FIXTURE_BYTES_MAX = 3_000_000


@pytest.fixture
def old_sqlite(tmp_path: Path) -> OldStore:
    path = copy_sqlite_fixture(tmp_path)
    return OldStore("sqlite", f"sqlite:///{path}", expected()["stores"]["sqlite"], path=path)


@pytest.fixture
def old_postgres() -> Iterator[OldStore]:
    """A new schema holding the PostgreSQL fixture; dropped afterwards."""
    require_postgres()
    schema = new_pg_schema()
    load_postgres_fixture(PG_URL, schema)
    try:
        yield OldStore("postgres", f"{PG_URL}?schema={schema}", expected()["stores"]["postgres"],
                       schema=schema)
    finally:
        drop_pg_schema(schema)


def check_whole(old: OldStore) -> None:
    """The figures as the generator read them; then, at this code's version, through the
    current code's own APIs."""
    assert figures_kept(old.read_figures()) == figures_kept(old.figures)
    store = open_store(db_url=old.url)
    try:
        migrate.upgrade_all(store.db)  # type: ignore[attr-defined]
        check_with_current_code(store, old.figures)
    finally:
        store.close()


# --- the files themselves ------------------------------------------------------------------------


def test_the_fixture_files_are_whole_and_small() -> None:
    assert not list(FIXTURE_DIR.glob("*-wal"))
    assert not list(FIXTURE_DIR.glob("*-shm"))
    assert SQLITE_FIXTURE.stat().st_size <= SQLITE_FIXTURE_BYTES_MAX
    document = expected()
    assert document["schema"] == FIXTURE_SCHEMA
    assert document["commit"].startswith("de56359")
    sqlite_side, postgres_side = document["stores"]["sqlite"], document["stores"]["postgres"]
    # One seeded run on each store: the same journal, byte for byte.
    assert sqlite_side["head"] == postgres_side["head"]
    assert sqlite_side["counts"] == postgres_side["counts"]
    for figures in (sqlite_side, postgres_side):
        assert set(figures["counts"]) == set(COUNTED_TABLES)
        assert all(n > 0 for n in figures["counts"].values()), figures["counts"]
        assert len(figures["credentials"]["api_keys"]) >= 2
        assert len(figures["credentials"]["users"]) >= 2


def test_the_dump_is_renamed_to_the_schema_asked_for() -> None:
    statements = list(dump_statements(POSTGRES_FIXTURE.read_text(encoding="utf-8"), "renamed"))
    sql_text = "\n".join(statement for statement, _ in statements)
    assert FIXTURE_SCHEMA not in sql_text
    assert "CREATE SCHEMA renamed;" in sql_text
    assert not any(s.lstrip().startswith(("SET ", "\\")) or "set_config" in s
                   for s, _ in statements)
    copied = [s for s, rows in statements if rows is not None]
    assert len(copied) == len(expected()["stores"]["postgres"]["tables"])


# --- opened by the current code ------------------------------------------------------------------


def test_the_sqlite_fixture_holds_what_it_should(old_sqlite: OldStore) -> None:
    check_whole(old_sqlite)


@pytest.mark.postgres
def test_the_postgres_fixture_holds_what_it_should(old_postgres: OldStore) -> None:
    check_whole(old_postgres)
