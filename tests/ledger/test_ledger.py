"""The ledger service by example, on both stores: every bad input is rejected with its own code
and changes nothing; the two-phase, reversal and read paths do what a treasury expects."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fundpool.core.clock import ManualClock, Uuid7Ids
from fundpool.core.errors import FundpoolError
from fundpool.core.ledger.model import (
    Account,
    Balance,
    ChainHead,
    CreatePending,
    DefineAsset,
    EntryKind,
    Linked,
    OpenAccount,
    PendingState,
    Posting,
    PostPending,
    Reverse,
    Transfer,
    VoidPending,
)
from fundpool.core.money import AMOUNT_MAX_MINOR, Asset, AssetKind
from fundpool.ledger.service import BATCH_COMMANDS_MAX, Ledger
from fundpool.ledger.verify import verify
from fundpool.stores.sqlite import SqliteStore

USD, ETH = "USD", "ETH"
WORLD = "world:bank-a"
AVAILABLE = "pool:main:usd:bank-a:available"
LOCKED = "pool:main:usd:bank-a:locked"
MERCHANT = "merchant:m1:usd:payable"
MULTI = "pool:main:multi:bank-a"
CAPPED = "capped:k1:usd"
CREDIT = "credit:c1:usd"
WALLET = "pool:main:eth:wallet"
FRESH_A = "pool:fresh:a"
FRESH_B = "pool:fresh:b"
UNKNOWN_ID = "00000000-0000-7000-8000-000000000000"
MAX = AMOUNT_MAX_MINOR
FUNDED = 500_000  # AVAILABLE starts with 5,000.00 USD


@pytest.fixture
def book(ledger: Ledger) -> Ledger:
    """A ledger with USD and ETH, a few accounts, and 5,000.00 USD in AVAILABLE."""
    ledger.submit(
        [
            DefineAsset(Asset(USD, 2, AssetKind.FIAT)),
            DefineAsset(Asset(ETH, 18, AssetKind.CRYPTO)),
            OpenAccount(Account(WORLD)),
            OpenAccount(Account(AVAILABLE, asset=USD)),
            OpenAccount(Account(LOCKED, asset=USD)),
            OpenAccount(Account(MERCHANT, asset=USD)),
            OpenAccount(Account(MULTI)),
            OpenAccount(Account(CAPPED, asset=USD, max_balance_minor=100_000)),
            OpenAccount(Account(CREDIT, asset=USD, min_balance_minor=-50_000)),
            OpenAccount(Account(WALLET, asset=ETH)),
            OpenAccount(Account(FRESH_A)),
            OpenAccount(Account(FRESH_B)),
        ]
    )
    assert ledger.head().seq == 12
    ledger.transfer([Posting(WORLD, AVAILABLE, USD, FUNDED)])
    return ledger


def snapshot(ledger: Ledger) -> tuple[Any, ...]:
    store = ledger.store
    return (
        store.head(),
        store.balances(),
        store.pendings(),
        [(a.address, a.asset) for a in store.accounts()],
        store.assets(),
    )


def rejects(ledger: Ledger, code: str, action: Callable[[], object]) -> FundpoolError:
    """`action` raises the error `code` and the ledger is exactly as it was."""
    before = snapshot(ledger)
    with pytest.raises(FundpoolError) as raised:
        action()
    assert raised.value.code == code, raised.value
    assert snapshot(ledger) == before
    assert verify(ledger.store).ok
    return raised.value


def balance(ledger: Ledger, address: str, asset: str = USD) -> Balance:
    return ledger.balance(address, asset)


# --- bad input ------------------------------------------------------------------------------


def test_unknown_asset(book: Ledger) -> None:
    error = rejects(book, "unknown_asset", lambda: book.transfer([Posting(WORLD, MULTI, "XAU", 1)]))
    assert error.facts["asset"] == "XAU"
    rejects(
        book,
        "unknown_asset",
        lambda: book.create_pending(Posting(WORLD, MULTI, "XAU", 1), timeout_s=60),
    )
    rejects(book, "unknown_asset", lambda: book.open_account(Account("pool:gold", asset="XAU")))


def test_unknown_account(book: Ledger) -> None:
    error = rejects(
        book,
        "unknown_account",
        lambda: book.transfer([Posting(AVAILABLE, "pool:nobody:usd", USD, 1)]),
    )
    assert error.facts["address"] == "pool:nobody:usd"
    rejects(
        book,
        "unknown_account",
        lambda: book.transfer([Posting("pool:nobody:usd", AVAILABLE, USD, 1)]),
    )
    rejects(book, "unknown_account", lambda: book.balances("pool:nobody:usd"))


@pytest.mark.parametrize("address", ["Pool:Main", "pool", "pool::x", "pool:x y", "-pool:x"])
def test_bad_address(book: Ledger, address: str) -> None:
    rejects(book, "invalid_address", lambda: book.transfer([Posting(WORLD, address, USD, 1)]))
    rejects(book, "invalid_address", lambda: book.transfer([Posting(address, WORLD, USD, 1)]))
    rejects(book, "invalid_address", lambda: book.balance(address, USD))
    rejects(book, "invalid_address", lambda: book.history(address))
    rejects(book, "invalid_address", lambda: book.open_account(Account(address)))


def test_empty_postings(book: Ledger) -> None:
    rejects(book, "empty_postings", lambda: book.transfer([]))
    rejects(book, "empty_postings", lambda: book.submit([Transfer(())]))


def test_same_source_and_destination(book: Ledger) -> None:
    error = rejects(
        book, "same_account", lambda: book.transfer([Posting(AVAILABLE, AVAILABLE, USD, 1)])
    )
    assert error.facts["account"] == AVAILABLE


def test_too_many_decimals(book: Ledger) -> None:
    (usd,) = [a for a in book.store.assets() if a.code == USD]

    def transfer_text() -> None:
        book.transfer([Posting(WORLD, AVAILABLE, USD, usd.parse("10.005"))])

    error = rejects(book, "too_many_decimals", transfer_text)
    assert error.facts["asset"] == USD
    assert usd.parse("10.050") == 1005


def test_negative_amount(book: Ledger) -> None:
    rejects(book, "negative_amount", lambda: book.transfer([Posting(WORLD, AVAILABLE, USD, -1)]))
    rejects(book, "negative_amount", lambda: book.post_pending(UNKNOWN_ID, -5))
    (usd,) = [a for a in book.store.assets() if a.code == USD]
    rejects(book, "negative_amount", lambda: usd.parse("-1.00"))


def test_zero_amount(book: Ledger) -> None:
    rejects(book, "invalid_transaction", lambda: book.transfer([Posting(WORLD, AVAILABLE, USD, 0)]))


def test_overflowing_amount(book: Ledger) -> None:
    rejects(book, "amount_overflow", lambda: book.transfer([Posting(WORLD, WALLET, ETH, MAX + 1)]))
    (eth,) = [a for a in book.store.assets() if a.code == ETH]
    rejects(book, "amount_overflow", lambda: eth.parse("340282366920938463464"))


def test_balance_overflow(book: Ledger) -> None:
    book.transfer([Posting(WORLD, WALLET, ETH, MAX)])
    assert balance(book, WORLD, ETH).posted == -MAX
    # the wallet would hold 2 * MAX; and world would owe it
    rejects(book, "balance_overflow", lambda: book.transfer([Posting(WORLD, WALLET, ETH, 1)]))
    rejects(book, "balance_overflow", lambda: book.transfer([Posting(WORLD, MULTI, ETH, 1)]))
    # a reservation that could never be posted is refused when it is made
    rejects(
        book,
        "balance_overflow",
        lambda: book.create_pending(Posting(WORLD, MULTI, ETH, MAX), timeout_s=60),
    )
    # a big amount back and forth is exact
    book.transfer([Posting(WALLET, MULTI, ETH, MAX)])
    assert balance(book, MULTI, ETH) == Balance(MAX, 0, 0)
    assert balance(book, WALLET, ETH) == Balance(0, 0, 0)


def test_asset_mismatch(book: Ledger) -> None:
    error = rejects(book, "asset_mismatch", lambda: book.transfer([Posting(WORLD, WALLET, USD, 1)]))
    assert error.facts["account_asset"] == ETH


def test_insufficient_funds(book: Ledger) -> None:
    error = rejects(
        book,
        "insufficient_funds",
        lambda: book.transfer([Posting(AVAILABLE, MERCHANT, USD, FUNDED + 1)]),
    )
    assert error.facts["account"] == AVAILABLE
    assert error.facts["available_minor"] == FUNDED
    assert error.facts["requested_minor"] == FUNDED + 1
    # reservations count against the available balance
    book.create_pending(Posting(AVAILABLE, MERCHANT, USD, FUNDED - 100), timeout_s=60)
    rejects(
        book,
        "insufficient_funds",
        lambda: book.transfer([Posting(AVAILABLE, LOCKED, USD, 101)]),
    )
    rejects(
        book,
        "insufficient_funds",
        lambda: book.create_pending(Posting(AVAILABLE, LOCKED, USD, 101), timeout_s=60),
    )
    book.transfer([Posting(AVAILABLE, LOCKED, USD, 100)])
    assert balance(book, AVAILABLE).available == 0


def test_a_credit_line_is_honoured_to_the_minor_unit(book: Ledger) -> None:
    book.transfer([Posting(CREDIT, MERCHANT, USD, 50_000)])
    assert balance(book, CREDIT).available == -50_000
    rejects(book, "insufficient_funds", lambda: book.transfer([Posting(CREDIT, MERCHANT, USD, 1)]))


def test_above_max_balance(book: Ledger) -> None:
    book.transfer([Posting(WORLD, CAPPED, USD, 90_000)])
    error = rejects(
        book, "balance_above_maximum", lambda: book.transfer([Posting(WORLD, CAPPED, USD, 10_001)])
    )
    assert error.facts["max_balance_minor"] == 100_000
    # incoming reservations count towards the maximum
    book.create_pending(Posting(WORLD, CAPPED, USD, 10_000), timeout_s=60)
    rejects(book, "balance_above_maximum", lambda: book.transfer([Posting(WORLD, CAPPED, USD, 1)]))


def test_reused_idempotency_key_with_another_body(book: Ledger) -> None:
    first = book.transfer(
        [Posting(AVAILABLE, MERCHANT, USD, 100)], metadata={"ref": "a"}, idempotency_key="pay-1"
    )
    error = rejects(
        book,
        "idempotency_conflict",
        lambda: book.transfer(
            [Posting(AVAILABLE, MERCHANT, USD, 101)], metadata={"ref": "a"}, idempotency_key="pay-1"
        ),
    )
    assert error.facts["original_entry_id"] == first.id
    rejects(
        book,
        "idempotency_conflict",
        lambda: book.transfer(
            [Posting(AVAILABLE, MERCHANT, USD, 100)], metadata={"ref": "b"}, idempotency_key="pay-1"
        ),
    )
    rejects(
        book,
        "idempotency_conflict",
        lambda: book.create_pending(
            Posting(AVAILABLE, MERCHANT, USD, 100), timeout_s=60, idempotency_key="pay-1"
        ),
    )
    rejects(
        book,
        "idempotency_conflict",
        lambda: book.void_pending(UNKNOWN_ID, idempotency_key="pay-1"),
    )


def test_retry_with_the_same_body_replays(book: Ledger) -> None:
    first = book.transfer(
        [Posting(AVAILABLE, MERCHANT, USD, 100)], metadata={"ref": "a"}, idempotency_key="pay-1"
    )
    assert not first.replayed
    before = snapshot(book)
    again = book.transfer(
        [Posting(AVAILABLE, MERCHANT, USD, 100)], metadata={"ref": "a"}, idempotency_key="pay-1"
    )
    assert again.replayed
    assert (again.seq, again.id, again.hash, again.body) == (
        first.seq,
        first.id,
        first.hash,
        first.body,
    )
    assert snapshot(book) == before
    (result,) = book.submit(
        [Transfer((Posting(AVAILABLE, MERCHANT, USD, 100),), {"ref": "a"}, "pay-1")]
    )
    assert (result.status, result.seq) == ("replayed", first.seq)
    assert snapshot(book) == before
    assert balance(book, MERCHANT).posted == 100


def test_a_rejected_command_does_not_consume_its_key(book: Ledger) -> None:
    rejects(
        book,
        "insufficient_funds",
        lambda: book.transfer([Posting(AVAILABLE, MERCHANT, USD, FUNDED + 1)], idempotency_key="k"),
    )
    recorded = book.transfer([Posting(AVAILABLE, MERCHANT, USD, 5)], idempotency_key="k")
    assert not recorded.replayed


def test_post_of_an_unknown_pending(book: Ledger) -> None:
    rejects(book, "unknown_pending", lambda: book.post_pending(UNKNOWN_ID))
    rejects(book, "unknown_pending", lambda: book.void_pending(UNKNOWN_ID))
    transfer = book.transfer([Posting(AVAILABLE, MERCHANT, USD, 1)])
    rejects(book, "unknown_pending", lambda: book.post_pending(transfer.id))


def _pending(book: Ledger, amount: int = 1_000, timeout_s: int = 60) -> str:
    return book.create_pending(Posting(AVAILABLE, MERCHANT, USD, amount), timeout_s=timeout_s).id


def test_post_of_a_posted_pending(book: Ledger) -> None:
    pending_id = _pending(book)
    book.post_pending(pending_id)
    error = rejects(book, "pending_already_finished", lambda: book.post_pending(pending_id))
    assert error.facts["state"] == "posted"
    rejects(book, "pending_already_finished", lambda: book.post_pending(pending_id, 1))


def test_void_after_post(book: Ledger) -> None:
    pending_id = _pending(book)
    book.post_pending(pending_id, 400)
    rejects(book, "pending_already_finished", lambda: book.void_pending(pending_id))
    assert balance(book, MERCHANT).posted == 400


def test_post_after_void(book: Ledger) -> None:
    pending_id = _pending(book)
    book.void_pending(pending_id)
    error = rejects(book, "pending_already_finished", lambda: book.post_pending(pending_id))
    assert error.facts["state"] == "voided"
    rejects(book, "pending_already_finished", lambda: book.void_pending(pending_id))
    assert balance(book, AVAILABLE) == Balance(FUNDED, 0, 0)
    assert balance(book, MERCHANT) == Balance(0, 0, 0)


def test_post_of_an_expired_pending(book: Ledger, clock: ManualClock) -> None:
    pending_id = _pending(book, timeout_s=30)
    clock.advance(seconds=31)
    assert book.expire_due() == 1
    assert book.pending(pending_id).state is PendingState.EXPIRED  # type: ignore[union-attr]
    rejects(book, "pending_expired", lambda: book.post_pending(pending_id))
    rejects(book, "pending_expired", lambda: book.void_pending(pending_id))
    assert balance(book, AVAILABLE) == Balance(FUNDED, 0, 0)


def test_post_after_expiry(book: Ledger, clock: ManualClock) -> None:
    pending_id = _pending(book, timeout_s=30)
    clock.advance(seconds=30)  # due exactly now
    head = book.head().seq
    with pytest.raises(FundpoolError) as raised:
        book.post_pending(pending_id)
    assert raised.value.code == "pending_expired"
    # the batch expired the reservation first, in an entry of its own, and posted nothing
    assert book.head().seq == head + 1
    expiry = book.store.entry(head + 1)
    assert expiry is not None
    assert expiry.kind == EntryKind.PENDING_EXPIRED
    assert balance(book, AVAILABLE) == Balance(FUNDED, 0, 0)
    assert balance(book, MERCHANT) == Balance(0, 0, 0)
    assert book.pending(pending_id).state is PendingState.EXPIRED  # type: ignore[union-attr]
    assert verify(book.store).ok


def test_a_pending_can_be_posted_until_its_last_microsecond(
    book: Ledger, clock: ManualClock
) -> None:
    pending_id = _pending(book, timeout_s=30)
    clock.advance(seconds=30, microseconds=-1)
    book.post_pending(pending_id, 10)
    assert balance(book, MERCHANT) == Balance(10, 0, 0)


def test_post_more_than_reserved(book: Ledger) -> None:
    pending_id = _pending(book, amount=1_000)
    error = rejects(book, "post_exceeds_pending", lambda: book.post_pending(pending_id, 1_001))
    assert error.facts["pending_amount_minor"] == 1_000
    book.post_pending(pending_id, 1_000)
    assert balance(book, MERCHANT).posted == 1_000


def test_invalid_timeout(book: Ledger) -> None:
    for timeout in (0, -1, 400 * 24 * 3600 + 1):
        rejects(
            book,
            "invalid_timeout",
            lambda t=timeout: book.create_pending(  # type: ignore[misc]
                Posting(AVAILABLE, MERCHANT, USD, 1), timeout_s=t
            ),
        )


def test_reverse_unknown(book: Ledger) -> None:
    rejects(book, "unknown_transaction", lambda: book.reverse(UNKNOWN_ID))


def test_reverse_twice(book: Ledger) -> None:
    original = book.transfer([Posting(AVAILABLE, MERCHANT, USD, 700)])
    reversal = book.reverse(original.id)
    assert reversal.body["reverses"] == original.id
    assert balance(book, MERCHANT) == Balance(0, 0, 0)
    error = rejects(book, "already_reversed", lambda: book.reverse(original.id))
    assert error.facts["reversed_by"] == reversal.id
    # the reversal is itself a transaction that can be undone, once
    book.reverse(reversal.id)
    assert balance(book, MERCHANT).posted == 700
    rejects(book, "already_reversed", lambda: book.reverse(reversal.id))


def test_reverse_what_cannot_be_reversed(book: Ledger) -> None:
    pending_id = _pending(book)
    rejects(book, "not_reversible", lambda: book.reverse(pending_id))
    voided = book.void_pending(pending_id)
    rejects(book, "not_reversible", lambda: book.reverse(voided.id))
    zero = book.post_pending(_pending(book), 0)
    rejects(book, "not_reversible", lambda: book.reverse(zero.id))
    (first,) = [e for e in book.store.entries(1, 1)]
    rejects(book, "not_reversible", lambda: book.reverse(first.id))  # an asset definition


def test_reverse_without_funds_is_refused(book: Ledger) -> None:
    original = book.transfer([Posting(AVAILABLE, MERCHANT, USD, 700)])
    book.transfer([Posting(MERCHANT, LOCKED, USD, 500)])  # the merchant spent most of it
    rejects(book, "insufficient_funds", lambda: book.reverse(original.id))


def test_reverse_a_partial_post(book: Ledger) -> None:
    posted = book.post_pending(_pending(book, 1_000), 250)
    book.reverse(posted.id)
    assert balance(book, AVAILABLE) == Balance(FUNDED, 0, 0)
    assert balance(book, MERCHANT) == Balance(0, 0, 0)


def _linked_with_bad_member(first: Posting) -> Linked:
    return Linked(
        (
            Transfer((first,), {}, "linked-1"),
            CreatePending(Posting(WORLD, MULTI, USD, 5), 60),
            Transfer((Posting(MERCHANT, LOCKED, USD, 10**9),)),  # the merchant has nothing
            Transfer((Posting(WORLD, MULTI, USD, 1),)),
        )
    )


def test_linked_batch_with_one_bad_member(book: Ledger) -> None:
    # every account involved already has a balance row
    book.transfer([Posting(WORLD, MULTI, USD, 1)])
    book.transfer([Posting(AVAILABLE, MERCHANT, USD, 1)])
    book.transfer([Posting(MERCHANT, LOCKED, USD, 1)])
    linked = _linked_with_bad_member(Posting(AVAILABLE, MERCHANT, USD, 300))
    error = rejects(book, "linked_batch_failed", lambda: book.execute(linked))
    assert error.facts["failed_index"] == 2
    assert error.facts["failed_code"] == "insufficient_funds"
    # none of the members applied: the key of the first is still free
    recorded = book.transfer([Posting(AVAILABLE, MERCHANT, USD, 300)], idempotency_key="linked-1")
    assert not recorded.replayed
    assert book.store.pendings() == []


def test_linked_batch_with_one_bad_member_on_fresh_accounts(book: Ledger) -> None:
    linked = _linked_with_bad_member(Posting(WORLD, FRESH_A, USD, 300))
    error = rejects(book, "linked_batch_failed", lambda: book.execute(linked))
    assert error.facts["failed_index"] == 2


def test_a_rejected_linked_group_does_not_sink_its_batch(book: Ledger) -> None:
    results = book.submit(
        [
            Transfer((Posting(AVAILABLE, MERCHANT, USD, 10),)),
            Linked(
                (
                    Transfer((Posting(WORLD, FRESH_B, USD, 300),)),
                    VoidPending(UNKNOWN_ID),
                )
            ),
            Transfer((Posting(AVAILABLE, MERCHANT, USD, 20),)),
        ]
    )
    assert [r.status for r in results] == ["applied", "rejected", "applied"]
    assert balance(book, MERCHANT).posted == 30
    assert balance(book, FRESH_B) == Balance(0, 0, 0)
    assert verify(book.store).ok


def test_a_good_linked_batch_applies_all(book: Ledger) -> None:
    (result,) = book.submit(
        [
            Linked(
                (
                    Transfer((Posting(AVAILABLE, MERCHANT, USD, 300),)),
                    Transfer((Posting(MERCHANT, LOCKED, USD, 300),)),  # uses the one before
                )
            )
        ]
    )
    assert result.status == "applied"
    assert [m.status for m in result.members] == ["applied", "applied"]
    assert balance(book, LOCKED).posted == 300
    assert balance(book, MERCHANT).posted == 0


def test_rejections_within_a_batch_leave_the_others(book: Ledger) -> None:
    results = book.submit(
        [
            Transfer((Posting(AVAILABLE, MERCHANT, USD, 10),)),
            Transfer((Posting(MERCHANT, LOCKED, USD, 11),)),  # only 10 there
            Transfer((Posting(MERCHANT, LOCKED, USD, 10),)),
            Reverse(UNKNOWN_ID),
            PostPending(UNKNOWN_ID),
        ]
    )
    assert [r.status for r in results] == ["applied", "rejected", "applied", "rejected", "rejected"]
    assert [r.error.code for r in results if r.error] == [
        "insufficient_funds",
        "unknown_transaction",
        "unknown_pending",
    ]
    assert balance(book, LOCKED).posted == 10
    assert verify(book.store).ok


def test_redefining_an_asset_or_reopening_an_account(book: Ledger) -> None:
    assert book.define_asset(Asset(USD, 2, AssetKind.FIAT)) is None  # unchanged
    rejects(book, "asset_already_defined", lambda: book.define_asset(Asset(USD, 3, AssetKind.FIAT)))
    assert book.open_account(Account(AVAILABLE, asset=USD)) is None
    rejects(book, "account_already_open", lambda: book.open_account(Account(AVAILABLE)))


def test_batch_too_large(book: Ledger) -> None:
    commands = [Transfer((Posting(WORLD, MULTI, USD, 1),))] * (BATCH_COMMANDS_MAX + 1)
    rejects(book, "batch_too_large", lambda: book.submit(commands))


# --- what should happen ---------------------------------------------------------------------


def test_partial_post_releases_the_rest(book: Ledger) -> None:
    pending_id = _pending(book, amount=1_000)
    assert balance(book, AVAILABLE) == Balance(FUNDED, 1_000, 0)
    assert balance(book, MERCHANT) == Balance(0, 0, 1_000)
    posted = book.post_pending(pending_id, 300)
    assert posted.body["posted_minor"] == 300
    assert posted.body["released_minor"] == 700
    assert balance(book, AVAILABLE) == Balance(FUNDED - 300, 0, 0)
    assert balance(book, AVAILABLE).available == FUNDED - 300
    assert balance(book, MERCHANT) == Balance(300, 0, 0)
    pending = book.pending(pending_id)
    assert pending is not None
    assert (pending.state, pending.posted_amount_minor) == (PendingState.POSTED, 300)


def test_available_is_posted_minus_pending_out(book: Ledger) -> None:
    _pending(book, amount=1_000)
    _pending(book, amount=2_000)
    book.create_pending(Posting(WORLD, AVAILABLE, USD, 50_000), timeout_s=60)
    now = balance(book, AVAILABLE)
    assert now == Balance(FUNDED, 3_000, 50_000)
    assert now.available == FUNDED - 3_000  # incoming reservations are not spendable
    rejects(
        book,
        "insufficient_funds",
        lambda: book.transfer([Posting(AVAILABLE, LOCKED, USD, FUNDED - 3_000 + 1)]),
    )
    balances = book.balances(AVAILABLE)
    assert balances == {USD: now}


def test_void_and_expiry_release_the_reservation(book: Ledger, clock: ManualClock) -> None:
    first = _pending(book, amount=1_000, timeout_s=10)
    _pending(book, amount=2_000, timeout_s=20)
    book.void_pending(first)
    assert balance(book, AVAILABLE) == Balance(FUNDED, 2_000, 0)
    clock.advance(seconds=19)
    assert book.expire_due() == 0
    clock.advance(seconds=1)
    assert book.expire_due() == 1
    assert balance(book, AVAILABLE) == Balance(FUNDED, 0, 0)
    assert balance(book, MERCHANT) == Balance(0, 0, 0)


def test_expiry_happens_at_the_next_batch_of_any_kind(book: Ledger, clock: ManualClock) -> None:
    _pending(book, amount=1_000, timeout_s=10)
    clock.advance(seconds=11)
    assert balance(book, AVAILABLE) == Balance(FUNDED, 1_000, 0)  # reads do not expire
    head = book.head().seq
    book.transfer([Posting(WORLD, MULTI, USD, 1)])
    assert book.head().seq == head + 2
    kinds = [e.kind for e in book.store.entries(head + 1)]
    assert kinds == [EntryKind.PENDING_EXPIRED, EntryKind.TRANSFER]
    assert balance(book, AVAILABLE) == Balance(FUNDED, 0, 0)


def test_balance_at_a_past_instant(book: Ledger, clock: ManualClock) -> None:
    start = clock.now_us()
    clock.advance(seconds=10)
    t1 = clock.now_us()
    book.transfer([Posting(AVAILABLE, MERCHANT, USD, 100)])
    clock.advance(seconds=10)
    t2 = clock.now_us()
    book.transfer([Posting(AVAILABLE, MERCHANT, USD, 200)])
    clock.advance(seconds=10)
    t3 = clock.now_us()
    pending_id = _pending(book, amount=50)
    clock.advance(seconds=10)
    book.post_pending(pending_id)

    def at(at_us: int) -> Balance:
        return book.balance(MERCHANT, USD, at_us=at_us)

    assert at(start - 1) == Balance(0, 0, 0)
    assert at(start) == Balance(0, 0, 0)
    assert at(t1 - 1) == Balance(0, 0, 0)
    assert at(t1) == Balance(100, 0, 0)
    assert at(t2 - 1) == Balance(100, 0, 0)
    assert at(t2) == Balance(300, 0, 0)
    assert at(t3) == Balance(300, 0, 50)
    assert at(t3 + 5_000_000) == Balance(300, 0, 50)
    assert at(clock.now_us()) == Balance(350, 0, 0)
    assert at(clock.now_us() + 10**12) == balance(book, MERCHANT)
    assert book.balance(AVAILABLE, USD, at_us=start) == Balance(FUNDED, 0, 0)
    assert book.balance(AVAILABLE, USD, at_us=t3) == Balance(FUNDED - 300, 50, 0)


def test_history_is_newest_first(book: Ledger, clock: ManualClock) -> None:
    first = book.transfer([Posting(AVAILABLE, MERCHANT, USD, 100)])
    clock.advance(seconds=1)
    pending_id = _pending(book, amount=40)
    clock.advance(seconds=1)
    posted = book.post_pending(pending_id, 30)
    clock.advance(seconds=1)
    last = book.transfer([Posting(MERCHANT, LOCKED, USD, 5)])
    rows = book.history(MERCHANT)
    assert [asset for asset, _ in rows] == [USD] * 4
    history = [row for _, row in rows]
    assert [row.seq for row in history] == sorted((row.seq for row in history), reverse=True)
    assert [row.entry_id for row in history] == [last.id, posted.id, pending_id, first.id]
    assert [row.kind for row in history] == [
        EntryKind.TRANSFER,
        EntryKind.PENDING_POSTED,
        EntryKind.PENDING_CREATED,
        EntryKind.TRANSFER,
    ]
    assert [row.posted_change_minor for row in history] == [-5, 30, 0, 100]
    assert [row.pending_in_change_minor for row in history] == [0, -40, 40, 0]
    assert history[0].balance == Balance(125, 0, 0)
    assert history[0].at_us > history[-1].at_us
    # paging
    page = book.history(MERCHANT, limit=2)
    assert [row.seq for _, row in page] == [history[0].seq, history[1].seq]
    older = book.history(MERCHANT, limit=2, before_seq=history[1].seq)
    assert [row.seq for _, row in older] == [history[2].seq, history[3].seq]
    rejects(book, "unknown_asset", lambda: book.history(MERCHANT, asset="XAU"))


def test_replayed_post_returns_the_original(book: Ledger) -> None:
    pending_id = _pending(book, amount=100)
    posted = book.post_pending(pending_id, 60, idempotency_key="post-1")
    again = book.post_pending(pending_id, 60, idempotency_key="post-1")
    assert again.replayed
    assert again.id == posted.id
    assert balance(book, MERCHANT) == Balance(60, 0, 0)
    rejects(
        book,
        "idempotency_conflict",
        lambda: book.post_pending(pending_id, 61, idempotency_key="post-1"),
    )


def test_multi_posting_transfer_checks_the_net_change(book: Ledger) -> None:
    # MERCHANT has nothing, but receives before it pays in the same transaction
    recorded = book.transfer(
        [Posting(AVAILABLE, MERCHANT, USD, 500), Posting(MERCHANT, LOCKED, USD, 500)]
    )
    assert len(recorded.body["postings"]) == 2  # type: ignore[arg-type]
    assert balance(book, MERCHANT) == Balance(0, 0, 0)
    assert balance(book, LOCKED) == Balance(500, 0, 0)
    rejects(
        book,
        "insufficient_funds",
        lambda: book.transfer(
            [Posting(AVAILABLE, MERCHANT, USD, 500), Posting(MERCHANT, LOCKED, USD, 501)]
        ),
    )


def test_two_services_on_one_store_see_each_other(book: Ledger, clock: ManualClock) -> None:
    from fundpool.core.clock import Uuid7Ids

    other = Ledger(book.store, clock, Uuid7Ids.seeded(99))
    book.transfer([Posting(AVAILABLE, MERCHANT, USD, FUNDED - 100)])  # book caches AVAILABLE
    other.transfer([Posting(AVAILABLE, LOCKED, USD, 100)])  # behind book's back
    # book must not trust its cached AVAILABLE balance any more
    rejects(
        book,
        "insufficient_funds",
        lambda: book.transfer([Posting(AVAILABLE, MERCHANT, USD, 1)]),
    )
    book.transfer([Posting(MERCHANT, AVAILABLE, USD, 50)])
    assert balance(book, AVAILABLE) == Balance(50, 0, 0)
    assert balance(book, LOCKED) == Balance(100, 0, 0)
    assert verify(book.store).ok


def test_reads_name_unknown_accounts_and_assets(book: Ledger) -> None:
    rejects(book, "unknown_account", lambda: book.balance("pool:nobody:usd", USD))
    rejects(book, "unknown_account", lambda: book.history("pool:nobody:usd"))
    rejects(book, "unknown_asset", lambda: book.balance(AVAILABLE, "XAU"))
    assert book.balance(MULTI, ETH) == Balance(0, 0, 0)  # known account, nothing held yet


def test_history_pages_hold_whole_entries(book: Ledger, clock: ManualClock) -> None:
    first = book.transfer([Posting(WORLD, MULTI, USD, 10)])
    clock.advance(seconds=1)
    both = book.transfer([Posting(WORLD, MULTI, USD, 20), Posting(WORLD, MULTI, ETH, 10**20)])
    clock.advance(seconds=1)
    last = book.transfer([Posting(WORLD, MULTI, ETH, 5)])
    page = book.history(MULTI, limit=2)
    assert [(asset, row.seq) for asset, row in page] == [
        (ETH, last.seq),
        (ETH, both.seq),
        (USD, both.seq),
    ]
    assert [row.posted_change_minor for _, row in page] == [5, 10**20, 20]
    rest = book.history(MULTI, limit=2, before_seq=both.seq)
    assert [(asset, row.seq) for asset, row in rest] == [(USD, first.seq)]
    assert [(a, r.seq) for a, r in book.history(MULTI, asset=ETH)] == [
        (ETH, last.seq),
        (ETH, both.seq),
    ]


def test_expire_due_handles_more_than_one_batch_of_expiries(
    book: Ledger, clock: ManualClock
) -> None:
    from fundpool.ledger.service import EXPIRIES_PER_BATCH_MAX

    count = EXPIRIES_PER_BATCH_MAX + 3
    reservations = [CreatePending(Posting(WORLD, MULTI, USD, 1), 5) for _ in range(count)]
    half = len(reservations) // 2
    results = book.submit(reservations[:half]) + book.submit(reservations[half:])
    newest = results[-1].entry.id  # type: ignore[union-attr]
    assert balance(book, MULTI).pending_in == count
    clock.advance(seconds=5)
    # one batch expires at most EXPIRIES_PER_BATCH_MAX; the newest is due but not yet expired
    head = book.head().seq
    with pytest.raises(FundpoolError) as raised:
        book.post_pending(newest)
    assert raised.value.code == "pending_expired"
    assert book.head().seq == head + EXPIRIES_PER_BATCH_MAX
    assert book.expire_due() == count - EXPIRIES_PER_BATCH_MAX
    assert balance(book, MULTI) == Balance(0, 0, 0)
    assert balance(book, WORLD) == Balance(-FUNDED, 0, 0)
    assert book.expire_due() == 0
    assert verify(book.store).ok


def test_idempotency_within_one_batch(book: Ledger) -> None:
    def pay(amount: int, key: str) -> Transfer:
        return Transfer((Posting(AVAILABLE, MERCHANT, USD, amount),), {}, key)

    results = book.submit([pay(1, "k"), pay(1, "k"), pay(2, "k")])
    assert [r.status for r in results] == ["applied", "replayed", "rejected"]
    assert results[1].seq == results[0].entry.seq  # type: ignore[union-attr]
    assert results[2].error is not None
    assert results[2].error.code == "idempotency_conflict"
    # a key used by a member of a rejected linked group is still free afterwards
    results = book.submit(
        [
            Linked((pay(3, "j"), pay(10**12, "j2"))),
            pay(3, "j"),
            pay(3, "j"),
        ]
    )
    assert [r.status for r in results] == ["rejected", "applied", "replayed"]
    assert balance(book, MERCHANT).posted == 1 + 3
    # a rejected reversal does not consume its key either
    original = book.transfer([Posting(AVAILABLE, MERCHANT, USD, 5)])
    results = book.submit(
        [Reverse(original.id), Reverse(original.id, {}, "r"), Reverse(original.id, {}, "r")]
    )
    assert [r.status for r in results] == ["applied", "rejected", "rejected"]
    assert {r.error.code for r in results[1:] if r.error} == {"already_reversed"}
    assert verify(book.store).ok


def test_expire_due_counts_only_its_own_expiries(tmp_path: Path) -> None:
    """Another writer's entries landing between two reads of the head are not expiries."""
    path = tmp_path / "shared.sqlite3"
    store = SqliteStore(path)
    store.initialise()
    clock = ManualClock()
    mine = Ledger(store, clock, Uuid7Ids.seeded(1))
    mine.define_asset(Asset("USD", 2, AssetKind.FIAT))
    mine.open_account(Account("world:bank"))
    mine.open_account(Account("user:x", asset="USD"))
    pending = mine.create_pending(Posting("world:bank", "user:x", "USD", 5), timeout_s=1)
    clock.advance(seconds=2)
    other = Ledger(SqliteStore(path), clock, Uuid7Ids.seeded(2))
    real_head = store.head

    def head_while_another_process_writes() -> ChainHead:
        head = real_head()
        other.transfer([Posting("world:bank", "user:x", "USD", 1)])
        return head

    store.head = head_while_another_process_writes  # type: ignore[method-assign]
    assert mine.expire_due() == 1
    assert mine.pending(pending.id).state == "expired"  # type: ignore[union-attr]
    assert mine.expire_due() == 0
