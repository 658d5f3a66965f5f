"""Booking one wave of planned steps on the ledger (ADR 0008).

A wave holds each payment once, so its ledger commands can go to the engine in one call, in
step order: the result is the same as one call per step, without a load pass per step.
Outbound approve, submit and settle steps of one kind in a wave are booked as one entry:
their postings summed per (source, destination, asset), as a bank books a payment file. If
that entry is refused, its steps are applied one by one, so a step that fits still goes
through and one that does not gets its own error. Summed entries go first, then the wave's
other steps: when a rail's funds are short, which steps of one wave get them may differ from
strict step order.
"""

from __future__ import annotations

from collections.abc import Sequence

from fundpool.core.ledger.engine import CommandResult
from fundpool.core.ledger.model import POSTINGS_PER_TRANSACTION_MAX, Posting, Transfer
from fundpool.core.money import AMOUNT_MAX_MINOR
from fundpool.ledger.service import LedgerTransaction
from fundpool.payments.model import Action
from fundpool.payments.rules import PlannedStep

AGGREGATE_MIN = 2  # fewer steps of a kind in a wave are booked one entry each


def book(
    transaction: LedgerTransaction, wave: Sequence[PlannedStep]
) -> list[CommandResult | None]:
    """Apply a wave's commands; each step's result, in wave order (None: it posts nothing)."""
    posted: list[CommandResult | None] = [None] * len(wave)
    single: list[int] = []
    groups: dict[Action, list[int]] = {}
    for i, planned in enumerate(wave):
        if not planned.posts:
            continue
        # Outbound approve/submit/settle: plain moves, never reversed by entry (a deposit's
        # entries may be, so deposits keep one entry per step).
        if planned.moves:
            groups.setdefault(planned.step.action, []).append(i)
        else:
            single.append(i)
    for action, members in groups.items():
        if len(members) < AGGREGATE_MIN:
            single.extend(members)
            continue
        for command, indices in aggregate_chunks(action, [wave[i] for i in members], members):
            (result,) = transaction.apply([command])
            if result.error is not None:
                single.extend(indices)
                continue
            for i in indices:
                posted[i] = result
    single.sort()
    commands = [wave[i].single() for i in single]
    results = transaction.apply([c for c in commands if c is not None]) if single else []
    for i, result in zip(single, results, strict=True):
        posted[i] = result
    # A refused command with a fallback (a clear whose merchant advance did not fit) is
    # applied again as its fallback, after the wave, in the wave's order.
    retry = [
        (i, fallback) for i, result in enumerate(posted)
        if result is not None and result.error is not None
        and (fallback := wave[i].fallback) is not None
    ]
    if retry:
        second = transaction.apply([fallback for _, fallback in retry])
        for (i, _), again in zip(retry, second, strict=True):
            posted[i] = again
    return posted


def aggregate_chunks(
    action: Action, planned: Sequence[PlannedStep], indices: Sequence[int]
) -> list[tuple[Transfer, list[int]]]:
    """One transfer per group of steps, its postings summed per (source, destination,
    asset), split where a transfer would exceed the ledger's postings bound."""
    chunks: list[tuple[Transfer, list[int]]] = []
    sums: dict[tuple[str, str, str], int] = {}
    members: list[int] = []

    def close() -> None:
        if members:
            postings = tuple(Posting(s, d, a, n) for (s, d, a), n in sums.items())
            metadata = {"action": action.value, "payments": str(len(members))}
            chunks.append((Transfer(postings, metadata), list(members)))
            sums.clear()
            members.clear()

    for item, index in zip(planned, indices, strict=True):
        asset = item.routed.asset
        moves = [((source, destination, asset), amount)
                 for source, destination, amount in item.moves or ()]
        if len(sums) + len(moves) > POSTINGS_PER_TRANSACTION_MAX and len(
            sums.keys() | {key for key, _ in moves}
        ) > POSTINGS_PER_TRANSACTION_MAX:
            close()
        else:
            for key, amount in moves:
                if sums.get(key, 0) + amount > AMOUNT_MAX_MINOR:
                    close()
                    break
        for key, amount in moves:
            sums[key] = sums.get(key, 0) + amount
        members.append(index)
    close()
    return chunks
