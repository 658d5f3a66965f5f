-- The component's first table: every later migration writes a row into it, once.
CREATE TABLE IF NOT EXISTS crash_things (
    id INTEGER PRIMARY KEY,
    note TEXT NOT NULL
);
