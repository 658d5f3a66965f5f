"""The root `fundpool` command (console script `fundpool = "fundpool.cli.main:app"`)."""

from __future__ import annotations

import typer

from fundpool.cli.alerts import app as alerts_app
from fundpool.cli.auth import keys_app, users_app
from fundpool.cli.db import app as db_app
from fundpool.cli.demo import demo
from fundpool.cli.events import app as events_app
from fundpool.cli.ledger import app as ledger_app
from fundpool.cli.monitor import app as monitor_app
from fundpool.cli.monitor import replay
from fundpool.cli.payments import app as payment_app
from fundpool.cli.pool import app as pool_app
from fundpool.cli.serve import serve
from fundpool.cli.simulate import simulate
from fundpool.runtime import tune_gc

app = typer.Typer(
    name="fundpool",
    help="Treasury fund-pool engine: an exact, tamper-evident double-entry ledger.",
    no_args_is_help=True,
    add_completion=False,
    # A traceback of an unexpected failure must not print local variables: a store URL may
    # carry a password.
    pretty_exceptions_show_locals=False,
)


@app.callback()
def main() -> None:
    """Treasury fund-pool engine: an exact, tamper-evident double-entry ledger."""
    tune_gc()


app.add_typer(ledger_app, name="ledger")
app.add_typer(pool_app, name="pool")
app.add_typer(payment_app, name="payment")
app.command("demo")(demo)
app.command("simulate")(simulate)
app.add_typer(monitor_app, name="monitor")
app.add_typer(events_app, name="events")
app.add_typer(alerts_app, name="alerts")
app.command("replay")(replay)
app.command("serve")(serve)
app.add_typer(keys_app, name="keys")
app.add_typer(users_app, name="users")
app.add_typer(db_app, name="db")

if __name__ == "__main__":  # pragma: no cover
    app()
