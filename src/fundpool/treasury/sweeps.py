"""Cash sweeps: the standing instructions a treasurer gives to keep one asset's money on a
header (concentration) channel and its participant channels at set depths.

The four kinds treasurers know, each over one asset, each moving money only between the header
and a participant (never between two participants):

- `zero_balancing`: every participant is swept down to zero, or to its small residual
  `keep_minor`, into the header. With `two_way`, a participant under its funding level (its
  `keep_minor`, or its band minimum when that is higher: pool balances are never negative, so
  "funding a negative balance" means topping up one under its floor) is funded from the header.
- `target_balance`: each participant is brought to its target, its surplus to the header and
  its deficit from the header.
- `threshold`: a participant is only touched when it crosses a threshold: above
  `threshold_minor` its excess over the target goes to the header; below `floor_minor` it is
  funded up to the target. Either threshold may be left out (a one-sided rule).
- `collar`: each participant is kept between `floor_minor` and `cap_minor`: above the cap it is
  swept down to the cap, below the floor funded up to the floor (or, with `to_target`, to the
  target in both cases, which leaves room before the next sweep).

A participant's target is its own `target_minor`, else the rule's `target_minor`, else the
target of its band; a participant that needs one and has none is skipped, with the reason.

Safety, the part that must hold whatever the figures:

- **No source goes under its minimum.** A move never takes its source (a participant being
  swept or the header funding) below its band minimum, or below zero without a band: a sweep
  is reduced to what the source holds above its minimum, or skipped with the reason.
- **A source gives only what it holds when the plan is made.** Money swept into the header by
  the same plan is not counted to fund participants: the moves may be carried out in any order
  or all at once, and each must be covered on its own. A participant left unfunded for that
  reason is funded by the next run, once the sweep in has arrived.
- Participants are funded by `priority` (lower first), then in the order the rule lists them,
  while the header has money above its minimum; a participant the header can only partly
  cover gets what there is (the move's reason says so).
- A move smaller than the rule's `min_move_minor` is skipped: a bank charges each transfer.
- A plan is refused when another run of the same rule has not finished (`SweepPending`), or
  when the balances it would be made from are older than the caller's bound (`StaleBalances`):
  a sweep sized from a balance that has since moved takes the wrong amount.

`check_sweep` applies the same minimum rule to a plan made by hand (a treasurer's one-off
sweep request) and refuses it, naming the channel, its balance, its minimum and the amount.

Moves are listed sweeps in first (in the rule's participant order), then fundings (in
priority order); a plan is the same for the same inputs.

Rules are written as a list of tables whose keys are the fields' names:

    [{"id": "usd-zba", "kind": "zero_balancing", "asset": "USD", "header": "bank-a",
      "two_way": true, "min_move_minor": 1000,
      "participants": [{"channel": "bank-b", "priority": 0, "keep_minor": 50000},
                       {"channel": "bank-c", "priority": 1}]}]
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from enum import StrEnum

from fundpool.core.errors import FundpoolError, InvariantViolation
from fundpool.pool.config import ID_PATTERN
from fundpool.treasury.bands import (
    Band,
    Fields,
    check_asset,
    check_channel,
    check_minor,
    list_of,
    money_text,
)

RULES_MAX = 1_000
PARTICIPANTS_MAX = 1_000  # participants of one rule
PRIORITY_MAX = 1_000


class InvalidSweepRule(FundpoolError):
    code = "invalid_sweep_rule"
    title = "the sweep rule is not valid"


class InvalidSweepMove(FundpoolError):
    code = "invalid_sweep_move"
    title = "the sweep move is not valid"


class SweepPending(FundpoolError):
    code = "sweep_pending"
    title = "another run of this sweep rule has not finished"


class StaleBalances(FundpoolError):
    code = "stale_balances"
    title = "the balances are too old to size a sweep from"


class SweepWouldBreachMinimum(FundpoolError):
    code = "sweep_would_breach_minimum"
    title = "the sweep would take a channel below its minimum balance"


class SweepKind(StrEnum):
    ZERO_BALANCING = "zero_balancing"
    TARGET_BALANCE = "target_balance"
    THRESHOLD = "threshold"
    COLLAR = "collar"


@dataclass(frozen=True, slots=True)
class Participant:
    """A channel a sweep rule manages. `priority`: lower is funded first when the header cannot
    cover every participant; `keep_minor`: the residual a zero-balancing sweep leaves;
    `target_minor`: this participant's own target (else the rule's, else its band's)."""

    channel: str
    priority: int = 0
    keep_minor: int = 0
    target_minor: int | None = None


@dataclass(frozen=True, slots=True)
class SweepRule:
    """A standing sweep instruction over one asset (see the module's docstring for each kind
    and which figures it takes; a figure another kind takes is refused, not ignored)."""

    id: str
    kind: SweepKind
    asset: str
    header: str
    participants: tuple[Participant, ...]
    two_way: bool = False  # zero_balancing: fund participants under their funding level
    target_minor: int | None = None  # target_balance, threshold, collar: the default target
    threshold_minor: int | None = None  # threshold: sweep above this
    floor_minor: int | None = None  # threshold, collar: fund below this
    cap_minor: int | None = None  # collar: sweep above this
    to_target: bool = False  # collar: sweep down and fund up to the target, not to cap/floor
    min_move_minor: int = 0  # a smaller move is not worth a transfer

    def __post_init__(self) -> None:
        _check_rule(self)


@dataclass(frozen=True, slots=True)
class SweepMove:
    source: str
    destination: str
    asset: str
    amount_minor: int
    reason: str

    def __post_init__(self) -> None:
        if isinstance(self.amount_minor, bool) or not isinstance(self.amount_minor, int) \
                or self.amount_minor <= 0:
            raise InvalidSweepMove("a move's amount is a positive integer of minor units",
                                   source=self.source, destination=self.destination,
                                   amount_minor=repr(self.amount_minor))
        if self.source == self.destination:
            raise InvalidSweepMove("a move goes from one channel to another",
                                   channel=self.source)


@dataclass(frozen=True, slots=True)
class SweepPlan:
    rule_id: str
    moves: tuple[SweepMove, ...]
    skipped: tuple[tuple[str, str], ...]  # (channel, why it is not moved)


def plan_sweep(rule: SweepRule, balances: Mapping[str, int], bands: Mapping[str, Band], *,
               balances_at_us: int, now_us: int, stale_after_us: int,
               pending: bool, scale: int | None = None) -> SweepPlan:
    """The moves `rule` makes of `balances` (channel -> available, in the rule's asset), with
    `bands` (channel -> band of the rule's asset; a channel may have none). `pending`: another
    run of this rule has not finished; `scale`: the asset's, for the reasons' amounts. Raises
    SweepPending, StaleBalances."""
    token = _SCALE.set(scale)
    try:
        return _plan_sweep(rule, balances, bands, balances_at_us=balances_at_us, now_us=now_us,
                           stale_after_us=stale_after_us, pending=pending)
    finally:
        _SCALE.reset(token)


def _plan_sweep(rule: SweepRule, balances: Mapping[str, int], bands: Mapping[str, Band], *,
                balances_at_us: int, now_us: int, stale_after_us: int,
                pending: bool) -> SweepPlan:
    if pending:
        raise SweepPending("wait for the rule's previous sweep to finish", rule_id=rule.id)
    if stale_after_us < 0:
        raise ValueError(f"stale_after_us is a duration, never negative: {stale_after_us}")
    age_us = now_us - balances_at_us
    if age_us > stale_after_us:
        raise StaleBalances("read the balances again before sweeping", rule_id=rule.id,
                            balances_at_us=balances_at_us, now_us=now_us, age_us=age_us,
                            stale_after_us=stale_after_us)
    for channel, given in bands.items():
        if given.channel != channel or given.asset != rule.asset:
            raise ValueError(f"the band under {channel!r} is {given.channel} {given.asset}, "
                             f"not {channel} {rule.asset}")

    sweeps_in: list[SweepMove] = []
    wanted: list[tuple[int, int, Participant, int, int, str]] = []  # fundings, in order
    skipped: list[tuple[str, str]] = []
    for index, participant in enumerate(rule.participants):
        channel = participant.channel
        balance = balances.get(channel)
        if balance is None:
            skipped.append((channel, "no balance is known for it"))
            continue
        band = bands.get(channel)
        levels = _levels(rule, participant, balance, band)
        if isinstance(levels, str):
            skipped.append((channel, levels))
            continue
        sweep_to, fund_to, why = levels
        if sweep_to is not None and balance > sweep_to:
            floor = 0 if band is None else band.min_minor
            amount = balance - max(sweep_to, floor)
            if amount <= 0:
                skipped.append((channel, f"{why}, but it holds nothing above its band "
                                         f"minimum {_n(floor)}"))
            elif amount < rule.min_move_minor:
                skipped.append((channel, f"{why}: {_n(amount)} is under the rule's minimum "
                                         f"move {_n(rule.min_move_minor)}"))
            else:
                reason = f"{why}: {_n(amount)} to the header {rule.header}"
                if sweep_to < floor:
                    reason += f" (down to its band minimum {_n(floor)}, not {_n(sweep_to)})"
                sweeps_in.append(SweepMove(channel, rule.header, rule.asset, amount, reason))
        elif fund_to is not None and balance < fund_to:
            wanted.append((participant.priority, index, participant, balance, fund_to, why))

    fundings = _fund(rule, balances, bands, sorted(wanted, key=lambda w: (w[0], w[1])),
                     skipped)
    plan = SweepPlan(rule.id, (*sweeps_in, *fundings), tuple(skipped))
    check_sweep(plan, balances, bands)  # the rule above, checked once more on the result
    return plan


def check_sweep(plan: SweepPlan, balances: Mapping[str, int],
                bands: Mapping[str, Band]) -> None:
    """Refuse a plan (made by `plan_sweep` or by hand) whose moves would take a source below its
    band minimum, or below zero without a band. Each source must cover all it sends from what
    it holds now: money it receives in the same plan is not counted (the moves may run in any
    order). Raises SweepWouldBreachMinimum."""
    sent: dict[str, int] = {}
    for move in plan.moves:
        sent[move.source] = sent.get(move.source, 0) + move.amount_minor
    for channel, amount in sorted(sent.items()):
        balance = balances.get(channel, 0)
        band = bands.get(channel)
        minimum = 0 if band is None else band.min_minor
        if balance - amount < minimum:
            raise SweepWouldBreachMinimum(
                f"{channel} would fall to {balance - amount}, under its minimum {minimum}",
                rule_id=plan.rule_id, channel=channel, balance_minor=balance,
                minimum_minor=minimum, amount_minor=amount)


def sweep_rules_from_mapping(items: object, path: str = "sweeps") -> tuple[SweepRule, ...]:
    """Parse a list of sweep rule tables (see the module's docstring); ids are unique."""
    rules: list[SweepRule] = []
    seen: set[str] = set()
    for index, item in enumerate(list_of(items, InvalidSweepRule, path, RULES_MAX)):
        at = f"{path}[{index}]"
        rule = _rule_from_mapping(item, at)
        if rule.id in seen:
            raise InvalidSweepRule("each rule has its own id", field=f"{at}.id", rule_id=rule.id)
        seen.add(rule.id)
        rules.append(rule)
    return tuple(rules)


# --- the levels of each kind ---------------------------------------------------------------


def _levels(rule: SweepRule, participant: Participant, balance: int, band: Band | None,
            ) -> tuple[int | None, int | None, str] | str:
    """(sweep down to, fund up to, why) for one participant, or why it is skipped."""
    kind = rule.kind
    if kind is SweepKind.ZERO_BALANCING:
        keep = participant.keep_minor
        band_floor = 0 if band is None else band.min_minor
        level = max(keep, band_floor)
        if rule.two_way and balance < level:
            named = f"its residual {_n(keep)}" if level == keep else \
                f"its band minimum {_n(level)}"
            return None, level, f"two-way zero balancing: {_n(balance)} funded up to {named}"
        if balance > keep:
            residual = "zero" if keep == 0 else f"its residual {_n(keep)}"
            return keep, None, f"zero balancing: {_n(balance)} swept to {residual}"
        return None, None, "zero balancing"
    target = participant.target_minor
    if target is None:
        target = rule.target_minor
    if target is None and band is not None:
        target = band.target_minor
    if kind is SweepKind.COLLAR:
        cap, floor = rule.cap_minor, rule.floor_minor
        if cap is None or floor is None:  # _check_rule refuses such a collar
            raise InvariantViolation("a collar has a floor and a cap")
        if rule.to_target and target is None:
            return _NO_TARGET
        if balance > cap:
            down_to = target if rule.to_target and target is not None else cap
            return down_to, None, f"collar: {_n(balance)} is above the cap {_n(cap)}"
        if balance < floor:
            up_to = target if rule.to_target and target is not None else floor
            return None, up_to, f"collar: {_n(balance)} is under the floor {_n(floor)}"
        return None, None, "collar"
    if target is None:
        return _NO_TARGET
    if kind is SweepKind.TARGET_BALANCE:
        return target, target, f"target balance: {_n(balance)} brought to its target {_n(target)}"
    threshold, floor = rule.threshold_minor, rule.floor_minor
    if threshold is not None and balance > threshold:
        return target, None, (f"threshold: {_n(balance)} is above the threshold "
                              f"{_n(threshold)}, swept to its target {_n(target)}")
    if floor is not None and balance < floor:
        return None, target, (f"threshold: {_n(balance)} is under the floor {_n(floor)}, "
                              f"funded up to its target {_n(target)}")
    return None, None, "threshold"


_NO_TARGET = "it needs a target and neither it, the rule nor its band gives one"


def _fund(rule: SweepRule, balances: Mapping[str, int], bands: Mapping[str, Band],
          wanted: Sequence[tuple[int, int, Participant, int, int, str]],
          skipped: list[tuple[str, str]]) -> list[SweepMove]:
    """Fund participants in priority order from what the header holds above its minimum now."""
    if not wanted:
        return []
    header_balance = balances.get(rule.header)
    if header_balance is None:
        skipped.extend((w[2].channel, "the header's balance is not known") for w in wanted)
        return []
    header_band = bands.get(rule.header)
    header_floor = 0 if header_band is None else header_band.min_minor
    left = max(0, header_balance - header_floor)
    moves: list[SweepMove] = []
    for _, _, participant, balance, fund_to, why in wanted:
        need = fund_to - balance
        amount = min(need, left)
        if amount <= 0:
            skipped.append((participant.channel,
                            f"{why}, but the header {rule.header} has nothing left above its "
                            f"minimum {_n(header_floor)} for it"))
            continue
        if amount < rule.min_move_minor:
            skipped.append((participant.channel,
                            f"{why}: {_n(amount)} is under the rule's minimum move "
                            f"{_n(rule.min_move_minor)}"))
            continue
        reason = f"{why}: {_n(amount)} from the header {rule.header}"
        if amount < need:
            reason += (f" ({_n(need - amount)} short: the header has no more above its "
                       f"minimum {_n(header_floor)})")
        moves.append(SweepMove(rule.header, participant.channel, rule.asset, amount, reason))
        left -= amount
    return moves


# The asset's scale for the reasons of the plan being made (`plan_sweep(scale=...)`); None:
# minor units. A context variable, so that plans made in several threads never mix.
_SCALE: ContextVar[int | None] = ContextVar("sweep_scale", default=None)


def _n(amount_minor: int) -> str:
    """An amount in a reason: 120,000.00 in the asset's scale when the caller gave it, else
    minor units with thousands separators."""
    scale = _SCALE.get()
    return f"{amount_minor:,}" if scale is None else money_text(amount_minor, scale)


# --- validation and parsing ----------------------------------------------------------------

# The figures each kind takes; any other set figure is refused, not ignored.
_RULE_FIGURES = {
    SweepKind.ZERO_BALANCING: {"two_way"},
    SweepKind.TARGET_BALANCE: {"target_minor"},
    SweepKind.THRESHOLD: {"target_minor", "threshold_minor", "floor_minor"},
    SweepKind.COLLAR: {"target_minor", "floor_minor", "cap_minor", "to_target"},
}
_UNSET: dict[str, object] = {"two_way": False, "target_minor": None, "threshold_minor": None,
                             "floor_minor": None, "cap_minor": None, "to_target": False}


def _check_rule(rule: SweepRule) -> None:
    def fail(field: str, detail: str, **facts: object) -> InvalidSweepRule:
        return InvalidSweepRule(detail, field=field, rule_id=str(rule.id)[:80], **facts)

    if not isinstance(rule.id, str) or not ID_PATTERN.match(rule.id):
        raise fail("id", "a rule id is lower-case letters, digits, '-' and '_'")
    try:
        kind = SweepKind(rule.kind)
    except ValueError:
        raise fail("kind", f"the kind is one of {[k.value for k in SweepKind]}",
                   kind=repr(rule.kind)[:80]) from None
    object.__setattr__(rule, "kind", kind)
    check_asset(rule.asset, InvalidSweepRule, "asset")
    check_channel(rule.header, InvalidSweepRule, "header")
    if not isinstance(rule.participants, tuple) or not rule.participants:
        raise fail("participants", "a rule has a tuple of one or more participants")
    if len(rule.participants) > PARTICIPANTS_MAX:
        raise fail("participants", f"at most {PARTICIPANTS_MAX} participants",
                   count=len(rule.participants))
    for name, unset in _UNSET.items():
        if name not in _RULE_FIGURES[kind] and getattr(rule, name) != unset:
            raise fail(name, f"{name} does not apply to a {kind.value} rule")
    for name in ("target_minor", "threshold_minor", "floor_minor", "cap_minor"):
        value = getattr(rule, name)
        if value is not None:
            check_minor(value, InvalidSweepRule, name, rule_id=rule.id)
    check_minor(rule.min_move_minor, InvalidSweepRule, "min_move_minor", rule_id=rule.id)
    for name in ("two_way", "to_target"):
        if not isinstance(getattr(rule, name), bool):
            raise fail(name, "expected true or false")
    floor, cap = rule.floor_minor, rule.cap_minor
    if kind is SweepKind.COLLAR:
        if floor is None or cap is None:
            raise fail("floor_minor" if floor is None else "cap_minor",
                       "a collar has both a floor and a cap")
        if floor > cap:
            raise fail("floor_minor", "the floor is at most the cap", floor_minor=floor,
                       cap_minor=cap)
    if kind is SweepKind.THRESHOLD:
        if floor is None and rule.threshold_minor is None:
            raise fail("threshold_minor", "a threshold rule has a threshold, a floor or both")
        if floor is not None and rule.threshold_minor is not None \
                and floor > rule.threshold_minor:
            raise fail("floor_minor", "the floor is at most the threshold", floor_minor=floor,
                       threshold_minor=rule.threshold_minor)
    channels: set[str] = set()
    for index, participant in enumerate(rule.participants):
        at = f"participants[{index}]"
        if not isinstance(participant, Participant):
            raise fail(at, "expected a Participant")
        channel = check_channel(participant.channel, InvalidSweepRule, f"{at}.channel")
        if channel == rule.header:
            raise fail(f"{at}.channel", "the header is not also a participant", channel=channel)
        if channel in channels:
            raise fail(f"{at}.channel", "each channel takes part once", channel=channel)
        channels.add(channel)
        priority = participant.priority
        if isinstance(priority, bool) or not isinstance(priority, int) \
                or not 0 <= priority <= PRIORITY_MAX:
            raise fail(f"{at}.priority", f"a priority is an integer from 0 to {PRIORITY_MAX}",
                       value=repr(priority)[:80])
        check_minor(participant.keep_minor, InvalidSweepRule, f"{at}.keep_minor",
                    rule_id=rule.id)
        if participant.keep_minor and kind is not SweepKind.ZERO_BALANCING:
            raise fail(f"{at}.keep_minor", f"keep_minor does not apply to a {kind.value} rule")
        target = participant.target_minor
        if target is not None:
            check_minor(target, InvalidSweepRule, f"{at}.target_minor", rule_id=rule.id)
            if kind is SweepKind.ZERO_BALANCING:
                raise fail(f"{at}.target_minor",
                           "target_minor does not apply to a zero_balancing rule")
    _check_targets(rule, fail)


_Fail = Callable[..., InvalidSweepRule]


def _check_targets(rule: SweepRule, fail: _Fail) -> None:
    """A target set on the rule or a participant lies between the rule's own figures."""
    low = rule.floor_minor
    high = rule.cap_minor if rule.kind is SweepKind.COLLAR else rule.threshold_minor
    targets = [("target_minor", rule.target_minor)] + [
        (f"participants[{i}].target_minor", p.target_minor)
        for i, p in enumerate(rule.participants)]
    for field, target in targets:
        if target is None:
            continue
        if low is not None and target < low:
            raise fail(field, "a target is at least the rule's floor", target_minor=target,
                       floor_minor=low)
        if high is not None and target > high:
            raise fail(field, "a target is at most the rule's cap or threshold",
                       target_minor=target, limit_minor=high)


def _rule_from_mapping(item: object, at: str) -> SweepRule:
    fields = Fields(item, InvalidSweepRule, at)
    fields.known({"id", "kind", "asset", "header", "participants", "two_way", "target_minor",
                  "threshold_minor", "floor_minor", "cap_minor", "to_target", "min_move_minor"})
    rule_id = fields.identifier("id")
    kind_text = fields.required("kind")
    try:
        kind = SweepKind(str(kind_text))
    except ValueError:
        raise fields.fail("kind", f"the kind is one of {[k.value for k in SweepKind]}",
                          kind=repr(kind_text)[:80]) from None
    participants: list[Participant] = []
    entries = list_of(fields.required("participants"), InvalidSweepRule,
                      fields.at("participants"), PARTICIPANTS_MAX)
    for index, entry in enumerate(entries):
        part = Fields(entry, InvalidSweepRule, f"{at}.participants[{index}]")
        part.known({"channel", "priority", "keep_minor", "target_minor"})
        participants.append(Participant(
            part.identifier("channel"), part.integer("priority", 0, PRIORITY_MAX, 0),
            part.minor("keep_minor", 0), part.optional_minor("target_minor")))
    figures = {"two_way": fields.flag("two_way", False),
               "target_minor": fields.optional_minor("target_minor"),
               "threshold_minor": fields.optional_minor("threshold_minor"),
               "floor_minor": fields.optional_minor("floor_minor"),
               "cap_minor": fields.optional_minor("cap_minor"),
               "to_target": fields.flag("to_target", False),
               "min_move_minor": fields.minor("min_move_minor", 0)}
    asset, header = fields.asset("asset"), fields.identifier("header")
    try:
        return SweepRule(rule_id, kind, asset, header, tuple(participants),
                         **figures)  # type: ignore[arg-type]
    except InvalidSweepRule as error:
        # The rule's own check names a field of the rule; the document's path leads to it.
        facts = dict(error.facts)
        facts["field"] = f"{at}.{facts.get('field', '')}"
        raise InvalidSweepRule(error.detail, **facts) from None
