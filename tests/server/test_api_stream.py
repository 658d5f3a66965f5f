"""`/v1/stream` end to end through the test client's WebSocket: filters, resuming after an event
id with no gap and no duplicate, heartbeats, slow consumers and refusals. Traffic is written by
the simulator on the server's store while the connections are open; what each connection must
receive is read back from the outbox itself."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.testclient import WebSocketTestSession
from starlette.websockets import WebSocketDisconnect
from websockets.exceptions import ConnectionClosedError
from websockets.sync.client import connect as ws_connect

from fundpool import compose
from fundpool.compose import build_app
from fundpool.core.clock import ManualClock, Uuid7Ids
from fundpool.core.ledger.model import Account, OpenAccount, Posting, Transfer
from fundpool.ledger.service import Ledger
from fundpool.monitoring.ports import OutboxReader
from fundpool.runtime import SystemClock, system_ids
from fundpool.server.settings import Settings
from fundpool.server.v1 import stream
from tests.client import LiveServer, live_server

ROOT = Path(__file__).resolve().parents[2]
RECEIVE_S = 20.0


@dataclass
class Served:
    app: FastAPI
    client: TestClient
    admin: dict[str, str]
    traffic: Callable[[int], None]

    @property
    def outbox(self) -> OutboxReader:
        reader: OutboxReader = self.app.state.api.outbox
        return reader

    def connect(self, query: str = "", headers: dict[str, str] | None = None) -> Any:
        return self.client.websocket_connect(f"/v1/stream{query}",
                                             headers=self.admin if headers is None else headers)


def bearer(app: FastAPI, name: str, roles: list[str], scopes: list[str] | None = None
           ) -> dict[str, str]:
    api = app.state.api
    _, token = api.auth.create_key(name, roles, scopes=scopes, now_us=api.clock.now_us())
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(autouse=True)
def quick_heartbeats(monkeypatch: pytest.MonkeyPatch) -> None:
    # A connection then never goes more than half a second without a frame: a test waiting
    # for events it will not get fails on its deadline instead of hanging.
    monkeypatch.setattr(stream, "HEARTBEAT_S", 0.5)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    app = build_app(Settings(
        data_dir=tmp_path_factory.mktemp("stream") / "d", config=ROOT / "examples/pool.toml",
        access_log=False, alerts=ROOT / "examples/alerts.yaml",
        # The rules are evaluated once, at start-up: no alert event arrives mid-test; and no
        # payment engine moves the simulator's payments on: the tests write every event.
        evaluate_every_s=3600, engine=False))
    api = app.state.api
    clock = ManualClock(SystemClock().now_us() - 3_600_000_000)
    ids = Uuid7Ids.seeded(7)
    simulation = compose.simulation(Ledger(api.store, clock, ids), api.config,
                                    api.config.pools[0], seed=7, clock=clock, ids=ids)

    def traffic(steps: int) -> None:
        for _ in range(steps):
            simulation.step(8)
            clock.advance(seconds=20)
        simulation.dispatcher.flush_records()

    with TestClient(app) as client:
        simulation.open_pool()
        traffic(10)
        yield Served(app, client, bearer(app, "t", ["admin"]), traffic)


def receive(ws: WebSocketTestSession, count: int) -> list[dict[str, Any]]:
    """The next `count` events, heartbeats skipped; fails past the deadline."""
    events: list[dict[str, Any]] = []
    deadline = time.monotonic() + RECEIVE_S
    while len(events) < count:
        assert time.monotonic() < deadline, f"got {len(events)} of {count} events"
        frame = ws.receive_json()
        assert "error" not in frame, frame
        if "heartbeat" not in frame:
            events.append(frame)
    return events


def joined(ws: WebSocketTestSession) -> None:
    """Wait for the first heartbeat: the connection is then on the live feed."""
    frame = ws.receive_json()
    assert set(frame) == {"heartbeat"}, frame


def wanted(reader: OutboxReader, after_pos: int, match: Callable[[str, str], bool]
           ) -> list[str]:
    return [event.id for _, event in reader.after(after_pos) if match(event.pool, event.type)]


# --- resuming --------------------------------------------------------------------------------


def test_resume_after_an_id_gives_exactly_the_following_events(served: Served) -> None:
    before = served.outbox.after(0)
    assert len(before) > 200
    middle = len(before) // 2
    resume_id = before[middle][1].id
    with served.connect(f"?after={resume_id}") as ws:
        # The backlog, read from the outbox ...
        backlog = receive(ws, len(before) - middle - 1)
        assert [f["id"] for f in backlog] == [e.id for _, e in before[middle + 1:]]
        # ... then the live feed, from where the backlog ended.
        served.traffic(5)
        new = served.outbox.after(before[-1][0])
        assert new
        live = receive(ws, len(new))
        assert [f["id"] for f in live] == [e.id for _, e in new]
    frames = backlog + live
    for pool in {f["pool"] for f in frames}:
        seqs = [f["seq"] for f in frames if f["pool"] == pool]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "a gap or a duplicate"


def test_resume_while_events_are_written(served: Served) -> None:
    """Catching up while the poller fans out the same events: each still arrives once."""
    resume_pos, resume = served.outbox.after(0)[-50]
    with served.connect() as live:
        joined(live)  # the poller is running, and will lag behind the writer at times
        start = served.outbox.last_pos()
        writer = threading.Thread(target=served.traffic, args=(10,))
        writer.start()
        try:
            connections = [served.connect(f"?after={resume.id}") for _ in range(3)]
            resumed = [c.__enter__() for c in connections]
        finally:
            writer.join()
        try:
            expected = [e.id for _, e in served.outbox.after(resume_pos)]
            for ws in resumed:
                assert [f["id"] for f in receive(ws, len(expected))] == expected
            assert [f["id"] for f in receive(live, len(served.outbox.after(start)))] == \
                [e.id for _, e in served.outbox.after(start)]
        finally:
            for connection in connections:
                connection.__exit__(None, None, None)


def test_a_frame_is_the_event(served: Served) -> None:
    (_, before), (_, stored) = served.outbox.after(0)[-2:]
    with served.connect(f"?after={before.id}") as ws:
        (frame,) = receive(ws, 1)
    assert {k: frame[k] for k in ("id", "type", "v", "pool", "seq", "at_us")} == {
        "id": stored.id, "type": stored.type, "v": stored.version, "pool": stored.pool,
        "seq": stored.seq, "at_us": stored.at_us}
    assert frame["at"].endswith("Z")
    # Amounts are decimal strings of minor units, as on the wire.
    if frame["type"] == "payment.transitioned":
        assert isinstance(frame["data"]["amount_minor"], str)
    else:
        assert all(isinstance(v, str) for leg in frame["data"]["legs"] for v in leg)


# --- filters on the live feed ----------------------------------------------------------------


def test_filters_by_type_and_pool(served: Served) -> None:
    with served.connect("?type=payment.&pool=main") as payments, \
            served.connect("?type=ledger.entry_committed&pool=main&pool=_ledger") as entries:
        joined(payments)
        joined(entries)
        start = served.outbox.last_pos()
        served.traffic(5)
        expected_payments = wanted(served.outbox, start,
                                   lambda pool, kind: pool == "main"
                                   and kind.startswith("payment."))
        expected_entries = wanted(served.outbox, start,
                                  lambda pool, kind: kind == "ledger.entry_committed")
        assert expected_payments
        assert expected_entries
        assert [f["id"] for f in receive(payments, len(expected_payments))] == \
            expected_payments
        assert [f["id"] for f in receive(entries, len(expected_entries))] == expected_entries


def test_heartbeats_in_silence(served: Served) -> None:
    with served.connect("?type=nothing.") as ws:
        frames = [ws.receive_json() for _ in range(2)]
    assert all(set(f) == {"heartbeat"} for f in frames)
    assert all(f["heartbeat"].endswith("Z") for f in frames)


def test_a_slow_consumer_is_closed_not_waited_for(served: Served,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    api = served.app.state.api
    ledger = Ledger(api.store, SystemClock(), system_ids())
    monkeypatch.setattr(stream, "QUEUE_EVENTS_MAX", 5)
    with served.connect("?type=ledger.") as slow:
        joined(slow)
        monkeypatch.setattr(stream, "QUEUE_EVENTS_MAX", 10_000)
        with served.connect("?type=ledger.") as other:
            joined(other)
            # Twenty entries in one transaction: the poller reads them together, and the
            # first connection's queue of five cannot hold them.
            results = ledger.submit([
                OpenAccount(Account("world:stream-test")),
                OpenAccount(Account("treasury:stream-test", "USD")),
                *(Transfer((Posting("world:stream-test", "treasury:stream-test", "USD",
                                    100 + i),)) for i in range(20))])
            assert [r.error for r in results] == [None] * 22
            frames: list[dict[str, Any]] = []
            deadline = time.monotonic() + RECEIVE_S
            while True:
                assert time.monotonic() < deadline, "no slow_consumer error came"
                frame = slow.receive_json()
                if "heartbeat" in frame:
                    continue
                frames.append(frame)
                if "error" in frame:
                    break
            assert frames[-1]["error"]["code"] == "slow_consumer"
            assert len(frames) - 1 <= 5
            with pytest.raises(WebSocketDisconnect) as closed:
                slow.receive_json()
            assert closed.value.code == 4008
            # The other connection, whose queue held them, got every one.
            assert len(receive(other, 22)) == 22


# --- refusals --------------------------------------------------------------------------------


@pytest.mark.parametrize(("query", "code"), [
    ("?after=no-such-event", "unknown_event"),
    ("?pool=nope", "invalid_request"),
    ("?type=Not%20A%20Type", "invalid_request"),
])
def test_a_bad_subscription_gets_an_error_frame_and_4400(served: Served, query: str,
                                                         code: str) -> None:
    with served.connect(query) as ws:
        frame = ws.receive_json()
        assert frame["error"]["code"] == code
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert closed.value.code == 4400


@pytest.mark.parametrize(("who", "close", "reason"), [
    ("anonymous", 4401, "unauthenticated: "),
    ("bad token", 4401, "unauthenticated: "),
    ("no events:read", 4403, "forbidden: "),
])
def test_refused_callers(served: Served, who: str, close: int, reason: str) -> None:
    headers = {
        "anonymous": {},
        "bad token": {"Authorization": "Bearer fpk_0000000000000000_nope"},
        "no events:read": bearer(served.app, "ledger-reader", ["viewer"], ["ledger:read"]),
    }[who]
    with pytest.raises(WebSocketDisconnect) as refused, \
            served.connect("", headers=headers) as ws:
        ws.receive_json()
    assert refused.value.code == close
    assert refused.value.reason.startswith(reason), refused.value.reason


# The test client above cannot tell a close after the handshake from an upgrade refused before
# it (both raise WebSocketDisconnect with the code). A real server can: a close sent before the
# accept reaches the client as a bare HTTP 403, which is how these refusals once went out.


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("stream-live") / "d") as server:
        yield server


def _forged(token: str) -> str:
    """The token with the last character of its secret changed: well formed, not valid."""
    return token[:-1] + ("A" if token[-1] != "A" else "B")


@pytest.mark.parametrize(("who", "close", "code"), [
    ("no credentials", 4401, "unauthenticated"),
    ("malformed key", 4401, "unauthenticated"),
    ("forged key", 4401, "invalid_credentials"),
    ("forged session cookie", 4401, "invalid_credentials"),
    ("no events:read", 4403, "forbidden"),
])
def test_refusals_are_close_codes_after_the_handshake_on_a_real_server(
        live: LiveServer, who: str, close: int, code: str) -> None:
    api = live.app.state.api
    _, ledger_reader = api.auth.create_key("ledger-reader", ["viewer"], scopes=["ledger:read"],
                                           now_us=api.clock.now_us())
    session_like = "fps_" + live.admin_key.removeprefix("fpk_")
    headers = {
        "no credentials": {},
        "malformed key": {"Authorization": "Bearer fpk_0000000000000000_nope"},
        "forged key": {"Authorization": f"Bearer {_forged(live.admin_key)}"},
        "forged session cookie": {"Cookie": f"fundpool_session={_forged(session_like)}"},
        "no events:read": {"Authorization": f"Bearer {ledger_reader}"},
    }[who]
    url = live.url.replace("http://", "ws://", 1) + "/v1/stream"
    # InvalidStatus (an HTTP answer to the upgrade) would fail the test; a timeout too.
    with ws_connect(url, additional_headers=headers, open_timeout=RECEIVE_S) as ws, \
            pytest.raises(ConnectionClosedError) as closed:
        ws.recv(timeout=RECEIVE_S)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == close
    assert closed.value.rcvd.reason.startswith(f"{code}: "), closed.value.rcvd.reason


def test_the_protocol_is_in_the_openapi_document(served: Served) -> None:
    info = served.client.get("/v1/stream/info", headers=served.admin)
    assert info.status_code == 200
    assert info.json()["path"] == "/v1/stream"
    assert info.json()["queue_max_events"] == 10_000
    assert "payment.transitioned" in info.json()["event_types"]
    operation = served.client.get("/openapi.json").json()["paths"]["/v1/stream/info"]["get"]
    assert operation["x-permission"] == "events:read"
    assert "after" in operation["description"]
    refused = served.client.get("/v1/stream/info",
                                headers=bearer(served.app, "ledger-only", ["viewer"],
                                               ["ledger:read"]))
    assert refused.status_code == 403
