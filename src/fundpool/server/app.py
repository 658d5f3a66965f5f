"""The fundpool server: an app factory around one `Monitor`.

    app = create_app(monitor, driver_errors=errors)                # follows the outbox
    app = create_app(monitor, driver_errors=errors, follow=False)  # the caller steps it

`driver_errors` are the database drivers' error classes (`fundpool.compose.store_errors()`):
the server imports no store, so it is told what a failing database raises.

Operational routes live here: `/metrics` (Prometheus), `/healthz` (the process answers) and
`/readyz` (the store answers and the live figures are close enough behind the ledger). The API
adds its `/v1` routers in `create_app` (`app.include_router(...)`) and reads the monitor from
`request.app.state.monitor` (`monitor_of`). Every error is a problem document
(server/problems.py).

Routes that read the store are plain `def`s: FastAPI runs them in its thread pool, so a slow
query never blocks the event loop.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Protocol

from fastapi import FastAPI, Request, Response
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from fundpool import __version__
from fundpool.monitoring.service import Monitor
from fundpool.server.front_app import FundpoolApp
from fundpool.server.metrics import FundpoolCollector, MetricSource
from fundpool.server.problems import (
    DriverErrors,
    ProjectionLagging,
    install_problem_handlers,
    store_errors,
)

if TYPE_CHECKING:
    from fundpool.server.v1.context import Api


class Service(Protocol):
    """Something that runs beside the app, from its start-up to its shut-down."""

    def start(self) -> None: ...

    def stop(self) -> None: ...


API_DESCRIPTION = """The fundpool API: the ledger, the pool, payments, channels and routing, live
monitoring and an event stream. Every `/v1` route needs `Authorization: Bearer <API key or
session token>` (or the console's session cookie) and names the one permission it needs
(`x-permission`). Errors are RFC 9457 problem documents with a stable `code`. Every POST takes
an `Idempotency-Key`. See docs/api.md."""

# Ready while every pool's projection is at most this many events behind the outbox: a feed
# applies thousands of events a second, so more than this is a server still catching up (after
# a start on a long log) or a feed that stopped.
READY_LAG_MAX_EVENTS = 1_000
FOLLOW_INTERVAL_S = 0.05


def create_app(
    monitor: Monitor,
    *,
    driver_errors: DriverErrors,
    follow: bool = True,
    follow_interval_s: float = FOLLOW_INTERVAL_S,
    ready_lag_max_events: int = READY_LAG_MAX_EVENTS,
    metric_sources: Sequence[MetricSource] = (),
    api: Api | None = None,
    services: Sequence[Service] = (),
) -> FastAPI:
    """The server of `monitor`'s store and pools.

    With `follow`, the app's lifespan runs the monitor's follower (the in-process bus) from
    start-up to shut-down. `metric_sources` are extra Prometheus metric sources, run at each
    scrape after the core families (server/metrics.py, `MetricSource`). With `api` (the
    credentials, settings and kept responses of the `/v1` routes), the API is mounted too.
    A `driver_errors` raised by a route is a `store_error` problem (503)."""
    if ready_lag_max_events < 0:
        raise ValueError("ready_lag_max_events is never negative")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if follow:
            monitor.follow(interval_s=follow_interval_s)
        for service in services:
            service.start()
        if api is not None:
            await api.start()
        try:
            yield
        finally:
            if api is not None:
                await api.stop()
            for service in reversed(services):
                service.stop()
            if follow:
                monitor.stop()
            if api is not None:
                api.close()

    app = FundpoolApp(
        title="fundpool",
        summary="Treasury fund-pool engine",
        version=__version__,
        description=API_DESCRIPTION,
        lifespan=lifespan,
        docs_url="/docs" if api is not None else None,
        redoc_url=None,
        openapi_url="/openapi.json" if api is not None else None,
    )
    registry = CollectorRegistry(auto_describe=False)
    collector = FundpoolCollector(monitor, metric_sources)
    registry.register(collector)
    app.state.monitor = monitor
    app.state.registry = registry
    app.state.ready_lag_max_events = ready_lag_max_events
    install_problem_handlers(app, driver_errors)
    if api is not None:
        from fundpool.server.v1 import install_v1

        install_v1(app, api)

    @app.get("/healthz", tags=["operations"])
    def healthz() -> dict[str, str]:
        """The process is alive (it reads nothing)."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"])
    def readyz(request: Request) -> dict[str, object]:
        """Ready to serve: the store answers, and no pool's projection is more than the bound
        behind the outbox. Else 503 with a problem (`store_error`, `store_not_initialised`,
        `projection_lagging`)."""
        current = monitor_of(request)
        bound = int(request.app.state.ready_lag_max_events)
        with store_errors(driver_errors):
            current.store.head()  # store_not_initialised when the store has no ledger
            lags = {pool.id: current.lag(pool.id) for pool in current.config.pools}
        behind = {pool: lag for pool, lag in lags.items() if lag > bound}
        if behind:
            raise ProjectionLagging(
                f"{len(behind)} pool(s) more than {bound} events behind the outbox",
                lag_events=behind, lag_max_events=bound,
            )
        return {"status": "ready", "lag_events": lags}

    @app.get("/metrics", tags=["operations"], response_class=Response)
    def metrics(request: Request) -> Response:
        """Prometheus exposition (text, or OpenMetrics when the scraper asks for it)."""
        encoder, content_type = choose_encoder(request.headers.get("accept", ""))
        with store_errors(driver_errors):
            body = encoder(request.app.state.registry)
        return Response(body, media_type=content_type)

    return app


def monitor_of(request: Request) -> Monitor:
    monitor: Monitor = request.app.state.monitor
    return monitor
