"""Treasury arithmetic: multilateral netting and gridlock resolution of a million obligations
among 10,000 participants (`treasury.netting`, target: < 5 s), beside gross settlement of the
same obligations one by one (RTGS) measured in the same run; and commission splits per second
(`treasury.split`), beside a naive floor-per-part split.

Prints one JSON line per figure:
  {"bench": "treasury", "workload": ..., "value": ..., "unit": ..., "baseline": ...,
   "baseline_value": ..., "ratio": ..., "target": ..., ...}

The inputs are generated from a seed, not timed. Obligations: payer and payee drawn uniformly
among the participants (never the same), amounts log-normal around 220.00 (a long tail up to
~1,000,000.00). Balances: each participant holds `--liquidity-percent` of what it owes in the
cycle, gross (about 10 % of the obligations then queue under gridlock resolution).

Workloads, each timed as one call (the process's GC as the entry points set it,
`runtime.tune_gc`, collected before the clock starts):
- `net`: `netting.net` over every obligation: positions, gross, net, efficiency;
- `settle_gridlock`: `netting.settle` with those balances: the largest-first queue;
- both beside `gross_rtgs`: the obligations in order, each settled at once when its payer's
  balance covers it and rejected otherwise: one pass, the least a settlement engine does;
- `split`: `split.split_many` of a 3-part rule (2.9 % + 0.30 capped at 50.00; tiers 1 % to
  1,000.00 then 0.5 %; 0.25 % with a 0.10 floor) over `--amounts` amounts, beside the same
  rule computed naively (floor of each part, the merchant the rest: no exact fractions, no
  largest remainder); `split_values` is `split.split`, one tuple of Share values per amount.

Usage: python bench/netting.py [--obligations 1000000] [--participants 10000]
                               [--amounts 200000] [--liquidity-percent 1.3] [--seed 0]
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import time
from collections.abc import Callable, Sequence
from fractions import Fraction
from typing import TypeVar

from fundpool.runtime import tune_gc
from fundpool.treasury.netting import Obligation, net, settle
from fundpool.treasury.split import SplitRule, rule_from_mapping, split, split_many

NET_TARGET_S = 5
AMOUNT_MAX_MINOR = 1_000_000_00

RULE = {
    "id": "marketplace",
    "remainder": "merchant:m1",
    "parts": [
        {"party": "platform", "role": "platform", "percent": "2.9", "fixed": 30, "cap": 50_00},
        {"party": "partner:p1", "role": "partner",
         "tiers": [{"up_to": 1_000_00, "percent": "1"}, {"percent": "0.5"}]},
        {"party": "agent:a1", "role": "agent", "percent": "0.25", "floor": 10},
    ],
}

_Result = TypeVar("_Result")


def timed(call: Callable[[], _Result]) -> tuple[_Result, float]:
    gc.collect()
    started = time.perf_counter()
    result = call()
    return result, time.perf_counter() - started


def emit(workload: str, value: float, unit: str, baseline: str, baseline_value: float,
         **extra: object) -> None:
    print(json.dumps({
        "bench": "treasury",
        "workload": workload,
        "value": round(value, 3),
        "unit": unit,
        "baseline": baseline,
        "baseline_value": round(baseline_value, 3),
        "ratio": round(value / baseline_value, 3) if baseline_value else None,
        **extra,
    }), flush=True)


def amount(rng: random.Random) -> int:
    return min(int(rng.lognormvariate(10, 1.5)) + 1, AMOUNT_MAX_MINOR)


def generate(count: int, participants: int, seed: int) -> tuple[list[str], list[Obligation]]:
    rng = random.Random(seed)
    names = [f"bank-{i:05d}" for i in range(participants)]
    obligations = []
    for _ in range(count):
        payer = rng.randrange(participants)
        payee = rng.randrange(participants - 1)
        payee += payee >= payer
        obligations.append(Obligation(names[payer], names[payee], amount(rng)))
    return names, obligations


def gross_rtgs(obligations: Sequence[Obligation], balances: dict[str, int]) -> int:
    """The baseline: each obligation in order, settled when its payer's balance covers it."""
    balance = dict(balances)
    settled = 0
    for obligation in obligations:
        payer, amount_minor = obligation.payer, obligation.amount_minor
        if balance[payer] >= amount_minor:
            balance[payer] -= amount_minor
            balance[obligation.payee] += amount_minor
            settled += 1
    return settled


def naive_split(amounts: Sequence[int]) -> list[tuple[int, ...]]:
    """The baseline split: each part floored on its own, the merchant the rest."""
    out = []
    for amount_minor in amounts:
        platform = min(amount_minor * 29 // 1000 + 30, 50_00, amount_minor)
        partner = (amount_minor // 100 if amount_minor <= 1_000_00
                   else 1_000 + (amount_minor - 1_000_00) // 200)
        partner = min(partner, amount_minor - platform)
        agent = min(max(amount_minor // 400, 10), amount_minor - platform - partner)
        out.append((platform, partner, agent, amount_minor - platform - partner - agent))
    return out


def bench_netting(args: argparse.Namespace) -> None:
    started = time.perf_counter()
    names, obligations = generate(args.obligations, args.participants, args.seed)
    owed = dict.fromkeys(names, 0)
    for obligation in obligations:
        owed[obligation.payer] += obligation.amount_minor
    share = Fraction(args.liquidity_percent) / 100
    balances = {name: int(owed[name] * share) for name in names}
    generate_s = time.perf_counter() - started

    netted, net_s = timed(lambda: net(obligations))
    gross_settled, gross_s = timed(lambda: gross_rtgs(obligations, balances))
    size = {"obligations": len(obligations), "participants": len(names),
            "generate_s": round(generate_s, 1)}
    emit("net", net_s, "s", "gross_rtgs", gross_s, target=NET_TARGET_S,
         obligations_per_s=round(len(obligations) / net_s),
         gross_minor=netted.gross_minor, net_minor=netted.net_minor,
         efficiency=round(float(netted.efficiency), 4), **size)
    del netted

    result, settle_s = timed(lambda: settle(obligations, balances))
    emit("settle_gridlock", settle_s, "s", "gross_rtgs", gross_s, target=NET_TARGET_S,
         liquidity_percent=args.liquidity_percent,
         queued_share=round(len(result.queued) / len(obligations), 4),
         queued_value_share=round(result.queued_minor / (result.queued_minor
                                                          + result.gross_minor), 4),
         efficiency=round(float(result.efficiency), 4),
         gross_rtgs_rejected_share=round(1 - gross_settled / len(obligations), 4), **size)


def bench_split(args: argparse.Namespace) -> None:
    rng = random.Random(args.seed + 1)
    amounts = [amount(rng) for _ in range(args.amounts)]
    rule: SplitRule = rule_from_mapping(RULE)
    shares, split_s = timed(lambda: split_many(rule, amounts))
    naive, naive_s = timed(lambda: naive_split(amounts))
    differ = sum(exact != floored for exact, floored in zip(shares, naive, strict=True))
    values, values_s = timed(lambda: [split(rule, a) for a in amounts])
    del values
    emit("split", len(amounts) / split_s, "splits/s", "naive_floor_per_part",
         len(amounts) / naive_s, amounts=len(amounts), parts=len(rule.parts),
         split_values_per_s=round(len(amounts) / values_s),
         differ_from_naive_share=round(differ / len(amounts), 4))


def main() -> None:
    tune_gc()  # as every fundpool entry point does at start
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--obligations", type=int, default=1_000_000)
    parser.add_argument("--participants", type=int, default=10_000)
    parser.add_argument("--amounts", type=int, default=200_000, help="amounts to split")
    parser.add_argument("--liquidity-percent", default="1.3",
                        help="each participant's balance, in percent of what it owes")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    bench_netting(args)
    bench_split(args)


if __name__ == "__main__":
    main()
