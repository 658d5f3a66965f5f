"""NATS JetStream: the relay that publishes the outbox, and the durable consumers that keep
projections from it (docs/monitoring.md, ADR 0011).

**Relay.** `NatsRelay` reads the outbox after its cursor (`event_cursors`, name `nats` by
default) in pages of up to 10,000 rows and publishes every event to `fundpool.<pool>.<type>`
with the header `Nats-Msg-Id` set to the event id. Each message is a JetStream publish (a
publish with a reply subject, answered by a PubAck); the relay keeps up to four pages in
flight and moves its cursor over a page only once every message of it and of the pages before
it is acknowledged, recording the cursor in the background. It is at-least-once: a relay that
dies before recording publishes again; the server drops what it already stored within the
stream's duplicate window, and a consumer counts anything older as a duplicate by its `seq`.
(The PubAcks are counted per page by one subscription, not by `js.publish_async`'s future per
message, which cost twice the CPU: bench/events.py.)

**Streams.** One per pool: `FUNDPOOL_<pool>` over the subjects `fundpool.<pool>.>`, file
storage, a two-minute duplicate window and no limits (the outbox is the log of record; a stream
can be filled again from it by moving the relay's cursor back). The relay and the consumers
create a missing stream with the same configuration; an existing one is never altered. Another
`prefix` gives another namespace (`<prefix>.<pool>.…`, streams `<PREFIX>_<pool>`).

**Consumers.** `NatsConsumer` keeps one durable pull consumer per pool stream, named
`<durable_prefix>_<digest of the projection store's location>` so that every process of one
projection store shares it and two stores never take each other's messages: explicit ack,
deliver all, `ack_wait` 5 s, at most 20,000 unacknowledged. Up to two pull requests of 1,000
are outstanding per pool; what arrives is applied at once (gathered for at most 10 ms while it
keeps coming, up to 2,500 per commit), every pool in one `Projector.apply`, and only after that
commit is each message answered:

- applied, duplicate, rejected (malformed, recorded) or ignored (unknown type) → `ack`;
- after a gap (`seq` beyond the projection's next): kept in memory, unacknowledged (with
  `+WPI` so `ack_wait` does not run out) and offered again with the next messages; beyond
  10,000 kept per pool, the farthest are given back with `nak(delay=1 s)`;
- in a pool blocked by an unknown event version → `nak(delay=30 s)`, until an upgrade;
- unreadable (no pool or seq to place it), or an event of another pool than its stream's →
  `term`, logged as `nats_message_unplaced`.

**Leases.** A consumer applies a pool only while it holds the pool's lease:

- PostgreSQL projections: a session advisory lock, `pg_try_advisory_lock(lease_key(schema,
  pool))`, taken on the projection store's own connection, the one its commits use, so a lost
  connection loses the lock and the writes together. Every consumer of the schema also holds a
  shared "member" lock (`members_key(schema)`); each takes at most ceil(pools / members) pools
  and gives back the extra, so processes started with the same pools share them, and when one
  dies (its connection closes, its locks go) the others take its pools on their next poll
  (every second). Its unacknowledged messages come back after `ack_wait`; whatever it had
  committed is a duplicate by then.
- SQLite projections: one consumer process at a time, enforced by an exclusive lock on the file
  `<projections>.consumer-lock`; a second process waits as a standby and takes over when the
  first exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import math
import os
import random
import re
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol
from urllib.parse import urlsplit

import nats
import structlog
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import NotFoundError

from fundpool.core.errors import FundpoolError
from fundpool.ledger.ports import LedgerStore
from fundpool.monitoring.projector import ApplyReport, Item, Projector, read_message
from fundpool.stores.events_sql import (
    OUTBOX_READ_MAX,
    CursorWriter,
    outbox_mark,
    outbox_reader,
    save_cursor,
)
from fundpool.stores.projection_sql import ProjectionStore

log = structlog.get_logger(__name__)

DEFAULT_NATS_URL = "nats://127.0.0.1:4222"
DEFAULT_PREFIX = "fundpool"  # the subjects' first token; the streams' name prefix in capitals
RELAY_CURSOR = "nats"
DURABLE_PREFIX = "projector"
DUPLICATE_WINDOW_S = 120.0
ACK_WAIT_S = 5.0
MAX_ACK_PENDING = 20_000
PULL_BATCH = 1_000
PULL_EXPIRES_S = 1.0
MAX_PARKED = 10_000  # messages set aside per pool after a gap; beyond, they are given back
NAK_DELAY_S = 1.0  # … and come again after this long
BLOCKED_NAK_DELAY_S = 30.0  # … or this long when its pool waits for an upgrade
LEASE_POLL_S = 1.0
COMMIT_SIZE = 2_500  # messages gathered for one projection commit, at most …
LINGER_S = 0.01  # … for this long while they keep arriving
ACK_TIMEOUT_S = 30.0
CONNECT_WAIT_S = 3.0
JS_API = "$JS.API"

_PREFIX = re.compile(r"[a-z][a-z0-9_-]{0,31}\Z")
_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
_SUBJECT_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")
_PLAIN = re.compile(r"[A-Za-z0-9_.:-]+\Z")  # needs no JSON escaping, safe in a header


class StopSignal(Protocol):
    """What stops a run from outside: a `threading.Event` (or a multiprocessing one)."""

    def is_set(self) -> bool: ...


class NatsUnavailable(FundpoolError):
    code = "nats_unavailable"
    title = "the NATS server could not be reached"


class RelayFailed(FundpoolError):
    code = "relay_failed"
    title = "events were not acknowledged by JetStream"


# --- names ---------------------------------------------------------------------------------


def check_prefix(prefix: str) -> str:
    if not _PREFIX.match(prefix):
        raise ValueError(f"subject prefix {prefix!r}: use [a-z][a-z0-9_-]*, at most 32")
    return prefix


def stream_name(pool: str, prefix: str = DEFAULT_PREFIX) -> str:
    """`FUNDPOOL_<pool>`: the pool's stream (characters a stream name cannot hold become _)."""
    return _NAME_UNSAFE.sub("_", f"{prefix.upper()}_{pool}")


def pool_subjects(pool: str, prefix: str = DEFAULT_PREFIX) -> str:
    return f"{prefix}.{_SUBJECT_UNSAFE.sub('_', pool)}.>"


def event_subject(pool: str, kind: str, prefix: str = DEFAULT_PREFIX) -> str:
    """`fundpool.<pool>.<type>`, e.g. `fundpool.main.payment.transitioned`."""
    return f"{prefix}.{_SUBJECT_UNSAFE.sub('_', pool)}.{_SUBJECT_UNSAFE.sub('_', kind)}"


def _key(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big", signed=True)


def lease_key(schema: str, pool: str) -> int:
    """The advisory lock a consumer holds while it applies `pool` into `schema`: a signed
    64-bit number, the same in every process."""
    return _key(f"fundpool.projector:{schema}:{pool}")


def members_key(schema: str) -> int:
    """The lock every consumer of `schema` holds shared, so each can count the others."""
    return _key(f"fundpool.projector-members:{schema}")


def projection_location(url: str) -> str:
    """Where a projection store URL points, without credentials: what names its durables."""
    if url.startswith(("postgresql://", "postgres://")):
        from fundpool.stores import split_schema

        connect, schema = split_schema(url)
        parts = urlsplit(connect)
        return f"pg:{parts.hostname or ''}:{parts.port or 5432}{parts.path}:{schema or 'fundpool'}"
    path = url.removeprefix("sqlite:///")
    return f"sqlite:{path if path == ':memory:' else os.path.abspath(path)}"


def durable_name(projection_url: str, durable_prefix: str = DURABLE_PREFIX) -> str:
    """`<prefix>_<10 hex digits of the projection store's location>`: every consumer process
    of one projection store shares it; another store gets its own, and its own copy of the
    stream's messages."""
    digest = hashlib.sha256(projection_location(projection_url).encode()).hexdigest()[:10]
    return _NAME_UNSAFE.sub("_", f"{durable_prefix}_{digest}")


# --- the connection and streams ------------------------------------------------------------


async def connect_nats(url: str, *, name: str, wait_s: float = CONNECT_WAIT_S) -> NatsClient:
    """A client that reconnects forever once connected; the first connection is given
    `wait_s` seconds, then `NatsUnavailable`."""

    async def on_error(error: Exception) -> None:
        log.warning("nats_error", error=f"{type(error).__name__}: {error}")

    async def on_disconnected() -> None:
        client = connected[0] if connected else None
        if client is None or not (client.is_closed or client.is_draining):
            log.warning("nats_disconnected")

    async def on_reconnected() -> None:
        log.info("nats_reconnected")

    connected: list[NatsClient] = []
    try:
        client = await asyncio.wait_for(
            nats.connect(url, name=name, error_cb=on_error, disconnected_cb=on_disconnected,
                         reconnected_cb=on_reconnected, connect_timeout=2,
                         max_reconnect_attempts=-1, reconnect_time_wait=0.5),
            wait_s,
        )
        connected.append(client)
        return client
    except (TimeoutError, OSError, nats.errors.Error) as error:
        raise NatsUnavailable(url=_redact(url), reason=f"{type(error).__name__}: {error}") \
            from error


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return url.replace(f":{parts.password}@", ":***@")


async def ensure_stream(js: JetStreamContext, pool: str, prefix: str = DEFAULT_PREFIX,
                        *, max_age_s: float | None = None) -> str:
    """Create the pool's stream when it does not exist yet (any process may: the same
    configuration every time); an existing stream is left as it is. Returns its name."""
    name = stream_name(pool, prefix)
    try:
        await js.stream_info(name)
        return name
    except NotFoundError:
        pass
    config = StreamConfig(
        name=name,
        subjects=[pool_subjects(pool, prefix)],
        storage=StorageType.FILE,
        duplicate_window=DUPLICATE_WINDOW_S,
        max_age=max_age_s,
        description=f"fundpool events of pool {pool}",
    )
    try:
        await js.add_stream(config)
        log.info("nats_stream_created", stream=name, subjects=config.subjects)
    except nats.js.errors.BadRequestError:
        await js.stream_info(name)  # created meanwhile by another process: fine
    return name


async def stream_pools(js: JetStreamContext, prefix: str = DEFAULT_PREFIX) -> list[str]:
    """The pools that have a stream under `prefix`."""
    head = f"{prefix}."
    pools: set[str] = set()
    offset = 0
    while True:
        infos = await js.streams_info(offset)
        for info in infos:
            for subject in info.config.subjects or ():
                if subject.startswith(head) and subject.endswith(".>") \
                        and info.config.name == stream_name(subject[len(head):-2], prefix):
                    pools.add(subject[len(head):-2])
        if len(infos) < 256:  # the server's page size
            return sorted(pools)
        offset += len(infos)


# --- the relay -----------------------------------------------------------------------------


def _json_text(value: str) -> str:
    return f'"{value}"' if _PLAIN.match(value) else json.dumps(value, ensure_ascii=False)


def wire_message(row: Sequence[Any]) -> bytes:
    """An outbox row as the event's wire form (the bytes `encode` gives for the event),
    assembled from the row without decoding it. Data that is not JSON is sent as a JSON string
    in its place, which every consumer rejects at the event's seq, as the in-process feed
    does."""
    _pos, pool, seq, event_id, kind, version, at_us, data = row
    try:
        json.loads(data)
    except ValueError:
        data = json.dumps(data, ensure_ascii=False)
    return (f'{{"id":{_json_text(event_id)},"type":{_json_text(kind)},"v":{int(version)},'
            f'"pool":{_json_text(pool)},"seq":{int(seq)},"at_us":{int(at_us)},'
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
        self._mark = outbox_mark(ledger_store)
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
            save_cursor(session.connection, self._mark, self.name, pos)  # type: ignore[attr-defined]

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


# --- the consumer --------------------------------------------------------------------------


@dataclass(slots=True)
class ConsumeReport:
    received: int = 0
    applied: int = 0
    duplicates: int = 0
    ignored: int = 0
    rejected: int = 0
    parked: int = 0  # messages set aside after a gap, applied once it closed
    redelivered: int = 0  # held messages given back (nak) to come again
    terminated: int = 0  # unreadable messages dropped (term)
    commits: int = 0
    failures: int = 0  # applies that failed (their messages come again)
    blocked: dict[str, str] = field(default_factory=dict)
    pools: list[str] = field(default_factory=list)  # the pools leased at the end


CommitHook = Callable[[Sequence[Item], ApplyReport], None]


class _Pull:
    """A pool's durable pull consumer. Up to two pull requests are outstanding, so messages
    keep flowing while a batch is applied; they are buffered as they arrive, for the consumer
    to apply, and no more is asked for while enough wait."""

    def __init__(self, owner: NatsConsumer, pool: str, stream: str) -> None:
        self.owner = owner
        self.pool = pool
        self.stream = stream
        self.buffer: list[Msg] = []
        self.parked: dict[int, tuple[Item, Msg]] = {}  # by seq: after a gap, not yet applied
        self.touched_at = 0.0
        self.due = 0  # messages the outstanding requests may still bring
        self.active_at = 0.0  # when a request was sent or answered last
        self.broken = False
        self.subscription: Any = None
        self.inbox = ""

    async def start(self, nc: NatsClient) -> None:
        self.inbox = nc.new_inbox()
        self.subscription = await nc.subscribe(self.inbox, cb=self.on_message,
                                               pending_bytes_limit=0)
        await self.request()

    async def stop(self) -> None:
        if self.subscription is not None:
            with contextlib.suppress(Exception):
                await self.subscription.unsubscribe()
            self.subscription = None

    async def request(self) -> None:
        """Ask for the next `batch` messages once fewer than that are due, unless enough are
        waiting to be applied."""
        owner = self.owner
        nc = owner.nc
        batch = owner.batch
        if self.due >= batch or self.subscription is None or nc is None \
                or len(self.buffer) + self.due + batch > owner.commit_size + 2 * batch:
            return
        self.due += batch
        self.active_at = time.monotonic()
        body = json.dumps({"batch": batch, "expires": int(owner.pull_expires_s * 1e9)})
        await nc.publish(f"{JS_API}.CONSUMER.MSG.NEXT.{self.stream}.{owner.durable}",
                         body.encode(), reply=self.inbox)

    async def on_message(self, msg: Msg) -> None:
        headers = msg.headers
        status = headers.get("Status") if headers else None
        if status is None:
            self.buffer.append(msg)
            self.active_at = self.owner.received_at = time.monotonic()
            self.owner.wake.set()
            self.due = max(0, self.due - 1)
        elif status == "100":  # heartbeat
            return
        elif status == "408":  # a request expired: what it did not bring is no longer due
            pending = headers.get("Nats-Pending-Messages", "") if headers else ""
            self.due = max(0, self.due - int(pending)) if pending.isdigit() else 0
            self.active_at = time.monotonic()
        else:  # 404, 409 …: the request was refused or ended
            self.due = max(0, self.due - self.owner.batch)
            description = headers.get("Description") if headers else None
            log.warning("nats_pull_status", pool=self.pool, status=status,
                        description=description)
            if status == "409" and description and "Deleted" in description:
                self.broken = True
                return
        await self.request()

    async def give_back(self) -> None:
        """Everything received and not applied goes back to the stream, to come again."""
        messages = self.buffer + [msg for _item, msg in self.parked.values()]
        self.buffer, self.parked = [], {}
        for msg in messages:
            with contextlib.suppress(Exception):
                await msg.nak()

    def expired(self, now: float) -> bool:
        """Requests are due but nothing came, not even their expiry (lost in a reconnect)."""
        return self.due > 0 and now - self.active_at > self.owner.pull_expires_s + 2.0


class _FileLease:
    """An exclusive lock on a file: the one SQLite projection consumer."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._file: IO[bytes] | None = None

    def acquire(self) -> bool:
        if self._file is not None:
            return True
        import fcntl

        handle = open(self.path, "ab")  # noqa: SIM115 - held open while the lease is
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        self._file = handle
        return True

    def release(self) -> None:
        if self._file is not None:
            self._file.close()  # closing the file releases its lock
            self._file = None


class NatsConsumer:
    """Applies the pools' JetStream streams to a projection store, once per event.

    `projections` is a projection store URL (the consumer opens it, and opens it again after a
    lost connection), a `ProjectionStore` or a `Projector`. `pools` are the pools to consume;
    None: every pool with a stream under `prefix`, looked up again every `lease_poll_s`."""

    def __init__(
        self,
        projections: str | ProjectionStore | Projector,
        nats_url: str = DEFAULT_NATS_URL,
        *,
        pools: Iterable[str] | None = None,
        durable_prefix: str = DURABLE_PREFIX,
        prefix: str = DEFAULT_PREFIX,
        batch: int = PULL_BATCH,
        ack_wait_s: float = ACK_WAIT_S,
        max_ack_pending: int = MAX_ACK_PENDING,
        nak_delay_s: float = NAK_DELAY_S,
        max_parked: int = MAX_PARKED,
        pull_expires_s: float = PULL_EXPIRES_S,
        lease_poll_s: float = LEASE_POLL_S,
        commit_size: int = COMMIT_SIZE,
        linger_s: float = LINGER_S,
        on_commit: CommitHook | None = None,
    ) -> None:
        self._owned_url: str | None = None
        if isinstance(projections, str):
            self._owned_url = projections
            self.projector = Projector(open_projections(projections))
        elif isinstance(projections, ProjectionStore):
            self.projector = Projector(projections)
        else:
            self.projector = projections
        self.nats_url = nats_url
        self.configured_pools = sorted(set(pools)) if pools is not None else None
        self.prefix = check_prefix(prefix)
        self.durable = durable_name(self.projector.store.url, durable_prefix)
        self.batch = max(1, batch)
        self.ack_wait_s = ack_wait_s
        self.max_ack_pending = max(max_ack_pending, 2 * self.batch)
        self.nak_delay_s = nak_delay_s
        self.max_parked = max(0, min(max_parked, self.max_ack_pending // 2))
        self.pull_expires_s = pull_expires_s
        self.lease_poll_s = lease_poll_s
        self.commit_size = max(1, commit_size)
        self.linger_s = linger_s
        self.on_commit = on_commit
        self.report = ConsumeReport()
        self.nc: NatsClient | None = None
        self.js: JetStreamContext | None = None
        self.wake = asyncio.Event()
        self.received_at = time.monotonic()
        self._pulls: dict[str, _Pull] = {}
        self._order = random.random()  # spreads the processes' first picks over the pools
        self._member = False
        url = self.projector.store.url
        self._pg = url.startswith(("postgresql://", "postgres://"))
        path = url.removeprefix("sqlite:///")
        self._file_lease = None if self._pg or path == ":memory:" \
            else _FileLease(f"{path}.consumer-lock")

    # --- life ------------------------------------------------------------------------------

    async def start(self) -> None:
        if self.nc is None:
            self.nc = await connect_nats(self.nats_url, name=f"fundpool-consumer-{self.durable}")
            self.js = self.nc.jetstream()

    async def close(self) -> None:
        for pool in list(self._pulls):
            with contextlib.suppress(Exception):
                await self._release(pool, apply_first=False)
        self._leave()
        if self.nc is not None:
            with contextlib.suppress(Exception):
                await self.nc.drain()
            self.nc = self.js = None
        if self._owned_url is not None:
            with contextlib.suppress(Exception):
                self.projector.store.close()

    async def __aenter__(self) -> NatsConsumer:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    @property
    def leased(self) -> list[str]:
        return sorted(self._pulls)

    # --- leases ----------------------------------------------------------------------------

    def _schema(self) -> str:
        from fundpool.stores import split_schema

        return split_schema(self.projector.store.url)[1] or "fundpool"

    def _pg_connection(self) -> Any:
        # The projection store's own connection: the lease and the commits share it, so a
        # lost connection takes both (a stale holder can never commit).
        return self.projector.store._connection

    def _pg_one(self, query: str, params: Sequence[Any]) -> Any:
        return self._pg_connection().execute(query, params).fetchone()[0]

    def _members(self) -> int:
        key = members_key(self._schema())
        if not self._member:
            self._pg_one("SELECT pg_advisory_lock_shared(%s)", (key,))
            self._member = True
        unsigned = key & 0xFFFF_FFFF_FFFF_FFFF
        return int(self._pg_one(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "AND classid = %s::bigint::oid AND objid = %s::bigint::oid AND objsubid = 1",
            (unsigned >> 32, unsigned & 0xFFFF_FFFF),
        ))

    def _leave(self) -> None:
        if self._pg:
            with contextlib.suppress(Exception):
                self._pg_connection().execute("SELECT pg_advisory_unlock_all()")
            self._member = False
        elif self._file_lease is not None:
            self._file_lease.release()

    def _try_lease(self, pool: str) -> bool:
        if self._pg:
            return bool(self._pg_one("SELECT pg_try_advisory_lock(%s)",
                                     (lease_key(self._schema(), pool),)))
        return self._file_lease is None or self._file_lease.acquire()

    def _end_lease(self, pool: str) -> None:
        if self._pg:
            self._pg_one("SELECT pg_advisory_unlock(%s)", (lease_key(self._schema(), pool),))

    async def _pools(self) -> list[str]:
        if self.configured_pools is not None:
            return self.configured_pools
        assert self.js is not None
        return await stream_pools(self.js, self.prefix)

    async def rebalance(self) -> None:
        """Take the pools this process should hold and give back the extra ones."""
        pools = await self._pools()
        target = len(pools)
        if self._pg:
            target = math.ceil(len(pools) / max(1, self._members()))
        for pool in [p for p in self._pulls if p not in pools]:
            await self._release(pool)
        for pool in sorted(self._pulls, reverse=True)[:max(0, len(self._pulls) - target)]:
            await self._release(pool)
        wanted = sorted(p for p in pools if p not in self._pulls)
        start = int(self._order * len(wanted)) if wanted else 0
        for pool in wanted[start:] + wanted[:start]:
            if len(self._pulls) >= target:
                break
            if self._try_lease(pool):
                try:
                    await self._acquire(pool)
                except Exception:
                    self._end_lease(pool)
                    raise

    async def _acquire(self, pool: str) -> None:
        assert self.nc is not None
        assert self.js is not None
        stream = await ensure_stream(self.js, pool, self.prefix)
        try:
            await self.js.consumer_info(stream, self.durable)
        except NotFoundError:
            await self.js.add_consumer(stream, ConsumerConfig(
                durable_name=self.durable,
                description=f"fundpool projections at {self.projector.store.url.split('?')[0]}"
                if not self._pg else "fundpool projections",
                deliver_policy=DeliverPolicy.ALL,
                ack_policy=AckPolicy.EXPLICIT,
                ack_wait=self.ack_wait_s,
                max_ack_pending=self.max_ack_pending,
            ))
        # Another process may have moved this pool on while it was not ours.
        self.projector.forget()
        pull = _Pull(self, pool, stream)
        self._pulls[pool] = pull
        await pull.start(self.nc)
        log.info("nats_pool_leased", pool=pool, stream=stream, durable=self.durable)

    async def _release(self, pool: str, *, apply_first: bool = True) -> None:
        pull = self._pulls.get(pool)
        if pull is None:
            return
        if apply_first:
            await self.apply_buffered()
        await pull.stop()
        await pull.give_back()  # unapplied: back to the stream for the next holder
        del self._pulls[pool]
        self.projector.forget()
        self._end_lease(pool)
        log.info("nats_pool_released", pool=pool)

    async def _drop_leases(self) -> None:
        """After a lost projection store connection: every lease went with it."""
        for pool, pull in list(self._pulls.items()):
            await pull.stop()
            await pull.give_back()
            del self._pulls[pool]
        self._member = False
        if self._file_lease is not None:
            self._file_lease.release()
        if self._owned_url is not None:
            with contextlib.suppress(Exception):
                self.projector.store.close()
            self.projector = Projector(open_projections(self._owned_url))

    # --- applying --------------------------------------------------------------------------

    async def apply_buffered(self) -> int:
        """Apply every message received so far, with those set aside earlier for a gap, in
        one commit; then answer each. Returns how many new messages were taken."""
        taken = [(pull, pull.buffer) for pull in self._pulls.values() if pull.buffer]
        if not taken:
            return 0
        items: list[Item] = []
        placed: list[tuple[_Pull, Item, Msg]] = []
        unplaced: list[tuple[Msg, str, str]] = []
        count = 0
        for pull, messages in taken:
            pull.buffer = []
            count += len(messages)
            for item, msg in pull.parked.values():  # offered again: their turn may have come
                items.append(item)
                placed.append((pull, item, msg))
            pull.parked = {}
            for msg in messages:
                read = read_message(msg.data)
                if isinstance(read, str):
                    unplaced.append((msg, pull.pool, read))
                elif read.pool != pull.pool:
                    unplaced.append((msg, pull.pool, f"an event of pool {read.pool!r}"))
                else:
                    items.append(read)
                    placed.append((pull, read, msg))
        self.report.received += count
        try:
            report = self.projector.apply(items) if items else ApplyReport()
        except Exception as error:
            self.report.failures += 1
            log.exception("nats_apply_failed", error=str(error))
            for _pull, _item, msg in placed:
                with contextlib.suppress(Exception):
                    await msg.nak(delay=self.nak_delay_s)
            raise
        self.report.commits += 1
        held = {(item.pool, item.seq) for item in report.held}
        for pull, item, msg in placed:
            if (item.pool, item.seq) not in held:
                await msg.ack()  # applied, a duplicate, stepped over: done with
            elif item.pool in report.blocked:  # back in a while: the pool waits for an upgrade
                await msg.nak(delay=BLOCKED_NAK_DELAY_S)
                self.report.redelivered += 1
            elif item.seq in pull.parked:
                await msg.ack()  # the same event is already set aside once
                self.report.duplicates += 1
            else:  # after a gap: kept for the next apply (unacknowledged, so never lost)
                pull.parked[item.seq] = (item, msg)
                self.report.parked += 1
        for pull, _messages in taken:
            await self._overflow(pull)
        for msg, pool, why in unplaced:
            log.error("nats_message_unplaced", pool=pool, reason=why, subject=msg.subject,
                      bytes=len(msg.data))
            await msg.term()
        self.report.terminated += len(unplaced)
        self.report.applied += report.applied
        self.report.duplicates += report.duplicates
        self.report.ignored += report.ignored
        self.report.rejected += report.rejected
        for pool, why in report.blocked.items():
            if pool not in self.report.blocked:
                log.error("nats_pool_blocked", pool=pool, reason=why)
            self.report.blocked[pool] = why
        for pull, _messages in taken:
            await pull.request()
        if self.on_commit is not None:
            self.on_commit(items, report)
        return count

    async def _overflow(self, pull: _Pull) -> None:
        """Give back (nak) what is set aside beyond `max_parked`, the farthest seqs first."""
        extra = len(pull.parked) - self.max_parked
        if extra <= 0:
            return
        for seq in sorted(pull.parked, reverse=True)[:extra]:
            _item, msg = pull.parked.pop(seq)
            await msg.nak(delay=self.nak_delay_s)
            self.report.redelivered += 1

    async def _touch_parked(self, now: float) -> None:
        """Tell JetStream that the messages set aside are still being worked on, so that their
        `ack_wait` does not run out while they wait for the gap to close."""
        for pull in self._pulls.values():
            if pull.parked and now - pull.touched_at >= self.ack_wait_s / 3:
                pull.touched_at = now
                for _item, msg in pull.parked.values():
                    with contextlib.suppress(Exception):
                        await msg.in_progress()

    async def _gather(self) -> None:
        """While messages keep arriving, let up to `commit_size` of them gather for at most
        `linger_s`: one commit of thousands costs far less per event than one of a few
        hundred, and an event waits `linger_s` at most."""
        if not self.linger_s:
            return
        deadline = time.monotonic() + self.linger_s
        while True:
            buffered = sum(len(pull.buffer) for pull in self._pulls.values())
            now = time.monotonic()
            if not buffered or buffered >= self.commit_size or now >= deadline \
                    or now - self.received_at > 0.005:
                return
            await asyncio.sleep(0.001)

    def reached(self, targets: dict[str, int]) -> bool:
        """Every pool's stored projection is at or past its target seq."""
        store = self.projector.store
        return all(store.cursor(pool).seq >= seq for pool, seq in targets.items())

    async def _housekeeping(self) -> None:
        now = time.monotonic()
        for pool, pull in list(self._pulls.items()):
            if pull.broken:  # the durable was deleted: start the pool again
                await self._release(pool)
            elif pull.expired(now):
                pull.due = 0
                await pull.request()
        await self.rebalance()

    async def run(
        self,
        *,
        until_idle_s: float | None = None,
        stop_after_s: float | None = None,
        until_seq: dict[str, int] | None = None,
        stop: StopSignal | None = None,
    ) -> ConsumeReport:
        """Consume until stopped: `until_idle_s` after that long without a message,
        `until_seq` once each pool's projection has reached its seq, `stop_after_s`, or
        `stop` (set from any thread)."""
        started = time.monotonic()
        self.received_at = started
        next_housekeeping = started
        next_check = started
        try:
            await self.start()
            while not (stop is not None and stop.is_set()):
                now = time.monotonic()
                if now >= next_housekeeping:
                    try:
                        await self._housekeeping()
                    except (OSError, FundpoolError, nats.errors.Error) as error:
                        log.warning("nats_lease_poll_failed", error=str(error))
                    except Exception as error:
                        if not _is_driver_error(error):
                            raise
                        log.warning("nats_projection_store_lost", error=str(error))
                        await self._drop_leases()
                    next_housekeeping = time.monotonic() + self.lease_poll_s
                if stop_after_s is not None and now - started >= stop_after_s:
                    break
                if until_seq is not None and now >= next_check:
                    next_check = now + 0.05
                    if self.reached(until_seq):
                        break
                if until_idle_s is not None and now - self.received_at >= until_idle_s \
                        and not any(p.buffer for p in self._pulls.values()):
                    break
                wait = max(0.0, min(next_housekeeping - now, 0.05 if until_seq else 0.25))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), wait)
                self.wake.clear()
                await self._touch_parked(time.monotonic())
                await self._gather()
                try:
                    await self.apply_buffered()
                except Exception as error:
                    if self._owned_url is None or not _is_driver_error(error):
                        raise
                    await self._drop_leases()
                    next_housekeeping = time.monotonic() + self.lease_poll_s
        finally:
            self.report.pools = self.leased
            await self.close()
        return self.report


def open_projections(url: str, *, attempts: int = 5) -> ProjectionStore:
    """A projection store; consumers started together may race to create its schema and
    tables (PostgreSQL's `CREATE … IF NOT EXISTS` is not safe against a concurrent one), so
    a unique violation while creating them is tried again."""
    import psycopg

    for attempt in range(1, attempts + 1):
        try:
            return ProjectionStore(url)
        except psycopg.errors.UniqueViolation:
            if attempt == attempts:
                raise
            time.sleep(0.05 * attempt)
    raise AssertionError("unreachable")


def _is_driver_error(error: BaseException) -> bool:
    import sqlite3

    import psycopg

    return isinstance(error, sqlite3.Error | psycopg.Error)


# --- sync entry points ---------------------------------------------------------------------


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


def run_consumer(projections: str | ProjectionStore | Projector,
                 nats_url: str = DEFAULT_NATS_URL, *, until_idle_s: float | None = None,
                 stop_after_s: float | None = None, until_seq: dict[str, int] | None = None,
                 stop: StopSignal | None = None, **options: Any) -> ConsumeReport:
    """Run a `NatsConsumer` in its own event loop until it stops (see `NatsConsumer.run`)."""

    async def main() -> ConsumeReport:
        consumer = NatsConsumer(projections, nats_url, **options)
        return await consumer.run(until_idle_s=until_idle_s, stop_after_s=stop_after_s,
                                  until_seq=until_seq, stop=stop)

    return asyncio.run(main())


def projection_url(path_or_url: str | Path) -> str:
    """A projection store URL from a URL or a SQLite file path."""
    text = str(path_or_url)
    if text.startswith(("sqlite:///", "postgresql://", "postgres://")):
        return text
    return f"sqlite:///{text}"
