-- After the Python migration: an index on its table, and this migration's row.
CREATE INDEX crash_rows_by_n ON crash_rows (n);
INSERT INTO crash_things (id, note) VALUES (3, '0003_index');
