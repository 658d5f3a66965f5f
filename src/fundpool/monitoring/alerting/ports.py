"""What the alert engine keeps, and the port it keeps it through.

`AlertRecord` is one alert's row: what fired, and its life (fired, acknowledged, resolved), with
who acknowledged it (the actor; an alert acknowledged before actors were kept has only the
name).
`AlertStore` is what the engine needs of the place alerts live: the `alerts` table and the
latency SLOs' samples, in the ledger's database, written inside ledger transactions beside the
events that report each change. `SqlAlertStore` (`stores/alerts_sql.py`) implements it on
SQLite and PostgreSQL.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass, fields
from typing import Protocol

from fundpool.core.actor import Actor
from fundpool.ledger.service import Ledger, LedgerTransaction
from fundpool.monitoring.kpis import DAY_US, MINUTE_US

HISTORY_LIMIT_MAX = 1_000
# A latency SLO reads the cumulative histogram at each evaluation and keeps one sample a
# minute at most, for as long as its longest window (docs/monitoring-alerts.md).
SAMPLE_SPACING_US = MINUTE_US
SAMPLE_SLACK_US = DAY_US
STATES = ("firing", "acknowledged", "resolved")
ACTIVE_STATES = ("firing", "acknowledged")


@dataclass(frozen=True, slots=True)
class AlertRecord:
    id: str
    pool: str
    rule: str
    subject: str
    severity: str
    state: str  # firing | acknowledged | resolved
    value: str | None  # the figure when it fired, as decimal text
    summary: str
    fired_at_us: int
    acknowledged_at_us: int | None = None
    acknowledged_by: str | None = None  # the name shown (the actor's, made safe for text)
    resolved_at_us: int | None = None
    # Who acknowledged it: kind, id, roles, session or key, request id. None before actors
    # were kept (then only `acknowledged_by` names them) and for an alert not acknowledged.
    acknowledged_actor: Actor | None = None

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES

    def to_dict(self) -> dict[str, object]:
        doc = {f.name: getattr(self, f.name) for f in fields(self)}
        if self.acknowledged_actor is not None:
            doc["acknowledged_actor"] = self.acknowledged_actor.to_dict()
        return doc


class AlertStore(Protocol):
    """The alerts and the latency SLOs' samples. Reads without a transaction see committed
    state; the `…_in` reads and every write take the ledger transaction they belong to."""

    def transaction(self, ledger: Ledger) -> AbstractContextManager[LedgerTransaction]:
        """A ledger transaction in which the alert tables exist."""
        ...

    def ensure_now(self, ledger: Ledger) -> None:
        """Make sure the alert tables exist (through a ledger transaction if they may not)."""
        ...

    # --- reads (committed state) ---

    def active(self, pool: str | None = None) -> list[AlertRecord]:
        """Firing or acknowledged alerts, newest first."""
        ...

    def history(self, limit: int = 100, pool: str | None = None) -> list[AlertRecord]:
        """Alerts newest first, at most `limit` (bounded by `HISTORY_LIMIT_MAX`)."""
        ...

    def records(
        self, *, state: str | None = None, severity: str | None = None,
        pool: str | None = None, limit: int | None = None,
        before: tuple[int, str] | None = None,
    ) -> list[AlertRecord]:
        """Alerts newest first (by when they fired, then id); `state` "active" is firing or
        acknowledged; `before` = (fired_at_us, id) of the last one seen, for the next page."""
        ...

    def get(self, alert_id: str) -> AlertRecord | None: ...

    # --- inside a ledger transaction ---

    def active_in(self, transaction: LedgerTransaction) -> list[AlertRecord]: ...

    def get_in(self, transaction: LedgerTransaction, alert_id: str) -> AlertRecord | None: ...

    def insert(self, transaction: LedgerTransaction, record: AlertRecord) -> None: ...

    def update(self, transaction: LedgerTransaction, record: AlertRecord) -> None:
        """Write a record's state and life (acknowledgement, resolution)."""
        ...

    def sample(self, transaction: LedgerTransaction, pool: str, slo: str, at_us: int,
               good: int, total: int, keep_us: int) -> None:
        """Keep a latency SLO's cumulative (good, total) at `at_us`, unless the last sample is
        younger than `SAMPLE_SPACING_US`; drop those older than `keep_us` +
        `SAMPLE_SLACK_US`."""
        ...

    def sample_at(self, transaction: LedgerTransaction, pool: str, slo: str,
                  at_us: int) -> tuple[int, int, int] | None:
        """(at, good, total) of the last sample at or before `at_us`, else the first one;
        None without samples."""
        ...
