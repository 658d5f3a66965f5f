"""The approvals inbox (审批台): the payments waiting for approval, the oldest first, and where an
approver signs one in the browser, rejects it, or cancels it in its delay window.

The list is `GET /v1/approvals?pool=…` (docs/approvals.md): each payment's amount, payee
(counterparty and destination), route (channel and fee), how long it has waited, who initiated
it, how far its signatures are (`1 of 2 signed`, the stage when there are several; for an
approved payment in its delay window, the time left) and the rules that asked for them. It
refreshes every `REFRESH_S` seconds in place; the open payment's dialog is an element of its
own, so a refresh never closes it nor loses a note being written, and it follows the
signatures others give meanwhile.

Opening a row shows the payment, the document the approver signs (what moves, to whom, on
which rail, under which rules and risk policy) and its digest, each stage with who signed it,
and the timeline. "Sign and approve" signs the digest with the key this browser keeps for the
user (console/signing.py: the private key never leaves the browser) and posts
`POST /v1/approvals/{id}/sign` with it (and a TOTP code when the approval asks for one);
"Reject" posts `/reject` with the note as the reason; in the delay window, a user holding a
role the rule names sees "Cancel". The API decides (four eyes, one signature per approver, the
stage's approvers only, the payment being what was signed), and its refusal is said in the
user's language; `you.why_not` says beforehand why the user may not sign. Without a key in
this browser the dialog says so and links to the keys page.

What a user is offered follows the API's own routes: the permission each action needs is read
from the route (`x-permission`). A user who may neither sign nor reject sees the list
read-only, with a note saying so.
"""

from __future__ import annotations

import re
import uuid
from typing import Any, Literal

from fastapi import FastAPI
from fastapi.routing import APIRoute
from nicegui import ui

from fundpool.approvals.rules import LEGACY_RULE_ID
from fundpool.auth.roles import P, Role
from fundpool.client.approvals import ApprovalOut, StageOut
from fundpool.client.errors import ApiError, Unauthorized, Unreachable
from fundpool.console import signing
from fundpool.console.desk import (
    NOBODY,
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
from fundpool.console.pages.keys import KEYS_PATH
from fundpool.console.shell import Page, console_page, page_link, testid
from fundpool.monitoring.replay import parse_instant
from fundpool.runtime import SystemClock
from fundpool.server.v1.security import PERMISSION_KEY

REFRESH_S = 3.0
INBOX_READ_MAX = 500  # waiting payments the inbox reads per refresh (the API's largest page)
SIGN_PATH = "/v1/approvals/{payment_id}/sign"
REJECT_PATH = "/v1/approvals/{payment_id}/reject"
NOTE_MAX = 500  # characters of a note or a reason (approvals/model.py NOTE_MAX)
TOTP_CODE = re.compile(r"^\d{6}$")
Decision = Literal["sign", "reject", "cancel"]
# Each decision: its button's words and colour.
DECISIONS: dict[Decision, tuple[str, str]] = {
    "sign": ("approvals.sign", "positive"),
    "reject": ("approvals.reject", "negative"),
    "cancel": ("approvals.cancel", "warning"),
}
# An approval's state in words (`state` of the API's approval).
APPROVAL_STATES = {
    "waiting": "approvals.state_waiting", "delayed": "approvals.state_delayed",
    "approved": "approvals.state_approved", "rejected": "approvals.state_rejected",
    "cancelled": "approvals.state_cancelled", "ended": "approvals.state_ended",
}
# Why the user may not sign (`you.why_not`), in words.
WHY_NOT = {
    "self_approval": "approvals.why_self_approval",
    "already_signed": "approvals.why_already_signed",
    "not_eligible": "approvals.why_not_eligible",
    "no_signing_key": "approvals.why_no_signing_key",
    "not_waiting": "approvals.why_not_waiting",
}
ROLES = frozenset(role.value for role in Role)  # `role.<name>`
# What the browser may answer when asked to sign, in words.
BROWSER_FAILURES = {"no_key": "approvals.no_key", "unsupported": "keys.unsupported"}


def route_permission(app: FastAPI, path: str, default: str) -> str:
    """The permission the API's POST route at `path` declares (`default` if none is found)."""
    for found in app.routes:
        if isinstance(found, APIRoute) and found.path == path and "POST" in (found.methods or ()):
            return str((found.openapi_extra or {}).get(PERMISSION_KEY, default))
    return default


def progress_text(approval: ApprovalOut, now_us: int, page: Page) -> str:
    """How far the approval is: `1 of 2 signed` (with its stage when there are several), or
    the time left in its delay window."""
    t = page.t
    if approval.state == "delayed" and approval.delay is not None:
        left_us = approval.delay.release_at_us - now_us
        return t("approvals.delayed", left=age_text(left_us, page.locale)) if left_us > 0 \
            else t("approvals.releasing")
    stages = approval.stages
    if not stages:
        return NOBODY
    index = approval.stage if approval.stage is not None else len(stages) - 1
    stage = stages[min(index, len(stages) - 1)]
    progress = t("approvals.signed_of", signed=len(stage.signed), needed=stage.approvers)
    if len(stages) > 1:
        return t("approvals.stage_of", n=index + 1, count=len(stages), progress=progress)
    return progress


def stage_name(stage: StageOut, page: Page) -> str:
    if stage.rule_id == LEGACY_RULE_ID:
        return page.t("approvals.threshold_rule")
    return stage.name or stage.rule_id or NOBODY


class Desk:
    def __init__(self, page: Page) -> None:
        self.page = page
        self.username = page.signed.username
        self.pool = page.console.api.pool(page.request.query_params.get("pool"))
        app = page.console.app
        self.may: dict[Decision, bool] = {
            "sign": page.signed.may(route_permission(app, SIGN_PATH, P.PAYMENTS_APPROVE)),
            "reject": page.signed.may(route_permission(app, REJECT_PATH, P.PAYMENTS_APPROVE)),
            "cancel": True,  # offered by the rule's roles (`cancellable_by`), below
        }
        self.refreshes = 0
        self.busy = False  # a refresh is running: the next tick skips
        self.open_id: str | None = None  # the payment in the dialog
        self.approval: ApprovalOut | None = None  # as the dialog last read it
        self.deciding = False  # a decision is on its way to the API
        self.buttons: dict[Decision, ui.button] = {}
        self.totp: ui.input | None = None  # the dialog's fields, for a user who may decide
        self.note: ui.textarea | None = None

    # --- layout -----------------------------------------------------------------------------

    def build(self) -> None:
        page, t = self.page, self.page.t
        signing.load()
        with ui.row().classes("w-full items-center gap-3 px-4 pt-3"):
            ui.label(t("approvals.title")).classes("text-2xl font-semibold")
            self.count = testid(ui.badge("…", color="warning").classes("text-sm"),
                                "waiting-count")
            self.more = testid(ui.label("").classes("text-sm opacity-70"), "waiting-more")
            ui.space()
            testid(page_link(t("approvals.key_page"), KEYS_PATH), "to-keys")
        if not (self.may["sign"] or self.may["reject"]):
            testid(ui.label(t("approvals.read_only", roles=page.roles_text()))
                   .classes("px-4 text-warning"), "read-only")
        self.table = testid(ui.table(columns=self._columns(), rows=[], row_key="id",
                                     pagination=0)
                            .props("dense flat wrap-cells").classes("w-full px-4"), "waiting")
        # One row per payment, marked for the tests and opened by a click anywhere on it.
        self.table.add_slot("body", r"""
            <q-tr :props="props" class="cursor-pointer"
                  :data-testid="'waiting-' + props.row.id" :data-state="props.row.state"
                  @click="() => $parent.$emit('open', props.row.id)">
              <q-td v-for="col in props.cols" :key="col.name" :props="props"
                    :data-col="col.name" style="white-space: pre-line">{{ col.value }}</q-td>
            </q-tr>""")
        self.table.on("open", self._clicked)
        self.none = testid(ui.label(t("approvals.none")).classes("px-4 opacity-70"),
                           "waiting-none")
        self.none.set_visibility(False)
        with ui.dialog() as self.dialog, ui.card().classes("w-[960px] max-w-full"):
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
            {"name": "signatures", "label": t("approvals.col_signatures"),
             "field": "signatures", "align": "left"},
            {"name": "rules", "label": t("approvals.col_rules"), "field": "rules",
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
        found = await page.call(page.client.approvals(self.pool.id, limit=INBOX_READ_MAX),
                                quiet=True)
        if found is None:
            return  # the list keeps what it showed until the next tick
        approvals = {a.payment_id: a for a in found.items}
        rows = oldest_first(waiting_of(a.payment_model(), parse_instant)
                            for a in found.items)
        now_us = SystemClock().now_us()
        self.table.rows = [self._row(w, approvals[w.payment_id], now_us)
                           for w in rows[:WAITING_SHOWN_MAX]]
        self.table.update()
        self.refreshes += 1
        self.count.set_text(t("approvals.count", count=f"{len(rows):,}"))
        self.count.props(f'data-count="{len(rows)}" data-refreshes="{self.refreshes}"')
        if len(found.items) >= INBOX_READ_MAX:
            self.more.set_text(t("approvals.count_more", read=f"{INBOX_READ_MAX:,}",
                                 shown=f"{min(len(rows), WAITING_SHOWN_MAX):,}"))
        elif len(rows) > WAITING_SHOWN_MAX:
            self.more.set_text(t("approvals.shown", shown=f"{WAITING_SHOWN_MAX:,}"))
        else:
            self.more.set_text("")
        self.none.set_visibility(not rows)
        self.table.set_visibility(bool(rows))
        if self.open_id is not None and not self.deciding:
            # The open payment as it is now: signatures given meanwhile, or gone from the list
            # (the list is bounded, so ask the payment itself rather than trust its absence).
            await self._reread(self.open_id, approvals.get(self.open_id))

    def _row(self, w: Waiting, approval: ApprovalOut, now_us: int) -> dict[str, Any]:
        page, t = self.page, self.page.t
        fee = f"{page.amount(w.fee_minor, w.asset)} {w.asset}"
        return {
            "id": w.payment_id,
            "state": approval.state,
            "waiting": age_text(now_us - w.waiting_since_us, page.locale),
            "amount": f"{page.amount(w.amount_minor, w.asset)} {w.asset}",
            "payee": "\n".join(p for p in (w.counterparty, w.destination) if p) or NOBODY,
            "route": t("approvals.route", channel=w.channel, fee=fee) if w.channel
            else t("approvals.no_route"),
            "signatures": progress_text(approval, now_us, page),
            "rules": "\n".join(stage_name(s, page) for s in approval.stages) or NOBODY,
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
        approval = await page.call(page.client.approval(payment_id))
        if approval is None:
            return
        self.open_id = payment_id
        self.approval = approval
        self.deciding = False
        self.buttons = {}
        self.totp = self.note = None
        self.dialog_body.clear()
        with self.dialog_body:
            with ui.row().classes("w-full items-center gap-3"):
                testid(ui.label(t("detail.title", id=payment_id)).classes("text-lg font-medium"),
                       "decision-title")
                self.state_badge = testid(ui.badge(""), "decision-state")
                self.approval_state = testid(ui.label("").classes("font-medium"),
                                             "decision-approval-state")
                ui.space()
                testid(ui.button(t("detail.close"), on_click=self.dialog.close)
                       .props("flat no-caps"), "decision-close")
            self.facts_box = ui.column().classes("w-full")
            self.gone = testid(ui.label("").classes("text-warning font-medium"),
                               "decision-gone")
            self.gone.set_visibility(False)
            ui.label(t("approvals.document")).classes("font-medium")
            self.document_box = testid(ui.column().classes("w-full"), "decision-document")
            ui.label(t("approvals.stages")).classes("font-medium")
            self.stages_box = testid(ui.column().classes("w-full gap-1"), "decision-stages")
            ui.label(t("detail.timeline")).classes("font-medium")
            self.timeline_box = testid(ui.column().classes("w-full"), "decision-timeline")
            self.actions = ui.column().classes("w-full")
            with self.actions:
                self.why = testid(ui.label("").classes("text-warning"), "decision-why")
                self.key_box = testid(ui.row().classes("w-full items-center gap-3"),
                                      "decision-key")
                if any(self.may[d] for d in ("sign", "reject")):
                    self.totp = testid(ui.input(t("approvals.totp"))
                                       .props("outlined dense maxlength=6 inputmode=numeric "
                                              "autocomplete=one-time-code"), "decision-totp")
                    self.note = testid(ui.textarea(t("approvals.note"))
                                       .props(f"outlined autogrow maxlength={NOTE_MAX} counter")
                                       .classes("w-full"), "decision-note")
                self.error = testid(ui.label("").classes("text-negative"), "decision-error")
                with ui.row().classes("gap-2"):
                    for decision, (label, colour) in DECISIONS.items():
                        self.buttons[decision] = testid(ui.button(
                            t(label), on_click=lambda d=decision: self.decide(d))
                            .props(f"unelevated no-caps color={colour}"),
                            f"decision-{decision}")
        detail = await page.call(page.client.payment(payment_id), quiet=True)
        self._show(approval, detail)
        self.dialog.open()
        await self._show_key(approval)

    def _show(self, approval: ApprovalOut, detail: Any | None) -> None:
        """The payment, what is signed, the stages and the timeline as the API now has them
        (the note and the code being written are left alone)."""
        t = self.page.t
        self.approval = approval
        payment = detail if detail is not None else approval.payment_model()
        state = str(payment.state)
        self.state_badge.set_text(t(f"state.{state}") if state in STATE_TONES else state)
        self.state_badge.props(f'data-state="{state}"')
        self.state_badge.classes(replace=f"fp-tone-{STATE_TONES.get(state, 'neutral')}")
        key = APPROVAL_STATES.get(approval.state)
        self.approval_state.set_text(t(key) if key else approval.state)
        self.approval_state.props(f'data-state="{approval.state}"')
        self.facts_box.clear()
        with self.facts_box:
            self._facts(payment)
        self.document_box.clear()
        with self.document_box:
            self._document(approval)
        self.stages_box.clear()
        with self.stages_box:
            self._stages(approval)
        if detail is not None:
            self._timeline(detail)
        self._offer(approval)

    def _facts(self, payment: Any) -> None:
        page, t = self.page, self.page.t
        waiting = waiting_of(payment, parse_instant)
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
        if str(payment.state) == "pending_approval":
            facts.append(("approvals.waiting_since",
                          f"{time_text(waiting.waiting_since_us, with_date=True)} · "
                          f"{age_text(now_us - waiting.waiting_since_us, page.locale)}",
                          "waiting"))
        with ui.grid(columns="max-content 1fr").classes("w-full gap-x-6 gap-y-1 text-sm"):
            for key, value, name in facts:
                ui.label(t(key)).classes("opacity-70")
                testid(ui.label(value).classes("break-all"), f"decision-{name}")

    def _document(self, approval: ApprovalOut) -> None:
        """What the digest is of, as the approver reads it, and the digest itself."""
        page, t = self.page, self.page.t
        doc = approval.document
        asset = str(doc.get("asset") or "")
        try:
            amount = f"{page.amount(int(doc.get('amount_minor') or 0), asset)} {asset}"
            fee = f"{page.amount(int(doc.get('fee_minor') or 0), asset)} {asset}"
        except (TypeError, ValueError):
            amount = fee = NOBODY
        channels = " → ".join(str(c) for c in (doc.get("channel"),
                                                doc.get("destination_channel")) if c)
        route = t("approvals.route", channel=channels, fee=fee) if channels \
            else t("approvals.no_route")
        rules = doc.get("rules_version")
        lines = [
            ("approvals.col_amount", amount, "amount"),
            ("approvals.col_payee", str(doc.get("counterparty") or NOBODY), "payee"),
            ("approvals.destination", str(doc.get("destination") or NOBODY), "destination"),
            ("approvals.doc_route", route, "route"),
            ("approvals.rules_version", str(rules) if rules else t("approvals.rules_none"),
             "rules"),
            ("approvals.risk_version", str(doc.get("risk_policy_version") or NOBODY), "risk"),
            ("approvals.round", str(doc.get("round") or NOBODY), "round"),
        ]
        with ui.grid(columns="max-content 1fr").classes("w-full gap-x-6 gap-y-1 text-sm"):
            for key, value, name in lines:
                ui.label(t(key)).classes("opacity-70")
                testid(ui.label(value).classes("break-all"), f"document-{name}")
            ui.label(t("approvals.digest")).classes("opacity-70")
            testid(ui.label(approval.digest).classes("fp-mono break-all select-all"),
                   "decision-digest")

    def _stages(self, approval: ApprovalOut) -> None:
        t = self.page.t
        for index, stage in enumerate(approval.stages):
            now = approval.stage == index
            status = t("approvals.stage_done") if stage.done else \
                t("approvals.stage_now") if now else t("approvals.stage_later")
            if stage.group:
                needs = t("approvals.stage_needs_group", m=stage.approvers,
                          n=stage.eligible if stage.eligible is not None else len(stage.members),
                          group=stage.group, members=", ".join(stage.members) or NOBODY)
            else:
                roles = ", ".join(t(f"role.{r}") if r in ROLES else r for r in stage.roles)
                needs = t("approvals.stage_needs_roles", m=stage.approvers,
                          n=stage.eligible if stage.eligible is not None else "?",
                          roles=roles or NOBODY)
            box = ui.column().classes("w-full gap-0 text-sm border-l-4 pl-3 " + (
                "border-green-600" if stage.done else "border-amber-500" if now
                else "border-slate-300"))
            with testid(box, f"stage-{index}").props(
                    f'data-done="{str(stage.done).lower()}" data-signed="{len(stage.signed)}"'):
                with ui.row().classes("gap-3 items-baseline"):
                    ui.label(stage_name(stage, self.page)).classes("font-medium")
                    ui.label(t("approvals.signed_of", signed=len(stage.signed),
                               needed=stage.approvers))
                    ui.label(status).classes("opacity-70")
                ui.label(needs).classes("opacity-80")
                if not stage.signed:
                    ui.label(t("approvals.nobody_signed")).classes("opacity-60")
                for signed in stage.signed:
                    line = t("approvals.signed_by", name=signed.name or signed.who,
                             at=time_text(signed.at_us, with_date=True),
                             key_id=signed.key_id or NOBODY)
                    if not signed.valid:
                        line = t("approvals.signature_stale", line=line)
                    testid(ui.label(line), "stage-signed").props(
                        f'data-name="{signed.name}"')
        for rejection in approval.rejections:
            testid(ui.label(t("approvals.rejected_by", name=rejection.name or rejection.who,
                              at=time_text(rejection.at_us, with_date=True),
                              reason=rejection.note or NOBODY))
                   .classes("text-sm fp-tone-bad"), "decision-rejection")
        if approval.state == "delayed" and approval.delay is not None:
            delay = approval.delay
            left_us = delay.release_at_us - SystemClock().now_us()
            roles = ", ".join(t(f"role.{r}") if r in ROLES else r
                              for r in delay.cancellable_by) or NOBODY
            testid(ui.label(t("approvals.delay_window",
                              at=time_text(delay.release_at_us, with_date=True),
                              left=age_text(left_us, self.page.locale), roles=roles))
                   .classes("text-sm fp-tone-attention"), "decision-delay")

    def _timeline(self, detail: Any) -> None:
        t = self.page.t
        self.timeline_box.clear()
        with self.timeline_box:
            # One line per step, as an auditor reads a log: when, to what, which action, who,
            # and the note kept with it.
            for event in getattr(detail, "events", ()):
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

    def _offer(self, approval: ApprovalOut) -> None:
        """The actions this user is offered on the payment as it now is."""
        t = self.page.t
        waiting = approval.state == "waiting"
        cancellable = approval.state == "delayed" and approval.delay is not None and bool(
            set(approval.delay.cancellable_by) & set(self.page.signed.roles))
        shown = {"sign": waiting and self.may["sign"], "reject": waiting and self.may["reject"],
                 "cancel": cancellable}
        for decision, button in self.buttons.items():
            button.set_visibility(shown[decision])
        why = approval.you.why_not
        self.why.set_text(t(WHY_NOT[why]) if why in WHY_NOT and waiting else "")
        self.why.props(f'data-why="{why or ""}"')
        if self.totp is not None:
            self.totp.set_visibility(waiting and approval.totp_required)
        self.actions.set_visibility(any(shown.values()) or bool(self.why.text))

    async def _show_key(self, approval: ApprovalOut) -> None:
        """Whether this browser holds the user's key, and whether it is a registered one."""
        t = self.page.t
        if not (self.may["sign"] and approval.state == "waiting"):
            self.key_box.clear()
            return
        here = await signing.browser_key(self.username)
        if self.open_id != approval.payment_id:
            return
        self.key_box.clear()
        with self.key_box:
            if isinstance(here, signing.Failure):
                key = BROWSER_FAILURES.get(here.code)
                testid(ui.label(t(key) if key else t("approvals.browser_failed",
                                                     code=here.code))
                       .classes("text-warning"), "decision-key-missing")
            elif here is None:
                testid(ui.label(t("approvals.no_key")).classes("text-warning"),
                       "decision-key-missing")
            elif here.key_id not in approval.you.keys:
                testid(ui.label(t("approvals.key_unregistered", key_id=here.key_id))
                       .classes("text-warning"), "decision-key-missing")
            else:
                testid(ui.label(t("approvals.key_here", key_id=here.key_id))
                       .classes("opacity-80 text-sm"), "decision-key-here") \
                    .props(f'data-key-id="{here.key_id}"')
                return
            testid(page_link(t("approvals.key_page"), KEYS_PATH), "decision-key-link")

    async def _reread(self, payment_id: str, listed: ApprovalOut | None) -> None:
        page = self.page
        approval = listed or await page.call(page.client.approval(payment_id), quiet=True)
        if approval is None or self.open_id != payment_id or self.deciding:
            return
        before = self.approval
        if before is not None and _same(before, approval):
            return
        detail = await page.call(page.client.payment(payment_id), quiet=True)
        if self.open_id != payment_id or self.deciding:
            return
        self._show(approval, detail)
        if approval.state not in ("waiting", "delayed"):
            self._say_gone(str((detail or approval.payment_model()).state))

    def _say_gone(self, state: str) -> None:
        t = self.page.t
        self.gone.set_text(t("approvals.gone",
                             state=t(f"state.{state}") if state in STATE_TONES else state))
        self.gone.set_visibility(True)

    def _closed(self) -> None:
        self.open_id = None
        self.approval = None

    # --- the decision -----------------------------------------------------------------------

    async def decide(self, decision: Decision) -> None:
        page, t = self.page, self.page.t
        payment_id, approval = self.open_id, self.approval
        if payment_id is None or approval is None or self.deciding:
            return
        note = None if self.note is None else (str(self.note.value or "").strip() or None)
        code = None
        if decision == "reject" and note is None:
            self.error.set_text(t("approvals.note_required"))
            return
        if decision == "sign" and approval.totp_required and self.totp is not None:
            code = str(self.totp.value or "").strip().replace(" ", "")
            if not TOTP_CODE.fullmatch(code):
                self.error.set_text(t("approvals.totp_missing"))
                return
        self.error.set_text("")
        self.deciding = True
        for button in self.buttons.values():
            button.disable()
        try:
            # A key per click: the client's own retry of this request is never a second act.
            if decision == "sign":
                signed = await signing.sign(self.username, approval.digest)
                if isinstance(signed, signing.Failure):
                    key = BROWSER_FAILURES.get(signed.code)
                    self.error.set_text(t(key) if key else t("approvals.browser_failed",
                                                            code=signed.code))
                    await self._show_key(approval)
                    return
                after = await page.client.sign_approval(
                    payment_id, signed.key_id, signed.signature, approval.digest, totp=code,
                    note=note, idempotency_key=str(uuid.uuid4()))
                said = t("approvals.signed", id=payment_id[-12:])
            elif decision == "reject":
                after = await page.client.reject_approval(payment_id, note or "",
                                                          idempotency_key=str(uuid.uuid4()))
                said = t("approvals.rejected", id=payment_id[-12:])
            else:
                after = await page.client.cancel_approval(payment_id, note,
                                                          idempotency_key=str(uuid.uuid4()))
                said = t("approvals.cancelled", id=payment_id[-12:])
        except ApiError as error:
            await self._refused(payment_id, error)
            return
        finally:
            self.deciding = False
            for button in self.buttons.values():
                button.enable()
        ui.notify(said, type="positive")
        if self.totp is not None:
            self.totp.set_value("")
        if self.open_id == payment_id:
            detail = await page.call(page.client.payment(payment_id), quiet=True)
            if self.open_id == payment_id:
                self._show(after, detail)
        await self.refresh()

    async def _refused(self, payment_id: str, error: ApiError) -> None:
        page = self.page
        if isinstance(error, Unauthorized | Unreachable):
            page.report(error)
            return
        text = refusal_text(error.code, error.facts, page.locale) or page.problem(error)
        ui.notify(text, type="negative", multi_line=True)
        self.error.set_text(text)
        if error.code in ("payment_changed", "not_waiting", "illegal_transition",
                          "already_signed"):
            approval = await page.call(page.client.approval(payment_id), quiet=True)
            detail = await page.call(page.client.payment(payment_id), quiet=True)
            if approval is not None and self.open_id == payment_id:
                self._show(approval, detail)



def _same(a: ApprovalOut, b: ApprovalOut) -> bool:
    """Nothing a person would see has changed (the list's tick re-reads the open payment)."""
    return (a.state, a.stage, a.digest, [len(s.signed) for s in a.stages],
            len(a.rejections), a.payment.get("state"), a.payment.get("version")) == \
        (b.state, b.stage, b.digest, [len(s.signed) for s in b.stages], len(b.rejections),
         b.payment.get("state"), b.payment.get("version"))


@console_page("/approvals", needs=P.PAYMENTS_READ, title="approvals.title")
async def approvals_page(page: Page) -> None:
    Desk(page).build()
