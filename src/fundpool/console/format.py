"""Amounts, ratios and times as the console shows them, by asset scale and locale.

Amounts arrive as exact integers of minor units (or the API's exact decimal text) and leave as
text; no float ever holds one. Both languages group digits by thousands with `,` and use `.`
for the fraction (the convention of zh-CN as of en), so the full form is the same; the
compact form for the wall display differs: en counts in thousands, millions and billions
(`56.23M`), zh-CN in 万 (10^4) and 亿 (10^8) (`5,622.99万`). A compact figure is rounded half
to even at two decimals and says so by its suffix; the full figure is never rounded.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from fractions import Fraction
from typing import Literal

from fundpool.core.errors import FundpoolError
from fundpool.core.money import parse_amount

Locale = Literal["en", "zh-CN"]
LOCALES: tuple[Locale, ...] = ("en", "zh-CN")

# (divisor, suffix), largest first.
_COMPACT: dict[str, tuple[tuple[int, str], ...]] = {
    "en": ((10**9, "B"), (10**6, "M"), (10**3, "K")),
    "zh-CN": ((10**8, "亿"), (10**4, "万")),
}
COMPACT_DECIMALS = 2


def group(whole: int) -> str:
    return f"{whole:,}"


def amount_text(amount_minor: int, scale: int, locale: Locale = "en", *,
                compact: bool = False, signed: bool = False) -> str:
    """`amount_minor` at `scale` as grouped decimal text: every decimal of the scale, or with
    `compact` two decimals of the largest unit the locale counts in. `signed` puts `+` before
    a positive amount (a change)."""
    sign = "-" if amount_minor < 0 else ("+" if signed and amount_minor > 0 else "")
    magnitude = abs(amount_minor)
    unit = 10**scale
    if compact:
        for divisor, suffix in _COMPACT[locale]:
            if magnitude >= divisor * unit:
                shown = _round(Fraction(magnitude, divisor * unit), COMPACT_DECIMALS)
                return f"{sign}{shown}{suffix}"
    whole, fraction = divmod(magnitude, unit)
    text = group(whole)
    if scale:
        text += f".{fraction:0{scale}d}"
    return sign + text


def _round(value: Fraction, decimals: int) -> str:
    with localcontext() as context:
        context.prec = 80
        exact = Decimal(value.numerator) / Decimal(value.denominator)
        rounded = exact.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_EVEN)
    whole, _, fraction = f"{rounded:f}".partition(".")
    return f"{group(int(whole))}.{fraction}" if fraction else group(int(whole))


def decimal_to_minor(text: str, scale: int) -> int:
    """The API's exact decimal text (`"-12.30"`) as minor units at `scale`."""
    negative = text.strip().startswith("-")
    try:
        magnitude = parse_amount(text.strip().removeprefix("-"), scale)
    except FundpoolError as error:
        raise ValueError(f"{text!r} is not an amount with at most {scale} decimals: "
                         f"{error.code}") from None
    return -magnitude if negative else magnitude


def percent_text(part: int, whole: int, decimals: int = 1) -> str:
    """`part / whole` as a percentage (`12.5 %`); `–` when `whole` is 0."""
    if whole == 0:
        return "–"
    return f"{_round(Fraction(part * 100, whole), decimals)} %"


def change_percent(now: int, before: int, decimals: int = 2) -> str:
    """The relative change from `before` to `now`, signed; `–` from 0."""
    if before == 0:
        return "–"
    shown = _round(Fraction(abs(now - before) * 100, abs(before)), decimals)
    sign = "+" if now > before else ("-" if now < before else "")
    return f"{sign}{shown} %"


def ratio_text(text: str | None, decimals: int = 1) -> str:
    """An exact ratio from the API (decimal text in [0, 1]) as a percentage."""
    if text is None:
        return "–"
    value = Fraction(Decimal(text))
    return f"{_round(value * 100, decimals)} %"


def instant_input(moment: datetime) -> str:
    """An instant as a person types it in a form: `2026-12-06T13:00:00Z` (UTC, to the second)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def duration_text(us: float) -> str:
    """A latency for a person: 850 ms, 2.3 s, 45 min, 3.0 h, 2.0 d."""
    seconds = us / 1_000_000
    if seconds < 1:
        return f"{us / 1_000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 2 * 3_600:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86_400:
        return f"{seconds / 3_600:.1f} h"
    return f"{seconds / 86_400:.1f} d"


def time_text(at_us: int, *, with_date: bool = False) -> str:
    """A UTC instant as `HH:MM:SS.mmm` (or with its date): the console keeps time in UTC."""
    moment = datetime.fromtimestamp(at_us // 1_000_000, tz=UTC)
    millis = (at_us % 1_000_000) // 1_000
    clock = f"{moment:%H:%M:%S}.{millis:03d}"
    return f"{moment:%Y-%m-%d} {clock}" if with_date else clock
