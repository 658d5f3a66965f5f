"""The WHERE and paging builders (fundpool.sql.query): each builder's text and parameters, and,
against a real SQLite table and a PostgreSQL table with the "C" collation (as the stores declare
their keys), that `prefix()` selects exactly the strings with that prefix and that `after()`
pages through them in code-point order, whatever the characters."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fundpool.sql.database import Database
from fundpool.sql.query import Where, limit, order_by, prefix_end
from tests.conftest import PG_URL, new_pg_schema, require_postgres
from tests.sql.old_store import drop_pg_schema

# Characters where an encoding or an ordering could go wrong: LIKE's wildcards and escape, a
# quote, each UTF-8 length's first and last code point, around the surrogates, the last one.
EDGES = ["a", "b", "%", "_", "\\", "'", ":", "\x01", "\x7f", "\x80", "\u07ff", "\u0800",
         "\ud7ff", "\ue000", "\uffff", "\U00010000", "\U0010fffe", "\U0010ffff"]
# PostgreSQL text holds no NUL; a lone surrogate is no UTF-8 at all.
CHARACTERS = st.one_of(st.sampled_from(EDGES),
                       st.characters(exclude_categories=("Cs",), exclude_characters="\x00"))
# Lists of characters joined, not st.text: its alphabet strategy seldom draws the edges.
TEXTS = st.lists(CHARACTERS, max_size=6).map("".join)
NAMES_MAX = 12
PAGE_SIZE = 3
EXAMPLES_SQLITE = 200
EXAMPLES_POSTGRES = 100


# --- the builders' text ------------------------------------------------------------------------


def test_an_empty_where_is_no_text_and_false() -> None:
    where = Where()
    assert (str(where), where.params, bool(where)) == ("", [], False)


def test_a_condition_whose_value_is_none_is_left_out() -> None:
    where = (Where().eq("asset", None).prefix("address", None).prefix("address", "")
             .after("address", None).before("seq", None).at_least("at_us", None)
             .within("state", None))
    assert (str(where), where.params) == ("", [])


def test_each_builder_writes_its_condition_with_marks() -> None:
    where = (Where().eq("asset", "USD").prefix("address", "pool:")
             .after("address", "pool:a").before("seq", 10).at_least("at_us", 5)
             .within("state", ["posted", "voided"]).add("kind <> ?", "fee"))
    assert str(where) == (
        " WHERE asset = ? AND address >= ? AND address < ? AND address > ? AND seq < ? "
        "AND at_us >= ? AND state IN (?, ?) AND kind <> ?")
    assert where.params == ["USD", "pool:", "pool;", "pool:a", 10, 5, "posted", "voided", "fee"]
    assert bool(where)


def test_after_in_a_descending_list_is_below() -> None:
    where = Where().after("seq", 7, descending=True)
    assert (str(where), where.params) == (" WHERE seq < ?", [7])


def test_within_nothing_matches_nothing() -> None:
    where = Where().within("id", [])
    assert (str(where), where.params) == (" WHERE 1 = 0", [])


@pytest.mark.parametrize(("prefix", "end"), [
    ("pool:", "pool;"),
    ("a", "b"),
    ("a\U0010ffff", "b"),  # U+10FFFF cannot be stepped: the one before it is
    ("x\ud7ff", "x\ue000"),  # over the surrogates, which no text holds
    ("\U0010ffff\U0010ffff", None),  # nothing sorts above: no end
])
def test_the_end_of_a_prefix_is_its_successor(prefix: str, end: str | None) -> None:
    assert prefix_end(prefix) == end


def test_a_prefix_with_no_end_is_a_lower_bound_alone() -> None:
    where = Where().prefix("name", "\U0010ffff")
    assert (str(where), where.params) == (" WHERE name >= ?", ["\U0010ffff"])


def test_order_by_and_limit() -> None:
    assert order_by("seq") == " ORDER BY seq"
    assert order_by("seq", "asset", descending=True) == " ORDER BY seq DESC, asset DESC"
    assert limit(None) == ""
    assert limit(50) == " LIMIT 50"


# --- against real tables -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def sqlite_names() -> Iterator[Database]:
    db = Database("sqlite:///:memory:")
    with db.transaction() as tx:
        tx.execute("CREATE TABLE names (name TEXT PRIMARY KEY)")
    yield db
    db.close()


@pytest.fixture(scope="module")
def postgres_names() -> Iterator[Database]:
    require_postgres()
    schema = new_pg_schema()
    db = Database(f"{PG_URL}?schema={schema}")
    try:
        db.create()
        with db.transaction() as tx:
            tx.execute('CREATE TABLE names (name TEXT COLLATE "C" PRIMARY KEY)')
        yield db
    finally:
        db.close()
        drop_pg_schema(schema)


def check_prefix_and_pages(db: Database, data: st.DataObject) -> None:
    # Names that start with the prefix, that almost do (all of it but its last character) and
    # any others: what lies just inside and just outside the range is what is tried most.
    prefix = data.draw(TEXTS, label="prefix")
    names = data.draw(st.lists(st.one_of(
        TEXTS.map(lambda rest: prefix + rest),
        TEXTS.map(lambda rest: prefix[:-1] + rest),
        TEXTS,
    ), max_size=NAMES_MAX, unique=True), label="names")
    with db.transaction() as tx:
        tx.execute("DELETE FROM names")
        tx.many("INSERT INTO names (name) VALUES (?)", [(name,) for name in names])
    where = Where().prefix("name", prefix)
    found = [row[0] for row in db.rows(f"SELECT name FROM names{where}{order_by('name')}",
                                       where.params)]
    assert found == sorted(name for name in names if name.startswith(prefix))
    # Keyset pages: each page the names after the last one seen, in code-point order.
    paged: list[str] = []
    while True:
        page_where = Where().after("name", paged[-1] if paged else None)
        page = [row[0] for row in db.rows(
            f"SELECT name FROM names{page_where}{order_by('name')}{limit(PAGE_SIZE)}",
            page_where.params)]
        paged.extend(page)
        if len(page) < PAGE_SIZE:
            break
    assert paged == sorted(names)


@settings(max_examples=EXAMPLES_SQLITE, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_prefix_selects_exactly_the_names_with_it_on_sqlite(
    sqlite_names: Database, data: st.DataObject,
) -> None:
    check_prefix_and_pages(sqlite_names, data)


@pytest.mark.postgres
@settings(max_examples=EXAMPLES_POSTGRES, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_prefix_selects_exactly_the_names_with_it_on_postgres(
    postgres_names: Database, data: st.DataObject,
) -> None:
    check_prefix_and_pages(postgres_names, data)
