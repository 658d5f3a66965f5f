"""Crash safety: a writer killed with SIGKILL at a random moment loses nothing it acknowledged
and leaves no half batch, on SQLite and on PostgreSQL. Killed three times on the same store;
each restart retries the first batch it did not see acknowledged, which must then replay."""

from __future__ import annotations

import json
import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path

import pytest

from fundpool.ledger.ports import LedgerStore
from fundpool.ledger.verify import verify
from fundpool.stores.sqlite import SqliteStore

try:
    from tests.conftest import PG_URL, new_pg_schema, require_postgres
except ModuleNotFoundError:  # tests/ is not a package: pytest put tests/ itself on the path
    from conftest import PG_URL, new_pg_schema, require_postgres  # type: ignore[no-redef]

pytestmark = pytest.mark.slow

WRITER = Path(__file__).with_name("crash_writer.py")
BATCH_SIZE = 500
POOL = "pool:main:usd:bank-a:available"
USD = "USD"
ROUNDS = 3
# Start-up (a fresh Python importing fundpool) and a few batches; generous for a busy machine,
# it ends as soon as the writer answers.
ROUND_TIMEOUT_S = 90.0
STOP_S_MAX = 30.0  # a killed writer gone and its last lines read


class Child:
    """The writer subprocess, its stdout read line by line on a thread."""

    def __init__(self, args: list[str], hold: int | None = None) -> None:
        src = str(Path(__file__).resolve().parents[2] / "src")
        env = {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}
        env.pop("CRASH_WRITER_HOLD", None)
        if hold is not None:
            env["CRASH_WRITER_HOLD"] = str(hold)
        self.process = subprocess.Popen(
            [sys.executable, str(WRITER), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.strip())
        self.lines.put(None)

    def next_line(self, deadline: float) -> str:
        try:
            line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            self.kill()
            pytest.fail("the writer said nothing in time")
        if line is None:
            stderr = self.process.stderr.read() if self.process.stderr else ""
            pytest.fail(f"the writer ended on its own: {stderr[-2000:]}")
        return line

    def kill(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=STOP_S_MAX)

    def rest(self) -> list[str]:
        """Every line the writer printed before it died."""
        self._reader.join(timeout=STOP_S_MAX)
        lines = []
        while True:
            line = self.lines.get_nowait()
            if line is None:
                return lines
            lines.append(line)


def parse_ack(line: str) -> tuple[int, int, int]:
    word, n, applied, replayed = line.split()
    assert word == "acked", line
    return int(n), int(applied), int(replayed)


def batches_in(store: LedgerStore) -> dict[int, set[str]]:
    """Idempotency keys of the transfers in the journal, by batch number."""
    keys: dict[int, set[str]] = defaultdict(set)
    counts: Counter[int] = Counter()
    for entry in store.entries():
        if entry.kind != "transfer":
            continue
        body = json.loads(entry.canonical)
        n = int(body["metadata"]["batch"])
        counts[n] += 1
        keys[n].add(body["idempotency_key"])
    for n, count in counts.items():
        assert count == len(keys[n]), f"batch {n} has a key twice"
    return dict(keys)


def check(store: LedgerStore, acked: set[int]) -> dict[int, set[str]]:
    present = batches_in(store)
    for n in acked:
        assert n in present, f"acknowledged batch {n} is lost"
    for n, keys in present.items():
        assert keys == {f"b{n}-{i}" for i in range(BATCH_SIZE)}, (
            f"batch {n} is partly written: {len(keys)} of {BATCH_SIZE}"
        )
    # batches are written in order, each only after the one before was acknowledged
    assert sorted(present) == list(range(len(present)))
    assert max(acked, default=-1) <= len(present) - 1 <= max(acked, default=-1) + 1
    report = verify(store)
    assert report.ok, report.problem
    per_batch = sum(range(1, BATCH_SIZE + 1))
    assert store.balances()[POOL, USD].posted == len(present) * per_batch
    return present


def crash_three_times(
    child_args: Callable[[int], list[str]], reopen: Callable[[], LedgerStore], seed: int
) -> None:
    """Three kills. The second one lands after a batch committed but before it was acked."""
    rng = random.Random(seed)
    acked: set[int] = set()
    present: dict[int, set[str]] = {}
    for kill in range(ROUNDS):
        start = max(acked, default=-1) + 1
        retried_was_present = start in present
        wanted = rng.randint(2, 4)
        hold = start + wanted if kill == 1 else None
        child = Child(child_args(start), hold=hold)
        deadline = time.monotonic() + ROUND_TIMEOUT_S
        assert child.next_line(deadline) == "ready"
        times: list[float] = []
        first: tuple[int, int, int] | None = None
        while len(times) < wanted:
            ack = parse_ack(child.next_line(deadline))
            first = first or ack
            acked.add(ack[0])
            times.append(time.monotonic())
        if hold is not None:
            wait_for_batch(reopen, hold, deadline)
        else:
            # kill at a random point of a later batch, most likely in the middle of its write
            batch_s = (times[-1] - times[0]) / max(1, len(times) - 1)
            time.sleep(rng.uniform(0.0, 1.5 * batch_s))
        child.kill()
        for line in child.rest():
            acked.add(parse_ack(line)[0])
        # the first batch of a restart is the one not seen acknowledged: it replays if the
        # killed writer had committed it, and is applied in full otherwise
        assert first is not None
        assert first[0] == start
        expected = (0, BATCH_SIZE) if retried_was_present else (BATCH_SIZE, 0)
        assert first[1:] == expected, (first, retried_was_present)
        if kill == 2:
            assert retried_was_present, "the batch held unacknowledged was retried"
        store = reopen()
        try:
            present = check(store, acked)
        finally:
            store.close()
        if hold is not None:
            assert hold in present
            assert hold not in acked
    assert len(acked) >= 2 * ROUNDS


def wait_for_batch(reopen: Callable[[], LedgerStore], n: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        store = reopen()
        try:
            if n in batches_in(store):
                return
        finally:
            store.close()
        time.sleep(0.02)
    pytest.fail(f"batch {n} was never committed")


def two_writers_at_once(
    child_args: Callable[[int], list[str]], reopen: Callable[[], LedgerStore]
) -> None:
    """Two writers share the store (each caching balances between its batches) and are killed
    together: the chain has one order, every batch is whole, the balance table is right."""
    offsets = (0, 10_000)
    children = [Child(child_args(offset)) for offset in offsets]
    deadline = time.monotonic() + ROUND_TIMEOUT_S
    acked: set[int] = set()
    for child in children:
        assert child.next_line(deadline) == "ready"
    counts = [0, 0]
    while min(counts) < 3:
        for index, child in enumerate(children):
            if counts[index] < 3:
                acked.add(parse_ack(child.next_line(deadline))[0])
                counts[index] += 1
    for child in children:
        child.kill()
        acked.update(parse_ack(line)[0] for line in child.rest())
    store = reopen()
    try:
        present = batches_in(store)
        assert acked <= set(present)
        for n, keys in present.items():
            assert len(keys) == BATCH_SIZE, f"batch {n} is partly written"
        for offset in offsets:
            mine = sorted(n for n in present if offset <= n < offset + 10_000)
            assert mine == list(range(offset, offset + len(mine)))
            assert len(mine) >= 3
        report = verify(store)
        assert report.ok, report.problem
        per_batch = sum(range(1, BATCH_SIZE + 1))
        assert store.balances()[POOL, USD].posted == len(present) * per_batch
    finally:
        store.close()


def test_sqlite_two_writers_at_once(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    SqliteStore(path).initialise()  # both writers would otherwise race to create the schema
    two_writers_at_once(lambda start: ["sqlite", str(path), str(start)], lambda: SqliteStore(path))


@pytest.mark.postgres
def test_postgres_two_writers_at_once() -> None:
    require_postgres()
    from fundpool.stores.postgres import PostgresStore

    schema = new_pg_schema()
    store = PostgresStore(PG_URL, schema=schema)
    store.initialise()
    try:
        two_writers_at_once(
            lambda start: ["postgres", PG_URL, schema, str(start)],
            lambda: PostgresStore(PG_URL, schema=schema),
        )
    finally:
        store.drop_schema()
        store.close()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sqlite_writer_killed_three_times(tmp_path: Path, seed: int) -> None:
    path = tmp_path / "ledger.sqlite3"

    def reopen() -> LedgerStore:
        return SqliteStore(path)

    crash_three_times(lambda start: ["sqlite", str(path), str(start)], reopen, seed=seed)


@pytest.mark.postgres
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_postgres_writer_killed_three_times(seed: int) -> None:
    require_postgres()
    from fundpool.stores.postgres import PostgresStore

    schema = new_pg_schema()

    def reopen() -> LedgerStore:
        return PostgresStore(PG_URL, schema=schema)

    try:
        crash_three_times(lambda start: ["postgres", PG_URL, schema, str(start)], reopen, seed=2)
    finally:
        store = PostgresStore(PG_URL, schema=schema)
        store.drop_schema()
        store.close()
