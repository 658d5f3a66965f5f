"""Intake: new payments taken as far as they go without a rail, in one transaction.

Deposits are created and screened (their rail is then told to expect them); payouts and
transfers are created, screened, routed and approved (funds locked), or left pending approval
when the amount needs an approver. A payout no rail can take is rejected with the router's
reason. What intake does after the commit (queue the approved, announce the deposits) is the
dispatcher's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from fundpool.core.actor import ENGINE
from fundpool.core.errors import FundpoolError
from fundpool.payments.dispatch.liquidity import Liquidity
from fundpool.payments.dispatch.routes import (
    NO_ELIGIBLE_CHANNEL,
    RouteChooser,
    route_reason,
    steps_after_route,
)
from fundpool.payments.model import Action, Outcome, Payment, PaymentRequest, PaymentState, Step
from fundpool.payments.ports import ApprovalGate, DispatchRecordWrites, Screening
from fundpool.payments.records import RouteRecord
from fundpool.payments.session import CALL_ITEMS_MAX, PaymentSession


# Not frozen, as payments.model.Payment is not: one is made for every payout on the
# dispatcher's path, and a frozen __init__ costs several times a plain one. Treat as immutable.
@dataclass(slots=True)
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


FEE_EXCEEDS_AMOUNT = "fee_exceeds_amount"  # routing: the rail's fee exceeds the amount
APPROVAL_REFUSED = "approval_refused"  # the ledger refused to lock its funds, twice
RISK_BLOCKED = "risk_blocked"  # the risk policy blocked it (its decision says why)


class IntakeRefused(FundpoolError):
    code = "intake_refused"
    title = "an all-or-nothing intake was refused: one item could not go through"


class Planner:
    """The steps that take a payment as far as it goes without a rail, at `at_us`: screen it
    (unless it already is), then for a deposit check the rail it names, for an outbound
    payment route it and approve it (or ask an approver). The routes chosen and the reasons
    for rejections are kept for the caller."""

    def __init__(self, chooser: RouteChooser, liquidity: Liquidity, at_us: int,
                 earlier: Mapping[str, Sequence[RouteRecord]] | None = None,
                 screening: Screening | None = None,
                 undecided: set[str] | None = None,
                 gate: ApprovalGate | None = None,
                 grades: Mapping[str, str] | None = None) -> None:
        self._chooser = chooser
        self._grades = grades or {}  # risk grades of payments released from a hold
        self._gate = gate  # the approval rules (None: the pool's thresholds alone)
        self._liquidity = liquidity
        self._at_us = at_us
        self._screening = screening
        self._undecided = undecided or set()  # released before any risk decision
        self._earlier = earlier or {}  # routes of earlier attempts, by payment
        self.routes: dict[str, RouteRecord] = {}
        self.rejected: dict[str, str] = {}
        self.planned: set[str] = set()

    def steps(self, payment: Payment) -> list[Step]:
        """The engine's steps for `payment` (whoever created it)."""
        self.planned.add(payment.id)
        steps: list[Step] = []
        fresh = payment.state is PaymentState.INITIATED
        if fresh or payment.id in self._undecided:
            action, reason = (Action.SCREEN, None) if self._screening is None \
                else self._screening.screen(payment, self._at_us)
            if fresh or action is not Action.SCREEN:  # a released one is screened already
                steps.append(Step(payment.id, action, reason=reason, actor=ENGINE))
            if action is Action.REJECT:
                self.rejected[payment.id] = RISK_BLOCKED
                return steps
            if action is not Action.SCREEN:
                return steps  # held: a risk officer decides (a released one comes back)
        if payment.kind.inbound:
            problem, _ = self._chooser.named_rail_problem(payment, self._at_us, self._liquidity)
            if problem is not None:
                self.rejected[payment.id] = problem
                steps.append(Step(payment.id, Action.REJECT, reason=problem, actor=ENGINE))
            return steps
        if payment.state is PaymentState.ROUTED:
            # Routed earlier, its approval refused then (the rail's funds were short for a
            # moment): approve it now, or reject it (take_up); unless the rules now see that
            # it needs approvers.
            if self._gate is not None and self._gate.needs_approval(payment, self._risk(payment)):
                return [Step(payment.id, Action.REQUEST_APPROVAL, actor=ENGINE)]
            return [Step(payment.id, Action.APPROVE, actor=ENGINE)]
        # A payment routed before (whose route step was refused then) is routed afresh, as
        # its next attempt and without the rails it was given before.
        earlier = self._earlier.get(payment.id)
        attempt: int = 1
        tried: tuple[str, ...] = ()
        if earlier:
            attempt = max(r.attempt for r in earlier) + 1
            tried = tuple(r.channel for r in earlier if r.channel is not None)
        route, fee = self._chooser.route(payment, attempt, self._at_us, self._liquidity, tried,
                                         self._risk_grade(payment))
        self.routes[payment.id] = route
        if route.channel is None:
            self.rejected[payment.id] = route_reason(route)
        elif fee is not None and fee > payment.amount_minor:
            # A payment whose fee would exceed what it moves is refused here, at routing,
            # before any funds are locked for it.
            self.rejected[payment.id] = FEE_EXCEEDS_AMOUNT
            return [*steps, Step(payment.id, Action.REJECT, reason=FEE_EXCEEDS_AMOUNT,
                                 actor=ENGINE)]
        return steps + steps_after_route(payment, route, fee, ENGINE, self._gate,
                                         self._risk(payment))

    def _risk_grade(self, payment: Payment) -> str | None:
        """The payment's risk grade, when a dynamic fee weighs it: as screened in this
        transaction, else as held before its release (`grades`); None when not known."""
        if not self._chooser.prices_risk:
            return None
        decided = None if self._screening is None else self._screening.decided(payment.id)
        return self._grades.get(payment.id) if decided is None else decided[0]

    def _risk(self, payment: Payment) -> tuple[str, int, int | None] | None:
        return None if self._screening is None or self._gate is None \
            else self._screening.decided(payment.id)

    def intake(self, payment: Payment, step_outcomes: Sequence[Outcome]) -> Intake:
        errors = tuple(o for o in step_outcomes if isinstance(o, FundpoolError))
        return Intake(payment, self.routes.get(payment.id), errors,
                      self.rejected.get(payment.id))


def take_in(
    session: PaymentSession,
    writes: DispatchRecordWrites,
    chooser: RouteChooser,
    liquidity: Liquidity,
    requests: Sequence[tuple[PaymentRequest, str | None]],
    *,
    atomic: bool,
    screening: Screening | None = None,
    gate: ApprovalGate | None = None,
) -> tuple[list[Intake], set[str]]:
    """Create, screen, route and approve, in `session`; store the routes on `writes`. Returns
    what became of each request, and the ids of the payments this call created (a replayed
    key's payment is already with its rail or in a queue). With `atomic`, any item refused
    raises `IntakeRefused`, naming the first, which rolls the session back."""
    if screening is not None:
        screening.prepare(session.write_session)
    if gate is not None:
        gate.prepare(session.write_session, ())
    planner = Planner(chooser, liquidity, session.at_us, screening=screening, gate=gate)
    # Called once per payment this call creates (a key repeated in the call is a replay, and
    # is not planned again: PaymentSession.create_and_act).
    results: list[tuple[Outcome, list[Outcome]]] = []
    for start in range(0, len(requests), CALL_ITEMS_MAX):
        results += session.create_and_act(requests[start : start + CALL_ITEMS_MAX],
                                          planner.steps)
    final = session.payments(p.id for p, _ in results if isinstance(p, Payment))
    intakes: list[Intake] = []
    for created, step_outcomes in results:
        if not isinstance(created, Payment):
            intakes.append(Intake(created))
            continue
        intakes.append(planner.intake(final.get(created.id, created), step_outcomes))
    if atomic:
        for index, intake in enumerate(intakes):
            problem = intake.refusal
            if problem is not None:
                raise IntakeRefused(item=index, reason=problem)  # rolls back
    writes.add_routes(list(planner.routes.values()))
    if screening is not None:
        screening.record(session.write_session)
    return intakes, planner.planned


def take_up(
    session: PaymentSession,
    writes: DispatchRecordWrites,
    chooser: RouteChooser,
    liquidity: Liquidity,
    payments: Sequence[Payment],
    screening: Screening | None = None,
    gate: ApprovalGate | None = None,
    grades: Mapping[str, str] | None = None,
) -> list[Intake]:
    """Take payments created earlier (through the API, the console, the CLI, a CSV file) or
    released from a hold as far as intake takes a new one, in `session`: the engine's way in.
    A routed payment whose approval the ledger refuses again is rejected with the reason.
    `grades` are the risk grades released payments were held with, for dynamic fees."""
    released = [p.id for p in payments if p.state is PaymentState.SCREENED]
    earlier = writes.routes(released)
    undecided: set[str] = set()
    if screening is not None:
        screening.prepare(session.write_session)
        if released:
            undecided = screening.undecided(session.write_session, released)
    if gate is not None:
        gate.prepare(session.write_session, payments)
    planner = Planner(chooser, liquidity, session.at_us, earlier, screening, undecided, gate,
                      grades)
    plans = [(payment, planner.steps(payment)) for payment in payments]
    # Round by round (every payment's first step, then every second...): each round is one
    # wave of the session, one ledger call, instead of a wave per payment.
    steps: list[Step] = []
    owners: list[int] = []
    for round_ in range(max((len(p) for _, p in plans), default=0)):
        for index, (_, planned) in enumerate(plans):
            if round_ < len(planned):
                steps.append(planned[round_])
                owners.append(index)
    outcomes: list[list[Outcome]] = [[] for _ in plans]
    for owner, outcome in zip(owners, session.act(steps) if steps else [], strict=True):
        outcomes[owner].append(outcome)
    again = [payment.id for (payment, _), found in zip(plans, outcomes, strict=True)
             if payment.state is PaymentState.ROUTED
             and any(isinstance(o, FundpoolError) for o in found)]
    if again:
        for pid, outcome in zip(again, session.act([
                Step(pid, Action.REJECT, reason=APPROVAL_REFUSED, actor=ENGINE) for pid in again]),
                strict=True):
            if isinstance(outcome, Payment):
                planner.rejected[pid] = APPROVAL_REFUSED
    final = session.payments(p.id for p in payments)
    writes.add_routes(list(planner.routes.values()))
    if screening is not None:
        screening.record(session.write_session)
    return [planner.intake(final.get(p.id, p), found)
            for p, found in zip(payments, outcomes, strict=True)]
