"""Stress tests on the live pool: the scenario engine run from what the pool holds now (its
positions, its customers' money, the last minutes' flows, its credit lines), and refused
whole when the scenario's figures are impossible."""

from __future__ import annotations

import pytest

from fundpool.core.errors import FundpoolError
from fundpool.desk.stress import scenario_doc_from_options, share_text
from fundpool.payments.model import Action, PaymentKind, PaymentRequest
from fundpool.payments.service import Step
from tests.desk.conftest import CASHIER, Pool

M = 1_000_000_00


def test_the_live_state_is_what_the_pool_holds(pool: Pool) -> None:
    pool.fund("rtp", "USD", 5 * M)
    pool.fund("sepa", "EUR", 2 * M)
    made = pool.payments.create(PaymentRequest(PaymentKind.DEPOSIT, "USD", 600_00,
                                               channel="rtp"), actor=CASHIER)
    for action in (Action.SCREEN, Action.CLEAR):
        pool.payments.act(Step(made.id, action))
    state = pool.desk.stress.state()
    assert state.positions[("rtp", "USD")] == 5 * M
    # 600.00 cleared, pending settlement: the customers' money too
    assert state.liabilities["USD"] == 5 * M + 600_00
    assert state.liabilities["EUR"] == 2 * M
    # The last ten minutes' deposits, scaled to an hour.
    assert state.inflow_per_hour[("rtp", "USD")] == 6 * 600_00
    assert state.reporting_asset == "USD"


def test_a_run_reports_the_horizon_the_first_dry_position_and_the_credit_needed(
        pool: Pool) -> None:
    pool.fund("rtp", "USD", 5 * M)
    pool.fund("bank-a", "USD", 5 * M)
    pool.fund("sepa", "EUR", 2 * M)
    calm = pool.desk.stress.run({"name": "calm", "hours": 24, "withdrawal_share": "0.1",
                                 "withdrawal_hours": 24}, actor=CASHIER)
    assert calm["survival_horizon_h"] is None
    assert calm["first_dry"] is None
    assert len(calm["hours"]) == 24
    # A run on USD with RTP out for most of the day: bank-a pays everything, then runs dry.
    run = pool.desk.stress.run({"name": "run", "hours": 24, "withdrawal_share": "0.9",
                                "withdrawal_hours": 6,
                                "outages": [{"channel": "rtp", "from_hour": 1,
                                             "to_hour": 24}]}, actor=CASHIER)
    assert run["first_dry"] is not None
    assert run["first_dry"]["channel"] == "bank-a"
    assert run["survival_horizon_h"] is not None
    assert run["survival_horizon_h"] <= 6
    assert run["credit_needed"]["USD"] != "0.00"
    trail = [a for _, a in pool.desk.actions() if a.action == "stress.run"]
    assert len(trail) == 2
    assert trail[0].details["first_dry"] == run["first_dry"]


@pytest.mark.parametrize(("doc", "field"), [
    ({"name": "x", "hours": 0, "withdrawal_share": "0.3", "withdrawal_hours": 1}, "hours"),
    ({"name": "x", "hours": 24, "withdrawal_share": "1.5", "withdrawal_hours": 24},
     "withdrawal_share"),
    ({"name": "x", "hours": 24, "withdrawal_share": 0.3, "withdrawal_hours": 24},
     "withdrawal_share"),
    ({"name": "x", "hours": 24, "withdrawal_share": "0.3", "withdrawal_hours": 24,
      "outages": [{"channel": "nowhere", "from_hour": 1, "to_hour": 2}]}, "outages"),
    ({"name": "x", "hours": 24, "withdrawal_share": "0.3", "withdrawal_hours": 24,
      "fx_shock": {"EUR": "-1"}}, "fx_shock"),
    ({"name": "x", "hours": 24, "withdrawal_share": "0.3", "withdrawal_hours": 24,
      "outages": [{"channel": "rtp", "from_hour": 9, "to_hour": 3}]}, "outages"),
])
def test_an_impossible_scenario_is_refused_and_nothing_is_kept(
        pool: Pool, doc: dict[str, object], field: str) -> None:
    with pytest.raises(FundpoolError) as refused:
        pool.desk.stress.run(doc, actor=CASHIER)
    assert refused.value.code == "invalid_scenario"
    assert field in str(refused.value.facts.get("field", ""))
    assert [a for _, a in pool.desk.actions() if a.action == "stress.run"] == []


def test_the_cli_options_make_a_scenario() -> None:
    assert share_text("30") == "0.3"
    assert share_text("-20") == "-0.2"
    assert share_text("12.5") == "0.125"
    assert share_text("abc") == "abc"
    doc = scenario_doc_from_options("30", 24, None, ["rtp:2-10"], ["EUR=-20"])
    assert doc == {"name": "cli", "hours": 24, "withdrawal_share": "0.3",
                   "withdrawal_hours": 24,
                   "outages": [{"channel": "rtp", "from_hour": 2, "to_hour": 10}],
                   "fx_shock": {"EUR": "-0.2"}}
