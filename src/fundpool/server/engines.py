"""The payment engines of one worker: one per pool, run where the pool's lease is held.

On SQLite the single process runs every pool's engine. On PostgreSQL with several workers,
each worker asks, every `LEASE_POLL_S`, for each pool's lease (a session advisory lock on a
connection of its own, `fundpool.engine:<pool>`); the worker that holds it runs that pool's
engine, the others serve the API. When the holder dies its connection closes, the lock is
free, and another worker takes the pool over within a poll or two. A worker that finds its
lease's connection gone stops that pool's engine at once (another may take it now); the
commit-first rule of the dispatcher makes a moment of overlap harmless: a payment is sent only
by whoever committed its `submit`.

What runs for a pool (its engine, and the simulator of a live demo) is built by the
composition root (`open_work`); this module only decides where and when.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Protocol

import structlog

from fundpool.server.main import Lease

LEASE_POLL_S = 1.0

log = structlog.get_logger(__name__)


class PoolWork(Protocol):
    """What runs for one pool on the worker that leads it."""

    def start(self) -> object: ...

    def stop(self) -> None: ...

    def wake(self) -> None: ...


class Engines:
    """Runs `open_work(pool)` for each of `pools` here: all of them at once when
    `open_lease` is None (SQLite), else each while this worker holds `open_lease(pool)`."""

    def __init__(self, pools: Sequence[str], open_work: Callable[[str], PoolWork],
                 open_lease: Callable[[str], Lease] | None) -> None:
        self.pools = list(pools)
        self._open_work = open_work
        self._open_lease = open_lease
        self._running: dict[str, PoolWork] = {}
        self._leases: dict[str, Lease] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        if self._open_lease is None:
            for pool in self.pools:
                self._begin(pool)
            return
        self._thread = threading.Thread(target=self._run, name="fundpool-engine-leases",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=LEASE_POLL_S * 5)
        with self._lock:
            for pool in list(self._running):
                self._end(pool)
            for lease in self._leases.values():
                lease.close()
            self._leases.clear()

    def leading(self) -> list[str]:
        """The pools whose engine runs in this worker."""
        with self._lock:
            return sorted(self._running)

    def wake(self, pool: str) -> None:
        """A payment of `pool` was created or approved here: its engine, if it runs in this
        worker, takes it up now (else the leader finds it on its next pass)."""
        work = self._running.get(pool)
        if work is not None:
            work.wake()

    def _begin(self, pool: str) -> None:
        work = self._open_work(pool)
        work.start()
        self._running[pool] = work
        log.info("engine_leading", pool=pool, pid=threading.get_native_id())

    def _end(self, pool: str) -> None:
        work = self._running.pop(pool, None)
        if work is not None:
            work.stop()

    def _run(self) -> None:
        assert self._open_lease is not None
        while not self._stop.is_set():
            for pool in self.pools:
                if self._stop.is_set():
                    break
                with self._lock:
                    self._check(pool)
            self._stop.wait(LEASE_POLL_S)

    def _check(self, pool: str) -> None:
        assert self._open_lease is not None
        lease = self._leases.get(pool)
        try:
            if lease is None:
                lease = self._leases[pool] = self._open_lease(pool)
            held = lease.try_take()
        except Exception as error:
            # The lease's connection is gone, and the lease with it: someone else may lead
            # this pool now, so this worker's engine stops at once.
            log.warning("engine_lease_lost", pool=pool, error=str(error))
            self._end(pool)
            if lease is not None:
                lease.close()
            self._leases.pop(pool, None)
            return
        if held and pool not in self._running:
            try:
                self._begin(pool)
            except Exception as error:
                log.exception("engine_start_failed", pool=pool, error=str(error))
                lease.close()
                self._leases.pop(pool, None)
