"""The `alerts` table and the latency SLOs' samples (`alert_sli_samples`), in the ledger's
database on SQLite or PostgreSQL: `SqlAlertStore` implements the alert engine's port
(`fundpool.monitoring.alerting.ports.AlertStore`).

The tables are created on first use through a ledger transaction, read through the store, and
written inside ledger transactions beside the events that report each change.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from fundpool.ledger.ports import LedgerStore
from fundpool.ledger.service import Ledger, LedgerTransaction
from fundpool.monitoring.alerting.ports import (
    HISTORY_LIMIT_MAX,
    SAMPLE_SLACK_US,
    SAMPLE_SPACING_US,
    AlertRecord,
)

_ALERT_TABLE = """
CREATE TABLE IF NOT EXISTS alerts (
    id TEXT {collate} PRIMARY KEY,
    pool TEXT {collate} NOT NULL,
    rule TEXT {collate} NOT NULL,
    subject TEXT {collate} NOT NULL,
    severity TEXT NOT NULL,
    state TEXT NOT NULL,
    value TEXT,
    summary TEXT NOT NULL,
    fired_at_us {bigint} NOT NULL,
    acknowledged_at_us {bigint},
    acknowledged_by TEXT,
    resolved_at_us {bigint}
){strict}"""
_ALERT_INDEXES = (
    # At most one active alert per pool, rule and subject, even with two engines at once.
    "CREATE UNIQUE INDEX IF NOT EXISTS alerts_active ON alerts (pool, rule, subject) "
    "WHERE state <> 'resolved'",
    "CREATE INDEX IF NOT EXISTS alerts_by_time ON alerts (fired_at_us)",
)
_SAMPLE_TABLE = """
CREATE TABLE IF NOT EXISTS alert_sli_samples (
    pool TEXT {collate} NOT NULL,
    slo TEXT {collate} NOT NULL,
    at_us {bigint} NOT NULL,
    good {bigint} NOT NULL,
    total {bigint} NOT NULL,
    PRIMARY KEY (pool, slo, at_us)
){strict}"""

SQLITE_ALERTS_SCHEMA: tuple[str, ...] = (
    _ALERT_TABLE.format(collate="", bigint="INTEGER", strict=" STRICT"),
    *_ALERT_INDEXES,
    _SAMPLE_TABLE.format(collate="", bigint="INTEGER", strict=" STRICT, WITHOUT ROWID"),
)
POSTGRES_ALERTS_SCHEMA: tuple[str, ...] = (
    _ALERT_TABLE.format(collate='COLLATE "C"', bigint="BIGINT", strict=""),
    *_ALERT_INDEXES,
    _SAMPLE_TABLE.format(collate='COLLATE "C"', bigint="BIGINT", strict=""),
)
ALERT_COLUMNS = ("id, pool, rule, subject, severity, state, value, summary, fired_at_us, "
                 "acknowledged_at_us, acknowledged_by, resolved_at_us")


def _record(row: Sequence[Any]) -> AlertRecord:
    (alert_id, pool, rule, subject, severity, state, value, summary, fired, acked, by,
     resolved) = row
    return AlertRecord(alert_id, pool, rule, subject, severity, state, value, summary,
                       int(fired), None if acked is None else int(acked), by,
                       None if resolved is None else int(resolved))


def _mark_of(store: LedgerStore) -> str:
    from fundpool.stores.sqlite import SqliteStore

    return "?" if isinstance(store, SqliteStore) else "%s"


class SqlAlertStore:
    """The `alerts` table (and the latency SLOs' samples) in the ledger's database: created on
    first use through a ledger transaction, read through the store, written inside ledger
    transactions beside the events that report each change."""

    def __init__(self, store: LedgerStore) -> None:
        self.store = store
        self.mark = _mark_of(store)
        # Both stores answer `query(sql, params)` on their read connection.
        self._query: Callable[[str, Sequence[Any]], list[Any]] = getattr(store, "query")  # noqa: B009
        self._ready = False

    def ensure(self, transaction: LedgerTransaction) -> None:
        """Create the tables if they are not there (once per AlertStore; see `transaction`)."""
        if self._ready:
            return
        connection = _connection(transaction)
        for statement in (SQLITE_ALERTS_SCHEMA if self.mark == "?" else POSTGRES_ALERTS_SCHEMA):
            connection.execute(statement)
        self._ready = True

    @contextmanager
    def transaction(self, ledger: Ledger) -> Iterator[LedgerTransaction]:
        """A ledger transaction with the tables created in it first; if it rolls back, they
        are created again next time."""
        was_ready = self._ready
        try:
            with ledger.transaction() as transaction:
                self.ensure(transaction)
                yield transaction
        except BaseException:
            self._ready = was_ready
            raise

    def ensure_now(self, ledger: Ledger) -> None:
        if not self._ready:
            with self.transaction(ledger):
                pass

    # --- reads (committed state) ---

    def active(self, pool: str | None = None) -> list[AlertRecord]:
        return self.records(state="active", pool=pool)

    def history(self, limit: int = 100, pool: str | None = None) -> list[AlertRecord]:
        return self.records(pool=pool, limit=max(1, min(limit, HISTORY_LIMIT_MAX)))

    def records(
        self, *, state: str | None = None, severity: str | None = None,
        pool: str | None = None, limit: int | None = None,
        before: tuple[int, str] | None = None,
    ) -> list[AlertRecord]:
        """Alerts newest first (by when they fired, then id). `state` "active" is firing or
        acknowledged; `before` = (fired_at_us, id) of the last one seen, for the next page."""
        m = self.mark
        where: list[str] = []
        params: list[Any] = []
        if state == "active":
            where.append("state <> 'resolved'")
        elif state is not None:
            where.append(f"state = {m}")
            params.append(state)
        if severity is not None:
            where.append(f"severity = {m}")
            params.append(severity)
        if pool is not None:
            where.append(f"pool = {m}")
            params.append(pool)
        if before is not None:
            where.append(f"(fired_at_us < {m} OR (fired_at_us = {m} AND id < {m}))")
            params += [before[0], before[0], before[1]]
        clause = f"WHERE {' AND '.join(where)} " if where else ""
        bound = ""
        if limit is not None:
            bound = f" LIMIT {m}"
            params.append(limit)
        rows = self._query(f"SELECT {ALERT_COLUMNS} FROM alerts {clause}"
                           f"ORDER BY fired_at_us DESC, id DESC{bound}", tuple(params))
        return [_record(r) for r in rows]

    def get(self, alert_id: str) -> AlertRecord | None:
        rows = self._query(
            f"SELECT {ALERT_COLUMNS} FROM alerts WHERE id = {self.mark}", (alert_id,))
        return _record(rows[0]) if rows else None

    # --- inside a ledger transaction ---

    def active_in(self, transaction: LedgerTransaction) -> list[AlertRecord]:
        rows = _connection(transaction).execute(
            f"SELECT {ALERT_COLUMNS} FROM alerts WHERE state <> 'resolved'").fetchall()
        return [_record(r) for r in rows]

    def get_in(self, transaction: LedgerTransaction, alert_id: str) -> AlertRecord | None:
        rows = _connection(transaction).execute(
            f"SELECT {ALERT_COLUMNS} FROM alerts WHERE id = {self.mark}", (alert_id,)
        ).fetchall()
        return _record(rows[0]) if rows else None

    def insert(self, transaction: LedgerTransaction, record: AlertRecord) -> None:
        marks = ", ".join([self.mark] * 12)
        _connection(transaction).execute(
            f"INSERT INTO alerts ({ALERT_COLUMNS}) VALUES ({marks})",
            tuple(getattr(record, column) for column in ALERT_COLUMNS.split(", ")))

    def update(self, transaction: LedgerTransaction, record: AlertRecord) -> None:
        m = self.mark
        _connection(transaction).execute(
            f"UPDATE alerts SET state = {m}, acknowledged_at_us = {m}, acknowledged_by = {m}, "
            f"resolved_at_us = {m} WHERE id = {m}",
            (record.state, record.acknowledged_at_us, record.acknowledged_by,
             record.resolved_at_us, record.id))

    def sample(self, transaction: LedgerTransaction, pool: str, slo: str, at_us: int,
               good: int, total: int, keep_us: int) -> None:
        """Record the cumulative (good, total) of a latency SLO, at most once a minute, and
        drop samples no window reaches any more."""
        m = self.mark
        connection = _connection(transaction)
        row = connection.execute(
            f"SELECT max(at_us) FROM alert_sli_samples WHERE pool = {m} AND slo = {m}",
            (pool, slo)).fetchone()
        last = None if row is None or row[0] is None else int(row[0])
        if last is None or at_us - last >= SAMPLE_SPACING_US:
            connection.execute(
                f"INSERT INTO alert_sli_samples (pool, slo, at_us, good, total) "
                f"VALUES ({m}, {m}, {m}, {m}, {m})", (pool, slo, at_us, good, total))
        connection.execute(
            f"DELETE FROM alert_sli_samples WHERE pool = {m} AND slo = {m} AND at_us < {m}",
            (pool, slo, at_us - keep_us - SAMPLE_SLACK_US))

    def sample_at(self, transaction: LedgerTransaction, pool: str, slo: str,
                  at_us: int) -> tuple[int, int, int] | None:
        """(at, good, total) of the last sample at or before `at_us`, else the first one
        (a window longer than the samples kept so far); None without samples."""
        m = self.mark
        connection = _connection(transaction)
        row = connection.execute(
            f"SELECT at_us, good, total FROM alert_sli_samples WHERE pool = {m} AND slo = {m} "
            f"AND at_us <= {m} ORDER BY at_us DESC LIMIT 1", (pool, slo, at_us)).fetchone()
        if row is None:
            row = connection.execute(
                f"SELECT at_us, good, total FROM alert_sli_samples WHERE pool = {m} "
                f"AND slo = {m} ORDER BY at_us LIMIT 1", (pool, slo)).fetchone()
        return None if row is None else (int(row[0]), int(row[1]), int(row[2]))


def _connection(transaction: LedgerTransaction) -> Any:
    return getattr(transaction.session, "connection")  # noqa: B009 - both stores have it

