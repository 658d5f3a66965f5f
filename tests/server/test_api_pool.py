"""`/v1/pools/{pool_id}/view` now and at a past point (`at=` an instant, `seq=` a journal
seq), through the app `fundpool serve` runs: the view at the head is the live view, and the
view at an earlier seq or instant is the live view as it was recorded then, whatever moved
since."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fundpool.auth.roles import Role
from tests.server.api_helpers import Server, assert_problem, running_server
from tests.waiting import wait_for_clock_past

VIEW = "/v1/pools/main/view"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    with running_server(tmp_path / "data") as running:
        yield running


def move(server: Server, source: str, destination: str, asset: str, amount: str) -> None:
    # The pool's accounts move through its services; raw, only as an admin's adjustment.
    response = server.client.post("/v1/ledger/transactions", headers=server.admin, json={
        "postings": [{"source": source, "destination": destination, "asset": asset,
                      "amount": amount}], "reason": "test set-up: the pool in a known state"})
    assert response.status_code == 201, response.text


def head_entry(server: Server) -> dict[str, Any]:
    entry: dict[str, Any] = server.get("/v1/ledger/transactions", limit=1)["data"][0]
    return entry


def figures(view: dict[str, Any], asset: str, channel: str) -> dict[str, str]:
    found = next(a for a in view["assets"] if a["asset"] == asset)
    return {k: v for k, v in found["channels"][channel].items() if not k.endswith("_minor")}


def test_the_view_at_the_heads_seq_is_the_live_view(server: Server) -> None:
    server.fund("bank-a", "USD", "1000.00")
    server.fund("sepa", "EUR", "250.00")
    live = server.get(VIEW)
    assert live["as_of_seq"] == head_entry(server)["seq"]
    assert server.get(VIEW, seq=live["as_of_seq"]) == live
    assert server.get(VIEW, at="2999-01-01T00:00:00Z") == live  # the future is now


def test_the_view_at_an_earlier_seq_or_instant_is_the_view_recorded_then(
    server: Server,
) -> None:
    server.fund("bank-a", "USD", "1000.00")
    move(server, "pool:main:usd:bank-a:available", "pool:main:usd:bank-a:locked", "USD",
         "120.00")
    then = server.get(VIEW)
    then_at = head_entry(server)["at"]
    wait_for_clock_past(then_at)  # later entries carry a later instant
    move(server, "pool:main:usd:bank-a:locked", "pool:main:usd:bank-a:in_transit", "USD",
         "100.00")
    move(server, "pool:main:usd:bank-a:in_transit", "world:bank-a", "USD", "60.00")
    server.fund("tron", "USDT", "5.000001")
    now = server.get(VIEW)
    assert now["as_of_seq"] > then["as_of_seq"]
    assert now["assets"] != then["assets"]

    assert server.get(VIEW, seq=then["as_of_seq"]) == then
    assert server.get(VIEW, at=then_at) == then
    # The same instant in another zone is the same instant.
    shifted = then_at.replace("Z", "+00:00")
    assert server.get(VIEW, at=shifted) == then
    assert figures(then, "USD", "bank-a") == {
        "available": "880.00", "locked": "120.00", "in_transit": "0.00",
        "pending_settlement": "0.00", "fees": "0.00", "total": "1000.00"}
    # Before the first entry the pool held nothing.
    empty = server.get(VIEW, seq=0)
    assert empty["as_of_seq"] == 0
    assert set(empty["reporting_total"].values()) <= {"0", "0.00"}
    assert server.get(VIEW, at="2000-01-01T00:00:00Z") == empty


def test_bad_points_are_4xx_problems(server: Server) -> None:
    server.fund("bank-a", "USD", "1.00")
    head = server.get(VIEW)["as_of_seq"]
    get = server.client.get
    body = assert_problem(get(VIEW, headers=server.admin,
                              params={"seq": 1, "at": "2026-01-01T00:00:00Z"}),
                          400, "conflicting_parameters")
    assert body["facts"]["parameters"] == ["at", "seq"]
    body = assert_problem(get(VIEW, headers=server.admin, params={"seq": head + 1}),
                          400, "seq_beyond_head")
    assert body["facts"] == {"seq": head + 1, "head_seq": head}
    assert_problem(get(VIEW, headers=server.admin, params={"seq": -1}), 422, "invalid_request")
    assert_problem(get(VIEW, headers=server.admin, params={"seq": 2**63}), 422,
                   "invalid_request")
    assert_problem(get(VIEW, headers=server.admin, params={"seq": "one"}), 422,
                   "invalid_request")
    assert_problem(get(VIEW, headers=server.admin, params={"at": "2026-01-01T00:00:00"}),
                   400, "invalid_time")
    assert_problem(get(VIEW, headers=server.admin, params={"at": "yesterday"}),
                   400, "invalid_time")
    assert_problem(get("/v1/pools/nope/view", headers=server.admin, params={"seq": 0}),
                   404, "unknown_pool")


def test_a_past_view_needs_pool_read(server: Server) -> None:
    _, scoped = server.api.auth.create_key("ledger-only", [Role.VIEWER], scopes=["ledger:read"],
                                           now_us=server.api.clock.now_us())
    body = assert_problem(server.client.get(VIEW, params={"seq": 0},
                                            headers={"Authorization": f"Bearer {scoped}"}),
                          403, "forbidden")
    assert body["facts"]["permission"] == "pool:read"
    assert server.get(VIEW, server.as_role(Role.AUDITOR), seq=0)["as_of_seq"] == 0
