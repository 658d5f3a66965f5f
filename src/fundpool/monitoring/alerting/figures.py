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
    # The labels its values carry (`KpiValue.labels`): a subject naming any other can never
    # match one, and `pool` matches only a value with none (`pool_value`).
    labels: frozenset[str] = frozenset()
    pool_value: bool = True

    def subject_problem(self, filters: Mapping[str, str] | None) -> str | None:
        """Why a rule's subject filter can never match a value of this figure, or None."""
        if filters is None:
            return None
        if not filters and not self.pool_value:
            return (f"figure {self.name} has no value for the whole pool; name its "
                    f"{' and '.join(sorted(self.labels))} or use '*'")
        extra = sorted(set(filters) - self.labels)
        if extra:
            given = ", ".join(extra)
            return (f"figure {self.name} has no value per {given}"
                    + (f"; its values are per {' and '.join(sorted(self.labels))}"
                       if self.labels else "; it has one value, for the pool (subject 'pool')"))
        return None

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


_ASSET = frozenset({"asset"})
_ASSET_CHANNEL = frozenset({"asset", "channel"})
_CHANNEL = frozenset({"channel"})

FIGURES: dict[str, FigureSpec] = {f.name: f for f in (
    FigureSpec("available_ratio", "ratio", "available / TOTAL, per asset and for the pool",
               labels=_ASSET),
    FigureSpec("depth", "amount", "available per asset and channel", labels=_ASSET_CHANNEL,
               pool_value=False),
    FigureSpec("min_depth_cover", "ratio",
               "available / min_depth per asset and channel that has a min_depth configured "
               "(under 1: critical)", labels=_ASSET_CHANNEL, pool_value=False),
    FigureSpec("low_depth_cover", "ratio",
               "available / low_depth per asset and channel that has a low_depth configured "
               "(under 1: low)", labels=_ASSET_CHANNEL, pool_value=False),
    FigureSpec("available", "amount", "available per asset", labels=_ASSET, pool_value=False),
    FigureSpec("total", "amount", "TOTAL per asset", labels=_ASSET, pool_value=False),
    FigureSpec("in_flight_amount", "amount", "amount of payments in flight, per asset",
               labels=_ASSET, pool_value=False),
    FigureSpec("pending_count", "count", "payments waiting (initiated … pending approval)"),
    FigureSpec("approval_count", "count", "payments waiting for an approver "
               "(pending_approval)"),
    FigureSpec("failed_count", "count", "payments in the failed state"),
    FigureSpec("returned_count", "count", "payments in the returned state"),
    FigureSpec("in_flight_count", "count", "payments approved, submitted or cleared"),
    FigureSpec("latency_p50", "seconds", "median latency of a stage, per channel", True,
               labels=_CHANNEL, pool_value=False),
    FigureSpec("latency_p90", "seconds", "90th percentile latency of a stage, per channel",
               True, labels=_CHANNEL, pool_value=False),
    FigureSpec("latency_p99", "seconds", "99th percentile latency of a stage, per channel",
               True, labels=_CHANNEL, pool_value=False),
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
    if name in ("min_depth_cover", "low_depth_cover"):
        return _depth_cover(ctx, name)
    if name in ("available", "total"):
        return [KpiValue(name, units(view.asset, getattr(view.total, name)), view.asset.code)
                for view in figures.view.assets]
    if name == "in_flight_amount":
        return [KpiValue(name, units(asset, figures.in_flight_amount.get(code, 0)), code)
                for code, asset in assets.items()]
    if name in ("pending_count", "failed_count", "returned_count", "in_flight_count"):
        return [KpiValue(name, Fraction(getattr(figures, name)))]
    if name == "approval_count":
        return [KpiValue(name, Fraction(figures.approval_count))]
    if name == "lag_events":
        return [KpiValue(name, Fraction(lag_events))]
    if name.startswith("latency_p"):
        field_name = f"{name[len('latency_'):]}_us"
        stage = params.get("stage", "end_to_end")
        return [KpiValue(name, Fraction(getattr(f, field_name), SECOND_US), channel=f.channel)
                for f in figures.latency if f.stage == stage and f.count > 0]
    raise KeyError(name)



def _depth_cover(ctx: KpiContext, name: str) -> list[KpiValue]:
    """available / the configured depth, per asset and channel that has one (a depth of 0,
    not configured, has nothing to compare with: that subject has no value)."""
    channels = {c.id: c for c in ctx.config.channels}
    out: list[KpiValue] = []
    for (asset, channel), available in ctx.figures.depth.items():
        known = channels.get(channel)
        depth = None if known is None else known.depth_for(asset)
        if depth is None:
            continue
        bound = depth.min_minor if name == "min_depth_cover" else depth.low_minor
        if bound > 0:
            out.append(KpiValue(name, Fraction(available, bound), asset, channel))
    return out
