"""`fundpool recon` on a local store, as an operator runs it: import a camt.053 with one
payment and a charge the books lack, list the break, resolve it by booking the difference,
see the statement reconciled; a refused file exits 2 naming the place and stores nothing."""

from __future__ import annotations

import json
import time
from pathlib import Path

from typer.testing import CliRunner

import fundpool.stores
from fundpool.channels.iso20022.camt import write_camt053
from fundpool.cli.main import app
from fundpool.core.clock import Uuid7Ids
from fundpool.ledger.service import Ledger
from fundpool.payments.model import Action, PaymentKind, PaymentRequest
from fundpool.payments.service import PaymentService, Step
from fundpool.pool.config import load_config
from fundpool.recon.model import Balance, LineKind, Statement, StatementLine, end_to_end_of
from fundpool.runtime import SystemClock
from fundpool.stores.sqlite import SqliteStore

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "pool.toml"
DAY_US = 86_400_000_000
runner = CliRunner()


def run(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result.stdout


def test_import_breaks_resolve_balances(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    local = ("--config", str(EXAMPLE), "--data-dir", data)
    run("pool", "init", *local)
    config = load_config(EXAMPLE)
    store = SqliteStore(Path(data) / "ledger.sqlite3")
    payments = PaymentService(Ledger(store, SystemClock(), Uuid7Ids.seeded(1)),
                              fundpool.stores.payment_store(store), config, config.pool("main"),
                              Uuid7Ids.seeded(2))
    deposit = payments.create(PaymentRequest(PaymentKind.DEPOSIT, "EUR", 42_00, channel="sepa",
                                             reference="INV-5"))
    payments.act_many([Step(deposit.id, a) for a in (Action.SCREEN, Action.CLEAR,
                                                     Action.SETTLE)])
    store.close()
    now_us = time.time_ns() // 1_000
    today = now_us - now_us % DAY_US
    lines = (StatementLine("x:1", 42_00, "EUR", today, today,
                           end_to_end_id=end_to_end_of(deposit.id)),
             StatementLine("x:2", -1_10, "EUR", today, today, kind=LineKind.CHARGE))
    statement = Statement("CLI-1", "DE02120300000000202051", "EUR", today, lines,
                          opening=Balance(0, today), closing=Balance(40_90, today))
    camt = tmp_path / "camt053.xml"
    camt.write_bytes(write_camt053([statement], message_id="M-CLI-1", created_at_us=today,
                                   scales={"EUR": 2}))

    done = json.loads(run("recon", "import", str(camt), "--channel", "sepa", *local, "--json"))
    assert (done["statements"], done["run"]["matched_lines"], done["run"]["breaks"]) == (
        ["CLI-1"], 1, 1)
    (brk,) = json.loads(run("recon", "breaks", "--channel", "sepa", *local, "--json"))["breaks"]
    assert (brk["side"], brk["amount"], brk["reason"]) == ("statement", "-1.10", "not_in_books")
    human = run("recon", "breaks", *local)
    assert "not_in_books" in human

    resolved = json.loads(run("recon", "resolve", "statement", brk["id"], "--note",
                              "bank fee", "--book", *local, "--json"))
    assert (resolved["action"], resolved["amount"]) == ("booked", "-1.10")
    (check,) = json.loads(run("recon", "balances", "--channel", "sepa", *local,
                              "--json"))["balances"]
    assert (check["closing_difference"], check["reconciled"]) == (0, True)

    # The same file again, and a truncated one: exit 2, the code and the place, nothing kept.
    again = runner.invoke(app, ["recon", "import", str(camt), "--channel", "sepa", *local,
                                "--json"])
    assert again.exit_code == 2
    assert "duplicate_statement" in again.output
    cut = tmp_path / "cut.xml"
    cut.write_bytes(camt.read_bytes()[:200])
    refused = runner.invoke(app, ["recon", "import", str(cut), "--channel", "sepa", *local])
    assert refused.exit_code == 2
    assert "file_refused" in refused.output
    assert "cut.xml" in refused.output
