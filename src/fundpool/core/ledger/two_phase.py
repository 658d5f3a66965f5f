"""Two-phase transfers: reserve a posting's funds, then post them in full or in part, void the
reservation, or let it expire at its timeout.

A pending transfer is pending, then exactly one of posted, voided or expired: it is never
finished twice, and never after its expiry. While it is pending its amount is held on both
sides, in the source's `pending_out` (which lowers its available balance) and the destination's
`pending_in` (which counts towards its maximum). Finishing releases both and moves the posted
part from source to destination: all or some of it when posted, none when voided or expired.

These are the rules, as pure functions over values. `BatchEngine` applies each step to its
working set through its undo log and appends the entry to the chain.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Final, NamedTuple

from fundpool.core.errors import (
    PendingExpired,
    PendingNotPending,
    PostExceedsPending,
    UnknownPending,
    invariant,
)
from fundpool.core.ledger.canonical import request_hash
from fundpool.core.ledger.model import (
    US_PER_S,
    ZERO_BALANCE,
    Balance,
    CreatePending,
    EntryKind,
    JournalEntry,
    PendingState,
    PendingTransfer,
    Posting,
    PostPending,
    VoidPending,
)

PendingCommand = CreatePending | PostPending | VoidPending

FINISHED_KINDS: Final[Mapping[PendingState, EntryKind]] = {
    PendingState.POSTED: EntryKind.PENDING_POSTED,
    PendingState.VOIDED: EntryKind.PENDING_VOIDED,
    PendingState.EXPIRED: EntryKind.PENDING_EXPIRED,
}


class Step(NamedTuple):
    """What one step does to the two balances of a pending transfer, for the engine to check
    against the accounts' bounds and set. `requested_minor` is what the step asks of the
    source, for the facts of a bound's error: the amount when reserving, 0 when releasing."""

    source: str
    destination: str
    asset: str
    source_old: Balance
    source_new: Balance
    destination_old: Balance
    destination_new: Balance
    requested_minor: int


def request_hash_of(command: PendingCommand) -> bytes:
    """What the command's idempotency key is bound to."""
    request: dict[str, object]
    if isinstance(command, CreatePending):
        request = {
            "kind": "pending",
            "posting": command.posting.body(),
            "timeout_s": command.timeout_s,
            "metadata": dict(command.metadata),
        }
    elif isinstance(command, PostPending):
        request = {
            "kind": "post",
            "pending_id": command.pending_id,
            "amount_minor": command.amount_minor,
            "metadata": dict(command.metadata),
        }
    else:
        request = {
            "kind": "void",
            "pending_id": command.pending_id,
            "metadata": dict(command.metadata),
        }
    return request_hash(request)


# --- create --------------------------------------------------------------------------------


def reserve(balances: Mapping[tuple[str, str], Balance], posting: Posting) -> Step:
    """Hold the posting's amount on both sides; nothing is posted yet."""
    source, destination, asset = posting.source, posting.destination, posting.asset
    amount = posting.amount_minor
    source_old = balances.get((source, asset), ZERO_BALANCE)
    destination_old = balances.get((destination, asset), ZERO_BALANCE)
    return Step(
        source,
        destination,
        asset,
        source_old,
        source_old._replace(pending_out=source_old.pending_out + amount),
        destination_old,
        destination_old._replace(pending_in=destination_old.pending_in + amount),
        amount,
    )


def expires_at_us(at_us: int, timeout_s: int) -> int:
    return at_us + timeout_s * US_PER_S


def created_body(command: CreatePending, expires_at_us: int) -> dict[str, object]:
    """A `pending_created` entry's body, before the chain adds its kind, seq, id and time."""
    return {
        "posting": command.posting.body(),
        "timeout_s": command.timeout_s,
        "expires_at_us": expires_at_us,
        "metadata": dict(command.metadata),
        "idempotency_key": command.idempotency_key,
    }


def created(entry: JournalEntry, posting: Posting, expires_at_us: int) -> PendingTransfer:
    """The pending transfer `entry` made: it takes the entry's id."""
    return PendingTransfer(
        id=entry.id,
        source=posting.source,
        destination=posting.destination,
        asset=posting.asset,
        amount_minor=posting.amount_minor,
        expires_at_us=expires_at_us,
        created_seq=entry.seq,
    )


# --- post, void, expire --------------------------------------------------------------------


def live_pending(
    pendings: Mapping[str, PendingTransfer], pending_id: str, at_us: int
) -> PendingTransfer:
    """The pending transfer a post or void at `at_us` may finish, or why it may not."""
    pending = pendings.get(pending_id)
    if pending is None:
        raise UnknownPending(pending_id=pending_id)
    if pending.state is PendingState.EXPIRED:
        raise PendingExpired(
            pending_id=pending_id,
            expires_at_us=pending.expires_at_us,
            finished_seq=pending.finished_seq,
        )
    if pending.state is not PendingState.PENDING:
        raise PendingNotPending(
            pending_id=pending_id, state=pending.state.value, finished_seq=pending.finished_seq
        )
    if pending.expires_at_us <= at_us:
        # The service expires due transfers before a batch's commands; this is the backstop.
        raise PendingExpired(pending_id=pending_id, expires_at_us=pending.expires_at_us)
    return pending


def amount_to_post(pending: PendingTransfer, requested_minor: int | None) -> int:
    """All of the reservation when no amount is given, else the amount, which may not exceed
    it; the rest is released."""
    amount = pending.amount_minor if requested_minor is None else requested_minor
    if amount > pending.amount_minor:
        raise PostExceedsPending(
            pending_id=pending.id,
            pending_amount_minor=pending.amount_minor,
            requested_minor=amount,
        )
    return amount


def check_due(pending: PendingTransfer, at_us: int) -> None:
    invariant(pending.state is PendingState.PENDING, "only a pending transfer expires")
    invariant(pending.expires_at_us <= at_us, "a pending transfer expires when due")


def release(
    balances: Mapping[tuple[str, str], Balance], pending: PendingTransfer, posted_minor: int
) -> Step:
    """Release the reservation and move `posted_minor` of it (zero for void and expiry).

    Releasing only loosens the source's floor, but the destination's maximum and the
    representable range are still checked by the engine: the posted balance there does grow.
    """
    asset, amount = pending.asset, pending.amount_minor
    source_old = balances.get((pending.source, asset), ZERO_BALANCE)
    destination_old = balances.get((pending.destination, asset), ZERO_BALANCE)
    invariant(
        source_old.pending_out >= amount and destination_old.pending_in >= amount,
        f"pending transfer {pending.id} is reserved on both sides",
    )
    return Step(
        pending.source,
        pending.destination,
        asset,
        source_old,
        Balance(
            source_old.posted - posted_minor,
            source_old.pending_out - amount,
            source_old.pending_in,
        ),
        destination_old,
        Balance(
            destination_old.posted + posted_minor,
            destination_old.pending_out,
            destination_old.pending_in - amount,
        ),
        0,
    )


def finished_body(
    pending: PendingTransfer,
    posted_minor: int,
    metadata: Mapping[str, str],
    idempotency_key: str | None,
) -> dict[str, object]:
    """A finishing entry's body, before the chain adds its kind, seq, id and time."""
    return {
        "pending_id": pending.id,
        "posting": {
            "source": pending.source,
            "destination": pending.destination,
            "asset": pending.asset,
            "amount_minor": pending.amount_minor,
        },
        "posted_minor": posted_minor,
        "released_minor": pending.amount_minor - posted_minor,
        "metadata": dict(metadata),
        "idempotency_key": idempotency_key,
    }


def finished(
    pending: PendingTransfer, state: PendingState, posted_minor: int, finished_seq: int
) -> PendingTransfer:
    return dataclasses.replace(
        pending, state=state, posted_amount_minor=posted_minor, finished_seq=finished_seq
    )
