"""Batch payout files: a CSV of payouts, read and checked before any payment is created.

A file is one header row and one payout per row. Columns (header names are matched without
regard to case or surrounding spaces, in any order): `payee`, `account` (a bank account or a
chain address; `address` is accepted for it), `amount` (decimal text in the asset's units),
`asset`, `reference` and, optionally, `channel`.

Two kinds of problem, kept apart:
- The file cannot be read as a payout table (encoding, NUL bytes, quoting, header, bounds,
  no rows): `parse_payout_csv` raises an `InvalidPayoutFile` subclass with a stable `code`
  and the facts (line, columns, limit). Nothing of the file is used.
- A row is wrong: the file parses, and that row carries every error found in it (each with
  its column, a stable code and a message), so one upload shows everything to fix. Rows
  without errors carry the `PaymentRequest` to create.

Formula injection (OWASP "CSV injection"): a text cell starting with `=`, `+`, `-`, `@`, TAB
or CR is REFUSED (`formula_injection`), never silently rewritten. Payment files are exported
again, opened in spreadsheets and fed to other systems; rewriting a cell (say, prefixing `'`)
would change a payee's name or an account number in a payment instruction without anyone
deciding it, which is worse than an error the uploader fixes at the source. Spreadsheets may
drop leading spaces before evaluating a cell, so `  =1+1` is refused as well. Exports, where
the value is ours and must be kept, neutralise it instead: `export_csv_cell`.

Encodings: UTF-8 with or without a byte order mark, UTF-16 (LE or BE) with one. Nothing is
guessed: bytes that do not decode strictly in that encoding are `csv_bad_encoding`, and NUL
bytes are `csv_nul_byte` (which is what a UTF-16 file without a byte order mark looks like).
Lines end with LF or CRLF; a lone CR outside quotes is `csv_malformed`. Blank lines are
skipped and do not count as rows.

Line numbers are 1-based physical lines of the file (the header is line 1 when the file
starts with it); a row whose quoted cell spans lines has the number of its first line.

A valid row's idempotency key is derived from its reference (unique within the file): a
file uploaded again creates nothing new, and a corrected file re-uploaded creates only the
rows that were not created before, while a row changed after its payout was created is an
`idempotency_conflict` for that row, never a second payout. (Keying on the file's bytes would
pay every row again when one cell is corrected.)
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import unicodedata
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from fundpool.channels.limits import within_limits
from fundpool.core.errors import AmountOverflow, FundpoolError, InvariantViolation, invariant
from fundpool.core.ledger.model import check_idempotency_key, is_storable_text
from fundpool.core.money import SCALE_MAX, Asset, parse_amount
from fundpool.payments.model import PaymentKind, PaymentRequest
from fundpool.payments.rules import NOT_FOR_PAYOUTS, TEXT_FIELD_LENGTH_MAX
from fundpool.pool.config import ChannelConfig, FundpoolConfig, Limits, PoolConfig

PAYOUT_CSV_BYTES_MAX = 5 * 1024 * 1024
PAYOUT_CSV_ROWS_MAX = 10_000
CELL_LENGTH_MAX = TEXT_FIELD_LENGTH_MAX  # characters; what the payment service stores
IDEMPOTENCY_KEY_PREFIX = "payout-csv"
HEADER_FACT_NAMES_MAX = 20  # column names listed in a header error
HEADER_FACT_NAME_LENGTH_MAX = 64

COLUMNS_REQUIRED = ("payee", "account", "amount", "asset", "reference")
COLUMNS_OPTIONAL = ("channel",)
COLUMN_SYNONYMS: Mapping[str, str] = {"address": "account"}
TEXT_COLUMNS = frozenset({"payee", "account", "reference", "channel"})

# OWASP CSV injection: what a spreadsheet may take for the start of a formula.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
# Line and paragraph separators, and the bidirectional embeddings, overrides and isolates
# that make a payee's name or an account read differently from what it is.
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


# --- file-level errors -------------------------------------------------------------------------


class InvalidPayoutFile(FundpoolError):
    """The file cannot be read as a payout table; each subclass is one stable code."""

    code = "invalid_payout_file"
    title = "the payout file cannot be read"


class CsvBadEncoding(InvalidPayoutFile):
    code = "csv_bad_encoding"
    title = "the file is not UTF-8 text, or UTF-16 text with a byte order mark"


class CsvNulByte(InvalidPayoutFile):
    code = "csv_nul_byte"
    title = "the file contains NUL bytes"


class CsvMalformed(InvalidPayoutFile):
    code = "csv_malformed"
    title = "the file is not well-formed CSV"


class CsvBadHeader(InvalidPayoutFile):
    code = "csv_bad_header"
    title = "the header row does not name the payout columns"


class CsvTooLarge(InvalidPayoutFile):
    code = "csv_too_large"
    title = "the file is larger than a payout file may be"


class CsvEmpty(InvalidPayoutFile):
    code = "csv_empty"
    title = "the file has no payout rows"


# --- rows --------------------------------------------------------------------------------------


class RowErrorCode(StrEnum):
    WRONG_CELL_COUNT = "wrong_cell_count"
    MISSING_VALUE = "missing_value"
    BAD_TEXT = "bad_text"
    FORMULA_INJECTION = "formula_injection"
    BAD_AMOUNT = "bad_amount"
    UNKNOWN_ASSET = "unknown_asset"
    UNKNOWN_CHANNEL = "unknown_channel"
    CHANNEL_LACKS_ASSET = "channel_lacks_asset"
    AMOUNT_OUTSIDE_LIMITS = "amount_outside_limits"
    DUPLICATE_REFERENCE = "duplicate_reference"


@dataclass(frozen=True, slots=True)
class RowError:
    """One problem of one row. `column` is the canonical column name (`account` also for a
    file that calls it `address`), None for the row as a whole; `cause` is the code of the
    underlying domain error when there is one (`too_many_decimals` under `bad_amount`)."""

    column: str | None
    code: RowErrorCode
    message: str
    cause: str | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "column": self.column,
            "code": self.code.value,
            "message": self.message,
            "cause": self.cause,
        }


@dataclass(frozen=True, slots=True)
class PayoutRow:
    """One data row: its errors, or the payout to create (never both)."""

    line: int
    errors: tuple[RowError, ...]
    request: PaymentRequest | None
    idempotency_key: str

    def __post_init__(self) -> None:
        invariant(
            (self.request is None) == bool(self.errors),
            "a payout row has a request exactly when it has no errors",
        )

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict[str, object]:
        return {
            "line": self.line,
            "ok": self.ok,
            "errors": [error.to_dict() for error in self.errors],
        }


@dataclass(frozen=True, slots=True)
class PayoutFile:
    rows: tuple[PayoutRow, ...]
    sha256: str  # hex, of the raw bytes as uploaded

    @property
    def valid_count(self) -> int:
        return sum(1 for row in self.rows if row.ok)

    @property
    def invalid_count(self) -> int:
        return len(self.rows) - self.valid_count

    def requests(self) -> list[tuple[PaymentRequest, str]]:
        """The valid rows' requests with their idempotency keys, in file order."""
        return [(row.request, row.idempotency_key) for row in self.rows if row.request is not None]

    def report(self) -> dict[str, object]:
        return {
            "sha256": self.sha256,
            "row_count": len(self.rows),
            "valid_count": self.valid_count,
            "invalid_count": self.invalid_count,
            "rows": [row.to_dict() for row in self.rows],
        }


# --- parsing -----------------------------------------------------------------------------------


def reference_key(reference: str) -> str:
    """The idempotency key of a payout file row with this reference (per pool)."""
    digest = hashlib.sha256(reference.encode("utf-8")).hexdigest()[:40]
    key = f"{IDEMPOTENCY_KEY_PREFIX}:ref:{digest}"
    invariant(check_idempotency_key(key) == key, "a payout row's key is a valid key")
    return key


def parse_payout_csv(
    data: bytes,
    config: FundpoolConfig,
    pool: PoolConfig,
    *,
    bytes_max: int = PAYOUT_CSV_BYTES_MAX,
    rows_max: int = PAYOUT_CSV_ROWS_MAX,
) -> PayoutFile:
    """Read a payout file for `pool`. Raises an `InvalidPayoutFile` for a file that cannot be
    read as a payout table; every other problem is a row's error."""
    if len(data) > bytes_max:
        raise CsvTooLarge(
            f"the file is {len(data)} bytes; at most {bytes_max} are accepted",
            bytes=len(data),
            limit=bytes_max,
        )
    if not data:
        raise CsvEmpty("the file is empty")
    digest = hashlib.sha256(data).hexdigest()
    header_line, header, records = _records(_decode(data), rows_max)
    columns = _columns(header, header_line)
    if not records:
        raise CsvEmpty("the file has a header but no payout rows", line=header_line)
    checker = _RowChecker(config, pool, columns, digest)
    return PayoutFile(tuple(checker.row(line, cells) for line, cells in records), digest)


def export_csv_cell(value: str) -> str:
    """`value` made safe for a CSV export opened in a spreadsheet: a value that could be read
    as a formula gets a leading `'`, which spreadsheets show as text. Quoting is left to the
    `csv.writer` that writes the cell. Unlike upload, export keeps the value: it is ours."""
    return f"'{value}" if _looks_like_formula(value) else value


def _looks_like_formula(value: str) -> bool:
    return value.startswith(FORMULA_PREFIXES) or value.lstrip(" ").startswith(FORMULA_PREFIXES)


def _decode(data: bytes) -> str:
    # A UTF-32 LE mark begins like a UTF-16 LE one; name it rather than report a NUL.
    if data.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        raise CsvBadEncoding("UTF-32 is not accepted; save the file as UTF-8", encoding="utf-32")
    boms = (
        (codecs.BOM_UTF8, "utf-8"),
        (codecs.BOM_UTF16_LE, "utf-16-le"),
        (codecs.BOM_UTF16_BE, "utf-16-be"),
    )
    bom, encoding = next(((b, e) for b, e in boms if data.startswith(b)), (b"", "utf-8"))
    body = data[len(bom):]
    if encoding == "utf-8":
        # In UTF-8 a NUL byte is only ever the NUL character: refuse it before decoding.
        nul = body.find(b"\x00")
        if nul >= 0:
            raise _nul_error(body[:nul].count(b"\n") + 1, len(bom) + nul)
    try:
        text = body.decode(encoding, errors="strict")
    except UnicodeDecodeError as error:
        # What precedes the error decoded fine, so its lines can be counted.
        line = body[: error.start].decode(encoding).count("\n") + 1
        raise CsvBadEncoding(
            f"the file is not valid {encoding.upper()} at line {line} ({error.reason}); "
            "save it as UTF-8",
            encoding=encoding,
            line=line,
            offset=len(bom) + error.start,
        ) from None
    nul = text.find("\x00")
    if nul >= 0:
        raise _nul_error(text[:nul].count("\n") + 1, None)
    return text


def _nul_error(line: int, offset: int | None) -> CsvNulByte:
    return CsvNulByte(
        f"NUL byte at line {line}: not a text file, or UTF-16 without a byte order mark "
        "(save it as UTF-8)",
        line=line,
        offset=offset,
    )


Record = tuple[int, list[str]]  # first physical line, cells


def _records(text: str, rows_max: int) -> tuple[int, list[str], list[Record]]:
    """The header (with its line) and the data rows, blank lines left out."""
    # Lines end only at LF, so a lone CR outside quotes reaches the reader, which refuses it.
    reader = csv.reader(io.StringIO(text, newline="\n"), strict=True)
    header: Record | None = None
    records: list[Record] = []
    while True:
        line = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as error:
            if "field larger than field limit" in str(error):
                raise CsvTooLarge(
                    f"a cell of the row at line {line} is longer than the CSV reader takes",
                    line=line,
                    limit=csv.field_size_limit(),
                ) from None
            raise CsvMalformed(
                f"the row at line {line} is not well-formed CSV ({error}, at line "
                f"{reader.line_num})",
                line=line,
                detected_at_line=reader.line_num,
            ) from None
        if not cells:
            continue
        if header is None:
            header = (line, cells)
        elif len(records) == rows_max:
            raise CsvTooLarge(
                f"the file has more than {rows_max} payout rows (line {line} is one too many)",
                line=line,
                limit=rows_max,
            )
        else:
            records.append((line, cells))
    if header is None:
        raise CsvEmpty("the file has no header and no rows")
    return header[0], header[1], records


def _columns(header: Sequence[str], line: int) -> tuple[str, ...]:
    """The canonical column name of each header cell, in file order."""
    names = [cell.strip().lower() for cell in header]
    canonical = [COLUMN_SYNONYMS.get(name, name) for name in names]
    known = set(COLUMNS_REQUIRED) | set(COLUMNS_OPTIONAL)
    unknown = [name for name, c in zip(names, canonical, strict=True) if c not in known]
    # Counted once: a hostile header may have a million cells.
    duplicate = sorted(c for c, n in Counter(canonical).items() if c in known and n > 1)
    missing = [c for c in COLUMNS_REQUIRED if c not in canonical]
    if not (unknown or duplicate or missing):
        return tuple(canonical)
    problems = []
    if missing:
        problems.append(f"missing {', '.join(missing)}")
    if duplicate:
        problems.append(f"named twice {', '.join(duplicate)} ('address' is 'account')")
    if unknown:
        problems.append(f"unknown {', '.join(repr(n) for n in _short(unknown))}")
    hint = ""
    if len(header) == 1 and any(sep in header[0] for sep in ";\t|"):
        hint = "; cells are separated by commas"
    raise CsvBadHeader(
        f"the header at line {line} is wrong: {'; '.join(problems)}{hint}",
        line=line,
        missing=missing,
        duplicate=duplicate,
        unknown=_short(unknown),
        expected=[*COLUMNS_REQUIRED, *COLUMNS_OPTIONAL],
    )


def _short(names: Sequence[str]) -> list[str]:
    return [name[:HEADER_FACT_NAME_LENGTH_MAX] for name in names[:HEADER_FACT_NAMES_MAX]]


def _bad_character(value: str) -> str | None:
    if not is_storable_text(value):
        return "NUL characters or unpaired surrogates"
    for character in value:
        if (
            unicodedata.category(character) in _INVISIBLE_CATEGORIES
            or character in _BIDI_CONTROLS
        ):
            return f"the control character U+{ord(character):04X}"
    return None


def _range(asset: Asset, limits: Limits) -> str:
    high = "no maximum" if limits.max_minor is None else asset.format(limits.max_minor)
    return f"{asset.format(limits.min_minor)} to {high}"




class _Invalid:
    """A cell that was present but wrong: its error is already recorded."""


_INVALID = _Invalid()


@dataclass(slots=True)
class _RowChecker:
    config: FundpoolConfig
    pool: PoolConfig
    columns: tuple[str, ...]
    digest: str
    channels: dict[str, ChannelConfig] = field(init=False)
    assets: dict[str, Asset] = field(init=False)
    first_line_of: dict[str, int] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        # Only rails that can carry a payout: a book rail moves money inside the pool.
        self.channels = {
            c.id: c for c in self.config.channels
            if c.id in self.pool.channels and c.kind not in NOT_FOR_PAYOUTS
        }
        carried = {code for c in self.channels.values() for code in c.assets}
        self.assets = {a.code: a for a in self.config.assets if a.code in carried}

    def row(self, line: int, cells: Sequence[str]) -> PayoutRow:
        key = f"{IDEMPOTENCY_KEY_PREFIX}:{self.digest}:{line}"  # for rows with errors only
        invariant(check_idempotency_key(key) == key, "a payout row's key is a valid key")
        if len(cells) != len(self.columns):
            error = RowError(
                None,
                RowErrorCode.WRONG_CELL_COUNT,
                f"the row has {len(cells)} cells; the header has {len(self.columns)}",
            )
            return PayoutRow(line, (error,), None, key)
        cell = dict(zip(self.columns, cells, strict=True))
        errors: list[RowError] = []
        payee = self._text(cell, "payee", errors)
        account = self._text(cell, "account", errors)
        reference = self._text(cell, "reference", errors)
        asset = self._asset(cell["asset"], errors)
        channel = self._channel(cell, asset, errors)
        amount = self._amount(cell["amount"], asset, errors)
        if asset is not None and amount is not None and not isinstance(channel, _Invalid):
            self._limits(asset, amount, channel, errors)
        if reference is not None:
            first = self.first_line_of.setdefault(reference, line)
            if first != line:
                errors.append(RowError(
                    "reference",
                    RowErrorCode.DUPLICATE_REFERENCE,
                    f"the reference is already used on line {first}",
                ))
        if errors:
            order = {column: i for i, column in enumerate(self.columns)}
            errors.sort(key=lambda e: order.get(e.column or "", -1))
            return PayoutRow(line, tuple(errors), None, key)
        if payee is None or account is None or reference is None or asset is None or (
            amount is None
        ):
            raise InvariantViolation("a row without errors has every required value")
        request = PaymentRequest(
            PaymentKind.PAYOUT,
            asset.code,
            amount,
            channel=channel.id if isinstance(channel, ChannelConfig) else None,
            counterparty=payee,
            reference=reference,
            metadata={"account": account, "payee": payee},
            # The payee's account is the payout's destination (checked for its form by the
            # payment rules at creation: an IBAN's check digits, an EVM address's shape).
            destination=account,
        )
        return PayoutRow(line, (), request, reference_key(reference))

    def _length_ok(self, column: str, value: str, errors: list[RowError]) -> bool:
        if len(value) <= CELL_LENGTH_MAX:
            return True
        errors.append(RowError(
            column,
            RowErrorCode.BAD_TEXT,
            f"the cell has {len(value)} characters; at most {CELL_LENGTH_MAX} are accepted",
        ))
        return False

    def _present(self, column: str, value: str, errors: list[RowError]) -> bool:
        if value.strip(" "):
            return True
        errors.append(RowError(column, RowErrorCode.MISSING_VALUE, f"{column} is required"))
        return False

    def _text(
        self, cell: Mapping[str, str], column: str, errors: list[RowError]
    ) -> str | None:
        """A required text cell, its surrounding spaces removed; None when it is wrong."""
        raw = cell[column]
        if not (self._length_ok(column, raw, errors) and self._present(column, raw, errors)):
            return None
        return self._checked_text(column, raw, errors)

    def _checked_text(self, column: str, raw: str, errors: list[RowError]) -> str | None:
        fine = True
        if _looks_like_formula(raw):
            errors.append(RowError(
                column,
                RowErrorCode.FORMULA_INJECTION,
                f"{column} starts with a character a spreadsheet reads as a formula "
                "(=, +, -, @, TAB or CR); it is refused, not rewritten",
            ))
            fine = False
        # A leading TAB or CR is reported once, as the formula prefix it is.
        bad = _bad_character(raw[1:] if raw.startswith(("\t", "\r")) else raw)
        if bad is not None:
            errors.append(RowError(column, RowErrorCode.BAD_TEXT, f"{column} contains {bad}"))
            fine = False
        return raw.strip(" ") if fine else None

    def _asset(self, raw: str, errors: list[RowError]) -> Asset | None:
        if not (self._length_ok("asset", raw, errors) and self._present("asset", raw, errors)):
            return None
        code = raw.strip(" ")
        asset = self.assets.get(code)
        if asset is None:
            errors.append(RowError(
                "asset",
                RowErrorCode.UNKNOWN_ASSET,
                f"no channel of pool {self.pool.id} carries the asset {code[:32]!r} "
                f"(carried: {', '.join(sorted(self.assets))})",
            ))
        return asset

    def _channel(
        self, cell: Mapping[str, str], asset: Asset | None, errors: list[RowError]
    ) -> ChannelConfig | _Invalid | None:
        """The named channel; None when none is named (routing chooses)."""
        raw = cell.get("channel", "")
        if not raw.strip(" "):
            return None
        if not self._length_ok("channel", raw, errors):
            return _INVALID
        channel_id = self._checked_text("channel", raw, errors)
        if channel_id is None:
            return _INVALID
        channel = self.channels.get(channel_id)
        if channel is None:
            errors.append(RowError(
                "channel",
                RowErrorCode.UNKNOWN_CHANNEL,
                f"pool {self.pool.id} has no payout channel {channel_id[:64]!r} "
                f"(payout channels: {', '.join(self.channels)})",
            ))
            return _INVALID
        if asset is not None and asset.code not in channel.assets:
            errors.append(RowError(
                "channel",
                RowErrorCode.CHANNEL_LACKS_ASSET,
                f"channel {channel.id} does not carry {asset.code} "
                f"(it carries {', '.join(channel.assets)})",
            ))
            return _INVALID
        return channel

    def _amount(self, raw: str, asset: Asset | None, errors: list[RowError]) -> int | None:
        if not (self._length_ok("amount", raw, errors) and self._present("amount", raw, errors)):
            return None
        try:
            # With the asset unknown, what no asset could accept is still worth saying.
            amount = parse_amount(raw, SCALE_MAX) if asset is None else asset.parse(raw)
        except FundpoolError as error:
            if asset is None and isinstance(error, AmountOverflow):
                return None  # it might fit an asset of a smaller scale
            errors.append(
                RowError("amount", RowErrorCode.BAD_AMOUNT, str(error), cause=error.code)
            )
            return None
        if amount == 0:
            errors.append(RowError(
                "amount", RowErrorCode.BAD_AMOUNT, "the amount is zero; a payout moves a "
                "positive amount", cause="zero_amount",
            ))
            return None
        return amount if asset is not None else None

    def _limits(
        self,
        asset: Asset,
        amount_minor: int,
        channel: ChannelConfig | None,
        errors: list[RowError],
    ) -> None:
        if channel is not None:
            limits = channel.limits_for(asset.code)
            if not within_limits(limits, amount_minor):
                errors.append(RowError(
                    "amount",
                    RowErrorCode.AMOUNT_OUTSIDE_LIMITS,
                    f"{asset.format(amount_minor)} {asset.code} is outside channel "
                    f"{channel.id}'s limits ({_range(asset, limits)})",
                ))
            return
        carriers = [c for c in self.channels.values() if asset.code in c.assets]
        if any(within_limits(c.limits_for(asset.code), amount_minor) for c in carriers):
            return
        ranges = "; ".join(f"{c.id} {_range(asset, c.limits_for(asset.code))}" for c in carriers)
        errors.append(RowError(
            "amount",
            RowErrorCode.AMOUNT_OUTSIDE_LIMITS,
            f"{asset.format(amount_minor)} {asset.code} fits no channel of pool {self.pool.id} "
            f"that carries it ({ranges})",
        ))
