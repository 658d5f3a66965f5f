"""What routing weighs, and how fast it learns and forgives: one frozen value, checked once.

The defaults, and why:

- `time_value_bps_per_year = 500`: money in transit earns nothing, so its float is priced at
  about what a treasury earns on cash (5 % a year). $1,000 on a one-day rail costs 13.7 cents
  of float; $1,000,000 on a three-day wire costs $411, which is why large payments go fast.
- `urgency_minor_per_second` (per asset, none by default): what a second of the payee's wait
  is worth beyond the float, for pools that promise speed.
- `failure_cost_minor` (per asset, none by default): what a failed attempt costs beyond the
  next attempt's fee and float (operations, the payee's patience, an attempt used up). Zero
  by default because only the operator knows it; the retry cost without it is already the
  price of the next attempt (see router.py).
- `prior_weight = 20`: a rail's own success estimate counts as 20 observed payments. Enough
  that one early failure does not condemn a rail, little enough that a few dozen real
  outcomes outweigh a rail that flatters itself.
- `evidence_max = 1,000`: outcomes are remembered up to this many per (channel, asset); older
  ones fade in proportion, so a rail that degrades (or recovers) is noticed within about a
  thousand payments instead of never.
- `hedge_share = 0.05`: one decision in twenty goes to another eligible rail than the best,
  so a rail that fell out of favour keeps being measured. Thompson sampling explores on its
  own; the hedge is for rails whose posterior is confidently (perhaps stale-ly) bad.
- Cool-down, a leaky bucket per channel: each failure adds 1, the bucket drains at
  `cooldown_leak_per_second = 0.1` (one failure forgiven every 10 s); at
  `cooldown_capacity = 5` the channel is out until it drains below
  `cooldown_resume_level = 2`, i.e. at least 30 s after tripping. Five failures within a
  few seconds is an outage, not bad luck; the gap between 5 and 2 keeps a flapping rail from
  toggling on every failure.
- `max_attempts = 3`: the first rail and two failovers, for the caller's loop.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from fundpool.core.errors import FundpoolError

TIME_VALUE_BPS_PER_YEAR_MAX = 100_000  # 1,000 % a year: anything above is a typo
PRIOR_WEIGHT_MAX = 1e12
EVIDENCE_MAX_MAX = 1e9
HEDGE_SHARE_MAX = 0.5  # above this the router is a random router
ATTEMPTS_MAX = 10


class InvalidRoutingPolicy(FundpoolError):
    code = "invalid_routing_policy"
    title = "the routing policy is not valid"


@dataclass(frozen=True, slots=True)
class RoutingPolicy:
    time_value_bps_per_year: int = 500
    urgency_minor_per_second: Mapping[str, float] = field(default_factory=dict)
    failure_cost_minor: Mapping[str, int] = field(default_factory=dict)
    prior_weight: float = 20.0
    evidence_max: float = 1_000.0
    hedge_share: float = 0.05
    cooldown_capacity: float = 5.0
    cooldown_leak_per_second: float = 0.1
    cooldown_resume_level: float = 2.0
    max_attempts: int = 3

    def __post_init__(self) -> None:
        # Copies, so that a caller mutating its dict later cannot change a policy in use.
        object.__setattr__(self, "urgency_minor_per_second", dict(self.urgency_minor_per_second))
        object.__setattr__(self, "failure_cost_minor", dict(self.failure_cost_minor))
        _check(
            _is_int(self.time_value_bps_per_year)
            and 0 <= self.time_value_bps_per_year <= TIME_VALUE_BPS_PER_YEAR_MAX,
            "time_value_bps_per_year",
            f"an integer from 0 to {TIME_VALUE_BPS_PER_YEAR_MAX}",
            self.time_value_bps_per_year,
        )
        for asset, urgency in self.urgency_minor_per_second.items():
            _check(
                _is_number(urgency) and urgency >= 0,
                f"urgency_minor_per_second.{asset}",
                "a finite number >= 0",
                urgency,
            )
        for asset, cost in self.failure_cost_minor.items():
            _check(
                _is_int(cost) and cost >= 0, f"failure_cost_minor.{asset}", "an integer >= 0", cost
            )
        _check(
            _is_number(self.prior_weight) and 0 < self.prior_weight <= PRIOR_WEIGHT_MAX,
            "prior_weight",
            f"a number above 0, at most {PRIOR_WEIGHT_MAX:g}",
            self.prior_weight,
        )
        _check(
            _is_number(self.evidence_max) and 1 <= self.evidence_max <= EVIDENCE_MAX_MAX,
            "evidence_max",
            f"a number from 1 to {EVIDENCE_MAX_MAX:g}",
            self.evidence_max,
        )
        _check(
            _is_number(self.hedge_share) and 0 <= self.hedge_share <= HEDGE_SHARE_MAX,
            "hedge_share",
            f"a share from 0 to {HEDGE_SHARE_MAX}",
            self.hedge_share,
        )
        _check(
            _is_number(self.cooldown_capacity) and self.cooldown_capacity >= 1,
            "cooldown_capacity",
            "a number >= 1 (failures)",
            self.cooldown_capacity,
        )
        _check(
            _is_number(self.cooldown_leak_per_second) and self.cooldown_leak_per_second > 0,
            "cooldown_leak_per_second",
            "a number above 0: a bucket that never drains would keep a channel out for ever",
            self.cooldown_leak_per_second,
        )
        _check(
            _is_number(self.cooldown_resume_level)
            and 0 < self.cooldown_resume_level < self.cooldown_capacity,
            "cooldown_resume_level",
            "a number above 0 and below cooldown_capacity",
            self.cooldown_resume_level,
        )
        _check(
            _is_int(self.max_attempts) and 1 <= self.max_attempts <= ATTEMPTS_MAX,
            "max_attempts",
            f"an integer from 1 to {ATTEMPTS_MAX}",
            self.max_attempts,
        )

    def urgency(self, asset: str) -> float:
        return self.urgency_minor_per_second.get(asset, 0.0)

    def failure_cost(self, asset: str) -> int:
        return self.failure_cost_minor.get(asset, 0)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
    )


def _check(condition: bool, name: str, expected: str, value: object) -> None:
    if not condition:
        raise InvalidRoutingPolicy(f"{name} must be {expected}", field=name, value=value)


DEFAULT_POLICY = RoutingPolicy()
