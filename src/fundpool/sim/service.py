"""The traffic simulator as a service of the server: a live demo pool (`fundpool serve
--simulate 50/s`, what `make demo` runs).

It runs `Simulation` (sim/traffic.py) in a thread of its own on the server's store, on the
wall clock (rails live at their real speed: instant credit and chains settle in seconds, a
wire in hours, a card at T+2), until the server stops. Its payments go through the same
ledger and payment services as the API's, so everything it does shows in the API and the
console like any other traffic.
"""

from __future__ import annotations

import threading
import time

import structlog

from fundpool.core.clock import Uuid7Ids
from fundpool.ledger.ports import LedgerStore
from fundpool.ledger.service import Ledger
from fundpool.pool.config import FundpoolConfig, PoolConfig
from fundpool.runtime import SystemClock
from fundpool.sim.traffic import Simulation

STEP_S = 0.1
RESTART_AFTER_S = 1.0  # a failed step (a store hiccup) is logged and the run goes on
SEED_DEFAULT = 7

log = structlog.get_logger(__name__)


class _Stop(Exception):
    pass


class TrafficService:
    def __init__(self, store: LedgerStore, config: FundpoolConfig, pool: PoolConfig, *,
                 rate_per_s: float, seed: int = SEED_DEFAULT) -> None:
        self.store = store
        self.config = config
        self.pool = pool
        self.rate_per_s = rate_per_s
        self.seed = seed
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.created = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="fundpool-simulator",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        clock = SystemClock()
        # A seed per start: a restarted server's payments never meet the previous run's keys.
        ids = Uuid7Ids.seeded(self.seed + clock.now_us())
        simulation = Simulation(Ledger(self.store, clock, ids), self.config, self.pool,
                                seed=self.seed, clock=clock, ids=ids)
        simulation.open_pool()
        log.info("simulator_started", pool=self.pool.id, rate_per_s=self.rate_per_s)

        def on_step(_: object) -> None:
            if self._stop.is_set():
                raise _Stop

        while not self._stop.is_set():
            try:
                simulation.run(rate_per_s=self.rate_per_s, duration_s=3_600.0, step_s=STEP_S,
                               on_step=on_step)
            except _Stop:
                break
            except Exception:
                log.exception("simulator_step_failed")
                time.sleep(RESTART_AFTER_S)
        simulation.dispatcher.flush_records()
        log.info("simulator_stopped", pool=self.pool.id)
