"""Dynamic fees: EIP-1559's base fee rule, bounded per step and clamped, an interval's count
carried into the next base fee, idle intervals walking it down, and the window and risk grade
multipliers on top, rounded half to even and explained."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fundpool.channels.congestion import (
    IDLE_STEPS_MAX,
    RISK_GRADES,
    CongestionState,
    DynamicFee,
    FeeWindow,
    advance,
    dynamic_fee_minor,
    initial_state,
    multiplier_text,
    next_base_fee,
    taken,
)
from fundpool.core.money import Asset, AssetKind
from fundpool.pool.config import InvalidConfig
from fundpool.risk.policy import Outcome

USD = Asset("USD", 2, AssetKind.FIAT)
US = 1_000_000
HOUR_US = 3_600 * US
DAY_US = 24 * HOUR_US
EIGHTH = Fraction(1, 8)


def fee(**changes: object) -> DynamicFee:
    """0.50 to 20.00 USD, 200 payments per 10 s, 1/8 per step; 1.5 from 09 to 17 UTC."""
    settings: dict[str, object] = {
        "asset": USD, "base_fee_minor": 50, "ceiling_minor": 2_000, "target_per_interval": 200,
        "interval_s": 10, "windows": (FeeWindow(9, 17, Fraction(3, 2)),),
        "risk": {"review": Fraction(6, 5), "hold": Fraction(2)},
    }
    settings.update(changes)
    return DynamicFee(**settings)  # type: ignore[arg-type]


# --- next_base_fee: EIP-1559 ------------------------------------------------------------------


def test_at_the_target_the_base_fee_stays() -> None:
    assert next_base_fee(1_000, 200, 200, EIGHTH, 50, 2_000) == 1_000


def test_congestion_raises_it_by_at_most_max_change() -> None:
    assert next_base_fee(1_000, 300, 200, EIGHTH, 50, 2_000) == 1_062  # 62.5: half to even
    assert next_base_fee(1_000, 400, 200, EIGHTH, 50, 2_000) == 1_125  # twice the target
    assert next_base_fee(1_000, 40_000, 200, EIGHTH, 50, 2_000) == 1_125  # no further


def test_idleness_lowers_it_by_at_most_max_change() -> None:
    assert next_base_fee(1_000, 100, 200, EIGHTH, 50, 2_000) == 938  # 62.5 -> 62
    assert next_base_fee(1_000, 0, 200, EIGHTH, 50, 2_000) == 875
    assert next_base_fee(1_000, -5, 200, EIGHTH, 50, 2_000) == 875


def test_it_stays_within_the_floor_and_the_ceiling() -> None:
    assert next_base_fee(1_990, 400, 200, EIGHTH, 50, 2_000) == 2_000
    assert next_base_fee(2_000, 400, 200, EIGHTH, 50, 2_000) == 2_000
    assert next_base_fee(52, 0, 200, EIGHTH, 50, 2_000) == 50
    assert next_base_fee(50, 0, 200, EIGHTH, 50, 2_000) == 50


def test_a_congested_interval_raises_even_a_fee_too_small_to_move() -> None:
    # 3 x 1/8 x (201 - 200) / 200 rounds to 0; EIP-1559 raises by at least one unit.
    assert next_base_fee(3, 201, 200, EIGHTH, 0, 2_000) == 4
    assert next_base_fee(0, 400, 200, EIGHTH, 0, 2_000) == 1
    assert next_base_fee(0, 200, 200, EIGHTH, 0, 2_000) == 0  # at the target: never


@given(
    st.integers(0, 10**12), st.integers(0, 10**6), st.integers(1, 10**5),
    st.fractions(min_value=Fraction(1, 1_000), max_value=1, max_denominator=1_000),
    st.integers(0, 10**12), st.integers(0, 10**12),
)
def test_one_step_is_bounded_by_max_change_and_clamped(
    current: int, used: int, target: int, max_change: Fraction, low: int, high: int
) -> None:
    floor, ceiling = min(low, high), max(low, high)
    current = min(max(current, floor), ceiling)
    new = next_base_fee(current, used, target, max_change, floor, ceiling)
    assert floor <= new <= ceiling
    assert abs(new - current) <= current * max_change + 1  # + 1: rounding, the minimum rise
    if used > target:
        assert new >= current
    elif used < target:
        assert new <= current
    else:
        assert new == current


# --- the state, interval by interval ----------------------------------------------------------


def test_a_channel_starts_at_its_floor_in_the_interval_of_the_moment() -> None:
    state = initial_state(fee(), 123 * US)
    assert state == CongestionState(50, 120 * US, 0)


def test_an_interval_s_count_moves_the_next_base_fee_and_idle_ones_lower_it() -> None:
    config = fee(base_fee_minor=1_000)
    state = initial_state(config, 0)
    state = taken(state, config, 250, 1 * US)
    state = taken(state, config, 150, 9 * US)  # 400 in the interval: twice the target
    assert state == CongestionState(1_000, 0, 400)
    assert advance(state, config, 9_999_999) is state  # the interval has not closed
    assert advance(state, config, 10 * US) == CongestionState(1_125, 10 * US, 0)
    # Two more intervals closed, both idle: 1,125 -> 984 (984.375) -> 1,000, the floor.
    assert advance(state, config, 35 * US) == CongestionState(1_000, 30 * US, 0)


def test_payments_count_in_the_interval_they_were_taken_in() -> None:
    config = fee(base_fee_minor=1_000)
    state = taken(initial_state(config, 0), config, 400, 5 * US)
    state = taken(state, config, 10, 12 * US)  # the first interval closes: 1,125
    assert state == CongestionState(1_125, 10 * US, 10)
    late = taken(state, config, 5, 3 * US)  # reported late: counts now
    assert late == CongestionState(1_125, 10 * US, 15)


def test_a_long_idle_channel_is_back_at_its_floor() -> None:
    config = fee(ceiling_minor=10**15)
    high = CongestionState(10**15, 0, 0)
    assert advance(high, config, (IDLE_STEPS_MAX + 1) * 10 * US).base_fee_minor == 50
    # Walked down step by step within the bound: the same floor, as soon as it is reached.
    assert advance(high, config, 400 * 10 * US).base_fee_minor == 50


# --- the fee a payment pays ------------------------------------------------------------------


def test_the_fee_is_the_base_fee_times_the_window_and_the_risk_grade() -> None:
    config = fee()
    at_10h = 10 * HOUR_US
    state = CongestionState(120, at_10h, 0)
    quote = dynamic_fee_minor(state, config, at_10h, "review")
    assert (quote.fee_minor, quote.base_fee_minor, quote.risk_multiplier) == (
        216, 120, Fraction(6, 5))
    assert quote.explanation == (
        "congestion base fee 1.20 × 1.5 (window 09–17 UTC) × 1.2 (risk grade review) = 2.16")
    assert quote.parts == ("congestion base fee 1.20", "1.5 (window 09–17 UTC)",
                           "1.2 (risk grade review)")


@pytest.mark.parametrize(("at_us", "grade", "fee_minor", "explanation"), [
    (8 * HOUR_US, None, 120, "congestion base fee 1.20"),
    (17 * HOUR_US, "allow", 120, "congestion base fee 1.20"),  # no multiplier for allow
    (9 * HOUR_US, None, 180, "congestion base fee 1.20 × 1.5 (window 09–17 UTC) = 1.80"),
    (DAY_US + 16 * HOUR_US, "hold", 360,
     "congestion base fee 1.20 × 1.5 (window 09–17 UTC) × 2 (risk grade hold) = 3.60"),
    (3 * HOUR_US, "hold", 240, "congestion base fee 1.20 × 2 (risk grade hold) = 2.40"),
])
def test_each_multiplier_applies_only_where_it_is_set(
    at_us: int, grade: str | None, fee_minor: int, explanation: str
) -> None:
    quote = dynamic_fee_minor(CongestionState(120, at_us - at_us % (10 * US)), fee(), at_us,
                              grade)
    assert quote.fee_minor == fee_minor
    assert quote.explanation == explanation


def test_the_fee_rounds_half_to_even() -> None:
    config = fee(windows=(FeeWindow(0, 24, Fraction(1, 2)),), risk={})
    assert dynamic_fee_minor(CongestionState(5, 0), config, 0, None).fee_minor == 2  # 2.5
    assert dynamic_fee_minor(CongestionState(7, 0), config, 0, None).fee_minor == 4  # 3.5


def test_the_fee_is_taken_as_of_the_moment() -> None:
    config = fee(base_fee_minor=1_000)
    state = taken(initial_state(config, 0), config, 400, 0)
    assert dynamic_fee_minor(state, config, 10 * US, None).base_fee_minor == 1_125


@pytest.mark.parametrize(("multiplier", "text"), [
    (Fraction(3, 2), "1.5"), (Fraction(2), "2"), (Fraction(1, 8), "0.125"),
    (Fraction(1, 3), "1/3"),
])
def test_multipliers_read_as_written(multiplier: Fraction, text: str) -> None:
    assert multiplier_text(multiplier) == text


# --- the configuration's value ----------------------------------------------------------------


def test_the_risk_grades_are_the_risk_outcomes_a_routed_payment_may_have() -> None:
    assert tuple(o.value for o in Outcome if o is not Outcome.BLOCK) == RISK_GRADES


@pytest.mark.parametrize(("changes", "place"), [
    ({"ceiling_minor": 49}, "ceiling"),
    ({"base_fee_minor": -1}, "base"),
    ({"target_per_interval": 0}, "target_per_interval"),
    ({"interval_s": 0}, "interval_s"),
    ({"max_change": Fraction(0)}, "max_change"),
    ({"max_change": Fraction(3, 2)}, "max_change"),
    ({"max_change": 0.125}, "max_change"),
    ({"windows": (FeeWindow(9, 25, Fraction(1)),)}, "windows[0].to"),
    ({"windows": (FeeWindow(17, 9, Fraction(1)),)}, "windows[0].to"),
    ({"windows": (FeeWindow(9, 17, Fraction(0)),)}, "windows[0].multiplier"),
    ({"windows": (FeeWindow(9, 17, Fraction(1)), FeeWindow(16, 18, Fraction(1)))},
     "windows[1]"),
    ({"risk": {"high": Fraction(2)}}, "risk.high"),
    ({"risk": {"hold": Fraction(-1)}}, "risk.hold"),
])
def test_a_dynamic_fee_that_does_not_hold_together_is_refused(
    changes: dict[str, object], place: str
) -> None:
    with pytest.raises(InvalidConfig) as caught:
        fee(**changes)
    assert caught.value.facts["at"] == f"DynamicFee.{place}"


def test_the_fee_keeps_its_own_copy_of_the_risk_multipliers() -> None:
    risk = {"hold": Fraction(2)}
    config = fee(risk=risk)
    risk["hold"] = Fraction(100)
    assert config.risk == {"hold": Fraction(2)}
