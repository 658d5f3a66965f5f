-- The ledger: journal, legs, balances, assets, accounts, pending transfers, idempotency,
-- reversals; payments; the dispatcher's routes, batches and outcomes; the outbox.
-- The schema as the code before versioned migrations created it (CREATE … IF NOT EXISTS):
-- applied to a store written by that code, it adopts it and adds only what was missing.
CREATE TABLE IF NOT EXISTS ledger_meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS journal (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    at_us INTEGER NOT NULL,
    canonical BLOB NOT NULL,
    hash BLOB NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS legs (
    seq INTEGER NOT NULL,
    address TEXT NOT NULL,
    asset TEXT NOT NULL,
    posted ANY NOT NULL,
    pending_out ANY NOT NULL,
    pending_in ANY NOT NULL,
    PRIMARY KEY (seq, address, asset)
) STRICT, WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS legs_by_account ON legs (address, asset, seq);
CREATE TABLE IF NOT EXISTS assets (
    code TEXT PRIMARY KEY,
    scale INTEGER NOT NULL,
    kind TEXT NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS accounts (
    address TEXT PRIMARY KEY,
    asset TEXT,
    allow_negative INTEGER NOT NULL,
    min_balance_minor TEXT,
    max_balance_minor TEXT,
    metadata TEXT NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS balances (
    address TEXT NOT NULL,
    asset TEXT NOT NULL,
    posted ANY NOT NULL,
    pending_out ANY NOT NULL,
    pending_in ANY NOT NULL,
    PRIMARY KEY (address, asset)
) STRICT, WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS pendings (
    id TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    destination TEXT NOT NULL,
    asset TEXT NOT NULL,
    amount_minor TEXT NOT NULL,
    expires_at_us INTEGER NOT NULL,
    created_seq INTEGER NOT NULL,
    state TEXT NOT NULL,
    posted_amount_minor TEXT NOT NULL,
    finished_seq INTEGER
) STRICT;
CREATE INDEX IF NOT EXISTS pendings_due ON pendings (expires_at_us, id) WHERE state = 'pending';
CREATE TABLE IF NOT EXISTS idempotency (
    key TEXT PRIMARY KEY,
    request_hash BLOB NOT NULL,
    seq INTEGER NOT NULL,
    entry_id TEXT NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS reversals (
    original_id TEXT PRIMARY KEY,
    reversal_id TEXT NOT NULL UNIQUE
) STRICT;
CREATE TABLE IF NOT EXISTS payments (
    id TEXT PRIMARY KEY,
    pool TEXT NOT NULL,
    kind TEXT NOT NULL,
    asset TEXT NOT NULL,
    amount_minor TEXT NOT NULL,
    fee_minor TEXT NOT NULL,
    channel TEXT,
    destination_channel TEXT,
    counterparty TEXT,
    reference TEXT,
    state TEXT NOT NULL,
    approval_required INTEGER NOT NULL,
    created_at_us INTEGER NOT NULL,
    updated_at_us INTEGER NOT NULL,
    idempotency_key TEXT,
    request_hash BLOB NOT NULL,
    metadata TEXT NOT NULL,
    version INTEGER NOT NULL
) STRICT;
CREATE UNIQUE INDEX IF NOT EXISTS payments_by_key ON payments (pool, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS payments_by_state ON payments (pool, state, id);
-- The payments a period created (the reconciliation export, payments/export.py).
CREATE INDEX IF NOT EXISTS payments_by_created ON payments (pool, created_at_us, id);
CREATE TABLE IF NOT EXISTS payment_events (
    payment_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    action TEXT NOT NULL,
    from_state TEXT,
    to_state TEXT NOT NULL,
    at_us INTEGER NOT NULL,
    entry_ids TEXT NOT NULL,
    reason TEXT,
    PRIMARY KEY (payment_id, seq)
) STRICT, WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS payment_routes (
    payment_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    at_us INTEGER NOT NULL,
    channel TEXT,
    strategy TEXT NOT NULL,
    decision TEXT NOT NULL,
    batch_id TEXT,
    rail_ref TEXT,
    PRIMARY KEY (payment_id, attempt)
) STRICT, WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS channel_batches (
    id TEXT PRIMARY KEY,
    channel TEXT NOT NULL,
    asset TEXT NOT NULL,
    rail_ref TEXT,
    items INTEGER NOT NULL,
    amount_minor TEXT NOT NULL,
    fee_minor TEXT NOT NULL,
    single_fee_minor TEXT NOT NULL,
    savings_minor TEXT NOT NULL,
    opened_at_us INTEGER NOT NULL,
    submitted_at_us INTEGER NOT NULL,
    status TEXT NOT NULL
) STRICT, WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS channel_outcomes (
    outcome_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    payment_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    at_us INTEGER NOT NULL,
    received_at_us INTEGER NOT NULL,
    disposition TEXT NOT NULL,
    detail TEXT,
    PRIMARY KEY (channel, outcome_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS channel_outcomes_by_payment ON channel_outcomes (payment_id);
CREATE TABLE IF NOT EXISTS outbox (
    pos INTEGER PRIMARY KEY,
    pool TEXT NOT NULL,
    seq INTEGER NOT NULL,
    id TEXT NOT NULL UNIQUE,
    type TEXT NOT NULL,
    version INTEGER NOT NULL,
    at_us INTEGER NOT NULL,
    data TEXT NOT NULL,
    UNIQUE (pool, seq)
) STRICT;
CREATE INDEX IF NOT EXISTS outbox_by_pool_time ON outbox (pool, at_us);
CREATE TABLE IF NOT EXISTS event_cursors (
    name TEXT PRIMARY KEY,
    pos INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
