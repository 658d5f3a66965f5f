"""The root `fundpool` command (console script `fundpool = "fundpool.cli.main:app"`).

Each command's module loads when that command runs, not before: `fundpool ledger balance`
imports the ledger's commands and the store, not the server, the bus, the alert engine or the
simulator, and `fundpool --help` imports none of them. So the root lists its commands from
`COMMANDS` (each one's name, where it lives and the help it shows in the listing), and builds a
command from its module only once the command line names it (tests/cli/test_startup.py holds
both: the modules each start loads, and that every listed help is the command's own).
"""

from __future__ import annotations

import copy
import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import typer
import typer.main
from typer.core import TyperCommand, TyperGroup

if TYPE_CHECKING:
    from typer._click import Command as ClickCommand
    from typer._click import Context
    from typer.models import CommandInfo


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
    "risk": Command(
        "fundpool.cli.risk:app",
        "Risk control: policies, the review queue, sanctions lists, parties."),
    "approve": Command(
        "fundpool.cli.approvals:approve",
        "Sign a payment waiting for approval with your Ed25519 key file."),
    "approvals": Command(
        "fundpool.cli.approvals:app",
        "Signed approvals: keys, TOTP, the inbox, rules."),
    "audit": Command(
        "fundpool.cli.audit:app",
        "The audit log: sync, checkpoints, proofs, verification, export."),
    "bank": Command(
        "fundpool.cli.bank:bank_app",
        "The simulated bank of the ISO 20022 bank rail."),
    "recon": Command(
        "fundpool.cli.recon:app",
        "Reconciliation: import statements, match, breaks, resolve, balances."),
    "fx": Command(
        "fundpool.cli.treasury:fx_app",
        "Currency exchange: rates, quotes, conversions, P&L."),
    "split": Command(
        "fundpool.cli.treasury:split_app",
        "Splits and commissions, and waterfall previews."),
    "net": Command(
        "fundpool.cli.treasury:net_app",
        "Continuous net settlement: obligations and cycles."),
    "liquidity": Command(
        "fundpool.cli.treasury:liquidity_app",
        "Bands, rebalancing plans, sweeps and credit lines."),
    "stress": Command(
        "fundpool.cli.treasury:stress_app",
        "Liquidity-run stress tests on the live pool."),
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
    """A command as its group lists it (its name and help), not built yet."""


class LazyGroup(TyperGroup):
    """A group whose commands are built when the command line resolves to one of them. Until
    then each is `Listed`, which is all that the group's --help and its "Did you mean" read;
    `builders` makes each, by name."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self.builders: dict[str, Callable[[], ClickCommand]] = {}

    def resolve_command(self, ctx: Context, args: list[str]
                        ) -> tuple[str | None, ClickCommand | None, list[str]]:
        name, command, rest = super().resolve_command(ctx, args)
        if name is not None and isinstance(command, Listed):
            command = self.commands[name] = self.builders[name]()
        return name, command, rest


class Root(LazyGroup):
    """The root group: its commands listed as `COMMANDS` says, each loaded from its module
    when named."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        for name, command in COMMANDS.items():
            self.commands[name] = Listed(name, help=command.help)
            self.builders[name] = partial(self.load, name)

    def load(self, name: str) -> ClickCommand:
        module, _, attribute = COMMANDS[name].target.partition(":")
        target = getattr(importlib.import_module(module), attribute)
        if isinstance(target, typer.Typer):
            return self.group(name, target)
        holder = typer.Typer()  # registered as `app.command(name)` registers it
        holder.command(name)(target)
        return self.command(holder.registered_commands[0])

    def group(self, name: str, target: typer.Typer) -> LazyGroup:
        """`target` as `add_typer` would add it (its callback, options and help), its commands
        listed as typer names and shows them, each built when named."""
        shell = copy.copy(target)
        shell.registered_commands = []
        holder = typer.Typer()
        holder.add_typer(shell, name=name, cls=LazyGroup)
        group = typer.main.get_group_from_info(
            holder.registered_groups[0], pretty_exceptions_short=app.pretty_exceptions_short,
            suggest_commands=self.suggest_commands, rich_markup_mode=self.rich_markup_mode)
        assert isinstance(group, LazyGroup)
        for info in target.registered_commands:
            assert info.callback is not None
            command_name = info.name or typer.main.get_command_name(info.callback.__name__)
            shown = inspect.getdoc(info.callback) if info.help is None else inspect.cleandoc(
                info.help)
            group.commands[command_name] = Listed(
                command_name, help=shown, short_help=info.short_help, hidden=info.hidden,
                deprecated=info.deprecated, rich_help_panel=info.rich_help_panel)
            group.builders[command_name] = partial(self.command, info)
        return group

    def command(self, info: CommandInfo) -> ClickCommand:
        """The command typer builds from `info`, with the root's settings."""
        return typer.main.get_command_from_info(
            info, pretty_exceptions_short=app.pretty_exceptions_short,
            rich_markup_mode=self.rich_markup_mode)


app = typer.Typer(
    name="fundpool",
    cls=Root,
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
