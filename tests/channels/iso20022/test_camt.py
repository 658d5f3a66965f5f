"""camt.053 and camt.054: the samples (a German bank's .02 with two accounts, a Nordic bank's
.08 overdrawn, a camt.054 of two advices) read to exact values, line by line: batches,
reversals, charges, pending entries, a return with its reason. What the simulated bank writes
is valid against ISO 20022's schemas and reads back to the values written, for any lines."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import xmlschema
from hypothesis import given
from hypothesis import strategies as st

from fundpool.channels.iso20022.camt import parse_camt, write_camt053, write_camt054
from fundpool.channels.iso20022.errors import MessageNotWritable
from fundpool.recon.model import (
    DAY_US,
    Balance,
    FileFormat,
    LineKind,
    LineStatus,
    Statement,
    StatementLine,
)

HERE = Path(__file__).parent
SAMPLES = HERE / "samples"
SCALES = {"EUR": 2, "USD": 2, "JPY": 0, "BHD": 3}


def day_us(year: int, month: int, day: int) -> int:
    return (date(year, month, day) - date(1970, 1, 1)).days * DAY_US


def moment_us(text: str) -> int:
    moment = datetime.fromisoformat(text).astimezone(UTC)
    return day_us(moment.year, moment.month, moment.day) + (
        (moment.hour * 3600 + moment.minute * 60 + moment.second) * 1_000_000
        + moment.microsecond)


def read(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


JAN5 = day_us(2026, 1, 5)
JAN6 = day_us(2026, 1, 6)


def test_a_german_banks_statement_of_two_accounts_reads_to_exact_values() -> None:
    data = read("camt053_v02_two_accounts.xml")

    parsed = parse_camt(data, "db.xml", scales=SCALES)

    assert (parsed.name, parsed.format, parsed.message) == ("db.xml", FileFormat.CAMT053,
                                                            "camt.053.001.02")
    assert parsed.sha256 == hashlib.sha256(data).hexdigest()
    euro, dollar = parsed.statements
    assert (euro.statement_id, euro.account, euro.asset, euro.sequence) == (
        "2026010500003", "DE89370400440532013000", "EUR", "3")
    assert euro.created_at_us == moment_us("2026-01-05T20:15:04+01:00")
    # OPBD wins over PRCD (the previous day's closing, dated 2 January)
    assert euro.opening == Balance(125_000_00, JAN5)
    assert euro.closing == Balance(121_397_40, JAN5)

    def line(position: int, amount_minor: int, **fields: Any) -> StatementLine:
        plain = StatementLine(f"2026010500003:{position}", amount_minor, "EUR", JAN5, JAN5,
                              bank_ref=f"202601051234567890{position}")
        return replace(plain, **fields)

    assert euro.lines == (
        line(1, 1_250_00, end_to_end_id="INV-2026-0042",
             reference="Rechnung INV-2026-0042 Kunde 77", counterparty="Muster Handels GmbH",
             counterparty_account="DE02120300000000202051"),
        line(2, -4_500_00, batch_ref="PMT-20260105-01", parts=(
            "0194f3a2b7c84e1f9a6d2c3b4e5f6a71", "0194f3a2b7c84e1f9a6d2c3b4e5f6a72",
            "0194f3a2b7c84e1f9a6d2c3b4e5f6a73")),
        line(3, -2_50, kind=LineKind.CHARGE),
        line(4, 800_00, kind=LineKind.RETURN, reason="AC04",
             end_to_end_id="0194f3a2b7c84e1f9a6d2c3b4e5f6a99",
             reference="RETOURE Payout 0194f3a2", counterparty="Delta Consulting AG",
             counterparty_account="AT611904300234573201"),
        line(5, -1_250_00, kind=LineKind.REVERSAL),
        line(6, 300_00, status=LineStatus.PENDING, booked_at_us=JAN6, value_at_us=JAN6,
             end_to_end_id="DEP-7781", counterparty="Epsilon SL"),
        line(7, 99_90, reference="Order 5567", counterparty="Zeta Retail",
             counterparty_account="BE68539007547034"),  # NOTPROVIDED is no end-to-end id
    )
    # the USD account has no Acct/Ccy: its balances say which; SWIFT codes give the kinds
    assert (dollar.statement_id, dollar.account, dollar.asset) == (
        "2026010500004", "0123456789", "USD")
    assert (dollar.opening, dollar.closing) == (Balance(-1_000_00, JAN5),
                                                Balance(3_985_00, JAN5))
    assert [(x.amount_minor, x.kind, x.end_to_end_id, x.counterparty_account)
            for x in dollar.lines] == [
        (5_000_00, LineKind.TRANSFER, "WIRE-2026-001", "987654321"),
        (-15_00, LineKind.CHARGE, None, None)]


def test_a_nordic_banks_version_8_statement_reads_to_exact_values() -> None:
    parsed = parse_camt(read("camt053_v08_overdrawn.xml"), "nordea.xml", scales=SCALES)

    assert parsed.message == "camt.053.001.08"
    (statement,) = parsed.statements
    assert statement.created_at_us == moment_us("2026-01-06T23:30:00+02:00")  # the GrpHdr's
    assert statement.sequence == "17"
    assert statement.opening == Balance(500_00, JAN5)  # PRCD, there being no OPBD
    assert statement.closing == Balance(-180_25, JAN6)  # a DBIT balance is negative
    first, batch, charge, pending = statement.lines
    assert first == StatementLine(
        "FI2112345600000785-20260106:1", 1_000_00, "EUR",
        moment_us("2026-01-06T09:30:00+02:00"), JAN6, end_to_end_id="NDEA-IN-1",
        bank_ref="260106NDEA000001", reference="RF18539007547034", counterparty="Kappa Oy",
        counterparty_account="FI7433010001222090")
    assert (batch.amount_minor, batch.booked_at_us, batch.batch_ref, batch.parts) == (
        -1_675_00, moment_us("2026-01-06T14:05:12.250+02:00"), "PMT-20260106-07",
        ("0194f3a2b7c84e1f9a6d2c3b4e5f6b01", "0194f3a2b7c84e1f9a6d2c3b4e5f6b02"))
    assert (batch.end_to_end_id, batch.counterparty) == (None, None)
    assert (charge.amount_minor, charge.kind) == (-5_25, LineKind.CHARGE)
    assert (pending.amount_minor, pending.status, pending.bank_ref) == (
        42_00, LineStatus.PENDING, None)


def test_a_camt054_of_two_advices_reads_to_two_statements_without_balances() -> None:
    parsed = parse_camt(read("camt054_v08_advices.xml"), "ing.xml", scales=SCALES)

    assert (parsed.format, parsed.message) == (FileFormat.CAMT054, "camt.054.001.08")
    credit, debit = parsed.statements
    assert (credit.statement_id, credit.opening, credit.closing) == (
        "NTF-20260107-0001", None, None)
    assert credit.created_at_us == moment_us("2026-01-07T10:14:58+01:00")
    (deposit,) = credit.lines
    assert (deposit.amount_minor, deposit.end_to_end_id, deposit.counterparty,
            deposit.reference) == (250_00, "DEP-9001", "Omega BV", "Top-up account 4411")
    (payout,) = debit.lines
    assert (payout.line_id, payout.amount_minor, payout.batch_ref, payout.parts) == (
        "NTF-20260107-0002:1", -3_000_00, "PMT-20260107-02",
        ("0194f3a2b7c84e1f9a6d2c3b4e5f6a81", "0194f3a2b7c84e1f9a6d2c3b4e5f6a82"))


# --- what the simulated bank writes ---------------------------------------------------------

ACCOUNT = "DE02120300000000202051"
EVERY_KIND = (
    StatementLine("x", 100_00, "EUR", JAN5 + 3_600_000_000, JAN5, end_to_end_id="E2E-IN",
                  counterparty="Acme GmbH", counterparty_account="DE89370400440532013000",
                  reference="INV-1", bank_ref="B-1"),
    StatementLine("x", -30_00, "EUR", JAN5, JAN5, end_to_end_id="E2E-OUT",
                  counterparty="Bob Builder", counterparty_account="12-345-678"),
    StatementLine("x", -20, "EUR", JAN5, JAN5, kind=LineKind.CHARGE,
                  reference="ACCOUNT FEE DEC"),
    StatementLine("x", -500_00, "EUR", JAN5, JAN5, batch_ref="PMT-1",
                  parts=("P-1", "P-2", "P-3")),
    StatementLine("x", -700_00, "EUR", JAN5, JAN5, batch_ref="PMT-2"),
    StatementLine("x", 30_00, "EUR", JAN5, JAN5, kind=LineKind.RETURN,
                  end_to_end_id="E2E-OUT-0", reason="AC04"),
    StatementLine("x", -7_00, "EUR", JAN5, JAN5, kind=LineKind.REVERSAL, bank_ref="R-1",
                  reason="MS03"),
    StatementLine("x", 1_00, "EUR", JAN6, JAN6, status=LineStatus.PENDING,
                  kind=LineKind.INTEREST),
    StatementLine("x", -1_00, "EUR", JAN5, JAN5 + 1, kind=LineKind.OTHER),
    StatementLine("x", 0, "EUR", JAN5, JAN5, reason="BANK-OWN-CODE", kind=LineKind.RETURN),
)


def statement(lines: tuple[StatementLine, ...], *, opening_minor: int = -10_00,
              statement_id: str = "STMT-1", asset: str = "EUR",
              account: str = ACCOUNT) -> Statement:
    booked = sum(line.amount_minor for line in lines if line.status is LineStatus.BOOKED)
    return Statement(statement_id, account, asset, JAN5 + 23 * 3_600_000_000 + 5, lines,
                     Balance(opening_minor, JAN5), Balance(opening_minor + booked, JAN5 + 1),
                     "42")


def numbered(parsed: Statement, lines: tuple[StatementLine, ...]) -> tuple[StatementLine, ...]:
    return tuple(replace(line, line_id=f"{parsed.statement_id}:{position}")
                 for position, line in enumerate(lines, start=1))


def test_a_written_statement_reads_back_the_same() -> None:
    written = (statement(EVERY_KIND),
               statement((), statement_id="STMT-2", account="0123456789", asset="USD",
                         opening_minor=0))

    parsed = parse_camt(write_camt053(written, message_id="MSG-1", created_at_us=JAN6,
                                      scales=SCALES), "out.xml", scales=SCALES)

    assert parsed.message == "camt.053.001.08"
    first, second = parsed.statements
    assert first == replace(written[0], lines=numbered(first, EVERY_KIND))
    assert second == written[1]


def test_a_written_notification_reads_back_the_same() -> None:
    written = Statement("NTF-1", ACCOUNT, "EUR", JAN5, EVERY_KIND)

    parsed = parse_camt(write_camt054([written], message_id="MSG-2", created_at_us=JAN6,
                                      scales=SCALES), "out.xml", scales=SCALES)

    assert parsed.format is FileFormat.CAMT054
    (only,) = parsed.statements
    assert only == replace(written, lines=numbered(only, EVERY_KIND))


@pytest.fixture(scope="module")
def schema053() -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(str(HERE / "schemas" / "camt.053.001.08.xsd"))


@pytest.fixture(scope="module")
def schema054() -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(str(HERE / "schemas" / "camt.054.001.08.xsd"))


def test_what_the_simulated_bank_writes_is_valid_against_the_iso_schemas(
        schema053: xmlschema.XMLSchema, schema054: xmlschema.XMLSchema) -> None:
    statements = [statement(EVERY_KIND), statement((), statement_id="S-2", asset="JPY",
                                                   opening_minor=5)]
    camt053 = write_camt053(statements, message_id="MSG-1", created_at_us=JAN6,
                            scales=SCALES)
    camt054 = write_camt054([Statement("NTF-1", ACCOUNT, "EUR", JAN5, EVERY_KIND)],
                            message_id="MSG-2", created_at_us=JAN6, scales=SCALES)

    assert [error.reason for error in schema053.iter_errors(camt053.decode())] == []
    assert [error.reason for error in schema054.iter_errors(camt054.decode())] == []
    assert write_camt053(statements, message_id="MSG-1", created_at_us=JAN6,
                         scales=SCALES) == camt053


@pytest.mark.parametrize(("change", "field"), [
    # balances that do not add up are a bank that cannot count: never written
    (lambda s: replace(s, closing=Balance(1, JAN5)), "closing"),
    (lambda s: replace(s, opening=None), "opening"),
    (lambda s: replace(s, lines=(replace(s.lines[0], parts=("ONLY",)),)), "parts"),
    (lambda s: replace(s, lines=(replace(s.lines[3], reference="why"),)), "parts"),
    (lambda s: replace(s, lines=(replace(s.lines[0], reason="AC04"),)), "reason"),
    (lambda s: replace(s, lines=(replace(s.lines[0], end_to_end_id="NOTPROVIDED"),)),
     "end_to_end_id"),
    (lambda s: replace(s, lines=(replace(s.lines[0], asset="USD"),)), "asset"),
    (lambda s: replace(s, asset="USDT"), "asset"),
    (lambda s: replace(s, sequence="28C/1"), "sequence"),
    (lambda s: replace(s, statement_id="S" * 36), "statement_id"),
])
def test_the_writer_refuses_what_the_reader_would_not_give_back(
        change: Callable[[Statement], Statement], field: str) -> None:
    changed = change(statement(EVERY_KIND))
    if changed.opening is not None and changed.closing is not None and field != "closing":
        booked = sum(x.amount_minor for x in changed.lines if x.status is LineStatus.BOOKED)
        changed = replace(changed, closing=Balance(changed.opening.amount_minor + booked, JAN5))

    with pytest.raises(MessageNotWritable) as refused:
        write_camt053([changed], message_id="M", created_at_us=JAN6, scales=SCALES)
    assert refused.value.facts["field"] == field


def test_a_notification_carries_no_balances() -> None:
    with pytest.raises(MessageNotWritable):
        write_camt054([statement(())], message_id="M", created_at_us=JAN6, scales=SCALES)


# --- any lines -------------------------------------------------------------------------------

_REF = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-", min_size=1,
               max_size=35).filter(lambda ref: ref != "NOTPROVIDED")
_SINGLE = st.builds(
    lambda amount, kind, status, e2e, bank_ref, reference, days: StatementLine(
        "x", amount, "EUR", JAN5 + days * DAY_US, JAN5 + days * DAY_US, status=status,
        kind=kind, end_to_end_id=e2e, bank_ref=bank_ref, reference=reference),
    st.integers(-10**15, 10**15),
    st.sampled_from([LineKind.TRANSFER, LineKind.CHARGE, LineKind.INTEREST, LineKind.OTHER,
                     LineKind.RETURN, LineKind.REVERSAL]),
    st.sampled_from(list(LineStatus)), st.none() | _REF, st.none() | _REF,
    st.none() | _REF, st.integers(0, 3))
_BATCH = st.builds(
    lambda amount, batch_ref, parts: StatementLine("x", amount, "EUR", JAN5, JAN5,
                                                   batch_ref=batch_ref, parts=tuple(parts)),
    st.integers(-10**15, 0), _REF, st.lists(_REF, min_size=2, max_size=5))


@given(st.lists(_SINGLE | _BATCH, max_size=25), st.integers(-10**15, 10**15))
def test_any_lines_written_as_a_statement_read_back_with_balances_that_add_up(
        lines: list[StatementLine], opening_minor: int) -> None:
    written = statement(tuple(lines), opening_minor=opening_minor)

    data = write_camt053([written], message_id="MSG-P", created_at_us=JAN6, scales=SCALES)
    (parsed,) = parse_camt(data, "p.xml", scales=SCALES).statements

    assert [(x.amount_minor, x.status, x.kind, x.end_to_end_id, x.bank_ref, x.reference,
             x.batch_ref, x.parts) for x in parsed.lines] == [
        (x.amount_minor, x.status, x.kind, x.end_to_end_id, x.bank_ref, x.reference,
         x.batch_ref, x.parts) for x in lines]
    assert parsed.opening is not None
    assert parsed.closing is not None
    booked = sum(x.amount_minor for x in parsed.lines if x.status is LineStatus.BOOKED)
    assert parsed.opening.amount_minor + booked == parsed.closing.amount_minor
    assert parsed.opening.amount_minor == opening_minor
