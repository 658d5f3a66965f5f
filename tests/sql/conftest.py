"""Databases for the SQL layer's tests: an empty one of each kind, and the stores written by the
code before issue 13 (tests/fixtures/old_store_v1). A PostgreSQL one is a new schema, dropped
afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

# The shared checks' asserts say what differed, as a test's own do.
pytest.register_assert_rewrite("tests.sql.old_store")

from tests.conftest import PG_URL, new_pg_schema, require_postgres  # noqa: E402
from tests.fixtures.old_stores import copy_sqlite_fixture, expected, load_postgres_fixture  # noqa: E402
from tests.sql.old_store import OldStore, drop_pg_schema  # noqa: E402

KINDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=KINDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a database with nothing in it yet."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.sqlite3'}"
        return
    require_postgres()
    schema = new_pg_schema()
    try:
        yield f"{PG_URL}?schema={schema}"
    finally:
        drop_pg_schema(schema)


@pytest.fixture(params=KINDS)
def old_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OldStore]:
    """A store as the code of the commit before issue 13 left it (version 0 everywhere)."""
    kind = "sqlite" if request.param == "sqlite" else "postgres"
    figures = expected()["stores"][kind]
    if kind == "sqlite":
        path = copy_sqlite_fixture(tmp_path)
        yield OldStore(kind, f"sqlite:///{path}", figures, path=path)
        return
    require_postgres()
    schema = new_pg_schema()
    load_postgres_fixture(PG_URL, schema)
    try:
        yield OldStore(kind, f"{PG_URL}?schema={schema}", figures, schema=schema)
    finally:
        drop_pg_schema(schema)
