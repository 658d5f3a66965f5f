"""The overview: the pool at a glance, live.

- Cards: TOTAL, available, locked, in transit, pending settlement and fee income in the
  reporting currency, from the ledger's own pool view (`GET /v1/pools/{pool}/view`, every
  figure a sum of ledger balances), each with its change against the view at the start of
  the chosen period (`?at=`). The cards carry the view's `as_of_seq`, so a test can ask the
  API for the view at that very entry and compare every number.
- Liquidity distribution by asset and by clearing channel, the trend curve over a chosen
  range, the balance-change heatmap, the available ratio and channel health (depth, p99
  latency, failure rate) from the live figures (`/v1/monitoring/pools/{pool}/figures`).
- Every card and every channel drills down to the accounts and payments behind it.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from nicegui import ui

from fundpool.auth.roles import P
from fundpool.console.format import (
    amount_display,
    amount_text,
    change_percent,
    decimal_to_minor,
    duration_text,
    health_status,
    percent_text,
    ratio_text,
)
from fundpool.console.shell import (
    Page,
    console_page,
    exact_tooltips,
    href,
    page_link,
    route,
    testid,
)
from fundpool.core.money import Asset
from fundpool.pool.config import PoolConfig
from fundpool.pool.rates import convert_minor

CARDS = ("total", "available", "locked", "in_transit", "pending_settlement", "fees")
PERIODS = {"15m": timedelta(minutes=15), "1h": timedelta(hours=1),
           "24h": timedelta(hours=24), "7d": timedelta(days=7)}
# range -> (series resolution, span)
RANGES = {"15m": ("second", timedelta(minutes=15)), "1h": ("minute", timedelta(hours=1)),
          "24h": ("minute", timedelta(hours=24)), "7d": ("hour", timedelta(days=7))}
CARDS_REFRESH_S = 1.0
FIGURES_REFRESH_S = 3.0
SLOW_REFRESH_S = 15.0  # the period's baseline and the trend curve
TREND_POINTS_FEW = 3  # fewer points than this: the chart says why the line is short
FAILED_STATES = ("failed", "returned")
FINISHED_STATES = ("settled", "failed", "returned")


class Overview:
    def __init__(self, page: Page, pool: PoolConfig) -> None:
        self.page = page
        self.pool = pool
        config = page.console.api.config
        self.config = config
        self.reporting: Asset = config.asset(pool.reporting_currency)
        self.rates = config.rates_for(pool)
        query = page.request.query_params
        self.period: str = query.get("period", "1h") if query.get("period") in PERIODS else "1h"
        self.range: str = query.get("range", "1h") if query.get("range") in RANGES else "1h"
        self.baseline: dict[str, int] | None = None
        self.values: dict[str, int] = {}
        self._busy: set[str] = set()

    # --- layout -----------------------------------------------------------------------------

    def build(self) -> None:
        page = self.page
        with ui.row().classes("w-full items-center gap-4 px-4 pt-3"):
            testid(ui.label(page.t("nav.overview")).classes("text-2xl font-semibold"),
                   "page-title")
            ui.space()
            self.as_of = testid(ui.label("").classes("text-sm opacity-70"), "as-of")
            period = ui.select({k: page.t(f"period.{k}") for k in PERIODS}, value=self.period,
                               label=page.t("overview.period"),
                               on_change=lambda e: self._set("period", e.value)) \
                .props("dense outlined").classes("w-40")
            testid(period, "period")
        self.cards_box = testid(ui.element("div").classes(
            "w-full grid gap-3 px-4 grid-cols-2 md:grid-cols-3 xl:grid-cols-6"), "cards")
        self.card_values: dict[str, ui.label] = {}
        self.card_changes: dict[str, ui.label] = {}
        with self.cards_box:
            for name in CARDS:
                self._card(name)
        self.missing = testid(ui.label("").classes("px-4 text-warning"), "missing-rates")
        with ui.element("div").classes("w-full grid gap-3 p-4 grid-cols-1 lg:grid-cols-3"):
            with ui.card().classes("col-span-1"):
                ui.label(page.t("overview.by_asset")).classes("font-medium")
                self.by_asset = testid(ui.echart(self._pie([])).classes("h-64 w-full"),
                                       "chart-by-asset")
            with ui.card().classes("lg:col-span-2"):
                ui.label(page.t("overview.by_channel")).classes("font-medium")
                self.by_channel = testid(ui.echart(self._bars([], {})).classes("h-64 w-full"),
                                         "chart-by-channel")
                self.by_channel.on("click", self._channel_clicked)
            with ui.card().classes("lg:col-span-2"):
                with ui.row().classes("w-full items-center"):
                    ui.label(page.t("overview.trend")).classes("font-medium")
                    ui.space()
                    testid(ui.toggle({k: k for k in RANGES}, value=self.range,
                                     on_change=lambda e: self._set("range", e.value))
                           .props("dense no-caps"), "trend-range")
                self.trend = testid(ui.echart(self._trend_option([], [])).classes("h-64 w-full"),
                                    "chart-trend")
                self.trend_note = testid(ui.label("").classes("text-sm opacity-70"),
                                         "trend-note")
            with ui.card():
                ui.label(page.t("overview.available_ratio")).classes("font-medium")
                self.ratio = testid(ui.echart(self._gauge("0")).classes("h-64 w-full"),
                                    "chart-ratio")
                self.in_flight = testid(ui.label("").classes("text-sm opacity-80"), "in-flight")
                # How long approvals wait: a click opens the desk where they are decided.
                self.approvals = testid(page_link("", "/approvals").classes("text-sm"),
                                        "approvals-waiting")
            with ui.card().classes("lg:col-span-3"):
                ui.label(page.t("overview.heatmap", currency=self.reporting.code)) \
                    .classes("font-medium")
                self.heat = testid(ui.echart(self._heat_option([], [], [])).classes(
                    "h-72 w-full"), "chart-heatmap")
            with ui.card().classes("lg:col-span-3"):
                ui.label(page.t("overview.health")).classes("font-medium")
                self.health = testid(ui.table(columns=self._health_columns(), rows=[],
                                              row_key="key").classes("w-full"), "health")
                self.health.add_slot("body-cell-channel", """
                    <q-td :props="props"><a :href="props.row.link">{{ props.value }}</a></q-td>
                """)
                exact_tooltips(self.health, "depth")
                self.health.add_slot("body-cell-status", """
                    <q-td :props="props"><q-badge :color="props.row.colour">
                      {{ props.value }}</q-badge></q-td>
                """)
        page.every(CARDS_REFRESH_S, lambda: self._once("cards", self.refresh_cards))
        page.every(FIGURES_REFRESH_S, lambda: self._once("figures", self.refresh_figures))
        page.every(SLOW_REFRESH_S, lambda: self._once("slow", self.refresh_slow))

    def _card(self, name: str) -> None:
        page = self.page
        with testid(ui.card().classes("cursor-pointer hover:shadow-lg"), f"card-{name}") \
                .on("click", lambda: ui.navigate.to(route("/drill", {"state": name}))):
            ui.label(page.t(f"figure.{name}")).classes("text-sm opacity-80")
            value = testid(ui.label("…").classes("text-2xl font-semibold fp-card-value"),
                           f"card-{name}-value")
            ui.label(page.t("figure.reporting", currency=self.reporting.code)) \
                .classes("text-xs opacity-60")
            change = testid(ui.label("").classes("text-xs"), f"card-{name}-change")
        self.card_values[name] = value
        self.card_changes[name] = change

    def _set(self, key: str, value: str) -> None:
        ui.navigate.to(self.page.here(**{key: value}))

    async def _once(self, name: str, refresh: Any) -> None:
        """Skip a tick while the previous one of the same refresh is still running."""
        if name in self._busy:
            return
        self._busy.add(name)
        try:
            await refresh()
        finally:
            self._busy.discard(name)

    # --- refreshes --------------------------------------------------------------------------

    async def refresh_cards(self) -> None:
        view = await self.page.call(self.page.client.pool_view(self.pool.id))
        if view is None:
            return
        total = view.reporting_total
        values = {name: int(total[f"{name}_minor"]) for name in CARDS}
        self.values = values
        wall = self.page.wall
        for name in CARDS:
            label = self.card_values[name]
            label.set_text(amount_text(values[name], self.reporting.scale, self.page.locale,
                                       compact=wall))
            label.props(f'data-minor="{values[name]}"')
        self.cards_box.props(f'data-seq="{view.as_of_seq}"')
        self._show_changes()
        self.as_of.set_text(self.page.t("shell.as_of", seq=f"{view.as_of_seq:,}",
                                        at=datetime.now(UTC).strftime("%H:%M:%S")))
        self.missing.set_text(self.page.t(
            "overview.missing_rates", currency=self.reporting.code,
            assets=", ".join(view.missing_rates)) if view.missing_rates else "")
        by_asset = [(a["asset"], int(a["reporting"]["total_minor"]))
                    for a in view.assets if a.get("reporting") is not None]
        self.by_asset.options.update(self._pie(by_asset))
        self.by_asset.update()
        per_channel: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for shown in view.assets:
            code = shown["asset"]
            rate = self.rates.rate(code, self.reporting.code)
            if rate is None:
                continue
            source = self.config.asset(code)
            for channel, figures in shown["channels"].items():
                for state in CARDS[1:5]:
                    per_channel[channel][state] += convert_minor(
                        int(figures[f"{state}_minor"]), source, self.reporting, rate)
        channels = list(self.pool.channels)
        self.by_channel.options.update(self._bars(channels, per_channel))
        self.by_channel.update()

    def _show_changes(self) -> None:
        if self.baseline is None:
            return
        period = self.page.t(f"period.{self.period}")
        for name in CARDS:
            now, before = self.values.get(name, 0), self.baseline.get(name, 0)
            delta = now - before
            label = self.card_changes[name]
            label.set_text(self.page.t(
                "figure.change", period=period, percent=change_percent(now, before),
                change=amount_text(delta, self.reporting.scale, self.page.locale,
                                   compact=True, signed=True)))
            tone = "text-positive" if delta > 0 else "text-negative" if delta < 0 else ""
            label.classes(replace=f"text-xs {tone}")

    async def refresh_slow(self) -> None:
        now = datetime.now(UTC)
        start = now - PERIODS[self.period]
        before = await self.page.call(self.page.client.pool_view(self.pool.id, at=start))
        if before is not None:
            total = before.reporting_total
            self.baseline = {name: int(total[f"{name}_minor"]) for name in CARDS}
            self._show_changes()
        await self._refresh_trend(now)

    async def _refresh_trend(self, now: datetime) -> None:
        resolution, span = RANGES[self.range]
        assets = sorted({a for c in self.pool.channels for a in self.config.channel(c).assets})
        totals: dict[int, int] = defaultdict(int)
        available: dict[int, int] = defaultdict(int)
        for code in assets:
            rate = self.rates.rate(code, self.reporting.code)
            if rate is None:
                continue
            source = self.config.asset(code)
            for metric, into in (("total", totals), ("available", available)):
                series = await self.page.call(self.page.client.series(
                    self.pool.id, f"{metric}|{code}", resolution=resolution,  # type: ignore[arg-type]
                    since=now - span, until=now))
                if series is None:
                    return
                for point in series.points:
                    if point.value_minor is not None:
                        into[point.at_us] += convert_minor(int(point.value_minor), source,
                                                           self.reporting, rate)
        # The series has a bucket for every step of the range, 0 before the pool had any
        # entry: those are "no data yet", not a pool worth nothing, and a line drawn through
        # them put the whole history in one pixel at the right edge (a blank box at 7d).
        buckets = sorted(totals)
        first = next((i for i, b in enumerate(buckets) if totals[b] or available[b]),
                     len(buckets))
        buckets = buckets[first:]
        labels = [datetime.fromtimestamp(b // 1_000_000, UTC).strftime(
            "%m-%d %H:%M" if self.range in ("24h", "7d") else "%H:%M:%S") for b in buckets]
        lines = [(self.page.t("figure.total"), [self._plain(totals[b]) for b in buckets]),
                 (self.page.t("figure.available"), [self._plain(available[b]) for b in buckets])]
        self.trend.options.update(self._trend_option(labels, lines))
        self.trend.update()
        if not buckets:
            note = self.page.t("overview.trend_empty", range=self.range)
        elif len(buckets) < TREND_POINTS_FEW:
            note = self.page.t("overview.trend_few", count=len(buckets), since=labels[0],
                               step=self.page.t(f"resolution.{resolution}"))
        else:
            note = ""
        self.trend_note.set_text(note)
        self.trend.props(f'data-points="{len(buckets)}"')

    async def refresh_figures(self) -> None:
        page = self.page
        figures = await page.call(page.client.figures(self.pool.id, hours=24))
        if figures is None:
            return
        self.ratio.options.update(self._gauge(figures.available_ratio.get("*") or "0"))
        self.ratio.update()
        amounts = figures.in_flight.get("amount", {})
        flying = " · ".join(
            f"{page.amount(decimal_to_minor(v, self.config.asset(k).scale), k)} {k}"
            for k, v in amounts.items())
        self.in_flight.set_text(page.t("overview.in_flight",
                                       count=f"{figures.in_flight['count']:,}")
                                + (f" · {flying}" if flying else ""))
        self._show_approvals(figures.approvals)
        heat = figures.heatmap
        hours = [datetime.fromtimestamp(h // 1_000_000, UTC).strftime("%H:00")
                 for h in heat["hours_us"]]
        cells = [[c, h, self._plain(int(value))] for h, row in enumerate(heat["rows"])
                 for c, value in enumerate(row)]
        self.heat.options.update(self._heat_option(heat["channels"], hours, cells))
        self.heat.update()
        self.health.rows = self._health_rows(figures)
        self.health.update()

    def _show_approvals(self, approvals: dict[str, Any]) -> None:
        """Payments waiting for an approver, the longest wait now, and the p95 wait of the
        approvals given (the `approval_wait_*` KPIs)."""
        page = self.page
        waiting = int(approvals.get("waiting") or 0)
        oldest_s, p95_s = approvals.get("oldest_s"), approvals.get("p95_s")
        text = page.t("overview.approvals", count=f"{waiting:,}")
        if waiting and oldest_s is not None:
            text += " · " + page.t("overview.approvals_oldest",
                                   wait=duration_text(float(oldest_s) * 1e6, page.locale))
        if p95_s is not None:
            text += " · " + page.t("overview.approvals_p95",
                                   wait=duration_text(float(p95_s) * 1e6, page.locale))
        self.approvals.set_text(text)
        self.approvals.props(f'data-waiting="{waiting}"')

    # --- channel health ---------------------------------------------------------------------

    def _health_columns(self) -> list[dict[str, Any]]:
        t = self.page.t
        return [
            {"name": "channel", "label": t("health.channel"), "field": "channel", "align": "left"},
            {"name": "asset", "label": t("health.asset"), "field": "asset", "align": "left"},
            {"name": "depth", "label": t("health.depth"), "field": "depth", "align": "right"},
            {"name": "latency", "label": t("health.latency_p99"), "field": "latency",
             "align": "right"},
            {"name": "failure", "label": t("health.failure_rate"), "field": "failure",
             "align": "right"},
            {"name": "status", "label": t("health.status"), "field": "status", "align": "left"},
        ]

    def _health_rows(self, figures: Any) -> list[dict[str, Any]]:
        t = self.page.t
        p99 = {f["channel"]: f["p99_ms"] for f in figures.latency if f["stage"] == "end_to_end"}
        counts: dict[str, dict[str, int]] = defaultdict(dict)
        for item in figures.by_channel_state:
            counts[item["channel"]][item["state"]] = int(item["count"])
        rows = []
        for item in figures.depth:
            channel, code = item["channel"], item["asset"]
            finished = sum(counts[channel].get(s, 0) for s in FINISHED_STATES)
            failed = sum(counts[channel].get(s, 0) for s in FAILED_STATES)
            scale = self.config.asset(code).scale
            depth = decimal_to_minor(item["available"], scale)
            depth_shown, depth_exact = amount_display(depth, scale, self.page.locale)
            failing = finished > 0 and failed * 10 > finished  # more than 10 % failed
            depth_status = str(item.get("status") or "healthy")
            status, colour = health_status(depth_status, failing=failing)
            rows.append({
                "key": f"{channel}|{code}", "channel": channel, "asset": code,
                "link": href("/drill", {"channel": channel}),
                "depth": depth_shown, "depth_exact": depth_exact,
                "latency": "–" if channel not in p99
                else duration_text(p99[channel] * 1_000, self.page.locale),
                "failure": percent_text(failed, finished),
                "status": t(f"health.{status}"), "state": depth_status,
                "colour": colour,
            })
        return rows

    async def _channel_clicked(self, event: Any) -> None:
        name = (event.args or {}).get("name") if isinstance(event.args, dict) else None
        if name in self.pool.channels:
            ui.navigate.to(route("/drill", {"channel": name}))

    # --- chart options ----------------------------------------------------------------------

    def _plain(self, minor: int) -> str:
        """Exact decimal text for a chart (ECharts reads numeric strings)."""
        return self.reporting.format(minor)

    def _pie(self, parts: list[tuple[str, int]]) -> dict[str, Any]:
        return {"tooltip": {"trigger": "item"}, "legend": {"bottom": 0},
                "series": [{"type": "pie", "radius": ["40%", "70%"],
                            "data": [{"name": code, "value": self._plain(v)}
                                     for code, v in parts]}]}

    def _bars(self, channels: list[str], per_channel: Any) -> dict[str, Any]:
        return {"tooltip": {"trigger": "axis"}, "legend": {"bottom": 0},
                "grid": {"left": 80, "right": 10, "top": 10, "bottom": 50},
                "xAxis": {"type": "category", "data": channels},
                "yAxis": {"type": "value"},
                "series": [{"type": "bar", "stack": "pool", "name": self.page.t(f"figure.{s}"),
                            "data": [self._plain(per_channel[c][s]) for c in channels]}
                           for s in CARDS[1:5]] if channels else []}

    def _trend_option(self, labels: list[str], lines: list[tuple[str, list[str]]]
                      ) -> dict[str, Any]:
        return {"tooltip": {"trigger": "axis"}, "legend": {"bottom": 0},
                "grid": {"left": 90, "right": 10, "top": 10, "bottom": 50},
                "xAxis": {"type": "category", "data": labels},
                "yAxis": {"type": "value", "scale": True},
                # A line of one or two points is drawn as points, not as nothing.
                "series": [{"type": "line", "name": name, "data": data,
                            "showSymbol": len(data) < TREND_POINTS_FEW, "symbolSize": 8}
                           for name, data in lines]}

    def _gauge(self, ratio: str) -> dict[str, Any]:
        return {"series": [{"type": "gauge", "min": 0, "max": 100,
                            "detail": {"formatter": ratio_text(ratio)},
                            "data": [{"value": ratio_text(ratio).split(" ")[0]
                                      if ratio_text(ratio) != "–" else "0"}]}]}

    def _heat_option(self, channels: list[str], hours: list[str], cells: list[list[Any]]
                     ) -> dict[str, Any]:
        high = max((Decimal(c[2]) for c in cells), default=Decimal(0)) or Decimal(1)
        # The colour legend stands at the right, beside the grid: at the bottom it lay over
        # the channel axis' labels.
        return {"tooltip": {"position": "top"},
                "grid": {"left": 60, "right": 140, "top": 10, "bottom": 30},
                "xAxis": {"type": "category", "data": channels},
                "yAxis": {"type": "category", "data": hours},
                "visualMap": {"min": 0, "max": str(high), "calculable": True,
                              "orient": "vertical", "right": 10, "top": "middle",
                              "itemHeight": 160, "precision": self.reporting.scale},
                "series": [{"type": "heatmap", "data": cells}]}


@console_page("/", needs=P.POOL_READ, title="nav.overview")
async def overview_page(page: Page) -> None:
    Overview(page, page.console.api.pool(page.request.query_params.get("pool"))).build()
