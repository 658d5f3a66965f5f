"""`fundpool demo`: a sample fund pool, simulated through one day, in the embedded store.

`build_demo_ledger` makes the ledger (assets, accounts, then thousands of deposit, payout and
rebalancing flows submitted in batches through `Ledger.submit`) from a seeded random generator
and a `ManualClock`, so the same seed gives the same journal byte for byte. `pool_rows` and
`asset_sums` read the result back; `print_demo_report` prints it. Nothing here uses a float for
an amount: amounts are drawn as integers of minor units.

Accounts, for each asset and each of its channels:
`pool:main:<asset>:<channel>:available|locked|in_transit|pending_settlement|fees`, plus
`world:<channel>` (the outside world on that rail: it may go negative).

Flows:
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
from collections.abc import Generator, Iterable
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
from fundpool.core.errors import FundpoolError, InvalidAsset, invariant
from fundpool.core.ledger.engine import CommandResult
from fundpool.core.ledger.model import (
    Account,
    Balance,
    Command,
    CreatePending,
    DefineAsset,
    OpenAccount,
    PendingState,
    Posting,
    PostPending,
    Reverse,
    Transfer,
    VoidPending,
)
from fundpool.core.money import Asset, AssetKind
from fundpool.ledger.ports import LedgerStore
from fundpool.ledger.service import Ledger
from fundpool.ledger.verify import VerifyReport, verify
from fundpool.stores.sqlite import SqliteStore

DEMO_DATA_DIR = Path("data/demo")
DEMO_MARKER = ".fundpool-demo"
DEMO_TRANSACTIONS = 5_000
DEMO_SEED = 7
DEMO_START_US = (datetime(2026, 11, 24, tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC)) // (
    timedelta(microseconds=1)
)
DAY_S = 86_400
POOL = "main"
STATES = ("available", "locked", "in_transit", "pending_settlement")
FEES = "fees"
BATCHES_PER_DAY_MAX = 144  # one batch every ten simulated minutes
PAYOUT_TIMEOUT_S = 6 * 3600


def _cbdc_code() -> str:
    # The e-CNY is written E-CNY; fall back to ECNY while the asset code grammar has no '-'.
    try:
        Asset("E-CNY", 2, AssetKind.CBDC)
    except InvalidAsset:
        return "ECNY"
    return "E-CNY"


@dataclass(frozen=True, slots=True)
class DemoChannel:
    """A payment rail for one asset, with its payout fee: fixed + basis points."""

    name: str
    fee_fixed: str
    fee_bps: int = 0


@dataclass(frozen=True, slots=True)
class DemoAsset:
    asset: Asset
    channels: tuple[DemoChannel, ...]
    amount_min: str
    amount_max: str
    opening_float: str
    weight: int

    def fee(self, channel: DemoChannel, amount_minor: int) -> int:
        return self.asset.parse(channel.fee_fixed) + amount_minor * channel.fee_bps // 10_000


DEMO_ASSETS: tuple[DemoAsset, ...] = (
    DemoAsset(
        Asset("USD", 2, AssetKind.FIAT),
        (DemoChannel("bank-a", "0.25", 5), DemoChannel("card-acq", "0.30", 25)),
        "5.00", "25000.00", "2500000.00", 35,
    ),
    DemoAsset(
        Asset("EUR", 2, AssetKind.FIAT),
        (DemoChannel("sepa", "0.20"),),
        "5.00", "20000.00", "1500000.00", 20,
    ),
    DemoAsset(
        Asset("USDT", 6, AssetKind.STABLECOIN),
        (DemoChannel("tron", "1.000000"), DemoChannel("eth-l1", "4.500000")),
        "1.000000", "150000.000000", "3000000.000000", 25,
    ),
    DemoAsset(
        Asset("ETH", 18, AssetKind.CRYPTO),
        (DemoChannel("eth-l1", "0.000420"), DemoChannel("arb-l2", "0.000012")),
        "0.001", "40", "1500", 10,
    ),
    DemoAsset(
        Asset(_cbdc_code(), 2, AssetKind.CBDC),
        (DemoChannel("ecny-rail", "0.01", 2),),
        "1.00", "50000.00", "8000000.00", 10,
    ),
)


def segment(asset: Asset) -> str:
    """The asset as an address segment: USD -> usd, E-CNY -> e-cny, USDT.TRON -> usdt-tron."""
    return asset.code.lower().replace(".", "-")


def pool_address(asset: Asset, channel: str, state: str, pool: str = POOL) -> str:
    return f"pool:{pool}:{segment(asset)}:{channel}:{state}"


def world_address(channel: str) -> str:
    return f"world:{channel}"


def demo_setup_commands(pool: str = POOL) -> list[Command]:
    """Define the demo's assets and open its accounts."""
    commands: list[Command] = [DefineAsset(demo.asset) for demo in DEMO_ASSETS]
    worlds: list[str] = []
    for demo in DEMO_ASSETS:
        for channel in demo.channels:
            for state in (*STATES, FEES):
                address = pool_address(demo.asset, channel.name, state, pool)
                commands.append(OpenAccount(Account(address, asset=demo.asset.code)))
            if world_address(channel.name) not in worlds:
                worlds.append(world_address(channel.name))
    # A rail's world account carries every asset that moves on it (eth-l1: ETH and USDT).
    commands.extend(OpenAccount(Account(w, allow_negative=True)) for w in worlds)
    return commands


# --- the simulation --------------------------------------------------------------------------


class Step(NamedTuple):
    """A flow's next command, to be submitted `delay_s` after its previous one (0: now)."""

    delay_s: int
    command: Command


Flow = Generator[Step, CommandResult, None]


@dataclass(slots=True)
class DemoRun:
    """What `build_demo_ledger` did."""

    commands: int = 0
    batches: int = 0
    replayed: int = 0
    flows: Counter[str] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)
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
        rng: random.Random,
        clock: ManualClock,
        transactions: int,
        pool: str,
    ) -> None:
        self.ledger = ledger
        self.rng = rng
        self.clock = clock
        self.transactions = transactions
        self.pool = pool
        self.batches = max(1, min(BATCHES_PER_DAY_MAX, transactions // 8))
        self.per_batch = -(-transactions // self.batches)
        self.step_s = DAY_S // self.batches
        self.run = DemoRun(batches=0)
        # What each pool account can spend: read from the store before each batch, then kept
        # up to date (conservatively) as commands are placed in it.
        self.available: dict[str, int] = {}
        self._queue: list[tuple[int, int, Flow, Step]] = []
        self._order = 0
        self._refs = 0
        self._asset_weights = [demo.weight for demo in DEMO_ASSETS]

    # --- the loop -----------------------------------------------------------------------

    def simulate(self) -> DemoRun:
        results = self.ledger.submit(demo_setup_commands(self.pool))
        failed = [r.error for r in results if r.error is not None]
        invariant(not failed, f"the demo's assets and accounts open: {failed[:1]}")
        self.run.started_us = self.clock.now_us()
        for demo in DEMO_ASSETS:
            for channel in demo.channels:
                self._start(self._opening_float(demo, channel), due=0)
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
        balances = self.ledger.store.balances(f"pool:{self.pool}:")
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
        demo = rng.choices(DEMO_ASSETS, weights=self._asset_weights)[0]
        channel = rng.choice(demo.channels)
        roll = rng.randrange(100)
        if roll < 40:
            return "deposit", self._deposit(demo, channel)
        if roll < 86:
            return "payout", self._payout(demo, channel)
        if roll < 94 and len(demo.channels) > 1:
            return "rebalance", self._rebalance(demo)
        if roll < 97:
            return "review_hold_expiring", self._hold(demo, channel, expiring=True)
        return "review_hold_open", self._hold(demo, channel, expiring=False)

    def _amount(self, demo: DemoAsset, cap: int | None = None) -> int:
        low, high = demo.asset.parse(demo.amount_min), demo.asset.parse(demo.amount_max)
        if cap is not None:
            high = min(high, cap)
        return 0 if high < low else draw_amount(self.rng, low, high)

    def _posting(self, source: str, destination: str, demo: DemoAsset, amount: int) -> Posting:
        return Posting(source, destination, demo.asset.code, amount)

    # --- flows --------------------------------------------------------------------------

    def _opening_float(self, demo: DemoAsset, channel: DemoChannel) -> Flow:
        asset = demo.asset
        amount = asset.parse(demo.opening_float)
        settling = pool_address(asset, channel.name, "pending_settlement", self.pool)
        ref = self._ref("float")
        meta = {"flow": "opening_float", "ref": ref, "channel": channel.name}
        yield Step(0, Transfer(
            (self._posting(world_address(channel.name), settling, demo, amount),), meta, ref
        ))
        yield Step(1, Transfer(
            (self._posting(settling, pool_address(asset, channel.name, "available", self.pool),
                           demo, amount),),
            {**meta, "flow": "opening_float_settled"},
        ))

    def _deposit(self, demo: DemoAsset, channel: DemoChannel) -> Flow:
        rng, asset = self.rng, demo.asset
        amount = self._amount(demo)
        settling = pool_address(asset, channel.name, "pending_settlement", self.pool)
        ref = self._ref("dep")
        meta = {"flow": "deposit", "ref": ref, "channel": channel.name}
        deposit = Transfer(
            (self._posting(world_address(channel.name), settling, demo, amount),), meta, ref
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
            (self._posting(settling, pool_address(asset, channel.name, "available", self.pool),
                           demo, amount),),
            {"flow": "deposit_settled", "ref": ref},
        ))

    def _payout(self, demo: DemoAsset, channel: DemoChannel) -> Flow:
        rng, asset = self.rng, demo.asset
        available = pool_address(asset, channel.name, "available", self.pool)
        locked = pool_address(asset, channel.name, "locked", self.pool)
        in_transit = pool_address(asset, channel.name, "in_transit", self.pool)
        room = self.available.get(available, 0) // 2
        amount = self._amount(demo, cap=room - demo.fee(channel, room))
        if amount <= 0:
            return
        fee = demo.fee(channel, amount)
        total = amount + fee
        ref = self._ref("po")
        meta = {"flow": "payout", "ref": ref, "channel": channel.name}
        if rng.randrange(100) < 70:
            reserved = yield Step(0, CreatePending(
                self._posting(available, locked, demo, total), PAYOUT_TIMEOUT_S, meta, ref
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
            yield Step(0, Transfer((self._posting(available, locked, demo, total),), meta, ref))
        yield Step(rng.randint(60, 900), Transfer(
            (self._posting(locked, in_transit, demo, total),), {"flow": "payout_sent", "ref": ref}
        ))
        if rng.randrange(100) < 5:  # the rail rejects it: the funds come back
            yield Step(rng.randint(600, 6 * 3600), Transfer(
                (self._posting(in_transit, available, demo, total),),
                {"flow": "payout_returned", "ref": ref},
            ))
            return
        postings = [self._posting(in_transit, world_address(channel.name), demo, amount)]
        if fee:
            postings.append(
                self._posting(in_transit, pool_address(asset, channel.name, FEES, self.pool),
                              demo, fee)
            )
        yield Step(rng.randint(300, 3 * 3600), Transfer(
            tuple(postings), {"flow": "payout_settled", "ref": ref}
        ))

    def _rebalance(self, demo: DemoAsset) -> Flow:
        source, destination = self.rng.sample(demo.channels, 2)
        asset = demo.asset
        available = pool_address(asset, source.name, "available", self.pool)
        in_transit = pool_address(asset, source.name, "in_transit", self.pool)
        amount = self._amount(demo, cap=self.available.get(available, 0) // 4)
        if amount <= 0:
            return
        ref = self._ref("rb")
        meta = {"flow": "rebalance", "ref": ref, "channel": f"{source.name}>{destination.name}"}
        yield Step(0, Transfer((self._posting(available, in_transit, demo, amount),), meta, ref))
        yield Step(self.rng.randint(300, 3600), Transfer(
            (self._posting(in_transit,
                           pool_address(asset, destination.name, "available", self.pool),
                           demo, amount),),
            {**meta, "flow": "rebalance_arrived"},
        ))

    def _hold(self, demo: DemoAsset, channel: DemoChannel, *, expiring: bool) -> Flow:
        asset = demo.asset
        available = pool_address(asset, channel.name, "available", self.pool)
        amount = self._amount(demo, cap=self.available.get(available, 0) // 4)
        if amount <= 0:
            return
        timeout_s = self.rng.randint(600, 1800) if expiring else self.rng.randint(2, 3) * DAY_S
        ref = self._ref("hold")
        yield Step(0, CreatePending(
            self._posting(available, pool_address(asset, channel.name, "locked", self.pool),
                          demo, amount),
            timeout_s,
            {"flow": "review_hold", "ref": ref, "channel": channel.name},
            ref,
        ))


def build_demo_ledger(
    ledger: Ledger,
    rng: random.Random,
    clock: ManualClock,
    transactions: int = DEMO_TRANSACTIONS,
    *,
    pool: str = POOL,
) -> DemoRun:
    """Fill an empty, initialised ledger with the demo pool: its assets and accounts, then
    `transactions` commands of simulated flows over one day of `clock`, in batches."""
    if transactions < 1:
        raise ValueError("the demo needs at least one transaction")
    return _Simulation(ledger, rng, clock, transactions, pool).simulate()


# --- reading it back -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PoolRow:
    """Posted balances by state for one asset on one channel (`channel` None: all channels)."""

    asset: Asset
    channel: str | None
    available: int = 0
    locked: int = 0
    in_transit: int = 0
    pending_settlement: int = 0
    fees: int = 0
    held: int = 0  # reserved out of available by open pending transfers

    @property
    def total(self) -> int:
        return self.available + self.locked + self.in_transit + self.pending_settlement


def _asset_order(assets: Iterable[Asset]) -> list[Asset]:
    rank = {demo.asset.code: index for index, demo in enumerate(DEMO_ASSETS)}
    return sorted(assets, key=lambda a: (rank.get(a.code, len(rank)), a.code))


def pool_rows(store: LedgerStore, pool: str = POOL) -> list[PoolRow]:
    """Per asset: a row per channel, then the asset's total row (channel None)."""
    assets = {asset.code: asset for asset in store.assets()}
    sums: dict[tuple[str, str], dict[str, int]] = {}
    for (address, code), balance in store.balances(f"pool:{pool}:").items():
        parts = address.split(":")
        if len(parts) != 5 or parts[4] not in (*STATES, FEES):
            continue
        cell = sums.setdefault((code, parts[3]), {})
        cell[parts[4]] = cell.get(parts[4], 0) + balance.posted
        if parts[4] == "available":
            cell["held"] = cell.get("held", 0) + balance.pending_out
    rows: list[PoolRow] = []
    for asset in _asset_order(assets[code] for code in {code for code, _ in sums}):
        channels = sorted(channel for code, channel in sums if code == asset.code)
        total: dict[str, int] = {}
        for channel in channels:
            cell = sums[asset.code, channel]
            rows.append(PoolRow(asset, channel, **cell))
            for name, value in cell.items():
                total[name] = total.get(name, 0) + value
        rows.append(PoolRow(asset, None, **total))
    return rows


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
    pool: str = POOL,
) -> None:
    table = Table(
        title=f"pool {pool}: balances by state (TOTAL = available + locked + in transit + "
        "pending settlement)",
        title_justify="left",
    )
    table.add_column("asset", no_wrap=True)
    table.add_column("channel", no_wrap=True)
    for name in ("available", "locked", "in transit", "pending settlement", "TOTAL",
                 "fee income", "held by pending"):
        table.add_column(name, justify="right", overflow="fold")
    rows = pool_rows(store, pool)
    for row in rows:
        fmt = row.asset.format
        cells = (
            row.asset.code,
            row.channel or "all channels",
            fmt(row.available), fmt(row.locked), fmt(row.in_transit),
            fmt(row.pending_settlement), fmt(row.total), fmt(row.fees), fmt(row.held),
        )
        if row.channel is None:
            table.add_row(*cells, style="bold", end_section=row is not rows[-1])
        else:
            table.add_row(*cells)
    console.print(table)

    head = store.head()
    pendings = Counter(p.state for p in store.pendings())
    sums = asset_sums(store)
    balanced = all(s.posted == 0 and s.pending_out == s.pending_in for s in sums.values())
    summary = Table(show_header=False, box=None, title="ledger", title_justify="left")
    summary.add_column(style="bold")
    summary.add_column()
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
    store, state = _fresh_store(data_dir, force)
    try:
        console.print(Text(f"demo ledger: {Path(store.path).resolve()} ({state})"))
        clock = ManualClock(DEMO_START_US)
        ledger = Ledger(store, clock, Uuid7Ids(random.Random(f"fundpool-demo-ids-{seed}")))
        run = build_demo_ledger(ledger, random.Random(seed), clock, transactions)
        report = verify(store)
        print_demo_report(console, store, run, report)
    except FundpoolError as error:
        report_error(error, as_json=False)
        raise typer.Exit(2) from None
    finally:
        store.close()
    console.print(Text(f"done in {time.perf_counter() - started:.2f} s; try: fundpool ledger "
                       f"balance {pool_address(DEMO_ASSETS[0].asset, 'bank-a', 'available')} "
                       f"--data-dir {data_dir}"))
    if not report.ok:
        raise typer.Exit(1)
