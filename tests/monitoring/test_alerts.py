"""Alert rules and SLOs from YAML, and the alert life (src/fundpool/monitoring/alerting/,
src/fundpool/stores/alerts_sql.py).

- the rules file: the shipped example validates; bad YAML, an unknown KPI, a bad severity, a
  negative window … each give a clear error naming the rule at fault;
- hot reload: a changed file is taken, a broken one leaves the rules in force and says why;
- the alert life on SQLite and PostgreSQL: fired → acknowledged → resolved, one row change and
  one outbox event (`<alert id>:<step>`) per step, in the same transaction; no second firing
  while one is active; `for:` respected; a removed rule resolves its alerts;
- SLOs: multi-window, multi-burn-rate alerts fire on a synthetic failure spike with the exact
  burn rates, not on a healthy series, and the short window resolves them when it ends;
- the `fundpool alerts` commands.
"""

from __future__ import annotations

import ast
import itertools
import json
import time
from collections.abc import Callable, Iterable
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs
from typer.testing import CliRunner

from fundpool import compose
from fundpool.cli.main import app
from fundpool.core.actor import Actor
from fundpool.core.clock import ManualClock, Uuid7Ids
from fundpool.core.ledger.model import Posting
from fundpool.events.model import AlertChanged, Event, PaymentTransitioned
from fundpool.ledger.ports import LedgerStore
from fundpool.ledger.service import Ledger
from fundpool.monitoring.alerting.engine import (
    AlertEngine,
    AlertNotFiring,
    InvalidActor,
    UnknownAlert,
)
from fundpool.monitoring.alerting.reload import AlertRules
from fundpool.monitoring.alerting.rules import InvalidAlertRules, load_rules, load_rules_file
from fundpool.monitoring.alerting.slo import burn_rate, counts_since
from fundpool.monitoring.kpis import HOUR_US, KPIS, MINUTE_US
from fundpool.pool.config import load_config
from fundpool.pool.setup import init_pool
from fundpool.stores.alerts_sql import SqlAlertStore
from fundpool.stores.sqlite import SqliteStore

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_POOL = ROOT / "examples" / "pool.toml"
EXAMPLE_RULES = ROOT / "examples" / "alerts.yaml"
CONFIG = load_config(EXAMPLE_POOL)
SECOND = 1_000_000
T0 = 1_767_225_600_000_000  # ManualClock's start, on every bucket boundary
BANK_A = "pool:main:usd:bank-a:available"
WAIT_S = 30  # the bound on waiting for a background thread, however busy the machine
ALICE = Actor("user", "a11ce", "alice", ("risk",), session_id="s-1", request_id="req-7")
BOB = Actor("key", "b0b", "bob", ("admin",), key_id="b0b")

DEPTH_RULE = """
rules:
  - id: bank-a-usd-low
    figure: depth
    subject: "asset:USD,channel:bank-a"
    op: "<"
    value: "1000.00"
    severity: critical
    {extra}
"""


# --- the rules file -------------------------------------------------------------------------------


def test_the_example_file_validates_with_every_kpi_and_its_default_alert() -> None:
    rules = load_rules_file(EXAMPLE_RULES)
    assert set(rules.kpis) == set(KPIS)
    defaults = {t.id for t in rules.thresholds if t.default_alert}
    assert defaults == set(KPIS)
    assert 2 <= len(rules.slos) <= 3
    assert {s.sli for s in rules.slos} == {"success", "latency"}
    assert all(len(s.burn_rates) == 3 for s in rules.slos)
    assert {t.source for t in rules.thresholds} == {"kpi", "figure"}


@pytest.mark.parametrize(("text", "messages"), [
    ("kpis: [a\n", ["not valid YAML at line 2"]),
    ("- a\n- b\n", ["is a mapping", "got list"]),
    ("version: 2\n", ["version: Input should be 1"]),
    ("kpis:\n  liquidity_coverag: {}\n", ["unknown KPI 'liquidity_coverag'",
                                          "did you mean liquidity_coverage"]),
    ("kpis:\n  turnover_days: {params: {window: -1h}}\n",
     ["turnover_days.params: a duration is never negative"]),
    ("rules:\n  - {id: r1, kpi: nope, op: '>', value: 1, severity: info}\n",
     ["rules[0] 'r1': unknown KPI 'nope'"]),
    ("rules:\n  - {id: r1, kpi: available_ratio, op: '<', value: 1, severity: urgent}\n",
     ["rules[0] 'r1'.severity", "'info', 'warning' or 'critical'", "(got 'urgent')"]),
    ("rules:\n  - {id: r1, kpi: available_ratio, op: '<', value: 1, severity: info,"
     " for: -5m}\n", ["rules[0] 'r1'.for: a duration is never negative"]),
    ("rules:\n  - {id: r1, kpi: available_ratio, op: '=<', value: 1, severity: info}\n",
     ["rules[0] 'r1'.op"]),
    ("rules:\n  - {id: r1, kpi: available_ratio, op: '<', value: nan, severity: info}\n",
     ["rules[0] 'r1'.value"]),
    ("rules:\n  - {id: r1, kpi: available_ratio, op: '<', value: 1, severty: info}\n",
     ["rules[0] 'r1'.severty: Extra inputs are not permitted", "rules[0] 'r1'.severity"]),
    ("rules:\n  - {id: r1, kpi: available_ratio, figure: depth, op: '<', value: 1,"
     " severity: info}\n", ["exactly one of 'kpi' or 'figure'"]),
    ("rules:\n  - {id: r1, figure: depth, op: '<', value: 1, severity: info}\n",
     ["rules[0] 'r1': figure depth is an amount: its subject must name the asset"]),
    ("rules:\n  - {id: r1, figure: available_ratio, subject: 'account:x', op: '<',"
     " value: 1, severity: info}\n", ["subject 'account:x' is not one of"]),
    ("rules:\n  - {id: r1, kpi: failed_payment_rate, params: {kind: refund}, op: '>',"
     " value: 1, severity: info}\n", ["kind is one of"]),
    ("rules:\n  - {id: Bad Id, figure: failed_count, op: '>', value: 1, severity: info}\n",
     ["rules[0] 'Bad Id'.id"]),
    ("kpis:\n  available_ratio: {}\nrules:\n  - {id: available_ratio, kpi: available_ratio,"
     " op: '<', value: 1, severity: info}\n", ["id 'available_ratio' is used twice"]),
    ("kpis:\n  available_ratio: {enabled: false}\nrules:\n  - {id: r1, kpi: available_ratio,"
     " op: '<', value: 1, severity: info}\n", ["rules[0] 'r1': KPI available_ratio is "
                                               "switched off"]),
    ("slos:\n  - {id: s1, sli: {type: success}, objective: 0.99, window: -3d}\n",
     ["slos[0] 's1'.window: a duration is never negative (got '-3d')"]),
    ("slos:\n  - {id: s1, sli: {type: success}, objective: 1, window: 30d}\n",
     ["slos[0] 's1'.objective: Input should be less than 1"]),
    ("slos:\n  - {id: s1, sli: {type: success, kind: refund}, objective: 0.9}\n",
     ["slos[0] 's1'.sli", "kind is one of"]),
    ("slos:\n  - {id: s1, sli: {type: success, bad: [settled]}, objective: 0.9}\n",
     ["good or bad, not both"]),
    ("slos:\n  - {id: s1, sli: {type: latency, threshold: 45m}, objective: 0.9}\n",
     ["slos[0] 's1'.sli.threshold", "bucket bound", "nearest are 10m, 30m, 1h"]),
    ("slos:\n  - {id: s1, sli: {type: weird}, objective: 0.9}\n", ["slos[0] 's1'.sli"]),
    ("slos:\n  - {id: s1, sli: {type: success}, objective: 0.9, window: 1d}\n",
     ["slos[0] 's1': burn-rate window 3d is longer than the SLO window 1d"]),
    ("slos:\n  - {id: s1, sli: {type: success}, objective: 0.9, burn_rates: "
     "[{long: 5m, short: 1h, factor: 2, severity: info}]}\n",
     ["slos[0] 's1'.burn_rates[0]: the short window (1h) must be shorter than the long one"]),
    ("burn_rates:\n  - {long: 1h, short: 5m, factor: 0, severity: info}\n",
     ["burn_rates[0].factor: Input should be greater than 0"]),
])
def test_bad_files_say_what_is_wrong_and_where(text: str, messages: list[str]) -> None:
    with pytest.raises(InvalidAlertRules) as caught:
        load_rules(text, source="rules.yaml")
    detail = caught.value.detail
    assert detail.startswith("rules.yaml: ")
    for message in messages:
        assert message in detail, detail
    assert caught.value.code == "invalid_alert_rules"


def test_an_empty_file_is_no_rules_and_defaults_apply() -> None:
    rules = load_rules("")
    assert rules.thresholds == ()
    assert rules.slos == ()
    assert rules.kpis == {}
    one = load_rules("slos:\n  - {id: s, sli: {type: success}, objective: 0.999}\n")
    assert [b.rule_id("s") for b in one.slos[0].burn_rates] == [
        "s/burn-1h-5m", "s/burn-6h-30m", "s/burn-3d-6h"]
    assert one.slos[0].error_budget == Fraction(1, 1000)


def test_kpi_default_alerts_can_be_changed_or_switched_off() -> None:
    rules = load_rules(
        "kpis:\n"
        "  failed_payment_rate: {params: {window: 30m}, alert: {value: 0.1, for: 0}}\n"
        "  channel_hhi: {alert: false}\n"
        "rules:\n"
        "  - {id: payouts-failing, kpi: failed_payment_rate, params: {kind: payout},"
        " op: '>', value: 0.2, severity: critical}\n")
    by_id = {t.id: t for t in rules.thresholds}
    assert set(by_id) == {"failed_payment_rate", "payouts-failing"}
    assert set(rules.kpis) == {"failed_payment_rate", "channel_hhi"}
    default = by_id["failed_payment_rate"]
    assert (default.op, str(default.threshold), default.for_us, default.severity) == (
        ">", "0.1", 0, "warning")
    # a rule on a KPI starts from the KPI's parameters in the file, then its own
    assert by_id["payouts-failing"].params == {"window": 30 * MINUTE_US, "kind": "payout"}


# --- hot reload ----------------------------------------------------------------------------------


def rule_ids(holder: AlertRules) -> set[str]:
    assert holder.current is not None
    return {t.id for t in holder.current.thresholds}


def test_hot_reload_takes_a_changed_file_and_keeps_the_rules_when_it_breaks(
    tmp_path: Path,
) -> None:
    path = tmp_path / "alerts.yaml"
    path.write_text(DEPTH_RULE.format(extra=""))
    holder = AlertRules(path)
    assert rule_ids(holder) == {"bank-a-usd-low"}
    assert holder.check() is False  # unchanged

    second = "kpis:\n  available_ratio: {}\n" + DEPTH_RULE.format(extra="")
    path.write_text(second)
    assert holder.check() is True
    assert rule_ids(holder) == {"bank-a-usd-low", "available_ratio"}
    assert holder.reloads == 1
    assert holder.last_error is None

    with capture_logs() as logs:
        path.write_text(second.replace("severity: critical", "severity: urgent"))
        assert holder.check() is False
    assert rule_ids(holder) == {"bank-a-usd-low", "available_ratio"}
    assert holder.last_error is not None
    assert "rules[0] 'bank-a-usd-low'.severity" in holder.last_error
    assert [entry["log_level"] for entry in logs] == ["error"]
    assert "urgent" in str(logs[0]["error"])
    with capture_logs() as again:  # the same broken text is neither parsed nor logged again
        assert holder.check() is False
    assert again == []

    path.write_text("rules: [\n")
    holder.check()
    assert holder.last_error is not None
    assert "not valid YAML" in holder.last_error
    path.unlink()
    holder.check()
    assert holder.last_error is not None
    assert "cannot be read" in holder.last_error
    assert rule_ids(holder) == {"bank-a-usd-low", "available_ratio"}

    path.write_text(second)  # the rules in force, written back: nothing to load, all well
    assert holder.check() is False
    assert holder.last_error is None
    path.write_text(DEPTH_RULE.format(extra=""))
    assert holder.reload() is True
    assert rule_ids(holder) == {"bank-a-usd-low"}


def test_a_holder_that_never_loaded_raises_or_waits(tmp_path: Path) -> None:
    path = tmp_path / "alerts.yaml"
    path.write_text("kpis: {nope: {}}\n")
    with pytest.raises(InvalidAlertRules, match="unknown KPI 'nope'"):
        AlertRules(path)
    with capture_logs():
        holder = AlertRules(path, strict=False)
    assert holder.current is None
    assert not holder.loaded
    assert holder.last_error is not None
    assert "unknown KPI 'nope'" in holder.last_error
    path.write_text(DEPTH_RULE.format(extra=""))
    assert holder.check() is True
    assert holder.loaded


# --- the alert life, on SQLite and PostgreSQL ---------------------------------------------------


def move(ledger: Ledger, minor: int) -> None:
    """Fund bank-a's USD (minor > 0) or take from it (minor < 0)."""
    if minor > 0:
        ledger.transfer([Posting("world:bank-a", BANK_A, "USD", minor)])
    else:
        ledger.transfer([Posting(BANK_A, "world:bank-a", "USD", -minor)])


def alert_events(store: LedgerStore) -> list[Event]:
    return [e for e in compose.outbox(store).pool_events("main") if e.type.startswith("alert.")]


def engine_on(ledger: Ledger, clock: ManualClock, rules: AlertRules) -> AlertEngine:
    monitor = compose.monitor(ledger.store, CONFIG, clock)
    return AlertEngine(ledger, monitor, rules, table=SqlAlertStore(ledger.store),
                       ids=Uuid7Ids.seeded(11))


def step(engine: AlertEngine, clock: ManualClock, seconds: float = 60) -> None:
    clock.advance(seconds=seconds)
    engine.monitor.step()


def wait_until(condition: Callable[[], bool], timeout_s: float = WAIT_S) -> bool:
    """Poll `condition` until it holds (True) or `timeout_s` has passed (False)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.01)
    return True


@pytest.fixture
def pool_ledger(ledger: Ledger) -> Ledger:
    init_pool(ledger, CONFIG)
    return ledger


def test_fire_acknowledge_resolve_each_step_an_event(
    store: LedgerStore, clock: ManualClock, pool_ledger: Ledger,
) -> None:
    ledger = pool_ledger
    engine = engine_on(ledger, clock, AlertRules(text=DEPTH_RULE.format(extra="")))
    assert engine.active() == []
    assert engine.history() == []

    move(ledger, 500_00)
    step(engine, clock)
    report = engine.evaluate()
    (fired,) = report.fired
    assert (fired.rule, fired.subject, fired.severity, fired.state, fired.value) == (
        "bank-a-usd-low", "asset:USD,channel:bank-a", "critical", "firing", "500")
    assert fired.summary == "depth (asset:USD,channel:bank-a) is 500, < 1000.00"
    assert fired.fired_at_us == clock.now_us()
    assert engine.active() == [fired]
    assert engine.get(fired.id) == fired
    (event,) = alert_events(store)
    assert (event.id, event.type, event.pool) == (f"{fired.id}:1", "alert.fired", "main")
    assert event.data == AlertChanged(fired.id, "bank-a-usd-low", "critical",
                                      "asset:USD,channel:bank-a", fired.summary, "500", None)

    step(engine, clock)
    head = store.head()
    again = engine.evaluate()
    assert store.head() == head  # an evaluation writes no journal entry
    assert again.fired == []  # firing already: not fired twice
    assert again.resolved == []
    assert len(alert_events(store)) == 1
    assert len(engine.active()) == 1

    clock.advance(seconds=30)
    acked = engine.acknowledge(fired.id, ALICE)
    assert (acked.state, acked.acknowledged_by, acked.acknowledged_at_us) == (
        "acknowledged", "alice", clock.now_us())
    assert acked.acknowledged_actor == ALICE
    assert engine.get(fired.id) == acked  # the actor comes back whole from the table
    events = alert_events(store)
    assert [(e.id, e.type) for e in events] == [
        (f"{fired.id}:1", "alert.fired"), (f"{fired.id}:2", "alert.acknowledged")]
    assert isinstance(events[1].data, AlertChanged)
    assert events[1].data.actor == "alice"
    with pytest.raises(AlertNotFiring):
        engine.acknowledge(fired.id, BOB)
    with pytest.raises(UnknownAlert):
        engine.acknowledge("no-such-alert", BOB)
    with pytest.raises(InvalidActor):
        engine.acknowledge(fired.id, Actor("key", "k", "   ", ()))
    assert len(alert_events(store)) == 2  # refused acknowledgements wrote nothing

    step(engine, clock)
    assert engine.evaluate().fired == []  # acknowledged is still active
    move(ledger, 1_000_00)
    step(engine, clock)
    (resolved,) = engine.evaluate().resolved
    assert (resolved.id, resolved.state, resolved.resolved_at_us) == (
        fired.id, "resolved", clock.now_us())
    assert (resolved.acknowledged_by, resolved.acknowledged_actor) == ("alice", ALICE)
    assert engine.active() == []
    events = alert_events(store)
    assert [(e.id, e.type) for e in events][-1] == (f"{fired.id}:3", "alert.resolved")
    last = events[-1].data
    assert isinstance(last, AlertChanged)
    assert last.value == "1500"
    assert "not <" in last.summary

    move(ledger, -1_200_00)  # low again: a new alert, a new life
    step(engine, clock)
    (second,) = engine.evaluate().fired
    assert second.id != fired.id
    assert second.value == "300"
    assert [a.id for a in engine.history()] == [second.id, fired.id]
    assert [a.state for a in engine.history()] == ["firing", "resolved"]
    assert [e.id for e in alert_events(store)][-1] == f"{second.id}:1"
    # the alert events are the pool's events like any other: the projection counts them
    engine.monitor.step()
    counted = engine.monitor.figures("main").events
    assert counted["alert.fired"] == 2
    assert counted["alert.resolved"] == 1


def test_an_alert_acknowledged_before_actors_were_kept_reads_and_resolves(
    store: LedgerStore, clock: ManualClock, pool_ledger: Ledger,
) -> None:
    """A row as the code before the actor column wrote it: a name, no actor (NULL)."""
    engine = engine_on(pool_ledger, clock, AlertRules(text=DEPTH_RULE.format(extra="")))
    step(engine, clock)
    (fired,) = engine.evaluate().fired
    table = SqlAlertStore(store)
    with table.db.transaction() as tx:
        tx.execute("UPDATE alerts SET state = 'acknowledged', acknowledged_at_us = ?, "
                   "acknowledged_by = 'carol', acknowledged_actor = NULL WHERE id = ?",
                   (clock.now_us(), fired.id))
    old = engine.get(fired.id)
    assert old is not None
    assert (old.state, old.acknowledged_by, old.acknowledged_actor) == (
        "acknowledged", "carol", None)
    assert "acknowledged_actor" in old.to_dict()
    assert old.to_dict()["acknowledged_actor"] is None
    move(pool_ledger, 2_000_00)
    step(engine, clock)
    (resolved,) = engine.evaluate().resolved
    assert (resolved.acknowledged_by, resolved.acknowledged_actor) == ("carol", None)


def test_an_acknowledgement_shows_a_safe_name_and_keeps_the_whole_actor(
    store: LedgerStore, clock: ManualClock, pool_ledger: Ledger,
) -> None:
    engine = engine_on(pool_ledger, clock, AlertRules(text=DEPTH_RULE.format(extra="")))
    step(engine, clock)
    (fired,) = engine.evaluate().fired
    odd = Actor("key", "k1", "ops<bot>;" + "x" * 80, ("risk",), key_id="k1", request_id="r9")
    acked = engine.acknowledge(fired.id, odd)
    assert acked.acknowledged_by == "ops-bot--" + "x" * 55
    assert acked.acknowledged_actor == odd
    (event,) = [e for e in alert_events(store) if e.type == "alert.acknowledged"]
    assert isinstance(event.data, AlertChanged)
    assert event.data.actor == acked.acknowledged_by
    assert event.data.summary.startswith(f"acknowledged by {acked.acknowledged_by}: ")


def test_a_resolution_without_acknowledgement_is_step_two(
    store: LedgerStore, clock: ManualClock, pool_ledger: Ledger,
) -> None:
    engine = engine_on(pool_ledger, clock, AlertRules(text=DEPTH_RULE.format(extra="")))
    step(engine, clock)
    (fired,) = engine.evaluate().fired  # nothing on bank-a at all: depth 0
    assert fired.value == "0"
    move(pool_ledger, 2_000_00)
    step(engine, clock)
    engine.evaluate()
    assert [(e.id, e.type) for e in alert_events(store)] == [
        (f"{fired.id}:1", "alert.fired"), (f"{fired.id}:2", "alert.resolved")]


def test_for_waits_and_a_clearing_condition_starts_the_wait_again(
    store: LedgerStore, clock: ManualClock, pool_ledger: Ledger,
) -> None:
    engine = engine_on(pool_ledger, clock, AlertRules(text=DEPTH_RULE.format(extra="for: 5m")))
    move(pool_ledger, 500_00)
    step(engine, clock)
    first = engine.evaluate()
    assert first.fired == []
    assert [o.rule for o in first.pending] == ["bank-a-usd-low"]
    step(engine, clock, 4 * 60)
    assert engine.evaluate().fired == []
    move(pool_ledger, 1_000_00)  # clears at 4m…
    step(engine, clock, 30)
    assert engine.evaluate().pending == []
    move(pool_ledger, -1_000_00)  # …and holds again from 4m30s
    step(engine, clock, 30)
    assert engine.evaluate().fired == []  # 5m after the first breach, but the wait restarted
    step(engine, clock, 4 * 60 + 30)
    assert engine.evaluate().fired == []  # 4m30s of the new wait
    step(engine, clock, 30)
    (fired,) = engine.evaluate().fired
    assert fired.rule == "bank-a-usd-low"
    assert len(alert_events(store)) == 1


def test_removing_a_rule_resolves_its_alerts(
    store: LedgerStore, clock: ManualClock, pool_ledger: Ledger, tmp_path: Path,
) -> None:
    path = tmp_path / "alerts.yaml"
    path.write_text(DEPTH_RULE.format(extra=""))
    engine = engine_on(pool_ledger, clock, AlertRules(path))
    step(engine, clock)
    (fired,) = engine.evaluate().fired
    with capture_logs():
        path.write_text("rules: [oops\n")  # broken: the rule stays in force
        step(engine, clock)
        report = engine.evaluate()
    assert report.rules_error is not None
    assert "not valid YAML" in report.rules_error
    assert report.resolved == []
    assert len(engine.active()) == 1
    path.write_text("kpis:\n  available_ratio: {alert: false}\n")
    step(engine, clock)
    report = engine.evaluate()
    assert [r.id for r in report.resolved] == [fired.id]
    assert report.rules_error is None
    last = alert_events(store)[-1]
    assert last.type == "alert.resolved"
    assert isinstance(last.data, AlertChanged)
    assert "no longer evaluated" in last.data.summary
    assert [v.kpi for v in report.kpis["main"]] == ["available_ratio"] * 6


def test_an_engine_without_rules_touches_no_alert(
    store: LedgerStore, clock: ManualClock, ledger: Ledger, tmp_path: Path,
) -> None:
    path = tmp_path / "alerts.yaml"
    path.write_text("rules: 3\n")
    with capture_logs():
        engine = engine_on(ledger, clock, AlertRules(path, strict=False))
        report = engine.evaluate()
    assert report.rules_error is not None
    assert report.rules_digest is None
    assert report.fired == report.resolved == []
    assert report.kpis == {}


def test_an_engine_can_evaluate_in_the_background(
    store: LedgerStore, clock: ManualClock, pool_ledger: Ledger,
) -> None:
    engine = engine_on(pool_ledger, clock, AlertRules(text=DEPTH_RULE.format(extra="")))
    engine.follow(interval_s=0.01)
    try:
        # The thread commits the alert before it keeps its report: wait for both.
        assert wait_until(lambda: bool(engine.active()) and engine.last_report is not None)
    finally:
        engine.stop()
    assert [a.rule for a in engine.active()] == ["bank-a-usd-low"]
    assert engine.last_report is not None


# --- SLOs and burn rates -------------------------------------------------------------------------

SLO_RULES = """
slos:
  - id: payouts
    sli: {type: success, kind: payout}
    objective: 0.99
    window: 30d
"""
LATENCY_RULES = """
slos:
  - id: rtp-fast
    sli: {type: latency, channel: rtp, threshold: 1m}
    objective: 0.99
    window: 7d
"""


def transitions(specs: Iterable[tuple[str, int, int]], counter: itertools.count[int],
                *, kind: str = "payout") -> list[Event]:
    """(to_state, at_us, latency_us) → payment.transitioned events on rtp."""
    events = []
    for to_state, at_us, latency_us in specs:
        n = next(counter)
        data = PaymentTransitioned(
            payment_id=f"pay-{n}", kind=kind, asset="USD", amount_minor=100, fee_minor=0,
            channel="rtp", destination_channel=None,
            action="settle" if to_state == "settled" else "fail", from_state=None,
            to_state=to_state, payment_version=1, since_us=None,
            created_at_us=at_us - latency_us)
        events.append(Event(f"evt-{n}", "payment.transitioned", "main", at_us, data))
    return events


def emit(ledger: Ledger, events: list[Event]) -> None:
    with ledger.transaction() as transaction:
        transaction.emit(events)


def test_burn_rate_alerts_fire_on_a_failure_spike_not_on_a_healthy_series(
    store: LedgerStore, clock: ManualClock, ledger: Ledger,
) -> None:
    t = T0 + 4 * HOUR_US
    counter = itertools.count()
    # healthy: 5 settled payouts a minute for 3 hours, one failure half an hour before t
    healthy = [("settled", t - m * MINUTE_US + k * SECOND, SECOND)
               for m in range(1, 181) for k in range(5)]
    emit(ledger, transitions([*healthy, ("failed", t - 30 * MINUTE_US, SECOND)], counter))
    engine = engine_on(ledger, clock, AlertRules(text=SLO_RULES))
    clock.set(t)
    engine.monitor.step()
    calm = engine.evaluate()
    assert calm.fired == []
    (status,) = calm.slos
    assert status.burn_rates[0].long == Fraction(1, 301) * 100  # 1h: 300 good, 1 bad
    assert status.burn_rates[0].short == 0  # 5m: 25 good
    assert not any(b.breached for b in status.burn_rates)

    # the spike: for 5 minutes, 2 settled and 30 failed a minute
    spike = [(state, t + m * MINUTE_US + k * SECOND, SECOND)
             for m in range(5) for state, n in (("settled", 2), ("failed", 30))
             for k in range(n)]
    emit(ledger, transitions(spike, counter))
    clock.set(t + 5 * MINUTE_US)
    engine.monitor.step()
    report = engine.evaluate()
    fired = {a.rule: a.severity for a in report.fired}
    assert fired == {"payouts/burn-1h-5m": "critical", "payouts/burn-6h-30m": "warning",
                     "payouts/burn-3d-6h": "info"}
    (status,) = report.slos
    fast, medium, slow = status.burn_rates
    # 1h: 55 healthy minutes (275 good) + the failure at t-30m + the spike (10 good, 150 bad)
    assert fast.long == Fraction(151, 436) / Fraction(1, 100)
    assert fast.short == Fraction(150, 160) / Fraction(1, 100)  # 5m: the spike alone
    assert medium.long == Fraction(151, 1061) * 100  # 6h: everything
    assert medium.short == Fraction(150, 285) * 100  # 30m: 25 healthy minutes + the spike
    assert slow.long == slow.short == medium.long
    assert (status.good, status.total) == (910, 1061)
    assert status.budget_remaining == 1 - Fraction(151, 1061) * 100
    by_rule = {a.rule: a for a in report.fired}
    assert by_rule["payouts/burn-1h-5m"].value == "34.633"  # 3775/109, 4 places, trimmed
    assert "burning 34.633× over 1h and 93.75× over 5m" in by_rule["payouts/burn-1h-5m"].summary

    # the spike is over: no payout in the last 5 minutes, so the page resolves; the slower
    # windows still see it
    clock.set(t + 30 * MINUTE_US)
    engine.monitor.step()
    later = engine.evaluate()
    assert [a.rule for a in later.resolved] == ["payouts/burn-1h-5m"]
    assert {a.rule for a in engine.active()} == {"payouts/burn-6h-30m", "payouts/burn-3d-6h"}


def test_a_latency_slo_counts_settlements_within_its_threshold(
    store: LedgerStore, clock: ManualClock, ledger: Ledger,
) -> None:
    t = T0 + HOUR_US
    counter = itertools.count()
    engine = engine_on(ledger, clock, AlertRules(text=LATENCY_RULES))
    clock.set(t)
    engine.monitor.step()
    first = engine.evaluate()  # the first sample: nothing to compare with yet
    assert first.slos[0].total == 0
    assert first.fired == []
    assert first.slos[0].subject == "channel:rtp"

    emit(ledger, transitions([("settled", t + 30 * SECOND, 10 * SECOND)] * 100, counter))
    clock.set(t + MINUTE_US)
    engine.monitor.step()
    fast = engine.evaluate()
    assert (fast.slos[0].good, fast.slos[0].total) == (100, 100)
    assert fast.fired == []

    # 50 settle after two hours: outside the 1 minute threshold
    emit(ledger, transitions([("settled", t + 90 * SECOND, 2 * HOUR_US)] * 50, counter))
    clock.set(t + 2 * MINUTE_US)
    engine.monitor.step()
    slow = engine.evaluate()
    (status,) = slow.slos
    assert (status.good, status.total) == (100, 150)
    assert status.burn_rates[0].short == Fraction(50, 150) * 100
    assert {a.rule for a in slow.fired} == {
        "rtp-fast/burn-1h-5m", "rtp-fast/burn-6h-30m", "rtp-fast/burn-3d-6h"}
    assert all(a.subject == "channel:rtp" for a in slow.fired)


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 10**9), st.integers(0, 10**9),
       st.fractions(min_value=Fraction(1, 10**6), max_value=Fraction(999_999, 10**6)))
def test_burn_rate_is_the_error_rate_over_the_error_budget(
    good: int, bad: int, objective: Fraction,
) -> None:
    burn = burn_rate(good, good + bad, objective)
    if good + bad == 0:
        assert burn is None
        return
    assert burn is not None
    assert burn >= 0
    assert burn * (1 - objective) == Fraction(bad, good + bad)
    # burning at exactly 1 spends exactly the budget: the SLI is then the objective
    assert (burn == 1) == (Fraction(good, good + bad) == objective)
    assert (burn > 1) == (Fraction(good, good + bad) < objective)


def test_window_counts_from_cumulative_samples() -> None:
    assert counts_since((150, 200), None) == (0, 0)  # no sample yet: no data
    assert counts_since((150, 200), (100, 120)) == (50, 80)
    # fewer events now than in the sample: the projection was rebuilt, counting starts again
    assert counts_since((7, 9), (100, 120)) == (7, 9)


def test_the_alerting_package_reaches_its_store_only_through_its_port() -> None:
    """No module of `fundpool.monitoring.alerting` imports an adapter or an entry point: the
    SQL store (`fundpool.stores.alerts_sql`) is handed to the engine as an `AlertStore`."""
    package = ROOT / "src" / "fundpool" / "monitoring" / "alerting"
    above = ("fundpool.stores", "fundpool.server", "fundpool.cli", "fundpool.console",
             "fundpool.bus", "fundpool.events.nats")
    found: list[str] = []
    for path in sorted(package.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            found += [f"{path.name}: {n}" for n in names if n.startswith(above)]
    assert found == []


# --- the CLI -----------------------------------------------------------------------------------

runner = CliRunner()


def cli(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result.stdout


def test_the_alerts_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOGNAME", "ops-dave")  # getpass.getuser reads it first
    data = str(tmp_path / "data")
    where = ("--config", str(EXAMPLE_POOL), "--data-dir", data)
    cli("pool", "init", *where, "--json")
    store = SqliteStore(Path(data) / "ledger.sqlite3")
    move(Ledger(store, ManualClock(), Uuid7Ids.seeded(3)), 500_00)
    store.close()
    rules = tmp_path / "alerts.yaml"
    rules.write_text(DEPTH_RULE.format(extra=""))

    assert json.loads(cli("alerts", "check", str(EXAMPLE_RULES), "--json"))["ok"] is True
    assert "ok: " in cli("alerts", "check", str(EXAMPLE_RULES))
    bad = tmp_path / "bad.yaml"
    bad.write_text(DEPTH_RULE.format(extra="").replace("critical", "urgent"))
    result = runner.invoke(app, ["alerts", "check", str(bad)])
    assert result.exit_code == 2
    assert "rules[0] 'bank-a-usd-low'.severity" in result.stderr
    failed = json.loads(cli("alerts", "check", str(bad), "--json", code=2))
    assert failed["code"] == "invalid_alert_rules"
    assert len(failed["errors"]) == 1
    cli("alerts", "eval", "--rules", str(bad), *where, code=2)

    doc = json.loads(cli("alerts", "eval", "--rules", str(rules), *where, "--json"))
    (fired,) = doc["fired"]
    assert (fired["rule"], fired["value"]) == ("bank-a-usd-low", "500")
    assert [a["id"] for a in doc["active"]] == [fired["id"]]
    again = json.loads(cli("alerts", "eval", "--rules", str(rules), *where, "--json"))
    assert again["fired"] == []

    listed = json.loads(cli("alerts", "list", "--data-dir", data, "--json"))["alerts"]
    assert [a["id"] for a in listed] == [fired["id"]]
    acked = json.loads(cli("alerts", "ack", fired["id"], "--by", "bob", "--data-dir", data,
                           "--json"))
    assert (acked["state"], acked["acknowledged_by"]) == ("acknowledged", "bob")
    # The operating-system user is the actor; --by is the name shown.
    actor = acked["acknowledged_actor"]
    assert (actor["kind"], actor["id"], actor["name"]) == ("cli", "ops-dave", "bob")
    refused = json.loads(cli("alerts", "ack", fired["id"], "--by", "bob", "--data-dir", data,
                             "--json", code=2))
    assert refused["code"] == "alert_not_firing"
    assert refused["state"] == "acknowledged"
    history = json.loads(cli("alerts", "list", "--all", "--data-dir", data, "--json"))
    assert [a["state"] for a in history["alerts"]] == ["acknowledged"]
    human = cli("alerts", "eval", "--rules", str(EXAMPLE_RULES), *where)
    assert "SLOs" in human
    assert "payout-success" in human

    kpis = json.loads(cli("alerts", "kpis", "--json"))["kpis"]
    assert [k["id"] for k in kpis] == list(KPIS)
    assert all(k["alert"]["severity"] and k["panel"]["type"] for k in kpis)
    assert "流动性覆盖率" in cli("alerts", "kpis")
