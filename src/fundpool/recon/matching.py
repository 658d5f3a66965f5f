"""Matching a channel's statement lines against its book items (ADR 0022): a pure function over
values, two passes, then the rest.

1. **By reference.** A line is linked to book items by the strongest reference it carries that
   the books know, in this order:

   - its end-to-end id: the items whose `payment_id` is that id (rule END_TO_END);
   - its `parts` (a batched entry's end-to-end ids): those payments' items, or else its
     `batch_ref`: every item of that batch (rule BATCH);
   - its remittance `reference`: the items whose `payment_id` or `reference` is that text,
     compared without case and whitespace (banks re-case and re-wrap it), and only when the
     text names one payment: a text several payments share ("salary") identifies none, and
     the line is left to the amount pass (rule REFERENCE).

   A weaker reference is not followed once a stronger one found items: a line that names its
   own transaction says nothing more by naming the batch it went in, and following both would
   join unrelated payments into one component.

   A link joins only a line and an item of the same *class*: a CHARGE line and FEE items, any
   other line and the other items, each with the same sign. The books keep a payment's fee
   (`<id>:fee`) and its return (`<id>:return`) under the payment's id beside its settlement;
   without the class a payout's line would pull in its fee and its return, and their sum
   would never agree. So a payout's line matches its settlement, the bank's charge for the
   batch (or for that payment, by its end-to-end id) matches the fee items, and a return line
   matches the return item.

   The connected components of that bipartite graph give every shape: 1:1, 1:N (a batch booked
   as one line), N:1 (a payment paid in parts), N:M (a batch booked as several lines). A
   component whose lines and items are of one asset and whose sums differ by at most
   `tolerance.amount_minor` is one Match, whose rule is the strongest link in it. Any other
   component is never a match: each of its lines and items is a Break `amount_differs` (an
   amount in another asset is another amount), with its own amount and the other side's ids
   as `related`.

2. **By amount and date**, among what no reference linked: a line's candidates are the items
   of the same asset whose amount is within `tolerance.amount_minor` and whose time is within
   `tolerance.window_us` of the line's value date (both bounds inclusive), and the other way
   round. A line and an item that are each other's only candidate are a Match AMOUNT 1:1; any
   line or item with more than one candidate, or whose only candidate has more than one, is
   Ambiguous on its side, listing its candidates. Never a guess.

3. **The rest are breaks**: a line is `not_in_books`, an item `not_at_bank`, aged from the
   line's value date or the item's time.

Pending lines (announced, not booked) are matched exactly as booked ones, and a match that
includes a pending line is a match. A pending line and the booked line of the same movement
given to one run both link to its items: the component's sum is then twice the books' and it
becomes `amount_differs` breaks, never a double match.

Every line and item given ends in exactly one of the matches, the ambiguous reports or the
breaks; `match` checks it (and each match's difference) before it answers. The answer is
deterministic and does not depend on the order of the inputs: every tuple in it is sorted.

Inside, lines and items are indices into the inputs and plain lists, tuples and dicts: one
run takes a million of each, and a value per element in the hot loops would cost more than the
matching itself. Values are made once, at the edge, for the answer.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

from fundpool.core.errors import invariant
from fundpool.recon.model import (
    Ambiguous,
    BookItem,
    Break,
    BreakReason,
    ItemKind,
    LineKind,
    Match,
    MatchResult,
    MatchRule,
    Shape,
    Side,
    StatementLine,
    Tolerance,
)

# An ambiguous line or item lists at most this many candidates: a day of identical amounts
# (a thousand refunds of 5.00) would otherwise list a million pairs. Past the bound, the
# candidates listed are those of the nearest amounts, earliest first; the decision (one
# candidate or several) always counts them all.
CANDIDATES_MAX = 100
# Duplicate ids named in the refusal: enough to find them, bounded however many there are.
DUPLICATES_SHOWN_MAX = 10

# Link strengths: a component's rule is its strongest link's.
_REFERENCE, _BATCH, _END_TO_END = 1, 2, 3
_RULE = {_END_TO_END: MatchRule.END_TO_END, _BATCH: MatchRule.BATCH,
         _REFERENCE: MatchRule.REFERENCE}
_CLASSES = 4  # (charge or fee: 2) + (credit: 1)

_Value = TypeVar("_Value")


def reference_key(text: str) -> str:
    """A remittance text as compared: banks re-case it (MT940's character set) and re-wrap it
    (a reference cut over two :86: lines), so neither case nor whitespace tells two apart."""
    return "".join(text.split()).casefold()


def match(lines: Sequence[StatementLine], items: Sequence[BookItem], tolerance: Tolerance, *,
          now_us: int) -> MatchResult:
    """Match `lines` against `items` (see the module's docstring for the rules). Ids must be
    unique on each side (ValueError otherwise). `now_us` is not read: matching depends on the
    inputs alone; the service passes its clock's time for the run it records."""
    del now_us
    line_by_id = _by_id("line", [line.line_id for line in lines], lines)
    item_by_id = _by_id("item", [item.item_id for item in items], items)
    if tolerance.amount_minor < 0 or tolerance.days < 0:
        raise ValueError(f"a matching tolerance is never negative: {tolerance}")

    targets, strengths = _reference_links(lines, items)
    matches, breaks, linked_items = _components(lines, items, targets, strengths, tolerance)

    left_lines = [i for i, found in enumerate(targets) if found is None]
    left_items = [j for j in range(len(items)) if not linked_items[j]]
    ambiguous: list[Ambiguous] = []
    _by_amount(lines, items, left_lines, left_items, tolerance, matches, ambiguous, breaks)

    matches.sort(key=lambda m: m.lines[0])  # a line is in one match at most: a total order
    ambiguous.sort(key=lambda a: (a.side, a.id))
    breaks.sort(key=lambda b: (b.side, b.id))
    _check_partition(line_by_id, item_by_id, matches, ambiguous, breaks, tolerance)
    return MatchResult(tuple(matches), tuple(ambiguous), tuple(breaks),
                       _counts(lines, items, matches, ambiguous, breaks))


# --- pass 1: the reference graph -----------------------------------------------------------


def _line_class(line: StatementLine) -> int:
    return (2 if line.kind is LineKind.CHARGE else 0) + (line.amount_minor > 0)


def _reference_links(lines: Sequence[StatementLine], items: Sequence[BookItem],
                     ) -> tuple[list[list[int] | None], list[int]]:
    """For each line, the items it links to (None: none) and the strength of that link."""
    item_classes = [(2 if item.kind is ItemKind.FEE else 0) + (item.amount_minor > 0)
                    for item in items]
    by_payment: list[dict[str, list[int]]] = [{} for _ in range(_CLASSES)]
    for j, item in enumerate(items):
        if item.payment_id is not None:
            by_class = by_payment[item_classes[j]]
            found = by_class.get(item.payment_id)
            if found is None:
                by_class[item.payment_id] = [j]
            else:
                found.append(j)

    targets: list[list[int] | None] = [None] * len(lines)
    strengths = [0] * len(lines)
    unlinked: list[int] = []
    charge = LineKind.CHARGE
    for i, line in enumerate(lines):
        # _line_class, inlined: the loop runs once per line
        payments = by_payment[(2 if line.kind is charge else 0) + (line.amount_minor > 0)]
        if line.end_to_end_id is not None:
            found = payments.get(line.end_to_end_id)
            if found is not None:
                targets[i], strengths[i] = found, _END_TO_END
                continue
        if line.parts:
            in_parts = [j for part in line.parts for j in payments.get(part, ())]
            if in_parts:
                # A bank may list a transaction twice; an item is linked once.
                targets[i], strengths[i] = list(dict.fromkeys(in_parts)), _BATCH
                continue
        if line.batch_ref is not None or line.reference is not None:
            unlinked.append(i)

    # The weaker indexes hold only what an unlinked line names: every payout carries its
    # rail's reference, and only a batched entry's line asks for it.
    batch_refs = {lines[i].batch_ref for i in unlinked} - {None}
    if batch_refs:
        by_batch = _index(items, item_classes, batch_refs, lambda item: (item.batch_ref,))
        for i in unlinked:
            line = lines[i]
            if line.batch_ref is not None:
                found = by_batch[_line_class(line)].get(line.batch_ref)
                if found is not None:
                    targets[i], strengths[i] = found, _BATCH
    keys = {i: reference_key(lines[i].reference or "") for i in unlinked
            if targets[i] is None and lines[i].reference is not None}
    if keys:
        by_reference = _index(items, item_classes, set(keys.values()), _remittance_keys)
        # A text that names several payments ("salary") identifies none: it links nothing.
        for by_key in by_reference:
            for key, found in by_key.items():
                if len({items[j].payment_id or items[j].item_id for j in found}) > 1:
                    by_key[key] = []
        for i, key in keys.items():
            found = by_reference[_line_class(lines[i])].get(key)
            if found:
                targets[i], strengths[i] = found, _REFERENCE
    return targets, strengths


def _remittance_keys(item: BookItem) -> tuple[str | None, ...]:
    """What a remittance text may name of an item: its payment's id or its reference."""
    payment_id, reference = item.payment_id, item.reference
    # reference_key, inlined: it runs for every item of the run
    return (None if payment_id is None else "".join(payment_id.split()).casefold(),
            None if reference is None else "".join(reference.split()).casefold())


def _index(items: Sequence[BookItem], item_classes: Sequence[int], wanted: set[str | None],
           keys_of: Callable[[BookItem], tuple[str | None, ...]],
           ) -> list[dict[str, list[int]]]:
    """Items by the keys `keys_of` gives them, per class, for the keys in `wanted` only."""
    index: list[dict[str, list[int]]] = [{} for _ in range(_CLASSES)]
    for j, item in enumerate(items):
        for key in keys_of(item):
            if key is not None and key in wanted:
                found = index[item_classes[j]].setdefault(key, [])
                if not found or found[-1] != j:  # its id and its reference may be one text
                    found.append(j)
    return index


def _components(lines: Sequence[StatementLine], items: Sequence[BookItem],
                targets: Sequence[list[int] | None], strengths: Sequence[int],
                tolerance: Tolerance) -> tuple[list[Match], list[Break], list[bool]]:
    """The reference graph's components as matches or amount-differs breaks; and which items
    a reference linked (the amount pass takes the others)."""
    line_count = len(lines)
    degree = [0] * len(items)
    for found in targets:
        if found is not None:
            for j in found:
                degree[j] += 1

    matches: list[Match] = []
    breaks: list[Break] = []
    spread = tolerance.amount_minor
    # Most components are one line and one item that nothing else links: no union-find.
    parent = list(range(line_count + len(items)))
    complex_lines: list[int] = []
    for i, found in enumerate(targets):
        if found is None:
            continue
        if len(found) == 1 and degree[found[0]] == 1:
            line, item = lines[i], items[found[0]]
            difference = line.amount_minor - item.amount_minor
            if line.asset == item.asset and -spread <= difference <= spread:
                matches.append(Match((line.line_id,), (item.item_id,), _RULE[strengths[i]],
                                     difference))
            else:
                _settle(lines, items, (i,), found, strengths[i], tolerance, matches, breaks)
            continue
        complex_lines.append(i)
        root_i = _find(parent, i)
        for j in found:
            root_j = _find(parent, line_count + j)
            if root_j != root_i:
                # Lines are the roots (lower index): a root always names a line to group by.
                if root_j < root_i:
                    parent[root_i], root_i = root_j, root_j
                else:
                    parent[root_j] = root_i

    component_lines: dict[int, list[int]] = {}
    component_items: dict[int, list[int]] = {}
    grouped = [False] * len(items)
    for i in complex_lines:
        component_lines.setdefault(_find(parent, i), []).append(i)
        for j in targets[i] or ():
            if not grouped[j]:
                grouped[j] = True
                component_items.setdefault(_find(parent, line_count + j), []).append(j)
    for root, in_lines in component_lines.items():
        strength = max(strengths[i] for i in in_lines)
        _settle(lines, items, in_lines, component_items[root], strength, tolerance, matches,
                breaks)
    return matches, breaks, [count > 0 for count in degree]


def _find(parent: list[int], node: int) -> int:
    while parent[node] != node:
        parent[node] = parent[parent[node]]  # path halving keeps later finds short
        node = parent[node]
    return node


def _settle(lines: Sequence[StatementLine], items: Sequence[BookItem], in_lines: Iterable[int],
            in_items: Iterable[int], strength: int, tolerance: Tolerance,
            matches: list[Match], breaks: list[Break]) -> None:
    """One component: a match when it agrees, else every member a break."""
    component_lines = [lines[i] for i in in_lines]
    component_items = [items[j] for j in in_items]
    difference = (sum(line.amount_minor for line in component_lines)
                  - sum(item.amount_minor for item in component_items))
    assets = {line.asset for line in component_lines} | {item.asset for item in
                                                         component_items}
    line_ids = tuple(sorted(line.line_id for line in component_lines))
    item_ids = tuple(sorted(item.item_id for item in component_items))
    if len(assets) == 1 and abs(difference) <= tolerance.amount_minor:
        matches.append(Match(line_ids, item_ids, _RULE[strength], difference))
        return
    # Each side shares one tuple of the other side's ids: a large batch costs one tuple, not
    # one per member.
    for line in component_lines:
        breaks.append(Break(Side.STATEMENT, line.line_id, BreakReason.AMOUNT_DIFFERS,
                            line.amount_minor, line.value_at_us, item_ids))
    for item in component_items:
        breaks.append(Break(Side.BOOKS, item.item_id, BreakReason.AMOUNT_DIFFERS,
                            item.amount_minor, item.at_us, line_ids))


# --- pass 2: amount and date ---------------------------------------------------------------


def _by_amount(lines: Sequence[StatementLine], items: Sequence[BookItem],
               left_lines: Sequence[int], left_items: Sequence[int], tolerance: Tolerance,
               matches: list[Match], ambiguous: list[Ambiguous], breaks: list[Break]) -> None:
    """What no reference linked: unique candidates both ways match, several are ambiguous,
    none is a break."""
    line_keys = [(lines[i].asset, lines[i].amount_minor, lines[i].value_at_us, lines[i].line_id)
                 for i in left_lines]
    item_keys = [(items[j].asset, items[j].amount_minor, items[j].at_us, items[j].item_id)
                 for j in left_items]
    # Each side is searched on its own: a bounded candidate list on one side must not hide a
    # candidate from the other's count.
    line_found, line_counts = _candidates(line_keys, item_keys, tolerance)
    item_found, item_counts = _candidates(item_keys, line_keys, tolerance)

    for q, (_, amount_minor, at_us, line_id) in enumerate(line_keys):
        count = line_counts[q]
        if count == 0:
            breaks.append(Break(Side.STATEMENT, line_id, BreakReason.NOT_IN_BOOKS,
                                amount_minor, at_us))
        elif count == 1 and item_counts[line_found[q][0]] == 1:
            p = line_found[q][0]
            matches.append(Match((line_id,), (item_keys[p][3],), MatchRule.AMOUNT,
                                 amount_minor - item_keys[p][1]))
        else:
            ambiguous.append(Ambiguous(Side.STATEMENT, line_id,
                                       tuple(sorted(item_keys[p][3] for p in line_found[q]))))
    for p, (_, amount_minor, at_us, item_id) in enumerate(item_keys):
        count = item_counts[p]
        if count == 0:
            breaks.append(Break(Side.BOOKS, item_id, BreakReason.NOT_AT_BANK, amount_minor,
                                at_us))
        elif count > 1 or line_counts[item_found[p][0]] > 1:
            ambiguous.append(Ambiguous(Side.BOOKS, item_id,
                                       tuple(sorted(line_keys[q][3] for q in item_found[p]))))
        # else: the line's loop matched it


def _candidates(queries: Sequence[tuple[str, int, int, str]],
                others: Sequence[tuple[str, int, int, str]], tolerance: Tolerance,
                ) -> tuple[list[list[int]], list[int]]:
    """For each query (asset, amount, time, id): the positions in `others` within the
    tolerance (at most CANDIDATES_MAX: the nearest amounts first, each amount's in time
    order), and how many there are in all."""
    spread, window = tolerance.amount_minor, tolerance.window_us
    # (asset, amount) -> times ascending and the positions in that order: a hash finds the
    # amount, a bisection the dates, so a day of equal amounts is not a scan per query.
    groups: dict[tuple[str, int], tuple[list[int], list[int]]] = {}
    for p in sorted(range(len(others)), key=others.__getitem__):
        asset, amount_minor, at_us, _ = others[p]
        group = groups.get((asset, amount_minor))
        if group is None:
            groups[(asset, amount_minor)] = ([at_us], [p])
        else:
            group[0].append(at_us)
            group[1].append(p)
    amounts: dict[str, list[int]] = {}
    if spread:
        for asset, amount_minor in groups:  # sorted already: inserted in sorted order
            amounts.setdefault(asset, []).append(amount_minor)

    found: list[list[int]] = []
    counts: list[int] = []
    for asset, amount_minor, at_us, _ in queries:
        if spread:
            near = amounts.get(asset, [])
            in_range = near[bisect_left(near, amount_minor - spread):
                            bisect_right(near, amount_minor + spread)]
            in_range.sort(key=lambda other: (abs(other - amount_minor), other))
        else:
            in_range = [amount_minor] if (asset, amount_minor) in groups else []
        listed: list[int] = []
        count = 0
        for other in in_range:
            times, positions = groups[(asset, other)]
            low = bisect_left(times, at_us - window)
            high = bisect_right(times, at_us + window)
            count += high - low
            room = CANDIDATES_MAX - len(listed)
            if room > 0:
                listed.extend(positions[low:min(high, low + room)])
        found.append(listed)
        counts.append(count)
    return found, counts


# --- the answer ----------------------------------------------------------------------------


def _by_id(side: str, ids: list[str], values: Sequence[_Value]) -> dict[str, _Value]:
    by_id = dict(zip(ids, values, strict=True))
    if len(by_id) != len(ids):
        twice = sorted(x for x, count in Counter(ids).items() if count > 1)
        raise ValueError(f"duplicate {side} ids: {twice[:DUPLICATES_SHOWN_MAX]}")
    return by_id


def _check_partition(line_by_id: dict[str, StatementLine], item_by_id: dict[str, BookItem],
                     matches: Sequence[Match], ambiguous: Sequence[Ambiguous],
                     breaks: Sequence[Break], tolerance: Tolerance) -> None:
    """Every line and every item is in exactly one place, and every match agrees, recomputed
    from the inputs: what the service stores as final is proven here, not assumed from the
    passes above."""
    spread = tolerance.amount_minor
    placed_lines: list[str] = []
    placed_items: list[str] = []
    disagreeing: list[Match] = []
    for found in matches:
        in_lines, in_items = found.lines, found.items
        placed_lines += in_lines
        placed_items += in_items
        if len(in_lines) == 1 and len(in_items) == 1:  # nearly all: no sums, no sets
            line, item = line_by_id[in_lines[0]], item_by_id[in_items[0]]
            difference = line.amount_minor - item.amount_minor
            one_asset = line.asset == item.asset
        else:
            component_lines = [line_by_id[x] for x in in_lines]
            component_items = [item_by_id[x] for x in in_items]
            difference = (sum(x.amount_minor for x in component_lines)
                          - sum(x.amount_minor for x in component_items))
            one_asset = len({x.asset for x in component_lines}
                            | {x.asset for x in component_items}) == 1
        if difference != found.difference_minor or not -spread <= difference <= spread \
                or not one_asset:
            disagreeing.append(found)
    invariant(not disagreeing, f"a match must agree within the tolerance, in one asset: "
                               f"{disagreeing[:DUPLICATES_SHOWN_MAX]}")
    for side, placed in ((Side.STATEMENT, placed_lines), (Side.BOOKS, placed_items)):
        placed += [a.id for a in ambiguous if a.side is side]
        placed += [b.id for b in breaks if b.side is side]
    invariant(len(placed_lines) == len(line_by_id) and set(placed_lines) == line_by_id.keys(),
              "every statement line must be in exactly one match, ambiguous report or break")
    invariant(len(placed_items) == len(item_by_id) and set(placed_items) == item_by_id.keys(),
              "every book item must be in exactly one match, ambiguous report or break")


def _counts(lines: Sequence[StatementLine], items: Sequence[BookItem],
            matches: Sequence[Match], ambiguous: Sequence[Ambiguous],
            breaks: Sequence[Break]) -> dict[str, int]:
    """Every key always present (zero included): a report reads them without guarding."""
    sizes = Counter((len(m.lines), len(m.items)) for m in matches)
    shapes = Counter[Shape]()
    for (in_lines, in_items), count in sizes.items():
        shapes[Shape.of(in_lines, in_items)] += count
    rules = Counter(m.rule for m in matches)
    reasons = Counter(b.reason for b in breaks)
    ambiguous_lines = sum(a.side is Side.STATEMENT for a in ambiguous)
    return {
        "lines": len(lines),
        "items": len(items),
        "matches": len(matches),
        "matched_lines": sum(n * count for (n, _), count in sizes.items()),
        "matched_items": sum(n * count for (_, n), count in sizes.items()),
        "ambiguous": len(ambiguous),
        "ambiguous_lines": ambiguous_lines,
        "ambiguous_items": len(ambiguous) - ambiguous_lines,
        "breaks": len(breaks),
        **{f"shape_{shape.value}": shapes[shape] for shape in Shape},
        **{f"rule_{rule.value}": rules[rule] for rule in MatchRule},
        **{f"reason_{reason.value}": reasons[reason] for reason in BreakReason},
    }
