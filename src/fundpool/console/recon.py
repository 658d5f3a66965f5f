"""Reconciliation as the workbench shows it (pages/recon.py), without any UI: a channel's
counts, a statement's balance check, the open breaks by age, what a row says about itself,
and a statement's or book item's times as dates.

Everything comes from `/v1/recon` (server/v1/recon.py) as JSON documents. Amounts stay the
API's exact text (`"-2.50"`); nothing here turns one into a number. Words are looked up in the
string table through the maps below (`recon.state_*`, `recon.reason_*`, …): a state, reason or
kind the console does not know yet is shown as the API wrote it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from fundpool.console.format import Locale
from fundpool.console.i18n import t

Row = TypeVar("Row", bound=Mapping[str, Any])  # one of the API's JSON documents

OPEN_STATES = ("break", "ambiguous")  # what a person still has to look at
FINAL_STATES = ("matched", "resolved")
# Breaks by age in whole days (the API's `age_days`): (bucket, first day, last day or None).
AGE_BUCKETS: tuple[tuple[str, int, int | None], ...] = (
    ("0_1", 0, 1), ("2_7", 2, 7), ("over_7", 8, None))
AGE_KEYS = {"0_1": "recon.age_0_1", "2_7": "recon.age_2_7", "over_7": "recon.age_over_7"}
STATE_KEYS = {  # a line's or an item's state, and a payment's (`unreconciled`)
    "matched": "recon.state_matched", "ambiguous": "recon.state_ambiguous",
    "break": "recon.state_break", "resolved": "recon.state_resolved",
    "unreconciled": "recon.state_unreconciled",
}
STATE_TONES = {"matched": "done", "resolved": "done", "break": "bad", "ambiguous": "attention",
               "unreconciled": "muted"}
REASON_KEYS = {  # recon.model.BreakReason
    "not_in_books": "recon.reason_not_in_books", "not_at_bank": "recon.reason_not_at_bank",
    "amount_differs": "recon.reason_amount_differs",
}
KIND_KEYS = {  # recon.model.LineKind
    "transfer": "recon.kind_transfer", "charge": "recon.kind_charge",
    "return": "recon.kind_return", "reversal": "recon.kind_reversal",
    "interest": "recon.kind_interest", "other": "recon.kind_other",
}
# A book item's id says what it is: `<payment id>:<what>` or `adjustment:<resolution id>`
# (reconciliation/items.py).
ITEM_KEYS = {
    "in": "recon.item_in", "out": "recon.item_out", "fee": "recon.item_fee",
    "return": "recon.item_return", "adjustment": "recon.item_adjustment",
}
FORMATS = ("camt.053", "camt.054", "mt940", "csv", "chain")  # recon.model.FileFormat
ADJUSTMENT_PREFIX = "adjustment:"
DAY_END_SUFFIX = "T23:59:59.999999Z"
MIDNIGHT_SUFFIX = "T00:00:00.000000Z"


def words(keys: Mapping[str, str], value: str | None, locale: Locale) -> str:
    """A code the console has words for, in `locale`; another one as the API wrote it."""
    if value is None:
        return "—"
    key = keys.get(value)
    return t(key, locale) if key is not None else value


def state_text(state: str | None, locale: Locale) -> str:
    return words(STATE_KEYS, state, locale)


def reason_text(reason: str | None, locale: Locale) -> str:
    return words(REASON_KEYS, reason, locale)


# --- counts ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Counts:
    """How a channel's lines and items stand, both sides together."""

    matched: int = 0
    ambiguous: int = 0
    breaks: int = 0
    resolved: int = 0

    @property
    def open(self) -> int:
        return self.ambiguous + self.breaks


def counts_of(doc: Mapping[str, Any] | None, side: str | None = None) -> Counts:
    """`GET /v1/recon/channels`' `counts` (side → state → count), summed over both sides or
    of one `side` (`statement`, `books`)."""
    totals: dict[str, int] = {}
    for found_side, states in (doc or {}).items():
        if side is not None and found_side != side:
            continue
        for state, count in (states or {}).items():
            totals[state] = totals.get(state, 0) + int(count)
    return Counts(totals.get("matched", 0), totals.get("ambiguous", 0),
                  totals.get("break", 0), totals.get("resolved", 0))


def age_bucket(age_days: int) -> str:
    for bucket, first, last in AGE_BUCKETS:
        if age_days >= first and (last is None or age_days <= last):
            return bucket
    return AGE_BUCKETS[0][0]  # a negative age (a clock behind a value date) is today's


def breaks_by_age(rows: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """The breaks among `rows` (the API's open rows, either side) counted by age bucket;
    every bucket is there, with 0 when none is that old."""
    counted = {bucket: 0 for bucket, _, _ in AGE_BUCKETS}
    for row in rows:
        if row.get("state") == "break":
            counted[age_bucket(int(row.get("age_days") or 0))] += 1
    return counted


def split_sides(rows: Iterable[Row]) -> tuple[list[Row], list[Row]]:
    """(statement lines, book items) of the open rows, each oldest first as the API gave
    them."""
    statement: list[Row] = []
    books: list[Row] = []
    for row in rows:
        (statement if row.get("side") == "statement" else books).append(row)
    return statement, books


# --- what a row says about itself ----------------------------------------------------------


def item_kind(item_id: str) -> str | None:
    """What a book item is, from its id: in, out, fee, return or adjustment."""
    if item_id.startswith(ADJUSTMENT_PREFIX):
        return "adjustment"
    _, separator, what = item_id.rpartition(":")
    return what if separator and what in ITEM_KEYS else None


def references(row: Mapping[str, Any], locale: Locale) -> list[str]:
    """What ties an open row to the other side, as a person reads it: a statement line's
    end-to-end id, bank reference, remittance text, batch, counterparty and return reason;
    a book item's payment and what it is of that payment."""
    said: list[str] = []
    if row.get("side") == "statement":
        line = row.get("line") or {}
        for key, name in (("end_to_end_id", "recon.ref_end_to_end"),
                          ("bank_ref", "recon.ref_bank"), ("reference", "recon.ref_remittance"),
                          ("batch_ref", "recon.ref_batch"),
                          ("counterparty", "recon.ref_counterparty"),
                          ("counterparty_account", "recon.ref_account"),
                          ("reason", "recon.ref_return_reason")):
            value = line.get(key)
            if value:
                said.append(t(name, locale, value=value))
        parts = line.get("parts") or []
        if parts:
            said.append(t("recon.ref_parts", locale, count=len(parts)))
        return said
    kind = item_kind(str(row.get("id") or ""))
    if kind is not None:
        said.append(t(ITEM_KEYS[kind], locale))
    if row.get("payment_id"):
        said.append(t("recon.ref_payment", locale, value=row["payment_id"]))
    return said


def target_text(target: str, statements: Mapping[str, str], locale: Locale) -> str:
    """What a resolution closed, as a person finds it again: a statement line as its bank
    statement's id and its position (`statements`: fundpool's statement id → the bank's), a
    book item as its payment and what it is of it; anything else as its id."""
    head, separator, tail = target.rpartition(":")
    if separator and tail.isdigit() and head in statements:
        return t("recon.target_line", locale, statement=statements[head], position=tail)
    kind = item_kind(target)
    if kind is not None and kind != "adjustment":
        return t("recon.target_item", locale, payment=head, what=t(ITEM_KEYS[kind], locale))
    return target


def line_kind_text(row: Mapping[str, Any], locale: Locale) -> str | None:
    """A statement row's kind (transfer, charge, …), None for a book item."""
    line = row.get("line")
    if not line:
        return None
    return words(KIND_KEYS, line.get("kind"), locale)


def may_book(row: Mapping[str, Any], *, may_adjust: bool) -> bool:
    """Whether Resolve offers to book the difference: a statement line that is a break (the
    API books nothing else), for a user who may post adjustments."""
    return may_adjust and row.get("side") == "statement" and row.get("state") == "break"


def candidates_of(row: Mapping[str, Any]) -> list[str]:
    """An ambiguous row's candidates (ids on the other side); a break `amount_differs`'s
    other side."""
    return [str(x) for x in row.get("related") or ()]


# --- times -----------------------------------------------------------------------------------


def when_text(instant: str | None) -> str:
    """An instant of the API (`2026-12-07T21:41:37.546825Z`) as the console writes times, in
    UTC: the date alone for a date-only value (midnight), else to the second."""
    if not instant:
        return "—"
    if instant.endswith(MIDNIGHT_SUFFIX) or instant.endswith(DAY_END_SUFFIX):
        return instant[:10]
    return instant.replace("T", " ")[:19]


def period_text(first: str | None, last: str | None) -> str:
    """A statement's period: one day, or from one day to another (times when not whole
    days)."""
    start, end = when_text(first), when_text(last)
    return start if start == end else f"{start} – {end}"


# --- a statement's balance check -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BalanceView:
    """One statement's balances against the ledger's, as its row shows them."""

    id: str  # fundpool's id of the statement
    statement_id: str  # the bank's
    account: str
    asset: str
    period: str
    opening: str
    ledger_opening: str
    opening_difference: str
    closing: str
    ledger_closing: str
    booked_after: str
    closing_difference: str
    open_lines: int
    lines: int
    reconciled: bool


def _text(value: object) -> str:
    return "—" if value is None else str(value)


def balance_view(doc: Mapping[str, Any]) -> BalanceView:
    """`GET /v1/recon/statements`' item (or a channel's `latest`)."""
    statement = doc.get("statement") or {}
    return BalanceView(
        id=str(statement.get("id") or ""), statement_id=str(statement.get("statement_id") or ""),
        account=str(statement.get("account") or ""), asset=str(statement.get("asset") or ""),
        period=period_text(statement.get("from"), statement.get("until")),
        opening=_text(statement.get("opening")), ledger_opening=_text(doc.get("ledger_opening")),
        opening_difference=_text(doc.get("opening_difference")),
        closing=_text(statement.get("closing")), ledger_closing=_text(doc.get("ledger_closing")),
        booked_after=_text(doc.get("booked_after")),
        closing_difference=_text(doc.get("closing_difference")),
        open_lines=int(doc.get("open_lines") or 0), lines=int(statement.get("lines") or 0),
        reconciled=bool(doc.get("reconciled")))


def is_zero(amount: str) -> bool:
    """Whether the API's exact amount text is zero (`0.00`, `-0`): no difference to show."""
    digits = amount.strip().lstrip("+-")
    return bool(digits) and set(digits.replace(".", "")) == {"0"}


# --- an import's answer --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ImportSummary:
    name: str
    message: str  # the exact version read ("camt.053.001.08")
    statements: int
    lines: int
    matched: int
    ambiguous: int
    breaks: int


def import_summary(doc: Mapping[str, Any]) -> ImportSummary:
    """`POST /v1/recon/imports`' answer: the file, its statements and the match run."""
    file = doc.get("file") or {}
    run = doc.get("run") or {}
    return ImportSummary(str(file.get("name") or ""), str(file.get("message") or ""),
                         int(file.get("statements") or 0), int(file.get("lines") or 0),
                         int(run.get("matched_lines") or 0), int(run.get("ambiguous") or 0),
                         int(run.get("breaks") or 0))


def missing_fields(values: Mapping[str, str | None], required: Sequence[str]) -> list[str]:
    """The required fields of a form left empty, in the order given."""
    return [name for name in required if not str(values.get(name) or "").strip()]
