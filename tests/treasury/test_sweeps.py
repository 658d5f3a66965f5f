"""Cash sweeps: each kind's worked example, the refusals (pending, stale, a hand-made sweep
that would breach a minimum, a bad rule), and the money properties of any plan: the asset's
total is unchanged, every move is positive and between two channels, and no source ends below
its minimum."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fundpool.treasury.bands import Band
from fundpool.treasury.sweeps import (
    InvalidSweepMove,
    InvalidSweepRule,
    Participant,
    StaleBalances,
    SweepKind,
    SweepMove,
    SweepPending,
    SweepPlan,
    SweepRule,
    SweepWouldBreachMinimum,
    check_sweep,
    plan_sweep,
    sweep_rules_from_mapping,
)

NOW_US = 1_796_601_600_000_000
FRESH = {"balances_at_us": NOW_US - 1_000_000, "now_us": NOW_US,
         "stale_after_us": 60_000_000, "pending": False}


def plan(rule: SweepRule, balances: Mapping[str, int],
         bands: Mapping[str, Band] | None = None) -> SweepPlan:
    return plan_sweep(rule, balances, bands or {}, **FRESH)  # type: ignore[arg-type]


def moved(result: SweepPlan) -> list[tuple[str, str, int]]:
    return [(m.source, m.destination, m.amount_minor) for m in result.moves]


def band(channel: str, low: int, target: int, high: int) -> Band:
    return Band(channel, "USD", low, target, high)


# --- each kind's worked example ------------------------------------------------------------


def test_zero_balancing_sweeps_to_the_residual_but_never_below_a_band_minimum() -> None:
    rule = SweepRule("zba", SweepKind.ZERO_BALANCING, "USD", "bank-a", (
        Participant("bank-b"), Participant("bank-c", keep_minor=500), Participant("bank-d")))
    result = plan(rule, {"bank-a": 1_000, "bank-b": 5_000, "bank-c": 3_000, "bank-d": 0},
                  {"bank-c": band("bank-c", 1_000, 2_000, 9_000)})
    assert moved(result) == [("bank-b", "bank-a", 5_000), ("bank-c", "bank-a", 2_000)]
    assert "down to its band minimum 1,000, not 500" in result.moves[1].reason
    assert result.skipped == ()


def test_two_way_zero_balancing_funds_by_priority_from_what_the_header_holds_now() -> None:
    rule = SweepRule("zba", SweepKind.ZERO_BALANCING, "USD", "hdr", (
        Participant("x", priority=1, keep_minor=300), Participant("y", priority=0),
        Participant("z"), Participant("w", priority=2)), two_way=True)
    balances = {"hdr": 1_500, "x": 0, "y": 100, "z": 900, "w": 0}
    bands = {"hdr": band("hdr", 1_000, 1_000, 5_000), "y": band("y", 400, 400, 800),
             "w": band("w", 50, 50, 50)}
    result = plan(rule, balances, bands)
    # z is swept in; y (priority 0) is funded to its band minimum, x gets what is left of the
    # header's 500 above its minimum (the 900 swept in is not counted), w nothing.
    assert moved(result) == [("z", "hdr", 900), ("hdr", "y", 300), ("hdr", "x", 200)]
    assert "100 short" in result.moves[2].reason
    assert result.skipped[0][0] == "w"
    assert "nothing left above its minimum" in result.skipped[0][1]


def test_one_way_zero_balancing_never_funds() -> None:
    rule = SweepRule("zba", SweepKind.ZERO_BALANCING, "USD", "hdr", (Participant("x"),))
    assert plan(rule, {"hdr": 10_000, "x": 0}, {"x": band("x", 100, 100, 100)}).moves == ()


def test_target_balance_brings_each_participant_to_its_target() -> None:
    participants = (Participant("p", target_minor=2_000), Participant("q"), Participant("r"),
                    Participant("s"))
    rule = SweepRule("tb", SweepKind.TARGET_BALANCE, "USD", "hdr", participants)
    bands = {"r": band("r", 0, 800, 900), "q": band("q", 0, 1_500, 2_000)}
    balances = {"hdr": 10_000, "p": 3_000, "q": 500, "r": 800}
    result = plan(rule, balances, bands)
    # p to its own target, q to its band's; r is at its band's target already
    assert moved(result) == [("p", "hdr", 1_000), ("hdr", "q", 1_000)]
    assert result.skipped == (("s", "no balance is known for it"),)
    # a rule's target comes before a band's, a participant's own before the rule's
    rule = SweepRule("tb", SweepKind.TARGET_BALANCE, "USD", "hdr", participants,
                     target_minor=1_000)
    assert moved(plan(rule, balances, bands)) == [
        ("p", "hdr", 1_000), ("hdr", "q", 500), ("hdr", "r", 200)]


def test_a_participant_without_any_target_is_skipped_with_the_reason() -> None:
    rule = SweepRule("tb", SweepKind.TARGET_BALANCE, "USD", "hdr", (Participant("p"),))
    result = plan(rule, {"hdr": 10, "p": 3_000})
    assert result.moves == ()
    assert result.skipped == (("p", "it needs a target and neither it, the rule nor its band "
                                    "gives one"),)


def test_threshold_only_moves_what_crosses_a_threshold() -> None:
    rule = SweepRule("th", SweepKind.THRESHOLD, "USD", "hdr", (
        Participant("p"), Participant("q"), Participant("r")),
        target_minor=2_000, threshold_minor=5_000, floor_minor=1_000)
    result = plan(rule, {"hdr": 10_000, "p": 6_000, "q": 4_000, "r": 500})
    assert moved(result) == [("p", "hdr", 4_000), ("hdr", "r", 1_500)]
    one_sided = SweepRule("th", SweepKind.THRESHOLD, "USD", "hdr", (Participant("r"),),
                          target_minor=2_000, threshold_minor=5_000)
    assert plan(one_sided, {"hdr": 10_000, "r": 0}).moves == ()


def test_a_collar_keeps_participants_between_floor_and_cap() -> None:
    participants = (Participant("p"), Participant("q"), Participant("r"))
    balances = {"hdr": 10_000, "p": 7_000, "q": 200, "r": 3_000}
    edges = SweepRule("co", SweepKind.COLLAR, "USD", "hdr", participants, floor_minor=1_000,
                      cap_minor=5_000)
    assert moved(plan(edges, balances)) == [("p", "hdr", 2_000), ("hdr", "q", 800)]
    to_target = SweepRule("co", SweepKind.COLLAR, "USD", "hdr", participants,
                          floor_minor=1_000, cap_minor=5_000, target_minor=3_000,
                          to_target=True)
    assert moved(plan(to_target, balances)) == [("p", "hdr", 4_000), ("hdr", "q", 2_800)]


def test_a_move_under_the_rules_minimum_is_skipped() -> None:
    rule = SweepRule("zba", SweepKind.ZERO_BALANCING, "USD", "hdr",
                     (Participant("p"), Participant("q")), min_move_minor=1_000)
    result = plan(rule, {"hdr": 0, "p": 999, "q": 1_000})
    assert moved(result) == [("q", "hdr", 1_000)]
    assert "under the rule's minimum move 1,000" in result.skipped[0][1]


# --- refusals ------------------------------------------------------------------------------


def test_a_pending_sweep_or_stale_balances_refuse_the_plan() -> None:
    rule = SweepRule("zba", SweepKind.ZERO_BALANCING, "USD", "hdr", (Participant("p"),))
    with pytest.raises(SweepPending) as pending:
        plan_sweep(rule, {"hdr": 0, "p": 5}, {}, balances_at_us=NOW_US, now_us=NOW_US,
                   stale_after_us=0, pending=True)
    assert pending.value.code == "sweep_pending"
    assert pending.value.facts == {"rule_id": "zba"}
    with pytest.raises(StaleBalances) as stale:
        plan_sweep(rule, {"hdr": 0, "p": 5}, {}, balances_at_us=NOW_US - 61_000_000,
                   now_us=NOW_US, stale_after_us=60_000_000, pending=False)
    assert stale.value.code == "stale_balances"
    assert stale.value.facts["age_us"] == 61_000_000
    # exactly at the bound is still fresh
    plan_sweep(rule, {"hdr": 0, "p": 5}, {}, balances_at_us=NOW_US - 60_000_000,
               now_us=NOW_US, stale_after_us=60_000_000, pending=False)


def test_a_hand_made_sweep_that_would_breach_a_minimum_is_refused() -> None:
    request = SweepPlan("manual", (SweepMove("bank-b", "bank-a", "USD", 700, "by hand"),
                                   SweepMove("bank-b", "bank-c", "USD", 200, "by hand")), ())
    bands = {"bank-b": band("bank-b", 200, 500, 2_000)}
    check_sweep(request, {"bank-b": 1_100}, bands)  # 1,100 - 900 = 200: at the minimum
    with pytest.raises(SweepWouldBreachMinimum) as refused:
        check_sweep(request, {"bank-b": 1_099}, bands)
    assert refused.value.code == "sweep_would_breach_minimum"
    assert refused.value.facts == {"rule_id": "manual", "channel": "bank-b",
                                   "balance_minor": 1_099, "minimum_minor": 200,
                                   "amount_minor": 900}
    with pytest.raises(SweepWouldBreachMinimum):  # without a band: never below zero
        check_sweep(request, {"bank-b": 899}, {})
    with pytest.raises(InvalidSweepMove):
        SweepMove("bank-b", "bank-b", "USD", 1, "to itself")
    with pytest.raises(InvalidSweepMove):
        SweepMove("bank-b", "bank-a", "USD", 0, "nothing")


RULE: dict[str, Any] = {
    "id": "usd-zba", "kind": "zero_balancing", "asset": "USD", "header": "bank-a",
    "two_way": True, "min_move_minor": 1_000,
    "participants": [{"channel": "bank-b", "priority": 0, "keep_minor": 50_000},
                     {"channel": "bank-c", "priority": 1}]}


def test_rules_read_from_tables() -> None:
    (rule,) = sweep_rules_from_mapping([RULE])
    assert rule == SweepRule("usd-zba", SweepKind.ZERO_BALANCING, "USD", "bank-a", (
        Participant("bank-b", 0, 50_000), Participant("bank-c", 1)), two_way=True,
        min_move_minor=1_000)
    (collar,) = sweep_rules_from_mapping([{
        "id": "c", "kind": "collar", "asset": "EUR", "header": "h", "floor_minor": 10,
        "cap_minor": 20, "to_target": True, "target_minor": 15,
        "participants": [{"channel": "p", "target_minor": 12}]}])
    assert (collar.floor_minor, collar.cap_minor, collar.participants[0].target_minor) == (
        10, 20, 12)


def participant(**change: Any) -> dict[str, Any]:
    return {**RULE, "participants": [{**RULE["participants"][0], **change}]}


@pytest.mark.parametrize(("rule", "field"), [
    ({**RULE, "kind": "sideways"}, "sweeps[0].kind"),
    ({**RULE, "participants": [{"channel": "bank-a"}]}, "sweeps[0].participants[0].channel"),
    ({**RULE, "participants": [{"channel": "bank-b"}, {"channel": "bank-b"}]},
     "sweeps[0].participants[1].channel"),
    (participant(keep_minor=-5), "sweeps[0].participants[0].keep_minor"),
    (participant(keep_minor=5.0), "sweeps[0].participants[0].keep_minor"),
    (participant(priority=-1), "sweeps[0].participants[0].priority"),
    (participant(colour="red"), "sweeps[0].participants[0].colour"),
    ({**RULE, "min_move_minor": -1}, "sweeps[0].min_move_minor"),
    ({**RULE, "participants": []}, "sweeps[0].participants"),
    ({**RULE, "cap_minor": 10}, "sweeps[0].cap_minor"),  # not a zero-balancing figure
    ({**RULE, "kind": "collar", "two_way": False, "participants": [{"channel": "p"}],
      "floor_minor": 20, "cap_minor": 10}, "sweeps[0].floor_minor"),
    ({**RULE, "kind": "collar", "two_way": False, "participants": [{"channel": "p"}],
      "floor_minor": 20}, "sweeps[0].cap_minor"),
    ({**RULE, "kind": "threshold", "two_way": False, "participants": [{"channel": "p"}]},
     "sweeps[0].threshold_minor"),
    ({**RULE, "kind": "threshold", "two_way": False, "participants": [{"channel": "p"}],
      "floor_minor": 9, "threshold_minor": 5}, "sweeps[0].floor_minor"),
    ({**RULE, "kind": "target_balance", "two_way": False,
      "participants": [{"channel": "p", "keep_minor": 3}]},
     "sweeps[0].participants[0].keep_minor"),
    ({**RULE, "kind": "collar", "two_way": False, "floor_minor": 5, "cap_minor": 10,
      "participants": [{"channel": "p", "target_minor": 11}]},
     "sweeps[0].participants[0].target_minor"),
    ({**RULE, "header": "Bank A"}, "sweeps[0].header"),
    ({**RULE, "weather": "fine"}, "sweeps[0].weather"),
])
def test_a_bad_rule_is_refused_naming_the_field(rule: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidSweepRule) as refused:
        sweep_rules_from_mapping([rule])
    assert refused.value.code == "invalid_sweep_rule"
    assert refused.value.facts["field"] == field


def test_rule_ids_are_unique() -> None:
    with pytest.raises(InvalidSweepRule, match="own id"):
        sweep_rules_from_mapping([RULE, RULE])


# --- properties ----------------------------------------------------------------------------

CHANNELS = ["hdr", "p0", "p1", "p2", "p3"]
amounts = st.integers(0, 2_000)


@st.composite
def rules(draw: st.DrawFn) -> SweepRule:
    kind = draw(st.sampled_from(list(SweepKind)))
    count = draw(st.integers(1, 4))
    priorities = st.integers(0, 3)
    figures: dict[str, Any] = {"min_move_minor": draw(st.sampled_from([0, 0, 50]))}
    low, _, high = sorted(draw(st.lists(amounts, min_size=3, max_size=3)))
    targets = st.none() | st.integers(low, high)
    if kind is SweepKind.ZERO_BALANCING:
        participants = [Participant(c, draw(priorities), draw(st.sampled_from([0, 0, 300])))
                        for c in CHANNELS[1:count + 1]]
        figures["two_way"] = draw(st.booleans())
    else:
        participants = [Participant(c, draw(priorities), 0, draw(targets))
                        for c in CHANNELS[1:count + 1]]
        figures["target_minor"] = draw(targets)
        if kind is SweepKind.THRESHOLD:
            figures["floor_minor"], figures["threshold_minor"] = draw(st.sampled_from(
                [(low, high), (None, high), (low, None)]))
        elif kind is SweepKind.COLLAR:
            figures.update(floor_minor=low, cap_minor=high, to_target=draw(st.booleans()))
    return SweepRule("r", kind, "USD", "hdr", tuple(participants), **figures)


@st.composite
def pools(draw: st.DrawFn) -> tuple[dict[str, int], dict[str, Band]]:
    balances = {c: draw(amounts) for c in CHANNELS if draw(st.integers(0, 9))}
    bands: dict[str, Band] = {}
    for channel in CHANNELS:
        if draw(st.booleans()):
            low, mid, high = sorted(draw(st.lists(amounts, min_size=3, max_size=3)))
            bands[channel] = Band(channel, "USD", low, mid, high)
    return balances, bands


@settings(max_examples=400)
@given(rules(), pools())
def test_a_plan_keeps_the_total_and_takes_no_source_below_its_minimum(
        rule: SweepRule, pool: tuple[dict[str, int], dict[str, Band]]) -> None:
    balances, bands = pool
    result = plan(rule, balances, bands)
    check_sweep(result, balances, bands)
    after = dict(balances)
    sources: set[str] = set()
    for move in result.moves:
        assert move.amount_minor > 0
        assert move.source != move.destination
        assert move.asset == "USD"
        assert rule.header in (move.source, move.destination)  # only ever via the header
        assert move.amount_minor >= rule.min_move_minor
        after[move.source] -= move.amount_minor
        # a header whose balance is unknown still takes sweeps in (it only funds from a
        # balance it knows)
        after[move.destination] = after.get(move.destination, 0) + move.amount_minor
        sources.add(move.source)
    assert sum(after.values()) == sum(balances.values())
    for channel, balance in after.items():
        minimum = bands[channel].min_minor if channel in bands else 0
        assert balance >= 0
        if channel in sources:
            assert balance >= minimum
        else:  # it only received (or was untouched)
            assert balance >= balances.get(channel, 0)
    # a participant either gives or receives, never both; the header pays only what it had
    for participant in rule.participants:
        directions = {m.source == participant.channel for m in result.moves
                      if participant.channel in (m.source, m.destination)}
        assert len(directions) <= 1
    # every participant is either moved, skipped with a reason, or needed nothing
    touched = {m.source for m in result.moves} | {m.destination for m in result.moves}
    skipped = {channel for channel, _ in result.skipped}
    assert not touched & skipped
