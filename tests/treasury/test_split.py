"""Splits and commissions: worked examples, every refusal, and the properties of any split
against a plain Fraction reference that follows the module's docstring step by step."""

from __future__ import annotations

import copy
import math
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fundpool.core.errors import FundpoolError, InvalidAmount, NegativeAmount
from fundpool.treasury.split import (
    InvalidSplitRule,
    Share,
    SplitExceedsWhole,
    SplitPart,
    SplitRule,
    Tier,
    rule_from_mapping,
    split,
    split_many,
)

MARKETPLACE: dict[str, Any] = {
    "id": "marketplace",
    "remainder": "merchant:m1",
    "parts": [
        {"party": "platform", "role": "platform", "percent": "2.9", "fixed": 30, "cap": 5000},
        {"party": "partner:p1", "role": "partner", "percent": "1"},
        {"party": "agent:a1", "role": "agent", "percent": "0.5"},
    ],
}


def amounts(rule: SplitRule, amount_minor: int) -> list[int]:
    return [share.amount_minor for share in split(rule, amount_minor)]


def exact_shares(rule: SplitRule, amount_minor: int) -> list[Fraction]:
    """The docstring's exact shares, written the plain way, in Fractions."""
    left = Fraction(amount_minor)
    exact: list[Fraction] = []
    for part in rule.parts:
        share = Fraction(0)
        if part.tiers:
            below = 0
            for tier in part.tiers:
                top = amount_minor if tier.up_to_minor is None else min(amount_minor,
                                                                        tier.up_to_minor)
                if top > below:
                    share += tier.percent / 100 * (top - below)
                below = tier.up_to_minor or below
        elif part.percent is not None:
            share = part.percent / 100 * amount_minor
        share += part.fixed_minor
        if part.cap_minor is not None:
            share = min(share, Fraction(part.cap_minor))
        share = max(share, Fraction(part.floor_minor))
        share = min(share, left)
        left -= share
        exact.append(share)
    exact.append(left)
    return exact


def reference(rule: SplitRule, amount_minor: int) -> list[int]:
    """The exact shares rounded by largest remainder, ties to the earlier party."""
    exact = exact_shares(rule, amount_minor)
    floors = [math.floor(value) for value in exact]
    order = sorted(range(len(exact)), key=lambda i: (-(exact[i] - floors[i]), i))
    for i in order[:amount_minor - sum(floors)]:
        floors[i] += 1
    return floors


# --- worked examples -------------------------------------------------------------------------


def test_a_marketplace_payment_of_100_00() -> None:
    rule = rule_from_mapping(MARKETPLACE)
    assert split(rule, 100_00) == (
        Share("platform", "platform", 3_20),  # 2.90 + 0.30
        Share("partner:p1", "partner", 1_00),
        Share("agent:a1", "agent", 50),
        Share("merchant:m1", "merchant", 95_30),
    )


def test_123_45_rounds_by_largest_remainder() -> None:
    # exact: 388.005 (3.58005 + 0.30), 123.45, 61.725, 11771.82 -> floors leave 2 units,
    # which go to the largest fractions: the merchant's .82 and the agent's .725
    assert amounts(rule_from_mapping(MARKETPLACE), 123_45) == [388, 123, 62, 11772]


def test_the_cap_holds_the_platform_at_50_00() -> None:
    # 2.9 % of 10,000.00 + 0.30 = 290.30, capped at 50.00
    assert amounts(rule_from_mapping(MARKETPLACE), 10_000_00) == [50_00, 100_00, 50_00,
                                                                  9_800_00]


def test_a_fixed_fee_larger_than_the_payment_is_cut_to_the_payment() -> None:
    # 0.20 cannot pay the 0.30 fixed fee: the platform takes all of it, nobody else anything
    assert amounts(rule_from_mapping(MARKETPLACE), 20) == [20, 0, 0, 0]
    assert amounts(rule_from_mapping(MARKETPLACE), 0) == [0, 0, 0, 0]


def test_marginal_tiers_apply_each_percent_to_its_band() -> None:
    doc = {"id": "tiered", "remainder": "merchant:m1", "parts": [
        {"party": "partner:p1", "role": "partner",
         "tiers": [{"up_to": 1_000_00, "percent": "1"}, {"percent": "0.5"}]}]}
    rule = rule_from_mapping(doc)
    assert amounts(rule, 500_00) == [5_00, 495_00]  # all in the first band
    assert amounts(rule, 1_000_00) == [10_00, 990_00]
    # 1 % of the first 1,000.00 and 0.5 % of the 1,500.00 above it
    assert amounts(rule, 2_500_00) == [17_50, 2_482_50]


def test_a_floor_is_the_minimum_commission() -> None:
    doc = {"id": "agent", "remainder": "merchant:m1", "parts": [
        {"party": "agent:a1", "role": "agent", "percent": "1", "floor": 50}]}
    rule = rule_from_mapping(doc)
    assert amounts(rule, 10_00) == [50, 9_50]  # 1 % is 0.10, the floor 0.50
    assert amounts(rule, 100_00) == [1_00, 99_00]
    assert amounts(rule, 30) == [30, 0]  # a floor above the payment is cut to the payment


def test_ties_go_to_the_earlier_party_and_the_merchant_last() -> None:
    halves = rule_from_mapping({"id": "halves", "remainder": "merchant", "parts": [
        {"party": "a", "role": "partner", "percent": "50"},
        {"party": "b", "role": "partner", "percent": "50"}]})
    assert amounts(halves, 1) == [1, 0, 0]
    assert amounts(halves, 3) == [2, 1, 0]
    half = rule_from_mapping({"id": "half", "remainder": "merchant", "parts": [
        {"party": "a", "role": "partner", "percent": "50"}]})
    assert amounts(half, 1) == [1, 0]


def test_percents_sum_to_exactly_100_is_allowed() -> None:
    rule = rule_from_mapping({"id": "all", "remainder": "merchant", "parts": [
        {"party": "a", "role": "platform", "percent": "60"},
        {"party": "b", "role": "partner", "percent": "40"}]})
    assert amounts(rule, 1_01) == [61, 40, 0]  # 60.6 and 40.4


def test_wei_sized_amounts_stay_exact() -> None:
    rule = rule_from_mapping(MARKETPLACE)
    amount = 10**30 + 7
    shares = amounts(rule, amount)
    assert sum(shares) == amount
    assert shares == reference(rule, amount)


def test_a_rule_built_from_values_splits_as_the_parsed_one() -> None:
    built = SplitRule("marketplace", (
        SplitPart("platform", "platform", Fraction("2.9"), 30, 5000),
        SplitPart("partner:p1", "partner", Fraction(1)),
        SplitPart("agent:a1", "agent", Fraction("0.5"))), "merchant:m1")
    assert built == rule_from_mapping(MARKETPLACE)
    assert split(built, 123_45) == split(rule_from_mapping(MARKETPLACE), 123_45)
    assert built.parties == ("platform", "partner:p1", "agent:a1", "merchant:m1")


def test_split_many_matches_split() -> None:
    rule = rule_from_mapping(MARKETPLACE)
    batch = [0, 1, 99, 100_00, 123_45, 10_000_00]
    assert split_many(rule, batch) == [tuple(amounts(rule, a)) for a in batch]


@pytest.mark.parametrize(("amount", "error"), [
    (-1, NegativeAmount), (1.5, InvalidAmount), (True, InvalidAmount), ("100", InvalidAmount)])
def test_a_bad_amount_is_refused(amount: object, error: type[FundpoolError]) -> None:
    rule = rule_from_mapping(MARKETPLACE)
    with pytest.raises(error):
        split(rule, amount)  # type: ignore[arg-type]
    with pytest.raises(error):
        split_many(rule, [1, amount])  # type: ignore[list-item]


# --- refusals --------------------------------------------------------------------------------


def changed(path: tuple[object, ...], value: object) -> dict[str, Any]:
    """MARKETPLACE with the field at `path` set to `value` (deleted when value is ...)."""
    doc = copy.deepcopy(MARKETPLACE)
    target: Any = doc
    for key in path[:-1]:
        target = target[key]
    if value is ...:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return doc


TIERS = [{"up_to": 100_000, "percent": "1"}, {"percent": "0.5"}]


@pytest.mark.parametrize(("doc", "field"), [
    (changed(("colour",), "red"), "colour"),
    (changed(("parts", 1, "colour"), "red"), "parts[1].colour"),
    (changed(("parts", 1, "percent"), 1.0), "parts[1].percent"),
    (changed(("parts", 0, "fixed"), 30.0), "parts[0].fixed"),
    (changed(("parts", 0, "cap"), 50.5), "parts[0].cap"),
    (changed(("parts", 1, "percent"), "-1"), "parts[1].percent"),
    (changed(("parts", 1, "percent"), -1), "parts[1].percent"),
    (changed(("parts", 1, "percent"), "1,5"), "parts[1].percent"),
    (changed(("parts", 1, "percent"), "1e2"), "parts[1].percent"),
    (changed(("parts", 0, "fixed"), -30), "parts[0].fixed"),
    (changed(("parts", 0, "cap"), -1), "parts[0].cap"),
    (changed(("parts", 0, "floor"), -1), "parts[0].floor"),
    (changed(("parts", 0, "floor"), 6000), "parts[0].floor"),  # above the cap
    (changed(("parts", 1, "percent"), "100.5"), "parts[1].percent"),
    (changed(("parts", 1, "role"), "broker"), "parts[1].role"),
    (changed(("parts", 1, "party"), "platform"), "parts[1].party"),
    (changed(("parts", 1, "party"), "merchant:m1"), "parts[1].party"),
    (changed(("parts", 1, "party"), ""), "parts[1].party"),
    (changed(("parts", 1, "percent"), ...), "parts[1]"),  # takes nothing
    (changed(("parts", 1, "tiers"), TIERS), "parts[1].tiers"),  # percent and tiers
    (changed(("parts",), []), "parts"),
    (changed(("parts",), "platform"), "parts"),
    (changed(("remainder",), None), "remainder"),
    (changed(("id",), 7), "id"),
])
def test_a_bad_rule_is_refused_naming_the_field(doc: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidSplitRule) as refused:
        rule_from_mapping(doc, source="rules.yaml")
    assert refused.value.code == "invalid_split_rule"
    assert refused.value.facts["field"] == field
    assert refused.value.facts["source"] == "rules.yaml"


@pytest.mark.parametrize(("tiers", "field"), [
    ([{"up_to": 100_000, "percent": "1"}], "parts[1].tiers[0].up_to"),  # no open last tier
    ([{"up_to": 100_000, "percent": "1"}, {"up_to": 100_000, "percent": "0.5"},
      {"percent": "0.1"}], "parts[1].tiers[1].up_to"),  # not increasing
    ([{"up_to": 100_000, "percent": "1"}, {"up_to": 50_000, "percent": "0.5"},
      {"percent": "0.1"}], "parts[1].tiers[1].up_to"),
    ([{"up_to": 0, "percent": "1"}, {"percent": "0.5"}], "parts[1].tiers[0].up_to"),
    ([{"percent": "1"}, {"percent": "0.5"}], "parts[1].tiers[0].up_to"),  # open, not last
    ([{"up_to": 100_000, "percent": 1.0}, {"percent": "0.5"}], "parts[1].tiers[0].percent"),
    ([{"up_to": 100_000.0, "percent": "1"}, {"percent": "0.5"}], "parts[1].tiers[0].up_to"),
    ([{"up_to": 100_000, "percent": "101"}, {"percent": "0.5"}],
     "parts[1].tiers[0].percent"),
    ([{"up_to": 100_000}, {"percent": "0.5"}], "parts[1].tiers[0].percent"),
    ([{"up_to": 100_000, "percent": "1", "rate": "2"}, {"percent": "0.5"}],
     "parts[1].tiers[0].rate"),
    ([], "parts[1].tiers"),
])
def test_bad_tiers_are_refused_naming_the_field(tiers: list[Any], field: str) -> None:
    doc = changed(("parts", 1, "percent"), ...)
    doc["parts"][1]["tiers"] = tiers
    with pytest.raises(InvalidSplitRule) as refused:
        rule_from_mapping(doc)
    assert refused.value.facts["field"] == field


def test_percents_above_the_whole_are_refused() -> None:
    doc = changed(("parts", 1, "percent"), "97.2")  # 2.9 + 97.2 + 0.5 = 100.6
    with pytest.raises(SplitExceedsWhole) as refused:
        rule_from_mapping(doc)
    assert refused.value.code == "split_percentages_exceed_whole"
    assert refused.value.facts["percent_total"] == "100.6"
    # a tiered part counts at its highest tier
    tiered = changed(("parts", 1, "percent"), ...)
    tiered["parts"][1]["tiers"] = [{"up_to": 100_000, "percent": "97"}, {"percent": "1"}]
    with pytest.raises(SplitExceedsWhole):
        rule_from_mapping(tiered)


def test_values_are_checked_too() -> None:
    with pytest.raises(InvalidSplitRule) as refused:
        SplitRule("r", (SplitPart("a", "partner", 2.5),), "m")  # type: ignore[arg-type]
    assert refused.value.facts["field"] == "parts[0].percent"
    with pytest.raises(InvalidSplitRule):
        SplitRule("r", (), "m")
    with pytest.raises(InvalidSplitRule):
        SplitRule("r", (SplitPart("a", "partner", Fraction(1),
                                  tiers=(Tier(None, Fraction(1)),)),), "m")


# --- properties ------------------------------------------------------------------------------

percents = st.integers(0, 10_000).map(lambda n: Fraction(n, 1000))  # 0 to 10 %, 3 places


@st.composite
def parts(draw: st.DrawFn, index: int) -> SplitPart:
    kind = draw(st.sampled_from(["percent", "tiers", "fixed"]))
    percent: Fraction | None = None
    tiers: tuple[Tier, ...] = ()
    fixed = draw(st.integers(0, 500))
    if kind == "percent":
        percent = draw(percents)
    elif kind == "tiers":
        bounds = sorted(draw(st.sets(st.integers(1, 10**6), max_size=3)))
        tiers = (*(Tier(b, draw(percents)) for b in bounds), Tier(None, draw(percents)))
    else:
        fixed = draw(st.integers(1, 500))
    cap = draw(st.none() | st.integers(0, 10**5))
    floor = draw(st.integers(0, 200 if cap is None else min(cap, 200)))
    return SplitPart(f"party-{index}", draw(st.sampled_from(["platform", "partner", "agent"])),
                     percent, fixed, cap, floor, tiers)


@st.composite
def rules(draw: st.DrawFn) -> SplitRule:
    count = draw(st.integers(1, 5))
    return SplitRule("rule", tuple(draw(parts(i)) for i in range(count)), "merchant")


money = st.integers(0, 10**7) | st.integers(0, 10**20)


@settings(max_examples=300)
@given(rules(), money)
def test_any_split_is_exact_and_follows_the_rounding_policy(rule: SplitRule,
                                                            amount: int) -> None:
    shares = split(rule, amount)
    got = [share.amount_minor for share in shares]
    assert sum(got) == amount
    assert min(got) >= 0
    assert [share.party for share in shares] == [*(p.party for p in rule.parts), "merchant"]
    assert shares[-1].role == "merchant"
    for part, share in zip(rule.parts, got, strict=False):
        if part.cap_minor is not None:
            assert share <= part.cap_minor
        # a floor holds unless the parts before it took what it needed
    assert got == reference(rule, amount)


@settings(max_examples=100)
@given(rules(), st.lists(money, max_size=20))
def test_split_many_is_split_of_each(rule: SplitRule, batch: list[int]) -> None:
    assert split_many(rule, batch) == [tuple(amounts(rule, a)) for a in batch]


@settings(max_examples=100)
@given(rules(), money)
def test_each_share_is_within_one_unit_of_its_exact_share(rule: SplitRule,
                                                          amount: int) -> None:
    exact = exact_shares(rule, amount)
    assert sum(exact) == amount
    for share, value in zip(amounts(rule, amount), exact, strict=True):
        assert abs(share - value) < 1


@settings(max_examples=100)
@given(rules(), money)
def test_a_rule_round_trips_through_its_document(rule: SplitRule, amount: int) -> None:
    doc: dict[str, Any] = {"id": rule.id, "remainder": rule.remainder_party, "parts": []}
    for part in rule.parts:
        raw: dict[str, Any] = {"party": part.party, "role": part.role,
                               "fixed": part.fixed_minor, "floor": part.floor_minor}
        if part.cap_minor is not None:
            raw["cap"] = part.cap_minor
        if part.percent is not None:
            raw["percent"] = _decimal(part.percent)
        if part.tiers:
            raw["tiers"] = [{"percent": _decimal(t.percent)} if t.up_to_minor is None
                            else {"up_to": t.up_to_minor, "percent": _decimal(t.percent)}
                            for t in part.tiers]
        doc["parts"].append(raw)
    assert rule_from_mapping(doc) == rule
    assert split(rule_from_mapping(doc), amount) == split(rule, amount)


def _decimal(percent: Fraction) -> str:
    thousandths = percent * 1000
    assert thousandths.denominator == 1
    whole, places = divmod(thousandths.numerator, 1000)
    return f"{whole}.{places:03d}"
