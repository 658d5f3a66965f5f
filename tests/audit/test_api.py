"""`/v1/audit` on the app `fundpool serve` runs: the leader keeps the log synced, the routes
answer the auditor and refuse a cashier, bad input is a problem with its code, and the Python
client's methods read the same documents."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from fundpool.audit import merkle
from fundpool.auth.roles import Role
from tests.server.api_helpers import assert_problem, running_server


def test_the_audit_routes(tmp_path: Path) -> None:
    with running_server(tmp_path / "data", audit_publish_dir=tmp_path / "published") as server:
        auditor = server.as_role(Role.AUDITOR)
        cashier = server.as_role(Role.CASHIER)
        server.fund("bank-a", "USD", "1000.00")  # an adjustment, with its actor and reason
        deadline = time.monotonic() + 10
        while server.get("/v1/audit/status", auditor)["size"] == 0:  # the leader's sync
            assert time.monotonic() < deadline, "the leader never synced the audit log"
            time.sleep(0.1)
        server.api.audit.sync()
        server.api.audit.checkpoint()
        status = server.get("/v1/audit/status", auditor)
        assert status["latest_checkpoint"]["size"] == status["size"]
        adjustments = server.get("/v1/audit/entries", auditor, action="ledger.adjustment")
        assert len(adjustments["data"]) == 1
        record = adjustments["data"][0]["record"]
        assert record["details"]["reason"] == "test set-up: the pool's float"
        assert record["actor"]["kind"] == "key"
        seq = adjustments["data"][0]["seq"]
        one = server.get(f"/v1/audit/entries/{seq}", auditor)
        root = bytes.fromhex(one["checkpoint"]["root"])
        assert merkle.verify_inclusion(seq, one["tree_size"], bytes.fromhex(
            one["entry"]["leaf_hash"]), [bytes.fromhex(p) for p in one["proof"]], root)
        page = server.get("/v1/audit/entries", auditor, limit=2)
        rest = server.get("/v1/audit/entries", auditor, limit=2, cursor=page["next_cursor"])
        assert rest["data"][0]["seq"] == page["data"][-1]["seq"] + 1
        assert server.get("/v1/audit/checkpoints", auditor)["data"][0]["size"] == status["size"]
        assert server.get("/v1/audit/public-key", auditor)["key_id"] == \
            status["latest_checkpoint"]["key_id"]
        verified = server.client.post("/v1/audit/verify", headers=auditor)
        assert verified.status_code == 200
        assert verified.json()["ok"] is True
        exported = server.client.get("/v1/audit/export", headers=auditor,
                                     params={"from": 0})
        lines = [json.loads(x) for x in exported.text.splitlines()]
        assert lines[0]["type"] == "header"
        assert lines[-1]["type"] == "trailer"
        assert list((tmp_path / "published").glob("checkpoint-*.json"))
        # refused: the wrong role, a seq past the log, sizes out of order, an empty range
        assert_problem(server.client.get("/v1/audit/status", headers=cashier), 403, "forbidden")
        assert_problem(server.client.get(f"/v1/audit/entries/{status['size']}",
                                         headers=auditor), 404, "audit_seq_out_of_range")
        assert_problem(server.client.get("/v1/audit/consistency", headers=auditor,
                                         params={"first": 3, "second": 2}),
                       400, "audit_sizes_out_of_order")
        assert_problem(server.client.get("/v1/audit/consistency", headers=auditor,
                                         params={"first": 1, "second": status["size"] + 5}),
                       400, "audit_size_out_of_range")
        assert_problem(server.client.get("/v1/audit/export", headers=auditor,
                                         params={"from": status["size"]}),
                       400, "invalid_audit_range")


def test_the_client_reads_the_audit_log(tmp_path: Path) -> None:
    from fundpool.client import Client
    from fundpool.client.errors import NotFound

    with running_server(tmp_path / "data") as server:
        token = server.as_role(Role.AUDITOR)["Authorization"].removeprefix("Bearer ")
        server.fund("bank-a", "USD", "10.00")
        server.api.audit.sync()
        server.api.audit.checkpoint()
        transport = server.client._transport  # the app in this process, as TestClient reaches it
        with Client("http://testserver", token, transport=transport) as client:
            status = client.audit_status()
            assert status["size"] == status["latest_checkpoint"]["size"] > 0
            found = client.audit_entries(action="ledger.adjustment")
            assert len(found["data"]) == 1
            one = client.audit_entry(found["data"][0]["seq"])
            assert one["tree_size"] == status["size"]
            assert client.audit_checkpoints()["data"][0]["size"] == status["size"]
            assert client.audit_verify()["ok"] is True
            assert client.audit_public_key()["key_id"] == status["latest_checkpoint"]["key_id"]
            with pytest.raises(NotFound):
                client.audit_entry(status["size"] + 10)
