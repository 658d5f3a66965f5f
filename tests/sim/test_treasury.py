"""The simulated treasury's decisions (sim/treasury.py), against a small world of balances and
payments it reads through its two ports (`available`, `states`): it follows its own orders by
their payments' states, anticipates each rail's drain over the time a top-up takes, and an
hour of the demo pool's drains (measured at 50 payments a second) leaves every rail above its
minimum depth, in milliseconds rather than the eight minutes the whole machinery takes
(tests/sim/test_pool_alive.py runs that).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from fundpool.core.errors import FundpoolError
from fundpool.payments.model import Payment, PaymentKind, PaymentState
from fundpool.pool.accounts import PoolState, pool_account
from fundpool.pool.config import load_config
from fundpool.sim.treasury import Order, Treasury

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "pool.toml"
CONFIG = load_config(EXAMPLE)
POOL = CONFIG.pool("main")
SECOND_US = 1_000_000
T0 = 1_767_225_600_000_000
# How long the simulated rails really take to bring the treasury's money (its sweeps wait
# 3 s for the simulated approver first), at 50 payments a second.
ARRIVES_S = {"rtp": 3, "sepa": 3, "ecny-rail": 2, "arb-l2": 7, "tron": 62, "eth-l1": 160,
             "bank-a": 7_200}
APPROVED_AFTER_S = 3
# What customers drain from each rail per second at the demo's 50 payments a second (net of
# their deposits; the busiest moments of an hour's run), in whole units.
DEMO_DRAIN_UNITS_PER_S = {("USD", "rtp"): 7_000, ("USD", "bank-a"): 3_000,
                          ("EUR", "sepa"): 2_500, ("USDT", "tron"): 15_000,
                          ("USDT", "eth-l1"): -1_000, ("ETH", "eth-l1"): -3,
                          ("ETH", "arb-l2"): 11, ("E-CNY", "ecny-rail"): 25_000}


def units(asset: str, amount: int) -> int:
    return int(amount * 10 ** CONFIG.asset(asset).scale)


def address(asset: str, channel: str) -> str:
    return pool_account(POOL.id, asset, channel, PoolState.AVAILABLE)


def payment(payment_id: str, order: Order) -> Payment:
    return Payment(payment_id, POOL.id, order.kind, order.asset, order.amount_minor, 0,
                   order.source or order.destination,
                   None if order.source is None else order.destination, None, None,
                   PaymentState.INITIATED, False, T0, T0)


@dataclass
class _Moving:
    order: Order
    payment_id: str
    leaves_at_us: int  # a sweep's source is debited (approved)
    arrives_at_us: int
    fails: bool


class World:
    """Balances per rail, customers draining them, and the treasury's payments carried out
    as the simulated rails would: a sweep leaves its source once approved and arrives after
    its carrier's time, a deposit after its rail's."""

    def __init__(self, *, failing: frozenset[int] = frozenset()) -> None:
        self.now_us = T0
        self.balances: dict[str, int] = {}
        self.states: dict[str, PaymentState] = {}
        self.moving: list[_Moving] = []
        self.failing = failing  # order numbers whose payment fails on its rail
        self.treasury = Treasury(CONFIG, POOL, self.available, self.read_states)
        for rail in self.treasury.rails:
            self.balances[address(rail.asset, rail.channel)] = rail.target
        self.lowest: dict[tuple[str, str], int] = {}
        self.made = 0

    def available(self, account: str, asset: str) -> int:
        return self.balances[account]

    def read_states(self, ids: Sequence[str]) -> Mapping[str, PaymentState]:
        return {i: self.states[i] for i in ids if i in self.states}

    def second(self, drain: Mapping[tuple[str, str], int]) -> None:
        """One second: customers drain, the treasury's payments move, the treasury looks."""
        self.now_us += SECOND_US
        for (asset, channel), amount in drain.items():
            self.balances[address(asset, channel)] -= amount
        for moving in list(self.moving):
            order = moving.order
            if order.source is not None and self.now_us >= moving.leaves_at_us and (
                    self.states[moving.payment_id] is PaymentState.INITIATED):
                self.balances[address(order.asset, order.source)] -= order.amount_minor
                self.states[moving.payment_id] = PaymentState.SUBMITTED
            if self.now_us >= moving.arrives_at_us:
                if moving.fails:
                    self.states[moving.payment_id] = PaymentState.FAILED
                    if order.source is not None:
                        self.balances[address(order.asset, order.source)] += order.amount_minor
                else:
                    self.balances[address(order.asset, order.destination)] += (
                        order.amount_minor)
                    self.states[moving.payment_id] = PaymentState.SETTLED
                self.moving.remove(moving)
        while (made := self.treasury.next_order(self.now_us)) is not None:
            self.make(made)
        for rail in self.treasury.rails:
            key = (rail.asset, rail.channel)
            balance = self.balances[address(*key)]
            self.lowest[key] = min(self.lowest.get(key, balance), balance)

    def make(self, order: Order) -> None:
        self.made += 1
        reference = f"ref-{self.made}"
        self.treasury.named(order, reference)
        payment_id = f"p-{self.made}"
        self.treasury.taken(reference, payment(payment_id, order))
        self.states[payment_id] = PaymentState.INITIATED
        carrier = order.source or order.destination
        leaves = self.now_us + APPROVED_AFTER_S * SECOND_US
        self.moving.append(_Moving(order, payment_id, leaves,
                                   leaves + ARRIVES_S[carrier] * SECOND_US,
                                   order.number in self.failing))

    def cover(self, asset: str, channel: str) -> float:
        depth = CONFIG.channel(channel).depth_for(asset)
        assert depth is not None
        return self.lowest[(asset, channel)] / depth.min_minor


def demo_drain(second: int) -> dict[tuple[str, str], int]:
    """The demo's drains, with a large payout from a rail now and then (every 97 s, the
    top decade of the simulator's amounts on one rail in turn)."""
    drain = {key: units(key[0], v) for key, v in DEMO_DRAIN_UNITS_PER_S.items()}
    if second % 97 == 0:
        keys = sorted(drain)
        asset, channel = keys[(second // 97) % len(keys)]
        drain[(asset, channel)] += units(asset, 99 if asset == "ETH" else 99_999)
    return drain


def test_an_hour_of_the_demo_drains_leaves_every_rail_above_its_minimum() -> None:
    world = World()
    for second in range(3_600):
        world.second(demo_drain(second))
    covers = {f"{a}:{c}": round(world.cover(a, c), 2) for a, c in world.lowest}
    assert min(covers.values()) >= 1, covers
    # and not by drowning the pool: no rail is kept at more than twice its target for long
    for rail in world.treasury.rails:
        assert world.balances[address(rail.asset, rail.channel)] < 3 * rail.target


def test_a_drain_is_met_before_the_rail_is_low_when_its_top_up_is_slow() -> None:
    """Tron: a deposit takes a minute; draining 15,000 USDT a second, it must be ordered
    while the rail still holds far more than its low depth."""
    world = World()
    tron = next(r for r in world.treasury.rails if r.channel == "tron")
    drain = {("USDT", "tron"): units("USDT", 15_000)}
    first_order_at = None
    for _ in range(600):
        world.second(drain)
        if first_order_at is None and world.made:
            first_order_at = world.balances[address("USDT", "tron")]
    assert first_order_at is not None
    # ordered while what the rail holds outlasts the deposit's minute at that drain: it
    # arrives before the rail is under its low depth (a treasury acting at the low depth
    # would leave it draining for a minute, 900,000 USDT, to its minimum)
    takes_s = APPROVED_AFTER_S + ARRIVES_S["tron"]
    assert first_order_at - units("USDT", 15_000) * takes_s > tron.low
    assert world.cover("USDT", "tron") >= 1


def test_what_arrived_is_counted_once_and_a_failed_order_is_made_again() -> None:
    world = World(failing=frozenset({1, 2, 3, 4}))
    rtp = address("USD", "rtp")
    world.balances[rtp] = units("USD", 1_000_000)  # under its 1.5 M low depth
    world.second({})
    # deposits on RTP, its own rail the quickest way in, of at most its 1 M per payment
    assert [(m.order.kind, m.order.destination, m.order.amount_minor) for m in world.moving] == [
        (PaymentKind.DEPOSIT, "rtp", units("USD", 1_000_000))] * 4
    look = world.treasury.looks[("USD", "rtp")]
    assert look.level == units("USD", 1_000_000)
    for _ in range(10):  # they fail on their rail after 3 + 3 s: ordered again
        world.second({})
    assert world.made == 8
    for _ in range(10):
        world.second({})
    assert world.balances[rtp] == units("USD", 5_000_000)  # the target, and only once
    look = world.treasury.looks[("USD", "rtp")]
    assert look.level == look.available == units("USD", 5_000_000)
    assert world.made == 8


def test_a_refused_order_is_not_counted_as_coming() -> None:
    world = World()
    sepa = address("EUR", "sepa")
    world.balances[sepa] = units("EUR", 100_000)
    world.now_us += SECOND_US
    orders = []
    while (order := world.treasury.next_order(world.now_us)) is not None:
        orders.append(order)
        world.treasury.named(order, f"r-{order.number}")
        world.treasury.taken(f"r-{order.number}", FundpoolError("refused"))
    assert orders  # split by SEPA's 100,000 EUR per payment
    assert all(o.amount_minor <= units("EUR", 100_000) for o in orders)
    world.now_us += SECOND_US
    again = world.treasury.next_order(world.now_us)
    assert again is not None  # nothing counted as coming
    assert again.destination == "sepa"


def test_a_slow_bridge_on_its_way_does_not_keep_the_l2_waiting() -> None:
    """Arbitrum's quickest way in is a deposit on it (seconds); a bridge from the L1 takes
    minutes. A bridge on its way must not stop the treasury from funding the L2 now."""
    world = World()
    l1, l2 = address("ETH", "eth-l1"), address("ETH", "arb-l2")
    world.balances[l1] = units("ETH", 3_500)  # over 1.5 x its target: the excess goes to L2
    world.balances[l2] = units("ETH", 1_200)  # under its target, above its low depth
    world.second({})
    (bridge,) = world.moving
    assert (bridge.order.kind, bridge.order.source, bridge.order.destination) == (
        PaymentKind.BRIDGE, "eth-l1", "arb-l2")
    world.balances[l2] = units("ETH", 500)  # now drained under its 600 ETH low depth
    for _ in range(3):
        world.second({})
    deposits = [m.order for m in world.moving if m.order.kind is PaymentKind.DEPOSIT]
    assert [d.destination for d in deposits] == ["arb-l2"]
