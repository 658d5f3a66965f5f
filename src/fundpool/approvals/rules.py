"""Approval rules as versioned data: the text a treasurer writes, its schema, its checks, and
which stages a payment waiting for approval must pass (docs/approvals.md).

A rule set is YAML:

    groups:                        # named groups of usernames (N: the group's size)
      treasury-leads: [approver, approver-2, approver-3]
    governance: {quorum: 2, roles: [admin, risk]}   # who activates the NEXT version
    totp_above: {USD: "50000.00"}  # an approval of at least this needs a TOTP code
    rules:
      - id: large-payouts
        name: Large payouts need two treasury leads
        when:                      # OR across blocks, AND within one block
          - kind: [payout]
            amount_at_least: {USD: "100000.00", EUR: 9000000}
          - risk_grade: [review, hold]
        require: {approvers: 2, group: treasury-leads}   # or roles: [approver, admin]
        delay_s: 600
        cancellable_by: [risk, admin]

Every rule whose `when` holds for a payment adds its stage, in the order written; a rule with
no `when` (or `when: [{}]`) always holds. `parse_rules` refuses, with the line and the field at
fault, and never changes anything (the service keeps the active version): unknown fields,
wrong types, keys written twice, YAML anchors, aliases and merge keys, text over 256 KiB,
empty or unknown groups, a user twice in a group, more approvers than a group has, a role the
pool does not know, a block that can match no payment (bounds that exclude each other, amount
maps and asset filters with no asset in common), a delay without anyone to cancel it (or
cancellers without a delay), and duplicate rule ids. `check_quorums` refuses, given how many
users hold each role, a rule or a governance that asks for more people than there are.

Decisions (docs/approvals.md, "Approval rules"):

- Amounts are integers (minor units: `USD: 1000000`) or decimal text at the asset's scale with
  its decimal point (`USD: "10000.00"`), read with the pool's `scales`. Text without the point
  (`USD: "1000000"`) is refused for an asset with decimals: quoted or not, it would read 100
  times apart. A YAML float (`10000.00` unquoted) is refused: it is not exact.
- An asset that an amount condition does not name does not match it; neither does a payment
  without a reporting amount (no rate), a channel, a counterparty, a risk grade or a score.
- `governance` is required: a version that forgot it would silently fall back to the default
  (one admin) for its successor.
- An empty rule set (`rules: []`) asks nothing of any payment; the pool's
  `approval_thresholds` still apply. More generally, the thresholds are a floor: a payment
  that no rule matches and that reaches its asset's threshold waits for the legacy stage (one
  approver holding `payments:approve`), exactly as when no rule set was ever activated; a
  payment that some rule matches is held to the rules' stages only (`required_stages`).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError

from fundpool.auth.roles import ROLE_PERMISSIONS, Permission, Role
from fundpool.core.errors import FundpoolError
from fundpool.core.money import AMOUNT_MAX_MINOR, ASSET_CODE_PATTERN, parse_amount

RULES_TEXT_MAX_BYTES = 256 * 1024  # UTF-8 bytes of one version's text
RULES_MAX = 200
BLOCKS_MAX = 20  # `when` blocks of one rule
VALUES_MAX = 100  # entries of one condition's list or map
GROUPS_MAX = 50
GROUP_MEMBERS_MAX = 100
APPROVERS_MAX = 20  # M of one stage
QUORUM_MAX = 10
DELAY_MAX_S = 30 * 86_400
RISK_SCORE_MAX = 1_000
TEXT_MAX = 200  # characters of a name, a counterparty, a metadata value
DESCRIPTION_MAX = 2_000
LEGACY_RULE_ID = "legacy"

KINDS = ("deposit", "payout", "internal", "bridge")
GRADES = ("allow", "review", "hold")


class InvalidApprovalRules(FundpoolError):
    """Facts: `line` (from 1, where YAML gives it), `field` (`rules[0].require.approvers`),
    `reason`; and the rule, group, asset or role at fault where there is one."""

    code = "invalid_approval_rules"
    title = "the approval rules are not valid; the active rules stay"


def _refuse(reason: str, *, field: str | None = None, line: int | None = None,
            **facts: object) -> InvalidApprovalRules:
    return InvalidApprovalRules(f"{field}: {reason}" if field else reason, line=line,
                                field=field, reason=reason, **facts)


# --- values ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Facts:
    """What a rule may look at, for one payment waiting for approval."""

    kind: str
    asset: str
    amount_minor: int
    reporting_amount_minor: int | None  # in the pool's reporting currency (None: no rate)
    channel: str | None
    counterparty: str | None
    initiator: frozenset[str]  # the initiator's names and ids, e.g. {"alice", "user:3f2…"}
    risk_grade: str | None  # allow | review | hold (None: not screened)
    risk_score: int | None
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Stage:
    """One matched rule: M approvers of N eligible (by role, or a named group's members),
    then how long the approved payment waits, and who may cancel it meanwhile."""

    rule_id: str
    name: str
    approvers: int  # M
    roles: tuple[str, ...]  # eligible: any user holding one of these roles, or
    group: str | None  # a named group's
    members: tuple[str, ...]  # usernames
    delay_s: int = 0
    cancellable_by: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.approvers, int) or isinstance(self.approvers, bool) \
                or not 1 <= self.approvers <= APPROVERS_MAX:
            raise ValueError(f"stage {self.rule_id!r}: approvers is 1 to {APPROVERS_MAX}")
        if bool(self.roles) == (self.group is not None):
            raise ValueError(f"stage {self.rule_id!r}: eligible by roles or by a group")
        if (self.group is None) != (not self.members):
            raise ValueError(f"stage {self.rule_id!r}: a group has members, roles have none")
        if self.group is not None and self.approvers > len(self.members):
            raise ValueError(f"stage {self.rule_id!r}: more approvers than the group's members")
        if not isinstance(self.delay_s, int) or not 0 <= self.delay_s <= DELAY_MAX_S:
            raise ValueError(f"stage {self.rule_id!r}: delay_s is 0 to {DELAY_MAX_S}")
        if (self.delay_s > 0) != bool(self.cancellable_by):
            raise ValueError(f"stage {self.rule_id!r}: a delay, and only a delay, names who "
                             "may cancel")

    def to_doc(self) -> dict[str, Any]:
        """JSON-safe; `Stage.from_doc(stage.to_doc()) == stage`."""
        return {"rule_id": self.rule_id, "name": self.name, "approvers": self.approvers,
                "roles": list(self.roles), "group": self.group, "members": list(self.members),
                "delay_s": self.delay_s, "cancellable_by": list(self.cancellable_by)}

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> Stage:
        """A stage as `to_doc` wrote it; raises ValueError for anything else."""
        def text(key: str) -> str:
            value = doc.get(key)
            if not isinstance(value, str):
                raise ValueError(f"stage doc: {key} is not text: {value!r}")
            return value

        def texts(key: str) -> tuple[str, ...]:
            value = doc.get(key)
            if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
                raise ValueError(f"stage doc: {key} is not a list of text: {value!r}")
            return tuple(value)

        def number(key: str) -> int:
            value = doc.get(key)
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValueError(f"stage doc: {key} is not an integer: {value!r}")
            return value

        unknown = set(doc) - {"rule_id", "name", "approvers", "roles", "group", "members",
                              "delay_s", "cancellable_by"}
        if unknown:
            raise ValueError(f"stage doc: unknown fields {sorted(unknown)}")
        group = doc.get("group")
        if group is not None and not isinstance(group, str):
            raise ValueError(f"stage doc: group is not text: {group!r}")
        return cls(rule_id=text("rule_id"), name=text("name"), approvers=number("approvers"),
                   roles=texts("roles"), group=group, members=texts("members"),
                   delay_s=number("delay_s"), cancellable_by=texts("cancellable_by"))


@dataclass(frozen=True, slots=True)
class Governance:
    """Who activates the next version: `quorum` people holding one of `roles`, none of them
    its author."""

    quorum: int
    roles: tuple[str, ...]


DEFAULT_GOVERNANCE = Governance(quorum=1, roles=("admin",))  # before any version is active


@dataclass(frozen=True, slots=True)
class Block:
    """One `when` block: every condition given must hold (None: not given). Amounts are in
    minor units; counterparties are case-folded."""

    kind: frozenset[str] | None = None
    asset: frozenset[str] | None = None
    channel: frozenset[str] | None = None
    counterparty: frozenset[str] | None = None
    initiator: frozenset[str] | None = None
    amount_at_least: Mapping[str, int] | None = None
    amount_below: Mapping[str, int] | None = None
    reporting_amount_at_least: int | None = None
    reporting_amount_below: int | None = None
    risk_grade: frozenset[str] | None = None
    risk_score_at_least: int | None = None
    metadata: Mapping[str, str] | None = None

    def matches(self, facts: Facts) -> bool:
        return (_within(self.kind, facts.kind) and _within(self.asset, facts.asset)
                and _within(self.channel, facts.channel)
                and _within(self.counterparty, counterparty_key(facts.counterparty))
                and (self.initiator is None or not self.initiator.isdisjoint(facts.initiator))
                and _at_least(self.amount_at_least, facts.asset, facts.amount_minor)
                and _below(self.amount_below, facts.asset, facts.amount_minor)
                and (self.reporting_amount_at_least is None
                     or (facts.reporting_amount_minor is not None
                         and facts.reporting_amount_minor >= self.reporting_amount_at_least))
                and (self.reporting_amount_below is None
                     or (facts.reporting_amount_minor is not None
                         and facts.reporting_amount_minor < self.reporting_amount_below))
                and _within(self.risk_grade, facts.risk_grade)
                and (self.risk_score_at_least is None
                     or (facts.risk_score is not None
                         and facts.risk_score >= self.risk_score_at_least))
                and (self.metadata is None
                     or all(facts.metadata.get(k) == v for k, v in self.metadata.items())))


def _within(allowed: frozenset[str] | None, value: str | None) -> bool:
    return allowed is None or (value is not None and value in allowed)


def _at_least(floors: Mapping[str, int] | None, asset: str, amount_minor: int) -> bool:
    if floors is None:
        return True
    floor = floors.get(asset)
    return floor is not None and amount_minor >= floor


def _below(ceilings: Mapping[str, int] | None, asset: str, amount_minor: int) -> bool:
    if ceilings is None:
        return True
    ceiling = ceilings.get(asset)
    return ceiling is not None and amount_minor < ceiling


def counterparty_key(value: str | None) -> str | None:
    """How a counterparty is compared: exactly, but for surrounding spaces and case."""
    return None if value is None else value.strip().casefold()


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    name: str
    when: tuple[Block, ...]  # OR across blocks
    stage: Stage
    description: str | None = None
    line: int | None = field(default=None, compare=False)  # of `require.approvers`

    def matches(self, facts: Facts) -> bool:
        return any(block.matches(facts) for block in self.when)


@dataclass(frozen=True, slots=True)
class RuleSet:
    rules: tuple[Rule, ...]
    groups: Mapping[str, tuple[str, ...]]
    governance: Governance
    totp_above: Mapping[str, int]  # per asset, minor units: an approval of at least this
    governance_line: int | None = field(default=None, compare=False)

    def stages_for(self, facts: Facts) -> tuple[Stage, ...]:
        """Every matching rule's stage, in the order written."""
        return tuple(rule.stage for rule in self.rules if rule.matches(facts))

    def totp_needed(self, asset: str, amount_minor: int) -> bool:
        threshold = self.totp_above.get(asset)
        return threshold is not None and amount_minor >= threshold

    def eligible_count(self, stage: Stage, role_sizes: Mapping[str, int]) -> int:
        return eligible_count(stage, role_sizes)


def eligible_count(stage: Stage, role_sizes: Mapping[str, int]) -> int:
    """N: the group's size, or the users holding one of the stage's roles. `role_sizes` counts
    the users per role; a user holding two of a stage's roles is counted twice, so the caller
    that knows the users should count distinct ones (N is then an upper bound otherwise)."""
    if stage.group is not None:
        return len(stage.members)
    return sum(role_sizes.get(role, 0) for role in stage.roles)


def check_quorums(rule_set: RuleSet, role_sizes: Mapping[str, int]) -> None:
    """Refuse a rule set that asks a stage (by roles) or the governance for more people than
    hold the roles today: a payment it matches, or the next version, could never pass."""
    for r, rule in enumerate(rule_set.rules):
        stage = rule.stage
        eligible = eligible_count(stage, role_sizes)
        if stage.approvers > eligible:
            raise _refuse(
                f"rule {rule.id!r} needs {stage.approvers} approvers holding "
                f"{' or '.join(stage.roles)}, and {eligible} users hold them",
                field=f"rules[{r}].require.approvers", line=rule.line, rule=rule.id,
                approvers=stage.approvers, eligible=eligible)
    governance = rule_set.governance
    voters = sum(role_sizes.get(role, 0) for role in governance.roles)
    if governance.quorum > voters:
        raise _refuse(f"the governance needs {governance.quorum} voters holding "
                      f"{' or '.join(governance.roles)}, and {voters} users hold them",
                      field="governance.quorum", line=rule_set.governance_line,
                      quorum=governance.quorum, eligible=voters)


def approving_roles(role_permissions: Mapping[Role, frozenset[Permission]] = ROLE_PERMISSIONS
                    ) -> tuple[str, ...]:
    """Every role holding `payments:approve`, in the roles table's order."""
    return tuple(role.value for role in Role
                 if Permission.PAYMENTS_APPROVE in role_permissions.get(role, frozenset()))


def legacy_stage(role_permissions: Mapping[Role, frozenset[Permission]] = ROLE_PERMISSIONS
                 ) -> Stage:
    """The one stage of a payment that reached its pool's approval threshold and that no rule
    matched (or no rule set was ever activated): 1 approver holding `payments:approve`."""
    return Stage(rule_id=LEGACY_RULE_ID, name="Pool approval threshold", approvers=1,
                 roles=approving_roles(role_permissions), group=None, members=())


def required_stages(rule_set: RuleSet | None, facts: Facts, *, over_threshold: bool
                    ) -> tuple[Stage, ...]:
    """The stages a payment waits for: the matching rules' stages; when none matches (or no
    rule set is active), the legacy stage if the payment reached its pool's approval
    threshold (`over_threshold`, from `PoolConfig.approval_required`); else none."""
    stages = () if rule_set is None else rule_set.stages_for(facts)
    if stages:
        return stages
    return (legacy_stage(),) if over_threshold else ()


def diff_rules(old_text: str, new_text: str, old_name: str, new_name: str) -> str:
    """A unified diff of two versions' texts ("" when they are the same)."""
    lines = difflib.unified_diff(old_text.splitlines(), new_text.splitlines(), old_name,
                                 new_name, lineterm="")
    out = "\n".join(lines)
    return out + "\n" if out else ""


# --- the schema ------------------------------------------------------------------------------


Slug = Annotated[StrictStr, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
Name = Annotated[StrictStr, Field(min_length=1, max_length=100)]  # usernames, ids, roles
Text = Annotated[StrictStr, Field(min_length=1, max_length=TEXT_MAX)]
Names = Annotated[tuple[Name, ...], Field(min_length=1, max_length=VALUES_MAX)]
Amounts = Annotated[dict[StrictStr, Any], Field(min_length=1, max_length=VALUES_MAX)]
Minor = Annotated[StrictInt, Field(ge=0, le=AMOUNT_MAX_MINOR)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class _Block(_Strict):
    kind: Annotated[tuple[Literal["deposit", "payout", "internal", "bridge"], ...],
                    Field(min_length=1, max_length=len(KINDS))] | None = None
    asset: Names | None = None
    channel: Names | None = None
    counterparty: Annotated[tuple[Text, ...], Field(min_length=1, max_length=VALUES_MAX)] \
        | None = None
    initiator: Names | None = None
    amount_at_least: Amounts | None = None
    amount_below: Amounts | None = None
    reporting_amount_at_least: Minor | None = None
    reporting_amount_below: Minor | None = None
    risk_grade: Annotated[tuple[Literal["allow", "review", "hold"], ...],
                          Field(min_length=1, max_length=len(GRADES))] | None = None
    risk_score_at_least: Annotated[StrictInt, Field(ge=0, le=RISK_SCORE_MAX)] | None = None
    metadata: Annotated[dict[Name, Annotated[StrictStr, Field(max_length=TEXT_MAX)]],
                        Field(min_length=1, max_length=VALUES_MAX)] | None = None


class _Require(_Strict):
    approvers: StrictInt
    roles: Annotated[tuple[Name, ...], Field(max_length=VALUES_MAX)] | None = None
    group: StrictStr | None = None


class _Rule(_Strict):
    id: Slug
    name: Text
    description: Annotated[StrictStr, Field(max_length=DESCRIPTION_MAX)] | None = None
    when: Annotated[tuple[_Block, ...], Field(min_length=1, max_length=BLOCKS_MAX)] = \
        (_Block(),)
    require: _Require
    delay_s: Annotated[StrictInt, Field(ge=0, le=DELAY_MAX_S)] = 0
    cancellable_by: Annotated[tuple[Name, ...], Field(max_length=VALUES_MAX)] = ()


class _Governance(_Strict):
    quorum: StrictInt
    roles: Names


class _Document(_Strict):
    description: Annotated[StrictStr, Field(max_length=DESCRIPTION_MAX)] | None = None
    groups: Annotated[dict[Slug, tuple[Name, ...]], Field(max_length=GROUPS_MAX)] = \
        Field(default_factory=dict)
    governance: _Governance
    totp_above: Annotated[dict[StrictStr, Any], Field(max_length=VALUES_MAX)] = \
        Field(default_factory=dict)
    rules: Annotated[tuple[_Rule, ...], Field(max_length=RULES_MAX)]


# --- parsing ---------------------------------------------------------------------------------


Loc = Sequence[int | str]


def parse_rules(text: str, *, scales: Mapping[str, int] | None = None,
                known_roles: Iterable[str] = tuple(Role)) -> RuleSet:
    """Check a rule set's text; `scales` are the pool's assets and their decimals (None:
    amounts are integers only, and any well-formed asset code is accepted). Raises
    `InvalidApprovalRules` naming the line and the field at fault."""
    node, data = _load(text)
    try:
        document = _Document.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        loc = first["loc"]
        reason = first["msg"].removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            reason = f"unknown field {loc[-1]!r}"
        elif first["type"] == "missing":
            reason = f"the field {loc[-1]!r} is required"
        raise _refuse(reason, field=_path(loc) or None, line=_line(node, loc)) from None
    return _build(document, node, scales, frozenset(str(r) for r in known_roles))


def _load(text: str) -> tuple[yaml.Node, Any]:
    if not isinstance(text, str) or not text.strip():
        raise _refuse("the rules are empty: write at least `governance` and `rules`", line=1)
    if len(text) > RULES_TEXT_MAX_BYTES or len(text.encode("utf-8")) > RULES_TEXT_MAX_BYTES:
        raise _refuse(f"the rules are longer than {RULES_TEXT_MAX_BYTES} bytes")
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            # A few bytes of aliases can expand to gigabytes; and a reviewer reads what is
            # written, so every value is written out where it applies.
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
                mark = event.start_mark
                raise _refuse("approval rules use no YAML anchors or aliases: write each "
                              "value out", line=None if mark is None else mark.line + 1)
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        if node is None:
            raise _refuse("the rules are empty: write at least `governance` and `rules`",
                          line=1)
        _unique_keys(node)
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        raise _refuse(f"the rules are not YAML: {getattr(error, 'problem', None) or error}",
                      line=None if mark is None else mark.line + 1) from None
    except RecursionError:
        raise _refuse("the rules are nested too deeply") from None
    if not isinstance(data, dict):
        raise _refuse("the rules are a mapping with `governance` and `rules`",
                      line=node.start_mark.line + 1)
    return node, data


def _unique_keys(root: yaml.Node) -> None:
    """PyYAML keeps the last of two equal keys; a reviewer may read the first."""
    todo: list[tuple[yaml.Node, tuple[int | str, ...]]] = [(root, ())]
    while todo:
        node, loc = todo.pop()
        if isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for key, value in node.value:
                name = str(key.value)
                if name == "<<":
                    raise _refuse("approval rules use no YAML merge keys (<<): write each "
                                  "value out", field=_path(loc) or None,
                                  line=key.start_mark.line + 1)
                if name in seen:
                    raise _refuse(f"the key {name!r} is written twice",
                                  field=_path((*loc, name)), line=key.start_mark.line + 1)
                seen.add(name)
                todo.append((value, (*loc, name)))
        elif isinstance(node, yaml.SequenceNode):
            todo.extend((item, (*loc, i)) for i, item in enumerate(node.value))


def _path(loc: Loc) -> str:
    """("rules", 0, "require", "approvers") -> "rules[0].require.approvers"."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _line(node: yaml.Node | None, loc: Loc) -> int | None:
    """The line (from 1) of the YAML node at `loc` (of its key, in a mapping), or of the
    deepest one found on the way."""
    line = None if node is None else node.start_mark.line + 1
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            pair = next(((k, v) for k, v in node.value if str(k.value) == str(part)), None)
            if pair is None:
                return line
            line = pair[0].start_mark.line + 1
            node = pair[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) \
                and 0 <= part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def _build(document: _Document, node: yaml.Node, scales: Mapping[str, int] | None,
           known_roles: frozenset[str]) -> RuleSet:
    groups = _groups(document, node)
    quorum = document.governance.quorum
    if not 1 <= quorum <= QUORUM_MAX:
        raise _refuse(f"the quorum is 1 to {QUORUM_MAX}, not {quorum}",
                      field="governance.quorum", line=_line(node, ("governance", "quorum")))
    governance = Governance(quorum, _roles(document.governance.roles, ("governance", "roles"),
                                           node, known_roles))
    totp_above = {asset: _amount(value, asset, scales, ("totp_above", asset), node)
                  for asset, value in document.totp_above.items()}
    rules: list[Rule] = []
    for r, rule in enumerate(document.rules):
        if any(rule.id == earlier.id for earlier in rules):
            loc: Loc = ("rules", r, "id")
            raise _refuse(f"two rules have the id {rule.id!r}", field=_path(loc),
                          line=_line(node, loc), rule=rule.id)
        rules.append(_rule(rule, r, node, scales, known_roles, groups))
    return RuleSet(rules=tuple(rules), groups=MappingProxyType(groups), governance=governance,
                   totp_above=MappingProxyType(totp_above),
                   governance_line=_line(node, ("governance", "quorum")))


def _groups(document: _Document, node: yaml.Node) -> dict[str, tuple[str, ...]]:
    for name, members in document.groups.items():
        loc: Loc = ("groups", name)
        if not members:
            raise _refuse(f"the group {name!r} has no members", field=_path(loc),
                          line=_line(node, loc), group=name)
        if len(members) > GROUP_MEMBERS_MAX:
            raise _refuse(f"the group {name!r} has more than {GROUP_MEMBERS_MAX} members",
                          field=_path(loc), line=_line(node, loc), group=name)
        for i, member in enumerate(members):
            if member in members[:i]:
                raise _refuse(f"the group {name!r} names {member!r} twice",
                              field=_path((*loc, i)), line=_line(node, (*loc, i)), group=name,
                              member=member)
    return dict(document.groups)


def _roles(given: Sequence[str], loc: Loc, node: yaml.Node, known_roles: frozenset[str]
           ) -> tuple[str, ...]:
    for i, role in enumerate(given):
        where = (*loc, i)
        if role not in known_roles:
            raise _refuse(f"{role!r} is not a role (roles: {', '.join(sorted(known_roles))})",
                          field=_path(where), line=_line(node, where), role=role)
        if role in given[:i]:
            raise _refuse(f"the role {role!r} is named twice", field=_path(where),
                          line=_line(node, where), role=role)
    return tuple(given)


def _rule(rule: _Rule, r: int, node: yaml.Node, scales: Mapping[str, int] | None,
          known_roles: frozenset[str], groups: Mapping[str, tuple[str, ...]]) -> Rule:
    at: tuple[int | str, ...] = ("rules", r)
    when = tuple(_block(block, (*at, "when", b), node, scales)
                 for b, block in enumerate(rule.when))
    require = rule.require
    req: Loc = (*at, "require")
    approvers_at: Loc = (*req, "approvers")
    if (require.roles is None) == (require.group is None):
        raise _refuse("a rule requires approvers by `roles` or by `group` (exactly one)",
                      field=_path(req), line=_line(node, req), rule=rule.id)
    if not 1 <= require.approvers <= APPROVERS_MAX:
        raise _refuse(f"approvers is 1 to {APPROVERS_MAX}, not {require.approvers}",
                      field=_path(approvers_at), line=_line(node, approvers_at), rule=rule.id)
    roles: tuple[str, ...] = ()
    members: tuple[str, ...] = ()
    if require.roles is not None:
        if not require.roles:
            raise _refuse("name at least one role", field=_path((*req, "roles")),
                          line=_line(node, (*req, "roles")), rule=rule.id)
        roles = _roles(require.roles, (*req, "roles"), node, known_roles)
    elif require.group is not None:
        if require.group not in groups:
            raise _refuse(f"the group {require.group!r} is not defined in `groups`",
                          field=_path((*req, "group")), line=_line(node, (*req, "group")),
                          rule=rule.id, group=require.group)
        members = groups[require.group]
        if require.approvers > len(members):
            raise _refuse(
                f"rule {rule.id!r} needs {require.approvers} approvers of the group "
                f"{require.group!r}, which has {len(members)} members",
                field=_path(approvers_at), line=_line(node, approvers_at), rule=rule.id,
                group=require.group)
    if rule.delay_s > 0 and not rule.cancellable_by:
        raise _refuse("a delay needs `cancellable_by`: the roles that may cancel the payment "
                      "while it waits", field=_path((*at, "delay_s")),
                      line=_line(node, (*at, "delay_s")), rule=rule.id)
    if rule.delay_s == 0 and rule.cancellable_by:
        raise _refuse("`cancellable_by` without a delay: there is nothing to cancel",
                      field=_path((*at, "cancellable_by")),
                      line=_line(node, (*at, "cancellable_by")), rule=rule.id)
    cancellable_by = _roles(rule.cancellable_by, (*at, "cancellable_by"), node, known_roles)
    stage = Stage(rule_id=rule.id, name=rule.name, approvers=require.approvers, roles=roles,
                  group=require.group, members=members, delay_s=rule.delay_s,
                  cancellable_by=cancellable_by)
    return Rule(rule.id, rule.name, when, stage, rule.description,
                line=_line(node, approvers_at))


def _block(block: _Block, at: Loc, node: yaml.Node, scales: Mapping[str, int] | None) -> Block:
    def assets_of(given: tuple[str, ...] | None) -> frozenset[str] | None:
        if given is None:
            return None
        for i, asset in enumerate(given):
            _check_asset(asset, scales, (*at, "asset", i), node)
        return frozenset(given)

    def amounts_of(key: str, given: Mapping[str, Any] | None) -> Mapping[str, int] | None:
        if given is None:
            return None
        return MappingProxyType({asset: _amount(value, asset, scales, (*at, key, asset), node)
                                 for asset, value in given.items()})

    asset = assets_of(block.asset)
    at_least = amounts_of("amount_at_least", block.amount_at_least)
    below = amounts_of("amount_below", block.amount_below)
    for name, ceiling in (below or {}).items():
        floor = (at_least or {}).get(name)
        if ceiling == 0 or (floor is not None and floor >= ceiling):
            raise _refuse(f"no {name} amount is at least {floor or 0} and below {ceiling} "
                          "(minor units)", field=_path((*at, "amount_below", name)),
                          line=_line(node, (*at, "amount_below", name)), asset=name)
    possible: set[str] | None = None
    for given in (asset, at_least, below):
        if given is not None:
            possible = set(given) if possible is None else possible & set(given)
    if possible is not None and not possible:
        raise _refuse("no asset is in every one of this block's `asset`, `amount_at_least` "
                      "and `amount_below`: it matches no payment", field=_path(at),
                      line=_line(node, at))
    floor_reporting, ceiling_reporting = (block.reporting_amount_at_least,
                                          block.reporting_amount_below)
    if ceiling_reporting is not None and (ceiling_reporting == 0 or (
            floor_reporting is not None and floor_reporting >= ceiling_reporting)):
        loc = (*at, "reporting_amount_below")
        raise _refuse(f"no reporting amount is at least {floor_reporting or 0} and below "
                      f"{ceiling_reporting} (minor units)", field=_path(loc),
                      line=_line(node, loc))

    def keys(given: tuple[str, ...] | None) -> frozenset[str] | None:
        return None if given is None else frozenset(given)

    return Block(
        kind=keys(block.kind), asset=asset, channel=keys(block.channel),
        counterparty=None if block.counterparty is None else frozenset(
            key for c in block.counterparty if (key := counterparty_key(c)) is not None),
        initiator=keys(block.initiator), amount_at_least=at_least, amount_below=below,
        reporting_amount_at_least=floor_reporting, reporting_amount_below=ceiling_reporting,
        risk_grade=keys(block.risk_grade), risk_score_at_least=block.risk_score_at_least,
        metadata=None if block.metadata is None else MappingProxyType(dict(block.metadata)))


def _check_asset(asset: str, scales: Mapping[str, int] | None, loc: Loc,
                 node: yaml.Node) -> None:
    if scales is not None and asset not in scales:
        raise _refuse(f"{asset!r} is not an asset of the pool", field=_path(loc),
                      line=_line(node, loc), asset=asset)
    if scales is None and not ASSET_CODE_PATTERN.match(asset):
        raise _refuse(f"{asset!r} is not an asset code", field=_path(loc),
                      line=_line(node, loc), asset=asset)


def _amount(value: Any, asset: str, scales: Mapping[str, int] | None, loc: Loc,
            node: yaml.Node) -> int:
    """Integer minor units, or decimal text at the asset's scale (with its point)."""
    _check_asset(asset, scales, loc, node)

    def refuse(reason: str) -> InvalidApprovalRules:
        return _refuse(reason, field=_path(loc), line=_line(node, loc), asset=asset)

    if isinstance(value, int) and not isinstance(value, bool):
        if not 0 <= value <= AMOUNT_MAX_MINOR:
            raise refuse(f"{value} is not an amount (0 to 2^128 - 1 minor units)")
        return value
    if not isinstance(value, str):
        raise refuse(f"{value!r} is not an amount: write integer minor units (1000000) or "
                     'decimal text in quotes ("10000.00")')
    if scales is None:
        raise refuse(f"{value!r}: decimal text needs the pool's assets and scales; write "
                     "integer minor units")
    scale = scales[asset]
    if scale > 0 and "." not in value:
        raise refuse(f"{value!r}: write {asset} decimal text with its decimal point "
                     '("10000.00"), or integer minor units unquoted')
    try:
        return parse_amount(value, scale, asset=asset)
    except FundpoolError as error:
        raise refuse(f"{value!r}: {error.detail}") from None
