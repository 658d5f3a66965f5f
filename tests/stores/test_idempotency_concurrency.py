"""Two requests with one idempotency key at the same moment produce one effect.

Four OS processes submit the same keyed transfers, in different orders, at the same instant,
against one ledger (a PostgreSQL schema, or one SQLite file). Every key must end with exactly
one journal entry, every process must see that entry (applied by it, or replayed), and the
money must have moved once per key.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fundpool.core.clock import ManualClock, Uuid7Ids
from fundpool.core.ledger.canonical import decode_body
from fundpool.core.ledger.model import Account
from fundpool.core.money import Asset, AssetKind
from fundpool.ledger.ports import LedgerStore
from fundpool.ledger.service import Ledger
from fundpool.ledger.verify import verify
from fundpool.stores import open_store
from tests.conftest import PG_URL, new_pg_schema, require_postgres
from tests.stores.together import WAIT_FOR_GO, start_together

PROCESSES = 4
KEYS = 300
BATCH = 25

# `python -c WORKER store_url index keys batch`: once connected, says it is ready and waits for
# the others (together.py); submits every key once, in an order of its own, in batches; prints
# {key: [status, seq]} as one JSON line.
WORKER = r"""
import json, random, sys
from fundpool.core.clock import Uuid7Ids
from fundpool.core.ledger.model import Posting, Transfer
from fundpool.ledger.service import Ledger
from fundpool.runtime import SystemClock
from fundpool.stores import open_store

url = sys.argv[1]
index, keys, batch = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
ledger = Ledger(open_store(db_url=url), SystemClock(), Uuid7Ids(random.Random(index)))
ledger.store.head()
order = list(range(keys))
random.Random(index).shuffle(order)
""" + WAIT_FOR_GO + r"""
seen = {}
for start in range(0, keys, batch):
    chunk = order[start:start + batch]
    commands = [
        Transfer((Posting("world:bank", "user:a", "USD", 100 + k),), {"k": str(k)}, f"key-{k}")
        for k in chunk
    ]
    for k, result in zip(chunk, ledger.submit(commands)):
        seq = result.entry.seq if result.entry is not None else result.seq
        seen[f"key-{k}"] = [result.status, seq]
print(json.dumps(seen))
"""


def _set_up(store: LedgerStore) -> None:
    store.initialise()
    ledger = Ledger(store, ManualClock(), Uuid7Ids.seeded(1))
    ledger.define_asset(Asset("USD", 2, AssetKind.FIAT))
    ledger.open_account(Account("world:bank"))
    ledger.open_account(Account("user:a", asset="USD"))


def _race(url: str) -> list[dict[str, list[object]]]:
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, url, str(i), str(KEYS), str(BATCH)],
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
        reports.append(json.loads(out.strip().splitlines()[-1]))
    return reports


def _check(store: LedgerStore, reports: list[dict[str, list[object]]]) -> None:
    entries_by_key: dict[str, list[int]] = {}
    for stored in store.entries():
        body = decode_body(stored.canonical)
        key = body.get("idempotency_key")
        if key is not None:
            entries_by_key.setdefault(key, []).append(stored.seq)
    assert sorted(entries_by_key) == sorted(f"key-{k}" for k in range(KEYS))
    assert all(len(seqs) == 1 for seqs in entries_by_key.values()), "a key took effect twice"
    applied_by = {key: 0 for key in entries_by_key}
    for report in reports:
        assert sorted(report) == sorted(entries_by_key)
        for key, (status, seq) in report.items():
            assert status in ("applied", "replayed"), (key, status)
            assert seq == entries_by_key[key][0], "a process was told of another entry"
            applied_by[key] += status == "applied"
    assert set(applied_by.values()) == {1}, "exactly one process applied each key"
    assert sum(1 for r in reports for s, _ in r.values() if s == "replayed") == KEYS * 3
    expected = sum(100 + k for k in range(KEYS))
    assert store.balances("user:a")[("user:a", "USD")].posted == expected
    assert verify(store).ok


@pytest.mark.slow
def test_one_key_one_effect_across_processes_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    store = open_store(db_url=url)
    _set_up(store)
    reports = _race(url)
    _check(store, reports)
    store.close()


@pytest.mark.slow
@pytest.mark.postgres
def test_one_key_one_effect_across_processes_postgres() -> None:
    require_postgres()
    schema = new_pg_schema()
    separator = "&" if "?" in PG_URL else "?"
    url = f"{PG_URL}{separator}schema={schema}"
    store = open_store(db_url=url)
    try:
        _set_up(store)
        reports = _race(url)
        _check(store, reports)
    finally:
        store.drop_schema()  # type: ignore[attr-defined]
        store.close()
