"""Monitor: the projections of a store's pools kept current, and read as figures.

One object the server, the CLI and the alert engine share: it owns the projector and the
in-process feed (or only reads projections that NATS consumers keep, with `follow=False`), and
answers `figures(pool)` under a lock, since the feed applies events from a background thread.
It is handed the ledger store's outbox and the projection store (`ports.py`); the composition
root builds them (`fundpool.compose.monitor`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from fundpool.core.clock import Clock
from fundpool.ledger.ports import LedgerStore
from fundpool.monitoring.feed import Follower, OutboxFeed
from fundpool.monitoring.figures import PoolFigures, pool_figures
from fundpool.monitoring.messages import ApplyReport
from fundpool.monitoring.ports import OutboxReader, ProjectionStore
from fundpool.monitoring.projection import Projection
from fundpool.monitoring.projector import Projector
from fundpool.monitoring.records import Cursor
from fundpool.pool.config import FundpoolConfig, PoolConfig


class Monitor:
    def __init__(
        self,
        store: LedgerStore,
        config: FundpoolConfig,
        clock: Clock,
        *,
        projections: ProjectionStore,
        outbox: OutboxReader,
    ) -> None:
        self.store = store
        self.config = config
        self.clock = clock
        self.projections = projections
        self.outbox = outbox
        self.projector = Projector(self.projections)
        self.feed = OutboxFeed(self.outbox, self.projector)
        self._lock = threading.RLock()
        self._follower: Follower | None = None
        self.listeners: list[Callable[[ApplyReport], None]] = []

    def pool(self, pool_id: str | None = None) -> PoolConfig:
        if pool_id is None:
            return self.config.pools[0]
        return next(p for p in self.config.pools if p.id == pool_id)

    # --- keeping up -----------------------------------------------------------------------

    def step(self) -> ApplyReport:
        """Apply what the outbox has that the projections have not (in-process bus), a
        batch at a time: readers wait for one batch at most, never for a whole catch-up."""
        total = self.feed.catch_up(lock=self._lock)
        for listener in self.listeners:
            listener(total)
        return total

    def refresh(self) -> None:
        """Read the projections again from the store (when NATS consumers keep them)."""
        with self._lock:
            self.projector.forget()
            self.feed.forget()

    def rebuild(self) -> ApplyReport:
        """Forget the stored projections and fold the whole event log again."""
        with self._lock:
            self.projections.reset()
            self.projector.forget()
            self.feed.forget()
        return self.step()

    def follow(self, *, interval_s: float = 0.05, in_process: bool = True) -> Monitor:
        """Keep the projections current in a background thread: apply the outbox
        (`in_process`), or re-read what other consumers wrote."""
        step: Callable[[], object] = self.step if in_process else self.refresh
        self._follower = Follower(step, interval_s=interval_s, name="fundpool-monitor").start()
        return self

    def stop(self) -> None:
        if self._follower is not None:
            self._follower.stop()
            self._follower = None

    # --- reads ----------------------------------------------------------------------------

    def snapshot(self, pool_id: str) -> Projection:
        """A copy of a pool's projection, safe to read while the feed goes on."""
        return self.read(pool_id)[0]

    def read(self, pool_id: str) -> tuple[Projection, Cursor]:
        """A copy of a pool's projection and its cursor, read together."""
        with self._lock:
            live = self.projector.projection(pool_id)
            copy = Projection(pool_id, dict(live.cells), dict(live.series), live.applied_seq,
                              live.last_at_us)
            return copy, self.projector.cursor(pool_id)

    def figures(self, pool_id: str | None = None, *, at_us: int | None = None) -> PoolFigures:
        pool = self.pool(pool_id)
        projection = self.snapshot(pool.id)
        return pool_figures(
            self.config, pool, self.config.rates_for(pool), projection.cells,
            projection.series, at_us=self.clock.now_us() if at_us is None else at_us,
        )

    def lag(self, pool_id: str) -> int:
        """Events of the pool in the outbox that its projection has not applied yet."""
        head = self.outbox.head(pool_id)
        with self._lock:
            applied = self.projector.cursor(pool_id).seq
        return max(0, head - applied)
