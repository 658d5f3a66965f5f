"""`fundpool demo`: a sample fund pool, simulated through one day, in the embedded store.

The pool is the one a configuration file declares (`examples/pool.toml` by default, `--config`
to choose another): `fundpool.pool.setup.init_pool` defines its assets and opens its accounts,
named by `fundpool.pool.accounts` (`pool:<pool>:<asset>:<channel>:<state>` and
`world:<channel>`). `build_demo_ledger` then submits thousands of deposit, payout and
rebalancing flows in batches through `Ledger.submit`, from a seeded random generator and a
`ManualClock`, so the same seed and configuration give the same journal byte for byte.
`print_demo_report` prints the pool as `fundpool.pool.view.pool_view` sees it, in each asset and
in the pool's reporting currency. Nothing here uses a float for an amount: amounts are drawn as
integers of minor units.

Flow parameters: the configuration says what the pool holds, not how money moves through it, so
the simulation's own parameters live here: `DEMO_FLOWS` (per asset code: amount range, opening
float per channel, weight among assets). Payout fees are the configuration's own channel fee
schedules (a channel with none charges nothing). The demo does not fail on an asset it has no
parameters for: an asset the configuration names but `DEMO_FLOWS` does not know is simulated
with defaults derived from its scale (`DEFAULT_FLOWS`: 1 to 10,000 whole units a flow, i.e.
10**scale to 10**(scale + 4) minor units, a float of 1,000,000 units per channel, weight 10).
The report names what used defaults ("flow defaults"), so a typo in the configuration shows
rather than hides. Parameters for assets the configuration does not name are unused.

Flows, on each channel of each of the pool's assets:
- deposit: world -> pending_settlement, later pending_settlement -> available; some webhooks are
  delivered twice (same idempotency key: replayed) and some deposits are returned (reversed).
- payout: available -> locked (a pending transfer, posted later, sometimes in part or voided; or
  a plain transfer), locked -> in_transit, then in_transit -> world with the fee to fees; a few
  fail on the rail and come back to available.
- rebalance between two channels of one asset: available -> in_transit -> other available.
- review holds: pending transfers left open, or left to expire.
"""

from __future__ import annotations

import heapq
import random
import time
from collections import Counter
from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, NamedTuple

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from fundpool.cli.ledger import iso, report_error, stdout_console
from fundpool.core.clock import ManualClock, Uuid7Ids
from fundpool.core.errors import FundpoolError
from fundpool.core.ledger.engine import CommandResult
from fundpool.core.ledger.model import (
    Balance,
    Command,
    CreatePending,
    PendingState,
    Posting,
    PostPending,
    Reverse,
    Transfer,
    VoidPending,
)
from fundpool.core.money import Asset
from fundpool.ledger.ports import LedgerStore
from fundpool.ledger.service import Ledger
from fundpool.ledger.verify import VerifyReport, verify
from fundpool.pool.accounts import PoolState, pool_account, world_account
from fundpool.pool.config import FeeSchedule, FundpoolConfig, PoolConfig, load_config
from fundpool.pool.rates import RateSource, StaticRates
from fundpool.pool.setup import init_pool
from fundpool.pool.view import PoolView, pool_view
from fundpool.stores.sqlite import SqliteStore

# The sample pool, shipped at the repository root; `--config` names another file.
DEMO_CONFIG = Path(__file__).resolve().parents[3] / "examples" / "pool.toml"
DEMO_DATA_DIR = Path("data/demo")
DEMO_MARKER = ".fundpool-demo"
DEMO_TRANSACTIONS = 5_000
DEMO_SEED = 7
DEMO_START_US = (datetime(2026, 11, 24, tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC)) // (
    timedelta(microseconds=1)
)
DAY_S = 86_400
BATCHES_PER_DAY_MAX = 144  # one batch every ten simulated minutes
PAYOUT_TIMEOUT_S = 6 * 3600


# --- flow parameters: what the configuration does not say ------------------------------------


@dataclass(frozen=True, slots=True)
class AssetFlows:
    """How the simulation moves one asset; amounts are decimal text in the asset's units."""

    amount_min: str
    amount_max: str
    opening_float: str  # credited to each of the asset's channels at the start of the day
    weight: int  # how often the asset is picked for a flow, relative to the pool's others


DEMO_FLOWS: Mapping[str, AssetFlows] = {
    "USD": AssetFlows("5.00", "25000.00", "2500000.00", 35),
    "EUR": AssetFlows("5.00", "20000.00", "1500000.00", 20),
    "USDT": AssetFlows("1.000000", "150000.000000", "3000000.000000", 25),
    "ETH": AssetFlows("0.001", "40", "1500", 10),
    "E-CNY": AssetFlows("1.00", "50000.00", "8000000.00", 10),
}

# For an asset `DEMO_FLOWS` does not know: whole units, which its scale makes 10**scale minor
# units each (1 to 10,000 units a flow, a float of 1,000,000 units per channel).
DEFAULT_FLOWS = AssetFlows("1", "10000", "1000000", 10)


@dataclass(frozen=True, slots=True)
class ChannelPlan:
    """One channel of one asset, with the configuration's payout fee schedule for it."""

    channel: str
    fees: FeeSchedule

    def fee(self, amount_minor: int) -> int:
        return self.fees.outbound_fee(amount_minor)


@dataclass(frozen=True, slots=True)
class AssetPlan:
    """One asset of the pool as the simulation moves it, amounts in minor units."""

    asset: Asset
    channels: tuple[ChannelPlan, ...]
    amount_min: int
    amount_max: int
    opening_float: int
    weight: int


@dataclass(frozen=True, slots=True)
class DemoPlan:
    assets: tuple[AssetPlan, ...]
    defaulted: tuple[str, ...]  # assets that used default flow parameters: "GBP"


def demo_plan(config: FundpoolConfig, pool: PoolConfig) -> DemoPlan:
    """The pool's assets, each with the pool's channels that carry it, in the configuration's
    order (the order `pool_view` lists them in), with their flow parameters."""
    channels = {c.id: c for c in config.channels}
    carried: dict[str, list[str]] = {}
    for channel_id in pool.channels:
        for code in channels[channel_id].assets:
            carried.setdefault(code, []).append(channel_id)
    plans: list[AssetPlan] = []
    defaulted: list[str] = []
    for code, channel_ids in carried.items():
        asset = config.asset(code)
        flows = DEMO_FLOWS.get(code)
        if flows is None:
            flows = DEFAULT_FLOWS
            defaulted.append(code)
        channel_plans: list[ChannelPlan] = []
        for channel_id in channel_ids:
            channel_plans.append(
                ChannelPlan(channel_id, channels[channel_id].fee_schedule(code))
            )
        low, high = asset.parse(flows.amount_min), asset.parse(flows.amount_max)
        if not 0 < low <= high or flows.weight < 1:
            raise ValueError(f"the demo's flow parameters for {code} are not usable: {flows}")
        plans.append(AssetPlan(asset, tuple(channel_plans), low, high,
                               asset.parse(flows.opening_float), flows.weight))
    return DemoPlan(tuple(plans), tuple(defaulted))


def load_demo_config(path: Path | None = None) -> FundpoolConfig:
    """The demo's configuration: `path`, or the sample pool shipped with the repository."""
    return load_config(DEMO_CONFIG if path is None else path)


# --- the simulation --------------------------------------------------------------------------


class Step(NamedTuple):
    """A flow's next command, to be submitted `delay_s` after its previous one (0: now)."""

    delay_s: int
    command: Command


Flow = Generator[Step, CommandResult, None]


@dataclass(slots=True)
class DemoRun:
    """What `build_demo_ledger` did."""

    pool: str = ""
    commands: int = 0
    batches: int = 0
    replayed: int = 0
    flows: Counter[str] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)
    defaulted: tuple[str, ...] = ()
    started_us: int = 0
    ended_us: int = 0


def draw_amount(rng: random.Random, low: int, high: int) -> int:
    """An integer in [low, high], spread evenly over its number of digits (log-uniform-ish)."""
    digits = rng.randint(len(str(low)), len(str(high)))
    return rng.randint(max(low, 10 ** (digits - 1)), min(high, 10**digits - 1))


class _Simulation:
    def __init__(
        self,
        ledger: Ledger,
        config: FundpoolConfig,
        pool: PoolConfig,
        rng: random.Random,
        clock: ManualClock,
        transactions: int,
    ) -> None:
        self.ledger = ledger
        self.config = config
        self.pool = pool
        self.plan = demo_plan(config, pool)
        self.rng = rng
        self.clock = clock
        self.transactions = transactions
        self.batches = max(1, min(BATCHES_PER_DAY_MAX, transactions // 8))
        self.per_batch = -(-transactions // self.batches)
        self.step_s = DAY_S // self.batches
        self.run = DemoRun(pool=pool.id, batches=0, defaulted=self.plan.defaulted)
        # What each pool account can spend: read from the store before each batch, then kept
        # up to date (conservatively) as commands are placed in it.
        self.available: dict[str, int] = {}
        self._queue: list[tuple[int, int, Flow, Step]] = []
        self._order = 0
        self._refs = 0
        self._asset_weights = [plan.weight for plan in self.plan.assets]

    def _account(self, plan: AssetPlan, channel: ChannelPlan | str, state: PoolState) -> str:
        name = channel if isinstance(channel, str) else channel.channel
        return pool_account(self.pool.id, plan.asset.code, name, state)

    # --- the loop -----------------------------------------------------------------------

    def simulate(self) -> DemoRun:
        init_pool(self.ledger, self.config)
        self.run.started_us = self.clock.now_us()
        for plan in self.plan.assets:
            for channel in plan.channels:
                self._start(self._opening_float(plan, channel), due=0)
        batch = 0
        while self.run.commands < self.transactions:
            if batch:
                jitter = self.rng.randint(-self.step_s * 100_000, self.step_s * 100_000)
                self.clock.advance(microseconds=self.step_s * 1_000_000 + jitter)
            self._batch(batch)
            batch += 1
        self.ledger.expire_due()
        self.run.batches = batch
        self.run.ended_us = self.clock.now_us()
        return self.run

    def _batch(self, index: int) -> None:
        self._refresh_available()
        quota = min(self.per_batch, self.transactions - self.run.commands)
        placed: list[tuple[Flow, Command]] = []
        while self._queue and self._queue[0][0] <= index and len(placed) < quota:
            _, _, flow, step = heapq.heappop(self._queue)
            placed.append((flow, self._place(step.command)))
        attempts = 0
        while len(placed) < quota and attempts < 10 * quota:
            attempts += 1
            kind, flow = self._new_flow()
            try:
                step = next(flow)
            except StopIteration:
                continue  # nothing to do for this pick (e.g. no funds to pay out yet)
            self.run.flows[kind] += 1
            placed.append((flow, self._place(step.command)))
        results = self.ledger.submit([command for _, command in placed])
        for (flow, _), result in zip(placed, results, strict=True):
            self.run.commands += 1
            if result.error is not None:
                self.run.rejected[result.error.code] += 1
                flow.close()
                continue
            if result.status == "replayed":
                self.run.replayed += 1
            try:
                step = flow.send(result)
            except StopIteration:
                continue
            self._push(index + max(1, -(-step.delay_s // self.step_s)), flow, step)

    def _start(self, flow: Flow, due: int) -> None:
        try:
            step = next(flow)
        except StopIteration:
            return
        self._push(due, flow, step)

    def _push(self, due: int, flow: Flow, step: Step) -> None:
        self._order += 1
        heapq.heappush(self._queue, (due, self._order, flow, step))

    def _refresh_available(self) -> None:
        balances = self.ledger.store.balances(f"pool:{self.pool.id}:")
        self.available = {address: b.available for (address, _), b in balances.items()}

    def _place(self, command: Command) -> Command:
        # Debits are counted when placed; so are credits, which land earlier in the same batch.
        if isinstance(command, Transfer):
            for posting in command.postings:
                self._move(posting.source, -posting.amount_minor)
                self._move(posting.destination, posting.amount_minor)
        elif isinstance(command, CreatePending):
            self._move(command.posting.source, -command.posting.amount_minor)
        return command

    def _move(self, address: str, delta: int) -> None:
        self.available[address] = self.available.get(address, 0) + delta

    def _ref(self, prefix: str) -> str:
        self._refs += 1
        return f"{prefix}-{self._refs:06d}"

    def _new_flow(self) -> tuple[str, Flow]:
        rng = self.rng
        plan = rng.choices(self.plan.assets, weights=self._asset_weights)[0]
        channel = rng.choice(plan.channels)
        roll = rng.randrange(100)
        if roll < 40:
            return "deposit", self._deposit(plan, channel)
        if roll < 86:
            return "payout", self._payout(plan, channel)
        if roll < 94 and len(plan.channels) > 1:
            return "rebalance", self._rebalance(plan)
        if roll < 97:
            return "review_hold_expiring", self._hold(plan, channel, expiring=True)
        return "review_hold_open", self._hold(plan, channel, expiring=False)

    def _amount(self, plan: AssetPlan, cap: int | None = None) -> int:
        low, high = plan.amount_min, plan.amount_max
        if cap is not None:
            high = min(high, cap)
        return 0 if high < low else draw_amount(self.rng, low, high)

    @staticmethod
    def _posting(source: str, destination: str, plan: AssetPlan, amount: int) -> Posting:
        return Posting(source, destination, plan.asset.code, amount)

    # --- flows --------------------------------------------------------------------------

    def _opening_float(self, plan: AssetPlan, channel: ChannelPlan) -> Flow:
        if plan.opening_float <= 0:
            return
        settling = self._account(plan, channel, PoolState.PENDING_SETTLEMENT)
        world = world_account(channel.channel)
        ref = self._ref("float")
        meta = {"flow": "opening_float", "ref": ref, "channel": channel.channel}
        yield Step(0, Transfer(
            (self._posting(world, settling, plan, plan.opening_float),), meta, ref
        ))
        yield Step(1, Transfer(
            (self._posting(settling, self._account(plan, channel, PoolState.AVAILABLE),
                           plan, plan.opening_float),),
            {**meta, "flow": "opening_float_settled"},
        ))

    def _deposit(self, plan: AssetPlan, channel: ChannelPlan) -> Flow:
        rng = self.rng
        amount = self._amount(plan)
        settling = self._account(plan, channel, PoolState.PENDING_SETTLEMENT)
        ref = self._ref("dep")
        meta = {"flow": "deposit", "ref": ref, "channel": channel.channel}
        deposit = Transfer(
            (self._posting(world_account(channel.channel), settling, plan, amount),), meta, ref
        )
        received = yield Step(0, deposit)
        if rng.randrange(100) < 3:  # the rail delivers the same notification again
            yield Step(rng.randint(30, 900), deposit)
        if rng.randrange(100) < 2:  # returned by the sender's bank before settlement
            assert received.entry is not None
            yield Step(rng.randint(600, 7200), Reverse(
                received.entry.id, {"flow": "deposit_returned", "ref": ref}
            ))
            return
        yield Step(rng.randint(600, 4 * 3600), Transfer(
            (self._posting(settling, self._account(plan, channel, PoolState.AVAILABLE),
                           plan, amount),),
            {"flow": "deposit_settled", "ref": ref},
        ))

    def _payout(self, plan: AssetPlan, channel: ChannelPlan) -> Flow:
        rng = self.rng
        available = self._account(plan, channel, PoolState.AVAILABLE)
        locked = self._account(plan, channel, PoolState.LOCKED)
        in_transit = self._account(plan, channel, PoolState.IN_TRANSIT)
        room = self.available.get(available, 0) // 2
        amount = self._amount(plan, cap=room - channel.fee(room))
        if amount <= 0:
            return
        fee = channel.fee(amount)
        total = amount + fee
        ref = self._ref("po")
        meta = {"flow": "payout", "ref": ref, "channel": channel.channel}
        if rng.randrange(100) < 70:
            reserved = yield Step(0, CreatePending(
                self._posting(available, locked, plan, total), PAYOUT_TIMEOUT_S, meta, ref
            ))
            assert reserved.entry is not None
            pending_id = reserved.entry.id
            roll = rng.randrange(100)
            if roll < 6:  # compliance rejects it: the reservation is released
                yield Step(rng.randint(60, 1800), VoidPending(
                    pending_id, {"flow": "payout_rejected", "ref": ref}
                ))
                return
            if roll < 10:  # the customer lowers the amount before it is sent
                amount = max(1, amount * rng.randint(40, 95) // 100)
                total = amount + fee
                yield Step(rng.randint(60, 1800), PostPending(
                    pending_id, total, {"flow": "payout_approved_partly", "ref": ref}
                ))
            else:
                yield Step(rng.randint(60, 1800), PostPending(
                    pending_id, None, {"flow": "payout_approved", "ref": ref}
                ))
        else:
            yield Step(0, Transfer((self._posting(available, locked, plan, total),), meta, ref))
        yield Step(rng.randint(60, 900), Transfer(
            (self._posting(locked, in_transit, plan, total),), {"flow": "payout_sent", "ref": ref}
        ))
        if rng.randrange(100) < 5:  # the rail rejects it: the funds come back
            yield Step(rng.randint(600, 6 * 3600), Transfer(
                (self._posting(in_transit, available, plan, total),),
                {"flow": "payout_returned", "ref": ref},
            ))
            return
        postings = [self._posting(in_transit, world_account(channel.channel), plan, amount)]
        if fee:
            postings.append(self._posting(
                in_transit, self._account(plan, channel, PoolState.FEES), plan, fee
            ))
        yield Step(rng.randint(300, 3 * 3600), Transfer(
            tuple(postings), {"flow": "payout_settled", "ref": ref}
        ))

    def _rebalance(self, plan: AssetPlan) -> Flow:
        source, destination = self.rng.sample(plan.channels, 2)
        available = self._account(plan, source, PoolState.AVAILABLE)
        in_transit = self._account(plan, source, PoolState.IN_TRANSIT)
        amount = self._amount(plan, cap=self.available.get(available, 0) // 4)
        if amount <= 0:
            return
        ref = self._ref("rb")
        meta = {"flow": "rebalance", "ref": ref,
                "channel": f"{source.channel}>{destination.channel}"}
        yield Step(0, Transfer((self._posting(available, in_transit, plan, amount),), meta, ref))
        yield Step(self.rng.randint(300, 3600), Transfer(
            (self._posting(in_transit, self._account(plan, destination, PoolState.AVAILABLE),
                           plan, amount),),
            {**meta, "flow": "rebalance_arrived"},
        ))

    def _hold(self, plan: AssetPlan, channel: ChannelPlan, *, expiring: bool) -> Flow:
        available = self._account(plan, channel, PoolState.AVAILABLE)
        amount = self._amount(plan, cap=self.available.get(available, 0) // 4)
        if amount <= 0:
            return
        timeout_s = self.rng.randint(600, 1800) if expiring else self.rng.randint(2, 3) * DAY_S
        ref = self._ref("hold")
        yield Step(0, CreatePending(
            self._posting(available, self._account(plan, channel, PoolState.LOCKED),
                          plan, amount),
            timeout_s,
            {"flow": "review_hold", "ref": ref, "channel": channel.channel},
            ref,
        ))


def build_demo_ledger(
    ledger: Ledger,
    config: FundpoolConfig,
    rng: random.Random,
    clock: ManualClock,
    transactions: int = DEMO_TRANSACTIONS,
    *,
    pool: str | None = None,
) -> DemoRun:
    """Fill an empty, initialised ledger with the pool `pool` of `config` (its only pool when
    None): `init_pool`, then `transactions` commands of simulated flows over one day of
    `clock`, in batches."""
    if transactions < 1:
        raise ValueError("the demo needs at least one transaction")
    pool_config = config.pool(pool)
    return _Simulation(ledger, config, pool_config, rng, clock, transactions).simulate()


# --- reading it back -------------------------------------------------------------------------


def asset_sums(store: LedgerStore) -> dict[str, Balance]:
    """Per asset, every account's balance added up: double entry makes posted 0 and
    pending out equal to pending in."""
    sums: dict[str, Balance] = {}
    for (_, code), b in store.balances().items():
        s = sums.get(code, Balance())
        sums[code] = Balance(s.posted + b.posted, s.pending_out + b.pending_out,
                             s.pending_in + b.pending_in)
    return sums


def print_demo_report(
    console: Console,
    store: LedgerStore,
    run: DemoRun,
    report: VerifyReport,
    *,
    config: FundpoolConfig,
    pool: PoolConfig,
    rates: RateSource,
) -> PoolView:
    """Print the pool as `pool_view` sees it and the ledger's summary; return the view."""
    view = pool_view(store, config, pool, rates)
    reporting = view.reporting_currency
    table = Table(
        title=f"pool {pool.id} ({pool.name}): balances by state (TOTAL = available + locked + "
        "in transit + pending settlement; locked includes what pending transfers reserve)",
        title_justify="left",
    )
    table.add_column("asset", no_wrap=True)
    table.add_column("channel", no_wrap=True)
    for name in ("available", "locked", "in transit", "pending settlement", "TOTAL",
                 "fee income", f"TOTAL in {reporting.code}"):
        table.add_column(name, justify="right", overflow="fold")
    for index, asset_view in enumerate(view.assets):
        fmt = asset_view.asset.format
        code = asset_view.asset.code
        for channel, figures in asset_view.by_channel.items():
            table.add_row(
                code, channel, fmt(figures.available), fmt(figures.locked),
                fmt(figures.in_transit), fmt(figures.pending_settlement), fmt(figures.total),
                fmt(figures.fees), "",
            )
        total = asset_view.total
        converted = asset_view.reporting
        table.add_row(
            code, "all channels", fmt(total.available), fmt(total.locked),
            fmt(total.in_transit), fmt(total.pending_settlement), fmt(total.total),
            fmt(total.fees), "no rate" if converted is None else reporting.format(converted.total),
            style="bold", end_section=index < len(view.assets) - 1,
        )
    console.print(table)
    as_of = rates.as_of if isinstance(rates, StaticRates) else None
    console.print(Text.assemble(
        (f"TOTAL in {reporting.code}: {reporting.format(view.reporting_total.total)}", "bold"),
        f" (fee income {reporting.format(view.reporting_total.fees)} {reporting.code}): the "
        f"assets' TOTAL in {reporting.code} added up"
        + (f", at rates as of {as_of}" if as_of else ""),
    ))
    if view.missing_rates:
        console.print(Text(
            f"missing rates: {', '.join(view.missing_rates)} (no rate to {reporting.code}: "
            f"left out of the {reporting.code} figures)", style="bold yellow",
        ))

    head = store.head()
    pendings = Counter(p.state for p in store.pendings())
    sums = asset_sums(store)
    balanced = all(s.posted == 0 and s.pending_out == s.pending_in for s in sums.values())
    summary = Table(show_header=False, box=None, title="ledger", title_justify="left")
    summary.add_column(style="bold")
    summary.add_column()
    summary.add_row("configuration", f"{config.source}, pool {pool.id}")
    if run.defaulted:
        summary.add_row("flow defaults", "demo defaults (no parameters in DEMO_FLOWS) "
                                         f"for {', '.join(run.defaulted)}")
    summary.add_row("simulated", f"{iso(run.started_us)} .. {iso(run.ended_us)} "
                                 f"in {run.batches} batches")
    summary.add_row("commands", f"{run.commands} submitted, {run.replayed} replayed "
                                f"(idempotent retries), {sum(run.rejected.values())} rejected"
                                + (f" {dict(run.rejected)}" if run.rejected else ""))
    summary.add_row("flows", ", ".join(f"{k} {v}" for k, v in sorted(run.flows.items())))
    summary.add_row("pending transfers", ", ".join(
        f"{state.value} {pendings.get(state, 0)}" for state in PendingState
    ))
    summary.add_row("journal entries", str(head.seq))
    summary.add_row("head hash", head.hash.hex())
    summary.add_row("double entry", "every asset sums to zero over all accounts" if balanced
                    else f"NOT BALANCED: {sums}")
    if report.ok:
        summary.add_row("verify", Text(f"ok: {report.entries} entries, chain, legs and "
                                       "balances agree", style="green"))
    else:
        summary.add_row("verify", Text(f"FAILED: {report.problem}", style="bold red"))
    console.print(summary)
    return view


# --- the command -----------------------------------------------------------------------------


def _fresh_store(data_dir: Path, force: bool) -> tuple[SqliteStore, str]:
    """An empty, initialised store in `data_dir`; a previous demo ledger there is deleted."""
    store = SqliteStore.in_data_dir(data_dir)
    path = Path(store.path)
    marker = data_dir / DEMO_MARKER
    if not store.is_initialised():
        store.initialise()
        marker.write_text("created by `fundpool demo`, which deletes and rebuilds it\n")
        return store, "new"
    store.close()
    if not marker.exists() and not force:
        raise typer.BadParameter(
            f"{path} holds a ledger the demo did not create; refusing to delete it "
            "(choose another --data-dir, or pass --force)",
            param_hint="'--data-dir'",
        )
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    store = SqliteStore(path)
    store.initialise()
    marker.write_text("created by `fundpool demo`, which deletes and rebuilds it\n")
    return store, "the previous demo ledger was deleted"


def demo(
    data_dir: Annotated[
        Path, typer.Option("--data-dir", help="Where to build the demo's SQLite ledger.")
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
    seed: Annotated[int, typer.Option("--seed", help="Seed of the simulation.")] = DEMO_SEED,
    transactions: Annotated[
        int,
        typer.Option("--transactions", min=1, max=1_000_000, help="Commands to simulate."),
    ] = DEMO_TRANSACTIONS,
    force: Annotated[
        bool, typer.Option("--force", help="Delete a ledger there even if the demo did not "
                                           "create it.")
    ] = False,
) -> None:
    """Build a sample pool ledger (a simulated day of flows) and print its balances."""
    started = time.perf_counter()
    console = stdout_console()
    try:
        # The configuration is read before the store is touched: a bad file deletes nothing.
        config = load_demo_config(config_path)
        pool = config.pool(pool_id)
        rates = config.rates_for(pool)
        plan = demo_plan(config, pool)  # a fee the asset's scale cannot hold fails here
    except FundpoolError as error:
        report_error(error, as_json=False)
        raise typer.Exit(2) from None
    store, state = _fresh_store(data_dir, force)
    try:
        console.print(Text(f"demo ledger: {Path(store.path).resolve()} ({state})"))
        clock = ManualClock(DEMO_START_US)
        ledger = Ledger(store, clock, Uuid7Ids(random.Random(f"fundpool-demo-ids-{seed}")))
        run = build_demo_ledger(ledger, config, random.Random(seed), clock, transactions,
                                pool=pool.id)
        report = verify(store)
        print_demo_report(console, store, run, report, config=config, pool=pool, rates=rates)
    except FundpoolError as error:
        report_error(error, as_json=False)
        raise typer.Exit(2) from None
    finally:
        store.close()
    first = plan.assets[0]
    example = pool_account(pool.id, first.asset.code, first.channels[0].channel,
                           PoolState.AVAILABLE)
    console.print(Text(f"done in {time.perf_counter() - started:.2f} s; try: fundpool ledger "
                       f"balance {example} --data-dir {data_dir}"))
    if not report.ok:
        raise typer.Exit(1)
