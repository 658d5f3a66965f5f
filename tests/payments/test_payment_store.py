"""What every payment store must do the same way: run on SQLite and PostgreSQL by the `store`
fixture, through `payment_store(store)` and writes inside `Ledger.transaction()`."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest

from fundpool.core.clock import ManualClock
from fundpool.core.errors import InvariantViolation, StoreNotInitialised
from fundpool.core.ledger.model import DefineAsset
from fundpool.core.money import AMOUNT_MAX_MINOR, Asset, AssetKind
from fundpool.ledger.ports import LedgerStore
from fundpool.ledger.service import Ledger
from fundpool.payments.model import Action, Payment, PaymentEvent, PaymentKind, PaymentState
from fundpool.payments.ports import PaymentFilter, PaymentStore, PaymentWrites
from fundpool.sql.database import LOOKUP_CHUNK
from fundpool.stores import payment_store
from fundpool.stores.postgres import PostgresStore
from fundpool.stores.sqlite import SqliteStore

MAX = AMOUNT_MAX_MINOR
assert MAX == 2**128 - 1
T0 = 1_767_225_600_000_000
POOL = "treasury"
OTHER_POOL = "ops"
DUPLICATE = (sqlite3.IntegrityError, psycopg.IntegrityError)


class Abort(Exception):
    pass


def payment(pid: str, **fields: object) -> Payment:
    base = Payment(
        id=pid,
        pool=POOL,
        kind=PaymentKind.PAYOUT,
        asset="USD",
        amount_minor=1_000,
        fee_minor=25,
        channel="bank-a",
        destination_channel=None,
        counterparty=None,
        reference=None,
        state=PaymentState.INITIATED,
        approval_required=False,
        created_at_us=T0,
        updated_at_us=T0,
    )
    return replace(base, **fields)  # type: ignore[arg-type]


def created_event(p: Payment) -> PaymentEvent:
    return PaymentEvent(p.id, 1, Action.CREATE, None, PaymentState.INITIATED, p.created_at_us)


@contextmanager
def writing(ledger: Ledger, payments: PaymentStore) -> Iterator[PaymentWrites]:
    with ledger.transaction() as transaction:
        yield payments.writes(transaction.session)


def save(
    ledger: Ledger,
    payments: PaymentStore,
    created: Sequence[Payment] = (),
    changed: Sequence[Payment] = (),
    events: Sequence[PaymentEvent] = (),
) -> None:
    with writing(ledger, payments) as writes:
        writes.save(created, changed, events)


def reopen(store: LedgerStore) -> LedgerStore:
    """A second store on the same database: it sees only what was committed."""
    if isinstance(store, SqliteStore):
        return SqliteStore(store.path)
    assert isinstance(store, PostgresStore)
    return PostgresStore(store.url, schema=store.schema)


def newest_first(payments: Sequence[Payment]) -> list[Payment]:
    return sorted(payments, key=lambda p: p.id, reverse=True)


@pytest.fixture
def payments(store: LedgerStore) -> PaymentStore:
    return payment_store(store)


# --- round trip ---------------------------------------------------------------------------------


FULL = payment(
    "0190a000-0000-7000-8000-000000000001",
    kind=PaymentKind.BRIDGE,
    asset="ETH",
    amount_minor=MAX,
    fee_minor=MAX - 1,
    channel="eth-mainnet",
    destination_channel="eth-arbitrum",
    counterparty="Zoë Ørsted — 東京",
    reference="inv/2026-01 ✓",
    state=PaymentState.PENDING_APPROVAL,
    approval_required=True,
    created_at_us=T0,
    updated_at_us=T0 + 2**40,
    idempotency_key="key-Ünïcode-free:1",
    request_hash=bytes(range(32)),  # a NUL byte first, and every byte kept
    metadata={"note": "naïve café 🚀", "empty": "", "ja": "日本語", "quote": '"\\'},
    version=7,
)
BARE = payment(
    "0190a000-0000-7000-8000-000000000002",
    kind=PaymentKind.DEPOSIT,
    amount_minor=1,
    fee_minor=0,
    channel=None,
    destination_channel=None,
    counterparty=None,
    reference=None,
    idempotency_key=None,
    request_hash=b"",
    metadata={},
)


def test_a_payment_comes_back_with_every_field(
    ledger: Ledger, payments: PaymentStore, store: LedgerStore
) -> None:
    save(ledger, payments, [FULL, BARE], (), [created_event(FULL), created_event(BARE)])
    assert payments.payment(FULL.id) == FULL
    assert payments.payment(BARE.id) == BARE
    loaded = payments.payment(FULL.id)
    assert loaded is not None
    assert type(loaded.amount_minor) is int
    assert loaded.amount_minor == MAX
    assert type(loaded.kind) is PaymentKind
    assert type(loaded.state) is PaymentState
    assert type(loaded.request_hash) is bytes
    assert dict(loaded.metadata) == FULL.metadata
    assert payments.payment("no-such-payment") is None
    with writing(ledger, payments) as writes:
        assert writes.load([FULL.id, BARE.id, "no-such-payment"]) == {
            FULL.id: FULL,
            BARE.id: BARE,
        }
        assert writes.load([]) == {}
    other = reopen(store)
    try:
        assert payment_store(other).payment(FULL.id) == FULL
    finally:
        other.close()


def test_a_change_updates_its_fields_and_only_a_newer_version(
    ledger: Ledger, payments: PaymentStore
) -> None:
    first = payment("p-1", channel=None, fee_minor=0)
    save(ledger, payments, [first], (), [created_event(first)])
    routed = replace(
        first,
        state=PaymentState.ROUTED,
        channel="bank-b",
        fee_minor=MAX,
        updated_at_us=T0 + 5,
        version=2,
    )
    save(ledger, payments, (), [routed])
    assert payments.payment(first.id) == routed
    # An update that is not newer than the stored version changes nothing: an invariant.
    stale = replace(routed, state=PaymentState.CANCELLED, version=2)
    with pytest.raises(InvariantViolation):
        save(ledger, payments, (), [stale])
    with pytest.raises(InvariantViolation):
        save(ledger, payments, (), [payment("no-such-payment", version=2)])
    assert payments.payment(first.id) == routed


# --- idempotency keys ---------------------------------------------------------------------------


def test_an_idempotency_key_belongs_to_one_pool(ledger: Ledger, payments: PaymentStore) -> None:
    here = payment("p-1", idempotency_key="order-1")
    there = payment("p-2", pool=OTHER_POOL, idempotency_key="order-1")
    unkeyed = [payment("p-3"), payment("p-4")]  # no key, any number of them
    save(ledger, payments, [here, there, *unkeyed])
    with writing(ledger, payments) as writes:
        assert writes.by_idempotency_key(POOL, ["order-1", "order-2"]) == {"order-1": here}
        assert writes.by_idempotency_key(OTHER_POOL, ["order-1"]) == {"order-1": there}
        assert writes.by_idempotency_key("nowhere", ["order-1"]) == {}
        assert writes.by_idempotency_key(POOL, []) == {}


def test_a_duplicate_key_in_one_pool_is_refused(ledger: Ledger, payments: PaymentStore) -> None:
    first = payment("p-1", idempotency_key="order-1")
    save(ledger, payments, [first])
    with pytest.raises(DUPLICATE):
        save(ledger, payments, [payment("p-2", idempotency_key="order-1")])
    with pytest.raises(DUPLICATE):  # within one batch too
        save(
            ledger,
            payments,
            [payment("p-3", idempotency_key="order-2"), payment("p-4", idempotency_key="order-2")],
        )
    with pytest.raises(DUPLICATE):  # and the id is unique
        save(ledger, payments, [payment("p-1", idempotency_key="order-5")])
    assert payments.payment("p-2") is None
    assert payments.payment("p-3") is None
    assert newest_first([first]) == payments.payments(PaymentFilter(POOL), limit=10)


# --- events ------------------------------------------------------------------------------------


def test_events_come_in_seq_order_with_their_entries(
    ledger: Ledger, payments: PaymentStore
) -> None:
    one, two = payment("p-1"), payment("p-2")
    events_one = [
        created_event(one),
        PaymentEvent(one.id, 2, Action.SCREEN, PaymentState.INITIATED, PaymentState.SCREENED,
                     T0 + 1, reason="sanctions: clear ✓"),
        PaymentEvent(one.id, 3, Action.ROUTE, PaymentState.SCREENED, PaymentState.ROUTED,
                     T0 + 2),
        PaymentEvent(one.id, 4, Action.APPROVE, PaymentState.ROUTED, PaymentState.APPROVED,
                     T0 + 3, entry_ids=("e-2", "e-10", "e-1")),  # kept in posting order
    ]
    events_two = [
        created_event(two),
        PaymentEvent(two.id, 2, Action.REJECT, PaymentState.INITIATED, PaymentState.REJECTED,
                     T0 + 4, entry_ids=("e-9",), reason=None),
    ]
    # Written out of order, across two transactions.
    save(ledger, payments, [one, two], (), [events_one[2], events_two[1], events_one[0]])
    save(ledger, payments, (), (), [events_one[3], events_two[0], events_one[1]])
    assert payments.events(one.id) == events_one
    assert payments.events(two.id) == events_two
    assert payments.events("no-such-payment") == []
    with writing(ledger, payments) as writes:
        assert writes.events([two.id, one.id, "no-such-payment"]) == {
            one.id: events_one,
            two.id: events_two,
        }
        assert writes.events([]) == {}
    with pytest.raises(DUPLICATE):  # one event per (payment, seq)
        save(ledger, payments, (), (), [replace(events_one[1], action=Action.HOLD)])
    assert payments.events(one.id) == events_one


def test_an_event_records_real_ledger_entries(ledger: Ledger, payments: PaymentStore) -> None:
    with ledger.transaction() as transaction:
        (result,) = transaction.apply([DefineAsset(Asset("USD", 2, AssetKind.FIAT))])
        assert result.entry is not None
        p = payment("p-1")
        event = replace(created_event(p), entry_ids=(result.entry.id,), at_us=transaction.at_us)
        payments.writes(transaction.session).save([p], (), [event])
    (stored,) = payments.events(p.id)
    assert stored == event
    assert ledger.store.entry_by_id(stored.entry_ids[0]) is not None


# --- lists -------------------------------------------------------------------------------------


def mixed_payments() -> list[Payment]:
    kinds = list(PaymentKind)
    states = [PaymentState.INITIATED, PaymentState.SETTLED, PaymentState.FAILED]
    assets = ["USD", "EUR"]
    channels = ["bank-a", "bank-b", None]
    made = []
    for n in range(36):
        made.append(
            payment(
                f"p-{n:03d}",
                pool=OTHER_POOL if n % 7 == 6 else POOL,
                kind=kinds[n % 4],
                state=states[n % 3],
                asset=assets[n % 2],
                channel=channels[n % 5 % 3],
                created_at_us=T0 + n,
                updated_at_us=T0 + n,
            )
        )
    return made


FILTERS = [
    PaymentFilter(POOL),
    PaymentFilter(OTHER_POOL),
    PaymentFilter(POOL, state=PaymentState.SETTLED),
    PaymentFilter(POOL, kind=PaymentKind.DEPOSIT),
    PaymentFilter(POOL, asset="EUR"),
    PaymentFilter(POOL, channel="bank-b"),
    PaymentFilter(POOL, state=PaymentState.FAILED, asset="USD"),
    PaymentFilter(POOL, state=PaymentState.INITIATED, kind=PaymentKind.PAYOUT, asset="USD",
                  channel="bank-a"),
    PaymentFilter(POOL, state=PaymentState.REVERSED),
    PaymentFilter(POOL, channel="no-such-channel"),
    PaymentFilter("no-such-pool"),
]


def matches(p: Payment, where: PaymentFilter) -> bool:
    return (
        p.pool == where.pool
        and where.state in (None, p.state)
        and where.kind in (None, p.kind)
        and where.asset in (None, p.asset)
        and where.channel in (None, p.channel)
    )


def test_filters_select_and_order_newest_first(ledger: Ledger, payments: PaymentStore) -> None:
    made = mixed_payments()
    save(ledger, payments, made)
    for where in FILTERS:
        expected = newest_first([p for p in made if matches(p, where)])
        assert payments.payments(where, limit=1_000) == expected, where
    assert payments.payments(PaymentFilter(POOL), limit=3) == newest_first(
        [p for p in made if p.pool == POOL]
    )[:3]


def test_after_id_pages_through_every_match(ledger: Ledger, payments: PaymentStore) -> None:
    made = mixed_payments()
    save(ledger, payments, made)
    for where in (PaymentFilter(POOL), PaymentFilter(POOL, asset="USD")):
        expected = newest_first([p for p in made if matches(p, where)])
        pages: list[list[Payment]] = []
        after: str | None = None
        for _ in range(len(made)):  # bounded: a cursor that does not move must fail, not hang
            page = payments.payments(where, limit=4, after_id=after)
            if not page:
                break
            pages.append(page)
            after = page[-1].id
        assert len(pages) > 2
        assert all(len(page) == 4 for page in pages[:-1])
        assert [p for page in pages for p in page] == expected
        # A cursor that is not a stored id works too: everything below it.
        cut = expected[len(expected) // 2].id + "-"
        assert payments.payments(where, limit=1_000, after_id=cut) == [
            p for p in expected if p.id < cut
        ]


def test_created_between_is_a_half_open_period_oldest_first(
    ledger: Ledger, payments: PaymentStore
) -> None:
    # Creation times out of id order, with ties: the order is (created_at_us, id).
    made = [payment(f"p-{n:02d}", created_at_us=T0 + (n * 7) % 5,
                    pool=OTHER_POOL if n == 3 else POOL) for n in range(12)]
    save(ledger, payments, made)

    def expected(since: int, until: int) -> list[Payment]:
        return sorted((p for p in made if p.pool == POOL and since <= p.created_at_us < until),
                      key=lambda p: (p.created_at_us, p.id))

    for since, until in ((T0, T0 + 5), (T0 + 1, T0 + 3), (T0 + 2, T0 + 3), (T0 + 4, T0 + 4),
                         (T0 - 10, T0), (T0 + 5, T0 + 99)):
        assert payments.created_between(POOL, since, until, limit=100) == expected(
            since, until), (since, until)
    # `since` is in, `until` is out.
    at_two = [p for p in made if p.pool == POOL and p.created_at_us == T0 + 2]
    assert at_two
    assert payments.created_between(POOL, T0 + 2, T0 + 3, limit=100) == at_two
    assert payments.created_between(POOL, T0 + 1, T0 + 2, limit=100) == expected(T0 + 1, T0 + 2)
    assert all(p.created_at_us == T0 + 1
               for p in payments.created_between(POOL, T0 + 1, T0 + 2, limit=100))
    assert payments.created_between(POOL, T0, T0 + 5, limit=4) == expected(T0, T0 + 5)[:4]
    assert payments.created_between(OTHER_POOL, T0, T0 + 5, limit=100) == [made[3]]
    assert payments.created_between("no-such-pool", T0, T0 + 5, limit=100) == []


def test_events_of_many_payments_come_per_payment_in_seq_order(
    ledger: Ledger, payments: PaymentStore
) -> None:
    made = [payment(f"p-{n:04d}") for n in range(LOOKUP_CHUNK + 3)]  # more than one chunk
    events = [created_event(p) for p in made]
    events += [PaymentEvent(p.id, 2, Action.SCREEN, PaymentState.INITIATED,
                            PaymentState.SCREENED, T0 + 1, entry_ids=(f"e-{p.id}", "e-2"))
               for p in made[::2]]
    save(ledger, payments, made, (), events[::-1])
    wanted = [p.id for p in made] + ["no-such-payment"]
    found = payments.events_of(wanted)
    assert set(found) == {p.id for p in made}
    for p in made:
        assert found[p.id] == payments.events(p.id)
    assert found[made[0].id][1].entry_ids == (f"e-{made[0].id}", "e-2")
    assert payments.events_of([]) == {}


def test_ids_order_by_their_bytes(
    store: LedgerStore, ledger: Ledger, payments: PaymentStore
) -> None:
    # As SQLite compares text: byte (code point) order, not a locale's. A server whose default
    # collation is C.UTF-8 would hide a missing COLLATE "C", so the columns are checked too.
    if isinstance(store, PostgresStore):
        rows = store.query(
            "SELECT table_name, column_name, collation_name FROM information_schema.columns "
            "WHERE table_schema = %s AND table_name IN ('payments', 'payment_events') "
            "AND column_name IN ('id', 'pool', 'asset', 'channel', 'destination_channel', "
            "'idempotency_key', 'payment_id')",
            (store.schema,),
        )
        assert len(rows) == 7
        assert {row[2] for row in rows} == {"C"}, rows
    ids = ["B-1", "a-1", "A-2", "b-0", "_x", "Z", "é", "e", "~", "0", "a-10", "a-9"]
    made = [payment(pid) for pid in ids]
    save(ledger, payments, made)
    listed = payments.payments(PaymentFilter(POOL), limit=100)
    assert [p.id for p in listed] == sorted(ids, reverse=True)
    assert [p.id for p in payments.payments(PaymentFilter(POOL), limit=100, after_id="a")] == [
        pid for pid in sorted(ids, reverse=True) if pid < "a"
    ]


# --- one transaction with the ledger -----------------------------------------------------------


def test_writes_roll_back_with_the_ledger(
    ledger: Ledger, payments: PaymentStore, clock: ManualClock
) -> None:
    kept = payment("p-1", idempotency_key="order-1")
    save(ledger, payments, [kept], (), [created_event(kept)])
    head = ledger.head()

    def change_then_abort() -> None:
        with ledger.transaction() as transaction:
            (result,) = transaction.apply([DefineAsset(Asset("USD", 2, AssetKind.FIAT))])
            assert result.entry is not None
            writes = payments.writes(transaction.session)
            new = payment("p-2", idempotency_key="order-2")
            screened = replace(kept, state=PaymentState.SCREENED, version=2)
            writes.save(
                [new],
                [screened],
                [
                    created_event(new),
                    PaymentEvent(kept.id, 2, Action.SCREEN, PaymentState.INITIATED,
                                 PaymentState.SCREENED, T0 + 1, (result.entry.id,)),
                ],
            )
            # Inside the transaction the writes are seen.
            assert writes.load([new.id, kept.id]) == {new.id: new, kept.id: screened}
            assert set(writes.by_idempotency_key(POOL, ["order-2"])) == {"order-2"}
            raise Abort

    clock.advance(seconds=1)
    with pytest.raises(Abort):
        change_then_abort()
    assert ledger.head() == head
    assert ledger.store.assets() == []
    assert payments.payment("p-2") is None
    assert payments.payment(kept.id) == kept
    assert payments.events("p-2") == []
    assert payments.events(kept.id) == [created_event(kept)]
    assert payments.payments(PaymentFilter(POOL), limit=10) == [kept]
    with writing(ledger, payments) as writes:
        assert writes.by_idempotency_key(POOL, ["order-1", "order-2"]) == {"order-1": kept}
    # The same writes go through afterwards: nothing of the aborted ones was left behind.
    new = payment("p-2", idempotency_key="order-2")
    save(ledger, payments, [new], (), [created_event(new)])
    assert payments.payment("p-2") == new


def test_a_refused_write_undoes_the_ledger_steps_too(
    ledger: Ledger, payments: PaymentStore
) -> None:
    save(ledger, payments, [payment("p-1", idempotency_key="order-1")])
    head = ledger.head()

    def define_then_duplicate() -> None:
        with ledger.transaction() as transaction:
            transaction.apply([DefineAsset(Asset("USD", 2, AssetKind.FIAT))])
            payments.writes(transaction.session).save(
                [payment("p-2", idempotency_key="order-1")], (), ()
            )

    with pytest.raises(DUPLICATE):
        define_then_duplicate()
    assert ledger.head() == head
    assert ledger.store.assets() == []
    assert payments.payment("p-2") is None


# --- schema -------------------------------------------------------------------------------------


def test_initialise_again_keeps_the_payments(
    store: LedgerStore, ledger: Ledger, payments: PaymentStore
) -> None:
    save(ledger, payments, [FULL], (), [created_event(FULL)])
    store.initialise()
    assert payments.payment(FULL.id) == FULL
    assert payments.events(FULL.id) == [created_event(FULL)]


def test_an_uninitialised_store_says_so(store: LedgerStore, tmp_path: Path) -> None:
    if isinstance(store, SqliteStore):
        bare: LedgerStore = SqliteStore(tmp_path / "absent.sqlite3")
    else:
        assert isinstance(store, PostgresStore)
        bare = PostgresStore(store.url, schema=store.schema + "_absent")
    try:
        with pytest.raises(StoreNotInitialised):
            payment_store(bare).payment("p-1")
        with pytest.raises(StoreNotInitialised):
            payment_store(bare).payments(PaymentFilter(POOL), limit=10)
    finally:
        bare.close()
