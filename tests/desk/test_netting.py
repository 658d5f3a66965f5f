"""Netting cycles on both stores: the queued obligations of one asset netted, only the net
positions moved (one ledger transaction through the clearing account, which ends at zero),
a short participant's obligations queued for the next cycle, and bad input refused whole."""

from __future__ import annotations

from fractions import Fraction

import pytest

from fundpool.core.errors import FundpoolError
from fundpool.core.ledger.model import Posting
from fundpool.desk.netting import ObligationRequest, clearing_account, partner_account
from fundpool.pool.accounts import PoolState, merchant_payable, pool_account
from tests.desk.conftest import CASHIER, Pool


def _give(pool: Pool, account: str, amount_minor: int) -> None:
    pool.fund("rtp", "USD", amount_minor)
    pool.ledger.transfer([Posting(pool_account("main", "USD", "rtp", PoolState.AVAILABLE),
                                  account, "USD", amount_minor)])


def test_a_cycle_settles_only_net_positions(pool: Pool) -> None:
    _give(pool, merchant_payable("m42", "USD"), 500_00)
    pool.desk.netting.record([
        ObligationRequest("m42", "m77", "USD", 300_00),
        ObligationRequest("m77", "partner-pool-a", "USD", 200_00),
        ObligationRequest("partner-pool-a", "m42", "USD", 100_00),
        ObligationRequest("m77", "m42", "USD", 250_00),
    ], actor=CASHIER)
    # positions: m42 -300 +100 +250 = +50; m77 +300 -200 -250 = -150; partner +200 -100 = +100
    cycle = pool.desk.netting.run_cycle("USD", actor=CASHIER)
    assert cycle.state == "settled"
    assert cycle.body["gross_minor"] == "85000"
    assert cycle.body["net_minor"] == "15000"
    assert Fraction(cycle.body["efficiency"]) == 1 - Fraction(150, 850)
    assert cycle.body["short"] == ["m77"]
    # m77 holds nothing and is 150.00 short: gridlock resolution queues its largest
    # obligation (250.00 to m42); the other three settle: m42 -200.00 (it holds 500.00),
    # m77 +100.00, the partner +100.00.
    assert (cycle.body["settled"], cycle.body["queued"]) == (3, 1)
    assert cycle.body["positions"] == {"m42": "-20000", "m77": "10000",
                                       "partner-pool-a": "10000"}
    assert pool.balance(merchant_payable("m42", "USD"), "USD") == 300_00
    assert pool.balance(merchant_payable("m77", "USD"), "USD") == 100_00
    assert pool.balance(clearing_account("main", "USD"), "USD") == 0
    (left,) = pool.desk.netting.queued("USD")
    assert (left.body["payer"], left.body["payee"]) == ("m77", "m42")


def test_a_feasible_cycle_moves_the_net_and_clears_to_zero(pool: Pool) -> None:
    _give(pool, merchant_payable("m42", "USD"), 1_000_00)
    _give(pool, merchant_payable("m77", "USD"), 1_000_00)
    pool.desk.netting.record([
        ObligationRequest("m42", "m77", "USD", 300_00),
        ObligationRequest("m77", "partner-pool-a", "USD", 200_00),
        ObligationRequest("partner-pool-a", "m42", "USD", 100_00),
        ObligationRequest("m77", "m42", "USD", 250_00),
    ], actor=CASHIER)
    head = pool.ledger.head().seq
    cycle = pool.desk.netting.run_cycle("USD", actor=CASHIER)
    assert (cycle.body["settled"], cycle.body["queued"]) == (4, 0)
    assert pool.balance(merchant_payable("m42", "USD"), "USD") == 1_050_00
    assert pool.balance(merchant_payable("m77", "USD"), "USD") == 850_00
    assert pool.balance(partner_account("partner-pool-a", "USD"), "USD") == 100_00
    assert pool.balance(clearing_account("main", "USD"), "USD") == 0
    entries = pool.ledger.history(clearing_account("main", "USD"), asset="USD", limit=10)
    assert len(entries) == 1
    assert pool.ledger.head().seq > head
    assert pool.desk.netting.queued("USD") == []
    # The next cycle has nothing to net.
    empty = pool.desk.netting.run_cycle("USD", actor=CASHIER)
    assert (empty.body["obligations"], empty.body["settled"]) == (0, 0)


def test_bad_obligations_are_refused_whole(pool: Pool) -> None:
    with pytest.raises(FundpoolError) as unknown:
        pool.desk.netting.record([ObligationRequest("m42", "m77", "USD", 1_00),
                                  ObligationRequest("m42", "stranger", "USD", 1_00)])
    assert unknown.value.code == "unknown_participant"
    with pytest.raises(FundpoolError) as same:
        pool.desk.netting.record([ObligationRequest("m42", "m42", "USD", 1_00)])
    assert same.value.code == "invalid_obligation"
    with pytest.raises(FundpoolError) as asset:
        pool.desk.netting.record([ObligationRequest("m42", "m77", "GBP", 1_00)])
    assert asset.value.code == "invalid_netting"
    assert pool.desk.netting.queued() == []
