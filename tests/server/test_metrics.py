"""The server's /metrics, /healthz and /readyz, and the Grafana dashboard against a real scrape.

A short simulated run on examples/pool.toml (ManualClock) feeds a Monitor; each test scrapes
/metrics and checks the samples against what the ledger and the projection hold, exactly.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from structlog.testing import capture_logs

from fundpool import compose
from fundpool.core.clock import ManualClock, Uuid7Ids
from fundpool.ledger.service import Ledger
from fundpool.monitoring.projection import LATENCY_BOUNDS_US
from fundpool.monitoring.service import Monitor
from fundpool.payments.model import PaymentState
from fundpool.pool.config import FundpoolConfig, PoolConfig, load_config
from fundpool.pool.view import PoolView, pool_view
from fundpool.server.app import create_app
from fundpool.server.metrics import Scrape
from fundpool.sim.traffic import Simulation
from fundpool.stores import payment_store
from fundpool.stores.projection_sql import ProjectionStore
from fundpool.stores.sqlite import SqliteStore
from tests.waiting import wait_until

with warnings.catch_warnings():
    # Starlette's test client warns about its httpx dependency on import; the client works.
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "examples" / "pool.toml"
DASHBOARD = ROOT / "deploy" / "grafana" / "fundpool.json"
METRICS_DOC = ROOT / "docs" / "metrics.md"
RATE_PER_S = 40.0
DURATION_S = 4.0
SPEED = 60.0
SERVER_READY_S = 60  # a `fundpool serve` process starting on a busy machine
CATCH_UP_S = 30


@dataclass
class World:
    store: SqliteStore
    clock: ManualClock
    config: FundpoolConfig
    pool: PoolConfig
    sim: Simulation

    def run(self, duration_s: float = DURATION_S) -> None:
        self.sim.run(rate_per_s=RATE_PER_S, duration_s=duration_s, speed=SPEED,
                     advance=lambda s: self.clock.advance(seconds=s))

    def view(self) -> PoolView:
        return pool_view(self.store, self.config, self.pool, self.config.rates_for(self.pool))

    def monitor(self, projections: ProjectionStore | None = None) -> Monitor:
        return compose.monitor(self.store, self.config, self.clock, projections=projections)


def served(monitor: Monitor, **options: Any) -> FastAPI:
    """The server of `monitor` without the API; a driver's error is its store_error."""
    return create_app(monitor, driver_errors=compose.store_errors(), **options)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    store = SqliteStore(tmp_path_factory.mktemp("server") / "ledger.sqlite3")
    store.initialise()
    clock = ManualClock()
    config = load_config(CONFIG)
    pool = config.pools[0]
    sim = compose.simulation(Ledger(store, clock, Uuid7Ids.seeded(11)), config, pool, seed=11,
                             clock=clock)
    sim.open_pool()
    world = World(store, clock, config, pool, sim)
    world.run()
    yield world
    store.close()


@pytest.fixture
def caught_up(world: World) -> Monitor:
    monitor = world.monitor()
    monitor.step()
    return monitor


Samples = dict[str, list[Sample]]


def parse(text: str) -> tuple[dict[str, Metric], Samples]:
    families = {f.name: f for f in text_string_to_metric_families(text)}
    samples: Samples = {}
    for family in families.values():
        for s in family.samples:
            samples.setdefault(s.name, []).append(s)
    return families, samples


def scrape(monitor: Monitor) -> tuple[dict[str, Metric], Samples]:
    with TestClient(served(monitor, follow=False)) as client:
        response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return parse(response.text)


def value(samples: Samples, name: str, **labels: str) -> float:
    found = [s.value for s in samples.get(name, []) if s.labels == labels]
    assert len(found) == 1, (name, labels, found)
    return found[0]


def by_label(samples: Samples, name: str, label: str, **where: str) -> dict[str, float]:
    return {
        s.labels[label]: s.value for s in samples.get(name, [])
        if all(s.labels.get(k) == v for k, v in where.items())
    }


# --- balances -------------------------------------------------------------------------------


def test_balances_equal_the_ledgers_pool_view(world: World, caught_up: Monitor) -> None:
    _, samples = scrape(caught_up)
    view = world.view()
    pool = world.pool.id
    currency = view.reporting_currency.code
    checked = 0
    for asset in view.assets:
        code = asset.asset.code
        assert value(samples, "fundpool_asset_scale", asset=code) == asset.asset.scale
        for channel, figures in asset.by_channel.items():
            for state, amount in figures.as_dict().items():
                assert value(samples, "fundpool_balance_minor", pool=pool, asset=code,
                             channel=channel, state=state) == float(amount)
                checked += 1
            assert value(samples, "fundpool_channel_depth_minor", pool=pool, asset=code,
                         channel=channel) == float(figures.available)
        assert asset.reporting is not None
        for state, amount in asset.reporting.as_dict().items():
            assert value(samples, "fundpool_balance_reporting_minor", pool=pool, asset=code,
                         state=state, currency=currency) == float(amount)
        assert value(samples, "fundpool_available_ratio", pool=pool, asset=code) == float(
            Fraction(asset.total.available, asset.total.total))
    for state, amount in view.reporting_total.as_dict().items():
        assert value(samples, "fundpool_pool_balance_reporting_minor", pool=pool, state=state,
                     currency=currency) == float(amount)
    assert value(samples, "fundpool_pool_available_ratio", pool=pool, currency=currency) == \
        float(Fraction(view.reporting_total.available, view.reporting_total.total))
    # Every asset of examples/pool.toml has a rate.
    assert by_label(samples, "fundpool_reporting_rate_missing", "asset", pool=pool) == {
        a.asset.code: 0.0 for a in view.assets}
    assert len(samples["fundpool_balance_minor"]) == checked
    # Something really moved: money is in transit or awaiting settlement somewhere.
    assert any(s.value > 0 for s in samples["fundpool_balance_minor"]
               if s.labels["state"] in ("in_transit", "pending_settlement"))


# --- payments -------------------------------------------------------------------------------


def test_payments_by_state_count_every_payment(world: World, caught_up: Monitor) -> None:
    _, samples = scrape(caught_up)
    pool = world.pool.id
    stored = payment_store(world.store).state_counts(pool)
    by_state = by_label(samples, "fundpool_payments", "state", pool=pool)
    assert set(by_state) == {s.value for s in PaymentState}
    assert by_state == {s.value: float(stored.get(s, 0)) for s in PaymentState}
    total = sum(stored.values())
    assert total > 50
    assert sum(by_state.values()) == total
    assert sum(s.value for s in samples["fundpool_channel_payments"]) == total

    figures = caught_up.figures(pool)
    assert value(samples, "fundpool_payments_in_flight", pool=pool) == figures.in_flight_count
    assert value(samples, "fundpool_payments_pending", pool=pool) == figures.pending_count
    assert value(samples, "fundpool_payments_failed", pool=pool) == figures.failed_count
    assert value(samples, "fundpool_payments_returned", pool=pool) == figures.returned_count
    in_flight = by_label(samples, "fundpool_payments_in_flight_amount_minor", "asset", pool=pool)
    assert set(in_flight) == {a.asset.code for a in figures.view.assets}
    for asset, amount in in_flight.items():
        assert amount == float(figures.in_flight_amount.get(asset, 0))
    for (channel, state), count in figures.by_channel_state.items():
        assert value(samples, "fundpool_channel_payments", pool=pool, channel=channel,
                     state=state) == count


# --- latency histograms ---------------------------------------------------------------------


def test_stage_latency_is_a_prometheus_histogram_of_the_cells(
    world: World, caught_up: Monitor,
) -> None:
    families, samples = scrape(caught_up)
    family = families["fundpool_payment_stage_duration_seconds"]
    assert family.type == "histogram"
    cells = caught_up.snapshot(world.pool.id).cells
    series = {(s.labels["channel"], s.labels["stage"]) for s in samples[family.name + "_count"]}
    assert ("-", "screen") in series
    assert any(stage == "end_to_end" for _, stage in series)
    expected_bounds = [bound / 1_000_000 for bound in LATENCY_BOUNDS_US] + [float("inf")]
    for channel, stage in series:
        labels = {"pool": world.pool.id, "channel": channel, "stage": stage}
        buckets = [(float(s.labels["le"]), s.value) for s in samples[family.name + "_bucket"]
                   if {k: v for k, v in s.labels.items() if k != "le"} == labels]
        assert [le for le, _ in buckets] == expected_bounds
        counts = [count for _, count in buckets]
        assert counts == sorted(counts), "cumulative counts never decrease"
        key = f"{channel}|{stage}"
        count = value(samples, family.name + "_count", **labels)
        assert count == counts[-1] == cells[("latency_count", key)]
        # A stage whose every observation was 0 µs has no sum cell.
        assert value(samples, family.name + "_sum", **labels) == float(
            Fraction(cells.get(("latency_sum_us", key), 0), 1_000_000))
        for index, (_, cumulative) in enumerate(buckets):
            assert cumulative == sum(
                cells.get(("latency_bucket", f"{key}|{i}"), 0) for i in range(index + 1))


# --- the projection -------------------------------------------------------------------------


def test_events_projector_lag_and_age(world: World, caught_up: Monitor) -> None:
    families, samples = scrape(caught_up)
    pool = world.pool.id
    projection = caught_up.snapshot(pool)
    assert families["fundpool_events_applied"].type == "counter"
    events = by_label(samples, "fundpool_events_applied_total", "type", pool=pool)
    assert events == {
        key: float(v) for (name, key), v in projection.cells.items() if name == "events"
    }
    assert sum(events.values()) == projection.applied_seq
    for name in ("duplicates", "ignored", "rejected"):
        assert families[f"fundpool_projector_{name}"].type == "counter"
        assert value(samples, f"fundpool_projector_{name}_total", pool=pool) == 0
    assert value(samples, "fundpool_projection_lag_events", pool=pool) == 0
    age_us = world.clock.now_us() - projection.last_at_us
    assert value(samples, "fundpool_projection_last_event_age_seconds", pool=pool) == float(
        Fraction(age_us, 1_000_000))


def test_lag_of_a_monitor_that_has_not_applied_anything(world: World) -> None:
    behind = world.monitor(projections=ProjectionStore("sqlite:///:memory:"))
    _, samples = scrape(behind)
    pool = world.pool.id
    head = behind.outbox.head(pool)
    assert head > 0
    assert value(samples, "fundpool_projection_lag_events", pool=pool) == head
    assert "fundpool_projection_last_event_age_seconds" not in samples
    assert "fundpool_payment_stage_duration_seconds_count" not in samples
    assert all(s.value == 0 for s in samples["fundpool_balance_minor"])


# --- health ---------------------------------------------------------------------------------


def test_healthz_and_readyz(world: World, caught_up: Monitor) -> None:
    with TestClient(served(caught_up, follow=False)) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        ready = client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json() == {"status": "ready", "lag_events": {world.pool.id: 0}}


def test_readyz_is_a_problem_while_the_projection_lags(world: World) -> None:
    behind = world.monitor(projections=ProjectionStore("sqlite:///:memory:"))
    head = behind.outbox.head(world.pool.id)
    app = served(behind, follow=False, ready_lag_max_events=head - 1)
    with TestClient(app) as client:
        response = client.get("/readyz")
        assert response.status_code == 503
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert problem["code"] == "projection_lagging"
        assert problem["type"] == "/problems/projection_lagging"
        assert problem["status"] == 503
        assert problem["title"] == "the live figures are too far behind the ledger's events"
        assert problem["detail"] == f"1 pool(s) more than {head - 1} events behind the outbox"
        assert problem["facts"] == {"lag_events": {world.pool.id: head},
                                    "lag_max_events": head - 1}
        behind.step()
        assert client.get("/readyz").status_code == 200


def test_readyz_when_the_store_has_no_ledger(tmp_path: Path, world: World) -> None:
    empty = SqliteStore(tmp_path / "empty.sqlite3")
    try:
        monitor = compose.monitor(empty, world.config, world.clock)
        with TestClient(served(monitor, follow=False)) as client:
            assert client.get("/healthz").status_code == 200
            response = client.get("/readyz")
            assert response.status_code == 503
            assert response.headers["content-type"] == "application/problem+json"
            assert response.json()["code"] == "store_not_initialised"
    finally:
        empty.close()


def test_a_store_that_fails_is_a_store_error(
    tmp_path: Path, world: World, monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = SqliteStore(tmp_path / "failing.sqlite3")
    store.initialise()
    monitor = compose.monitor(store, world.config, world.clock)

    def disk_error(pool: str) -> int:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(monitor.outbox, "head", disk_error)
    with TestClient(served(monitor, follow=False)) as client:
        for route in ("/readyz", "/metrics"):
            response = client.get(route)
            assert response.status_code == 503, route
            assert response.headers["content-type"] == "application/problem+json"
            problem = response.json()
            assert problem["code"] == "store_error"
            assert problem["facts"] == {"reason": "OperationalError: disk I/O error"}
        assert client.get("/healthz").status_code == 200
    store.close()


def test_unknown_route_is_a_problem(caught_up: Monitor) -> None:
    with TestClient(served(caught_up, follow=False)) as client:
        response = client.get("/nowhere")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "not_found"


# --- live -----------------------------------------------------------------------------------


def test_metrics_follow_new_traffic(world: World) -> None:
    monitor = world.monitor()
    pool = world.pool.id
    app = served(monitor, follow=True, follow_interval_s=0.01)

    def caught_up_scrape(client: TestClient) -> Samples:
        deadline = time.monotonic() + 10
        while True:
            _, samples = parse(client.get("/metrics").text)
            if value(samples, "fundpool_projection_lag_events", pool=pool) == 0:
                return samples
            assert time.monotonic() < deadline, "the follower did not catch up"
            time.sleep(0.02)

    with TestClient(app) as client:
        before = caught_up_scrape(client)
        world.run(duration_s=2.0)
        after = caught_up_scrape(client)
        assert client.get("/readyz").status_code == 200
    applied = sum(s.value for s in after["fundpool_events_applied_total"])
    assert applied > sum(s.value for s in before["fundpool_events_applied_total"])
    payments_total = sum(payment_store(world.store).state_counts(pool).values())
    assert sum(s.value for s in after["fundpool_payments"]) == payments_total
    assert sum(s.value for s in after["fundpool_payments"]) > \
        sum(s.value for s in before["fundpool_payments"])
    view = world.view()
    for asset in view.assets:
        for channel, figures in asset.by_channel.items():
            assert value(after, "fundpool_balance_minor", pool=pool, asset=asset.asset.code,
                         channel=channel, state="total") == float(figures.total)


# --- the extension point --------------------------------------------------------------------


def test_extra_metric_sources_share_the_scrape(world: World, caught_up: Monitor) -> None:
    seen: list[int] = []

    def settled_share(scrape: Scrape) -> list[Metric]:
        family = GaugeMetricFamily("fundpool_test_settled", "settled payments", labels=["pool"])
        for pool in scrape.pools():
            figures = scrape.figures(pool.id)
            assert scrape.figures(pool.id) is figures  # read once per scrape
            seen.append(scrape.at_us)
            family.add_metric([pool.id], figures.payments_by_state.get("settled", 0))
        return [family]

    app = served(caught_up, follow=False, metric_sources=[settled_share])
    with TestClient(app) as client:
        _, samples = parse(client.get("/metrics").text)
    settled = caught_up.figures(world.pool.id).payments_by_state["settled"]
    assert value(samples, "fundpool_test_settled", pool=world.pool.id) == settled
    assert value(samples, "fundpool_payments", pool=world.pool.id, state="settled") == settled
    assert seen == [world.clock.now_us()]


def test_a_source_repeating_a_family_fails_the_scrape(caught_up: Monitor) -> None:
    def clash(scrape: Scrape) -> list[Metric]:
        return [GaugeMetricFamily("fundpool_payments", "again")]

    app = served(caught_up, follow=False, metric_sources=[clash])
    with TestClient(app, raise_server_exceptions=False) as client, capture_logs() as logs:
        response = client.get("/metrics")
    assert [entry["event"] for entry in logs] == ["unexpected_error"]
    assert logs[0]["error"] == "ValueError"
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "internal_error"


# --- the dashboard and the docs -------------------------------------------------------------

METRIC_NAME = re.compile(r"\bfundpool_[a-z0-9_]+\b")
SELECTOR = re.compile(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{")


def panels_of(dashboard: dict[str, object]) -> Iterator[dict[str, object]]:
    for panel in dashboard["panels"]:  # type: ignore[attr-defined]
        yield panel
        yield from panel.get("panels", [])


def test_every_dashboard_query_uses_exported_metrics(caught_up: Monitor) -> None:
    _, samples = scrape(caught_up)
    exported = set(samples)
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["schemaVersion"] >= 38
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["DS_PROMETHEUS"]["type"] == "datasource"
    assert variables["DS_PROMETHEUS"]["query"] == "prometheus"
    for name in ("pool", "asset"):
        assert variables[name]["type"] == "query"
        assert variables[name]["definition"].startswith("label_values(")

    queries: list[str] = [v["definition"] for v in variables.values() if v["type"] == "query"]
    for panel in panels_of(dashboard):
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
        targets = panel["targets"]
        assert targets, panel["title"]
        queries.extend(target["expr"] for target in targets)
    assert len(queries) > 20
    used: set[str] = set()
    for query in queries:
        names = set(METRIC_NAME.findall(query))
        assert names, f"no fundpool metric in {query!r}"
        # Any selector `name{…}` must be one of ours: no metric outside the fundpool names.
        assert set(SELECTOR.findall(query)) <= names, query
        missing = names - exported
        assert not missing, f"{query!r} uses {sorted(missing)}, not in /metrics"
        used |= names
    for needed in ("fundpool_payment_stage_duration_seconds_bucket",
                   "fundpool_events_applied_total", "fundpool_projection_lag_events",
                   "fundpool_available_ratio", "fundpool_channel_depth_minor"):
        assert needed in used
    assert any("histogram_quantile(0.99" in q and "[5m]" in q for q in queries)


def test_every_exported_family_is_documented(caught_up: Monitor) -> None:
    families, _ = scrape(caught_up)
    doc = METRICS_DOC.read_text()
    for family in families.values():
        shown = family.name + ("_total" if family.type == "counter" else "")
        assert f"`{shown}`" in doc, f"{shown} is not in docs/metrics.md"


# --- the real server ------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.mark.slow
def test_fundpool_serve_answers_over_http(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    store = SqliteStore.in_data_dir(data_dir)
    store.initialise()
    clock = ManualClock()
    config = load_config(CONFIG)
    sim = compose.simulation(Ledger(store, clock, Uuid7Ids.seeded(5)), config, config.pools[0],
                             seed=5, clock=clock)
    sim.open_pool()
    sim.run(rate_per_s=RATE_PER_S, duration_s=1.0, speed=SPEED,
            advance=lambda s: clock.advance(seconds=s))
    payments = sum(payment_store(store).state_counts(config.pools[0].id).values())
    store.close()

    port = free_port()
    fundpool = Path(sys.executable).with_name("fundpool")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FUNDPOOL_")}
    server = subprocess.Popen(
        [str(fundpool), "serve", "--port", str(port), "--config", str(CONFIG),
         "--data-dir", str(data_dir), "--log-level", "info"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )
    base = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        assert server.poll() is None, server.communicate()
        try:
            return httpx.get(f"{base}/readyz", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    def caught_up() -> Samples | None:
        # Ready means no more than `ready_lag_max_events` behind: the follower may still be
        # applying the run's events when the first scrape comes.
        response = httpx.get(f"{base}/metrics", timeout=5)
        assert response.status_code == 200
        _, samples = parse(response.text)
        lag = value(samples, "fundpool_projection_lag_events", pool=config.pools[0].id)
        return samples if lag == 0 else None

    try:
        wait_until(ready, within_s=SERVER_READY_S, what="fundpool serve to answer /readyz")
        assert httpx.get(f"{base}/healthz", timeout=5).json() == {"status": "ok"}
        samples = wait_until(caught_up, within_s=CATCH_UP_S,
                             what="the server's projections to catch up with the run")
        assert sum(s.value for s in samples["fundpool_payments"]) == payments
        assert samples["fundpool_payment_stage_duration_seconds_bucket"]
        openmetrics = httpx.get(f"{base}/metrics", timeout=5, headers={
            "accept": "application/openmetrics-text; version=1.0.0"})
        assert openmetrics.headers["content-type"].startswith("application/openmetrics-text")
        assert openmetrics.text.rstrip().endswith("# EOF")
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    log = server.stderr.read().decode() if server.stderr else ""
    # uvicorn shuts down gracefully on SIGTERM (the lifespan stops the follower), then raises
    # the signal again so that the exit status says how the process ended.
    assert server.returncode in (0, -signal.SIGTERM), log
    assert "Application shutdown complete" in log, log
    assert "Traceback" not in log, log
