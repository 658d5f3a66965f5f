"""Database URLs: which kind of database a URL names, and how to show it without its password.

Two kinds are supported: `sqlite:///PATH` (the embedded store; `:memory:` for a throwaway one)
and `postgresql://…` (also `postgres://…`) with an optional `?schema=NAME` that libpq would
refuse, so it is taken out here (default `fundpool`). Anything else is refused with
`unsupported_database_url`, naming the two forms.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from fundpool.core.errors import FundpoolError

DEFAULT_SCHEMA = "fundpool"
# A schema name is an identifier we also quote; keeping it plain keeps it easy to type in psql.
SCHEMA_NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}\Z")

Kind = Literal["sqlite", "postgresql"]


class UnsupportedDatabaseUrl(FundpoolError):
    code = "unsupported_database_url"
    title = "unsupported database URL: use sqlite:///PATH or postgresql://USER@HOST/DB[?schema=NAME]"


@dataclass(frozen=True, slots=True)
class DatabaseUrl:
    """A parsed database URL: `target` is the file path (SQLite) or the libpq URL without the
    schema parameter (PostgreSQL)."""

    kind: Kind
    target: str
    schema: str | None = None

    @property
    def is_postgres(self) -> bool:
        return self.kind == "postgresql"

    @property
    def text(self) -> str:
        if self.kind == "sqlite":
            return f"sqlite:///{self.target}"
        if self.schema is None:
            return self.target
        separator = "&" if urlsplit(self.target).query else "?"
        return f"{self.target}{separator}schema={self.schema}"


def parse_url(url: str) -> DatabaseUrl:
    if url.startswith("sqlite:///"):
        path = url.removeprefix("sqlite:///")
        if not path:
            raise UnsupportedDatabaseUrl(url=url, reason="no file path after sqlite:///")
        return DatabaseUrl("sqlite", path)
    if url.startswith("sqlite:"):
        raise UnsupportedDatabaseUrl(
            url=url, reason="a SQLite URL is sqlite:/// then the file's path "
            "(sqlite:///data/ledger.sqlite3, or sqlite:////srv/ledger.sqlite3 for an absolute one)")
    if url.startswith(("postgresql://", "postgres://")):
        target, schema = split_schema(url)
        if schema is not None and not SCHEMA_NAME_PATTERN.match(schema):
            raise UnsupportedDatabaseUrl(
                url=redact(url),
                reason=f"schema name {schema!r}: use letters, digits and '_', "
                "starting with a letter",
            )
        return DatabaseUrl("postgresql", target, schema)
    raise UnsupportedDatabaseUrl(url=redact(url))


def split_schema(url: str) -> tuple[str, str | None]:
    """Take the `schema` query parameter out of a PostgreSQL URL (libpq would refuse it)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    schemas = [value for key, value in query if key == "schema"]
    rest = [(key, value) for key, value in query if key != "schema"]
    schema = schemas[-1] if schemas else None
    return urlunsplit(parts._replace(query=urlencode(rest))), schema


def redact(url: str) -> str:
    """`url` without its password, for messages."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "?"
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host += f":{parts.port}"
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))
