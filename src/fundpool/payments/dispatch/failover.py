"""Failover: a payout a rail failed is routed again without the rails it tried.

Retry releases the failed attempt's funds, then the payout is routed, approved (or sent back
to pending approval: the approver approved a rail and a fee, not any rail) and queued, up to
the routing policy's `max_attempts`; then, or when no rail is left, it fails. A payout that
named its rail, and a transfer between the pool's own channels, are not failed over.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from fundpool.payments.dispatch.liquidity import Liquidity
from fundpool.payments.dispatch.report import TickReport
from fundpool.payments.dispatch.routes import RouteChooser, steps_after_route
from fundpool.payments.model import Action, Payment, Step
from fundpool.payments.ports import ApprovalGate, DispatchRecordWrites
from fundpool.payments.records import RouteRecord
from fundpool.payments.session import PaymentSession


def fail_over(
    session: PaymentSession,
    writes: DispatchRecordWrites,
    chooser: RouteChooser,
    liquidity: Liquidity,
    max_attempts: int,
    payments: Mapping[str, Payment],
    failed: Mapping[str, int],
    report: TickReport,
    gate: ApprovalGate | None = None,
) -> tuple[list[Step], list[int], dict[str, RouteRecord]]:
    """A rail failed these payments (payment id -> the index of the failure's record): route
    each again, or fail it. Returns the steps, each with the index of the failure's record,
    and the new routes by payment (stored on `writes`)."""
    steps: list[Step] = []
    owners: list[int] = []
    routes = writes.routes(failed)
    new_routes: list[RouteRecord] = []
    if gate is not None:  # a payment routed again waits for approvers again if rules say so
        gate.prepare(session.write_session, [payments[pid] for pid in failed])
    for pid, owner in failed.items():
        payment = payments[pid]
        attempts = routes.get(pid, [])
        tried = [r.channel for r in attempts if r.channel is not None]
        if payment.channel is not None and payment.channel not in tried:
            tried.append(payment.channel)
        attempt = (attempts[-1].attempt if attempts else 1) + 1
        given = bool(attempts) and attempts[0].strategy == "given"
        route: RouteRecord | None = None
        fee: int | None = None
        if attempt <= max_attempts and not given and not payment.kind.between_channels:
            route, fee = chooser.route(payment, attempt, session.at_us, liquidity, tried,
                                       _risk_grade(attempts) if chooser.prices_risk else None)
        if route is None or route.channel is None:
            if route is not None:
                new_routes.append(route)
            steps.append(Step(pid, Action.FAIL, reason="failed on every rail tried"
                              if attempt > 1 else None))
            owners.append(owner)
            continue
        new_routes.append(route)
        report.failovers += 1
        retried = Step(pid, Action.RETRY, reason=f"failover to {route.channel}")
        for step in (retried, *steps_after_route(payment, route, fee, None, gate)):
            steps.append(step)
            owners.append(owner)
    writes.add_routes(new_routes)
    return steps, owners, {r.payment_id: r for r in new_routes}


def _risk_grade(attempts: Sequence[RouteRecord]) -> str | None:
    """The risk grade an earlier attempt was priced with: a failover is priced alike."""
    for route in attempts:
        grade = route.decision.get("risk_grade")
        if isinstance(grade, str):
            return grade
    return None
