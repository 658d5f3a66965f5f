"""`fundpool serve`: the HTTP server (server/app.py) on a store, with the live figures kept.

    fundpool serve --config examples/pool.toml --data-dir ./data --port 8000

It opens the store (creating the ledger tables if it has none), loads the configuration, builds
the monitor with the system clock and runs one uvicorn worker: the monitor's follower applies
the outbox in the background while the server answers `/metrics`, `/healthz` and `/readyz`.
One worker because the in-process bus is one per process; more processes share the work
through NATS (docs/monitoring.md, "Scale-out").
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import structlog
import typer

from fundpool.cli.ledger import DataDirOption, DbUrlOption, describe_store, session
from fundpool.cli.pool import ConfigOption, config_path
from fundpool.ledger.service import Ledger
from fundpool.monitoring.service import Monitor
from fundpool.pool.config import load_config
from fundpool.runtime import SystemClock, system_ids

if TYPE_CHECKING:
    from fundpool.monitoring.alerts import AlertEngine

RULES_ENV = "FUNDPOOL_ALERTS"  # the same as `fundpool alerts`
LOG_LEVELS = ("critical", "error", "warning", "info", "debug")


def serve(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65_535,
                                      help="Port to listen on.")] = 8000,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    db_url: DbUrlOption = None,
    ready_lag_max_events: Annotated[int | None, typer.Option(
        "--ready-lag-max-events", min=0, show_default=False,
        help="/readyz answers 503 while a pool's figures are more events than this behind "
             "(default: the server's, 1000).",
    )] = None,
    log_level: Annotated[str, typer.Option(
        "--log-level", help=f"uvicorn's log level: {', '.join(LOG_LEVELS)}.")] = "info",
    rules: Annotated[Path | None, typer.Option(
        "--rules", help=f"Alert rules and SLOs (YAML, reloaded when it changes; default: "
                        f"${RULES_ENV} if set). Without it, every KPI is exported with its "
                        "defaults and no alert is evaluated.", show_default=False)] = None,
    evaluate_every: Annotated[float, typer.Option(
        "--evaluate-every", min=1.0, help="Seconds between alert evaluations.")] = 15.0,
) -> None:
    """Serve the pool's metrics (Prometheus) and health over HTTP, keeping its live figures."""
    if log_level not in LOG_LEVELS:
        raise typer.BadParameter(f"{log_level!r} is not one of {', '.join(LOG_LEVELS)}",
                                 param_hint="'--log-level'")
    # The server's modules load here, not with the CLI: fastapi and uvicorn take a third of a
    # second to import, which every other command would pay.
    import uvicorn

    from fundpool.monitoring.alerts import AlertEngine, AlertRules
    from fundpool.server.alerting import alert_source, kpi_source
    from fundpool.server.app import READY_LAG_MAX_EVENTS, create_app
    from fundpool.server.metrics import MetricSource

    plain_tracebacks()
    rules_path = rules or (Path(os.environ[RULES_ENV]) if os.environ.get(RULES_ENV) else None)
    with session(data_dir, db_url, False, initialise=True) as s:
        s.store.initialise()
        declared = load_config(config_path(config))
        monitor = Monitor(s.store, declared, SystemClock())
        sources: list[MetricSource] = []
        engine: AlertEngine | None = None
        if rules_path is None:
            sources.append(kpi_source(None))
        else:
            held = AlertRules(rules_path)  # a bad file at start is an error (exit 2)
            engine = AlertEngine(Ledger(s.store, SystemClock(), system_ids()), monitor, held)
            sources += [kpi_source(held), alert_source(engine)]
        bound = READY_LAG_MAX_EVENTS if ready_lag_max_events is None else ready_lag_max_events
        app = create_app(monitor, ready_lag_max_events=bound, metric_sources=sources)
        typer.echo(f"fundpool serve: {describe_store(s.store)}, pools "
                   f"{', '.join(p.id for p in declared.pools)}, alert rules "
                   f"{rules_path or 'none'}, on http://{host}:{port}", err=True)
        if engine is not None:
            engine.follow(interval_s=evaluate_every)
        try:
            uvicorn.run(app, host=host, port=port, workers=1, log_level=log_level,
                        access_log=log_level == "debug", lifespan="on")
        finally:
            if engine is not None:
                engine.stop()


def plain_tracebacks() -> None:
    """Log as structlog does by default, but print a traceback without its local variables:
    a long-running server logs the failures it survives, and a frame's locals may hold a store
    URL with its password."""
    structlog.configure(processors=[
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.StackInfoRenderer(),
        structlog.dev.set_exc_info,
        structlog.processors.TimeStamper(fmt="%Y-%m-%d %H:%M:%S", utc=True),
        structlog.dev.ConsoleRenderer(exception_formatter=structlog.dev.plain_traceback),
    ])
