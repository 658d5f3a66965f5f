"""The ISO 20022 bank rail on real files: a submission is a schema-valid pain.001 on disk
(both versions) with the payments' ids, amounts and payees; what cannot be sent is refused
whole; the bank's pain.002, camt.054 and camt.053 become the right outcomes (partial
acceptance, a group rejection, a batched booking, a return) or go to reconciliation; a
garbage file is set aside without stopping the poll; a file leaves from-bank only once its
outcomes are acknowledged; and a new rail on the same exchange delivers again what was not
acknowledged, under the same ids, counts its references on and knows what was sent."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from fundpool.channels.iso20022.camt import write_camt053, write_camt054
from fundpool.channels.iso20022.pain001 import read_pain001, validate_pain001
from fundpool.channels.iso20022.status import PaymentStatus, StatusReport, write_pain002
from fundpool.channels.iso_rail import (
    BANK_DAY_US,
    Iso20022Rail,
    short_instance,
    write_atomically,
)
from fundpool.channels.ports import ChannelOutcome, Direction, Instruction, OutcomeKind
from fundpool.channels.simulated import ChannelRefused
from fundpool.core.clock import Uuid7Ids
from fundpool.pool.config import FundpoolConfig, InvalidConfig, parse_config
from fundpool.recon.model import (
    Balance,
    LineKind,
    LineStatus,
    Statement,
    StatementLine,
    end_to_end_of,
)

MONDAY_10H_US = 1_767_607_200_000_000  # 2026-01-05T10:00Z
POOL_IBAN = "GB33BUKB20201555555555"
PAYEE_IBAN = "DE89370400440532013000"
SCALES = {"EUR": 2, "USD": 2}
VERSIONS = ("pain.001.001.09", "pain.001.001.03")


def config(version: str = "pain.001.001.09", **channel: Any) -> FundpoolConfig:
    spec: dict[str, Any] = {
        "id": "bank-a", "kind": "bank_wire", "assets": ["EUR", "USD"], "batch_size": 10,
        "adapter": "iso20022",
        "fees": {"EUR": {"fixed": "0.25", "bps": 5}},
        "limits": {"EUR": {"min": "1.00", "max": "100000.00"}},
        "bank": {"exchange": "banks/bank-a", "account": POOL_IBAN, "bic": "BUKBGB22",
                 "name": "Fundpool Treasury Ltd", "pain001": version},
        **channel,
    }
    return parse_config({
        "assets": [{"code": "EUR", "scale": 2, "kind": "fiat"},
                   {"code": "USD", "scale": 2, "kind": "fiat"}],
        "channels": [spec],
        "pools": [{"id": "main", "reporting_currency": "EUR", "channels": ["bank-a"]}],
    })


def rail(exchange: Path, version: str = "pain.001.001.09", instance: str = "t1",
         **channel: Any) -> Iso20022Rail:
    parsed = config(version, **channel)
    return Iso20022Rail(parsed.channel("bank-a"), {a.code: a for a in parsed.assets},
                        exchange=exchange, instance=instance)


def payment_ids(count: int, seed: int = 1) -> list[str]:
    ids = Uuid7Ids.seeded(seed)
    return [ids.new_id(MONDAY_10H_US) for _ in range(count)]


def pay(payment_id: str, amount_minor: int = 12_345, *, destination: str | None = PAYEE_IBAN,
        counterparty: str | None = "Jane Payee", reference: str | None = "INV-1",
        asset: str = "EUR", direction: Direction = Direction.OUTBOUND) -> Instruction:
    return Instruction(payment_id, direction, asset, amount_minor, counterparty, reference,
                       destination)


def sent(exchange: Path, count: int = 3, **kwargs: Any) -> tuple[Iso20022Rail, list[str]]:
    """A rail that has sent one file of `count` payments."""
    bank_rail = rail(exchange, **kwargs)
    ids = payment_ids(count)
    bank_rail.submit([pay(pid, 10_000 + i) for i, pid in enumerate(ids)], MONDAY_10H_US)
    return bank_rail, ids


def from_bank(exchange: Path, name: str, data: bytes) -> Path:
    path = exchange / "from-bank" / name
    write_atomically(path, data)
    return path


def status_report(statuses: Sequence[PaymentStatus], group: str | None,
                  original: str = "bank-a-t1-1", **extra: Any) -> bytes:
    return write_pain002(StatusReport(
        message_id="STS-1", created_at_us=MONDAY_10H_US + 60_000_000,
        original_message_id=original, original_payment_info_id=original,
        group_status=group, payments=tuple(statuses), version="pain.002.001.10", **extra))


def notification(*lines: StatementLine) -> bytes:
    statement = Statement("NTF-1", POOL_IBAN, "EUR", MONDAY_10H_US, tuple(lines))
    return write_camt054([statement], message_id="NTF-1", created_at_us=MONDAY_10H_US,
                         scales=SCALES)


def line(amount_minor: int, kind: LineKind = LineKind.TRANSFER, **fields: Any) -> StatementLine:
    return StatementLine("x", amount_minor, "EUR", MONDAY_10H_US + 3_600_000_000,
                         MONDAY_10H_US + 3_600_000_000, LineStatus.BOOKED, kind, **fields)


def kinds(outcomes: Sequence[ChannelOutcome]) -> dict[str, OutcomeKind]:
    return {o.payment_id: o.kind for o in outcomes}


# --- submit ----------------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_a_submission_is_one_schema_valid_pain001_with_the_payments(
        tmp_path: Path, version: str) -> None:
    bank_rail = rail(tmp_path, version)
    ids = payment_ids(3)
    instructions = [pay(ids[0], 12_345), pay(ids[1], 50_000, counterparty=None, reference=None),
                    pay(ids[2], 100, destination="GB29 NWBK 6016 1331 9268 19")]

    submission = bank_rail.submit(instructions, MONDAY_10H_US)

    assert submission.rail_ref == "bank-a-t1-1"
    assert submission.payment_ids == tuple(ids)
    # The channel's fee schedule per transfer: 0.25 + 5 bps of each amount.
    assert submission.fee_minor == submission.single_fee_minor == (25 + 6) + (25 + 25) + 25
    files = sorted((tmp_path / "to-bank").iterdir())
    assert [f.name for f in files] == ["pain001-00000001-bank-a-t1-1.xml"]  # no temporary left
    data = files[0].read_bytes()
    validate_pain001(data, version)
    message = read_pain001(data, files[0].name, scales=SCALES)
    assert (message.message_id, message.payment_info_id, message.version, message.asset) == (
        "bank-a-t1-1", "bank-a-t1-1", version, "EUR")
    assert (message.debtor.name, message.debtor.account, message.debtor.bic) == (
        "Fundpool Treasury Ltd", POOL_IBAN, "BUKBGB22")
    assert [(t.end_to_end_id, t.amount_minor, t.creditor.name, t.creditor.account,
             t.remittance) for t in message.transfers] == [
        (ids[0].replace("-", ""), 12_345, "Jane Payee", PAYEE_IBAN, "INV-1"),
        (ids[1].replace("-", ""), 50_000, "NOTPROVIDED", PAYEE_IBAN, None),
        (ids[2].replace("-", ""), 100, "Jane Payee", "GB29NWBK60161331926819", "INV-1"),
    ]
    assert all(len(t.end_to_end_id) == 32 for t in message.transfers)  # UUIDs fit in 35


def test_references_count_on_and_every_file_is_indexed_for_inquiry(tmp_path: Path) -> None:
    bank_rail = rail(tmp_path)
    first, second = payment_ids(2)
    assert bank_rail.submit([pay(first)], MONDAY_10H_US).rail_ref == "bank-a-t1-1"
    assert bank_rail.submit([pay(second)], MONDAY_10H_US).rail_ref == "bank-a-t1-2"
    assert bank_rail.inquire([first, second, "never-sent"], MONDAY_10H_US) == {first, second}
    assert bank_rail.rail_refs_of(second) == ("bank-a-t1-2",)


def refusal(bank_rail: Iso20022Rail, instructions: list[Instruction],
            at_us: int = MONDAY_10H_US) -> ChannelRefused:
    with pytest.raises(ChannelRefused) as caught:
        bank_rail.submit(instructions, at_us)
    assert caught.value.code == "channel_refused"
    return caught.value


@pytest.mark.parametrize(("make", "reason"), [
    (lambda ids: [pay(ids[0]), pay(ids[1], destination=None)], "no_destination"),
    (lambda ids: [pay(ids[0]), pay(ids[1], destination="  ")], "no_destination"),
    (lambda ids: [pay(ids[0], destination="DE89370400440532013001")], "invalid_destination"),
    (lambda ids: [pay(ids[0], direction=Direction.INBOUND)], "inbound_not_carried"),
    (lambda ids: [pay(ids[0], reference="x" * 141)], "message_not_writable"),
    (lambda ids: [pay(ids[0]), pay(ids[0])], "duplicate_payment_id"),
    (lambda ids: [pay(ids[0]), pay(ids[1], asset="USD")], "mixed_assets"),
    (lambda ids: [pay(ids[0], asset="GBP")], "unknown_asset"),
    (lambda ids: [pay(ids[0], 99)], "amount_outside_limits"),
    (lambda ids: [pay(pid) for pid in payment_ids(11)], "batch_too_large"),
    (lambda ids: [], "empty"),
    (lambda ids: [pay("a-payment-id-that-is-far-too-long-for-iso-20022")],
     "message_not_writable"),
])
def test_what_a_pain001_cannot_carry_is_refused_whole_and_nothing_is_written(
        tmp_path: Path, make: Any, reason: str) -> None:
    bank_rail = rail(tmp_path)
    ids = payment_ids(2)

    error = refusal(bank_rail, make(ids))

    assert error.facts["reason"] == reason
    assert error.facts["channel"] == "bank-a"
    if reason in ("no_destination", "invalid_destination"):
        assert error.facts["payment_id"] == ids[1 if reason == "no_destination" else 0]
    assert list((tmp_path / "to-bank").iterdir()) == []
    # The refused submission used no reference.
    assert bank_rail.submit([pay(ids[0])], MONDAY_10H_US).rail_ref == "bank-a-t1-1"


def test_a_submission_is_refused_when_the_exchange_cannot_be_written(tmp_path: Path) -> None:
    bank_rail = rail(tmp_path)
    (tmp_path / "to-bank").rmdir()
    (tmp_path / "to-bank").write_text("a file where the directory should be")

    error = refusal(bank_rail, [pay(payment_ids(1)[0])])

    assert error.facts["reason"] == "exchange_not_writable"
    assert error.facts["directory"] == str(tmp_path / "to-bank")


def test_a_submission_outside_the_cutoff_is_refused_and_quoted_after_it(tmp_path: Path) -> None:
    bank_rail = rail(tmp_path, cutoff=[{"days": "mon-fri", "open": "08:00", "close": "17:00"}])
    saturday_us = MONDAY_10H_US + 5 * 86_400_000_000

    assert refusal(bank_rail, [pay(payment_ids(1)[0])], saturday_us).facts["reason"] == "closed"
    open_quote = bank_rail.quote("EUR", 10_000, MONDAY_10H_US)
    closed_quote = bank_rail.quote("EUR", 10_000, saturday_us)
    assert (open_quote.fee_minor, open_quote.latency_us) == (30, BANK_DAY_US)
    assert closed_quote.latency_us == BANK_DAY_US + 46 * 3_600_000_000  # Monday 08:00


def test_the_rail_declares_the_channels_limits_and_is_polled(tmp_path: Path) -> None:
    capabilities = rail(tmp_path).capabilities()
    assert capabilities.callbacks is False
    assert capabilities.batch_size_max == 10
    assert capabilities.assets == frozenset({"EUR", "USD"})
    assert (capabilities.min_minor["EUR"], capabilities.max_minor["EUR"]) == (100, 10_000_000)


def test_a_rail_reference_that_cannot_fit_35_characters_is_refused_at_start(
        tmp_path: Path) -> None:
    with pytest.raises(InvalidConfig):
        rail(tmp_path, instance="far-too-long-instance")
    assert len(short_instance(MONDAY_10H_US)) <= 6
    rail(tmp_path, instance=short_instance(MONDAY_10H_US))


# --- poll ------------------------------------------------------------------------------------


def test_a_partial_acceptance_fails_the_rejected_and_clears_the_others(tmp_path: Path) -> None:
    bank_rail, ids = sent(tmp_path)
    e2e = [end_to_end_of(pid) for pid in ids]
    from_bank(tmp_path, "20260105T100100-000001-pain002.xml", status_report(
        [PaymentStatus(e2e[0], "ACCP"), PaymentStatus(e2e[1], "RJCT", "AC04", "closed account"),
         PaymentStatus(e2e[2], "ACSP")], "PART", payment_info_status="PART"))

    outcomes = bank_rail.poll(MONDAY_10H_US)

    assert kinds(outcomes) == {ids[0]: OutcomeKind.CLEARED, ids[1]: OutcomeKind.FAILED,
                               ids[2]: OutcomeKind.CLEARED}
    failed = next(o for o in outcomes if o.kind is OutcomeKind.FAILED)
    assert failed.reason == "AC04 closed account"
    assert failed.outcome_id == f"20260105T100100-000001-pain002.xml:{e2e[1]}:failed"
    assert {o.rail_ref for o in outcomes} == {"bank-a-t1-1"}
    assert {o.at_us for o in outcomes} == {MONDAY_10H_US + 60_000_000}
    assert bank_rail.poll(MONDAY_10H_US) == []  # delivered once by this rail


def test_a_group_rejection_without_payments_fails_every_payment_of_the_file(
        tmp_path: Path) -> None:
    bank_rail, ids = sent(tmp_path, count=4)
    from_bank(tmp_path, "20260105T100100-000001-pain002.xml",
              status_report([], "RJCT", original="bank-a-t1-1", reason="FF01",
                            reason_text="invalid file format"))

    outcomes = bank_rail.poll(MONDAY_10H_US)

    assert kinds(outcomes) == dict.fromkeys(ids, OutcomeKind.FAILED)
    assert {o.reason for o in outcomes} == {"FF01 invalid file format"}


def test_a_batched_booking_settles_each_payment_and_charges_are_left_to_reconciliation(
        tmp_path: Path) -> None:
    bank_rail, ids = sent(tmp_path)
    e2e = tuple(end_to_end_of(pid) for pid in ids)
    name = "20260105T110000-000002-camt054.xml"
    data = notification(
        line(-30_003, batch_ref="bank-a-t1-1", parts=e2e, bank_ref="BK1"),
        line(-93, LineKind.CHARGE, batch_ref="bank-a-t1-1"),
        line(5_000, reference="INVOICE 1", counterparty="Globex SARL"))
    from_bank(tmp_path, name, data)

    outcomes = bank_rail.poll(MONDAY_10H_US)

    assert kinds(outcomes) == dict.fromkeys(ids, OutcomeKind.SETTLED)
    assert {o.rail_ref for o in outcomes} == {"bank-a-t1-1"}
    assert {o.at_us for o in outcomes} == {MONDAY_10H_US + 3_600_000_000}
    assert outcomes[0].details["bank_ref"] == "BK1"
    # Reconciliation gets the notification at once (its charge and its credit are breaks
    # to find); the original waits in from-bank for its outcomes' acknowledgement.
    assert (tmp_path / "statements" / name).read_bytes() == data
    assert (tmp_path / "from-bank" / name).exists()


def test_a_return_entry_returns_the_payment_with_its_reason(tmp_path: Path) -> None:
    bank_rail, ids = sent(tmp_path)
    from_bank(tmp_path, "20260107T100000-000009-camt054.xml", notification(
        line(10_001, LineKind.RETURN, end_to_end_id=end_to_end_of(ids[1]), reason="AC04")))

    (returned,) = bank_rail.poll(MONDAY_10H_US)

    assert (returned.payment_id, returned.kind, returned.reason, returned.rail_ref) == (
        ids[1], OutcomeKind.RETURNED, "AC04", "bank-a-t1-1")


def test_a_notification_of_nothing_of_ours_goes_to_statements_at_once(tmp_path: Path) -> None:
    bank_rail, _ = sent(tmp_path)
    name = "20260105T120000-000003-camt054.xml"
    from_bank(tmp_path, name, notification(line(5_000, reference="INVOICE 7")))

    assert bank_rail.poll(MONDAY_10H_US) == []
    assert (tmp_path / "statements" / name).exists()
    assert not (tmp_path / "from-bank" / name).exists()


def test_a_statement_is_moved_to_reconciliation_untouched(tmp_path: Path) -> None:
    bank_rail, ids = sent(tmp_path)
    statement = Statement(
        "STM-1", POOL_IBAN, "EUR", MONDAY_10H_US,
        (line(-30_003, batch_ref="bank-a-t1-1", parts=tuple(map(end_to_end_of, ids))),),
        opening=Balance(100_000, MONDAY_10H_US), closing=Balance(69_997, MONDAY_10H_US),
        sequence="1")
    data = write_camt053([statement], message_id="STM-1", created_at_us=MONDAY_10H_US,
                         scales=SCALES)
    name = "20260105T235959-000010-camt053.xml"
    from_bank(tmp_path, name, data)

    assert bank_rail.poll(MONDAY_10H_US) == []  # a statement settles nothing: camt.054 does
    assert (tmp_path / "statements" / name).read_bytes() == data
    assert not (tmp_path / "from-bank" / name).exists()


def test_a_garbage_file_is_set_aside_with_its_reason_and_the_poll_goes_on(
        tmp_path: Path) -> None:
    bank_rail, ids = sent(tmp_path)
    e2e = [end_to_end_of(pid) for pid in ids]
    from_bank(tmp_path, "20260105T100000-000001-garbage.xml", b"<Document><unclosed>")
    from_bank(tmp_path, "20260105T100001-000002-pain002.xml",
              status_report([PaymentStatus(x, "ACCP") for x in e2e], "ACCP",
                            original="bank-a-t9-9"))  # a message this rail never sent
    from_bank(tmp_path, "20260105T100002-000003-pain002.xml",
              status_report([PaymentStatus(x, "ACCP") for x in e2e], "ACCP"))

    outcomes = bank_rail.poll(MONDAY_10H_US)

    assert kinds(outcomes) == dict.fromkeys(ids, OutcomeKind.CLEARED)
    refused = tmp_path / "from-bank" / "refused"
    assert sorted(p.name for p in refused.iterdir()) == [
        "20260105T100000-000001-garbage.xml", "20260105T100000-000001-garbage.xml.why.txt",
        "20260105T100001-000002-pain002.xml", "20260105T100001-000002-pain002.xml.why.txt"]
    why = json.loads((refused / "20260105T100000-000001-garbage.xml.why.txt").read_text())
    assert why["code"] == "file_refused"
    assert "not well-formed" in why["detail"]
    assert bank_rail.poll(MONDAY_10H_US) == []


def test_a_file_moves_to_done_only_once_all_its_outcomes_are_acknowledged(
        tmp_path: Path) -> None:
    bank_rail, ids = sent(tmp_path)
    name = "20260105T100100-000001-pain002.xml"
    from_bank(tmp_path, name, status_report(
        [PaymentStatus(end_to_end_of(pid), "ACCP") for pid in ids], "ACCP"))
    done = tmp_path / "from-bank" / "done" / name

    first, second, third = bank_rail.poll(MONDAY_10H_US)
    bank_rail.acknowledge([first.outcome_id])
    bank_rail.acknowledge([second])  # an outcome itself will do too
    assert not done.exists()
    assert bank_rail.pending_files() == [name]

    bank_rail.acknowledge([third.outcome_id, "an-id-of-nothing"])

    assert done.exists()
    assert not (tmp_path / "from-bank" / name).exists()
    assert bank_rail.pending_files() == []


def test_a_restarted_rail_delivers_again_what_was_not_acknowledged_and_counts_on(
        tmp_path: Path) -> None:
    bank_rail, ids = sent(tmp_path)
    e2e = [end_to_end_of(pid) for pid in ids]
    from_bank(tmp_path, "20260105T100100-000001-pain002.xml", status_report(
        [PaymentStatus(x, "ACCP") for x in e2e], "ACCP"))
    from_bank(tmp_path, "20260105T110000-000002-camt054.xml", notification(
        line(-30_003, batch_ref="bank-a-t1-1", parts=tuple(e2e))))
    first = bank_rail.poll(MONDAY_10H_US)
    bank_rail.acknowledge([o for o in first if o.kind is OutcomeKind.CLEARED])
    bank_rail.close()
    assert (tmp_path / "from-bank" / "done" / "20260105T100100-000001-pain002.xml").exists()

    again = rail(tmp_path, instance="t2")  # the next process, another instance

    redelivered = again.poll(MONDAY_10H_US)
    assert sorted(o.outcome_id for o in redelivered) == sorted(
        o.outcome_id for o in first if o.kind is OutcomeKind.SETTLED) == sorted(
        f"20260105T110000-000002-camt054.xml:{x}:settled" for x in e2e)
    assert again.inquire([*ids, payment_ids(1, seed=99)[0]], MONDAY_10H_US) == set(ids)
    assert again.submit([pay(payment_ids(1, seed=5)[0])], MONDAY_10H_US).rail_ref == (
        "bank-a-t2-2")


def test_a_new_rail_drops_the_temporary_file_of_a_killed_writer(tmp_path: Path) -> None:
    rail(tmp_path)
    stale = tmp_path / "to-bank" / ".pain001-00000009-bank-a-t1-9.xml.tmp"
    stale.write_bytes(b"<Document>half a fi")

    again = rail(tmp_path, instance="t2")

    assert not stale.exists()
    assert again.submit([pay(payment_ids(1)[0])], MONDAY_10H_US).rail_ref == "bank-a-t2-1"


def test_a_rail_reads_back_its_own_files_in_both_versions_after_a_restart(
        tmp_path: Path) -> None:
    first, second = payment_ids(2)
    rail(tmp_path, "pain.001.001.03").submit([pay(first)], MONDAY_10H_US)
    rail(tmp_path, "pain.001.001.09", instance="t2").submit([pay(second)], MONDAY_10H_US)

    again = rail(tmp_path, instance="t3")

    assert again.inquire([first, second], MONDAY_10H_US) == {first, second}
    assert again.rail_refs_of(first) == ("bank-a-t1-1",)
    assert again.rail_refs_of(second) == ("bank-a-t2-2",)


def test_a_subscriber_gets_what_poll_delivers_and_again_what_it_failed_on(
        tmp_path: Path) -> None:
    bank_rail, ids = sent(tmp_path)
    from_bank(tmp_path, "20260105T100100-000001-pain002.xml", status_report(
        [PaymentStatus(end_to_end_of(pid), "ACCP") for pid in ids], "ACCP"))
    got: list[str] = []

    def once_failing(outcome: ChannelOutcome) -> None:
        if len(got) == 1 and outcome.payment_id == ids[1] and ids[1] not in got:
            got.append("failed")
            raise RuntimeError("subscriber down")
        got.append(outcome.payment_id)

    bank_rail.subscribe(once_failing)
    with pytest.raises(RuntimeError):
        bank_rail.poll(MONDAY_10H_US)
    again = bank_rail.poll(MONDAY_10H_US)

    assert [o.payment_id for o in again] == ids[1:]
    assert got == [ids[0], "failed", ids[1], ids[2]]
