"""`fundpool demo`: the traffic simulator on a fresh sample pool (run --fast here)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fundpool.cli.demo import DEMO_CONFIG
from fundpool.cli.main import app
from fundpool.ledger.verify import verify
from fundpool.pool.config import load_config
from fundpool.pool.view import pool_view
from fundpool.stores.sqlite import SqliteStore
from tests.waiting import wait_until

runner = CliRunner(env={"FUNDPOOL_DB_URL": None, "FUNDPOOL_DATA_DIR": None,
                        "FUNDPOOL_CONFIG": None})
QUICK = ("--fast", "--rate", "50/s", "--duration", "8s", "--seed", "3")
# The served demo runs until Ctrl-C (130) or its --duration; the bounds are long enough for
# its start-up on a busy machine (12 s seen with both cores busy) and the checks.
DEMO_SERVES_S = 40
DEMO_STARTS_S_MAX = 30.0
DEMO_STOPS_S = 60


def run_demo(data_dir: Path, *extra: str, code: int = 0) -> str:
    result = runner.invoke(app, ["demo", "--data-dir", str(data_dir), *QUICK, *extra])
    assert result.exit_code == code, (result.stdout, result.stderr)
    assert "Traceback" not in result.output
    return result.stdout if code == 0 else result.output


def head_hash(output: str) -> str:
    (found,) = re.findall(r"verify: ok \([\d,]+ entries: .*head ([0-9a-f]{64})\)", output)
    return found


def test_demo_runs_the_simulator_and_shows_what_it_left(tmp_path: Path) -> None:
    data_dir = tmp_path / "demo"
    output = run_demo(data_dir)
    assert f"demo data directory: {data_dir.resolve()} (new)" in output
    for heading in (
        "fundpool simulate: pool main, fast",  # the panel's last frame
        "traffic ",
        "pool main by state (TOTAL = available + locked + in transit + pending settlement)",
        "routing share: the router's choices",
        "batches sent and fees saved by batching",
        "merchant advances (instant settlement)",
        "done in",
    ):
        assert heading in output, heading
    pool_rows = {tuple(cell.strip() for cell in line.strip("│ ").split("│")[:2])
                 for line in output.splitlines() if line.startswith("│ ")}
    assert {("USD", "bank-a"), ("USD", "card-acq"), ("EUR", "sepa"), ("USDT", "tron"),
            ("ETH", "arb-l2"), ("E-CNY", "book"), ("ETH", "all channels"),
            ("in USD", "all assets")} <= pool_rows
    store = SqliteStore.in_data_dir(data_dir)
    try:
        assert head_hash(output) == store.head().hash.hex()
        assert verify(store).ok
        config = load_config(DEMO_CONFIG)
        pool = config.pool()
        view = pool_view(store, config, pool, config.rates_for(pool))
    finally:
        store.close()
    # The pool table's last row is the pool in the reporting currency, as the view adds it up.
    (in_usd,) = [line for line in output.splitlines() if "│ in USD" in line]
    assert view.reporting_currency.format(view.reporting_total.total) in in_usd
    assert "all merchants" in output  # instant settlement's exposure, with its cap
    assert "250000.00" in output


def test_demo_starts_fresh_and_is_deterministic_when_fast(tmp_path: Path) -> None:
    first = run_demo(tmp_path / "demo")
    second = run_demo(tmp_path / "demo")
    assert "(wiped: the previous demo ledger was deleted)" in second
    # Same seed, wiped store: the same journal, not a second run appended to the first.
    assert head_hash(second) == head_hash(first)
    other = run_demo(tmp_path / "other", "--seed", "4")
    assert head_hash(other) != head_hash(first)


def test_demo_refuses_to_delete_a_ledger_it_did_not_make(tmp_path: Path) -> None:
    data_dir = tmp_path / "real"
    assert runner.invoke(app, ["ledger", "init", "--data-dir", str(data_dir)]).exit_code == 0
    result = runner.invoke(app, ["ledger", "asset", "USD", "--scale", "2", "--kind", "fiat",
                                 "--data-dir", str(data_dir)])
    assert result.exit_code == 0
    refused = run_demo(data_dir, code=2)
    assert "refusing to delete it" in " ".join(refused.replace("│", " ").split())
    store = SqliteStore.in_data_dir(data_dir)
    try:
        assert store.head().seq == 1  # untouched
    finally:
        store.close()
    assert "(wiped: the previous demo ledger was deleted)" in run_demo(data_dir, "--force")


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


def test_demo_with_another_config(tmp_path: Path, small_config: Path) -> None:
    data_dir = tmp_path / "demo"
    several = run_demo(data_dir, "--config", str(small_config), code=2)
    assert "several pools" in several
    assert not (data_dir / "ledger.sqlite3").exists()

    output = run_demo(data_dir, "--config", str(small_config), "--pool", "alpha")
    assert "fundpool simulate: pool alpha" in output
    assert "no rate to USD for SOL: left out of the USD row" in output
    assert "verify: ok" in output
    store = SqliteStore.in_data_dir(data_dir)
    try:
        head = store.head()
        assert head_hash(output) == head.hash.hex()
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


def test_demo_options_are_checked_before_anything_is_deleted(tmp_path: Path) -> None:
    data_dir = tmp_path / "demo"
    run_demo(data_dir)
    before = (data_dir / "ledger.sqlite3").stat().st_mtime_ns
    out = run_demo(data_dir, "--duration", "forever", code=2)
    assert "Invalid value for '--duration'" in " ".join(out.replace("│", " ").split())
    assert (data_dir / "ledger.sqlite3").stat().st_mtime_ns == before


@pytest.mark.slow
def test_demo_serves_the_console_on_a_live_pool_and_prints_the_sign_ins(tmp_path: Path) -> None:
    """`make demo`'s default: the server with the console and the simulator; it prints the URL
    and a sign-in per role, the pool is alive, and a second demo may wipe what it left."""
    import os
    import signal
    import socket
    import subprocess
    import sys

    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data_dir = tmp_path / "demo"
    fundpool = str(Path(sys.executable).parent / "fundpool")
    env = {k: v for k, v in os.environ.items()
           if k not in ("FUNDPOOL_DB_URL", "FUNDPOOL_DATA_DIR", "FUNDPOOL_CONFIG")}
    command = [fundpool, "demo", "--data-dir", str(data_dir), "--port", str(port)]
    with subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True) as demo:
        base = f"http://127.0.0.1:{port}"

        def cashier_token() -> str | None:
            if demo.poll() is not None:
                pytest.fail(f"the demo ended ({demo.returncode}) before it served:\n"
                            f"{demo.communicate()[0]}")
            try:
                answer = httpx.post(f"{base}/v1/sessions", timeout=5,
                                    json={"username": "cashier",
                                          "password": "cashier-demo-pass"})
                return str(answer.json()["token"])
            except (httpx.HTTPError, KeyError, ValueError):
                return None

        token = wait_until(cashier_token, within_s=DEMO_STARTS_S_MAX,
                           what="the demo's cashier to sign in")
        headers = {"Authorization": f"Bearer {token}"}
        assert httpx.get(f"{base}/console/login", timeout=30).status_code == 200

        def seq() -> int:
            view = httpx.get(f"{base}/v1/pools/main/view", headers=headers, timeout=30).json()
            return int(view["as_of_seq"])

        first = seq()
        wait_until(lambda: seq() > first, within_s=DEMO_SERVES_S, poll_s=0.2,
                   what=f"the simulator to write past entry {first}")
        demo.send_signal(signal.SIGINT)  # Ctrl-C, as its banner says
        output, _ = demo.communicate(timeout=DEMO_STOPS_S)
    assert demo.returncode == 130, output  # stopped by Ctrl-C, after a graceful shutdown
    assert f"console http://127.0.0.1:{port}/console/" in output
    for role in ("viewer", "cashier", "approver", "risk", "auditor", "admin"):
        assert f"{role}-demo-pass" in output
    # What it left is marked as the demo's: the report mode may wipe it without --force.
    assert "(wiped: the previous demo ledger was deleted)" in run_demo(data_dir)
