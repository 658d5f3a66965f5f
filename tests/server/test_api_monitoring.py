"""`/v1/monitoring` end to end: a server on a SQLite store in tmp_path, simulated traffic written
through the payment machinery, and the figures, series, KPIs, alerts, SLOs and replay read back
through the API and checked against the journal and the outbox."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from fundpool import compose
from fundpool.compose import build_app
from fundpool.core.clock import ManualClock, Uuid7Ids
from fundpool.events.model import PaymentTransitioned
from fundpool.ledger.docs import iso
from fundpool.ledger.service import Ledger
from fundpool.monitoring.alerting.engine import AlertEngine
from fundpool.monitoring.alerting.reload import AlertRules
from fundpool.monitoring.kpis import KPIS
from fundpool.runtime import SystemClock
from fundpool.server.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
MINUTE_US = 60_000_000
STEPS = 30
# Rules that hold whatever the traffic did: one alert per USD channel and one per asset.
ALWAYS = """
version: 1
rules:
  - id: usd-depth-seen
    figure: depth
    subject: "asset:USD"
    op: ">="
    value: 0
    severity: warning
  - id: ratio-seen
    kpi: available_ratio
    op: ">="
    value: 0
    severity: info
"""


@dataclass
class Served:
    app: FastAPI
    client: TestClient
    admin: dict[str, str]
    viewer: dict[str, str]
    ledger_only: dict[str, str]
    started_us: int

    @property
    def api(self) -> Any:
        return self.app.state.api

    @property
    def engine(self) -> AlertEngine:
        engine = self.app.state.alerts
        assert engine is not None
        return engine

    def get(self, path: str, headers: dict[str, str] | None = None, **params: Any) -> Any:
        response = self.client.get(f"/v1{path}", headers=headers or self.admin, params=params)
        assert response.status_code == 200, response.text
        return response.json()


def settings(data_dir: Path, *, alerts: bool = True) -> Settings:
    # One evaluation of the rules at start-up, then none: the tests evaluate when they mean to.
    return Settings(data_dir=data_dir, config=ROOT / "examples/pool.toml", access_log=False,
                    alerts=ROOT / "examples/alerts.yaml" if alerts else None,
                    evaluate_every_s=3600)


def bearer(app: FastAPI, name: str, roles: list[str], scopes: list[str] | None = None
           ) -> dict[str, str]:
    api = app.state.api
    _, token = api.auth.create_key(name, roles, scopes=scopes, now_us=api.clock.now_us())
    return {"Authorization": f"Bearer {token}"}


def caught_up(app: FastAPI) -> None:
    monitor = app.state.api.monitor
    deadline = time.monotonic() + 20
    while any(monitor.lag(p.id) for p in monitor.config.pools):
        assert time.monotonic() < deadline, "the projections did not catch up"
        time.sleep(0.02)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    app = build_app(settings(tmp_path_factory.mktemp("monitoring") / "d"))
    api = app.state.api
    # The traffic's clock starts an hour ago and moves a minute a step, so that the series
    # have buckets and the KPIs' windows hold the traffic.
    started_us = SystemClock().now_us() - 60 * MINUTE_US
    clock = ManualClock(started_us)
    ids = Uuid7Ids.seeded(5)
    simulation = compose.simulation(Ledger(api.store, clock, ids), api.config,
                                    api.config.pools[0], seed=5, clock=clock, ids=ids)
    with TestClient(app) as client:
        simulation.open_pool()
        for _ in range(STEPS):
            simulation.step(10)
            clock.advance(seconds=60)
        simulation.dispatcher.flush_records()
        caught_up(app)
        yield Served(app, client, bearer(app, "ops admin", ["admin"]),
                     bearer(app, "watcher", ["viewer"]),
                     bearer(app, "ledger-only", ["viewer"], ["ledger:read"]), started_us)


def payment_events(served: Served) -> list[tuple[int, PaymentTransitioned]]:
    return [(event.at_us, event.data) for _, event in served.api.monitor.outbox.after(0)
            if event.pool == "main" and isinstance(event.data, PaymentTransitioned)]


# --- figures ---------------------------------------------------------------------------------


def test_figures_agree_with_the_pool_view_and_the_payments(served: Served) -> None:
    caught_up(served.app)
    figures = served.get("/monitoring/pools/main/figures")
    view = served.get("/pools/main/view")
    assert figures["view"]["assets"] == view["assets"]
    assert figures["view"]["reporting_total"] == view["reporting_total"]
    assert figures["view"]["missing_rates"] == view["missing_rates"]
    # Every payment is counted once, in the state the payments table has it in.
    counts = served.api.payment_records.state_counts("main")
    assert {s: n for s, n in figures["payments_by_state"].items() if n} == {
        str(s): n for s, n in counts.items()}
    # The cursor is the pool's last event, and nothing is left to apply.
    assert figures["lag"] == 0
    assert figures["cursor"]["seq"] == served.api.monitor.outbox.head("main")
    assert figures["cursor"]["pos"] == served.api.monitor.outbox.last_pos()
    # Amounts are exact text, never JSON numbers.
    for row in figures["depth"]:
        assert isinstance(row["available"], str)
    assert all(isinstance(v, str) for v in figures["in_flight"]["amount"].values())
    assert all(isinstance(v, str) for row in figures["heatmap"]["rows"] for v in row)
    assert {t["asset"] for t in figures["turnover"]} == {a["asset"] for a in view["assets"]}


def test_figures_of_an_unknown_pool_are_404(served: Served) -> None:
    response = served.client.get("/v1/monitoring/pools/nope/figures", headers=served.admin)
    assert response.status_code == 404
    assert response.json()["code"] == "unknown_pool"


# --- series ----------------------------------------------------------------------------------


def test_a_counter_series_sums_to_the_events_it_counts(served: Served) -> None:
    events = payment_events(served)
    settled = Counter((data.kind, data.to_state) for _, data in events)
    (kind, state), count = settled.most_common(1)[0]
    metrics = {m["metric"]: m for m in served.get("/monitoring/pools/main/series")}
    metric = f"payments|{kind}|{state}"
    assert metrics[metric] == {"metric": metric, "kind": "counter", "unit": "count"}
    series = served.get(f"/monitoring/pools/main/series/{metric.replace('|', '%7C')}",
                        resolution="minute", **{"from": iso(served.started_us - MINUTE_US),
                                                "to": iso(SystemClock().now_us())})
    assert series["kind"] == "counter"
    points = series["points"]
    assert sum(int(p["value"]) for p in points) == count
    # Minute buckets, oldest first, none missing.
    starts = [p["at_us"] for p in points]
    assert starts == sorted(starts)
    assert {b - a for a, b in pairwise(starts)} == {MINUTE_US}
    assert starts[0] % MINUTE_US == 0
    # Each bucket holds the transitions made in its minute.
    by_minute = Counter(at - at % MINUTE_US for at, data in events
                        if (data.kind, data.to_state) == (kind, state))
    assert {p["at_us"]: int(p["value"]) for p in points if p["value"] != "0"} == by_minute


def test_a_gauge_series_ends_at_the_balance_now(served: Served) -> None:
    view = served.get("/pools/main/view")
    usd = next(a for a in view["assets"] if a["asset"] == "USD")
    series = served.get("/monitoring/pools/main/series/total%7CUSD", resolution="hour")
    assert series["unit"] == "USD"
    assert series["kind"] == "gauge"
    assert len(series["points"]) == 7 * 24 + 1 or len(series["points"]) == 7 * 24
    last = series["points"][-1]
    assert last["value"] == usd["total"]["total"]
    assert last["value_minor"] == usd["total"]["total_minor"]
    # Before the first entry, the gauge was 0.
    assert series["points"][0]["value_minor"] == "0"


def test_a_second_series_defaults_to_ten_minutes(served: Served) -> None:
    series = served.get("/monitoring/pools/main/series/outflow%7CUSD", resolution="second")
    assert series["resolution"] == "second"
    assert len(series["points"]) in (600, 601)
    assert {b["at_us"] - a["at_us"] for a, b in pairwise(series["points"])} == {1_000_000}


@pytest.mark.parametrize(("path", "params", "status", "code"), [
    ("/monitoring/pools/main/series/nope", {}, 404, "unknown_metric"),
    ("/monitoring/pools/main/series/flow%7CUSD", {}, 404, "unknown_metric"),
    ("/monitoring/pools/main/series/total%7CUSD",
     {"from": "2026-01-02T00:00:00Z", "to": "2026-01-01T00:00:00Z"}, 400,
     "invalid_series_range"),
    ("/monitoring/pools/main/series/total%7CUSD",
     {"resolution": "second", "from": "2026-01-01T00:00:00Z", "to": "2026-01-03T00:00:00Z"},
     400, "invalid_series_range"),
    ("/monitoring/pools/main/series/total%7CUSD", {"from": "yesterday"}, 400, "invalid_time"),
    ("/monitoring/pools/main/series/total%7CUSD", {"resolution": "day"}, 422,
     "invalid_request"),
])
def test_series_refusals(served: Served, path: str, params: dict[str, str], status: int,
                         code: str) -> None:
    response = served.client.get(f"/v1{path}", headers=served.admin, params=params)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == code


# --- KPIs ------------------------------------------------------------------------------------


def test_kpis_are_those_the_rules_switch_on(served: Served) -> None:
    doc = served.get("/monitoring/pools/main/kpis")
    assert doc["enabled_by"] == "rules"
    assert doc["pool"] == "main"
    enabled = served.engine.rules.current
    assert enabled is not None
    assert {v["kpi"] for v in doc["kpis"]} == set(enabled.kpis)
    for value in doc["kpis"]:
        assert value["unit"] == KPIS[value["kpi"]].unit
        assert value["value"] is None or isinstance(value["value"], str)
        assert value["value"] is not None or value["note"]
    pool_ratio = next(v for v in doc["kpis"]
                      if v["kpi"] == "available_ratio" and v["subject"] == "pool")
    figures = served.get("/monitoring/pools/main/figures")
    assert pool_ratio["value"] == figures["available_ratio"]["*"]


def test_the_kpi_catalogue(served: Served) -> None:
    templates = served.get("/monitoring/kpis")
    assert [t["id"] for t in templates] == list(KPIS)
    coverage = templates[0]
    assert coverage["title"]["en"] == "Liquidity coverage"
    assert {p["name"] for p in coverage["params"]} == {"window", "horizon"}
    assert coverage["alert"]["op"] == "<"


# --- alerts ----------------------------------------------------------------------------------


@pytest.fixture
def firing(served: Served) -> Iterator[list[str]]:
    """Rules that fire at once, evaluated: the ids of the alerts they fired."""
    engine = served.engine
    kept = engine.rules
    engine.rules = AlertRules(text=ALWAYS)
    try:
        report = engine.evaluate()
        assert len(report.fired) >= 4
        yield [record.id for record in report.fired]
    finally:
        engine.rules = kept
        engine.evaluate()  # resolves them


def test_alerts_page_through_newest_first(served: Served, firing: list[str]) -> None:
    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        params = {"state": "firing", "limit": 3, **({"cursor": cursor} if cursor else {})}
        page = served.get("/monitoring/alerts", **params)
        seen += page["data"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(a["id"] for a in seen) == sorted(firing)
    assert [(a["fired_at_us"], a["id"]) for a in seen] == sorted(
        ((a["fired_at_us"], a["id"]) for a in seen), reverse=True)
    assert {a["state"] for a in seen} == {"firing"}
    warnings = served.get("/monitoring/alerts", state="active", severity="warning")["data"]
    assert {a["rule"] for a in warnings} == {"usd-depth-seen"}
    # A cursor is only good for the filters it was made under.
    first = served.get("/monitoring/alerts", state="firing", limit=1)
    response = served.client.get("/v1/monitoring/alerts", headers=served.admin,
                                 params={"state": "resolved", "cursor": first["next_cursor"]})
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_cursor"


def test_acknowledge_an_alert(served: Served, firing: list[str]) -> None:
    alert_id = firing[0]
    path = f"/v1/monitoring/alerts/{alert_id}/acknowledge"
    # A viewer reads alerts but may not acknowledge them.
    refused = served.client.post(path, headers=served.viewer, json={})
    assert refused.status_code == 403
    assert refused.json()["code"] == "forbidden"
    assert served.get(f"/monitoring/alerts/{alert_id}", headers=served.viewer)["state"] == \
        "firing"

    key = {**served.admin, "Idempotency-Key": "ack-1", "X-Request-ID": "ack-request-1"}
    first = served.client.post(path, headers=key, json={"note": "bank A is topping up"})
    assert first.status_code == 200, first.text
    record = first.json()
    assert record["state"] == "acknowledged"
    by = record["acknowledged_by"]
    assert (by["kind"], by["name"], by["roles"], by["request_id"]) == (
        "key", "ops admin", ["admin"], "ack-request-1")
    assert by["key_id"] == by["id"]
    assert by["session_id"] is None
    assert record["acknowledged_at"] is not None
    assert "idempotent-replayed" not in first.headers

    again = served.client.post(path, headers=key, json={"note": "bank A is topping up"})
    assert again.status_code == 200
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == record

    other = served.client.post(path, headers=key, json={"note": "something else"})
    assert other.status_code == 409
    assert other.json()["code"] == "idempotency_conflict"

    twice = served.client.post(path, headers=served.admin)
    assert twice.status_code == 409
    assert twice.json()["code"] == "alert_not_firing"

    assert served.get(f"/monitoring/alerts/{alert_id}") == record
    acknowledged = served.get("/monitoring/alerts", state="acknowledged")["data"]
    assert [a["id"] for a in acknowledged] == [alert_id]
    # The acknowledgement is an event in the outbox, with who made it.
    events = [e for _, e in served.api.monitor.outbox.after(0) if e.id == f"{alert_id}:2"]
    assert [e.type for e in events] == ["alert.acknowledged"]
    assert getattr(events[0].data, "actor", None) == "ops admin"


def test_a_risk_officer_acknowledges_in_their_own_name(served: Served,
                                                       firing: list[str]) -> None:
    """Signed in as a user with the risk role: the alert names them, their roles, their
    session and the request id, and so do the list and the single read."""
    api = served.api
    if not any(u.username == "risk.wang" for u in api.auth.users()):
        api.auth.add_user("risk.wang", "risk officer passphrase", ["risk"],
                          now_us=api.clock.now_us())
    login = served.client.post("/v1/sessions", json={"username": "risk.wang",
                                                     "password": "risk officer passphrase"})
    # The module's client is shared: its calls without credentials must stay without.
    served.client.cookies.clear()
    assert login.status_code == 201, login.text
    session = {"Authorization": f"Bearer {login.json()['token']}"}
    me = served.client.get("/v1/me", headers=session).json()
    alert_id = firing[1]
    assert served.get(f"/monitoring/alerts/{alert_id}")["acknowledged_by"] is None
    acked = served.client.post(f"/v1/monitoring/alerts/{alert_id}/acknowledge",
                               headers={**session, "X-Request-ID": "risk-desk-42"})
    assert acked.status_code == 200, acked.text
    by = acked.json()["acknowledged_by"]
    assert by["kind"] == "user"
    assert by["id"] == me["id"]
    assert (by["name"], by["roles"], by["request_id"], by["key_id"]) == (
        "risk.wang", ["risk"], "risk-desk-42", None)
    assert by["session_id"]
    assert served.get(f"/monitoring/alerts/{alert_id}")["acknowledged_by"] == by
    listed = served.get("/monitoring/alerts", state="acknowledged")["data"]
    assert [a["acknowledged_by"] for a in listed if a["id"] == alert_id] == [by]


def test_an_alert_acknowledged_before_actors_were_kept_reads_fine(
    served: Served, firing: list[str],
) -> None:
    """A row with a name and no actor (NULL), as the code before kept it: the API shows the
    name as an actor of kind `unknown`."""
    alert_id = firing[2]
    table = served.engine.table
    with table.db.transaction() as tx:
        tx.execute("UPDATE alerts SET state = 'acknowledged', acknowledged_at_us = ?, "
                   "acknowledged_by = 'old operator', acknowledged_actor = NULL WHERE id = ?",
                   (served.api.clock.now_us(), alert_id))
    record = served.get(f"/monitoring/alerts/{alert_id}")
    assert record["state"] == "acknowledged"
    assert record["acknowledged_by"] == {
        "kind": "unknown", "id": "old operator", "name": "old operator", "roles": [],
        "session_id": None, "key_id": None, "request_id": None}


def test_acknowledge_refusals(served: Served) -> None:
    unknown = served.client.post("/v1/monitoring/alerts/nope/acknowledge", headers=served.admin)
    assert unknown.status_code == 404
    assert unknown.json()["code"] == "unknown_alert"
    extra = served.client.post("/v1/monitoring/alerts/nope/acknowledge", headers=served.admin,
                               json={"note": "x", "by": "someone else"})
    assert extra.status_code == 422
    missing = served.client.get("/v1/monitoring/alerts/nope", headers=served.admin)
    assert missing.status_code == 404


# --- SLOs ------------------------------------------------------------------------------------


def test_slos_with_budget_and_burn_rates(served: Served) -> None:
    report = served.engine.evaluate()
    doc = served.get("/monitoring/slos")
    assert doc["evaluated_at"] == iso(report.at_us)
    assert doc["rules_error"] is None
    assert {s["slo"] for s in doc["slos"]} == {"payout-success", "deposit-success",
                                              "rtp-settles-in-1h"}
    payouts = next(s for s in doc["slos"] if s["slo"] == "payout-success")
    assert payouts["objective"] == "0.995000"
    assert [b["long"] for b in payouts["burn_rates"]] == ["1h", "6h", "3d"]
    if payouts["total"]:
        assert payouts["budget_remaining"] is not None
        assert isinstance(payouts["sli"], str)


# --- replay ----------------------------------------------------------------------------------


def test_replay_agrees_with_the_journal(served: Served) -> None:
    now = served.get("/monitoring/replay", at=iso(SystemClock().now_us()))
    assert now["agrees_with_journal"] is True
    assert now["events_applied"] == served.api.monitor.outbox.head("main")
    assert now["view"]["assets"] == now["journal_view"]["assets"]
    assert now["view"]["assets"] == served.get("/pools/main/view")["assets"]

    halfway = served.started_us + STEPS // 2 * MINUTE_US
    then = served.get("/monitoring/replay", at=iso(halfway), pool="main")
    assert then["agrees_with_journal"] is True
    assert 0 < then["events_applied"] < now["events_applied"]
    assert then["journal_seq"] < now["journal_seq"]

    before = served.get("/monitoring/replay", at=iso(served.started_us - MINUTE_US))
    assert before["events_applied"] == 0
    assert before["agrees_with_journal"] is True


@pytest.mark.parametrize(("params", "status", "code"), [
    ({}, 422, "invalid_request"),
    ({"at": "2026-01-01T00:00:00"}, 400, "invalid_time"),
    ({"at": "2026-01-01T00:00:00Z", "pool": "nope"}, 404, "unknown_pool"),
])
def test_replay_refusals(served: Served, params: dict[str, str], status: int,
                         code: str) -> None:
    response = served.client.get("/v1/monitoring/replay", headers=served.admin, params=params)
    assert response.status_code == status
    assert response.json()["code"] == code


# --- who may read ----------------------------------------------------------------------------


def test_every_monitoring_route_declares_its_permission(served: Served) -> None:
    paths = served.client.get("/openapi.json").json()["paths"]
    declared = {(method, path): operation["x-permission"]
                for path, item in paths.items() if path.startswith("/v1/monitoring")
                for method, operation in item.items()}
    assert declared[("post", "/v1/monitoring/alerts/{alert_id}/acknowledge")] == \
        "alerts:acknowledge"
    assert {p for (m, _), p in declared.items() if m == "get"} == {"monitoring:read"}
    assert len(declared) == 10


@pytest.mark.parametrize("path", [
    "/monitoring/pools/main/figures", "/monitoring/pools/main/kpis", "/monitoring/alerts",
    "/monitoring/slos", "/monitoring/kpis",
])
def test_monitoring_needs_its_permission(served: Served, path: str) -> None:
    assert served.client.get(f"/v1{path}").status_code == 401
    response = served.client.get(f"/v1{path}", headers=served.ledger_only)
    assert response.status_code == 403
    assert response.json()["facts"]["permission"] == "monitoring:read"


# --- a server without alert rules ------------------------------------------------------------


def test_without_rules(tmp_path: Path) -> None:
    app = build_app(settings(tmp_path / "d", alerts=False))
    assert app.state.alerts is None
    admin = bearer(app, "t", ["admin"])
    with TestClient(app) as client:
        slos = client.get("/v1/monitoring/slos", headers=admin).json()
        assert slos == {"evaluated_at": None, "rules_error": None, "slos": []}
        kpis = client.get("/v1/monitoring/pools/main/kpis", headers=admin).json()
        assert kpis["enabled_by"] == "defaults"
        assert {v["kpi"] for v in kpis["kpis"]} == set(KPIS)
        assert client.get("/v1/monitoring/alerts", headers=admin).json() == {
            "data": [], "next_cursor": None}
        unknown = client.post("/v1/monitoring/alerts/nope/acknowledge", headers=admin)
        assert unknown.status_code == 404
        figures = client.get("/v1/monitoring/pools/main/figures", headers=admin).json()
        assert figures["cursor"]["seq"] == 0
        assert figures["payments_by_state"] == {}
