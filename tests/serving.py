"""A real `fundpool serve` for a test: a process (or uvicorn's workers) on a free port, on
SQLite or a PostgreSQL schema of its own, with users of every role signed in, and a pool whose
channels hold an opening float. Started, killed and started again like an operator would.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from fundpool import compose
from fundpool.core.ledger.model import Posting, Transfer
from fundpool.pool.accounts import PoolState, pool_account, world_account
from fundpool.pool.config import load_config

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "examples" / "pool.toml"
START_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 20.0
ROLES = ("viewer", "cashier", "approver", "risk", "auditor", "admin")
FLOAT_UNITS = 1_000_000  # opening float per channel and asset, in whole units


def fundpool_command() -> list[str]:
    script = shutil.which("fundpool", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", "fundpool.cli.main"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def cli(args: list[str], env: dict[str, str] | None = None, *, stdin: str | None = None) -> str:
    """`fundpool ARGS` run in this process (typer's CliRunner) with `env` as the whole
    environment: what a test prepares before it starts a server, without a Python start-up
    per command. Its output, or RuntimeError saying why it failed."""
    from typer.testing import CliRunner

    from fundpool.cli.main import app

    # Every variable `env` leaves out is unset for the command (None), as in a subprocess.
    runner = CliRunner(env=None if env is None else {**dict.fromkeys(os.environ), **env})
    done = runner.invoke(app, args, input=stdin)
    if done.exit_code != 0:
        trace = "".join(traceback.format_exception(*done.exc_info)) if done.exc_info else ""
        raise RuntimeError(f"fundpool {' '.join(args[:3])}… failed ({done.exit_code}):\n"
                           f"{done.output}\n{trace}")
    return done.stdout


@dataclass
class Served:
    """One pool served by `fundpool serve` (see the module's docstring)."""

    root: Path
    db_url: str | None = None  # None: SQLite in root/data
    workers: int = 1
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    tokens: dict[str, str] = field(default_factory=dict)
    starts: int = 0

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def rails(self) -> Path:
        return self.root / "rails"

    @property
    def log(self) -> Path:
        return self.root / f"serve-{self.starts}.log"

    def env(self) -> dict[str, str]:
        env = {**os.environ, "FUNDPOOL_DATA_DIR": str(self.data),
               "FUNDPOOL_CONFIG": str(CONFIG), "FUNDPOOL_RAILS_DIR": str(self.rails),
               "FUNDPOOL_HOST": "127.0.0.1", "FUNDPOOL_PORT": str(self.port),
               "FUNDPOOL_WORKERS": str(self.workers), "FUNDPOOL_LOG_LEVEL": "info",
               "FUNDPOOL_ACCESS_LOG": "false", "FUNDPOOL_LOG_JSON": "true"}
        for name in ("FUNDPOOL_DB_URL", "FUNDPOOL_SETTINGS", "FUNDPOOL_SIMULATE",
                     "FUNDPOOL_CONSOLE", "FUNDPOOL_ALERTS"):
            env.pop(name, None)
        if self.db_url is not None:
            env["FUNDPOOL_DB_URL"] = self.db_url
        return env

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    # --- the pool and its people ------------------------------------------------------------

    def prepare(self) -> None:
        """The pool's accounts, a float on every channel, and a user per role."""
        self.data.mkdir(parents=True, exist_ok=True)
        env = self.env()
        cli(["pool", "init", "--config", str(CONFIG)], env)
        for role in ROLES:
            cli(["users", "add", f"serve-{role}", "--role", role, "--password-stdin"],
                env, stdin=f"serve-{role}-password\n")
        store = compose.open_ledger_store(data_dir=self.data, db_url=self.db_url)
        try:
            config = load_config(CONFIG)
            pool = config.pool(None)
            commands = []
            for cid in pool.channels:
                channel = config.channel(cid)
                for asset in channel.assets:
                    amount = FLOAT_UNITS * 10 ** config.asset(asset).scale
                    commands.append(Transfer((Posting(
                        world_account(cid),
                        pool_account(pool.id, asset, cid, PoolState.AVAILABLE), asset, amount),),
                        {"purpose": "opening float"},
                        idempotency_key=f"serve-float:{cid}:{asset}"))
            for result in compose.ledger(store).submit(commands):
                assert result.error is None, result.error
        finally:
            store.close()

    # --- the process ------------------------------------------------------------------------

    def start(self) -> None:
        self.starts += 1
        with self.log.open("wb") as out:
            self.process = subprocess.Popen([*fundpool_command(), "serve"], env=self.env(),
                                            cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"fundpool serve exited ({self.process.returncode}):\n"
                                   f"{self.log_tail()}")
            try:
                if httpx.get(self.url("/healthz"), timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        else:
            raise RuntimeError(f"no /healthz within {START_TIMEOUT_S:.0f} s:\n{self.log_tail()}")
        self.tokens = {role: self._sign_in(role) for role in ROLES}

    def _sign_in(self, role: str) -> str:
        answer = httpx.post(self.url("/v1/sessions"), json={
            "username": f"serve-{role}", "password": f"serve-{role}-password"}, timeout=30)
        answer.raise_for_status()
        return str(answer.json()["token"])

    def kill(self) -> None:
        """SIGKILL every process of the server at once (the supervisor and its workers)."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(STOP_TIMEOUT_S)
        self.process = None

    def stop(self) -> None:
        if self.process is None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(STOP_TIMEOUT_S)
        self.process = None

    def log_events(self, event: str) -> list[dict[str, Any]]:
        """The server's JSON log lines of `event`, oldest first."""
        found = []
        decoder = json.JSONDecoder()
        for line in self.log.read_text(errors="replace").splitlines():
            if line.startswith("{") and f'"{event}"' in line:
                with contextlib.suppress(ValueError):
                    # The workers share the log file: another process's line may follow a
                    # JSON record on the same line (two writes racing), so read the record
                    # alone, not the whole line.
                    record, _ = decoder.raw_decode(line)
                    if isinstance(record, dict) and record.get("event") == event:
                        found.append(record)
        return found

    def log_tail(self, lines: int = 60) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    # --- the API ----------------------------------------------------------------------------

    def headers(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    def get(self, path: str, role: str = "admin", **params: Any) -> Any:
        answer = httpx.get(self.url(path), headers=self.headers(role), params=params,
                           timeout=30)
        answer.raise_for_status()
        return answer.json()

    def post(self, path: str, body: Any = None, role: str = "admin",
             headers: dict[str, str] | None = None) -> httpx.Response:
        return httpx.post(self.url(path), json=body, timeout=30,
                          headers={**self.headers(role), **(headers or {})})
