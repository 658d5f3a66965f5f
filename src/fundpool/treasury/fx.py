"""FX conversion: quotes, the postings that execute them, and the P&L per currency pair.

Pure: no I/O and no clock. Times are ints of µs since the epoch (UTC) passed in by the caller,
amounts ints of minor units, rates exact `Fraction`s (units of the buy asset for one unit of
the sell asset), never floats.

**Quote.** A client sells `sell` and buys `buy`. The all-in rate is `mid x (1 - spread)`:
the spread is taken from what the client receives, whichever side the client fixes. Exactly
one side is given; the other is computed exactly and rounded once, in the pool's favour: when
the client fixes what it sells, what it buys is rounded down; when it fixes what it buys,
what it sells is rounded up. So the client never gets more than the mid-rate value less the
spread. A quote holds until `expires_at_us` (exclusive).

**Execution** is one ledger transaction of two postings, one per asset, through the pool's FX
position accounts `fx:<pool>:<asset>:position`:

    pool:<pool>:<sell>:<sell_channel>:available  -> fx:<pool>:<sell>:position   sell_minor
    fx:<pool>:<buy>:position   -> pool:<pool>:<buy>:<buy_channel>:available      buy_minor

Each posting moves one asset between two accounts, so each asset's balances still add up to
zero. The position accounts may go negative (open them with `fx_position_account`): their
balances are the pool's open FX position, long the assets clients sold to it (positive) and
short the ones it paid out (negative), until a hedge or an opposite conversion closes them.

**P&L** (`fx_pnl`) is per currency pair, in the pool's reporting currency R, from the
conversions as executed (`Executed`: the quote's amounts, the mid rate at execution and the
mid rate of the buy asset in R at execution). A conversion's legs enter the pair's books at
their mid value in R at execution: `+sell_minor` of the sell asset at `mid x k` and
`-buy_minor` of the buy asset at `k`, where `k` is R per unit of the buy asset.

- spread: what the pool received less what it gave, both at the mid at execution, in R:
  `(sell x mid - buy) x k`. The spread, the rounding in the pool's favour and any move of the
  mid between quote and execution (against the pool or for it) are all in it.
- realised: the spread, plus what closing a position earned. Each pair keeps an
  average-cost book per asset; a leg that reduces the book's open quantity realises
  `closed quantity x (average cost - price of the leg)`, in R.
- unrealised: the open quantity of each of the pair's asset books at today's rate in R, less
  its average cost: `open x rate now - cost`. An asset in R has price 1 and no P&L.

So `realised + unrealised` over all pairs is, exactly, the position accounts valued at today's
rates. Each figure is summed exactly and rounded once, half to even, to R's minor unit. A pair
is named `BASE/QUOTE`: the reporting currency is the quote when it is in the pair, otherwise
the two codes in alphabetical order; conversions in both directions go to the same pair.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction

from fundpool.core.errors import FundpoolError, UnknownAsset, invariant
from fundpool.core.ledger.model import Account, Posting
from fundpool.core.money import AMOUNT_MAX_MINOR, Asset
from fundpool.pool.accounts import PoolState, asset_segment, pool_account
from fundpool.pool.rates import InvalidRates, RateSource, round_half_even

# A quote is an option the client holds against the pool; the longer it runs, the further the
# market can move against the pool before it is taken.
FX_QUOTE_TTL_US_MAX = 15 * 60 * 1_000_000
FX_SPREAD_MAX = Fraction(1, 10)  # 1,000 bps
FX_QUOTE_ID_PATTERN = re.compile(r"^[\x21-\x7e]{1,128}\Z")


class UnknownRate(FundpoolError):
    code = "fx_rate_unknown"
    title = "the rate source has no rate for this currency pair"


class InvalidQuote(FundpoolError):
    code = "invalid_fx_quote"
    title = "the FX quote request is not valid"


class QuoteExpired(FundpoolError):
    code = "fx_quote_expired"
    title = "the FX quote has expired"


class FxPositionMismatch(FundpoolError):
    code = "fx_position_mismatch"
    title = "the FX position accounts do not match the conversions"


class FxReportingMismatch(FundpoolError):
    code = "fx_reporting_mismatch"
    title = "the conversion was valued in another reporting currency"


# --- accounts --------------------------------------------------------------------------------


def fx_position(pool: str, asset_code: str) -> str:
    """The pool's FX position in one asset (may go negative)."""
    return f"fx:{pool}:{asset_segment(asset_code)}:position"


def fx_position_account(pool: str, asset_code: str) -> Account:
    return Account(fx_position(pool, asset_code), asset=asset_code, allow_negative=True)


# --- quotes ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Quote:
    """The client sells `sell_minor` of `sell_asset` for `buy_minor` of `buy_asset`.
    `rate` = `mid_rate x (1 - spread)`, units of buy per unit of sell."""

    id: str
    sell_asset: str
    buy_asset: str
    sell_minor: int
    buy_minor: int
    mid_rate: Fraction
    rate: Fraction
    spread: Fraction
    created_at_us: int
    expires_at_us: int

    def body(self) -> dict[str, object]:
        """JSON-safe; a rate is exact text `Fraction` reads back (`"10843/10000"`)."""
        return {
            "id": self.id,
            "sell_asset": self.sell_asset,
            "buy_asset": self.buy_asset,
            "sell_minor": self.sell_minor,
            "buy_minor": self.buy_minor,
            "mid_rate": str(self.mid_rate),
            "rate": str(self.rate),
            "spread": str(self.spread),
            "created_at_us": self.created_at_us,
            "expires_at_us": self.expires_at_us,
        }


def quote(
    rates: RateSource,
    sell: Asset,
    buy: Asset,
    *,
    sell_minor: int | None = None,
    buy_minor: int | None = None,
    spread: Fraction,
    ttl_us: int,
    now_us: int,
    quote_id: str,
) -> Quote:
    """A firm quote for `ttl_us`: give exactly one of `sell_minor` (what the client sells) and
    `buy_minor` (what it buys); the other side is rounded in the pool's favour."""
    if not isinstance(quote_id, str) or not FX_QUOTE_ID_PATTERN.match(quote_id):
        raise InvalidQuote("a quote id is 1 to 128 printable ASCII characters",
                           quote_id=repr(quote_id)[:140])
    if sell.code == buy.code:
        raise InvalidQuote("a conversion needs two different assets", asset=sell.code)
    given_minor = buy_minor if sell_minor is None else sell_minor
    if given_minor is None or (sell_minor is not None and buy_minor is not None):
        raise InvalidQuote("give exactly one of sell_minor and buy_minor",
                           sell_minor=sell_minor, buy_minor=buy_minor)
    _check_amount(given_minor, (buy if sell_minor is None else sell).code,
                  "buy_minor" if sell_minor is None else "sell_minor")
    _check_spread(spread)
    if isinstance(ttl_us, bool) or not isinstance(ttl_us, int) \
            or not 0 < ttl_us <= FX_QUOTE_TTL_US_MAX:
        raise InvalidQuote(f"ttl_us is an int in 1..{FX_QUOTE_TTL_US_MAX}", ttl_us=repr(ttl_us))
    if isinstance(now_us, bool) or not isinstance(now_us, int) or now_us < 0:
        raise InvalidQuote("now_us is an int of µs since the epoch", now_us=repr(now_us))
    mid = mid_rate(rates, sell.code, buy.code)
    rate = mid * (1 - spread)
    # Each side as an exact Fraction of the other, in minor units.
    buy_per_sell_minor = rate * Fraction(10**buy.scale, 10**sell.scale)
    if sell_minor is not None:
        sold_minor = given_minor
        exact = sold_minor * buy_per_sell_minor
        bought_minor = exact.numerator // exact.denominator
        _check_computed(bought_minor, buy.code, "buy_minor")
    else:
        bought_minor = given_minor
        exact = bought_minor / buy_per_sell_minor
        sold_minor = -(-exact.numerator // exact.denominator)
        _check_computed(sold_minor, sell.code, "sell_minor")
    # The pool's favour, always: what the client gets is worth at most its payment at `rate`.
    invariant(bought_minor <= sold_minor * buy_per_sell_minor,
              "an FX quote rounded in the client's favour")
    return Quote(quote_id, sell.code, buy.code, sold_minor, bought_minor, mid, rate, spread,
                 now_us, now_us + ttl_us)


def check_quote(quote: Quote, now_us: int) -> Quote:
    """`quote` when it still holds at `now_us`, else `QuoteExpired`."""
    if now_us >= quote.expires_at_us:
        raise QuoteExpired(quote_id=quote.id, expires_at_us=quote.expires_at_us, now_us=now_us)
    return quote


def mid_rate(rates: RateSource, base: str, quote: str) -> Fraction:
    rate = rates.rate(base, quote)
    if rate is None:
        raise UnknownRate(base=base, quote=quote)
    if not isinstance(rate, Fraction) or rate <= 0:
        raise InvalidRates("a rate source gave a rate that is not a positive Fraction",
                           pair=f"{base}/{quote}", rate=repr(rate))
    return rate


def _check_spread(spread: object) -> None:
    if not isinstance(spread, Fraction):
        raise InvalidQuote("the spread is an exact Fraction, never a float",
                           spread=repr(spread))
    if not 0 <= spread <= FX_SPREAD_MAX:
        raise InvalidQuote(f"the spread is between 0 and {FX_SPREAD_MAX}", spread=str(spread))


def _check_amount(amount_minor: object, asset: str, side: str) -> None:
    if isinstance(amount_minor, bool) or not isinstance(amount_minor, int):
        raise InvalidQuote(f"{side} is an int of minor units", asset=asset,
                           amount=repr(amount_minor))
    if not 0 < amount_minor <= AMOUNT_MAX_MINOR:
        raise InvalidQuote(f"{side} is positive and at most 2^128 - 1", asset=asset,
                           amount_minor=amount_minor)


def _check_computed(amount_minor: int, asset: str, side: str) -> None:
    if amount_minor <= 0:
        raise InvalidQuote(f"the amount is too small: {side} would be zero", asset=asset)
    if amount_minor > AMOUNT_MAX_MINOR:
        raise InvalidQuote(f"the amount is too large: {side} would exceed 2^128 - 1",
                           asset=asset)


# --- execution -------------------------------------------------------------------------------


def conversion_postings(
    pool: str, quote: Quote, *, sell_channel: str, buy_channel: str
) -> tuple[Posting, Posting]:
    """The two postings of one ledger transaction that execute `quote` for `pool`."""
    return (
        Posting(
            pool_account(pool, quote.sell_asset, sell_channel, PoolState.AVAILABLE),
            fx_position(pool, quote.sell_asset),
            quote.sell_asset,
            quote.sell_minor,
        ),
        Posting(
            fx_position(pool, quote.buy_asset),
            pool_account(pool, quote.buy_asset, buy_channel, PoolState.AVAILABLE),
            quote.buy_asset,
            quote.buy_minor,
        ),
    )


@dataclass(frozen=True, slots=True)
class Executed:
    """A conversion as executed: the quote's amounts and rate, and the mid rates at execution.
    `buy_reporting_rate` is units of `reporting_asset` for one unit of `buy_asset`, at mid."""

    quote_id: str
    sell_asset: str
    buy_asset: str
    sell_minor: int
    buy_minor: int
    rate: Fraction
    mid_rate: Fraction
    reporting_asset: str
    buy_reporting_rate: Fraction
    executed_at_us: int

    def __post_init__(self) -> None:
        if self.sell_asset == self.buy_asset:
            raise InvalidQuote("a conversion needs two different assets", asset=self.sell_asset)
        _check_amount(self.sell_minor, self.sell_asset, "sell_minor")
        _check_amount(self.buy_minor, self.buy_asset, "buy_minor")
        for name in ("rate", "mid_rate", "buy_reporting_rate"):
            value = getattr(self, name)
            if not isinstance(value, Fraction) or value <= 0:
                raise InvalidQuote(f"{name} is a positive Fraction", quote_id=self.quote_id,
                                   value=repr(value))
        # The reporting currency is worth 1 of itself: valued any other way, cash in it would
        # show a P&L.
        consistent = {
            self.buy_asset: Fraction(1),
            self.sell_asset: 1 / self.mid_rate,
        }.get(self.reporting_asset, self.buy_reporting_rate)
        if self.buy_reporting_rate != consistent:
            raise InvalidQuote("buy_reporting_rate must value the reporting currency at 1",
                               quote_id=self.quote_id, reporting_asset=self.reporting_asset,
                               buy_reporting_rate=str(self.buy_reporting_rate))

    @property
    def pair(self) -> tuple[str, str]:
        return pair_of(self.sell_asset, self.buy_asset, self.reporting_asset)

    def body(self) -> dict[str, object]:
        return {
            "quote_id": self.quote_id,
            "sell_asset": self.sell_asset,
            "buy_asset": self.buy_asset,
            "sell_minor": self.sell_minor,
            "buy_minor": self.buy_minor,
            "rate": str(self.rate),
            "mid_rate": str(self.mid_rate),
            "reporting_asset": self.reporting_asset,
            "buy_reporting_rate": str(self.buy_reporting_rate),
            "executed_at_us": self.executed_at_us,
        }


def executed(quote: Quote, *, rates: RateSource, reporting: Asset, now_us: int) -> Executed:
    """The record of executing `quote` at `now_us`, with the mid rates read now (the quote's
    own mid is from when it was given; the market may have moved since)."""
    check_quote(quote, now_us)
    mid = mid_rate(rates, quote.sell_asset, quote.buy_asset)
    if quote.buy_asset == reporting.code:
        buy_reporting = Fraction(1)
    elif quote.sell_asset == reporting.code:
        buy_reporting = 1 / mid  # the pair's own mid, so both legs are valued consistently
    else:
        buy_reporting = mid_rate(rates, quote.buy_asset, reporting.code)
    return Executed(quote.id, quote.sell_asset, quote.buy_asset, quote.sell_minor,
                    quote.buy_minor, quote.rate, mid, reporting.code, buy_reporting, now_us)


# --- P&L -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PairPnl:
    """One currency pair's P&L in minor units of the reporting currency (module docstring).
    Volumes are what changed hands in both directions, in each asset's own minor units."""

    pair: str
    realised_minor: int
    unrealised_minor: int
    spread_minor: int
    volume_base_minor: int
    volume_quote_minor: int
    count: int


def pair_of(a: str, b: str, reporting: str) -> tuple[str, str]:
    """(base, quote) of the pair of `a` and `b`: R is the quote when it is in the pair."""
    if a == reporting:
        return b, a
    if b == reporting:
        return a, b
    return (a, b) if a < b else (b, a)


@dataclass
class _Book:
    """An average-cost book of one asset in one pair; cost and P&L in R's minor units."""

    open_minor: int = 0
    cost: Fraction = Fraction(0)
    realised: Fraction = Fraction(0)

    def add(self, quantity_minor: int, price: Fraction) -> None:
        if self.open_minor == 0 or (self.open_minor > 0) == (quantity_minor > 0):
            self.open_minor += quantity_minor
            self.cost += quantity_minor * price
            return
        closing = (
            quantity_minor if abs(quantity_minor) <= abs(self.open_minor) else -self.open_minor
        )
        average = self.cost / self.open_minor
        self.realised += closing * (average - price)
        self.cost += closing * average
        self.open_minor += closing
        rest = quantity_minor - closing
        if rest:  # the leg went through zero: the rest opens the other way at its own price
            self.open_minor += rest
            self.cost += rest * price
        if self.open_minor == 0:
            invariant(self.cost == 0, "an FX book with nothing open still carries a cost")


@dataclass
class _Pair:
    books: dict[str, _Book]
    spread: Fraction = Fraction(0)
    volume_base_minor: int = 0
    volume_quote_minor: int = 0
    count: int = 0


def fx_pnl(
    conversions: Sequence[Executed],
    positions: Mapping[str, int],
    rates: RateSource,
    reporting: Asset,
    assets: Mapping[str, Asset],
) -> list[PairPnl]:
    """Realised and unrealised P&L per pair, in `reporting` (definitions: module docstring).

    `conversions` are every conversion that moved the pool's FX position accounts, in any
    order (they are booked by execution time, ties in the order given); `positions` are those
    accounts' balances by asset code, and must be what the conversions add up to, else
    `FxPositionMismatch`: a P&L of an incomplete history would be wrong without a sign of it.
    `rates` are today's (a `HttpRates.current()` snapshot keeps them one document); `assets`
    gives each asset's scale. Pairs come sorted by name."""
    pairs: dict[tuple[str, str], _Pair] = {}
    legs_minor: dict[str, int] = {}
    order = sorted(range(len(conversions)), key=lambda i: (conversions[i].executed_at_us, i))
    for index in order:
        conversion = conversions[index]
        if conversion.reporting_asset != reporting.code:
            raise FxReportingMismatch(quote_id=conversion.quote_id,
                                      valued_in=conversion.reporting_asset,
                                      reporting=reporting.code)
        sell = _asset(assets, conversion.sell_asset)
        buy = _asset(assets, conversion.buy_asset)
        buy_price = _per_minor(conversion.buy_reporting_rate, buy, reporting)
        sell_price = _per_minor(conversion.mid_rate * conversion.buy_reporting_rate, sell,
                                reporting)
        key = conversion.pair
        base = key[0]
        pair = pairs.setdefault(key, _Pair({key[0]: _Book(), key[1]: _Book()}))
        pair.books[sell.code].add(conversion.sell_minor, sell_price)
        pair.books[buy.code].add(-conversion.buy_minor, buy_price)
        pair.spread += conversion.sell_minor * sell_price - conversion.buy_minor * buy_price
        base_minor, quote_minor = (
            (conversion.sell_minor, conversion.buy_minor) if sell.code == base
            else (conversion.buy_minor, conversion.sell_minor)
        )
        pair.volume_base_minor += base_minor
        pair.volume_quote_minor += quote_minor
        pair.count += 1
        legs_minor[sell.code] = legs_minor.get(sell.code, 0) + conversion.sell_minor
        legs_minor[buy.code] = legs_minor.get(buy.code, 0) - conversion.buy_minor
    for code in sorted(set(legs_minor) | set(positions)):
        if legs_minor.get(code, 0) != positions.get(code, 0):
            raise FxPositionMismatch(asset=code, position_minor=positions.get(code, 0),
                                     conversions_minor=legs_minor.get(code, 0))
    prices_now: dict[str, Fraction] = {}
    result = []
    for (base, quote_code), pair in sorted(pairs.items()):
        unrealised = Fraction(0)
        for code, book in pair.books.items():
            if book.open_minor == 0:
                continue  # nothing open: no rate needed today
            if code not in prices_now:
                prices_now[code] = _per_minor(
                    mid_rate(rates, code, reporting.code), assets[code], reporting
                )
            unrealised += book.open_minor * prices_now[code] - book.cost
        realised = pair.spread + sum((book.realised for book in pair.books.values()),
                                     Fraction(0))
        result.append(PairPnl(
            f"{base}/{quote_code}",
            round_half_even(realised),
            round_half_even(unrealised),
            round_half_even(pair.spread),
            pair.volume_base_minor,
            pair.volume_quote_minor,
            pair.count,
        ))
    return result


def _asset(assets: Mapping[str, Asset], code: str) -> Asset:
    asset = assets.get(code)
    if asset is None:
        raise UnknownAsset("the P&L needs the scale of every asset converted", asset=code)
    return asset


def _per_minor(rate: Fraction, asset: Asset, reporting: Asset) -> Fraction:
    """Minor units of `reporting` for one minor unit of `asset` at `rate` (R per unit)."""
    return rate * Fraction(10**reporting.scale, 10**asset.scale)
