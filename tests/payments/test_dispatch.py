"""The dispatcher, on both stores, against rails that do exactly what the test says.

Intake routes with the router and approves (or waits for an approver); batches go out by size
and by age, with the rail's fee, the single fee and the savings recorded; a closed rail keeps
its queue; a failed attempt fails over to the next rail, at most `max_attempts` times, with
every attempt's decision stored; a named rail is not failed over; a cooling-down rail is
skipped; a refused batch fails at the next tick; deposits clear and settle from the rail's
reports (and a closed rail hears of them when it opens); duplicates, stale, late and
contradicting reports change nothing and are each recorded once; a tick whose commit fails
loses no report; a restarted dispatcher finds approved payments again; an atomic intake
refuses everything or nothing; the same idempotency key creates nothing twice, even twice in
one call; bad input, and a named rail that cannot carry the payment, is a clear error or a
rejection with nothing half done.

Expected balances are literal numbers worked by hand from examples/pool.toml's fees (the
posting table of src/fundpool/payments/model.py): rtp 0.45 a payout; bank-a 0.25 + 5 bps;
card-acq 0.30 + 25 bps out and 180 bps in.
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import fundpool.stores
from fundpool.channels.limits import declared_limits
from fundpool.channels.ports import (
    Capabilities,
    ChannelOutcome,
    Direction,
    Instruction,
    OutcomeCallback,
    OutcomeKind,
    Quote,
    Submission,
)
from fundpool.channels.simulated import ChannelRefused, SimulatedRail
from fundpool.core.clock import ManualClock, Uuid7Ids
from fundpool.core.errors import FundpoolError
from fundpool.core.ledger.model import Posting
from fundpool.ledger.ports import LedgerStore
from fundpool.ledger.service import Ledger
from fundpool.ledger.verify import verify
from fundpool.payments.dispatch import (
    Dispatcher,
    DispatchPolicy,
    Intake,
    IntakeRefused,
    TickReport,
)
from fundpool.payments.model import (
    Action,
    Payment,
    PaymentKind,
    PaymentRequest,
    PaymentState,
)
from fundpool.payments.records import OutcomeRecord, RouteRecord
from fundpool.payments.service import PaymentService
from fundpool.pool.config import ChannelConfig, FundpoolConfig, PoolConfig, parse_config
from fundpool.pool.setup import init_pool
from fundpool.routing.decision import RoutingDecision
from fundpool.routing.policy import RoutingPolicy
from fundpool.routing.router import FixedPriorityRouter, Router
from fundpool.stores.dispatch_sql import SqlDispatchRecords
from tests.payments.test_lifecycle import acct, ledger_balances, world

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "pool.toml"

K = PaymentKind
S = PaymentState
A = Action
O = OutcomeKind  # noqa: E741 - the rail's word for what happened

US = 1_000_000
THURSDAY_0H_US = 1_767_225_600_000_000  # 2026-01-01T00:00Z, the ManualClock's start
DAY_US = 86_400 * US
FRIDAY_20H59M59S_US = THURSDAY_0H_US + DAY_US + (20 * 3_600 + 59 * 60 + 59) * US
SATURDAY_NOON_US = THURSDAY_0H_US + 2 * DAY_US + 12 * 3_600 * US
MONDAY_0H00M01S_US = THURSDAY_0H_US + 4 * DAY_US + 1 * US

USD_RAILS = ("rtp", "bank-a", "card-acq", "book")
# A scripted rail's own charge per submission: per file and per item, like a bank's file.
FILE_FEE_MINOR = 100
ITEM_FEE_MINOR = 10


# --- the configuration -------------------------------------------------------------------------


def example_document() -> dict[str, Any]:
    return tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))


def config_with(
    channels: Mapping[str, Mapping[str, Any]] | None = None,
    pool: Mapping[str, Any] | None = None,
) -> FundpoolConfig:
    """examples/pool.toml with some channel fields and pool fields replaced."""
    document = example_document()
    for entry in document["channels"]:
        entry.update((channels or {}).get(entry["id"], {}))
    document["pools"][0].update(pool or {})
    return parse_config(document, source=str(EXAMPLE), base_dir=EXAMPLE.parent)


CONFIG = config_with()


# --- a rail that does what it is told ----------------------------------------------------------


class ScriptedRail:
    """A `ChannelAdapter` that takes every submission (unless told to refuse) and reports
    exactly the outcomes the test gives it, at the next poll, in the order given."""

    def __init__(
        self,
        channel: ChannelConfig,
        *,
        success_probability: float = 0.99,
        latency_us: int = 1 * US,
    ) -> None:
        self.channel = channel
        self.success_probability = success_probability
        self.latency_us = latency_us
        self.refusing: str | None = None  # while set, every submission is refused
        self.taken: list[tuple[int, tuple[Instruction, ...]]] = []
        self.refused: list[tuple[int, tuple[Instruction, ...]]] = []
        self.delivered: list[ChannelOutcome] = []
        self._outbox: list[ChannelOutcome] = []

    @property
    def id(self) -> str:
        return self.channel.id

    def capabilities(self) -> Capabilities:
        channel = self.channel
        return Capabilities(
            channel.id,
            channel.kind,
            frozenset(channel.assets),
            *declared_limits(channel),  # the configured limits, as every rail declares them
            channel.batch_size,
            channel.cutoff,
        )

    def quote(self, asset: str, amount_minor: int, at_us: int) -> Quote:
        fee = self.channel.fee_schedule(asset).outbound_fee(amount_minor)
        return Quote(self.id, asset, amount_minor, fee, self.latency_us, self.success_probability)

    def submit(self, instructions: Sequence[Instruction], at_us: int) -> Submission:
        batch = tuple(instructions)
        if self.refusing is not None:
            self.refused.append((at_us, batch))
            raise ChannelRefused(f"{self.id} refused the submission: {self.refusing}",
                                 channel=self.id, reason=self.refusing)
        self.taken.append((at_us, batch))
        outbound = sum(1 for i in batch if i.direction is Direction.OUTBOUND)
        return Submission(
            self.id, f"{self.id}-{len(self.taken)}", tuple(i.payment_id for i in batch), at_us,
            FILE_FEE_MINOR + ITEM_FEE_MINOR * outbound,
            (FILE_FEE_MINOR + ITEM_FEE_MINOR) * outbound,
        )

    def poll(self, until_us: int) -> list[ChannelOutcome]:
        out, self._outbox = self._outbox, []
        self.delivered.extend(out)
        return out

    def subscribe(self, callback: OutcomeCallback) -> None:
        raise NotImplementedError("the dispatcher polls")

    def report(
        self,
        payment_id: str,
        kind: OutcomeKind,
        *,
        outcome_id: str | None = None,
        reason: str | None = None,
        at_us: int = 0,
    ) -> ChannelOutcome:
        outcome = ChannelOutcome(
            outcome_id or f"{self.id}/{payment_id}/{kind.value}", self.id, payment_id,
            f"{self.id}-ref", kind, at_us, reason,
        )
        self._outbox.append(outcome)
        return outcome

    def waiting(self) -> list[ChannelOutcome]:
        """What the next poll will deliver, in order."""
        return list(self._outbox)

    def again(self, outcome: ChannelOutcome) -> None:
        """Deliver an outcome once more (a rail's duplicate: the same outcome id)."""
        self._outbox.append(outcome)

    def sent(self, direction: Direction | None = None) -> list[str]:
        return [
            i.payment_id for _, batch in self.taken for i in batch
            if direction is None or i.direction is direction
        ]


# --- the wiring --------------------------------------------------------------------------------


@dataclass
class Wired:
    store: LedgerStore
    ledger: Ledger
    clock: ManualClock
    config: FundpoolConfig
    pool: PoolConfig
    service: PaymentService
    rails: dict[str, Any]
    router: Any
    dispatcher: Dispatcher
    ids: Uuid7Ids
    reports: list[TickReport] = field(default_factory=list)

    def rail(self, channel: str) -> ScriptedRail:
        rail = self.rails[channel]
        assert isinstance(rail, ScriptedRail)
        return rail

    def fund(self, channel: str, asset: str, amount: int) -> None:
        self.ledger.transfer(
            [Posting(world(channel), acct(channel, asset, "available"), asset, amount)],
            metadata={"test": "funding"},
        )

    def intake(
        self, *requests: PaymentRequest | tuple[PaymentRequest, str | None], atomic: bool = False
    ) -> list[Intake]:
        pairs = [r if isinstance(r, tuple) else (r, None) for r in requests]
        return self.dispatcher.intake(pairs, atomic=atomic)

    def one(self, request: PaymentRequest, key: str | None = None) -> Payment:
        (intake,) = self.intake((request, key))
        assert isinstance(intake.outcome, Payment), intake.outcome
        assert not intake.errors, intake.errors
        return intake.outcome

    def tick(self, seconds: float = 1) -> TickReport:
        self.clock.advance(seconds=seconds)
        report = self.dispatcher.tick()
        self.reports.append(report)
        return report

    def get(self, payment_id: str) -> Payment:
        return self.service.get(payment_id)

    def state(self, payment_id: str) -> PaymentState:
        return self.get(payment_id).state

    def actions(self, payment_id: str) -> list[Action]:
        return [e.action for e in self.service.events(payment_id)]

    def routes(self, payment_id: str) -> list[RouteRecord]:
        return self.dispatcher.reads.routes(payment_id)

    def outcomes(self, payment_id: str) -> list[OutcomeRecord]:
        return self.dispatcher.reads.outcomes(payment_id)

    def balances(self) -> dict[tuple[str, str], int]:
        return ledger_balances(self.store)

    def count(self, table: str) -> int:
        ((n,),) = self.store.query(f"SELECT count(*) FROM {table}", ())  # type: ignore[attr-defined]
        return int(n)

    def restart(self, rails: Mapping[str, Any] | None = None) -> Dispatcher:
        """Another process on the same store: a new service, router and dispatcher."""
        ids = Uuid7Ids.seeded(99)
        service = PaymentService(
            self.ledger, fundpool.stores.payment_store(self.store), self.config, self.pool, ids
        )
        self.rails = dict(rails or self.rails)
        self.router = FixedPriorityRouter(list(self.rails.values()), list(self.rails))
        self.service = service
        self.dispatcher = Dispatcher(service, self.rails, self.router, self.clock, ids,
                                     records=SqlDispatchRecords(self.store))
        return self.dispatcher


def scripted(config: FundpoolConfig, channels: Sequence[str] = USD_RAILS) -> dict[str, Any]:
    return {c: ScriptedRail(config.channel(c)) for c in channels}


def wire(
    store: LedgerStore,
    ledger: Ledger,
    clock: ManualClock,
    *,
    config: FundpoolConfig = CONFIG,
    rails: Mapping[str, Any] | None = None,
    priority: Sequence[str] | None = None,
    learned: bool = False,
    routing: RoutingPolicy | None = None,
    dispatch: DispatchPolicy | None = None,
) -> Wired:
    """A dispatcher on `store` with a real payment service, ledger and router: a fixed-order
    router (`priority`, by default the rails' order) unless `learned`."""
    init_pool(ledger, config)
    pool = config.pool("main")
    ids = Uuid7Ids.seeded(11)
    service = PaymentService(ledger, fundpool.stores.payment_store(store), config, pool, ids)
    rails = dict(rails if rails is not None else scripted(config))
    policy = routing or RoutingPolicy(hedge_share=0.0)
    router: Any
    if learned:
        router = Router(list(rails.values()), policy=policy, seed=5)
    else:
        router = FixedPriorityRouter(list(rails.values()), list(priority or rails),
                                     policy=policy)
    dispatcher = Dispatcher(service, rails, router, clock, ids,
                            records=SqlDispatchRecords(store), policy=dispatch or DispatchPolicy())
    return Wired(store, ledger, clock, config, pool, service, rails, router, dispatcher, ids)


def payout(amount: int, channel: str | None = None, asset: str = "USD",
           **metadata: str) -> PaymentRequest:
    return PaymentRequest(K.PAYOUT, asset, amount, channel, counterparty="payee-1",
                          reference="inv", metadata=metadata)


def deposit(amount: int, channel: str = "card-acq", asset: str = "USD",
            **metadata: str) -> PaymentRequest:
    return PaymentRequest(K.DEPOSIT, asset, amount, channel, counterparty="payer-1",
                          metadata=metadata)


def usd(channel: str, state: str) -> tuple[str, str]:
    return (acct(channel, "USD", state), "USD")


def wusd(channel: str) -> tuple[str, str]:
    return (world(channel), "USD")


def lit(w: Wired, expected: Mapping[tuple[str, str], int]) -> None:
    """Literal expected balances, and nothing else non-zero in the ledger."""
    assert w.balances() == {k: v for k, v in expected.items() if v != 0}


def reasons(route: RouteRecord) -> dict[str, str | None]:
    """Why each rail was left out of a stored decision (None: it was eligible)."""
    decision = RoutingDecision.from_dict(route.decision)
    assert decision.to_dict() == route.decision
    return {c.channel: c.reason for c in decision.candidates}


NOW = DispatchPolicy(batch_age_us=0)  # every queued payment goes out at the next tick


# --- intake: routing and approval --------------------------------------------------------------


def test_intake_routes_a_payout_with_the_router_and_approves(
    store: LedgerStore, ledger: Ledger, clock: ManualClock
) -> None:
    w = wire(store, ledger, clock, learned=True)
    w.fund("bank-a", "USD", 1_000_000)
    w.fund("rtp", "USD", 1_000_000)
    (intake,) = w.intake((payout(10_000), "p-1"))
    p = intake.outcome
    assert isinstance(p, Payment)
    assert not intake.errors
    # 100.00 on bank-a costs 0.25 + 0.05; on rtp 0.45; card-acq holds nothing; book never pays
    # out. Success rates being alike, the cheaper rail wins.
    assert (p.state, p.channel, p.fee_minor) == (S.APPROVED, "bank-a", 30)
    assert w.actions(p.id) == [A.CREATE, A.SCREEN, A.ROUTE, A.APPROVE]
    route = intake.route
    assert route is not None
    assert (route.payment_id, route.attempt, route.channel, route.strategy) == (
        p.id, 1, "bank-a", "learned"
    )
    decision = RoutingDecision.from_dict(route.decision)
    assert decision.to_dict() == route.decision
    assert (decision.payment_id, decision.channel, decision.amount_minor) == (
        p.id, "bank-a", 10_000
    )
    assert {c.channel: c.reason for c in decision.candidates} == {
        "rtp": None, "bank-a": None, "card-acq": "insufficient_liquidity", "book": "excluded",
    }
    assert {c.channel: c.fee_minor for c in decision.candidates if c.eligible} == {
        "rtp": 45, "bank-a": 30,
    }
    for candidate in decision.candidates:
        scores = (candidate.time_cost_minor, candidate.retry_cost_minor,
                  candidate.expected_cost_minor, candidate.sampled_success_probability)
        assert all(s is not None for s in scores) is candidate.eligible
    chosen, other = decision.candidate("bank-a"), decision.candidate("rtp")
    assert chosen.expected_cost_minor < other.expected_cost_minor  # type: ignore[operator]
    stored = w.routes(p.id)
    assert stored == [route]
    assert RoutingDecision.from_dict(stored[0].decision) == decision
    lit(w, {
        wusd("bank-a"): -1_000_000, usd("bank-a", "available"): 989_970,
        usd("bank-a", "locked"): 10_030,
        wusd("rtp"): -1_000_000, usd("rtp", "available"): 1_000_000,
    })
    assert w.dispatcher.queued() == 1
    # bank-a takes files of up to 500: a lone payout waits for the batch age (2 s).
    w.tick(seconds=1)
    assert w.rail("bank-a").sent() == []
    report = w.tick(seconds=1)
    assert (report.batches, report.submitted) == (1, 1)
    assert w.rail("bank-a").sent(Direction.OUTBOUND) == [p.id]
    assert w.state(p.id) is S.SUBMITTED
    w.rail("bank-a").report(p.id, O.SETTLED)
    report = w.tick()
    assert report.outcomes == {"applied": 1}
    assert w.state(p.id) is S.SETTLED
    lit(w, {
        wusd("bank-a"): -990_000, usd("bank-a", "available"): 989_970,
        usd("bank-a", "fees"): 30,
        wusd("rtp"): -1_000_000, usd("rtp", "available"): 1_000_000,
    })
    (record,) = w.outcomes(p.id)
    assert (record.channel, record.kind, record.disposition) == ("bank-a", "settled", "applied")
    (route,) = w.routes(p.id)
    assert route.rail_ref == "bank-a-1"
    assert route.batch_id is not None
    assert verify(store).ok


def test_a_payout_at_the_threshold_waits_for_an_approver(
    store: LedgerStore, ledger: Ledger, clock: ManualClock
) -> None:
    w = wire(store, ledger, clock, priority=["bank-a", "rtp"], dispatch=NOW)
    w.fund("bank-a", "USD", 2_000_000)
    p = w.one(payout(1_000_000))  # 10,000.00: the USD threshold
    assert (p.state, p.channel, p.fee_minor) == (S.PENDING_APPROVAL, "bank-a", 525)
    assert p.approval_required
    assert w.dispatcher.queued() == 0
    lit(w, {wusd("bank-a"): -2_000_000, usd("bank-a", "available"): 2_000_000})
    w.tick()
    w.tick()
    assert w.rail("bank-a").taken == []
    assert w.state(p.id) is S.PENDING_APPROVAL
    (approved,) = w.dispatcher.approve([p.id])
    assert isinstance(approved, Payment)
    assert approved.state is S.APPROVED
    lit(w, {wusd("bank-a"): -2_000_000, usd("bank-a", "available"): 999_475,
            usd("bank-a", "locked"): 1_000_525})
    w.tick()
    assert w.rail("bank-a").sent() == [p.id]
    assert w.state(p.id) is S.SUBMITTED
    assert w.actions(p.id) == [A.CREATE, A.SCREEN, A.ROUTE, A.REQUEST_APPROVAL, A.APPROVE,
                               A.SUBMIT]
    # Approving again is refused and changes nothing.
    (again,) = w.dispatcher.approve([p.id])
    assert isinstance(again, FundpoolError)
    assert again.code == "illegal_transition"
    w.tick()
    assert w.rail("bank-a").sent() == [p.id]


# --- batches -----------------------------------------------------------------------------------


def test_batches_go_out_by_size_and_by_age_with_the_rails_fees(
    store: LedgerStore, ledger: Ledger, clock: ManualClock
) -> None:
    config = config_with({"bank-a": {"batch_size": 3, "simulation": {"failure_rate": 0}}})
    rail = SimulatedRail(config.channel("bank-a"), config.assets, seed=3)
    w = wire(store, ledger, clock, config=config, rails={"bank-a": rail})
    w.fund("bank-a", "USD", 10_000_000)
    opened_at = clock.now_us()
    intakes = w.intake(*[(payout(10_000), f"p-{i}") for i in range(7)])
    ids = [i.outcome.id for i in intakes if isinstance(i.outcome, Payment)]
    assert len(ids) == 7
    assert w.dispatcher.queued() == 7
    report = w.tick(seconds=0.5)  # two full files of 3; the seventh waits
    assert (report.batches, report.submitted, report.queued) == (2, 6, 1)
    assert [w.state(pid) for pid in ids] == [S.SUBMITTED] * 6 + [S.APPROVED]
    report = w.tick(seconds=1)  # 1.5 s old: not yet
    assert (report.batches, report.queued) == (0, 1)
    report = w.tick(seconds=0.5)  # 2 s old: it goes alone
    assert (report.batches, report.submitted, report.queued) == (1, 1, 0)
    w.tick()  # the receipts of the last sends are written at the next tick
    batches = sorted(w.dispatcher.reads.batches(channel="bank-a"), key=lambda b: b.rail_ref or "")
    # The bank's file fee (channels/fees.py): 2.50 a file and the channel's 0.25 an item.
    assert [(b.rail_ref, b.items, b.amount_minor, b.fee_minor, b.single_fee_minor,
             b.savings_minor, b.status) for b in batches] == [
        ("bank-a-1", 3, 30_000, 325, 825, 500, "sent"),
        ("bank-a-2", 3, 30_000, 325, 825, 500, "sent"),
        ("bank-a-3", 1, 10_000, 275, 275, 0, "sent"),
    ]
    assert all(b.opened_at_us == opened_at and b.asset == "USD" for b in batches)
    assert [b.submitted_at_us for b in batches] == [
        opened_at + 500_000, opened_at + 500_000, opened_at + 2_000_000,
    ]
    assert w.dispatcher.reads.savings() == {("bank-a", "USD"): (3, 925, 1_000)}
    by_id = {b.id: b for b in batches}
    for index, pid in enumerate(ids):
        (route,) = w.routes(pid)
        assert route.batch_id in by_id
        assert by_id[route.batch_id].rail_ref == route.rail_ref == f"bank-a-{index // 3 + 1}"
    # What each payment posted is still its quoted fee, whatever the file cost.
    assert {w.get(pid).fee_minor for pid in ids} == {30}


def test_a_closed_rail_keeps_its_queue_until_it_opens(
    store: LedgerStore, ledger: Ledger, clock: ManualClock
) -> None:
    w = wire(store, ledger, clock, priority=["bank-a", "rtp"])
    w.fund("bank-a", "USD", 1_000_000)
    w.fund("rtp", "USD", 1_000_000)
    clock.set(FRIDAY_20H59M59S_US)  # bank-a takes work mon-fri 00:00-21:00 UTC
    p = w.one(payout(10_000))
    assert (p.state, p.channel) == (S.APPROVED, "bank-a")
    w.tick(seconds=3)  # old enough to go, but bank-a closed at 21:00
    assert w.rail("bank-a").taken == []
    assert (w.dispatcher.queued(), w.state(p.id)) == (1, S.APPROVED)
    clock.set(SATURDAY_NOON_US)
    w.tick(seconds=0)
    assert w.rail("bank-a").taken == []
    assert w.dispatcher.queued() == 1
    # Meanwhile the router does not pick a closed rail.
    (saturday,) = w.intake(payout(5_000))
    assert isinstance(saturday.outcome, Payment)
    assert saturday.outcome.channel == "rtp"
    assert saturday.route is not None
    assert reasons(saturday.route)["bank-a"] == "closed"
    clock.set(MONDAY_0H00M01S_US)
    report = w.tick(seconds=0)
    assert w.rail("bank-a").sent() == [p.id]
    assert w.state(p.id) is S.SUBMITTED
    assert report.queued == 0


# --- failover ------------------------------------------------------------------------------------


def funded_three(w: Wired, amount: int = 100_000) -> None:
    for channel in ("rtp", "bank-a", "card-acq"):
        w.fund(channel, "USD", amount)


THREE_FUNDED = {
    wusd("rtp"): -100_000, wusd("bank-a"): -100_000, wusd("card-acq"): -100_000,
    usd("rtp", "available"): 100_000, usd("bank-a", "available"): 100_000,
    usd("card-acq", "available"): 100_000,
}


def test_failover_to_the_next_rail_with_bounded_attempts(
    store: LedgerStore, ledger: Ledger, clock: ManualClock
) -> None:
    w = wire(store, ledger, clock, priority=["rtp", "bank-a", "card-acq"], dispatch=NOW)
    funded_three(w)
    p = w.one(payout(10_000))
    assert (p.channel, p.fee_minor) == ("rtp", 45)
    w.tick()
    assert w.rail("rtp").sent() == [p.id]
    lit(w, {**THREE_FUNDED, usd("rtp", "available"): 89_955, usd("rtp", "in_transit"): 10_045})

    w.rail("rtp").report(p.id, O.FAILED, reason="AC04 closed account number")
    report = w.tick()
    assert report.failovers == 1
    now = w.get(p.id)
    assert (now.state, now.channel, now.fee_minor) == (S.SUBMITTED, "bank-a", 30)
    assert w.rail("bank-a").sent() == [p.id]  # approved, queued and sent in the same tick
    lit(w, {**THREE_FUNDED, usd("bank-a", "available"): 89_970,
            usd("bank-a", "in_transit"): 10_030})

    w.rail("bank-a").report(p.id, O.FAILED)
    w.tick()
    now = w.get(p.id)
    assert (now.state, now.channel, now.fee_minor) == (S.SUBMITTED, "card-acq", 55)
    lit(w, {**THREE_FUNDED, usd("card-acq", "available"): 89_945,
            usd("card-acq", "in_transit"): 10_055})

    w.rail("card-acq").report(p.id, O.FAILED)
    report = w.tick()
    assert report.failovers == 0
    assert w.state(p.id) is S.FAILED  # three attempts, the policy's maximum
    lit(w, THREE_FUNDED)
    events = w.service.events(p.id)
    assert [e.action for e in events] == [
        A.CREATE, A.SCREEN, A.ROUTE, A.APPROVE, A.SUBMIT,
        A.RETRY, A.ROUTE, A.APPROVE, A.SUBMIT,
        A.RETRY, A.ROUTE, A.APPROVE, A.SUBMIT,
        A.FAIL,
    ]
    assert [e.reason for e in events if e.action is A.RETRY] == [
        "failover to bank-a", "failover to card-acq",
    ]
    assert events[-1].reason == "failed on every rail tried"
    routes = w.routes(p.id)
    assert [(r.attempt, r.channel, r.strategy) for r in routes] == [
        (1, "rtp", "fixed"), (2, "bank-a", "fixed"), (3, "card-acq", "fixed"),
    ]
    assert all(r.batch_id is not None for r in routes)
    excluded = [
        sorted(c.channel for c in RoutingDecision.from_dict(r.decision).candidates
               if c.reason == "excluded")
        for r in routes
    ]
    assert excluded == [["book"], ["book", "rtp"], ["bank-a", "book", "rtp"]]
    for r in routes:
        assert RoutingDecision.from_dict(r.decision).to_dict() == r.decision
    assert [(o.channel, o.kind, o.disposition) for o in w.outcomes(p.id)] == [
        ("rtp", "failed", "applied"), ("bank-a", "failed", "applied"),
        ("card-acq", "failed", "applied"),
    ]
    # The old attempts' rails speak up again: nothing moves. A clearing notice is stale; a
    # settlement on a rail failed over from is an anomaly (money may have left twice).
    w.rail("rtp").report(p.id, O.SETTLED)
    w.rail("bank-a").report(p.id, O.CLEARED)
    report = w.tick()
    assert report.outcomes == {"anomaly": 1, "stale": 1}
    assert w.state(p.id) is S.FAILED
    lit(w, THREE_FUNDED)
    assert verify(store).ok


def test_max_attempts_bounds_the_failovers(
    store: LedgerStore, ledger: Ledger, clock: ManualClock
) -> None:
    w = wire(store, ledger, clock, priority=["rtp", "bank-a", "card-acq"], dispatch=NOW,
             routing=RoutingPolicy(hedge_share=0.0, max_attempts=2))
    funded_three(w)
    p = w.one(payout(10_000))
    w.tick()
    w.rail("rtp").report(p.id, O.FAILED)
    w.tick()
    w.rail("bank-a").report(p.id, O.FAILED)
    w.tick()
    assert w.state(p.id) is S.FAILED
    assert [r.channel for r in w.routes(p.id)] == ["rtp", "bank-a"]
    assert w.rail("card-acq").taken == []
    lit(w, THREE_FUNDED)


def test_no_rail_left_fails_the_payment(
    store: LedgerStore, ledger: Ledger, clock: ManualClock
) -> None:
    w = wire(store, ledger, clock, priority=["rtp", "bank-a", "card-acq"], dispatch=NOW)
    w.fund("rtp", "USD", 100_000)
    p = w.one(payout(10_000))
    w.tick()
    w.rail("rtp").report(p.id, O.FAILED)
    report = w.tick()
    assert report.failovers == 0
    assert w.state(p.id) is S.FAILED
    routes = w.routes(p.id)
    assert [(r.attempt, r.channel) for r in routes] == [(1, "rtp"), (2, None)]
    assert routes[1].decision["reason"] == "no_eligible_channel"
    lit(w, {wusd("rtp"): -100_000, usd("rtp", "available"): 100_000})


def test_a_named_rail_is_not_failed_over(
    store: LedgerStore, ledger: Ledger, clock: ManualClock
) -> None:
    w = wire(store, ledger, clock, priority=["bank-a", "rtp", "card-acq"], dispatch=NOW)
    funded_three(w)
    p = w.one(payout(10_000, channel="rtp"))
    assert (p.channel, p.fee_minor) == ("rtp", 45)
    (route,) = w.routes(p.id)
    assert (route.strategy, route.decision) == (
        "given", {"strategy": "given", "channel": "rtp", "fee_minor": 45}
    )
    w.tick()
    w.rail("rtp").report(p.id, O.FAILED)
    report = w.tick()
    assert report.failovers == 0
    assert w.state(p.id) is S.FAILED
    assert len(w.routes(p.id)) == 1
    assert w.rail("bank-a").taken == []
    assert w.rail("card-acq").taken == []
    lit(w, THREE_FUNDED)


def test_a_cooling_down_rail_is_skipped(
    store: LedgerStore, ledger: Ledger, clock: ManualClock
) -> None:
    # One failure trips the breaker; it resumes once drained below 0.5 (5 s at 0.1 a second).
    policy = RoutingPolicy(hedge_share=0.0, cooldown_capacity=1.0, cooldown_resume_level=0.5,
                           cooldown_leak_per_second=0.1)
    w = wire(store, ledger, clock, priority=["rtp", "bank-a"], routing=policy, dispatch=NOW)
    funded_three(w)
    first = w.one(payout(10_000))
    assert first.channel == "rtp"
    w.tick()
    w.rail("rtp").report(first.id, O.FAILED, at_us=clock.now_us())
    w.tick()
    assert w.get(first.id).channel == "bank-a"
    (second,) = w.intake(payout(10_000))
    assert isinstance(second.outcome, Payment)
    assert second.outcome.channel == "bank-a"
    assert second.route is not None
    assert reasons(second.route)["rtp"] == "cooling_down"
    clock.advance(seconds=10)
    third = w.one(payout(10_000))
    assert third.channel == "rtp"


def test_the_router_learns_from_what_the_rails_report(
    store: LedgerStore, ledger: Ledger, clock: ManualClock
) -> None:
    # No breaker here: what moves the choice is the learned success rate alone.
    policy = RoutingPolicy(hedge_share=0.0, cooldown_capacity=1_000.0,
                           cooldown_resume_level=1.0)
    rails = scripted(CONFIG, ("rtp", "bank-a", "book"))
    w = wire(store, ledger, clock, rails=rails, learned=True, routing=policy, dispatch=NOW)
    w.fund("rtp", "USD", 10_000_000)
    w.fund("bank-a", "USD", 10_000_000)
    first_choices: list[str | None] = []
    for _ in range(40):
        p = w.one(payout(10_000))
        first_choices.append(p.channel)
        w.tick()
        if p.channel == "bank-a":  # bank-a claims 99 % and fails every one
            w.rail("bank-a").report(p.id, O.FAILED, at_us=clock.now_us())
            w.tick()
        w.rail("rtp").report(p.id, O.SETTLED, at_us=clock.now_us())
        w.tick()
        assert (w.state(p.id), w.get(p.id).channel) == (S.SETTLED, "rtp")
    # bank-a is cheaper (0.30 against 0.45) and first; as its failures add up it is tried
    # less and less (Thompson sampling still tries it now and then: it might have recovered).
    assert first_choices[:5] == ["bank-a"] * 5
    assert first_choices[-10:].count("bank-a") <= 2
    failures = first_choices.count("bank-a")
    router = w.router
    assert isinstance(router, Router)
    assert router.outcomes("bank-a", "USD") == (0.0, float(failures))
    assert router.outcomes("rtp", "USD") == (40.0, 0.0)


def test_a_refused_batch_fails_at_the_next_tick_and_fails_over(
    store: LedgerStore, ledger: Ledger, clock: ManualClock
) -> None:
    w = wire(store, ledger, clock, priority=["rtp", "bank-a"], dispatch=NOW)
    funded_three(w)
    p = w.one(payout(10_000))
    w.rail("rtp").refusing = "closed"
    report = w.tick()
    assert (report.refused, report.batches, report.submitted) == (1, 0, 0)
    # Committed first, then refused: in transit until the refusal is handled.
    assert w.state(p.id) is S.SUBMITTED
    w.rail("rtp").refusing = None
    report = w.tick()
    assert report.failovers == 1
    assert (w.state(p.id), w.get(p.id).channel) == (S.SUBMITTED, "bank-a")
    (record,) = w.outcomes(p.id)
    assert (record.channel, record.kind, record.disposition) == ("rtp", "failed", "applied")
    assert record.detail is not None
    assert record.detail.startswith("channel_refused")
    (refused,) = [b for b in w.dispatcher.reads.batches(channel="rtp")]
    assert (refused.status, refused.rail_ref, refused.items, refused.fee_minor) == (
        "refused", None, 1, 0
    )
    w.rail("bank-a").report(p.id, O.SETTLED)
    w.tick()
    assert w.state(p.id) is S.SETTLED
    lit(w, {**THREE_FUNDED, wusd("bank-a"): -90_000, usd("bank-a", "available"): 89_970,
            usd("bank-a", "fees"): 30})


# --- what the rails report -----------------------------------------------------------------------


def test_deposits_clear_and_settle_from_the_rails_reports(
    store: LedgerStore, ledger: Ledger, clock: ManualClock
) -> None:
    w = wire(store, ledger, clock)
    card = w.rail("card-acq")
    # 2,000,250 x 180 / 10,000 = 36,004.5 -> 36,004 (half to even)
    first = w.one(deposit(2_000_250))
    assert (first.state, first.fee_minor) == (S.SCREENED, 36_004)
    assert card.sent(Direction.INBOUND) == [first.id]  # the rail is told to expect it
    card.report(first.id, O.CLEARED)
    w.tick()
    assert w.state(first.id) is S.CLEARED
    lit(w, {wusd("card-acq"): -2_000_250, usd("card-acq", "pending_settlement"): 2_000_250})
    card.report(first.id, O.SETTLED)
    w.tick()
    assert w.state(first.id) is S.SETTLED
    lit(w, {wusd("card-acq"): -2_000_250, usd("card-acq", "available"): 1_964_246,
            usd("card-acq", "fees"): 36_004})

    # Settled before its clearing notice: the settlement implies the clearing; the notice that
    # follows is late.
    second = w.one(deposit(10_000))  # 180 bps: 180
    card.report(second.id, O.SETTLED)
    w.tick()
    assert w.actions(second.id)[-2:] == [A.CLEAR, A.SETTLE]
    card.report(second.id, O.CLEARED)
    report = w.tick()
    assert report.outcomes == {"late": 1}
    assert w.state(second.id) is S.SETTLED

    # Returned before it settled; then a failure notice for it, which is already past.
    third = w.one(deposit(5_000))
    card.report(third.id, O.RETURNED)
    card.report(third.id, O.FAILED)
    report = w.tick()
    assert report.outcomes == {"applied": 1, "late": 1}
    assert w.actions(third.id)[-2:] == [A.CLEAR, A.RETURN]
    assert w.state(third.id) is S.RETURNED

    # One that never arrived.
    fourth = w.one(deposit(7_000))
    card.report(fourth.id, O.FAILED, reason="05 do not honour")
    w.tick()
    assert w.state(fourth.id) is S.FAILED
    assert w.service.events(fourth.id)[-1].reason == "05 do not honour"

    lit(w, {wusd("card-acq"): -2_010_250, usd("card-acq", "available"): 1_974_066,
            usd("card-acq", "fees"): 36_184})
    assert [(o.kind, o.disposition) for o in w.outcomes(second.id)] == [
        ("settled", "applied"), ("cleared", "late"),
    ]
    assert verify(store).ok


def test_duplicates_stale_late_and_contradictions_change_nothing(
    store: LedgerStore, ledger: Ledger, clock: ManualClock
) -> None:
    w = wire(store, ledger, clock, priority=["rtp", "bank-a"], dispatch=NOW)
    funded_three(w)
    p = w.one(payout(10_000))
    w.tick()
    rtp = w.rail("rtp")
    settled = rtp.report(p.id, O.SETTLED)
    rtp.again(settled)  # the same outcome twice in one poll
    report = w.tick()
    assert report.outcomes == {"applied": 1, "duplicate": 1}
    rtp.again(settled)  # and again, a tick later
    rtp.report(p.id, O.CLEARED)  # a clearing notice after the settlement
    rtp.report(p.id, O.FAILED)  # a contradiction
    w.rail("bank-a").report(p.id, O.SETTLED)  # a rail that never had it
    rtp.report("0190aaaa-0000-7000-8000-000000000000", O.SETTLED)  # no such payment
    report = w.tick()
    assert report.outcomes == {"duplicate": 1, "late": 1, "anomaly": 3}
    assert w.state(p.id) is S.SETTLED
    lit(w, {**THREE_FUNDED, wusd("rtp"): -90_000, usd("rtp", "available"): 89_955,
            usd("rtp", "fees"): 45})
    records = w.outcomes(p.id)
    # Each outcome is recorded once, by (channel, outcome id), with what was made of it.
    assert sorted((o.channel, o.kind, o.disposition) for o in records) == [
        ("bank-a", "settled", "anomaly"),  # a rail that never had it says it paid
        ("rtp", "cleared", "late"),
        ("rtp", "failed", "anomaly"),
        ("rtp", "settled", "applied"),
    ]
    assert w.count("channel_outcomes") == 5
    assert verify(store).ok


def test_a_rail_that_never_answers_leaves_the_payment_in_transit_reported_stuck(
    store: LedgerStore, ledger: Ledger, clock: ManualClock
) -> None:
    w = wire(store, ledger, clock, priority=["rtp", "bank-a"],
             dispatch=DispatchPolicy(batch_age_us=0, stuck_after_us=60 * US))
    funded_three(w)
    p = w.one(payout(10_000))
    w.tick()
    assert w.tick(seconds=60).stuck == 0
    report = w.tick(seconds=1)  # a timeout: reported, never failed (the rail may still pay)
    assert (report.stuck, report.failovers) == (1, 0)
    assert w.state(p.id) is S.SUBMITTED
    assert w.rail("bank-a").taken == []
    w.rail("rtp").report(p.id, O.SETTLED)  # it was only slow
    assert w.tick().stuck == 0
    assert w.state(p.id) is S.SETTLED


def test_a_tick_that_fails_to_commit_loses_no_outcome(
    store: LedgerStore, ledger: Ledger, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = wire(store, ledger, clock, priority=["rtp"], dispatch=NOW)
    w.fund("rtp", "USD", 100_000)
    p = w.one(payout(10_000))
    w.tick()
    w.rail("rtp").report(p.id, O.SETTLED)
    from fundpool.stores import dispatch_sql

    original = dispatch_sql.DispatchWrites.add_outcomes

    def broken(self: Any, outcomes: Any) -> None:
        raise RuntimeError("the database went away")

    monkeypatch.setattr(dispatch_sql.DispatchWrites, "add_outcomes", broken)
    with pytest.raises(RuntimeError):
        w.tick()
    assert w.state(p.id) is S.SUBMITTED  # nothing of that tick was written
    monkeypatch.setattr(dispatch_sql.DispatchWrites, "add_outcomes", original)
    w.tick()  # the rail will not say it again; the dispatcher kept it
    assert w.state(p.id) is S.SETTLED
    assert [(o.kind, o.disposition) for o in w.outcomes(p.id)] == [("settled", "applied")]


# --- restarts ------------------------------------------------------------------------------------


def test_a_new_dispatcher_finds_approved_payments_again(
    store: LedgerStore, ledger: Ledger, clock: ManualClock
) -> None:
    w = wire(store, ledger, clock, priority=["rtp", "bank-a"])
    funded_three(w, 2_000_000)
    queued = w.one(payout(10_000))
    waiting = w.one(payout(1_000_000))  # at the threshold: waits for an approver
    assert (queued.state, waiting.state) == (S.APPROVED, S.PENDING_APPROVAL)
    first = w.dispatcher
    # The process stops before its first tick; another starts on the same store.
    second = w.restart(scripted(CONFIG))
    report = w.tick()
    assert report.submitted == 1
    assert w.rail("rtp").sent() == [queued.id]
    assert w.state(queued.id) is S.SUBMITTED
    # An approver's decision made through another process is found at the next rescan.
    first.approve([waiting.id])
    w.tick(seconds=1)
    assert w.rail("rtp").sent() == [queued.id]
    w.tick(seconds=5)
    assert w.rail("rtp").sent() == [queued.id, waiting.id]
    # Attempts go on counting from what is stored.
    w.rail("rtp").report(waiting.id, O.FAILED)
    w.tick()
    assert [(r.attempt, r.channel) for r in w.routes(waiting.id)] == [(1, "rtp"), (2, "bank-a")]
    assert w.get(waiting.id).state is S.PENDING_APPROVAL  # a new rail needs a new approval
    second.approve([waiting.id])
    w.tick(seconds=2)
    assert w.rail("bank-a").sent() == [waiting.id]


# --- intake: all or nothing, idempotency, bad input ----------------------------------------------


def nothing_created(w: Wired, head: Any) -> None:
    assert w.service.list(limit=100) == []
    assert w.ledger.head() == head
    assert w.count("payment_routes") == 0
    assert w.dispatcher.queued() == 0
    assert all(not rail.taken and not rail.refused for rail in w.rails.values())


def test_an_atomic_intake_creates_everything_or_nothing(
    store: LedgerStore, ledger: Ledger, clock: ManualClock
) -> None:
    w = wire(store, ledger, clock, priority=["rtp", "bank-a"])
    w.fund("rtp", "USD", 100_000)
    # Enough USD in the pool for creation (which checks the pool's available funds), but on
    # the card acquirer, which the router does not send payouts to: no rail can take item 2.
    w.fund("card-acq", "USD", 1_000_000)
    head = w.ledger.head()
    with pytest.raises(IntakeRefused) as caught:
        w.intake(deposit(10_000), payout(10_000), payout(1_000_000), atomic=True)
    assert caught.value.code == "intake_refused"
    assert caught.value.facts == {"item": 2, "reason": "no_eligible_channel"}
    nothing_created(w, head)
    w.tick()
    nothing_created(w, head)
    with pytest.raises(IntakeRefused) as caught:
        w.intake(payout(10_000), payout(10_000, asset="GBP"), atomic=True)
    assert caught.value.facts == {"item": 1, "reason": "invalid_payment"}
    nothing_created(w, head)
    # All of it can go through: it does, in one piece.
    intakes = w.intake(deposit(10_000), payout(10_000), payout(20_000), atomic=True)
    assert [i.outcome.state for i in intakes if isinstance(i.outcome, Payment)] == [
        S.SCREENED, S.APPROVED, S.APPROVED,
    ]
    assert w.dispatcher.queued() == 2


def test_the_same_idempotency_key_creates_nothing_new(
    store: LedgerStore, ledger: Ledger, clock: ManualClock
) -> None:
    w = wire(store, ledger, clock, priority=["rtp"], dispatch=NOW)
    w.fund("rtp", "USD", 100_000)
    out = w.one(payout(10_000), "pay-1")
    came_in = w.one(deposit(20_000), "dep-1")
    balances = w.balances()
    out_again = w.one(payout(10_000), "pay-1")
    in_again = w.one(deposit(20_000), "dep-1")
    assert (out_again.id, in_again.id) == (out.id, came_in.id)
    assert w.balances() == balances
    assert len(w.service.list(limit=100)) == 2
    assert [len(w.routes(pid)) for pid in (out.id, came_in.id)] == [1, 0]
    assert w.actions(out.id) == [A.CREATE, A.SCREEN, A.ROUTE, A.APPROVE]
    w.tick()
    # Each went to its rail once, and the replays harmed neither.
    assert w.rail("rtp").sent() == [out.id]
    assert w.rail("card-acq").sent() == [came_in.id]
    w.tick()
    assert (w.state(out.id), w.state(came_in.id)) == (S.SUBMITTED, S.SCREENED)
    # Once it went out, replaying the key still sends nothing again.
    w.one(payout(10_000), "pay-1")
    w.tick()
    assert w.rail("rtp").sent() == [out.id]
    (conflict,) = w.intake((payout(10_001), "pay-1"))
    assert isinstance(conflict.outcome, FundpoolError)
    assert conflict.outcome.code == "idempotency_conflict"


def test_the_same_key_twice_in_one_call_is_one_payment_routed_once(
    store: LedgerStore, ledger: Ledger, clock: ManualClock
) -> None:
    w = wire(store, ledger, clock, priority=["rtp", "bank-a"], dispatch=NOW)
    w.fund("rtp", "USD", 15_000)  # room for one 100.00 payout, not two
    w.fund("bank-a", "USD", 15_000)
    intakes = w.intake((payout(10_000), "pay-1"), (payout(10_000), "pay-1"),
                       (deposit(5_000), "dep-1"), (deposit(5_000), "dep-1"), atomic=True)
    outcomes = [i.outcome for i in intakes]
    assert all(isinstance(o, Payment) for o in outcomes)
    assert [i.errors for i in intakes] == [()] * 4
    ids = [o.id for o in outcomes if isinstance(o, Payment)]
    assert ids[0] == ids[1]
    assert ids[2] == ids[3]
    assert len(w.service.list(limit=10)) == 2
    out = w.get(ids[0])
    assert (out.state, out.channel) == (S.APPROVED, "rtp")
    assert w.actions(out.id) == [A.CREATE, A.SCREEN, A.ROUTE, A.APPROVE]
    (route,) = w.routes(out.id)
    assert route.channel == "rtp"  # the decision stored is the one applied
    lit(w, {wusd("rtp"): -15_000, usd("rtp", "available"): 4_955, usd("rtp", "locked"): 10_045,
            wusd("bank-a"): -15_000, usd("bank-a", "available"): 15_000})
    assert w.rail("card-acq").sent() == [ids[2]]
    w.tick()
    assert w.rail("rtp").sent() == [out.id]


def test_a_deposit_on_a_closed_rail_is_announced_when_it_opens(
    store: LedgerStore, ledger: Ledger, clock: ManualClock
) -> None:
    config = config_with({"bank-a": {"simulation": {"failure_rate": 0, "return_rate": 0,
                                                    "latency_median_ms": 1_000}}})
    rail = SimulatedRail(config.channel("bank-a"), config.assets, seed=3)
    w = wire(store, ledger, clock, config=config, rails={"bank-a": rail})
    clock.set(SATURDAY_NOON_US)  # bank-a takes work mon-fri 00:00-21:00 UTC
    p = w.one(deposit(10_000, channel="bank-a"))
    assert rail.pending_count() == 0  # not told yet: it would refuse, which fails a deposit
    w.tick(seconds=60)
    assert w.state(p.id) is S.SCREENED
    clock.set(MONDAY_0H00M01S_US)
    w.tick(seconds=0)
    assert rail.pending_count() > 0
    for _ in range(100):
        if w.state(p.id) is S.SETTLED:
            break
        w.tick(seconds=60)
    assert w.state(p.id) is S.SETTLED
    lit(w, {wusd("bank-a"): -10_000, usd("bank-a", "available"): 10_000})


@pytest.mark.parametrize(
    ("request_", "code"),
    [
        (payout(10_000, channel="nope"), "invalid_payment"),  # no such channel
        (payout(10_000, asset="GBP"), "invalid_payment"),  # no such asset
        (payout(0), "invalid_payment"),
        (deposit(10_000, channel="sepa"), "invalid_payment"),  # sepa does not carry USD
        (payout(10_000, merchant="m42"), "invalid_payment"),  # a payout has no merchant
    ],
)
def test_bad_requests_are_refused_whole(
    store: LedgerStore, ledger: Ledger, clock: ManualClock, request_: PaymentRequest, code: str
) -> None:
    w = wire(store, ledger, clock)
    w.fund("rtp", "USD", 100_000)
    head = w.ledger.head()
    (intake,) = w.intake(request_)
    assert isinstance(intake.outcome, FundpoolError), intake.outcome
    assert intake.outcome.code == code
    assert intake.route is None
    nothing_created(w, head)


def rejected_cleanly(w: Wired, intake: Intake, reason: str, head: Any) -> Payment:
    """The payment exists, rejected with `reason`, and nothing moved or was queued."""
    p = intake.outcome
    assert isinstance(p, Payment), p
    assert p.state is S.REJECTED, (p.state, intake.errors)
    assert not intake.errors
    assert w.service.events(p.id)[-1].reason == reason
    assert w.ledger.head() == head
    assert w.dispatcher.queued() == 0
    w.tick()
    assert w.state(p.id) is S.REJECTED
    assert all(not rail.taken and not rail.refused for rail in w.rails.values())
    return p


def test_a_payout_larger_than_every_balance_is_rejected(
    store: LedgerStore, ledger: Ledger, clock: ManualClock
) -> None:
    w = wire(store, ledger, clock, priority=["rtp", "bank-a", "card-acq"])
    funded_three(w)
    head = w.ledger.head()
    # 1,000.00 on each rail; 999.55 + the 0.45 fee fits rtp exactly, one cent more fits none.
    (intake,) = w.intake(payout(99_956))
    p = rejected_cleanly(w, intake, "no_eligible_channel", head)
    assert intake.route is not None
    assert intake.route.channel is None
    assert reasons(intake.route) == {
        "rtp": "insufficient_liquidity", "bank-a": "insufficient_liquidity",
        "card-acq": "insufficient_liquidity", "book": "excluded",
    }
    assert w.routes(p.id)[0].decision == intake.route.decision
    # Above every rail's limit (rtp 1,000,000.00 at most, bank-a 5,000,000.00): none.
    w.fund("bank-a", "USD", 10**12)
    head = w.ledger.head()
    (intake,) = w.intake(payout(500_000_001))
    rejected_cleanly(w, intake, "no_eligible_channel", head)
    assert intake.route is not None
    assert reasons(intake.route)["bank-a"] == reasons(intake.route)["rtp"] == "above_maximum"
    (fits,) = w.intake(payout(99_955))
    assert isinstance(fits.outcome, Payment)
    assert (fits.outcome.state, fits.outcome.channel) == (S.APPROVED, "rtp")


@pytest.mark.parametrize(
    "request_",
    [
        # rtp takes 0.01 to 1,000,000.00; card-acq 0.50 to 50,000.00 (out and in)
        payout(100_000_001, channel="rtp"),
        payout(49, channel="card-acq"),
        deposit(5_000_001),
    ],
)
def test_an_amount_outside_the_named_channels_limits_is_refused_whole(
    store: LedgerStore, ledger: Ledger, clock: ManualClock, request_: PaymentRequest
) -> None:
    w = wire(store, ledger, clock, dispatch=NOW)
    funded_three(w)
    head = w.ledger.head()
    (intake,) = w.intake(request_)
    assert isinstance(intake.outcome, FundpoolError)
    assert intake.outcome.code == "amount_outside_limits"
    nothing_created(w, head)
    with pytest.raises(IntakeRefused) as caught:
        w.intake(payout(1_000), request_, atomic=True)
    assert caught.value.facts == {"item": 1, "reason": "amount_outside_limits"}
    nothing_created(w, head)


def test_a_payout_naming_the_book_rail_is_refused_and_nothing_is_created(
    store: LedgerStore, ledger: Ledger, clock: ManualClock
) -> None:
    """The pool's own books never pay the outside world: the payment service refuses it at
    creation, before the dispatcher sees it."""
    w = wire(store, ledger, clock, dispatch=NOW)
    w.fund("book", "USD", 100_000)
    head = w.ledger.head()
    (intake,) = w.intake(payout(1_000, channel="book"))
    assert isinstance(intake.outcome, FundpoolError)
    assert intake.outcome.code == "invalid_payment"
    assert intake.refusal == "invalid_payment"
    nothing_created(w, head)


class NarrowRail(ScriptedRail):
    """A rail whose own limits are narrower than the configuration's: 1.00 to 100.00."""

    def capabilities(self) -> Capabilities:
        caps = super().capabilities()
        return dataclasses.replace(caps, min_minor={"USD": 100}, max_minor={"USD": 10_000})


@pytest.mark.parametrize(
    ("request_", "reason"),
    [
        # What the rail itself says it takes, when it is narrower than the configuration.
        (payout(10_001, channel="rtp"), "above_maximum"),
        (payout(99, channel="rtp"), "below_minimum"),
        (deposit(10_001, channel="rtp"), "above_maximum"),
        # A named rail that does not hold enough.
        (payout(9_956, channel="rtp"), "insufficient_liquidity"),
    ],
)
def test_a_named_rail_that_cannot_carry_it_rejects_it_at_intake(
    store: LedgerStore, ledger: Ledger, clock: ManualClock, request_: PaymentRequest,
    reason: str,
) -> None:
    rails = scripted(CONFIG)
    rails["rtp"] = NarrowRail(CONFIG.channel("rtp"))
    w = wire(store, ledger, clock, rails=rails, dispatch=NOW)
    w.fund("rtp", "USD", 10_000)  # 99.55 + the 0.45 fee fits exactly
    w.fund("book", "USD", 100_000)
    # Creation checks the pool's USD over every payout rail: bank-a's lets a payout above
    # what rtp holds be created, so that the named rail is what refuses it.
    w.fund("bank-a", "USD", 10_000)
    head = w.ledger.head()
    (intake,) = w.intake(request_)
    rejected_cleanly(w, intake, reason, head)
    with pytest.raises(IntakeRefused) as caught:
        w.intake(payout(1_000), request_, atomic=True)
    assert caught.value.facts == {"item": 1, "reason": reason}
    assert w.one(payout(9_955, channel="rtp")).state is S.APPROVED


def test_a_named_channel_without_a_rail_is_rejected_at_intake(
    store: LedgerStore, ledger: Ledger, clock: ManualClock
) -> None:
    # The pool has bank-a, but this dispatcher has no rail for it.
    w = wire(store, ledger, clock, rails=scripted(CONFIG, ("rtp", "card-acq")))
    w.fund("bank-a", "USD", 100_000)
    head = w.ledger.head()
    (intake,) = w.intake(payout(1_000, channel="bank-a"))
    rejected_cleanly(w, intake, "no_rail", head)
    (intake,) = w.intake(deposit(1_000, channel="bank-a"))
    rejected_cleanly(w, intake, "no_rail", head)


def test_a_deposit_and_a_payout_on_one_asset_without_routes(
    store: LedgerStore, ledger: Ledger, clock: ManualClock
) -> None:
    """EUR has one rail (sepa): a deposit there funds a payout there."""
    w = wire(store, ledger, clock, rails=scripted(CONFIG, ("sepa", "book")), dispatch=NOW)
    came_in = w.one(deposit(50_000, channel="sepa", asset="EUR"))
    w.rail("sepa").report(came_in.id, O.SETTLED)
    w.tick()
    (too_soon,) = w.intake(payout(49_981, asset="EUR"))  # + 0.20 is 500.01: one cent short
    assert isinstance(too_soon.outcome, Payment)
    assert too_soon.outcome.state is S.REJECTED
    out = w.one(payout(49_980, asset="EUR"))
    assert (out.channel, out.fee_minor) == ("sepa", 20)
    w.tick()
    w.rail("sepa").report(out.id, O.SETTLED)
    w.tick()
    assert w.balances() == {
        (world("sepa"), "EUR"): -50_000 + 49_980,
        (acct("sepa", "EUR", "fees"), "EUR"): 20,
    }
