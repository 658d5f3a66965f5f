"""`/v1/channels`: the configured rails (kinds, assets, fee schedules, limits, cut-off windows,
batch sizes, dynamic fees with their congestion now), the routing decisions the dispatcher
recorded with every candidate's scores, and the batches it sent with what batching saved.

A channel's congestion is measured by the process that sends on it (routing/congestion.py):
the composition root hands this app its `CongestionMeter` as `app.state.congestion`; without
one (no engine in this worker, or no channel priced) a channel's dynamic fee shows its
configuration and no `state`.

Amounts are decimal text at the asset's scale with the minor units beside them as strings.
Routing scores (success probabilities, costs in minor units) are floats: they only rank rails,
and no posted amount is derived from them (routing/decision.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import Path, Query, Request
from pydantic import BaseModel, Field

from fundpool.auth.roles import P
from fundpool.channels.congestion import (
    DynamicFee,
    FeeWindow,
    dynamic_fee_minor,
    multiplier_text,
)
from fundpool.core.errors import FundpoolError
from fundpool.core.money import Asset
from fundpool.ledger.docs import amount_fields, iso
from fundpool.payments.docs import candidate_doc, route_decision
from fundpool.payments.records import BatchRecord, RouteRecord
from fundpool.pool.config import WEEKDAYS as WEEKDAY_NAMES
from fundpool.pool.config import ChannelConfig, ChannelKind, CutOffWindow, InvalidConfig
from fundpool.routing.congestion import CongestionMeter
from fundpool.routing.decision import CandidateScore, RoutingDecision
from fundpool.server.v1.context import Api, api_of
from fundpool.server.v1.pagination import (
    CursorQuery,
    InvalidCursor,
    LimitQuery,
    Page,
    make_cursor,
    read_cursor,
)
from fundpool.server.v1.problems import PROBLEMS
from fundpool.server.v1.security import SecuredRouter, needs

router = SecuredRouter(prefix="/channels", tags=["channels"])

CONFIG_ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"  # pool and channel ids (pool/config.py)
ChannelPath = Annotated[str, Path(pattern=CONFIG_ID_PATTERN, description="The channel's id.")]
ChannelQuery = Annotated[str | None, Query(pattern=CONFIG_ID_PATTERN,
                                           description="Only this channel's.")]
PoolQuery = Annotated[str | None, Query(pattern=CONFIG_ID_PATTERN,
                                        description="Only the channels of this pool.")]
PaymentQuery = Annotated[str | None, Query(pattern=r"^[!-~]{1,64}$",
                                           description="Only this payment's attempts.")]


class UnknownChannel(FundpoolError):
    code = "unknown_channel"
    title = "no such channel in the configuration"


# --- wire models -----------------------------------------------------------------------------


class FeeOut(BaseModel):
    asset: str
    fixed: str
    fixed_minor: str
    bps: int = Field(description="Basis points of a payout's amount, on top of `fixed`.")
    inbound_bps: int = Field(description="Basis points of a deposit's amount.")


class LimitOut(BaseModel):
    asset: str
    min: str
    min_minor: str
    max: str | None = Field(description="Null: no maximum.")
    max_minor: str | None


class CutOffOut(BaseModel):
    days: list[str] = Field(description="mon ... sun.")
    open: str = Field(description="HH:MM UTC, included.")
    close: str = Field(description="HH:MM UTC, excluded (24:00: the end of the day).")


class FeeWindowOut(BaseModel):
    from_hour_utc: int = Field(description="The window's first hour of every day, UTC.")
    to_hour_utc: int = Field(description="The hour it ends at, excluded (24: midnight).")
    multiplier: str = Field(description="Decimal text, exact.")


class CongestionOut(BaseModel):
    """The channel's congestion as this worker measures it, now."""

    at: str
    at_us: int
    base_fee: str = Field(description="The congestion base fee now.")
    base_fee_minor: str
    interval_started_at: str
    used_in_interval: int = Field(description="Payments the rail took in this interval so "
                                  "far (the next base fee moves by how far this is from "
                                  "the target).")
    window: FeeWindowOut | None = Field(description="The window of this hour; null: none.")
    fee: str = Field(description="What a payment in the asset pays now on top of the rail's "
                     "own fee, before any risk grade's multiplier.")
    fee_minor: str
    explanation: str


class DynamicFeeOut(BaseModel):
    asset: str = Field(description="The asset the fee is in; only payments in it pay it.")
    base: str = Field(description="The floor, and the base fee of a rail not congested.")
    base_minor: str
    ceiling: str = Field(description="The most the base fee rises to.")
    ceiling_minor: str
    target_per_interval: int = Field(description="Payments per interval the rail takes "
                                     "without congestion.")
    interval_s: int
    max_change: str = Field(description="The most the base fee moves per interval, as a "
                            "share of itself (decimal text).")
    windows: list[FeeWindowOut]
    risk: dict[str, str] = Field(description="Multiplier per risk grade (allow, review, "
                                 "hold), decimal text.")
    state: CongestionOut | None = Field(description="Null: this worker does not measure the "
                                        "channel (its engine runs elsewhere, or none runs).")


class ChannelOut(BaseModel):
    id: str
    name: str
    kind: ChannelKind
    assets: list[str]
    pools: list[str] = Field(description="The pools that use the channel.")
    carries_payouts: bool = Field(description="False for a book rail: it only moves money "
                                  "between the pool's own accounts.")
    fees: list[FeeOut]
    limits: list[LimitOut]
    cutoff: list[CutOffOut] = Field(description="When the rail takes work; empty: always.")
    batch_size: int = Field(description="The most payments the rail takes in one submission.")
    dynamic_fee: DynamicFeeOut | None = Field(None, description="The congestion price on top "
                                              "of the fees; null: none.")


class CandidateOut(BaseModel):
    """One rail's part in a decision; the scores are null when it was not eligible."""

    channel: str
    eligible: bool
    reason: str | None = Field(None, description="Why it was not eligible (a stable code).")
    fee: str | None = None
    fee_minor: str | None = None
    latency_us: int | None = None
    quoted_success_probability: float | None = None
    posterior_mean: float | None = None
    sampled_success_probability: float | None = None
    time_cost_minor: float | None = None
    retry_cost_minor: float | None = None
    expected_cost_minor: float | None = Field(None, description="What the router minimised.")
    dynamic_fee: str | None = Field(None, description="The congestion fee inside `fee`; null: "
                                    "the rail has none.")
    dynamic_fee_minor: str | None = None
    fee_explanation: str | None = Field(None, description="How the congestion fee was made: "
                                        "base fee × window × risk grade multipliers.")


class RouteDecisionOut(BaseModel):
    payment_id: str
    attempt: int = Field(description="1, then one more per failover.")
    at: str
    at_us: int
    asset: str | None
    amount: str | None
    amount_minor: str | None
    channel: str | None = Field(description="The rail chosen; null: none could take it.")
    strategy: str = Field(description="learned, fixed, or given (the request named the rail).")
    reason: str | None = Field(description="Why no rail was chosen.")
    hedged: bool | None = Field(description="Chosen to keep learning rather than because it "
                                "scored best; null when the router did not decide.")
    summary: str
    fee: str | None = Field(description="The chosen rail's quoted fee.")
    fee_minor: str | None
    batch_id: str | None = Field(description="The rail batch it was sent in.")
    rail_ref: str | None
    candidates: list[CandidateOut] = Field(description="Every rail the router weighed.")


class ChannelBatchOut(BaseModel):
    id: str
    channel: str
    asset: str
    status: str = Field(description="sent, refused, or unknown (no answer from the rail).")
    items: int
    rail_ref: str | None
    amount: str
    amount_minor: str
    fee: str = Field(description="What the rail charged for the batch.")
    fee_minor: str
    single_fee: str = Field(description="What the same payments would have cost one by one.")
    single_fee_minor: str
    savings: str
    savings_minor: str
    opened_at: str
    submitted_at: str


# --- the configured channels -----------------------------------------------------------------


def _hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def _window_doc(window: CutOffWindow) -> dict[str, object]:
    return {"days": [WEEKDAY_NAMES[d] for d in sorted(window.days)],
            "open": _hhmm(window.open_minute), "close": _hhmm(window.close_minute)}


def _window_out(window: FeeWindow) -> dict[str, object]:
    return {"from_hour_utc": window.start_hour_utc, "to_hour_utc": window.end_hour_utc,
            "multiplier": multiplier_text(window.multiplier)}


def _dynamic_fee_doc(channel: str, fee: DynamicFee, meter: CongestionMeter | None,
                     now_us: int) -> dict[str, object]:
    asset = fee.asset
    state: dict[str, object] | None = None
    measured = None if meter is None else meter.state(channel, now_us)
    if measured is not None:
        now = dynamic_fee_minor(measured, fee, now_us, None)
        window = now.window
        state = {
            "at": iso(now_us), "at_us": now_us,
            **amount_fields("base_fee", measured.base_fee_minor, asset),
            "interval_started_at": iso(measured.interval_start_us),
            "used_in_interval": measured.used,
            "window": None if window is None else _window_out(window),
            **amount_fields("fee", now.fee_minor, asset),
            "explanation": now.explanation,
        }
    return {
        "asset": asset.code,
        **amount_fields("base", fee.base_fee_minor, asset),
        **amount_fields("ceiling", fee.ceiling_minor, asset),
        "target_per_interval": fee.target_per_interval, "interval_s": fee.interval_s,
        "max_change": multiplier_text(fee.max_change),
        "windows": [_window_out(w) for w in fee.windows],
        "risk": {grade: multiplier_text(m) for grade, m in fee.risk.items()},
        "state": state,
    }


def _meter(request: Request) -> CongestionMeter | None:
    """The worker's congestion meter, if the composition root gave the app one."""
    meter = getattr(request.app.state, "congestion", None)
    return meter if isinstance(meter, CongestionMeter) else None


def _channel_doc(api: Api, channel: ChannelConfig,
                 meter: CongestionMeter | None = None) -> dict[str, object]:
    config = api.config
    fees: list[dict[str, object]] = []
    limits: list[dict[str, object]] = []
    for code in channel.assets:
        asset = config.asset(code)
        schedule, bound = channel.fee_schedule(code), channel.limits_for(code)
        fees.append({"asset": code, **amount_fields("fixed", schedule.fixed_minor, asset),
                     "bps": schedule.bps, "inbound_bps": schedule.inbound_bps})
        limits.append({"asset": code, **amount_fields("min", bound.min_minor, asset),
                       **({"max": None, "max_minor": None} if bound.max_minor is None
                          else amount_fields("max", bound.max_minor, asset))})
    return {
        "id": channel.id, "name": channel.name, "kind": channel.kind,
        "assets": list(channel.assets),
        "pools": [pool.id for pool in config.pools if channel.id in pool.channels],
        "carries_payouts": channel.kind is not ChannelKind.BOOK,
        "fees": fees, "limits": limits,
        "cutoff": [_window_doc(w) for w in channel.cutoff], "batch_size": channel.batch_size,
        "dynamic_fee": None if channel.dynamic_fee is None else _dynamic_fee_doc(
            channel.id, channel.dynamic_fee, meter, api.clock.now_us()),
    }


@router.get("", response_model=list[ChannelOut], openapi_extra=needs(P.CHANNELS_READ),
            responses=PROBLEMS)
def list_channels(request: Request, pool: PoolQuery = None) -> list[dict[str, object]]:
    """Every configured channel (or a pool's), in configuration order."""
    api = api_of(request)
    wanted = None if pool is None else set(api.pool(pool).channels)
    meter = _meter(request)
    return [_channel_doc(api, c, meter) for c in api.config.channels
            if wanted is None or c.id in wanted]


# --- what the dispatcher recorded ------------------------------------------------------------
# Declared before `/{channel_id}`: `decisions` and `batches` are not channel ids.


def _decision_doc(route: RouteRecord, asset: Asset | None,
                  amount_minor: int | None) -> dict[str, object]:
    decision = route_decision(route)
    doc: dict[str, object] = {
        "payment_id": route.payment_id, "attempt": route.attempt, "at": iso(route.at_us),
        "at_us": route.at_us, "asset": None if asset is None else asset.code,
        **({"amount": None, "amount_minor": None} if amount_minor is None
           else amount_fields("amount", amount_minor, asset)),
        "channel": route.channel, "strategy": route.strategy,
        "batch_id": route.batch_id, "rail_ref": route.rail_ref,
    }
    fee_minor: object = None
    if isinstance(decision, RoutingDecision):
        doc.update(summary=decision.summary(), reason=decision.reason, hedged=decision.hedged,
                   candidates=[_candidate_doc(c, asset) for c in decision.candidates])
        if decision.channel is not None:
            fee_minor = decision.candidate(decision.channel).fee_minor
    else:
        # A rail the request named (or a transfer): no candidates were weighed.
        reason = route.decision.get("reason")
        doc.update(summary=decision, reason=None if reason is None else str(reason),
                   hedged=None, candidates=[])
        fee_minor = route.decision.get("fee_minor")
    doc.update({"fee": None, "fee_minor": None} if not isinstance(fee_minor, int)
               else amount_fields("fee", fee_minor, asset))
    return doc


def _candidate_doc(candidate: CandidateScore, asset: Asset | None) -> dict[str, object]:
    doc = candidate_doc(candidate, asset)
    if candidate.dynamic_fee_minor is not None:
        doc.update(amount_fields("dynamic_fee", candidate.dynamic_fee_minor, asset))
    return doc


def _after(cursor: str | None, list_name: str, filters: Mapping[str, object],
           kinds: tuple[type, type]) -> list[Any] | None:
    """The (text, integer) position a cursor holds, or None for the first page."""
    after = read_cursor(cursor, list_name, filters)
    if after is None:
        return None
    if not (isinstance(after, list) and len(after) == 2 and isinstance(after[0], kinds[0])
            and isinstance(after[1], kinds[1]) and not isinstance(after[1], bool)):
        raise InvalidCursor("the cursor is not valid")
    return after


@router.get("/decisions", response_model=Page[RouteDecisionOut],
            openapi_extra=needs(P.CHANNELS_READ), responses=PROBLEMS)
def list_decisions(
    request: Request,
    payment_id: PaymentQuery = None,
    channel: ChannelQuery = None,
    limit: LimitQuery = 100,
    cursor: CursorQuery = None,
) -> dict[str, object]:
    """Routing decisions, one per attempt, newest payment first: the rail chosen (or why
    none), and every candidate rail with its quote and scores."""
    api = api_of(request)
    filters = {"payment_id": payment_id, "channel": channel}
    after = _after(cursor, "decisions", filters, (str, int))
    with api.store_errors():
        found = api.dispatch_records.reads.decisions(
            payment_id=payment_id, channel=channel, limit=limit + 1,
            before=None if after is None else (after[0], after[1]))
        assets = api.assets()
    page = found[:limit]
    docs = []
    for route, code, amount in page:
        asset = None if code is None else assets.get(code)
        docs.append(_decision_doc(route, asset, None if asset is None else amount))
    last = page[-1][0] if page else None
    return {"data": docs,
            "next_cursor": make_cursor("decisions", filters, [last.payment_id, last.attempt])
            if len(found) > limit and last is not None else None}


def _batch_doc(batch: BatchRecord, assets: Mapping[str, Asset]) -> dict[str, object]:
    asset = assets.get(batch.asset)
    return {
        "id": batch.id, "channel": batch.channel, "asset": batch.asset, "status": batch.status,
        "items": batch.items, "rail_ref": batch.rail_ref,
        **amount_fields("amount", batch.amount_minor, asset),
        **amount_fields("fee", batch.fee_minor, asset),
        **amount_fields("single_fee", batch.single_fee_minor, asset),
        **amount_fields("savings", batch.savings_minor, asset),
        "opened_at": iso(batch.opened_at_us), "submitted_at": iso(batch.submitted_at_us),
    }


@router.get("/batches", response_model=Page[ChannelBatchOut],
            openapi_extra=needs(P.CHANNELS_READ), responses=PROBLEMS)
def list_batches(
    request: Request,
    channel: ChannelQuery = None,
    limit: LimitQuery = 100,
    cursor: CursorQuery = None,
) -> dict[str, object]:
    """Batches sent to the rails, newest first, with their fees and what batching saved."""
    api = api_of(request)
    filters = {"channel": channel}
    after = _after(cursor, "batches", filters, (str, int))
    with api.store_errors():
        found = api.dispatch_records.reads.batches(
            channel=channel, limit=limit + 1,
            before=None if after is None else (after[1], after[0]))
        assets = api.assets()
    page = found[:limit]
    last = page[-1] if page else None
    return {"data": [_batch_doc(batch, assets) for batch in page],
            "next_cursor": make_cursor("batches", filters, [last.id, last.submitted_at_us])
            if len(found) > limit and last is not None else None}


@router.get("/{channel_id}", response_model=ChannelOut, openapi_extra=needs(P.CHANNELS_READ),
            responses=PROBLEMS)
def get_channel(channel_id: ChannelPath, request: Request) -> dict[str, object]:
    api = api_of(request)
    try:
        channel = api.config.channel(channel_id)
    except InvalidConfig:
        raise UnknownChannel(channel=channel_id) from None
    return _channel_doc(api, channel, _meter(request))
