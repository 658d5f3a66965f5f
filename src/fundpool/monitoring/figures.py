"""What the projections say, read as figures: totals by state, ratios, in-flight, depth,
pending and failed counts, latency percentiles, the balance-change heatmap, turnover and fee
income per period (docs/monitoring.md).

Everything here is computed on read from a projection's integer cells and series, at an
instant `now_us` given by the caller (the console's clock, or a replay's instant), so the same
projection read at the same instant gives the same figures. Amounts stay exact integers of
minor units; ratios are `Fraction`s, turned into decimals only where they are shown.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction

from fundpool.core.ledger.model import Balance
from fundpool.monitoring.projection import (
    APPROVALS_WAITING,
    IN_FLIGHT_STATES,
    LATENCY_BOUNDS_US,
    PENDING_STATES,
    RESOLUTIONS,
    Cell,
    SeriesKey,
)
from fundpool.pool.config import Depth, FundpoolConfig, PoolConfig
from fundpool.pool.rates import RateSource, convert_minor
from fundpool.pool.view import PoolView, pool_view

HOUR_US = RESOLUTIONS["h"]
DAY_US = 24 * HOUR_US
# A channel's health by its depth (available balance of one asset) against its configured
# `depth` (pool/config.py): critical under min_depth, or when it holds nothing at all (an
# empty rail pays nothing, whatever its configuration says); low under low_depth.
HEALTHY, LOW, CRITICAL = "healthy", "low", "critical"


@dataclass(frozen=True, slots=True)
class LatencyFigures:
    channel: str
    stage: str  # the action that ended the stage (submit, settle …) or end_to_end
    count: int
    mean_us: int
    p50_us: int
    p90_us: int
    p99_us: int
    buckets: tuple[int, ...]  # count per LATENCY_BOUNDS_US bucket, +Inf last


@dataclass(frozen=True, slots=True)
class Turnover:
    """Over a window: outflow (settled payouts and transfers out) and inflow (settled
    deposits) against the average TOTAL. `days` is how many days of outflow the average
    balance covers (DPO-like); `inflow_days` the same for inflows (DSO-like)."""

    asset: str
    window_us: int
    outflow: int
    inflow: int
    average_total: int
    rate: Fraction | None  # outflow / average TOTAL; None when the average is 0
    days: Fraction | None
    inflow_days: Fraction | None


@dataclass(frozen=True, slots=True)
class PoolFigures:
    pool: str
    at_us: int
    view: PoolView
    available_ratio: dict[str, Fraction | None]  # per asset, and "*" for the reporting total
    payments_by_state: dict[str, int]
    pending_count: int
    failed_count: int
    returned_count: int
    in_flight_count: int
    in_flight_amount: dict[str, int]  # per asset
    by_channel_state: dict[tuple[str, str], int]  # (channel, state) -> payments
    depth: dict[tuple[str, str], int]  # (asset, channel) -> available
    latency: tuple[LatencyFigures, ...]
    events: dict[str, int]
    fee_income: dict[str, list[tuple[int, int]]] = field(default_factory=dict)  # asset -> hourly
    # Waits for an approver: the histogram of request-to-approval waits (LATENCY_BOUNDS_US
    # buckets, +Inf last), and when the longest waiting payment began to wait (None: none).
    approval_wait_buckets: tuple[int, ...] = ()
    approval_waiting_since_us: int | None = None

    @property
    def approval_count(self) -> int:
        """Payments waiting for an approver now."""
        return self.payments_by_state.get("pending_approval", 0)


@dataclass(frozen=True, slots=True)
class ChannelHealth:
    """One asset on one channel: its available balance against its configured depth."""

    asset: str
    channel: str
    available: int
    depth: Depth | None  # None: no depth configured for the asset on this channel
    status: str  # HEALTHY, LOW or CRITICAL


def depth_status(available: int, depth: Depth | None) -> str:
    """CRITICAL when nothing is available or under min_depth, LOW under low_depth, else
    HEALTHY."""
    if available <= 0 or (depth is not None and available < depth.min_minor):
        return CRITICAL
    if depth is not None and available < depth.low_minor:
        return LOW
    return HEALTHY


def channel_health(config: FundpoolConfig, figures: PoolFigures) -> list[ChannelHealth]:
    """Every asset x channel of the pool's figures, with its status (`depth_status`), in the
    figures' order."""
    channels = {c.id: c for c in config.channels}
    out: list[ChannelHealth] = []
    for (asset, channel), available in figures.depth.items():
        known = channels.get(channel)
        depth = None if known is None else known.depth_for(asset)
        out.append(ChannelHealth(asset, channel, available, depth,
                                 depth_status(available, depth)))
    return out


def balances_of(cells: Mapping[Cell, int]) -> dict[tuple[str, str], Balance]:
    """The pool's account balances held by a projection, as `pool_view` takes them."""
    keys = {key for name, key in cells if name == "posted"}
    out: dict[tuple[str, str], Balance] = {}
    for key in keys:
        address, asset = key.rsplit("|", 1)
        out[(address, asset)] = Balance(
            cells.get(("posted", key), 0),
            cells.get(("pending_out", key), 0),
            cells.get(("pending_in", key), 0),
        )
    return out


def quantile_us(buckets: Iterable[int], q: Fraction) -> int:
    """The q-quantile of a latency histogram, interpolated linearly inside its bucket as
    Prometheus' histogram_quantile does; the +Inf bucket answers with the largest bound."""
    counts = list(buckets)
    total = sum(counts)
    if total == 0:
        return 0
    rank = q * total
    seen = 0
    for index, count in enumerate(counts):
        if count and seen + count >= rank:
            if index >= len(LATENCY_BOUNDS_US):
                return LATENCY_BOUNDS_US[-1]
            lower = LATENCY_BOUNDS_US[index - 1] if index else 0
            upper = LATENCY_BOUNDS_US[index]
            return int(lower + (upper - lower) * (rank - seen) / count)
        seen += count
    return LATENCY_BOUNDS_US[-1]


def latency_figures(cells: Mapping[Cell, int]) -> tuple[LatencyFigures, ...]:
    out: list[LatencyFigures] = []
    for name, key in sorted(cells):
        if name != "latency_count":
            continue
        count = cells[(name, key)]
        if count <= 0:
            continue
        buckets = tuple(
            cells.get(("latency_bucket", f"{key}|{i}"), 0)
            for i in range(len(LATENCY_BOUNDS_US) + 1)
        )
        channel, stage = key.split("|", 1)
        out.append(LatencyFigures(
            channel, stage, count, cells.get(("latency_sum_us", key), 0) // count,
            quantile_us(buckets, Fraction(1, 2)), quantile_us(buckets, Fraction(9, 10)),
            quantile_us(buckets, Fraction(99, 100)), buckets,
        ))
    return tuple(out)


def ratio(part: int, whole: int) -> Fraction | None:
    return None if whole == 0 else Fraction(part, whole)


def pool_figures(
    config: FundpoolConfig, pool: PoolConfig, rates: RateSource, cells: Mapping[Cell, int],
    series: Mapping[SeriesKey, int], *, at_us: int,
) -> PoolFigures:
    view = pool_view(None, config, pool, rates, balances=balances_of(cells))
    available_ratio: dict[str, Fraction | None] = {
        a.asset.code: ratio(a.total.available, a.total.total) for a in view.assets
    }
    available_ratio["*"] = ratio(view.reporting_total.available, view.reporting_total.total)
    states = {key: value for (name, key), value in cells.items() if name == "payments"}
    in_flight_amount: dict[str, int] = {}
    for (name, key), value in cells.items():
        if name == "payments_amount":
            state, asset = key.split("|", 1)
            if state in IN_FLIGHT_STATES:
                in_flight_amount[asset] = in_flight_amount.get(asset, 0) + value
    by_channel_state: dict[tuple[str, str], int] = {}
    for (name, key), value in cells.items():
        if name == "payments_channel" and value:
            state, channel = key.split("|", 1)
            by_channel_state[(channel, state)] = value
    depth = {
        (a.asset.code, channel): figures.available
        for a in view.assets for channel, figures in a.by_channel.items()
    }
    fee_income: dict[str, list[tuple[int, int]]] = {}
    for (metric, res, bucket), value in sorted(series.items()):
        if res == "h" and metric.startswith("fee|") and bucket > at_us - DAY_US:
            fee_income.setdefault(metric[4:], []).append((bucket, value))
    return PoolFigures(
        pool=pool.id,
        at_us=at_us,
        view=view,
        available_ratio=available_ratio,
        payments_by_state=dict(sorted(states.items())),
        pending_count=sum(v for s, v in states.items() if s in PENDING_STATES),
        failed_count=states.get("failed", 0),
        returned_count=states.get("returned", 0),
        in_flight_count=sum(v for s, v in states.items() if s in IN_FLIGHT_STATES),
        in_flight_amount=dict(sorted(in_flight_amount.items())),
        by_channel_state=dict(sorted(by_channel_state.items())),
        depth=depth,
        latency=latency_figures(cells),
        events={key: value for (name, key), value in sorted(cells.items()) if name == "events"},
        fee_income=fee_income,
        approval_wait_buckets=approval_wait_buckets(cells),
        approval_waiting_since_us=oldest_waiting_since_us(series),
    )


def approval_wait_buckets(cells: Mapping[Cell, int]) -> tuple[int, ...]:
    """The histogram of waits from a request for approval to the approval (count per
    LATENCY_BOUNDS_US bucket, +Inf last), every approval since the projection began."""
    return tuple(cells.get(("approval_wait_bucket", str(i)), 0)
                 for i in range(len(LATENCY_BOUNDS_US) + 1))


def oldest_waiting_since_us(series: Mapping[SeriesKey, int]) -> int | None:
    """When the payment that has waited longest for an approver began to wait, from the
    `approvals_waiting` series (projection.py); None when none waits. Exact to the second
    for two hours, to the minute for three days, to the hour beyond (the retentions)."""
    by_res: dict[str, list[tuple[int, int]]] = {"s": [], "m": [], "h": []}
    for (metric, res, bucket), value in series.items():
        if metric == APPROVALS_WAITING and value > 0:
            by_res[res].append((bucket, value))
    if not by_res["h"]:
        return None
    since = min(by_res["h"])[0]
    width = RESOLUTIONS["h"]
    for res in ("m", "s"):
        inside = [b for b, _ in by_res[res] if since <= b < since + width]
        if not inside:
            break  # pruned at this resolution: the coarser bucket's start stands
        since, width = min(inside), RESOLUTIONS[res]
    return since


def window_sum(series: Mapping[SeriesKey, int], metric: str, *, since_us: int, until_us: int,
               res: str = "m") -> int:
    """The sum of a counter metric over [since_us, until_us) at resolution `res`."""
    return sum(
        value for (m, r, bucket), value in series.items()
        if m == metric and r == res and since_us <= bucket < until_us
    )


def counter_series(series: Mapping[SeriesKey, int], metric: str, *, res: str, since_us: int,
                   until_us: int) -> list[tuple[int, int]]:
    """(bucket start, value) of a counter, with empty buckets as 0, oldest first."""
    width = RESOLUTIONS[res]
    start = since_us - since_us % width
    return [
        (bucket, series.get((metric, res, bucket), 0))
        for bucket in range(start, until_us, width)
    ]


def gauge_series(series: Mapping[SeriesKey, int], metric: str, *, res: str, since_us: int,
                 until_us: int) -> list[tuple[int, int]]:
    """(bucket start, value) of a gauge, each empty bucket carrying the last value before it
    forward (a balance that did not change kept its value), oldest first."""
    width = RESOLUTIONS[res]
    start = since_us - since_us % width
    before = [
        (bucket, value) for (m, r, bucket), value in series.items()
        if m == metric and r == res and bucket < start
    ]
    last = max(before)[1] if before else 0
    points: list[tuple[int, int]] = []
    for bucket in range(start, until_us, width):
        last = series.get((metric, res, bucket), last)
        points.append((bucket, last))
    return points


def turnover(series: Mapping[SeriesKey, int], asset: str, *, at_us: int,
             window_us: int = DAY_US) -> Turnover:
    """Turnover of `asset` over the window ending at `at_us`, from minute buckets."""
    since = at_us - window_us
    outflow = window_sum(series, f"outflow|{asset}", since_us=since, until_us=at_us)
    inflow = window_sum(series, f"inflow|{asset}", since_us=since, until_us=at_us)
    points = gauge_series(series, f"total|{asset}", res="m", since_us=since, until_us=at_us)
    average = sum(v for _, v in points) // len(points) if points else 0
    days = Fraction(window_us, DAY_US)
    return Turnover(
        asset, window_us, outflow, inflow, average,
        ratio(outflow, average),
        None if outflow == 0 else days * average / outflow,
        None if inflow == 0 else days * average / inflow,
    )


def heatmap(
    series: Mapping[SeriesKey, int], config: FundpoolConfig, pool: PoolConfig,
    rates: RateSource, *, at_us: int, hours: int = 24,
) -> tuple[list[int], list[str], list[list[int]]]:
    """Balance changes per hour x channel over the last `hours`, in the reporting currency's
    minor units (each asset converted at the pool's rates; an asset without a rate is left
    out, as in the pool view): (hour starts, channels, rows[hour][channel])."""
    reporting = config.asset(pool.reporting_currency)
    end = at_us - at_us % HOUR_US + HOUR_US
    starts = list(range(end - hours * HOUR_US, end, HOUR_US))
    channels = list(pool.channels)
    index = {start: i for i, start in enumerate(starts)}
    rows = [[0] * len(channels) for _ in starts]
    for (metric, res, bucket), value in series.items():
        if res != "h" or not metric.startswith("flow|") or bucket not in index:
            continue
        _, channel, asset = metric.split("|", 2)
        if channel not in channels:
            continue
        rate = rates.rate(asset, reporting.code)
        if rate is None:
            continue
        rows[index[bucket]][channels.index(channel)] += convert_minor(
            value, config.asset(asset), reporting, rate)
    return starts, channels, rows
