"""What differs between SQLite and PostgreSQL, in one place.

Statements are written once, with `?` for a parameter; `Dialect.sql` gives the driver's text
(psycopg's `%s`, with a literal `%` doubled). Everything else that differs is a method here:
how a list of values is matched (`IN (?, …)` or `= ANY(%s)`), how an amount that may pass 64
bits travels, which exceptions mean a constraint or the driver failed, how a row is locked for
an update. A store that needs more than this keeps its difference beside its SQL as a hook of
its own, and says why.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any

from fundpool.sql.url import Kind


@dataclass(frozen=True, slots=True)
class Dialect:
    name: Kind
    mark: str
    # SQLite's INTEGER stops at 2^63 - 1: wide amounts travel as decimal text there.
    text_amounts: bool
    # Within a transaction PostgreSQL must lock the rows it reads to decide a write; SQLite's
    # BEGIN IMMEDIATE already holds the whole file.
    for_update: str
    integrity_errors: tuple[type[Exception], ...]
    driver_errors: tuple[type[Exception], ...]

    @property
    def is_postgres(self) -> bool:
        return self.name == "postgresql"

    def sql(self, text: str) -> str:
        """The statement `text` (written with `?` marks) in this driver's parameter style."""
        if self.mark == "?":
            return text
        return _percent_marks(text)

    def marks(self, count: int) -> str:
        return ", ".join([self.mark] * count)

    def in_values(self, column: str, values: Sequence[Any]) -> tuple[str, tuple[Any, ...]]:
        """`column` matched against `values`: one array parameter on PostgreSQL (planned with
        the array in hand, it probes an index or a hash of the elements), a list of marks on
        SQLite. Written with `?` marks, like every statement."""
        if self.is_postgres:
            return f"{column} = ANY(?)", (list(values),)
        return f"{column} IN ({', '.join('?' * len(values))})", tuple(values)

    def amount(self, value: int | None) -> Any:
        """An amount (or a sum of amounts) as a parameter."""
        if value is None:
            return None
        return str(value) if self.text_amounts else value

    def amounts(self, values: Iterable[int]) -> tuple[Any, ...]:
        return tuple(self.amount(value) for value in values)


@lru_cache(maxsize=4096)
def _percent_marks(text: str) -> str:
    """`?` outside quoted text becomes `%s`; a literal `%` becomes `%%`."""
    out: list[str] = []
    quote: str | None = None
    for char in text:
        if quote is not None:
            out.append("%%" if char == "%" else char)
            if char == quote:
                quote = None
        elif char in "'\"":
            quote = char
            out.append(char)
        elif char == "?":
            out.append("%s")
        elif char == "%":
            out.append("%%")
        else:
            out.append(char)
    return "".join(out)


SQLITE = Dialect(
    name="sqlite",
    mark="?",
    text_amounts=True,
    for_update="",
    integrity_errors=(sqlite3.IntegrityError,),
    driver_errors=(sqlite3.Error,),
)


@cache
def postgresql() -> Dialect:
    """PostgreSQL's dialect, made when first asked for: its driver (psycopg) loads then, so a
    command on a SQLite file starts without it."""
    import psycopg

    return Dialect(
        name="postgresql",
        mark="%s",
        text_amounts=False,
        for_update=" FOR UPDATE",
        integrity_errors=(psycopg.IntegrityError,),
        driver_errors=(psycopg.Error,),
    )


def dialect(kind: Kind) -> Dialect:
    return SQLITE if kind == "sqlite" else postgresql()


def driver_errors() -> tuple[type[BaseException], ...]:
    """The database drivers' own exception bases (what a store raises when the database itself
    fails), for entry points that turn them into `store_error`."""
    return (*SQLITE.driver_errors, *postgresql().driver_errors)
