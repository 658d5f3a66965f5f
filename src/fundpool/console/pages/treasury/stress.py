"""The stress test tab: a liquidity-run scenario (a share of what customers hold withdrawn
over some hours, a channel down for some hours, an exchange-rate shock) run on the pool's
live state, hour by hour (`POST /v1/stress`): the survival horizon, the first position to
run dry, the credit needed beyond the facilities, the value at risk; and a chart of one
asset's balance over its channels, its shortfall and the credit drawn, hour by hour."""

from __future__ import annotations

from typing import Any

from nicegui import ui

from fundpool.console.pages.treasury.common import Desk, error_label
from fundpool.console.shell import testid
from fundpool.console.treasury import (
    ScenarioForm,
    chart_asset,
    nonzero,
    scenario_body,
    stress_assets,
    stress_chart,
    stress_series,
)

NO_CHOICE = ""


class Stress:
    def __init__(self, desk: Desk) -> None:
        self.desk = desk
        self.report: dict[str, Any] | None = None

    async def build(self) -> None:
        t = self.desk.t
        may = self.desk.may["stress"]
        with testid(ui.card().classes("w-full"), "stress-form"):
            ui.label(t("treasury.stress_title")).classes("font-medium")
            ui.label(t("treasury.stress_help")).classes("text-sm opacity-70")
            if not may:
                testid(ui.label(t("treasury.stress_read_only",
                                  roles=self.desk.page.roles_text()))
                       .classes("text-sm text-warning"), "stress-read-only")
            with ui.row().classes("w-full items-end gap-2"):
                self.fields = {
                    "name": ui.input(t("treasury.stress_name"), value="bank run")
                    .classes("w-40"),
                    "withdrawal_percent": ui.input(t("treasury.stress_withdrawal"), value="30")
                    .classes("w-36"),
                    "withdrawal_hours": ui.input(t("treasury.stress_withdrawal_hours"),
                                                 value="12").classes("w-36"),
                    "hours": ui.input(t("treasury.stress_hours"), value="24").classes("w-28"),
                }
            with ui.row().classes("w-full items-end gap-2"):
                self.outage = ui.select({NO_CHOICE: t("treasury.none"),
                                         **{c: c for c in self.desk.channels}},
                                        value=NO_CHOICE, label=t("treasury.stress_outage")) \
                    .classes("w-40")
                self.fields["outage_from"] = ui.input(t("treasury.stress_from_hour"),
                                                      value="2").classes("w-28")
                self.fields["outage_to"] = ui.input(t("treasury.stress_to_hour"),
                                                    value="8").classes("w-28")
                self.shock = ui.select({NO_CHOICE: t("treasury.none"),
                                        **{a: a for a in self.desk.assets}},
                                       value=NO_CHOICE, label=t("treasury.stress_shock")) \
                    .classes("w-36")
                self.fields["shock_percent"] = ui.input(t("treasury.stress_shock_percent_label"),
                                                        value="-20").classes("w-32")
                for name, field in self.fields.items():
                    testid(field.props("dense outlined"), f"stress-{name.replace('_', '-')}")
                testid(self.outage.props("dense outlined"), "stress-outage")
                testid(self.shock.props("dense outlined"), "stress-shock")
                run = testid(ui.button(t("treasury.stress_run"), on_click=self.run)
                             .props("unelevated no-caps color=primary"), "stress-run")
                run.set_enabled(may)
            self.error = error_label("stress-error")
        self.summary = testid(ui.row().classes("w-full gap-3 items-stretch"), "stress-summary")
        with testid(ui.card().classes("w-full"), "stress-chart-card") as self.chart_card:
            with ui.row().classes("w-full items-center gap-3"):
                self.chart_title = ui.label(t("treasury.stress_chart")).classes("font-medium")
                ui.space()
                self.asset_pick = testid(ui.toggle([], on_change=lambda e: self._draw(
                    str(e.value or ""))).props("dense no-caps"), "stress-asset")
            self.chart = testid(ui.echart({}).classes("h-80 w-full"), "stress-chart")
        self.chart_card.set_visibility(False)

    async def run(self) -> None:
        desk = self.desk
        values = {name: str(field.value or "") for name, field in self.fields.items()}
        body, fault = scenario_body(ScenarioForm(
            name=values["name"], hours=values["hours"],
            withdrawal_percent=values["withdrawal_percent"],
            withdrawal_hours=values["withdrawal_hours"],
            outage_channel=str(self.outage.value or ""), outage_from=values["outage_from"],
            outage_to=values["outage_to"], shock_asset=str(self.shock.value or ""),
            shock_percent=values["shock_percent"]))
        if body is None:
            desk.say(self.error, fault or "treasury.stress_fill")
            return
        report = await desk.act(desk.page.client.stress(body, pool=desk.pool.id), self.error)
        if report is None:
            return
        self.report = report
        self._summary(report)
        assets = stress_assets(report)
        first = chart_asset(report, desk.reporting) or ""
        self.asset_pick.set_options(assets, value=first)
        self.chart_card.set_visibility(bool(assets))
        self._draw(first)

    def _summary(self, report: dict[str, Any]) -> None:
        t = self.desk.t
        self.summary.clear()
        horizon = report.get("survival_horizon_h")
        first = report.get("first_dry")
        var = report.get("value_at_risk")
        credit = nonzero(report.get("credit_needed"))
        with self.summary:
            self._card("stress-horizon", t("treasury.stress_horizon"),
                       t("treasury.stress_survived", hours=report.get("hours_simulated"))
                       if horizon is None else t("treasury.hours", hours=horizon),
                       horizon="none" if horizon is None else horizon)
            self._card("stress-first-dry", t("treasury.stress_first_dry"),
                       t("treasury.stress_none_dry") if not first else
                       t("treasury.stress_dry_at", channel=first.get("channel"),
                         asset=first.get("asset"), hour=first.get("hour")),
                       position="" if not first else f"{first.get('channel')}/{first.get('asset')}")
            self._card("stress-credit", t("treasury.stress_credit_needed"),
                       " · ".join(f"{v} {k}" for k, v in credit.items())
                       or t("treasury.stress_no_credit"))
            self._card("stress-var", t("treasury.stress_var"),
                       t("treasury.stress_no_var") if not var else
                       t("treasury.stress_var_text", total=var.get("total"),
                         asset=var.get("asset"), fx=var.get("fx_loss"),
                         shortfall=var.get("shortfall"), costs=var.get("costs")))
            missing = report.get("missing_rates") or []
            if missing:
                testid(ui.label(t("treasury.stress_missing_rates", assets=", ".join(missing)))
                       .classes("text-sm text-warning"), "stress-missing-rates")

    @staticmethod
    def _card(name: str, title: str, value: str, **data: object) -> None:
        with testid(ui.card().classes("px-4 py-2 min-w-56"), name):
            ui.label(title).classes("text-xs opacity-70")
            label = testid(ui.label(value).classes("text-lg fp-card-value fp-wrap"),
                           f"{name}-value")
            for key, text in data.items():
                label.props(f'data-{key}="{text}"')

    def _draw(self, asset: str) -> None:
        if self.report is None or not asset:
            return
        series = stress_series(self.report, asset)
        self.chart.options.clear()
        self.chart.options.update(stress_chart(series, self.desk.page.locale))
        self.chart.update()
        self.chart.props(f'data-asset="{asset}" data-points="{len(series.hours)}"')
        self.chart_title.set_text(self.desk.t("treasury.stress_chart_of", asset=asset))
