-- Alerts and SLO samples.
-- The schema as the code before versioned migrations created it (CREATE … IF NOT EXISTS):
-- applied to a store written by that code, it adopts it and adds only what was missing.

CREATE TABLE IF NOT EXISTS alerts (
    id TEXT  PRIMARY KEY,
    pool TEXT  NOT NULL,
    rule TEXT  NOT NULL,
    subject TEXT  NOT NULL,
    severity TEXT NOT NULL,
    state TEXT NOT NULL,
    value TEXT,
    summary TEXT NOT NULL,
    fired_at_us INTEGER NOT NULL,
    acknowledged_at_us INTEGER,
    acknowledged_by TEXT,
    resolved_at_us INTEGER
) STRICT;
CREATE UNIQUE INDEX IF NOT EXISTS alerts_active ON alerts (pool, rule, subject) WHERE state <> 'resolved';
CREATE INDEX IF NOT EXISTS alerts_by_time ON alerts (fired_at_us);

CREATE TABLE IF NOT EXISTS alert_sli_samples (
    pool TEXT  NOT NULL,
    slo TEXT  NOT NULL,
    at_us INTEGER NOT NULL,
    good INTEGER NOT NULL,
    total INTEGER NOT NULL,
    PRIMARY KEY (pool, slo, at_us)
) STRICT, WITHOUT ROWID;
