"""Batch payout files: a clean file gives exactly the payouts it lists; every wrong row says
every thing wrong with it; a file that cannot be read raises one stable code; no bytes crash."""

from __future__ import annotations

import codecs
import csv
import io
import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fundpool.core.errors import FundpoolError
from fundpool.core.ledger.model import check_idempotency_key
from fundpool.core.money import AMOUNT_MAX_MINOR, format_amount
from fundpool.payments.csv_batch import (
    CELL_LENGTH_MAX,
    PAYOUT_CSV_BYTES_MAX,
    PAYOUT_CSV_ROWS_MAX,
    CsvBadEncoding,
    CsvBadHeader,
    CsvEmpty,
    CsvMalformed,
    CsvNulByte,
    CsvTooLarge,
    InvalidPayoutFile,
    PayoutFile,
    PayoutRow,
    export_csv_cell,
    parse_payout_csv,
)
from fundpool.payments.model import PaymentKind, PaymentRequest
from fundpool.pool.config import ChannelKind, PoolConfig, load_config

ROOT = Path(__file__).resolve().parents[2]
config = load_config(ROOT / "examples" / "pool.toml")
pool = config.pool()

HEADER = ("payee", "account", "amount", "asset", "reference", "channel")
TEXT_COLUMNS = ("payee", "account", "reference", "channel")
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
IBAN = "DE89370400440532013000"
ETH_ADDRESS = "0x52908400098527886E0F7030069857D2E4169EE7"


def cells(**values: str) -> list[str]:
    """A row in HEADER order: a valid USD payout unless told otherwise."""
    row = {"payee": "Bob Smith", "account": IBAN, "amount": "12.50", "asset": "USD",
           "reference": "inv-1", "channel": ""}
    row.update(values)
    return [row[column] for column in HEADER]


def make(
    *rows: Sequence[str], header: Sequence[str] = HEADER, newline: str = "\n"
) -> bytes:
    buffer = io.StringIO()
    # Python 3.11's writer leaves a lone CR unquoted unless the line terminator has one.
    quote_all = any("\r" in cell for row in rows for cell in row)
    writer = csv.writer(
        buffer, lineterminator=newline, quoting=csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL
    )
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


def parse(data: bytes, on: PoolConfig = pool, **bounds: int) -> PayoutFile:
    return parse_payout_csv(data, config, on, **bounds)


def only_row(data: bytes, on: PoolConfig = pool) -> PayoutRow:
    (row,) = parse(data, on).rows
    return row


def codes(row: PayoutRow) -> list[tuple[str | None, str]]:
    return [(error.column, error.code.value) for error in row.errors]


def refused(data: bytes, **bounds: int) -> InvalidPayoutFile:
    with pytest.raises(InvalidPayoutFile) as caught:
        parse(data, **bounds)
    return caught.value


# --- a clean file ------------------------------------------------------------------------------


def test_a_clean_file_gives_exactly_its_payouts() -> None:
    data = make(
        cells(),
        cells(payee="Zoë Müller", amount="100", asset="EUR", reference="inv-2", channel="sepa"),
        cells(payee="王小明", account=ETH_ADDRESS, amount="0.000000000000000001", asset="ETH",
              reference="inv-3", channel="arb-l2"),
        cells(payee="O'Brien, \"Ltd\"", amount="2500.5", asset="USDT", reference="inv-4"),
    )
    parsed = parse(data)
    assert (parsed.valid_count, parsed.invalid_count) == (4, 0)
    assert [row.line for row in parsed.rows] == [2, 3, 4, 5]
    assert [row.request for row in parsed.rows] == [
        PaymentRequest(PaymentKind.PAYOUT, "USD", 1250, None, None, "Bob Smith", "inv-1",
                       {"account": IBAN, "payee": "Bob Smith"}, IBAN),
        PaymentRequest(PaymentKind.PAYOUT, "EUR", 10000, "sepa", None, "Zoë Müller", "inv-2",
                       {"account": IBAN, "payee": "Zoë Müller"}, IBAN),
        PaymentRequest(PaymentKind.PAYOUT, "ETH", 1, "arb-l2", None, "王小明", "inv-3",
                       {"account": ETH_ADDRESS, "payee": "王小明"}, ETH_ADDRESS),
        PaymentRequest(PaymentKind.PAYOUT, "USDT", 2_500_500_000, None, None, "O'Brien, \"Ltd\"",
                       "inv-4", {"account": IBAN, "payee": "O'Brien, \"Ltd\""}, IBAN),
    ]
    assert parsed.requests() == [(row.request, row.idempotency_key) for row in parsed.rows]


def test_keys_are_valid_deterministic_and_tied_to_the_reference() -> None:
    data = make(cells(), cells(reference="inv-2"))
    first, again = parse(data), parse(data)
    assert first == again  # re-uploading the same bytes gives the same keys: nothing new
    keys = [row.idempotency_key for row in first.rows]
    assert all(check_idempotency_key(key) == key for key in keys)
    assert len(set(keys)) == 2
    # A corrected file keeps the keys of the rows it shares with the first (by reference), so
    # re-uploading it does not pay those rows twice; a new reference is a new key.
    other = parse(data + make(cells(reference="inv-3"))[len(",".join(HEADER)) + 1:])
    assert other.sha256 != first.sha256
    assert [row.idempotency_key for row in other.rows][:2] == keys
    assert other.rows[2].idempotency_key not in keys
    changed = parse(make(cells(amount="99.00"), cells(reference="inv-2")))
    assert [row.idempotency_key for row in changed.rows] == keys


def test_the_report_is_json_safe_and_says_every_row() -> None:
    data = make(cells(), cells(amount="1.005", reference="inv-2"))
    report = parse(data).report()
    assert json.loads(json.dumps(report)) == report
    assert report["valid_count"] == 1
    assert report["invalid_count"] == 1
    assert report["rows"] == [
        {"line": 2, "ok": True, "errors": []},
        {"line": 3, "ok": False, "errors": [{
            "column": "amount", "code": "bad_amount", "cause": "too_many_decimals",
            "message": "too_many_decimals: the amount has more decimals than the asset's scale "
                       "(asset='USD', amount='1.005', scale=2)",
        }]},
    ]


@pytest.mark.parametrize(
    "header",
    [
        ("PAYEE", " Account ", "Amount", "asset ", "Reference", "CHANNEL"),
        ("payee", "address", "amount", "asset", "reference", "channel"),
        ("Address", "Reference", "Channel", "Asset", "Amount", "Payee"),
    ],
)
def test_header_names_ignore_case_spaces_and_order(header: tuple[str, ...]) -> None:
    canonical = [{"address": "account"}.get(h.strip().lower(), h.strip().lower())
                 for h in header]
    values = dict(zip(HEADER, cells(channel="bank-a"), strict=True))
    row = only_row(make([values[c] for c in canonical], header=header))
    assert row.request == PaymentRequest(
        PaymentKind.PAYOUT, "USD", 1250, "bank-a", None, "Bob Smith", "inv-1",
        {"account": IBAN, "payee": "Bob Smith"}, IBAN,
    )


def test_the_channel_column_is_optional() -> None:
    row = only_row(make(cells()[:5], header=HEADER[:5]))
    assert row.request is not None
    assert row.request.channel is None


def test_spaces_around_values_are_dropped() -> None:
    row = only_row(make(cells(payee="  Bob  ", amount=" 12.50 ", asset=" USD", channel=" rtp ")))
    assert row.request is not None
    assert (row.request.counterparty, row.request.amount_minor, row.request.channel) == (
        "Bob", 1250, "rtp"
    )


def test_blank_lines_are_skipped_and_lines_are_physical() -> None:
    header = ",".join(HEADER)
    text = (
        f"{header}\n\nBob,{IBAN},1.00,USD,a,\n\n\n"
        f"\"two\nlines\",{IBAN},1.00,USD,b,\nAl,x,1,USD,c,\n"
    )
    rows = parse(text.encode()).rows
    assert [row.line for row in rows] == [3, 6, 8]
    assert codes(rows[1]) == [("payee", "bad_text")]  # a line break inside a name is refused


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_lf_and_crlf_give_the_same_rows(newline: str) -> None:
    data = make(cells(), cells(reference="inv-2", channel="card-acq"), newline=newline)
    assert [row.request for row in parse(data).rows] == [
        row.request for row in parse(make(cells(), cells(reference="inv-2", channel="card-acq")))
        .rows
    ]
    assert parse(data[: -len(newline)]).valid_count == 2  # no line ending at the end is fine


@pytest.mark.parametrize(
    ("bom", "encoding"),
    [
        (b"", "utf-8"),
        (codecs.BOM_UTF8, "utf-8"),
        (codecs.BOM_UTF16_LE, "utf-16-le"),
        (codecs.BOM_UTF16_BE, "utf-16-be"),
    ],
)
def test_utf8_with_or_without_bom_and_utf16_with_bom(bom: bytes, encoding: str) -> None:
    text = make(cells(payee="Zoë 王 🙂"), cells(reference="inv-2"), newline="\r\n").decode()
    parsed = parse(bom + text.encode(encoding))
    assert parsed.valid_count == 2
    assert [row.line for row in parsed.rows] == [2, 3]
    assert parsed.rows[0].request is not None
    assert parsed.rows[0].request.counterparty == "Zoë 王 🙂"


# --- row errors --------------------------------------------------------------------------------


@pytest.mark.parametrize("column", ["payee", "account", "amount", "asset", "reference"])
@pytest.mark.parametrize("empty", ["", "   "])
def test_an_empty_required_cell_is_missing_value(column: str, empty: str) -> None:
    row = only_row(make(cells(**{column: empty})))
    assert codes(row) == [(column, "missing_value")]
    assert row.request is None
    assert not row.ok


@pytest.mark.parametrize("column", TEXT_COLUMNS)
@pytest.mark.parametrize("prefix", FORMULA_PREFIXES)
def test_formula_injection_is_refused_for_every_prefix_and_text_column(
    column: str, prefix: str
) -> None:
    value = f"{prefix}HYPERLINK(\"http://evil\",\"x\")"
    row = only_row(make(cells(**{column: value})))
    assert codes(row) == [(column, "formula_injection")]
    assert "refused" in row.errors[0].message


@pytest.mark.parametrize("value", ["  =1+1", " @SUM(A1)", "-", "+44 20 7946 0000"])
def test_formula_injection_after_spaces_and_plain_looking_values(value: str) -> None:
    assert codes(only_row(make(cells(payee=value)))) == [("payee", "formula_injection")]


def test_formula_characters_inside_a_value_are_fine() -> None:
    row = only_row(make(cells(payee="Smith-Jones = Partners + Co @ HQ", reference="a-1")))
    assert row.ok


@pytest.mark.parametrize(
    "value", ["Bob\x01", "Bob\x7f", "Bob\x85", "Bob\u2028", "Bob\u202egnp.exe", "a\u2066b", "a\nb",
              "a\tb", "a\rb"]
)
@pytest.mark.parametrize("column", TEXT_COLUMNS)
def test_control_characters_are_bad_text(column: str, value: str) -> None:
    row = only_row(make(cells(**{column: value})))
    assert codes(row) == [(column, "bad_text")]
    assert "U+" in row.errors[0].message


@pytest.mark.parametrize("column", HEADER)
def test_a_cell_longer_than_the_limit_is_bad_text(column: str) -> None:
    row = only_row(make(cells(**{column: "a" * (CELL_LENGTH_MAX + 1)})))
    assert codes(row) == [(column, "bad_text")]
    assert str(CELL_LENGTH_MAX) in row.errors[0].message


def test_a_cell_of_exactly_the_limit_is_fine() -> None:
    assert only_row(make(cells(payee="é" * CELL_LENGTH_MAX))).ok


@pytest.mark.parametrize(
    ("amount", "asset", "cause"),
    [
        ("1.005", "USD", "too_many_decimals"),
        ("0.0000001", "USDT", "too_many_decimals"),
        ("abc", "USD", "invalid_amount"),
        ("1e3", "USD", "invalid_amount"),
        ("1,000.00", "USD", "invalid_amount"),
        ("+5", "USD", "invalid_amount"),
        (".5", "USD", "invalid_amount"),
        ("12.50 USD", "USD", "invalid_amount"),
        ("٣", "USD", "invalid_amount"),  # an Arabic-Indic digit is not a decimal digit here
        ("-5.00", "USD", "negative_amount"),
        (str(AMOUNT_MAX_MINOR), "USD", "amount_overflow"),
        ("0", "USD", "zero_amount"),
        ("0.000", "EUR", "zero_amount"),
        ("9" * 81, "USD", "invalid_amount"),
    ],
)
def test_a_bad_amount_says_why(amount: str, asset: str, cause: str) -> None:
    channel = "sepa" if asset == "EUR" else ""
    row = only_row(make(cells(amount=amount, asset=asset, channel=channel)))
    assert codes(row) == [("amount", "bad_amount")]
    assert row.errors[0].cause == cause
    if cause != "zero_amount":
        assert row.errors[0].message.startswith(cause)


def test_trailing_zeros_beyond_the_scale_are_exact_and_fine() -> None:
    row = only_row(make(cells(amount="12.500000")))
    assert row.request is not None
    assert row.request.amount_minor == 1250


@pytest.mark.parametrize("asset", ["XYZ", "usd", "BTC", "=USD"])
def test_an_asset_no_channel_carries_is_unknown(asset: str) -> None:
    assert codes(only_row(make(cells(asset=asset)))) == [("asset", "unknown_asset")]


def test_an_asset_declared_but_not_carried_by_the_pool_is_unknown() -> None:
    usd_only = replace(pool, channels=("bank-a",))
    row = only_row(make(cells(asset="EUR")), usd_only)
    assert codes(row) == [("asset", "unknown_asset")]


def test_with_an_unknown_asset_what_no_asset_accepts_is_still_said() -> None:
    row = only_row(make(cells(asset="XYZ", amount="abc")))
    assert codes(row) == [("amount", "bad_amount"), ("asset", "unknown_asset")]
    # 10**30 overflows at 18 decimals but fits an asset of scale 2: not said.
    assert codes(only_row(make(cells(asset="XYZ", amount="1" + "0" * 30)))) == [
        ("asset", "unknown_asset")
    ]


@pytest.mark.parametrize("channel", ["nope", "BANK-A", "bank-ax"])
def test_a_channel_the_pool_does_not_have_is_unknown(channel: str) -> None:
    assert codes(only_row(make(cells(channel=channel)))) == [("channel", "unknown_channel")]


def test_a_channel_of_the_config_outside_the_pool_is_unknown() -> None:
    row = only_row(make(cells(channel="rtp")), replace(pool, channels=("bank-a", "book")))
    assert codes(row) == [("channel", "unknown_channel")]


def test_a_channel_that_does_not_carry_the_asset() -> None:
    row = only_row(make(cells(asset="USD", channel="sepa")))
    assert codes(row) == [("channel", "channel_lacks_asset")]
    assert "EUR" in row.errors[0].message


@pytest.mark.parametrize(
    ("amount", "channel"),
    [("0.99", "bank-a"), ("5000000.01", "bank-a"), ("0.49", "card-acq"), ("50000.01", "card-acq")],
)
def test_an_amount_outside_the_named_channels_limits(amount: str, channel: str) -> None:
    row = only_row(make(cells(amount=amount, channel=channel)))
    assert codes(row) == [("amount", "amount_outside_limits")]
    assert channel in row.errors[0].message


@pytest.mark.parametrize(("amount", "channel"), [("1.00", "bank-a"), ("5000000.00", "bank-a")])
def test_the_limits_are_inclusive(amount: str, channel: str) -> None:
    assert only_row(make(cells(amount=amount, channel=channel))).ok


def test_without_a_channel_the_amount_must_fit_one_of_the_pools_channels() -> None:
    no_book = replace(pool, channels=("bank-a", "rtp", "card-acq", "sepa"))
    row = only_row(make(cells(amount="5000000.01")), no_book)
    assert codes(row) == [("amount", "amount_outside_limits")]
    assert "bank-a" in row.errors[0].message
    assert "card-acq" in row.errors[0].message
    assert only_row(make(cells(amount="5000000.00")), no_book).ok  # bank-a takes it
    assert only_row(make(cells(amount="0.01")), no_book).ok  # rtp takes it
    # The example's book channel carries every asset without limits, but never a payout: it
    # is no way round the payout rails' limits.
    assert codes(only_row(make(cells(amount="5000000.01")))) == [
        ("amount", "amount_outside_limits")
    ]
    assert codes(only_row(make(cells(channel="book")))) == [("channel", "unknown_channel")]


def test_a_reference_used_again_is_a_duplicate_on_the_later_rows() -> None:
    parsed = parse(make(cells(), cells(reference="inv-2"), cells(), cells(amount="x")))
    assert [codes(row) for row in parsed.rows] == [
        [],
        [],
        [("reference", "duplicate_reference")],
        [("amount", "bad_amount"), ("reference", "duplicate_reference")],
    ]
    assert "line 2" in parsed.rows[2].errors[0].message


def test_references_are_compared_exactly_after_spaces() -> None:
    parsed = parse(make(cells(reference="INV-1"), cells(reference="inv-1"),
                        cells(reference=" inv-1 ")))
    assert [codes(row) for row in parsed.rows] == [[], [], [("reference", "duplicate_reference")]]


@pytest.mark.parametrize("count", [1, 5, 7])
def test_the_wrong_number_of_cells_is_a_row_error(count: int) -> None:
    row_cells = [*cells(), "extra"][:count]
    row = only_row(make(row_cells))
    assert codes(row) == [(None, "wrong_cell_count")]
    assert str(count) in row.errors[0].message


def test_a_row_reports_every_error_in_column_order() -> None:
    row = only_row(make(["", "=cmd|' /C calc'!A0", "1.005", "USD", "r\x07", "sepa"]))
    assert codes(row) == [
        ("payee", "missing_value"),
        ("account", "formula_injection"),
        ("amount", "bad_amount"),
        ("reference", "bad_text"),
        ("channel", "channel_lacks_asset"),
    ]
    row = only_row(make(["@x\x01", "\t", "-1", "XYZ", "", "nope"]))
    assert codes(row) == [
        ("payee", "formula_injection"),
        ("payee", "bad_text"),
        ("account", "formula_injection"),
        ("amount", "bad_amount"),
        ("asset", "unknown_asset"),
        ("reference", "missing_value"),
        ("channel", "unknown_channel"),
    ]


def test_bad_rows_do_not_stop_good_ones() -> None:
    parsed = parse(make(cells(amount="x"), cells(reference="inv-2"), ["too", "few"]))
    assert [row.ok for row in parsed.rows] == [False, True, False]
    assert (parsed.valid_count, parsed.invalid_count) == (1, 2)
    assert [key for _, key in parsed.requests()] == [parsed.rows[1].idempotency_key]


# --- file errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "facts"),
    [
        (("payee", "account", "amount", "asset"), {"missing": ["reference"]}),
        (("payee", "amount", "asset", "reference"), {"missing": ["account"]}),
        ((*HEADER, "payee"), {"duplicate": ["payee"]}),
        ((*HEADER, "address"), {"duplicate": ["account"]}),
        ((*HEADER, "Amount "), {"duplicate": ["amount"]}),
        ((*HEADER, "iban"), {"unknown": ["iban"]}),
        ((*HEADER, ""), {"unknown": [""]}),
        (("name", "account", "amount", "asset", "reference", "channel", "channel"),
         {"missing": ["payee"], "duplicate": ["channel"], "unknown": ["name"]}),
    ],
)
def test_a_bad_header_names_the_columns(
    header: tuple[str, ...], facts: dict[str, list[str]]
) -> None:
    error = refused(make(cells()[: len(header)], header=header))
    assert isinstance(error, CsvBadHeader)
    assert error.code == "csv_bad_header"
    assert error.facts["line"] == 1
    for name in ("missing", "duplicate", "unknown"):
        assert error.facts[name] == facts.get(name, [])


def test_a_header_split_by_semicolons_gets_a_hint() -> None:
    error = refused(b"payee;account;amount;asset;reference\nBob;x;1;USD;r\n")
    assert error.code == "csv_bad_header"
    assert "commas" in error.detail


def test_a_data_row_first_is_a_bad_header() -> None:
    assert refused(b"Bob,DE89,12.50,USD,inv-1\n").code == "csv_bad_header"


@pytest.mark.parametrize(
    ("data", "line"),
    [
        (make(cells(payee="Müller")).decode().encode("latin-1"), 2),
        (b"payee,account\n\x80\n", 2),
        (b"\xed\xa0\x80", 1),  # a surrogate encoded in UTF-8 (CESU-8) is not UTF-8
        (b"\xc0\xaf", 1),  # an overlong form
        (b"caf\xc3", 1),  # cut in the middle of a character
        (codecs.BOM_UTF16_LE + "payee\n".encode("utf-16-le") + b"\x00", 2),  # odd length
        (codecs.BOM_UTF16_LE + "a\n".encode("utf-16-le") + b"\x00\xd8b\x00", 2),  # lone surrogate
        (codecs.BOM_UTF16_BE + "a".encode("utf-16-be") + b"\xdc\x00", 1),
    ],
)
def test_bytes_that_do_not_decode_strictly_are_a_bad_encoding(data: bytes, line: int) -> None:
    error = refused(data)
    assert isinstance(error, CsvBadEncoding)
    assert error.code == "csv_bad_encoding"
    assert error.facts["line"] == line


@pytest.mark.parametrize("bom", [codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE])
def test_utf32_is_a_bad_encoding(bom: bytes) -> None:
    encoding = "utf-32-le" if bom == codecs.BOM_UTF32_LE else "utf-32-be"
    assert refused(bom + make(cells()).decode().encode(encoding)).code == "csv_bad_encoding"


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
def test_utf16_without_a_bom_is_refused_for_its_nul_bytes(encoding: str) -> None:
    error = refused(make(cells()).decode().encode(encoding))
    assert isinstance(error, CsvNulByte)
    assert "byte order mark" in error.detail


def test_a_nul_byte_is_refused_with_its_line() -> None:
    data = make(cells(), cells(payee="Bo\x00b", reference="inv-2"))
    error = refused(data)
    assert isinstance(error, CsvNulByte)
    assert error.code == "csv_nul_byte"
    assert (error.facts["line"], error.facts["offset"]) == (3, data.index(b"\x00"))


def test_a_nul_character_in_utf16_is_refused() -> None:
    text = make(cells(payee="Bo\x00b")).decode()
    error = refused(codecs.BOM_UTF16_LE + text.encode("utf-16-le"))
    assert error.code == "csv_nul_byte"
    assert error.facts["line"] == 2


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ('payee,account,amount,asset,reference\nBob,"x,1,USD,r\nAl,y,1,USD,s\n', 2),
        ('payee,account,amount,asset,reference\nBob,"x"y,1,USD,r\n', 2),
        ('payee,account,amount,asset,reference\nBob,x,1,USD,r\nAl,"a"b",1,USD,s\n', 3),
        ('payee,account,amount,asset,reference\nBob,x,1,USD,r\rAl,y,1,USD,s\n', 2),  # lone CR
        ('payee,"account\n', 1),
    ],
)
def test_malformed_quoting_names_the_line(text: str, line: int) -> None:
    error = refused(text.encode())
    assert isinstance(error, CsvMalformed)
    assert error.code == "csv_malformed"
    assert error.facts["line"] == line


def test_too_many_bytes_is_refused_before_anything_else() -> None:
    data = make(cells())
    assert parse(data, bytes_max=len(data)).valid_count == 1
    error = refused(data, bytes_max=len(data) - 1)
    assert isinstance(error, CsvTooLarge)
    assert (error.facts["bytes"], error.facts["limit"]) == (len(data), len(data) - 1)
    # Even bytes that would not decode are refused for their size first.
    error = refused(b"\xff" * (PAYOUT_CSV_BYTES_MAX + 1))
    assert (error.code, error.facts["limit"]) == ("csv_too_large", PAYOUT_CSV_BYTES_MAX)


def test_too_many_rows_is_refused() -> None:
    three = make(cells(reference="a"), cells(reference="b"), cells(reference="c"))
    assert len(parse(three, rows_max=3).rows) == 3
    error = refused(three, rows_max=2)
    assert isinstance(error, CsvTooLarge)
    assert (error.facts["limit"], error.facts["line"]) == (2, 4)


def test_the_default_row_bound() -> None:
    header = ",".join(HEADER).encode() + b"\n"
    row = b"a,b,1,USD,r,\n"
    assert len(parse(header + row * PAYOUT_CSV_ROWS_MAX).rows) == PAYOUT_CSV_ROWS_MAX
    error = refused(header + row * (PAYOUT_CSV_ROWS_MAX + 1))
    assert (error.code, error.facts["limit"]) == ("csv_too_large", PAYOUT_CSV_ROWS_MAX)


def test_a_cell_beyond_what_the_csv_reader_takes_is_too_large() -> None:
    error = refused(make(cells(payee="a" * (csv.field_size_limit() + 1))))
    assert error.code == "csv_too_large"
    assert error.facts["line"] == 2


@pytest.mark.parametrize(
    "data",
    [
        b"",
        codecs.BOM_UTF8,
        codecs.BOM_UTF16_LE,
        b"\n\n\r\n",
        make(),
        make(newline="\r\n") + b"\r\n\n",
        codecs.BOM_UTF16_BE + ",".join(HEADER).encode("utf-16-be"),
    ],
)
def test_an_empty_or_header_only_file_is_empty(data: bytes) -> None:
    error = refused(data)
    assert isinstance(error, CsvEmpty)
    assert error.code == "csv_empty"


def test_file_errors_are_domain_errors_with_stable_codes() -> None:
    classes = [CsvBadEncoding, CsvNulByte, CsvMalformed, CsvBadHeader, CsvTooLarge, CsvEmpty]
    assert all(issubclass(c, InvalidPayoutFile) and issubclass(c, FundpoolError)
               for c in classes)
    assert len({c.code for c in classes}) == len(classes)
    error = refused(b"payee\n")
    assert json.loads(json.dumps(error.to_dict()))["code"] == "csv_bad_header"


# --- export ------------------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", FORMULA_PREFIXES)
def test_export_neutralises_a_formula(prefix: str) -> None:
    assert export_csv_cell(f"{prefix}1+1") == f"'{prefix}1+1"


@pytest.mark.parametrize("value", ["", "Bob", "Smith-Jones", "1.00", "'quoted", "a=b", "é@x"])
def test_export_keeps_a_plain_value(value: str) -> None:
    assert export_csv_cell(value) == value


def test_export_neutralises_after_spaces_and_what_it_exports_is_accepted_back() -> None:
    assert export_csv_cell("  =1+1") == "'  =1+1"
    for prefix in "=+-@":
        exported = export_csv_cell(f"{prefix}Bob")
        assert only_row(make(cells(payee=exported))).ok


# --- properties --------------------------------------------------------------------------------

_CARRIERS = {  # the payout rails of each asset (a book rail carries no payout)
    code: [c for c in config.channels
           if c.id in pool.channels and code in c.assets and c.kind is not ChannelKind.BOOK]
    for code in {a.code for a in config.assets}
}
_SAFE_TEXT = st.text(
    st.characters(
        blacklist_categories=("Cc", "Cs", "Zl", "Zp"),
        blacklist_characters="\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069",
    ),
    min_size=1,
    max_size=40,
).filter(lambda t: t == t.strip(" ") and bool(t) and not t.startswith(FORMULA_PREFIXES))


@st.composite
def _payout(draw: st.DrawFn) -> tuple[list[str], str, int, str | None, str, str]:
    asset = draw(st.sampled_from(config.assets))
    # Within the limits of one payout rail carrying the asset, named in the row or not (a
    # row that names none must fit at least one).
    carrier = draw(st.sampled_from(_CARRIERS[asset.code]))
    limits = carrier.limits_for(asset.code)
    low, high = limits.min_minor, limits.max_minor or AMOUNT_MAX_MINOR
    channel = draw(st.none() | st.just(carrier))
    amount = draw(st.integers(low, high) | st.sampled_from([low, high]))
    text = format_amount(amount, asset.scale)
    if "." in text and draw(st.booleans()):
        text = text.rstrip("0").rstrip(".")
    text += ("." if "." not in text else "") + "0" * draw(st.integers(0, 3))
    text = text.rstrip(".")
    payee, account = draw(_SAFE_TEXT), draw(_SAFE_TEXT)
    row = [payee, account, text, asset.code, "", "" if channel is None else channel.id]
    return row, asset.code, amount, None if channel is None else channel.id, payee, account


@settings(max_examples=150, deadline=None)
@given(
    payouts=st.lists(_payout(), min_size=1, max_size=6),
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "utf-16-be-bom"]),
    newline=st.sampled_from(["\n", "\r\n"]),
)
def test_any_row_of_valid_values_gives_exactly_that_payout(
    payouts: list[tuple[list[str], str, int, str | None, str, str]], encoding: str, newline: str
) -> None:
    rows = []
    for index, (row, *_) in enumerate(payouts):
        row[4] = f"ref-{index}"
        rows.append(row)
    text = make(*rows, newline=newline).decode()
    if encoding == "utf-16-be-bom":
        data = codecs.BOM_UTF16_BE + text.encode("utf-16-be")
    else:
        data = text.encode(encoding)
    parsed = parse(data)
    assert parsed.invalid_count == 0, parsed.report()
    for index, (row, (_, asset, amount, channel, payee, account)) in enumerate(
        zip(parsed.rows, payouts, strict=True)
    ):
        assert row.request == PaymentRequest(
            PaymentKind.PAYOUT, asset, amount, channel, None, payee, f"ref-{index}",
            {"account": account, "payee": payee}, account,
        )


def _read_or_refuse(data: bytes) -> None:
    try:
        parsed = parse(data, bytes_max=4_096, rows_max=16)
    except InvalidPayoutFile as error:
        refusal = error.to_dict()
    else:
        json.dumps(parsed.report())
        assert parsed.valid_count + parsed.invalid_count == len(parsed.rows) > 0
        return
    assert str(json.loads(json.dumps(refusal))["code"]).startswith("csv_")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_arbitrary_bytes_are_read_or_refused_never_a_crash(data: bytes) -> None:
    _read_or_refuse(data)


@settings(max_examples=200, deadline=None)
@given(
    prefix=st.sampled_from([b"", codecs.BOM_UTF8, codecs.BOM_UTF16_LE]),
    body=st.binary(max_size=300) | st.text(max_size=200).map(str.encode),
)
def test_arbitrary_rows_under_a_good_header_are_read_or_refused(prefix: bytes, body: bytes) -> None:
    header = ",".join(HEADER) + "\n"
    if prefix == codecs.BOM_UTF16_LE:
        _read_or_refuse(prefix + header.encode("utf-16-le") + body)
    else:
        _read_or_refuse(prefix + header.encode() + body)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(st.text(max_size=12), max_size=8), max_size=8))
def test_arbitrary_cells_under_a_good_header_are_read_or_refused(
    rows: list[list[str]],
) -> None:
    _read_or_refuse(make(*rows))


def test_the_example_payout_file_is_valid_for_the_example_pool() -> None:
    """examples/payouts.csv, which the README uses, parses without a single row error."""
    data = (Path(__file__).resolve().parents[2] / "examples" / "payouts.csv").read_bytes()
    parsed = parse(data)
    assert (parsed.valid_count, parsed.invalid_count) == (5, 0)
    assert {r.request.asset for r in parsed.rows if r.request is not None} == {
        "USD", "EUR", "USDT", "ETH", "E-CNY"
    }
