"""What the demo's risk policy catches of the simulator's injected fraud patterns: recall per
pattern, precision, and the share of ordinary payouts it stops (issue 16, point 4).

The traffic simulator labels the payments of its fraud-like patterns in their metadata
(`pattern`: velocity_burst, structuring, round_amount_new_payee, mule). The policy
(examples/risk-policy.yaml) never reads those labels: it sees what a real pool sees (payee,
amounts, destinations, times). This script runs the simulator through the payment engine's
screening step on a fresh SQLite store (a simulated clock, deterministic for a seed), then,
and only then, compares each payout's decision with its label. A payout is *flagged* when its
decision is not `allow`.

Prints one JSON line per figure:
  {"bench": "risk_patterns", "workload": "recall_<pattern>" | "precision" |
   "clean_flagged_share", "value": ..., "unit": "share", "baseline": ..., ...}
The baseline of a recall is the share of all payouts flagged (what flagging at random at the
same rate would catch); of the precision, the share of payouts that carry a pattern.

`--policy anomaly` runs the same with a policy of one group, the online anomaly model alone
(`anomaly: {score_over: 0.9}`), to report what the model catches by itself.

Usage: python bench/risk_patterns.py [--seconds 600] [--rate 50] [--seed 7]
                                     [--policy rules|anomaly]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections import Counter
from pathlib import Path

from fundpool import compose
from fundpool.core.actor import Actor
from fundpool.core.clock import ManualClock, Uuid7Ids
from fundpool.payments.model import PaymentKind
from fundpool.payments.ports import PaymentFilter
from fundpool.pool.config import load_config
from fundpool.risk.sanctions import shipped_list
from fundpool.runtime import tune_gc
from fundpool.stores.sqlite import SqliteStore

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "examples" / "pool.toml"
POLICY = ROOT / "examples" / "risk-policy.yaml"
AUTHOR = Actor("user", "bench-risk", "risk officer", ("risk",))
CHECKER = Actor("user", "bench-admin", "admin", ("admin",))
PATTERNS = ("velocity_burst", "structuring", "round_amount_new_payee", "mule")
ANOMALY_ONLY = """\
thresholds: {review: 40, hold: 70, block: 100}
groups:
  - name: unusual for the model
    when: [{payment: {kinds: [payout]}}, {anomaly: {score_over: 0.9}}]
    score: 40
"""


def run(seconds: float, rate: float, seed: int, which: str = "rules"
        ) -> list[dict[str, object]]:
    with tempfile.TemporaryDirectory() as root:
        store = SqliteStore(Path(root) / "ledger.sqlite3")
        store.initialise()
        config = load_config(CONFIG)
        pool = config.pool(None)
        clock = ManualClock()
        ids = Uuid7Ids.seeded(seed)
        payments = compose.payment_service(store, config, pool, clock=clock, ids=ids)
        risk = compose.risk_service(store, config, lambda _pool: payments, clock=clock)
        risk.load_list("synthetic-opensanctions", shipped_list("synthetic.ftm.json"), AUTHOR)
        text = POLICY.read_text(encoding="utf-8") if which == "rules" else ANOMALY_ONLY
        draft = risk.draft(text, AUTHOR)
        risk.activate(draft.version, CHECKER)
        simulation = compose.simulation(
            compose.ledger(store, clock, ids), config, pool, seed=seed, clock=clock, ids=ids,
            screening=compose.risk_engine(store, config, pool, clock=clock, ids=ids))
        simulation.open_pool()
        simulation.run(rate_per_s=rate, duration_s=seconds,
                       advance=lambda s: clock.advance(seconds=s))
        records = compose.payment_records(store)
        labelled: Counter[str] = Counter()
        caught: Counter[str] = Counter()
        flagged = total = flagged_clean = clean = 0
        after: str | None = None
        while True:
            page = records.payments(PaymentFilter(pool.id, kind=PaymentKind.PAYOUT),
                                    limit=1_000, after_id=after)
            for payment in page:
                decision = risk.store.decision(payment.id)
                if decision is None:
                    continue
                total += 1
                hit = decision.outcome != "allow"
                flagged += hit
                pattern = payment.metadata.get("pattern")
                if pattern is None:
                    clean += 1
                    flagged_clean += hit
                else:
                    labelled[pattern] += 1
                    caught[pattern] += hit
            if len(page) < 1_000:
                break
            after = page[-1].id
        store.close()
    flagged_share = flagged / total if total else 0.0
    suffix = "" if which == "rules" else "_anomaly_model"
    common = {"bench": "risk_patterns", "unit": "share", "payouts": total,
              "simulated_s": seconds, "rate_per_s": rate, "seed": seed,
              "policy": "examples/risk-policy.yaml" if which == "rules" else "anomaly model"}
    lines: list[dict[str, object]] = []
    for pattern in PATTERNS:
        n = labelled[pattern]
        recall = caught[pattern] / n if n else 0.0
        lines.append({**common, "workload": f"recall_{pattern}{suffix}", "value": round(recall, 3),
                      "baseline": "share_of_payouts_flagged",
                      "baseline_value": round(flagged_share, 3),
                      "ratio": round(recall / flagged_share, 1) if flagged_share else None,
                      "labelled": n, "caught": caught[pattern]})
    patterned = sum(labelled.values())
    precision = (flagged - flagged_clean) / flagged if flagged else 0.0
    lines.append({**common, "workload": f"precision{suffix}", "value": round(precision, 3),
                  "baseline": "share_of_payouts_with_a_pattern",
                  "baseline_value": round(patterned / total, 3) if total else 0.0,
                  "ratio": round(precision / (patterned / total), 1) if patterned else None,
                  "flagged": flagged})
    lines.append({**common, "workload": f"clean_flagged_share{suffix}",
                  "value": round(flagged_clean / clean, 4) if clean else 0.0,
                  "baseline": "share_of_payouts_flagged",
                  "baseline_value": round(flagged_share, 4), "clean": clean,
                  "flagged_clean": flagged_clean})
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=600.0)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--policy", choices=("rules", "anomaly"), default="rules")
    args = parser.parse_args()
    tune_gc()
    for line in run(args.seconds, args.rate, args.seed, args.policy):
        print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
