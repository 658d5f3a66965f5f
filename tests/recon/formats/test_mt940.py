"""MT940: the samples (ING, ABN AMRO, a German savings bank in Latin-1) read to exact values,
every kind of bad input refused at its message and line, the `mt-940` library agreeing on
amounts and dates (ADR 0021), and generated statements read back with the balances adding up."""

from __future__ import annotations

import hashlib
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import mt940
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fundpool.recon.formats.mt940 import parse_mt940
from fundpool.recon.model import (
    DAY_US,
    Balance,
    BalancesDoNotAddUp,
    FileFormat,
    FileRefused,
    LineKind,
    Statement,
    StatementFile,
    StatementLine,
)

SAMPLES = Path(__file__).parent / "samples"
SCALES = {"EUR": 2, "USD": 2, "USDT": 6}
HOUR_US = 3_600 * 1_000_000


def day_us(year: int, month: int, day: int) -> int:
    return (date(year, month, day) - date(1970, 1, 1)).days * DAY_US


def read(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


# --- the samples -------------------------------------------------------------------------------


def test_an_ing_file_of_two_days_reads_to_exact_values() -> None:
    data = read("ing_two_days.sta")
    first = "P261207000000001/00342"
    second = "P261208000000001/00343"
    dec7, dec8 = day_us(2026, 12, 7), day_us(2026, 12, 8)
    assert parse_mt940(data, "ing_two_days.sta", scales=SCALES) == StatementFile(
        name="ing_two_days.sta", format=FileFormat.MT940, message="MT940",
        sha256=hashlib.sha256(data).hexdigest(),
        statements=(
            Statement(
                statement_id=first, account="NL20INGB0001234567", asset="EUR",
                created_at_us=dec7 + 17 * HOUR_US + 30 * 60_000_000,  # 18:30 at +01:00
                opening=Balance(1_250_000, day_us(2026, 12, 6)), closing=Balance(1_124_750, dec7),
                sequence="00342",
                lines=(
                    StatementLine(
                        f"{first}:1", -150_000, "EUR", dec7, dec7,
                        end_to_end_id="FP-PAY-0001-20261207-000000000001",
                        batch_ref="FP-BATCH-20261207-01", bank_ref="8500010001",
                        reference="Invoice 2026-118", counterparty="Jansen Catering B.V.",
                        counterparty_account="NL91ABNA0417164300"),
                    StatementLine(
                        f"{first}:2", -250, "EUR", dec7, dec7, kind=LineKind.CHARGE,
                        bank_ref="8500010002",
                        reference="Kosten zakelijk betalingsverkeer 2026-11"),
                    StatementLine(
                        f"{first}:3", 25_000, "EUR", dec7, dec7, kind=LineKind.RETURN,
                        end_to_end_id="FP-PAY-0000-20261205", bank_ref="8500010003",
                        reference="Returned: account closed", counterparty="De Vries Holding",
                        counterparty_account="NL44RABO0123456789", reason="AC04"),
                )),
            Statement(
                statement_id=second, account="NL20INGB0001234567", asset="EUR",
                created_at_us=dec8, opening=Balance(1_124_750, dec7),
                closing=Balance(1_805_000, dec8), sequence="00343",
                lines=(
                    StatementLine(f"{second}:1", 250, "EUR", dec8, dec8,
                                  kind=LineKind.REVERSAL, bank_ref="8500020001",
                                  reference="Terugboeking kosten 2026-11"),
                    StatementLine(
                        f"{second}:2", 1_000_000, "EUR", dec8, dec8,
                        end_to_end_id="DEP-7781",  # /EREF/NOTPROVIDED: the :61: reference
                        bank_ref="8500020002", reference="RF18539007547034",
                        counterparty="Nordwind GmbH",
                        counterparty_account="DE89370400440532013000"),
                    StatementLine(
                        f"{second}:3", -320_000, "EUR", dec8, dec8,
                        end_to_end_id="FP-PAY-0002", bank_ref="8500020003",
                        reference="Payout FP-PAY-0002",
                        counterparty="Oak & Ash Ltd"),  # BENM, the payee: not ORDP, the pool
                )),
        ))


def test_abn_amro_banners_and_a_repeated_reference_give_two_statements() -> None:
    parsed = parse_mt940(read("abnamro_two_days.sta"), "abn.sta", scales=SCALES)
    first, second = parsed.statements
    # ABN AMRO writes the same :20: every day: the :28: number tells the days apart.
    assert (first.statement_id, second.statement_id) == ("ABN AMRO BANK NV/34201/1",
                                                         "ABN AMRO BANK NV/34202/1")
    assert first.account == "517852257"  # no IBAN: kept as written
    assert second.closing == Balance(-2_322, day_us(2026, 12, 8))  # overdrawn: D
    kpn, deposit = first.lines
    assert (kpn.amount_minor, kpn.kind, kpn.end_to_end_id) == (-900, LineKind.OTHER, None)
    # Its first line is 65 characters, cut mid-reference: joined without a space.
    assert kpn.reference == ("GIRO   428428 KPN - DIGITENNE    BETALINGSKENM.  "
                             "00000004218865950503335")
    assert (deposit.amount_minor, deposit.end_to_end_id, deposit.reference,
            deposit.counterparty, deposit.counterparty_account) == (
        125_000, None, "Factuur 2026-0042 deposit FP-DEP-9", "Bakkerij de Korenbloem",
        "NL39RABO0300065264")
    payout, charge = second.lines
    assert (payout.amount_minor, payout.end_to_end_id, payout.counterparty) == (
        -450_000, "FP-PAY-0099", "Stichting Groen")
    # A short line ends where the bank ended it: joined with a space.
    assert (charge.amount_minor, charge.kind, charge.reference) == (
        -50, LineKind.CHARGE, "KOSTEN SEPA OVERBOEKING PERIODE 12-2026")


def test_a_latin_1_file_with_subfields_and_an_entry_in_the_next_year() -> None:
    data = read("sparkasse_latin1.sta")
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    (statement,) = parse_mt940(data, "spk.sta", scales=SCALES).statements
    assert (statement.statement_id, statement.account) == ("STARTUMSE/00012/001",
                                                           "10010010/1234567890")
    debit, credit = statement.lines
    assert debit == StatementLine(
        "STARTUMSE/00012/001:1", -4_500, "EUR",
        booked_at_us=day_us(2027, 1, 2),  # entry 0102 after value date 31 December 2026
        value_at_us=day_us(2026, 12, 31), kind=LineKind.OTHER, end_to_end_id="FP-PAY-0777",
        reference="Stromabschlag Dezember 2026", counterparty="Stadtwerke Müller GmbH",
        counterparty_account="DE89370400440532013000")
    assert (credit.amount_minor, credit.reference, credit.counterparty) == (
        50_000, "Rückzahlung Kaution", "Jürgen Weiß")
    assert statement.closing == Balance(145_500, day_us(2027, 1, 2))


@pytest.mark.parametrize("sample", ["ing_two_days.sta", "abnamro_two_days.sta",
                                    "sparkasse_latin1.sta"])
def test_the_mt940_library_reads_the_same_amounts_and_dates(sample: str) -> None:
    """ADR 0021: the library is the oracle. With every fix of its `Options` on it must agree
    on every signed amount and date of the samples."""
    data = read(sample)
    theirs = mt940.parse_statements(data.decode("latin-1") if sample.endswith("latin1.sta")
                                    else data.decode(), options=mt940.Options.all())
    ours = parse_mt940(data, sample, scales=SCALES).statements
    assert len(theirs) == len(ours)
    for their_statement, statement in zip(theirs, ours, strict=True):
        expected = [(int(t.data["amount"].amount.scaleb(2)),
                     day_us(*t.data["date"].timetuple()[:3]),
                     day_us(*t.data["entry_date"].timetuple()[:3])) for t in their_statement]
        assert expected == [(line.amount_minor, line.value_at_us, line.booked_at_us)
                            for line in statement.lines]
        closing = their_statement.data["final_closing_balance"].amount.amount
        assert statement.closing is not None
        assert int(Decimal(closing).scaleb(2)) == statement.closing.amount_minor


def test_the_created_time_and_the_iban_with_its_currency() -> None:
    text = (":20:R\n:25:NL20INGB0001234567 EUR\n:13D:2612072359-0500\n"
            ":60F:C261206EUR1,\n:62F:C261207EUR1,\n")
    (statement,) = parse_mt940(text.encode(), "f.sta", scales=SCALES).statements
    assert statement.account == "NL20INGB0001234567"
    assert statement.created_at_us == day_us(2026, 12, 8) + 4 * HOUR_US + 59 * 60_000_000
    assert statement.opening == Balance(100, day_us(2026, 12, 6))  # "1," is 1.00
    assert statement.lines == ()
    # A suffix is only dropped from a valid IBAN; an account number keeps every character.
    (kept,) = parse_mt940(text.replace("NL20INGB0001234567 EUR", "NL21INGB0001234567EUR")
                          .encode(), "f.sta", scales=SCALES).statements
    assert kept.account == "NL21INGB0001234567EUR"


def test_subfields_ordering_and_beneficiary_parties_follow_the_direction() -> None:
    details = "/ORDP//NAME/Payer Ltd/BENM//NAME/Payee Ltd/ID/X1//REMI/USTD//r/"
    text = (":20:R\n:25:A\n:60F:C261206EUR0,\n"
            f":61:261207C1,00NTRFNONREF\n:86:{details}\n"
            f":61:261207D1,00NTRFNONREF\n:86:{details}\n:62F:C261207EUR0,\n")
    credit, debit = parse_mt940(text.encode(), "f.sta", scales=SCALES).statements[0].lines
    assert (credit.counterparty, debit.counterparty) == ("Payer Ltd", "Payee Ltd")
    assert credit.booked_at_us == credit.value_at_us == day_us(2026, 12, 7)  # no entry date


# --- refusals ----------------------------------------------------------------------------------

VALID = [
    ":20:REF1",  # 1
    ":25:NL20INGB0001234567",
    ":28C:1",
    ":60F:C261206EUR100,00",
    ":61:2612071207D10,00NTRFNONREF",  # 5
    ":86:/REMI/USTD//one/",
    ":62F:C261207EUR90,00",
    "-",
    ":20:REF2",
    ":25:NL20INGB0001234567",  # 10
    ":28C:2",
    ":60F:C261207EUR90,00",
    ":61:2612081208C5,00NTRFNONREF",
    ":62F:C261208EUR95,00",
    "-",  # 15
]


def with_line(number: int, text: str) -> bytes:
    lines = list(VALID)
    lines[number - 1] = text
    return ("\r\n".join(lines) + "\r\n").encode()


def test_the_valid_base_reads() -> None:
    parsed = parse_mt940(with_line(1, VALID[0]), "base.sta", scales=SCALES)
    assert [s.statement_id for s in parsed.statements] == ["REF1/1", "REF2/2"]
    assert [line.amount_minor for s in parsed.statements for line in s.lines] == [-1_000, 500]


@pytest.mark.parametrize(("number", "text", "place", "expected"), [
    (10, ":21:RELATED", "message 2, line 14", ":25:"),  # no :25:
    (12, ":21:RELATED", "message 2, line 13", ":60F:"),  # a line, and no opening before it
    (14, ":21:RELATED", "message 2, line 14", ":62F:"),  # no closing
    (9, ":21:REF2", "message 2, line 9", ":20:"),  # a message that does not start with :20:
])
def test_a_missing_field_is_refused_at_its_message(number: int, text: str, place: str,
                                                   expected: str) -> None:
    with pytest.raises(FileRefused) as refused:
        parse_mt940(with_line(number, text), "bad.sta", scales=SCALES)
    assert type(refused.value) is FileRefused
    assert refused.value.facts["file"] == "bad.sta"
    assert refused.value.facts["place"] == place
    assert refused.value.facts["expected"] == expected
    assert refused.value.facts["encoding"] == "utf-8"


@pytest.mark.parametrize(("number", "text", "place", "why"), [
    (13, ":61:2612081208C5,0,0NTRFNONREF", "message 2, line 13", "one ',' decimal mark"),
    (13, ":61:2612081208C5.00NTRFNONREF", "message 2, line 13", "value date (YYMMDD)"),
    (13, ":61:2612081208C5,001NTRFNONREF", "message 2, line 13", "more decimals"),
    (13, ":61:2613081208C5,00NTRFNONREF", "message 2, line 13", "not a date"),
    (13, ":61:2612081308C5,00NTRFNONREF", "message 2, line 13", "entry date"),
    (12, ":60F:C261207GBP90,00", "message 2, line 12", "not one this pool holds"),
    (12, ":60F:X261207EUR90,00", "message 2, line 12", "a mark (C or D)"),
    (14, ":62F:C261208USD95,00", "message 2, line 14", "opening in EUR"),
    (11, ":99:SOMETHING", "message 2, line 11", "not one of an MT940 message"),
    (11, "stray text", "message 2, line 11", "outside any field"),
    (11, ":25:NL20INGB0001234567", "message 2, line 11", "a second :25:"),
    (11, ":60M:C261207EUR90,00", "message 2, line 12", "after the opening balance"),
    (15, ":61:2612081208C5,00NTRFNONREF", "message 2, line 15", "after the closing"),
    (9, ":20:", "message 2, line 9", "is empty"),
    (11, ":13D:2612071830", "message 2, line 11", ":13D: is"),
])
def test_bad_input_is_refused_at_its_line(number: int, text: str, place: str,
                                          why: str) -> None:
    with pytest.raises(FileRefused) as refused:
        parse_mt940(with_line(number, text), "bad.sta", scales=SCALES)
    assert type(refused.value) is FileRefused
    assert refused.value.facts["place"] == place
    assert why in refused.value.detail


def test_too_many_decimals_says_why_and_what() -> None:
    with pytest.raises(FileRefused) as refused:
        parse_mt940(with_line(13, ":61:2612081208C5,001NTRFNONREF"), "bad.sta", scales=SCALES)
    assert refused.value.facts["why"] == "too_many_decimals"
    assert refused.value.facts["found"] == "5.001"


def test_balances_that_do_not_add_up_are_refused_with_the_figures() -> None:
    with pytest.raises(BalancesDoNotAddUp) as refused:
        parse_mt940(with_line(14, ":62F:C261208EUR96,00"), "bad.sta", scales=SCALES)
    facts = refused.value.facts
    assert (facts["place"], facts["statement_id"]) == ("message 2, line 14", "REF2/2")
    assert (facts["opening_minor"], facts["lines_minor"], facts["closing_minor"],
            facts["difference_minor"]) == (9_000, 500, 9_600, 100)
    assert refused.value.code == "balances_do_not_add_up"


def test_message_one_being_valid_returns_nothing_of_a_file_refused_in_message_two() -> None:
    data = with_line(13, ":61:2612081208C5,0,0NTRFNONREF")
    first_message_only = b"\r\n".join(data.split(b"\r\n")[:8]) + b"\r\n"
    assert len(parse_mt940(first_message_only, "ok.sta", scales=SCALES).statements) == 1
    with pytest.raises(FileRefused):
        parse_mt940(data, "bad.sta", scales=SCALES)


def test_the_encoding_read_is_a_fact_of_every_refusal() -> None:
    data = with_line(11, ":28C:2 é").replace(b"\xc3\xa9", b"\xe9")  # é in Latin-1
    with pytest.raises(FileRefused) as refused:
        parse_mt940(data.replace(b"EUR95,00", b"EUR96,00"), "latin.sta", scales=SCALES)
    assert refused.value.facts["encoding"] == "latin-1"


@pytest.mark.parametrize(("data", "place"), [
    (b":20:R\n:25:A\x00B\n", "byte 11"),  # a NUL: a binary file given by mistake
    (b"\xef\xbb\xbf:20:R\n\x07", "byte 9"),  # the byte-order mark counts as bytes
    (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n\x01\x02", "byte 15"),  # read as Latin-1
])
def test_a_file_that_is_not_text_is_refused_at_its_byte(data: bytes, place: str) -> None:
    with pytest.raises(FileRefused) as refused:
        parse_mt940(data, "bin.sta", scales=SCALES)
    assert refused.value.facts["place"] == place
    assert "not text" in refused.value.detail


@pytest.mark.parametrize(("data", "place"), [
    (b"Datum;Bedrag\n2026-12-07;1,00\n", "line 1"),
    (b":25:NL20INGB0001234567\n:20:R\n", "message 1, line 1"),
    (b"", "line 1"),
])
def test_a_file_without_a_message_is_refused(data: bytes, place: str) -> None:
    with pytest.raises(FileRefused) as refused:
        parse_mt940(data, "none.sta", scales=SCALES)
    assert refused.value.facts["place"] == place


# --- generated statements ----------------------------------------------------------------------

SIGN = {"C": 1, "RD": 1, "D": -1, "RC": -1}
FIRST_DAY = date(2026, 11, 20)
lines_strategy = st.lists(st.tuples(st.sampled_from(sorted(SIGN)),
                                    st.integers(0, 10**13), st.integers(0, 60)), max_size=30)


def swift_amount(minor: int) -> str:
    return f"{abs(minor) // 100},{abs(minor) % 100:02d}"


def balance(tag: str, minor: int, day: date) -> str:
    return f":{tag}:{'C' if minor >= 0 else 'D'}{day:%y%m%d}EUR{swift_amount(minor)}"


def write(opening_minor: int, lines: list[tuple[str, int, int]], closing_minor: int) -> bytes:
    out = [":20:GEN", ":25:NL20INGB0001234567", balance("60F", opening_minor, FIRST_DAY)]
    for mark, minor, offset in lines:
        value = FIRST_DAY + timedelta(days=offset)
        out.append(f":61:{value:%y%m%d%m%d}{mark}{swift_amount(minor)}NTRFNONREF")
    out.append(balance("62F", closing_minor, FIRST_DAY + timedelta(days=61)))
    return "\r\n".join(out).encode()


@given(opening_minor=st.integers(-10**13, 10**13), lines=lines_strategy)
def test_generated_lines_read_back_with_their_signs(opening_minor: int,
                                                    lines: list[tuple[str, int, int]]) -> None:
    signed = [SIGN[mark] * minor for mark, minor, _ in lines]
    closing_minor = opening_minor + sum(signed)
    (statement,) = parse_mt940(write(opening_minor, lines, closing_minor), "g.sta",
                               scales=SCALES).statements
    assert [line.amount_minor for line in statement.lines] == signed
    assert [line.value_at_us for line in statement.lines] == [
        day_us(2026, 11, 20) + offset * DAY_US for _, _, offset in lines]
    assert statement.opening is not None
    assert statement.closing is not None
    assert (statement.opening.amount_minor, statement.closing.amount_minor) == (
        opening_minor, closing_minor)
    assert statement.opening.amount_minor + sum(signed) == statement.closing.amount_minor


@given(opening_minor=st.integers(-10**13, 10**13), lines=lines_strategy,
       error_minor=st.integers(-10**6, 10**6).filter(bool))
def test_a_closing_balance_off_by_any_amount_is_refused(
        opening_minor: int, lines: list[tuple[str, int, int]], error_minor: int) -> None:
    closing_minor = opening_minor + sum(SIGN[m] * minor for m, minor, _ in lines)
    with pytest.raises(BalancesDoNotAddUp) as refused:
        parse_mt940(write(opening_minor, lines, closing_minor + error_minor), "g.sta",
                    scales=SCALES)
    assert refused.value.facts["difference_minor"] == error_minor


words = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,&",
                min_size=1, max_size=14)


@given(st.lists(words, min_size=1, max_size=40).map(" ".join))
def test_free_text_wrapped_at_65_characters_reads_back_whole(text: str) -> None:
    chunks = [text[i:i + 65] for i in range(0, len(text), 65)]
    data = "\n".join([":20:W", ":25:A", ":60F:C261206EUR1,00",
                      ":61:261207C0,NMSCNONREF", ":86:" + chunks[0], *chunks[1:],
                      ":62F:C261207EUR1,00"]).encode()
    (line,) = parse_mt940(data, "w.sta", scales=SCALES).statements[0].lines
    assert line.reference == text
