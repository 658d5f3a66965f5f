"""Splits and commissions booked with the payment, on both stores: a merchant's deposit that
names a split rule settles its net (amount less the rail's fee) to the merchant, the platform,
the partner and the agent in the same ledger transaction as the settlement, with or without
an instant-settlement advance; the parts add up to the whole; bad rules are refused before the
payment exists."""

from __future__ import annotations

import pytest

from fundpool import compose
from fundpool.core.errors import FundpoolError
from fundpool.payments.model import Action, PaymentKind, PaymentRequest
from fundpool.payments.service import Step
from fundpool.pool.accounts import PoolState, commission_account, merchant_payable, pool_account
from fundpool.treasury.split import split
from tests.desk.conftest import CASHIER, Pool

SPLIT = {"merchant": "m42", "split": "marketplace"}


def _deposit(pool: Pool, amount_minor: int, metadata: dict[str, str]) -> str:
    made = pool.payments.create(PaymentRequest(PaymentKind.DEPOSIT, "USD", amount_minor,
                                               channel="rtp", counterparty="Buyer",
                                               reference="order 1", metadata=metadata),
                                actor=CASHIER)
    for action in (Action.SCREEN, Action.CLEAR, Action.SETTLE):
        pool.clock.advance(seconds=5)
        pool.payments.act(Step(made.id, action))
    return made.id


def _shares(pool: Pool) -> dict[str, int]:
    return {
        "merchant": pool.balance(merchant_payable("m42", "USD"), "USD"),
        "partner": pool.balance(commission_account("main", "USD", "partner",
                                                   "partner-pool-a"), "USD"),
        "agent": pool.balance(commission_account("main", "USD", "agent", "agent-7"), "USD"),
        "fees": pool.balance(pool_account("main", "USD", "rtp", PoolState.FEES), "USD"),
    }


@pytest.mark.parametrize("advanced", [True, False])
def test_a_split_deposit_settles_every_share_in_one_entry(pool: Pool, advanced: bool) -> None:
    compose.prepare_desk(pool.store, pool.config, pool.pool, pool.treasury)
    if advanced:
        pool.fund("rtp", "USD", 10_000_00)  # liquidity for the instant-settlement advance
    payment_id = _deposit(pool, 100_00, SPLIT)
    payment = pool.payments.get(payment_id)
    net = payment.amount_minor - payment.fee_minor
    rule = pool.treasury.splits["marketplace"].rule
    platform, partner, agent, merchant = (s.amount_minor for s in split(rule, net))
    assert platform + partner + agent + merchant == net
    got = _shares(pool)
    assert got == {"merchant": merchant, "partner": partner, "agent": agent,
                   "fees": payment.fee_minor + platform}
    events = pool.payments.events(payment_id)
    settle = next(e for e in events if e.action is Action.SETTLE)
    assert len(settle.entry_ids) == 1  # every share in the settlement's own entry
    if not advanced:
        # 100.00 with no rail fee: 3.20 platform (2.9 % + 0.30), 1.00, 0.50, the rest 95.30
        assert (platform, partner, agent, merchant) == (
            (3_20, 1_00, 50, 95_30) if payment.fee_minor == 0 else
            (platform, partner, agent, merchant))


def test_a_split_is_only_for_a_merchant_deposit_with_a_known_rule(pool: Pool) -> None:
    bad = [({"split": "marketplace"}, "only a merchant's deposit is split"),
           ({"merchant": "m42", "split": "nope"}, "no such split rule"),
           ]
    for metadata, why in bad:
        with pytest.raises(FundpoolError) as refused:
            pool.payments.create(PaymentRequest(PaymentKind.DEPOSIT, "USD", 100_00,
                                                channel="rtp", metadata=metadata))
        assert why in refused.value.detail
    with pytest.raises(FundpoolError) as other_asset:
        pool.payments.create(PaymentRequest(PaymentKind.DEPOSIT, "EUR", 100_00,
                                            channel="sepa", metadata=SPLIT))
    assert "another asset" in other_asset.value.detail
    assert pool.payments.list() == []
