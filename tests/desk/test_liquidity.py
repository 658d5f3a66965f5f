"""Liquidity management on both stores, as a treasury team uses it: bands from the channels'
depths and the treasury file, a rebalancing plan proposed, approved by another person and
executed as internal transfers that the payment service carries to the end; a plan whose
balances moved refused whole; sweep rules that never run twice at once and never breach a
minimum; a credit line drawn below the minimum, accruing exact daily interest, repaid from
surplus. Figures worked by hand from examples/pool.toml's depths:

    rtp USD:    low 1,500,000.00, target 5,000,000.00 -> band 1.5M / 5M / 7.5M
    bank-a USD: the same; book USD: the file's band 200,000 / 1,000,000 / 5,000,000
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from fundpool.core.actor import Actor
from fundpool.core.errors import FundpoolError
from fundpool.core.ledger.model import Posting
from fundpool.desk.liquidity import (
    PlanNotOpen,
    PlanOutdated,
    PlanSelfApproval,
    interest_account,
    lender_account,
)
from fundpool.desk.runner import DESK, DeskRunner
from fundpool.payments.model import Action, PaymentKind, PaymentState
from fundpool.payments.service import Step
from fundpool.pool.accounts import PoolState, pool_account, world_account
from tests.desk.conftest import APPROVER, CASHIER, DAY, Pool

M = 1_000_000_00  # a million, in cents
LEAD = Actor("user", "u-lead", "treasury lead", roles=("approver",))

LIQUIDITY = """
[liquidity]
stale_after_s = 30
sweep_every_s = 10
auto_execute = { USD = "1000.00" }

[[bands]]
channel = "book"
asset = "USD"
min = "200000.00"
target = "1000000.00"
max = "5000000.00"

[[sweeps]]
id = "usd-rtp-collar"
kind = "collar"
asset = "USD"
header = "book"
floor = "1500000.00"
cap = "7500000.00"
target = "5000000.00"
to_target = true
participants = [{ channel = "rtp" }]

[[credit_lines]]
id = "rcf-usd"
channel = "bank-a"
asset = "USD"
limit = "2000000.00"
annual_rate = "0.0730"
"""


@pytest.fixture
def pool(pool_factory: Callable[..., Pool]) -> Pool:
    return pool_factory(LIQUIDITY)


def carry(pool: Pool, payment_id: str) -> None:
    """Take an internal transfer to settled as the engine would, an approver signing where
    the pool's threshold asks for one."""
    payment = pool.payments.get(payment_id)
    assert payment.kind is PaymentKind.INTERNAL
    steps = [Step(payment_id, Action.SCREEN),
             Step(payment_id, Action.ROUTE, channel=payment.channel,
                  destination_channel=payment.destination_channel)]
    for step in steps:
        pool.payments.act(step)
    if pool.payments.get(payment_id).approval_required:
        pool.payments.act(Step(payment_id, Action.REQUEST_APPROVAL))
        pool.payments.act(Step(payment_id, Action.APPROVE, actor=LEAD))
    else:
        pool.payments.act(Step(payment_id, Action.APPROVE))
    for action in (Action.SUBMIT, Action.SETTLE):
        pool.payments.act(Step(payment_id, action))


def drain(pool: Pool, channel: str, amount_minor: int) -> None:
    pool.ledger.transfer([Posting(pool_account("main", "USD", channel, PoolState.AVAILABLE),
                                  world_account(channel), "USD", amount_minor)])


def test_a_plan_is_approved_by_another_person_and_executed_as_payments(pool: Pool) -> None:
    pool.fund("rtp", "USD", 9 * M)       # above its maximum of 7.5M
    pool.fund("bank-a", "USD", M)        # below its minimum of 1.5M
    pool.fund("book", "USD", M)          # at its target

    plan = pool.desk.liquidity.propose(actor=CASHIER)

    assert plan.state == "proposed"
    (transfer,) = [t for t in plan.body["transfers"] if t["asset"] == "USD"]
    # rtp's surplus over its target (4M, of which it pays the fee, 0.45) covers most of
    # bank-a's way to its target: one move, carried as four payments (RTP takes at most
    # 1,000,000.00 in one), each with RTP's fee of 0.30 + 0.25 bps... as its schedule says.
    assert (transfer["source"], transfer["destination"]) == ("rtp", "bank-a")
    amount = int(transfer["amount_minor"])
    assert 4 * M - 100 < amount <= 4 * M
    assert transfer["payments"] == 4
    assert int(transfer["fee_minor"]) == sum(
        pool.config.channel("rtp").fee_schedule("USD").outbound_fee(part)
        for part in (M, M, M, amount - 3 * M))
    assert "bank-a" in transfer["why"]
    assert all(u["channel"] not in ("rtp", "bank-a") for u in plan.body["unresolved"])

    with pytest.raises(PlanSelfApproval):
        pool.desk.liquidity.approve(plan.id, actor=CASHIER)
    done = pool.desk.liquidity.approve(plan.id, actor=APPROVER)
    assert done.state == "executing"
    payment_ids = done.body["payments"]
    assert len(payment_ids) == 4
    for payment_id, part in zip(payment_ids, (M, M, M, amount - 3 * M), strict=True):
        payment = pool.payments.get(payment_id)
        assert (payment.kind, payment.channel, payment.destination_channel,
                payment.amount_minor) == (PaymentKind.INTERNAL, "rtp", "bank-a", part)
        assert payment.metadata["treasury"] == "rebalance"
        assert payment.initiated_by is not None
        assert payment.initiated_by.who == APPROVER.who
    assert pool.woken == 1
    with pytest.raises(PlanNotOpen):
        pool.desk.liquidity.approve(plan.id, actor=LEAD)

    for payment_id in payment_ids[:3]:
        carry(pool, payment_id)
    assert pool.desk.liquidity.plan(plan.id).state == "executing"  # one still on its way
    carry(pool, payment_ids[3])
    assert pool.desk.liquidity.plan(plan.id).state == "executed"
    fee = sum(pool.payments.get(p).fee_minor for p in payment_ids)
    assert fee == int(transfer["fee_minor"])
    assert pool.available("rtp", "USD") == 9 * M - amount - fee
    assert pool.available("bank-a", "USD") == M + amount
    statuses = {(p["channel"], p["asset"]): p["status"] for p in pool.desk.liquidity.positions()}
    assert statuses[("rtp", "USD")] == "within"
    assert statuses[("bank-a", "USD")] == "within"
    trail = [a.action for _, a in pool.desk.actions()]
    assert trail[:3] == ["liquidity.execute", "liquidity.propose", "credit.open"] or \
        trail[:2] == ["liquidity.execute", "liquidity.propose"]


def test_a_plan_whose_balances_moved_sends_nothing(pool: Pool) -> None:
    pool.fund("rtp", "USD", 9 * M)
    pool.fund("bank-a", "USD", M)
    plan = pool.desk.liquidity.propose(actor=CASHIER)
    drain(pool, "rtp", 7 * M)  # customers took it before the approver looked
    with pytest.raises(PlanOutdated) as outdated:
        pool.desk.liquidity.approve(plan.id, actor=APPROVER)
    assert outdated.value.facts["short"][0]["channel"] == "rtp"
    assert pool.desk.liquidity.plan(plan.id).state == "outdated"
    assert pool.payments.list() == []


def test_a_plan_within_the_policy_limits_runs_without_approval(
        pool_factory: Callable[..., Pool]) -> None:
    pool = pool_factory(LIQUIDITY.replace('target = "1000000.00"', 'target = "200000.00"', 1))
    pool.fund("book", "USD", 199_500_00)          # 500.00 under its minimum and target
    pool.fund("rtp", "USD", 5 * M + 2_000_00)     # 2,000.00 over its target
    pool.fund("bank-a", "USD", 5 * M)             # at its target
    plan = pool.desk.liquidity.propose(actor=CASHIER)
    (transfer,) = plan.body["transfers"]
    assert (transfer["source"], transfer["destination"], transfer["amount_minor"]) == (
        "rtp", "book", str(500_00))
    # Every transfer within the policy's limit (1,000.00): executed with no approver.
    assert plan.body["auto"] is True
    assert plan.state == "executing"
    (payment_id,) = plan.body["payments"]
    assert pool.payments.get(payment_id).initiated_by == CASHIER


def test_a_sweep_never_runs_twice_at_once_nor_breaches_a_minimum(pool: Pool) -> None:
    pool.fund("book", "USD", 2 * M)       # 1.8M above its minimum of 200,000
    pool.fund("rtp", "USD", M)            # under the collar's floor of 1.5M
    (first,) = pool.desk.liquidity.run_sweeps(actor=DESK)
    assert first["outcome"] == "swept"
    (move,) = first["moves"]
    # To the target (5M) it would need 4M; the header gives only what it holds above its
    # minimum: 1.8M.
    assert (move["source"], move["destination"], move["amount_minor"]) == (
        "book", "rtp", str(1_800_000_00))
    (again,) = pool.desk.liquidity.run_sweeps(actor=DESK)
    assert again["outcome"] == "sweep_pending"
    assert len(first["payments"]) == 2  # RTP takes at most 1,000,000.00 in one payment
    for payment_id in first["payments"]:
        carry(pool, payment_id)
    fees = sum(pool.payments.get(p).fee_minor for p in first["payments"])
    assert pool.available("book", "USD") == 200_000_00 - fees
    assert pool.available("rtp", "USD") == M + 1_800_000_00
    (third,) = pool.desk.liquidity.run_sweeps(actor=DESK)
    # The header is at its minimum: nothing left to fund rtp with.
    assert third["outcome"] == "nothing_to_move"
    runs = pool.desk.liquidity.sweep_runs()
    assert [r.state for r in runs] == ["done"]


def test_a_credit_line_is_drawn_accrues_daily_and_is_repaid(pool: Pool) -> None:
    pool.fund("bank-a", "USD", M)  # under its minimum (1.5M): draw to its target (5M)
    (ran,) = pool.desk.liquidity.run_credit(actor=DESK)
    assert ran["drawn_minor"] == 2 * M  # 4M wanted, the limit is 2M
    lender = lender_account("main", "rcf-usd")
    assert pool.balance(lender, "USD") == -2 * M
    assert pool.available("bank-a", "USD") == 3 * M
    # A further draw is beyond the limit: the ledger itself refuses it.
    with pytest.raises(FundpoolError) as beyond:
        pool.ledger.transfer([Posting(lender, pool_account("main", "USD", "bank-a",
                                                          PoolState.AVAILABLE), "USD", 1)])
    assert beyond.value.code == "insufficient_funds"

    pool.clock.set(DAY + 3 * 86_400_000_000 + 9 * 3_600_000_000)  # three days on
    (ran,) = pool.desk.liquidity.run_credit(actor=DESK)
    # Simple interest on the principal: 2,000,000.00 x 7.30 % / 365 = 400.00 a day, exact.
    assert ran["interest_minor"] == 3 * 400_00
    assert pool.balance(interest_account("main", "rcf-usd"), "USD") == 1_200_00
    facility = pool.desk.liquidity.facilities[0]
    assert pool.desk.liquidity.owed(facility) == 2 * M + 1_200_00
    (again,) = pool.desk.liquidity.run_credit(actor=DESK)  # the same day: nothing more
    assert again["interest_minor"] == 0

    pool.fund("bank-a", "USD", 6 * M)  # 9M: 4M above its target
    (ran,) = pool.desk.liquidity.run_credit(actor=DESK)
    assert ran["repaid_minor"] == 2 * M + 1_200_00  # the interest due, then the principal
    assert pool.desk.liquidity.owed(facility) == 0
    assert pool.available("bank-a", "USD") == 9 * M - 2 * M - 1_200_00


def test_the_runner_runs_credit_sweeps_and_plans_each_pass(pool: Pool) -> None:
    pool.fund("book", "USD", 2 * M)
    pool.fund("rtp", "USD", M)
    pool.fund("bank-a", "USD", M)
    runner = DeskRunner(pool.desk, every_s=3_600)
    report = runner.run_once()
    assert report["credit"][0]["drawn_minor"] == 2 * M
    assert report["sweeps"][0]["outcome"] == "swept"
    assert runner.passes == 1
    payments = pool.payments.list()
    assert {p.state for p in payments} == {PaymentState.INITIATED}
    assert all(p.initiated_by == DESK for p in payments)


def test_a_plan_that_moves_nothing_has_nothing_to_approve(pool: Pool) -> None:
    for channel in ("rtp", "bank-a"):
        pool.fund(channel, "USD", 5 * M)
    pool.fund("book", "USD", M)
    pool.fund("sepa", "EUR", 2 * M)
    plan = pool.desk.liquidity.propose(actor=CASHIER)
    # USD and EUR are within their bands; the other assets are empty everywhere, so no
    # route can fund them: unresolved, said why, and nothing to move.
    assert plan.body["transfers"] == []
    assert {u["asset"] for u in plan.body["unresolved"]} == {"USDT", "ETH", "E-CNY"}
    assert plan.state == "nothing_to_move"
    with pytest.raises(PlanNotOpen):
        pool.desk.liquidity.approve(plan.id, actor=APPROVER)


def test_a_sweeps_reasons_speak_in_the_assets_units(pool: Pool) -> None:
    pool.fund("book", "USD", 2 * M)
    pool.fund("rtp", "USD", M)
    (run,) = pool.desk.liquidity.run_sweeps(actor=DESK)
    (move,) = run["moves"]
    assert "1,000,000.00 is under the floor 1,500,000.00" in move["reason"]
