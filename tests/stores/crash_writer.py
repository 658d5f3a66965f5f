"""A writer to be killed: run by tests/stores/test_crash.py as a subprocess.

    python crash_writer.py sqlite PATH START
    python crash_writer.py postgres URL SCHEMA START

Opens the ledger, then loops: submits batch `n` of 500 transfers (metadata {"batch": str(n)},
idempotency keys f"b{n}-{i}") and, once `submit` has returned, prints
`acked n <applied> <replayed>` and flushes. It stops by itself after a while, in case its parent
is gone; normally it is killed with SIGKILL long before.

With CRASH_WRITER_HOLD=N in its environment it commits batch N, then sleeps without
acknowledging it: the parent kills it there to make a committed batch that was never acked.
"""

from __future__ import annotations

import os
import random
import sys
import time

from fundpool.core.clock import Uuid7Ids
from fundpool.core.ledger.model import Account, DefineAsset, OpenAccount, Posting, Transfer
from fundpool.core.money import Asset, AssetKind
from fundpool.ledger.ports import LedgerStore
from fundpool.ledger.service import Ledger

BATCH_SIZE = 500
LIFETIME_S = 180.0  # a writer the test forgot ends by itself; past any round's time-out
WORLD = "world:bank-a"
POOL = "pool:main:usd:bank-a:available"
USD = "USD"


class WallClock:
    def now_us(self) -> int:
        return time.time_ns() // 1000


def open_store(argv: list[str]) -> tuple[LedgerStore, int]:
    if argv[0] == "sqlite":
        from fundpool.stores.sqlite import SqliteStore

        return SqliteStore(argv[1]), int(argv[2])
    from fundpool.stores.postgres import PostgresStore

    return PostgresStore(argv[1], schema=argv[2]), int(argv[3])


def batch(n: int) -> list[Transfer]:
    return [
        Transfer((Posting(WORLD, POOL, USD, 1 + i),), {"batch": str(n)}, f"b{n}-{i}")
        for i in range(BATCH_SIZE)
    ]


def main(argv: list[str]) -> None:
    store, n = open_store(argv)
    store.initialise()
    ledger = Ledger(store, WallClock(), Uuid7Ids(random.SystemRandom()))
    setup = ledger.submit(
        [
            DefineAsset(Asset(USD, 2, AssetKind.FIAT)),
            OpenAccount(Account(WORLD)),
            OpenAccount(Account(POOL, asset=USD)),
        ]
    )
    if not all(result.ok for result in setup):
        raise SystemExit(f"setup failed: {setup}")
    print("ready", flush=True)
    hold = int(os.environ.get("CRASH_WRITER_HOLD", "-1"))
    deadline = time.monotonic() + LIFETIME_S
    while time.monotonic() < deadline:
        results = ledger.submit(batch(n))
        applied = sum(result.status == "applied" for result in results)
        replayed = sum(result.status == "replayed" for result in results)
        if applied + replayed != BATCH_SIZE:
            raise SystemExit(f"batch {n} was not fully accepted: {results[:3]}")
        if n == hold:
            time.sleep(LIFETIME_S)
            raise SystemExit("held too long")
        print(f"acked {n} {applied} {replayed}", flush=True)
        n += 1


if __name__ == "__main__":
    main(sys.argv[1:])
