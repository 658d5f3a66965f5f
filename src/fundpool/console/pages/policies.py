"""The risk policy editor (风控策略): the versions, the active policy, and a draft to check,
backtest, save and activate.

The versions list is `GET /v1/risk/policies`: each version's state, author, note, and who
activated it when. The active policy's text is shown as it is, and the editor starts from it.
Validate (`POST …/validate`) shows the checked policy's summary and its diff against the active
one, coloured line by line; a policy the checks refuse shows why, with the line at fault marked
in a numbered listing of the draft (nothing is saved: the API checks every draft the same way).
Backtest replays the last days of payments through both (`POST …/backtest`): each one's
outcomes, how many decisions would change (the first ones listed, each linking to its payment)
and each one's confusion matrix against the known outcomes.

With `risk:policy`: save the draft with a note, activate a draft (never one's own: the API
refuses it, `self_activation`, and the page says so), and roll back to the version active
before, after a confirmation. Validate and backtest need only `risk:read`: an approver or an
auditor may try a policy without changing anything.
"""

from __future__ import annotations

import uuid
from typing import Any

from nicegui import ui

from fundpool.auth.roles import P
from fundpool.client.errors import ApiError, Unauthorized, Unreachable
from fundpool.console.editor import VersionedTextEditor
from fundpool.console.format import time_text
from fundpool.console.pages.risk import POLICIES_PATH, risk_header
from fundpool.console.risk import outcome_counts, outcome_text, summary_text
from fundpool.console.shell import Page, console_page, href, testid
from fundpool.console.texts import actor_text
from fundpool.risk.service import BACKTEST_DAYS_MAX, NOTE_MAX

CHANGED_SHOWN_MAX = 20  # a backtest's changed payments listed (the count covers them all)
BACKTEST_DAYS_DEFAULT = 7
POLICY_STATE_KEYS = {"draft": "policy.state_draft", "active": "policy.state_active",
                     "retired": "policy.state_retired"}
POLICY_STATE_COLOURS = {"draft": "info", "active": "positive", "retired": "grey"}
# The editor's texts (console/editor.py TEXTS): their keys in the string table.
EDITOR_KEYS = {"read_only": "policy.read_only", "versions": "policy.versions",
               "no_versions": "policy.no_versions", "active": "policy.active",
               "none_active": "policy.none_active", "open": "policy.open",
               "opened": "policy.opened", "draft": "policy.draft", "text": "policy.text",
               "validate": "policy.validate", "note": "policy.note", "save": "policy.save",
               "saved": "policy.saved", "result_hint": "policy.result_hint",
               "empty": "policy.empty", "diff": "policy.diff", "no_diff": "policy.no_diff"}
# A new policy's starting point when none is active (docs/risk.md).
TEMPLATE = """thresholds: {review: 40, hold: 70, block: 100}
groups:
  - name: sanctioned counterparty
    when:
      - sanctions: {threshold: 88}
    outcome: block
"""


class Editor(VersionedTextEditor):
    name = "policy"
    keys = EDITOR_KEYS
    template = TEMPLATE
    invalid_code = "invalid_policy"
    note_max = NOTE_MAX
    state_keys = POLICY_STATE_KEYS
    state_colours = POLICY_STATE_COLOURS
    active_classes = "w-full fp-mono text-sm whitespace-pre-wrap"

    def __init__(self, page: Page) -> None:
        super().__init__(page, may_save=page.signed.may(P.RISK_POLICY))
        self.may_edit = self.may_save  # and activate, and roll back

    # --- the page ----------------------------------------------------------------------------

    def _heading(self) -> None:
        risk_header(self.page, POLICIES_PATH)

    def _versions_heading(self) -> None:
        with ui.row().classes("w-full items-center"):
            super()._versions_heading()
            ui.space()
            if self.may_edit:
                testid(ui.button(self.page.t("policy.rollback"), on_click=self._confirm_rollback)
                       .props("outline no-caps color=negative"), "policy-rollback")

    def _checks(self) -> None:
        t = self.page.t
        with ui.row().classes("items-end gap-2"):
            self._validate_button()
            self.days = testid(ui.number(t("policy.days"), value=BACKTEST_DAYS_DEFAULT, min=1,
                                         max=BACKTEST_DAYS_MAX, step=1, precision=0)
                               .props("dense outlined").classes("w-28"), "policy-days")
            testid(ui.button(t("policy.backtest"), on_click=self.backtest)
                   .props("outline no-caps"), "policy-backtest")

    def _dialogs(self) -> None:
        t = self.page.t
        # Activation is a sensitive action: the activator's authenticator code (issue 17).
        with ui.dialog() as self.activate_dialog, ui.card().classes("w-[480px] max-w-full"):
            self.activate_title = testid(ui.label("").classes("font-medium"), "activate-title")
            ui.label(t("policy.activate_explain")).classes("text-sm opacity-80")
            self.totp = testid(ui.input(t("policy.totp"))
                               .props('dense outlined autocomplete=one-time-code '
                                      'inputmode=numeric maxlength=6')
                               .classes("w-48 fp-mono"), "activate-totp")
            self.activate_error = testid(ui.label("").classes("text-negative fp-wrap"),
                                         "activate-error")
            self.activate_error.set_visibility(False)
            with ui.row().classes("gap-2"):
                testid(ui.button(t("policy.activate_send"), on_click=self.activate)
                       .props("unelevated no-caps color=positive"), "activate-submit")
                testid(ui.button(t("policy.cancel"), on_click=self.activate_dialog.close)
                       .props("flat no-caps"), "activate-cancel")
        self.activating: int | None = None
        with ui.dialog() as self.rollback_dialog, ui.card():
            testid(ui.label(t("policy.rollback_confirm")), "rollback-question")
            with ui.row().classes("gap-2"):
                testid(ui.button(t("policy.rollback_yes"), on_click=self.rollback)
                       .props("unelevated no-caps color=negative"), "rollback-yes")
                testid(ui.button(t("policy.cancel"), on_click=self.rollback_dialog.close)
                       .props("flat no-caps"), "rollback-no")

    # --- the versions and the active policy --------------------------------------------------

    async def _fetch(self) -> tuple[list[Any], Any]:
        page = self.page
        found = await page.call(page.client.risk_policies())
        active = await page.call(page.client.active_risk_policy())
        return [] if found is None else found.data, None if active is None else active.policy

    def _row_who(self, version: Any, state: str) -> None:
        page, t = self.page, self.page.t
        ui.label(t("policy.by", actor=actor_text(version.created_by, page.locale) or "?",
                   at=time_text(version.created_at_us, with_date=True))) \
            .classes("w-72")
        activated = "" if version.activated_at_us is None else t(
            "policy.activated_by",
            actor=actor_text(version.activated_by, page.locale) or "?",
            at=time_text(version.activated_at_us, with_date=True))
        ui.label(activated).classes("w-72")

    def _draft_action(self, version: int) -> None:
        if self.may_edit:
            testid(ui.button(self.page.t("policy.activate"),
                             on_click=lambda: self.ask_activate(version))
                   .props("unelevated dense no-caps color=positive"), "policy-activate")

    async def _fetch_version(self, version: int) -> tuple[str, list[str] | None] | None:
        page = self.page
        found = await page.call(page.client.risk_policy(version))
        return None if found is None else (found.text or "", found.diff or [])

    # --- checks ------------------------------------------------------------------------------

    async def _check(self, text: str) -> Any:
        return await self.page.client.validate_risk_policy(text)

    def _checked(self, checked: Any) -> None:
        page, t = self.page, self.page.t
        testid(ui.label(t("policy.valid")).classes("text-positive font-medium"), "policy-valid")
        testid(ui.label(summary_text(checked.summary, page.locale)).classes("text-sm"),
               "policy-summary")
        self._diff(checked.diff)

    def _invalid(self, error: ApiError, line: int | None) -> None:
        t = self.page.t
        said = t("policy.invalid_line", line=line, detail=error.detail) if line is not None \
            else t("policy.invalid", detail=error.detail)
        testid(ui.label(said).classes("text-negative font-medium"), "policy-error") \
            .props(f'data-line="{line or ""}"')

    async def backtest(self) -> None:
        page, t = self.page, self.page.t
        text = self._text()
        if text is None:
            return
        days = int(self.days.value or BACKTEST_DAYS_DEFAULT)
        if not 1 <= days <= BACKTEST_DAYS_MAX:
            self._say(t("policy.days_bad", max=BACKTEST_DAYS_MAX), "negative")
            return
        self._say(t("policy.backtesting", days=days), "info")
        await self._answer(text, page.client.backtest_risk_policy(text, days), self._backtest)

    def _backtest(self, found: Any) -> None:
        page, t = self.page, self.page.t
        testid(ui.label(t("policy.backtest_of", payments=f"{found.payments:,}",
                          days=found.days, changed=f"{found.changed_count:,}"))
               .classes("font-medium"), "backtest-summary") \
            .props(f'data-changed="{found.changed_count}" data-payments="{found.payments}"')
        active, draft = found.outcomes.get("active", {}), found.outcomes.get("draft", {})
        rows = [{"outcome": outcome_text(o, page.locale), "active": f"{a:,}",
                 "draft": f"{outcome_counts(draft)[i][1]:,}"}
                for i, (o, a) in enumerate(outcome_counts(active))]
        testid(ui.table(columns=[
            {"name": "outcome", "label": t("policy.outcome"), "field": "outcome",
             "align": "left"},
            {"name": "active", "label": t("policy.col_active"), "field": "active",
             "align": "right"},
            {"name": "draft", "label": t("policy.col_draft"), "field": "draft",
             "align": "right"},
        ], rows=rows, row_key="outcome").props("dense flat").classes("w-96"),
            "backtest-outcomes")
        ui.label(t("policy.confusion", labelled=f"{found.labelled:,}")).classes("font-medium")
        with ui.row().classes("gap-6"):
            for name, key in (("active", "policy.col_active"), ("draft", "policy.col_draft")):
                matrix = found.confusion.get(name)
                with testid(ui.column().classes("gap-0"), f"confusion-{name}"):
                    ui.label(t(key)).classes("text-sm font-medium")
                    with ui.grid(columns="max-content max-content max-content") \
                            .classes("gap-x-4 text-sm fp-card-value"):
                        ui.label("")
                        ui.label(t("policy.fraud")).classes("opacity-70")
                        ui.label(t("policy.good")).classes("opacity-70")
                        ui.label(t("policy.flagged")).classes("opacity-70")
                        ui.label(str(matrix.tp if matrix else 0))
                        ui.label(str(matrix.fp if matrix else 0))
                        ui.label(t("policy.allowed")).classes("opacity-70")
                        ui.label(str(matrix.fn if matrix else 0))
                        ui.label(str(matrix.tn if matrix else 0))
        if found.changed:
            ui.label(t("policy.changed", shown=min(len(found.changed), CHANGED_SHOWN_MAX),
                       count=f"{found.changed_count:,}")).classes("font-medium")
            scales = page.console.scales()
            changed = []
            for change in found.changed[:CHANGED_SHOWN_MAX]:
                amount, _ = page.amounts(int(change.amount_minor), change.asset) \
                    if change.asset in scales else (change.amount_minor, "")
                changed.append({
                    "id": change.payment_id, "short": change.payment_id[-12:],
                    "link": href("/stream", {"payment": change.payment_id}),
                    "payee": change.payee or "", "amount": f"{amount} {change.asset}",
                    "active": outcome_text(change.active, page.locale),
                    "draft": outcome_text(change.draft, page.locale),
                    "groups": ", ".join(change.draft_groups)})
            table = testid(ui.table(columns=[
                {"name": "short", "label": t("col.payment"), "field": "short",
                 "align": "left"},
                {"name": "payee", "label": t("approvals.col_payee"), "field": "payee",
                 "align": "left"},
                {"name": "amount", "label": t("col.amount"), "field": "amount",
                 "align": "right"},
                {"name": "active", "label": t("policy.col_active"), "field": "active",
                 "align": "left"},
                {"name": "draft", "label": t("policy.col_draft"), "field": "draft",
                 "align": "left"},
                {"name": "groups", "label": t("policy.col_groups"), "field": "groups",
                 "align": "left"},
            ], rows=changed, row_key="id").props("dense flat wrap-cells").classes("w-full"),
                "backtest-changed")
            table.add_slot("body-cell-short", """
                <q-td :props="props"><a :href="props.row.link">{{ props.value }}</a></q-td>""")

    # --- changes -----------------------------------------------------------------------------

    async def _save_draft(self, text: str, note: str | None, idempotency_key: str) -> Any:
        return await self.page.client.draft_risk_policy(text, note,
                                                        idempotency_key=idempotency_key)

    def ask_activate(self, version: int) -> None:
        self.activating = version
        self.activate_title.set_text(self.page.t("policy.activate_title", version=version))
        self.totp.set_value("")
        self.activate_error.set_visibility(False)
        self.activate_dialog.open()

    async def activate(self) -> None:
        """Send the activation with the code typed (the service refuses an author before it
        looks at the code, so the author learns that first)."""
        page = self.page
        version = self.activating
        if version is None or self.busy:
            return
        code = "".join(str(self.totp.value or "").split()) or None
        self.busy = True
        try:
            await page.client.activate_risk_policy(version, code,
                                                   idempotency_key=str(uuid.uuid4()))
        except ApiError as error:
            if isinstance(error, Unauthorized | Unreachable):
                page.report(error)
                return
            self.activate_error.set_text(page.problem(error))
            self.activate_error.set_visibility(True)
            return
        finally:
            self.busy = False
        self.activate_dialog.close()
        await self._done(page.t("policy.activated", version=version))

    def _confirm_rollback(self) -> None:
        self.rollback_dialog.open()

    async def rollback(self) -> None:
        page = self.page
        self.rollback_dialog.close()
        done = await page.call(page.client.rollback_risk_policy(
            idempotency_key=str(uuid.uuid4())))
        if done is None:
            return
        active = await self._done(page.t("policy.rolled_back", version=done.version))
        if active is not None:
            self.editor.set_value(active)


@console_page(POLICIES_PATH, needs=P.RISK_READ, title="risk.policies")
async def policies_page(page: Page) -> None:
    await Editor(page).build()
