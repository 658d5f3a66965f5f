-- API keys, users and console sessions.
-- The schema as the code before versioned migrations created it (CREATE … IF NOT EXISTS):
-- applied to a store written by that code, it adopts it and adds only what was missing.

CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT COLLATE "C" PRIMARY KEY,
    name TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    roles TEXT NOT NULL,
    scopes TEXT,
    created_at_us BIGINT NOT NULL,
    expires_at_us BIGINT,
    revoked_at_us BIGINT,
    replaced_by TEXT COLLATE "C",
    created_by TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS users (
    id TEXT COLLATE "C" PRIMARY KEY,
    username TEXT COLLATE "C" NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    roles TEXT NOT NULL,
    disabled BOOLEAN NOT NULL DEFAULT FALSE,
    created_at_us BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS user_sessions (
    id TEXT COLLATE "C" PRIMARY KEY,
    user_id TEXT COLLATE "C" NOT NULL REFERENCES users (id),
    secret_hash TEXT NOT NULL,
    csrf_hash TEXT NOT NULL,
    created_at_us BIGINT NOT NULL,
    expires_at_us BIGINT NOT NULL,
    revoked_at_us BIGINT
);
CREATE INDEX IF NOT EXISTS user_sessions_by_user ON user_sessions (user_id);
