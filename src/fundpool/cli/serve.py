"""`fundpool serve`: the HTTP server, the API `/v1` and the operational routes, on a store.

    fundpool serve --config examples/pool.toml --data-dir ./data --port 8000
    FUNDPOOL_DB_URL=postgresql://... fundpool serve --workers 4
    fundpool serve --settings deploy/server.toml

Settings come from the file named by `--settings` (or $FUNDPOOL_SETTINGS), the environment
(`FUNDPOOL_*`) and these flags, the flags winning (server/settings.py, docs/configuration.md).
The command checks them, creates the ledger tables if the store has none, then runs uvicorn
with `--workers` processes on the app factory `fundpool.compose:build_app` (the composition
root: the server, and the console when asked for): each worker opens its own connections.
Several workers need PostgreSQL; SQLite serves from one.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from fundpool import compose
from fundpool.cli.options import parse_rate
from fundpool.cli.output import report_error
from fundpool.cli.session import describe_store
from fundpool.core.errors import FundpoolError

LOG_LEVELS = ("critical", "error", "warning", "info", "debug")


def serve(
    host: Annotated[str | None, typer.Option("--host", help="Address to listen on "
                                             "[default: 127.0.0.1].", show_default=False)] = None,
    port: Annotated[int | None, typer.Option("--port", min=0, max=65_535, show_default=False,
                                             help="Port to listen on [default: 8000].")] = None,
    workers: Annotated[int | None, typer.Option(
        "--workers", min=1, max=64, show_default=False,
        help="Worker processes [default: 1]; more than one needs PostgreSQL.")] = None,
    settings_file: Annotated[Path | None, typer.Option(
        "--settings", show_default=False,
        help="Server settings (TOML; default: $FUNDPOOL_SETTINGS if set).")] = None,
    config: Annotated[Path | None, typer.Option(
        "--config", show_default=False,
        help="Pool configuration (TOML; default: $FUNDPOOL_CONFIG, then ./fundpool.toml).")
    ] = None,
    data_dir: Annotated[Path | None, typer.Option(
        "--data-dir", show_default=False,
        help="Directory of the embedded SQLite store (default: $FUNDPOOL_DATA_DIR, ./data).")
    ] = None,
    db_url: Annotated[str | None, typer.Option(
        "--db-url", show_default=False,
        help="Store URL: sqlite:///PATH or postgresql://... (default: $FUNDPOOL_DB_URL).")
    ] = None,
    ready_lag_max_events: Annotated[int | None, typer.Option(
        "--ready-lag-max-events", min=0, show_default=False,
        help="/readyz answers 503 while a pool's figures are more events than this behind "
             "[default: 1000].")] = None,
    log_level: Annotated[str | None, typer.Option(
        "--log-level", show_default=False,
        help=f"Least severe level logged: {', '.join(LOG_LEVELS)} [default: info].")] = None,
    log_json: Annotated[bool | None, typer.Option(
        "--log-json/--log-text", show_default=False,
        help="Log one JSON object per line [default: text].")] = None,
    rules: Annotated[Path | None, typer.Option(
        "--rules", show_default=False,
        help="Alert rules and SLOs (YAML, reloaded when it changes; default: $FUNDPOOL_ALERTS "
             "if set). Without it, every KPI is exported with its defaults and no alert is "
             "evaluated.")] = None,
    evaluate_every: Annotated[float | None, typer.Option(
        "--evaluate-every", min=1.0, show_default=False,
        help="Seconds between alert evaluations [default: 15].")] = None,
    console: Annotated[bool | None, typer.Option(
        "--console/--no-console", show_default=False,
        help="Serve the web console at /console (one worker) [default: no].")] = None,
    simulate: Annotated[str | None, typer.Option(
        "--simulate", show_default=False,
        help="Run the traffic simulator in the server at this rate (50/s): a live demo pool "
             "(one worker).")] = None,
) -> None:
    """Serve the API (/v1), the pool's metrics (Prometheus) and health over HTTP."""
    if log_level is not None and log_level not in LOG_LEVELS:
        raise typer.BadParameter(f"{log_level!r} is not one of {', '.join(LOG_LEVELS)}",
                                 param_hint="'--log-level'")
    # The server's modules load here, not with the CLI: fastapi and uvicorn take a third of a
    # second to import, which every other command would pay.
    import uvicorn
    from pydantic import ValidationError

    from fundpool.monitoring.alerting.reload import AlertRules
    from fundpool.pool.config import load_config
    from fundpool.server.settings import as_environment, load_settings

    try:
        settings = load_settings(
            settings_file, host=host, port=port, workers=workers, config=config,
            data_dir=data_dir, db_url=db_url, ready_lag_max_events=ready_lag_max_events,
            log_level=log_level, log_json=log_json, alerts=rules,
            evaluate_every_s=evaluate_every, console=console, simulate=simulate)
    except (ValidationError, ValueError) as error:
        typer.echo(f"error[invalid_settings]: {error}", err=True)
        raise typer.Exit(2) from None
    # Check what every worker will open before starting any: a bad file is one clear error
    # here rather than N tracebacks.
    try:
        declared = load_config(settings.config)
        if settings.alerts is not None:
            AlertRules(settings.alerts)
        store = compose.open_ledger_store(data_dir=settings.data_dir, db_url=settings.db_url)
        try:
            compose.prepare_schema(store)
            where = describe_store(store)
        finally:
            store.close()
    except FundpoolError as error:
        report_error(error, False)
        raise typer.Exit(2) from None
    if settings.simulate is not None:
        parse_rate(settings.simulate, option="--simulate")
    os.environ.update(as_environment(settings))
    typer.echo(f"fundpool serve: {where}, pools {', '.join(p.id for p in declared.pools)}, "
               f"{settings.workers} worker(s), alert rules {settings.alerts or 'none'}, on "
               f"http://{settings.host}:{settings.port} (API docs at /docs"
               + (", console at /console/" if settings.console else "") + ")", err=True)
    uvicorn.run("fundpool.compose:build_app", factory=True, host=settings.host,
                port=settings.port, workers=settings.workers, log_level=settings.log_level,
                access_log=False, lifespan="on", loop="uvloop", http="httptools",
                ws="websockets-sansio", timeout_graceful_shutdown=10)
