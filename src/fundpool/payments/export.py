"""The reconciliation export: one row per payment a pool created in a period, as CSV or XLSX.

A period is [since, until): the first instant in, the second out, so consecutive periods
(a day, then the next) list every payment exactly once. It is at most 31 days long, and an
export holds at most 100,000 payments (`export_too_large`: ask for a shorter period), since it
is built in memory in one request.

Rows are oldest first (by creation time, ties by id). Every cell is text: amounts are exact
decimal text at the asset's scale, times ISO-8601 UTC, and `entry_ids` the ledger entries the
payment's steps posted, oldest first, separated by spaces. A payment that moves while the
export is read shows the steps up to its state as read (`version`), never a later one.

Formula injection (OWASP "CSV injection"): a cell a spreadsheet could take for a formula
(starting with `=`, `+`, `-`, `@`, TAB or CR, after any spaces) gets a leading `'`, in both
formats (payments/csv_batch.py, `export_csv_cell`). Counterparties and references are what
callers typed; the other cells are ours and never start so.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from fundpool.core.errors import FundpoolError
from fundpool.core.money import Asset
from fundpool.ledger.docs import EPOCH, format_minor, iso
from fundpool.payments.csv_batch import export_csv_cell
from fundpool.payments.model import Payment, PaymentEvent
from fundpool.payments.ports import PaymentStore

EXPORT_ROWS_MAX = 100_000
EXPORT_PERIOD_MAX_US = 31 * 86_400 * 1_000_000  # 31 days
COLUMNS = ("payment_id", "created_at", "kind", "state", "asset", "amount", "fee", "channel",
           "counterparty", "reference", "updated_at", "entry_ids")
CSV_MEDIA_TYPE = "text/csv"  # answered with `; charset=utf-8`
XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
STAMP = "%Y%m%dT%H%M%SZ"
STAMP_MINUTES = "%Y%m%dT%H%MZ"


class ExportFormat(StrEnum):
    CSV = "csv"
    XLSX = "xlsx"

    @property
    def media_type(self) -> str:
        return CSV_MEDIA_TYPE if self is ExportFormat.CSV else XLSX_MEDIA_TYPE


class InvalidPeriod(FundpoolError):
    code = "invalid_period"
    title = "the period must end after it starts and be at most 31 days long"


class ExportTooLarge(FundpoolError):
    code = "export_too_large"
    title = "the period holds more payments than one export does; ask for a shorter one"


@dataclass(frozen=True, slots=True)
class Period:
    """[since_us, until_us): µs since the epoch, the end excluded."""

    since_us: int
    until_us: int

    def __post_init__(self) -> None:
        if self.until_us <= self.since_us:
            raise InvalidPeriod("`to` must be after `from` (`to` is excluded)",
                                since=iso(self.since_us), until=iso(self.until_us))
        if self.until_us - self.since_us > EXPORT_PERIOD_MAX_US:
            raise InvalidPeriod("the period is longer than 31 days", since=iso(self.since_us),
                                until=iso(self.until_us), days_max=31)

    def stamp(self) -> str:
        """`20261101T000000Z-20261201T000000Z`: for file names."""
        return _compact(self.since_us, STAMP) + "-" + _compact(self.until_us, STAMP)

    def sheet_title(self) -> str:
        """The period to the minute (`20261101T0000Z-20261201T0000Z`): a sheet's title has at
        most 31 characters."""
        return _compact(self.since_us, STAMP_MINUTES) + "-" + _compact(self.until_us,
                                                                       STAMP_MINUTES)


def _compact(at_us: int, form: str) -> str:
    return (EPOCH + timedelta(microseconds=at_us)).strftime(form)


def file_name(pool: str, period: Period, form: ExportFormat) -> str:
    # Pool ids are [a-z0-9][a-z0-9_-]*: safe in a Content-Disposition header unquoted or not.
    return f"fundpool-{pool}-{period.stamp()}.{form.value}"


def export_rows(store: PaymentStore, pool: str, period: Period,
                assets: Mapping[str, Asset]) -> list[tuple[str, ...]]:
    """The rows of the pool's payments created in `period` (without the header)."""
    payments = store.created_between(pool, period.since_us, period.until_us,
                                     limit=EXPORT_ROWS_MAX + 1)
    if len(payments) > EXPORT_ROWS_MAX:
        raise ExportTooLarge(pool=pool, since=iso(period.since_us), until=iso(period.until_us),
                             rows_max=EXPORT_ROWS_MAX)
    timelines = store.events_of([p.id for p in payments])
    return [payment_row(p, assets.get(p.asset), timelines.get(p.id, ())) for p in payments]


def payment_row(payment: Payment, asset: Asset | None,
                timeline: Sequence[PaymentEvent]) -> tuple[str, ...]:
    """One payment's cells, in `COLUMNS` order. `asset` None (never for a payment the ledger
    took) leaves amounts in minor units rather than failing the whole export."""
    # Events beyond the payment's version were written after it was read: not its state yet.
    entries = [entry for event in timeline if event.seq <= payment.version
               for entry in event.entry_ids]
    return (
        payment.id,
        iso(payment.created_at_us),
        payment.kind.value,
        payment.state.value,
        payment.asset,
        format_minor(payment.amount_minor, asset),
        format_minor(payment.fee_minor, asset),
        payment.channel or "",
        payment.counterparty or "",
        payment.reference or "",
        iso(payment.updated_at_us),
        " ".join(entries),
    )


def safe_cells(row: Sequence[str]) -> list[str]:
    # Amounts are never negative (a payment's amount and fee are 0..2^128-1), so no real
    # amount starts with `-` and is turned into text by this rule; were one ever to, it would
    # still read exactly, with a `'` in front.
    return [export_csv_cell(cell) for cell in row]


def to_csv(rows: Sequence[Sequence[str]]) -> bytes:
    """UTF-8, a header row, RFC 4180 quoting and CRLF line ends."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(COLUMNS)
    writer.writerows(safe_cells(row) for row in rows)
    return buffer.getvalue().encode("utf-8")


def to_xlsx(rows: Sequence[Sequence[str]], sheet_title: str) -> bytes:
    """One sheet named `sheet_title`: a bold header row, then every cell as a string (never a
    number, which a spreadsheet would hold as a float, nor a formula)."""
    # Imported here: only an XLSX export needs it (openpyxl ships no type hints).
    from openpyxl import Workbook  # type: ignore[import-untyped]
    from openpyxl.cell import WriteOnlyCell  # type: ignore[import-untyped]
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE  # type: ignore[import-untyped]
    from openpyxl.styles import Font  # type: ignore[import-untyped]

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(sheet_title)
    bold = Font(bold=True)
    header = []
    for name in COLUMNS:
        cell = WriteOnlyCell(sheet, value=name)
        cell.font = bold
        header.append(cell)
    sheet.append(header)
    for row in rows:
        # XML 1.0 cannot carry most C0 control characters, which stored text may hold; each
        # becomes U+FFFD here (the CSV export keeps them).
        sheet.append([ILLEGAL_CHARACTERS_RE.sub("\ufffd", cell) for cell in safe_cells(row)])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def export_payments(store: PaymentStore, pool: str, period: Period, form: ExportFormat,
                    assets: Mapping[str, Asset]) -> bytes:
    """The file of the pool's payments created in `period`."""
    rows = export_rows(store, pool, period, assets)
    if form is ExportFormat.CSV:
        return to_csv(rows)
    return to_xlsx(rows, period.sheet_title())
