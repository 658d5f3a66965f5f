"""The desk's schedule: where a pool is led (beside its payment engine), every
`sweep_every_s` of the treasury file the desk accrues and draws or repays its credit lines,
runs its sweep rules, and marks the plans and sweep runs whose payments have all ended. Its
actions are the desk's (`DESK`), so the payments it creates are initiated by the desk and
approved, where the approval rules ask for it, by a person.

A pass that fails (a store hiccup, a rail's rate source down) is logged and the next one runs
as usual: each step is safe to repeat (compare-and-set on the desk's objects, idempotency
keys on its ledger entries and payments).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import structlog

from fundpool.core.actor import Actor
from fundpool.desk.service import Desk

DESK = Actor("engine", "treasury-desk", "treasury desk", ("engine",))
STOP_WAIT_S = 10.0

log = structlog.get_logger(__name__)


class DeskRunner:
    def __init__(self, desk: Desk, *, every_s: float | None = None,
                 on_pass: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.desk = desk
        self.every_s = float(every_s if every_s is not None else desk.treasury.sweep_every_s)
        self.on_pass = on_pass
        self.passes = 0
        self.failed = 0
        self.last: dict[str, Any] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> dict[str, Any]:
        liquidity = self.desk.liquidity
        report = {"credit": liquidity.run_credit(actor=DESK),
                  "sweeps": liquidity.run_sweeps(actor=DESK),
                  "plans": [p.state for p in liquidity.plans(limit=20)]}
        self.passes += 1
        self.last = report
        if self.on_pass is not None:
            self.on_pass(report)
        return report

    def start(self) -> DeskRunner:
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name=f"fundpool-desk-{self.desk.pool.id}")
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            try:
                self.run_once()
            except Exception as error:  # a bad pass never stops the next
                self.failed += 1
                log.error("desk_pass_failed", pool=self.desk.pool.id, error=str(error))

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=STOP_WAIT_S)
