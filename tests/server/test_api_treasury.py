"""The treasury desk through the API (docs/treasury.md), on the app `fundpool serve` runs, with
the example pool's treasury file: roles (reading for everyone, acting for the cashier, approving
for the approver and never one's own plan), the exchange from quote to executed entry, the P&L,
a converted payout, split and waterfall previews, a netting cycle, the liquidity desk's plans,
sweeps and credit lines, a stress test, the audit trail; and every refusal a problem with a
stable code that changes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fundpool.auth.roles import Role
from tests.server.api_helpers import Server, assert_problem, running_server


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    with running_server(tmp_path) as running:
        yield running


def test_the_exchange_quote_accept_and_pnl(server: Server) -> None:
    server.fund("sepa", "EUR", "10000.00")
    server.fund("rtp", "USD", "100000.00")
    cashier, viewer = server.as_role(Role.CASHIER), server.as_role(Role.VIEWER)
    rates = server.client.get("/v1/fx/rates", headers=viewer).json()
    assert {"pair": "EUR/USD", "mid_rate": "1.0843"} in rates["rates"]
    assert rates["spread_percent"] == "0.25"
    quote_in = {"sell": "EUR", "buy": "USD", "sell_amount": "1000.00"}
    assert_problem(server.client.post("/v1/fx/quotes", headers=viewer, json=quote_in),
                   403, "forbidden")
    made = server.client.post("/v1/fx/quotes", headers=cashier, json=quote_in)
    assert made.status_code == 201, made.text
    quote = made.json()
    assert (quote["state"], quote["sell_amount"], quote["buy_amount"]) == (
        "open", "1000.00", "1081.58")
    assert 0 < quote["expires_in_ms"] <= 30_000
    accepted = server.client.post(f"/v1/fx/quotes/{quote['id']}/accept", headers=cashier)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["state"] == "executed"
    assert accepted.json()["entry_id"]
    assert_problem(server.client.post(f"/v1/fx/quotes/{quote['id']}/accept",
                                      headers=cashier), 409, "fx_quote_not_open")
    pnl = server.client.get("/v1/fx/pnl", headers=viewer).json()
    assert pnl["pairs"] == [{"pair": "EUR/USD", "realised": "2.72", "unrealised": "0.00",
                             "count": 1}]
    balances = server.client.get("/v1/pools/main/view", headers=viewer)
    assert balances.status_code == 200


@pytest.mark.parametrize(("body", "status", "code"), [
    ({"sell": "EUR", "buy": "ETH", "sell_amount": "1.00"}, 422, "fx_rate_unknown"),
    ({"sell": "EUR", "buy": "EUR", "sell_amount": "1.00"}, 400, "invalid_fx_quote"),
    ({"sell": "EUR", "buy": "USD"}, 400, "invalid_fx_quote"),
    ({"sell": "EUR", "buy": "USD", "sell_amount": "1.00", "buy_amount": "1.00"}, 400,
     "invalid_fx_quote"),
    ({"sell": "GBP", "buy": "USD", "sell_amount": "1.00"}, 400, "fx_no_channel_for_asset"),
    ({"sell": "EUR", "buy": "USD", "sell_amount": "1.001"}, 400, "too_many_decimals"),
    ({"sell": "EUR", "buy": "USD", "sell_amount": 1.5}, 422, "invalid_request"),
])
def test_bad_quotes_are_refused_with_their_code(server: Server, body: dict[str, object],
                                                status: int, code: str) -> None:
    answer = server.client.post("/v1/fx/quotes", headers=server.admin, json=body)
    assert_problem(answer, status, code)
    assert server.client.get("/v1/fx/quotes", headers=server.admin).json() == []


def test_unknown_quote_and_converted_payout(server: Server) -> None:
    assert_problem(server.client.post("/v1/fx/quotes/nope/accept", headers=server.admin),
                   404, "fx_quote_unknown")
    server.fund("sepa", "EUR", "10000.00")
    server.fund("rtp", "USD", "1000.00")
    paid = server.client.post("/v1/fx/payouts", headers=server.as_role(Role.CASHIER), json={
        "funding_asset": "EUR", "asset": "USD", "amount": "2500.00",
        "destination": "021000021-123456789", "counterparty": "Jane Roe"})
    assert paid.status_code == 201, paid.text
    assert paid.json()["quote"]["state"] == "executed"
    assert paid.json()["quote"]["sell_amount"] == "2311.42"
    payment = server.client.get(f"/v1/payments/{paid.json()['payment']['id']}",
                                headers=server.admin).json()
    assert payment["asset"] == "USD"
    assert payment["metadata"]["fx_quote"] == paid.json()["quote"]["id"]


def test_split_and_waterfall_previews(server: Server) -> None:
    viewer = server.as_role(Role.VIEWER)
    rules = server.client.get("/v1/splits/rules", headers=viewer).json()
    assert [r["id"] for r in rules] == ["marketplace"]
    preview = server.client.post("/v1/splits/preview", headers=viewer, json={
        "amount": "100.00", "asset": "USD", "rule_id": "marketplace"}).json()
    assert [(s["party"], s["amount"]) for s in preview["shares"]] == [
        ("platform", "3.20"), ("partner-pool-a", "1.00"), ("agent-7", "0.50"),
        ("merchant", "95.30")]
    assert preview["total"] == "100.00"
    assert_problem(server.client.post("/v1/splits/preview", headers=viewer, json={
        "amount": "1.00", "asset": "USD", "rule_id": "nope"}), 404, "split_rule_unknown")
    assert_problem(server.client.post("/v1/splits/preview", headers=viewer, json={
        "amount": "1.00", "asset": "USD", "rule": {
            "id": "greedy", "remainder": "merchant", "parts": [
                {"party": "a", "role": "platform", "percent": "60"},
                {"party": "b", "role": "partner", "percent": "50"}]}}),
        400, "split_percentages_exceed_whole")

    fall = {"asset": "USD", "available": "1000000.00",
            "tiers": [{"name": "senior"}, {"name": "junior", "after": "senior"}],
            "obligations": [
                {"id": "a", "creditor": "bank-a", "tier": "senior", "amount": "600000.00"},
                {"id": "b", "creditor": "fund-b", "tier": "junior", "amount": "300000.00"},
                {"id": "c", "creditor": "fund-c", "tier": "junior", "amount": "600000.00"}]}
    report = server.client.post("/v1/waterfall/preview", headers=viewer, json=fall).json()
    paid = {o["id"]: (o["paid"], o["owed"]) for o in report["obligations"]}
    assert paid == {"a": ("600000.00", "0.00"), "b": ("133333.33", "166666.67"),
                    "c": ("266666.67", "333333.33")}
    cyclic = {**fall, "tiers": [{"name": "senior", "after": "junior"},
                                {"name": "junior", "after": "senior"}]}
    assert_problem(server.client.post("/v1/waterfall/preview", headers=viewer, json=cyclic),
                   400, "cyclic_tiers")


def test_a_netting_cycle_through_the_api(server: Server) -> None:
    cashier = server.as_role(Role.CASHIER)
    participants = server.client.get("/v1/netting/participants", headers=cashier).json()
    assert {p["id"] for p in participants} == {"m42", "m77", "partner-pool-a", "agent-7"}
    assert_problem(server.client.post("/v1/netting/obligations", headers=cashier, json=[
        {"payer": "m42", "payee": "m77", "asset": "USD", "amount": "10.00"},
        {"payer": "m42", "payee": "ghost", "asset": "USD", "amount": "10.00"}]),
        400, "unknown_participant")
    made = server.client.post("/v1/netting/obligations", headers=cashier, json=[
        {"payer": "m42", "payee": "m77", "asset": "USD", "amount": "10.00"},
        {"payer": "m77", "payee": "m42", "asset": "USD", "amount": "10.00"}])
    assert made.status_code == 201, made.text
    cycle = server.client.post("/v1/netting/cycles", headers=cashier, json={"asset": "USD"})
    assert cycle.status_code == 201, cycle.text
    doc = cycle.json()
    # Two equal and opposite obligations: nothing moves, efficiency 100 %.
    assert (doc["settled"], doc["queued"], doc["net"], doc["efficiency"]) == (
        2, 0, "0.00", "100.00 %")
    assert server.client.get("/v1/netting/cycles", headers=cashier).json()[0]["id"] == doc["id"]


def test_liquidity_plans_roles_and_four_eyes(server: Server) -> None:
    server.fund("rtp", "USD", "9000000.00")
    server.fund("bank-a", "USD", "1000000.00")
    cashier, approver = server.as_role(Role.CASHIER), server.as_role(Role.APPROVER)
    positions = server.client.get("/v1/liquidity", headers=cashier).json()["positions"]
    rtp = next(p for p in positions if (p["channel"], p["asset"]) == ("rtp", "USD"))
    assert rtp["status"] == "above_max"
    assert rtp["band"] == {"min": "1500000.00", "target": "5000000.00", "max": "7500000.00"}
    assert_problem(server.client.post("/v1/liquidity/plans", headers=approver), 403,
                   "forbidden")
    plan = server.client.post("/v1/liquidity/plans", headers=cashier)
    assert plan.status_code == 201, plan.text
    doc = plan.json()
    assert doc["state"] == "proposed"
    assert any(t["source"] == "rtp" for t in doc["transfers"])
    assert_problem(server.client.post(f"/v1/liquidity/plans/{doc['id']}/approve",
                                      headers=cashier), 403, "forbidden")
    approved = server.client.post(f"/v1/liquidity/plans/{doc['id']}/approve",
                                  headers=approver)
    assert approved.status_code == 200, approved.text
    assert approved.json()["state"] == "executing"
    assert approved.json()["payments"]
    assert_problem(server.client.post(f"/v1/liquidity/plans/{doc['id']}/reject",
                                      headers=approver, json={"note": "late"}), 409,
                   "plan_not_open")
    assert_problem(server.client.get("/v1/liquidity/plans/nope", headers=cashier), 404,
                   "plan_unknown")
    sweeps = server.client.post("/v1/liquidity/sweeps/run", headers=cashier)
    assert sweeps.status_code == 200, sweeps.text
    assert {r["rule"] for r in sweeps.json()} == {"usd-rtp-collar", "eur-sepa-collar"}
    credit = server.client.post("/v1/liquidity/credit/run", headers=cashier).json()
    assert credit[0]["facility"] == "rcf-usd"
    lines = server.client.get("/v1/liquidity/credit", headers=cashier).json()
    assert lines[0]["limit"] == "2000000.00"
    assert lines[0]["annual_rate_percent"] == "6.5"


def test_a_self_approval_is_refused(server: Server) -> None:
    server.fund("rtp", "USD", "9000000.00")
    admin = server.admin
    plan = server.client.post("/v1/liquidity/plans", headers=admin).json()
    assert_problem(server.client.post(f"/v1/liquidity/plans/{plan['id']}/approve",
                                      headers=admin), 403, "plan_self_approval")


def test_a_stress_test_and_the_trail(server: Server) -> None:
    server.fund("rtp", "USD", "5000000.00")
    cashier = server.as_role(Role.CASHIER)
    ran = server.client.post("/v1/stress", headers=cashier, json={
        "name": "run", "hours": 24, "withdrawal_share": "0.3", "withdrawal_hours": 24})
    assert ran.status_code == 200, ran.text
    assert len(ran.json()["hours"]) == 24
    assert_problem(server.client.post("/v1/stress", headers=cashier, json={
        "name": "bad", "hours": 24, "withdrawal_share": "2", "withdrawal_hours": 24}),
        400, "invalid_scenario")
    trail = server.client.get("/v1/treasury/actions", headers=cashier).json()
    assert trail[0]["action"] == "stress.run"
    assert trail[0]["actor"]["roles"] == ["cashier"]
