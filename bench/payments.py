"""Payments through their whole life, with the ledger's batched transfer rate as the baseline.

Prints one JSON line per figure:
  {"bench": "payments", "store": "sqlite", "workload": "payout_lifecycle", "value": ...,
   "unit": "payments/s", "baseline": "ledger_transfers_batch_4096", "baseline_value": ...,
   "ratio": ...}

Method. A pool from examples/pool.toml is set up and funded (not timed). Then batches of
payouts go through create, screen, route, approve, submit and settle: six calls per batch, each
one ledger transaction (`create_many`, then `act_many` per step), three of which post (approve,
submit, settle: four postings per payout). The baseline, in the same run and on the same
store, is the ledger alone accepting single-posting transfers in batches of the same size: a
payout costs at least three of them, so a ratio near 1/3 would mean payments cost nothing
beyond their ledger entries.

Usage: python bench/payments.py [--scale 1.0]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

from fundpool.core.clock import ManualClock, Uuid7Ids
from fundpool.core.ledger.model import Posting, Transfer
from fundpool.ledger.service import Ledger
from fundpool.payments.model import Action, PaymentKind, PaymentRequest
from fundpool.payments.service import PaymentService, Step
from fundpool.pool.accounts import PoolState, pool_account, world_account
from fundpool.pool.config import load_config
from fundpool.pool.setup import init_pool
from fundpool.runtime import tune_gc
from fundpool.stores import payment_store
from fundpool.stores.sqlite import SqliteStore

CONFIG = Path(__file__).resolve().parents[1] / "examples" / "pool.toml"
BATCH = 4_096
STEPS = (Action.SCREEN, Action.ROUTE, Action.APPROVE, Action.SUBMIT, Action.SETTLE)


def main() -> None:
    tune_gc()  # as every fundpool entry point does at start
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the payment count")
    args = parser.parse_args()
    payments_total = max(BATCH, int(40_960 * args.scale) // BATCH * BATCH)
    root = Path(tempfile.mkdtemp(prefix="fundpool-bench-payments-"))
    try:
        config = load_config(CONFIG)
        pool = config.pool("main")
        store = SqliteStore(root / "ledger.sqlite3")
        store.initialise()
        clock = ManualClock()
        ledger = Ledger(store, clock, Uuid7Ids.seeded(1))
        init_pool(ledger, config)
        available = pool_account(pool.id, "USD", "bank-a", PoolState.AVAILABLE)
        ledger.transfer([Posting(world_account("bank-a"), available, "USD", 10**15)])
        service = PaymentService(ledger, payment_store(store), config, pool, Uuid7Ids.seeded(2))

        started = time.perf_counter()
        for _ in range(payments_total // BATCH):
            created = service.create_many(
                [(PaymentRequest(PaymentKind.PAYOUT, "USD", 10_000, counterparty="payee"), None)]
                * BATCH
            )
            ids = [p.id for p in created if not isinstance(p, Exception)]
            if len(ids) != BATCH:
                raise SystemExit(f"creation failed: {created[0]}")
            for action in STEPS:
                channel = "bank-a" if action is Action.ROUTE else None
                outcomes = service.act_many([Step(pid, action, channel) for pid in ids])
                failed = [o for o in outcomes if isinstance(o, Exception)]
                if failed:
                    raise SystemExit(f"{action.value} failed: {failed[0]}")
        payments_s = time.perf_counter() - started

        locked = pool_account(pool.id, "USD", "bank-a", PoolState.LOCKED)
        started = time.perf_counter()
        for _ in range(payments_total // BATCH):
            results = ledger.submit([Transfer((Posting(available, locked, "USD", 1),))] * BATCH)
            if not all(r.ok for r in results):
                raise SystemExit("a baseline transfer was rejected")
        ledger_s = time.perf_counter() - started
        store.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)

    value = payments_total / payments_s
    baseline = payments_total / ledger_s
    print(json.dumps({
        "bench": "payments",
        "store": "sqlite",
        "workload": "payout_lifecycle",
        "value": round(value, 1),
        "unit": "payments/s",
        "baseline": f"ledger_transfers_batch_{BATCH}",
        "baseline_value": round(baseline, 1),
        "ratio": round(value / baseline, 3),
    }), flush=True)


if __name__ == "__main__":
    main()
