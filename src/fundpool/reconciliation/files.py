"""A statement file to its values, whatever its format: detected from its first bytes unless
the caller says which (ISO 20022 camt.053/054 XML, SWIFT MT940, a chain transfer list in JSON,
or a CSV export read with a saved column mapping). Each parser checks the whole file before it
answers, so a refusal (`file_refused` and its kinds, naming the file and the place) leaves
nothing half imported."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from fundpool.recon.model import FileFormat, FileRefused, StatementFile

if TYPE_CHECKING:
    from fundpool.recon.formats.csv_mapping import CsvMapping

FILE_BYTES_MAX = 200 * 1024 * 1024
BOM = b"\xef\xbb\xbf"
DETECT_BYTES = 512  # how much of the file's start detection looks at


def detect(data: bytes, name: str, *, csv_mapping: CsvMapping | None = None) -> FileFormat:
    head = data[:DETECT_BYTES].removeprefix(BOM).lstrip()
    if head.startswith(b"<"):
        return FileFormat.CAMT053  # camt.053 or camt.054: the parser reads which
    if head.startswith((b":20:", b"{1:", b":940:")):
        return FileFormat.MT940
    if head.startswith(b"{"):
        return FileFormat.CHAIN
    if csv_mapping is not None:
        return FileFormat.CSV
    raise FileRefused("not a format fundpool reads: camt.053/054 XML, MT940, a chain transfer "
                      "list (JSON), or CSV with a saved column mapping", file=name,
                      place="byte 0")


def parse_file(data: bytes, name: str, *, scales: Mapping[str, int],
               format: FileFormat | None = None,
               csv_mapping: CsvMapping | None = None) -> StatementFile:
    if len(data) > FILE_BYTES_MAX:
        raise FileRefused("the file is larger than fundpool imports at once", file=name,
                          place="byte 0", size_bytes=len(data), size_bytes_max=FILE_BYTES_MAX)
    if not data.strip():
        raise FileRefused("the file is empty", file=name, place="byte 0")
    chosen = format or detect(data, name, csv_mapping=csv_mapping)
    if chosen in (FileFormat.CAMT053, FileFormat.CAMT054):
        from fundpool.channels.iso20022.camt import parse_camt

        return parse_camt(data, name, scales=scales)
    if chosen is FileFormat.MT940:
        from fundpool.recon.formats.mt940 import parse_mt940

        return parse_mt940(data, name, scales=scales)
    if chosen is FileFormat.CHAIN:
        from fundpool.recon.formats.chain import parse_chain

        return parse_chain(data, name, scales=scales)
    if csv_mapping is None:
        raise FileRefused("a CSV file is read with a saved column mapping: name one",
                          file=name, place="byte 0")
    from fundpool.recon.formats.csv_mapping import parse_csv

    return parse_csv(data, name, csv_mapping, scales=scales)
