"""Prometheus metrics computed at scrape time from the monitor's projections (docs/metrics.md).

Nothing is counted twice: every sample is read, when Prometheus scrapes, from the same
projection the console and `fundpool monitor show` read, through the same figures
(monitoring/figures.py). One scrape takes one snapshot per pool, so the figures of a pool in
one scrape are consistent with each other (balances, payments and histograms of the same
applied event).

Amounts stay exact integers of minor units up to the last step, where they become the float
a Prometheus sample is by protocol: an amount above 2^53 minor units (9.007e15: wei amounts of
a few ETH and up) loses its last digits there. The exact figures are in the API and in
`fundpool monitor show --json`; dashboards need no more than a float's precision.

Extension point: `MetricSource` — a function given the scrape (`Scrape`: the monitor, the
instant, and the per-pool snapshot and figures already read for this scrape) that yields more
metric families. `create_app(monitor, metric_sources=[...])` runs them after the core
families, in the same scrape; the KPI and alert metrics plug in there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction

from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from fundpool.core.money import Asset
from fundpool.monitoring.figures import PoolFigures, pool_figures
from fundpool.monitoring.projection import LATENCY_BOUNDS_US, NO_CHANNEL, Projection
from fundpool.monitoring.records import Cursor
from fundpool.monitoring.service import Monitor
from fundpool.payments.model import PaymentState
from fundpool.pool.config import PoolConfig
from fundpool.pool.rates import StaticRates
from fundpool.pool.view import FIGURES, Figures

PREFIX = "fundpool"
US_PER_S = 1_000_000
# The states of a balance as exported: the five state figures and TOTAL (available + locked +
# in transit + pending settlement; fee income is beside it, not in it).
BALANCE_STATES: tuple[str, ...] = (*FIGURES, "total")
# `le` label values of the stage latency histogram, in seconds (the shortest text that reads
# back as the same float: 0.001 … 604800.0).
LATENCY_BOUNDS_S: tuple[str, ...] = tuple(
    repr(bound_us / US_PER_S) for bound_us in LATENCY_BOUNDS_US
)


def sample(value: int | Fraction) -> float:
    """The float of a Prometheus sample: exact below 2^53, the nearest float above."""
    return float(value)


@dataclass(slots=True)
class PoolScrape:
    """What one scrape read of one pool."""

    pool: PoolConfig
    projection: Projection
    cursor: Cursor
    figures: PoolFigures
    lag_events: int


@dataclass(slots=True)
class Scrape:
    """One scrape: the instant, and each pool read once (lazily, then kept for the scrape), so
    that every metric source reads the same snapshot."""

    monitor: Monitor
    at_us: int
    _pools: dict[str, PoolScrape] = field(default_factory=dict)

    @classmethod
    def now(cls, monitor: Monitor) -> Scrape:
        return cls(monitor, monitor.clock.now_us())

    def pools(self) -> list[PoolConfig]:
        return list(self.monitor.config.pools)

    def pool(self, pool_id: str) -> PoolScrape:
        read = self._pools.get(pool_id)
        if read is None:
            read = self._read(self.monitor.pool(pool_id))
            self._pools[pool_id] = read
        return read

    def figures(self, pool_id: str) -> PoolFigures:
        return self.pool(pool_id).figures

    def _read(self, pool: PoolConfig) -> PoolScrape:
        monitor = self.monitor
        # The snapshot and the cursor under the monitor's lock, so that the feed does not apply
        # an event between the two (and a projection is never loaded from the store by two
        # threads at once). Monitor has no public accessor for the cursor yet.
        projection, cursor = monitor.read(pool.id)
        lag = max(0, monitor.outbox.head(pool.id) - cursor.seq)
        rates: StaticRates = monitor.config.rates_for(pool)
        figures = pool_figures(monitor.config, pool, rates, projection.cells, projection.series,
                               at_us=self.at_us)
        return PoolScrape(pool, projection, cursor, figures, lag)


MetricSource = Callable[[Scrape], Iterable[Metric]]
"""An extra source of metrics: called once per scrape with the scrape, yields metric families
(prometheus_client.metrics_core.*MetricFamily). A family name must not repeat one already
exported (the scrape fails with ValueError if it does)."""


def _name(suffix: str) -> str:
    return f"{PREFIX}_{suffix}"


def core_metrics(scrape: Scrape) -> Iterator[Metric]:
    """The fundpool families (docs/metrics.md lists each with its labels)."""
    pools = [scrape.pool(p.id) for p in scrape.pools()]
    yield _scales(scrape.monitor.config.assets)
    yield from _balances(pools)
    yield from _ratios(pools)
    yield from _payments(pools)
    yield _depth(pools)
    yield _latency(pools)
    yield from _projection(pools, scrape.at_us)


def _scales(assets: Iterable[Asset]) -> Metric:
    scales = GaugeMetricFamily(
        _name("asset_scale"),
        "Decimal places of the asset's minor unit: an amount is minor / 10^scale of the asset "
        "(dashboards divide by 10 ^ fundpool_asset_scale).",
        labels=["asset"],
    )
    for asset in assets:
        scales.add_metric([asset.code], sample(asset.scale))
    return scales


def _balances(pools: Sequence[PoolScrape]) -> Iterator[Metric]:
    by_channel = GaugeMetricFamily(
        _name("balance_minor"),
        "Pool balance by asset, channel and state, in minor units of the asset "
        "(total = available + locked + in_transit + pending_settlement; fees beside it).",
        labels=["pool", "asset", "channel", "state"],
    )
    reporting = GaugeMetricFamily(
        _name("balance_reporting_minor"),
        "Pool balance of one asset by state, converted to the reporting currency, in its minor "
        "units.",
        labels=["pool", "asset", "state", "currency"],
    )
    pool_reporting = GaugeMetricFamily(
        _name("pool_balance_reporting_minor"),
        "Pool balance of all assets with a rate, by state, in minor units of the reporting "
        "currency.",
        labels=["pool", "state", "currency"],
    )
    missing = GaugeMetricFamily(
        _name("reporting_rate_missing"),
        "1 for an asset left out of the reporting totals because no rate to the reporting "
        "currency is known, else 0.",
        labels=["pool", "asset", "currency"],
    )

    def states(figures: Figures) -> Iterator[tuple[str, int]]:
        values = figures.as_dict()
        for state in BALANCE_STATES:
            yield state, values[state]

    for read in pools:
        view = read.figures.view
        currency = view.reporting_currency.code
        for asset in view.assets:
            code = asset.asset.code
            for channel, figures in asset.by_channel.items():
                for state, value in states(figures):
                    by_channel.add_metric([read.pool.id, code, channel, state], sample(value))
            if asset.reporting is not None:
                for state, value in states(asset.reporting):
                    reporting.add_metric([read.pool.id, code, state, currency], sample(value))
        for state, value in states(view.reporting_total):
            pool_reporting.add_metric([read.pool.id, state, currency], sample(value))
        for asset in view.assets:
            code = asset.asset.code
            missing.add_metric([read.pool.id, code, currency],
                               1.0 if code in view.missing_rates else 0.0)
    yield from (by_channel, reporting, pool_reporting, missing)


def _ratios(pools: Sequence[PoolScrape]) -> Iterator[Metric]:
    by_asset = GaugeMetricFamily(
        _name("available_ratio"),
        "Available / TOTAL of one asset (no sample while TOTAL is 0).",
        labels=["pool", "asset"],
    )
    whole = GaugeMetricFamily(
        _name("pool_available_ratio"),
        "Available / TOTAL of the pool in the reporting currency (no sample while TOTAL is 0).",
        labels=["pool", "currency"],
    )
    for read in pools:
        for key, ratio in read.figures.available_ratio.items():
            if ratio is None:
                continue
            if key == "*":
                currency = read.figures.view.reporting_currency.code
                whole.add_metric([read.pool.id, currency], sample(ratio))
            else:
                by_asset.add_metric([read.pool.id, key], sample(ratio))
    yield from (by_asset, whole)


def _payments(pools: Sequence[PoolScrape]) -> Iterator[Metric]:
    by_state = GaugeMetricFamily(
        _name("payments"), "Payments now in each state.", labels=["pool", "state"])
    by_channel = GaugeMetricFamily(
        _name("channel_payments"),
        f"Payments now in each state, by the channel they use ({NO_CHANNEL!r}: none yet).",
        labels=["pool", "channel", "state"],
    )
    in_flight = GaugeMetricFamily(
        _name("payments_in_flight"),
        "Payments approved, submitted or cleared: sent or about to be, not yet settled.",
        labels=["pool"],
    )
    in_flight_amount = GaugeMetricFamily(
        _name("payments_in_flight_amount_minor"),
        "Gross amount of the payments in flight, in minor units of the asset.",
        labels=["pool", "asset"],
    )
    pending = GaugeMetricFamily(
        _name("payments_pending"),
        "Payments initiated, screened, held, routed or waiting for approval.",
        labels=["pool"],
    )
    failed = GaugeMetricFamily(
        _name("payments_failed"), "Payments in the failed state.", labels=["pool"])
    returned = GaugeMetricFamily(
        _name("payments_returned"), "Payments in the returned state.", labels=["pool"])
    for read in pools:
        pool_id = read.pool.id
        figures = read.figures
        # Every known state, 0 included, so that a series does not vanish when it empties.
        counts = {state.value: 0 for state in PaymentState}
        counts.update(figures.payments_by_state)
        for state, count in sorted(counts.items()):
            by_state.add_metric([pool_id, state], sample(count))
        # From the cells rather than `by_channel_state`, which leaves out the zeros.
        for (name, key), count in sorted(read.projection.cells.items()):
            if name == "payments_channel":
                state, channel = key.split("|", 1)
                by_channel.add_metric([pool_id, channel, state], sample(count))
        in_flight.add_metric([pool_id], sample(figures.in_flight_count))
        amounts = {asset.asset.code: 0 for asset in figures.view.assets}
        amounts.update(figures.in_flight_amount)
        for asset, amount in sorted(amounts.items()):
            in_flight_amount.add_metric([pool_id, asset], sample(amount))
        pending.add_metric([pool_id], sample(figures.pending_count))
        failed.add_metric([pool_id], sample(figures.failed_count))
        returned.add_metric([pool_id], sample(figures.returned_count))
    yield from (by_state, by_channel, in_flight, in_flight_amount, pending, failed, returned)


def _depth(pools: Sequence[PoolScrape]) -> Metric:
    depth = GaugeMetricFamily(
        _name("channel_depth_minor"),
        "Liquidity depth: available balance of one asset on one channel, in minor units.",
        labels=["pool", "asset", "channel"],
    )
    for read in pools:
        for (asset, channel), value in read.figures.depth.items():
            depth.add_metric([read.pool.id, asset, channel], sample(value))
    return depth


def _latency(pools: Sequence[PoolScrape]) -> Metric:
    histogram = HistogramMetricFamily(
        _name("payment_stage_duration_seconds"),
        "Time a payment spent in a stage, by channel and the action that ended the stage "
        "(end_to_end: creation to settlement), from the payments' own event times.",
        labels=["pool", "channel", "stage"],
    )
    for read in pools:
        cells = read.projection.cells
        for latency in read.figures.latency:
            cumulative = 0
            buckets: list[tuple[str, float]] = []
            for bound, count in zip((*LATENCY_BOUNDS_S, "+Inf"), latency.buckets, strict=True):
                cumulative += count
                buckets.append((bound, sample(cumulative)))
            sum_us = cells.get(("latency_sum_us", f"{latency.channel}|{latency.stage}"), 0)
            histogram.add_metric([read.pool.id, latency.channel, latency.stage], buckets,
                                 sample(Fraction(sum_us, US_PER_S)))
    return histogram


def _projection(pools: Sequence[PoolScrape], at_us: int) -> Iterator[Metric]:
    events = CounterMetricFamily(
        _name("events_applied"), "Events applied to the pool's projection, by type.",
        labels=["pool", "type"])
    duplicates = CounterMetricFamily(
        _name("projector_duplicates"),
        "Events delivered again and not applied a second time.", labels=["pool"])
    ignored = CounterMetricFamily(
        _name("projector_ignored"),
        "Events of an unknown type stepped over.", labels=["pool"])
    rejected = CounterMetricFamily(
        _name("projector_rejected"),
        "Malformed events stepped over (recorded in projection_rejects).", labels=["pool"])
    lag = GaugeMetricFamily(
        _name("projection_lag_events"),
        "Events of the pool in the outbox that its projection has not applied yet.",
        labels=["pool"])
    age = GaugeMetricFamily(
        _name("projection_last_event_age_seconds"),
        "Time since the last event the projection applied happened (0 when the event is "
        "stamped ahead of this server's clock; no sample before the first event).",
        labels=["pool"])
    for read in pools:
        pool_id = read.pool.id
        for kind, count in read.figures.events.items():
            events.add_metric([pool_id, kind], sample(count))
        duplicates.add_metric([pool_id], sample(read.cursor.duplicates))
        ignored.add_metric([pool_id], sample(read.cursor.ignored))
        rejected.add_metric([pool_id], sample(read.cursor.rejected))
        lag.add_metric([pool_id], sample(read.lag_events))
        if read.projection.last_at_us:
            age_us = max(0, at_us - read.projection.last_at_us)
            age.add_metric([pool_id], sample(Fraction(age_us, US_PER_S)))
    yield from (events, duplicates, ignored, rejected, lag, age)


class FundpoolCollector:
    """The prometheus_client collector of one app: the core families, then the extra sources',
    computed afresh at every scrape."""

    def __init__(self, monitor: Monitor, sources: Sequence[MetricSource] = ()) -> None:
        self.monitor = monitor
        self.sources: list[MetricSource] = [core_metrics, *sources]

    def collect(self) -> Iterator[Metric]:
        scrape = Scrape.now(self.monitor)
        seen: set[str] = set()
        for source in self.sources:
            for family in source(scrape):
                if family.name in seen:
                    raise ValueError(f"metric family {family.name!r} exported twice")
                seen.add(family.name)
                yield family
