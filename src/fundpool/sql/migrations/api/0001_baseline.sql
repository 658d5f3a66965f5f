-- The API's kept answers for Idempotency-Key (POSTs whose domain keeps no key).
-- The schema as the code before versioned migrations created it (CREATE … IF NOT EXISTS):
-- applied to a store written by that code, it adopts it and adds only what was missing.
CREATE TABLE IF NOT EXISTS api_idempotency (
    caller TEXT NOT NULL,
    key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    state TEXT NOT NULL,
    status INTEGER,
    body TEXT,
    started_at_us BIGINT NOT NULL,
    PRIMARY KEY (caller, key)
);
