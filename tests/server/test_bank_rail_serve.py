"""The ISO 20022 bank rail in the app `fundpool serve` runs, selected per channel in the pool
configuration (`adapter = "iso20022"`, a `bank` table with `simulated = true`): a payout made
through the API on that channel leaves as a pain.001 file in the bank's exchange, the
simulated bank answers (pain.002, then a camt.054 booking), and the engine takes the payment to
settled from those files alone; its reconciliation state is there to read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from fundpool.compose import build_app
from fundpool.ledger.service import Ledger
from fundpool.pool.setup import init_pool
from fundpool.runtime import SystemClock, system_ids
from fundpool.server.settings import Settings
from fundpool.server.v1.context import Api
from tests.server.api_helpers import EXAMPLE
from tests.waiting import wait_until

BANK = ('adapter = "iso20022"\n'
        'bank = { exchange = "banks/bank-a", account = "GB33BUKB20201555555555", '
        'name = "Fundpool Treasury Ltd", simulated = true }\n')
SETTLE_S_MAX = 60.0


def bank_config(folder: Path) -> Path:
    """examples/pool.toml with bank-a on the bank rail, open at all hours (its cut-off would
    hold a payout made in the evening until the next morning), beside the rates it names."""
    text = EXAMPLE.read_text(encoding="utf-8")
    cutoff = 'cutoff = [{ days = "mon-fri", open = "00:00", close = "21:00" }]\n'
    assert text.count(cutoff) == 1
    text = text.replace(cutoff, "")
    header = '[[channels]]\nid = "bank-a"\n'
    assert text.count(header) == 1
    (folder / "treasury.toml").write_text(
        (EXAMPLE.parent / "treasury.toml").read_text("utf-8"), encoding="utf-8")
    (folder / "rates.toml").write_text((EXAMPLE.parent / "rates.toml").read_text("utf-8"),
                                       encoding="utf-8")
    config = folder / "pool.toml"
    config.write_text(text.replace(header, header + BANK), encoding="utf-8")
    return config


def test_a_payout_on_the_bank_rail_settles_from_the_banks_files(tmp_path: Path) -> None:
    data = tmp_path / "data"
    app = build_app(Settings(data_dir=data, config=bank_config(tmp_path), access_log=False,
                             engine=True))
    api: Api = app.state.api
    init_pool(Ledger(api.store, SystemClock(), system_ids()), api.config)
    with TestClient(app) as client:
        _, token = api.auth.create_key("admin", ["admin"], now_us=api.clock.now_us())
        admin = {"Authorization": f"Bearer {token}"}
        funded = client.post("/v1/ledger/transactions", headers=admin, json={
            "postings": [{"source": "world:bank-a", "destination":
                          "pool:main:usd:bank-a:available", "asset": "USD",
                          "amount": "50000.00"}], "reason": "the float at the bank"})
        assert funded.status_code == 201, funded.text
        made = client.post("/v1/payments", headers=admin, json={
            "kind": "payout", "asset": "USD", "amount": "250.00", "channel": "bank-a",
            "counterparty": "Jane Roe", "destination": "GB29NWBK60161331926819",
            "reference": "invoice 7"})
        assert made.status_code == 201, made.text
        payment_id = made.json()["id"]

        def final() -> dict[str, Any] | None:
            doc: dict[str, Any] = client.get(f"/v1/payments/{payment_id}",
                                             headers=admin).json()
            return doc if doc["state"] in ("settled", "failed", "returned") else None

        done = wait_until(final, within_s=SETTLE_S_MAX, what=f"payout {payment_id} to end",
                          detail=lambda: client.get(f"/v1/payments/{payment_id}",
                                                    headers=admin).json())
        exchange = data / "banks" / "bank-a"
        sent = list((exchange / "to-bank").glob("*.xml"))
        assert len(sent) == 1
        assert payment_id.replace("-", "").encode() in sent[0].read_bytes()
        answers = sorted(p.name for p in (exchange / "from-bank" / "done").glob("*.xml"))
        assert any("pain002" in name for name in answers), answers
        if done["state"] == "settled":  # the bank may plant a rejection (AC04) instead
            assert any("camt054" in name for name in answers), answers
        state = client.get(f"/v1/recon/payments/{payment_id}", headers=admin).json()
        assert state["state"] == "unreconciled"  # until the bank's day ends in a camt.053
