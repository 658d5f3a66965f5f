"""A pool's live figures as a JSON document: what `fundpool monitor show --json` and the API's
`/v1/monitoring/pools/{pool}/figures` print.

Each depth item carries the channel's health (`status`: healthy, low or critical; see
figures.py `depth_status`) and, when the configuration gives them, its `min_depth` and
`low_depth`, so every reader shows the same status."""

from __future__ import annotations

from fractions import Fraction

from fundpool.monitoring.figures import ChannelHealth, PoolFigures, channel_health, quantile_us
from fundpool.monitoring.kpis import decimal_text
from fundpool.monitoring.projection import SECOND_US
from fundpool.pool.config import FundpoolConfig
from fundpool.pool.docs import view_doc


def figures_doc(figures: PoolFigures, config: FundpoolConfig) -> dict[str, object]:
    assets = {a.code: a for a in config.assets}

    def amount(asset: str, value: int) -> str:
        known = assets.get(asset)
        return str(value) if known is None else known.format(value)

    def depth(health: ChannelHealth) -> dict[str, str]:
        """Available, health status, and the configured depths when there are any (all
        text: the API's depth items are string maps)."""
        item = {"asset": health.asset, "channel": health.channel,
                "available": amount(health.asset, health.available), "status": health.status}
        if health.depth is not None:
            item["min_depth"] = amount(health.asset, health.depth.min_minor)
            item["low_depth"] = amount(health.asset, health.depth.low_minor)
        return item

    return {
        "pool": figures.pool,
        "at_us": figures.at_us,
        "view": view_doc(figures.view),
        "available_ratio": {k: decimal_text(v) for k, v in figures.available_ratio.items()},
        "payments_by_state": figures.payments_by_state,
        "pending": figures.pending_count,
        "failed": figures.failed_count,
        "returned": figures.returned_count,
        "by_channel_state": [
            {"channel": channel, "state": state, "count": count}
            for (channel, state), count in sorted(figures.by_channel_state.items())
        ],
        "in_flight": {
            "count": figures.in_flight_count,
            "amount": {a: amount(a, v) for a, v in figures.in_flight_amount.items()},
        },
        "depth": [depth(health) for health in channel_health(config, figures)],
        "latency": [
            {"channel": f.channel, "stage": f.stage, "count": f.count,
             "p50_ms": f.p50_us / 1000, "p90_ms": f.p90_us / 1000, "p99_ms": f.p99_us / 1000}
            for f in figures.latency
        ],
        "fee_income_hourly": {
            a: [{"hour_us": h, "amount": amount(a, v)} for h, v in points]
            for a, points in figures.fee_income.items()
        },
        "events": figures.events,
        "approvals": approvals_doc(figures),
    }


def approvals_doc(figures: PoolFigures) -> dict[str, object]:
    """Payments waiting for an approver: how many, since when the longest has waited and for
    how many seconds, and the p50/p95 wait from request to approval (seconds; null before any
    approval). What the console's overview shows as one tile."""
    since = figures.approval_waiting_since_us
    buckets = figures.approval_wait_buckets
    approved = sum(buckets)

    def seconds(micros: int) -> str | None:
        return decimal_text(Fraction(micros, SECOND_US), 3)

    return {
        "waiting": figures.approval_count,
        "oldest_since_us": since,
        "oldest_s": "0.000" if since is None else seconds(max(figures.at_us - since, 0)),
        "approved": approved,
        "p50_s": seconds(quantile_us(buckets, Fraction(1, 2))) if approved else None,
        "p95_s": seconds(quantile_us(buckets, Fraction(95, 100))) if approved else None,
    }
