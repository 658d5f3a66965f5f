"""The web console: the fund-pool interface, mounted on the API's own FastAPI app.

    from fundpool.console import mount
    mount(app, api)            # /console: overview, transaction stream, operations, sign-in

Built with NiceGUI (docs/adr/0013-console.md): pages are Python, rendered by Vue/Quasar in the
browser with ECharts and AG Grid from NiceGUI's own wheel, so nothing loads from a CDN. The
console is a client of the API in the same process (console/context.py): it sees and does
exactly what the signed-in user's roles allow. NiceGUI keeps each page's state in this
process, so the console runs in one worker (`fundpool serve --workers 1`, the default; with
PostgreSQL, run more API workers beside a console process of one).
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI

    from fundpool.server.v1.context import Api

_mounted = False


class ConsoleAlreadyMounted(RuntimeError):
    """NiceGUI is one app per process: the console mounts on one FastAPI app only."""


def mount(app: FastAPI, api: Api, *, storage_secret: str | None = None) -> None:
    """Serve the console under `/console` on `app`, as a client of `api`'s routes."""
    global _mounted
    if _mounted:
        raise ConsoleAlreadyMounted("the console is already mounted in this process")
    from nicegui import ui

    from fundpool.console import context
    from fundpool.console.pages import register

    context.install(context.Console(app=app, api=api))
    register()
    ui.run_with(app, mount_path="/console", title="fundpool", favicon="💧",
                storage_secret=storage_secret or secrets.token_urlsafe(32),
                show_welcome_message=False, reconnect_timeout=10.0)
    _mounted = True
