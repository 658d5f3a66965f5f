"""The payment engine: one pool's dispatcher, run continuously as a service of the server.

Whatever creates a payment (the API, the console, a CSV file, the CLI, the simulator) only
creates it: the payment service checks the request and records it `initiated`, with its actor.
The engine does the rest, with no further call from anyone:

    every pass (at most every `interval_s`, at once when woken):
      take up   `initiated` payments, `screened` ones released from a hold, and routed ones
                not yet approved: screen, route, approve or ask an approver, queue
                (Dispatcher.take_up)
      tick      poll the rails, apply their outcomes, fail over, send the batches that are due
                (Dispatcher.tick); payments an approver approved are found by its rescan

On start it resumes whatever was in flight, as the store has it: approved payments are queued
again, and each payment in transit is asked of its rail (Dispatcher.resume), which either still
has it (its outcomes come as they would have) or never got it (the process died between the
commit and the send), and then it is sent now. So a restart never sends a payment twice, and
never forgets one.

One engine runs per pool: in the single process on SQLite, or on the worker holding the pool's
lease on PostgreSQL (server/engines.py). Its steps are recorded as the engine's (`ENGINE`).
A failed pass is logged and retried after `retry_s`; the dispatcher then rebuilds its queues
from the store.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import structlog

from fundpool.core.errors import FundpoolError
from fundpool.payments.dispatch import Dispatcher, TickReport

INTERVAL_S = 0.05  # between passes when nothing wakes the engine
RETRY_S = 1.0  # after a failed pass
STOP_WAIT_S = 10.0

log = structlog.get_logger(__name__)


@dataclass(slots=True)
class EngineStats:
    """What the engine has done since it started (for /metrics, the console and tests)."""

    started_at_s: float = field(default_factory=time.time)
    passes: int = 0
    taken_up: int = 0
    failed_passes: int = 0
    last_error: str | None = None
    last_pass_at_s: float | None = None
    resumed: int = 0  # payments in transit its rails were asked about at start
    resent: int = 0  # of those, sent now: their rail never got them
    last_tick: TickReport | None = None


class PaymentEngine:
    """Runs `dispatcher` in a thread of its own until stopped. `lock` is held for every pass
    and for what others do with the same dispatcher in this process (`exclusive`)."""

    def __init__(self, pool: str, dispatcher: Dispatcher, *, interval_s: float = INTERVAL_S,
                 retry_s: float = RETRY_S, forgetful: frozenset[str] = frozenset()) -> None:
        self.pool = pool
        self.dispatcher = dispatcher
        self.forgetful = forgetful  # rails that start with no memory: nothing resent on them
        self.interval_s = interval_s
        self.retry_s = retry_s
        self.stats = EngineStats()
        self._lock = threading.RLock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._resumed = False
        self._woken = False

    # --- the service ------------------------------------------------------------------------

    def start(self) -> PaymentEngine:
        self._thread = threading.Thread(target=self._run, name=f"fundpool-engine-{self.pool}",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop passing, write what the last sends returned, and let go of the rails (their
        journals' locks: the next engine of the pool may open them). Bounded: a pass stuck in
        a rail call does not hold the stop up past STOP_WAIT_S."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=STOP_WAIT_S)
        if self._lock.acquire(timeout=STOP_WAIT_S):
            try:
                self.dispatcher.flush_records()
            except Exception as error:  # the store may be gone at shut-down
                log.warning("engine_flush_failed", pool=self.pool, error=str(error))
            finally:
                self._lock.release()
        else:
            log.error("engine_stop_timed_out", pool=self.pool, wait_s=STOP_WAIT_S)
        self.dispatcher.close()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wake(self) -> None:
        """Something was created, approved or uploaded: run a pass now rather than at the
        next interval, and look for approved payments in it."""
        self._woken = True
        self._wake.set()

    def exclusive(self) -> threading.RLock:
        """The engine's lock, for a caller in this process that uses its dispatcher."""
        return self._lock

    # --- one pass ---------------------------------------------------------------------------

    def run_once(self) -> TickReport:
        """Resume (on the first pass), take up what waits, and tick: one pass, now."""
        with self._lock:
            if not self._resumed:
                resumed, resent = self.dispatcher.resume(forgetful=self.forgetful)
                self.stats.resumed += resumed
                self.stats.resent += resent
                self._resumed = True
                if resumed:
                    log.info("engine_resumed", pool=self.pool, in_transit=resumed,
                             sent_now=resent)
            if self._woken:
                self._woken = False
                self.dispatcher.rescan_soon()
            taken: Sequence[object] = self.dispatcher.take_up()
            tick = self.dispatcher.tick()
        self.stats.passes += 1
        self.stats.taken_up += len(taken)
        self.stats.last_pass_at_s = time.time()
        self.stats.last_tick = tick
        return tick

    def _run(self) -> None:
        log.info("engine_started", pool=self.pool)
        while not self._stop.is_set():
            self._wake.clear()
            try:
                self.run_once()
            except (FundpoolError, OSError, Exception) as error:  # a store hiccup: go on
                self.stats.failed_passes += 1
                self.stats.last_error = f"{type(error).__name__}: {error}"
                log.exception("engine_pass_failed", pool=self.pool)
                self._stop.wait(self.retry_s)
                continue
            self._wake.wait(self.interval_s)
        log.info("engine_stopped", pool=self.pool)
