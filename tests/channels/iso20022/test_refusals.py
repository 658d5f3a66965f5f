"""Bad and hostile input: every reader of this package (statements, status reports, the
simulated bank's pain.001) refuses XML bombs and external entities before they expand or
fetch anything; bytes that do not decode, other message versions, truncated files, missing
or malformed elements, balances that do not add up and files past their bounds are refused
as a whole, each with the file's name and the place."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from fundpool.channels.iso20022 import camt
from fundpool.channels.iso20022.camt import parse_camt
from fundpool.channels.iso20022.pain001 import read_pain001, validate_pain001
from fundpool.channels.iso20022.status import parse_pain002
from fundpool.recon import formats
from fundpool.recon.model import BalancesDoNotAddUp, FileRefused, UnknownMessage

SAMPLES = Path(__file__).parent / "samples"
SCALES = {"EUR": 2, "USD": 2}
STATEMENT = (SAMPLES / "camt053_v02_two_accounts.xml").read_bytes()
FIRST = "Document/BkToCstmrStmt/Stmt[1]"
SECOND = "Document/BkToCstmrStmt/Stmt[2]"

READERS: dict[str, Callable[[bytes, str], object]] = {
    "camt": lambda data, name: parse_camt(data, name, scales=SCALES),
    "pain.002": parse_pain002,
    "pain.001": lambda data, name: read_pain001(data, name, scales=SCALES),
    "pain.001 schema": lambda data, name: validate_pain001(data, "pain.001.001.09", name=name),
}


def edited(old: bytes, new: bytes, data: bytes = STATEMENT) -> bytes:
    assert data.count(old) == 1, old
    return data.replace(old, new)


def refusal(data: bytes, name: str = "bad.xml") -> FileRefused:
    with pytest.raises(FileRefused) as refused:
        parse_camt(data, name, scales=SCALES)
    assert refused.value.facts["file"] == name
    return refused.value


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE Document [
  <!ENTITY lol "lol">
  <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
  <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
  <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
  <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
  <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
  <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
  <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
  <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
  <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"><BkToCstmrStmt><GrpHdr>
<MsgId>&lol9;</MsgId></GrpHdr></BkToCstmrStmt></Document>
"""


@pytest.mark.parametrize("reader", READERS, ids=list(READERS))
def test_the_billion_laughs_bomb_is_refused_at_its_doctype_by_every_reader(reader: str) -> None:
    with pytest.raises(FileRefused) as refused:
        READERS[reader](BILLION_LAUGHS, "bomb.xml")

    assert refused.value.facts["place"] == "line 2, column 1"
    assert refused.value.facts["why"] == "DTDForbidden"
    assert refused.value.facts["file"] == "bomb.xml"


@pytest.mark.parametrize("reader", READERS, ids=list(READERS))
def test_an_external_entity_is_never_read(reader: str, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-PASSWORD")
    xxe = (f'<?xml version="1.0"?>\n<!DOCTYPE Document [<!ENTITY xxe SYSTEM "{secret.as_uri()}">]>'
           '\n<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"><BkToCstmrStmt>'
           "<GrpHdr><MsgId>&xxe;</MsgId></GrpHdr></BkToCstmrStmt></Document>").encode()

    with pytest.raises(FileRefused) as refused:
        READERS[reader](xxe, "xxe.xml")

    assert refused.value.facts["place"] == "line 2, column 1"
    assert "TOP-SECRET" not in str(refused.value.to_dict())


def test_an_external_dtd_is_refused_without_fetching_it() -> None:
    remote = edited(b"<Document xmlns=", b'<!DOCTYPE Document SYSTEM "http://203.0.113.9/x.dtd">'
                                          b"\n<Document xmlns=")
    error = refusal(remote)
    assert error.facts["place"] == "line 5, column 1"  # after the declaration and a comment


def test_a_latin1_file_without_a_declaration_is_refused_at_its_first_non_utf8_byte() -> None:
    latin1 = edited(b"<Nm>Epsilon SL</Nm>", "<Nm>Épsilon Süd SL</Nm>".encode("latin-1"))
    latin1 = latin1.replace(b' encoding="UTF-8"', b"")

    error = refusal(latin1, "latin1.xml")

    offset = latin1.index("É".encode("latin-1"))
    assert error.facts["place"] == f"byte {offset}"
    assert error.facts["encoding"] == "utf-8"
    assert error.facts["line"] == latin1[:offset].count(b"\n") + 1


def test_a_latin1_file_that_says_so_is_read() -> None:
    latin1 = edited(b"<Nm>Epsilon SL</Nm>", "<Nm>Épsilon Süd SL</Nm>".encode("latin-1"))
    latin1 = latin1.replace(b'encoding="UTF-8"', b'encoding="ISO-8859-1"')

    first, _ = parse_camt(latin1, "latin1.xml", scales=SCALES).statements
    assert first.lines[5].counterparty == "Épsilon Süd SL"


def test_an_encoding_python_does_not_know_is_refused() -> None:
    error = refusal(STATEMENT.replace(b'encoding="UTF-8"', b'encoding="EBCDIC-XYZ"'))
    assert (error.facts["place"], error.facts["found"]) == ("line 1", "EBCDIC-XYZ")


@pytest.mark.parametrize(("namespace", "found"), [
    (b"urn:iso:std:iso:20022:tech:xsd:camt.053.001.04",
     "urn:iso:std:iso:20022:tech:xsd:camt.053.001.04"),
    (b"urn:iso:std:iso:20022:tech:xsd:camt.052.001.08",
     "urn:iso:std:iso:20022:tech:xsd:camt.052.001.08"),
    (b"http://example.com/not-iso", "http://example.com/not-iso"),
])
def test_another_message_or_version_is_an_unknown_message(namespace: bytes, found: str) -> None:
    data = STATEMENT.replace(b"urn:iso:std:iso:20022:tech:xsd:camt.053.001.02", namespace)

    with pytest.raises(UnknownMessage) as refused:
        parse_camt(data, "other.xml", scales=SCALES)

    assert refused.value.facts["found"] == found
    assert refused.value.facts["place"] == "Document"
    assert refused.value.facts["expected"] == [
        f"urn:iso:std:iso:20022:tech:xsd:{version}" for version in camt.VERSIONS]


def test_a_truncated_file_is_refused_at_its_end() -> None:
    cut = STATEMENT[:len(STATEMENT) // 2]

    error = refusal(cut, "cut.xml")

    last_line = cut.decode().count("\n") + 1
    assert str(error.facts["place"]).startswith(f"line {last_line}, column ")
    assert "truncated" in error.detail


def test_a_mismatched_tag_is_refused_at_its_line_and_column() -> None:
    broken = edited(b"<AcctSvcrRef>2026010512345678903</AcctSvcrRef>",
                    b"<AcctSvcrRef>2026010512345678903</AcctSvcRef>")
    at = broken.index(b"</AcctSvcRef>")
    line = broken[:at].count(b"\n") + 1
    column = at - broken.rindex(b"\n", 0, at) + 2  # 1-based, at the closing tag's name

    error = refusal(broken)

    assert error.facts["place"] == f"line {line}, column {column}"
    assert error.facts["why"] == "mismatched tag"


def test_balances_that_do_not_add_up_are_refused_with_the_figures() -> None:
    wrong = edited(b'<Amt Ccy="USD">3985.00</Amt>', b'<Amt Ccy="USD">3984.99</Amt>')

    with pytest.raises(BalancesDoNotAddUp) as refused:
        parse_camt(wrong, "wrong.xml", scales=SCALES)

    facts = refused.value.facts
    assert refused.value.code == "balances_do_not_add_up"
    assert (facts["file"], facts["place"], facts["statement_id"]) == (
        "wrong.xml", SECOND, "2026010500004")
    assert (facts["opening_minor"], facts["entries_minor"], facts["closing_minor"]) == (
        -1_000_00, 4_985_00, 3_984_99)


def test_a_pending_entry_does_not_count_towards_the_balance() -> None:
    booked = edited(b"<Sts>PDNG</Sts>", b"<Sts>BOOK</Sts>")
    with pytest.raises(BalancesDoNotAddUp) as refused:
        parse_camt(booked, "x.xml", scales=SCALES)
    assert refused.value.facts["entries_minor"] == -3_602_60 + 300_00


@pytest.mark.parametrize(("old", "new", "place"), [
    (b'<Amt Ccy="USD">15.00</Amt>', b"", f"{SECOND}/Ntry[2]/Amt"),
    (b'<Amt Ccy="EUR">2.50</Amt>\n        <CdtDbtInd>DBIT</CdtDbtInd>',
     b'<Amt Ccy="EUR">2.50</Amt>', f"{FIRST}/Ntry[3]/CdtDbtInd"),
    (b"<Id>2026010500004</Id>", b"", f"{SECOND}/Id"),
    (b"<Sts>PDNG</Sts>", b"", f"{FIRST}/Ntry[6]/Sts"),
    (b'<Amt Ccy="USD">5000.00</Amt>', b"<Amt>5000.00</Amt>", f"{SECOND}/Ntry[1]/Amt/@Ccy"),
    (b'<Amt Ccy="USD">5000.00</Amt>', b'<Amt Ccy="USD">5000.005</Amt>', f"{SECOND}/Ntry[1]/Amt"),
    (b'<Amt Ccy="USD">5000.00</Amt>', b'<Amt Ccy="USD">-5000.00</Amt>', f"{SECOND}/Ntry[1]/Amt"),
    (b'<Amt Ccy="USD">5000.00</Amt>', b'<Amt Ccy="USD">5 000,00</Amt>', f"{SECOND}/Ntry[1]/Amt"),
    (b'<Amt Ccy="USD">5000.00</Amt>', b'<Amt Ccy="EUR">5000.00</Amt>',
     f"{SECOND}/Ntry[1]/Amt/@Ccy"),
    (b"<Sts>PDNG</Sts>", b"<Sts>XXXX</Sts>", f"{FIRST}/Ntry[6]/Sts"),
    (b"<Dt>2026-01-06</Dt>", b"<Dt>2026-02-30</Dt>", f"{FIRST}/Ntry[6]/ValDt/Dt"),
    (b"<CreDtTm>2026-01-05T20:15:04+01:00</CreDtTm>\n      <MsgPgntn>", b"<MsgPgntn>",
     "Document/BkToCstmrStmt/GrpHdr/CreDtTm"),
    (b"<CreDtTm>2026-01-05T20:15:04+01:00</CreDtTm>\n      <FrToDt>",
     b"<CreDtTm>2026-01-05 20:15</CreDtTm>\n      <FrToDt>", f"{FIRST}/CreDtTm"),
])
def test_a_missing_or_malformed_element_is_refused_at_its_place(old: bytes, new: bytes,
                                                                 place: str) -> None:
    assert refusal(edited(old, new)).facts["place"] == place


def test_a_statement_without_its_account_is_refused() -> None:
    start = STATEMENT.index(b"<Acct>", STATEMENT.index(b"<Id>2026010500004</Id>"))
    end = STATEMENT.index(b"</Acct>", start) + len(b"</Acct>")
    assert refusal(STATEMENT[:start] + STATEMENT[end:]).facts["place"] == f"{SECOND}/Acct"


def test_a_cdtdbtind_that_is_neither_credit_nor_debit_is_refused() -> None:
    wrong = edited(b'<Amt Ccy="EUR">2.50</Amt>\n        <CdtDbtInd>DBIT</CdtDbtInd>',
                   b'<Amt Ccy="EUR">2.50</Amt>\n        <CdtDbtInd>D</CdtDbtInd>')
    error = refusal(wrong)
    assert (error.facts["place"], error.facts["found"]) == (f"{FIRST}/Ntry[3]/CdtDbtInd", "D")


def test_a_currency_the_pool_does_not_hold_is_refused() -> None:
    with pytest.raises(FileRefused) as refused:
        parse_camt(STATEMENT, "usd.xml", scales={"EUR": 2})
    assert refused.value.facts["place"] == f"{SECOND}/Bal[1]/Amt/@Ccy"
    assert refused.value.facts["found"] == "USD"


def test_a_statement_without_its_closing_balance_is_refused() -> None:
    start = STATEMENT.index(b"<Bal>", STATEMENT.index(b"<Id>2026010500004</Id>"))
    start = STATEMENT.index(b"<Bal>", start + 1)
    end = STATEMENT.index(b"</Bal>", start) + len(b"</Bal>")
    error = refusal(STATEMENT[:start] + STATEMENT[end:])
    assert (error.facts["place"], error.facts["expected"]) == (f"{SECOND}/Bal", "CLBD")


def test_the_same_statement_twice_in_a_file_is_refused() -> None:
    twice = edited(b"<Id>2026010500004</Id>", b"<Id>2026010500003</Id>")
    twice = edited(b"<Othr>\n            <Id>0123456789</Id>",
                   b"<IBAN>DE89370400440532013000</IBAN><Othr>\n            <Id>0123456789</Id>",
                   twice)
    assert refusal(twice).facts["place"] == f"{SECOND}/Id"


def test_a_file_above_the_size_bound_is_refused_before_it_is_parsed(
        monkeypatch: pytest.MonkeyPatch) -> None:
    assert camt.FILE_BYTES_MAX == 200 * 1024 * 1024
    # The bound is the one every statement format shares (recon.formats checks it).
    monkeypatch.setattr(formats, "FILE_BYTES_MAX", len(BILLION_LAUGHS) - 1)

    error = refusal(BILLION_LAUGHS)  # refused for its size, not for its DTD

    assert error.facts["place"] == "byte 0"
    assert error.facts["size_bytes"] == len(BILLION_LAUGHS)


def test_a_file_with_more_entries_than_the_bound_is_refused(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(camt, "ENTRIES_MAX", 8)  # the sample has 9

    error = refusal(STATEMENT)

    assert (error.facts["place"], error.facts["found"]) == ("Document/BkToCstmrStmt", 9)


@pytest.mark.parametrize("data", [b"", b"   \n", b"\x00\x01\x02", b"%PDF-1.7\n..."])
def test_what_is_not_xml_at_all_is_refused(data: bytes) -> None:
    assert str(refusal(data).facts["place"]).startswith(("line ", "byte "))
