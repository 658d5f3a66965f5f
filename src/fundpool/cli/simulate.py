"""`fundpool simulate`: the traffic simulator (sim/traffic.py) on a real store, watched live.

    fundpool simulate --rate 200/s --duration 30s --seed 7              # live, rails x60
    fundpool simulate --rate 200/s --duration 30s --seed 7 --fast       # deterministic
    fundpool simulate --config examples/pool.toml --data-dir ./data --json

A live run keeps pace with the wall clock (`--rate` payments a wall second, for `--duration`
wall seconds) while the rails live `--speed` times faster (`ScaledClock`): a card acquirer's
T+2 or a wire's hours pass in minutes. `--fast` runs the very same traffic on a `ManualClock`
the simulator moves itself, as fast as the machine goes (`--speed` still says how much rail
time a wall second is): the same seed and configuration on an empty store give the same
journal, byte for byte, in SQLite or PostgreSQL (compare the head hash). Either clock starts
at the ledger head's time or later, never before what the journal already holds.

While it runs, a panel shows what the simulator created, where the payments stand, what the
rails reported, the batches and their savings, and the pool by state in the reporting
currency. At the end the journal is verified (`fundpool.ledger.verify.verify`): `verify: ok`,
or exit 1 with the first bad entry.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from fundpool import compose
from fundpool.cli.options import DataDirOption, DbUrlOption, JsonOption, parse_duration, parse_rate
from fundpool.cli.output import stdout_console
from fundpool.cli.pool_options import ConfigOption, PoolOption, config_path
from fundpool.cli.session import describe_store, session
from fundpool.core.clock import Clock, ManualClock, Uuid7Ids
from fundpool.core.ledger.model import Balance
from fundpool.core.money import Asset
from fundpool.ledger.docs import amount_fields, iso
from fundpool.ledger.ports import LedgerStore
from fundpool.ledger.verify import VerifyReport, verify
from fundpool.payments.model import PaymentKind, PaymentState
from fundpool.pool.accounts import exposure_merchant, exposure_total
from fundpool.pool.config import FundpoolConfig, OwnerKind, PoolConfig, load_config
from fundpool.pool.view import PoolView, pool_view
from fundpool.runtime import SystemClock
from fundpool.sim.traffic import ScaledClock, Simulation, SimulationReport

# Bounds on what a command line may ask for (the rate's and the duration's: sim/pace.py).
SPEED_MAX = 100_000.0
SPEED_DEFAULT = 60.0
SEED_DEFAULT = 7
# A step every tenth of a wall second; a fast run moves its clock by the same span of rail
# time (STEP_S x speed), so it runs exactly the traffic a live run would.
STEP_S = 0.1
PANEL_REFRESH_S = 0.5  # about twice a second
# A fast run on an empty ledger starts on a Tuesday morning, inside every cut-off window.
SIM_START_US = int(datetime(2026, 11, 24, 9, tzinfo=UTC).timestamp()) * 1_000_000
AFTER_HEAD_US = 1_000  # a new run starts a millisecond after the ledger's last entry
ROUTE_GIVEN = "given"  # a route the caller named, not one the router chose


# --- options ------------------------------------------------------------------------------------

RateOption = Annotated[
    str, typer.Option("--rate", help="Payments a wall second: 200/s, 200, 6000/m, 90000/h.")
]
DurationOption = Annotated[
    str, typer.Option("--duration", help="How long, in wall seconds: 30s, 5m, 1h, 90.")
]
SpeedOption = Annotated[
    float,
    typer.Option("--speed", min=0.001, max=SPEED_MAX,
                 help="How many times faster than the wall the rails live."),
]
SeedOption = Annotated[int, typer.Option("--seed", help="Seed of the traffic, rails and router.")]
FastOption = Annotated[
    bool,
    typer.Option("--fast", help="As fast as possible on a simulated clock: deterministic under "
                                "the seed."),
]


@dataclass(frozen=True, slots=True)
class Settings:
    rate_per_s: float
    duration_s: float
    speed: float
    seed: int
    fast: bool

    @classmethod
    def parse(cls, rate: str, duration: str, speed: float, seed: int, fast: bool) -> Settings:
        return cls(parse_rate(rate), parse_duration(duration), speed, seed, fast)

    @property
    def mode(self) -> str:
        return "fast" if self.fast else "live"


def payment_state_counts(store: LedgerStore, pool: str) -> dict[str, int]:
    """The pool's payments by state, in the order of `PaymentState`."""
    counts = compose.payment_records(store).state_counts(pool)
    return {s.value: counts[s] for s in PaymentState if s in counts}


def route_counts(store: LedgerStore) -> dict[tuple[str | None, str], int]:
    """Routes (one per attempt) by (channel, strategy); channel None: no eligible channel."""
    return compose.dispatch_reads(store).route_counts()


# --- a run ----------------------------------------------------------------------------------------


@dataclass(slots=True)
class SimulationRun:
    """What one run did, read back from the store at its end."""

    settings: Settings
    store: str
    config: FundpoolConfig
    pool: PoolConfig
    started_us: int
    earlier_payments: int = 0  # the pool's payments in the store before the run
    ended_us: int = 0
    wall_s: float = 0.0
    interrupted: bool = False
    report: SimulationReport = field(default_factory=SimulationReport)
    states: dict[str, int] = field(default_factory=dict)
    savings: dict[tuple[str, str], tuple[int, int, int]] = field(default_factory=dict)
    verified: VerifyReport | None = None

    @property
    def ok(self) -> bool:
        return self.verified is not None and self.verified.ok


class _Stopped(Exception):
    """Ctrl-C, taken between two steps so that no step is cut in half."""


@contextlib.contextmanager
def _stop_on_interrupt() -> Iterator[threading.Event]:
    """The first Ctrl-C asks the run to stop after its current step; a second one stops it at
    once. Outside the main thread (where signals cannot be caught) nothing changes."""
    requested = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield requested
        return

    def handler(signum: int, frame: object) -> None:
        if requested.is_set():
            raise KeyboardInterrupt
        requested.set()

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield requested
    finally:
        signal.signal(signal.SIGINT, previous)


def start_clock(store: LedgerStore, settings: Settings) -> tuple[Clock, Callable[[float], None]
                                                                 | None]:
    """The run's clock (and, fast, how the simulator moves it), at the head's time or later."""
    after_head = store.head().at_us + AFTER_HEAD_US
    if settings.fast:
        manual = ManualClock(max(SIM_START_US, after_head))

        def advance(seconds: float) -> None:
            manual.advance(seconds=seconds)

        return manual, advance
    wall_us = SystemClock().now_us()
    return ScaledClock(settings.speed, start_us=max(wall_us, after_head)), None


def run_simulation(
    store: LedgerStore,
    config: FundpoolConfig,
    pool: PoolConfig,
    settings: Settings,
    *,
    console: Console | None,
) -> SimulationRun:
    """Open the pool (accounts and opening floats, once), run the traffic, verify the journal.
    With a console, a panel shows the run as it goes."""
    # A run's keys and rail references carry its start time (sim/traffic.py), so a run on a
    # store that holds earlier runs adds to them without meeting them.
    earlier = sum(payment_state_counts(store, pool.id).values())
    clock, advance = start_clock(store, settings)
    ids = Uuid7Ids.seeded(settings.seed)
    # Its payments are decided by the store's active risk policy, as the engine's are.
    simulation = compose.simulation(
        compose.ledger(store, clock, ids), config, pool, seed=settings.seed, clock=clock,
        ids=ids, screening=compose.risk_engine(store, config, pool, clock=clock, ids=ids))
    simulation.open_pool()
    run = SimulationRun(settings, describe_store(store), config, pool, clock.now_us(),
                        earlier_payments=earlier, report=simulation.report)
    rates = config.rates_for(pool)
    wall0 = time.perf_counter()

    def frame() -> RenderableType:
        return live_panel(run, simulation, clock.now_us(), time.perf_counter() - wall0,
                          pool_view(store, config, pool, rates))

    if console is not None and not settings.fast:
        console.print(Text(f"running for {settings.duration_s:g} s at {settings.rate_per_s:g} "
                           f"payments a second, the rails {settings.speed:g} times faster; "
                           "Ctrl-C stops after the current step"))
    # On a terminal the panel is redrawn in place; elsewhere only its last frame is printed.
    animated = console is not None and console.is_terminal
    live = (Live(frame(), console=console, auto_refresh=False, transient=False) if animated
            else contextlib.nullcontext())
    with live as shown, _stop_on_interrupt() as stop:
        refreshed = time.perf_counter()

        def on_step(_: object) -> None:
            nonlocal refreshed
            if stop.is_set():
                raise _Stopped
            if shown is not None and time.perf_counter() - refreshed >= PANEL_REFRESH_S:
                shown.update(frame(), refresh=True)
                refreshed = time.perf_counter()

        try:
            simulation.run(
                rate_per_s=settings.rate_per_s,
                duration_s=settings.duration_s,
                step_s=STEP_S * settings.speed if settings.fast else STEP_S,
                speed=settings.speed,
                advance=advance,
                on_step=on_step,
            )
        except _Stopped:
            simulation.dispatcher.flush_records()
            run.interrupted = True
        if shown is not None:
            shown.update(frame(), refresh=True)
    if console is not None and not animated:
        console.print(frame())
    run.ended_us = clock.now_us()
    run.wall_s = time.perf_counter() - wall0
    run.states = payment_state_counts(store, pool.id)
    run.savings = simulation.dispatcher.reads.savings(since_us=run.started_us)
    run.verified = verify(store)
    return run


# --- showing it -----------------------------------------------------------------------------------


def counts_text(counts: Mapping[str, int], order: Sequence[str] = ()) -> str:
    """`deposit 990 · payout 1,120`, in `order` first, then by name; `-` when empty."""
    keys = [k for k in order if counts.get(k)] + sorted(k for k in counts if k not in order)
    return " · ".join(f"{key} {counts[key]:,}" for key in keys if counts[key]) or "-"


KIND_ORDER = [k.value for k in PaymentKind]
STATE_ORDER = [s.value for s in PaymentState]
DISPOSITION_ORDER = ["applied", "duplicate", "late", "stale", "anomaly", "refused"]


def savings_by_asset(savings: Mapping[tuple[str, str], tuple[int, int, int]]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for (_, asset), (_, _, saved) in savings.items():
        totals[asset] = totals.get(asset, 0) + saved
    return totals


def _amounts_text(amounts: Mapping[str, int], assets: Mapping[str, Asset]) -> str:
    shown = [f"{assets[code].format(minor)} {code}" if code in assets else f"{minor} {code}"
             for code, minor in amounts.items() if minor]
    return " · ".join(shown) or "-"


def pool_figures_table(view: PoolView) -> Table:
    """The pool in the reporting currency: one row, TOTAL and its parts, fee income beside."""
    currency = view.reporting_currency
    table = Table(box=None, padding=(0, 2, 0, 0), show_edge=False)
    total = view.reporting_total
    columns = (("TOTAL", total.total), ("available", total.available),
               ("locked", total.locked), ("in transit", total.in_transit),
               ("pending settlement", total.pending_settlement), ("fee income", total.fees))
    for name, _ in columns:
        table.add_column(name, justify="right", style="bold" if name == "TOTAL" else None)
    table.add_row(*(currency.format(value) for _, value in columns))
    return table


def live_panel(
    run: SimulationRun, simulation: Simulation, now_us: int, wall_s: float, view: PoolView
) -> Panel:
    settings = run.settings
    report = simulation.report
    assets = {a.code: a for a in run.config.assets}
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    progress = (f"{wall_s:.1f} s of wall time (fast)" if settings.fast
                else f"{min(wall_s, settings.duration_s):.1f} s of {settings.duration_s:g} s")
    grid.add_row("time", f"{progress}; rails at {iso(now_us)[:19]}Z")
    grid.add_row("created", f"{sum(report.created.values()):,}: "
                            + counts_text(report.created, KIND_ORDER))
    grid.add_row("refused", counts_text(report.refused))
    grid.add_row("fraud-like", counts_text(report.patterns))
    grid.add_row("states", counts_text(payment_state_counts(simulation.ledger.store,
                                                            run.pool.id), STATE_ORDER))
    grid.add_row("outcomes", counts_text(report.outcomes, DISPOSITION_ORDER))
    savings = simulation.dispatcher.reads.savings(since_us=run.started_us)
    grid.add_row("batches", f"{report.batches:,} sent; saved by batching: "
                            + _amounts_text(savings_by_asset(savings), assets))
    grid.add_row("failovers", f"{report.failovers:,}; approvals {report.approvals:,}; "
                              f"stuck {report.stuck:,}")
    figures = pool_figures_table(view)
    title = (f"fundpool simulate: pool {run.pool.id}, {settings.mode}"
             + ("" if settings.fast else f", rails x{settings.speed:g}")
             + f", {settings.rate_per_s:g}/s, seed {settings.seed}")
    notes: list[RenderableType] = [
        grid, Text(f"pool in {view.reporting_currency.code}", style="bold"), figures,
    ]
    if view.missing_rates:
        notes.append(Text(f"no rate for {', '.join(view.missing_rates)}: left out",
                          style="yellow"))
    return Panel(Group(*notes), title=title, title_align="left", expand=False)


def savings_rows(
    run: SimulationRun,
) -> list[tuple[str, str, int, int, int]]:
    """(channel, asset, batches, fees paid, saved), in the pool's channel order."""
    order = {cid: i for i, cid in enumerate(run.pool.channels)}
    return [
        (channel, asset, batches, fee, saved)
        for (channel, asset), (batches, fee, saved) in sorted(
            run.savings.items(), key=lambda item: (order.get(item[0][0], len(order)), item[0])
        )
    ]


def savings_table(run: SimulationRun) -> Table:
    assets = {a.code: a for a in run.config.assets}
    table = Table(title="batches sent and fees saved by batching", title_justify="left")
    for name in ("channel", "asset", "batches", "fees paid", "saved"):
        table.add_column(name, justify="left" if name in ("channel", "asset") else "right")
    for channel, code, batches, fee, saved in savings_rows(run):
        asset = assets.get(code)
        table.add_row(channel, code, f"{batches:,}",
                      asset.format(fee) if asset else str(fee),
                      asset.format(saved) if asset else str(saved))
    return table


def verify_text(run: SimulationRun) -> Text:
    verified = run.verified
    if verified is not None and verified.ok:
        return Text.assemble(("verify: ok", "bold green"),
                             f" ({verified.entries:,} entries: chain, legs and balances agree;"
                             f" head {verified.head_hash})")
    problem = "not run" if verified is None else str(verified.problem)
    return Text(f"verify: FAILED: {problem}", style="bold red")


def summary_renderables(run: SimulationRun) -> list[RenderableType]:
    report = run.report
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    settings = run.settings
    grid.add_row("run", f"{settings.mode}, {settings.rate_per_s:g}/s for "
                        f"{settings.duration_s:g} s, speed {settings.speed:g}, seed "
                        f"{settings.seed}; {run.wall_s:.1f} s of wall time"
                        + (" (stopped early)" if run.interrupted else ""))
    grid.add_row("rails' time", f"{iso(run.started_us)} .. {iso(run.ended_us)}")
    grid.add_row("store", f"{run.store}, pool {run.pool.id} of {run.config.source}")
    grid.add_row("created", f"{sum(report.created.values()):,}: "
                            + counts_text(report.created, KIND_ORDER))
    grid.add_row("refused", counts_text(report.refused))
    grid.add_row("fraud-like", counts_text(report.patterns))
    grid.add_row("states", counts_text(run.states, STATE_ORDER))
    grid.add_row("outcomes", counts_text(report.outcomes, DISPOSITION_ORDER))
    grid.add_row("steps", counts_text(report.steps))
    grid.add_row("dispatch", f"{report.ticks:,} ticks, {report.batches:,} batches, "
                             f"{report.failovers:,} failovers, {report.approvals:,} approvals, "
                             f"{report.stuck:,} stuck")
    return [grid, savings_table(run), verify_text(run)]


def summary_doc(run: SimulationRun) -> dict[str, object]:
    report = run.report
    settings = run.settings
    assets = {a.code: a for a in run.config.assets}
    verified = run.verified
    return {
        "mode": settings.mode,
        "seed": settings.seed,
        "rate_per_s": settings.rate_per_s,
        "duration_s": settings.duration_s,
        "speed": settings.speed,
        "store": run.store,
        "config": run.config.source,
        "pool": run.pool.id,
        "started_at": iso(run.started_us),
        "ended_at": iso(run.ended_us),
        "wall_s": round(run.wall_s, 3),
        "interrupted": run.interrupted,
        "earlier_payments": run.earlier_payments,
        "created": dict(sorted(report.created.items())),
        "refused": dict(sorted(report.refused.items())),
        "patterns": dict(sorted(report.patterns.items())),
        "outcomes": dict(sorted(report.outcomes.items())),
        "steps": dict(sorted(report.steps.items())),
        "states": run.states,
        "ticks": report.ticks,
        "batches": report.batches,
        "failovers": report.failovers,
        "approvals": report.approvals,
        "stuck": report.stuck,
        "savings": [
            {
                "channel": channel,
                "asset": code,
                "batches": batches,
                **amount_fields("fee", fee, assets.get(code)),
                **amount_fields("saved", saved, assets.get(code)),
            }
            for channel, code, batches, fee, saved in savings_rows(run)
        ],
        "verify": None if verified is None else verified.to_dict(),
        "head_hash": None if verified is None else verified.head_hash,
    }


# --- merchant exposure and routing share (the demo's report) ------------------------------------


def exposure_rows(
    store: LedgerStore, config: FundpoolConfig, pool: PoolConfig
) -> list[tuple[str, str, int, int]]:
    """(asset, who, outstanding, cap) for each asset with instant settlement: the pool's total
    advances to merchants, then each merchant's."""
    balances = store.balances(f"exposure:{pool.id}:")
    merchants = [o.id for o in config.owners if o.kind is OwnerKind.MERCHANT]
    rows: list[tuple[str, str, int, int]] = []
    for code, caps in pool.instant_settlement.items():

        def posted(address: str, asset: str = code) -> int:
            return balances.get((address, asset), Balance()).posted

        rows.append((code, "all merchants", posted(exposure_total(pool.id, code)),
                     caps.pool_cap_minor))
        for owner in merchants:
            rows.append((code, owner, posted(exposure_merchant(pool.id, code, owner)),
                         caps.merchant_cap_minor))
    return rows


def routing_share(store: LedgerStore) -> list[tuple[str, int, int]]:
    """(channel, routes the router chose, routes the caller named), most routed first; the
    router's 'no eligible channel' is listed as `(none)`."""
    chosen: dict[str, int] = {}
    given: dict[str, int] = {}
    for (channel, strategy), n in route_counts(store).items():
        if channel is None and strategy == ROUTE_GIVEN:
            continue  # a transfer between the pool's channels: never routed
        target = given if strategy == ROUTE_GIVEN else chosen
        name = channel or "(none)"
        target[name] = target.get(name, 0) + n
    names = sorted(set(chosen) | set(given), key=lambda c: (-chosen.get(c, 0), c))
    return [(name, chosen.get(name, 0), given.get(name, 0)) for name in names]


# --- the command ----------------------------------------------------------------------------------


def simulate(
    rate: RateOption = "200/s",
    duration: DurationOption = "30s",
    seed: SeedOption = SEED_DEFAULT,
    speed: SpeedOption = SPEED_DEFAULT,
    fast: FastOption = False,
    config: ConfigOption = None,
    pool: PoolOption = None,
    data_dir: DataDirOption = None,
    db_url: DbUrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Run realistic traffic through the pool on simulated rails, then verify the journal."""
    settings = Settings.parse(rate, duration, speed, seed, fast)
    with session(data_dir, db_url, as_json, initialise=True) as s:
        declared = load_config(config_path(config))
        chosen = declared.pool(pool)
        s.store.initialise()
        console = None if as_json else stdout_console()
        run = run_simulation(s.store, declared, chosen, settings, console=console)
        s.emit(summary_doc(run), summary_renderables(run))
    if not run.ok:
        raise typer.Exit(1)
