"""Prometheus families of the KPI templates and the alert engine, as `/metrics` sources
(server/metrics.py `MetricSource`): the KPI values, the alerts in force, the SLOs' SLI, error
budget and burn rates, and whether the rules file loaded.

A KPI with no data exports no sample (an absent series, not a fake 0). Ratios are exact
fractions until this last step, where Prometheus' protocol makes them floats.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from fundpool.monitoring.alerting.engine import AlertEngine
from fundpool.monitoring.alerting.reload import AlertRules
from fundpool.monitoring.kpis import KpiContext, compute_kpis, format_duration
from fundpool.server.metrics import MetricSource, Scrape


def kpi_source(rules: AlertRules | None) -> MetricSource:
    """`fundpool_kpi{pool,kpi,asset,channel}`: the KPIs the rules switch on (every template
    with its defaults when there are no rules)."""

    def source(scrape: Scrape) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "fundpool_kpi", "Treasury KPI values (docs/monitoring-alerts.md); asset empty: "
            "the pool in its reporting currency",
            labels=["pool", "kpi", "asset", "channel"])
        enabled = None if rules is None or rules.current is None else rules.current.kpis
        for pool in scrape.pools():
            read = scrape.pool(pool.id)
            context = KpiContext(scrape.monitor.config, pool, read.figures,
                                 read.projection.series, scrape.monitor.config.rates_for(pool))
            for value in compute_kpis(context, enabled):
                if value.value is None:
                    continue
                family.add_metric([pool.id, value.kpi, value.asset or "", value.channel or ""],
                                  float(value.value))
        yield family

    return source


def alert_source(engine: AlertEngine) -> MetricSource:
    """The alert engine's state: alerts in force, SLOs, the rules file."""

    def source(scrape: Scrape) -> Iterator[Metric]:
        active = GaugeMetricFamily(
            "fundpool_alerts_active", "Alerts firing or acknowledged, by rule and severity",
            labels=["pool", "rule", "severity", "state"])
        counts: dict[tuple[str, str, str, str], int] = {}
        for alert in engine.active():
            key = (alert.pool, alert.rule, alert.severity, alert.state)
            counts[key] = counts.get(key, 0) + 1
        for key, count in sorted(counts.items()):
            active.add_metric(list(key), count)
        yield active

        rules = engine.rules
        error = GaugeMetricFamily(
            "fundpool_alert_rules_error",
            "1 while the rules file has an error (the previous rules stay in force)")
        error.add_metric([], 1 if rules.last_error else 0)
        yield error
        reloads = CounterMetricFamily(
            "fundpool_alert_rules_reloads", "Rule files taken after the first")
        reloads.add_metric([], rules.reloads)
        yield reloads

        report = engine.last_report
        sli = GaugeMetricFamily("fundpool_slo_sli", "Good over total events in the SLO window",
                                labels=["pool", "slo"])
        objective = GaugeMetricFamily("fundpool_slo_objective", "The SLO's objective",
                                      labels=["pool", "slo"])
        budget = GaugeMetricFamily(
            "fundpool_slo_error_budget_remaining",
            "Share of the error budget left (negative once overspent)", labels=["pool", "slo"])
        burn = GaugeMetricFamily(
            "fundpool_slo_burn_rate", "Error budget burn rate over a window",
            labels=["pool", "slo", "window"])
        for status in [] if report is None else report.slos:
            labels = [status.pool, status.slo]
            objective.add_metric(labels, float(status.objective))
            if status.sli is not None:
                sli.add_metric(labels, float(status.sli))
            if status.budget_remaining is not None:
                budget.add_metric(labels, float(status.budget_remaining))
            seen: set[str] = set()
            for rate in status.burn_rates:
                for window_us, value in ((rate.long_us, rate.long), (rate.short_us, rate.short)):
                    window = format_duration(window_us)
                    if value is not None and window not in seen:
                        seen.add(window)
                        burn.add_metric([*labels, window], float(value))
        yield from (sli, objective, budget, burn)

    return source
