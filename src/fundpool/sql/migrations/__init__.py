"""Versioned, forward-only migrations, one folder per component
(docs/adr/0014-sql-layer-and-migrations.md).

A file is `NNNN_name.sql` (the same text on both databases), `NNNN_name.sqlite.sql` and
`NNNN_name.postgresql.sql` (where their DDL differs), or `NNNN_name.py` with
`def upgrade(tx: fundpool.sql.database.Transaction) -> None` (a data migration).
"""
