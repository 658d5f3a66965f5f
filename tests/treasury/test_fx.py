"""FX: quotes rounded in the pool's favour, execution as one balanced multi-asset transaction
through the FX position accounts, and the P&L per pair, with worked examples whose figures
are computed by hand in the comments."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from fundpool.core.errors import UnknownAsset
from fundpool.core.ledger.model import Account, Posting
from fundpool.core.money import Asset, AssetKind
from fundpool.ledger.service import Ledger
from fundpool.pool.accounts import PoolState, pool_account, world_account
from fundpool.pool.rates import StaticRates, round_half_even
from fundpool.treasury.fx import (
    FX_QUOTE_TTL_US_MAX,
    FX_SPREAD_MAX,
    Executed,
    FxPositionMismatch,
    FxReportingMismatch,
    InvalidQuote,
    PairPnl,
    Quote,
    QuoteExpired,
    UnknownRate,
    check_quote,
    conversion_postings,
    executed,
    fx_pnl,
    fx_position,
    fx_position_account,
    pair_of,
    quote,
)

EUR = Asset("EUR", 2, AssetKind.FIAT)
USD = Asset("USD", 2, AssetKind.FIAT)
GBP = Asset("GBP", 2, AssetKind.FIAT)
JPY = Asset("JPY", 0, AssetKind.FIAT)
ETH = Asset("ETH", 18, AssetKind.CRYPTO)
ASSETS = {asset.code: asset for asset in (EUR, USD, GBP, JPY, ETH)}
BPS_25 = Fraction("0.0025")
TTL_US = 30_000_000
T0_US = 1_800_000_000_000_000


def rates(**pairs: str) -> StaticRates:
    return StaticRates.from_mapping(
        {"rates": {name.replace("_", "/"): text for name, text in pairs.items()}}
    )


TODAY = rates(EUR_USD="1.0843", USD_JPY="151.37", ETH_USD="3120.55")
EUR_AT_1_10 = rates(EUR_USD="1.10", USD_JPY="151.37")


def eur_for_usd(amount_minor: int = 100_000, source: StaticRates = TODAY, **more: int) -> Quote:
    return quote(source, EUR, USD, sell_minor=amount_minor, spread=BPS_25, ttl_us=TTL_US,
                 now_us=T0_US, quote_id="q-1", **more)


def pnl(conversions: list[Executed], source: StaticRates) -> list[PairPnl]:
    positions: dict[str, int] = {}
    for conversion in conversions:
        positions[conversion.sell_asset] = (
            positions.get(conversion.sell_asset, 0) + conversion.sell_minor
        )
        positions[conversion.buy_asset] = (
            positions.get(conversion.buy_asset, 0) - conversion.buy_minor
        )
    return fx_pnl(conversions, positions, source, USD, ASSETS)


# --- worked examples -----------------------------------------------------------------------------


def test_the_client_sells_1000_eur_and_gets_usd_rounded_down() -> None:
    given_quote = eur_for_usd()
    # 1.0843 x (1 - 0.0025) = 1.08158925; 1,000.00 EUR x 1.08158925 = 1,081.58925 USD,
    # rounded down: 1,081.58.
    assert given_quote.mid_rate == Fraction("1.0843")
    assert given_quote.rate == Fraction("1.08158925")
    assert given_quote.sell_minor == 100_000
    assert given_quote.buy_minor == 108_158
    assert given_quote.spread == BPS_25
    assert given_quote.created_at_us == T0_US
    assert given_quote.expires_at_us == T0_US + TTL_US
    assert given_quote.body()["rate"] == "4326357/4000000"
    assert Fraction(str(given_quote.body()["rate"])) == given_quote.rate


def test_the_spread_earned_and_the_eur_position_revalued() -> None:
    done = executed(eur_for_usd(), rates=TODAY, reporting=USD, now_us=T0_US + 1)
    # The pool received 1,000.00 EUR, worth 1,084.30 USD at mid, and gave 1,081.58 USD:
    # 2.72 USD (the 25 bps is 2.71075 USD, the rounding down 0.00925 more).
    assert pnl([done], TODAY) == [
        PairPnl("EUR/USD", realised_minor=272, unrealised_minor=0, spread_minor=272,
                volume_base_minor=100_000, volume_quote_minor=108_158, count=1)
    ]
    # EUR/USD moves to 1.10: the long 1,000.00 EUR is worth 1,100.00 USD against 1,084.30 at
    # execution, +15.70; in all 18.42 = 1,100.00 - 1,081.58, the position accounts' value.
    [moved] = pnl([done], EUR_AT_1_10)
    assert (moved.realised_minor, moved.unrealised_minor) == (272, 1_570)


def test_the_client_buys_1000_usd_and_pays_eur_rounded_up() -> None:
    given_quote = quote(TODAY, EUR, USD, buy_minor=100_000, spread=BPS_25, ttl_us=TTL_US,
                        now_us=T0_US, quote_id="q-2")
    # 1,000.00 USD / 1.08158925 = 924.5687... EUR, rounded up: 924.57.
    assert (given_quote.sell_minor, given_quote.buy_minor) == (92_457, 100_000)
    done = executed(given_quote, rates=TODAY, reporting=USD, now_us=T0_US)
    # 924.57 EUR x 1.0843 = 1,002.511251 USD received, 1,000.00 given: 2.51.
    [figures] = pnl([done], TODAY)
    assert (figures.realised_minor, figures.unrealised_minor, figures.spread_minor) == (251, 0,
                                                                                      251)


def test_a_round_trip_at_unchanged_rates_earns_both_spreads() -> None:
    there = executed(eur_for_usd(), rates=TODAY, reporting=USD, now_us=T0_US)
    back_quote = quote(TODAY, USD, EUR, sell_minor=108_158, spread=BPS_25, ttl_us=TTL_US,
                       now_us=T0_US + 1, quote_id="q-3")
    # 1,081.58 USD / 1.0843 x 0.9975 = 994.99... EUR, rounded down.
    assert back_quote.buy_minor == 99_499
    back = executed(back_quote, rates=TODAY, reporting=USD, now_us=T0_US + 2)
    # 2.72 there; back: 1,081.58 - 994.99 x 1.0843 = 2.711... ; together 5.431...: 5.43.
    # What is left open is 5.01 EUR = 5.43 USD at 1.0843, the same money.
    assert pnl([there, back], TODAY) == [
        PairPnl("EUR/USD", realised_minor=543, unrealised_minor=0, spread_minor=543,
                volume_base_minor=199_499, volume_quote_minor=216_316, count=2)
    ]


def test_a_round_trip_after_a_move_realises_what_closing_earned() -> None:
    there = executed(eur_for_usd(), rates=TODAY, reporting=USD, now_us=T0_US)
    back_quote = quote(EUR_AT_1_10, USD, EUR, sell_minor=108_158, spread=BPS_25,
                       ttl_us=TTL_US, now_us=T0_US + 1, quote_id="q-3")
    # 1,081.58 USD / 1.10 x 0.9975 = 980.79... EUR, rounded down.
    assert back_quote.buy_minor == 98_079
    back = executed(back_quote, rates=EUR_AT_1_10, reporting=USD, now_us=T0_US + 2)
    # Spreads: 2.72 + (1,081.58 - 980.79 x 1.10 = 2.711) = 5.431 -> 5.43.
    # Closing 980.79 of the 1,000.00 EUR bought at 1.0843 against 1.10: +15.398 -> realised
    # 5.431 + 15.398 = 20.829 -> 20.83. Open: 19.21 EUR x (1.10 - 1.0843) = 0.3016 -> 0.30.
    # 20.829 + 0.3016 = 21.131 = 19.21 EUR at 1.10, the position accounts' value.
    [figures] = pnl([there, back], EUR_AT_1_10)
    assert (figures.realised_minor, figures.unrealised_minor, figures.spread_minor) == (
        2_083, 30, 543)


def test_a_cross_pair_is_valued_in_the_reporting_currency() -> None:
    consistent = rates(EUR_USD="1.10", GBP_USD="1.25", EUR_GBP="0.88")  # 1.10 / 1.25 = 0.88
    given_quote = quote(consistent, GBP, EUR, sell_minor=100_000, spread=BPS_25,
                        ttl_us=TTL_US, now_us=T0_US, quote_id="q-4")
    # 1,000.00 GBP / 0.88 x 0.9975 = 1,133.5227... EUR, rounded down.
    assert given_quote.buy_minor == 113_352
    done = executed(given_quote, rates=consistent, reporting=USD, now_us=T0_US)
    assert done.buy_reporting_rate == Fraction("1.10")
    # 1,000.00 GBP = 1,250.00 USD received; 1,133.52 EUR = 1,246.872 USD given: 3.128 -> 3.13.
    [figures] = pnl([done], consistent)
    assert figures.pair == "EUR/GBP"  # neither is USD: alphabetical
    assert (figures.realised_minor, figures.unrealised_minor) == (313, 0)
    # GBP/USD to 1.30, EUR unchanged: the long 1,000.00 GBP gains 50.00 USD.
    [moved] = pnl([done], rates(EUR_USD="1.10", GBP_USD="1.30"))
    assert (moved.realised_minor, moved.unrealised_minor) == (313, 5_000)


def test_a_scale_0_asset_is_rounded_to_whole_units() -> None:
    given_quote = quote(TODAY, USD, JPY, sell_minor=100_000, spread=BPS_25, ttl_us=TTL_US,
                        now_us=T0_US, quote_id="q-5")
    # 1,000.00 USD x 151.37 x 0.9975 = 150,991.575 JPY, rounded down.
    assert given_quote.buy_minor == 150_991
    done = executed(given_quote, rates=TODAY, reporting=USD, now_us=T0_US)
    # 1,000.00 USD received, 150,991 JPY = 997.4995... USD given: 2.5005 -> 2.50.
    [figures] = pnl([done], TODAY)
    assert figures.pair == "JPY/USD"  # the reporting currency is the quote
    assert figures.realised_minor == 250


def test_a_market_move_between_quote_and_execution_is_the_pool_s() -> None:
    given_quote = eur_for_usd()
    done = executed(given_quote, rates=rates(EUR_USD="1.07"), reporting=USD, now_us=T0_US)
    assert done.mid_rate == Fraction("1.07")
    assert done.rate == given_quote.rate  # the client got what it was quoted
    # 1,000.00 EUR is worth 1,070.00 USD at execution; the pool gave 1,081.58: -11.58.
    [figures] = pnl([done], rates(EUR_USD="1.07"))
    assert figures.realised_minor == -1_158


# --- quote validity ------------------------------------------------------------------------------


def test_a_quote_holds_until_just_before_it_expires() -> None:
    given_quote = eur_for_usd()
    assert check_quote(given_quote, T0_US + TTL_US - 1) is given_quote
    with pytest.raises(QuoteExpired) as caught:
        check_quote(given_quote, T0_US + TTL_US)
    assert caught.value.code == "fx_quote_expired"
    assert caught.value.facts["expires_at_us"] == T0_US + TTL_US
    assert caught.value.facts["quote_id"] == "q-1"
    with pytest.raises(QuoteExpired):
        executed(given_quote, rates=TODAY, reporting=USD, now_us=T0_US + TTL_US)


def test_an_unknown_pair_is_refused() -> None:
    with pytest.raises(UnknownRate) as caught:
        quote(TODAY, EUR, GBP, sell_minor=100, spread=BPS_25, ttl_us=TTL_US, now_us=T0_US,
              quote_id="q")
    assert caught.value.code == "fx_rate_unknown"
    assert caught.value.facts == {"base": "EUR", "quote": "GBP"}


@pytest.mark.parametrize(
    "changes",
    [
        {"sell_minor": 0},
        {"sell_minor": -100},
        {"sell_minor": True},
        {"sell_minor": 2**128},
        {"sell_minor": 10.0},
        {"buy_minor": 100},  # both sides
        {"sell_minor": None},  # neither side
        {"spread": 0.0025},
        {"spread": Fraction(-1, 10_000)},
        {"spread": FX_SPREAD_MAX + Fraction(1, 10_000)},
        {"ttl_us": 0},
        {"ttl_us": FX_QUOTE_TTL_US_MAX + 1},
        {"ttl_us": 30.0},
        {"now_us": -1},
        {"quote_id": ""},
        {"quote_id": "a b"},
        {"quote_id": "q" * 129},
        {"buy": EUR},  # same asset
    ],
)
def test_an_invalid_request_is_refused(changes: dict[str, object]) -> None:
    request: dict[str, object] = {
        "sell": EUR, "buy": USD, "sell_minor": 100_000, "spread": BPS_25, "ttl_us": TTL_US,
        "now_us": T0_US, "quote_id": "q-1",
    }
    request.update(changes)
    with pytest.raises(InvalidQuote) as caught:
        quote(TODAY, **request)  # type: ignore[arg-type]
    assert caught.value.code == "invalid_fx_quote"


def test_an_amount_too_small_to_buy_anything_is_refused() -> None:
    # 1 JPY is 0.66 US cents at mid: rounded down, nothing.
    with pytest.raises(InvalidQuote, match="too small"):
        quote(TODAY, JPY, USD, sell_minor=1, spread=BPS_25, ttl_us=TTL_US, now_us=T0_US,
              quote_id="q")
    # Buying 1 US cent costs 2 JPY, rounded up from 1.5175...
    assert quote(TODAY, JPY, USD, buy_minor=1, spread=BPS_25, ttl_us=TTL_US, now_us=T0_US,
                 quote_id="q").sell_minor == 2


def test_an_amount_whose_other_side_would_overflow_is_refused() -> None:
    whole = Asset("AAA", 0, AssetKind.CRYPTO)
    wei = Asset("BBB", 18, AssetKind.CRYPTO)
    with pytest.raises(InvalidQuote, match="too large"):
        quote(rates(AAA_BBB="100000"), whole, wei, sell_minor=10**24, spread=BPS_25,
              ttl_us=TTL_US, now_us=T0_US, quote_id="q")


def test_the_limits_are_accepted() -> None:
    most = quote(TODAY, EUR, USD, sell_minor=100_000, spread=FX_SPREAD_MAX,
                 ttl_us=FX_QUOTE_TTL_US_MAX, now_us=0, quote_id="q" * 128)
    assert most.rate == Fraction("1.0843") * Fraction(9, 10)
    free = quote(TODAY, EUR, USD, sell_minor=100_000, spread=Fraction(0), ttl_us=1,
                 now_us=0, quote_id="q")
    assert free.buy_minor == 108_430


# --- execution -----------------------------------------------------------------------------------


def test_the_conversion_postings_go_through_the_fx_position_accounts() -> None:
    postings = conversion_postings("main", eur_for_usd(), sell_channel="bank-eu",
                                   buy_channel="bank-us")
    assert postings == (
        Posting("pool:main:eur:bank-eu:available", "fx:main:eur:position", "EUR", 100_000),
        Posting("fx:main:usd:position", "pool:main:usd:bank-us:available", "USD", 108_158),
    )
    assert fx_position("main", "USDT.TRON") == "fx:main:usdt_tron:position"
    account = fx_position_account("main", "EUR")
    assert (account.address, account.asset, account.allow_negative) == (
        "fx:main:eur:position", "EUR", True)


def test_a_conversion_is_one_transaction_in_a_real_ledger(ledger: Ledger) -> None:
    for asset in (EUR, USD):
        ledger.define_asset(asset)
    eur_available = pool_account("main", "EUR", "bank-eu", PoolState.AVAILABLE)
    usd_available = pool_account("main", "USD", "bank-us", PoolState.AVAILABLE)
    for account in (
        Account(world_account("bank-eu")),
        Account(eur_available, asset="EUR"),
        Account(usd_available, asset="USD"),
        fx_position_account("main", "EUR"),
        fx_position_account("main", "USD"),
    ):
        ledger.open_account(account)
    ledger.transfer([Posting(world_account("bank-eu"), eur_available, "EUR", 100_000)])
    given_quote = eur_for_usd()
    ledger.transfer(conversion_postings("main", given_quote, sell_channel="bank-eu",
                                        buy_channel="bank-us"),
                    metadata={"fx_quote_id": given_quote.id})
    assert ledger.balance(eur_available, "EUR").posted == 0
    assert ledger.balance(usd_available, "USD").posted == 108_158
    assert ledger.balance("fx:main:eur:position", "EUR").posted == 100_000
    assert ledger.balance("fx:main:usd:position", "USD").posted == -108_158  # short USD
    done = executed(given_quote, rates=TODAY, reporting=USD, now_us=T0_US)
    positions = {
        "EUR": ledger.balance("fx:main:eur:position", "EUR").posted,
        "USD": ledger.balance("fx:main:usd:position", "USD").posted,
    }
    [figures] = fx_pnl([done], positions, EUR_AT_1_10, USD, ASSETS)
    assert (figures.realised_minor, figures.unrealised_minor) == (272, 1_570)


# --- P&L inputs ----------------------------------------------------------------------------------


def test_positions_that_the_conversions_do_not_explain_are_refused() -> None:
    done = executed(eur_for_usd(), rates=TODAY, reporting=USD, now_us=T0_US)
    with pytest.raises(FxPositionMismatch) as caught:
        fx_pnl([done], {"EUR": 100_000, "USD": -108_000}, TODAY, USD, ASSETS)
    assert caught.value.code == "fx_position_mismatch"
    assert caught.value.facts == {"asset": "USD", "position_minor": -108_000,
                                  "conversions_minor": -108_158}
    with pytest.raises(FxPositionMismatch):
        fx_pnl([], {"GBP": 1}, TODAY, USD, ASSETS)
    assert fx_pnl([], {"GBP": 0}, TODAY, USD, ASSETS) == []


def test_a_conversion_valued_in_another_currency_is_refused() -> None:
    done = executed(eur_for_usd(), rates=TODAY, reporting=EUR, now_us=T0_US)
    assert done.buy_reporting_rate == 1 / Fraction("1.0843")
    with pytest.raises(FxReportingMismatch) as caught:
        pnl([done], TODAY)
    assert caught.value.code == "fx_reporting_mismatch"


@pytest.mark.parametrize(("reporting_asset", "buy_reporting_rate"), [
    ("USD", Fraction("1.0843")),  # the buy asset is the reporting currency: 1
    ("EUR", Fraction(1)),  # the sell asset is: 1 / mid
])
def test_an_execution_that_values_the_reporting_currency_off_1_is_refused(
    reporting_asset: str, buy_reporting_rate: Fraction
) -> None:
    with pytest.raises(InvalidQuote, match="at 1"):
        Executed("q", "EUR", "USD", 100_000, 108_158, Fraction("1.08158925"),
                 Fraction("1.0843"), reporting_asset, buy_reporting_rate, T0_US)


def test_an_asset_without_a_scale_or_a_rate_today_is_refused() -> None:
    done = executed(eur_for_usd(), rates=TODAY, reporting=USD, now_us=T0_US)
    positions = {"EUR": 100_000, "USD": -108_158}
    with pytest.raises(UnknownAsset):
        fx_pnl([done], positions, TODAY, USD, {"USD": USD})
    with pytest.raises(UnknownRate):
        fx_pnl([done], positions, rates(USD_JPY="151.37"), USD, ASSETS)


def test_pairs_are_named_with_the_reporting_currency_as_quote() -> None:
    assert pair_of("EUR", "USD", "USD") == ("EUR", "USD")
    assert pair_of("USD", "EUR", "USD") == ("EUR", "USD")
    assert pair_of("USD", "JPY", "USD") == ("JPY", "USD")
    assert pair_of("GBP", "EUR", "USD") == ("EUR", "GBP")
    assert pair_of("EUR", "GBP", "USD") == ("EUR", "GBP")


# --- properties ----------------------------------------------------------------------------------

SCALES = st.sampled_from([0, 2, 6, 8, 18])
RATE_TEXTS = st.builds(
    lambda whole, decimals: f"{whole}.{decimals}",
    st.integers(0, 100_000), st.integers(1, 99_999_999).map(lambda n: f"{n:08d}"),
)
SPREADS = st.integers(0, 1_000).map(lambda bps: Fraction(bps, 10_000))


@st.composite
def conversion_requests(draw: st.DrawFn) -> tuple[Asset, Asset, StaticRates, dict[str, int]]:
    sell = Asset("AAA", draw(SCALES), AssetKind.CRYPTO)
    buy = Asset("BBB", draw(SCALES), AssetKind.CRYPTO)
    source = rates(AAA_BBB=draw(RATE_TEXTS))
    side = draw(st.sampled_from(["sell_minor", "buy_minor"]))
    return sell, buy, source, {side: draw(st.integers(1, 10**24))}


def quoted(sell: Asset, buy: Asset, source: StaticRates, amount: dict[str, int],
           spread: Fraction, now_us: int = T0_US) -> Quote | None:
    """The quote, or None when the other side would round to nothing or exceed 2^128 - 1."""
    try:
        return quote(source, sell, buy, spread=spread, ttl_us=TTL_US, now_us=now_us,
                     quote_id="q", **amount)
    except InvalidQuote as error:
        if "too small" not in error.detail and "too large" not in error.detail:
            raise
        return None


@given(conversion_requests(), SPREADS)
def test_quotes_are_positive_and_rounded_in_the_pool_s_favour(
    request: tuple[Asset, Asset, StaticRates, dict[str, int]], spread: Fraction
) -> None:
    sell, buy, source, amount = request
    given_quote = quoted(sell, buy, source, amount, spread)
    assume(given_quote is not None)
    assert given_quote is not None
    assert given_quote.sell_minor > 0
    assert given_quote.buy_minor > 0
    # In units: what the client buys is worth at most the mid value of what it sells, less
    # the spread; and the rounding takes less than one minor unit.
    sold = Fraction(given_quote.sell_minor, 10**sell.scale)
    bought = Fraction(given_quote.buy_minor, 10**buy.scale)
    mid = given_quote.mid_rate
    assert bought <= sold * mid * (1 - spread)
    if "sell_minor" in amount:
        assert given_quote.sell_minor == amount["sell_minor"]
        assert bought + Fraction(1, 10**buy.scale) > sold * mid * (1 - spread)
    else:
        assert given_quote.buy_minor == amount["buy_minor"]
        assert (sold - Fraction(1, 10**sell.scale)) * mid * (1 - spread) < bought


@given(conversion_requests(), SPREADS, st.sampled_from(["main", "p-2"]))
def test_a_conversion_balances_per_asset(
    request: tuple[Asset, Asset, StaticRates, dict[str, int]], spread: Fraction, pool: str
) -> None:
    sell, buy, source, amount = request
    given_quote = quoted(sell, buy, source, amount, spread)
    assume(given_quote is not None)
    assert given_quote is not None
    changes: dict[tuple[str, str], int] = {}
    for posting in conversion_postings(pool, given_quote, sell_channel="a",
                                       buy_channel="b"):
        key_out = (posting.source, posting.asset)
        key_in = (posting.destination, posting.asset)
        changes[key_out] = changes.get(key_out, 0) - posting.amount_minor
        changes[key_in] = changes.get(key_in, 0) + posting.amount_minor
    for code in (sell.code, buy.code):
        assert sum(change for (_, asset), change in changes.items() if asset == code) == 0
    assert changes == {
        (pool_account(pool, "AAA", "a", PoolState.AVAILABLE), "AAA"): -given_quote.sell_minor,
        (fx_position(pool, "AAA"), "AAA"): given_quote.sell_minor,
        (fx_position(pool, "BBB"), "BBB"): -given_quote.buy_minor,
        (pool_account(pool, "BBB", "b", PoolState.AVAILABLE), "BBB"): given_quote.buy_minor,
    }


REPORTING = Asset("BBB", 2, AssetKind.FIAT)


@given(st.integers(1, 10**15), SCALES, RATE_TEXTS, SPREADS)
def test_a_round_trip_at_unchanged_rates_earns_the_two_spreads(
    amount_minor: int, scale: int, rate_text: str, spread: Fraction
) -> None:
    other = Asset("AAA", scale, AssetKind.CRYPTO)
    source = rates(AAA_BBB=rate_text)
    assets = {"AAA": other, "BBB": REPORTING}
    there_quote = quoted(other, REPORTING, source, {"sell_minor": amount_minor}, spread)
    assume(there_quote is not None)
    assert there_quote is not None
    back_quote = quoted(REPORTING, other, source, {"sell_minor": there_quote.buy_minor},
                        spread, T0_US + 1)
    assume(back_quote is not None)
    assert back_quote is not None
    there = executed(there_quote, rates=source, reporting=REPORTING, now_us=T0_US)
    back = executed(back_quote, rates=source, reporting=REPORTING, now_us=T0_US + 1)
    positions = {"AAA": there.sell_minor - back.buy_minor, "BBB": 0}
    [figures] = fx_pnl([back, there], positions, source, REPORTING, assets)
    mid = Fraction(rate_text) * Fraction(10**REPORTING.scale, 10**scale)  # BBB minor per AAA
    # Each leg's spread: what the pool received less what it gave, both at mid.
    spread_there = there.sell_minor * mid - there.buy_minor
    spread_back = back.sell_minor - back.buy_minor * mid
    assert spread_there >= spread * there.sell_minor * mid >= 0
    assert spread_back >= spread * back.sell_minor >= 0
    assert figures.unrealised_minor == 0
    assert figures.realised_minor == figures.spread_minor == round_half_even(
        spread_there + spread_back)
    # And it is what the pool has left: the AAA it kept, at mid.
    assert spread_there + spread_back == positions["AAA"] * mid
    assert figures.count == 2


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[Executed], StaticRates]:
    """Conversions among three assets over changing rates, reported in USD."""
    conversions = []
    for index in range(draw(st.integers(1, 12))):
        source = rates(EUR_USD=draw(RATE_TEXTS),
                       GBP_USD=draw(RATE_TEXTS),
                       EUR_GBP=draw(RATE_TEXTS))
        sell, buy = draw(st.permutations([EUR, USD, GBP]))[:2]
        amount = draw(st.integers(1, 10**9))
        given_quote = quoted(sell, buy, source, {"sell_minor": amount}, draw(SPREADS),
                             T0_US + index)
        if given_quote is not None:
            conversions.append(executed(given_quote, rates=source, reporting=USD,
                                        now_us=T0_US + draw(st.integers(0, 20))))
    today = rates(EUR_USD=draw(RATE_TEXTS),
                  GBP_USD=draw(RATE_TEXTS))
    return conversions, today


@given(histories())
def test_the_pnl_adds_up_to_the_value_of_the_positions_today(
    history: tuple[list[Executed], StaticRates]
) -> None:
    conversions, today = history
    positions: dict[str, int] = {}
    for conversion in conversions:
        positions[conversion.sell_asset] = (
            positions.get(conversion.sell_asset, 0) + conversion.sell_minor
        )
        positions[conversion.buy_asset] = (
            positions.get(conversion.buy_asset, 0) - conversion.buy_minor
        )
    figures = fx_pnl(conversions, positions, today, USD, ASSETS)
    value_today = sum(
        (
            minor * (today.rate(code, "USD") or Fraction(0))
            for code, minor in positions.items()
        ),
        Fraction(0),
    )
    total = sum(pair.realised_minor + pair.unrealised_minor for pair in figures)
    # Two figures per pair, each rounded once: at most half a minor unit off each.
    assert abs(total - value_today) <= len(figures)
    assert sum(pair.count for pair in figures) == len(conversions)
    assert [pair.pair for pair in figures] == sorted(pair.pair for pair in figures)
