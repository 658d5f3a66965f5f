"""Row shapes shared by the SQL stores: how ledger values become rows and back.

Amounts travel as Python ints; each store says how its driver keeps them (SQLite: decimal TEXT,
since its INTEGER is 64 bits; PostgreSQL: NUMERIC(39,0)). See docs/adr/0001.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, TypeVar

from fundpool.core.ledger.canonical import decode_body
from fundpool.core.ledger.engine import BatchOutcome, PostedTransaction, body_postings
from fundpool.core.ledger.model import (
    Account,
    Balance,
    EntryKind,
    PendingState,
    PendingTransfer,
)
from fundpool.core.money import Asset, AssetKind
from fundpool.ledger.ports import HistoryRow

T = TypeVar("T")


def chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    chunk: list[T] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def asset_from_row(code: str, scale: int, kind: str) -> Asset:
    return Asset(code, int(scale), AssetKind(kind))


def account_to_row(account: Account) -> tuple[Any, ...]:
    return (
        account.address,
        account.asset,
        bool(account.allow_negative),
        None if account.min_balance_minor is None else str(account.min_balance_minor),
        None if account.max_balance_minor is None else str(account.max_balance_minor),
        json.dumps(dict(account.metadata), sort_keys=True, separators=(",", ":")),
    )


PENDING_COLUMNS = (
    "id, source, destination, asset, amount_minor, expires_at_us, created_seq, state, "
    "posted_amount_minor, finished_seq"
)


def pending_from_row(row: Sequence[Any]) -> PendingTransfer:
    (pid, source, destination, asset, amount, expires, created, state, posted, finished) = row
    return PendingTransfer(
        id=pid,
        source=source,
        destination=destination,
        asset=asset,
        amount_minor=int(amount),
        expires_at_us=int(expires),
        created_seq=int(created),
        state=PendingState(state),
        posted_amount_minor=int(posted),
        finished_seq=None if finished is None else int(finished),
    )


def pending_to_row(pending: PendingTransfer) -> tuple[Any, ...]:
    return (
        pending.id,
        pending.source,
        pending.destination,
        pending.asset,
        str(pending.amount_minor),
        pending.expires_at_us,
        pending.created_seq,
        pending.state.value,
        str(pending.posted_amount_minor),
        pending.finished_seq,
    )


def transaction_from_canonical(kind: str, canonical: bytes) -> PostedTransaction:
    return PostedTransaction(EntryKind(kind), body_postings(decode_body(canonical)))


def outcome_rows(
    outcome: BatchOutcome,
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """(journal rows, leg rows, balance rows) of a batch, amounts as Python ints.

    Journal rows are (seq, id, kind, at_us, canonical, hash); leg rows are the engine's legs as
    they are (seq, address, asset, posted, pending_out, pending_in); balance rows are
    (address, asset, posted, pending_out, pending_in)."""
    journal: list[tuple[Any, ...]] = [entry[:6] for entry in outcome.entries]
    legs: list[tuple[Any, ...]] = [leg for entry in outcome.entries for leg in entry.legs]
    balances: list[tuple[Any, ...]] = [key + balance for key, balance in outcome.balances.items()]
    return journal, legs, balances


def text_amounts(rows: list[tuple[Any, ...]], first: int) -> list[tuple[Any, ...]]:
    """The same rows with every column from `first` on as decimal text, for a driver whose
    integers stop at 64 bits."""
    return [row[:first] + tuple(str(value) for value in row[first:]) for row in rows]


def history_rows(rows: Iterable[Sequence[Any]]) -> list[tuple[str, HistoryRow]]:
    """Rows of (asset, seq, entry_id, kind, at_us, posted, out, in, prev posted, prev out,
    prev in), newest first, as history rows with their changes."""
    result: list[tuple[str, HistoryRow]] = []
    for asset, seq, entry_id, kind, at_us, posted, out, inn, p_posted, p_out, p_in in rows:
        balance = Balance(int(posted), int(out), int(inn))
        result.append(
            (
                asset,
                HistoryRow(
                    seq=int(seq),
                    entry_id=entry_id,
                    kind=EntryKind(kind),
                    at_us=int(at_us),
                    balance=balance,
                    posted_change_minor=balance.posted - int(p_posted or 0),
                    pending_out_change_minor=balance.pending_out - int(p_out or 0),
                    pending_in_change_minor=balance.pending_in - int(p_in or 0),
                ),
            )
        )
    return result
