"""Credit lines: a bank's committed facility on one position, drawn when the position runs low
and repaid from its surplus.

A `CreditFacility` lends up to `limit_minor` of its asset into its channel, at `annual_rate`
(an exact Fraction from decimal text, "0.065" for 6.5 %) on the drawn amount, accrued daily
over a `day_count`-day year (360: money-market convention, ACT/360; 365 or 366: ACT/365).

- `draw_needed`: when the position is below its band's minimum, what brings it up to the
  target, never beyond what the facility has left. Above the minimum nothing is drawn: a draw
  costs interest, and a position within its band needs none.
- `repay_possible`: what the position holds above its target, at most what is drawn.
- `accrue_daily`: one day's interest on the drawn amount, exactly: `drawn x rate / day_count`
  plus the fraction of a minor unit carried from the day before. The whole minor units are
  charged and the fraction is carried, so over any run of days the interest charged is the
  exact total rounded down, less than one minor unit short of it, and never a unit is lost or
  made up along the way.

Facilities are written as tables:

    {"id": "rcf-usd", "channel": "bank-a", "asset": "USD", "limit_minor": 100000000,
     "annual_rate": "0.065", "day_count": 360}
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from fundpool.core.errors import FundpoolError
from fundpool.pool.config import ID_PATTERN
from fundpool.treasury.bands import Band, Fields, check_asset, check_channel, check_minor, list_of

FACILITIES_MAX = 1_000
DAY_COUNTS = (360, 365, 366)
ANNUAL_RATE_MAX = Fraction(1)  # 100 % a year: above it is a typo, not a credit line


class InvalidFacility(FundpoolError):
    code = "invalid_credit_facility"
    title = "the credit facility is not valid"


class CreditLimitExceeded(FundpoolError):
    code = "credit_limit_exceeded"
    title = "the draw would take the facility beyond its limit"


@dataclass(frozen=True, slots=True)
class CreditFacility:
    id: str
    channel: str
    asset: str
    limit_minor: int
    annual_rate: Fraction
    day_count: int = 365

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not ID_PATTERN.match(self.id):
            raise InvalidFacility("a facility id is lower-case letters, digits, '-' and '_'",
                                  field="id", value=repr(self.id)[:80])
        check_channel(self.channel, InvalidFacility, "channel")
        check_asset(self.asset, InvalidFacility, "asset")
        check_minor(self.limit_minor, InvalidFacility, "limit_minor", facility=self.id)
        object.__setattr__(self, "annual_rate", _rate(self.annual_rate, self.id))
        _day_count(self.day_count, self.id)


def facility_from_mapping(table: object, path: str = "facility") -> CreditFacility:
    fields = Fields(table, InvalidFacility, path)
    fields.known({"id", "channel", "asset", "limit_minor", "annual_rate", "day_count"})
    facility_id = fields.identifier("id")
    rate = fields.decimal("annual_rate")
    if not 0 <= rate <= ANNUAL_RATE_MAX:
        raise fields.fail("annual_rate", "an annual rate is from 0 to 1 (100 %)",
                          value=str(rate), facility=facility_id)
    day_count = fields.integer("day_count", min(DAY_COUNTS), max(DAY_COUNTS), 365)
    if day_count not in DAY_COUNTS:
        raise fields.fail("day_count", f"a day count is one of {list(DAY_COUNTS)}",
                          value=day_count, facility=facility_id)
    return CreditFacility(facility_id, fields.identifier("channel"), fields.asset("asset"),
                          fields.minor("limit_minor"), rate, day_count)


def facilities_from_mapping(items: object, path: str = "credit") -> tuple[CreditFacility, ...]:
    """A list of facility tables; ids are unique."""
    facilities: list[CreditFacility] = []
    for index, item in enumerate(list_of(items, InvalidFacility, path, FACILITIES_MAX)):
        facility = facility_from_mapping(item, f"{path}[{index}]")
        if any(f.id == facility.id for f in facilities):
            raise InvalidFacility("each facility has its own id", field=f"{path}[{index}].id",
                                  facility=facility.id)
        facilities.append(facility)
    return tuple(facilities)


def headroom_minor(facility: CreditFacility, drawn_minor: int) -> int:
    """What the facility has left to draw. Raises CreditLimitExceeded when it is already drawn
    beyond its limit (a limit lowered under a drawn amount)."""
    check_minor(drawn_minor, InvalidFacility, "drawn_minor", facility=facility.id)
    if drawn_minor > facility.limit_minor:
        raise CreditLimitExceeded("the facility is drawn beyond its limit",
                                  facility=facility.id, drawn_minor=drawn_minor,
                                  limit_minor=facility.limit_minor)
    return facility.limit_minor - drawn_minor


def check_draw(facility: CreditFacility, drawn_minor: int, amount_minor: int) -> int:
    """The drawn amount after drawing `amount_minor`. Raises CreditLimitExceeded."""
    check_minor(amount_minor, InvalidFacility, "amount_minor", facility=facility.id)
    headroom = headroom_minor(facility, drawn_minor)
    if amount_minor > headroom:
        raise CreditLimitExceeded("draw at most what the facility has left",
                                  facility=facility.id, drawn_minor=drawn_minor,
                                  amount_minor=amount_minor, limit_minor=facility.limit_minor,
                                  headroom_minor=headroom)
    return drawn_minor + amount_minor


def draw_needed(facility: CreditFacility, drawn_minor: int, balance_minor: int,
                band: Band) -> int:
    """What to draw so that a position below its minimum is brought up to its target, at most
    what the facility has left; 0 when the position is at or above its minimum."""
    _same_position(facility, band)
    headroom = headroom_minor(facility, drawn_minor)
    if balance_minor >= band.min_minor:
        return 0
    return min(band.target_minor - balance_minor, headroom)


def repay_possible(facility: CreditFacility, drawn_minor: int, balance_minor: int,
                   band: Band) -> int:
    """What the position can repay: what it holds above its target, at most what is drawn."""
    _same_position(facility, band)
    check_minor(drawn_minor, InvalidFacility, "drawn_minor", facility=facility.id)
    return min(max(0, balance_minor - band.target_minor), drawn_minor)


def accrue_daily(drawn_minor: int, annual_rate: Fraction, day_count: int,
                 carry: Fraction) -> tuple[int, Fraction]:
    """One day's interest on `drawn_minor`: (whole minor units charged today, the fraction of
    a minor unit carried to tomorrow, 0 <= carry < 1)."""
    check_minor(drawn_minor, InvalidFacility, "drawn_minor")
    rate = _rate(annual_rate, None)
    _day_count(day_count, None)
    if not isinstance(carry, Fraction) or not 0 <= carry < 1:
        raise InvalidFacility("the carry is a Fraction of a minor unit, from 0 to under 1",
                              field="carry", value=str(carry))
    exact = drawn_minor * rate / day_count + carry
    interest = exact.numerator // exact.denominator
    return interest, exact - interest


def _rate(value: object, facility: str | None) -> Fraction:
    if isinstance(value, bool) or not isinstance(value, Fraction | int):
        raise InvalidFacility("an annual rate is an exact Fraction from decimal text, never a "
                              "float", field="annual_rate", value=repr(value)[:80],
                              facility=facility)
    if not 0 <= value <= ANNUAL_RATE_MAX:
        raise InvalidFacility("an annual rate is from 0 to 1 (100 %)", field="annual_rate",
                              value=str(value), facility=facility)
    return Fraction(value)


def _day_count(value: object, facility: str | None) -> None:
    if isinstance(value, bool) or value not in DAY_COUNTS:
        raise InvalidFacility(f"a day count is one of {list(DAY_COUNTS)}", field="day_count",
                              value=repr(value)[:80], facility=facility)


def _same_position(facility: CreditFacility, band: Band) -> None:
    if (band.channel, band.asset) != (facility.channel, facility.asset):
        raise InvalidFacility("the band is for another position than the facility",
                              facility=facility.id, channel=band.channel, asset=band.asset)
