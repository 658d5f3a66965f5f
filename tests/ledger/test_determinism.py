"""Same commands, same clock, same id seed: the same journal, byte for byte, on any store."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fundpool.core.clock import ManualClock, Uuid7Ids
from fundpool.core.ledger.model import (
    Account,
    CreatePending,
    DefineAsset,
    Linked,
    OpenAccount,
    Posting,
    PostPending,
    Reverse,
    Transfer,
    VoidPending,
)
from fundpool.core.money import AMOUNT_MAX_MINOR, Asset, AssetKind
from fundpool.ledger.ports import LedgerStore
from fundpool.ledger.service import Ledger
from fundpool.ledger.verify import verify
from fundpool.stores.sqlite import SqliteStore

USD, ETH = "USD", "ETH"
WORLD = "world:bank-a"
WORLD_B = "world:bank-b"
AVAILABLE = "pool:main:usd:bank-a:available"
MERCHANT = "merchant:m1:usd:payable"
MULTI = "pool:main:multi:bank-a"
WALLET = "pool:main:eth:wallet"
START_US = 1_767_225_600_123_456


def journal(store: LedgerStore) -> list[tuple[Any, ...]]:
    return [(e.seq, e.id, e.kind, e.at_us, e.canonical, e.hash) for e in store.entries()]


def everything(store: LedgerStore) -> tuple[Any, ...]:
    return (
        journal(store),
        [(leg.seq, leg.address, leg.asset, leg.balance) for leg in store.legs()],
        store.balances(),
        store.pendings(),
        store.head(),
    )


def setup(ledger: Ledger) -> None:
    ledger.submit(
        [
            DefineAsset(Asset(USD, 2, AssetKind.FIAT)),
            DefineAsset(Asset(ETH, 18, AssetKind.CRYPTO)),
            OpenAccount(Account(WORLD)),
            OpenAccount(Account(WORLD_B, metadata={"bank": "Bänk B — 東京"})),
            OpenAccount(Account(AVAILABLE, asset=USD, metadata={"desk": "treasury"})),
            OpenAccount(Account(MERCHANT, asset=USD, max_balance_minor=10**9)),
            OpenAccount(Account(MULTI)),
            OpenAccount(Account(WALLET, asset=ETH, min_balance_minor=-(10**18))),
        ]
    )


def script(ledger: Ledger, clock: ManualClock) -> None:
    """A fixed history touching every kind of entry, expiry order and big amounts."""
    setup(ledger)
    ledger.transfer([Posting(WORLD, AVAILABLE, USD, 1_000_000)], metadata={"ref": "fund ✓"})
    clock.advance(microseconds=1)
    big = ledger.transfer(
        [Posting(WORLD, WALLET, ETH, AMOUNT_MAX_MINOR - 10), Posting(WORLD_B, MULTI, ETH, 10**30)]
    )
    clock.advance(seconds=0.25)
    # three reservations that expire at the same microsecond, in one batch
    results = ledger.submit(
        [
            CreatePending(Posting(AVAILABLE, MERCHANT, USD, 100 + i), 30, {"i": str(i)})
            for i in range(3)
        ]
        + [
            CreatePending(Posting(AVAILABLE, MERCHANT, USD, 5_000), 3_600, {}, "p-long"),
            Transfer((Posting(AVAILABLE, MERCHANT, USD, 10**12),)),  # rejected
        ]
    )
    long_id = results[3].entry.id  # type: ignore[union-attr]
    clock.advance(seconds=31)
    ledger.transfer([Posting(WORLD_B, MULTI, USD, 7)])  # expires the three first
    clock.advance(seconds=1)
    ledger.post_pending(long_id, 4_000, metadata={"note": "partial"})
    reversed_ = ledger.reverse(big.id, idempotency_key="rev-big")
    ledger.reverse(big.id, idempotency_key="rev-big")  # replay: nothing new
    ledger.submit(
        [
            Linked(
                (
                    Transfer((Posting(AVAILABLE, MERCHANT, USD, 1),)),
                    Transfer((Posting(MERCHANT, AVAILABLE, USD, 10**9),)),  # fails: rolls back
                )
            ),
            Linked(
                (
                    Transfer((Posting(AVAILABLE, MERCHANT, USD, 3),)),
                    Reverse(reversed_.id),
                )
            ),
            PostPending("00000000-0000-7000-8000-000000000000"),
        ]
    )
    clock.advance(seconds=3_600)
    pending = ledger.create_pending(Posting(WORLD, MULTI, ETH, 1), timeout_s=1)
    clock.advance(microseconds=999_999)
    ledger.void_pending(pending.id)
    ledger.create_pending(Posting(WORLD, MULTI, ETH, 2), timeout_s=1)
    clock.advance(seconds=2)
    ledger.expire_due()


def fresh_sqlite(directory: str, name: str) -> SqliteStore:
    store = SqliteStore(Path(directory) / f"{name}.sqlite3")
    store.initialise()
    return store


def run(store: LedgerStore, seed: int = 3, start_us: int = START_US) -> None:
    clock = ManualClock(start_us)
    script(Ledger(store, clock, Uuid7Ids.seeded(seed)), clock)


def test_two_sqlite_stores_give_the_same_journal(tmp_path: Path) -> None:
    first, second = fresh_sqlite(str(tmp_path), "a"), fresh_sqlite(str(tmp_path), "b")
    run(first)
    run(second)
    assert len(journal(first)) > 25
    assert everything(first) == everything(second)
    assert verify(first).ok
    first.close()
    second.close()


def test_any_store_gives_the_same_journal_as_sqlite(store: LedgerStore, tmp_path: Path) -> None:
    reference = fresh_sqlite(str(tmp_path), "reference")
    run(reference)
    run(store)
    assert journal(store) == journal(reference)
    assert everything(store) == everything(reference)
    assert verify(store).head_hash == verify(reference).head_hash
    reference.close()


def test_the_seed_and_the_clock_matter(tmp_path: Path) -> None:
    reference = fresh_sqlite(str(tmp_path), "reference")
    other_seed = fresh_sqlite(str(tmp_path), "seed")
    other_start = fresh_sqlite(str(tmp_path), "start")
    run(reference)
    run(other_seed, seed=4)
    run(other_start, start_us=START_US + 1_000)
    ids = [row[1] for row in journal(reference)]
    assert ids != [row[1] for row in journal(other_seed)]
    assert journal(reference) != journal(other_start)
    # ...but only the ids and times differ, never the money
    assert reference.balances() == other_seed.balances() == other_start.balances()
    assert ids == sorted(ids), "ids are time-ordered"
    for store in (reference, other_seed, other_start):
        store.close()


# --- random histories -----------------------------------------------------------------------

ADDRESSES = [WORLD, WORLD_B, AVAILABLE, MERCHANT, MULTI, WALLET]

steps = st.lists(
    st.one_of(
        st.tuples(
            st.just("transfer"),
            st.sampled_from(ADDRESSES),
            st.sampled_from(ADDRESSES),
            st.sampled_from([USD, ETH]),
            st.integers(1, 10**6),
        ),
        st.tuples(
            st.just("pending"),
            st.sampled_from(ADDRESSES),
            st.sampled_from(ADDRESSES),
            st.sampled_from([USD, ETH]),
            st.integers(1, 10**6),
            st.integers(1, 20),
        ),
        st.tuples(st.just("finish"), st.integers(0, 50), st.sampled_from(["post", "void"])),
        st.tuples(st.just("reverse"), st.integers(0, 50)),
        st.tuples(st.just("tick"), st.integers(0, 30_000_000)),
    ),
    max_size=25,
)


def play(store: LedgerStore, history: list[tuple[Any, ...]]) -> None:
    clock = ManualClock(START_US)
    ledger = Ledger(store, clock, Uuid7Ids.seeded(5))
    setup(ledger)
    ledger.transfer([Posting(WORLD, AVAILABLE, USD, 10**6)])
    ids: list[str] = []
    for step in history:
        command: Any = None
        if step[0] == "transfer" and step[1] != step[2]:
            command = Transfer((Posting(step[1], step[2], step[3], step[4]),))
        elif step[0] == "pending" and step[1] != step[2]:
            command = CreatePending(Posting(step[1], step[2], step[3], step[4]), step[5])
        elif step[0] == "finish" and ids:
            target = ids[step[1] % len(ids)]
            command = PostPending(target) if step[2] == "post" else VoidPending(target)
        elif step[0] == "reverse" and ids:
            command = Reverse(ids[step[1] % len(ids)])
        elif step[0] == "tick":
            clock.advance(microseconds=step[1])
        if command is not None:
            (result,) = ledger.submit([command])
            if result.entry is not None:
                ids.append(result.entry.id)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(history=steps)
def test_random_histories_are_reproducible(history: list[tuple[Any, ...]]) -> None:
    with tempfile.TemporaryDirectory() as directory:
        first, second = fresh_sqlite(directory, "a"), fresh_sqlite(directory, "b")
        try:
            play(first, history)
            play(second, history)
            assert everything(first) == everything(second)
        finally:
            first.close()
            second.close()
