"""The CLI with `--url` / `--api-key`: the same commands on a real server (uvicorn in a thread)
print what they print on a local store holding the same data.

Every write goes to both ledgers, in the same order, so that their sequence numbers stay equal:
only ids, times and hashes differ between the two documents, and the actor of an adjustment
(the operating-system user locally, the API key on the server).

The writes move the pool's accounts by hand, so each is an adjustment with its --reason.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from fundpool.cli.main import app
from tests.client import CONFIG, LiveServer, init_ledger, live_server

WORLD = "world:bank-a"
USD = "pool:main:usd:bank-a:available"
LOCKED = "pool:main:usd:bank-a:locked"
REASON = ("--reason", "test set-up: the pool in a known state")
# What differs between two ledgers given the same commands: ids drawn at random, the clock,
# and the hashes over both.
VOLATILE = frozenset({"id", "entry_id", "pending_id", "reverses", "at", "at_us", "hash",
                      "head_hash", "expires_at", "created_at", "updated_at", "next_after",
                      "actor", "initiated_by"})

runner = CliRunner(env={"FUNDPOOL_DB_URL": None, "FUNDPOOL_DATA_DIR": None,
                        "FUNDPOOL_URL": None, "FUNDPOOL_API_KEY": None})


class Cli:
    """Runs `fundpool <args> <where>`: `where` names the store or the server."""

    def __init__(self, *where: str) -> None:
        self.where = where

    def __call__(self, *args: str, code: int = 0, env: dict[str, str] | None = None) -> Result:
        result = runner.invoke(app, [*args, *self.where], env=env)
        assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
        assert "Traceback" not in result.output
        return result

    def json(self, *args: str, code: int = 0) -> Any:
        return json.loads(self(*args, "--json", code=code).stdout)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("remote") / "server") as live:
        yield live


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Cli:
    data_dir = tmp_path_factory.mktemp("remote") / "local"
    init_ledger(data_dir)
    return Cli("--data-dir", str(data_dir))


@pytest.fixture(scope="module")
def remote(server: LiveServer) -> Cli:
    return Cli("--url", server.url, "--api-key", server.admin_key)


def stable(doc: Any) -> Any:
    """The document without what differs between two ledgers given the same commands."""
    if isinstance(doc, dict):
        return {k: stable(v) for k, v in doc.items() if k not in VOLATILE}
    if isinstance(doc, list):
        return [stable(v) for v in doc]
    return doc


def both(local: Cli, remote: Cli, *args: str) -> tuple[Any, Any]:
    """The command's JSON on the local store and on the server, which must agree."""
    mine, theirs = local.json(*args), remote.json(*args)
    assert stable(theirs) == stable(mine)
    assert theirs.keys() == mine.keys()
    return mine, theirs


def available_minor(cli: Cli, address: str) -> int:
    balances = cli.json("ledger", "balance", address, "--asset", "USD")["balances"]
    return int(balances[0]["available_minor"]) if balances else 0


def test_transfer_balance_and_history_print_the_same_documents(local: Cli, remote: Cli) -> None:
    # What the module's other tests left (in whatever order they ran) plus what this one moves.
    before_minor = available_minor(remote, USD)
    assert available_minor(local, USD) == before_minor
    after_minor = before_minor + 123_456 + 1 - 50
    after = f"{after_minor // 100}.{after_minor % 100:02d}"
    mine, theirs = both(local, remote, "ledger", "transfer", "--from", WORLD, "--to", USD,
                        "--asset", "USD", "--amount", "1234.56", "--key", "remote-1",
                        "--meta", "why=test", *REASON)
    assert theirs["postings"][0]["amount"] == "1234.56"
    assert theirs["postings"][0]["amount_minor"] == "123456"
    assert theirs["idempotency_key"] == "remote-1"
    assert theirs["seq"] == mine["seq"]
    again = remote.json("ledger", "transfer", "--from", WORLD, "--to", USD, "--asset", "USD",
                        "--amount", "1234.56", "--key", "remote-1", "--meta", "why=test",
                        *REASON)
    assert (again["status"], again["id"]) == ("replayed", theirs["id"])
    both(local, remote, "ledger", "transfer", "--posting", f"{WORLD},{USD},USD,0.01",
         "--posting", f"{USD},{LOCKED},USD,0.50", "--key", "remote-2", *REASON)

    mine, theirs = both(local, remote, "ledger", "balance", USD)
    assert theirs["balances"][0]["available"] == after
    both(local, remote, "ledger", "balance", USD, "--asset", "USD")
    both(local, remote, "ledger", "balance", "pool:main:usd:rtp:available")  # never posted
    both(local, remote, "ledger", "balance", USD, "--at", "2020-01-01T00:00:00Z")
    both(local, remote, "ledger", "balance", WORLD)

    mine, theirs = both(local, remote, "ledger", "history", USD, "--limit", "1")
    assert len(theirs["rows"]) == 1
    assert theirs["next_before"] == mine["next_before"] is not None
    both(local, remote, "ledger", "history", USD, "--before", str(theirs["next_before"]))
    both(local, remote, "ledger", "history", USD, "--asset", "USD", "--limit", "50")

    human = remote("ledger", "balance", USD).stdout
    assert human == local("ledger", "balance", USD).stdout
    assert after in human
    assert "1234.56" in remote("ledger", "history", USD).stdout


def test_a_remote_write_without_a_key_still_carries_one(remote: Cli, local: Cli) -> None:
    args = ("ledger", "transfer", "--from", WORLD, "--to", USD, "--asset", "USD", "--amount",
            "1.00", *REASON)
    mine, theirs = local.json(*args), remote.json(*args)
    assert mine.pop("idempotency_key") is None
    assert len(theirs.pop("idempotency_key")) == 36  # drawn by the client, kept by its retries
    assert stable(theirs) == stable(mine)


def test_two_phase_and_reversal_commands(local: Cli, remote: Cli) -> None:
    # Funds of its own: under pytest -n 2 the test that funded USD may run in the other
    # process, against that process's server and store.
    both(local, remote, "ledger", "transfer", "--from", WORLD, "--to", USD, "--asset", "USD",
         "--amount", "20.00", "--key", "remote-p0", *REASON)
    reserve = ("ledger", "pending", "--from", USD, "--to", LOCKED, "--asset", "USD",
               "--amount", "10.00", "--timeout", "600", *REASON)
    mine, theirs = both(local, remote, *reserve, "--key", "remote-p1")
    assert theirs["reservation"]["amount"] == "10.00"
    posted_mine = local.json("ledger", "post", mine["pending_id"], "--amount", "4.00", *REASON)
    posted = remote.json("ledger", "post", theirs["pending_id"], "--amount", "4.00", *REASON)
    assert stable(posted) == {**stable(posted_mine),
                              "idempotency_key": posted["idempotency_key"]}
    assert posted_mine["idempotency_key"] is None
    assert (posted["posted"], posted["released"]) == ("4.00", "6.00")

    mine, theirs = both(local, remote, *reserve, "--key", "remote-p2")
    voided_mine = local.json("ledger", "void", mine["pending_id"], "--key", "remote-v2",
                             *REASON)
    voided = remote.json("ledger", "void", theirs["pending_id"], "--key", "remote-v2", *REASON)
    assert stable(voided) == stable(voided_mine)

    moved = both(local, remote, "ledger", "transfer", "--from", WORLD, "--to", USD,
                 "--asset", "USD", "--amount", "2.00", "--key", "remote-r", *REASON)
    reversed_mine = local.json("ledger", "reverse", moved[0]["id"], "--key", "remote-rr",
                               *REASON)
    reversed_theirs = remote.json("ledger", "reverse", moved[1]["id"], "--key", "remote-rr",
                                  *REASON)
    assert stable(reversed_theirs) == stable(reversed_mine)
    assert reversed_theirs["reverses"] == moved[1]["id"]
    finished = remote("ledger", "post", theirs["pending_id"], *REASON, code=2).stderr
    assert finished.startswith("error[pending_already_finished]: ")


def test_verify_and_the_pool_view(local: Cli, remote: Cli) -> None:
    mine, theirs = both(local, remote, "ledger", "verify")
    assert theirs["ok"] is True
    assert theirs["entries"] == mine["entries"]
    assert "ok" in remote("ledger", "verify").stdout
    mine, theirs = both(local, remote, "pool", "view", "--config", str(CONFIG))
    assert theirs == mine  # figures only: no ids, no times
    human = remote("pool", "view").stdout
    assert human == local("pool", "view", "--config", str(CONFIG)).stdout
    assert "Bank A wire" in human
    assert theirs["reporting_total"]["total"] in human


def test_payment_commands(local: Cli, remote: Cli) -> None:
    config = ("--config", str(CONFIG))
    # Creation refuses a payout beyond the pool's available USD: enough on both stores.
    both(local, remote, "ledger", "transfer", "--from", WORLD, "--to", USD, "--asset", "USD",
         "--amount", "100.00", "--key", "remote-fund-payments", *REASON)
    created: dict[str, str] = {}
    for n, amount in enumerate(("12.50", "7.00", "3.25")):
        mine, theirs = both(local, remote, "payment", "create", "--kind", "payout", "--asset",
                            "USD", "--amount", amount, "--counterparty", "Bob", "--key",
                            f"remote-pay-{n}", "--meta", "order=42",
                            "--destination", "DE89370400440532013000", *config)
        assert (theirs["state"], theirs["amount_minor"]) == ("initiated",
                                                             amount.replace(".", "").lstrip("0"))
        created[mine["id"]] = theirs["id"]
    last_mine, last_theirs = list(created.items())[-1]
    shown_mine = local.json("payment", "show", last_mine, *config)
    shown = remote.json("payment", "show", last_theirs)
    assert stable(shown) == stable(shown_mine)
    assert shown["events"][0]["from"] is None
    assert "timeline" in remote("payment", "show", last_theirs).stdout

    mine, theirs = both(local, remote, "payment", "list", "--limit", "2", *config)
    assert [p["amount"] for p in theirs["payments"]] == ["3.25", "7.00"]
    assert created[mine["next_after"]] == theirs["next_after"]
    rest_mine = local.json("payment", "list", "--after", mine["next_after"], *config)
    rest = remote.json("payment", "list", "--after", theirs["next_after"])
    assert stable(rest) == stable(rest_mine)
    assert [p["amount"] for p in rest["payments"]] == ["12.50"]

    unknown = ("payment", "show", "no-such-payment")
    assert remote(*unknown, code=2).stderr.startswith("error[unknown_payment]: ")


def test_errors_print_as_local_errors_and_exit_2(
    server: LiveServer, local: Cli, remote: Cli
) -> None:
    overdraw = ("ledger", "transfer", "--from", "pool:main:usd:rtp:available", "--to", WORLD,
                "--asset", "USD", "--amount", "5.00", *REASON)
    assert remote(*overdraw, code=2).stderr == local(*overdraw, code=2).stderr
    assert "error[insufficient_funds]" in remote(*overdraw, code=2).stderr
    assert remote.json(*overdraw, code=2) == local.json(*overdraw, code=2)

    unknown = ("ledger", "balance", "treasury:nobody")
    assert remote(*unknown, code=2).stderr == local(*unknown, code=2).stderr

    wrong = server.admin_key[:-1] + ("A" if server.admin_key[-1] != "A" else "B")
    bad = Cli("--url", server.url, "--api-key", wrong)
    result = bad("ledger", "balance", USD, code=2)
    assert result.stderr.startswith("error[invalid_credentials]: ")
    assert result.stdout == ""
    assert bad.json("ledger", "balance", USD, code=2)["code"] == "invalid_credentials"

    viewer = Cli("--url", server.url, "--api-key", server.viewer_key)
    refused = viewer("ledger", "transfer", "--from", WORLD, "--to", USD, "--asset", "USD",
                     "--amount", "1.00", code=2).stderr
    assert refused.startswith("error[forbidden]: ")
    assert "permission: ledger:write" in refused
    assert viewer.json("ledger", "balance", USD)["address"] == USD

    # An adjustment without its reason is refused the same on both; a cashier's key may not
    # make one at all, reason or not.
    unexplained = ("ledger", "transfer", "--from", WORLD, "--to", USD, "--asset", "USD",
                   "--amount", "1.00")
    assert remote(*unexplained, code=2).stderr == local(*unexplained, code=2).stderr
    assert remote.json(*unexplained, code=2)["code"] == "adjustment_reason_required"
    cashier = Cli("--url", server.url, "--api-key", server.key("remote-cashier", ["cashier"]))
    refused = cashier(*unexplained, *REASON, code=2).stderr
    assert refused.startswith("error[adjustment_permission_required]: ")
    assert "permission: ledger:adjust" in refused

    nobody = Cli("--url", "http://127.0.0.1:9", "--api-key", "fpk_x")
    assert nobody("ledger", "verify", code=2).stderr.startswith("error[unreachable]: ")


def test_the_environment_names_the_server(server: LiveServer, local: Cli) -> None:
    env = {"FUNDPOOL_URL": server.url, "FUNDPOOL_API_KEY": server.admin_key}
    result = Cli()("ledger", "balance", USD, "--json", env=env)
    assert json.loads(result.stdout)["address"] == USD

    mixed = Cli("--url", server.url, "--data-dir", "somewhere")
    assert "--url acts on a server" in mixed("ledger", "balance", USD, code=2).stderr
