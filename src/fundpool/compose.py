"""The composition root: the one module that knows every adapter and builds the services on
them, for the server, the CLI and the simulator alike.

    store = open_ledger_store(data_dir=Path("data"))   # SQLite, or PostgreSQL by URL
    payments = payment_service(store, config, pool)     # Ledger + PaymentService
    run = dispatching(store, config, pool)              # + simulated rails, router, dispatcher
    app = build_app(settings)                           # one API worker (uvicorn factory)

Everything else receives what it needs: the services declare ports (`ledger/ports.py`,
`payments/ports.py`, ...), the stores implement them, and only this module puts the two
together. `build_app` is the factory `fundpool serve` runs in each uvicorn worker
(`uvicorn --factory fundpool.compose:build_app`); it mounts the web console when the settings
ask for it, so that the server imports neither the console nor the CLI.

The server's, the console's and the alert engine's modules (FastAPI, NiceGUI, pydantic) load
inside the functions that need them: a CLI command that imports this module starts without
them.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from fundpool.core.clock import Clock, IdSource, Uuid7Ids
from fundpool.ledger.ports import LedgerStore
from fundpool.ledger.service import Ledger
from fundpool.monitoring.service import Monitor
from fundpool.payments.dispatch import Dispatcher
from fundpool.payments.ports import PaymentStore
from fundpool.payments.service import PaymentService
from fundpool.pool.config import FundpoolConfig, PoolConfig, load_config
from fundpool.runtime import SystemClock, system_ids, tune_gc
from fundpool.sim import pace
from fundpool.sim.rails import payout_router, simulated_rails
from fundpool.sim.service import SEED_DEFAULT, TrafficService
from fundpool.sim.traffic import Simulation
from fundpool.stores import driver_errors, open_store, payment_store
from fundpool.stores.dispatch_sql import DispatchReads, SqlDispatchRecords
from fundpool.stores.events_sql import OutboxReader, outbox_reader
from fundpool.stores.projection_sql import ProjectionStore

if TYPE_CHECKING:
    from fastapi import FastAPI

    from fundpool.auth.store import AuthStore
    from fundpool.monitoring.alerting.engine import AlertEngine
    from fundpool.monitoring.alerting.reload import AlertRules
    from fundpool.server.settings import Settings
    from fundpool.stores.alerts_sql import SqlAlertStore
    from fundpool.stores.sqlite import SqliteStore


# --- stores ----------------------------------------------------------------------------------


def open_ledger_store(*, data_dir: str | Path | None = None,
                      db_url: str | None = None) -> LedgerStore:
    """The ledger store `db_url` names (`sqlite:///PATH`, `postgresql://…?schema=NAME`), else
    the SQLite file in `data_dir` ($FUNDPOOL_DB_URL, $FUNDPOOL_DATA_DIR, ./data). A URL of
    another kind is a `ValueError`. Its schema is created by `initialise()`, not here."""
    return open_store(data_dir=data_dir, db_url=db_url)


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


def dispatch_records(store: LedgerStore) -> SqlDispatchRecords:
    """The dispatcher's routes, batches and outcomes, beside the payments (its port)."""
    return SqlDispatchRecords(store)


def dispatch_reads(store: LedgerStore) -> DispatchReads:
    """What the dispatcher recorded, for reading: routes, batches, savings."""
    return dispatch_records(store).reads


def outbox(store: LedgerStore) -> OutboxReader:
    """The events the ledger's transactions wrote, in commit order."""
    return outbox_reader(store)


def auth_store(store: LedgerStore) -> AuthStore:
    """API keys, users and sessions, in the same database (and schema) as the ledger."""
    from fundpool.auth.store import AuthStore

    return AuthStore.beside(store)


# --- services --------------------------------------------------------------------------------


def ledger(store: LedgerStore, clock: Clock | None = None, ids: IdSource | None = None) -> Ledger:
    """The ledger service on `store`, on the wall clock and system ids unless given others."""
    return Ledger(store, clock or SystemClock(), ids or system_ids())


def payment_service(store: LedgerStore, config: FundpoolConfig, pool: PoolConfig, *,
                    clock: Clock | None = None, ids: IdSource | None = None) -> PaymentService:
    """The payments of `pool`, on their ledger."""
    ids = ids or system_ids()
    return PaymentService(ledger(store, clock, ids), payment_records(store), config, pool, ids)


def monitor(store: LedgerStore, config: FundpoolConfig, clock: Clock | None = None) -> Monitor:
    """The live figures of `store`'s pools, kept in projections beside the ledger."""
    return Monitor(store, config, clock or SystemClock(),
                   projections=ProjectionStore.beside(store))


def alert_store(store: LedgerStore) -> SqlAlertStore:
    """The alerts raised and their life, beside the ledger."""
    from fundpool.stores.alerts_sql import SqlAlertStore

    return SqlAlertStore(store)


def alert_engine(store: LedgerStore, watched: Monitor, rules: AlertRules) -> AlertEngine:
    """The alert rules evaluated on `watched`'s figures; alerts kept beside the ledger."""
    from fundpool.monitoring.alerting.engine import AlertEngine

    return AlertEngine(ledger(store), watched, rules, table=alert_store(store))


@dataclass(frozen=True, slots=True)
class Dispatching:
    """The pool, its payment service and a dispatcher on the wall clock, with one simulated
    rail per channel of the pool and the learning router (as in sim/traffic.py). The rails
    live in this process: what they have not reported when it ends, they never will."""

    config: FundpoolConfig
    pool: PoolConfig
    payments: PaymentService
    dispatcher: Dispatcher


def dispatching(store: LedgerStore, config: FundpoolConfig, pool: PoolConfig) -> Dispatching:
    clock, ids = SystemClock(), system_ids()
    payments = payment_service(store, config, pool, clock=clock, ids=ids)
    seed = secrets.randbits(32)
    instance = format(clock.now_us(), "x")  # this process's rail references are its own
    rails = simulated_rails(config, pool, seed=seed, instance=instance)
    router = payout_router(config, rails, seed=seed)
    return Dispatching(config, pool, payments,
                       Dispatcher(payments, rails, router, clock, ids,
                                  records=dispatch_records(store)))


# --- the simulator ---------------------------------------------------------------------------


def simulation(store: LedgerStore, config: FundpoolConfig, pool: PoolConfig, *, seed: int,
               clock: Clock, ids: IdSource) -> Simulation:
    """The traffic simulator on `store`, on `clock` (a `ManualClock` for a deterministic run,
    a `ScaledClock` or the wall clock for a live one)."""
    return Simulation(ledger(store, clock, ids), config, pool, seed=seed, clock=clock, ids=ids)


def traffic_service(store: LedgerStore, config: FundpoolConfig, pool: PoolConfig, *,
                    rate_per_s: float, seed: int = SEED_DEFAULT) -> TrafficService:
    """The simulator as a service of the server, on the wall clock (`serve --simulate`)."""

    def open_simulation() -> Simulation:
        clock = SystemClock()
        # A seed per start: a restarted server's payments never meet the previous run's keys.
        ids = Uuid7Ids.seeded(seed + clock.now_us())
        return simulation(store, config, pool, seed=seed, clock=clock, ids=ids)

    return TrafficService(open_simulation, rate_per_s=rate_per_s)


# --- the server ------------------------------------------------------------------------------


def build_app(settings: Settings | None = None) -> FastAPI:
    """One worker's app (its own store connections), from `settings` or the environment: the
    API, metrics and health, the alert engine with `alerts`, the simulator with `simulate`,
    and the web console at /console with `console`."""
    from fundpool.server.main import configure_logging, worker_app
    from fundpool.server.settings import Settings
    from fundpool.server.v1.context import Api
    from fundpool.server.v1.idempotency import IdempotencyStore

    settings = settings or Settings()
    configure_logging(settings)
    tune_gc()
    store = open_ledger_store(data_dir=settings.data_dir, db_url=settings.db_url)
    store.initialise()
    declared = load_config(settings.config)
    watched = monitor(store, declared)
    auth = auth_store(store)
    auth.initialise()
    api = Api(monitor=watched, auth=auth, settings=settings,
              idempotency=IdempotencyStore.beside(store))
    rules = engine = None
    if settings.alerts is not None:
        from fundpool.monitoring.alerting.reload import AlertRules

        rules = AlertRules(settings.alerts)
        engine = alert_engine(store, watched, rules)
    services: list[TrafficService] = []
    if settings.simulate is not None:
        services.append(traffic_service(store, declared, declared.pool(None),
                                        rate_per_s=pace.parse_rate(settings.simulate)))
    app = worker_app(settings, watched, api, rules=rules, engine=engine, services=services)
    if settings.console:
        from fundpool.console import mount

        mount(app, api, storage_secret=settings.console_secret)
    return app

