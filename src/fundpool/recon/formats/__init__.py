"""Statement files other than ISO 20022, read into `fundpool.recon.model` values.

- `mt940.py`: SWIFT MT940 customer statements (one Statement per :20: … :62F: message);
- `csv_mapping.py`: a bank's CSV export, read with a saved per-bank column mapping;
- `chain.py`: a chain transfer list (JSON, as an indexer or an explorer exports it);
- `detect.py`: which of these (or camt.053/054) a file is, and the parser that reads it.

This module holds what every parser shares at the edge between bytes and values: the file
size bound, the digest, decoding, dates as UTC microseconds, and amounts read exactly with the
asset's scale. A parser checks its whole file before it answers; every refusal is a
`FileRefused` naming the file and the place, and nothing of a refused file is returned.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime

from fundpool.core.errors import FundpoolError
from fundpool.core.money import parse_amount
from fundpool.recon.model import FileRefused

# A bank's monthly MT940 or CSV for a busy account is a few MiB; a year of a chain address's
# transfers well under 100. Above this a file is refused before anything of it is read.
FILE_BYTES_MAX = 200 * 1024 * 1024
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# C0 control characters other than tab, line feed and carriage return, and DEL: no statement
# text holds them, so their presence means a binary file (a PDF, a ZIP) given by mistake.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
END_OF_FILE_MARK = "\x1a"  # DOS's Ctrl-Z, which some bank systems still write at the end


def check_size(data: bytes, name: str) -> None:
    if len(data) > FILE_BYTES_MAX:
        raise FileRefused(f"the file is larger than {FILE_BYTES_MAX} bytes", file=name,
                          place="byte 0", size_bytes=len(data), size_bytes_max=FILE_BYTES_MAX)


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def decode_text(data: bytes, name: str) -> tuple[str, str]:
    """The file's text and the encoding it was read with: UTF-8, or Latin-1 only when the bytes
    are not valid UTF-8 (older bank systems write ISO 8859-1, and every byte string is valid
    Latin-1, so the order matters). A leading byte-order mark and a trailing Ctrl-Z are
    dropped; a control character (a binary file) is refused at its byte."""
    try:
        text, encoding = data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        text, encoding = data.decode("latin-1"), "latin-1"
    text = text.removeprefix("\ufeff").removesuffix(END_OF_FILE_MARK)
    control = _CONTROL.search(text)
    if control is not None:
        bom = 3 if encoding == "utf-8" and data.startswith(b"\xef\xbb\xbf") else 0
        offset = bom + len(text[:control.start()].encode(encoding))
        raise FileRefused(f"the file is not text: control character {control[0]!r} "
                          f"(read as {encoding})", file=name, place=f"byte {offset}",
                          encoding=encoding, found=repr(control[0]))
    return text, encoding


def date_us(day: date) -> int:
    """Midnight UTC of `day`, in microseconds since the epoch."""
    return datetime_us(datetime(day.year, day.month, day.day, tzinfo=UTC))


def datetime_us(moment: datetime) -> int:
    """An aware datetime in microseconds since the epoch; exact (no float on the way)."""
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def scale_of(asset: str, scales: Mapping[str, int], *, file: str, place: str,
             **facts: object) -> int:
    scale = scales.get(asset)
    if scale is None:
        raise FileRefused(f"asset {asset!r} is not one this pool holds", file=file, place=place,
                          found=asset, expected=sorted(scales), **facts)
    return scale


def amount_minor(text: str, scale: int, asset: str, *, file: str, place: str,
                 **facts: object) -> int:
    """Decimal text with a '.' point to minor units, exactly, or a refusal at `place` that
    says why (too many decimals, not a number, too large)."""
    try:
        return parse_amount(text, scale, asset=asset)
    except FundpoolError as error:
        raise FileRefused(f"amount {text!r} cannot be read: {error.detail}", file=file,
                          place=place, found=text, why=error.code, asset=asset,
                          **facts) from None
