"""The FX desk: quotes with a spread and a time-to-live, locked when accepted, executed as one
multi-asset ledger transaction through the pool's FX position accounts (treasury/fx.py), and
the realised and unrealised P&L per currency pair.

A quote's life (its `state`):

    open --accept (before it expires)--> accepted --ledger entry--> executed
      |                                     \\--ledger refused--> refused (nothing moved)
      \\--accept after expiry--> expired

Accepting moves the quote from `open` to `accepted` in one compare-and-set, so two people
accepting one quote cannot both convert; the rate is the quote's, whatever the market does
after. The conversion's ledger entry carries the idempotency key `fx-<quote id>`: a retry
after a crash between the entry and the quote's `executed` replays the same entry instead of
converting twice (`accept` of an `accepted` quote finishes it).

A conversion moves the pool's own money between two of its accounts (the sell asset's and the
buy asset's, on the channels that hold them), not across a rail, so it is a ledger transaction
rather than a payment; it is recorded with its actor in the entry's metadata and in the desk's
trail (audit source `desk`). A payout whose payee's asset differs from the funding asset is
converted on the way (`convert_and_pay`): the conversion at a locked quote, then the payout in
the payee's asset, created through the payment service, so routing, risk, approvals and the
audit log apply to it as to any payout.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Any

from fundpool.core.actor import Actor
from fundpool.core.clock import Clock, IdSource
from fundpool.core.errors import FundpoolError
from fundpool.core.ledger.model import Account
from fundpool.core.money import Asset
from fundpool.desk.ports import DeskAction, DeskObject, DeskStore
from fundpool.ledger.service import Ledger
from fundpool.payments.model import Payment, PaymentKind, PaymentRequest
from fundpool.payments.rules import NOT_FOR_PAYOUTS
from fundpool.payments.service import PaymentService
from fundpool.pool.accounts import PoolState, pool_account
from fundpool.pool.config import FundpoolConfig, PoolConfig
from fundpool.pool.rates import RateSource
from fundpool.treasury import fx

QUOTE = "quote"
OPEN, ACCEPTED, EXECUTED, EXPIRED, REFUSED = "open", "accepted", "executed", "expired", "refused"
QUOTE_TTL_S_MAX = 3_600


class UnknownQuote(FundpoolError):
    code = "fx_quote_unknown"
    title = "no such FX quote in this pool"


class QuoteNotOpen(FundpoolError):
    code = "fx_quote_not_open"
    title = "the quote was accepted, refused or expired already"


class NoChannelForAsset(FundpoolError):
    code = "fx_no_channel_for_asset"
    title = "no channel of the pool holds this asset"


@dataclass(frozen=True, slots=True)
class FxSettings:
    spread: Fraction = Fraction(25, 10_000)  # 25 basis points
    ttl_s: int = 30


def actor_text(actor: Actor | None) -> str:
    doc = {} if actor is None else actor.to_dict()
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)[:512]


def quote_body(quote: fx.Quote, sell_channel: str, buy_channel: str) -> dict[str, Any]:
    return {"sell_asset": quote.sell_asset, "buy_asset": quote.buy_asset,
            "sell_minor": str(quote.sell_minor), "buy_minor": str(quote.buy_minor),
            "mid_rate": str(quote.mid_rate), "rate": str(quote.rate),
            "spread": str(quote.spread), "expires_at_us": quote.expires_at_us,
            "sell_channel": sell_channel, "buy_channel": buy_channel}


def quote_of(obj: DeskObject) -> fx.Quote:
    b = obj.body
    return fx.Quote(obj.id, b["sell_asset"], b["buy_asset"], int(b["sell_minor"]),
                    int(b["buy_minor"]), Fraction(b["mid_rate"]), Fraction(b["rate"]),
                    Fraction(b["spread"]), obj.created_at_us, int(b["expires_at_us"]))


class FxDesk:
    def __init__(self, ledger: Ledger, store: DeskStore, config: FundpoolConfig,
                 pool: PoolConfig, rates: Callable[[], RateSource], settings: FxSettings, *,
                 clock: Clock, ids: IdSource,
                 available: Callable[[str, str], int]) -> None:
        self.ledger = ledger
        self.store = store
        self.config = config
        self.pool = pool
        self._rates = rates
        self.settings = settings
        self.clock = clock
        self.ids = ids
        self._available = available  # (channel, asset) -> the pool's available there
        channels = {c.id: c for c in config.channels}
        self.channels_of: dict[str, list[str]] = {}
        for cid in pool.channels:
            for code in channels[cid].assets:
                self.channels_of.setdefault(code, []).append(cid)

    @property
    def rates(self) -> RateSource:
        return self._rates()

    def asset(self, code: str) -> Asset:
        if code not in self.channels_of:
            raise NoChannelForAsset(asset=code, pool=self.pool.id)
        return self.config.asset(code)

    def payout_channels_of(self, asset: str) -> list[str]:
        return [c for c in self.channels_of.get(asset, [])
                if self.config.channel(c).kind not in NOT_FOR_PAYOUTS]

    def channel_for(self, asset: str, channel: str | None,
                    among: list[str] | None = None) -> str:
        held = self.channels_of.get(asset, []) if among is None else among
        if channel is not None:
            if channel not in held:
                raise NoChannelForAsset("this channel does not hold the asset in this pool",
                                        asset=asset, channel=channel, pool=self.pool.id)
            return channel
        if not held:
            raise NoChannelForAsset(asset=asset, pool=self.pool.id)
        # The channel holding most of it: a conversion there disturbs the others least.
        return max(held, key=lambda c: (self._available(c, asset), c))

    def mid_rates(self) -> list[dict[str, Any]]:
        """Every pair of the pool's assets with a known rate (base before quote, by code)."""
        source = self.rates
        out = []
        codes = sorted(self.channels_of)
        for i, base in enumerate(codes):
            for quote in codes[i + 1:]:
                rate = source.rate(base, quote)
                if rate is not None:
                    out.append({"pair": f"{base}/{quote}", "rate": rate})
        return out

    # --- quotes -----------------------------------------------------------------------------

    def quote(self, sell: str, buy: str, *, sell_minor: int | None = None,
              buy_minor: int | None = None, sell_channel: str | None = None,
              buy_channel: str | None = None, actor: Actor | None = None) -> DeskObject:
        sell_asset, buy_asset = self.asset(sell), self.asset(buy)
        sell_at = self.channel_for(sell, sell_channel)
        buy_at = self.channel_for(buy, buy_channel)
        now = self.clock.now_us()
        quote = fx.quote(self.rates, sell_asset, buy_asset, sell_minor=sell_minor,
                         buy_minor=buy_minor, spread=self.settings.spread,
                         ttl_us=self.settings.ttl_s * 1_000_000, now_us=now,
                         quote_id=self.ids.new_id(now))
        obj = DeskObject(self.pool.id, QUOTE, quote.id, OPEN, now, now, actor,
                         quote_body(quote, sell_at, buy_at))
        self.store.add([obj], DeskAction(now, "fx.quote", QUOTE, quote.id, actor,
                                         {"pool": self.pool.id, **obj.body}))
        return obj

    def get(self, quote_id: str) -> DeskObject:
        obj = self.store.get(QUOTE, quote_id)
        if obj is None or obj.pool != self.pool.id:
            raise UnknownQuote(quote=quote_id, pool=self.pool.id)
        return obj

    def quotes(self, states: list[str] | None = None, limit: int = 100) -> list[DeskObject]:
        return self.store.find(self.pool.id, QUOTE, states, limit)

    def accept(self, quote_id: str, *, actor: Actor | None = None) -> DeskObject:
        """Lock the quote and convert at its rate; the executed quote, with its entry."""
        obj = self.get(quote_id)
        now = self.clock.now_us()
        if obj.state == OPEN:
            quote = quote_of(obj)
            try:
                fx.check_quote(quote, now)
            except fx.QuoteExpired:
                self.store.move(obj.moved(EXPIRED, now), OPEN, DeskAction(
                    now, "fx.expire", QUOTE, obj.id, actor, {"pool": self.pool.id}))
                raise
            locked = obj.moved(ACCEPTED, now, accepted_by=actor.to_dict() if actor else None,
                               accepted_at_us=now)
            if not self.store.move(locked, OPEN, DeskAction(
                    now, "fx.accept", QUOTE, obj.id, actor, {"pool": self.pool.id})):
                raise QuoteNotOpen(quote=quote_id, state=self.get(quote_id).state)
            obj = locked
        elif obj.state != ACCEPTED:
            raise QuoteNotOpen(quote=quote_id, state=obj.state)
        return self._execute(obj, actor)

    def _execute(self, obj: DeskObject, actor: Actor | None) -> DeskObject:
        quote = quote_of(obj)
        sell_channel, buy_channel = obj.body["sell_channel"], obj.body["buy_channel"]
        for code in (quote.sell_asset, quote.buy_asset):
            self.ledger.open_account(Account(fx.fx_position(self.pool.id, code), asset=code,
                                             allow_negative=True,
                                             metadata={"pool": self.pool.id}))
        postings = fx.conversion_postings(self.pool.id, quote, sell_channel=sell_channel,
                                          buy_channel=buy_channel)
        now = self.clock.now_us()
        # The mid rates when it was accepted, for the P&L (what the spread earned at once).
        record = fx.executed(quote, rates=self.rates, reporting=self.config.asset(
            self.pool.reporting_currency), now_us=int(obj.body.get("accepted_at_us", now)))
        try:
            entry = self.ledger.transfer(
                postings, metadata={"kind": "fx_conversion", "quote": quote.id,
                                    "actor": actor_text(actor)},
                idempotency_key=f"fx-{quote.id}")
        except FundpoolError as error:
            self.store.move(obj.moved(REFUSED, now, error=error.to_dict()), ACCEPTED,
                            DeskAction(now, "fx.refuse", QUOTE, obj.id, actor,
                                       {"pool": self.pool.id, "error": error.code}))
            raise
        done = obj.moved(EXECUTED, now, entry_id=entry.id, executed_at_us=now,
                         executed=record.body())
        self.store.move(done, ACCEPTED, DeskAction(
            now, "fx.execute", QUOTE, obj.id, actor,
            {"pool": self.pool.id, "entry_id": entry.id, "sell_minor": str(quote.sell_minor),
             "buy_minor": str(quote.buy_minor), "rate": str(quote.rate)}))
        return done

    # --- P&L ------------------------------------------------------------------------------

    def pnl(self) -> list[fx.PairPnl]:
        conversions = [executed_of(o.body["executed"]) for o in reversed(
            self.store.find(self.pool.id, QUOTE, [EXECUTED], limit=100_000))]
        positions: dict[str, int] = {}
        for code in self.channels_of:
            address = fx.fx_position(self.pool.id, code)
            try:
                positions[code] = self.ledger.balance(address, code).available
            except FundpoolError:  # not opened yet: no conversion in this asset
                positions[code] = 0
        assets = {code: self.config.asset(code) for code in self.channels_of}
        reporting = self.config.asset(self.pool.reporting_currency)
        return fx.fx_pnl(conversions, positions, self.rates, reporting, assets)

    # --- payouts converted on the way ------------------------------------------------------

    def convert_and_pay(self, payments: PaymentService, *, funding_asset: str,
                        request: PaymentRequest, idempotency_key: str | None = None,
                        actor: Actor | None = None) -> tuple[DeskObject, Payment]:
        """Pay `request` (a payout in the payee's asset) from `funding_asset`: a quote for
        exactly the payout's amount, accepted at once, then the payout on the channel the
        converted money arrived on (its fee is paid from what that channel holds)."""
        if request.kind is not PaymentKind.PAYOUT:
            raise fx.InvalidQuote("only a payout is converted on the way", kind=request.kind)
        # On a rail that pays out (never a book rail): the one named, else the payout rail
        # holding most of the payee's asset.
        buy_channel = request.channel or self.channel_for(
            request.asset, None, among=self.payout_channels_of(request.asset))
        payout = PaymentRequest(request.kind, request.asset, request.amount_minor,
                                buy_channel, request.destination_channel,
                                request.counterparty, request.reference,
                                {**request.metadata, "fx_quote": "pending"},
                                request.destination)
        # Everything the payout could be refused for is checked before money is converted.
        payments.check(payout, idempotency_key=idempotency_key, actor=actor)
        obj = self.quote(funding_asset, request.asset, buy_minor=request.amount_minor,
                         buy_channel=buy_channel, actor=actor)
        done = self.accept(obj.id, actor=actor)
        payment = payments.create(
            replace(payout, metadata={**request.metadata, "fx_quote": obj.id}),
            idempotency_key=idempotency_key, actor=actor)
        return done, payment


def executed_of(body: Mapping[str, Any]) -> fx.Executed:
    return fx.Executed(str(body["quote_id"]), str(body["sell_asset"]), str(body["buy_asset"]),
                       int(body["sell_minor"]), int(body["buy_minor"]), Fraction(body["rate"]),
                       Fraction(body["mid_rate"]), str(body["reporting_asset"]),
                       Fraction(body["buy_reporting_rate"]), int(body["executed_at_us"]))


def available_reader(ledger: Ledger, pool: str) -> Callable[[str, str], int]:
    def available(channel: str, asset: str) -> int:
        address = pool_account(pool, asset, channel, PoolState.AVAILABLE)
        return ledger.balance(address, asset).available

    return available
