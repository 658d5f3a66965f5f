"""Payments beside the ledger, in either database: written on the ledger transaction's own
connection, so a payment's change commits with the entries it posted, or not at all.

One text per statement for both databases (fundpool.sql). Amounts are decimal text on SQLite
and NUMERIC(39,0) on PostgreSQL, exact up to 2^128 - 1 either way; text keys sort by their bytes
in both (PostgreSQL's "C" collation); an event's entry ids are a TEXT[] on PostgreSQL and
space-separated text on SQLite (`event_to_row`). Actors (a payment's `initiated_by`, each event's
`actor`) are JSON text in nullable columns (stores/actor_json.py): rows from before migration
0003 read as None. The tables are the ledger component's migrations.
"""

from __future__ import annotations

import functools
import json
import operator
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

from fundpool.core.actor import Actor
from fundpool.core.errors import invariant
from fundpool.ledger.ports import WriteSession
from fundpool.payments.memo import LastByIdentity
from fundpool.payments.model import (
    Action,
    Payment,
    PaymentEvent,
    PaymentKind,
    PaymentState,
)
from fundpool.payments.ports import ChannelMove, PaymentFilter
from fundpool.sql.database import LOOKUP_CHUNK, Database, Transaction
from fundpool.sql.dialect import Dialect
from fundpool.sql.query import Where
from fundpool.stores.actor_json import actor_from_text, actor_text
from fundpool.stores.rows import chunks

PAYMENT_COLUMNS = (
    "id, pool, kind, asset, amount_minor, fee_minor, channel, destination_channel, "
    "counterparty, reference, state, approval_required, created_at_us, updated_at_us, "
    "idempotency_key, request_hash, metadata, version, destination, initiated_by"
)
EVENT_COLUMNS = "payment_id, seq, action, from_state, to_state, at_us, entry_ids, reason, actor"
ACTORS_CACHED_MAX = 1_024  # distinct actors kept in their stored form (a few per request)


@functools.lru_cache(maxsize=ACTORS_CACHED_MAX)
def _cached_actor_text(actor: Actor | None) -> str | None:
    return actor_text(actor)


# A session writes many rows with one actor: its JSON is made once, and looked up by identity
# while the rows' actor stays the same object.
_actor_text = LastByIdentity(_cached_actor_text)


@functools.lru_cache(maxsize=ACTORS_CACHED_MAX)
def _actor_from(text: str | None) -> Actor | None:
    return actor_from_text(text)


def metadata_json(metadata: Mapping[str, str]) -> str:
    if not metadata:
        return "{}"
    return json.dumps(dict(metadata), sort_keys=True, separators=(",", ":"))


def payment_to_row(payment: Payment, dialect: Dialect) -> tuple[Any, ...]:
    # Amounts go as the dialect binds them (decimal text on SQLite, exact NUMERIC on
    # PostgreSQL); the metadata as JSON text, which PostgreSQL's JSONB column parses. A
    # StrEnum's `str()` is its value, at a third of the cost of `.value` (rows are many).
    return (
        payment.id,
        payment.pool,
        str(payment.kind),
        payment.asset,
        dialect.amount(payment.amount_minor),
        dialect.amount(payment.fee_minor),
        payment.channel,
        payment.destination_channel,
        payment.counterparty,
        payment.reference,
        str(payment.state),
        bool(payment.approval_required),
        payment.created_at_us,
        payment.updated_at_us,
        payment.idempotency_key,
        bytes(payment.request_hash),
        metadata_json(payment.metadata),
        payment.version,
        payment.destination,
        _actor_text(payment.initiated_by),
    )


def payment_from_row(row: Sequence[Any]) -> Payment:
    (pid, pool, kind, asset, amount, fee, channel, destination_channel, counterparty, reference,
     state, approval, created, updated, key, request_hash, metadata, version, destination,
     initiated_by) = row
    return Payment(
        pid, pool, _KINDS.get(kind) or PaymentKind(kind), asset, int(amount), int(fee),
        channel, destination_channel, counterparty, reference,
        _STATES.get(state) or PaymentState(state), bool(approval), int(created), int(updated),
        key, bytes(request_hash), _metadata_from(metadata), int(version), destination,
        _actor_from(initiated_by),
    )


# Members by value, for rows read in bulk (an enum's own lookup by value costs a few times a
# dict's); a value not found goes through it, and raises as it does.
_KINDS = {kind.value: kind for kind in PaymentKind}
_STATES = {state.value: state for state in PaymentState}
_ACTIONS = {action.value: action for action in Action}


def _metadata_from(value: Any) -> dict[str, str]:
    if value == "{}" or not value:
        return {}
    if isinstance(value, str | bytes):
        return cast(dict[str, str], json.loads(value))
    return dict(value)


def event_to_row(event: PaymentEvent, id_array: bool) -> tuple[Any, ...]:
    """The event's row; its entry ids in posting order, a TEXT[] where the database has
    arrays (`id_array`: PostgreSQL), else space-separated text (ids are UUIDs: no spaces, no
    JSON needed)."""
    return (
        event.payment_id,
        event.seq,
        str(event.action),
        None if event.from_state is None else str(event.from_state),
        str(event.to_state),
        event.at_us,
        list(event.entry_ids) if id_array else " ".join(event.entry_ids),
        event.reason,
        _actor_text(event.actor),
    )


def event_from_row(row: Sequence[Any]) -> PaymentEvent:
    payment_id, seq, action, from_state, to_state, at_us, entry_ids, reason, actor = row
    return PaymentEvent(
        payment_id=payment_id,
        seq=int(seq),
        action=_ACTIONS.get(action) or Action(action),
        from_state=None if from_state is None else _STATES.get(from_state)
        or PaymentState(from_state),
        to_state=_STATES.get(to_state) or PaymentState(to_state),
        at_us=int(at_us),
        entry_ids=tuple(entry_ids.split() if isinstance(entry_ids, str) else entry_ids),
        reason=reason,
        actor=_actor_from(actor),
    )


PAYMENT_MARKS = ", ".join("?" * 20)
EVENT_MARKS = ", ".join("?" * 9)


_by_id = operator.attrgetter("id")
_by_key = operator.itemgetter(0, 1)  # an event row's (payment_id, seq)


class SqlPaymentWrites:
    """The payments' side of one ledger write transaction."""

    def __init__(self, tx: Transaction) -> None:
        self._tx = tx
        self._dialect = tx.dialect

    def _select_in(self, query: str, column: str, values: Iterable[str], *first: Any
                   ) -> list[Any]:
        return self._tx.rows_in(query, column, values, *first)

    def load(self, ids: Iterable[str]) -> dict[str, Payment]:
        rows = self._select_in(f"SELECT {PAYMENT_COLUMNS} FROM payments WHERE {{match}}",
                               "id", ids)
        return {row[0]: payment_from_row(row) for row in rows}

    def versions(self, ids: Iterable[str]) -> dict[str, int]:
        rows = self._select_in("SELECT id, version FROM payments WHERE {match}", "id", ids)
        return {row[0]: int(row[1]) for row in rows}

    def by_idempotency_key(self, pool: str, keys: Iterable[str]) -> dict[str, Payment]:
        rows = self._select_in(
            f"SELECT {PAYMENT_COLUMNS} FROM payments WHERE pool = ? AND {{match}}",
            "idempotency_key", keys, pool,
        )
        return {row[14]: payment_from_row(row) for row in rows}

    def events(self, ids: Iterable[str]) -> dict[str, list[PaymentEvent]]:
        rows = self._select_in(
            f"SELECT {EVENT_COLUMNS} FROM payment_events WHERE {{match}} "
            "ORDER BY payment_id, seq",
            "payment_id", ids,
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
        tx, dialect = self._tx, self._dialect
        if created:
            tx.many(f"INSERT INTO payments ({PAYMENT_COLUMNS}) VALUES ({PAYMENT_MARKS})",
                    [payment_to_row(p, dialect) for p in created])
        # Updates and events go in key order (a session's come in step order, each wave
        # across all its payments): each index is then written front to back, page after
        # page, not revisited once per wave. The rows written are the same.
        if changed:
            changed = sorted(changed, key=_by_id)
            stored = tx.many(
                "UPDATE payments SET state = ?, fee_minor = ?, channel = ?, "
                "destination_channel = ?, updated_at_us = ?, version = ? "
                "WHERE id = ? AND version < ?",
                [(str(p.state), dialect.amount(p.fee_minor), p.channel, p.destination_channel,
                  p.updated_at_us, p.version, p.id, p.version) for p in changed],
            )
            invariant(stored == len(changed), "every changed payment was stored")
        if events:
            id_array = dialect.is_postgres
            tx.many(f"INSERT INTO payment_events ({EVENT_COLUMNS}) VALUES ({EVENT_MARKS})",
                    sorted((event_to_row(e, id_array) for e in events), key=_by_key))


class SqlPaymentStore:
    """The payments of the ledger in `store` (any `SqlLedgerStore`): reads on its database,
    writes on its write sessions."""

    def __init__(self, store: Any) -> None:
        self._db: Database = store.db

    def writes(self, session: WriteSession) -> SqlPaymentWrites:
        return SqlPaymentWrites(cast(Any, session).tx)

    def payment(self, payment_id: str) -> Payment | None:
        row = self._db.one(f"SELECT {PAYMENT_COLUMNS} FROM payments WHERE id = ?", (payment_id,))
        return None if row is None else payment_from_row(row)

    def events(self, payment_id: str) -> list[PaymentEvent]:
        rows = self._db.rows(
            f"SELECT {EVENT_COLUMNS} FROM payment_events WHERE payment_id = ? ORDER BY seq",
            (payment_id,),
        )
        return [event_from_row(row) for row in rows]

    def states(self, ids: Sequence[str]) -> dict[str, PaymentState]:
        """The current state of each of these payments (unknown ids left out)."""
        found: dict[str, PaymentState] = {}
        for chunk in chunks(ids, LOOKUP_CHUNK):
            where = Where().within("id", chunk)
            rows = self._db.rows(f"SELECT id, state FROM payments{where}", where.params)
            found.update((row[0], PaymentState(row[1])) for row in rows)
        return found

    def state_counts(self, pool: str) -> dict[PaymentState, int]:
        """The pool's payments by state (states with none left out)."""
        rows = self._db.rows(
            "SELECT state, count(*) FROM payments WHERE pool = ? GROUP BY state", (pool,)
        )
        return {PaymentState(state): int(n) for state, n in rows}

    def payments(
        self, where: PaymentFilter, *, limit: int, after_id: str | None = None
    ) -> list[Payment]:
        clauses = Where().eq("pool", where.pool)
        for column, value in (("state", where.state), ("kind", where.kind),
                              ("asset", where.asset), ("channel", where.channel)):
            clauses.eq(column, None if value is None else str(value))
        clauses.before("id", after_id)
        rows = self._db.rows(
            f"SELECT {PAYMENT_COLUMNS} FROM payments{clauses} ORDER BY id DESC LIMIT ?",
            (*clauses.params, limit),
        )
        return [payment_from_row(row) for row in rows]

    def created_between(
        self, pool: str, since_us: int, until_us: int, *, limit: int
    ) -> list[Payment]:
        """The pool's payments created at or after `since_us` and before `until_us`, oldest
        first (ties by id), at most `limit`."""
        rows = self._db.rows(
            f"SELECT {PAYMENT_COLUMNS} FROM payments WHERE pool = ? "
            "AND created_at_us >= ? AND created_at_us < ? ORDER BY created_at_us, id LIMIT ?",
            (pool, since_us, until_us, limit),
        )
        return [payment_from_row(row) for row in rows]

    def channel_moves(self, pool: str, channel: str, since_us: int, until_us: int, *,
                      created_since_us: int, limit: int) -> list[ChannelMove]:
        """Reads the payments by creation time (their index), then their boundary steps: no
        index of events by time is kept for this, since every step of the hot path would pay
        for it; reconciliation looks back `created_since_us` (a bounded number of days)."""
        rows = self._db.rows(
            "SELECT p.id, p.kind, e.action, e.at_us, p.asset, p.amount_minor, p.fee_minor, "
            "p.channel, p.destination_channel, p.reference, p.counterparty, "
            "(SELECT r.rail_ref FROM payment_routes r WHERE r.payment_id = p.id "
            " AND r.rail_ref IS NOT NULL ORDER BY r.attempt DESC LIMIT 1) "
            "FROM payments p JOIN payment_events e ON e.payment_id = p.id "
            "WHERE p.pool = ? AND p.created_at_us >= ? "
            "AND (p.channel = ? OR p.destination_channel = ?) "
            "AND e.action IN ('settle', 'clear', 'return') AND e.at_us >= ? AND e.at_us < ? "
            "ORDER BY e.at_us, p.id, e.seq LIMIT ?",
            (pool, created_since_us, channel, channel, since_us, until_us, limit),
        )
        return [ChannelMove(row[0], row[1], row[2], int(row[3]), row[4], int(row[5]),
                            int(row[6]), row[7], row[8], row[9], row[10], row[11])
                for row in rows]

    def events_of(self, ids: Sequence[str]) -> dict[str, list[PaymentEvent]]:
        """The timelines of these payments, each oldest first (unknown ids left out)."""
        found: dict[str, list[PaymentEvent]] = {}
        for chunk in chunks(ids, LOOKUP_CHUNK):
            where = Where().within("payment_id", chunk)
            rows = self._db.rows(
                f"SELECT {EVENT_COLUMNS} FROM payment_events{where} ORDER BY payment_id, seq",
                where.params,
            )
            for row in rows:
                found.setdefault(row[0], []).append(event_from_row(row))
        return found
