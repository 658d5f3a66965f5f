"""The review queue's limits tab (临时限额): the limits automatic responses lowered, still in
force (`GET /v1/risk/limits`), the ones set last first.

Each limit is a row: who or what is limited (a payee, an initiator, a destination), the
amount above which its payouts are held (at the asset's scale), the policy group that set it
and when, and until when. A role with `risk:policy` lifts one before its time, with a note
(`POST /v1/risk/limits/{id}/lift`): the page asks for the note before it calls the API, and
says the API's refusal in the user's language (`unknown_limit`: lifted by someone else, or
ended). The queue's timer refreshes the list; the lift dialog is an element of its own, so a
refresh never closes it nor loses a note being written.
"""

from __future__ import annotations

import uuid
from typing import Any

from nicegui import ui

from fundpool.auth.roles import P
from fundpool.client.errors import ApiError
from fundpool.console.limits import LimitView, limit_view, newest_first
from fundpool.console.shell import Page, href, testid
from fundpool.risk.service import NOTE_MAX
from fundpool.runtime import SystemClock

LIMITS_SHOWN_MAX = 500  # rows listed; the count covers every limit in force


class LimitsTab:
    def __init__(self, page: Page) -> None:
        self.page = page
        self.may_lift = page.signed.may(P.RISK_POLICY)
        self.views: dict[str, LimitView] = {}
        self.lifting: LimitView | None = None  # the limit in the dialog
        self.busy = False
        self.refreshes = 0

    def build(self, badge: ui.badge) -> None:
        """The tab's content; `badge` is the tab's own count."""
        page, t = self.page, self.page.t
        self.badge = badge
        testid(ui.label(t("limits.about")).classes("opacity-70"), "limits-about")
        if not self.may_lift:
            testid(ui.label(t("limits.read_only", roles=page.roles_text()))
                   .classes("text-warning"), "limits-read-only")
        self.count = testid(ui.label("").classes("font-medium"), "limits-count")
        self.table = testid(ui.table(columns=self._columns(), rows=[], row_key="id",
                                     pagination=0)
                            .props("dense flat wrap-cells").classes("w-full"), "limits")
        self.table.add_slot("body", r"""
            <q-tr :props="props" :data-testid="'limit-' + props.row.id">
              <q-td v-for="col in props.cols" :key="col.name" :props="props"
                    :data-col="col.name" style="white-space: pre-line">
                <a v-if="col.name === 'payment'" :href="props.row.payment_link"
                   >{{ col.value }}</a>
                <q-btn v-else-if="col.name === 'lift' && props.row.lift_label" dense
                       unelevated no-caps color="warning" :label="props.row.lift_label"
                       :data-testid="'lift-' + props.row.id"
                       @click="() => $parent.$emit('lift', props.row.id)" />
                <span v-else>{{ col.value }}</span>
              </q-td>
            </q-tr>""")
        self.table.on("lift", self._clicked)
        self.none = testid(ui.label(t("limits.none")).classes("opacity-70"), "limits-none")
        self.none.set_visibility(False)
        self.table.set_visibility(False)
        with ui.dialog() as self.dialog, ui.card().classes("w-[560px] max-w-full"):
            self.dialog_title = testid(ui.label("").classes("text-lg font-medium"),
                                       "lift-title")
            self.dialog_what = testid(ui.label("").classes("text-sm"), "lift-what")
            self.note = testid(ui.textarea(t("limits.note"))
                               .props(f"outlined autogrow maxlength={NOTE_MAX} counter")
                               .classes("w-full"), "lift-note")
            self.error = testid(ui.label("").classes("text-negative"), "lift-error")
            with ui.row().classes("gap-2"):
                self.lift_button = testid(
                    ui.button(t("limits.lift"), on_click=self.lift)
                    .props("unelevated no-caps color=warning"), "lift-confirm")
                testid(ui.button(t("limits.cancel"), on_click=self.dialog.close)
                       .props("flat no-caps"), "lift-cancel")

    def _columns(self) -> list[dict[str, Any]]:
        t = self.page.t
        columns = [
            {"name": "who", "label": t("limits.col_who"), "field": "who", "align": "left"},
            {"name": "amount", "label": t("limits.col_amount"), "field": "amount",
             "align": "right"},
            {"name": "set", "label": t("limits.col_set"), "field": "set", "align": "left"},
            {"name": "until", "label": t("limits.col_until"), "field": "until",
             "align": "left"},
            {"name": "payment", "label": t("col.payment"), "field": "payment",
             "align": "left"},
        ]
        if self.may_lift:
            columns.append({"name": "lift", "label": "", "field": "lift", "align": "left"})
        return columns

    async def refresh(self) -> None:
        page, t = self.page, self.page.t
        found = await page.call(page.client.risk_limits(), quiet=True)
        if found is None:
            return  # the list keeps what it showed until the next tick
        now_us = SystemClock().now_us()
        scales = page.console.scales()
        limits = newest_first(found.data)
        views = [limit_view(limit, page.locale, scales, now_us)
                 for limit in limits[:LIMITS_SHOWN_MAX]]
        self.views = {v.id: v for v in views}
        self.table.rows = [self._row(v) for v in views]
        self.table.update()
        self.refreshes += 1
        self.count.set_text(t("limits.count", count=f"{len(limits):,}"))
        self.count.props(f'data-count="{len(limits)}" data-refreshes="{self.refreshes}"')
        self.badge.set_text(f"{len(limits):,}")
        self.badge.set_visibility(bool(limits))
        self.none.set_visibility(not views)
        self.table.set_visibility(bool(views))

    def _row(self, view: LimitView) -> dict[str, Any]:
        t = self.page.t
        return {"id": view.id, "who": view.who, "amount": view.amount,
                "set": t("limits.set_by", group=view.group) + "\n" + view.set_at,
                "until": view.until + "\n" + view.ends_in,
                "payment": view.payment_id[-12:],
                "payment_link": href("/stream", {"payment": view.payment_id}),
                "lift_label": t("limits.lift") if self.may_lift else ""}

    # --- lifting one ----------------------------------------------------------------------

    async def _clicked(self, event: Any) -> None:
        args = event.args
        limit_id = args[0] if isinstance(args, list) and args else args
        view = self.views.get(limit_id) if isinstance(limit_id, str) else None
        if view is None or not self.may_lift:
            return
        t = self.page.t
        self.lifting = view
        self.dialog_title.set_text(t("limits.lift_title", who=view.who))
        self.dialog_what.set_text(t("limits.lift_what", amount=view.amount, until=view.until))
        self.dialog_title.props(f'data-limit="{view.id}"')
        self.note.set_value("")
        self.error.set_text("")
        self.dialog.open()

    async def lift(self) -> None:
        page, t = self.page, self.page.t
        view = self.lifting
        if view is None or self.busy:
            return
        note = (self.note.value or "").strip()
        if not note:
            self.error.set_text(t("limits.note_required"))
            return
        self.error.set_text("")
        self.busy = True
        self.lift_button.disable()
        try:
            # A key per click: the client's own retry of this request is never a second lift.
            await page.client.lift_risk_limit(view.id, note, idempotency_key=str(uuid.uuid4()))
        except ApiError as error:
            self.error.set_text(page.problem(error))
            page.report(error)
            if error.code == "unknown_limit":
                await self.refresh()  # no longer in force: off the list
            return
        finally:
            self.busy = False
            self.lift_button.enable()
        self.lifting = None
        self.dialog.close()
        ui.notify(t("limits.lifted", who=view.who), type="positive")
        await self.refresh()
