"""A payment's own share of each ledger entry its steps posted.

Outbound approve, submit and settle steps of one wave are booked as ONE entry whose postings
are summed per (source, destination, asset) over the wave's payments (ADR 0008, waves.py), so
an entry id alone shows other payments' legs. A payment's share of such an entry is what its
own step moves (postings.outbound_moves): from the payment and the action, on the rail and
with the fee the payment had when it took the step. Any other entry belongs to one payment
alone, and its share is all of its postings.

A payment sent back to routing by a failed rail (`retry`) may be routed to another rail with
another fee; the retry's own entry (never summed) releases exactly what the earlier attempt
locked or sent, so it tells that attempt's rail and gross amount. The steps after the last
retry used the rail and fee the payment has now.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from fundpool.payments.model import Action, Payment, PaymentEvent
from fundpool.payments.postings import outbound_moves

SUMMED_KEY = "payments"  # the metadata key a summed wave entry carries (waves.aggregate_chunks)
CHANNEL_SEGMENT = 3  # pool:<pool>:<asset>:<channel>:<state> (pool/accounts.py)


@dataclass(frozen=True, slots=True)
class Share:
    entry_id: str
    source: str
    destination: str
    asset: str
    amount_minor: int


def is_summed(body: Mapping[str, Any]) -> bool:
    metadata = body.get("metadata")
    return isinstance(metadata, Mapping) and SUMMED_KEY in metadata


def event_shares(
    payment: Payment, events: Sequence[PaymentEvent], bodies: Mapping[str, Mapping[str, Any]]
) -> list[tuple[Share, ...]]:
    """Per event (in `events` order), the postings `payment` itself contributed to the entries
    the event lists. `bodies` are those entries' bodies by id (Recorded.body); an entry not
    among them has no share shown."""
    as_then = _attempts(payment, events, bodies)
    shares: list[tuple[Share, ...]] = []
    for event, then in zip(events, as_then, strict=True):
        found: list[Share] = []
        for entry_id in event.entry_ids:
            body = bodies.get(entry_id)
            if body is None:
                continue
            if is_summed(body):
                moves = outbound_moves(then, event.action) or ()
                found += [Share(entry_id, s, d, then.asset, n) for s, d, n in moves]
            else:
                found += [Share(entry_id, str(p["source"]), str(p["destination"]),
                                str(p["asset"]), int(p["amount_minor"]))
                          for p in _postings(body)]
        shares.append(tuple(found))
    return shares


def _attempts(payment: Payment, events: Sequence[PaymentEvent],
              bodies: Mapping[str, Mapping[str, Any]]) -> list[Payment]:
    """Per event, the payment with the rail and fee it had when the event happened."""
    as_then: list[Payment] = []
    waiting = 0  # events since the last retry, whose attempt a later retry will tell
    for event in events:
        as_then.append(payment)
        waiting += 1
        if event.action is not Action.RETRY:
            continue
        attempt = _retried(payment, event, bodies)
        if attempt is not None:
            for index in range(len(as_then) - waiting, len(as_then)):
                as_then[index] = attempt
        waiting = 0
    return as_then


def _retried(payment: Payment, retry: PaymentEvent,
             bodies: Mapping[str, Mapping[str, Any]]) -> Payment | None:
    """The attempt a retry ended: the rail its entry released funds on, and the fee within the
    gross amount it released (None if its entry cannot be read)."""
    for entry_id in retry.entry_ids:
        for posting in _postings(bodies.get(entry_id) or {}):
            parts = str(posting.get("source", "")).split(":")
            if len(parts) > CHANNEL_SEGMENT and parts[0] == "pool":
                gross = int(posting["amount_minor"])
                return replace(payment, channel=parts[CHANNEL_SEGMENT],
                               fee_minor=max(0, gross - payment.amount_minor))
    return None


def _postings(body: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    postings = body.get("postings")
    return [p for p in postings if isinstance(p, Mapping)] if isinstance(postings, list) else []
