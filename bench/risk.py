"""Risk decisions in the payment path: how long one takes with 30 active rules and a 100,000-name
screening list, against a decision with no rule, in the same run (issue 16, point 2).

Prints one JSON line per figure:
  {"bench": "risk", "workload": ..., "value": ..., "unit": "us", "baseline": ...,
   "baseline_value": ..., "ratio": ..., ...}

The features (and the anomaly model) are warmed with 50,000 past payouts to 2,000 payees over
six hours (as the engine's rebuild would replay them). Then 20,000 payouts are decided one at
a time, a second apart, each as the engine's screening step does it: the active policy's
verdict (every group's conditions, the sanctions screening of the payee's name against the
list), the decision's detail, the anomaly model's score and its learning, and the features
observing it. One payee name in fifty is a listed name (some misspelt, reordered or in
another script), the rest ordinary payees. The baseline is the same step with no policy
active: the verdict `allow`, the detail, the observation.
p50, p99 and p99.9 in microseconds; the target is p99 < 2 ms.

Usage: python bench/risk.py [--names 100000] [--decisions 20000]
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import statistics
import time
from collections.abc import Sequence

from fundpool.risk.engine import Learner, Loaded, RiskState, decision_detail
from fundpool.risk.policy import Outcome, parse_policy
from fundpool.risk.rules import Party, Subject
from fundpool.risk.screening import Screener, generate
from fundpool.runtime import tune_gc

S = 1_000_000
T0 = 1_767_225_600_000_000 + 12 * 3_600 * S
SCALES = {"USD": 2, "EUR": 2}
PAYEES = 2_000

# Thirty groups of every kind the engine has (sanctions among them), as a busy pool's policy.
POLICY = """\
thresholds: {review: 40, hold: 70, block: 100}
lists:
  blocked_payees: [mule-king, shell-co-7, "Blocked Trading LLC"]
  trusted: [payroll-provider, tax-office]
  watched_destinations: [ACCT-0000000001, ACCT-0000000002]
groups:
  - {name: sanctioned, when: [{sanctions: {threshold: 88}}], outcome: block}
  - {name: blocked payee, when: [{listed: {field: payee, list: blocked_payees}}], outcome: block}
  - {name: trusted, when: [{listed: {field: payee, list: trusted}}], outcome: allow}
  - {name: jurisdiction, when: [{jurisdiction: {countries: [KP, IR, SY, CU]}}], outcome: block}
  - {name: kyc missing, when: [{kyc: {states: [rejected, expired]}}], score: 50}
  - {name: burst 1m, when: [{velocity: {per: payee, window: 1m, count_over: 4}}], score: 45}
  - {name: burst 10m, when: [{velocity: {per: payee, window: 10m, count_over: 12}}], score: 30}
  - {name: burst 1h amount, when: [{velocity: {per: payee, window: 1h,
                                               amount_over: {USD: "50000.00"}}}], score: 30}
  - {name: initiator 1m, when: [{velocity: {per: initiator, window: 1m, count_over: 60}}],
     score: 20}
  - {name: destination 10m, when: [{velocity: {per: destination, window: 10m,
                                               count_over: 10}}], score: 30}
  - {name: daily payee, when: [{daily_total: {per: payee, over: {USD: "100000.00"}}}],
     score: 30}
  - {name: daily initiator, when: [{daily_total: {per: initiator, over: {USD: "1000000.00"}}}],
     score: 20}
  - {name: duplicate, when: [{duplicate: {window: 10m}}], score: 40}
  - {name: new and large, when: [{new_payee: {}}, {amount: {over: {USD: "2000.00"}}}],
     score: 40}
  - {name: new and round, when: [{new_payee: {}}, {round_amount: {multiple: {USD: "1000.00"}}}],
     score: 45}
  - {name: round large, when: [{round_amount: {multiple: {USD: "5000.00"}}}], score: 15}
  - {name: just under, when: [{amount: {over: {USD: "9500.00"}, under: {USD: "10000.00"}}}],
     score: 40}
  - {name: very large, when: [{amount: {over: {USD: "50000.00"}}}], score: 30}
  - {name: abnormal, when: [{abnormal_amount: {times: 10, min_history: 3}}], score: 40}
  - {name: abnormal 5x, when: [{abnormal_amount: {times: 5, min_history: 10}}], score: 20}
  - {name: destination changed, when: [{destination_changed: {within: 7d}}], score: 25}
  - {name: watched destination, when: [{listed: {field: destination,
                                                 list: watched_destinations}}], score: 35}
  - {name: payout on card, when: [{payment: {kinds: [payout], channels: [card-acq]}},
                                  {amount: {over: {USD: "3000.00"}}}], score: 20}
  - {name: eur large, when: [{payment: {assets: [EUR]}}, {amount: {over: {EUR: "20000.00"}}}],
     score: 25}
  - {name: new payee burst, when: [{new_payee: {}}, {velocity: {per: initiator, window: 1m,
                                                                count_over: 20}}], score: 30}
  - {name: kyc pending large, when: [{kyc: {states: [pending]}},
                                     {amount: {over: {USD: "5000.00"}}}], score: 35}
  - {name: changed and large, when: [{destination_changed: {within: 1d}},
                                     {amount: {over: {USD: "5000.00"}}}], score: 30}
  - {name: burst small, when: [{velocity: {per: payee, window: 1m, count_over: 2}},
                               {amount: {under: {USD: "10.00"}}}], score: 25}
  - {name: shared account, when: [{ring: {min_payees: 3}}], score: 30}
  - {name: unusual for the model, when: [{payment: {kinds: [payout]}},
                                         {anomaly: {score_over: 0.9}}], score: 20}
"""


def percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def amount(rng: random.Random) -> int:
    decade = rng.choices((0, 1, 2, 3, 4), (20, 35, 30, 12, 3))[0]
    return rng.randrange(10 ** decade * 100, 10 ** (decade + 1) * 100)


def destination(payee: str) -> str:
    return f"ACCT-{abs(hash(payee)) % 10**10:010d}"


def run(names: int, decisions: int, seed: int) -> list[dict[str, object]]:
    rng = random.Random(seed)
    started = time.perf_counter()
    entries = generate(names, seed)
    built = time.perf_counter()
    screener = Screener(entries)
    index_s = time.perf_counter() - built
    policy = parse_policy(POLICY, SCALES)
    assert len(policy.document.groups) == 30
    listed = [e.names[rng.randrange(len(e.names))] for e in rng.sample(entries, 400)]

    def warmed(with_policy: bool) -> Learner:
        learner = Learner(policy if with_policy else None, SCALES)
        for i in range(50_000):
            payee = f"payee-{rng.randrange(PAYEES)}"
            at = T0 - 6 * 3_600 * S + i * 432_000  # 0.43 s apart, six hours
            learner.observe(Subject(f"w-{i}", "payout", "USD", amount(rng), at, None, payee,
                                    destination(payee), f"ref-{i}", "user:cashier"),
                            learn=True)
        return learner

    def subjects() -> list[Subject]:
        made = []
        for i in range(decisions):
            payee = listed[i // 50 % len(listed)] if i % 50 == 0 \
                else f"payee-{rng.randrange(PAYEES)}"
            made.append(Subject(f"p-{i}", "payout", "USD", amount(rng), T0 + i * S, None,
                                payee, destination(payee), f"r-{i}", "user:cashier"))
        return made

    def timed(state: RiskState, learner: Learner, batch: list[Subject]
              ) -> tuple[list[float], dict[str, int]]:
        spent: list[float] = []
        outcomes: dict[str, int] = {}
        gc.collect()
        for subject in batch:
            began = time.perf_counter_ns()
            verdict = state.verdict(subject, learner.features, learner.score(subject))
            decision_detail(subject, verdict)
            learner.observe(subject, learn=verdict.outcome is not Outcome.BLOCK)
            spent.append((time.perf_counter_ns() - began) / 1_000)
            outcomes[verdict.outcome.value] = outcomes.get(verdict.outcome.value, 0) + 1
        return spent, outcomes

    state = RiskState.__new__(RiskState)
    state.loaded, state.screener, state.cleared = Loaded.of(1, policy), screener, set()
    state.limits = []
    state.parties = {f"payee-{i}": Party("pending" if i % 7 == 0 else "verified",
                                         "KP" if i == 13 else "GB") for i in range(PAYEES)}
    none = RiskState.__new__(RiskState)
    none.loaded, none.screener, none.cleared, none.parties = None, screener, set(), {}
    none.limits = []
    batch = subjects()
    with_rules, outcomes = timed(state, warmed(True), batch)
    without, _ = timed(none, warmed(False), batch)
    total_s = time.perf_counter() - started
    common = {"bench": "risk", "unit": "us", "baseline": "no_rule_decision",
              "rules": len(policy.document.groups), "screening_names": names,
              "decisions": decisions, "index_build_s": round(index_s, 2),
              "outcomes": outcomes, "run_s": round(total_s, 1)}
    lines = []
    for name, share in (("p50", 0.50), ("p99", 0.99), ("p999", 0.999)):
        value, base = percentile(with_rules, share), percentile(without, share)
        lines.append({**common, "workload": f"decision_{name}", "value": round(value, 1),
                      "baseline_value": round(base, 1), "ratio": round(value / base, 1),
                      **({"target": 2_000} if name == "p99" else {})})
    mean = statistics.fmean(with_rules)
    lines.append({**common, "workload": "decision_mean", "value": round(mean, 1),
                  "baseline_value": round(statistics.fmean(without), 1),
                  "ratio": round(mean / statistics.fmean(without), 1)})
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--names", type=int, default=100_000)
    parser.add_argument("--decisions", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=16)
    args = parser.parse_args()
    tune_gc()
    for line in run(args.names, args.decisions, args.seed):
        print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
