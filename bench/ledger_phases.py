"""Where a ledger batch's wall time goes, phase by phase: the profile tables of
docs/benchmarks.md (issue 15). Not a benchmark (it prints a table, not JSON lines): each phase
of `Ledger.submit` is wrapped with a timer, on the same set-up as bench/ledger.py.

Usage: python bench/ledger_phases.py sqlite|postgres TRANSFERS BATCH [hot]
       (e.g. `sqlite 1000 1` for one transfer per commit, `postgres 40960 8192` for batches)
"""

from __future__ import annotations

import collections
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from typing import Any

import fundpool.core.ledger.engine as engine
import fundpool.ledger.service as service
from fundpool.ledger.ports import LedgerStore
from fundpool.runtime import tune_gc
from fundpool.stores import ledger_sql
from fundpool.stores.sqlite import SqliteStore
from ledger import PG_URL, Workload, set_up, transfers

spent: collections.Counter[str] = collections.Counter()


def timed(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            spent[name] += time.perf_counter() - started
    return wrapper


def main() -> None:
    tune_gc()
    kind, count, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    store: LedgerStore
    if kind == "sqlite":
        store = SqliteStore(tempfile.mkdtemp(prefix="fundpool-phases-") + "/ledger.sqlite3")
    else:
        from fundpool.stores.postgres import PostgresStore

        store = PostgresStore(PG_URL, schema=f"phases_{uuid.uuid4().hex[:8]}")
    ledger = set_up(store)
    write = ledger_sql.SqlWrite
    write.save = timed("journal, legs, balances rows", write.save)  # type: ignore[method-assign]
    write.append_events = timed("outbox: insert", write.append_events)  # type: ignore[method-assign]
    for name in ("due_pendings", "next_expiry_us", "load_assets", "load_accounts",
                 "load_balances", "load_idempotency"):
        if hasattr(write, name):
            setattr(write, name, timed("reads in the transaction", getattr(write, name)))
    service.entry_events = timed("outbox: building the events", service.entry_events)
    service._load = timed("what the batch needs (_load)", service._load)
    engine.BatchEngine.apply = timed(  # type: ignore[method-assign]
        "the engine: apply", engine.BatchEngine.apply)
    engine.BatchEngine.finish = timed(  # type: ignore[method-assign]
        "the engine: finish", engine.BatchEngine.finish)
    hot = sys.argv[4:] == ["hot"]
    batches = transfers(Workload("phases", batch, count, hot=hot), 7)
    started = time.perf_counter()
    for commands in batches:
        ledger.submit(commands)
    total = time.perf_counter() - started
    spent["begin, lock, head, commit (the rest)"] = total - sum(spent.values())
    print(f"{kind}, {'hot ' if hot else ''}batches of {batch}: {count / total:,.0f} transfers/s, "
          f"{total / count * 1e6:.0f} us each")
    print("| phase | share | per transfer |\n|---|---:|---:|")
    for name, seconds in spent.most_common():
        print(f"| {name} | {seconds / total:.0%} | {seconds / count * 1e6:.1f} us |")
    if kind != "sqlite":
        store.drop_schema()  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
