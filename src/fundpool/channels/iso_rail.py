"""The ISO 20022 bank rail: a `ChannelAdapter` (channels/ports.py) that pays out by writing
pain.001 files to a bank and learns what became of them from the bank's pain.002, camt.054
and camt.053 files, all through one exchange directory (docs/bank-rail.md):

    <exchange>/to-bank/           pain.001 files this rail writes, one per submission
    <exchange>/from-bank/         what the bank writes: pain.002, camt.054, camt.053
    <exchange>/from-bank/done/    bank files whose outcomes were all acknowledged
    <exchange>/from-bank/refused/ bank files that cannot be read, each with a .why.txt
    <exchange>/statements/        camt.053 (and copies of camt.054) for reconciliation

A submission is one pain.001: MsgId = PmtInfId = the rail reference
"<channel>-<instance>-<n>" (at most 35 characters), one transfer per instruction, each with
the payment's id as its EndToEndId (a UUID without its dashes: 36 characters do not fit in
35; `recon.model.end_to_end_of` and `payment_id_of` go there and back). The file is on disk
(fsync'd, renamed into place, the directory fsync'd) before `submit` returns.

What the bank says becomes outcomes:

- pain.002, per payment: ACTC, ACCP, ACSP, ACWC … `cleared`; ACSC, ACCC `settled`; RJCT,
  CANC `failed` with the ISO reason and the bank's words; PDNG and the like nothing yet. A
  whole-group rejection (GrpSts or PmtInfSts RJCT) fails every payment of the original
  message, listed or not: the rail knows them from its own to-bank file;
- camt.054, per booked entry: a debit naming payments (its EndToEndId, or a batched entry's
  transactions) `settled`; a credit that returns one (RtrInf, a return sub-family)
  `returned` with its reason. Other entries (charges, credits nobody announced) are for
  reconciliation: the file is copied to statements/;
- camt.053: moved to statements/ as it is, no outcome.

An outcome's id is "<file name>:<EndToEndId>:<kind>", the same on every reading of the file.
A file's outcomes are delivered by `poll` until they are acknowledged (`acknowledge`), and
the file goes to done/ once all of them are; one process delivers each outcome once, and a
new rail on the same exchange (a restart) reads again every file not in done/: the outcomes
come again with their ids, which the payment side knows. The reference counter goes on from
the highest one among the to-bank files, and `inquire` answers from them.

One rail process writes to an exchange at a time (the engine's leader lease sees to it).
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from fundpool.channels.iso20022 import camt, status
from fundpool.channels.iso20022.document import read_document
from fundpool.channels.iso20022.errors import InvalidAccount, MessageNotWritable
from fundpool.channels.iso20022.pain001 import (
    CreditTransfer,
    Party,
    read_pain001,
    write_pain001,
)
from fundpool.channels.ports import (
    Capabilities,
    ChannelAdapter,
    ChannelOutcome,
    Direction,
    Inquiry,
    Instruction,
    OutcomeCallback,
    OutcomeKind,
    Quote,
    Submission,
)
from fundpool.channels.profiles import US_PER_DAY, default_profile
from fundpool.channels.simulated import ChannelRefused, RefusalReason
from fundpool.core.errors import FundpoolError
from fundpool.core.money import Asset
from fundpool.pool.config import ChannelConfig, InvalidConfig
from fundpool.recon.model import (
    FileRefused,
    LineKind,
    LineStatus,
    Statement,
    end_to_end_of,
    payment_id_of,
)

log = structlog.get_logger(__name__)

TO_BANK = "to-bank"
FROM_BANK = "from-bank"
DONE = "done"  # under from-bank/
REFUSED = "refused"  # under from-bank/
STATEMENTS = "statements"
WHY_SUFFIX = ".why.txt"
MESSAGE_ID_CHARS_MAX = 35  # Max35Text: MsgId, PmtInfId, EndToEndId
COUNTER_DIGITS = 8  # the rail reference's n as a to-bank file name writes it
INSTANCE_PATTERN = re.compile(r"[a-z0-9]{1,10}\Z")
# A file takes a bank day from submission to its booking (camt.054): what a quote expects.
BANK_DAY_US = US_PER_DAY
FILES_PER_POLL_MAX = 1_000  # new bank files read in one poll; the rest wait for the next
SUBSCRIBERS_MAX = 64
NOT_PROVIDED = "NOTPROVIDED"  # a creditor without a name: SEPA's agreed placeholder

_TO_BANK_FILE = re.compile(r"pain001-(?P<n>[0-9]+)-(?P<ref>[^/]+)\.xml\Z")
_PAIN002 = frozenset(status.VERSIONS)
_CAMT053 = frozenset(v for v in camt.VERSIONS if v.startswith("camt.053"))
_BANK_MESSAGES = (*status.VERSIONS, *camt.VERSIONS)
_PAIN002_KINDS: Mapping[status.TxStatus, OutcomeKind] = {
    status.TxStatus.ACCEPTED: OutcomeKind.CLEARED,
    status.TxStatus.SETTLED: OutcomeKind.SETTLED,
    status.TxStatus.REJECTED: OutcomeKind.FAILED,
}


class _Message(StrEnum):
    STATUS = "pain.002"
    STATEMENT = "camt.053"
    NOTIFICATION = "camt.054"


class BankRefusal(StrEnum):
    """Why the bank rail refuses a submission, beyond the reasons every rail has
    (`simulated.RefusalReason`)."""

    INBOUND_NOT_CARRIED = "inbound_not_carried"  # a pain.001 pays out; deposits are read
    NO_DESTINATION = "no_destination"
    INVALID_DESTINATION = "invalid_destination"  # an IBAN that is not one, a BIC …
    NOT_WRITABLE = "message_not_writable"  # a value a pain.001 cannot carry
    EXCHANGE_NOT_WRITABLE = "exchange_not_writable"


def short_instance(now_us: int) -> str:
    """A rail instance name that fits in a 35-character rail reference: the start's second
    in base 36 (six characters until 2038 and long after)."""
    seconds = max(0, now_us // 1_000_000)
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    text = ""
    while True:
        seconds, remainder = divmod(seconds, 36)
        text = digits[remainder] + text
        if seconds == 0:
            return text


# --- durable files (the simulator writes with them too) -------------------------------------


def fsync_directory(directory: Path) -> None:
    """Make the names in `directory` durable (a rename is not, until its directory is)."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomically(path: Path, data: bytes) -> None:
    """`data` at `path`, whole or not at all: written to a hidden temporary file beside it,
    fsync'd, renamed into place, and the directory fsync'd. Readers skip hidden names."""
    partial = path.with_name(f".{path.name}.tmp")
    try:
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    fsync_directory(path.parent)


def move_durably(source: Path, target: Path) -> None:
    """Rename `source` to `target` (same file system) and make both names durable."""
    os.replace(source, target)
    fsync_directory(target.parent)
    if source.parent != target.parent:
        fsync_directory(source.parent)


def visible_files(directory: Path, suffix: str = ".xml") -> list[str]:
    """The names of the finished files in `directory`, sorted: hidden (temporary) names and
    subdirectories are not among them."""
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return []
    return sorted(entry.name for entry in entries
                  if entry.is_file() and not entry.name.startswith(".")
                  and entry.name.endswith(suffix))


# --- the rail -------------------------------------------------------------------------------


@dataclass(slots=True)
class _OpenFile:
    """A bank file whose outcomes are not all acknowledged yet."""

    outcomes: list[ChannelOutcome]
    waiting: set[str] = field(default_factory=set)  # outcome ids not acknowledged


class Iso20022Rail:
    """A `ChannelAdapter` (and an `Inquiry`) for one channel whose adapter is "iso20022",
    on its bank's exchange directory."""

    def __init__(
        self,
        channel: ChannelConfig,
        assets: Mapping[str, Asset],
        *,
        exchange: Path,
        instance: str,
        clock_us: Callable[[], int] | None = None,
        notifications_to_statements: bool = True,
    ) -> None:
        """`instance` tells this rail's references from earlier ones' on the exchange:
        lower-case letters and digits, short (`short_instance`). `clock_us` dates the pain.001
        (its CreDtTm; else the submission's instant). `notifications_to_statements`: copy
        every camt.054 to statements/, for reconciliation to read its entries before the
        day's camt.053 (which holds them again)."""
        where = f"channels.{channel.id}"
        bank = channel.bank
        if bank is None:
            raise InvalidConfig("the iso20022 rail needs the channel's bank table",
                                at=f"{where}.bank")
        missing = [code for code in channel.assets if code not in assets]
        if missing:
            raise InvalidConfig(f"assets not defined: {missing}", at=f"{where}.assets")
        prefix = f"{channel.id}-{instance}"
        if not INSTANCE_PATTERN.match(instance) or (
                len(prefix) + 1 + COUNTER_DIGITS > MESSAGE_ID_CHARS_MAX):
            raise InvalidConfig(
                f"rail references {prefix}-<n> must fit in {MESSAGE_ID_CHARS_MAX} characters "
                f"with {COUNTER_DIGITS} digits of n: the instance is 1 to 10 lower-case "
                "letters and digits, short enough", at=where, instance=instance)
        self._channel = channel
        self._bank = bank
        self._scales = {code: assets[code].scale for code in channel.assets}
        self._all_scales = {code: asset.scale for code, asset in assets.items()}
        self._prefix = prefix
        self._clock_us = clock_us
        self._copy_notifications = notifications_to_statements
        self._exchange = exchange
        self._to_bank = exchange / TO_BANK
        self._from_bank = exchange / FROM_BANK
        self._done = self._from_bank / DONE
        self._refused_dir = self._from_bank / REFUSED
        self._statements = exchange / STATEMENTS
        self._lock = threading.RLock()
        self._subscribers: list[OutcomeCallback] = []
        self._schedules = {code: channel.fee_schedule(code) for code in channel.assets}
        self._success_probability = default_profile(channel.kind).quoted_success_probability
        # rail reference -> the end-to-end ids of its file; end-to-end id -> the references
        # of the files that carried it (a payment sent again after a failure is in two).
        self._messages: dict[str, tuple[str, ...]] = {}
        self._carried_in: dict[str, list[str]] = {}
        self._last_n = 0
        self._open: dict[str, _OpenFile] = {}  # bank file name -> what it still waits for
        self._file_of: dict[str, str] = {}  # outcome id -> bank file name
        self._delivered: set[str] = set()  # delivered by this rail, not acknowledged
        self._prepare()

    # --- what the rail is ----------------------------------------------------------------

    @property
    def id(self) -> str:
        return self._channel.id

    @property
    def exchange(self) -> Path:
        return self._exchange

    def capabilities(self) -> Capabilities:
        return Capabilities.declared(self._channel, callbacks=False)  # files read when polled

    def quote(self, asset: str, amount_minor: int, at_us: int) -> Quote:
        """The channel's configured fee; a bank day to settlement, after the wait for the
        next cut-off window when the rail is closed at `at_us`."""
        schedule = self._schedules.get(asset)
        if schedule is None:
            raise self._refused(RefusalReason.UNKNOWN_ASSET, asset=asset)
        return Quote(self.id, asset, amount_minor, schedule.outbound_fee(amount_minor),
                     self._wait_until_open_us(at_us) + BANK_DAY_US, self._success_probability)

    def _wait_until_open_us(self, at_us: int) -> int:
        cutoff = self._channel.cutoff
        if not cutoff or any(window.contains(at_us) for window in cutoff):
            return 0
        return min(window.next_open_us(at_us) for window in cutoff) - at_us

    # --- taking work ---------------------------------------------------------------------

    def submit(self, instructions: Sequence[Instruction], at_us: int) -> Submission:
        """One pain.001 for the whole submission, on disk before this returns. Refused whole
        (`channel_refused`) for what the simulated rail refuses, for a deposit (a bank is not
        told of one: reconciliation finds it), an instruction without a destination or with
        one a pain.001 cannot carry, and when the file cannot be written."""
        batch = tuple(instructions)
        with self._lock:
            asset = self._check(batch, at_us)
            n = self._last_n + 1
            rail_ref = f"{self._prefix}-{n}"
            data = self._pain001(batch, rail_ref, asset, at_us)
            path = self._to_bank / f"pain001-{n:0{COUNTER_DIGITS}d}-{rail_ref}.xml"
            try:
                self._to_bank.mkdir(parents=True, exist_ok=True)
                write_atomically(path, data)
            except OSError as error:
                raise self._refused(BankRefusal.EXCHANGE_NOT_WRITABLE,
                                    directory=str(self._to_bank), error=str(error)) from error
            self._last_n = n
            self._index(rail_ref, tuple(end_to_end_of(i.payment_id) for i in batch))
        fee_minor = sum(self._schedules[asset].outbound_fee(i.amount_minor) for i in batch)
        return Submission(
            channel=self.id,
            rail_ref=rail_ref,
            payment_ids=tuple(i.payment_id for i in batch),
            submitted_at_us=at_us,
            fee_minor=fee_minor,
            single_fee_minor=fee_minor,  # the bank charges per transfer, batched or not
        )

    def _refused(self, reason: StrEnum, **facts: object) -> ChannelRefused:
        return ChannelRefused(f"{self.id} refused the submission: {reason.value}",
                              channel=self.id, reason=reason.value, **facts)

    def _check(self, batch: tuple[Instruction, ...], at_us: int) -> str:
        """The submission's asset, or the reason the whole submission is refused."""
        capabilities = self.capabilities()
        if not batch:
            raise self._refused(RefusalReason.EMPTY)
        if len(batch) > capabilities.batch_size_max:
            raise self._refused(RefusalReason.BATCH_TOO_LARGE, batch_size=len(batch),
                                batch_size_max=capabilities.batch_size_max)
        if not capabilities.open_at(at_us):
            raise self._refused(RefusalReason.CLOSED, at_us=at_us,
                                next_open_us=at_us + self._wait_until_open_us(at_us))
        first_asset = batch[0].asset
        seen: set[str] = set()
        for index, instruction in enumerate(batch):
            payment_id = instruction.payment_id
            if not isinstance(payment_id, str) or not payment_id or isinstance(
                    instruction.amount_minor, bool) or not isinstance(
                    instruction.amount_minor, int):
                raise self._refused(RefusalReason.INVALID_INSTRUCTION, index=index)
            if instruction.direction is not Direction.OUTBOUND:
                raise self._refused(BankRefusal.INBOUND_NOT_CARRIED, payment_id=payment_id)
            if instruction.asset not in capabilities.assets:
                raise self._refused(RefusalReason.UNKNOWN_ASSET, payment_id=payment_id,
                                    asset=instruction.asset,
                                    assets=sorted(capabilities.assets))
            if instruction.asset != first_asset:
                raise self._refused(RefusalReason.MIXED_ASSETS, payment_id=payment_id,
                                    asset=instruction.asset, submission_asset=first_asset)
            if not capabilities.accepts(instruction.asset, instruction.amount_minor):
                limits = capabilities.limits_for(instruction.asset)
                raise self._refused(RefusalReason.AMOUNT_OUTSIDE_LIMITS, payment_id=payment_id,
                                    asset=instruction.asset,
                                    amount_minor=instruction.amount_minor,
                                    min_minor=limits.min_minor, max_minor=limits.max_minor)
            if payment_id in seen:
                raise self._refused(RefusalReason.DUPLICATE_PAYMENT_ID, payment_id=payment_id)
            seen.add(payment_id)
            end_to_end = end_to_end_of(payment_id)
            if len(end_to_end) > MESSAGE_ID_CHARS_MAX or payment_id_of(end_to_end) != payment_id:
                # The bank's answers name the EndToEndId only: it must lead back to the id.
                raise self._refused(BankRefusal.NOT_WRITABLE, payment_id=payment_id,
                                    field="end_to_end_id", found=end_to_end)
            if not instruction.destination or not instruction.destination.strip():
                raise self._refused(BankRefusal.NO_DESTINATION, payment_id=payment_id)
        return first_asset

    def _pain001(self, batch: tuple[Instruction, ...], rail_ref: str, asset: str,
                 at_us: int) -> bytes:
        bank = self._bank
        transfers = [
            CreditTransfer(
                end_to_end_id=end_to_end_of(i.payment_id),
                amount_minor=i.amount_minor,
                creditor=Party(i.counterparty or NOT_PROVIDED, i.destination or ""),
                remittance=i.reference or None,
            )
            for i in batch
        ]
        created_us = at_us if self._clock_us is None else self._clock_us()
        try:
            return write_pain001(
                message_id=rail_ref, created_at_us=created_us,
                debtor=Party(bank.name, bank.account, bank.bic), payment_info_id=rail_ref,
                execution_date_us=at_us, asset=asset, scale=self._scales[asset],
                transfers=transfers, version=bank.pain001)
        except InvalidAccount as error:
            raise self._refused(BankRefusal.INVALID_DESTINATION,
                                payment_id=_payment_named(error), why=error.detail,
                                **_facts(error)) from error
        except MessageNotWritable as error:
            raise self._refused(BankRefusal.NOT_WRITABLE, payment_id=_payment_named(error),
                                why=error.detail, **_facts(error)) from error

    # --- what the rail knows of its own files --------------------------------------------

    def _prepare(self) -> None:
        """Make the exchange's directories, drop temporary files a killed writer left in
        to-bank (a submission that never returned: the engine sends it again), and index
        every to-bank file: its reference's n, its end-to-end ids."""
        try:
            for directory in (self._to_bank, self._done, self._refused_dir, self._statements):
                directory.mkdir(parents=True, exist_ok=True)
            for stale in self._to_bank.glob(".*.tmp"):
                stale.unlink(missing_ok=True)
        except OSError as error:  # submit refuses, poll logs: the rail itself stands
            log.error("bank_exchange_unusable", channel=self.id, exchange=str(self._exchange),
                      error=str(error))
        for name in visible_files(self._to_bank):
            match = _TO_BANK_FILE.match(name)
            if match is None:
                continue
            self._last_n = max(self._last_n, int(match["n"]))
            path = self._to_bank / name
            try:
                message = read_pain001(path.read_bytes(), name, scales=self._all_scales)
            except (OSError, FundpoolError) as error:
                # Its own file, written whole: a bug or a hand on the disk. Its payments are
                # not known, so the engine may send them again: said loudly.
                log.error("bank_own_file_unreadable", channel=self.id, file=name,
                          error=str(error))
                continue
            self._index(message.message_id,
                        tuple(transfer.end_to_end_id for transfer in message.transfers))

    def _index(self, rail_ref: str, end_to_end_ids: tuple[str, ...]) -> None:
        self._messages[rail_ref] = end_to_end_ids
        for end_to_end in end_to_end_ids:
            self._carried_in.setdefault(end_to_end, []).append(rail_ref)

    def inquire(self, payment_ids: Sequence[str], at_us: int) -> set[str]:
        """Which of these payments are in a to-bank file (so the bank has them, or will).
        Their outcomes not acknowledged are still in from-bank/ and come with the polls."""
        with self._lock:
            return {pid for pid in payment_ids if end_to_end_of(pid) in self._carried_in}

    def rail_refs_of(self, payment_id: str) -> tuple[str, ...]:
        """The references of the submissions that carried this payment, oldest first."""
        with self._lock:
            return tuple(self._carried_in.get(end_to_end_of(payment_id), ()))

    # --- reporting -----------------------------------------------------------------------

    def subscribe(self, callback: OutcomeCallback) -> None:
        """Outcomes are pushed to `callback` as `poll` delivers them (the bank calls nobody)."""
        if len(self._subscribers) >= SUBSCRIBERS_MAX:
            raise ValueError(f"at most {SUBSCRIBERS_MAX} subscribers per rail")
        self._subscribers.append(callback)

    def poll(self, until_us: int) -> list[ChannelOutcome]:
        """Every outcome of the bank's files not delivered by this rail yet and not
        acknowledged, oldest file first. A file on disk has happened: `until_us` holds
        nothing back. A file that cannot be read is moved to from-bank/refused/."""
        with self._lock:
            self._read_new_files()
            delivered: list[ChannelOutcome] = []
            for opened in self._open.values():
                for outcome in opened.outcomes:
                    if outcome.outcome_id in opened.waiting and (
                            outcome.outcome_id not in self._delivered):
                        delivered.append(outcome)
                        self._delivered.add(outcome.outcome_id)
        for position, outcome in enumerate(delivered):
            try:
                for callback in self._subscribers:
                    callback(outcome)
            except BaseException:
                # As a webhook that failed: what the subscriber did not get comes again.
                with self._lock:
                    for missed in delivered[position:]:
                        self._delivered.discard(missed.outcome_id)
                raise
        return delivered

    def acknowledge(self, taken: Iterable[str | ChannelOutcome] | None = None) -> None:
        """The caller has committed these outcomes (all delivered ones when None): they are
        not delivered again by this rail, and a bank file whose outcomes are all taken goes
        to done/, so no later rail reads it again."""
        with self._lock:
            ids = set(self._delivered) if taken is None else {
                t.outcome_id if isinstance(t, ChannelOutcome) else t for t in taken}
            finished: set[str] = set()
            for outcome_id in ids:
                name = self._file_of.pop(outcome_id, None)
                self._delivered.discard(outcome_id)
                if name is None:
                    continue
                opened = self._open[name]
                opened.waiting.discard(outcome_id)
                if not opened.waiting:
                    finished.add(name)
            for name in sorted(finished):
                del self._open[name]
                self._finish(name, self._done)

    def pending_files(self) -> list[str]:
        """The bank files read whose outcomes are not all acknowledged."""
        with self._lock:
            return list(self._open)

    def close(self) -> None:
        """Nothing is held between calls (every state is a file); kept so that the engine
        closes every rail alike."""

    def _read_new_files(self) -> None:
        try:
            names = visible_files(self._from_bank)
        except OSError as error:
            log.error("bank_exchange_unreadable", channel=self.id, error=str(error))
            return
        fresh = [name for name in names if name not in self._open][:FILES_PER_POLL_MAX]
        for name in fresh:
            path = self._from_bank / name
            try:
                data = path.read_bytes()
                message, outcomes = self._read(data, name)
            except Exception as error:  # never stop the poll: the file waits for a person
                self._refuse(name, error)
                continue
            to_statements = message is _Message.STATEMENT or (
                message is _Message.NOTIFICATION and self._copy_notifications)
            if not outcomes:
                self._finish(name, self._statements if to_statements else self._done)
                continue
            if to_statements:
                self._copy(path, data)  # the original waits in from-bank for its acks
            opened = _OpenFile(outcomes, {o.outcome_id for o in outcomes})
            self._open[name] = opened
            for outcome in outcomes:
                self._file_of[outcome.outcome_id] = name

    def _read(self, data: bytes, name: str) -> tuple[_Message, list[ChannelOutcome]]:
        """Which message the file is, read whole (refused as a whole), and its outcomes."""
        _, version = read_document(data, name, messages=_BANK_MESSAGES)
        if version in _PAIN002:
            report = status.parse_pain002(data, name)
            return _Message.STATUS, self._status_outcomes(report, name)
        statements = camt.parse_camt(data, name, scales=self._all_scales)
        if version in _CAMT053:
            return _Message.STATEMENT, []
        outcomes: list[ChannelOutcome] = []
        seen: set[str] = set()
        for statement in statements.statements:
            self._notification_outcomes(statement, name, outcomes, seen)
        return _Message.NOTIFICATION, outcomes

    def _status_outcomes(self, report: status.StatusReport, name: str) -> list[ChannelOutcome]:
        rail_ref = report.original_message_id
        carried = self._messages.get(rail_ref)
        if carried is None:
            raise FileRefused(f"the report answers {rail_ref!r}, a message this rail never "
                              "sent", file=name, place="OrgnlGrpInfAndSts/OrgnlMsgId",
                              found=rail_ref)
        outcomes: list[ChannelOutcome] = []
        details = {"file": name, "message_id": report.message_id}
        listed: set[str] = set()
        for payment in report.payments:
            listed.add(payment.end_to_end_id)
            kind = _PAIN002_KINDS.get(payment.outcome)
            if kind is None:
                continue  # pending at the bank: the next report says
            if payment.end_to_end_id not in carried:
                log.warning("bank_status_of_a_payment_not_sent", channel=self.id, file=name,
                            end_to_end_id=payment.end_to_end_id, rail_ref=rail_ref)
            reason = _reason(payment.reason, payment.reason_text) if (
                kind is OutcomeKind.FAILED) else None
            outcomes.append(self._outcome(name, payment.end_to_end_id, kind, rail_ref,
                                          report.created_at_us, reason,
                                          {**details, "status": payment.status}))
        if report.rejects_all:
            reason = _reason(report.reason, report.reason_text) or "RJCT"
            for end_to_end in carried:
                if end_to_end not in listed:
                    outcomes.append(self._outcome(
                        name, end_to_end, OutcomeKind.FAILED, rail_ref, report.created_at_us,
                        reason, {**details, "status": "RJCT"}))
        return outcomes

    def _notification_outcomes(self, statement: Statement, name: str,
                               outcomes: list[ChannelOutcome], seen: set[str]) -> None:
        for line in statement.lines:
            if line.status is not LineStatus.BOOKED:
                continue
            if line.amount_minor < 0 and line.kind is LineKind.TRANSFER:
                kind, reason = OutcomeKind.SETTLED, None
            elif line.amount_minor > 0 and line.kind is LineKind.RETURN:
                kind, reason = OutcomeKind.RETURNED, line.reason
            else:
                continue  # a charge, a credit nobody announced: reconciliation's
            named = line.parts or ((line.end_to_end_id,) if line.end_to_end_id else ())
            for end_to_end in named:
                refs = self._carried_in.get(end_to_end)
                if refs is None:
                    continue  # not a payment of this rail's
                rail_ref = line.batch_ref if line.batch_ref in refs else refs[-1]
                details = {"file": name, "line_id": line.line_id}
                if line.bank_ref is not None:
                    details["bank_ref"] = line.bank_ref
                outcome = self._outcome(name, end_to_end, kind, rail_ref, line.booked_at_us,
                                        reason, details)
                if outcome.outcome_id not in seen:
                    seen.add(outcome.outcome_id)
                    outcomes.append(outcome)

    def _outcome(self, name: str, end_to_end: str, kind: OutcomeKind, rail_ref: str,
                 at_us: int, reason: str | None, details: dict[str, str]) -> ChannelOutcome:
        return ChannelOutcome(
            outcome_id=f"{name}:{end_to_end}:{kind.value}",
            channel=self.id,
            payment_id=payment_id_of(end_to_end),
            rail_ref=rail_ref,
            kind=kind,
            at_us=at_us,
            reason=reason,
            details=details,
        )

    # --- moving the bank's files ---------------------------------------------------------

    def _finish(self, name: str, directory: Path) -> None:
        try:
            directory.mkdir(parents=True, exist_ok=True)
            move_durably(self._from_bank / name, directory / name)
        except OSError as error:  # read again by the next rail: its outcomes are duplicates
            log.error("bank_file_not_moved", channel=self.id, file=name,
                      to=str(directory), error=str(error))

    def _copy(self, source: Path, data: bytes) -> None:
        try:
            self._statements.mkdir(parents=True, exist_ok=True)
            write_atomically(self._statements / source.name, data)
        except OSError as error:
            log.error("bank_notification_not_copied", channel=self.id, file=source.name,
                      error=str(error))

    def _refuse(self, name: str, error: Exception) -> None:
        why = error.to_dict() if isinstance(error, FundpoolError) else {
            "code": "unexpected_error", "detail": f"{type(error).__name__}: {error}"}
        log.error("bank_file_refused", channel=self.id, file=name, code=why["code"],
                  detail=why["detail"])
        try:
            self._refused_dir.mkdir(parents=True, exist_ok=True)
            write_atomically(self._refused_dir / f"{name}{WHY_SUFFIX}",
                             (json.dumps(why, indent=2, sort_keys=True) + "\n").encode())
            move_durably(self._from_bank / name, self._refused_dir / name)
        except OSError as move_error:
            log.error("bank_file_not_moved", channel=self.id, file=name,
                      to=str(self._refused_dir), error=str(move_error))


def _reason(code: str | None, text: str | None) -> str | None:
    said = " ".join(part for part in (code, text) if part)
    return said or None


def _payment_named(error: FundpoolError) -> str | None:
    end_to_end = error.facts.get("end_to_end_id")
    return payment_id_of(end_to_end) if isinstance(end_to_end, str) else None


def _facts(error: FundpoolError) -> dict[str, object]:
    return {key: value for key, value in error.facts.items()
            if key in ("place", "party", "account", "bic", "field", "found")}


if TYPE_CHECKING:

    def _is_a_channel_adapter(rail: Iso20022Rail) -> ChannelAdapter:
        return rail  # mypy checks here that the rail implements the port exactly

    def _answers_an_inquiry(rail: Iso20022Rail) -> Inquiry:
        return rail
