"""KPI templates: a shipped library of named, documented treasury KPIs (docs/monitoring-alerts.md).

Each template says what it measures (titles in English and 简体中文, a formula, a unit), the
parameters a rules file may tune (with defaults), the alert it suggests (threshold, severity,
direction, how long the condition must hold) and how a dashboard should draw it (panel hint).
Its `compute` reads one pool at one instant — the `PoolFigures` and the projection's series a
`KpiContext` holds — and returns one `KpiValue` per subject (the pool, an asset, a channel).

Values are exact `Fraction`s. A KPI that has nothing to measure (no outflow in the window, no
payment settled through a channel yet, an asset without a rate) is `None` with a note saying
why, never a made-up 0. Amounts of different assets are never added: per-asset KPIs are computed
per asset, and pool-wide ones in the reporting currency at the pool's exact rates, leaving out
(and naming) an asset without a rate, as the pool view does.

Windows are read from the projection's counter series at the finest resolution whose retention
covers them (seconds up to 2 h, minutes up to 3 days, hours beyond): the window is the buckets
that start in [at − window, at), so its edges are exact to one bucket of that resolution.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Any

from fundpool.core.money import Asset
from fundpool.monitoring.figures import (
    PoolFigures,
    Turnover,
    pool_figures,
    quantile_us,
    turnover,
)
from fundpool.monitoring.projection import (
    LATENCY_BOUNDS_US,
    RETENTION_US,
    SECOND_US,
    SeriesKey,
)
from fundpool.payments.model import PaymentKind
from fundpool.pool.config import FundpoolConfig, PoolConfig
from fundpool.pool.rates import RateSource

MINUTE_US = 60 * SECOND_US
HOUR_US = 60 * MINUTE_US
DAY_US = 24 * HOUR_US
WEEK_US = 7 * DAY_US
BPS_PER_UNIT = 10_000
DURATION_MAX_US = 366 * DAY_US  # no window or wait in a rules file is longer than a year
# Turnover averages the TOTAL gauge over minute buckets, which are kept 3 days.
TURNOVER_WINDOW_MAX_US = RETENTION_US["m"]
SERIES_WINDOW_MAX_US = RETENTION_US["h"]  # 90 days of hour buckets
KINDS = tuple(kind.value for kind in PaymentKind)
SEVERITIES = ("info", "warning", "critical")
OPS = ("<", "<=", ">", ">=", "==", "!=")
POOL_SUBJECT = "pool"

_DURATION_UNITS_US = {"ms": 1_000, "s": SECOND_US, "m": MINUTE_US, "h": HOUR_US, "d": DAY_US,
                      "w": WEEK_US}
_DURATION_PART = re.compile(r"(\d+)(ms|s|m|h|d|w)")
_STAGE = re.compile(r"^[a-z][a-z_]{0,31}$")


# --- durations ---------------------------------------------------------------------------------


def parse_duration_us(value: object) -> int:
    """A duration from a rules file, in µs: an integer of seconds, or text of whole units
    (`90s`, `5m`, `24h`, `3d`, `1w`, `1h30m`, `250ms`). Raises ValueError saying what is
    wrong: a negative duration, an unknown unit, more than a year."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or text such as '5m', '24h', '3d'")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"a duration is never negative (got {value})")
        micros = value * SECOND_US
    elif isinstance(value, str):
        text = value.strip().lower()
        if text.startswith("-"):
            raise ValueError(f"a duration is never negative (got {value!r})")
        parts = _DURATION_PART.findall(text)
        if not text or "".join(n + u for n, u in parts) != text:
            raise ValueError(
                f"{value!r} is not a duration: use whole units ms, s, m, h, d, w "
                "('90s', '5m', '24h', '3d', '1h30m') or an integer of seconds"
            )
        micros = sum(int(n) * _DURATION_UNITS_US[u] for n, u in parts)
    else:
        raise ValueError("a duration is a number of seconds or text such as '5m', '24h', '3d'")
    if micros > DURATION_MAX_US:
        raise ValueError(f"{value!r} is longer than the longest duration allowed (366d)")
    return micros


def format_duration(micros: int) -> str:
    """The shortest exact text of a duration: 3600000000 -> '1h', 5400000000 -> '90m'."""
    if micros == 0:
        return "0s"
    for unit in ("w", "d", "h", "m", "s", "ms"):
        width = _DURATION_UNITS_US[unit]
        if micros % width == 0:
            return f"{micros // width}{unit}"
    return f"{micros}us"


# --- values ------------------------------------------------------------------------------------


def decimal_text(value: Fraction | Decimal | int | None, places: int = 6) -> str | None:
    """A value as decimal text rounded half to even at `places`, trailing zeros kept."""
    if value is None:
        return None
    scaled = round(Fraction(value) * 10**places)
    sign = "-" if scaled < 0 else ""
    digits = str(abs(scaled)).rjust(places + 1, "0")
    if places == 0:
        return f"{sign}{digits}"
    return f"{sign}{digits[:-places]}.{digits[-places:]}"


def trimmed_text(value: Fraction | Decimal | int | None, places: int = 6) -> str | None:
    """`decimal_text` without trailing zeros: 0.25, 14.4, 3."""
    text = decimal_text(value, places)
    if text is None or "." not in text:
        return text
    return text.rstrip("0").rstrip(".")


def subject_of(asset: str | None = None, channel: str | None = None) -> str:
    """What a value (and an alert) is about: `pool`, `asset:USD`, `channel:bank-a`, or
    `asset:USD,channel:bank-a` for one asset on one channel."""
    parts = ([f"asset:{asset}"] if asset is not None else []) + (
        [f"channel:{channel}"] if channel is not None else [])
    return ",".join(parts) or POOL_SUBJECT


@dataclass(frozen=True, slots=True)
class KpiValue:
    """One KPI of one subject at one instant. `value` is None when there is nothing to
    measure; `note` then says why."""

    kpi: str
    value: Fraction | None
    asset: str | None = None  # None: the pool as a whole (in the reporting currency)
    channel: str | None = None
    note: str | None = None

    @property
    def subject(self) -> str:
        return subject_of(self.asset, self.channel)

    def labels(self) -> dict[str, str]:
        """The subject as metric labels (absent ones left out)."""
        out: dict[str, str] = {}
        if self.asset is not None:
            out["asset"] = self.asset
        if self.channel is not None:
            out["channel"] = self.channel
        return out

    def to_dict(self, places: int = 6) -> dict[str, object]:
        return {"kpi": self.kpi, "subject": self.subject, **self.labels(),
                "value": decimal_text(self.value, places), "note": self.note}


# --- templates ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Param:
    """A tunable parameter of a KPI. `kind`: duration (µs; text like '24h' in a file), ratio
    (a number in (0, 1)), or choice (one of `choices`; `stage` takes any action name)."""

    name: str
    kind: str
    default: object
    description: str
    choices: tuple[str, ...] = ()
    minimum_us: int = SECOND_US
    maximum_us: int = SERIES_WINDOW_MAX_US

    def parse(self, value: object) -> object:
        """The parameter's value from a rules file; ValueError says what is wrong."""
        if self.kind == "duration":
            micros = parse_duration_us(value)
            if not self.minimum_us <= micros <= self.maximum_us:
                raise ValueError(
                    f"{self.name} must be between {format_duration(self.minimum_us)} and "
                    f"{format_duration(self.maximum_us)} (got {value!r})")
            return micros
        if self.kind == "ratio":
            if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
                raise ValueError(f"{self.name} is a number between 0 and 1")
            try:
                ratio = Fraction(Decimal(str(value)))
            except (ArithmeticError, ValueError):
                raise ValueError(f"{self.name} is a number between 0 and 1 "
                                 f"(got {value!r})") from None
            if not 0 < ratio < 1:
                raise ValueError(f"{self.name} must be between 0 and 1, exclusive "
                                 f"(got {value!r})")
            return ratio
        if not isinstance(value, str):
            raise ValueError(f"{self.name} is text: one of {list(self.choices)}")
        if self.name == "stage":
            if not _STAGE.match(value):
                raise ValueError(f"stage is an action name such as 'end_to_end', 'settle' "
                                 f"(got {value!r})")
            return value
        if value not in self.choices:
            raise ValueError(f"{self.name} is one of {list(self.choices)} (got {value!r})")
        return value

    def default_text(self) -> str:
        if self.kind == "duration":
            assert isinstance(self.default, int)
            return format_duration(self.default)
        if self.kind == "ratio":
            assert isinstance(self.default, Fraction)
            return str(Decimal(self.default.numerator) / Decimal(self.default.denominator))
        return str(self.default)


@dataclass(frozen=True, slots=True)
class AlertDefault:
    """The alert a KPI suggests: fire when `value op threshold` holds for `for_us`."""

    op: str
    threshold: Decimal
    severity: str
    for_us: int = 0

    @property
    def direction(self) -> str:
        return "above" if self.op in (">", ">=") else "below"

    def to_dict(self) -> dict[str, object]:
        return {"op": self.op, "value": str(self.threshold), "severity": self.severity,
                "for": format_duration(self.for_us), "direction": self.direction}


@dataclass(frozen=True, slots=True)
class Panel:
    """How a dashboard should draw a KPI: a Grafana panel type (stat, gauge, timeseries,
    bargauge) and unit id (percentunit, d, s, none, or `suffix:…`), with bounds when the KPI
    has them."""

    type: str
    unit: str
    minimum: Decimal | None = None
    maximum: Decimal | None = None
    decimals: int = 2

    def to_dict(self) -> dict[str, object]:
        return {"type": self.type, "unit": self.unit,
                "min": None if self.minimum is None else str(self.minimum),
                "max": None if self.maximum is None else str(self.maximum),
                "decimals": self.decimals}


Compute = Callable[["KpiContext", Mapping[str, Any]], list[KpiValue]]


@dataclass(frozen=True, slots=True)
class KpiTemplate:
    id: str
    title_en: str
    title_zh: str
    description: str
    formula: str
    unit: str  # ratio, days, seconds, bps
    scope: str  # what one value is about: pool+asset, asset, channel
    params: tuple[Param, ...]
    alert: AlertDefault
    panel: Panel
    compute: Compute = field(repr=False)

    def param(self, name: str) -> Param:
        for param in self.params:
            if param.name == name:
                return param
        raise KeyError(name)

    def defaults(self) -> dict[str, object]:
        return {p.name: p.default for p in self.params}

    def parse_params(self, given: Mapping[str, object] | None) -> dict[str, object]:
        """The template's defaults with `given` (as written in a rules file) parsed over them.
        ValueError names the parameter at fault."""
        values = self.defaults()
        for name, raw in (given or {}).items():
            known = [p.name for p in self.params]
            if name not in known:
                raise ValueError(
                    f"KPI {self.id} has no parameter {name!r}"
                    + (f"; its parameters: {', '.join(known)}" if known else
                       "; it takes no parameters"))
            values[name] = self.param(name).parse(raw)
        return values

    def evaluate(self, context: KpiContext,
                 params: Mapping[str, object] | None = None) -> list[KpiValue]:
        """The KPI's values at the context's instant; `params` already parsed (defaults for
        those missing)."""
        return self.compute(context, {**self.defaults(), **(params or {})})

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.id, "title": {"en": self.title_en, "zh-CN": self.title_zh},
            "description": self.description, "formula": self.formula, "unit": self.unit,
            "scope": self.scope,
            "params": [{"name": p.name, "kind": p.kind, "default": p.default_text(),
                        "description": p.description, **({"choices": list(p.choices)}
                                                         if p.choices else {})}
                       for p in self.params],
            "alert": self.alert.to_dict(), "panel": self.panel.to_dict(),
        }


# --- reading series quickly ---------------------------------------------------------------------


def resolution_for(window_us: int) -> str:
    """The finest resolution whose retention covers a window."""
    for res in ("s", "m", "h"):
        if window_us <= RETENTION_US[res]:
            return res
    return "h"


class SeriesIndex:
    """The projection's series by (metric, resolution), sorted with prefix sums, so a window's
    sum is two binary searches instead of a scan of every bucket of every metric."""

    def __init__(self, series: Mapping[SeriesKey, int]) -> None:
        grouped: dict[tuple[str, str], list[tuple[int, int]]] = {}
        for (metric, res, bucket), value in series.items():
            grouped.setdefault((metric, res), []).append((bucket, value))
        self._starts: dict[tuple[str, str], list[int]] = {}
        self._sums: dict[tuple[str, str], list[int]] = {}
        for key, points in grouped.items():
            points.sort()
            sums = [0]
            for _, value in points:
                sums.append(sums[-1] + value)
            self._starts[key] = [bucket for bucket, _ in points]
            self._sums[key] = sums
        self.metrics = frozenset(metric for metric, _ in grouped)

    def window_sum(self, metric: str, *, since_us: int, until_us: int,
                   res: str | None = None) -> int:
        """The sum of a counter over the buckets starting in [since_us, until_us)."""
        res = res or resolution_for(until_us - since_us)
        starts = self._starts.get((metric, res))
        if not starts:
            return 0
        sums = self._sums[(metric, res)]
        return sums[bisect_left(starts, until_us)] - sums[bisect_left(starts, since_us)]

    def payments(self, kind: str, state: str, *, since_us: int, until_us: int) -> int:
        """Transitions of payments of `kind` (`*`: every kind) into `state` in the window."""
        kinds = KINDS if kind == "*" else (kind,)
        res = resolution_for(until_us - since_us)
        return sum(self.window_sum(f"payments|{k}|{state}", since_us=since_us,
                                   until_us=until_us, res=res) for k in kinds)


# --- the context a KPI reads ---------------------------------------------------------------------


@dataclass(slots=True)
class KpiContext:
    """One pool at one instant: its figures, its projection's series, and the pool's
    configuration and rates (for pool-wide values in the reporting currency)."""

    config: FundpoolConfig
    pool: PoolConfig
    figures: PoolFigures
    series: Mapping[SeriesKey, int]
    rates: RateSource
    _index: SeriesIndex | None = None
    _turnover: dict[tuple[str, int], Turnover] = field(default_factory=dict)

    @classmethod
    def of(cls, config: FundpoolConfig, pool: PoolConfig, cells: Mapping[Any, int],
           series: Mapping[SeriesKey, int], *, at_us: int,
           rates: RateSource | None = None) -> KpiContext:
        """A context from a projection's cells and series (e.g. a `Monitor.snapshot`).
        Whoever already holds the pool's `PoolFigures` builds `KpiContext(config, pool,
        figures, series, rates)` directly instead."""
        rates = config.rates_for(pool) if rates is None else rates
        figures = pool_figures(config, pool, rates, cells, series, at_us=at_us)
        return cls(config, pool, figures, series, rates)

    @property
    def at_us(self) -> int:
        return self.figures.at_us

    @property
    def index(self) -> SeriesIndex:
        if self._index is None:
            self._index = SeriesIndex(self.series)
        return self._index

    def assets(self) -> list[Asset]:
        return [view.asset for view in self.figures.view.assets]

    def window(self, metric: str, window_us: int) -> int:
        return self.index.window_sum(metric, since_us=self.at_us - window_us,
                                     until_us=self.at_us)

    def turnover(self, asset: str, window_us: int) -> Turnover:
        key = (asset, window_us)
        if key not in self._turnover:
            self._turnover[key] = turnover(self.series, asset, at_us=self.at_us,
                                           window_us=window_us)
        return self._turnover[key]

    def in_reporting(self, asset: Asset, amount: Fraction) -> Fraction | None:
        """An amount of `asset` (minor units, possibly fractional) in minor units of the
        reporting currency, exactly (no rounding); None without a rate."""
        reporting = self.figures.view.reporting_currency
        rate = self.rates.rate(asset.code, reporting.code)
        if rate is None:
            return None
        return amount * rate * Fraction(10**reporting.scale, 10**asset.scale)


def units(asset: Asset, minor: int) -> Fraction:
    """Minor units as a Fraction of whole units of the asset (exact)."""
    return Fraction(minor, 10**asset.scale)


# --- the KPIs ------------------------------------------------------------------------------------

_WINDOW_24H = Param("window", "duration", DAY_US, "trailing window the figure is measured over")


def _liquidity_coverage(ctx: KpiContext, p: Mapping[str, Any]) -> list[KpiValue]:
    window, horizon = int(p["window"]), int(p["horizon"])
    scale = Fraction(horizon, window)
    out: list[KpiValue] = []
    available_reporting = Fraction(0)
    expected_reporting = Fraction(0)
    missing: list[str] = []
    for view in ctx.figures.view.assets:
        code = view.asset.code
        expected = ctx.window(f"outflow|{code}", window) * scale
        available = view.total.available
        if expected == 0:
            out.append(KpiValue("liquidity_coverage", None, code,
                                note="no outflow in the window"))
        else:
            out.append(KpiValue("liquidity_coverage", Fraction(available) / expected, code))
        converted_expected = ctx.in_reporting(view.asset, expected)
        if view.reporting is None or converted_expected is None:
            missing.append(code)
            continue
        available_reporting += view.reporting.available
        expected_reporting += converted_expected
    left_out = f"leaves out {', '.join(missing)}: no rate" if missing else None
    if expected_reporting == 0:
        why = "no outflow in the window" + (f"; {left_out}" if left_out else "")
        out.insert(0, KpiValue("liquidity_coverage", None, note=why))
    else:
        out.insert(0, KpiValue("liquidity_coverage", available_reporting / expected_reporting,
                               note=left_out))
    return out


def _available_ratio(ctx: KpiContext, _p: Mapping[str, Any]) -> list[KpiValue]:
    out: list[KpiValue] = []
    for key, value in ctx.figures.available_ratio.items():
        asset = None if key == "*" else key
        note = "the pool holds nothing" if value is None and asset is None else (
            "no balance in this asset" if value is None else None)
        out.append(KpiValue("available_ratio", value, asset, note=note))
    out.sort(key=lambda v: (v.asset is not None, v.asset or ""))
    return out


def _turnover_days(ctx: KpiContext, p: Mapping[str, Any]) -> list[KpiValue]:
    out: list[KpiValue] = []
    for asset in ctx.assets():
        t = ctx.turnover(asset.code, int(p["window"]))
        out.append(KpiValue("turnover_days", t.days, asset.code,
                            note=None if t.days is not None else "no outflow in the window"))
    return out


def _inflow_days(ctx: KpiContext, p: Mapping[str, Any]) -> list[KpiValue]:
    out: list[KpiValue] = []
    for asset in ctx.assets():
        t = ctx.turnover(asset.code, int(p["window"]))
        out.append(KpiValue("inflow_days", t.inflow_days, asset.code,
                            note=None if t.inflow_days is not None else
                            "no inflow in the window"))
    return out


def _outcomes(ctx: KpiContext, kind: str, window_us: int) -> tuple[int, int, int]:
    """(settled, failed, returned) transitions of `kind` in the window."""
    since, until = ctx.at_us - window_us, ctx.at_us
    return tuple(  # type: ignore[return-value]
        ctx.index.payments(kind, state, since_us=since, until_us=until)
        for state in ("settled", "failed", "returned")
    )


def _payment_rate(kpi: str, which: int) -> Compute:
    def compute(ctx: KpiContext, p: Mapping[str, Any]) -> list[KpiValue]:
        counts = _outcomes(ctx, str(p["kind"]), int(p["window"]))
        total = sum(counts)
        if total == 0:
            return [KpiValue(kpi, None, note="no payment outcome in the window")]
        return [KpiValue(kpi, Fraction(counts[which], total))]

    return compute


def _settlement_latency(ctx: KpiContext, p: Mapping[str, Any]) -> list[KpiValue]:
    stage, quantile = str(p["stage"]), Fraction(p["quantile"])
    seen: dict[str, KpiValue] = {}
    for figures in ctx.figures.latency:
        if figures.stage == stage and figures.count > 0:
            micros = quantile_us(figures.buckets, quantile)
            seen[figures.channel] = KpiValue("settlement_latency_p99",
                                             Fraction(micros, SECOND_US),
                                             channel=figures.channel)
    for channel in ctx.pool.channels:
        if channel not in seen:
            seen[channel] = KpiValue("settlement_latency_p99", None, channel=channel,
                                     note=f"no payment has ended the {stage} stage here yet")
    order = {c: i for i, c in enumerate(ctx.pool.channels)}
    return sorted(seen.values(), key=lambda v: (order.get(v.channel or "", len(order)),
                                                v.channel or ""))


def _fee_yield(ctx: KpiContext, p: Mapping[str, Any]) -> list[KpiValue]:
    window, volume_of = int(p["window"]), str(p["volume"])
    flows = ("outflow", "inflow") if volume_of == "both" else (volume_of,)
    out: list[KpiValue] = []
    for asset in ctx.assets():
        fees = ctx.window(f"fee|{asset.code}", window)
        volume = sum(ctx.window(f"{flow}|{asset.code}", window) for flow in flows)
        if volume == 0:
            out.append(KpiValue("fee_yield_bps", None, asset.code,
                                note=f"no {volume_of} volume in the window"))
        else:
            out.append(KpiValue("fee_yield_bps", Fraction(fees * BPS_PER_UNIT, volume),
                                asset.code))
    return out


def _shares(ctx: KpiContext, asset: str) -> tuple[list[tuple[str, int]], str | None]:
    """Each channel's positive available of `asset`, or why there is nothing to share."""
    held = [(c, v) for (a, c), v in ctx.figures.depth.items() if a == asset]
    if len(held) < 2:
        return [], "the asset is held on one channel only"
    positive = [(c, v) for c, v in held if v > 0]
    if not positive:
        return [], "no channel has available balance in this asset"
    return positive, None


def _concentration(ctx: KpiContext, _p: Mapping[str, Any]) -> list[KpiValue]:
    out: list[KpiValue] = []
    for asset in ctx.assets():
        shares, why = _shares(ctx, asset.code)
        if why is not None:
            out.append(KpiValue("channel_concentration", None, asset.code, note=why))
            continue
        total = sum(v for _, v in shares)
        channel, largest = max(shares, key=lambda s: (s[1], s[0]))
        out.append(KpiValue("channel_concentration", Fraction(largest, total), asset.code,
                            note=f"largest: {channel}"))
    return out


def _hhi(ctx: KpiContext, _p: Mapping[str, Any]) -> list[KpiValue]:
    out: list[KpiValue] = []
    for asset in ctx.assets():
        shares, why = _shares(ctx, asset.code)
        if why is not None:
            out.append(KpiValue("channel_hhi", None, asset.code, note=why))
            continue
        total = sum(v for _, v in shares)
        out.append(KpiValue("channel_hhi",
                            sum((Fraction(v, total) ** 2 for _, v in shares), Fraction(0)),
                            asset.code))
    return out


def _approval_wait_oldest(ctx: KpiContext, _p: Mapping[str, Any]) -> list[KpiValue]:
    since = ctx.figures.approval_waiting_since_us
    if since is None:
        return [KpiValue("approval_wait_oldest", None,
                         note="no payment waits for an approver")]
    return [KpiValue("approval_wait_oldest", Fraction(max(ctx.at_us - since, 0), SECOND_US))]


def _approval_wait(kpi: str) -> Compute:
    def compute(ctx: KpiContext, p: Mapping[str, Any]) -> list[KpiValue]:
        buckets = ctx.figures.approval_wait_buckets
        if not any(buckets):
            return [KpiValue(kpi, None, note="no payment has been approved yet")]
        micros = quantile_us(buckets, Fraction(p["quantile"]))
        return [KpiValue(kpi, Fraction(micros, SECOND_US))]

    return compute


_APPROVAL_WAIT_DESCRIPTION = (
    "The {q} of the wait from a payout's request for approval (it reaches pending_approval) "
    "to its approval, over every approval since the projection began, interpolated in its "
    "histogram bucket as Prometheus' histogram_quantile does.")

_KIND = Param("kind", "choice", "*", "payment kind counted (* for every kind)",
              choices=("*", *KINDS))

TEMPLATES: tuple[KpiTemplate, ...] = (
    KpiTemplate(
        id="liquidity_coverage",
        title_en="Liquidity coverage", title_zh="流动性覆盖率",
        description=(
            "How many times the available balance covers the outflows expected over the next "
            "horizon. The forecast is the trailing window's settled outflow scaled to the "
            "horizon (a naive run-rate forecast: tomorrow looks like the last 24 hours). Per "
            "asset, and for the pool in the reporting currency."),
        formula="available / (outflow[window] × horizon / window)",
        unit="ratio", scope="pool, asset",
        params=(
            Param("window", "duration", DAY_US, "trailing window of settled outflows",
                  minimum_us=MINUTE_US),
            Param("horizon", "duration", DAY_US, "how far ahead the coverage looks",
                  minimum_us=MINUTE_US),
        ),
        alert=AlertDefault("<", Decimal(1), "critical", 5 * MINUTE_US),
        panel=Panel("stat", "suffix:×", Decimal(0)),
        compute=_liquidity_coverage,
    ),
    KpiTemplate(
        id="available_ratio",
        title_en="Available ratio", title_zh="可用余额占比",
        description=(
            "The share of TOTAL that can be spent now (the rest is locked, in transit or "
            "pending settlement). Per asset, and for the pool in the reporting currency."),
        formula="available / TOTAL",
        unit="ratio", scope="pool, asset", params=(),
        alert=AlertDefault("<", Decimal("0.2"), "warning", 5 * MINUTE_US),
        panel=Panel("gauge", "percentunit", Decimal(0), Decimal(1)),
        compute=_available_ratio,
    ),
    KpiTemplate(
        id="turnover_days",
        title_en="Turnover days (DPO-like)", title_zh="资金周转天数",
        description=(
            "How many days of outflow the average TOTAL covers: the average balance over the "
            "window (minute buckets, an empty minute carrying the last value) over the daily "
            "outflow. Few days: the pool runs lean; many: idle cash."),
        formula="average TOTAL[window] / (outflow[window] / window in days)",
        unit="days", scope="asset", params=(
            Param("window", "duration", DAY_US, "trailing window of outflows and balances",
                  minimum_us=HOUR_US, maximum_us=TURNOVER_WINDOW_MAX_US),),
        alert=AlertDefault("<", Decimal(1), "warning", 15 * MINUTE_US),
        panel=Panel("timeseries", "d", Decimal(0)),
        compute=_turnover_days,
    ),
    KpiTemplate(
        id="inflow_days",
        title_en="Inflow days (DSO-like)", title_zh="入金周转天数",
        description=(
            "How many days of inflow the average TOTAL amounts to: the average balance over "
            "the daily settled deposits. Rising: deposits slow down against the balance."),
        formula="average TOTAL[window] / (inflow[window] / window in days)",
        unit="days", scope="asset", params=(
            Param("window", "duration", DAY_US, "trailing window of inflows and balances",
                  minimum_us=HOUR_US, maximum_us=TURNOVER_WINDOW_MAX_US),),
        alert=AlertDefault(">", Decimal(30), "info", HOUR_US),
        panel=Panel("timeseries", "d", Decimal(0)),
        compute=_inflow_days,
    ),
    KpiTemplate(
        id="failed_payment_rate",
        title_en="Failed payment rate", title_zh="支付失败率",
        description=(
            "Of the payments that reached an outcome in the window (settled, failed or "
            "returned), the share that failed. A rail failure that is retried elsewhere is "
            "not a failure; only a payment that ends failed is."),
        formula="failed[window] / (settled + failed + returned)[window]",
        unit="ratio", scope="pool",
        params=(Param("window", "duration", HOUR_US, "trailing window of outcomes"), _KIND),
        alert=AlertDefault(">", Decimal("0.05"), "warning", 5 * MINUTE_US),
        panel=Panel("timeseries", "percentunit", Decimal(0), Decimal(1)),
        compute=_payment_rate("failed_payment_rate", 1),
    ),
    KpiTemplate(
        id="returned_payment_rate",
        title_en="Returned payment rate", title_zh="支付退回率",
        description=(
            "Of the payments that reached an outcome in the window, the share returned "
            "(a settled payout sent back, a cleared deposit returned before settlement)."),
        formula="returned[window] / (settled + failed + returned)[window]",
        unit="ratio", scope="pool",
        params=(Param("window", "duration", DAY_US, "trailing window of outcomes"), _KIND),
        alert=AlertDefault(">", Decimal("0.02"), "warning", 15 * MINUTE_US),
        panel=Panel("timeseries", "percentunit", Decimal(0), Decimal(1)),
        compute=_payment_rate("returned_payment_rate", 2),
    ),
    KpiTemplate(
        id="settlement_latency_p99",
        title_en="Settlement latency p99", title_zh="结算时延 P99",
        description=(
            "Per channel, the 99th percentile of the time from a payment's creation to its "
            "settlement (the end_to_end stage), interpolated in its histogram bucket as "
            "Prometheus' histogram_quantile does. The histogram counts every payment since "
            "the projection began, not a window."),
        formula="histogram_quantile(quantile, latency{stage})",
        unit="seconds", scope="channel",
        params=(
            Param("stage", "choice", "end_to_end", "stage measured (an action name or "
                  "end_to_end)"),
            Param("quantile", "ratio", Fraction(99, 100), "the quantile, in (0, 1)"),
        ),
        alert=AlertDefault(">", Decimal(259_200), "warning", 15 * MINUTE_US),
        panel=Panel("bargauge", "s", Decimal(0)),
        compute=_settlement_latency,
    ),
    KpiTemplate(
        id="fee_yield_bps",
        title_en="Fee yield", title_zh="手续费收益率",
        description=(
            "Fee income earned in the window over the volume settled in it, in basis points "
            "(1 bp = 0.01%). The volume is the settled outflow by default."),
        formula="fee income[window] × 10000 / volume[window]",
        unit="bps", scope="asset",
        params=(_WINDOW_24H,
                Param("volume", "choice", "outflow", "the volume the fees are measured "
                      "against", choices=("outflow", "inflow", "both"))),
        alert=AlertDefault("<", Decimal(1), "info", HOUR_US),
        panel=Panel("timeseries", "suffix: bp", Decimal(0)),
        compute=_fee_yield,
    ),
    KpiTemplate(
        id="approval_wait_oldest",
        title_en="Oldest approval waiting", title_zh="最久待审批时长",
        description=(
            "How long the payment that has waited longest for an approver has waited, now "
            "(no value when none waits). Exact to the second for two hours, to the minute "
            "for three days, to the hour beyond."),
        formula="now - min(entered pending_approval) of the payments waiting",
        unit="seconds", scope="pool", params=(),
        alert=AlertDefault(">", Decimal(900), "warning", 0),
        panel=Panel("stat", "s", Decimal(0)),
        compute=_approval_wait_oldest,
    ),
    KpiTemplate(
        id="approval_wait_p50",
        title_en="Approval wait p50", title_zh="审批等待 P50",
        description=_APPROVAL_WAIT_DESCRIPTION.format(q="median"),
        formula="histogram_quantile(quantile, approval wait)",
        unit="seconds", scope="pool",
        params=(Param("quantile", "ratio", Fraction(1, 2), "the quantile, in (0, 1)"),),
        alert=AlertDefault(">", Decimal(300), "info", 15 * MINUTE_US),
        panel=Panel("stat", "s", Decimal(0)),
        compute=_approval_wait("approval_wait_p50"),
    ),
    KpiTemplate(
        id="approval_wait_p95",
        title_en="Approval wait p95", title_zh="审批等待 P95",
        description=_APPROVAL_WAIT_DESCRIPTION.format(q="95th percentile"),
        formula="histogram_quantile(quantile, approval wait)",
        unit="seconds", scope="pool",
        params=(Param("quantile", "ratio", Fraction(95, 100), "the quantile, in (0, 1)"),),
        alert=AlertDefault(">", Decimal(3_600), "warning", 15 * MINUTE_US),
        panel=Panel("stat", "s", Decimal(0)),
        compute=_approval_wait("approval_wait_p95"),
    ),
    KpiTemplate(
        id="channel_concentration",
        title_en="Channel concentration (largest share)", title_zh="通道集中度（最大占比）",
        description=(
            "Per asset held on two channels or more, the share of its available balance on "
            "the channel that holds the most: how much depends on one rail. A channel whose "
            "available is not positive (a drawn credit line) holds no share."),
        formula="max(available[channel]) / Σ available[channel]",
        unit="ratio", scope="asset", params=(),
        alert=AlertDefault(">", Decimal("0.8"), "warning", 30 * MINUTE_US),
        panel=Panel("bargauge", "percentunit", Decimal(0), Decimal(1)),
        compute=_concentration,
    ),
    KpiTemplate(
        id="channel_hhi",
        title_en="Channel concentration index (HHI)", title_zh="通道集中度指数（HHI）",
        description=(
            "Per asset held on two channels or more, the Herfindahl-Hirschman index of the "
            "channels' shares of available balance: 1/n when spread evenly over n channels, "
            "1 when on one."),
        formula="Σ (available[channel] / Σ available)²",
        unit="ratio", scope="asset", params=(),
        alert=AlertDefault(">", Decimal("0.5"), "info", HOUR_US),
        panel=Panel("bargauge", "none", Decimal(0), Decimal(1), decimals=3),
        compute=_hhi,
    ),
)

KPIS: dict[str, KpiTemplate] = {t.id: t for t in TEMPLATES}


def template(kpi_id: str) -> KpiTemplate:
    """The template of a KPI; KeyError names the known ones."""
    found = KPIS.get(kpi_id)
    if found is None:
        raise KeyError(f"unknown KPI {kpi_id!r}; known: {', '.join(KPIS)}")
    return found


def compute_kpis(
    context: KpiContext, enabled: Mapping[str, Mapping[str, object]] | None = None
) -> list[KpiValue]:
    """Every enabled KPI's values (all templates with their defaults when `enabled` is None);
    `enabled` maps a KPI id to its parsed parameters."""
    chosen: Iterable[tuple[str, Mapping[str, object]]] = (
        ((t.id, {}) for t in TEMPLATES) if enabled is None else enabled.items())
    out: list[KpiValue] = []
    for kpi_id, params in chosen:
        out.extend(template(kpi_id).evaluate(context, params))
    return out


def latency_bound_us(threshold_us: int) -> int:
    """The index of the histogram bucket whose upper bound is `threshold_us` (the count of a
    latency SLO's good events is exact only at a bound); ValueError lists the near ones."""
    if threshold_us in LATENCY_BOUNDS_US:
        return LATENCY_BOUNDS_US.index(threshold_us)
    near = sorted(LATENCY_BOUNDS_US, key=lambda b: abs(b - threshold_us))[:3]
    raise ValueError(
        f"a latency threshold must be a histogram bucket bound so that the count is exact; "
        f"{format_duration(threshold_us)} is not; the nearest are "
        f"{', '.join(format_duration(b) for b in sorted(near))}")

