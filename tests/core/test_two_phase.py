"""The two-phase rules as pure functions: a reservation and its release leave the balances as a
posting of the posted part alone would, and a pending transfer is finished at most once, never
after its expiry. The ledger-level behaviour is in tests/ledger (by example and stateful)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fundpool.core.errors import (
    FundpoolError,
    InvariantViolation,
    PendingExpired,
    PendingNotPending,
    PostExceedsPending,
    UnknownPending,
)
from fundpool.core.ledger import two_phase
from fundpool.core.ledger.model import (
    US_PER_S,
    Balance,
    CreatePending,
    EntryKind,
    JournalEntry,
    PendingState,
    PendingTransfer,
    Posting,
    PostPending,
    VoidPending,
)

SOURCE, DESTINATION, USD = "pool:main:usd:bank-a:available", "merchant:m1:usd:payable", "USD"
AT_US = 1_767_225_600_000_000
balances_st = st.builds(
    Balance, st.integers(-(10**12), 10**12), st.integers(0, 10**12), st.integers(0, 10**12)
)


def pending(amount: int = 1_000, state: PendingState = PendingState.PENDING) -> PendingTransfer:
    return PendingTransfer("p-1", SOURCE, DESTINATION, USD, amount, AT_US + 60 * US_PER_S, 7, state)


@given(source=balances_st, destination=balances_st, amount=st.integers(1, 10**12), data=st.data())
def test_reserve_then_release_moves_only_the_posted_part(
    source: Balance, destination: Balance, amount: int, data: st.DataObject
) -> None:
    posting = Posting(SOURCE, DESTINATION, USD, amount)
    balances = {(SOURCE, USD): source, (DESTINATION, USD): destination}
    reserved = two_phase.reserve(balances, posting)
    assert (reserved.source_old, reserved.destination_old) == (source, destination)
    assert reserved.source_new.available == source.available - amount
    assert reserved.destination_new.pending_in == destination.pending_in + amount
    assert reserved.requested_minor == amount

    posted = data.draw(st.integers(0, amount))
    held = {(SOURCE, USD): reserved.source_new, (DESTINATION, USD): reserved.destination_new}
    released = two_phase.release(held, pending(amount), posted)
    assert released.source_new == source._replace(posted=source.posted - posted)
    assert released.destination_new == destination._replace(posted=destination.posted + posted)
    assert released.requested_minor == 0


def test_release_of_an_unreserved_amount_is_an_invariant_violation() -> None:
    with pytest.raises(InvariantViolation):
        two_phase.release({}, pending(), 0)


def test_live_pending_names_why_a_transfer_cannot_be_finished() -> None:
    def error(pendings: dict[str, PendingTransfer], at_us: int = AT_US) -> FundpoolError:
        with pytest.raises(FundpoolError) as raised:
            two_phase.live_pending(pendings, "p-1", at_us)
        return raised.value

    assert isinstance(error({}), UnknownPending)
    for state in (PendingState.POSTED, PendingState.VOIDED):
        assert isinstance(error({"p-1": pending(state=state)}), PendingNotPending)
    assert isinstance(error({"p-1": pending(state=PendingState.EXPIRED)}), PendingExpired)
    due = pending().expires_at_us
    assert isinstance(error({"p-1": pending()}, at_us=due), PendingExpired)
    assert two_phase.live_pending({"p-1": pending()}, "p-1", due - 1) == pending()


def test_amount_to_post_is_all_by_default_and_never_more() -> None:
    assert two_phase.amount_to_post(pending(1_000), None) == 1_000
    assert two_phase.amount_to_post(pending(1_000), 0) == 0
    assert two_phase.amount_to_post(pending(1_000), 400) == 400
    with pytest.raises(PostExceedsPending):
        two_phase.amount_to_post(pending(1_000), 1_001)


def test_a_pending_transfer_expires_only_when_pending_and_due() -> None:
    due = pending().expires_at_us
    two_phase.check_due(pending(), due)
    with pytest.raises(InvariantViolation):
        two_phase.check_due(pending(), due - 1)
    with pytest.raises(InvariantViolation):
        two_phase.check_due(pending(state=PendingState.VOIDED), due)


def test_created_and_finished_transfers_and_their_bodies() -> None:
    posting = Posting(SOURCE, DESTINATION, USD, 1_000)
    command = CreatePending(posting, timeout_s=60, metadata={"ref": "r1"}, idempotency_key="k")
    expires = two_phase.expires_at_us(AT_US, command.timeout_s)
    assert expires == AT_US + 60 * US_PER_S
    assert two_phase.created_body(command, expires) == {
        "posting": posting.body(),
        "timeout_s": 60,
        "expires_at_us": expires,
        "metadata": {"ref": "r1"},
        "idempotency_key": "k",
    }
    entry = JournalEntry(7, "p-1", EntryKind.PENDING_CREATED, AT_US, b"{}", bytes(32))
    assert two_phase.created(entry, posting, expires) == pending()

    done = two_phase.finished(pending(), PendingState.POSTED, 400, 9)
    assert (done.state, done.posted_amount_minor) == (PendingState.POSTED, 400)
    assert (done.created_seq, done.finished_seq) == (7, 9)
    body = two_phase.finished_body(pending(), 400, {}, None)
    assert (body["posted_minor"], body["released_minor"]) == (400, 600)
    assert set(two_phase.FINISHED_KINDS) == set(PendingState) - {PendingState.PENDING}


def test_idempotency_keys_bind_to_each_command_kind_apart() -> None:
    hashes = {
        two_phase.request_hash_of(CreatePending(Posting(SOURCE, DESTINATION, USD, 5), 60)),
        two_phase.request_hash_of(PostPending("p-1")),
        two_phase.request_hash_of(PostPending("p-1", 5)),
        two_phase.request_hash_of(VoidPending("p-1")),
    }
    assert len(hashes) == 4
