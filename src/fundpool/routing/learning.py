"""What the router learns from outcomes: success rates per (channel, asset) and a cool-down per
channel. Time comes only from the `at_us` the caller passes; nothing here reads a clock.
"""

from __future__ import annotations

from fundpool.routing.policy import RoutingPolicy

# A rail's own estimate of 0 or 1 would make one side of the Beta prior empty (betavariate
# needs both parameters above 0) and would claim a certainty no rail has.
PROBABILITY_FLOOR = 0.001
PROBABILITY_CEILING = 0.999
_US_PER_SECOND = 1_000_000


def clamp_probability(probability: float) -> float:
    if probability != probability:  # NaN: a broken quote claims nothing
        return 0.5
    return min(PROBABILITY_CEILING, max(PROBABILITY_FLOOR, probability))


class Outcomes:
    """Successes and failures seen on one (channel, asset), with a bounded memory: past
    `evidence_max` outcomes both counts shrink in proportion, so recent outcomes weigh as
    much as old ones did and a rail that changes is noticed."""

    __slots__ = ("failures", "successes")

    def __init__(self) -> None:
        self.successes = 0.0
        self.failures = 0.0

    def add(self, success: bool, evidence_max: float) -> None:
        if success:
            self.successes += 1.0
        else:
            self.failures += 1.0
        total = self.successes + self.failures
        if total > evidence_max:
            shrink = evidence_max / total
            self.successes *= shrink
            self.failures *= shrink

    def beta(self, quoted_probability: float, prior_weight: float) -> tuple[float, float]:
        """The Beta posterior's (alpha, beta): the quote is worth `prior_weight`
        observations, made afresh from each quote (a rail may quote differently by amount)."""
        prior = clamp_probability(quoted_probability)
        return (
            prior_weight * prior + self.successes,
            prior_weight * (1.0 - prior) + self.failures,
        )


class CoolDown:
    """A leaky bucket of failures for one channel (docs in policy.py). Out-of-order times are
    taken as they come: an outcome reported with an earlier `at_us` than the last one adds its
    failure without draining backwards."""

    __slots__ = ("level", "out", "updated_at_us")

    def __init__(self) -> None:
        self.level = 0.0
        self.updated_at_us: int | None = None
        self.out = False

    def _drain(self, at_us: int, policy: RoutingPolicy) -> None:
        if self.updated_at_us is None:
            self.updated_at_us = at_us
            return
        elapsed_us = at_us - self.updated_at_us
        if elapsed_us > 0:
            drained = policy.cooldown_leak_per_second * elapsed_us / _US_PER_SECOND
            self.level = max(0.0, self.level - drained)
            self.updated_at_us = at_us

    def fail(self, at_us: int, policy: RoutingPolicy) -> None:
        self._drain(at_us, policy)
        self.level += 1.0
        if self.level >= policy.cooldown_capacity:
            self.out = True

    def is_out(self, at_us: int, policy: RoutingPolicy) -> bool:
        if not self.out:
            return False
        self._drain(at_us, policy)
        if self.level < policy.cooldown_resume_level:
            self.out = False
        return self.out
