"""The dispatcher under any sequence of channel outcomes (SQLite).

A stateful test drives a real dispatcher, payment service, ledger and learning router with
payouts, deposits (some paid to merchants, advanced under small caps) and transfers between
the pool's rails, and with rails scripted by the test: each outcome is delivered when the test
says, as often as it says, from whichever rail it says. So the rails send duplicates (the same
outcome id again), clearing notices after settlements, settlements before clearing notices,
returns before settlements, failures after settlements (contradictions), outcomes of attempts
that were failed over, outcomes for payments that do not exist; they refuse submissions; and
some outcomes never come (timeouts). The dispatcher restarts now and then, losing what it kept
in memory.

The test's own model, written from the docstrings of payments/dispatch/ and
payments/model.py, says what each delivery must be (applied, duplicate, stale, late, anomaly)
and what state each payment must reach. After every step:

- every asset's balances sum to zero over all accounts; no pool account is negative;
- every pool account, merchant payable and exposure memo holds exactly what the payments'
  states imply (a model independent of the posting code: a payout in transit holds its gross
  in transit on its current rail, a settled one has paid it out, a failed one holds nothing...),
  so funds are never both released and settled, nor released twice;
- each payment's state is legal for its kind and, once terminal, never changes;
- every outcome delivered is recorded once per (channel, outcome id) with its disposition;
- after a tick, nothing approved is left unsent;
- the journal verifies (every few steps, and at the end).

At the end every payment still open is approved if it waits for an approver, its rail says it
settled, and it must end settled or terminal, consistent with what its rails said; its events
never show a settlement beside a failure or cancellation after its last retry.

A second test runs the real simulated rails with every chaos knob turned up, through many
ticks of the traffic simulator, under the same invariants.
"""

from __future__ import annotations

import functools
import itertools
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

import fundpool.stores
from fundpool import compose
from fundpool.channels.ports import ChannelOutcome, Instruction, OutcomeKind
from fundpool.channels.simulated import ChannelRefused, SimulatedRail
from fundpool.core.clock import ManualClock, Uuid7Ids
from fundpool.core.errors import FundpoolError
from fundpool.core.ledger.model import Posting
from fundpool.core.money import AMOUNT_MAX_MINOR
from fundpool.ledger.service import Ledger
from fundpool.ledger.verify import verify
from fundpool.payments.dispatch import Dispatcher, DispatchPolicy, IntakeRefused
from fundpool.payments.instant import MERCHANT_KEY
from fundpool.payments.model import (
    Action,
    Payment,
    PaymentKind,
    PaymentRequest,
    PaymentState,
)
from fundpool.payments.service import PaymentService
from fundpool.pool.accounts import (
    exposure_merchant,
    exposure_source,
    exposure_total,
    merchant_payable,
)
from fundpool.pool.setup import init_pool
from fundpool.routing.policy import RoutingPolicy
from fundpool.routing.router import Router
from fundpool.sim.treasury import opening_float_minor
from fundpool.stores.dispatch_sql import SqlDispatchRecords
from fundpool.stores.sqlite import SqliteStore
from tests.conftest import DEEP_PROPERTIES
from tests.payments.test_dispatch import ScriptedRail, config_with, example_document
from tests.payments.test_lifecycle import TERMINAL, acct, ledger_balances, legal_target, world

K = PaymentKind
S = PaymentState
A = Action
O = OutcomeKind  # noqa: E741 - the rail's word for what happened

CONFIG = config_with(pool={
    "instant_settlement": {"USD": {"pool_cap": "1500.00", "merchant_cap": "1000.00"}},
    "approval_thresholds": {"USD": "2000.00"},
})
POOL = CONFIG.pool("main")
RAILS = ("rtp", "bank-a", "card-acq", "book")
SENDING = ("rtp", "bank-a", "card-acq")
MERCHANTS = ("m42", "m77")
THRESHOLD = 200_000  # USD 2,000.00: a payout from here waits for an approver
MAX_ATTEMPTS = 3  # the routing policy's default
DISPOSITIONS = {"applied", "stale", "late", "anomaly"}  # stored ones; duplicates are counted
DRAIN_ROUNDS_MAX = 12
VERIFY_EVERY = 6
NO_SUCH_PAYMENT = "0190aaaa-0000-7000-8000-000000000000"

IN_STATES = {S.INITIATED, S.SCREENED, S.HELD, S.CLEARED, S.SETTLED, S.REJECTED, S.FAILED,
             S.RETURNED, S.REVERSED}
OUT_STATES = set(S) - {S.REVERSED}


def final(state: PaymentState) -> bool:
    return state in TERMINAL or state is S.SETTLED


# --- the test's reading of what an outcome means (payments/dispatch/outcomes.py's docstring) -


def reading(kind: PaymentKind, state: PaymentState,
            outcome: OutcomeKind) -> tuple[str, tuple[Action, ...]]:
    """The disposition of an outcome from a payment's current rail, and the steps it implies.

    A notice the payment is already past is late; one that skips ahead implies what it skips;
    a failure after a settlement (or a settlement after a failure) is a contradiction. A
    clearing notice is never a contradiction: it only says the rail took the payment."""
    applied, late, anomaly = "applied", ("late", ()), ("anomaly", ())
    if kind is K.DEPOSIT:
        table: dict[OutcomeKind, dict[PaymentState, tuple[Action, ...]]] = {
            O.CLEARED: {S.SCREENED: (A.CLEAR,)},
            O.SETTLED: {S.SCREENED: (A.CLEAR, A.SETTLE), S.CLEARED: (A.SETTLE,)},
            O.FAILED: {S.SCREENED: (A.FAIL,), S.CLEARED: (A.RETURN,)},
            O.RETURNED: {S.SCREENED: (A.CLEAR, A.RETURN), S.CLEARED: (A.RETURN,),
                         S.SETTLED: (A.REVERSE,)},
        }
        past = {
            O.CLEARED: {S.CLEARED, S.SETTLED, S.RETURNED, S.REVERSED, S.FAILED},
            O.SETTLED: {S.SETTLED, S.REVERSED},
            O.FAILED: {S.FAILED, S.RETURNED},
            O.RETURNED: {S.RETURNED, S.REVERSED},
        }
    else:
        table = {
            O.CLEARED: {S.SUBMITTED: (A.CLEAR,)},
            O.SETTLED: {S.SUBMITTED: (A.SETTLE,), S.CLEARED: (A.SETTLE,)},
            O.FAILED: {S.SUBMITTED: (A.FAIL,), S.CLEARED: (A.FAIL,)},
            O.RETURNED: {} if kind.between_channels else {
                S.SETTLED: (A.RETURN,), S.SUBMITTED: (A.SETTLE, A.RETURN),
                S.CLEARED: (A.SETTLE, A.RETURN),
            },
        }
        past = {
            O.CLEARED: {S.CLEARED, S.SETTLED, S.RETURNED, S.FAILED},
            O.SETTLED: {S.SETTLED, S.RETURNED},
            O.FAILED: {S.FAILED},
            O.RETURNED: set() if kind.between_channels else {S.RETURNED},
        }
    actions = table[outcome].get(state)
    if actions is not None:
        return applied, actions
    return late if state in past[outcome] else anomaly


# --- the books the payments' states imply ------------------------------------------------------


@dataclass
class Tracked:
    id: str
    kind: PaymentKind
    amount: int
    asset: str
    merchant: str | None
    named: bool
    state: PaymentState
    channel: str | None
    destination: str | None
    fee: int
    tried: list[str] = field(default_factory=list)  # channels of its stored routes
    attempts: int = 0  # its stored routes
    advanced: bool | None = None  # known once it cleared (merchant deposits)
    outcomes: list[ChannelOutcome] = field(default_factory=list)


def implied_books(
    tracked: Iterable[Tracked], funded: Counter[tuple[str, str]]
) -> dict[tuple[str, str], int]:
    """Every balance the payments' states imply, written from the posting table of
    payments/model.py and the docstring of payments/instant.py, as each state's net effect.
    `funded` is what was put on each (channel, asset) from outside; `merchant` is set only for
    deposits whose asset has instant settlement."""
    books: Counter[tuple[str, str]] = Counter()
    for (channel, asset), amount in funded.items():
        books[world(channel), asset] -= amount
        books[acct(channel, asset, "available"), asset] += amount
    for t in tracked:
        a, f, asset = t.amount, t.fee, t.asset

        def at(channel: str, state: str) -> tuple[str, str]:
            return (acct(channel, asset, state), asset)  # noqa: B023 - used at once

        if t.kind is K.DEPOSIT:
            ch = t.channel or ""
            n = a - f
            if t.state in (S.CLEARED, S.SETTLED):
                books[world(ch), asset] -= a
            if t.state is S.CLEARED:
                books[at(ch, "pending_settlement")] += a
                if t.advanced:
                    owner = t.merchant or ""
                    books[at(ch, "available")] -= n
                    books[merchant_payable(owner, asset), asset] += n
                    books[exposure_total("main", asset), asset] += n
                    books[exposure_merchant("main", asset, owner), asset] += n
                    books[exposure_source("main", asset), asset] -= 2 * n
            elif t.state is S.SETTLED:
                books[at(ch, "fees")] += f
                if t.merchant is None:
                    books[at(ch, "available")] += n
                else:  # advanced and repaid, or credited now: the merchant has it either way
                    books[merchant_payable(t.merchant, asset), asset] += n
            continue
        if t.channel is None:
            continue
        ch, gross = t.channel, a + f
        if t.state is S.APPROVED:
            books[at(ch, "available")] -= gross
            books[at(ch, "locked")] += gross
        elif t.state in (S.SUBMITTED, S.CLEARED):
            books[at(ch, "available")] -= gross
            books[at(ch, "in_transit")] += gross
        elif t.state is S.SETTLED:
            books[at(ch, "available")] -= gross
            books[at(ch, "fees")] += f
            if t.kind is K.PAYOUT:
                books[world(ch), asset] += a
            else:  # a transfer between the pool's rails arrives on its destination
                books[at(t.destination or "", "available")] += a
        elif t.state is S.RETURNED:
            books[at(ch, "available")] -= f
            books[at(ch, "fees")] += f
    return {key: n for key, n in books.items() if n != 0}


def cleared_with_advance(
    service: PaymentService, ledger: Ledger, payment_id: str, owner: str, asset: str
) -> bool | None:
    """Did a deposit's clear credit its merchant? (from the ledger: an entry of its clear event
    that pays the merchant's payable); None when it never cleared."""
    payable = merchant_payable(owner, asset)
    for happened in service.events(payment_id):
        if happened.action is A.CLEAR:
            for entry_id in happened.entry_ids:
                entry = ledger.entry(entry_id)
                assert entry is not None
                postings: list[dict[str, Any]] = entry.body["postings"]  # type: ignore[assignment]
                if any(posting["destination"] == payable for posting in postings):
                    return True
            return False
    return None


# --- the rails and their log -------------------------------------------------------------------

Sent = tuple[str, int, tuple[Instruction, ...], bool]  # channel, at, instructions, taken


class LoggedRail(ScriptedRail):
    """A scripted rail that also writes every submission, taken or refused, to a log shared by
    all rails: the order of refusals across rails is the order the dispatcher sees them in."""

    def __init__(self, channel: Any, log: list[Sent]) -> None:
        super().__init__(channel)
        self.log = log

    def submit(self, instructions: Sequence[Instruction], at_us: int) -> Any:
        try:
            submission = super().submit(instructions, at_us)
        except ChannelRefused:
            self.log.append((self.id, at_us, tuple(instructions), False))
            raise
        self.log.append((self.id, at_us, tuple(instructions), True))
        return submission


@st.composite
def requests(draw: st.DrawFn) -> PaymentRequest:
    kind = draw(st.sampled_from(["payout", "payout", "payout", "deposit", "deposit", "internal"]))
    if kind == "payout":
        channel = draw(st.sampled_from([None, None, *SENDING]))
        amount = draw(st.one_of(st.integers(100, 300_000), st.just(THRESHOLD),
                                st.just(THRESHOLD - 1)))
        return PaymentRequest(K.PAYOUT, "USD", amount, channel, counterparty="payee")
    if kind == "deposit":
        merchant = draw(st.sampled_from([None, *MERCHANTS]))
        return PaymentRequest(
            K.DEPOSIT, "USD", draw(st.integers(100, 150_000)), draw(st.sampled_from(SENDING)),
            counterparty="payer", metadata={MERCHANT_KEY: merchant} if merchant else {},
        )
    source, destination = draw(st.permutations(SENDING))[:2]
    return PaymentRequest(K.INTERNAL, "USD", draw(st.integers(100, 200_000)), source,
                          destination)


F = TypeVar("F", bound=Callable[..., Any])


def step(method: F) -> F:
    """A rule or an invariant: the end-of-run drain only runs if every one finished (after a
    failure it would only add errors to the report)."""

    @functools.wraps(method)
    def run(self: DispatchMachine, *args: Any, **kwargs: Any) -> Any:
        self.healthy = False
        result = method(self, *args, **kwargs)
        self.healthy = True
        return result

    return run  # type: ignore[return-value]


def funds_for(request: PaymentRequest, available: Mapping[str, int]) -> int:
    """What the pool holds for a request at creation: a payout's asset on every rail that
    pays out (not the book), a transfer's on its source; a deposit needs nothing."""
    if request.kind is K.DEPOSIT:
        return AMOUNT_MAX_MINOR
    if request.kind is K.PAYOUT:
        return sum(available[c] for c in SENDING)
    return available[request.channel] if request.channel is not None else AMOUNT_MAX_MINOR


class DispatchMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.directory = tempfile.mkdtemp(prefix="fundpool-dispatch-")
        self.store = SqliteStore(Path(self.directory) / "ledger.sqlite3")
        self.store.initialise()
        self.clock = ManualClock()
        self.ledger = Ledger(self.store, self.clock, Uuid7Ids.seeded(7))
        init_pool(self.ledger, CONFIG)
        self.log: list[Sent] = []
        self.log_read = 0
        self.rails = {c: LoggedRail(CONFIG.channel(c), self.log) for c in RAILS}
        self.restarts = 0
        self.start_dispatcher()
        self.tracked: dict[str, Tracked] = {}
        self.funded: Counter[tuple[str, str]] = Counter()
        self.recorded: dict[tuple[str, str], str] = {}  # outcome -> its first disposition
        self.refusals: list[ChannelOutcome] = []  # in the dispatcher's inbox, for next tick
        self.serial = 0
        self.steps = 0
        self.healthy = True

    def start_dispatcher(self) -> None:
        ids = Uuid7Ids.seeded(100 + self.restarts)
        self.service = PaymentService(
            self.ledger, fundpool.stores.payment_store(self.store), CONFIG, POOL, ids
        )
        self.router = Router(list(self.rails.values()), policy=RoutingPolicy(),
                             seed=self.restarts)
        self.dispatcher = Dispatcher(self.service, self.rails, self.router, self.clock, ids,
                                     records=SqlDispatchRecords(self.store),
                                     policy=DispatchPolicy(batch_age_us=0))

    # --- what the test does to the world ------------------------------------------------------

    def fund(self, channel: str, amount: int) -> None:
        self.ledger.transfer(
            [Posting(world(channel), acct(channel, "USD", "available"), "USD", amount)]
        )
        self.funded[channel, "USD"] += amount

    @initialize(funds=st.lists(st.integers(1, 12), min_size=3, max_size=3))
    @step
    def start(self, funds: list[int]) -> None:
        for channel, units in zip(SENDING, funds, strict=True):
            self.fund(channel, units * 50_000)

    @rule(channel=st.sampled_from(SENDING), units=st.integers(1, 6))
    @step
    def top_up(self, channel: str, units: int) -> None:
        self.fund(channel, units * 50_000)

    @rule(channel=st.sampled_from(SENDING), share=st.sampled_from([50, 90, 100]))
    @step
    def sweep(self, channel: str, share: int) -> None:
        """The treasury moves most of a rail's available elsewhere (what a deposit brought in
        may be gone when the deposit is undone)."""
        available = self.ledger.balance(acct(channel, "USD", "available"), "USD").available
        amount = available * share // 100
        if amount > 0:
            self.ledger.transfer(
                [Posting(acct(channel, "USD", "available"), world(channel), "USD", amount)]
            )
            self.funded[channel, "USD"] -= amount

    @initialize(first=st.lists(requests(), min_size=1, max_size=4))
    @step
    def first_payments(self, first: list[PaymentRequest]) -> None:
        self.take_in([(request, None) for request in first], atomic=False)

    @rule(request=requests(), key=st.sampled_from([None, None, "k1", "k2"]))
    @step
    def intake_one(self, request: PaymentRequest, key: str | None) -> None:
        self.take_in([(request, key)], atomic=False)

    @rule(
        batch=st.lists(st.tuples(requests(), st.sampled_from([None, None, "k1", "k3"])),
                       min_size=2, max_size=5),
        atomic=st.booleans(),
    )
    @step
    def intake_many(self, batch: list[tuple[PaymentRequest, str | None]], atomic: bool) -> None:
        self.take_in(batch, atomic)

    @precondition(lambda self: self.tracked)
    @rule(data=st.data(), kind=st.sampled_from(list(OutcomeKind)),
          rail=st.sampled_from(["current", "current", "current", "tried", "any"]),
          again=st.integers(0, 3))
    @step
    def report(self, data: st.DataObject, kind: OutcomeKind, rail: str, again: int) -> None:
        t = self.tracked[data.draw(st.sampled_from(sorted(self.tracked)))]
        if again == 0 and t.outcomes:
            outcome = data.draw(st.sampled_from(t.outcomes))
            self.rails[outcome.channel].again(outcome)  # a duplicate: the same outcome id
            return
        channel = t.channel
        if rail == "tried" and t.tried:
            channel = data.draw(st.sampled_from(t.tried))
        elif rail == "any" or channel not in SENDING:
            channel = data.draw(st.sampled_from(SENDING))
        assert channel is not None
        t.outcomes.append(self.new_outcome(channel, t.id, kind))

    @precondition(lambda self: self.tracked)
    @rule(data=st.data(), kind=st.sampled_from(list(OutcomeKind)),
          rail=st.sampled_from(["current", "current", "current", "tried", "any"]),
          again=st.integers(0, 3))
    @step
    def report_another(self, data: st.DataObject, kind: OutcomeKind, rail: str,
                       again: int) -> None:
        """The rails talk more than anything else happens."""
        self.report(data, kind, rail, again)

    @precondition(lambda self: any(not final(t.state) or t.state is S.SETTLED
                                   for t in self.tracked.values()))
    @rule(data=st.data(), twist=st.integers(0, 3))
    @step
    def drive(self, data: st.DataObject, twist: int) -> None:
        """The rail of a payment says what would come next, and the dispatcher ticks: so that
        payments get far (settled, returned, undone) and not only see noise."""
        live = sorted(t.id for t in self.tracked.values()
                      if not final(t.state) or t.state is S.SETTLED)
        t = self.tracked[data.draw(st.sampled_from(live))]
        kind: OutcomeKind | None = None
        if t.state is S.PENDING_APPROVAL:
            self.approve_ids([t.id])
        elif t.kind is K.DEPOSIT:
            kind = {
                S.SCREENED: O.CLEARED if twist else O.SETTLED,
                S.CLEARED: O.SETTLED if twist else O.RETURNED,
                S.SETTLED: O.RETURNED if twist == 0 else None,
            }.get(t.state)
        elif t.state in (S.SUBMITTED, S.CLEARED):
            kind = (O.FAILED, O.SETTLED, O.SETTLED, O.CLEARED)[twist]
        elif t.state is S.SETTLED and t.kind is K.PAYOUT and twist == 0:
            kind = O.RETURNED
        if kind is not None and t.channel is not None:
            t.outcomes.append(self.new_outcome(t.channel, t.id, kind))
        self.run_tick(1)

    @precondition(lambda self: any(t.kind is K.DEPOSIT and t.state is S.SETTLED
                                   for t in self.tracked.values()))
    @rule(data=st.data())
    @step
    def chargeback(self, data: st.DataObject) -> None:
        """A settled card payment comes back weeks later: the deposit is undone."""
        settled = sorted(t.id for t in self.tracked.values()
                         if t.kind is K.DEPOSIT and t.state is S.SETTLED)
        t = self.tracked[data.draw(st.sampled_from(settled))]
        assert t.channel is not None
        t.outcomes.append(self.new_outcome(t.channel, t.id, O.RETURNED))

    @rule(kind=st.sampled_from(list(OutcomeKind)))
    @step
    def report_a_payment_that_does_not_exist(self, kind: OutcomeKind) -> None:
        self.new_outcome("rtp", NO_SUCH_PAYMENT, kind)

    def new_outcome(self, channel: str, payment_id: str, kind: OutcomeKind) -> ChannelOutcome:
        self.serial += 1
        return self.rails[channel].report(payment_id, kind, outcome_id=f"o-{self.serial}",
                                          at_us=self.clock.now_us())

    @rule(channel=st.sampled_from(SENDING))
    @step
    def refuse_the_next_submission(self, channel: str) -> None:
        self.rails[channel].refusing = "closed"

    @rule(seconds=st.sampled_from([0, 1, 1, 3, 10]))
    @step
    def tick(self, seconds: int) -> None:
        self.run_tick(seconds)

    @rule()
    @step
    def tick_again(self) -> None:
        self.run_tick(1)

    @precondition(lambda self: any(t.state is S.PENDING_APPROVAL for t in self.tracked.values()))
    @rule(data=st.data())
    @step
    def approve(self, data: st.DataObject) -> None:
        waiting = sorted(t.id for t in self.tracked.values() if t.state is S.PENDING_APPROVAL)
        self.approve_ids([data.draw(st.sampled_from(waiting))])

    @rule()
    @step
    def restart(self) -> None:
        """The process dies: its queues and inbox are gone; another one starts."""
        self.restarts += 1
        self.refusals = []
        self.start_dispatcher()

    # --- the model ----------------------------------------------------------------------------

    def read_log(self) -> list[str]:
        """Payments the rails were handed since the last read; new refusals are queued as
        the failed outcomes the dispatcher makes of them, in the order it made them."""
        handed: list[str] = []
        for channel, at_us, instructions, taken in self.log[self.log_read:]:
            for instruction in instructions:
                handed.append(instruction.payment_id)
                if not taken:
                    self.refusals.append(ChannelOutcome(
                        f"refused-{instruction.payment_id}-{at_us}", channel,
                        instruction.payment_id, "", O.FAILED, at_us,
                    ))
        self.log_read = len(self.log)
        return handed

    def take_in(self, batch: list[tuple[PaymentRequest, str | None]], atomic: bool) -> None:
        self.clock.advance(seconds=1)
        head = self.ledger.head()
        known = len(self.all_payments())
        created: list[Payment] = []
        # What creation holds each outbound request to (payments/funds.py), read before it.
        available = {c: self.ledger.balance(acct(c, "USD", "available"), "USD").available
                     for c in RAILS}
        try:
            intakes = self.dispatcher.intake(batch, atomic=atomic)
        except IntakeRefused:
            assert atomic
            assert self.ledger.head() == head
            assert len(self.all_payments()) == known
            assert not self.read_log()
            return
        for (request, _), intake in zip(batch, intakes, strict=True):
            outcome = intake.outcome
            if isinstance(outcome, FundpoolError):
                assert not atomic
                if outcome.code == "insufficient_funds":
                    assert request.amount_minor > funds_for(request, available), str(outcome)
                    continue
                assert outcome.code == "idempotency_conflict", str(outcome)
                continue
            t = self.tracked.get(outcome.id)
            if t is not None:  # a replay: the payment as it stands, nothing new
                assert outcome.state is t.state
                continue
            assert request.amount_minor <= funds_for(request, available), outcome
            self.track(request, outcome, intake.errors)
            created.append(outcome)
        # New deposits are announced to their rails at once, each once (a rail told to refuse
        # refuses them); nothing else is handed to a rail at intake.
        assert sorted(self.read_log()) == sorted(p.id for p in created if p.kind is K.DEPOSIT)
        self.refresh()

    def track(self, request: PaymentRequest, p: Payment, errors: Sequence[FundpoolError]) -> None:
        assert not errors, errors
        assert (p.kind, p.amount_minor, p.asset) == (request.kind, request.amount_minor, "USD")
        needs_approver = p.kind is not K.DEPOSIT and p.amount_minor >= THRESHOLD
        assert p.approval_required is needs_approver
        if p.kind is K.DEPOSIT:
            assert p.state is S.SCREENED
        else:
            assert p.state in (S.APPROVED, S.PENDING_APPROVAL, S.REJECTED), p.state
            if p.state is not S.REJECTED:
                assert (p.state is S.PENDING_APPROVAL) is needs_approver
        if request.channel is not None:
            assert p.channel == request.channel
        t = Tracked(p.id, p.kind, p.amount_minor, "USD", request.metadata.get(MERCHANT_KEY),
                    request.channel is not None, p.state, p.channel, p.destination_channel,
                    p.fee_minor)
        self.tracked[p.id] = t

    def all_payments(self) -> list[Payment]:
        return self.service.list(limit=1_000)

    def refresh(self) -> None:
        """Take each payment's stored state, channel, fee and routes into the model, after
        checking what never changes."""
        for p in self.all_payments():
            t = self.tracked[p.id]
            assert (p.kind, p.amount_minor) == (t.kind, t.amount)
            assert p.state in (IN_STATES if p.kind is K.DEPOSIT else OUT_STATES), p.state
            if t.state in TERMINAL:
                assert p.state is t.state, (p.id, t.state, p.state)
            if t.named or p.kind is not K.PAYOUT:
                assert p.channel == t.channel or t.channel is None
            t.state, t.channel, t.fee = p.state, p.channel, p.fee_minor
            if p.kind is not K.DEPOSIT:
                routes = self.dispatcher.reads.routes(p.id)
                assert [r.attempt for r in routes] == list(range(1, len(routes) + 1))
                assert len(routes) <= MAX_ATTEMPTS
                t.attempts = len(routes)
                t.tried = [r.channel for r in routes if r.channel is not None]
                assert len(set(t.tried)) == len(t.tried), "a rail is never tried twice"
                if p.state in (S.PENDING_APPROVAL, S.APPROVED, S.SUBMITTED, S.CLEARED,
                               S.SETTLED, S.RETURNED):
                    assert routes[-1].channel == p.channel
            elif t.advanced is None and p.state is not S.SCREENED and t.merchant is not None:
                t.advanced = self.was_advanced(p.id, t.merchant)

    def was_advanced(self, payment_id: str, owner: str) -> bool | None:
        return cleared_with_advance(self.service, self.ledger, payment_id, owner, "USD")

    def approve_ids(self, ids: list[str]) -> None:
        self.clock.advance(seconds=1)
        before = {pid: self.tracked[pid].state for pid in ids}
        outcomes = self.dispatcher.approve(ids)
        for pid, outcome in zip(ids, outcomes, strict=True):
            assert before[pid] is S.PENDING_APPROVAL
            if isinstance(outcome, Payment):
                assert outcome.state is S.APPROVED
            else:  # the rail no longer holds enough: it waits, and nothing moved
                assert outcome.code == "insufficient_funds", outcome
                assert self.service.get(pid).state is S.PENDING_APPROVAL
        self.refresh()

    def run_tick(self, seconds: int) -> None:
        self.clock.advance(seconds=seconds)
        before = {pid: (t.state, t.channel) for pid, t in self.tracked.items()}
        delivered = self.refusals + [o for rail in self.rails.values() for o in rail.waiting()]
        self.refusals = []
        report = self.dispatcher.tick()
        for rail in self.rails.values():
            rail.refusing = None
            assert not rail.waiting()
        expected, failed, dispositions = self.expect(delivered, before)
        handed = set(self.read_log())
        assert report.outcomes.get("duplicate", 0) == len(delivered) - len(dispositions)
        self.check_dispositions(dispositions, expected)
        for p in self.all_payments():
            t = self.tracked[p.id]
            want = expected[p.id]
            if p.id in failed:
                self.check_failover(t, p, handed)
                event(f"failed on its rail: {p.state.value}")
                continue
            if want is S.APPROVED and p.id in handed:
                want = S.SUBMITTED
            assert p.state is want, (p.id, t.kind, before[p.id], want, p.state)
            assert p.state is not S.APPROVED, "an approved payment waits after a tick"
        self.refresh()
        self.steps += 1

    def expect(
        self,
        delivered: Sequence[ChannelOutcome],
        before: dict[str, tuple[PaymentState, str | None]],
    ) -> tuple[dict[str, PaymentState], set[str], list[tuple[tuple[str, str], str]]]:
        """What the tick must make of the deliveries, in the order the dispatcher takes them:
        each payment's state, the payouts that failed on their rail, and each first
        delivery's disposition."""
        states = {pid: state for pid, (state, _) in before.items()}
        failed: set[str] = set()
        dispositions: list[tuple[tuple[str, str], str]] = []
        seen = set(self.recorded)
        for outcome in delivered:
            key = (outcome.channel, outcome.outcome_id)
            pid = outcome.payment_id
            if key in seen:
                continue  # a duplicate: counted, nothing else
            seen.add(key)
            t = self.tracked.get(pid)
            if t is None:
                dispositions.append((key, "anomaly"))
                continue
            if outcome.channel != before[pid][1]:
                # Money moving on a rail the payment is not routed to is flagged, not ignored.
                moved = outcome.kind in (OutcomeKind.SETTLED, OutcomeKind.RETURNED)
                dispositions.append((key, "anomaly" if moved else "stale"))
                continue
            disposition, actions = reading(t.kind, states[pid], outcome.kind)
            dispositions.append((key, disposition))
            if actions == (A.REVERSE,):
                event(f"undo a settled deposit: {'advanced' if t.advanced else 'plain'}")
            if t.kind is not K.DEPOSIT and actions == (A.FAIL,):
                failed.add(pid)
                states[pid] = S.FAILED  # or a failover: checked on its own
                continue
            for action in actions:
                target = legal_target(t.kind, states[pid], action)
                assert target is not None, (t.kind, states[pid], action)
                states[pid] = target
        return states, failed, dispositions

    def check_dispositions(
        self, dispositions: list[tuple[tuple[str, str], str]], expected: dict[str, PaymentState]
    ) -> None:
        rows = {
            (channel, oid): (disposition, detail, pid)
            for oid, channel, pid, disposition, detail in self.store.query(
                "SELECT outcome_id, channel, payment_id, disposition, detail "
                "FROM channel_outcomes", ()
            )
        }
        assert set(rows) == set(self.recorded) | {key for key, _ in dispositions}
        for key, want in dispositions:
            got, detail, pid = rows[key]
            assert got in DISPOSITIONS
            event(f"outcome {want}")
            if got != want:
                # The one refusal that is no bug: undoing a settled deposit whose money the
                # pool has paid out since. It stays settled, for a person to look at. (A
                # merchant's deposit is undone from the merchant's payable, never refused in
                # this test, where merchants withdraw nothing.)
                assert (want, got, detail) == (
                    "applied", "anomaly", "reverse refused: insufficient_funds"
                ), (key, want, got, detail)
                assert expected[pid] is S.REVERSED
                assert self.tracked[pid].merchant is None, (key, detail)
                expected[pid] = S.SETTLED
            self.recorded[key] = got
        for key, disposition in self.recorded.items():
            assert rows[key][0] == disposition, "a recorded outcome never changes"

    def check_failover(self, t: Tracked, p: Payment, handed: set[str]) -> None:
        """A payout its rail failed: routed again without the rails it tried, within the
        attempts allowed, or failed for good."""
        routes = self.dispatcher.reads.routes(p.id)
        if p.state is S.FAILED:
            assert (
                t.named or t.kind.between_channels or routes[-1].channel is None
                or routes[-1].attempt == MAX_ATTEMPTS
            ), (t, routes)
            return
        assert p.state in (S.SUBMITTED, S.PENDING_APPROVAL), p.state
        assert not t.named
        assert len(routes) == t.attempts + 1
        assert p.channel == routes[-1].channel
        assert p.channel not in t.tried
        assert [e.action for e in self.service.events(p.id)].count(A.RETRY) == t.attempts
        assert (p.state is S.SUBMITTED) is (p.id in handed)

    # --- invariants ---------------------------------------------------------------------------

    @invariant()
    @step
    def books_follow_from_payment_states(self) -> None:
        actual = ledger_balances(self.store)
        per_asset: Counter[str] = Counter()
        for (address, asset), posted in actual.items():
            per_asset[asset] += posted
            if address.startswith("pool:"):
                assert posted >= 0, (address, posted)
        assert all(v == 0 for v in per_asset.values()), per_asset
        assert actual == implied_books(self.tracked.values(), self.funded)

    @invariant()
    @step
    def verifies_now_and_then(self) -> None:
        if self.steps % VERIFY_EVERY == 0:
            assert verify(self.store).ok

    # --- the end ------------------------------------------------------------------------------

    def drain(self) -> None:
        """Approve what waits, and have every open payment's rail say it settled, until every
        payment is settled or terminal."""
        for _ in range(DRAIN_ROUNDS_MAX):
            open_ = [t for t in self.tracked.values() if not final(t.state)]
            if not open_ and not self.refusals:
                break
            waiting = [t for t in open_ if t.state is S.PENDING_APPROVAL]
            for t in waiting:
                assert t.channel is not None
                self.fund(t.channel, t.amount + t.fee)  # an approver's funds, on time
            if waiting:
                self.approve_ids([t.id for t in waiting])
            for t in open_:
                if t.state in (S.SCREENED, S.SUBMITTED, S.CLEARED) and t.channel is not None:
                    t.outcomes.append(self.new_outcome(t.channel, t.id, O.SETTLED))
            self.run_tick(1)
        assert all(final(t.state) for t in self.tracked.values()), [
            (t.id, t.kind, t.state) for t in self.tracked.values() if not final(t.state)
        ]

    def check_histories(self) -> None:
        for t in self.tracked.values():
            events = self.service.events(t.id)
            assert [e.seq for e in events] == list(range(1, len(events) + 1))
            for before, after in itertools.pairwise(events):
                assert after.from_state is before.to_state
                assert before.to_state not in TERMINAL, "a terminal payment changed"
                assert legal_target(t.kind, before.to_state, after.action) is after.to_state
            retries = [i for i, e in enumerate(events) if e.action is A.RETRY]
            since = events[retries[-1] + 1:] if retries else events
            actions = {e.action for e in since}
            assert not (A.SETTLE in actions and actions & {A.FAIL, A.CANCEL}), (
                t.id, [e.action for e in events]
            )
            # Every earlier attempt was released before the next: a retry for each failover.
            assert len(retries) == max(0, len(t.tried) - 1), (t.id, t.tried, len(retries))

    def teardown(self) -> None:
        event(f"payments: {len(self.tracked) // 5 * 5}+, ticks: {self.steps // 5 * 5}+")
        try:
            if self.healthy:
                self.drain()
                self.check_histories()
                report = verify(self.store)
                assert report.ok, report.problem
        finally:
            self.store.close()
            shutil.rmtree(self.directory, ignore_errors=True)


DispatchMachine.TestCase.settings = settings(
    max_examples=150 if DEEP_PROPERTIES else 100,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                           HealthCheck.data_too_large],
)
TestDispatchMachine = DispatchMachine.TestCase


# --- the simulated rails, as messy as they get -------------------------------------------------

CHAOS = {
    "duplicate_rate": 0.5,
    "duplicate_delay_ms": 0,
    "out_of_order_rate": 0.5,
    "late_rate": 0.5,
    "late_ms": 4_000,
    "failure_rate": 0.25,
    "return_rate": 0.2,
    "return_delay_days": 0,
    "latency_median_ms": 1_500,
    "settlement_days": 0,
}
CHAOS_STEPS = 300
CHAOS_RATE_PER_STEP = 4
CHAOS_DRAIN_TICKS_MAX = 200


def chaos_config() -> Any:
    document = example_document()
    for entry in document["channels"]:
        entry["simulation"] = dict(CHAOS)
        if entry["kind"] in ("evm_l1", "evm_l2", "stablecoin_rail"):
            entry["simulation"] |= {"confirmations": 2, "block_time_ms": 1_000}
    document["pools"][0]["instant_settlement"] = {
        "USD": {"pool_cap": "20000.00", "merchant_cap": "8000.00"}
    }
    from fundpool.pool.config import parse_config
    from tests.payments.test_dispatch import EXAMPLE

    return parse_config(document, source=str(EXAMPLE), base_dir=EXAMPLE.parent)


def test_simulated_rails_with_every_chaos_knob_up(tmp_path: Path) -> None:
    config = chaos_config()
    pool = config.pool("main")
    store = SqliteStore(tmp_path / "ledger.sqlite3")
    store.initialise()
    clock = ManualClock()
    ledger = Ledger(store, clock, Uuid7Ids.seeded(1))
    sim = compose.simulation(ledger, config, pool, seed=2026, clock=clock)
    sim.open_pool()
    rails: dict[str, SimulatedRail] = sim.rails
    terminal: dict[str, PaymentState] = {}
    scales = {a.code: a.scale for a in config.assets}
    funded: Counter[tuple[str, str]] = Counter({
        (cid, asset): opening_float_minor(config.channel(cid), asset, scales[asset])
        for cid in pool.channels for asset in config.channel(cid).assets
    })
    advances: dict[str, bool | None] = {}

    def as_tracked(p: Payment) -> Tracked:
        merchant = p.metadata.get(MERCHANT_KEY)
        if p.kind is not K.DEPOSIT or p.asset not in pool.instant_settlement:
            merchant = None
        t = Tracked(p.id, p.kind, p.amount_minor, p.asset, merchant, p.channel is not None,
                    p.state, p.channel, p.destination_channel, p.fee_minor)
        if merchant is not None and p.state is S.CLEARED:
            if advances.get(p.id) is None:
                advances[p.id] = cleared_with_advance(sim.service, ledger, p.id, merchant,
                                                      p.asset)
            t.advanced = advances[p.id]
        return t

    def check(step_index: int) -> None:
        balances = ledger_balances(store)
        per_asset: Counter[str] = Counter()
        for (address, asset), posted in balances.items():
            per_asset[asset] += posted
            if address.startswith("pool:"):
                assert posted >= 0, (address, asset, posted)
        assert all(v == 0 for v in per_asset.values()), per_asset
        payments = all_payments(sim.service)
        assert balances == implied_books(map(as_tracked, payments), funded)
        for p in payments:
            if p.id in terminal:
                assert p.state is terminal[p.id], (p.id, terminal[p.id], p.state)
            elif p.state in TERMINAL:
                terminal[p.id] = p.state
            assert p.state in (IN_STATES if p.kind is K.DEPOSIT else OUT_STATES)
        if step_index % 40 == 0:
            assert verify(store).ok

    for index in range(CHAOS_STEPS):
        sim.step(CHAOS_RATE_PER_STEP)
        clock.advance(seconds=1)
        check(index)
    # Everything still out comes in: approvals given, rails delivering all they owe.
    for index in range(CHAOS_DRAIN_TICKS_MAX):
        waiting = [p.id for p in all_payments(sim.service) if p.state is S.PENDING_APPROVAL]
        if waiting:
            sim.dispatcher.approve(waiting)
        clock.advance(seconds=5)
        sim.step(0)
        check(index)
        if all(rail.pending_count() == 0 for rail in rails.values()) and all(
            final(p.state) or p.state is S.PENDING_APPROVAL
            for p in all_payments(sim.service)
        ):
            break
    payments = all_payments(sim.service)
    open_ = [(p.id, p.kind, p.state) for p in payments if not final(p.state)]
    # What is left waits for an approver whose rail no longer holds enough.
    assert all(state is S.PENDING_APPROVAL for _, _, state in open_), open_
    report = sim.report
    counts = sim.dispatcher.reads.disposition_counts()
    assert report.outcomes["duplicate"] > 0, report
    assert counts.get("late", 0) > 0, counts
    assert report.failovers > 0
    assert counts.get("applied", 0) > 0
    assert {"duplicate"} & set(counts) == set(), "a duplicate is counted, not stored twice"
    rows = store.query(
        "SELECT count(*), count(DISTINCT channel || '/' || outcome_id) FROM channel_outcomes", ()
    )
    assert rows[0][0] == rows[0][1]
    for p in payments:
        events = sim.service.events(p.id)
        for before, after in itertools.pairwise(events):
            assert before.to_state not in TERMINAL
            assert legal_target(p.kind, before.to_state, after.action) is after.to_state
        retries = [i for i, e in enumerate(events) if e.action is A.RETRY]
        since = {e.action for e in (events[retries[-1] + 1:] if retries else events)}
        assert not (A.SETTLE in since and since & {A.FAIL, A.CANCEL}), p.id
    assert verify(store).ok
    store.close()


def all_payments(service: PaymentService) -> list[Payment]:
    out: list[Payment] = []
    after: str | None = None
    while True:
        page = service.list(limit=1_000, after_id=after)
        out += page
        if len(page) < 1_000:
            return out
        after = page[-1].id
