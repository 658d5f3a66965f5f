"""`fundpool serve`: the HTTP server (server/app.py) on a store, with the live figures kept.

    fundpool serve --config examples/pool.toml --data-dir ./data --port 8000

It opens the store (creating the ledger tables if it has none), loads the configuration, builds
the monitor with the system clock and runs one uvicorn worker: the monitor's follower applies
the outbox in the background while the server answers `/metrics`, `/healthz` and `/readyz`.
One worker because the in-process bus is one per process; more processes share the work
through NATS (docs/monitoring.md, "Scale-out").
"""

from __future__ import annotations

from typing import Annotated

import structlog
import typer

from fundpool.cli.ledger import DataDirOption, DbUrlOption, describe_store, session
from fundpool.cli.pool import ConfigOption, config_path
from fundpool.monitoring.service import Monitor
from fundpool.pool.config import load_config
from fundpool.runtime import SystemClock

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
) -> None:
    """Serve the pool's metrics (Prometheus) and health over HTTP, keeping its live figures."""
    if log_level not in LOG_LEVELS:
        raise typer.BadParameter(f"{log_level!r} is not one of {', '.join(LOG_LEVELS)}",
                                 param_hint="'--log-level'")
    # The server's modules load here, not with the CLI: fastapi and uvicorn take a third of a
    # second to import, which every other command would pay.
    import uvicorn

    from fundpool.server.app import READY_LAG_MAX_EVENTS, create_app

    plain_tracebacks()
    with session(data_dir, db_url, False, initialise=True) as s:
        s.store.initialise()
        declared = load_config(config_path(config))
        monitor = Monitor(s.store, declared, SystemClock())
        bound = READY_LAG_MAX_EVENTS if ready_lag_max_events is None else ready_lag_max_events
        app = create_app(monitor, ready_lag_max_events=bound)
        typer.echo(f"fundpool serve: {describe_store(s.store)}, pools "
                   f"{', '.join(p.id for p in declared.pools)}, on http://{host}:{port}", err=True)
        uvicorn.run(app, host=host, port=port, workers=1, log_level=log_level,
                    access_log=log_level == "debug", lifespan="on")


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
