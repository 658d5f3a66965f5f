"""`fundpool payment create | act | show | list` through the real CLI."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from fundpool.cli.main import app

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "pool.toml"
runner = CliRunner()


class Cli:
    def __init__(self, data: Path) -> None:
        self.common = ["--config", str(EXAMPLE), "--data-dir", str(data)]

    def __call__(self, *args: str, code: int = 0) -> dict[str, object]:
        result = runner.invoke(app, [*args, *self.common, "--json"])
        assert result.exit_code == code, result.output
        document: dict[str, object] = json.loads(result.stdout)
        return document


def test_a_deposit_and_a_payout_through_their_lives(tmp_path: Path) -> None:
    cli = Cli(tmp_path / "data")
    cli("pool", "init")
    deposit = cli("payment", "create", "--kind", "deposit", "--asset", "USD", "--amount",
                  "1000.00", "--channel", "card-acq", "--counterparty", "alice", "--key", "d-1")
    assert deposit["state"] == "initiated"
    assert deposit["fee"] == "18.00"  # 180 bps inbound on the card acquirer
    again = cli("payment", "create", "--kind", "deposit", "--asset", "USD", "--amount",
                "1000.00", "--channel", "card-acq", "--counterparty", "alice", "--key", "d-1")
    assert again["id"] == deposit["id"]
    conflict = cli("payment", "create", "--kind", "deposit", "--asset", "USD", "--amount",
                   "999.00", "--channel", "card-acq", "--key", "d-1", code=2)
    assert conflict["code"] == "idempotency_conflict"
    for action in ("screen", "clear", "settle"):
        assert cli("payment", "act", str(deposit["id"]), action)["version"]

    payout = cli("payment", "create", "--kind", "payout", "--asset", "USD", "--amount", "300.00")
    pid = str(payout["id"])
    cli("payment", "act", pid, "screen")
    routed = cli("payment", "act", pid, "route", "--channel", "card-acq")
    assert routed["fee"] == "1.05"  # 0.30 + 25 bps
    early = cli("payment", "act", pid, "settle", code=2)
    assert early["code"] == "illegal_transition"
    for action in ("approve", "submit", "settle"):
        cli("payment", "act", pid, action)
    shown = cli("payment", "show", pid)
    steps = [(e["action"], e["to"], len(e["entries"])) for e in shown["events"]]  # type: ignore[union-attr]
    assert steps == [
        ("create", "initiated", 0), ("screen", "screened", 0), ("route", "routed", 0),
        ("approve", "approved", 1), ("submit", "submitted", 1), ("settle", "settled", 1),
    ]
    listed = cli("payment", "list", "--state", "settled")
    assert {p["id"] for p in listed["payments"]} == {deposit["id"], pid}  # type: ignore[union-attr]

    view = cli("pool", "view")
    usd = next(a for a in view["assets"] if a["asset"] == "USD")  # type: ignore[union-attr]
    card = usd["channels"]["card-acq"]
    # 1000 in, 18 fee; 300 out with a 1.05 fee
    assert card["available"] == "680.95"
    assert card["fees"] == "19.05"
    assert card["total"] == "680.95"


def test_bad_requests_are_clear_and_create_nothing(tmp_path: Path) -> None:
    cli = Cli(tmp_path / "data")
    cli("pool", "init")
    unknown = cli("payment", "create", "--kind", "payout", "--asset", "GBP", "--amount", "1",
                  code=2)
    assert unknown["code"] == "unknown_asset"
    decimals = cli("payment", "create", "--kind", "payout", "--asset", "USD", "--amount",
                   "1.005", code=2)
    assert decimals["code"] == "too_many_decimals"
    no_channel = cli("payment", "create", "--kind", "deposit", "--asset", "USD", "--amount",
                     "5.00", code=2)
    assert no_channel["code"] == "invalid_payment"
    assert cli("payment", "list")["payments"] == []
    missing = cli("payment", "show", "01a21050-f3c7-7591-b695-e900efee9dd9", code=2)
    assert missing["code"] == "unknown_payment"
