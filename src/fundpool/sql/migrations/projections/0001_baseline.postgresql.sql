-- Live projections: cells, time series, cursors, rejected events.
-- The schema as the code before versioned migrations created it (CREATE … IF NOT EXISTS):
-- applied to a store written by that code, it adopts it and adds only what was missing.

CREATE TABLE IF NOT EXISTS projection_cells (
    pool TEXT COLLATE "C" NOT NULL,
    name TEXT COLLATE "C" NOT NULL,
    key TEXT COLLATE "C" NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (pool, name, key)
);
CREATE TABLE IF NOT EXISTS projection_series (
    pool TEXT COLLATE "C" NOT NULL,
    metric TEXT COLLATE "C" NOT NULL,
    res TEXT COLLATE "C" NOT NULL,
    bucket_us BIGINT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (pool, metric, res, bucket_us)
);
CREATE TABLE IF NOT EXISTS projection_cursors (
    pool TEXT COLLATE "C" PRIMARY KEY,
    seq BIGINT NOT NULL,
    at_us BIGINT NOT NULL,
    pos BIGINT NOT NULL DEFAULT 0,
    duplicates BIGINT NOT NULL DEFAULT 0,
    ignored BIGINT NOT NULL DEFAULT 0,
    rejected BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS projection_rejects (
    pool TEXT COLLATE "C" NOT NULL,
    seq BIGINT NOT NULL,
    event_id TEXT,
    code TEXT NOT NULL,
    detail TEXT NOT NULL,
    PRIMARY KEY (pool, seq)
);
