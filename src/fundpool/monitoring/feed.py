"""The in-process bus: the outbox read in order and applied to the projections.

It is the default when no NATS server is configured: one process both writes the ledger and
keeps its projections. `Follower` runs a feed in a background thread, waking every
`interval_s` (the console's "within a second" needs far less than that).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import structlog

from fundpool.core.errors import FundpoolError
from fundpool.events.model import Event, InvalidEvent
from fundpool.monitoring.messages import ApplyReport, Item, Skipped
from fundpool.monitoring.ports import OUTBOX_READ_MAX, OutboxReader
from fundpool.monitoring.projector import FEED_CURSOR, Projector

log = structlog.get_logger(__name__)


def item_from_row(row: Sequence[Any], decode: Callable[[Sequence[Any]], Event]) -> Item:
    """The event of an outbox row (`decode`: the reader's `OutboxReader.decode`), or a
    `Skipped` in its place when it cannot be read."""
    try:
        return decode(row)
    except FundpoolError as error:
        return Skipped(row[1], int(row[2]), row[3], error)
    except ValueError as error:  # the stored data is not JSON
        return Skipped(row[1], int(row[2]), row[3], InvalidEvent(reason=str(error)))


class OutboxFeed:
    def __init__(self, outbox: OutboxReader, projector: Projector,
                 *, batch: int = OUTBOX_READ_MAX) -> None:
        self.outbox = outbox
        self.projector = projector
        self.batch = batch
        self._pos: int | None = None  # the stored position, read once, then kept

    def position(self) -> int:
        """The outbox position the projections have reached (committed with them)."""
        if self._pos is None:
            self._pos = self.projector.store.cursor(FEED_CURSOR).pos
        return self._pos

    def forget(self) -> None:
        """Read the position from the store again next time (after a reset)."""
        self._pos = None

    def run_once(self) -> ApplyReport:
        """Apply the next batch of the outbox; an empty report when there is none."""
        rows = self.outbox.raw_after(self.position(), self.batch)
        if not rows:
            return ApplyReport()
        items = [item_from_row(row, self.outbox.decode) for row in rows]
        position = {id(item): int(row[0]) for item, row in zip(items, rows, strict=True)}
        reached = int(rows[-1][0])
        try:
            report = self.projector.apply(items, pos=reached)
            self._pos = reached
            # Held events (a pool ahead of its projection, or blocked) are read again next.
            if report.held:
                first_held = min(position[id(item)] for item in report.held)
                self.projector.apply([], pos=first_held - 1)
                self._pos = first_held - 1
        except BaseException:
            self._pos = None  # whatever the store holds now is the truth
            raise
        return report

    def catch_up(self, *, max_batches: int | None = None,
                 lock: AbstractContextManager[object] | None = None) -> ApplyReport:
        """Apply until the outbox has nothing more (or `max_batches`), or until a batch moves
        nothing forward (every event left is held: after a gap, or in a blocked pool). With
        `lock`, each batch runs under it, so readers wait for one batch at most."""
        total = ApplyReport()
        batches = 0
        while max_batches is None or batches < max_batches:
            with lock or nullcontext():
                before = self.position()
                report = self.run_once()
                moved = self.position() != before or report.applied > 0
            batches += 1
            total.merge(report)
            if not moved:
                return total
        return total


class Follower:
    """Runs `step` every `interval_s` in a daemon thread until `stop()`; errors are logged and
    the loop goes on (a database restart must not end monitoring)."""

    def __init__(self, step: Callable[[], object], *, interval_s: float = 0.05,
                 name: str = "fundpool-follower") -> None:
        self._step = step
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.errors = 0

    def start(self) -> Follower:
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout_s)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self._step()
            except Exception:  # a follower outlives a failed step; the next one tries again
                self.errors += 1
                log.exception("follower_step_failed")
            self._stop.wait(max(0.0, self._interval_s - (time.monotonic() - started)))
