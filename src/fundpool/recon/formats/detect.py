"""Which statement format a file is, and the parser that reads it.

Detection looks at the file's first bytes only (after a byte-order mark and blank space):

- XML (`<`) with an ISO 20022 camt.053 or camt.054 namespace: camt, read by
  `fundpool.channels.iso20022.camt.parse_camt`. Other XML (camt.052, pain.002 …) is an
  `UnknownMessage`.
- `:20:`, SWIFT's `{1:` block header or Rabobank's `:940:` first, or a `:20:` within the first
  lines (ABN AMRO's `ABNANL2A` / `940` banner): MT940.
- a JSON object (`{`): a chain transfer list.
- anything else: CSV, when a column mapping is given; without one, refused.

`channels` stands above `recon` in the layers (pyproject's import contracts), so this module
cannot import the camt parser, not even inside a function (lint-imports sees those too): the
caller, which stands above both, passes it as `camt`.

The size bound (`FILE_BYTES_MAX`) is checked before anything else; every parser fills the
file's SHA-256 and checks the whole file before it answers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Protocol

from fundpool.recon.formats import FILE_BYTES_MAX, check_size
from fundpool.recon.formats.chain import parse_chain
from fundpool.recon.formats.csv_mapping import CsvMapping, parse_csv
from fundpool.recon.formats.mt940 import parse_mt940
from fundpool.recon.model import FileFormat, FileRefused, StatementFile, UnknownMessage

__all__ = ["FILE_BYTES_MAX", "CamtParser", "detect_format", "parse_statement"]

# Enough for an XML prolog, a comment or two and the root element with its namespaces.
SNIFF_BYTES = 64 * 1024
BANNER_LINES_MAX = 4  # lines a bank writes before the first :20: (ABN AMRO writes three)
_BYTE_ORDER_MARK = b"\xef\xbb\xbf"
_ISO_NAMESPACE = re.compile(rb"urn:iso:std:iso:20022:tech:xsd:(?P<message>[a-z]{4}\.[0-9]{3}"
                            rb"\.[0-9]{3}\.[0-9]{2})")
_CAMT = {b"camt.053": FileFormat.CAMT053, b"camt.054": FileFormat.CAMT054}
_MT940_STARTS = (b":20:", b"{1:", b":940:")
_CAMT_FORMATS = frozenset({FileFormat.CAMT053, FileFormat.CAMT054})


class CamtParser(Protocol):
    """`fundpool.channels.iso20022.camt.parse_camt`'s shape."""

    def __call__(self, data: bytes, name: str, *,
                 scales: Mapping[str, int]) -> StatementFile: ...


def detect_format(data: bytes, name: str, *, csv_mapping: CsvMapping | None = None
                  ) -> FileFormat:
    """The file's format from its first bytes, or a refusal that says what was seen."""
    head = data[:SNIFF_BYTES].removeprefix(_BYTE_ORDER_MARK).lstrip()
    if not head:
        raise FileRefused("the file is empty", file=name, place="byte 0")
    if head.startswith(b"<"):
        return _xml_format(head, name)
    lines = [line.strip() for line in head.splitlines()[:BANNER_LINES_MAX]]
    if head.startswith(_MT940_STARTS) or any(line.startswith(b":20:") for line in lines):
        return FileFormat.MT940
    if head.startswith(b"{"):
        return FileFormat.CHAIN
    if csv_mapping is not None:
        return FileFormat.CSV
    raise FileRefused("not a format fundpool reads: camt.053/054 XML, MT940, a chain "
                      "transfer list (JSON), or CSV with a saved column mapping", file=name,
                      place="byte 0", found=head[:24].decode("latin-1"))


def _xml_format(head: bytes, name: str) -> FileFormat:
    found = _ISO_NAMESPACE.search(head)
    if found is None:
        raise UnknownMessage("XML without an ISO 20022 namespace", file=name,
                             place="byte 0", expected=["camt.053", "camt.054"])
    message = found["message"]
    chosen = _CAMT.get(message[:8])
    if chosen is None:
        raise UnknownMessage(f"{message.decode()} is not a statement fundpool reads",
                             file=name, place="byte 0", found=message.decode(),
                             expected=["camt.053", "camt.054"])
    return chosen


def parse_statement(data: bytes, name: str, *, scales: Mapping[str, int],
                    format: FileFormat | None = None,
                    csv_mapping: CsvMapping | None = None,
                    camt: CamtParser | None = None) -> StatementFile:
    """Read a statement file whole, in the format given or detected. A CSV needs its column
    mapping; camt needs `camt` (see the module's docstring)."""
    check_size(data, name)
    chosen = format or detect_format(data, name, csv_mapping=csv_mapping)
    if chosen in _CAMT_FORMATS:
        if camt is None:
            raise FileRefused(f"{chosen.value} is read by fundpool.channels.iso20022.camt, "
                              "which was not given to read this file", file=name,
                              place="byte 0", format=chosen.value)
        parsed = camt(data, name, scales=scales)
        if format is not None and parsed.format is not format:
            raise UnknownMessage(f"the file is {parsed.format.value}, not {format.value}",
                                 file=name, place="byte 0", expected=format.value,
                                 found=parsed.format.value)
        return parsed
    if chosen is FileFormat.MT940:
        return parse_mt940(data, name, scales=scales)
    if chosen is FileFormat.CHAIN:
        return parse_chain(data, name, scales=scales)
    if csv_mapping is None:
        raise FileRefused("a CSV file is read with its bank's saved column mapping: none was "
                          "given", file=name, place="byte 0", format=chosen.value)
    return parse_csv(data, name, csv_mapping, scales=scales)
