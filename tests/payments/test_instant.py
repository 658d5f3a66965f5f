"""Merchant instant settlement through the dispatcher, on both stores: a merchant's card deposit
is credited to the merchant at clear (an advance from the rail's available), counted on the
exposure memo accounts, capped per merchant and for the pool, repaid at settlement; a deposit
that does not fit is credited at settlement instead; a return takes the advance back; a
reversal undoes it all.

Every expected balance is a literal worked by hand from the docstring of
src/fundpool/payments/instant.py (A = amount, F = the card acquirer's 180 bps, N = A - F), on
examples/pool.toml with smaller caps: the pool may advance 1,000.00 USD in all and 600.00 to
one merchant.
"""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from fundpool.core.clock import ManualClock
from fundpool.core.errors import FundpoolError
from fundpool.core.ledger.model import Posting
from fundpool.ledger.ports import LedgerStore
from fundpool.ledger.service import Ledger
from fundpool.ledger.verify import verify
from fundpool.payments.instant import MERCHANT_KEY, advanced
from fundpool.payments.model import Action, Payment, PaymentKind, PaymentRequest, PaymentState
from fundpool.pool.accounts import (
    exposure_merchant,
    exposure_source,
    exposure_total,
    merchant_payable,
)
from tests.payments.test_dispatch import (
    NOW,
    USD_RAILS,
    O,
    Wired,
    config_with,
    deposit,
    payout,
    scripted,
    usd,
    wire,
    wusd,
)

S = PaymentState
A = Action

CONFIG = config_with(
    pool={"instant_settlement": {"USD": {"pool_cap": "1000.00", "merchant_cap": "600.00"}}}
)
POOL_CAP = 100_000
MERCHANT_CAP = 60_000

SOURCE = (exposure_source("main", "USD"), "USD")
TOTAL = (exposure_total("main", "USD"), "USD")


def exposure(owner: str) -> tuple[str, str]:
    return (exposure_merchant("main", "USD", owner), "USD")


def payable(owner: str) -> tuple[str, str]:
    return (merchant_payable(owner, "USD"), "USD")


def merchant_deposit(amount: int, owner: str = "m42", channel: str = "card-acq") -> PaymentRequest:
    return deposit(amount, channel, **{MERCHANT_KEY: owner})


@pytest.fixture
def w(store: LedgerStore, ledger: Ledger, clock: ManualClock) -> Wired:
    rails = scripted(CONFIG, (*USD_RAILS, "sepa"))
    return wire(store, ledger, clock, config=CONFIG, rails=rails, dispatch=NOW)


def lit(w: Wired, expected: Mapping[tuple[str, str], int]) -> None:
    """Literal expected balances, and nothing else non-zero in the ledger; the memo accounts
    within the caps."""
    assert w.balances() == {k: v for k, v in expected.items() if v != 0}
    assert 0 <= expected.get(TOTAL, 0) <= POOL_CAP
    for (address, _), value in expected.items():
        if address.startswith("exposure:main:usd:merchant:"):
            assert 0 <= value <= MERCHANT_CAP


def report(w: Wired, payment: Payment, kind: O) -> None:
    w.rail("card-acq").report(payment.id, kind)
    w.tick()


def was_advanced(w: Wired, payment: Payment) -> bool:
    return advanced(w.service.events(payment.id))


# --- the advance and its repayment -------------------------------------------------------------


def test_a_merchant_deposit_is_advanced_at_clear_and_repaid_at_settle(w: Wired) -> None:
    w.fund("card-acq", "USD", 50_000)
    p = w.one(merchant_deposit(20_000))  # A 200.00, F 3.60, N 196.40
    assert (p.state, p.fee_minor) == (S.SCREENED, 360)
    lit(w, {wusd("card-acq"): -50_000, usd("card-acq", "available"): 50_000})
    report(w, p, O.CLEARED)
    assert w.state(p.id) is S.CLEARED
    assert was_advanced(w, p)
    lit(w, {
        wusd("card-acq"): -70_000,
        usd("card-acq", "pending_settlement"): 20_000,
        usd("card-acq", "available"): 30_360,
        payable("m42"): 19_640,
        TOTAL: 19_640, exposure("m42"): 19_640, SOURCE: -39_280,
    })
    report(w, p, O.SETTLED)
    assert w.state(p.id) is S.SETTLED
    lit(w, {
        wusd("card-acq"): -70_000,
        usd("card-acq", "available"): 50_000,
        usd("card-acq", "fees"): 360,
        payable("m42"): 19_640,
    })
    assert verify(w.store).ok


def test_settled_before_its_clearing_notice_is_advanced_and_repaid_in_one_tick(w: Wired) -> None:
    w.fund("card-acq", "USD", 50_000)
    p = w.one(merchant_deposit(20_000))
    report(w, p, O.SETTLED)
    assert w.actions(p.id)[-2:] == [A.CLEAR, A.SETTLE]
    assert was_advanced(w, p)
    lit(w, {
        wusd("card-acq"): -70_000,
        usd("card-acq", "available"): 50_000,
        usd("card-acq", "fees"): 360,
        payable("m42"): 19_640,
    })


def test_the_caps_hold_and_what_does_not_fit_is_credited_at_settlement(w: Wired) -> None:
    w.fund("card-acq", "USD", 200_000)
    d1 = w.one(merchant_deposit(50_000, "m42"))  # F 900, N 49,100
    d2 = w.one(merchant_deposit(15_000, "m42"))  # F 270, N 14,730: m42 would owe 638.30
    card = w.rail("card-acq")
    card.report(d1.id, O.CLEARED)
    card.report(d2.id, O.CLEARED)
    w.tick()
    assert (was_advanced(w, d1), was_advanced(w, d2)) == (True, False)
    d3 = w.one(merchant_deposit(50_000, "m77"))  # N 49,100: the pool at 982.00
    d4 = w.one(merchant_deposit(5_000, "m77"))  # F 90, N 4,910: the pool would be at 1,031.10
    card.report(d3.id, O.CLEARED)
    card.report(d4.id, O.CLEARED)
    w.tick()
    assert (was_advanced(w, d3), was_advanced(w, d4)) == (True, False)
    assert [w.state(p.id) for p in (d1, d2, d3, d4)] == [S.CLEARED] * 4
    lit(w, {
        wusd("card-acq"): -320_000,
        usd("card-acq", "pending_settlement"): 120_000,
        usd("card-acq", "available"): 101_800,
        payable("m42"): 49_100, payable("m77"): 49_100,
        TOTAL: 98_200, exposure("m42"): 49_100, exposure("m77"): 49_100, SOURCE: -196_400,
    })
    # Not advanced: the merchant is credited when the deposit settles.
    report(w, d2, O.SETTLED)
    report(w, d4, O.SETTLED)
    lit(w, {
        wusd("card-acq"): -320_000,
        usd("card-acq", "pending_settlement"): 100_000,
        usd("card-acq", "available"): 101_800,
        usd("card-acq", "fees"): 360,
        payable("m42"): 63_830, payable("m77"): 54_010,
        TOTAL: 98_200, exposure("m42"): 49_100, exposure("m77"): 49_100, SOURCE: -196_400,
    })
    # A repaid advance makes room again.
    report(w, d1, O.SETTLED)
    d5 = w.one(merchant_deposit(10_000, "m42"))  # F 180, N 9,820
    report(w, d5, O.CLEARED)
    assert was_advanced(w, d5)
    lit(w, {
        wusd("card-acq"): -330_000,
        usd("card-acq", "pending_settlement"): 60_000,
        usd("card-acq", "available"): 141_080,
        usd("card-acq", "fees"): 1_260,
        payable("m42"): 73_650, payable("m77"): 54_010,
        TOTAL: 58_920, exposure("m42"): 9_820, exposure("m77"): 49_100, SOURCE: -117_840,
    })
    assert verify(w.store).ok


def test_no_advance_without_available_on_the_rail(w: Wired) -> None:
    p = w.one(merchant_deposit(10_000))  # F 180, N 9,820; card-acq holds nothing
    report(w, p, O.CLEARED)
    assert w.state(p.id) is S.CLEARED
    assert not was_advanced(w, p)
    lit(w, {wusd("card-acq"): -10_000, usd("card-acq", "pending_settlement"): 10_000})
    report(w, p, O.SETTLED)
    lit(w, {wusd("card-acq"): -10_000, usd("card-acq", "fees"): 180, payable("m42"): 9_820})


# --- coming back -------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [O.RETURNED, O.FAILED])
def test_a_return_before_settlement_takes_the_advance_back_even_below_zero(
    w: Wired, kind: O
) -> None:
    w.fund("card-acq", "USD", 100_000)
    p = w.one(merchant_deposit(50_000))  # F 900, N 49,100
    report(w, p, O.CLEARED)
    assert was_advanced(w, p)
    # The merchant is paid what was advanced, before the card payment comes back.
    w.ledger.transfer([Posting(merchant_payable("m42", "USD"), "world:bank-a", "USD", 49_100)])
    lit(w, {
        wusd("card-acq"): -150_000, ("world:bank-a", "USD"): 49_100,
        usd("card-acq", "pending_settlement"): 50_000,
        usd("card-acq", "available"): 50_900,
        TOTAL: 49_100, exposure("m42"): 49_100, SOURCE: -98_200,
    })
    report(w, p, kind)  # a chargeback, or the acquirer failing a captured payment
    assert w.state(p.id) is S.RETURNED
    assert w.actions(p.id)[-1] is A.RETURN
    # The pool has its advance back; the merchant owes it (within the 600.00 credit line).
    lit(w, {
        wusd("card-acq"): -100_000, ("world:bank-a", "USD"): 49_100,
        usd("card-acq", "available"): 100_000,
        payable("m42"): -49_100,
    })
    assert verify(w.store).ok


def test_a_return_of_a_deposit_that_was_not_advanced(w: Wired) -> None:
    p = w.one(merchant_deposit(10_000))  # nothing on card-acq to advance from
    report(w, p, O.CLEARED)
    report(w, p, O.RETURNED)
    assert w.state(p.id) is S.RETURNED
    lit(w, {})


def test_a_settled_advanced_deposit_reversed(w: Wired) -> None:
    w.fund("card-acq", "USD", 100_000)
    p = w.one(merchant_deposit(20_000))  # F 360, N 19,640
    report(w, p, O.CLEARED)
    report(w, p, O.SETTLED)
    report(w, p, O.RETURNED)  # after settlement: the deposit is undone
    assert w.state(p.id) is S.REVERSED
    assert [o.disposition for o in w.outcomes(p.id)] == ["applied"] * 3
    lit(w, {wusd("card-acq"): -100_000, usd("card-acq", "available"): 100_000})
    assert verify(w.store).ok


def test_a_reversal_near_the_caps_or_after_the_rail_was_drained_still_goes_through(
    w: Wired,
) -> None:
    w.fund("card-acq", "USD", 300_000)
    d1 = w.one(merchant_deposit(20_000, "m42"))  # F 360, N 19,640
    report(w, d1, O.CLEARED)
    report(w, d1, O.SETTLED)
    d2 = w.one(merchant_deposit(61_000, "m77"))  # F 1,098, N 59,902
    d3 = w.one(merchant_deposit(30_000, "m42"))  # F 540, N 29,460
    report(w, d2, O.CLEARED)
    report(w, d3, O.CLEARED)
    assert (was_advanced(w, d2), was_advanced(w, d3)) == (True, True)  # the pool at 893.62
    # The rail's available is paid out down to 6.38: less than d1's advance.
    w.ledger.transfer([Posting(usd("card-acq", "available")[0], "world:card-acq", "USD",
                               210_000)])
    report(w, d1, O.RETURNED)
    # Undoing d1 gives back what it left: the merchant's credit and the fee. Nothing of it
    # is outstanding any more, so nothing on the way may count against the caps.
    assert w.state(d1.id) is S.REVERSED
    assert [o.disposition for o in w.outcomes(d1.id)] == ["applied"] * 3
    lit(w, {
        wusd("card-acq"): -181_000,
        usd("card-acq", "pending_settlement"): 91_000,
        usd("card-acq", "available"): 638,
        payable("m42"): 29_460, payable("m77"): 59_902,
        TOTAL: 89_362, exposure("m42"): 29_460, exposure("m77"): 59_902, SOURCE: -178_724,
    })
    assert verify(w.store).ok


# --- not a merchant deposit --------------------------------------------------------------------


def test_a_deposit_without_a_merchant_or_without_instant_settlement_is_a_plain_deposit(
    w: Wired,
) -> None:
    w.fund("card-acq", "USD", 50_000)
    plain = w.one(deposit(20_000))
    report(w, plain, O.CLEARED)
    assert not was_advanced(w, plain)
    report(w, plain, O.SETTLED)
    # EUR has no instant settlement: a merchant's EUR deposit is the pool's, as any deposit.
    euro = w.one(PaymentRequest(PaymentKind.DEPOSIT, "EUR", 30_000, "sepa",
                                metadata={MERCHANT_KEY: "m77"}))
    w.rail("sepa").report(euro.id, O.CLEARED)
    w.tick()
    assert not was_advanced(w, euro)
    w.rail("sepa").report(euro.id, O.SETTLED)
    w.tick()
    lit(w, {
        wusd("card-acq"): -70_000,
        usd("card-acq", "available"): 69_640, usd("card-acq", "fees"): 360,
        ("world:sepa", "EUR"): -30_000,
        ("pool:main:eur:sepa:available", "EUR"): 30_000,
    })


@pytest.mark.parametrize(
    "request_",
    [
        merchant_deposit(10_000, "company"),  # an owner, but not a merchant
        merchant_deposit(10_000, "m999"),  # nobody
        payout(10_000, **{MERCHANT_KEY: "m42"}),  # a payout is never paid to a merchant
    ],
)
def test_a_merchant_that_is_not_one_or_on_a_payout_is_refused(
    w: Wired, request_: PaymentRequest
) -> None:
    w.fund("rtp", "USD", 100_000)
    head = w.ledger.head()
    (intake,) = w.intake(request_)
    assert isinstance(intake.outcome, FundpoolError)
    assert intake.outcome.code == "invalid_payment"
    assert w.service.list(limit=10) == []
    assert w.ledger.head() == head
    w.tick()
    assert all(not rail.taken for rail in w.rails.values())
