"""The `/v1` API: routers, the gate (authentication, rate limit) and request middleware.

`install_v1(app, api)` mounts every router on the app `server/app.py` builds; each router is a
`SecuredRouter`, so no route can be added without its permission (security.py).
"""

from __future__ import annotations

from fastapi import FastAPI

from fundpool.server.v1.context import Api
from fundpool.server.v1.http import RequestContext
from fundpool.server.v1.security import Gate

UPLOAD_PATHS = ("/v1/payments/batches",)


def install_v1(app: FastAPI, api: Api) -> None:
    from fundpool.server.v1 import auth, ledger, pool

    app.state.api = api
    for module in (ledger, pool, auth):
        app.include_router(module.router, prefix="/v1")
    for name in ("payments", "channels", "monitoring", "stream"):
        try:
            module = __import__(f"fundpool.server.v1.{name}", fromlist=["router"])
        except ModuleNotFoundError:
            continue
        app.include_router(module.router, prefix="/v1")
    app.add_middleware(Gate, authenticator=api.authenticator, limiter=api.limiter)
    app.add_middleware(RequestContext, body_max_bytes=api.settings.body_max_bytes,
                       upload_max_bytes=api.settings.upload_max_bytes,
                       upload_paths=UPLOAD_PATHS, access_log=api.settings.access_log)
