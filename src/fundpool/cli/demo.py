"""`fundpool demo` (what `make demo` runs): a live sample pool in the web console, or the
traffic simulator's report in the terminal.

By default the demo serves the console (`/console`) and the API on http://127.0.0.1:8000
with the traffic simulator running in the server at 50 payments a second on the wall clock,
a fresh sample pool, demo alert rules (examples/demo-alerts.yaml) and one console user per
role, whose sign-ins it prints. It runs until Ctrl-C (or `--duration`).

With `--report` (or `--fast`), the demo deletes the ledger in its data directory
(`./data/demo` by default; it says so), opens the pool a configuration declares
(`examples/pool.toml` unless `--config`), and runs the simulator (`fundpool simulate`,
cli/simulate.py) live for fifteen seconds at a hundred payments a second, the rails living
sixty times faster, with the live panel. Then it prints
what the run left: the pool by state per asset and channel (as `fundpool pool view` adds it
up), where the router sent payouts, what batching saved, the merchant advances outstanding (instant
settlement), and `verify: ok`. `--fast` runs the same traffic on a simulated clock,
deterministically and in a few seconds.

It only ever deletes a ledger it created (marked by a file beside it), unless `--force`.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Annotated, Protocol

import typer
from rich.console import RenderableType
from rich.table import Table
from rich.text import Text

from fundpool import compose
from fundpool.cli.monitor import summary_text
from fundpool.cli.options import parse_duration, parse_rate
from fundpool.cli.output import report_error, stdout_console
from fundpool.cli.simulate import (
    DISPOSITION_ORDER,
    KIND_ORDER,
    FastOption,
    SeedOption,
    Settings,
    SimulationRun,
    SpeedOption,
    counts_text,
    exposure_rows,
    routing_share,
    run_simulation,
    savings_table,
    verify_text,
)
from fundpool.core.actor import Actor
from fundpool.core.errors import FundpoolError, StoreError
from fundpool.core.money import Asset
from fundpool.ledger.ports import LedgerStore
from fundpool.pool.config import FundpoolConfig, PoolConfig, load_config
from fundpool.pool.view import FIGURES, Figures, PoolView, pool_view
from fundpool.runtime import SystemClock

# The sample pool, shipped at the repository root; `--config` names another file.
DEMO_CONFIG = Path(__file__).resolve().parents[3] / "examples" / "pool.toml"
DEMO_DATA_DIR = Path("data/demo")
DEMO_MARKER = ".fundpool-demo"
# Fifteen wall seconds at a hundred payments a second: some 1,500 payments, a quarter of an
# hour of rails at speed 60, and the whole demo within about twenty seconds.
DEMO_RATE = "100/s"
DEMO_DURATION = "15s"
DEMO_SPEED = 60.0
DEMO_SEED = 7
DEMO_CONSOLE_RATE = "50/s"
DEMO_ALERTS = DEMO_CONFIG.parent / "demo-alerts.yaml"
DEMO_RISK_POLICY = DEMO_CONFIG.parent / "risk-policy.yaml"
DEMO_HOST = "127.0.0.1"
DEMO_PORT = 8000
# One console user per role; a demo on loopback, so its passwords are printed and simple.
DEMO_ROLES = ("viewer", "cashier", "approver", "risk", "auditor", "admin")
# Two more approvers: with `approver`, the treasury leads the demo's approval rules name
# (examples/approval-rules.yaml: payouts of USD 100,000 or more need two of the three).
DEMO_LEADS = ("approver-2", "approver-3")
DEMO_APPROVAL_RULES = DEMO_CONFIG.parent / "approval-rules.yaml"
# What making the demo's ledger may fail with: the file system, or the database itself.
FRESH_STORE_ERRORS: tuple[type[BaseException], ...] = (OSError, *compose.store_errors())


class DemoLedger(LedgerStore, Protocol):
    """The demo's own ledger (`compose.sqlite_ledger`): one SQLite file, which it deletes and
    creates again."""

    path: str

    def is_initialised(self) -> bool: ...


def demo_password(role: str) -> str:
    return f"{role}-demo-pass"
FIGURE_LABELS = {"available": "available", "locked": "locked", "in_transit": "in transit",
                 "pending_settlement": "pending settlement", "total": "TOTAL",
                 "fees": "fee income"}


def _marker_text(store: LedgerStore) -> str:
    head = store.head()
    return ("created by `fundpool demo`, which deletes and rebuilds it\n"
            f"head {head.seq} {head.hash.hex()}\n")


def _fresh_store(data_dir: Path, force: bool) -> tuple[DemoLedger, str]:
    """An empty, initialised store in `data_dir`; a previous demo ledger there is deleted, but
    only if it is as the demo left it: the marker file records the ledger's head at the end
    of the demo, so a ledger someone wrote to since is never deleted without --force."""
    store = compose.sqlite_ledger(data_dir)
    path = Path(store.path)
    marker = data_dir / DEMO_MARKER
    if not store.is_initialised():
        store.initialise()
        marker.write_text(_marker_text(store))
        return store, "new"
    left = _marker_text(store)
    store.close()
    if not force:
        if not marker.exists():
            raise typer.BadParameter(
                f"{path} holds a ledger the demo did not create; refusing to delete it "
                "(choose another --data-dir, or pass --force)",
                param_hint="'--data-dir'",
            )
        if marker.read_text(encoding="utf-8", errors="replace") != left:
            raise typer.BadParameter(
                f"{path} has changed since the demo left it (its head is not the one the demo "
                "recorded); refusing to delete it (choose another --data-dir, or pass --force)",
                param_hint="'--data-dir'",
            )
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    store = compose.sqlite_ledger(data_dir)
    store.initialise()
    marker.write_text(_marker_text(store))
    return store, "wiped: the previous demo ledger was deleted"


def _open_demo(data_dir: Path, config_path: Path | None, pool_id: str | None, force: bool
               ) -> tuple[FundpoolConfig, PoolConfig, DemoLedger, str]:
    """The demo's configuration and pool, then its fresh store; a clear error and exit 2 on
    either. The configuration is read before the store is touched: a bad file deletes
    nothing."""
    try:
        config = load_config(DEMO_CONFIG if config_path is None else config_path)
        pool = config.pool(pool_id)
        config.rates_for(pool)
    except FundpoolError as error:
        report_error(error, as_json=False)
        raise typer.Exit(2) from None
    try:
        store, state = _fresh_store(data_dir, force)
    except FRESH_STORE_ERRORS as error:
        report_error(StoreError(f"cannot use {data_dir} for the demo: {error}"), as_json=False)
        raise typer.Exit(2) from None
    return config, pool, store, state


def pool_table(view: PoolView) -> list[RenderableType]:
    """The pool by state per asset and channel, then per asset, then in the reporting
    currency. Figures fold rather than being cut short on a narrow terminal: a digit hidden
    behind an ellipsis is a wrong amount."""
    table = Table(title=f"pool {view.pool} by state (TOTAL = available + locked + in transit + "
                        "pending settlement)", title_justify="left")
    table.add_column("asset", no_wrap=True)
    table.add_column("channel", no_wrap=True)
    for name in (*FIGURES[:4], "total", "fees"):
        table.add_column(FIGURE_LABELS[name], justify="right", overflow="fold")

    def cells(figures: Figures, asset: Asset) -> list[str]:
        return [asset.format(getattr(figures, name)) for name in (*FIGURES[:4], "total", "fees")]

    for shown in view.assets:
        code = shown.asset.code
        for channel, figures in shown.by_channel.items():
            table.add_row(code, channel, *cells(figures, shown.asset))
        table.add_row(code, "all channels", *cells(shown.total, shown.asset), style="bold",
                      end_section=True)
    currency = view.reporting_currency
    table.add_row(f"in {currency.code}", "all assets", *cells(view.reporting_total, currency),
                  style="bold")
    notes: list[RenderableType] = [table]
    if view.missing_rates:
        notes.append(Text(f"no rate to {currency.code} for {', '.join(view.missing_rates)}: "
                          f"left out of the {currency.code} row", style="yellow"))
    return notes


def routing_table(store: LedgerStore) -> Table:
    rows = routing_share(store)
    routed = sum(chosen for _, chosen, _ in rows) or 1
    table = Table(title="routing share: the router's choices", title_justify="left")
    for name in ("channel", "routed", "share", "named in request"):
        table.add_column(name, justify="left" if name == "channel" else "right")
    for channel, chosen, given in rows:
        table.add_row(channel, f"{chosen:,}", f"{100 * chosen / routed:.1f} %", f"{given:,}")
    return table


def exposure_table(store: LedgerStore, config: FundpoolConfig, pool: PoolConfig) -> Table:
    table = Table(title="merchant advances (instant settlement)", title_justify="left")
    for name in ("asset", "merchant", "outstanding", "cap"):
        table.add_column(name, justify="right" if name in ("outstanding", "cap") else "left")
    for code, who, outstanding, cap in exposure_rows(store, config, pool):
        asset = config.asset(code)
        table.add_row(code, who, asset.format(outstanding), asset.format(cap))
    return table


def demo_report(store: LedgerStore, run: SimulationRun) -> list[RenderableType]:
    """What the run left in the store, for a person: the pool, routing, savings, exposure."""
    config, pool = run.config, run.pool
    report = run.report
    shown = pool_view(store, config, pool, config.rates_for(pool))
    traffic = Text.assemble(
        ("traffic ", "bold"),
        f"{sum(report.created.values()):,} payments ({counts_text(report.created, KIND_ORDER)}"
        f"); refused {counts_text(report.refused)}; rails' outcomes "
        f"{counts_text(report.outcomes, DISPOSITION_ORDER)}; {report.failovers:,} failovers, "
        f"{report.approvals:,} approvals",
    )
    return [
        traffic,
        *pool_table(shown),
        routing_table(store),
        savings_table(run),
        exposure_table(store, config, pool),
        *monitor_report(store, run, shown),
        verify_text(run),
    ]


def monitor_report(store: LedgerStore, run: SimulationRun, shown: PoolView
                   ) -> list[RenderableType]:
    """The live figures, folded from the run's events (what `fundpool monitor show` prints),
    and whether they agree with the ledger's own pool view `shown`."""
    monitor = compose.monitor(store, run.config)
    try:
        monitor.step()
        figures = monitor.figures(run.pool.id)
    finally:
        monitor.projections.close()
    agrees = figures.view.reporting_total == shown.reporting_total
    table = Table(title="time to settle (ms), from the events",
                  title_justify="left")
    for column in ("channel", "settled", "p50", "p90", "p99"):
        table.add_column(column, justify="left" if column == "channel" else "right")
    for f in figures.latency:
        if f.stage == "end_to_end":
            table.add_row(f.channel, f"{f.count:,}", f"{f.p50_us / 1000:,.0f}",
                          f"{f.p90_us / 1000:,.0f}", f"{f.p99_us / 1000:,.0f}")
    return [
        Text.assemble(("monitoring ", "bold"), summary_text(figures).plain,
                      "; projections " + ("agree" if agrees else "DISAGREE")
                      + " with the ledger"),
        table,
    ]


def demo(
    data_dir: Annotated[
        Path, typer.Option("--data-dir", help="Where to build the demo's SQLite ledger "
                                              "(its previous demo ledger is deleted).")
    ] = DEMO_DATA_DIR,
    config_path: Annotated[
        Path | None,
        typer.Option("--config", help="The pool configuration (default: the repository's "
                                      "examples/pool.toml)."),
    ] = None,
    pool_id: Annotated[
        str | None,
        typer.Option("--pool", help="Which pool of the configuration (default: its only one)."),
    ] = None,
    rate: Annotated[str | None, typer.Option(
        "--rate", help="Payments a wall second [default: 50/s live, 100/s with --report].")
    ] = None,
    duration: Annotated[str | None, typer.Option(
        "--duration", help="How long [default: until Ctrl-C live, 15s with --report].")
    ] = None,
    speed: SpeedOption = DEMO_SPEED,
    seed: SeedOption = DEMO_SEED,
    fast: FastOption = False,
    force: Annotated[
        bool, typer.Option("--force", help="Delete a ledger there even if the demo did not "
                                           "create it.")
    ] = False,
    report: Annotated[bool, typer.Option(
        "--report", help="Run the simulator in the terminal for --duration and print what it "
                         "left, instead of serving the console.")] = False,
    host: Annotated[str, typer.Option("--host", help="Address the console listens on.")]
    = DEMO_HOST,
    port: Annotated[int, typer.Option("--port", min=0, max=65_535,
                                      help="Port the console listens on.")] = DEMO_PORT,
) -> None:
    """Serve a live sample pool in the web console (default), or run the traffic simulator
    in the terminal and show what it left (--report, --fast)."""
    if not (report or fast):
        console_demo(data_dir, config_path, rate or DEMO_CONSOLE_RATE, duration, host, port,
                     force)
        return
    started = time.perf_counter()
    settings = Settings.parse(rate or DEMO_RATE, duration or DEMO_DURATION, speed, seed, fast)
    console = stdout_console()
    config, pool, store, state = _open_demo(data_dir, config_path, pool_id, force)
    try:
        console.print(Text(f"demo data directory: {data_dir.resolve()} ({state})"))
        run = run_simulation(store, config, pool, settings, console=console)
        for renderable in demo_report(store, run):
            console.print(renderable)
        # What the demo left: the next demo deletes this ledger only if it is still so.
        (data_dir / DEMO_MARKER).write_text(_marker_text(store))
    except FundpoolError as error:
        report_error(error, as_json=False)
        raise typer.Exit(2) from None
    finally:
        store.close()
    console.print(Text(
        f"done in {time.perf_counter() - started:.1f} s; try: fundpool payment batches "
        f"--data-dir {data_dir}, fundpool pool view --config {config.source} "
        f"--data-dir {data_dir}, or fundpool monitor show --config {config.source} "
        f"--data-dir {data_dir}"
    ))
    if not run.ok:
        raise typer.Exit(1)


def _install_risk(store: LedgerStore, config: FundpoolConfig, users: dict[str, Actor]
                  ) -> None:
    """The demo's risk control: the synthetic sanctions lists shipped with fundpool (every
    name in them invented), and examples/risk-policy.yaml, drafted by the risk officer and
    activated by the admin (maker-checker), as a real pool would start."""
    from fundpool.risk.sanctions import shipped_list

    risk = compose.risk_service(
        store, config,
        lambda pool_id: compose.payment_service(store, config, config.pool(pool_id)),
        clock=SystemClock())
    if risk.store.active_policy() is not None:
        return  # a demo ledger kept with --force keeps its policy
    risk.load_list("synthetic-opensanctions", shipped_list("synthetic.ftm.json"),
                   users["risk"], "ftm")
    risk.load_list("synthetic-ofac-sdn", shipped_list("synthetic_sdn.csv"), users["risk"],
                   "sdn")
    draft = risk.draft(DEMO_RISK_POLICY.read_text(encoding="utf-8"), users["risk"],
                       "the demo pool's policy (examples/risk-policy.yaml)")
    risk.activate(draft.version, users["admin"])


def _install_approvals(store: LedgerStore, config: FundpoolConfig, users: dict[str, Actor]
                       ) -> str | None:
    """The demo's approval rules (examples/approval-rules.yaml), drafted by the risk officer
    and activated by the admin's vote with a TOTP code: the admin is enrolled here, and its
    secret is printed with the sign-ins (for the admin's later votes and role changes). Returns
    that secret (None when the rules were active already: a kept demo ledger)."""
    from fundpool.approvals import totp

    approvals = compose.approval_service(
        store, config, lambda pool_id: compose.payment_service(store, config,
                                                               config.pool(pool_id)),
        clock=SystemClock())
    if approvals.active() is not None:
        return None
    admin = users["admin"]
    secret = str(approvals.begin_totp(admin)["secret"])
    draft = approvals.draft(DEMO_APPROVAL_RULES.read_text(encoding="utf-8"), users["risk"],
                            "the demo pool's approval rules (examples/approval-rules.yaml)")
    # The enrolment's first code confirms it with the vote.
    approvals.vote(draft.version, admin, totp.code_at(secret, approvals.now_us()),
                   confirm=True)
    return secret


def console_demo(data_dir: Path, config_path: Path | None, rate: str, duration: str | None,
                 host: str, port: int, force: bool) -> None:
    """The sample pool served live: console, API, simulator and alert rules in one server."""
    import threading

    import uvicorn

    from fundpool.auth.errors import UserExists
    from fundpool.server.settings import Settings as ServerSettings

    console = stdout_console()
    parse_rate(rate)
    stop_after_s = None if duration is None else parse_duration(duration)
    config, _, store, state = _open_demo(data_dir, config_path, None, force)
    try:
        auth = compose.auth_store(store)  # its tables created if missing
        now_us = SystemClock().now_us()
        for name in (*DEMO_ROLES, *DEMO_LEADS):
            with contextlib.suppress(UserExists):  # a demo ledger kept with --force
                auth.add_user(name, demo_password(name), [name.partition("-")[0]],
                              now_us=now_us)
        users = {u.username: u for u in auth.users() if u.username in ("risk", "admin")}
        auth.close()
        actors = {role: Actor("user", u.id, u.username, u.roles) for role, u in users.items()}
        _install_risk(store, config, actors)
        admin_totp = _install_approvals(store, config, actors)
    finally:
        store.close()
    settings = ServerSettings(data_dir=data_dir, config=config.source, alerts=DEMO_ALERTS,
                              console=True, simulate=rate, host=host, port=port,
                              log_level="warning", access_log=False, evaluate_every_s=2.0)
    app = compose.build_app(settings)
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning",
                                           lifespan="on", access_log=False))
    address = f"http://{host}:{port}"
    console.print(Text(f"demo data directory: {data_dir.resolve()} ({state})"))
    sign_ins = Table(title="sign in with any of these (one user per role)",
                     title_justify="left")
    for column in ("username", "password", "may"):
        sign_ins.add_column(column)
    what = {"viewer": "look", "cashier": "pay out, upload CSV batches",
            "approver": "approve", "risk": "review cases, write risk policies, alerts",
            "auditor": "look and verify", "admin": "everything"}
    what["admin"] += "; TOTP secret " + (admin_totp or "(kept from the earlier demo)")
    for name in (*DEMO_ROLES, *DEMO_LEADS):
        sign_ins.add_row(name, demo_password(name),
                         what.get(name, "approve: a treasury lead"))
    console.print(sign_ins)
    console.print(Text("approvers sign in the browser: open Signing keys, enrol TOTP and "
                       "create a key there (docs/approvals.md)"))
    console.print(Text.assemble(("console ", "bold"), f"{address}/console/",
                                ("   API ", "bold"), f"{address}/docs",
                                f"   simulator {rate}; Ctrl-C stops"))
    if stop_after_s is not None:
        threading.Timer(stop_after_s, lambda: setattr(server, "should_exit", True)).start()
    try:
        server.run()
    finally:
        reopened = compose.sqlite_ledger(data_dir)
        try:
            # What the demo left: the next demo deletes this ledger only if it is still so.
            (data_dir / DEMO_MARKER).write_text(_marker_text(reopened))
        finally:
            reopened.close()
