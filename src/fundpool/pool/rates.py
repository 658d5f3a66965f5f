"""Exchange rates for reporting, and exact conversion between assets.

A rate is an exact `Fraction`: units of the quote asset for one unit of the base asset, parsed
from decimal text (`"1.0843"`), never a float. Converting an amount of minor units is exact
until it rounds once, half to even, to the target's minor unit; a total made of parts is
converted once and shared out to its parts by largest remainder (docs/adr/0006).

The default source is a static TOML file:

    as_of = "2026-11-24T00:00:00Z"
    [rates]
    "EUR/USD" = "1.0843"
    "ETH/USD" = "3120.55"

Inverse and same-asset rates are derived; nothing is chained through a third asset, so a
missing pair is reported, not guessed.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Protocol

from fundpool.core.errors import FundpoolError
from fundpool.core.money import ASSET_CODE_PATTERN, Asset

RATE_TEXT_PATTERN = re.compile(r"^[0-9]{1,30}(?:\.[0-9]{1,30})?\Z")
RATES_FILE_BYTES_MAX = 1_000_000


class InvalidRates(FundpoolError):
    code = "invalid_rates"
    title = "the rates file is not valid"


class RateSource(Protocol):
    def rate(self, base: str, quote: str) -> Fraction | None:
        """Units of `quote` for one unit of `base`, or None when the pair is unknown."""
        ...


@dataclass(frozen=True, slots=True)
class StaticRates:
    rates: Mapping[tuple[str, str], Fraction] = field(default_factory=dict)
    as_of: str | None = None

    def rate(self, base: str, quote: str) -> Fraction | None:
        if base == quote:
            return Fraction(1)
        direct = self.rates.get((base, quote))
        if direct is not None:
            return direct
        inverse = self.rates.get((quote, base))
        return None if inverse is None else 1 / inverse

    @classmethod
    def from_mapping(cls, document: Mapping[str, object], source: str = "rates") -> StaticRates:
        table = document.get("rates", {})
        if not isinstance(table, Mapping):
            raise InvalidRates("[rates] must be a table of \"BASE/QUOTE\" = \"decimal\"",
                               source=source)
        rates: dict[tuple[str, str], Fraction] = {}
        for pair, text in table.items():
            base, _, quote = str(pair).partition("/")
            if not (ASSET_CODE_PATTERN.match(base) and ASSET_CODE_PATTERN.match(quote)):
                raise InvalidRates("a pair is written BASE/QUOTE", source=source, pair=pair)
            if not isinstance(text, str) or not RATE_TEXT_PATTERN.match(text):
                raise InvalidRates(
                    "a rate is decimal text in quotes, like \"1.0843\" (never a float)",
                    source=source,
                    pair=pair,
                )
            rate = Fraction(text)
            if rate <= 0:
                raise InvalidRates("a rate is positive", source=source, pair=pair)
            rates[(base, quote)] = rate
        as_of = document.get("as_of")
        return cls(rates, None if as_of is None else str(as_of))

    @classmethod
    def load(cls, path: str | Path) -> StaticRates:
        file = Path(path)
        try:
            if file.stat().st_size > RATES_FILE_BYTES_MAX:
                raise InvalidRates(
                    "the rates file is too large", source=str(file),
                    bytes_max=RATES_FILE_BYTES_MAX,
                )
            document = tomllib.loads(file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
            raise InvalidRates(str(error), source=str(file)) from error
        return cls.from_mapping(document, str(file))


def convert_minor(amount_minor: int, source: Asset, target: Asset, rate: Fraction) -> int:
    """`amount_minor` of `source` in minor units of `target`, rounded half to even."""
    return round_half_even(_exact(amount_minor, source, target, rate))


def convert_parts(
    parts: Sequence[int], source: Asset, target: Asset, rate: Fraction
) -> tuple[list[int], int]:
    """Convert a total made of non-negative `parts`: the total once, rounded half to even, then
    shared out to the parts by largest remainder, so the converted parts add up to exactly the
    converted total (docs/adr/0006)."""
    exact = [_exact(part, source, target, rate) for part in parts]
    total = round_half_even(sum(exact, Fraction(0)))
    floors = [value.numerator // value.denominator for value in exact]
    leftover = total - sum(floors)
    # Largest fractional part first; ties go to the earlier part, so the result is stable.
    order = sorted(range(len(parts)), key=lambda i: (-(exact[i] - floors[i]), i))
    for index in order[:leftover]:
        floors[index] += 1
    return floors, total


def round_half_even(value: Fraction) -> int:
    quotient, remainder = divmod(value.numerator, value.denominator)
    twice = 2 * remainder
    if twice > value.denominator or (twice == value.denominator and quotient % 2 == 1):
        quotient += 1
    return quotient


def _exact(amount_minor: int, source: Asset, target: Asset, rate: Fraction) -> Fraction:
    target_unit: int = 10**target.scale
    source_unit: int = 10**source.scale
    return Fraction(amount_minor * target_unit, source_unit) * rate
