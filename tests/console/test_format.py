"""The console's amounts and ratios: exact, by scale and locale (fundpool.console.format)."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fundpool.console.format import (
    amount_display,
    amount_text,
    change_percent,
    decimal_to_minor,
    duration_text,
    percent_text,
    ratio_text,
    time_text,
)
from fundpool.core.money import AMOUNT_MAX_MINOR, format_amount

amounts = st.integers(min_value=-AMOUNT_MAX_MINOR, max_value=AMOUNT_MAX_MINOR)
scales = st.integers(min_value=0, max_value=18)


@given(amounts, scales, st.sampled_from(["en", "zh-CN"]))
def test_full_text_is_the_exact_amount_grouped(amount: int, scale: int, locale: str) -> None:
    text = amount_text(amount, scale, locale)  # type: ignore[arg-type]
    # Removing the grouping gives back the core's exact decimal text, digit for digit.
    assert text.replace(",", "") == format_amount(amount, scale)
    assert decimal_to_minor(text.replace(",", ""), scale) == amount


@given(amounts, scales)
def test_compact_text_is_within_half_a_hundredth_of_its_unit(amount: int, scale: int) -> None:
    for locale, units in (("en", {"K": 10**3, "M": 10**6, "B": 10**9}),
                          ("zh-CN", {"万": 10**4, "亿": 10**8})):
        text = amount_text(amount, scale, locale, compact=True)  # type: ignore[arg-type]
        suffix = text[-1]
        if suffix in units:
            shown = Fraction(Decimal(text[:-1].replace(",", ""))) * units[suffix]
            exact = Fraction(amount, 10**scale)
            assert abs(shown - exact) <= Fraction(units[suffix], 200)
        else:
            assert text == amount_text(amount, scale, locale)  # type: ignore[arg-type]


def test_examples() -> None:
    assert amount_text(5_622_992_382, 2) == "56,229,923.82"
    assert amount_text(5_622_992_382, 2, "en", compact=True) == "56.23M"
    assert amount_text(5_622_992_382, 2, "zh-CN", compact=True) == "5,622.99万"
    assert amount_text(123_456_789_012_345_678_901, 18) == "123.456789012345678901"
    assert amount_text(-150, 2, signed=True) == "-1.50"
    assert amount_text(150, 2, signed=True) == "+1.50"
    assert amount_text(0, 2, signed=True) == "0.00"
    # Half to even at the compact figure's last digit.
    assert amount_text(1_234_500, 0, compact=True) == "1.23M"
    assert amount_text(1_235_500, 0, compact=True) == "1.24M"


def test_ratios_and_changes() -> None:
    assert percent_text(1, 8) == "12.5 %"
    assert percent_text(1, 0) == "–"
    assert change_percent(110, 100) == "+10.00 %"
    assert change_percent(90, 100) == "-10.00 %"
    assert change_percent(5, 0) == "–"
    assert ratio_text("0.9663") == "96.6 %"
    assert ratio_text(None) == "–"


def test_decimal_to_minor_refuses_more_decimals_than_the_scale() -> None:
    assert decimal_to_minor("-12.30", 2) == -1230
    with pytest.raises(ValueError, match="at most 2 decimals"):
        decimal_to_minor("1.005", 2)


def test_time_text_is_utc_to_the_millisecond() -> None:
    assert time_text(1_764_000_000_123_456) == "16:00:00.123"
    assert time_text(1_764_000_000_123_456, with_date=True) == "2025-11-24 16:00:00.123"


@given(amounts, scales)
def test_a_shown_amount_is_exact_or_says_it_is_not(amount: int, scale: int) -> None:
    """At most six decimals; a shown amount that is not the exact one is marked (`≈`, `<`,
    `>`), and the exact one (the tooltip) is every decimal of the scale."""
    shown, exact = amount_display(amount, scale)
    assert exact == amount_text(amount, scale)
    digits = shown.lstrip("≈<>-+").replace(",", "")
    assert len(digits.partition(".")[2]) <= 6
    true = Fraction(amount, 10**scale)
    if shown[0] in "≈<>":
        value = Fraction(Decimal(digits)) * (-1 if "-" in shown else 1)
        assert value != true
        assert abs(value - true) <= Fraction(1, 10**6)
    else:
        assert Fraction(Decimal(shown.replace(",", ""))) == true


def test_amount_display_examples() -> None:
    assert amount_display(24_000_000_000_000, 18) == ("0.000024", "0.000024000000000000")
    assert amount_display(81_444_459_714_749_424, 18)[0] == "≈0.081444"
    assert amount_display(21, 18)[0] == "<0.000001"  # never a bare 0 for something
    assert amount_display(-21, 18)[0] == ">-0.000001"
    assert amount_display(12_345, 2) == ("123.45", "123.45")
    assert amount_display(68_284_982, 6)[0] == "68.284982"


def test_durations_read_as_a_person_says_them() -> None:
    assert duration_text(120_000) == "120 ms"
    assert duration_text(3_400_000) == "3.4 s"
    assert duration_text(125_000_000) == "2 min 5 s"
    assert duration_text(11_520_000_000) == "3 h 12 min"
    assert duration_text(172_803_591_652) == "2 d 0 h"  # was "172,803.6 s"
    assert duration_text(172_803_591_652, "zh-CN") == "2 天 0 小时"


def test_the_health_table_says_low_and_critical_from_the_rails_depth() -> None:
    from fundpool.console.format import health_status

    assert health_status("healthy", failing=False) == ("ok", "positive")
    assert health_status("low", failing=False) == ("low_depth", "warning")
    assert health_status("critical", failing=False) == ("critical", "negative")
    assert health_status("healthy", failing=True) == ("failing", "negative")
    assert health_status("critical", failing=True) == ("failing", "negative")
