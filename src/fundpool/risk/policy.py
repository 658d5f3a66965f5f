"""Risk policies as versioned data: the text a risk officer writes, its schema, its checks.

A policy is YAML (or JSON, which YAML reads too):

    thresholds: {review: 30, hold: 60, block: 90}     # a score at or above each, in order
    lists:
      blocked_payees: [mule-king, "Shell Co 7"]
    groups:
      - name: sanctioned payee
        when:
          - sanctions: {threshold: 85}
        outcome: block
      - name: burst to one payee
        when:
          - velocity: {per: payee, window: 10m, count_over: 5}
        score: 40
      - name: large first payout
        when:                                # AND within a group
          - new_payee: {}
          - amount: {over: {USD: "5000.00", EUR: "4500.00"}}
        score: 30

Each group whose conditions all hold *fires* (AND within a group, OR across groups) and either
adds its `score` or forces its `outcome`. The decision is the most severe of the forced
outcomes and of the outcome the summed score reaches (`allow` under `review`), with two
precedences written down in docs/risk.md: a forced `block` always wins, and a forced `allow`
(a cleared payee on an allow-list) wins over every review or hold but never over a block.

`parse_policy` refuses a policy with unknown fields, wrong types, out-of-order thresholds,
contradictory conditions (`amount over 5,000 and under 1,000` in one group, two asset filters
with nothing in common), unreachable groups (the same conditions twice, a score that cannot
change any decision) or lists it names but does not define, with the line at fault. It never
changes anything: the service keeps the active policy when a draft is refused.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from fundpool.core.errors import FundpoolError
from fundpool.core.money import parse_amount

POLICY_TEXT_MAX = 256 * 1024  # characters of one policy's text
GROUPS_MAX = 200
DURATION_MAX_US = 90 * 86_400_000_000  # the longest window a rule may look back


class Outcome(StrEnum):
    """What a decision does with the payment, mildest first."""

    ALLOW = "allow"  # goes on to routing
    REVIEW = "review"  # held, and queued for a risk officer
    HOLD = "hold"  # held: an urgent case, nothing moves until a risk officer decides
    BLOCK = "block"  # rejected, with the reasons

    @property
    def severity(self) -> int:
        return _SEVERITY[self]


_SEVERITY = {Outcome.ALLOW: 0, Outcome.REVIEW: 1, Outcome.HOLD: 2, Outcome.BLOCK: 3}


class InvalidPolicy(FundpoolError):
    code = "invalid_policy"
    title = "the risk policy is not valid; the active policy stays"


_DURATION = re.compile(r"^\s*(\d{1,9})\s*(s|m|h|d)\s*$")
_UNIT_US = {"s": 1_000_000, "m": 60_000_000, "h": 3_600_000_000, "d": 86_400_000_000}


def duration_us(text: str) -> int:
    """"90s", "10m", "24h", "7d" in microseconds (at least a second, at most 90 days)."""
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a duration such as 90s, 10m, 24h or 7d")
    value = int(match.group(1)) * _UNIT_US[match.group(2)]
    if not 1_000_000 <= value <= DURATION_MAX_US:
        raise ValueError(f"{text!r} is outside 1s to 90d")
    return value


Duration = Annotated[str, Field(min_length=2, max_length=12)]
Per = Literal["payee", "initiator", "destination", "channel"]
Amounts = Mapping[str, str]  # asset -> decimal text at the asset's scale


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class PaymentMatch(_Strict):
    """Which payments a group looks at: kinds, assets, channels (the rail the caller named)."""

    kinds: tuple[Literal["payout", "deposit", "internal", "bridge"], ...] = ()
    assets: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()


class AmountRule(_Strict):
    """The payment's own amount: above `over` and/or below `under` (per asset)."""

    over: Amounts = Field(default_factory=dict)
    under: Amounts = Field(default_factory=dict)


class RoundAmount(_Strict):
    """The amount is a whole multiple of `multiple` (per asset): "round" sums, as fraud
    often asks for."""

    multiple: Amounts


class DailyTotal(_Strict):
    """The day's total (UTC) per payee, initiator, destination or channel (the rail the
    caller named), this payment included."""

    per: Per
    over: Amounts


class Velocity(_Strict):
    """In the sliding `window`, this payment included: more than `count_over` payments, or
    more than `amount_over` in total, per payee, initiator or destination."""

    per: Per
    window: Duration
    count_over: int | None = Field(default=None, ge=0)
    amount_over: Amounts | None = None


class Duplicate(_Strict):
    """The same payee, asset, amount and reference seen within `window`."""

    window: Duration


class NewPayee(_Strict):
    """No earlier payout to this payee (in the history the engine keeps)."""


class DestinationChanged(_Strict):
    """The payee is known, and this payout's destination is not the one it was last paid
    at, or it changed within `within`."""

    within: Duration = "7d"


class AbnormalAmount(_Strict):
    """The amount is more than `times` the payee's mean, after at least `min_history`
    earlier payouts in this asset."""

    times: int = Field(ge=2, le=1_000)
    min_history: int = Field(default=3, ge=1, le=10_000)


class Listed(_Strict):
    """The payment's `field` is (or, with `absent`, is not) on the policy's list `list`."""

    field: Literal["payee", "destination", "country", "initiator"]
    list: str = Field(min_length=1, max_length=100)
    absent: bool = False


class Kyc(_Strict):
    """The counterparty's KYC/KYB state is one of `states` (`none`: the registry has no
    record of it)."""

    states: tuple[Literal["none", "pending", "rejected", "expired", "verified"], ...] = \
        Field(min_length=1)


class Jurisdiction(_Strict):
    """The counterparty's country (ISO 3166 alpha-2, from the party registry, or the
    payment's `country` metadata) is one of `countries`."""

    countries: tuple[str, ...] = Field(min_length=1)


class Sanctions(_Strict):
    """A hit at or above `threshold` (0-100) on a loaded sanctions list for the
    counterparty's name."""

    threshold: int = Field(default=85, ge=50, le=100)


class Ring(_Strict):
    """This payout's payee, linked through shared accounts (payees paid into the same
    destination, and payees sharing theirs), belongs to a group of at least `min_payees`
    payees: a mule ring's shape."""

    min_payees: int = Field(default=3, ge=2, le=10_000)


class Anomaly(_Strict):
    """The online anomaly model (risk/anomaly.py) scores the payment above `score_over`
    (0 to 1; no score while the model warms up, and then the condition does not hold)."""

    score_over: float = Field(ge=0.5, lt=1.0)


class Condition(_Strict):
    """One condition: exactly one of the kinds below, as `- kind: {parameters}`."""

    payment: PaymentMatch | None = None
    amount: AmountRule | None = None
    round_amount: RoundAmount | None = None
    daily_total: DailyTotal | None = None
    velocity: Velocity | None = None
    duplicate: Duplicate | None = None
    new_payee: NewPayee | None = None
    destination_changed: DestinationChanged | None = None
    abnormal_amount: AbnormalAmount | None = None
    listed: Listed | None = None
    kyc: Kyc | None = None
    jurisdiction: Jurisdiction | None = None
    sanctions: Sanctions | None = None
    anomaly: Anomaly | None = None
    ring: Ring | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Condition:
        given = [name for name in type(self).model_fields if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(
                "a condition is exactly one of: " + ", ".join(type(self).model_fields)
                + (f" (this one has {', '.join(given)})" if given else " (this one is empty)"))
        return self

    @property
    def kind(self) -> str:
        return next(n for n in type(self).model_fields if getattr(self, n) is not None)

    @property
    def spec(self) -> _Strict:
        spec: _Strict = getattr(self, self.kind)
        return spec


class LowerLimit(_Strict):
    """An automatic response: for `for` from the moment the group fires, payouts per
    `per` (the payee, initiator or destination of the payment that fired it) above `amount`
    are held for a risk officer."""

    per: Per
    amount: Amounts
    for_: Duration = Field(alias="for")


class Response(_Strict):
    """What a group does besides its score or outcome when it fires: raise a graded alert
    into the alert bar, and/or lower a limit for a while."""

    alert: Literal["info", "warning", "critical"] | None = None
    lower_limit: LowerLimit | None = None


class Group(_Strict):
    name: str = Field(min_length=1, max_length=100)
    when: tuple[Condition, ...] = Field(min_length=1, max_length=20)
    score: int | None = Field(default=None, ge=1, le=1_000)
    outcome: Outcome | None = None
    description: str | None = Field(default=None, max_length=2_000)
    respond: Response | None = None

    @model_validator(mode="after")
    def _score_or_outcome(self) -> Group:
        if (self.score is None) == (self.outcome is None):
            raise ValueError("a group either adds a `score` or forces an `outcome`, not both "
                             "and not neither")
        return self


class Thresholds(_Strict):
    review: int = Field(ge=1, le=100_000)
    hold: int = Field(ge=1, le=100_000)
    block: int = Field(ge=1, le=100_000)

    @model_validator(mode="after")
    def _in_order(self) -> Thresholds:
        if not self.review < self.hold < self.block:
            raise ValueError(f"thresholds must rise: review ({self.review}) < hold "
                             f"({self.hold}) < block ({self.block})")
        return self


class PolicyDocument(_Strict):
    description: str | None = Field(default=None, max_length=2_000)
    thresholds: Thresholds
    # How long a case may wait for a decision, per outcome (default: review 4h, hold 1h).
    sla: Mapping[Literal["review", "hold"], Duration] = Field(default_factory=dict)
    lists: Mapping[str, tuple[str, ...]] = Field(default_factory=dict)
    groups: tuple[Group, ...] = Field(min_length=1, max_length=GROUPS_MAX)


@dataclass(frozen=True, slots=True)
class Policy:
    """A checked policy: its document, its text as written, and the amounts of its rules in
    minor units per asset (`amounts[(group, condition, field)]`)."""

    document: PolicyDocument
    text: str
    amounts: Mapping[tuple[int, int, str], Mapping[str, int]]
    lists: Mapping[str, frozenset[str]]

    @property
    def longest_window_us(self) -> int:
        """The longest look-back any velocity or duplicate rule needs."""
        longest = 0
        for group in self.document.groups:
            for condition in group.when:
                spec = condition.spec
                if isinstance(spec, Velocity | Duplicate):
                    longest = max(longest, duration_us(spec.window))
        return longest

    @property
    def windows(self) -> frozenset[int]:
        """The spans of the velocity rules: the windows the features keep."""
        return frozenset(duration_us(c.spec.window) for g in self.document.groups
                         for c in g.when if isinstance(c.spec, Velocity))

    @property
    def scores_anomaly(self) -> bool:
        return any(c.anomaly is not None for g in self.document.groups for c in g.when)


def parse_policy(text: str, scales: Mapping[str, int]) -> Policy:
    """Check a policy's text against the schema and the checks above; `scales` are the
    pool's assets and their decimals. Raises `InvalidPolicy` naming the line at fault."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidPolicy("the policy is empty", line=1)
    if len(text) > POLICY_TEXT_MAX:
        raise InvalidPolicy(f"the policy is longer than {POLICY_TEXT_MAX} characters")
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.AliasEvent):  # a few bytes could expand to gigabytes
                mark = event.start_mark
                raise InvalidPolicy("a policy uses no YAML anchors or aliases: write each "
                                    "value out", line=None if mark is None else mark.line + 1)
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        raise InvalidPolicy(f"the policy is not YAML: {getattr(error, 'problem', error)}",
                            line=None if mark is None else mark.line + 1) from None
    if not isinstance(data, dict):
        raise InvalidPolicy("a policy is a mapping with `thresholds` and `groups`", line=1)
    try:
        document = PolicyDocument.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        message = first["msg"].removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            message = f"unknown field {first['loc'][-1]!r}"
        raise InvalidPolicy(f"{where or 'policy'}: {message}", field=where or None,
                            line=_line(node, first["loc"])) from None
    for outcome, given in document.sla.items():
        try:
            duration_us(given)
        except ValueError as error:
            raise InvalidPolicy(f"sla.{outcome}: {error}",
                                line=_line(node, ("sla", outcome))) from None
    amounts = _amounts(document, node, scales)
    _check(document, node, amounts)
    lists = {name: frozenset(list_key(v) for v in values)
             for name, values in document.lists.items()}
    return Policy(document, text, amounts, lists)


def list_key(value: str) -> str:
    """How a list entry, a party's name, or the value compared with them is compared:
    trimmed, spaces collapsed, case-folded."""
    return " ".join(value.split()).casefold()


def _line(node: yaml.Node | None, loc: Sequence[int | str]) -> int | None:
    """The line (from 1) of the YAML node at `loc`, or of the deepest one found on the way."""
    line = None if node is None else node.start_mark.line + 1
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            found = next((v for k, v in node.value if getattr(k, "value", None) == str(part)),
                         None)
            key = next((k for k, _ in node.value if getattr(k, "value", None) == str(part)),
                       None)
            if found is None:
                return line
            line = (key or found).start_mark.line + 1
            node = found
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) \
                and 0 <= part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def _amounts(document: PolicyDocument, node: yaml.Node | None,
             scales: Mapping[str, int]) -> dict[tuple[int, int, str], dict[str, int]]:
    out: dict[tuple[int, int, str], dict[str, int]] = {}
    for g, group in enumerate(document.groups):
        for c, condition in enumerate(group.when):
            spec = condition.spec
            at = ("groups", g, "when", c, condition.kind)
            for field_name in ("over", "under", "amount_over", "multiple"):
                given = getattr(spec, field_name, None)
                if given is None or not isinstance(given, Mapping):
                    continue
                loc = (*at, field_name)
                parsed: dict[str, int] = {}
                for asset, text in given.items():
                    if asset not in scales:
                        raise InvalidPolicy(f"{asset!r} is not an asset of the pool",
                                            line=_line(node, (*loc, asset)), asset=asset)
                    try:
                        parsed[asset] = parse_amount(str(text), scales[asset], asset=asset)
                    except FundpoolError as error:
                        raise InvalidPolicy(f"{asset} {text!r}: {error.detail}",
                                            line=_line(node, (*loc, asset)),
                                            asset=asset) from None
                out[(g, c, field_name)] = parsed
            if isinstance(spec, Velocity | Duplicate | DestinationChanged):
                window = spec.within if isinstance(spec, DestinationChanged) else spec.window
                try:
                    duration_us(window)
                except ValueError as error:
                    raise InvalidPolicy(str(error), line=_line(node, at)) from None
            if isinstance(spec, Velocity) and spec.count_over is None \
                    and spec.amount_over is None:
                raise InvalidPolicy("a velocity rule needs `count_over` or `amount_over`",
                                    line=_line(node, at))
            if isinstance(spec, RoundAmount) and (
                    not spec.multiple or 0 in out[(g, c, "multiple")].values()):
                raise InvalidPolicy("a round-amount rule needs a multiple above zero per asset",
                                    line=_line(node, at))
            if isinstance(spec, AmountRule) and not spec.over and not spec.under:
                raise InvalidPolicy("an amount rule needs `over` or `under`",
                                    line=_line(node, at))
            if isinstance(spec, PaymentMatch):
                unknown = [a for a in spec.assets if a not in scales]
                if unknown:
                    raise InvalidPolicy(f"{unknown[0]!r} is not an asset of the pool",
                                        line=_line(node, at), asset=unknown[0])
        respond = group.respond
        if respond is not None and respond.lower_limit is not None:
            limit = respond.lower_limit
            where: tuple[str | int, ...] = ("groups", g, "respond", "lower_limit")
            try:
                duration_us(limit.for_)
            except ValueError as error:
                raise InvalidPolicy(str(error), line=_line(node, (*where, "for"))) from None
            parsed = {}
            for asset, text in limit.amount.items():
                if asset not in scales:
                    raise InvalidPolicy(f"{asset!r} is not an asset of the pool",
                                        line=_line(node, (*where, "amount", asset)),
                                        asset=asset)
                try:
                    parsed[asset] = parse_amount(str(text), scales[asset], asset=asset)
                except FundpoolError as error:
                    raise InvalidPolicy(f"{asset} {text!r}: {error.detail}",
                                        line=_line(node, (*where, "amount", asset)),
                                        asset=asset) from None
            if not parsed:
                raise InvalidPolicy("a lowered limit names an amount per asset",
                                    line=_line(node, where))
            out[(g, -1, "lower_limit")] = parsed
    return out


def _check(document: PolicyDocument, node: yaml.Node | None,
           amounts: Mapping[tuple[int, int, str], Mapping[str, int]]) -> None:
    seen: dict[str, int] = {}
    for g, group in enumerate(document.groups):
        line = _line(node, ("groups", g))
        if group.name in seen:
            raise InvalidPolicy(f"two groups are named {group.name!r}", line=line,
                                group=group.name)
        seen[group.name] = g
        _contradictions(g, group, amounts, line)
        for condition in group.when:
            spec = condition.spec
            if isinstance(spec, Listed) and spec.list not in document.lists:
                raise InvalidPolicy(f"group {group.name!r} names the list {spec.list!r}, "
                                    "which `lists` does not define", line=line,
                                    group=group.name, list=spec.list)
    shapes: dict[str, str] = {}
    for g, group in enumerate(document.groups):
        shape = repr(sorted(c.model_dump_json() for c in group.when))
        if shape in shapes:
            raise InvalidPolicy(
                f"group {group.name!r} has the same conditions as {shapes[shape]!r}: one of "
                "them can never change a decision the other does not", group=group.name,
                line=_line(node, ("groups", g)))
        shapes[shape] = group.name
    total = sum(group.score or 0 for group in document.groups)
    if total and total < document.thresholds.review:
        raise InvalidPolicy(
            f"the scores of all groups together ({total}) never reach the review threshold "
            f"({document.thresholds.review}): no score could change a decision",
            line=_line(node, ("thresholds",)))


def _contradictions(g: int, group: Group,
                    amounts: Mapping[tuple[int, int, str], Mapping[str, int]],
                    line: int | None) -> None:
    """Conditions of one group that can never hold together."""
    over: dict[str, int] = {}
    under: dict[str, int] = {}
    assets: set[str] | None = None
    kinds: set[str] | None = None
    for c, condition in enumerate(group.when):
        spec = condition.spec
        if isinstance(spec, AmountRule):  # the payment's own amount (not a day's total)
            for asset, value in amounts.get((g, c, "over"), {}).items():
                over[asset] = max(over.get(asset, value), value)
            for asset, value in amounts.get((g, c, "under"), {}).items():
                under[asset] = min(under.get(asset, value), value)
        if isinstance(spec, PaymentMatch):
            if spec.assets:
                assets = set(spec.assets) if assets is None else assets & set(spec.assets)
            if spec.kinds:
                kinds = set(spec.kinds) if kinds is None else kinds & set(spec.kinds)
    for asset in over.keys() & under.keys():
        if over[asset] + 1 >= under[asset]:
            raise InvalidPolicy(
                f"group {group.name!r} asks for {asset} amounts over {over[asset]} and under "
                f"{under[asset]} (minor units): no amount is both", line=line,
                group=group.name, asset=asset)
    if assets is not None and not assets:
        raise InvalidPolicy(f"group {group.name!r} filters on assets with nothing in common",
                            line=line, group=group.name)
    if kinds is not None and not kinds:
        raise InvalidPolicy(f"group {group.name!r} filters on kinds with nothing in common",
                            line=line, group=group.name)
    if assets is not None:
        named = {a for key in amounts if key[0] == g and key[1] >= 0 for a in amounts[key]}
        if named and not named & assets:
            raise InvalidPolicy(
                f"group {group.name!r} sets amounts only for assets its filter excludes",
                line=line, group=group.name)


def policy_diff(old: str | None, new: str) -> list[str]:
    """A unified diff of two policies' texts, line by line, as the editor shows it."""
    import difflib

    return list(difflib.unified_diff((old or "").splitlines(), new.splitlines(),
                                     "active", "draft", lineterm=""))


def summary(policy: Policy) -> dict[str, Any]:
    """What a policy holds, in figures: groups, conditions by kind, lists."""
    kinds: dict[str, int] = {}
    for group in policy.document.groups:
        for condition in group.when:
            kinds[condition.kind] = kinds.get(condition.kind, 0) + 1
    return {"groups": len(policy.document.groups), "conditions": kinds,
            "lists": {name: len(values) for name, values in policy.lists.items()},
            "thresholds": policy.document.thresholds.model_dump()}
