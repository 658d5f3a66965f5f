"""A pool's live figures as a JSON document: what `fundpool monitor show --json` and the API's
`/v1/monitoring/pools/{pool}/figures` print."""

from __future__ import annotations

from fundpool.monitoring.figures import PoolFigures
from fundpool.monitoring.kpis import decimal_text
from fundpool.pool.config import FundpoolConfig
from fundpool.pool.docs import view_doc


def figures_doc(figures: PoolFigures, config: FundpoolConfig) -> dict[str, object]:
    assets = {a.code: a for a in config.assets}

    def amount(asset: str, value: int) -> str:
        known = assets.get(asset)
        return str(value) if known is None else known.format(value)

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
        "depth": [
            {"asset": a, "channel": c, "available": amount(a, v)}
            for (a, c), v in figures.depth.items()
        ],
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
    }
