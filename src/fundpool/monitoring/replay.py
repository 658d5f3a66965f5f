"""Replay: the pool and its projections as they stood at any past instant, and a past window
of events played again at a chosen speed.

`replay_at` rebuilds twice and compares: the pool view from the journal (every balance as of
the last entry at or before the instant) and the projection folded from the event log (the
outbox) up to the same instant. They must agree; if they do not, the event log is incomplete
or out of order, or the fold is wrong, and `agrees` says so.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from fundpool.core.errors import FundpoolError
from fundpool.events.model import Event
from fundpool.ledger.ports import LedgerStore
from fundpool.ledger.service import seq_at
from fundpool.monitoring.figures import PoolFigures, pool_figures
from fundpool.monitoring.ports import OutboxReader
from fundpool.monitoring.projection import Projection, fold
from fundpool.pool.config import FundpoolConfig, PoolConfig
from fundpool.pool.view import PoolView, pool_view_at

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class InvalidInstant(FundpoolError):
    code = "invalid_instant"
    title = "the instant is not an ISO 8601 date-time with a time zone"


def parse_instant(text: str) -> int:
    """µs since the epoch of an ISO 8601 instant with its zone (`2026-11-24T10:00:00Z`)."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError as error:
        raise InvalidInstant(instant=text, reason=str(error)) from None
    if moment.tzinfo is None:
        raise InvalidInstant("give the time zone (Z for UTC): fundpool keeps time in UTC",
                             instant=text)
    delta = moment - EPOCH  # exact: no float on the way
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


@dataclass(frozen=True, slots=True)
class Replay:
    pool: str
    at_us: int
    journal_seq: int  # the last journal entry at or before the instant
    events: int  # events of the pool applied from the event log
    journal_view: PoolView
    projection: Projection
    figures: PoolFigures

    @property
    def agrees(self) -> bool:
        """The projection's balances give the same pool view as the journal's."""
        ours, theirs = self.figures.view, self.journal_view
        return ours.reporting_total == theirs.reporting_total and all(
            a.by_channel == b.by_channel for a, b in zip(ours.assets, theirs.assets, strict=True)
        )


def replay_at(
    store: LedgerStore, outbox: OutboxReader, config: FundpoolConfig, pool: PoolConfig,
    at_us: int,
) -> Replay:
    seq = seq_at(store, at_us)
    rates = config.rates_for(pool)
    journal_view = pool_view_at(store, config, pool, rates, seq)
    projection = fold(pool.id, outbox.pool_events(pool.id, until_us=at_us))
    figures = pool_figures(config, pool, rates, projection.cells, projection.series,
                           at_us=at_us)
    return Replay(pool.id, at_us, seq, projection.applied_seq, journal_view, projection,
                  figures)


def replay_window(
    outbox: OutboxReader,
    pool: str,
    *,
    since_us: int,
    until_us: int,
    speed: float,
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
) -> Iterator[Event]:
    """The pool's events from `since_us` to `until_us`, each given when its moment comes on a
    clock running `speed` times faster than the wall (`speed` ≤ 0: as fast as possible)."""
    started = monotonic()
    for event in outbox.pool_events(pool, since_us=since_us, until_us=until_us):
        if speed > 0:
            due = (event.at_us - since_us) / 1_000_000 / speed
            wait = due - (monotonic() - started)
            if wait > 0:
                sleep(wait)
        yield event
