"""The one SQL layer: every module that writes SQL goes through it
(docs/adr/0014-sql-layer-and-migrations.md).

- `url` — which database a URL names (`sqlite:///PATH`, `postgresql://…?schema=NAME`).
- `dialect` — what differs between SQLite and PostgreSQL, in one place.
- `database` — `Database`: the one way to open a connection, read, and run a transaction.
- `query` — the WHERE and paging builders.
- `migrate` — versioned, forward-only migrations per component (`fundpool db upgrade`).
"""

from fundpool.sql.database import Database, Transaction
from fundpool.sql.dialect import Dialect
from fundpool.sql.query import Where
from fundpool.sql.url import DatabaseUrl, UnsupportedDatabaseUrl, parse_url

__all__ = ["Database", "DatabaseUrl", "Dialect", "Transaction", "UnsupportedDatabaseUrl",
           "Where", "parse_url"]
