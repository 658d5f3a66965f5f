"""The alert engine: evaluates the rules in force and keeps the life of each alert.

`AlertEngine.evaluate()` computes every rule for every pool; a condition that has held for its
rule's `for` fires an alert (one per rule and subject while it is active), an acknowledgement
is recorded with the actor who made it (`acknowledge`: kind, id, roles, session or key, request
id, beside the name shown), and a condition that no longer holds (or can no
longer be computed) resolves it. Each step is a row change in the `alerts` table (through the
`AlertStore` port) and an `alert.fired|acknowledged|resolved` event, written in the same ledger
transaction, so the outbox has exactly the steps the table has.

What is kept in memory only: when a condition that has not fired yet was first seen to hold
(the `for` wait). After a restart the wait begins again, so a restart delays a firing by at
most its `for`, and never fires one early.
"""

from __future__ import annotations

import operator
import re
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction

import structlog

from fundpool.core.actor import Actor
from fundpool.core.clock import Clock, IdSource
from fundpool.core.errors import FundpoolError
from fundpool.events.model import AlertChanged, Event
from fundpool.ledger.service import Ledger, LedgerTransaction
from fundpool.monitoring.alerting.figures import FIGURES, figure_values
from fundpool.monitoring.alerting.ports import AlertRecord, AlertStore
from fundpool.monitoring.alerting.reload import AlertRules
from fundpool.monitoring.alerting.rules import SloSpec, ThresholdSpec, subject_matches
from fundpool.monitoring.alerting.slo import (
    SloStatus,
    counts_since,
    latency_totals,
    slo_status,
    success_counts,
)
from fundpool.monitoring.feed import Follower
from fundpool.monitoring.kpis import (
    KPIS,
    KpiContext,
    KpiValue,
    compute_kpis,
    format_duration,
    trimmed_text,
)
from fundpool.monitoring.service import Monitor

log = structlog.get_logger(__name__)

ACTOR_CHARS_MAX = 64
DEFAULT_INTERVAL_S = 15.0  # how often a server evaluates the rules: Prometheus' usual scrape

# What a name shown in an alert's record, its event and the log may hold (a key's name may hold
# any printable character): the others become `-`.
_NAME_UNSAFE = re.compile(r"[^\w .@+-]")


class UnknownAlert(FundpoolError):
    code = "unknown_alert"
    title = "no such alert"


class AlertNotFiring(FundpoolError):
    code = "alert_not_firing"
    title = "only a firing alert can be acknowledged"


class InvalidActor(FundpoolError):
    code = "invalid_actor"
    title = "who acknowledges an alert needs a name (letters, digits, spaces or .@+-_)"


@dataclass(frozen=True, slots=True)
class Observation:
    """One rule on one subject at one instant. `breached` is False when the value is None
    (nothing to measure): no data never fires, and resolves what was firing."""

    pool: str
    rule: str
    subject: str
    severity: str
    value: Fraction | None
    value_text: str | None
    breached: bool
    for_us: int
    summary: str

    def to_dict(self) -> dict[str, object]:
        return {"pool": self.pool, "rule": self.rule, "subject": self.subject,
                "severity": self.severity, "value": self.value_text,
                "breached": self.breached, "for": format_duration(self.for_us),
                "summary": self.summary}


@dataclass(slots=True)
class EvaluationReport:
    at_us: int
    fired: list[AlertRecord] = field(default_factory=list)
    resolved: list[AlertRecord] = field(default_factory=list)
    pending: list[Observation] = field(default_factory=list)  # breached, waiting for `for`
    observations: list[Observation] = field(default_factory=list)
    kpis: dict[str, list[KpiValue]] = field(default_factory=dict)  # per pool
    slos: list[SloStatus] = field(default_factory=list)
    rules_error: str | None = None
    rules_digest: str | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "at_us": self.at_us,
            "fired": [a.to_dict() for a in self.fired],
            "resolved": [a.to_dict() for a in self.resolved],
            "pending": [o.to_dict() for o in self.pending],
            "breached": [o.to_dict() for o in self.observations if o.breached],
            "kpis": {pool: [v.to_dict() for v in values] for pool, values in self.kpis.items()},
            "slos": [s.to_dict() for s in self.slos],
            "rules_error": self.rules_error,
            "rules_digest": self.rules_digest,
        }


_OPS: dict[str, Callable[[Fraction, Fraction], bool]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
    "==": operator.eq, "!=": operator.ne,
}


def _compare(value: Fraction, op: str, threshold: Decimal) -> bool:
    return _OPS[op](value, Fraction(threshold))


_UNITS = {"ratio": "", "days": " days", "seconds": " s", "bps": " bp", "amount": "",
          "count": ""}


class AlertEngine:
    """Evaluates the rules in force on every pool of the monitor's configuration and keeps
    each alert's life in the ledger's database. Thread-safe: one evaluation or
    acknowledgement at a time."""

    def __init__(self, ledger: Ledger, monitor: Monitor, rules: AlertRules, *,
                 table: AlertStore, ids: IdSource | None = None,
                 clock: Clock | None = None,
                 sources: Sequence[Callable[[int], Iterable[Observation]]] = ()) -> None:
        if ids is None:
            from fundpool.runtime import system_ids

            ids = system_ids()
        self.ledger = ledger
        self.monitor = monitor
        self.rules = rules
        self.ids = ids
        self.clock = clock or monitor.clock
        self.table = table
        # Observations other services make at each evaluation (risk control's: the review
        # queue, holds, SLA breaches, sanctions blocks), fired and resolved as the rules' are.
        self.sources = tuple(sources)
        self._pending: dict[tuple[str, str, str], int] = {}  # (pool, rule, subject) -> since
        self._lock = threading.RLock()
        self._follower: Follower | None = None
        self.last_report: EvaluationReport | None = None

    # --- running ---

    def follow(self, *, interval_s: float = DEFAULT_INTERVAL_S) -> AlertEngine:
        """Evaluate every `interval_s` in a background thread (a failed evaluation is logged
        and the next one tries again); `last_report` holds the latest."""
        self._follower = Follower(self.evaluate, interval_s=interval_s,
                                  name="fundpool-alerts").start()
        return self

    def stop(self) -> None:
        if self._follower is not None:
            self._follower.stop()
            self._follower = None

    # --- reads ---

    def active(self, pool: str | None = None) -> list[AlertRecord]:
        self.table.ensure_now(self.ledger)
        return self.table.active(pool)

    def history(self, limit: int = 100, pool: str | None = None) -> list[AlertRecord]:
        self.table.ensure_now(self.ledger)
        return self.table.history(limit, pool)

    def get(self, alert_id: str) -> AlertRecord | None:
        self.table.ensure_now(self.ledger)
        return self.table.get(alert_id)

    def context(self, pool_id: str | None = None, at_us: int | None = None) -> KpiContext:
        """One pool's figures and series now (or at `at_us`), for KPIs and rules."""
        pool = self.monitor.pool(pool_id)
        snapshot = self.monitor.snapshot(pool.id)
        return KpiContext.of(self.monitor.config, pool, snapshot.cells, snapshot.series,
                             at_us=self.clock.now_us() if at_us is None else at_us)

    def kpis(self, pool_id: str | None = None, at_us: int | None = None) -> list[KpiValue]:
        """The enabled KPIs' values now (every KPI's, with defaults, before rules load)."""
        rules = self.rules.current
        return compute_kpis(self.context(pool_id, at_us), None if rules is None else rules.kpis)

    # --- acknowledging ---

    def acknowledge(self, alert_id: str, actor: Actor) -> AlertRecord:
        return acknowledge(self.ledger, self.table, alert_id, actor,
                           at_us=self.clock.now_us())

    # --- evaluating ---

    def evaluate(self, at_us: int | None = None) -> EvaluationReport:
        with self._lock:
            self.rules.check()
            at = self.clock.now_us() if at_us is None else at_us
            rules = self.rules.current
            report = EvaluationReport(at, rules_error=self.rules.last_error,
                                      rules_digest=None if rules is None else rules.digest)
            if rules is None:
                self.last_report = report
                return report
            contexts: dict[str, KpiContext] = {}
            for pool in self.monitor.config.pools:
                contexts[pool.id] = context = self.context(pool.id, at)
                report.kpis[pool.id] = [
                    v for kpi_id, params in rules.kpis.items()
                    for v in KPIS[kpi_id].evaluate(context, params)]
                for spec in rules.thresholds:
                    if spec.pool is None or spec.pool == pool.id:
                        report.observations.extend(self._threshold(pool.id, context, spec))
            for source in self.sources:
                try:
                    report.observations.extend(source(at))
                except Exception:  # one service's failing signals never stop the rules'
                    log.exception("alert source failed", source=repr(source))
            with self.table.transaction(self.ledger) as transaction:
                for pool_id, context in contexts.items():
                    for slo in rules.slos:
                        if slo.pool is None or slo.pool == pool_id:
                            status = self._slo(transaction, pool_id, context, slo, at)
                            report.slos.append(status)
                            report.observations.extend(_burn_observations(slo, status))
                self._apply(transaction, report, at)
            for record in report.fired:
                log.warning("alert fired", alert=record.id, pool=record.pool, rule=record.rule,
                            subject=record.subject, severity=record.severity,
                            value=record.value)
            for record in report.resolved:
                log.info("alert resolved", alert=record.id, pool=record.pool, rule=record.rule,
                         subject=record.subject)
            self.last_report = report
            return report

    def _threshold(self, pool: str, ctx: KpiContext, spec: ThresholdSpec) -> list[Observation]:
        if spec.source == "kpi":
            template = KPIS[spec.name]
            values = template.evaluate(ctx, spec.params)
            title, unit = template.title_en, template.unit
        else:
            lag = self.monitor.lag(pool) if spec.name == "lag_events" else 0
            values = figure_values(spec.name, ctx, spec.params, lag)
            title, unit = spec.name, FIGURES[spec.name].kind
        scales = {a.code: a.scale for a in ctx.assets()}
        out: list[Observation] = []
        for value in values:
            if not subject_matches(spec.subject, value):
                continue
            places = scales.get(value.asset or "", 6) if unit == "amount" else 6
            text = trimmed_text(value.value, max(places, 6))
            breached = value.value is not None and _compare(value.value, spec.op,
                                                            spec.threshold)
            if spec.summary is not None:
                summary = (spec.summary.replace("{value}", text or "n/a")
                           .replace("{threshold}", str(spec.threshold))
                           .replace("{subject}", value.subject).replace("{rule}", spec.id))
            elif value.value is None:
                summary = f"{title} ({value.subject}): no data ({value.note or 'no value'})"
            else:
                shown = f"{text}{_UNITS.get(unit, '')}"
                summary = (f"{title} ({value.subject}) is {shown}, "
                           f"{'' if breached else 'not '}{spec.op} {spec.threshold}")
            out.append(Observation(pool, spec.id, value.subject, spec.severity, value.value,
                                   text, breached, spec.for_us, summary))
        return out

    def _slo(self, transaction: LedgerTransaction, pool: str, ctx: KpiContext,
             slo: SloSpec, at: int) -> SloStatus:
        if slo.sli == "success":
            return slo_status(pool, slo, success_counts(ctx.index, slo, at))
        # The latency histogram is cumulative: a window's counts are now minus a kept sample.
        good_now, total_now = latency_totals(ctx.figures.latency, slo)
        self.table.sample(transaction, pool, slo.id, at, good_now, total_now,
                          slo.longest_us())

        def counts(window_us: int) -> tuple[int, int]:
            base = self.table.sample_at(transaction, pool, slo.id, at - window_us)
            return counts_since((good_now, total_now),
                                None if base is None else (base[1], base[2]))

        return slo_status(pool, slo, counts)

    def _apply(self, transaction: LedgerTransaction, report: EvaluationReport,
               at: int) -> None:
        """Fire what has held long enough, resolve what no longer holds; one event each."""
        evaluated = {pool.id for pool in self.monitor.config.pools}
        active = {(a.pool, a.rule, a.subject): a for a in self.table.active_in(transaction)}
        seen: set[tuple[str, str, str]] = set()
        events: list[Event] = []
        for observation in report.observations:
            key = (observation.pool, observation.rule, observation.subject)
            seen.add(key)
            if not observation.breached:
                self._pending.pop(key, None)
                current = active.get(key)
                if current is not None:
                    resolved = _resolved(current, at)
                    self.table.update(transaction, resolved)
                    events.append(_event(resolved, transaction.at_us, observation.summary,
                                         observation.value_text))
                    report.resolved.append(resolved)
                continue
            if key in active:
                continue
            since = self._pending.setdefault(key, at)
            if at - since < observation.for_us:
                report.pending.append(observation)
                continue
            self._pending.pop(key, None)
            record = AlertRecord(self.ids.new_id(at), observation.pool, observation.rule,
                                 observation.subject, observation.severity, "firing",
                                 observation.value_text, observation.summary, at)
            self.table.insert(transaction, record)
            events.append(_event(record, transaction.at_us, record.summary, record.value))
            report.fired.append(record)
        # Active alerts nothing observed this time (rule removed, subject gone) resolve too.
        for key, current in active.items():
            if key in seen or current.pool not in evaluated:
                continue
            resolved = _resolved(current, at)
            self.table.update(transaction, resolved)
            events.append(_event(resolved, transaction.at_us,
                                 f"{current.rule} ({current.subject}): no longer evaluated "
                                 "(rule removed or subject gone)", None))
            report.resolved.append(resolved)
        for key in [k for k in self._pending if k not in seen]:
            del self._pending[key]
        transaction.emit(events)


def _burn_observations(slo: SloSpec, status: SloStatus) -> list[Observation]:
    out: list[Observation] = []
    for spec, burn in zip(slo.burn_rates, status.burn_rates, strict=True):
        long_text, short_text = trimmed_text(burn.long, 4), trimmed_text(burn.short, 4)
        objective = f"{trimmed_text(slo.objective)} over {format_duration(slo.window_us)}"
        summary = (
            f"SLO {slo.title} ({objective}): "
            f"error budget burning {long_text or 'n/a'}× over {format_duration(spec.long_us)} "
            f"and {short_text or 'n/a'}× over {format_duration(spec.short_us)} "
            f"({'at or above' if burn.breached else 'below'} {spec.factor}×)")
        out.append(Observation(status.pool, spec.rule_id(slo.id), slo.subject, spec.severity,
                               burn.long, long_text, burn.breached, 0, summary))
    return out


def _resolved(record: AlertRecord, at: int) -> AlertRecord:
    return AlertRecord(record.id, record.pool, record.rule, record.subject, record.severity,
                       "resolved", record.value, record.summary, record.fired_at_us,
                       record.acknowledged_at_us, record.acknowledged_by,
                       max(at, record.fired_at_us), record.acknowledged_actor)


def _step(record: AlertRecord) -> int:
    """The number of this step in the alert's life: fired 1, acknowledged 2, resolved 2 or
    3 (after an acknowledgement); the event id is `<alert id>:<step>`."""
    if record.state == "firing":
        return 1
    if record.state == "acknowledged":
        return 2
    return 3 if record.acknowledged_at_us is not None else 2


def _event(record: AlertRecord, at_us: int, summary: str, value: str | None) -> Event:
    kind = {"firing": "alert.fired", "acknowledged": "alert.acknowledged",
            "resolved": "alert.resolved"}[record.state]
    data = AlertChanged(record.id, record.rule, record.severity, record.subject, summary,
                        value, record.acknowledged_by if kind == "alert.acknowledged" else None)
    return Event(f"{record.id}:{_step(record)}", kind, record.pool, at_us, data)


def shown_name(actor: Actor) -> str:
    """The name an acknowledgement shows (`acknowledged_by`, the event, the log): the actor's,
    its characters other than letters, digits, spaces and .@+-_ made `-`, at most 64."""
    return _NAME_UNSAFE.sub("-", actor.name).strip()[:ACTOR_CHARS_MAX].strip()


def acknowledge(ledger: Ledger, table: AlertStore, alert_id: str, actor: Actor, *,
                at_us: int) -> AlertRecord:
    """Acknowledge a firing alert for `actor`: the row (with the actor and the name it shows)
    and its `alert.acknowledged` event in one ledger transaction. `unknown_alert`,
    `alert_not_firing`, `invalid_actor` (no name) otherwise."""
    name = shown_name(actor)
    if not name:
        raise InvalidActor(actor=actor.name[:ACTOR_CHARS_MAX])
    with table.transaction(ledger) as transaction:
        current = table.get_in(transaction, alert_id)
        if current is None:
            raise UnknownAlert(alert_id=alert_id)
        if current.state != "firing":
            raise AlertNotFiring(alert_id=alert_id, state=current.state,
                                 acknowledged_by=current.acknowledged_by)
        record = AlertRecord(current.id, current.pool, current.rule, current.subject,
                             current.severity, "acknowledged", current.value, current.summary,
                             current.fired_at_us, max(at_us, current.fired_at_us), name,
                             acknowledged_actor=actor)
        table.update(transaction, record)
        transaction.emit([_event(record, transaction.at_us,
                                 f"acknowledged by {name}: {current.summary}",
                                 current.value)])
    log.info("alert acknowledged", alert=alert_id, by=name, actor=actor.who,
             request_id=actor.request_id)
    return record

