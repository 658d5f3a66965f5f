"""Splits and commissions: an incoming payment shared out among the parties of a rule.

A `SplitRule` lists its parts in order (platform, partners, agents...) and names the
remainder party, the merchant, who gets what the parts leave. A part takes

- a percent of the amount (`percent`), or marginal tiers (`tiers`, like tax brackets: each
  tier's percent applies to the part of the amount inside its band, the last band is open),
  or neither;
- plus a fixed amount (`fixed_minor`): "2.9 % + 0.30" is percent 2.9 and fixed 30;
- then a cap (`cap_minor`, the most it takes) and a floor (`floor_minor`, the least it takes,
  the minimum commission), the cap first; a floor is never above the cap.

Percents are exact `Fraction`s parsed from decimal text ("2.9"), never floats; amounts are
ints of minor units. A rule whose parts could take more than the whole (the sum of their
percents, the highest tier's for a tiered part, above 100) is refused: it would leave the
merchant nothing by design. Fixed amounts and floors are not part of that check, since they
depend on the amount; what they take is cut instead.

**Rounding (the whole rule of it).**

1. Each part's exact share is computed as a fraction, in rule order: percent or tiers of the
   amount, plus the fixed amount, then the cap and the floor; and never more than what is
   left after the parts before it. A fixed amount or a floor larger than what is left is cut
   to what is left: the later parts, then the merchant, get 0, never a negative share.
2. The merchant's exact share is the amount minus the parts' exact shares.
3. Largest remainder (Hamilton): every exact share is rounded down, and the minor units
   left over (fewer than the number of shares) go one each to the shares with the largest
   fractional parts; on a tie the earlier party in rule order wins, the merchant last.

So the shares always add up to exactly the amount and none is negative. Rounding never takes
a part past its cap or below its floor: both are whole minor units, and a share only moves
from its exact value to the nearest whole unit below or above it.

Inside, a rule is compiled once, at construction, to integers over one common denominator
(the least common multiple of the percents' denominators): a split is then integer
arithmetic alone, fast enough to apply a rule to every payment of a day.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction

from fundpool.core.errors import FundpoolError, invariant
from fundpool.core.money import AMOUNT_MAX_MINOR, check_amount

ROLES = frozenset({"platform", "partner", "agent", "merchant"})
REMAINDER_ROLE = "merchant"
# A percent is written like "2.9" or "0.125": at most 3 digits before the point and 12 after,
# so a hostile 1 MB string is never parsed.
PERCENT_TEXT_PATTERN = re.compile(r"^[0-9]{1,3}(?:\.[0-9]{1,12})?\Z")
HUNDRED_PERCENT = Fraction(100)
SPLIT_PARTS_MAX = 32
SPLIT_TIERS_MAX = 32
NAME_LENGTH_MAX = 128

_RULE_FIELDS = frozenset({"id", "remainder", "parts"})
_PART_FIELDS = frozenset({"party", "role", "percent", "fixed", "cap", "floor", "tiers"})
_TIER_FIELDS = frozenset({"up_to", "percent"})


class InvalidSplitRule(FundpoolError):
    code = "invalid_split_rule"
    title = "the split rule is not valid"


class SplitExceedsWhole(FundpoolError):
    code = "split_percentages_exceed_whole"
    title = "the split rule's percentages add up to more than 100 %"


@dataclass(frozen=True, slots=True)
class Tier:
    """A marginal band: `percent` of the part of the amount up to `up_to_minor` (exclusive of
    the earlier bands); the last tier is open (`up_to_minor` None)."""

    up_to_minor: int | None
    percent: Fraction


@dataclass(frozen=True, slots=True)
class SplitPart:
    party: str
    role: str
    percent: Fraction | None = None
    fixed_minor: int = 0
    cap_minor: int | None = None
    floor_minor: int = 0
    tiers: tuple[Tier, ...] = ()

    @property
    def percent_max(self) -> Fraction:
        """The most this part takes of the amount, as a percent (fixed amounts aside)."""
        if self.tiers:
            return max(tier.percent for tier in self.tiers)
        return self.percent if self.percent is not None else Fraction(0)


@dataclass(frozen=True, slots=True)
class Share:
    party: str
    role: str
    amount_minor: int


# A part over the rule's common denominator, every figure an int numerator: the percent's
# coefficient (percent / 100 * denominator; 0 when tiered or fixed only), the tiers' bands
# (from_minor, up_to_minor or None, coefficient), the fixed amount, the cap (or None) and the
# floor. A plain tuple: it is unpacked once per part per split.
_CompiledPart = tuple[int, tuple[tuple[int, int | None, int], ...], int, int | None, int]


@dataclass(frozen=True, slots=True)
class _Compiled:
    denominator: int
    parts: tuple[_CompiledPart, ...]


@dataclass(frozen=True, slots=True)
class SplitRule:
    """A valid rule: construction checks it (InvalidSplitRule, SplitExceedsWhole)."""

    id: str
    parts: tuple[SplitPart, ...]
    remainder_party: str
    _compiled: _Compiled = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        _check_rule(self)
        object.__setattr__(self, "_compiled", _compile(self.parts))

    @property
    def parties(self) -> tuple[str, ...]:
        """The parties in the order of `split`'s shares: the parts, then the remainder."""
        return (*(part.party for part in self.parts), self.remainder_party)

    @property
    def roles(self) -> tuple[str, ...]:
        return (*(part.role for part in self.parts), REMAINDER_ROLE)


def split(rule: SplitRule, amount_minor: int) -> tuple[Share, ...]:
    """Share `amount_minor` out by `rule`: one share per part in rule order, then the
    remainder party's (role "merchant"). The shares add up to exactly `amount_minor`."""
    check_amount(amount_minor)
    amounts = _split_minor(rule._compiled, amount_minor)
    invariant(sum(amounts) == amount_minor and min(amounts) >= 0,
              f"split {rule.id!r} of {amount_minor} gave {amounts}")
    return tuple(Share(party, role, share_minor)
                 for party, role, share_minor in zip(rule.parties, rule.roles, amounts,
                                                     strict=True))


def split_many(rule: SplitRule, amounts_minor: Iterable[int]) -> list[tuple[int, ...]]:
    """`split` of each amount, as bare ints in the order of `rule.parties`: the fast path for
    a day of payments, with no value per share."""
    compiled = rule._compiled
    out: list[tuple[int, ...]] = []
    append = out.append
    for amount_minor in amounts_minor:
        if type(amount_minor) is not int or not 0 <= amount_minor <= AMOUNT_MAX_MINOR:
            check_amount(amount_minor)  # raises the precise error
        amounts = _split_minor(compiled, amount_minor)
        invariant(sum(amounts) == amount_minor,
                  f"split {rule.id!r} of {amount_minor} gave {amounts}")
        append(amounts)
    return out


def rule_from_mapping(doc: Mapping[str, object], *, source: str = "split rule") -> SplitRule:
    """Parse a rule from a document (YAML, TOML or JSON), e.g.

        {"id": "marketplace", "remainder": "merchant:m1",
         "parts": [{"party": "platform", "role": "platform", "percent": "2.9", "fixed": 30,
                    "cap": 5000},
                   {"party": "partner:p1", "role": "partner",
                    "tiers": [{"up_to": 100000, "percent": "1"}, {"percent": "0.5"}]}]}

    Percents are decimal text (an int is accepted too), amounts ints of minor units; a float
    anywhere is refused. Every refusal names the field, like `parts[1].percent`."""
    if not isinstance(doc, Mapping):
        raise InvalidSplitRule("a split rule is a table", source=source, field="")
    _no_unknown(doc, _RULE_FIELDS, "", source)
    rule_id = _name(doc.get("id"), "id", source)
    remainder = _name(doc.get("remainder"), "remainder", source)
    raw_parts = doc.get("parts")
    if not isinstance(raw_parts, Sequence) or isinstance(raw_parts, str | bytes):
        raise InvalidSplitRule("parts is a list of tables", source=source, field="parts")
    if len(raw_parts) > SPLIT_PARTS_MAX:
        raise InvalidSplitRule(f"a rule has at most {SPLIT_PARTS_MAX} parts", source=source,
                               field="parts", parts=len(raw_parts))
    parts = tuple(_part_from_mapping(raw, f"parts[{i}]", source)
                  for i, raw in enumerate(raw_parts))
    try:
        return SplitRule(rule_id, parts, remainder)
    except (InvalidSplitRule, SplitExceedsWhole) as error:
        error.facts = {"source": source, **error.facts}
        raise


# --- checking --------------------------------------------------------------------------------


def _check_rule(rule: SplitRule) -> None:
    if not _is_name(rule.id):
        raise InvalidSplitRule(f"the id is a text of 1 to {NAME_LENGTH_MAX} characters",
                               field="id")
    if not _is_name(rule.remainder_party):
        raise InvalidSplitRule(
            f"the remainder party is a text of 1 to {NAME_LENGTH_MAX} characters",
            field="remainder")
    if not isinstance(rule.parts, tuple) or not rule.parts:
        raise InvalidSplitRule("a rule's parts are a non-empty tuple of SplitPart",
                               field="parts")
    if len(rule.parts) > SPLIT_PARTS_MAX:
        raise InvalidSplitRule(f"a rule has at most {SPLIT_PARTS_MAX} parts", field="parts",
                               parts=len(rule.parts))
    seen: set[str] = set()
    for i, part in enumerate(rule.parts):
        _check_part(part, f"parts[{i}]")
        if part.party in seen:
            raise InvalidSplitRule("a party takes one part of a rule",
                                   field=f"parts[{i}].party", party=part.party)
        if part.party == rule.remainder_party:
            raise InvalidSplitRule("the remainder party takes what the parts leave, not a part",
                                   field=f"parts[{i}].party", party=part.party)
        seen.add(part.party)
    total = sum((part.percent_max for part in rule.parts), Fraction(0))
    if total > HUNDRED_PERCENT:
        raise SplitExceedsWhole(
            "the parts' percents (the highest tier's for a tiered part) add up to more "
            "than 100", field="parts", percent_total=_decimal_text(total))


def _check_part(part: SplitPart, path: str) -> None:
    if not isinstance(part, SplitPart):
        raise InvalidSplitRule("a part is a SplitPart", field=path)
    if not _is_name(part.party):
        raise InvalidSplitRule(f"a party is a text of 1 to {NAME_LENGTH_MAX} characters",
                               field=f"{path}.party")
    if not isinstance(part.role, str) or part.role not in ROLES:
        raise InvalidSplitRule(f"a role is one of {', '.join(sorted(ROLES))}",
                               field=f"{path}.role", role=repr(part.role))
    if part.percent is not None:
        _check_percent(part.percent, f"{path}.percent")
    for name, value in (("fixed", part.fixed_minor), ("cap", part.cap_minor),
                        ("floor", part.floor_minor)):
        if value is not None:
            _check_minor(value, f"{path}.{name}")
    if part.percent is not None and part.tiers:
        raise InvalidSplitRule("a part takes a percent or tiers, not both",
                               field=f"{path}.tiers")
    if part.percent is None and not part.tiers and part.fixed_minor == 0:
        raise InvalidSplitRule("a part takes a percent, tiers or a fixed amount", field=path)
    if part.cap_minor is not None and part.floor_minor > part.cap_minor:
        raise InvalidSplitRule("a part's floor is never above its cap",
                               field=f"{path}.floor", floor_minor=part.floor_minor,
                               cap_minor=part.cap_minor)
    if not isinstance(part.tiers, tuple):
        raise InvalidSplitRule("tiers are a tuple of Tier", field=f"{path}.tiers")
    if len(part.tiers) > SPLIT_TIERS_MAX:
        raise InvalidSplitRule(f"a part has at most {SPLIT_TIERS_MAX} tiers",
                               field=f"{path}.tiers", tiers=len(part.tiers))
    below = 0
    for j, tier in enumerate(part.tiers):
        tier_path = f"{path}.tiers[{j}]"
        if not isinstance(tier, Tier):
            raise InvalidSplitRule("a tier is a Tier", field=tier_path)
        _check_percent(tier.percent, f"{tier_path}.percent")
        last = j == len(part.tiers) - 1
        if tier.up_to_minor is None:
            if not last:
                raise InvalidSplitRule("only the last tier is open (has no up_to)",
                                       field=f"{tier_path}.up_to")
            continue
        if last:
            raise InvalidSplitRule("the last tier is open: it has no up_to",
                                   field=f"{tier_path}.up_to")
        _check_minor(tier.up_to_minor, f"{tier_path}.up_to")
        if tier.up_to_minor <= below:
            raise InvalidSplitRule("tiers' up_to increase strictly, from above 0",
                                   field=f"{tier_path}.up_to", up_to_minor=tier.up_to_minor,
                                   previous_up_to_minor=below)
        below = tier.up_to_minor


def _check_percent(value: object, path: str) -> None:
    if isinstance(value, bool) or not isinstance(value, Fraction | int):
        raise InvalidSplitRule("a percent is an exact Fraction (never a float)", field=path,
                               percent=repr(value))
    if value < 0:
        raise InvalidSplitRule("a percent is never negative", field=path,
                               percent=_decimal_text(Fraction(value)))
    if value > HUNDRED_PERCENT:
        raise InvalidSplitRule("a percent is at most 100", field=path,
                               percent=_decimal_text(Fraction(value)))


def _check_minor(value: object, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidSplitRule("an amount is an int of minor units (never a float)",
                               field=path, value=repr(value))
    if value < 0:
        raise InvalidSplitRule("an amount is never negative", field=path, value=value)
    if value > AMOUNT_MAX_MINOR:
        raise InvalidSplitRule("the amount exceeds the largest representable amount",
                               field=path, value=value)
    return value


def _is_name(value: object) -> bool:
    return isinstance(value, str) and 0 < len(value) <= NAME_LENGTH_MAX and value.strip() != ""


def _decimal_text(value: Fraction) -> str:
    # A percent parsed from decimal text has a finite decimal expansion; any other Fraction
    # is shown as n/d rather than rounded.
    denominator = value.denominator
    for prime in (2, 5):
        while denominator % prime == 0:
            denominator //= prime
    if denominator != 1:
        return f"{value.numerator}/{value.denominator}"
    places = 0
    while (value * 10**places).denominator != 1:
        places += 1
    scaled = int(value * 10**places)
    if places == 0:
        return str(scaled)
    sign = "-" if scaled < 0 else ""
    digits = str(abs(scaled)).rjust(places + 1, "0")
    return f"{sign}{digits[:-places]}.{digits[-places:]}"


# --- parsing ---------------------------------------------------------------------------------


def _no_unknown(doc: Mapping[str, object], known: frozenset[str], path: str,
                source: str) -> None:
    unknown = sorted(str(key) for key in doc if key not in known)
    if unknown:
        where = f"{path}.{unknown[0]}" if path else unknown[0]
        raise InvalidSplitRule(f"unknown field; known: {', '.join(sorted(known))}",
                               source=source, field=where)


def _name(value: object, path: str, source: str) -> str:
    if not _is_name(value):
        raise InvalidSplitRule(f"a text of 1 to {NAME_LENGTH_MAX} characters", source=source,
                               field=path, value=repr(value))
    return str(value)


def _parse_percent(value: object, path: str, source: str) -> Fraction:
    if isinstance(value, float):
        raise InvalidSplitRule("a percent is decimal text in quotes, like \"2.9\" (never a "
                               "float)", source=source, field=path, value=repr(value))
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise InvalidSplitRule("a percent is never negative", source=source, field=path,
                                   percent=value)
        return Fraction(value)
    if isinstance(value, str) and value.startswith("-") and PERCENT_TEXT_PATTERN.match(
            value[1:]):
        raise InvalidSplitRule("a percent is never negative", source=source, field=path,
                               percent=value)
    if not isinstance(value, str) or not PERCENT_TEXT_PATTERN.match(value):
        raise InvalidSplitRule("a percent is decimal text, like \"2.9\"", source=source,
                               field=path, value=repr(value))
    return Fraction(value)


def _parse_minor(value: object, path: str, source: str) -> int:
    try:
        return _check_minor(value, path)
    except InvalidSplitRule as error:
        error.facts = {"source": source, **error.facts}
        raise


def _part_from_mapping(raw: object, path: str, source: str) -> SplitPart:
    if not isinstance(raw, Mapping):
        raise InvalidSplitRule("a part is a table", source=source, field=path)
    _no_unknown(raw, _PART_FIELDS, path, source)
    party = _name(raw.get("party"), f"{path}.party", source)
    role = raw.get("role")
    if not isinstance(role, str) or role not in ROLES:
        raise InvalidSplitRule(f"a role is one of {', '.join(sorted(ROLES))}", source=source,
                               field=f"{path}.role", role=repr(role))
    percent = raw.get("percent")
    cap = raw.get("cap")
    raw_tiers = raw.get("tiers")
    tiers: tuple[Tier, ...] = ()
    if raw_tiers is not None:
        if not isinstance(raw_tiers, Sequence) or isinstance(raw_tiers, str | bytes) \
                or not raw_tiers:
            raise InvalidSplitRule("tiers are a non-empty list of tables", source=source,
                                   field=f"{path}.tiers")
        if len(raw_tiers) > SPLIT_TIERS_MAX:
            raise InvalidSplitRule(f"a part has at most {SPLIT_TIERS_MAX} tiers",
                                   source=source, field=f"{path}.tiers", tiers=len(raw_tiers))
        tiers = tuple(_tier_from_mapping(tier, f"{path}.tiers[{j}]", source)
                      for j, tier in enumerate(raw_tiers))
    return SplitPart(
        party=party,
        role=str(role),
        percent=None if percent is None else _parse_percent(percent, f"{path}.percent",
                                                            source),
        fixed_minor=_parse_minor(raw.get("fixed", 0), f"{path}.fixed", source),
        cap_minor=None if cap is None else _parse_minor(cap, f"{path}.cap", source),
        floor_minor=_parse_minor(raw.get("floor", 0), f"{path}.floor", source),
        tiers=tiers,
    )


def _tier_from_mapping(raw: object, path: str, source: str) -> Tier:
    if not isinstance(raw, Mapping):
        raise InvalidSplitRule("a tier is a table", source=source, field=path)
    _no_unknown(raw, _TIER_FIELDS, path, source)
    if "percent" not in raw:
        raise InvalidSplitRule("a tier has a percent", source=source, field=f"{path}.percent")
    up_to = raw.get("up_to")
    return Tier(None if up_to is None else _parse_minor(up_to, f"{path}.up_to", source),
                _parse_percent(raw["percent"], f"{path}.percent", source))


# --- the arithmetic --------------------------------------------------------------------------


def _compile(parts: tuple[SplitPart, ...]) -> _Compiled:
    ratios = [Fraction(p, 100) for part in parts
              for p in ([part.percent] if part.percent is not None else [])
              + [tier.percent for tier in part.tiers]]
    denominator = math.lcm(1, *(ratio.denominator for ratio in ratios))

    def scaled(percent: Fraction) -> int:
        value = Fraction(percent, 100) * denominator
        invariant(value.denominator == 1, "a percent is a whole multiple of 1/denominator")
        return value.numerator

    compiled: list[_CompiledPart] = []
    for part in parts:
        bands: list[tuple[int, int | None, int]] = []
        below = 0
        for tier in part.tiers:
            bands.append((below, tier.up_to_minor, scaled(tier.percent)))
            below = tier.up_to_minor or 0
        compiled.append((
            0 if part.percent is None else scaled(part.percent),
            tuple(bands),
            part.fixed_minor * denominator,
            None if part.cap_minor is None else part.cap_minor * denominator,
            part.floor_minor * denominator,
        ))
    return _Compiled(denominator, tuple(compiled))


def _split_minor(compiled: _Compiled, amount_minor: int) -> tuple[int, ...]:
    """The rounded shares of `amount_minor`, the parts' then the remainder's (Hamilton)."""
    denominator = compiled.denominator
    left = amount_minor * denominator  # exact shares are numerators over `denominator`
    exact: list[int] = []
    for coefficient, bands, fixed, cap, floor in compiled.parts:
        share = coefficient * amount_minor + fixed
        for from_minor, up_to_minor, band_coefficient in bands:
            if amount_minor <= from_minor:
                break
            top = amount_minor if up_to_minor is None or amount_minor < up_to_minor \
                else up_to_minor
            share += band_coefficient * (top - from_minor)
        if cap is not None and share > cap:
            share = cap
        if share < floor:
            share = floor
        if share > left:
            share = left  # a fixed amount or a floor cut to what is left
        left -= share
        exact.append(share)
    exact.append(left)
    if denominator == 1:
        return tuple(exact)
    floors = [share // denominator for share in exact]
    leftover = amount_minor - sum(floors)
    if leftover:
        # Largest fractional part first; ties to the earlier party (the remainder last), as
        # the sort is stable.
        fractions = [-(share % denominator) for share in exact]
        for i in sorted(range(len(exact)), key=fractions.__getitem__)[:leftover]:
            floors[i] += 1
    return tuple(floors)
