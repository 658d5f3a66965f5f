"""The client's treasury desk calls (client/_api.py): what each sends, and a round trip through
the app `fundpool serve` runs, in-process over ASGI as the console calls it: a quote accepted,
previews, a netting cycle, a plan its proposer may not approve, credit lines and a stress
test, with amounts as decimal text and refusals as their codes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from fundpool.auth.roles import Role
from fundpool.client import AsyncClient, Client
from fundpool.client.errors import ApiError
from tests.server.api_helpers import Server, running_server


def test_the_desks_calls_send_what_the_routes_take() -> None:
    sent: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        listed = request.method == "GET" and request.url.path in (
            "/v1/fx/quotes", "/v1/splits/rules", "/v1/netting/participants",
            "/v1/netting/obligations", "/v1/netting/cycles", "/v1/liquidity/plans",
            "/v1/liquidity/credit", "/v1/treasury/actions")
        listed = listed or request.url.path.endswith(("/sweeps/run", "/credit/run")) \
            or (request.method == "POST" and request.url.path == "/v1/netting/obligations")
        return httpx.Response(200, json=[] if listed else {"ok": True})

    with Client("http://fundpool.test", "fpk_test", retries=0,
                transport=httpx.MockTransport(answer)) as api:
        api.fx_rates(pool="main")
        api.create_fx_quote("EUR", "USD", sell_amount="100.00")
        api.create_fx_quote("EUR", "USD", buy_amount="50", buy_channel="rtp")
        api.accept_fx_quote("q-1")
        api.fx_quote("q-1")
        api.fx_quotes(limit=5)
        api.fx_pnl()
        api.split_preview("1000.00", "USD", rule_id="marketplace")
        api.waterfall_preview("USD", "10.00", [{"name": "senior"}],
                              [{"id": "a", "creditor": "b", "tier": "senior",
                                "amount": "12.00"}])
        api.record_obligations([{"payer": "m42", "payee": "m77", "asset": "USD",
                                 "amount": "1.00"}])
        api.run_netting_cycle("USD")
        api.approve_plan("p-1")
        api.reject_plan("p-1", "not today")
        api.run_credit()
        api.stress({"name": "run", "hours": 2, "withdrawal_share": "0.3",
                    "withdrawal_hours": 1})
    calls = [(r.method, r.url.path, dict(r.url.params.multi_items())) for r in sent]
    assert calls[0] == ("GET", "/v1/fx/rates", {"pool": "main"})
    assert json.loads(sent[1].content) == {"sell": "EUR", "buy": "USD", "sell_amount": "100.00"}
    assert sent[1].headers["idempotency-key"]
    assert json.loads(sent[2].content) == {"sell": "EUR", "buy": "USD", "buy_amount": "50",
                                           "buy_channel": "rtp"}
    assert calls[3][:2] == ("POST", "/v1/fx/quotes/q-1/accept")
    assert calls[4][:2] == ("GET", "/v1/fx/quotes/q-1")
    assert calls[5] == ("GET", "/v1/fx/quotes", {"limit": "5"})
    assert json.loads(sent[7].content) == {"amount": "1000.00", "asset": "USD",
                                           "rule_id": "marketplace"}
    assert json.loads(sent[8].content)["obligations"][0]["amount"] == "12.00"
    assert json.loads(sent[9].content) == [{"payer": "m42", "payee": "m77", "asset": "USD",
                                            "amount": "1.00"}]
    assert json.loads(sent[10].content) == {"asset": "USD"}
    assert calls[11][:2] == ("POST", "/v1/liquidity/plans/p-1/approve")
    assert json.loads(sent[12].content) == {"note": "not today"}
    assert calls[13][:2] == ("POST", "/v1/liquidity/credit/run")
    assert json.loads(sent[14].content)["withdrawal_share"] == "0.3"
    with pytest.raises(TypeError):  # an amount is never a float
        Client("http://fundpool.test").create_fx_quote(
            "EUR", "USD", sell_amount=100.0)  # type: ignore[arg-type]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    with running_server(tmp_path) as running:
        yield running


def _token(headers: dict[str, str]) -> str:
    return headers["Authorization"].removeprefix("Bearer ")


def test_a_round_trip_through_the_app(server: Server) -> None:
    server.fund("sepa", "EUR", "10000.00")
    server.fund("rtp", "USD", "9000000.00")
    transport = httpx.ASGITransport(app=server.app)
    cashier_token = _token(server.as_role(Role.CASHIER))
    admin_token = _token(server.admin)

    async def run() -> None:
        async with AsyncClient("http://fundpool.test", cashier_token, retries=0,
                               transport=transport) as cashier, \
                AsyncClient("http://fundpool.test", admin_token, retries=0,
                            transport=transport) as admin:
            quote = await cashier.create_fx_quote("EUR", "USD", sell_amount="100.00")
            assert (quote["state"], quote["sell_amount"]) == ("open", "100.00")
            done = await cashier.accept_fx_quote(quote["id"])
            assert done["state"] == "executed"
            assert done["entry_id"]
            assert (await cashier.fx_pnl())["pairs"][0]["count"] == 1
            [rule] = await cashier.split_rules()
            # Percentages as decimal text, as every figure of the API.
            assert [p["percent"] for p in rule["parts"]][:2] == ["2.9", "1.0"]
            shares = await cashier.split_preview("100.00", "USD", rule_id="marketplace")
            assert shares["total"] == "100.00"
            with pytest.raises(ApiError) as refused:
                await cashier.waterfall_preview(
                    "USD", "10.00", [{"name": "a", "after": "b"}, {"name": "b", "after": "a"}],
                    [{"id": "x", "creditor": "c", "tier": "a", "amount": "1.00"}])
            assert refused.value.code == "cyclic_tiers"
            await cashier.record_obligations([
                {"payer": "m42", "payee": "m77", "asset": "USD", "amount": "10.00"},
                {"payer": "m77", "payee": "m42", "asset": "USD", "amount": "10.00"}])
            cycle = await cashier.run_netting_cycle("USD")
            assert (cycle["settled"], cycle["efficiency"]) == (2, "100.00 %")
            positions = (await cashier.liquidity())["positions"]
            assert any(p["status"] == "above_max" for p in positions)
            plan = await admin.propose_plan()
            with pytest.raises(ApiError) as self_approval:
                await admin.approve_plan(plan["id"])
            assert self_approval.value.code == "plan_self_approval"
            assert (await cashier.liquidity_plan(plan["id"]))["state"] == "proposed"
            [credit] = await cashier.run_credit()
            assert credit["asset"] == "USD"
            assert isinstance(credit["drawn"], str)
            assert isinstance(credit["owed"], str)
            report = await cashier.stress({"name": "run", "hours": 3,
                                           "withdrawal_share": "0.3",
                                           "withdrawal_hours": 3})
            assert len(report["hours"]) == 3
            assert (await cashier.treasury_actions(limit=1))[0]["action"] == "stress.run"

    asyncio.run(run())
