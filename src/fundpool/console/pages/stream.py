"""The live transaction stream: deposits, payouts, internal and bridge transfers as they
happen, coloured by status, and tinted by risk grade where risk control held or blocked a
payment; a row expands into the payment's timeline, ledger postings, routing decision and
risk decision; filters kept in the URL; pause and resume; replay of a past window.

Keeping up at a thousand payments a second: the page joins the server's one event hub (the
same poller that feeds `/v1/stream`) with a bounded queue of its own, and a timer drains it
four times a second. The batch is folded to one row per payment (`feed.fold`), filtered, and
sent to the browser as one AG Grid transaction (add, update, remove) into a window of at most
`ROWS_MAX` rows. A browser that falls more than `QUEUE_EVENTS_MAX` events behind is cut from
the hub rather than slowing the others; the page says how many events it skipped and joins
again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio.to_thread
from nicegui import ui

from fundpool.auth.roles import P
from fundpool.console.decision import show_cases, show_decision
from fundpool.console.feed import (
    ADJUSTMENT_KIND,
    DRAIN_EVENTS_MAX,
    KINDS,
    QUEUE_EVENTS_MAX,
    ROWS_MAX,
    SINCE_WINDOWS_S,
    STATE_TONES,
    STATES,
    Adjustment,
    StreamFilter,
    StreamRow,
    Window,
    adjustment_of_frame,
    row_of,
    row_of_frame,
)
from fundpool.console.format import duration_text, instant_input, time_text
from fundpool.console.pages.recon import show_payment_reconciliation
from fundpool.console.risk import GRADE_KEYS, risk_grade
from fundpool.console.shell import Page, console_page, exact_tooltips, testid
from fundpool.console.texts import ACTIONS, actor_text, exclusion_text, reason_text
from fundpool.monitoring.replay import InvalidInstant, parse_instant, replay_window
from fundpool.runtime import SystemClock
from fundpool.server.v1.stream import Subscriber, Wanted, shared_hub

TICK_S = 0.25
BACKFILL_ROWS = 100
REPLAY_SPAN_MAX = timedelta(hours=24)
REPLAY_SPEEDS = (1, 10, 60, 600)
HELD_ROWS_MAX = ROWS_MAX  # rows kept while paused (older ones are skipped and counted)
# The status a step leads to when the status alone says what the step was.
STEP_REACHES = {
    "create": "initiated", "screen": "screened", "route": "routed", "approve": "approved",
    "submit": "submitted", "clear": "cleared", "settle": "settled", "fail": "failed",
    "cancel": "cancelled", "return": "returned", "reverse": "reversed", "reject": "rejected",
    "hold": "held", "request_approval": "pending_approval",
}


class Stream:
    def __init__(self, page: Page) -> None:
        self.page = page
        self.console = page.console
        config = self.console.api.config
        self.pool = self.console.api.pool(page.request.query_params.get("pool"))
        self.assets = sorted({a for c in self.pool.channels for a in config.channel(c).assets})
        self.channels = list(self.pool.channels)
        self.filter = StreamFilter.from_query(page.request.query_params, assets=self.assets,
                                              channels=self.channels)
        self.scales = self.console.scales()
        self.window = Window()
        self.paused = False
        self.held: deque[StreamRow] = deque(maxlen=HELD_ROWS_MAX)
        self.held_count = 0
        self.skipped = 0
        self.seen: deque[tuple[float, int]] = deque(maxlen=40)  # (monotonic, events) per tick
        self.subscriber: Subscriber | None = None
        self.replaying: asyncio.Task[None] | None = None
        self.hub = shared_hub(self.console.app.state, self.console.api)
        self._pending: set[asyncio.Task[None]] = set()  # adjustments being read

    # --- layout -----------------------------------------------------------------------------

    def build(self) -> None:
        page = self.page
        t = page.t
        with ui.row().classes("w-full items-center gap-3 px-4 pt-3"):
            testid(ui.label(t("nav.stream")).classes("text-2xl font-semibold"), "page-title")
            self.status = testid(ui.badge(t("stream.live"), color="positive"), "stream-status")
            self.rate = testid(ui.label("").classes("text-sm opacity-70"), "stream-rate")
            self.count = testid(ui.label("").classes("text-sm opacity-70"), "stream-count")
            ui.space()
            self.pause_button = testid(ui.button(t("stream.pause"), on_click=self.toggle_pause)
                                       .props("outline no-caps"), "pause")
        self._filters()
        self.notice = testid(ui.label("").classes("px-4 text-warning"), "stream-notice")
        self.grid = testid(ui.aggrid({
            "columnDefs": self._columns(),
            "rowData": [],
            ":getRowId": "(params) => params.data.id",
            "rowSelection": {"mode": "singleRow", "checkboxes": False,
                             "enableClickSelection": True},
            "animateRows": False,
            "suppressCellFocus": True,
            "tooltipShowDelay": 300,
            # A payment risk control stopped or holds is tinted by its grade (the event's own
            # reason says which: no call per row).
            ":rowClassRules": "{'fp-adjustment': (p) => p.data && p.data.adjustment, "
                              "'fp-risk-block': (p) => p.data && p.data.risk === 'block', "
                              "'fp-risk-hold': (p) => p.data && p.data.risk === 'hold', "
                              "'fp-risk-review': (p) => p.data && (p.data.risk === 'review' "
                              "|| p.data.risk === 'held')}",
        }, theme="balham").classes("w-full px-4").style("height: 520px"), "stream-grid")
        self.grid.on("cellClicked", self._clicked)
        self.detail = testid(ui.column().classes("w-full px-4 pb-4"), "detail")
        self._replay_controls()
        ui.timer(TICK_S, self.tick)
        ui.timer(0.05, self.start, once=True)

    def _columns(self) -> list[dict[str, Any]]:
        t = self.page.t
        tone = "(p) => 'fp-tone-' + p.data.tone"
        # Newest first, always: by the instant each row reached its status (a payment that
        # moves goes to the top), not by when the browser first saw it.
        by_time = "(a, b, rowA, rowB) => rowA.data.at_us - rowB.data.at_us"
        return [
            {"field": "time", "headerName": t("col.time"), "width": 120, "sort": "desc",
             ":comparator": by_time, "sortingOrder": ["desc", "asc"]},
            {"field": "kind", "headerName": t("col.kind"), "width": 120},
            {"field": "short", "headerName": t("col.payment"), "width": 120},
            {"field": "asset", "headerName": t("col.asset"), "width": 90},
            {"field": "amount", "headerName": t("col.amount"), "type": "rightAligned",
             "width": 170, "tooltipField": "amount_exact"},
            {"field": "fee", "headerName": t("col.fee"), "type": "rightAligned", "width": 120,
             "tooltipField": "fee_exact"},
            {"field": "channel", "headerName": t("col.channel"), "width": 110},
            {"field": "counterparty", "headerName": t("col.counterparty"), "flex": 1},
            {"field": "state", "headerName": t("col.state"), "width": 140, ":cellClass": tone},
            {"field": "risk_text", "colId": "risk", "headerName": t("col.risk"), "width": 110},
        ]

    def _filters(self) -> None:
        t = self.page.t
        f = self.filter
        anyone = {"": t("filter.any")}
        with ui.row().classes("w-full items-end gap-2 px-4"):
            def select(key: str, options: dict[str, str], value: str | None, label: str
                       ) -> None:
                testid(ui.select({**anyone, **options}, value=value or "", label=label,
                                 on_change=lambda e: self.set_filter(key, e.value))
                       .props("dense outlined options-dense").classes("w-36"),
                       f"filter-{key}")

            select("asset", {a: a for a in self.assets}, f.asset, t("filter.asset"))
            select("channel", {c: c for c in self.channels}, f.channel, t("filter.channel"))
            select("state", {s: t(f"state.{s}") for s in STATES}, f.state, t("filter.state"))
            select("kind", {k: t(f"kind.{k}") for k in KINDS}, f.kind, t("filter.kind"))
            select("since", {k: t(f"since.{k}") for k in SINCE_WINDOWS_S}, f.since,
                   t("filter.since"))
            for key, label, value in (("min", t("filter.min"), f.min_amount),
                                      ("max", t("filter.max"), f.max_amount),
                                      ("cp", t("filter.counterparty"), f.counterparty)):
                box = testid(ui.input(label, value="" if value is None else str(value))
                             .props("dense outlined clearable").classes("w-36"),
                             f"filter-{key}")
                box.on("keydown.enter", lambda _, k=key, b=box: self.set_filter(k, b.value))
                box.on("blur", lambda _, k=key, b=box: self.set_filter(k, b.value))
                box.on("clear", lambda _, k=key: self.set_filter(k, None))
            if not f.empty:
                testid(ui.button(t("stream.clear_filters"),
                                 on_click=lambda: ui.navigate.to(self.page.here(
                                     **dict.fromkeys(StreamFilter.QUERY_KEYS))))
                       .props("flat no-caps"), "clear-filters")

    def _replay_controls(self) -> None:
        t = self.page.t
        now = datetime.now(UTC)
        with ui.expansion(t("stream.replay"), icon="history").classes("w-full px-4") as box:
            testid(box, "replay")
            with ui.row().classes("items-end gap-2"):
                self.replay_from = testid(ui.input(t("stream.replay_from"),
                                                   value=instant_input(now - timedelta(minutes=5)))
                                          .props("dense outlined").classes("w-64"),
                                          "replay-from")
                self.replay_to = testid(ui.input(t("stream.replay_to"), value=instant_input(now))
                                        .props("dense outlined").classes("w-64"), "replay-to")
                self.replay_speed = testid(ui.select({s: f"{s}×" for s in REPLAY_SPEEDS},
                                                     value=60, label=t("stream.replay_speed"))
                                           .props("dense outlined").classes("w-28"),
                                           "replay-speed")
                testid(ui.button(t("stream.replay_start"), on_click=self.start_replay)
                       .props("unelevated no-caps"), "replay-start")
                self.replay_stop = testid(ui.button(t("stream.replay_stop"),
                                                    on_click=self.stop_replay)
                                          .props("outline no-caps"), "replay-stop")
                self.replay_stop.set_visibility(False)
            self.replay_state = testid(ui.label(""), "replay-state")

    # --- the feed ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Join the hub first, then show the newest payments: an event between the two is
        seen twice at worst (a row updated with what it already shows), never missed."""
        await self._join()
        backfill = await self.page.call(self.page.client.payments(
            self.pool.id, limit=BACKFILL_ROWS, **self.filter.server_side()))
        if backfill is None:
            return
        rows = [_row_of_payment(p) for p in reversed(backfill.data)]
        self._show(rows)
        focus = self.page.request.query_params.get("payment")
        if focus:
            await self.expand(focus)

    async def _join(self) -> None:
        # Ledger entries too, for the adjustments among them (the hub labels those).
        self.subscriber = Subscriber(
            Wanted(frozenset({self.pool.id}),
                   frozenset({"payment.transitioned", "ledger.entry_committed"})),
            bound=QUEUE_EVENTS_MAX)
        await self.hub.join(self.subscriber)
        client = ui.context.client
        subscriber = self.subscriber
        client.on_delete(lambda: self.hub.leave(subscriber))

    async def tick(self) -> None:
        if self.replaying is not None or self.subscriber is None:
            return
        if self.subscriber.overflowed:
            self.skipped += self.subscriber.queue.qsize()
            self.hub.leave(self.subscriber)
            self.notice.set_text(self.page.t("stream.dropped", count=f"{self.skipped:,}"))
            await self._join()
            return
        queue = self.subscriber.queue
        rows: list[StreamRow] = []
        while len(rows) < DRAIN_EVENTS_MAX:
            try:
                frame = queue.get_nowait()
            except asyncio.QueueEmpty:
                break
            if frame.type != "payment.transitioned":
                adjustment = adjustment_of_frame(frame.text)
                if adjustment is not None:
                    self._pending.add(asyncio.create_task(self._adjustment(adjustment)))
                continue
            row = row_of_frame(frame.text)
            if row is not None:
                rows.append(row)
        self._count_rate(len(rows))
        if self.paused:
            self.held.extend(rows)
            self.held_count += len(rows)
            self.status.set_text(self.page.t("stream.paused", count=f"{self.held_count:,}"))
            return
        self._show(rows)

    async def _adjustment(self, adjustment: Adjustment) -> None:
        """An adjustment as a row: its entry read for what it moved (the frame holds the
        balances after it, not the amounts), the reason in the counterparty's place."""
        try:
            entry = await self.page.call(self.page.client.transaction(adjustment.entry_id),
                                         quiet=True)
            if entry is None or not entry.postings:
                return
            asset = entry.postings[0].asset
            amount = sum(int(p.amount_minor) for p in entry.postings if p.asset == asset)
            actor = actor_text(adjustment.actor or None, self.page.locale)
            row = StreamRow(payment_id=adjustment.entry_id, kind=ADJUSTMENT_KIND, asset=asset,
                            amount_minor=amount, fee_minor=0, channel=None,
                            counterparty=adjustment.reason, state=ADJUSTMENT_KIND,
                            action="", at_us=adjustment.at_us, created_at_us=adjustment.at_us,
                            adjusted_by=actor)
            if self.paused:
                self.held.append(row)
            elif self.replaying is None:
                self._show([row])
        finally:
            task = asyncio.current_task()
            if task is not None:
                self._pending.discard(task)

    def _show(self, rows: list[StreamRow]) -> None:
        now_us = SystemClock().now_us()
        changes = self.window.apply(rows, self.filter, self.scales, now_us)
        expired = self.window.expire(self.filter, now_us)
        if changes or expired:
            transaction: dict[str, Any] = {"addIndex": 0}
            if changes.add:
                transaction["add"] = [self._grid_row(r) for r in reversed(changes.add)]
            if changes.update:
                transaction["update"] = [self._grid_row(r) for r in changes.update]
            gone = [*changes.remove, *expired]
            if gone:
                transaction["remove"] = [{"id": i} for i in gone]
            self.grid.run_grid_method("applyTransaction", transaction)
        self.count.set_text(self.page.t("stream.rows", shown=f"{len(self.window):,}",
                                        max=f"{ROWS_MAX:,}"))

    def _count_rate(self, events: int) -> None:
        now = asyncio.get_running_loop().time()
        self.seen.append((now, events))
        span = now - self.seen[0][0]
        if span > 0:
            rate = sum(e for _, e in list(self.seen)[1:]) / span
            self.rate.set_text(self.page.t("stream.rate", rate=f"{rate:,.0f}"))

    def _grid_row(self, row: StreamRow) -> dict[str, Any]:
        t = self.page.t
        amount, amount_exact = self.page.amounts(row.amount_minor, row.asset)
        fee, fee_exact = self.page.amounts(row.fee_minor, row.asset)
        return {
            "id": row.payment_id, "time": time_text(row.at_us), "at_us": row.at_us,
            "kind": t(f"kind.{row.kind}") if row.kind in KINDS else row.kind,
            "short": row.payment_id[-12:], "asset": row.asset,
            "amount": amount, "amount_exact": f"{amount_exact} {row.asset}",
            "fee": fee, "fee_exact": f"{fee_exact} {row.asset}",
            "channel": row.channel or "", "counterparty": row.counterparty or "",
            "state": t(f"state.{row.state}") if row.state in STATE_TONES else row.state,
            "tone": STATE_TONES.get(row.state, "neutral"),
            "risk": row.risk or "",
            "risk_text": t(GRADE_KEYS[row.risk]) if row.risk in GRADE_KEYS else "",
        } | ({"kind": t("kind.adjustment"), "adjustment": True, "tone": "attention",
              "state": t("stream.adjusted_by", actor=row.adjusted_by or t("actor.unknown"))}
             if row.kind == ADJUSTMENT_KIND else {})

    def set_filter(self, key: str, value: str | None) -> None:
        updated = self.filter.with_value(key, value or None, assets=self.assets,
                                         channels=self.channels)
        if updated != self.filter:
            ui.navigate.to(self.page.here(**{k: updated.query().get(k)
                                              for k in StreamFilter.QUERY_KEYS}))

    def toggle_pause(self) -> None:
        t = self.page.t
        self.paused = not self.paused
        if self.paused:
            self.pause_button.set_text(t("stream.resume"))
            self.status.set_text(t("stream.paused", count="0"))
            self.status.props("color=warning")
            return
        self.pause_button.set_text(t("stream.pause"))
        self.status.set_text(t("stream.live"))
        self.status.props("color=positive")
        held = list(self.held)
        self.held.clear()
        self.held_count = 0
        self._show(held)

    # --- a row, expanded --------------------------------------------------------------------

    async def _clicked(self, event: Any) -> None:
        data = (event.args or {}).get("data") or {}
        if data.get("id") and not data.get("adjustment"):  # an adjustment is no payment
            await self.expand(str(data["id"]))

    async def expand(self, payment_id: str) -> None:
        page, t = self.page, self.page.t
        detail = await page.call(page.client.payment(payment_id))
        if detail is None:
            return
        decisions = await page.call(page.client.route_decisions(payment_id=payment_id))
        # Quiet: a server without risk control still shows the rest of the payment.
        risk = await page.call(page.client.risk_decision(payment_id), quiet=True)
        recon = await page.call(page.client.recon_payment(payment_id), quiet=True) \
            if page.signed.may(P.RECON_READ) else None
        entry_ids = list(dict.fromkeys(e for event in detail.events for e in event.entries))
        entries = {}
        for entry_id in entry_ids:
            entry = await page.call(page.client.transaction(entry_id))
            if entry is not None:
                entries[entry_id] = entry
        amount, amount_exact = page.amounts(int(detail.amount_minor), detail.asset)
        self.detail.clear()
        with self.detail, ui.card().classes("w-full"):
            with ui.row().classes("w-full items-center"):
                testid(ui.label(t("detail.title", id=detail.id)).classes("text-lg font-medium"),
                       "detail-title")
                ui.badge(t(f"state.{detail.state}")).classes(
                    f"fp-tone-{STATE_TONES.get(str(detail.state), 'neutral')}")
                with ui.label(" · ".join(part for part in (
                        t(f"kind.{detail.kind}"), f"{amount} {detail.asset}",
                        detail.counterparty or "", getattr(detail, "destination", None) or "")
                        if part)).classes("opacity-80"):
                    ui.tooltip(f"{amount_exact} {detail.asset}")
                initiated = actor_text(getattr(detail, "initiated_by", None), page.locale)
                if initiated is not None:
                    testid(ui.label(t("detail.initiated_by", actor=initiated))
                           .classes("text-sm opacity-70"), "detail-initiated-by")
                ui.space()
                ui.button(t("detail.close"), on_click=self.detail.clear).props("flat no-caps")
            with ui.row().classes("w-full gap-6 items-start"):
                with ui.column().classes("min-w-[360px]"):
                    ui.label(t("detail.timeline")).classes("font-medium")
                    self._timeline(detail.events)
                with ui.column().classes("flex-1"):
                    ui.label(t("detail.postings")).classes("font-medium")
                    self._postings(detail, entries)
            ui.label(t("detail.routing")).classes("font-medium pt-2")
            self._routing(decisions.data if decisions is not None else [])
            if risk is not None:  # the call failed: nothing to say rather than "not screened"
                ui.label(t("riskview.title")).classes("font-medium pt-2")
                with testid(ui.column().classes("w-full gap-1"), "detail-risk"):
                    show_decision(page, risk.decision)
                    show_cases(page, risk.cases)
            if recon is not None:  # where its book items stand against the bank's statements
                ui.label(t("recon.payment_title")).classes("font-medium pt-2")
                show_payment_reconciliation(page, recon)

    def _timeline(self, events: list[Any]) -> None:
        """Each step: the status it reached, when, who took it (the engine's own steps say
        "engine"; a step recorded before actors were says "unknown"), and why; the step
        itself only where the status does not say it (a release, a retry)."""
        page, t = self.page, self.page.t
        with testid(ui.timeline(side="right", layout="dense"), "detail-timeline") \
                .classes("fp-timeline"):
            for event in events:
                who = actor_text(getattr(event, "actor", None), page.locale,
                                 recorded=hasattr(event, "actor"))
                action, to = str(event.action), str(event.to)
                said = [] if STEP_REACHES.get(action) == to else \
                    [t(f"action.{action}") if action in ACTIONS else action]
                if who is not None:
                    said.append(t("detail.by", actor=who))
                if event.reason:
                    said.append(reason_text(event.reason, page.locale))
                ui.timeline_entry(" · ".join(said), title=t(f"state.{to}"),
                                  subtitle=event.at.replace("T", " ").removesuffix("Z")[:23])

    def _postings(self, detail: Any, entries: dict[str, Any]) -> None:
        """The payment's postings: its own share of each entry when the API gives it (an
        outbound step's entry may sum its whole wave, ADR 0008), else the entries' postings
        with how many payments each covers."""
        page, t = self.page, self.page.t
        covers = {entry_id: int((entry.metadata or {}).get("payments", "1"))
                  for entry_id, entry in entries.items()}
        own = [share for event in detail.events for share in getattr(event, "shares", None) or ()]
        if own:
            postings = [(share.entry_id, share.source, share.destination,
                         int(share.amount_minor), share.asset) for share in own]
        else:
            postings = [(entry_id, p.source, p.destination, int(p.amount_minor), p.asset)
                        for entry_id, entry in entries.items() for p in entry.postings]
        rows = []
        for index, (entry_id, source, destination, minor, asset) in enumerate(postings):
            shown, exact = page.amounts(minor, asset)
            rows.append({"key": index, "entry": entry_id[-12:],
                         "covers": f"{covers.get(entry_id, 1):,}", "source": source,
                         "destination": destination, "amount": f"{shown} {asset}",
                         "amount_exact": f"{exact} {asset}"})
        if any(covers.get(entry_id, 1) > 1 for entry_id, *_ in postings):
            testid(ui.label(t("detail.own_share" if own else "detail.shared"))
                   .classes("text-xs opacity-70"), "detail-shared")
        table = testid(ui.table(columns=[
            {"name": "entry", "label": t("col.entries"), "field": "entry", "align": "left"},
            {"name": "covers", "label": t("col.covers"), "field": "covers", "align": "right"},
            {"name": "source", "label": t("detail.source"), "field": "source",
             "align": "left", "classes": "fp-wrap"},
            {"name": "destination", "label": t("detail.destination"), "field": "destination",
             "align": "left", "classes": "fp-wrap"},
            {"name": "amount", "label": t("detail.own_amount" if own else "col.amount"),
             "field": "amount", "align": "right"},
        ], rows=rows, row_key="key").props("dense flat wrap-cells").classes("w-full"),
            "detail-postings")
        table.props(f'data-own="{"true" if own else "false"}"')
        exact_tooltips(table, "amount")

    def _routing(self, decisions: list[Any]) -> None:
        page, t = self.page, self.page.t
        if not decisions:
            testid(ui.label(t("detail.no_routing")).classes("opacity-70"), "detail-routing")
            return
        with testid(ui.column().classes("w-full"), "detail-routing"):
            for decision in sorted(decisions, key=lambda d: d.attempt):
                asset = decision.asset

                def money(minor: float | int | str | None, asset: str | None = asset) -> str:
                    # The router's costs are scores in minor units (floats): shown in whole
                    # units of the asset, like every amount of the console.
                    if minor is None or asset is None:
                        return "–"
                    return f"{page.amount(round(float(minor)), asset)} {asset}"

                testid(ui.label(t("detail.attempt", n=decision.attempt,
                                  channel=decision.channel or "–",
                                  reason=self._routing_summary(decision, money)))
                       .classes("text-sm"), "routing-summary")
                rows = []
                for c in decision.candidates:
                    rows.append({
                        "channel": c.channel + (" ✓" if c.channel == decision.channel else ""),
                        "eligible": t("detail.yes") if c.eligible
                        else t("detail.no", why=exclusion_text(c.reason, page.locale)),
                        "fee": "" if c.fee_minor is None else money(c.fee_minor),
                        "latency": "" if c.latency_us is None
                        else duration_text(c.latency_us, page.locale),
                        "p": "" if c.sampled_success_probability is None
                        else f"{c.sampled_success_probability:.3f}",
                        "cost": "" if c.expected_cost_minor is None
                        else money(c.expected_cost_minor)})
                ui.table(columns=[
                    {"name": "channel", "label": t("col.channel"), "field": "channel",
                     "align": "left"},
                    {"name": "eligible", "label": t("detail.eligible"), "field": "eligible",
                     "align": "left"},
                    {"name": "fee", "label": t("col.fee"), "field": "fee", "align": "right"},
                    {"name": "latency", "label": t("detail.latency"), "field": "latency",
                     "align": "right"},
                    {"name": "p", "label": t("detail.p_used"), "field": "p", "align": "right"},
                    {"name": "cost", "label": t("detail.expected_cost"), "field": "cost",
                     "align": "right"},
                ], rows=rows).props("dense flat").classes("w-full")

    def _routing_summary(self, decision: Any, money: Any) -> str:
        """The decision in one line, every amount in whole units of its asset (the router's
        own summary counts in minor units)."""
        t = self.page.t
        if decision.channel is None:
            reasons = ", ".join(f"{c.channel}: {exclusion_text(c.reason, self.page.locale)}"
                                for c in decision.candidates)
            return t("routing.none", reasons=reasons or "–")
        chosen = next((c for c in decision.candidates if c.channel == decision.channel), None)
        if chosen is None:
            return str(decision.summary)
        why = t("routing.hedged") if decision.hedged else \
            t("routing.learned") if decision.strategy == "learned" else t("routing.fixed")
        probability = chosen.sampled_success_probability \
            if chosen.sampled_success_probability is not None \
            else chosen.quoted_success_probability
        text = t("routing.chosen", why=why, cost=money(chosen.expected_cost_minor),
                 fee=money(chosen.fee_minor), time=money(chosen.time_cost_minor),
                 p="–" if probability is None else f"{probability:.3f}",
                 retry=money(chosen.retry_cost_minor))
        others = sorted((c for c in decision.candidates
                         if c.eligible and c.channel != decision.channel),
                        key=lambda c: c.expected_cost_minor or 0.0)
        if others:
            text += t("routing.next", channel=others[0].channel,
                      cost=money(others[0].expected_cost_minor))
        return text

    # --- replay -----------------------------------------------------------------------------

    async def start_replay(self) -> None:
        t = self.page.t
        try:
            since_us = parse_instant(self.replay_from.value or "")
            until_us = parse_instant(self.replay_to.value or "")
        except InvalidInstant:
            ui.notify(t("stream.replay_bad"), type="warning")
            return
        span_us = until_us - since_us
        if not 0 < span_us <= REPLAY_SPAN_MAX // timedelta(microseconds=1) \
                or until_us > SystemClock().now_us():
            ui.notify(t("stream.replay_bad"), type="warning")
            return
        if not self.page.signed.may(P.EVENTS_READ):
            ui.notify(t("error.forbidden", permission=P.EVENTS_READ), type="negative")
            return
        self.stop_replay()
        self.window.clear()
        self.grid.run_grid_method("setGridOption", "rowData", [])
        speed = int(self.replay_speed.value or 60)
        self.replay_stop.set_visibility(True)
        self.status.set_text(t("stream.replay"))
        self.status.props("color=info")
        self.replaying = asyncio.create_task(self._replay(since_us, until_us, speed))

    async def _replay(self, since_us: int, until_us: int, speed: int) -> None:
        """Events of the window, read from the outbox in a worker thread and shown as their
        moments come on a clock `speed` times faster than the wall."""
        outbox = self.console.api.outbox
        loop = asyncio.get_running_loop()
        pending: list[StreamRow] = []
        done = 0

        def read() -> None:
            nonlocal done
            for event in replay_window(outbox, self.pool.id, since_us=since_us,
                                       until_us=until_us, speed=speed):
                if self.replaying is None:
                    return
                done += 1
                row = row_of(event)
                if row is not None:
                    loop.call_soon_threadsafe(pending.append, row)

        reader = asyncio.ensure_future(anyio.to_thread.run_sync(read, abandon_on_cancel=True))
        label = (f"{time_text(since_us, with_date=True)}", f"{time_text(until_us)}")
        try:
            while True:
                await asyncio.sleep(TICK_S)
                batch, pending[:] = list(pending), []
                self._show(batch)
                self.replay_state.set_text(self.page.t(
                    "stream.replaying", start=label[0], end=label[1], speed=speed,
                    done=f"{done:,}", count="…" if not reader.done() else f"{done:,}"))
                if reader.done() and not pending:
                    break
        finally:
            reader.cancel()

    def stop_replay(self) -> None:
        task, self.replaying = self.replaying, None
        if task is not None:
            task.cancel()
            self.replay_stop.set_visibility(False)
            self.window.clear()
            self.grid.run_grid_method("setGridOption", "rowData", [])
            self.status.set_text(self.page.t("stream.live"))
            self.status.props("color=positive")
            if self.subscriber is not None:
                with contextlib.suppress(asyncio.QueueEmpty):
                    while True:  # what came while replaying is not shown as if it were new
                        self.subscriber.queue.get_nowait()


def _row_of_payment(payment: Any) -> StreamRow:
    updated = parse_instant(payment.updated_at)
    return StreamRow(payment_id=payment.id, kind=str(payment.kind), asset=payment.asset,
                     amount_minor=int(payment.amount_minor), fee_minor=int(payment.fee_minor),
                     channel=payment.channel or payment.destination_channel,
                     counterparty=payment.counterparty, state=str(payment.state),
                     action="", at_us=updated, created_at_us=parse_instant(payment.created_at),
                     risk=risk_grade(str(payment.state), None))


@console_page("/stream", needs=P.PAYMENTS_READ, title="nav.stream")
async def stream_page(page: Page) -> None:
    if not page.signed.may(P.EVENTS_READ):
        testid(ui.label(page.t("stream.no_events_read")).classes("p-4 text-warning"),
               "forbidden")
        return
    Stream(page).build()
