-- Who changed which key or user: an append-only trail, written in the transaction of each
-- change (creating, rotating, revoking a key; adding a user, setting roles or a password,
-- disabling), and the actor who created each key and user on its own row.
-- Rows from before this migration have no actor (NULL): they show as unknown.

CREATE TABLE auth_changes (
    id INTEGER PRIMARY KEY,
    at_us INTEGER NOT NULL,
    action TEXT NOT NULL,
    target_kind TEXT NOT NULL,
    target_id TEXT NOT NULL,
    target_name TEXT NOT NULL,
    actor TEXT,
    details TEXT NOT NULL
) STRICT;
CREATE INDEX auth_changes_by_target ON auth_changes (target_kind, target_id, id);

ALTER TABLE api_keys ADD COLUMN creator TEXT;
ALTER TABLE users ADD COLUMN creator TEXT;
