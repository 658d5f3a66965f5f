"""The migration runner (fundpool.sql.migrate) on SQLite and PostgreSQL: a fresh store starts at
the head; a store newer than the code is refused and left as it is; an upgrade killed midway
leaves the version before the migration it was in, never a mix, and the next run finishes it;
a migration that fails is rolled back whole; upgrades at once apply each migration once; a
folder of migrations with a gap or a number twice is refused."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from fundpool.sql import migrate
from fundpool.sql.database import Database
from fundpool.sql.migrate import (
    Component,
    InvalidMigrations,
    MigrationFailed,
    SchemaOutdated,
    SchemaTooNew,
)
from fundpool.stores import open_store
from tests.sql.at_once import at_once

ROOT = Path(__file__).resolve().parents[2]
CRASH = Component("crash", marker="crash_things", package="tests.sql.crash_migrations")
GAP = Component("gap", marker="gap_things", package="tests.sql.bad_migrations")
TWICE = Component("twice", marker="twice_things", package="tests.sql.bad_migrations")
FAILING = Component("failing", marker="failing_things", package="tests.sql.bad_migrations")
MARKER_ENV = "FUNDPOOL_TEST_MIGRATION_MARKER"
PAUSE_ENV = "FUNDPOOL_TEST_MIGRATION_PAUSE"
FILL_ROWS = 200  # 0002_fill.py's ROWS
PAUSE_REACHED_S_MAX = 60.0
PROCESS_S_MAX = 60.0
POLL_S = 0.05
UPGRADERS = 4


def versions(db: Database, component: Component) -> list[int]:
    """The versions recorded for `component`, in order."""
    return [int(row[0]) for row in db.rows(
        "SELECT version FROM schema_migrations WHERE component = ? ORDER BY version",
        (component.name,))]


def tables(db: Database) -> set[str]:
    if db.is_postgres:
        rows = db.rows("SELECT tablename FROM pg_tables WHERE schemaname = ?", (db.schema,))
    else:
        rows = db.rows("SELECT name FROM sqlite_master WHERE type = 'table'")
    return {str(row[0]) for row in rows}


def crash_things(db: Database) -> list[tuple[int, str]]:
    return [(int(i), str(note)) for i, note in db.rows(
        "SELECT id, note FROM crash_things ORDER BY id")]


def upgrade_process(url: str, **env: str) -> subprocess.Popen[str]:
    """`tests/sql/upgrade_process.py` upgrading the `crash` component of `url`."""
    environment = {k: v for k, v in os.environ.items()
                   if k not in (MARKER_ENV, PAUSE_ENV)}
    environment["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT), str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])
    return subprocess.Popen(
        [sys.executable, "-m", "tests.sql.upgrade_process", url, CRASH.package, CRASH.name,
         CRASH.marker],
        cwd=ROOT, env={**environment, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_file(path: Path, process: subprocess.Popen[str]) -> None:
    """Until `path` exists (the migration reached its pause); fails if the process ended
    first or the bound passed."""
    deadline = time.monotonic() + PAUSE_REACHED_S_MAX
    while not path.exists():
        if process.poll() is not None:
            _, stderr = process.communicate()
            pytest.fail(f"the upgrade ended before its pause ({process.returncode}): {stderr}")
        if time.monotonic() >= deadline:
            pytest.fail(f"waited {PAUSE_REACHED_S_MAX:g} s for the upgrade to reach 0002")
        time.sleep(POLL_S)


def kill(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        os.kill(process.pid, signal.SIGKILL)
    process.communicate(timeout=PROCESS_S_MAX)


# --- a fresh store, and initialise() -----------------------------------------------------------


def test_a_fresh_store_is_created_at_the_head(db_url: str) -> None:
    store = open_store(db_url=db_url)
    try:
        store.initialise()
        store.initialise()  # at the head: left as it is
        db: Database = store.db  # type: ignore[attr-defined]
        head = migrate.LEDGER.head(db.dialect.name)
        assert versions(db, migrate.LEDGER) == list(range(1, head + 1))
        assert migrate.check(db, migrate.LEDGER).state == "current"
        assert "ledger_meta" not in tables(db)
    finally:
        store.close()


def test_a_store_without_the_ledger_is_absent_and_changed_by_nothing_but_an_upgrade(
    db_url: str,
) -> None:
    db = Database(db_url, create=False)
    try:
        found = migrate.status(db, migrate.LEDGER)
        assert (found.version, found.state) == (None, "absent")
        assert migrate.unknown_components(db) == {}
        assert not db.exists()
    finally:
        db.close()


def test_each_dialect_gets_its_own_files_and_the_shared_ones() -> None:
    for dialect in ("sqlite", "postgresql"):
        migrations = migrate.LEDGER.migrations(dialect)
        assert [m.version for m in migrations] == [1, 2, 3]
        other = "postgresql" if dialect == "sqlite" else "sqlite"
        assert migrations[0].checksum != migrate.LEDGER.migrations(other)[0].checksum
        assert migrations[1].checksum == migrate.LEDGER.migrations(other)[1].checksum
        assert migrations[2].checksum == migrate.LEDGER.migrations(other)[2].checksum
    crash = CRASH.migrations("sqlite")
    assert [(m.version, m.name, m.sql is None) for m in crash] == [
        (1, "baseline", False), (2, "fill", True), (3, "index", False)]


# --- a store newer than the code; one the code does not know all of ------------------------------


def record(db: Database, component: str, version: int, name: str = "later") -> None:
    """A `schema_migrations` row as a later release would have written it."""
    with db.transaction(migrate.LOCK_NAME) as tx:
        tx.execute("INSERT INTO schema_migrations (component, version, name, checksum, "
                   "applied_at_us) VALUES (?, ?, ?, ?, ?)",
                   (component, version, name, "0" * 64, 1))


def test_a_store_newer_than_the_code_is_refused_and_left_as_it_is(db_url: str) -> None:
    store = open_store(db_url=db_url)
    try:
        store.initialise()
        db: Database = store.db  # type: ignore[attr-defined]
        head = migrate.LEDGER.head(db.dialect.name)
        record(db, "ledger", head + 1)
        before = (tables(db), versions(db, migrate.LEDGER))
        with pytest.raises(SchemaTooNew) as refused:
            store.initialise()
        assert refused.value.facts["version"] == head + 1
        assert refused.value.facts["code_version"] == head
        assert "run the release that wrote it" in refused.value.detail
        for attempt in (lambda: migrate.upgrade(db, migrate.LEDGER),
                        lambda: migrate.upgrade_all(db),
                        lambda: migrate.check(db, migrate.LEDGER)):
            with pytest.raises(SchemaTooNew):
                attempt()
        assert migrate.status(db, migrate.LEDGER).state == "newer"
        assert (tables(db), versions(db, migrate.LEDGER)) == before
    finally:
        store.close()


def test_a_component_the_code_does_not_know_is_reported_and_left_alone(db_url: str) -> None:
    store = open_store(db_url=db_url)
    try:
        store.initialise()
        db: Database = store.db  # type: ignore[attr-defined]
        record(db, "treasury", 1, "baseline")
        record(db, "treasury", 2)
        assert migrate.unknown_components(db) == {"treasury": 2}
        assert migrate.check(db, migrate.LEDGER).state == "current"
        store.initialise()
        migrate.upgrade_all(db)
        assert [int(v) for (v,) in db.rows(
            "SELECT version FROM schema_migrations WHERE component = 'treasury' ORDER BY version"
        )] == [1, 2]
    finally:
        store.close()


def test_a_migration_changed_since_it_was_applied_is_reported(db_url: str) -> None:
    db = Database(db_url)
    try:
        migrate.upgrade(db, CRASH)
        with db.transaction(migrate.LOCK_NAME) as tx:
            tx.execute("UPDATE schema_migrations SET checksum = ? WHERE component = ? "
                       "AND version = 2", ("0" * 64, CRASH.name))
        found = migrate.status(db, CRASH)
        assert (found.state, found.changed) == ("current", ("fill",))
    finally:
        db.close()


def test_an_outdated_component_is_refused_with_the_command_that_upgrades_it(db_url: str) -> None:
    db = Database(db_url)
    try:
        migrate.upgrade(db, CRASH)
        with db.transaction(migrate.LOCK_NAME) as tx:
            tx.execute("DELETE FROM schema_migrations WHERE component = ? AND version = 3",
                       (CRASH.name,))
        with pytest.raises(SchemaOutdated) as refused:
            migrate.ensure(db, CRASH)
        assert "`fundpool db upgrade`" in refused.value.detail
        assert (refused.value.facts["version"], refused.value.facts["code_version"]) == (2, 3)
    finally:
        db.close()


# --- killed midway, failed, at once --------------------------------------------------------------


@pytest.mark.slow
def test_an_upgrade_killed_midway_leaves_no_mix_and_the_next_run_finishes(
    db_url: str, tmp_path: Path,
) -> None:
    marker = tmp_path / "in-0002"
    process = upgrade_process(db_url, **{MARKER_ENV: str(marker), PAUSE_ENV: "1"})
    try:
        wait_for_file(marker, process)
    finally:
        kill(process)
    assert process.returncode == -signal.SIGKILL

    db = Database(db_url)
    try:
        # 0001 was committed before 0002 began; of 0002 nothing is left, nor of 0003.
        assert migrate.status(db, CRASH).version == 1
        assert versions(db, CRASH) == [1]
        assert {"crash_rows"} & tables(db) == set()
        assert crash_things(db) == []
        with pytest.raises(SchemaOutdated):
            migrate.check(db, CRASH)
    finally:
        db.close()

    again = upgrade_process(db_url)
    stdout, stderr = again.communicate(timeout=PROCESS_S_MAX)
    assert again.returncode == 0, stderr
    assert stdout.split() == ["2", "3"]
    db = Database(db_url)
    try:
        assert migrate.check(db, CRASH).version == 3
        assert versions(db, CRASH) == [1, 2, 3]
        assert int(db.rows("SELECT count(*) FROM crash_rows")[0][0]) == FILL_ROWS
        assert crash_things(db) == [(2, "0002_fill"), (3, "0003_index")]
    finally:
        db.close()


def test_a_migration_that_fails_is_rolled_back_whole(db_url: str) -> None:
    db = Database(db_url)
    try:
        with pytest.raises(MigrationFailed) as failed:
            migrate.upgrade(db, FAILING)
        assert (failed.value.facts["component"], failed.value.facts["version"]) == ("failing", 2)
        assert failed.value.facts["name"] == "broken"
        assert "no_such_table" in str(failed.value.facts["reason"])
        assert versions(db, FAILING) == [1]
        assert migrate.status(db, FAILING).state == "outdated"
        assert {"failing_half", "failing_never"} & tables(db) == set()
        with pytest.raises(MigrationFailed):  # and again: it still fails, still whole
            migrate.upgrade(db, FAILING)
        assert versions(db, FAILING) == [1]
    finally:
        db.close()


def test_upgrades_at_once_all_succeed_and_apply_each_migration_once(db_url: str) -> None:
    applied = at_once(db_url, lambda db: [m.version for m in migrate.upgrade(db, CRASH)],
                      UPGRADERS, PROCESS_S_MAX)
    assert sorted(v for done in applied for v in done) == [1, 2, 3]
    db = Database(db_url)
    try:
        assert versions(db, CRASH) == [1, 2, 3]
        assert crash_things(db) == [(2, "0002_fill"), (3, "0003_index")]
    finally:
        db.close()


# --- migrations shipped wrong --------------------------------------------------------------------


@pytest.mark.parametrize(("component", "facts"), [
    (GAP, {"component": "gap", "versions": [1, 3]}),
    (TWICE, {"component": "twice", "version": 1, "reason": "two migrations with one number"}),
])
def test_a_folder_of_migrations_numbered_wrong_is_refused(
    db_url: str, component: Component, facts: dict[str, Any],
) -> None:
    for dialect in ("sqlite", "postgresql"):
        with pytest.raises(InvalidMigrations) as refused:
            component.migrations(dialect)
        assert refused.value.facts == facts
    db = Database(db_url, create=False)
    try:
        with pytest.raises(InvalidMigrations):
            migrate.upgrade(db, component)
        with pytest.raises(InvalidMigrations):
            migrate.status(db, component)
        assert not db.exists() or "schema_migrations" not in tables(db)
    finally:
        db.close()
