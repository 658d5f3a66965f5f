"""Smart routing: which rail carries a payment, learned online from outcomes (router.py)."""

from fundpool.routing.decision import (
    NO_ELIGIBLE_CHANNEL,
    CandidateScore,
    Exclusion,
    InvalidDecision,
    RoutingDecision,
    Strategy,
)
from fundpool.routing.policy import DEFAULT_POLICY, InvalidRoutingPolicy, RoutingPolicy
from fundpool.routing.router import (
    FixedPriorityRouter,
    InvalidRouter,
    Router,
    RoutingStrategy,
    UnknownChannel,
)

__all__ = [
    "DEFAULT_POLICY",
    "NO_ELIGIBLE_CHANNEL",
    "CandidateScore",
    "Exclusion",
    "FixedPriorityRouter",
    "InvalidDecision",
    "InvalidRouter",
    "InvalidRoutingPolicy",
    "Router",
    "RoutingDecision",
    "RoutingPolicy",
    "RoutingStrategy",
    "Strategy",
    "UnknownChannel",
]
