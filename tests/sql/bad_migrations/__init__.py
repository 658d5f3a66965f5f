"""Test-only migration folders that are wrong on purpose (tests/sql/test_migrate.py): `gap`
(1 and 3, no 2), `twice` (two migrations numbered 1), `failing` (2 fails with an SQL error)."""
