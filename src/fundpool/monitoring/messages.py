"""What a bus hands the projector and what it gets back: an `Item` (an event, or a `Skipped`
one whose place in its pool's sequence is known) read from a wire message by `read_message`,
and the `ApplyReport` of applying a batch of them. A bus (`fundpool.bus`) speaks only this, through
`ports.ProjectionApplier`; `projector.Projector` is what applies them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fundpool.core.errors import FundpoolError
from fundpool.events.model import (
    POOL_PATTERN,
    Event,
    InvalidEvent,
    UnknownEventType,
    UnknownEventVersion,
    decode,
    loads,
)


@dataclass(frozen=True, slots=True)
class Skipped:
    """An event that takes its place in a pool's sequence without changing any figure."""

    pool: str
    seq: int
    event_id: str | None
    error: FundpoolError


Item = Event | Skipped


@dataclass(slots=True)
class ApplyReport:
    applied: int = 0
    duplicates: int = 0
    ignored: int = 0  # unknown types stepped over
    rejected: int = 0  # malformed events stepped over
    held: list[Item] = field(default_factory=list)  # after a gap, or in a blocked pool
    unplaced: list[str] = field(default_factory=list)  # unreadable: no pool or seq to place
    blocked: dict[str, str] = field(default_factory=dict)  # pool -> why it stopped

    def merge(self, other: ApplyReport) -> None:
        self.applied += other.applied
        self.duplicates += other.duplicates
        self.ignored += other.ignored
        self.rejected += other.rejected
        self.held.extend(other.held)
        self.unplaced.extend(other.unplaced)
        self.blocked.update(other.blocked)


def read_message(raw: bytes | str) -> Item | str:
    """An event from its wire form; a `Skipped` when it cannot be applied but its place in the
    sequence is known; else the reason it can be placed nowhere."""
    try:
        return decode(raw)
    except (InvalidEvent, UnknownEventType, UnknownEventVersion) as error:
        try:
            body: Any = loads(raw)
        except InvalidEvent:
            return str(error)
        if not isinstance(body, dict):
            return str(error)
        pool, seq, event_id = body.get("pool"), body.get("seq"), body.get("id")
        if not isinstance(pool, str) or POOL_PATTERN.fullmatch(pool) is None \
                or not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
            return str(error)
        if not isinstance(event_id, str) or not event_id.isprintable() or len(event_id) > 200 \
                or not _encodable(event_id):
            event_id = None
        return Skipped(pool, seq, event_id, error)


def _encodable(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True
