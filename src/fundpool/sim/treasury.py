"""The simulated treasury team: it keeps each rail of the pool funded, as a real one does, so
that a simulated pool stays alive for hours instead of draining in minutes (issue 14).

Customers' payouts drain the rails the router likes (the cheap, fast ones) while their deposits
land wherever they pay in. Once a second of the simulation's clock the treasury reads every
rail's available balance (through the ledger) and the state of each payment it ordered
(through the payment service), and for each rail it manages it works out what the rail will
hold when money ordered now could arrive:

    soon = available
           + its own orders on their way that arrive by then (settled ones are in available)
           - its own sweeps out of the rail not yet taken from available (before approval)
           - the rail's drain over that lead time (see below), with a margin
           - the rail's largest outflow in one look of the last minutes (one large payout)

The lead time is that of the rail's quickest way in: a sweep from a same-asset rail whose
money arrives sooner, else a funding deposit on the rail itself. When `soon` is under the
rail's low depth, the treasury orders the money that brings it back to its target depth:

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

The drain is measured, not guessed: between two looks, the change of a rail's available
balance less what the treasury's own payments moved in or out of it (known exactly from their
states) is what customers did; its moving average (a minute) is the rail's drain per second.
Anticipating it is what keeps a rail whose top-ups take a minute or more (a Tron deposit, an
L1 bridge) above its minimum while payouts drain it by thousands a second. A payment the
treasury ordered counts as on its way until it settles, fails, or has taken three times its
lead time (then it is ordered again); one that arrives late is then simply a surplus.

A rail that a sweep rule of the pool's treasury desk keeps funded (a participant of one of its
`[[sweeps]]`, docs/treasury.md) is left to the desk (`leave`): the simulated team funds the
sweeps' header instead, as a company's treasurers fund its concentration account.

Depths come from the pool configuration (`depth` per channel and asset, pool/config.py); a
rail without one is kept between a third of its opening float and the float. Everything is
decided from the ledger's balances, the payments' states and the simulation's clock, in
integers of minor units, so a run on a `ManualClock` is the same run every time; no random
number is drawn here.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction

from fundpool.core.errors import FundpoolError
from fundpool.payments.model import Payment, PaymentKind, PaymentState
from fundpool.pool.accounts import PoolState, pool_account
from fundpool.pool.config import ChannelConfig, ChannelKind, FundpoolConfig, PoolConfig

# Opening float per channel and asset without a configured target depth, in whole units.
OPENING_FLOAT_UNITS = {"USD": 5_000_000, "EUR": 2_000_000, "USDT": 3_000_000, "ETH": 2_000,
                       "E-CNY": 20_000_000}
DEFAULT_OPENING_FLOAT_UNITS = 1_000_000
SECOND_US = 1_000_000
CHECK_EVERY_US = SECOND_US  # the treasury looks at every rail once a second
LOW_SHARE_DEFAULT = 3  # without a configured low depth: a third of the target
SURPLUS_NUM, SURPLUS_DEN = 3, 2  # above 1.5 x target, the excess is swept away
# How long money the treasury orders takes to arrive, by the kind of rail that carries it:
# about the slowest the simulated rails take, with the engine's batching (channels/profiles.py;
# measured at 50 payments a second: RTP and SEPA 2.5 s on average and 14 s at most, e-CNY
# 1.3 s / 5 s, Arbitrum 6 s / 12 s, Tron 60 s / 70 s, the L1 157 s / 325 s). This is the lead
# time a rail's drain is anticipated over.
LEAD_US = {
    ChannelKind.INSTANT_CREDIT: 15 * SECOND_US,
    ChannelKind.CBDC: 10 * SECOND_US,
    ChannelKind.EVM_L2: 15 * SECOND_US,
    ChannelKind.STABLECOIN_RAIL: 80 * SECOND_US,
    ChannelKind.EVM_L1: 330 * SECOND_US,
    ChannelKind.BOOK: 5 * SECOND_US,
    ChannelKind.BANK_WIRE: 6 * 3_600 * SECOND_US,
    ChannelKind.CARD_ACQUIRER: 3 * 86_400 * SECOND_US,
}
# A sweep or bridge above the approval threshold waits for an approver (the simulator's
# approves after APPROVAL_DELAY_US, 3 s) before its rail carries it.
APPROVAL_US = 5 * SECOND_US
GIVE_UP_FACTOR = 3  # an order not settled after 3 x its lead time is ordered again
QUICK_US = 300 * SECOND_US  # a rail whose money arrives within 5 minutes is quick
# The drain's moving average spans a minute; it is anticipated with half again as margin.
DRAIN_WINDOW_US = 60 * SECOND_US
DRAIN_MARGIN_NUM, DRAIN_MARGIN_DEN = 3, 2
# The largest outflow of one look is kept in mind this long (one large payout can take at
# once what a minute of small ones take).
PEAK_MEMORY_US = 10 * 60 * SECOND_US
ORDERS_OPEN_MAX = 10_000  # a bound on the orders followed at once (far above what a pool needs)
UNMANAGED = frozenset({ChannelKind.BOOK, ChannelKind.CARD_ACQUIRER})
TREASURY_COUNTERPARTY = "company-treasury"
PURPOSE = "treasury"  # metadata `purpose` of the treasury's payments
# States in which an outbound payment's amount has left its rail's available balance.
LEFT_SOURCE = frozenset({PaymentState.APPROVED, PaymentState.SUBMITTED, PaymentState.CLEARED,
                         PaymentState.SETTLED})
ENDED = frozenset({PaymentState.REJECTED, PaymentState.CANCELLED, PaymentState.FAILED,
                   PaymentState.RETURNED, PaymentState.REVERSED})

RailKey = tuple[str, str]  # asset, channel


def opening_float_minor(channel: ChannelConfig, asset: str, scale: int) -> int:
    """What the simulator opens a rail with: its configured target depth, else the table's
    float for the asset."""
    depth = channel.depth_for(asset)
    if depth is not None and depth.target_minor is not None:
        return depth.target_minor
    return int(OPENING_FLOAT_UNITS.get(asset, DEFAULT_OPENING_FLOAT_UNITS) * 10**scale)


def quick(kind: ChannelKind) -> bool:
    return LEAD_US[kind] <= QUICK_US


@dataclass(frozen=True, slots=True)
class Rail:
    """One asset on one managed channel, with the depths the treasury keeps it between."""

    asset: str
    channel: str
    kind: ChannelKind
    low: int
    target: int
    max_minor: int | None  # the channel's per-payment maximum for the asset

    @property
    def key(self) -> RailKey:
        return (self.asset, self.channel)


@dataclass(frozen=True, slots=True)
class Order:
    """A payment the treasury wants made: a deposit on `destination` (source None), or a
    sweep or bridge from `source` to `destination`. `number` names it to the treasury."""

    kind: PaymentKind
    asset: str
    source: str | None
    destination: str
    amount_minor: int
    number: int = 0


@dataclass(slots=True)
class _OnItsWay:
    """An order made and not yet settled or ended."""

    order: Order
    due_us: int  # when it should have arrived
    give_up_us: int  # from then on it no longer counts as coming
    payment_id: str | None = None
    left_source: bool = False  # a sweep's amount has left its source's available balance


@dataclass(slots=True)
class _Watch:
    """What the treasury remembers of one rail between looks."""

    available: int | None = None
    at_us: int = 0
    drain_per_s: int = 0  # minor units a second, moving average (negative: it fills up)
    peaks: list[tuple[int, int]] = field(default_factory=list)  # (at_us, outflow of one look)

    def peak(self, now_us: int) -> int:
        self.peaks = [(at, v) for at, v in self.peaks if at > now_us - PEAK_MEMORY_US]
        return max((v for _, v in self.peaks), default=0)


@dataclass(frozen=True, slots=True)
class Look:
    """One rail at one look (for tests and the curious): the figures the decision used."""

    available: int
    soon: int
    level: int
    drain_per_s: int
    lead_us: int


class Treasury:
    """Plans the treasury's orders for the pool `pool` of `config`; `available(address,
    asset)` reads a balance (the ledger's), `states(payment_ids)` the states of payments
    (the payment service's)."""

    def __init__(self, config: FundpoolConfig, pool: PoolConfig,
                 available: Callable[[str, str], int],
                 states: Callable[[Sequence[str]], Mapping[str, PaymentState]],
                 leave: Collection[tuple[str, str]] = ()) -> None:
        self.pool = pool
        self._available = available
        self._states = states
        scales = {a.code: a.scale for a in config.assets}
        rails: list[Rail] = []
        for cid in pool.channels:
            channel = config.channel(cid)
            if channel.kind in UNMANAGED:
                continue
            for asset in channel.assets:
                if (asset, cid) in leave:  # the treasury desk's sweep rules keep it
                    continue
                target = opening_float_minor(channel, asset, scales[asset])
                depth = channel.depth_for(asset)
                low = target // LOW_SHARE_DEFAULT if depth is None else depth.low_minor
                rails.append(Rail(asset, cid, channel.kind, low, max(target, low),
                                  channel.limits_for(asset).max_minor))
        self.rails = rails
        self._by_key = {r.key: r for r in rails}
        self._lead = {r.key: self._lead_of(r) for r in rails}
        self._watch = {r.key: _Watch() for r in rails}
        self._on_its_way: dict[int, _OnItsWay] = {}
        self._by_reference: dict[str, int] = {}
        self._next_check_us: int | None = None
        self._queue: list[Order] = []
        self._numbers = 0
        self.orders = 0
        self.looks: dict[RailKey, Look] = {}

    # --- the simulation's side ----------------------------------------------------------------

    def due(self, now_us: int) -> bool:
        """Is it time for the next look at the rails?"""
        return self._next_check_us is None or now_us >= self._next_check_us

    def next_order(self, now_us: int) -> Order | None:
        """The next order to make now: those of the last look first; when they are all made
        and it is time, a new look at the rails."""
        if not self._queue and self.due(now_us):
            self._queue = self.plan(now_us)
        return self._queue.pop(0) if self._queue else None

    def named(self, order: Order, reference: str) -> None:
        """`order`'s payment is requested with `reference`."""
        if order.number in self._on_its_way:
            self._by_reference[reference] = order.number

    def taken(self, reference: str, outcome: Payment | FundpoolError) -> None:
        """What became of the payment requested with `reference`: created (it is followed by
        its id from now on) or refused (it is not coming)."""
        number = self._by_reference.pop(reference, None)
        if number is None or number not in self._on_its_way:
            return
        if isinstance(outcome, Payment):
            self._on_its_way[number].payment_id = outcome.id
        else:
            del self._on_its_way[number]

    # --- one look ---------------------------------------------------------------------------

    def plan(self, now_us: int) -> list[Order]:
        """The orders of one look at every rail, now; each is counted as on its way."""
        self._next_check_us = now_us + CHECK_EVERY_US
        arrived, left = self._follow(now_us)
        soon: dict[RailKey, int] = {}
        level: dict[RailKey, int] = {}
        for rail in self.rails:
            key = rail.key
            available = self._available(self._address(rail), rail.asset)
            watch = self._watch[key]
            self._measure(watch, available, arrived.get(key, 0), left.get(key, 0), now_us)
            lead = self._lead[key]
            coming_soon = coming = leaving = 0
            for way in self._on_its_way.values():
                order = way.order
                if (order.asset, order.destination) == key and now_us < way.give_up_us:
                    coming += order.amount_minor
                    if way.due_us <= now_us + lead:
                        coming_soon += order.amount_minor
                if (order.asset, order.source) == key and not way.left_source:
                    leaving += order.amount_minor
            drain = max(watch.drain_per_s, 0) * DRAIN_MARGIN_NUM // DRAIN_MARGIN_DEN
            level[key] = available - leaving + coming
            soon[key] = (available - leaving + coming_soon - drain * lead // SECOND_US
                         - watch.peak(now_us))
            self.looks[key] = Look(available, soon[key], level[key], watch.drain_per_s, lead)
        orders: list[Order] = []
        for rail in self.rails:
            if soon[rail.key] < rail.low:
                orders += self._fund(rail, rail.target - soon[rail.key], soon, level)
        for rail in self.rails:
            excess = soon[rail.key] - rail.target
            if soon[rail.key] * SURPLUS_DEN > rail.target * SURPLUS_NUM and excess > 0:
                orders += self._spread(rail, excess, soon, level)
        numbered = []
        for order in orders:
            self._numbers += 1
            numbered.append(Order(order.kind, order.asset, order.source, order.destination,
                                  order.amount_minor, self._numbers))
        for order in numbered:
            self._sent(order, now_us)
        self.orders += len(numbered)
        return numbered

    def _follow(self, now_us: int) -> tuple[dict[RailKey, int], dict[RailKey, int]]:
        """Read the states of the orders on their way: what arrived on each rail and what
        left each rail since the last look (those are the treasury's, not the customers'),
        and forget the orders that ended or were never made."""
        arrived: dict[RailKey, int] = {}
        left: dict[RailKey, int] = {}
        followed = [w.payment_id for w in self._on_its_way.values() if w.payment_id]
        states = self._states(followed) if followed else {}
        for number, way in list(self._on_its_way.items()):
            order = way.order
            if way.payment_id is None:
                # never made, or its refusal never reported: gone once it is given up on
                if now_us >= way.give_up_us:
                    del self._on_its_way[number]
                continue
            state = states.get(way.payment_id)
            if state is None:
                continue
            source = None if order.source is None else (order.asset, order.source)
            if source is not None and not way.left_source and state in LEFT_SOURCE:
                way.left_source = True
                left[source] = left.get(source, 0) + order.amount_minor
            if state is PaymentState.SETTLED:
                destination = (order.asset, order.destination)
                arrived[destination] = arrived.get(destination, 0) + order.amount_minor
                del self._on_its_way[number]
            elif state in ENDED:
                if source is not None and way.left_source:
                    # a sweep that failed on its rail gives the money back to its source
                    arrived[source] = arrived.get(source, 0) + order.amount_minor
                del self._on_its_way[number]
        if len(self._by_reference) > len(self._on_its_way):
            # references of orders given up on before their payment was reported
            self._by_reference = {ref: n for ref, n in self._by_reference.items()
                                  if n in self._on_its_way}
        return arrived, left

    @staticmethod
    def _measure(watch: _Watch, available: int, arrived: int, left: int, now_us: int) -> None:
        """Fold one look into the rail's drain: what customers took since the last look is
        the fall of the available balance, less what the treasury's own orders moved."""
        if watch.available is not None and now_us > watch.at_us:
            elapsed_us = now_us - watch.at_us
            outflow = watch.available - available + arrived - left  # customers' net outflow
            rate = outflow * SECOND_US // elapsed_us
            weight_us = min(elapsed_us, DRAIN_WINDOW_US)
            watch.drain_per_s += (rate - watch.drain_per_s) * weight_us // DRAIN_WINDOW_US
            if outflow > 0:
                watch.peaks.append((now_us, outflow))
        watch.available = available
        watch.at_us = now_us

    # --- deciding -----------------------------------------------------------------------------

    def _address(self, rail: Rail) -> str:
        return pool_account(self.pool.id, rail.asset, rail.channel, PoolState.AVAILABLE)

    def _peers(self, rail: Rail) -> list[Rail]:
        return [r for r in self.rails if r.asset == rail.asset and r.channel != rail.channel]

    def _sweepers(self, rail: Rail) -> list[Rail]:
        """The rails of the same asset that can sweep to `rail` sooner than a deposit on it
        would arrive."""
        own_us = LEAD_US[rail.kind]
        return [r for r in self._peers(rail)
                if quick(r.kind) and LEAD_US[r.kind] + APPROVAL_US < own_us]

    def _lead_of(self, rail: Rail) -> int:
        """How long the rail's quickest way in takes: a sweep from a quicker rail, or a
        deposit on it."""
        ways = [LEAD_US[r.kind] + APPROVAL_US for r in self._peers(rail) if quick(r.kind)]
        return min([LEAD_US[rail.kind], *ways])

    def _fund(self, rail: Rail, need: int, soon: dict[RailKey, int],
              level: dict[RailKey, int]) -> list[Order]:
        sweepers = self._sweepers(rail)
        richest = max(sweepers, key=lambda r: (soon[r.key] - r.target, r.channel),
                      default=None)
        if richest is not None and soon[richest.key] - richest.target >= need:
            return self._move(richest, rail, need, soon, level)
        if quick(rail.kind):
            soon[rail.key] += need
            level[rail.key] += need
            return [Order(PaymentKind.DEPOSIT, rail.asset, None, rail.channel, part)
                    for part in _parts(need, rail.max_minor)]
        quick_peers = [r for r in self._peers(rail) if quick(r.kind)]
        fullest = max(quick_peers, key=lambda r: (soon[r.key], r.channel), default=None)
        if fullest is None or soon[fullest.key] <= need:
            return []  # nothing quick to fund it from: it waits for its own deposits
        return self._move(fullest, rail, need, soon, level)

    def _spread(self, rail: Rail, excess: int, soon: dict[RailKey, int],
                level: dict[RailKey, int]) -> list[Order]:
        poorest = min(self._peers(rail), default=None,
                      key=lambda r: (Fraction(soon[r.key], r.target), r.channel))
        if poorest is None:
            return []
        # Room counts everything on its way to the poorest rail, however slow, so that the
        # same excess is not sent twice while a bridge crawls along.
        amount = min(excess, poorest.target - level[poorest.key])
        if amount <= 0:
            return []
        return self._move(rail, poorest, amount, soon, level)

    def _move(self, source: Rail, destination: Rail, amount: int, soon: dict[RailKey, int],
              level: dict[RailKey, int]) -> list[Order]:
        kinds = {source.kind, destination.kind}
        kind = (PaymentKind.BRIDGE if kinds == {ChannelKind.EVM_L1, ChannelKind.EVM_L2}
                else PaymentKind.INTERNAL)
        limit = _smallest(source.max_minor, destination.max_minor)
        soon[source.key] -= amount
        level[source.key] -= amount
        soon[destination.key] += amount
        level[destination.key] += amount
        return [Order(kind, source.asset, source.channel, destination.channel, part)
                for part in _parts(amount, limit)]

    def _sent(self, order: Order, now_us: int) -> None:
        if order.source is None:
            lead_us = LEAD_US[self._by_key[(order.asset, order.destination)].kind]
        else:
            lead_us = LEAD_US[self._by_key[(order.asset, order.source)].kind] + APPROVAL_US
        if len(self._on_its_way) >= ORDERS_OPEN_MAX:
            # followed no more: the oldest is taken as arrived (a bound, never reached in
            # practice: a pool has a few dozen orders on their way at a time)
            del self._on_its_way[min(self._on_its_way)]
        self._on_its_way[order.number] = _OnItsWay(order, now_us + lead_us,
                                                   now_us + GIVE_UP_FACTOR * lead_us)


def _smallest(*limits: int | None) -> int | None:
    given = [x for x in limits if x is not None]
    return min(given) if given else None


def _parts(amount: int, limit: int | None) -> Iterable[int]:
    """`amount` in payments of at most `limit` each."""
    if limit is None or amount <= limit:
        return [amount] if amount > 0 else []
    whole, rest = divmod(amount, limit)
    return [limit] * whole + ([rest] if rest else [])
