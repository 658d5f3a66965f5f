"""The figures a threshold rule may name (`figure:` in the rules file), and their values.

A figure is one of a pool's `PoolFigures` at one instant, exact; unlike a KPI it has no
window and no default alert.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction

from fundpool.monitoring.kpis import KPIS, KpiContext, KpiValue, units
from fundpool.monitoring.projection import SECOND_US


@dataclass(frozen=True, slots=True)
class FigureSpec:
    """A named figure of `PoolFigures`: `kind` is ratio, amount (in whole units of the asset),
    count or seconds."""

    name: str
    kind: str
    description: str
    takes_stage: bool = False

    def parse_params(self, given: Mapping[str, object]) -> dict[str, object]:
        known = ["stage"] if self.takes_stage else []
        out: dict[str, object] = {"stage": "end_to_end"} if self.takes_stage else {}
        for name, raw in given.items():
            if name not in known:
                raise ValueError(f"figure {self.name} has no parameter {name!r}"
                                 + (f"; its parameters: {', '.join(known)}" if known
                                    else "; it takes no parameters"))
            out[name] = KPIS["settlement_latency_p99"].param("stage").parse(raw)
        return out


FIGURES: dict[str, FigureSpec] = {f.name: f for f in (
    FigureSpec("available_ratio", "ratio", "available / TOTAL, per asset and for the pool"),
    FigureSpec("depth", "amount", "available per asset and channel"),
    FigureSpec("available", "amount", "available per asset"),
    FigureSpec("total", "amount", "TOTAL per asset"),
    FigureSpec("in_flight_amount", "amount", "amount of payments in flight, per asset"),
    FigureSpec("pending_count", "count", "payments waiting (initiated … pending approval)"),
    FigureSpec("failed_count", "count", "payments in the failed state"),
    FigureSpec("returned_count", "count", "payments in the returned state"),
    FigureSpec("in_flight_count", "count", "payments approved, submitted or cleared"),
    FigureSpec("latency_p50", "seconds", "median latency of a stage, per channel", True),
    FigureSpec("latency_p90", "seconds", "90th percentile latency of a stage, per channel",
               True),
    FigureSpec("latency_p99", "seconds", "99th percentile latency of a stage, per channel",
               True),
    FigureSpec("lag_events", "count", "events of the pool not yet applied to its projection"),
)}


def figure_values(name: str, ctx: KpiContext, params: Mapping[str, object],
                  lag_events: int = 0) -> list[KpiValue]:
    """A named figure's values, one per subject, exact."""
    figures = ctx.figures
    if name == "available_ratio":
        return [KpiValue(name, v, None if k == "*" else k) for k, v in
                figures.available_ratio.items()]
    assets = {view.asset.code: view.asset for view in figures.view.assets}
    if name == "depth":
        return [KpiValue(name, units(assets[a], v), a, c) for (a, c), v in
                figures.depth.items()]
    if name in ("available", "total"):
        return [KpiValue(name, units(view.asset, getattr(view.total, name)), view.asset.code)
                for view in figures.view.assets]
    if name == "in_flight_amount":
        return [KpiValue(name, units(asset, figures.in_flight_amount.get(code, 0)), code)
                for code, asset in assets.items()]
    if name in ("pending_count", "failed_count", "returned_count", "in_flight_count"):
        return [KpiValue(name, Fraction(getattr(figures, name)))]
    if name == "lag_events":
        return [KpiValue(name, Fraction(lag_events))]
    if name.startswith("latency_p"):
        field_name = f"{name[len('latency_'):]}_us"
        stage = params.get("stage", "end_to_end")
        return [KpiValue(name, Fraction(getattr(f, field_name), SECOND_US), channel=f.channel)
                for f in figures.latency if f.stage == stage and f.count > 0]
    raise KeyError(name)

