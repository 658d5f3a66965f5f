"""Credit lines: what to draw and what can be repaid, the limit, and daily interest that carries
its fraction of a minor unit so that no unit is ever lost or made up."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fundpool.treasury.bands import Band
from fundpool.treasury.credit import (
    CreditFacility,
    CreditLimitExceeded,
    InvalidFacility,
    accrue_daily,
    check_draw,
    draw_needed,
    facilities_from_mapping,
    facility_from_mapping,
    headroom_minor,
    repay_possible,
)

RCF = CreditFacility("rcf-usd", "bank-a", "USD", 1_000_000, Fraction("0.065"), 360)
BAND = Band("bank-a", "USD", 200_000, 500_000, 900_000)
TABLE = {"id": "rcf-usd", "channel": "bank-a", "asset": "USD", "limit_minor": 1_000_000,
         "annual_rate": "0.065", "day_count": 360}


def test_a_position_below_its_minimum_draws_up_to_its_target_within_the_limit() -> None:
    assert draw_needed(RCF, 0, 150_000, BAND) == 350_000
    assert draw_needed(RCF, 800_000, 150_000, BAND) == 200_000  # what the limit leaves
    assert draw_needed(RCF, 1_000_000, 0, BAND) == 0
    assert draw_needed(RCF, 0, 200_000, BAND) == 0  # at its minimum: nothing to draw
    assert draw_needed(RCF, 0, 400_000, BAND) == 0


def test_a_surplus_above_target_repays_at_most_what_is_drawn() -> None:
    assert repay_possible(RCF, 300_000, 650_000, BAND) == 150_000
    assert repay_possible(RCF, 100_000, 650_000, BAND) == 100_000
    assert repay_possible(RCF, 300_000, 450_000, BAND) == 0
    assert repay_possible(RCF, 0, 950_000, BAND) == 0


def test_the_limit_is_a_limit() -> None:
    assert headroom_minor(RCF, 250_000) == 750_000
    assert check_draw(RCF, 250_000, 750_000) == 1_000_000
    with pytest.raises(CreditLimitExceeded) as refused:
        check_draw(RCF, 250_000, 750_001)
    assert refused.value.code == "credit_limit_exceeded"
    assert refused.value.facts == {"facility": "rcf-usd", "drawn_minor": 250_000,
                                   "amount_minor": 750_001, "limit_minor": 1_000_000,
                                   "headroom_minor": 750_000}
    with pytest.raises(CreditLimitExceeded):  # a limit lowered under what is drawn
        draw_needed(RCF, 1_000_001, 0, BAND)


def test_a_band_of_another_position_is_refused() -> None:
    with pytest.raises(InvalidFacility, match="another position"):
        draw_needed(RCF, 0, 0, Band("bank-b", "USD", 1, 2, 3))
    with pytest.raises(InvalidFacility, match="another position"):
        repay_possible(RCF, 0, 0, Band("bank-a", "EUR", 1, 2, 3))


def test_one_day_of_interest_and_its_carry() -> None:
    # 1,000,000 at 6.5 % over 360 days: 180.555... a day
    interest, carry = accrue_daily(1_000_000, Fraction("0.065"), 360, Fraction(0))
    assert (interest, carry) == (180, Fraction(5, 9))
    interest, carry = accrue_daily(1_000_000, Fraction("0.065"), 360, carry)
    assert (interest, carry) == (181, Fraction(1, 9))
    assert accrue_daily(0, Fraction("0.065"), 365, Fraction(1, 3)) == (0, Fraction(1, 3))


@given(st.lists(st.integers(0, 10**12), min_size=1, max_size=400),
       st.integers(0, 1_000_000).map(lambda n: Fraction(n, 1_000_000)),
       st.sampled_from([360, 365, 366]))
def test_daily_interest_adds_up_to_the_exact_total_rounded_down(
        drawn_by_day: list[int], rate: Fraction, day_count: int) -> None:
    carry = Fraction(0)
    charged = 0
    for drawn in drawn_by_day:
        interest, carry = accrue_daily(drawn, rate, day_count, carry)
        assert interest >= 0
        assert 0 <= carry < 1
        charged += interest
    exact = sum(Fraction(d) * rate / day_count for d in drawn_by_day)
    assert charged == int(exact)  # never a unit lost, never one made up
    assert charged + carry == exact


def test_facilities_read_from_tables() -> None:
    assert facility_from_mapping(TABLE) == RCF
    without_day_count = {k: v for k, v in TABLE.items() if k != "day_count"}
    assert facility_from_mapping(without_day_count).day_count == 365
    assert facilities_from_mapping([TABLE, {**TABLE, "id": "rcf-2"}])[1].id == "rcf-2"
    with pytest.raises(InvalidFacility, match="own id"):
        facilities_from_mapping([TABLE, TABLE])


@pytest.mark.parametrize(("change", "field"), [
    ({"annual_rate": 0.065}, "facility.annual_rate"),
    ({"annual_rate": "1.5"}, "facility.annual_rate"),
    ({"annual_rate": "-0.01"}, "facility.annual_rate"),
    ({"annual_rate": "six"}, "facility.annual_rate"),
    ({"day_count": 364}, "facility.day_count"),
    ({"limit_minor": -1}, "facility.limit_minor"),
    ({"limit_minor": 10.0}, "facility.limit_minor"),
    ({"id": "RCF 1"}, "facility.id"),
    ({"rate": "0.05"}, "facility.rate"),
])
def test_a_bad_facility_is_refused_naming_the_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidFacility) as refused:
        facility_from_mapping({**TABLE, **change})
    assert refused.value.code == "invalid_credit_facility"
    assert refused.value.facts["field"] == field


def test_a_facility_made_in_code_is_checked_too() -> None:
    with pytest.raises(InvalidFacility):
        CreditFacility("f", "bank-a", "USD", 10, 0.05)  # type: ignore[arg-type]
    with pytest.raises(InvalidFacility):
        CreditFacility("f", "bank-a", "USD", 10, Fraction(1, 20), 364)
    with pytest.raises(InvalidFacility):
        accrue_daily(10, Fraction(1, 20), 365, Fraction(1))
    assert CreditFacility("f", "bank-a", "USD", 10, 0).annual_rate == Fraction(0)  # type: ignore[arg-type]
