"""The durable consumers: they apply the pools' JetStream streams to projections, each event
once (docs/monitoring.md, ADR 0011).

`NatsConsumer` keeps one durable pull consumer per pool stream (named by
`subjects.durable_name`, shared by every process of one projection store): ack policy `all`,
deliver all, `ack_wait` 5 s, at most 20,000 unacknowledged. Up to two pull requests of 1,000
are outstanding per pool; what arrives is applied at once (gathered for at most 10 ms while it
keeps coming, up to 2,500 per commit; 40 ms while a backlog is worked off), every pool in one
`apply` of the projection applier (the port `fundpool.monitoring.ports.ProjectionApplier`),
and only after that commit is each message answered:

- applied, duplicate, rejected (malformed, recorded) or ignored (unknown type) → done;
- after a gap (`seq` beyond the projection's next): kept in memory, unacknowledged (with
  `+WPI` so `ack_wait` does not run out) and offered again with the next messages; beyond
  10,000 kept per pool, the farthest are given back with `nak(delay=1 s)`;
- in a pool blocked by an unknown event version → `nak(delay=30 s)`, until an upgrade;
- unreadable (no pool or seq to place it), or an event of another pool than its stream's →
  logged as `nats_message_unplaced`, and done.

What is done is acknowledged once per contiguous run of the stream (`acks.py`): one `ack` of
the run's last message acknowledges all of it, so a commit of thousands sends one per pool.
A durable made before (ack policy `explicit`) keeps its policy, and each done message is
acknowledged on its own (an unplaced one with `term`).

A consumer applies a pool only while it holds the pool's lease (`leases.py`): processes of
one PostgreSQL projection store share the pools and take over a dead one's; SQLite projections
have one consumer process at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from pathlib import Path
from typing import Any

import nats
import structlog
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from fundpool.bus.acks import AckRuns
from fundpool.bus.connection import StopSignal, connect_nats
from fundpool.bus.defaults import (
    ACK_WAIT_S,
    DEFAULT_NATS_URL,
    DEFAULT_PREFIX,
    DURABLE_PREFIX,
    PULL_BATCH,
)
from fundpool.bus.leases import leases_for
from fundpool.bus.subjects import (
    check_prefix,
    durable_name,
    ensure_stream,
    pool_subjects,
    stream_pools,
)
from fundpool.core.errors import FundpoolError
from fundpool.monitoring.ports import ApplyReport, Item, ProjectionApplier, read_message
from fundpool.sql.dialect import dialect
from fundpool.sql.url import parse_url
from fundpool.stores.projection_sql import ProjectionStore

log = structlog.get_logger(__name__)

MAX_ACK_PENDING = 20_000
PULL_EXPIRES_S = 1.0
MAX_PARKED = 10_000  # messages set aside per pool after a gap; beyond, they are given back
NAK_DELAY_S = 1.0  # … and come again after this long
BLOCKED_NAK_DELAY_S = 30.0  # … or this long when its pool waits for an upgrade
LEASE_POLL_S = 1.0
COMMIT_SIZE = 2_500  # messages gathered for one projection commit, at most …
LINGER_S = 0.01  # … for this long while they keep arriving, …
# … or this long in a backlog (1/BACKLOG_SHARE of a commit gathered within LINGER_S): a commit
# costs a few ms whatever its size, 3-4 µs an event more in commits of 850 than of 2,500.
BACKLOG_LINGER_S = 0.04
BACKLOG_SHARE = 4
QUIET_S = 0.005  # gathering stops when nothing has come for this long, …
BACKLOG_QUIET_S = 0.02  # … or this long in a backlog (a busy server's deliveries pause too)
JS_API = "$JS.API"


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
ApplierFactory = Callable[[ProjectionStore], ProjectionApplier]  # e.g. the `Projector` class
_reply = attrgetter("reply")  # a message's reply subject, which names its sequences


class _Pull:
    """A pool's durable pull consumer. Up to two pull requests are outstanding, so messages
    keep flowing while a batch is applied; they are buffered as they arrive, for the consumer
    to apply, and no more is asked for while enough wait."""

    def __init__(self, owner: NatsConsumer, pool: str, stream: str,
                 runs: AckRuns[Msg] | None) -> None:
        self.owner = owner
        self.pool = pool
        self.stream = stream
        # Ack policy `all`: what is done, acknowledged by runs; None: `explicit`, one by one.
        self.runs = runs
        self.broken_since: float | None = None  # when a run was first seen broken
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
            owner = self.owner
            self.active_at = owner.received_at = time.monotonic()
            owner.wake.set()
            if self.due > 0:
                self.due -= 1
            if self.due >= owner.batch:
                return  # nothing to ask for yet (`request` would say so)
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

    async def finish(self, messages: list[Msg]) -> None:
        """`messages` are done with (after the commit that made them so): acknowledge them,
        with one `ack` for the longest contiguous run they make (or one each, for a durable
        of ack policy `explicit`)."""
        runs = self.runs
        if runs is None:
            for msg in messages:
                await msg.ack()
            return
        runs.done(messages, _reply)  # every delivery of a pull request is placed
        await self.acknowledge()

    async def acknowledge(self) -> None:
        """Acknowledge the longest contiguous run of what is done, with one `ack`."""
        if self.runs is not None:
            last = self.runs.advance()
            if last is not None:
                await last.ack()

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


class NatsConsumer:
    """Applies the pools' JetStream streams to a projection store, once per event.

    `projections` is a projection store URL (the consumer opens it, and opens it again after a
    lost connection) or a `ProjectionStore`; `applier` makes what applies events to it
    (`fundpool.monitoring.projector.Projector`). `pools` are the pools to consume; None: every
    pool with a stream under `prefix`, looked up again every `lease_poll_s`."""

    def __init__(
        self,
        projections: str | ProjectionStore,
        nats_url: str = DEFAULT_NATS_URL,
        *,
        applier: ApplierFactory,
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
        backlog_linger_s: float = BACKLOG_LINGER_S,
        on_commit: CommitHook | None = None,
    ) -> None:
        self._owned_url: str | None = None
        if isinstance(projections, str):
            self._owned_url = projections
            projections = open_projections(projections)
        self.store = projections
        self._applier = applier
        self.projector = applier(projections)
        self.nats_url = nats_url
        self.configured_pools = sorted(set(pools)) if pools is not None else None
        self.prefix = check_prefix(prefix)
        self.durable = durable_name(self.store.url, durable_prefix)
        self.batch = max(1, batch)
        self.ack_wait_s = ack_wait_s
        self.max_ack_pending = max(max_ack_pending, 2 * self.batch)
        self.nak_delay_s = nak_delay_s
        self.max_parked = max(0, min(max_parked, self.max_ack_pending // 2))
        self.pull_expires_s = pull_expires_s
        self.lease_poll_s = lease_poll_s
        self.commit_size = max(1, commit_size)
        self.linger_s = linger_s
        self.backlog_linger_s = max(linger_s, backlog_linger_s)
        self.on_commit = on_commit
        self.report = ConsumeReport()
        self.nc: NatsClient | None = None
        self.js: JetStreamContext | None = None
        self.wake = asyncio.Event()
        self.received_at = time.monotonic()
        self._pulls: dict[str, _Pull] = {}
        self._order = random.random()  # spreads the processes' first picks over the pools
        self._pg = self.store.db.is_postgres
        # What the projection store's driver raises when the database itself fails.
        self._driver_errors = self.store.db.dialect.driver_errors
        # The projection store's own connection: the lease and the commits share it, so a
        # lost connection takes both (a stale holder can never commit).
        self._leases = leases_for(self.store.url, lambda: self.store.db.current)

    # --- life ------------------------------------------------------------------------------

    async def start(self) -> None:
        if self.nc is None:
            self.nc = await connect_nats(self.nats_url, name=f"fundpool-consumer-{self.durable}")
            self.js = self.nc.jetstream()

    async def close(self) -> None:
        for pool in list(self._pulls):
            with contextlib.suppress(Exception):
                await self._release(pool, apply_first=False)
        self._leases.leave()
        if self.nc is not None:
            with contextlib.suppress(Exception):
                await self.nc.drain()
            self.nc = self.js = None
        if self._owned_url is not None:
            with contextlib.suppress(Exception):
                self.store.close()

    async def __aenter__(self) -> NatsConsumer:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    @property
    def leased(self) -> list[str]:
        return sorted(self._pulls)

    # --- leases ----------------------------------------------------------------------------

    async def _pools(self) -> list[str]:
        if self.configured_pools is not None:
            return self.configured_pools
        assert self.js is not None
        return await stream_pools(self.js, self.prefix)

    async def rebalance(self) -> None:
        """Take the pools this process should hold and give back the extra ones."""
        pools = await self._pools()
        target = self._leases.share(len(pools))
        for pool in [p for p in self._pulls if p not in pools]:
            await self._release(pool)
        for pool in sorted(self._pulls, reverse=True)[:max(0, len(self._pulls) - target)]:
            await self._release(pool)
        wanted = sorted(p for p in pools if p not in self._pulls)
        start = int(self._order * len(wanted)) if wanted else 0
        for pool in wanted[start:] + wanted[:start]:
            if len(self._pulls) >= target:
                break
            if self._leases.take(pool):
                try:
                    await self._acquire(pool)
                except Exception:
                    self._leases.give_back(pool)
                    raise

    async def _acquire(self, pool: str) -> None:
        assert self.nc is not None
        assert self.js is not None
        stream = await ensure_stream(self.js, pool, self.prefix)
        try:
            info = await self.js.consumer_info(stream, self.durable)
        except NotFoundError:
            info = await self.js.add_consumer(stream, ConsumerConfig(
                durable_name=self.durable,
                description=f"fundpool projections at {self.store.url.split('?')[0]}"
                if not self._pg else "fundpool projections",
                deliver_policy=DeliverPolicy.ALL,
                ack_policy=AckPolicy.ALL,
                ack_wait=self.ack_wait_s,
                max_ack_pending=self.max_ack_pending,
            ))
        runs: AckRuns[Msg] | None = None
        if info.config.ack_policy == AckPolicy.ALL:
            floor = info.ack_floor
            runs = AckRuns(floor.stream_seq, floor.consumer_seq) if floor else AckRuns()
        # Another process may have moved this pool on while it was not ours.
        self.projector.forget()
        pull = _Pull(self, pool, stream, runs)
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
        self._leases.give_back(pool)
        log.info("nats_pool_released", pool=pool)

    async def _drop_leases(self) -> None:
        """After a lost projection store connection: every lease went with it."""
        for pool, pull in list(self._pulls.items()):
            await pull.stop()
            await pull.give_back()
            del self._pulls[pool]
        self._leases.lost()
        if self._owned_url is not None:
            with contextlib.suppress(Exception):
                self.store.close()
            store = open_projections(self._owned_url)
            self.store, self.projector = store, self._applier(store)

    # --- applying --------------------------------------------------------------------------

    async def apply_buffered(self) -> int:
        """Apply every message received so far, with those set aside earlier for a gap, in
        one commit; then answer each. Returns how many new messages were taken."""
        taken = [(pull, pull.buffer) for pull in self._pulls.values() if pull.buffer]
        if not taken:
            return 0
        items: list[Item] = []
        # Per pool, the items read and their messages, side by side.
        placed: list[tuple[_Pull, list[Item], list[Msg]]] = []
        unplaced: list[tuple[_Pull, Msg, str]] = []
        count = 0
        for pull, messages in taken:
            pull.buffer = []
            count += len(messages)
            pool_items: list[Item] = []
            pool_messages: list[Msg] = []
            for item, msg in pull.parked.values():  # offered again: their turn may have come
                pool_items.append(item)
                pool_messages.append(msg)
            pull.parked = {}
            for msg in messages:
                read = read_message(msg.data)
                if isinstance(read, str):
                    unplaced.append((pull, msg, read))
                elif read.pool != pull.pool:
                    unplaced.append((pull, msg, f"an event of pool {read.pool!r}"))
                else:
                    pool_items.append(read)
                    pool_messages.append(msg)
            items.extend(pool_items)
            placed.append((pull, pool_items, pool_messages))
        self.report.received += count
        try:
            report = self.projector.apply(items) if items else ApplyReport()
        except Exception as error:
            self.report.failures += 1
            log.exception("nats_apply_failed", error=str(error))
            for _pull, _items, pool_messages in placed:
                for msg in pool_messages:
                    with contextlib.suppress(Exception):
                        await msg.nak(delay=self.nak_delay_s)
            raise
        self.report.commits += 1
        held = {(item.pool, item.seq) for item in report.held}
        finished: dict[str, list[Msg]] = {}
        for pull, pool_items, pool_messages in placed:
            if not held:  # applied, duplicates, stepped over: all done with
                finished[pull.pool] = pool_messages
                continue
            done = finished[pull.pool] = []
            for item, msg in zip(pool_items, pool_messages, strict=True):
                if (item.pool, item.seq) not in held:
                    done.append(msg)
                elif item.pool in report.blocked:  # back in a while: it waits for an upgrade
                    await msg.nak(delay=BLOCKED_NAK_DELAY_S)
                    self.report.redelivered += 1
                elif item.seq in pull.parked:
                    done.append(msg)  # the same event is already set aside once
                    self.report.duplicates += 1
                else:  # after a gap: kept for the next apply (unacknowledged, so never lost)
                    pull.parked[item.seq] = (item, msg)
                    self.report.parked += 1
        for pull, _messages in taken:
            await self._overflow(pull)
        for pull, msg, why in unplaced:
            log.error("nats_message_unplaced", pool=pull.pool, reason=why, subject=msg.subject,
                      bytes=len(msg.data))
            if pull.runs is None:
                await msg.term()
            else:  # never to be read: done with, acknowledged with its run
                finished.setdefault(pull.pool, []).append(msg)
        self.report.terminated += len(unplaced)
        for pull, _messages in taken:
            await pull.finish(finished.get(pull.pool, []))
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
        hundred, and an event waits `linger_s` at most. When they come so fast that a
        quarter of `commit_size` gathered within `linger_s` (a backlog: the stream is ahead
        of the projections), up to `backlog_linger_s`."""
        if not self.linger_s:
            return
        started = time.monotonic()
        deadline, longest = started + self.linger_s, started + self.backlog_linger_s
        backlog = self.commit_size // BACKLOG_SHARE
        while True:
            buffered = sum(len(pull.buffer) for pull in self._pulls.values())
            now = time.monotonic()
            if not buffered or buffered >= self.commit_size:
                return
            # Quiet since the last message, or since gathering began: what came while the
            # last batch was applied is no sign that nothing more is coming.
            quiet_s = now - max(self.received_at, started)
            if buffered < backlog:
                if now >= deadline or quiet_s > QUIET_S:
                    return
            elif now >= longest or quiet_s > BACKLOG_QUIET_S:
                return
            await asyncio.sleep(0.001)

    def reached(self, targets: dict[str, int]) -> bool:
        """Every pool's stored projection is at or past its target seq."""
        store = self.store
        return all(store.cursor(pool).seq >= seq for pool, seq in targets.items())

    async def _housekeeping(self) -> None:
        now = time.monotonic()
        for pool, pull in list(self._pulls.items()):
            if pull.broken:  # the durable was deleted: start the pool again
                await self._release(pool)
                continue
            if pull.expired(now):
                pull.due = 0
                await pull.request()
            await self._mend_run(pull, now)
        await self.rebalance()

    async def _mend_run(self, pull: _Pull, now: float) -> None:
        """A run broken since the last poll: ask the server what it knows. Its ack floor may
        be ahead (another process acknowledged before this one took the pool), and the
        messages the run lacks may no longer exist (deleted, expired) and so cannot break
        it. A message that exists and is missing here comes again after `ack_wait`."""
        runs = pull.runs
        if runs is None or not runs:
            pull.broken_since = None
            return
        if pull.broken_since is None:
            pull.broken_since = now
            return
        if now - pull.broken_since < self.lease_poll_s:
            return
        pull.broken_since = now
        assert self.js is not None
        info = await self.js.consumer_info(pull.stream, self.durable)
        if info.ack_floor is not None:
            runs.floor(info.ack_floor.stream_seq, info.ack_floor.consumer_seq)
        missing = runs.first_missing()
        if missing is not None:
            try:
                found = await self.js.get_msg(pull.stream, seq=missing, next=True,
                                              subject=pool_subjects(pull.pool, self.prefix))
                runs.absent(missing, (found.seq or missing) - 1)
            except NotFoundError:  # nothing at or after it: what waits was deleted too
                runs.absent(missing, runs.highest)
        await pull.acknowledge()

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
                    except self._driver_errors as error:
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
                except self._driver_errors:
                    if self._owned_url is None:
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
    a constraint violation while creating them is tried again."""
    racing = dialect(parse_url(url).kind).integrity_errors
    for attempt in range(1, attempts + 1):
        try:
            return ProjectionStore(url)
        except racing:
            if attempt == attempts:
                raise
            time.sleep(0.05 * attempt)
    raise AssertionError("unreachable")


def run_consumer(projections: str | ProjectionStore, nats_url: str = DEFAULT_NATS_URL, *,
                 applier: ApplierFactory, until_idle_s: float | None = None,
                 stop_after_s: float | None = None, until_seq: dict[str, int] | None = None,
                 stop: StopSignal | None = None, **options: Any) -> ConsumeReport:
    """Run a `NatsConsumer` in its own event loop until it stops (see `NatsConsumer.run`)."""

    async def main() -> ConsumeReport:
        consumer = NatsConsumer(projections, nats_url, applier=applier, **options)
        return await consumer.run(until_idle_s=until_idle_s, stop_after_s=stop_after_s,
                                  until_seq=until_seq, stop=stop)

    return asyncio.run(main())


def projection_url(path_or_url: str | Path) -> str:
    """A projection store URL from a URL or a SQLite file path. A URL of a kind no store
    supports is `unsupported_database_url` (not a file of that name)."""
    text = str(path_or_url)
    if "://" not in text and not text.startswith("sqlite:"):
        return f"sqlite:///{text}"
    parse_url(text)
    return text
