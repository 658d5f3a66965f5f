"""Reconciliation's values: what a bank or a chain says happened (statements and their lines),
what the books say happened (book items), and what matching made of them.

Amounts are signed integers of minor units **as the account holder sees them**: a credit (money
arriving on the channel's account) is positive, a debit (money leaving it) negative, on both
sides, so a statement line and the book item it matches carry the same sign. Times are UTC
microseconds since the epoch; a date-only value (a value date) is midnight UTC of that day.

Every value is frozen; the parsers (channels/iso20022, recon/formats) make them, the matcher
(recon/matching.py) and the service (recon/service.py) read them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from fundpool.core.errors import FundpoolError

DAY_US = 86_400 * 1_000_000


# --- errors: a file is refused whole, naming the file and the place --------------------------


class FileRefused(FundpoolError):
    """A statement or status file that cannot be taken: nothing of it is stored. Facts:
    `file` (its name), `place` (an XPath-like path, `line 12`, `row 3, column amount`, or
    `byte 0` for what is unreadable as a whole) and, where it helps, `expected`/`found`."""

    code = "file_refused"
    title = "the file cannot be imported"


class UnknownMessage(FileRefused):
    code = "unknown_message"
    title = "the file is not a message version fundpool reads"


class BalancesDoNotAddUp(FileRefused):
    code = "balances_do_not_add_up"
    title = "the statement's opening balance and its entries do not give its closing balance"


class DuplicateStatement(FundpoolError):
    code = "duplicate_statement"
    title = "this statement was imported before"


# --- what the bank or the chain says -------------------------------------------------------


class LineKind(StrEnum):
    TRANSFER = "transfer"  # a credit transfer in or out (a payout, a deposit)
    CHARGE = "charge"  # a fee the bank charged
    RETURN = "return"  # a transfer coming back (a payout returned by the payee's bank)
    REVERSAL = "reversal"  # the bank undoing one of its own earlier entries
    INTEREST = "interest"
    OTHER = "other"


class LineStatus(StrEnum):
    BOOKED = "booked"  # on the account: counts towards the balance
    PENDING = "pending"  # announced, not booked (matched, never counted in a balance)


@dataclass(frozen=True, slots=True)
class StatementLine:
    """One entry of a statement (camt.053 Ntry, a camt.054 notification's entry, an MT940 :61:
    line, a CSV row, a chain transfer). A batched entry (one Ntry for a whole batch, with its
    transactions in NtryDtls) is one line whose `batch_ref` names the batch; its `parts` are
    the transactions' end-to-end ids, when the bank lists them."""

    line_id: str  # unique within its statement: "<statement_id>:<position>"
    amount_minor: int  # signed: credit > 0, debit < 0
    asset: str
    booked_at_us: int  # booking date (a pending line: the date it is expected)
    value_at_us: int  # value date
    status: LineStatus = LineStatus.BOOKED
    kind: LineKind = LineKind.TRANSFER
    end_to_end_id: str | None = None  # EndToEndId: fundpool writes the payment's id there
    batch_ref: str | None = None  # PmtInfId / MsgId of the batch it books as one line
    bank_ref: str | None = None  # AcctSvcrRef: the bank's own reference of the entry
    reference: str | None = None  # remittance information (Ustrd), a CSV's reference cell
    counterparty: str | None = None
    counterparty_account: str | None = None  # an IBAN, an account number, a chain address
    reason: str | None = None  # a return's or reversal's reason code (ISO: AC04, MS03 ...)
    parts: tuple[str, ...] = ()  # end-to-end ids of a batched entry's transactions


@dataclass(frozen=True, slots=True)
class Balance:
    amount_minor: int  # signed: a debit (overdrawn) balance is negative
    at_us: int


@dataclass(frozen=True, slots=True)
class Statement:
    """One account's statement for a period (camt.053 Stmt, camt.054 Ntfctn, an MT940
    message, a CSV file, a chain transfer list). `opening`/`closing` are None when the format
    has none (camt.054, a chain list, a CSV without balance columns)."""

    statement_id: str  # the bank's id (Stmt/Id, :20:), unique per account
    account: str  # IBAN, account number or chain address of the pool's account
    asset: str
    created_at_us: int
    lines: tuple[StatementLine, ...]
    opening: Balance | None = None
    closing: Balance | None = None
    sequence: str | None = None  # ElctrncSeqNb / :28C:


class FileFormat(StrEnum):
    CAMT053 = "camt.053"
    CAMT054 = "camt.054"
    MT940 = "mt940"
    CSV = "csv"
    CHAIN = "chain"


@dataclass(frozen=True, slots=True)
class StatementFile:
    """A whole file as parsed: several statements may share one (camt.053 with several Stmt,
    MT940 with several messages). `message` is the exact version read ("camt.053.001.08")."""

    name: str
    format: FileFormat
    message: str
    statements: tuple[Statement, ...]
    sha256: str  # of the file's bytes: the same file imported twice is refused


# --- what the books say --------------------------------------------------------------------


class ItemKind(StrEnum):
    PAYOUT = "payout"  # money left the pool on the channel (settled)
    FEE = "fee"  # what the pool booked as the channel's fee for a payment
    DEPOSIT = "deposit"  # money arrived (cleared)
    RETURN = "return"  # a payout came back, or a deposit was sent back
    ADJUSTMENT = "adjustment"  # booked by a person resolving a break (a bank charge, FX)


@dataclass(frozen=True, slots=True)
class BookItem:
    """One movement across the channel's boundary as the books have it: a payment's settled
    payout, its fee, a cleared deposit, a return, or an adjustment booked in reconciliation.
    `item_id` is stable: "<payment_id>:<what>" or "adjustment:<id>"."""

    item_id: str
    amount_minor: int  # signed as the account holder sees it: a payout is negative
    asset: str
    at_us: int
    kind: ItemKind
    payment_id: str | None = None  # what fundpool wrote as the end-to-end id
    batch_ref: str | None = None  # the rail's reference of the batch it went in
    reference: str | None = None  # the payment's own reference (a deposit's announcement)
    counterparty: str | None = None


# --- what matching made of them ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Tolerance:
    """How far an amount-and-date match may drift, per channel (pool config `recon`)."""

    amount_minor: int = 0  # |line - item| at most this
    days: int = 2  # |value date - booking| at most this many days

    @property
    def window_us(self) -> int:
        return self.days * DAY_US


class MatchRule(StrEnum):
    END_TO_END = "end_to_end"  # the line's end-to-end id is a payment's id
    BATCH = "batch"  # the line books a batch: the batch's items
    REFERENCE = "reference"  # the line's remittance information names a payment or reference
    AMOUNT = "amount"  # one candidate only by amount, currency and date within tolerance
    EXPECTED = "expected"  # an announced incoming payment


class Shape(StrEnum):
    ONE_TO_ONE = "1:1"
    ONE_TO_MANY = "1:N"  # one line, several items (a batch booked as one line)
    MANY_TO_ONE = "N:1"  # several lines, one item (one payment paid in parts)
    MANY_TO_MANY = "N:M"

    @staticmethod
    def of(lines: int, items: int) -> Shape:
        if lines == 1:
            return Shape.ONE_TO_ONE if items == 1 else Shape.ONE_TO_MANY
        return Shape.MANY_TO_ONE if items == 1 else Shape.MANY_TO_MANY


@dataclass(frozen=True, slots=True)
class Match:
    lines: tuple[str, ...]  # line ids
    items: tuple[str, ...]  # item ids
    rule: MatchRule
    difference_minor: int = 0  # sum(lines) - sum(items): within the tolerance

    @property
    def shape(self) -> Shape:
        return Shape.of(len(self.lines), len(self.items))


class Side(StrEnum):
    STATEMENT = "statement"
    BOOKS = "books"


@dataclass(frozen=True, slots=True)
class Ambiguous:
    """A line or an item with more than one possible counterpart: reported, never guessed."""

    side: Side
    id: str
    candidates: tuple[str, ...]  # ids on the other side


class BreakReason(StrEnum):
    NOT_IN_BOOKS = "not_in_books"  # the bank has it, the ledger does not (a charge, a credit)
    NOT_AT_BANK = "not_at_bank"  # the ledger has it, the bank does not (yet)
    AMOUNT_DIFFERS = "amount_differs"  # the references agree, the amounts do not


@dataclass(frozen=True, slots=True)
class Break:
    side: Side
    id: str
    reason: BreakReason
    amount_minor: int  # the line's or item's amount, or the difference (AMOUNT_DIFFERS)
    at_us: int  # the line's value date or the item's time: its age is counted from it
    related: tuple[str, ...] = ()  # AMOUNT_DIFFERS: the other side's ids


@dataclass(frozen=True, slots=True)
class MatchResult:
    """Every line and every item given is in exactly one of: a match, an ambiguous report, a
    break (recon/matching.py checks it before answering)."""

    matches: tuple[Match, ...] = ()
    ambiguous: tuple[Ambiguous, ...] = ()
    breaks: tuple[Break, ...] = ()
    counts: dict[str, int] = field(default_factory=dict)


# --- the payment's id on the wire ----------------------------------------------------------

UUID_TEXT_CHARS = 36
END_TO_END_CHARS_MAX = 35  # ISO 20022 Max35Text


def end_to_end_of(payment_id: str) -> str:
    """What fundpool writes as a payment's EndToEndId: its id, without the dashes when it is
    a UUID (36 characters do not fit ISO 20022's 35; the 32 hex digits do, and come back)."""
    if len(payment_id) == UUID_TEXT_CHARS and payment_id.count("-") == 4:
        return payment_id.replace("-", "")
    return payment_id


def payment_id_of(end_to_end: str) -> str:
    """The payment id an EndToEndId names: 32 hex digits are a UUID written without dashes."""
    text = end_to_end.strip()
    if len(text) == 32 and all(c in "0123456789abcdefABCDEF" for c in text):
        low = text.lower()
        return f"{low[:8]}-{low[8:12]}-{low[12:16]}-{low[16:20]}-{low[20:]}"
    return text
