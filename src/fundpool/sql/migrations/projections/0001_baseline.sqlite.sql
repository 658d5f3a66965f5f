-- Live projections: cells, time series, cursors, rejected events.
-- The schema as the code before versioned migrations created it (CREATE … IF NOT EXISTS):
-- applied to a store written by that code, it adopts it and adds only what was missing.

CREATE TABLE IF NOT EXISTS projection_cells (
    pool TEXT NOT NULL,
    name TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (pool, name, key)
) STRICT, WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS projection_series (
    pool TEXT NOT NULL,
    metric TEXT NOT NULL,
    res TEXT NOT NULL,
    bucket_us INTEGER NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (pool, metric, res, bucket_us)
) STRICT, WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS projection_cursors (
    pool TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    at_us INTEGER NOT NULL,
    pos INTEGER NOT NULL DEFAULT 0,
    duplicates INTEGER NOT NULL DEFAULT 0,
    ignored INTEGER NOT NULL DEFAULT 0,
    rejected INTEGER NOT NULL DEFAULT 0
) STRICT, WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS projection_rejects (
    pool TEXT NOT NULL,
    seq INTEGER NOT NULL,
    event_id TEXT,
    code TEXT NOT NULL,
    detail TEXT NOT NULL,
    PRIMARY KEY (pool, seq)
) STRICT, WITHOUT ROWID;
