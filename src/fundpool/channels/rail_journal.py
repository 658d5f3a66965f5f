"""A rail journal: what a simulated rail was sent and what it has reported, on disk, so that
the rail outlives the process that drives it, as a real rail (a bank, a chain) does.

A real rail is an outside party: when the server that sends it payments is killed, the bank
still has them, settles them, and reports them to whoever asks next; and it refuses a payment
id it already holds. A `SimulatedRail` given a journal (channels/simulated.py) behaves the same
way: the journal is one append-only file of JSON lines per rail (the composition root puts it at
`<data_dir>/rails/<pool>/<channel>.jsonl`, see sim/rails.py `simulated_rails`), and a rail that
opens it again carries on where the last one stopped.

Records, one per line, each with its `type`:

- `opened` — a process opened the journal (`channel`, `instance`, `pid`): for a person
  reading the file, and so that a journal is never replayed into another channel's rail;
- `submission` — a submission the rail accepted, with everything drawn for it: its
  `rail_ref`, `at_us`, the instructions, and every outcome scheduled for them (`outcome_id`,
  `payment_id`, `rail_ref`, `index`, `kind`, `at_us`, `reason`, `details`) with the times its
  copies are due for delivery (`due_us`, two of them when chaos delivers it twice). It is
  written and fsync'd before `submit` returns: a submission the caller was told of is never
  forgotten, and one it was not told of (a crash before the line was whole) never happened;
- `acknowledged` — outcome ids the caller has taken (see `SimulatedRail`: by default a poll
  acknowledges what the polls before it delivered), batched, fsync'd. An acknowledged outcome
  is never delivered again by a later process; one delivered and not acknowledged is delivered
  again, as a bank's webhook is retried until it is answered. So every outcome is delivered at
  least once across crashes, and a duplicate keeps its `outcome_id` (the payment side drops it).

A record counts once its line is whole, newline included (one `write` per record batch). A last
line without its newline, or one that does not parse, is what a crash in the middle of a write
leaves: it is ignored, and cut off when the journal is opened for writing, so that later
records do not follow a fragment. An unreadable line before the last is `rail_journal_corrupt`.

One process at a time: the journal is held with an exclusive `fcntl.flock` while open. A second
opener (in another process, or in the same one) retries for `wait_s` (LOCK_WAIT_S by default)
and then fails with `rail_journal_locked`. The kernel releases the lock when the holder's file
descriptor closes, at once when that process dies (SIGKILL included), so a new leader that takes
over from a dead one gets the journal within one retry. The descriptor is opened close-on-exec;
a process must not fork while it holds a journal (the child would hold the lock too).

`read_journal(path)` and `journal_submissions(path)` read a journal without taking the lock
(whole lines only): what a test reads after a kill and restart to check that no rail saw a
payment twice.

The journal grows with every submission and is read whole on open; nothing compacts it yet.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from fundpool.channels.ports import Direction, Instruction, OutcomeKind
from fundpool.core.errors import FundpoolError

JOURNAL_VERSION = 1
# A leader that takes over waits for the dead one's descriptor to close (the kernel closes it
# as the process dies); a live holder after this long is a second engine, which must not run.
LOCK_WAIT_S = 10.0
LOCK_RETRY_S = 0.05
JOURNAL_BYTES_MAX = 1 << 30  # read whole on open: a journal this large wants compaction first


class RailJournalLocked(FundpoolError):
    code = "rail_journal_locked"
    title = "another rail holds this rail journal"


class RailJournalCorrupt(FundpoolError):
    code = "rail_journal_corrupt"
    title = "the rail journal has an unreadable record before its last line"


class RailJournalMismatch(FundpoolError):
    code = "rail_journal_mismatch"
    title = "the rail journal belongs to another channel"


class RailJournalClosed(FundpoolError):
    code = "rail_journal_closed"
    title = "the rail journal is closed"


@dataclass(frozen=True, slots=True)
class JournalOutcome:
    """One outcome drawn for a submission, as it will be reported, and when each of its
    copies is due for delivery (delivery may be later than `at_us`: chaos)."""

    outcome_id: str
    payment_id: str
    rail_ref: str
    index: int  # the instruction's place in its submission
    kind: OutcomeKind
    at_us: int
    reason: str | None
    details: tuple[tuple[str, str], ...]
    due_us: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class OpenedRecord:
    channel: str
    instance: str | None
    pid: int


@dataclass(frozen=True, slots=True)
class SubmissionRecord:
    rail_ref: str
    at_us: int
    instructions: tuple[Instruction, ...]
    outcomes: tuple[JournalOutcome, ...]  # in the order they were queued


@dataclass(frozen=True, slots=True)
class AcknowledgedRecord:
    outcome_ids: tuple[str, ...]


JournalRecord = OpenedRecord | SubmissionRecord | AcknowledgedRecord


class SubmittedPayment(NamedTuple):
    payment_id: str
    rail_ref: str
    at_us: int


# --- the file format ---------------------------------------------------------------------------


def _encode(record: JournalRecord) -> bytes:
    body: dict[str, object]
    if isinstance(record, SubmissionRecord):
        body = {
            "type": "submission",
            "rail_ref": record.rail_ref,
            "at_us": record.at_us,
            "instructions": [
                {
                    "payment_id": i.payment_id,
                    "direction": i.direction.value,
                    "asset": i.asset,
                    "amount_minor": i.amount_minor,
                    "counterparty": i.counterparty,
                    "reference": i.reference,
                }
                for i in record.instructions
            ],
            "outcomes": [
                {
                    "outcome_id": o.outcome_id,
                    "payment_id": o.payment_id,
                    "rail_ref": o.rail_ref,
                    "index": o.index,
                    "kind": o.kind.value,
                    "at_us": o.at_us,
                    "reason": o.reason,
                    "details": dict(o.details),
                    "due_us": list(o.due_us),
                }
                for o in record.outcomes
            ],
        }
    elif isinstance(record, AcknowledgedRecord):
        body = {"type": "acknowledged", "outcome_ids": list(record.outcome_ids)}
    else:
        body = {
            "type": "opened",
            "v": JOURNAL_VERSION,
            "channel": record.channel,
            "instance": record.instance,
            "pid": record.pid,
        }
    # Amounts stay exact: JSON integers of any size (ETH's 18 decimals pass 2**53).
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8") + b"\n"


def _decode(line: bytes) -> JournalRecord:
    """One record, or ValueError/KeyError/TypeError for a line that is not one."""
    body = json.loads(line)
    kind = body["type"]
    if kind == "submission":
        return SubmissionRecord(
            rail_ref=_text(body["rail_ref"]),
            at_us=_integer(body["at_us"]),
            instructions=tuple(
                Instruction(
                    payment_id=_text(i["payment_id"]),
                    direction=Direction(i["direction"]),
                    asset=_text(i["asset"]),
                    amount_minor=_integer(i["amount_minor"]),
                    counterparty=_optional_text(i.get("counterparty")),
                    reference=_optional_text(i.get("reference")),
                )
                for i in body["instructions"]
            ),
            outcomes=tuple(
                JournalOutcome(
                    outcome_id=_text(o["outcome_id"]),
                    payment_id=_text(o["payment_id"]),
                    rail_ref=_text(o["rail_ref"]),
                    index=_integer(o["index"]),
                    kind=OutcomeKind(o["kind"]),
                    at_us=_integer(o["at_us"]),
                    reason=_optional_text(o["reason"]),
                    details=tuple((_text(k), _text(v)) for k, v in o["details"].items()),
                    due_us=tuple(_integer(d) for d in o["due_us"]),
                )
                for o in body["outcomes"]
            ),
        )
    if kind == "acknowledged":
        return AcknowledgedRecord(tuple(_text(i) for i in body["outcome_ids"]))
    if kind == "opened":
        if body["v"] != JOURNAL_VERSION:
            raise ValueError(f"journal version {body['v']!r}, this code reads {JOURNAL_VERSION}")
        return OpenedRecord(
            _text(body["channel"]), _optional_text(body["instance"]), _integer(body["pid"])
        )
    raise ValueError(f"unknown record type {kind!r}")


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {value!r}")
    return value


def _optional_text(value: object) -> str | None:
    return None if value is None else _text(value)


def _integer(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected an integer, got {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class _Parsed:
    records: tuple[JournalRecord, ...]
    whole_bytes: int  # where the records that count end: what follows is a torn tail


def _parse(data: bytes, path: Path) -> _Parsed:
    records: list[JournalRecord] = []
    start = 0
    while start < len(data):
        end = data.find(b"\n", start)
        if end < 0:
            break  # no newline: the write of this line never finished
        try:
            records.append(_decode(data[start:end]))
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            if data[end + 1 :].strip(b"\x00 \n"):
                raise RailJournalCorrupt(
                    f"{path}: line {len(records) + 1} is not a rail journal record ({error})",
                    path=str(path), line=len(records) + 1,
                ) from error
            break  # the last line: what a crash during its write (or a power cut) left
        start = end + 1
    return _Parsed(tuple(records), start)


def read_journal(path: Path) -> tuple[JournalRecord, ...]:
    """Every whole record of a journal, without taking its lock (a writer appends whole lines,
    and a torn last line is ignored). An absent journal has none."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return ()
    return _parse(data, path).records


def journal_submissions(path: Path) -> list[SubmittedPayment]:
    """Every payment the rail of this journal accepted, with its submission, in order: a
    payment id twice here is a payment the rail was sent twice (legitimately only after the
    first attempt's `failed` or `settled` was delivered)."""
    return [
        SubmittedPayment(instruction.payment_id, record.rail_ref, record.at_us)
        for record in read_journal(path)
        if isinstance(record, SubmissionRecord)
        for instruction in record.instructions
    ]


def acknowledged_outcome_ids(path: Path) -> list[str]:
    """Every acknowledged outcome id of a journal, in order (repeats included)."""
    return [
        outcome_id
        for record in read_journal(path)
        if isinstance(record, AcknowledgedRecord)
        for outcome_id in record.outcome_ids
    ]


# --- the open journal -------------------------------------------------------------------------


class RailJournal:
    """An open, locked journal: the records it held when opened, and appends that are on disk
    (fsync'd) when `append` returns."""

    def __init__(self, path: Path, fd: int, records: tuple[JournalRecord, ...], size: int):
        self._path = path
        self._fd: int | None = fd
        self._records = records
        self._size = size

    @classmethod
    def open(cls, path: Path, *, wait_s: float = LOCK_WAIT_S) -> RailJournal:
        """Open (or create) the journal at `path` and hold it; waits up to `wait_s` for
        another holder to let go, then raises `rail_journal_locked`."""
        path.parent.mkdir(parents=True, exist_ok=True)
        created = not path.exists()
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
        try:
            _lock(fd, path, wait_s)
            if created:
                _fsync_directory(path.parent)  # the file's name is durable, not only its bytes
            size = os.fstat(fd).st_size
            if size > JOURNAL_BYTES_MAX:
                raise RailJournalCorrupt(
                    f"{path}: {size} bytes, more than {JOURNAL_BYTES_MAX} read on open",
                    path=str(path), size_bytes=size, journal_bytes_max=JOURNAL_BYTES_MAX,
                )
            parsed = _parse(os.pread(fd, size, 0), path)
            if parsed.whole_bytes < size:
                os.ftruncate(fd, parsed.whole_bytes)  # cut the torn tail off before appending
                os.fsync(fd)
        except BaseException:
            os.close(fd)  # releases the lock if it was taken
            raise
        return cls(path, fd, parsed.records, parsed.whole_bytes)

    @property
    def path(self) -> Path:
        return self._path

    @property
    def records(self) -> tuple[JournalRecord, ...]:
        """What the journal held when it was opened (appends since are not added)."""
        return self._records

    @property
    def closed(self) -> bool:
        return self._fd is None

    def append(self, records: Sequence[JournalRecord]) -> None:
        """Write the records as whole lines and fsync them. If the write fails, what it wrote
        is cut off again; if even that fails, the journal is closed (its torn tail is then
        ignored by the next opener) and every later append raises."""
        fd = self._fd
        if fd is None:
            raise RailJournalClosed(f"{self._path} is closed", path=str(self._path))
        if not records:
            return
        data = b"".join(_encode(record) for record in records)
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        except BaseException:
            try:
                os.ftruncate(fd, self._size)
            except OSError:
                self.close()
            raise
        self._size += len(data)

    def close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)  # the lock goes with the descriptor

    def __del__(self) -> None:
        # A journal dropped without close would hold its lock until the process ends, and the
        # next rail of this process could never open it.
        if getattr(self, "_fd", None) is not None:
            self.close()

    def __enter__(self) -> RailJournal:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _lock(fd: int, path: Path, wait_s: float) -> None:
    # A retry loop rather than a blocking flock: a blocking one cannot be given a bound.
    deadline = time.monotonic() + wait_s
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise RailJournalLocked(
                    f"{path} is held by another rail (waited {wait_s} s)",
                    path=str(path), wait_s=wait_s,
                ) from None
            time.sleep(LOCK_RETRY_S)


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def outcomes_by_id(records: Iterable[JournalRecord]) -> Mapping[str, JournalOutcome]:
    """Every outcome scheduled in these records, by id."""
    return {
        outcome.outcome_id: outcome
        for record in records
        if isinstance(record, SubmissionRecord)
        for outcome in record.outcomes
    }
