"""The composition root: the one module that knows every adapter and builds the services on
them, for the server, the CLI and the simulator alike.

    store = open_ledger_store(data_dir=Path("data"))   # SQLite, or PostgreSQL by URL
    payments = payment_service(store, config, pool)     # Ledger + PaymentService
    run = dispatching(store, config, pool)              # + simulated rails, router, dispatcher
    sim = simulation(ledger(store, clock, ids), config, pool, seed=7, clock=clock)
    status = schema_status(store)                       # `fundpool db status`
    relay = nats_relay(store, DEFAULT_NATS_URL, name=RELAY_CURSOR, prefix=DEFAULT_PREFIX)
    app = build_app(settings)                           # one API worker (uvicorn factory)

Everything else receives what it needs: the services declare ports (`ledger/ports.py`,
`payments/ports.py`, `auth/ports.py`, ...), the stores, the SQL layer and the bus implement
them, and only this module puts the two together. The entry points never import an adapter:
the CLI asks this module, and the server gets every adapter on its worker's `Api`
(`server/v1/context.py`), which `build_app` fills in. `build_app` is the factory `fundpool
serve` runs in each uvicorn worker (`uvicorn --factory fundpool.compose:build_app`); it mounts
the web console when the settings ask for it, so that the server imports neither the console
nor the CLI (nor this module).

Only what opens a store and its ledger loads with this module; everything else (the payments,
the dispatcher and its rails, the simulator, the monitor, the bus, the server, the console, the
alert engine, with FastAPI, NiceGUI, pydantic, the NATS client and structlog) loads inside the
functions that need it: a CLI command that reads a ledger starts without them
(tests/cli/test_startup.py). The bus's defaults are the CLI's option defaults: they come from
`bus/defaults.py`.
"""

from __future__ import annotations

import dataclasses
import functools
import secrets
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fundpool.bus.defaults import ACK_WAIT_S as ACK_WAIT_S
from fundpool.bus.defaults import DEFAULT_NATS_URL as DEFAULT_NATS_URL
from fundpool.bus.defaults import DEFAULT_PREFIX as DEFAULT_PREFIX
from fundpool.bus.defaults import DURABLE_PREFIX as DURABLE_PREFIX
from fundpool.bus.defaults import PULL_BATCH as PULL_BATCH
from fundpool.bus.defaults import RELAY_CURSOR as RELAY_CURSOR
from fundpool.core.clock import Clock, IdSource, Uuid7Ids
from fundpool.core.errors import invariant
from fundpool.ledger.ports import LedgerStore
from fundpool.ledger.service import Ledger
from fundpool.runtime import SystemClock, process_ids, system_ids, tune_gc
from fundpool.sql import migrate
from fundpool.sql.database import Database, database_of
from fundpool.sql.migrate import ComponentStatus as ComponentStatus
from fundpool.sql.migrate import Migration
from fundpool.stores import driver_errors, open_store, payment_store

if TYPE_CHECKING:
    from fastapi import FastAPI

    from fundpool.approvals.ports import ApprovalStore
    from fundpool.approvals.service import ApprovalService
    from fundpool.audit.ports import AuditStore
    from fundpool.audit.service import AuditService
    from fundpool.auth.ports import AuthStore
    from fundpool.bus.consumer import NatsConsumer
    from fundpool.bus.relay import NatsRelay
    from fundpool.bus.relay import RelayReport as RelayReport
    from fundpool.channels.ports import ChannelAdapter
    from fundpool.desk.ports import DeskStore
    from fundpool.desk.runner import DeskRunner
    from fundpool.desk.service import Desk
    from fundpool.monitoring.alerting.engine import AlertEngine, Observation
    from fundpool.monitoring.alerting.ports import AlertStore
    from fundpool.monitoring.alerting.reload import AlertRules
    from fundpool.monitoring.ports import OutboxReader, ProjectionStore
    from fundpool.monitoring.service import Monitor
    from fundpool.payments.dispatch import DispatchPolicy
    from fundpool.payments.engine import PaymentEngine
    from fundpool.payments.ports import (
        ApprovalGate,
        DispatchRecordReads,
        DispatchRecords,
        PaymentStore,
        Screening,
    )
    from fundpool.payments.service import PaymentService
    from fundpool.pool.config import ChannelConfig, FundpoolConfig, PoolConfig
    from fundpool.pool.rates import RateSource
    from fundpool.reconciliation.inbox import StatementInbox
    from fundpool.reconciliation.ports import ReconStore
    from fundpool.reconciliation.service import ReconService
    from fundpool.risk.engine import RiskEngine
    from fundpool.risk.ports import RiskStore
    from fundpool.risk.service import RiskService
    from fundpool.routing.congestion import CongestionMeter
    from fundpool.server.engines import Engines
    from fundpool.server.settings import Settings
    from fundpool.server.v1.idempotency import KeptAnswers
    from fundpool.sim.rails import Dispatching
    from fundpool.sim.service import TrafficService
    from fundpool.sim.traffic import Simulation
    from fundpool.sql.lease import AdvisoryLease
    from fundpool.stores.sqlite import SqliteStore
    from fundpool.treasury.config import TreasuryConfig


# --- stores ----------------------------------------------------------------------------------


def open_ledger_store(*, data_dir: str | Path | None = None,
                      db_url: str | None = None) -> LedgerStore:
    """The ledger store `db_url` names (`sqlite:///PATH`, `postgresql://…?schema=NAME`), else
    the SQLite file in `data_dir` ($FUNDPOOL_DB_URL, $FUNDPOOL_DATA_DIR, ./data). A URL of
    another kind is `unsupported_database_url`. Its schema is created by `initialise()`, not
    here."""
    return open_store(data_dir=data_dir, db_url=db_url)


def check_schema(store: LedgerStore) -> None:
    """Refuse a ledger whose schema is not this code's version (`schema_outdated` names
    `fundpool db upgrade`; `schema_too_new`): what every command checks before it reads."""
    migrate.check(database_of(store), migrate.LEDGER)


def prepare_schema(store: LedgerStore) -> None:
    """What a server checks at start-up, before any worker opens the store: every component
    of the ledger's database (ledger, auth, api, projections, alerts) is at this code's
    version, or created at it where it has no tables yet. A newer one is `schema_too_new`; an
    older one `schema_outdated`, naming `fundpool db upgrade`. Nothing is changed when one is
    refused."""
    db = database_of(store)
    found = [migrate.status(db, component) for component in migrate.COMPONENTS]
    for status in found:
        if status.state != "absent":
            migrate.refuse(db, status)  # before anything is created
    for component, status in zip(migrate.COMPONENTS, found, strict=True):
        if status.state == "absent":
            migrate.upgrade(db, component)


@dataclass(frozen=True, slots=True)
class Schema:
    """Where a store's schema stands (`fundpool db status | upgrade`)."""

    store: str  # the store as shown: its URL without a password
    components: list[ComponentStatus]  # this code's components, in order
    unknown: dict[str, int] = field(default_factory=dict)  # others recorded, by version
    applied: dict[str, list[Migration]] = field(default_factory=dict)  # by an upgrade


def schema_status(store: LedgerStore) -> Schema:
    """The version of every component of `store`'s database against this code's, and the
    components this code does not know (a later release's). Reads only: a store that is not
    there is shown `absent`, and left so."""
    db = database_of(store)
    return Schema(db.shown, [migrate.status(db, component) for component in migrate.COMPONENTS],
                  unknown=migrate.unknown_components(db))


def upgrade_schema(store: LedgerStore) -> Schema:
    """Apply every pending migration of every component (each in one transaction with its
    record), then where the schema stands. A component newer than this code is refused
    before anything is applied (`schema_too_new`)."""
    db = database_of(store)
    applied = migrate.upgrade_all(db)
    return Schema(db.shown, [migrate.status(db, component) for component in migrate.COMPONENTS],
                  applied=applied)


def sqlite_ledger(data_dir: str | Path) -> SqliteStore:
    """The embedded SQLite ledger in `data_dir`, whatever $FUNDPOOL_DB_URL says (the demo's
    own ledger, which it may delete and create again)."""
    from fundpool.stores.sqlite import SqliteStore

    return SqliteStore.in_data_dir(data_dir)


def store_errors() -> tuple[type[BaseException], ...]:
    """What a store raises when its database fails (the drivers' own errors)."""
    return driver_errors()


def payment_records(store: LedgerStore) -> PaymentStore:
    """The payments kept in the same database as `store`'s ledger."""
    return payment_store(store)


def dispatch_records(store: LedgerStore) -> DispatchRecords:
    """The dispatcher's routes, batches and outcomes, beside the payments (its port)."""
    from fundpool.stores.dispatch_sql import SqlDispatchRecords

    return SqlDispatchRecords(store)


def dispatch_reads(store: LedgerStore) -> DispatchRecordReads:
    """What the dispatcher recorded, for reading: routes, batches, savings."""
    return dispatch_records(store).reads


def outbox(store: LedgerStore) -> OutboxReader:
    """The events the ledger's transactions wrote, in commit order."""
    from fundpool.stores.events_sql import outbox_reader

    return outbox_reader(store)


def projection_store(store: LedgerStore) -> ProjectionStore:
    """The monitor's projections, in the same database (and schema) as the ledger, on a
    connection of their own."""
    from fundpool.stores.projection_sql import ProjectionStore as SqlProjectionStore

    return SqlProjectionStore.beside(store)


def projection_url(path_or_url: str) -> str:
    """A projection store's URL from a URL or a SQLite file's path; a URL of a kind no store
    supports is `unsupported_database_url`."""
    from fundpool.bus.consumer import projection_url as bus_projection_url

    return bus_projection_url(path_or_url)


def projection_url_beside(store: LedgerStore) -> str:
    """The URL `projection_store(store)` opens (the ledger's database and schema), without
    opening it."""
    from fundpool.stores.projection_sql import ProjectionStore as SqlProjectionStore

    return SqlProjectionStore.url_beside(store)


def projection_store_at(url: str) -> ProjectionStore:
    """The projections at `url` (tables created if missing; consumers starting together may
    race to create them, which is tried again)."""
    from fundpool.bus.consumer import open_projections

    return open_projections(url)


def auth_store(store: LedgerStore) -> AuthStore:
    """API keys, users and sessions, in the same database (and schema) as the ledger; their
    tables created, or checked, at once."""
    from fundpool.stores.auth_sql import AuthStore as SqlAuthStore

    return SqlAuthStore.beside(store)


def kept_answers(store: LedgerStore) -> KeptAnswers:
    """The API's answers kept for `Idempotency-Key`, beside the ledger."""
    from fundpool.stores.idempotency_sql import IdempotencyStore

    return IdempotencyStore.beside(store)


def leader_lease(db_url: str) -> AdvisoryLease:
    """The lease the API workers on one PostgreSQL database take turns to hold (the leader
    keeps the live figures), on a connection of its own."""
    from fundpool.sql.lease import AdvisoryLease

    # The same key as before issue 13 ("fundpool.ledger:leader:<schema>"), so workers of the
    # release before and this one never lead at once.
    return AdvisoryLease(Database(db_url), "fundpool.ledger:leader")


# --- services --------------------------------------------------------------------------------


def ledger(store: LedgerStore, clock: Clock | None = None, ids: IdSource | None = None) -> Ledger:
    """The ledger service on `store`, on the wall clock and system ids unless given others."""
    return Ledger(store, clock or SystemClock(), ids or system_ids())


def payment_service(store: LedgerStore, config: FundpoolConfig, pool: PoolConfig, *,
                    clock: Clock | None = None, ids: IdSource | None = None,
                    records: PaymentStore | None = None) -> PaymentService:
    """The payments of `pool`, on their ledger (and on `records`, else a store of their own
    beside the ledger)."""
    from fundpool.payments.service import PaymentService

    ids = ids or system_ids()
    return PaymentService(ledger(store, clock, ids), records or payment_records(store), config,
                          pool, ids)


def monitor(store: LedgerStore, config: FundpoolConfig, clock: Clock | None = None, *,
            projections: ProjectionStore | None = None) -> Monitor:
    """The live figures of `store`'s pools from its outbox, kept in `projections` (else in
    projections beside the ledger)."""
    from fundpool.monitoring.service import Monitor

    if projections is None:
        projections = projection_store(store)
    return Monitor(store, config, clock or SystemClock(), projections=projections,
                   outbox=outbox(store))


def alert_store(store: LedgerStore) -> AlertStore:
    """The alerts raised and their life, beside the ledger."""
    from fundpool.stores.alerts_sql import SqlAlertStore

    return SqlAlertStore(store)


def alert_engine(store: LedgerStore, watched: Monitor, rules: AlertRules) -> AlertEngine:
    """The alert rules evaluated on `watched`'s figures, and risk control's signals (the
    review queue, holds, SLA breaches, sanctions blocks); alerts kept beside the ledger."""
    from fundpool.monitoring.alerting.engine import AlertEngine

    return AlertEngine(ledger(store), watched, rules, table=alert_store(store),
                       sources=[risk_observations(store, watched.config)])


def risk_observations(store: LedgerStore, config: FundpoolConfig
                      ) -> Callable[[int], list[Observation]]:
    """Risk control's signals as the alert engine's observations: each holds while it comes
    (`for` zero), and resolves at the first evaluation it no longer does."""
    from fundpool.monitoring.alerting.engine import Observation
    from fundpool.risk.service import RingWatch, signals

    risks = risk_store(store)
    pools = tuple(pool.id for pool in config.pools)
    rings = RingWatch()

    def observe(at_us: int) -> list[Observation]:
        return [Observation(s.pool, s.rule, s.subject, s.severity, Fraction(s.count),
                            str(s.count), True, 0, s.summary)
                for s in signals(risks, at_us, pools, rings)]

    return observe


def risk_store(store: LedgerStore) -> RiskStore:
    from fundpool.stores.risk_sql import SqlRiskStore

    return SqlRiskStore(store)


def audit_store(store: LedgerStore) -> AuditStore:
    """The audit log's tables, beside the ledger on a connection of their own."""
    from fundpool.stores.audit_sql import SqlAuditStore

    return SqlAuditStore.beside(store)


def audit_key_path(store: LedgerStore, *, key: str | Path | None = None,
                   data_dir: str | Path | None = None) -> Path:
    """The audit log's signing key: `key`, else $FUNDPOOL_AUDIT_KEY, else `audit-log.key`
    beside the SQLite file (in `data_dir`, $FUNDPOOL_DATA_DIR or ./data for PostgreSQL)."""
    import os

    from fundpool.audit.checkpoint import KEY_ENV, KEY_FILE
    from fundpool.stores import DATA_DIR_ENV, DEFAULT_DATA_DIR

    named = key or os.environ.get(KEY_ENV)
    if named:
        return Path(named)
    db = database_of(store)
    if not db.is_postgres and db.location.target != ":memory:":
        return Path(db.location.target).parent / KEY_FILE
    return Path(data_dir or os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR) / KEY_FILE


def audit_service(store: LedgerStore, *, key: str | Path | None = None,
                  data_dir: str | Path | None = None, publish_dir: str | Path | None = None,
                  clock: Clock | None = None, audit: AuditStore | None = None
                  ) -> AuditService:
    """The audit log of `store`'s database: its key read (or made) on first use from
    `audit_key_path`; checkpoints published to `publish_dir` (else
    $FUNDPOOL_AUDIT_PUBLISH_DIR, else nowhere)."""
    import os

    from fundpool.audit.checkpoint import PUBLISH_ENV, LogKey
    from fundpool.audit.service import AuditService

    path = audit_key_path(store, key=key, data_dir=data_dir)
    publish = publish_dir or os.environ.get(PUBLISH_ENV)
    return AuditService(audit or audit_store(store), lambda: LogKey.load_or_create(path),
                        clock or SystemClock(),
                        publish_dir=None if not publish else Path(publish))


def asset_scales(config: FundpoolConfig) -> dict[str, int]:
    return {asset.code: asset.scale for asset in config.assets}


def risk_engine(store: LedgerStore, config: FundpoolConfig, pool: PoolConfig, *,
                clock: Clock, ids: IdSource) -> RiskEngine:
    """The risk decision at `pool`'s screening step (the payment engine's, and a payout
    file's intake)."""
    from fundpool.risk.engine import RiskEngine

    risks = risk_store(store)
    risks.ensure()  # its tables, before the engine's first (write) transaction reads them
    engine = RiskEngine(pool.id, risks, clock, ids, scales=asset_scales(config))
    engine.warm()
    return engine


def risk_service(store: LedgerStore, config: FundpoolConfig,
                 payments: Callable[[str], PaymentService], *, clock: Clock,
                 ids: IdSource | None = None) -> RiskService:
    """Policies, the review queue, sanctions lists and parties, on `store`; `payments(pool)`
    moves a case's payment."""
    from fundpool.risk.service import RiskService

    return RiskService(risk_store(store), payments, clock, asset_scales(config),
                       default_pool=config.pools[0].id, ids=ids or system_ids())


def recon_store(store: LedgerStore) -> ReconStore:
    from fundpool.stores.reconciliation_sql import SqlReconStore

    return SqlReconStore(store)


def recon_service(store: LedgerStore, config: FundpoolConfig, pool: PoolConfig, *,
                  clock: Clock | None = None, ids: IdSource | None = None,
                  records: PaymentStore | None = None) -> ReconService:
    """`pool`'s reconciliation: its statements against the payments' boundary steps, booking
    differences through the ledger's adjustments (docs/reconciliation.md)."""
    from fundpool.reconciliation.books import LedgerBooks
    from fundpool.reconciliation.service import ReconService

    clock = clock or SystemClock()
    ids = ids or system_ids()
    return ReconService(recon_store(store), records or payment_records(store),
                        LedgerBooks(ledger(store, clock, ids)), config, pool, clock, ids)


def desk_store(store: LedgerStore) -> DeskStore:
    from fundpool.stores.desk_sql import SqlDeskStore

    return SqlDeskStore(store)


_HTTP_RATES: dict[str, RateSource] = {}
_HTTP_RATES_LOCK = threading.Lock()


def rate_source(config: FundpoolConfig, pool: PoolConfig) -> Callable[[], RateSource]:
    """`pool`'s rates: its `rates_url` (one cached HTTP source per URL in the process, which
    refreshes itself and refuses to serve stale rates), else its static file, read once."""
    if pool.rates_url is not None:
        from fundpool.pool.rates import HttpRates

        url = pool.rates_url
        with _HTTP_RATES_LOCK:
            source = _HTTP_RATES.get(url)
            if source is None:
                source = _HTTP_RATES[url] = HttpRates(url)
        return lambda: source
    static = config.rates_for(pool)
    return lambda: static


def treasury_config(config: FundpoolConfig, pool: PoolConfig) -> TreasuryConfig:
    """The pool's treasury file (bands, sweeps, credit lines, splits, FX), checked."""
    from fundpool.treasury.config import pool_treasury

    return pool_treasury(config, pool)


def desk(store: LedgerStore, config: FundpoolConfig, pool: PoolConfig, *,
         clock: Clock | None = None, ids: IdSource | None = None,
         payments: PaymentService | None = None,
         wake: Callable[[], None] | None = None,
         treasury: TreasuryConfig | None = None) -> Desk:
    """`pool`'s treasury desk (docs/treasury.md): FX, netting, liquidity and stress tests,
    its rail movements created through `payments` (the pool's payment service) for the
    engine to carry."""
    from fundpool.desk.service import build_desk

    clock = clock or SystemClock()
    ids = ids or system_ids()
    payments = payments or payment_service(store, config, pool, clock=clock, ids=ids)
    return build_desk(ledger(store, clock, ids), desk_store(store), config, pool,
                      treasury or treasury_config(config, pool), payments,
                      rate_source(config, pool),
                      clock=clock, ids=ids, wake=wake)


def prepare_desk(store: LedgerStore, config: FundpoolConfig, pool: PoolConfig,
                 treasury: TreasuryConfig | None = None) -> int:
    """Open the accounts `pool`'s split rules credit and its netting partners hold (a split
    deposit's settlement must find them): at `fundpool pool init` and when the pool's engine
    starts. Before the pool is initialised (its assets not defined yet) there is nothing to
    open them in: 0, and `pool init` opens them."""
    from fundpool.core.errors import UnknownAsset
    from fundpool.desk.service import open_desk_accounts

    treasury = treasury or treasury_config(config, pool)
    if not treasury.splits and not treasury.partners:
        return 0
    try:
        return open_desk_accounts(ledger(store), pool.id, treasury, sorted(config.assets_of(pool)))
    except UnknownAsset:
        return 0


def approval_store(store: LedgerStore) -> ApprovalStore:
    from fundpool.stores.approvals_sql import SqlApprovalStore

    return SqlApprovalStore(store)


def approval_service(store: LedgerStore, config: FundpoolConfig,
                     payments: Callable[[str], PaymentService], *, clock: Clock,
                     wake: Callable[[str], None] | None = None) -> ApprovalService:
    """Approvals (rules, keys and TOTP, signatures, delay windows) on `store`; the users are
    the auth store's; `payments(pool)` moves an approved payment; `wake(pool)` tells the pool's
    engine that one was."""
    from fundpool.approvals.service import ApprovalService, Reporting

    scales = asset_scales(config)
    reportings: dict[str, Reporting] = {}

    def reporting(pool_id: str) -> Reporting:
        if pool_id not in reportings:
            pool = config.pool(pool_id)
            reportings[pool_id] = Reporting(pool.reporting_currency,
                                            config.rates_for(pool).rate, scales)
        return reportings[pool_id]

    from fundpool.approvals.ports import RiskFacts

    risks = risk_store(store)
    risks.ensure()  # its tables, before the engine's gate reads them inside a transaction

    def risk(payment_ids: Sequence[str]) -> dict[str, RiskFacts]:
        return {pid: RiskFacts(d.outcome, d.score, d.policy_version)
                for pid, d in risks.decisions(payment_ids).items()}

    return ApprovalService(approval_store(store), payments, auth_store(store), clock,
                           pools=[p.id for p in config.pools], scales=scales,
                           reporting=reporting, risk=risk, wake=wake)


def approval_gate(store: LedgerStore, config: FundpoolConfig, *, clock: Clock) -> ApprovalGate:
    """The engine's question after routing: does a payment wait for approvers (the approval
    rules active when it was created, and the pool's thresholds)?"""
    from fundpool.approvals.gate import RulesGate

    return RulesGate(approval_service(
        store, config, lambda pool: payment_service(store, config, config.pool(pool),
                                                    clock=clock), clock=clock))


def simulated_dispatching(
    ledger_service: Ledger,
    config: FundpoolConfig,
    pool: PoolConfig,
    *,
    clock: Clock,
    ids: IdSource,
    seed: int,
    instance: str,
    policy: DispatchPolicy | None = None,
    journal_dir: Path | None = None,
    acknowledged_on_commit: bool = False,
    payments: PaymentService | None = None,
    records: DispatchRecords | None = None,
    screening: Screening | None = None,
    approvals: ApprovalGate | None = None,
    real_rails: Mapping[str, ChannelAdapter] | None = None,
    congestion: CongestionMeter | None = None,
) -> Dispatching:
    """The payments of `pool` on `ledger_service` (or `payments`, already made), and a
    dispatcher over one simulated rail per channel (seeded by `seed`; `instance` keeps their
    references apart from an earlier set's on the same store), but for the channels of
    `real_rails`, and the learning router; its records beside the payments (or `records`), on
    `policy`, else the dispatcher's default."""
    from fundpool.channels.simulated import Acknowledgement
    from fundpool.payments.dispatch import DEFAULT_DISPATCH_POLICY, Dispatcher
    from fundpool.payments.service import PaymentService
    from fundpool.sim.rails import Dispatching, payout_router, simulated_rails

    store = ledger_service.store
    if payments is None:
        payments = PaymentService(ledger_service, payment_records(store), config, pool, ids)
    real = dict(real_rails or {})
    simulated = simulated_rails(
        config, dataclasses.replace(pool, channels=tuple(
            c for c in pool.channels if c not in real)),
        seed=seed, instance=instance, journal_dir=journal_dir,
        # The engine tells its rails what it committed (Dispatcher._acknowledge); others take
        # a rail's outcomes as had once they poll again.
        acknowledgement=Acknowledgement.EXPLICIT if acknowledged_on_commit
        else Acknowledgement.NEXT_POLL)
    rails: dict[str, ChannelAdapter] = {
        cid: real[cid] if cid in real else simulated[cid] for cid in pool.channels}
    router = payout_router(config, rails, seed=seed, congestion=congestion)
    dispatcher = Dispatcher(payments, rails, router, clock, ids,
                            records=dispatch_records(store) if records is None else records,
                            policy=DEFAULT_DISPATCH_POLICY if policy is None else policy,
                            screening=screening, approvals=approvals)
    return Dispatching(config, pool, payments, rails, router, dispatcher)


def dispatching(store: LedgerStore, config: FundpoolConfig, pool: PoolConfig, *,
                clock: Clock | None = None, payments: PaymentService | None = None,
                records: DispatchRecords | None = None,
                screening: Screening | None = None,
                congestion: CongestionMeter | None = None) -> Dispatching:
    """`simulated_dispatching` on the wall clock and system ids, its rails on a random seed:
    how a payout file is taken in (`payment batch`, and `POST /v1/payments/batches` on the
    server's own `payments` and `records`). This process never sends on those rails; the
    pool's engine sends what is approved."""
    clock, ids = clock or SystemClock(), system_ids()
    seed = secrets.randbits(32)
    instance = format(clock.now_us(), "x")  # this process's rail references are its own
    ledger_service = payments.ledger if payments is not None else ledger(store, clock, ids)
    if screening is None:
        screening = risk_engine(store, config, pool, clock=clock, ids=ids)
    return simulated_dispatching(ledger_service, config, pool, clock=clock, ids=ids, seed=seed,
                                 instance=instance, payments=payments, records=records,
                                 screening=screening,
                                 approvals=approval_gate(store, config, clock=clock),
                                 congestion=congestion)


# --- the payment engine ----------------------------------------------------------------------

# Approvals made in another worker are found within a second; in this one at once (woken).
ENGINE_RESCAN_US = 1_000_000


def engine_policy() -> DispatchPolicy:
    """The dispatcher's pacing in the payment engine (built here, not at import: the dispatcher
    loads only with the first engine or simulation)."""
    from fundpool.payments.dispatch import DispatchPolicy

    return DispatchPolicy(rescan_us=ENGINE_RESCAN_US)


def bank_channels(config: FundpoolConfig, pool: PoolConfig) -> list[ChannelConfig]:
    """The pool's channels carried by the ISO 20022 bank rail (docs/bank-rail.md)."""
    from fundpool.pool.config import ISO20022_ADAPTER

    return [config.channel(cid) for cid in pool.channels
            if config.channel(cid).adapter == ISO20022_ADAPTER]


def bank_rails(config: FundpoolConfig, pool: PoolConfig, *, data_dir: Path | None,
               clock: Clock) -> dict[str, ChannelAdapter]:
    """An `Iso20022Rail` per bank channel of the pool, on its exchange directory (none: the
    rail's modules, XML schemas and IBAN registry are not loaded)."""
    channels = bank_channels(config, pool)
    if not channels:
        return {}
    from fundpool.channels.iso_rail import Iso20022Rail, short_instance

    rails: dict[str, ChannelAdapter] = {}
    for channel in channels:
        invariant(channel.bank is not None and data_dir is not None,
                  f"channel {channel.id}: the bank rail needs its bank table and a data dir")
        assert channel.bank is not None
        assert data_dir is not None
        rails[channel.id] = Iso20022Rail(
            channel, {a.code: a for a in config.assets},
            exchange=channel.bank.exchange_dir(data_dir),
            instance=short_instance(clock.now_us()), clock_us=clock.now_us,
            notifications_to_statements=False)
    return rails


def payment_engine(store: LedgerStore, config: FundpoolConfig, pool: PoolConfig, *,
                   rails_dir: Path | None, seed: int | None = None,
                   data_dir: Path | None = None,
                   congestion: CongestionMeter | None = None) -> PaymentEngine:
    """`pool`'s payment engine on `store`, on the wall clock: its rails as the pool's
    configuration names them (each channel's `adapter`): `iso20022`, the bank rail on its file
    exchange under `data_dir`; `simulated`, its journal in `rails_dir/<pool>/<channel>.jsonl`,
    so that a restart finds what each rail was sent."""
    from fundpool.payments.engine import PaymentEngine

    clock, ids = SystemClock(), system_ids()
    seed = secrets.randbits(32) if seed is None else seed
    real = bank_rails(config, pool, data_dir=data_dir, clock=clock)
    adapters = {config.channel(cid).adapter for cid in pool.channels if cid not in real}
    invariant(adapters <= {"simulated"}, f"a rail adapter with no builder: {adapters}")
    # A rail whose journal is not there yet remembers nothing: what the books have in transit
    # on it is never sent again from here (it may have been sent by a rail that forgot). The
    # bank rail remembers by its files (it answers inquiries).
    forgetful = frozenset(
        cid for cid in pool.channels if cid not in real
        and (rails_dir is None or not (rails_dir / pool.id / f"{cid}.jsonl").exists()))
    # Each start names its rails anew, so that their references (and the outcome ids made of
    # them) never meet an earlier start's, even on a journal begun afresh.
    parts = simulated_dispatching(
        ledger(store, clock, ids), config, pool, clock=clock, ids=ids, seed=seed,
        instance=f"engine-{pool.id}-{clock.now_us():x}", policy=engine_policy(),
        journal_dir=rails_dir, acknowledged_on_commit=True,
        screening=risk_engine(store, config, pool, clock=clock, ids=ids),
        approvals=approval_gate(store, config, clock=clock), real_rails=real,
        congestion=congestion)
    return PaymentEngine(pool.id, parts.dispatcher, forgetful=forgetful)


@dataclass
class PoolRuntime:
    """What runs for one pool where it is led: its engine, and the live demo's simulator
    (which hands its payments to the engine)."""

    engine: PaymentEngine
    traffic: TrafficService | None = None
    banks: BankSide | None = None
    desk: DeskRunner | None = None

    def start(self) -> PoolRuntime:
        self.engine.start()
        if self.banks is not None:
            self.banks.start()
        if self.desk is not None:
            self.desk.start()
        if self.traffic is not None:
            self.traffic.start()
        return self

    def stop(self) -> None:
        if self.traffic is not None:
            self.traffic.stop()
        if self.desk is not None:
            self.desk.stop()
        if self.banks is not None:
            self.banks.stop()
        self.engine.stop()

    def wake(self) -> None:
        self.engine.wake()


BANK_STEP_S = 1.0  # how often a simulated bank answers, and statements are looked for
STATEMENTS_EVERY_S = 5.0


@dataclass
class BankSide:
    """Where the pool is led, for its bank channels: the simulated banks of the channels that
    say `simulated = true` (sim/bank.py), and the import of every statement the bank rail
    moves into `<exchange>/statements/` (reconciliation/inbox.py)."""

    simulators: list[Callable[[threading.Event], None]]
    inboxes: list[StatementInbox]
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        for n, run in enumerate(self.simulators):
            self._spawn(f"fundpool-bank-{n}", functools.partial(run, self._stop))
        if self.inboxes:
            self._spawn("fundpool-statements", self._statements)

    def _spawn(self, name: str, target: Callable[[], None]) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _statements(self) -> None:
        while not self._stop.wait(STATEMENTS_EVERY_S):
            for inbox in self.inboxes:
                try:
                    inbox.take()
                except Exception as error:  # one bad pass never stops the next
                    import structlog

                    structlog.get_logger("fundpool.reconciliation").error(
                        "statements_pass_failed", channel=inbox.channel, error=str(error))

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)


def bank_side(store: LedgerStore, config: FundpoolConfig, pool: PoolConfig, *,
              data_dir: Path | None, seed: int | None = None) -> BankSide | None:
    """The simulated banks and statement imports of `pool`'s bank channels (None: it has
    none). A simulated bank opens its account with the ledger's total of the channel when it
    first starts (then keeps its own balance, in its state file)."""
    from fundpool.reconciliation.books import LedgerBooks
    from fundpool.reconciliation.inbox import StatementInbox
    from fundpool.sim.bank import BankSettings, BankSimulator, run_bank

    channels = bank_channels(config, pool)
    if not channels or data_dir is None:
        return None
    clock = SystemClock()
    recon = recon_service(store, config, pool, clock=clock)
    books = LedgerBooks(ledger(store, clock))
    simulators: list[Callable[[threading.Event], None]] = []
    inboxes: list[StatementInbox] = []
    for channel in channels:
        assert channel.bank is not None
        exchange = channel.bank.exchange_dir(data_dir)
        inboxes.append(StatementInbox(recon, channel.id, exchange / "statements"))
        if not channel.bank.simulated:
            continue
        asset = config.asset(channel.assets[0])
        simulator = BankSimulator(
            exchange, account=channel.bank.account, asset=asset,
            opening_minor=books.channel_total(pool.id, channel.id, asset.code,
                                              clock.now_us()),
            channel=channel,
            settings=BankSettings(seed=secrets.randbits(32) if seed is None else seed))

        def run(stop: threading.Event, simulator: BankSimulator = simulator) -> None:
            run_bank(simulator, clock_us=clock.now_us, every_s=BANK_STEP_S, stop=stop)

        simulators.append(run)
    return BankSide(simulators, inboxes)


def pool_runtime(store: LedgerStore, config: FundpoolConfig, pool: PoolConfig, *,
                 rails_dir: Path | None, simulate_per_s: float | None = None,
                 data_dir: Path | None = None,
                 congestion: CongestionMeter | None = None) -> PoolRuntime:
    treasury = treasury_config(config, pool)  # read once for the accounts and the runner
    prepare_desk(store, config, pool, treasury)
    engine = payment_engine(store, config, pool, rails_dir=rails_dir, data_dir=data_dir,
                            congestion=congestion)
    traffic = None
    if simulate_per_s is not None:
        traffic = engine_traffic(store, config, pool, engine, rate_per_s=simulate_per_s)
    return PoolRuntime(engine, traffic, bank_side(store, config, pool, data_dir=data_dir),
                       desk_runner(store, config, pool, engine, treasury))


def desk_runner(store: LedgerStore, config: FundpoolConfig, pool: PoolConfig,
                engine: PaymentEngine, treasury: TreasuryConfig) -> DeskRunner | None:
    """The desk's schedule where the pool is led (None: its treasury file has no sweep rule
    and no credit line, so there is nothing to run)."""
    if not treasury.sweeps and not treasury.credit_lines:
        return None
    from fundpool.desk.runner import DeskRunner

    return DeskRunner(desk(store, config, pool, wake=engine.wake, treasury=treasury))


# --- the simulator ---------------------------------------------------------------------------


def simulation(ledger_service: Ledger, config: FundpoolConfig, pool: PoolConfig, *, seed: int,
               clock: Clock, ids: IdSource | None = None,
               policy: DispatchPolicy | None = None,
               screening: Screening | None = None) -> Simulation:
    """The traffic simulator on `ledger_service` (see `ledger`), on `clock` (a `ManualClock`
    for a deterministic run, a `ScaledClock` or the wall clock for a live one). Its payments
    and dispatcher draw ids from `ids` (default: seeded by `seed`)."""
    from fundpool.sim.traffic import Simulation

    ids = ids or Uuid7Ids.seeded(seed)
    # A run is named by the clock's time at its start: its rail references, outcome ids and
    # idempotency keys then never meet an earlier run's on the same store.
    run_id = format(clock.now_us(), "x")
    from fundpool.routing.congestion import CongestionMeter

    parts = simulated_dispatching(ledger_service, config, pool, clock=clock, ids=ids, seed=seed,
                                  instance=run_id, policy=policy, screening=screening,
                                  congestion=CongestionMeter.of(config))
    return Simulation(parts, seed=seed, clock=clock, run_id=run_id)



def engine_traffic(store: LedgerStore, config: FundpoolConfig, pool: PoolConfig,
                   engine: PaymentEngine, *, rate_per_s: float, seed: int | None = None
                   ) -> TrafficService:
    """The simulator as a service of the server, its payments handed to `engine` as the API's
    are (`serve --simulate`, the live demo); `seed` defaults to the simulator's."""
    from fundpool.sim.approvers import SimulatedApprovers
    from fundpool.sim.service import SEED_DEFAULT, EngineFlow, TrafficService
    from fundpool.sim.traffic import Simulation

    seeded = SEED_DEFAULT if seed is None else seed

    def open_simulation() -> Simulation:
        clock = SystemClock()
        ids = Uuid7Ids.seeded(seeded + clock.now_us())
        ledger_service = ledger(store, clock, ids)
        run_id = format(clock.now_us(), "x")
        parts = simulated_dispatching(ledger_service, config, pool, clock=clock, ids=ids,
                                      seed=seeded, instance=run_id)
        approvals = approval_service(store, config, lambda _pool: parts.payments, clock=clock,
                                     wake=lambda _pool: engine.wake())
        flow = EngineFlow(parts.payments, engine, clock,
                          approvers=SimulatedApprovers(approvals))
        return Simulation(parts, seed=seeded, clock=clock, run_id=run_id, flow=flow)

    return TrafficService(open_simulation, rate_per_s=rate_per_s)


# --- the bus ---------------------------------------------------------------------------------


def nats_relay(store: LedgerStore, nats_url: str, *, name: str, prefix: str) -> NatsRelay:
    """The relay of `store`'s outbox to JetStream, its cursor `name` kept beside the outbox."""
    from fundpool.bus.relay import NatsRelay

    return NatsRelay(store, nats_url, name=name, prefix=prefix)


def nats_consumer(projections_url: str, nats_url: str, *, pools: Sequence[str] | None,
                  durable_prefix: str, prefix: str, ack_wait_s: float, batch: int
                  ) -> NatsConsumer:
    """A consumer applying the pools' streams (every pool with a stream when `pools` is
    None) to the projections at `projections_url`, each event once."""
    from fundpool.bus.consumer import NatsConsumer
    from fundpool.monitoring.projector import Projector

    return NatsConsumer(projections_url, nats_url, applier=Projector,
                        pools=None if pools is None else list(pools),
                        durable_prefix=durable_prefix, prefix=prefix, ack_wait_s=ack_wait_s,
                        batch=batch)


def durable_name(projections_url: str, durable_prefix: str) -> str:
    """The durable consumer's name of the projections at `projections_url`."""
    from fundpool.bus.subjects import durable_name as bus_durable_name

    return bus_durable_name(projections_url, durable_prefix)


def stream_status(nats_url: str, durable: str, pools: Sequence[str], *, prefix: str
                  ) -> dict[str, dict[str, Any]]:
    """Per pool: its stream's message count and `durable`'s backlog, when they exist."""
    import asyncio

    from fundpool.bus.status import stream_status as bus_stream_status

    return asyncio.run(bus_stream_status(nats_url, durable, list(pools), prefix=prefix))


# --- the server ------------------------------------------------------------------------------


def engine_lease(db_url: str, pool: str) -> AdvisoryLease:
    """The lease of `pool`'s payment engine among the API workers on one PostgreSQL database."""
    from fundpool.sql.lease import AdvisoryLease

    return AdvisoryLease(Database(db_url), f"fundpool.engine:{pool}")


def payment_engines(store: LedgerStore, config: FundpoolConfig, settings: Settings,
                    congestion: CongestionMeter | None = None) -> Engines:
    """A worker's payment engines: every pool's, here (SQLite), or each pool's while this
    worker holds its lease (PostgreSQL). The live demo's simulator runs with its pool's
    engine."""
    from fundpool.server.engines import Engines
    from fundpool.sim import pace

    rails_dir = settings.rails_dir or settings.data_dir / "rails"
    simulated = declared_pool = None
    if settings.simulate is not None:
        simulated = pace.parse_rate(settings.simulate)
        declared_pool = config.pool(None).id

    def open_work(pool_id: str) -> PoolRuntime:
        return pool_runtime(store, config, config.pool(pool_id), rails_dir=rails_dir,
                            simulate_per_s=simulated if pool_id == declared_pool else None,
                            data_dir=settings.data_dir, congestion=congestion)

    db_url = settings.db_url or ""
    return Engines([p.id for p in config.pools], open_work,
                   (lambda pool: engine_lease(db_url, pool)) if settings.postgres else None)


def build_app(settings: Settings | None = None) -> FastAPI:
    """One worker's app (its own store connections), from `settings` or the environment: the
    API, metrics and health, the alert engine with `alerts`, the simulator with `simulate`,
    and the web console at /console with `console`."""
    from fundpool.pool.config import load_config
    from fundpool.server.main import configure_logging, worker_app
    from fundpool.server.settings import Settings
    from fundpool.server.v1.context import Api

    settings = settings or Settings()
    configure_logging(settings)
    tune_gc()
    store = open_ledger_store(data_dir=settings.data_dir, db_url=settings.db_url)
    prepare_schema(store)
    declared = load_config(settings.config)
    watched = monitor(store, declared)
    from fundpool.routing.congestion import CongestionMeter

    # One per worker: what its engines send congests the rails every router of it prices.
    congestion = CongestionMeter.of(declared)
    db_url = settings.db_url or ""
    services: list[Engines] = []
    engines = None
    if settings.engine:
        engines = payment_engines(store, declared, settings, congestion)
        services.append(engines)
    clock = SystemClock()
    records = payment_records(store)
    dispatched = dispatch_records(store)
    audit = audit_service(store, key=settings.audit_key, data_dir=settings.data_dir,
                          publish_dir=settings.audit_publish_dir, clock=clock)
    # One risk engine per pool for the payout files this worker takes in (the payment engine
    # has its own): its features catch up with the other's decisions before each file.
    screenings: dict[str, RiskEngine] = {}

    def intake_screening(pool: PoolConfig) -> RiskEngine:
        if pool.id not in screenings:
            screenings[pool.id] = risk_engine(store, declared, pool, clock=clock,
                                              ids=process_ids())
        return screenings[pool.id]

    api = Api(monitor=watched, auth=auth_store(store), settings=settings,
              idempotency=kept_answers(store), payment_records=records,
              dispatch_records=dispatched, alert_store=alert_store(store),
              driver_errors=store_errors(), wake_engine=engines.wake if engines else None,
              clock=clock,
              new_ledger=lambda: ledger(store, clock, process_ids()),
              new_payments=lambda pool: payment_service(store, declared, pool, clock=clock,
                                                        ids=process_ids(), records=records),
              new_intake=lambda payments, pool: dispatching(
                  store, declared, pool, clock=clock, payments=payments,
                  records=dispatched, screening=intake_screening(pool),
                  congestion=congestion).dispatcher,
              new_risk=lambda payments: risk_service(store, declared, payments, clock=clock),
              new_approvals=lambda payments, wake: approval_service(
                  store, declared, payments, clock=clock, wake=wake),
              new_audit=lambda: audit,
              new_recon=lambda pool: recon_service(store, declared, pool, clock=clock,
                                                   ids=process_ids(), records=records),
              new_desk=lambda pool, payments, wake: desk(store, declared, pool, clock=clock,
                                                         ids=process_ids(), payments=payments,
                                                         wake=wake))
    rules = engine = None
    if settings.alerts is not None:
        from fundpool.monitoring.alerting.reload import AlertRules

        rules = AlertRules(settings.alerts)
        engine = alert_engine(store, watched, rules)
    app = worker_app(settings, watched, api, open_lease=lambda: leader_lease(db_url),
                     rules=rules, engine=engine, services=services)
    app.state.engines = engines
    app.state.congestion = congestion  # shown by /v1/channels
    if settings.console:
        from fundpool.console import mount

        mount(app, api, storage_secret=settings.console_secret)
    return app

