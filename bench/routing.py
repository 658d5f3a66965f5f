"""Routing: how long a decision takes, and what learning buys over a fixed priority list.

Prints one JSON line per figure:
  {"bench": "routing", "workload": ..., "value": ..., "unit": ..., "baseline": ...,
   "baseline_value": ..., "ratio": ...}

Decision latency. Five routers weigh 4, 5, 6, 7 and 8 simulated rails (USD; some with a
maximum or a cut-off window, so not every rail is eligible); decisions cycle through them over
log-uniform amounts, one simulated second apart, and each outcome is recorded (untimed) so
that posteriors and cool-downs evolve as in service. Each `decide` is timed on its own; the
baseline, timed right after it in the same run, is asking every one of that router's adapters
for its quote for the same payment: the part of a decision the router cannot avoid. p50 and
p99 in microseconds; the target is p99 < 200 us.

Learned vs fixed. Several simulated worlds (seeded): six USD rails whose quoted success
probabilities flatter them, as real rails' do (each rail's true rate is its quote less a draw
of up to 30 points). The same payments (log-uniform $5 to $200,000, about one every two
seconds) go through `Router` and through `FixedPriorityRouter` with the order a person would
set from the price lists: cheapest quoted fee (for a median payment) first. Both use the same
policy (a failed attempt costs $1 beyond its fee) and the same outcomes: a payment's attempt on
a rail succeeds or fails the same way under both routers (one uniform draw per payment and
rail). Each payment is tried on up to `max_attempts` rails, each attempt paying its fee even
when it fails. Outcomes are recorded at once (no feedback delay). Figures, each with the fixed
router as baseline: cost per payment (fees of every attempt + failure costs, minor units),
the same plus the float (value of time of every attempt at the policy's rate), the share of
payments that succeeded within `max_attempts`, and the share that succeeded at the first try.

Usage: python bench/routing.py [--scale 1.0]
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass

from fundpool.channels.ports import (
    Capabilities,
    ChannelOutcome,
    Instruction,
    OutcomeCallback,
    Quote,
    Submission,
)
from fundpool.pool.config import ChannelKind, CutOffWindow
from fundpool.routing import FixedPriorityRouter, Router, RoutingPolicy, RoutingStrategy
from fundpool.routing.router import BPS_PER_UNIT, US_PER_YEAR
from fundpool.runtime import tune_gc

SECOND_US = 1_000_000
HOUR_US = 3_600 * SECOND_US
DAY_US = 24 * HOUR_US
MONDAY_NOON_US = 4 * DAY_US + 12 * HOUR_US  # 1970-01-05 was a Monday
WEEKDAYS_13_TO_22 = CutOffWindow(frozenset(range(5)), 13 * 60, 22 * 60)
AMOUNT_MIN_MINOR = 500  # $5
AMOUNT_MAX_MINOR = 20_000_000  # $200,000
MEDIAN_AMOUNT_MINOR = 50_000  # $500: the payment a person prices the rails for
LIQUIDITY_MINOR = 10**15
DECISIONS = 50_000
WORLDS = 5
PAYMENTS_PER_WORLD = 6_000
OVERCLAIM_MAX = 0.30
FAILURE_COST_MINOR = 100  # $1 per failed attempt: an operator's look, the payee's wait


@dataclass(frozen=True)
class BenchRail:
    """A deterministic channel adapter: fixed + bps fee, a fixed latency and a quoted success
    probability."""

    id: str
    kind: ChannelKind
    fee_fixed_minor: int
    fee_bps: int
    latency_us: int
    quoted_success: float
    max_minor: int | None = None
    cutoff: tuple[CutOffWindow, ...] = ()

    def capabilities(self) -> Capabilities:
        return Capabilities(
            self.id, self.kind, frozenset({"USD"}), {"USD": 1}, {"USD": self.max_minor},
            batch_size_max=1, cutoff=self.cutoff,
        )

    def quote(self, asset: str, amount_minor: int, at_us: int) -> Quote:
        fee = self.fee_fixed_minor + amount_minor * self.fee_bps // BPS_PER_UNIT
        return Quote(self.id, asset, amount_minor, fee, self.latency_us, self.quoted_success)

    def submit(self, instructions: Sequence[Instruction], at_us: int) -> Submission:
        raise NotImplementedError("the bench only routes")

    def poll(self, until_us: int) -> list[ChannelOutcome]:
        raise NotImplementedError("the bench only routes")

    def subscribe(self, callback: OutcomeCallback) -> None:
        raise NotImplementedError("the bench only routes")


RAILS = (
    BenchRail("ach", ChannelKind.BANK_WIRE, 25, 0, DAY_US, 0.99),
    BenchRail("rtp", ChannelKind.INSTANT_CREDIT, 45, 0, 10 * SECOND_US, 0.995,
              max_minor=10_000_000),
    BenchRail("wire", ChannelKind.BANK_WIRE, 1_500, 0, 4 * HOUR_US, 0.999,
              cutoff=(WEEKDAYS_13_TO_22,)),
    BenchRail("card-push", ChannelKind.CARD_ACQUIRER, 5, 100, 30 * SECOND_US, 0.98,
              max_minor=2_500_000),
    BenchRail("stablecoin", ChannelKind.STABLECOIN_RAIL, 10, 10, 60 * SECOND_US, 0.985),
    BenchRail("fintech-x", ChannelKind.INSTANT_CREDIT, 15, 5, 2 * HOUR_US, 0.99),
    BenchRail("sepa-bridge", ChannelKind.BANK_WIRE, 30, 2, 6 * HOUR_US, 0.97),
    BenchRail("evm-l2", ChannelKind.EVM_L2, 8, 15, 20 * SECOND_US, 0.96),
)


def amount(rng: random.Random) -> int:
    low, high = math.log(AMOUNT_MIN_MINOR), math.log(AMOUNT_MAX_MINOR)
    return int(math.exp(rng.uniform(low, high)))


def percentile_us(samples_ns: list[int], share: float) -> float:
    ordered = sorted(samples_ns)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))] / 1_000


def emit(workload: str, value: float, unit: str, baseline: str, baseline_value: float,
         **extra: object) -> None:
    print(json.dumps({
        "bench": "routing",
        "workload": workload,
        "value": round(value, 3),
        "unit": unit,
        "baseline": baseline,
        "baseline_value": round(baseline_value, 3),
        "ratio": round(value / baseline_value, 3) if baseline_value else None,
        **extra,
    }), flush=True)


def bench_latency(decisions: int) -> None:
    liquidity = {rail.id: LIQUIDITY_MINOR for rail in RAILS}
    routers = [(Router(RAILS[:count], seed=count), RAILS[:count]) for count in range(4, 9)]
    rng = random.Random(1)
    decide_ns: list[int] = []
    quotes_ns: list[int] = []
    clock = time.perf_counter_ns
    warm_up = decisions // 20
    for index in range(warm_up + decisions):
        router, rails = routers[index % len(routers)]
        amount_minor = amount(rng)
        at_us = MONDAY_NOON_US + index * SECOND_US
        started = clock()
        decision = router.decide("p", "USD", amount_minor, at_us, liquidity=liquidity)
        decided = clock()
        for rail in rails:
            rail.quote("USD", amount_minor, at_us)
        quoted = clock()
        if index >= warm_up:
            decide_ns.append(decided - started)
            quotes_ns.append(quoted - decided)
        if decision.channel is not None:
            router.record(decision.channel, "USD", rng.random() < 0.93, at_us)
    extra = {"decisions": decisions, "candidates": "4-8", "target_p99_us": 200}
    for name, share in (("p50", 0.50), ("p99", 0.99)):
        emit(f"decision_latency_{name}", percentile_us(decide_ns, share), "us",
             f"quotes_only_{name}", percentile_us(quotes_ns, share), **extra)


@dataclass
class Tally:
    payments: int = 0
    succeeded: int = 0
    first_attempt_succeeded: int = 0
    attempts: int = 0
    cost_minor: int = 0  # fees of every attempt + failure costs
    float_minor: float = 0.0  # value of time of every attempt


def world(seed: int) -> tuple[tuple[BenchRail, ...], dict[str, float]]:
    rng = random.Random(seed)
    rails = RAILS[:6]
    true_success = {
        rail.id: max(0.05, rail.quoted_success - rng.uniform(0.0, OVERCLAIM_MAX))
        for rail in rails
    }
    return rails, true_success


def human_priority(rails: Sequence[BenchRail]) -> list[str]:
    def price(rail: BenchRail) -> tuple[int, float]:
        quote = rail.quote("USD", MEDIAN_AMOUNT_MINOR, MONDAY_NOON_US)
        return quote.fee_minor, -quote.success_probability

    return [rail.id for rail in sorted(rails, key=price)]


def route_all(router: RoutingStrategy, payments: list[tuple[int, int, list[float]]],
              rails: Sequence[BenchRail], true_success: dict[str, float],
              policy: RoutingPolicy) -> Tally:
    liquidity = {rail.id: LIQUIDITY_MINOR for rail in rails}
    by_id = {rail.id: rail for rail in rails}
    column = {rail.id: position for position, rail in enumerate(rails)}
    tally = Tally()
    float_per_us_per_minor = policy.time_value_bps_per_year / (BPS_PER_UNIT * US_PER_YEAR)
    for index, (at_us, amount_minor, draws) in enumerate(payments):
        tally.payments += 1
        tried: list[str] = []
        for _ in range(policy.max_attempts):
            decision = router.decide(f"p{index}", "USD", amount_minor, at_us,
                                     liquidity=liquidity, exclude=tried)
            if decision.channel is None:
                break
            channel = decision.channel
            tried.append(channel)
            quote = by_id[channel].quote("USD", amount_minor, at_us)
            tally.attempts += 1
            tally.cost_minor += quote.fee_minor
            tally.float_minor += amount_minor * float_per_us_per_minor * quote.latency_us
            success = draws[column[channel]] < true_success[channel]
            router.record(channel, "USD", success, at_us)
            if success:
                tally.succeeded += 1
                tally.first_attempt_succeeded += len(tried) == 1
                break
            tally.cost_minor += policy.failure_cost("USD")
    return tally


def bench_learning(worlds: int, payments_per_world: int) -> None:
    policy = RoutingPolicy(failure_cost_minor={"USD": FAILURE_COST_MINOR})
    learned, fixed = Tally(), Tally()
    for seed in range(worlds):
        rails, true_success = world(seed)
        traffic = random.Random(1_000 + seed)
        at_us = MONDAY_NOON_US
        payments = []
        for _ in range(payments_per_world):
            at_us += int(traffic.expovariate(0.5) * SECOND_US)
            payments.append((at_us, amount(traffic), [traffic.random() for _ in rails]))
        for router, tally in (
            (Router(rails, policy=policy, seed=seed), learned),
            (FixedPriorityRouter(rails, human_priority(rails), policy=policy), fixed),
        ):
            result = route_all(router, payments, rails, true_success, policy)
            tally.payments += result.payments
            tally.succeeded += result.succeeded
            tally.first_attempt_succeeded += result.first_attempt_succeeded
            tally.attempts += result.attempts
            tally.cost_minor += result.cost_minor
            tally.float_minor += result.float_minor
    extra = {
        "worlds": worlds,
        "payments": learned.payments,
        "attempts_per_payment": round(learned.attempts / learned.payments, 3),
        "baseline_attempts_per_payment": round(fixed.attempts / fixed.payments, 3),
        "failure_cost_minor": FAILURE_COST_MINOR,
    }
    baseline = "fixed_priority_cheapest_quoted_first"
    emit("learned_vs_fixed_cost_per_payment", learned.cost_minor / learned.payments,
         "minor_units/payment", baseline, fixed.cost_minor / fixed.payments, **extra)
    emit("learned_vs_fixed_cost_with_float_per_payment",
         (learned.cost_minor + learned.float_minor) / learned.payments, "minor_units/payment",
         baseline, (fixed.cost_minor + fixed.float_minor) / fixed.payments, **extra)
    emit("learned_vs_fixed_success_rate", learned.succeeded / learned.payments, "share",
         baseline, fixed.succeeded / fixed.payments, **extra)
    emit("learned_vs_fixed_first_attempt_success_rate",
         learned.first_attempt_succeeded / learned.payments, "share",
         baseline, fixed.first_attempt_succeeded / fixed.payments, **extra)


def main() -> None:
    tune_gc()  # as every fundpool entry point does at start
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the decision counts")
    args = parser.parse_args()
    bench_latency(max(1_000, int(DECISIONS * args.scale)))
    bench_learning(WORLDS, max(500, int(PAYMENTS_PER_WORLD * args.scale)))


if __name__ == "__main__":
    main()
