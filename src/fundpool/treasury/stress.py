"""Liquidity stress: how long a pool pays its customers through a run on it, hour by hour.

A `StressState` is the pool at the start: each position's available balance, the customers'
liabilities per asset, each position's normal deposits and payouts per hour, its credit
facilities and what they have drawn, the routes between channels of one asset, and exchange
rates to a reporting asset. A `Scenario` is what happens: a share of the liabilities withdrawn
over some hours, channels out of service for some hours, exchange-rate shocks, and deposits
running at a fraction of normal. `run` plays it hour by hour and reports how long the pool
survives, which position ran dry first, the credit it would have needed, and the value at
risk. It is deterministic: the same state and scenario give the same report.

Hours are numbered from 1; an outage from hour a to hour b covers both. Each hour, for each
asset (in code order), in this order:

1. **Arrivals.** Money moved between channels lands when its route's latency, rounded up to
   whole hours, has passed; on a channel out of service it waits until the channel is back.
2. **Deposits.** Each position whose channel is up receives its normal inflow times the
   scenario's `inflow_factor`, rounded down (a stress test counts on no money it is not sure
   of). A channel out of service receives nothing: neither pays nor receives.
3. **Demand.** The asset's payouts for the hour are its normal payouts (all its positions',
   whether or not their channel is up: customers still want paying), its withdrawals, and any
   payouts left waiting. The withdrawals are `withdrawal_share` of the liabilities, rounded
   down, spread evenly over the first `withdrawal_hours` hours, a remainder's units one each
   to the first hours. The demand is shared among the positions whose channel is up in
   proportion to their normal payouts; when none of them has any, to the balances they
   started the run with (a router pays out where the money is), and equally when those are
   all zero too. The weights never follow the run's balances, and the sharing is by the
   highest-averages method (D'Hondt), so that more demand never gives any position less. A
   channel out of service shifts its load to the others; with every channel of the asset
   out, the payouts wait.
4. **Payment.** Each position pays its share from its balance. A position whose balance does
   not cover its share has run dry (the first to do so is `first_dry`; one the treasury
   topped up to exactly its share and that ends the hour at zero has not). Its rest is
   covered, in this order: by positions of the same asset with money left after their own
   share, over routes that arrive within the hour (latency 0), the cheapest route first, the
   source paying the route's fee; then by drawing its own credit facilities, in the order
   given. What is still unpaid is a shortfall: the pool has failed to pay that hour (the
   first such hour is the `survival_horizon_h`). The run goes on as if credit beyond the
   facilities had covered it, and that sum is the asset's `credit_needed`.
5. **Look-ahead.** The treasury then covers each position's next hour: a position whose
   balance and the money on its way to it fall short of its share of the next hour's normal
   payouts and withdrawals receives the difference from positions of the asset holding more
   than their own next-hour share, by the quickest route, then the cheapest, then from the
   source first in code order. Money on a route of k hours arrives k hours later (at least
   one: the hour is over), so a slow route covers only later hours. Deposits are not counted
   on, and credit is drawn only when a position runs dry, never to move it elsewhere; drawn
   credit is not repaid during the run.

Routes between positions the state does not hold are ignored. Fees of moves are paid by the
source on top of the amount (as in rebalance.py); interest on
drawn credit accrues exactly, per hour, at each facility's rate over its day count and is
reported rounded down.

**Value at risk**, in the reporting asset, is the sum of: the FX loss on each shocked asset's
net position at the start (balances less liabilities less drawn credit; a loss only, gains
are not netted against other assets' losses), the credit needed and the costs (fees and
interest), both valued at the shocked rates. An asset without a rate leaves the value at risk
unknown (`missing_rates` names it), never counted as zero.
"""

from __future__ import annotations

import heapq
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction

from fundpool.core.errors import FundpoolError, invariant
from fundpool.pool.rates import round_half_even
from fundpool.treasury.bands import (
    Fields,
    Position,
    check_asset,
    check_channel,
    check_minor,
    list_of,
    parse_decimal,
)
from fundpool.treasury.credit import CreditFacility
from fundpool.treasury.rebalance import Route

HOURS_MAX = 720  # a month: a run lasts hours or days, not a quarter
HOUR_S = 3_600
HOURS_PER_DAY = 24
OUTAGES_MAX = 1_000
NAME_LENGTH_MAX = 100
FX_SHOCK_MAX = Fraction(10)  # +1,000 %: beyond it is a typo
INFLOW_FACTOR_MAX = Fraction(100)
SCALE_MAX = 18
BPS_ORDER_SCALE = 1_000_000


class InvalidScenario(FundpoolError):
    code = "invalid_scenario"
    title = "the stress scenario is not valid"


class InvalidStressState(FundpoolError):
    code = "invalid_stress_state"
    title = "the pool's state for a stress run is not valid"


@dataclass(frozen=True, slots=True)
class Outage:
    """`channel` neither pays nor receives from `from_hour` to `to_hour`, both included."""

    channel: str
    from_hour: int
    to_hour: int


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    hours: int
    withdrawal_share: Fraction  # of the liabilities, withdrawn over withdrawal_hours
    withdrawal_hours: int
    outages: tuple[Outage, ...] = ()
    fx_shock: Mapping[str, Fraction] = field(default_factory=dict)  # -0.2: worth 20 % less
    inflow_factor: Fraction = Fraction(1)  # deposits as a share of normal

    def __post_init__(self) -> None:
        _check_scenario(self)


@dataclass(frozen=True, slots=True)
class StressState:
    positions: Mapping[Position, int]  # available balance by (channel, asset)
    liabilities: Mapping[str, int]  # customers' money by asset
    inflow_per_hour: Mapping[Position, int] = field(default_factory=dict)
    outflow_per_hour: Mapping[Position, int] = field(default_factory=dict)
    credit: Sequence[CreditFacility] = ()
    credit_drawn: Mapping[str, int] = field(default_factory=dict)  # by facility id
    routes: Sequence[Route] = ()
    rates: Mapping[str, Fraction] = field(default_factory=dict)  # reporting units per unit
    scales: Mapping[str, int] = field(default_factory=dict)  # decimal places by asset
    reporting_asset: str = "USD"


@dataclass(frozen=True, slots=True)
class HourState:
    """The pool at the end of one hour."""

    hour: int
    balances: Mapping[Position, int]
    shortfall: Mapping[str, int]  # payouts not met this hour, by asset
    credit_drawn: Mapping[str, int]  # drawn on facilities, by asset
    waiting: Mapping[str, int]  # payouts waiting for a channel to be back, by asset
    in_flight: Mapping[str, int]  # moved between channels and not yet arrived, by asset


@dataclass(frozen=True, slots=True)
class ValueAtRisk:
    """What the scenario puts at risk, in minor units of `asset` (the reporting asset)."""

    asset: str
    fx_loss_minor: int
    shortfall_minor: int
    costs_minor: int
    total_minor: int


@dataclass(frozen=True, slots=True)
class StressReport:
    scenario: str
    hours: tuple[HourState, ...]
    survival_horizon_h: int | None  # the first hour a payout could not be met; None: none
    first_dry: tuple[str, str, int] | None  # (channel, asset, hour)
    credit_needed: Mapping[str, int]  # beyond the facilities, by asset
    fees_minor: Mapping[str, int]  # of the moves between channels, by asset
    interest_minor: Mapping[str, int]  # on drawn credit, by asset
    value_at_risk: ValueAtRisk | None
    missing_rates: tuple[str, ...]


def scenario_from_mapping(document: object, *, channels: Collection[str] | None = None,
                          assets: Collection[str] | None = None,
                          path: str = "scenario") -> Scenario:
    """Parse a scenario table; with `channels` and `assets`, outages and shocks must name
    them. Shares, factors and shocks are decimal text ("0.3", "-0.2"), never floats:

        {"name": "bank run", "hours": 48, "withdrawal_share": "0.3", "withdrawal_hours": 24,
         "outages": [{"channel": "bank-a", "from_hour": 3, "to_hour": 10}],
         "fx_shock": {"USDT": "-0.2"}, "inflow_factor": "0.5"}
    """
    fields = Fields(document, InvalidScenario, path)
    fields.known({"name", "hours", "withdrawal_share", "withdrawal_hours", "outages",
                  "fx_shock", "inflow_factor"})
    hours = fields.integer("hours", 1, HOURS_MAX)
    outages: list[Outage] = []
    raw = fields.table.get("outages", [])
    for index, item in enumerate(list_of(raw, InvalidScenario, fields.at("outages"),
                                         OUTAGES_MAX)):
        outage = Fields(item, InvalidScenario, f"{path}.outages[{index}]")
        outage.known({"channel", "from_hour", "to_hour"})
        outages.append(Outage(outage.identifier("channel"),
                              outage.integer("from_hour", 1, hours),
                              outage.integer("to_hour", 1, hours)))
    shocks = fields.table.get("fx_shock", {})
    if not isinstance(shocks, Mapping):
        raise fields.fail("fx_shock", "fx_shock is a table of asset = \"relative change\"")
    fx_shock = {check_asset(asset, InvalidScenario, f"{path}.fx_shock"):
                parse_decimal(text, InvalidScenario, f"{path}.fx_shock.{asset}")
                for asset, text in shocks.items()}
    name, share = fields.text("name", NAME_LENGTH_MAX), fields.decimal("withdrawal_share")
    spread = fields.integer("withdrawal_hours", 1, HOURS_MAX)
    factor = fields.decimal("inflow_factor", Fraction(1))
    try:
        scenario = Scenario(name, hours, share, spread, tuple(outages), fx_shock, factor)
    except InvalidScenario as error:
        facts = dict(error.facts)
        facts["field"] = f"{path}.{facts.get('field', '')}"
        raise InvalidScenario(error.detail, **facts) from None
    if channels is not None or assets is not None:
        _check_names(scenario, channels, assets, path)
    return scenario


def run(state: StressState, scenario: Scenario) -> StressReport:
    """Play `scenario` on `state` hour by hour (see the module's docstring)."""
    _check_state(state)
    channels = {channel for channel, _ in state.positions}
    assets = {asset for _, asset in state.positions}
    _check_names(scenario, channels, assets, "scenario")
    return _Run(state, scenario).play()


# --- the run -------------------------------------------------------------------------------


@dataclass(slots=True)
class _Move:
    arrives_h: int
    channel: str
    asset: str
    amount_minor: int


class _Run:
    def __init__(self, state: StressState, scenario: Scenario) -> None:
        self.state = state
        self.scenario = scenario
        self.balances: dict[Position, int] = dict(state.positions)
        self.assets = sorted({asset for _, asset in state.positions})
        self.channels_of: dict[str, list[str]] = {
            asset: sorted(c for c, a in state.positions if a == asset) for asset in self.assets}
        self.drawn: dict[str, int] = {f.id: state.credit_drawn.get(f.id, 0)
                                      for f in state.credit}
        self.facilities_of: dict[Position, list[CreditFacility]] = {}
        for facility in state.credit:
            self.facilities_of.setdefault((facility.channel, facility.asset), []).append(facility)
        # Routes into each position: instant ones (rescue within the hour) by price; all by
        # arrival, then price (the look-ahead).
        self.instant_into: dict[Position, list[Route]] = {}
        self.routes_into: dict[Position, list[Route]] = {}
        for route in sorted(state.routes, key=_route_order):
            destination = (route.destination, route.asset)
            if destination not in self.balances or (route.source, route.asset) \
                    not in self.balances:
                continue  # a quote for a position the pool does not hold carries nothing
            self.routes_into.setdefault(destination, []).append(route)
            if route.latency_s == 0:
                self.instant_into.setdefault(destination, []).append(route)
        self.in_flight: list[_Move] = []
        self.waiting: dict[str, int] = dict.fromkeys(self.assets, 0)
        self.unmet: dict[str, int] = dict.fromkeys(self.assets, 0)
        self.fees: dict[str, int] = dict.fromkeys(self.assets, 0)
        self.interest: dict[str, Fraction] = dict.fromkeys(self.assets, Fraction(0))
        self.withdrawals_total = {
            asset: _floor(state.liabilities.get(asset, 0) * scenario.withdrawal_share)
            for asset in self.assets}
        self.down_at: list[frozenset[str]] = [frozenset()] + [
            frozenset(o.channel for o in scenario.outages if o.from_hour <= hour <= o.to_hour)
            for hour in range(1, scenario.hours + 1)]
        self.horizon: int | None = None
        self.first_dry: tuple[str, str, int] | None = None
        self.split: dict[tuple[str, tuple[str, ...], int], dict[str, int]] = {}

    def play(self) -> StressReport:
        hours: list[HourState] = []
        for hour in range(1, self.scenario.hours + 1):
            shortfall: dict[str, int] = {}
            for asset in self.assets:
                shortfall[asset] = self._hour(hour, asset)
            self._accrue()
            hours.append(self._snapshot(hour, shortfall))
        interest = {asset: _floor(value) for asset, value in self.interest.items()}
        value_at_risk, missing = self._value_at_risk(interest)
        return StressReport(self.scenario.name, tuple(hours), self.horizon, self.first_dry,
                            dict(self.unmet), dict(self.fees), interest, value_at_risk,
                            missing)

    def _hour(self, hour: int, asset: str) -> int:
        """One hour of one asset; the payouts it could not meet."""
        balances = self.balances
        down = self.down_at[hour]
        channels = self.channels_of[asset]
        up = [c for c in channels if c not in down]
        # 1. arrivals
        staying: list[_Move] = []
        for move in self.in_flight:
            if move.asset == asset and move.arrives_h <= hour and move.channel not in down:
                balances[(move.channel, asset)] += move.amount_minor
            else:
                staying.append(move)
        self.in_flight = staying
        # 2. deposits
        factor = self.scenario.inflow_factor
        for channel in up:
            inflow = self.state.inflow_per_hour.get((channel, asset), 0)
            if inflow:
                balances[(channel, asset)] += _floor(inflow * factor)
        # 3. demand
        demand = self._demand(hour, asset) + self.waiting[asset]
        if not up:
            self.waiting[asset] = demand
            return 0
        self.waiting[asset] = 0
        shares = self._shares(asset, up, demand)
        # 4. payment
        rest: dict[str, int] = {}
        for channel in up:
            share = shares[channel]
            if share == 0:
                continue
            balance = balances[(channel, asset)]
            if balance < share:
                balances[(channel, asset)] = 0
                rest[channel] = share - balance
                if self.first_dry is None:
                    self.first_dry = (channel, asset, hour)
            else:
                balances[(channel, asset)] = balance - share
        unmet = 0
        for channel, owed in rest.items():
            owed -= self._rescue(asset, channel, owed, up)
            owed -= self._draw(asset, channel, owed)
            unmet += owed
        invariant(all(balances[(c, asset)] >= 0 for c in channels),
                  f"{asset}: a balance went negative in hour {hour}")
        if unmet:
            self.unmet[asset] += unmet
            if self.horizon is None:
                self.horizon = hour
        # 5. look-ahead
        if hour < self.scenario.hours:
            self._look_ahead(hour, asset)
        return unmet

    def _demand(self, hour: int, asset: str) -> int:
        """The asset's normal payouts and withdrawals in `hour` (nothing waiting)."""
        outflow = sum(self.state.outflow_per_hour.get((c, asset), 0)
                      for c in self.channels_of[asset])
        return outflow + self._withdrawal(hour, asset)

    def _withdrawal(self, hour: int, asset: str) -> int:
        spread = self.scenario.withdrawal_hours
        if hour > spread:
            return 0
        each, remainder = divmod(self.withdrawals_total[asset], spread)
        return each + (1 if hour <= remainder else 0)

    def _shares(self, asset: str, up: Sequence[str], demand: int) -> dict[str, int]:
        # The same split comes back hour after hour (a steady withdrawal, the same channels
        # up): worked out once.
        key = (asset, tuple(up), demand)
        found = self.split.get(key)
        if found is None:
            # Fixed weights (never today's balances), so that more demand never gives a
            # position less: normal payouts, else the balances the run started from.
            weights = [self.state.outflow_per_hour.get((c, asset), 0) for c in up]
            if not any(weights):
                weights = [self.state.positions[(c, asset)] for c in up]
            if not any(weights):
                weights = [1] * len(up)
            found = dict(zip(up, _highest_averages(demand, weights), strict=True))
            self.split[key] = found
        return found

    def _rescue(self, asset: str, channel: str, owed: int, up: Sequence[str]) -> int:
        """Pay `owed` for `channel` from same-asset positions over instant routes."""
        paid = 0
        for route in self.instant_into.get((channel, asset), ()):
            if paid == owed:
                break
            if route.source not in up:
                continue
            source = (route.source, asset)
            amount = min(owed - paid, _can_send(route, self.balances[source]))
            if amount <= 0:
                continue
            fee = route.fee_minor(amount)
            self.balances[source] -= amount + fee
            self.fees[asset] += fee
            paid += amount  # it pays the customers at once: it never rests on `channel`
        return paid

    def _draw(self, asset: str, channel: str, owed: int) -> int:
        drawn_now = 0
        for facility in self.facilities_of.get((channel, asset), ()):
            if drawn_now == owed:
                break
            amount = min(owed - drawn_now, facility.limit_minor - self.drawn[facility.id])
            if amount > 0:
                self.drawn[facility.id] += amount
                drawn_now += amount
        return drawn_now

    def _look_ahead(self, hour: int, asset: str) -> None:
        balances = self.balances
        now_up = [c for c in self.channels_of[asset] if c not in self.down_at[hour]]
        next_up = [c for c in self.channels_of[asset] if c not in self.down_at[hour + 1]]
        if not next_up:
            return
        need = self._shares(asset, next_up, self._demand(hour + 1, asset))
        coming: dict[str, int] = {}
        for move in self.in_flight:
            if move.asset == asset:
                coming[move.channel] = coming.get(move.channel, 0) + move.amount_minor
        free = {c: balances[(c, asset)] - need.get(c, 0) for c in now_up}
        for channel in next_up:
            short = need[channel] - balances[(channel, asset)] - coming.get(channel, 0)
            if short <= 0:
                continue
            for route in self.routes_into.get((channel, asset), ()):
                available = free.get(route.source, 0)
                if available <= 0:
                    continue
                amount = min(short, _can_send(route, available))
                if amount <= 0:
                    continue
                fee = route.fee_minor(amount)
                balances[(route.source, asset)] -= amount + fee
                free[route.source] = available - amount - fee
                self.fees[asset] += fee
                arrives = hour + max(1, -(-route.latency_s // HOUR_S))
                self.in_flight.append(_Move(arrives, channel, asset, amount))
                short -= amount
                if short == 0:
                    break

    def _accrue(self) -> None:
        for facility in self.state.credit:
            drawn = self.drawn[facility.id]
            if drawn:
                self.interest[facility.asset] += drawn * facility.annual_rate / (
                    facility.day_count * HOURS_PER_DAY)

    def _snapshot(self, hour: int, shortfall: dict[str, int]) -> HourState:
        drawn = dict.fromkeys(self.assets, 0)
        for facility in self.state.credit:
            drawn[facility.asset] = drawn.get(facility.asset, 0) + self.drawn[facility.id]
        in_flight = dict.fromkeys(self.assets, 0)
        for move in self.in_flight:
            in_flight[move.asset] += move.amount_minor
        return HourState(hour, dict(self.balances), shortfall, drawn, dict(self.waiting),
                         in_flight)

    def _value_at_risk(self, interest: Mapping[str, int],
                       ) -> tuple[ValueAtRisk | None, tuple[str, ...]]:
        state, shocks = self.state, self.scenario.fx_shock
        reporting = state.reporting_asset
        missing = tuple(a for a in self.assets
                        if a != reporting and (a not in state.rates or a not in state.scales))
        if missing or reporting not in state.scales:
            return None, missing or (reporting,)
        fx_loss = shortfall = costs = Fraction(0)
        for asset in self.assets:
            unit = Fraction(10 ** state.scales[reporting], 10 ** state.scales[asset])
            rate = unit * (Fraction(1) if asset == reporting else state.rates[asset])
            shock = shocks.get(asset, Fraction(0))
            held = sum(b for (_, a), b in state.positions.items() if a == asset)
            drawn = sum(state.credit_drawn.get(f.id, 0) for f in state.credit
                        if f.asset == asset)
            net = held - state.liabilities.get(asset, 0) - drawn
            fx_loss += max(Fraction(0), -net * shock) * rate
            shocked = rate * (1 + shock)
            shortfall += self.unmet[asset] * shocked
            costs += (self.fees[asset] + interest.get(asset, 0)) * shocked
        fx_loss_minor, shortfall_minor, costs_minor = (
            round_half_even(value) for value in (fx_loss, shortfall, costs))
        return ValueAtRisk(reporting, fx_loss_minor, shortfall_minor, costs_minor,
                           fx_loss_minor + shortfall_minor + costs_minor), ()


def _route_order(route: Route) -> tuple[int, int, int, str]:
    """Quickest first (in whole hours), then cheapest (the rate to a millionth of a basis
    point: an integer key sorts 50 x 49 routes an asset without a Fraction compare), then by
    source."""
    bps = route.fee_bps
    return (-(-route.latency_s // HOUR_S), route.fee_fixed_minor,
            bps.numerator * BPS_ORDER_SCALE // bps.denominator, route.source)


def _can_send(route: Route, available: int) -> int:
    """The most `route` can carry when the amount and its fee must fit in `available`."""
    if available <= route.fee_fixed_minor:
        return 0
    exact = (available - route.fee_fixed_minor) / (1 + route.fee_bps / 10_000)
    amount = exact.numerator // exact.denominator
    while amount > 0 and amount + route.fee_minor(amount) > available:
        amount -= 1  # half-even rounding of the fee can take it one unit over
    if route.max_minor is not None:
        amount = min(amount, route.max_minor)
    return amount


def _highest_averages(total: int, weights: Sequence[int]) -> list[int]:
    """`total` shared in proportion to `weights` by D'Hondt: the lower quotas first (every
    quotient they hold is at least total / sum, so D'Hondt gives them), then the remaining
    units one by one to the highest next quotient, ties to the earlier weight. Adding to
    `total` never takes from any share."""
    weight_sum = sum(weights)
    shares = [total * w // weight_sum for w in weights]
    left = total - sum(shares)
    # highest w / (share + 1) first: compare as fractions without division
    heap = [(Fraction(-w, s + 1), i) for i, (w, s) in enumerate(zip(weights, shares,
                                                                      strict=True)) if w]
    heapq.heapify(heap)
    for _ in range(left):
        _, i = heapq.heappop(heap)
        shares[i] += 1
        heapq.heappush(heap, (Fraction(-weights[i], shares[i] + 1), i))
    return shares


def _floor(value: Fraction | int) -> int:
    return int(value // 1)


# --- checks --------------------------------------------------------------------------------


def _check_scenario(scenario: Scenario) -> None:
    def fail(field: str, detail: str, **facts: object) -> InvalidScenario:
        return InvalidScenario(detail, field=field, **facts)

    if not isinstance(scenario.name, str) or not scenario.name.strip() \
            or len(scenario.name) > NAME_LENGTH_MAX:
        raise fail("name", f"a name is non-empty text of at most {NAME_LENGTH_MAX} characters")
    for name in ("hours", "withdrawal_hours"):
        value = getattr(scenario, name)
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= HOURS_MAX:
            raise fail(name, f"{name} is a whole number of hours from 1 to {HOURS_MAX}",
                       value=repr(value)[:80])
    if scenario.withdrawal_hours > scenario.hours:
        raise fail("withdrawal_hours", "the withdrawals fall within the scenario's hours",
                   withdrawal_hours=scenario.withdrawal_hours, hours=scenario.hours)
    share = _fraction(scenario.withdrawal_share, "withdrawal_share")
    if not 0 <= share <= 1:
        raise fail("withdrawal_share", "a share of the liabilities is from 0 to 1",
                   value=str(share))
    object.__setattr__(scenario, "withdrawal_share", share)
    factor = _fraction(scenario.inflow_factor, "inflow_factor")
    if not 0 <= factor <= INFLOW_FACTOR_MAX:
        raise fail("inflow_factor", f"the inflow factor is from 0 to {INFLOW_FACTOR_MAX}",
                   value=str(factor))
    object.__setattr__(scenario, "inflow_factor", factor)
    if not isinstance(scenario.outages, tuple) or len(scenario.outages) > OUTAGES_MAX:
        raise fail("outages", f"outages are a tuple of at most {OUTAGES_MAX}")
    for index, outage in enumerate(scenario.outages):
        at = f"outages[{index}]"
        if not isinstance(outage, Outage):
            raise fail(at, "expected an Outage")
        check_channel(outage.channel, InvalidScenario, f"{at}.channel")
        for name in ("from_hour", "to_hour"):
            value = getattr(outage, name)
            if isinstance(value, bool) or not isinstance(value, int) \
                    or not 1 <= value <= scenario.hours:
                raise fail(f"{at}.{name}", f"an outage's hours are from 1 to the scenario's "
                           f"{scenario.hours}", value=repr(value)[:80])
        if outage.from_hour > outage.to_hour:
            raise fail(f"{at}.to_hour", "an outage ends at or after it starts",
                       from_hour=outage.from_hour, to_hour=outage.to_hour)
    if not isinstance(scenario.fx_shock, Mapping):
        raise fail("fx_shock", "fx_shock maps an asset to its relative change")
    shocks: dict[str, Fraction] = {}
    for asset, shock in scenario.fx_shock.items():
        check_asset(asset, InvalidScenario, f"fx_shock.{asset}")
        value = _fraction(shock, f"fx_shock.{asset}")
        if not -1 < value <= FX_SHOCK_MAX:
            raise fail(f"fx_shock.{asset}", "a shock is above -1 (an asset worth nothing is "
                       f"not a shock but a loss) and at most {FX_SHOCK_MAX}", value=str(value))
        shocks[asset] = value
    object.__setattr__(scenario, "fx_shock", shocks)


def _fraction(value: object, field: str) -> Fraction:
    if isinstance(value, bool) or not isinstance(value, Fraction | int):
        raise InvalidScenario("a share, factor or shock is an exact Fraction from decimal "
                              "text, never a float", field=field, value=repr(value)[:80])
    return Fraction(value)


def _check_names(scenario: Scenario, channels: Collection[str] | None,
                 assets: Collection[str] | None, path: str) -> None:
    if channels is not None:
        for index, outage in enumerate(scenario.outages):
            if outage.channel not in channels:
                raise InvalidScenario("the outage names a channel the pool does not have",
                                      field=f"{path}.outages[{index}].channel",
                                      channel=outage.channel)
    if assets is not None:
        for asset in scenario.fx_shock:
            if asset not in assets:
                raise InvalidScenario("the shock names an asset the pool does not hold",
                                      field=f"{path}.fx_shock.{asset}", asset=asset)


def _check_state(state: StressState) -> None:
    def fail(field: str, detail: str, **facts: object) -> InvalidStressState:
        return InvalidStressState(detail, field=field, **facts)

    positions = state.positions
    for (channel, asset), balance in positions.items():
        check_channel(channel, InvalidStressState, "positions")
        check_asset(asset, InvalidStressState, "positions")
        check_minor(balance, InvalidStressState, "positions", channel=channel, asset=asset)
    assets = {asset for _, asset in positions}
    for asset, amount in state.liabilities.items():
        if asset not in assets:
            raise fail("liabilities", "liabilities in an asset no position holds", asset=asset)
        check_minor(amount, InvalidStressState, "liabilities", asset=asset)
    for name in ("inflow_per_hour", "outflow_per_hour"):
        for position, amount in getattr(state, name).items():
            if position not in positions:
                raise fail(name, "a flow for a position the pool does not have",
                           channel=position[0], asset=position[1])
            check_minor(amount, InvalidStressState, name, channel=position[0],
                        asset=position[1])
    ids = [f.id for f in state.credit]
    if len(set(ids)) < len(ids):
        raise fail("credit", "each facility has its own id")
    for facility in state.credit:
        if (facility.channel, facility.asset) not in positions:
            raise fail("credit", "a facility on a position the pool does not have",
                       facility=facility.id)
        drawn = check_minor(state.credit_drawn.get(facility.id, 0), InvalidStressState,
                            "credit_drawn", facility=facility.id)
        if drawn > facility.limit_minor:
            raise fail("credit_drawn", "a facility is drawn beyond its limit",
                       facility=facility.id, drawn_minor=drawn,
                       limit_minor=facility.limit_minor)
    for facility_id in state.credit_drawn:
        if facility_id not in ids:
            raise fail("credit_drawn", "a drawn amount for an unknown facility",
                       facility=facility_id)
    seen: set[tuple[str, str, str]] = set()
    for route in state.routes:
        key = (route.source, route.destination, route.asset)
        if key in seen:
            raise fail("routes", "one route per source, destination and asset",
                       source=route.source, destination=route.destination, asset=route.asset)
        seen.add(key)
    check_asset(state.reporting_asset, InvalidStressState, "reporting_asset")
    for asset, rate in state.rates.items():
        if isinstance(rate, bool) or not isinstance(rate, Fraction | int) or rate <= 0:
            raise fail("rates", "a rate is a positive exact Fraction", asset=asset,
                       value=repr(rate)[:80])
    for asset, scale in state.scales.items():
        if isinstance(scale, bool) or not isinstance(scale, int) or not 0 <= scale <= SCALE_MAX:
            raise fail("scales", f"a scale is an integer from 0 to {SCALE_MAX}", asset=asset,
                       value=repr(scale)[:80])
