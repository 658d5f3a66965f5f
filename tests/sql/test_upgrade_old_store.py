"""A store written by the code before issue 13 (tests/fixtures/old_store_v1, on SQLite and on
PostgreSQL) is version 0 in every component: the current code refuses it until
`fundpool db upgrade` brings it to the head, which keeps every entry, payment, event, key and
user, and leaves the hash chain verifying. Upgrading again applies nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from fundpool.sql import migrate
from fundpool.sql.database import Database
from fundpool.sql.migrate import SchemaOutdated
from fundpool.stores import open_store
from tests.sql.at_once import at_once
from tests.sql.cli import fundpool, fundpool_json
from tests.sql.old_store import (
    NEWER_COMPONENTS,
    OldStore,
    check_upgraded_figures,
    check_with_current_code,
    figures_kept,
)

FUNDPOOL = Path(sys.executable).with_name("fundpool")
UPGRADE_TIMEOUT_S = 120.0
UPGRADERS = 2
JOIN_TIMEOUT_S = 120.0


def dialect_of(store: OldStore) -> str:
    return "sqlite" if store.kind == "sqlite" else "postgresql"


def every_migration(store: OldStore) -> list[tuple[str, int]]:
    """(component, version) of every migration this code has, in the order applied."""
    return [(component.name, migration.version) for component in migrate.COMPONENTS
            for migration in component.migrations(dialect_of(store))]


def statuses(url: str) -> list[migrate.ComponentStatus]:
    db = Database(url, create=False)
    try:
        return [migrate.status(db, component) for component in migrate.COMPONENTS]
    finally:
        db.close()


def check_upgraded(store: OldStore) -> None:
    """At the head in every component, with everything the fixture held."""
    assert all(found.state == "current" for found in statuses(store.url))
    check_upgraded_figures(store.read_figures(), store.figures, len(every_migration(store)))
    ledger = open_store(db_url=store.url)
    try:
        ledger.initialise()  # at the head now: accepted as it is
        check_with_current_code(ledger, store.figures)
    finally:
        ledger.close()


def applied_of(document: dict[str, Any]) -> list[tuple[str, int]]:
    return [(applied["component"], applied["version"]) for applied in document["applied"]]


def test_an_old_store_is_refused_until_db_upgrade_brings_it_to_the_head(
    old_store: OldStore,
) -> None:
    url = old_store.url
    expected = [(name, None, "absent") if name in NEWER_COMPONENTS else (name, 0, "outdated")
                for name in (component.name for component in migrate.COMPONENTS)]
    assert [(s.component, s.version, s.state) for s in statuses(url)] == expected
    document = fundpool_json("db", "status", "--db-url", url)
    assert document["current"] is False
    assert [(c["component"], c["version"], c["state"])
            for c in document["components"]] == expected
    fundpool("db", "status", "--check", "--db-url", url, code=1)

    ledger = open_store(db_url=url)
    try:
        with pytest.raises(SchemaOutdated) as refused:
            ledger.initialise()
    finally:
        ledger.close()
    assert "fundpool db upgrade" in refused.value.detail
    assert refused.value.facts["component"] == "ledger"
    assert refused.value.facts["version"] == 0
    # Neither the status nor the refusal changed anything.
    assert figures_kept(old_store.read_figures()) == figures_kept(old_store.figures)

    upgraded = fundpool_json("db", "upgrade", "--db-url", url)
    assert applied_of(upgraded) == every_migration(old_store)
    assert all(c["state"] == "current" for c in upgraded["components"])
    figures = old_store.read_figures()

    again = fundpool_json("db", "upgrade", "--db-url", url)
    assert applied_of(again) == []
    assert old_store.read_figures() == figures
    fundpool("db", "status", "--check", "--db-url", url)
    check_upgraded(old_store)


@pytest.mark.slow
@pytest.mark.parametrize("old_store", ["sqlite"], indirect=True)
def test_the_fundpool_command_upgrades_an_old_store(old_store: OldStore) -> None:
    """The installed `fundpool` script, as an operator runs it, in a process of its own (on
    one database: what differs between the two is the runner's, tested above)."""
    result = subprocess.run(
        [str(FUNDPOOL), "db", "upgrade", "--json", "--db-url", old_store.url],
        capture_output=True, text=True, timeout=UPGRADE_TIMEOUT_S,
        env={k: v for k, v in os.environ.items() if not k.startswith("FUNDPOOL_")},
    )
    assert result.returncode == 0, result.stderr
    assert applied_of(json.loads(result.stdout)) == every_migration(old_store)
    check_upgraded(old_store)


def test_two_upgrades_at_once_apply_each_migration_once(old_store: OldStore) -> None:
    """Two operators (or two servers' start-up scripts) upgrading the same old store together:
    both succeed, and each migration is applied by exactly one of them."""
    applied = at_once(
        old_store.url,
        lambda db: [(name, m.version) for name, ms in migrate.upgrade_all(db).items() for m in ms],
        UPGRADERS, JOIN_TIMEOUT_S)
    assert sorted(step for steps in applied for step in steps) == sorted(
        every_migration(old_store))
    check_upgraded(old_store)
