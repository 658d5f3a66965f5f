"""Ledger throughput, with the store's own raw write rate for the same rows as the baseline.

Prints one JSON line per figure:
  {"bench": "ledger", "store": ..., "workload": ..., "value": ..., "unit": "transfers/s",
   "baseline": "raw_insert" | "raw_insert_with_outbox", "baseline_value": ..., "ratio": ...}

Method. Each workload runs on a freshly set-up ledger (10,000 single-asset accounts that may not
go negative, each funded from `world:bank`), through `Ledger.submit`, timing from the first
submit to the last commit. Commands are built before the clock starts, as an API worker would
have parsed them. Every batch outcome the ledger saved, and the outbox events it wrote with it,
are recorded. Two baselines are set up the same way (the engine is deterministic, so their
rows are identical) and replay, in the same transaction sizes and through the same `bulk` path
of `LedgerStore.write`:
- `raw_insert`: the outcomes alone, with the store's own `save()`: the journal, legs and
  balance rows with no validation, balance logic, canonical encoding or hashing (issue 15's
  baseline);
- `raw_insert_with_outbox`: the outcomes and the very same outbox events
  (`append_events`), i.e. every row the ledger's transaction writes.
The ledger and its baselines advance in lockstep (100 transfers of the ledger, then their
replays, and so on), so that all see the same machine. The ratio is what is left of the
store's physical rate once the ledger does its work. The process runs with the
garbage-collector settings every fundpool entry point uses (`tune_gc`).

Usage: python bench/ledger.py [--store sqlite|postgres|all] [--scale 1.0] [--only WORKLOAD]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fundpool.core.clock import ManualClock, Uuid7Ids
from fundpool.core.ledger.engine import BatchOutcome
from fundpool.core.ledger.model import Account, OpenAccount, Posting, Transfer
from fundpool.core.money import Asset, AssetKind
from fundpool.events.model import Event
from fundpool.ledger.ports import LedgerStore, WriteSession
from fundpool.ledger.service import BATCH_COMMANDS_MAX, Ledger
from fundpool.runtime import tune_gc
from fundpool.stores.sqlite import SqliteStore

ACCOUNTS = 10_000
FUNDING_MINOR = 10**15
PG_URL = os.environ.get("FUNDPOOL_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


@dataclass(frozen=True)
class Workload:
    name: str
    batch: int
    transfers: int
    hot: bool = False


def workloads(scale: float) -> list[Workload]:
    def n(count: int) -> int:
        return max(1, int(count * scale))

    return [
        Workload("uniform_batch_8192", 8_192, n(81_920)),
        Workload("uniform_batch_1000", 1_000, n(40_000)),
        Workload("hot_batch_8192", 8_192, n(81_920), hot=True),
        Workload("uniform_one_per_commit", 1, n(1_000)),
    ]


class RecordingStore:
    """Passes everything to `store` and keeps each batch outcome its sessions save."""

    def __init__(self, store: LedgerStore) -> None:
        self.store = store
        self.outcomes: list[tuple[BatchOutcome, bool]] = []  # with the write's `bulk`
        self.events: list[list[Event]] = []  # each transaction's outbox events

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    @contextmanager
    def write(self, *, bulk: bool = False) -> Iterator[WriteSession]:
        with self.store.write(bulk=bulk) as session:
            yield _RecordingSession(session, self.outcomes, bulk, self.events)


class _RecordingSession:
    def __init__(self, session: WriteSession, outcomes: list[tuple[BatchOutcome, bool]],
                 bulk: bool, events: list[list[Event]]) -> None:
        self._session = session
        self._outcomes = outcomes
        self._bulk = bulk
        self._events = events

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)

    def save(self, outcome: BatchOutcome) -> None:
        self._outcomes.append((outcome, self._bulk))
        self._session.save(outcome)

    def append_events(self, events: Sequence[Event]) -> None:
        self._events.append(list(events))
        self._session.append_events(events)


def set_up(store: LedgerStore) -> Ledger:
    """The same deterministic ledger every time: identical rows in every store."""
    store.initialise()
    ledger = Ledger(store, ManualClock(), Uuid7Ids.seeded(2026))
    ledger.define_asset(Asset("USD", 2, AssetKind.FIAT))
    ledger.open_account(Account("world:bank"))
    names = [f"user:u{i:05d}:usd" for i in range(ACCOUNTS)]
    for start in range(0, ACCOUNTS, BATCH_COMMANDS_MAX):
        chunk = names[start : start + BATCH_COMMANDS_MAX]
        ledger.submit([OpenAccount(Account(name, asset="USD")) for name in chunk])
        ledger.submit(
            [Transfer((Posting("world:bank", name, "USD", FUNDING_MINOR),)) for name in chunk]
        )
    return ledger


def transfers(workload: Workload, seed: int) -> list[list[Transfer]]:
    rng = random.Random(seed)
    names = [f"user:u{i:05d}:usd" for i in range(ACCOUNTS)]
    hot = names[0]
    batches: list[list[Transfer]] = []
    made = 0
    while made < workload.transfers:
        size = min(workload.batch, workload.transfers - made)
        batch = []
        for _ in range(size):
            source = names[rng.randrange(1, ACCOUNTS)]
            if workload.hot and rng.random() < 0.5:
                destination = hot
            else:
                destination = names[rng.randrange(ACCOUNTS)]
                while destination == source:
                    destination = names[rng.randrange(ACCOUNTS)]
            amount = rng.randrange(1, 100_000)
            batch.append(Transfer((Posting(source, destination, "USD", amount),)))
        batches.append(batch)
        made += size
    return batches


def run_workload(
    new_store: Callable[[str], LedgerStore], drop: Callable[[LedgerStore], None], w: Workload
) -> tuple[float, float, float]:
    """Rates of the ledger, of the raw insert of its rows, and of the raw insert of its rows
    and its outbox events. The three stores are set up first, then advance in lockstep: a
    slice of the ledger's batches, timed, then each baseline's replay of exactly those, timed;
    so a machine that gets busier (another process's fsyncs) slows all alike."""
    batches = transfers(w, seed=hash(w.name) & 0xFFFF)
    recording = RecordingStore(new_store("ledger"))
    ledger = set_up(recording)  # type: ignore[arg-type]
    raw = new_store("raw")
    set_up(raw)
    raw_events = new_store("rawev")
    set_up(raw_events)
    recording.outcomes.clear()
    recording.events.clear()
    per_slice = max(1, 100 // w.batch)
    ledger_s = raw_s = raw_events_s = 0.0
    for start in range(0, len(batches), per_slice):
        started = time.perf_counter()
        for batch in batches[start:start + per_slice]:
            results = ledger.submit(batch)
            if not all(r.ok for r in results):
                bad = next(r for r in results if not r.ok)
                raise SystemExit(f"{w.name}: a benchmark transfer was rejected: {bad.error}")
        ledger_s += time.perf_counter() - started
        started = time.perf_counter()
        for outcome, bulk in recording.outcomes:
            with raw.write(bulk=bulk) as session:  # the same path of the store as the ledger's
                session.save(outcome)
        raw_s += time.perf_counter() - started
        started = time.perf_counter()
        for (outcome, bulk), events in zip(recording.outcomes, recording.events, strict=True):
            with raw_events.write(bulk=bulk) as session:
                session.save(outcome)
                session.append_events(events)
        raw_events_s += time.perf_counter() - started
        last = recording.outcomes[-1][0]
        recording.outcomes.clear()
        recording.events.clear()
    for store in (raw, raw_events):
        if store.head() != last.head:
            raise SystemExit(f"{w.name}: a baseline store did not end at the ledger's head")
    drop(recording.store)
    drop(raw)
    drop(raw_events)
    return w.transfers / ledger_s, w.transfers / raw_s, w.transfers / raw_events_s


def emit(store: str, workload: str, value: float, baseline: str, baseline_value: float) -> None:
    line = {
        "bench": "ledger",
        "store": store,
        "workload": workload,
        "value": round(value, 1),
        "unit": "transfers/s",
        "baseline": baseline,
        "baseline_value": round(baseline_value, 1),
        "ratio": round(value / baseline_value, 3),
    }
    print(json.dumps(line), flush=True)


def bench_store(name: str, scale: float, only: set[str] | None = None) -> None:
    if name == "sqlite":
        root = Path(tempfile.mkdtemp(prefix="fundpool-bench-"))

        def new_store(label: str) -> LedgerStore:
            path = root / f"{label}-{uuid.uuid4().hex[:8]}.sqlite3"
            return SqliteStore(path)

        def drop(store: LedgerStore) -> None:
            store.close()

        cleanup: Callable[[], None] = lambda: shutil.rmtree(root, ignore_errors=True)  # noqa: E731
    else:
        try:
            import psycopg

            with psycopg.connect(PG_URL, connect_timeout=3):
                pass
            from fundpool.stores.postgres import PostgresStore
        except Exception as error:
            print(f"bench: PostgreSQL skipped ({error})", file=sys.stderr)
            return

        def new_store(label: str) -> LedgerStore:
            return PostgresStore(PG_URL, schema=f"bench_{label}_{uuid.uuid4().hex[:8]}")

        def drop(store: LedgerStore) -> None:
            store.drop_schema()  # type: ignore[attr-defined]
            store.close()

        cleanup = lambda: None  # noqa: E731

    try:
        rates: dict[str, float] = {}
        for w in workloads(scale):
            if only and w.name not in only:
                continue
            value, baseline_value, with_events = run_workload(new_store, drop, w)
            rates[w.name] = value
            emit(name, w.name, value, "raw_insert", baseline_value)
            emit(name, w.name, value, "raw_insert_with_outbox", with_events)
        if "hot_batch_8192" not in rates or "uniform_batch_8192" not in rates:
            return
        emit(
            name,
            "hot_vs_uniform_batch_8192",
            rates["hot_batch_8192"],
            "uniform_batch_8192",
            rates["uniform_batch_8192"],
        )
    finally:
        cleanup()


def main() -> None:
    tune_gc()  # as every fundpool entry point does at start (fundpool.runtime)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", choices=["sqlite", "postgres", "all"], default="all")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply transfer counts")
    parser.add_argument("--only", action="append", metavar="WORKLOAD",
                        help="run only this workload (repeatable)")
    args = parser.parse_args()
    for name in ("sqlite", "postgres") if args.store == "all" else (args.store,):
        bench_store(name, args.scale, set(args.only or ()))


if __name__ == "__main__":
    main()
