"""`fundpool fx | split | net | liquidity | stress` on a local store, as a treasury operator
runs them, each with `--json`: a quote accepted and the P&L, a split and a waterfall preview,
a netting cycle, a rebalancing plan that its own proposer cannot approve, sweeps and a credit
line, a stress test; refusals exit 2 with their code and change nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from fundpool.cli.main import app
from fundpool.core.ledger.model import Posting
from fundpool.ledger.service import Ledger
from fundpool.pool.accounts import PoolState, pool_account, world_account
from fundpool.runtime import SystemClock, system_ids
from fundpool.stores.sqlite import SqliteStore

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "pool.toml"
runner = CliRunner()


def run(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result.stdout


def run_json(*args: str) -> Any:
    return json.loads(run(*args, "--json"))


def fund(data: str, channel: str, asset: str, amount_minor: int) -> None:
    store = SqliteStore(Path(data) / "ledger.sqlite3")
    Ledger(store, SystemClock(), system_ids()).transfer([Posting(
        world_account(channel), pool_account("main", asset, channel, PoolState.AVAILABLE),
        asset, amount_minor)])
    store.close()


def test_the_treasury_commands(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    local = ("--config", str(EXAMPLE), "--data-dir", data)
    run("pool", "init", *local)
    fund(data, "sepa", "EUR", 10_000_00)
    fund(data, "rtp", "USD", 9_000_000_00)
    fund(data, "bank-a", "USD", 1_000_000_00)

    rates = run_json("fx", "rates", *local)
    assert {"pair": "EUR/USD", "mid_rate": "1.0843"} in rates["rates"]
    quote = run_json("fx", "quote", "--sell", "EUR", "--buy", "USD", "--sell-amount",
                     "1000.00", "--accept", *local)
    assert (quote["state"], quote["buy_amount"]) == ("executed", "1081.58")
    assert "executed" in run("fx", "quotes", *local)
    assert run_json("fx", "pnl", *local)["pairs"][0]["realised"] == "2.72"
    refused = runner.invoke(app, ["fx", "quote", "--sell", "EUR", "--buy", "ETH",
                                  "--sell-amount", "1.00", *local])
    assert refused.exit_code == 2
    assert "fx_rate_unknown" in refused.output

    shares = run_json("split", "preview", "--asset", "USD", "--amount", "100.00", "--rule",
                      "marketplace", *local)["shares"]
    assert [s["amount"] for s in shares] == ["3.20", "1.00", "0.50", "95.30"]
    fall = tmp_path / "waterfall.json"
    fall.write_text(json.dumps({
        "asset": "USD", "available": "100.00", "tiers": [{"name": "senior"}],
        "obligations": [{"id": "a", "creditor": "x", "tier": "senior", "amount": "150.00"}]}))
    report = run_json("split", "waterfall", str(fall), *local)
    assert report["obligations"][0]["paid"] == "100.00"
    assert report["obligations"][0]["owed"] == "50.00"

    run_json("net", "add", "--payer", "m42", "--payee", "m77", "--asset", "USD", "--amount",
             "10.00", *local)
    run_json("net", "add", "--payer", "m77", "--payee", "m42", "--asset", "USD", "--amount",
             "10.00", *local)
    cycle = run_json("net", "cycle", "--asset", "USD", *local)
    assert (cycle["settled"], cycle["efficiency"]) == (2, "100.00 %")
    assert run_json("net", "cycles", *local)["cycles"][0]["id"] == cycle["id"]
    unknown = runner.invoke(app, ["net", "add", "--payer", "m42", "--payee", "ghost",
                                  "--asset", "USD", "--amount", "1.00", *local])
    assert unknown.exit_code == 2
    assert "unknown_participant" in unknown.output

    status = run_json("liquidity", "status", *local)["positions"]
    assert next(p for p in status if p["channel"] == "rtp")["status"] == "above_max"
    plan = run_json("liquidity", "plan", *local)
    assert plan["state"] == "proposed"
    # The CLI acts as the operating-system user: the proposer cannot approve its own plan.
    own = runner.invoke(app, ["liquidity", "approve", plan["id"], *local])
    assert own.exit_code == 2
    assert "plan_self_approval" in own.output
    rejected = run_json("liquidity", "reject", plan["id"], "--note", "not today", *local)
    assert rejected["state"] == "rejected"
    sweeps = run_json("liquidity", "sweep", *local)["runs"]
    assert {r["rule"] for r in sweeps} == {"usd-rtp-collar", "eur-sepa-collar"}
    credit = run_json("liquidity", "credit", "--run", *local)
    assert credit["credit_lines"][0]["owed"] == "2000000.00"  # bank-a under its minimum

    stress = run_json("stress", "run", "--withdraw", "30", "--hours", "24", "--outage",
                      "rtp:2-10", "--shock", "EUR=-20", *local)
    assert len(stress["hours"]) == 24
    assert stress["scenario"] == "cli"
    bad = runner.invoke(app, ["stress", "run", "--withdraw", "300", *local])
    assert bad.exit_code == 2
    assert "invalid_scenario" in bad.output
