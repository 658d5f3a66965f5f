"""The simulated bank on real files, against the real bank rail: a pain.001 is answered by a
pain.002 (a partial acceptance), a camt.054 booking the batch as one entry, a charge for the
batch, returns later, a credit nobody announced and a camt.053 whose balances add up; the
rail turns them into the outcomes they mean; an invalid or foreign file is rejected whole;
the same seed gives the same files byte for byte, across a restart too; and `planted()`
names exactly what was planted."""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from fundpool.channels.iso20022.camt import parse_camt
from fundpool.channels.iso20022.status import StatusReport, parse_pain002
from fundpool.channels.iso_rail import Iso20022Rail
from fundpool.channels.ports import Direction, Instruction, OutcomeKind
from fundpool.cli.bank import bank_app
from fundpool.core.clock import Uuid7Ids
from fundpool.pool.config import FundpoolConfig, parse_config
from fundpool.recon.model import (
    LineKind,
    Statement,
    StatementFile,
    end_to_end_of,
    payment_id_of,
)
from fundpool.sim.bank import (
    BankSettings,
    BankSimulator,
    BankStateMismatch,
    Planted,
    PlantedKind,
)

T0_US = 1_767_607_200_000_000  # 2026-01-05T10:00Z
S_US = 1_000_000
POOL_IBAN = "GB33BUKB20201555555555"
OPENING_MINOR = 100_000_000  # 1,000,000.00
SCALES = {"USD": 2}
# Rates high enough that 40 transfers plant every kind under seed 3 (checked, not assumed).
EVERYTHING = BankSettings(seed=3, reject_rate=0.15, return_rate=0.15, extra_charge_rate=1.0,
                          credits_per_day=1.0, day_s=600)
QUIET = BankSettings(seed=3, reject_rate=0.0, return_rate=0.0, extra_charge_rate=0.0,
                     credits_per_day=0.0, day_s=600)


def config() -> FundpoolConfig:
    return parse_config({
        "assets": [{"code": "USD", "scale": 2, "kind": "fiat"}],
        "channels": [{
            "id": "bank-a", "kind": "bank_wire", "assets": ["USD"], "batch_size": 100,
            "adapter": "iso20022", "fees": {"USD": {"fixed": "0.25", "bps": 5}},
            "bank": {"exchange": "bank", "account": POOL_IBAN, "name": "Fundpool Treasury"},
        }],
        "pools": [{"id": "main", "reporting_currency": "USD", "channels": ["bank-a"]}],
    })


CONFIG = config()
CHANNEL = CONFIG.channel("bank-a")
USD = CONFIG.asset("USD")


def bank_rail(exchange: Path, instance: str = "t1") -> Iso20022Rail:
    return Iso20022Rail(CHANNEL, {"USD": USD}, exchange=exchange, instance=instance)


def bank(exchange: Path, settings: BankSettings = EVERYTHING, **overrides: Any
         ) -> BankSimulator:
    arguments: dict[str, Any] = {"account": POOL_IBAN, "asset": USD,
                                 "opening_minor": OPENING_MINOR, "channel": CHANNEL,
                                 "settings": settings, **overrides}
    return BankSimulator(exchange, **arguments)


def send(rail: Iso20022Rail, count: int, *, seed: int = 1) -> list[Instruction]:
    ids = Uuid7Ids.seeded(seed)
    instructions = [
        Instruction(ids.new_id(T0_US), Direction.OUTBOUND, "USD", 10_000 + 137 * i,
                    f"Payee {i}", f"PAYOUT {i}", "DE89370400440532013000")
        for i in range(count)]
    rail.submit(instructions, T0_US)
    return instructions


def run(simulator: BankSimulator, until_s: int, *, start_s: int = 0) -> list[str]:
    written: list[str] = []
    for second in range(start_s, until_s + 1):
        written += simulator.step(T0_US + second * S_US)
    return written


def files(exchange: Path) -> dict[str, bytes]:
    """Every file the bank wrote, wherever the rail has moved it since."""
    root = exchange / "from-bank"
    return {path.name: path.read_bytes() for path in sorted(root.rglob("*.xml"))}


def camt_files(exchange: Path, suffix: str) -> list[StatementFile]:
    return [parse_camt(data, name, scales=SCALES)
            for name, data in files(exchange).items() if name.endswith(suffix)]


def reports(exchange: Path) -> list[StatusReport]:
    return [parse_pain002(data, name) for name, data in files(exchange).items()
            if name.endswith("pain002.xml")]


def of_kind(planted: Sequence[Planted], kind: PlantedKind) -> list[Planted]:
    return [p for p in planted if p.kind is kind]


def test_a_payment_file_is_answered_booked_charged_returned_and_stated(tmp_path: Path) -> None:
    rail = bank_rail(tmp_path)
    instructions = send(rail, 40)
    amounts = {end_to_end_of(i.payment_id): i.amount_minor for i in instructions}
    simulator = bank(tmp_path)

    written = run(simulator, 600)

    planted = simulator.planted()
    rejected = {str(p.end_to_end_id) for p in of_kind(planted, PlantedKind.REJECTED)}
    returned = {str(p.end_to_end_id) for p in of_kind(planted, PlantedKind.RETURN)}
    (extra,) = of_kind(planted, PlantedKind.EXTRA_CHARGE)
    (credit,) = of_kind(planted, PlantedKind.UNANNOUNCED_CREDIT)
    assert rejected
    assert returned
    assert not rejected & returned
    booked = [e2e for e2e in amounts if e2e not in rejected]
    # File names sort by time: the status at once, the booking 2 s later, returns 30 s after.
    assert written == sorted(written)
    assert written[0] == "20260105T100000-000001-pain002.xml"
    assert written[1] == "20260105T100002-000002-camt054.xml"
    assert written[-1] == f"20260105T101000-000{len(written):03d}-camt053.xml"

    # pain.002: a partial acceptance, each rejection with its reason.
    (report,) = reports(tmp_path)
    assert (report.original_message_id, report.original_payment_info_id) == (
        "bank-a-t1-1", "bank-a-t1-1")
    assert report.group_status == "PART"
    assert {p.end_to_end_id for p in report.payments if p.status == "RJCT"} == rejected
    assert {p.reason for p in report.payments if p.status == "RJCT"} <= {"AC04", "AM05"}
    assert {p.status for p in report.payments if p.end_to_end_id not in rejected} == {"ACCP"}

    # camt.054: the accepted transfers as one batched debit entry.
    notifications = camt_files(tmp_path, "camt054.xml")
    (batch,) = notifications[0].statements[0].lines
    assert (batch.amount_minor, batch.kind, batch.batch_ref, batch.parts) == (
        -sum(amounts[e2e] for e2e in booked), LineKind.TRANSFER, "bank-a-t1-1", tuple(booked))
    assert batch.booked_at_us == T0_US + 2 * S_US
    return_lines = [line for f in notifications for s in f.statements for line in s.lines
                    if line.kind is LineKind.RETURN]
    assert {(line.end_to_end_id, line.amount_minor, line.reason) for line in return_lines} == {
        (e2e, amounts[e2e], "AC04") for e2e in returned}
    assert {line.booked_at_us for line in return_lines} == {T0_US + 32 * S_US}

    # camt.053: the day's entries, the batch's charge among them, balances that add up.
    (statement_file,) = camt_files(tmp_path, "camt053.xml")
    (statement,) = statement_file.statements
    fees = sum(CHANNEL.fee_schedule("USD").outbound_fee(amounts[e2e]) for e2e in booked)
    (charge,) = [line for line in statement.lines if line.kind is LineKind.CHARGE]
    assert (charge.amount_minor, charge.batch_ref) == (-(fees + 500), "bank-a-t1-1")
    assert (extra.amount_minor, extra.payment_info_id, extra.bank_ref) == (
        500, "bank-a-t1-1", charge.bank_ref)
    (credit_line,) = [line for line in statement.lines
                      if line.kind is LineKind.TRANSFER and line.amount_minor > 0]
    assert (credit_line.amount_minor, credit_line.reference, credit_line.counterparty) == (
        credit.amount_minor, credit.reference, credit.counterparty)
    assert credit_line.reference is not None
    assert credit_line.reference.startswith("INVOICE ")
    assert statement.opening is not None
    assert statement.closing is not None
    assert statement.opening.amount_minor == OPENING_MINOR
    assert statement.closing.amount_minor == OPENING_MINOR + sum(
        line.amount_minor for line in statement.lines) == simulator.balance_minor
    assert statement.sequence == "1"
    assert len(statement.lines) == 2 + len(returned) + 1

    # What the rail makes of it all.
    outcomes = rail.poll(T0_US + 600 * S_US)
    by_kind: dict[OutcomeKind, set[str]] = {}
    for outcome in outcomes:
        by_kind.setdefault(outcome.kind, set()).add(outcome.payment_id)
    assert by_kind == {
        OutcomeKind.FAILED: {payment_id_of(e2e) for e2e in rejected},
        OutcomeKind.CLEARED: {payment_id_of(e2e) for e2e in booked},
        OutcomeKind.SETTLED: {payment_id_of(e2e) for e2e in booked},
        OutcomeKind.RETURNED: {payment_id_of(e2e) for e2e in returned},
    }
    assert statement_file.name in {p.name for p in (tmp_path / "statements").iterdir()}


def test_planted_names_exactly_what_was_planted_and_is_on_disk_too(tmp_path: Path) -> None:
    send(bank_rail(tmp_path), 40)
    simulator = bank(tmp_path)
    run(simulator, 1_800)  # three days

    planted = simulator.planted()
    lines = (tmp_path / "bank" / "planted.jsonl").read_text().splitlines()
    assert [json.loads(line)["kind"] for line in lines] == [p.kind.value for p in planted]
    # Every unannounced credit and extra charge is on a statement, under its bank reference.
    stated = {line.bank_ref: line for f in camt_files(tmp_path, "camt053.xml")
              for s in f.statements for line in s.lines}
    for p in planted:
        if p.kind in (PlantedKind.UNANNOUNCED_CREDIT, PlantedKind.RETURN):
            assert stated[p.bank_ref].amount_minor == p.amount_minor
        if p.kind is PlantedKind.EXTRA_CHARGE:
            assert stated[p.bank_ref].kind is LineKind.CHARGE
    assert len(of_kind(planted, PlantedKind.UNANNOUNCED_CREDIT)) == 3  # one a day, 3 days
    # Nothing else is planted: a quiet bank plants nothing at all.
    quiet = tmp_path / "quiet"
    send(bank_rail(quiet), 40)
    calm = bank(quiet, QUIET)
    run(calm, 1_800)
    assert calm.planted() == []
    (first_report,) = reports(quiet)
    assert first_report.group_status == "ACCP"


def test_statements_chain_their_balances_day_after_day(tmp_path: Path) -> None:
    rail = bank_rail(tmp_path)
    send(rail, 5)
    simulator = bank(tmp_path)
    run(simulator, 700)
    send(rail, 7, seed=2)
    run(simulator, 1_900, start_s=701)

    statements: list[Statement] = [s for f in camt_files(tmp_path, "camt053.xml")
                                   for s in f.statements]
    assert [s.sequence for s in statements] == ["1", "2", "3"]
    opening = OPENING_MINOR
    for statement in statements:  # each parsed: its own balances add up
        assert statement.opening is not None
        assert statement.closing is not None
        assert statement.opening.amount_minor == opening
        opening = statement.closing.amount_minor
    assert opening == simulator.balance_minor
    assert len({s.statement_id for s in statements}) == 3


def test_the_same_seed_gives_the_same_files_byte_for_byte_across_a_restart(
        tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    send(bank_rail(first), 40)
    shutil.copytree(first / "to-bank", second / "to-bank")

    run(bank(first), 700)
    run(bank(second), 350)
    run(bank(second), 700, start_s=351)  # a new simulator on the state the first left

    assert files(first) == files(second)
    assert bank(first).planted() == bank(second).planted()
    other = tmp_path / "other"
    shutil.copytree(first / "to-bank", other / "to-bank")
    run(bank(other, BankSettings(**{**_fields(EVERYTHING), "seed": 4})), 700)
    assert files(other) != files(first)


def _fields(settings: BankSettings) -> dict[str, Any]:
    return {name: getattr(settings, name) for name in BankSettings.__dataclass_fields__}


def test_an_invalid_foreign_or_repeated_file_is_rejected_whole(tmp_path: Path) -> None:
    rail = bank_rail(tmp_path)
    send(rail, 2)
    invalid = send(rail, 3, seed=2)
    first, second = sorted((tmp_path / "to-bank").iterdir())
    data = second.read_bytes()
    second.write_bytes(data.replace(b"<NbOfTxs>3</NbOfTxs>", b"<NbOfTxs>three</NbOfTxs>"))
    (tmp_path / "to-bank" / "pain001-00000003-bank-a-t1-3.xml").write_bytes(
        data.replace(b"bank-a-t1-2", b"bank-a-t1-3").replace(
            POOL_IBAN.encode(), b"GB94BARC10201530093459"))
    simulator = bank(tmp_path, QUIET)
    run(simulator, 0)
    # A valid file whose message id the bank has taken before.
    (tmp_path / "to-bank" / "pain001-00000004-bank-a-t1-1.xml").write_bytes(first.read_bytes())
    run(simulator, 3, start_s=1)

    found = {f"{r.original_message_id}/{r.group_status}/{r.reason}": r
             for r in reports(tmp_path)}
    assert set(found) == {"bank-a-t1-1/ACCP/None", "bank-a-t1-2/RJCT/FF01",
                          "bank-a-t1-3/RJCT/AC01", "bank-a-t1-1/RJCT/DU01"}
    for key, report in found.items():
        assert report.payments == () or key == "bank-a-t1-1/ACCP/None"
    assert (found["bank-a-t1-2/RJCT/FF01"].reason_text or "").startswith(
        "GrpHdr/NbOfTxs: not a valid pain.001.001.09")
    (booking,) = camt_files(tmp_path, "camt054.xml")  # the first file's only
    assert booking.statements[0].lines[0].batch_ref == "bank-a-t1-1"
    # The rail fails every payment of the invalid file, which it wrote itself.
    outcomes = rail.poll(T0_US)
    assert {o.payment_id for o in outcomes if o.rail_ref == "bank-a-t1-2"} == {
        i.payment_id for i in invalid}
    assert {o.kind for o in outcomes if o.rail_ref == "bank-a-t1-2"} == {OutcomeKind.FAILED}


def test_a_state_of_another_account_is_refused(tmp_path: Path) -> None:
    bank(tmp_path).step(T0_US)
    with pytest.raises(BankStateMismatch):
        bank(tmp_path, account="DE89370400440532013000")


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="reject_rate"):
        BankSettings(reject_rate=1.5)
    with pytest.raises(ValueError, match="day_s"):
        BankSettings(day_s=0)


def test_the_command_takes_one_step_and_prints_what_it_wrote(tmp_path: Path) -> None:
    send(bank_rail(tmp_path), 2)

    result = CliRunner().invoke(bank_app, [
        "simulate", "--exchange", str(tmp_path), "--account", POOL_IBAN, "--asset", "USD",
        "--opening", "1000000.00", "--seed", "7", "--once"])

    assert result.exit_code == 0, result.output
    (name,) = result.output.split()
    assert name.endswith("-000001-pain002.xml")
    assert (tmp_path / "from-bank" / name).exists()
    state = json.loads((tmp_path / "bank" / "state.json").read_text())
    assert state["balance_minor"] == OPENING_MINOR


def test_the_command_refuses_an_amount_it_cannot_read(tmp_path: Path) -> None:
    result = CliRunner().invoke(bank_app, [
        "simulate", "--exchange", str(tmp_path), "--account", POOL_IBAN,
        "--opening", "1,000.00", "--once"])
    assert result.exit_code == 2


def test_a_pain001_001_03_is_answered_in_its_own_release(tmp_path: Path) -> None:
    parsed = parse_config({
        "assets": [{"code": "USD", "scale": 2, "kind": "fiat"}],
        "channels": [{
            "id": "bank-b", "kind": "bank_wire", "assets": ["USD"], "batch_size": 10,
            "adapter": "iso20022",
            "bank": {"exchange": "bank", "account": POOL_IBAN, "name": "Fundpool Treasury",
                     "pain001": "pain.001.001.03"},
        }],
        "pools": [{"id": "main", "reporting_currency": "USD", "channels": ["bank-b"]}],
    })
    rail = Iso20022Rail(parsed.channel("bank-b"), {"USD": USD}, exchange=tmp_path,
                        instance="t1")
    instructions = send(rail, 3)
    run(bank(tmp_path, QUIET, channel=parsed.channel("bank-b")), 2)

    (report,) = reports(tmp_path)
    assert (report.version, report.group_status) == ("pain.002.001.03", "ACCP")
    outcomes = rail.poll(T0_US)
    assert sorted((o.payment_id, o.kind) for o in outcomes) == sorted(
        [(i.payment_id, OutcomeKind.CLEARED) for i in instructions]
        + [(i.payment_id, OutcomeKind.SETTLED) for i in instructions])
