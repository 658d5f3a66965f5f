"""What the `/v1` routes work with: one `Api` object per worker process, on `app.state.api`.

The composition root builds it (`fundpool.compose.build_app`) and fills in every adapter the
routes use, each typed by the port its package declares: the server imports no store, so a
route reaches the database only through these fields (or the services built on them).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from fastapi import Request

from fundpool.auth.ports import AuthStore
from fundpool.core.errors import FundpoolError, UnknownAsset, invariant
from fundpool.core.ledger.engine import CommandResult
from fundpool.core.ledger.model import Command, Posting
from fundpool.core.money import Asset
from fundpool.ledger.ports import LedgerStore
from fundpool.ledger.service import Ledger
from fundpool.monitoring.alerting.ports import AlertStore
from fundpool.monitoring.ports import OutboxReader
from fundpool.monitoring.service import Monitor
from fundpool.payments.ports import DispatchRecords, PaymentStore
from fundpool.payments.service import PaymentService
from fundpool.pool.config import FundpoolConfig, PoolConfig
from fundpool.runtime import SystemClock
from fundpool.server.problems import DriverErrors, store_errors
from fundpool.server.settings import Settings
from fundpool.server.v1.handoff import WriterHandOff, place_for
from fundpool.server.v1.idempotency import KeptAnswers
from fundpool.server.v1.models import PostingIn
from fundpool.server.v1.security import Authenticator, RateLimiter
from fundpool.server.v1.writer import LedgerWriter

if TYPE_CHECKING:
    from fundpool.approvals.service import ApprovalService
    from fundpool.audit.service import AuditService
    from fundpool.desk.service import Desk
    from fundpool.payments.dispatch import Dispatcher
    from fundpool.reconciliation.service import ReconService
    from fundpool.risk.service import RiskService


class UnknownPool(FundpoolError):
    code = "unknown_pool"
    title = "no such pool in the configuration"


@dataclass
class Api:
    monitor: Monitor  # the live figures, on the ledger store and its outbox
    auth: AuthStore  # API keys, users and sessions
    settings: Settings
    idempotency: KeptAnswers  # the answers kept for `Idempotency-Key`
    payment_records: PaymentStore  # the payments, beside the ledger
    dispatch_records: DispatchRecords  # the dispatcher's routes, batches and outcomes
    alert_store: AlertStore  # the alerts raised, when no alert engine runs in this worker
    driver_errors: DriverErrors  # what the stores raise when their database fails
    # The services, as the composition root builds them (compose.build_app): a ledger on the
    # store, a pool's payments, and the dispatcher a payout file is taken in with.
    new_ledger: Callable[[], Ledger]
    new_payments: Callable[[PoolConfig], PaymentService]
    new_intake: Callable[[PaymentService, PoolConfig], Dispatcher]
    # Risk control (policies, the review queue, lists, parties) on the store, its case
    # decisions moving payments through `payments(pool)`.
    new_risk: Callable[[Callable[[str], PaymentService]], RiskService]
    # Tells this worker's engine of a pool (if it runs here) that a payment waits for it.
    wake_engine: Callable[[str], None] | None = None
    # Approvals (rules, keys, signatures, delay windows), moving payments through
    # `payments(pool)` and waking the pool's engine when one is approved.
    new_approvals: Callable[[Callable[[str], PaymentService], Callable[[str], None] | None],
                            ApprovalService] | None = None
    # The audit log (its entries, checkpoints, proofs, verification, exports).
    new_audit: Callable[[], AuditService] | None = None
    # Reconciliation of a pool's statements against its books (docs/reconciliation.md).
    new_recon: Callable[[PoolConfig], ReconService] | None = None
    # The treasury desk of a pool (docs/treasury.md): its payments through `payments(pool)`,
    # waking the pool's engine when it creates some.
    new_desk: Callable[[PoolConfig, PaymentService, Callable[[], None] | None], Desk] | None = None
    clock: SystemClock = field(default_factory=SystemClock)
    _payments: dict[str, PaymentService] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _assets: dict[str, Asset] | None = None
    _recon: dict[str, ReconService] = field(default_factory=dict)
    _desks: dict[str, Desk] = field(default_factory=dict)

    @property
    def store(self) -> LedgerStore:
        return self.monitor.store

    @property
    def config(self) -> FundpoolConfig:
        return self.monitor.config

    @property
    def outbox(self) -> OutboxReader:
        """The events the ledger's transactions wrote, in commit order (the monitor's)."""
        return self.monitor.outbox

    def store_errors(self) -> AbstractContextManager[None]:
        """Around a read or write of the store: its database failing is `store_error` (503)."""
        return store_errors(self.driver_errors)

    @cached_property
    def ledger(self) -> Ledger:
        """The reads' ledger (its writes go through `writer`)."""
        return self.new_ledger()

    @cached_property
    def writer(self) -> LedgerWriter:
        """Group commit of the ledger routes' commands, on a ledger of its own."""
        return LedgerWriter(self.new_ledger(), driver_errors=self.driver_errors,
                            batch_max=max(self.settings.batch_size_max, 1_024)).start()

    @cached_property
    def handoff(self) -> WriterHandOff | None:
        """With several workers on one database, the way to the ledger's one writer among
        them (handoff.py); None with one worker, whose writer is the ledger's only one."""
        if self.settings.workers == 1 or self.settings.db_url is None:
            return None
        return WriterHandOff(self.writer, place_for(self.settings.db_url))

    async def start(self) -> None:
        """At the app's start-up, on its event loop: take part in the writers' election."""
        if self.handoff is not None:
            await self.handoff.start()

    async def stop(self) -> None:
        if self.handoff is not None:
            await self.handoff.stop()

    async def write(self, commands: Sequence[Command]) -> list[CommandResult]:
        """Commands through the group-commit writer (this worker's, or the writer worker's);
        their results once their batch has committed."""
        if self.handoff is not None:
            return await self.handoff.write(commands)
        return await self.writer.submit_async(commands)

    @cached_property
    def authenticator(self) -> Authenticator:
        return Authenticator(self.auth, driver_errors=self.driver_errors,
                             cache_s=self.settings.auth_cache_s)

    @cached_property
    def limiter(self) -> RateLimiter:
        share = self.settings.workers
        return RateLimiter(self.settings.rate_limit_per_s / share,
                           max(1, self.settings.rate_limit_burst // share))

    def assets(self, *, fresh: bool = False) -> dict[str, Asset]:
        """The ledger's assets, kept: they change rarely (`asset` asks again for a code it
        does not know, since another worker may have defined it)."""
        if self._assets is None or fresh:
            with self.store_errors():
                self._assets = {asset.code: asset for asset in self.monitor.store.assets()}
        return self._assets

    def asset(self, code: str) -> Asset:
        asset = self.assets().get(code) or self.assets(fresh=True).get(code)
        if asset is None:
            raise UnknownAsset(asset=code)
        return asset

    def posting(self, body: PostingIn) -> Posting:
        """A posting of the wire to the ledger's, its amount parsed exactly at the scale."""
        asset = self.asset(body.asset)
        return Posting(body.source, body.destination, asset.code, asset.parse(body.amount))

    def pool(self, pool_id: str | None) -> PoolConfig:
        for pool in self.config.pools:
            if pool.id == pool_id or (pool_id is None and len(self.config.pools) == 1):
                return pool
        raise UnknownPool(pool=pool_id)

    def payments(self, pool_id: str | None = None) -> PaymentService:
        pool = self.pool(pool_id)
        with self._lock:
            service = self._payments.get(pool.id)
            if service is None:
                service = self.new_payments(pool)
                self._payments[pool.id] = service
            return service

    @cached_property
    def risk(self) -> RiskService:
        return self.new_risk(self.payments)

    @cached_property
    def approvals(self) -> ApprovalService:
        invariant(self.new_approvals is not None, "the API is built with its approvals")
        assert self.new_approvals is not None
        return self.new_approvals(self.payments, self.wake_engine)

    @cached_property
    def audit(self) -> AuditService:
        invariant(self.new_audit is not None, "the API is built with its audit log")
        assert self.new_audit is not None
        return self.new_audit()

    def recon(self, pool_id: str | None = None) -> ReconService:
        invariant(self.new_recon is not None, "the API is built with its reconciliation")
        assert self.new_recon is not None
        pool = self.pool(pool_id)
        with self._lock:
            service = self._recon.get(pool.id)
            if service is None:
                service = self.new_recon(pool)
                self._recon[pool.id] = service
            return service

    def desk(self, pool_id: str | None = None) -> Desk:
        invariant(self.new_desk is not None, "the API is built with its treasury desk")
        assert self.new_desk is not None
        pool = self.pool(pool_id)
        payments = self.payments(pool.id)
        with self._lock:
            desk = self._desks.get(pool.id)
            if desk is None:
                wake = self.wake_engine
                desk = self.new_desk(pool, payments,
                                     None if wake is None else (lambda: wake(pool.id)))
                self._desks[pool.id] = desk
            return desk

    def close(self) -> None:
        if "writer" in self.__dict__:
            self.writer.stop()


def api_of(request: Request) -> Api:
    api: Api = request.app.state.api
    return api
