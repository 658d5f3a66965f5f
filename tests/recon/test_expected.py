"""Expected payments against the credits that arrived: the reference rule (equal, or contained
between word boundaries), the amount-and-date rule with the counterparty, their bounds, what
stays ambiguous, and properties over random announcements and credits: each in one place, each
match allowed by a rule, nothing left open that a rule would have matched, and the same answer
whatever the inputs' order."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fundpool.recon.expected import (
    COUNTERPARTY_SIMILARITY_MIN,
    Credit,
    ExpectedMatch,
    ExpectedPayment,
    ExpectedResult,
    match_expected,
)
from fundpool.recon.model import DAY_US, MatchRule

DAY = 1_796_601_600_000_000  # 2026-12-07T00:00:00Z


def expect(expected_id: str = "E1", *, reference: str | None = None,
           counterparty: str | None = None, low: int = 49_00, high: int = 51_00,
           asset: str = "EUR") -> ExpectedPayment:
    return ExpectedPayment(expected_id, asset, low, high, DAY, DAY + 3 * DAY_US, reference,
                           counterparty)


def credit(credit_id: str, amount_minor: int = 50_00, *, at_us: int = DAY + DAY_US,
           reference: str | None = None, counterparty: str | None = None,
           asset: str = "EUR") -> Credit:
    return Credit(credit_id, amount_minor, asset, at_us, reference, counterparty)


# --- the reference -------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["INV-77", "inv-77", " INV - 77 ", "Invoice INV-77, thanks",
                                  "inv-77/globex", "PAYMENT\nINV-77"])
def test_a_credit_carrying_the_reference_matches_by_it(text: str) -> None:
    result = match_expected([credit("C1", reference=text)], [expect(reference="INV-77")])
    assert result == ExpectedResult((ExpectedMatch("E1", "C1", MatchRule.REFERENCE),))
    assert result.matched[0].rule == "reference"


@pytest.mark.parametrize("text", ["INV-778", "XINV-77", "INV-7", "INV 7 7 8"])
def test_a_reference_inside_a_longer_word_is_not_carried(text: str) -> None:
    result = match_expected([credit("C1", reference=text, at_us=DAY + 9 * DAY_US)],
                            [expect(reference="INV-77")])
    assert (result.matched, result.open, result.unmatched_credits) == ((), ("E1",), ("C1",))


def test_a_reference_that_opens_with_a_symbol_is_found_in_a_sentence_too() -> None:
    late = DAY + 9 * DAY_US
    result = match_expected([credit("C1", reference="Order #7701 paid", at_us=late)],
                            [expect(reference="#7701")])
    assert result.matched == (ExpectedMatch("E1", "C1", MatchRule.REFERENCE),)


def test_a_short_reference_must_be_equal_not_contained() -> None:
    late = DAY + 9 * DAY_US  # outside the window: the amount rule cannot match it either
    assert match_expected([credit("C1", reference="a1", at_us=late)],
                          [expect(reference="A1")]).matched
    assert not match_expected([credit("C1", reference="order a1", at_us=late)],
                              [expect(reference="A1")]).matched


def test_a_reference_names_the_payment_early_or_late_but_not_at_another_amount() -> None:
    late = credit("C1", reference="INV-77", at_us=DAY + 30 * DAY_US)
    assert match_expected([late], [expect(reference="INV-77")]).matched == (
        ExpectedMatch("E1", "C1", MatchRule.REFERENCE),)
    partial = credit("C2", 20_00, reference="INV-77")
    assert match_expected([partial], [expect(reference="INV-77")]) == ExpectedResult(
        unmatched_credits=("C2",), open=("E1",))


def test_two_credits_carrying_one_reference_are_ambiguous_and_not_settled_by_amount() -> None:
    # C2 alone fits the window, but the reference rule found both: a person decides.
    result = match_expected([credit("C1", reference="INV-77", at_us=DAY + 9 * DAY_US),
                             credit("C2", reference="paid INV-77")],
                            [expect(reference="INV-77")])
    assert result == ExpectedResult(ambiguous=(("E1", ("C1", "C2")),),
                                    unmatched_credits=("C1", "C2"))


# --- amount, date and counterparty ---------------------------------------------------------


@pytest.mark.parametrize(("amount_minor", "at_us", "matched"), [
    (49_00, DAY, True),  # both at their lower bounds
    (51_00, DAY + 3 * DAY_US, True),  # both at their upper bounds
    (48_99, DAY + DAY_US, False),
    (51_01, DAY + DAY_US, False),
    (50_00, DAY - 1, False),
    (50_00, DAY + 3 * DAY_US + 1, False),
])
def test_the_amount_and_the_time_hold_at_their_exact_bounds(
        amount_minor: int, at_us: int, matched: bool) -> None:
    result = match_expected([credit("C1", amount_minor, at_us=at_us)], [expect()])
    assert (result.matched == (ExpectedMatch("E1", "C1", MatchRule.AMOUNT),)) is matched


@pytest.mark.parametrize(("announced", "arrived", "matched"), [
    ("Globex", "GLOBEX Corporation", True),
    ("Globex Ltd.", "globex ltd", True),
    ("Globex Ltd", "Globox Ltd", True),  # a typo: 90
    ("Globex", "Initech", False),
    ("Globex", None, True),  # a name on one side only says nothing against it
    (None, "Initech", True),
])
def test_named_counterparties_must_be_alike(announced: str | None, arrived: str | None,
                                            matched: bool) -> None:
    result = match_expected([credit("C1", counterparty=arrived)],
                            [expect(counterparty=announced)])
    assert bool(result.matched) is matched
    assert COUNTERPARTY_SIMILARITY_MIN == 85


def test_another_asset_never_matches() -> None:
    result = match_expected([credit("C1", reference="INV-77", asset="USD")],
                            [expect(reference="INV-77")])
    assert result == ExpectedResult(unmatched_credits=("C1",), open=("E1",))


def test_two_fitting_credits_or_two_fitting_announcements_are_ambiguous() -> None:
    two_credits = match_expected([credit("C1"), credit("C2", 50_01)], [expect()])
    assert two_credits == ExpectedResult(ambiguous=(("E1", ("C1", "C2")),),
                                         unmatched_credits=("C1", "C2"))
    two_announcements = match_expected([credit("C1")], [expect("E1"), expect("E2")])
    assert two_announcements == ExpectedResult(
        ambiguous=(("E1", ("C1",)), ("E2", ("C1",))), unmatched_credits=("C1",))


def test_the_reference_rule_goes_first_and_the_amount_rule_takes_what_is_left() -> None:
    # Both credits fit both announcements by amount; C2 carries E2's reference, so E1 has
    # one credit left.
    result = match_expected([credit("C1"), credit("C2", reference="INV-2")],
                            [expect("E1"), expect("E2", reference="INV-2")])
    assert result == ExpectedResult((ExpectedMatch("E1", "C1", MatchRule.AMOUNT),
                                     ExpectedMatch("E2", "C2", MatchRule.REFERENCE)))


# --- refusals ------------------------------------------------------------------------------


@pytest.mark.parametrize(("low", "high", "until_us"), [
    (0, 10, DAY), (-5, 10, DAY), (11, 10, DAY), (1, 10, DAY - 1)])
def test_an_expected_payment_that_could_never_match_is_refused(
        low: int, high: int, until_us: int) -> None:
    with pytest.raises(ValueError, match="expected payment E1"):
        ExpectedPayment("E1", "EUR", low, high, DAY, until_us)


def test_duplicate_ids_are_refused() -> None:
    with pytest.raises(ValueError, match="duplicate credit ids: \\['C1'\\]"):
        match_expected([credit("C1"), credit("C1")], [])
    with pytest.raises(ValueError, match="duplicate expected payment ids"):
        match_expected([], [expect("E1"), expect("E1")])


# --- properties ----------------------------------------------------------------------------

REFERENCES = ("INV-1", "inv 1", "INV-12", "paid INV-1 thanks", "AB", "ab x", "#7701",
              "x #7701")
NAMES = ("Globex", "GLOBEX Corporation", "Initech", "Acme GmbH")


@st.composite
def announcements_and_credits(draw: st.DrawFn) -> tuple[list[Credit], list[ExpectedPayment]]:
    amount = st.sampled_from((10, 20, 30, 50)) | st.integers(1, 60)
    at_us = st.integers(0, 6).map(lambda days: DAY + days * DAY_US)
    asset = st.sampled_from(("EUR", "EUR", "USD"))
    maybe_reference = st.none() | st.sampled_from(REFERENCES)
    maybe_name = st.none() | st.sampled_from(NAMES)
    expected = []
    for k in range(draw(st.integers(0, 6))):
        low = draw(amount)
        start = draw(at_us)
        expected.append(ExpectedPayment(
            f"E{k}", draw(asset), low, low + draw(st.sampled_from((0, 0, 5, 20))), start,
            start + draw(st.integers(0, 3)) * DAY_US, draw(maybe_reference), draw(maybe_name)))
    credits = []
    for k in range(draw(st.integers(0, 8))):
        if draw(st.booleans()) and expected:  # half the credits answer an announcement
            e = draw(st.sampled_from(expected))
            # its reference as banks pass it on: in a sentence, glued to more, re-cased
            said = e.reference or ""
            told = st.sampled_from((e.reference, None, f"paid {said} thanks", f"{said}2",
                                    f"x{said}", said.upper().replace("-", " - ")))
            credits.append(Credit(
                f"C{k}", draw(st.integers(e.amount_min_minor - 1, e.amount_max_minor + 1)),
                e.asset, draw(st.integers(e.from_us - 1, e.until_us + 1)),
                draw(told | maybe_reference),
                draw(st.sampled_from((e.counterparty, None)) | maybe_name)))
        else:
            credits.append(Credit(f"C{k}", draw(amount), draw(asset), draw(at_us),
                                  draw(maybe_reference), draw(maybe_name)))
    return credits, expected


def reference_allows(e: ExpectedPayment, c: Credit) -> bool:
    if e.reference is None or c.reference is None or c.asset != e.asset \
            or not e.amount_min_minor <= c.amount_minor <= e.amount_max_minor:
        return False
    wanted, text = e.reference.casefold(), c.reference.casefold()
    if "".join(wanted.split()) == "".join(text.split()):
        return True
    # the wanted text between two non-alphanumeric characters (or the ends)
    padded, needle = f" {' '.join(text.split())} ", " ".join(wanted.split())
    return len("".join(wanted.split())) >= 4 and any(
        padded.startswith(needle, at) and not padded[at - 1].isalnum()
        and not padded[at + len(needle)].isalnum() for at in range(1, len(padded) - 1))


def amount_allows(e: ExpectedPayment, c: Credit) -> bool:
    from rapidfuzz import fuzz, utils

    alike = e.counterparty is None or c.counterparty is None or fuzz.token_set_ratio(
        e.counterparty, c.counterparty, processor=utils.default_process) >= 85
    return (c.asset == e.asset and e.amount_min_minor <= c.amount_minor <= e.amount_max_minor
            and e.from_us <= c.at_us <= e.until_us and alike)


@settings(max_examples=1_000)
@given(announcements_and_credits(), st.randoms(use_true_random=False))
def test_each_in_one_place_each_match_allowed_nothing_left_that_a_rule_would_match(
        drawn: tuple[list[Credit], list[ExpectedPayment]], shuffler: random.Random) -> None:
    credits, expected = drawn
    result = match_expected(credits, expected)

    assert Counter([m.expected_id for m in result.matched] + [e for e, _ in result.ambiguous]
                   + list(result.open)) == Counter(e.expected_id for e in expected)
    assert Counter([m.credit_id for m in result.matched]
                   + list(result.unmatched_credits)) == Counter(c.credit_id for c in credits)

    by_expected = {e.expected_id: e for e in expected}
    by_credit = {c.credit_id: c for c in credits}
    for found in result.matched:
        e, c = by_expected[found.expected_id], by_credit[found.credit_id]
        allows = reference_allows if found.rule is MatchRule.REFERENCE else amount_allows
        assert allows(e, c)
    for expected_id, candidates in result.ambiguous:
        assert candidates
        assert all(reference_allows(by_expected[expected_id], by_credit[c])
                   or amount_allows(by_expected[expected_id], by_credit[c]) for c in candidates)

    # a contested credit is left to a person: no later rule matches it elsewhere
    contested = {c for _, candidates in result.ambiguous for c in candidates}
    assert not contested & {m.credit_id for m in result.matched}
    # an open announcement and a credit nobody contested: no rule would have joined them
    for expected_id in result.open:
        for credit_id in set(result.unmatched_credits) - contested:
            e, c = by_expected[expected_id], by_credit[credit_id]
            assert not reference_allows(e, c)
            assert not amount_allows(e, c)

    shuffled_credits, shuffled_expected = credits[:], expected[:]
    shuffler.shuffle(shuffled_credits)
    shuffler.shuffle(shuffled_expected)
    assert match_expected(shuffled_credits, shuffled_expected) == result
