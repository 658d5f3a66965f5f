"""Four OS processes write to one PostgreSQL ledger at once, against the same few hot accounts.

The hot accounts may not go negative and hold far less than the processes ask of them, so many
transfers are rejected. Each process has its own `Ledger` (and so its own balance cache) over its
own `PostgresStore`; the store's advisory lock must serialise their batches so that the hash chain
has one total order, no transfer overdraws an account, and no update is lost.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import time
from collections import Counter
from typing import Any

import pytest

try:
    from tests.conftest import PG_URL, new_pg_schema, require_postgres
except ModuleNotFoundError:  # tests/ is not a package: pytest put tests/ itself on the path
    from conftest import PG_URL, new_pg_schema, require_postgres  # type: ignore[no-redef]
from fundpool.core.clock import Uuid7Ids
from fundpool.core.ledger.canonical import chain_hash, decode_body
from fundpool.core.ledger.model import GENESIS_HASH, Account, Balance, Posting
from fundpool.core.money import Asset, AssetKind
from fundpool.ledger.service import Ledger
from fundpool.stores.postgres import PostgresStore
from tests.stores.together import WAIT_FOR_GO, start_together

PROCESSES = 4
BATCHES = 100  # per process; batch sizes are drawn from BATCH_SIZES
WORLD = "world:bank-a"
HOT = ("hot:a", "hot:b", "hot:c")
SINKS = ("sink:x", "sink:y")
FUNDING = 300  # per hot account, against a demand of tens of thousands
TERMINATED_MS_MAX = 30_000

# Run by each process as `python -c WORKER url schema index batches`; once connected it says it
# is ready and waits for the others (together.py). Prints one JSON line: every transfer it
# asked for, with whether it was accepted, its entry id and its error.
WORKER = r"""
import json
import random
import sys
import time

from fundpool.core.clock import Uuid7Ids
from fundpool.core.ledger.model import Posting, Transfer
from fundpool.ledger.service import Ledger
from fundpool.stores.postgres import PostgresStore

HOT = ("hot:a", "hot:b", "hot:c")
SINKS = ("sink:x", "sink:y")
WORLD = "world:bank-a"
BATCH_SIZES = (1, 1, 2, 3, 8, 20, 50)


class Clock:
    def now_us(self):
        return time.time_ns() // 1000


def posting(rng):
    roll = rng.random()
    if roll < 0.05:  # a small refill from outside
        return (WORLD, rng.choice(HOT), rng.randint(1, 10))
    source = rng.choice(HOT)
    if roll < 0.70:
        destination = rng.choice([h for h in HOT if h != source])
    else:
        destination = rng.choice(SINKS)
    return (source, destination, rng.randint(1, 30))


url, schema, index, batches = sys.argv[1:5]
index, batches = int(index), int(batches)
rng = random.Random(1_000 + index)
ledger = Ledger(PostgresStore(url, schema=schema), Clock(), Uuid7Ids(random.Random(index)))
ledger.store.head()  # connected and ready before the start
""" + WAIT_FOR_GO + r"""

records = []
for _ in range(batches):
    commands, asked = [], []
    for _ in range(rng.choice(BATCH_SIZES)):
        ref = f"w{index}-{len(records) + len(asked)}"
        postings = [posting(rng)]
        if rng.random() < 0.15:  # two hot accounts debited in one transaction
            second = posting(rng)
            if second[0] != WORLD:
                postings.append(second)
        commands.append(
            Transfer(tuple(Posting(s, d, "USD", a) for s, d, a in postings), {"ref": ref})
        )
        asked.append((ref, postings))
    results = ledger.submit(commands)
    for (ref, postings), result in zip(asked, results):
        records.append(
            {
                "ref": ref,
                "ok": result.ok,
                "id": result.entry.id if result.entry is not None else None,
                "seq": result.entry.seq if result.entry is not None else None,
                "code": result.error.code if result.error is not None else None,
                "postings": postings,
            }
        )
ledger.store.close()
print(json.dumps(records))
"""


class SystemClock:
    def now_us(self) -> int:
        return time.time_ns() // 1000


def run_workers(schema: str) -> list[list[dict[str, Any]]]:
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, PG_URL, schema, str(i), str(BATCHES)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(PROCESSES)
    ]
    start_together(workers)
    reports = []
    for worker in workers:
        out, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err
        reports.append(json.loads(out))
    return reports


@pytest.mark.postgres
@pytest.mark.slow
def test_four_processes_on_hot_accounts_keep_the_ledger_exact() -> None:
    require_postgres()
    schema = new_pg_schema()
    store = PostgresStore(PG_URL, schema=schema)
    try:
        store.initialise()
        setup = Ledger(store, SystemClock(), Uuid7Ids.seeded(42))
        setup.define_asset(Asset("USD", 2, AssetKind.FIAT))
        for address in (WORLD, *HOT, *SINKS):
            setup.open_account(Account(address))
        for address in HOT:
            setup.transfer([Posting(WORLD, address, "USD", FUNDING)], metadata={"ref": "setup"})
        setup_seq = store.head().seq

        reports = run_workers(schema)
        records = [record for report in reports for record in report]
        accepted = [r for r in records if r["ok"]]
        rejected = [r for r in records if not r["ok"]]

        # The demand was far above the funds: many were refused, for that reason only.
        assert Counter(r["code"] for r in rejected) == {"insufficient_funds": len(rejected)}
        assert len(rejected) >= len(records) // 5, (len(rejected), len(records))
        assert len(accepted) >= 100, len(accepted)
        assert all(r["id"] is None for r in rejected)

        # The chain: seq 1..head with no gap, each hash over its predecessor's.
        prev, seq = GENESIS_HASH, 0
        journal: dict[str, tuple[str, int]] = {}  # ref -> (entry id, seq)
        writers = []
        for entry in store.entries():
            seq += 1
            assert entry.seq == seq
            assert entry.hash == chain_hash(prev, entry.canonical), entry.seq
            prev = entry.hash
            body = decode_body(entry.canonical)
            assert body["id"] == entry.id
            assert body["seq"] == entry.seq
            if entry.seq > setup_seq:
                ref = body["metadata"]["ref"]
                assert ref not in journal, ref
                journal[ref] = (entry.id, entry.seq)
                writers.append(ref.split("-")[0])
        assert prev == store.head().hash
        assert seq == setup_seq + len(accepted)

        # Every accepted transfer is in the journal as reported, and no rejected one is.
        assert set(journal) == {r["ref"] for r in accepted}
        for record in accepted:
            assert journal[record["ref"]] == (record["id"], record["seq"])
        assert not {r["ref"] for r in rejected} & set(journal)
        # The processes really did interleave their batches.
        switches = sum(1 for a, b in itertools.pairwise(writers) if a != b)
        assert switches >= PROCESSES, switches

        # No lost update: each balance is its funding plus the accepted postings.
        expected: Counter[str] = Counter()
        for address in HOT:
            expected[address] += FUNDING
            expected[WORLD] -= FUNDING
        for record in accepted:
            for source, destination, amount in record["postings"]:
                expected[source] -= amount
                expected[destination] += amount
        balances = store.balances()
        assert {address for address, _ in balances} == set(expected)
        for (address, asset), balance in balances.items():
            assert asset == "USD"
            assert balance == Balance(expected[address], 0, 0), address
        assert sum(b.posted for b in balances.values()) == 0
        for account in store.accounts():
            if not account.allow_negative:
                assert balances[(account.address, "USD")].posted >= 0, account.address
        assert balances[(WORLD, "USD")].posted < 0

        try:
            from fundpool.ledger.verify import verify
        except ImportError:  # pragma: no cover - the module arrives separately
            return
        report = verify(store)
        assert report.ok, report.problem
    finally:
        store.drop_schema()
        store.close()


@pytest.mark.postgres
def test_a_writer_waits_for_the_lock_and_gives_up_with_a_store_error() -> None:
    require_postgres()
    import psycopg

    from fundpool.core.errors import StoreError
    from fundpool.stores.postgres import lock_key

    store = PostgresStore(PG_URL, schema=new_pg_schema())
    try:
        store.initialise()
        # Another process holds the ledger's lock (it is in the middle of a batch).
        with psycopg.connect(PG_URL) as other:
            other.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key(store.schema),))
            store.db.connection().execute("SET lock_timeout = '200ms'")
            with pytest.raises(StoreError, match="could not begin a write"), store.write():
                pass
            assert store.head().seq == 0  # reads do not wait for writers
            other.rollback()
        with store.write() as session:
            assert session.head.seq == 0
    finally:
        store.drop_schema()
        store.close()


@pytest.mark.postgres
def test_a_connection_the_server_dropped_is_opened_again() -> None:
    require_postgres()
    import psycopg

    store = PostgresStore(PG_URL, schema=new_pg_schema())
    ledger = Ledger(store, SystemClock(), Uuid7Ids.seeded(3))

    def kill_backend() -> None:
        with psycopg.connect(PG_URL, autocommit=True) as admin:
            # With a timeout the call returns once the backend is gone, not when it was only
            # asked to go: the store's next query meets a dropped connection, never a live one.
            admin.execute("SELECT pg_terminate_backend(%s, %s)",
                          (store.db.connection().info.backend_pid, TERMINATED_MS_MAX))

    try:
        store.initialise()
        ledger.define_asset(Asset("USD", 2, AssetKind.FIAT))
        kill_backend()
        assert store.head().seq == 1
        kill_backend()
        ledger.open_account(Account(WORLD))
        assert store.head().seq == 2
        assert [a.address for a in store.accounts()] == [WORLD]
    finally:
        store.drop_schema()
        store.close()
