"""`/v1/pools`: the configured pools and each one's view by state (the same figures as
`fundpool pool view`), now or as it stood at a past instant or journal seq."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Query, Request
from pydantic import BaseModel

from fundpool.auth.roles import P
from fundpool.core.errors import FundpoolError
from fundpool.ledger.service import seq_at
from fundpool.pool.docs import view_doc
from fundpool.pool.view import pool_view, pool_view_at
from fundpool.server.v1.context import api_of
from fundpool.server.v1.problems import PROBLEMS, parse_instant
from fundpool.server.v1.security import SecuredRouter, needs

router = SecuredRouter(prefix="/pools", tags=["pool"])
PoolPath = Annotated[str, Path(max_length=64)]
SEQ_MAX = 2**63 - 1  # a journal seq is a signed 64-bit integer in both stores
AtQuery = Annotated[str | None, Query(
    max_length=64, description="ISO-8601 with a zone, e.g. 2026-11-24T10:00:00Z: the pool as "
    "it stood then (every entry made at or before it). Not with `seq`.")]
SeqQuery = Annotated[int | None, Query(
    ge=0, le=SEQ_MAX, description="A journal seq: the pool right after that entry (0: before "
    "the first). Not with `at`; beyond the head is `seq_beyond_head`.")]


class ConflictingParameters(FundpoolError):
    code = "conflicting_parameters"
    title = "these query parameters cannot be given together"


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
def get_pool_view(pool_id: PoolPath, request: Request, at: AtQuery = None,
                  seq: SeqQuery = None) -> dict[str, object]:
    """The pool by state (available, locked, in transit, pending settlement, fees) per asset
    and channel, per asset, and in the reporting currency: now, or as it stood at `at` or
    right after journal entry `seq` (at most one of them). `as_of_seq` is the entry the
    figures stand at."""
    if at is not None and seq is not None:
        raise ConflictingParameters("give `at` or `seq`, not both", parameters=["at", "seq"])
    api = api_of(request)
    pool = api.pool(pool_id)
    at_us = None if at is None else parse_instant(at)
    rates = api.config.rates_for(pool)
    with api.store_errors():
        if at_us is not None:
            seq = seq_at(api.store, at_us)
        if seq is None:
            shown = pool_view(api.store, api.config, pool, rates)
        else:
            shown = pool_view_at(api.store, api.config, pool, rates, seq)
    return view_doc(shown)
