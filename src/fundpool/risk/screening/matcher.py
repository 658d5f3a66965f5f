"""Screening a name against the listed parties, fast enough to decide inside a payment.

**Two stages.** An index, built once, finds the few listed names that could match; only those
are scored. Scoring 100,000 names one by one costs about 40 ms with rapidfuzz's own
`process.extract`; this costs a few hundred microseconds (docs/adr/0019-sanctions-screening.md
has the figures).

**The index** maps each token of every listed name (after `names.tokens`), and each pair of
adjacent tokens written together ("wei"+"ming" → "weiming", for "Zhang Weiming" against
张伟明's "zhang wei ming"), to the names holding it. A query token finds the listed tokens
it may stand for by four keys, each then checked with rapidfuzz's `fuzz.ratio`:

- the token itself and every token one deletion away, on both sides (SymSpell's trick):
  one or two typed letters wrong, missing, doubled or swapped ("poutin", "vladmir");
- its first three letters, for long tokens with two slips after them ("vladimyr");
- its consonant skeleton, vowels dropped and doubled letters merged ("mohammed" and
  "muhammad" are both "mhmd"): tokens with the same skeleton of four consonants or more
  score at least `SKELETON_SIMILARITY` (80). Arabic and Hebrew script write few vowels, so
  anyascii makes "hdr" of هدّار: a vowel-less token meets a token with its skeleton from
  three consonants, which lets an Arabic-script name reach its Latin form, though below the
  default threshold.

Adjacent query tokens written together are looked up exactly too ("bin laden" →
"binladen"). A listed name is a candidate when two distinct query tokens reach it (one when
the query has a single usable token); `_candidates` says how common tokens are kept from
flooding the scoring. At most `CANDIDATES_MAX` candidates are scored, those reached by the
most query tokens first, then those with the fewest tokens; a common query may reach more,
and then the hits are the best of those scored.

**The score** (0–100) of a query against one listed name:

1. Tokens are paired one to one, best pairs first. A pair counts when its `fuzz.ratio` is at
   least `TOKEN_SIMILARITY_MIN` (80): 91 for "poutin"/"putin", 80 for one letter wrong in
   five, 67 for "jones"/"johnson". A token can also pair with two adjacent tokens written
   together (similarity of the joined form), and a single letter with a token it is the
   initial of (`INITIAL_SIMILARITY`, 80).
2. Coverage, each side: the similarity of its paired tokens weighted by their length, over
   the length of all its tokens. Long tokens say more about who a party is than "al" or "li".
3. With two or more tokens paired on both sides, the better coverage counts: a listed name
   with a middle name the query lacks, or a query with a word the list lacks, is still the
   same party. With fewer, the lesser coverage counts: one shared token ("Ali") does not make
   "Ali" the same party as "Ali Hassan".
4. Minus `EXTRA_TOKEN_PENALTY` (5) for each token left unpaired on either side, at most
   `EXTRA_TOKENS_PENALTY_MAX` (10) in all, so that "Ivan Petrovsky-Smith Holdings" stays
   apart from "Ivan Petrov" (78) while a long Arabic name with its nasab still meets its short
   form.
5. A pairing that used an initial caps the score at `INITIAL_SCORE_MAX` (90): "V. Putin"
   names a party less surely than "Vladimir Putin".

Each entry is reported once, by its best-scoring name, with an explanation in English of
which tokens paired and how the score was made. The risk officers' allow-list of (normalised
query, entry id) pairs cleared as false positives is applied here: a cleared pair is not
reported at all, while every other entry the same name hits still is.
"""

from __future__ import annotations

import bisect
import copy
import heapq
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rapidfuzz import fuzz, process

from fundpool.core.errors import FundpoolError
from fundpool.risk.screening.lists import ListEntry
from fundpool.risk.screening.names import normalised, tokens

__all__ = ["Hit", "InvalidScreeningRequest", "Screener", "normalised"]

TOKEN_SIMILARITY_MIN = 80  # fuzz.ratio from which two tokens count as the same word
INITIAL_SIMILARITY = 80  # what a single letter scores against a token it is the initial of
INITIAL_SCORE_MAX = 90
EXTRA_TOKEN_PENALTY = 5  # points per token left unpaired, on either side
EXTRA_TOKENS_PENALTY_MAX = 10
CANDIDATES_MAX = 32  # listed names scored for one query
COMMON_POSITION_NAMES = 500  # a query token reaching more names is not used to find them
FUZZY_TOKENS_MAX = 16  # listed tokens one query token may stand for, best first
DELETION_TOKEN_CHARS_MIN = 4  # shorter tokens: one slip is already a different word
PREFIX_TOKEN_CHARS_MIN = 6
PREFIX_CHARS = 3
SKELETON_CHARS_MIN = 4  # tokens with the same skeleton this long pair: "mhmd", not "mrk"
SKELETON_VOWELLESS_CHARS_MIN = 3  # ...or this long, when one of them has no vowel: "hdr"
SKELETON_SIMILARITY = 80  # what two tokens with the same skeleton score at least
HITS_MAX = 100  # the largest `limit` a caller may ask for

_VOWELS = str.maketrans("", "", "aeiouy")
_VOWELS_WRITTEN = frozenset("aeiou")


class InvalidScreeningRequest(FundpoolError):
    code = "invalid_screening_request"
    title = "the screening request is not valid"


@dataclass(frozen=True, slots=True)
class Hit:
    """A listed party that the screened name may be. `query` is the name as normalised."""

    entry_id: str
    source: str
    schema: str
    matched_name: str
    query: str
    score: int
    explanation: str


_Postings = tuple[int, ...] | frozenset[int]  # the names holding one key, by name id
# A unit is a token, or two adjacent tokens written together: (text, first position, span).
_Unit = tuple[str, int, int]
# A pairing: (similarity, query unit index, listed unit index, by initial).
_Pair = tuple[int, int, int, bool]


@dataclass(frozen=True, slots=True)
class _Scored:
    name_id: int
    score: int
    pairs: tuple[_Pair, ...]
    coverage_query: float
    coverage_listed: float
    better_counts: bool
    unpaired: int


@dataclass(frozen=True, slots=True)
class _Query:
    """What one screening knows of its query once the index has been asked."""

    text: str
    tokens: tuple[str, ...]
    units: list[_Unit]
    weight: int  # characters in all its tokens
    answers: dict[str, list[tuple[int, int]]]  # listed unit → (query unit, similarity)
    initials: dict[str, list[int]]  # a letter → query units that are that single letter
    by_initial: dict[str, list[int]]  # a letter → query tokens of two letters or more
    exact: _Scored  # the score of a listed name with exactly the query's tokens


class Screener:
    """An index over the listed parties' names. Build once per list version; `screen` is pure."""

    def __init__(
        self, entries: Sequence[ListEntry], *, allowed: Iterable[tuple[str, str]] = ()
    ) -> None:
        # Two lists may name the same party with the same id (OpenSanctions keeps OFAC's
        # "ofac-<ent_num>"): both are kept, and each hit says which list it came from.
        self._entries = tuple(entries)
        # Cleared pairs are normalised again: normalising is idempotent, and a caller who
        # keyed the allow-list by the raw name is not silently ignored.
        self._allowed = frozenset((normalised(query), entry_id) for query, entry_id in allowed)

        # Names get their ids in order of token count, so the candidates a capped query keeps
        # (the smallest ids) are the names with the fewest tokens to leave unpaired.
        # Lists repeat tokens and whole names ("Ivan Petrov" many times over): each distinct
        # token tuple and its units are held once, which halves the index's memory.
        units_of: dict[tuple[str, ...], tuple[tuple[str, ...], tuple[_Unit, ...]]] = {}
        records: list[tuple[int, int, str, tuple[str, ...]]] = []
        for entry_index, entry in enumerate(self._entries):
            seen: set[tuple[str, ...]] = set()
            for display in entry.names:
                name_tokens = tokens(display)
                if name_tokens and name_tokens not in seen:
                    seen.add(name_tokens)
                    if name_tokens not in units_of:
                        shared = tuple(sys.intern(token) for token in name_tokens)
                        units = tuple(
                            (sys.intern(text), start, span) for text, start, span in _units(shared)
                        )
                        units_of[name_tokens] = (shared, units)
                    shared = units_of[name_tokens][0]
                    records.append((len(shared), entry_index, display, shared))
        records.sort(key=lambda record: record[0])
        self._name_entry = [record[1] for record in records]
        self._name_display = [record[2] for record in records]
        self._name_tokens = [record[3] for record in records]
        self._name_units = [units_of[record[3]][1] for record in records]
        self._name_weight = [sum(map(len, record[3])) for record in records]

        postings: dict[str, list[int]] = {}
        for name_id, units in enumerate(self._name_units):
            for key in dict.fromkeys(unit[0] for unit in units):
                postings.setdefault(key, []).append(name_id)
        # Large postings are kept as sets, so that a query meeting a common token ("ivan")
        # intersects it without copying it.
        self._postings: dict[str, tuple[int, ...] | frozenset[int]] = {
            key: frozenset(ids) if len(ids) > 32 else tuple(ids) for key, ids in postings.items()
        }

        vocabulary = sorted({token for name in self._name_tokens for token in name})
        by_deletion: dict[str, list[str]] = {}
        by_prefix: dict[str, list[str]] = {}
        by_skeleton: dict[str, list[str]] = {}
        by_skeleton_vowelless: dict[str, list[str]] = {}
        for token in vocabulary:
            if len(token) >= DELETION_TOKEN_CHARS_MIN:
                for variant in (token, *_deletions(token)):
                    by_deletion.setdefault(variant, []).append(token)
            if len(token) >= PREFIX_TOKEN_CHARS_MIN:
                by_prefix.setdefault(token[:PREFIX_CHARS], []).append(token)
            skeleton = _skeleton(token)
            if len(skeleton) >= 2:
                by_skeleton.setdefault(skeleton, []).append(token)
                if _vowelless(token):
                    by_skeleton_vowelless.setdefault(skeleton, []).append(token)
        # Tuples of strings, not lists: the garbage collector stops tracking them (and then
        # the dicts holding them) after its first pass, instead of walking a million
        # containers in every full collection, a pause of tens of milliseconds.
        self._by_deletion = _frozen(by_deletion)
        # A prefix bucket is sorted by length: `fuzz.ratio` of two tokens whose lengths differ
        # by more than a factor 3/2 is below 80, so a query scans only its length window.
        self._by_prefix = {
            prefix: tuple(sorted(bucket, key=len)) for prefix, bucket in by_prefix.items()
        }
        self._prefix_lengths = {
            prefix: tuple(map(len, bucket)) for prefix, bucket in self._by_prefix.items()
        }
        self._by_skeleton = _frozen(by_skeleton)
        self._by_skeleton_vowelless = _frozen(by_skeleton_vowelless)

    def __len__(self) -> int:
        return len(self._entries)

    def with_allowed(self, allowed: Iterable[tuple[str, str]]) -> Screener:
        """This index with another allow-list of cleared (name, entry) pairs: the index is
        shared, not built again (clearing a false positive costs nothing to rebuild)."""
        clone = copy.copy(self)
        clone._allowed = frozenset((normalised(query), entry_id) for query, entry_id in allowed)
        return clone

    def screen(self, name: str, *, threshold: int = 85, limit: int = 5) -> list[Hit]:
        """The listed parties `name` may be, scoring `threshold` or more, best first."""
        if not 0 <= threshold <= 100:
            raise InvalidScreeningRequest("the threshold is not within 0-100", threshold=threshold)
        if not 1 <= limit <= HITS_MAX:
            raise InvalidScreeningRequest(
                "the limit is not within 1 and HITS_MAX", limit=limit, hits_max=HITS_MAX
            )
        query_tokens = tokens(name)
        if not query_tokens:
            return []
        query, positions = self._ask(query_tokens)

        best: dict[int, _Scored] = {}  # entry index → its best-scoring name
        # Lists repeat whole names across entries: a name's tokens are scored once a query.
        scored_by_tokens: dict[tuple[str, ...], _Scored] = {}
        name_entry = self._name_entry
        for name_id in self._candidates(query_tokens, positions):
            seen = scored_by_tokens.get(self._name_tokens[name_id])
            if seen is None:
                scored = scored_by_tokens[self._name_tokens[name_id]] = self._score(name_id, query)
            else:
                scored = _Scored(
                    name_id,
                    seen.score,
                    seen.pairs,
                    seen.coverage_query,
                    seen.coverage_listed,
                    seen.better_counts,
                    seen.unpaired,
                )
            entry_index = name_entry[name_id]
            known = best.get(entry_index)
            if known is None or scored.score > known.score:
                best[entry_index] = scored

        ranked = sorted(
            (
                (-scored.score, self._entries[entry_index].id, entry_index, scored)
                for entry_index, scored in best.items()
                if scored.score >= threshold
            ),
        )
        hits: list[Hit] = []
        for _, entry_id, entry_index, scored in ranked:
            if (query.text, entry_id) in self._allowed:
                continue
            hits.append(self._hit(self._entries[entry_index], scored, query))
            if len(hits) == limit:
                break
        return hits

    # --- candidates ----------------------------------------------------------------------------

    def _ask(self, query_tokens: tuple[str, ...]) -> tuple[_Query, list[list[_Postings]]]:
        """The query's answers from the index, and the postings each of its positions reaches."""
        units = _units(query_tokens)
        answers: dict[str, list[tuple[int, int]]] = {}
        positions: list[list[_Postings]] = [[] for _ in query_tokens]
        initials: dict[str, list[int]] = {}
        by_initial: dict[str, list[int]] = {}
        for unit_index, (text, start, span) in enumerate(units):
            if span == 1:
                (initials if len(text) == 1 else by_initial).setdefault(text[0], []).append(
                    unit_index
                )
                found = self._similar(text)
            else:
                found = [(text, 100)] if text in self._postings else []
            for key, similarity in found:
                answers.setdefault(key, []).append((unit_index, similarity))
                postings = self._postings[key]
                for position in range(start, start + span):
                    positions[position].append(postings)
        count = len(query_tokens)
        weight = sum(map(len, query_tokens))
        exact = _Scored(
            name_id=-1,
            score=100,
            pairs=tuple((100, i, i, False) for i in range(count)),
            coverage_query=100.0,
            coverage_listed=100.0,
            better_counts=count >= 2,
            unpaired=0,
        )
        query = _Query(
            text=" ".join(query_tokens),
            tokens=query_tokens,
            units=units,
            weight=weight,
            answers=answers,
            initials=initials,
            by_initial=by_initial,
            exact=exact,
        )
        return query, positions

    def _similar(self, text: str) -> list[tuple[str, int]]:
        """Listed tokens (and joined pairs, exactly) that `text` may stand for, best first."""
        found = {text: 100} if text in self._postings else {}
        if len(text) >= DELETION_TOKEN_CHARS_MIN:
            near: set[str] = set()
            for variant in (text, *_deletions(text)):
                tokens_near = self._by_deletion.get(variant)
                if tokens_near:
                    near.update(tokens_near)
            for token in near:
                found.setdefault(token, round(fuzz.ratio(text, token)))
        if len(text) >= PREFIX_TOKEN_CHARS_MIN:
            prefix = text[:PREFIX_CHARS]
            bucket = self._by_prefix.get(prefix)
            if bucket:
                lengths = self._prefix_lengths[prefix]
                bucket = bucket[
                    bisect.bisect_left(lengths, (2 * len(text) + 2) // 3) : bisect.bisect_right(
                        lengths, 3 * len(text) // 2
                    )
                ]
                # One pass in C over the bucket, which can hold hundreds of tokens.
                for token, similarity, _ in process.extract(
                    text, bucket, scorer=fuzz.ratio, score_cutoff=TOKEN_SIMILARITY_MIN, limit=None
                ):
                    found.setdefault(token, round(similarity))
        skeleton = _skeleton(text)
        vowelless = _vowelless(text)
        if vowelless and len(skeleton) == 2:
            # "bn" for بن: too short a skeleton to match on, but "bin" is one letter away.
            for token in self._by_skeleton.get(skeleton, ()):
                found.setdefault(token, round(fuzz.ratio(text, token)))
        same: tuple[str, ...] | None = None
        if len(skeleton) >= SKELETON_CHARS_MIN:
            same = self._by_skeleton.get(skeleton)
        elif len(skeleton) == SKELETON_VOWELLESS_CHARS_MIN:
            index = self._by_skeleton if vowelless else self._by_skeleton_vowelless
            same = index.get(skeleton)
        for token in same or ():
            if found.get(token, 0) < SKELETON_SIMILARITY:
                found[token] = SKELETON_SIMILARITY
        best = sorted(
            (item for item in found.items() if item[1] >= TOKEN_SIMILARITY_MIN),
            key=lambda item: (-item[1], item[0]),
        )
        return best[:FUZZY_TOKENS_MAX]

    def _candidates(
        self, query_tokens: tuple[str, ...], positions: list[list[_Postings]]
    ) -> list[int]:
        """Listed names reached from the most query positions, at most `CANDIDATES_MAX`.

        A name must be reached from two positions, or from one when only one reaches any.
        Positions reaching more than `COMMON_POSITION_NAMES` names ("bin", "li") are left out
        while two rarer ones remain: they would bring in thousands of names to score, and a
        name sharing only its commonest tokens with the query rarely scores high. Single
        letters are used only when the query has nothing longer.
        """
        usable = [i for i, token in enumerate(query_tokens) if len(token) > 1] or list(
            range(len(query_tokens))
        )
        # One position per distinct token ("jun jun" is one), sized with repeats counted so
        # that a common position is dropped before its postings are ever merged.
        sized = sorted({query_tokens[i]: (sum(map(len, positions[i])), i) for i in usable}.values())
        sized = [(size, i) for size, i in sized if size]
        common: list[_Postings] = []
        while len(sized) > 2 and sized[-1][0] > COMMON_POSITION_NAMES:
            common += positions[sized.pop()[1]]
        if not sized:
            return []
        if len(sized) == 1:
            return _capped([_union(positions[sized[0][1]])])
        if len(sized) == 2:
            # The usual query, two usable tokens: only the rarer side's postings are merged,
            # the other side's are intersected with them one by one.
            rarer = _union(positions[sized[0][1]])
            other = positions[sized[1][1]]
            tiers: list[set[int] | frozenset[int]] = [
                set().union(*(rarer.intersection(names) for names in other))
            ]
        else:
            sets = [_union(positions[i]) for _, i in sized]
            # Names reached twice: every pair of positions intersected, each walk over the
            # smaller side, in C.
            tiers = [
                set().union(
                    *(
                        first.intersection(second)
                        for k, first in enumerate(sets)
                        for second in sets[k + 1 :]
                    )
                )
            ]
            if len(tiers[0]) > CANDIDATES_MAX:
                # More than can be scored: those reached from the most positions first.
                # reached[k] holds the names reached from k + 1 positions or more.
                reached: list[set[int] | frozenset[int]] = [sets[0]]
                for index, names in enumerate(sets[1:], start=2):
                    for k in range(len(reached) - 1, -1, -1):
                        both = reached[k].intersection(names)
                        if both:
                            if k + 1 == len(reached):
                                reached.append(set())
                            reached[k + 1] |= both
                    if index < len(sets):
                        reached[0] = reached[0].union(names)
                tiers = reached[:0:-1]
        if common and sum(map(len, tiers)) < CANDIDATES_MAX:
            # A name reached from one rare position and one common one ("Vafoski Metals" for
            # "Vafoski Pedreez Metals") is a candidate too: the rare positions' postings are
            # intersected with the common ones', never merged.
            kept = [names for _, i in sized for names in positions[i]]
            tiers.append(set().union(*(_meet(a, b) for a in kept for b in common)))
        return _capped(tiers)

    # --- scoring -------------------------------------------------------------------------------

    def _score(self, name_id: int, query: _Query) -> _Scored:
        listed_tokens = self._name_tokens[name_id]
        if listed_tokens == query.tokens:
            exact = query.exact
            return _Scored(name_id, 100, exact.pairs, 100.0, 100.0, exact.better_counts, 0)
        listed_units = self._name_units[name_id]
        query_units = query.units
        answers = query.answers
        initials = query.initials
        candidates: list[tuple[int, int, int, int, bool]] = []
        for listed_index, (text, _, span) in enumerate(listed_units):
            answered = answers.get(text)
            if answered:
                for query_index, similarity in answered:
                    width = span + query_units[query_index][2]
                    candidates.append((-similarity, width, query_index, listed_index, False))
            if span == 1 and (initials or len(text) == 1):
                letters = query.by_initial.get(text) if len(text) == 1 else initials.get(text[0])
                for query_index in letters or ():
                    candidates.append((-INITIAL_SIMILARITY, 2, query_index, listed_index, True))
        candidates.sort()

        taken_query = taken_listed = 0
        pairs: list[_Pair] = []
        credit_query = credit_listed = 0
        by_letter_used = False
        for negative_similarity, _, query_index, listed_index, by_letter in candidates:
            query_text, query_start, query_span = query_units[query_index]
            listed_text, listed_start, listed_span = listed_units[listed_index]
            query_mask = ((1 << query_span) - 1) << query_start
            listed_mask = ((1 << listed_span) - 1) << listed_start
            if taken_query & query_mask or taken_listed & listed_mask:
                continue
            taken_query |= query_mask
            taken_listed |= listed_mask
            pairs.append((-negative_similarity, query_index, listed_index, by_letter))
            credit_query -= negative_similarity * len(query_text)
            credit_listed -= negative_similarity * len(listed_text)
            by_letter_used = by_letter_used or by_letter

        paired_query = taken_query.bit_count()
        paired_listed = taken_listed.bit_count()
        coverage_query = credit_query / query.weight
        coverage_listed = credit_listed / self._name_weight[name_id]
        better_counts = paired_query >= 2 and paired_listed >= 2
        if better_counts:
            base = max(coverage_query, coverage_listed)
        else:
            base = min(coverage_query, coverage_listed)
        unpaired = len(query.tokens) - paired_query + len(listed_tokens) - paired_listed
        score = base - min(EXTRA_TOKEN_PENALTY * unpaired, EXTRA_TOKENS_PENALTY_MAX)
        if by_letter_used:
            score = min(score, INITIAL_SCORE_MAX)
        return _Scored(
            name_id,
            max(0, round(score)),
            tuple(pairs),
            coverage_query,
            coverage_listed,
            better_counts,
            unpaired,
        )

    # --- explanation ---------------------------------------------------------------------------

    def _hit(self, entry: ListEntry, scored: _Scored, query: _Query) -> Hit:
        return Hit(
            entry_id=entry.id,
            source=entry.source,
            schema=entry.schema,
            matched_name=self._name_display[scored.name_id],
            query=query.text,
            score=scored.score,
            explanation=self._explain(scored, query),
        )

    def _explain(self, scored: _Scored, query: _Query) -> str:
        listed_tokens = self._name_tokens[scored.name_id]
        listed_units = self._name_units[scored.name_id]
        described: list[str] = []
        paired_query: set[int] = set()
        paired_listed: set[int] = set()
        for similarity, query_index, listed_index, by_letter in sorted(
            scored.pairs, key=lambda pair: query.units[pair[1]][1]
        ):
            query_text, query_start, query_span = query.units[query_index]
            listed_text, listed_start, listed_span = listed_units[listed_index]
            paired_query.update(range(query_start, query_start + query_span))
            paired_listed.update(range(listed_start, listed_start + listed_span))
            left = _quoted_unit(query.tokens, query_start, query_span)
            right = _quoted_unit(listed_tokens, listed_start, listed_span)
            if by_letter:
                described.append(f"{left} and {right} share the initial '{listed_text[0]}'")
            elif similarity == 100 and query_text == listed_text:
                described.append(f"{left} = {right}")
            elif similarity == SKELETON_SIMILARITY and _skeleton(query_text) == _skeleton(
                listed_text
            ):
                described.append(f"{left} ~ {right} (same consonants, {similarity})")
            else:
                described.append(f"{left} ~ {right} ({similarity})")
        parts = [
            f"'{query.text}' ~ '{' '.join(listed_tokens)}': "
            f"{len(paired_query)} of {len(query.tokens)} query tokens match"
            + (f" ({'; '.join(described)})" if described else "")
        ]
        unpaired_query = [t for i, t in enumerate(query.tokens) if i not in paired_query]
        unpaired_listed = [t for i, t in enumerate(listed_tokens) if i not in paired_listed]
        if unpaired_query:
            parts.append(f"query tokens not in the listed name: {_quoted(unpaired_query)}")
        if unpaired_listed:
            parts.append(f"listed tokens not in the query: {_quoted(unpaired_listed)}")
        rule = (
            "two or more tokens pair on both sides, so the better coverage counts"
            if scored.better_counts
            else "fewer than two tokens pair on one side, so the lesser coverage counts"
        )
        parts.append(
            f"by length the pairs cover {scored.coverage_query:.0f} % of the query and "
            f"{scored.coverage_listed:.0f} % of the listed name; {rule}"
        )
        if scored.unpaired:
            penalty = min(EXTRA_TOKEN_PENALTY * scored.unpaired, EXTRA_TOKENS_PENALTY_MAX)
            parts.append(f"{scored.unpaired} unpaired token(s) cost {penalty}")
        if any(pair[3] for pair in scored.pairs):
            parts.append(f"a match by initial caps the score at {INITIAL_SCORE_MAX}")
        parts.append(f"score {scored.score}")
        return "; ".join(parts)


def _units(name_tokens: tuple[str, ...]) -> list[_Unit]:
    units: list[_Unit] = [(token, position, 1) for position, token in enumerate(name_tokens)]
    units += [
        (name_tokens[position] + name_tokens[position + 1], position, 2)
        for position in range(len(name_tokens) - 1)
    ]
    return units


def _frozen(index: dict[str, list[str]]) -> dict[str, tuple[str, ...]]:
    return {key: tuple(values) for key, values in index.items()}


def _deletions(token: str) -> list[str]:
    return [token[:i] + token[i + 1 :] for i in range(len(token))]


def _skeleton(token: str) -> str:
    consonants = token.translate(_VOWELS)
    return "".join(
        letter for i, letter in enumerate(consonants) if i == 0 or consonants[i - 1] != letter
    )


def _vowelless(token: str) -> bool:
    return token.isalpha() and _VOWELS_WRITTEN.isdisjoint(token)


def _capped(tiers: list[set[int] | frozenset[int]]) -> list[int]:
    """At most `CANDIDATES_MAX` names, the first tiers first, then the smallest name ids."""
    chosen: list[int] = []
    taken: set[int] = set()
    for tier in tiers:
        fresh = tier - taken if taken else tier
        room = CANDIDATES_MAX - len(chosen)
        chosen += heapq.nsmallest(room, fresh) if len(fresh) > room else fresh
        if len(chosen) >= CANDIDATES_MAX:
            break
        taken |= fresh
    return chosen


def _meet(a: _Postings, b: _Postings) -> set[int] | frozenset[int]:
    """The names in both, walking the smaller (a set's intersection walks a tuple given it)."""
    if isinstance(a, frozenset):
        return a.intersection(b)
    if isinstance(b, frozenset):
        return b.intersection(a)
    return set(a).intersection(b)


def _union(postings: list[_Postings]) -> set[int] | frozenset[int]:
    if len(postings) == 1 and isinstance(postings[0], frozenset):
        return postings[0]
    return set().union(*postings)


def _quoted_unit(name_tokens: tuple[str, ...], start: int, span: int) -> str:
    return "+".join(f"'{token}'" for token in name_tokens[start : start + span])


def _quoted(words: list[str]) -> str:
    return ", ".join(f"'{word}'" for word in words)
