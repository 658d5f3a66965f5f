"""Detection: each sample goes to its parser, camt XML to the camt parser the caller gives,
other XML and unknown bytes are refused, and the size bound comes before anything else."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest

import fundpool.recon.formats as formats
from fundpool.recon.formats.chain import parse_chain
from fundpool.recon.formats.csv_mapping import CsvMapping, mapping_from_yaml, parse_csv
from fundpool.recon.formats.detect import FILE_BYTES_MAX, detect_format, parse_statement
from fundpool.recon.formats.mt940 import parse_mt940
from fundpool.recon.model import (
    FileFormat,
    FileRefused,
    Statement,
    StatementFile,
    UnknownMessage,
)

SAMPLES = Path(__file__).parent / "samples"
SCALES = {"EUR": 2, "USDT": 6}
CAMT053 = (b'<?xml version="1.0" encoding="UTF-8"?>\n<!-- exported 2026-12-08 -->\n'
           b'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08">'
           b"<BkToCstmrStmt/></Document>")


def mapping() -> CsvMapping:
    return mapping_from_yaml((SAMPLES / "deutsche_bank.yaml").read_text(encoding="utf-8"))


class FakeCamt:
    """Stands in for channels.iso20022.camt.parse_camt, which this layer may not import."""

    def __init__(self, answer: FileFormat) -> None:
        self.answer = answer
        self.calls: list[tuple[bytes, str, Mapping[str, int]]] = []

    def __call__(self, data: bytes, name: str, *, scales: Mapping[str, int]) -> StatementFile:
        self.calls.append((data, name, scales))
        statement = Statement("STMT-1", "NL20INGB0001234567", "EUR", 0, ())
        return StatementFile(name, self.answer, f"{self.answer.value}.001.08", (statement,),
                             "0" * 64)


@pytest.mark.parametrize(("sample", "chosen"), [
    ("ing_two_days.sta", FileFormat.MT940),
    ("abnamro_two_days.sta", FileFormat.MT940),  # three banner lines before :20:
    ("sparkasse_latin1.sta", FileFormat.MT940),
    ("ethereum_usdt.json", FileFormat.CHAIN),
])
def test_each_sample_goes_to_its_parser(sample: str, chosen: FileFormat) -> None:
    data = (SAMPLES / sample).read_bytes()
    assert detect_format(data, sample) is chosen
    parser = parse_mt940 if chosen is FileFormat.MT940 else parse_chain
    assert parse_statement(data, sample, scales=SCALES) == parser(data, sample, scales=SCALES)


def test_a_csv_is_read_only_with_its_mapping() -> None:
    data = (SAMPLES / "deutsche_bank.csv").read_bytes()
    with pytest.raises(FileRefused) as refused:
        parse_statement(data, "db.csv", scales=SCALES)
    assert refused.value.facts["place"] == "byte 0"
    assert str(refused.value.facts["found"]).startswith("Umsätze Girokonto")
    assert detect_format(data, "db.csv", csv_mapping=mapping()) is FileFormat.CSV
    assert parse_statement(data, "db.csv", scales=SCALES, csv_mapping=mapping()) == parse_csv(
        data, "db.csv", mapping(), scales=SCALES)
    with pytest.raises(FileRefused, match="column mapping"):
        parse_statement(data, "db.csv", scales=SCALES, format=FileFormat.CSV)


@pytest.mark.parametrize("data", [
    b"\xef\xbb\xbf\r\n  :20:REF\r\n",  # a byte-order mark and blank space first
    b"{1:F01INGBNL2ABXXX0000000000}{2:I940INGBNL2AXXXN}{4:\r\n:20:REF\r\n",
    b":940:\r\n:20:940S261207\r\n",  # Rabobank's
])
def test_mt940_starts(data: bytes) -> None:
    assert detect_format(data, "x.sta") is FileFormat.MT940


@pytest.mark.parametrize(("namespace", "chosen"), [
    (b"camt.053.001.08", FileFormat.CAMT053),
    (b"camt.053.001.02", FileFormat.CAMT053),
    (b"camt.054.001.08", FileFormat.CAMT054),
])
def test_camt_is_chosen_by_its_namespace_and_read_by_the_parser_given(
        namespace: bytes, chosen: FileFormat) -> None:
    data = CAMT053.replace(b"camt.053.001.08", namespace)
    assert detect_format(data, "s.xml") is chosen
    camt = FakeCamt(chosen)
    parsed = parse_statement(data, "s.xml", scales=SCALES, camt=camt)
    assert camt.calls == [(data, "s.xml", SCALES)]
    assert parsed.format is chosen


def test_camt_without_its_parser_is_refused() -> None:
    with pytest.raises(FileRefused) as refused:
        parse_statement(CAMT053, "s.xml", scales=SCALES)
    assert (refused.value.facts["format"], refused.value.facts["place"]) == ("camt.053",
                                                                             "byte 0")


def test_a_camt_file_of_another_kind_than_the_one_asked_for_is_refused() -> None:
    with pytest.raises(UnknownMessage) as refused:
        parse_statement(CAMT053, "s.xml", scales=SCALES, format=FileFormat.CAMT054,
                        camt=FakeCamt(FileFormat.CAMT053))
    assert (refused.value.facts["expected"], refused.value.facts["found"]) == ("camt.054",
                                                                               "camt.053")


@pytest.mark.parametrize(("data", "found"), [
    (CAMT053.replace(b"camt.053.001.08", b"camt.052.001.08"), "camt.052.001.08"),
    (CAMT053.replace(b"camt.053.001.08", b"pain.002.001.10"), "pain.002.001.10"),
    (b"<html><body>Log in</body></html>", None),
])
def test_other_xml_is_an_unknown_message(data: bytes, found: str | None) -> None:
    with pytest.raises(UnknownMessage) as refused:
        detect_format(data, "x.xml")
    assert refused.value.code == "unknown_message"
    assert refused.value.facts.get("found") == found


@pytest.mark.parametrize("data", [b"", b" \r\n\t", b"\xef\xbb\xbf"])
def test_an_empty_file_is_refused(data: bytes) -> None:
    with pytest.raises(FileRefused, match="empty"):
        parse_statement(data, "e", scales=SCALES, csv_mapping=mapping())


def test_a_format_given_is_not_second_guessed() -> None:
    data = (SAMPLES / "ethereum_usdt.json").read_bytes()
    with pytest.raises(FileRefused, match="no MT940 message"):
        parse_statement(data, "usdt.json", scales=SCALES, format=FileFormat.MT940)


def test_the_size_bound_is_checked_before_anything_is_read(
        monkeypatch: pytest.MonkeyPatch) -> None:
    assert FILE_BYTES_MAX == 200 * 1024 * 1024
    monkeypatch.setattr(formats, "FILE_BYTES_MAX", 64)
    camt = FakeCamt(FileFormat.CAMT053)
    for data in (CAMT053, b"\x00" * 65, (SAMPLES / "ing_two_days.sta").read_bytes()):
        with pytest.raises(FileRefused) as refused:
            parse_statement(data, "big", scales=SCALES, camt=camt)
        assert refused.value.facts["size_bytes"] == len(data)
        assert refused.value.facts["size_bytes_max"] == 64
    assert camt.calls == []
    for parser in (parse_mt940, parse_chain):
        with pytest.raises(FileRefused, match="larger than"):
            parser(b" " * 65, "big", scales=SCALES)
    with pytest.raises(FileRefused, match="larger than"):
        parse_csv(b" " * 65, "big", mapping(), scales=SCALES)
