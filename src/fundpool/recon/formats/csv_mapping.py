"""A bank's CSV export, read with a saved column mapping (one mapping per bank and layout).

A CSV export says nothing about itself: which column holds the booking date, whether amounts
are one signed column or a debit and a credit column, which decimal mark, which encoding.
`CsvMapping` says it once per bank, saved as YAML (`mapping_from_yaml`), refused field by
field with `InvalidMapping` when it cannot work.

A file is one `Statement`: its id is the first 16 hex digits of the file's SHA-256 and its
name (a CSV has no id of its own), no balances, every row a booked line (`row N` counts the
file's records, header rows included, as a spreadsheet numbers them). Refused, naming the row
and the column as the file calls it: a mapped column missing from the header, a row with
more or fewer cells than the header (an unquoted '1,234.56' in a comma file shifts every
later cell), a date that does not fit `date_format`, an amount that does not parse exactly,
a row with both or neither of debit and credit, an asset not in `scales`, a second asset.
Cells that look like spreadsheet formulas ('=HYPERLINK(…)') are text like any other: this
only reads them, and writes nothing a spreadsheet would run.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from fundpool.core.errors import FundpoolError
from fundpool.recon.formats import (
    amount_minor,
    check_size,
    datetime_us,
    scale_of,
    sha256_of,
)
from fundpool.recon.model import (
    FileFormat,
    FileRefused,
    Statement,
    StatementFile,
    StatementLine,
)

MAPPING_TEXT_MAX = 16 * 1024  # a mapping is a dozen short lines
HEADER_ROWS_MAX = 50  # a bank's preamble (account, period, export time) before the header
COLUMN_NAME_MAX = 200
STATEMENT_ID_DIGEST_CHARS = 16  # 64 bits of the digest: ample to tell a bank's files apart
_YAML_KEY = re.compile(r"\s*([a-z_]+)\s*:")
DECIMAL_SEPARATORS = (".", ",")
THOUSANDS_SEPARATORS = (".", ",", " ", "'", "\u00a0")  # '\u00a0': a no-break space (fr-FR)


class InvalidMapping(FundpoolError):
    """A CSV column mapping that cannot read a file. Facts: `field` (the mapping's field, or
    None for the text as a whole), `why`, and `line` for YAML that does not parse."""

    code = "invalid_csv_mapping"
    title = "the CSV column mapping is not valid"


def _field_error(field: str, why: str) -> PydanticCustomError:
    # A check across fields has no location of its own; the context carries the field named.
    return PydanticCustomError("csv_mapping", "{field}: {why}", {"field": field, "why": why})


class CsvMapping(BaseModel):
    """Where a bank's CSV keeps each value. Column fields name a header cell exactly (spaces
    around header cells are ignored); `account` is the pool's account the file is of, since
    CSV exports rarely say."""

    # strict: YAML's implicit typing ('header_rows: "2"') is refused, not guessed.
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    name: str
    delimiter: str = ","
    encoding: str = "utf-8"
    header_rows: int = 1  # the last of these rows holds the column names
    date: str
    value_date: str | None = None  # absent, or an empty cell: the booking date
    date_format: str = "%Y-%m-%d"
    amount: str | None = None  # one signed column, or:
    debit: str | None = None  # two unsigned columns (a '-' on a debit is tolerated)
    credit: str | None = None
    decimal_separator: str = "."
    thousands_separator: str | None = None
    currency: str | None = None  # a column, or:
    fixed_currency: str | None = None
    end_to_end_id: str | None = None
    reference: str | None = None
    counterparty: str | None = None
    counterparty_account: str | None = None
    bank_ref: str | None = None
    account: str

    @model_validator(mode="after")
    def _consistent(self) -> CsvMapping:
        if not self.name.strip():
            raise _field_error("name", "a mapping needs a name")
        if not self.account.strip():
            raise _field_error("account", "the pool's account this bank's files are of")
        if len(self.delimiter) != 1 or self.delimiter in "\"\r\n":
            raise _field_error("delimiter", "one character, not a quote or a line break")
        try:
            codecs.lookup(self.encoding)
        except LookupError:
            raise _field_error("encoding", f"{self.encoding!r} is not an encoding Python "
                               "knows (utf-8, cp1252, iso-8859-1 …)") from None
        if not 1 <= self.header_rows <= HEADER_ROWS_MAX:
            raise _field_error("header_rows", f"between 1 and {HEADER_ROWS_MAX}: the header "
                               "row with the column names is the last of them")
        if not _date_format_works(self.date_format):
            raise _field_error("date_format", f"{self.date_format!r} does not read back the "
                               "dates it writes (strftime codes: %Y-%m-%d, %d.%m.%Y …)")
        if (self.amount is None) == (self.debit is None and self.credit is None):
            raise _field_error("amount", "name either one signed `amount` column or the "
                               "`debit` and `credit` columns, not both and not neither")
        if self.amount is None and (self.debit is None or self.credit is None):
            raise _field_error("debit" if self.debit is None else "credit",
                               "`debit` and `credit` go together")
        if self.decimal_separator not in DECIMAL_SEPARATORS:
            raise _field_error("decimal_separator", "'.' or ','")
        if self.thousands_separator is not None and (
                self.thousands_separator not in THOUSANDS_SEPARATORS
                or self.thousands_separator == self.decimal_separator):
            raise _field_error("thousands_separator", "'.', ',', a space, an apostrophe or a "
                               "no-break space, other than the decimal separator")
        if (self.currency is None) == (self.fixed_currency is None):
            raise _field_error("currency", "name either a `currency` column or a "
                               "`fixed_currency`, not both and not neither")
        for field, column in self.columns().items():
            if not column.strip() or len(column) > COLUMN_NAME_MAX:
                raise _field_error(field, f"a column name of 1 to {COLUMN_NAME_MAX} "
                                   "characters")
        return self

    def columns(self) -> dict[str, str]:
        """The mapping's fields that name a column, by field."""
        names = ("date", "value_date", "amount", "debit", "credit", "currency",
                 "end_to_end_id", "reference", "counterparty", "counterparty_account",
                 "bank_ref")
        return {n: value for n in names if isinstance(value := getattr(self, n), str)}


def _date_format_works(date_format: str) -> bool:
    sample = datetime(2026, 12, 7, 13, 45, 30)  # day > 12: a day/month swap does not read back
    try:
        written = sample.strftime(date_format)
        read = datetime.strptime(written, date_format)
    except ValueError:
        return False
    return "%" in date_format and read.date() == sample.date()


def mapping_from_yaml(text: str) -> CsvMapping:
    """A saved mapping, or `InvalidMapping` naming the field that is wrong and why."""
    if len(text) > MAPPING_TEXT_MAX:
        raise InvalidMapping(f"the mapping is longer than {MAPPING_TEXT_MAX} characters",
                             field=None, why="too long")
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        why = f"not YAML: {getattr(error, 'problem', None) or error}"
        line = None if mark is None else mark.line + 1
        # The key on the line YAML stopped at is, nearly always, the field to fix.
        key = (None if line is None or line > len(text.splitlines())
               else _YAML_KEY.match(text.splitlines()[line - 1]))
        raise InvalidMapping(f"line {line}: {why}", field=None if key is None else key[1],
                             why=why, line=line) from None
    if not isinstance(raw, dict):
        raise InvalidMapping("a mapping is a YAML mapping of fields (name, date, amount …)",
                             field=None, why=f"got {type(raw).__name__}")
    try:
        return CsvMapping.model_validate(raw)
    except ValidationError as error:
        first = error.errors()[0]
        context: dict[str, Any] = first.get("ctx") or {}
        if first["type"] == "csv_mapping":
            field, why = str(context["field"]), str(context["why"])
        else:
            field = ".".join(str(part) for part in first["loc"]) or "mapping"
            why = ("not a field of a CSV mapping" if first["type"] == "extra_forbidden"
                   else first["msg"])
        raise InvalidMapping(f"{field}: {why}", field=field, why=why) from None


# --- reading a file ----------------------------------------------------------------------------


class _Reader:
    """One file read with one mapping: the column indices found in its header, and the file's
    asset once the first row has named it."""

    def __init__(self, name: str, mapping: CsvMapping, header: Sequence[str], header_row: int,
                 scales: Mapping[str, int]) -> None:
        self.name = name
        self.mapping = mapping
        self.scales = scales
        self.width = len(header)
        self.columns = mapping.columns()
        cleaned = [cell.strip().removeprefix("\ufeff").strip() for cell in header]
        self.index: dict[str, int] = {}
        for field, column in self.columns.items():
            found = [i for i, cell in enumerate(cleaned) if cell == column.strip()]
            if not found:
                raise FileRefused(f"the header (row {header_row}) has no column {column!r}, "
                                  f"which the mapping {mapping.name!r} names as {field}",
                                  file=name, place=f"row {header_row}", column=column,
                                  field=field, found=cleaned)
            if len(found) > 1:
                raise FileRefused(f"the header (row {header_row}) has {len(found)} columns "
                                  f"named {column!r}: which one is {field} is not known",
                                  file=name, place=f"row {header_row}", column=column,
                                  field=field)
            self.index[field] = found[0]
        self.asset: str | None = mapping.fixed_currency
        if self.asset is not None:
            scale_of(self.asset, scales, file=name, place="mapping fixed_currency",
                     field="fixed_currency")

    def place(self, row: int, field: str) -> str:
        return f"row {row}, column {self.columns[field]}"

    def cell(self, cells: Sequence[str], field: str) -> str | None:
        index = self.index.get(field)
        if index is None:
            return None
        return cells[index].strip() or None

    def line(self, cells: Sequence[str], row: int, position: int,
             statement_id: str) -> StatementLine:
        if len(cells) != self.width:
            raise FileRefused(f"row {row} has {len(cells)} cells, the header {self.width}: "
                              "a delimiter in an unquoted cell, or a row cut short",
                              file=self.name, place=f"row {row}", found=len(cells),
                              expected=self.width)
        asset = self._asset(cells, row)
        scale = self.scales[asset]
        booked_at_us = self._time(cells, row, "date")
        value_at_us = (self._time(cells, row, "value_date")
                       if self.cell(cells, "value_date") is not None else booked_at_us)
        return StatementLine(
            line_id=f"{statement_id}:{position}", amount_minor=self._amount(cells, row, asset,
                                                                            scale),
            asset=asset, booked_at_us=booked_at_us, value_at_us=value_at_us,
            end_to_end_id=self.cell(cells, "end_to_end_id"),
            bank_ref=self.cell(cells, "bank_ref"), reference=self.cell(cells, "reference"),
            counterparty=self.cell(cells, "counterparty"),
            counterparty_account=self.cell(cells, "counterparty_account"))

    def _asset(self, cells: Sequence[str], row: int) -> str:
        if self.mapping.fixed_currency is not None:
            return self.mapping.fixed_currency
        place = self.place(row, "currency")
        given = self.cell(cells, "currency")
        if given is None:
            raise FileRefused("the currency cell is empty", file=self.name, place=place,
                              field="currency")
        scale_of(given, self.scales, file=self.name, place=place, field="currency")
        if self.asset is None:
            self.asset = given
        elif given != self.asset:
            raise FileRefused(f"a CSV file is one statement in one asset: this row is in "
                              f"{given}, the rows before in {self.asset}", file=self.name,
                              place=place, found=given, expected=self.asset)
        return given

    def _time(self, cells: Sequence[str], row: int, field: str) -> int:
        given = self.cell(cells, field) or ""
        try:
            moment = datetime.strptime(given, self.mapping.date_format)
        except ValueError:
            raise FileRefused(f"{given!r} is not a date in the format "
                              f"{self.mapping.date_format!r}", file=self.name,
                              place=self.place(row, field), found=given,
                              expected=self.mapping.date_format, field=field) from None
        # A date with no zone is the bank's day, which fundpool keeps as midnight UTC.
        return datetime_us(moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment)

    def _amount(self, cells: Sequence[str], row: int, asset: str, scale: int) -> int:
        if self.mapping.amount is not None:
            given = self.cell(cells, "amount")
            if given is None:
                raise FileRefused("the amount cell is empty", file=self.name,
                                  place=self.place(row, "amount"), field="amount")
            sign = given[0] if given[0] in "-+" else ""
            magnitude = self._magnitude(given[len(sign):], row, "amount", asset, scale)
            return -magnitude if sign == "-" else magnitude
        debit_text, credit_text = self.cell(cells, "debit"), self.cell(cells, "credit")
        if debit_text is None and credit_text is None:
            raise FileRefused("neither the debit nor the credit cell holds an amount",
                              file=self.name, place=f"row {row}",
                              columns=[self.mapping.debit, self.mapping.credit])
        # Banks write a debit as '12,50' or as '-12,50' in a column that already says debit.
        debit = (0 if debit_text is None else
                 self._magnitude(debit_text.removeprefix("-"), row, "debit", asset, scale))
        credit = (0 if credit_text is None else
                  self._magnitude(credit_text, row, "credit", asset, scale))
        if debit and credit:
            raise FileRefused("both the debit and the credit cell hold an amount",
                              file=self.name, place=f"row {row}", debit=debit_text,
                              credit=credit_text)
        return credit - debit

    def _magnitude(self, text: str, row: int, field: str, asset: str, scale: int) -> int:
        place = self.place(row, field)
        decimal_text = _decimal_text(text, self.mapping)
        if decimal_text is None:
            raise FileRefused(f"{text!r} is not an amount with {self.mapping.decimal_separator!r}"
                              f" as decimal mark"
                              + (f" and {self.mapping.thousands_separator!r} between thousands"
                                 if self.mapping.thousands_separator else ""),
                              file=self.name, place=place, found=text, field=field)
        return amount_minor(decimal_text, scale, asset, file=self.name, place=place, field=field)


def _decimal_text(text: str, mapping: CsvMapping) -> str | None:
    """The cell as '1234.56', or None when its grouping or marks do not fit the mapping:
    '1.23,45' with '.' between thousands is a mistake, never 123.45."""
    whole, point, fraction = text.partition(mapping.decimal_separator)
    separator = mapping.thousands_separator
    if separator is not None and separator in whole:
        if re.fullmatch(r"[0-9]{1,3}(?:" + re.escape(separator) + r"[0-9]{3})+", whole) is None:
            return None
        whole = whole.replace(separator, "")
    if not whole.isascii() or not whole.isdigit():
        return None
    if point and not (fraction.isascii() and fraction.isdigit()):
        return None
    return f"{whole}.{fraction}" if point else whole


def parse_csv(data: bytes, name: str, mapping: CsvMapping, *,
              scales: Mapping[str, int]) -> StatementFile:
    """The file as one statement of the mapping's account, checked whole."""
    check_size(data, name)
    digest = sha256_of(data)
    try:
        text = data.decode(mapping.encoding)
    except UnicodeDecodeError as error:
        raise FileRefused(f"the file is not {mapping.encoding} text (the mapping's encoding)",
                          file=name, place=f"byte {error.start}",
                          encoding=mapping.encoding) from None
    statement_id = f"{digest[:STATEMENT_ID_DIGEST_CHARS]}:{name}"
    lines: list[StatementLine] = []
    records = enumerate(csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""),
                                   delimiter=mapping.delimiter, strict=True), start=1)
    row = 0
    try:
        for row, cells in records:
            if row == mapping.header_rows:
                reader = _Reader(name, mapping, cells, row, scales)
                break
        else:
            raise FileRefused(f"the file has {row} rows; the mapping's header is row "
                              f"{mapping.header_rows}", file=name, place=f"row {row}",
                              expected=mapping.header_rows)
        for row, cells in records:
            if not any(cell.strip() for cell in cells):
                continue  # a blank line, often the last one
            lines.append(reader.line(cells, row, len(lines) + 1, statement_id))
    except csv.Error as error:
        raise FileRefused(f"the CSV cannot be read: {error}", file=name,
                          place=f"row {row + 1}") from None
    asset = reader.asset
    if asset is None:
        # A file with a currency column and no rows names no asset; the mapping cannot either.
        raise FileRefused("the file has no rows, so no row names its currency", file=name,
                          place=f"row {row}")
    statement = Statement(
        statement_id=statement_id, account=mapping.account, asset=asset,
        # A CSV says nothing of when it was made: its latest booking stands for that.
        created_at_us=max((line.booked_at_us for line in lines), default=0),
        lines=tuple(lines))
    return StatementFile(name=name, format=FileFormat.CSV, message=f"csv/{mapping.name}",
                         statements=(statement,), sha256=digest)
