"""The outbox through NATS JetStream into projections, on the real NATS server (never a mock).

Every test uses a subject prefix of its own (so streams `T<hex>_main`, `T<hex>__ledger`) and
deletes its streams afterwards. Without a NATS server with JetStream the tests skip with a
message saying so; in CI (CI=true) they fail instead.

The reference everywhere is the in-process feed (`OutboxFeed`) folding the same outbox: the
path through NATS must give exactly its cells, series and cursors.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from nats.js.errors import NotFoundError

from fundpool import compose
from fundpool.bus.connection import NatsUnavailable, connect_nats
from fundpool.bus.consumer import ConsumeReport, NatsConsumer, open_projections, run_consumer
from fundpool.bus.leases import lease_key
from fundpool.bus.relay import run_relay, wire_message
from fundpool.bus.subjects import durable_name, ensure_stream, event_subject, stream_name
from fundpool.core.clock import ManualClock, Uuid7Ids
from fundpool.events.model import encode
from fundpool.ledger.service import Ledger
from fundpool.monitoring.feed import OutboxFeed, item_from_row
from fundpool.monitoring.messages import Skipped, read_message
from fundpool.monitoring.projector import Projector
from fundpool.pool.config import load_config
from fundpool.stores.events_sql import OutboxReader, save_cursor
from fundpool.stores.projection_sql import ProjectionStore
from fundpool.stores.sqlite import SqliteStore
from tests.conftest import IN_CI, PG_URL, new_pg_schema, require_postgres

NATS_URL = os.environ.get("FUNDPOOL_TEST_NATS_URL", "nats://127.0.0.1:4222")
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "pool.toml"
POOLS = ("_ledger", "main")
# How long a test waits for a condition before it fails: far beyond what any takes on a busy
# machine, since nothing here may assume how long something takes.
WAIT_S = 60.0

_nats_why: list[str | None] = []


def nats_reachable() -> str | None:
    """None when a NATS server with JetStream answers, else why not (asked once)."""
    if not _nats_why:

        async def probe() -> None:
            nc = await connect_nats(NATS_URL, name="fundpool-test-probe", wait_s=3)
            try:
                await nc.jetstream().account_info()
            finally:
                await nc.close()

        try:
            asyncio.run(probe())
            _nats_why.append(None)
        except Exception as error:  # any failure means: not here
            _nats_why.append(f"{type(error).__name__}: {error}")
    return _nats_why[0]


def require_nats() -> None:
    why = nats_reachable()
    if why is None:
        return
    message = f"NATS with JetStream is not reachable at {NATS_URL} ({why})"
    if IN_CI:
        pytest.fail(message + "; CI must provide it (.ci/run starts it)")
    pytest.skip(message + "; start nats-server -js or set FUNDPOOL_TEST_NATS_URL")


# --- waiting for a condition, with a bound --------------------------------------------------


async def eventually(check: Callable[[], bool | Awaitable[bool]], what: Callable[[], str],
                     *, within_s: float = WAIT_S) -> None:
    """Poll `check` until it holds; after `within_s`, fail saying `what` (what was awaited,
    and how things stand)."""
    deadline = time.monotonic() + within_s
    while True:
        outcome = check()
        if outcome if isinstance(outcome, bool) else await outcome:
            return
        if time.monotonic() >= deadline:
            pytest.fail(f"waited {within_s:g} s for {what()}")
        await asyncio.sleep(0.02)


def wait_for(check: Callable[[], bool], what: Callable[[], str], *,
             within_s: float = WAIT_S) -> None:
    """`eventually`, outside an event loop."""
    deadline = time.monotonic() + within_s
    while not check():
        if time.monotonic() >= deadline:
            pytest.fail(f"waited {within_s:g} s for {what()}")
        time.sleep(0.005)


@dataclass(frozen=True)
class When:
    """A stop signal that is set once `condition` holds (a run checks it between batches)."""

    condition: Callable[[], bool]

    def is_set(self) -> bool:
        return self.condition()


# --- the outbox of a simulated run, and its in-process projection --------------------------


@dataclass(frozen=True)
class Reference:
    path: Path  # a ledger whose outbox holds the run's events (copy it before writing)
    heads: dict[str, int]
    last_pos: int
    cells: dict[str, dict[tuple[str, str], int]]
    series: dict[str, list[tuple[tuple[str, str, int], int]]]


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Reference:
    root = tmp_path_factory.mktemp("nats-reference")
    store = SqliteStore(root / "ledger.sqlite3")
    store.initialise()
    clock = ManualClock()
    config = load_config(EXAMPLE)
    simulation = compose.simulation(Ledger(store, clock, Uuid7Ids.seeded(5)), config,
                                    config.pools[0], seed=5, clock=clock)
    simulation.open_pool()
    simulation.run(rate_per_s=100, duration_s=20, advance=lambda s: clock.advance(seconds=s))
    outbox = OutboxReader(store)
    projections = ProjectionStore(f"sqlite:///{root / 'reference.sqlite3'}")
    OutboxFeed(outbox, Projector(projections)).catch_up()
    heads = outbox.heads()
    assert sorted(heads) == list(POOLS)
    assert heads["main"] > 5_000  # thousands of real events
    reference = Reference(
        root / "ledger.sqlite3", heads, outbox.last_pos(),
        {pool: projections.cells(pool) for pool in heads},
        {pool: projections.series(pool) for pool in heads},
    )
    assert all(projections.cursor(pool).seq == seq for pool, seq in heads.items())
    projections.close()
    store.close()
    return reference


@pytest.fixture
def ledger(reference: Reference, tmp_path: Path) -> Iterator[SqliteStore]:
    """A copy of the reference ledger, for a relay to write its cursor into."""
    shutil.copy(reference.path, tmp_path / "ledger.sqlite3")
    store = SqliteStore(tmp_path / "ledger.sqlite3")
    yield store
    store.close()


async def _delete_streams(prefix: str) -> None:
    nc = await connect_nats(NATS_URL, name="fundpool-test-cleanup")
    js = nc.jetstream()
    for pool in POOLS:
        with contextlib.suppress(Exception):  # absent: nothing to delete
            await js.delete_stream(stream_name(pool, prefix))
    await nc.close()


@pytest.fixture
def prefix() -> Iterator[str]:
    """A subject prefix (and so streams) of the test's own."""
    require_nats()
    name = f"t{uuid.uuid4().hex[:10]}"
    yield name
    asyncio.run(_delete_streams(name))


@pytest.fixture
def pg_projections() -> Iterator[str]:
    require_postgres()
    schema = new_pg_schema()
    yield f"{PG_URL}?schema={schema}"
    import psycopg

    with psycopg.connect(PG_URL, autocommit=True) as connection:
        connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def assert_same_projection(url: str, reference: Reference) -> None:
    store = ProjectionStore(url)
    try:
        for pool, head in reference.heads.items():
            cursor = store.cursor(pool)
            assert cursor.seq == head, pool
            assert cursor.rejected == 0
            assert store.cells(pool) == reference.cells[pool], pool
            assert store.series(pool) == reference.series[pool], pool
    finally:
        store.close()


async def _stream_messages(prefix: str) -> dict[str, int]:
    nc = await connect_nats(NATS_URL, name="fundpool-test")
    js = nc.jetstream()
    try:
        return {pool: (await js.stream_info(stream_name(pool, prefix))).state.messages or 0
                for pool in POOLS}
    finally:
        await nc.close()


# --- names and the wire form (no server needed) ---------------------------------------------


def test_names() -> None:
    assert stream_name("main") == "FUNDPOOL_main"
    assert stream_name("_ledger") == "FUNDPOOL__ledger"
    assert stream_name("a.b c") == "FUNDPOOL_a_b_c"
    assert event_subject("main", "payment.transitioned") == "fundpool.main.payment.transitioned"
    assert lease_key("fundpool", "main") != lease_key("fundpool", "other")
    assert lease_key("fundpool", "main") != lease_key("other", "main")
    assert -(2**63) <= lease_key("fundpool", "main") < 2**63
    # Every process of one projection store shares a durable; another store gets its own.
    assert durable_name("sqlite:///a/p.db") == durable_name(f"sqlite:///{Path.cwd()}/a/p.db")
    assert durable_name("postgresql://u:secret@h/db?schema=x") \
        == durable_name("postgresql://u:other@h/db?schema=x")
    assert durable_name("postgresql://h/db?schema=x") != durable_name("postgresql://h/db?schema=y")
    assert durable_name("postgresql://h/db?schema=x").startswith("projector_")


def test_wire_message_is_the_encoded_event(reference: Reference) -> None:
    store = SqliteStore(reference.path)
    try:
        rows = OutboxReader(store).raw_after(0, 10_000)
    finally:
        store.close()
    assert rows
    for row in rows:
        assert wire_message(row) == encode(item_from_row(row, OutboxReader.decode))  # type: ignore[arg-type]


def test_outbox_data_that_is_not_json_is_rejected_in_its_place() -> None:
    row = (7, "main", 3, "e-3", "payment.transitioned", 1, 10, "{not json")
    read = read_message(wire_message(row))
    assert isinstance(read, Skipped)
    assert (read.pool, read.seq, read.event_id) == ("main", 3, "e-3")
    assert isinstance(item_from_row(row, OutboxReader.decode), Skipped)  # as the feed has it


def test_an_unreachable_server_is_a_domain_error() -> None:
    with pytest.raises(NatsUnavailable):
        asyncio.run(connect_nats("nats://127.0.0.1:9", name="fundpool-test", wait_s=1.0))


# --- relay → NATS → consumer ----------------------------------------------------------------


def test_relay_and_consumer_give_the_in_process_projection(
    reference: Reference, ledger: SqliteStore, prefix: str, tmp_path: Path
) -> None:
    report = run_relay(ledger, NATS_URL, once=True, prefix=prefix)
    assert report.published == reference.last_pos
    assert report.duplicates == 0
    assert OutboxReader(ledger).cursor("nats") == reference.last_pos
    assert asyncio.run(_stream_messages(prefix)) == reference.heads

    url = f"sqlite:///{tmp_path / 'projections.sqlite3'}"
    consumed = run_consumer(url, NATS_URL, applier=Projector, prefix=prefix,
                            until_seq=reference.heads, stop_after_s=WAIT_S)
    assert consumed.applied == reference.last_pos, f"not all applied within {WAIT_S:g} s"
    assert (consumed.duplicates, consumed.rejected, consumed.terminated) == (0, 0, 0)
    assert sorted(consumed.pools) == list(POOLS)  # found by their streams
    assert_same_projection(url, reference)


def test_publishing_everything_twice_changes_no_figure(
    reference: Reference, ledger: SqliteStore, prefix: str, tmp_path: Path
) -> None:
    run_relay(ledger, NATS_URL, once=True, prefix=prefix)
    url = f"sqlite:///{tmp_path / 'projections.sqlite3'}"
    run_consumer(url, NATS_URL, applier=Projector, prefix=prefix, pools=POOLS,
                 until_seq=reference.heads, stop_after_s=WAIT_S)

    # A relay that lost its cursor publishes it all again: JetStream drops every message
    # (same Nats-Msg-Id within the duplicate window).
    with ledger.write() as session:
        save_cursor(session.tx, "nats", 0)
    again = run_relay(ledger, NATS_URL, once=True, prefix=prefix)
    assert again.published == reference.last_pos
    assert again.duplicates == reference.last_pos
    assert asyncio.run(_stream_messages(prefix)) == reference.heads

    # Past the duplicate window (here: no message id), the messages reach the consumer again,
    # which counts them as duplicates by their seq and changes nothing.
    rows = OutboxReader(ledger).raw_after(0, 10_000)

    async def republish() -> None:
        nc = await connect_nats(NATS_URL, name="fundpool-test")
        js = nc.jetstream()
        for row in rows:
            await js.publish_async(event_subject(row[1], row[4], prefix), wire_message(row))
        await js.publish_async_completed()
        await nc.close()

    asyncio.run(republish())

    async def consume_again() -> ConsumeReport:
        consumer = NatsConsumer(url, NATS_URL, applier=Projector, prefix=prefix, pools=POOLS)
        # Until every republished message has been taken (not for an idle while).
        seen = consumer.report
        every_one = When(lambda: seen.duplicates + seen.applied >= len(rows))
        return await consumer.run(stop=every_one, stop_after_s=WAIT_S)

    consumed = asyncio.run(consume_again())
    assert consumed.duplicates == len(rows), f"not all taken within {WAIT_S:g} s"
    assert consumed.applied == 0
    assert_same_projection(url, reference)
    store = ProjectionStore(url)
    assert sum(store.cursor(pool).duplicates for pool in POOLS) == len(rows)
    store.close()


def test_out_of_order_duplicate_and_unreadable_messages(
    reference: Reference, prefix: str, tmp_path: Path
) -> None:
    """Messages published shuffled, some twice, one withheld until later, two unreadable:
    those after the gap are set aside (50 at most) or given back (nak) to come again, and
    applied when their turn comes; the unreadable ones are dropped (term)."""
    store = SqliteStore(reference.path)
    rows = [row for row in OutboxReader(store).raw_after(0, 10_000) if row[1] == "main"]
    store.close()
    rows = rows[:600]
    withheld, rest = rows[4], rows[:4] + rows[5:]
    shuffled = rest + random.Random(3).sample(rest, 60)
    random.Random(4).shuffle(shuffled)

    expected = Projector(ProjectionStore("sqlite:///:memory:"))
    expected.apply([item_from_row(row, OutboxReader.decode) for row in rows])

    async def publish(batch: list[Any], garbage: bool = False) -> None:
        nc = await connect_nats(NATS_URL, name="fundpool-test")
        js = nc.jetstream()
        await ensure_stream(js, "main", prefix)
        for row in batch:  # no message id: duplicates must reach the consumer
            await js.publish(event_subject("main", row[4], prefix), wire_message(row))
        if garbage:
            await js.publish(f"{prefix}.main.junk", b"\xff not an event")
            await js.publish(event_subject("main", "payment.transitioned", prefix),
                             json.dumps({"pool": "other", "seq": 1}).encode())
        await nc.close()

    asyncio.run(publish(shuffled, garbage=True))
    url = f"sqlite:///{tmp_path / 'projections.sqlite3'}"

    async def consume() -> Any:
        consumer = NatsConsumer(url, NATS_URL, applier=Projector, pools=["main"],
                                prefix=prefix, nak_delay_s=0.2, batch=100, max_parked=50)
        seen = consumer.report
        # Until all 600 are applied and every second copy has been taken: a copy given back
        # (nak) comes again only after `nak_delay_s`, so seq 600 can be reached before it.
        every_one = When(lambda: seen.applied >= 600 and seen.duplicates >= 60
                         and seen.terminated >= 2)
        first = asyncio.ensure_future(consumer.run(stop=every_one, stop_after_s=WAIT_S))

        def stuck_before_the_gap() -> bool:
            return consumer.store.cursor("main").seq == 4 and seen.parked > 0 \
                and seen.redelivered > 0

        await eventually(stuck_before_the_gap, lambda: (
            f"seq 1-4 applied, what follows the gap set aside and given back: at seq "
            f"{consumer.store.cursor('main').seq}, parked {seen.parked}, redelivered "
            f"{seen.redelivered}"))
        await publish([withheld])
        return await first

    report = asyncio.run(consume())
    assert report.applied == 600, f"not all applied within {WAIT_S:g} s"
    assert report.parked > 0  # set aside after the gap, applied once it closed
    assert report.redelivered > 0  # beyond 50 set aside: given back, applied later
    assert report.duplicates >= 60
    assert report.terminated == 2  # unreadable, and an event of another pool
    stored = ProjectionStore(url)
    assert stored.cursor("main").seq == 600
    assert stored.cells("main") == expected.projection("main").cells
    assert dict(stored.series("main")) == expected.projection("main").series
    stored.close()


# --- acknowledgements: one per contiguous run ------------------------------------------------


async def _ack_counter(prefix: str, durable: str) -> tuple[Any, dict[str, int]]:
    """A connection that counts the acknowledgements sent to each pool's durable (a core
    subscription to the durable's ack subjects sees every one)."""
    nc = await connect_nats(NATS_URL, name="fundpool-test-acks")
    counts = {pool: 0 for pool in POOLS}

    def counter(pool: str) -> Callable[[Any], Awaitable[None]]:
        async def count(_msg: Any) -> None:
            counts[pool] += 1
        return count

    for pool in POOLS:
        await nc.subscribe(f"$JS.ACK.{stream_name(pool, prefix)}.{durable}.>", cb=counter(pool))
    await nc.flush()
    return nc, counts


async def _durable_state(prefix: str, durable: str, pool: str) -> tuple[int, int, int, str]:
    """(ack floor's stream seq, unacknowledged, not yet delivered, ack policy) of a durable."""
    nc = await connect_nats(NATS_URL, name="fundpool-test")
    try:
        info = await nc.jetstream().consumer_info(stream_name(pool, prefix), durable)
    finally:
        await nc.close()
    floor = info.ack_floor.stream_seq if info.ack_floor else 0
    return floor, info.num_ack_pending or 0, info.num_pending or 0, \
        str(info.config.ack_policy)


def test_each_commit_sends_one_acknowledgement_per_pool(
    reference: Reference, ledger: SqliteStore, prefix: str, tmp_path: Path
) -> None:
    run_relay(ledger, NATS_URL, once=True, prefix=prefix)
    url = f"sqlite:///{tmp_path / 'projections.sqlite3'}"
    durable = durable_name(url)

    async def scenario() -> tuple[ConsumeReport, dict[str, int]]:
        nc, acks = await _ack_counter(prefix, durable)
        try:
            consumer = NatsConsumer(url, NATS_URL, applier=Projector, prefix=prefix,
                                    pools=POOLS)
            report = await consumer.run(until_seq=reference.heads, stop_after_s=WAIT_S)
            await eventually(lambda: all(acks.values()), lambda: f"acks to arrive: {acks}")
            return report, acks
        finally:
            await nc.close()

    report, acks = asyncio.run(scenario())
    assert report.applied == reference.last_pos, f"not all applied within {WAIT_S:g} s"
    # One per pool and commit at most, against one per event before.
    assert all(1 <= acks[pool] <= report.commits for pool in POOLS), (acks, report.commits)
    assert sum(acks.values()) < reference.last_pos / 10
    for pool, head in reference.heads.items():  # and every message is acknowledged
        assert asyncio.run(_durable_state(prefix, durable, pool)) == (head, 0, 0, "all")
    assert_same_projection(url, reference)


def test_a_durable_made_with_explicit_acks_keeps_them(
    reference: Reference, ledger: SqliteStore, prefix: str, tmp_path: Path
) -> None:
    """A durable made before runs were acknowledged is not altered: each message is
    acknowledged on its own, as it was made for."""
    from nats.js.api import AckPolicy, ConsumerConfig

    run_relay(ledger, NATS_URL, once=True, prefix=prefix)
    url = f"sqlite:///{tmp_path / 'projections.sqlite3'}"
    durable = durable_name(url)

    async def scenario() -> tuple[ConsumeReport, dict[str, int]]:
        nc, acks = await _ack_counter(prefix, durable)
        try:
            for pool in POOLS:
                await nc.jetstream().add_consumer(stream_name(pool, prefix), ConsumerConfig(
                    durable_name=durable, ack_policy=AckPolicy.EXPLICIT, ack_wait=5.0))
            consumer = NatsConsumer(url, NATS_URL, applier=Projector, prefix=prefix,
                                    pools=POOLS)
            report = await consumer.run(until_seq=reference.heads, stop_after_s=WAIT_S)
            await eventually(lambda: acks == reference.heads,
                             lambda: f"an ack per message ({reference.heads}): {acks}")
            return report, acks
        finally:
            await nc.close()

    report, _acks = asyncio.run(scenario())
    assert report.applied == reference.last_pos, f"not all applied within {WAIT_S:g} s"
    for pool, head in reference.heads.items():
        assert asyncio.run(_durable_state(prefix, durable, pool)) == (head, 0, 0, "explicit")
    assert_same_projection(url, reference)


def test_messages_deleted_from_the_stream_do_not_stop_the_acknowledgements(
    reference: Reference, prefix: str, tmp_path: Path
) -> None:
    """Messages that no longer exist (deleted, or expired at the stream's head) never come:
    the consumer finds them gone and acknowledges the run across them. Nothing that exists
    is acknowledged before it is done."""
    store = SqliteStore(reference.path)
    rows = [row for row in OutboxReader(store).raw_after(0, 10_000) if row[1] == "main"][:300]
    store.close()
    junk_at = {0, 1, 50, 51, 52, 200}  # before these rows, a message that is then deleted

    async def publish() -> list[int]:
        nc = await connect_nats(NATS_URL, name="fundpool-test")
        js = nc.jetstream()
        stream = await ensure_stream(js, "main", prefix)
        deleted = []
        for index, row in enumerate(rows):
            if index in junk_at:
                ack = await js.publish(f"{prefix}.main.junk", b"deleted before it is read")
                deleted.append(ack.seq)
            await js.publish(event_subject("main", row[4], prefix), wire_message(row))
        for seq in deleted:
            await js.delete_msg(stream, seq)
        await nc.close()
        return deleted

    deleted = asyncio.run(publish())
    last = len(rows) + len(deleted)
    url = f"sqlite:///{tmp_path / 'projections.sqlite3'}"
    durable = durable_name(url)

    async def consume() -> ConsumeReport:
        consumer = NatsConsumer(url, NATS_URL, applier=Projector, pools=["main"],
                                prefix=prefix, lease_poll_s=0.2)
        settled: list[bool] = []
        running = asyncio.ensure_future(consumer.run(stop=When(lambda: bool(settled)),
                                                     stop_after_s=WAIT_S))

        async def all_acknowledged() -> bool:
            with contextlib.suppress(NotFoundError):  # the durable is not made yet
                return (await _durable_state(prefix, durable, "main"))[:3] == (last, 0, 0)
            return False

        await eventually(all_acknowledged, lambda: (
            f"every message acknowledged, across the deleted {deleted}: at seq "
            f"{consumer.store.cursor('main').seq}"))
        settled.append(True)
        return await running

    report = asyncio.run(consume())
    assert report.applied == len(rows)
    assert report.terminated == 0  # the deleted ones were never read
    stored = ProjectionStore(url)
    assert stored.cursor("main").seq == len(rows)
    stored.close()


@pytest.mark.postgres
def test_consumers_share_pools_by_lease_and_take_over(
    prefix: str, pg_projections: str
) -> None:
    async def scenario() -> None:
        first = NatsConsumer(pg_projections, NATS_URL, applier=Projector, pools=POOLS,
                             prefix=prefix)
        second = NatsConsumer(pg_projections, NATS_URL, applier=Projector, pools=POOLS,
                              prefix=prefix)
        await first.start()
        await second.start()
        try:
            await first.rebalance()
            assert first.leased == list(POOLS)  # alone: every pool
            await second.rebalance()  # two members now: one pool each, but both are taken
            assert second.leased == []
            await first.rebalance()  # gives one back …
            assert len(first.leased) == 1
            await second.rebalance()  # … which the other takes
            assert sorted(first.leased + second.leased) == list(POOLS)
            # The first dies: its connection closes, and its locks go with it once PostgreSQL
            # has ended its session, which takes a moment after the client hangs up.
            first.store.close()

            async def took_over() -> bool:
                await second.rebalance()
                return second.leased == list(POOLS)

            await eventually(took_over, lambda: (
                f"the second consumer to take every pool once the first's connection closed "
                f"(its advisory locks still held?): it holds {second.leased}"))
        finally:
            await second.close()
            await first.close()

    asyncio.run(scenario())


# --- real consumer processes ----------------------------------------------------------------


def consume_command(projections: str, prefix: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "fundpool.cli.main", "events", "consume", "--nats", NATS_URL,
            "--projections", projections, "--prefix", prefix, "--pool", "main",
            "--pool", "_ledger", "--json", *extra]


class ConsumerProcess:
    """`fundpool events consume` in a process of its own, its output in files (a pipe left
    unread could fill up and stall it)."""

    def __init__(self, command: list[str], directory: Path, name: str) -> None:
        self.out = directory / f"{name}.out"
        self.log = directory / f"{name}.log"
        with open(self.out, "wb") as out, open(self.log, "wb") as log:
            self.process = subprocess.Popen(command, stdout=out, stderr=log)

    def running(self) -> bool:
        """True while it runs; a failure, with its log, once it has exited."""
        if self.process.poll() is None:
            return True
        pytest.fail(f"the consumer exited ({self.process.returncode}): {self.log.read_text()}")

    def has_leased(self) -> bool:
        return self.running() and "nats_pool_leased" in self.log.read_text()

    def stop(self) -> dict[str, Any]:
        """Stop it as Ctrl-C would (SIGTERM ends the run between two batches) and read its
        report."""
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(WAIT_S)
        assert self.process.returncode == 0, self.log.read_text()
        report: dict[str, Any] = json.loads(self.out.read_text())
        return report

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(WAIT_S)


def projected(store: ProjectionStore, heads: dict[str, int]) -> bool:
    return all(store.cursor(pool).seq >= seq for pool, seq in heads.items())


def seqs(store: ProjectionStore) -> dict[str, int]:
    return {pool: store.cursor(pool).seq for pool in POOLS}


@pytest.mark.slow
@pytest.mark.postgres
def test_two_consumer_processes_into_one_postgres_schema(
    reference: Reference, ledger: SqliteStore, prefix: str, pg_projections: str,
    tmp_path: Path
) -> None:
    run_relay(ledger, NATS_URL, once=True, prefix=prefix)
    command = consume_command(pg_projections, prefix)
    consumers = [ConsumerProcess(command, tmp_path, f"consumer-{n}") for n in (1, 2)]
    try:
        # Both racing to create the schema is part of the test: open it the same way.
        store = open_projections(pg_projections)
        try:
            # Until every event is projected and each process has taken a pool (the second to
            # start is given one of the first's within a poll or two), not for an idle while.
            wait_for(lambda: all(c.has_leased() for c in consumers)
                     and projected(store, reference.heads),
                     lambda: f"both consumers to lease a pool and the projection to reach "
                             f"{reference.heads}: at {seqs(store)}")
        finally:
            store.close()
        reports = [consumer.stop() for consumer in consumers]
    finally:
        for consumer in consumers:
            consumer.kill()
    # Between them, each event applied once; any overlap is a duplicate, never a second apply.
    assert sum(r["applied"] for r in reports) == reference.last_pos
    assert reports[0]["durable"] == reports[1]["durable"]
    assert_same_projection(pg_projections, reference)


@pytest.mark.slow
def test_a_consumer_killed_mid_stream_resumes_without_loss_or_double_count(
    reference: Reference, ledger: SqliteStore, prefix: str, tmp_path: Path
) -> None:
    run_relay(ledger, NATS_URL, once=True, prefix=prefix)
    url = f"sqlite:///{tmp_path / 'projections.sqlite3'}"
    command = consume_command(url, prefix, "--ack-wait", "2", "--batch", "20")
    victim = ConsumerProcess(command, tmp_path, "victim")
    store = ProjectionStore(url)
    try:
        wait_for(lambda: victim.running() and store.cursor("main").seq >= 1_000,
                 lambda: f"the victim to apply 1,000 events: at {store.cursor('main').seq}")
        victim.process.send_signal(signal.SIGKILL)
        victim.process.wait(WAIT_S)
        at_kill = {pool: store.cursor(pool).seq for pool in POOLS}  # all it ever committed
        assert 1_000 <= at_kill["main"] < reference.heads["main"], "not killed mid-stream"

        restarted = ConsumerProcess(command, tmp_path, "restarted")
        try:
            wait_for(lambda: restarted.running() and projected(store, reference.heads),
                     lambda: f"the restarted consumer to reach {reference.heads}: at "
                             f"{seqs(store)}")
            report = restarted.stop()
        finally:
            restarted.kill()
    finally:
        store.close()
        victim.kill()
    # What the first process committed is not applied again, and nothing is lost.
    assert report["applied"] == sum(reference.heads[p] - at_kill[p] for p in POOLS)
    assert_same_projection(url, reference)
    after = ProjectionStore(url)
    kind = ("events", "payment.transitioned")
    assert after.cells("main")[kind] == reference.cells["main"][kind]
    after.close()


RELAY_SLOW_TO_SAVE = """
import sys, time
from fundpool.bus import relay
from fundpool.stores.sqlite import SqliteStore

record = relay.NatsRelay._record


def slow(self, pos):  # the cursor trails what is published: a kill loses part of it
    time.sleep(0.2)
    record(self, pos)


relay.NatsRelay._record = slow
relay.run_relay(SqliteStore(sys.argv[1]), sys.argv[2], prefix=sys.argv[3], once=True,
                batch=100)
"""


@pytest.mark.slow
def test_a_relay_killed_between_publishing_and_saving_its_cursor_loses_and_doubles_nothing(
    reference: Reference, ledger: SqliteStore, prefix: str, tmp_path: Path
) -> None:
    """Killed with SIGKILL after publishing events its cursor does not yet cover, the relay
    publishes them again when restarted; the server drops them (same message ids), and the
    projection gets every event exactly once."""
    process = subprocess.Popen(
        [sys.executable, "-c", RELAY_SLOW_TO_SAVE, str(ledger.path), NATS_URL, prefix],
        stderr=subprocess.PIPE)
    try:
        def stored() -> int:
            with contextlib.suppress(Exception):  # the streams may not exist yet
                return sum(asyncio.run(_stream_messages(prefix)).values())
            return 0

        wait_for(lambda: process.poll() is None and stored() >= 1_000,
                 lambda: f"the relay to publish 1,000 events (exited: {process.poll()})")
        process.send_signal(signal.SIGKILL)
        process.wait(WAIT_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(WAIT_S)
    cursor = OutboxReader(ledger).cursor("nats")
    assert cursor < stored() < reference.last_pos, "not killed between publish and save"

    again = run_relay(ledger, NATS_URL, once=True, prefix=prefix)
    assert again.published == reference.last_pos - cursor
    assert again.duplicates > 0  # what it had published and not recorded, dropped
    assert asyncio.run(_stream_messages(prefix)) == reference.heads

    url = f"sqlite:///{tmp_path / 'projections.sqlite3'}"
    consumed = run_consumer(url, NATS_URL, applier=Projector, prefix=prefix, pools=POOLS,
                            until_seq=reference.heads, stop_after_s=WAIT_S)
    assert (consumed.applied, consumed.duplicates) == (reference.last_pos, 0)
    assert_same_projection(url, reference)


def test_cli_relay_consume_and_status(
    reference: Reference, ledger: SqliteStore, prefix: str, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from fundpool.cli.main import app

    runner = CliRunner()
    db = ["--db-url", f"sqlite:///{ledger.path}"]
    nats_options = ["--nats", NATS_URL, "--prefix", prefix]
    relayed = runner.invoke(app, ["events", "relay", "--once", "--json", *nats_options, *db])
    assert relayed.exit_code == 0, relayed.output
    assert json.loads(relayed.stdout)["lag"] == 0

    projections = f"sqlite:///{tmp_path / 'projections.sqlite3'}"
    status_command = ["events", "status", "--json", "--projections", projections,
                      *nats_options, *db]
    before = json.loads(runner.invoke(app, status_command).stdout)
    assert before["relay"] == {"name": "nats", "pos": reference.last_pos,
                               "outbox_last_pos": reference.last_pos, "lag": 0}
    assert {p["pool"]: p["lag"] for p in before["pools"]} == reference.heads
    assert {p["pool"]: p["nats"]["messages"] for p in before["pools"]} == reference.heads

    # `--until-idle` ends a run after a quiet second, which a busy machine may also give
    # before the end: run it again, each run resuming where the last committed, until the
    # status shows no lag (or the bound is reached).
    applied = 0
    deadline = time.monotonic() + WAIT_S
    while True:
        consumed = runner.invoke(app, ["events", "consume", "--json", "--until-idle", "1",
                                       "--projections", projections, *nats_options])
        assert consumed.exit_code == 0, consumed.output
        applied += json.loads(consumed.stdout)["applied"]
        after = json.loads(runner.invoke(app, status_command).stdout)
        lags = {p["pool"]: p["lag"] for p in after["pools"]}
        if lags == {pool: 0 for pool in POOLS}:
            break
        if time.monotonic() >= deadline:
            pytest.fail(f"waited {WAIT_S:g} s for events consume to catch up: lag {lags}")
    assert applied == reference.last_pos
    assert all(p["nats"]["pending"] == 0 for p in after["pools"])
    assert_same_projection(projections, reference)


def test_cli_says_when_nats_is_unreachable(ledger: SqliteStore) -> None:
    from typer.testing import CliRunner

    from fundpool.cli.main import app

    result = CliRunner().invoke(app, ["events", "relay", "--once", "--json", "--nats",
                                      "nats://127.0.0.1:9", "--db-url",
                                      f"sqlite:///{ledger.path}"])
    assert result.exit_code == 2
    assert json.loads(result.stdout)["code"] == "nats_unavailable"
