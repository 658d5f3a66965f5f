"""Payment values as JSON documents: the one shape the CLI's `--json` and the API both print.

Amounts are exact decimal text at the asset's scale with the minor units beside them as strings
(fundpool.ledger.docs); routing scores stay floats in minor units: they rank rails, and no
posted amount is ever derived from them (routing/decision.py).
"""

from __future__ import annotations

from collections.abc import Sequence

from fundpool.core.actor import Actor
from fundpool.core.money import Asset
from fundpool.ledger.docs import amount_fields, iso
from fundpool.payments.batch_payouts import Progress
from fundpool.payments.model import Payment, PaymentEvent
from fundpool.payments.records import RouteRecord
from fundpool.payments.shares import Share
from fundpool.routing.decision import CandidateScore, InvalidDecision, RoutingDecision, Strategy


def payment_doc(payment: Payment, asset: Asset | None) -> dict[str, object]:
    """`asset` is the payment's (None: amounts in minor units only)."""
    return {
        "id": payment.id,
        "pool": payment.pool,
        "kind": payment.kind.value,
        "state": payment.state.value,
        "asset": payment.asset,
        **amount_fields("amount", payment.amount_minor, asset),
        **amount_fields("fee", payment.fee_minor, asset),
        "channel": payment.channel,
        "destination_channel": payment.destination_channel,
        "destination": payment.destination,
        "counterparty": payment.counterparty,
        "reference": payment.reference,
        "approval_required": payment.approval_required,
        "idempotency_key": payment.idempotency_key,
        "metadata": dict(payment.metadata),
        "created_at": iso(payment.created_at_us),
        "updated_at": iso(payment.updated_at_us),
        "version": payment.version,
        "initiated_by": actor_doc(payment.initiated_by),
    }


def actor_doc(actor: Actor | None) -> dict[str, object] | None:
    """Who did it (None: recorded before actors were): every field, absent ones null."""
    return None if actor is None else actor.shown()


def event_doc(event: PaymentEvent, shares: Sequence[Share] = (),
              asset: Asset | None = None) -> dict[str, object]:
    """`shares` are the payment's own postings in the entries the event lists (shares.py)."""
    return {
        "seq": event.seq,
        "action": event.action.value,
        "from": None if event.from_state is None else event.from_state.value,
        "to": event.to_state.value,
        "at": iso(event.at_us),
        "entries": list(event.entry_ids),
        "reason": event.reason,
        "actor": actor_doc(event.actor),
        "shares": [share_doc(share, asset) for share in shares],
    }


def share_doc(share: Share, asset: Asset | None) -> dict[str, object]:
    return {"entry_id": share.entry_id, "source": share.source,
            "destination": share.destination, "asset": share.asset,
            **amount_fields("amount", share.amount_minor, asset)}


def progress_doc(done: Progress) -> dict[str, object]:
    return {"total": done.total, "finished": done.finished, "done": done.done,
            "by_state": dict(sorted(done.by_state.items()))}


def candidate_doc(candidate: CandidateScore, asset: Asset | None) -> dict[str, object]:
    doc = candidate.to_dict()
    if candidate.fee_minor is not None:
        doc.update(amount_fields("fee", candidate.fee_minor, asset))
    return doc


def route_doc(route: RouteRecord, asset: Asset | None) -> dict[str, object]:
    doc: dict[str, object] = {
        "attempt": route.attempt,
        "at": iso(route.at_us),
        "channel": route.channel,
        "strategy": route.strategy,
        "batch_id": route.batch_id,
        "rail_ref": route.rail_ref,
    }
    decision = route_decision(route)
    if isinstance(decision, RoutingDecision):
        doc["summary"] = decision.summary()
        doc["hedged"] = decision.hedged
        doc["candidates"] = [candidate_doc(c, asset) for c in decision.candidates]
    else:
        doc["summary"] = decision
        doc["decision"] = route.decision
    return doc


def route_decision(route: RouteRecord) -> RoutingDecision | str:
    """The router's decision, or what a person should read instead (a rail the request named,
    a transfer, or a decision that cannot be read back)."""
    if route.strategy not in (Strategy.LEARNED, Strategy.FIXED):
        reason = route.decision.get("reason")
        return (f"{route.strategy}: " + (str(reason) if reason else
                                         f"the request named {route.channel}"))
    try:
        return RoutingDecision.from_dict(route.decision)
    except InvalidDecision as error:
        return f"the stored decision cannot be read: {error.detail}"
