"""The HTTP API over loopback: single-transfer latency and rate, and the batch endpoint's rate,
against the same ledger called in-process.

Prints one JSON line per figure:
  {"bench": "api", "store": ..., "workers": ..., "workload": ..., "value": ..., "unit": ...,
   "baseline": ..., "baseline_value": ..., "ratio": ..., "target": ..., ...parameters}

Method.
- **Set-up, not timed.** A fresh store (a SQLite file; a PostgreSQL schema with `--pg`) holds
  USD, `world:bench` and `--accounts` customers funded far beyond what the run moves, so no
  transfer is rejected; an admin API key is made with `AuthStore`. `fundpool serve` starts as
  a subprocess on it (SQLite: 1 worker; PostgreSQL: `--workers`), with the rate limit raised
  far above the load (`FUNDPOOL_RATE_LIMIT_PER_S`, `_BURST`: `rate_limit_per_s` in each line)
  so that nothing is throttled, the access log as `access_log` says, its log in a file.
- **The load generator** is a second process (spawn): an asyncio client on raw sockets, one
  keep-alive HTTP/1.1 connection per concurrent caller, requests written as bytes made before
  the clock starts, answers read by status line and `Content-Length`. Latency is per request,
  from the write of its bytes to the last byte of its answer (`perf_counter_ns`); the rate is
  the requests answered over the time from the first write to the last answer. Every transfer
  carries its own `Idempotency-Key`. `--warmup` requests run first, uncounted. The server's and
  the generator's CPU seconds during a run (from /proc) say where the cores went.
- **single_transfer_one_connection_***: `--sequential` POST /v1/ledger/transactions, one at a
  time; baseline: as many transfers through `Ledger.transfer`, one at a time, in this process
  on a second store set up the same way (what the HTTP layer adds to one transfer).
- **single_transfer_***: `--transfers` of them over `--concurrency` connections; baseline: the
  server's own group commit without HTTP, a `LedgerWriter` fed by as many threads, each waiting
  for its transfer's result before sending the next.
- **batch_transfers_rate**: `--batches` POST /v1/ledger/transactions/batch of `--batch-size`
  transfers, over as many connections as the server has workers; baseline: the same batches
  through `Ledger.submit`.
- With SQLite, the concurrent single-transfer run is made again with the access log on; its
  baseline is the run without it.

Every process uses the garbage-collector settings of fundpool's entry points (`tune_gc`). The
machine's cores are shared by the server's workers, the generator and PostgreSQL: by Little's
law, the latency at `--concurrency` connections is about that many divided by the rate.

Usage: python bench/api.py [--pg [URL]] [--workers 2] [--transfers 5000] [--concurrency 32]
       [--sequential 1000] [--batches 40] [--batch-size 500]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import multiprocessing
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from array import array
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fundpool import compose
from fundpool.core.ledger.model import Account, OpenAccount, Posting, Transfer
from fundpool.core.money import Asset, AssetKind
from fundpool.ledger.ports import LedgerStore
from fundpool.ledger.service import BATCH_COMMANDS_MAX, Ledger
from fundpool.runtime import SystemClock, system_ids, tune_gc
from fundpool.server.v1.writer import LedgerWriter
from fundpool.stores.auth_sql import AuthStore
from fundpool.stores.sqlite import SqliteStore

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "examples" / "pool.toml"
FUNDPOOL = Path(sys.executable).with_name("fundpool")
PG_URL_ENV = "FUNDPOOL_BENCH_PG_URL"
PG_URL_DEFAULT = os.environ.get("FUNDPOOL_TEST_PG_URL",
                                "postgresql://postgres@127.0.0.1:5432/test")

FUNDING_MINOR = 10**15
AMOUNT_MINOR_MAX = 10_000
# Far above what two cores can serve: the bench measures the server, not its throttle.
RATE_LIMIT_PER_S = 10_000_000
RATE_LIMIT_BURST = 10_000_000
SERVER_READY_S = 60
SERVER_STOP_S = 20
LATENCY_MS_P99_TARGET = 10.0
REQUESTS_PER_S_TARGET = 2_000.0


# --- what is sent ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """What one generator run sends; the generator builds its request bytes from it."""

    host: str
    port: int
    token: str
    accounts: int
    seed: int
    key_prefix: str
    requests: int
    connections: int
    batch_size: int = 0  # 0: single transfers to /v1/ledger/transactions


def customer(index: int) -> str:
    return f"customer:c{index:05d}"


def random_transfers(accounts: int, count: int, seed: int) -> list[tuple[str, str, int]]:
    """(source, destination, amount_minor) between distinct customers; the same for a seed."""
    rng = random.Random(seed)
    moves = []
    for _ in range(count):
        source = rng.randrange(accounts)
        destination = rng.randrange(accounts - 1)
        destination += destination >= source
        moves.append((customer(source), customer(destination),
                      rng.randrange(1, AMOUNT_MINOR_MAX)))
    return moves


def _posting_json(source: str, destination: str, amount_minor: int) -> str:
    amount = f"{amount_minor // 100}.{amount_minor % 100:02d}"
    return (f'{{"source":"{source}","destination":"{destination}","asset":"USD",'
            f'"amount":"{amount}"}}')


def _request(plan: Plan, path: str, key: str, body: str) -> bytes:
    data = body.encode()
    head = (f"POST {path} HTTP/1.1\r\nHost: {plan.host}:{plan.port}\r\n"
            f"Authorization: Bearer {plan.token}\r\nContent-Type: application/json\r\n"
            f"Idempotency-Key: {key}\r\nContent-Length: {len(data)}\r\n\r\n")
    return head.encode() + data


def build_requests(plan: Plan) -> list[bytes]:
    if plan.batch_size == 0:
        moves = random_transfers(plan.accounts, plan.requests, plan.seed)
        return [_request(plan, "/v1/ledger/transactions", f"{plan.key_prefix}-{i}",
                         f'{{"postings":[{_posting_json(*move)}]}}')
                for i, move in enumerate(moves)]
    requests = []
    moves = random_transfers(plan.accounts, plan.requests * plan.batch_size, plan.seed)
    for i in range(plan.requests):
        part = moves[i * plan.batch_size:(i + 1) * plan.batch_size]
        items = ",".join(f'{{"postings":[{_posting_json(*move)}]}}' for move in part)
        requests.append(_request(plan, "/v1/ledger/transactions/batch",
                                 f"{plan.key_prefix}-{i}", f'{{"transfers":[{items}]}}'))
    return requests


def batch_commands(accounts: int, batches: int, size: int, seed: int) -> list[list[Transfer]]:
    """The same transfers as `build_requests` sends to the batch endpoint, as commands."""
    moves = random_transfers(accounts, batches * size, seed)
    return [[Transfer((Posting(s, d, "USD", a),)) for s, d, a in moves[i * size:(i + 1) * size]]
            for i in range(batches)]


# --- the load generator (its own process) ----------------------------------------------------


def _content_length(head: bytes) -> int:
    lowered = head.lower()
    at = lowered.find(b"\r\ncontent-length:")
    if at < 0:
        return 0
    end = lowered.find(b"\r\n", at + 2)
    return int(lowered[at + 17:end])


async def _drive(plan: Plan, requests: list[bytes]) -> dict[str, Any]:
    latencies_ns = array("q")
    statuses: Counter[int] = Counter()
    failures: list[str] = []
    pending = iter(requests)
    connections = [await asyncio.open_connection(plan.host, plan.port)
                   for _ in range(plan.connections)]
    for _, writer in connections:
        writer.transport.get_extra_info("socket").setsockopt(
            socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    async def caller(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        clock = time.perf_counter_ns
        for request in pending:
            started = clock()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            body = await reader.readexactly(_content_length(head))
            latencies_ns.append(clock() - started)
            status = int(head[9:12])
            statuses[status] += 1
            if status >= 300 and len(failures) < 5:
                failures.append(f"{status} {body[:300].decode(errors='replace')}")

    started_ns = time.perf_counter_ns()
    await asyncio.gather(*(caller(reader, writer) for reader, writer in connections))
    elapsed_ns = time.perf_counter_ns() - started_ns
    for _, writer in connections:
        writer.close()
    return {"elapsed_ns": elapsed_ns, "latencies_ns": latencies_ns.tobytes(),
            "statuses": dict(statuses), "failures": failures}


def generate(plan: Plan, results: Any) -> None:
    """The generator process: build the requests, then send them and report."""
    tune_gc()
    requests = build_requests(plan)
    try:
        import uvloop

        runner: Callable[[Any], Any] = uvloop.run
    except ImportError:  # pragma: no cover - uvloop is a dependency of the server
        runner = asyncio.run
    cpu_started = time.process_time()
    outcome = runner(_drive(plan, requests))
    outcome["cpu_s"] = time.process_time() - cpu_started
    results.send(outcome)
    results.close()


@dataclass
class Run:
    elapsed_s: float
    latencies_ns: list[int]
    statuses: dict[int, int]
    failures: list[str]
    generator_cpu_s: float
    server_cpu_s: float

    @property
    def per_s(self) -> float:
        return len(self.latencies_ns) / self.elapsed_s


def load(plan: Plan, server_pid: int) -> Run:
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=generate, args=(plan, sender), name="bench-api-load")
    cpu_before = process_tree_cpu_s(server_pid)
    process.start()
    sender.close()
    try:
        outcome = receiver.recv()
    except EOFError:
        raise SystemExit(f"the load generator died (exit code {process.join() or process.exitcode})"
                         ) from None
    process.join()
    server_cpu = process_tree_cpu_s(server_pid) - cpu_before
    latencies = array("q")
    latencies.frombytes(outcome["latencies_ns"])
    return Run(outcome["elapsed_ns"] / 1e9, sorted(latencies), outcome["statuses"],
               outcome["failures"], outcome["cpu_s"], server_cpu)


# --- the server ------------------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def process_tree_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) used so far by `pid` and every live descendant."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for each in [pid, *_descendants(pid)]:
        try:
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return total


def _descendants(pid: int) -> Iterator[int]:
    for child in _children(pid):
        yield child
        yield from _descendants(child)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def serving(db_url: str, workers: int, *, access_log: bool, log_path: Path
            ) -> Iterator[tuple[int, int]]:
    """`fundpool serve` on `db_url`; yields (port, pid) once /readyz answers 200."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FUNDPOOL_")}
    env.update({"FUNDPOOL_RATE_LIMIT_PER_S": str(RATE_LIMIT_PER_S),
                "FUNDPOOL_RATE_LIMIT_BURST": str(RATE_LIMIT_BURST),
                "FUNDPOOL_ACCESS_LOG": "true" if access_log else "false"})
    with log_path.open("ab") as log:
        server = subprocess.Popen(
            [str(FUNDPOOL), "serve", "--port", str(port), "--workers", str(workers),
             "--config", str(CONFIG), "--db-url", db_url, "--log-level", "info"],
            stdout=log, stderr=log, env=env)
    try:
        _wait_ready(port, server, log_path)
        yield port, server.pid
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=SERVER_STOP_S)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _wait_ready(port: int, server: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + SERVER_READY_S
    request = f"GET /readyz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    while True:
        if server.poll() is not None:
            raise SystemExit(f"fundpool serve exited: {log_path.read_text()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as probe:
                probe.sendall(request.encode())
                if probe.recv(64).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"fundpool serve was not ready: {log_path.read_text()[-2000:]}")
        time.sleep(0.1)


# --- the stores and the in-process baselines -------------------------------------------------


@dataclass
class Target:
    """Where a store lives: how to make a fresh one, its URL for `serve`, how to drop it."""

    name: str
    workers: int
    new_store: Callable[[str], tuple[LedgerStore, str]]
    drop: Callable[[LedgerStore], None]
    cleanup: Callable[[], None] = lambda: None


def set_up(store: LedgerStore, accounts: int) -> Ledger:
    store.initialise()
    ledger = Ledger(store, SystemClock(), system_ids())
    ledger.define_asset(Asset("USD", 2, AssetKind.FIAT))
    ledger.open_account(Account("world:bench"))
    names = [customer(i) for i in range(accounts)]
    for start in range(0, accounts, BATCH_COMMANDS_MAX):
        chunk = names[start:start + BATCH_COMMANDS_MAX]
        ledger.submit([OpenAccount(Account(name, asset="USD")) for name in chunk])
        ledger.submit([Transfer((Posting("world:bench", name, "USD", FUNDING_MINOR),))
                       for name in chunk])
    return ledger


def timed_transfers(ledger: Ledger, moves: list[tuple[str, str, int]], key_prefix: str
                    ) -> tuple[list[int], float]:
    latencies = []
    clock = time.perf_counter_ns
    started = clock()
    for i, (source, destination, amount) in enumerate(moves):
        begun = clock()
        ledger.transfer([Posting(source, destination, "USD", amount)],
                        idempotency_key=f"{key_prefix}-{i}")
        latencies.append(clock() - begun)
    return sorted(latencies), (clock() - started) / 1e9


def timed_writer(ledger: Ledger, moves: list[tuple[str, str, int]], threads: int,
                 key_prefix: str) -> tuple[list[int], float]:
    """`threads` callers, each waiting for its transfer's result before sending the next."""
    writer = LedgerWriter(ledger, driver_errors=compose.store_errors()).start()
    pending = iter(enumerate(moves))
    take = threading.Lock()
    latencies: list[int] = []

    def caller() -> None:
        clock = time.perf_counter_ns
        mine = []
        while True:
            with take:
                item = next(pending, None)
            if item is None:
                break
            i, (source, destination, amount) = item
            begun = clock()
            (result,) = writer.submit([Transfer((Posting(source, destination, "USD", amount),),
                                                {}, f"{key_prefix}-{i}")]).result()
            mine.append(clock() - begun)
            if result.error is not None:
                raise SystemExit(f"in-process writer: a transfer was rejected: {result.error}")
        with take:
            latencies.extend(mine)

    workers = [threading.Thread(target=caller) for _ in range(threads)]
    started = time.perf_counter_ns()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed_s = (time.perf_counter_ns() - started) / 1e9
    writer.stop()
    return sorted(latencies), elapsed_s


def timed_batches(ledger: Ledger, batches: list[list[Transfer]]) -> float:
    started = time.perf_counter()
    for batch in batches:
        if not all(result.ok for result in ledger.submit(batch)):
            raise SystemExit("in-process batch: a transfer was rejected")
    return time.perf_counter() - started


# --- figures ---------------------------------------------------------------------------------


def percentile_ms(sorted_ns: list[int], fraction: float) -> float:
    """Nearest rank: the smallest latency at or above `fraction` of them."""
    rank = math.ceil(round(fraction * len(sorted_ns), 6)) - 1
    return sorted_ns[min(max(rank, 0), len(sorted_ns) - 1)] / 1e6


def emit(where: Target, workload: str, value: float, unit: str, baseline: str,
         baseline_value: float, **extra: object) -> None:
    print(json.dumps({
        "bench": "api",
        "store": where.name,
        "workers": where.workers,
        "workload": workload,
        "value": round(value, 3 if unit == "ms" else 1),
        "unit": unit,
        "baseline": baseline,
        "baseline_value": round(baseline_value, 3 if unit == "ms" else 1),
        "ratio": round(value / baseline_value, 3) if baseline_value else None,
        **extra,
    }), flush=True)


def check(run: Run, expected: int, what: str) -> None:
    good = sum(count for status, count in run.statuses.items() if 200 <= status < 300)
    if good != expected:
        raise SystemExit(f"{what}: {good} of {expected} requests succeeded "
                         f"({run.statuses}; first failures: {run.failures})")


def bench_target(target: Target, args: argparse.Namespace, work: Path) -> None:
    store, db_url = target.new_store("api")
    set_up(store, args.accounts)
    token = AuthStore.beside(store).create_key("bench", ["admin"],
                                               now_us=SystemClock().now_us())[1]
    store.close()
    log_path = work / f"serve-{target.name}.log"

    def plan(port: int, seed: int, requests: int, connections: int, batch_size: int = 0
             ) -> Plan:
        return Plan("127.0.0.1", port, token, args.accounts, seed,
                    f"bench-{uuid.uuid4().hex[:12]}", requests, connections, batch_size)

    with serving(db_url, target.workers, access_log=False, log_path=log_path) as (port, pid):
        load(plan(port, 1, args.warmup, args.concurrency), pid)
        alone = load(plan(port, 2, args.sequential, 1), pid)
        check(alone, args.sequential, "single_transfer, one connection")
        crowd = load(plan(port, 3, args.transfers, args.concurrency), pid)
        check(crowd, args.transfers, "single_transfer")
        load(plan(port, 4, 2, target.workers, args.batch_size), pid)
        batch = load(plan(port, 5, args.batches, target.workers, args.batch_size), pid)
        check(batch, args.batches, "batch_transfers")
    logged = None
    if target.name == "sqlite":
        with serving(db_url, target.workers, access_log=True, log_path=log_path) as (port, pid):
            load(plan(port, 6, args.warmup, args.concurrency), pid)
            logged = load(plan(port, 7, args.transfers, args.concurrency), pid)
            check(logged, args.transfers, "single_transfer (access log)")

    baseline_store, _ = target.new_store("baseline")
    ledger = set_up(baseline_store, args.accounts)
    timed_transfers(ledger, random_transfers(args.accounts, args.warmup // 10, 1), "warm")
    direct_ns, direct_s = timed_transfers(
        ledger, random_transfers(args.accounts, args.sequential, 2), "direct")
    writer_ns, writer_s = timed_writer(
        ledger, random_transfers(args.accounts, args.transfers, 3), args.concurrency, "writer")
    batch_s = timed_batches(
        ledger, batch_commands(args.accounts, args.batches, args.batch_size, 5))
    target.drop(baseline_store)

    def facts(run: Run, connections: int, **more: object) -> dict[str, object]:
        return {"connections": connections, "requests": len(run.latencies_ns),
                "accounts": args.accounts, "access_log": False,
                "rate_limit_per_s": RATE_LIMIT_PER_S, "elapsed_s": round(run.elapsed_s, 2),
                "server_cpu_s": round(run.server_cpu_s, 2),
                "generator_cpu_s": round(run.generator_cpu_s, 2), **more}

    direct = "ledger_transfer_in_process"
    for label, fraction in (("p50", 0.50), ("p99", 0.99)):
        emit(target, f"single_transfer_one_connection_latency_ms_{label}",
             percentile_ms(alone.latencies_ns, fraction), "ms", direct,
             percentile_ms(direct_ns, fraction), **facts(alone, 1))
    emit(target, "single_transfer_one_connection_rate", alone.per_s, "requests/s", direct,
         len(direct_ns) / direct_s, **facts(alone, 1))
    grouped = "ledger_writer_in_process"
    threads = {"baseline_threads": args.concurrency}
    for label, fraction in (("p50", 0.50), ("p99", 0.99)):
        extra = {"target": LATENCY_MS_P99_TARGET} if label == "p99" else {}
        emit(target, f"single_transfer_latency_ms_{label}",
             percentile_ms(crowd.latencies_ns, fraction), "ms", grouped,
             percentile_ms(writer_ns, fraction),
             **facts(crowd, args.concurrency, **threads, **extra))
    emit(target, "single_transfer_rate", crowd.per_s, "requests/s", grouped,
         len(writer_ns) / writer_s,
         **facts(crowd, args.concurrency, **threads, target=REQUESTS_PER_S_TARGET))
    batch_transfers = args.batches * args.batch_size
    emit(target, "batch_transfers_rate", batch_transfers / batch.elapsed_s, "transfers/s",
         "ledger_submit_in_process", batch_transfers / batch_s,
         **facts(batch, target.workers, batch_size=args.batch_size,
                 latency_ms_p50=round(percentile_ms(batch.latencies_ns, 0.50), 1)))
    if logged is not None:
        emit(target, "single_transfer_rate_access_log", logged.per_s, "requests/s",
             "single_transfer_rate", crowd.per_s,
             **facts(logged, args.concurrency, access_log=True,
                     latency_ms_p99=round(percentile_ms(logged.latencies_ns, 0.99), 3)))


def sqlite_target(work: Path) -> Target:
    def new_store(label: str) -> tuple[LedgerStore, str]:
        path = work / f"{label}-{uuid.uuid4().hex[:8]}.sqlite3"
        return SqliteStore(path), f"sqlite:///{path}"

    return Target("sqlite", 1, new_store, lambda store: store.close(),
                  lambda: shutil.rmtree(work, ignore_errors=True))


def postgres_target(url: str, workers: int) -> Target | None:
    try:
        import psycopg
        from psycopg import sql

        with psycopg.connect(url, connect_timeout=3):
            pass
        from fundpool.stores.postgres import PostgresStore
    except Exception as error:
        print(f"bench: PostgreSQL skipped ({error})", file=sys.stderr)
        return None
    created: list[str] = []

    def new_store(label: str) -> tuple[LedgerStore, str]:
        schema = f"bench_{label}_{uuid.uuid4().hex[:8]}"
        created.append(schema)
        separator = "&" if "?" in url else "?"
        return PostgresStore(url, schema=schema), f"{url}{separator}schema={schema}"

    def drop(store: LedgerStore) -> None:
        store.drop_schema()  # type: ignore[attr-defined]
        store.close()

    def cleanup() -> None:
        # The server's schema outlives its store object: drop every schema this run made.
        with psycopg.connect(url, autocommit=True, connect_timeout=3) as connection:
            for schema in created:
                connection.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE")
                                   .format(sql.Identifier(schema)))

    return Target("postgres", workers, new_store, drop, cleanup)


def main() -> None:
    tune_gc()  # as every fundpool entry point does at start (fundpool.runtime)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pg", nargs="?", const=PG_URL_DEFAULT,
                        default=os.environ.get(PG_URL_ENV),
                        help=f"also run on PostgreSQL (default URL: ${PG_URL_ENV})")
    parser.add_argument("--workers", type=int, default=2, help="server workers on PostgreSQL")
    parser.add_argument("--transfers", type=int, default=5_000,
                        help="single transfers over --concurrency connections")
    parser.add_argument("--concurrency", type=int, default=32, help="keep-alive connections")
    parser.add_argument("--sequential", type=int, default=1_000,
                        help="single transfers over one connection (and in-process, in turn)")
    parser.add_argument("--warmup", type=int, default=1_000)
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--accounts", type=int, default=1_000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="fundpool-bench-api-"))
    targets = [sqlite_target(work)]
    if args.pg:
        targets += [t for t in [postgres_target(args.pg, args.workers)] if t is not None]
    try:
        for target in targets:
            bench_target(target, args, work)
    finally:
        for target in reversed(targets):
            target.cleanup()


if __name__ == "__main__":
    main()
