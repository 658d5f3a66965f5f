"""The previews tab: how an amount would be shared by a configured split rule (each party's
share, and their total, which is the amount), and how a waterfall would pay its obligations
tier by tier (paid and owed per obligation and per tier). Previews book nothing; reading
(`treasury:read`) is enough to run them."""

from __future__ import annotations

from typing import Any

from nicegui import ui

from fundpool.console.pages.treasury.common import (
    Desk,
    cells,
    empty,
    error_label,
    header_row,
)
from fundpool.console.recon import is_zero
from fundpool.console.shell import testid
from fundpool.console.treasury import (
    SPLIT_ROLE_KEYS,
    ObligationRow,
    TierRow,
    amount_ok,
    same_amount,
    state_text,
    waterfall_rows,
)

TIER_ROWS_MAX = 16
OBLIGATION_ROWS_MAX = 50
# A waterfall to start from: two tiers, three obligations (the form's first rows).
EXAMPLE_TIERS = (TierRow("senior"), TierRow("junior", "senior"))
EXAMPLE_OBLIGATIONS = (ObligationRow("loan-1", "bank", "senior", "600000.00"),
                       ObligationRow("note-1", "fund-b", "junior", "300000.00"),
                       ObligationRow("note-2", "fund-c", "junior", "600000.00"))


class Previews:
    def __init__(self, desk: Desk) -> None:
        self.desk = desk
        self.rules: dict[str, dict[str, Any]] = {}
        self.tiers = [TierRow(r.name, r.after) for r in EXAMPLE_TIERS]
        self.obligations = [ObligationRow(r.id, r.creditor, r.tier, r.amount)
                            for r in EXAMPLE_OBLIGATIONS]

    async def build(self) -> None:
        t = self.desk.t
        with testid(ui.card().classes("w-full"), "split-card"):
            ui.label(t("treasury.split_title")).classes("font-medium")
            ui.label(t("treasury.split_help")).classes("text-sm opacity-70")
            self.split_form = ui.row().classes("w-full items-end gap-2")
            self.rule_text = testid(ui.column().classes("w-full gap-0 text-sm"), "split-rule")
            self.split_error = error_label("split-error")
            self.split_box = testid(ui.column().classes("w-full gap-0"), "split-shares")
        with testid(ui.card().classes("w-full"), "waterfall-card"):
            ui.label(t("treasury.waterfall_title")).classes("font-medium")
            ui.label(t("treasury.waterfall_help")).classes("text-sm opacity-70")
            with ui.row().classes("w-full items-end gap-2"):
                self.wf_asset = testid(ui.select(self.desk.assets,
                                                 value=self.desk.default_asset,
                                                 label=t("treasury.asset"))
                                       .props("dense outlined").classes("w-28"), "wf-asset")
                self.wf_available = testid(ui.input(t("treasury.wf_available"),
                                                    value="1000000.00")
                                           .props("dense outlined").classes("w-44"),
                                           "wf-available")
            with ui.element("div").classes("w-full grid gap-4 grid-cols-1 lg:grid-cols-3"):
                with ui.column().classes("gap-1"):
                    ui.label(t("treasury.wf_tiers")).classes("text-sm font-medium")
                    self.tiers_box = testid(ui.column().classes("w-full gap-1"), "wf-tiers")
                    testid(ui.button(t("treasury.wf_add_tier"), on_click=self.add_tier)
                           .props("flat dense no-caps"), "wf-add-tier")
                with ui.column().classes("gap-1 lg:col-span-2"):
                    ui.label(t("treasury.wf_obligations")).classes("text-sm font-medium")
                    self.obligations_box = testid(ui.column().classes("w-full gap-1"),
                                                  "wf-obligations")
                    testid(ui.button(t("treasury.wf_add_obligation"),
                                     on_click=self.add_obligation)
                           .props("flat dense no-caps"), "wf-add-obligation")
            testid(ui.button(t("treasury.preview"), on_click=self.preview_waterfall)
                   .props("unelevated no-caps color=primary"), "wf-preview")
            self.wf_error = error_label("wf-error")
            self.wf_box = testid(ui.column().classes("w-full gap-2"), "wf-result")
        self._tier_rows()
        self._obligation_rows()
        await self._split_form()

    # --- splits --------------------------------------------------------------------------

    async def _split_form(self) -> None:
        t = self.desk.t
        rules = await self.desk.read(self.desk.page.client.split_rules(pool=self.desk.pool.id))
        if rules is None:
            return
        self.rules = {str(r.get("id")): r for r in rules}
        with self.split_form:
            if not self.rules:
                empty(t("treasury.split_none"), "split-none")
                return
            first = next(iter(self.rules))
            self.rule = testid(ui.select(list(self.rules), value=first,
                                         label=t("treasury.split_rule"),
                                         on_change=lambda _: self._rule_text())
                               .props("dense outlined").classes("w-48"), "split-rule-pick")
            self.split_amount = testid(ui.input(t("treasury.amount"), placeholder="100.00")
                                       .props("dense outlined").classes("w-40"),
                                       "split-amount")
            testid(ui.button(t("treasury.preview"), on_click=self.preview_split)
                   .props("unelevated no-caps color=primary"), "split-preview")
        self._rule_text()

    def _rule_text(self) -> None:
        """The chosen rule's parts in words (percent, fixed, tiers, cap, floor)."""
        t, locale = self.desk.t, self.desk.page.locale
        rule = self.rules.get(str(self.rule.value)) or {}
        asset = str(rule.get("asset") or "")
        self.rule_text.clear()
        with self.rule_text:
            ui.label(t("treasury.split_rule_of", asset=asset,
                       remainder=rule.get("remainder") or "—")).classes("opacity-80")
            for part in rule.get("parts") or []:
                said = []
                if part.get("percent") is not None:
                    said.append(t("treasury.split_percent", percent=part["percent"]))
                if part.get("fixed") and not is_zero(part["fixed"]):
                    said.append(t("treasury.split_fixed", amount=part["fixed"], asset=asset))
                for tier in part.get("tiers") or []:
                    said.append(t("treasury.split_tier", percent=tier.get("percent"),
                                  up_to=f"{tier['up_to']} {asset}") if tier.get("up_to")
                                else t("treasury.split_tier_rest", percent=tier.get("percent")))
                if part.get("cap"):
                    said.append(t("treasury.split_cap", amount=part["cap"], asset=asset))
                if part.get("floor") and not is_zero(part["floor"]):
                    said.append(t("treasury.split_floor", amount=part["floor"], asset=asset))
                ui.label(t("treasury.split_part", party=part.get("party"),
                           role=state_text(SPLIT_ROLE_KEYS, part.get("role"), locale),
                           terms=", ".join(said) or "—"))

    async def preview_split(self) -> None:
        desk, t = self.desk, self.desk.t
        rule = self.rules.get(str(self.rule.value)) or {}
        amount = str(self.split_amount.value or "").strip()
        if not amount_ok(amount):
            desk.say(self.split_error, "treasury.amount_invalid")
            return
        asset = str(rule.get("asset") or desk.reporting)
        doc = await desk.act(desk.page.client.split_preview(
            amount, asset, rule_id=str(self.rule.value), pool=desk.pool.id), self.split_error)
        if doc is None:
            return
        locale = desk.page.locale
        self.split_box.clear()
        with self.split_box:
            header_row(t, (("treasury.col_party", "w-48"), ("treasury.col_role", "w-32"),
                           ("treasury.col_amount", "w-44")))
            for share in doc.get("shares") or []:
                cells(((str(share.get("party")), "w-48"),
                       (state_text(SPLIT_ROLE_KEYS, share.get("role"), locale), "w-32"),
                       (f"{share.get('amount')} {doc.get('asset')}", "w-44 fp-card-value")),
                      name=f"split-share-{share.get('party')}", amount=share.get("amount"))
            equal = same_amount(doc.get("total"), doc.get("amount"))
            testid(ui.label(t("treasury.split_total" if equal else "treasury.split_total_off",
                              total=doc.get("total"), amount=doc.get("amount"),
                              asset=doc.get("asset")))
                   .classes("font-medium " + ("text-positive" if equal else "text-negative")),
                   "split-total").props(f'data-total="{doc.get("total")}" '
                                        f'data-equal="{str(equal).lower()}"')

    # --- the waterfall's rows ------------------------------------------------------------

    def _tier_rows(self) -> None:
        t = self.desk.t
        self.tiers_box.clear()
        with self.tiers_box:
            for index, row in enumerate(self.tiers):
                with testid(ui.row().classes("items-center gap-1 no-wrap"), f"wf-tier-{index}"):
                    self._bound(ui.input(t("treasury.wf_tier_name"), value=row.name), row,
                                "name", "w-32", f"wf-tier-{index}-name")
                    self._bound(ui.input(t("treasury.wf_after"), value=row.after), row,
                                "after", "w-32", f"wf-tier-{index}-after")
                    testid(ui.button(icon="close", on_click=lambda i=index: self.drop_tier(i))
                           .props("flat dense round size=sm"), f"wf-tier-{index}-drop")

    def _obligation_rows(self) -> None:
        t = self.desk.t
        self.obligations_box.clear()
        with self.obligations_box:
            for index, row in enumerate(self.obligations):
                with testid(ui.row().classes("items-center gap-1 no-wrap"),
                            f"wf-obligation-{index}"):
                    for field, key, width in (("id", "treasury.wf_id", "w-28"),
                                              ("creditor", "treasury.wf_creditor", "w-32"),
                                              ("tier", "treasury.wf_tier", "w-28"),
                                              ("amount", "treasury.amount", "w-36")):
                        self._bound(ui.input(t(key), value=getattr(row, field)), row, field,
                                    width, f"wf-obligation-{index}-{field}")
                    testid(ui.button(icon="close",
                                     on_click=lambda i=index: self.drop_obligation(i))
                           .props("flat dense round size=sm"), f"wf-obligation-{index}-drop")

    @staticmethod
    def _bound(field: ui.input, row: Any, name: str, width: str, test: str) -> None:
        """A row's field, kept in the row's value as it is typed."""
        testid(field.props("dense outlined").classes(width), test)
        field.on_value_change(lambda e: setattr(row, name, str(e.value or "")))

    def add_tier(self) -> None:
        if len(self.tiers) < TIER_ROWS_MAX:
            self.tiers.append(TierRow("", self.tiers[-1].name if self.tiers else ""))
            self._tier_rows()

    def drop_tier(self, index: int) -> None:
        if 0 <= index < len(self.tiers):
            del self.tiers[index]
            self._tier_rows()

    def add_obligation(self) -> None:
        if len(self.obligations) < OBLIGATION_ROWS_MAX:
            self.obligations.append(ObligationRow())
            self._obligation_rows()

    def drop_obligation(self, index: int) -> None:
        if 0 <= index < len(self.obligations):
            del self.obligations[index]
            self._obligation_rows()

    # --- the waterfall's preview ---------------------------------------------------------

    async def preview_waterfall(self) -> None:
        desk, t = self.desk, self.desk.t
        available = str(self.wf_available.value or "").strip()
        tiers, obligations, faults = waterfall_rows(self.tiers, self.obligations)
        if not amount_ok(available):
            desk.say(self.wf_error, "treasury.amount_invalid")
            return
        if faults:
            kind, _, number = faults[0].partition(":")
            desk.say(self.wf_error, "treasury.wf_tier_incomplete" if kind == "tier"
                     else "treasury.wf_obligation_incomplete", row=number)
            return
        doc = await desk.act(desk.page.client.waterfall_preview(
            str(self.wf_asset.value), available, tiers, obligations, pool=desk.pool.id),
            self.wf_error)
        if doc is None:
            return
        asset = doc.get("asset")
        self.wf_box.clear()
        with self.wf_box:
            ui.label(t("treasury.wf_by_tier")).classes("text-sm font-medium")
            header_row(t, (("treasury.col_tier", "w-32"), ("treasury.col_due", "w-44"),
                           ("treasury.col_paid", "w-44"), ("treasury.col_owed", "w-44"),
                           ("treasury.col_state", "w-32")))
            for tier in doc.get("tiers") or []:
                full = bool(tier.get("fully_paid"))
                cells(((str(tier.get("name")), "w-32"),
                       (f"{tier.get('due')} {asset}", "w-44 fp-card-value"),
                       (f"{tier.get('paid')} {asset}", "w-44 fp-card-value"),
                       (f"{tier.get('owed')} {asset}", "w-44 fp-card-value"),
                       (t("treasury.wf_paid_in_full" if full else "treasury.wf_paid_in_part"),
                        "w-32")),
                      name=f"wf-tier-result-{tier.get('name')}", paid=tier.get("paid"),
                      owed=tier.get("owed"), fully_paid=str(full).lower())
            ui.label(t("treasury.wf_by_obligation")).classes("text-sm font-medium pt-2")
            header_row(t, (("treasury.col_obligation", "w-28"),
                           ("treasury.col_creditor", "w-32"), ("treasury.col_tier", "w-28"),
                           ("treasury.col_amount", "w-40"), ("treasury.col_paid", "w-40"),
                           ("treasury.col_owed", "w-40")))
            for obligation in doc.get("obligations") or []:
                cells(((str(obligation.get("id")), "w-28"),
                       (str(obligation.get("creditor")), "w-32"),
                       (str(obligation.get("tier")), "w-28"),
                       (f"{obligation.get('amount')} {asset}", "w-40 fp-card-value"),
                       (f"{obligation.get('paid')} {asset}", "w-40 fp-card-value"),
                       (f"{obligation.get('owed')} {asset}", "w-40 fp-card-value")),
                      name=f"wf-obligation-result-{obligation.get('id')}",
                      paid=obligation.get("paid"), owed=obligation.get("owed"))
            testid(ui.label(t("treasury.wf_left", amount=doc.get("left"), asset=asset))
                   .classes("text-sm"), "wf-left").props(f'data-left="{doc.get("left")}"')
