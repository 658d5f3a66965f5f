"""The payment engine through the running server: payouts created through the API, to settled
on instant simulated rails, against the in-process dispatcher in the same run.

Prints one JSON line per figure:
  {"bench": "engine", "store": "sqlite", "workload": ..., "value": ..., "unit": ...,
   "baseline": ..., "baseline_value": ..., "ratio": ..., "target": ..., ...parameters}

Method.
- **The pool** (set-up, not timed): one USD channel of kind instant_credit whose simulated rail
  settles in about a millisecond (`latency_median_ms = 1`, no failures, no returns), batches of
  up to 500, an approval threshold above every payout, a float far beyond what the run pays.
  The dispatcher's policy is the engine's (`compose.engine_policy()`): a batch goes when it is
  full or its oldest payout waited 2 s.
- **Baseline** (`in_process_dispatcher`): in this process, on a SQLite store of its own, the
  `Dispatcher` the engine runs, called directly: `--payouts` requests taken in through
  `Dispatcher.intake` in chunks of `--chunk` (create, screen, route, approve in one
  transaction each), with a tick after each chunk, then ticks until every payout settled.
- **The server**, `fundpool serve` (one process, SQLite, its engine on), on a store of its
  own set up the same way, twice:
  - `api_files` (batch creation, the target's figure): the payouts as CSV files of `--chunk`
    rows, `FILE_CONCURRENCY` uploads at a time (`POST /v1/payments/batches`: each file taken
    in in one transaction, then sent by the engine);
  - `api_single`: `--concurrency` async clients POST /v1/payments one payout each (each with
    its own `Idempotency-Key`); the engine takes them up.
  Each run then waits until no payout is left before `settled`.
- **Figures**, the same for both, from the payments' own events read back from the store
  after the run: the rate is payouts over the time from the first creation to the last
  settlement; the latency of a payout is from its `create` event to its `settle` event
  (p50, p99).

Usage: python bench/engine.py [--payouts 3000] [--concurrency 32] [--chunk 500]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

from fundpool import compose
from fundpool.auth.roles import Role
from fundpool.core.clock import Uuid7Ids
from fundpool.core.ledger.model import Posting, Transfer
from fundpool.payments.model import Action, PaymentKind, PaymentRequest
from fundpool.pool.accounts import PoolState, pool_account, world_account
from fundpool.pool.config import load_config
from fundpool.pool.setup import init_pool
from fundpool.runtime import SystemClock, tune_gc

TARGET_RATIO = 0.5  # payouts/s through the server with batch creation, against the baseline
FILE_CONCURRENCY = 2  # CSV files uploaded at once
START_TIMEOUT_S = 90.0
SETTLE_TIMEOUT_S = 600.0
CONFIG = """
[[assets]]
code = "USD"
scale = 2
kind = "fiat"

[[channels]]
id = "fast"
kind = "instant_credit"
assets = ["USD"]
batch_size = 500
simulation = { latency_median_ms = 1, latency_sigma = 0.1, failure_rate = 0, return_rate = 0 }

[[owners]]
id = "company"
kind = "company"

[[pools]]
id = "main"
reporting_currency = "USD"
channels = ["fast"]
approval_thresholds = { USD = "100000000.00" }
"""
FLOAT_MINOR = 10**15


def prepare(data: Path, config_path: Path) -> None:
    """A store with the pool's accounts and a float on its one channel."""
    data.mkdir(parents=True)
    store = compose.sqlite_ledger(data)
    store.initialise()
    config = load_config(config_path)
    service = compose.ledger(store)
    init_pool(service, config)
    (result,) = service.submit([Transfer((Posting(
        world_account("fast"), pool_account("main", "USD", "fast", PoolState.AVAILABLE), "USD",
        FLOAT_MINOR),), {"purpose": "opening float"})])
    assert result.error is None, result.error
    store.close()


def figures(data: Path, ids: list[str]) -> tuple[float, int, int, int]:
    """(payouts a second, p50 us, p99 us, settled) from the payments' events in the store."""
    store = compose.sqlite_ledger(data)
    try:
        events = compose.payment_records(store).events_of(ids)
    finally:
        store.close()
    created, settled, latencies = [], [], []
    for pid in ids:
        by_action = {e.action: e.at_us for e in events.get(pid, [])}
        if Action.SETTLE in by_action:
            created.append(by_action[Action.CREATE])
            settled.append(by_action[Action.SETTLE])
            latencies.append(by_action[Action.SETTLE] - by_action[Action.CREATE])
    latencies.sort()
    span_s = (max(settled) - min(created)) / 1e6
    return (len(settled) / span_s, latencies[len(latencies) // 2],
            latencies[min(len(latencies) - 1, len(latencies) * 99 // 100)], len(settled))


def request(index: int) -> PaymentRequest:
    return PaymentRequest(PaymentKind.PAYOUT, "USD", 1_000 + index % 97, channel="fast",
                          counterparty=f"payee-{index % 500}",
                          reference=f"bench-{index}", destination="GB33BUKB20201555555555")


def baseline(root: Path, config_path: Path, payouts: int, chunk: int) -> list[str]:
    data = root / "baseline"
    prepare(data, config_path)
    store = compose.sqlite_ledger(data)
    config = load_config(config_path)
    clock = SystemClock()
    ids = Uuid7Ids.seeded(7)
    parts = compose.simulated_dispatching(
        compose.ledger(store, clock, ids), config, config.pool(None), clock=clock, ids=ids,
        seed=7, instance="bench", policy=compose.engine_policy())
    dispatcher = parts.dispatcher
    created: list[str] = []
    for start in range(0, payouts, chunk):
        requests = [(request(i), f"bench-{i}") for i in range(start, min(payouts, start + chunk))]
        for intake in dispatcher.intake(requests):
            assert intake.refusal is None, intake.refusal
            created.append(intake.outcome.id)  # type: ignore[union-attr]
        dispatcher.tick()
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    while time.monotonic() < deadline:
        dispatcher.tick()
        states = parts.payments.states(created[-1:] + created[:1])
        if all(str(s) == "settled" for s in states.values()) and \
                parts.payments.list(state=None, limit=1):
            pending = [s for s in parts.payments.states(created).values()
                       if str(s) != "settled"]
            if not pending:
                break
        time.sleep(0.005)
    dispatcher.flush_records()
    store.close()
    return created


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def upload(base: str, token: str, payouts: int, chunk: int, concurrency: int
                 ) -> list[str]:
    """The payouts as CSV files of `chunk` rows (POST /v1/payments/batches), `concurrency`
    files at a time: batch creation, each file taken in in one transaction."""
    ids: list[str] = []
    files = iter(range(0, payouts, chunk))
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "text/csv"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=120) as client:
        async def caller() -> None:
            for start in files:
                rows = ["payee,account,amount,asset,reference,channel"]
                for index in range(start, min(payouts, start + chunk)):
                    rows.append(f"payee-{index % 500},GB33BUKB20201555555555,"
                                f"{(1_000 + index % 97) / 100:.2f},USD,file-{index},fast")
                answer = await client.post("/v1/payments/batches",
                                           content=("\n".join(rows) + "\n").encode())
                assert answer.status_code == 201, answer.text
                ids.extend(answer.json()["payment_ids"])

        await asyncio.gather(*(caller() for _ in range(concurrency)))
    return ids


async def load(base: str, token: str, payouts: int, concurrency: int) -> list[str]:
    ids: list[str] = []
    counter = iter(range(payouts))
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60,
                                 limits=httpx.Limits(max_connections=concurrency)) as client:
        async def caller() -> None:
            for index in counter:
                body = {"kind": "payout", "asset": "USD",
                        "amount": f"{(1_000 + index % 97) / 100:.2f}", "channel": "fast",
                        "counterparty": f"payee-{index % 500}", "reference": f"bench-{index}",
                        "destination": "GB33BUKB20201555555555"}
                answer = await client.post("/v1/payments", json=body, headers={
                    "Idempotency-Key": uuid.uuid4().hex})
                assert answer.status_code == 201, answer.text
                ids.append(answer.json()["id"])

        await asyncio.gather(*(caller() for _ in range(concurrency)))
    return ids


def served(root: Path, config_path: Path, payouts: int, concurrency: int, *,
           chunk: int | None = None) -> list[str]:
    """Payouts through a running `fundpool serve`: single POSTs, or CSV files of `chunk`."""
    data = root / ("served" if chunk is None else "served-files")
    prepare(data, config_path)
    store = compose.sqlite_ledger(data)
    auth = compose.auth_store(store)
    _, token = auth.create_key("bench", [Role.ADMIN], now_us=SystemClock().now_us())
    auth.close()
    store.close()
    port = free_port()
    env = {**os.environ, "FUNDPOOL_DATA_DIR": str(data), "FUNDPOOL_CONFIG": str(config_path),
           "FUNDPOOL_PORT": str(port), "FUNDPOOL_ACCESS_LOG": "false",
           "FUNDPOOL_LOG_LEVEL": "warning", "FUNDPOOL_RATE_LIMIT_PER_S": "1000000",
           "FUNDPOOL_RATE_LIMIT_BURST": "1000000"}
    env.pop("FUNDPOOL_DB_URL", None)
    script = shutil.which("fundpool", path=str(Path(sys.executable).parent))
    command = [script] if script else [sys.executable, "-m", "fundpool.cli.main"]
    base = f"http://127.0.0.1:{port}"
    with (root / "serve.log").open("wb") as log:
        process = subprocess.Popen([*command, "serve"], env=env, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError((root / "serve.log").read_text()[-3000:])
            time.sleep(0.2)
        ids = asyncio.run(load(base, token, payouts, concurrency) if chunk is None else
                          upload(base, token, payouts, chunk, FILE_CONCURRENCY))
        headers = {"Authorization": f"Bearer {token}"}
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        while time.monotonic() < deadline:
            left = [s for s in (httpx.get(f"{base}/v1/payments", headers=headers, params={
                "state": state, "limit": 1}, timeout=30).json()["data"]
                for state in ("initiated", "screened", "routed", "approved", "submitted"))
                if s]
            if not left:
                break
            time.sleep(0.1)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(30)
    return ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--payouts", type=int, default=3_000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--chunk", type=int, default=500)
    args = parser.parse_args()
    tune_gc()
    with tempfile.TemporaryDirectory(prefix="fundpool-bench-engine-") as temp:
        root = Path(temp)
        config_path = root / "pool.toml"
        config_path.write_text(CONFIG)
        base_ids = baseline(root, config_path, args.payouts, args.chunk)
        base_rate, base_p50, base_p99, base_n = figures(root / "baseline", base_ids)
        file_ids = served(root, config_path, args.payouts, args.concurrency, chunk=args.chunk)
        files = figures(root / "served-files", file_ids)
        api_ids = served(root, config_path, args.payouts, args.concurrency)
        single = figures(root / "served", api_ids)
    common = {"bench": "engine", "store": "sqlite", "payouts": args.payouts,
              "chunk": args.chunk, "baseline": "in_process_dispatcher"}
    for creation, (rate, p50, p99, n), extra in (
            ("api_files", files, {"files_at_once": FILE_CONCURRENCY, "target": TARGET_RATIO}),
            ("api_single", single, {"concurrency": args.concurrency})):
        print(json.dumps({**common, "workload": f"{creation}_to_settled_rate",
                          "value": round(rate, 1), "unit": "payouts/s",
                          "baseline_value": round(base_rate, 1),
                          "ratio": round(rate / base_rate, 3), "settled": n,
                          "baseline_settled": base_n, **extra}))
        for name, value, base_value in (("p50", p50, base_p50), ("p99", p99, base_p99)):
            print(json.dumps({**common, "workload": f"{creation}_created_to_settled_{name}",
                              "value": round(value / 1000, 1), "unit": "ms",
                              "baseline_value": round(base_value / 1000, 1),
                              "ratio": round(value / base_value, 3)}))


if __name__ == "__main__":
    main()
