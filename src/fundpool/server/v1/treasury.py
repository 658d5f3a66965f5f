"""The treasury desk (docs/treasury.md): currency exchange, split and waterfall previews,
netting, liquidity (bands, rebalancing plans, sweeps, credit lines) and stress tests. Reading
needs `treasury:read` (every role); acting needs `treasury:write` (the cashier, the admin);
approving another person's rebalancing plan needs `treasury:approve` (the approver, the
admin). Amounts are decimal text in their asset, like everywhere in the API.

    GET  /v1/fx/rates                            the pool's pairs at their mid rates
    POST /v1/fx/quotes                           {sell, buy, sell_amount | buy_amount}
    GET  /v1/fx/quotes                           newest first
    GET  /v1/fx/quotes/{id}
    POST /v1/fx/quotes/{id}/accept               lock the rate and convert (one ledger entry)
    GET  /v1/fx/pnl                              realised and unrealised P&L per pair
    POST /v1/fx/payouts                          a payout in the payee's asset, converted
    GET  /v1/splits/rules
    POST /v1/splits/preview                      {amount, rule | rule_id}
    POST /v1/waterfall/preview                   {available, tiers, obligations}
    GET  /v1/netting/participants
    POST /v1/netting/obligations                 [{payer, payee, asset, amount}]
    GET  /v1/netting/obligations?asset=
    POST /v1/netting/cycles                      {asset}: net and settle the queued ones
    GET  /v1/netting/cycles
    GET  /v1/liquidity                           positions with their bands
    POST /v1/liquidity/plans                     propose a rebalancing plan
    GET  /v1/liquidity/plans
    GET  /v1/liquidity/plans/{id}
    POST /v1/liquidity/plans/{id}/approve        (another person) then executed as payments
    POST /v1/liquidity/plans/{id}/reject
    GET  /v1/liquidity/sweeps                    rules and their runs
    POST /v1/liquidity/sweeps/run                run the sweep rules now
    GET  /v1/liquidity/credit                    credit lines: drawn, interest, limit
    POST /v1/liquidity/credit/run                draw, repay and accrue now
    POST /v1/stress                              run a scenario on the live pool
    GET  /v1/treasury/actions                    the desk's trail, newest first
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from fundpool.auth.roles import P
from fundpool.desk.docs import (
    credit_doc,
    credit_run_doc,
    cycle_doc,
    money,
    obligation_doc,
    plan_doc,
    position_doc,
    quote_doc,
    rate_text,
    share_doc,
    sweep_run_doc,
    waterfall_doc,
)
from fundpool.desk.netting import ObligationRequest
from fundpool.desk.service import Desk
from fundpool.ledger.docs import iso
from fundpool.payments.model import PaymentKind, PaymentRequest
from fundpool.server.v1.actors import actor_doc
from fundpool.server.v1.context import Api, api_of
from fundpool.server.v1.problems import PROBLEMS
from fundpool.server.v1.security import SecuredRouter, actor_of, needs
from fundpool.treasury import fx

router = SecuredRouter(tags=["treasury"])

CONFIG_ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
ASSET_PATTERN = r"^[A-Z][A-Z0-9.-]{1,15}$"
AMOUNT_PATTERN = r"^[0-9]{1,40}(\.[0-9]{1,18})?$"
PoolQuery = Annotated[str | None, Query(pattern=CONFIG_ID_PATTERN)]
IdPath = Annotated[str, Path(min_length=1, max_length=200)]
LimitQuery = Annotated[int, Query(ge=1, le=1_000)]
AmountText = Annotated[str, Field(pattern=AMOUNT_PATTERN)]
AssetText = Annotated[str, Field(pattern=ASSET_PATTERN)]


def _desk(request: Request, pool: str | None) -> tuple[Api, Desk]:
    api = api_of(request)
    return api, api.desk(pool)


# --- FX --------------------------------------------------------------------------------------


@router.get("/fx/rates", openapi_extra=needs(P.TREASURY_READ), responses=PROBLEMS)
def fx_rates(request: Request, pool: PoolQuery = None) -> dict[str, Any]:
    desk = api_of(request).desk(pool)
    return {"spread_percent": rate_text(desk.fx.settings.spread * 100),
            "quote_ttl_s": desk.fx.settings.ttl_s,
            "rates": [{"pair": r["pair"], "mid_rate": rate_text(r["rate"])}
                      for r in desk.fx.mid_rates()]}


class QuoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sell: AssetText
    buy: AssetText
    sell_amount: AmountText | None = None
    buy_amount: AmountText | None = None
    sell_channel: str | None = Field(default=None, pattern=CONFIG_ID_PATTERN)
    buy_channel: str | None = Field(default=None, pattern=CONFIG_ID_PATTERN)


@router.post("/fx/quotes", status_code=201, openapi_extra=needs(P.TREASURY_WRITE),
             responses=PROBLEMS)
def fx_quote(body: QuoteIn, request: Request, pool: PoolQuery = None) -> dict[str, Any]:
    """A quote for selling `sell_amount` (or buying `buy_amount`): the rate with the desk's
    spread, valid for the desk's time-to-live."""
    api, desk = _desk(request, pool)
    if (body.sell_amount is None) == (body.buy_amount is None):
        raise fx.InvalidQuote("give exactly one of sell_amount and buy_amount")
    sell_minor = (None if body.sell_amount is None
                  else desk.fx.asset(body.sell).parse(body.sell_amount))
    buy_minor = (None if body.buy_amount is None
                 else desk.fx.asset(body.buy).parse(body.buy_amount))
    with api.store_errors():
        obj = desk.fx.quote(body.sell, body.buy, sell_minor=sell_minor, buy_minor=buy_minor,
                            sell_channel=body.sell_channel, buy_channel=body.buy_channel,
                            actor=actor_of(request))
    return quote_doc(desk, obj, api.clock.now_us())


@router.get("/fx/quotes", openapi_extra=needs(P.TREASURY_READ), responses=PROBLEMS)
def fx_quotes(request: Request, pool: PoolQuery = None,
              limit: LimitQuery = 50) -> list[dict[str, Any]]:
    api, desk = _desk(request, pool)
    now = api.clock.now_us()
    with api.store_errors():
        return [quote_doc(desk, o, now) for o in desk.fx.quotes(limit=limit)]


@router.get("/fx/quotes/{quote_id}", openapi_extra=needs(P.TREASURY_READ), responses=PROBLEMS)
def fx_get_quote(quote_id: IdPath, request: Request, pool: PoolQuery = None) -> dict[str, Any]:
    api, desk = _desk(request, pool)
    with api.store_errors():
        return quote_doc(desk, desk.fx.get(quote_id), api.clock.now_us())


@router.post("/fx/quotes/{quote_id}/accept", openapi_extra=needs(P.TREASURY_WRITE),
             responses=PROBLEMS)
def fx_accept(quote_id: IdPath, request: Request, pool: PoolQuery = None) -> dict[str, Any]:
    """Lock the quote's rate and convert: one multi-asset ledger entry through the FX
    position accounts. An expired quote is 409 `fx_quote_expired` and converts nothing."""
    api, desk = _desk(request, pool)
    with api.store_errors():
        obj = desk.fx.accept(quote_id, actor=actor_of(request))
    return quote_doc(desk, obj, api.clock.now_us())


@router.get("/fx/pnl", openapi_extra=needs(P.TREASURY_READ), responses=PROBLEMS)
def fx_pnl(request: Request, pool: PoolQuery = None) -> dict[str, Any]:
    api, desk = _desk(request, pool)
    reporting = desk.config.asset(desk.pool.reporting_currency)
    with api.store_errors():
        rows = desk.fx.pnl()
    return {"reporting_currency": reporting.code,
            "pairs": [{"pair": r.pair, "realised": money(reporting, r.realised_minor),
                       "unrealised": money(reporting, r.unrealised_minor),
                       "count": r.count} for r in rows]}


class FxPayoutIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    funding_asset: AssetText
    asset: AssetText
    amount: AmountText
    channel: str | None = Field(default=None, pattern=CONFIG_ID_PATTERN)
    destination: str | None = Field(default=None, max_length=200)
    counterparty: str | None = Field(default=None, max_length=200)
    reference: str | None = Field(default=None, max_length=200)


@router.post("/fx/payouts", status_code=201, openapi_extra=needs(P.TREASURY_WRITE),
             responses=PROBLEMS)
def fx_payout(body: FxPayoutIn, request: Request, pool: PoolQuery = None) -> dict[str, Any]:
    """A payout in the payee's `asset` funded from `funding_asset`: converted at a locked
    quote, then paid as any payout (routing, risk and approvals apply)."""
    api, desk = _desk(request, pool)
    asset = desk.fx.asset(body.asset)
    request_ = PaymentRequest(PaymentKind.PAYOUT, body.asset, asset.parse(body.amount),
                              body.channel, None, body.counterparty, body.reference, {},
                              body.destination)
    with api.store_errors():
        quote, payment = desk.fx.convert_and_pay(desk.payments, funding_asset=body.funding_asset,
                                                 request=request_, actor=actor_of(request))
    if api.wake_engine is not None:
        api.wake_engine(desk.pool.id)
    return {"quote": quote_doc(desk, quote, api.clock.now_us()),
            "payment": {"id": payment.id, "state": payment.state.value,
                        "asset": payment.asset, "amount": money(asset, payment.amount_minor),
                        "channel": payment.channel}}


# --- splits and waterfall ---------------------------------------------------------------------


@router.get("/splits/rules", openapi_extra=needs(P.TREASURY_READ), responses=PROBLEMS)
def split_rules(request: Request, pool: PoolQuery = None) -> list[dict[str, Any]]:
    desk = api_of(request).desk(pool)
    out = []
    for asset_code, rule in desk.split_rules():
        asset = desk.config.asset(asset_code)
        out.append({"id": rule.id, "asset": asset_code, "remainder": rule.remainder_party,
                    "parts": [{"party": p.party, "role": p.role,
                               "percent": None if p.percent is None
                               else rate_text(p.percent),
                               "fixed": money(asset, p.fixed_minor),
                               "cap": None if p.cap_minor is None else money(asset,
                                                                             p.cap_minor),
                               "floor": money(asset, p.floor_minor),
                               "tiers": [{"up_to": None if t.up_to_minor is None
                                          else money(asset, t.up_to_minor),
                                          "percent": rate_text(t.percent)} for t in p.tiers]}
                              for p in rule.parts]})
    return out


class SplitPreviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    amount: AmountText
    asset: AssetText
    rule_id: str | None = Field(default=None, max_length=128)
    rule: dict[str, Any] | None = None  # a whole rule, amounts in minor units


@router.post("/splits/preview", openapi_extra=needs(P.TREASURY_READ), responses=PROBLEMS)
def split_preview(body: SplitPreviewIn, request: Request,
                  pool: PoolQuery = None) -> dict[str, Any]:
    """How `amount` would be shared: by a configured rule, or a rule given whole."""
    desk = api_of(request).desk(pool)
    asset = desk.fx.asset(body.asset)
    minor = asset.parse(body.amount)
    rule, shares = desk.split_preview(minor, rule_id=body.rule_id, rule=body.rule)
    return {"rule": rule.id, "asset": asset.code, "amount": money(asset, minor),
            "shares": [share_doc(asset, s) for s in shares],
            "total": money(asset, sum(s.amount_minor for s in shares))}


class WaterfallIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    asset: AssetText
    available: AmountText
    tiers: list[dict[str, Any]] = Field(max_length=64)
    obligations: list[dict[str, Any]] = Field(max_length=10_000)


@router.post("/waterfall/preview", openapi_extra=needs(P.TREASURY_READ), responses=PROBLEMS)
def waterfall_preview(body: WaterfallIn, request: Request,
                      pool: PoolQuery = None) -> dict[str, Any]:
    """Pay `available` to the obligations tier by tier, senior first, pro rata within a
    tier: what each receives and what is still owed. Amounts are decimal text."""
    desk = api_of(request).desk(pool)
    asset = desk.fx.asset(body.asset)
    obligations = []
    for i, o in enumerate(body.obligations):
        amount = o.get("amount")
        if not isinstance(amount, str):
            raise fx.InvalidQuote("an obligation's amount is decimal text",
                                  field=f"obligations[{i}].amount")
        obligations.append({**o, "amount": asset.parse(amount)})
    report = desk.waterfall_preview({"available": asset.parse(body.available),
                                     "tiers": body.tiers, "obligations": obligations})
    return waterfall_doc(asset, report)


# --- netting ---------------------------------------------------------------------------------


@router.get("/netting/participants", openapi_extra=needs(P.TREASURY_READ), responses=PROBLEMS)
def netting_participants(request: Request, pool: PoolQuery = None) -> list[dict[str, Any]]:
    api, desk = _desk(request, pool)
    out = []
    with api.store_errors():
        for who in desk.netting.participants:
            out.append({"id": who, "kind": "merchant" if who in desk.netting.merchants
                        else "partner",
                        "balances": {code: money(desk.config.asset(code),
                                                 desk.netting.balance(who, code))
                                     for code in desk.netting.assets}})
    return out


class ObligationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    payer: str = Field(min_length=1, max_length=64)
    payee: str = Field(min_length=1, max_length=64)
    asset: AssetText
    amount: AmountText
    reference: str | None = Field(default=None, max_length=200)


@router.post("/netting/obligations", status_code=201, openapi_extra=needs(P.TREASURY_WRITE),
             responses=PROBLEMS)
def netting_record(body: Annotated[list[ObligationIn], Field(min_length=1, max_length=10_000)],
                   request: Request, pool: PoolQuery = None) -> list[dict[str, Any]]:
    """Queue obligations for the next cycle of their asset: all or none."""
    api, desk = _desk(request, pool)
    requests = []
    for o in body:
        asset = desk.fx.asset(o.asset)
        requests.append(ObligationRequest(o.payer, o.payee, o.asset, asset.parse(o.amount),
                                          o.reference))
    with api.store_errors():
        made = desk.netting.record(requests, actor=actor_of(request))
    return [obligation_doc(desk, o) for o in made]


@router.get("/netting/obligations", openapi_extra=needs(P.TREASURY_READ), responses=PROBLEMS)
def netting_queued(request: Request, pool: PoolQuery = None,
                   asset: Annotated[str | None, Query(pattern=ASSET_PATTERN)] = None,
                   limit: LimitQuery = 200) -> list[dict[str, Any]]:
    api, desk = _desk(request, pool)
    with api.store_errors():
        return [obligation_doc(desk, o) for o in desk.netting.queued(asset)[:limit]]


class CycleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    asset: AssetText


@router.post("/netting/cycles", status_code=201, openapi_extra=needs(P.TREASURY_WRITE),
             responses=PROBLEMS)
def netting_cycle(body: CycleIn, request: Request, pool: PoolQuery = None) -> dict[str, Any]:
    """Net the queued obligations of `asset` and settle the net positions in one ledger
    transaction; those a short participant cannot cover stay queued (gridlock resolution)."""
    api, desk = _desk(request, pool)
    with api.store_errors():
        cycle = desk.netting.run_cycle(body.asset, actor=actor_of(request))
    return cycle_doc(desk, cycle)


@router.get("/netting/cycles", openapi_extra=needs(P.TREASURY_READ), responses=PROBLEMS)
def netting_cycles(request: Request, pool: PoolQuery = None,
                   limit: LimitQuery = 50) -> list[dict[str, Any]]:
    api, desk = _desk(request, pool)
    with api.store_errors():
        return [cycle_doc(desk, c) for c in desk.netting.cycles(limit)]


# --- liquidity -------------------------------------------------------------------------------


@router.get("/liquidity", openapi_extra=needs(P.TREASURY_READ), responses=PROBLEMS)
def liquidity(request: Request, pool: PoolQuery = None) -> dict[str, Any]:
    """Every position (channel, asset) with its available balance, its band (minimum, target,
    maximum) and where it stands."""
    api, desk = _desk(request, pool)
    with api.store_errors():
        return {"positions": [position_doc(desk, p) for p in desk.liquidity.positions()],
                "auto_execute": {code: money(desk.config.asset(code), n) for code, n in
                                 desk.treasury.auto_execute_minor.items()},
                "stale_after_s": desk.treasury.stale_after_s,
                "sweep_every_s": desk.treasury.sweep_every_s}


@router.post("/liquidity/plans", status_code=201, openapi_extra=needs(P.TREASURY_WRITE),
             responses=PROBLEMS)
def liquidity_propose(request: Request, pool: PoolQuery = None) -> dict[str, Any]:
    """Propose the cheapest transfers that bring every position within its band, explained.
    Within the `auto_execute` limits it is executed at once; else it waits for approval."""
    api, desk = _desk(request, pool)
    with api.store_errors():
        return plan_doc(desk, desk.liquidity.propose(actor=actor_of(request)))


@router.get("/liquidity/plans", openapi_extra=needs(P.TREASURY_READ), responses=PROBLEMS)
def liquidity_plans(request: Request, pool: PoolQuery = None,
                    limit: LimitQuery = 20) -> list[dict[str, Any]]:
    api, desk = _desk(request, pool)
    with api.store_errors():
        return [plan_doc(desk, p) for p in desk.liquidity.plans(limit)]


@router.get("/liquidity/plans/{plan_id}", openapi_extra=needs(P.TREASURY_READ),
            responses=PROBLEMS)
def liquidity_plan(plan_id: IdPath, request: Request, pool: PoolQuery = None) -> dict[str, Any]:
    api, desk = _desk(request, pool)
    with api.store_errors():
        return plan_doc(desk, desk.liquidity.plan(plan_id))


@router.post("/liquidity/plans/{plan_id}/approve", openapi_extra=needs(P.TREASURY_APPROVE),
             responses=PROBLEMS)
def liquidity_approve(plan_id: IdPath, request: Request,
                      pool: PoolQuery = None) -> dict[str, Any]:
    """Approve another person's plan: it is executed as payments at once (after checking the
    sources still hold what it moves: else 409 `plan_outdated`, nothing sent)."""
    api, desk = _desk(request, pool)
    with api.store_errors():
        return plan_doc(desk, desk.liquidity.approve(plan_id, actor=actor_of(request)))


class RejectIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str = Field(default="", max_length=2_000)


@router.post("/liquidity/plans/{plan_id}/reject", openapi_extra=needs(P.TREASURY_APPROVE),
             responses=PROBLEMS)
def liquidity_reject(plan_id: IdPath, body: RejectIn, request: Request,
                     pool: PoolQuery = None) -> dict[str, Any]:
    api, desk = _desk(request, pool)
    with api.store_errors():
        return plan_doc(desk, desk.liquidity.reject(plan_id, actor=actor_of(request),
                                                    note=body.note))


@router.get("/liquidity/sweeps", openapi_extra=needs(P.TREASURY_READ), responses=PROBLEMS)
def liquidity_sweeps(request: Request, pool: PoolQuery = None,
                     limit: LimitQuery = 50) -> dict[str, Any]:
    api, desk = _desk(request, pool)
    with api.store_errors():
        runs = desk.liquidity.sweep_runs(limit)
    return {"rules": [{"id": r.id, "kind": str(r.kind), "asset": r.asset, "header": r.header,
                       "participants": [p.channel for p in r.participants],
                       "two_way": r.two_way} for r in desk.liquidity.rules],
            "runs": [{"id": o.id, "state": o.state, "at": iso(o.created_at_us),
                      **sweep_run_doc(desk, {k: v for k, v in o.body.items()
                                             if k not in ("id", "balances_at_us")})}
                     for o in runs]}


@router.post("/liquidity/sweeps/run", openapi_extra=needs(P.TREASURY_WRITE),
             responses=PROBLEMS)
def liquidity_sweep(request: Request, pool: PoolQuery = None) -> list[dict[str, Any]]:
    """Run every sweep rule now: each rule's outcome (`swept`, `nothing_to_move`,
    `sweep_pending` while its previous run's payments are on their way, `stale_balances`)."""
    api, desk = _desk(request, pool)
    with api.store_errors():
        return [sweep_run_doc(desk, r) for r in
                desk.liquidity.run_sweeps(actor=actor_of(request))]


@router.get("/liquidity/credit", openapi_extra=needs(P.TREASURY_READ), responses=PROBLEMS)
def liquidity_credit(request: Request, pool: PoolQuery = None) -> list[dict[str, Any]]:
    api, desk = _desk(request, pool)
    with api.store_errors():
        return [credit_doc(desk, line) for line in desk.liquidity.credit_lines()]


@router.post("/liquidity/credit/run", openapi_extra=needs(P.TREASURY_WRITE),
             responses=PROBLEMS)
def liquidity_credit_run(request: Request, pool: PoolQuery = None) -> list[dict[str, Any]]:
    """Accrue the days passed, then draw or repay every credit line, now."""
    api, desk = _desk(request, pool)
    with api.store_errors():
        ran = desk.liquidity.run_credit(actor=actor_of(request))
    return [credit_run_doc(desk, r) for r in ran]


# --- stress tests ----------------------------------------------------------------------------


@router.post("/stress", openapi_extra=needs(P.TREASURY_READ), responses=PROBLEMS)
def stress(body: dict[str, Any], request: Request, pool: PoolQuery = None) -> dict[str, Any]:
    """Run a liquidity-run scenario on the pool's live state, hour by hour: the survival
    horizon, the first position to run dry, the credit needed (docs/treasury.md). It moves
    nothing, so every role that reads the desk may run one (a risk officer first of all); the
    run is kept in the desk's trail with its actor."""
    api, desk = _desk(request, pool)
    with api.store_errors():
        return desk.stress.run(body, actor=actor_of(request))


# --- the trail -------------------------------------------------------------------------------


@router.get("/treasury/actions", openapi_extra=needs(P.TREASURY_READ), responses=PROBLEMS)
def treasury_actions(request: Request, pool: PoolQuery = None,
                     limit: LimitQuery = 100) -> list[dict[str, Any]]:
    api, desk = _desk(request, pool)
    with api.store_errors():
        return [{"id": i, "at": iso(a.at_us), "action": a.action, "object_kind": a.object_kind,
                 "object_id": a.object_id, "actor": actor_doc(a.actor), "details": a.details}
                for i, a in desk.actions(limit)]
