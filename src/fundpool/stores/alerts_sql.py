"""The `alerts` table and the latency SLOs' samples (`alert_sli_samples`), in the ledger's
database on SQLite or PostgreSQL: `SqlAlertStore` implements the alert engine's port
(`fundpool.monitoring.alerting.ports.AlertStore`).

The tables are the alerts component's migrations, created on first use; they are read through
the store and written inside ledger transactions beside the events that report each change.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
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
from fundpool.sql import migrate
from fundpool.sql.database import Database, Transaction, database_of
from fundpool.sql.query import Where
from fundpool.sql.query import limit as limit_clause
from fundpool.stores.actor_json import actor_from_text, actor_text

ALERT_COLUMNS = ("id, pool, rule, subject, severity, state, value, summary, fired_at_us, "
                 "acknowledged_at_us, acknowledged_by, resolved_at_us, acknowledged_actor")
_ALERT_COLUMN_COUNT = len(ALERT_COLUMNS.split(", "))


def _record(row: Sequence[Any]) -> AlertRecord:
    (alert_id, pool, rule, subject, severity, state, value, summary, fired, acked, by,
     resolved, actor) = row
    return AlertRecord(alert_id, pool, rule, subject, severity, state, value, summary,
                       int(fired), None if acked is None else int(acked), by,
                       None if resolved is None else int(resolved), actor_from_text(actor))


def _row(record: AlertRecord) -> tuple[Any, ...]:
    return (record.id, record.pool, record.rule, record.subject, record.severity,
            record.state, record.value, record.summary, record.fired_at_us,
            record.acknowledged_at_us, record.acknowledged_by, record.resolved_at_us,
            actor_text(record.acknowledged_actor))


class SqlAlertStore:
    """The `alerts` table (and the latency SLOs' samples) in the ledger's database, at the
    alerts component's version (fundpool.sql.migrate.ALERTS): created on first use, read
    through the store, written inside ledger transactions beside the events that report each
    change."""

    def __init__(self, store: LedgerStore) -> None:
        self.store = store
        self.db: Database = database_of(store)
        self._ready = False

    def ensure_now(self, ledger: Ledger | None = None) -> None:
        """Create the tables if the database has none yet, or check their version."""
        if not self._ready:
            migrate.ensure(self.db, migrate.ALERTS)
            self._ready = True

    @contextmanager
    def transaction(self, ledger: Ledger) -> Iterator[LedgerTransaction]:
        """A ledger transaction, the tables made sure of first."""
        self.ensure_now()
        with ledger.transaction() as transaction:
            yield transaction

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
        where = Where()
        if state == "active":
            where.add("state <> 'resolved'")
        else:
            where.eq("state", state)
        where.eq("severity", severity).eq("pool", pool)
        if before is not None:
            where.add("(fired_at_us < ? OR (fired_at_us = ? AND id < ?))",
                      before[0], before[0], before[1])
        rows = self.db.rows(f"SELECT {ALERT_COLUMNS} FROM alerts{where} "
                            f"ORDER BY fired_at_us DESC, id DESC{limit_clause(limit)}",
                            where.params)
        return [_record(r) for r in rows]

    def get(self, alert_id: str) -> AlertRecord | None:
        rows = self.db.rows(f"SELECT {ALERT_COLUMNS} FROM alerts WHERE id = ?", (alert_id,))
        return _record(rows[0]) if rows else None

    # --- inside a ledger transaction ---

    def active_in(self, transaction: LedgerTransaction) -> list[AlertRecord]:
        rows = _tx(transaction).rows(
            f"SELECT {ALERT_COLUMNS} FROM alerts WHERE state <> 'resolved'")
        return [_record(r) for r in rows]

    def get_in(self, transaction: LedgerTransaction, alert_id: str) -> AlertRecord | None:
        rows = _tx(transaction).rows(f"SELECT {ALERT_COLUMNS} FROM alerts WHERE id = ?",
                                     (alert_id,))
        return _record(rows[0]) if rows else None

    def insert(self, transaction: LedgerTransaction, record: AlertRecord) -> None:
        _tx(transaction).execute(
            f"INSERT INTO alerts ({ALERT_COLUMNS}) "
            f"VALUES ({', '.join('?' * _ALERT_COLUMN_COUNT)})", _row(record))

    def update(self, transaction: LedgerTransaction, record: AlertRecord) -> None:
        _tx(transaction).execute(
            "UPDATE alerts SET state = ?, acknowledged_at_us = ?, acknowledged_by = ?, "
            "acknowledged_actor = ?, resolved_at_us = ? WHERE id = ?",
            (record.state, record.acknowledged_at_us, record.acknowledged_by,
             actor_text(record.acknowledged_actor), record.resolved_at_us, record.id))

    def sample(self, transaction: LedgerTransaction, pool: str, slo: str, at_us: int,
               good: int, total: int, keep_us: int) -> None:
        """Record the cumulative (good, total) of a latency SLO, at most once a minute, and
        drop samples no window reaches any more."""
        tx = _tx(transaction)
        row = tx.one("SELECT max(at_us) FROM alert_sli_samples WHERE pool = ? AND slo = ?",
                     (pool, slo))
        last = None if row is None or row[0] is None else int(row[0])
        if last is None or at_us - last >= SAMPLE_SPACING_US:
            tx.execute("INSERT INTO alert_sli_samples (pool, slo, at_us, good, total) "
                       "VALUES (?, ?, ?, ?, ?)", (pool, slo, at_us, good, total))
        tx.execute(
            "DELETE FROM alert_sli_samples WHERE pool = ? AND slo = ? AND at_us < ?",
            (pool, slo, at_us - keep_us - SAMPLE_SLACK_US))

    def sample_at(self, transaction: LedgerTransaction, pool: str, slo: str,
                  at_us: int) -> tuple[int, int, int] | None:
        """(at, good, total) of the last sample at or before `at_us`, else the first one
        (a window longer than the samples kept so far); None without samples."""
        tx = _tx(transaction)
        row = tx.one(
            "SELECT at_us, good, total FROM alert_sli_samples WHERE pool = ? AND slo = ? "
            "AND at_us <= ? ORDER BY at_us DESC LIMIT 1", (pool, slo, at_us))
        if row is None:
            row = tx.one("SELECT at_us, good, total FROM alert_sli_samples WHERE pool = ? "
                         "AND slo = ? ORDER BY at_us LIMIT 1", (pool, slo))
        return None if row is None else (int(row[0]), int(row[1]), int(row[2]))


def _tx(transaction: LedgerTransaction) -> Transaction:
    tx: Transaction = getattr(transaction.session, "tx")  # noqa: B009 - every SQL store's has it
    return tx

