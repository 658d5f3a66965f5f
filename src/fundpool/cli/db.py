"""`fundpool db status | upgrade`: where a store's schema stands, and bringing it to this
code's version (docs/adr/0014-sql-layer-and-migrations.md)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table
from rich.text import Text

from fundpool import compose
from fundpool.cli.options import DataDirOption, DbUrlOption, JsonOption
from fundpool.cli.output import emit, report_error
from fundpool.core.errors import FundpoolError, StoreError

app = typer.Typer(help="The store's schema: its version per component, and upgrades.",
                  no_args_is_help=True)


def _schema(data_dir: Path | None, db_url: str | None, upgrade: bool) -> compose.Schema:
    """Where the store's schema stands, after applying every pending migration if `upgrade`;
    the store closed again."""
    store = compose.open_ledger_store(data_dir=data_dir, db_url=db_url)
    try:
        return compose.upgrade_schema(store) if upgrade else compose.schema_status(store)
    finally:
        store.close()


def _table(statuses: list[compose.ComponentStatus], title: str,
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
        schema = _schema(data_dir, db_url, upgrade=False)
    except FundpoolError as error:
        report_error(error, as_json)
        raise typer.Exit(2) from None
    except compose.store_errors() as error:
        report_error(StoreError("the store could not be read", reason=str(error)), as_json)
        raise typer.Exit(2) from None
    # A component this code does not know (a later release's) is shown, and does not make
    # this code's own components any less current.
    statuses = schema.components
    current = all(status.state == "current" for status in statuses)
    emit({"store": schema.store, "current": current,
          "components": [status.to_dict() for status in statuses],
          "unknown_components": [{"component": name, "version": version}
                                 for name, version in schema.unknown.items()]},
         _table(statuses, f"schema of {schema.store}", schema.unknown), as_json)
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
        schema = _schema(data_dir, db_url, upgrade=True)
    except FundpoolError as error:
        report_error(error, as_json)
        raise typer.Exit(2) from None
    except compose.store_errors() as error:  # a migration's own failure is migration_failed
        report_error(StoreError("the store could not be upgraded", reason=str(error)), as_json)
        raise typer.Exit(2) from None
    document = {
        "store": schema.store,
        "applied": [{"component": name, "version": m.version, "name": m.name}
                    for name, migrations in schema.applied.items() for m in migrations],
        "components": [status.to_dict() for status in schema.components],
    }
    count = len(document["applied"])
    title = (f"upgraded {schema.store}: {count} migration{'s' if count != 1 else ''} applied"
             if count else f"{schema.store} is already at this code's version")
    emit(document, _table(schema.components, title), as_json)
