"""What one commit costs besides its own rows (issue 15): on PostgreSQL a single transfer is two
round trips (the begin, lock and head; then the writes with the commit), an error in a queued
write still rolls the whole transaction back, and no commit looks for due expiries when none can
be due."""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from fundpool.core.clock import ManualClock, Uuid7Ids
from fundpool.core.ledger.model import Account, Posting
from fundpool.core.money import Asset, AssetKind
from fundpool.ledger.ports import LedgerStore
from fundpool.ledger.service import Ledger
from fundpool.sql.database import Database
from fundpool.sql.url import DatabaseUrl
from tests.conftest import PG_URL, new_pg_schema, require_postgres


def _funded(store: LedgerStore) -> Ledger:
    ledger = Ledger(store, ManualClock(), Uuid7Ids.seeded(15))
    ledger.define_asset(Asset("USD", 2, AssetKind.FIAT))
    ledger.open_account(Account("world:bank"))
    ledger.open_account(Account("user:a:usd", asset="USD"))
    ledger.open_account(Account("user:b:usd", asset="USD"))
    ledger.transfer([Posting("world:bank", "user:a:usd", "USD", 10**9)])
    return ledger


def _round_trips(trace: str) -> int:
    """Times the client waited for the server: a frontend message followed by a backend one."""
    lines = trace.splitlines()
    return sum(1 for sent, came in itertools.pairwise(lines)
               if "\tF\t" in sent and "\tB\t" in came)


@pytest.fixture
def pg_store() -> Iterator[Any]:
    require_postgres()
    from fundpool.stores.postgres import PostgresStore

    store = PostgresStore(PG_URL, schema=new_pg_schema())
    store.initialise()
    try:
        yield store
    finally:
        store.drop_schema()
        store.close()


def _traced(store: Any, run: Any) -> str:
    connection = store.db.connection()
    with tempfile.TemporaryFile("w+") as trace:
        connection.pgconn.trace(trace.fileno())
        try:
            run()
        finally:
            connection.pgconn.untrace()
        trace.flush()
        trace.seek(0)
        return trace.read()


@pytest.mark.postgres
def test_a_single_transfer_takes_two_round_trips_on_postgresql(pg_store: Any) -> None:
    """Two without an idempotency key; a key is looked up first, which makes three."""
    ledger = _funded(pg_store)
    ledger.transfer([Posting("user:a:usd", "user:b:usd", "USD", 1)])  # the cache is warm

    def plain() -> None:
        for amount in range(1, 11):
            ledger.transfer([Posting("user:a:usd", "user:b:usd", "USD", amount)])

    def keyed() -> None:
        for amount in range(1, 11):
            ledger.transfer([Posting("user:a:usd", "user:b:usd", "USD", amount)],
                            idempotency_key=f"k-{amount}")

    text = _traced(pg_store, plain)
    assert text.count('"COMMIT"') >= 10  # the trace saw every transaction
    assert _round_trips(text) == 2 * 10
    assert _round_trips(_traced(pg_store, keyed)) == 3 * 10
    balances = ledger.balances("user:b:usd")
    assert balances["USD"].posted == 1 + 2 * sum(range(1, 11))  # and every one is stored


@pytest.mark.postgres
def test_a_queued_write_that_fails_rolls_back_the_whole_transaction() -> None:
    require_postgres()
    db = Database(DatabaseUrl("postgresql", PG_URL, new_pg_schema()))
    db.create()
    try:
        with db.transaction() as tx:
            tx.execute("CREATE TABLE t (k INT PRIMARY KEY)")
        def twice() -> None:
            with db.transaction("t", pipeline=True) as tx:
                assert tx.pipelined
                tx.send("INSERT INTO t (k) VALUES (?)", (1,))
                tx.send("INSERT INTO t (k) VALUES (?)", (1,))  # raised when the commit is sent

        with pytest.raises(psycopg.errors.UniqueViolation):
            twice()
        assert db.rows("SELECT k FROM t") == []  # the first insert went too
        with db.transaction("t", pipeline=True) as tx:
            tx.send("INSERT INTO t (k) VALUES (?)", (2,))
        assert db.rows("SELECT k FROM t") == [(2,)]  # and the connection is usable again
    finally:
        db.drop_schema()
        db.close()


class _CountingSession:
    def __init__(self, session: Any, calls: list[str]) -> None:
        self._session = session
        self._calls = calls

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)

    def due_pendings(self, at_us: int, limit: int) -> Any:
        self._calls.append("due")
        return self._session.due_pendings(at_us, limit)


class _CountingStore:
    def __init__(self, store: LedgerStore) -> None:
        self.store = store
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    def write(self, *, bulk: bool = False) -> Any:
        from contextlib import contextmanager

        @contextmanager
        def counted() -> Iterator[Any]:
            with self.store.write(bulk=bulk) as session:
                yield _CountingSession(session, self.calls)

        return counted()


def test_a_commit_looks_for_due_expiries_only_when_one_can_be_due(store: LedgerStore) -> None:
    counting = _CountingStore(store)
    clock = ManualClock()
    ledger = Ledger(counting, clock, Uuid7Ids.seeded(15))  # type: ignore[arg-type]
    ledger.define_asset(Asset("USD", 2, AssetKind.FIAT))
    ledger.open_account(Account("world:bank"))
    ledger.open_account(Account("user:a:usd", asset="USD"))
    ledger.transfer([Posting("world:bank", "user:a:usd", "USD", 1_000)])
    counting.calls.clear()
    for _ in range(5):
        ledger.transfer([Posting("world:bank", "user:a:usd", "USD", 1)])
    assert counting.calls == []  # nothing is pending: no commit looked
    pending = ledger.create_pending(Posting("user:a:usd", "world:bank", "USD", 10), timeout_s=60)
    clock.advance(seconds=30)
    ledger.transfer([Posting("world:bank", "user:a:usd", "USD", 1)])
    assert counting.calls == []  # not due yet
    clock.advance(seconds=31)
    ledger.transfer([Posting("world:bank", "user:a:usd", "USD", 1)])
    assert counting.calls == ["due"]  # due now: looked once, and it expired
    stored = ledger.pending(pending.id)
    assert stored is not None
    assert stored.state.value == "expired"
    ledger.transfer([Posting("world:bank", "user:a:usd", "USD", 1)])
    assert counting.calls == ["due"]


def test_a_pending_transfer_another_writer_made_still_expires(tmp_path: Path) -> None:
    """The horizon is kept with the cache: another process's write drops both."""
    from fundpool.stores.sqlite import SqliteStore

    path = tmp_path / "ledger.sqlite3"
    first = SqliteStore(path)
    first.initialise()
    clock = ManualClock()
    one = Ledger(first, clock, Uuid7Ids.seeded(1))
    one.define_asset(Asset("USD", 2, AssetKind.FIAT))
    one.open_account(Account("world:bank"))
    one.open_account(Account("user:a:usd", asset="USD"))
    one.transfer([Posting("world:bank", "user:a:usd", "USD", 1_000)])
    second = SqliteStore(path)
    other = Ledger(second, clock, Uuid7Ids.seeded(2))
    pending = other.create_pending(Posting("user:a:usd", "world:bank", "USD", 10), timeout_s=5)
    clock.advance(seconds=6)
    one.transfer([Posting("world:bank", "user:a:usd", "USD", 1)])
    stored = one.pending(pending.id)
    assert stored is not None
    assert stored.state.value == "expired"
    first.close()
    second.close()

