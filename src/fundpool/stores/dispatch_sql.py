"""The dispatcher's records, beside the payments, in both stores: each payment's routes (one
per attempt, with the routing decision that chose it), the batches sent to rails with their
fees and savings, and every outcome a rail reported with what was done about it.

Written on the ledger transaction's own connection, so a route, an outcome's disposition and
the payment steps they caused commit together or not at all. One SQL text serves both
databases (fundpool.sql); an amount is bound as the dialect keeps it (decimal text on SQLite,
whose integers stop at 2^63; NUMERIC(39,0) on PostgreSQL). The tables are the ledger
component's migrations.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import orjson

from fundpool.ledger.ports import WriteSession
from fundpool.payments.ports import DispatchRecordReads, DispatchRecords, DispatchRecordWrites
from fundpool.payments.records import BatchRecord, OutcomeRecord, RouteRecord
from fundpool.sql.database import LOOKUP_CHUNK, Database, Transaction
from fundpool.sql.query import Where
from fundpool.stores.rows import chunks

ROUTE_COLUMNS = "payment_id, attempt, at_us, channel, strategy, decision, batch_id, rail_ref"
BATCH_COLUMNS = (
    "id, channel, asset, rail_ref, items, amount_minor, fee_minor, single_fee_minor, "
    "savings_minor, opened_at_us, submitted_at_us, status"
)
OUTCOME_COLUMNS = (
    "outcome_id, channel, payment_id, kind, at_us, received_at_us, disposition, detail"
)


def _route_from_row(row: Sequence[Any]) -> RouteRecord:
    pid, attempt, at_us, channel, strategy, decision, batch_id, rail_ref = row
    return RouteRecord(pid, int(attempt), int(at_us), channel, strategy, json.loads(decision),
                       batch_id, rail_ref)


def _batch_from_row(row: Sequence[Any]) -> BatchRecord:
    (bid, channel, asset, rail_ref, items, amount, fee, single, savings, opened, submitted,
     status) = row
    return BatchRecord(bid, channel, asset, rail_ref, int(items), int(amount), int(fee),
                       int(single), int(savings), int(opened), int(submitted), status)


def _outcome_from_row(row: Sequence[Any]) -> OutcomeRecord:
    oid, channel, pid, kind, at_us, received, disposition, detail = row
    return OutcomeRecord(oid, channel, pid, kind, int(at_us), int(received), disposition,
                         detail)


def decision_text(decision: dict[str, Any]) -> str:
    """A routing decision as stored: compact JSON, read back by `json.loads` equal to what it
    was. Made by orjson, as the events are, in a twentieth of `json.dumps`' time (its float
    scores are most of that: a route is stored for every payout). Its text differs from
    `json.dumps`' only in form (`1e-8` for `1e-08`, UTF-8 for `\\u` escapes); an amount beyond
    64 bits, which orjson refuses, goes through `json`."""
    try:
        return orjson.dumps(decision).decode()
    except orjson.JSONEncodeError:
        return json.dumps(decision, separators=(",", ":"))


def _routes_in(rows: Callable[[str, Sequence[Any]], list[Any]], payment_ids: Iterable[str]
               ) -> dict[str, list[RouteRecord]]:
    """Every route of these payments, by payment, in attempt order: `rows` runs the SQL in a
    write transaction or on a store's read connection."""
    routes: dict[str, list[RouteRecord]] = {}
    for chunk in chunks(payment_ids, LOOKUP_CHUNK):
        where = Where().within("payment_id", chunk)
        for row in rows(f"SELECT {ROUTE_COLUMNS} FROM payment_routes{where} "
                        "ORDER BY payment_id, attempt", where.params):
            routes.setdefault(row[0], []).append(_route_from_row(row))
    return routes


class DispatchWrites(DispatchRecordWrites):
    """The dispatcher's tables inside a ledger write transaction."""

    def __init__(self, session: WriteSession) -> None:
        self._tx: Transaction = getattr(session, "tx")  # noqa: B009 - every SQL store's has it

    def routes(self, payment_ids: Iterable[str]) -> dict[str, list[RouteRecord]]:
        """Every route of these payments, by payment, in attempt order."""
        return _routes_in(self._tx.rows, payment_ids)

    def add_routes(self, routes: Sequence[RouteRecord]) -> None:
        self._tx.many(
            f"INSERT INTO payment_routes ({ROUTE_COLUMNS}) VALUES ({', '.join('?' * 8)})",
            [
                (r.payment_id, r.attempt, r.at_us, r.channel, r.strategy,
                 decision_text(r.decision), r.batch_id, r.rail_ref)
                for r in routes
            ],
        )

    def mark_sent(self, sent: Sequence[tuple[str, int, str, str | None]]) -> None:
        """(payment id, attempt, batch id, rail ref) for routes whose payment went out."""
        self._tx.many(
            "UPDATE payment_routes SET batch_id = ?, rail_ref = ? "
            "WHERE payment_id = ? AND attempt = ?",
            [(batch_id, rail_ref, pid, attempt) for pid, attempt, batch_id, rail_ref in sent],
        )

    def add_batches(self, batches: Sequence[BatchRecord]) -> None:
        amount = self._tx.dialect.amount
        self._tx.many(
            f"INSERT INTO channel_batches ({BATCH_COLUMNS}) VALUES ({', '.join('?' * 12)})",
            [
                (b.id, b.channel, b.asset, b.rail_ref, b.items, amount(b.amount_minor),
                 amount(b.fee_minor), amount(b.single_fee_minor), amount(b.savings_minor),
                 b.opened_at_us, b.submitted_at_us, b.status)
                for b in batches
            ],
        )

    def seen_outcomes(self, keys: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
        """Which (channel, outcome id) pairs were recorded before."""
        by_channel: dict[str, list[str]] = {}
        for channel, outcome_id in keys:
            by_channel.setdefault(channel, []).append(outcome_id)
        seen: set[tuple[str, str]] = set()
        for channel, ids in by_channel.items():
            for chunk in chunks(ids, LOOKUP_CHUNK):
                where = Where().eq("channel", channel).within("outcome_id", chunk)
                rows = self._tx.rows(f"SELECT outcome_id FROM channel_outcomes{where}",
                                     where.params)
                seen.update((channel, row[0]) for row in rows)
        return seen

    def add_outcomes(self, outcomes: Sequence[OutcomeRecord]) -> None:
        self._tx.many(
            f"INSERT INTO channel_outcomes ({OUTCOME_COLUMNS}) VALUES ({', '.join('?' * 8)})",
            [
                (o.outcome_id, o.channel, o.payment_id, o.kind, o.at_us, o.received_at_us,
                 o.disposition, o.detail)
                for o in outcomes
            ],
        )


class DispatchReads(DispatchRecordReads):
    """The dispatcher's records as committed, for the CLI, the API and the console."""

    def __init__(self, store: Any) -> None:
        self._db: Database = store if isinstance(store, Database) else store.db

    def routes(self, payment_id: str) -> list[RouteRecord]:
        return self.routes_of([payment_id]).get(payment_id, [])

    def routes_of(self, payment_ids: Sequence[str]) -> dict[str, list[RouteRecord]]:
        """Every route of these payments, by payment, in attempt order."""
        return _routes_in(self._db.rows, payment_ids)

    def outcomes(self, payment_id: str) -> list[OutcomeRecord]:
        rows = self._db.rows(
            f"SELECT {OUTCOME_COLUMNS} FROM channel_outcomes WHERE payment_id = ? "
            "ORDER BY received_at_us, at_us, outcome_id",
            (payment_id,),
        )
        return [_outcome_from_row(row) for row in rows]

    def batches(self, *, channel: str | None = None, limit: int = 100,
                before: tuple[int, str] | None = None) -> list[BatchRecord]:
        """Batches newest first (by submission, then id); with `before` = (submitted_at_us,
        id) of the last one seen, the ones after it: a page is an index range."""
        where = Where().eq("channel", channel)
        if before is not None:
            where.add("(submitted_at_us < ? OR (submitted_at_us = ? AND id < ?))",
                      before[0], before[0], before[1])
        rows = self._db.rows(
            f"SELECT {BATCH_COLUMNS} FROM channel_batches{where} "
            "ORDER BY submitted_at_us DESC, id DESC LIMIT ?",
            (*where.params, limit),
        )
        return [_batch_from_row(row) for row in rows]

    def decisions(
        self, *, payment_id: str | None = None, channel: str | None = None, limit: int = 100,
        before: tuple[str, int] | None = None,
    ) -> list[tuple[RouteRecord, str | None, int | None]]:
        """Routing decisions newest payment first, then newest attempt (the routes table's
        own key, so a page is an index range), each with its payment's asset and amount;
        `before` = (payment_id, attempt) of the last one seen."""
        where = Where().eq("r.payment_id", payment_id).eq("r.channel", channel)
        if before is not None:
            where.add("(r.payment_id < ? OR (r.payment_id = ? AND r.attempt < ?))",
                      before[0], before[0], before[1])
        keys = self._db.rows(
            "SELECT r.payment_id, r.attempt, p.asset, p.amount_minor FROM payment_routes r "
            f"LEFT JOIN payments p ON p.id = r.payment_id{where} "
            "ORDER BY r.payment_id DESC, r.attempt DESC LIMIT ?",
            (*where.params, limit),
        )
        routes = self.routes_of(sorted({str(k[0]) for k in keys}))
        by_key = {(r.payment_id, r.attempt): r for found in routes.values() for r in found}
        return [(by_key[(str(pid), int(attempt))], None if asset is None else str(asset),
                 None if amount is None else int(amount))
                for pid, attempt, asset, amount in keys]

    def savings(
        self, *, since_us: int | None = None
    ) -> dict[tuple[str, str], tuple[int, int, int]]:
        """Per (channel, asset): batches sent (from `since_us` on, if given), fees paid and
        fees saved by batching. Summed here, exactly: SQLite's sum() of amounts above 2^63
        overflows or turns to a float (18-decimal assets reach that at about 9.2 units)."""
        rows = self._db.rows(
            "SELECT channel, asset, fee_minor, savings_minor FROM channel_batches "
            "WHERE status = 'sent' AND submitted_at_us >= ?",
            (since_us if since_us is not None else -(2**62),),
        )
        totals: dict[tuple[str, str], tuple[int, int, int]] = {}
        for channel, asset, fee, saved in rows:
            count, fees, savings = totals.get((channel, asset), (0, 0, 0))
            totals[(channel, asset)] = (count + 1, fees + int(fee), savings + int(saved))
        return totals

    def route_counts(self) -> dict[tuple[str | None, str], int]:
        """Payouts' routes (one per attempt) by (channel, strategy); channel None: no eligible
        rail. Transfers between the pool's own channels are left out: they are not routed."""
        rows = self._db.rows(
            "SELECT r.channel, r.strategy, count(*) FROM payment_routes r "
            "JOIN payments p ON p.id = r.payment_id WHERE p.kind = 'payout' "
            "GROUP BY r.channel, r.strategy"
        )
        return {(channel, str(strategy)): int(n) for channel, strategy, n in rows}


    def disposition_counts(self) -> dict[str, int]:
        """Recorded outcomes by disposition (duplicates are counted by ticks, not stored)."""
        rows = self._db.rows(
            "SELECT disposition, count(*) FROM channel_outcomes GROUP BY disposition")
        return {r[0]: int(r[1]) for r in rows}


def dispatch_records(store: Any) -> DispatchReads:
    """The dispatcher's committed records of a ledger store."""
    return DispatchReads(store)


class SqlDispatchRecords(DispatchRecords):
    """The dispatcher's port (`payments.ports.DispatchRecords`) on a ledger store: what the
    builders of a dispatcher hand it."""

    def __init__(self, store: Any) -> None:
        self._reads = DispatchReads(store)

    @property
    def reads(self) -> DispatchReads:
        return self._reads

    def writes(self, session: WriteSession) -> DispatchWrites:
        return DispatchWrites(session)
