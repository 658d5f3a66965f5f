-- Risk control: policy versions, decisions, the review queue (cases and their notes),
-- sanctions lists, cleared false positives, the party registry (KYC/KYB, country), and a
-- revision per kind that tells the engine what to reload.

CREATE TABLE IF NOT EXISTS risk_policies (
    version BIGINT PRIMARY KEY,
    text TEXT NOT NULL,
    digest TEXT NOT NULL,
    note TEXT,
    state TEXT NOT NULL,
    created_at_us BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    activated_at_us BIGINT,
    activated_by TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS risk_policies_one_active ON risk_policies (state)
    WHERE state = 'active';

CREATE TABLE IF NOT EXISTS risk_decisions (
    payment_id TEXT COLLATE "C" PRIMARY KEY,
    pool TEXT NOT NULL,
    policy_version INTEGER,
    outcome TEXT NOT NULL,
    score BIGINT NOT NULL,
    detail TEXT NOT NULL,
    at_us BIGINT NOT NULL,
    channel TEXT
);
CREATE INDEX IF NOT EXISTS risk_decisions_by_time ON risk_decisions (pool, at_us);
-- The blocks of the last day, for the alert bar.
CREATE INDEX IF NOT EXISTS risk_decisions_blocked ON risk_decisions (outcome, at_us);

CREATE TABLE IF NOT EXISTS risk_cases (
    id TEXT COLLATE "C" PRIMARY KEY,
    pool TEXT NOT NULL,
    payment_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    summary TEXT NOT NULL,
    opened_at_us BIGINT NOT NULL,
    due_at_us BIGINT NOT NULL,
    claimed_by TEXT,
    claimed_at_us BIGINT,
    decided_at_us BIGINT,
    decided_by TEXT,
    decision TEXT,
    version BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS risk_cases_by_state ON risk_cases (state, due_at_us);
CREATE UNIQUE INDEX IF NOT EXISTS risk_cases_one_open ON risk_cases (payment_id)
    WHERE state IN ('open', 'claimed', 'escalated');
CREATE INDEX IF NOT EXISTS risk_cases_by_payment ON risk_cases (payment_id, opened_at_us);

CREATE TABLE IF NOT EXISTS risk_case_notes (
    case_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    at_us BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    note TEXT,
    PRIMARY KEY (case_id, seq)
);

CREATE TABLE IF NOT EXISTS risk_lists (
    name TEXT COLLATE "C" PRIMARY KEY,
    version TEXT NOT NULL,
    format TEXT NOT NULL,
    entries BIGINT NOT NULL,
    content BYTEA NOT NULL,
    loaded_at_us BIGINT NOT NULL,
    loaded_by TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS risk_cleared (
    query TEXT NOT NULL,
    entry_id TEXT NOT NULL,
    at_us BIGINT NOT NULL,
    actor TEXT NOT NULL,
    note TEXT NOT NULL,
    PRIMARY KEY (query, entry_id)
);

CREATE TABLE IF NOT EXISTS risk_parties (
    name TEXT COLLATE "C" PRIMARY KEY,
    kyc TEXT NOT NULL,
    country TEXT,
    updated_at_us BIGINT NOT NULL,
    updated_by TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS risk_revisions (
    kind TEXT COLLATE "C" PRIMARY KEY,
    revision BIGINT NOT NULL
);

-- What groups did when they fired besides their score or outcome (the policy's `respond`):
-- a graded alert (kind `alert`), or a limit lowered for a while (kind `limit`: payouts per
-- `per` = `key` in `asset` above `max_minor` are held until `until_us`; a risk officer who
-- lifts it sooner is `ended_by`, with the note).
CREATE TABLE IF NOT EXISTS risk_responses (
    id TEXT COLLATE "C" PRIMARY KEY,
    pool TEXT NOT NULL,
    payment_id TEXT NOT NULL,
    group_name TEXT NOT NULL,
    kind TEXT NOT NULL,
    severity TEXT,
    per TEXT,
    key TEXT,
    asset TEXT,
    max_minor TEXT,
    until_us BIGINT,
    at_us BIGINT NOT NULL,
    ended_by TEXT,
    ended_note TEXT
);
CREATE INDEX IF NOT EXISTS risk_responses_by_kind ON risk_responses (kind, at_us);
