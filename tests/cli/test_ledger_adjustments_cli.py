"""`fundpool ledger` on a local store: the operator of the machine may move the accounts of
pools and merchants by hand, but only with `--reason`; the entry is then an adjustment that
names its reason and the operating-system user as its actor. Anything else is as before."""

from __future__ import annotations

import getpass
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from fundpool.cli.main import app
from fundpool.core.actor import cli_actor

WORLD = "world:bank-a"
POOL = "pool:main:usd:bank-a:available"
LOCKED = "pool:main:usd:bank-a:locked"
MERCHANT = "merchant:m42:usd:payable"
TREASURY = "treasury:usd:ops"

runner = CliRunner(env={"FUNDPOOL_DB_URL": None, "FUNDPOOL_DATA_DIR": None,
                        "FUNDPOOL_URL": None, "FUNDPOOL_API_KEY": None})


class Ledger:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir

    def __call__(self, *args: str, code: int = 0) -> Result:
        result = runner.invoke(app, ["ledger", *args, "--data-dir", str(self.data_dir)])
        assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
        assert "Traceback" not in result.output
        return result

    def json(self, *args: str, code: int = 0) -> Any:
        return json.loads(self(*args, "--json", code=code).stdout)

    def state(self) -> tuple[int, list[Any]]:
        head = self.json("verify")["head_seq"]
        return head, [self.json("balance", a)["balances"] for a in (POOL, LOCKED, MERCHANT)]


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    cli = Ledger(tmp_path / "data")
    cli("init")
    cli("asset", "USD", "--scale", "2", "--kind", "fiat")
    cli("account", WORLD)
    for address in (POOL, LOCKED, MERCHANT, TREASURY):
        cli("account", address, "--asset", "USD")
    return cli


def operator() -> dict[str, Any]:
    return cli_actor(getpass.getuser()).to_dict()


def test_a_raw_posting_on_the_pool_needs_a_reason(ledger: Ledger) -> None:
    before = ledger.state()
    for target in (POOL, MERCHANT):
        args = ("transfer", "--from", WORLD, "--to", target, "--asset", "USD",
                "--amount", "5.00")
        refused = ledger.json(*args, code=2)
        assert refused["code"] == "adjustment_reason_required"
        assert refused["accounts"] == [target]
        assert ledger(*args, "--reason", "   ", code=2).stderr.startswith(
            "error[adjustment_reason_required]: ")
    assert ledger.state() == before


def test_with_a_reason_it_is_an_adjustment_by_the_operator(ledger: Ledger) -> None:
    doc = ledger.json("transfer", "--from", WORLD, "--to", POOL, "--asset", "USD", "--amount",
                      "5.00", "--meta", "ticket=OPS-9", "--reason", "opening float")
    assert doc["metadata"]["kind"] == "adjustment"
    assert doc["metadata"]["ticket"] == "OPS-9"
    assert doc["adjustment"] == {"reason": "opening float", "actor": operator()}
    human = ledger("transfer", "--from", POOL, "--to", MERCHANT, "--asset", "USD",
                   "--amount", "1.00", "--reason", "merchant credit").stdout
    assert "adjustment" in human
    assert "merchant credit" in human
    assert f"{getpass.getuser()} (cli)" in human
    assert ledger.json("verify")["ok"] is True


def test_pendings_and_reversals_of_the_pool_need_a_reason_too(ledger: Ledger) -> None:
    ledger.json("transfer", "--from", WORLD, "--to", POOL, "--asset", "USD", "--amount",
                "50.00", "--reason", "funding")
    reserve = ("pending", "--from", POOL, "--to", LOCKED, "--asset", "USD", "--amount", "9.00")
    assert ledger.json(*reserve, code=2)["code"] == "adjustment_reason_required"
    pending_id = ledger.json(*reserve, "--reason", "hold")["pending_id"]
    before = ledger.state()
    for command in ("post", "void"):
        assert ledger.json(command, pending_id, code=2)["code"] == "adjustment_reason_required"
    assert ledger.state() == before
    posted = ledger.json("post", pending_id, "--amount", "4.00", "--reason", "settled at 4")
    assert posted["adjustment"]["reason"] == "settled at 4"
    assert ledger.json("reverse", posted["id"], code=2)["code"] == "adjustment_reason_required"
    reversed_ = ledger.json("reverse", posted["id"], "--reason", "wrong account")
    assert reversed_["adjustment"] == {"reason": "wrong account", "actor": operator()}
    other = ledger.json(*reserve, "--reason", "hold again")["pending_id"]
    voided = ledger.json("void", other, "--reason", "not needed")
    assert voided["adjustment"]["reason"] == "not needed"


def test_other_accounts_move_as_before(ledger: Ledger) -> None:
    doc = ledger.json("transfer", "--from", WORLD, "--to", TREASURY, "--asset", "USD",
                      "--amount", "2.00", "--meta", "kind=refund")
    assert "adjustment" not in doc
    assert doc["metadata"] == {"kind": "refund"}
    claimed = ledger.json("transfer", "--from", WORLD, "--to", TREASURY, "--asset", "USD",
                          "--amount", "2.00", "--meta", "kind=adjustment", code=2)
    assert claimed["code"] == "invalid_metadata"
