"""Payments in the SQLite file, beside the ledger: written on the ledger transaction's own
connection, so a payment's change commits with the entries it posted, or not at all."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

from fundpool.core.errors import invariant
from fundpool.ledger.ports import LOOKUP_CHUNK, WriteSession
from fundpool.payments.model import (
    Action,
    Payment,
    PaymentEvent,
    PaymentKind,
    PaymentState,
)
from fundpool.payments.ports import PaymentFilter
from fundpool.stores.rows import chunks

PAYMENTS_SCHEMA = """
CREATE TABLE IF NOT EXISTS payments (
    id TEXT PRIMARY KEY,
    pool TEXT NOT NULL,
    kind TEXT NOT NULL,
    asset TEXT NOT NULL,
    amount_minor TEXT NOT NULL,
    fee_minor TEXT NOT NULL,
    channel TEXT,
    destination_channel TEXT,
    counterparty TEXT,
    reference TEXT,
    state TEXT NOT NULL,
    approval_required INTEGER NOT NULL,
    created_at_us INTEGER NOT NULL,
    updated_at_us INTEGER NOT NULL,
    idempotency_key TEXT,
    request_hash BLOB NOT NULL,
    metadata TEXT NOT NULL,
    version INTEGER NOT NULL
) STRICT;
CREATE UNIQUE INDEX IF NOT EXISTS payments_by_key ON payments (pool, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS payments_by_state ON payments (pool, state, id);
-- The payments a period created (the reconciliation export, payments/export.py).
CREATE INDEX IF NOT EXISTS payments_by_created ON payments (pool, created_at_us, id);
CREATE TABLE IF NOT EXISTS payment_events (
    payment_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    action TEXT NOT NULL,
    from_state TEXT,
    to_state TEXT NOT NULL,
    at_us INTEGER NOT NULL,
    entry_ids TEXT NOT NULL,
    reason TEXT,
    PRIMARY KEY (payment_id, seq)
) STRICT, WITHOUT ROWID;
"""

PAYMENT_COLUMNS = (
    "id, pool, kind, asset, amount_minor, fee_minor, channel, destination_channel, "
    "counterparty, reference, state, approval_required, created_at_us, updated_at_us, "
    "idempotency_key, request_hash, metadata, version"
)
EVENT_COLUMNS = "payment_id, seq, action, from_state, to_state, at_us, entry_ids, reason"


def metadata_json(metadata: Mapping[str, str]) -> str:
    if not metadata:
        return "{}"
    return json.dumps(dict(metadata), sort_keys=True, separators=(",", ":"))


def payment_to_row(payment: Payment) -> tuple[Any, ...]:
    return (
        payment.id,
        payment.pool,
        payment.kind.value,
        payment.asset,
        str(payment.amount_minor),
        str(payment.fee_minor),
        payment.channel,
        payment.destination_channel,
        payment.counterparty,
        payment.reference,
        payment.state.value,
        int(payment.approval_required),
        payment.created_at_us,
        payment.updated_at_us,
        payment.idempotency_key,
        payment.request_hash,
        metadata_json(payment.metadata),
        payment.version,
    )


def payment_from_row(row: Sequence[Any]) -> Payment:
    (pid, pool, kind, asset, amount, fee, channel, destination, counterparty, reference, state,
     approval, created, updated, key, request_hash, metadata, version) = row
    return Payment(
        id=pid,
        pool=pool,
        kind=PaymentKind(kind),
        asset=asset,
        amount_minor=int(amount),
        fee_minor=int(fee),
        channel=channel,
        destination_channel=destination,
        counterparty=counterparty,
        reference=reference,
        state=PaymentState(state),
        approval_required=bool(approval),
        created_at_us=int(created),
        updated_at_us=int(updated),
        idempotency_key=key,
        request_hash=bytes(request_hash),
        metadata=_metadata_from(metadata),
        version=int(version),
    )


def _metadata_from(value: Any) -> dict[str, str]:
    if value == "{}" or not value:
        return {}
    if isinstance(value, str | bytes):
        return cast(dict[str, str], json.loads(value))
    return dict(value)


def event_to_row(event: PaymentEvent) -> tuple[Any, ...]:
    return (
        event.payment_id,
        event.seq,
        event.action.value,
        None if event.from_state is None else event.from_state.value,
        event.to_state.value,
        event.at_us,
        " ".join(event.entry_ids),  # ids are UUIDs: no spaces, no JSON needed
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
        entry_ids=tuple(entry_ids.split()),
        reason=reason,
    )


class SqlitePaymentWrites:
    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    def _select_in(self, sql: str, values: Iterable[Any], *first: Any) -> list[Any]:
        rows: list[Any] = []
        for chunk in chunks(values, LOOKUP_CHUNK):
            marks = ",".join("?" * len(chunk))
            rows.extend(
                self._connection.execute(sql.format(marks=marks), (*first, *chunk)).fetchall()
            )
        return rows

    def load(self, ids: Iterable[str]) -> dict[str, Payment]:
        rows = self._select_in(f"SELECT {PAYMENT_COLUMNS} FROM payments WHERE id IN ({{marks}})",
                               ids)
        return {row[0]: payment_from_row(row) for row in rows}

    def by_idempotency_key(self, pool: str, keys: Iterable[str]) -> dict[str, Payment]:
        rows = self._select_in(
            f"SELECT {PAYMENT_COLUMNS} FROM payments WHERE pool = ? "
            "AND idempotency_key IN ({marks})",
            keys,
            pool,
        )
        return {row[14]: payment_from_row(row) for row in rows}

    def events(self, ids: Iterable[str]) -> dict[str, list[PaymentEvent]]:
        rows = self._select_in(
            f"SELECT {EVENT_COLUMNS} FROM payment_events WHERE payment_id IN ({{marks}}) "
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
        connection = self._connection
        if created:
            marks = ", ".join("?" * 18)
            connection.executemany(
                f"INSERT INTO payments ({PAYMENT_COLUMNS}) VALUES ({marks})",
                [payment_to_row(p) for p in created],
            )
        if changed:
            cursor = connection.executemany(
                "UPDATE payments SET state = ?, fee_minor = ?, channel = ?, "
                "destination_channel = ?, updated_at_us = ?, version = ? "
                "WHERE id = ? AND version < ?",
                [
                    (p.state.value, str(p.fee_minor), p.channel, p.destination_channel,
                     p.updated_at_us, p.version, p.id, p.version)
                    for p in changed
                ],
            )
            invariant(cursor.rowcount == len(changed), "every changed payment was stored")
        if events:
            connection.executemany(
                f"INSERT INTO payment_events ({EVENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [event_to_row(e) for e in events],
            )


class SqlPaymentReads:
    """The read side of a SQL payment store, shared by both: the stores differ only in their
    placeholder (`MARK`) and in how an event row's entry ids are kept (`event`)."""

    MARK = "?"

    def __init__(self, store: Any) -> None:
        self._store = store  # any store with query(sql, params) -> rows

    def event(self, row: Sequence[Any]) -> PaymentEvent:
        return event_from_row(row)

    def payment(self, payment_id: str) -> Payment | None:
        mark = self.MARK
        rows = self._store.query(
            f"SELECT {PAYMENT_COLUMNS} FROM payments WHERE id = {mark}", (payment_id,)
        )
        return payment_from_row(rows[0]) if rows else None

    def events(self, payment_id: str) -> list[PaymentEvent]:
        mark = self.MARK
        rows = self._store.query(
            f"SELECT {EVENT_COLUMNS} FROM payment_events WHERE payment_id = {mark} ORDER BY seq",
            (payment_id,),
        )
        return [self.event(row) for row in rows]

    def states(self, ids: Sequence[str]) -> dict[str, PaymentState]:
        """The current state of each of these payments (unknown ids left out)."""
        found: dict[str, PaymentState] = {}
        for chunk in chunks(ids, LOOKUP_CHUNK):
            marks = ", ".join([self.MARK] * len(chunk))
            rows = self._store.query(
                f"SELECT id, state FROM payments WHERE id IN ({marks})", list(chunk)
            )
            found.update((row[0], PaymentState(row[1])) for row in rows)
        return found

    def state_counts(self, pool: str) -> dict[PaymentState, int]:
        """The pool's payments by state (states with none left out)."""
        rows = self._store.query(
            f"SELECT state, count(*) FROM payments WHERE pool = {self.MARK} GROUP BY state",
            (pool,),
        )
        return {PaymentState(state): int(n) for state, n in rows}

    def payments(
        self, where: PaymentFilter, *, limit: int, after_id: str | None = None
    ) -> list[Payment]:
        mark = self.MARK
        clauses = [f"pool = {mark}"]
        params: list[Any] = [where.pool]
        for column, value in (
            ("state", where.state),
            ("kind", where.kind),
            ("asset", where.asset),
            ("channel", where.channel),
        ):
            if value is not None:
                clauses.append(f"{column} = {mark}")
                params.append(str(value))
        if after_id is not None:
            clauses.append(f"id < {mark}")
            params.append(after_id)
        params.append(limit)
        rows = self._store.query(
            f"SELECT {PAYMENT_COLUMNS} FROM payments WHERE {' AND '.join(clauses)} "
            f"ORDER BY id DESC LIMIT {mark}",
            params,
        )
        return [payment_from_row(row) for row in rows]

    def created_between(
        self, pool: str, since_us: int, until_us: int, *, limit: int
    ) -> list[Payment]:
        """The pool's payments created at or after `since_us` and before `until_us`, oldest
        first (ties by id), at most `limit`."""
        mark = self.MARK
        rows = self._store.query(
            f"SELECT {PAYMENT_COLUMNS} FROM payments WHERE pool = {mark} "
            f"AND created_at_us >= {mark} AND created_at_us < {mark} "
            f"ORDER BY created_at_us, id LIMIT {mark}",
            (pool, since_us, until_us, limit),
        )
        return [payment_from_row(row) for row in rows]

    def events_of(self, ids: Sequence[str]) -> dict[str, list[PaymentEvent]]:
        """The timelines of these payments, each oldest first (unknown ids left out)."""
        found: dict[str, list[PaymentEvent]] = {}
        for chunk in chunks(ids, LOOKUP_CHUNK):
            marks = ", ".join([self.MARK] * len(chunk))
            rows = self._store.query(
                f"SELECT {EVENT_COLUMNS} FROM payment_events WHERE payment_id IN ({marks}) "
                "ORDER BY payment_id, seq",
                list(chunk),
            )
            for row in rows:
                found.setdefault(row[0], []).append(self.event(row))
        return found


class SqlitePaymentStore(SqlPaymentReads):
    """Payments of the ledger in `store` (a `SqliteStore`)."""

    def writes(self, session: WriteSession) -> SqlitePaymentWrites:
        return SqlitePaymentWrites(cast(Any, session).connection)
