"""`fundpool db status | upgrade` and the store options of every command, on bad input: each
refusal is a clear error naming what to do, exits 2, and changes nothing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fundpool.cli.main import app
from fundpool.sql import migrate
from fundpool.sql.database import Database
from fundpool.stores import open_store
from tests.conftest import PG_URL
from tests.sql.cli import fundpool, fundpool_json, runner

UNSUPPORTED_URLS = [
    "mysql://fundpool@127.0.0.1/fundpool",
    "sqlite://relative.sqlite3",  # two slashes: a host, not a path
    f"{PG_URL}?schema=bad-name!",
]
ADDRESS = "pool:main:usd:bank-a:available"


def component_rows(url: str) -> list[tuple[str, int]]:
    db = Database(url, create=False)
    try:
        return [(str(c), int(v)) for c, v in db.rows(
            "SELECT component, version FROM schema_migrations ORDER BY component, version")]
    finally:
        db.close()


def states(document: dict[str, object]) -> dict[str, object]:
    components = document["components"]
    assert isinstance(components, list)
    return {c["component"]: c["state"] for c in components}


def test_status_of_a_store_that_is_not_there_says_absent_and_creates_nothing(
    db_url: str,
) -> None:
    document = fundpool_json("db", "status", "--db-url", db_url)
    assert document["current"] is False
    assert set(states(document).values()) == {"absent"}
    fundpool("db", "status", "--check", "--db-url", db_url, code=1)
    db = Database(db_url, create=False)
    try:
        assert not db.exists()  # neither the SQLite file nor the PostgreSQL schema
    finally:
        db.close()
    if db_url.startswith("sqlite:///"):
        assert not Path(db_url.removeprefix("sqlite:///")).exists()


def test_upgrade_creates_a_store_at_the_head_then_has_nothing_to_do(db_url: str) -> None:
    created = fundpool_json("db", "upgrade", "--db-url", db_url)
    assert set(states(created).values()) == {"current"}
    assert len(created["applied"]) == len(component_rows(db_url))
    result = fundpool("db", "upgrade", "--db-url", db_url)
    assert "already at this code's version" in result.stdout
    status = fundpool("db", "status", "--check", "--db-url", db_url)
    for component in migrate.COMPONENTS:
        assert component.name in status.stdout
    assert "outdated" not in status.stdout


def test_a_store_newer_than_the_code_is_refused_by_upgrade_which_applies_nothing(
    db_url: str,
) -> None:
    """Only the ledger is there, and the last component (alerts) is newer than the code: the
    upgrade refuses before it applies anything to the others."""
    store = open_store(db_url=db_url)
    try:
        store.initialise()
        db: Database = store.db  # type: ignore[attr-defined]
        head = migrate.ALERTS.head(db.dialect.name)
        with db.transaction(migrate.LOCK_NAME) as tx:
            tx.execute("INSERT INTO schema_migrations (component, version, name, checksum, "
                       "applied_at_us) VALUES (?, ?, ?, ?, ?)",
                       ("alerts", head + 1, "later", "0" * 64, 1))
    finally:
        store.close()
    before = component_rows(db_url)

    refused = fundpool_json("db", "upgrade", "--db-url", db_url, code=2)
    assert refused["code"] == "schema_too_new"
    assert (refused["component"], refused["version"], refused["code_version"]) == (
        "alerts", head + 1, head)
    assert "run the release that wrote it" in str(refused["detail"])
    human = fundpool("db", "upgrade", "--db-url", db_url, code=2)
    assert "error[schema_too_new]" in human.stderr
    assert component_rows(db_url) == before

    status = fundpool_json("db", "status", "--db-url", db_url)
    assert states(status) == {"ledger": "current", "auth": "absent", "api": "absent",
                              "projections": "absent", "alerts": "newer", "risk": "absent",
                              "approvals": "absent", "audit": "absent",
                              "recon": "absent", "desk": "absent"}
    fundpool("db", "status", "--check", "--db-url", db_url, code=1)


def test_a_component_the_code_does_not_know_is_shown_and_left_alone(db_url: str) -> None:
    fundpool("db", "upgrade", "--db-url", db_url)
    db = Database(db_url)
    try:
        with db.transaction(migrate.LOCK_NAME) as tx:
            tx.execute("INSERT INTO schema_migrations (component, version, name, checksum, "
                       "applied_at_us) VALUES (?, ?, ?, ?, ?)",
                       ("treasury", 4, "later", "0" * 64, 1))
    finally:
        db.close()
    status = fundpool_json("db", "status", "--db-url", db_url)
    assert status["current"] is True
    assert status["unknown_components"] == [{"component": "treasury", "version": 4}]
    human = fundpool("db", "status", "--check", "--db-url", db_url)
    assert "unknown to this code" in human.stdout
    assert "treasury" in human.stdout
    assert fundpool_json("db", "upgrade", "--db-url", db_url)["applied"] == []
    assert ("treasury", 4) in component_rows(db_url)


@pytest.mark.parametrize("url", UNSUPPORTED_URLS)
@pytest.mark.parametrize("command", [
    ("db", "status"), ("db", "upgrade"), ("ledger", "balance", ADDRESS),
])
def test_a_database_url_of_an_unsupported_kind_is_refused_and_creates_nothing(
    url: str, command: tuple[str, ...], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)  # where a relative path would have been created
    refused = fundpool_json(*command, "--db-url", url, code=2)
    assert refused["code"] == "unsupported_database_url"
    assert "sqlite:///PATH or postgresql://" in str(refused["title"])
    human = fundpool(*command, "--db-url", url, code=2)
    assert "error[unsupported_database_url]" in human.stderr
    assert os.listdir(tmp_path) == []


def test_the_url_from_the_environment_is_checked_as_well(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["db", "status", "--json"],
        env={"FUNDPOOL_DB_URL": "mysql://fundpool@127.0.0.1/fundpool", "FUNDPOOL_DATA_DIR": None},
    )
    assert result.exit_code == 2
    assert '"unsupported_database_url"' in result.stdout


def test_a_database_that_cannot_be_reached_is_a_store_error() -> None:
    refused = fundpool_json("db", "status", "--db-url",
                            "postgresql://postgres@127.0.0.1:1/test?connect_timeout=2", code=2)
    assert refused["code"] == "store_error"
