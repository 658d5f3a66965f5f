"""pain.002: a bank's partial acceptance and its whole-group rejection read to exact values,
what each status means to a payment, reports written by the simulated bank read back the
same in both versions, and statuses or references that cannot be acted on refused at their
place."""

from __future__ import annotations

from pathlib import Path

import pytest

from fundpool.channels.iso20022.errors import MessageNotWritable
from fundpool.channels.iso20022.status import (
    OUTCOMES,
    PaymentStatus,
    StatusReport,
    TxStatus,
    parse_pain002,
    write_pain002,
)
from fundpool.recon.model import FileRefused, UnknownMessage

SAMPLES = Path(__file__).parent / "samples"
CREATED_US = 1_767_603_731_000_000  # 2026-01-05T09:02:11Z


def read(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def test_a_partial_acceptance_reads_to_each_payments_status_and_reason() -> None:
    report = parse_pain002(read("pain002_v10_partial.xml"), "sts.xml")

    assert report == StatusReport(
        message_id="STS-20260105-0001",
        created_at_us=CREATED_US,  # 10:02:11+01:00
        original_message_id="MSG-20260105-01",
        original_payment_info_id="PMT-20260105-01",
        group_status="PART",
        payments=(
            PaymentStatus("0194f3a2b7c84e1f9a6d2c3b4e5f6a71", "ACSP"),
            PaymentStatus("0194f3a2b7c84e1f9a6d2c3b4e5f6a72", "ACSC"),
            PaymentStatus("0194f3a2b7c84e1f9a6d2c3b4e5f6a99", "RJCT", "AC04",
                          "Account closed: the creditor's account no longer exists"),
            PaymentStatus("0194f3a2b7c84e1f9a6d2c3b4e5f6a74", "RJCT", "AM04"),
        ),
        version="pain.002.001.10",
        payment_info_status="PART",
        original_message_name="pain.001.001.09",
    )
    assert [payment.outcome for payment in report.payments] == [
        TxStatus.ACCEPTED, TxStatus.SETTLED, TxStatus.REJECTED, TxStatus.REJECTED]
    assert not report.rejects_all


def test_a_whole_group_rejection_lists_no_payment_and_rejects_them_all() -> None:
    report = parse_pain002(read("pain002_v03_group_rejected.xml"), "rej.xml")

    assert report.rejects_all
    assert (report.group_status, report.payments, report.original_payment_info_id) == (
        "RJCT", (), None)
    assert (report.reason, report.reason_text) == ("FF01", "Invalid file format")
    assert report.original_message_id == "MSG-20260105-01"
    assert report.version == "pain.002.001.03"
    # a time without a zone is read as UTC
    assert report.created_at_us == 1_767_605_400_000_000  # 2026-01-05T09:30:00Z


def test_a_rejected_payment_information_block_rejects_all_too() -> None:
    report = StatusReport("S-1", CREATED_US, "MSG-1", "PMT-1", None, (), "pain.002.001.10",
                          payment_info_status="RJCT", reason="AM04")
    assert parse_pain002(write_pain002(report), "s.xml").rejects_all


def test_every_known_status_has_an_outcome() -> None:
    assert OUTCOMES["ACTC"] is TxStatus.ACCEPTED
    assert OUTCOMES["ACWC"] is TxStatus.ACCEPTED
    assert OUTCOMES["ACCC"] is TxStatus.SETTLED
    assert OUTCOMES["RCVD"] is TxStatus.PENDING
    assert {TxStatus(code) for code in ("ACCP", "ACSC", "RJCT", "PDNG")} == set(TxStatus)


@pytest.mark.parametrize("version", ["pain.002.001.10", "pain.002.001.03"])
@pytest.mark.parametrize("report", [
    StatusReport("STS-1", CREATED_US, "MSG-1", "PMT-1", "PART", (
        PaymentStatus("E2E-1", "ACSC"),
        PaymentStatus("E2E-2", "RJCT", "AC04", "Account closed"),
        PaymentStatus("E2E-3", "RJCT", "NOT-ISO-REASON"),  # a bank's own: written as Prtry
        PaymentStatus("E2E-4", "PDNG"),
    ), "", payment_info_status="PART"),
    StatusReport("STS-2", CREATED_US + 1, "MSG-2", None, "RJCT", (), "", reason="FF01",
                 reason_text="Invalid file format"),
    StatusReport("STS-3", CREATED_US, "MSG-3", "PMT-3", "ACCP", (), ""),
], ids=["partial", "group-rejected", "accepted-whole"])
def test_a_written_report_reads_back_the_same(report: StatusReport, version: str) -> None:
    data = write_pain002(report, version)

    expected_name = "pain.001.001.09" if version.endswith("10") else "pain.001.001.03"
    assert parse_pain002(data, "s.xml") == StatusReport(
        report.message_id, report.created_at_us, report.original_message_id,
        report.original_payment_info_id, report.group_status, report.payments, version,
        payment_info_status=report.payment_info_status, reason=report.reason,
        reason_text=report.reason_text, original_message_name=expected_name)
    assert write_pain002(report, version) == data


def test_a_payment_without_its_own_status_takes_its_blocks() -> None:
    data = write_pain002(StatusReport("S", CREATED_US, "M", "P", None,
                                      (PaymentStatus("E2E-1", "RJCT", "AC04"),),
                                      "pain.002.001.10", payment_info_status="RJCT"))
    without = data.replace(b"<TxSts>RJCT</TxSts>", b"")

    (payment,) = parse_pain002(without, "s.xml").payments
    assert (payment.status, payment.reason) == ("RJCT", "AC04")


def test_a_payment_with_no_status_that_applies_is_refused() -> None:
    data = write_pain002(StatusReport("S", CREATED_US, "M", "P", "PART",
                                      (PaymentStatus("E2E-1", "RJCT"),), "pain.002.001.10",
                                      payment_info_status="PART"))
    without = data.replace(b"<TxSts>RJCT</TxSts>", b"")

    with pytest.raises(FileRefused) as refused:
        parse_pain002(without, "s.xml")
    assert refused.value.facts["place"] == (
        "Document/CstmrPmtStsRpt/OrgnlPmtInfAndSts[1]/TxInfAndSts[1]/TxSts")


def test_an_unknown_status_code_is_refused_at_its_place() -> None:
    data = read("pain002_v10_partial.xml").replace(b"<TxSts>ACSC</TxSts>",
                                                   b"<TxSts>WHAT</TxSts>")

    with pytest.raises(FileRefused) as refused:
        parse_pain002(data, "sts.xml")
    assert refused.value.facts["place"] == (
        "Document/CstmrPmtStsRpt/OrgnlPmtInfAndSts[1]/TxInfAndSts[2]/TxSts")
    assert refused.value.facts["found"] == "WHAT"


def test_a_payment_without_its_end_to_end_id_is_refused() -> None:
    data = read("pain002_v10_partial.xml").replace(
        b"<OrgnlEndToEndId>0194f3a2b7c84e1f9a6d2c3b4e5f6a74</OrgnlEndToEndId>", b"")

    with pytest.raises(FileRefused) as refused:
        parse_pain002(data, "sts.xml")
    assert refused.value.facts["place"] == (
        "Document/CstmrPmtStsRpt/OrgnlPmtInfAndSts[1]/TxInfAndSts[4]/OrgnlEndToEndId")


def test_a_report_without_any_status_is_refused() -> None:
    data = read("pain002_v03_group_rejected.xml").replace(b"<GrpSts>RJCT</GrpSts>", b"")

    with pytest.raises(FileRefused) as refused:
        parse_pain002(data, "rej.xml")
    assert refused.value.facts["place"] == "Document/CstmrPmtStsRpt/OrgnlGrpInfAndSts"


def test_another_pain002_version_is_an_unknown_message() -> None:
    data = read("pain002_v10_partial.xml").replace(b"pain.002.001.10", b"pain.002.001.12")

    with pytest.raises(UnknownMessage) as refused:
        parse_pain002(data, "sts.xml")
    assert refused.value.facts["found"] == "urn:iso:std:iso:20022:tech:xsd:pain.002.001.12"
    assert refused.value.facts["expected"] == [
        "urn:iso:std:iso:20022:tech:xsd:pain.002.001.10",
        "urn:iso:std:iso:20022:tech:xsd:pain.002.001.03"]


def test_the_writer_refuses_what_the_version_cannot_carry() -> None:
    settled_at_creditor = StatusReport("S", CREATED_US, "M", "P", None,
                                       (PaymentStatus("E2E-1", "ACCC"),), "")
    write_pain002(settled_at_creditor, "pain.002.001.10")
    with pytest.raises(MessageNotWritable) as refused:  # not in the 2009 code list
        write_pain002(settled_at_creditor, "pain.002.001.03")
    assert refused.value.facts["place"] == (
        "Document/CstmrPmtStsRpt/OrgnlPmtInfAndSts[1]/TxInfAndSts[1]/TxSts")

    with pytest.raises(MessageNotWritable):  # payments outside a block
        write_pain002(StatusReport("S", CREATED_US, "M", None, None,
                                   (PaymentStatus("E2E-1", "ACSC"),), ""))
    with pytest.raises(MessageNotWritable):
        write_pain002(StatusReport("S", CREATED_US, "M", "P", "RJCT", (), "",
                                   reason_text="x" * 106))
