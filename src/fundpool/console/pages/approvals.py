"""The approvals desk (审批台): the payments waiting for approval, the oldest first, and where an
approver approves or rejects one with a note.

The list is `GET /v1/payments?state=pending_approval` (console/desk.py makes the rows): each
payment's amount, payee (counterparty and destination), route (channel and fee), how long it
has waited and who initiated it. It refreshes every `REFRESH_S` seconds in place; the open
payment's dialog is an element of its own, so a refresh never closes it nor loses a note
being written. A payment that stops waiting while it is open (another approver, a
cancellation) says so in the dialog.

Opening a row shows the payment and its timeline, each step with who took it. Approve and
reject are `POST /v1/payments/{id}/approve` and `/decline` with the note as the reason; the
service decides (the initiator may never approve their own payment, a payment no longer
waiting cannot be decided, a role without the route's permission is refused), and its refusal
is said in the user's language. An approved payment moves on by itself (the engine).

What a user is offered follows the API's own routes: the permission each action needs is read
from the route (`x-permission`), so the page offers exactly what the API would accept. A user
who may do neither sees the list read-only, with a note saying so.
"""

from __future__ import annotations

import uuid
from typing import Any, Literal

from fastapi import FastAPI
from fastapi.routing import APIRoute
from nicegui import ui

from fundpool.auth.roles import P
from fundpool.client.errors import ApiError, Unauthorized, Unreachable
from fundpool.console.desk import (
    NOBODY,
    WAITING_READ_MAX,
    WAITING_SHOWN_MAX,
    Waiting,
    actor_name,
    age_text,
    oldest_first,
    refusal_text,
    waiting_of,
)
from fundpool.console.feed import KINDS, STATE_TONES
from fundpool.console.format import time_text
from fundpool.console.shell import Page, console_page, testid
from fundpool.monitoring.replay import parse_instant
from fundpool.payments.rules import TEXT_FIELD_LENGTH_MAX
from fundpool.runtime import SystemClock
from fundpool.server.v1.security import PERMISSION_KEY

REFRESH_S = 3.0
APPROVE_PATH = "/v1/payments/{payment_id}/approve"
REJECT_PATH = "/v1/payments/{payment_id}/decline"  # an approver's no
Decision = Literal["approve", "reject"]
# Each decision: its button's words and colour, and what is said once it is taken.
DECISIONS: dict[Decision, tuple[str, str, str]] = {
    "approve": ("approvals.approve", "positive", "approvals.approved"),
    "reject": ("approvals.reject", "negative", "approvals.rejected"),
}


def route_permission(app: FastAPI, path: str, default: str) -> str:
    """The permission the API's POST route at `path` declares (`default` if none is found)."""
    for found in app.routes:
        if isinstance(found, APIRoute) and found.path == path and "POST" in (found.methods or ()):
            return str((found.openapi_extra or {}).get(PERMISSION_KEY, default))
    return default


class Desk:
    def __init__(self, page: Page) -> None:
        self.page = page
        self.pool = page.console.api.pool(page.request.query_params.get("pool"))
        app = page.console.app
        self.may: dict[Decision, bool] = {
            "approve": page.signed.may(route_permission(app, APPROVE_PATH, P.PAYMENTS_APPROVE)),
            "reject": page.signed.may(route_permission(app, REJECT_PATH, P.PAYMENTS_APPROVE)),
        }
        self.waiting: dict[str, Waiting] = {}
        self.refreshes = 0
        self.busy = False  # a refresh is running: the next tick skips
        self.open_id: str | None = None  # the payment in the dialog
        self.deciding = False  # its decision is on its way to the API
        self.decided = False  # and was taken: the dialog shows the outcome
        self.buttons: list[ui.button] = []

    # --- layout -----------------------------------------------------------------------------

    def build(self) -> None:
        page, t = self.page, self.page.t
        with ui.row().classes("w-full items-center gap-3 px-4 pt-3"):
            ui.label(t("approvals.title")).classes("text-2xl font-semibold")
            self.count = testid(ui.badge("…", color="warning").classes("text-sm"),
                                "waiting-count")
            self.more = testid(ui.label("").classes("text-sm opacity-70"), "waiting-more")
        if not any(self.may.values()):
            testid(ui.label(t("approvals.read_only", roles=page.roles_text()))
                   .classes("px-4 text-warning"), "read-only")
        self.table = testid(ui.table(columns=self._columns(), rows=[], row_key="id",
                                     pagination=0)
                            .props("dense flat wrap-cells").classes("w-full px-4"), "waiting")
        # One row per payment, marked for the tests and opened by a click anywhere on it.
        self.table.add_slot("body", r"""
            <q-tr :props="props" class="cursor-pointer"
                  :data-testid="'waiting-' + props.row.id"
                  @click="() => $parent.$emit('open', props.row.id)">
              <q-td v-for="col in props.cols" :key="col.name" :props="props"
                    :data-col="col.name" style="white-space: pre-line">{{ col.value }}</q-td>
            </q-tr>""")
        self.table.on("open", self._clicked)
        self.none = testid(ui.label(t("approvals.none")).classes("px-4 opacity-70"),
                           "waiting-none")
        self.none.set_visibility(False)
        with ui.dialog() as self.dialog, ui.card().classes("w-[860px] max-w-full"):
            self.dialog_body = testid(ui.column().classes("w-full"), "decision")
        self.dialog.on_value_change(lambda e: None if e.value else self._closed())
        page.every(REFRESH_S, self.refresh)

    def _columns(self) -> list[dict[str, Any]]:
        t = self.page.t
        return [
            {"name": "waiting", "label": t("approvals.col_waiting"), "field": "waiting",
             "align": "left"},
            {"name": "amount", "label": t("approvals.col_amount"), "field": "amount",
             "align": "right"},
            {"name": "payee", "label": t("approvals.col_payee"), "field": "payee",
             "align": "left"},
            {"name": "route", "label": t("approvals.col_route"), "field": "route",
             "align": "left"},
            {"name": "initiator", "label": t("approvals.col_initiator"), "field": "initiator",
             "align": "left"},
            {"name": "kind", "label": t("col.kind"), "field": "kind", "align": "left"},
            {"name": "short", "label": t("approvals.col_payment"), "field": "short",
             "align": "left"},
        ]

    # --- the list ---------------------------------------------------------------------------

    async def refresh(self) -> None:
        if self.busy:
            return
        self.busy = True
        try:
            await self._refresh()
        finally:
            self.busy = False

    async def _refresh(self) -> None:
        page, t = self.page, self.page.t
        found = await page.call(page.client.payments(
            self.pool.id, state="pending_approval", limit=WAITING_READ_MAX), quiet=True)
        if found is None:
            return  # the list keeps what it showed until the next tick
        rows = oldest_first(waiting_of(p, parse_instant) for p in found.data)
        self.waiting = {w.payment_id: w for w in rows}
        now_us = SystemClock().now_us()
        self.table.rows = [self._row(w, now_us) for w in rows[:WAITING_SHOWN_MAX]]
        self.table.update()
        self.refreshes += 1
        self.count.set_text(t("approvals.count", count=f"{len(rows):,}"))
        self.count.props(f'data-count="{len(rows)}" data-refreshes="{self.refreshes}"')
        if found.next_cursor is not None:
            self.more.set_text(t("approvals.count_more", read=f"{WAITING_READ_MAX:,}",
                                 shown=f"{min(len(rows), WAITING_SHOWN_MAX):,}"))
        elif len(rows) > WAITING_SHOWN_MAX:
            self.more.set_text(t("approvals.shown", shown=f"{WAITING_SHOWN_MAX:,}"))
        else:
            self.more.set_text("")
        self.none.set_visibility(not rows)
        self.table.set_visibility(bool(rows))
        if self.open_id is not None and self.open_id not in self.waiting \
                and not (self.deciding or self.decided):
            await self._check_still_waiting(self.open_id)

    def _row(self, w: Waiting, now_us: int) -> dict[str, Any]:
        page, t = self.page, self.page.t
        fee = f"{page.amount(w.fee_minor, w.asset)} {w.asset}"
        return {
            "id": w.payment_id,
            "waiting": age_text(now_us - w.waiting_since_us, page.locale),
            "amount": f"{page.amount(w.amount_minor, w.asset)} {w.asset}",
            "payee": "\n".join(p for p in (w.counterparty, w.destination) if p) or NOBODY,
            "route": t("approvals.route", channel=w.channel, fee=fee) if w.channel
            else t("approvals.no_route"),
            "initiator": w.initiated_by or NOBODY,
            "kind": t(f"kind.{w.kind}") if w.kind in KINDS else w.kind,
            "short": w.payment_id[-12:],
        }

    # --- one payment ------------------------------------------------------------------------

    async def _clicked(self, event: Any) -> None:
        args = event.args
        payment_id = args[0] if isinstance(args, list) and args else args
        if isinstance(payment_id, str) and payment_id:
            await self.open(payment_id)

    async def open(self, payment_id: str) -> None:
        page, t = self.page, self.page.t
        detail = await page.call(page.client.payment(payment_id))
        if detail is None:
            return
        self.open_id = payment_id
        self.deciding = self.decided = False
        self.buttons = []
        self.dialog_body.clear()
        with self.dialog_body:
            with ui.row().classes("w-full items-center gap-3"):
                testid(ui.label(t("detail.title", id=detail.id)).classes("text-lg font-medium"),
                       "decision-title")
                self.state_badge = testid(ui.badge(""), "decision-state")
                ui.space()
                testid(ui.button(t("detail.close"), on_click=self.dialog.close)
                       .props("flat no-caps"), "decision-close")
            self.facts_box = ui.column().classes("w-full")
            self.gone = testid(ui.label("").classes("text-warning font-medium"),
                               "decision-gone")
            self.gone.set_visibility(False)
            ui.label(t("detail.timeline")).classes("font-medium")
            self.timeline_box = testid(ui.column().classes("w-full"), "decision-timeline")
            self.actions = ui.column().classes("w-full")
            with self.actions:
                if any(self.may.values()):
                    self.note = testid(ui.textarea(t("approvals.note"))
                                       .props(f"outlined autogrow maxlength="
                                              f"{TEXT_FIELD_LENGTH_MAX} counter")
                                       .classes("w-full"), "decision-note")
                    self.error = testid(ui.label("").classes("text-negative"), "decision-error")
                    with ui.row().classes("gap-2"):
                        for decision, (label, colour, _) in DECISIONS.items():
                            if self.may[decision]:
                                self.buttons.append(testid(ui.button(
                                    t(label), on_click=lambda d=decision: self.decide(d))
                                    .props(f"unelevated no-caps color={colour}"),
                                    f"decision-{decision}"))
        self._show(detail)
        self.dialog.open()

    def _facts(self, detail: Any) -> None:
        page, t = self.page, self.page.t
        waiting = waiting_of(detail, parse_instant)
        now_us = SystemClock().now_us()
        facts = [
            ("approvals.col_amount", f"{page.amount(waiting.amount_minor, waiting.asset)} "
                                     f"{waiting.asset}", "amount"),
            ("col.kind", t(f"kind.{waiting.kind}") if waiting.kind in KINDS else waiting.kind,
             "kind"),
            ("approvals.col_payee", waiting.counterparty or NOBODY, "payee"),
            ("approvals.destination", waiting.destination or NOBODY, "destination"),
            ("approvals.col_route", t("approvals.route", channel=waiting.channel,
                                      fee=f"{page.amount(waiting.fee_minor, waiting.asset)} "
                                          f"{waiting.asset}")
             if waiting.channel else t("approvals.no_route"), "route"),
            ("approvals.reference", waiting.reference or NOBODY, "reference"),
            ("approvals.col_initiator", waiting.initiated_by or NOBODY, "initiator"),
            ("approvals.created", time_text(waiting.created_at_us, with_date=True), "created"),
        ]
        if str(detail.state) == "pending_approval":
            facts.append(("approvals.waiting_since",
                          f"{time_text(waiting.waiting_since_us, with_date=True)} · "
                          f"{age_text(now_us - waiting.waiting_since_us, page.locale)}",
                          "waiting"))
        with ui.grid(columns="max-content 1fr").classes("w-full gap-x-6 gap-y-1 text-sm"):
            for key, value, name in facts:
                ui.label(t(key)).classes("opacity-70")
                testid(ui.label(value).classes("break-all"), f"decision-{name}")

    def _show(self, detail: Any) -> None:
        """The payment's state, facts and timeline as the API now has them (the note being
        written is left alone)."""
        t = self.page.t
        state = str(detail.state)
        self.state_badge.set_text(t(f"state.{state}") if state in STATE_TONES else state)
        self.state_badge.props(f'data-state="{state}"')
        self.state_badge.classes(replace=f"fp-tone-{STATE_TONES.get(state, 'neutral')}")
        self.facts_box.clear()
        with self.facts_box:
            self._facts(detail)
        self.timeline_box.clear()
        with self.timeline_box:
            # One line per step, as an auditor reads a log: when, to what, which action, who,
            # and the note kept with it.
            for event in detail.events:
                to = str(event.to)
                by = actor_name(getattr(event, "actor", None)) or NOBODY
                line = ui.row().classes("w-full gap-3 items-baseline no-wrap text-sm")
                with testid(line, f"event-{event.seq}").props(f'data-action="{event.action}"'):
                    ui.label(time_text(parse_instant(event.at), with_date=True)) \
                        .classes("w-44 shrink-0 opacity-70 fp-card-value")
                    ui.label(t(f"state.{to}") if to in STATE_TONES else to) \
                        .classes(f"w-28 shrink-0 fp-tone-{STATE_TONES.get(to, 'neutral')}")
                    ui.label(str(event.action)).classes("w-32 shrink-0 opacity-70")
                    ui.label(t("approvals.by", actor=by)).classes("w-40 shrink-0 break-all")
                    ui.label(event.reason or "").classes("break-all")
        self.actions.set_visibility(state == "pending_approval" and not self.decided)

    async def _check_still_waiting(self, payment_id: str) -> None:
        """The open payment left the list: say what it is now (the list is newest first and
        bounded, so ask the payment itself rather than trust its absence)."""
        detail = await self.page.call(self.page.client.payment(payment_id), quiet=True)
        if detail is None or self.open_id != payment_id or self.deciding or self.decided:
            return
        state = str(detail.state)
        if state != "pending_approval":
            self._say_gone(state)
            self._show(detail)

    def _say_gone(self, state: str) -> None:
        t = self.page.t
        self.gone.set_text(t("approvals.gone",
                             state=t(f"state.{state}") if state in STATE_TONES else state))
        self.gone.set_visibility(True)

    def _closed(self) -> None:
        self.open_id = None

    # --- the decision -----------------------------------------------------------------------

    async def decide(self, decision: Decision) -> None:
        page, t = self.page, self.page.t
        payment_id = self.open_id
        if payment_id is None or self.deciding or self.decided:
            return
        note = (self.note.value or "").strip() or None
        if decision == "reject" and note is None:
            self.error.set_text(t("approvals.note_required"))
            return
        self.error.set_text("")
        self.deciding = True
        for button in self.buttons:
            button.disable()
        try:
            # A key per click: the client's own retry of this request is never a second act.
            if decision == "approve":
                await page.client.approve_payment(payment_id, note,
                                                  idempotency_key=str(uuid.uuid4()))
            else:
                await page.client.decline_payment(payment_id, note or "",
                                                  idempotency_key=str(uuid.uuid4()))
        except ApiError as error:
            await self._refused(payment_id, error)
            return
        finally:
            self.deciding = False
            for button in self.buttons:
                button.enable()
        self.decided = True
        ui.notify(t(DECISIONS[decision][2], id=payment_id[-12:]), type="positive")
        detail = await page.call(page.client.payment(payment_id))
        if detail is not None and self.open_id == payment_id:
            self._show(detail)
        await self.refresh()

    async def _refused(self, payment_id: str, error: ApiError) -> None:
        page = self.page
        if isinstance(error, Unauthorized | Unreachable):
            page.report(error)
            return
        text = refusal_text(error.code, error.facts, page.locale)
        if text is None:
            page.report(error)  # said as every page says it
            text = page.t("approvals.refused", code=error.code)
        else:
            ui.notify(text, type="negative", multi_line=True)
        self.error.set_text(text)
        if error.code == "illegal_transition":
            detail = await page.call(page.client.payment(payment_id), quiet=True)
            if detail is not None and self.open_id == payment_id:
                self._show(detail)


@console_page("/approvals", needs=P.PAYMENTS_READ, title="approvals.title")
async def approvals_page(page: Page) -> None:
    Desk(page).build()
