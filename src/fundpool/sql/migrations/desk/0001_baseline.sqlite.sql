-- The treasury desk (issue 19): its objects (FX quotes and conversions, rebalancing plans,
-- sweep runs, netting obligations and cycles, credit-line states) as JSON bodies by kind and
-- id, each with the state that decides what may happen to it next, and the trail of every
-- desk action (`desk_actions`, read by the audit log in id order). Amounts inside bodies are
-- decimal strings of minor units (exact integers).

CREATE TABLE IF NOT EXISTS desk_actions (
    id INTEGER PRIMARY KEY,
    at_us INTEGER NOT NULL,
    action TEXT NOT NULL,
    object_kind TEXT NOT NULL,
    object_id TEXT NOT NULL,
    actor TEXT,
    details TEXT NOT NULL
) STRICT;

CREATE TABLE IF NOT EXISTS desk_objects (
    kind TEXT NOT NULL,
    id TEXT NOT NULL,
    pool TEXT NOT NULL,
    state TEXT NOT NULL,
    created_at_us INTEGER NOT NULL,
    updated_at_us INTEGER NOT NULL,
    actor TEXT,
    body TEXT NOT NULL,
    PRIMARY KEY (kind, id)
) STRICT;

CREATE INDEX IF NOT EXISTS desk_objects_by_state
    ON desk_objects (pool, kind, state, created_at_us);
CREATE INDEX IF NOT EXISTS desk_objects_by_time ON desk_objects (pool, kind, created_at_us);
