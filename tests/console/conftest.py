"""The console's browser tests: one `fundpool serve` with the console and the traffic simulator
(20 payments/s) for the whole session, one headless Chromium (Debian's, never a downloaded
build), and a new browser context per test, so that each test signs in afresh.

Without /usr/bin/chromium the browser tests skip with a message saying what to install; in CI
(CI=true), where .ci/run installs it, they fail instead. Screenshots for the docs are written
to $FUNDPOOL_CONSOLE_SCREENSHOTS when set (docs/img for the README's); see harness.py.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.console.harness import REPO, Server
from tests.serving import cli, free_port, fundpool_command

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
VIEWPORT = {"width": 1440, "height": 900}
IN_CI = os.environ.get("CI") == "true"
ROLES = ("viewer", "cashier", "approver", "risk", "auditor", "admin")
START_TIMEOUT_S = 60.0
# How long a page's action or wait may take: generous, since the server, its simulator and the
# browser share the machine with other tests; it costs nothing when the page is quick.
PAGE_TIMEOUT_MS = 30_000
STOP_TIMEOUT_S = 15.0
# A rule added to examples/alerts.yaml that is always firing, so that the alert bar has an
# alert to show (or not to offer to acknowledge) from the first seconds on.
ALWAYS_FIRING = {"id": "console-test-always", "figure": "in_flight_count", "subject": "pool",
                 "op": ">=", "value": 0, "severity": "info",
                 "summary": "Demo pool: simulated traffic is running"}
# One about an asset on a channel, with the engine's own summary (no `summary:`): its "Open"
# must lead to that asset on that channel, and its text is said in 简体中文 on that console.
ALWAYS_FIRING_DEPTH = {"id": "console-test-depth", "figure": "depth",
                       "subject": "asset:USD,channel:bank-a", "op": ">=", "value": 0,
                       "severity": "warning"}


def _unavailable(message: str) -> None:
    if IN_CI:
        pytest.fail(message + " (CI=true: .ci/run must provide it)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def chromium() -> Path:
    if not CHROMIUM.is_file():
        _unavailable(f"{CHROMIUM} is missing: install the Debian chromium package "
                     "(apt-get install chromium fonts-noto-cjk)")
    return CHROMIUM




# The rail the tests send their own payments on, and watch to the end: the simulator never
# fails or returns them there, so that a test's outcome does not hang on the simulator's draw
# (1 in 100 instant credits fail by default). Every other rail keeps its failures.
TESTS_RAIL = "rtp"
SURE_RAIL = "simulation = { failure_rate = 0, return_rate = 0 }"


def _pool_config(folder: Path, sure_rails: tuple[str, ...] = (TESTS_RAIL,)) -> Path:
    """examples/pool.toml with `sure_rails` never failing, beside the rates it names."""
    text = (REPO / "examples" / "pool.toml").read_text(encoding="utf-8")
    for rail in sure_rails:
        header = f'[[channels]]\nid = "{rail}"\n'
        assert text.count(header) == 1, f"examples/pool.toml: no single channel {rail}"
        text = text.replace(header, header + SURE_RAIL + "\n")
    for name in ("rates.toml", "treasury.toml"):  # the files the pool names beside it
        (folder / name).write_text((REPO / "examples" / name).read_text("utf-8"),
                                   encoding="utf-8")
    config = folder / "pool.toml"
    config.write_text(text, encoding="utf-8")
    return config


@contextmanager
def served_console(name: str, *, sure_rails: tuple[str, ...] = (TESTS_RAIL,),
                   env: Mapping[str, str] | None = None) -> Iterator[Server]:
    """`fundpool serve` with the console and the payment engine on a new pool (users
    `<name>-<role>`), with `env` on top (the simulator, alert rules); stopped at the end."""
    fundpool = fundpool_command()
    with tempfile.TemporaryDirectory(prefix=f"fundpool-{name}-") as temp:
        data = Path(temp) / "data"
        data.mkdir()
        config = _pool_config(Path(temp), sure_rails)
        cli(["pool", "init", "--config", str(config), "--data-dir", str(data)])
        users = {role: (f"{name}-{role}", f"{name}-{role}-password") for role in ROLES}
        for role, (username, password) in users.items():
            cli(["users", "add", username, "--role", role, "--password-stdin",
                 "--data-dir", str(data)], stdin=password + "\n")
        port = free_port()
        environment = {**os.environ,
                       "FUNDPOOL_CONSOLE": "true", "FUNDPOOL_DATA_DIR": str(data),
                       "FUNDPOOL_CONFIG": str(config),
                       "FUNDPOOL_HOST": "127.0.0.1", "FUNDPOOL_PORT": str(port),
                       "FUNDPOOL_LOG_LEVEL": "warning"}
        for variable in ("FUNDPOOL_DB_URL", "FUNDPOOL_SETTINGS", "FUNDPOOL_SIMULATE",
                         "FUNDPOOL_ALERTS"):
            environment.pop(variable, None)
        environment.update(env or {})
        log = Path(temp) / "serve.log"
        server = Server(f"http://127.0.0.1:{port}", data, log, users)
        with log.open("wb") as out:
            process = subprocess.Popen([*fundpool, "serve"], env=environment, cwd=REPO,
                                       stdout=out, stderr=subprocess.STDOUT)
        try:
            _wait_healthy(server, process)
            yield server
        finally:
            process.terminate()
            try:
                process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(STOP_TIMEOUT_S)


@pytest.fixture(scope="module")
def console_server(chromium: Path) -> Iterator[Server]:
    with tempfile.TemporaryDirectory(prefix="fundpool-alerts-") as temp:
        rules = yaml.safe_load((REPO / "examples" / "alerts.yaml").read_text())
        rules.setdefault("rules", []).extend([ALWAYS_FIRING, ALWAYS_FIRING_DEPTH])
        alerts = Path(temp) / "alerts.yaml"
        alerts.write_text(yaml.safe_dump(rules, sort_keys=False))
        with served_console("console", env={
                "FUNDPOOL_SIMULATE": "20/s", "FUNDPOOL_ALERTS": str(alerts),
                "FUNDPOOL_EVALUATE_EVERY_S": "1",
                # An auditor's proof of a new entry needs a checkpoint after it.
                "FUNDPOOL_AUDIT_CHECKPOINT_S": "3"}) as server:
            yield server


def _wait_healthy(server: Server, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"fundpool serve exited ({process.returncode}):\n"
                               f"{server.log_tail()}")
        try:
            if httpx.get(server.url("/healthz"), timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"fundpool serve did not answer /healthz in {START_TIMEOUT_S:.0f} s:\n"
                       f"{server.log_tail()}")


@pytest.fixture(scope="module")
def browser(chromium: Path) -> Iterator[Any]:
    # Module scope, not session: Playwright's sync API holds an asyncio loop running in this
    # thread while it is started, and every later test that calls asyncio.run (the NATS
    # tests, the async client) would fail.
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is missing: pip install -e '.[dev]'")
    playwright = sync_playwright().start()
    try:
        launched = playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()
    finally:
        playwright.stop()


@contextmanager
def browser_pages(browser: Any) -> Iterator[Callable[[], Any]]:
    """Pages, each in a browser context of its own (its own cookies: its own sign-in)."""
    contexts: list[Any] = []

    def make() -> Any:
        context = browser.new_context(viewport=VIEWPORT, locale="en-US", timezone_id="UTC")
        context.set_default_timeout(PAGE_TIMEOUT_MS)
        contexts.append(context)
        return context.new_page()

    try:
        yield make
    finally:
        for context in contexts:
            context.close()


@pytest.fixture
def new_page(browser: Any, console_server: Server) -> Iterator[Callable[[], Any]]:
    with browser_pages(browser) as make:
        yield make


@pytest.fixture
def page(new_page: Callable[[], Any]) -> Any:
    return new_page()
