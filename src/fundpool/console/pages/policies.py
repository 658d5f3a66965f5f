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
from fundpool.client.errors import ApiError
from fundpool.console.format import time_text
from fundpool.console.pages.risk import POLICIES_PATH, risk_header
from fundpool.console.risk import (
    diff_kind,
    error_line,
    outcome_counts,
    outcome_text,
    summary_text,
)
from fundpool.console.shell import Page, console_page, href, testid
from fundpool.console.texts import actor_text
from fundpool.risk.service import BACKTEST_DAYS_MAX, NOTE_MAX

VERSIONS_SHOWN_MAX = 50  # the newest versions listed
CHANGED_SHOWN_MAX = 20  # a backtest's changed payments listed (the count covers them all)
BACKTEST_DAYS_DEFAULT = 7
POLICY_STATE_KEYS = {"draft": "policy.state_draft", "active": "policy.state_active",
                     "retired": "policy.state_retired"}
POLICY_STATE_COLOURS = {"draft": "info", "active": "positive", "retired": "grey"}
# A new policy's starting point when none is active (docs/risk.md).
TEMPLATE = """thresholds: {review: 40, hold: 70, block: 100}
groups:
  - name: sanctioned counterparty
    when:
      - sanctions: {threshold: 88}
    outcome: block
"""


class Editor:
    def __init__(self, page: Page) -> None:
        self.page = page
        self.may_edit = page.signed.may(P.RISK_POLICY)
        self.busy = False

    async def build(self) -> None:
        page, t = self.page, self.page.t
        risk_header(page, POLICIES_PATH)
        if not self.may_edit:
            testid(ui.label(t("policy.read_only", roles=page.roles_text()))
                   .classes("px-4 text-warning"), "read-only")
        with ui.element("div").classes("w-full grid gap-3 p-4 grid-cols-1 xl:grid-cols-2"):
            with ui.card().classes("xl:col-span-2"):
                with ui.row().classes("w-full items-center"):
                    ui.label(t("policy.versions")).classes("font-medium")
                    ui.space()
                    if self.may_edit:
                        testid(ui.button(t("policy.rollback"), on_click=self._confirm_rollback)
                               .props("outline no-caps color=negative"), "policy-rollback")
                self.versions_box = testid(ui.column().classes("w-full gap-0"),
                                           "policy-versions")
            with ui.card():
                self.active_title = testid(ui.label("").classes("font-medium"),
                                           "policy-active-title")
                self.active_text = testid(ui.element("pre").classes(
                    "w-full fp-mono text-sm whitespace-pre-wrap"), "policy-active")
            with ui.card():
                ui.label(t("policy.draft")).classes("font-medium")
                self.editor = testid(ui.textarea(t("policy.text"))
                                     .props("outlined autogrow spellcheck=false")
                                     .classes("w-full fp-mono"), "policy-text")
                with ui.row().classes("items-end gap-2"):
                    testid(ui.button(t("policy.validate"), on_click=self.validate)
                           .props("unelevated no-caps"), "policy-validate")
                    self.days = testid(ui.number(t("policy.days"),
                                                 value=BACKTEST_DAYS_DEFAULT, min=1,
                                                 max=BACKTEST_DAYS_MAX, step=1, precision=0)
                                       .props("dense outlined").classes("w-28"),
                                       "policy-days")
                    testid(ui.button(t("policy.backtest"), on_click=self.backtest)
                           .props("outline no-caps"), "policy-backtest")
                if self.may_edit:
                    with ui.row().classes("w-full items-end gap-2"):
                        self.note = testid(ui.input(t("policy.note"))
                                           .props(f"dense outlined maxlength={NOTE_MAX}")
                                           .classes("flex-1"), "policy-note")
                        testid(ui.button(t("policy.save"), on_click=self.save)
                               .props("unelevated no-caps color=primary"), "policy-save")
            with ui.card().classes("xl:col-span-2"):
                self.result = testid(ui.column().classes("w-full gap-1"), "policy-result")
                with self.result:
                    ui.label(t("policy.result_hint")).classes("text-sm opacity-70")
        with ui.dialog() as self.rollback_dialog, ui.card():
            testid(ui.label(t("policy.rollback_confirm")), "rollback-question")
            with ui.row().classes("gap-2"):
                testid(ui.button(t("policy.rollback_yes"), on_click=self.rollback)
                       .props("unelevated no-caps color=negative"), "rollback-yes")
                testid(ui.button(t("policy.cancel"), on_click=self.rollback_dialog.close)
                       .props("flat no-caps"), "rollback-no")
        active = await self._load()
        self.editor.set_value(active if active is not None else TEMPLATE)

    # --- the versions and the active policy --------------------------------------------------

    async def _load(self) -> str | None:
        """The versions and the active policy as the API has them; the active text."""
        page, t = self.page, self.page.t
        found = await page.call(page.client.risk_policies())
        active = await page.call(page.client.active_risk_policy())
        self.versions_box.clear()
        with self.versions_box:
            versions = [] if found is None else found.data[:VERSIONS_SHOWN_MAX]
            if not versions:
                testid(ui.label(t("policy.no_versions")).classes("opacity-70"),
                       "policy-no-versions")
            for version in versions:
                self._version_row(version)
        policy = None if active is None else active.policy
        self.active_title.set_text(t("policy.active", version=policy.version)
                                   if policy is not None else t("policy.none_active"))
        self.active_title.props(f'data-version="{"" if policy is None else policy.version}"')
        self.active_text.clear()
        with self.active_text:
            ui.label(policy.text or "" if policy is not None else "").classes("fp-mono")
        return None if policy is None else policy.text

    def _version_row(self, version: Any) -> None:
        page, t = self.page, self.page.t
        state = str(version.state)
        row = ui.row().classes("w-full items-center gap-3 text-sm py-1 border-b")
        with testid(row, f"policy-version-{version.version}").props(f'data-state="{state}"'):
            ui.label(f"v{version.version}").classes("w-10 font-medium")
            key = POLICY_STATE_KEYS.get(state)
            testid(ui.badge(t(key) if key else state,
                            color=POLICY_STATE_COLOURS.get(state, "grey")), "policy-state")
            ui.label(t("policy.by", actor=actor_text(version.created_by, page.locale) or "?",
                       at=time_text(version.created_at_us, with_date=True))) \
                .classes("w-72")
            activated = "" if version.activated_at_us is None else t(
                "policy.activated_by",
                actor=actor_text(version.activated_by, page.locale) or "?",
                at=time_text(version.activated_at_us, with_date=True))
            ui.label(activated).classes("w-72")
            ui.label(version.note or "").classes("flex-1 fp-wrap")
            testid(ui.button(t("policy.open"), on_click=lambda v=version.version: self.open(v))
                   .props("flat dense no-caps"), "policy-open")
            if self.may_edit and state == "draft":
                testid(ui.button(t("policy.activate"),
                                 on_click=lambda v=version.version: self.activate(v))
                       .props("unelevated dense no-caps color=positive"), "policy-activate")

    async def open(self, version: int) -> None:
        """A version's text into the editor, and its diff against the active one."""
        page = self.page
        found = await page.call(page.client.risk_policy(version))
        if found is None:
            return
        self.editor.set_value(found.text or "")
        self.result.clear()
        with self.result:
            ui.label(page.t("policy.opened", version=version)).classes("font-medium")
            self._diff(found.diff or [])

    # --- checks ------------------------------------------------------------------------------

    def _text(self) -> str:
        return str(self.editor.value or "")

    async def validate(self) -> None:
        page, t = self.page, self.page.t
        text = self._text()
        if not text.strip():
            self._say(t("policy.empty"), "negative")
            return
        try:
            checked = await page.client.validate_risk_policy(text)
        except ApiError as error:
            self._refused(error, text)
            return
        self.result.clear()
        with self.result:
            testid(ui.label(t("policy.valid")).classes("text-positive font-medium"),
                   "policy-valid")
            testid(ui.label(summary_text(checked.summary, page.locale)).classes("text-sm"),
                   "policy-summary")
            self._diff(checked.diff)

    async def backtest(self) -> None:
        page, t = self.page, self.page.t
        text = self._text()
        if not text.strip():
            self._say(t("policy.empty"), "negative")
            return
        days = int(self.days.value or BACKTEST_DAYS_DEFAULT)
        if not 1 <= days <= BACKTEST_DAYS_MAX:
            self._say(t("policy.days_bad", max=BACKTEST_DAYS_MAX), "negative")
            return
        self._say(t("policy.backtesting", days=days), "info")
        try:
            found = await page.client.backtest_risk_policy(text, days)
        except ApiError as error:
            self._refused(error, text)
            return
        self.result.clear()
        with self.result:
            self._backtest(found)

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

    def _diff(self, lines: list[str]) -> None:
        t = self.page.t
        if len(lines) <= 2:  # the two headers only: the same text
            testid(ui.label(t("policy.no_diff")).classes("text-sm opacity-70"), "policy-diff")
            return
        ui.label(t("policy.diff")).classes("font-medium")
        with testid(ui.element("pre").classes("w-full fp-mono text-sm m-0"), "policy-diff"):
            for line in lines:
                ui.label(line or " ").classes(f"fp-mono fp-diff-{diff_kind(line)} "
                                              "whitespace-pre-wrap")

    def _refused(self, error: ApiError, text: str) -> None:
        """A refusal: an invalid policy with its line marked in the draft's listing, any
        other as every page says it."""
        page, t = self.page, self.page.t
        self.result.clear()
        if error.code != "invalid_policy":
            page.report(error)
            with self.result:
                testid(ui.label(page.problem(error)).classes("text-negative"), "policy-error")
            return
        lines = text.splitlines()
        line = error_line(error.facts or {}, len(lines))
        with self.result:
            said = t("policy.invalid_line", line=line, detail=error.detail) if line is not None \
                else t("policy.invalid", detail=error.detail)
            testid(ui.label(said).classes("text-negative font-medium"), "policy-error") \
                .props(f'data-line="{line or ""}"')
            if line is None:
                return
            first = max(1, line - 3)
            with testid(ui.element("pre").classes("w-full fp-mono text-sm m-0"),
                        "policy-listing"):
                for number in range(first, min(len(lines), line + 3) + 1):
                    mark = "fp-line-error" if number == line else ""
                    testid(ui.label(f"{number:>4}  {lines[number - 1]}")
                           .classes(f"fp-mono whitespace-pre-wrap {mark}"),
                           "policy-error-line" if number == line else "policy-line")

    def _say(self, text: str, tone: str) -> None:
        self.result.clear()
        with self.result:
            testid(ui.label(text).classes(f"text-{tone}"), "policy-message")

    # --- changes -----------------------------------------------------------------------------

    async def save(self) -> None:
        page, t = self.page, self.page.t
        text = self._text()
        if not text.strip():
            self._say(t("policy.empty"), "negative")
            return
        if self.busy:
            return
        self.busy = True
        try:
            saved = await page.client.draft_risk_policy(
                text, (self.note.value or "").strip() or None,
                idempotency_key=str(uuid.uuid4()))
        except ApiError as error:
            self._refused(error, text)
            return
        finally:
            self.busy = False
        ui.notify(t("policy.saved", version=saved.version), type="positive")
        self._say(t("policy.saved", version=saved.version), "positive")
        self.note.set_value("")
        await self._load()

    async def activate(self, version: int) -> None:
        page, t = self.page, self.page.t
        if self.busy:
            return
        self.busy = True
        try:
            done = await page.call(page.client.activate_risk_policy(
                version, idempotency_key=str(uuid.uuid4())))
        finally:
            self.busy = False
        if done is None:
            return
        ui.notify(t("policy.activated", version=version), type="positive")
        self._say(t("policy.activated", version=version), "positive")
        await self._load()

    def _confirm_rollback(self) -> None:
        self.rollback_dialog.open()

    async def rollback(self) -> None:
        page, t = self.page, self.page.t
        self.rollback_dialog.close()
        done = await page.call(page.client.rollback_risk_policy(
            idempotency_key=str(uuid.uuid4())))
        if done is None:
            return
        ui.notify(t("policy.rolled_back", version=done.version), type="positive")
        self._say(t("policy.rolled_back", version=done.version), "positive")
        active = await self._load()
        if active is not None:
            self.editor.set_value(active)


@console_page(POLICIES_PATH, needs=P.RISK_READ, title="risk.policies")
async def policies_page(page: Page) -> None:
    await Editor(page).build()
