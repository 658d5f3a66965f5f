"""Building the WHERE clause and the page of a list, once for every store.

Conditions are written with `?` marks, like every statement (`Dialect.sql` turns them into the
driver's); a condition whose value is None is left out, so a filter reads as the list of what
may be filtered:

    where = Where().eq("asset", asset).prefix("address", prefix).after("address", after)
    rows = db.rows(f"SELECT … FROM accounts{where}{order_by('address')}{limit(n)}", where.params)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

LAST_CODE_POINT = 0x10FFFF
# No text holds these (they are no UTF-8): the code point after U+D7FF in a string is U+E000.
SURROGATES = range(0xD800, 0xE000)


def prefix_end(prefix: str) -> str | None:
    """The least string above every string that starts with `prefix`, in code-point order
    (SQLite's binary collation and PostgreSQL's "C" collation alike compare UTF-8 bytes, which
    sort as code points): the prefix with its last character stepped up by one, so a prefix is
    a range an index can scan. A last character that cannot be stepped (U+10FFFF) is dropped
    and the one before it stepped; a prefix of nothing else has no end (None).

    (prefix + U+10FFFF is no such bound: it leaves out the strings that go on with U+10FFFF.)"""
    characters = list(prefix)
    while characters:
        last = ord(characters.pop())
        if last < LAST_CODE_POINT:
            step = last + 1
            return "".join(characters) + chr(SURROGATES.stop if step in SURROGATES else step)
    return None


class Where:
    __slots__ = ("clauses", "params")

    def __init__(self) -> None:
        self.clauses: list[str] = []
        self.params: list[Any] = []

    def add(self, clause: str, *params: Any) -> Where:
        """A condition and its parameters, as written."""
        self.clauses.append(clause)
        self.params.extend(params)
        return self

    def add_if(self, value: Any, clause: str) -> Where:
        """`clause` (with one mark) for `value`, unless it is None."""
        return self if value is None else self.add(clause, value)

    def eq(self, column: str, value: Any) -> Where:
        return self if value is None else self.add(f"{column} = ?", value)

    def prefix(self, column: str, prefix: str | None) -> Where:
        """Values that start with `prefix`, as a range (see `prefix_end`): the column must
        compare by code point (SQLite's default, PostgreSQL's COLLATE "C")."""
        if not prefix:
            return self
        end = prefix_end(prefix)
        if end is None:
            return self.add(f"{column} >= ?", prefix)
        return self.add(f"{column} >= ? AND {column} < ?", prefix, end)

    def after(self, column: str, value: Any, *, descending: bool = False) -> Where:
        """Rows past `value` in the list's order: the keyset cursor of a page."""
        if value is None:
            return self
        return self.add(f"{column} {'<' if descending else '>'} ?", value)

    def before(self, column: str, value: Any) -> Where:
        return self if value is None else self.add(f"{column} < ?", value)

    def at_least(self, column: str, value: Any) -> Where:
        return self if value is None else self.add(f"{column} >= ?", value)

    def within(self, column: str, values: Sequence[Any] | None) -> Where:
        if values is None:
            return self
        if not values:
            return self.add("1 = 0")
        return self.add(f"{column} IN ({', '.join('?' * len(values))})", *values)

    def __str__(self) -> str:
        return f" WHERE {' AND '.join(self.clauses)}" if self.clauses else ""

    def __bool__(self) -> bool:
        return bool(self.clauses)


def order_by(*columns: str, descending: bool = False) -> str:
    direction = " DESC" if descending else ""
    return " ORDER BY " + ", ".join(column + direction for column in columns)


def limit(count: int | None) -> str:
    """A LIMIT clause; the count is an int, so it is written into the text."""
    return "" if count is None else f" LIMIT {int(count)}"
