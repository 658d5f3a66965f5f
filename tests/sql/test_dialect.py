"""What differs between SQLite and PostgreSQL (fundpool.sql.dialect): a statement written once
with `?` marks becomes psycopg's `%s` outside quoted text, with every literal `%` doubled, and
means the same on both databases."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fundpool.sql.database import Database
from fundpool.sql.dialect import SQLITE, dialect, driver_errors, postgresql
from tests.conftest import PG_URL, require_postgres

POSTGRESQL = postgresql()  # made when first asked for: psycopg loads with it


def unmarked(text: str) -> str:
    """psycopg's reading of a converted statement, with each `%s` back as `?`: `%%` is a `%`."""
    out: list[str] = []
    index = 0
    while index < len(text):
        pair = text[index:index + 2]
        if pair == "%%":
            out.append("%")
            index += 2
        elif pair == "%s":
            out.append("?")
            index += 2
        else:
            assert text[index] != "%", f"a lone % at {index} of {text!r}"
            out.append(text[index])
            index += 1
    return "".join(out)


@pytest.mark.parametrize(("text", "converted"), [
    ("SELECT * FROM t WHERE a = ? AND b = ?", "SELECT * FROM t WHERE a = %s AND b = %s"),
    ("SELECT '?' , ?", "SELECT '?' , %s"),
    ('SELECT "odd?column" FROM t WHERE x = ?', 'SELECT "odd?column" FROM t WHERE x = %s'),
    ("SELECT 'it''s ?', ?", "SELECT 'it''s ?', %s"),
    ("SELECT name FROM t WHERE name LIKE 'a%' AND n % 2 = ?",
     "SELECT name FROM t WHERE name LIKE 'a%%' AND n %% 2 = %s"),
    ("SELECT 1", "SELECT 1"),
])
def test_marks_become_percent_s_outside_quotes_and_percent_is_doubled(
    text: str, converted: str,
) -> None:
    assert POSTGRESQL.sql(text) == converted
    assert SQLITE.sql(text) == text


@given(st.text(st.sampled_from("?%'\" as;")))
def test_the_conversion_loses_nothing(text: str) -> None:
    # Whatever the quoting, psycopg reads back exactly the statement that was written.
    assert unmarked(POSTGRESQL.sql(text)) == text


def test_the_other_differences() -> None:
    assert (dialect("sqlite"), dialect("postgresql")) == (SQLITE, POSTGRESQL)
    assert (SQLITE.marks(3), POSTGRESQL.marks(2)) == ("?, ?, ?", "%s, %s")
    assert SQLITE.in_values("id", ["a", "b"]) == ("id IN (?, ?)", ("a", "b"))
    assert POSTGRESQL.in_values("id", ("a", "b")) == ("id = ANY(?)", (["a", "b"],))
    wide = 2**64 + 1
    assert (SQLITE.amount(wide), POSTGRESQL.amount(wide)) == (str(wide), wide)
    assert SQLITE.amount(None) is None
    assert POSTGRESQL.amount(None) is None
    assert SQLITE.amounts([1, 2]) == ("1", "2")
    assert (SQLITE.for_update, POSTGRESQL.for_update) == ("", " FOR UPDATE")
    assert (SQLITE.is_postgres, POSTGRESQL.is_postgres) == (False, True)
    assert {sqlite3.Error, psycopg.Error} <= set(driver_errors())


# --- the same statement on both databases ------------------------------------------------------

STATEMENT = ("SELECT ?, '?', 'a%b', ? || '%', CASE WHEN 7 % 2 = 1 THEN 'odd?' END, "
             "\"v?\" FROM (SELECT 'q' AS \"v?\") AS t")
PARAMS = ("x", "y")
ANSWER = ("x", "?", "a%b", "y%", "odd?", "q")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest) -> Iterator[Database]:
    if request.param == "sqlite":
        db = Database("sqlite:///:memory:")
    else:
        require_postgres()
        db = Database(PG_URL)  # reads alone: the default schema need not exist
    yield db
    db.close()


def test_a_statement_written_once_means_the_same_on_both(database: Database) -> None:
    assert tuple(database.one(STATEMENT, PARAMS)) == ANSWER
    with database.transaction() as tx:
        assert tuple(tx.one(STATEMENT, PARAMS)) == ANSWER


def test_a_list_of_values_matches_the_same_rows_on_both(database: Database) -> None:
    match, params = database.dialect.in_values("v", ["b", "c", "z"])
    rows = database.rows(
        f"SELECT v FROM (SELECT 'a' AS v UNION ALL SELECT 'b' UNION ALL SELECT 'c') AS t "
        f"WHERE {match} ORDER BY v", params)
    assert [row[0] for row in rows] == ["b", "c"]
