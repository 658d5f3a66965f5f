"""Reporting rates: exact Fractions from decimal text, and conversion between minor units that
rounds once, half to even, with integers only."""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fundpool.core.money import AMOUNT_MAX_MINOR, SCALE_MAX, Asset, AssetKind
from fundpool.pool.rates import InvalidRates, StaticRates, convert_minor, convert_parts

EXAMPLE_RATES = Path(__file__).resolve().parents[2] / "examples" / "rates.toml"


def asset(code: str, scale: int) -> Asset:
    return Asset(code, scale, AssetKind.CRYPTO)


def half_even(value: Fraction) -> int:
    """The integer nearest to `value`, ties to the even one: the test's own reference."""
    floor = value.numerator // value.denominator
    rest = value - floor
    if rest > Fraction(1, 2):
        return floor + 1
    if rest < Fraction(1, 2):
        return floor
    return floor if floor % 2 == 0 else floor + 1


def reference(amount: int, rate: Fraction, source_scale: int, target_scale: int) -> int:
    return half_even(Fraction(amount) * rate * Fraction(10**target_scale, 10**source_scale))


def test_the_reference_rounding_is_half_to_even() -> None:
    halves = [half_even(Fraction(n, 2)) for n in range(-5, 6)]
    assert halves == [-2, -2, -2, -1, 0, 0, 0, 1, 2, 2, 2]
    assert half_even(Fraction(7, 3)) == 2
    assert half_even(Fraction(8, 3)) == 3
    assert half_even(Fraction(-7, 3)) == -2


# --- the rate source -----------------------------------------------------------------------------


def test_direct_inverse_and_identity_rates_are_exact_fractions() -> None:
    rates = StaticRates.from_mapping(
        {"as_of": "2026-11-24T00:00:00Z", "rates": {"EUR/USD": "1.0843", "ETH/USD": "3120.55"}}
    )
    direct = rates.rate("EUR", "USD")
    assert isinstance(direct, Fraction)
    assert direct == Fraction(10843, 10000)
    inverse = rates.rate("USD", "EUR")
    assert isinstance(inverse, Fraction)
    assert inverse == Fraction(10000, 10843)
    assert rates.rate("ETH", "USD") == Fraction(312055, 100)
    assert rates.rate("USD", "ETH") == Fraction(100, 312055)
    assert rates.rate("USD", "USD") == 1
    assert isinstance(rates.rate("USD", "USD"), Fraction)
    assert rates.rate("XYZ", "XYZ") == 1  # identity needs no entry
    assert rates.as_of == "2026-11-24T00:00:00Z"


def test_an_unknown_pair_is_none_and_rates_are_never_chained() -> None:
    rates = StaticRates.from_mapping({"rates": {"EUR/USD": "1.0843", "ETH/USD": "3120.55"}})
    assert rates.rate("EUR", "ETH") is None  # both known against USD: still not chained
    assert rates.rate("ETH", "EUR") is None
    assert rates.rate("GBP", "USD") is None
    assert rates.rate("USD", "GBP") is None
    assert StaticRates().rate("EUR", "USD") is None
    assert StaticRates.from_mapping({}).rate("EUR", "USD") is None
    assert StaticRates.from_mapping({}).as_of is None


def test_many_decimals_are_kept_exactly() -> None:
    text = "123456789012345678901234567890.123456789012345678901234567890"
    rates = StaticRates.from_mapping({"rates": {"BTC/USD": text}})
    whole, decimals = text.split(".")
    assert rates.rate("BTC", "USD") == Fraction(int(whole + decimals), 10 ** len(decimals))
    assert rates.rate("BTC", "USD") != Fraction(float(text))


def test_codes_with_a_dash_or_a_dot_are_accepted() -> None:
    rates = StaticRates.from_mapping({"rates": {"E-CNY/USD": "0.1381", "USDT.TRON/USD": "1"}})
    assert rates.rate("E-CNY", "USD") == Fraction(1381, 10000)
    assert rates.rate("USD", "USDT.TRON") == 1


def test_the_example_rates_file_loads() -> None:
    rates = StaticRates.load(EXAMPLE_RATES)
    assert rates.as_of == "2026-11-24T00:00:00Z"
    assert dict(rates.rates) == {
        ("EUR", "USD"): Fraction("1.0843"),
        ("USDT", "USD"): Fraction("0.9998"),
        ("ETH", "USD"): Fraction("3120.55"),
        ("E-CNY", "USD"): Fraction("0.1381"),
    }


def refused(document: dict[str, Any]) -> InvalidRates:
    with pytest.raises(InvalidRates) as caught:
        StaticRates.from_mapping(document, source="r.toml")
    assert caught.value.code == "invalid_rates"
    assert caught.value.facts["source"] == "r.toml"
    return caught.value


@pytest.mark.parametrize("value", [1.0843, 1, 0.5, True, 10**40, None, ["1.0"], {"v": "1"}])
def test_a_rate_that_is_not_decimal_text_is_refused(value: Any) -> None:
    error = refused({"rates": {"EUR/USD": value}})
    assert error.facts["pair"] == "EUR/USD"


@pytest.mark.parametrize(
    "text",
    ["0", "0.0", "0.000000", "-1.08", "+1.08", "1e3", "1.", ".5", " 1.08", "1,08", "", "abc",
     "1.0.1", "NaN", "inf", "1" * 31, "1." + "1" * 31],
)
def test_a_non_positive_or_malformed_rate_is_refused(text: str) -> None:
    assert refused({"rates": {"EUR/USD": text}}).facts["pair"] == "EUR/USD"


@pytest.mark.parametrize(
    "pair",
    [
        "EURUSD", "EUR/", "/USD", "eur/usd", "EUR/USD/GBP", "EUR USD", "EUR-USD", "E/USD", "",
        "EUR/usd", "EUR /USD",
    ],
)
def test_a_malformed_pair_is_refused(pair: str) -> None:
    refused({"rates": {pair: "1.0"}})


@pytest.mark.parametrize("table", ["EUR/USD=1.08", ["EUR/USD"], 1.08])
def test_a_rates_section_that_is_not_a_table_is_refused(table: Any) -> None:
    refused({"rates": table})


def load_refused(path: Path) -> InvalidRates:
    with pytest.raises(InvalidRates) as caught:
        StaticRates.load(path)
    assert caught.value.code == "invalid_rates"
    assert caught.value.facts["source"] == str(path)
    return caught.value


def test_a_float_in_a_rates_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "rates.toml"
    path.write_text('[rates]\n"EUR/USD" = 1.0843\n', encoding="utf-8")
    load_refused(path)
    path.write_text('[rates]\n"EUR/USD" = 1\n', encoding="utf-8")
    load_refused(path)


def test_bad_rates_files_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "rates.toml"
    path.write_text('[rates]\n"EUR/USD" = \n', encoding="utf-8")
    load_refused(path)
    path.write_bytes('# caf\u00e9\n[rates]\n"EUR/USD" = "1.08"\n'.encode("latin-1"))
    load_refused(path)
    load_refused(tmp_path / "absent.toml")
    body = '[rates]\n"EUR/USD" = "1.08"\n'
    path.write_text("#" * (1_000_001 - len(body) - 1) + "\n" + body, encoding="utf-8")
    assert path.stat().st_size == 1_000_001
    load_refused(path)
    path.write_text("#" * (1_000_000 - len(body) - 1) + "\n" + body, encoding="utf-8")
    assert path.stat().st_size == 1_000_000
    assert StaticRates.load(path).rate("EUR", "USD") == Fraction(108, 100)


# --- convert_minor -------------------------------------------------------------------------------

amounts = st.one_of(
    st.integers(0, AMOUNT_MAX_MINOR),
    st.integers(0, 10**6),
    st.sampled_from([0, 1, 5, 15, 25, 2**64, AMOUNT_MAX_MINOR - 1, AMOUNT_MAX_MINOR]),
)
scales = st.integers(0, SCALE_MAX)
decimal_rates = st.builds(
    lambda whole, decimals, places: Fraction(f"{whole}.{str(decimals).zfill(places)[:places]}")
    if places
    else Fraction(whole),
    st.integers(0, 10**12),
    st.integers(0, 10**30),
    st.integers(0, 30),
).filter(lambda r: r > 0)
rates = st.one_of(
    decimal_rates,
    decimal_rates.map(lambda r: 1 / r),  # an inverse rate is any positive Fraction
    st.fractions(min_value=Fraction(1, 10**12), max_value=10**12).filter(lambda r: r > 0),
)


@given(amount=amounts, scale=scales)
def test_rate_one_between_equal_scales_is_the_identity(amount: int, scale: int) -> None:
    assert convert_minor(amount, asset("AAA", scale), asset("BBB", scale), Fraction(1)) == amount


@given(amount=amounts, source=scales, target=scales, rate=rates)
def test_conversion_is_half_even_of_the_exact_value(
    amount: int, source: int, target: int, rate: Fraction
) -> None:
    result = convert_minor(amount, asset("AAA", source), asset("BBB", target), rate)
    assert type(result) is int
    assert result == reference(amount, rate, source, target)


@given(amount=st.integers(-(10**30), 10**30), source=scales, target=scales, rate=rates)
def test_conversion_of_a_negative_figure_mirrors_the_positive_one(
    amount: int, source: int, target: int, rate: Fraction
) -> None:
    result = convert_minor(amount, asset("AAA", source), asset("BBB", target), rate)
    assert result == reference(amount, rate, source, target)
    # Half-even is symmetric about zero.
    assert convert_minor(-amount, asset("AAA", source), asset("BBB", target), rate) == -result


@given(
    low=amounts, delta=st.integers(0, 10**20), source=scales, target=scales, rate=rates
)
def test_conversion_is_monotonic_in_the_amount(
    low: int, delta: int, source: int, target: int, rate: Fraction
) -> None:
    high = low + delta
    a, b = asset("AAA", source), asset("BBB", target)
    assert convert_minor(low, a, b, rate) <= convert_minor(high, a, b, rate)


@given(amount=st.integers(2**60, AMOUNT_MAX_MINOR))
def test_large_amounts_at_18_decimals_are_exact_where_floats_are_not(amount: int) -> None:
    eth, usd = asset("ETH", 18), asset("USD", 2)
    rate = Fraction("3120.55")
    exact = reference(amount, rate, 18, 2)
    assert convert_minor(amount, eth, usd, rate) == exact
    # Wei to wei at rate 1 keeps every unit, which a float could not.
    assert convert_minor(amount, eth, asset("WETH", 18), Fraction(1)) == amount
    assert convert_minor(amount + 1, eth, asset("WETH", 18), Fraction(1)) == amount + 1


def test_known_values() -> None:
    usd, eur, eth = asset("USD", 2), asset("EUR", 2), asset("ETH", 18)
    usdt = asset("USDT", 6)
    eur_usd = Fraction("1.0843")
    assert convert_minor(100_00, eur, usd, eur_usd) == 108_43
    assert convert_minor(1, eur, usd, eur_usd) == 1  # 1.0843 -> 1
    # 0.5 exactly -> 0 (even); 1.5 -> 2; 2.5 -> 2; 3.5 -> 4.
    half = Fraction(1, 2)
    assert [convert_minor(n, usd, usd, half) for n in (1, 3, 5, 7)] == [0, 2, 2, 4]
    # 1 ETH at 3120.55 USD.
    assert convert_minor(10**18, eth, usd, Fraction("3120.55")) == 312_055
    # 1 wei is far below a cent.
    assert convert_minor(1, eth, usd, Fraction("3120.55")) == 0
    # Half a cent in USDT rounds to even.
    assert convert_minor(5_000, usdt, usd, Fraction(1)) == 0
    assert convert_minor(15_000, usdt, usd, Fraction(1)) == 2
    assert convert_minor(15_001, usdt, usd, Fraction(1)) == 2
    assert convert_minor(14_999, usdt, usd, Fraction(1)) == 1
    # Up-scaling multiplies exactly.
    assert convert_minor(AMOUNT_MAX_MINOR, usd, eth, Fraction(1)) == AMOUNT_MAX_MINOR * 10**16


class NoFloatInt(int):
    """An int that refuses to become a float or to be divided with '/'."""

    def __float__(self) -> float:
        raise AssertionError("an amount was turned into a float")

    def __truediv__(self, other: object) -> Any:
        raise AssertionError("an amount was divided with '/'")

    def __rtruediv__(self, other: object) -> Any:
        raise AssertionError("an amount was divided with '/'")


class NoFloatFraction(Fraction):
    def __float__(self) -> float:
        raise AssertionError("a rate was turned into a float")


@given(
    amount=st.integers(0, AMOUNT_MAX_MINOR),
    source=scales,
    target=scales,
    rate=rates,
)
def test_conversion_never_touches_a_float(
    amount: int, source: int, target: int, rate: Fraction
) -> None:
    result = convert_minor(
        NoFloatInt(amount),
        asset("AAA", source),
        asset("BBB", target),
        NoFloatFraction(rate.numerator, rate.denominator),
    )
    assert int(result) == reference(amount, rate, source, target)


def test_a_float_path_would_lose_units_that_conversion_keeps() -> None:
    amount = AMOUNT_MAX_MINOR - 12345
    rate = Fraction(10**18 + 1, 10**18)
    result = convert_minor(amount, asset("ETH", 18), asset("WETH", 18), rate)
    assert type(result) is int
    assert result == reference(amount, rate, 18, 18)
    assert result != round(float(amount) * float(rate))


# --- convert_parts: a total converted once, shared out by largest remainder -------------------


def reference_parts(parts: list[int], factor: Fraction) -> tuple[list[int], int]:
    exact = [Fraction(p) * factor for p in parts]
    total = half_even(sum(exact, Fraction(0)))
    shares = [math.floor(value) for value in exact]
    waiting = list(range(len(parts)))
    for _ in range(total - sum(shares)):
        best = max(waiting, key=lambda i: (exact[i] - math.floor(exact[i]), -i))
        shares[best] += 1
        waiting.remove(best)
    return shares, total


@given(
    parts=st.lists(st.one_of(st.integers(0, 10**6), st.integers(0, AMOUNT_MAX_MINOR)),
                   min_size=1, max_size=6),
    source=scales,
    target=scales,
    rate=rates,
)
def test_converted_parts_add_up_to_the_converted_total(
    parts: list[int], source: int, target: int, rate: Fraction
) -> None:
    a, b = asset("AAA", source), asset("BBB", target)
    shares, total = convert_parts(parts, a, b, rate)
    factor = rate * Fraction(10**target, 10**source)
    assert (shares, total) == reference_parts(parts, factor)
    assert sum(shares) == total
    assert total == convert_minor(sum(parts), a, b, rate)
    for part, share in zip(parts, shares, strict=True):
        exact = Fraction(part) * factor
        assert math.floor(exact) <= share <= math.ceil(exact)


def test_largest_remainder_known_values() -> None:
    usd = asset("USD", 2)
    third = Fraction(1, 3)
    # 1/3 each of 1, 1, 1: 1.0 in all, every part 0.33..: the cent goes to the first.
    assert convert_parts([1, 1, 1], usd, usd, third) == ([1, 0, 0], 1)
    # A larger remainder wins over an earlier one.
    assert convert_parts([1, 2], usd, usd, third) == ([0, 1], 1)
    # Half-even on the total: 0.5 + 0 -> 0; 1.5 -> 2.
    half = Fraction(1, 2)
    assert convert_parts([1, 0], usd, usd, half) == ([0, 0], 0)
    assert convert_parts([1, 2], usd, usd, half) == ([1, 1], 2)
    assert convert_parts([3, 0, 0, 0], usd, usd, Fraction(1)) == ([3, 0, 0, 0], 3)
