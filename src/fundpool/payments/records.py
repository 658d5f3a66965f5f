"""What the dispatcher records beside the payments: each payment's routes (one per attempt,
with the routing decision that chose it), the batches it sent to rails with their fees and
savings, and every outcome a rail reported with what was done about it.

Plain values: the dispatcher writes and reads them through its port
(`payments.ports.DispatchRecords`); a store keeps them in its own tables
(`stores/dispatch_sql.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


# Not frozen, as payments.model.Payment is not: one is made for every payout on the
# dispatcher's path, and a frozen __init__ costs several times a plain one. Treat as immutable.
@dataclass(slots=True)
class RouteRecord:
    """Attempt `attempt` of a payment: the channel chosen (None: no route) and why."""

    payment_id: str
    attempt: int
    at_us: int
    channel: str | None
    strategy: str  # learned | fixed | given (the caller named the channel)
    decision: dict[str, Any]  # the routing decision as stored (RoutingDecision.to_dict())
    batch_id: str | None = None
    rail_ref: str | None = None


@dataclass(frozen=True, slots=True)
class BatchRecord:
    id: str
    channel: str
    asset: str
    rail_ref: str | None
    items: int
    amount_minor: int
    fee_minor: int  # what the rail charged for the batch
    single_fee_minor: int  # what the same payments would have cost one by one
    savings_minor: int
    opened_at_us: int  # when its oldest payment was queued
    submitted_at_us: int
    status: str  # sent | refused | unknown (the send failed without the rail's answer)


# Not frozen, as payments.model.Payment is not: one is made for every payout on the
# dispatcher's path, and a frozen __init__ costs several times a plain one. Treat as immutable.
@dataclass(slots=True)
class OutcomeRecord:
    outcome_id: str
    channel: str
    payment_id: str
    kind: str
    at_us: int
    received_at_us: int
    disposition: str  # applied | late | stale | anomaly (a duplicate is counted, not stored)
    detail: str | None = None
