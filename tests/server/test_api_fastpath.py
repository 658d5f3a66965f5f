"""The hot path of single transfers (server/v1/fastpath.py) answers exactly as the route in
ledger.py does: same status, headers that matter and document, for successes, replays and
refusals; whatever it does not take, the route answers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from fundpool.server.v1 import fastpath
from tests.server.api_app import ApiApp, api_app

URL = "/v1/ledger/transactions"
VOLATILE = {"id", "seq", "at", "at_us", "hash", "idempotency_key"}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> ApiApp:
    return api_app(tmp_path_factory.mktemp("fast") / "data")


@pytest.fixture(scope="module")
def client(served: ApiApp) -> Iterator[Any]:
    with TestClient(served.app) as c:
        yield c


def transfer(amount: str, source: str = "world:bank-a", asset: str = "USD") -> dict[str, Any]:
    return {"postings": [{"source": source, "destination": "pool:main:usd:bank-a:available",
                          "asset": asset, "amount": amount}], "metadata": {"ref": "r-1"}}


def answer(response: Any) -> tuple[int, str | None, str, dict[str, Any]]:
    body = {k: v for k, v in response.json().items() if k not in VOLATILE}
    return (response.status_code, response.headers.get("idempotent-replayed"),
            response.headers["content-type"], body)


def both(client: Any, served: ApiApp, monkeypatch: pytest.MonkeyPatch, body: Any,
         key: str | None, role: str = "cashier", **kwargs: Any) -> tuple[Any, Any]:
    calls = {"n": 0}
    original = fastpath.transfer

    async def counted(*args: Any) -> Any:
        calls["n"] += 1
        return await original(*args)

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
    ("insufficient", transfer("1.00", source="pool:main:usd:bank-a:fees"), "cashier"),
    ("unknown_asset", transfer("1.00", asset="XAU"), "cashier"),
    ("too_many_decimals", transfer("1.001"), "cashier"),
    ("unknown_field", {**transfer("1.00"), "memo": "x"}, "cashier"),
    ("wrong_type", {"postings": "x"}, "cashier"),
    ("forbidden", transfer("1.00"), "viewer"),
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
        yield b'"destination": "pool:main:usd:bank-a:available", "asset": "USD", '
        yield b'"amount": "2.00"}], "memo": 1}'

    response = client.post(URL, headers={**served.headers("cashier"),
                                         "content-type": "application/json"}, content=chunks())
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_request"


