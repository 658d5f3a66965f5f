-- Approvals (issue 17): approval rule versions and the votes that activate them, approvers'
-- Ed25519 public keys and TOTP secrets, each waiting payment's plan (its stages), the
-- signatures and rejections given, delay windows, and the trail of every approvals action
-- (`approval_actions`, read by the audit log in id order).

CREATE TABLE IF NOT EXISTS approval_actions (
    id INTEGER PRIMARY KEY,
    at_us INTEGER NOT NULL,
    action TEXT NOT NULL,
    object_kind TEXT NOT NULL,
    object_id TEXT NOT NULL,
    actor TEXT,
    details TEXT NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS approval_actions_by_object ON approval_actions (object_kind, object_id, id);

CREATE TABLE IF NOT EXISTS approval_rule_versions (
    version INTEGER PRIMARY KEY,
    text TEXT NOT NULL,
    digest TEXT NOT NULL,
    note TEXT,
    state TEXT NOT NULL,
    created_at_us INTEGER NOT NULL,
    author TEXT NOT NULL,
    author_who TEXT NOT NULL,
    activated_at_us INTEGER,
    retired_at_us INTEGER
) STRICT;
CREATE UNIQUE INDEX IF NOT EXISTS approval_rules_one_active ON approval_rule_versions (state)
    WHERE state = 'active';

CREATE TABLE IF NOT EXISTS approval_rule_votes (
    version INTEGER NOT NULL,
    voter_who TEXT NOT NULL,
    voter TEXT NOT NULL,
    at_us INTEGER NOT NULL,
    PRIMARY KEY (version, voter_who)
) STRICT, WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS approval_keys (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    username TEXT NOT NULL,
    name TEXT NOT NULL,
    public_key BLOB NOT NULL UNIQUE,
    created_at_us INTEGER NOT NULL,
    revoked_at_us INTEGER
) STRICT;
CREATE INDEX IF NOT EXISTS approval_keys_by_user ON approval_keys (user_id);

CREATE TABLE IF NOT EXISTS approval_totp (
    user_id TEXT PRIMARY KEY,
    secret TEXT,
    pending_secret TEXT,
    confirmed_at_us INTEGER,
    last_step INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE TABLE IF NOT EXISTS approval_plans (
    payment_id TEXT NOT NULL,
    round INTEGER NOT NULL,
    rules_version INTEGER NOT NULL,
    plan TEXT NOT NULL,
    created_at_us INTEGER NOT NULL,
    PRIMARY KEY (payment_id, round)
) STRICT, WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS approval_signatures (
    id INTEGER PRIMARY KEY,
    payment_id TEXT NOT NULL,
    round INTEGER NOT NULL,
    stage INTEGER NOT NULL,
    decision TEXT NOT NULL,
    approver_who TEXT NOT NULL,
    approver TEXT NOT NULL,
    key_id TEXT,
    signature BLOB,
    digest BLOB NOT NULL,
    note TEXT,
    at_us INTEGER NOT NULL,
    UNIQUE (payment_id, round, approver_who)
) STRICT;
CREATE UNIQUE INDEX IF NOT EXISTS approval_signatures_once ON approval_signatures (signature)
    WHERE signature IS NOT NULL;

CREATE TABLE IF NOT EXISTS approval_delays (
    payment_id TEXT PRIMARY KEY,
    pool TEXT NOT NULL,
    round INTEGER NOT NULL,
    release_at_us INTEGER NOT NULL,
    state TEXT NOT NULL,
    cancellable_by TEXT NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS approval_delays_due ON approval_delays (state, release_at_us);
