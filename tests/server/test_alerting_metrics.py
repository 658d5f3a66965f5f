"""The KPI and alert families on /metrics (server/alerting.py): their values are the engine's
and the KPI library's own, and a KPI without data exports no sample."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from fundpool import compose
from fundpool.core.actor import cli_actor
from fundpool.core.clock import ManualClock, Uuid7Ids
from fundpool.ledger.service import Ledger
from fundpool.monitoring.alerting.engine import AlertEngine
from fundpool.monitoring.alerting.reload import AlertRules
from fundpool.monitoring.kpis import KpiContext, compute_kpis
from fundpool.monitoring.service import Monitor
from fundpool.pool.config import load_config
from fundpool.server.alerting import alert_source, kpi_source
from fundpool.server.app import create_app
from fundpool.stores.alerts_sql import SqlAlertStore
from fundpool.stores.sqlite import SqliteStore

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

ROOT = Path(__file__).resolve().parents[2]

# A rule that always fires on a living pool, so that the alert families have a sample.
RULES = """
version: 1
kpis:
  available_ratio: {}
rules:
  - id: ratio-below-two
    kpi: available_ratio
    subject: pool
    op: "<"
    value: 2
    severity: warning
slos:
  - id: payout-success
    sli: { type: success, kind: payout }
    objective: 0.99
    window: 30d
"""


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Monitor, AlertEngine]]:
    store = SqliteStore(tmp_path_factory.mktemp("alerting") / "ledger.sqlite3")
    store.initialise()
    clock = ManualClock()
    config = load_config(ROOT / "examples" / "pool.toml")
    ledger = Ledger(store, clock, Uuid7Ids.seeded(5))
    sim = compose.simulation(ledger, config, config.pools[0], seed=5, clock=clock)
    sim.open_pool()
    sim.run(rate_per_s=50, duration_s=5, speed=60, advance=lambda s: clock.advance(seconds=s))
    monitor = compose.monitor(store, config, clock)
    monitor.step()
    engine = AlertEngine(ledger, monitor, AlertRules(text=RULES), table=SqlAlertStore(store),
                         ids=Uuid7Ids.seeded(6))
    engine.evaluate()
    yield monitor, engine
    store.close()


def scrape(monitor: Monitor, engine: AlertEngine) -> dict[str, list[Sample]]:
    app = create_app(monitor, driver_errors=compose.store_errors(), follow=False,
                     metric_sources=[kpi_source(engine.rules), alert_source(engine)])
    with TestClient(app) as client:
        response = client.get("/metrics")
    assert response.status_code == 200
    samples: dict[str, list[Sample]] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(sample)
    return samples


def test_kpi_samples_are_the_library_values(world: tuple[Monitor, AlertEngine]) -> None:
    monitor, engine = world
    samples = scrape(monitor, engine)
    pool = monitor.pool()
    projection = monitor.snapshot(pool.id)
    context = KpiContext.of(monitor.config, pool, projection.cells, projection.series,
                            at_us=monitor.clock.now_us())
    expected = {
        (v.kpi, v.asset or "", v.channel or ""): v.value
        for v in compute_kpis(context, engine.rules.current.kpis if engine.rules.current
                              else None)
    }
    got = {
        (s.labels["kpi"], s.labels["asset"], s.labels["channel"]): s.value
        for s in samples.get("fundpool_kpi", [])
    }
    assert got, "the rules switch available_ratio on: there must be samples"
    assert set(got) == {key for key, value in expected.items() if value is not None}
    for key, value in got.items():
        exact = expected[key]
        assert exact is not None
        assert value == pytest.approx(float(exact), rel=1e-12)
    whole = got[("available_ratio", "", "")]
    ratio = monitor.figures(pool.id).available_ratio["*"]
    assert ratio is not None
    assert Fraction(whole).limit_denominator(10**9) == pytest.approx(ratio, rel=1e-9)


def test_alert_and_slo_samples_follow_the_engine(world: tuple[Monitor, AlertEngine]) -> None:
    monitor, engine = world
    active = engine.active()
    assert [a.rule for a in active] == ["ratio-below-two"]
    samples = scrape(monitor, engine)
    firing = samples["fundpool_alerts_active"]
    assert [(s.labels["rule"], s.labels["severity"], s.labels["state"], s.value)
            for s in firing] == [("ratio-below-two", "warning", "firing", 1.0)]
    assert samples["fundpool_alert_rules_error"][0].value == 0
    objective = {s.labels["slo"]: s.value for s in samples["fundpool_slo_objective"]}
    assert objective == {"payout-success": pytest.approx(0.99)}
    report = engine.last_report
    assert report is not None
    (status,) = report.slos
    if status.sli is None:
        assert "fundpool_slo_sli" not in samples
    else:
        assert samples["fundpool_slo_sli"][0].value == pytest.approx(float(status.sli))

    engine.acknowledge(active[0].id, cli_actor("ops-lead"))
    states = [s.labels["state"] for s in scrape(monitor, engine)["fundpool_alerts_active"]]
    assert states == ["acknowledged"]


def test_a_broken_rules_file_shows_on_metrics(tmp_path: Path,
                                              world: tuple[Monitor, AlertEngine]) -> None:
    monitor, engine = world
    path = tmp_path / "alerts.yaml"
    path.write_text(RULES)
    rules = AlertRules(path)
    broken = AlertEngine(engine.ledger, monitor, rules,
                         table=SqlAlertStore(engine.ledger.store), ids=Uuid7Ids.seeded(8))
    path.write_text("rules: [ {id: x, kpi: nope} ]\n")
    rules.check()
    assert rules.last_error is not None
    samples = scrape(monitor, broken)
    assert samples["fundpool_alert_rules_error"][0].value == 1
    # The rules in force are still the first file's: its KPI is still exported.
    assert any(s.labels["kpi"] == "available_ratio" for s in samples["fundpool_kpi"])
