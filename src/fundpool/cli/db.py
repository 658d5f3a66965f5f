"""`fundpool db status | upgrade`: where a store's schema stands, and bringing it to this
code's version (docs/adr/0014-sql-layer-and-migrations.md)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table
from rich.text import Text

from fundpool.cli.options import DataDirOption, DbUrlOption, JsonOption
from fundpool.cli.output import emit, report_error
from fundpool.core.errors import FundpoolError, StoreError
from fundpool.sql import migrate
from fundpool.sql.database import Database
from fundpool.sql.dialect import driver_errors
from fundpool.stores import open_store

app = typer.Typer(help="The store's schema: its version per component, and upgrades.",
                  no_args_is_help=True)


def _database(data_dir: Path | None, db_url: str | None) -> Database:
    store = open_store(data_dir=data_dir, db_url=db_url)
    database: Database = store.db  # type: ignore[attr-defined]
    return database


def _table(statuses: list[migrate.ComponentStatus], title: str,
           unknown: dict[str, int] | None = None) -> list[Text | Table]:
    # The title is a line of its own: as a table's title it would be folded to the table's
    # width, cutting the store's URL in the middle.
    table = Table()
    for column in ("component", "version", "code", "state"):
        table.add_column(column)
    for status in statuses:
        version = "-" if status.version is None else str(status.version)
        state = status.state + (f" ({status.pending} pending)" if status.pending > 0 else "")
        if status.changed:
            state += f"; changed since applied: {', '.join(status.changed)}"
        table.add_row(status.component, version, str(status.head), state)
    for name, recorded in (unknown or {}).items():
        table.add_row(name, str(recorded), "-", "unknown to this code (left as it is)")
    return [Text(title), table]


@app.command("status")
def status(
    data_dir: DataDirOption = None,
    db_url: DbUrlOption = None,
    as_json: JsonOption = False,
    check: bool = typer.Option(
        False, "--check", help="Exit 1 unless every component is at this code's version."),
) -> None:
    """The schema version of each component (ledger, auth, api, projections, alerts) against
    this code's. `absent`: none of its tables yet; version 0: written before versions were kept."""
    try:
        db = _database(data_dir, db_url)
        try:
            statuses = [migrate.status(db, component) for component in migrate.COMPONENTS]
            unknown = migrate.unknown_components(db)
        finally:
            db.close()
    except FundpoolError as error:
        report_error(error, as_json)
        raise typer.Exit(2) from None
    except driver_errors() as error:
        report_error(StoreError("the store could not be read", reason=str(error)), as_json)
        raise typer.Exit(2) from None
    # A component this code does not know (a later release's) is shown, and does not make
    # this code's own components any less current.
    current = all(status.state == "current" for status in statuses)
    emit({"store": db.shown, "current": current,
          "components": [status.to_dict() for status in statuses],
          "unknown_components": [{"component": name, "version": version}
                                 for name, version in unknown.items()]},
         _table(statuses, f"schema of {db.shown}", unknown), as_json)
    if check and not current:
        raise typer.Exit(1)


@app.command("upgrade")
def upgrade(
    data_dir: DataDirOption = None,
    db_url: DbUrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Apply every pending migration, each in one transaction with its record: an upgrade cut
    short (a crash, Ctrl-C) leaves each migration applied whole or not at all, and running it
    again finishes the rest. Safe beside a running server only when the release notes say so:
    stop the servers first."""
    try:
        db = _database(data_dir, db_url)
        try:
            applied = migrate.upgrade_all(db)
            statuses = [migrate.status(db, component) for component in migrate.COMPONENTS]
        finally:
            db.close()
    except FundpoolError as error:
        report_error(error, as_json)
        raise typer.Exit(2) from None
    except driver_errors() as error:  # a migration's own failure is migration_failed
        report_error(StoreError("the store could not be upgraded", reason=str(error)), as_json)
        raise typer.Exit(2) from None
    document = {
        "store": db.shown,
        "applied": [{"component": name, "version": m.version, "name": m.name}
                    for name, migrations in applied.items() for m in migrations],
        "components": [status.to_dict() for status in statuses],
    }
    count = len(document["applied"])
    title = (f"upgraded {db.shown}: {count} migration{'s' if count != 1 else ''} applied"
             if count else f"{db.shown} is already at this code's version")
    emit(document, _table(statuses, title), as_json)
