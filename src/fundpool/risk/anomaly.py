"""An online anomaly model over payouts, learned from the decisions as they are made: the input
of the `anomaly` rule.

river's Half-Space Trees (Tan, Ting and Liu, 2011): random half-space partitions of the
feature cube, each leaf counting how many recent payments fell in it; a payment in sparsely
visited leaves scores near 1. It learns one payment at a time in constant memory, forgets
slowly (a reference window of 250 payments), and is deterministic for a seed and the same
sequence of payments, which the engine's rebuild replays in decision order.

The features are fixed transforms into [0, 1], written here so that a risk officer can read
what the model sees (docs/risk.md): the amount's order of magnitude, whether the payee is new,
the amount against the payee's mean, the payee's payouts in the last ten minutes, the hour of
the day (UTC). No feature reads a simulator's label or a payment's metadata.

A score is given only after `WARM_UP` payments have been learned (before that, `None`: the
rule does not hold), so a fresh engine does not flag everything it sees first.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from fundpool.risk.features import Features
from fundpool.risk.rules import Subject

WINDOW_US = 600_000_000  # the payee's recent payouts: the last ten minutes
WARM_UP = 500
TREES = 25
HEIGHT = 8
REFERENCE_WINDOW = 250
SEED = 16


def _unit(value: float) -> float:
    return 0.0 if value < 0 else 1.0 if value > 1 else value


def anomaly_features(subject: Subject, features: Features, scales: Mapping[str, int]
                     ) -> dict[str, float]:
    """What the model sees of one payment (before the features observe it)."""
    scale = scales.get(subject.asset, 2)
    major = subject.amount / 10**scale if subject.amount else 0.0
    profile = features.profile(subject.payee, subject.asset)
    if profile is None or profile.mean <= 0:
        against_mean = 0.5
    else:
        against_mean = _unit((math.log10(max(subject.amount, 1) / profile.mean) + 3) / 6)
    recent, _ = features.window("payee", subject.payee, WINDOW_US, subject.at_us)
    return {
        "magnitude": _unit(math.log10(major + 1) / 8),
        "new_payee": 0.0 if features.known_payee(subject.payee) else 1.0,
        "against_mean": against_mean,
        "recent": _unit(recent / 20),
        "hour": (subject.at_us // 3_600_000_000 % 24) / 24,
    }


def import_model() -> None:
    """Load river (the model's library) ahead of the first model."""
    import river.anomaly  # noqa: F401


class AnomalyModel:
    """Half-Space Trees over `anomaly_features`; river is imported with the first model."""

    def __init__(self, seed: int = SEED) -> None:
        from river import anomaly

        self._model: Any = anomaly.HalfSpaceTrees(n_trees=TREES, height=HEIGHT,
                                                  window_size=REFERENCE_WINDOW, seed=seed)
        self.learned = 0

    def score(self, x: Mapping[str, float]) -> float | None:
        """0 (ordinary) to 1 (anomalous), or None while warming up."""
        if self.learned < WARM_UP:
            return None
        return round(float(self._model.score_one(dict(x))), 4)

    def learn(self, x: Mapping[str, float]) -> None:
        self._model.learn_one(dict(x))
        self.learned += 1
