"""Cases a review of the dispatcher and the payment service found, each once a bug: a tick too
large for one ledger transaction, a rail adapter failing in a way that is not a refusal, stuck
payments after a restart, a key repeated across intake chunks, an amount whose fee overflows,
an advanced deposit returned after instant settlement was switched off, and batch savings
beyond 2^63 on SQLite."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from fundpool.channels.ports import Submission
from fundpool.core.clock import ManualClock
from fundpool.core.errors import FundpoolError
from fundpool.core.money import AMOUNT_MAX_MINOR
from fundpool.ledger.ports import LedgerStore
from fundpool.ledger.service import Ledger
from fundpool.ledger.verify import verify
from fundpool.payments.dispatch import OUTCOMES_PER_TRANSACTION, DispatchPolicy
from fundpool.payments.model import Action, PaymentKind, PaymentRequest, PaymentState
from fundpool.payments.records import BatchRecord
from fundpool.payments.service import Step
from fundpool.pool.accounts import exposure_total, merchant_payable
from tests.payments.test_dispatch import (
    CONFIG,
    NOW,
    US,
    funded_three,
    payout,
    scripted,
    wire,
)
from tests.payments.test_dispatch import O as Kind

S = PaymentState


def test_a_tick_larger_than_one_ledger_transaction_goes_through_in_slices(
    store: LedgerStore, ledger: Ledger, clock: ManualClock
) -> None:
    w = wire(store, ledger, clock, priority=["rtp"], dispatch=NOW)
    count = 2 * OUTCOMES_PER_TRANSACTION + 300  # well over BATCH_COMMANDS_MAX commands' worth
    created = w.intake(*[PaymentRequest(PaymentKind.DEPOSIT, "USD", 1_000, "rtp")] * count)
    ids = [i.outcome.id for i in created if not isinstance(i.outcome, FundpoolError)]
    assert len(ids) == count
    for pid in ids:
        w.rail("rtp").report(pid, Kind.CLEARED)
    report = w.tick()
    assert report.outcomes == {"applied": count}
    assert {w.state(pid) for pid in ids} == {S.CLEARED}
    # And the dispatcher goes on: a payout after it is sent.
    w.fund("rtp", "USD", 100_000)
    p = w.one(payout(10_000))
    w.tick()
    assert w.state(p.id) is S.SUBMITTED
    assert verify(store).ok


class _Flaky:
    """A rail whose every submission dies without an answer (a timeout)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def submit(self, instructions: Any, at_us: int) -> Submission:
        raise ConnectionError("timed out waiting for the rail")


def test_an_adapter_failing_without_an_answer_leaves_its_batch_unknown_and_others_go(
    store: LedgerStore, ledger: Ledger, clock: ManualClock
) -> None:
    w = wire(store, ledger, clock, priority=["rtp", "bank-a"],
             dispatch=DispatchPolicy(batch_age_us=0, stuck_after_us=60 * US))
    funded_three(w)
    flaky = _Flaky(w.rails["rtp"])
    w.dispatcher._rails["rtp"] = flaky  # the adapter dies mid-call
    on_rtp = w.one(payout(10_000))
    on_bank = w.one(payout(20_000, channel="bank-a"))
    report = w.tick()
    assert report.unknown == 1
    # Neither failed (the rail may have it: failing could pay twice) nor left unsent elsewhere.
    assert w.state(on_rtp.id) is S.SUBMITTED
    assert w.state(on_bank.id) is S.SUBMITTED
    assert [i.payment_id for _, batch in w.rail("bank-a").taken for i in batch] == [on_bank.id]
    w.tick()  # the receipts are written at the next tick
    (batch,) = w.dispatcher.reads.batches(channel="rtp")
    assert (batch.status, batch.items) == ("unknown", 1)
    assert w.tick(seconds=61).stuck == 2


def test_stuck_payments_are_found_again_after_a_restart(
    store: LedgerStore, ledger: Ledger, clock: ManualClock
) -> None:
    w = wire(store, ledger, clock, priority=["rtp"],
             dispatch=DispatchPolicy(batch_age_us=0, stuck_after_us=60 * US))
    funded_three(w)
    p = w.one(payout(10_000))
    w.tick()
    assert w.state(p.id) is S.SUBMITTED
    w.restart()  # the default policy: stuck after three days in transit
    assert w.tick(seconds=2 * 86_400).stuck == 0
    assert w.tick(seconds=2 * 86_400).stuck == 1


def test_a_key_repeated_across_intake_chunks_is_one_payment(
    store: LedgerStore, ledger: Ledger, clock: ManualClock
) -> None:
    w = wire(store, ledger, clock, priority=["rtp"], dispatch=NOW)
    w.fund("rtp", "USD", 10**9)
    requests: list[tuple[PaymentRequest, str | None]] = [
        (dataclasses.replace(payout(100), reference=f"r{i}"), f"k{i}") for i in range(4_096)
    ]
    requests.append(requests[0])  # the same key again, in the second chunk of 4,096
    intakes = w.intake(*requests)
    first, last = intakes[0].outcome, intakes[-1].outcome
    assert not isinstance(first, FundpoolError)
    assert not isinstance(last, FundpoolError)
    assert last.id == first.id
    assert w.count("payments") == 4_096


def test_an_amount_whose_fee_overflows_is_that_items_error(
    store: LedgerStore, ledger: Ledger, clock: ManualClock
) -> None:
    w = wire(store, ledger, clock, priority=["rtp"], dispatch=NOW)
    service = w.service
    # Creation refuses a transfer larger than its source holds: eth-l1 holds the largest.
    w.fund("eth-l1", "ETH", AMOUNT_MAX_MINOR)
    # eth-l1 and arb-l2 have no upper limit; eth-l1 charges 0.00084 ETH a transfer.
    ok = service.create(PaymentRequest(PaymentKind.INTERNAL, "ETH", 10**18, "eth-l1", "arb-l2"))
    big = service.create(
        PaymentRequest(PaymentKind.INTERNAL, "ETH", AMOUNT_MAX_MINOR, "eth-l1", "arb-l2")
    )
    out = service.act_many([
        Step(ok.id, Action.SCREEN), Step(big.id, Action.SCREEN),
        Step(ok.id, Action.ROUTE), Step(big.id, Action.ROUTE),
    ])
    assert not isinstance(out[2], FundpoolError)  # the call goes on for the other item
    assert isinstance(out[3], FundpoolError)
    assert out[3].code == "amount_overflow"
    assert service.get(big.id).state is S.SCREENED


def test_an_advanced_deposit_is_returned_as_one_after_instant_settlement_is_switched_off(
    store: LedgerStore, ledger: Ledger, clock: ManualClock
) -> None:
    w = wire(store, ledger, clock, priority=["card-acq"], dispatch=NOW)
    w.fund("card-acq", "USD", 1_000_000)
    service = w.service
    deposit = service.create(PaymentRequest(PaymentKind.DEPOSIT, "USD", 10_000, "card-acq",
                                            metadata={"merchant": "m42"}))
    service.act_many([Step(deposit.id, Action.SCREEN), Step(deposit.id, Action.CLEAR)])
    advanced = ledger.balance(exposure_total("main", "USD"), "USD").posted
    assert advanced == 10_000 - deposit.fee_minor  # 100.00 less 1.80 % = 98.20
    # Instant settlement switched off in the configuration; the deposit then comes back.
    pool = dataclasses.replace(CONFIG.pool("main"), instant_settlement={})
    config = dataclasses.replace(CONFIG, pools=(pool,))
    later = type(service)(ledger, service._store, config, pool, w.ids)
    later.act(Step(deposit.id, Action.RETURN))
    assert ledger.balance(exposure_total("main", "USD"), "USD").posted == 0
    assert ledger.balance(merchant_payable("m42", "USD"), "USD").posted == 0
    assert verify(store).ok


@pytest.mark.parametrize("fee", [5 * 10**18, 2**100])
def test_batch_savings_are_summed_exactly_beyond_64_bits(
    store: LedgerStore, ledger: Ledger, clock: ManualClock, fee: int
) -> None:
    w = wire(store, ledger, clock, priority=["rtp"], dispatch=NOW)
    with w.service.session() as session:
        writes = w.dispatcher.records.writes(session.write_session)
        writes.add_batches([
            BatchRecord(f"b{i}", "eth-l1", "ETH", f"ref{i}", 1, 10**18, fee, 2 * fee, fee, 0, 0,
                        "sent")
            for i in range(2)
        ])
    assert w.dispatcher.reads.savings()[("eth-l1", "ETH")] == (2, 2 * fee, 2 * fee)


def test_deposits_of_two_assets_on_one_rail_are_announced_one_submission_per_asset(
    store: LedgerStore, ledger: Ledger, clock: ManualClock
) -> None:
    """eth-l1 carries USDT and ETH; a rail takes a submission in one asset only (the real
    simulated rail refuses a mixed one whole, which failed every deposit in it)."""
    rails = scripted(CONFIG, ["rtp", "eth-l1"])
    w = wire(store, ledger, clock, rails=rails, priority=["rtp"], dispatch=NOW)
    intakes = w.intake(  # one call: both deposits are announced together
        PaymentRequest(PaymentKind.DEPOSIT, "USDT", 5_000_000, "eth-l1"),
        PaymentRequest(PaymentKind.DEPOSIT, "ETH", 10**17, "eth-l1"),
    )
    ids = sorted(i.outcome.id for i in intakes if not isinstance(i.outcome, FundpoolError))
    taken = w.rail("eth-l1").taken
    assert sorted(len({i.asset for i in batch}) for _, batch in taken) == [1, 1]
    assert sorted(i.payment_id for _, batch in taken for i in batch) == ids
