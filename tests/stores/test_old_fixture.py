"""The stores written by the code before issue 13 (tests/fixtures/old_store_v1) are sound.

The current code opens a copy of each fixture, finds in it every figure expected.json records
(row counts, the journal head, sample ids), verifies the hash chain and balances, and lets the
fixture's API keys and users in. The upgrade test builds on the same helpers; this one shows
that what it starts from is whole.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fundpool.auth.store import AuthStore
from fundpool.ledger.ports import LedgerStore
from fundpool.ledger.verify import verify
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
    postgres_figures,
    sqlite_figures,
)

SQLITE_FIXTURE_BYTES_MAX = 3_000_000
# Any instant after the fixture was made: its keys never expire.
NOW_US = 1_900_000_000 * 1_000_000


def drop_schema(schema: str) -> None:
    import psycopg

    with psycopg.connect(PG_URL, autocommit=True) as connection:
        connection.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


@pytest.fixture
def old_sqlite(tmp_path: Path) -> Path:
    return copy_sqlite_fixture(tmp_path)


@pytest.fixture
def old_postgres() -> Iterator[str]:
    """A new schema holding the PostgreSQL fixture; dropped afterwards."""
    require_postgres()
    schema = new_pg_schema()
    load_postgres_fixture(PG_URL, schema)
    try:
        yield schema
    finally:
        drop_schema(schema)


def figures_kept(figures: dict[str, Any]) -> dict[str, Any]:
    return {k: figures[k] for k in ("counts", "tables", "head", "ledger_meta", "samples")}


def check_with_current_code(store: LedgerStore, figures: dict[str, Any]) -> None:
    """The journal head, the verification, and the fixture's credentials, through the
    current code's own APIs."""
    head = store.head()
    assert (head.seq, head.hash.hex()) == (figures["head"]["seq"], figures["head"]["hash"])
    report = verify(store)
    assert report.ok, report.problem
    assert report.entries == figures["counts"]["journal_entries"]
    auth = AuthStore.beside(store)
    try:
        keys = figures["credentials"]["api_keys"]
        stored_keys = auth.keys()  # the store's API keys, not a mapping's
        assert sorted(k.id for k in stored_keys) == sorted(k["id"] for k in keys)
        for key in keys:
            principal = auth.authenticate_key(key["token"], now_us=NOW_US)
            assert (principal.id, sorted(principal.roles)) == (key["id"], sorted(key["roles"]))
        users = figures["credentials"]["users"]
        assert sorted(u.username for u in auth.users()) == sorted(u["username"] for u in users)
        for user in users:
            principal, _, _ = auth.login(user["username"], user["password"], now_us=NOW_US)
            assert sorted(principal.roles) == sorted(user["roles"])
    finally:
        auth.close()


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


def test_the_sqlite_fixture_holds_what_it_should(old_sqlite: Path) -> None:
    figures = expected()["stores"]["sqlite"]
    connection = sqlite3.connect(old_sqlite)
    try:
        assert figures_kept(sqlite_figures(connection)) == figures_kept(figures)
    finally:
        connection.close()
    store = open_store(db_url=f"sqlite:///{old_sqlite}")
    try:
        check_with_current_code(store, figures)
    finally:
        store.close()


@pytest.mark.postgres
def test_the_postgres_fixture_holds_what_it_should(old_postgres: str) -> None:
    import psycopg

    figures = expected()["stores"]["postgres"]
    with psycopg.connect(PG_URL, autocommit=True) as connection:
        assert figures_kept(postgres_figures(connection, old_postgres)) == figures_kept(figures)
    store = open_store(db_url=f"{PG_URL}?schema={old_postgres}")
    try:
        check_with_current_code(store, figures)
    finally:
        store.close()
