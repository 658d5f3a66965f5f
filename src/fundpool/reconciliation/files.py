"""A statement file to its values, whatever its format (recon/formats/detect.py detects it
from its first bytes unless the caller says which). The camt parser lives with the ISO 20022
rail (channels/iso20022), a layer above the pure formats: it is handed in from here."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from fundpool.channels.iso20022.camt import parse_camt
from fundpool.recon.formats.detect import parse_statement
from fundpool.recon.model import FileFormat, FileRefused, StatementFile

if TYPE_CHECKING:
    from fundpool.recon.formats.csv_mapping import CsvMapping


def parse_file(data: bytes, name: str, *, scales: Mapping[str, int],
               format: FileFormat | None = None,
               csv_mapping: CsvMapping | None = None) -> StatementFile:
    if not data.strip():
        raise FileRefused("the file is empty", file=name, place="byte 0")
    return parse_statement(data, name, scales=scales, format=format, csv_mapping=csv_mapping,
                           camt=parse_camt)
