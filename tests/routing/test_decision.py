"""A routing decision survives storage as JSON: it comes back equal, ints as ints."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fundpool.routing import (
    NO_ELIGIBLE_CHANNEL,
    CandidateScore,
    Exclusion,
    FixedPriorityRouter,
    InvalidDecision,
    Router,
    RoutingDecision,
    Strategy,
)
from tests.routing.test_router import DAY_US, Rail, plenty


def through_json(decision: RoutingDecision) -> RoutingDecision:
    return RoutingDecision.from_dict(json.loads(json.dumps(decision.to_dict())))


def test_a_real_decision_round_trips_through_json() -> None:
    rails = [Rail("a", fee_minor=12, latency_us=2 * DAY_US, success_probability=0.93),
             Rail("b", fee_minor=40, max_minor={"USD": 10}),
             Rail("c", fee_minor=31, success_probability=0.999)]
    amount = 2**100  # wei-sized: far beyond what a float holds exactly
    router = Router(rails, seed=9)
    decision = router.decide("pay-1", "USD", amount, 1_780_000_000_000_000,
                             liquidity=plenty(*rails) | {"a": 2**101, "c": 2**101},
                             exclude=["x"])
    again = through_json(decision)
    assert again == decision
    assert type(again.amount_minor) is int
    assert again.amount_minor == amount
    assert type(again.at_us) is int
    chosen = again.candidate(again.channel or "")
    assert type(chosen.fee_minor) is int
    assert type(chosen.latency_us) is int
    assert type(chosen.expected_cost_minor) is float
    assert again.candidate("b").reason == Exclusion.ABOVE_MAXIMUM
    assert again.summary() == decision.summary()


def test_a_decision_without_a_channel_and_a_fixed_one_round_trip() -> None:
    rails = [Rail("a"), Rail("b", assets=frozenset({"EUR"}))]
    none = Router(rails, seed=1).decide("p", "USD", 100, 0, liquidity={})
    assert none.channel is None
    assert through_json(none) == none
    fixed = FixedPriorityRouter(rails, ["a"]).decide("p", "USD", 100, 0, liquidity=plenty(*rails))
    assert fixed.strategy == Strategy.FIXED
    assert through_json(fixed) == fixed


def test_a_score_stored_as_a_whole_number_reads_back_as_a_float() -> None:
    data = CandidateScore("a", True, None, 10, 5, 0.9, 0.9, 0.9, 0.0, 10.0, 11.0).to_dict()
    data["time_cost_minor"] = 0
    score = CandidateScore.from_dict(data)
    assert score.time_cost_minor == 0.0
    assert type(score.time_cost_minor) is float


finite = st.floats(allow_nan=False, allow_infinity=False)
big_int = st.integers(-(2**130), 2**130)


@st.composite
def candidates(draw: st.DrawFn) -> CandidateScore:
    eligible = draw(st.booleans())
    optional_int = st.none() | big_int
    optional_float = st.none() | finite
    return CandidateScore(
        draw(st.text(max_size=20)),
        eligible,
        None if eligible else draw(st.sampled_from(list(Exclusion))),
        draw(optional_int),
        draw(optional_int),
        draw(optional_float),
        draw(optional_float),
        draw(optional_float),
        draw(optional_float),
        draw(optional_float),
        draw(optional_float),
    )


@st.composite
def decisions(draw: st.DrawFn) -> RoutingDecision:
    scores = tuple(draw(st.lists(candidates(), max_size=8)))
    channel = draw(st.none() | st.text(max_size=20))
    return RoutingDecision(
        draw(st.text(max_size=40)),
        draw(big_int),
        draw(st.text(max_size=8)),
        draw(big_int),
        channel,
        NO_ELIGIBLE_CHANNEL if channel is None else None,
        draw(st.booleans()),
        draw(st.sampled_from(list(Strategy))),
        scores,
    )


@settings(max_examples=200, deadline=None)
@given(decisions())
def test_any_decision_round_trips_through_json(decision: RoutingDecision) -> None:
    assert through_json(decision) == decision


def valid() -> dict[str, Any]:
    rails = [Rail("a"), Rail("b", assets=frozenset({"EUR"}))]
    return Router(rails, seed=1).decide("p", "USD", 100, 0, liquidity=plenty(*rails)).to_dict()


@pytest.mark.parametrize(
    "spoil",
    [
        lambda d: d.pop("payment_id"),
        lambda d: d.update(at_us=1.5),
        lambda d: d.update(amount_minor=True),
        lambda d: d.update(amount_minor="100"),
        lambda d: d.update(strategy="random"),
        lambda d: d.update(reason="bored"),
        lambda d: d.update(channel=None),  # no channel, yet no reason
        lambda d: d.update(hedged="no"),
        lambda d: d.update(candidates={"a": 1}),
        lambda d: d["candidates"][0].update(reason="closed"),  # eligible with a reason
        lambda d: d["candidates"][1].update(reason="tired"),
        lambda d: d["candidates"][0].update(fee_minor=1.0),
        lambda d: d["candidates"][0].update(expected_cost_minor="cheap"),
        lambda d: d["candidates"][0].update(expected_cost_minor=float("inf")),
    ],
)
def test_a_malformed_stored_decision_is_refused(spoil: Any) -> None:
    data = valid()
    spoil(data)
    with pytest.raises(InvalidDecision) as raised:
        RoutingDecision.from_dict(data)
    assert raised.value.code == "invalid_decision"
