-- Reconciliation (issue 18): the files imported and their statements and lines, the outcome of
-- the latest match run for every statement line and book item of a channel (`recon_state`),
-- the matches made, the breaks people resolved (with a note, or by booking the difference),
-- expected incoming payments, the banks' saved CSV column mappings, and the trail of every
-- reconciliation action (`recon_actions`, read by the audit log in id order).
-- Amounts are TEXT (exact integers of minor units, beyond 64 bits where an asset needs it).

CREATE TABLE IF NOT EXISTS recon_actions (
    id INTEGER PRIMARY KEY,
    at_us INTEGER NOT NULL,
    action TEXT NOT NULL,
    object_kind TEXT NOT NULL,
    object_id TEXT NOT NULL,
    actor TEXT,
    details TEXT NOT NULL
) STRICT;

CREATE TABLE IF NOT EXISTS recon_files (
    id TEXT PRIMARY KEY,
    pool TEXT NOT NULL,
    channel TEXT NOT NULL,
    name TEXT NOT NULL,
    format TEXT NOT NULL,
    message TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    statements INTEGER NOT NULL,
    lines INTEGER NOT NULL,
    imported_at_us INTEGER NOT NULL,
    imported_by TEXT
) STRICT;
CREATE UNIQUE INDEX IF NOT EXISTS recon_files_once ON recon_files (pool, channel, sha256);

CREATE TABLE IF NOT EXISTS recon_statements (
    id TEXT PRIMARY KEY,
    file_id TEXT NOT NULL,
    pool TEXT NOT NULL,
    channel TEXT NOT NULL,
    account TEXT NOT NULL,
    asset TEXT NOT NULL,
    statement_id TEXT NOT NULL,
    sequence TEXT,
    created_at_us INTEGER NOT NULL,
    opening_minor TEXT,
    opening_at_us INTEGER,
    closing_minor TEXT,
    closing_at_us INTEGER,
    first_at_us INTEGER NOT NULL,
    last_at_us INTEGER NOT NULL,
    lines INTEGER NOT NULL
) STRICT;
CREATE UNIQUE INDEX IF NOT EXISTS recon_statements_once
    ON recon_statements (pool, channel, account, statement_id);
CREATE INDEX IF NOT EXISTS recon_statements_by_channel ON recon_statements (pool, channel, last_at_us);

CREATE TABLE IF NOT EXISTS recon_lines (
    id TEXT PRIMARY KEY,
    statement TEXT NOT NULL,
    position INTEGER NOT NULL,
    pool TEXT NOT NULL,
    channel TEXT NOT NULL,
    asset TEXT NOT NULL,
    amount_minor TEXT NOT NULL,
    booked_at_us INTEGER NOT NULL,
    value_at_us INTEGER NOT NULL,
    status TEXT NOT NULL,
    kind TEXT NOT NULL,
    end_to_end_id TEXT,
    batch_ref TEXT,
    bank_ref TEXT,
    reference TEXT,
    counterparty TEXT,
    counterparty_account TEXT,
    reason TEXT,
    parts TEXT NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS recon_lines_by_statement ON recon_lines (statement, position);

-- Where each line and book item stands after the latest run: matched and resolved are final;
-- ambiguous and break are what the next run looks at again.
CREATE TABLE IF NOT EXISTS recon_state (
    pool TEXT NOT NULL,
    channel TEXT NOT NULL,
    side TEXT NOT NULL,
    id TEXT NOT NULL,
    state TEXT NOT NULL,
    match_id TEXT,
    reason TEXT,
    amount_minor TEXT NOT NULL,
    asset TEXT NOT NULL,
    at_us INTEGER NOT NULL,
    related TEXT NOT NULL,
    payment_id TEXT,
    updated_at_us INTEGER NOT NULL,
    PRIMARY KEY (pool, side, id)
) STRICT;
CREATE INDEX IF NOT EXISTS recon_state_by_channel ON recon_state (pool, channel, state, at_us);
CREATE INDEX IF NOT EXISTS recon_state_by_payment ON recon_state (payment_id) WHERE payment_id IS NOT NULL;

CREATE TABLE IF NOT EXISTS recon_matches (
    id TEXT PRIMARY KEY,
    pool TEXT NOT NULL,
    channel TEXT NOT NULL,
    rule TEXT NOT NULL,
    shape TEXT NOT NULL,
    difference_minor TEXT NOT NULL,
    lines TEXT NOT NULL,
    items TEXT NOT NULL,
    at_us INTEGER NOT NULL,
    actor TEXT
) STRICT;

CREATE TABLE IF NOT EXISTS recon_resolutions (
    id TEXT PRIMARY KEY,
    pool TEXT NOT NULL,
    channel TEXT NOT NULL,
    side TEXT NOT NULL,
    target TEXT NOT NULL,
    action TEXT NOT NULL,
    note TEXT NOT NULL,
    asset TEXT NOT NULL,
    amount_minor TEXT NOT NULL,
    entry_id TEXT,
    at_us INTEGER NOT NULL,
    actor TEXT NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS recon_resolutions_by_channel ON recon_resolutions (pool, channel, at_us);

CREATE TABLE IF NOT EXISTS recon_expected (
    id TEXT PRIMARY KEY,
    pool TEXT NOT NULL,
    channel TEXT NOT NULL,
    asset TEXT NOT NULL,
    amount_min_minor TEXT NOT NULL,
    amount_max_minor TEXT NOT NULL,
    from_us INTEGER NOT NULL,
    until_us INTEGER NOT NULL,
    reference TEXT,
    counterparty TEXT,
    state TEXT NOT NULL,
    credit_id TEXT,
    created_at_us INTEGER NOT NULL,
    created_by TEXT,
    matched_at_us INTEGER
) STRICT;
CREATE INDEX IF NOT EXISTS recon_expected_by_channel ON recon_expected (pool, channel, state);

CREATE TABLE IF NOT EXISTS recon_mappings (
    name TEXT PRIMARY KEY,
    text TEXT NOT NULL,
    saved_at_us INTEGER NOT NULL,
    saved_by TEXT
) STRICT;
