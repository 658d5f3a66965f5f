"""Outcomes: what the rails report, turned into payment steps, safely.

Rails are not tidy, and this is what makes them safe:
- **Duplicates.** Every outcome is recorded by (channel, outcome id) in the same transaction as
  the steps it caused; one seen before is a `duplicate`: counted in the tick's report, not
  stored again (the table keeps what its first delivery did), and it does nothing.
- **Stale attempts.** An outcome from a rail that is not the payment's current route (an
  attempt that was failed over) is `stale` and does nothing: the attempt's funds were already
  released, so acting on it could release or settle them twice. A `settled` or `returned`
  from such a rail is an `anomaly` instead: money may have left twice, which a person must
  see.
- **Late and out of order.** An outcome the payment is already past (a `cleared` after
  `settled`) is `late`. One that skips ahead implies what it skips: `settled` for a deposit
  still screened clears it first; `returned` for a payout still in transit settles it first.
  A contradiction (`failed` after `settled`) is an `anomaly`: recorded, nothing posted, for a
  person to look at.

So every payment ends in exactly one terminal state, and its funds are never both released
and settled. Property tests drive any sequence of deliveries through this (tests/payments).
A payout that failed is failed over (failover.py) after the other steps of its transaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from fundpool.channels.ports import Capabilities, ChannelOutcome, OutcomeKind
from fundpool.core.errors import FundpoolError
from fundpool.payments.dispatch.batching import Batches
from fundpool.payments.dispatch.failover import fail_over
from fundpool.payments.dispatch.liquidity import Liquidity
from fundpool.payments.dispatch.report import TickReport
from fundpool.payments.dispatch.routes import RouteChooser
from fundpool.payments.model import (
    TERMINAL_STATES,
    Action,
    Outcome,
    Payment,
    PaymentKind,
    PaymentState,
    Step,
    next_state,
)
from fundpool.payments.ports import ApprovalGate, DispatchRecordWrites
from fundpool.payments.records import OutcomeRecord, RouteRecord
from fundpool.payments.session import PaymentSession
from fundpool.routing.router import RoutingStrategy

S = PaymentState
A = Action
K = OutcomeKind


class OutcomeHandler:
    """Applies a slice of delivered outcomes in one payment session: records each with its
    disposition, takes the steps it causes, learns from it (the router), and fails over what
    failed. `batches` is told what left transit and what failover approved."""

    def __init__(
        self,
        pool: str,
        router: RoutingStrategy,
        chooser: RouteChooser,
        capabilities: Mapping[str, Capabilities],
        batches: Batches,
        gate: ApprovalGate | None = None,
    ) -> None:
        self._gate = gate  # the approval rules, for a payment routed again
        self._pool = pool
        self._router = router
        self._chooser = chooser
        self._capabilities = capabilities
        self._batches = batches

    def apply(
        self,
        session: PaymentSession,
        writes: DispatchRecordWrites,
        delivered: Sequence[ChannelOutcome],
        report: TickReport,
    ) -> None:
        now = session.at_us
        seen = writes.seen_outcomes((o.channel, o.outcome_id) for o in delivered)
        payments = session.payments({o.payment_id for o in delivered})
        projected: dict[str, PaymentState] = {pid: p.state for pid, p in payments.items()}
        records: list[OutcomeRecord] = []
        steps: list[Step] = []
        owners: list[int] = []  # index into records, per step
        failed: dict[str, int] = {}  # payment -> index of the failure's record
        for outcome in delivered:
            key = (outcome.channel, outcome.outcome_id)
            payment = payments.get(outcome.payment_id)
            disposition: str = "applied"
            actions: tuple[Action, ...] = ()
            detail: str | None = None
            if key in seen:
                disposition = "duplicate"
            elif payment is None or payment.pool != self._pool:
                disposition, detail = "anomaly", "no such payment in this pool"
            elif payment.channel != outcome.channel:
                if outcome.kind in (K.SETTLED, K.RETURNED):
                    # Money moved on a rail the payment is no longer routed to: after a
                    # failover it may have left twice. Nothing is posted; a person decides.
                    disposition = "anomaly"
                    detail = f"{outcome.kind.value} on a rail the payment is not routed to"
                else:
                    disposition = "stale"
            else:
                disposition, actions, detail = reading(payment.kind, projected[payment.id],
                                                       outcome.kind)
            seen.add(key)
            records.append(
                OutcomeRecord(outcome.outcome_id, outcome.channel, outcome.payment_id,
                              str(outcome.kind), outcome.at_us, now, disposition,
                              detail or outcome.reason)
            )
            report.count(report.outcomes, disposition)
            if payment is None or disposition != "applied":
                continue
            # The router learns from the rails it routes over: not from a book rail, which
            # carries only transfers between the pool's own channels (the treasury desk's).
            learns = not payment.kind.inbound and outcome.channel in self._router.channels
            if outcome.kind is K.SETTLED and learns:
                self._router.record(outcome.channel, payment.asset, True, outcome.at_us)
            if actions == (A.FAIL,) and not payment.kind.inbound:
                if learns:
                    self._router.record(outcome.channel, payment.asset, False, outcome.at_us)
                failed[payment.id] = len(records) - 1
                projected[payment.id] = S.FAILED  # provisional: failover may retry instead
                continue
            for action in actions:
                steps.append(Step(payment.id, action, reason=outcome.reason))
                owners.append(len(records) - 1)
                target = next_state(payment.kind, projected[payment.id], action)
                if target is not None:
                    projected[payment.id] = target
        if steps:
            self._take(steps, owners, session.act(steps), records, report, now, {})
        if failed:
            # After the other steps, so that the liquidity failover routes by is what this
            # transaction holds now (a merchant's advance at clear, a reversed deposit, have
            # taken from a rail's available).
            liquidity = Liquidity(session.transaction, self._pool, self._capabilities)
            steps, owners, new_routes = fail_over(
                session, writes, self._chooser, liquidity,
                int(self._router.policy.max_attempts), payments, failed, report, self._gate,
            )
            if steps:
                self._take(steps, owners, session.act(steps), records, report, now, new_routes)
        # A duplicate is counted, not stored again: the table keeps each outcome once, by
        # (channel, outcome id), with what its first delivery did.
        writes.add_outcomes([r for r in records if r.disposition != "duplicate"])

    def _take(
        self,
        steps: Sequence[Step],
        owners: Sequence[int],
        results: Sequence[Outcome],
        records: list[OutcomeRecord],
        report: TickReport,
        now: int,
        new_routes: Mapping[str, RouteRecord],
    ) -> None:
        """What the steps an outcome caused came to: a refused step makes the outcome an
        anomaly (its first refusal is kept, the cause a person needs)."""
        for step, owner, result in zip(steps, owners, results, strict=True):
            if isinstance(result, FundpoolError):
                record = records[owner]
                if record.disposition == "anomaly":
                    continue
                report.count(report.outcomes, record.disposition, -1)
                records[owner] = replace(record, disposition="anomaly",
                                         detail=f"{step.action.value} refused: {result.code}")
                report.count(report.outcomes, "anomaly")
            else:
                report.count(report.steps, str(step.action))  # a StrEnum's str() is its value
                self._after_step(result, step, now, new_routes)

    def _after_step(
        self, payment: Payment, step: Step, now: int, new_routes: Mapping[str, RouteRecord]
    ) -> None:
        if payment.state in _OUT_OF_TRANSIT:
            self._batches.left_transit(payment.id)
        if step.action is A.APPROVE and payment.state is S.APPROVED:
            # A failover's new attempt, approved: queued for its new rail.
            route = new_routes.get(payment.id)
            self._batches.left_transit(payment.id)
            self._batches.enqueue(payment, route.attempt if route else 1, now)


_OUT_OF_TRANSIT = TERMINAL_STATES | {S.SETTLED}

# What an outcome means for a payment in a given state: (disposition, steps).
_OUT: dict[tuple[OutcomeKind, PaymentState], tuple[str, tuple[Action, ...]]] = {
    (K.CLEARED, S.SUBMITTED): ("applied", (A.CLEAR,)),
    (K.SETTLED, S.SUBMITTED): ("applied", (A.SETTLE,)),
    (K.SETTLED, S.CLEARED): ("applied", (A.SETTLE,)),
    (K.FAILED, S.SUBMITTED): ("applied", (A.FAIL,)),
    (K.FAILED, S.CLEARED): ("applied", (A.FAIL,)),
    (K.RETURNED, S.SETTLED): ("applied", (A.RETURN,)),
    # Skipping ahead implies what was skipped.
    (K.RETURNED, S.SUBMITTED): ("applied", (A.SETTLE, A.RETURN)),
    (K.RETURNED, S.CLEARED): ("applied", (A.SETTLE, A.RETURN)),
    # Already past it.
    (K.CLEARED, S.CLEARED): ("late", ()),
    (K.CLEARED, S.SETTLED): ("late", ()),
    (K.CLEARED, S.RETURNED): ("late", ()),
    (K.CLEARED, S.FAILED): ("late", ()),
    (K.SETTLED, S.SETTLED): ("late", ()),
    (K.SETTLED, S.RETURNED): ("late", ()),
    (K.FAILED, S.FAILED): ("late", ()),
    (K.RETURNED, S.RETURNED): ("late", ()),
}
_IN: dict[tuple[OutcomeKind, PaymentState], tuple[str, tuple[Action, ...]]] = {
    (K.CLEARED, S.SCREENED): ("applied", (A.CLEAR,)),
    (K.SETTLED, S.CLEARED): ("applied", (A.SETTLE,)),
    (K.SETTLED, S.SCREENED): ("applied", (A.CLEAR, A.SETTLE)),
    (K.FAILED, S.SCREENED): ("applied", (A.FAIL,)),
    (K.FAILED, S.INITIATED): ("applied", (A.FAIL,)),
    (K.FAILED, S.CLEARED): ("applied", (A.RETURN,)),
    (K.RETURNED, S.CLEARED): ("applied", (A.RETURN,)),
    (K.RETURNED, S.SCREENED): ("applied", (A.CLEAR, A.RETURN)),
    (K.RETURNED, S.SETTLED): ("applied", (A.REVERSE,)),
    (K.CLEARED, S.CLEARED): ("late", ()),
    (K.CLEARED, S.SETTLED): ("late", ()),
    (K.CLEARED, S.RETURNED): ("late", ()),
    (K.CLEARED, S.REVERSED): ("late", ()),
    (K.CLEARED, S.FAILED): ("late", ()),
    (K.SETTLED, S.SETTLED): ("late", ()),
    (K.SETTLED, S.REVERSED): ("late", ()),
    (K.FAILED, S.FAILED): ("late", ()),
    (K.FAILED, S.RETURNED): ("late", ()),
    (K.RETURNED, S.RETURNED): ("late", ()),
    (K.RETURNED, S.REVERSED): ("late", ()),
}


def reading(
    kind: PaymentKind, state: PaymentState, outcome: OutcomeKind
) -> tuple[str, tuple[Action, ...], str | None]:
    """What an outcome means for a payment of `kind` in `state`: its disposition, the steps
    it causes, and the detail kept with an anomaly."""
    table = _IN if kind.inbound else _OUT
    found = table.get((outcome, state))
    if found is None:
        return "anomaly", (), f"{outcome.value} while {state.value}"
    if found[1] and A.RETURN in found[1] and kind.between_channels:
        return "anomaly", (), "a transfer between the pool's channels does not come back"
    disposition, actions = found
    return disposition, actions, None
