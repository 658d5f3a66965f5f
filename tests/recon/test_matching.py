"""Matching statement lines against book items: each rule and shape on a worked example (which
line matches which item, and why), the tolerances at their exact bounds, and properties over
random statements and books: every line and item in exactly one place, every match within the
tolerance, the same answer whatever the inputs' order, and the same answer as a brute-force
reading of the rules (tests/recon/test_matching.py's `rules_by_brute_force`)."""

from __future__ import annotations

import random
from collections import Counter, deque
from typing import cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fundpool.recon.matching import CANDIDATES_MAX, match
from fundpool.recon.model import (
    DAY_US,
    Ambiguous,
    BookItem,
    Break,
    BreakReason,
    ItemKind,
    LineKind,
    LineStatus,
    Match,
    MatchResult,
    MatchRule,
    Shape,
    Side,
    StatementLine,
    Tolerance,
)

DAY = 1_796_601_600_000_000  # 2026-12-07T00:00:00Z
EXACT = Tolerance(amount_minor=0, days=2)


def line(line_id: str, amount_minor: int, *, at_us: int = DAY, asset: str = "EUR",
         **fields: object) -> StatementLine:
    return StatementLine(line_id, amount_minor, asset, at_us, at_us,
                         **fields)  # type: ignore[arg-type]


def item(item_id: str, amount_minor: int, *, at_us: int = DAY, asset: str = "EUR",
         kind: ItemKind = ItemKind.PAYOUT, **fields: object) -> BookItem:
    payment_id = cast("str | None", fields.pop("payment_id", item_id.split(":")[0]))
    return BookItem(item_id, amount_minor, asset, at_us, kind, payment_id=payment_id,
                    **fields)  # type: ignore[arg-type]


def run(lines: list[StatementLine], items: list[BookItem],
        tolerance: Tolerance = EXACT) -> MatchResult:
    return match(lines, items, tolerance, now_us=DAY + 3 * DAY_US)


# --- by reference --------------------------------------------------------------------------


def test_a_payout_line_matches_its_settlement_by_end_to_end_id_and_not_its_fee() -> None:
    result = run([line("S:1", -30_00, end_to_end_id="p1")],
                 [item("p1:out", -30_00), item("p1:fee", -20, kind=ItemKind.FEE)])
    assert result.matches == (Match(("S:1",), ("p1:out",), MatchRule.END_TO_END, 0),)
    assert result.matches[0].shape is Shape.ONE_TO_ONE
    # the fee waits for the bank's charge: nothing on this statement is one
    assert result.breaks == (Break(Side.BOOKS, "p1:fee", BreakReason.NOT_AT_BANK, -20, DAY),)


def test_a_batch_booked_as_one_line_and_its_charge_are_two_one_to_many_matches() -> None:
    payouts = [item(f"{p}:out", amount, batch_ref="B1")
               for p, amount in (("a", -10_00), ("b", -20_00), ("c", -30_00))]
    fees = [item(f"{p}:fee", -20, kind=ItemKind.FEE, batch_ref="B1") for p in "abc"]
    result = run([line("S:1", -60_00, batch_ref="B1"),
                  line("S:2", -60, batch_ref="B1", kind=LineKind.CHARGE)], payouts + fees)
    assert result.matches == (
        Match(("S:1",), ("a:out", "b:out", "c:out"), MatchRule.BATCH, 0),
        Match(("S:2",), ("a:fee", "b:fee", "c:fee"), MatchRule.BATCH, 0),
    )
    assert {m.shape for m in result.matches} == {Shape.ONE_TO_MANY}
    assert (result.ambiguous, result.breaks) == ((), ())
    assert (result.counts["shape_1:N"], result.counts["matched_items"]) == (2, 6)


def test_a_batched_entry_listing_its_transactions_matches_by_its_parts() -> None:
    # The bank's batch reference is not the rail's: the parts alone say what it holds.
    result = run([line("S:1", -30_00, batch_ref="BANK-BATCH-9", parts=("a", "b", "a"))],
                 [item("a:out", -10_00, batch_ref="B1"), item("b:out", -20_00, batch_ref="B1"),
                  item("c:out", -5_00, batch_ref="B1")])
    assert result.matches == (Match(("S:1",), ("a:out", "b:out"), MatchRule.BATCH, 0),)
    assert result.breaks == (Break(Side.BOOKS, "c:out", BreakReason.NOT_AT_BANK, -5_00, DAY),)


def test_a_payment_paid_in_two_parts_is_many_to_one() -> None:
    result = run([line("S:1", 60_00, end_to_end_id="d1"),
                  line("S:2", 40_00, end_to_end_id="d1", at_us=DAY + DAY_US)],
                 [item("d1:in", 100_00, kind=ItemKind.DEPOSIT)])
    assert result.matches == (Match(("S:1", "S:2"), ("d1:in",), MatchRule.END_TO_END, 0),)
    assert result.matches[0].shape is Shape.MANY_TO_ONE


def test_a_batch_the_bank_split_over_two_lines_is_many_to_many() -> None:
    result = run([line("S:1", -25_00, batch_ref="B1"), line("S:2", -35_00, batch_ref="B1")],
                 [item(f"{p}:out", amount, batch_ref="B1")
                  for p, amount in (("a", -10_00), ("b", -20_00), ("c", -30_00))])
    (found,) = result.matches
    assert (found.lines, found.items, found.rule, found.shape) == (
        ("S:1", "S:2"), ("a:out", "b:out", "c:out"), MatchRule.BATCH, Shape.MANY_TO_MANY)


def test_a_charge_naming_a_payment_matches_that_payments_fee() -> None:
    result = run([line("S:1", -30_00, end_to_end_id="p1"),
                  line("S:2", -20, end_to_end_id="p1", kind=LineKind.CHARGE)],
                 [item("p1:out", -30_00), item("p1:fee", -20, kind=ItemKind.FEE)])
    assert result.matches == (
        Match(("S:1",), ("p1:out",), MatchRule.END_TO_END, 0),
        Match(("S:2",), ("p1:fee",), MatchRule.END_TO_END, 0),
    )


def test_a_payout_and_its_return_each_match_their_own_line() -> None:
    # Both items carry the payment's id; the sign keeps the payout's line off the return.
    result = run([line("S:1", -30_00, end_to_end_id="p1"),
                  line("S:2", 30_00, end_to_end_id="p1", kind=LineKind.RETURN, reason="AC04")],
                 [item("p1:out", -30_00), item("p1:return", 30_00, kind=ItemKind.RETURN)])
    assert result.matches == (
        Match(("S:1",), ("p1:out",), MatchRule.END_TO_END, 0),
        Match(("S:2",), ("p1:return",), MatchRule.END_TO_END, 0),
    )


def test_a_remittance_text_names_a_deposit_by_its_reference_whatever_its_case_and_spaces(
        ) -> None:
    result = run([line("S:1", 50_00, reference=" inv 77 ", counterparty="Globex")],
                 [item("d1:in", 50_00, kind=ItemKind.DEPOSIT, reference="INV77")])
    assert result.matches == (Match(("S:1",), ("d1:in",), MatchRule.REFERENCE, 0),)


def test_a_remittance_text_several_payments_share_names_none_of_them() -> None:
    # "salary" is every payroll payout's reference: the amount and date decide, not the text.
    result = run([line("S:1", -30_00, reference="SALARY")],
                 [item("p1:out", -30_00, reference="salary"),
                  item("p2:out", -45_00, reference="salary")])
    assert result.matches == (Match(("S:1",), ("p1:out",), MatchRule.AMOUNT, 0),)
    assert result.breaks == (Break(Side.BOOKS, "p2:out", BreakReason.NOT_AT_BANK, -45_00, DAY),)


def test_the_strongest_reference_wins_and_weaker_ones_are_not_followed() -> None:
    # The line names its payment and, in its text, another payment's reference: following both
    # would join two payments into one component whose amounts never agree.
    result = run([line("S:1", -30_00, end_to_end_id="p1", batch_ref="B1", reference="INV-2")],
                 [item("p1:out", -30_00, batch_ref="B1"), item("p2:out", -7_00, batch_ref="B1",
                                                               reference="INV-2")])
    assert result.matches == (Match(("S:1",), ("p1:out",), MatchRule.END_TO_END, 0),)
    assert [b.id for b in result.breaks] == ["p2:out"]


def test_amounts_that_differ_behind_a_reference_are_breaks_never_a_match() -> None:
    # An item of exactly the line's amount, without a reference, is there: still no match.
    result = run([line("S:1", -30_01, end_to_end_id="p1")],
                 [item("p1:out", -30_00), item("x:out", -30_01, payment_id=None)])
    assert result.matches == ()
    assert result.breaks == (
        Break(Side.BOOKS, "p1:out", BreakReason.AMOUNT_DIFFERS, -30_00, DAY, ("S:1",)),
        Break(Side.BOOKS, "x:out", BreakReason.NOT_AT_BANK, -30_01, DAY),
        Break(Side.STATEMENT, "S:1", BreakReason.AMOUNT_DIFFERS, -30_01, DAY, ("p1:out",)),
    )


def test_a_component_that_does_not_add_up_breaks_every_member_with_the_other_side() -> None:
    result = run([line("S:1", 60_00, end_to_end_id="d1"),
                  line("S:2", 60_00, end_to_end_id="d1")],
                 [item("d1:in", 100_00, kind=ItemKind.DEPOSIT)])
    assert {(b.side, b.id, b.reason, b.related) for b in result.breaks} == {
        (Side.STATEMENT, "S:1", BreakReason.AMOUNT_DIFFERS, ("d1:in",)),
        (Side.STATEMENT, "S:2", BreakReason.AMOUNT_DIFFERS, ("d1:in",)),
        (Side.BOOKS, "d1:in", BreakReason.AMOUNT_DIFFERS, ("S:1", "S:2")),
    }


def test_a_pending_line_matches_as_a_booked_one_does() -> None:
    result = run([line("S:1", -30_00, end_to_end_id="p1", status=LineStatus.PENDING)],
                 [item("p1:out", -30_00)])
    assert result.matches == (Match(("S:1",), ("p1:out",), MatchRule.END_TO_END, 0),)


# --- by amount and date --------------------------------------------------------------------


def test_one_candidate_each_way_is_an_amount_match() -> None:
    result = run([line("S:1", -12_34, at_us=DAY + DAY_US)],
                 [item("p1:out", -12_34), item("p2:out", -12_35)])
    assert result.matches == (Match(("S:1",), ("p1:out",), MatchRule.AMOUNT, 0),)
    assert [b.id for b in result.breaks] == ["p2:out"]


def test_equal_amounts_on_the_same_day_are_ambiguous_on_both_sides_never_guessed() -> None:
    result = run([line("S:1", -5_00), line("S:2", -5_00)],
                 [item("p1:out", -5_00), item("p2:out", -5_00)])
    assert result.matches == ()
    assert result.ambiguous == (
        Ambiguous(Side.BOOKS, "p1:out", ("S:1", "S:2")),
        Ambiguous(Side.BOOKS, "p2:out", ("S:1", "S:2")),
        Ambiguous(Side.STATEMENT, "S:1", ("p1:out", "p2:out")),
        Ambiguous(Side.STATEMENT, "S:2", ("p1:out", "p2:out")),
    )


def test_a_line_whose_only_candidate_has_another_is_ambiguous_too() -> None:
    # S:2's only candidate is p1, but p1 could also be S:1: neither is guessed.
    result = run([line("S:1", -5_00), line("S:2", -5_00, at_us=DAY + 3 * DAY_US)],
                 [item("p1:out", -5_00, at_us=DAY + DAY_US), item("p2:out", -5_00)])
    assert result.matches == ()
    assert {(a.id, a.candidates) for a in result.ambiguous} == {
        ("S:1", ("p1:out", "p2:out")), ("S:2", ("p1:out",)),
        ("p1:out", ("S:1", "S:2")), ("p2:out", ("S:1",))}


def test_an_ambiguous_line_lists_a_bounded_number_of_candidates() -> None:
    items = [item(f"p{k}:out", -5_00) for k in range(CANDIDATES_MAX + 5)]
    result = run([line("S:1", -5_00)], items)
    (listed,) = [a for a in result.ambiguous if a.side is Side.STATEMENT]
    assert len(listed.candidates) == CANDIDATES_MAX
    assert result.counts["ambiguous_items"] == CANDIDATES_MAX + 5


@pytest.mark.parametrize(("amount_minor", "at_us", "matched"), [
    (-105, DAY + 2 * DAY_US, True),  # both exactly at the bound
    (-95, DAY - 2 * DAY_US, True),
    (-106, DAY, False),  # one minor unit past the amount
    (-94, DAY, False),
    (-100, DAY + 2 * DAY_US + 1, False),  # one microsecond past the window
    (-100, DAY - 2 * DAY_US - 1, False),
])
def test_the_amount_and_date_tolerances_hold_at_their_exact_bounds(
        amount_minor: int, at_us: int, matched: bool) -> None:
    result = run([line("S:1", -100)], [item("p1:out", amount_minor, at_us=at_us)],
                 Tolerance(amount_minor=5, days=2))
    assert bool(result.matches) is matched
    if matched:
        assert result.matches[0].difference_minor == -100 - amount_minor


@pytest.mark.parametrize(("amount_minor", "matched"), [(-105, True), (-106, False)])
def test_a_reference_match_holds_within_the_amount_tolerance_only(
        amount_minor: int, matched: bool) -> None:
    result = run([line("S:1", -100, end_to_end_id="p1")], [item("p1:out", amount_minor)],
                 Tolerance(amount_minor=5, days=0))
    assert bool(result.matches) is matched
    assert {b.reason for b in result.breaks} == (set() if matched else
                                                {BreakReason.AMOUNT_DIFFERS})


def test_different_assets_never_match() -> None:
    by_reference = run([line("S:1", -30_00, end_to_end_id="p1", asset="EUR")],
                       [item("p1:out", -30_00, asset="USD")])
    assert by_reference.matches == ()
    assert {b.reason for b in by_reference.breaks} == {BreakReason.AMOUNT_DIFFERS}
    by_amount = run([line("S:1", -30_00, asset="EUR")], [item("p1:out", -30_00, asset="USD")],
                    Tolerance(amount_minor=100, days=5))
    assert by_amount.matches == ()
    assert {b.reason for b in by_amount.breaks} == {BreakReason.NOT_IN_BOOKS,
                                                   BreakReason.NOT_AT_BANK}


# --- the answer ----------------------------------------------------------------------------


def test_what_nothing_explains_is_a_break_aged_from_its_own_date() -> None:
    result = run([line("S:1", -2_50, kind=LineKind.CHARGE, reference="ACCOUNT FEE",
                       at_us=DAY + DAY_US)],
                 [item("p1:out", -9_00, at_us=DAY + 7)])
    assert result.breaks == (
        Break(Side.BOOKS, "p1:out", BreakReason.NOT_AT_BANK, -9_00, DAY + 7),
        Break(Side.STATEMENT, "S:1", BreakReason.NOT_IN_BOOKS, -2_50, DAY + DAY_US),
    )
    assert (result.counts["reason_not_in_books"], result.counts["reason_not_at_bank"]) == (1, 1)


def test_duplicate_ids_and_a_negative_tolerance_are_refused() -> None:
    with pytest.raises(ValueError, match="duplicate line ids: \\['S:1'\\]"):
        run([line("S:1", 1), line("S:1", 2)], [])
    with pytest.raises(ValueError, match="duplicate item ids"):
        run([], [item("p:out", 1), item("p:out", 1)])
    with pytest.raises(ValueError, match="never negative"):
        run([], [], Tolerance(amount_minor=-1))


def test_nothing_in_nothing_out() -> None:
    result = run([], [])
    assert (result.matches, result.ambiguous, result.breaks) == ((), (), ())
    assert set(result.counts.values()) == {0}


# --- properties ----------------------------------------------------------------------------

PAYMENTS = ("p1", "p2", "p3", "p4", "p5", "p6", "p7", "p8", "P1")  # P1: p1 by case
BATCHES = ("b1", "b2")
REFERENCES = ("INV-1", "inv 1", "salary", "p2", "x")
AMOUNTS = (-500, -300, -200, -20, -1, 0, 1, 20, 200, 300, 500)


def maybe(values: tuple[str, ...]) -> st.SearchStrategy[str | None]:
    return st.none() | st.sampled_from(values)


@st.composite
def statements_and_books(draw: st.DrawFn) -> tuple[list[StatementLine], list[BookItem],
                                                    Tolerance]:
    """Books drawn freely; most lines are what a bank would show of them (one to three items
    summed, sometimes split over two lines, sometimes off by a little) with one of the
    references those items carry, or none; the rest of the lines are drawn freely."""
    amount = st.sampled_from(AMOUNTS) | st.integers(-600, 600)
    at_us = st.integers(0, 8).map(lambda half_days: DAY + half_days * DAY_US // 2)
    asset = st.sampled_from(("EUR", "EUR", "EUR", "USD"))
    items: list[BookItem] = []
    # the books in groups of one to three items of a kind, most in a batch, as waves settle
    for _ in range(draw(st.integers(0, 5))):
        kind = draw(st.sampled_from(ItemKind))
        batch_ref, group_asset = draw(maybe(BATCHES)), draw(asset)
        for _ in range(draw(st.integers(1, 3))):
            # mostly signed as the books sign them (a payout or a fee leaves), sometimes not
            sign = -1 if kind in (ItemKind.PAYOUT, ItemKind.FEE) else 1
            items.append(BookItem(
                f"i{len(items)}", sign * abs(draw(amount)) * draw(st.sampled_from((1, 1, 1, -1))),
                group_asset, draw(at_us), kind, payment_id=draw(maybe(PAYMENTS)),
                batch_ref=batch_ref, reference=draw(maybe(REFERENCES))))
    lines: list[StatementLine] = []
    for _ in range(draw(st.integers(0, 10))):
        number = len(lines)
        if not items or not draw(st.integers(0, 3)):  # one line in four: drawn freely
            lines.append(StatementLine(
                f"S:{number}", draw(amount), draw(asset), 0, draw(at_us),
                status=draw(st.sampled_from(LineStatus)), kind=draw(st.sampled_from(LineKind)),
                end_to_end_id=draw(maybe(PAYMENTS)), batch_ref=draw(maybe(BATCHES)),
                reference=draw(maybe(REFERENCES)),
                parts=tuple(draw(st.lists(st.sampled_from(PAYMENTS), max_size=3)))))
            continue
        first = draw(st.sampled_from(items))
        alike = [i for i in items if (i.kind is ItemKind.FEE) == (first.kind is ItemKind.FEE)
                 and (i.amount_minor > 0) == (first.amount_minor > 0)]
        names = draw(st.sampled_from(("e2e", "parts", "batch", "reference", "none")))
        # the line shows what its reference names, as a bank shows a whole batch
        if names == "e2e" and first.payment_id is not None:
            shown = [i for i in alike if i.payment_id == first.payment_id]
        elif names == "batch" and first.batch_ref is not None:
            shown = [i for i in alike if i.batch_ref == first.batch_ref]
        elif names == "parts":
            named = {i.payment_id for i in draw(st.lists(st.sampled_from(alike), min_size=1,
                                                         max_size=3))} - {None}
            shown = [i for i in alike if i.payment_id in named]
        else:
            shown = [first]
        total = sum(i.amount_minor for i in shown) + draw(st.sampled_from((0,) * 5 + (1, -100)))
        split = draw(st.sampled_from((total, total, total // 2)))
        fields = {
            "kind": LineKind.CHARGE if first.kind is ItemKind.FEE else LineKind.TRANSFER,
            "status": draw(st.sampled_from(LineStatus)),
            "end_to_end_id": first.payment_id if names == "e2e" else None,
            "parts": tuple(sorted({i.payment_id or "" for i in shown})) if names == "parts"
            else (),
            "batch_ref": first.batch_ref if names == "batch" else None,
            "reference": (first.reference or first.payment_id) if names == "reference" else None,
        }
        at = first.at_us + draw(st.sampled_from((0, 0, DAY_US, -3 * DAY_US)))
        for part_number, part in enumerate((split, total - split) if split != total
                                           else (total,)):
            lines.append(StatementLine(f"S:{number}.{part_number}", part, first.asset, 0, at,
                                       **fields))
    tolerance = Tolerance(draw(st.sampled_from((0, 1, 100))), draw(st.integers(0, 3)))
    return lines, items, tolerance


def rules_by_brute_force(lines: list[StatementLine], items: list[BookItem],
                         tolerance: Tolerance) -> MatchResult:
    """The module docstring's rules read as plainly as they are written, every pair tried:
    the answer `match` must give, without its indexes, fast paths or union-find."""

    def key(text: str) -> str:
        return "".join(text.split()).casefold()

    def same_class(line: StatementLine, item: BookItem) -> bool:
        return ((line.kind is LineKind.CHARGE) == (item.kind is ItemKind.FEE)
                and (line.amount_minor > 0) == (item.amount_minor > 0))

    links: dict[str, tuple[int, list[BookItem]]] = {}
    for line in lines:
        mine = [i for i in items if same_class(line, i)]
        named = [i for i in mine if line.reference is not None
                 and key(line.reference) in {key(t) for t in (i.payment_id, i.reference) if t}]
        if len({i.payment_id or i.item_id for i in named}) > 1:
            named = []
        for strength, found in (
                (3, [i for i in mine if i.payment_id is not None
                     and i.payment_id == line.end_to_end_id]),
                (2, [i for i in mine if i.payment_id is not None and i.payment_id in line.parts]),
                (2, [i for i in mine if i.batch_ref is not None
                     and i.batch_ref == line.batch_ref]),
                (1, named)):
            if found:
                links[line.line_id] = (strength, found)
                break

    rule = {3: MatchRule.END_TO_END, 2: MatchRule.BATCH, 1: MatchRule.REFERENCE}
    line_by_id = {x.line_id: x for x in lines}
    linked_items = {i.item_id for _, found in links.values() for i in found}
    matches: list[Match] = []
    breaks: list[Break] = []
    done: set[str] = set()
    for start in links:
        if start in done:
            continue
        # breadth-first over the graph from this line
        in_lines, in_items, queue = {start}, set(), deque([start])
        while queue:
            at = queue.popleft()
            for i in links[at][1]:
                in_items.add(i.item_id)
            for other, (_, found) in links.items():
                if other not in in_lines and {i.item_id for i in found} & in_items:
                    in_lines.add(other)
                    queue.append(other)
        done |= in_lines
        component_lines = [line_by_id[x] for x in sorted(in_lines)]
        component_items = [i for i in items if i.item_id in in_items]
        difference = (sum(x.amount_minor for x in component_lines)
                      - sum(i.amount_minor for i in component_items))
        assets = {x.asset for x in component_lines} | {i.asset for i in component_items}
        if len(assets) == 1 and abs(difference) <= tolerance.amount_minor:
            matches.append(Match(tuple(sorted(in_lines)), tuple(sorted(in_items)),
                                 rule[max(links[x][0] for x in in_lines)], difference))
        else:
            breaks += [Break(Side.STATEMENT, x.line_id, BreakReason.AMOUNT_DIFFERS,
                             x.amount_minor, x.value_at_us, tuple(sorted(in_items)))
                       for x in component_lines]
            breaks += [Break(Side.BOOKS, i.item_id, BreakReason.AMOUNT_DIFFERS, i.amount_minor,
                             i.at_us, tuple(sorted(in_lines))) for i in component_items]

    left_lines = [x for x in lines if x.line_id not in links]
    left_items = [i for i in items if i.item_id not in linked_items]

    def candidate(x: StatementLine, i: BookItem) -> bool:
        return (x.asset == i.asset and abs(x.amount_minor - i.amount_minor)
                <= tolerance.amount_minor and abs(x.value_at_us - i.at_us) <= tolerance.window_us)

    of_line = {x.line_id: sorted(i.item_id for i in left_items if candidate(x, i))
               for x in left_lines}
    of_item = {i.item_id: sorted(x.line_id for x in left_lines if candidate(x, i))
               for i in left_items}
    item_by_id = {i.item_id: i for i in items}
    ambiguous: list[Ambiguous] = []
    for x in left_lines:
        item_ids = of_line[x.line_id]
        if not item_ids:
            breaks.append(Break(Side.STATEMENT, x.line_id, BreakReason.NOT_IN_BOOKS,
                                x.amount_minor, x.value_at_us))
        elif len(item_ids) == 1 and len(of_item[item_ids[0]]) == 1:
            matches.append(Match((x.line_id,), (item_ids[0],), MatchRule.AMOUNT,
                                 x.amount_minor - item_by_id[item_ids[0]].amount_minor))
        else:
            ambiguous.append(Ambiguous(Side.STATEMENT, x.line_id, tuple(item_ids)))
    for i in left_items:
        line_ids = of_item[i.item_id]
        if not line_ids:
            breaks.append(Break(Side.BOOKS, i.item_id, BreakReason.NOT_AT_BANK, i.amount_minor,
                                i.at_us))
        elif len(line_ids) > 1 or len(of_line[line_ids[0]]) > 1:
            ambiguous.append(Ambiguous(Side.BOOKS, i.item_id, tuple(line_ids)))
    return MatchResult(tuple(sorted(matches, key=lambda m: m.lines[0])),
                       tuple(sorted(ambiguous, key=lambda a: (a.side, a.id))),
                       tuple(sorted(breaks, key=lambda b: (b.side, b.id))))


@settings(max_examples=1_000)
@given(statements_and_books(), st.randoms(use_true_random=False))
def test_every_line_and_item_ends_in_one_place_and_the_rules_decide_it(
        drawn: tuple[list[StatementLine], list[BookItem], Tolerance],
        shuffler: random.Random) -> None:
    lines, items, tolerance = drawn
    result = run(lines, items, tolerance)

    placed = Counter([(Side.STATEMENT, x) for m in result.matches for x in m.lines]
                     + [(Side.BOOKS, x) for m in result.matches for x in m.items]
                     + [(a.side, a.id) for a in result.ambiguous]
                     + [(b.side, b.id) for b in result.breaks])
    assert placed == Counter([(Side.STATEMENT, x.line_id) for x in lines]
                             + [(Side.BOOKS, i.item_id) for i in items])

    line_by_id = {x.line_id: x for x in lines}
    item_by_id = {i.item_id: i for i in items}
    for found in result.matches:
        difference = (sum(line_by_id[x].amount_minor for x in found.lines)
                      - sum(item_by_id[x].amount_minor for x in found.items))
        assert difference == found.difference_minor
        assert abs(difference) <= tolerance.amount_minor
        assert len({line_by_id[x].asset for x in found.lines}
                   | {item_by_id[x].asset for x in found.items}) == 1
    assert result.counts["matched_lines"] + result.counts["ambiguous_lines"] + sum(
        b.side is Side.STATEMENT for b in result.breaks) == len(lines)

    # the brute-force reading of the rules gives the same answer, to the tuple
    expected = rules_by_brute_force(lines, items, tolerance)
    assert (result.matches, result.ambiguous, result.breaks) == (
        expected.matches, expected.ambiguous, expected.breaks)

    # the inputs' order changes nothing
    shuffled_lines, shuffled_items = lines[:], items[:]
    shuffler.shuffle(shuffled_lines)
    shuffler.shuffle(shuffled_items)
    assert run(shuffled_lines, shuffled_items, tolerance) == result
