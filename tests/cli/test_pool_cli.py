"""`fundpool pool init | view` through the real CLI."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from fundpool.cli.main import app
from fundpool.core.clock import ManualClock, Uuid7Ids
from fundpool.core.ledger.model import Posting
from fundpool.ledger.service import Ledger
from fundpool.pool.config import load_config
from fundpool.pool.view import pool_view
from fundpool.stores.sqlite import SqliteStore

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "pool.toml"
runner = CliRunner()


def run(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result.stdout


def test_init_is_idempotent_and_view_matches_the_pool_view(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    first = json.loads(run("pool", "init", "--config", str(EXAMPLE), "--data-dir", data, "--json"))
    assert first["added"] == 98
    assert first["unchanged"] == 0
    again = json.loads(run("pool", "init", "--config", str(EXAMPLE), "--data-dir", data, "--json"))
    assert again["added"] == 0
    assert again["unchanged"] == 98

    store = SqliteStore(Path(data) / "ledger.sqlite3")
    ledger = Ledger(store, ManualClock(), Uuid7Ids.seeded(3))
    ledger.transfer([Posting("world:eth-l1", "pool:main:eth:eth-l1:available", "ETH", 3 * 10**18)])
    settling = "pool:main:usd:bank-a:pending_settlement"
    ledger.transfer([Posting("world:bank-a", settling, "USD", 999)])
    ledger.create_pending(
        Posting("pool:main:eth:eth-l1:available", "world:eth-l1", "ETH", 10**18), timeout_s=60
    )
    config = load_config(EXAMPLE)
    pool = config.pool("main")
    expected = pool_view(store, config, pool, config.rates_for(pool))
    store.close()

    doc = json.loads(run("pool", "view", "--config", str(EXAMPLE), "--data-dir", data, "--json"))
    eth = next(a for a in doc["assets"] if a["asset"] == "ETH")
    assert eth["total"]["available"] == "2.000000000000000000"
    assert eth["total"]["locked"] == "1.000000000000000000"
    assert eth["total"]["total_minor"] == str(3 * 10**18)
    assert doc["reporting_total"]["total_minor"] == str(expected.reporting_total.total)
    # 3 ETH at 3120.55 and 9.99 USD pending settlement
    assert doc["reporting_total"]["total"] == "9371.64"
    assert doc["missing_rates"] == []
    human = run("pool", "view", "--config", str(EXAMPLE), "--data-dir", data)
    assert "9371.64" in human
    assert "Ethereum L1" in human


def test_a_bad_configuration_is_a_clear_error_and_changes_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(EXAMPLE.read_text().replace('assets = ["EUR"]', 'assets = ["GBP"]'))
    data = str(tmp_path / "data")
    out = run("pool", "init", "--config", str(bad), "--data-dir", data, "--json", code=2)
    error = json.loads(out)
    assert error["code"] == "invalid_config"
    assert "GBP" in error["detail"]
    assert not (Path(data) / "ledger.sqlite3").exists()
    missing = run("pool", "view", "--config", str(tmp_path / "none.toml"), "--data-dir", data,
                  "--json", code=2)
    assert json.loads(missing)["code"] in ("invalid_config", "store_not_initialised")


def test_view_of_an_unknown_pool(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    run("pool", "init", "--config", str(EXAMPLE), "--data-dir", data)
    out = run("pool", "view", "--pool", "nope", "--config", str(EXAMPLE), "--data-dir", data,
              "--json", code=2)
    assert json.loads(out)["code"] == "invalid_config"
