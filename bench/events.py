"""Events through NATS JetStream: outbox → relay → JetStream → consumer → projections, against
raw NATS publishing of the same messages; and how soon an event is in the projections, against
the in-process feed.

Prints one JSON line per figure:
  {"bench": "events", "workload": ..., "value": ..., "unit": ..., "baseline": ...,
   "baseline_value": ..., "ratio": ...}

Method.
- **Throughput.** The traffic simulator runs on a ManualClock (as fast as it can) on a fresh
  SQLite ledger of examples/pool.toml until the outbox holds at least `--events` real events
  (payments and ledger entries of pool `main`, and the `_ledger` pool's). Not timed. Then a
  relay process (`NatsRelay`) and a consumer process (`NatsConsumer`, projections in their own
  SQLite file) connect, create their streams and durables and wait; the clock starts when both
  are told to go, and stops when the consumer has committed the last event of every pool: the
  events divided by that time. The baseline, in the same run: the same wire bytes, with the
  same `Nats-Msg-Id` headers, published with `js.publish_async` into a scratch stream in pages
  of 10,000, waiting for each page's acknowledgements, as the relay does; measured just before
  and just after the path (`baseline_before`, `baseline_after`), and the mean of the two is
  the baseline, so that a machine whose load changes during the run moves both sides alike.
  The ratio is the share of raw JetStream publishing the whole path keeps. A second line gives
  the raw core NATS publish rate of the same bytes (no persistence, no acknowledgement) as a
  ceiling.
- **Latency.** The simulator runs on the system clock at `--rate` payments a second for
  `--duration` seconds, in this process; a relay process and a consumer process follow it
  through NATS. For every event committed to the projections, the consumer records its wall
  time minus the event's `at_us` (the time of the ledger transaction that wrote it): p50 and
  p99. The baseline is the in-process bus: the same simulation again, with an `OutboxFeed` in
  a `Follower` thread (50 ms interval, as `Monitor.follow`) in the simulator's process. Both
  keep projections in a file of their own; setup events (before the run) are not counted.

Every process uses the garbage-collector settings of fundpool's entry points (`tune_gc`). The
machine's cores are shared by the simulator, the relay, the consumer and the NATS server.

Usage: python bench/events.py [--nats URL] [--events 100000] [--rate 1000] [--duration 10]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import multiprocessing.synchronize
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import nats
import structlog
from nats.js.api import StorageType

from fundpool import compose
from fundpool.bus.consumer import NatsConsumer
from fundpool.bus.relay import NatsRelay, message_id, wire_message
from fundpool.bus.subjects import ensure_stream, stream_name
from fundpool.core.clock import Clock, ManualClock, Uuid7Ids
from fundpool.events.model import Event
from fundpool.ledger.service import Ledger
from fundpool.monitoring.feed import Follower, OutboxFeed
from fundpool.monitoring.messages import ApplyReport, Item
from fundpool.monitoring.projector import Projector
from fundpool.pool.config import load_config
from fundpool.runtime import SystemClock, system_ids, tune_gc
from fundpool.sim.traffic import Simulation
from fundpool.stores.events_sql import OutboxReader
from fundpool.stores.projection_sql import ProjectionStore
from fundpool.stores.sqlite import SqliteStore

CONFIG = Path(__file__).resolve().parents[1] / "examples" / "pool.toml"
PAGE = 10_000

MpEvent = multiprocessing.synchronize.Event


def emit(workload: str, value: float, unit: str, baseline: str, baseline_value: float,
         **extra: object) -> None:
    print(json.dumps({
        "bench": "events",
        "workload": workload,
        "value": round(value, 1),
        "unit": unit,
        "baseline": baseline,
        "baseline_value": round(baseline_value, 1),
        "ratio": round(value / baseline_value, 3) if baseline_value else None,
        **extra,
    }), flush=True)


def new_simulation(path: Path, clock: Clock, ids: Any) -> tuple[SqliteStore, Simulation]:
    store = SqliteStore(path)
    store.initialise()
    config = load_config(CONFIG)
    ledger = Ledger(store, clock, ids)
    simulation = compose.simulation(ledger, config, config.pools[0], seed=11, clock=clock,
                                    ids=ids)
    simulation.open_pool()
    return store, simulation


def generate(path: Path, events: int) -> tuple[dict[str, int], int]:
    """A ledger whose outbox holds at least `events` events; its pool heads and last pos."""
    clock = ManualClock()
    store, simulation = new_simulation(path, clock, Uuid7Ids.seeded(11))
    outbox = OutboxReader(store)
    while outbox.last_pos() < events:
        simulation.run(rate_per_s=200, duration_s=20,
                       advance=lambda s: clock.advance(seconds=s))
    heads, last = outbox.heads(), outbox.last_pos()
    store.close()
    return heads, last


# --- raw NATS --------------------------------------------------------------------------------


async def raw_rates(nats_url: str, rows: Sequence[Sequence[Any]], prefix: str, *,
                    core: bool = True) -> tuple[float, float]:
    """JetStream async publish (pages of PAGE, acknowledged) and core publish (unless not
    `core`: 0) of the rows' wire bytes: messages per second."""
    messages = [(f"{prefix}.raw.{row[4]}", wire_message(row), message_id(row[3]))
                for row in rows]
    nc = await nats.connect(nats_url)
    js = nc.jetstream(publish_async_max_pending=PAGE + 1)
    stream = f"{prefix.upper()}_RAW"
    await js.add_stream(name=stream, subjects=[f"{prefix}.raw.>"], storage=StorageType.FILE,
                        duplicate_window=120)
    try:
        started = time.perf_counter()
        for first in range(0, len(messages), PAGE):
            for subject, payload, msg_id in messages[first:first + PAGE]:
                await js.publish_async(subject, payload, headers={"Nats-Msg-Id": msg_id})
            await js.publish_async_completed()
        js_rate = len(messages) / (time.perf_counter() - started)
        core_rate = 0.0
        if core:
            started = time.perf_counter()
            for _subject, payload, _msg_id in messages:
                await nc.publish(f"{prefix}.core.x", payload)
            await nc.flush()
            core_rate = len(messages) / (time.perf_counter() - started)
    finally:
        await js.delete_stream(stream)
        await nc.close()
    return js_rate, core_rate


# --- the relay and consumer processes --------------------------------------------------------


class TimedRelay(NatsRelay):
    """A relay that notes how old each event already is when it reads it: the time the
    ledger took to commit it, plus the relay's poll; no bus can deliver sooner."""

    ages_us: list[tuple[int, int]]  # (the event's at_us, its age when read)

    async def _send(self, rows: Sequence[Sequence[Any]]) -> Any:
        now = time.time_ns() // 1000
        self.ages_us.extend((int(row[6]), now - int(row[6])) for row in rows)
        return await super()._send(rows)


def quiet_logs() -> None:
    """Log lines (leases, streams) to stderr: stdout is the JSON lines."""
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))


def relay_process(ledger_path: str, nats_url: str, prefix: str, ready: MpEvent, go: MpEvent,
                  stop: MpEvent | None, results: Any) -> None:
    quiet_logs()
    tune_gc()
    store = SqliteStore(ledger_path)

    async def main() -> None:
        # The throughput run measures the relay as it ships; only the latency run notes ages.
        ages_us: list[tuple[int, int]] = []
        if stop is None:
            relay = NatsRelay(store, nats_url, prefix=prefix)
        else:
            timed = TimedRelay(store, nats_url, prefix=prefix)
            timed.ages_us = ages_us
            relay = timed
        await relay.connect()
        ready.set()
        while not go.is_set():
            await asyncio.sleep(0.001)
        cpu_at_go = time.process_time()
        if stop is None:
            await relay.run(once=True)
        else:
            await relay.run(stop=stop)
        await relay.close()
        results.put({"relay_cpu_s": time.process_time() - cpu_at_go, "ages_us": ages_us})

    asyncio.run(main())
    store.close()


def consumer_process(projection_path: str, nats_url: str, prefix: str, pools: list[str],
                     ready: MpEvent, go: MpEvent, until_seq: dict[str, int] | None,
                     stop: MpEvent | None, since_us: int, results: Any) -> None:
    quiet_logs()
    tune_gc()
    latencies: list[int] = []

    def record(items: Sequence[Item], report: ApplyReport) -> None:
        now = time.time_ns() // 1000
        held = {(item.pool, item.seq) for item in report.held}
        latencies.extend(now - item.at_us for item in items
                         if isinstance(item, Event) and item.at_us >= since_us
                         and (item.pool, item.seq) not in held)

    async def main() -> None:
        consumer = NatsConsumer(f"sqlite:///{projection_path}", nats_url, applier=Projector,
                                pools=pools, prefix=prefix,
                                on_commit=record if stop is not None else None)
        await consumer.start()
        await consumer.rebalance()
        ready.set()
        while not go.is_set():
            await asyncio.sleep(0.001)
        cpu_at_go = time.process_time()
        report = await consumer.run(until_seq=until_seq, stop=stop)
        results.put({"end": time.perf_counter(), "applied": report.applied,
                     "commits": report.commits, "cpu_s": time.process_time() - cpu_at_go,
                     "latencies_us": latencies})

    asyncio.run(main())


def start(target: Any, *args: Any) -> multiprocessing.process.BaseProcess:
    process = multiprocessing.get_context("spawn").Process(target=target, args=args, daemon=True)
    process.start()
    return process


async def create_streams(nats_url: str, prefix: str, pools: Sequence[str]) -> None:
    nc = await nats.connect(nats_url)
    for pool in pools:
        await ensure_stream(nc.jetstream(), pool, prefix)
    await nc.close()


async def delete_streams(nats_url: str, prefix: str, pools: Sequence[str]) -> None:
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    for pool in pools:
        with contextlib.suppress(nats.js.errors.NotFoundError):
            await js.delete_stream(stream_name(pool, prefix))
    await nc.close()


def throughput(root: Path, nats_url: str, events: int) -> None:
    ledger_path = root / "throughput.sqlite3"
    heads, last = generate(ledger_path, events)
    store = SqliteStore(ledger_path)
    rows: list[tuple[Any, ...]] = []
    outbox = OutboxReader(store)
    while len(rows) < last:
        rows.extend(outbox.raw_after(len(rows), PAGE))
    store.close()
    prefix = f"bench{uuid.uuid4().hex[:8]}"
    js_before, core_rate = asyncio.run(raw_rates(nats_url, rows, f"{prefix}a"))

    pools = sorted(heads)
    asyncio.run(create_streams(nats_url, prefix, pools))
    context = multiprocessing.get_context("spawn")
    ready_relay, ready_consumer, go = context.Event(), context.Event(), context.Event()
    results, relay_results = context.Queue(), context.Queue()
    try:
        relay = start(relay_process, str(ledger_path), nats_url, prefix, ready_relay, go, None,
                      relay_results)
        consumer = start(consumer_process, str(root / "throughput-projections.sqlite3"),
                         nats_url, prefix, pools, ready_consumer, go, heads, None, 0, results)
        if not (ready_relay.wait(60) and ready_consumer.wait(60)):
            raise RuntimeError("the relay or the consumer did not start")
        started = time.perf_counter()
        go.set()
        outcome = results.get(timeout=600)
        seconds = outcome["end"] - started
        relay_cpu_s = relay_results.get(timeout=60)["relay_cpu_s"]
        relay.join(60)
        consumer.join(60)
    finally:
        asyncio.run(delete_streams(nats_url, prefix, pools))
    js_after, _ = asyncio.run(raw_rates(nats_url, rows, f"{prefix}b", core=False))
    js_rate = (js_before + js_after) / 2
    rate = last / seconds
    emit("outbox_nats_projection", rate, "events/s", "jetstream_publish_async", js_rate,
         baseline_before=round(js_before, 1), baseline_after=round(js_after, 1),
         events=last, seconds=round(seconds, 3), applied=outcome["applied"],
         commits=outcome["commits"], consumer_cpu_s=round(outcome["cpu_s"], 2),
         relay_cpu_s=round(relay_cpu_s, 2), cores=os.cpu_count(), target=20_000)
    emit("outbox_nats_projection_vs_core", rate, "events/s", "core_publish", core_rate,
         events=last)


# --- latency ---------------------------------------------------------------------------------


def percentile(ordered: Sequence[int], share: float) -> float:
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))] / 1000


def live_simulation(path: Path) -> tuple[SqliteStore, Simulation]:
    """A pool set up on the system clock, its simulator ready to run live."""
    return new_simulation(path, SystemClock(), system_ids())


def latency_nats(root: Path, nats_url: str, rate: float, duration: float
                 ) -> tuple[list[int], float, list[int]]:
    ledger_path = root / "latency-nats.sqlite3"
    projection_path = root / "latency-nats-projections.sqlite3"
    store, simulation = live_simulation(ledger_path)
    prefix = f"bench{uuid.uuid4().hex[:8]}"
    pools = sorted(OutboxReader(store).heads())
    asyncio.run(create_streams(nats_url, prefix, pools))
    context = multiprocessing.get_context("spawn")
    ready_relay, ready_consumer, go, stop = (context.Event() for _ in range(4))
    results, relay_results = context.Queue(), context.Queue()
    since_us = time.time_ns() // 1000 + 3_000_000  # after the setup events are through
    try:
        relay = start(relay_process, str(ledger_path), nats_url, prefix, ready_relay, go, stop,
                      relay_results)
        consumer = start(consumer_process, str(projection_path), nats_url, prefix, pools,
                         ready_consumer, go, None, stop, since_us, results)
        if not (ready_relay.wait(60) and ready_consumer.wait(60)):
            raise RuntimeError("the relay or the consumer did not start")
        go.set()
        time.sleep(max(0.0, since_us / 1e6 - time.time()))
        created = run_live(simulation, rate, duration)
        heads = OutboxReader(store).heads()
        projections = ProjectionStore(f"sqlite:///{projection_path}")
        deadline = time.monotonic() + 60
        while any(projections.cursor(p).seq < s for p, s in heads.items()) \
                and time.monotonic() < deadline:
            time.sleep(0.05)
        projections.close()
        stop.set()
        outcome = results.get(timeout=60)
        ages = [age for at_us, age in relay_results.get(timeout=60)["ages_us"]
                if at_us >= since_us]
        relay.join(30)
        consumer.join(30)
    finally:
        asyncio.run(delete_streams(nats_url, prefix, pools))
        store.close()
    return sorted(outcome["latencies_us"]), created / duration, sorted(ages)


# How often the simulator takes a step (creates the payments due and ticks the dispatcher):
# each step's ledger transactions stamp their events with the time they began, so a longer
# step makes every event older before it is even committed. 20 ms: 20 payments a step at
# 1,000 payments a second (`--step`).
STEP_S = 0.02


def run_live(simulation: Simulation, rate: float, duration: float) -> int:
    report = simulation.run(rate_per_s=rate, duration_s=duration, step_s=STEP_S)
    return sum(report.created.values())


def latency_in_process(root: Path, rate: float, duration: float) -> tuple[list[int], float]:
    store, simulation = live_simulation(root / "latency-feed.sqlite3")
    projector = Projector(ProjectionStore(f"sqlite:///{root / 'latency-feed-projections.db'}"))
    feed = OutboxFeed(OutboxReader(store), projector)
    feed.catch_up()  # the setup events
    since_us = time.time_ns() // 1000
    latencies: list[int] = []
    apply = projector.apply

    def timed_apply(items: Any, *, pos: int | None = None) -> ApplyReport:
        items = list(items)
        report = apply(items, pos=pos)
        now = time.time_ns() // 1000
        held = {(item.pool, item.seq) for item in report.held}
        latencies.extend(now - item.at_us for item in items
                         if isinstance(item, Event) and item.at_us >= since_us
                         and (item.pool, item.seq) not in held)
        return report

    projector.apply = timed_apply  # type: ignore[method-assign]
    follower = Follower(feed.catch_up, interval_s=0.05).start()
    try:
        created = run_live(simulation, rate, duration)
        outbox = OutboxReader(store)
        heads = outbox.heads()
        deadline = time.monotonic() + 60
        while any(projector.store.cursor(p).seq < s for p, s in heads.items()) \
                and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        follower.stop()
        store.close()
    return sorted(latencies), created / duration


def latency(root: Path, nats_url: str, rate: float, duration: float) -> None:
    through_nats, nats_rate, ages = latency_nats(root, nats_url, rate, duration)
    in_process, feed_rate = latency_in_process(root, rate, duration)
    for name, share in (("p50", 0.50), ("p99", 0.99)):
        emit(f"event_to_projection_{name}_at_{int(rate)}_payments_per_s",
             percentile(through_nats, share), "ms", "in_process_feed_follower_50ms",
             percentile(in_process, share), events=len(through_nats),
             baseline_events=len(in_process), payments_per_s=round(nats_rate, 1),
             baseline_payments_per_s=round(feed_rate, 1),
             age_when_relayed_ms=round(percentile(ages, share), 1) if ages else None,
             step_ms=round(STEP_S * 1000),
             **({"target_ms": 100} if name == "p99" else {}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nats", default=os.environ.get("FUNDPOOL_NATS_URL",
                                                         "nats://127.0.0.1:4222"))
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=1_000.0)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--only", choices=["throughput", "latency"], default=None)
    parser.add_argument("--step", type=float, default=STEP_S,
                        help="seconds between the live simulator's steps")
    args = parser.parse_args()
    globals()["STEP_S"] = args.step
    quiet_logs()
    tune_gc()
    root = Path(tempfile.mkdtemp(prefix="fundpool-bench-events-"))
    try:
        if args.only in (None, "throughput"):
            throughput(root, args.nats, args.events)
        if args.only in (None, "latency"):
            latency(root, args.nats, args.rate, args.duration)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
