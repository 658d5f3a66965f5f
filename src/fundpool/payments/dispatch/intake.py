"""Intake: new payments taken as far as they go without a rail, in one transaction.

Deposits are created and screened (their rail is then told to expect them); payouts and
transfers are created, screened, routed and approved (funds locked), or left pending approval
when the amount needs an approver. A payout no rail can take is rejected with the router's
reason. What intake does after the commit (queue the approved, announce the deposits) is the
dispatcher's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from fundpool.core.errors import FundpoolError
from fundpool.payments.dispatch.liquidity import Liquidity
from fundpool.payments.dispatch.routes import (
    NO_ELIGIBLE_CHANNEL,
    RouteChooser,
    route_reason,
    steps_after_route,
)
from fundpool.payments.model import Action, Outcome, Payment, PaymentRequest, PaymentState, Step
from fundpool.payments.ports import DispatchRecordWrites
from fundpool.payments.records import RouteRecord
from fundpool.payments.session import CALL_ITEMS_MAX, PaymentSession


@dataclass(frozen=True, slots=True)
class Intake:
    """What became of one request at intake: the payment as it now stands (or the error), the
    route chosen for it, if any, and why intake rejected it, when it did."""

    outcome: Outcome
    route: RouteRecord | None = None
    errors: tuple[FundpoolError, ...] = ()
    reason: str | None = None  # no_eligible_channel, or why the rail it named cannot carry it

    @property
    def refusal(self) -> str | None:
        """Why this item did not go through, as a stable code; None when it did."""
        if isinstance(self.outcome, FundpoolError):
            return self.outcome.code
        if self.errors:
            return self.errors[0].code
        if self.outcome.state is PaymentState.REJECTED:
            return self.reason or NO_ELIGIBLE_CHANNEL
        return None


class IntakeRefused(FundpoolError):
    code = "intake_refused"
    title = "an all-or-nothing intake was refused: one item could not go through"


def take_in(
    session: PaymentSession,
    writes: DispatchRecordWrites,
    chooser: RouteChooser,
    liquidity: Liquidity,
    requests: Sequence[tuple[PaymentRequest, str | None]],
    *,
    atomic: bool,
) -> tuple[list[Intake], set[str]]:
    """Create, screen, route and approve, in `session`; store the routes on `writes`. Returns
    what became of each request, and the ids of the payments this call created (a replayed
    key's payment is already with its rail or in a queue). With `atomic`, any item refused
    raises `IntakeRefused`, naming the first, which rolls the session back."""
    routes: dict[str, RouteRecord] = {}
    rejected: dict[str, str] = {}
    planned: set[str] = set()
    at_us = session.at_us

    def plan(payment: Payment) -> list[Step]:
        # Called once per payment this call creates (a key repeated in the call is a
        # replay, and is not planned again: PaymentSession.create_and_act).
        planned.add(payment.id)
        steps = [Step(payment.id, Action.SCREEN)]
        if payment.kind.inbound:
            problem, _ = chooser.named_rail_problem(payment, at_us, liquidity)
            if problem is not None:
                rejected[payment.id] = problem
                steps.append(Step(payment.id, Action.REJECT, reason=problem))
            return steps
        route, fee = chooser.route(payment, 1, at_us, liquidity, ())
        routes[payment.id] = route
        if route.channel is None:
            rejected[payment.id] = route_reason(route)
        return steps + steps_after_route(payment, route, fee)

    results: list[tuple[Outcome, list[Outcome]]] = []
    for start in range(0, len(requests), CALL_ITEMS_MAX):
        results += session.create_and_act(requests[start : start + CALL_ITEMS_MAX], plan)
    final = session.payments(p.id for p, _ in results if isinstance(p, Payment))
    intakes: list[Intake] = []
    for created, step_outcomes in results:
        if not isinstance(created, Payment):
            intakes.append(Intake(created))
            continue
        payment = final.get(created.id, created)
        errors = tuple(o for o in step_outcomes if isinstance(o, FundpoolError))
        intakes.append(Intake(payment, routes.get(payment.id), errors,
                              rejected.get(payment.id)))
    if atomic:
        for index, intake in enumerate(intakes):
            problem = intake.refusal
            if problem is not None:
                raise IntakeRefused(item=index, reason=problem)  # rolls back
    writes.add_routes(list(routes.values()))
    return intakes, planned
