"""What the reconciliation service keeps and answers: imported files and statements, where each
statement line and book item stands after the latest match run, the matches, resolutions,
expected payments and the balance check of a statement.

The pure parts (the values of statements and book items, the parsers, the matcher) are in
`fundpool.recon`; this package is the service over the stores, the payments and the ledger.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from fundpool.core.actor import Actor
from fundpool.core.errors import FundpoolError
from fundpool.recon.model import DAY_US, Side, StatementLine

NOTE_CHARS_MAX = 500  # a resolution's note, within the ledger's reason bound
LOOKBACK_DAYS = 35  # how long before a statement's period a payment may have been created
RUN_ITEMS_MAX = 2_000_000  # book items one run reads (a bound, far above a channel's day)
PAGE_MAX = 1_000


class ReconError(FundpoolError):
    code = "recon_error"
    title = "reconciliation refused the request"


class UnknownChannel(ReconError):
    code = "unknown_channel"
    title = "the pool has no such channel"


class NotOpen(ReconError):
    code = "recon_not_open"
    title = "only an open break or ambiguous item can be resolved"


class NoteRequired(ReconError):
    code = "recon_note_required"
    title = "a resolution says why in a note (at most 500 characters)"


class NothingToBook(ReconError):
    code = "recon_nothing_to_book"
    title = "only a statement line the books lack, or a difference, can be booked"


class UnknownRecord(ReconError):
    code = "recon_not_found"
    title = "no such statement, line, item or expected payment"


class InvalidExpected(ReconError):
    code = "invalid_expected_payment"
    title = "an expected payment needs 0 < min <= max and a date range that ends after it starts"


class State(StrEnum):
    MATCHED = "matched"
    AMBIGUOUS = "ambiguous"
    BREAK = "break"
    RESOLVED = "resolved"  # a break a person closed with a note

    @property
    def final(self) -> bool:
        return self in (State.MATCHED, State.RESOLVED)


@dataclass(frozen=True, slots=True)
class FileRecord:
    file_id: str
    pool: str
    channel: str
    name: str
    format: str
    message: str
    sha256: str
    statements: int
    lines: int
    imported_at_us: int
    imported_by: Actor | None


@dataclass(frozen=True, slots=True)
class StoredStatement:
    id: str  # fundpool's
    file_id: str
    pool: str
    channel: str
    account: str
    asset: str
    statement_id: str  # the bank's
    sequence: str | None
    created_at_us: int
    opening_minor: int | None
    opening_at_us: int | None
    closing_minor: int | None
    closing_at_us: int | None
    first_at_us: int  # the period it covers: its opening, else its first line's date
    last_at_us: int  # its closing, else the end of its last line's day
    lines: int


@dataclass(frozen=True, slots=True)
class StoredLine:
    statement: str  # StoredStatement.id
    position: int
    pool: str
    channel: str
    line: StatementLine  # line_id is fundpool's: "<statement id>:<position>"


@dataclass(frozen=True, slots=True)
class StateRow:
    """Where one statement line or book item stands after the latest run."""

    pool: str
    channel: str
    side: Side
    id: str
    state: State
    match_id: str | None
    reason: str | None  # a break's reason, a resolution's id
    amount_minor: int
    asset: str
    at_us: int
    related: tuple[str, ...]  # ambiguous: the candidates; a break: the other side's ids
    payment_id: str | None
    updated_at_us: int

    def age_days(self, now_us: int) -> int:
        return max(0, (now_us - self.at_us) // DAY_US)


@dataclass(frozen=True, slots=True)
class MatchRow:
    id: str
    pool: str
    channel: str
    rule: str
    shape: str
    difference_minor: int
    lines: tuple[str, ...]
    items: tuple[str, ...]
    at_us: int
    actor: Actor | None


class ResolutionAction(StrEnum):
    NOTE = "note"  # closed with a note
    BOOKED = "booked"  # the difference booked in the ledger as an adjustment


@dataclass(frozen=True, slots=True)
class Resolution:
    id: str
    pool: str
    channel: str
    side: Side
    target: str
    action: ResolutionAction
    note: str
    asset: str
    amount_minor: int  # booked: the adjustment's signed amount; a note: the target's
    entry_id: str | None
    at_us: int
    actor: Actor


class ExpectedState(StrEnum):
    OPEN = "open"
    MATCHED = "matched"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class Expected:
    id: str
    pool: str
    channel: str
    asset: str
    amount_min_minor: int
    amount_max_minor: int
    from_us: int
    until_us: int
    reference: str | None
    counterparty: str | None
    state: ExpectedState
    credit_id: str | None  # the statement line or deposit it matched
    created_at_us: int
    created_by: Actor | None
    matched_at_us: int | None


@dataclass(frozen=True, slots=True)
class ActionRecord:
    """One reconciliation action, for the audit log's trail."""

    at_us: int
    action: str  # import, match, resolve, expect, cancel_expected, save_mapping
    object_kind: str
    object_id: str
    actor: Actor | None
    details: dict[str, object]


@dataclass(frozen=True, slots=True)
class RunReport:
    channel: str
    lines: int
    items: int
    matched_lines: int
    matched_items: int
    ambiguous: int
    breaks: int
    expected_matched: int
    since_us: int
    until_us: int


@dataclass(frozen=True, slots=True)
class ImportReport:
    file: FileRecord
    statements: tuple[StoredStatement, ...]
    run: RunReport


@dataclass(frozen=True, slots=True)
class BalanceCheck:
    """A statement's balances against the ledger's balance of its channel at the statement's
    times. `booked_after_minor` is what was booked in reconciliation for this statement's lines
    after its closing (a bank charge booked today for yesterday's statement): it counts at the
    closing, since the bank booked it then."""

    statement: StoredStatement
    ledger_opening_minor: int | None
    ledger_closing_minor: int | None
    booked_after_minor: int
    open_lines: int

    @property
    def opening_difference_minor(self) -> int | None:
        if self.statement.opening_minor is None or self.ledger_opening_minor is None:
            return None
        return self.statement.opening_minor - self.ledger_opening_minor

    @property
    def closing_difference_minor(self) -> int | None:
        if self.statement.closing_minor is None or self.ledger_closing_minor is None:
            return None
        return self.statement.closing_minor - (self.ledger_closing_minor
                                               + self.booked_after_minor)

    @property
    def reconciled(self) -> bool:
        return (self.open_lines == 0 and self.opening_difference_minor in (0, None)
                and self.closing_difference_minor in (0, None))
