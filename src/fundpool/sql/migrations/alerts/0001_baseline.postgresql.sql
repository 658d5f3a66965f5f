-- Alerts and SLO samples.
-- The schema as the code before versioned migrations created it (CREATE … IF NOT EXISTS):
-- applied to a store written by that code, it adopts it and adds only what was missing.

CREATE TABLE IF NOT EXISTS alerts (
    id TEXT COLLATE "C" PRIMARY KEY,
    pool TEXT COLLATE "C" NOT NULL,
    rule TEXT COLLATE "C" NOT NULL,
    subject TEXT COLLATE "C" NOT NULL,
    severity TEXT NOT NULL,
    state TEXT NOT NULL,
    value TEXT,
    summary TEXT NOT NULL,
    fired_at_us BIGINT NOT NULL,
    acknowledged_at_us BIGINT,
    acknowledged_by TEXT,
    resolved_at_us BIGINT
);
CREATE UNIQUE INDEX IF NOT EXISTS alerts_active ON alerts (pool, rule, subject) WHERE state <> 'resolved';
CREATE INDEX IF NOT EXISTS alerts_by_time ON alerts (fired_at_us);

CREATE TABLE IF NOT EXISTS alert_sli_samples (
    pool TEXT COLLATE "C" NOT NULL,
    slo TEXT COLLATE "C" NOT NULL,
    at_us BIGINT NOT NULL,
    good BIGINT NOT NULL,
    total BIGINT NOT NULL,
    PRIMARY KEY (pool, slo, at_us)
);
