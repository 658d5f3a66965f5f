"""Replay (src/fundpool/monitoring/replay.py, cli/monitor.py): the pool as it stood at any
past instant, rebuilt from the journal and from the event log and checked against each other,
and a past window of events played again at a chosen speed.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from fundpool import compose
from fundpool.cli.main import app
from fundpool.cli.simulate import SIM_START_US
from fundpool.core.clock import ManualClock, Uuid7Ids
from fundpool.core.ledger.model import Posting
from fundpool.events.model import Event, decode
from fundpool.ledger.service import Ledger
from fundpool.monitoring.projection import fold
from fundpool.monitoring.replay import (
    InvalidInstant,
    parse_instant,
    replay_at,
    replay_window,
)
from fundpool.pool.config import load_config
from fundpool.pool.setup import init_pool
from fundpool.pool.view import pool_view
from fundpool.stores.sqlite import SqliteStore

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "pool.toml"
CONFIG = load_config(EXAMPLE)
POOL = CONFIG.pool("main")
RATES = CONFIG.rates_for(POOL)
T0 = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# --- instants ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("2026-01-01T00:00:00Z", T0),
    ("2026-01-01T00:00:00+00:00", T0),
    ("2026-01-01T02:00:00+02:00", T0),
    ("2025-12-31T18:30:00-05:30", T0),
    ("2026-01-01T00:00:00.000001Z", T0 + 1),
    ("2026-01-01T00:00:00.999999Z", T0 + 999_999),
    ("2026-01-01T00:00:00.5Z", T0 + 500_000),
    ("2026-01-01T00:00:00.123+00:00", T0 + 123_000),
    ("  2026-01-01T00:00:00Z\n", T0),
    ("2026-01-01T00:00Z", T0),
    ("1970-01-01T00:00:00Z", 0),
    ("1969-12-31T23:59:59.999999Z", -1),
    ("2026-11-24T09:00:00Z", SIM_START_US),
    ("9999-12-31T23:59:59.999999Z", 253_402_300_799_999_999),
])
def test_parse_instant(text: str, expected: int) -> None:
    assert parse_instant(text) == expected


@pytest.mark.parametrize("text", [
    "2026-01-01T00:00:00",  # no zone
    "2026-01-01",
    "2026-01-01T00:00:00.123456",
    "garbage",
    "",
    "   ",
    "2026-13-01T00:00:00Z",
    "2026-02-30T00:00:00Z",
    "2026-01-01T24:00:01Z",
    "2026-01-01T00:00:60Z",
    "2026-01-01T00:00:00+25:00",
    "2026-01-01T00:00:00 UTC",
    "1767225600",
    "now",
])
def test_a_bad_instant_is_invalid_instant(text: str) -> None:
    with pytest.raises(InvalidInstant) as caught:
        parse_instant(text)
    assert caught.value.code == "invalid_instant"
    assert caught.value.facts["instant"] == text


@given(st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30),
                    timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=45)),
                                               timezone(timedelta(hours=-11))])))
def test_parse_instant_is_exact_to_the_microsecond(moment: datetime) -> None:
    expected = (moment - EPOCH) // timedelta(microseconds=1)
    assert parse_instant(moment.isoformat()) == expected
    assert parse_instant(moment.isoformat().replace("+00:00", "Z")) == expected


# --- a simulated run ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SqliteStore, ManualClock]]:
    store = SqliteStore(tmp_path_factory.mktemp("replay") / "ledger.sqlite3")
    store.initialise()
    clock = ManualClock(T0)
    ledger = Ledger(store, clock, Uuid7Ids.seeded(11))
    simulation = compose.simulation(ledger, CONFIG, POOL, seed=11, clock=clock)
    simulation.open_pool()
    simulation.run(rate_per_s=100, duration_s=10, advance=lambda s: clock.advance(seconds=s))
    yield store, clock
    store.close()


@pytest.fixture(scope="module")
def events(run: tuple[SqliteStore, ManualClock]) -> list[Event]:
    return list(compose.outbox(run[0]).pool_events(POOL.id))


def test_replay_at_several_instants_agrees_with_the_journal(
    run: tuple[SqliteStore, ManualClock], events: list[Event]
) -> None:
    store, clock = run
    ledger = Ledger(store, clock, Uuid7Ids.seeded(0))
    end = clock.now_us()
    instants = [T0, T0 + 1, T0 + 1_050_000, T0 + 3_333_333, T0 + 7_000_000,
                events[len(events) // 2].at_us, events[len(events) // 2].at_us - 1, end]
    seen_seqs = set()
    for at in instants:
        result = replay_at(store, compose.outbox(store), CONFIG, POOL, at)
        assert result.agrees, at
        assert result.journal_view.reporting_total == result.figures.view.reporting_total
        assert result.journal_seq == ledger.seq_at(at)
        upto = [e for e in events if e.at_us <= at]
        assert result.events == len(upto) == (upto[-1].seq if upto else 0)
        assert result.projection.cells == fold(POOL.id, upto).cells
        assert result.figures.at_us == at
        # the journal view is the pool as of that entry: every balance as of its seq
        assert result.journal_view.as_of_seq == result.journal_seq
        seen_seqs.add(result.journal_seq)
    assert len(seen_seqs) >= 5  # the instants really are different states


def test_at_the_end_the_replay_is_the_live_monitor(
    run: tuple[SqliteStore, ManualClock], tmp_path: Path
) -> None:
    store, clock = run
    end = clock.now_us()
    result = replay_at(store, compose.outbox(store), CONFIG, POOL, end)
    from fundpool.stores.projection_sql import ProjectionStore

    monitor = compose.monitor(store, CONFIG, clock,
                              projections=ProjectionStore("sqlite:///:memory:"))
    monitor.step()
    assert result.figures == monitor.figures(POOL.id, at_us=end)
    live = monitor.snapshot(POOL.id)
    assert result.projection.cells == live.cells
    assert result.projection.series == live.series
    assert result.journal_view == pool_view(store, CONFIG, POOL, RATES)
    assert result.figures.view == dataclasses.replace(result.journal_view, as_of_seq=0)
    # later than everything: the same
    later = replay_at(store, compose.outbox(store), CONFIG, POOL, end + 3_600_000_000)
    assert later.figures.view == result.figures.view
    assert later.journal_seq == result.journal_seq


def test_before_anything_the_replay_is_empty(run: tuple[SqliteStore, ManualClock]) -> None:
    store, _ = run
    for at in (T0 - 1, 0, -1_000_000):
        result = replay_at(store, compose.outbox(store), CONFIG, POOL, at)
        assert (result.journal_seq, result.events) == (0, 0)
        assert result.projection.cells == {}
        assert result.projection.series == {}
        assert result.agrees
        assert result.journal_view.reporting_total.total == 0
        assert result.figures.payments_by_state == {}


def test_a_tampered_event_log_disagrees(tmp_path: Path) -> None:
    """`agrees` is not vacuous: an event log that says another balance is caught."""
    store = SqliteStore(tmp_path / "ledger.sqlite3")
    store.initialise()
    clock = ManualClock(T0)
    ledger = Ledger(store, clock, Uuid7Ids.seeded(1))
    init_pool(ledger, CONFIG)
    available = "pool:main:usd:bank-a:available"
    for amount in (1_000, 2_000, 3_000):
        clock.advance(seconds=10)
        ledger.transfer([Posting("world:bank-a", available, "USD", amount)])
    second = T0 + 20_000_000
    assert replay_at(store, compose.outbox(store), CONFIG, POOL, clock.now_us()).agrees
    with store.write() as session:  # the event log loses the second transfer's event
        session.connection.execute(
            "DELETE FROM outbox WHERE pool = 'main' AND at_us = ?", (second,))
    assert replay_at(store, compose.outbox(store), CONFIG, POOL, second - 1).agrees
    assert not replay_at(store, compose.outbox(store), CONFIG, POOL, second).agrees
    # the next entry's event carries the true balance again
    assert replay_at(store, compose.outbox(store), CONFIG, POOL, clock.now_us()).agrees
    store.close()


# --- a window played again ------------------------------------------------------------------------


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0
        self.waits: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds

    def monotonic(self) -> float:
        return self.now


def window(events: list[Event], since: int, until: int) -> list[Event]:
    return [e for e in events if since <= e.at_us <= until]


def test_a_window_yields_exactly_its_events_in_seq_order(
    run: tuple[SqliteStore, ManualClock], events: list[Event]
) -> None:
    store, _ = run
    reader = compose.outbox(store)
    since, until = events[100].at_us, events[-100].at_us  # both ends are event times
    played = list(replay_window(reader, POOL.id, since_us=since, until_us=until, speed=0,
                                sleep=pytest.fail))  # type: ignore[arg-type]
    assert played == window(events, since, until)
    assert played[0].at_us == since
    assert played[-1].at_us == until
    assert [e.seq for e in played] == list(range(played[0].seq, played[-1].seq + 1))
    assert list(replay_window(reader, POOL.id, since_us=until + 1, until_us=until + 2,
                              speed=0)) == []
    assert list(replay_window(reader, "nobody", since_us=0, until_us=2**62, speed=0)) == []


@pytest.mark.parametrize("speed", [1.0, 10.0, 0.5])
def test_a_window_is_paced_by_its_speed(
    run: tuple[SqliteStore, ManualClock], events: list[Event], speed: float
) -> None:
    store, _ = run
    since = T0 + 2_000_000
    until = T0 + 4_000_000
    fake = FakeTime()
    started = fake.now
    played = []
    for event in replay_window(compose.outbox(store), POOL.id, since_us=since, until_us=until,
                               speed=speed, sleep=fake.sleep, monotonic=fake.monotonic):
        due = (event.at_us - since) / 1_000_000 / speed
        assert fake.now - started == pytest.approx(due, abs=1e-9) or (
            fake.now - started > due), "given before its moment"
        played.append(event)
    assert played == window(events, since, until)
    dues = sorted({(e.at_us - since) / 1_000_000 / speed for e in played} - {0.0})
    # one wait per distinct later moment, each up to it from the one before (less float
    # dust: a wait of 1e-14 s for events at the same moment changes nothing)
    waits = [w for w in fake.waits if w > 1e-9]
    assert waits == pytest.approx([b - a for a, b in zip([0.0, *dues], dues, strict=False)])
    assert len(dues) == 20
    assert sum(fake.waits) == pytest.approx((played[-1].at_us - since) / 1e6 / speed)


def test_a_slow_reader_is_not_made_to_wait(
    run: tuple[SqliteStore, ManualClock], events: list[Event]
) -> None:
    store, _ = run
    clock = iter(range(0, 10**9, 1_000))  # each look at the clock is 1,000 s later

    def monotonic() -> float:
        return float(next(clock))

    played = list(replay_window(compose.outbox(store), POOL.id, since_us=T0,
                                until_us=T0 + 2_000_000, speed=1.0, sleep=pytest.fail,  # type: ignore[arg-type]
                                monotonic=monotonic))
    assert played == window(events, T0, T0 + 2_000_000)


def test_speed_zero_or_below_never_waits(
    run: tuple[SqliteStore, ManualClock], events: list[Event]
) -> None:
    store, _ = run
    for speed in (0.0, -1.0):
        fake = FakeTime()
        played = list(replay_window(compose.outbox(store), POOL.id, since_us=T0,
                                    until_us=T0 + 5_000_000, speed=speed, sleep=fake.sleep,
                                    monotonic=fake.monotonic))
        assert fake.waits == []
        assert played == window(events, T0, T0 + 5_000_000)


# --- the CLI -------------------------------------------------------------------------------------

runner = CliRunner(env={"FUNDPOOL_DB_URL": None, "FUNDPOOL_DATA_DIR": None,
                        "FUNDPOOL_CONFIG": None})
START = "2026-11-24T09:00:00Z"  # `simulate --fast` starts its clock here (SIM_START_US)


def cli(data: Path, *args: str, code: int = 0) -> str:
    result = runner.invoke(app, [*args, "--config", str(EXAMPLE), "--data-dir", str(data)])
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    return result.stdout if code == 0 else result.output


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("cli")
    cli(data, "simulate", "--fast", "--rate", "40/s", "--duration", "6s", "--seed", "5",
        "--json")
    return data


def test_cli_replay_at_agrees_with_the_journal(data_dir: Path) -> None:
    doc = json.loads(cli(data_dir, "replay", "--at", "2026-11-24T09:03:00Z", "--json"))
    assert doc["agrees_with_journal"] is True
    assert doc["journal_seq"] > 0
    assert doc["events_applied"] > 0
    assert doc["at_us"] == parse_instant("2026-11-24T09:03:00Z")
    view, journal = dict(doc["view"]), dict(doc["journal_view"])
    assert journal.pop("as_of_seq") == doc["journal_seq"]
    view.pop("as_of_seq")
    assert view == journal
    # the same instant written with an offset is the same replay
    again = json.loads(cli(data_dir, "replay", "--at", "2026-11-24T10:03:00+01:00", "--json"))
    assert again == doc
    # and in human form it says so too
    assert "agrees" in cli(data_dir, "replay", "--at", "2026-11-24T09:03:00Z")


def test_cli_replay_before_anything_is_empty(data_dir: Path) -> None:
    doc = json.loads(cli(data_dir, "replay", "--at", "2026-11-24T08:59:59Z", "--json"))
    assert (doc["journal_seq"], doc["events_applied"], doc["agrees_with_journal"]) == (0, 0, True)
    assert doc["payments_by_state"] == {}


def test_cli_monitor_show_is_the_replay_at_the_end(data_dir: Path) -> None:
    shown = json.loads(cli(data_dir, "monitor", "show", "--json"))
    assert shown["lag"] == 0
    end = json.loads(cli(data_dir, "replay", "--at", "2100-01-01T00:00:00Z", "--json"))
    assert end["agrees_with_journal"] is True
    view, journal = dict(shown["view"]), dict(end["journal_view"])
    view.pop("as_of_seq")
    journal.pop("as_of_seq")
    assert view == journal
    for key in ("payments_by_state", "pending", "failed", "returned", "in_flight", "depth",
                "latency", "available_ratio"):
        assert shown[key] == end[key], key
    assert shown["events"] == end["events"]
    assert sum(shown["events"].values()) == end["events_applied"]
    assert sum(shown["payments_by_state"].values()) > 100
    # rebuilt from the whole event log: the same figures
    rebuilt = json.loads(cli(data_dir, "monitor", "rebuild", "--json"))
    assert rebuilt["applied"] == sum(shown["events"].values()) + end_system_events(data_dir)
    assert (rebuilt["rejected"], rebuilt["ignored"]) == (0, 0)
    after = json.loads(cli(data_dir, "monitor", "show", "--json"))
    for key in ("view", "payments_by_state", "events", "latency", "depth"):
        assert after[key] == shown[key], key


def end_system_events(data: Path) -> int:
    store = SqliteStore.in_data_dir(data)
    try:
        return compose.outbox(store).head("_ledger")
    finally:
        store.close()


def test_cli_replay_window_prints_the_events_as_json_lines(data_dir: Path) -> None:
    since, until = "2026-11-24T09:01:00Z", "2026-11-24T09:01:30Z"
    lines = cli(data_dir, "replay", "--from", since, "--to", until, "--speed", "0").splitlines()
    played = [decode(line) for line in lines]
    store = SqliteStore.in_data_dir(data_dir)
    try:
        expected = list(compose.outbox(store).pool_events(
            POOL.id, since_us=parse_instant(since), until_us=parse_instant(until)))
    finally:
        store.close()
    assert played == expected
    assert len(played) > 10


@pytest.mark.parametrize("args", [
    ("--at", "2026-11-24T09:03:00"),
    ("--at", "garbage"),
    ("--at", "2026-11-24"),
    ("--from", "yesterday", "--to", "2026-11-24T09:03:00Z", "--speed", "0"),
    ("--from", "2026-11-24T09:03:00Z", "--to", "2026-11-24T09:04:00", "--speed", "0"),
])
def test_cli_a_bad_instant_exits_2_with_invalid_instant(data_dir: Path,
                                                        args: tuple[str, ...]) -> None:
    output = cli(data_dir, "replay", *args, "--json", code=2)
    doc = json.loads(output[output.index("{"):])
    assert doc["code"] == "invalid_instant"


@pytest.mark.parametrize("args", [(), ("--from", START), ("--to", START),
                                  ("--at", START, "--from", START, "--to", START)])
def test_cli_replay_needs_at_or_a_window(data_dir: Path, args: tuple[str, ...]) -> None:
    output = cli(data_dir, "replay", *args, code=2)
    assert "--at" in output


def test_cli_replay_at_keeps_the_events_by_type(data_dir: Path) -> None:
    shown = json.loads(cli(data_dir, "monitor", "show", "--json"))
    end = json.loads(cli(data_dir, "replay", "--at", "2100-01-01T00:00:00Z", "--json"))
    assert end["events"] == shown["events"]
