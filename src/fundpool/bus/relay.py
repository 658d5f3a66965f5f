"""The relay: publishes the outbox to JetStream, in order (docs/monitoring.md, ADR 0011).

`NatsRelay` reads the outbox after its cursor (`event_cursors`, name `nats` by default) in
pages of up to 10,000 rows and publishes every event to `fundpool.<pool>.<type>` with the
header `Nats-Msg-Id` set to the event id. Each message is a JetStream publish (a publish with a
reply subject, answered by a PubAck); the relay keeps up to four pages in flight and moves its
cursor over a page only once every message of it and of the pages before it is acknowledged,
recording the cursor in the background. It is at-least-once: a relay that dies before
recording publishes again; the server drops what it already stored within the stream's
duplicate window, and a consumer counts anything older as a duplicate by its `seq`. (The
PubAcks are counted per page by one subscription, not by `js.publish_async`'s future per
message, which cost twice the CPU: bench/events.py.)
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import re
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import nats
import structlog
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from fundpool.bus.connection import StopSignal, connect_nats
from fundpool.bus.defaults import DEFAULT_NATS_URL, DEFAULT_PREFIX, RELAY_CURSOR
from fundpool.bus.subjects import check_prefix, ensure_stream, event_subject
from fundpool.core.errors import FundpoolError
from fundpool.events.model import InvalidEvent, loads
from fundpool.ledger.ports import LedgerStore
from fundpool.monitoring.ports import OUTBOX_READ_MAX
from fundpool.stores.events_sql import CursorWriter, outbox_reader, save_cursor

log = structlog.get_logger(__name__)

ACK_TIMEOUT_S = 30.0

_PLAIN = re.compile(r"[A-Za-z0-9_.:-]+\Z")  # needs no JSON escaping, safe in a header


class RelayFailed(FundpoolError):
    code = "relay_failed"
    title = "events were not acknowledged by JetStream"


def _json_text(value: str) -> str:
    return f'"{value}"' if _PLAIN.match(value) else json.dumps(value, ensure_ascii=False)


# Pools and event types are few: their JSON text is kept rather than made for every message.
_NAMES_MAX = 1_024
_name_texts: dict[str, str] = {}


def _name_text(value: str) -> str:
    text = _name_texts.get(value)
    if text is None:
        if len(_name_texts) >= _NAMES_MAX:
            _name_texts.clear()
        text = _name_texts[value] = _json_text(value)
    return text


def wire_message(row: Sequence[Any]) -> bytes:
    """An outbox row as the event's wire form (the bytes `encode` gives for the event),
    assembled from the row without decoding it. Data that is not JSON as events carry it
    (`events.model.loads`, which every consumer decodes with) is sent as a JSON string in its
    place, which every consumer rejects at the event's seq, as the in-process feed does."""
    _pos, pool, seq, event_id, kind, version, at_us, data = row
    try:
        loads(data)
    except InvalidEvent:
        data = json.dumps(data, ensure_ascii=False)
    return (f'{{"id":{_json_text(event_id)},"type":{_name_text(kind)},"v":{int(version)},'
            f'"pool":{_name_text(pool)},"seq":{int(seq)},"at_us":{int(at_us)},'
            f'"data":{data}}}').encode()


def message_id(event_id: str) -> str:
    """The `Nats-Msg-Id` of an event: its id (a digest of it, should it not be header-safe)."""
    return event_id if _PLAIN.match(event_id) else hashlib.sha256(event_id.encode()).hexdigest()


@dataclass(slots=True)
class RelayReport:
    published: int = 0  # events acknowledged by JetStream
    duplicates: int = 0  # … of which the server already had (within its duplicate window)
    batches: int = 0
    pos: int = 0  # the relay's cursor: the last outbox position acknowledged
    failures: int = 0


_WAITING, _STORED, _DUPLICATE, _FAILED = 0, 1, 2, 3


class _Page:
    """The acknowledgements of one page of publishes: a state per message, by index."""

    def __init__(self, number: int, rows: Sequence[Sequence[Any]]) -> None:
        self.number = number
        self.rows = rows
        self.sent = 0
        self.interrupted: str | None = None
        self.state = bytearray(len(rows))
        self.waiting = len(rows)
        self.errors: dict[int, str] = {}
        self.done = asyncio.Event()

    def answer(self, index: int, state: int, error: str | None = None) -> None:
        if index >= len(self.state) or self.state[index] != _WAITING:
            return
        self.state[index] = state
        if error is not None:
            self.errors[index] = error
        self.waiting -= 1
        if self.waiting == 0:
            self.done.set()

    def acknowledged(self) -> int:
        """How many messages from the first on are stored (or were already)."""
        if self.waiting == 0 and not self.errors:
            return len(self.state)
        for index, state in enumerate(self.state):
            if state not in (_STORED, _DUPLICATE):
                return index
        return len(self.state)

    def failure(self, index: int) -> str | None:
        return self.errors.get(index)


class NatsRelay:
    """Publishes the outbox of `ledger_store` to JetStream, in order, page by page."""

    def __init__(
        self,
        ledger_store: LedgerStore,
        nats_url: str = DEFAULT_NATS_URL,
        *,
        name: str = RELAY_CURSOR,
        prefix: str = DEFAULT_PREFIX,
        batch: int = OUTBOX_READ_MAX,
        max_age_s: float | None = None,
        ack_timeout_s: float = ACK_TIMEOUT_S,
        poll_s: float = 0.005,
        pages_in_flight: int = 4,
    ) -> None:
        self.store = ledger_store
        self.nats_url = nats_url
        self.name = name
        self.prefix = check_prefix(prefix)
        self.batch = max(1, min(batch, OUTBOX_READ_MAX))
        self.max_age_s = max_age_s
        self.ack_timeout_s = ack_timeout_s
        self.poll_s = poll_s
        self.pages_in_flight = max(1, pages_in_flight)
        self.outbox = outbox_reader(ledger_store)
        self.report = RelayReport()
        self._nc: NatsClient | None = None
        self._js: JetStreamContext | None = None
        self._streams: set[str] = set()
        self._subjects: dict[tuple[str, str], str] = {}
        self._inbox: str | None = None
        self._pages: dict[int, _Page] = {}  # sent, not yet settled
        self._page_number = 0
        self._wanted = self._saved = 0  # cursor positions: to save, saved
        self._saving: asyncio.Future[None] | None = None
        self._writer: CursorWriter | None = None

    async def connect(self) -> None:
        if self._nc is None:
            self._nc = await connect_nats(self.nats_url, name=f"fundpool-relay-{self.name}")
            self._js = self._nc.jetstream()

    async def close(self) -> None:
        if self._nc is not None:
            with contextlib.suppress(Exception):
                await self._nc.drain()
            self._nc = self._js = None
            self._inbox = None
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    async def __aenter__(self) -> NatsRelay:
        await self.connect()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    def cursor(self) -> int:
        return self.outbox.cursor(self.name)

    def save_cursor(self, pos: int) -> None:
        """Set the cursor to `pos`, back or forth (`events relay --from`)."""
        with self.store.write() as session:
            save_cursor(session.tx, self.name, pos)  # type: ignore[attr-defined]

    def _record(self, pos: int) -> None:
        """Record progress to `pos` (forward only), off the ledger's connection."""
        if self._writer is None:
            self._writer = CursorWriter(self.store)
        self._writer.save(self.name, pos)

    async def publish(self, rows: Sequence[Sequence[Any]]) -> int:
        """Publish outbox rows (in `pos` order), wait for their acknowledgements, and move the
        cursor to the last row acknowledged with every row before it (saved in the
        background; `flush()` waits for it). Raises `RelayFailed` when a row was not
        acknowledged (the rows from it on are to be published again)."""
        if not rows:
            return 0
        return await self._settle(await self._send(rows))

    async def _send(self, rows: Sequence[Sequence[Any]]) -> _Page:
        """Publish a page without waiting for its acknowledgements."""
        await self.connect()
        nc, js = self._nc, self._js
        assert nc is not None
        assert js is not None
        if self._inbox is None:
            self._inbox = nc.new_inbox()
            await nc.subscribe(f"{self._inbox}.>", cb=self._on_ack, pending_bytes_limit=0)
        self._page_number += 1
        page = self._pages[self._page_number] = _Page(self._page_number, rows)
        reply = f"{self._inbox}.{page.number}."
        subjects = self._subjects
        try:
            for row in rows:
                pool, kind = row[1], row[4]
                subject = subjects.get((pool, kind))
                if subject is None:
                    if pool not in self._streams:
                        await ensure_stream(js, pool, self.prefix, max_age_s=self.max_age_s)
                        self._streams.add(pool)
                    subject = subjects[(pool, kind)] = event_subject(pool, kind, self.prefix)
                await nc.publish(subject, wire_message(row), reply=f"{reply}{page.sent}",
                                 headers={"Nats-Msg-Id": message_id(row[3])})
                page.sent += 1
        except (OSError, nats.errors.Error) as error:
            page.interrupted = f"{type(error).__name__}: {error}"
            page.done.set()
        return page

    async def _settle(self, page: _Page) -> int:
        """Wait for a page's acknowledgements (the pages before it are settled), move the
        cursor over its acknowledged prefix; `RelayFailed` unless all of it was."""
        if page.interrupted is None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(page.done.wait(), self.ack_timeout_s)
        self._pages.pop(page.number, None)
        rows = page.rows
        good = page.acknowledged()
        if good:
            self.report.pos = last = int(rows[good - 1][0])
            self._save_later(last)
        self.report.published += good
        self.report.duplicates += page.state.count(_DUPLICATE, 0, good)
        self.report.batches += 1
        if good < len(rows):
            self.report.failures += 1
            self._streams.clear()  # a stream deleted meanwhile is created again
            failure = page.failure(good) or page.interrupted or "no acknowledgement in time"
            raise RelayFailed(reason=failure, pos=self.report.pos, acknowledged=good,
                              sent=page.sent)
        return good

    def _save_later(self, pos: int) -> None:
        """Record the cursor at `pos` in the background: the next page goes out meanwhile
        (saving waits for the ledger's writer lock). Saves coalesce to the latest position."""
        self._wanted = max(self._wanted, pos)
        if self._saving is None or self._saving.done():
            self._saving = asyncio.ensure_future(self._save_wanted())

    async def _save_wanted(self) -> None:
        while self._wanted > self._saved:
            wanted = self._wanted
            try:
                await asyncio.to_thread(self._record, wanted)
            except Exception as error:  # the next page tries again; flush() reports it
                log.warning("nats_relay_cursor_not_saved", pos=wanted, error=str(error))
                return
            self._saved = wanted

    async def flush(self) -> None:
        """Wait until the cursor is saved at the last acknowledged position."""
        if self._saving is not None:
            await _quietly(self._saving)
        if self._wanted > self._saved:
            await asyncio.to_thread(self._record, self._wanted)
            self._saved = self._wanted

    async def _on_ack(self, msg: Msg) -> None:
        """A JetStream acknowledgement (or error) of one message of the current page."""
        number, _, index_text = msg.subject[len(self._inbox or "") + 1:].partition(".")
        page = self._pages.get(int(number)) if number.isdigit() else None
        if page is None or not index_text.isdigit():
            return  # a late answer for a page given up
        headers = msg.headers
        if headers and headers.get("Status"):  # 503: no stream listens on the subject
            page.answer(int(index_text), _FAILED,
                        f"status {headers.get('Status')} {headers.get('Description', '')}")
            return
        data = msg.data
        if b'"error"' in data:
            page.answer(int(index_text), _FAILED, data.decode(errors="replace")[:300])
        elif b'"duplicate"' in data and json.loads(data).get("duplicate") is True:
            page.answer(int(index_text), _DUPLICATE)
        else:
            page.answer(int(index_text), _STORED)

    async def run(
        self,
        *,
        once: bool = False,
        until_idle_s: float | None = None,
        stop_after_s: float | None = None,
        stop: StopSignal | None = None,
        retry_s: float = 1.0,
    ) -> RelayReport:
        """Publish until stopped: `once` stops when the outbox has nothing more;
        `until_idle_s` after that long with nothing new; `stop_after_s`, `stop` (set from any
        thread) whenever. Failures are logged and retried from the cursor after `retry_s`."""
        await self.connect()
        started = idle_since = time.monotonic()
        pos = self.report.pos = self._saved = await asyncio.to_thread(self.cursor)
        sent: deque[_Page] = deque()  # pages published, acknowledgements awaited in order
        try:
            while not (stop is not None and stop.is_set()):
                now = time.monotonic()
                if stop_after_s is not None and now - started >= stop_after_s:
                    break
                try:
                    while sent and (sent[0].done.is_set() or len(sent) >= self.pages_in_flight):
                        await self._settle(sent.popleft())
                    rows = await asyncio.to_thread(self.outbox.raw_after, pos, self.batch)
                    if rows:
                        idle_since = now
                        sent.append(await self._send(rows))
                        pos = int(rows[-1][0])
                        continue
                    if sent:  # nothing new: wait for what is out
                        await self._settle(sent.popleft())
                        continue
                except RelayFailed as error:
                    log.warning("nats_relay_failed", **error.facts)
                    for page in sent:  # published again from the last acknowledged row
                        self._pages.pop(page.number, None)
                    sent.clear()
                    pos = self.report.pos
                    await asyncio.sleep(retry_s)
                    continue
                if once or (until_idle_s is not None and now - idle_since >= until_idle_s):
                    break
                await asyncio.sleep(self.poll_s)
            while sent:  # what is out: its acknowledgements are due any moment
                try:
                    await self._settle(sent.popleft())
                except RelayFailed as error:
                    log.warning("nats_relay_failed", **error.facts)
                    break
        finally:
            await self.flush()
        return self.report


async def _quietly(future: asyncio.Future[Any]) -> None:
    with contextlib.suppress(Exception):
        await future


def run_relay(ledger_store: LedgerStore, nats_url: str = DEFAULT_NATS_URL, *,
              once: bool = False, until_idle_s: float | None = None,
              stop_after_s: float | None = None, stop: StopSignal | None = None,
              **options: Any) -> RelayReport:
    """Run a `NatsRelay` in its own event loop until it stops (see `NatsRelay.run`)."""

    async def main() -> RelayReport:
        relay = NatsRelay(ledger_store, nats_url, **options)
        try:
            return await relay.run(once=once, until_idle_s=until_idle_s,
                                   stop_after_s=stop_after_s, stop=stop)
        finally:
            await relay.close()

    return asyncio.run(main())
