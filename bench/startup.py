"""Start-up: the CPU time of a `fundpool` command from process start to exit.

Prints one JSON line per command:
  {"bench": "startup", "workload": "fundpool --help", "value": ..., "unit": "s",
   "baseline": "python -c pass", "baseline_value": ..., "ratio": ..., "target": 0.3,
   "floor": ..., "floor_value": ...}

Method. Each command runs `--runs` times in a new interpreter of this venv, on this tree's
sources, as the console script runs it (`fundpool.cli.main:app`); its CPU time (user + system,
from the kernel's accounting of the finished child) is taken, and the median reported. The
baseline, measured in the same run, interleaved with the commands, is a bare interpreter of the
same venv (`python -c pass`, which still runs `site`); `ratio` is command / baseline, so it is
how many bare starts a command costs. The target (issue 15) is 0.3 s of CPU for each command.

The floor, measured the same way in the same run: what any command of a CLI on typer and rich
costs before it does anything of its own. `floor_value` for `--help` is a typer app with one
group printing its help; for a command, that app running its one command (a text argument and a
path option, as typer reads them: through pydantic) to print a one-row rich table. What a
command costs above its floor is fundpool's.

Bytecode. By default every module's bytecode is cached, as for an installed package: the
children write and read it under a cache directory of their own (PYTHONPYCACHEPREFIX), warmed
by one run of each command first. `--bytecode none` compiles every module on every start
instead (what PYTHONDONTWRITEBYTECODE=1 with no cache does; slower, and not what a user sees).

The store: a SQLite ledger in a temporary directory, with one asset, two accounts and
`--transfers` transfers between them, made with the CLI before anything is timed; `ledger
balance` reads the balance of one account.

Usage: python bench/startup.py [--runs 10] [--transfers 20] [--bytecode cached|none]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import fundpool

TARGET_S = 0.3
ACCOUNT = "treasury:usd:available"
WORLD = "world:bank-a"
# The console script's body (`fundpool = "fundpool.cli.main:app"`), named as it is named.
CONSOLE_SCRIPT = ("import sys; from fundpool.cli.main import app; "
                  "sys.exit(app(prog_name='fundpool'))")


def child_env(bytecode: str, cache_dir: Path) -> dict[str, str]:
    """This environment, on the sources this process imports, with or without a bytecode
    cache, and with no store or server chosen by the caller's variables."""
    env = {key: value for key, value in os.environ.items()
           if key not in ("FUNDPOOL_DB_URL", "FUNDPOOL_DATA_DIR", "FUNDPOOL_URL",
                          "PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")}
    sources = str(Path(fundpool.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (sources, env.get("PYTHONPATH")) if p)
    if bytecode == "cached":
        env["PYTHONPYCACHEPREFIX"] = str(cache_dir)
    else:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def cpu_s(argv: Sequence[str], env: dict[str, str]) -> float:
    """User + system CPU seconds of one run of `argv` (the child's own accounting)."""
    process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    errors = process.stderr.read() if process.stderr else b""
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {process.returncode}: {errors.decode()}")
    return usage.ru_utime + usage.ru_stime


FLOOR_APP = """
from pathlib import Path
from typing import Annotated
import typer
app = typer.Typer(add_completion=False, no_args_is_help=True)
group = typer.Typer(help="A group of one command.")
@app.callback()
def main() -> None:
    \"\"\"The floor: a typer app that does nothing of its own.\"\"\"
@group.command()
def show(text: str, data_dir: Annotated[Path | None, typer.Option("--data-dir")] = None) -> None:
    \"\"\"Print TEXT in a one-row table.\"\"\"
    from rich.console import Console
    from rich.table import Table
    table = Table("text")
    table.add_row(text)
    Console().print(table)
app.add_typer(group, name="group")
app()
"""


def fundpool_argv(args: Sequence[str]) -> list[str]:
    return [sys.executable, "-c", CONSOLE_SCRIPT, *args]


def floor_argv(args: Sequence[str]) -> list[str]:
    return [sys.executable, "-c", FLOOR_APP, *args]


def make_store(data_dir: Path, transfers: int, env: dict[str, str]) -> None:
    where = ["--data-dir", str(data_dir)]
    steps = [["ledger", "init"], ["ledger", "asset", "USD", "--scale", "2", "--kind", "fiat"],
             ["ledger", "account", WORLD, "--allow-negative"],
             ["ledger", "account", ACCOUNT, "--asset", "USD"]]
    steps += [["ledger", "transfer", "--from", WORLD, "--to", ACCOUNT, "--asset", "USD",
               "--amount", f"{n + 1}.00"] for n in range(transfers)]
    for step in steps:
        subprocess.run(fundpool_argv([*step, *where]), env=env, check=True,
                       stdout=subprocess.DEVNULL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--transfers", type=int, default=20)
    parser.add_argument("--bytecode", choices=("cached", "none"), default="cached")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fundpool-startup-") as tmp:
        root = Path(tmp)
        env = child_env(args.bytecode, root / "pycache")
        make_store(root / "data", args.transfers, env)
        # Each command, and the floor it stands on.
        commands = {
            "fundpool --help": (fundpool_argv(["--help"]), floor_argv(["--help"])),
            "fundpool ledger balance": (
                fundpool_argv(["ledger", "balance", ACCOUNT, "--data-dir", str(root / "data")]),
                floor_argv(["group", "show", ACCOUNT, "--data-dir", str(root / "data")])),
        }
        baseline_argv = [sys.executable, "-c", "pass"]
        for argv in (baseline_argv, *(a for pair in commands.values() for a in pair)):
            cpu_s(argv, env)  # the bytecode cache filled, the files in the page cache
        baseline: list[float] = []
        times: dict[str, list[float]] = {name: [] for name in commands}
        floors: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.runs):
            baseline.append(cpu_s(baseline_argv, env))
            for name, (command, floor) in commands.items():
                times[name].append(cpu_s(command, env))
                floors[name].append(cpu_s(floor, env))
    baseline_s = statistics.median(baseline)
    for name, runs in times.items():
        value_s = statistics.median(runs)
        print(json.dumps({
            "bench": "startup", "workload": name, "value": round(value_s, 3), "unit": "s",
            "baseline": "python -c pass", "baseline_value": round(baseline_s, 3),
            "ratio": round(value_s / baseline_s, 1) if baseline_s else None,
            "target": TARGET_S,
            "floor": "the same command of a one-command typer app (bench/startup.py FLOOR_APP)",
            "floor_value": round(statistics.median(floors[name]), 3),
            "bytecode": args.bytecode, "runs": args.runs,
        }))


if __name__ == "__main__":
    main()
