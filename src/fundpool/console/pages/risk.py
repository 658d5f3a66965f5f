"""The review queue (风控审核队列) and one case's page: where a risk officer works the payments
risk control held.

`/risk` lists the cases from `GET /v1/risk/cases`, those past their SLA first, then the most
urgent: the payment, the case's kind (review, or the urgent hold), its state, the groups that
fired, when it opened and is due, and who claimed it. Filters (state, kind, breached only) live
in the URL, so the alert bar's links open the queue as the alert means it (`risk:hold`: the
hold cases; `risk:breached`: the cases past their SLA). Two more tabs show what risk control
found and did by itself: the suspected fraud rings (pages/rings.py; `?view=rings`, where the
alert bar's `risk:rings` alert leads) and the limits its automatic responses lowered
(pages/limits.py; `?view=limits`), each tab with its count. One timer refreshes the three in
place every `REFRESH_S` seconds.

`/risk/cases/{id}` shows the case: its payment (amount, payee, destination, initiator, its
status as it moves), the risk decision (console/decision.py), the notes with who wrote each,
and, for a role with `payments:review`, claim, comment, escalate, release and reject with a
note. Each action but a claim needs a note: the page says so in the user's language before it
calls the API. The API decides the rest (the initiator never decides their own payment's case,
only the claimer decides a claimed case, a closed case stays closed), and its refusal is said
in the user's language. A released payment moves on by itself (the engine routes it); the page
follows its status.
"""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

from nicegui import ui

from fundpool.auth.roles import P
from fundpool.client.errors import ApiError
from fundpool.console.decision import case_path, show_decision
from fundpool.console.desk import NOBODY, age_text
from fundpool.console.feed import KINDS, STATE_TONES
from fundpool.console.format import time_text
from fundpool.console.pages.limits import LimitsTab
from fundpool.console.pages.rings import RINGS_REFRESH_S, RingsTab
from fundpool.console.risk import (
    CASE_ACTIONS,
    CASE_KIND_KEYS,
    CASE_STATE_COLOURS,
    CASE_STATE_TONES,
    CASE_STATES,
    OPEN_STATES,
    CaseAction,
    QueueFilter,
    case_kind_text,
    case_state_text,
    note_action_text,
    queue_order,
    queue_view,
)
from fundpool.console.shell import Page, console_page, href, page_link, testid
from fundpool.console.texts import actor_text, reason_text
from fundpool.payments.model import TERMINAL_STATES
from fundpool.risk.service import NOTE_MAX
from fundpool.runtime import SystemClock

REFRESH_S = 3.0
FINAL_STATES = frozenset(state.value for state in TERMINAL_STATES)
CASES_READ_MAX = 500  # cases the queue reads per refresh (the API's most urgent first)
QUEUE_PATH = "/risk"
POLICIES_PATH = "/risk/policies"


def _actor(page: Page, actor: Any) -> str:
    return actor_text(actor, page.locale, recorded=False) or NOBODY


def _state_text(page: Page, state: str) -> str:
    return page.t(f"state.{state}") if state in STATE_TONES else state


def risk_header(page: Page, current: str) -> None:
    """The risk pages' own links: the queue and the policies."""
    with ui.row().classes("w-full items-center gap-4 px-4 pt-3"):
        for path, key, name in ((QUEUE_PATH, "risk.queue", "to-queue"),
                                (POLICIES_PATH, "risk.policies", "to-policies")):
            if path == current:
                testid(ui.label(page.t(key)).classes("text-2xl font-semibold"), "page-title")
            else:
                testid(page_link(page.t(key), path).classes("text-lg"), name)


# --- the queue -------------------------------------------------------------------------------


class Queue:
    def __init__(self, page: Page) -> None:
        self.page = page
        self.filter = QueueFilter.from_query(page.request.query_params)
        self.view = queue_view(page.request.query_params)
        self.rings = RingsTab(page)
        self.limits = LimitsTab(page)
        self.refreshes = 0

    def build(self) -> None:
        page, t = self.page, self.page.t
        risk_header(page, QUEUE_PATH)
        badges: dict[str, ui.badge] = {}
        with testid(ui.tabs(), "queue-tabs") \
                .props("dense no-caps align=left").classes("px-4") as tabs:
            for view, key, colour in (("cases", "risk.tab_cases", "warning"),
                                      ("rings", "risk.tab_rings", "negative"),
                                      ("limits", "risk.tab_limits", "deep-orange")):
                with testid(ui.tab(view, label=t(key)), f"tab-{view}"):
                    badges[view] = testid(ui.badge("", color=colour).props("floating"),
                                          f"tab-{view}-count")
                    badges[view].set_visibility(False)
        tabs.set_value(self.view)
        self.cases_badge = badges["cases"]
        with ui.tab_panels(tabs, value=self.view, animated=False).classes("w-full"):
            with ui.tab_panel("cases").classes("p-0 gap-2"):
                self._cases()
            with ui.tab_panel("rings").classes("px-4 py-2"):
                self.rings.build(badges["rings"])
            with ui.tab_panel("limits").classes("px-4 py-2"):
                self.limits.build(badges["limits"])
        # A timer a tab: the cases every REFRESH_S, the limits likewise, the rings (a graph
        # search over the window's payouts) every RINGS_REFRESH_S; a timer awaits its call,
        # so none overlaps itself.
        page.every(REFRESH_S, self.refresh)
        page.every(REFRESH_S, self.limits.refresh)
        page.every(RINGS_REFRESH_S, self.rings.refresh)

    def _cases(self) -> None:
        page, t = self.page, self.page.t
        with ui.row().classes("w-full items-center gap-3 px-4"):
            self.count = testid(ui.badge("…", color="warning").classes("text-sm"),
                                "cases-count")
            self.breached = testid(ui.badge("", color="negative").classes("text-sm"),
                                   "cases-breached")
            self.breached.set_visibility(False)
        self._filters()
        if not page.signed.may(P.PAYMENTS_REVIEW):
            testid(ui.label(t("risk.read_only", roles=page.roles_text()))
                   .classes("px-4 text-warning"), "read-only")
        self.table = testid(ui.table(columns=self._columns(), rows=[], row_key="id",
                                     pagination=0)
                            .props("dense flat wrap-cells").classes("w-full px-4"), "cases")
        # One row per case, marked for the tests, opened by a click anywhere on it but the
        # payment's own link.
        self.table.add_slot("body", r"""
            <q-tr :props="props" class="cursor-pointer"
                  :class="props.row.breached ? 'fp-breached' : ''"
                  :data-testid="'case-' + props.row.id"
                  :data-breached="props.row.breached ? 'true' : 'false'"
                  :data-kind="props.row.kind_code" :data-state="props.row.state_code"
                  @click="() => $parent.$emit('open', props.row.id)">
              <q-td v-for="col in props.cols" :key="col.name" :props="props"
                    :data-col="col.name" style="white-space: pre-line">
                <a v-if="col.name === 'payment'" :href="props.row.payment_link"
                   @click.stop>{{ col.value }}</a>
                <span v-else :class="col.name === 'state' ? 'fp-tone-' + props.row.tone
                                     : (col.name === 'due' && props.row.breached
                                        ? 'fp-tone-bad' : '')">{{ col.value }}</span>
              </q-td>
            </q-tr>""")
        self.table.on("open", self._clicked)
        self.none = testid(ui.label(t("risk.none")).classes("px-4 opacity-70"), "cases-none")
        self.none.set_visibility(False)

    def _filters(self) -> None:
        page, t = self.page, self.page.t
        f = self.filter
        with ui.row().classes("w-full items-end gap-3 px-4"):
            testid(ui.select({s: case_state_text(s, page.locale) for s in CASE_STATES},
                             value=list(f.states), multiple=True, label=t("risk.filter_state"),
                             on_change=lambda e: self._set(states=tuple(e.value or ())))
                   .props("dense outlined options-dense use-chips").classes("w-96"),
                   "filter-state")
            kinds = {"": t("filter.any"),
                     **{k: case_kind_text(k, page.locale) for k in CASE_KIND_KEYS}}
            testid(ui.select(kinds, value=f.kind or "", label=t("risk.filter_kind"),
                             on_change=lambda e: self._set(kind=e.value or None))
                   .props("dense outlined options-dense").classes("w-40"), "filter-kind")
            testid(ui.checkbox(t("risk.filter_breached"), value=f.breached,
                               on_change=lambda e: self._set(breached=bool(e.value))),
                   "filter-breached")

    def _set(self, **changes: Any) -> None:
        updated = dataclasses.replace(self.filter, **changes)
        states = tuple(s for s in CASE_STATES if s in updated.states) or OPEN_STATES
        updated = dataclasses.replace(updated, states=states)
        if updated != self.filter:
            # The filters are the cases tab's: the page opens again on it.
            ui.navigate.to(self.page.here(**updated.query(), view=None))

    def _columns(self) -> list[dict[str, Any]]:
        t = self.page.t
        return [
            {"name": "payment", "label": t("col.payment"), "field": "payment", "align": "left"},
            {"name": "kind", "label": t("risk.col_kind"), "field": "kind", "align": "left"},
            {"name": "state", "label": t("col.state"), "field": "state", "align": "left"},
            {"name": "summary", "label": t("risk.col_summary"), "field": "summary",
             "align": "left"},
            {"name": "opened", "label": t("risk.col_opened"), "field": "opened",
             "align": "left"},
            {"name": "due", "label": t("risk.col_due"), "field": "due", "align": "left"},
            {"name": "claimed", "label": t("risk.col_claimed"), "field": "claimed",
             "align": "left"},
        ]

    async def refresh(self) -> None:
        page, t = self.page, self.page.t
        found = await page.call(page.client.risk_cases(list(self.filter.states),
                                                       limit=CASES_READ_MAX), quiet=True)
        if found is None:
            return  # the list keeps what it showed until the next tick
        cases = queue_order(c for c in found.data if self.filter.keeps(c))
        now_us = SystemClock().now_us()
        self.table.rows = [self._row(c, now_us) for c in cases]
        self.table.update()
        self.refreshes += 1
        breached = sum(1 for c in cases if c.breached)
        self.count.set_text(t("risk.count", count=f"{len(cases):,}"))
        self.count.props(f'data-count="{len(cases)}" data-refreshes="{self.refreshes}"')
        self.breached.set_text(t("risk.count_breached", count=f"{breached:,}"))
        self.breached.set_visibility(breached > 0)
        self.cases_badge.set_text(f"{len(cases):,}")
        self.cases_badge.set_visibility(bool(cases))
        self.none.set_visibility(not cases)
        self.table.set_visibility(bool(cases))

    def _row(self, case: Any, now_us: int) -> dict[str, Any]:
        page, t = self.page, self.page.t
        due_in = case.due_at_us - now_us
        due = time_text(case.due_at_us, with_date=True) + "\n" + (
            t("risk.overdue", age=age_text(-due_in, page.locale)) if due_in < 0
            else t("risk.due_in", age=age_text(due_in, page.locale)))
        return {
            "id": case.id, "payment": case.payment_id[-12:],
            "payment_link": href("/stream", {"payment": case.payment_id}),
            "kind": case_kind_text(case.kind, page.locale), "kind_code": case.kind,
            "state": case_state_text(case.state, page.locale), "state_code": case.state,
            "tone": CASE_STATE_TONES.get(case.state, "neutral"),
            "summary": reason_text(case.summary, page.locale),
            "opened": time_text(case.opened_at_us, with_date=True),
            "due": due, "breached": bool(case.breached),
            "claimed": _actor(page, case.claimed_by) if case.claimed_by is not None else "",
        }

    async def _clicked(self, event: Any) -> None:
        args = event.args
        case_id = args[0] if isinstance(args, list) and args else args
        if isinstance(case_id, str) and case_id:
            ui.navigate.to(case_path(case_id))


@console_page(QUEUE_PATH, needs=P.RISK_READ, title="risk.queue")
async def queue_page(page: Page) -> None:
    Queue(page).build()


# --- one case --------------------------------------------------------------------------------


class CaseView:
    def __init__(self, page: Page, case_id: str) -> None:
        self.page = page
        self.case_id = case_id
        self.may_act = page.signed.may(P.PAYMENTS_REVIEW)
        self.acting = False
        self.buttons: list[ui.button] = []
        self.shown_key: tuple[object, ...] | None = None  # what the notes and decision show
        self.refreshes = 0
        self.payment: Any = None  # the case's payment, read again until it has ended

    async def build(self) -> None:
        page, t = self.page, self.page.t
        risk_header(page, "")
        case = await page.call(page.client.risk_case(self.case_id))
        if case is None:
            return
        with ui.row().classes("w-full items-center gap-3 px-4"):
            testid(ui.label(t("case.title", id=case.id[-12:])).classes("text-xl font-medium"),
                   "case-title").props(f'data-case="{case.id}"')
            self.state_badge = testid(ui.badge(""), "case-state")
            self.kind_badge = testid(ui.badge(""), "case-kind")
            self.breached_badge = testid(ui.badge(t("case.breached"), color="negative"),
                                         "case-breached")
        with ui.element("div").classes("w-full grid gap-3 p-4 grid-cols-1 xl:grid-cols-2"):
            with ui.card():
                ui.label(t("case.payment")).classes("font-medium")
                self.facts_box = testid(ui.column().classes("w-full"), "case-facts")
            with ui.card():
                ui.label(t("riskview.title")).classes("font-medium")
                self.decision_box = testid(ui.column().classes("w-full gap-1"), "case-decision")
            with ui.card():
                ui.label(t("case.notes")).classes("font-medium")
                self.notes_box = testid(ui.column().classes("w-full gap-1"), "case-notes")
            with ui.card():
                ui.label(t("case.actions")).classes("font-medium")
                self.actions = ui.column().classes("w-full")
                with self.actions:
                    self._actions()
                self.closed_label = testid(ui.label("").classes("opacity-70"), "case-closed")
        await self._show(case)
        page.every(REFRESH_S, self.refresh)

    def _actions(self) -> None:
        page, t = self.page, self.page.t
        if not self.may_act:
            testid(ui.label(t("case.read_only", roles=page.roles_text()))
                   .classes("text-warning"), "read-only")
            return
        self.note = testid(ui.textarea(t("case.note"))
                           .props(f"outlined autogrow maxlength={NOTE_MAX} counter")
                           .classes("w-full"), "case-note")
        self.error = testid(ui.label("").classes("text-negative"), "case-error")
        with ui.row().classes("gap-2"):
            for action, (label, colour, _, _) in CASE_ACTIONS.items():
                self.buttons.append(testid(
                    ui.button(t(label), on_click=lambda a=action: self.act(a))
                    .props(f"unelevated no-caps color={colour}"), f"case-{action}"))

    async def refresh(self) -> None:
        """The case and its payment as they now stand (a note being written is left alone)."""
        if self.acting:
            return
        case = await self.page.call(self.page.client.risk_case(self.case_id), quiet=True)
        if case is not None and not self.acting:
            await self._show(case)

    async def _show(self, case: Any) -> None:
        page, t = self.page, self.page.t
        self.refreshes += 1
        self.state_badge.set_text(case_state_text(case.state, page.locale))
        self.state_badge.props(f'data-state="{case.state}" data-refreshes="{self.refreshes}" '
                               f'color={CASE_STATE_COLOURS.get(case.state, "grey")}')
        self.kind_badge.set_text(case_kind_text(case.kind, page.locale))
        self.kind_badge.props(f'data-kind="{case.kind}" color='
                              f'{"deep-orange" if case.kind == "hold" else "warning"}')
        self.breached_badge.set_visibility(bool(case.breached))
        # The payment is read again only while it can still move (its timeline comes with
        # it: not worth a call a tick once it has ended).
        ended = self.payment is not None and str(self.payment.state) in FINAL_STATES
        if not ended:
            self.payment = await page.call(page.client.payment(case.payment_id),
                                           quiet=True) or self.payment
        self.facts_box.clear()
        with self.facts_box:
            self._facts(case, self.payment)
        # The decision and the notes change rarely: drawn again only when they do.
        key = (case.version, len(case.notes), case.decision is not None)
        if key != self.shown_key:
            self.shown_key = key
            self.decision_box.clear()
            with self.decision_box:
                show_decision(page, case.decision)
            self.notes_box.clear()
            with self.notes_box:
                self._notes(case.notes)
        closed = case.state not in OPEN_STATES
        self.actions.set_visibility(not closed)
        self.closed_label.set_text(t("case.closed_by", state=case_state_text(case.state,
                                                                              page.locale),
                                     actor=_actor(page, case.decided_by))
                                   if closed else "")
        self.closed_label.set_visibility(closed)

    def _facts(self, case: Any, payment: Any | None) -> None:
        page, t = self.page, self.page.t
        now_us = SystemClock().now_us()
        due_in = case.due_at_us - now_us
        facts: list[tuple[str, str, str]] = []
        if payment is not None:
            amount, _ = page.amounts(int(payment.amount_minor), payment.asset)
            facts += [
                ("col.kind", t(f"kind.{payment.kind}") if payment.kind in KINDS
                 else str(payment.kind), "kind"),
                ("col.amount", f"{amount} {payment.asset}", "amount"),
                ("approvals.col_payee", payment.counterparty or NOBODY, "payee"),
                ("approvals.destination", getattr(payment, "destination", None) or NOBODY,
                 "destination"),
                ("approvals.reference", payment.reference or NOBODY, "reference"),
                ("approvals.col_initiator",
                 _actor(page, getattr(payment, "initiated_by", None)), "initiator"),
                ("col.channel", payment.channel or NOBODY, "channel"),
            ]
        facts += [
            ("risk.col_opened", time_text(case.opened_at_us, with_date=True), "opened"),
            ("risk.col_due", time_text(case.due_at_us, with_date=True) + " · " + (
                t("risk.overdue", age=age_text(-due_in, page.locale)) if due_in < 0
                else t("risk.due_in", age=age_text(due_in, page.locale))), "due"),
            ("risk.col_claimed", _actor(page, case.claimed_by)
             if case.claimed_by is not None else NOBODY, "claimed"),
        ]
        with ui.grid(columns="max-content 1fr").classes("w-full gap-x-6 gap-y-1 text-sm"):
            ui.label(t("col.payment")).classes("opacity-70")
            testid(ui.link(case.payment_id, href("/stream", {"payment": case.payment_id}))
                   .classes("break-all"), "case-payment")
            if payment is not None:
                ui.label(t("case.payment_state")).classes("opacity-70")
                state = str(payment.state)
                testid(ui.label(_state_text(page, state))
                       .classes(f"fp-tone-{STATE_TONES.get(state, 'neutral')}"),
                       "case-payment-state").props(f'data-state="{state}"')
            for key, value, name in facts:
                ui.label(t(key)).classes("opacity-70")
                testid(ui.label(value).classes("break-all"), f"case-{name}")

    def _notes(self, notes: list[Any]) -> None:
        page = self.page
        for note in notes:
            line = ui.row().classes("w-full gap-3 items-baseline no-wrap text-sm")
            with testid(line, f"note-{note.seq}").props(f'data-action="{note.action}"'):
                ui.label(time_text(note.at_us, with_date=True)) \
                    .classes("w-44 shrink-0 opacity-70 fp-card-value")
                ui.label(note_action_text(note.action, page.locale)).classes("w-28 shrink-0")
                ui.label(page.t("approvals.by", actor=_actor(page, note.actor))) \
                    .classes("w-40 shrink-0 break-all")
                ui.label(note.note or "").classes("fp-wrap")

    async def act(self, action: CaseAction) -> None:
        page, t = self.page, self.page.t
        if self.acting:
            return
        _, _, needs_note, done = CASE_ACTIONS[action]
        note = (self.note.value or "").strip() or None
        if needs_note and note is None:
            self.error.set_text(t("case.note_required"))
            return
        self.error.set_text("")
        self.acting = True
        for button in self.buttons:
            button.disable()
        try:
            # A key per click: the client's own retry of this request is never a second act.
            case = await page.client.act_on_risk_case(self.case_id, action, note,
                                                      idempotency_key=str(uuid.uuid4()))
        except ApiError as error:
            self.error.set_text(page.problem(error))
            page.report(error)
            return
        finally:
            self.acting = False
            for button in self.buttons:
                button.enable()
        self.note.set_value("")
        ui.notify(t(done, id=self.case_id[-12:]), type="positive")
        await self._show(case)


@console_page("/risk/cases/{case_id}", needs=P.RISK_READ, title="case.page_title")
async def case_page(page: Page) -> None:
    case_id = str(page.request.path_params.get("case_id") or "")
    await CaseView(page, case_id).build()
