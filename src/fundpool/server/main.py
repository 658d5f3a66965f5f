"""One worker's server: `worker_app()` puts together the app from what the composition root
built (`fundpool.compose.build_app`, the uvicorn factory `fundpool serve` runs in each worker),
with the process's logging and its share of the live figures.

    uvicorn --factory fundpool.compose:build_app      # what `fundpool serve` runs

Each worker opens its own connections. With several workers on PostgreSQL, one of them leads:
it holds a lease (a session advisory lock, which the composition root opens), applies the
outbox to the projections, evaluates the alert rules and prunes old kept answers; the others
re-read the projections the leader writes. When the leader dies, its connection closes, the
lock is free, and another worker takes over within a second.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import structlog
from fastapi import FastAPI

from fundpool.monitoring.feed import Follower
from fundpool.monitoring.service import Monitor
from fundpool.runtime import SystemClock
from fundpool.server.alerting import alert_source, kpi_source
from fundpool.server.app import Service, create_app
from fundpool.server.metrics import MetricSource
from fundpool.server.settings import Settings
from fundpool.server.v1.context import Api
from fundpool.server.v1.idempotency import KeptAnswers

if TYPE_CHECKING:
    from fundpool.monitoring.alerting.engine import AlertEngine
    from fundpool.monitoring.alerting.reload import AlertRules

LEADER_POLL_S = 1.0
PRUNE_EVERY_S = 3_600.0
AUDIT_SYNC_S = 1.0  # the leader appends what the sources recorded, every second
REFRESH_S = 1.0


class AuditLog(Protocol):
    """What the leader keeps going of the audit log (fundpool.audit.service.AuditService)."""

    def sync(self) -> object: ...

    def checkpoint(self) -> object: ...


class AuditKeeper:
    """Syncs the audit log every `AUDIT_SYNC_S` and signs a checkpoint every `checkpoint_s`
    (the setting `audit_checkpoint_s`) when it grew (`checkpoint` signs none otherwise)."""

    def __init__(self, audit: Callable[[], AuditLog], checkpoint_s: float) -> None:
        self._audit = audit
        self._checkpoint_s = checkpoint_s
        self._signed_at = time.monotonic()

    def step(self) -> None:
        audit = self._audit()
        audit.sync()
        if time.monotonic() - self._signed_at >= self._checkpoint_s:
            audit.checkpoint()
            self._signed_at = time.monotonic()


class Lease(Protocol):
    """A lease one worker holds among several (the composition root opens an advisory lock)."""

    def try_take(self) -> bool:
        """Take it if nobody holds it; True while this worker does. A lost connection
        raises."""
        ...

    def close(self) -> None: ...


def configure_logging(settings: Settings) -> None:
    """structlog for the server: JSON lines or text, request ids bound per request, and
    tracebacks without local variables (a frame may hold a store URL with its password)."""
    level = getattr(logging, settings.log_level.upper())
    renderer: Any = structlog.processors.JSONRenderer() if settings.log_json else \
        structlog.dev.ConsoleRenderer(exception_formatter=structlog.dev.plain_traceback)
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if settings.log_json:
        processors.append(structlog.processors.dict_tracebacks)
    structlog.configure(
        processors=[*processors, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        # Not cached: a process that builds an app (a test, an embedding) keeps the right to
        # configure structlog again, and its loggers follow.
        cache_logger_on_first_use=False,
    )


DELAY_TICK_S = 1.0  # how often the leader looks for approval delay windows that have ended


class DelayTicker(Protocol):
    """Approves the payments whose approval delay window has ended (ApprovalService)."""

    def tick(self, pool: str | None = None) -> int: ...


class Leadership:
    """Who keeps the live figures: the worker holding the lease `open_lease` opens
    (PostgreSQL), or this one alone (SQLite: one worker)."""

    def __init__(self, monitor: Monitor, settings: Settings, open_lease: Callable[[], Lease],
                 engine: Any = None, idempotency: KeptAnswers | None = None,
                 audit: Callable[[], AuditLog] | None = None,
                 approvals: Callable[[], DelayTicker] | None = None) -> None:
        self.monitor = monitor
        self.approvals = approvals  # the leader approves payments whose delay window ended
        self._delays: Follower | None = None
        self.settings = settings
        self.open_lease = open_lease
        self.engine = engine
        self.idempotency = idempotency  # the leader prunes its old answers, hourly
        self._pruner: Follower | None = None
        self.audit = audit  # the leader syncs and checkpoints the audit log
        self._auditor: Follower | None = None
        self.leading = False
        self._lease: Lease | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if not self.settings.postgres:
            self._lead()
            return
        self._thread = threading.Thread(target=self._run, name="fundpool-leadership",
                                        daemon=True)
        self._thread.start()

    def _lead(self) -> None:
        self.leading = True
        self.monitor.follow()
        if self.idempotency is not None:
            retention_us = self.settings.idempotency_retention_s * 1_000_000
            clock = SystemClock()
            kept = self.idempotency
            self._pruner = Follower(lambda: kept.prune(clock.now_us() - retention_us),
                                    interval_s=PRUNE_EVERY_S,
                                    name="fundpool-idempotency-prune").start()
        if self.engine is not None:
            self.engine.follow(interval_s=self.settings.evaluate_every_s)
        if self.audit is not None:
            self._auditor = Follower(AuditKeeper(self.audit, self.settings.audit_checkpoint_s).step,
                                     interval_s=AUDIT_SYNC_S,
                                     name="fundpool-audit").start()
        if self.approvals is not None:
            approvals = self.approvals
            self._delays = Follower(lambda: approvals().tick(), interval_s=DELAY_TICK_S,
                                    name="fundpool-approval-delays").start()

    def _run(self) -> None:
        log = structlog.get_logger("fundpool.leadership")
        while not self._stop.is_set():
            try:
                if self._lease is None:
                    self._lease = self.open_lease()
                if self._lease.try_take():
                    log.info("leading", pid=threading.get_native_id())
                    self._lead()
                    return  # held until this worker's connection closes
                self.monitor.refresh()
            except Exception as error:
                log.warning("leadership_check_failed", error=str(error))
                if self._lease is not None:
                    self._lease.close()
                self._lease = None
            self._stop.wait(LEADER_POLL_S)

    def stop(self) -> None:
        self._stop.set()
        if self._pruner is not None:
            self._pruner.stop()
        if self._auditor is not None:
            self._auditor.stop()
        if self._delays is not None:
            self._delays.stop()
        if self.leading:
            self.monitor.stop()
            if self.engine is not None:
                self.engine.stop()
        if self._lease is not None:
            self._lease.close()


def worker_app(
    settings: Settings,
    monitor: Monitor,
    api: Api,
    *,
    open_lease: Callable[[], Lease],
    rules: AlertRules | None = None,
    engine: AlertEngine | None = None,
    services: Sequence[Service] = (),
) -> FastAPI:
    """One worker's app around `monitor` and `api`: the KPI families (and, with the alert
    `engine` on its `rules`, the alert families), the leadership of the live figures (on
    PostgreSQL, by the lease `open_lease` opens), and `services` run beside the app from its
    start-up to its shut-down."""
    sources: list[MetricSource] = [kpi_source(rules)]
    if engine is not None:
        sources.append(alert_source(engine))
    leadership = Leadership(monitor, settings, open_lease, engine, api.idempotency,
                            audit=(lambda: api.audit) if api.new_audit is not None else None,
                            approvals=(lambda: api.approvals) if api.new_approvals is not None
                            else None)
    app = create_app(monitor, driver_errors=api.driver_errors, follow=False,
                     ready_lag_max_events=settings.ready_lag_max_events,
                     metric_sources=sources, api=api, services=[leadership, *services])
    app.state.leadership = leadership
    app.state.alerts = engine
    return app
