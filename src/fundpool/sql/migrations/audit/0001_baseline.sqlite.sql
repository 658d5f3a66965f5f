-- The audit log (issue 17, docs/audit.md): its entries (seq from 0, the canonical JSON of
-- each record and its leaf hash, with the columns a search filters on), the names its actors
-- went by, the complete subtrees of its Merkle tree of level >= 4 (`audit_nodes`; a lower
-- one is made from its 2 to 8 leaves when it is needed), its signed checkpoints, how far it
-- has read each source, and the last verification's result.
--
-- Appending is the hot path, so `audit_entries` has only three secondary indexes: by object,
-- by actor (`kind:id`) and by time. A search by action filters the rows another index (or the
-- seq order) narrowed; a search by an actor's name finds its ids in `audit_actors` (one row
-- per id and name, added once per batch). No index keeps (source, source_id) unique: the
-- collector moves each source's cursor in the transaction that appends what it read, so a
-- record is never appended twice; `fundpool audit verify` names a doubled one
-- (`entry_duplicated`).

CREATE TABLE IF NOT EXISTS audit_entries (
    seq INTEGER PRIMARY KEY,
    at_us INTEGER NOT NULL,
    source TEXT NOT NULL,
    source_id TEXT NOT NULL,
    action TEXT NOT NULL,
    object_kind TEXT NOT NULL,
    object_id TEXT NOT NULL,
    actor_id TEXT,
    data BLOB NOT NULL,
    leaf BLOB NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS audit_entries_by_object ON audit_entries (object_kind, object_id);
CREATE INDEX IF NOT EXISTS audit_entries_by_actor ON audit_entries (actor_id);
CREATE INDEX IF NOT EXISTS audit_entries_by_time ON audit_entries (at_us);
-- The case notes' entries by time (the collector's check of what it has logged): only theirs.
CREATE INDEX IF NOT EXISTS audit_entries_case_notes ON audit_entries (at_us)
    WHERE source = 'risk.case';

CREATE TABLE IF NOT EXISTS audit_actors (
    name TEXT NOT NULL,
    actor_id TEXT NOT NULL,
    PRIMARY KEY (name, actor_id)
) STRICT, WITHOUT ROWID;

-- A node of level 4 to 9 is kept with the other nodes of its 1024-leaf block (`block` = its
-- first leaf >> 10), so the lower half of a proof is a few neighbouring rows; a node of level
-- >= 10 has `block` -1, all of them together (the store keeps them in memory: a complete
-- subtree never changes).
CREATE TABLE IF NOT EXISTS audit_nodes (
    block INTEGER NOT NULL,
    level INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    hash BLOB NOT NULL,
    PRIMARY KEY (block, level, idx)
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
