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

# Nothing that starts with a prefix sorts at or above prefix + U+10FFFF, in SQLite's binary
# collation and in PostgreSQL's "C" collation alike: a prefix is a range an index can scan.
PREFIX_END = "\U0010ffff"


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
        if not prefix:
            return self
        return self.add(f"{column} >= ? AND {column} < ?", prefix, prefix + PREFIX_END)

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
