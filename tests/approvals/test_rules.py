"""Approval rules: what is refused (with the line and the field at fault), which stages a
payment gets (AND within a block, OR across blocks, in the order written), and the figures a
service asks of a rule set: N, quorums, TOTP, the legacy stage, diffs."""

from __future__ import annotations

import json
import re
import textwrap
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from fundpool.approvals.rules import (
    DEFAULT_GOVERNANCE,
    RULES_TEXT_MAX_BYTES,
    Facts,
    Governance,
    InvalidApprovalRules,
    RuleSet,
    Stage,
    check_quorums,
    diff_rules,
    eligible_count,
    legacy_stage,
    parse_rules,
    required_stages,
)

ROOT = Path(__file__).resolve().parents[2]
SCALES = {"USD": 2, "EUR": 2, "ETH": 18}
PREFIX = """\
groups:
  leads: [ann, bob, cy]
governance: {quorum: 1, roles: [admin]}
rules:
"""  # the rules below start on line 5


def with_rules(rules: str) -> str:
    return PREFIX + textwrap.indent(textwrap.dedent(rules), "  ")


def facts(**given: Any) -> Facts:
    values: dict[str, Any] = {
        "kind": "payout", "asset": "USD", "amount_minor": 100, "reporting_amount_minor": 100,
        "channel": "bank-a", "counterparty": "Acme", "initiator": frozenset({"alice"}),
        "risk_grade": "allow", "risk_score": 0, "metadata": {}}
    values.update(given)
    return Facts(**values)


def ids(rule_set: RuleSet, of: Facts) -> list[str]:
    return [stage.rule_id for stage in rule_set.stages_for(of)]


# --- the written examples ------------------------------------------------------------------


def test_the_documented_example_parses() -> None:
    text = (ROOT / "docs" / "approvals.md").read_text(encoding="utf-8")
    match = re.search(r"```yaml\n(.*?)```", text, re.DOTALL)
    assert match is not None
    rule_set = parse_rules(match.group(1), scales=SCALES)
    (rule,) = rule_set.rules
    assert rule.id == "large-payouts"
    assert rule.stage == Stage(
        rule_id="large-payouts", name="Large payouts need two of the treasury leads",
        approvers=2, roles=(), group="treasury-leads",
        members=("approver", "approver-2", "approver-3"), delay_s=600,
        cancellable_by=("risk", "admin"))
    assert rule_set.governance == Governance(quorum=1, roles=("admin",))
    assert rule_set.totp_above == {"USD": 5_000_000}
    assert ids(rule_set, facts(amount_minor=1_000_000)) == ["large-payouts"]
    assert ids(rule_set, facts(amount_minor=999_999)) == []
    assert ids(rule_set, facts(kind="deposit", amount_minor=1, risk_grade="hold")) == \
        ["large-payouts"]


def demo_scales() -> dict[str, int]:
    config = tomllib.loads((ROOT / "examples" / "pool.toml").read_text(encoding="utf-8"))
    return {asset["code"]: asset["scale"] for asset in config["assets"]}


def test_the_demo_rules_parse_and_mean_what_they_say() -> None:
    text = (ROOT / "examples" / "approval-rules.yaml").read_text(encoding="utf-8")
    rule_set = parse_rules(text, scales=demo_scales())
    assert [rule.id for rule in rule_set.rules] == \
        ["large-payouts", "very-large-payouts", "risk-graded"]
    assert rule_set.governance == Governance(quorum=2, roles=("admin", "approver", "risk"))
    leads = rule_set.rules[1].stage
    assert (leads.approvers, leads.group, leads.members, leads.delay_s, leads.cancellable_by) \
        == (2, "treasury-leads", ("approver", "approver-2", "approver-3"), 120,
            ("risk", "admin"))
    assert ids(rule_set, facts(amount_minor=999_999)) == []
    assert ids(rule_set, facts(amount_minor=1_000_000)) == ["large-payouts"]
    assert ids(rule_set, facts(asset="EUR", amount_minor=900_000)) == ["large-payouts"]
    assert ids(rule_set, facts(asset="EUR", amount_minor=50_000_000)) == ["large-payouts"]
    assert ids(rule_set, facts(amount_minor=10_000_000, risk_grade="review")) == \
        ["large-payouts", "very-large-payouts", "risk-graded"]
    assert ids(rule_set, facts(kind="deposit", amount_minor=10_000_000)) == []
    assert ids(rule_set, facts(amount_minor=5, risk_grade="hold")) == ["risk-graded"]
    assert not rule_set.totp_needed("USD", 4_999_999)
    assert rule_set.totp_needed("USD", 5_000_000)
    assert not rule_set.totp_needed("EUR", 10**12)
    check_quorums(rule_set, {"admin": 1, "approver": 3, "risk": 1})


# --- refusals ------------------------------------------------------------------------------


REQUIRE = "require: {approvers: 1, roles: [admin]}"

REFUSED: list[tuple[str, str, int | None, str | None, str]] = [
    ("unknown field in a rule", with_rules(f"""\
        - id: a
          name: A
          {REQUIRE}
          colour: red
        """), 8, "rules[0].colour", "unknown field 'colour'"),
    ("unknown condition", with_rules(f"""\
        - id: a
          name: A
          when:
            - kind: [payout]
              moon: full
          {REQUIRE}
        """), 9, "rules[0].when[0].moon", "unknown field 'moon'"),
    ("unknown field in require", with_rules("""\
        - id: a
          name: A
          require: {approvers: 1, roles: [admin], who: me}
        """), 7, "rules[0].require.who", "unknown field 'who'"),
    ("unknown field in governance", PREFIX.replace("roles: [admin]}", "roles: [admin], x: 1}")
     + "  []\n", 3, "governance.x", "unknown field 'x'"),
    ("unknown top-level field", "colour: red\n" + PREFIX + "  []\n", 1, "colour",
     "unknown field 'colour'"),
    ("approvers as text", with_rules("""\
        - id: a
          name: A
          require:
            approvers: "2"
            roles: [admin]
        """), 8, "rules[0].require.approvers", "valid integer"),
    ("approvers as a boolean", with_rules("""\
        - id: a
          name: A
          require:
            approvers: true
            roles: [admin]
        """), 8, "rules[0].require.approvers", "valid integer"),
    ("a kind that is not one", with_rules(f"""\
        - id: a
          name: A
          when:
            - kind:
                - payout
                - refund
          {REQUIRE}
        """), 10, "rules[0].when[0].kind[1]", "'deposit', 'payout', 'internal' or 'bridge'"),
    ("a risk grade that is not one", with_rules(f"""\
        - id: a
          name: A
          when: [{{risk_grade: [block]}}]
          {REQUIRE}
        """), 7, "rules[0].when[0].risk_grade[0]", "'allow', 'review' or 'hold'"),
    ("a risk score out of range", with_rules(f"""\
        - id: a
          name: A
          when: [{{risk_score_at_least: 1001}}]
          {REQUIRE}
        """), 7, "rules[0].when[0].risk_score_at_least", "less than or equal to 1000"),
    ("a metadata value that is not text", with_rules(f"""\
        - id: a
          name: A
          when:
            - metadata: {{urgent: yes}}
          {REQUIRE}
        """), 8, "rules[0].when[0].metadata.urgent", "valid string"),
    ("an id that is not a slug", with_rules(f"""\
        - id: Big Payouts
          name: A
          {REQUIRE}
        """), 5, "rules[0].id", "pattern"),
    ("an empty when", with_rules(f"""\
        - id: a
          name: A
          when: []
          {REQUIRE}
        """), 7, "rules[0].when", "at least 1 item"),
    ("an empty condition list", with_rules(f"""\
        - id: a
          name: A
          when: [{{channel: []}}]
          {REQUIRE}
        """), 7, "rules[0].when[0].channel", "at least 1 item"),
    ("an empty group", "groups:\n  leads: []\ngovernance: {quorum: 1, roles: [admin]}\n"
     "rules: []\n", 2, "groups.leads", "has no members"),
    ("a user twice in a group", "groups:\n  leads:\n    - ann\n    - bob\n    - ann\n"
     "governance: {quorum: 1, roles: [admin]}\nrules: []\n", 5, "groups.leads[2]",
     "names 'ann' twice"),
    ("a group that is not defined", with_rules("""\
        - id: a
          name: A
          require:
            approvers: 1
            group: nobody
        """), 9, "rules[0].require.group", "'nobody' is not defined"),
    ("more approvers than the group has", with_rules("""\
        - id: a
          name: A
          require:
            approvers: 4
            group: leads
        """), 8, "rules[0].require.approvers", "which has 3 members"),
    ("no approvers", with_rules("""\
        - id: a
          name: A
          require:
            approvers: 0
            roles: [admin]
        """), 8, "rules[0].require.approvers", "1 to 20, not 0"),
    ("roles and a group", with_rules("""\
        - id: a
          name: A
          require: {approvers: 1, roles: [admin], group: leads}
        """), 7, "rules[0].require", "exactly one"),
    ("neither roles nor a group", with_rules("""\
        - id: a
          name: A
          require: {approvers: 1}
        """), 7, "rules[0].require", "exactly one"),
    ("an empty roles list", with_rules("""\
        - id: a
          name: A
          require: {approvers: 1, roles: []}
        """), 7, "rules[0].require.roles", "at least one role"),
    ("a role that is not one", with_rules("""\
        - id: a
          name: A
          require:
            approvers: 1
            roles: [approver, boss]
        """), 9, "rules[0].require.roles[1]", "'boss' is not a role"),
    ("a role twice", with_rules("""\
        - id: a
          name: A
          require:
            approvers: 1
            roles: [admin, admin]
        """), 9, "rules[0].require.roles[1]", "named twice"),
    ("a quorum of 0", PREFIX.replace("quorum: 1", "quorum: 0") + "  []\n", 3,
     "governance.quorum", "1 to 10, not 0"),
    ("a quorum of 11", PREFIX.replace("quorum: 1", "quorum: 11") + "  []\n", 3,
     "governance.quorum", "1 to 10, not 11"),
    ("a governance role that is not one", PREFIX.replace("[admin]", "[admin, owner]")
     + "  []\n", 3, "governance.roles[1]", "'owner' is not a role"),
    ("no governance", "rules: []\n", 1, "governance", "'governance' is required"),
    ("no rules", "governance: {quorum: 1, roles: [admin]}\n", 1, "rules",
     "'rules' is required"),
    ("amount bounds that exclude each other", with_rules(f"""\
        - id: a
          name: A
          when:
            - amount_at_least: {{USD: 500}}
              amount_below: {{USD: 500}}
          {REQUIRE}
        """), 9, "rules[0].when[0].amount_below.USD", "at least 500 and below 500"),
    ("an amount below nothing", with_rules(f"""\
        - id: a
          name: A
          when:
            - amount_below: {{USD: 0}}
          {REQUIRE}
        """), 8, "rules[0].when[0].amount_below.USD", "below 0"),
    ("reporting bounds that exclude each other", with_rules(f"""\
        - id: a
          name: A
          when:
            - reporting_amount_at_least: 900
              reporting_amount_below: 100
          {REQUIRE}
        """), 9, "rules[0].when[0].reporting_amount_below", "at least 900 and below 100"),
    ("amounts only for assets the filter excludes", with_rules(f"""\
        - id: a
          name: A
          when:
            - asset: [EUR]
              amount_at_least: {{USD: 1}}
          {REQUIRE}
        """), 8, "rules[0].when[0]", "matches no payment"),
    ("floors and ceilings for different assets", with_rules(f"""\
        - id: a
          name: A
          when:
            - amount_at_least: {{USD: 1}}
              amount_below: {{EUR: 100}}
          {REQUIRE}
        """), 8, "rules[0].when[0]", "matches no payment"),
    ("two rules with one id", with_rules(f"""\
        - id: a
          name: A
          {REQUIRE}
        - id: a
          name: B
          {REQUIRE}
        """), 8, "rules[1].id", "two rules have the id 'a'"),
    ("a delay nobody may cancel", with_rules(f"""\
        - id: a
          name: A
          {REQUIRE}
          delay_s: 60
        """), 8, "rules[0].delay_s", "needs `cancellable_by`"),
    ("cancellers without a delay", with_rules(f"""\
        - id: a
          name: A
          {REQUIRE}
          cancellable_by: [risk]
        """), 8, "rules[0].cancellable_by", "nothing to cancel"),
    ("a delay over 30 days", with_rules(f"""\
        - id: a
          name: A
          {REQUIRE}
          delay_s: 2592001
          cancellable_by: [risk]
        """), 8, "rules[0].delay_s", "less than or equal to 2592000"),
    ("a canceller that is not a role", with_rules(f"""\
        - id: a
          name: A
          {REQUIRE}
          delay_s: 60
          cancellable_by: [risk, janitor]
        """), 9, "rules[0].cancellable_by[1]", "'janitor' is not a role"),
    ("an anchor and an alias", with_rules("""\
        - id: a
          name: A
          require: &req {approvers: 1, roles: [admin]}
        - id: b
          name: B
          require: *req
        """), 7, None, "no YAML anchors or aliases"),
    ("a merge key", with_rules("""\
        - id: a
          name: A
          <<: {require: {approvers: 1, roles: [admin]}}
        """), 7, "rules[0]", "merge keys"),
    ("a key written twice", with_rules(f"""\
        - id: a
          name: A
          {REQUIRE}
          name: B
        """), 8, "rules[0].name", "written twice"),
    ("a list at the top", "- governance\n- rules\n", 1, None, "a mapping"),
    ("text at the top", "approve everything\n", 1, None, "a mapping"),
    ("nothing", "  \n", 1, None, "empty"),
    ("only a comment", "# nothing yet\n", 1, None, "empty"),
    ("not YAML", PREFIX + "  - id: [a\n", 6, None, "not YAML"),
    ("decimal text without the scales", with_rules(f"""\
        - id: a
          name: A
          when:
            - amount_at_least: {{USD: "10000.00"}}
          {REQUIRE}
        """), 8, "rules[0].when[0].amount_at_least.USD", "integer minor units"),
    ("a float amount", with_rules(f"""\
        - id: a
          name: A
          when:
            - amount_at_least: {{USD: 10000.50}}
          {REQUIRE}
        """), 8, "rules[0].when[0].amount_at_least.USD", "is not an amount"),
    ("a negative amount", with_rules(f"""\
        - id: a
          name: A
          when:
            - amount_at_least: {{USD: -1}}
          {REQUIRE}
        """), 8, "rules[0].when[0].amount_at_least.USD", "is not an amount"),
    ("an asset code that is not one", with_rules(f"""\
        - id: a
          name: A
          when:
            - asset: [usd]
          {REQUIRE}
        """), 8, "rules[0].when[0].asset[0]", "not an asset code"),
    ("a TOTP amount as a float", PREFIX + "  []\ntotp_above: {USD: 1.5}\n", 6,
     "totp_above.USD", "is not an amount"),
]


@pytest.mark.parametrize(("text", "line", "field", "reason"),
                         [case[1:] for case in REFUSED], ids=[case[0] for case in REFUSED])
def test_a_refusal_names_the_line_and_the_field(text: str, line: int | None,
                                                field: str | None, reason: str) -> None:
    with pytest.raises(InvalidApprovalRules) as caught:
        parse_rules(text)
    error = caught.value
    assert error.code == "invalid_approval_rules"
    assert reason in str(error.facts["reason"]), error
    assert error.facts["line"] == line, error
    assert error.facts["field"] == field, error
    assert error.to_dict()["title"] == "the approval rules are not valid; the active rules stay"


SCALED: list[tuple[str, str, str, str]] = [
    ("an asset the pool does not hold", "{GBP: \"10.00\"}", "amount_at_least.GBP",
     "'GBP' is not an asset of the pool"),
    ("decimal text without its point", "{USD: \"1000000\"}", "amount_at_least.USD",
     "decimal point"),
    ("more decimals than the scale", "{USD: \"10.001\"}", "amount_at_least.USD",
     "more decimals"),
    ("a negative decimal", "{USD: \"-10.00\"}", "amount_at_least.USD", "never negative"),
]


@pytest.mark.parametrize(("amounts", "field", "reason"), [c[1:] for c in SCALED],
                         ids=[c[0] for c in SCALED])
def test_decimal_amounts_are_read_at_the_pools_scales(amounts: str, field: str,
                                                      reason: str) -> None:
    text = with_rules(f"""\
        - id: a
          name: A
          when:
            - amount_at_least: {amounts}
          {REQUIRE}
        """)
    with pytest.raises(InvalidApprovalRules) as caught:
        parse_rules(text, scales=SCALES)
    assert caught.value.facts["line"] == 8
    assert caught.value.facts["field"] == f"rules[0].when[0].{field}"
    assert reason in str(caught.value.facts["reason"]), caught.value


def test_decimal_text_and_minor_units_read_the_same() -> None:
    text = with_rules(f"""\
        - id: a
          name: A
          when:
            - amount_at_least: {{USD: "10000.00", EUR: 900000, ETH: "1.5"}}
          {REQUIRE}
        """) + 'totp_above: {USD: "50000.00", ETH: 2000000000000000000}\n'
    rule_set = parse_rules(text, scales=SCALES)
    assert rule_set.rules[0].when[0].amount_at_least == \
        {"USD": 1_000_000, "EUR": 900_000, "ETH": 1_500_000_000_000_000_000}
    assert rule_set.totp_above == {"USD": 5_000_000, "ETH": 2 * 10**18}


def test_text_over_the_bound_is_refused_before_it_is_read() -> None:
    text = PREFIX + "  []\n" + "#" * RULES_TEXT_MAX_BYTES
    with pytest.raises(InvalidApprovalRules, match="longer than"):
        parse_rules(text)
    multibyte = PREFIX + "  []\n#" + "é" * (RULES_TEXT_MAX_BYTES // 2)  # few chars, many bytes
    with pytest.raises(InvalidApprovalRules, match="longer than"):
        parse_rules(multibyte)


def test_the_known_roles_are_the_callers() -> None:
    text = PREFIX.replace("[admin]", "[treasurer]") + "  []\n"
    with pytest.raises(InvalidApprovalRules, match="'treasurer' is not a role"):
        parse_rules(text)
    assert parse_rules(text, known_roles=["treasurer"]).governance.roles == ("treasurer",)


def test_an_empty_rule_set_is_allowed_and_asks_nothing() -> None:
    rule_set = parse_rules(PREFIX + "  []\n")
    assert rule_set.rules == ()
    assert rule_set.stages_for(facts(amount_minor=10**15, risk_grade="hold")) == ()
    assert not rule_set.totp_needed("USD", 10**15)


# --- semantics -----------------------------------------------------------------------------


SEMANTICS = with_rules(f"""\
    - id: usd-payouts
      name: USD payouts of 100.00 up to 1,000.00
      when:
        - kind: [payout]
          asset: [USD]
          amount_at_least: {{USD: 10000}}
          amount_below: {{USD: 100000}}
      {REQUIRE}
    - id: always
      name: Every payment
      {REQUIRE}
    - id: risky-or-big
      name: Graded for review, or big in the reporting currency
      when:
        - risk_grade: [review, hold]
        - reporting_amount_at_least: 5000000
      {REQUIRE}
    - id: acme-by-alice
      name: Acme, paid by Alice over the wire, tagged urgent
      when:
        - counterparty: ["ACME"]
          initiator: [alice, "user:7"]
          channel: [bank-a]
          metadata: {{urgent: "yes", desk: fx}}
      {REQUIRE}
    - id: scored
      name: A score of 700 or more
      when: [{{risk_score_at_least: 700}}]
      {REQUIRE}
    - id: empty-block
      name: An empty block always holds
      when: [{{}}]
      {REQUIRE}
    """)


@pytest.mark.parametrize(("given", "expected"), [
    ({}, ["always", "empty-block"]),
    ({"amount_minor": 10_000}, ["usd-payouts", "always", "empty-block"]),
    ({"amount_minor": 99_999}, ["usd-payouts", "always", "empty-block"]),
    ({"amount_minor": 100_000}, ["always", "empty-block"]),  # below is exclusive
    ({"amount_minor": 10_000, "kind": "deposit"}, ["always", "empty-block"]),  # AND
    ({"amount_minor": 10_000, "asset": "EUR"}, ["always", "empty-block"]),  # unnamed asset
    ({"risk_grade": "review"}, ["always", "risky-or-big", "empty-block"]),  # OR, 1st block
    ({"reporting_amount_minor": 5_000_000}, ["always", "risky-or-big", "empty-block"]),
    ({"reporting_amount_minor": 4_999_999}, ["always", "empty-block"]),
    ({"reporting_amount_minor": None}, ["always", "empty-block"]),  # no rate: no match
    ({"risk_grade": None, "risk_score": None}, ["always", "empty-block"]),
    ({"risk_score": 700}, ["always", "scored", "empty-block"]),
    ({"risk_score": 699}, ["always", "empty-block"]),
    ({"counterparty": "  acme ", "initiator": frozenset({"ally", "user:7"}),
      "metadata": {"urgent": "yes", "desk": "fx", "more": "x"}},
     ["always", "acme-by-alice", "empty-block"]),
    ({"counterparty": "Acme Ltd", "metadata": {"urgent": "yes", "desk": "fx"}},
     ["always", "empty-block"]),  # exact, but for case
    ({"counterparty": "acme", "metadata": {"urgent": "yes"}}, ["always", "empty-block"]),
    ({"counterparty": "acme", "metadata": {"urgent": "yes", "desk": "fx"}, "channel": None},
     ["always", "empty-block"]),
    ({"counterparty": None, "metadata": {"urgent": "yes", "desk": "fx"}},
     ["always", "empty-block"]),
    ({"counterparty": "acme", "metadata": {"urgent": "yes", "desk": "fx"},
      "initiator": frozenset({"bob"})}, ["always", "empty-block"]),
])
def test_stages_follow_the_written_order_and_and_or(given: dict[str, Any],
                                                    expected: list[str]) -> None:
    rule_set = parse_rules(SEMANTICS)
    assert ids(rule_set, facts(**given)) == expected


# --- a reference evaluation ----------------------------------------------------------------


ASSETS = ["USD", "EUR", "ETH"]
CHANNELS = ["bank-a", "rtp"]
PARTIES = ["Acme", "ACME", "Bob & Co"]
INITIATORS = ["alice", "bob", "user:1"]
KEYS = ["desk", "urgent"]
VALUES = ["fx", "yes", "no"]


def _some(values: list[str]) -> st.SearchStrategy[list[str]]:
    return st.lists(st.sampled_from(values), min_size=1, max_size=len(values), unique=True)


_amount_map = st.dictionaries(st.sampled_from(ASSETS), st.integers(0, 1_000), min_size=1)

BLOCK = st.fixed_dictionaries({}, optional={
    "kind": _some(["deposit", "payout", "internal", "bridge"]),
    "asset": _some(ASSETS),
    "channel": _some(CHANNELS),
    "counterparty": _some(PARTIES),
    "initiator": _some(INITIATORS),
    "amount_at_least": _amount_map,
    "amount_below": _amount_map,
    "reporting_amount_at_least": st.integers(0, 1_000),
    "reporting_amount_below": st.integers(1, 1_000),
    "risk_grade": _some(["allow", "review", "hold"]),
    "risk_score_at_least": st.integers(0, 1_000),
    "metadata": st.dictionaries(st.sampled_from(KEYS), st.sampled_from(VALUES), min_size=1),
})
RULE_WHEN = st.one_of(st.none(), st.lists(BLOCK, min_size=1, max_size=3))
FACTS = st.builds(
    Facts, kind=st.sampled_from(["deposit", "payout", "internal", "bridge"]),
    asset=st.sampled_from(ASSETS), amount_minor=st.integers(0, 1_100),
    reporting_amount_minor=st.none() | st.integers(0, 1_100),
    channel=st.none() | st.sampled_from(CHANNELS),
    counterparty=st.none() | st.sampled_from([*PARTIES, "acme", "bob & co", "Carol"]),
    initiator=st.frozensets(st.sampled_from([*INITIATORS, "carol"]), max_size=2),
    risk_grade=st.none() | st.sampled_from(["allow", "review", "hold"]),
    risk_score=st.none() | st.integers(0, 1_000),
    metadata=st.dictionaries(st.sampled_from(KEYS), st.sampled_from(VALUES)))


class _NoAliases(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True


def reference(block: dict[str, Any], of: Facts) -> bool:
    """What a block means, read off the documentation one condition at a time."""
    for key, value in block.items():
        if key in ("kind", "asset", "channel", "risk_grade"):
            holds = getattr(of, key) in value
        elif key == "counterparty":
            holds = of.counterparty is not None and of.counterparty.lower() in \
                [v.lower() for v in value]
        elif key == "initiator":
            holds = any(name in value for name in of.initiator)
        elif key == "amount_at_least":
            holds = of.asset in value and of.amount_minor >= value[of.asset]
        elif key == "amount_below":
            holds = of.asset in value and of.amount_minor < value[of.asset]
        elif key == "reporting_amount_at_least":
            holds = of.reporting_amount_minor is not None and \
                of.reporting_amount_minor >= value
        elif key == "reporting_amount_below":
            holds = of.reporting_amount_minor is not None and of.reporting_amount_minor < value
        elif key == "risk_score_at_least":
            holds = of.risk_score is not None and of.risk_score >= value
        elif key == "metadata":
            holds = all(of.metadata.get(k) == v for k, v in value.items())
        else:
            raise AssertionError(key)
        if not holds:
            return False
    return True


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(whens=st.lists(RULE_WHEN, max_size=5), cases=st.lists(FACTS, min_size=1, max_size=10))
def test_stages_match_a_reference_evaluation(whens: list[list[dict[str, Any]] | None],
                                             cases: list[Facts]) -> None:
    rules: list[dict[str, Any]] = []
    for i, when in enumerate(whens):
        rule: dict[str, Any] = {"id": f"r{i}", "name": f"rule {i}",
                                "require": {"approvers": 1, "roles": ["approver"]}}
        if when is not None:
            rule["when"] = when
        rules.append(rule)
    text = yaml.dump({"governance": {"quorum": 1, "roles": ["admin"]}, "rules": rules},
                     Dumper=_NoAliases, sort_keys=False)
    refused: InvalidApprovalRules | None = None
    try:
        rule_set = parse_rules(text)
    except InvalidApprovalRules as error:
        refused = error
    if refused is not None:  # only a block that can match nothing is refused
        assert "matches no payment" in str(refused) or "and below" in str(refused), refused
        assume(False)
    for of in cases:
        expected = [rule["id"] for rule in rules
                    if "when" not in rule or any(reference(b, of) for b in rule["when"])]
        assert ids(rule_set, of) == expected


# --- N, quorums, TOTP ----------------------------------------------------------------------


QUORUMS = PREFIX.replace("quorum: 1, roles: [admin]", "quorum: 2, roles: [admin, risk]") + \
    textwrap.indent(textwrap.dedent(f"""\
        - id: by-role
          name: Two approvers or admins
          require:
            approvers: 2
            roles: [approver, admin]
        - id: by-group
          name: Three leads
          require: {{approvers: 3, group: leads}}
        - id: one
          name: One admin
          {REQUIRE}
        """), "  ")


def test_eligible_count_is_the_group_or_the_roles_holders() -> None:
    rule_set = parse_rules(QUORUMS)
    by_role, by_group, one = (rule.stage for rule in rule_set.rules)
    sizes = {"approver": 1, "admin": 1, "risk": 4}
    assert rule_set.eligible_count(by_role, sizes) == 2
    assert eligible_count(by_role, {"approver": 1}) == 1
    assert eligible_count(by_group, {}) == 3  # a group's size, whatever the roles
    assert eligible_count(one, {}) == 0


def test_check_quorums_refuses_a_stage_nobody_could_pass() -> None:
    rule_set = parse_rules(QUORUMS)
    check_quorums(rule_set, {"approver": 1, "admin": 1, "risk": 1})
    with pytest.raises(InvalidApprovalRules) as caught:
        check_quorums(rule_set, {"approver": 1, "risk": 1, "admin": 0})
    assert caught.value.facts["field"] == "rules[0].require.approvers"
    assert caught.value.facts["line"] == 8
    assert caught.value.facts["rule"] == "by-role"
    assert caught.value.facts["eligible"] == 1
    with pytest.raises(InvalidApprovalRules) as caught:
        check_quorums(rule_set, {"approver": 2})  # no admin: rule `one`
    assert caught.value.facts["field"] == "rules[2].require.approvers"
    with pytest.raises(InvalidApprovalRules) as caught:
        check_quorums(rule_set, {"approver": 2, "admin": 1})  # quorum 2 of admin, risk
    assert caught.value.facts["field"] == "governance.quorum"
    assert caught.value.facts["line"] == 3


@pytest.mark.parametrize(("asset", "amount_minor", "needed"), [
    ("USD", 0, False), ("USD", 4_999_999, False), ("USD", 5_000_000, True),
    ("USD", 10**30, True), ("EUR", 10**30, False), ("ETH", 10**18 - 1, False),
    ("ETH", 10**18, True), ("GBP", 0, True),
])
def test_totp_is_needed_from_the_threshold_on(asset: str, amount_minor: int,
                                              needed: bool) -> None:
    text = PREFIX + '  []\ntotp_above: {USD: "50000.00", ETH: "1.0", GBP: 0}\n'
    rule_set = parse_rules(text, scales={**SCALES, "GBP": 2})
    assert rule_set.totp_needed(asset, amount_minor) is needed


# --- stages as stored documents, the legacy stage ------------------------------------------


STAGES = st.one_of(
    st.builds(lambda m, roles, delay, cancel: Stage(
        rule_id="r", name="n", approvers=m, roles=tuple(roles), group=None, members=(),
        delay_s=delay, cancellable_by=tuple(cancel) if delay else ()),
        st.integers(1, 20), _some(["approver", "admin", "risk"]),
        st.integers(0, 86_400), _some(["risk", "admin"])),
    st.builds(lambda members, delay: Stage(
        rule_id="g-1", name="Leads, ünïcode", approvers=len(members), roles=(), group="leads",
        members=tuple(members), delay_s=delay, cancellable_by=("admin",) if delay else ()),
        _some(["ann", "bob", "cy"]), st.integers(0, 60)))


@given(STAGES)
def test_a_stage_survives_its_document(stage: Stage) -> None:
    doc = json.loads(json.dumps(stage.to_doc()))
    assert Stage.from_doc(doc) == stage


@pytest.mark.parametrize("change", [
    {"approvers": "1"}, {"approvers": True}, {"roles": "admin"}, {"colour": "red"},
    {"approvers": 0}, {"group": "leads"}, {"delay_s": 60}, {"rule_id": None},
])
def test_a_stage_document_that_is_not_one_is_refused(change: dict[str, Any]) -> None:
    doc = legacy_stage().to_doc() | change
    with pytest.raises(ValueError, match="stage"):
        Stage.from_doc(doc)


def test_the_legacy_stage_is_one_holder_of_payments_approve() -> None:
    stage = legacy_stage()
    assert (stage.approvers, stage.roles, stage.group, stage.delay_s) == \
        (1, ("approver", "admin"), None, 0)
    assert Governance(quorum=1, roles=("admin",)) == DEFAULT_GOVERNANCE


def test_the_thresholds_are_a_floor_under_the_rules() -> None:
    demo = parse_rules((ROOT / "examples" / "approval-rules.yaml").read_text(encoding="utf-8"),
                       scales=demo_scales())
    empty = parse_rules(PREFIX + "  []\n")
    big = facts(amount_minor=10_000_000)
    assert required_stages(None, big, over_threshold=True) == (legacy_stage(),)
    assert required_stages(None, big, over_threshold=False) == ()
    assert required_stages(empty, big, over_threshold=True) == (legacy_stage(),)
    assert required_stages(empty, big, over_threshold=False) == ()
    assert [s.rule_id for s in required_stages(demo, big, over_threshold=True)] == \
        ["large-payouts", "very-large-payouts"]
    eth = facts(asset="ETH", amount_minor=10**19)  # no demo rule names ETH
    assert required_stages(demo, eth, over_threshold=True) == (legacy_stage(),)


# --- diffs ---------------------------------------------------------------------------------


def test_diff_shows_the_lines_that_changed() -> None:
    old = PREFIX + "  []\n"
    new = PREFIX.replace("quorum: 1", "quorum: 2") + "  []\n"
    diff = diff_rules(old, new, "version 3", "version 4")
    assert diff.startswith("--- version 3\n+++ version 4\n@@ ")
    assert "\n-governance: {quorum: 1, roles: [admin]}\n" in diff
    assert "\n+governance: {quorum: 2, roles: [admin]}\n" in diff
    assert "\n groups:\n" in diff  # context
    assert diff.endswith("\n")
    assert diff_rules(old, old, "a", "b") == ""
    assert diff_rules("", "rules: []", "none", "draft").splitlines()[-1] == "+rules: []"
