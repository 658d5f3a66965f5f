"""The traffic simulator as a service of the server: a live demo pool (`fundpool serve
--simulate 50/s`, what `make demo` runs).

It runs `Simulation` (sim/traffic.py) in a thread of its own on the server's store, on the
wall clock (rails live at their real speed: instant credit and chains settle in seconds, a
wire in hours, a card at T+2), until the server stops. It only creates its payments
(`EngineFlow`); the pool's payment engine carries them as it carries the API's, so everything
it does shows in the API and the console like any other traffic. The composition root
builds it (`compose.engine_traffic`): it hands over how to start a run, this service runs it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Protocol

import structlog

from fundpool.core.actor import SIMULATED_APPROVER, SIMULATOR, Actor
from fundpool.core.clock import Clock
from fundpool.desk.liquidity import TREASURY_KEY
from fundpool.payments.dispatch import Intake, TickReport
from fundpool.payments.model import Action, Outcome, PaymentRequest, PaymentState, Step
from fundpool.payments.service import PaymentService
from fundpool.sim.approvers import SimulatedApprovers
from fundpool.sim.traffic import APPROVAL_DELAY_US, SIMULATED_PREFIX, Simulation

STEP_S = 0.1
RESTART_AFTER_S = 1.0  # a failed step (a store hiccup) is logged and the run goes on
SEED_DEFAULT = 7
APPROVALS_PER_ROUND = 500  # payouts the simulated approver looks at per step

log = structlog.get_logger(__name__)


class _Stop(Exception):
    pass


class Waker(Protocol):
    def wake(self) -> None: ...


class EngineFlow:
    """The simulator's way in when a server's payment engine runs the pool: it creates its
    payments as the API does (state `initiated`, the simulator as their actor) and wakes the
    engine, which screens, routes, approves and sends them like any other. A simulated
    approver, a second person, approves the simulator's payouts that wait for an approver
    once they have waited `approval_delay_us` (as a cashier's colleague would at the desk)."""

    def __init__(self, payments: PaymentService, engine: Waker, clock: Clock, *,
                 approval_delay_us: int = APPROVAL_DELAY_US,
                 approvers: SimulatedApprovers | None = None) -> None:
        self._approvers = approvers  # signing through the approvals service (None: unsigned)
        self._payments = payments
        self._engine = engine
        self._clock = clock
        self._delay_us = approval_delay_us

    def intake(self, requests: Sequence[tuple[PaymentRequest, str | None]], *,
               actor: Actor | None = None) -> list[Intake]:
        with self._payments.session(actor=actor or SIMULATOR) as session:
            outcomes = session.create(requests)
        self._engine.wake()
        return [Intake(outcome) for outcome in outcomes]

    def approve(self, payment_ids: Sequence[str], *, actor: Actor | None = None
                ) -> list[Outcome]:
        if self._approvers is not None:
            # Signed, as any approver's: the outcomes are the payments whose approval is
            # complete (the others still wait for a person).
            done = self._approvers.approve(payment_ids)
            self._engine.wake()
            return [self._payments.get(pid) for pid in done]
        with self._payments.session(actor=actor or SIMULATED_APPROVER) as session:
            outcomes = session.act([Step(pid, Action.APPROVE) for pid in payment_ids])
        self._engine.wake()
        return outcomes

    def tick(self) -> TickReport:
        """The simulated approver's round: the engine ticks by itself."""
        now = self._clock.now_us()
        waiting = self._payments.list(state=PaymentState.PENDING_APPROVAL,
                                      limit=APPROVALS_PER_ROUND)
        # The simulator's own, and the treasury desk's sweeps and plans (the demo's treasury
        # leads approve those: a person, never the engine or the desk itself).
        due = [p.id for p in waiting
               if ((p.reference or "").startswith(SIMULATED_PREFIX) or TREASURY_KEY in p.metadata)
               and now - p.updated_at_us >= self._delay_us]
        if due:
            self.approve(due)
        return TickReport(at_us=now)

    def flush_records(self) -> None:
        return None


class TrafficService:
    """Runs the simulation `open_simulation()` makes (in the service's thread, when it starts)
    at `rate_per_s` payments a wall second, until stopped."""

    def __init__(self, open_simulation: Callable[[], Simulation], *, rate_per_s: float) -> None:
        self._open_simulation = open_simulation
        self.rate_per_s = rate_per_s
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
        simulation = self._open_simulation()
        simulation.open_pool()
        log.info("simulator_started", pool=simulation.pool.id, rate_per_s=self.rate_per_s)

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
        log.info("simulator_stopped", pool=simulation.pool.id)
