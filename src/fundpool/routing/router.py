"""The smart router: which rail should carry this payment now?

A decision has two steps.

1. Hard constraints rule rails out, each with a stable code (`Exclusion`, checked in this
   order; a rail reports the first that applies): the rail does not carry the asset
   (`asset_not_carried`), the amount is below its minimum (`below_minimum`) or above its
   maximum (`above_maximum`), the decision's instant is outside every cut-off window
   (`closed`), the rail failed too often lately (`cooling_down`), the caller already tried it
   for this payment (`excluded`), or the pool's balance on it does not cover the amount plus
   the quoted fee (`insufficient_liquidity`). Only the last needs a quote, so only rails that
   pass the others are quoted.

2. Among the rest, the rail with the lowest expected cost wins:

       expected cost = fee + time cost + (1 - p) x retry cost
       time cost     = amount x time_value_bps_per_year / 10,000 x latency / year
                       + urgency per second (of the asset) x latency
       retry cost    = fee + time cost of the next attempt + failure cost (of the asset)

   where the next attempt is the cheapest other eligible rail by fee + time cost (the rail
   itself when it is the only one), since that is where the caller's failover would go; the
   failed attempt's own wait is already in its time cost. A year is 365 days. `p` is the
   rail's success probability for the asset: under `Router`, a draw from its Beta posterior
   (Thompson sampling), whose prior is the quote's own estimate worth `prior_weight`
   observations and which learns from `record()`; under `FixedPriorityRouter`, the quoted
   probability, for display only, since it chooses by a fixed order.

   The scores are floats in minor units. They only rank: no amount that is posted is ever
   derived from them (the fee posted is the chosen rail's quoted integer fee).

   A rail with a dynamic fee (a `dynamic_fee` table, and a `CongestionMeter` given to the
   router: routing/congestion.py) is quoted its own fee plus the congestion fee of the
   payment's asset, hour and risk grade (channels/congestion.py); that sum is the rail's fee
   everywhere above (liquidity, cost, the fee posted), and its candidate keeps the dynamic
   part and its explanation, so a decision says when congestion priced a rail out.

A share `hedge_share` of learned decisions goes to another eligible rail than the best, marked
`hedged`, so every rail keeps being measured. The hedge picks among the others with weights
1 / (1 + expected cost): a rail that is nearly competitive is measured often, one that costs
thirty times the best (a $15 wire for a $50 payout) rarely, though never not at all.

Failover is the caller's loop: on failure, `record()` the outcome and `decide(...,
exclude=tried)` again, at most `policy.max_attempts` times in all.

Determinism: every random draw comes from the router's own `random.Random(seed)`, in adapter
order; time comes only from `at_us`. The same adapters, seed and calls give the same decisions.

Speed: each adapter's capabilities are read once, at construction (they are static); quotes
are asked for on every decision, since fees depend on the amount and the moment.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import ClassVar, Protocol

from fundpool.channels.congestion import DynamicFeeQuote
from fundpool.channels.limits import LimitBreach, Limits, limit_breach
from fundpool.channels.ports import Capabilities, ChannelAdapter, Quote
from fundpool.core.errors import FundpoolError
from fundpool.routing.congestion import CongestionMeter
from fundpool.routing.decision import (
    NO_ELIGIBLE_CHANNEL,
    CandidateScore,
    Exclusion,
    RoutingDecision,
    Strategy,
)
from fundpool.routing.learning import CoolDown, Outcomes, clamp_probability
from fundpool.routing.policy import DEFAULT_POLICY, RoutingPolicy

ADAPTERS_MAX = 64  # rails one router weighs per decision; each costs a quote
US_PER_YEAR = 365 * 86_400 * 1_000_000
BPS_PER_UNIT = 10_000
_US_PER_SECOND = 1_000_000


class InvalidRouter(FundpoolError):
    code = "invalid_router"
    title = "the router's channels are not valid"


class UnknownChannel(FundpoolError):
    code = "unknown_channel"
    title = "no such channel among the router's adapters"


class RoutingStrategy(Protocol):
    """What a payment's failover loop needs from a router, learned or fixed."""

    channels: tuple[str, ...]  # the rails it routes over (a book rail is never one)

    @property
    def policy(self) -> RoutingPolicy: ...

    @property
    def congestion(self) -> CongestionMeter | None:
        """The meter that prices the rails' congestion, which the dispatcher feeds with what
        it sends (None: the rails' quotes alone)."""
        ...

    def decide(
        self,
        payment_id: str,
        asset: str,
        amount_minor: int,
        at_us: int,
        *,
        liquidity: Mapping[str, int],
        exclude: Collection[str] = (),
        risk_grade: str | None = None,
    ) -> RoutingDecision: ...

    def record(self, channel: str, asset: str, success: bool, at_us: int) -> None: ...


class _Rail:
    """An adapter's static facts, read once."""

    __slots__ = ("assets", "capabilities", "channel", "limits", "priced", "quote", "timed")

    def __init__(self, adapter: ChannelAdapter, congestion: CongestionMeter | None) -> None:
        capabilities: Capabilities = adapter.capabilities()
        self.channel: str = adapter.id
        if capabilities.channel != self.channel:
            raise InvalidRouter(
                "an adapter's capabilities name another channel",
                channel=self.channel,
                capabilities_channel=capabilities.channel,
            )
        self.capabilities = capabilities
        self.quote: Callable[[str, int, int], Quote] = adapter.quote
        self.assets = capabilities.assets
        # Per asset carried, read once: the one check (channels/limits.py) runs on these.
        self.limits: dict[str, Limits] = {
            asset: capabilities.limits_for(asset) for asset in capabilities.assets
        }
        self.timed = bool(capabilities.cutoff)
        self.priced = congestion is not None and congestion.prices(self.channel)


class _RouterBase:
    strategy: ClassVar[Strategy]

    def __init__(self, adapters: Sequence[ChannelAdapter], policy: RoutingPolicy,
                 congestion: CongestionMeter | None) -> None:
        if len(adapters) > ADAPTERS_MAX:
            raise InvalidRouter(
                f"a router weighs at most {ADAPTERS_MAX} channels", channels=len(adapters)
            )
        self._congestion = congestion
        self._rails = tuple(_Rail(adapter, congestion) for adapter in adapters)
        self.channels = tuple(rail.channel for rail in self._rails)
        if len(set(self.channels)) != len(self.channels):
            raise InvalidRouter("two adapters have the same channel id", channels=self.channels)
        self._policy = policy
        self._cooldowns: dict[str, CoolDown] = {}

    @property
    def policy(self) -> RoutingPolicy:
        return self._policy

    @property
    def congestion(self) -> CongestionMeter | None:
        """The meter that prices the rails' congestion (None: quotes alone)."""
        return self._congestion

    def record(self, channel: str, asset: str, success: bool, at_us: int) -> None:
        """An attempt's outcome on `channel`, as of `at_us`: a failure fills its cool-down
        bucket."""
        if channel not in self.channels:
            raise UnknownChannel(channel=channel, channels=self.channels)
        if not success:
            bucket = self._cooldowns.get(channel)
            if bucket is None:
                bucket = self._cooldowns[channel] = CoolDown()
            bucket.fail(at_us, self._policy)

    def cooling_down(self, channel: str, at_us: int) -> bool:
        bucket = self._cooldowns.get(channel)
        return bucket is not None and bucket.is_out(at_us, self._policy)

    def decide(
        self,
        payment_id: str,
        asset: str,
        amount_minor: int,
        at_us: int,
        *,
        liquidity: Mapping[str, int],
        exclude: Collection[str] = (),
        risk_grade: str | None = None,
    ) -> RoutingDecision:
        """The rail for this payment now, with every adapter's scores. `liquidity` is the
        pool's available balance of `asset` per channel id (a channel missing from it has
        none); `exclude` the channels already tried for this payment; `risk_grade` what risk
        control made of it (allow, review, hold; None: not known), which a dynamic fee may
        weigh."""
        reasons, quotes, dynamic = self._screen(
            asset, amount_minor, at_us, liquidity, exclude, risk_grade
        )
        candidates, chosen, hedged = self._choose(asset, amount_minor, reasons, quotes)
        if dynamic:
            candidates = _with_dynamic_fees(candidates, dynamic)
        return RoutingDecision(
            payment_id,
            at_us,
            asset,
            amount_minor,
            chosen,
            NO_ELIGIBLE_CHANNEL if chosen is None else None,
            hedged,
            self.strategy,
            candidates,
            risk_grade if dynamic else None,
        )

    def _screen(
        self,
        asset: str,
        amount_minor: int,
        at_us: int,
        liquidity: Mapping[str, int],
        exclude: Collection[str],
        risk_grade: str | None,
    ) -> tuple[list[Exclusion | None], list[Quote | None], dict[int, DynamicFeeQuote] | None]:
        reasons: list[Exclusion | None] = []
        quotes: list[Quote | None] = []
        dynamic: dict[int, DynamicFeeQuote] | None = None
        cooldowns = self._cooldowns
        for position, rail in enumerate(self._rails):
            channel = rail.channel
            quote = None
            reason: Exclusion | None = None
            if asset not in rail.assets:
                reason = Exclusion.ASSET_NOT_CARRIED
            elif (breach := limit_breach(rail.limits[asset], amount_minor)) is not None:
                reason = _EXCLUSION_OF[breach]
            elif rail.timed and not rail.capabilities.open_at(at_us):
                reason = Exclusion.CLOSED
            elif channel in cooldowns and cooldowns[channel].is_out(at_us, self._policy):
                reason = Exclusion.COOLING_DOWN
            elif channel in exclude:
                reason = Exclusion.EXCLUDED
            else:
                quote = rail.quote(asset, amount_minor, at_us)
                if rail.priced:
                    assert self._congestion is not None  # a priced rail has a meter
                    extra = self._congestion.quote(channel, asset, at_us, risk_grade)
                    if extra is not None:
                        # A new quote: the adapter's may be one it hands out again.
                        quote = Quote(quote.channel, quote.asset, quote.amount_minor,
                                      quote.fee_minor + extra.fee_minor, quote.latency_us,
                                      quote.success_probability)
                        if dynamic is None:
                            dynamic = {}
                        dynamic[position] = extra
                if liquidity.get(channel, 0) < amount_minor + quote.fee_minor:
                    reason = Exclusion.INSUFFICIENT_LIQUIDITY
            reasons.append(reason)
            quotes.append(quote)
        return reasons, quotes, dynamic

    def _choose(
        self,
        asset: str,
        amount_minor: int,
        reasons: list[Exclusion | None],
        quotes: list[Quote | None],
    ) -> tuple[tuple[CandidateScore, ...], str | None, bool]:
        raise NotImplementedError

    def _time_cost_per_us(self, asset: str, amount_minor: int) -> float:
        return (
            amount_minor * self._policy.time_value_bps_per_year / (BPS_PER_UNIT * US_PER_YEAR)
            + self._policy.urgency(asset) / _US_PER_SECOND
        )

    def _scores(
        self,
        asset: str,
        amount_minor: int,
        reasons: list[Exclusion | None],
        quotes: list[Quote | None],
        success: Callable[[int, Quote], tuple[float | None, float]],
    ) -> tuple[list[CandidateScore], list[int]]:
        """Every adapter's `CandidateScore`, and the eligible ones' positions. `success(i,
        quote)` gives (posterior mean or None, probability to score with)."""
        time_per_us = self._time_cost_per_us(asset, amount_minor)
        eligible = [i for i, reason in enumerate(reasons) if reason is None]
        attempt_costs: dict[int, tuple[Quote, float, float]] = {}
        for i in eligible:
            quote = quotes[i]
            assert quote is not None  # an eligible rail was quoted
            time_cost = time_per_us * quote.latency_us
            attempt_costs[i] = (quote, time_cost, quote.fee_minor + time_cost)
        next_costs = _next_attempt_costs([attempt_costs[i][2] for i in eligible])
        failure_cost = self._policy.failure_cost(asset)

        candidates: list[CandidateScore] = []
        next_attempt = iter(next_costs)
        for i, (rail, reason) in enumerate(zip(self._rails, reasons, strict=True)):
            quote = quotes[i]
            if reason is None:
                assert quote is not None  # an eligible rail was quoted
                _, time_cost, attempt_cost = attempt_costs[i]
                retry_cost = next(next_attempt) + failure_cost
                mean, probability = success(i, quote)
                candidates.append(
                    CandidateScore(
                        rail.channel,
                        True,
                        None,
                        quote.fee_minor,
                        quote.latency_us,
                        quote.success_probability,
                        mean,
                        None if mean is None else probability,
                        time_cost,
                        retry_cost,
                        attempt_cost + (1.0 - probability) * retry_cost,
                    )
                )
            elif quote is None:
                candidates.append(_unquoted(rail.channel, reason))
            else:
                candidates.append(
                    CandidateScore(
                        rail.channel,
                        False,
                        reason,
                        quote.fee_minor,
                        quote.latency_us,
                        quote.success_probability,
                    )
                )
        return candidates, eligible


_EXCLUSION_OF = {
    LimitBreach.BELOW_MINIMUM: Exclusion.BELOW_MINIMUM,
    LimitBreach.ABOVE_MAXIMUM: Exclusion.ABOVE_MAXIMUM,
}
_UNQUOTED: dict[tuple[str, str], CandidateScore] = {}


def _with_dynamic_fees(
    candidates: tuple[CandidateScore, ...], dynamic: Mapping[int, DynamicFeeQuote]
) -> tuple[CandidateScore, ...]:
    """The candidates with the dynamic part of each priced rail's fee, and why. A priced
    rail was quoted, so its candidate is one `_scores` made for this decision (never a
    shared `_unquoted` one) and may be completed in place."""
    for position, extra in dynamic.items():
        candidate = candidates[position]
        candidate.dynamic_fee_minor = extra.fee_minor
        candidate.fee_explanation = extra.explanation
    return candidates


def _unquoted(channel: str, reason: Exclusion) -> CandidateScore:
    """The candidate of a rail left out before any quote: the same value every time, so it
    is made once (most rails of a multi-asset pool do not carry a payment's asset)."""
    key = (channel, reason)
    score = _UNQUOTED.get(key)
    if score is None:
        if len(_UNQUOTED) > 4_096:
            _UNQUOTED.clear()
        score = _UNQUOTED[key] = CandidateScore(channel, False, reason)
    return score


def _next_attempt_costs(costs: list[float]) -> list[float]:
    """For each attempt cost, the cheapest of the others (itself when it is alone)."""
    if len(costs) <= 1:
        return list(costs)
    best = min(range(len(costs)), key=costs.__getitem__)
    second = min(costs[i] for i in range(len(costs)) if i != best)
    return [second if i == best else costs[best] for i in range(len(costs))]


class Router(_RouterBase):
    """Learns each rail's success rate per asset from `record()` and routes by lowest expected
    cost under Thompson sampling (see the module's docstring)."""

    strategy = Strategy.LEARNED

    def __init__(
        self,
        adapters: Sequence[ChannelAdapter],
        *,
        policy: RoutingPolicy = DEFAULT_POLICY,
        seed: int,
        congestion: CongestionMeter | None = None,
    ) -> None:
        super().__init__(adapters, policy, congestion)
        self._random = random.Random(seed)
        self._outcomes: dict[tuple[str, str], Outcomes] = {}

    def record(self, channel: str, asset: str, success: bool, at_us: int) -> None:
        """An attempt's outcome: it updates the (channel, asset) posterior and, on failure, the
        channel's cool-down."""
        super().record(channel, asset, success, at_us)
        key = (channel, asset)
        outcomes = self._outcomes.get(key)
        if outcomes is None:
            outcomes = self._outcomes[key] = Outcomes()
        outcomes.add(success, self._policy.evidence_max)

    def outcomes(self, channel: str, asset: str) -> tuple[float, float]:
        """(successes, failures) remembered for the pair, after fading (policy.evidence_max)."""
        outcomes = self._outcomes.get((channel, asset))
        return (0.0, 0.0) if outcomes is None else (outcomes.successes, outcomes.failures)

    def _choose(
        self,
        asset: str,
        amount_minor: int,
        reasons: list[Exclusion | None],
        quotes: list[Quote | None],
    ) -> tuple[tuple[CandidateScore, ...], str | None, bool]:
        prior_weight = self._policy.prior_weight
        betavariate = self._random.betavariate
        no_outcomes = Outcomes()
        rails = self._rails

        def success(i: int, quote: Quote) -> tuple[float | None, float]:
            outcomes = self._outcomes.get((rails[i].channel, asset), no_outcomes)
            alpha, beta = outcomes.beta(quote.success_probability, prior_weight)
            return alpha / (alpha + beta), betavariate(alpha, beta)

        candidates, eligible = self._scores(asset, amount_minor, reasons, quotes, success)
        if not eligible:
            return tuple(candidates), None, False
        best = min(eligible, key=lambda i: candidates[i].expected_cost_minor or 0.0)
        hedged = False
        if len(eligible) > 1 and self._random.random() < self._policy.hedge_share:
            others = [i for i in eligible if i != best]
            # The cheaper a rail looks, the likelier the hedge: measuring a rail costs least
            # where it is nearly competitive, and that is where knowing it matters. Each
            # weight stays above 0, so every eligible rail keeps being measured. The 1 minor
            # unit keeps a free rail's weight finite.
            weights = [1.0 / (1.0 + (candidates[i].expected_cost_minor or 0.0)) for i in others]
            best = self._random.choices(others, weights)[0]
            hedged = True
        return tuple(candidates), rails[best].channel, hedged


class FixedPriorityRouter(_RouterBase):
    """The baseline: the first eligible rail in a fixed order, as a person would set it from
    the rails' price lists. Same constraints and decision type as `Router` (strategy
    `fixed`); its expected costs use the quoted success probabilities and are for display.

    It learns nothing: `record()` only feeds the cool-down, which is an operational circuit
    breaker rather than learning, so that a comparison with `Router` measures learning alone.
    Channels missing from `priority` come after the named ones, in the adapters' order."""

    strategy = Strategy.FIXED

    def __init__(
        self,
        adapters: Sequence[ChannelAdapter],
        priority: Sequence[str],
        *,
        policy: RoutingPolicy = DEFAULT_POLICY,
        congestion: CongestionMeter | None = None,
    ) -> None:
        super().__init__(adapters, policy, congestion)
        unknown = [channel for channel in priority if channel not in self.channels]
        if unknown:
            raise InvalidRouter("the priority names unknown channels", unknown=unknown)
        if len(set(priority)) != len(priority):
            raise InvalidRouter("the priority names a channel twice", priority=list(priority))
        rank = {channel: position for position, channel in enumerate(priority)}
        self.priority = tuple(priority) + tuple(c for c in self.channels if c not in rank)
        order = {channel: position for position, channel in enumerate(self.priority)}
        self._order = [order[rail.channel] for rail in self._rails]

    def _choose(
        self,
        asset: str,
        amount_minor: int,
        reasons: list[Exclusion | None],
        quotes: list[Quote | None],
    ) -> tuple[tuple[CandidateScore, ...], str | None, bool]:
        def success(i: int, quote: Quote) -> tuple[float | None, float]:
            return None, clamp_probability(quote.success_probability)

        candidates, eligible = self._scores(asset, amount_minor, reasons, quotes, success)
        if not eligible:
            return tuple(candidates), None, False
        first = min(eligible, key=self._order.__getitem__)
        return tuple(candidates), self._rails[first].channel, False
