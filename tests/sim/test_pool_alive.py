"""The demo pool stays alive (issues 14 and 19): the traffic simulator on the demo's pool
(examples/pool.toml), its treasury desk's sweep rules keeping RTP and SEPA funded from the book
channel (examples/treasury.toml, desk/liquidity.py) and the simulated treasury team the other
rails and the book (sim/treasury.py), on a ManualClock and the whole payment machinery
(ledger, payment service, router, dispatcher, simulated rails).

At every step no rail the treasury manages holds less available than its configured minimum
depth, and nothing piles up in flight on the quick rails (every rail but the bank wire, which
settles in hours, and the card acquirer, which funds at T+2): no payment stays in flight there
longer than `IN_FLIGHT_AGE_MAX_S`, and they never hold more than a minute of the whole
traffic. The wire's and the card acquirer's payments in flight grow through the hour as their
cycles say (a wire settles in about two hours, a card capture in two days); they are counted
and shown, not bounded.

The console demo runs 50 payments a second: an hour of it is 180,000 payments, some eight
minutes of this machine, too long for the suite. So the suite runs
- the demo's rate for its first five minutes, where a treasury that reacts too late lets the
  Tron rail run dry (the previous one did, at 280 s: 0.02 times its minimum), and
- a whole hour at a 50th of the rate on a quarter of the demo's depths: an hour of the whole
  machinery, in which nothing may pile up on the quick rails nor any rail drift under its
  minimum; the treasury acts little there (rails drain 12 times slower against their depths
  than in the demo). Shrinking the depths as much as the rate would make single payments
  (up to 99,999 USD, 99 ETH) larger than a rail's whole target: a test of lumpiness that no
  demo has;
- a day at a 500th of the rate on a quarter of the depths (a day of the desk's sweep rules,
  the wire's cut-off, the card's T+2), in which no rail may drift under its minimum: some 80 s,
  run with FUNDPOOL_SIM_DAY=1 (measured: every rail at least 3.29 times its minimum all day,
  the desk's collars funding RTP and SEPA from the book);
and the demo's own hour at its own rate runs with FUNDPOOL_SIM_HOUR=1 (measured: every managed
rail at least 2.9 times its minimum the whole hour, the quick rails' in-flight payments at most
1,510 and none older than 258 s; sim/treasury.py's unit tests run an hour
of the demo's measured drains against the treasury alone, tests/sim/test_treasury.py).
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import pytest

from fundpool import compose
from fundpool.cli.demo import DEMO_CONFIG, DEMO_CONSOLE_RATE
from fundpool.core.actor import SIMULATED_APPROVER
from fundpool.core.clock import ManualClock, Uuid7Ids
from fundpool.desk.runner import DeskRunner
from fundpool.ledger.service import Ledger
from fundpool.payments.model import Action, PaymentState
from fundpool.pool.accounts import PoolState, pool_account
from fundpool.pool.config import ChannelKind, Depth, FundpoolConfig, load_config
from fundpool.sim.pace import parse_rate
from fundpool.sim.traffic import Simulation
from fundpool.sim.treasury import UNMANAGED
from fundpool.stores.sqlite import SqliteStore

SEED = 7  # the demo's
SLOW_KINDS = frozenset({ChannelKind.BANK_WIRE, ChannelKind.CARD_ACQUIRER})
IN_FLIGHT = (PaymentState.APPROVED, PaymentState.SUBMITTED, PaymentState.CLEARED)
IN_FLIGHT_AGE_MAX_S = 600  # the L1's slowest settle in some five and a half minutes
QUICK_IN_FLIGHT_S = 60  # the quick rails hold at most this many seconds of traffic in flight
SAMPLE_EVERY_S = 60
PAGE = 1_000


@dataclass(frozen=True, slots=True)
class Run:
    rate_per_s: float
    duration_s: int
    step_s: float
    depth_divisor: int  # the demo's depths divided by this


@dataclass(slots=True)
class Measured:
    lowest_cover: dict[tuple[str, str], Fraction]  # available / min_depth, lowest seen
    lowest_at_s: dict[tuple[str, str], float]
    quick_in_flight_max: int = 0
    quick_age_max_s: float = 0.0
    slow_in_flight: int = 0
    created: int = 0
    treasury_orders: int = 0
    desk_sweeps: int = 0  # sweep runs of the treasury desk that moved money
    desk_payments: int = 0  # the payments they created, carried by the dispatcher
    wall_s: float = 0.0


def scaled(config: FundpoolConfig, divisor: int) -> FundpoolConfig:
    if divisor == 1:
        return config

    def cut(depth: Depth) -> Depth:
        return Depth(depth.min_minor // divisor, depth.low_minor // divisor,
                     None if depth.target_minor is None else depth.target_minor // divisor)

    channels = tuple(dataclasses.replace(c, depth={a: cut(d) for a, d in c.depth.items()})
                     for c in config.channels)
    return dataclasses.replace(config, channels=channels)


def in_flight(simulation: Simulation, channel: str, now_us: int = 0) -> Iterator[int]:
    """When each payment in flight on `channel` was routed to it. A payout failed over from
    a bank wire (which may refuse it hours later: `AG01 transaction forbidden`) is on this rail
    since its new route, not since it was created; its events say when (read only for the
    few created over IN_FLIGHT_AGE_MAX_S before `now_us`)."""
    old_us = now_us - IN_FLIGHT_AGE_MAX_S * 1_000_000
    for state in IN_FLIGHT:
        after = None
        while True:
            page = simulation.service.list(state=state, channel=channel, limit=PAGE,
                                           after_id=after)
            for payment in page:
                if payment.created_at_us >= old_us:
                    yield payment.created_at_us
                else:
                    yield max(e.at_us for e in simulation.service.events(payment.id)
                              if e.action is Action.ROUTE)
            if len(page) < PAGE:
                break
            after = page[-1].id


def run_pool(tmp_path: Path, run: Run) -> Measured:
    config = scaled(load_config(DEMO_CONFIG), run.depth_divisor)
    pool = config.pool(None)
    store = SqliteStore(tmp_path / "ledger.sqlite3")
    store.initialise()
    try:
        clock = ManualClock()
        ledger = Ledger(store, clock, Uuid7Ids.seeded(SEED))
        simulation = compose.simulation(ledger, config, pool, seed=SEED, clock=clock)
        simulation.open_pool()
        managed = []
        for cid in pool.channels:
            channel = config.channel(cid)
            for asset in channel.assets:
                depth = channel.depth_for(asset)
                if channel.kind not in UNMANAGED and depth is not None:
                    managed.append((asset, cid, depth.min_minor,
                                    pool_account(pool.id, asset, cid, PoolState.AVAILABLE)))
        assert len(managed) == 8, "every rail but the card acquirer's and the book is managed"
        quick = [c for c in pool.channels if config.channel(c).kind not in SLOW_KINDS | {
            ChannelKind.BOOK}]
        slow = [c for c in pool.channels if config.channel(c).kind in SLOW_KINDS]
        started_us = clock.now_us()
        measured = Measured({}, {})
        next_sample_us = started_us
        # The pool's treasury desk on the simulation's own books and clock: its sweep rules
        # keep RTP and SEPA funded from the book channel (examples/treasury.toml), the
        # simulated treasury team funds the book, and the simulated approver signs the desk's
        # transfers as the demo's treasury leads do.
        desk = compose.desk(store, config, pool, clock=clock, ids=Uuid7Ids.seeded(SEED + 1),
                            payments=simulation.service)
        runner = DeskRunner(desk)
        every_us = desk.treasury.sweep_every_s * 1_000_000
        next_desk_us = started_us + every_us

        def run_desk(now_us: int) -> None:
            nonlocal next_desk_us
            if now_us < next_desk_us:
                return
            next_desk_us += every_us
            report = runner.run_once()
            swept = [r for r in report["sweeps"] if r.get("payments")]
            measured.desk_sweeps += len(swept)
            measured.desk_payments += sum(len(r["payments"]) for r in swept)
            waiting = [p.id for p in simulation.service.list(
                state=PaymentState.PENDING_APPROVAL, limit=PAGE) if "treasury" in p.metadata]
            simulation.dispatcher.take_up()
            if waiting:
                simulation.flow.approve(waiting, actor=SIMULATED_APPROVER)

        def check(_: object) -> None:
            nonlocal next_sample_us
            now_us = clock.now_us()
            run_desk(now_us)
            for asset, cid, min_minor, address in managed:
                cover = Fraction(ledger.balance(address, asset).available, min_minor)
                key = (asset, cid)
                if key not in measured.lowest_cover or cover < measured.lowest_cover[key]:
                    measured.lowest_cover[key] = cover
                    measured.lowest_at_s[key] = (now_us - started_us) / 1_000_000
            if now_us < next_sample_us:
                return
            next_sample_us += SAMPLE_EVERY_S * 1_000_000
            routed = [at for c in quick for at in in_flight(simulation, c, now_us)]
            measured.quick_in_flight_max = max(measured.quick_in_flight_max, len(routed))
            oldest_s = (now_us - min(routed, default=now_us)) / 1_000_000
            measured.quick_age_max_s = max(measured.quick_age_max_s, oldest_s)

        wall = time.perf_counter()
        report = simulation.run(rate_per_s=run.rate_per_s, duration_s=run.duration_s,
                                step_s=run.step_s, advance=lambda s: clock.advance(seconds=s),
                                on_step=check)
        measured.wall_s = time.perf_counter() - wall
        measured.created = sum(report.created.values())
        measured.treasury_orders = simulation.treasury.orders
        assert not runner.failed
        measured.slow_in_flight = sum(1 for c in slow for _ in in_flight(simulation, c))
        return measured
    finally:
        store.close()


def assert_alive(measured: Measured, run: Run) -> None:
    shown = {f"{a}:{c}": f"{float(v):.2f} at {measured.lowest_at_s[(a, c)]:.0f} s"
             for (a, c), v in measured.lowest_cover.items()}
    print(f"\n{run}: lowest available / min_depth {shown}; quick rails in flight at most "
          f"{measured.quick_in_flight_max}, oldest {measured.quick_age_max_s:.0f} s; wire and "
          f"card in flight at the end {measured.slow_in_flight}; {measured.created} payments, "
          f"{measured.treasury_orders} treasury orders, {measured.desk_sweeps} desk sweeps "
          f"({measured.desk_payments} payments), {measured.wall_s:.1f} s")
    under = {f"{a}:{c}": shown[f"{a}:{c}"]
             for (a, c), cover in measured.lowest_cover.items() if cover < 1}
    assert not under, f"rails under their minimum depth: {under}"
    assert measured.treasury_orders > 0, "the treasury had nothing to do: the run proves little"
    if run.duration_s >= 3_600:
        # On a quarter of the depths RTP and SEPA open under their collar's floor: the desk
        # funds them from the book in its first runs, and keeps them so.
        assert measured.desk_sweeps > 0, "the desk's sweep rules never ran: the run proves little"
    assert measured.quick_age_max_s <= IN_FLIGHT_AGE_MAX_S
    if run.duration_s <= 3_600:  # at a day's 500th of the rate, one slow L1 payout is the bound
        assert measured.quick_in_flight_max <= run.rate_per_s * QUICK_IN_FLIGHT_S


DEMO_RATE_PER_S = parse_rate(DEMO_CONSOLE_RATE)


@pytest.mark.parametrize("run", [
    pytest.param(Run(DEMO_RATE_PER_S, 300, 1.0, 1), id="the-demo-first-five-minutes"),
    pytest.param(Run(DEMO_RATE_PER_S / 50, 3_600, 2.0, 4), id="an-hour-at-a-50th"),
    pytest.param(Run(DEMO_RATE_PER_S / 500, 86_400, 10.0, 4), id="a-day-at-a-500th",
                 marks=pytest.mark.skipif(
                     os.environ.get("FUNDPOOL_SIM_DAY") != "1",
                     reason="some 80 s: FUNDPOOL_SIM_DAY=1 runs it")),
    pytest.param(Run(DEMO_RATE_PER_S, 3_600, 0.5, 1), id="the-demo-hour", marks=pytest.mark.skipif(
        os.environ.get("FUNDPOOL_SIM_HOUR") != "1",
        reason="180,000 payments, some eight minutes: FUNDPOOL_SIM_HOUR=1 runs it")),
])
def test_the_demo_pool_stays_alive(tmp_path: Path, run: Run) -> None:
    assert_alive(run_pool(tmp_path, run), run)
