# ruff: noqa: N999 (a migration's file name is its number and name, as the runner reads it)
"""Creates `crash_rows`, fills it, notes itself in `crash_things`; then, when told to by the
environment, says so in a file and waits (bounded) to be killed, its transaction still open."""

from __future__ import annotations

import os
import time
from pathlib import Path

from fundpool.sql.database import Transaction

MARKER_ENV = "FUNDPOOL_TEST_MIGRATION_MARKER"  # a file to write once the rows are in
PAUSE_ENV = "FUNDPOOL_TEST_MIGRATION_PAUSE"  # "1": then wait to be killed
PAUSE_S_MAX = 120.0  # a process nobody kills ends on its own
ROWS = 200


def upgrade(tx: Transaction) -> None:
    tx.execute("CREATE TABLE crash_rows (n INTEGER PRIMARY KEY)")
    tx.many("INSERT INTO crash_rows (n) VALUES (?)", [(n,) for n in range(ROWS)])
    tx.execute("INSERT INTO crash_things (id, note) VALUES (?, ?)", (2, "0002_fill"))
    marker = os.environ.get(MARKER_ENV)
    if marker:
        Path(marker).write_text(f"{os.getpid()}\n", encoding="utf-8")
    if os.environ.get(PAUSE_ENV) == "1":
        time.sleep(PAUSE_S_MAX)
        raise RuntimeError(f"0002_fill was not killed within {PAUSE_S_MAX:g} s")
