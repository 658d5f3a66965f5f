"""The liquidity tab: every position (channel, asset) against its band; rebalancing plans,
proposed from the live balances with their transfers, explanation and what they could not
resolve, approved (by another person than the proposer) or rejected, then executed as
payments; the sweep rules and their runs; the credit lines.

A plan opens at its own address (`?tab=liquidity&plan=<id>`), so that the link can be sent to
the approver; an executing plan is read again every few seconds until its payments have
ended. Approve is offered to whoever holds the route's permission (`treasury:approve`); the
proposer is told beforehand that another person approves, and the API's refusal
(`plan_self_approval`) is said in their language if they try.
"""

from __future__ import annotations

from typing import Any

from nicegui import ui

from fundpool.client.errors import ApiError
from fundpool.console.feed import STATE_TONES
from fundpool.console.pages.treasury.common import (
    Desk,
    badge,
    cells,
    empty,
    error_label,
    header_row,
    listing,
    table_row,
)
from fundpool.console.recon import when_text
from fundpool.console.shell import page_link, testid
from fundpool.console.texts import problem_text
from fundpool.console.treasury import (
    BAND_STATUS_COLOURS,
    PLAN_STATE_COLOURS,
    PLAN_STATE_KEYS,
    SWEEP_OUTCOME_KEYS,
    SWEEP_RUN_KEYS,
    actor_name,
    band_status_text,
    fees_text,
    is_proposer,
    latency_text,
    move_text,
    plan_summary,
    state_text,
)

PLANS_SHOWN_MAX = 20
RUNS_SHOWN_MAX = 20
PLAN_REFRESH_S = 3.0  # an executing plan is read again this often
PLAN_CHANGED_CODES = ("plan_outdated", "plan_not_open")  # refusals after which it stands otherwise
AMOUNT_WIDTH = "w-52"  # an amount of 18 decimals (ETH) and 7 digits, exact, fits


class Liquidity:
    def __init__(self, desk: Desk) -> None:
        self.desk = desk
        self.plan: dict[str, Any] | None = None
        self.listed: list[dict[str, Any]] = []  # the plans the list shows, as last read
        self.busy = False

    async def build(self) -> None:
        t = self.desk.t
        self.detail = testid(ui.card().classes("w-full"), "plan-detail")
        self.detail.set_visibility(False)
        with testid(ui.card().classes("w-full"), "positions-card"):
            with ui.row().classes("w-full items-center gap-3"):
                ui.label(t("treasury.positions")).classes("font-medium")
                ui.space()
                if self.desk.may["propose"]:
                    testid(ui.button(t("treasury.propose"), on_click=self.propose)
                           .props("unelevated no-caps color=primary"), "plan-propose")
            self.policy = testid(ui.label("").classes("text-sm opacity-70"), "liquidity-policy")
            self.propose_error = error_label("plan-propose-error")
            self.positions_box = testid(ui.column().classes("w-full gap-0"), "positions")
        with testid(ui.card().classes("w-full"), "plans-card"):
            ui.label(t("treasury.plans")).classes("font-medium")
            self.plans_box = testid(ui.column().classes("w-full gap-0"), "plans")
        with ui.element("div").classes("w-full grid gap-3 grid-cols-1 xl:grid-cols-2"):
            with testid(ui.card(), "sweeps-card"):
                with ui.row().classes("w-full items-center gap-3"):
                    ui.label(t("treasury.sweeps")).classes("font-medium")
                    ui.space()
                    if self.desk.may["sweeps"]:
                        testid(ui.button(t("treasury.sweeps_run"), on_click=self.run_sweeps)
                               .props("outline no-caps"), "sweeps-run")
                self.sweeps_error = error_label("sweeps-error")
                self.sweep_outcomes = testid(ui.column().classes("w-full gap-0"),
                                             "sweep-outcomes")
                self.sweeps_box = testid(ui.column().classes("w-full gap-0"), "sweeps")
            with testid(ui.card(), "credit-card"):
                with ui.row().classes("w-full items-center gap-3"):
                    ui.label(t("treasury.credit")).classes("font-medium")
                    ui.space()
                    if self.desk.may["credit"]:
                        testid(ui.button(t("treasury.credit_run"), on_click=self.run_credit)
                               .props("outline no-caps"), "credit-run")
                self.credit_error = error_label("credit-error")
                self.credit_outcomes = testid(ui.column().classes("w-full gap-0"),
                                              "credit-outcomes")
                self.credit_box = testid(ui.column().classes("w-full gap-0"), "credit-lines")
        await self.refresh()
        wanted = self.desk.page.request.query_params.get("plan")
        if wanted:  # the list just read has it, unless it is older than the list shows
            found = next((p for p in self.listed if p.get("id") == wanted), None) or \
                await self.desk.read(self.desk.page.client.liquidity_plan(
                    wanted, pool=self.desk.pool.id))
            if found is not None:
                self.show_plan(found)
        ui.timer(PLAN_REFRESH_S, self._follow)  # the plan shown was read just now

    async def refresh(self) -> None:
        desk = self.desk
        client, pool = desk.page.client, desk.pool.id
        positions = await desk.read(client.liquidity(pool=pool))
        plans = await desk.read(client.liquidity_plans(pool=pool, limit=PLANS_SHOWN_MAX))
        sweeps = await desk.read(client.sweeps(pool=pool, limit=RUNS_SHOWN_MAX))
        credit = await desk.read(client.credit_lines(pool=pool))
        if positions is not None:
            self._positions(positions)
        if plans is not None:
            self._plans(plans)
        if sweeps is not None:
            self._sweeps(sweeps)
        if credit is not None:
            self._credit(credit)

    # --- positions -----------------------------------------------------------------------

    def _positions(self, doc: dict[str, Any]) -> None:
        t, locale = self.desk.t, self.desk.page.locale
        auto = doc.get("auto_execute") or {}
        self.policy.set_text(t("treasury.liquidity_policy",
                               auto=" · ".join(f"{v} {k}" for k, v in sorted(auto.items()))
                               or t("treasury.auto_none"),
                               stale=doc.get("stale_after_s"), every=doc.get("sweep_every_s")))
        self.positions_box.clear()
        with self.positions_box:
            header_row(t, (("treasury.col_channel", "w-24"), ("treasury.col_asset", "w-16"),
                           ("treasury.col_available", AMOUNT_WIDTH),
                           ("treasury.col_min", AMOUNT_WIDTH),
                           ("treasury.col_target", AMOUNT_WIDTH),
                           ("treasury.col_max", AMOUNT_WIDTH), ("treasury.col_status", "flex-1")))
            for position in doc.get("positions") or []:
                band = position.get("band") or {}
                status = position.get("status")
                name = f"position-{position.get('channel')}-{position.get('asset')}"
                with table_row(name, status=status or "none",
                               available=position.get("available")):
                    ui.label(str(position.get("channel"))).classes("w-24")
                    ui.label(str(position.get("asset"))).classes("w-16")
                    ui.label(str(position.get("available"))).classes(
                        f"{AMOUNT_WIDTH} fp-card-value")
                    for key in ("min", "target", "max"):
                        ui.label(str(band.get(key) or "—")).classes(
                            f"{AMOUNT_WIDTH} fp-card-value")
                    with ui.row().classes("flex-1 items-center gap-1"):
                        ui.badge(band_status_text(status, locale),
                                 color=BAND_STATUS_COLOURS.get(str(status), "grey"))
                        if not position.get("managed", True):
                            ui.label(t("treasury.not_managed")).classes("text-xs opacity-60")

    # --- plans ---------------------------------------------------------------------------

    def _plans(self, plans: list[dict[str, Any]]) -> None:
        t, locale = self.desk.t, self.desk.page.locale
        self.listed = plans
        columns = (("treasury.col_state", "w-28"), ("treasury.col_created", "w-44"),
                   ("treasury.col_by", "w-28"), ("treasury.col_transfers", "w-24"),
                   ("treasury.col_fee", "w-40"), ("treasury.col_plan", "flex-1"))
        if not listing(self.plans_box, t, plans, columns,
                       none=("treasury.no_plans", "plans-none")):
            return
        with self.plans_box:
            for plan in plans:
                state = str(plan.get("state"))
                with table_row(f"plan-row-{plan.get('id')}", state=state):
                    with ui.row().classes("w-28"):
                        ui.badge(state_text(PLAN_STATE_KEYS, state, locale),
                                 color=PLAN_STATE_COLOURS.get(state, "grey"))
                    ui.label(when_text(plan.get("created_at"))) \
                        .classes("w-44")
                    ui.label(actor_name(plan.get("proposed_by"), locale)).classes("w-28")
                    ui.label(str(len(plan.get("transfers") or []))).classes("w-24")
                    ui.label(fees_text(plan.get("total_fee"))).classes("w-40 fp-card-value")
                    with ui.row().classes("flex-1 items-center gap-2"):
                        testid(ui.link(t("treasury.open_plan"),
                                       self.desk.page.here(plan=str(plan.get("id")))),
                               f"plan-open-{plan.get('id')}")
                        ui.label(str(plan.get("id"))).classes("text-xs opacity-60 fp-mono")

    async def propose(self) -> None:
        desk = self.desk
        if self.busy:
            return
        self.busy = True
        try:
            plan = await desk.act(desk.page.client.propose_plan(pool=desk.pool.id),
                                  self.propose_error)
        finally:
            self.busy = False
        if plan is not None:
            self.show_plan(plan)
            ui.run_javascript(f"getHtmlElement({self.detail.id})?.scrollIntoView()")
            await self.refresh()

    def show_plan(self, plan: dict[str, Any]) -> None:
        """Open `plan`: its state, transfers, explanation, unresolved positions, payments,
        and what the user may do with it."""
        t, locale = self.desk.t, self.desk.page.locale
        self.plan = plan
        state = str(plan.get("state"))
        plan_id = str(plan.get("id"))
        self.detail.clear()
        self.detail.set_visibility(True)
        self.detail.props(f'data-plan-id="{plan_id}" data-state="{state}"')
        with self.detail:
            with ui.row().classes("w-full items-center gap-2"):
                testid(ui.label(t("treasury.plan_title", id=plan_id)).classes(
                    "text-lg font-medium"), "plan-title")
                badge(state_text(PLAN_STATE_KEYS, state, locale),
                      PLAN_STATE_COLOURS.get(state, "grey"), "plan-state", state)
                if plan.get("auto"):
                    testid(ui.badge(t("treasury.plan_auto"), color="info"), "plan-auto")
            said = [t("treasury.plan_by", who=actor_name(plan.get("proposed_by"), locale),
                      at=when_text(plan.get("created_at")),
                      balances=when_text(plan.get("balances_at")))]
            if plan.get("approved_by"):
                said.append(t("treasury.plan_approved_by",
                              who=actor_name(plan["approved_by"], locale)))
            if plan.get("rejected_by"):
                said.append(t("treasury.plan_rejected_by",
                              who=actor_name(plan["rejected_by"], locale),
                              note=plan.get("note") or "—"))
            testid(ui.label(" · ".join(said)).classes("text-sm opacity-80 fp-wrap"),
                   "plan-who")
            if plan.get("error"):
                error = plan["error"]
                testid(ui.label(t("treasury.plan_refused_because", reason=problem_text(
                    str(error.get("code")), str(error.get("title") or ""), error.get("facts"),
                    locale))).classes("text-negative fp-wrap"), "plan-stored-error")
            for short in plan.get("short") or []:
                testid(ui.label(t("treasury.plan_short", channel=short.get("channel"),
                                  asset=short.get("asset"))).classes("text-negative text-sm"),
                       "plan-short")
            self._transfers(plan)
            self._explanation(plan)
            self._payments(plan)
            self._actions(plan)

    def _transfers(self, plan: dict[str, Any]) -> None:
        t, locale = self.desk.t, self.desk.page.locale
        transfers = plan.get("transfers") or []
        ui.label(t("treasury.plan_transfers", count=len(transfers),
                   fee=fees_text(plan.get("total_fee")))).classes("text-sm font-medium pt-2")
        box = testid(ui.column().classes("w-full gap-0"), "plan-transfers")
        box.props(f'data-count="{len(transfers)}"')
        with box:
            if not transfers:
                empty(t("treasury.plan_no_transfers"), "plan-transfers-none")
                return
            header_row(t, (("treasury.col_route", "w-48"), ("treasury.col_amount", "w-44"),
                           ("treasury.col_fee", "w-32"), ("treasury.col_latency", "w-28"),
                           ("treasury.col_why", "flex-1")))
            for index, transfer in enumerate(transfers):
                asset = transfer.get("asset")
                cells(((f"{transfer.get('source')} → {transfer.get('destination')}", "w-48"),
                       (f"{transfer.get('amount')} {asset}", "w-44 fp-card-value"),
                       (f"{transfer.get('fee')} {asset}", "w-32 fp-card-value"),
                       (latency_text(transfer.get("latency_s") or 0, locale), "w-28"),
                       (str(transfer.get("why") or ""), "flex-1 text-xs fp-wrap")),
                      name=f"plan-transfer-{index}", source=transfer.get("source"),
                      destination=transfer.get("destination"), amount=transfer.get("amount"))

    def _explanation(self, plan: dict[str, Any]) -> None:
        t = self.desk.t
        lines = plan_summary(plan)
        if lines:
            ui.label(t("treasury.plan_explanation")).classes("text-sm font-medium pt-2")
            with testid(ui.column().classes("w-full gap-0 text-sm"), "plan-explanation"):
                for line in lines:
                    ui.label(str(line)).classes("fp-wrap")
        unresolved = plan.get("unresolved") or []
        if unresolved:
            ui.label(t("treasury.plan_unresolved", count=len(unresolved))) \
                .classes("text-sm font-medium pt-2")
            with testid(ui.column().classes("w-full gap-0"), "plan-unresolved"):
                for index, item in enumerate(unresolved):
                    testid(ui.label(str(item.get("why") or "")).classes("text-sm fp-wrap"),
                           f"plan-unresolved-{index}").props(
                        f'data-channel="{item.get("channel")}" data-asset="{item.get("asset")}"')

    def _payments(self, plan: dict[str, Any]) -> None:
        t = self.desk.t
        payments = [str(p) for p in plan.get("payments") or []]
        if not payments:
            return
        states = plan.get("payment_states") or {}
        ui.label(t("treasury.plan_payments", count=len(payments))) \
            .classes("text-sm font-medium pt-2")
        box = testid(ui.column().classes("w-full gap-0"), "plan-payments")
        box.props(f'data-count="{len(payments)}"')
        with box:
            for payment in payments:
                state = states.get(payment)
                with testid(ui.row().classes("items-center gap-2 text-sm"),
                            f"plan-payment-{payment}").props(f'data-state="{state or ""}"'):
                    page_link(payment, "/stream", {"payment": payment}).classes("fp-mono")
                    if state:
                        ui.label(t(f"state.{state}") if state in STATE_TONES else str(state)) \
                            .classes("opacity-80")

    def _actions(self, plan: dict[str, Any]) -> None:
        t = self.desk.t
        may_approve, may_reject = self.desk.may["approve"], self.desk.may["reject"]
        self.plan_error = error_label("plan-error")
        if plan.get("state") != "proposed" or not (may_approve or may_reject):
            return
        if is_proposer(plan, self.desk.page.signed.username):
            testid(ui.label(t("treasury.plan_yours")).classes("text-sm text-warning"),
                   "plan-why-not")
        with ui.row().classes("w-full items-end gap-2 pt-2"):
            if may_reject:
                self.note = testid(ui.input(t("treasury.plan_note")).props("dense outlined")
                                   .classes("w-96"), "plan-note")
            if may_approve:
                testid(ui.button(t("treasury.plan_approve"), on_click=self.approve)
                       .props("unelevated no-caps color=positive"), "plan-approve")
            if may_reject:
                testid(ui.button(t("treasury.plan_reject"), on_click=self.reject)
                       .props("outline no-caps color=negative"), "plan-reject")

    async def approve(self) -> None:
        await self._decide(approve=True)

    async def reject(self) -> None:
        await self._decide(approve=False)

    async def _decide(self, *, approve: bool) -> None:
        desk = self.desk
        plan = self.plan
        if plan is None or self.busy:
            return
        plan_id = str(plan.get("id"))
        client, pool = desk.page.client, desk.pool.id
        self.busy = True
        try:
            done = await (client.approve_plan(plan_id, pool=pool) if approve else
                          client.reject_plan(plan_id, str(self.note.value or "").strip(),
                                             pool=pool))
        except ApiError as refusal:
            # After a refusal that means the plan stands otherwise (outdated, decided by
            # another person), it is shown as it now is, with the refusal beneath.
            if refusal.code in PLAN_CHANGED_CODES:
                fresh = await desk.page.call(client.liquidity_plan(plan_id, pool=pool),
                                             quiet=True)
                if fresh is not None:
                    self.show_plan(fresh)
            desk.refused(refusal, self.plan_error)
        else:
            self.plan_error.set_visibility(False)
            self.show_plan(done)
        finally:
            self.busy = False
        await self.refresh()

    async def _follow(self) -> None:
        """Read an executing plan again until its payments have ended."""
        plan = self.plan
        if plan is None or plan.get("state") != "executing" or self.busy:
            return
        fresh = await self.desk.page.call(self.desk.page.client.liquidity_plan(
            str(plan.get("id")), pool=self.desk.pool.id), quiet=True)
        if fresh is None or self.plan is not plan:
            return
        if fresh.get("state") != plan.get("state") or \
                fresh.get("payment_states") != plan.get("payment_states"):
            self.show_plan(fresh)
            if fresh.get("state") != plan.get("state"):
                await self.refresh()

    # --- sweeps and credit lines ---------------------------------------------------------

    def _sweeps(self, doc: dict[str, Any]) -> None:
        t, locale = self.desk.t, self.desk.page.locale
        self.sweeps_box.clear()
        with self.sweeps_box:
            rules = doc.get("rules") or []
            if not rules:
                empty(t("treasury.no_sweeps"), "sweeps-none")
            for rule in rules:
                said = t("treasury.sweep_rule", kind=rule.get("kind"), asset=rule.get("asset"),
                         header=rule.get("header"),
                         participants=", ".join(rule.get("participants") or []))
                cells(((str(rule.get("id")), "w-40 font-medium"), (said, "flex-1 fp-wrap")),
                      name=f"sweep-rule-{rule.get('id')}")
            runs = doc.get("runs") or []
            ui.label(t("treasury.sweep_runs")).classes("text-sm font-medium pt-2")
            if not runs:
                empty(t("treasury.no_sweep_runs"), "sweep-runs-none")
            for run in runs:
                moves = " · ".join(move_text(m) for m in run.get("moves") or [])
                cells(((when_text(run.get("at")), "w-44"),
                       (str(run.get("rule")), "w-36"),
                       (state_text(SWEEP_RUN_KEYS, run.get("state"), locale), "w-24"),
                       (moves or "—", "flex-1 text-xs fp-wrap")),
                      name=f"sweep-run-{run.get('id')}", state=run.get("state"))

    async def run_sweeps(self) -> None:
        desk, t, locale = self.desk, self.desk.t, self.desk.page.locale
        outcomes = await desk.act(desk.page.client.run_sweeps(pool=desk.pool.id),
                                  self.sweeps_error)
        if outcomes is None:
            return
        self.sweep_outcomes.clear()
        with self.sweep_outcomes:
            for outcome in outcomes:
                said = t("treasury.sweep_outcome", rule=outcome.get("rule"),
                         outcome=state_text(SWEEP_OUTCOME_KEYS, outcome.get("outcome"), locale))
                moves = [move_text(m) for m in outcome.get("moves") or []]
                skipped = [str(s[1]) if isinstance(s, list) and len(s) > 1 else str(s)
                           for s in outcome.get("skipped") or []]
                with testid(ui.column().classes("gap-0 py-1 border-b"),
                            f"sweep-outcome-{outcome.get('rule')}").props(
                        f'data-outcome="{outcome.get("outcome")}"'):
                    ui.label(said).classes("text-sm font-medium")
                    for line in moves + skipped:
                        ui.label(line).classes("text-xs opacity-80 fp-wrap")
        await self.refresh()

    def _credit(self, lines: list[dict[str, Any]]) -> None:
        t = self.desk.t
        columns = (("treasury.col_facility", "w-28"), ("treasury.col_limit", "w-36"),
                   ("treasury.col_owed", "w-36"), ("treasury.col_headroom", "w-36"),
                   ("treasury.col_interest", "w-32"), ("treasury.col_rate", "w-20"))
        if not listing(self.credit_box, t, lines, columns,
                       none=("treasury.no_credit", "credit-none"), count=False):
            return
        with self.credit_box:
            for line in lines:
                asset = line.get("asset")
                cells(((f"{line.get('id')} ({line.get('channel')})", "w-28 fp-wrap"),
                       (f"{line.get('limit')} {asset}", "w-36 fp-card-value"),
                       (f"{line.get('owed')} {asset}", "w-36 fp-card-value"),
                       (f"{line.get('headroom')} {asset}", "w-36 fp-card-value"),
                       (f"{line.get('interest')} {asset}", "w-32 fp-card-value"),
                       (f"{line.get('annual_rate_percent')} %", "w-20")),
                      name=f"credit-{line.get('id')}", owed=line.get("owed"),
                      headroom=line.get("headroom"))

    async def run_credit(self) -> None:
        desk, t = self.desk, self.desk.t
        outcomes = await desk.act(desk.page.client.run_credit(pool=desk.pool.id),
                                  self.credit_error)
        if outcomes is None:
            return
        self.credit_outcomes.clear()
        with self.credit_outcomes:
            for outcome in outcomes:
                testid(ui.label(t("treasury.credit_ran", facility=outcome.get("facility"),
                                  drawn=outcome.get("drawn"), repaid=outcome.get("repaid"),
                                  interest=outcome.get("interest"), owed=outcome.get("owed"),
                                  asset=outcome.get("asset")))
                       .classes("text-sm"), f"credit-outcome-{outcome.get('facility')}") \
                    .props(f'data-drawn="{outcome.get("drawn")}" '
                           f'data-repaid="{outcome.get("repaid")}"')
        await self.refresh()
