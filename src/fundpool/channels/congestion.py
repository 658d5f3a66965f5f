"""Dynamic fees: a base fee that rises with a rail's congestion, EIP-1559 style, times the
hour's multiplier and the payment's risk grade's.

A channel with a `dynamic_fee` table (pool/config.py `DynamicFee`) has a congestion base fee,
in minor units of the table's asset. Time is cut into intervals of `interval_s`, counted from
the epoch (so every process agrees where one starts). When an interval closes, the base fee
moves by how far the payments the rail took in it (`used`) were from the rail's
`target_per_interval`, as Ethereum's base fee moves with a block's gas (EIP-1559):

    next = base x (1 + max_change x (used - target) / target)

with `used` counted at most at twice the target, so that the fee moves by at most
`max_change` of itself per interval however large the burst (12.5 % by default, EIP-1559's
1/8); then clamped to [floor, ceiling], where the floor is the configured `base`, which is
also where a channel starts. An interval with no payment is an idle one: the fee falls by
`max_change`. A channel idle for `IDLE_STEPS_MAX` intervals or more is back at its floor.

Integer arithmetic, exact: the change is base x max_change x (used - target) / target as a
`Fraction`, rounded half to even to whole minor units. As in EIP-1559, a congested interval
raises the fee by at least one minor unit, so that a fee too small for `max_change` to move
still rises (from a floor of 0 too); at or under the target it never rises.

A payment is quoted, on top of the rail's own fee:

    dynamic fee = base fee x window multiplier x risk multiplier

rounded half to even: the window is the one of the payment's hour (UTC; none: 1), the risk
multiplier its risk grade's (allow, review, hold; none configured or not graded: 1). Only a
payment in the table's asset pays it; the congestion counts every payment the rail takes.

Everything here is pure: times are passed in (whole microseconds), states are frozen values.
What holds a channel's state between calls, and is fed what the dispatcher submits, is the
router's `CongestionMeter` (routing/congestion.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from fundpool.core.money import format_amount
from fundpool.pool.config import RISK_GRADES, DynamicFee, FeeWindow

__all__ = [
    "IDLE_STEPS_MAX",
    "RISK_GRADES",
    "CongestionState",
    "DynamicFee",
    "DynamicFeeQuote",
    "FeeWindow",
    "advance",
    "dynamic_fee_minor",
    "initial_state",
    "multiplier_text",
    "next_base_fee",
    "taken",
]

# Intervals an idle channel's fee is walked down one by one; after more, it is at its floor.
# From a ceiling 10^9 times the floor, a change of 1/8 reaches the floor in about 160.
IDLE_STEPS_MAX = 10_000
_ONE = Fraction(1)


def next_base_fee(
    current_minor: int,
    used: int,
    target: int,
    max_change: Fraction,
    floor_minor: int,
    ceiling_minor: int,
) -> int:
    """The base fee after an interval in which the rail took `used` payments against a
    `target`: EIP-1559's rule, bounded per step and clamped to [floor, ceiling]."""
    counted = min(max(used, 0), 2 * target)
    change = round(current_minor * max_change * (counted - target) / target)
    if counted > target and change < 1:
        change = 1  # a congested interval always raises the fee (EIP-1559's minimum)
    return min(max(current_minor + change, floor_minor), ceiling_minor)


@dataclass(frozen=True, slots=True)
class CongestionState:
    """A channel's congestion base fee during the interval that starts at
    `interval_start_us`, and the payments it has taken in that interval so far."""

    base_fee_minor: int
    interval_start_us: int
    used: int = 0


def _interval_start(config: DynamicFee, at_us: int) -> int:
    return at_us - at_us % config.interval_us


def initial_state(config: DynamicFee, at_us: int) -> CongestionState:
    """A channel not measured before: at its floor, in the interval of `at_us`."""
    return CongestionState(config.base_fee_minor, _interval_start(config, at_us))


def advance(state: CongestionState, config: DynamicFee, at_us: int) -> CongestionState:
    """`state` as of `at_us`: every interval that closed since is applied, the one `state`
    counted with its payments, those after it as idle. A time before the state's interval
    (a late report) leaves it as it is."""
    interval_us = config.interval_us
    closed = (at_us - state.interval_start_us) // interval_us
    if closed <= 0:
        return state
    floor, ceiling = config.base_fee_minor, config.ceiling_minor
    target, max_change = config.target_per_interval, config.max_change
    base = next_base_fee(state.base_fee_minor, state.used, target, max_change, floor, ceiling)
    idle = closed - 1
    if idle >= IDLE_STEPS_MAX:
        base = floor
    else:
        for _ in range(idle):
            lower = next_base_fee(base, 0, target, max_change, floor, ceiling)
            if lower == base:
                break  # at the floor, or too small for the change to round to a unit
            base = lower
    return CongestionState(base, state.interval_start_us + closed * interval_us)


def taken(state: CongestionState, config: DynamicFee, n_items: int,
          at_us: int) -> CongestionState:
    """`state` after the rail took `n_items` payments at `at_us`."""
    current = advance(state, config, at_us)
    return CongestionState(current.base_fee_minor, current.interval_start_us,
                           current.used + n_items)


@dataclass(frozen=True, slots=True)
class DynamicFeeQuote:
    """What a payment pays for the rail's congestion, and why: `base_fee_minor` x the
    window's multiplier x the risk grade's, rounded half to even to `fee_minor`.

    `parts` are the factors for a person (the base fee in units of the asset, then each
    multiplier that applied with where it comes from), and `explanation` the sum of them:
    `congestion base fee 1.20 × 1.5 (window 09–17 UTC) × 1.2 (risk grade review) = 2.16`,
    or the base fee alone when no multiplier applied."""

    fee_minor: int
    base_fee_minor: int
    window: FeeWindow | None  # the window of the payment's hour; None: none (x 1)
    risk_grade: str | None  # the payment's grade, when its multiplier applied
    risk_multiplier: Fraction  # 1 when no multiplier applied
    parts: tuple[str, ...]
    explanation: str


def dynamic_fee_minor(state: CongestionState, config: DynamicFee, at_us: int,
                      risk_grade: str | None) -> DynamicFeeQuote:
    """The dynamic fee of a payment at `at_us` of risk grade `risk_grade` (None: not
    graded), with its factors; `state` is taken as of `at_us` (`advance`)."""
    base = advance(state, config, at_us).base_fee_minor
    window = config.window_at(at_us)
    grade_multiplier = None if risk_grade is None else config.risk.get(risk_grade)
    scale = config.asset.scale
    fee = Fraction(base)
    parts = [f"congestion base fee {format_amount(base, scale)}"]
    if window is not None:
        fee *= window.multiplier
        parts.append(f"{multiplier_text(window.multiplier)} (window "
                     f"{window.start_hour_utc:02d}–{window.end_hour_utc:02d} UTC)")
    if grade_multiplier is not None:
        fee *= grade_multiplier
        parts.append(f"{multiplier_text(grade_multiplier)} (risk grade {risk_grade})")
    fee_minor = round(fee)
    explanation = " × ".join(parts)
    if len(parts) > 1:
        explanation += f" = {format_amount(fee_minor, scale)}"
    return DynamicFeeQuote(
        fee_minor, base, window, None if grade_multiplier is None else risk_grade,
        _ONE if grade_multiplier is None else grade_multiplier, tuple(parts), explanation,
    )


def multiplier_text(multiplier: Fraction) -> str:
    """A multiplier as the decimal text it was written as ("1.5", "2", "0.125"): exact for
    any fraction whose denominator has no prime factor but 2 and 5, as decimal text's."""
    if multiplier.denominator == 1:
        return str(multiplier.numerator)
    for decimals in range(1, 31):
        scaled = multiplier * 10**decimals
        if scaled.denominator == 1:
            return format_amount(scaled.numerator, decimals)
    return f"{multiplier.numerator}/{multiplier.denominator}"
