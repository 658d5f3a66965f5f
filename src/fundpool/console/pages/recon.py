"""The reconciliation workbench (对账工作台): a channel's statements against its books
(docs/reconciliation.md), from `/v1/recon`.

- **Channels**: each channel of the pool with its open breaks and its latest statement's
  balance check; picking one (kept in the URL, `?channel=sepa`) opens it.
- **The channel**: its counts (matched, ambiguous, breaks, resolved) and tolerance; "Match
  again" (`POST /v1/recon/channels/{c}/match`) for payments settled since.
- **Balance reconciliation**: each statement's opening and closing balances against the
  ledger's, the differences, its open lines, and a badge: reconciled or not. A statement opens
  its lines, each with where it stands.
- **Import**: a statement file (camt.053/054, MT940, a chain transfer list, CSV with a saved
  mapping) posted as it is to `POST /v1/recon/imports`; the answer (statements, lines, what
  matched) or the refusal in the user's language, with the file's place at fault.
- **Open items**, side by side: statement lines the books lack and book items the bank lacks
  (breaks), and ambiguous ones with their candidates, each with its amount, date, age, reason
  and references; the breaks counted by age. Resolve closes one with a note, or, for a
  statement line, books the difference as a ledger adjustment (offered with `ledger:adjust`).
- **Expected payments**: announced incoming funds, a form to announce one, and cancel.

Reading needs `recon:read`; acting is offered with the permission the routes declare
(`x-permission`: `recon:write`), and the API checks it again.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from nicegui import events, ui

from fundpool.auth.roles import P
from fundpool.client.errors import ApiError, PermissionDenied, Unauthorized
from fundpool.console.format import instant_input
from fundpool.console.forms import Submission
from fundpool.console.pages.approval_rules import declared_permission
from fundpool.console.recon import (
    AGE_BUCKETS,
    AGE_KEYS,
    FORMATS,
    OPEN_STATES,
    STATE_TONES,
    BalanceView,
    balance_view,
    breaks_by_age,
    candidates_of,
    counts_of,
    import_summary,
    is_zero,
    line_kind_text,
    may_book,
    missing_fields,
    reason_text,
    references,
    split_sides,
    state_text,
    target_text,
    when_text,
)
from fundpool.console.shell import Page, console_page, page_link, testid

RECON_PATH = "/recon"
API_RESOLVE = "/v1/recon/resolve"
OPEN_ROWS_MAX = 500  # open rows read per side and state at once (the API's default page)
STATEMENTS_SHOWN_MAX = 30  # statements in the balance table, newest period first
EXPECTED_SHOWN_MAX = 100
RESOLUTIONS_SHOWN_MAX = 20
EXPECTED_DAYS_DEFAULT = 7  # an announced payment is looked for this long by default
EXPECTED_REQUIRED = ("asset", "amount_min", "amount_max", "from", "until")
AUTO_FORMAT = "auto"
NO_MAPPING = ""


class Workbench:
    def __init__(self, page: Page) -> None:
        self.page = page
        api = page.console.api
        self.pool = api.pool(page.request.query_params.get("pool"))
        self.channels = list(self.pool.channels)
        self.names = {c: api.config.channel(c).name or c for c in self.channels}
        self.assets = {c: list(api.config.channel(c).assets) for c in self.channels}
        wanted = page.request.query_params.get("channel")
        self.channel: str | None = wanted if wanted in self.channels else None
        self.may_write = page.signed.may(declared_permission(
            page.console.app, "POST", API_RESOLVE, P.RECON_WRITE))
        self.may_adjust = self.may_write and page.signed.may(P.LEDGER_ADJUST)
        self.upload_bytes_max = int(api.settings.upload_max_bytes)
        self.channel_docs: dict[str, dict[str, Any]] = {}  # GET /v1/recon/channels, by id
        self.bank_ids: dict[str, str] = {}  # a statement's id -> the bank's (STMT-…)
        self.resolving: dict[str, Any] | None = None
        self.busy = False

    # --- layout ------------------------------------------------------------------------------

    async def build(self) -> None:
        t = self.page.t
        with ui.row().classes("w-full items-center gap-3 px-4 pt-3"):
            testid(ui.label(t("recon.title")).classes("text-2xl font-semibold"), "page-title")
            ui.space()
            testid(ui.button(t("recon.refresh"), on_click=self.refresh)
                   .props("outline no-caps"), "recon-refresh")
        testid(ui.label(t("recon.intro")).classes("px-4 text-sm opacity-80"), "recon-intro")
        if not self.may_write:
            testid(ui.label(t("recon.read_only", roles=self.page.roles_text()))
                   .classes("px-4 text-sm text-warning"), "recon-read-only")
        self.picker = testid(ui.row().classes("w-full gap-2 px-4 pt-3"), "recon-channels")
        self.view = testid(ui.column().classes("w-full gap-3 p-4"), "recon-view")
        self._resolve_dialog()
        self._statement_dialog()
        if self.channel is not None:
            await self.show_channel(self.channel)  # the picker too
            return
        await self.refresh_channels()
        with self.view:
            testid(ui.label(t("recon.pick")).classes("opacity-70"), "recon-pick")

    async def refresh_channels(self) -> None:
        page, t = self.page, self.page.t
        found = await page.call(page.client.recon_channels(pool=self.pool.id))
        if found is None:
            return
        self.channel_docs = {str(doc.get("channel")): doc for doc in found}
        self.picker.clear()
        with self.picker:
            for channel in self.channels:
                doc = self.channel_docs.get(channel) or {}
                counts = counts_of(doc.get("counts"))
                latest = doc.get("latest")
                chosen = channel == self.channel
                button = ui.button(on_click=lambda c=channel: self.pick(c)) \
                    .props(f"no-caps {'unelevated color=primary' if chosen else 'outline'}")
                testid(button, f"recon-channel-{channel}").props(
                    f'data-selected="{str(chosen).lower()}" data-open="{counts.open}"')
                with button, ui.column().classes("gap-0 items-start"):
                    ui.label(self.names[channel]).classes("font-medium")
                    said = t("recon.channel_open", count=counts.open) if counts.open else \
                        t("recon.channel_clear")
                    if latest is not None:
                        said += " · " + (t("recon.reconciled") if latest.get("reconciled")
                                         else t("recon.not_reconciled"))
                    ui.label(f"{channel} · {said}").classes("text-xs opacity-80")

    def pick(self, channel: str) -> None:
        """The channel is in the address (`?channel=`): a bookmark, or a language switch,
        opens it again."""
        if channel != self.channel:
            ui.navigate.to(self.page.here(channel=channel))

    async def show_channel(self, channel: str) -> None:
        """Open `channel`: its parts drawn once, their contents read now (and again after each
        action)."""
        t = self.page.t
        self.channel = channel
        self.view.clear()
        with self.view:
            with ui.row().classes("w-full items-center gap-3"):
                testid(ui.label(t("recon.channel_title", name=self.names[channel],
                                  channel=channel)).classes("text-xl font-medium"),
                       "recon-channel-title").props(f'data-channel="{channel}"')
                ui.space()
                self.match_result = testid(ui.label("").classes("text-sm"), "recon-match-result")
                if self.may_write:
                    testid(ui.button(t("recon.match"), on_click=self.match_again)
                           .props("outline no-caps"), "recon-match")
            with ui.row().classes("w-full gap-3 items-stretch"):
                self.counts_box = testid(ui.row().classes("gap-3 items-stretch"),
                                         "recon-counts")
                with testid(ui.card().classes("px-4 py-2"), "recon-ages-card"):
                    ui.label(t("recon.ages")).classes("text-xs opacity-70")
                    self.ages_box = testid(ui.row().classes("gap-4 no-wrap"), "recon-ages")
            if self.may_write:
                with testid(ui.card().classes("w-full"), "recon-import"):
                    await self._import_card()
            with testid(ui.card().classes("w-full"), "recon-balances-card"):
                ui.label(t("recon.balances")).classes("font-medium")
                self.balances_box = testid(ui.column().classes("w-full gap-0"), "recon-balances")
            with testid(ui.card().classes("w-full"), "recon-open"):
                ui.label(t("recon.open")).classes("font-medium")
                with ui.element("div").classes("w-full grid gap-4 grid-cols-1 lg:grid-cols-2"):
                    with ui.column().classes("gap-1"):
                        ui.label(t("recon.side_statement")).classes("text-sm font-medium")
                        self.statement_box = testid(ui.column().classes("w-full gap-2"),
                                                    "recon-open-statement")
                    with ui.column().classes("gap-1"):
                        ui.label(t("recon.side_books")).classes("text-sm font-medium")
                        self.books_box = testid(ui.column().classes("w-full gap-2"),
                                                "recon-open-books")
            with testid(ui.card().classes("w-full"), "recon-expected-card"):
                ui.label(t("recon.expected")).classes("font-medium")
                if self.may_write:
                    self._expected_form()
                self.expected_box = testid(ui.column().classes("w-full gap-0"),
                                           "recon-expected")
            with testid(ui.card().classes("w-full"), "recon-resolutions-card"):
                ui.label(t("recon.resolutions")).classes("font-medium")
                self.resolutions_box = testid(ui.column().classes("w-full gap-0"),
                                              "recon-resolutions")
        await self.refresh()

    async def refresh(self) -> None:
        """Read the channel again: the picker, its counts, balances, open items, expected
        payments and resolutions."""
        await self.refresh_channels()
        channel = self.channel
        if channel is None:
            return
        page = self.page
        client, pool = page.client, self.pool.id
        statements = await page.call(client.recon_statements(
            channel, pool=pool, limit=STATEMENTS_SHOWN_MAX))
        rows = await page.call(client.recon_breaks(
            channel, states=list(OPEN_STATES), pool=pool, limit=OPEN_ROWS_MAX))
        expected = await page.call(client.recon_expected(
            channel, pool=pool, limit=EXPECTED_SHOWN_MAX))
        resolutions = await page.call(client.recon_resolutions(
            channel, pool=pool, limit=RESOLUTIONS_SHOWN_MAX))
        self._counts(self.channel_docs.get(channel) or {})
        if statements is not None:
            views = [balance_view(doc) for doc in statements]
            self.bank_ids = {view.id: view.statement_id for view in views}
            self._balances(views)
        if rows is not None:
            self._open(rows)
            self._ages(rows)
        if expected is not None:
            self._expected(expected)
        if resolutions is not None:
            self._resolutions(resolutions)

    # --- counts and tolerance ----------------------------------------------------------------

    def _counts(self, doc: dict[str, Any]) -> None:
        t = self.page.t
        counts = counts_of(doc.get("counts"))
        lines = counts_of(doc.get("counts"), "statement")
        items = counts_of(doc.get("counts"), "books")
        self.counts_box.clear()
        with self.counts_box:
            for name, key, tone in (("matched", "recon.count_matched", "done"),
                                    ("ambiguous", "recon.count_ambiguous", "attention"),
                                    ("breaks", "recon.count_breaks", "bad"),
                                    ("resolved", "recon.count_resolved", "done")):
                value = getattr(counts, name)
                on_lines, on_items = getattr(lines, name), getattr(items, name)
                with testid(ui.card().classes("px-4 py-2"), f"recon-count-{name}").props(
                        f'data-count="{value}" data-statement="{on_lines}" '
                        f'data-books="{on_items}"'):
                    ui.label(t(key)).classes("text-xs opacity-70")
                    ui.label(f"{value:,}").classes(
                        f"text-xl fp-card-value {'fp-tone-' + tone if value else ''}")
                    ui.label(t("recon.count_sides", lines=f"{on_lines:,}",
                               items=f"{on_items:,}")).classes("text-xs opacity-70")
            tolerance = doc.get("tolerance") or {}
            with testid(ui.card().classes("px-4 py-2"), "recon-tolerance"):
                ui.label(t("recon.tolerance")).classes("text-xs opacity-70")
                ui.label(self._tolerance_text(tolerance)).classes("text-sm")

    def _tolerance_text(self, tolerance: dict[str, Any]) -> str:
        t = self.page.t
        minor = int(tolerance.get("amount_minor") or 0)
        days = int(tolerance.get("days") or 0)
        assets = self.assets.get(self.channel or "", [])
        # The API gives the amount in minor units of the channel's asset: said as an amount
        # where the channel carries one asset.
        amount = f"{self.page.amount(minor, assets[0])} {assets[0]}" if len(assets) == 1 \
            else t("recon.minor_units", count=f"{minor:,}")
        return t("recon.tolerance_text", amount=amount, days=days)

    # --- balances ----------------------------------------------------------------------------

    def _balances(self, views: list[BalanceView]) -> None:
        t = self.page.t
        self.balances_box.clear()
        with self.balances_box:
            if not views:
                testid(ui.label(t("recon.no_statements")).classes("opacity-70 text-sm"),
                       "recon-no-statements")
                return
            with ui.row().classes("w-full gap-2 text-xs font-medium opacity-70 py-1 no-wrap"):
                for key, width in (("recon.col_statement", "w-48"), ("recon.col_period", "w-52"),
                                   ("recon.col_opening", "w-56"), ("recon.col_closing", "w-64"),
                                   ("recon.col_open_lines", "w-24"),
                                   ("recon.col_balance", "flex-1")):
                    ui.label(t(key)).classes(width)
            for view in views:
                self._balance_row(view)

    def _balance_row(self, view: BalanceView) -> None:
        t = self.page.t
        row = ui.row().classes("w-full gap-2 text-sm py-1 border-b items-start no-wrap")
        with testid(row, f"statement-row-{view.id}").props(
                f'data-statement="{view.statement_id}"'):
            with ui.column().classes("w-48 gap-0"):
                testid(ui.button(view.statement_id,
                                 on_click=lambda v=view: self.open_statement(v.id))
                       .props("flat dense no-caps color=primary").classes("fp-wrap"),
                       f"statement-open-{view.id}")
                ui.label(view.account).classes("text-xs opacity-70 fp-mono fp-wrap")
            ui.label(view.period).classes("w-52")
            with ui.column().classes("w-56 gap-0"):
                ui.label(t("recon.bank_vs_ledger", bank=view.opening, ledger=view.ledger_opening,
                           asset=view.asset)).classes("fp-card-value")
                self._difference(view.opening_difference, view.asset, f"opening-diff-{view.id}")
            with ui.column().classes("w-64 gap-0"):
                ui.label(t("recon.bank_vs_ledger", bank=view.closing, ledger=view.ledger_closing,
                           asset=view.asset)).classes("fp-card-value")
                if view.booked_after != "—" and not is_zero(view.booked_after):
                    ui.label(t("recon.booked_after", amount=view.booked_after,
                               asset=view.asset)).classes("text-xs opacity-70")
                self._difference(view.closing_difference, view.asset, f"closing-diff-{view.id}")
            testid(ui.label(t("recon.open_lines", count=view.open_lines, lines=view.lines))
                   .classes("w-24"), f"open-lines-{view.id}")
            with ui.row().classes("flex-1"):
                testid(ui.badge(t("recon.reconciled") if view.reconciled
                                else t("recon.not_reconciled"),
                                color="positive" if view.reconciled else "negative"),
                       f"balance-{view.id}").props(
                    f'data-reconciled="{str(view.reconciled).lower()}"')

    def _difference(self, difference: str, asset: str, name: str) -> None:
        t = self.page.t
        if difference == "—":
            said, tone = t("recon.no_balance"), "fp-tone-muted"
        elif is_zero(difference):
            said, tone = t("recon.difference_none"), "fp-tone-done"
        else:
            said, tone = t("recon.difference", amount=difference, asset=asset), "fp-tone-bad"
        testid(ui.label(said).classes(f"text-xs {tone}"), name).props(
            f'data-difference="{difference}"')

    # --- a statement's lines -------------------------------------------------------------------

    def _statement_dialog(self) -> None:
        t = self.page.t
        with ui.dialog() as self.statement_dialog, ui.card().classes("w-[1100px] max-w-full"):
            self.lines_box = testid(ui.column().classes("w-full gap-1"), "statement-lines")
            testid(ui.button(t("recon.close"), on_click=self.statement_dialog.close)
                   .props("flat no-caps"), "statement-close")

    async def open_statement(self, statement_id: str) -> None:
        page, t = self.page, self.page.t
        found = await page.call(page.client.recon_statement(statement_id, pool=self.pool.id))
        if found is None:
            return
        view = balance_view(found)
        self.lines_box.clear()
        with self.lines_box:
            testid(ui.label(t("recon.statement_title", statement=view.statement_id,
                              account=view.account)).classes("text-lg font-medium"),
                   "statement-title")
            with ui.row().classes("items-center gap-3 text-sm"):
                ui.label(view.period)
                ui.label(t("recon.opening_closing", opening=view.opening, closing=view.closing,
                           asset=view.asset))
                ui.badge(t("recon.reconciled") if view.reconciled
                         else t("recon.not_reconciled"),
                         color="positive" if view.reconciled else "negative")
            with ui.row().classes("w-full gap-2 text-xs font-medium opacity-70 py-1 no-wrap"):
                for key, width in (("recon.col_position", "w-10"), ("recon.col_date", "w-28"),
                                   ("recon.col_amount", "w-36"), ("recon.col_kind", "w-28"),
                                   ("recon.col_references", "flex-1"),
                                   ("recon.col_state", "w-64")):
                    ui.label(t(key)).classes(width)
            for line in found.get("lines") or []:
                self._statement_line(line)
        self.statement_dialog.open()

    def _statement_line(self, line: dict[str, Any]) -> None:
        page, t = self.page, self.page.t
        state = line.get("state") or {}
        name = str(state.get("state") or "unmatched")
        row = ui.row().classes("w-full gap-2 text-sm py-1 border-b items-start no-wrap")
        with testid(row, f"statement-line-{line.get('position')}").props(
                f'data-state="{name}" data-line="{line.get("id", "")}"'):
            ui.label(str(line.get("position") or "")).classes("w-10")
            ui.label(when_text(line.get("value_at"))).classes("w-28")
            ui.label(f"{line.get('amount')} {line.get('asset')}").classes("w-36 fp-card-value")
            kind = line_kind_text({"line": line}, page.locale) or "—"
            if line.get("status") == "pending":
                kind += " · " + t("recon.pending")
            ui.label(kind).classes("w-28")
            refs = references({"side": "statement", "line": line}, page.locale)
            ui.label(" · ".join(refs) or "—").classes("flex-1 text-xs fp-mono fp-wrap")
            with ui.column().classes("w-64 gap-0"):
                if state:
                    self._state_badge(name)
                    if state.get("reason") and name == "break":
                        ui.label(reason_text(state.get("reason"), page.locale)) \
                            .classes("text-xs")
                    if state.get("match_id"):
                        ui.label(t("recon.match_id", id=state["match_id"])) \
                            .classes("text-xs opacity-70 fp-mono fp-wrap")
                else:
                    ui.badge(t("recon.not_run"), color="grey")

    def _state_badge(self, state: str) -> ui.badge:
        colour = {"done": "positive", "bad": "negative", "attention": "warning"}.get(
            STATE_TONES.get(state, ""), "grey")
        return ui.badge(state_text(state, self.page.locale), color=colour)

    # --- open items ----------------------------------------------------------------------------

    def _open(self, rows: list[dict[str, Any]]) -> None:
        t = self.page.t
        statement, books = split_sides(rows)
        by_id = {str(row.get("id")): row for row in rows}
        for box, side_rows, side in ((self.statement_box, statement, "statement"),
                                     (self.books_box, books, "books")):
            box.clear()
            box.props(f'data-count="{len(side_rows)}"')
            with box:
                if not side_rows:
                    testid(ui.label(t("recon.nothing_open")).classes("opacity-70 text-sm"),
                           f"recon-open-{side}-none")
                for row in side_rows:
                    self._open_row(row, by_id)

    def _open_row(self, row: dict[str, Any], by_id: dict[str, dict[str, Any]]) -> None:
        page, t = self.page, self.page.t
        state = str(row.get("state") or "")
        tone = "fp-breached" if state == "break" else ""
        card = testid(ui.card().classes(f"w-full px-3 py-2 {tone}"), f"open-row-{row['id']}")
        card.props(f'data-side="{row.get("side")}" data-state="{state}" '
                   f'data-reason="{row.get("reason") or ""}" data-amount="{row.get("amount")}"')
        with card:
            with ui.row().classes("w-full items-center gap-3 no-wrap"):
                testid(ui.label(f"{row.get('amount')} {row.get('asset')}")
                       .classes("font-medium fp-card-value"), "open-amount")
                ui.label(when_text(row.get("at"))).classes("text-sm")
                testid(ui.label(t("recon.age_days", days=int(row.get("age_days") or 0)))
                       .classes("text-sm opacity-70"), "open-age")
                self._state_badge(state)
                ui.space()
                if self.may_write:
                    testid(ui.button(t("recon.resolve"),
                                     on_click=lambda r=row: self.open_resolve(r))
                           .props("dense outline no-caps"), f"resolve-{row['id']}")
            said = []
            if state == "break":
                said.append(reason_text(row.get("reason"), page.locale))
            kind = line_kind_text(row, page.locale)
            if kind is not None:
                said.append(kind)
            if said:
                testid(ui.label(" · ".join(said)).classes("text-sm"), "open-reason")
            refs = references(row, page.locale)
            if refs:
                testid(ui.label(" · ".join(refs)).classes("text-xs fp-mono fp-wrap"),
                       "open-references")
            if row.get("payment_id") and page.signed.may(P.PAYMENTS_READ):
                testid(page_link(t("recon.open_payment"), "/stream",
                                 {"payment": str(row["payment_id"])}).classes("text-xs"),
                       "open-payment")
            others = candidates_of(row)
            if others:
                key = "recon.candidates" if state == "ambiguous" else "recon.related"
                shown = []
                for other in others:
                    found = by_id.get(other)
                    shown.append(other if found is None
                                 else f"{other} ({found.get('amount')} {found.get('asset')})")
                testid(ui.label(t(key, ids=", ".join(shown)))
                       .classes("text-xs fp-mono fp-wrap opacity-80"), "open-candidates") \
                    .props(f'data-count="{len(others)}"')

    def _ages(self, rows: list[dict[str, Any]]) -> None:
        t = self.page.t
        counted = breaks_by_age(rows)
        self.ages_box.clear()
        with self.ages_box:
            for bucket, _, _ in AGE_BUCKETS:
                count = counted[bucket]
                with testid(ui.column().classes("gap-0"), f"recon-age-{bucket}") \
                        .props(f'data-count="{count}"'):
                    ui.label(f"{count:,}").classes(
                        "text-xl fp-card-value" + (" fp-tone-bad" if count and bucket != "0_1"
                                                   else ""))
                    ui.label(t(AGE_KEYS[bucket])).classes("text-xs opacity-70")

    # --- resolving -----------------------------------------------------------------------------

    def _resolve_dialog(self) -> None:
        t = self.page.t
        with ui.dialog() as self.resolve_dialog, \
                testid(ui.card().classes("w-[640px] max-w-full"), "resolve-dialog"):
            self.resolve_title = testid(ui.label("").classes("text-lg font-medium"),
                                        "resolve-title")
            self.resolve_what = testid(ui.label("").classes("text-sm fp-wrap"), "resolve-what")
            self.resolve_note = testid(ui.textarea(t("recon.note"),
                                                   placeholder=t("recon.note_hint"))
                                       .props("outlined autogrow maxlength=500")
                                       .classes("w-full"), "resolve-note")
            self.resolve_book = testid(ui.checkbox(t("recon.book")), "resolve-book")
            self.resolve_book_hint = testid(ui.label(t("recon.book_hint"))
                                            .classes("text-xs opacity-70"), "resolve-book-hint")
            self.resolve_error = testid(ui.label("").classes("text-negative fp-wrap"),
                                        "resolve-error")
            with ui.row().classes("w-full justify-end gap-2"):
                testid(ui.button(t("recon.cancel"), on_click=self.resolve_dialog.close)
                       .props("flat no-caps"), "resolve-cancel")
                self.resolve_confirm = testid(ui.button(t("recon.resolve_confirm"),
                                                        on_click=self.resolve)
                                              .props("unelevated no-caps color=primary"),
                                              "resolve-confirm")

    def open_resolve(self, row: dict[str, Any]) -> None:
        page, t = self.page, self.page.t
        self.resolving = row
        side = "recon.side_statement" if row.get("side") == "statement" else "recon.side_books"
        self.resolve_title.set_text(t("recon.resolve_title", side=t(side)))
        refs = references(row, page.locale)
        self.resolve_what.set_text(" · ".join([
            f"{row.get('amount')} {row.get('asset')}", when_text(row.get("at")),
            state_text(str(row.get("state") or ""), page.locale),
            *([reason_text(row.get("reason"), page.locale)] if row.get("reason") else []),
            *refs]))
        self.resolve_note.set_value("")
        offer = may_book(row, may_adjust=self.may_adjust)
        self.resolve_book.set_value(False)
        self.resolve_book.set_visibility(offer)
        self.resolve_book_hint.set_visibility(offer)
        self.resolve_error.set_text("")
        self.resolve_error.set_visibility(False)
        self.resolve_dialog.open()

    async def resolve(self) -> None:
        page, t = self.page, self.page.t
        row = self.resolving
        if row is None or self.busy:
            return
        note = str(self.resolve_note.value or "").strip()
        if not note:  # said before any call: the API would refuse it all the same
            self._resolve_refused(t("recon.note_required"))
            return
        book = bool(self.resolve_book.value) and may_book(row, may_adjust=self.may_adjust)
        self.busy = True
        self.resolve_confirm.disable()
        try:
            done = await page.client.recon_resolve(
                "statement" if row.get("side") == "statement" else "books", str(row["id"]),
                note, book=book, pool=self.pool.id)
        except ApiError as error:
            if isinstance(error, Unauthorized) or (isinstance(error, PermissionDenied)
                                                   and error.code == "forbidden"):
                page.report(error)
            else:
                self._resolve_refused(page.problem(error), error.code)
            return
        finally:
            self.busy = False
            self.resolve_confirm.enable()
        self.resolving = None
        self.resolve_dialog.close()
        said = t("recon.booked", amount=done.get("amount"), asset=done.get("asset")) \
            if done.get("action") == "booked" else t("recon.resolved")
        ui.notify(said, type="positive")
        await self.refresh()

    def _resolve_refused(self, text: str, code: str = "") -> None:
        self.resolve_error.set_text(text)
        self.resolve_error.props(f'data-code="{code}"')
        self.resolve_error.set_visibility(True)

    # --- matching again ------------------------------------------------------------------------

    async def match_again(self) -> None:
        page, t = self.page, self.page.t
        if self.channel is None or self.busy:
            return
        self.busy = True
        try:
            run = await page.call(page.client.recon_match(self.channel, pool=self.pool.id))
        finally:
            self.busy = False
        if run is None:
            return
        self.match_result.set_text(t("recon.match_done", matched=run.get("matched_lines", 0),
                                     ambiguous=run.get("ambiguous", 0),
                                     breaks=run.get("breaks", 0)))
        await self.refresh()

    # --- import ----------------------------------------------------------------------------------

    async def _import_card(self) -> None:
        page, t = self.page, self.page.t
        ui.label(t("recon.import")).classes("font-medium")
        ui.label(t("recon.import_help", size=f"{self.upload_bytes_max / (1024 * 1024):g} MiB")) \
            .classes("text-sm opacity-70")
        mappings = await page.call(page.client.recon_mappings(pool=self.pool.id), quiet=True)
        with ui.row().classes("w-full items-end gap-3"):
            self.format = testid(ui.select(
                {AUTO_FORMAT: t("recon.format_auto"), **{f: f for f in FORMATS}},
                value=AUTO_FORMAT, label=t("recon.format")).classes("w-48"), "recon-format")
            names = [str(m.get("name")) for m in mappings or []]
            self.mapping = testid(ui.select(
                {NO_MAPPING: t("recon.mapping_none"), **{n: n for n in names}},
                value=NO_MAPPING, label=t("recon.mapping")).classes("w-48"), "recon-mapping")
            self.upload = testid(ui.upload(label=t("recon.upload"), auto_upload=True,
                                           max_file_size=self.upload_bytes_max,
                                           on_upload=self._uploaded,
                                           on_rejected=self._too_large)
                                 .props('flat bordered accept=".xml,.txt,.sta,.940,.csv,.json"')
                                 .classes("w-96").style("max-height: 7rem"), "recon-upload")
        self.import_result = testid(ui.column().classes("w-full gap-0"), "recon-import-result")

    def _too_large(self) -> None:
        t = self.page.t
        self.import_result.clear()
        with self.import_result:
            testid(ui.label(t("recon.too_large",
                              size=f"{self.upload_bytes_max / (1024 * 1024):g} MiB"))
                   .classes("text-negative"), "recon-import-error")

    async def _uploaded(self, event: events.UploadEventArguments) -> None:
        page, t = self.page, self.page.t
        channel = self.channel
        self.upload.reset()
        if channel is None:
            return
        data = await event.file.read()
        name = event.file.name or "statement"
        chosen = str(self.format.value or AUTO_FORMAT)
        mapping = str(self.mapping.value or NO_MAPPING)
        self.import_result.clear()
        with self.import_result:
            testid(ui.label(t("recon.importing", name=name)).classes("opacity-70"),
                   "recon-importing")
        try:
            doc = await page.client.recon_import(
                data, channel, name, pool=self.pool.id,
                format=None if chosen == AUTO_FORMAT else chosen,  # type: ignore[arg-type]
                mapping=mapping or None)
        except ApiError as error:
            self.import_result.clear()
            if isinstance(error, Unauthorized) or error.status is None or error.status >= 500 \
                    or (isinstance(error, PermissionDenied) and error.code == "forbidden"):
                page.report(error)
                return
            with self.import_result:
                testid(ui.label(t("recon.import_refused", name=name, reason=page.problem(error)))
                       .classes("text-negative fp-wrap"), "recon-import-error") \
                    .props(f'data-code="{error.code}"')
                if error.detail and error.detail != error.title:
                    # The parser's own words about the place (English: what the file says).
                    testid(ui.label(str(error.detail)).classes("text-xs opacity-70 fp-wrap"),
                           "recon-import-detail")
            return
        summary = import_summary(doc)
        self.import_result.clear()
        with self.import_result:
            testid(ui.label(t("recon.imported", name=summary.name, message=summary.message,
                              statements=summary.statements, lines=summary.lines))
                   .classes("text-positive"), "recon-import-done")
            testid(ui.label(t("recon.import_run", matched=summary.matched,
                              ambiguous=summary.ambiguous, breaks=summary.breaks))
                   .classes("text-sm"), "recon-import-run").props(
                f'data-matched="{summary.matched}" data-ambiguous="{summary.ambiguous}" '
                f'data-breaks="{summary.breaks}"')
        await self.refresh()

    # --- expected payments ---------------------------------------------------------------------

    def _expected_form(self) -> None:
        t = self.page.t
        channel = self.channel or self.channels[0]
        today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        self.expect_submission = Submission()
        with testid(ui.row().classes("w-full items-end gap-2"), "recon-expect-form"):
            assets = self.assets.get(channel, [])
            self.expect_fields: dict[str, Any] = {
                "asset": ui.select(assets, value=assets[0] if assets else None,
                                   label=t("recon.asset")).classes("w-28"),
                "amount_min": ui.input(t("recon.amount_min"), placeholder="100.00")
                .classes("w-32"),
                "amount_max": ui.input(t("recon.amount_max"), placeholder="100.00")
                .classes("w-32"),
                "from": ui.input(t("recon.from"), value=instant_input(today)).classes("w-48"),
                "until": ui.input(t("recon.until"), value=instant_input(
                    today + timedelta(days=EXPECTED_DAYS_DEFAULT))).classes("w-48"),
                "reference": ui.input(t("recon.reference")).classes("w-40"),
                "counterparty": ui.input(t("recon.counterparty")).classes("w-40"),
            }
            for name, field in self.expect_fields.items():
                testid(field.props("dense outlined"), f"recon-expected-{name}")
                field.on_value_change(lambda _: self.expect_submission.changed())
            testid(ui.button(t("recon.expect"), on_click=self.expect)
                   .props("unelevated no-caps color=primary"), "recon-expect")
        self.expect_error = testid(ui.label("").classes("text-negative fp-wrap"),
                                   "recon-expect-error")
        self.expect_error.set_visibility(False)

    async def expect(self) -> None:
        page, t = self.page, self.page.t
        submission = self.expect_submission
        if self.channel is None or submission.busy:
            return
        values = {name: (str(field.value).strip() if field.value is not None else None)
                  for name, field in self.expect_fields.items()}
        missing = missing_fields(values, EXPECTED_REQUIRED)
        if missing:
            self.expect_error.set_text(t("recon.expect_missing"))
            self.expect_error.set_visibility(True)
            return
        submission.busy = True
        error: ApiError | None = None
        try:
            await page.client.recon_expect(
                self.channel, str(values["asset"]), str(values["amount_min"]),
                str(values["amount_max"]), str(values["from"]), str(values["until"]),
                reference=values["reference"] or None,
                counterparty=values["counterparty"] or None, pool=self.pool.id,
                idempotency_key=submission.key)
        except ApiError as failed:
            error = failed
        finally:
            submission.busy = False
            submission.answered(error)
        if error is not None:
            if isinstance(error, Unauthorized) or (isinstance(error, PermissionDenied)
                                                   and error.code == "forbidden"):
                page.report(error)
                return
            self.expect_error.set_text(page.problem(error))
            self.expect_error.set_visibility(True)
            return
        self.expect_error.set_visibility(False)
        for name in ("amount_min", "amount_max", "reference", "counterparty"):
            self.expect_fields[name].set_value("")
        ui.notify(t("recon.expect_done"), type="positive")
        await self.refresh()

    def _expected(self, found: list[dict[str, Any]]) -> None:
        t = self.page.t
        self.expected_box.clear()
        self.expected_box.props(f'data-count="{len(found)}"')
        with self.expected_box:
            if not found:
                testid(ui.label(t("recon.expected_none")).classes("opacity-70 text-sm"),
                       "recon-expected-none")
                return
            with ui.row().classes("w-full gap-2 text-xs font-medium opacity-70 py-1 no-wrap"):
                for key, width in (("recon.col_state", "w-24"), ("recon.col_amount", "w-52"),
                                   ("recon.col_window", "w-72"),
                                   ("recon.col_references", "flex-1"),
                                   ("recon.col_by", "w-32"), ("recon.col_action", "w-24")):
                    ui.label(t(key)).classes(width)
            for expected in found:
                self._expected_row(expected)

    def _expected_row(self, expected: dict[str, Any]) -> None:
        t = self.page.t
        state = str(expected.get("state") or "")
        row = ui.row().classes("w-full gap-2 text-sm py-1 border-b items-center no-wrap")
        with testid(row, f"expected-{expected.get('id')}").props(f'data-state="{state}"'):
            with ui.row().classes("w-24"):
                ui.badge(t({"open": "recon.expected_open", "matched": "recon.expected_matched",
                            "cancelled": "recon.expected_cancelled"}.get(
                               state, "recon.expected_open")),
                         color={"open": "warning", "matched": "positive"}.get(state, "grey"))
            low, high, asset = expected.get("amount_min"), expected.get("amount_max"), \
                expected.get("asset")
            ui.label(f"{low} {asset}" if low == high else f"{low} – {high} {asset}") \
                .classes("w-52 fp-card-value")
            ui.label(f"{when_text(expected.get('from'))} – {when_text(expected.get('until'))}") \
                .classes("w-72")
            refs = [str(v) for v in (expected.get("reference"), expected.get("counterparty"))
                    if v]
            if expected.get("credit_id"):
                refs.append(t("recon.expected_credit", id=expected["credit_id"]))
            ui.label(" · ".join(refs) or "—").classes("flex-1 text-xs fp-mono fp-wrap")
            by = expected.get("created_by") or {}
            ui.label(str(by.get("name") or by.get("id") or "—")).classes("w-32")
            with ui.row().classes("w-24"):
                if state == "open" and self.may_write:
                    testid(ui.button(t("recon.expected_cancel"),
                                     on_click=lambda e=expected: self.cancel_expected(
                                         str(e["id"])))
                           .props("flat dense no-caps color=negative"),
                           f"expected-cancel-{expected.get('id')}")

    async def cancel_expected(self, expected_id: str) -> None:
        page = self.page
        done = await page.call(page.client.recon_cancel_expected(expected_id,
                                                                 pool=self.pool.id))
        if done is not None:
            await self.refresh()

    # --- resolutions -----------------------------------------------------------------------------

    def _resolutions(self, found: list[dict[str, Any]]) -> None:
        t = self.page.t
        self.resolutions_box.clear()
        with self.resolutions_box:
            if not found:
                testid(ui.label(t("recon.resolutions_none")).classes("opacity-70 text-sm"),
                       "recon-resolutions-none")
                return
            for resolution in found:
                actor = resolution.get("actor") or {}
                booked = resolution.get("action") == "booked"
                said = t("recon.resolution_booked" if booked else "recon.resolution_note",
                         at=when_text(resolution.get("at")),
                         who=str(actor.get("name") or actor.get("id") or "?"),
                         amount=resolution.get("amount"), asset=resolution.get("asset"),
                         target=target_text(str(resolution.get("target") or ""),
                                            self.bank_ids, self.page.locale),
                         note=resolution.get("note"))
                testid(ui.label(said).classes("text-sm fp-wrap py-1 border-b"),
                       f"resolution-{resolution.get('id')}").props(
                    f'data-action="{resolution.get("action")}"')


# --- a payment's reconciliation state, on its detail (pages/stream.py) ----------------------


def show_payment_reconciliation(page: Page, doc: dict[str, Any]) -> None:
    """`GET /v1/recon/payments/{id}`: the payment's state (unreconciled, matched, break,
    ambiguous, resolved) and each of its book items with where it stands and why."""
    t = page.t
    state = str(doc.get("state") or "unreconciled")
    with testid(ui.column().classes("w-full gap-1"), "detail-recon").props(
            f'data-state="{state}"'):
        with ui.row().classes("items-center gap-2"):
            colour = {"done": "positive", "bad": "negative", "attention": "warning"}.get(
                STATE_TONES.get(state, ""), "grey")
            testid(ui.badge(state_text(state, page.locale), color=colour), "detail-recon-state")
            if state == "unreconciled":
                ui.label(t("recon.payment_unreconciled")).classes("text-sm opacity-70")
        for item in doc.get("items") or []:
            said = [f"{item.get('amount')} {item.get('asset')}",
                    *references({**item, "side": "books"}, page.locale)[:1],
                    state_text(str(item.get("state") or ""), page.locale)]
            if item.get("state") == "break":
                said.append(reason_text(item.get("reason"), page.locale))
            elif item.get("match_id"):
                said.append(t("recon.match_id", id=item["match_id"]))
            testid(ui.label(" · ".join(said)).classes("text-sm fp-wrap"),
                   "detail-recon-item").props(f'data-state="{item.get("state")}"')
        if doc.get("items"):
            testid(page_link(t("recon.open_workbench"), RECON_PATH,
                             {"channel": str(doc["items"][0].get("channel") or "")})
                   .classes("text-xs"), "detail-recon-open")


@console_page(RECON_PATH, needs=P.RECON_READ, title="nav.recon")
async def recon_page(page: Page) -> None:
    await Workbench(page).build()
