"""Test-only migrations (tests/sql/test_migrate.py): component `crash`, whose 0002 is a Python
migration that can be told to stop midway and wait to be killed."""
