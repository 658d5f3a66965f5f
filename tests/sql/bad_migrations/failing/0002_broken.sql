-- Its first two statements work, the third names a table that is not there: all or nothing.
CREATE TABLE failing_half (n INTEGER);
INSERT INTO failing_half (n) VALUES (1);
INSERT INTO no_such_table (n) VALUES (1);
