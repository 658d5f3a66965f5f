"""What a routing decision keeps: the rail chosen (or why none) and every candidate's scores,
so that the console can answer "why was this route chosen" long after the fact.

`to_dict()` gives plain JSON values (ints stay ints, whatever their size; floats stay floats)
and `from_dict()` takes them back, so a decision can be stored in a table as JSON and read
again equal to what it was.

The scores are floats in minor units of the payment's asset. They only rank rails: no amount
that is ever posted is derived from them (a posted fee comes from the chosen rail's quote).

A rail priced by its congestion (channels/congestion.py) has the dynamic part of its fee in
`dynamic_fee_minor` (already in `fee_minor`) and the reason in `fee_explanation`; the
decision keeps the risk grade that priced it (`risk_grade`), so that a failover is priced
alike. Fields that are None are not written, so a decision without dynamic fees is stored
exactly as before.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from fundpool.channels.limits import LimitBreach
from fundpool.core.errors import FundpoolError


class Exclusion(StrEnum):
    """Why a candidate could not carry the payment. Stable codes, checked in this order; a
    candidate reports the first that applies."""

    ASSET_NOT_CARRIED = "asset_not_carried"
    BELOW_MINIMUM = LimitBreach.BELOW_MINIMUM.value  # channels/limits.py: the one check
    ABOVE_MAXIMUM = LimitBreach.ABOVE_MAXIMUM.value
    CLOSED = "closed"  # outside every cut-off window at the decision's instant
    COOLING_DOWN = "cooling_down"  # too many recent failures (leaky bucket)
    EXCLUDED = "excluded"  # the caller already tried it for this payment (failover)
    INSUFFICIENT_LIQUIDITY = "insufficient_liquidity"  # available < amount + quoted fee


NO_ELIGIBLE_CHANNEL = "no_eligible_channel"


class Strategy(StrEnum):
    LEARNED = "learned"
    FIXED = "fixed"


class InvalidDecision(FundpoolError):
    code = "invalid_decision"
    title = "the stored routing decision is not well formed"


# Not frozen, as payments.model.Payment is not: one is made for every payout on the
# dispatcher's path, and a frozen __init__ costs several times a plain one. Treat as immutable.
@dataclass(slots=True)
class CandidateScore:
    """One rail's part in a decision. The quote's figures are None when the rail was not
    quoted (a constraint that needs no quote ruled it out first); the scores are None when it
    was not eligible. `posterior_mean` and `sampled_success_probability` are None under the
    fixed strategy, which learns nothing; its expected cost uses the quoted probability."""

    channel: str
    eligible: bool
    reason: str | None  # an `Exclusion` code; None when eligible
    fee_minor: int | None = None
    latency_us: int | None = None
    quoted_success_probability: float | None = None
    posterior_mean: float | None = None
    sampled_success_probability: float | None = None
    time_cost_minor: float | None = None
    retry_cost_minor: float | None = None
    expected_cost_minor: float | None = None
    # The congestion fee inside `fee_minor`, and its factors in words (channels/congestion.py);
    # None when the rail has no dynamic fee for the asset.
    dynamic_fee_minor: int | None = None
    fee_explanation: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Fields that are None are left out (a decision is stored for every payment, and most
        candidates of a multi-asset pool are simply `asset_not_carried`). Written out field by
        field, in the fields' order: a loop over their names costs twice as much."""
        data: dict[str, Any] = {"channel": self.channel, "eligible": self.eligible}
        if self.reason is not None:
            data["reason"] = self.reason
        if self.fee_minor is not None:
            data["fee_minor"] = self.fee_minor
        if self.latency_us is not None:
            data["latency_us"] = self.latency_us
        if self.quoted_success_probability is not None:
            data["quoted_success_probability"] = self.quoted_success_probability
        if self.posterior_mean is not None:
            data["posterior_mean"] = self.posterior_mean
        if self.sampled_success_probability is not None:
            data["sampled_success_probability"] = self.sampled_success_probability
        if self.time_cost_minor is not None:
            data["time_cost_minor"] = self.time_cost_minor
        if self.retry_cost_minor is not None:
            data["retry_cost_minor"] = self.retry_cost_minor
        if self.expected_cost_minor is not None:
            data["expected_cost_minor"] = self.expected_cost_minor
        if self.dynamic_fee_minor is not None:
            data["dynamic_fee_minor"] = self.dynamic_fee_minor
        if self.fee_explanation is not None:
            data["fee_explanation"] = self.fee_explanation
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CandidateScore:
        read = _Reader(data, "candidate")
        reason = read.optional_text("reason")
        eligible = read.flag("eligible")
        if eligible != (reason is None):
            raise InvalidDecision("a candidate has a reason exactly when it is not eligible",
                                  field="reason", value=reason)
        return cls(
            channel=read.text("channel"),
            eligible=eligible,
            reason=None if reason is None else read.code(reason, Exclusion, "reason"),
            fee_minor=read.optional_integer("fee_minor"),
            latency_us=read.optional_integer("latency_us"),
            quoted_success_probability=read.optional_number("quoted_success_probability"),
            posterior_mean=read.optional_number("posterior_mean"),
            sampled_success_probability=read.optional_number("sampled_success_probability"),
            time_cost_minor=read.optional_number("time_cost_minor"),
            retry_cost_minor=read.optional_number("retry_cost_minor"),
            expected_cost_minor=read.optional_number("expected_cost_minor"),
            dynamic_fee_minor=read.optional_integer("dynamic_fee_minor"),
            fee_explanation=read.optional_text("fee_explanation"),
        )


# Not frozen, as payments.model.Payment is not: one is made for every payout on the
# dispatcher's path, and a frozen __init__ costs several times a plain one. Treat as immutable.
@dataclass(slots=True)
class RoutingDecision:
    payment_id: str
    at_us: int
    asset: str
    amount_minor: int
    channel: str | None  # the rail chosen; None when no candidate was eligible
    reason: str | None  # None when a rail was chosen, else `no_eligible_channel`
    hedged: bool  # chosen to keep learning, not because it scored best
    strategy: str  # a `Strategy`
    candidates: tuple[CandidateScore, ...]  # every adapter, in the router's order
    # The payment's risk grade when a dynamic fee weighed it (None: none did, or not graded).
    risk_grade: str | None = None

    def candidate(self, channel: str) -> CandidateScore:
        for score in self.candidates:
            if score.channel == channel:
                return score
        raise KeyError(channel)

    def summary(self) -> str:
        """One line for a person: what was chosen and why, or why nothing was."""
        if self.channel is None:
            reasons = ", ".join(f"{c.channel}: {c.reason}" for c in self.candidates)
            return f"no eligible channel ({reasons or 'no channels'})"
        chosen = self.candidate(self.channel)
        why = "hedge (kept learning)" if self.hedged else f"{self.strategy} choice"
        others = sorted(
            (c for c in self.candidates if c.eligible and c.channel != self.channel),
            key=lambda c: c.expected_cost_minor or 0.0,
        )
        runner_up = (
            f"; next {others[0].channel} at {others[0].expected_cost_minor:.2f}"
            f"{_congestion_note(others[0], 'its fee')}" if others else ""
        )
        probability = (
            chosen.quoted_success_probability
            if chosen.sampled_success_probability is None
            else chosen.sampled_success_probability
        )
        # A rail that would have cost less than the chosen one but for its congestion fee
        # (its expected cost less that fee: the fee's share of its retry cost is left in).
        cost = chosen.expected_cost_minor or 0.0
        priced_out = [
            c.channel for c in others
            if c.dynamic_fee_minor and (c.expected_cost_minor or 0.0) - c.dynamic_fee_minor < cost
        ]
        congested = f"; priced out by congestion: {', '.join(priced_out)}" if priced_out else ""
        return (
            f"{self.channel} ({why}): expected cost {chosen.expected_cost_minor:.2f} = fee "
            f"{chosen.fee_minor} + time {chosen.time_cost_minor:.2f} + (1 - {probability:.3f})"
            f" x retry {chosen.retry_cost_minor:.2f}{_congestion_note(chosen, 'fee')}{runner_up}"
            f"{congested}"
        )

    def to_dict(self) -> dict[str, Any]:
        data = {
            "payment_id": self.payment_id,
            "at_us": self.at_us,
            "asset": self.asset,
            "amount_minor": self.amount_minor,
            "channel": self.channel,
            "reason": self.reason,
            "hedged": self.hedged,
            "strategy": str(self.strategy),
            "candidates": [c.to_dict() for c in self.candidates],
        }
        if self.risk_grade is not None:
            data["risk_grade"] = self.risk_grade
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RoutingDecision:
        read = _Reader(data, "decision")
        candidates = data.get("candidates")
        if not isinstance(candidates, list | tuple) or not all(
            isinstance(c, Mapping) for c in candidates
        ):
            raise InvalidDecision("candidates must be a list of objects", field="candidates")
        reason = read.optional_text("reason")
        channel = read.optional_text("channel")
        if reason != (NO_ELIGIBLE_CHANNEL if channel is None else None):
            raise InvalidDecision(
                f"the reason is {NO_ELIGIBLE_CHANNEL!r} exactly when no channel was chosen",
                field="reason",
                value=reason,
            )
        return cls(
            payment_id=read.text("payment_id"),
            at_us=read.integer("at_us"),
            asset=read.text("asset"),
            amount_minor=read.integer("amount_minor"),
            channel=channel,
            reason=reason,
            hedged=read.flag("hedged"),
            strategy=read.code(read.text("strategy"), Strategy, "strategy"),
            candidates=tuple(CandidateScore.from_dict(c) for c in candidates),
            risk_grade=read.optional_text("risk_grade"),
        )


def _congestion_note(candidate: CandidateScore, whose: str) -> str:
    """`" (fee includes congestion base fee 1.20 × 1.5 (window 09–17 UTC) = 1.80)"`, for a
    rail whose fee has a dynamic part; nothing for one without."""
    if candidate.fee_explanation is None:
        return ""
    return f" ({whose} {candidate.fee_minor} includes {candidate.fee_explanation})"


class _Reader:
    """Typed reads from a JSON object, naming the field that is wrong."""

    def __init__(self, data: Mapping[str, Any], what: str) -> None:
        if not isinstance(data, Mapping):
            raise InvalidDecision(f"a {what} must be an object")
        self.data = data
        self.what = what

    def _fail(self, name: str, expected: str) -> InvalidDecision:
        return InvalidDecision(
            f"{self.what}.{name} must be {expected}", field=name, value=self.data.get(name)
        )

    def text(self, name: str) -> str:
        value = self.data.get(name)
        if not isinstance(value, str):
            raise self._fail(name, "a string")
        return value

    def optional_text(self, name: str) -> str | None:
        return None if self.data.get(name) is None else self.text(name)

    def flag(self, name: str) -> bool:
        value = self.data.get(name)
        if not isinstance(value, bool):
            raise self._fail(name, "true or false")
        return value

    def integer(self, name: str) -> int:
        value = self.data.get(name)
        if not isinstance(value, int) or isinstance(value, bool):
            raise self._fail(name, "an integer")
        return value

    def optional_integer(self, name: str) -> int | None:
        return None if self.data.get(name) is None else self.integer(name)

    def optional_number(self, name: str) -> float | None:
        value = self.data.get(name)
        if value is None:
            return None
        # A store may hand back 3.0 as 3; it is the same score.
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self._fail(name, "a number")
        number = float(value)
        if not math.isfinite(number):
            raise self._fail(name, "a finite number")
        return number

    def code(self, value: str, codes: type[StrEnum], name: str) -> str:
        try:
            return codes(value)
        except ValueError:
            raise self._fail(name, f"one of {[c.value for c in codes]}") from None
