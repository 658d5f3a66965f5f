"""The rebalancing planner: the cheapest transfers between a pool's channels that bring every
position (a channel's available balance in one asset) back inside its band.

What a plan does, per asset:

- a position **below its minimum** is brought up to its target;
- a position **above its maximum** is brought down to its target;
- a position **within** its band may help: it gives what it holds above its target, or takes
  what it lacks to its target (it absorbs another's excess). Two positions within their bands
  are never rebalanced against each other: nothing needs it;
- only when a position below its minimum cannot otherwise be brought up, positions may give
  from between their target and their minimum (never below the minimum).

Each transfer is one payment over one route (a channel's quote to move an asset from one
channel to another): no transfer is chained through a third channel, which would make the
middle one pay the second fee and hold the money in flight. A route carries at most one
transfer per plan, of at most its `max_minor`.

**Fees.** A route's fee on an amount is `fee_fixed_minor + amount x fee_bps / 10,000`, rounded
half to even (docs/adr/0006). The source pays it on top of the amount: the destination
receives exactly the amount, the source gives amount + fee, and the asset's total across the
pool falls by exactly the plan's fees in it. A source's fees come out of what it can give, so
a source never ends below its target (below its minimum when it gave from that second tier):
what it can give is reserved for the dearest of its routes, `(spare - fixed) / (1 + rate)`;
a source that ends up paying more than one fixed fee has its transfers trimmed to fit, and
one that pays less than it reserved spends the rest on the breaches the plan still leaves,
over the transfers already planned.

**The cost model** (a min-cost flow per asset, networkx's network simplex on integer costs).
Every position with something to give is a supply node, every position with room a demand
node, and a route an arc between them; a super source feeds the suppliers and the demanders
drain into a super sink, each through arcs of a *tier*:

| tier | figure | cost per unit |
| --- | --- | --- |
| breach | below the minimum: min - balance; above the maximum: balance - max | -BREACH |
| to target | below-min: target - min; above-max: max - target | -TO_TARGET |
| helper | within the band: room to, or surplus over, the target | 0 |
| reserve | a giver's money from its target (or balance) down to its minimum | +RESERVE |
| route | per unit moved | price x span + latency_s |

With ROUTE the dearest route's weight, TO_TARGET = ROUTE + 1, RESERVE = TO_TARGET + ROUTE + 1
and BREACH = 2 TO_TARGET + RESERVE + ROUTE + 1, the cheapest flow is, in this order: the one
that leaves the least money outside the bands; then the least short of the targets of the
positions that were outside; then the least taken from reserves; then the cheapest in fees;
then the quickest. A reserve unit only pays its way into a breach: a position below its
minimum is lifted to its minimum from others' reserves, and on to its target only from
money above targets. A helper-to-helper path costs more than nothing and is never used, so
the plan moves exactly as much as needed.

A route's *price* per unit is its rate (`fee_bps`, in millionths of a basis point) plus its
fixed fee spread over the most it could carry here (the least of its `max_minor`, what its
source can give and what its destination can take): the linear relaxation of a fixed charge,
which prefers one large transfer to several small ones and a cheap fixed fee when the rates
tie. It is a model, not an exact optimum once fixed fees differ (that problem is NP-hard): a
need split over a cheap route capped under it and a dearer one pays two fixed fees where the
dearer route alone might pay less. With proportional fees only, the flow is the cheapest under
the model up to a minor unit of rounding per transfer (a brute force checks it on small
pools); the plan then only adjusts it to the fees actually paid (above). Latency (seconds)
breaks ties between routes of the same price.

**Solving.** An asset with more than CANDIDATES_ALL_MAX useful routes is first solved on a few
candidates, the cheapest routes around each position outside its band, then priced against
the rest (column generation): the restricted optimum's node potentials are recovered from its
residual graph (Bellman-Ford), every left-out route with a negative reduced cost joins, and
the flow is solved again until none has one. The answer is the optimum over every route, in a
fraction of the time: a full mesh of 50 channels x 10 assets (24,500 routes) plans in about
80 ms of CPU (bench/liquidity.py).

Positions with a balance and no band are not managed; a band whose balance is missing is
reported unresolved. A plan is the same for the same inputs, whatever their order.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import NamedTuple

import networkx as nx

from fundpool.core.errors import FundpoolError, InvariantViolation, invariant
from fundpool.pool.rates import round_half_even
from fundpool.treasury.bands import (
    Band,
    Fields,
    Position,
    check_asset,
    check_channel,
    check_minor,
    list_of,
    money_text,
)

ROUTES_MAX = 100_000
POSITIONS_MAX = 10_000
FEE_BPS_MAX = Fraction(10_000)  # 100 % of the amount
LATENCY_S_MAX = 30 * 86_400  # a month: slower is not a route but a project
PRICE_SCALE = 1_000_000  # a route's price per unit, in millionths of a basis point
LATENCY_SPAN = LATENCY_S_MAX + 1  # price and latency in one weight: price first
BPS_DENOMINATOR = 10_000
FIT_ROUNDS_MAX = 8  # rounds of trimming a source whose fixed fees exceed its reservation
# Column generation: an asset with more useful routes than this starts from candidates, the
# cheapest routes of each position outside its band until they could carry COVER times its
# need (at least CANDIDATES_MIN), and adds the routes pricing finds worth it, for at most
# PRICING_ROUNDS_MAX rounds (each round adds every route that would lower the cost).
CANDIDATES_ALL_MAX = 64
CANDIDATE_COVER = 8
CANDIDATES_MIN = 8
PRICING_ROUNDS_MAX = 50


class InvalidRoute(FundpoolError):
    code = "invalid_route"
    title = "the route is not valid"


@dataclass(frozen=True, slots=True)
class Route:
    """A channel's quote to move `asset` from `source` to `destination`: a fixed fee plus a
    proportional one (basis points of the amount), arriving after `latency_s`, at most
    `max_minor` in one transfer (None: no limit)."""

    source: str
    destination: str
    asset: str
    fee_fixed_minor: int
    fee_bps: Fraction
    latency_s: int
    max_minor: int | None = None

    def __post_init__(self) -> None:
        check_channel(self.source, InvalidRoute, "source")
        check_channel(self.destination, InvalidRoute, "destination")
        check_asset(self.asset, InvalidRoute, "asset")
        facts = {"source": self.source, "destination": self.destination, "asset": self.asset}
        if self.source == self.destination:
            raise InvalidRoute("a route goes from one channel to another", field="destination",
                               **facts)
        check_minor(self.fee_fixed_minor, InvalidRoute, "fee_fixed_minor", **facts)
        bps = self.fee_bps
        if isinstance(bps, bool) or not isinstance(bps, Fraction | int):
            raise InvalidRoute("fee_bps is an exact Fraction from decimal text, never a float",
                               field="fee_bps", value=repr(bps)[:80], **facts)
        if not 0 <= bps <= FEE_BPS_MAX:
            raise InvalidRoute("fee_bps is between 0 and 10,000 (100 %)", field="fee_bps",
                               value=str(bps), **facts)
        object.__setattr__(self, "fee_bps", Fraction(bps))
        latency = self.latency_s
        if isinstance(latency, bool) or not isinstance(latency, int) \
                or not 0 <= latency <= LATENCY_S_MAX:
            raise InvalidRoute(f"latency_s is an integer from 0 to {LATENCY_S_MAX}",
                               field="latency_s", value=repr(latency)[:80], **facts)
        if self.max_minor is not None:
            check_minor(self.max_minor, InvalidRoute, "max_minor", **facts)

    def fee_minor(self, amount_minor: int) -> int:
        """The fee on `amount_minor`, paid by the source on top of it."""
        return self.fee_fixed_minor + round_half_even(
            amount_minor * self.fee_bps / BPS_DENOMINATOR)


@dataclass(frozen=True, slots=True)
class PlannedTransfer:
    source: str
    destination: str
    asset: str
    amount_minor: int  # what the destination receives
    fee_minor: int  # what the source pays on top
    latency_s: int
    why: str


@dataclass(frozen=True, slots=True)
class Unresolved:
    """A position the plan leaves outside its band: `shortfall_minor` under its minimum or
    `excess_minor` over its maximum (the other is 0)."""

    channel: str
    asset: str
    shortfall_minor: int
    excess_minor: int
    why: str


@dataclass(frozen=True, slots=True)
class RebalancePlan:
    transfers: tuple[PlannedTransfer, ...]
    unresolved: tuple[Unresolved, ...]
    total_fee_minor: Mapping[str, int]  # by asset: minor units of different assets never add
    explanation: tuple[str, ...]


def routes_from_mapping(items: object, path: str = "routes") -> tuple[Route, ...]:
    """Parse a list of route tables: {"source", "destination", "asset", "fee_fixed_minor",
    "fee_bps" (decimal text), "latency_s", "max_minor" (optional)}; one route per source,
    destination and asset."""
    routes: list[Route] = []
    seen: set[tuple[str, str, str]] = set()
    for index, item in enumerate(list_of(items, InvalidRoute, path, ROUTES_MAX)):
        at = f"{path}[{index}]"
        fields = Fields(item, InvalidRoute, at)
        fields.known({"source", "destination", "asset", "fee_fixed_minor", "fee_bps",
                      "latency_s", "max_minor"})
        source, destination = fields.identifier("source"), fields.identifier("destination")
        asset = fields.asset("asset")
        if (source, destination, asset) in seen:
            raise InvalidRoute("one route per source, destination and asset", field=at,
                               source=source, destination=destination, asset=asset)
        seen.add((source, destination, asset))
        if source == destination:
            raise fields.fail("destination", "a route goes from one channel to another",
                              channel=source)
        bps = fields.decimal("fee_bps")
        if not 0 <= bps <= FEE_BPS_MAX:
            raise fields.fail("fee_bps", "fee_bps is between 0 and 10,000 (100 %)",
                              value=str(bps))
        routes.append(Route(source, destination, asset, fields.minor("fee_fixed_minor"), bps,
                            fields.integer("latency_s", 0, LATENCY_S_MAX),
                            fields.optional_minor("max_minor")))
    return tuple(routes)


def plan_rebalance(bands: Mapping[Position, Band], balances: Mapping[Position, int],
                   routes: Sequence[Route], *,
                   scales: Mapping[str, int] | None = None) -> RebalancePlan:
    """The cheapest transfers that bring the positions of `bands` inside them (see the
    module's docstring). `balances`: available balance by (channel, asset); `scales`: decimal
    places by asset, for the explanation's amounts (without one, amounts are minor units)."""
    if len(bands) > POSITIONS_MAX or len(routes) > ROUTES_MAX:
        raise ValueError(f"at most {POSITIONS_MAX} bands and {ROUTES_MAX} routes")
    for position, band in bands.items():
        if band.position != position:
            raise ValueError(f"the band under {position} is for {band.position}")
    if len({(r.source, r.destination, r.asset) for r in routes}) < len(routes):
        seen: set[tuple[str, str, str]] = set()
        for route in routes:
            key = (route.source, route.destination, route.asset)
            if key in seen:
                raise InvalidRoute("one route per source, destination and asset",
                                   source=route.source, destination=route.destination,
                                   asset=route.asset)
            seen.add(key)
    routes_by_asset: dict[str, list[Route]] = {}
    for route in routes:
        routes_by_asset.setdefault(route.asset, []).append(route)
    by_asset: dict[str, list[Band]] = {}
    for band in bands.values():
        by_asset.setdefault(band.asset, []).append(band)

    transfers: list[PlannedTransfer] = []
    unresolved: list[Unresolved] = []
    fees: dict[str, int] = {}
    explanation: list[str] = []
    for asset in sorted(by_asset):
        scale = None if scales is None else scales.get(asset)
        planner = _AssetPlan(asset, scale, sorted(by_asset[asset], key=lambda b: b.channel),
                             balances, routes_by_asset.get(asset, []))
        planner.plan()
        transfers.extend(planner.transfers)
        unresolved.extend(planner.unresolved)
        if planner.transfers:
            fees[asset] = sum(t.fee_minor for t in planner.transfers)
        explanation.extend(planner.explanation)
    return RebalancePlan(tuple(transfers), tuple(unresolved), fees, tuple(explanation))


def apply_plan(balances: Mapping[Position, int], plan: RebalancePlan) -> dict[Position, int]:
    """The balances after `plan`: each destination gets its amount, each source pays the amount
    and the fee."""
    after = dict(balances)
    for transfer in plan.transfers:
        source = (transfer.source, transfer.asset)
        destination = (transfer.destination, transfer.asset)
        after[source] = after.get(source, 0) - transfer.amount_minor - transfer.fee_minor
        after[destination] = after.get(destination, 0) + transfer.amount_minor
    return after


# --- one asset -----------------------------------------------------------------------------


@dataclass(slots=True)
class _Node:
    """One position as the flow sees it: what it may take and give in each tier (amounts the
    flow carries; a giver's tiers are already net of the fees they will cost it)."""

    band: Band
    balance: int
    breach_in: int = 0  # below the minimum: min - balance
    to_target_in: int = 0  # below the minimum: target - min
    helper_in: int = 0  # within the band: target - balance
    breach_out: int = 0  # above the maximum: what it may send for that part
    to_target_out: int = 0  # above the maximum, down to the target
    helper_out: int = 0  # within the band, above the target
    reserve_out: int = 0  # from the target (or the balance) down to the minimum

    @property
    def must_in(self) -> bool:
        return self.balance < self.band.min_minor

    @property
    def must_out(self) -> bool:
        return self.balance > self.band.max_minor

    @property
    def room(self) -> int:
        return self.breach_in + self.to_target_in + self.helper_in


class _Arc(NamedTuple):
    """A route as the flow sees it (a tuple: the planner makes thousands)."""

    route: Route
    carry: int  # the most it can carry in this plan
    weight: int  # cost per unit: price x span + latency


Flows = dict[tuple[str, str], int]  # amount by (source, destination)
GraphArc = tuple[object, object, int, int]  # tail, head, capacity, cost per unit
_SOURCE, _SINK = "source", "sink"


class _AssetPlan:
    def __init__(self, asset: str, scale: int | None, bands: Sequence[Band],
                 balances: Mapping[Position, int], routes: Sequence[Route]) -> None:
        self.asset = asset
        self.scale = scale
        self.bands = bands
        self.balances = balances
        self.routes = routes
        self.transfers: list[PlannedTransfer] = []
        self.unresolved: list[Unresolved] = []
        self.explanation: list[str] = []
        self.nodes: dict[str, _Node] = {}
        self.missing: list[str] = []
        self.after: dict[str, int] = {}  # balances after the plan's transfers
        self.route_of: dict[tuple[str, str], Route] = {}  # the routes a flow may take

    def plan(self) -> None:
        for band in self.bands:
            balance = self.balances.get(band.position)
            if balance is None:
                self.missing.append(band.channel)
            else:
                self.nodes[band.channel] = _Node(band, balance)
        if any(node.must_in or node.must_out for node in self.nodes.values()):
            arcs = self._arcs()
            self.route_of = {(a.route.source, a.route.destination): a.route for a in arcs}
            flows = self._solve(arcs)
            self._fit_fees(flows)
            self._use_slack(flows)
            self._transfers(flows)
        self._unresolved()
        self._summary()

    # --- the positions' tiers and the routes that may serve them ---------------------------

    def _arcs(self) -> list[_Arc]:
        """Size every position's tiers and return the routes worth considering, in the routes'
        order sorted by source and destination."""
        nodes = self.nodes
        gives = {c for c, n in nodes.items() if n.balance > n.band.min_minor}
        takes = {c for c, n in nodes.items() if n.balance < n.band.target_minor}
        must_out = {c for c, n in nodes.items() if n.must_out}
        must_in = {c for c, n in nodes.items() if n.must_in}
        # Nothing to give, no room, or two helpers (nothing needs it): not a candidate.
        useful = [r for r in self.routes if r.source in gives and r.destination in takes
                  and (r.source in must_out or r.destination in must_in)]
        # per source: the dearest fixed fee and rate among its useful routes (its reservation)
        dearest: dict[str, tuple[int, Fraction]] = {}
        for route in useful:
            fixed, rate = dearest.get(route.source, (0, _ZERO))
            bps = route.fee_bps
            if bps.numerator * rate.denominator > rate.numerator * bps.denominator:
                rate = bps
            dearest[route.source] = (max(fixed, route.fee_fixed_minor), rate)
        for channel, node in nodes.items():
            band, balance = node.band, node.balance
            if balance < band.min_minor:
                node.breach_in = band.min_minor - balance
                node.to_target_in = band.target_minor - band.min_minor
                continue
            if balance < band.target_minor:
                node.helper_in = band.target_minor - balance
            if channel not in dearest:
                continue
            fixed, bps = dearest[channel]
            factor = 1 + bps / BPS_DENOMINATOR
            over_max = _can_send(balance - band.max_minor, fixed, factor)
            over_target = _can_send(balance - band.target_minor, fixed, factor)
            over_min = _can_send(balance - band.min_minor, fixed, factor)
            if balance > band.max_minor:
                node.breach_out = over_max
                node.to_target_out = over_target - over_max
            else:
                node.helper_out = over_target
            node.reserve_out = over_min - over_target

        arcs: list[_Arc] = []
        for route in sorted(useful, key=lambda r: (r.source, r.destination)):
            source, destination = nodes[route.source], nodes[route.destination]
            # Reserve money only ever serves a position below its minimum.
            sendable = source.breach_out + source.to_target_out
            if destination.must_in:
                sendable += source.helper_out + source.reserve_out
            carry = min(sendable, destination.room)
            if route.max_minor is not None:
                carry = min(carry, route.max_minor)
            if carry > 0:
                arcs.append(_Arc(route, carry, _weight(route, carry)))
        return arcs

    # --- the min-cost flow -----------------------------------------------------------------

    def _solve(self, arcs: Sequence[_Arc]) -> Flows:
        """The min-cost flow of the module's docstring, solved on a few candidate routes first
        and priced against the rest (column generation): a left-out route whose reduced cost
        under the restricted optimum's node potentials is negative joins, and the restricted
        problem is solved again, until none is. The answer is then optimal for all routes."""
        if not arcs:
            return {}
        route_max = max(arc.weight for arc in arcs)
        to_target = route_max + 1
        reserve = to_target + route_max + 1
        breach = 2 * to_target + reserve + route_max + 1
        tiers: dict[str, list[GraphArc]] = {}
        for channel, node in self.nodes.items():
            giver, taker = ("out", channel), ("in", channel)
            mine: list[GraphArc] = [(tail, head, capacity, cost) for tail, head, capacity, cost in (
                (_SOURCE, giver, node.breach_out, -breach),
                (_SOURCE, giver, node.to_target_out, -to_target),
                (_SOURCE, giver, node.helper_out, 0),
                (_SOURCE, giver, node.reserve_out, reserve),
                (taker, _SINK, node.breach_in, -breach),
                (taker, _SINK, node.to_target_in, -to_target),
                (taker, _SINK, node.helper_in, 0)) if capacity > 0]
            if mine:
                tiers[channel] = mine
        total = sum(capacity for mine in tiers.values()
                    for tail, _, capacity, _ in mine if tail == _SOURCE)
        chosen = _candidates(arcs, self.nodes)
        for _ in range(PRICING_ROUNDS_MAX):
            used = [arcs[i] for i in sorted(chosen)]
            touched = {a.route.source for a in used} | {a.route.destination for a in used}
            graph_arcs: list[GraphArc] = [t for channel in sorted(touched)
                                          for t in tiers.get(channel, ())]
            graph_arcs += [(("out", a.route.source), ("in", a.route.destination), a.carry,
                            a.weight) for a in used]
            # A circulation: the flow is as large as pays, not as large as it can be.
            graph_arcs.append((_SINK, _SOURCE, total, 0))
            flowing = _simplex(graph_arcs)
            if len(chosen) == len(arcs):
                break
            untouched = [t for channel, mine in tiers.items() if channel not in touched
                         for t in mine]
            potential = _potentials(graph_arcs, flowing, untouched)
            entering = [i for i, arc in enumerate(arcs) if i not in chosen
                        and arc.weight + potential[("out", arc.route.source)]
                        - potential[("in", arc.route.destination)] < 0]
            if not entering:
                break
            chosen.update(entering)
        else:
            raise InvariantViolation(f"{self.asset}: pricing did not settle in "
                                     f"{PRICING_ROUNDS_MAX} rounds")
        flows: Flows = {}
        for (tail, head, _, _), amount in zip(graph_arcs, flowing, strict=True):
            if amount > 0 and isinstance(tail, tuple) and isinstance(head, tuple):
                flows[(tail[1], head[1])] = amount
        return flows

    # --- fees that do not fit, transfers, what is left -------------------------------------

    def _fit_fees(self, flows: Flows) -> None:
        """Trim the transfers of a source whose fees exceed what was reserved: a source that
        sends several transfers pays several fixed fees, and the reservation counted one."""
        routes = self.route_of
        for _ in range(FIT_ROUNDS_MAX):
            by_source: dict[str, list[tuple[str, int]]] = {}
            for (source, destination), amount in flows.items():
                by_source.setdefault(source, []).append((destination, amount))
            trimmed = False
            for channel, mine in sorted(by_source.items()):
                node = self.nodes[channel]
                consumed = sum(a + routes[(channel, d)].fee_minor(a) for d, a in mine)
                in_tiers = node.breach_out + node.to_target_out + node.helper_out
                above_target = node.balance >= node.band.target_minor
                floor = node.band.target_minor if above_target \
                    and sum(a for _, a in mine) <= in_tiers else node.band.min_minor
                excess = consumed - (node.balance - floor)
                if excess <= 0:
                    continue
                # the transfer to a helper first (it only absorbs), then the largest
                destination, amount = min(mine, key=lambda da: (
                    self.nodes[da[0]].must_in, -da[1], da[0]))
                if amount <= excess:
                    del flows[(channel, destination)]
                else:
                    flows[(channel, destination)] = amount - excess
                trimmed = True
            if not trimmed:
                return
        raise InvariantViolation(f"{self.asset}: a plan's fees did not fit in "
                                 f"{FIT_ROUNDS_MAX} rounds")

    def _use_slack(self, flows: Flows) -> None:
        """Spend what the reservation held back on breaches the plan leaves. A source reserved
        its dearest useful route's fees; when the plan sends it over cheaper ones, the rest
        would leave it above its maximum (or a destination below its minimum) for want of a
        few units. Each planned transfer touching such a breach carries more, as far as the
        source's floor and the destination's room allow: no new transfer, no new fixed fee.
        A source pays only from what it holds before the plan: the transfers may run in any
        order, so what it receives in the same plan is never counted on."""
        routes = self.route_of
        nodes = self.nodes
        held = {channel: node.balance for channel, node in nodes.items()}  # less what it sends
        after = dict(held)
        for (source, destination), amount in flows.items():
            held[source] -= _cost(routes[(source, destination)], amount)
            after[source] -= _cost(routes[(source, destination)], amount)
            after[destination] += amount
        for (source, destination), amount in sorted(flows.items()):
            giver, taker = nodes[source].band, nodes[destination].band
            if after[source] > giver.max_minor:
                # shed the rest of an excess, down to the target, into room below a target
                spare = held[source] - giver.target_minor
                room = taker.target_minor - after[destination]
            elif after[destination] < taker.min_minor:
                # lift a breach to the minimum, from down to the source's own minimum
                spare = held[source] - giver.min_minor
                room = taker.min_minor - after[destination]
            else:
                continue
            route = routes[(source, destination)]
            if route.max_minor is not None:
                room = min(room, route.max_minor - amount)
            if spare <= 0 or room <= 0:
                continue
            exact = spare / (1 + route.fee_bps / BPS_DENOMINATOR)
            extra = min(room, exact.numerator // exact.denominator)
            while extra > 0 and _cost(route, amount + extra) - _cost(route, amount) > spare:
                extra -= 1  # the fee's rounding
            if extra > 0:
                paid = _cost(route, amount + extra) - _cost(route, amount)
                flows[(source, destination)] = amount + extra
                held[source] -= paid
                after[source] -= paid
                after[destination] += extra
        self._give_way(flows, held, after)

    def _give_way(self, flows: Flows, held: dict[str, int], after: dict[str, int]) -> None:
        """A source still above its maximum whose destinations are full takes over part of
        another source's transfer into one of them, when that source can take the money back
        without going above its own maximum: the destination gets as much as before."""
        routes = self.route_of
        nodes = self.nodes
        over = sorted({s for s, _ in flows if after[s] > nodes[s].band.max_minor})
        into: dict[str, list[str]] = {}
        for other, destination in sorted(flows):
            into.setdefault(destination, []).append(other)
        for source in over:
            band = nodes[source].band
            for destination in sorted(d for s, d in flows if s == source):
                if after[source] <= band.max_minor:
                    break
                mine = routes[(source, destination)]
                for other in into[destination]:
                    excess = after[source] - band.max_minor
                    if excess <= 0:
                        break
                    room = nodes[other].band.max_minor - after[other]
                    if other == source or (other, destination) not in flows or room <= 0:
                        continue
                    theirs = routes[(other, destination)]
                    amount, given = flows[(source, destination)], flows[(other, destination)]
                    shift = min(excess, _most_added(mine, amount,
                                                    held[source] - band.target_minor),
                                _most_taken(theirs, given, room))
                    if mine.max_minor is not None:
                        shift = min(shift, mine.max_minor - amount)
                    if shift <= 0:
                        continue
                    paid = _cost(mine, amount + shift) - _cost(mine, amount)
                    back = _cost(theirs, given) - _cost(theirs, given - shift)
                    held[source] -= paid
                    after[source] -= paid
                    held[other] += back
                    after[other] += back
                    flows[(source, destination)] = amount + shift
                    if given == shift:
                        del flows[(other, destination)]
                    else:
                        flows[(other, destination)] = given - shift

    def _transfers(self, flows: Flows) -> None:
        routes = self.route_of
        sent: dict[str, int] = {}
        for (source, _), amount in flows.items():
            sent[source] = sent.get(source, 0) + amount
        for (source, destination), amount in sorted(flows.items()):
            route = routes[(source, destination)]
            fee = route.fee_minor(amount)
            self.transfers.append(PlannedTransfer(
                source, destination, self.asset, amount, fee, route.latency_s,
                self._why(route, amount, fee, sent[source])))
        after = {channel: node.balance for channel, node in self.nodes.items()}
        for transfer in self.transfers:
            after[transfer.source] -= transfer.amount_minor + transfer.fee_minor
            after[transfer.destination] += transfer.amount_minor
        self.after = after
        paying = {channel: node.balance for channel, node in self.nodes.items()}
        for transfer in self.transfers:
            paying[transfer.source] -= transfer.amount_minor + transfer.fee_minor
        for channel, node in self.nodes.items():
            band, balance = node.band, after[channel]
            # in any order the transfers run: a source never counts on what it receives
            invariant(channel not in sent or paying[channel] >= band.min_minor,
                      f"{channel} {self.asset}: a plan took a source below its minimum")
            invariant(balance <= max(band.max_minor, node.balance),
                      f"{channel} {self.asset}: a plan took a position above its maximum")

    def _unresolved(self) -> None:
        for channel in self.missing:
            self.unresolved.append(Unresolved(
                channel, self.asset, 0, 0,
                f"{channel} {self.asset} has a band but no known balance: it is not planned"))
        after = self.after or {c: n.balance for c, n in self.nodes.items()}
        nodes = self.nodes
        reached: set[str] | None = None  # positions some giver's route reaches
        reaching: set[str] | None = None  # positions with a route to some taker
        for channel, node in nodes.items():
            band, balance = node.band, after[channel]
            if balance < band.min_minor:
                if reached is None:
                    reached = {r.destination for r in self.routes if r.source in nodes
                               and nodes[r.source].balance > nodes[r.source].band.min_minor}
                why = "the positions whose routes reach it have no more to give above their " \
                    "minimums" if channel in reached else \
                    "no route reaches it from a position with money above its minimum"
                self.unresolved.append(Unresolved(
                    channel, self.asset, band.min_minor - balance, 0,
                    f"{channel} {self.asset} stays {self._m(band.min_minor - balance)} below "
                    f"its minimum {self._m(band.min_minor)}: {why}"))
            elif balance > band.max_minor:
                if reaching is None:
                    reaching = {r.source for r in self.routes if r.destination in nodes
                                and nodes[r.destination].balance
                                < nodes[r.destination].band.target_minor}
                why = "the positions its routes reach have no more room below their " \
                    "targets" if channel in reaching else \
                    "no route leads from it to a position with room below its target"
                self.unresolved.append(Unresolved(
                    channel, self.asset, 0, balance - band.max_minor,
                    f"{channel} {self.asset} stays {self._m(balance - band.max_minor)} above "
                    f"its maximum {self._m(band.max_minor)}: {why}"))

    def _summary(self) -> None:
        self.explanation.extend(t.why for t in self.transfers)
        self.explanation.extend(u.why for u in self.unresolved)
        if self.transfers:
            count = len(self.transfers)
            moved = sum(t.amount_minor for t in self.transfers)
            fees = sum(t.fee_minor for t in self.transfers)
            self.explanation.append(
                f"{self.asset}: {count} transfer{'s' if count > 1 else ''} moving "
                f"{self._m(moved)}, {self._m(fees)} in fees")

    # --- words -------------------------------------------------------------------------------

    def _why(self, route: Route, amount: int, fee: int, sent: int) -> str:
        source, destination = self.nodes[route.source], self.nodes[route.destination]
        terms = f"(fee {self._m(fee)}, {_duration(route.latency_s)})"
        if destination.must_in:
            head = (f"{route.destination} {self.asset} is {self._m(destination.breach_in)} "
                    f"below its minimum {self._m(destination.band.min_minor)}")
            if source.must_out:
                tail = (f"which is {self._m(source.balance - source.band.max_minor)} above its "
                        f"maximum {self._m(source.band.max_minor)}")
            elif sent > source.helper_out:
                tail = ("taken from between its target and its minimum, as no position "
                        "reaching it had enough above its target")
            else:
                tail = "the cheapest route with that much above its target"
            return f"{head}; {self._m(amount)} from {route.source} {terms}, {tail}"
        return (f"{route.source} {self.asset} is "
                f"{self._m(source.balance - source.band.max_minor)} above its maximum "
                f"{self._m(source.band.max_minor)}; {self._m(amount)} to {route.destination} "
                f"{terms}, the cheapest route to a position with room below its target")

    def _m(self, amount_minor: int) -> str:
        return money_text(amount_minor, self.scale)


def _cost(route: Route, amount: int) -> int:
    """What a transfer of `amount` costs its source: nothing when there is no transfer."""
    return amount + route.fee_minor(amount) if amount > 0 else 0


def _most_added(route: Route, amount: int, budget: int) -> int:
    """The most a transfer of `amount` over `route` can grow when the growth and its fee must
    fit in `budget`."""
    if budget <= 0:
        return 0
    exact = (budget if amount else budget - route.fee_fixed_minor) / (
        1 + route.fee_bps / BPS_DENOMINATOR)
    added = max(0, exact.numerator // exact.denominator)
    while added > 0 and _cost(route, amount + added) - _cost(route, amount) > budget:
        added -= 1  # the fee's rounding: a unit or two
    return added


def _most_taken(route: Route, amount: int, room: int) -> int:
    """The most a transfer of `amount` over `route` can shrink when what its source gets back
    (the amount and the fee it no longer pays) must fit in `room`."""
    if _cost(route, amount) <= room:
        return amount  # the whole transfer, its fixed fee with it
    exact = room / (1 + route.fee_bps / BPS_DENOMINATOR)
    taken = min(amount - 1, max(0, exact.numerator // exact.denominator))
    while taken > 0 and _cost(route, amount) - _cost(route, amount - taken) > room:
        taken -= 1  # the fee's rounding
    return taken


def _can_send(consumed: int, fixed: int, factor: Fraction) -> int:
    """The largest amount that, with a fee of `fixed` + amount x (factor - 1), fits in
    `consumed` (the fee's rounding to half even never takes it over: see the docstring)."""
    if consumed <= fixed:
        return 0
    exact = (consumed - fixed) / factor
    return exact.numerator // exact.denominator


_ZERO = Fraction(0)


def _weight(route: Route, carry: int) -> int:
    bps = route.fee_bps
    price = bps.numerator * PRICE_SCALE // bps.denominator
    price += route.fee_fixed_minor * BPS_DENOMINATOR * PRICE_SCALE // carry
    return price * LATENCY_SPAN + route.latency_s


def _candidates(arcs: Sequence[_Arc], nodes: Mapping[str, _Node]) -> set[int]:
    """The routes the first round considers: for each position outside its band, its cheapest
    routes until they could carry CANDIDATE_COVER times what it needs (at least
    CANDIDATES_MIN of them). Pricing brings in any other route that would lower the cost."""
    if len(arcs) <= CANDIDATES_ALL_MAX:
        return set(range(len(arcs)))
    into: dict[str, list[int]] = {}
    out_of: dict[str, list[int]] = {}
    for i, arc in enumerate(arcs):
        if nodes[arc.route.destination].must_in:
            into.setdefault(arc.route.destination, []).append(i)
        if nodes[arc.route.source].must_out:
            out_of.setdefault(arc.route.source, []).append(i)
    chosen: set[int] = set()
    for side, taking in ((into, True), (out_of, False)):
        for channel, indices in side.items():
            node = nodes[channel]
            need = node.room if taking else node.breach_out + node.to_target_out
            wanted = CANDIDATE_COVER * need
            covered = 0
            for count, i in enumerate(sorted(indices, key=lambda i: (arcs[i].weight, i)), 1):
                chosen.add(i)
                covered += arcs[i].carry
                if covered >= wanted and count >= CANDIDATES_MIN:
                    break
    return chosen


def _simplex(graph_arcs: Sequence[GraphArc]) -> list[int]:
    """The flow on each arc of a min-cost circulation (networkx's network simplex)."""
    graph: nx.MultiDiGraph[object] = nx.MultiDiGraph()
    keys = [graph.add_edge(tail, head, capacity=capacity, weight=cost)
            for tail, head, capacity, cost in graph_arcs]
    _, flow = nx.network_simplex(graph)
    return [flow[tail][head][key] for (tail, head, _, _), key in zip(graph_arcs, keys,
                                                                   strict=True)]


def _potentials(graph_arcs: Sequence[GraphArc], flowing: Sequence[int],
                untouched: Sequence[GraphArc]) -> dict[object, int]:
    """Node potentials under which every arc of the optimal flow's residual graph has a
    reduced cost of 0 or more: shortest distances from a virtual root joined to every node
    at cost 0 (Bellman-Ford, queue-based; an optimal flow leaves no negative cycle). Tiers
    of positions no candidate route touches carry no flow and count as residual arcs."""
    adjacent: dict[object, list[tuple[object, int]]] = {}
    residual = [(tail, head, cost) for (tail, head, capacity, cost), amount
                in zip(graph_arcs, flowing, strict=True) if amount < capacity]
    residual += [(head, tail, -cost) for (tail, head, _, cost), amount
                 in zip(graph_arcs, flowing, strict=True) if amount > 0]
    residual += [(tail, head, cost) for tail, head, _, cost in untouched]
    for tail, head, cost in residual:
        adjacent.setdefault(tail, []).append((head, cost))
        adjacent.setdefault(head, [])
    distance = dict.fromkeys(adjacent, 0)
    queue = deque(adjacent)
    queued = set(adjacent)
    relaxations_max = (len(adjacent) + 1) * (len(residual) + 1)
    relaxations = 0
    while queue:
        tail = queue.popleft()
        queued.discard(tail)
        base = distance[tail]
        for head, cost in adjacent[tail]:
            if base + cost < distance[head]:
                distance[head] = base + cost
                relaxations += 1
                invariant(relaxations <= relaxations_max,
                          "the optimal flow's residual graph has a negative cycle")
                if head not in queued:
                    queued.add(head)
                    queue.append(head)
    return distance


def _duration(seconds: int) -> str:
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7_200:
        return f"{seconds // 60} min"
    return f"{seconds // 3_600} h"
