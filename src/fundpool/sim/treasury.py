"""The simulated treasury team: it keeps each rail of the pool funded, as a real one does, so
that a simulated pool stays alive for hours instead of draining in minutes (issue 14).

Customers' payouts drain the rails the router likes (the cheap, fast ones) while their deposits
land wherever they pay in. Once a second of the simulation's clock the treasury reads every
rail's available balance (through the ledger) and, for each rail it manages whose balance,
with what it already sent there, is under its low depth, orders the money back up to its
target depth:

1. a sweep (an internal transfer, or a bridge between an L1 and its L2) from the same asset's
   rail with the largest surplus over its own target, if that surplus covers the shortfall
   and the source's rail carries it sooner than a deposit on the low rail would arrive;
2. else, for a rail whose own inbound is quick, a funding deposit from the company on it;
3. else (a bank wire, hours to arrive) a sweep from the asset's quick rail that holds the
   most, which the next rounds fund in turn.

Rails above 1.5 times their target send the excess to the same asset's poorest rail. A card
acquirer's account is not managed: it is paid into by card captures only, which settle at T+2,
and it funds the merchants' instant settlement; the demo's pool gives it a small target, so
it honestly runs low and critical (examples/pool.toml, examples/demo-alerts.yaml).

Depths come from the pool configuration (`depth` per channel and asset, pool/config.py); a
rail without one is kept between a third of its opening float and the float. Everything is
decided from the ledger's balances and the simulation's clock, so a run on a `ManualClock` is
the same run every time; no random number is drawn here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from fractions import Fraction

from fundpool.payments.model import PaymentKind
from fundpool.pool.accounts import PoolState, pool_account
from fundpool.pool.config import ChannelConfig, ChannelKind, FundpoolConfig, PoolConfig

# Opening float per channel and asset without a configured target depth, in whole units.
OPENING_FLOAT_UNITS = {"USD": 5_000_000, "EUR": 2_000_000, "USDT": 3_000_000, "ETH": 2_000,
                       "E-CNY": 20_000_000}
DEFAULT_OPENING_FLOAT_UNITS = 1_000_000
CHECK_EVERY_US = 1_000_000  # the treasury looks at every rail once a second
LOW_SHARE_DEFAULT = 3  # without a configured low depth: a third of the target
SURPLUS_NUM, SURPLUS_DEN = 3, 2  # above 1.5 x target, the excess is swept away
# How long money the treasury sent takes to arrive, by the kind of rail that carries it (the
# simulated profiles' latency with a margin; channels/profiles.py). Until then it counts as on
# its way, so the next round does not send it again; a transfer that fails is sent again once
# this has passed.
ARRIVES_WITHIN_US = {
    ChannelKind.INSTANT_CREDIT: 15_000_000,
    ChannelKind.CBDC: 15_000_000,
    ChannelKind.EVM_L2: 30_000_000,
    ChannelKind.STABLECOIN_RAIL: 120_000_000,
    ChannelKind.EVM_L1: 300_000_000,
    ChannelKind.BOOK: 5_000_000,
    ChannelKind.BANK_WIRE: 6 * 3_600_000_000,
    ChannelKind.CARD_ACQUIRER: 3 * 86_400_000_000,
}
QUICK_US = 300_000_000  # a rail whose money arrives within 5 minutes is quick
UNMANAGED = frozenset({ChannelKind.BOOK, ChannelKind.CARD_ACQUIRER})
TREASURY_COUNTERPARTY = "company-treasury"
PURPOSE = "treasury"  # metadata `purpose` of the treasury's payments


def opening_float_minor(channel: ChannelConfig, asset: str, scale: int) -> int:
    """What the simulator opens a rail with: its configured target depth, else the table's
    float for the asset."""
    depth = channel.depth_for(asset)
    if depth is not None and depth.target_minor is not None:
        return depth.target_minor
    return int(OPENING_FLOAT_UNITS.get(asset, DEFAULT_OPENING_FLOAT_UNITS) * 10**scale)


def quick(kind: ChannelKind) -> bool:
    return ARRIVES_WITHIN_US[kind] <= QUICK_US


@dataclass(frozen=True, slots=True)
class Rail:
    """One asset on one managed channel, with the depths the treasury keeps it between."""

    asset: str
    channel: str
    kind: ChannelKind
    low: int
    target: int
    max_minor: int | None  # the channel's per-payment maximum for the asset


@dataclass(frozen=True, slots=True)
class Order:
    """A payment the treasury wants made: a deposit on `destination` (source None), or a
    sweep or bridge from `source` to `destination`."""

    kind: PaymentKind
    asset: str
    source: str | None
    destination: str
    amount_minor: int


@dataclass(slots=True)
class _OnItsWay:
    asset: str
    channel: str
    amount: int
    until_us: int


class Treasury:
    """Plans the treasury's orders for the pool `pool` of `config`; `available(address,
    asset)` reads a balance (the ledger's)."""

    def __init__(self, config: FundpoolConfig, pool: PoolConfig,
                 available: Callable[[str, str], int]) -> None:
        self.pool = pool
        self._available = available
        scales = {a.code: a.scale for a in config.assets}
        rails: list[Rail] = []
        for cid in pool.channels:
            channel = config.channel(cid)
            if channel.kind in UNMANAGED:
                continue
            for asset in channel.assets:
                target = opening_float_minor(channel, asset, scales[asset])
                depth = channel.depth_for(asset)
                low = target // LOW_SHARE_DEFAULT if depth is None else depth.low_minor
                rails.append(Rail(asset, cid, channel.kind, low, max(target, low),
                                  channel.limits_for(asset).max_minor))
        self.rails = rails
        self._by_key = {(r.asset, r.channel): r for r in rails}
        self._on_its_way: list[_OnItsWay] = []
        self._next_check_us: int | None = None
        self._queue: list[Order] = []
        self.orders = 0

    def _address(self, rail: Rail) -> str:
        return pool_account(self.pool.id, rail.asset, rail.channel, PoolState.AVAILABLE)

    def due(self, now_us: int) -> bool:
        """Is it time for the next look at the rails?"""
        return self._next_check_us is None or now_us >= self._next_check_us

    def next_order(self, now_us: int) -> Order | None:
        """The next order to make now: those of the last look first; when they are all made
        and it is time, a new look at the rails."""
        if not self._queue and self.due(now_us):
            self._queue = self.plan(now_us)
        return self._queue.pop(0) if self._queue else None

    def plan(self, now_us: int) -> list[Order]:
        """The orders of one look at every rail, now; each is counted as on its way."""
        self._next_check_us = now_us + CHECK_EVERY_US
        self._on_its_way = [w for w in self._on_its_way if w.until_us > now_us]
        level: dict[tuple[str, str], int] = {}
        for rail in self.rails:
            coming = sum(w.amount for w in self._on_its_way
                         if (w.asset, w.channel) == (rail.asset, rail.channel))
            level[(rail.asset, rail.channel)] = self._available(self._address(rail),
                                                                rail.asset) + coming
        orders: list[Order] = []
        for rail in self.rails:
            key = (rail.asset, rail.channel)
            if level[key] >= rail.low:
                continue
            need = rail.target - level[key]
            orders += self._fund(rail, need, level)
        for rail in self.rails:
            key = (rail.asset, rail.channel)
            excess = level[key] - rail.target
            if level[key] * SURPLUS_DEN > rail.target * SURPLUS_NUM and excess > 0:
                orders += self._spread(rail, excess, level)
        for order in orders:
            self._sent(order, now_us)
        self.orders += len(orders)
        return orders

    def _peers(self, rail: Rail) -> list[Rail]:
        return [r for r in self.rails if r.asset == rail.asset and r.channel != rail.channel]

    def _fund(self, rail: Rail, need: int, level: dict[tuple[str, str], int]) -> list[Order]:
        own_us = ARRIVES_WITHIN_US[rail.kind]
        # A sweep only from a rail whose money arrives sooner than a deposit on this one's.
        peers = [r for r in self._peers(rail)
                 if quick(r.kind) and ARRIVES_WITHIN_US[r.kind] < own_us]
        richest = max(peers, key=lambda r: (level[(r.asset, r.channel)] - r.target, r.channel),
                      default=None)
        if richest is not None:
            surplus = level[(richest.asset, richest.channel)] - richest.target
            if surplus >= need:
                return self._move(richest, rail, need, level)
        if quick(rail.kind):
            level[(rail.asset, rail.channel)] += need
            return [Order(PaymentKind.DEPOSIT, rail.asset, None, rail.channel, part)
                    for part in _parts(need, rail.max_minor)]
        fullest = max(peers, key=lambda r: (level[(r.asset, r.channel)], r.channel),
                      default=None)
        if fullest is None or level[(fullest.asset, fullest.channel)] <= need:
            return []  # nothing quick to fund it from: it waits for its own deposits
        return self._move(fullest, rail, need, level)

    def _spread(self, rail: Rail, excess: int, level: dict[tuple[str, str], int]
                ) -> list[Order]:
        poorest = min(self._peers(rail), default=None,
                      key=lambda r: (Fraction(level[(r.asset, r.channel)], r.target),
                                     r.channel))
        if poorest is None:
            return []
        room = poorest.target - level[(poorest.asset, poorest.channel)]
        amount = min(excess, room)
        if amount <= 0:
            return []
        return self._move(rail, poorest, amount, level)

    def _move(self, source: Rail, destination: Rail, amount: int,
              level: dict[tuple[str, str], int]) -> list[Order]:
        kinds = {source.kind, destination.kind}
        kind = (PaymentKind.BRIDGE if kinds == {ChannelKind.EVM_L1, ChannelKind.EVM_L2}
                else PaymentKind.INTERNAL)
        limit = _smallest(source.max_minor, destination.max_minor)
        level[(source.asset, source.channel)] -= amount
        level[(destination.asset, destination.channel)] += amount
        return [Order(kind, source.asset, source.channel, destination.channel, part)
                for part in _parts(amount, limit)]

    def _sent(self, order: Order, now_us: int) -> None:
        carrier = self._by_key[(order.asset, order.source or order.destination)]
        self._on_its_way.append(_OnItsWay(order.asset, order.destination, order.amount_minor,
                                          now_us + ARRIVES_WITHIN_US[carrier.kind]))


def _smallest(*limits: int | None) -> int | None:
    given = [x for x in limits if x is not None]
    return min(given) if given else None


def _parts(amount: int, limit: int | None) -> Iterable[int]:
    """`amount` in payments of at most `limit` each."""
    if limit is None or amount <= limit:
        return [amount] if amount > 0 else []
    whole, rest = divmod(amount, limit)
    return [limit] * whole + ([rest] if rest else [])
