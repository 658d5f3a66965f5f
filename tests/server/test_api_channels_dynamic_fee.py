"""`/v1/channels` with a dynamic fee: a channel shows its table and, where this worker measures
it, its congestion now; a routing decision's candidates show the congestion fee inside their
fee and how it was made."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from fundpool.auth.roles import Role
from fundpool.compose import build_app
from fundpool.ledger.service import Ledger
from fundpool.payments.dispatch import Dispatcher
from fundpool.payments.model import PaymentKind, PaymentRequest
from fundpool.pool.setup import init_pool
from fundpool.routing.congestion import CongestionMeter
from fundpool.routing.policy import RoutingPolicy
from fundpool.routing.router import Router
from fundpool.runtime import SystemClock, system_ids
from fundpool.server.settings import Settings
from fundpool.sim.rails import simulated_rails
from tests.server.api_helpers import EXAMPLE, Server

RTP_FEES = 'fees = { USD = { fixed = "0.45" } }\n'
# On rtp: from 0.50, 1.5 times from 09 to 17 UTC, twice for a payment risk control held.
DYNAMIC_FEE = ('dynamic_fee = { base = "0.50", ceiling = "20.00", target_per_interval = 200, '
               'interval_s = 10, max_change = "0.125", '
               'windows = [{ from = 9, to = 17, multiplier = "1.5" }], risk = { hold = "2" } }\n')


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    text = EXAMPLE.read_text(encoding="utf-8")
    assert text.count(RTP_FEES) == 1
    config = tmp_path / "pool.toml"
    config.write_text(text.replace(RTP_FEES, RTP_FEES + DYNAMIC_FEE), encoding="utf-8")
    app = build_app(Settings(data_dir=tmp_path / "data", config=config, access_log=False,
                             engine=False))
    init_pool(Ledger(app.state.api.store, SystemClock(), system_ids()), app.state.api.config)
    with TestClient(app) as client:
        yield Server(app, client)


def test_a_channel_shows_its_dynamic_fee_and_no_state_where_none_is_measured(
    server: Server
) -> None:
    # The worker's meter (compose.build_app makes one when a channel prices congestion); a
    # worker without one shows the table and no state.
    assert server.app.state.congestion is not None
    server.app.state.congestion = None
    rtp = server.get("/v1/channels/rtp", headers=server.as_role(Role.VIEWER))
    assert rtp["dynamic_fee"] == {
        "asset": "USD", "base": "0.50", "base_minor": "50", "ceiling": "20.00",
        "ceiling_minor": "2000", "target_per_interval": 200, "interval_s": 10,
        "max_change": "0.125",
        "windows": [{"from_hour_utc": 9, "to_hour_utc": 17, "multiplier": "1.5"}],
        "risk": {"hold": "2"}, "state": None,
    }
    listed = {c["id"]: c for c in server.get("/v1/channels")}
    assert listed["rtp"]["dynamic_fee"] == rtp["dynamic_fee"]
    assert listed["bank-a"]["dynamic_fee"] is None


def test_a_measured_channel_shows_its_congestion_now(server: Server) -> None:
    meter = CongestionMeter.of(server.api.config)
    assert meter is not None
    server.app.state.congestion = meter
    now_us = server.api.clock.now_us()
    start_us = now_us - now_us % 10_000_000
    meter.taken("rtp", 400, start_us - 10_000_000)  # twice the target, the interval before
    meter.taken("rtp", 7, now_us)
    state = server.get("/v1/channels/rtp")["dynamic_fee"]["state"]
    hour = (now_us // 3_600_000_000) % 24
    window = {"from_hour_utc": 9, "to_hour_utc": 17, "multiplier": "1.5"} \
        if 9 <= hour < 17 else None
    assert (state["base_fee"], state["base_fee_minor"]) == ("0.56", "56")  # 50 + 6.25
    assert state["used_in_interval"] == 7
    assert state["window"] == window
    assert state["fee_minor"] == ("84" if window else "56")
    assert state["explanation"].startswith("congestion base fee 0.56")
    assert state["interval_started_at"].endswith("0.000000Z")


def test_decisions_show_the_congestion_fee_of_each_candidate(server: Server) -> None:
    server.fund("rtp", "USD", "50000.00")
    server.fund("bank-a", "USD", "50000.00")
    api = server.api
    config, pool = api.config, api.pool(None)
    rails = simulated_rails(config, pool, seed=7, instance="test")
    router = Router([r for cid, r in rails.items() if cid != "book"], seed=7,
                    policy=RoutingPolicy(hedge_share=0.0), congestion=CongestionMeter.of(config))
    dispatcher = Dispatcher(api.payments(), rails, router, api.clock, system_ids(),
                            records=api.dispatch_records)
    (intake,) = dispatcher.intake([(PaymentRequest(
        PaymentKind.PAYOUT, "USD", 12_050, None, counterparty="Alice", reference="inv-1"),
        None)])
    payment_id = intake.outcome.id  # type: ignore[union-attr]
    (decision,) = server.get("/v1/channels/decisions", payment_id=payment_id)["data"]
    candidates: dict[str, Any] = {c["channel"]: c for c in decision["candidates"]}
    rtp, bank = candidates["rtp"], candidates["bank-a"]
    assert (rtp["dynamic_fee"], rtp["dynamic_fee_minor"]) in {("0.50", "50"), ("0.75", "75")}
    assert rtp["fee_minor"] == str(45 + int(rtp["dynamic_fee_minor"]))
    assert rtp["fee_explanation"].startswith("congestion base fee 0.50")
    assert (bank["dynamic_fee"], bank["dynamic_fee_minor"], bank["fee_explanation"]) == (
        None, None, None)
    if decision["channel"] == "rtp":
        assert "includes congestion base fee 0.50" in decision["summary"]
