"""Payments through their whole life on instant simulated rails, with the ledger's batched
transfer rate as the baseline.

Prints one JSON line per figure:
  {"bench": "payments", "store": "sqlite", "workload": "payout_lifecycle_dispatched", "value":
   ..., "unit": "payments/s", "baseline": "ledger_transfers_batch_4096", "baseline_value": ...,
   "ratio": ...}

Method. The pool of examples/pool.toml is set up and funded (not timed), with its USD rails
(RTP, the wire, the card acquirer) made instant: latency 1 ms, no clearing notice, no
failures or returns, no cut-off, batches of up to 4,096. The payouts name no rail, so every
one is routed by the learning router among them. The timed loop is what a service does:
`Dispatcher.intake` of 4,096 payout requests (create, screen, route, approve: one
transaction), a tick that submits them to the rail (one transaction, then the rail call), the
clock moved past the rail's latency, and a tick that applies the rail's settlements (one
transaction). So each payout goes through create, screen, route, approve, submit and settle,
with its routing decision, route row, batch row and outcome row stored. Approve, submit and
settle post their ledger entries summed per wave (ADR 0008). The payment count is divided by
the wall time of the whole loop.

The baseline, in the same run and on the same kind of store, is the ledger alone accepting
single-posting transfers in batches of 4,096. Booked one entry per payment and step, a payout
would cost three of them (a ratio of 1/3 would then mean payments cost nothing beyond their
entries); summed per wave (ADR 0008) the ledger's share is small, and the ratio shows what the
payment layer, the router and the rails cost against the ledger's raw rate.

A second figure, `payout_lifecycle_service`, drives the payment service directly (no router,
no rail): create and advance to submitted in one call, settle in a second, for the cost of the
payment layer alone.

Usage: python bench/payments.py [--scale 1.0]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from fundpool.core.clock import ManualClock, Uuid7Ids
from fundpool.core.ledger.model import Posting, Transfer
from fundpool.ledger.service import Ledger
from fundpool.payments.dispatch import Dispatcher, DispatchPolicy
from fundpool.payments.model import Action, Payment, PaymentKind, PaymentRequest, PaymentState
from fundpool.payments.service import PaymentService, Step
from fundpool.pool.accounts import PoolState, pool_account, world_account
from fundpool.pool.config import FundpoolConfig, load_config
from fundpool.pool.setup import init_pool
from fundpool.runtime import tune_gc
from fundpool.sim.rails import payout_router, simulated_rails
from fundpool.stores import payment_store
from fundpool.stores.dispatch_sql import SqlDispatchRecords
from fundpool.stores.sqlite import SqliteStore

CONFIG = Path(__file__).resolve().parents[1] / "examples" / "pool.toml"
BATCH = 4_096
INSTANT = {"latency_median_ms": 1, "latency_sigma": 0.1, "failure_rate": 0.0,
           "return_rate": 0.0, "sends_cleared": False, "settlement_days": 0}
INSTANT_RAILS = ("rtp", "bank-a", "card-acq")


def instant_config() -> FundpoolConfig:
    config = load_config(CONFIG)
    channels = tuple(
        replace(c, batch_size=BATCH, simulation=INSTANT, cutoff=())
        if c.id in INSTANT_RAILS else c
        for c in config.channels
    )
    return replace(config, channels=channels)


def funded(root: Path, name: str, config: FundpoolConfig) -> tuple[SqliteStore, Ledger,
                                                                   ManualClock]:
    store = SqliteStore(root / f"{name}.sqlite3")
    store.initialise()
    clock = ManualClock()
    ledger = Ledger(store, clock, Uuid7Ids.seeded(1))
    init_pool(ledger, config)
    pool = config.pool("main")
    for channel in ("rtp", "bank-a", "card-acq"):
        available = pool_account(pool.id, "USD", channel, PoolState.AVAILABLE)
        ledger.transfer([Posting(world_account(channel), available, "USD", 10**15)])
    return store, ledger, clock


def dispatched(root: Path, config: FundpoolConfig, total: int) -> float:
    store, ledger, clock = funded(root, "dispatched", config)
    pool = config.pool("main")
    ids = Uuid7Ids.seeded(2)
    service = PaymentService(ledger, payment_store(store), config, pool, ids)
    rails = simulated_rails(config, pool, seed=3)
    router = payout_router(config, rails, seed=4)  # as the simulator builds it
    dispatcher = Dispatcher(service, rails, router, clock, ids,
                            records=SqlDispatchRecords(store),
                            policy=DispatchPolicy(batch_age_us=0))
    request = PaymentRequest(PaymentKind.PAYOUT, "USD", 10_000, counterparty="payee")
    started = time.perf_counter()
    for round_ in range(total // BATCH):
        intakes = dispatcher.intake(
            [(replace(request, reference=f"r{round_}-{i}"), None) for i in range(BATCH)]
        )
        ids_ = [i.outcome.id for i in intakes if isinstance(i.outcome, Payment)]
        if len(ids_) != BATCH:
            raise SystemExit(f"intake failed: {intakes[0]}")
        dispatcher.tick()  # submit
        clock.advance(seconds=1)
        dispatcher.tick()  # settle
    dispatcher.flush_records()
    elapsed = time.perf_counter() - started
    states = store.query("SELECT state, count(*) FROM payments GROUP BY state")
    settled = dict(states).get(PaymentState.SETTLED.value, 0)
    if settled != total:
        raise SystemExit(f"only {settled} of {total} payouts settled: {states}")
    store.close()
    return total / elapsed


def service_only(root: Path, config: FundpoolConfig, total: int) -> float:
    store, ledger, _ = funded(root, "service", config)
    pool = config.pool("main")
    service = PaymentService(ledger, payment_store(store), config, pool, Uuid7Ids.seeded(2))

    def plan(p: Payment) -> list[Step]:
        return [Step(p.id, Action.SCREEN), Step(p.id, Action.ROUTE, "rtp"),
                Step(p.id, Action.APPROVE), Step(p.id, Action.SUBMIT)]

    request = PaymentRequest(PaymentKind.PAYOUT, "USD", 10_000, counterparty="payee")
    started = time.perf_counter()
    for _ in range(total // BATCH):
        results = service.create_and_act([(request, None)] * BATCH, plan)
        ids = [p.id for p, _ in results if isinstance(p, Payment)]
        outcomes = service.act_many([Step(pid, Action.SETTLE) for pid in ids])
        if any(isinstance(o, Exception) for o in outcomes) or len(ids) != BATCH:
            raise SystemExit("the service-only lifecycle failed")
    elapsed = time.perf_counter() - started
    store.close()
    return total / elapsed


def ledger_baseline(root: Path, config: FundpoolConfig, total: int) -> float:
    store, ledger, _ = funded(root, "ledger", config)
    pool = config.pool("main")
    available = pool_account(pool.id, "USD", "rtp", PoolState.AVAILABLE)
    locked = pool_account(pool.id, "USD", "rtp", PoolState.LOCKED)
    started = time.perf_counter()
    for _ in range(total // BATCH):
        results = ledger.submit([Transfer((Posting(available, locked, "USD", 1),))] * BATCH)
        if not all(r.ok for r in results):
            raise SystemExit("a baseline transfer was rejected")
    elapsed = time.perf_counter() - started
    store.close()
    return total / elapsed


def main() -> None:
    tune_gc()  # as every fundpool entry point does at start
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the payment count")
    args = parser.parse_args()
    total = max(BATCH, int(40_960 * args.scale) // BATCH * BATCH)
    config = instant_config()
    root = Path(tempfile.mkdtemp(prefix="fundpool-bench-payments-"))
    try:
        baseline = ledger_baseline(root, config, total)
        for workload, value in (
            ("payout_lifecycle_dispatched", dispatched(root, config, total)),
            ("payout_lifecycle_service", service_only(root, config, total)),
        ):
            print(json.dumps({
                "bench": "payments",
                "store": "sqlite",
                "workload": workload,
                "value": round(value, 1),
                "unit": "payments/s",
                "baseline": f"ledger_transfers_batch_{BATCH}",
                "baseline_value": round(baseline, 1),
                "ratio": round(value / baseline, 3),
                "payments": total,
            }), flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
