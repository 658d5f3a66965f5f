"""What `fundpool` imports to start: each command loads what it uses, and nothing else.

Every `fundpool` call waits while Python imports modules, so a command that read one balance
paid for the NATS client, the alert engine, the simulator and the PostgreSQL driver. The time
depends on the machine (bench/startup.py measures it); the list of modules does not, so that is
what these tests hold: each command runs in a fresh interpreter, which reports `sys.modules`
after the command.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

import fundpool
from fundpool.cli.main import COMMANDS, Listed, app

runner = CliRunner(env={"FUNDPOOL_DB_URL": None, "FUNDPOOL_DATA_DIR": None})

# Runs the CLI as the console script does, then writes what it imported.
RUN_AND_LIST = """
import json, sys
from fundpool.cli.main import app
code = 0
try:
    app(sys.argv[2:], prog_name="fundpool")
except SystemExit as exit:
    code = exit.code
with open(sys.argv[1], "w") as out:
    json.dump({"exit": code, "modules": sorted(sys.modules)}, out)
"""

# What no command that only reads a local ledger or prints help needs: the server, the console,
# the bus, the API client, the alert engine, the simulator, the dispatcher, the rails, the
# router, spreadsheets, IBAN checks, the rules' YAML, the logging library; and, for a SQLite
# store, the PostgreSQL driver.
HEAVY = (
    "fastapi", "starlette", "uvicorn", "nicegui", "nats", "httpx", "openpyxl", "schwifty",
    "yaml", "structlog", "asyncio", "psycopg",
    "fundpool.server", "fundpool.console", "fundpool.bus.relay", "fundpool.bus.consumer",
    "fundpool.client", "fundpool.monitoring.alerting", "fundpool.monitoring.service",
    "fundpool.monitoring.kpis", "fundpool.sim", "fundpool.payments.dispatch",
    "fundpool.payments.engine", "fundpool.payments.service", "fundpool.channels",
    "fundpool.routing", "fundpool.stores.postgres",
)
# The modules of the other commands.
OTHER_COMMANDS = tuple(
    f"fundpool.cli.{name}" for name in (
        "alerts", "auth", "db", "demo", "events", "monitor", "payments", "pool", "serve",
        "simulate", "remote",
    )
)


def imported(*args: str) -> set[str]:
    """The modules loaded by `fundpool ARGS` in a new interpreter on this tree's sources."""
    out = Path(os.environ.get("TMPDIR", "/tmp")) / f"fundpool-startup-{os.getpid()}.json"
    env = {key: value for key, value in os.environ.items()
           if key not in ("FUNDPOOL_DB_URL", "FUNDPOOL_DATA_DIR", "FUNDPOOL_URL")}
    env["PYTHONPATH"] = os.pathsep.join(
        [str(Path(fundpool.__file__).parents[1]), env.get("PYTHONPATH", "")])
    try:
        subprocess.run([sys.executable, "-c", RUN_AND_LIST, str(out), *args], env=env,
                       check=True, timeout=120, stdout=subprocess.DEVNULL)
        report = json.loads(out.read_text())
    finally:
        out.unlink(missing_ok=True)
    assert report["exit"] == 0, report["exit"]
    return set(report["modules"])


def loaded(modules: set[str], prefixes: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if any(m == p or m.startswith(p + ".") for p in prefixes))


def test_help_imports_no_command() -> None:
    modules = imported("--help")
    assert loaded(modules, HEAVY) == []
    # The listing is the root's: no command's module loads to be listed.
    assert loaded(modules, ("fundpool",)) == ["fundpool", "fundpool.cli", "fundpool.cli.main"]


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A SQLite ledger with one account."""
    where = ["--data-dir", str(tmp_path)]
    for args in (["init"], ["asset", "USD", "--scale", "2", "--kind", "fiat"],
                 ["account", "treasury:usd:available", "--asset", "USD"]):
        result = runner.invoke(app, ["ledger", *args, *where])
        assert result.exit_code == 0, result.output
    return tmp_path


def test_a_balance_on_sqlite_imports_the_ledger_only(data_dir: Path) -> None:
    modules = imported("ledger", "balance", "treasury:usd:available", "--data-dir", str(data_dir))
    assert loaded(modules, HEAVY) == []
    assert loaded(modules, OTHER_COMMANDS) == []
    # Nor what other ledger commands or the pool's commands read.
    assert loaded(modules, ("fundpool.pool.config", "fundpool.ledger.verify")) == []
    assert "fundpool.stores.sqlite" in modules  # it did read the store


def listed_as_built(group: Any, context: Any) -> list[str]:
    """Each command of `group` as listed, against the command built: what the listing shows
    (the help's first paragraph, its short help, hidden or not, deprecated or not, its panel)
    must be the command's own. The names of the commands built."""
    names = group.list_commands(context)
    for name in names:
        listed = group.get_command(context, name)
        _, command, _ = group.resolve_command(context, [name])
        assert isinstance(listed, Listed)
        assert command is not None
        assert not isinstance(command, Listed)  # resolving builds the command itself
        shown = (command.help or "").split("\n\n")[0]
        assert (listed.name, (listed.help or "").split("\n\n")[0]) == (name, shown)
        assert (listed.short_help, listed.hidden, listed.deprecated) == (
            command.short_help, command.hidden, command.deprecated)
        # No panel is None or typer's placeholder for it, which reads as false.
        assert (listed.rich_help_panel or None) == (getattr(command, "rich_help_panel", None)
                                                    or None)
    return names


def test_each_listing_is_the_commands_own() -> None:
    """`fundpool --help` lists the commands from the root's table, and `fundpool GROUP
    --help` from the group's registrations, without building them."""
    root = typer.main.get_command(app)
    context = root.make_context("fundpool", ["ledger"])
    assert listed_as_built(root, context) == list(COMMANDS)
    for name in COMMANDS:
        group = root.get_command(context, name)
        if isinstance(group, typer.core.TyperGroup):
            assert listed_as_built(group, group.make_context(name, ["--help"],
                                                              resilient_parsing=True))
