"""`fundpool ledger ...` end to end through typer's CliRunner, on a SQLite file in tmp_path.

The ledger's own mechanics, on accounts of a treasury that no service owns: a raw posting on
a pool's or merchant's account is an adjustment, which needs --reason
(tests/cli/test_ledger_adjustments_cli.py)."""

from __future__ import annotations

import importlib.util
import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from fundpool.cli.main import app
from fundpool.cli.session import describe_store
from fundpool.runtime import SystemClock, system_ids
from tests.waiting import wait_for_clock_past

try:  # rootdir on sys.path (python -m pytest)
    from tests.conftest import PG_URL, new_pg_schema, require_postgres
except ModuleNotFoundError:  # pytest's default rootdir-less import mode puts tests/ on the path
    from conftest import PG_URL, new_pg_schema, require_postgres  # type: ignore[no-redef]

AVAILABLE = "treasury:usd:available"
LOCKED = "treasury:usd:locked"
ETH_HOT = "treasury:eth:hot"
WORLD = "world:bank-a"

# Environment a developer may have set must not point the tests at another store.
runner = CliRunner(env={"FUNDPOOL_DB_URL": None, "FUNDPOOL_DATA_DIR": None})


class Cli:
    """Runs `fundpool ledger <args> --data-dir <dir>` and checks the exit code."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.path = data_dir / "ledger.sqlite3"

    def __call__(self, *args: str, code: int = 0) -> Result:
        result = runner.invoke(app, ["ledger", *args, "--data-dir", str(self.data_dir)])
        assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
        # Domain errors and usage errors alike end cleanly: never a Python traceback.
        assert "Traceback" not in result.output
        assert not isinstance(result.exception, Exception) or isinstance(
            result.exception, SystemExit
        )
        return result

    def json(self, *args: str, code: int = 0) -> Any:
        result = self(*args, "--json", code=code)
        return json.loads(result.stdout)


@pytest.fixture
def bare(tmp_path: Path) -> Cli:
    return Cli(tmp_path / "ledger")


@pytest.fixture
def cli(bare: Cli) -> Cli:
    """An initialised ledger with USD and ETH, a world account and a few treasury accounts."""
    bare("init")
    bare("asset", "USD", "--scale", "2", "--kind", "fiat")
    bare("asset", "ETH", "--scale", "18", "--kind", "crypto")
    bare("account", WORLD, "--allow-negative")
    bare("account", AVAILABLE, "--asset", "USD")
    bare("account", LOCKED, "--asset", "USD")
    bare("account", ETH_HOT, "--asset", "ETH")
    return bare


def fund(cli: Cli, amount: str = "100.00", **extra: str) -> dict[str, Any]:
    args = ["transfer", "--from", WORLD, "--to", AVAILABLE, "--asset", "USD", "--amount", amount]
    for name, value in extra.items():
        args += [f"--{name}", value]
    doc: dict[str, Any] = cli.json(*args)
    return doc


# --- store selection and initialisation ------------------------------------------------------


def test_commands_before_init_say_store_not_initialised(bare: Cli) -> None:
    result = bare("balance", AVAILABLE, code=2)
    assert "error[store_not_initialised]" in result.stderr
    assert bare.json("verify", code=2)["code"] == "store_not_initialised"
    assert bare.json("asset", "USD", "--scale", "2", "--kind", "fiat", code=2)["code"] == (
        "store_not_initialised"
    )


def test_init_is_idempotent_human_and_json(bare: Cli) -> None:
    result = bare("init")
    assert "ledger ready" in result.stdout
    doc = bare.json("init")
    assert doc["initialised"] is True
    assert doc["head_seq"] == 0
    assert doc["store"].startswith("sqlite:///")
    assert doc["head_hash"] == "00" * 32


def test_db_url_and_environment_select_the_store(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'by-url.sqlite3'}"
    result = runner.invoke(app, ["ledger", "init", "--db-url", url, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["store"] == url
    result = runner.invoke(
        app, ["ledger", "asset", "USD", "--scale", "2", "--kind", "fiat", "--json"],
        env={"FUNDPOOL_DB_URL": url},
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "by-url.sqlite3").exists()

    env_dir = tmp_path / "from-env"
    result = runner.invoke(app, ["ledger", "init"], env={"FUNDPOOL_DATA_DIR": str(env_dir)})
    assert result.exit_code == 0, result.output
    assert (env_dir / "ledger.sqlite3").exists()


def test_unsupported_db_url_is_a_usage_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["ledger", "init", "--db-url", "mysql://x/y"])
    assert result.exit_code == 2
    assert "error[unsupported_database_url]" in result.output
    assert "use sqlite:///PATH or postgresql://" in result.output
    assert "Traceback" not in result.output


# --- assets and accounts ---------------------------------------------------------------------


def test_asset_defined_unchanged_and_conflicting(bare: Cli) -> None:
    bare("init")
    result = bare("asset", "USDT", "--scale", "6", "--kind", "stablecoin")
    assert "asset USDT defined: scale 6, stablecoin" in result.stdout
    doc = bare.json("asset", "USDT", "--scale", "6", "--kind", "stablecoin")
    assert doc["status"] == "unchanged"
    assert doc["asset"] == {"code": "USDT", "scale": 6, "kind": "stablecoin"}
    assert doc["entry"] is None
    doc = bare.json("asset", "ETH", "--scale", "18", "--kind", "crypto")
    assert doc["status"] == "applied"
    assert doc["entry"]["kind"] == "asset_defined"
    assert doc["entry"]["at"].endswith("Z")

    conflict = bare.json("asset", "USDT", "--scale", "2", "--kind", "stablecoin", code=2)
    assert conflict["code"] == "asset_already_defined"
    result = bare("asset", "usd", "--scale", "2", "--kind", "fiat", code=2)
    assert "error[invalid_asset]" in result.stderr
    # An unknown kind is bad usage, reported by typer.
    runner_result = runner.invoke(
        app, ["ledger", "asset", "X1", "--scale", "2", "--kind", "gold",
              "--data-dir", str(bare.data_dir)],
    )
    assert runner_result.exit_code == 2


def test_account_bounds_and_metadata(cli: Cli) -> None:
    doc = cli.json(
        "account", "pool:main:usd:bank-a:credit", "--asset", "USD", "--min", "-500.00",
        "--max", "1000000.00", "--meta", "team=treasury", "--meta", "desk=eu",
    )
    assert doc["status"] == "applied"
    account = doc["account"]
    assert account["min"] == "-500.00"
    assert account["min_minor"] == "-50000"
    assert account["max"] == "1000000.00"
    assert account["max_minor"] == "100000000"
    assert account["metadata"] == {"team": "treasury", "desk": "eu"}
    assert doc["entry"]["kind"] == "account_opened"

    result = cli("account", "pool:main:usd:bank-a:other", "--asset", "USD", "--max", "10.5")
    assert "max" in result.stdout
    assert "10.50" in result.stdout
    again = cli.json("account", WORLD, "--allow-negative")
    assert again["status"] == "unchanged"

    assert cli.json("account", "pool:x:y", "--asset", "USD", "--min", "-0.001",
                    code=2)["code"] == "too_many_decimals"
    assert cli.json("account", "pool:x:y", "--min", "-1", code=2)["code"] == "invalid_account"
    assert cli.json("account", "pool:x:y", "--asset", "GBP", code=2)["code"] == "unknown_asset"
    assert cli.json("account", "Pool:Bad", code=2)["code"] == "invalid_address"
    assert cli.json("account", WORLD)["status"] == "unchanged"  # world: may go negative
    assert cli.json("account", WORLD, "--no-allow-negative", code=2)["code"] == (
        "account_already_open"
    )
    bad_meta = runner.invoke(
        app, ["ledger", "account", "pool:x:y", "--meta", "novalue",
              "--data-dir", str(cli.data_dir)],
    )
    assert bad_meta.exit_code == 2


def test_world_accounts_may_go_negative_by_default(cli: Cli) -> None:
    assert cli.json("account", "world:card-acq")["account"]["allow_negative"] is True
    strict = cli.json("account", "world:strict", "--no-allow-negative")
    assert strict["account"]["allow_negative"] is False
    assert cli.json("account", "pool:main:usd:x:y", "--asset", "USD")["account"][
        "allow_negative"
    ] is False
    assert cli.json("transfer", "--from", "world:card-acq", "--to", AVAILABLE, "--asset", "USD",
                    "--amount", "1")["status"] == "applied"
    assert cli.json("transfer", "--from", "world:strict", "--to", AVAILABLE, "--asset", "USD",
                    "--amount", "1", code=2)["code"] == "insufficient_funds"


def test_addresses_print_verbatim(cli: Cli) -> None:
    # ':a:' and ':bank:' are emoji codes to rich; an address must never be rewritten.
    address = "treasury:a:bank:smile:available"
    result = cli("account", address, "--asset", "USD")
    assert address in result.stdout
    result = cli("transfer", "--from", WORLD, "--to", address, "--asset", "USD", "--amount", "1")
    assert address in result.stdout
    assert address in cli("balance", address).stdout
    assert address in cli("history", address).stdout
    assert "address: treasury:a:bank:nope" in cli("balance", "treasury:a:bank:nope",
                                                  code=2).stderr


# --- transfers -------------------------------------------------------------------------------


def test_transfer_human_and_json(cli: Cli) -> None:
    result = cli(
        "transfer", "--from", WORLD, "--to", AVAILABLE, "--asset", "USD", "--amount", "12.34",
        "--meta", "ref=abc",
    )
    assert "12.34" in result.stdout
    assert AVAILABLE in result.stdout
    doc = fund(cli, "0.5", key="dep-1")
    assert doc["status"] == "applied"
    assert doc["kind"] == "transfer"
    assert doc["postings"] == [
        {"source": WORLD, "destination": AVAILABLE, "asset": "USD",
         "amount": "0.50", "amount_minor": "50"}
    ]
    assert doc["idempotency_key"] == "dep-1"
    assert doc["at"].endswith("Z")
    assert len(doc["hash"]) == 64
    # The same key and body again: the original entry comes back, nothing new is written.
    again = fund(cli, "0.50", key="dep-1")
    assert again["status"] == "replayed"
    assert again["id"] == doc["id"]
    assert again["seq"] == doc["seq"]


def test_transfer_several_postings_and_wei_exact(cli: Cli) -> None:
    doc = cli.json(
        "transfer",
        "--posting", f"{WORLD},{ETH_HOT},ETH,1.000000000000000001",
        "--posting", f"{WORLD},{AVAILABLE},USD,5",
        "--posting", f"{AVAILABLE},{LOCKED},USD,2.25",
    )
    assert [p["amount_minor"] for p in doc["postings"]] == ["1000000000000000001", "500", "225"]
    assert doc["postings"][0]["amount"] == "1.000000000000000001"
    balance = cli.json("balance", ETH_HOT)["balances"][0]
    assert balance["posted"] == "1.000000000000000001"
    assert balance["posted_minor"] == "1000000000000000001"
    # --from/--to/--asset/--amount and --posting combine into one transfer
    doc = cli.json(
        "transfer", "--from", WORLD, "--to", AVAILABLE, "--asset", "USD", "--amount", "1",
        "--posting", f"{AVAILABLE},{LOCKED},USD,1",
    )
    assert len(doc["postings"]) == 2


def test_transfer_usage_errors(cli: Cli) -> None:
    base = ["ledger", "transfer", "--data-dir", str(cli.data_dir)]
    for extra in ([], ["--from", WORLD], ["--posting", "a,b,USD"]):
        result = runner.invoke(app, [*base, *extra])
        assert result.exit_code == 2, result.output
        assert "Traceback" not in result.output


def test_error_paths(cli: Cli) -> None:
    unknown = cli.json(
        "transfer", "--from", WORLD, "--to", AVAILABLE, "--asset", "GBP", "--amount", "1",
        code=2,
    )
    assert unknown["code"] == "unknown_asset"
    assert unknown["asset"] == "GBP"
    assert set(unknown) >= {"code", "title", "detail"}

    human = cli("transfer", "--from", WORLD, "--to", AVAILABLE, "--asset", "GBP",
                "--amount", "1", code=2)
    assert human.stderr.startswith("error[unknown_asset]: ")
    assert "asset: GBP" in human.stderr
    assert human.stdout == ""

    decimals = cli.json(
        "transfer", "--from", WORLD, "--to", AVAILABLE, "--asset", "USD", "--amount", "1.005",
        code=2,
    )
    assert decimals["code"] == "too_many_decimals"
    assert decimals["scale"] == 2
    for amount, code in (("-1", "negative_amount"), ("1e3", "invalid_amount"),
                         ("0", "invalid_transaction")):
        assert cli.json("transfer", "--from", WORLD, "--to", AVAILABLE, "--asset", "USD",
                        "--amount", amount, code=2)["code"] == code

    fund(cli, "10.00", key="k-1")
    conflict = cli.json(
        "transfer", "--from", WORLD, "--to", AVAILABLE, "--asset", "USD", "--amount", "11.00",
        "--key", "k-1", code=2,
    )
    assert conflict["code"] == "idempotency_conflict"
    assert conflict["idempotency_key"] == "k-1"

    short = cli.json("transfer", "--from", AVAILABLE, "--to", LOCKED, "--asset", "USD",
                     "--amount", "10.01", code=2)
    assert short["code"] == "insufficient_funds"
    assert cli.json("transfer", "--from", "treasury:nope:x", "--to", AVAILABLE, "--asset", "USD",
                    "--amount", "1", code=2)["code"] == "unknown_account"
    assert cli.json("transfer", "--from", WORLD, "--to", ETH_HOT, "--asset", "USD",
                    "--amount", "1", code=2)["code"] == "asset_mismatch"


# --- two-phase and reversal ------------------------------------------------------------------


def test_pending_post_void_and_post_after_void(cli: Cli) -> None:
    fund(cli, "100.00")
    created = cli.json(
        "pending", "--from", AVAILABLE, "--to", LOCKED, "--asset", "USD", "--amount", "30.00",
        "--timeout", "600", "--key", "po-1",
    )
    assert created["kind"] == "pending_created"
    pending_id = created["pending_id"]
    assert pending_id == created["id"]
    assert created["timeout_s"] == 600
    assert created["expires_at"].endswith("Z")
    assert created["reservation"]["amount"] == "30.00"
    assert created["postings"] == []
    balance = cli.json("balance", AVAILABLE)["balances"][0]
    assert (balance["posted"], balance["pending_out"], balance["available"]) == (
        "100.00", "30.00", "70.00"
    )
    assert cli.json("balance", LOCKED)["balances"][0]["pending_in"] == "30.00"

    posted = cli.json("post", pending_id, "--amount", "20.00")
    assert posted["kind"] == "pending_posted"
    assert (posted["posted"], posted["released"]) == ("20.00", "10.00")
    assert posted["postings"][0]["amount_minor"] == "2000"
    assert cli.json("balance", LOCKED)["balances"][0]["posted"] == "20.00"
    assert cli.json("post", pending_id, code=2)["code"] == "pending_already_finished"

    second = cli(
        "pending", "--from", AVAILABLE, "--to", LOCKED, "--asset", "USD", "--amount", "5",
    )
    assert "pending_created" in second.stdout
    other = cli.json("pending", "--from", AVAILABLE, "--to", LOCKED, "--asset", "USD",
                     "--amount", "5")["pending_id"]
    voided = cli("void", other)
    assert "pending_voided" in voided.stdout
    after_void = cli.json("post", other, code=2)
    assert after_void["code"] == "pending_already_finished"
    assert after_void["state"] == "voided"
    assert cli("post", other, code=2).stderr.startswith("error[pending_already_finished]")
    assert cli.json("void", other, code=2)["code"] == "pending_already_finished"
    assert cli.json("post", "no-such-id", code=2)["code"] == "unknown_pending"
    # the amount is parsed at the pending transfer's asset's scale before anything else
    assert cli.json("post", pending_id, "--amount", "0.001", code=2)["code"] == (
        "too_many_decimals"
    )
    big = cli.json("pending", "--from", AVAILABLE, "--to", LOCKED, "--asset", "USD",
                   "--amount", "1")["pending_id"]
    assert cli.json("post", big, "--amount", "2", code=2)["code"] == "post_exceeds_pending"
    assert cli.json("pending", "--from", AVAILABLE, "--to", LOCKED, "--asset", "USD",
                    "--amount", "1", "--timeout", "0", code=2)["code"] == "invalid_timeout"


def test_reverse(cli: Cli) -> None:
    original = fund(cli, "40.00")
    result = cli("reverse", original["id"])
    assert original["id"] in result.stdout
    assert cli.json("balance", AVAILABLE)["balances"][0]["posted"] == "0.00"
    again = cli.json("reverse", original["id"], code=2)
    assert again["code"] == "already_reversed"
    assert cli.json("reverse", "nope", code=2)["code"] == "unknown_transaction"
    doc = cli.json("reverse", fund(cli, "1.00")["id"], "--meta", "why=duplicate")
    assert doc["reverses"]
    assert doc["postings"][0]["source"] == AVAILABLE
    assert doc["metadata"] == {"why": "duplicate"}


# --- reads -----------------------------------------------------------------------------------


def test_balance_now_at_and_multi_asset(cli: Cli) -> None:
    before = fund(cli, "10.00")
    wait_for_clock_past(before["at"])  # the next entry is later than `before`, not at its instant
    fund(cli, "2.50")
    cli("transfer", "--from", WORLD, "--to", ETH_HOT, "--asset", "ETH", "--amount", "0.5")

    result = cli("balance", AVAILABLE)
    for text in ("posted", "pending out", "pending in", "available", "12.50"):
        assert text in result.stdout
    doc = cli.json("balance", AVAILABLE, "--asset", "USD")
    assert doc["at"] is None
    assert doc["balances"] == [{
        "asset": "USD",
        "posted": "12.50", "posted_minor": "1250",
        "pending_out": "0.00", "pending_out_minor": "0",
        "pending_in": "0.00", "pending_in_minor": "0",
        "available": "12.50", "available_minor": "1250",
    }]
    at = cli.json("balance", AVAILABLE, "--at", before["at"])
    assert at["at"] == before["at"]
    assert at["as_of_seq"] == before["seq"]
    assert at["balances"][0]["posted"] == "10.00"
    assert cli.json("balance", AVAILABLE, "--at", "2000-01-01T00:00:00+00:00")["balances"][0][
        "posted"
    ] == "0.00"

    world = cli.json("balance", WORLD)
    assert {b["asset"]: b["posted"] for b in world["balances"]} == {
        "ETH": "-0.500000000000000000", "USD": "-12.50"
    }
    assert "-12.50" in cli("balance", WORLD).stdout
    assert cli.json("balance", WORLD, "--asset", "ETH")["balances"][0]["posted_minor"] == (
        "-500000000000000000"
    )
    assert cli.json("balance", "pool:none:x", code=2)["code"] == "unknown_account"
    assert cli.json("balance", AVAILABLE, "--asset", "ETH", code=2)["code"] == "asset_mismatch"
    assert cli.json("balance", AVAILABLE, "--asset", "GBP", code=2)["code"] == "unknown_asset"
    naive = runner.invoke(app, ["ledger", "balance", AVAILABLE, "--at", "2026-11-24T10:00:00",
                                "--data-dir", str(cli.data_dir)])
    assert naive.exit_code == 2
    garbage = runner.invoke(app, ["ledger", "balance", AVAILABLE, "--at", "yesterday",
                                  "--data-dir", str(cli.data_dir)])
    assert garbage.exit_code == 2


def test_history_and_paging(cli: Cli) -> None:
    for amount in ("1.00", "2.00", "3.00"):
        fund(cli, amount)
    pending_id = cli.json("pending", "--from", AVAILABLE, "--to", LOCKED, "--asset", "USD",
                          "--amount", "0.75")["pending_id"]
    result = cli("history", AVAILABLE)
    assert "pending_created" in result.stdout
    assert "+3.00" in result.stdout
    doc = cli.json("history", AVAILABLE, "--limit", "2")
    rows = doc["rows"]
    assert [r["kind"] for r in rows] == ["pending_created", "transfer"]
    assert rows[0]["entry_id"] == pending_id
    assert rows[0]["pending_out_change"] == "0.75"
    assert rows[0]["available"] == "5.25"
    assert rows[1]["posted_change"] == "3.00"
    assert rows[1]["posted_change_minor"] == "300"
    assert doc["next_before"] == rows[1]["seq"]
    older = cli.json("history", AVAILABLE, "--before", str(doc["next_before"]))
    assert [r["posted_change"] for r in older["rows"]] == ["2.00", "1.00"]
    assert older["next_before"] is None
    assert cli.json("history", WORLD, "--asset", "USD", "--limit", "1")["rows"][0][
        "posted_change"
    ] == "-3.00"  # the pending transfer did not touch world
    assert cli.json("history", AVAILABLE, "--asset", "GBP", code=2)["code"] == "unknown_asset"
    assert cli.json("history", "pool:none:x", code=2)["code"] == "unknown_account"


# --- verify and rebuild ----------------------------------------------------------------------


def tamper(cli: Cli, sql: str, *params: object) -> None:
    with sqlite3.connect(cli.path) as connection:
        changed = connection.execute(sql, params).rowcount
    assert changed == 1


def test_verify_ok_then_tampered(cli: Cli) -> None:
    doc = fund(cli, "100.00")
    fund(cli, "1.00")
    result = cli("verify")
    assert "ok" in result.stdout
    report = cli.json("verify")
    assert report["ok"] is True
    assert report["entries"] == report["head_seq"] == doc["seq"] + 1
    assert len(report["head_hash"]) == 64
    assert report["head_hash"] in result.stdout

    # 100.00 becomes 900.00 in the entry's signed bytes.
    tamper(
        cli,
        "UPDATE journal SET canonical = CAST(replace(CAST(canonical AS TEXT), "
        "'\"amount_minor\":10000', '\"amount_minor\":90000') AS BLOB) WHERE seq = ?",
        doc["seq"],
    )
    result = cli("verify", code=1)
    assert "FAILED" in result.stdout
    assert f"seq {doc['seq']}" in result.stdout
    assert doc["id"] in result.stdout
    report = cli.json("verify", code=1)
    assert report["ok"] is False
    assert report["problem"]["seq"] == doc["seq"]
    assert report["problem"]["entry_id"] == doc["id"]
    assert "hash" in report["problem"]["reason"]
    # rebuild refuses to rewrite balances from a journal that does not verify
    assert cli.json("rebuild", "--write", code=1)["written"] is False


def test_rebuild_shows_and_repairs_a_wrong_balance_row(cli: Cli) -> None:
    fund(cli, "100.00")
    assert "matches the journal" in cli("rebuild").stdout
    tamper(cli, "UPDATE balances SET posted = '777' WHERE address = ? AND asset = 'USD'",
           AVAILABLE)
    assert cli.json("verify", code=1)["problem"]["reason"].startswith("balance table disagrees")

    result = cli("rebuild", code=1)
    assert AVAILABLE in result.stdout
    assert "7.77" in result.stdout
    assert "100.00" in result.stdout
    assert "--write" in result.stdout
    doc = cli.json("rebuild", code=1)
    assert doc["written"] is False
    assert doc["journal"]["ok"] is True
    assert doc["differences"] == [{
        "address": AVAILABLE,
        "asset": "USD",
        "stored": {
            "posted": "7.77", "posted_minor": "777",
            "pending_out": "0.00", "pending_out_minor": "0",
            "pending_in": "0.00", "pending_in_minor": "0",
            "available": "7.77", "available_minor": "777",
        },
        "journal": {
            "posted": "100.00", "posted_minor": "10000",
            "pending_out": "0.00", "pending_out_minor": "0",
            "pending_in": "0.00", "pending_in_minor": "0",
            "available": "100.00", "available_minor": "10000",
        },
    }]

    written = cli("rebuild", "--write")
    assert "repaired" in written.stdout
    assert cli.json("verify")["ok"] is True
    assert cli.json("rebuild") == {
        "journal": cli.json("verify"), "differences": [], "written": False
    }
    assert cli.json("balance", AVAILABLE)["balances"][0]["posted"] == "100.00"


def test_rebuild_reports_a_missing_balance_row(cli: Cli) -> None:
    fund(cli, "3.00")
    tamper(cli, "DELETE FROM balances WHERE address = ? AND asset = 'USD'", AVAILABLE)
    doc = cli.json("rebuild", code=1)
    assert doc["differences"][0]["stored"] is None
    assert "missing" in cli("rebuild", code=1).stdout
    assert cli.json("rebuild", "--write")["written"] is True
    assert cli.json("verify")["ok"] is True


# --- PostgreSQL ------------------------------------------------------------------------------


@pytest.mark.postgres
def test_db_url_postgres(monkeypatch: pytest.MonkeyPatch) -> None:
    if importlib.util.find_spec("fundpool.stores.postgres") is None:
        pytest.skip("fundpool.stores.postgres does not exist yet")
    require_postgres()
    from fundpool.stores import postgres

    schema = new_pg_schema()
    separator = "&" if "?" in PG_URL else "?"
    url = f"{PG_URL}{separator}schema={schema}"
    base = ["--db-url", url, "--json"]
    try:
        for args in (
            ["init"],
            ["asset", "USD", "--scale", "2", "--kind", "fiat"],
            ["account", WORLD, "--allow-negative"],
            ["account", AVAILABLE, "--asset", "USD"],
            ["transfer", "--from", WORLD, "--to", AVAILABLE, "--asset", "USD",
             "--amount", "12.34"],
        ):
            result = runner.invoke(app, ["ledger", *args, *base])
            assert result.exit_code == 0, result.output
        result = runner.invoke(app, ["ledger", "balance", AVAILABLE, *base])
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["balances"][0]["posted"] == "12.34"
        result = runner.invoke(app, ["ledger", "verify", *base])
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["ok"] is True
    finally:
        store = postgres.PostgresStore(PG_URL, schema=schema)
        store.drop_schema()
        store.close()


# --- runtime ---------------------------------------------------------------------------------


def test_system_clock_and_ids() -> None:
    before = time.time_ns() // 1000
    now = SystemClock().now_us()
    assert before <= now <= time.time_ns() // 1000
    ids = system_ids()
    made = [ids.new_id(now) for _ in range(100)]
    assert made == sorted(made)
    assert len(set(made)) == 100
    assert all(len(i) == 36 and i[14] == "7" for i in made)


def test_store_urls_are_shown_without_passwords() -> None:
    class Store:
        url = "postgresql://treasury:s%40cret@db.internal:5432/ledger?sslmode=require"

    shown = describe_store(Store())  # type: ignore[arg-type]
    assert "cret" not in shown
    assert shown == "postgresql://treasury:***@db.internal:5432/ledger?sslmode=require"
