"""The outbox, on both stores (src/fundpool/stores/events_sql.py, events/ledger.py,
ledger/service.py, payments/service.py).

- a committed entry writes one `ledger.entry_committed` event per pool it touches (`_ledger`
  when none) whose legs are the balances right after it;
- the events are written in the transaction of the change: one that raises (or whose outbox
  insert fails) leaves neither the change nor an event;
- `pos` is 1..N and `seq` 1..n per pool, with no gap, in commit order across many
  transactions and pools; `emit()`ed events come after the transaction's entry events;
- every payment transition is a `payment.transitioned` event whose states chain and whose
  `since_us` is the previous event's `at_us`.
"""

from __future__ import annotations

import itertools
import random
import sqlite3
import threading
from collections import Counter
from pathlib import Path

import psycopg
import pytest

from fundpool.core.clock import ManualClock, Uuid7Ids
from fundpool.core.ledger.model import (
    Account,
    DefineAsset,
    OpenAccount,
    Posting,
    Transfer,
)
from fundpool.core.money import Asset, AssetKind
from fundpool.events.ledger import pool_of
from fundpool.events.model import (
    SYSTEM_POOL,
    AlertChanged,
    Event,
    LedgerEntryCommitted,
    LegAfter,
    PaymentTransitioned,
)
from fundpool.ledger.ports import LedgerStore
from fundpool.ledger.service import Ledger
from fundpool.payments.model import Action, PaymentKind, PaymentRequest
from fundpool.payments.service import PaymentService, Step
from fundpool.pool.config import load_config
from fundpool.pool.setup import init_pool
from fundpool.stores import payment_store
from fundpool.stores.events_sql import OutboxReader, outbox_reader
from tests.conftest import PG_URL

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "pool.toml"
USD = "USD"
WORLD = "world:bank-a"
WORLD_B = "world:bank-b"
A_AVAIL = "pool:a:usd:bank-a:available"
A_LOCKED = "pool:a:usd:bank-a:locked"
B_AVAIL = "pool:b:usd:bank-a:available"
B_LOCKED = "pool:b:usd:bank-a:locked"
ENTRY = LedgerEntryCommitted.TYPE


@pytest.fixture
def book(ledger: Ledger) -> Ledger:
    """USD, two world accounts, and two accounts in each of pools `a` and `b`."""
    ledger.submit([
        DefineAsset(Asset(USD, 2, AssetKind.FIAT)),
        OpenAccount(Account(WORLD)),
        OpenAccount(Account(WORLD_B)),
        *(OpenAccount(Account(a, asset=USD)) for a in (A_AVAIL, A_LOCKED, B_AVAIL, B_LOCKED)),
    ])
    return ledger


def reader(store: LedgerStore) -> OutboxReader:
    return outbox_reader(store)


def all_events(store: LedgerStore) -> list[tuple[int, Event]]:
    out: list[tuple[int, Event]] = []
    while True:
        page = reader(store).after(out[-1][0] if out else 0)
        if not page:
            return out
        out.extend(page)


def alert(event_id: str, pool: str, at_us: int) -> Event:
    return Event(event_id, "alert.fired", pool, at_us,
                 AlertChanged(event_id, "test", "warning", "pool", "emitted by a test"))


def legs_of_entry(store: LedgerStore, seq: int) -> Counter[LegAfter]:
    return Counter(
        LegAfter(leg.address, leg.asset, leg.balance.posted, leg.balance.pending_out,
                 leg.balance.pending_in)
        for leg in store.legs(seq, seq)
    )


def check_entry_events(store: LedgerStore) -> None:
    """Every journal entry has one event per pool its legs touch (or one in `_ledger`),
    carrying the legs' balances after it; there is no other ledger event."""
    events = [e for _, e in all_events(store) if e.type == ENTRY]
    by_entry: dict[str, list[Event]] = {}
    for event in events:
        assert isinstance(event.data, LedgerEntryCommitted)
        by_entry.setdefault(event.data.entry_id, []).append(event)
    entries = list(store.entries())
    assert len(by_entry) == len(entries)
    for entry in entries:
        legs = legs_of_entry(store, entry.seq)
        pools = sorted({p for leg in legs if (p := pool_of(leg.address)) is not None})
        mine = by_entry[entry.id]
        assert sorted(e.pool for e in mine) == (pools or [SYSTEM_POOL])
        for event in mine:
            assert event.id == (entry.id if len(pools) <= 1 else f"{entry.id}:{event.pool}")
            assert event.at_us == entry.at_us
            assert event.version == 1
            data = event.data
            assert isinstance(data, LedgerEntryCommitted)
            assert (data.entry_seq, data.kind) == (entry.seq, entry.kind)
            assert Counter(data.legs) == legs


def check_streams(store: LedgerStore) -> None:
    """pos is 1..N; each pool's seq is 1..n in pos order; heads agree."""
    events = all_events(store)
    assert [pos for pos, _ in events] == list(range(1, len(events) + 1))
    seqs: dict[str, list[int]] = {}
    for _, event in events:
        seqs.setdefault(event.pool, []).append(event.seq)
    for pool, numbers in seqs.items():
        assert numbers == list(range(1, len(numbers) + 1)), pool
        assert [e.seq for e in reader(store).pool_events(pool)] == numbers
        assert reader(store).head(pool) == len(numbers)
    assert reader(store).heads() == {pool: len(n) for pool, n in seqs.items()}
    assert reader(store).last_pos() == len(events)
    times = [event.at_us for _, event in events]
    assert times == sorted(times), "at_us never goes back along pos"


# --- ledger entries -----------------------------------------------------------------------------


def test_a_transfer_writes_one_event_with_the_balances_after(
    book: Ledger, store: LedgerStore
) -> None:
    before = reader(store).last_pos()
    recorded = book.transfer([Posting(WORLD, A_AVAIL, USD, 1_000)])
    new = reader(store).after(before)
    assert len(new) == 1
    pos, event = new[0]
    assert pos == before + 1
    assert (event.id, event.type, event.pool, event.at_us) == (
        recorded.id, ENTRY, "a", recorded.at_us)
    assert event.data == LedgerEntryCommitted(
        recorded.id, recorded.seq, "transfer",
        event.data.legs,  # order checked as a multiset below
    )
    assert Counter(event.data.legs) == Counter([
        LegAfter(WORLD, USD, -1_000, 0, 0), LegAfter(A_AVAIL, USD, 1_000, 0, 0)])
    # the balances after the entry, as the store holds them
    balances = store.balances()
    for leg in event.data.legs:
        balance = balances[(leg.address, leg.asset)]
        assert (leg.posted, leg.pending_out, leg.pending_in) == (
            balance.posted, balance.pending_out, balance.pending_in)

    # a pending transfer: pending out on the source, pending in on the destination
    pending = book.create_pending(Posting(A_AVAIL, A_LOCKED, USD, 300), timeout_s=60)
    (_, event), = reader(store).after(pos)
    assert event.id == pending.id
    assert Counter(event.data.legs) == Counter([
        LegAfter(A_AVAIL, USD, 1_000, 300, 0), LegAfter(A_LOCKED, USD, 0, 0, 300)])
    check_entry_events(store)
    check_streams(store)


def test_a_batch_writes_one_event_per_entry_in_entry_order(
    book: Ledger, store: LedgerStore, clock: ManualClock
) -> None:
    before = reader(store).last_pos()
    head = book.head().seq
    results = book.submit([
        Transfer((Posting(WORLD, A_AVAIL, USD, 100),)),
        Transfer((Posting(WORLD, B_AVAIL, USD, 200),)),
        Transfer((Posting(A_AVAIL, B_AVAIL, USD, 40),)),  # two pools: one event in each
        Transfer((Posting(WORLD, WORLD_B, USD, 7),)),  # no pool: `_ledger`
        Transfer((Posting(A_AVAIL, A_LOCKED, USD, 10**9),)),  # refused: no entry, no event
    ])
    assert [r.error is None for r in results] == [True, True, True, True, False]
    assert book.head().seq == head + 4
    new = [e for _, e in reader(store).after(before)]
    cross = results[2].entry.id  # type: ignore[union-attr]
    assert [(e.id, e.pool) for e in new] == [
        (results[0].entry.id, "a"),  # type: ignore[union-attr]
        (results[1].entry.id, "b"),  # type: ignore[union-attr]
        (f"{cross}:a", "a"),
        (f"{cross}:b", "b"),
        (results[3].entry.id, SYSTEM_POOL),  # type: ignore[union-attr]
    ]
    assert new[2].data == new[3].data  # the same entry, told to each pool
    assert Counter(new[2].data.legs) == Counter([
        LegAfter(A_AVAIL, USD, 60, 0, 0), LegAfter(B_AVAIL, USD, 240, 0, 0)])
    assert len({e.at_us for e in new}) == 1
    check_entry_events(store)
    check_streams(store)


def test_assets_and_accounts_outside_pools_go_to_the_system_stream(
    ledger: Ledger, store: LedgerStore
) -> None:
    ledger.submit([DefineAsset(Asset(USD, 2, AssetKind.FIAT)), OpenAccount(Account(WORLD)),
                   OpenAccount(Account(A_AVAIL, asset=USD))])
    events = [e for _, e in all_events(store)]
    assert [e.pool for e in events] == [SYSTEM_POOL] * 3
    assert [e.data.kind for e in events] == ["asset_defined", "account_opened",
                                             "account_opened"]
    assert all(e.data.legs == () for e in events)
    check_entry_events(store)


def test_an_expiry_is_an_entry_with_its_event(
    book: Ledger, store: LedgerStore, clock: ManualClock
) -> None:
    book.transfer([Posting(WORLD, A_AVAIL, USD, 500)])
    book.create_pending(Posting(A_AVAIL, A_LOCKED, USD, 200), timeout_s=1)
    clock.advance(seconds=2)
    before = reader(store).last_pos()
    book.transfer([Posting(WORLD, B_AVAIL, USD, 1)])  # the expiry comes first, in this batch
    new = [e for _, e in reader(store).after(before)]
    assert [(e.pool, e.data.kind) for e in new] == [("a", "pending_expired"),
                                                    ("b", "transfer")]
    assert Counter(new[0].data.legs) == Counter([
        LegAfter(A_AVAIL, USD, 500, 0, 0), LegAfter(A_LOCKED, USD, 0, 0, 0)])
    check_entry_events(store)
    check_streams(store)


# --- atomic with the change -----------------------------------------------------------------


def test_a_transaction_that_raises_writes_no_event(
    book: Ledger, store: LedgerStore, clock: ManualClock
) -> None:
    book.transfer([Posting(WORLD, A_AVAIL, USD, 1_000)])
    before = (reader(store).last_pos(), reader(store).heads(), book.head(), store.balances())

    class Boom(Exception):
        pass

    def applied_then_raises() -> None:
        with book.transaction() as transaction:
            (result,) = transaction.apply([Transfer((Posting(WORLD, A_AVAIL, USD, 5),))])
            assert result.error is None
            transaction.emit([alert("never-1", "a", transaction.at_us)])
            raise Boom

    with pytest.raises(Boom):
        applied_then_raises()
    assert (reader(store).last_pos(), reader(store).heads(), book.head(),
            store.balances()) == before

    # a batch whose every command is refused writes nothing either
    (refused,) = book.submit([Transfer((Posting(A_AVAIL, B_AVAIL, USD, 10**9),))])
    assert refused.error is not None
    assert reader(store).last_pos() == before[0]

    # and the next commit continues both numberings without a gap
    clock.advance(seconds=1)
    book.transfer([Posting(WORLD, A_AVAIL, USD, 5)])
    assert reader(store).heads()["a"] == before[1]["a"] + 1
    check_streams(store)
    check_entry_events(store)


def test_an_outbox_insert_that_fails_takes_the_entry_with_it(
    book: Ledger, store: LedgerStore
) -> None:
    """An emitted event whose id is already in the outbox fails the insert: the entries of
    the transaction must roll back with it (never a change without its event)."""
    first = book.transfer([Posting(WORLD, A_AVAIL, USD, 1_000)])
    before = (reader(store).last_pos(), book.head(), store.balances())

    def emits_a_duplicate() -> None:
        with book.transaction() as transaction:
            transaction.apply([Transfer((Posting(WORLD, A_AVAIL, USD, 5),))])
            transaction.emit([alert(first.id, "a", transaction.at_us)])  # a duplicate id

    with pytest.raises((sqlite3.IntegrityError, psycopg.IntegrityError)):
        emits_a_duplicate()
    assert (reader(store).last_pos(), book.head(), store.balances()) == before
    # the ledger service still works, from the store's state
    book.transfer([Posting(WORLD, A_AVAIL, USD, 5)])
    assert store.balances()[(A_AVAIL, USD)].posted == 1_005
    check_entry_events(store)
    check_streams(store)


# --- numbering ----------------------------------------------------------------------------------


def test_seq_per_pool_and_pos_follow_commit_order(
    book: Ledger, store: LedgerStore, clock: ManualClock
) -> None:
    rng = random.Random(20_261_124)
    book.submit([Transfer((Posting(WORLD, A_AVAIL, USD, 10**6),)),
                 Transfer((Posting(WORLD, B_AVAIL, USD, 10**6),))])
    moves = [
        (WORLD, A_AVAIL), (WORLD, B_AVAIL), (A_AVAIL, A_LOCKED), (B_AVAIL, B_LOCKED),
        (A_AVAIL, B_AVAIL), (B_AVAIL, A_AVAIL), (WORLD, WORLD_B),
    ]
    serial = 0
    for _ in range(60):
        clock.advance(microseconds=rng.choice([0, 1, 999, 250_000]))
        last = reader(store).last_pos()
        heads = reader(store).heads()
        emitted: list[Event] = []
        with book.transaction() as transaction:
            commands = [
                Transfer((Posting(*rng.choice(moves), USD, rng.randint(1, 9)),))
                for _ in range(rng.randint(0, 4))
            ]
            results = transaction.apply(commands)
            for _ in range(rng.randint(0, 2)):
                serial += 1
                emitted.append(alert(f"alert-{serial}", rng.choice("ab"), transaction.at_us))
            transaction.emit(emitted)
        assert all(r.error is None for r in results)
        new = reader(store).after(last)
        # this transaction's events, and only them, right after the previous ones
        assert [pos for pos, _ in new] == list(range(last + 1, last + 1 + len(new)))
        entry_ids = {r.entry.id for r in results}  # type: ignore[union-attr]
        kinds = [e.type for _, e in new]
        assert kinds == sorted(kinds, key=lambda k: k != ENTRY), "entries before emitted"
        assert {e.data.entry_id for _, e in new if e.type == ENTRY} == entry_ids
        assert [e.id for _, e in new if e.type != ENTRY] == [e.id for e in emitted]
        for pool in {e.pool for _, e in new}:
            assert [e.seq for _, e in new if e.pool == pool] == list(
                range(heads.get(pool, 0) + 1,
                      heads.get(pool, 0) + 1 + sum(1 for _, e in new if e.pool == pool)))
    heads = reader(store).heads()
    assert heads["a"] > 30
    assert heads["b"] > 30
    assert heads[SYSTEM_POOL] > 10
    check_streams(store)
    check_entry_events(store)


def test_concurrent_writers_keep_both_numberings(
    book: Ledger, store: LedgerStore, clock: ManualClock
) -> None:
    """Two writers, each with its own store object (its own connection) and its own ledger
    service: the writer lock orders their transactions, and pos/seq follow that order."""
    from fundpool.stores.postgres import PostgresStore
    from fundpool.stores.sqlite import SqliteStore

    if isinstance(store, SqliteStore):
        other: LedgerStore = SqliteStore(store.path)
    else:
        assert isinstance(store, PostgresStore)
        other = PostgresStore(PG_URL, schema=store.schema)
    book.submit([Transfer((Posting(WORLD, A_AVAIL, USD, 10**6),)),
                 Transfer((Posting(WORLD, B_AVAIL, USD, 10**6),))])
    errors: list[BaseException] = []

    def write(target: LedgerStore, seed: int) -> None:
        try:
            ledger = Ledger(target, clock, Uuid7Ids.seeded(seed))
            rng = random.Random(seed)
            for _ in range(25):
                source, destination = rng.choice([(WORLD, A_AVAIL), (WORLD, B_AVAIL),
                                                   (A_AVAIL, B_AVAIL), (B_AVAIL, A_LOCKED)])
                ledger.transfer([Posting(source, destination, USD, rng.randint(1, 9))])
        except BaseException as error:  # reported by the main thread
            errors.append(error)

    threads = [threading.Thread(target=write, args=(target, seed))
               for seed, target in ((1, store), (2, other))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(thread.is_alive() for thread in threads), "a writer still ran after 60 s"
    other.close()
    assert errors == []
    check_streams(store)
    check_entry_events(store)
    entry_seqs = [e.data.entry_seq for _, e in all_events(store) if e.type == ENTRY]
    assert entry_seqs == sorted(entry_seqs), "pos follows the journal's commit order"
    assert len(entry_seqs) >= 50 + 2


def test_emitted_events_come_after_the_entry_events_of_their_transaction(
    book: Ledger, store: LedgerStore
) -> None:
    book.transfer([Posting(WORLD, A_AVAIL, USD, 1_000)])
    before = reader(store).last_pos()
    head_a = reader(store).head("a")
    with book.transaction() as transaction:
        # emitted first, applied after: still written after the entries
        transaction.emit([alert("alert-early", "a", transaction.at_us)])
        transaction.apply([Transfer((Posting(WORLD, A_AVAIL, USD, 1),))])
        transaction.apply([Transfer((Posting(WORLD, B_AVAIL, USD, 2),))])
        transaction.emit([alert("alert-late", "b", transaction.at_us)])
    new = reader(store).after(before)
    assert [(pos - before, e.type, e.pool) for pos, e in new] == [
        (1, ENTRY, "a"), (2, ENTRY, "b"), (3, "alert.fired", "a"), (4, "alert.fired", "b")]
    assert [e.id for _, e in new][2:] == ["alert-early", "alert-late"]
    assert [e.seq for _, e in new if e.pool == "a"] == [head_a + 1, head_a + 2]
    assert new[2][1].data == AlertChanged("alert-early", "test", "warning", "pool",
                                          "emitted by a test")
    check_streams(store)


def test_pool_events_filter_by_time_and_seq(
    book: Ledger, store: LedgerStore, clock: ManualClock
) -> None:
    times = []
    for i in range(6):
        clock.advance(seconds=1)
        times.append(book.transfer([Posting(WORLD, A_AVAIL, USD, i + 1)]).at_us)
    events = list(reader(store).pool_events("a"))
    assert [e.at_us for e in events] == times
    assert [e.at_us for e in reader(store).pool_events("a", since_us=times[1],
                                                       until_us=times[3])] == times[1:4]
    assert [e.seq for e in reader(store).pool_events("a", after_seq=4)] == [5, 6]
    assert list(reader(store).pool_events("nobody")) == []
    assert reader(store).head("nobody") == 0


def test_reads_page_through_the_outbox(
    book: Ledger, store: LedgerStore, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(12):
        clock.advance(seconds=1)
        book.transfer([Posting(WORLD, A_AVAIL if i % 3 else B_AVAIL, USD, i + 1)])
    everything = all_events(store)
    expected_a = list(reader(store).pool_events("a"))
    since = expected_a[2].at_us
    windowed = list(reader(store).pool_events("a", since_us=since))
    import fundpool.stores.events_sql as events_sql

    monkeypatch.setattr(events_sql, "OUTBOX_READ_MAX", 3)  # pages of 3
    assert list(reader(store).pool_events("a")) == expected_a
    assert list(reader(store).pool_events("a", since_us=since)) == windowed
    assert len(reader(store).after(0, limit=100)) == 3
    assert all_events(store) == everything
    assert [row[0] for row in reader(store).raw_after(2, 2)] == [3, 4]


# --- payments -----------------------------------------------------------------------------------

CONFIG = load_config(EXAMPLE)
POOL = CONFIG.pool("main")


@pytest.fixture
def payments(ledger: Ledger, store: LedgerStore) -> PaymentService:
    init_pool(ledger, CONFIG)
    ledger.transfer([Posting("world:bank-a", "pool:main:usd:bank-a:available", USD,
                             10_000_000)])
    return PaymentService(ledger, payment_store(store), CONFIG, POOL, Uuid7Ids.seeded(3))


def payment_events(store: LedgerStore, payment_id: str) -> list[tuple[int, Event]]:
    return [(pos, e) for pos, e in all_events(store)
            if e.type == PaymentTransitioned.TYPE and e.data.payment_id == payment_id]


def check_chain(store: LedgerStore, service: PaymentService, payment_id: str) -> list[Event]:
    events = [e for _, e in payment_events(store, payment_id)]
    assert events, payment_id
    first = events[0].data
    assert (first.action, first.from_state, first.to_state, first.since_us) == (
        "create", None, "initiated", None)
    assert first.created_at_us == events[0].at_us
    for number, (earlier, later) in enumerate(itertools.pairwise(events), 2):
        assert later.data.from_state == earlier.data.to_state
        assert later.data.since_us == earlier.at_us
        assert later.data.payment_version == number
        assert later.data.created_at_us == first.created_at_us
        assert later.at_us >= earlier.at_us
    for version, event in enumerate(events, 1):
        assert event.id == f"{payment_id}:{version}"
        assert event.pool == POOL.id
    # the outbox tells the same story as the payment's own history
    history = service.events(payment_id)
    assert [(e.data.action, e.data.from_state, e.data.to_state, e.at_us, e.data.reason)
            for e in events] == [
        (h.action.value, None if h.from_state is None else h.from_state.value,
         h.to_state.value, h.at_us, h.reason) for h in history]
    payment = service.get(payment_id)
    last = events[-1].data
    assert (last.to_state, last.payment_version, last.channel, last.fee_minor,
            last.amount_minor, last.asset, last.kind) == (
        payment.state.value, payment.version, payment.channel, payment.fee_minor,
        payment.amount_minor, payment.asset, payment.kind.value)
    # every event names the payment's counterparty, from its creation on
    assert all(e.data.counterparty == payment.counterparty for e in events)
    return events


def test_a_payouts_transitions_chain(
    payments: PaymentService, store: LedgerStore, clock: ManualClock
) -> None:
    clock.advance(seconds=3)
    payout = payments.create(PaymentRequest(PaymentKind.PAYOUT, USD, 100_000,
                                            counterparty="payee"))
    steps = [Step(payout.id, Action.SCREEN),
             Step(payout.id, Action.ROUTE, channel="bank-a"),
             Step(payout.id, Action.APPROVE), Step(payout.id, Action.SUBMIT),
             Step(payout.id, Action.CLEAR), Step(payout.id, Action.SETTLE, reason="done ✓")]
    for step in steps:
        clock.advance(seconds=1.5)
        before = reader(store).last_pos()
        payments.act(step)
        new = reader(store).after(before)
        # the entries a step posts come first, then the payment's event, one commit
        assert [e.type for _, e in new][-1] == PaymentTransitioned.TYPE
        assert all(e.type == ENTRY for _, e in new[:-1])
        assert len({e.at_us for _, e in new}) == 1
    events = check_chain(store, payments, payout.id)
    assert [e.data.to_state for e in events] == [
        "initiated", "screened", "routed", "approved", "submitted", "cleared", "settled"]
    assert [e.data.since_us is None or e.at_us - e.data.since_us for e in events] == [
        True, *[1_500_000] * 6]
    assert events[-1].data.reason == "done ✓"
    assert {e.data.counterparty for e in events} == {"payee"}
    assert events[0].data.channel is None
    assert events[-1].data.channel == "bank-a"
    check_streams(store)


def test_transitions_in_one_transaction_chain_too(
    payments: PaymentService, store: LedgerStore, clock: ManualClock
) -> None:
    clock.advance(seconds=1)
    deposit = payments.create(PaymentRequest(PaymentKind.DEPOSIT, USD, 50_000,
                                             channel="bank-a"))
    clock.advance(seconds=2)
    payments.act_many([Step(deposit.id, Action.SCREEN), Step(deposit.id, Action.CLEAR),
                       Step(deposit.id, Action.SETTLE)])
    events = check_chain(store, payments, deposit.id)
    assert [e.data.to_state for e in events] == ["initiated", "screened", "cleared", "settled"]
    assert events[1].data.since_us == events[0].at_us
    assert events[1].at_us == events[3].at_us == events[3].data.since_us

    # created and taken through its first steps in one transaction (the dispatcher's path)
    clock.advance(seconds=1)
    ((created, outcomes),) = payments.create_and_act(
        [(PaymentRequest(PaymentKind.PAYOUT, USD, 20_000, counterparty="x"), "key-1")],
        lambda p: [Step(p.id, Action.SCREEN), Step(p.id, Action.ROUTE, channel="bank-a"),
                   Step(p.id, Action.APPROVE)],
    )
    assert all(not isinstance(o, Exception) for o in outcomes)
    events = check_chain(store, payments, created.id)  # type: ignore[union-attr]
    assert [e.data.to_state for e in events] == ["initiated", "screened", "routed", "approved"]
    assert len({e.at_us for e in events}) == 1

    # a replayed creation (same key, same request) is no new event
    before = reader(store).last_pos()
    payments.create(PaymentRequest(PaymentKind.PAYOUT, USD, 20_000, counterparty="x"),
                    idempotency_key="key-1")
    assert reader(store).last_pos() == before
    check_streams(store)


def test_a_refused_step_writes_no_event_and_the_others_do(
    payments: PaymentService, store: LedgerStore, clock: ManualClock
) -> None:
    # Creation refuses a payout larger than the pool holds: bank-a gets what `big` needs.
    payments.ledger.transfer([Posting("world:bank-a", "pool:main:usd:bank-a:available", USD,
                                      50_000_000)])
    big = payments.create(PaymentRequest(PaymentKind.PAYOUT, USD, 50_000_000,
                                         counterparty="payee", channel="bank-a"))
    small = payments.create(PaymentRequest(PaymentKind.PAYOUT, USD, 1_000,
                                           counterparty="payee", channel="bank-a"))
    clock.advance(seconds=1)
    payments.act_many([Step(big.id, Action.SCREEN), Step(small.id, Action.SCREEN)])
    payments.act_many([Step(big.id, Action.ROUTE), Step(small.id, Action.ROUTE)])
    clock.advance(seconds=1)
    before = reader(store).last_pos()
    outcomes = payments.act_many([Step(big.id, Action.SETTLE),  # illegal from routed
                                  Step(small.id, Action.APPROVE)])
    assert isinstance(outcomes[0], Exception)
    new = [e for _, e in reader(store).after(before) if e.type == PaymentTransitioned.TYPE]
    assert [(e.data.payment_id, e.data.to_state) for e in new] == [(small.id, "approved")]
    check_chain(store, payments, big.id)
    check_chain(store, payments, small.id)
    check_streams(store)
    check_entry_events(store)


def test_every_payment_of_a_simulated_run_chains(
    store: LedgerStore, clock: ManualClock
) -> None:
    from fundpool import compose

    ledger = Ledger(store, clock, Uuid7Ids.seeded(5))
    simulation = compose.simulation(ledger, CONFIG, POOL, seed=5, clock=clock)
    simulation.open_pool()
    simulation.run(rate_per_s=40, duration_s=4, advance=lambda s: clock.advance(seconds=s))
    by_payment: dict[str, list[Event]] = {}
    for _, event in all_events(store):
        if event.type == PaymentTransitioned.TYPE:
            by_payment.setdefault(event.data.payment_id, []).append(event)
    assert len(by_payment) > 50
    states = payment_store(store).state_counts(POOL.id)
    assert Counter(events[-1].data.to_state for events in by_payment.values()) == Counter(
        {state.value: n for state, n in states.items() if n})
    for payment_id, events in by_payment.items():
        assert events[0].data.from_state is None, payment_id
        for earlier, later in itertools.pairwise(events):
            assert later.data.from_state == earlier.data.to_state, payment_id
            assert later.data.since_us == earlier.at_us, payment_id
            assert later.data.payment_version == earlier.data.payment_version + 1
    check_streams(store)
    check_entry_events(store)
