"""The `/v1` API: routers, the gate (authentication, rate limit), request middleware and the
front door of the hot path (front.py).

`install_v1(app, api)` mounts every router on the app `server/app.py` builds; each router is a
`SecuredRouter`, so no route can be added without its permission (security.py). The package
imports nothing at load: `fundpool.server.v1.models` is shared with the Python client, which
does not need FastAPI.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from starlette.types import ASGIApp

    from fundpool.server.front_app import FundpoolApp
    from fundpool.server.v1.context import Api

UPLOAD_PATHS = ("/v1/payments/batches", "/v1/recon/imports")


def install_v1(app: FundpoolApp, api: Api) -> None:
    from fundpool.server.v1 import (
        approvals,
        audit,
        auth,
        channels,
        ledger,
        monitoring,
        payments,
        pool,
        recon,
        risk,
        stream,
        treasury,
    )
    from fundpool.server.v1.front import Front
    from fundpool.server.v1.http import RequestContext
    from fundpool.server.v1.security import Gate

    app.state.api = api
    for module in (ledger, pool, payments, channels, monitoring, risk, approvals, audit, recon,
                   treasury, stream, auth):
        app.include_router(module.router, prefix="/v1")
    app.add_middleware(Gate, authenticator=api.authenticator, limiter=api.limiter, api=api)
    app.add_middleware(RequestContext, body_max_bytes=api.settings.body_max_bytes,
                       upload_max_bytes=api.settings.upload_max_bytes,
                       upload_paths=UPLOAD_PATHS, access_log=api.settings.access_log)

    def front(stack: ASGIApp) -> ASGIApp:
        return Front(stack, api, authenticator=api.authenticator, limiter=api.limiter,
                     body_max_bytes=api.settings.body_max_bytes,
                     access_log=api.settings.access_log)

    app.front = front
