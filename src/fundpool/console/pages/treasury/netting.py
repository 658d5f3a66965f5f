"""The netting tab: the participants (merchants and partners) with their balances per asset;
an obligation recorded (payer owes payee an amount) and queued; a cycle run for an asset,
which nets the queued obligations and settles the net positions in one ledger entry; the
cycles with gross, net, efficiency, how many settled and stayed queued, and who was short."""

from __future__ import annotations

from typing import Any

from nicegui import ui

from fundpool.console.pages.treasury.common import (
    Desk,
    cells,
    error_label,
    listing,
)
from fundpool.console.recon import when_text
from fundpool.console.shell import testid
from fundpool.console.treasury import (
    OBLIGATION_STATE_KEYS,
    PARTICIPANT_KINDS,
    actor_name,
    amount_ok,
    nonzero,
    state_text,
)

QUEUED_SHOWN_MAX = 200
CYCLES_SHOWN_MAX = 30


class Netting:
    def __init__(self, desk: Desk) -> None:
        self.desk = desk
        self.participants: list[str] = []
        self.busy = False

    async def build(self) -> None:
        t = self.desk.t
        with testid(ui.card().classes("w-full"), "netting-participants-card"):
            ui.label(t("treasury.netting_participants")).classes("font-medium")
            self.participants_box = testid(ui.column().classes("w-full gap-0"),
                                           "netting-participants")
        with testid(ui.card().classes("w-full"), "netting-queue-card"):
            ui.label(t("treasury.netting_queue")).classes("font-medium")
            self.form_box = ui.column().classes("w-full gap-1")
            self.obligation_error = error_label("netting-obligation-error")
            self.queue_box = testid(ui.column().classes("w-full gap-0"), "netting-queue")
        with testid(ui.card().classes("w-full"), "netting-cycles-card"):
            ui.label(t("treasury.netting_cycles")).classes("font-medium")
            if self.desk.may["cycle"]:
                with ui.row().classes("items-end gap-2"):
                    self.cycle_asset = testid(ui.select(
                        self.desk.assets, value=self.desk.default_asset,
                        label=t("treasury.asset"))
                        .props("dense outlined").classes("w-28"), "netting-cycle-asset")
                    testid(ui.button(t("treasury.netting_run"), on_click=self.run_cycle)
                           .props("unelevated no-caps color=primary"), "netting-run")
            self.cycle_error = error_label("netting-cycle-error")
            self.cycle_result = testid(ui.label("").classes("text-sm"), "netting-cycle-done")
            self.cycles_box = testid(ui.column().classes("w-full gap-0"), "netting-cycles")
        await self.refresh()
        if self.desk.may["obligations"]:
            self._form()
        else:
            with self.form_box:
                testid(ui.label(t("treasury.read_only", roles=self.desk.page.roles_text()))
                       .classes("text-sm text-warning"), "netting-read-only")

    def _form(self) -> None:
        t = self.desk.t
        people = self.participants
        with self.form_box, ui.row().classes("w-full items-end gap-2"):
            self.payer = testid(ui.select(people, value=people[0] if people else None,
                                          label=t("treasury.payer"))
                                .props("dense outlined").classes("w-44"), "netting-payer")
            self.payee = testid(ui.select(people, value=people[1] if len(people) > 1 else None,
                                          label=t("treasury.payee"))
                                .props("dense outlined").classes("w-44"), "netting-payee")
            self.asset = testid(ui.select(self.desk.assets, value=self.desk.default_asset,
                                          label=t("treasury.asset"))
                                .props("dense outlined").classes("w-28"), "netting-asset")
            self.amount = testid(ui.input(t("treasury.amount"), placeholder="100.00")
                                 .props("dense outlined").classes("w-36"), "netting-amount")
            self.reference = testid(ui.input(t("treasury.reference"))
                                    .props("dense outlined").classes("w-40"),
                                    "netting-reference")
            testid(ui.button(t("treasury.netting_add"), on_click=self.add)
                   .props("unelevated no-caps color=primary"), "netting-add")

    async def refresh(self) -> None:
        desk = self.desk
        client, pool = desk.page.client, desk.pool.id
        participants = await desk.read(client.netting_participants(pool=pool))
        queued = await desk.read(client.netting_obligations(pool=pool, limit=QUEUED_SHOWN_MAX))
        cycles = await desk.read(client.netting_cycles(pool=pool, limit=CYCLES_SHOWN_MAX))
        if participants is not None:
            self.participants = [str(p.get("id")) for p in participants]
            self._participants(participants)
        if queued is not None:
            self._queue(queued)
        if cycles is not None:
            self._cycles(cycles)

    def _participants(self, found: list[dict[str, Any]]) -> None:
        t, locale = self.desk.t, self.desk.page.locale
        columns = (("treasury.col_participant", "w-44"),
                   ("treasury.col_kind", "w-28"), ("treasury.col_balances", "flex-1"))
        if not listing(self.participants_box, t, found, columns,
                       none=("treasury.netting_no_participants", "netting-participants-none"),
                       count=False):
            return
        with self.participants_box:
            for who in found:
                balances = nonzero(who.get("balances"))
                shown = " · ".join(f"{amount} {code}" for code, amount in balances.items()) \
                    or t("treasury.nothing_held")
                cells(((str(who.get("id")), "w-44"),
                       (state_text(PARTICIPANT_KINDS, who.get("kind"), locale), "w-28"),
                       (shown, "flex-1 fp-card-value fp-wrap")),
                      name=f"participant-{who.get('id')}", kind=who.get("kind"))

    def _queue(self, queued: list[dict[str, Any]]) -> None:
        t, locale = self.desk.t, self.desk.page.locale
        columns = (("treasury.col_state", "w-24"), ("treasury.col_payer", "w-44"),
                   ("treasury.col_payee", "w-44"), ("treasury.col_amount", "w-40"),
                   ("treasury.col_reference", "w-40"), ("treasury.col_by", "flex-1"))
        if not listing(self.queue_box, t, queued, columns,
                       none=("treasury.netting_queue_empty", "netting-queue-none")):
            return
        with self.queue_box:
            for obligation in queued:
                cells(((state_text(OBLIGATION_STATE_KEYS, obligation.get("state"), locale),
                        "w-24"),
                       (str(obligation.get("payer")), "w-44"),
                       (str(obligation.get("payee")), "w-44"),
                       (f"{obligation.get('amount')} {obligation.get('asset')}",
                        "w-40 fp-card-value"),
                       (str(obligation.get("reference") or "—"), "w-40"),
                       (actor_name(obligation.get("created_by"), locale), "flex-1")),
                      name=f"obligation-{obligation.get('id')}", amount=obligation.get("amount"),
                      asset=obligation.get("asset"))

    def _cycles(self, cycles: list[dict[str, Any]]) -> None:
        t = self.desk.t
        columns = (("treasury.col_at", "w-44"), ("treasury.col_asset", "w-16"),
                   ("treasury.col_gross", "w-36"), ("treasury.col_net", "w-36"),
                   ("treasury.col_efficiency", "w-28"),
                   ("treasury.col_settled_queued", "w-36"),
                   ("treasury.col_short", "w-40"), ("treasury.col_entry", "flex-1"))
        if not listing(self.cycles_box, t, cycles, columns,
                       none=("treasury.netting_no_cycles", "netting-cycles-none")):
            return
        with self.cycles_box:
            for cycle in cycles:
                asset = cycle.get("asset")
                cells(((when_text(cycle.get("at")), "w-44"),
                       (str(asset), "w-16"),
                       (f"{cycle.get('gross')} {asset}", "w-36 fp-card-value"),
                       (f"{cycle.get('net')} {asset}", "w-36 fp-card-value"),
                       (str(cycle.get("efficiency")), "w-28 fp-card-value"),
                       (t("treasury.settled_queued", settled=cycle.get("settled"),
                          queued=cycle.get("queued")), "w-36"),
                       (", ".join(cycle.get("short") or []) or "—", "w-40 fp-wrap"),
                       (str(cycle.get("entry_id") or "—"), "flex-1 text-xs fp-mono fp-wrap")),
                      name=f"cycle-{cycle.get('id')}", efficiency=cycle.get("efficiency"),
                      settled=cycle.get("settled"), queued=cycle.get("queued"),
                      gross=cycle.get("gross"), net=cycle.get("net"))

    async def add(self) -> None:
        desk = self.desk
        amount = str(self.amount.value or "").strip()
        if not self.payer.value or not self.payee.value or not amount_ok(amount):
            desk.say(self.obligation_error, "treasury.netting_fill")
            return
        if self.busy:
            return
        self.busy = True
        try:
            made = await desk.act(desk.page.client.record_obligations(
                [{"payer": str(self.payer.value), "payee": str(self.payee.value),
                  "asset": str(self.asset.value), "amount": amount,
                  "reference": str(self.reference.value or "").strip() or None}],
                pool=desk.pool.id), self.obligation_error)
        finally:
            self.busy = False
        if made is not None:
            self.amount.set_value("")
            self.reference.set_value("")
            ui.notify(desk.t("treasury.netting_added"), type="positive")
            await self.refresh()

    async def run_cycle(self) -> None:
        desk = self.desk
        if self.busy:
            return
        self.busy = True
        try:
            cycle = await desk.act(desk.page.client.run_netting_cycle(
                str(self.cycle_asset.value), pool=desk.pool.id), self.cycle_error)
        finally:
            self.busy = False
        if cycle is None:
            return
        self.cycle_result.set_text(desk.t(
            "treasury.netting_ran", asset=cycle.get("asset"), settled=cycle.get("settled"),
            queued=cycle.get("queued"), efficiency=cycle.get("efficiency")))
        self.cycle_result.props(f'data-cycle="{cycle.get("id")}"')
        await self.refresh()
