"""`/v1/pools`: the configured pools and each one's view by state (the same figures as
`fundpool pool view`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Request
from pydantic import BaseModel

from fundpool.auth.roles import P
from fundpool.pool.docs import view_doc
from fundpool.pool.view import pool_view
from fundpool.server.problems import store_errors
from fundpool.server.v1.context import api_of
from fundpool.server.v1.problems import PROBLEMS
from fundpool.server.v1.security import SecuredRouter, needs

router = SecuredRouter(prefix="/pools", tags=["pool"])
PoolPath = Annotated[str, Path(max_length=64)]


class PoolOut(BaseModel):
    id: str
    name: str
    reporting_currency: str
    assets: list[str]
    channels: list[str]


class PoolViewOut(BaseModel):
    pool: str
    as_of_seq: int
    reporting_currency: str
    assets: list[dict[str, Any]]
    reporting_total: dict[str, str]
    missing_rates: list[str]


@router.get("", response_model=list[PoolOut], openapi_extra=needs(P.POOL_READ),
            responses=PROBLEMS)
def list_pools(request: Request) -> list[dict[str, object]]:
    """The pools of the configuration."""
    config = api_of(request).config
    return [{"id": pool.id, "name": pool.name, "reporting_currency": pool.reporting_currency,
             "assets": sorted({a for c in pool.channels for a in config.channel(c).assets}),
             "channels": list(pool.channels)}
            for pool in config.pools]


@router.get("/{pool_id}/view", response_model=PoolViewOut, openapi_extra=needs(P.POOL_READ),
            responses=PROBLEMS)
def get_pool_view(pool_id: PoolPath, request: Request) -> dict[str, object]:
    """The pool by state (available, locked, in transit, pending settlement, fees) per asset
    and channel, per asset, and in the reporting currency."""
    api = api_of(request)
    pool = api.pool(pool_id)
    with store_errors():
        shown = pool_view(api.store, api.config, pool, api.config.rates_for(pool))
    return view_doc(shown)
