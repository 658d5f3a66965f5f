"""`fundpool demo` and the reusable `build_demo_ledger`."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fundpool.cli.demo import (
    DEMO_ASSETS,
    DEMO_START_US,
    DemoRun,
    asset_sums,
    build_demo_ledger,
    pool_address,
    pool_rows,
)
from fundpool.cli.main import app
from fundpool.core.clock import ManualClock, Uuid7Ids
from fundpool.core.ledger.model import Balance, PendingState
from fundpool.ledger.service import Ledger
from fundpool.ledger.verify import verify
from fundpool.stores.sqlite import SqliteStore

runner = CliRunner(env={"FUNDPOOL_DB_URL": None, "FUNDPOOL_DATA_DIR": None})


def run_demo(data_dir: Path, *extra: str, code: int = 0) -> str:
    result = runner.invoke(
        app, ["demo", "--data-dir", str(data_dir), "--transactions", "400", "--seed", "3", *extra]
    )
    assert result.exit_code == code, (result.stdout, result.stderr)
    assert "Traceback" not in result.output
    return result.stdout


@pytest.fixture
def demo_store(tmp_path: Path) -> Iterator[tuple[SqliteStore, str]]:
    output = run_demo(tmp_path / "demo")
    store = SqliteStore.in_data_dir(tmp_path / "demo")
    yield store, output
    store.close()


def build(seed: int, transactions: int) -> tuple[SqliteStore, DemoRun]:
    store = SqliteStore(":memory:")
    store.initialise()
    clock = ManualClock(DEMO_START_US)
    ledger = Ledger(store, clock, Uuid7Ids.seeded(seed))
    return store, build_demo_ledger(ledger, random.Random(seed), clock, transactions)


def test_demo_prints_the_pool_table_and_verifies(demo_store: tuple[SqliteStore, str]) -> None:
    store, output = demo_store
    assert "demo ledger:" in output
    assert "(new)" in output
    for heading in ("available", "locked", "in transit", "pending settlement", "TOTAL",
                    "fee income", "journal entries", "head hash", "verify"):
        assert heading in output
    head = store.head()
    assert head.hash.hex() in output
    assert f"journal entries    {head.seq}" in output
    assert "ok:" in output
    assert "400 submitted" in output
    assert "0 rejected" in output
    for demo in DEMO_ASSETS:
        assert demo.asset.code in output
        for channel in demo.channels:
            assert channel.name in output
    assert verify(store).ok


def test_demo_balances_add_up(demo_store: tuple[SqliteStore, str]) -> None:
    store, output = demo_store
    sums = asset_sums(store)
    assert set(sums) == {demo.asset.code for demo in DEMO_ASSETS}
    for code, total in sums.items():
        # Double entry: every asset's balances over all accounts (world included) add up to 0.
        assert total.posted == 0, code
        assert total.pending_out == total.pending_in, code

    rows = pool_rows(store)
    totals = [row for row in rows if row.channel is None]
    assert [row.asset.code for row in totals] == [demo.asset.code for demo in DEMO_ASSETS]
    balances = store.balances()
    for row in rows:
        assert row.total == row.available + row.locked + row.in_transit + row.pending_settlement
        assert row.total > 0
        if row.channel is not None:
            address = pool_address(row.asset, row.channel, "available")
            assert row.available == balances.get((address, row.asset.code), Balance()).posted
    for total in totals:
        channels = [r for r in rows if r.asset == total.asset and r.channel is not None]
        assert total.total == sum(r.total for r in channels)
        assert total.fees == sum(r.fees for r in channels)
        assert total.fees > 0
        # The printed TOTAL is the exact figure at the asset's scale.
        assert total.asset.format(total.total) in output


def test_demo_is_rerunnable_and_starts_fresh(tmp_path: Path) -> None:
    first = run_demo(tmp_path / "demo")
    second = run_demo(tmp_path / "demo")
    assert "previous demo ledger was deleted" in second
    store = SqliteStore.in_data_dir(tmp_path / "demo")
    try:
        head = store.head()
        # Same seed, fresh file: the same journal, not a second day appended to the first.
        assert head.hash.hex() in first
        assert head.hash.hex() in second
        assert verify(store).ok
    finally:
        store.close()


def test_demo_refuses_to_delete_a_ledger_it_did_not_make(tmp_path: Path) -> None:
    data_dir = tmp_path / "real"
    assert runner.invoke(app, ["ledger", "init", "--data-dir", str(data_dir)]).exit_code == 0
    result = runner.invoke(app, ["ledger", "asset", "USD", "--scale", "2", "--kind", "fiat",
                                 "--data-dir", str(data_dir)])
    assert result.exit_code == 0
    run_demo(data_dir, code=2)
    store = SqliteStore.in_data_dir(data_dir)
    try:
        assert store.head().seq == 1  # untouched
    finally:
        store.close()
    assert "previous demo ledger was deleted" in run_demo(data_dir, "--force")


def test_build_demo_ledger_is_deterministic_and_rejects_nothing() -> None:
    store, run = build(11, 1_500)
    try:
        assert run.commands == 1_500
        assert not run.rejected
        assert run.replayed > 0
        assert {"deposit", "payout", "rebalance", "review_hold_expiring",
                "review_hold_open"} <= set(run.flows)
        assert DEMO_START_US <= run.started_us < run.ended_us <= DEMO_START_US + 86_400_000_000
        states = {p.state for p in store.pendings()}
        assert states == set(PendingState)
        assert any(e.kind == "transfer" and b'"reverses"' in e.canonical for e in store.entries())
        assert verify(store).ok
        head = store.head()
    finally:
        store.close()
    again, _ = build(11, 1_500)
    other, _ = build(12, 1_500)
    try:
        assert again.head() == head
        assert other.head() != head
    finally:
        again.close()
        other.close()


def test_build_demo_ledger_with_few_transactions() -> None:
    for transactions in (1, 7, 30):
        store, run = build(5, transactions)
        try:
            assert run.commands == transactions
            assert not run.rejected
            assert verify(store).ok
        finally:
            store.close()
    with pytest.raises(ValueError, match="at least one"):
        build(5, 0)
