"""The reconciliation export (payments/export.py), on both stores: the period [from, to) with
its bounds, rows oldest first with the ledger entries each payment's steps posted, CSV and
XLSX read back, formula injection neutralised, and the bounds on the period and the rows.

The properties: whatever the amount and the asset's scale, the amount text reads back to the
exact minor units; whatever text a payment carries, the CSV reads back to it (behind a `'`
where a spreadsheet could take it for a formula)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openpyxl import load_workbook

from fundpool.core.clock import ManualClock, Uuid7Ids
from fundpool.core.ledger.model import Posting
from fundpool.core.money import AMOUNT_MAX_MINOR, Asset, AssetKind, parse_amount
from fundpool.ledger.service import Ledger
from fundpool.payments import export
from fundpool.payments.csv_batch import export_csv_cell
from fundpool.payments.export import (
    COLUMNS,
    EXPORT_PERIOD_MAX_US,
    ExportFormat,
    ExportTooLarge,
    InvalidPeriod,
    Period,
    export_payments,
    export_rows,
    payment_row,
    to_csv,
    to_xlsx,
)
from fundpool.payments.model import (
    Action,
    Payment,
    PaymentEvent,
    PaymentKind,
    PaymentRequest,
    PaymentState,
)
from fundpool.payments.service import PaymentService, Step
from fundpool.pool.config import load_config
from fundpool.pool.setup import init_pool
from fundpool.stores import payment_store

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "pool.toml"
CONFIG = load_config(EXAMPLE)
POOL = CONFIG.pool("main")
USD = Asset("USD", 2, AssetKind.FIAT)
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
T0 = 1_767_225_600_000_000  # 2026-01-01T00:00Z, where ManualClock starts
SECOND_US = 1_000_000


@pytest.fixture
def service(ledger: Ledger) -> PaymentService:
    init_pool(ledger, CONFIG)
    ledger.transfer([Posting("world:bank-a", "pool:main:usd:bank-a:available", "USD",
                             10_000_000)])
    return PaymentService(ledger, payment_store(ledger.store), CONFIG, POOL,
                          Uuid7Ids.seeded(5))


def assets_of(ledger: Ledger) -> dict[str, Asset]:
    return {asset.code: asset for asset in ledger.store.assets()}


def read_csv(data: bytes) -> list[list[str]]:
    assert data.endswith(b"\r\n")
    return list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))


def make_day(service: PaymentService, clock: ManualClock) -> dict[str, Payment]:
    """Payments at known instants: one at T0 + 10 s, one at T0 + 20 s that is settled (its
    steps post entries), one hostile one at T0 + 30 s, one at T0 + 40 s."""
    made: dict[str, Payment] = {}
    clock.set(T0 + 10 * SECOND_US)
    made["first"] = service.create(PaymentRequest(PaymentKind.PAYOUT, "USD", 1_250,
                                                  counterparty="Alice", reference="inv-1"))
    clock.set(T0 + 20 * SECOND_US)
    deposit = service.create(PaymentRequest(PaymentKind.DEPOSIT, "USD", 100_000,
                                            channel="bank-a", counterparty="Bob"))
    for action in (Action.SCREEN, Action.CLEAR, Action.SETTLE):
        clock.advance(seconds=1)
        service.act(Step(deposit.id, action))
    made["settled"] = service.get(deposit.id)
    clock.set(T0 + 30 * SECOND_US)
    made["hostile"] = service.create(PaymentRequest(
        PaymentKind.PAYOUT, "USD", 1, counterparty='=HYPERLINK("http://x","y")',
        reference="@SUM(A1), \"quoted\"\nline"))
    clock.set(T0 + 40 * SECOND_US)
    made["last"] = service.create(PaymentRequest(PaymentKind.PAYOUT, "USD", 99))
    return made


# --- the period and the rows ------------------------------------------------------------------


def test_rows_are_the_periods_payments_oldest_first_with_their_entries(
    service: PaymentService, ledger: Ledger, clock: ManualClock
) -> None:
    made = make_day(service, clock)
    store = payment_store(ledger.store)
    rows = export_rows(store, "main", Period(T0, T0 + 60 * SECOND_US), assets_of(ledger))
    assert [row[0] for row in rows] == [made[k].id for k in ("first", "settled", "hostile",
                                                             "last")]
    first, settled = rows[0], rows[1]
    assert dict(zip(COLUMNS, first, strict=True)) == {
        "payment_id": made["first"].id, "created_at": "2026-01-01T00:00:10.000000Z",
        "kind": "payout", "state": "initiated", "asset": "USD", "amount": "12.50",
        "fee": "0.00", "channel": "", "counterparty": "Alice", "reference": "inv-1",
        "updated_at": "2026-01-01T00:00:10.000000Z", "entry_ids": "",
    }
    assert settled[3] == "settled"
    assert settled[6] == "0.00"
    assert settled[10] == "2026-01-01T00:00:23.000000Z"
    # The entries its clear and settle steps posted, in order, each in the ledger.
    posted = [e for event in service.events(made["settled"].id) for e in event.entry_ids]
    assert len(posted) >= 2
    assert settled[11].split(" ") == posted
    assert all(ledger.store.entry_by_id(entry_id) is not None for entry_id in posted)


def test_from_is_in_and_to_is_out(
    service: PaymentService, ledger: Ledger, clock: ManualClock
) -> None:
    made = make_day(service, clock)
    store, assets = payment_store(ledger.store), assets_of(ledger)

    def ids(since_s: int, until_s: int) -> list[str]:
        period = Period(T0 + since_s * SECOND_US, T0 + until_s * SECOND_US)
        return [row[0] for row in export_rows(store, "main", period, assets)]

    assert ids(20, 30) == [made["settled"].id]  # created at 20 s: in; at 30 s: out
    assert ids(10, 20) == [made["first"].id]
    assert ids(30, 40) == [made["hostile"].id]
    assert ids(11, 20) == []
    assert ids(0, 10) == []
    # Consecutive periods list every payment exactly once.
    assert ids(0, 25) + ids(25, 41) == [p.id for p in made.values()]
    one_us = export_rows(store, "main", Period(made["last"].created_at_us,
                                               made["last"].created_at_us + 1), assets)
    assert [row[0] for row in one_us] == [made["last"].id]


def test_a_bad_period_is_refused() -> None:
    with pytest.raises(InvalidPeriod) as caught:
        Period(T0, T0)
    assert caught.value.code == "invalid_period"
    with pytest.raises(InvalidPeriod):
        Period(T0 + 1, T0)
    with pytest.raises(InvalidPeriod) as caught:
        Period(T0, T0 + EXPORT_PERIOD_MAX_US + 1)
    assert caught.value.facts["days_max"] == 31
    assert Period(T0, T0 + EXPORT_PERIOD_MAX_US).until_us - T0 == 31 * 86_400 * SECOND_US


def test_more_rows_than_the_bound_is_export_too_large(
    service: PaymentService, ledger: Ledger, clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    make_day(service, clock)
    store, assets = payment_store(ledger.store), assets_of(ledger)
    period = Period(T0, T0 + 60 * SECOND_US)
    monkeypatch.setattr(export, "EXPORT_ROWS_MAX", 4)
    assert len(export_rows(store, "main", period, assets)) == 4  # at the bound: fine
    monkeypatch.setattr(export, "EXPORT_ROWS_MAX", 3)
    with pytest.raises(ExportTooLarge) as caught:
        export_rows(store, "main", period, assets)
    assert caught.value.code == "export_too_large"
    assert caught.value.facts["rows_max"] == 3


def test_a_payment_read_before_its_next_step_shows_no_entry_of_that_step() -> None:
    payment = Payment("p-1", "main", PaymentKind.DEPOSIT, "USD", 100, 0, "bank-a", None, None,
                      None, PaymentState.CLEARED, False, T0, T0 + 2, version=3)
    timeline = [
        PaymentEvent("p-1", 1, Action.CREATE, None, PaymentState.INITIATED, T0),
        PaymentEvent("p-1", 2, Action.SCREEN, PaymentState.INITIATED, PaymentState.SCREENED,
                     T0 + 1),
        PaymentEvent("p-1", 3, Action.CLEAR, PaymentState.SCREENED, PaymentState.CLEARED,
                     T0 + 2, entry_ids=("e-1",)),
        # written after the payment was read: not part of the state the row shows
        PaymentEvent("p-1", 4, Action.SETTLE, PaymentState.CLEARED, PaymentState.SETTLED,
                     T0 + 3, entry_ids=("e-2", "e-3")),
    ]
    assert payment_row(payment, USD, timeline)[11] == "e-1"


# --- CSV and XLSX ------------------------------------------------------------------------------


def test_csv_has_a_header_rfc_4180_quoting_and_no_live_formula(
    service: PaymentService, ledger: Ledger, clock: ManualClock
) -> None:
    made = make_day(service, clock)
    data = export_payments(payment_store(ledger.store), "main",
                           Period(T0, T0 + 60 * SECOND_US), ExportFormat.CSV, assets_of(ledger))
    table = read_csv(data)
    assert table[0] == list(COLUMNS)
    assert len(table) == 5
    hostile = table[3]
    assert hostile[0] == made["hostile"].id
    assert hostile[8] == '\'=HYPERLINK("http://x","y")'
    assert hostile[9] == "'@SUM(A1), \"quoted\"\nline"
    # RFC 4180: the quote doubled, the cell quoted since it holds a comma, a quote, a newline.
    assert b'"\'=HYPERLINK(""http://x"",""y"")"' in data
    assert b'"\'@SUM(A1), ""quoted""\nline"' in data
    for row in table[1:]:
        assert not any(cell.startswith(FORMULA_PREFIXES) for cell in row), row


def test_xlsx_reads_back_as_text_with_a_bold_header_and_the_periods_name(
    service: PaymentService, ledger: Ledger, clock: ManualClock, tmp_path: Path
) -> None:
    make_day(service, clock)
    period = Period(T0, T0 + 60 * SECOND_US)
    store, assets = payment_store(ledger.store), assets_of(ledger)
    data = export_payments(store, "main", period, ExportFormat.XLSX, assets)
    assert data.startswith(b"PK")  # a zip, as every XLSX
    csv_table = read_csv(export_payments(store, "main", period, ExportFormat.CSV, assets))
    (path := tmp_path / "export.xlsx").write_bytes(data)
    workbook = load_workbook(path)
    assert workbook.sheetnames == ["20260101T0000Z-20260101T0001Z"]
    sheet = workbook.active
    cells = list(sheet.iter_rows())
    assert all(cell.font.bold for cell in cells[0])
    assert not any(cell.font.bold for cell in cells[1])
    # Every cell is a string (never a number or a formula), and the table is the CSV's, except
    # the empty cells, which a sheet does not keep.
    assert all(cell.data_type == "s" for row in cells for cell in row if cell.value is not None)
    values = [[cell.value or "" for cell in row] for row in cells]
    assert values == csv_table
    assert values[2][5] == "1000.00"


def test_xlsx_replaces_what_xml_cannot_carry() -> None:
    payment = Payment("p-1", "main", PaymentKind.PAYOUT, "USD", 5, 0, None, None,
                      "bell\x07and\x1bescape\ttab", "=1+1", PaymentState.INITIATED, False,
                      T0, T0)
    row = payment_row(payment, USD, ())
    data = to_xlsx([row], "sheet")
    sheet = load_workbook(io.BytesIO(data)).active
    assert sheet["I2"].value == "bell\ufffdand\ufffdescape\ttab"
    assert sheet["J2"].value == "'=1+1"
    assert sheet["J2"].data_type == "s"
    # The CSV keeps the characters as they are.
    assert read_csv(to_csv([row]))[1][8] == "bell\x07and\x1bescape\ttab"


def test_file_names_and_sheet_titles_name_the_period() -> None:
    period = Period(T0, T0 + 31 * 86_400 * SECOND_US)
    assert export.file_name("main", period, ExportFormat.CSV) == \
        "fundpool-main-20260101T000000Z-20260201T000000Z.csv"
    assert export.file_name("ops-2", period, ExportFormat.XLSX) == \
        "fundpool-ops-2-20260101T000000Z-20260201T000000Z.xlsx"
    assert period.sheet_title() == "20260101T0000Z-20260201T0000Z"
    assert len(period.sheet_title()) <= 31


# --- properties --------------------------------------------------------------------------------

TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
               max_size=40)


TIMES = st.integers(0, 253_402_300_799_999_999)  # up to the last µs of year 9999


@st.composite
def payments(draw: st.DrawFn) -> tuple[Payment, Asset]:
    scale = draw(st.integers(0, 18))
    asset = Asset("TKN", scale, AssetKind.CRYPTO)
    payment = Payment(
        draw(st.uuids().map(str)), "main", draw(st.sampled_from(list(PaymentKind))), "TKN",
        draw(st.integers(0, AMOUNT_MAX_MINOR)), draw(st.integers(0, AMOUNT_MAX_MINOR)),
        draw(st.none() | st.sampled_from(["bank-a", "eth-l1"])), None,
        draw(st.none() | TEXT), draw(st.none() | TEXT), draw(st.sampled_from(list(PaymentState))),
        False, draw(TIMES), draw(TIMES),
    )
    return payment, asset


@settings(max_examples=300, deadline=None)
@given(st.lists(payments(), min_size=1, max_size=5))
def test_amounts_are_exact_and_every_cell_reads_back(drawn: list[tuple[Payment, Asset]]) -> None:
    rows = [payment_row(payment, asset, ()) for payment, asset in drawn]
    table = read_csv(to_csv(rows))
    assert table[0] == list(COLUMNS)
    assert len(table) == len(drawn) + 1
    for (payment, asset), row, read in zip(drawn, rows, table[1:], strict=True):
        # Exact both ways: the text parses back to the minor units, at the asset's scale.
        assert parse_amount(row[5], asset.scale) == payment.amount_minor
        assert parse_amount(row[6], asset.scale) == payment.fee_minor
        assert not row[5].startswith("-")  # amounts are never negative
        assert read[5:7] == list(row[5:7])
        for cell, original in zip(read, row, strict=True):
            if original.startswith(FORMULA_PREFIXES) or \
                    original.lstrip(" ").startswith(FORMULA_PREFIXES):
                assert cell == "'" + original
            else:
                assert cell == original
        assert read[8] == export_csv_cell(payment.counterparty or "")
