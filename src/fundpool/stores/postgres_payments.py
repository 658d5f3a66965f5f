"""Payments in the PostgreSQL schema, beside the ledger: written on the ledger transaction's own
connection, so a payment's change commits with the entries it posted, or not at all.

The tables mirror the SQLite ones (sqlite_payments.py) and behave the same: amounts are
NUMERIC(39,0), exact up to 2^128 - 1; text keys use the "C" collation, so payments list in the
same (byte) order in both stores; an event's entry ids are a TEXT[] in posting order.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, cast

import psycopg

from fundpool.core.errors import invariant
from fundpool.ledger.ports import WriteSession
from fundpool.payments.model import Action, Payment, PaymentEvent, PaymentState
from fundpool.stores.sqlite_payments import (
    EVENT_COLUMNS,
    PAYMENT_COLUMNS,
    SqlPaymentReads,
    metadata_json,
    payment_from_row,
)

if TYPE_CHECKING:
    pass

# Run by PostgresStore.initialise() in its transaction, after the ledger tables.
PAYMENTS_SCHEMA = """
CREATE TABLE IF NOT EXISTS payments (
    id TEXT COLLATE "C" PRIMARY KEY,
    pool TEXT COLLATE "C" NOT NULL,
    kind TEXT NOT NULL,
    asset TEXT COLLATE "C" NOT NULL,
    amount_minor NUMERIC(39, 0) NOT NULL,
    fee_minor NUMERIC(39, 0) NOT NULL,
    channel TEXT COLLATE "C",
    destination_channel TEXT COLLATE "C",
    counterparty TEXT,
    reference TEXT,
    state TEXT NOT NULL,
    approval_required BOOLEAN NOT NULL,
    created_at_us BIGINT NOT NULL,
    updated_at_us BIGINT NOT NULL,
    idempotency_key TEXT COLLATE "C",
    request_hash BYTEA NOT NULL,
    metadata JSONB NOT NULL,
    version INTEGER NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS payments_by_key ON payments (pool, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS payments_by_state ON payments (pool, state, id);
-- The payments a period created (the reconciliation export, payments/export.py).
CREATE INDEX IF NOT EXISTS payments_by_created ON payments (pool, created_at_us, id);
CREATE TABLE IF NOT EXISTS payment_events (
    payment_id TEXT COLLATE "C" NOT NULL,
    seq INTEGER NOT NULL,
    action TEXT NOT NULL,
    from_state TEXT,
    to_state TEXT NOT NULL,
    at_us BIGINT NOT NULL,
    entry_ids TEXT[] NOT NULL,
    reason TEXT,
    PRIMARY KEY (payment_id, seq)
);
"""

PAYMENT_MARKS = ", ".join(["%s"] * 18)
EVENT_MARKS = ", ".join(["%s"] * 8)


def payment_to_row(payment: Payment) -> tuple[Any, ...]:
    # Amounts go as Python ints (sent exactly, as NUMERIC when they outgrow BIGINT); the
    # metadata as JSON text, which the JSONB column parses.
    return (
        payment.id,
        payment.pool,
        payment.kind.value,
        payment.asset,
        payment.amount_minor,
        payment.fee_minor,
        payment.channel,
        payment.destination_channel,
        payment.counterparty,
        payment.reference,
        payment.state.value,
        bool(payment.approval_required),
        payment.created_at_us,
        payment.updated_at_us,
        payment.idempotency_key,
        bytes(payment.request_hash),
        metadata_json(payment.metadata),
        payment.version,
    )


def event_to_row(event: PaymentEvent) -> tuple[Any, ...]:
    return (
        event.payment_id,
        event.seq,
        event.action.value,
        None if event.from_state is None else event.from_state.value,
        event.to_state.value,
        event.at_us,
        list(event.entry_ids),
        event.reason,
    )


def event_from_row(row: Sequence[Any]) -> PaymentEvent:
    payment_id, seq, action, from_state, to_state, at_us, entry_ids, reason = row
    return PaymentEvent(
        payment_id=payment_id,
        seq=int(seq),
        action=Action(action),
        from_state=None if from_state is None else PaymentState(from_state),
        to_state=PaymentState(to_state),
        at_us=int(at_us),
        entry_ids=tuple(entry_ids),
        reason=reason,
    )


class PostgresPaymentWrites:
    def __init__(self, connection: psycopg.Connection[Any]) -> None:
        self._connection = connection

    def _any(self, sql: str, values: Iterable[str], *first: Any) -> list[tuple[Any, ...]]:
        """Rows of `sql`, whose last parameter is `= ANY(%s)` of the values as one array (so
        no chunks are needed). Not prepared, as in the ledger's session: planned with the array
        in hand, PostgreSQL probes the index for each element."""
        wanted = list(values)
        if not wanted:
            return []
        return self._connection.execute(sql, (*first, wanted), prepare=False).fetchall()

    def load(self, ids: Iterable[str]) -> dict[str, Payment]:
        rows = self._any(f"SELECT {PAYMENT_COLUMNS} FROM payments WHERE id = ANY(%s)", ids)
        return {row[0]: payment_from_row(row) for row in rows}

    def by_idempotency_key(self, pool: str, keys: Iterable[str]) -> dict[str, Payment]:
        rows = self._any(
            f"SELECT {PAYMENT_COLUMNS} FROM payments WHERE pool = %s "
            "AND idempotency_key = ANY(%s)",
            keys,
            pool,
        )
        return {row[14]: payment_from_row(row) for row in rows}

    def events(self, ids: Iterable[str]) -> dict[str, list[PaymentEvent]]:
        rows = self._any(
            f"SELECT {EVENT_COLUMNS} FROM payment_events WHERE payment_id = ANY(%s) "
            "ORDER BY payment_id, seq",
            ids,
        )
        events: dict[str, list[PaymentEvent]] = {}
        for row in rows:
            events.setdefault(row[0], []).append(event_from_row(row))
        return events

    def save(
        self,
        created: Sequence[Payment],
        changed: Sequence[Payment],
        events: Sequence[PaymentEvent],
    ) -> None:
        with self._connection.cursor() as cursor:
            if created:
                cursor.executemany(
                    f"INSERT INTO payments ({PAYMENT_COLUMNS}) VALUES ({PAYMENT_MARKS})",
                    [payment_to_row(p) for p in created],
                )
            if changed:
                # executemany's rowcount is the sum over its statements.
                cursor.executemany(
                    "UPDATE payments SET state = %s, fee_minor = %s, channel = %s, "
                    "destination_channel = %s, updated_at_us = %s, version = %s "
                    "WHERE id = %s AND version < %s",
                    [
                        (p.state.value, p.fee_minor, p.channel, p.destination_channel,
                         p.updated_at_us, p.version, p.id, p.version)
                        for p in changed
                    ],
                )
                invariant(cursor.rowcount == len(changed), "every changed payment was stored")
            if events:
                cursor.executemany(
                    f"INSERT INTO payment_events ({EVENT_COLUMNS}) VALUES ({EVENT_MARKS})",
                    [event_to_row(e) for e in events],
                )


class PostgresPaymentStore(SqlPaymentReads):
    """Payments of the ledger in `store`'s schema."""

    MARK = "%s"

    def event(self, row: Sequence[Any]) -> PaymentEvent:
        return event_from_row(row)

    def writes(self, session: WriteSession) -> PostgresPaymentWrites:
        return PostgresPaymentWrites(cast(Any, session).connection)
