-- The ledger: journal, legs, balances, assets, accounts, pending transfers, idempotency,
-- reversals; payments; the dispatcher's routes, batches and outcomes; the outbox.
-- The schema as the code before versioned migrations created it (CREATE … IF NOT EXISTS):
-- applied to a store written by that code, it adopts it and adds only what was missing.
CREATE TABLE IF NOT EXISTS ledger_meta (
    key TEXT COLLATE "C" PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS journal (
    seq BIGINT PRIMARY KEY,
    id TEXT COLLATE "C" NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    at_us BIGINT NOT NULL,
    canonical BYTEA NOT NULL,
    hash BYTEA NOT NULL
);
CREATE TABLE IF NOT EXISTS legs (
    seq BIGINT NOT NULL,
    address TEXT COLLATE "C" NOT NULL,
    asset TEXT COLLATE "C" NOT NULL,
    posted NUMERIC(39, 0) NOT NULL,
    pending_out NUMERIC(39, 0) NOT NULL,
    pending_in NUMERIC(39, 0) NOT NULL,
    PRIMARY KEY (seq, address, asset)
);
CREATE INDEX IF NOT EXISTS legs_by_account ON legs (address, asset, seq);
CREATE TABLE IF NOT EXISTS assets (
    code TEXT COLLATE "C" PRIMARY KEY,
    scale INTEGER NOT NULL,
    kind TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS accounts (
    address TEXT COLLATE "C" PRIMARY KEY,
    asset TEXT COLLATE "C",
    allow_negative BOOLEAN NOT NULL,
    min_balance_minor NUMERIC(39, 0),
    max_balance_minor NUMERIC(39, 0),
    metadata JSONB NOT NULL
);
CREATE TABLE IF NOT EXISTS balances (
    address TEXT COLLATE "C" NOT NULL,
    asset TEXT COLLATE "C" NOT NULL,
    posted NUMERIC(39, 0) NOT NULL,
    pending_out NUMERIC(39, 0) NOT NULL,
    pending_in NUMERIC(39, 0) NOT NULL,
    PRIMARY KEY (address, asset)
) WITH (fillfactor = 85);
CREATE TABLE IF NOT EXISTS pendings (
    id TEXT COLLATE "C" PRIMARY KEY,
    source TEXT COLLATE "C" NOT NULL,
    destination TEXT COLLATE "C" NOT NULL,
    asset TEXT COLLATE "C" NOT NULL,
    amount_minor NUMERIC(39, 0) NOT NULL,
    expires_at_us BIGINT NOT NULL,
    created_seq BIGINT NOT NULL,
    state TEXT NOT NULL,
    posted_amount_minor NUMERIC(39, 0) NOT NULL,
    finished_seq BIGINT
);
CREATE INDEX IF NOT EXISTS pendings_due ON pendings (expires_at_us, id) WHERE state = 'pending';
CREATE TABLE IF NOT EXISTS idempotency (
    key TEXT COLLATE "C" PRIMARY KEY,
    request_hash BYTEA NOT NULL,
    seq BIGINT NOT NULL,
    entry_id TEXT COLLATE "C" NOT NULL
);
CREATE TABLE IF NOT EXISTS reversals (
    original_id TEXT COLLATE "C" PRIMARY KEY,
    reversal_id TEXT COLLATE "C" NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS payments (
    id TEXT COLLATE "C" PRIMARY KEY,
    pool TEXT COLLATE "C" NOT NULL,
    kind TEXT NOT NULL,
    asset TEXT COLLATE "C" NOT NULL,
    amount_minor NUMERIC(39, 0) NOT NULL,
    fee_minor NUMERIC(39, 0) NOT NULL,
    channel TEXT COLLATE "C",
    destination_channel TEXT COLLATE "C",
    counterparty TEXT,
    reference TEXT,
    state TEXT NOT NULL,
    approval_required BOOLEAN NOT NULL,
    created_at_us BIGINT NOT NULL,
    updated_at_us BIGINT NOT NULL,
    idempotency_key TEXT COLLATE "C",
    request_hash BYTEA NOT NULL,
    metadata JSONB NOT NULL,
    version INTEGER NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS payments_by_key ON payments (pool, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS payments_by_state ON payments (pool, state, id);
-- The payments a period created (the reconciliation export, payments/export.py).
CREATE INDEX IF NOT EXISTS payments_by_created ON payments (pool, created_at_us, id);
CREATE TABLE IF NOT EXISTS payment_events (
    payment_id TEXT COLLATE "C" NOT NULL,
    seq INTEGER NOT NULL,
    action TEXT NOT NULL,
    from_state TEXT,
    to_state TEXT NOT NULL,
    at_us BIGINT NOT NULL,
    entry_ids TEXT[] NOT NULL,
    reason TEXT,
    PRIMARY KEY (payment_id, seq)
);
CREATE TABLE IF NOT EXISTS payment_routes (
    payment_id TEXT COLLATE "C" NOT NULL,
    attempt INTEGER NOT NULL,
    at_us BIGINT NOT NULL,
    channel TEXT COLLATE "C",
    strategy TEXT NOT NULL,
    decision TEXT NOT NULL,
    batch_id TEXT COLLATE "C",
    rail_ref TEXT,
    PRIMARY KEY (payment_id, attempt)
);
CREATE TABLE IF NOT EXISTS channel_batches (
    id TEXT COLLATE "C" PRIMARY KEY,
    channel TEXT COLLATE "C" NOT NULL,
    asset TEXT COLLATE "C" NOT NULL,
    rail_ref TEXT,
    items INTEGER NOT NULL,
    amount_minor NUMERIC(39, 0) NOT NULL,
    fee_minor NUMERIC(39, 0) NOT NULL,
    single_fee_minor NUMERIC(39, 0) NOT NULL,
    savings_minor NUMERIC(39, 0) NOT NULL,
    opened_at_us BIGINT NOT NULL,
    submitted_at_us BIGINT NOT NULL,
    status TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS channel_outcomes (
    outcome_id TEXT COLLATE "C" NOT NULL,
    channel TEXT COLLATE "C" NOT NULL,
    payment_id TEXT COLLATE "C" NOT NULL,
    kind TEXT NOT NULL,
    at_us BIGINT NOT NULL,
    received_at_us BIGINT NOT NULL,
    disposition TEXT NOT NULL,
    detail TEXT,
    PRIMARY KEY (channel, outcome_id)
);
CREATE INDEX IF NOT EXISTS channel_outcomes_by_payment ON channel_outcomes (payment_id);
CREATE TABLE IF NOT EXISTS outbox (
    pos BIGINT PRIMARY KEY,
    pool TEXT COLLATE "C" NOT NULL,
    seq BIGINT NOT NULL,
    id TEXT COLLATE "C" NOT NULL UNIQUE,
    type TEXT NOT NULL,
    version INTEGER NOT NULL,
    at_us BIGINT NOT NULL,
    data TEXT NOT NULL,
    UNIQUE (pool, seq)
);
CREATE INDEX IF NOT EXISTS outbox_by_pool_time ON outbox (pool, at_us);
CREATE TABLE IF NOT EXISTS event_cursors (
    name TEXT COLLATE "C" PRIMARY KEY,
    pos BIGINT NOT NULL
);
