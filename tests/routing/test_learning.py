"""What the router learns: success rates (Thompson sampling), hedging, cool-down, determinism."""

from __future__ import annotations

import random

import pytest

from fundpool.routing import Exclusion, Router, RoutingPolicy
from tests.routing.test_router import SECOND_US, Rail, deterministic, plenty


def test_the_posterior_starts_at_the_quote_and_moves_with_outcomes() -> None:
    rail = Rail("a", success_probability=0.9)
    router = Router([rail], policy=RoutingPolicy(prior_weight=10), seed=1)
    first = router.decide("p", "USD", 100, 0, liquidity=plenty(rail)).candidate("a")
    assert first.posterior_mean == pytest.approx(0.9)
    assert first.quoted_success_probability == 0.9
    for second in range(5):  # spaced out, so that no cool-down gets in the way
        router.record("a", "USD", False, second * 60 * SECOND_US)
    later = router.decide("p", "USD", 100, 400 * SECOND_US, liquidity=plenty(rail))
    # (10 x 0.9 + 0) / (10 + 5)
    assert later.candidate("a").posterior_mean == pytest.approx(0.6)
    assert router.outcomes("a", "USD") == (0.0, 5.0)


def test_outcomes_are_learned_per_asset() -> None:
    rail = Rail("a", success_probability=0.9, assets=frozenset({"USD", "EUR"}))
    router = Router([rail], policy=RoutingPolicy(prior_weight=10, cooldown_capacity=1e6),
                    seed=1)
    for _ in range(30):
        router.record("a", "USD", False, 0)
    assert router.outcomes("a", "EUR") == (0.0, 0.0)
    eur = router.decide("p", "EUR", 100, 0, liquidity=plenty(rail)).candidate("a")
    assert eur.posterior_mean == pytest.approx(0.9)


def test_memory_is_bounded_and_keeps_proportions() -> None:
    rail = Rail("a")
    router = Router([rail], policy=RoutingPolicy(evidence_max=10, cooldown_capacity=1e6),
                    seed=1)
    for index in range(1_000):
        router.record("a", "USD", index % 4 != 0, 0)
    successes, failures = router.outcomes("a", "USD")
    assert successes + failures == pytest.approx(10)
    assert successes / (successes + failures) == pytest.approx(0.75, abs=0.05)


def test_traffic_moves_away_from_a_rail_that_overstates_its_success() -> None:
    # The liar is cheaper and claims 0.99, but one payment in four fails on it.
    liar = Rail("liar", fee_minor=20, success_probability=0.99)
    honest = Rail("honest", fee_minor=25, success_probability=0.97)
    true_success = {"liar": 0.6, "honest": 0.97}
    # Cool-down is switched off: this test is about what the posterior learns.
    router = Router([liar, honest], policy=RoutingPolicy(cooldown_capacity=1e9), seed=7)
    world = random.Random(11)
    chosen: list[str] = []
    for index in range(2_000):
        at_us = index * SECOND_US
        decision = router.decide(f"p{index}", "USD", 10_000, at_us,
                                 liquidity=plenty(liar, honest))
        assert decision.channel is not None
        chosen.append(decision.channel)
        router.record(decision.channel, "USD", world.random() < true_success[decision.channel],
                      at_us)

    def liar_share(window: list[str]) -> float:
        return window.count("liar") / len(window)

    assert liar_share(chosen[:20]) > 0.7  # it believed the quote at first
    assert liar_share(chosen[1_000:]) < 0.15  # and learned; the hedge keeps some traffic there
    assert liar_share(chosen[1_000:]) > 0.005
    successes, failures = router.outcomes("liar", "USD")
    assert successes / (successes + failures) == pytest.approx(0.6, abs=0.1)


@pytest.mark.parametrize("hedge_share", [0.05, 0.2])
def test_hedging_takes_about_its_share_and_never_the_best(hedge_share: float) -> None:
    rails = [Rail("best", fee_minor=10), Rail("b", fee_minor=100), Rail("c", fee_minor=100)]
    router = Router(rails, policy=deterministic(hedge_share=hedge_share), seed=5)
    decisions = [
        router.decide(f"p{i}", "USD", 100, i, liquidity=plenty(*rails)) for i in range(4_000)
    ]
    hedged = [d for d in decisions if d.hedged]
    assert len(hedged) / len(decisions) == pytest.approx(hedge_share, abs=0.02)
    assert all(d.channel != "best" for d in hedged)
    assert {d.channel for d in hedged} == {"b", "c"}
    assert all(d.channel == "best" for d in decisions if not d.hedged)


def test_no_hedge_without_an_alternative() -> None:
    rail = Rail("only")
    router = Router([rail], policy=RoutingPolicy(hedge_share=0.5), seed=5)
    assert not any(
        router.decide("p", "USD", 100, 0, liquidity=plenty(rail)).hedged for _ in range(200)
    )


# --- cool-down -----------------------------------------------------------------------------


def test_cool_down_trips_at_capacity_and_resumes_below_the_resume_level() -> None:
    # capacity 5, leak 0.1/s, resume below 2: from a full bucket, 30 s of draining.
    rails = [Rail("a", fee_minor=1), Rail("b", fee_minor=100)]
    router = Router(rails, policy=deterministic(), seed=1)
    liquidity = plenty(*rails)
    start = 1_000 * SECOND_US
    for _ in range(4):
        router.record("a", "USD", False, start)
    assert not router.cooling_down("a", start)
    assert router.decide("p", "USD", 100, start, liquidity=liquidity).channel == "a"
    router.record("a", "USD", False, start)
    assert router.cooling_down("a", start)
    decision = router.decide("p", "USD", 100, start + SECOND_US, liquidity=liquidity)
    assert decision.channel == "b"
    assert decision.candidate("a").reason == Exclusion.COOLING_DOWN
    # Below capacity (4.5 after 5 s) is not enough: it stays out until below 2.
    assert router.cooling_down("a", start + 5 * SECOND_US)
    assert router.cooling_down("a", start + 29 * SECOND_US)
    assert not router.cooling_down("a", start + 31 * SECOND_US)
    resumed = router.decide("p", "USD", 100, start + 31 * SECOND_US, liquidity=liquidity)
    assert resumed.channel == "a"
    # The bucket is not empty (1.9): four more failures at once trip it again, not five.
    for _ in range(3):
        router.record("a", "USD", False, start + 31 * SECOND_US)
    assert not router.cooling_down("a", start + 31 * SECOND_US)
    router.record("a", "USD", False, start + 31 * SECOND_US)
    assert router.cooling_down("a", start + 31 * SECOND_US)


def test_failures_that_drain_between_them_never_trip_it() -> None:
    router = Router([Rail("a")], seed=1)
    for index in range(100):  # one failure every 10 s drains exactly as fast as it fills
        router.record("a", "USD", False, index * 10 * SECOND_US)
        assert not router.cooling_down("a", index * 10 * SECOND_US)


def test_successes_do_not_fill_the_bucket() -> None:
    router = Router([Rail("a")], seed=1)
    for _ in range(100):
        router.record("a", "USD", True, 0)
    assert not router.cooling_down("a", 0)


def test_an_outcome_reported_late_still_counts_and_time_never_runs_back() -> None:
    router = Router([Rail("a")], seed=1)
    now = 100 * SECOND_US
    for _ in range(3):
        router.record("a", "USD", False, now)
    for _ in range(2):  # late reports of earlier failures
        router.record("a", "USD", False, now - 50 * SECOND_US)
    assert router.cooling_down("a", now)
    assert router.cooling_down("a", now + 29 * SECOND_US)
    assert not router.cooling_down("a", now + 31 * SECOND_US)


def test_cool_down_is_per_channel_not_per_asset() -> None:
    rails = [Rail("a", fee_minor=1, assets=frozenset({"USD", "EUR"})), Rail("b", fee_minor=9,
             assets=frozenset({"USD", "EUR"}))]
    router = Router(rails, policy=deterministic(), seed=1)
    for _ in range(5):
        router.record("a", "USD", False, 0)
    decision = router.decide("p", "EUR", 100, 0, liquidity=plenty(*rails))
    assert decision.candidate("a").reason == Exclusion.COOLING_DOWN


# --- determinism ---------------------------------------------------------------------------


def run(seed: int) -> list[dict[str, object]]:
    rails = [Rail("a", fee_minor=20, success_probability=0.95),
             Rail("b", fee_minor=22, success_probability=0.9),
             Rail("c", fee_minor=25, success_probability=0.99)]
    router = Router(rails, seed=seed)
    world = random.Random(3)
    decisions = []
    for index in range(300):
        decision = router.decide(f"p{index}", "USD", 1_000 + index, index * SECOND_US,
                                 liquidity=plenty(*rails))
        decisions.append(decision.to_dict())
        if decision.channel is not None:
            router.record(decision.channel, "USD", world.random() < 0.8, index * SECOND_US)
    return decisions


def test_the_same_seed_gives_the_same_decisions() -> None:
    assert run(42) == run(42)
    assert run(42) != run(43)


def test_hedges_favour_the_nearly_competitive_rail_but_spare_none() -> None:
    rails = [Rail("best", fee_minor=10), Rail("near", fee_minor=12), Rail("far", fee_minor=600)]
    router = Router(rails, policy=deterministic(hedge_share=0.5), seed=2)
    hedged = [
        d.channel
        for d in (router.decide(f"p{i}", "USD", 100, i, liquidity=plenty(*rails))
                  for i in range(6_000))
        if d.hedged
    ]
    # Weights 1 / (1 + expected cost): about 1/13 against 1/607.
    assert hedged.count("near") > 20 * hedged.count("far")
    assert hedged.count("far") > 0
