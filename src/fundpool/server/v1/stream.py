"""`/v1/stream`: the event log, live, over a WebSocket (permission `events:read`).

    wss://HOST/v1/stream?pool=main&type=payment.&after=<event id>

- **Filters**: `pool` (repeatable; a configured pool or `_ledger`, the events outside pools)
  and `type` (repeatable; an exact type such as `payment.transitioned`, or a prefix ending in
  `.` such as `alert.`). None given: everything.
- **Frames** are JSON text, one event each, in outbox order (the order of commit):
  `{"id", "type", "v", "pool", "seq", "at", "at_us", "data"}`, `data` as the event's wire form
  has it (events/model.py: amounts are decimal strings of minor units). After 15 s without an
  event, `{"heartbeat": "<now>"}`.
- **Adjustments**: a `ledger.entry_committed` frame of an entry recorded as an adjustment (a
  person's raw posting on a pool's or merchant's account, ledger/adjustments.py) carries
  `"adjustment": {"reason": "...", "actor": {"kind", "id", "name", "roles", ...}}` beside
  `data`. The event itself does not hold the entry's metadata, so the poller reads the journal
  entries of the ledger events it fans out (one range read per outbox read) and decodes only
  those whose canonical bytes name an adjustment.
- **Resume**: `after=<event id>` first sends every event after that one (filtered), read from
  the outbox, then the live feed, with no gap and no duplicate. An id the outbox does not hold:
  `{"error": {"code": "unknown_event", ...}}`, then close 4400 (a bad filter: `invalid_request`,
  4400). Without `after`, the stream starts at the moment of connecting.
- **Refusals**: no or bad credentials, 4401 (the gate); credentials without `events:read`,
  4403; over the rate limit, 4429. The handshake completes first, then the socket closes with
  that code and `<problem code>: <detail>` as the reason: a close before the handshake would
  reach the client as a bare HTTP 403.
- **Slow consumers**: every connection has a queue of at most 10,000 events. One that falls
  that far behind is sent `{"error": {"code": "slow_consumer", ...}}` and closed with 4008, so
  that it never holds up the others; it resumes with `after` = the last id it processed.

One poller per worker (an asyncio task, started with the first subscriber and stopped with the
last) reads the outbox after the last position it reached every 50 ms, in a worker thread, and
fans each event out to the subscribers whose filters it matches.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.to_thread
import orjson
import structlog
from fastapi import Request, WebSocket
from pydantic import BaseModel, Field
from starlette.websockets import WebSocketDisconnect, WebSocketState

from fundpool.auth.roles import P
from fundpool.core.errors import FundpoolError
from fundpool.core.ledger.canonical import decode_body
from fundpool.events.model import (
    EVENT_TYPES,
    SYSTEM_POOL,
    InvalidEvent,
    LedgerEntryCommitted,
    loads,
)
from fundpool.ledger.adjustments import ADJUSTMENT, KIND_KEY, adjustment_of
from fundpool.ledger.docs import iso
from fundpool.ledger.ports import LedgerStore
from fundpool.monitoring.ports import OutboxReader
from fundpool.server.v1.context import Api
from fundpool.server.v1.problems import PROBLEMS
from fundpool.server.v1.security import Forbidden, SecuredRouter, close_reason, needs

log = structlog.get_logger(__name__)

router = SecuredRouter(prefix="/stream", tags=["events"])

HEARTBEAT_S = 15.0
POLL_INTERVAL_S = 0.05
POLL_ROWS_MAX = 1_000  # rows per outbox read: a full read is followed at once by the next
QUEUE_EVENTS_MAX = 10_000
POOLS_MAX = 64
TYPES_MAX = 32
EVENT_ID_CHARS_MAX = 64
TYPE_PATTERN = re.compile(r"[a-z][a-z0-9_.]{0,63}")
CLOSE_BAD_REQUEST = 4400
CLOSE_FORBIDDEN = 4403
CLOSE_SLOW_CONSUMER = 4008
CLOSE_UNAVAILABLE = 1011
# Entry kinds a raw posting can make, so the only ones that can be adjustments.
ADJUSTABLE_KINDS = frozenset({"transfer", "pending_created", "pending_posted", "pending_voided"})
# What an adjustment's canonical bytes hold (keys sorted, no spaces, ADR 0003); a metadata
# value quoting it has its quotes escaped, so no entry without it is missed.
ADJUSTMENT_MARK = f'"{KIND_KEY}":"{ADJUSTMENT}"'.encode()
# Journal entries read in one range to label an outbox read's frames; sparser seqs are read
# one by one (an outbox read holds at most POLL_ROWS_MAX rows).
LABEL_SPAN_MAX = 4 * POLL_ROWS_MAX


class StreamRefused(FundpoolError):
    """A subscription that cannot start; its code goes to the client in an error frame."""

    code = "invalid_request"
    title = "the stream's parameters are not valid"


class UnknownEvent(StreamRefused):
    code = "unknown_event"
    title = "the outbox holds no event with this id"


# --- what is sent ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Frame:
    pos: int
    pool: str
    type: str
    text: str


def frame_of(row: Sequence[Any], adjustments: Mapping[int, object] | None = None) -> Frame:
    """An outbox row (events_sql COLUMNS, ledger events with their legs) as a frame;
    `adjustments` labels the ledger entries (by seq) that are adjustments."""
    return _frame(row, _body_of(row), adjustments or {})


def _body_of(row: Sequence[Any]) -> dict[str, object]:
    _, pool, seq, event_id, kind, version, at_us, data = row
    body: dict[str, object] = {"id": event_id, "type": kind, "v": int(version), "pool": pool,
                               "seq": int(seq), "at": iso(int(at_us)), "at_us": int(at_us)}
    try:
        body["data"] = loads(data)
    except InvalidEvent:
        # Sent all the same, so that a consumer counting `seq` sees no gap.
        body["data"] = None
        body["error"] = {"code": InvalidEvent.code, "detail": "the stored data is not JSON"}
    return body


def _frame(row: Sequence[Any], body: dict[str, object],
           adjustments: Mapping[int, object]) -> Frame:
    if adjustments:
        entry_seq = _adjustable_seq(body)
        if entry_seq is not None and entry_seq in adjustments:
            body["adjustment"] = adjustments[entry_seq]
    return Frame(int(row[0]), row[1], row[4], orjson.dumps(body).decode())


def _adjustable_seq(body: Mapping[str, object]) -> int | None:
    """The journal seq of a ledger event's entry when a raw posting can have made it."""
    data = body.get("data")
    if body["type"] != LedgerEntryCommitted.TYPE or not isinstance(data, dict) \
            or data.get("kind") not in ADJUSTABLE_KINDS:
        return None
    entry_seq = data.get("entry_seq")
    return entry_seq if type(entry_seq) is int else None


def adjustments_of(journal: LedgerStore, seqs: Collection[int]) -> dict[int, object]:
    """`{"reason", "actor"}` of each entry among `seqs` recorded as an adjustment, by seq."""
    if not seqs:
        return {}
    low, high = min(seqs), max(seqs)
    stored = journal.entries(low, high) if high - low < LABEL_SPAN_MAX else (
        found for found in map(journal.entry, sorted(seqs)) if found is not None)
    labels: dict[int, object] = {}
    for entry in stored:
        if entry.seq in seqs and ADJUSTMENT_MARK in entry.canonical:
            adjustment = adjustment_of(decode_body(entry.canonical).get("metadata"))
            if adjustment is not None:
                labels[entry.seq] = adjustment
    return labels


def error_frame(code: str, detail: str, **facts: object) -> str:
    return orjson.dumps({"error": {"code": code, "detail": detail, **facts}}).decode()


@dataclass(frozen=True, slots=True)
class Wanted:
    """A subscriber's filters: pools (empty: all), exact types and type prefixes (both empty:
    all)."""

    pools: frozenset[str] = frozenset()
    types: frozenset[str] = frozenset()
    prefixes: tuple[str, ...] = ()

    def matches(self, pool: str, kind: str) -> bool:
        if self.pools and pool not in self.pools:
            return False
        if not self.types and not self.prefixes:
            return True
        return kind in self.types or kind.startswith(self.prefixes)


def wanted_of(pools: Sequence[str], types: Sequence[str], known_pools: set[str]) -> Wanted:
    if len(pools) > POOLS_MAX or len(types) > TYPES_MAX:
        raise StreamRefused(f"at most {POOLS_MAX} pools and {TYPES_MAX} types",
                            pools=len(pools), types=len(types))
    unknown = sorted(set(pools) - known_pools)
    if unknown:
        raise StreamRefused("no such pool", pools=unknown[:5], known=sorted(known_pools))
    bad = [t for t in types if TYPE_PATTERN.fullmatch(t) is None]
    if bad:
        raise StreamRefused("a type is a name such as payment.transitioned, or a prefix "
                            "ending in '.' such as alert.", types=bad[:5])
    return Wanted(frozenset(pools), frozenset(t for t in types if not t.endswith(".")),
                  tuple(sorted(t for t in types if t.endswith("."))))


# --- the shared poller -----------------------------------------------------------------------


class Subscriber:
    def __init__(self, wanted: Wanted, bound: int | None = None) -> None:
        self.wanted = wanted
        self.queue: asyncio.Queue[Frame] = asyncio.Queue(
            maxsize=QUEUE_EVENTS_MAX if bound is None else bound)
        self.overflowed = False


def read_frames(outbox: OutboxReader, after_pos: int, limit: int,
                wanted: Wanted | None = None, journal: LedgerStore | None = None
                ) -> tuple[int, int, list[Frame]]:
    """Outbox rows after `after_pos` as (rows read, last position read, frames of the rows
    `wanted` matches, or of all), adjustments labelled when the `journal` is given. Runs in a
    worker thread."""
    rows = outbox.raw_after(after_pos, limit)
    chosen = [(row, _body_of(row)) for row in rows
              if wanted is None or wanted.matches(row[1], row[4])]
    labels: dict[int, object] = {}
    if journal is not None:
        seqs = {seq for _, body in chosen if (seq := _adjustable_seq(body)) is not None}
        labels = adjustments_of(journal, seqs)
    frames = [_frame(row, body, labels) for row, body in chosen]
    return len(rows), int(rows[-1][0]) if rows else after_pos, frames


class Hub:
    """One per app and event loop: the poller and the subscribers it feeds."""

    def __init__(self, outbox: OutboxReader, *, interval_s: float = POLL_INTERVAL_S,
                 journal: LedgerStore | None = None) -> None:
        self.outbox = outbox
        self.journal = journal  # to label adjustments; None: frames as the outbox has them
        self.interval_s = interval_s
        self.position = 0  # the last outbox position fanned out
        self.subscribers: set[Subscriber] = set()
        self.errors = 0
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._starting = asyncio.Lock()

    def _bind(self) -> None:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # the app runs on a new loop (restarted, a test client)
            self._loop = loop
            self._task = None
            self.subscribers = set()
            self._starting = asyncio.Lock()

    async def join(self, subscriber: Subscriber) -> int:
        """Add a subscriber; it gets every event after the returned position that its
        filters match."""
        self._bind()
        if self._task is None:
            async with self._starting:
                if self._task is None:
                    self.position = await anyio.to_thread.run_sync(self.outbox.last_pos)
                    self._task = asyncio.create_task(self._run(), name="fundpool-stream")
        # No await from here on: the poller cannot fan out between reading the position and
        # the subscriber being in the set.
        self.subscribers.add(subscriber)
        return self.position

    def leave(self, subscriber: Subscriber) -> None:
        self.subscribers.discard(subscriber)
        if not self.subscribers and self._task is not None:
            self._task.cancel()
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                count, last, frames = await anyio.to_thread.run_sync(
                    read_frames, self.outbox, self.position, POLL_ROWS_MAX, None,
                    self.journal)
            except Exception:  # a database restart must not end the stream: try again
                self.errors += 1
                log.exception("stream_poll_failed")
                await asyncio.sleep(max(self.interval_s, 1.0))
                continue
            self._fan_out(frames)
            self.position = last
            if count < POLL_ROWS_MAX:
                await asyncio.sleep(self.interval_s)

    def _fan_out(self, frames: Sequence[Frame]) -> None:
        for subscriber in list(self.subscribers):
            wanted, queue = subscriber.wanted, subscriber.queue
            for frame in frames:
                if not wanted.matches(frame.pool, frame.type):
                    continue
                try:
                    queue.put_nowait(frame)
                except asyncio.QueueFull:
                    subscriber.overflowed = True
                    self.subscribers.discard(subscriber)
                    break


def shared_hub(state: Any, api: Api) -> Hub:
    """The app's one hub (`state` is `app.state`): the WebSocket stream's and the console's."""
    hub: Hub | None = getattr(state, "stream_hub", None)
    if hub is None:
        hub = Hub(api.outbox, journal=api.store)
        state.stream_hub = hub
    return hub


def hub_of(websocket: WebSocket, api: Api) -> Hub:
    return shared_hub(websocket.app.state, api)


# --- one connection --------------------------------------------------------------------------


def _position_of(api: Api, event_id: str) -> int | None:
    return api.outbox.position_of(event_id)


async def _catch_up(websocket: WebSocket, hub: Hub, wanted: Wanted, after_pos: int,
                    until_pos: int | None) -> int:
    """Send the matching events after `after_pos` (up to `until_pos`, or up to the end of the
    outbox as it stands) from the outbox itself; returns the last position covered."""
    position = after_pos
    while until_pos is None or position < until_pos:
        count, last, frames = await anyio.to_thread.run_sync(
            read_frames, hub.outbox, position, POLL_ROWS_MAX, wanted, hub.journal)
        for frame in frames:
            if until_pos is not None and frame.pos > until_pos:
                return until_pos
            await websocket.send_text(frame.text)
        position = last if until_pos is None else min(last, until_pos)
        if count < POLL_ROWS_MAX:
            break
    return position


async def _live(websocket: WebSocket, subscriber: Subscriber, sent_pos: int, api: Api) -> None:
    while True:
        if subscriber.overflowed:
            await websocket.send_text(error_frame(
                "slow_consumer", f"more than {QUEUE_EVENTS_MAX} events waited for this "
                "connection; resume with `after` = the last event id processed",
                queue_max_events=QUEUE_EVENTS_MAX))
            await websocket.close(CLOSE_SLOW_CONSUMER)
            return
        frame = None
        with anyio.move_on_after(HEARTBEAT_S):
            frame = await subscriber.queue.get()
        if frame is None:
            await websocket.send_text(orjson.dumps({"heartbeat": iso(api.clock.now_us())})
                                      .decode())
            continue
        if frame.pos <= sent_pos:  # already sent while catching up
            continue
        await websocket.send_text(frame.text)
        sent_pos = frame.pos


async def _serve(websocket: WebSocket, api: Api, wanted: Wanted, after_pos: int | None) -> None:
    hub = hub_of(websocket, api)
    subscriber = Subscriber(wanted)
    try:
        if after_pos is None:
            sent = await hub.join(subscriber)
        else:
            # Most of a long catch-up happens before joining, so that the live queue does not
            # fill while the backlog is sent; what the poller fanned out before the join is
            # read here, and what both cover is sent once (`_live` skips it).
            sent = await _catch_up(websocket, hub, wanted, after_pos, None)
            joined = await hub.join(subscriber)
            if sent < joined:
                sent = await _catch_up(websocket, hub, wanted, sent, joined)
        await _live(websocket, subscriber, sent, api)
    finally:
        hub.leave(subscriber)


async def _until_disconnect(websocket: WebSocket) -> None:
    """Read (and ignore) what the client sends, until it goes."""
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return


async def _refuse(websocket: WebSocket, refusal: StreamRefused) -> None:
    await websocket.accept()
    await websocket.send_text(error_frame(refusal.code, refusal.detail, **refusal.facts))
    await websocket.close(CLOSE_BAD_REQUEST, close_reason(refusal.code, refusal.detail))


@router.websocket("")
async def stream(websocket: WebSocket) -> None:
    # Routes on a SecuredRouter declare their permission; a WebSocket route is not an API
    # route, so it checks its own (the gate has authenticated the caller already).
    principal = websocket.scope.get("state", {}).get("principal")
    if principal is None or P.EVENTS_READ not in principal.permissions:
        # Accepted first: a close before the accept is an HTTP 403 handshake, not a 4403.
        await websocket.accept()
        await websocket.close(CLOSE_FORBIDDEN, close_reason(
            Forbidden.code, f"the credentials lack the permission {P.EVENTS_READ.value}"))
        return
    api: Api = websocket.app.state.api
    query = websocket.query_params
    try:
        wanted = wanted_of(query.getlist("pool"), query.getlist("type"),
                           {p.id for p in api.config.pools} | {SYSTEM_POOL})
        after_id = query.get("after")
        after_pos = None
        if after_id is not None:
            found = None if len(after_id) > EVENT_ID_CHARS_MAX else \
                await anyio.to_thread.run_sync(_position_of, api, after_id)
            if found is None:
                raise UnknownEvent(event_id=after_id[:EVENT_ID_CHARS_MAX])
            after_pos = found
    except StreamRefused as refusal:
        await _refuse(websocket, refusal)
        return
    await websocket.accept()
    failure: BaseException | None = None
    # Serve and watch for the client leaving at once; whichever ends first ends the other.
    async with anyio.create_task_group() as group:

        async def serve() -> None:
            nonlocal failure
            try:
                await _serve(websocket, api, wanted, after_pos)
            except WebSocketDisconnect:
                pass
            except Exception as error:  # reported to the client below, then logged
                failure = error
            finally:
                group.cancel_scope.cancel()

        async def watch() -> None:
            await _until_disconnect(websocket)
            group.cancel_scope.cancel()

        group.start_soon(serve)
        group.start_soon(watch)
    if failure is not None:
        log.error("stream_failed", error=type(failure).__name__, exc_info=failure)
        if websocket.application_state is WebSocketState.CONNECTED:
            with contextlib.suppress(WebSocketDisconnect, RuntimeError):
                await websocket.send_text(error_frame(
                    "store_error" if isinstance(failure, FundpoolError) else "internal_error",
                    "the stream stopped; resume with `after` = the last event id processed"))
                await websocket.close(CLOSE_UNAVAILABLE)


# --- the protocol, in the OpenAPI document ---------------------------------------------------


class StreamInfoOut(BaseModel):
    path: str
    query: dict[str, str]
    frame: dict[str, str]
    heartbeat_s: float
    queue_max_events: int = Field(description="Events a connection may fall behind by before "
                                  "it is closed as a slow consumer (4008).")
    close_codes: dict[str, str]
    event_types: list[str]


@router.get("/info", response_model=StreamInfoOut, openapi_extra=needs(P.EVENTS_READ),
            responses=PROBLEMS)
def stream_info(request: Request) -> dict[str, object]:
    """How to read the event stream: open a WebSocket on `/v1/stream` with the same
    credentials (`Authorization: Bearer …` or the session cookie) and permission
    `events:read`.

    Query: `pool` and `type` (both repeatable; a type ending in `.` is a prefix), `after` (an
    event id: resume after it, with no gap and no duplicate). Frames are JSON text, one event
    each, in commit order; `{"heartbeat": "<now>"}` after 15 s of silence; `{"error": {"code":
    …}}` before a close. A connection more than 10,000 events behind is closed (4008,
    `slow_consumer`) rather than holding up the others: resume with `after`."""
    return {
        "path": "/v1/stream",
        "query": {
            "pool": "repeatable: only these pools' events (a configured pool, or _ledger)",
            "type": "repeatable: an event type, or a prefix ending in '.' (payment.)",
            "after": "an event id: first every event after it, then the live feed",
        },
        "frame": {
            "event": '{"id", "type", "v", "pool", "seq", "at", "at_us", "data"}: data as the '
                     "event's wire form (amounts are decimal strings of minor units)",
            "adjustment": '{"adjustment": {"reason", "actor"}} beside data, on the '
                          "ledger.entry_committed frame of an entry recorded as an adjustment",
            "heartbeat": '{"heartbeat": "<ISO-8601 now>"} after 15 s without an event',
            "error": '{"error": {"code", "detail", ...}}, then the connection closes',
        },
        "heartbeat_s": HEARTBEAT_S,
        "queue_max_events": QUEUE_EVENTS_MAX,
        "close_codes": {
            "4400": "unknown_event (after) or invalid_request (filters)",
            "4401": "no credentials, or bad ones",
            "4403": "the credentials lack events:read",
            "4429": "too_many_requests: over the rate limit for this key or session",
            "4008": "slow_consumer: fell more than queue_max_events behind",
            "1011": "the server could not go on (store unavailable): resume with after",
        },
        "event_types": list(EVENT_TYPES),
    }
