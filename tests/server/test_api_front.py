"""The front door (server/v1/front.py) answers the hot path's requests before the middleware
stack, and hands everything else down untouched: a request it admitted but the hot path does
not take is charged once to the rate limit and keeps its request id, and whatever it cannot
settle (no cached key, a cookie, a large body) is answered by the stack as before."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from structlog.testing import capture_logs

from fundpool.server.v1.http import RequestContext
from tests.server.api_app import api_app

URL = "/v1/ledger/transactions"
CUSTOMER = "customer:front:a"


def transfer(amount: str = "1.00", **extra: Any) -> dict[str, Any]:
    return {"postings": [{"source": "world:bank-a", "destination": CUSTOMER, "asset": "USD",
                          "amount": amount}], **extra}


@pytest.fixture
def stack_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths of the requests that went down the middleware stack."""
    calls: list[str] = []
    original = RequestContext.__call__

    async def counted(self: RequestContext, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            calls.append(scope["path"])
        await original(self, scope, receive, send)

    monkeypatch.setattr(RequestContext, "__call__", counted)
    return calls


def test_the_front_answers_a_transfer_from_a_checked_key(tmp_path: Path,
                                                         stack_calls: list[str]) -> None:
    served = api_app(tmp_path / "data")
    with TestClient(served.app) as c:
        opened = c.post("/v1/ledger/accounts", headers=served.headers("cashier"),
                        json={"address": CUSTOMER, "asset": "USD"})
        assert opened.status_code == 201, opened.text
        first = c.post(URL, headers=served.headers("cashier"), json=transfer())
        assert first.status_code == 201, first.text
        assert stack_calls == ["/v1/ledger/accounts"]  # the key is checked now: cached
        given = c.post(URL, headers={**served.headers("cashier"), "X-Request-Id": "trace-7"},
                       json=transfer())
        made = c.post(URL, headers=served.headers("cashier"), json=transfer())
        assert given.status_code == made.status_code == 201
        assert stack_calls == ["/v1/ledger/accounts"]
        assert given.headers["x-request-id"] == "trace-7"
        assert re.fullmatch(r"[0-9a-f]{16}", made.headers["x-request-id"])
        assert given.headers["content-type"] == "application/json"
        # Not the ordinary case: the stack answers, with the request id the front gave it.
        refused = c.post(URL, headers={**served.headers("cashier"), "X-Request-Id": "trace-8"},
                         json=transfer(memo="x"))
        assert refused.status_code == 422
        assert refused.json()["code"] == "invalid_request"
        assert refused.headers["x-request-id"] == "trace-8"
        assert stack_calls == ["/v1/ledger/accounts", URL]
        # No credentials, bad ones, a body without a length: as the stack always answered.
        assert c.post(URL, json=transfer()).status_code == 401
        assert c.post(URL, headers={"Authorization": "Basic x"},
                      json=transfer()).status_code == 401

        def chunks() -> Any:
            yield b'{"postings": [{"source": "world:bank-a", "destination": '
            yield b'"customer:front:a", "asset": "USD", "amount": "1.00"}]}'

        chunked = c.post(URL, headers={**served.headers("cashier"),
                                       "content-type": "application/json"}, content=chunks())
        assert chunked.status_code == 201, chunked.text
        assert stack_calls[-3:] == [URL, URL, URL]


def test_a_request_the_front_admits_is_charged_once(tmp_path: Path,
                                                    stack_calls: list[str]) -> None:
    limited = api_app(tmp_path / "data", rate_limit_per_s=0.001, rate_limit_burst=4)
    h = limited.headers("cashier")
    with TestClient(limited.app) as c:
        assert c.post("/v1/ledger/accounts", headers=h, json={
            "address": CUSTOMER, "asset": "USD"}).status_code == 201  # checks the key
        answers = [c.post(URL, headers=h, json=body).status_code for body in (
            transfer(memo="x"),  # admitted by the front, answered by the route
            transfer(),
            transfer(),
            transfer())]
        assert answers == [422, 201, 201, 429]
        assert stack_calls == ["/v1/ledger/accounts", URL, URL]  # the 429: the gate's own


def test_the_front_writes_the_access_log_line(tmp_path: Path) -> None:
    served = api_app(tmp_path / "data", access_log=True)
    with TestClient(served.app) as c:
        c.post("/v1/ledger/accounts", headers=served.headers("cashier"),
               json={"address": CUSTOMER, "asset": "USD"})
        with capture_logs() as logs:
            done = c.post(URL, headers={**served.headers("cashier"), "X-Request-Id": "t-9"},
                          json=transfer())
    assert done.status_code == 201
    (line,) = [entry for entry in logs if entry["event"] == "request"]
    assert line["method"] == "POST"
    assert line["path"] == URL
    assert line["status"] == 201
    assert line["caller"] == "key:test-cashier"
    assert line["request_id"] == "t-9"


def test_a_header_given_twice_is_read_by_the_stack_as_the_route_reads_it(
        tmp_path: Path, stack_calls: list[str]) -> None:
    served = api_app(tmp_path / "data")
    with TestClient(served.app) as c:
        opened = c.post("/v1/ledger/accounts", headers=served.headers("cashier"),
                        json={"address": CUSTOMER, "asset": "USD"})
        assert opened.status_code == 201, opened.text
        (auth,) = served.headers("cashier").items()
        twice = c.post(URL, headers=[auth, ("Idempotency-Key", "first-key"),
                                     ("Idempotency-Key", "second-key")], json=transfer())
        assert twice.status_code == 201, twice.text
        assert stack_calls == ["/v1/ledger/accounts", URL]  # not the front's to answer
        assert twice.json()["idempotency_key"] == "first-key"
        again = c.post(URL, headers=[auth, ("Idempotency-Key", "first-key")], json=transfer())
        assert again.status_code == 200, again.text
        assert again.json()["seq"] == twice.json()["seq"]
