-- The audit log (issue 17, docs/audit.md): its entries (seq from 0, the canonical JSON of
-- each record and its leaf hash, with the columns a search filters on), every complete
-- subtree of its Merkle tree above the leaves (`audit_nodes`: level >= 1), its signed
-- checkpoints, how far it has read each source, and the last verification's result.

CREATE TABLE IF NOT EXISTS audit_entries (
    seq INTEGER PRIMARY KEY,
    at_us INTEGER NOT NULL,
    source TEXT NOT NULL,
    source_id TEXT NOT NULL,
    action TEXT NOT NULL,
    object_kind TEXT NOT NULL,
    object_id TEXT NOT NULL,
    actor_id TEXT,
    actor_name TEXT,
    data BLOB NOT NULL,
    leaf BLOB NOT NULL
) STRICT;
CREATE UNIQUE INDEX IF NOT EXISTS audit_entries_once ON audit_entries (source, source_id);
CREATE INDEX IF NOT EXISTS audit_entries_by_object ON audit_entries (object_kind, object_id);
CREATE INDEX IF NOT EXISTS audit_entries_by_action ON audit_entries (action);
CREATE INDEX IF NOT EXISTS audit_entries_by_actor ON audit_entries (actor_id);
CREATE INDEX IF NOT EXISTS audit_entries_by_actor_name ON audit_entries (actor_name);
CREATE INDEX IF NOT EXISTS audit_entries_by_time ON audit_entries (at_us);

CREATE TABLE IF NOT EXISTS audit_nodes (
    level INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    hash BLOB NOT NULL,
    PRIMARY KEY (level, idx)
) STRICT, WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS audit_checkpoints (
    size INTEGER NOT NULL,
    root BLOB NOT NULL,
    at_us INTEGER NOT NULL,
    key_id TEXT NOT NULL,
    signature BLOB NOT NULL,
    PRIMARY KEY (size, root)
) STRICT, WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS audit_cursors (
    source TEXT PRIMARY KEY,
    position INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS audit_verifications (
    id INTEGER PRIMARY KEY,
    at_us INTEGER NOT NULL,
    size INTEGER NOT NULL,
    ok INTEGER NOT NULL,
    report TEXT NOT NULL
) STRICT;
