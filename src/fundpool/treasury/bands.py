"""Liquidity bands: the depths a treasurer keeps one position (a channel's available balance
in one asset) between.

A `Band` has a minimum, a target and a maximum, in minor units of its asset, with
0 <= min <= target <= max. A balance below the minimum is `below_min` (the channel may fail
payouts), above the maximum `above_max` (idle money, or more than the channel's risk limit),
else `within`. The helpers give the figures a sweep, a rebalancing plan or a credit draw is
sized from: how far below the minimum or the target a balance is, how far above the target or
the maximum, and how much a position can give without going under its minimum.

Bands are written as a list of tables, amounts as integers of minor units (never floats, which
cannot carry a cent exactly):

    [{"channel": "bank-a", "asset": "USD", "min": 100000, "target": 500000, "max": 1000000}]

`Fields` is the small reader the treasury's parsers share: each refusal names the field's
path (`bands[2].min`) and is raised as the caller's own error class.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

from fundpool.core.errors import FundpoolError
from fundpool.core.money import AMOUNT_MAX_MINOR, ASSET_CODE_PATTERN, format_amount
from fundpool.pool.config import ID_PATTERN

BandStatus = Literal["below_min", "within", "above_max"]
Position = tuple[str, str]  # (channel, asset)

BANDS_MAX = 10_000  # positions in one list: far above a pool's channels x assets
# Decimal text of a rate or a share: digits, one point, at most this many decimals. A bound
# keeps a hostile 1 MB string from being parsed at all.
DECIMAL_TEXT_LENGTH_MAX = 40


class InvalidBand(FundpoolError):
    code = "invalid_band"
    title = "the liquidity band is not valid"


@dataclass(frozen=True, slots=True)
class Band:
    """The depths one position is kept between (minor units of `asset`)."""

    channel: str
    asset: str
    min_minor: int
    target_minor: int
    max_minor: int

    def __post_init__(self) -> None:
        check_channel(self.channel, InvalidBand, "channel")
        check_asset(self.asset, InvalidBand, "asset")
        for name in ("min_minor", "target_minor", "max_minor"):
            check_minor(getattr(self, name), InvalidBand, name, channel=self.channel,
                        asset=self.asset)
        if not self.min_minor <= self.target_minor <= self.max_minor:
            field = "target_minor" if self.target_minor < self.min_minor else "max_minor"
            raise InvalidBand("a band needs min <= target <= max", channel=self.channel,
                              asset=self.asset, field=field, min_minor=self.min_minor,
                              target_minor=self.target_minor, max_minor=self.max_minor)

    @property
    def position(self) -> Position:
        return (self.channel, self.asset)


def band_status(band: Band, balance_minor: int) -> BandStatus:
    if balance_minor < band.min_minor:
        return "below_min"
    if balance_minor > band.max_minor:
        return "above_max"
    return "within"


def shortfall_minor(band: Band, balance_minor: int) -> int:
    """How far `balance_minor` is below the band's minimum (0 when it is not)."""
    return max(0, band.min_minor - balance_minor)


def excess_minor(band: Band, balance_minor: int) -> int:
    """How far `balance_minor` is above the band's maximum (0 when it is not)."""
    return max(0, balance_minor - band.max_minor)


def to_target_minor(band: Band, balance_minor: int) -> int:
    """What brings `balance_minor` up to the target (0 when it is at or above it)."""
    return max(0, band.target_minor - balance_minor)


def over_target_minor(band: Band, balance_minor: int) -> int:
    """What `balance_minor` holds above the target (0 when it is at or below it)."""
    return max(0, balance_minor - band.target_minor)


def spare_minor(band: Band | None, balance_minor: int) -> int:
    """What a position can give without going under its minimum (under zero without a band)."""
    floor = 0 if band is None else band.min_minor
    return max(0, balance_minor - floor)


def bands_for_asset(bands: Mapping[Position, Band], asset: str) -> dict[str, Band]:
    """The bands of one asset, by channel: the shape a sweep of that asset reads."""
    return {channel: band for (channel, band_asset), band in bands.items() if band_asset == asset}


def bands_from_mapping(items: object, path: str = "bands") -> dict[Position, Band]:
    """Parse a list of band tables (see the module's docstring) into bands by position."""
    entries = list_of(items, InvalidBand, path, BANDS_MAX)
    bands: dict[Position, Band] = {}
    for index, item in enumerate(entries):
        at = f"{path}[{index}]"
        fields = Fields(item, InvalidBand, at)
        fields.known({"channel", "asset", "min", "target", "max"})
        channel = fields.identifier("channel")
        asset = fields.asset("asset")
        if (channel, asset) in bands:
            raise InvalidBand("each position has one band", field=at, channel=channel,
                              asset=asset)
        band_min = fields.minor("min")
        target = fields.minor("target")
        band_max = fields.minor("max")
        if not band_min <= target <= band_max:
            raise InvalidBand("a band needs min <= target <= max",
                              field=f"{at}.{'target' if target < band_min else 'max'}",
                              channel=channel, asset=asset, min_minor=band_min,
                              target_minor=target, max_minor=band_max)
        bands[(channel, asset)] = Band(channel, asset, band_min, target, band_max)
    return bands


# --- checks and the mapping reader the treasury's parsers share ---------------------------


def check_channel(value: object, error: type[FundpoolError], field: str) -> str:
    if not isinstance(value, str) or not ID_PATTERN.match(value):
        raise error("a channel id is lower-case letters, digits, '-' and '_' (bank-a)",
                    field=field, value=repr(value)[:80])
    return value


def check_asset(value: object, error: type[FundpoolError], field: str) -> str:
    if not isinstance(value, str) or not ASSET_CODE_PATTERN.match(value):
        raise error("an asset code is upper-case letters and digits (USD, E-CNY)",
                    field=field, value=repr(value)[:80])
    return value


def check_minor(value: object, error: type[FundpoolError], field: str, **facts: object) -> int:
    """`value` as an amount of minor units: an int (never a bool or a float), 0 or more."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise error("an amount is an integer of minor units (never a float)", field=field,
                    value=repr(value)[:80], **facts)
    if not 0 <= value <= AMOUNT_MAX_MINOR:
        raise error("an amount is between 0 and 2^128 - 1 minor units", field=field,
                    value=value, **facts)
    return value


def list_of(items: object, error: type[FundpoolError], path: str, count_max: int,
            ) -> Sequence[object]:
    if isinstance(items, str | bytes | Mapping) or not isinstance(items, Sequence):
        raise error("expected a list of tables", field=path)
    if len(items) > count_max:
        raise error(f"at most {count_max} entries", field=path, count=len(items))
    return items


class Fields:
    """Reads one table of a document, refusing with `error` and the field's path."""

    def __init__(self, table: object, error: type[FundpoolError], path: str) -> None:
        if not isinstance(table, Mapping):
            raise error("expected a table", field=path)
        self.table: Mapping[object, object] = table
        self.error = error
        self.path = path

    def at(self, key: str) -> str:
        return f"{self.path}.{key}"

    def fail(self, key: str, detail: str, **facts: object) -> FundpoolError:
        return self.error(detail, field=self.at(key), **facts)

    def known(self, keys: Iterable[str]) -> None:
        allowed = set(keys)
        unknown = sorted(str(key) for key in self.table if key not in allowed)
        if unknown:
            raise self.error(f"unknown field {unknown[0]!r}; expected one of {sorted(allowed)}",
                             field=self.at(unknown[0]))

    def has(self, key: str) -> bool:
        return key in self.table

    def required(self, key: str) -> object:
        if key not in self.table:
            raise self.fail(key, "this field is required")
        return self.table[key]

    def identifier(self, key: str) -> str:
        value = self.required(key)
        if not isinstance(value, str) or not ID_PATTERN.match(value):
            raise self.fail(key, "an id is lower-case letters, digits, '-' and '_' (bank-a)",
                            value=repr(value)[:80])
        return value

    def asset(self, key: str) -> str:
        return check_asset(self.required(key), self.error, self.at(key))

    def minor(self, key: str, default: int | None = None) -> int:
        if key not in self.table and default is not None:
            return default
        return check_minor(self.required(key), self.error, self.at(key))

    def optional_minor(self, key: str) -> int | None:
        return None if key not in self.table else self.minor(key)

    def integer(self, key: str, low: int, high: int, default: int | None = None) -> int:
        if key not in self.table and default is not None:
            return default
        value = self.required(key)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(key, "expected an integer", value=repr(value)[:80])
        if not low <= value <= high:
            raise self.fail(key, f"expected an integer from {low} to {high}", value=value)
        return value

    def flag(self, key: str, default: bool) -> bool:
        value = self.table.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(key, "expected true or false", value=repr(value)[:80])
        return value

    def text(self, key: str, length_max: int) -> str:
        value = self.required(key)
        if not isinstance(value, str) or not value.strip() or len(value) > length_max:
            raise self.fail(key, f"expected non-empty text of at most {length_max} characters",
                            value=repr(value)[:80])
        return value

    def decimal(self, key: str, default: Fraction | None = None) -> Fraction:
        """Decimal text ("0.065", "-0.2") as an exact Fraction; floats are refused."""
        if key not in self.table and default is not None:
            return default
        return parse_decimal(self.required(key), self.error, self.at(key))


def parse_decimal(value: object, error: type[FundpoolError], field: str) -> Fraction:
    if not isinstance(value, str) or len(value) > DECIMAL_TEXT_LENGTH_MAX:
        raise error("a rate or share is decimal text in quotes, like \"0.065\" (never a float)",
                    field=field, value=repr(value)[:80])
    text = value.strip()
    digits = text[1:] if text[:1] in "+-" else text
    whole, _, decimals = digits.partition(".")
    if not (whole.isdigit() and whole.isascii()) or (
            decimals and not (decimals.isdigit() and decimals.isascii())):
        raise error("a rate or share is decimal text in quotes, like \"0.065\" (never a float)",
                    field=field, value=value)
    return Fraction(text)


def money_text(amount_minor: int, scale: int | None) -> str:
    """An amount for people: 120,000.00 with the asset's scale, else minor units."""
    if scale is None:
        return f"{amount_minor:,} minor units"
    whole, _, decimals = format_amount(amount_minor, scale).partition(".")
    sign = "-" if whole.startswith("-") else ""
    grouped = f"{sign}{int(whole.lstrip('-')):,}"
    return f"{grouped}.{decimals}" if decimals else grouped
