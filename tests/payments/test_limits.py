"""A channel's amount limits (examples/pool.toml: bank-a takes 1.00 to 5,000,000.00 USD, RTP
0.01 to 1,000,000.00): a payment naming a channel, or routed to one, outside its limits is
refused with `amount_outside_limits`, and nothing is created or changed."""

from __future__ import annotations

from pathlib import Path

import pytest

from fundpool.core.clock import Uuid7Ids
from fundpool.core.errors import FundpoolError
from fundpool.core.ledger.model import Posting
from fundpool.ledger.service import Ledger
from fundpool.payments.model import Action, PaymentKind, PaymentRequest, PaymentState
from fundpool.payments.service import PaymentService, Step
from fundpool.pool.config import load_config
from fundpool.pool.setup import init_pool
from fundpool.stores import payment_store

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "pool.toml"
CONFIG = load_config(EXAMPLE)


@pytest.fixture
def service(ledger: Ledger) -> PaymentService:
    init_pool(ledger, CONFIG)
    # Creation refuses a payout larger than the pool holds (payments/funds.py): enough USD
    # for the largest amount the limits let through.
    ledger.transfer([Posting("world:bank-a", "pool:main:usd:bank-a:available", "USD",
                             500_000_000)])
    return PaymentService(ledger, payment_store(ledger.store), CONFIG, CONFIG.pool(),
                          Uuid7Ids.seeded(3))


@pytest.mark.parametrize(
    ("channel", "amount", "fits"),
    [
        ("bank-a", 99, False),  # 0.99 < 1.00
        ("bank-a", 100, True),
        ("bank-a", 500_000_000, True),
        ("bank-a", 500_000_001, False),  # above 5,000,000.00
        ("rtp", 45, True),  # the least rtp carries whose fee (0.45) it covers
        ("rtp", 100_000_001, False),  # above 1,000,000.00
    ],
)
def test_a_named_channel_refuses_an_amount_outside_its_limits(
    service: PaymentService, channel: str, amount: int, fits: bool
) -> None:
    request = PaymentRequest(PaymentKind.PAYOUT, "USD", amount, channel=channel)
    (outcome,) = service.create_many([(request, None)])
    if fits:
        assert not isinstance(outcome, FundpoolError)
        return
    assert isinstance(outcome, FundpoolError)
    assert outcome.code == "amount_outside_limits"
    assert outcome.facts["channel"] == channel
    assert service.list() == []  # nothing created


def test_a_named_channel_whose_fee_exceeds_the_amount_is_refused(
    service: PaymentService,
) -> None:
    request = PaymentRequest(PaymentKind.PAYOUT, "USD", 44, channel="rtp")  # fee 0.45
    (outcome,) = service.create_many([(request, None)])
    assert isinstance(outcome, FundpoolError)
    assert outcome.code == "fee_exceeds_amount"
    assert (outcome.facts["fee_minor"], outcome.facts["amount_minor"]) == (45, 44)
    assert service.list() == []  # nothing created


def test_routing_to_a_channel_outside_its_limits_is_refused_and_changes_nothing(
    service: PaymentService,
) -> None:
    payment = service.create(PaymentRequest(PaymentKind.PAYOUT, "USD", 50))  # 0.50
    service.act(Step(payment.id, Action.SCREEN))
    with pytest.raises(FundpoolError) as caught:
        service.act(Step(payment.id, Action.ROUTE, "bank-a"))
    assert caught.value.code == "amount_outside_limits"
    after = service.get(payment.id)
    assert after.state is PaymentState.SCREENED
    assert after.channel is None
    routed = service.act(Step(payment.id, Action.ROUTE, "rtp"))  # 0.01 minimum: fits
    assert routed.channel == "rtp"


def test_a_transfer_destination_outside_its_limits_is_refused(service: PaymentService) -> None:
    request = PaymentRequest(PaymentKind.INTERNAL, "USD", 600_000_000, channel="book",
                             destination_channel="bank-a")  # 6,000,000.00 > bank-a's maximum
    with pytest.raises(FundpoolError) as caught:
        service.create(request)
    assert caught.value.code == "amount_outside_limits"
    assert caught.value.facts["channel"] == "bank-a"


def test_a_payout_never_goes_on_the_book_rail(service: PaymentService) -> None:
    """The pool's own books move money between its accounts; they pay no one outside it."""
    with pytest.raises(FundpoolError) as caught:
        service.create(PaymentRequest(PaymentKind.PAYOUT, "USD", 1_000, channel="book"))
    assert caught.value.code == "invalid_payment"
    assert service.list() == []
    payment = service.create(PaymentRequest(PaymentKind.PAYOUT, "USD", 1_000))
    service.act(Step(payment.id, Action.SCREEN))
    with pytest.raises(FundpoolError) as caught:
        service.act(Step(payment.id, Action.ROUTE, "book"))
    assert caught.value.code == "invalid_payment"
    assert service.get(payment.id).state is PaymentState.SCREENED
    # An internal transfer is what the book rail is for (from what the book holds).
    service.ledger.transfer([Posting("world:book", "pool:main:usd:book:available", "USD",
                                     1_000)])
    transfer = service.create(PaymentRequest(PaymentKind.INTERNAL, "USD", 1_000, channel="book",
                                             destination_channel="rtp"))
    assert transfer.channel == "book"
