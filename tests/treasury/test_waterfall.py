"""Waterfall disbursement: worked examples, every refusal, and the money properties of any
waterfall (nothing created or lost, seniority, pro rata within one unit)."""

from __future__ import annotations

import copy
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fundpool.core.errors import FundpoolError
from fundpool.treasury.waterfall import (
    CyclicTiers,
    EmptyTier,
    InvalidWaterfall,
    Obligation,
    TiersNotOrdered,
    TierSpec,
    TierTotal,
    UnknownTier,
    WaterfallInput,
    tier_order,
    waterfall,
    waterfall_from_mapping,
)

DOC: dict[str, Any] = {
    "available": 1_000_000_00,
    "tiers": [{"name": "senior"}, {"name": "mezzanine", "after": "senior"},
              {"name": "junior", "after": "mezzanine"}],
    "obligations": [
        {"id": "loan-a", "creditor": "bank-a", "tier": "senior", "amount": 300_000_00},
        {"id": "loan-b", "creditor": "bank-b", "tier": "senior", "amount": 200_000_00},
        {"id": "note-c", "creditor": "fund-c", "tier": "mezzanine", "amount": 400_000_00},
        {"id": "note-d", "creditor": "fund-d", "tier": "mezzanine", "amount": 200_000_00},
        {"id": "equity", "creditor": "sponsor", "tier": "junior", "amount": 100_000_00},
    ],
}


def paid(doc: dict[str, Any]) -> dict[str, int]:
    report = waterfall_from_mapping(doc).run()
    return {payment.obligation_id: payment.paid_minor for payment in report.payments}


# --- worked examples -------------------------------------------------------------------------


def test_seniors_in_full_then_the_mezzanine_pro_rata_and_the_junior_nothing() -> None:
    report = waterfall_from_mapping(DOC).run()
    # 1,000,000.00: the senior tier's 500,000.00 in full; the 500,000.00 left is 5/6 of the
    # mezzanine's 600,000.00: 333,333.333... and 166,666.666...; the cent left over goes to
    # the larger fraction (.67, note-d)
    assert {p.obligation_id: (p.paid_minor, p.owed_minor) for p in report.payments} == {
        "loan-a": (300_000_00, 0), "loan-b": (200_000_00, 0),
        "note-c": (333_333_33, 66_666_67), "note-d": (166_666_67, 33_333_33),
        "equity": (0, 100_000_00)}
    assert report.tiers == (
        TierTotal("senior", 500_000_00, 500_000_00, 0, True),
        TierTotal("mezzanine", 600_000_00, 500_000_00, 100_000_00, False),
        TierTotal("junior", 100_000_00, 0, 100_000_00, False))
    assert report.left_minor == 0
    assert report.paid_minor == 1_000_000_00


def test_what_every_tier_leaves_is_left() -> None:
    doc = {**DOC, "available": 1_500_000_00}
    report = waterfall_from_mapping(doc).run()
    assert all(tier.fully_paid for tier in report.tiers)
    assert report.left_minor == 300_000_00
    assert report.payment("equity").paid_minor == 100_000_00


def test_nothing_available_pays_nothing() -> None:
    report = waterfall_from_mapping({**DOC, "available": 0}).run()
    assert report.paid_minor == 0
    assert report.tier("senior") == TierTotal("senior", 500_000_00, 0, 500_000_00, False)


def test_equal_claims_share_the_odd_unit_by_input_order() -> None:
    obligations = [Obligation(f"o{i}", f"c{i}", "only", 100) for i in range(3)]
    report = waterfall(200, [TierSpec("only")], obligations)
    assert [p.paid_minor for p in report.payments] == [67, 67, 66]  # 66.67 each


def test_tiers_may_be_listed_in_any_order() -> None:
    shuffled = {**DOC, "tiers": list(reversed(DOC["tiers"]))}
    assert paid(shuffled) == paid(DOC)
    assert tier_order([TierSpec("c", "b"), TierSpec("a"), TierSpec("b", "a")]) == ("a", "b",
                                                                                   "c")


def test_a_zero_obligation_is_paid_its_nothing() -> None:
    report = waterfall(5, [TierSpec("t")], [Obligation("a", "x", "t", 0),
                                            Obligation("b", "y", "t", 10)])
    assert [p.paid_minor for p in report.payments] == [0, 5]


def test_the_parsed_input_is_values() -> None:
    parsed = waterfall_from_mapping(DOC)
    assert parsed == WaterfallInput(
        1_000_000_00,
        (TierSpec("senior"), TierSpec("mezzanine", "senior"), TierSpec("junior", "mezzanine")),
        tuple(Obligation(o["id"], o["creditor"], o["tier"], o["amount"])
              for o in DOC["obligations"]))
    assert waterfall(*(parsed.available_minor, parsed.tiers, parsed.obligations)) \
        == parsed.run()


# --- refusals --------------------------------------------------------------------------------


def changed(path: tuple[object, ...], value: object) -> dict[str, Any]:
    doc = copy.deepcopy(DOC)
    target: Any = doc
    for key in path[:-1]:
        target = target[key]
    if value is ...:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return doc


@pytest.mark.parametrize(("doc", "error", "field"), [
    (changed(("available",), -1), InvalidWaterfall, "available"),
    (changed(("available",), 10.5), InvalidWaterfall, "available"),
    (changed(("available",), True), InvalidWaterfall, "available"),
    (changed(("obligations", 2, "amount"), -5), InvalidWaterfall, "obligations[2].amount"),
    (changed(("obligations", 2, "amount"), 5.0), InvalidWaterfall, "obligations[2].amount"),
    (changed(("obligations", 2, "amount"), "5"), InvalidWaterfall, "obligations[2].amount"),
    (changed(("obligations", 3, "id"), "note-c"), InvalidWaterfall, "obligations[3].id"),
    (changed(("obligations", 3, "creditor"), ""), InvalidWaterfall,
     "obligations[3].creditor"),
    (changed(("obligations", 3, "seniority"), 1), InvalidWaterfall,
     "obligations[3].seniority"),
    (changed(("obligations", 3, "tier"), "equity"), UnknownTier, "obligations[3].tier"),
    (changed(("tiers",), []), InvalidWaterfall, "tiers"),
    (changed(("tiers",), "senior"), InvalidWaterfall, "tiers"),
    (changed(("tiers", 1, "name"), "senior"), InvalidWaterfall, "tiers[1].name"),
    (changed(("tiers", 1, "rank"), 2), InvalidWaterfall, "tiers[1].rank"),
    (changed(("tiers", 2, "after"), "mezz"), UnknownTier, "tiers[2].after"),
    (changed(("tiers", 2, "after"), "senior"), TiersNotOrdered, "tiers[2].after"),  # a fork
    (changed(("tiers", 2, "after"), ...), TiersNotOrdered, "tiers[2].after"),  # two heads
    (changed(("tiers", 0, "after"), "junior"), CyclicTiers, "tiers"),
    (changed(("tiers", 2, "after"), "junior"), CyclicTiers, "tiers"),  # after itself
    (changed(("obligations",), DOC["obligations"][:4]), EmptyTier, "obligations"),
    (changed(("fees",), 1), InvalidWaterfall, "fees"),
])
def test_a_bad_waterfall_is_refused_naming_the_field(doc: dict[str, Any],
                                                     error: type[FundpoolError],
                                                     field: str) -> None:
    with pytest.raises(error) as refused:
        waterfall_from_mapping(doc, source="plan.yaml")
    assert refused.value.facts["field"] == field
    assert refused.value.facts["source"] == "plan.yaml"


def test_the_refusals_have_stable_codes() -> None:
    assert [e.code for e in (InvalidWaterfall, CyclicTiers, EmptyTier, UnknownTier,
                             TiersNotOrdered)] == [
        "invalid_waterfall", "cyclic_tiers", "empty_tier", "unknown_tier",
        "tiers_not_ordered"]


def test_a_cycle_is_named() -> None:
    tiers = [TierSpec("senior"), TierSpec("a", "b"), TierSpec("b", "c"), TierSpec("c", "a")]
    with pytest.raises(CyclicTiers) as refused:
        tier_order(tiers)
    assert refused.value.facts["cycle"] == ["a", "b", "c", "a"]
    with pytest.raises(CyclicTiers) as refused:
        tier_order([TierSpec("x", "x")])
    assert refused.value.facts["cycle"] == ["x", "x"]


def test_values_are_checked_as_documents_are() -> None:
    with pytest.raises(InvalidWaterfall) as refused:
        waterfall(-1, [TierSpec("t")], [Obligation("a", "x", "t", 1)])
    assert refused.value.facts["field"] == "available"
    with pytest.raises(EmptyTier) as empty:
        waterfall(1, [TierSpec("t"), TierSpec("u", "t")], [Obligation("a", "x", "t", 1)])
    assert empty.value.facts["tier"] == "u"


# --- properties ------------------------------------------------------------------------------


@st.composite
def waterfalls(draw: st.DrawFn) -> tuple[int, list[TierSpec], list[Obligation]]:
    depth = draw(st.integers(1, 5))
    names = [f"tier-{i}" for i in range(depth)]
    specs = [TierSpec(name, names[i - 1] if i else None) for i, name in enumerate(names)]
    specs = draw(st.permutations(specs))
    obligations: list[Obligation] = []
    for name in names:
        for _ in range(draw(st.integers(1, 6))):
            amount = draw(st.integers(0, 10**6) | st.integers(0, 10**20))
            obligations.append(Obligation(f"o{len(obligations)}", "c", name, amount))
    obligations = draw(st.permutations(obligations))
    due = sum(o.amount_minor for o in obligations)
    available = draw(st.integers(0, 2 * due + 10))
    return available, list(specs), list(obligations)


@settings(max_examples=300)
@given(waterfalls())
def test_any_waterfall_keeps_every_unit_and_the_seniority(
        case: tuple[int, list[TierSpec], list[Obligation]]) -> None:
    available, specs, obligations = case
    report = waterfall(available, specs, obligations)
    paid_total = sum(p.paid_minor for p in report.payments)
    assert paid_total + report.left_minor == available
    assert paid_total == min(available, sum(o.amount_minor for o in obligations))
    for payment, obligation in zip(report.payments, obligations, strict=True):
        assert payment.obligation_id == obligation.id
        assert 0 <= payment.paid_minor <= obligation.amount_minor
        assert payment.paid_minor + payment.owed_minor == obligation.amount_minor
    # senior to junior, and a tier gets something only once every senior one is paid in full
    assert [t.name for t in report.tiers] == [f"tier-{i}" for i in range(len(specs))]
    for i, tier in enumerate(report.tiers):
        assert tier.paid_minor + tier.owed_minor == tier.due_minor
        assert tier.fully_paid == (tier.owed_minor == 0)
        if tier.paid_minor > 0:
            assert all(senior.fully_paid for senior in report.tiers[:i])
    assert report.left_minor == 0 or all(t.fully_paid for t in report.tiers)

    # within a tier paid in part, each share is within one unit of its exact pro rata share
    left = available
    for tier in report.tiers:
        members = [p for p in report.payments if p.tier == tier.name]
        if not tier.fully_paid:
            for p in members:
                exact = Fraction(left * p.amount_minor, tier.due_minor)
                assert abs(p.paid_minor - exact) < 1
        left -= tier.paid_minor
