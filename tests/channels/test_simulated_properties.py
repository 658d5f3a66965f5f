"""Properties of the simulated rail over random plans, seeds and knobs: every instruction ends
exactly once (settled or failed, and a return only after a settlement), never before it was
submitted, a clearing notice never after its settlement in time, and the same seed replays
the same. A stateful test drives submissions and polls and checks the in-flight rule."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from fundpool.channels.ports import ChannelOutcome, Direction, Instruction, OutcomeKind
from fundpool.channels.profiles import US_PER_DAY, US_PER_SECOND
from fundpool.channels.simulated import ChannelRefused, SimulatedRail
from fundpool.pool.config import parse_config

MONDAY_10H_US = 1_767_607_200_000_000  # 2026-01-05T10:00Z
FAR_FUTURE_US = MONDAY_10H_US + 400 * US_PER_DAY
MINUTE_US = 60 * US_PER_SECOND

CHANNELS: dict[str, dict[str, Any]] = {
    "bank": {"kind": "bank_wire", "assets": ["USD"], "batch_size": 10,
             "cutoff": [{"days": "mon-fri", "open": "08:00", "close": "17:00"}]},
    "rtp": {"kind": "instant_credit", "assets": ["USD"]},
    "card": {"kind": "card_acquirer", "assets": ["USD"], "batch_size": 10},
    "eth": {"kind": "evm_l1", "assets": ["ETH"], "batch_size": 10},
    "l2": {"kind": "evm_l2", "assets": ["ETH"], "batch_size": 10},
    "tron": {"kind": "stablecoin_rail", "assets": ["USDT"], "batch_size": 10},
    "cbdc": {"kind": "cbdc", "assets": ["USD"]},
    "book": {"kind": "book", "assets": ["USD"], "batch_size": 10},
}


def make_rail(channel: str, seed: int, simulation: dict[str, Any]) -> SimulatedRail:
    parsed = parse_config(
        {
            "assets": [
                {"code": "USD", "scale": 2, "kind": "fiat"},
                {"code": "USDT", "scale": 6, "kind": "stablecoin"},
                {"code": "ETH", "scale": 18, "kind": "crypto"},
            ],
            "channels": [{"id": channel, **CHANNELS[channel], "simulation": simulation}],
            "pools": [{"id": "main", "reporting_currency": "USD", "channels": [channel]}],
        }
    )
    return SimulatedRail(parsed.channel(channel), parsed.assets, seed=seed)


@dataclass(frozen=True)
class Step:
    size: int
    gap_us: int  # after the previous submission
    inbound: bool
    poll_after_us: int  # poll this long after submitting


steps = st.builds(
    Step,
    size=st.integers(1, 10),
    gap_us=st.integers(0, 30 * MINUTE_US),
    inbound=st.booleans(),
    poll_after_us=st.integers(0, 3 * 60 * MINUTE_US),
)
rates = st.sampled_from([0.0, 0.1, 0.5, 1.0])
knobs = st.fixed_dictionaries(
    {
        "failure_rate": rates,
        "return_rate": rates,
        "duplicate_rate": rates,
        "out_of_order_rate": rates,
        "late_rate": rates,
        "cleared_after_ms": st.sampled_from([0, 1_000, 100_000_000]),  # up to 28 hours
    }
)


@dataclass
class Run:
    submitted_at_us: dict[str, int]
    rail_refs: dict[str, str]
    polls: list[tuple[int, list[ChannelOutcome]]]
    left: int


def run(channel: str, seed: int, simulation: dict[str, Any], plan: list[Step]) -> Run:
    rail = make_rail(channel, seed, simulation)
    asset = CHANNELS[channel]["assets"][0]
    result = Run({}, {}, [], 0)
    at_us = MONDAY_10H_US
    for number, step in enumerate(plan):
        at_us += step.gap_us
        size = min(step.size, rail.capabilities().batch_size_max)
        direction = Direction.INBOUND if step.inbound else Direction.OUTBOUND
        instructions = [
            Instruction(f"s{number}-{i}", direction, asset, 1_000 + i) for i in range(size)
        ]
        submission = rail.submit(instructions, at_us)
        for instruction in instructions:
            result.submitted_at_us[instruction.payment_id] = at_us
            result.rail_refs[instruction.payment_id] = submission.rail_ref
        until_us = at_us + step.poll_after_us
        result.polls.append((until_us, rail.poll(until_us)))
    result.polls.append((FAR_FUTURE_US, rail.poll(FAR_FUTURE_US)))
    result.left = rail.pending_count()
    return result


@settings(max_examples=150, deadline=None)
@given(
    channel=st.sampled_from(sorted(CHANNELS)),
    seed=st.integers(0, 2**40),
    simulation=knobs,
    plan=st.lists(steps, min_size=1, max_size=8),
)
def test_every_instruction_ends_exactly_once_and_times_hold_together(
    channel: str, seed: int, simulation: dict[str, Any], plan: list[Step]
) -> None:
    result = run(channel, seed, simulation, plan)
    assert result.left == 0
    first: dict[str, ChannelOutcome] = {}
    kinds: dict[str, dict[OutcomeKind, ChannelOutcome]] = {}
    for until_us, outcomes in result.polls:
        for outcome in outcomes:
            assert outcome.at_us <= until_us  # never delivered before it happened
            assert outcome.channel == channel
            assert outcome.rail_ref == result.rail_refs[outcome.payment_id]
            assert outcome.at_us >= result.submitted_at_us[outcome.payment_id]
            if outcome.outcome_id in first:
                assert outcome == first[outcome.outcome_id]  # a duplicate repeats exactly
                continue
            first[outcome.outcome_id] = outcome
            per_payment = kinds.setdefault(outcome.payment_id, {})
            assert outcome.kind not in per_payment  # one outcome id per payment and kind
            per_payment[outcome.kind] = outcome
    assert set(kinds) == set(result.submitted_at_us)
    for per_payment in kinds.values():
        settled = per_payment.get(OutcomeKind.SETTLED)
        failed = per_payment.get(OutcomeKind.FAILED)
        assert (settled is None) != (failed is None)
        if failed is not None:
            assert set(per_payment) == {OutcomeKind.FAILED}
            continue
        assert settled is not None
        cleared = per_payment.get(OutcomeKind.CLEARED)
        if cleared is not None:
            assert cleared.at_us <= settled.at_us
        returned = per_payment.get(OutcomeKind.RETURNED)
        if returned is not None:
            assert returned.at_us >= settled.at_us
    if not any(simulation[k] for k in ("duplicate_rate", "out_of_order_rate", "late_rate")):
        # A rail without chaos delivers each outcome once, in the order things happened.
        delivered = [o for _, outcomes in result.polls for o in outcomes]
        assert len(delivered) == len(first)
        for _, outcomes in result.polls:
            assert [o.at_us for o in outcomes] == sorted(o.at_us for o in outcomes)


@settings(max_examples=40, deadline=None)
@given(
    channel=st.sampled_from(sorted(CHANNELS)),
    seed=st.integers(0, 2**40),
    simulation=knobs,
    plan=st.lists(steps, min_size=1, max_size=5),
)
def test_a_seed_replays_exactly(
    channel: str, seed: int, simulation: dict[str, Any], plan: list[Step]
) -> None:
    assert run(channel, seed, simulation, plan) == run(channel, seed, simulation, plan)


class InFlight(RuleBasedStateMachine):
    """A payment id may not be submitted while the rail still owes its final outcome; once
    that has been delivered (even if a duplicate of it is still to come), it may again."""

    def __init__(self) -> None:
        super().__init__()
        self.rail = make_rail(
            "book",
            seed=9,
            simulation={"failure_rate": 0.5, "latency_median_ms": 3_600_000, "latency_sigma": 1,
                        "duplicate_rate": 0.3, "late_rate": 0.3, "out_of_order_rate": 0.3},
        )
        self.now_us = MONDAY_10H_US
        self.in_flight: dict[str, str] = {}  # payment id -> rail ref, as the rail should see it

    @rule(ids=st.lists(st.sampled_from("abcde"), min_size=1, max_size=3))
    def submit(self, ids: list[str]) -> None:
        instructions = [Instruction(i, Direction.OUTBOUND, "USD", 100) for i in ids]
        refused = len(set(ids)) < len(ids) or any(i in self.in_flight for i in ids)
        pending = self.rail.pending_count()
        if refused:
            with pytest.raises(ChannelRefused) as caught:
                self.rail.submit(instructions, self.now_us)
            assert caught.value.facts["reason"] == "duplicate_payment_id"
            assert self.rail.pending_count() == pending
            return
        submission = self.rail.submit(instructions, self.now_us)
        for payment_id in ids:
            self.in_flight[payment_id] = submission.rail_ref

    @rule(step_us=st.integers(0, 4 * 60 * MINUTE_US))
    def advance(self, step_us: int) -> None:
        self.now_us += step_us
        for outcome in self.rail.poll(self.now_us):
            assert outcome.at_us <= self.now_us
            final = outcome.kind in (OutcomeKind.SETTLED, OutcomeKind.FAILED)
            if final and self.in_flight.get(outcome.payment_id) == outcome.rail_ref:
                del self.in_flight[outcome.payment_id]

    @invariant()
    def next_due_is_in_the_future(self) -> None:
        due = self.rail.next_due_us()
        assert (due is None) == (self.rail.pending_count() == 0)
        assert due is None or due > self.now_us

    def teardown(self) -> None:
        self.advance(FAR_FUTURE_US - self.now_us)
        assert self.in_flight == {}
        assert self.rail.pending_count() == 0


InFlight.TestCase.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
test_in_flight = InFlight.TestCase
