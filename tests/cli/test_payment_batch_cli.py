"""`fundpool payment batch | routes | batches` through the real CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fundpool.cli.main import app

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "pool.toml"
runner = CliRunner(env={"FUNDPOOL_DB_URL": None, "FUNDPOOL_DATA_DIR": None,
                        "FUNDPOOL_CONFIG": None})

GOOD = """payee,account,amount,asset,reference,channel
Alice,DE89370400440532013000,120.50,EUR,inv-1,
Bob,GB29NWBK60161331926819,99.00,EUR,inv-2,sepa
Carol,US-ACCT-1,250.00,USD,inv-3,
"""
# line 3: a formula and too many decimals; line 4: an asset no channel carries; line 5: the
# reference of line 2 again. Lines 2 and 6 are fine.
BAD_ROWS = """payee,account,amount,asset,reference
Alice,DE89370400440532013000,120.50,EUR,ref-1
=HYPERLINK("x"),ACC,1.005,USD,ref-2
Eve,ACC,10,GBP,ref-3
Frank,ACC,10.00,USD,ref-1
Grace,ACC,15.00,USD,ref-4
"""


class Cli:
    def __init__(self, data: Path) -> None:
        self.data = data
        self.common = ["--data-dir", str(data)]

    def run(self, *args: str, code: int = 0) -> str:
        result = runner.invoke(app, [*args, *self.common])
        assert result.exit_code == code, result.output
        assert "Traceback" not in result.output
        return result.stdout if code == 0 else result.output

    def json(self, *args: str, code: int = 0) -> dict[str, object]:
        document: dict[str, object] = json.loads(self.run(*args, "--json", code=code))
        return document

    def batch(self, path: Path, *args: str, code: int = 0) -> dict[str, object]:
        return self.json("payment", "batch", str(path), "--config", str(EXAMPLE), *args,
                         code=code)

    def payouts(self) -> list[dict[str, object]]:
        listed = self.json("payment", "list", "--kind", "payout", "--config", str(EXAMPLE))
        payments = listed["payments"]
        assert isinstance(payments, list)
        return payments


@pytest.fixture
def funded(tmp_path: Path) -> Cli:
    """The example pool with money on the rails the files use."""
    cli = Cli(tmp_path / "data")
    cli.run("pool", "init", "--config", str(EXAMPLE))
    for channel, asset, amount in (("sepa", "EUR", "50000.00"), ("rtp", "USD", "50000.00"),
                                   ("bank-a", "USD", "50000.00")):
        cli.run("ledger", "transfer", "--from", f"world:{channel}",
                "--to", f"pool:main:{asset.lower()}:{channel}:available", "--asset", asset,
                "--amount", amount, "--reason", "opening float")
    return cli


def write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def test_a_valid_file_creates_every_payout_once(tmp_path: Path, funded: Cli) -> None:
    path = write(tmp_path, "good.csv", GOOD)
    doc = funded.batch(path)
    assert (doc["row_count"], doc["valid_count"], doc["invalid_count"]) == (3, 3, 0)
    assert doc["dry_run"] is False
    created = doc["created"]
    assert isinstance(created, list)
    assert [row["line"] for row in created] == [2, 3, 4]
    assert all(row["payment_id"] and row["state"] == "approved" for row in created)
    assert all(row["error"] is None for row in created)
    assert doc["progress"] is None
    ids = {row["payment_id"] for row in created}
    assert {p["id"] for p in funded.payouts()} == ids
    # Uploaded again: the references key the rows, so nothing is created twice.
    again = funded.batch(path)
    assert {row["payment_id"] for row in again["created"]} == ids  # type: ignore[union-attr]
    assert len(funded.payouts()) == 3
    human = funded.run("payment", "batch", str(path), "--config", str(EXAMPLE))
    assert "validation: 3 rows, 3 valid, 0 with errors" in human
    assert "created 3 of 3 valid rows: approved 3" in human


def test_rows_with_errors_are_reported_and_the_valid_ones_created(
    tmp_path: Path, funded: Cli
) -> None:
    path = write(tmp_path, "bad.csv", BAD_ROWS)
    doc = funded.batch(path)
    assert (doc["row_count"], doc["valid_count"], doc["invalid_count"]) == (5, 2, 3)
    rows = {row["line"]: row for row in doc["rows"]}  # type: ignore[union-attr]
    assert rows[2]["ok"] is True
    assert rows[2]["errors"] == []
    assert [(e["column"], e["code"]) for e in rows[3]["errors"]] == [
        ("payee", "formula_injection"), ("amount", "bad_amount")]
    assert rows[3]["errors"][1]["cause"] == "too_many_decimals"
    assert [(e["column"], e["code"]) for e in rows[4]["errors"]] == [("asset", "unknown_asset")]
    assert [(e["column"], e["code"]) for e in rows[5]["errors"]] == [
        ("reference", "duplicate_reference")]
    created = doc["created"]
    assert isinstance(created, list)
    assert [row["line"] for row in created] == [2, 6]
    assert len(funded.payouts()) == 2

    human = funded.run("payment", "batch", str(path), "--config", str(EXAMPLE))
    for text in ("validation: 5 rows, 2 valid, 3 with errors", "formula_injection",
                 "bad_amount", "unknown_asset", "duplicate_reference", "reference is already "
                 "used on line 2"):
        assert text in human, text


def test_all_or_nothing_with_a_bad_row_creates_nothing(tmp_path: Path, funded: Cli) -> None:
    path = write(tmp_path, "bad.csv", BAD_ROWS)
    error = funded.batch(path, "--all-or-nothing", code=2)
    assert error["code"] == "payout_file_has_errors"
    assert (error["invalid_rows"], error["first_line"]) == (3, 3)
    assert error["report"]["invalid_count"] == 3  # type: ignore[index]
    assert funded.payouts() == []
    human = funded.run("payment", "batch", str(path), "--config", str(EXAMPLE),
                       "--all-or-nothing", code=2)
    assert "error[payout_file_has_errors]" in human
    assert "formula_injection" in human  # the report comes first
    # A valid file goes through whole.
    done = funded.batch(write(tmp_path, "good.csv", GOOD), "--all-or-nothing")
    assert len(done["created"]) == 3  # type: ignore[arg-type]


def test_all_or_nothing_refuses_a_file_the_pool_cannot_pay(tmp_path: Path) -> None:
    cli = Cli(tmp_path / "data")
    cli.run("pool", "init", "--config", str(EXAMPLE))  # no money anywhere
    error = cli.batch(write(tmp_path, "good.csv", GOOD), "--all-or-nothing", code=2)
    assert error["code"] == "intake_refused"
    assert cli.payouts() == []


def test_a_dry_run_creates_nothing(tmp_path: Path, funded: Cli) -> None:
    doc = funded.batch(write(tmp_path, "bad.csv", BAD_ROWS), "--dry-run")
    assert doc["dry_run"] is True
    assert doc["valid_count"] == 2
    assert "created" not in doc
    good = funded.run("payment", "batch", str(write(tmp_path, "good.csv", GOOD)), "--config",
                      str(EXAMPLE), "--dry-run")
    assert "dry run: nothing created (3 rows would be)" in good
    assert funded.payouts() == []
    # What the real run would refuse, the dry run refuses too.
    error = funded.batch(write(tmp_path, "bad.csv", BAD_ROWS), "--dry-run", "--all-or-nothing",
                         code=2)
    assert error["code"] == "payout_file_has_errors"


@pytest.mark.parametrize(
    ("content", "code"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", "csv_nul_byte"),
        (b"payee,account\xff,amount\n", "csv_bad_encoding"),
        (b"", "csv_empty"),
        (b"name;iban;sum\nA;B;1\n", "csv_bad_header"),
        (b"payee,account,amount,asset,reference\n", "csv_empty"),
    ],
)
def test_a_file_that_is_not_a_payout_table_is_refused_whole(
    tmp_path: Path, funded: Cli, content: bytes, code: str
) -> None:
    error = funded.batch(write(tmp_path, "upload.csv", content), code=2)
    assert error["code"] == code
    assert funded.payouts() == []
    human = funded.run("payment", "batch", str(tmp_path / "upload.csv"), "--config",
                       str(EXAMPLE), code=2)
    assert f"error[{code}]" in human


def test_a_missing_file_or_a_bad_wait_is_a_usage_error(tmp_path: Path, funded: Cli) -> None:
    missing = funded.run("payment", "batch", str(tmp_path / "nowhere.csv"), "--config",
                         str(EXAMPLE), code=2)
    assert "does not exist" in missing
    path = write(tmp_path, "good.csv", GOOD)
    bad_wait = funded.run("payment", "batch", str(path), "--config", str(EXAMPLE), "--wait",
                          "a while", code=2)
    assert "Invalid value for '--wait'" in " ".join(bad_wait.replace("│", " ").split())
    assert funded.payouts() == []


def test_wait_watches_the_engine_and_never_sends_itself(tmp_path: Path, funded: Cli) -> None:
    doc = funded.batch(write(tmp_path, "good.csv", GOOD), "--wait", "1s")
    progress = doc["progress"]
    assert isinstance(progress, dict)
    assert progress["total"] == 3
    assert sum(progress["by_state"].values()) == 3
    # No server runs on this store: nothing was sent, the payouts wait for the pool's engine
    # (only one engine sends a pool's payments), and no rail journal was opened here.
    assert set(progress["by_state"]) <= {"approved", "pending_approval", "rejected"}
    assert not (funded.data / "rails").exists()


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> Cli:
    cli = Cli(tmp_path_factory.mktemp("sim") / "data")
    cli.run("simulate", "--fast", "--rate", "30/s", "--duration", "6s", "--config",
            str(EXAMPLE), "--json")
    return cli


def test_routes_show_every_candidate_of_a_simulated_payout(simulated: Cli) -> None:
    payouts = simulated.payouts()
    payout = next(p for p in payouts if p["state"] == "settled")
    doc = simulated.json("payment", "routes", str(payout["id"]))
    assert doc["payment_id"] == payout["id"]
    routes = doc["routes"]
    assert isinstance(routes, list)
    route = routes[0]
    assert route["attempt"] == 1
    assert route["strategy"] == "learned"
    assert route["channel"] == payout["channel"]
    assert route["batch_id"]
    assert str(route["summary"]).startswith(f"{payout['channel']} (")
    candidates = {c["channel"]: c for c in route["candidates"]}
    chosen = candidates[str(payout["channel"])]
    assert chosen["eligible"] is True
    assert {"fee", "fee_minor", "latency_us", "quoted_success_probability",
            "expected_cost_minor"} <= set(chosen)
    assert "book" not in candidates  # a book rail never carries a payout: not even weighed
    assert all(c["reason"] for c in candidates.values() if not c["eligible"])

    human = simulated.run("payment", "routes", str(payout["id"]))
    for text in ("attempt 1", "p quoted", "expected cost", "asset_not_carried", "router (learned"):
        assert text in human


def test_routes_of_a_transfer_and_of_an_unknown_payment(simulated: Cli) -> None:
    listed = simulated.json("payment", "list", "--kind", "internal", "--config", str(EXAMPLE))
    sweep = listed["payments"][0]  # type: ignore[index]
    doc = simulated.json("payment", "routes", sweep["id"])
    (route,) = doc["routes"]  # type: ignore[misc]
    assert route["strategy"] == "given"
    assert "candidates" not in route
    assert route["decision"]["strategy"] == "given"
    missing = simulated.json("payment", "routes", "01a21050-f3c7-7591-b695-e900efee9dd9",
                             code=2)
    assert missing["code"] == "unknown_payment"


def test_batches_list_what_batching_saved(simulated: Cli) -> None:
    doc = simulated.json("payment", "batches", "--limit", "1000")
    batches = doc["batches"]
    assert isinstance(batches, list)
    assert batches
    for batch in batches:
        assert {"id", "channel", "asset", "status", "items", "fee", "single_fee", "savings",
                "rail_ref", "submitted_at"} <= set(batch)
        if batch["status"] == "sent":
            assert int(batch["savings_minor"]) == (
                int(batch["single_fee_minor"]) - int(batch["fee_minor"]))
    assert any(int(b["savings_minor"]) > 0 for b in batches)
    bank = simulated.json("payment", "batches", "--channel", "bank-a")
    assert bank["batches"]
    assert {b["channel"] for b in bank["batches"]} == {"bank-a"}  # type: ignore[union-attr]
    human = simulated.run("payment", "batches", "--channel", "tron", "--limit", "5")
    assert "single fee" in human
    assert "savings" in human
    assert "tron" in human
