"""Assets and exact amounts.

An amount is a Python `int` of minor units in 0..AMOUNT_MAX_MINOR. Decimal text exists only at the
edges and is parsed exactly: "1.005" USD is an error, never a rounding. No float touches an amount.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from fundpool.core.errors import (
    AmountOverflow,
    InvalidAmount,
    InvalidAsset,
    NegativeAmount,
    TooManyDecimals,
)

AMOUNT_MAX_MINOR = 2**128 - 1  # wei-exact ETH needs more than 64 bits
SCALE_MAX = 18
# USD, USDT, E-CNY, USDT.TRON: upper-case letters and digits, with one '-' or '.' inside.
ASSET_CODE_PATTERN = re.compile(r"^(?=.{2,25}\Z)[A-Z][A-Z0-9]{0,11}(?:[-.][A-Z0-9]{1,12})?\Z")
# Longest decimal text an amount can have: 39 digits, a point, 18 decimals and some slack for
# leading zeros. A bound keeps a hostile 1 MB string from being parsed at all.
AMOUNT_TEXT_LENGTH_MAX = 80
_DECIMAL_PATTERN = re.compile(r"^(?P<int>[0-9]+)(?:\.(?P<frac>[0-9]+))?\Z")


class AssetKind(StrEnum):
    FIAT = "fiat"
    STABLECOIN = "stablecoin"
    CRYPTO = "crypto"
    CBDC = "cbdc"


@dataclass(frozen=True, slots=True)
class Asset:
    """An asset the ledger holds: `USD` (scale 2), `USDT` (6), `ETH` (18), `E-CNY` style codes."""

    code: str
    scale: int
    kind: AssetKind

    def __post_init__(self) -> None:
        if not isinstance(self.code, str) or not ASSET_CODE_PATTERN.match(self.code):
            raise InvalidAsset(
                "asset code must be upper-case letters and digits starting with a letter, 2 or "
                "more in all, with at most one '-' or '.' inside (USD, E-CNY, USDT.TRON)",
                asset=self.code,
            )
        if isinstance(self.scale, bool) or not isinstance(self.scale, int):
            raise InvalidAsset("scale must be an integer", asset=self.code, scale=str(self.scale))
        if not 0 <= self.scale <= SCALE_MAX:
            raise InvalidAsset(
                f"scale must be between 0 and {SCALE_MAX}", asset=self.code, scale=self.scale
            )
        try:
            kind = AssetKind(self.kind)
        except ValueError:
            raise InvalidAsset(
                "kind must be one of fiat, stablecoin, crypto, cbdc",
                asset=self.code,
                kind=str(self.kind),
            ) from None
        object.__setattr__(self, "kind", kind)

    def parse(self, text: str) -> int:
        return parse_amount(text, self.scale, asset=self.code)

    def format(self, amount_minor: int) -> str:
        return format_amount(amount_minor, self.scale)


def check_amount(amount_minor: object, *, asset: str | None = None) -> int:
    """Return `amount_minor` if it is an int in 0..AMOUNT_MAX_MINOR, else raise a precise error."""
    if isinstance(amount_minor, bool) or not isinstance(amount_minor, int):
        raise InvalidAmount(
            "amounts are integers of minor units", asset=asset, amount=repr(amount_minor)
        )
    if amount_minor < 0:
        raise NegativeAmount(asset=asset, amount_minor=amount_minor)
    if amount_minor > AMOUNT_MAX_MINOR:
        raise AmountOverflow(asset=asset, amount_minor=amount_minor)
    return amount_minor


def parse_amount(text: str, scale: int, *, asset: str | None = None) -> int:
    """Parse decimal text ("1234.56") into minor units at `scale`, exactly or not at all."""
    if not isinstance(text, str):
        raise InvalidAmount("amount text must be a string", asset=asset, amount=repr(text))
    stripped = text.strip()
    if len(stripped) > AMOUNT_TEXT_LENGTH_MAX:
        raise InvalidAmount(
            f"amount text is longer than {AMOUNT_TEXT_LENGTH_MAX} characters",
            asset=asset,
            length=len(stripped),
        )
    if stripped.startswith("-"):
        raise NegativeAmount(asset=asset, amount=stripped)
    match = _DECIMAL_PATTERN.match(stripped)
    if match is None:
        raise InvalidAmount(
            "amount must be plain decimal digits with an optional '.' and fraction",
            asset=asset,
            amount=stripped,
        )
    integer_part = match.group("int")
    fraction = match.group("frac") or ""
    significant_fraction = fraction.rstrip("0")
    if len(significant_fraction) > scale:
        raise TooManyDecimals(asset=asset, amount=stripped, scale=scale)
    unit: int = 10**scale
    amount_minor = int(integer_part) * unit + (
        int(significant_fraction.ljust(scale, "0")) if scale else 0
    )
    if amount_minor > AMOUNT_MAX_MINOR:
        raise AmountOverflow(asset=asset, amount=stripped)
    return amount_minor


def format_amount(amount_minor: int, scale: int) -> str:
    """Format minor units as decimal text with exactly `scale` decimals, keeping the sign."""
    sign = "-" if amount_minor < 0 else ""
    magnitude = -amount_minor if amount_minor < 0 else amount_minor
    if scale == 0:
        return f"{sign}{magnitude}"
    unit: int = 10**scale
    whole, fraction = divmod(magnitude, unit)
    return f"{sign}{whole}.{fraction:0{scale}d}"
