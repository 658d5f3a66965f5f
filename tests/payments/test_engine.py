"""The payment engine, a pass at a time on a simulated clock: what is created elsewhere is taken
up and carried to the end by the engine, in the engine's name; a held payment waits and a
released one goes on; a payment whose fee would exceed its amount is rejected at routing; and
after a crash the engine resumes: a payment marked submitted whose rail never got it is sent
then, once, and one the rail has is never sent again (the rails' journals say so)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from fundpool import compose
from fundpool.channels.rail_journal import acknowledged_outcome_ids, journal_submissions
from fundpool.core.actor import Actor
from fundpool.core.clock import ManualClock, Uuid7Ids
from fundpool.core.ledger.model import Posting, Transfer
from fundpool.payments.engine import PaymentEngine
from fundpool.payments.model import (
    Action,
    FeeExceedsAmount,
    PaymentKind,
    PaymentRequest,
    PaymentState,
    Step,
)
from fundpool.pool.accounts import PoolState, pool_account, world_account
from fundpool.pool.config import FundpoolConfig, load_config
from fundpool.pool.setup import init_pool
from fundpool.stores.sqlite import SqliteStore

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "pool.toml"
CASHIER = Actor("user", "u-cashier", "carol", ("cashier",))
RISK = Actor("user", "u-risk", "rita", ("risk",))
S = PaymentState


class Bench:
    """A store with the example pool funded, and engines built on it as a server would."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.store = SqliteStore(root / "ledger.sqlite3")
        self.store.initialise()
        self.config: FundpoolConfig = load_config(EXAMPLE)
        self.pool = self.config.pool(None)
        self.clock = ManualClock()
        self.ids = Uuid7Ids.seeded(11)
        ledger = compose.ledger(self.store, self.clock, self.ids)
        init_pool(ledger, self.config)
        (funded,) = ledger.submit([Transfer((Posting(
            world_account("rtp"), pool_account("main", "USD", "rtp", PoolState.AVAILABLE),
            "USD", 1_000_000_00),), {"purpose": "opening float"})])
        assert funded.error is None
        self.engines: list[PaymentEngine] = []

    def engine(self, seed: int = 7) -> PaymentEngine:
        parts = compose.simulated_dispatching(
            compose.ledger(self.store, self.clock, self.ids), self.config, self.pool,
            clock=self.clock, ids=self.ids, seed=seed, instance=f"engine-{seed}",
            policy=compose.engine_policy(), journal_dir=self.root / "rails",
            acknowledged_on_commit=True)
        engine = PaymentEngine(self.pool.id, parts.dispatcher)
        self.engines.append(engine)
        return engine

    def crash(self, engine: PaymentEngine) -> None:
        """The process dies: nothing flushed, its rails' journals let go (as a dead process's
        locks are)."""
        for rail in engine.dispatcher._rails.values():
            rail.close()  # type: ignore[attr-defined]

    def payout(self, amount_minor: int, reference: str, channel: str | None = "rtp") -> str:
        service = compose.payment_service(self.store, self.config, self.pool, clock=self.clock,
                                          ids=self.ids)
        return service.create(PaymentRequest(
            PaymentKind.PAYOUT, "USD", amount_minor, channel=channel, counterparty="Ada",
            reference=reference, destination="GB33BUKB20201555555555"),
            idempotency_key=reference, actor=CASHIER).id

    def states(self, ids: list[str]) -> list[S]:
        service = compose.payment_service(self.store, self.config, self.pool)
        found = service.states(ids)
        return [found[pid] for pid in ids]

    def passes(self, engine: PaymentEngine, seconds: float, every_s: float = 0.5) -> None:
        for _ in range(round(seconds / every_s)):
            engine.run_once()
            self.clock.advance(seconds=every_s)


@pytest.fixture
def bench(tmp_path: Path) -> Iterator[Bench]:
    made = Bench(tmp_path)
    yield made
    for engine in made.engines:
        made.crash(engine)
    made.store.close()


def test_a_created_payout_is_taken_to_settled_in_the_engines_name(bench: Bench) -> None:
    engine = bench.engine()
    pid = bench.payout(50_00, "take-1")
    assert bench.states([pid]) == [S.INITIATED]
    engine.run_once()
    # Screened, routed and approved in one pass, and sent in it too (rtp takes one at a time).
    assert bench.states([pid]) == [S.SUBMITTED]
    bench.passes(engine, 60)
    assert bench.states([pid]) == [S.SETTLED]
    service = compose.payment_service(bench.store, bench.config, bench.pool)
    events = service.events(pid)
    assert events[0].actor == CASHIER
    assert {e.actor.kind for e in events[1:] if e.actor} == {"engine"}
    assert all(e.actor is not None for e in events)


def test_a_held_payment_waits_and_a_released_one_goes_on(bench: Bench) -> None:
    engine = bench.engine()
    pid = bench.payout(30_00, "hold-1")
    service = compose.payment_service(bench.store, bench.config, bench.pool, clock=bench.clock,
                                      ids=bench.ids)
    service.act(Step(pid, Action.HOLD, reason="looks odd", actor=RISK))
    bench.passes(engine, 5)
    assert bench.states([pid]) == [S.HELD]
    service.act(Step(pid, Action.RELEASE, reason="checked", actor=RISK))
    bench.passes(engine, 60)
    assert bench.states([pid]) == [S.SETTLED]


def test_a_fee_larger_than_the_amount_is_rejected_at_routing(bench: Bench) -> None:
    # Named, its rail's fee is known at creation: refused then, nothing made.
    with pytest.raises(FeeExceedsAmount) as named:
        bench.payout(10, "tiny-0")  # 0.10 USD on rtp, whose fee is 0.45
    assert (named.value.facts["fee_minor"], named.value.facts["amount_minor"]) == (45, 10)
    # Routed, it is refused by the rail the router picks (rtp: the only one funded).
    engine = bench.engine()
    pid = bench.payout(10, "tiny-1", channel=None)
    engine.run_once()
    assert bench.states([pid]) == [S.REJECTED]
    service = compose.payment_service(bench.store, bench.config, bench.pool)
    (rejected,) = [e for e in service.events(pid) if e.action is Action.REJECT]
    assert rejected.reason == "fee_exceeds_amount"
    assert rejected.from_state is S.SCREENED  # before any funds were locked


def sent(root: Path) -> Counter[str]:
    return Counter(s.payment_id for s in journal_submissions(root / "rails" / "main" / "rtp.jsonl"))


def test_after_a_crash_between_commit_and_send_the_payment_is_sent_once(bench: Bench) -> None:
    first = bench.engine(seed=1)
    ids = [bench.payout(20_00 + n, f"lost-{n}") for n in range(3)]
    # The process dies after the commit that marks the batch submitted, before the send.
    first.dispatcher._batches.send = lambda due, report: None  # type: ignore[method-assign]
    first.run_once()
    assert bench.states(ids) == [S.SUBMITTED] * 3
    assert sent(bench.root) == Counter()  # the rail never heard of them
    bench.crash(first)

    second = bench.engine(seed=2)
    second.run_once()
    assert (second.stats.resumed, second.stats.resent) == (3, 3)
    bench.passes(second, 60)
    assert bench.states(ids) == [S.SETTLED] * 3
    assert sent(bench.root) == Counter({pid: 1 for pid in ids})


def test_after_a_crash_what_the_rail_has_is_never_sent_again(bench: Bench) -> None:
    first = bench.engine(seed=3)
    ids = [bench.payout(40_00 + n, f"kept-{n}") for n in range(3)]
    first.run_once()  # sent (rtp takes one at a time); the rail's answers not yet polled
    assert bench.states(ids) == [S.SUBMITTED] * 3
    assert sent(bench.root) == Counter({pid: 1 for pid in ids})
    bench.crash(first)

    second = bench.engine(seed=4)
    second.run_once()
    assert (second.stats.resumed, second.stats.resent) == (3, 0)
    bench.passes(second, 60)
    assert bench.states(ids) == [S.SETTLED] * 3
    assert sent(bench.root) == Counter({pid: 1 for pid in ids})
    service = compose.payment_service(bench.store, bench.config, bench.pool)
    for pid in ids:
        actions = Counter(e.action for e in service.events(pid))
        assert (actions[Action.SUBMIT], actions[Action.SETTLE]) == (1, 1)


def test_a_rail_that_lost_its_memory_is_never_sent_a_payment_again(bench: Bench) -> None:
    first = bench.engine(seed=5)
    ids = [bench.payout(60_00 + n, f"forgot-{n}") for n in range(2)]
    first.dispatcher._batches.send = lambda due, report: None  # type: ignore[method-assign]
    first.run_once()  # committed as submitted; whether the rail got them, nobody can say
    bench.crash(first)
    (bench.root / "rails" / "main" / "rtp.jsonl").unlink()  # the rail's memory is gone

    second = bench.engine(seed=6)
    second.forgetful = frozenset({"rtp"})  # as compose.payment_engine finds it
    bench.passes(second, 30)
    assert (second.stats.resumed, second.stats.resent) == (0, 0)
    assert bench.states(ids) == [S.SUBMITTED] * 2  # left in transit for a person
    assert sent(bench.root) == Counter()


def test_the_engine_builder_knows_which_rails_start_without_memory(tmp_path: Path) -> None:
    made = Bench(tmp_path)
    try:
        fresh = compose.payment_engine(made.store, made.config, made.pool,
                                       rails_dir=tmp_path / "rails")
        assert fresh.forgetful == frozenset(made.pool.channels)
        fresh.dispatcher.close()
        again = compose.payment_engine(made.store, made.config, made.pool,
                                       rails_dir=tmp_path / "rails")
        assert again.forgetful == frozenset()  # every journal is there now
        again.dispatcher.close()
    finally:
        made.store.close()


def test_a_rails_outcomes_are_acknowledged_only_once_committed(bench: Bench) -> None:
    first = bench.engine(seed=8)
    ids = [bench.payout(70_00 + n, f"ack-{n}") for n in range(2)]
    first.run_once()  # sent
    bench.clock.advance(seconds=30)  # the rail has settled them by now

    def fail(*_: object) -> None:
        raise RuntimeError("the store went away mid-pass")

    first.dispatcher._outcomes.apply = fail  # type: ignore[method-assign]
    for _ in range(2):  # polled, not committed; polled again, still not
        with pytest.raises(RuntimeError):
            first.run_once()
    journal = bench.root / "rails" / "main" / "rtp.jsonl"
    assert acknowledged_outcome_ids(journal) == []  # nothing taken for had
    bench.crash(first)

    second = bench.engine(seed=9)
    bench.passes(second, 10)
    assert bench.states(ids) == [S.SETTLED] * 2
    acknowledged = set(acknowledged_outcome_ids(journal))
    reads = second.dispatcher.reads
    for pid in ids:
        applied = {o.outcome_id for o in reads.outcomes(pid)}
        assert applied, pid
        assert applied <= acknowledged
