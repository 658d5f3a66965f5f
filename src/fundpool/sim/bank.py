"""A simulated bank on the ISO 20022 bank rail's exchange directory (channels/iso_rail.py,
docs/bank-rail.md): it takes the pain.001 files fundpool writes and answers as a bank does,
on a compressed clock, deterministically under a seed.

Each `step(now_us)` first plays what fell due by `now_us` (bookings, returns, credits, the
end of each day, in time order), then takes the new pain.001 files of to-bank/:

- a file that fails its schema, is not from the simulated account, is in another currency
  or repeats a message id is rejected whole: a pain.002 with GrpSts RJCT and no payment
  (FF01, AC01, AM03, DU01);
- otherwise a pain.002 at once: ACCP per transfer, except the planted rejections (about 1
  in 20: AC04 closed account or AM05 duplication; GrpSts PART, or RJCT when none is left);
- `booking_delay_s` later a camt.054 books the accepted transfers as ONE batched debit entry
  (NtryDtls/Btch/PmtInfId = the file's payment information id, a TxDtls per transfer), as
  banks book a payment file; with it a charge entry for the batch, the sum of the channel's
  fee schedule over the booked transfers (what the ledger booked as their fees), plus a
  planted extra 5.00 on about 1 batch in 10: a fee the books do not have;
- about 1 booked transfer in 50 comes back `return_after_s` later ("days later" on the
  compressed clock): a credit entry with its EndToEndId and the return reason AC04;
- about once a day a credit nobody announced: a payer's name and "INVOICE …";
- every `day_s` a camt.053 with the day's booked entries, its opening balance (the previous
  closing; the first is `opening_minor`) and its closing balance, ElctrncSeqNb counting on.

What was planted (rejections, extra charges, returns, unannounced credits) is listed by
`planted()` and in bank/planted.jsonl, so a test can hold reconciliation to exactly those.

The fates of a file are drawn from a generator seeded with the seed and the file's message
id, so they do not depend on how often `step` is called or what came before; credits from
one seeded with the day's number. Everything the simulator writes is written atomically
(temporary file, fsync, rename), its state (bank/state.json) after every event, so a killed
simulator goes on where its state says (an event it had written but not yet recorded is
written again, under the same name when it was due, under a new one when it was an answer
to a pain.001 — the rail's outcomes are safe to repeat). Bank file names sort by time:
`<yyyymmddThhmmss>-<seq>-<pain002|camt054|camt053>.xml`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

import structlog

from fundpool.channels.iso20022 import camt, pain001, status
from fundpool.channels.iso20022.document import read_document
from fundpool.channels.iso_rail import (
    FROM_BANK,
    TO_BANK,
    visible_files,
    write_atomically,
)
from fundpool.core.errors import FundpoolError
from fundpool.core.money import Asset
from fundpool.pool.config import ChannelConfig, FeeSchedule
from fundpool.recon.model import (
    Balance,
    LineKind,
    LineStatus,
    Statement,
    StatementLine,
)

log = structlog.get_logger(__name__)

BANK_DIR = "bank"  # under the exchange: the simulator's own files
STATE_FILE = "state.json"
PLANTED_FILE = "planted.jsonl"
STATE_VERSION = 1
US_PER_SECOND = 1_000_000
FILES_PER_STEP_MAX = 1_000  # pain.001 files taken in one step; the rest wait for the next
EVENTS_PER_STEP_MAX = 100_000  # a step far behind catches up in bounded work
SEQUENCE_DIGITS = 6
ID_CHARS_MAX = 35
EXTRA_CHARGE_UNITS = 5  # the planted fee: 5.00 in the asset's units
RETURN_REASON = "AC04"
REJECTIONS = (("AC04", "closed account number"), ("AM05", "duplication"))
# Sender errors, each a whole-file rejection (ISO ExternalStatusReason1Code).
INVALID_FILE = ("FF01", "invalid file format")
WRONG_ACCOUNT = ("AC01", "incorrect account number")
WRONG_CURRENCY = ("AM03", "currency not allowed")
DUPLICATE_MESSAGE = ("DU01", "duplicate message id")
PAYERS = (
    ("Northwind Traders Ltd", "GB29NWBK60161331926819"),
    ("Contoso Handels GmbH", "DE89370400440532013000"),
    ("Globex SARL", "FR1420041010050500013M02606"),
    ("Initech BV", "NL91ABNA0417164300"),
)
CREDIT_UNITS_MIN, CREDIT_UNITS_MAX = 50, 5_000


class BankStateMismatch(FundpoolError):
    code = "bank_state_mismatch"
    title = "the exchange's simulated bank state belongs to another account or asset"


class PlantedKind(StrEnum):
    REJECTED = "rejected"  # a transfer refused in a partial acceptance (a failed payout)
    EXTRA_CHARGE = "extra_charge"  # a batch charged 5.00 more than the books (a break)
    RETURN = "return"  # a booked transfer came back (the books follow the rail's outcome)
    UNANNOUNCED_CREDIT = "unannounced_credit"  # money in that no one announced (a break)


@dataclass(frozen=True, slots=True)
class Planted:
    kind: PlantedKind
    at_us: int
    amount_minor: int  # the transfer's, the extra charge's, the credit's (positive)
    payment_info_id: str | None = None  # the batch (the pain.001's PmtInfId)
    end_to_end_id: str | None = None
    reason: str | None = None
    bank_ref: str | None = None  # the entry's AcctSvcrRef, when it is booked
    counterparty: str | None = None
    reference: str | None = None


@dataclass(frozen=True, slots=True)
class BankSettings:
    """How the simulated bank behaves. Rates are per transfer, per batch, per day."""

    seed: int = 0
    booking_delay_s: float = 2.0
    return_after_s: float = 30.0
    day_s: float = 600.0
    reject_rate: float = 0.05
    extra_charge_rate: float = 0.10
    return_rate: float = 0.02
    credits_per_day: float = 1.0
    charges_in_notifications: bool = False  # charges in the camt.054 too, not only the .053

    def __post_init__(self) -> None:
        for name in ("reject_rate", "extra_charge_rate", "return_rate"):
            rate = getattr(self, name)
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{name} is 0 to 1, not {rate}")
        if self.day_s <= 0 or self.booking_delay_s < 0 or self.return_after_s < 0:
            raise ValueError("day_s is positive; booking_delay_s and return_after_s are not "
                             "negative")
        if not 0.0 <= self.credits_per_day <= 100.0:
            raise ValueError("credits_per_day is 0 to 100")


class BankSimulator:
    """The bank of one account (`account`, in `asset`) on the exchange directory."""

    def __init__(
        self,
        exchange: Path,
        *,
        account: str,
        asset: Asset,
        opening_minor: int,
        channel: ChannelConfig | None = None,
        settings: BankSettings = BankSettings(),
    ) -> None:
        """`channel`: the channel whose fee schedule the ledger books, so that the bank's
        charges are those fees (no channel: no fee, only the planted extra charges)."""
        self._exchange = exchange
        self._to_bank = exchange / TO_BANK
        self._from_bank = exchange / FROM_BANK
        self._own = exchange / BANK_DIR
        self._account = _compact(account)
        self._asset = asset
        self._settings = settings
        self._fees = channel.fee_schedule(asset.code) if channel is not None else FeeSchedule()
        self._scales = {asset.code: asset.scale}
        self._day_us = max(1, round(settings.day_s * US_PER_SECOND))
        for directory in (self._to_bank, self._from_bank, self._own):
            directory.mkdir(parents=True, exist_ok=True)
        self._state = self._load(opening_minor)

    # --- what it did ---------------------------------------------------------------------

    @property
    def balance_minor(self) -> int:
        """The balance booked so far (the last closing plus today's entries)."""
        state = self._state
        return int(state["balance_minor"]) + sum(
            int(line["amount_minor"]) for line in state["day_lines"])

    def planted(self) -> list[Planted]:
        return [_planted_of(doc) for doc in self._state["planted"]]

    # --- the clock -----------------------------------------------------------------------

    def step(self, now_us: int) -> list[str]:
        """Play what fell due by `now_us`, answer the new pain.001 files, play again what
        their answers made due. Returns the names of the files written to from-bank/."""
        written: list[str] = []
        state = self._state
        if state["day_start_us"] is None:
            state["day_start_us"] = now_us
            self._open_day(0)
            self._save()
        self._catch_up(now_us, written)
        for name in self._new_files()[:FILES_PER_STEP_MAX]:
            self._take(name, now_us, written)
        self._catch_up(now_us, written)
        return written

    def _catch_up(self, now_us: int, written: list[str]) -> None:
        state = self._state
        for _ in range(EVENTS_PER_STEP_MAX):
            close_us = int(state["day_start_us"]) + (int(state["days_closed"]) + 1) * self._day_us
            events = state["events"]
            first = min(events, key=_event_order, default=None)
            if first is not None and first["due_us"] <= now_us and first["due_us"] < close_us:
                events.remove(first)
                self._play(first, written)
            elif close_us <= now_us:
                self._close_day(close_us, written)
            else:
                return
            self._save()

    def _new_files(self) -> list[str]:
        done = set(self._state["processed"])
        return [name for name in visible_files(self._to_bank) if name not in done]

    # --- a pain.001 ----------------------------------------------------------------------

    def _take(self, name: str, now_us: int, written: list[str]) -> None:
        state = self._state
        data = (self._to_bank / name).read_bytes()
        try:
            message = pain001.read_pain001(data, name, scales=self._scales)
        except FundpoolError as error:
            log.warning("bank_file_invalid", file=name, error=str(error))
            # The place first: the bank's words are cut at 105 characters.
            place = str(error.facts.get("place", "")).removeprefix(
                "Document/").removeprefix("CstmrCdtTrfInitn/")
            self._reject_file(_message_id_of(data, name), status.DEFAULT_VERSION,
                              INVALID_FILE, f"{place}: {error.detail}", now_us, written)
        else:
            answer = status.DEFAULT_VERSION if message.version == pain001.DEFAULT_VERSION \
                else "pain.002.001.03"
            problem = None
            if message.message_id in state["message_ids"]:
                problem = DUPLICATE_MESSAGE
            elif _compact(message.debtor.account) != self._account:
                problem = WRONG_ACCOUNT
            elif message.asset != self._asset.code:
                problem = WRONG_CURRENCY
            if problem is not None:
                self._reject_file(message.message_id, answer, problem, problem[1], now_us,
                                  written)
            else:
                self._accept(message, answer, now_us, written)
                state["message_ids"].append(message.message_id)
        state["processed"].append(name)
        self._save()

    def _reject_file(self, message_id: str, version: str, reason: tuple[str, str], text: str,
                     now_us: int, written: list[str]) -> None:
        """A pain.002 rejecting the whole message, listing no payment (as banks do: the
        rail fails every payment of the original message)."""
        said = " ".join(text.split())[:status.REASON_TEXT_LENGTH_MAX].strip()
        report = status.StatusReport(
            message_id=self._next_id("STS"), created_at_us=now_us,
            original_message_id=message_id, original_payment_info_id=None,
            group_status="RJCT", payments=(), version=version, reason=reason[0],
            reason_text=said or None)
        self._emit(now_us, "pain002", status.write_pain002(report, version), written)

    def _accept(self, message: pain001.Pain001, version: str, now_us: int,
                written: list[str]) -> None:
        settings = self._settings
        draw = random.Random(f"fundpool-bank/{settings.seed}/{message.message_id}").random
        statuses: list[status.PaymentStatus] = []
        booked: list[dict[str, Any]] = []
        booking_us = now_us + round(settings.booking_delay_s * US_PER_SECOND)
        for transfer in message.transfers:
            rejected, which, comeback = draw(), draw(), draw()
            if rejected < settings.reject_rate:
                code, text = REJECTIONS[int(which * len(REJECTIONS))]
                statuses.append(status.PaymentStatus(transfer.end_to_end_id, "RJCT", code,
                                                     text))
                self._plant(Planted(PlantedKind.REJECTED, now_us, transfer.amount_minor,
                                    message.payment_info_id, transfer.end_to_end_id,
                                    f"{code} {text}", counterparty=transfer.creditor.name))
                continue
            statuses.append(status.PaymentStatus(transfer.end_to_end_id, "ACCP"))
            booked.append({"end_to_end_id": transfer.end_to_end_id,
                           "amount_minor": transfer.amount_minor,
                           "creditor": transfer.creditor.name,
                           "account": transfer.creditor.account,
                           "returns": comeback < settings.return_rate})
        extra = draw() < settings.extra_charge_rate
        group = "ACCP" if len(booked) == len(statuses) else ("PART" if booked else "RJCT")
        report = status.StatusReport(
            message_id=self._next_id("STS"), created_at_us=now_us,
            original_message_id=message.message_id,
            original_payment_info_id=message.payment_info_id, group_status=group,
            payments=tuple(statuses), version=version, payment_info_status=group)
        self._emit(now_us, "pain002", status.write_pain002(report, version), written)
        if booked:
            self._schedule({"kind": "booking", "due_us": booking_us,
                            "payment_info_id": message.payment_info_id, "transfers": booked,
                            "extra_charge": extra})

    # --- what falls due ------------------------------------------------------------------

    def _play(self, event: dict[str, Any], written: list[str]) -> None:
        kind = event["kind"]
        if kind == "booking":
            self._book(event, written)
        elif kind == "return":
            self._book_return(event, written)
        elif kind == "credit":
            self._book_credit(event, written)
        else:
            raise ValueError(f"an event the simulated bank does not know: {kind!r}")

    def _book(self, event: dict[str, Any], written: list[str]) -> None:
        at_us = int(event["due_us"])
        batch = str(event["payment_info_id"])
        transfers: list[dict[str, Any]] = event["transfers"]
        total_minor = sum(int(t["amount_minor"]) for t in transfers)
        if len(transfers) == 1:
            (only,) = transfers
            debit = self._line(-total_minor, at_us, LineKind.TRANSFER, batch_ref=batch,
                               end_to_end_id=only["end_to_end_id"],
                               counterparty=only["creditor"][:camt.NAME_LENGTH_MAX],
                               counterparty_account=only["account"])
        else:
            debit = self._line(-total_minor, at_us, LineKind.TRANSFER, batch_ref=batch,
                               parts=tuple(t["end_to_end_id"] for t in transfers))
        lines = [debit]
        fees_minor = sum(self._fees.outbound_fee(int(t["amount_minor"])) for t in transfers)
        extra_minor = EXTRA_CHARGE_UNITS * 10**self._asset.scale if event["extra_charge"] else 0
        if fees_minor + extra_minor:
            charge = self._line(-(fees_minor + extra_minor), at_us, LineKind.CHARGE,
                                batch_ref=batch)
            lines.append(charge)
            if extra_minor:
                self._plant(Planted(PlantedKind.EXTRA_CHARGE, at_us, extra_minor, batch,
                                    bank_ref=charge.bank_ref,
                                    reference=f"charge {fees_minor + extra_minor}"))
        self._book_lines(lines, written, notify=lines if self._settings.charges_in_notifications
                         else [debit])
        return_us = at_us + round(self._settings.return_after_s * US_PER_SECOND)
        for transfer in transfers:
            if transfer["returns"]:
                self._schedule({"kind": "return", "due_us": return_us,
                                "payment_info_id": batch, **transfer})

    def _book_return(self, event: dict[str, Any], written: list[str]) -> None:
        at_us = int(event["due_us"])
        line = self._line(int(event["amount_minor"]), at_us, LineKind.RETURN,
                          end_to_end_id=event["end_to_end_id"], reason=RETURN_REASON,
                          counterparty=event["creditor"][:camt.NAME_LENGTH_MAX],
                          counterparty_account=event["account"])
        self._plant(Planted(PlantedKind.RETURN, at_us, int(event["amount_minor"]),
                            event["payment_info_id"], event["end_to_end_id"], RETURN_REASON,
                            line.bank_ref, event["creditor"]))
        self._book_lines([line], written, notify=[line])

    def _book_credit(self, event: dict[str, Any], written: list[str]) -> None:
        at_us = int(event["due_us"])
        line = self._line(int(event["amount_minor"]), at_us, LineKind.TRANSFER,
                          counterparty=event["counterparty"],
                          counterparty_account=event["account"], reference=event["reference"])
        self._plant(Planted(PlantedKind.UNANNOUNCED_CREDIT, at_us, int(event["amount_minor"]),
                            bank_ref=line.bank_ref, counterparty=event["counterparty"],
                            reference=event["reference"]))
        self._book_lines([line], written, notify=[line])

    def _book_lines(self, lines: list[StatementLine], written: list[str], *,
                    notify: list[StatementLine]) -> None:
        at_us = lines[0].booked_at_us
        self._state["day_lines"].extend(_line_doc(line) for line in lines)
        notification = Statement(
            statement_id=self._next_id("NTF"), account=self._account, asset=self._asset.code,
            created_at_us=at_us, lines=tuple(notify))
        data = camt.write_camt054([notification], message_id=notification.statement_id,
                                  created_at_us=at_us, scales=self._scales)
        self._emit(at_us, "camt054", data, written)

    # --- days ----------------------------------------------------------------------------

    def _open_day(self, day: int) -> None:
        """Schedule the day's credits that no one announces."""
        settings = self._settings
        rng = random.Random(f"fundpool-bank/{settings.seed}/credits/{day}")
        fraction, whole = math.modf(settings.credits_per_day)
        count = int(whole) + (1 if rng.random() < fraction else 0)
        start_us = int(self._state["day_start_us"]) + day * self._day_us
        scale = self._asset.scale
        for _ in range(count):
            payer, account = PAYERS[rng.randrange(len(PAYERS))]
            amount_minor = (rng.randint(CREDIT_UNITS_MIN, CREDIT_UNITS_MAX) * 10**scale
                            + rng.randrange(10**scale))
            self._schedule({"kind": "credit",
                            "due_us": start_us + int(rng.random() * self._day_us),
                            "amount_minor": amount_minor, "counterparty": payer,
                            "account": account,
                            "reference": f"INVOICE {rng.randint(10_000, 99_999)}"})

    def _close_day(self, close_us: int, written: list[str]) -> None:
        state = self._state
        lines = tuple(_line_of(doc) for doc in state["day_lines"])
        opening_minor = int(state["balance_minor"])
        closing_minor = opening_minor + sum(line.amount_minor for line in lines)
        state["statement_seq"] = int(state["statement_seq"]) + 1
        statement = Statement(
            statement_id=self._next_id("STM"), account=self._account, asset=self._asset.code,
            created_at_us=close_us, lines=lines,
            opening=Balance(opening_minor, close_us - self._day_us),
            closing=Balance(closing_minor, close_us), sequence=str(state["statement_seq"]))
        data = camt.write_camt053([statement], message_id=statement.statement_id,
                                  created_at_us=close_us, scales=self._scales)
        self._emit(close_us, "camt053", data, written)
        state["balance_minor"] = closing_minor
        state["day_lines"] = []
        state["days_closed"] = int(state["days_closed"]) + 1
        self._open_day(int(state["days_closed"]))

    # --- writing -------------------------------------------------------------------------

    def _line(self, amount_minor: int, at_us: int, kind: LineKind, **fields: Any
              ) -> StatementLine:
        state = self._state
        state["entry_seq"] = int(state["entry_seq"]) + 1
        bank_ref = f"BK{int(state['entry_seq']):012d}"
        return StatementLine(line_id=bank_ref, amount_minor=amount_minor,
                             asset=self._asset.code, booked_at_us=at_us, value_at_us=at_us,
                             status=LineStatus.BOOKED, kind=kind, bank_ref=bank_ref, **fields)

    def _next_id(self, prefix: str) -> str:
        state = self._state
        state["id_seq"] = int(state["id_seq"]) + 1
        return f"{prefix}-{int(state['id_seq']):08d}"

    def _emit(self, at_us: int, kind: str, data: bytes, written: list[str]) -> None:
        state = self._state
        state["file_seq"] = int(state["file_seq"]) + 1
        name = f"{_stamp(at_us)}-{int(state['file_seq']):0{SEQUENCE_DIGITS}d}-{kind}.xml"
        write_atomically(self._from_bank / name, data)
        written.append(name)

    def _schedule(self, event: dict[str, Any]) -> None:
        state = self._state
        state["event_seq"] = int(state["event_seq"]) + 1
        state["events"].append({**event, "seq": state["event_seq"]})

    def _plant(self, planted: Planted) -> None:
        self._state["planted"].append(_planted_doc(planted))

    # --- state ---------------------------------------------------------------------------

    def _load(self, opening_minor: int) -> dict[str, Any]:
        path = self._own / STATE_FILE
        if not path.exists():
            return {"version": STATE_VERSION, "account": self._account,
                    "asset": self._asset.code, "processed": [], "message_ids": [],
                    "file_seq": 0, "id_seq": 0, "entry_seq": 0, "event_seq": 0,
                    "statement_seq": 0, "day_start_us": None, "days_closed": 0,
                    "balance_minor": opening_minor, "day_lines": [], "events": [],
                    "planted": []}
        state: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        if (state.get("version"), state.get("account"), state.get("asset")) != (
                STATE_VERSION, self._account, self._asset.code):
            raise BankStateMismatch(
                f"{path} is the state of another simulated bank", path=str(path),
                account=state.get("account"), asset=state.get("asset"),
                expected_account=self._account, expected_asset=self._asset.code)
        return state

    def _save(self) -> None:
        state = self._state
        write_atomically(self._own / STATE_FILE,
                         json.dumps(state, sort_keys=True).encode("utf-8"))
        planted = "".join(json.dumps(doc, sort_keys=True) + "\n" for doc in state["planted"])
        write_atomically(self._own / PLANTED_FILE, planted.encode("utf-8"))


def run_bank(simulator: BankSimulator, *, clock_us: Callable[[], int], every_s: float,
             stop: threading.Event, on_files: Callable[[list[str]], None] | None = None
             ) -> None:
    """Step the simulator every `every_s` seconds of wall time until `stop` is set. A step
    that fails is logged and the next one tries again (a file half-copied by hand, a full
    disk): the bank stays up, as a real one does."""
    while True:
        try:
            written = simulator.step(clock_us())
        except Exception as error:
            log.error("bank_step_failed", error=str(error), kind=type(error).__name__)
        else:
            if written and on_files is not None:
                on_files(written)
        if stop.wait(every_s):
            return


# --- helpers -----------------------------------------------------------------------------


def _compact(account: str) -> str:
    return "".join(account.split()).upper()


def _stamp(at_us: int) -> str:
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=at_us)
    return moment.strftime("%Y%m%dT%H%M%S")


def _event_order(event: Mapping[str, Any]) -> tuple[int, int]:
    return int(event["due_us"]), int(event["seq"])


def _message_id_of(data: bytes, name: str) -> str:
    """The MsgId of a pain.001 that fails its schema, if it can be read at all, else the
    file's name as far as it fits: what the rejection names as the original message."""
    try:
        document, _ = read_document(data, name, messages=pain001.VERSIONS)
        found = document.text_of("CstmrCdtTrfInitn/GrpHdr/MsgId")
    except FundpoolError:
        found = None
    if found and len(found) <= ID_CHARS_MAX and found.isprintable() and found == found.strip():
        return found
    return Path(name).stem[:ID_CHARS_MAX].strip() or "NOTPROVIDED"


def _line_doc(line: StatementLine) -> dict[str, Any]:
    doc = dataclasses.asdict(line)
    doc["kind"] = line.kind.value
    doc["status"] = line.status.value
    doc["parts"] = list(line.parts)
    return doc


def _line_of(doc: Mapping[str, Any]) -> StatementLine:
    values = dict(doc)
    values["kind"] = LineKind(values["kind"])
    values["status"] = LineStatus(values["status"])
    values["parts"] = tuple(values["parts"])
    return StatementLine(**values)


def _planted_doc(planted: Planted) -> dict[str, Any]:
    doc = dataclasses.asdict(planted)
    doc["kind"] = planted.kind.value
    return doc


def _planted_of(doc: Mapping[str, Any]) -> Planted:
    values = dict(doc)
    values["kind"] = PlantedKind(values["kind"])
    return Planted(**values)
