"""Liquidity planning (issue 19): the rebalancing planner on 50 channels x 10 assets (target:
< 100 ms on CPython) beside a greedy plan timed in the same run, the two plans' fees, and a
24-hour stress run on the same pool.

Prints one JSON line per figure:
  {"bench": "treasury", "workload": ..., "value": ..., "unit": ..., "baseline": ...,
   "baseline_value": ..., "ratio": ..., "target": ..., ...}

The pool is generated from a seed, not timed: 50 channels, each holding the 10 assets; every
position has a band (target 1,000.00 to 100,000.00, minimum half of it, maximum twice) and
routes to every other channel of its asset (a full mesh, 24,500 routes): a fixed fee of 0,
1.00, 5.00 or 25.00, 0 to 20 basis points, 1 s to a day. In the `stressed` pool 15 % of
positions are below their minimum and 15 % above their maximum; in the `typical` pool 5 % and
5 %; the rest anywhere within their bands.

- `rebalance_plan_<pool>`: one `plan_rebalance` call, the median of `--runs` (the process's GC
  as the entry points set it, `runtime.tune_gc`, collected before each). The baseline is a
  greedy plan on the same pool, timed the same way: each position below its minimum, the
  neediest first, is filled to its target from the position with the largest surplus above its
  target that a route reaches; then each position above its maximum sends its excess to the
  position with the most room below its target; the source pays the fee on top, no cost is
  compared. It is what a spreadsheet does.
- `rebalance_fees_<pool>`: the plan's fees against the greedy plan's, summed over the ten
  assets (every asset here has two decimals and positions of the same size, so the sum
  compares like with like), with the money each leaves outside the bands beside it: a plan
  that leaves less outside may pay more.
- `stress_run_24h`: one `stress.run` of a 24-hour run on the same channels, assets and routes,
  every position at its target, 90 % of the holdings owed to customers, payouts of 1 % to 4 %
  of a target an hour and deposits of 0.5 % to 2 % (at half during the run), 80 % of the
  liabilities withdrawn over 24 hours (a run the pool does not survive), three channels out
  for 6 hours, a credit line on a fifth of the positions; median of `--runs`. The baseline is
  the least an hourly simulation does, the same hours paying each position's share of the
  demand from its balance, with no moves, no credit and no report.

Usage: python bench/liquidity.py [--runs 15] [--seed 0]
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from fractions import Fraction
from typing import TypeVar

from fundpool.runtime import tune_gc
from fundpool.treasury.bands import Band, Position
from fundpool.treasury.credit import CreditFacility
from fundpool.treasury.rebalance import Route, apply_plan, plan_rebalance
from fundpool.treasury.stress import Outage, Scenario, StressState, run
from netting import emit  # the treasury benches' one JSON line (bench/netting.py)

ASSETS = ("USD", "EUR", "GBP", "CHF", "JPY", "CAD", "AUD", "USDT", "USDC", "E-CNY")
CHANNELS = 50
TARGET_MS = 100
_Result = TypeVar("_Result")


class Pool:
    """A seeded pool of `CHANNELS` channels holding every asset of `ASSETS`."""

    def __init__(self, seed: int, outside_share: float) -> None:
        rng = random.Random(seed)
        self.channels = [f"ch-{i:02d}" for i in range(CHANNELS)]
        self.bands: dict[Position, Band] = {}
        self.balances: dict[Position, int] = {}
        self.routes: list[Route] = []
        for asset in ASSETS:
            for channel in self.channels:
                target = rng.randint(1_000, 100_000) * 100
                low, high = target // 2, target * 2
                self.bands[(channel, asset)] = Band(channel, asset, low, target, high)
                draw = rng.random()
                if draw < outside_share:
                    balance = rng.randint(0, low - 1)
                elif draw < 2 * outside_share:
                    balance = rng.randint(high + 1, 2 * high)
                else:
                    balance = rng.randint(low, high)
                self.balances[(channel, asset)] = balance
            for source in self.channels:
                for destination in self.channels:
                    if source != destination:
                        self.routes.append(Route(
                            source, destination, asset, rng.choice([0, 1_00, 5_00, 25_00]),
                            Fraction(rng.randint(0, 20)), rng.choice([1, 2, 30, 3_600, 86_400])))


def greedy(bands: Mapping[Position, Band], balances: Mapping[Position, int],
           routes: Sequence[Route]) -> list[tuple[Route, int]]:
    """The baseline plan (see the module's docstring): (route, amount) pairs."""
    quotes = {(r.source, r.destination, r.asset): r for r in routes}
    left = dict(balances)
    moves: list[tuple[Route, int]] = []
    for asset in sorted({a for _, a in bands}):
        positions = sorted(c for c, a in bands if a == asset)

        def move(source: str, destination: str, wanted: int, floor: int,
                 asset: str = asset) -> int:
            route = quotes.get((source, destination, asset))
            if route is None:
                return 0
            spare = left[(source, asset)] - floor  # amount and fee must fit in it
            if spare <= route.fee_fixed_minor:
                return 0
            amount = min(wanted, int((spare - route.fee_fixed_minor)
                                     / (1 + route.fee_bps / 10_000)))
            while amount > 0 and amount + route.fee_minor(amount) > spare:
                amount -= 1  # the fee's rounding
            if amount <= 0:
                return 0
            left[(source, asset)] -= amount + route.fee_minor(amount)
            left[(destination, asset)] += amount
            moves.append((route, amount))
            return amount

        needy = sorted((c for c in positions if left[(c, asset)] < bands[(c, asset)].min_minor),
                       key=lambda c: left[(c, asset)] - bands[(c, asset)].min_minor)
        for channel in needy:
            need = bands[(channel, asset)].target_minor - left[(channel, asset)]
            givers = sorted((c for c in positions if c != channel
                             and (c, channel, asset) in quotes),
                            key=lambda c: left[(c, asset)] - bands[(c, asset)].target_minor,
                            reverse=True)
            for giver in givers:
                if need <= 0:
                    break
                need -= move(giver, channel, need, bands[(giver, asset)].target_minor)
        for channel in positions:
            band = bands[(channel, asset)]
            excess = left[(channel, asset)] - band.target_minor
            if left[(channel, asset)] <= band.max_minor:
                continue
            takers = sorted((c for c in positions if c != channel
                             and (channel, c, asset) in quotes),
                            key=lambda c: bands[(c, asset)].target_minor - left[(c, asset)],
                            reverse=True)
            for taker in takers:
                room = bands[(taker, asset)].target_minor - left[(taker, asset)]
                if excess <= 0 or room <= 0:
                    break
                excess -= move(channel, taker, min(excess, room), band.target_minor)
    return moves


def outside_minor(bands: Mapping[Position, Band], balances: Mapping[Position, int]) -> int:
    return sum(max(0, b.min_minor - balances[p], balances[p] - b.max_minor)
               for p, b in bands.items())


def timed(call: Callable[[], _Result], runs: int) -> tuple[float, _Result]:
    """The median wall-clock time of `runs` calls, in seconds, and the last call's result."""
    times = []
    result = call()  # a first call outside the figure: imports, caches
    for _ in range(runs):
        gc.collect()
        started = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def bench_rebalance(pool: Pool, name: str, runs: int) -> None:
    scales = dict.fromkeys(ASSETS, 2)
    plan_s, plan = timed(lambda: plan_rebalance(pool.bands, pool.balances, pool.routes,
                                                scales=scales), runs)
    cpu_started = time.process_time()
    plan_rebalance(pool.bands, pool.balances, pool.routes, scales=scales)
    plan_cpu_s = time.process_time() - cpu_started
    greedy_s, moves = timed(lambda: greedy(pool.bands, pool.balances, pool.routes), runs)
    outside_before = outside_minor(pool.bands, pool.balances)
    planned_after = apply_plan(pool.balances, plan)
    greedy_after = dict(pool.balances)
    greedy_fee = 0
    for route, amount in moves:
        fee = route.fee_minor(amount)
        greedy_fee += fee
        greedy_after[(route.source, route.asset)] -= amount + fee
        greedy_after[(route.destination, route.asset)] += amount
    positions_outside = sum(1 for p, b in pool.bands.items()
                            if not b.min_minor <= pool.balances[p] <= b.max_minor)
    emit(f"rebalance_plan_{name}", plan_s * 1_000, "ms", "greedy_largest_surplus_first",
         greedy_s * 1_000, target=TARGET_MS, channels=CHANNELS, assets=len(ASSETS),
         routes=len(pool.routes), positions_outside_bands=positions_outside,
         plan_cpu_ms=round(plan_cpu_s * 1_000, 1), runs=runs)
    plan_fee = sum(plan.total_fee_minor.values())
    emit(f"rebalance_fees_{name}", plan_fee, "minor units (10 assets, 2 decimals each)",
         "greedy_largest_surplus_first", greedy_fee, target=None,
         transfers=len(plan.transfers), greedy_transfers=len(moves),
         outside_bands_before_minor=outside_before,
         outside_bands_after_minor=outside_minor(pool.bands, planned_after),
         greedy_outside_bands_after_minor=outside_minor(pool.bands, greedy_after),
         unresolved_positions=len(plan.unresolved))


def hourly_drain(state: StressState, scenario: Scenario) -> int:
    """The baseline: each hour, each position pays its share of the demand, nothing else."""
    balances = dict(state.positions)
    unmet = 0
    by_asset: dict[str, list[Position]] = {}
    for position in balances:
        by_asset.setdefault(position[1], []).append(position)
    for hour in range(1, scenario.hours + 1):
        for asset, positions in by_asset.items():
            withdrawn = state.liabilities[asset] * scenario.withdrawal_share
            share = int(withdrawn / scenario.withdrawal_hours) // len(positions) \
                if hour <= scenario.withdrawal_hours else 0
            for position in positions:
                owed = share + state.outflow_per_hour.get(position, 0)
                paid = min(balances[position], owed)
                balances[position] -= paid
                unmet += owed - paid
    return unmet


def stress_state(pool: Pool, seed: int) -> StressState:
    """The pool at its targets, with 90 % of what it holds owed to customers; payouts of 1 % to
    4 % of a position's target an hour and deposits of 0.5 % to 2 %."""
    rng = random.Random(seed + 1)
    balances = {p: b.target_minor for p, b in pool.bands.items()}
    liabilities = {a: sum(b for (_, asset), b in balances.items() if asset == a) * 9 // 10
                   for a in ASSETS}
    outflow = {p: b.target_minor * rng.randint(10, 40) // 1_000 for p, b in pool.bands.items()}
    inflow = {p: b.target_minor * rng.randint(5, 20) // 1_000 for p, b in pool.bands.items()}
    credit = [CreditFacility(f"rcf-{c}-{a.lower()}", c, a, pool.bands[(c, a)].target_minor,
                             Fraction("0.065"), 360)
              for c, a in sorted(pool.bands) if rng.random() < 0.2]
    return StressState(balances, liabilities, inflow, outflow, tuple(credit), {}, pool.routes,
                       dict.fromkeys(ASSETS, Fraction(1)), dict.fromkeys(ASSETS, 2), "USD")


def bench_stress(pool: Pool, runs: int, seed: int) -> None:
    state = stress_state(pool, seed)
    scenario = Scenario("bench run", 24, Fraction("0.8"), 24,
                        tuple(Outage(c, 4, 9) for c in pool.channels[:3]),
                        {"USDT": Fraction("-0.05")}, Fraction("0.5"))
    run_s, report = timed(lambda: run(state, scenario), runs)
    drain_s, _ = timed(lambda: hourly_drain(state, scenario), runs)
    emit("stress_run_24h", run_s * 1_000, "ms", "hourly_drain_no_moves_no_credit",
         drain_s * 1_000, target=None, channels=CHANNELS, assets=len(ASSETS), hours=24,
         routes=len(pool.routes), facilities=len(state.credit),
         survival_horizon_h=report.survival_horizon_h, first_dry=report.first_dry,
         credit_needed_minor=sum(report.credit_needed.values()), runs=runs)


def main() -> None:
    tune_gc()  # as every fundpool entry point does at start
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15, help="timed runs per figure")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    stressed = Pool(args.seed, 0.15)
    bench_rebalance(stressed, "stressed", args.runs)
    bench_rebalance(Pool(args.seed + 1, 0.05), "typical", args.runs)
    bench_stress(stressed, args.runs, args.seed)


if __name__ == "__main__":
    main()
