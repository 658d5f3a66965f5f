"""No way around the controls: the accounts of pools and merchants move only through their
services. A raw posting that touches one is an adjustment: a cashier's is refused
(`adjustment_permission_required`), an admin's needs a reason (`adjustment_reason_required`),
and one made is recorded as such with its reason and actor, in the entry (inside the hash
chain) and in the event stream. Postings between the callers' own accounts are as before."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from fundpool.server.v1 import stream
from tests.server.api_app import ApiApp, api_app

URL = "/v1/ledger/transactions"
POOL = "pool:main:usd:bank-a:available"
LOCKED = "pool:main:usd:bank-a:locked"
MERCHANT = "merchant:m42:usd:payable"
CUSTOMER_A, CUSTOMER_B = "customer:adj:a", "customer:adj:b"
RECEIVE_S = 20.0


@pytest.fixture(autouse=True)
def quick_heartbeats(monkeypatch: pytest.MonkeyPatch) -> None:
    # A connection never waits long without a frame: a test missing one fails on its bound.
    monkeypatch.setattr(stream, "HEARTBEAT_S", 0.5)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> ApiApp:
    return api_app(tmp_path_factory.mktemp("adjust") / "data")


@pytest.fixture(scope="module")
def client(served: ApiApp) -> Iterator[Any]:
    with TestClient(served.app) as c:
        for address in (CUSTOMER_A, CUSTOMER_B):
            opened = c.post("/v1/ledger/accounts", headers=served.headers("cashier"),
                            json={"address": address, "asset": "USD"})
            assert opened.status_code == 201, opened.text
        yield c


def posting(source: str, destination: str, amount: str = "10.00") -> dict[str, str]:
    return {"source": source, "destination": destination, "asset": "USD", "amount": amount}


def state(client: Any, served: ApiApp) -> tuple[int, list[str]]:
    """The journal's head and the balances of every account these tests touch."""
    h = served.headers("viewer")
    head = client.get(f"{URL}?limit=1", headers=h).json()["data"][0]["seq"]
    balances = []
    for address in (POOL, LOCKED, MERCHANT, CUSTOMER_A, CUSTOMER_B):
        rows = client.get(f"/v1/ledger/accounts/{address}/balances", headers=h).json()
        balances.append(str(rows["balances"]))
    return head, balances


def problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    return body


def test_a_cashiers_raw_posting_to_a_pool_account_is_refused(served: ApiApp,
                                                             client: Any) -> None:
    before = state(client, served)
    cashier = served.headers("cashier")
    for body in ({"postings": [posting("world:bank-a", POOL)]},
                 {"postings": [posting("world:bank-a", POOL)], "reason": "top-up"},
                 {"postings": [posting("world:bank-a", CUSTOMER_A),
                               posting(POOL, CUSTOMER_B)]},
                 {"postings": [posting("world:bank-a", MERCHANT)], "reason": "credit"}):
        refused = problem(client.post(URL, headers=cashier, json=body), 403,
                          "adjustment_permission_required")
        assert refused["facts"]["permission"] == "ledger:adjust"
        assert set(refused["facts"]["accounts"]) <= {POOL, MERCHANT}
    assert state(client, served) == before


def test_an_admins_raw_posting_without_a_reason_is_refused(served: ApiApp,
                                                           client: Any) -> None:
    before = state(client, served)
    admin = served.headers("admin")
    for reason in (None, "", "   "):
        body: dict[str, Any] = {"postings": [posting("world:bank-a", POOL)]}
        if reason is not None:
            body["reason"] = reason
        refused = problem(client.post(URL, headers=admin, json=body), 400,
                          "adjustment_reason_required")
        assert refused["facts"]["accounts"] == [POOL]
    assert state(client, served) == before


def test_an_admins_adjustment_is_recorded_with_its_reason_and_actor(served: ApiApp,
                                                                    client: Any) -> None:
    with client.websocket_connect("/v1/stream?type=ledger.entry_committed",
                                  headers=served.headers("viewer")) as ws:
        assert set(ws.receive_json()) == {"heartbeat"}  # on the live feed from here on
        made = client.post(URL, headers={**served.headers("admin"),
                                         "X-Request-Id": "adjust-req-1"},
                           json={"postings": [posting("world:bank-a", POOL, "25.00")],
                                 "metadata": {"ticket": "OPS-7"},
                                 "reason": "  bank credited the float twice  "})
        assert made.status_code == 201, made.text
        entry = made.json()
        frame = next_frame(ws, entry["id"])
    key_id = served.headers("admin")["Authorization"].split("_")[1]
    expected = {"reason": "bank credited the float twice",
                "actor": {"kind": "key", "id": key_id, "name": "test-admin",
                          "roles": ["admin"], "key_id": key_id,
                          "request_id": "adjust-req-1"}}
    # In the entry's own metadata, so inside the hash chain.
    assert entry["metadata"]["kind"] == "adjustment"
    assert entry["metadata"]["ticket"] == "OPS-7"
    assert entry["metadata"]["reason"] == "bank credited the float twice"
    assert entry["adjustment"] == expected
    shown = client.get(f"{URL}/{entry['id']}", headers=served.headers("viewer")).json()
    assert shown["adjustment"] == expected
    assert shown["metadata"] == entry["metadata"]
    listed = client.get(URL, headers=served.headers("viewer"), params={"limit": 5}).json()
    assert next(e for e in listed["data"] if e["id"] == entry["id"])["adjustment"] == expected
    # In the stream: the entry's event carries the adjustment beside its data.
    assert frame["data"]["entry_seq"] == entry["seq"]
    assert frame["adjustment"] == expected
    verified = client.get("/v1/ledger/verify", headers=served.headers("auditor")).json()
    assert verified["ok"], verified
    # Read back from the outbox on a resume, the frame is labelled the same.
    (_, first), *_ = served.app.state.api.outbox.after(0, 1)
    with client.websocket_connect(f"/v1/stream?type=ledger.entry_committed&after={first.id}",
                                  headers=served.headers("viewer")) as ws:
        assert next_frame(ws, entry["id"])["adjustment"] == expected


def next_frame(ws: Any, entry_id: str) -> dict[str, Any]:
    """The stream's frame of entry `entry_id`; fails past the deadline (a heartbeat comes
    every 0.5 s, so a receive never blocks for long)."""
    deadline = time.monotonic() + RECEIVE_S
    while time.monotonic() < deadline:
        frame: dict[str, Any] = ws.receive_json()
        if "heartbeat" not in frame and frame["data"]["entry_id"] == entry_id:
            return frame
    raise AssertionError(f"no frame of entry {entry_id} within {RECEIVE_S} s")


def test_a_cashiers_posting_between_other_accounts_still_works(served: ApiApp,
                                                               client: Any) -> None:
    cashier = served.headers("cashier")
    with client.websocket_connect("/v1/stream?type=ledger.entry_committed",
                                  headers=served.headers("viewer")) as ws:
        assert set(ws.receive_json()) == {"heartbeat"}
        funded = client.post(URL, headers=cashier, json={
            "postings": [posting("world:bank-a", CUSTOMER_A, "30.00")]})
        assert funded.status_code == 201, funded.text
        moved = client.post(URL, headers=cashier, json={
            "postings": [posting(CUSTOMER_A, CUSTOMER_B, "12.50")],
            "metadata": {"kind": "refund"}})
        assert moved.status_code == 201, moved.text
        frame = next_frame(ws, moved.json()["id"])
    assert "adjustment" not in moved.json()
    assert moved.json()["metadata"] == {"kind": "refund"}
    assert "adjustment" not in frame
    balance = client.get(f"/v1/ledger/accounts/{CUSTOMER_B}/balances",
                         headers=cashier).json()["balances"][0]
    assert balance["posted"] == "12.50"


def test_pendings_and_reversals_of_the_pools_money_are_adjustments(served: ApiApp,
                                                                   client: Any) -> None:
    admin, cashier = served.headers("admin"), served.headers("cashier")
    client.post(URL, headers=admin, json={"postings": [posting("world:bank-a", POOL, "50.00")],
                                          "reason": "funding for this test"})
    reserved = client.post("/v1/ledger/pendings", headers=admin, json={
        "posting": posting(POOL, LOCKED, "5.00"), "reason": "hold for a disputed payout"})
    assert reserved.status_code == 201, reserved.text
    assert reserved.json()["adjustment"]["reason"] == "hold for a disputed payout"
    pending_id = reserved.json()["pending_id"]
    before = state(client, served)
    # A cashier may neither post nor void a reservation of the pool's money...
    for action in ("post", "void"):
        problem(client.post(f"/v1/ledger/pendings/{pending_id}/{action}", headers=cashier,
                            json={"reason": "done"}), 403, "adjustment_permission_required")
        problem(client.post(f"/v1/ledger/pendings/{pending_id}/{action}", headers=admin),
                400, "adjustment_reason_required")
    assert state(client, served) == before
    posted = client.post(f"/v1/ledger/pendings/{pending_id}/post", headers=admin,
                         json={"amount": "2.00", "reason": "dispute settled at 2.00"})
    assert posted.status_code == 201, posted.text
    assert posted.json()["adjustment"]["reason"] == "dispute settled at 2.00"
    # ... nor reverse an entry that moved it (a reversal needs ledger:reverse besides).
    entry_id = posted.json()["id"]
    problem(client.post(f"{URL}/{entry_id}/reversal", headers=admin, json={}), 400,
            "adjustment_reason_required")
    reversed_ = client.post(f"{URL}/{entry_id}/reversal", headers=admin,
                            json={"reason": "posted to the wrong account"})
    assert reversed_.status_code == 201, reversed_.text
    assert reversed_.json()["reverses"] == entry_id
    assert reversed_.json()["adjustment"]["actor"]["roles"] == ["admin"]


def test_a_retried_adjustment_replays_under_its_key(served: ApiApp, client: Any) -> None:
    """A retry comes with a new request id: it must still replay, not be taken for another
    request; another reason, or another principal, under the same key is a conflict."""
    body = {"postings": [posting("world:bank-a", POOL, "3.00")], "reason": "fee refund"}
    h = {**served.headers("admin"), "Idempotency-Key": "adjust-retry-1"}
    first = client.post(URL, headers={**h, "X-Request-Id": "try-1"}, json=body)
    assert first.status_code == 201, first.text
    before = state(client, served)
    again = client.post(URL, headers={**h, "X-Request-Id": "try-2"}, json=body)
    assert again.status_code == 200, again.text
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["adjustment"]["actor"]["request_id"] == "try-1"  # who made it
    problem(client.post(URL, headers=h, json={**body, "reason": "another reason"}), 409,
            "idempotency_conflict")
    other_admin = served.app.state.api.auth.create_key(
        "second-admin", ["admin"], now_us=served.app.state.api.clock.now_us())[1]
    problem(client.post(URL, headers={"Authorization": f"Bearer {other_admin}",
                                      "Idempotency-Key": "adjust-retry-1"}, json=body),
            409, "idempotency_conflict")
    assert state(client, served) == before


def test_a_batch_with_an_adjustment_is_all_or_nothing_on_the_permission(
        served: ApiApp, client: Any) -> None:
    plain = {"postings": [posting("world:bank-a", CUSTOMER_A, "1.00")]}
    to_pool = {"postings": [posting("world:bank-a", POOL, "1.00")]}
    before = state(client, served)
    refused = problem(client.post(f"{URL}/batch", headers=served.headers("cashier"),
                                  json={"transfers": [plain, to_pool]}), 403,
                      "adjustment_permission_required")
    assert refused["facts"]["index"] == 1
    refused = problem(client.post(f"{URL}/batch", headers=served.headers("admin"),
                                  json={"transfers": [plain, to_pool]}), 400,
                      "adjustment_reason_required")
    assert refused["facts"]["index"] == 1
    assert state(client, served) == before
    done = client.post(f"{URL}/batch", headers=served.headers("admin"), json={
        "transfers": [plain, {**to_pool, "reason": "a correction"}]})
    assert done.status_code == 200, done.text
    results = done.json()["results"]
    assert done.json()["applied"] == 2
    assert "adjustment" not in results[0]["entry"]
    assert results[1]["entry"]["adjustment"]["reason"] == "a correction"


def test_the_actor_fits_a_metadata_value_whatever_its_name(tmp_path: Path) -> None:
    served = api_app(tmp_path / "data")
    api = served.app.state.api
    # The longest key name there is, every character one JSON escapes.
    _, token = api.auth.create_key('"' * 64, ["admin"], now_us=api.clock.now_us())
    with TestClient(served.app) as c:
        made = c.post(URL, headers={"Authorization": f"Bearer {token}",
                                    "X-Request-Id": "r" * 128},
                      json={"postings": [posting("world:bank-a", POOL)], "reason": "x" * 500})
        assert made.status_code == 201, made.text
        actor = made.json()["adjustment"]["actor"]
        assert actor["request_id"] == "r" * 128
        assert actor["roles"] == ["admin"]
        assert len(made.json()["metadata"]["actor"]) <= 512
