"""The demo's alert rules (examples/demo-alerts.yaml) fire within a minute of the demo starting,
one of each severity, as the README says: the demo's pool (examples/pool.toml) at the console
demo's rate (cli/demo.py, 50 payments a second), the alert engine evaluating every two seconds
as the demo's server does, all in-process on a ManualClock for sixty simulated seconds.

Each alert must be about something that is really so on the pool at that moment (the rule's
figure is read again from the ledger), not a rule that fires whatever happens; and the rails
the treasury keeps funded raise none.
"""

from __future__ import annotations

from pathlib import Path

from fundpool import compose
from fundpool.cli.demo import DEMO_ALERTS, DEMO_CONFIG, DEMO_CONSOLE_RATE
from fundpool.core.clock import ManualClock, Uuid7Ids
from fundpool.ledger.service import Ledger
from fundpool.monitoring.alerting.engine import AlertEngine
from fundpool.monitoring.alerting.reload import AlertRules
from fundpool.pool.accounts import PoolState, pool_account
from fundpool.pool.config import load_config
from fundpool.pool.setup import init_pool
from fundpool.sim.pace import parse_rate
from fundpool.stores.alerts_sql import SqlAlertStore
from fundpool.stores.sqlite import SqliteStore

MINUTE_S = 60
EVALUATE_EVERY_S = 2.0  # cli/demo.py's evaluate_every_s
STEP_S = 0.5
SEED = 7  # the demo's (sim/service.py SEED_DEFAULT)


def test_the_demo_rules_fire_one_of_each_severity_within_a_minute(tmp_path: Path) -> None:
    config = load_config(DEMO_CONFIG)
    pool = config.pool(None)
    store = SqliteStore(tmp_path / "ledger.sqlite3")
    store.initialise()
    try:
        clock = ManualClock()
        ledger = Ledger(store, clock, Uuid7Ids.seeded(SEED))
        simulation = compose.simulation(ledger, config, pool, seed=SEED, clock=clock)
        init_pool(ledger, config)
        monitor = compose.monitor(store, config, clock)
        engine = AlertEngine(ledger, monitor, AlertRules(DEMO_ALERTS),
                             table=SqlAlertStore(store), ids=Uuid7Ids.seeded(SEED))
        started_us = clock.now_us()
        fired_at_s: dict[str, float] = {}
        seen: dict[str, tuple[str, str]] = {}  # severity -> (rule, subject) of its first alert
        depth_alerts: set[str] = set()  # the subjects of every depth alert fired
        # As in the server, the alert engine may look before the simulator has opened the
        # pool: every rail then holds nothing for a moment, which is no alert.
        monitor.step()
        assert engine.evaluate().fired == []
        clock.advance(seconds=EVALUATE_EVERY_S)
        simulation.open_pool()
        next_evaluation_us = clock.now_us()

        def evaluate(_: object) -> None:
            nonlocal next_evaluation_us
            if clock.now_us() < next_evaluation_us:
                return
            next_evaluation_us += int(EVALUATE_EVERY_S * 1_000_000)
            monitor.step()
            for alert in engine.evaluate().fired:
                if alert.rule != "approval-waiting":
                    depth_alerts.add(alert.subject)
                if alert.severity not in fired_at_s:
                    fired_at_s[alert.severity] = (clock.now_us() - started_us) / 1_000_000
                    seen[alert.severity] = (alert.rule, alert.subject)
                    _check_it_is_so(alert.rule, alert.subject)

        def _check_it_is_so(rule: str, subject: str) -> None:
            if rule == "approval-waiting":
                assert monitor.figures(pool.id).approval_count >= 1
                return
            labels = dict(part.split(":", 1) for part in subject.split(","))
            asset, channel = labels["asset"], labels["channel"]
            depth = config.channel(channel).depth_for(asset)
            assert depth is not None
            available = ledger.balance(
                pool_account(pool.id, asset, channel, PoolState.AVAILABLE), asset).available
            bound = depth.low_minor if rule == "rail-low" else depth.min_minor
            assert available < bound, (rule, subject, available, bound)

        simulation.run(rate_per_s=parse_rate(DEMO_CONSOLE_RATE), duration_s=MINUTE_S,
                       step_s=STEP_S, advance=lambda s: clock.advance(seconds=s),
                       on_step=evaluate)
        print(f"\nfirst alert of each severity, seconds after the start: {fired_at_s} {seen}")
        assert set(fired_at_s) == {"info", "warning", "critical"}, (fired_at_s, seen)
        assert all(at <= MINUTE_S for at in fired_at_s.values())
        assert {rule for rule, _ in seen.values()} == {
            "approval-waiting", "rail-low", "rail-below-minimum"}
        # The treasury keeps every other rail above its low depth: only the card acquirer's
        # account, which it does not manage, runs low.
        assert depth_alerts == {"asset:USD,channel:card-acq"}
    finally:
        store.close()
