"""Waterfall disbursement: what is available paid out to obligations tier by tier, senior first.

The tiers form one chain, senior to junior: each `TierSpec` names the tier it comes `after`
(None for the most senior one). Exactly one tier is the most senior, no two tiers come after
the same one, every `after` names a listed tier and the chain has no cycle; each tier holds at
least one obligation and each obligation names a listed tier. Anything else is refused with
the field that breaks it (`tiers[2].after`, `obligations[0].tier`).

**The rules.** Tiers are paid in order. A tier whose obligations the money left covers is paid
in full, and the rest goes down to the next tier. A tier it does not cover takes all of it,
pro rata by amount owed, and the tiers below get nothing: a junior tier is paid only once every
senior tier is paid in full.

**Rounding.** Inside the tier that is paid in part, obligation i's exact share is
`left × amount_i / due` (a fraction). Largest remainder (Hamilton): every share is rounded
down, and the minor units left over (fewer than the tier's obligations) go one each to the
largest fractional parts; on a tie the obligation earlier in the input wins. So every share
is within one minor unit of its exact pro rata share, never above the amount owed, and the
money paid out is exactly `min(available, Σ due)`: nothing is created or lost,
`Σ paid + left_minor == available_minor`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from fundpool.core.errors import FundpoolError, invariant
from fundpool.core.money import AMOUNT_MAX_MINOR

WATERFALL_TIERS_MAX = 100
WATERFALL_OBLIGATIONS_MAX = 100_000
NAME_LENGTH_MAX = 128

_DOC_FIELDS = frozenset({"available", "tiers", "obligations"})
_TIER_FIELDS = frozenset({"name", "after"})
_OBLIGATION_FIELDS = frozenset({"id", "creditor", "tier", "amount"})


class InvalidWaterfall(FundpoolError):
    code = "invalid_waterfall"
    title = "the waterfall is not valid"


class CyclicTiers(FundpoolError):
    code = "cyclic_tiers"
    title = "the waterfall's tiers come after each other in a cycle"


class EmptyTier(FundpoolError):
    code = "empty_tier"
    title = "a waterfall tier has no obligations"


class UnknownTier(FundpoolError):
    code = "unknown_tier"
    title = "no such tier in this waterfall"


class TiersNotOrdered(FundpoolError):
    code = "tiers_not_ordered"
    title = "the waterfall's tiers do not form one chain from senior to junior"


@dataclass(frozen=True, slots=True)
class TierSpec:
    name: str
    after: str | None = None  # the tier this one is junior to; None for the most senior


@dataclass(frozen=True, slots=True)
class Obligation:
    id: str
    creditor: str
    tier: str
    amount_minor: int


@dataclass(frozen=True, slots=True)
class Payment:
    """What one obligation is paid, and what it is still owed."""

    obligation_id: str
    creditor: str
    tier: str
    amount_minor: int
    paid_minor: int
    owed_minor: int


@dataclass(frozen=True, slots=True)
class TierTotal:
    name: str
    due_minor: int
    paid_minor: int
    owed_minor: int
    fully_paid: bool


@dataclass(frozen=True, slots=True)
class WaterfallReport:
    available_minor: int
    payments: tuple[Payment, ...]  # in the obligations' input order
    tiers: tuple[TierTotal, ...]  # senior to junior
    left_minor: int  # what remains once every tier is paid in full

    @property
    def paid_minor(self) -> int:
        return sum(tier.paid_minor for tier in self.tiers)

    def payment(self, obligation_id: str) -> Payment:
        for payment in self.payments:
            if payment.obligation_id == obligation_id:
                return payment
        raise KeyError(obligation_id)

    def tier(self, name: str) -> TierTotal:
        for tier in self.tiers:
            if tier.name == name:
                return tier
        raise KeyError(name)


@dataclass(frozen=True, slots=True)
class WaterfallInput:
    """A parsed waterfall document: `waterfall(*inputs)` or `.run()`."""

    available_minor: int
    tiers: tuple[TierSpec, ...]
    obligations: tuple[Obligation, ...]

    def run(self) -> WaterfallReport:
        return waterfall(self.available_minor, self.tiers, self.obligations)


def waterfall(available_minor: int, tiers: Sequence[TierSpec],
              obligations: Sequence[Obligation]) -> WaterfallReport:
    """Pay `available_minor` out to `obligations` by the order of `tiers` (see the module)."""
    _check_minor(available_minor, "available")
    order = tier_order(tiers)
    by_tier = _check_obligations(obligations, order)

    paid = [0] * len(obligations)
    totals: list[TierTotal] = []
    left = available_minor
    for name in order:
        members = by_tier[name]
        due = sum(obligations[i].amount_minor for i in members)
        if due <= left:
            for i in members:
                paid[i] = obligations[i].amount_minor
            tier_paid = due
        else:
            shares = _pro_rata(left, [obligations[i].amount_minor for i in members], due)
            for i, share in zip(members, shares, strict=True):
                paid[i] = share
            tier_paid = left
        left -= tier_paid
        totals.append(TierTotal(name, due, tier_paid, due - tier_paid, tier_paid == due))

    payments = tuple(
        Payment(o.id, o.creditor, o.tier, o.amount_minor, paid[i], o.amount_minor - paid[i])
        for i, o in enumerate(obligations))
    paid_total = sum(paid)
    invariant(paid_total + left == available_minor,
              f"the waterfall paid {paid_total} and left {left} of {available_minor}")
    invariant(all(0 <= p.paid_minor <= p.amount_minor for p in payments),
              "a waterfall payment is between 0 and the amount owed")
    return WaterfallReport(available_minor, payments, tuple(totals), left)


def tier_order(tiers: Sequence[TierSpec]) -> tuple[str, ...]:
    """The tiers' names, senior to junior, or the error that says why they are no chain."""
    if not tiers:
        raise InvalidWaterfall("a waterfall has at least one tier", field="tiers")
    if len(tiers) > WATERFALL_TIERS_MAX:
        raise InvalidWaterfall(f"a waterfall has at most {WATERFALL_TIERS_MAX} tiers",
                               field="tiers", tiers=len(tiers))
    after: dict[str, str | None] = {}
    for i, spec in enumerate(tiers):
        if not isinstance(spec, TierSpec):
            raise InvalidWaterfall("a tier is a TierSpec", field=f"tiers[{i}]")
        if not _is_name(spec.name):
            raise InvalidWaterfall(f"a tier's name is a text of 1 to {NAME_LENGTH_MAX} "
                                   "characters", field=f"tiers[{i}].name")
        if spec.name in after:
            raise InvalidWaterfall("tier names are unique", field=f"tiers[{i}].name",
                                   tier=spec.name)
        after[spec.name] = spec.after
    for i, spec in enumerate(tiers):
        if spec.after is not None and spec.after not in after:
            raise UnknownTier("a tier comes after a tier that is not listed",
                              field=f"tiers[{i}].after", tier=spec.after)

    cycle = _cycle(after)
    if cycle:
        raise CyclicTiers(f"the tiers come after each other: {' -> '.join(cycle)}",
                          field="tiers", cycle=cycle)
    heads = [i for i, spec in enumerate(tiers) if spec.after is None]
    if len(heads) != 1:  # never 0: with no cycle, every chain of `after` ends at a head
        raise TiersNotOrdered("exactly one tier is the most senior (has no after)",
                              field=f"tiers[{heads[1]}].after",
                              most_senior=[tiers[i].name for i in heads])
    junior: dict[str, str] = {}
    for i, spec in enumerate(tiers):
        if spec.after is not None:
            if spec.after in junior:
                raise TiersNotOrdered("two tiers come after the same one",
                                      field=f"tiers[{i}].after", after=spec.after,
                                      tiers=[junior[spec.after], spec.name])
            junior[spec.after] = spec.name
    order = [tiers[heads[0]].name]
    while order[-1] in junior:
        order.append(junior[order[-1]])
    invariant(len(order) == len(tiers), "one head, no cycle, no fork: the tiers are a chain")
    return tuple(order)


def waterfall_from_mapping(doc: Mapping[str, object], *,
                           source: str = "waterfall") -> WaterfallInput:
    """Parse {"available": 123, "tiers": [{"name": "senior"}, {"name": "mezzanine",
    "after": "senior"}], "obligations": [{"id": ..., "creditor": ..., "tier": ...,
    "amount": ...}]}: amounts are ints of minor units (a float is refused), and every
    refusal names its field, as `waterfall` does."""
    try:
        return _from_mapping(doc)
    except FundpoolError as error:
        error.facts = {"source": source, **error.facts}
        raise


# --- checking and parsing --------------------------------------------------------------------


def _from_mapping(doc: Mapping[str, object]) -> WaterfallInput:
    if not isinstance(doc, Mapping):
        raise InvalidWaterfall("a waterfall is a table", field="")
    _no_unknown(doc, _DOC_FIELDS, "")
    available = _check_minor(doc.get("available"), "available")
    raw_tiers = _list(doc.get("tiers"), "tiers", WATERFALL_TIERS_MAX)
    raw_obligations = _list(doc.get("obligations"), "obligations", WATERFALL_OBLIGATIONS_MAX)
    tiers: list[TierSpec] = []
    for i, raw in enumerate(raw_tiers):
        path = f"tiers[{i}]"
        if not isinstance(raw, Mapping):
            raise InvalidWaterfall("a tier is a table", field=path)
        _no_unknown(raw, _TIER_FIELDS, path)
        after = raw.get("after")
        tiers.append(TierSpec(_name(raw.get("name"), f"{path}.name"),
                              None if after is None else _name(after, f"{path}.after")))
    obligations: list[Obligation] = []
    for i, raw in enumerate(raw_obligations):
        path = f"obligations[{i}]"
        if not isinstance(raw, Mapping):
            raise InvalidWaterfall("an obligation is a table", field=path)
        _no_unknown(raw, _OBLIGATION_FIELDS, path)
        obligations.append(Obligation(
            _name(raw.get("id"), f"{path}.id"),
            _name(raw.get("creditor"), f"{path}.creditor"),
            _name(raw.get("tier"), f"{path}.tier"),
            _check_minor(raw.get("amount"), f"{path}.amount"),
        ))
    _check_obligations(obligations, tier_order(tiers))
    return WaterfallInput(available, tuple(tiers), tuple(obligations))


def _check_obligations(obligations: Sequence[Obligation],
                       order: Sequence[str]) -> dict[str, list[int]]:
    """The obligations' indexes by tier, once each is checked."""
    if len(obligations) > WATERFALL_OBLIGATIONS_MAX:
        raise InvalidWaterfall(
            f"a waterfall has at most {WATERFALL_OBLIGATIONS_MAX} obligations",
            field="obligations", obligations=len(obligations))
    by_tier: dict[str, list[int]] = {name: [] for name in order}
    ids: set[str] = set()
    for i, obligation in enumerate(obligations):
        path = f"obligations[{i}]"
        if not isinstance(obligation, Obligation):
            raise InvalidWaterfall("an obligation is an Obligation", field=path)
        for name in ("id", "creditor"):
            if not _is_name(getattr(obligation, name)):
                raise InvalidWaterfall(f"a text of 1 to {NAME_LENGTH_MAX} characters",
                                       field=f"{path}.{name}")
        if obligation.id in ids:
            raise InvalidWaterfall("obligation ids are unique", field=f"{path}.id",
                                   obligation_id=obligation.id)
        ids.add(obligation.id)
        _check_minor(obligation.amount_minor, f"{path}.amount")
        members = by_tier.get(obligation.tier)
        if members is None:
            raise UnknownTier("the obligation names a tier that is not listed",
                              field=f"{path}.tier", tier=obligation.tier,
                              obligation_id=obligation.id)
        members.append(i)
    for name, members in by_tier.items():
        if not members:
            raise EmptyTier("every tier holds at least one obligation", field="obligations",
                            tier=name)
    return by_tier


def _cycle(after: Mapping[str, str | None]) -> list[str]:
    """One cycle of `after` links (its names, the first repeated at the end), or []."""
    done: set[str] = set()
    for start in after:
        path: list[str] = []
        on_path: set[str] = set()
        name: str | None = start
        while name is not None and name not in done:
            if name in on_path:
                return [*path[path.index(name):], name]
            path.append(name)
            on_path.add(name)
            name = after.get(name)
        done.update(path)
    return []


def _pro_rata(total_minor: int, amounts_minor: Sequence[int], due_minor: int) -> list[int]:
    """`total_minor` (< `due_minor`, their sum) shared by `amounts_minor`, largest remainder."""
    shares = [total_minor * amount // due_minor for amount in amounts_minor]
    leftover = total_minor - sum(shares)
    if leftover:
        # Largest fractional part first; ties go to the earlier obligation.
        order = sorted(range(len(amounts_minor)),
                       key=lambda i: (-(total_minor * amounts_minor[i] % due_minor), i))
        for i in order[:leftover]:
            shares[i] += 1
    return shares


def _check_minor(value: object, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidWaterfall("an amount is an int of minor units (never a float)",
                               field=path, value=repr(value))
    if value < 0:
        raise InvalidWaterfall("an amount is never negative", field=path, value=value)
    if value > AMOUNT_MAX_MINOR:
        raise InvalidWaterfall("the amount exceeds the largest representable amount",
                               field=path, value=value)
    return value


def _is_name(value: object) -> bool:
    return isinstance(value, str) and 0 < len(value) <= NAME_LENGTH_MAX and value.strip() != ""


def _name(value: object, path: str) -> str:
    if not _is_name(value):
        raise InvalidWaterfall(f"a text of 1 to {NAME_LENGTH_MAX} characters", field=path,
                               value=repr(value))
    return str(value)


def _list(value: object, path: str, length_max: int) -> Sequence[object]:
    if not isinstance(value, Sequence) or isinstance(value, str | bytes):
        raise InvalidWaterfall("a list of tables", field=path)
    if len(value) > length_max:
        raise InvalidWaterfall(f"at most {length_max} entries", field=path,
                               entries=len(value))
    return value


def _no_unknown(doc: Mapping[str, object], known: frozenset[str], path: str) -> None:
    unknown = sorted(str(key) for key in doc if key not in known)
    if unknown:
        where = f"{path}.{unknown[0]}" if path else unknown[0]
        raise InvalidWaterfall(f"unknown field; known: {', '.join(sorted(known))}",
                               field=where)
