"""The dispatcher's records, beside the payments, in both stores: each payment's routes (one
per attempt, with the routing decision that chose it), the batches sent to rails with their
fees and savings, and every outcome a rail reported with what was done about it.

Written on the ledger transaction's own connection, so a route, an outcome's disposition and
the payment steps they caused commit together or not at all. One SQL text serves both
stores: they differ in the placeholder and in how an amount is bound (SQLite keeps it as
text, since its integers stop at 2^63; PostgreSQL as NUMERIC(39,0)).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from fundpool.ledger.ports import LOOKUP_CHUNK, WriteSession
from fundpool.payments.ports import DispatchRecordReads, DispatchRecords, DispatchRecordWrites
from fundpool.payments.records import BatchRecord, OutcomeRecord, RouteRecord
from fundpool.stores.rows import chunks

SQLITE_DISPATCH_SCHEMA = """
CREATE TABLE IF NOT EXISTS payment_routes (
    payment_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    at_us INTEGER NOT NULL,
    channel TEXT,
    strategy TEXT NOT NULL,
    decision TEXT NOT NULL,
    batch_id TEXT,
    rail_ref TEXT,
    PRIMARY KEY (payment_id, attempt)
) STRICT, WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS channel_batches (
    id TEXT PRIMARY KEY,
    channel TEXT NOT NULL,
    asset TEXT NOT NULL,
    rail_ref TEXT,
    items INTEGER NOT NULL,
    amount_minor TEXT NOT NULL,
    fee_minor TEXT NOT NULL,
    single_fee_minor TEXT NOT NULL,
    savings_minor TEXT NOT NULL,
    opened_at_us INTEGER NOT NULL,
    submitted_at_us INTEGER NOT NULL,
    status TEXT NOT NULL
) STRICT, WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS channel_outcomes (
    outcome_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    payment_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    at_us INTEGER NOT NULL,
    received_at_us INTEGER NOT NULL,
    disposition TEXT NOT NULL,
    detail TEXT,
    PRIMARY KEY (channel, outcome_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS channel_outcomes_by_payment ON channel_outcomes (payment_id);
"""

POSTGRES_DISPATCH_SCHEMA = """
CREATE TABLE IF NOT EXISTS payment_routes (
    payment_id TEXT COLLATE "C" NOT NULL,
    attempt INTEGER NOT NULL,
    at_us BIGINT NOT NULL,
    channel TEXT COLLATE "C",
    strategy TEXT NOT NULL,
    decision TEXT NOT NULL,
    batch_id TEXT COLLATE "C",
    rail_ref TEXT,
    PRIMARY KEY (payment_id, attempt)
);
CREATE TABLE IF NOT EXISTS channel_batches (
    id TEXT COLLATE "C" PRIMARY KEY,
    channel TEXT COLLATE "C" NOT NULL,
    asset TEXT COLLATE "C" NOT NULL,
    rail_ref TEXT,
    items INTEGER NOT NULL,
    amount_minor NUMERIC(39, 0) NOT NULL,
    fee_minor NUMERIC(39, 0) NOT NULL,
    single_fee_minor NUMERIC(39, 0) NOT NULL,
    savings_minor NUMERIC(39, 0) NOT NULL,
    opened_at_us BIGINT NOT NULL,
    submitted_at_us BIGINT NOT NULL,
    status TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS channel_outcomes (
    outcome_id TEXT COLLATE "C" NOT NULL,
    channel TEXT COLLATE "C" NOT NULL,
    payment_id TEXT COLLATE "C" NOT NULL,
    kind TEXT NOT NULL,
    at_us BIGINT NOT NULL,
    received_at_us BIGINT NOT NULL,
    disposition TEXT NOT NULL,
    detail TEXT,
    PRIMARY KEY (channel, outcome_id)
);
CREATE INDEX IF NOT EXISTS channel_outcomes_by_payment ON channel_outcomes (payment_id);
"""


ROUTE_COLUMNS = "payment_id, attempt, at_us, channel, strategy, decision, batch_id, rail_ref"
BATCH_COLUMNS = (
    "id, channel, asset, rail_ref, items, amount_minor, fee_minor, single_fee_minor, "
    "savings_minor, opened_at_us, submitted_at_us, status"
)
OUTCOME_COLUMNS = (
    "outcome_id, channel, payment_id, kind, at_us, received_at_us, disposition, detail"
)


class _Dialect:
    def __init__(self, mark: str, text_amounts: bool) -> None:
        self.mark = mark
        self.text_amounts = text_amounts

    def marks(self, count: int) -> str:
        return ", ".join([self.mark] * count)

    def amount(self, value: int) -> Any:
        return str(value) if self.text_amounts else value


SQLITE = _Dialect("?", text_amounts=True)
POSTGRES = _Dialect("%s", text_amounts=False)


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


def _routes_in(
    query: Callable[[str, list[str]], list[Any]], dialect: _Dialect, payment_ids: Iterable[str]
) -> dict[str, list[RouteRecord]]:
    """Every route of these payments, by payment, in attempt order: `query` runs the SQL
    on a write session's connection or on a store's read connection."""
    routes: dict[str, list[RouteRecord]] = {}
    for chunk in chunks(payment_ids, LOOKUP_CHUNK):
        rows = query(
            f"SELECT {ROUTE_COLUMNS} FROM payment_routes "
            f"WHERE payment_id IN ({dialect.marks(len(chunk))}) ORDER BY payment_id, attempt",
            list(chunk),
        )
        for row in rows:
            routes.setdefault(row[0], []).append(_route_from_row(row))
    return routes


class DispatchWrites(DispatchRecordWrites):
    """The dispatcher's tables inside a ledger write transaction."""

    def __init__(self, session: WriteSession, dialect: _Dialect) -> None:
        self._connection: Any = getattr(session, "connection")  # noqa: B009 - both stores have it
        self._dialect = dialect

    def _rows(self, sql: str, params: Sequence[Any]) -> list[Any]:
        return list(self._connection.execute(sql, params).fetchall())

    def _many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            cursor = self._connection.cursor()
            try:
                cursor.executemany(sql, rows)
            finally:
                cursor.close()

    def routes(self, payment_ids: Iterable[str]) -> dict[str, list[RouteRecord]]:
        """Every route of these payments, by payment, in attempt order."""
        return _routes_in(self._rows, self._dialect, payment_ids)

    def add_routes(self, routes: Sequence[RouteRecord]) -> None:
        self._many(
            f"INSERT INTO payment_routes ({ROUTE_COLUMNS}) VALUES ({self._dialect.marks(8)})",
            [
                (r.payment_id, r.attempt, r.at_us, r.channel, r.strategy,
                 json.dumps(r.decision, separators=(",", ":")), r.batch_id, r.rail_ref)
                for r in routes
            ],
        )

    def mark_sent(self, sent: Sequence[tuple[str, int, str, str | None]]) -> None:
        """(payment id, attempt, batch id, rail ref) for routes whose payment went out."""
        mark = self._dialect.mark
        self._many(
            f"UPDATE payment_routes SET batch_id = {mark}, rail_ref = {mark} "
            f"WHERE payment_id = {mark} AND attempt = {mark}",
            [(batch_id, rail_ref, pid, attempt) for pid, attempt, batch_id, rail_ref in sent],
        )

    def add_batches(self, batches: Sequence[BatchRecord]) -> None:
        amount = self._dialect.amount
        self._many(
            f"INSERT INTO channel_batches ({BATCH_COLUMNS}) VALUES ({self._dialect.marks(12)})",
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
        mark = self._dialect.mark
        for channel, ids in by_channel.items():
            for chunk in chunks(ids, LOOKUP_CHUNK):
                rows = self._rows(
                    f"SELECT outcome_id FROM channel_outcomes WHERE channel = {mark} "
                    f"AND outcome_id IN ({self._dialect.marks(len(chunk))})",
                    (channel, *chunk),
                )
                seen.update((channel, row[0]) for row in rows)
        return seen

    def add_outcomes(self, outcomes: Sequence[OutcomeRecord]) -> None:
        self._many(
            f"INSERT INTO channel_outcomes ({OUTCOME_COLUMNS}) "
            f"VALUES ({self._dialect.marks(8)})",
            [
                (o.outcome_id, o.channel, o.payment_id, o.kind, o.at_us, o.received_at_us,
                 o.disposition, o.detail)
                for o in outcomes
            ],
        )


class DispatchReads(DispatchRecordReads):
    """The dispatcher's records as committed, for the CLI, the API and the console."""

    def __init__(self, store: Any, dialect: _Dialect) -> None:
        self._store = store  # any store with query(sql, params) -> rows
        self._dialect = dialect

    def routes(self, payment_id: str) -> list[RouteRecord]:
        return self.routes_of([payment_id]).get(payment_id, [])

    def routes_of(self, payment_ids: Sequence[str]) -> dict[str, list[RouteRecord]]:
        """Every route of these payments, by payment, in attempt order."""
        return _routes_in(self._store.query, self._dialect, payment_ids)

    def outcomes(self, payment_id: str) -> list[OutcomeRecord]:
        rows = self._store.query(
            f"SELECT {OUTCOME_COLUMNS} FROM channel_outcomes WHERE payment_id = "
            f"{self._dialect.mark} ORDER BY received_at_us, at_us, outcome_id",
            (payment_id,),
        )
        return [_outcome_from_row(row) for row in rows]

    def batches(self, *, channel: str | None = None, limit: int = 100,
                before: tuple[int, str] | None = None) -> list[BatchRecord]:
        """Batches newest first (by submission, then id); with `before` = (submitted_at_us,
        id) of the last one seen, the ones after it: a page is an index range."""
        mark = self._dialect.mark
        clauses: list[str] = []
        params: list[Any] = []
        if channel is not None:
            clauses.append(f"channel = {mark}")
            params.append(channel)
        if before is not None:
            clauses.append(f"(submitted_at_us < {mark} OR (submitted_at_us = {mark} AND "
                           f"id < {mark}))")
            params += [before[0], before[0], before[1]]
        where = f"WHERE {' AND '.join(clauses)} " if clauses else ""
        rows = self._store.query(
            f"SELECT {BATCH_COLUMNS} FROM channel_batches {where}"
            f"ORDER BY submitted_at_us DESC, id DESC LIMIT {mark}",
            (*params, limit),
        )
        return [_batch_from_row(row) for row in rows]

    def decisions(
        self, *, payment_id: str | None = None, channel: str | None = None, limit: int = 100,
        before: tuple[str, int] | None = None,
    ) -> list[tuple[RouteRecord, str | None, int | None]]:
        """Routing decisions newest payment first, then newest attempt (the routes table's
        own key, so a page is an index range), each with its payment's asset and amount;
        `before` = (payment_id, attempt) of the last one seen."""
        mark = self._dialect.mark
        clauses: list[str] = []
        params: list[Any] = []
        if payment_id is not None:
            clauses.append(f"r.payment_id = {mark}")
            params.append(payment_id)
        if channel is not None:
            clauses.append(f"r.channel = {mark}")
            params.append(channel)
        if before is not None:
            clauses.append(f"(r.payment_id < {mark} OR (r.payment_id = {mark} AND "
                           f"r.attempt < {mark}))")
            params += [before[0], before[0], before[1]]
        where = f"WHERE {' AND '.join(clauses)} " if clauses else ""
        keys = self._store.query(
            "SELECT r.payment_id, r.attempt, p.asset, p.amount_minor FROM payment_routes r "
            f"LEFT JOIN payments p ON p.id = r.payment_id {where}"
            f"ORDER BY r.payment_id DESC, r.attempt DESC LIMIT {mark}",
            (*params, limit),
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
        mark = self._dialect.mark
        rows = self._store.query(
            "SELECT channel, asset, fee_minor, savings_minor FROM channel_batches "
            f"WHERE status = 'sent' AND submitted_at_us >= {mark}",
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
        rows = self._store.query(
            "SELECT r.channel, r.strategy, count(*) FROM payment_routes r "
            "JOIN payments p ON p.id = r.payment_id WHERE p.kind = 'payout' "
            "GROUP BY r.channel, r.strategy",
            (),
        )
        return {(channel, str(strategy)): int(n) for channel, strategy, n in rows}


    def disposition_counts(self) -> dict[str, int]:
        """Recorded outcomes by disposition (duplicates are counted by ticks, not stored)."""
        rows = self._store.query(
            "SELECT disposition, count(*) FROM channel_outcomes GROUP BY disposition", ()
        )
        return {r[0]: int(r[1]) for r in rows}


def dispatch_records(store: Any) -> tuple[_Dialect, DispatchReads]:
    """The dialect and read side for a ledger store (SQLite or PostgreSQL)."""
    from fundpool.stores.sqlite import SqliteStore

    dialect = SQLITE if isinstance(store, SqliteStore) else POSTGRES
    return dialect, DispatchReads(store, dialect)


class SqlDispatchRecords(DispatchRecords):
    """The dispatcher's port (`payments.ports.DispatchRecords`) on a ledger store: what the
    builders of a dispatcher hand it."""

    def __init__(self, store: Any) -> None:
        self._dialect, self._reads = dispatch_records(store)

    @property
    def reads(self) -> DispatchReads:
        return self._reads

    def writes(self, session: WriteSession) -> DispatchWrites:
        return DispatchWrites(session, self._dialect)
