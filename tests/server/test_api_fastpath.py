"""The hot path of single transfers (server/v1/fastpath.py) answers exactly as the route in
ledger.py does: same status, headers that matter and document, for successes, replays and
refusals; whatever it does not take, the route answers. An adjustment (a raw posting on an
account of the pool) is never taken: the fast path is no way around `ledger:adjust`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from fundpool.server.v1 import fastpath
from tests.server.api_app import ApiApp, api_app

URL = "/v1/ledger/transactions"
VOLATILE = {"id", "seq", "at", "at_us", "hash", "idempotency_key"}
# Customers' accounts: the callers' own, which a cashier moves with ledger:write.
CUSTOMER = "customer:fast:a"
EMPTY = "customer:fast:empty"
POOL = "pool:main:usd:bank-a:available"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> ApiApp:
    served = api_app(tmp_path_factory.mktemp("fast") / "data")
    with TestClient(served.app) as c:
        for address in (CUSTOMER, EMPTY):
            opened = c.post("/v1/ledger/accounts", headers=served.headers("cashier"),
                            json={"address": address, "asset": "USD"})
            assert opened.status_code == 201, opened.text
    return served


@pytest.fixture(scope="module")
def client(served: ApiApp) -> Iterator[Any]:
    with TestClient(served.app) as c:
        yield c


def transfer(amount: str, source: str = "world:bank-a", asset: str = "USD",
             destination: str = CUSTOMER, **extra: Any) -> dict[str, Any]:
    return {"postings": [{"source": source, "destination": destination,
                          "asset": asset, "amount": amount}], "metadata": {"ref": "r-1"},
            **extra}


def answer(response: Any) -> tuple[int, str | None, str, dict[str, Any]]:
    body = {k: v for k, v in response.json().items() if k not in VOLATILE}
    return (response.status_code, response.headers.get("idempotent-replayed"),
            response.headers["content-type"], body)


def both(client: Any, served: ApiApp, monkeypatch: pytest.MonkeyPatch, body: Any,
         key: str | None, role: str = "cashier", **kwargs: Any) -> tuple[Any, Any]:
    calls = {"n": 0}
    original = fastpath.transfer

    async def counted(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        return await original(*args, **kwargs)

    headers = served.headers(role)
    monkeypatch.setattr(fastpath, "transfer", counted)
    fast = client.post(URL, headers={**headers, **({"Idempotency-Key": f"{key}-fast"} if key
                                                   else {})}, json=body, **kwargs)
    assert calls["n"] == 1
    monkeypatch.setattr(fastpath, "takes", lambda scope: False)
    routed = client.post(URL, headers={**headers, **({"Idempotency-Key": f"{key}-route"} if key
                                                     else {})}, json=body, **kwargs)
    assert calls["n"] == 1  # the second went through FastAPI's route
    monkeypatch.undo()
    return fast, routed


@pytest.mark.parametrize(("name", "body", "role"), [
    ("applied", transfer("12.34"), "cashier"),
    ("insufficient", transfer("1.00", source=EMPTY), "cashier"),
    ("unknown_asset", transfer("1.00", asset="XAU"), "cashier"),
    ("too_many_decimals", transfer("1.001"), "cashier"),
    ("unknown_field", {**transfer("1.00"), "memo": "x"}, "cashier"),
    ("wrong_type", {"postings": "x"}, "cashier"),
    ("forbidden", transfer("1.00"), "viewer"),
    # Adjustments and claims to be one: the route's refusals, whichever way they came.
    ("adjustment_by_a_cashier", transfer("1.00", destination=POOL), "cashier"),
    ("adjustment_with_reason_by_a_cashier",
     transfer("1.00", destination=POOL, reason="because"), "cashier"),
    ("adjustment_without_reason", transfer("1.00", destination=POOL), "admin"),
    ("adjustment_from_the_pool", transfer("1.00", source=POOL), "admin"),
    ("claimed_adjustment", {**transfer("1.00"), "metadata": {"kind": "adjustment"}},
     "cashier"),
])
def test_both_paths_answer_alike(served: ApiApp, client: Any, monkeypatch: pytest.MonkeyPatch,
                                 name: str, body: Any, role: str) -> None:
    fast, routed = both(client, served, monkeypatch, body, key=None, role=role)
    assert answer(fast) == answer(routed), name


def test_replays_answer_alike(served: ApiApp, client: Any,
                              monkeypatch: pytest.MonkeyPatch) -> None:
    body = transfer("3.00")
    h = {**served.headers("cashier"), "Idempotency-Key": "replay-fast"}
    first = client.post(URL, headers=h, json=body)
    assert first.status_code == 201
    again = client.post(URL, headers=h, json=body)
    monkeypatch.setattr(fastpath, "takes", lambda scope: False)
    routed = client.post(URL, headers=h, json=body)
    assert again.status_code == routed.status_code == 200
    assert again.headers["idempotent-replayed"] == routed.headers["idempotent-replayed"] == "true"
    assert again.json() == routed.json()
    assert again.json()["id"] == first.json()["id"]
    conflict = client.post(URL, headers=h, json=transfer("4.00"))
    monkeypatch.undo()
    fast_conflict = client.post(URL, headers=h, json=transfer("4.00"))
    assert fast_conflict.status_code == conflict.status_code == 409
    assert fast_conflict.json() == conflict.json()


def test_a_body_split_in_chunks_still_reaches_the_route(served: ApiApp, client: Any) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"postings": [{"source": "world:bank-a", '
        yield b'"destination": "customer:fast:a", "asset": "USD", '
        yield b'"amount": "2.00"}], "memo": 1}'

    response = client.post(URL, headers={**served.headers("cashier"),
                                         "content-type": "application/json"}, content=chunks())
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_request"




def test_an_adjustment_is_answered_by_the_route_never_the_fast_path(
        served: ApiApp, client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    written: list[Any] = []
    original = fastpath.Transfer

    def seen(*args: Any) -> Any:  # every transfer the fast path itself would write
        written.append(args)
        return original(*args)

    monkeypatch.setattr(fastpath, "Transfer", seen)
    plain = client.post(URL, headers=served.headers("cashier"), json=transfer("1.00"))
    assert plain.status_code == 201, plain.text
    assert len(written) == 1  # the ordinary case: the fast path wrote it
    adjusted = client.post(URL, headers=served.headers("admin"),
                           json=transfer("2.00", destination=POOL, reason="opening float"))
    assert adjusted.status_code == 201, adjusted.text
    assert len(written) == 1  # handed to the route, which records the adjustment
    doc = adjusted.json()
    assert doc["metadata"]["kind"] == "adjustment"
    assert doc["adjustment"]["reason"] == "opening float"
    assert doc["adjustment"]["actor"]["kind"] == "key"
    assert doc["adjustment"]["actor"]["roles"] == ["admin"]
    refused = client.post(URL, headers=served.headers("cashier"),
                          json=transfer("2.00", destination=POOL))
    assert refused.status_code == 403
    assert refused.json()["code"] == "adjustment_permission_required"
    assert len(written) == 1
