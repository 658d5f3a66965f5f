"""The books' side of a channel: each payment step that moved money across the channel's
boundary becomes a `BookItem`, signed as the account holder sees it (what the bank's
statement shows), with the ids the bank's statement carries back (payments/postings.py says
what each step posts):

- a payout (or an internal or bridge transfer leaving the channel) settles: `<id>:out`,
  minus the amount; its fee, `<id>:fee`, minus the fee (the bank charges it, often as one
  charge for the batch: the items carry the batch's rail reference);
- a transfer arriving on the channel settles: `<id>:in`, plus the amount;
- a settled payout comes back: `<id>:return`, plus the amount (the fee stays earned);
- a deposit clears: `<id>:in`, plus the amount; it settles with a fee: `<id>:fee`, minus it;
  a cleared deposit sent back: `<id>:return`, minus the amount;
- an adjustment booked in reconciliation: `adjustment:<resolution id>`, its signed amount.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from fundpool.payments.ports import ChannelMove
from fundpool.recon.model import BookItem, ItemKind
from fundpool.reconciliation.model import Resolution, ResolutionAction

OUTBOUND_KINDS = frozenset({"payout", "internal", "bridge"})


def items_of(moves: Iterable[ChannelMove], channel: str) -> Iterator[BookItem]:
    for move in moves:
        yield from _items(move, channel)


def _items(m: ChannelMove, channel: str) -> Iterator[BookItem]:
    def item(suffix: str, amount: int, kind: ItemKind) -> BookItem:
        return BookItem(f"{m.payment_id}:{suffix}", amount, m.asset, m.at_us, kind,
                        payment_id=m.payment_id, batch_ref=m.rail_ref, reference=m.reference,
                        counterparty=m.counterparty)

    if m.kind in OUTBOUND_KINDS:
        if m.action == "settle":
            if m.channel == channel:
                yield item("out", -m.amount_minor, ItemKind.PAYOUT)
                if m.fee_minor:
                    yield item("fee", -m.fee_minor, ItemKind.FEE)
            if m.destination_channel == channel:
                yield item("in", m.amount_minor, ItemKind.DEPOSIT)
        elif m.action == "return" and m.channel == channel:
            yield item("return", m.amount_minor, ItemKind.RETURN)
    elif m.kind == "deposit" and m.channel == channel:
        if m.action == "clear":
            yield item("in", m.amount_minor, ItemKind.DEPOSIT)
        elif m.action == "settle" and m.fee_minor:
            yield item("fee", -m.fee_minor, ItemKind.FEE)
        elif m.action == "return":
            yield item("return", -m.amount_minor, ItemKind.RETURN)


def adjustment_id(resolution_id: str) -> str:
    return f"adjustment:{resolution_id}"


def adjustment_items(booked: Iterable[Resolution]) -> Iterator[BookItem]:
    for resolution in booked:
        if resolution.action is ResolutionAction.BOOKED:
            yield BookItem(adjustment_id(resolution.id), resolution.amount_minor,
                           resolution.asset, resolution.at_us, ItemKind.ADJUSTMENT,
                           reference=resolution.target)
