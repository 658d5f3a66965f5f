"""The dispatcher: payments meet the rails. It routes new payouts, queues approved ones into
batches per rail, sends them, and turns what the rails report into payment steps (ADR 0009).

A payout's run:

    intake:  create -> screen -> route (the router picks the rail) -> approve (funds locked),
             or request_approval when the amount needs an approver; all in one transaction
    tick:    queued payouts whose batch is full or old enough -> submit (locked -> in transit),
             committed; THEN the batch goes to the rail ("commit first", batching.py)
    tick:    outcomes polled from the rails -> clear / settle / return, or on failure either a
             failover (retry: funds released, route again without the rails already tried,
             approve, queue) or, when attempts are used up or no rail is left, fail

A deposit is created and screened at intake, and its rail is told to expect it (when the
rail is open); the rail's reports clear and settle it (or return it).

One concept per module:

- `dispatcher.py` — `Dispatcher`: intake, approvals and the tick; the sessions, the rescan.
- `intake.py` — what intake does in its transaction; `Intake`, `IntakeRefused`.
- `routes.py` — the rail of an attempt (the router's, or the one a payment names).
- `liquidity.py` — what each rail holds, as the transaction sees it.
- `batching.py` — queues per rail, submit then send, receipts, what is in transit or stuck.
- `announcements.py` — deposits a rail is told to expect.
- `inbox.py` — outcomes waiting to be applied, and refusals made into failures.
- `outcomes.py` — what an outcome means for a payment, applied safely.
- `failover.py` — a failed payout routed again without the rails it tried.
- `policy.py`, `report.py` — the pacing, and what a tick did.

The dispatcher records its routes, batches and outcomes through the port
`payments.ports.DispatchRecords`, which its builder hands it (a store implements it:
`stores/dispatch_sql.py`).
"""

from fundpool.payments.dispatch.dispatcher import Dispatcher
from fundpool.payments.dispatch.intake import Intake, IntakeRefused
from fundpool.payments.dispatch.policy import (
    DEFAULT_DISPATCH_POLICY,
    OUTCOMES_PER_TRANSACTION,
    SUBMITS_PER_TRANSACTION,
    DispatchPolicy,
)
from fundpool.payments.dispatch.report import TickReport
from fundpool.payments.dispatch.routes import NO_ELIGIBLE_CHANNEL, NO_RAIL

__all__ = [
    "DEFAULT_DISPATCH_POLICY",
    "NO_ELIGIBLE_CHANNEL",
    "NO_RAIL",
    "OUTCOMES_PER_TRANSACTION",
    "SUBMITS_PER_TRANSACTION",
    "DispatchPolicy",
    "Dispatcher",
    "Intake",
    "IntakeRefused",
    "TickReport",
]
