"""`/v1/channels` through the app `fundpool serve` runs: the configured rails, the routing
decisions recorded for payouts with every candidate's scores, and the batches sent."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fundpool.auth.roles import Role
from fundpool.payments.dispatch import Dispatcher
from fundpool.runtime import system_ids
from fundpool.sim.rails import payout_router, simulated_rails
from tests.server.api_helpers import Server, assert_problem, running_server

CSV = {"Content-Type": "text/csv"}
# Lines 2 to 4 leave the rail to the router; line 5 names its rail; line 6 fits no rail (no
# USDT is on the rails).
PAYOUTS = b"""payee,account,amount,asset,reference,channel
Alice,US-ACCT-1,120.50,USD,inv-1,
Bob,US-ACCT-2,99.00,USD,inv-2,
Carol,DE89370400440532013000,250.00,EUR,inv-3,
Dora,US-ACCT-3,30.00,USD,inv-4,rtp
Erin,TXYZ,10.000000,USDT,inv-5,
"""


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    with running_server(tmp_path / "data") as running:
        for channel, asset in (("sepa", "EUR"), ("rtp", "USD"), ("bank-a", "USD")):
            running.fund(channel, asset, "50000.00")
        # USDT on two rails, neither holding Erin's 10.00 alone: the pool can pay it (so it
        # is created), but no rail can (so routing finds no eligible rail).
        for channel in ("tron", "eth-l1"):
            running.fund(channel, "USDT", "6.000000")
        yield running


def routed(server: Server) -> dict[int, dict[str, Any]]:
    """The example file through intake (routing included), its rows by line."""
    response = server.client.post("/v1/payments/batches", headers={**server.admin, **CSV},
                                  content=PAYOUTS)
    assert response.status_code == 201, response.text
    return {row["line"]: row for row in response.json()["rows"]}


def every_page(server: Server, path: str, **params: Any) -> tuple[list[dict[str, Any]], int]:
    items: list[dict[str, Any]] = []
    pages = 0
    cursor = None
    while True:
        page = server.get(path, **params, **({} if cursor is None else {"cursor": cursor}))
        items += page["data"]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            return items, pages


# --- the configured channels -----------------------------------------------------------------


def test_channels_list_with_fees_limits_and_windows(server: Server) -> None:
    channels = server.get("/v1/channels", headers=server.as_role(Role.VIEWER))
    assert [c["id"] for c in channels][:3] == ["bank-a", "rtp", "card-acq"]
    bank = channels[0]
    assert bank["kind"] == "bank_wire"
    assert bank["pools"] == ["main"]
    assert bank["fees"] == [{"asset": "USD", "fixed": "0.25", "fixed_minor": "25", "bps": 5,
                             "inbound_bps": 0}]
    assert bank["limits"] == [{"asset": "USD", "min": "1.00", "min_minor": "100",
                               "max": "5000000.00", "max_minor": "500000000"}]
    assert bank["cutoff"] == [{"days": ["mon", "tue", "wed", "thu", "fri"], "open": "00:00",
                               "close": "21:00"}]
    assert bank["batch_size"] == 500
    eth = server.get("/v1/channels/eth-l1")
    assert eth["fees"][1] == {"asset": "ETH", "fixed": "0.000840000000000000",
                              "fixed_minor": "840000000000000", "bps": 0, "inbound_bps": 0}
    assert eth["limits"][0]["max"] is None
    assert eth["cutoff"] == []
    book = server.get("/v1/channels/book")
    assert book["carries_payouts"] is False
    assert [c["id"] for c in server.get("/v1/channels", pool="main")] == [
        c["id"] for c in channels]


def test_an_unknown_channel_or_pool_is_a_404_problem(server: Server) -> None:
    get = server.client.get
    assert_problem(get("/v1/channels/nope", headers=server.admin), 404, "unknown_channel")
    assert_problem(get("/v1/channels", headers=server.admin, params={"pool": "other"}),
                   404, "unknown_pool")
    assert_problem(get("/v1/channels/NOPE", headers=server.admin), 422, "invalid_request")
    assert_problem(get("/v1/channels"), 401, "unauthenticated")


# --- routing decisions -----------------------------------------------------------------------


def test_decisions_show_every_candidate_with_its_scores(server: Server) -> None:
    rows = routed(server)
    first = rows[2]["payment_id"]
    (decision,) = server.get("/v1/channels/decisions", payment_id=first)["data"]
    assert decision["attempt"] == 1
    assert decision["strategy"] == "learned"
    assert (decision["asset"], decision["amount"], decision["amount_minor"]) == (
        "USD", "120.50", "12050")
    assert decision["channel"] in ("bank-a", "rtp")
    assert decision["reason"] is None
    assert decision["summary"].startswith(decision["channel"])
    candidates = {c["channel"]: c for c in decision["candidates"]}
    assert set(candidates) == set(server.get("/v1/pools")[0]["channels"]) - {"book"}
    chosen = candidates[decision["channel"]]
    assert chosen["eligible"] is True
    assert (decision["fee"], decision["fee_minor"]) == (chosen["fee"], chosen["fee_minor"])
    assert isinstance(chosen["expected_cost_minor"], float)
    assert 0 < chosen["quoted_success_probability"] <= 1
    assert candidates["sepa"] == {**candidates["sepa"], "eligible": False,
                                  "reason": "asset_not_carried", "fee": None}
    payment = server.get(f"/v1/payments/{first}")
    assert (payment["channel"], payment["fee"]) == (decision["channel"], decision["fee"])


def test_a_named_rail_and_no_eligible_rail_are_decisions_too(server: Server) -> None:
    rows = routed(server)
    (named,) = server.get("/v1/channels/decisions", payment_id=rows[5]["payment_id"])["data"]
    assert (named["strategy"], named["channel"], named["candidates"]) == ("given", "rtp", [])
    assert (named["fee"], named["fee_minor"]) == ("0.45", "45")
    assert named["hedged"] is None
    (nowhere,) = server.get("/v1/channels/decisions", payment_id=rows[6]["payment_id"])["data"]
    assert nowhere["channel"] is None
    assert nowhere["reason"] == "no_eligible_channel"
    assert nowhere["fee"] is None
    assert rows[6]["state"] == "rejected"
    assert {c["reason"] for c in nowhere["candidates"] if c["channel"] in ("tron", "eth-l1")} \
        == {"insufficient_liquidity"}


def test_decisions_page_newest_first_and_filter_by_channel(server: Server) -> None:
    rows = routed(server)
    ids = [rows[line]["payment_id"] for line in range(2, 7)]
    decisions, pages = every_page(server, "/v1/channels/decisions", limit=2)
    assert pages == 3
    assert [d["payment_id"] for d in decisions] == sorted(ids, reverse=True)
    on_rtp, _ = every_page(server, "/v1/channels/decisions", channel="rtp", limit=1)
    assert on_rtp
    assert all(d["channel"] == "rtp" for d in on_rtp)
    assert rows[5]["payment_id"] in {d["payment_id"] for d in on_rtp}
    page = server.get("/v1/channels/decisions", limit=2)
    assert_problem(server.client.get("/v1/channels/decisions", headers=server.admin,
                                     params={"cursor": page["next_cursor"], "channel": "rtp"}),
                   400, "invalid_cursor")
    assert server.get("/v1/channels/decisions", payment_id="nope")["data"] == []


# --- batches sent ----------------------------------------------------------------------------


def test_batches_sent_show_fees_and_savings(server: Server) -> None:
    routed(server)
    api = server.api
    pool = api.pool(None)
    rails = simulated_rails(api.config, pool, seed=7, instance="test")
    dispatcher = Dispatcher(api.payments(), rails, payout_router(api.config, rails, seed=7),
                            api.clock, system_ids(), records=api.dispatch_records)
    dispatcher.tick()  # picks the approved payouts up and sends the batches that are due
    dispatcher.flush_records()
    batches, _ = every_page(server, "/v1/channels/batches", limit=1)
    sent = [b for b in batches if b["status"] == "sent"]
    assert sent, batches
    for batch in sent:
        assert batch["items"] >= 1
        saved = int(batch["single_fee_minor"]) - int(batch["fee_minor"])
        assert batch["savings_minor"] == str(saved)
        assert batch["rail_ref"]
    assert [b["submitted_at"] for b in batches] == sorted(
        (b["submitted_at"] for b in batches), reverse=True)
    rtp = server.get("/v1/channels/batches", channel="rtp")["data"]
    assert rtp
    assert {b["channel"] for b in rtp} == {"rtp"}
    (one,) = [b for b in rtp if b["items"] == 1][:1]
    assert (one["amount"], one["fee"]) in {("99.00", "0.45"), ("120.50", "0.45"),
                                           ("30.00", "0.45")}


def test_reading_channels_needs_the_permission(server: Server) -> None:
    key = server.as_role(Role.VIEWER)
    scoped = server.api.auth.create_key("ledger-only", [Role.VIEWER],
                                        scopes=["ledger:read"],
                                        now_us=server.api.clock.now_us())[1]
    for path in ("/v1/channels", "/v1/channels/rtp", "/v1/channels/decisions",
                 "/v1/channels/batches"):
        assert server.client.get(path, headers=key).status_code == 200
        assert_problem(server.client.get(path, headers={"Authorization": f"Bearer {scoped}"}),
                       403, "forbidden")
