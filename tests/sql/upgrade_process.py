"""Run as a process of its own by tests/sql/test_migrate.py: upgrade one component of a
database, then print the versions it applied on one line.

    python -m tests.sql.upgrade_process URL PACKAGE COMPONENT MARKER_TABLE
"""

from __future__ import annotations

import sys

from fundpool.sql import migrate
from fundpool.sql.database import Database


def main(argv: list[str]) -> int:
    url, package, name, marker = argv
    db = Database(url)
    try:
        applied = migrate.upgrade(db, migrate.Component(name, marker, package=package))
    finally:
        db.close()
    print(" ".join(str(migration.version) for migration in applied), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
