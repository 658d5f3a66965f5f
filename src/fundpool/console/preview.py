"""The cells of a payout CSV file for the operations panel's preview, by the file's line.

The API checks the file (a dry run) and answers each row's line and errors, not its cells;
the panel shows the cells beside them so that a person sees *which* payout a line is. This
runs only on a file the API has just read, and reads it the same way
(payments/csv_batch.py: UTF-8 or UTF-16 with its byte order mark, lines ending at LF, a row
numbered by its first physical line, blank lines skipped, `address` meaning `account`).
It shows and decides nothing: a cell that does not read is shown empty. Characters that could
make a cell read as something it is not (controls, bidirectional overrides, invisible
formatting) are shown as U+FFFD.
"""

from __future__ import annotations

import codecs
import csv
import io
import unicodedata

from fundpool.payments.csv_batch import COLUMN_SYNONYMS, COLUMNS_OPTIONAL, COLUMNS_REQUIRED

COLUMNS = (*COLUMNS_REQUIRED, *COLUMNS_OPTIONAL)
CELL_CHARS_MAX = 120  # a longer cell is shown cut, with `…` (the tooltip has it whole)
_HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"),
         (codecs.BOM_UTF16_BE, "utf-16-be"))


def shown_cell(text: str) -> str:
    """A cell as the preview shows it: what could hide or reorder text replaced, cut to
    `CELL_CHARS_MAX` with a visible `…`."""
    safe = "".join("\ufffd" if unicodedata.category(c) in _HIDDEN_CATEGORIES else c
                   for c in text)
    return safe if len(safe) <= CELL_CHARS_MAX else safe[:CELL_CHARS_MAX] + "…"


def cells_by_line(data: bytes, lines_max: int) -> dict[int, dict[str, str]]:
    """The known columns' cells of each data row (line -> column -> text), for at most
    `lines_max` rows; empty for a file that does not read."""
    bom, encoding = next(((b, e) for b, e in _BOMS if data.startswith(b)), (b"", "utf-8"))
    try:
        text = data[len(bom):].decode(encoding, errors="strict")
    except UnicodeDecodeError:
        return {}
    reader = csv.reader(io.StringIO(text, newline="\n"), strict=True)
    columns: list[str] | None = None
    rows: dict[int, dict[str, str]] = {}
    while len(rows) < lines_max:
        line = reader.line_num + 1
        try:
            cells = next(reader)
        except (StopIteration, csv.Error):
            break
        if not cells:
            continue
        if columns is None:
            names = [cell.strip().lower() for cell in cells]
            columns = [COLUMN_SYNONYMS.get(name, name) for name in names]
            continue
        rows[line] = {name: cell for name, cell in zip(columns, cells, strict=False)
                      if name in COLUMNS}
    return rows
