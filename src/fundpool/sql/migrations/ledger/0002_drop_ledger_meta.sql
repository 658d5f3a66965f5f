-- The stored `ledger_meta.schema_version` was written once and never read; a store's version
-- is now the `schema_migrations` table's, per component, and checked at start-up.
DROP TABLE IF EXISTS ledger_meta;
