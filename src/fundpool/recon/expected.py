"""Expected payments: incoming funds announced before they arrive (a customer's invoice, a
client's top-up), matched against the credits that do arrive (statement credit lines the books
lack, deposits in the books). Pure, over values.

Two rules, in order; each matches an expected payment and a credit only when each is the
other's one candidate, and reports the rest as ambiguous, never a guess:

1. **Reference**: the credit carries the expected payment's reference, equal to it without
   case and whitespace, or contained in the credit's remittance text between word boundaries
   ("Invoice INV-77, thanks" carries INV-77; "INV-778" does not). A reference shorter than
   `REFERENCE_CONTAINED_CHARS_MIN` must be equal: a short one is found by chance in free text.
   The asset must be the same and the amount within [min, max]; the dates need not be: a
   reference names the payment, early or late (a credit that carries the reference with
   another amount is left for a person: a partial payment is not what was announced).
2. **Amount and date**, among what the first rule left: the same asset, the amount within
   [min, max], the credit's time within [from, until] (bounds included), and when both name a
   counterparty, names alike (rapidfuzz's token_set_ratio, case and punctuation aside, at
   least `COUNTERPARTY_SIMILARITY_MIN`: "Globex" and "GLOBEX Corporation" are alike).

An expected payment matches one credit at most, and a credit one expected payment at most. An
expected payment that the reference rule found ambiguous is not tried by amount, nor are its
candidate credits: a second rule does not settle what the first found contested.

Every expected payment ends in exactly one of matched, ambiguous or open, every credit in
matched or unmatched; `match_expected` checks it before it answers. The answer is sorted by
id: it does not depend on the inputs' order.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from rapidfuzz import fuzz, utils

from fundpool.core.errors import invariant
from fundpool.recon.matching import DUPLICATES_SHOWN_MAX
from fundpool.recon.model import MatchRule

# rapidfuzz token_set_ratio, 0..100: "Globex Ltd" / "Globox Ltd" scores 90, unrelated names
# under 50.
COUNTERPARTY_SIMILARITY_MIN = 85
REFERENCE_CONTAINED_CHARS_MIN = 4

_WORD = re.compile(r"[^\W_]+")  # a run of letters and digits


@dataclass(frozen=True, slots=True)
class ExpectedPayment:
    """Announced incoming funds. Values are checked when made: a range that cannot hold an
    amount or a time would never match and never say why."""

    expected_id: str
    asset: str
    amount_min_minor: int
    amount_max_minor: int
    from_us: int
    until_us: int
    reference: str | None = None
    counterparty: str | None = None

    def __post_init__(self) -> None:
        if not 0 < self.amount_min_minor <= self.amount_max_minor:
            raise ValueError(f"expected payment {self.expected_id}: the amounts must be "
                             f"0 < min <= max, not {self.amount_min_minor}..."
                             f"{self.amount_max_minor}")
        if self.from_us > self.until_us:
            raise ValueError(f"expected payment {self.expected_id}: from_us {self.from_us} is "
                             f"after until_us {self.until_us}")


@dataclass(frozen=True, slots=True)
class Credit:
    """Money that arrived: a statement's credit line or a deposit in the books. `reference` is
    its remittance text (or the deposit's announced reference)."""

    credit_id: str
    amount_minor: int
    asset: str
    at_us: int
    reference: str | None = None
    counterparty: str | None = None


@dataclass(frozen=True, slots=True)
class ExpectedMatch:
    expected_id: str
    credit_id: str
    rule: MatchRule  # REFERENCE or AMOUNT (a StrEnum: equal to "reference" / "amount")


@dataclass(frozen=True, slots=True)
class ExpectedResult:
    matched: tuple[ExpectedMatch, ...] = ()
    # (expected id, its candidate credit ids): more than one candidate, or one that has others
    ambiguous: tuple[tuple[str, tuple[str, ...]], ...] = ()
    unmatched_credits: tuple[str, ...] = ()
    open: tuple[str, ...] = ()  # expected payments nothing arrived for (yet)


def match_expected(credits: Sequence[Credit],
                   expected: Sequence[ExpectedPayment]) -> ExpectedResult:
    """Match the expected payments against the credits (see the module's docstring). Ids must
    be unique on each side (ValueError otherwise)."""
    _refuse_duplicates("credit", [credit.credit_id for credit in credits])
    _refuse_duplicates("expected payment", [e.expected_id for e in expected])
    matched: list[ExpectedMatch] = []
    ambiguous: list[tuple[str, tuple[str, ...]]] = []
    taken: set[str] = set()  # credits matched or contested: out of the next rule

    by_reference = _by_reference(credits, [e for e in expected if e.reference is not None])
    settled = _settle(by_reference, MatchRule.REFERENCE, matched, ambiguous, taken)

    left_credits = [credit for credit in credits if credit.credit_id not in taken]
    left_expected = [e for e in expected if e.expected_id not in settled]
    _settle(_by_amount(left_credits, left_expected), MatchRule.AMOUNT, matched, ambiguous,
            taken)

    matched.sort(key=lambda m: m.expected_id)
    ambiguous.sort()
    matched_credits = {m.credit_id for m in matched}
    settled_expected = {m.expected_id for m in matched} | {e for e, _ in ambiguous}
    result = ExpectedResult(
        tuple(matched), tuple(ambiguous),
        tuple(sorted(c.credit_id for c in credits if c.credit_id not in matched_credits)),
        tuple(sorted(e.expected_id for e in expected if e.expected_id not in settled_expected)))
    _check(credits, expected, result)
    return result


def _settle(candidates: dict[str, list[str]], rule: MatchRule, matched: list[ExpectedMatch],
            ambiguous: list[tuple[str, tuple[str, ...]]], taken: set[str]) -> set[str]:
    """One rule's candidates (expected id -> credit ids): mutual single candidates match, the
    rest of those with any candidate are ambiguous. Returns the expected ids it settled."""
    expected_of: dict[str, list[str]] = {}
    for expected_id, credit_ids in candidates.items():
        for credit_id in credit_ids:
            expected_of.setdefault(credit_id, []).append(expected_id)
    settled: set[str] = set()
    for expected_id, credit_ids in candidates.items():
        if not credit_ids:
            continue
        settled.add(expected_id)
        taken.update(credit_ids)
        if len(credit_ids) == 1 and len(expected_of[credit_ids[0]]) == 1:
            matched.append(ExpectedMatch(expected_id, credit_ids[0], rule))
        else:
            ambiguous.append((expected_id, tuple(sorted(credit_ids))))
    return settled


# --- rule 1: the reference -----------------------------------------------------------------


def _key(text: str) -> str:
    """Equality without case or whitespace: banks re-case and re-wrap remittance text."""
    return "".join(text.split()).casefold()


def _words(text: str) -> str:
    """Containment keeps word boundaries: case aside, whitespace runs as one space."""
    return " ".join(text.casefold().split())


def _contains(text: str, reference: str) -> bool:
    """`reference` occurs in `text` with no letter or digit right before or after it."""
    start = text.find(reference)
    while start >= 0:
        end = start + len(reference)
        if (start == 0 or not text[start - 1].isalnum()) \
                and (end == len(text) or not text[end].isalnum()):
            return True
        start = text.find(reference, start + 1)
    return False


def _by_reference(credits: Sequence[Credit], expected: Sequence[ExpectedPayment],
                  ) -> dict[str, list[str]]:
    """Expected id -> the credits the reference rule allows."""
    by_key: dict[str, list[int]] = {}
    # Containment is looked up by the reference's first word: a credit's text is searched for
    # the references that start with one of its words, not for every announced reference.
    by_first_word: dict[str, list[int]] = {}
    no_first_word: list[int] = []  # a reference that opens with a symbol ("#123 ..."): scanned
    words: list[str] = []
    for index, e in enumerate(expected):
        reference = e.reference or ""
        by_key.setdefault(_key(reference), []).append(index)
        words.append(_words(reference))
        if len(_key(reference)) < REFERENCE_CONTAINED_CHARS_MIN:
            continue
        first = _WORD.match(words[index])
        if first is None:
            no_first_word.append(index)
        else:
            by_first_word.setdefault(first.group(), []).append(index)

    candidates: dict[str, list[str]] = {e.expected_id: [] for e in expected}
    for credit in credits:
        if credit.reference is None:
            continue
        text = _words(credit.reference)
        found = set(by_key.get(_key(credit.reference), ()))
        for word in set(_WORD.findall(text)):
            found.update(i for i in by_first_word.get(word, ()) if _contains(text, words[i]))
        found.update(i for i in no_first_word if _contains(text, words[i]))
        for index in found:
            e = expected[index]
            if credit.asset == e.asset \
                    and e.amount_min_minor <= credit.amount_minor <= e.amount_max_minor:
                candidates[e.expected_id].append(credit.credit_id)
    return candidates


# --- rule 2: amount, date and counterparty -------------------------------------------------


def _alike(first: str | None, second: str | None) -> bool:
    if first is None or second is None:
        return True  # a name on one side only says nothing against the match
    score = fuzz.token_set_ratio(first, second, processor=utils.default_process)
    return score >= COUNTERPARTY_SIMILARITY_MIN


def _by_amount(credits: Sequence[Credit], expected: Sequence[ExpectedPayment],
               ) -> dict[str, list[str]]:
    """Expected id -> the credits the amount rule allows. Credits sorted by asset and amount:
    an expected payment's range is two bisections, not a scan of every credit."""
    ordered = sorted(credits, key=lambda c: (c.asset, c.amount_minor, c.credit_id))
    keys = [(c.asset, c.amount_minor) for c in ordered]
    candidates: dict[str, list[str]] = {}
    for e in expected:
        low = bisect_left(keys, (e.asset, e.amount_min_minor))
        high = bisect_right(keys, (e.asset, e.amount_max_minor))
        candidates[e.expected_id] = [
            c.credit_id for c in ordered[low:high]
            if e.from_us <= c.at_us <= e.until_us and _alike(e.counterparty, c.counterparty)]
    return candidates


# --- the answer ----------------------------------------------------------------------------


def _refuse_duplicates(side: str, ids: Sequence[str]) -> None:
    if len(set(ids)) != len(ids):
        twice = sorted(x for x, count in Counter(ids).items() if count > 1)
        raise ValueError(f"duplicate {side} ids: {twice[:DUPLICATES_SHOWN_MAX]}")


def _check(credits: Sequence[Credit], expected: Sequence[ExpectedPayment],
           result: ExpectedResult) -> None:
    """Each expected payment in one place, each credit in one, a match joining one of each
    with the same asset and an amount in the range: proven before the service stores it."""
    credit_by_id = {c.credit_id: c for c in credits}
    expected_by_id = {e.expected_id: e for e in expected}
    placed_expected = [m.expected_id for m in result.matched] + [
        e for e, _ in result.ambiguous] + list(result.open)
    placed_credits = [m.credit_id for m in result.matched] + list(result.unmatched_credits)
    for placed, wanted, side in ((placed_expected, expected_by_id, "expected payment"),
                                 (placed_credits, credit_by_id, "credit")):
        invariant(len(placed) == len(wanted) and set(placed) == wanted.keys(),
                  f"every {side} must be in exactly one place of the answer")
    invariant(all(_agrees(expected_by_id[m.expected_id], credit_by_id[m.credit_id])
                  for m in result.matched),
              "an expected payment matches a credit of its asset within its amounts")


def _agrees(e: ExpectedPayment, credit: Credit) -> bool:
    return credit.asset == e.asset \
        and e.amount_min_minor <= credit.amount_minor <= e.amount_max_minor

