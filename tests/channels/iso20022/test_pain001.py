"""pain.001: what fundpool writes passes ISO 20022's own schema in both versions (checked
with xmlschema directly, not only through the writer), reads back to the values written, is
the same bytes for the same values, and every value a bank would refuse is refused before a
byte is written, naming the payment and the place."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path
from xml.etree.ElementTree import fromstring

import pytest
import xmlschema
from hypothesis import given
from hypothesis import strategies as st

from fundpool.channels.iso20022 import pain001
from fundpool.channels.iso20022.errors import InvalidAccount, MessageNotWritable
from fundpool.channels.iso20022.pain001 import (
    CreditTransfer,
    Pain001,
    Party,
    read_pain001,
    validate_pain001,
    write_pain001,
)
from fundpool.core import errors as core_errors
from fundpool.recon.model import DAY_US, FileRefused, UnknownMessage

SCHEMAS = Path(pain001.__file__).parent / "schemas"
VERSIONS = ("pain.001.001.09", "pain.001.001.03")
CREATED_US = 1_767_603_600_123_456  # 2026-01-05T09:00:00.123456Z
EXECUTION_US = (date(2026, 1, 6) - date(1970, 1, 1)).days * DAY_US
DEBTOR = Party("Fundpool Treasury GmbH", "DE89370400440532013000", "DEUTDEFFXXX")
TRANSFERS = (
    CreditTransfer("0194f3a2b7c84e1f9a6d2c3b4e5f6a71", 200_000,
                   Party("Alpha Supplies BV", "NL91ABNA0417164300", "ABNANL2A"),
                   "Payout 0194f3a2"),
    CreditTransfer("0194f3a2b7c84e1f9a6d2c3b4e5f6a72", 175_000,
                   Party("Beta Logistique SARL", "FR1420041010050500013M02606")),
    CreditTransfer("0194f3a2b7c84e1f9a6d2c3b4e5f6a73", 1,
                   Party("Gamma Oy", "FI2112345600000785")),
)
NS = {"p9": "urn:iso:std:iso:20022:tech:xsd:pain.001.001.09",
      "p3": "urn:iso:std:iso:20022:tech:xsd:pain.001.001.03"}


def write(transfers: tuple[CreditTransfer, ...] = TRANSFERS, *, debtor: Party = DEBTOR,
          asset: str = "EUR", scale: int = 2, version: str = "pain.001.001.09",
          message_id: str = "MSG-20260105-01", payment_info_id: str = "PMT-20260105-01"
          ) -> bytes:
    return write_pain001(message_id=message_id, created_at_us=CREATED_US, debtor=debtor,
                         payment_info_id=payment_info_id, execution_date_us=EXECUTION_US,
                         asset=asset, scale=scale, transfers=transfers, version=version)


def texts(data: bytes, path: str, version: str) -> list[str]:
    prefix = "p9" if version.endswith("09") else "p3"
    qualified = "/".join(f"{prefix}:{step}" for step in path.split("/"))
    return [element.text or "" for element in fromstring(data).iterfind(qualified, NS)]


@pytest.mark.parametrize("version", VERSIONS)
def test_written_pain001_is_valid_against_the_official_schema(version: str) -> None:
    data = write(version=version)

    schema = xmlschema.XMLSchema(str(SCHEMAS / f"{version}.xsd"))
    assert schema.is_valid(data.decode())
    validate_pain001(data, version)  # the writer's own gate says the same
    assert data.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n')
    assert f'xmlns="urn:iso:std:iso:20022:tech:xsd:{version}"'.encode() in data


@pytest.mark.parametrize("version", VERSIONS)
def test_counts_sums_charges_and_ids_are_written(version: str) -> None:
    data = write(version=version)

    assert texts(data, "CstmrCdtTrfInitn/GrpHdr/NbOfTxs", version) == ["3"]
    assert texts(data, "CstmrCdtTrfInitn/GrpHdr/CtrlSum", version) == ["3750.01"]
    assert texts(data, "CstmrCdtTrfInitn/PmtInf/NbOfTxs", version) == ["3"]
    assert texts(data, "CstmrCdtTrfInitn/PmtInf/CtrlSum", version) == ["3750.01"]
    assert texts(data, "CstmrCdtTrfInitn/PmtInf/ChrgBr", version) == ["SLEV"]
    assert texts(data, "CstmrCdtTrfInitn/PmtInf/PmtTpInf/SvcLvl/Cd", version) == ["SEPA"]
    assert texts(data, "CstmrCdtTrfInitn/GrpHdr/CreDtTm", version) == [
        "2026-01-05T09:00:00.123456Z"]
    assert texts(data, "CstmrCdtTrfInitn/PmtInf/CdtTrfTxInf/PmtId/EndToEndId", version) == [
        transfer.end_to_end_id for transfer in TRANSFERS]
    assert texts(data, "CstmrCdtTrfInitn/PmtInf/CdtTrfTxInf/Amt/InstdAmt", version) == [
        "2000.00", "1750.00", "0.01"]
    bic = "BICFI" if version.endswith("09") else "BIC"
    assert texts(data, f"CstmrCdtTrfInitn/PmtInf/DbtrAgt/FinInstnId/{bic}", version) == [
        "DEUTDEFFXXX"]
    date_path = "ReqdExctnDt/Dt" if version.endswith("09") else "ReqdExctnDt"
    assert texts(data, f"CstmrCdtTrfInitn/PmtInf/{date_path}", version) == ["2026-01-06"]


@pytest.mark.parametrize("version", VERSIONS)
def test_write_then_read_gives_back_the_values(version: str) -> None:
    data = write(version=version)

    assert read_pain001(data, "out.xml", scales={"EUR": 2}) == Pain001(
        message_id="MSG-20260105-01", created_at_us=CREATED_US,
        payment_info_id="PMT-20260105-01", debtor=DEBTOR, asset="EUR",
        execution_date_us=EXECUTION_US, transfers=TRANSFERS, version=version)


def test_the_same_values_give_the_same_bytes() -> None:
    assert write() == write()
    assert write(version="pain.001.001.03") == write(version="pain.001.001.03")


def test_an_account_that_is_not_an_iban_goes_in_othr_and_no_sepa_service_level() -> None:
    transfers = (CreditTransfer("WIRE-1", 5_000_00, Party("Globex Corporation",
                                                          "021000021-123456789")),)
    debtor = Party("Fundpool Inc", "0123456789", None)
    data = write(transfers, debtor=debtor, asset="USD")

    version = "pain.001.001.09"
    assert texts(data, "CstmrCdtTrfInitn/PmtInf/DbtrAcct/Id/Othr/Id", version) == [
        "0123456789"]
    assert texts(data, "CstmrCdtTrfInitn/PmtInf/CdtTrfTxInf/CdtrAcct/Id/Othr/Id", version) == [
        "021000021-123456789"]
    # without a BIC the debtor's agent is the agreed NOTPROVIDED, and a USD wire is not SEPA
    assert texts(data, "CstmrCdtTrfInitn/PmtInf/DbtrAgt/FinInstnId/Othr/Id", version) == [
        "NOTPROVIDED"]
    assert texts(data, "CstmrCdtTrfInitn/PmtInf/PmtTpInf/SvcLvl/Cd", version) == []
    read = read_pain001(data, "wire.xml", scales={"USD": 2})
    assert (read.debtor, read.transfers, read.asset) == (debtor, transfers, "USD")


def test_ibans_are_written_compact_and_upper_case() -> None:
    transfers = (CreditTransfer("E2E-1", 100, Party("Alpha", "nl91 abna 0417 1643 00")),)
    data = write(transfers, debtor=Party("Fundpool", "DE89 3704 0044 0532 0130 00"))

    read = read_pain001(data, "x.xml", scales={"EUR": 2})
    assert read.debtor.account == "DE89370400440532013000"
    assert read.transfers[0].creditor.account == "NL91ABNA0417164300"


def test_an_invalid_iban_is_refused_naming_the_payment() -> None:
    bad = CreditTransfer("E2E-BAD", 100, Party("Alpha", "DE89370400440532013001"))

    with pytest.raises(InvalidAccount) as refused:
        write((TRANSFERS[0], bad))

    error = refused.value
    assert isinstance(error, core_errors.InvalidAccount)  # the core's code, answered as such
    assert error.code == "invalid_account"
    assert error.facts["end_to_end_id"] == "E2E-BAD"
    assert error.facts["party"] == "creditor"
    assert error.facts["account"] == "DE89370400440532013001"
    assert error.facts["place"] == "Document/CstmrCdtTrfInitn/PmtInf[1]/CdtTrfTxInf[2]/CdtrAcct/Id"


def test_the_debtors_invalid_iban_names_the_payment_information_block() -> None:
    with pytest.raises(InvalidAccount) as refused:
        write(debtor=Party("Fundpool", "GB29NWBK60161331926818"))

    assert refused.value.facts["payment_info_id"] == "PMT-20260105-01"
    assert refused.value.facts["party"] == "debtor"


def test_an_invalid_bic_is_refused() -> None:
    bad = CreditTransfer("E2E-BAD", 100, Party("Alpha", "NL91ABNA0417164300", "ABNAXX2A"))

    with pytest.raises(InvalidAccount) as refused:
        write((bad,))

    assert refused.value.facts["bic"] == "ABNAXX2A"
    assert refused.value.facts["end_to_end_id"] == "E2E-BAD"


def test_a_bic_the_2009_schema_does_not_take_is_refused_for_version_3_only() -> None:
    digits_in_bank_code = CreditTransfer("E2E-1", 100, Party("Alpha", "NL91ABNA0417164300",
                                                             "AB12NL2A"))

    write((digits_in_bank_code,))  # pain.001.001.09's BICFI takes it
    with pytest.raises(InvalidAccount):
        write((digits_in_bank_code,), version="pain.001.001.03")


def test_an_id_longer_than_35_characters_is_refused_never_cut() -> None:
    uuid_text = "0194f3a2-b7c8-4e1f-9a6d-2c3b4e5f6a71"  # 36: a payment id as text
    with pytest.raises(MessageNotWritable) as refused:
        write((CreditTransfer(uuid_text, 100, Party("Alpha", "NL91ABNA0417164300")),))
    assert refused.value.code == "message_not_writable"
    assert refused.value.facts["field"] == "end_to_end_id"
    assert refused.value.facts["place"] == (
        "Document/CstmrCdtTrfInitn/PmtInf[1]/CdtTrfTxInf[1]/PmtId/EndToEndId")

    with pytest.raises(MessageNotWritable) as refused:
        write(message_id="M" * 36)
    assert refused.value.facts["field"] == "message_id"
    with pytest.raises(MessageNotWritable) as refused:
        write(payment_info_id="")
    assert refused.value.facts["field"] == "payment_info_id"


def test_names_are_cut_to_70_characters() -> None:
    long_name = "Very Long Company Name " * 5  # 115 characters
    data = write((CreditTransfer("E2E-1", 100, Party(long_name, "NL91ABNA0417164300")),))

    (name,) = texts(data, "CstmrCdtTrfInitn/PmtInf/CdtTrfTxInf/Cdtr/Nm", "pain.001.001.09")
    assert name == long_name.strip()[:70].rstrip()
    assert len(name) <= 70


def test_two_transfers_with_one_end_to_end_id_are_refused() -> None:
    twice = (TRANSFERS[0], TRANSFERS[0])
    with pytest.raises(MessageNotWritable) as refused:
        write(twice)
    assert refused.value.facts["end_to_end_id"] == TRANSFERS[0].end_to_end_id


@pytest.mark.parametrize(("transfers", "asset", "scale", "field"), [
    ((), "EUR", 2, "transfers"),
    ((CreditTransfer("E2E-1", 0, Party("A", "NL91ABNA0417164300")),), "EUR", 2, "amount_minor"),
    ((CreditTransfer("E2E-1", -5, Party("A", "NL91ABNA0417164300")),), "EUR", 2,
     "amount_minor"),
    # a stablecoin is not an ISO 4217 currency: no pain.001 can carry it
    (TRANSFERS, "USDT", 6, "asset"),
    # the schema's amounts take 5 decimals: a 6th that is not zero cannot be written
    ((CreditTransfer("E2E-1", 1, Party("A", "NL91ABNA0417164300")),), "EUR", 6,
     "amount_minor"),
    # 10000000000000000.01: 19 digits, one more than any ISO 20022 amount has
    ((CreditTransfer("E2E-1", 10**18 + 1, Party("A", "NL91ABNA0417164300")),), "EUR", 2,
     "amount_minor"),
    ((CreditTransfer("E2E-1", 100, Party("", "NL91ABNA0417164300")),), "EUR", 2, "name"),
    ((CreditTransfer("E2E-1", 100, Party("A", "NL91ABNA0417164300"), "x" * 141),), "EUR", 2,
     "remittance"),
    ((CreditTransfer("E2E-1", 100, Party("A\x00B", "NL91ABNA0417164300")),), "EUR", 2,
     "name"),
])
def test_values_a_bank_would_refuse_are_refused_before_writing(
        transfers: tuple[CreditTransfer, ...], asset: str, scale: int, field: str) -> None:
    with pytest.raises(MessageNotWritable) as refused:
        write(transfers, asset=asset, scale=scale)
    assert refused.value.facts["field"] == field


def test_an_unknown_version_is_refused() -> None:
    with pytest.raises(MessageNotWritable):
        write(version="pain.001.001.12")
    with pytest.raises(UnknownMessage):
        validate_pain001(write(), "pain.001.001.12")


def test_validate_names_the_place_the_schema_refuses() -> None:
    data = write().replace(b"<IBAN>FR1420041010050500013M02606</IBAN>", b"<IBAN>not-an-iban</IBAN>")

    with pytest.raises(FileRefused) as refused:
        validate_pain001(data, "pain.001.001.09")

    assert refused.value.facts["place"] == (
        "Document/CstmrCdtTrfInitn/PmtInf[1]/CdtTrfTxInf[2]/CdtrAcct/Id/IBAN")


def test_validate_refuses_another_versions_message() -> None:
    with pytest.raises(UnknownMessage) as refused:
        validate_pain001(write(version="pain.001.001.03"), "pain.001.001.09")
    assert refused.value.facts["found"] == "urn:iso:std:iso:20022:tech:xsd:pain.001.001.03"


def test_the_simulated_bank_refuses_a_control_sum_that_does_not_add_up() -> None:
    data = write().replace(b"<CtrlSum>3750.01</CtrlSum>", b"<CtrlSum>3750.02</CtrlSum>", 1)

    with pytest.raises(FileRefused) as refused:
        read_pain001(data, "tampered.xml", scales={"EUR": 2})

    assert refused.value.facts["place"] == "Document/CstmrCdtTrfInitn/GrpHdr/CtrlSum"
    assert refused.value.facts["file"] == "tampered.xml"


def test_the_simulated_bank_refuses_a_currency_the_pool_does_not_hold() -> None:
    with pytest.raises(FileRefused) as refused:
        read_pain001(write(), "x.xml", scales={"USD": 2})
    assert refused.value.facts["place"] == (
        "Document/CstmrCdtTrfInitn/PmtInf[1]/CdtTrfTxInf[1]/Amt/InstdAmt/@Ccy")


_TEXT = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 -./",
                min_size=1, max_size=35).map(str.strip).filter(bool)
_IBANS = st.sampled_from(["NL91ABNA0417164300", "FR1420041010050500013M02606",
                          "FI2112345600000785", "DE02120300000000202051", "12345678"])


@given(st.lists(st.tuples(_TEXT, st.integers(1, 10**15), _TEXT, _IBANS,
                          st.none() | _TEXT.map(lambda text: text[:140])),
                min_size=1, max_size=12, unique_by=lambda row: row[0]),
       st.sampled_from(VERSIONS))
def test_any_transfers_round_trip_through_a_schema_valid_file(
        rows: list[tuple[str, int, str, str, str | None]], version: str) -> None:
    transfers = tuple(CreditTransfer(e2e, amount, Party(name, account), remittance)
                      for e2e, amount, name, account, remittance in rows)

    data = write(transfers, version=version)
    read = read_pain001(data, "p.xml", scales={"EUR": 2})

    assert read.transfers == transfers
    total = sum(amount for _, amount, *_ in rows)
    assert texts(data, "CstmrCdtTrfInitn/GrpHdr/CtrlSum", version) == [
        f"{Decimal(total).scaleb(-2):f}"]
