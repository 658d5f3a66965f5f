"""Applying events to the stored projections, each event once (docs/adr/0011).

A pool's events carry `seq` 1, 2, 3 … with no gap. The projector applies event `seq` only when
the pool's projection stands at `seq - 1`:

- `seq` at or below it: a duplicate (a redelivery, a relay that published twice): counted,
  not applied;
- above `seq + 1`: a gap; the event is held back and given back to the caller, who offers it
  again later (NATS: the message is not acknowledged and comes back);
- a malformed event whose pool and seq can be read is recorded in `projection_rejects` and
  stepped over, since it can never be applied; an unknown type is counted and stepped over
  (a newer producer's kind of event must not stop an older consumer); an unknown version of
  a known type stops that pool (`blocked`) until the consumer is upgraded, since skipping it
  would lose figures silently.

The figures an apply changed and the cursors are committed in one store transaction, so a
consumer killed at any moment resumes with neither a lost nor a double-counted event.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace

from fundpool.events.model import Event, UnknownEventType, UnknownEventVersion
from fundpool.monitoring.messages import ApplyReport, Item, read_message
from fundpool.monitoring.ports import ProjectionStore
from fundpool.monitoring.projection import Projection
from fundpool.monitoring.records import Cursor, ProjectionWrite, Reject

FEED_CURSOR = "~outbox"  # the in-process feed's position in the outbox (no pool starts with ~)


class Projector:
    """Folds events into the projections kept in `store`, one pool at a time, in order."""

    def __init__(self, store: ProjectionStore) -> None:
        self.store = store
        self._projections: dict[str, Projection] = {}
        self._cursors: dict[str, Cursor] = {}

    def projection(self, pool: str) -> Projection:
        projection = self._projections.get(pool)
        if projection is None:
            cursor = self.store.cursor(pool)
            projection = Projection.loaded(
                pool, self.store.cells(pool), self.store.series(pool), cursor.seq, cursor.at_us
            )
            self._projections[pool] = projection
            self._cursors[pool] = cursor
        return projection

    def cursor(self, pool: str) -> Cursor:
        self.projection(pool)
        return self._cursors[pool]

    def forget(self) -> None:
        """Drop what is held in memory (it is read again from the store when next needed)."""
        self._projections.clear()
        self._cursors.clear()

    def apply_raw(self, messages: Sequence[bytes | str], *, pos: int | None = None
                  ) -> ApplyReport:
        items: list[Item] = []
        unplaced: list[str] = []
        for raw in messages:
            read = read_message(raw)
            if isinstance(read, str):
                unplaced.append(read)
            else:
                items.append(read)
        report = self.apply(items, pos=pos)
        report.unplaced.extend(unplaced)
        return report

    def apply(self, items: Iterable[Item], *, pos: int | None = None) -> ApplyReport:
        """Apply what can be applied now, commit it, and report the rest. `pos` is the outbox
        position these items reach, recorded for the in-process feed."""
        report = ApplyReport()
        by_pool: dict[str, list[Item]] = {}
        for item in items:
            by_pool.setdefault(item.pool, []).append(item)
        writes: list[ProjectionWrite] = []
        for pool in sorted(by_pool):
            writes.append(self._apply_pool(pool, by_pool[pool], report))
        try:
            if pos is not None:
                feed = self.store.cursor(FEED_CURSOR)
                writes.append(ProjectionWrite(replace(feed, pos=pos), (), (), {}))
            self.store.commit(writes)
        except BaseException:
            self.forget()  # memory ran ahead of the store: read it again
            raise
        for pool in by_pool:
            self._projections[pool].clear_changes()
        return report

    def _apply_pool(self, pool: str, items: list[Item], report: ApplyReport) -> ProjectionWrite:
        projection = self.projection(pool)
        cursor = self._cursors[pool]
        duplicates, ignored, rejected = cursor.duplicates, cursor.ignored, cursor.rejected
        rejects: list[Reject] = []
        waiting = sorted(items, key=lambda item: item.seq)
        blocked: str | None = None
        for item in waiting:
            seq = projection.applied_seq
            if item.seq <= seq:
                duplicates += 1
                report.duplicates += 1
            elif item.seq > seq + 1 or blocked is not None:
                report.held.append(item)
            elif isinstance(item, Event):
                projection.fold_in(item)
                report.applied += 1
            elif isinstance(item.error, UnknownEventVersion):
                blocked = str(item.error)
                report.blocked[pool] = blocked
                report.held.append(item)
            else:
                projection.applied_seq = item.seq
                if isinstance(item.error, UnknownEventType):
                    ignored += 1
                    report.ignored += 1
                else:
                    rejected += 1
                    report.rejected += 1
                    rejects.append(Reject(pool, item.seq, item.event_id, item.error.code,
                                          item.error.detail))
        projection.prune()  # settles what was folded in, first
        cursor = Cursor(pool, projection.applied_seq, projection.last_at_us, cursor.pos,
                        duplicates, ignored, rejected)
        self._cursors[pool] = cursor
        return ProjectionWrite(
            cursor,
            [(name, key, projection.cells[(name, key)]) for name, key in
             sorted(projection.changed_cells)],
            [(*key, projection.series[key]) for key in sorted(projection.changed_series)],
            # The store holds no bucket that memory did not (it is loaded from the store and
            # written back): where memory dropped none, there is none to drop.
            {res: before for res, before in projection.prune_bounds().items()
             if res in projection.pruned},
            rejects,
        )
