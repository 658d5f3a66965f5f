"""`fundpool simulate`: the traffic simulator through the real CLI."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import threading
import time
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from fundpool.cli.main import app
from fundpool.cli.options import parse_duration, parse_rate
from fundpool.cli.simulate import AFTER_HEAD_US, SIM_START_US, Settings, start_clock
from fundpool.ledger.verify import verify
from fundpool.payments.model import PaymentKind
from fundpool.sim import pace
from fundpool.stores.sqlite import SqliteStore
from tests.conftest import PG_URL, new_pg_schema, require_postgres
from tests.waiting import wait_until

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "pool.toml"
runner = CliRunner(env={"FUNDPOOL_DB_URL": None, "FUNDPOOL_DATA_DIR": None,
                        "FUNDPOOL_CONFIG": None})
# Small enough to keep the suite quick, large enough for every kind and pattern to show up.
SMALL = ("--rate", "50/s", "--duration", "10s")
# The live run that Ctrl-C stops: it would run LIVE_RUN_S on the wall clock if it did not stop.
LIVE_RUN_S = 60
RUN_STARTS_S_MAX = 45.0
RUNNING_PAYMENTS_MIN = 20


def simulate(data: Path, *args: str, code: int = 0) -> str:
    result = runner.invoke(
        app, ["simulate", "--fast", "--config", str(EXAMPLE), "--data-dir", str(data), *args]
    )
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    return result.stdout if code == 0 else result.output


def summary(data: Path, seed: int) -> dict[str, object]:
    document: dict[str, object] = json.loads(
        simulate(data, *SMALL, "--seed", str(seed), "--json")
    )
    return document


def test_a_fast_run_is_deterministic_under_its_seed(tmp_path: Path) -> None:
    first = summary(tmp_path / "a", 7)
    again = summary(tmp_path / "b", 7)
    other = summary(tmp_path / "c", 8)
    assert first["head_hash"] == again["head_hash"]
    assert first["created"] == again["created"]
    assert first["outcomes"] == again["outcomes"]
    assert first["savings"] == again["savings"]
    assert other["head_hash"] != first["head_hash"]
    store = SqliteStore.in_data_dir(tmp_path / "a")
    try:
        assert store.head().hash.hex() == first["head_hash"]
    finally:
        store.close()


def test_the_json_summary_has_every_figure(tmp_path: Path) -> None:
    doc = summary(tmp_path / "data", 7)
    assert {"mode", "seed", "rate_per_s", "duration_s", "speed", "store", "pool", "started_at",
            "ended_at", "created", "refused", "patterns", "outcomes", "steps", "states",
            "batches", "failovers", "approvals", "savings", "verify", "head_hash"} <= set(doc)
    assert (doc["mode"], doc["seed"], doc["rate_per_s"], doc["duration_s"], doc["speed"]) == (
        "fast", 7, 50.0, 10.0, 60.0)
    assert doc["earlier_payments"] == 0
    assert doc["interrupted"] is False
    # A fast run on an empty ledger starts on the fixed instant, and covers duration x speed.
    assert doc["started_at"] == "2026-11-24T09:00:00.000000Z"
    assert doc["ended_at"] == "2026-11-24T09:10:00.000000Z"
    created = doc["created"]
    assert isinstance(created, dict)
    assert set(created) == {kind.value for kind in PaymentKind}
    assert all(n > 0 for n in created.values())
    assert 400 <= sum(created.values()) <= 600  # 50/s for 10 s, plus the mules' payouts
    assert set(doc["patterns"]) == {  # type: ignore[arg-type]
        "velocity_burst", "structuring", "round_amount_new_payee", "mule"}
    outcomes = doc["outcomes"]
    assert isinstance(outcomes, dict)
    assert outcomes["applied"] > 0
    states = doc["states"]
    assert isinstance(states, dict)
    assert sum(states.values()) == sum(created.values())
    assert states["settled"] > 0
    assert isinstance(doc["batches"], int)
    assert doc["batches"] > 0
    assert isinstance(doc["approvals"], int)
    assert doc["approvals"] > 0
    savings = doc["savings"]
    assert isinstance(savings, list)
    assert {row["channel"] for row in savings} >= {"bank-a", "sepa", "tron"}
    assert sum(row["batches"] for row in savings) == doc["batches"]
    assert any(int(row["saved_minor"]) > 0 for row in savings)
    bank = next(row for row in savings if row["channel"] == "bank-a")
    assert set(bank) == {"channel", "asset", "batches", "fee", "fee_minor", "saved",
                         "saved_minor"}
    verified = doc["verify"]
    assert isinstance(verified, dict)
    assert verified["ok"] is True
    assert verified["problem"] is None
    assert verified["head_hash"] == doc["head_hash"]


def test_the_human_summary_shows_the_panel_and_verifies(tmp_path: Path) -> None:
    out = simulate(tmp_path / "data", *SMALL)
    for text in ("fundpool simulate: pool main, fast", "created", "states", "outcomes",
                 "batches", "failovers", "pool in USD", "TOTAL", "in transit",
                 "pending settlement", "batches sent and fees saved by batching", "bank-a"):
        assert text in out
    assert "verify: ok" in out
    store = SqliteStore.in_data_dir(tmp_path / "data")
    try:
        assert store.head().hash.hex() in out
        assert verify(store).ok
    finally:
        store.close()


@pytest.mark.parametrize(
    ("option", "value", "says"),
    [
        ("--rate", "fast", "is not a rate"),
        ("--rate", "200/d", "is not a rate"),
        ("--rate", "-5/s", "is not a rate"),
        ("--rate", "0/s", "must be above 0"),
        ("--rate", "1e3", "is not a rate"),
        ("--rate", "2000000/m", "at most 20000/s"),
        ("--duration", "soon", "is not a duration"),
        ("--duration", "0s", "must be above 0"),
        ("--duration", "2d", "is not a duration"),
        ("--duration", "25h", "at most 86400 s"),
        ("--duration", "-30s", "is not a duration"),
    ],
)
def test_a_bad_rate_or_duration_is_a_usage_error(
    tmp_path: Path, option: str, value: str, says: str
) -> None:
    out = simulate(tmp_path / "data", option, value, code=2)
    # The message is boxed and wrapped to the terminal's width: read it as one line.
    said = " ".join(out.replace("│", " ").split())
    assert f"Invalid value for '{option}'" in said
    assert says in said
    assert not (tmp_path / "data").exists()  # refused before the store is opened


def test_rates_and_durations_parse_exactly() -> None:
    assert parse_rate("200/s") == 200
    assert parse_rate("200") == 200
    assert parse_rate(" 6000/m ") == 100
    assert parse_rate("90000/h") == 25
    assert parse_rate("0.5/s") == 0.5
    assert parse_duration("30s") == 30
    assert parse_duration("5m") == 300
    assert parse_duration("1h") == 3_600
    assert parse_duration("90") == 90
    assert parse_duration("2.5min") == 150
    with pytest.raises(typer.BadParameter, match="not a duration") as refused:
        parse_duration("later", option="--wait")
    assert refused.value.param_hint == "'--wait'"


def test_the_server_reads_rates_without_the_cli() -> None:
    """`serve --simulate` (settings.simulate) reads its rate with sim/pace.py: a bad one is a
    ValueError saying how to write it, the CLI's usage error only wraps it."""
    assert pace.parse_rate("50/s") == 50
    with pytest.raises(ValueError, match="not a rate; write payments a second as 200/s"):
        pace.parse_rate("fast")
    with pytest.raises(ValueError, match="at most 20000/s"):
        pace.parse_rate("20001/s")
    with pytest.raises(typer.BadParameter, match="not a rate") as refused:
        parse_rate("fast", option="--simulate")
    assert refused.value.param_hint == "'--simulate'"


def test_the_clock_starts_after_the_ledger_head(tmp_path: Path) -> None:
    simulate(tmp_path / "data", "--rate", "10/s", "--duration", "2s")
    store = SqliteStore.in_data_dir(tmp_path / "data")
    try:
        head = store.head()
        assert head.at_us > SIM_START_US
        fast, advance = start_clock(store, Settings(10, 2, 60, 7, fast=True))
        assert fast.now_us() == head.at_us + AFTER_HEAD_US
        assert advance is not None
        advance(1.5)
        assert fast.now_us() == head.at_us + AFTER_HEAD_US + 1_500_000
        before_us = time.time_ns() // 1000
        live, none = start_clock(store, Settings(10, 2, 60, 7, fast=False))
        assert none is None
        assert live.now_us() >= max(head.at_us, before_us)
    finally:
        store.close()


@pytest.mark.postgres
def test_the_same_run_gives_the_same_journal_on_postgresql(tmp_path: Path) -> None:
    require_postgres()
    from fundpool.stores.postgres import PostgresStore

    schema = new_pg_schema()
    separator = "&" if "?" in PG_URL else "?"
    args = ["simulate", "--fast", "--rate", "20/s", "--duration", "5s", "--config",
            str(EXAMPLE), "--json"]
    try:
        result = runner.invoke(app, [*args, "--db-url", f"{PG_URL}{separator}schema={schema}"])
        assert result.exit_code == 0, result.output
        on_postgres = json.loads(result.stdout)
    finally:
        store = PostgresStore(PG_URL, schema=schema)
        store.drop_schema()
        store.close()
    on_sqlite = json.loads(simulate(tmp_path / "data", "--rate", "20/s", "--duration", "5s",
                                    "--json"))
    assert on_postgres["verify"]["ok"] is True
    assert on_postgres["states"] == on_sqlite["states"]
    assert on_postgres["head_hash"] == on_sqlite["head_hash"]


def payments_in(data: Path) -> int:
    """How many payments the store in `data` holds so far (0 before it has its tables)."""
    try:
        with contextlib.closing(sqlite3.connect(
                f"file:{data / 'ledger.sqlite3'}?mode=ro", uri=True, timeout=5)) as connection:
            (count,) = connection.execute("SELECT count(*) FROM payments").fetchone()
    except sqlite3.Error:
        return 0
    return int(count)


def test_ctrl_c_stops_a_live_run_between_steps_and_still_verifies(tmp_path: Path) -> None:
    data = tmp_path / "data"
    default = signal.getsignal(signal.SIGINT)
    failed: list[BaseException] = []
    ended = threading.Event()

    def interrupt_once_running() -> None:
        # Ctrl-C once the run has taken the signal and put payments through (about a second
        # at 20/s), however long opening the pool took on a busy machine.
        try:
            wait_until(lambda: ended.is_set() or (
                signal.getsignal(signal.SIGINT) is not default
                and payments_in(data) >= RUNNING_PAYMENTS_MIN),
                within_s=RUN_STARTS_S_MAX, poll_s=0.05,
                what=f"a live run with {RUNNING_PAYMENTS_MIN} payments")
        except AssertionError as error:
            failed.append(error)
            return
        if not ended.is_set():
            os.kill(os.getpid(), signal.SIGINT)

    interrupt = threading.Thread(target=interrupt_once_running, daemon=True)
    interrupt.start()
    try:
        result = runner.invoke(app, [
            "simulate", "--rate", "20/s", "--duration", f"{LIVE_RUN_S}s", "--config",
            str(EXAMPLE), "--data-dir", str(data), "--json",
        ])
    finally:
        ended.set()
        interrupt.join(timeout=RUN_STARTS_S_MAX)
    assert not failed, failed
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["mode"] == "live"
    assert doc["interrupted"] is True
    assert doc["wall_s"] < LIVE_RUN_S / 2  # stopped, not run to its end
    assert doc["verify"]["ok"] is True
    # What was sent before the stop is recorded with its batch.
    assert sum(row["batches"] for row in doc["savings"]) == doc["batches"]


def test_a_second_run_on_the_same_store_neither_collides_nor_replays(tmp_path: Path) -> None:
    """A run names its idempotency keys and rail references after its start, so a second run
    (even with the same seed) creates its own payments and its rails' reports are its own:
    nothing refused as a conflict, nothing taken for a duplicate."""
    data = tmp_path / "data"
    first = summary(data, 7)
    second = summary(data, 7)
    assert second["earlier_payments"] == sum(
        int(n) for n in dict(first["states"]).values()  # type: ignore[call-overload]
    )
    assert second["refused"] == {}
    assert "duplicate" not in dict(second["outcomes"])  # type: ignore[call-overload]
    assert second["created"] == first["created"]
    verified = second["verify"]
    assert isinstance(verified, dict)
    assert verified["ok"] is True


def test_an_asset_carried_only_by_the_book_rail_is_simulated_without_a_crash(
    tmp_path: Path,
) -> None:
    """A book rail carries no deposit and no payout: its only asset is left out of the draws
    (it used to crash the simulator choosing from an empty list of rails)."""
    text = EXAMPLE.read_text(encoding="utf-8")
    text = text.replace("[[owners]]", '[[assets]]\ncode = "GBP"\nscale = 2\nkind = "fiat"\n\n'
                        "[[owners]]", 1)
    text = text.replace('assets = ["USD", "EUR", "USDT", "ETH", "E-CNY"]',
                        'assets = ["USD", "EUR", "USDT", "ETH", "E-CNY", "GBP"]')
    text = text.replace('rates = "rates.toml"',
                        f'rates = "{(EXAMPLE.parent / "rates.toml").as_posix()}"')
    text = text.replace('treasury = "treasury.toml"',
                        f'treasury = "{(EXAMPLE.parent / "treasury.toml").as_posix()}"')
    config = tmp_path / "gbp.toml"
    config.write_text(text, encoding="utf-8")
    result = runner.invoke(app, ["simulate", "--fast", *SMALL, "--config", str(config),
                                 "--data-dir", str(tmp_path / "data"), "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["verify"]["ok"] is True
    assert doc["refused"] == {}
