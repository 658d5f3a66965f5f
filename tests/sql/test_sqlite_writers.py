"""The writers of one SQLite file in one process wait for each other on the file's gate, not in
SQLite's busy handler (which sleeps 1, 2, 5, 10 ms... between tries)."""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path

import pytest

from fundpool.sql.database import SQLITE_WRITERS, Database

WAIT_S = 30.0


def _databases(tmp_path: Path) -> tuple[Database, Database]:
    url = f"sqlite:///{tmp_path / 'one.sqlite3'}"
    first, second = Database(url), Database(url)
    with first.transaction() as tx:
        tx.execute("CREATE TABLE t (n INTEGER NOT NULL)")
    # Without the gate, the second writer would meet the first in SQLite and fail at once.
    second.connection().execute("PRAGMA busy_timeout=0")
    return first, second


def test_a_second_writer_waits_for_the_first_on_the_gate_not_in_sqlite(tmp_path: Path) -> None:
    first, second = _databases(tmp_path)
    inside, written = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def write_second() -> None:
        inside.wait(WAIT_S)
        try:
            with second.transaction() as tx:
                tx.execute("INSERT INTO t VALUES (2)")
        except BaseException as error:  # reported to the test below
            errors.append(error)
        written.set()

    thread = threading.Thread(target=write_second)
    thread.start()
    with first.transaction() as tx:
        tx.execute("INSERT INTO t VALUES (1)")
        inside.set()
        # The second writer is blocked for as long as the first is open.
        assert not written.wait(0.2)
    assert written.wait(WAIT_S)
    thread.join(WAIT_S)
    assert errors == []
    assert [row[0] for row in first.rows("SELECT n FROM t ORDER BY n")] == [1, 2]
    first.close()
    second.close()


def test_the_gate_is_open_again_after_a_rollback(tmp_path: Path) -> None:
    first, second = _databases(tmp_path)

    def fail_inside() -> None:
        with first.transaction() as tx:
            tx.execute("INSERT INTO t VALUES (1)")
            raise RuntimeError("the block failed")

    with pytest.raises(RuntimeError):
        fail_inside()
    with second.transaction() as tx:
        tx.execute("INSERT INTO t VALUES (2)")
    assert [row[0] for row in first.rows("SELECT n FROM t")] == [2]
    first.close()
    second.close()


def test_in_memory_databases_have_no_gate() -> None:
    assert SQLITE_WRITERS.key(":memory:") is None


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX only")
def test_a_forked_child_gets_open_gates(tmp_path: Path) -> None:
    path = str(tmp_path / "forked.sqlite3")
    key = SQLITE_WRITERS.key(path)
    assert key is not None
    with SQLITE_WRITERS.gate(key):  # another thread of the parent holds it at the fork
        pid = os.fork()
        if pid == 0:  # the child: its gate of the same file is a new, open one
            os._exit(0 if SQLITE_WRITERS.gate(key).acquire(timeout=5) else 1)
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_a_commit_that_fails_leaves_no_transaction_open(tmp_path: Path) -> None:
    """A deferred foreign key fails at COMMIT, which leaves SQLite's transaction open unless it
    is rolled back: the next write on the connection must begin as usual."""
    db = Database(f"sqlite:///{tmp_path / 'deferred.sqlite3'}")
    db.connection().execute("PRAGMA foreign_keys=ON")
    with db.transaction() as tx:
        tx.execute("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
        tx.execute("CREATE TABLE child (parent INTEGER REFERENCES parent (id) "
                   "DEFERRABLE INITIALLY DEFERRED)")

    def orphan() -> None:
        with db.transaction() as tx:
            tx.execute("INSERT INTO child VALUES (7)")

    with pytest.raises(sqlite3.IntegrityError):
        orphan()
    assert not db.connection().in_transaction
    with db.transaction() as tx:
        tx.execute("INSERT INTO parent VALUES (7)")
        tx.execute("INSERT INTO child VALUES (7)")
    assert db.rows("SELECT parent FROM child") == [(7,)]
    db.close()
