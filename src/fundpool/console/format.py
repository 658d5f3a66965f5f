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
# Decimals an amount is shown with at most: ETH's 18 make a column of noise, and a person
# reads six (a micro-ether; a USDT cent is 4). The exact amount is in the tooltip, and a
# shown amount that is not exact says so (`≈`, `<`), so no digit is ever cut silently.
DISPLAY_DECIMALS_MAX = 6
APPROXIMATE = "≈"


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


def display_decimals(scale: int) -> int:
    """The decimals an amount of an asset of `scale` is shown with."""
    return min(scale, DISPLAY_DECIMALS_MAX)


def amount_display(amount_minor: int, scale: int, locale: Locale = "en", *,
                   signed: bool = False) -> tuple[str, str]:
    """(shown, exact) text of an amount. Shown: at most `DISPLAY_DECIMALS_MAX` decimals,
    rounded half to even and marked `≈` when that changed it, or `<0.000001` (`>-0.000001`)
    for an amount too small for them (never a bare 0 for something that is not 0). Exact:
    every decimal of the scale (`amount_text`), for a tooltip or a copy."""
    exact = amount_text(amount_minor, scale, locale, signed=signed)
    decimals = display_decimals(scale)
    if decimals == scale:
        return exact, exact
    step = 10 ** (scale - decimals)
    if amount_minor % step == 0:
        return amount_text(amount_minor // step, decimals, locale, signed=signed), exact
    sign = "-" if amount_minor < 0 else ("+" if signed else "")
    shown = _round(Fraction(abs(amount_minor), 10**scale), decimals)
    if set(shown.replace(",", "").replace(".", "")) == {"0"}:
        smallest = f"0.{'0' * (decimals - 1)}1" if decimals else "1"
        return (f">-{smallest}" if amount_minor < 0 else f"<{smallest}"), exact
    return f"{APPROXIMATE}{sign}{shown}", exact


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


# The units of a duration, largest first: (microseconds, en, zh-CN).
_DURATION_UNITS = ((86_400_000_000, "d", "天"), (3_600_000_000, "h", "小时"),
                   (60_000_000, "min", "分"), (1_000_000, "s", "秒"))


def duration_text(us: float, locale: Locale = "en") -> str:
    """A latency for a person, in its two largest units: 120 ms, 3.4 s, 2 min 5 s,
    3 h 12 min, 2 d 0 h (2 天 0 小时). A latency is a measurement, not money: it may be a
    float, and is rounded (to the millisecond, the tenth of a second, or the smaller unit)."""
    zh = locale == "zh-CN"
    if us < 1_000_000:
        return f"{us / 1_000:.0f} {'毫秒' if zh else 'ms'}"
    if us < 60_000_000:
        return f"{us / 1_000_000:.1f} {'秒' if zh else 's'}"
    total = round(us / 1_000_000) * 1_000_000
    for index, (size, en, chinese) in enumerate(_DURATION_UNITS[:-1]):
        if total >= size:
            smaller, small_en, small_zh = _DURATION_UNITS[index + 1]
            whole, rest = divmod(total, size)
            part = rest // smaller
            if zh:
                return f"{whole} {chinese} {part} {small_zh}"
            return f"{whole} {en} {part} {small_en}"
    raise AssertionError("unreachable: a duration of a minute or more has a unit")


def time_text(at_us: int, *, with_date: bool = False) -> str:
    """A UTC instant as `HH:MM:SS.mmm` (or with its date): the console keeps time in UTC."""
    moment = datetime.fromtimestamp(at_us // 1_000_000, tz=UTC)
    millis = (at_us % 1_000_000) // 1_000
    clock = f"{moment:%H:%M:%S}.{millis:03d}"
    return f"{moment:%Y-%m-%d} {clock}" if with_date else clock


HEALTH_STATUSES = ("ok", "low_depth", "critical", "failing")  # `health.<status>`


def health_status(depth_status: str, *, failing: bool) -> tuple[str, str]:
    """A rail's status as the health table shows it (`health.<key>`, badge colour): its depth
    against its configured minimum (critical) and low depth, as the figures say; a rail that
    failed more than 10 % of its finished payments is failing whatever its depth."""
    if failing:
        return "failing", "negative"
    return {"critical": ("critical", "negative"),
            "low": ("low_depth", "warning")}.get(depth_status, ("ok", "positive"))
