"""What every store must do the same way: run on SQLite and PostgreSQL by the `store` fixture."""

from __future__ import annotations

import random
from operator import attrgetter

import pytest

from fundpool.core.clock import ManualClock, Uuid7Ids
from fundpool.core.errors import StoreNotInitialised
from fundpool.core.ledger.canonical import chain_hash
from fundpool.core.ledger.engine import BatchEngine, WorkingSet
from fundpool.core.ledger.model import (
    GENESIS_HASH,
    Account,
    Balance,
    DefineAsset,
    EntryKind,
    OpenAccount,
    PendingState,
    Posting,
    Transfer,
)
from fundpool.core.money import AMOUNT_MAX_MINOR, Asset, AssetKind
from fundpool.ledger.ports import LedgerStore
from fundpool.ledger.service import Ledger
from fundpool.ledger.verify import verify
from fundpool.stores.postgres import PostgresStore
from fundpool.stores.sqlite import SqliteStore

MAX = AMOUNT_MAX_MINOR
assert MAX == 2**128 - 1
US = 1_000_000
USD = Asset("USD", 2, AssetKind.FIAT)
ETH = Asset("ETH", 18, AssetKind.CRYPTO)
WORLD_USD = "world:bank-a"
WORLD_ETH = "world:eth"
ALICE = "user:alice"
BOB = "user:bob"
CAROL = "user:carol"


def setup_usd(ledger: Ledger, *addresses: str) -> None:
    ledger.define_asset(USD)
    ledger.open_account(Account(WORLD_USD))
    for address in addresses:
        ledger.open_account(Account(address))


def chain_of(store: LedgerStore) -> list[int]:
    """The seqs of the journal, checking the hash chain on the way."""
    prev = GENESIS_HASH
    seqs = []
    for entry in store.entries():
        assert entry.hash == chain_hash(prev, entry.canonical), entry.seq
        prev = entry.hash
        seqs.append(entry.seq)
    assert prev == store.head().hash
    return seqs


def reopen(store: LedgerStore) -> LedgerStore:
    """A second, independent store object on the same ledger."""
    if isinstance(store, SqliteStore):
        return SqliteStore(store.path)
    assert isinstance(store, PostgresStore)
    return PostgresStore(store.url, schema=store.schema)


# --- amounts -------------------------------------------------------------------------------


def test_amounts_near_2_128_round_trip_exactly(ledger: Ledger, store: LedgerStore) -> None:
    ledger.define_asset(ETH)
    ledger.open_account(Account(WORLD_ETH))
    ledger.open_account(Account("pool:eth"))
    bounded = Account(
        "pool:eth:bounded", asset="ETH", min_balance_minor=-MAX, max_balance_minor=MAX
    )
    ledger.open_account(bounded)
    funded = ledger.transfer([Posting(WORLD_ETH, "pool:eth", "ETH", MAX)])

    balances = store.balances()
    assert balances[("pool:eth", "ETH")] == Balance(MAX, 0, 0)
    assert balances[(WORLD_ETH, "ETH")] == Balance(-MAX, 0, 0)
    assert type(balances[("pool:eth", "ETH")].posted) is int
    assert ledger.balance("pool:eth", "ETH") == Balance(MAX, 0, 0)
    assert ledger.balance(WORLD_ETH, "ETH").posted == -(2**128 - 1)
    assert sum(b.posted for b in balances.values()) == 0

    # The same figures through every other path that reads an amount back.
    assert store.balance_at("pool:eth", "ETH", funded.seq) == Balance(MAX, 0, 0)
    assert store.balance_at(WORLD_ETH, "ETH", funded.seq) == Balance(-MAX, 0, 0)
    legs = {(leg.address, leg.asset): leg.balance for leg in store.legs(funded.seq, funded.seq)}
    assert legs == {("pool:eth", "ETH"): Balance(MAX, 0, 0), (WORLD_ETH, "ETH"): Balance(-MAX)}
    ((asset, row),) = store.history(WORLD_ETH, "ETH", 10, None)
    assert (asset, row.seq, row.posted_change_minor) == ("ETH", funded.seq, -MAX)
    assert row.balance == Balance(-MAX, 0, 0)
    assert {a.address: a for a in store.accounts()}["pool:eth:bounded"] == bounded
    assert store.assets() == [ETH]

    # Reserve all of it: pending_out/pending_in and the pending row carry the full amount too.
    pending = ledger.create_pending(
        Posting("pool:eth", "pool:eth:bounded", "ETH", MAX), timeout_s=60
    )
    assert store.balances("pool:eth")[("pool:eth", "ETH")] == Balance(MAX, MAX, 0)
    assert store.balances()[("pool:eth:bounded", "ETH")] == Balance(0, 0, MAX)
    stored = store.pending(pending.id)
    assert stored is not None
    assert stored.amount_minor == MAX
    ledger.post_pending(pending.id, MAX - 1)
    stored = store.pending(pending.id)
    assert stored is not None
    assert (stored.state, stored.posted_amount_minor) == (PendingState.POSTED, MAX - 1)
    assert store.balances()[("pool:eth:bounded", "ETH")] == Balance(MAX - 1, 0, 0)
    assert store.balances()[("pool:eth", "ETH")] == Balance(1, 0, 0)
    assert verify(store).ok


def test_a_balance_one_past_the_range_is_refused_and_nothing_is_stored(
    ledger: Ledger, store: LedgerStore
) -> None:
    ledger.define_asset(ETH)
    ledger.open_account(Account(WORLD_ETH))
    ledger.open_account(Account("pool:eth"))
    ledger.transfer([Posting(WORLD_ETH, "pool:eth", "ETH", MAX)])
    head = store.head()
    (result,) = ledger.submit([Transfer((Posting(WORLD_ETH, "pool:eth", "ETH", 1),))])
    assert result.error is not None
    assert result.error.code == "balance_overflow"
    assert store.head() == head
    assert store.balances()[(WORLD_ETH, "ETH")] == Balance(-MAX)


# --- point in time -------------------------------------------------------------------------


def test_seq_at_and_balance_at(ledger: Ledger, store: LedgerStore, clock: ManualClock) -> None:
    t0 = clock.now_us()
    setup_usd(ledger, ALICE, BOB)  # seqs 1..4, all at t0
    clock.advance(seconds=10)
    first = ledger.transfer([Posting(WORLD_USD, ALICE, "USD", 1_000)])  # seq 5 at t0+10s
    clock.advance(seconds=10)
    second = ledger.transfer([Posting(ALICE, BOB, "USD", 300)])  # seq 6 at t0+20s
    third = ledger.transfer([Posting(ALICE, BOB, "USD", 200)])  # seq 7, same instant
    clock.advance(seconds=10)
    fourth = ledger.transfer([Posting(BOB, ALICE, "USD", 50)])  # seq 8 at t0+30s
    assert (first.seq, second.seq, third.seq, fourth.seq) == (5, 6, 7, 8)

    assert ledger.seq_at(0) == 0
    assert ledger.seq_at(t0 - 1) == 0
    assert ledger.seq_at(t0) == 4
    assert ledger.seq_at(t0 + 10 * US - 1) == 4
    assert ledger.seq_at(t0 + 10 * US) == 5
    assert ledger.seq_at(t0 + 20 * US) == 7  # the last entry at that instant
    assert ledger.seq_at(t0 + 30 * US - 1) == 7
    assert ledger.seq_at(t0 + 30 * US) == 8
    assert ledger.seq_at(t0 + 10**12) == 8

    assert store.balance_at(ALICE, "USD", 0) == Balance()
    assert store.balance_at(ALICE, "USD", 4) == Balance()
    assert store.balance_at(ALICE, "USD", 5) == Balance(1_000)
    assert store.balance_at(ALICE, "USD", 6) == Balance(700)
    assert store.balance_at(ALICE, "USD", 7) == Balance(500)
    assert store.balance_at(ALICE, "USD", 8) == Balance(550)
    assert store.balance_at(BOB, "USD", 6) == Balance(300)
    assert store.balance_at(BOB, "USD", 100) == Balance(450)
    assert store.balance_at(ALICE, "EUR", 8) == Balance()
    assert store.balance_at("user:nobody", "USD", 8) == Balance()

    assert ledger.balance(ALICE, "USD", at_us=t0 + 15 * US) == Balance(1_000)
    assert ledger.balance(ALICE, "USD", at_us=t0 + 20 * US) == Balance(500)
    assert ledger.balance(ALICE, "USD", at_us=t0 + 25 * US) == Balance(500)
    assert ledger.balance(ALICE, "USD", at_us=t0 + 31 * US) == Balance(550)
    assert ledger.balance(ALICE, "USD") == Balance(550)


def test_seq_at_on_an_empty_ledger(ledger: Ledger, store: LedgerStore) -> None:
    assert ledger.seq_at(2**62) == 0
    assert store.head().seq == 0


# --- history -------------------------------------------------------------------------------


def test_history_is_newest_first_with_the_changes(
    ledger: Ledger, store: LedgerStore, clock: ManualClock
) -> None:
    setup_usd(ledger, ALICE, BOB)
    ledger.define_asset(ETH)
    ledger.open_account(Account(WORLD_ETH))
    funded = ledger.transfer([Posting(WORLD_USD, ALICE, "USD", 1_000)])
    clock.advance(seconds=1)
    paid = ledger.transfer([Posting(ALICE, BOB, "USD", 250)])
    eth = ledger.transfer([Posting(WORLD_ETH, ALICE, "ETH", 7)])
    pending = ledger.create_pending(Posting(ALICE, BOB, "USD", 100), timeout_s=60)
    posted = ledger.post_pending(pending.id, 40)
    both = ledger.transfer([Posting(ALICE, BOB, "USD", 10), Posting(ALICE, WORLD_ETH, "ETH", 2)])

    rows = store.history(ALICE, None, 100, None)
    assert [(asset, row.seq) for asset, row in rows] == [
        ("ETH", both.seq),
        ("USD", both.seq),  # within one entry, by asset
        ("USD", posted.seq),
        ("USD", pending.seq),
        ("ETH", eth.seq),
        ("USD", paid.seq),
        ("USD", funded.seq),
    ]
    changes = [
        (row.posted_change_minor, row.pending_out_change_minor, row.pending_in_change_minor)
        for _, row in rows
    ]
    assert changes == [
        (-2, 0, 0),
        (-10, 0, 0),
        (-40, -100, 0),
        (0, 100, 0),
        (7, 0, 0),
        (-250, 0, 0),
        (1_000, 0, 0),
    ]
    balances = [row.balance for _, row in rows]
    assert balances == [
        Balance(5),
        Balance(700),
        Balance(710),
        Balance(750, 100),
        Balance(7),
        Balance(750),
        Balance(1_000),
    ]
    kinds = [row.kind for _, row in rows]
    assert kinds == [
        EntryKind.TRANSFER,
        EntryKind.TRANSFER,
        EntryKind.PENDING_POSTED,
        EntryKind.PENDING_CREATED,
        EntryKind.TRANSFER,
        EntryKind.TRANSFER,
        EntryKind.TRANSFER,
    ]
    assert [row.entry_id for _, row in rows][-1] == funded.id
    assert rows[-1][1].at_us == funded.at_us
    assert rows[0][1].at_us == both.at_us

    usd = store.history(ALICE, "USD", 100, None)
    assert [row.seq for _, row in usd] == [both.seq, posted.seq, pending.seq, paid.seq, funded.seq]
    assert all(asset == "USD" for asset, _ in usd)
    page = store.history(ALICE, "USD", 2, None)
    assert [row.seq for _, row in page] == [both.seq, posted.seq]
    page = store.history(ALICE, "USD", 2, posted.seq)
    assert [row.seq for _, row in page] == [pending.seq, paid.seq]
    assert [row.posted_change_minor for _, row in page] == [0, -250]
    assert store.history(ALICE, "USD", 2, funded.seq) == []
    assert store.history("user:nobody", None, 10, None) == []

    bob = store.history(BOB, None, 100, None)
    assert [row.posted_change_minor for _, row in bob] == [10, 40, 0, 250]
    assert [row.pending_in_change_minor for _, row in bob] == [0, -100, 100, 0]


# --- streaming -----------------------------------------------------------------------------


def test_entries_and_legs_stream_in_order_past_the_chunk_size(
    ledger: Ledger, store: LedgerStore
) -> None:
    accounts = [f"user:u{i:03d}" for i in range(40)]
    setup_usd(ledger, *accounts)
    setup_seqs = store.head().seq
    rng = random.Random(5)
    batch = [
        Transfer((Posting(WORLD_USD, rng.choice(accounts), "USD", rng.randint(1, 99)),))
        for _ in range(1_600)
    ]
    ledger.submit(batch)
    ledger.submit(batch[:900])
    total = store.head().seq
    assert total == setup_seqs + 2_500  # more than the 2,000 rows a chunk reads

    entries = list(store.entries())
    assert [e.seq for e in entries] == list(range(1, total + 1))
    assert chain_of(store) == list(range(1, total + 1))
    for entry in entries[::97]:
        assert store.entry(entry.seq) == entry
        assert store.entry_by_id(entry.id) == entry
    assert store.entry(total + 1) is None
    assert store.entry_by_id("00000000-0000-7000-8000-000000000000") is None

    legs = list(store.legs())
    assert len(legs) == 2 * 2_500
    keys = [(leg.seq, leg.address, leg.asset) for leg in legs]
    assert keys == sorted(keys)
    assert len(set(keys)) == len(keys)

    # Every window, across chunk boundaries, is the matching slice of the whole.
    for first, last in [(1, 1), (1, 2_001), (1_999, 2_003), (2_000, total), (total, total)]:
        assert list(store.entries(first, last)) == entries[first - 1 : last]
        assert list(store.legs(first, last)) == [leg for leg in legs if first <= leg.seq <= last]
    assert list(store.entries(total + 1)) == []
    assert list(store.legs(total + 1)) == []
    assert list(store.entries(5, 4)) == []

    # The legs replayed in order give the stored balances.
    replayed: dict[tuple[str, str], Balance] = {}
    for leg in legs:
        replayed[(leg.address, leg.asset)] = leg.balance
    stored = store.balances()
    assert {k: v for k, v in replayed.items()} == {k: v for k, v in stored.items()}
    assert verify(store).ok


# --- pendings ------------------------------------------------------------------------------


def test_pending_reads(ledger: Ledger, store: LedgerStore, clock: ManualClock) -> None:
    setup_usd(ledger, ALICE, BOB)
    ledger.transfer([Posting(WORLD_USD, ALICE, "USD", 1_000)])
    created = ledger.create_pending(Posting(ALICE, BOB, "USD", 300), timeout_s=60)
    other = ledger.create_pending(Posting(ALICE, BOB, "USD", 100), timeout_s=5)

    pending = store.pending(created.id)
    assert pending is not None
    assert pending.id == created.id
    assert (pending.source, pending.destination, pending.asset) == (ALICE, BOB, "USD")
    assert pending.amount_minor == 300
    assert pending.expires_at_us == created.at_us + 60 * US
    assert pending.created_seq == created.seq
    assert pending.state is PendingState.PENDING
    assert (pending.posted_amount_minor, pending.finished_seq) == (0, None)
    assert ledger.pending(created.id) == pending
    assert store.pending("00000000-0000-7000-8000-000000000000") is None

    posted = ledger.post_pending(created.id, 120)
    pending = store.pending(created.id)
    assert pending is not None
    assert pending.state is PendingState.POSTED
    assert (pending.posted_amount_minor, pending.finished_seq) == (120, posted.seq)
    assert pending.amount_minor == 300

    clock.advance(seconds=6)
    assert ledger.expire_due() == 1
    expired = store.pending(other.id)
    assert expired is not None
    assert expired.state is PendingState.EXPIRED
    assert expired.finished_seq == store.head().seq

    assert [p.id for p in store.pendings()] == [created.id, other.id]  # by created_seq
    assert [p.id for p in store.pendings(PendingState.POSTED)] == [created.id]
    assert [p.id for p in store.pendings(PendingState.EXPIRED)] == [other.id]
    assert store.pendings(PendingState.PENDING) == []
    assert store.balances()[(ALICE, "USD")] == Balance(880, 0, 0)
    assert verify(store).ok


# --- reads by prefix -----------------------------------------------------------------------


def test_prefix_reads(ledger: Ledger, store: LedgerStore) -> None:
    setup_usd(ledger, "user:alice", "user:alice:savings", "user:alicia", "pool:main")
    ledger.transfer([Posting(WORLD_USD, "user:alice:savings", "USD", 5)])
    ledger.transfer([Posting(WORLD_USD, "user:alicia", "USD", 6)])
    assert [a.address for a in store.accounts("user:alice")] == ["user:alice", "user:alice:savings"]
    assert [a.address for a in store.accounts("user:ali")] == [
        "user:alice",
        "user:alice:savings",
        "user:alicia",
    ]
    assert list(store.balances("user:alice")) == [("user:alice:savings", "USD")]
    assert list(store.balances("user:")) == [("user:alice:savings", "USD"), ("user:alicia", "USD")]
    assert store.accounts("nobody:") == []
    assert [a.address for a in store.accounts()] == sorted(
        ["user:alice", "user:alice:savings", "user:alicia", "pool:main", WORLD_USD]
    )


def test_account_pages(ledger: Ledger, store: LedgerStore) -> None:
    setup_usd(ledger, "user:a", "user:b", "user:c", "user:d")
    ledger.open_account(Account("user:e", asset="USD"))
    ledger.open_account(Account("user:f", asset="USD"))
    users = ["user:a", "user:b", "user:c", "user:d", "user:e", "user:f"]

    def walk(descending: bool, **filters: str) -> list[str]:
        seen: list[str] = []
        after = None
        while True:
            page = store.accounts("user:", after=after, descending=descending, limit=2,
                                  **filters)
            seen += [a.address for a in page]
            if len(page) < 2:
                return seen
            after = page[-1].address

    assert walk(False) == users
    assert walk(True) == users[::-1]
    assert walk(False, asset="USD") == ["user:e", "user:f"]
    assert [a.address for a in store.accounts(limit=1)] == [min([*users, WORLD_USD])]


def test_pending_pages(ledger: Ledger, store: LedgerStore) -> None:
    setup_usd(ledger, ALICE, BOB)
    ledger.transfer([Posting(WORLD_USD, ALICE, "USD", 1_000)])
    made = [ledger.create_pending(Posting(ALICE, BOB, "USD", 10), timeout_s=60).id
            for _ in range(5)]
    ledger.void_pending(made[1])
    newest_first = sorted(made, reverse=True)
    first = store.pendings_page(None, before=None, limit=3)
    rest = store.pendings_page(None, before=first[-1].id, limit=3)
    assert [p.id for p in first + rest] == newest_first
    voided = store.pendings_page(PendingState.VOIDED, before=None, limit=10)
    assert [p.id for p in voided] == [made[1]]


# --- transactions and reopening -----------------------------------------------------------


def save_then_fail(store: LedgerStore) -> None:
    """Save a batch inside a write, then raise before the write ends."""
    with store.write() as session:
        head = session.head
        working = WorkingSet(assets=session.load_assets())
        engine = BatchEngine(working, head, head.at_us, Uuid7Ids.seeded(1))
        engine.apply(DefineAsset(ETH))
        engine.apply(OpenAccount(Account(WORLD_ETH)))
        outcome = engine.finish()
        assert len(outcome.entries) == 2
        session.save(outcome)
        raise RuntimeError("boom")


def test_a_failed_write_leaves_nothing(ledger: Ledger, store: LedgerStore) -> None:
    setup_usd(ledger, ALICE)
    head = store.head()
    with pytest.raises(RuntimeError, match="boom"):
        save_then_fail(store)
    assert store.head() == head
    assert store.assets() == [USD]
    assert [a.address for a in store.accounts()] == [ALICE, WORLD_USD]
    # and the store still writes afterwards
    ledger.transfer([Posting(WORLD_USD, ALICE, "USD", 1)])
    assert store.head().seq == head.seq + 1


def test_a_new_store_object_sees_the_same_ledger(
    ledger: Ledger, store: LedgerStore, clock: ManualClock
) -> None:
    setup_usd(ledger, ALICE, BOB)
    ledger.transfer([Posting(WORLD_USD, ALICE, "USD", 500)])
    pending = ledger.create_pending(Posting(ALICE, BOB, "USD", 200), timeout_s=60)
    head = store.head()

    again = reopen(store)
    try:
        again.initialise()  # harmless on an existing ledger
        assert again.head() == head
        assert again.balances() == store.balances()
        assert again.accounts() == store.accounts()
        assert again.assets() == store.assets()
        assert again.pending(pending.id) == store.pending(pending.id)
        assert list(again.entries()) == list(store.entries())

        # A ledger on the second object extends the same chain; the first one sees it.
        clock.advance(seconds=1)
        other = Ledger(again, clock, Uuid7Ids.seeded(99))
        posted = other.post_pending(pending.id)
        assert posted.seq == head.seq + 1
        assert store.head() == again.head()
        assert store.head().seq == posted.seq
        # The first ledger's cache is stale; its next batch must notice the new head.
        follow = ledger.transfer([Posting(ALICE, BOB, "USD", 300)])
        assert follow.seq == posted.seq + 1
        assert store.balances()[(ALICE, "USD")] == Balance(0, 0, 0)
        assert again.balances()[(BOB, "USD")] == Balance(500, 0, 0)
        (rejected,) = other.submit([Transfer((Posting(ALICE, BOB, "USD", 1),))])
        assert rejected.error is not None
        assert rejected.error.code == "insufficient_funds"
        assert chain_of(again) == list(range(1, follow.seq + 1))
        assert verify(again).ok
    finally:
        again.close()


def test_an_uninitialised_store_says_so(store: LedgerStore, tmp_path: object) -> None:
    if isinstance(store, SqliteStore):
        fresh: LedgerStore = SqliteStore(f"{tmp_path}/other.sqlite3")
    else:
        assert isinstance(store, PostgresStore)
        fresh = PostgresStore(store.url, schema=store.schema + "_absent")
    try:
        with pytest.raises(StoreNotInitialised):
            fresh.head()
        with pytest.raises(StoreNotInitialised), fresh.write():
            pass
        fresh.initialise()
        assert fresh.head().seq == 0
    finally:
        if isinstance(fresh, PostgresStore):
            fresh.drop_schema()
        fresh.close()


def test_entries_ids_and_seqs_agree_with_what_submit_returned(ledger: Ledger) -> None:
    setup_usd(ledger, ALICE, BOB)
    results = ledger.submit(
        [Transfer((Posting(WORLD_USD, ALICE, "USD", 10 + i),)) for i in range(50)]
    )
    store = ledger.store
    for result in results:
        assert result.entry is not None
        stored = store.entry(result.entry.seq)
        assert stored is not None
        assert (stored.id, stored.kind, stored.at_us) == (
            result.entry.id,
            result.entry.kind.value,
            result.entry.at_us,
        )
        assert (stored.canonical, stored.hash) == (result.entry.canonical, result.entry.hash)
    assert sorted(store.entries(), key=attrgetter("id")) == list(store.entries())  # UUIDv7
