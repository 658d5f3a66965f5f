"""The root `fundpool` command (console script `fundpool = "fundpool.cli.main:app"`).

Each command's module loads when that command runs, not before: `fundpool ledger balance`
imports the ledger's commands and the store, not the server, the bus, the alert engine or the
simulator, and `fundpool --help` imports none of them. So the root lists its commands from
`COMMANDS` (each one's name, where it lives and the help it shows in the listing), and builds a
command from its module only once the command line names it (tests/cli/test_startup.py holds
both: the modules each start loads, and that every listed help is the command's own).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import typer
import typer.main
from typer.core import TyperCommand, TyperGroup

if TYPE_CHECKING:
    from typer._click import Command as ClickCommand
    from typer._click import Context


@dataclass(frozen=True, slots=True)
class Command:
    """A command of the root: `target` is `module:attribute`, a typer app (a group of
    commands) or a command's function; `help` the first paragraph of its help."""

    target: str
    help: str


# In the order the listing shows them: the single commands, then the groups.
COMMANDS: dict[str, Command] = {
    "demo": Command(
        "fundpool.cli.demo:demo",
        "Serve a live sample pool in the web console (default), or run the traffic simulator\n"
        "in the terminal and show what it left (--report, --fast)."),
    "simulate": Command(
        "fundpool.cli.simulate:simulate",
        "Run realistic traffic through the pool on simulated rails, then verify the journal."),
    "replay": Command(
        "fundpool.cli.monitor:replay",
        "The pool as it stood at a past instant (`--at`), or a past window played again."),
    "serve": Command(
        "fundpool.cli.serve:serve",
        "Serve the API (/v1), the pool's metrics (Prometheus) and health over HTTP."),
    "ledger": Command(
        "fundpool.cli.ledger:app",
        "The double-entry ledger: assets, accounts, transfers, balances, verification."),
    "pool": Command(
        "fundpool.cli.pool:app",
        "The fund pool: set it up from its configuration and view it by state."),
    "payment": Command(
        "fundpool.cli.payments:app",
        "Payments: deposits, payouts, internal and bridge transfers, through their life."),
    "monitor": Command(
        "fundpool.cli.monitor:app", "Live figures of the pool, kept from its events."),
    "events": Command(
        "fundpool.cli.events:app",
        "The outbox on NATS JetStream: relay it, consume it into projections, show the lag."),
    "alerts": Command(
        "fundpool.cli.alerts:app",
        "KPI templates, alert rules and SLOs, and the alerts they raise."),
    "keys": Command(
        "fundpool.cli.auth:keys_app",
        "API keys: create, list, rotate and revoke. A token is shown once, at creation."),
    "users": Command(
        "fundpool.cli.auth:users_app",
        "Console users: add, list, change roles or password, disable."),
    "db": Command(
        "fundpool.cli.db:app", "The store's schema: its version per component, and upgrades."),
}


class Listed(TyperCommand):
    """A command as the root lists it, before its module is loaded."""


class LazyGroup(TyperGroup):
    """The root group: its commands are listed as `COMMANDS` says, and each is built from
    its module, as typer builds a registered one, when the command line resolves to it."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        # Listed, and offered as "Did you mean", before they load.
        self.commands.update(
            {name: Listed(name, help=command.help) for name, command in COMMANDS.items()})

    def resolve_command(self, ctx: Context, args: list[str]
                        ) -> tuple[str | None, ClickCommand | None, list[str]]:
        name, command, rest = super().resolve_command(ctx, args)
        if name is not None and isinstance(command, Listed):
            command = self.commands[name] = self.load(name)
        return name, command, rest

    def load(self, name: str) -> ClickCommand:
        module, _, attribute = COMMANDS[name].target.partition(":")
        target = getattr(importlib.import_module(module), attribute)
        # Registered on a throwaway app as `add_typer` / `command` would register it on the
        # root, then built by typer with the root's settings: the same command as before.
        holder = typer.Typer()
        if isinstance(target, typer.Typer):
            holder.add_typer(target, name=name)
            return typer.main.get_group_from_info(
                holder.registered_groups[0], pretty_exceptions_short=app.pretty_exceptions_short,
                suggest_commands=self.suggest_commands, rich_markup_mode=self.rich_markup_mode)
        holder.command(name)(target)
        return typer.main.get_command_from_info(
            holder.registered_commands[0], pretty_exceptions_short=app.pretty_exceptions_short,
            rich_markup_mode=self.rich_markup_mode)


app = typer.Typer(
    name="fundpool",
    cls=LazyGroup,
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
    from fundpool.runtime import tune_gc

    tune_gc()


if __name__ == "__main__":  # pragma: no cover
    app()
