"""`fundpool demo` and the reusable `build_demo_ledger`."""

from __future__ import annotations

import io
import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from fundpool.cli.demo import (
    DEFAULT_FLOWS,
    DEMO_CONFIG,
    DEMO_START_US,
    DemoRun,
    asset_sums,
    build_demo_ledger,
    demo_plan,
    load_demo_config,
    print_demo_report,
)
from fundpool.cli.main import app
from fundpool.core.clock import ManualClock, Uuid7Ids
from fundpool.core.ledger.model import Balance, PendingState
from fundpool.core.money import Asset
from fundpool.ledger.service import Ledger
from fundpool.ledger.verify import verify
from fundpool.pool.accounts import TOTAL_STATES, PoolState, pool_account
from fundpool.pool.config import FundpoolConfig, load_config
from fundpool.pool.view import Figures, PoolView, pool_view
from fundpool.stores.sqlite import SqliteStore

runner = CliRunner(env={"FUNDPOOL_DB_URL": None, "FUNDPOOL_DATA_DIR": None})

CONFIG = load_demo_config()
POOL = CONFIG.pool()


def run_demo(data_dir: Path, *extra: str, code: int = 0) -> str:
    result = runner.invoke(
        app, ["demo", "--data-dir", str(data_dir), "--transactions", "400", "--seed", "3", *extra]
    )
    assert result.exit_code == code, (result.stdout, result.stderr)
    assert "Traceback" not in result.output
    return result.stdout if code == 0 else result.output


@pytest.fixture
def demo_store(tmp_path: Path) -> Iterator[tuple[SqliteStore, str]]:
    output = run_demo(tmp_path / "demo")
    store = SqliteStore.in_data_dir(tmp_path / "demo")
    yield store, output
    store.close()


def build(
    seed: int, transactions: int, config: FundpoolConfig = CONFIG, pool: str | None = None
) -> tuple[SqliteStore, DemoRun]:
    store = SqliteStore(":memory:")
    store.initialise()
    clock = ManualClock(DEMO_START_US)
    ledger = Ledger(store, clock, Uuid7Ids.seeded(seed))
    run = build_demo_ledger(ledger, config, random.Random(seed), clock, transactions, pool=pool)
    return store, run


def view_of(
    store: SqliteStore, config: FundpoolConfig = CONFIG, pool: str | None = None
) -> PoolView:
    pool_config = config.pool(pool)
    return pool_view(store, config, pool_config, config.rates_for(pool_config))


def table_rows(output: str) -> dict[tuple[str, str], list[str]]:
    """The printed pool table: (asset, channel) -> the figure cells, in column order."""
    rows: dict[tuple[str, str], list[str]] = {}
    for line in output.splitlines():
        if not line.startswith("│"):
            continue
        cells = [cell.strip() for cell in line.strip().strip("│").split("│")]
        assert (cells[0], cells[1]) not in rows, line
        rows[cells[0], cells[1]] = cells[2:]
    return rows


def reporting_line(output: str, code: str) -> str:
    (line,) = [line for line in output.splitlines() if line.startswith(f"TOTAL in {code}: ")]
    return line.removeprefix(f"TOTAL in {code}: ").split(" ")[0]


def figure_cells(figures: Figures, asset: Asset) -> list[str]:
    """available, locked, in transit, pending settlement, TOTAL, fee income, as printed."""
    return [asset.format(figures.available), asset.format(figures.locked),
            asset.format(figures.in_transit), asset.format(figures.pending_settlement),
            asset.format(figures.total), asset.format(figures.fees)]


def assert_output_is_the_view(output: str, view: PoolView) -> None:
    """Every figure printed is the view's, formatted at its asset's scale; nothing else."""
    rows = table_rows(output)
    reporting = view.reporting_currency
    expected: dict[tuple[str, str], list[str]] = {}
    for asset_view in view.assets:
        asset, code = asset_view.asset, asset_view.asset.code
        for channel, figures in asset_view.by_channel.items():
            expected[code, channel] = [*figure_cells(figures, asset), ""]
        converted = asset_view.reporting
        expected[code, "all channels"] = [
            *figure_cells(asset_view.total, asset),
            "no rate" if converted is None else reporting.format(converted.total),
        ]
    assert rows == expected
    assert reporting_line(output, reporting.code) == reporting.format(view.reporting_total.total)
    if view.missing_rates:
        assert f"missing rates: {', '.join(view.missing_rates)}" in output
    else:
        assert "missing rates" not in output


def assert_view_adds_up(view: PoolView) -> None:
    converted_total = Figures()
    for asset_view in view.assets:
        for figures in (*asset_view.by_channel.values(), asset_view.total):
            # TOTAL is the four states, fee income beside it.
            assert figures.total == (figures.available + figures.locked + figures.in_transit
                                     + figures.pending_settlement)
        assert asset_view.total == sum(asset_view.by_channel.values(), Figures())
        if asset_view.reporting is not None:
            converted_total = converted_total + asset_view.reporting
        else:
            assert asset_view.asset.code in view.missing_rates
    # The reporting currency total is the converted per-asset totals added up.
    assert view.reporting_total == converted_total
    assert view.reporting_total.total == sum(
        a.reporting.total for a in view.assets if a.reporting is not None
    )


def test_demo_prints_the_pool_view_and_verifies(demo_store: tuple[SqliteStore, str]) -> None:
    store, output = demo_store
    assert "demo ledger:" in output
    assert "(new)" in output
    for heading in ("available", "locked", "in transit", "pending settlement", "TOTAL",
                    "fee income", "TOTAL in USD", "journal entries", "head hash", "verify"):
        assert heading in output
    assert "held by pending" not in output
    assert str(DEMO_CONFIG) in output
    head = store.head()
    assert head.hash.hex() in output
    assert f"journal entries    {head.seq}" in output
    assert "ok:" in output
    assert "400 submitted" in output
    assert "0 rejected" in output
    assert "flow defaults" not in output  # the sample pool has parameters for all it holds
    assert "try: fundpool ledger balance pool:main:usd:bank-a:available" in output
    view = view_of(store)
    assert [a.asset.code for a in view.assets] == ["USD", "EUR", "USDT", "ETH", "E-CNY"]
    assert not view.missing_rates
    assert_output_is_the_view(output, view)
    assert_view_adds_up(view)
    assert verify(store).ok


def test_demo_balances_add_up(demo_store: tuple[SqliteStore, str]) -> None:
    store, _ = demo_store
    sums = asset_sums(store)
    assert set(sums) == {asset.code for asset in CONFIG.assets}
    for code, total in sums.items():
        # Double entry: every asset's balances over all accounts (world included) add up to 0.
        assert total.posted == 0, code
        assert total.pending_out == total.pending_in, code

    view = view_of(store)
    balances = store.balances()
    for asset_view in view.assets:
        code = asset_view.asset.code
        assert asset_view.total.total > 0
        assert asset_view.total.fees > 0
        for channel, figures in asset_view.by_channel.items():
            account = {
                state: balances.get((pool_account(POOL.id, code, channel, state), code), Balance())
                for state in PoolState
            }
            assert figures.total > 0
            assert figures.total == sum(account[s].posted for s in TOTAL_STATES)
            assert figures.available == account[PoolState.AVAILABLE].available
            assert figures.fees == account[PoolState.FEES].posted


def test_print_demo_report_returns_the_pool_view() -> None:
    store, run = build(4, 300)
    try:
        buffer = io.StringIO()
        console = Console(file=buffer, width=1_000, highlight=False, markup=False, emoji=False)
        rates = CONFIG.rates_for(POOL)
        returned = print_demo_report(console, store, run, verify(store), config=CONFIG,
                                     pool=POOL, rates=rates)
        view = view_of(store)
        assert returned == view
        assert_output_is_the_view(buffer.getvalue(), view)
        assert_view_adds_up(view)
    finally:
        store.close()


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


SMALL_POOLS = """
[[assets]]
code = "USD"
scale = 2
kind = "fiat"

[[assets]]
code = "GBP"
scale = 2
kind = "fiat"

[[assets]]
code = "SOL"
scale = 9
kind = "crypto"

[[channels]]
id = "bank-a"
kind = "bank_wire"
assets = ["USD"]

[[channels]]
id = "fps"
kind = "instant_credit"
assets = ["GBP", "USD"]

[[channels]]
id = "sol"
kind = "stablecoin_rail"
assets = ["SOL"]

[[pools]]
id = "alpha"
reporting_currency = "USD"
channels = ["bank-a", "fps", "sol"]
rates = "rates.toml"

[[pools]]
id = "beta"
reporting_currency = "USD"
channels = ["bank-a"]
"""


@pytest.fixture
def small_config(tmp_path: Path) -> Path:
    path = tmp_path / "conf" / "pools.toml"
    path.parent.mkdir()
    path.write_text(SMALL_POOLS)
    # No rate for SOL: it is reported as missing, not counted as zero.
    (path.parent / "rates.toml").write_text('[rates]\n"GBP/USD" = "1.2650"\n')
    return path


def test_demo_plan_falls_back_to_defaults_from_the_scale(small_config: Path) -> None:
    config = load_config(small_config)
    plan = demo_plan(config, config.pool("alpha"))
    assert [(p.asset.code, [c.channel for c in p.channels]) for p in plan.assets] == [
        ("USD", ["bank-a", "fps"]), ("GBP", ["fps"]), ("SOL", ["sol"]),
    ]
    # USD has demo flow parameters; GBP and SOL do not.
    assert plan.defaulted == ("GBP", "SOL")
    sol = plan.assets[2]
    assert (sol.amount_min, sol.amount_max) == (10**9, 10_000 * 10**9)
    assert sol.opening_float == 1_000_000 * 10**9
    assert sol.weight == DEFAULT_FLOWS.weight
    # fees are the configuration's: a channel without a schedule charges nothing
    assert sol.channels[0].fee(10**12) == 0
    usd_bank = plan.assets[0].channels[0]
    assert usd_bank.fee(100_000) == config.channel("bank-a").fee_schedule("USD").outbound_fee(
        100_000
    )


def test_demo_with_another_config(tmp_path: Path, small_config: Path) -> None:
    data_dir = tmp_path / "demo"
    several = run_demo(data_dir, "--config", str(small_config), code=2)
    assert "several pools" in several
    assert not (data_dir / "ledger.sqlite3").exists()

    output = run_demo(data_dir, "--config", str(small_config), "--pool", "alpha")
    assert "0 rejected" in output
    assert "flow defaults" in output
    assert "SOL" in output.split("flow defaults", 1)[1].splitlines()[0]
    assert "missing rates: SOL" in output
    store = SqliteStore.in_data_dir(data_dir)
    try:
        view = view_of(store, load_config(small_config), "alpha")
        assert view.missing_rates == ("SOL",)
        assert view.asset("SOL").reporting is None
        assert view.asset("SOL").total.total > 0
        assert_output_is_the_view(output, view)
        assert_view_adds_up(view)
        assert table_rows(output)["SOL", "all channels"][-1] == "no rate"
        assert verify(store).ok
        head = store.head()
    finally:
        store.close()

    # A configuration that cannot be read fails before the previous demo ledger is touched.
    missing = run_demo(data_dir, "--config", str(tmp_path / "nowhere.toml"), code=2)
    assert "invalid_config" in missing
    store = SqliteStore.in_data_dir(data_dir)
    try:
        assert store.head() == head
    finally:
        store.close()


def test_build_demo_ledger_is_deterministic_and_rejects_nothing() -> None:
    store, run = build(11, 1_500)
    try:
        assert run.commands == 1_500
        assert run.pool == "main"
        assert not run.rejected
        assert not run.defaulted
        assert run.replayed > 0
        assert {"deposit", "payout", "rebalance", "review_hold_expiring",
                "review_hold_open"} <= set(run.flows)
        assert DEMO_START_US <= run.started_us < run.ended_us <= DEMO_START_US + 86_400_000_000
        states = {p.state for p in store.pendings()}
        assert states == set(PendingState)
        assert any(e.kind == "transfer" and b'"reverses"' in e.canonical for e in store.entries())
        assert verify(store).ok
        assert_view_adds_up(view_of(store))
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
