"""CSV exports with a saved column mapping: a Deutsche Bank export (preamble rows, cp1252,
debit and credit columns, comma decimals, a formula-looking cell) read to exact values;
mappings refused field by field; bad rows refused at their row and column; amounts written
with any grouping and sign read back exactly."""

from __future__ import annotations

import csv
import hashlib
import io
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from fundpool.recon.formats.csv_mapping import (
    CsvMapping,
    InvalidMapping,
    mapping_from_yaml,
    parse_csv,
)
from fundpool.recon.model import DAY_US, FileFormat, FileRefused, StatementLine

SAMPLES = Path(__file__).parent / "samples"
SCALES = {"EUR": 2, "USD": 2, "JPY": 0, "USDT": 6}
HEADER = ("Buchungstag;Wert;Umsatzart;Begünstigter / Auftraggeber;Verwendungszweck;IBAN;BIC;"
          "Kundenreferenz;Soll;Haben;Währung")


def day_us(year: int, month: int, day: int) -> int:
    return (date(year, month, day) - date(1970, 1, 1)).days * DAY_US


def deutsche_bank() -> CsvMapping:
    return mapping_from_yaml((SAMPLES / "deutsche_bank.yaml").read_text(encoding="utf-8"))


def export(*rows: str, header: str = HEADER) -> bytes:
    """A Deutsche Bank style file: three preamble rows, the header on row 4, data from row 5."""
    text = "\r\n".join(["Umsätze Girokonto;Zeitraum", "Kontonummer;X", "", header, *rows])
    return (text + "\r\n").encode("cp1252")


def test_a_deutsche_bank_export_reads_to_exact_values() -> None:
    data = (SAMPLES / "deutsche_bank.csv").read_bytes()
    parsed = parse_csv(data, "db.csv", deutsche_bank(), scales=SCALES)
    digest = hashlib.sha256(data).hexdigest()
    assert (parsed.name, parsed.format, parsed.message, parsed.sha256) == (
        "db.csv", FileFormat.CSV, "csv/deutsche-bank-umsaetze", digest)
    (statement,) = parsed.statements
    sid = f"{digest[:16]}:db.csv"
    assert (statement.statement_id, statement.account, statement.asset, statement.opening,
            statement.closing, statement.sequence) == (
        sid, "DE09100100101234567890", "EUR", None, None, None)
    dec7, dec8, dec9 = day_us(2026, 12, 7), day_us(2026, 12, 8), day_us(2026, 12, 9)
    assert statement.created_at_us == dec8  # the latest booking date
    assert statement.lines == (
        StatementLine(f"{sid}:1", -150_000, "EUR", dec7, dec7, end_to_end_id="FP-PAY-0001",
                      reference="Invoice 2026-118", counterparty="Jansen Catering B.V.",
                      counterparty_account="NL91ABNA0417164300"),
        StatementLine(f"{sid}:2", -250, "EUR", dec7, dec7, reference="Kontoführung 11/2026"),
        StatementLine(f"{sid}:3", 1_000_000, "EUR", dec8, dec8, end_to_end_id="NOTPROVIDED",
                      reference="RF18 5390 0754 7034; Lieferung 77",  # quoted ';' kept
                      counterparty="Nordwind GmbH",
                      counterparty_account="DE89370400440532013000"),
        # The blank row 8 is skipped; a formula-looking cell is text, read and never run.
        StatementLine(f"{sid}:4", 1, "EUR", dec8, dec9, reference="Habenzinsen 2026",
                      counterparty='=HYPERLINK("http://example.invalid")'),
    )


def test_one_signed_column_a_fixed_currency_and_thousands_commas() -> None:
    mapping = CsvMapping(name="us-bank", date="Date", amount="Amount", fixed_currency="USD",
                         thousands_separator=",", date_format="%m/%d/%Y", bank_ref="Ref",
                         account="US-OPS-1")
    data = (b'Date,Amount,Ref\n12/07/2026,"-1,234.56",A1\n12/08/2026,+5,A2\n'
            b'12/08/2026,"1,000,000.1",A3\n')
    (statement,) = parse_csv(data, "us.csv", mapping, scales=SCALES).statements
    assert [(line.amount_minor, line.bank_ref, line.value_at_us) for line in statement.lines] == [
        (-123_456, "A1", day_us(2026, 12, 7)), (500, "A2", day_us(2026, 12, 8)),
        (100_000_010, "A3", day_us(2026, 12, 8))]
    assert statement.asset == "USD"


def test_an_empty_value_date_is_the_booking_date() -> None:
    (statement,) = parse_csv(export("07.12.2026;;Entgelt;;Kosten;;;;-2,50;;EUR"), "v.csv",
                             deutsche_bank(), scales=SCALES).statements
    (line,) = statement.lines
    assert line.value_at_us == line.booked_at_us == day_us(2026, 12, 7)
    assert line.amount_minor == -250


def test_a_file_with_only_its_header_is_an_empty_statement() -> None:
    mapping = CsvMapping(name="m", date="d", amount="a", fixed_currency="EUR", account="X")
    (statement,) = parse_csv(b"d,a\n", "empty.csv", mapping, scales=SCALES).statements
    assert (statement.lines, statement.asset, statement.created_at_us) == ((), "EUR", 0)


# --- mappings ----------------------------------------------------------------------------------

BASE: dict[str, Any] = {"name": "bank", "date": "Date", "amount": "Amount",
                        "fixed_currency": "EUR", "account": "NL20INGB0001234567"}


@pytest.mark.parametrize(("change", "field", "why"), [
    ({"debit": "Soll", "credit": "Haben"}, "amount", "not both and not neither"),
    ({"amount": None}, "amount", "not both and not neither"),
    ({"amount": None, "debit": "Soll"}, "credit", "go together"),
    ({"currency": "Währung"}, "currency", "not both and not neither"),
    ({"fixed_currency": None}, "currency", "not both and not neither"),
    ({"colour": "blue"}, "colour", "not a field"),
    ({"header_rows": "'2'"}, "header_rows", "valid integer"),
    ({"header_rows": 0}, "header_rows", "between 1 and 50"),
    ({"encoding": "klingon-8"}, "encoding", "not an encoding"),
    ({"date_format": "%Y"}, "date_format", "does not read back"),
    ({"date_format": "%d/%m"}, "date_format", "does not read back"),
    ({"decimal_separator": ";"}, "decimal_separator", "'.' or ','"),
    ({"decimal_separator": ",", "thousands_separator": ","}, "thousands_separator",
     "other than the decimal"),
    ({"delimiter": "ab"}, "delimiter", "one character"),
    ({"date": ""}, "date", "a column name"),
    ({"account": " "}, "account", "the pool's account"),
    ({"name": None}, "name", "Field required"),
])
def test_a_mapping_is_refused_naming_its_field(change: dict[str, Any], field: str,
                                               why: str) -> None:
    fields = {**BASE, **change}
    text = "\n".join(f"{k}: {v}" if k == "header_rows" else f"{k}: {v!r}"
                     for k, v in fields.items() if v is not None)
    with pytest.raises(InvalidMapping) as refused:
        mapping_from_yaml(text)
    assert refused.value.code == "invalid_csv_mapping"
    assert refused.value.facts["field"] == field
    assert why in str(refused.value.facts["why"])


@pytest.mark.parametrize(("text", "field", "line"), [
    ("name: bank\ndecimal_separator: ,\ndate: Date\n", "decimal_separator", 2),  # unquoted
    ("name: [unclosed\n", None, 2),
    ("- a list\n- of things\n", None, None),
    ("just text", None, None),
    ("x: " + "y" * 20_000, None, None),
])
def test_text_that_is_no_mapping_is_refused(text: str, field: str | None,
                                            line: int | None) -> None:
    with pytest.raises(InvalidMapping) as refused:
        mapping_from_yaml(text)
    assert refused.value.facts["field"] == field
    assert refused.value.facts.get("line") == line


def test_a_mapping_made_in_code_is_checked_the_same_way() -> None:
    with pytest.raises(ValidationError, match="not both and not neither"):
        CsvMapping(name="m", date="d", fixed_currency="EUR", account="X")
    assert deutsche_bank().columns()["currency"] == "Währung"


# --- bad files ---------------------------------------------------------------------------------

GOOD_ROW = "07.12.2026;07.12.2026;Entgelt;;Kosten;;;;-2,50;;EUR"


@pytest.mark.parametrize(("rows", "place", "why"), [
    ((GOOD_ROW, GOOD_ROW, "31.11.2026;07.12.2026;x;;;;;;-1,00;;EUR"),
     "row 7, column Buchungstag", "not a date"),
    ((GOOD_ROW, GOOD_ROW, "07.12.2026;2026-12-07;x;;;;;;-1,00;;EUR"),
     "row 7, column Wert", "not a date"),
    ((GOOD_ROW, GOOD_ROW, "07.12.2026;;x;;;;;;;1,0,0;EUR"), "row 7, column Haben",
     "not an amount"),
    ((GOOD_ROW, GOOD_ROW, "07.12.2026;;x;;;;;;;1.23,45;EUR"), "row 7, column Haben",
     "not an amount"),
    ((GOOD_ROW, GOOD_ROW, "07.12.2026;;x;;;;;;;1,234;EUR"), "row 7, column Haben",
     "cannot be read"),  # a third decimal of a euro
    ((GOOD_ROW, GOOD_ROW, "07.12.2026;;x;;;;;;-1,00;-1,00;EUR"), "row 7, column Haben",
     "not an amount"),  # a credit is never negative
    ((GOOD_ROW, GOOD_ROW, "07.12.2026;;x;;;;;;-1,00;2,00;EUR"), "row 7", "both"),
    ((GOOD_ROW, GOOD_ROW, "07.12.2026;;x;;;;;;;;EUR"), "row 7", "neither"),
    ((GOOD_ROW, "07.12.2026;;x;;;;;;-1,00;;GBP"), "row 6, column Währung",
     "not one this pool holds"),
    ((GOOD_ROW, "07.12.2026;;x;;;;;;-1,00;;USD"), "row 6, column Währung", "one asset"),
    ((GOOD_ROW, "07.12.2026;;x;;;;;;-1,00;;"), "row 6, column Währung", "empty"),
    ((GOOD_ROW, "07.12.2026;x;;;;;;-1.500,00;;EUR"), "row 6", "cells"),
    ((GOOD_ROW, '07.12.2026;;"x;;;;;;-1,00;;EUR'), "row 6", "cannot be read"),  # open quote
])
def test_a_bad_row_is_refused_at_its_row_and_column(rows: tuple[str, ...], place: str,
                                                    why: str) -> None:
    with pytest.raises(FileRefused) as refused:
        parse_csv(export(*rows), "bad.csv", deutsche_bank(), scales=SCALES)
    assert type(refused.value) is FileRefused
    assert refused.value.facts["file"] == "bad.csv"
    assert refused.value.facts["place"] == place
    assert why in refused.value.detail


def test_a_missing_column_is_named() -> None:
    with pytest.raises(FileRefused) as refused:
        parse_csv(export(GOOD_ROW, header=HEADER.replace("Haben", "Gutschrift")), "bad.csv",
                  deutsche_bank(), scales=SCALES)
    facts = refused.value.facts
    assert (facts["place"], facts["column"], facts["field"]) == ("row 4", "Haben", "credit")


def test_a_column_named_twice_is_refused() -> None:
    with pytest.raises(FileRefused) as refused:
        parse_csv(export(GOOD_ROW + ";x", header=HEADER + ";Soll"), "bad.csv",
                  deutsche_bank(), scales=SCALES)
    assert (refused.value.facts["place"], refused.value.facts["column"]) == ("row 4", "Soll")


def test_a_fixed_currency_the_pool_does_not_hold_is_refused() -> None:
    mapping = CsvMapping(name="m", date="d", amount="a", fixed_currency="CHF", account="X")
    with pytest.raises(FileRefused) as refused:
        parse_csv(b"d,a\n2026-12-07,1\n", "chf.csv", mapping, scales=SCALES)
    assert refused.value.facts["place"] == "mapping fixed_currency"


@pytest.mark.parametrize(("data", "place"), [
    ("Datum;Betrag\n".encode("utf-16"), "byte 0"),  # a mapping's encoding is its bank's
    (b"a\nb\n", "row 2"),  # the header would be row 4
    (b"", "row 0"),
])
def test_a_file_the_mapping_cannot_read_is_refused(data: bytes, place: str) -> None:
    mapping = deutsche_bank().model_copy(update={"encoding": "utf-8"})
    with pytest.raises(FileRefused) as refused:
        parse_csv(data, "x.csv", mapping, scales=SCALES)
    assert refused.value.facts["place"] == place


def test_an_empty_file_with_a_currency_column_names_no_asset() -> None:
    with pytest.raises(FileRefused, match="no row names its currency"):
        parse_csv(export(), "e.csv", deutsche_bank(), scales=SCALES)


# --- amounts, generated ------------------------------------------------------------------------


def grouped(whole: int, separator: str) -> str:
    digits = str(whole)
    head = len(digits) % 3 or 3
    return separator.join([digits[:head]] + [digits[i:i + 3] for i in range(head, len(digits),
                                                                               3)])


@given(amounts=st.lists(st.integers(-10**15, 10**15), max_size=20),
       separators=st.sampled_from([(",", "."), (",", " "), (".", ","), (".", "'"),
                                   (",", None), (".", None)]),
       scale=st.sampled_from([0, 2, 6]))
def test_amounts_written_with_any_grouping_and_sign_read_back_exactly(
        amounts: list[int], separators: tuple[str, str | None], scale: int) -> None:
    decimal, thousands = separators
    asset = {0: "JPY", 2: "EUR", 6: "USDT"}[scale]
    mapping = CsvMapping(name="g", date="Date", amount="Amount", fixed_currency=asset,
                         decimal_separator=decimal, thousands_separator=thousands,
                         account="X")
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["Date", "Amount"])
    for minor in amounts:
        whole, fraction = divmod(abs(minor), 10**scale)
        text = grouped(whole, thousands) if thousands else str(whole)
        if scale:
            text += f"{decimal}{fraction:0{scale}d}"
        writer.writerow(["2026-12-07", ("-" if minor < 0 else "") + text])
    (statement,) = parse_csv(buffer.getvalue().encode(), "g.csv", mapping,
                             scales=SCALES).statements
    assert [line.amount_minor for line in statement.lines] == amounts
    assert sum(line.amount_minor for line in statement.lines) == sum(amounts)
