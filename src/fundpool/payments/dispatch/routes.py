"""Which rail an outbound payment's attempt goes on, and the steps that follow from it.

The router picks among the rails a payout can take (a book rail never carries one) by its
hard constraints and expected cost; the decision is stored with the route, every candidate's
scores included. The fee is the chosen rail's quote, with its congestion fee when the
router's `CongestionMeter` prices the rail (routing/congestion.py); a rail a payment names is
priced the same way, and its route says so (`dynamic_fee_minor`, `fee_explanation`).

A payment that names its rail is checked against that rail at intake as a routed one is by
the router: the dispatcher has the rail, the amount is within the rail's own limits, and the
rail holds the amount and its fee. If not, intake rejects it with the reason (`no_rail`,
`below_minimum`, `above_maximum`, `insufficient_liquidity`) rather than lock funds it cannot
have or send it to a rail that would refuse it, and the whole batch it went out in. (A payout
naming a book rail never gets this far: the payment service refuses it at creation.) A named
rail is used as named and never failed over. A transfer between the pool's own channels goes
on its source channel and is not re-routed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fundpool.channels.limits import limit_breach
from fundpool.channels.ports import Capabilities, ChannelAdapter
from fundpool.core.actor import Actor
from fundpool.core.errors import invariant
from fundpool.payments.dispatch.liquidity import Liquidity
from fundpool.payments.model import Action, Payment, PaymentEvent, Step
from fundpool.payments.ports import ApprovalGate
from fundpool.payments.records import RouteRecord
from fundpool.payments.rules import NOT_FOR_PAYOUTS
from fundpool.routing.decision import Exclusion
from fundpool.routing.router import RoutingStrategy

NO_ELIGIBLE_CHANNEL = "no_eligible_channel"
# The risk engine's reasons for a hold begin with the outcome (risk/rules.py `Verdict.reason`:
# "risk review: <groups>"); a person's hold names none.
_HELD_GRADES = (("risk review", "review"), ("risk hold", "hold"))
# Why intake rejects a payment that names its rail, beside the router's `Exclusion` codes:
NO_RAIL = "no_rail"  # the pool has the channel, but this dispatcher has no adapter for it


class RouteChooser:
    """Routes on the dispatcher's rails. `rails` is the dispatcher's own mapping (shared, not
    copied); `capabilities` each rail's, read once."""

    def __init__(
        self,
        rails: Mapping[str, ChannelAdapter],
        capabilities: Mapping[str, Capabilities],
        router: RoutingStrategy,
    ) -> None:
        self._rails = rails
        self._capabilities = capabilities
        self._router = router
        self._congestion = router.congestion
        # Whether a payment's risk grade can change its fee: only then is it looked up.
        self.prices_risk = self._congestion is not None and self._congestion.prices_risk()
        self._book_rails = frozenset(
            cid for cid, caps in capabilities.items() if caps.kind in NOT_FOR_PAYOUTS
        )

    def route(
        self,
        payment: Payment,
        attempt: int,
        at_us: int,
        liquidity: Liquidity,
        tried: Sequence[str],
        risk_grade: str | None = None,
    ) -> tuple[RouteRecord, int | None]:
        """Choose the rail for an outbound payment's attempt (or take the one it names): the
        route to store, and the chosen rail's quoted fee (None when there is no rail).
        `risk_grade` is what risk control made of the payment, for a dynamic fee that
        weighs it (None: not known)."""
        if payment.channel is not None and attempt == 1:
            # The caller named the rail: it is used as named, priced by its quote, and not
            # failed over to another (the caller may have reasons the router cannot see).
            # It must still be able to carry the payment now, as a routed rail must: else
            # the payment would lock funds it cannot have, or go to a rail that refuses it
            # (and with it the whole batch it went in).
            decision: dict[str, Any] = {"strategy": "given", "channel": payment.channel}
            problem, fee = self.named_rail_problem(payment, at_us, liquidity, risk_grade,
                                                   decision)
            if problem is not None:
                decision["reason"] = problem
                return RouteRecord(payment.id, attempt, at_us, None, "given", decision), None
            decision["fee_minor"] = fee
            liquidity.take(payment.asset, payment.channel, payment.amount_minor + fee)
            return (RouteRecord(payment.id, attempt, at_us, payment.channel, "given", decision),
                    fee)
        if payment.kind.between_channels:
            # A transfer between the pool's own channels is not re-routed: its rail is its
            # source channel. After a failure it fails.
            reason = ("a transfer names its source channel" if attempt == 1
                      else "transfers are not re-routed")
            return RouteRecord(payment.id, attempt, at_us, None, "given",
                               {"strategy": "given", "reason": reason}), None
        available = liquidity.for_asset(payment.asset)
        excluded = self._book_rails.union(tried) if tried else self._book_rails
        routed = self._router.decide(
            payment.id, payment.asset, payment.amount_minor, at_us,
            liquidity=available, exclude=excluded, risk_grade=risk_grade,
        )
        record = RouteRecord(payment.id, attempt, at_us, routed.channel, str(routed.strategy),
                             routed.to_dict())
        if routed.channel is None:
            return record, None
        quoted = routed.candidate(routed.channel).fee_minor
        invariant(quoted is not None, "a chosen rail was quoted")
        liquidity.take(payment.asset, routed.channel, payment.amount_minor + (quoted or 0))
        return record, quoted

    def named_rail_problem(
        self,
        payment: Payment,
        at_us: int,
        liquidity: Liquidity,
        risk_grade: str | None = None,
        decision: dict[str, Any] | None = None,
    ) -> tuple[str | None, int]:
        """Why the rail a payment names cannot carry it now (None: it can), and the fee it
        quotes (a deposit's is the channel's schedule, as created), its congestion fee
        included (whose part and reason go into `decision`, when given). The router's own
        constraints, in its order, where they apply to a named rail; a closed rail is no
        problem here: the payment waits in its queue until it opens."""
        channel = payment.channel or ""
        caps = self._capabilities.get(channel)
        rail = self._rails.get(channel)
        fee = payment.fee_minor
        if caps is None or rail is None:
            return NO_RAIL, fee
        asset, amount = payment.asset, payment.amount_minor
        if asset not in caps.assets:
            return Exclusion.ASSET_NOT_CARRIED.value, fee
        breach = limit_breach(caps.limits_for(asset), amount)
        if breach is not None:
            return breach.value, fee  # below_minimum, above_maximum: as the router says
        if payment.kind.inbound:
            return None, fee
        fee = rail.quote(asset, amount, at_us).fee_minor
        if self._congestion is not None:
            extra = self._congestion.quote(channel, asset, at_us, risk_grade)
            if extra is not None:
                fee += extra.fee_minor
                if decision is not None:
                    decision.update(dynamic_fee_minor=extra.fee_minor,
                                    fee_explanation=extra.explanation)
                    if extra.risk_grade is not None:
                        decision["risk_grade"] = extra.risk_grade
        if liquidity.for_asset(asset).get(channel, 0) < amount + fee:
            return Exclusion.INSUFFICIENT_LIQUIDITY.value, fee
        return None, fee


def steps_after_route(payment: Payment, route: RouteRecord, fee: int | None,
                      actor: Actor | None = None, gate: ApprovalGate | None = None,
                      risk: tuple[str, int, int | None] | None = None) -> list[Step]:
    """Reject a payment no rail can take; else route it and approve it (or ask approvers,
    when its amount or the approval rules need them: `gate`, given what risk decided of it
    in this transaction, `risk`). `actor` takes them (None: the session's)."""
    if route.channel is None:
        return [Step(payment.id, Action.REJECT, reason=route_reason(route), actor=actor)]
    needs = payment.approval_required if gate is None else gate.needs_approval(
        payment.routed(route.channel, payment.destination_channel,
                       payment.fee_minor if fee is None else fee), risk)
    return [
        Step(payment.id, Action.ROUTE, route.channel, fee_minor=fee, actor=actor),
        Step(payment.id, Action.REQUEST_APPROVAL if needs else Action.APPROVE, actor=actor),
    ]


def held_risk_grade(events: Sequence[PaymentEvent]) -> str | None:
    """The risk grade of a payment released from a hold, from its last hold (None: not held
    by risk control), for a dynamic fee that weighs it: its screening, in an earlier
    transaction, is no longer at hand."""
    for event in reversed(events):
        if event.action is Action.HOLD:
            reason = event.reason or ""
            return next((grade for prefix, grade in _HELD_GRADES if reason.startswith(prefix)),
                        None)
    return None


def route_reason(route: RouteRecord) -> str:
    return str(route.decision.get("reason") or NO_ELIGIBLE_CHANNEL)
