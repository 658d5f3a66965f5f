"""Many payments of every kind driven through random action sequences (SQLite).

Steps come in any order: duplicated outcomes (a `settle` reported twice), late ones (a `fail`
after `settle`, the model of a timeout firing after the payment already finished),
out-of-order ones (a `settle` before `submit`), batches mixing all of these. The machine's own
model (tests/payments/test_lifecycle.py: transition table and posting table read from the
docstring of model.py) says what each step must do; after every step the whole ledger, the pool
view and every payment's state must agree with it, and:

- each asset's balances sum to zero over all accounts; no pool account is ever negative;
- every payment is listed exactly once, in the state the model gives it; a terminal payment
  never changes again;
- a payment's funds are never both settled and released (no `settle` beside a `fail`/`cancel`
  that posted);
- per asset, the pool's TOTAL and fee income equal what the payments' states alone imply
  (deposits cleared + deposits settled net of fee - payouts settled gross - fees of returned
  payouts and settled transfers + what was funded), a model independent of the posting table;
- the journal verifies (every few steps, and at the end).
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
from collections import Counter
from pathlib import Path

from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    MultipleResults,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    rule,
)

from fundpool.core.clock import ManualClock, Uuid7Ids
from fundpool.core.errors import FundpoolError
from fundpool.core.ledger.model import Posting
from fundpool.ledger.service import Ledger
from fundpool.ledger.verify import verify
from fundpool.payments.model import Action, Payment, PaymentKind, PaymentRequest, PaymentState
from fundpool.payments.service import Step
from fundpool.pool.setup import init_pool
from fundpool.stores.sqlite import SqliteStore
from tests.conftest import DEEP_PROPERTIES
from tests.payments.test_lifecycle import (
    CHANNEL_ASSETS,
    CONFIG,
    TERMINAL,
    THRESHOLDS,
    Books,
    Tracked,
    acct,
    check_view,
    inbound_fee,
    ledger_balances,
    legal_target,
    make_service,
    moves_for,
    outbound_fee,
    shortfall,
    world,
)

K = PaymentKind
S = PaymentState
A = Action

CHANNELS_OF: dict[str, list[str]] = {}
for _channel, _asset in CHANNEL_ASSETS:
    CHANNELS_OF.setdefault(_asset, []).append(_channel)
MULTI_CHANNEL_ASSETS = sorted(a for a, cs in CHANNELS_OF.items() if len(cs) > 1)
# Amounts up to a bit over the approval threshold, so both sides of it are drawn; funding in
# the same range, so approvals both succeed and run short.
SCALE = {asset: threshold // 4 for asset, threshold in THRESHOLDS.items()}
ACTIONS = [a for a in Action if a is not A.CREATE]


@st.composite
def requests(draw: st.DrawFn) -> PaymentRequest:
    kind = draw(st.sampled_from(list(PaymentKind)))
    if kind.between_channels:
        asset = draw(st.sampled_from(MULTI_CHANNEL_ASSETS))
        source, destination = draw(st.permutations(CHANNELS_OF[asset]))[:2]
        channel = draw(st.sampled_from([source, None]))
    else:
        channel, asset = draw(st.sampled_from(CHANNEL_ASSETS))
        destination = None
        if kind is K.PAYOUT:
            # A payout naming the book rail is refused at creation (test_limits.py tests
            # that); here it is left to routing, where the model refuses it.
            channel = draw(st.sampled_from([None if channel == "book" else channel, None]))
    amount = draw(
        st.one_of(
            st.integers(1, 5 * SCALE[asset]),
            st.sampled_from([THRESHOLDS[asset] - 1, THRESHOLDS[asset]]),
            # fees landing on exactly .5: 1, 5 and 25 bps of k x 10,000 + 5,000, and 180 bps
            # of k x 1,000 + 250, where half-to-even and half-up differ for even quotients
            st.integers(0, 400).map(lambda k: k * 10_000 + 5_000),
            st.integers(0, 400).map(lambda k: k * 1_000 + 250),
        )
    )
    return PaymentRequest(kind, asset, amount, channel=channel, destination_channel=destination)


class Expected:
    """The outcome the model gives a step: an error code, or success with the new state."""

    def __init__(self, code: str | None = None, state: PaymentState | None = None) -> None:
        self.code = code
        self.state = state


class PaymentLifecycle(RuleBasedStateMachine):
    payments = Bundle("payments")

    def __init__(self) -> None:
        super().__init__()
        self.directory = tempfile.mkdtemp(prefix="fundpool-lifecycle-")
        self.store = SqliteStore(Path(self.directory) / "ledger.sqlite3")
        self.store.initialise()
        self.clock = ManualClock()
        self.ledger = Ledger(self.store, self.clock, Uuid7Ids.seeded(7))
        init_pool(self.ledger, CONFIG)
        self.svc = make_service(self.ledger, self.store, seed=23)
        self.books = Books()
        self.tracked: dict[str, Tracked] = {}
        self.funded: Counter[str] = Counter()
        self.keys: dict[str, tuple[PaymentRequest, str]] = {}
        self.steps = 0

    # --- the model ----------------------------------------------------------------------------

    def expect(
        self, t: Tracked, step: Step
    ) -> tuple[Expected, Tracked | None, list[tuple[str, str, int]]]:
        """What `step` must do, the payment as the model has it afterwards (None: no change)
        and the moves it posts. Checks in the service's order: transition, route, approval,
        funds."""
        target = legal_target(t.kind, t.state, step.action)
        if target is None:
            return Expected("illegal_transition"), None, []
        after = Tracked(**{**t.__dict__, "posted": dict(t.posted), "history": list(t.history)})
        if step.action is A.ROUTE:
            channel = step.channel or t.channel
            destination = step.destination_channel or t.destination
            if channel is None:
                return Expected("invalid_payment"), None, []
            if t.kind is K.PAYOUT and channel == "book":  # the pool's books pay no one
                return Expected("invalid_payment"), None, []
            if t.kind.between_channels and (destination is None or destination == channel):
                return Expected("invalid_payment"), None, []
            after.channel, after.destination = channel, destination
            after.fee = outbound_fee(channel, t.asset, t.amount)
        if step.action is A.APPROVE and t.state is S.ROUTED and t.approval_required:
            return Expected("approval_required"), None, []
        moves = moves_for(after, step.action)
        if shortfall(self.books, moves, t.asset):
            return Expected("insufficient_funds"), None, []
        if moves:
            after.posted[step.action] = moves
        after.history.append((step.action, t.state, target))
        after.state = target
        after.version += 1
        return Expected(state=target), after, moves

    def step_for(self, t: Tracked, action: Action, pick: int) -> Step:
        if action is A.ROUTE:
            options = [None, *CHANNELS_OF[t.asset]]
            return Step(t.id, action, channel=options[pick % len(options)])
        return Step(t.id, action)

    def run_steps(self, steps: list[Step]) -> None:
        self.clock.advance(seconds=1)
        expected: list[Expected] = []
        for step in steps:
            t = self.tracked.get(step.payment_id)
            if t is None:
                expected.append(Expected("unknown_payment"))
                continue
            outcome, after, moves = self.expect(t, step)
            expected.append(outcome)
            if after is not None:
                self.books.move(moves, t.asset)
                self.tracked[t.id] = after
        outcomes = self.svc.act_many(steps) if len(steps) > 1 else [self.act_one(steps[0])]
        for step, want, got in zip(steps, expected, outcomes, strict=True):
            event(f"{step.action.value} -> {want.code or want.state}")
            if want.code is not None:
                assert isinstance(got, FundpoolError), (step, want.code, got)
                assert got.code == want.code, (step, str(got))
            else:
                assert isinstance(got, Payment), (step, got)
                assert got.state is want.state, (step, got.state)
        self.steps += 1

    def act_one(self, step: Step) -> Payment | FundpoolError:
        try:
            return self.svc.act(step)
        except FundpoolError as error:
            return error

    # --- rules ----------------------------------------------------------------------------------

    @initialize(
        funding=st.lists(
            st.integers(2, 24), min_size=len(CHANNEL_ASSETS), max_size=len(CHANNEL_ASSETS)
        )
    )
    def start(self, funding: list[int]) -> None:
        for (channel, asset), quarters in zip(CHANNEL_ASSETS, funding, strict=True):
            if quarters:
                self.fund_channel(channel, asset, quarters * SCALE[asset])

    @initialize(target=payments, first=st.lists(requests(), min_size=2, max_size=6))
    def first_payments(self, first: list[PaymentRequest]) -> MultipleResults[str]:
        made = (self.new_payment(request, None) for request in first)
        return multiple(*(pid for pid in made if pid is not None))

    def fund_channel(self, channel: str, asset: str, amount: int) -> None:
        moves = [(world(channel), acct(channel, asset, "available"), amount)]
        self.ledger.transfer([Posting(s, d, asset, n) for s, d, n in moves])
        self.books.move(moves, asset)
        self.funded[asset] += amount

    @rule(where=st.sampled_from(CHANNEL_ASSETS), quarters=st.integers(1, 12))
    def fund(self, where: tuple[str, str], quarters: int) -> None:
        self.fund_channel(*where, quarters * SCALE[where[1]])

    @rule(target=payments, request=requests(), key=st.sampled_from([None, "k1", "k2", "k3"]))
    def create(self, request: PaymentRequest, key: str | None) -> MultipleResults[str]:
        pid = self.new_payment(request, key)
        return multiple() if pid is None else multiple(pid)

    def available_for(self, request: PaymentRequest) -> int | None:
        """What the pool holds available for an outbound request at creation, as the model
        has it (payments/funds.py): a payout's asset on every rail that can pay out, a
        transfer's on its source; None where creation checks no funds."""
        if request.kind is K.DEPOSIT or (request.kind is not K.PAYOUT
                                         and request.channel is None):
            return None
        channels = ([c for c, a in CHANNEL_ASSETS if a == request.asset and c != "book"]
                    if request.kind is K.PAYOUT else [request.channel or ""])
        return sum(self.books.get(acct(c, request.asset, "available"), request.asset)
                   for c in channels)

    def new_payment(self, request: PaymentRequest, key: str | None) -> str | None:
        earlier = self.keys.get(key) if key is not None else None
        available = None if earlier is not None else self.available_for(request)
        (outcome,) = self.svc.create_many([(request, key)])
        if request.kind is not K.DEPOSIT and request.channel is not None and outbound_fee(
                request.channel, request.asset, request.amount_minor) > request.amount_minor:
            # Its rail named, its fee known: more than it moves is refused before anything.
            assert isinstance(outcome, FundpoolError), request
            assert outcome.code == "fee_exceeds_amount", str(outcome)
            event("create -> fee_exceeds_amount")
            return None
        if available is not None and request.amount_minor > available:
            assert isinstance(outcome, FundpoolError), (request, available)
            assert outcome.code == "insufficient_funds", str(outcome)
            assert outcome.facts["available_minor"] == _fact(available)
            event("create -> insufficient_funds")
            return None
        if isinstance(outcome, FundpoolError):
            assert earlier is not None, str(outcome)
            assert earlier[0] != request
            assert outcome.code == "idempotency_conflict"
            return earlier[1]
        payment = outcome
        if earlier is not None:
            assert earlier[0] == request
            assert payment.id == earlier[1]
            assert payment == self.svc.get(payment.id)
            return payment.id
        assert payment.id not in self.tracked
        fee = 0
        if request.channel is not None:
            fee = (
                inbound_fee(request.channel, request.asset, request.amount_minor)
                if request.kind is K.DEPOSIT
                else outbound_fee(request.channel, request.asset, request.amount_minor)
            )
        self.tracked[payment.id] = Tracked(
            payment.id,
            request.kind,
            request.asset,
            request.amount_minor,
            fee,
            request.channel,
            request.destination_channel,
            request.kind is not K.DEPOSIT and request.amount_minor >= THRESHOLDS[request.asset],
        )
        if key is not None:
            self.keys[key] = (request, payment.id)
        return payment.id

    @rule(payment=payments, action=st.sampled_from(ACTIONS), pick=st.integers(0, 3))
    def act(self, payment: str, action: Action, pick: int) -> None:
        self.run_steps([self.step_for(self.tracked[payment], action, pick)])

    def happy_action(self, t: Tracked, twist: int) -> Action:
        """The next step of the happy path, sometimes an exit; a late fail once it ended."""
        deposit = t.kind is K.DEPOSIT
        if t.state is S.SETTLED:
            return {K.DEPOSIT: A.REVERSE, K.PAYOUT: A.RETURN}.get(t.kind, A.FAIL)
        if t.state is S.CLEARED and deposit and twist == 0:
            return A.RETURN
        if t.state is S.SUBMITTED and twist == 0:
            return A.CLEAR
        if t.state is S.ROUTED and twist == 1:
            return A.APPROVE  # approval_required when the payment is at its threshold
        return {
            S.INITIATED: A.SCREEN,
            S.SCREENED: A.CLEAR if deposit else A.ROUTE,
            S.HELD: A.RELEASE,
            S.ROUTED: A.REQUEST_APPROVAL if t.approval_required else A.APPROVE,
            S.PENDING_APPROVAL: A.APPROVE,
            S.APPROVED: A.SUBMIT,
            S.SUBMITTED: A.SETTLE,
            S.CLEARED: A.SETTLE,
        }.get(t.state, A.FAIL)

    @rule(payment=payments, count=st.integers(1, 8), twist=st.integers(0, 3))
    def drive(self, payment: str, count: int, twist: int) -> None:
        """Several steps along the happy path, so that payments get far; checked after each."""
        for _ in range(count):
            t = self.tracked[payment]
            self.run_steps([self.step_for(t, self.happy_action(t, twist), twist + 1)])
            self.ledger_agrees()
            self.payments_agree()

    @rule(payment=payments)
    def report_last_outcome_again(self, payment: str) -> None:
        t = self.tracked[payment]
        last = t.history[-1][0] if t.history else A.SCREEN
        self.run_steps([self.step_for(t, last, 1)])

    @rule(payment=payments)
    def timeout_fires(self, payment: str) -> None:
        self.run_steps([Step(payment, A.FAIL, reason="timeout")])

    @rule(
        batch=st.lists(
            st.tuples(payments, st.sampled_from(ACTIONS), st.integers(0, 3), st.booleans()),
            min_size=1,
            max_size=8,
        )
    )
    def act_many(self, batch: list[tuple[str, Action, int, bool]]) -> None:
        steps: list[Step] = []
        for payment, action, pick, twice in batch:
            step = self.step_for(self.tracked[payment], action, pick)
            steps.extend([step, step] if twice else [step])
        if len(steps) > 1 and steps[0].payment_id in self.tracked:
            steps.append(Step("0190aaaa-0000-7000-8000-000000000000", A.SETTLE))
        self.run_steps(steps)

    # --- invariants -------------------------------------------------------------------------------

    @invariant()
    def ledger_agrees(self) -> None:
        actual = ledger_balances(self.store)
        assert actual == self.books.nonzero()
        per_asset: Counter[str] = Counter()
        for (address, asset), posted in actual.items():
            per_asset[asset] += posted
            if address.startswith("pool:"):
                assert posted >= 0, (address, asset, posted)
        assert all(v == 0 for v in per_asset.values()), per_asset
        check_view(self.store, self.books)

    @invariant()
    def payments_agree(self) -> None:
        listed = self.svc.list(limit=1000)
        assert len(listed) == len({p.id for p in listed}) == len(self.tracked)
        by_state: Counter[PaymentState] = Counter()
        for payment in listed:
            t = self.tracked[payment.id]
            assert payment.state is t.state, (payment.id, payment.state, t.state)
            assert payment.version == t.version
            assert payment.fee_minor == t.fee
            assert payment.channel == t.channel
            by_state[payment.state] += 1
        for state, count in by_state.items():
            assert len(self.svc.list(state=state, limit=1000)) == count

    @invariant()
    def totals_follow_from_payment_states(self) -> None:
        total: Counter[str] = Counter(self.funded)
        fees: Counter[str] = Counter()
        for t in self.tracked.values():
            if t.kind is K.DEPOSIT:
                if t.state is S.CLEARED:
                    total[t.asset] += t.amount
                elif t.state is S.SETTLED:
                    total[t.asset] += t.amount - t.fee
                    fees[t.asset] += t.fee
            elif t.kind is K.PAYOUT:
                if t.state is S.SETTLED:
                    total[t.asset] -= t.amount + t.fee
                    fees[t.asset] += t.fee
                elif t.state is S.RETURNED:
                    total[t.asset] -= t.fee
                    fees[t.asset] += t.fee
            elif t.state is S.SETTLED:
                total[t.asset] -= t.fee
                fees[t.asset] += t.fee
        from fundpool.pool.view import pool_view
        from tests.payments.test_lifecycle import POOL, RATES

        view = pool_view(self.store, CONFIG, POOL, RATES)
        for asset_view in view.assets:
            code = asset_view.asset.code
            assert asset_view.total.total == total[code], code
            assert asset_view.total.fees == fees[code], code

    @invariant()
    def verifies_now_and_then(self) -> None:
        if self.steps % 7 == 0:
            assert verify(self.store).ok

    def teardown(self) -> None:
        try:
            report = verify(self.store)
            assert report.ok, report.problem
            for t in self.tracked.values():
                events = self.svc.events(t.id)
                assert [e.seq for e in events] == list(range(1, len(events) + 1))
                assert [(e.action, e.from_state, e.to_state) for e in events[1:]] == t.history
                for before, after in itertools.pairwise(events):
                    assert after.from_state is before.to_state
                    assert before.to_state not in TERMINAL, "a terminal payment changed"
                posting = {e.action for e in events if e.entry_ids}
                assert not (A.SETTLE in posting and posting & {A.FAIL, A.CANCEL}), (
                    t.id,
                    [e.action for e in events],
                )
                for event in events:
                    for entry_id in event.entry_ids:
                        entry = self.ledger.entry(entry_id)
                        assert entry is not None
                        assert entry.body["metadata"] == {
                            "payment": t.id,
                            "action": event.action.value,
                        }
        finally:
            self.store.close()
            shutil.rmtree(self.directory, ignore_errors=True)


PaymentLifecycle.TestCase.settings = settings(
    max_examples=200 if DEEP_PROPERTIES else 110,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestPaymentLifecycle = PaymentLifecycle.TestCase


def _fact(minor: int) -> object:
    """An amount as an error's facts carry it (above 2**53 as text: core/errors.py)."""
    return minor if minor < 2**53 else str(minor)
