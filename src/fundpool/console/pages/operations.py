"""The operations panel (操作面板): where cashiers act.

- Batch payment from a CSV file: the file is checked by the API first (a dry run: every row's
  errors with their stable codes, nothing created), shown row by row; then the valid rows are
  submitted and a progress bar follows them until every payout is final. A file the API
  refuses whole (not CSV, too large, odd encoding, NUL bytes) or a hostile cell (formula
  injection) is said on screen, and nothing is created.
- A single payout and an internal transfer between the pool's channels.
- Reconciliation export of a period's payments, as CSV or XLSX.

Each part shows only with the permission its API route needs; the API checks it again.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from nicegui import events, ui

from fundpool.auth.roles import P
from fundpool.client.errors import ApiError
from fundpool.console.feed import STATE_TONES
from fundpool.console.format import instant_input
from fundpool.console.forms import Submission
from fundpool.console.preview import COLUMNS, cells_by_line, shown_cell
from fundpool.console.shell import Page, console_page, testid
from fundpool.payments.csv_batch import PAYOUT_CSV_BYTES_MAX, PAYOUT_CSV_ROWS_MAX

PROGRESS_REFRESH_S = 1.0
PREVIEW_ROWS_MAX = 1_000  # rows listed in the preview; the counts cover the whole file
FIELD_CLASSES = "w-full max-w-md"  # a form's fields: wide enough for their labels


class Operations:
    def __init__(self, page: Page) -> None:
        self.page = page
        self.pool = page.console.api.pool(page.request.query_params.get("pool"))
        config = page.console.api.config
        self.channels = list(self.pool.channels)
        self.assets = sorted({a for c in self.channels for a in config.channel(c).assets})
        self.file: bytes | None = None
        self.batch_id: str | None = None
        self.progress_timer: ui.timer | None = None

    def build(self) -> None:
        page, t = self.page, self.page.t
        testid(ui.label(t("nav.operations")).classes("text-2xl font-semibold px-4 pt-3"),
               "page-title")
        may_create = page.signed.may(P.PAYMENTS_CREATE)
        with ui.element("div").classes("w-full grid gap-3 p-4 grid-cols-1 xl:grid-cols-2"):
            if may_create:
                with testid(ui.card().classes("xl:col-span-2"), "batch"):
                    self._batch()
                with testid(ui.card(), "payout"):
                    self._payout()
                with testid(ui.card(), "internal"):
                    self._internal()
            else:
                testid(ui.label(t("ops.not_allowed", roles=page.roles_text(),
                                  what=t("ops.what_create"))).classes("text-warning"),
                       "not-allowed")
            with testid(ui.card(), "export"):
                self._export()

    # --- batch payment ----------------------------------------------------------------------

    def _batch(self) -> None:
        t = self.page.t
        ui.label(t("ops.batch")).classes("text-lg font-medium")
        ui.label(t("ops.batch_help", size=f"{PAYOUT_CSV_BYTES_MAX // (1024 * 1024)} MiB",
                   rows=f"{PAYOUT_CSV_ROWS_MAX:,}")).classes("text-sm opacity-70")
        self.upload = testid(ui.upload(label=t("ops.upload"), auto_upload=True,
                                       max_file_size=PAYOUT_CSV_BYTES_MAX,
                                       on_upload=self._uploaded, on_rejected=self._rejected)
                             .props('accept=".csv,text/csv" flat bordered').classes("w-96"),
                             "upload")
        self.batch_message = testid(ui.label("").classes("text-negative"), "batch-message")
        self.preview_summary = testid(ui.label(""), "preview-summary")
        self.preview = testid(ui.table(columns=[
            {"name": "line", "label": t("ops.row"), "field": "line", "align": "right"},
            {"name": "status", "label": "", "field": "status", "align": "left"},
            *({"name": name, "label": t(f"csv.{name}"), "field": name,
               "align": "right" if name == "amount" else "left",
               "classes": "fp-wrap", "headerClasses": "fp-nowrap"} for name in COLUMNS),
            {"name": "errors", "label": t("ops.errors"), "field": "errors", "align": "left",
             "classes": "fp-wrap"},
        ], rows=[], row_key="line").props("dense flat wrap-cells").classes("w-full"),
            "preview")
        self.preview.add_slot("body-cell-status", """
            <q-td :props="props"><q-badge :color="props.row.ok ? 'positive' : 'negative'">
              {{ props.value }}</q-badge></q-td>""")
        self.preview.set_visibility(False)
        with ui.row().classes("items-center gap-4"):
            self.all_or_nothing = testid(ui.checkbox(t("ops.all_or_nothing")), "all-or-nothing")
            self.submit = testid(ui.button("", on_click=self._submit).props("unelevated no-caps"),
                                 "batch-submit")
        self.submit.set_visibility(False)
        self.progress_label = testid(ui.label(""), "batch-progress-label")
        self.progress = testid(ui.linear_progress(value=0, show_value=False, size="12px"),
                               "batch-progress")
        self.progress.set_visibility(False)

    def _clear_batch(self) -> None:
        """Forget the previous file and batch: a new upload starts from nothing on screen."""
        if self.progress_timer is not None:
            self.progress_timer.cancel()
            self.progress_timer = None
        self.file, self.batch_id = None, None
        for label in (self.batch_message, self.preview_summary, self.progress_label):
            label.set_text("")
        for element in (self.submit, self.preview, self.progress):
            element.set_visibility(False)
        self.progress.set_value(0)

    def _rejected(self) -> None:
        self._clear_batch()
        self.batch_message.set_text(self.page.t(
            "ops.file_refused", reason=f"> {PAYOUT_CSV_BYTES_MAX // (1024 * 1024)} MiB"))

    async def _uploaded(self, event: events.UploadEventArguments) -> None:
        page, t = self.page, self.page.t
        self.upload.reset()
        self._clear_batch()
        data = await event.file.read()
        try:
            report = await page.client.upload_payouts(data, pool=self.pool.id, dry_run=True)
        except ApiError as error:
            if error.status is not None and error.status < 500 and error.status not in (401, 403):
                self.batch_message.set_text(t("ops.file_refused", reason=page.problem(error)))
            else:
                page.report(error)
            return
        self.file = data
        cells = cells_by_line(data, PAYOUT_CSV_ROWS_MAX)
        self.preview_summary.set_text(t("ops.preview", valid=f"{report.valid_count:,}",
                                        rows=f"{report.row_count:,}",
                                        invalid=f"{report.invalid_count:,}"))
        self.preview.rows = [{
            "line": row.line, "ok": row.ok,
            "status": t("ops.ok") if row.ok else t("ops.errors"),
            **{name: shown_cell(cells.get(row.line, {}).get(name, "")) for name in COLUMNS},
            "errors": "; ".join(f"{e.column or '*'}: {e.code} — {e.message}"
                                for e in row.errors),
        } for row in sorted(report.rows, key=lambda r: (r.ok, r.line))[:PREVIEW_ROWS_MAX]]
        self.preview.update()
        self.preview.set_visibility(True)
        if report.valid_count:
            self.submit.set_text(t("ops.submit_valid", count=f"{report.valid_count:,}"))
            self.submit.set_visibility(True)

    async def _submit(self) -> None:
        page, t = self.page, self.page.t
        if self.file is None:
            return
        self.submit.disable()
        try:
            report = await page.call(page.client.upload_payouts(
                self.file, pool=self.pool.id, all_or_nothing=bool(self.all_or_nothing.value)))
        finally:
            self.submit.enable()
        if report is None:
            return
        self.submit.set_visibility(False)
        self.batch_id = report.batch_id
        self.batch_message.set_text("")
        self.preview_summary.set_text(t("ops.submitted", id=report.batch_id,
                                        created=f"{len(report.payment_ids):,}"))
        self.progress.set_visibility(True)
        self.progress_timer = ui.timer(PROGRESS_REFRESH_S, self._progress, immediate=True)

    async def _progress(self) -> None:
        page = self.page
        if self.batch_id is None:
            return
        progress = await page.call(page.client.payout_batch(self.batch_id, pool=self.pool.id))
        if progress is None:
            return
        total = max(progress.total, 1)
        self.progress.set_value(progress.finished / total)
        failed = sum(progress.by_state.get(s, 0) for s in ("failed", "returned", "rejected",
                                                             "cancelled"))
        self.progress_label.set_text(page.t(
            "ops.progress", done=f"{progress.finished:,}", count=f"{progress.total:,}",
            settled=f"{progress.by_state.get('settled', 0):,}", failed=f"{failed:,}"))
        if progress.done and self.progress_timer is not None:
            self.progress_timer.cancel()

    # --- single payout, internal transfer ---------------------------------------------------

    def _payout(self) -> None:
        t = self.page.t
        ui.label(t("ops.payout")).classes("text-lg font-medium")
        submission = Submission()
        asset = self._field(ui.select(self.assets, value=self.assets[0], label=t("ops.asset")),
                            "payout-asset", submission)
        amount = self._field(ui.input(t("ops.amount")), "payout-amount", submission)
        payee = self._field(ui.input(t("ops.payee")), "payout-payee", submission)
        destination = self._field(ui.input(t("ops.destination"),
                                           placeholder=t("ops.destination_hint")),
                                  "payout-destination", submission)
        reference = self._field(ui.input(t("ops.reference")), "payout-reference", submission)
        channel = self._field(ui.select({"": "—", **{c: c for c in self.channels}}, value="",
                                        label=t("ops.channel")), "payout-channel", submission)

        async def create() -> None:
            if not (amount.value and payee.value and destination.value):
                ui.notify(t("ops.invalid_form"), type="warning")
                return
            await self._create(submission, button, "payout", asset.value, amount.value,
                               counterparty=payee.value.strip(),
                               destination=destination.value.strip(),
                               reference=reference.value.strip() or None,
                               channel=channel.value or None)

        button = testid(ui.button(t("ops.create"), on_click=create)
                        .props("unelevated no-caps"), "payout-create")

    def _internal(self) -> None:
        t = self.page.t
        ui.label(t("ops.internal")).classes("text-lg font-medium")
        submission = Submission()
        asset = self._field(ui.select(self.assets, value=self.assets[0], label=t("ops.asset")),
                            "internal-asset", submission)
        amount = self._field(ui.input(t("ops.amount")), "internal-amount", submission)
        source = self._field(ui.select(self.channels, value=self.channels[0],
                                       label=t("ops.from_channel")), "internal-from", submission)
        target = self._field(ui.select(self.channels, value=self.channels[-1],
                                       label=t("ops.to_channel")), "internal-to", submission)

        async def create() -> None:
            if not (amount.value and source.value and target.value):
                ui.notify(t("ops.invalid_form"), type="warning")
                return
            await self._create(submission, button, "internal", asset.value, amount.value,
                               channel=source.value, destination_channel=target.value)

        button = testid(ui.button(t("ops.create"), on_click=create)
                        .props("unelevated no-caps"), "internal-create")

    @staticmethod
    def _field(element: Any, name: str, submission: Submission) -> Any:
        """A form's field: wide enough for its label, and a change of it makes the form's
        next click a new submission."""
        element.props("dense outlined").classes(FIELD_CLASSES)
        element.on_value_change(lambda _: submission.changed())
        return testid(element, name)

    async def _create(self, submission: Submission, button: ui.button, kind: Any, asset: str,
                      amount: str, **fields: Any) -> None:
        page = self.page
        if submission.busy:
            return  # the second click of a double click, while the first is on its way
        submission.busy = True
        button.props("loading")
        try:
            created = await page.client.create_payment(
                kind, asset, amount.strip(), pool=self.pool.id,
                idempotency_key=submission.key, **fields)
        except ApiError as error:
            submission.answered(error)
            page.report(error)
            return
        finally:
            submission.busy = False
            button.props(remove="loading")
        submission.answered(None)
        again = created.id == submission.last_created
        submission.last_created = created.id
        tone = STATE_TONES.get(str(created.state), "neutral")
        ui.notify(page.t("ops.created_again" if again else "ops.created", id=created.id,
                         state=page.t(f"state.{created.state}")),
                  type="negative" if tone == "bad" else "info" if again else "positive")

    # --- export -----------------------------------------------------------------------------

    def _export(self) -> None:
        t = self.page.t
        ui.label(t("ops.export")).classes("text-lg font-medium")
        today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        start = testid(ui.input(t("ops.export_from"), value=instant_input(today))
                       .props("dense outlined").classes(FIELD_CLASSES), "export-from")
        end = testid(ui.input(t("ops.export_to"), value=instant_input(today + timedelta(days=1)))
                     .props("dense outlined").classes(FIELD_CLASSES), "export-to")

        async def export(fmt: Literal["csv", "xlsx"]) -> None:
            page = self.page
            data = await page.call(page.client.export_payments(
                start.value.strip(), end.value.strip(), fmt, pool=self.pool.id))
            if data is None:
                return
            name = f"fundpool-{self.pool.id}-{start.value[:10]}-{end.value[:10]}.{fmt}"
            ui.download(data, name)
            ui.notify(t("ops.exported", file=name), type="positive")

        with ui.row():
            testid(ui.button(t("ops.export_csv"), on_click=lambda: export("csv"))
                   .props("outline no-caps"), "export-csv")
            testid(ui.button(t("ops.export_xlsx"), on_click=lambda: export("xlsx"))
                   .props("outline no-caps"), "export-xlsx")


@console_page("/operations", needs=P.PAYMENTS_READ, title="nav.operations")
async def operations_page(page: Page) -> None:
    Operations(page).build()
