"""Projections: the pure fold, the projector that applies each event once, the stores that
keep them, the in-process feed, and the figures read from them (src/fundpool/monitoring/).

- after a simulated run (SQLite and PostgreSQL) the projection's pool view is the ledger's
  pool view exactly, and its payments by state are the payment store's counts;
- whatever the delivery (random batches, duplicates, local reordering, held items offered
  again, restarts, commits that fail half way) the projector ends with the cells and series of
  `fold(pool, events)`, in memory and in its store;
- malformed, unknown-type, unknown-version and unreadable messages each take their own path;
- the series roll up exactly (a minute is the sum, or the last value, of its seconds) and are
  pruned by event time; the latency quantile interpolates inside its bucket.
"""

from __future__ import annotations

import dataclasses
import json
import random
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fundpool import compose
from fundpool.core.clock import ManualClock, Uuid7Ids
from fundpool.events.model import (
    AlertChanged,
    Event,
    InvalidEvent,
    LedgerEntryCommitted,
    LegAfter,
    PaymentTransitioned,
    UnknownEventType,
    UnknownEventVersion,
    encode,
)
from fundpool.ledger.ports import LedgerStore
from fundpool.ledger.service import Ledger
from fundpool.monitoring.feed import OutboxFeed
from fundpool.monitoring.figures import latency_figures, quantile_us
from fundpool.monitoring.messages import Item, Skipped, read_message
from fundpool.monitoring.projection import (
    GAUGES,
    LATENCY_BOUNDS_US,
    RESOLUTIONS,
    RETENTION_US,
    Projection,
    fold,
    latency_bucket,
)
from fundpool.monitoring.projector import FEED_CURSOR, Projector
from fundpool.pool.config import load_config
from fundpool.pool.view import pool_view
from fundpool.stores import payment_store
from fundpool.stores.projection_sql import ProjectionStore
from fundpool.stores.sqlite import SqliteStore
from tests.conftest import PG_URL, new_pg_schema, require_postgres

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "pool.toml"
CONFIG = load_config(EXAMPLE)
POOL = CONFIG.pool("main")
RATES = CONFIG.rates_for(POOL)
T0 = 1_767_225_600_000_000  # 2026-01-01T00:00Z, on every bucket boundary
SECOND, MINUTE, HOUR = RESOLUTIONS["s"], RESOLUTIONS["m"], RESOLUTIONS["h"]


def memory_store() -> ProjectionStore:
    return ProjectionStore("sqlite:///:memory:")


def simulate(store: LedgerStore, *, rate: int, seconds: int, seed: int = 3) -> ManualClock:
    clock = ManualClock(T0)
    ledger = Ledger(store, clock, Uuid7Ids.seeded(seed))
    simulation = compose.simulation(ledger, CONFIG, POOL, seed=seed, clock=clock)
    simulation.open_pool()
    simulation.run(rate_per_s=rate, duration_s=seconds,
                   advance=lambda s: clock.advance(seconds=s))
    return clock


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SqliteStore, ManualClock]]:
    """One simulated run on SQLite, shared (read only) by the tests that fold its events."""
    store = SqliteStore(tmp_path_factory.mktemp("run") / "ledger.sqlite3")
    store.initialise()
    clock = simulate(store, rate=100, seconds=10)
    yield store, clock
    store.close()


@pytest.fixture(scope="module")
def run_events(run: tuple[SqliteStore, ManualClock]) -> list[Event]:
    return list(compose.outbox(run[0]).pool_events(POOL.id))


def same(projection: Projection, expected: Projection) -> None:
    assert projection.applied_seq == expected.applied_seq
    assert projection.last_at_us == expected.last_at_us
    assert projection.cells == expected.cells
    assert projection.series == expected.series


def stored_same(store: ProjectionStore, expected: Projection) -> None:
    assert store.cells(expected.pool) == expected.cells
    assert dict(store.series(expected.pool)) == expected.series
    cursor = store.cursor(expected.pool)
    assert (cursor.seq, cursor.at_us) == (expected.applied_seq, expected.last_at_us)
    same(Projector(store).projection(expected.pool), expected)  # as a restart loads it


# --- against the ledger, after a simulated run ----------------------------------------------------


def test_after_a_run_the_projection_is_the_ledgers_pool_view(
    store: LedgerStore
) -> None:
    clock = simulate(store, rate=80, seconds=6)
    monitor = compose.monitor(store, CONFIG, clock)
    report = monitor.step()
    reader = compose.outbox(store)
    assert report.applied == reader.last_pos()
    assert (report.duplicates, report.rejected, report.ignored, report.held) == (0, 0, 0, [])
    assert monitor.lag(POOL.id) == 0
    figures = monitor.figures(POOL.id)
    journal = pool_view(store, CONFIG, POOL, RATES)
    assert journal.as_of_seq == store.head().seq
    assert figures.view == dataclasses.replace(journal, as_of_seq=0)
    assert figures.view.reporting_total.total > 0

    states = payment_store(store).state_counts(POOL.id)
    assert {s: n for s, n in figures.payments_by_state.items() if n} == {
        state.value: n for state, n in states.items() if n}
    assert sum(states.values()) > 250
    in_flight = payment_truth(store)[1]
    assert {a: v for a, v in figures.in_flight_amount.items() if v} == in_flight
    assert figures.in_flight_count == sum(
        n for state, n in states.items() if state.value in ("approved", "submitted", "cleared"))
    assert all(n >= 0 for n in figures.payments_by_state.values())

    # the same figures from a fold of the event log, and from a fresh reader of the store
    expected = fold(POOL.id, reader.pool_events(POOL.id))
    same(monitor.snapshot(POOL.id), expected)
    stored_same(monitor.projections, expected)
    # a second step has nothing to do
    again = monitor.step()
    assert (again.applied, again.duplicates) == (0, 0)
    monitor.projections.close()


def test_the_system_stream_is_projected_too(run: tuple[SqliteStore, ManualClock]) -> None:
    store, clock = run
    monitor = compose.monitor(store, CONFIG, clock, projections=memory_store())
    monitor.step()
    system = compose.outbox(store).head("_ledger")
    assert system > 0
    assert monitor.projector.cursor("_ledger").seq == system
    assert monitor.snapshot("_ledger").cells[("events", LedgerEntryCommitted.TYPE)] == system


def payment_truth(store: LedgerStore) -> tuple[dict[tuple[str, str], int], dict[str, int]]:
    """From the payment store: payments per (channel, state), and the amount in flight
    (approved, submitted, cleared) per asset."""
    from fundpool.payments.ports import PaymentFilter

    by_channel_state: dict[tuple[str, str], int] = {}
    in_flight: dict[str, int] = {}
    payments = payment_store(store)
    after = None
    while page := payments.payments(PaymentFilter(POOL.id, None, None, None, None),
                                    limit=1_000, after_id=after):
        for payment in page:
            key = (payment.channel or "-", payment.state.value)
            by_channel_state[key] = by_channel_state.get(key, 0) + 1
            if payment.state.value in ("approved", "submitted", "cleared"):
                in_flight[payment.asset] = in_flight.get(payment.asset, 0) + payment.amount_minor
        after = page[-1].id
    return by_channel_state, in_flight


# --- delivery in any order ----------------------------------------------------------------------


class Injected(Exception):
    """A store failure made by the test."""


def fail_commit_once(store: ProjectionStore, after_writes: int) -> None:
    """The next commit fails inside its transaction, after `after_writes` pools' writes."""
    real = ProjectionStore.commit

    def failing(writes: Iterable[Any]) -> None:
        del store.commit  # once

        def some() -> Iterator[Any]:
            for index, write in enumerate(writes):
                if index == after_writes:
                    raise Injected
                yield write
            raise Injected

        real(store, some())

    store.commit = failing  # type: ignore[method-assign]


def locally_shuffled(items: Sequence[Event], rng: random.Random) -> list[Event]:
    out = list(items)
    for _ in range(2):
        for i in range(len(out) - 1):
            if rng.random() < 0.3:
                out[i], out[i + 1] = out[i + 1], out[i]
    return out


def deliver(
    store: ProjectionStore, events: Sequence[Event], rng: random.Random, *,
    restarts: bool = False, failures: bool = False, batch_max: int = 6,
) -> Projector:
    """Offer every event at least once in random batches, with duplicates, local reordering
    and every held item offered again, until nothing is held; return the last projector."""
    projector = Projector(store)
    queue = deque(locally_shuffled(events, rng))
    held: list[Item] = []
    offered: list[Event] = []
    applied = duplicates = 0
    rounds = 0
    while queue or held:
        rounds += 1
        assert rounds < 20 * len(events) + 100, "delivery makes no progress"
        take = min(len(queue), rng.randint(1, batch_max))
        batch: list[Item] = [queue.popleft() for _ in range(take)]
        batch += held
        if offered and rng.random() < 0.5:
            batch += rng.choices(offered, k=rng.randint(1, 3))  # redeliveries
        rng.shuffle(batch)
        if failures and batch and rng.random() < 0.15:
            fail_commit_once(store, rng.randint(0, 2))
        try:
            report = projector.apply(batch)
        except Injected:
            held = batch  # nothing of it was committed: all of it comes again
        else:
            assert report.applied + report.duplicates + len(report.held) == len(batch)
            applied += report.applied
            duplicates += report.duplicates
            held = list(report.held)
            offered += [item for item in batch if isinstance(item, Event)]
        if restarts and rng.random() < 0.1:
            projector = Projector(store)
    assert applied == len(events)
    pools = {event.pool for event in events}
    assert sum(store.cursor(pool).duplicates for pool in pools) == duplicates
    return projector


# Synthetic event streams: ledger entries on two pools' accounts (and on world and foreign
# accounts the projection must ignore), payment transitions, alerts; times that jump by up to
# days, so that retention prunes.
ASSETS = {"usd": "USD", "eth": "ETH"}
CHANNELS = ("bank-a", "arb")
STATES = ("available", "locked", "in_transit", "pending_settlement", "fees")
PAYMENT_STATES = ("initiated", "screened", "held", "routed", "pending_approval", "approved",
                  "submitted", "cleared", "settled", "rejected", "cancelled", "failed",
                  "returned", "reversed")
ACTIONS = ("create", "screen", "route", "approve", "submit", "clear", "settle", "fail")
DELTAS = st.sampled_from([0, 0, 1, 999, 250_000, SECOND - 1, SECOND, 7 * SECOND,
                          MINUTE - 1, 61 * SECOND, HOUR, 3 * HOUR, 2 * 86_400 * SECOND])
SMALL_DELTAS = st.sampled_from([0, 1, 999, 250_000, SECOND, 7 * SECOND, MINUTE, 61 * SECOND,
                                10 * MINUTE])


def accounts(pool: str) -> list[tuple[str, str]]:
    return [(f"pool:{pool}:{segment}:{channel}:{state}", asset)
            for segment, asset in ASSETS.items() for channel in CHANNELS for state in STATES]


@st.composite
def legs(draw: st.DrawFn, pool: str) -> LegAfter:
    other = "q" if pool == "p" else "p"
    choices = [*accounts(pool), ("world:bank-a", "USD"), ("merchant:m1:usd:payable", "USD"),
               *accounts(other)[:3]]
    address, asset = draw(st.sampled_from(choices))
    if address.startswith("world:"):
        return LegAfter(address, asset, -draw(st.integers(0, 10**30)), 0, 0)
    posted = draw(st.sampled_from([0, 1, 100, 10**6]) | st.integers(0, 2**128 - 1))
    # a pool account never has more pending out than it holds
    pending_out = draw(st.sampled_from([0, posted]) | st.integers(0, posted))
    pending_in = draw(st.sampled_from([0, 5]) | st.integers(0, 2**64))
    return LegAfter(address, asset, posted, pending_out, pending_in)


def payloads(pool: str) -> st.SearchStrategy[Any]:
    entry = st.builds(LedgerEntryCommitted, st.just("e"), st.integers(1, 10**6),
                      st.sampled_from(["transfer", "pending_created", "pending_posted"]),
                      st.lists(legs(pool), min_size=0, max_size=4).map(tuple))
    payment = st.builds(
        PaymentTransitioned,
        payment_id=st.sampled_from(["p1", "p2", "p3"]),
        kind=st.sampled_from(["deposit", "payout", "internal"]),
        asset=st.sampled_from(["USD", "ETH"]),
        amount_minor=st.integers(1, 2**100), fee_minor=st.integers(0, 1000),
        channel=st.sampled_from([None, "bank-a", "arb"]),
        destination_channel=st.none(), action=st.sampled_from(ACTIONS),
        from_state=st.none() | st.sampled_from(PAYMENT_STATES),
        to_state=st.sampled_from(PAYMENT_STATES), payment_version=st.integers(1, 9),
        since_us=st.none() | st.integers(0, 10 * 86_400 * SECOND),  # made relative below
        created_at_us=st.integers(0, 10 * 86_400 * SECOND), reason=st.none(),
    )
    alert = st.builds(AlertChanged, st.just("a"), st.just("r"), st.just("warning"),
                      st.just("pool"), st.just("s"))
    return st.one_of(entry, entry, payment, alert)


def build_stream(pool: str, drawn: Sequence[tuple[int, Any]]) -> list[Event]:
    events: list[Event] = []
    at = T0 + 123_456
    for seq, (delta, payload) in enumerate(drawn, 1):
        at += delta
        if isinstance(payload, PaymentTransitioned):
            payload = dataclasses.replace(
                payload,
                since_us=None if payload.since_us is None else at - payload.since_us,
                created_at_us=at - payload.created_at_us,
            )
            kind = PaymentTransitioned.TYPE
        elif isinstance(payload, AlertChanged):
            kind = "alert.fired"
        else:
            payload = dataclasses.replace(payload, entry_id=f"{pool}-{seq}")
            kind = LedgerEntryCommitted.TYPE
        events.append(Event(f"{pool}-{seq}", kind, pool, at, payload, seq))
    return events


def streams(deltas: st.SearchStrategy[int], max_size: int = 25
            ) -> st.SearchStrategy[dict[str, list[Event]]]:
    return st.fixed_dictionaries({
        pool: st.lists(st.tuples(deltas, payloads(pool)), max_size=max_size).map(
            lambda drawn, pool=pool: build_stream(pool, drawn))
        for pool in ("p", "q")
    })


def interleave(by_pool: dict[str, list[Event]], rng: random.Random) -> list[Event]:
    """The pools' streams merged in a random order, each keeping its own."""
    cursors = {pool: 0 for pool in by_pool}
    out: list[Event] = []
    while True:
        left = [pool for pool, at in cursors.items() if at < len(by_pool[pool])]
        if not left:
            return out
        pool = rng.choice(left)
        out.append(by_pool[pool][cursors[pool]])
        cursors[pool] += 1


PROPERTY = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@PROPERTY
@given(streams(DELTAS), st.integers(0, 2**32), st.booleans(), st.booleans())
def test_any_delivery_ends_as_the_fold(
    by_pool: dict[str, list[Event]], seed: int, restarts: bool, failures: bool
) -> None:
    rng = random.Random(seed)
    store = memory_store()
    projector = deliver(store, interleave(by_pool, rng), rng, restarts=restarts,
                        failures=failures)
    for pool, events in by_pool.items():
        expected = fold(pool, events)
        assert expected.applied_seq == len(events)
        same(projector.projection(pool), expected)
        stored_same(store, expected)
        check_rollup(expected.series, expected.prune_bounds())
        check_retention(expected)


def test_the_runs_events_in_random_batches_end_as_the_fold(run_events: list[Event]) -> None:
    expected = fold(POOL.id, run_events)
    for seed in range(2):
        store = memory_store()
        projector = deliver(store, run_events, random.Random(seed), restarts=True,
                            failures=True, batch_max=200)
        same(projector.projection(POOL.id), expected)
        stored_same(store, expected)


def test_a_restarted_projector_resumes_where_the_store_stands(run_events: list[Event]) -> None:
    expected = fold(POOL.id, run_events)
    store = memory_store()
    half = len(run_events) // 2
    Projector(store).apply(run_events[:half])
    assert store.cursor(POOL.id).seq == half
    restarted = Projector(store)
    report = restarted.apply(run_events[half - 50:])  # the last 50 again: a redelivery
    assert (report.applied, report.duplicates) == (len(run_events) - half, 50)
    same(restarted.projection(POOL.id), expected)
    stored_same(store, expected)
    assert store.cursor(POOL.id).duplicates == 50


def test_a_failed_commit_leaves_memory_as_the_store(run_events: list[Event]) -> None:
    expected = fold(POOL.id, run_events)
    store = memory_store()
    projector = Projector(store)
    projector.apply(run_events[:100])
    for after_writes in (0, 1):
        fail_commit_once(store, after_writes)
        with pytest.raises(Injected):
            projector.apply(run_events[100:200])
        # nothing of the failed batch is in the store, nor in what the projector holds
        assert store.cursor(POOL.id).seq == 100
        assert projector.cursor(POOL.id).seq == 100
        same(projector.projection(POOL.id), fold(POOL.id, run_events[:100]))
    report = projector.apply(run_events[100:])
    assert (report.applied, report.duplicates) == (len(run_events) - 100, 0)
    same(projector.projection(POOL.id), expected)
    stored_same(store, expected)


def test_a_store_failure_before_the_commit_leaves_memory_as_the_store(
    run_events: list[Event]
) -> None:
    store = memory_store()
    projector = Projector(store)
    bad = Skipped(POOL.id, 1, "bad-1", InvalidEvent("broken on purpose"))
    items: list[Item] = [bad, *run_events[1:20]]
    real = store.cursor
    failures = iter([True])

    def flaky(pool: str) -> Any:
        if pool == FEED_CURSOR and next(failures, False):
            raise Injected
        return real(pool)

    store.cursor = flaky  # type: ignore[method-assign]
    with pytest.raises(Injected):
        projector.apply(items, pos=20)
    report = projector.apply(items, pos=20)  # the feed offers the same rows again
    assert [r.seq for r in store.rejects(POOL.id)] == [1]
    assert (report.rejected, report.applied, report.duplicates) == (1, 19, 0)
    assert store.cursor(POOL.id).duplicates == 0


def test_restart_after_a_channel_seen_only_with_a_reservation() -> None:
    available = "pool:p:usd:bank-a:available"
    locked = "pool:p:usd:bank-a:locked"
    events = [
        Event("1", LedgerEntryCommitted.TYPE, "p", T0, LedgerEntryCommitted(
            "1", 1, "transfer", (LegAfter(available, "USD", 0, 5, 0),)), 1),
        Event("2", LedgerEntryCommitted.TYPE, "p", T0 + 1, LedgerEntryCommitted(
            "2", 2, "transfer", (LegAfter(available, "USD", 0, 0, 0),
                                 LegAfter(locked, "USD", 7, 0, 0))), 2),
    ]
    store = memory_store()
    Projector(store).apply(events[:1])
    Projector(store).apply(events[1:])
    stored_same(store, fold("p", events))


# --- messages that cannot be applied ------------------------------------------------------------


def entry_event(pool: str, seq: int, at_us: int = T0, posted: int = 100) -> Event:
    return Event(f"{pool}-{seq}", LedgerEntryCommitted.TYPE, pool, at_us, LedgerEntryCommitted(
        f"{pool}-{seq}", seq, "transfer",
        (LegAfter(f"pool:{pool}:usd:bank-a:available", "USD", posted, 0, 0),)), seq)


def wire(event: Event, **changes: Any) -> bytes:
    body = json.loads(encode(event))
    for key, value in changes.items():
        if key.startswith("data_"):
            body["data"][key[5:]] = value
        else:
            body[key] = value
    return json.dumps(body).encode()


def test_a_malformed_message_is_recorded_and_stepped_over() -> None:
    store = memory_store()
    projector = Projector(store)
    good = [entry_event("p", seq, T0 + seq, posted=seq * 10) for seq in (1, 2, 3)]
    report = projector.apply_raw([encode(good[0]), wire(good[1], data_legs="not a list"),
                                  encode(good[2])])
    assert (report.applied, report.rejected, report.unplaced, report.held) == (2, 1, [], [])
    (reject,) = store.rejects("p")
    assert (reject.pool, reject.seq, reject.event_id, reject.code) == (
        "p", 2, "p-2", "invalid_event")
    assert "legs" in reject.detail
    cursor = store.cursor("p")
    assert (cursor.seq, cursor.rejected) == (3, 1)
    # what it stood for is not applied; what came after it is
    expected = fold("p", [good[0], good[2]])
    projection = projector.projection("p")
    assert projection.cells == expected.cells
    assert projection.applied_seq == 3
    # offered again, it is a duplicate, not a second reject
    again = projector.apply_raw([wire(good[1], data_legs="not a list")])
    assert (again.duplicates, again.rejected) == (1, 0)
    assert len(store.rejects("p")) == 1


def test_a_malformed_message_after_a_gap_waits_its_turn() -> None:
    store = memory_store()
    projector = Projector(store)
    broken = wire(entry_event("p", 2), data_entry_seq="two")
    report = projector.apply_raw([broken])
    assert report.rejected == 0
    assert [(item.pool, item.seq) for item in report.held] == [("p", 2)]
    assert isinstance(report.held[0], Skipped)
    report = projector.apply([entry_event("p", 1), *report.held])
    assert (report.applied, report.rejected) == (1, 1)
    assert store.cursor("p").seq == 2


def test_an_unknown_type_is_counted_as_ignored() -> None:
    store = memory_store()
    projector = Projector(store)
    first = entry_event("p", 1)
    newer = wire(entry_event("p", 2), type="ledger.entry_annotated",
                 data_anything={"new": True})
    report = projector.apply_raw([encode(first), newer, encode(entry_event("p", 3))])
    assert (report.applied, report.ignored, report.rejected) == (2, 1, 0)
    cursor = store.cursor("p")
    assert (cursor.seq, cursor.ignored, cursor.rejected) == (3, 1, 0)
    assert store.rejects("p") == []
    assert ("events", "ledger.entry_annotated") not in projector.projection("p").cells
    assert isinstance(read_message(newer), Skipped)
    assert isinstance(read_message(newer).error, UnknownEventType)  # type: ignore[union-attr]


def test_an_unknown_version_blocks_its_pool_and_only_its_pool() -> None:
    store = memory_store()
    projector = Projector(store)
    p = [entry_event("p", seq, posted=seq) for seq in (1, 2, 3, 4)]
    q = [entry_event("q", seq, posted=seq) for seq in (1, 2)]
    messages = [encode(p[0]), wire(p[1], v=2), encode(p[2]), encode(p[3]),
                encode(q[0]), encode(q[1])]
    report = projector.apply_raw(messages)
    assert report.applied == 3  # p1, q1, q2
    assert set(report.blocked) == {"p"}
    assert "unknown_event_version" in report.blocked["p"]
    assert sorted((i.pool, i.seq) for i in report.held) == [("p", 2), ("p", 3), ("p", 4)]
    assert isinstance(next(i for i in report.held if i.seq == 2).error,  # type: ignore[union-attr]
                      UnknownEventVersion)
    assert store.cursor("p").seq == 1
    assert store.cursor("q").seq == 2
    same(projector.projection("p"), fold("p", p[:1]))
    # offered again (NATS redelivers what was not acknowledged): still blocked, still held
    again = projector.apply(report.held)
    assert again.applied == 0
    assert set(again.blocked) == {"p"}
    assert len(again.held) == 3
    assert store.cursor("p").seq == 1
    # and the later events of p, offered alone, wait behind it
    alone = projector.apply(p[2:])
    assert (alone.applied, len(alone.held)) == (0, 2)


@pytest.mark.parametrize("message", [
    b"garbage", b"", b"[]", b"null", b"{\"pool\": \"p\"}",
    b"{\"pool\": \"p\", \"seq\": 0, \"type\": \"x\"}",
    b"{\"pool\": \"p\", \"seq\": true, \"type\": \"x\"}",
    b"{\"pool\": \"\", \"seq\": 3}",
    b"{\"pool\": 5, \"seq\": 3}",
    b"{\"pool\": \"p\", \"seq\": 1.0}",
    b"\xff\xfe",
])
def test_unreadable_garbage_is_unplaced(message: bytes) -> None:
    store = memory_store()
    projector = Projector(store)
    report = projector.apply_raw([message, encode(entry_event("p", 1))])
    assert len(report.unplaced) == 1
    assert isinstance(report.unplaced[0], str)
    assert (report.applied, report.rejected, report.held) == (1, 0, [])
    assert store.rejects("p") == []


def test_a_message_the_store_cannot_hold_does_not_stop_the_batch() -> None:
    store = memory_store()
    projector = Projector(store)
    poison = wire(entry_event("p", 1), pool="p\ud800")
    report = projector.apply_raw([poison, encode(entry_event("q", 1))])
    assert report.applied == 1
    assert store.cursor("q").seq == 1


def test_a_deeply_nested_message_is_unplaced() -> None:
    projector = Projector(memory_store())
    report = projector.apply_raw([b"[" * 100_000, encode(entry_event("p", 1))])
    assert len(report.unplaced) == 1
    assert report.applied == 1


def test_an_amount_int_refuses_is_a_reject() -> None:
    store = memory_store()
    projector = Projector(store)
    body = json.loads(encode(entry_event("p", 1)))
    body["data"]["legs"][0][2] = "--5"
    report = projector.apply_raw([json.dumps(body).encode()])
    assert report.rejected == 1
    assert [r.seq for r in store.rejects("p")] == [1]


# --- the in-process feed ------------------------------------------------------------------------


def small_ledger(tmp_path: Path) -> tuple[SqliteStore, Ledger, ManualClock]:
    from fundpool.core.ledger.model import Account, DefineAsset, OpenAccount, Posting
    from fundpool.core.money import Asset, AssetKind

    store = SqliteStore(tmp_path / "ledger.sqlite3")
    store.initialise()
    clock = ManualClock(T0)
    ledger = Ledger(store, clock, Uuid7Ids.seeded(1))
    ledger.submit([DefineAsset(Asset("USD", 2, AssetKind.FIAT)),
                   OpenAccount(Account("world:bank-a")),
                   OpenAccount(Account("pool:main:usd:bank-a:available", asset="USD"))])
    for amount in (100, 200):
        clock.advance(seconds=1)
        ledger.transfer([Posting("world:bank-a", "pool:main:usd:bank-a:available", "USD",
                                 amount)])
    return store, ledger, clock


def test_the_feed_resumes_from_its_cursor(tmp_path: Path) -> None:
    from fundpool.core.ledger.model import Posting

    store, ledger, clock = small_ledger(tmp_path)
    projections = memory_store()
    first = compose.monitor(store, CONFIG, clock, projections=projections)
    assert first.step().applied == 5
    assert projections.cursor(FEED_CURSOR).pos == 5
    ledger.transfer([Posting("world:bank-a", "pool:main:usd:bank-a:available", "USD", 1)])
    second = compose.monitor(store, CONFIG, clock, projections=projections)  # a restart
    report = second.step()
    assert (report.applied, report.duplicates) == (1, 0)
    assert second.snapshot("main").cells[("posted", "pool:main:usd:bank-a:available|USD")] == 301
    feed = OutboxFeed(compose.outbox(store), Projector(projections), batch=2)
    assert feed.run_once().applied == 0


def test_the_feed_in_small_batches_ends_as_the_fold(run: tuple[SqliteStore, ManualClock],
                                                    run_events: list[Event]) -> None:
    store, _ = run
    projections = memory_store()
    feed = OutboxFeed(compose.outbox(store), Projector(projections), batch=997)
    report = feed.catch_up()
    assert report.applied == compose.outbox(store).last_pos()
    stored_same(projections, fold(POOL.id, run_events))


def test_the_feed_steps_over_a_row_it_cannot_read(tmp_path: Path) -> None:
    store, _ledger, clock = small_ledger(tmp_path)
    with store.write() as session:
        session.connection.execute("UPDATE outbox SET data = 'not json' WHERE pos = 4")
    projections = memory_store()
    report = compose.monitor(store, CONFIG, clock, projections=projections).step()
    assert (report.applied, report.rejected) == (4, 1)
    (reject,) = projections.rejects("main")
    assert (reject.seq, reject.code) == (1, "invalid_event")


def test_catch_up_returns_when_a_pool_is_blocked(tmp_path: Path) -> None:
    from fundpool.core.ledger.model import Account

    store, ledger, clock = small_ledger(tmp_path)
    with ledger.transaction() as transaction:
        transaction.emit([Event("v2-1", LedgerEntryCommitted.TYPE, "main", transaction.at_us,
                                LedgerEntryCommitted("x", 1, "transfer", ()), 0, 2)])
    ledger.open_account(Account("world:other"))  # a `_ledger` event after the blocked one
    monitor = compose.monitor(store, CONFIG, clock, projections=memory_store())
    calls = 0
    run_once = monitor.feed.run_once

    def counted() -> Any:
        nonlocal calls
        calls += 1
        if calls > 50:
            raise RuntimeError("catch_up does not return")
        return run_once()

    monitor.feed.run_once = counted  # type: ignore[method-assign]
    report = monitor.step()
    assert set(report.blocked) == {"main"}


# --- series ------------------------------------------------------------------------------------


def check_rollup(series: dict[tuple[str, str, int], int], bounds: dict[str, int]) -> None:
    """Every minute kept whole by the second retention is the sum (a counter) or the last
    value (a gauge) of its seconds; every hour likewise of its minutes."""
    for coarse, fine in (("m", "s"), ("h", "m")):
        width = RESOLUTIONS[coarse]
        inside: dict[tuple[str, int], list[tuple[int, int]]] = {}
        for (metric, res, start), value in series.items():
            if res == fine:
                inside.setdefault((metric, start - start % width), []).append((start, value))
        for (metric, res, start), value in series.items():
            if res != coarse or start < bounds[fine]:
                continue
            parts = sorted(inside.get((metric, start), []))
            assert parts, (metric, coarse, start)
            if metric.split("|")[0] in GAUGES:
                assert value == parts[-1][1], (metric, coarse, start)
            else:
                assert value == sum(v for _, v in parts), (metric, coarse, start)


def check_retention(projection: Projection) -> None:
    bounds = projection.prune_bounds()
    for _, res, start in projection.series:
        assert start >= bounds[res]
    assert all(bounds[res] == projection.last_at_us - RETENTION_US[res] for res in RESOLUTIONS)


def test_the_runs_series_roll_up_exactly(run_events: list[Event]) -> None:
    projection = fold(POOL.id, run_events)
    assert projection.last_at_us - run_events[0].at_us < RETENTION_US["s"]  # nothing pruned
    check_rollup(projection.series, projection.prune_bounds())
    metrics = {m.split("|")[0] for m, _, _ in projection.series}
    assert {"total", "available", "flow", "payments", "fee", "outflow", "inflow"} <= metrics
    minutes = {b for _, r, b in projection.series if r == "m"}
    assert len(minutes) >= 1
    # every series bucket starts on its resolution's boundary
    for _, res, start in projection.series:
        assert start % RESOLUTIONS[res] == 0


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams(SMALL_DELTAS, max_size=40))
def test_series_roll_up_exactly(by_pool: dict[str, list[Event]]) -> None:
    for pool, events in by_pool.items():
        projection = fold(pool, events)
        check_rollup(projection.series, projection.prune_bounds())
        # counters: each resolution holds the same total (nothing pruned within 2 hours)
        if events and events[-1].at_us - events[0].at_us < RETENTION_US["s"]:
            totals: dict[tuple[str, str], int] = {}
            for (metric, res, _), value in projection.series.items():
                if metric.split("|")[0] not in GAUGES:
                    totals[(metric, res)] = totals.get((metric, res), 0) + value
            for (metric, _res), total in totals.items():
                assert {totals.get((metric, r)) for r in RESOLUTIONS} == {total}


def test_retention_drops_seconds_older_than_two_hours() -> None:
    events = [entry_event("p", seq, T0 + (seq - 1) * 15 * MINUTE, posted=seq) for seq in
              range(1, 14)]  # 3 hours of events, one each quarter of an hour
    expected = fold("p", events)
    last = events[-1].at_us
    bound = last - RETENTION_US["s"]
    seconds = sorted(b for m, r, b in expected.series if r == "s" and m.startswith("total"))
    assert seconds == [e.at_us for e in events if e.at_us >= bound]
    assert min(b for _, r, b in expected.series if r == "m") == T0  # minutes stay 3 days
    check_retention(expected)
    # the projector prunes by the same bound, in memory and in its store
    store = memory_store()
    projector = Projector(store)
    for event in events:
        projector.apply([event])
    same(projector.projection("p"), expected)
    stored_same(store, expected)
    assert all(b >= bound for (_, r, b), _ in store.series("p") if r == "s")


def test_retention_drops_minutes_after_three_days_and_hours_after_ninety() -> None:
    days = 86_400 * SECOND
    times = [T0, T0 + 2 * days, T0 + 4 * days, T0 + 95 * days]
    events = [entry_event("p", seq, at, posted=seq) for seq, at in enumerate(times, 1)]
    for end in range(2, 5):
        projection = fold("p", events[:end])
        check_retention(projection)
        for res in RESOLUTIONS:
            kept = sorted(b for m, r, b in projection.series if r == res and m.startswith("total"))
            width = RESOLUTIONS[res]
            assert kept == [t - t % width for t in times[:end]
                            if t - t % width >= times[end - 1] - RETENTION_US[res]]


def test_the_store_drops_what_memory_drops_in_batches_and_across_restarts() -> None:
    """The projector drops a bucket from its store only where memory dropped one (memory is
    loaded from the store and written back, so the store holds nothing memory does not):
    batches and restarts in any order end with the store as the fold, at every retention,
    an event late in time included (its buckets, older than the retention, never stored)."""
    days, hours = 86_400 * SECOND, HOUR
    times = [T0, T0 + hours, T0 + 3 * hours, T0 + 2 * hours, T0 + 2 * days,
             T0 + 2 * days + 5 * hours, T0 + 4 * days, T0 + 4 * days + 10 * SECOND,
             T0 + 95 * days, T0 + 95 * days + 2 * MINUTE]
    events = [entry_event("p", seq, at, posted=seq) for seq, at in enumerate(times, 1)]
    for batches, restarts in (([1] * len(events), False), ([1] * len(events), True),
                              ([2, 3, 1, 4], True), ([len(events)], False),
                              ([3, 3, 3, 1], True)):
        store = memory_store()
        projector = Projector(store)
        start = 0
        for number, size in enumerate(batches):
            if restarts and number % 2:
                projector = Projector(store)  # loads the store again
            projector.apply(events[start:start + size])
            start += size
        expected = fold("p", events)
        check_retention(expected)
        same(projector.projection("p"), expected)
        stored_same(store, expected)


# --- latency ------------------------------------------------------------------------------------


def hist(**counts: int) -> list[int]:
    buckets = [0] * (len(LATENCY_BOUNDS_US) + 1)
    for key, count in counts.items():
        buckets[int(key[1:])] = count
    return buckets


@pytest.mark.parametrize(("buckets", "q", "expected"), [
    (hist(), Fraction(1, 2), 0),
    (hist(b0=10), Fraction(1, 2), 500),  # [0, 1 ms]: half way
    (hist(b0=10), Fraction(1, 10), 100),
    (hist(b0=10), Fraction(1), 1_000),
    (hist(b3=4), Fraction(1, 2), 7_500),  # (5 ms, 10 ms]
    (hist(b3=4), Fraction(0), 5_000),
    (hist(b0=1, b2=1), Fraction(1, 2), 1_000),
    (hist(b0=1, b2=1), Fraction(99, 100), 4_940),  # 2 ms + 3 ms x 0.98
    (hist(b0=98, b9=2), Fraction(99, 100), 750_000),  # (500 ms, 1 s]: half of the bucket
    (hist(b26=5), Fraction(1, 2), LATENCY_BOUNDS_US[-1]),  # +Inf answers the largest bound
    (hist(b0=1, b26=1), Fraction(99, 100), LATENCY_BOUNDS_US[-1]),
    (hist(b25=3), Fraction(1, 3), 259_200_000_000 + (604_800_000_000 - 259_200_000_000) // 3),
])
def test_quantile_on_hand_built_histograms(buckets: list[int], q: Fraction,
                                           expected: int) -> None:
    assert quantile_us(buckets, q) == expected


@given(st.lists(st.integers(0, 50), min_size=len(LATENCY_BOUNDS_US) + 1,
                max_size=len(LATENCY_BOUNDS_US) + 1),
       st.fractions(0, 1), st.fractions(0, 1))
def test_quantile_is_monotone_and_within_its_bucket(buckets: list[int], a: Fraction,
                                                    b: Fraction) -> None:
    low, high = sorted((a, b))
    assert quantile_us(buckets, low) <= quantile_us(buckets, high)
    value = quantile_us(buckets, high)
    assert 0 <= value <= LATENCY_BOUNDS_US[-1]
    if sum(buckets):
        # the quantile lies in the bucket where the cumulative count reaches q x total
        rank, seen = high * sum(buckets), 0
        for index, count in enumerate(buckets):
            if count and seen + count >= rank:
                lower = LATENCY_BOUNDS_US[index - 1] if index else 0
                upper = LATENCY_BOUNDS_US[min(index, len(LATENCY_BOUNDS_US) - 1)]
                assert lower <= value <= upper
                break
            seen += count


@pytest.mark.parametrize(("latency", "bucket"), [
    (0, 0), (1, 0), (1_000, 0), (1_001, 1), (2_000, 1), (2_001, 2),
    (LATENCY_BOUNDS_US[-1], len(LATENCY_BOUNDS_US) - 1),
    (LATENCY_BOUNDS_US[-1] + 1, len(LATENCY_BOUNDS_US)),
])
def test_a_latency_falls_in_the_bucket_whose_bound_it_does_not_pass(latency: int,
                                                                    bucket: int) -> None:
    assert latency_bucket(latency) == bucket


def test_latency_figures_from_transitions() -> None:
    def moved(seq: int, at: int, action: str, to: str, since: int | None) -> Event:
        return Event(f"x:{seq}", PaymentTransitioned.TYPE, "p", at, PaymentTransitioned(
            "x", "payout", "USD", 500, 5, "bank-a", None, action, None if since is None
            else "approved", to, seq, since, T0, None), seq)

    events = [moved(1, T0, "create", "initiated", None),
              moved(2, T0 + 1_500, "submit", "submitted", T0),  # 1.5 ms
              moved(3, T0 + 3_000_000, "settle", "settled", T0 + 1_500)]
    cells = fold("p", events).cells
    figures = {(f.channel, f.stage): f for f in latency_figures(cells)}
    assert set(figures) == {("bank-a", "submit"), ("bank-a", "settle"),
                            ("bank-a", "end_to_end")}
    submit = figures[("bank-a", "submit")]
    assert (submit.count, submit.mean_us) == (1, 1_500)
    assert submit.buckets[1] == 1  # (1 ms, 2 ms]
    assert submit.p50_us == 1_500
    end = figures[("bank-a", "end_to_end")]
    assert (end.count, end.mean_us) == (1, 3_000_000)
    assert end.buckets[latency_bucket(3_000_000)] == 1


def test_counts_by_state_follow_transitions(run_events: list[Event]) -> None:
    projection = fold(POOL.id, run_events)
    last_state: dict[str, str] = {}
    for event in run_events:
        if isinstance(event.data, PaymentTransitioned):
            last_state[event.data.payment_id] = event.data.to_state
    counted: dict[str, int] = {}
    for state in last_state.values():
        counted[state] = counted.get(state, 0) + 1
    assert {k: v for (name, k), v in projection.cells.items()
            if name == "payments" and v} == counted


def test_payments_by_channel_and_state_are_the_payment_stores(
    run: tuple[SqliteStore, ManualClock]
) -> None:
    store, clock = run
    monitor = compose.monitor(store, CONFIG, clock, projections=memory_store())
    monitor.step()
    figures = monitor.figures(POOL.id)
    assert all(count >= 0 for count in figures.by_channel_state.values())
    assert figures.by_channel_state == payment_truth(store)[0]


def check_pg_projection_store(factory: Callable[[], ProjectionStore]) -> None:
    store = factory()
    try:
        events = [entry_event("p", seq, T0 + seq * SECOND, posted=2**100 + seq)
                  for seq in range(1, 30)]
        projector = deliver(store, events, random.Random(1), restarts=True, failures=True)
        expected = fold("p", events)
        same(projector.projection("p"), expected)
        stored_same(store, expected)
    finally:
        store.reset()
        store.close()


@pytest.mark.postgres
def test_the_postgres_projection_store_keeps_the_same_figures() -> None:
    require_postgres()
    schema = new_pg_schema()
    try:
        check_pg_projection_store(lambda: ProjectionStore(f"{PG_URL}?schema={schema}"))
    finally:
        import psycopg

        with psycopg.connect(PG_URL, autocommit=True) as connection:
            connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
