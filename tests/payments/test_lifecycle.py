"""The payment lifecycle end to end, on both stores, against this test's own model.

The model is written from the docstring of src/fundpool/payments/model.py (the posting table)
and from examples/pool.toml (fee schedules, approval thresholds), not from postings.py: after
every step the WHOLE ledger (every non-zero balance, world accounts included) must equal what
the model says, and so must every figure of the pool view. The happy paths also spell their
expected balances out as literal numbers worked by hand.

Fees (A = amount): outbound fixed + A x bps / 10,000 rounded half to even, inbound A x
inbound_bps / 10,000 rounded half to even. The amounts below are picked so that the rounding
lands on exactly .5, where half-to-even and half-up differ.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import pytest

import fundpool.stores
from fundpool.core.clock import ManualClock, Uuid7Ids
from fundpool.core.errors import FundpoolError
from fundpool.core.ledger.model import Balance, Posting
from fundpool.ledger.ports import LedgerStore
from fundpool.ledger.service import Ledger
from fundpool.ledger.verify import verify
from fundpool.payments.model import (
    Action,
    Payment,
    PaymentEvent,
    PaymentKind,
    PaymentRequest,
    PaymentState,
    next_state,
)
from fundpool.payments.service import PaymentService, Step
from fundpool.pool.config import load_config
from fundpool.pool.setup import init_pool
from fundpool.pool.view import pool_view

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "pool.toml"
# The lifecycle is modelled without the channels' amount limits, which the model does not
# know; limits are tested on their own (tests/payments/test_limits.py).
CONFIG = dataclasses.replace(
    load_config(EXAMPLE),
    channels=tuple(
        dataclasses.replace(c, limits={}) for c in load_config(EXAMPLE).channels
    ),
)
POOL = CONFIG.pool("main")
RATES = CONFIG.rates_for(POOL)

K = PaymentKind
S = PaymentState
A = Action

# --- the test's own reading of examples/pool.toml ---------------------------------------------

# (channel, asset) -> (outbound fixed in minor units, outbound bps, inbound bps)
SCHEDULES: dict[tuple[str, str], tuple[int, int, int]] = {
    ("bank-a", "USD"): (25, 5, 0),
    ("card-acq", "USD"): (30, 25, 180),
    ("sepa", "EUR"): (20, 0, 0),
    ("tron", "USDT"): (1_000_000, 0, 0),
    ("eth-l1", "USDT"): (4_500_000, 0, 0),
    ("eth-l1", "ETH"): (840_000_000_000_000, 0, 0),
    ("arb-l2", "ETH"): (24_000_000_000_000, 0, 0),
    ("ecny-rail", "E-CNY"): (0, 1, 0),
    ("rtp", "USD"): (45, 0, 0),
    **{("book", asset): (0, 0, 0) for asset in ("USD", "EUR", "USDT", "ETH", "E-CNY")},
}
THRESHOLDS = {
    "USD": 1_000_000,
    "EUR": 1_000_000,
    "USDT": 10_000_000_000,
    "ETH": 5 * 10**18,
    "E-CNY": 5_000_000,
}
CHANNEL_ASSETS = sorted(SCHEDULES)


def half_even_bps(amount: int, bps: int) -> int:
    return round(Fraction(amount * bps, 10_000))  # Fraction rounds half to even


def outbound_fee(channel: str, asset: str, amount: int) -> int:
    fixed, bps, _ = SCHEDULES[(channel, asset)]
    return fixed + half_even_bps(amount, bps)


def inbound_fee(channel: str, asset: str, amount: int) -> int:
    return half_even_bps(amount, SCHEDULES[(channel, asset)][2])


def acct(channel: str, asset: str, state: str) -> str:
    return f"pool:main:{asset.lower().replace('.', '_')}:{channel}:{state}"


def world(channel: str) -> str:
    return f"world:{channel}"


# --- the test's own transition table ----------------------------------------------------------

BEFORE_FUNDS = (S.INITIATED, S.SCREENED, S.HELD, S.ROUTED, S.PENDING_APPROVAL)
OUT_TABLE: dict[Action, dict[PaymentState, PaymentState]] = {
    A.SCREEN: {S.INITIATED: S.SCREENED},
    A.HOLD: {S.INITIATED: S.HELD, S.SCREENED: S.HELD},
    A.RELEASE: {S.HELD: S.SCREENED},
    A.REJECT: dict.fromkeys(BEFORE_FUNDS, S.REJECTED),
    A.ROUTE: {S.SCREENED: S.ROUTED},
    A.REQUEST_APPROVAL: {S.ROUTED: S.PENDING_APPROVAL},
    A.APPROVE: {S.ROUTED: S.APPROVED, S.PENDING_APPROVAL: S.APPROVED},
    A.SUBMIT: {S.APPROVED: S.SUBMITTED},
    A.CLEAR: {S.SUBMITTED: S.CLEARED},
    A.SETTLE: {S.SUBMITTED: S.SETTLED, S.CLEARED: S.SETTLED},
    A.FAIL: {S.APPROVED: S.FAILED, S.SUBMITTED: S.FAILED, S.CLEARED: S.FAILED},
    A.CANCEL: dict.fromkeys((*BEFORE_FUNDS, S.APPROVED), S.CANCELLED),
    A.RETRY: {S.APPROVED: S.SCREENED, S.SUBMITTED: S.SCREENED, S.CLEARED: S.SCREENED},
    A.RETURN: {S.SETTLED: S.RETURNED},  # payouts only: a transfer between channels never returns
}
IN_TABLE: dict[Action, dict[PaymentState, PaymentState]] = {
    A.SCREEN: {S.INITIATED: S.SCREENED},
    A.HOLD: {S.INITIATED: S.HELD, S.SCREENED: S.HELD},
    A.RELEASE: {S.HELD: S.SCREENED},
    A.REJECT: {S.INITIATED: S.REJECTED, S.SCREENED: S.REJECTED, S.HELD: S.REJECTED},
    A.CLEAR: {S.SCREENED: S.CLEARED},
    A.SETTLE: {S.CLEARED: S.SETTLED},
    A.FAIL: {S.INITIATED: S.FAILED, S.SCREENED: S.FAILED},
    A.RETURN: {S.CLEARED: S.RETURNED},
    A.REVERSE: {S.SETTLED: S.REVERSED},
}
TERMINAL = {S.REJECTED, S.CANCELLED, S.FAILED, S.RETURNED, S.REVERSED}


def legal_target(kind: PaymentKind, state: PaymentState, action: Action) -> PaymentState | None:
    if action is A.RETURN and kind.between_channels:
        return None
    table = IN_TABLE if kind is K.DEPOSIT else OUT_TABLE
    return table.get(action, {}).get(state)


# Paths from `initiated` to each state, per direction (route/approve fill in their channel).
OUT_PATHS: dict[PaymentState, tuple[Action, ...]] = {
    S.INITIATED: (),
    S.SCREENED: (A.SCREEN,),
    S.HELD: (A.HOLD,),
    S.ROUTED: (A.SCREEN, A.ROUTE),
    S.PENDING_APPROVAL: (A.SCREEN, A.ROUTE, A.REQUEST_APPROVAL),
    S.APPROVED: (A.SCREEN, A.ROUTE, A.APPROVE),
    S.SUBMITTED: (A.SCREEN, A.ROUTE, A.APPROVE, A.SUBMIT),
    S.CLEARED: (A.SCREEN, A.ROUTE, A.APPROVE, A.SUBMIT, A.CLEAR),
    S.SETTLED: (A.SCREEN, A.ROUTE, A.APPROVE, A.SUBMIT, A.CLEAR, A.SETTLE),
    S.REJECTED: (A.REJECT,),
    S.CANCELLED: (A.CANCEL,),
    S.FAILED: (A.SCREEN, A.ROUTE, A.APPROVE, A.FAIL),
    S.RETURNED: (A.SCREEN, A.ROUTE, A.APPROVE, A.SUBMIT, A.SETTLE, A.RETURN),
}
IN_PATHS: dict[PaymentState, tuple[Action, ...]] = {
    S.INITIATED: (),
    S.SCREENED: (A.SCREEN,),
    S.HELD: (A.HOLD,),
    S.CLEARED: (A.SCREEN, A.CLEAR),
    S.SETTLED: (A.SCREEN, A.CLEAR, A.SETTLE),
    S.REJECTED: (A.REJECT,),
    S.FAILED: (A.FAIL,),
    S.RETURNED: (A.SCREEN, A.CLEAR, A.RETURN),
    S.REVERSED: (A.SCREEN, A.CLEAR, A.SETTLE, A.REVERSE),
}


def paths_for(kind: PaymentKind) -> dict[PaymentState, tuple[Action, ...]]:
    if kind is K.DEPOSIT:
        return IN_PATHS
    if kind.between_channels:
        return {s: p for s, p in OUT_PATHS.items() if s is not S.RETURNED}
    return OUT_PATHS


# --- the model of the books and of each payment ------------------------------------------------

Move = tuple[str, str, int]  # source, destination, amount


@dataclass
class Tracked:
    """What the test believes about one payment."""

    id: str
    kind: PaymentKind
    asset: str
    amount: int
    fee: int
    channel: str | None
    destination: str | None
    approval_required: bool
    state: PaymentState = S.INITIATED
    version: int = 1
    posted: dict[Action, list[Move]] = field(default_factory=dict)
    history: list[tuple[Action, PaymentState, PaymentState]] = field(default_factory=list)

    @property
    def gross(self) -> int:
        return self.amount + self.fee


class Books:
    """Posted balances per (address, asset), as the model's posting table makes them."""

    def __init__(self) -> None:
        self.balance: Counter[tuple[str, str]] = Counter()

    def move(self, moves: Sequence[Move], asset: str) -> None:
        for source, destination, amount in moves:
            self.balance[(source, asset)] -= amount
            self.balance[(destination, asset)] += amount

    def get(self, address: str, asset: str) -> int:
        return self.balance[(address, asset)]

    def nonzero(self) -> dict[tuple[str, str], int]:
        return {key: value for key, value in self.balance.items() if value != 0}

    def copy(self) -> dict[tuple[str, str], int]:
        return self.nonzero()


def moves_for(p: Tracked, action: Action) -> list[Move]:
    """model.py's posting table for `action` from p's current state (zero amounts left out)."""
    moves: list[Move]
    if p.kind is K.DEPOSIT:
        assert p.channel is not None
        pending = acct(p.channel, p.asset, "pending_settlement")
        if action is A.CLEAR:
            moves = [(world(p.channel), pending, p.amount)]
        elif action is A.SETTLE:
            moves = [
                (pending, acct(p.channel, p.asset, "available"), p.amount - p.fee),
                (pending, acct(p.channel, p.asset, "fees"), p.fee),
            ]
        elif action is A.RETURN:
            moves = [(pending, world(p.channel), p.amount)]
        elif action is A.REVERSE:
            moves = [(d, s, n) for s, d, n in p.posted[A.SETTLE] + p.posted[A.CLEAR]]
        else:
            moves = []
        return [m for m in moves if m[2] > 0]
    channel = p.channel
    if channel is None:
        return []
    available = acct(channel, p.asset, "available")
    locked = acct(channel, p.asset, "locked")
    in_transit = acct(channel, p.asset, "in_transit")
    if action is A.APPROVE:
        moves = [(available, locked, p.gross)]
    elif action is A.SUBMIT:
        moves = [(locked, in_transit, p.gross)]
    elif action is A.SETTLE:
        assert p.kind is K.PAYOUT or p.destination is not None
        arrival = (
            world(channel)
            if p.kind is K.PAYOUT
            else acct(p.destination or "", p.asset, "available")
        )
        moves = [
            (in_transit, arrival, p.amount),
            (in_transit, acct(channel, p.asset, "fees"), p.fee),
        ]
    elif action in (A.FAIL, A.CANCEL, A.RETRY) and p.state is S.APPROVED:
        moves = [(locked, available, p.gross)]
    elif action in (A.FAIL, A.RETRY) and p.state in (S.SUBMITTED, S.CLEARED):
        moves = [(in_transit, available, p.gross)]
    elif action is A.RETURN:
        moves = [(world(channel), available, p.amount)]
    else:
        moves = []
    return [m for m in moves if m[2] > 0]


def shortfall(books: Books, moves: Sequence[Move], asset: str) -> bool:
    """Would `moves` take a pool account below zero? (world accounts may go negative)"""
    delta: Counter[str] = Counter()
    for source, destination, amount in moves:
        delta[source] -= amount
        delta[destination] += amount
    return any(
        address.startswith("pool:") and change < 0 and books.get(address, asset) + change < 0
        for address, change in delta.items()
    )


# --- the harness ---------------------------------------------------------------------------------


def make_service(ledger: Ledger, store: LedgerStore, seed: int = 11) -> PaymentService:
    return PaymentService(
        ledger, fundpool.stores.payment_store(store), CONFIG, POOL, Uuid7Ids.seeded(seed)
    )


def ledger_balances(store: LedgerStore) -> dict[tuple[str, str], int]:
    """Every non-zero posted balance of the ledger; no payment uses pending transfers."""
    out: dict[tuple[str, str], int] = {}
    for key, balance in store.balances().items():
        assert (balance.pending_out, balance.pending_in) == (0, 0), key
        if balance != Balance():
            out[key] = balance.posted
    return out


class Harness:
    def __init__(self, ledger: Ledger, store: LedgerStore, clock: ManualClock) -> None:
        init_pool(ledger, CONFIG)
        self.ledger = ledger
        self.store = store
        self.clock = clock
        self.svc = make_service(ledger, store)
        self.books = Books()
        self.tracked: dict[str, Tracked] = {}

    # funding the pool from outside, straight on the ledger
    def fund(self, channel: str, asset: str, amount: int) -> None:
        moves = [(world(channel), acct(channel, asset, "available"), amount)]
        self.ledger.transfer(
            [Posting(s, d, asset, n) for s, d, n in moves], metadata={"test": "funding"}
        )
        self.books.move(moves, asset)

    def cover(self, request: PaymentRequest) -> None:
        """Fund what an outbound request needs to be created: creation refuses a payout or
        transfer larger than the pool's available funds for it (payments/funds.py), and the
        lifecycle tests are about what comes after."""
        if request.kind is K.DEPOSIT or (request.kind is not K.PAYOUT
                                         and request.channel is None):
            return  # a transfer's funds are checked on its source, once it has one
        asset = request.asset
        if request.kind is K.PAYOUT:
            channels = [c for c, a in SCHEDULES if a == asset and c != "book"]
        else:
            channels = [request.channel or ""]
        have = sum(self.ledger.balance(acct(c, asset, "available"), asset).available
                   for c in channels)
        if request.amount_minor > have:
            self.fund(request.channel or channels[0], asset, request.amount_minor - have)

    def create(self, request: PaymentRequest, key: str | None = None) -> Payment:
        self.cover(request)
        head = self.ledger.head()
        payment = self.svc.create(request, idempotency_key=key)
        assert self.ledger.head().seq == head.seq, "creating a payment posts nothing"
        channel = request.channel
        fee = 0
        if channel is not None:
            fee = (
                inbound_fee(channel, request.asset, request.amount_minor)
                if request.kind is K.DEPOSIT
                else outbound_fee(channel, request.asset, request.amount_minor)
            )
        tracked = Tracked(
            payment.id,
            request.kind,
            request.asset,
            request.amount_minor,
            fee,
            channel,
            request.destination_channel,
            request.kind is not K.DEPOSIT
            and request.amount_minor >= THRESHOLDS.get(request.asset, 10**40),
        )
        self.tracked[payment.id] = tracked
        self.assert_payment(payment)
        self.check()
        return payment

    def assert_payment(self, payment: Payment) -> None:
        t = self.tracked[payment.id]
        assert payment.state is t.state
        assert payment.version == t.version
        assert payment.kind is t.kind
        assert payment.asset == t.asset
        assert payment.amount_minor == t.amount
        assert payment.fee_minor == t.fee
        assert payment.channel == t.channel
        assert payment.destination_channel == t.destination
        assert payment.approval_required is t.approval_required
        assert payment.pool == "main"

    def model_step(self, t: Tracked, step: Step) -> PaymentState:
        """Apply `step` to the model (it is known to succeed); returns the new state."""
        target = legal_target(t.kind, t.state, step.action)
        assert target is not None, (t.kind, t.state, step.action)
        if step.action is A.ROUTE:
            t.channel = step.channel or t.channel
            t.destination = step.destination_channel or t.destination
            assert t.channel is not None
            t.fee = outbound_fee(t.channel, t.asset, t.amount)
        moves = moves_for(t, step.action)
        self.books.move(moves, t.asset)
        if moves:
            t.posted[step.action] = moves
        t.history.append((step.action, t.state, target))
        t.state = target
        t.version += 1
        return target

    def act(self, payment_id: str, action: Action, **kw: str | None) -> Payment:
        self.clock.advance(seconds=1)
        step = Step(payment_id, action, **kw)  # type: ignore[arg-type]
        payment = self.svc.act(step)
        self.model_step(self.tracked[payment_id], step)
        self.assert_payment(payment)
        assert self.svc.get(payment_id) == payment
        self.check()
        return payment

    def walk(self, payment_id: str, actions: Sequence[Action], **route: str | None) -> Payment:
        payment = self.svc.get(payment_id)
        for action in actions:
            payment = self.act(payment_id, action, **(route if action is A.ROUTE else {}))
        return payment

    def refuse(self, step: Step, code: str) -> FundpoolError:
        """`step` fails with `code` and changes nothing at all."""
        before = self.svc.get(step.payment_id)
        events = self.svc.events(step.payment_id)
        head = self.ledger.head()
        balances = ledger_balances(self.store)
        with pytest.raises(FundpoolError) as caught:
            self.svc.act(step)
        assert caught.value.code == code, (step, str(caught.value))
        assert self.svc.get(step.payment_id) == before
        assert self.svc.events(step.payment_id) == events
        assert self.ledger.head() == head
        assert ledger_balances(self.store) == balances
        self.check()
        return caught.value

    # the whole ledger and the pool view against the model
    def check(self) -> None:
        assert ledger_balances(self.store) == self.books.nonzero()
        check_view(self.store, self.books)


def check_view(store: LedgerStore, books: Books) -> None:
    view = pool_view(store, CONFIG, POOL, RATES)
    seen: set[tuple[str, str]] = set()
    for asset_view in view.assets:
        code = asset_view.asset.code
        totals = Counter[str]()
        for channel, figures in asset_view.by_channel.items():
            seen.add((channel, code))
            expected = {
                name: books.get(acct(channel, code, name), code)
                for name in ("available", "locked", "in_transit", "pending_settlement", "fees")
            }
            got = {
                name: getattr(figures, name)
                for name in ("available", "locked", "in_transit", "pending_settlement", "fees")
            }
            assert got == expected, (channel, code)
            assert figures.total == sum(expected[n] for n in expected if n != "fees")
            totals.update(expected)
        total = asset_view.total
        assert total.available == totals["available"]
        assert total.locked == totals["locked"]
        assert total.in_transit == totals["in_transit"]
        assert total.pending_settlement == totals["pending_settlement"]
        assert total.fees == totals["fees"]
    assert seen == set(CHANNEL_ASSETS)


@pytest.fixture
def h(ledger: Ledger, store: LedgerStore, clock: ManualClock) -> Harness:
    return Harness(ledger, store, clock)


def lit(h: Harness, expected: Mapping[tuple[str, str], int]) -> None:
    """Literal expected balances (hand-worked), and nothing else non-zero in the ledger."""
    assert ledger_balances(h.store) == {k: v for k, v in expected.items() if v != 0}


# --- the table itself ----------------------------------------------------------------------------


def test_the_tables_in_model_py_are_the_ones_this_test_reads() -> None:
    for kind in PaymentKind:
        for state in PaymentState:
            for action in Action:
                mine = legal_target(kind, state, action)
                theirs = next_state(kind, state, action)
                if action is A.RETURN and kind.between_channels:
                    continue  # the table allows it; the service refuses it (tested below)
                assert mine == theirs, (kind, state, action)


# --- happy paths, with literal balances after every step ---------------------------------------


def test_deposit_happy_path(h: Harness) -> None:
    amount, fee = 2_000_250, 36_004  # 2,000,250 x 180 / 10,000 = 36,004.5 -> 36,004 (even)
    assert inbound_fee("card-acq", "USD", amount) == fee
    p = h.create(
        PaymentRequest(
            K.DEPOSIT, "USD", amount, channel="card-acq", counterparty="payer 1", reference="inv-1"
        )
    )
    assert p.fee_minor == fee
    assert p.approval_required is False
    lit(h, {})
    h.act(p.id, A.SCREEN)
    lit(h, {})
    h.act(p.id, A.CLEAR)
    pending = acct("card-acq", "USD", "pending_settlement")
    lit(h, {(world("card-acq"), "USD"): -amount, (pending, "USD"): amount})
    h.act(p.id, A.SETTLE)
    lit(
        h,
        {
            (world("card-acq"), "USD"): -amount,
            (acct("card-acq", "USD", "available"), "USD"): 1_964_246,
            (acct("card-acq", "USD", "fees"), "USD"): 36_004,
        },
    )
    figures = pool_view(h.store, CONFIG, POOL, RATES).asset("USD").by_channel["card-acq"]
    assert (
        figures.available,
        figures.locked,
        figures.in_transit,
        figures.pending_settlement,
        figures.fees,
    ) == (1_964_246, 0, 0, 0, 36_004)
    assert verify(h.store).ok


def test_payout_happy_path_routed_at_route_time(h: Harness) -> None:
    h.fund("bank-a", "USD", 1_000_000)
    amount, fee = 501_000, 275  # 25 fixed + 501,000 x 5 / 10,000 = 250.5 -> 250 (even)
    p = h.create(PaymentRequest(K.PAYOUT, "USD", amount, counterparty="payee"))
    assert p.channel is None
    assert p.fee_minor == 0
    avail, locked = acct("bank-a", "USD", "available"), acct("bank-a", "USD", "locked")
    in_transit, fees = acct("bank-a", "USD", "in_transit"), acct("bank-a", "USD", "fees")
    w = world("bank-a")
    start = {(w, "USD"): -1_000_000, (avail, "USD"): 1_000_000}
    h.act(p.id, A.SCREEN)
    lit(h, start)
    p = h.act(p.id, A.ROUTE, channel="bank-a")
    assert (p.channel, p.fee_minor) == ("bank-a", fee)
    lit(h, start)
    h.act(p.id, A.APPROVE)
    lit(h, {(w, "USD"): -1_000_000, (avail, "USD"): 498_725, (locked, "USD"): 501_275})
    h.act(p.id, A.SUBMIT)
    lit(h, {(w, "USD"): -1_000_000, (avail, "USD"): 498_725, (in_transit, "USD"): 501_275})
    h.act(p.id, A.CLEAR)
    lit(h, {(w, "USD"): -1_000_000, (avail, "USD"): 498_725, (in_transit, "USD"): 501_275})
    h.act(p.id, A.SETTLE)
    lit(h, {(w, "USD"): -499_000, (avail, "USD"): 498_725, (fees, "USD"): 275})
    usd = pool_view(h.store, CONFIG, POOL, RATES).asset("USD")
    assert usd.total.total == 498_725
    assert usd.total.fees == 275
    assert verify(h.store).ok


def test_internal_happy_path(h: Harness) -> None:
    h.fund("card-acq", "USD", 400_000)
    amount, fee = 300_200, 780  # 30 fixed + 300,200 x 25 / 10,000 = 750.5 -> 750 (even)
    p = h.create(
        PaymentRequest(K.INTERNAL, "USD", amount, channel="card-acq", destination_channel="bank-a")
    )
    assert p.fee_minor == fee
    src = {s: acct("card-acq", "USD", s) for s in ("available", "locked", "in_transit", "fees")}
    w = (world("card-acq"), "USD")
    h.walk(p.id, [A.SCREEN, A.ROUTE])
    lit(h, {w: -400_000, (src["available"], "USD"): 400_000})
    h.act(p.id, A.APPROVE)
    lit(h, {w: -400_000, (src["available"], "USD"): 99_020, (src["locked"], "USD"): 300_980})
    h.act(p.id, A.SUBMIT)
    lit(h, {w: -400_000, (src["available"], "USD"): 99_020, (src["in_transit"], "USD"): 300_980})
    h.act(p.id, A.CLEAR)
    lit(h, {w: -400_000, (src["available"], "USD"): 99_020, (src["in_transit"], "USD"): 300_980})
    h.act(p.id, A.SETTLE)
    lit(
        h,
        {
            w: -400_000,
            (src["available"], "USD"): 99_020,
            (src["fees"], "USD"): 780,
            (acct("bank-a", "USD", "available"), "USD"): 300_200,
        },
    )
    usd = pool_view(h.store, CONFIG, POOL, RATES).asset("USD")
    assert usd.by_channel["bank-a"].available == 300_200
    assert usd.by_channel["card-acq"].available == 99_020
    assert usd.total.total == 400_000 - 780
    assert verify(h.store).ok


def test_bridge_happy_path_settles_straight_from_submitted(h: Harness) -> None:
    h.fund("tron", "USDT", 5_000_000_000)
    amount, fee = 2_500_000_000, 1_000_000
    p = h.create(PaymentRequest(K.BRIDGE, "USDT", amount, destination_channel="eth-l1"))
    assert p.channel is None
    assert p.destination_channel == "eth-l1"
    p = h.walk(p.id, [A.SCREEN, A.ROUTE], channel="tron")
    assert (p.channel, p.destination_channel, p.fee_minor) == ("tron", "eth-l1", fee)
    w = (world("tron"), "USDT")
    h.act(p.id, A.APPROVE)
    lit(
        h,
        {
            w: -5_000_000_000,
            (acct("tron", "USDT", "available"), "USDT"): 2_499_000_000,
            (acct("tron", "USDT", "locked"), "USDT"): 2_501_000_000,
        },
    )
    h.act(p.id, A.SUBMIT)
    lit(
        h,
        {
            w: -5_000_000_000,
            (acct("tron", "USDT", "available"), "USDT"): 2_499_000_000,
            (acct("tron", "USDT", "in_transit"), "USDT"): 2_501_000_000,
        },
    )
    h.act(p.id, A.SETTLE)
    lit(
        h,
        {
            w: -5_000_000_000,
            (acct("tron", "USDT", "available"), "USDT"): 2_499_000_000,
            (acct("tron", "USDT", "fees"), "USDT"): 1_000_000,
            (acct("eth-l1", "USDT", "available"), "USDT"): 2_500_000_000,
        },
    )
    usdt = pool_view(h.store, CONFIG, POOL, RATES).asset("USDT")
    assert usdt.by_channel["eth-l1"].available == 2_500_000_000
    assert usdt.total.total == 5_000_000_000 - 1_000_000
    assert verify(h.store).ok


# --- exits ----------------------------------------------------------------------------------------


def payout(h: Harness, amount: int = 100_000, **kw: str | None) -> Payment:
    return h.create(PaymentRequest(K.PAYOUT, "USD", amount, channel="bank-a", **kw))  # type: ignore[arg-type]


def test_hold_and_release(h: Harness) -> None:
    a = payout(h)
    h.act(a.id, A.HOLD)
    assert h.act(a.id, A.RELEASE).state is S.SCREENED
    h.act(a.id, A.HOLD)  # held again, from screened this time
    h.act(a.id, A.RELEASE)
    h.fund("bank-a", "USD", 200_000)
    h.walk(a.id, [A.ROUTE, A.APPROVE, A.SUBMIT, A.SETTLE])
    d = h.create(PaymentRequest(K.DEPOSIT, "USD", 1_000, channel="card-acq"))
    h.walk(d.id, [A.HOLD, A.RELEASE, A.HOLD, A.REJECT])
    assert h.svc.get(d.id).state is S.REJECTED


@pytest.mark.parametrize("state", BEFORE_FUNDS)
def test_reject_before_funds_moves_nothing(h: Harness, state: PaymentState) -> None:
    h.fund("bank-a", "USD", 10_000_000)
    p = payout(h, 1_500_000)  # needs approval: pending_approval is reachable
    h.walk(p.id, OUT_PATHS[state])
    balances = ledger_balances(h.store)
    assert h.act(p.id, A.REJECT).state is S.REJECTED
    assert ledger_balances(h.store) == balances


@pytest.mark.parametrize("state", [*BEFORE_FUNDS, S.APPROVED])
def test_cancel_gives_funds_back(h: Harness, state: PaymentState) -> None:
    h.fund("bank-a", "USD", 10_000_000)
    p = payout(h, 1_500_000)
    path = OUT_PATHS[state]
    if state is S.APPROVED:
        path = (A.SCREEN, A.ROUTE, A.REQUEST_APPROVAL, A.APPROVE)
    before = ledger_balances(h.store)
    h.walk(p.id, path)
    if state is S.APPROVED:
        gross = 1_500_000 + 25 + 750
        assert ledger_balances(h.store)[(acct("bank-a", "USD", "locked"), "USD")] == gross
    assert h.act(p.id, A.CANCEL).state is S.CANCELLED
    assert ledger_balances(h.store) == before
    view = pool_view(h.store, CONFIG, POOL, RATES).asset("USD").by_channel["bank-a"]
    assert (view.available, view.locked, view.fees) == (10_000_000, 0, 0)


@pytest.mark.parametrize("kind", [K.PAYOUT, K.INTERNAL, K.BRIDGE])
@pytest.mark.parametrize("after", [S.APPROVED, S.SUBMITTED, S.CLEARED])
def test_fail_after_funds_moved_gives_them_back(
    h: Harness, kind: PaymentKind, after: PaymentState
) -> None:
    if kind is K.BRIDGE:
        h.fund("tron", "USDT", 9_000_000)
        request = PaymentRequest(
            kind, "USDT", 7_000_000, channel="tron", destination_channel="eth-l1"
        )
        channel, asset, funded = "tron", "USDT", 9_000_000
    else:
        h.fund("card-acq", "USD", 900_000)
        request = PaymentRequest(
            kind,
            "USD",
            800_000,
            channel="card-acq",
            destination_channel="bank-a" if kind is K.INTERNAL else None,
        )
        channel, asset, funded = "card-acq", "USD", 900_000
    before = ledger_balances(h.store)
    p = h.create(request)
    h.walk(p.id, OUT_PATHS[after])
    assert h.act(p.id, A.FAIL).state is S.FAILED
    assert ledger_balances(h.store) == before
    figures = pool_view(h.store, CONFIG, POOL, RATES).asset(asset).by_channel[channel]
    assert figures.available == funded
    assert figures.total == funded
    assert figures.fees == 0


def test_return_of_a_settled_payout_gives_the_amount_back_and_keeps_the_fee(h: Harness) -> None:
    h.fund("bank-a", "USD", 1_000_000)
    p = payout(h, 400_000)  # fee 25 + 200 = 225
    h.walk(p.id, [A.SCREEN, A.ROUTE, A.APPROVE, A.SUBMIT, A.SETTLE])
    assert h.act(p.id, A.RETURN).state is S.RETURNED
    lit(
        h,
        {
            (world("bank-a"), "USD"): -1_000_000 + 400_000 - 400_000,
            (acct("bank-a", "USD", "available"), "USD"): 1_000_000 - 225,
            (acct("bank-a", "USD", "fees"), "USD"): 225,
        },
    )


def test_return_of_a_cleared_deposit(h: Harness) -> None:
    d = h.create(PaymentRequest(K.DEPOSIT, "USD", 50_000, channel="card-acq"))
    h.walk(d.id, [A.SCREEN, A.CLEAR])
    assert h.act(d.id, A.RETURN).state is S.RETURNED
    lit(h, {})


def test_reverse_of_a_settled_deposit_reverses_its_entries(h: Harness) -> None:
    d = h.create(PaymentRequest(K.DEPOSIT, "USD", 70_000, channel="card-acq"))
    h.walk(d.id, [A.SCREEN, A.CLEAR, A.SETTLE])
    events = {e.action: e for e in h.svc.events(d.id)}
    originals = {*events[A.CLEAR].entry_ids, *events[A.SETTLE].entry_ids}
    assert len(originals) == 2
    assert h.act(d.id, A.REVERSE).state is S.REVERSED
    lit(h, {})
    reverse_event = h.svc.events(d.id)[-1]
    assert reverse_event.action is A.REVERSE
    reversed_ids = set()
    for entry_id in reverse_event.entry_ids:
        entry = h.ledger.entry(entry_id)
        assert entry is not None
        reversed_ids.add(entry.body["reverses"])
        assert entry.body["metadata"] == {"payment": d.id, "action": "reverse"}
    assert reversed_ids == originals
    assert verify(h.store).ok


def test_reverse_refused_when_the_money_was_spent(h: Harness) -> None:
    d = h.create(PaymentRequest(K.DEPOSIT, "USD", 100_000, channel="card-acq"))
    h.walk(d.id, [A.SCREEN, A.CLEAR, A.SETTLE])  # available 98,200 (fee 1,800)
    p = h.create(PaymentRequest(K.PAYOUT, "USD", 50_000, channel="card-acq"))
    h.walk(p.id, [A.SCREEN, A.ROUTE, A.APPROVE])
    h.refuse(Step(d.id, A.REVERSE), "insufficient_funds")


# --- illegal transitions -----------------------------------------------------------------------


KIND_REQUESTS = {
    K.DEPOSIT: PaymentRequest(K.DEPOSIT, "USD", 10_000, channel="card-acq"),
    K.PAYOUT: PaymentRequest(K.PAYOUT, "USD", 10_000, channel="bank-a"),
    K.INTERNAL: PaymentRequest(
        K.INTERNAL, "USD", 10_000, channel="bank-a", destination_channel="card-acq"
    ),
    K.BRIDGE: PaymentRequest(
        K.BRIDGE, "USDT", 10_000_000, channel="tron", destination_channel="eth-l1"
    ),
}


@pytest.mark.parametrize("kind", list(PaymentKind))
def test_every_illegal_pair_is_refused_and_changes_nothing(h: Harness, kind: PaymentKind) -> None:
    h.fund("bank-a", "USD", 10_000_000)
    h.fund("tron", "USDT", 10_000_000_000)
    refused = 0
    for state, path in paths_for(kind).items():
        p = h.create(KIND_REQUESTS[kind])
        h.walk(p.id, path)
        assert h.svc.get(p.id).state is state
        for action in Action:
            if legal_target(kind, state, action) is None:
                h.refuse(Step(p.id, action), "illegal_transition")
                refused += 1
    assert refused > 100


def test_return_of_a_settled_transfer_is_illegal(h: Harness) -> None:
    h.fund("bank-a", "USD", 1_000_000)
    p = h.create(KIND_REQUESTS[K.INTERNAL])
    h.walk(p.id, OUT_PATHS[S.SETTLED])
    h.refuse(Step(p.id, A.RETURN), "illegal_transition")


def test_unknown_payment(h: Harness) -> None:
    head = h.ledger.head()
    with pytest.raises(FundpoolError) as caught:
        h.svc.act(Step("0190aaaa-0000-7000-8000-000000000000", A.SCREEN))
    assert caught.value.code == "unknown_payment"
    assert h.ledger.head() == head


# --- approval threshold and funds ----------------------------------------------------------------


def test_payout_at_the_threshold_needs_an_approver(h: Harness) -> None:
    h.fund("bank-a", "USD", 5_000_000)
    below = payout(h, THRESHOLDS["USD"] - 1)
    at = payout(h, THRESHOLDS["USD"])
    assert below.approval_required is False
    assert at.approval_required is True
    h.walk(below.id, [A.SCREEN, A.ROUTE, A.APPROVE])
    h.walk(at.id, [A.SCREEN, A.ROUTE])
    h.refuse(Step(at.id, A.APPROVE), "approval_required")
    h.act(at.id, A.REQUEST_APPROVAL)
    assert h.act(at.id, A.APPROVE).state is S.APPROVED
    dep = h.create(PaymentRequest(K.DEPOSIT, "USD", 5 * THRESHOLDS["USD"], channel="card-acq"))
    assert dep.approval_required is False


def test_insufficient_funds_at_approve(h: Harness) -> None:
    amount = 200_000
    gross = amount + 25 + 100  # fee 25 + 100
    h.fund("bank-a", "USD", gross - 1)
    p = payout(h, amount)
    h.walk(p.id, [A.SCREEN, A.ROUTE])
    h.refuse(Step(p.id, A.APPROVE), "insufficient_funds")
    h.fund("bank-a", "USD", 1)
    h.act(p.id, A.APPROVE)
    view = pool_view(h.store, CONFIG, POOL, RATES).asset("USD").by_channel["bank-a"]
    assert (view.available, view.locked) == (0, gross)


def test_routing_changes_the_fee_to_the_chosen_rail(h: Harness) -> None:
    h.fund("card-acq", "USD", 1_000_000)
    p = payout(h, 100_000)  # created on bank-a: fee 75
    assert p.fee_minor == 75
    p = h.act(p.id, A.SCREEN)
    p = h.act(p.id, A.ROUTE, channel="card-acq")  # 30 + 250
    assert (p.channel, p.fee_minor) == ("card-acq", 280)
    h.walk(p.id, [A.APPROVE, A.SUBMIT, A.SETTLE])


def test_routing_a_transfer_onto_its_destination_is_refused(h: Harness) -> None:
    p = h.create(PaymentRequest(K.INTERNAL, "USD", 1_000, destination_channel="bank-a"))
    h.act(p.id, A.SCREEN)
    h.refuse(Step(p.id, A.ROUTE, channel="bank-a"), "invalid_payment")
    h.refuse(Step(p.id, A.ROUTE), "invalid_payment")  # no channel at all
    h.refuse(Step(p.id, A.ROUTE, channel="tron"), "invalid_payment")  # does not carry USD
    h.act(p.id, A.ROUTE, channel="card-acq")


def test_only_routing_chooses_a_channel(h: Harness) -> None:
    h.fund("bank-a", "USD", 1_000_000)
    p = payout(h)
    h.walk(p.id, [A.SCREEN, A.ROUTE])
    h.refuse(Step(p.id, A.APPROVE, channel="card-acq"), "invalid_payment")


# --- creation: idempotency and bad requests -------------------------------------------------------


def test_idempotent_creation(h: Harness) -> None:
    request = PaymentRequest(
        K.PAYOUT, "USD", 12_345, channel="bank-a", reference="r-1", metadata={"order": "o-9"}
    )
    first = h.create(request, key="key-1")
    again = h.svc.create(request, idempotency_key="key-1")
    assert again.id == first.id
    assert again.version == 1
    assert h.svc.get(first.id) == first
    assert len(h.svc.events(first.id)) == 1
    assert [p.id for p in h.svc.list()] == [first.id]
    head = h.ledger.head()
    with pytest.raises(FundpoolError) as caught:
        h.svc.create(
            PaymentRequest(
                K.PAYOUT,
                "USD",
                12_346,
                channel="bank-a",
                reference="r-1",
                metadata={"order": "o-9"},
            ),
            idempotency_key="key-1",
        )
    assert caught.value.code == "idempotency_conflict"
    assert [p.id for p in h.svc.list()] == [first.id]
    assert h.ledger.head() == head
    # in one call: the same key twice is one payment; a different key is another
    out = h.svc.create_many([(request, "key-2"), (request, "key-2"), (request, "key-1")])
    assert all(isinstance(o, Payment) for o in out)
    assert out[0].id == out[1].id != first.id  # type: ignore[union-attr]
    assert out[2].id == first.id  # type: ignore[union-attr]
    assert len(h.svc.list()) == 2
    # the key survives the payment's progress: a replay after a step returns it as it is now
    h.act(first.id, A.SCREEN)
    replay = h.svc.create(request, idempotency_key="key-1")
    assert replay.id == first.id
    assert replay.state is S.SCREENED
    assert len(h.svc.events(first.id)) == 2


BAD_REQUESTS: list[tuple[str, PaymentRequest, str | None, str]] = [
    (
        "unknown asset",
        PaymentRequest(K.PAYOUT, "GBP", 100, channel="bank-a"),
        None,
        "invalid_payment",
    ),
    ("unknown asset, no channel", PaymentRequest(K.PAYOUT, "GBP", 100), None, "invalid_payment"),
    (
        "channel does not carry the asset",
        PaymentRequest(K.PAYOUT, "USD", 100, channel="tron"),
        None,
        "invalid_payment",
    ),
    (
        "channel not in the pool",
        PaymentRequest(K.PAYOUT, "USD", 100, channel="nope"),
        None,
        "invalid_payment",
    ),
    ("deposit without channel", PaymentRequest(K.DEPOSIT, "USD", 100), None, "invalid_payment"),
    (
        "internal without destination",
        PaymentRequest(K.INTERNAL, "USD", 100, channel="bank-a"),
        None,
        "invalid_payment",
    ),
    (
        "bridge without destination",
        PaymentRequest(K.BRIDGE, "USDT", 100, channel="tron"),
        None,
        "invalid_payment",
    ),
    (
        "same source and destination",
        PaymentRequest(K.INTERNAL, "USD", 100, channel="bank-a", destination_channel="bank-a"),
        None,
        "invalid_payment",
    ),
    (
        "destination not carrying the asset",
        PaymentRequest(K.BRIDGE, "USDT", 100, channel="tron", destination_channel="arb-l2"),
        None,
        "invalid_payment",
    ),
    (
        "payout with destination",
        PaymentRequest(K.PAYOUT, "USD", 100, channel="bank-a", destination_channel="card-acq"),
        None,
        "invalid_payment",
    ),
    (
        "deposit with destination",
        PaymentRequest(K.DEPOSIT, "USD", 100, channel="bank-a", destination_channel="card-acq"),
        None,
        "invalid_payment",
    ),
    ("zero amount", PaymentRequest(K.PAYOUT, "USD", 0, channel="bank-a"), None, "invalid_payment"),
    (
        "negative amount",
        PaymentRequest(K.PAYOUT, "USD", -1, channel="bank-a"),
        None,
        "negative_amount",
    ),
    (
        "float amount",
        PaymentRequest(K.PAYOUT, "USD", 1.0, channel="bank-a"),  # type: ignore[arg-type]
        None,
        "invalid_amount",
    ),
    (
        "bool amount",
        PaymentRequest(K.PAYOUT, "USD", True, channel="bank-a"),
        None,
        "invalid_amount",
    ),
    (
        "counterparty too long",
        PaymentRequest(K.PAYOUT, "USD", 100, channel="bank-a", counterparty="x" * 257),
        None,
        "invalid_payment",
    ),
    (
        "empty counterparty",
        PaymentRequest(K.PAYOUT, "USD", 100, channel="bank-a", counterparty=""),
        None,
        "invalid_payment",
    ),
    (
        "reference too long",
        PaymentRequest(K.PAYOUT, "USD", 100, channel="bank-a", reference="r" * 257),
        None,
        "invalid_payment",
    ),
    (
        "metadata key invalid",
        PaymentRequest(K.PAYOUT, "USD", 100, channel="bank-a", metadata={"a b": "x"}),
        None,
        "invalid_metadata",
    ),
    (
        "metadata value too long",
        PaymentRequest(K.PAYOUT, "USD", 100, channel="bank-a", metadata={"a": "x" * 513}),
        None,
        "invalid_metadata",
    ),
    (
        "metadata value not text",
        PaymentRequest(K.PAYOUT, "USD", 100, channel="bank-a", metadata={"a": 1}),  # type: ignore[dict-item]
        None,
        "invalid_metadata",
    ),
    (
        "too much metadata",
        PaymentRequest(
            K.PAYOUT, "USD", 100, channel="bank-a", metadata={f"k{i}": "v" for i in range(33)}
        ),
        None,
        "invalid_metadata",
    ),
    (
        "bad idempotency key",
        PaymentRequest(K.PAYOUT, "USD", 100, channel="bank-a"),
        "has space",
        "invalid_idempotency_key",
    ),
    (
        "kind not a kind",
        PaymentRequest("payout", "USD", 100, channel="bank-a"),  # type: ignore[arg-type]
        None,
        "invalid_payment",
    ),
]


@pytest.mark.parametrize(
    ("request_", "key", "code"),
    [pytest.param(r, k, c, id=name) for name, r, k, c in BAD_REQUESTS],
)
def test_bad_request_creates_nothing(
    h: Harness, request_: PaymentRequest, key: str | None, code: str
) -> None:
    head = h.ledger.head()
    with pytest.raises(FundpoolError) as caught:
        h.svc.create(request_, idempotency_key=key)
    assert caught.value.code == code, str(caught.value)
    assert h.svc.list() == []
    assert h.ledger.head() == head


def test_text_fields_at_their_limits_are_accepted(h: Harness) -> None:
    p = h.create(
        PaymentRequest(
            K.PAYOUT,
            "USD",
            100,
            channel="bank-a",
            counterparty="x" * 256,
            reference="r" * 256,
            metadata={"k" * 64: "v" * 512},
        )
    )
    stored = h.svc.get(p.id)
    assert stored.counterparty == "x" * 256
    assert stored.reference == "r" * 256
    assert dict(stored.metadata) == {"k" * 64: "v" * 512}


def test_create_many_with_bad_items_creates_only_the_good_ones(h: Harness) -> None:
    good = PaymentRequest(K.PAYOUT, "USD", 100, channel="bank-a")
    h.cover(good)
    out = h.svc.create_many(
        [
            (good, None),
            (PaymentRequest(K.PAYOUT, "USD", 0, channel="bank-a"), None),
            (PaymentRequest(K.DEPOSIT, "USD", 5), None),
            (good, "k"),
        ]
    )
    assert isinstance(out[0], Payment)
    assert isinstance(out[3], Payment)
    assert [o.code for o in out[1:3]] == ["invalid_payment", "invalid_payment"]  # type: ignore[union-attr]
    assert {p.id for p in h.svc.list()} == {out[0].id, out[3].id}
    for p in out[0], out[3]:
        assert [(e.seq, e.action, e.from_state, e.to_state) for e in h.svc.events(p.id)] == [
            (1, A.CREATE, None, S.INITIATED)
        ]


# --- act_many -------------------------------------------------------------------------------------


def test_act_many_applies_the_good_steps_and_reports_the_bad(h: Harness) -> None:
    h.fund("bank-a", "USD", 300_000)
    small = payout(h, 100_000)  # gross 100,075
    big = payout(h, 250_000)  # gross 250,150: cannot be approved after `small`
    dep = h.create(PaymentRequest(K.DEPOSIT, "USD", 10_000, channel="card-acq"))
    h.walk(small.id, [A.SCREEN, A.ROUTE])
    h.walk(big.id, [A.SCREEN, A.ROUTE])
    steps = [
        Step(small.id, A.APPROVE),  # ok
        Step(big.id, A.APPROVE),  # insufficient funds now
        Step(small.id, A.SUBMIT),  # ok: sees the approve
        Step(dep.id, A.CLEAR),  # illegal from initiated
        Step(dep.id, A.SCREEN),  # ok
        Step(dep.id, A.CLEAR),  # ok now
        Step("0190aaaa-0000-7000-8000-000000000000", A.SCREEN),  # unknown
        Step(small.id, A.SUBMIT),  # duplicated outcome: illegal now
        Step(small.id, A.SETTLE, channel="bank-a"),  # a channel on a non-route step
        Step(small.id, A.SETTLE),  # ok
        Step(big.id, A.CANCEL),  # ok: nothing locked
    ]
    out = h.svc.act_many(steps)
    codes = [o.code if isinstance(o, FundpoolError) else o.state.value for o in out]
    assert codes == [
        "approved",
        "insufficient_funds",
        "submitted",
        "illegal_transition",
        "screened",
        "cleared",
        "unknown_payment",
        "illegal_transition",
        "invalid_payment",
        "settled",
        "cancelled",
    ]
    for step, outcome in zip(steps, out, strict=True):
        if isinstance(outcome, Payment):
            h.model_step(h.tracked[step.payment_id], step)
    h.check()
    for t in h.tracked.values():
        h.assert_payment(h.svc.get(t.id))
        assert [(e.action, e.from_state, e.to_state) for e in h.svc.events(t.id)[1:]] == t.history
    lit(
        h,
        {
            (world("bank-a"), "USD"): -300_000 + 100_000,
            (acct("bank-a", "USD", "available"), "USD"): 300_000 - 100_075,
            (acct("bank-a", "USD", "fees"), "USD"): 75,
            (world("card-acq"), "USD"): -10_000,
            (acct("card-acq", "USD", "pending_settlement"), "USD"): 10_000,
        },
    )
    assert verify(h.store).ok


def test_act_many_all_bad_changes_nothing(h: Harness) -> None:
    p = payout(h, 100_000)
    head = h.ledger.head()
    out = h.svc.act_many([Step(p.id, A.APPROVE), Step(p.id, A.SETTLE), Step(p.id, A.CREATE)])
    assert [o.code for o in out] == ["illegal_transition"] * 3  # type: ignore[union-attr]
    assert h.ledger.head() == head
    assert h.svc.get(p.id) == p
    assert len(h.svc.events(p.id)) == 1


# --- events ---------------------------------------------------------------------------------------


POSTING_ACTIONS = {
    K.DEPOSIT: {A.CLEAR: 1, A.SETTLE: 1, A.RETURN: 1, A.REVERSE: 2},
    K.PAYOUT: {A.APPROVE: 1, A.SUBMIT: 1, A.SETTLE: 1, A.RETURN: 1},
}


def check_events(h: Harness, payment_id: str) -> list[PaymentEvent]:
    t = h.tracked[payment_id]
    events = h.svc.events(payment_id)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert events[0].action is A.CREATE
    assert events[0].from_state is None
    assert events[0].to_state is S.INITIATED
    assert events[0].entry_ids == ()
    for before, after in itertools.pairwise(events):
        assert after.from_state is before.to_state
        assert after.at_us >= before.at_us
    assert events[-1].to_state is t.state
    assert len(events) == t.version
    for event in events:
        assert event.payment_id == payment_id
        for entry_id in event.entry_ids:
            entry = h.ledger.entry(entry_id)
            assert entry is not None, entry_id
            assert entry.body["metadata"] == {"payment": payment_id, "action": event.action.value}
            assert entry.at_us == event.at_us
    return events


def payment_entries(h: Harness) -> dict[str, set[str]]:
    """Every transfer entry in the journal that names a payment."""
    out: dict[str, set[str]] = {}
    for stored in h.store.entries():
        entry = h.ledger.entry(stored.id)
        assert entry is not None
        metadata = entry.body.get("metadata") or {}
        assert isinstance(metadata, dict)
        if "payment" in metadata:
            out.setdefault(str(metadata["payment"]), set()).add(entry.id)
    return out


def test_events_chain_and_name_their_entries(h: Harness) -> None:
    h.fund("bank-a", "USD", 2_000_000)
    h.fund("tron", "USDT", 2_000_000_000)
    d1 = h.create(PaymentRequest(K.DEPOSIT, "USD", 30_000, channel="card-acq"))
    h.walk(d1.id, [A.HOLD, A.RELEASE, A.CLEAR, A.SETTLE, A.REVERSE])
    d2 = h.create(PaymentRequest(K.DEPOSIT, "USD", 30_000, channel="card-acq"))
    h.walk(d2.id, [A.SCREEN, A.CLEAR, A.RETURN])
    p1 = payout(h, 1_200_000)
    h.walk(
        p1.id,
        [A.SCREEN, A.ROUTE, A.REQUEST_APPROVAL, A.APPROVE, A.SUBMIT, A.CLEAR, A.SETTLE, A.RETURN],
    )
    p2 = payout(h, 10_000)
    h.walk(p2.id, [A.SCREEN, A.ROUTE, A.APPROVE, A.SUBMIT, A.FAIL])
    i1 = h.create(KIND_REQUESTS[K.INTERNAL])
    h.walk(i1.id, [A.SCREEN, A.ROUTE, A.APPROVE, A.CANCEL])
    b1 = h.create(KIND_REQUESTS[K.BRIDGE])
    h.walk(b1.id, [A.SCREEN, A.ROUTE, A.APPROVE, A.SUBMIT, A.CLEAR, A.SETTLE])
    by_payment = payment_entries(h)
    for pid in h.tracked:
        events = check_events(h, pid)
        ids = [i for e in events for i in e.entry_ids]
        assert len(ids) == len(set(ids))
        assert set(ids) == by_payment.get(pid, set())
    assert [len(e.entry_ids) for e in h.svc.events(d1.id)] == [0, 0, 0, 1, 1, 2]
    assert [len(e.entry_ids) for e in h.svc.events(p1.id)] == [0, 0, 0, 0, 1, 1, 0, 1, 1]
    assert [len(e.entry_ids) for e in h.svc.events(p2.id)] == [0, 0, 0, 1, 1, 1]
    assert [len(e.entry_ids) for e in h.svc.events(i1.id)] == [0, 0, 0, 1, 1]
    assert verify(h.store).ok


def test_list_filters(h: Harness) -> None:
    a = payout(h)
    b = h.create(PaymentRequest(K.DEPOSIT, "USD", 100, channel="card-acq"))
    c = h.create(KIND_REQUESTS[K.BRIDGE])
    h.act(b.id, A.SCREEN)
    assert [p.id for p in h.svc.list()] == [c.id, b.id, a.id]
    assert [p.id for p in h.svc.list(state=S.SCREENED)] == [b.id]
    assert [p.id for p in h.svc.list(kind=K.BRIDGE)] == [c.id]
    assert [p.id for p in h.svc.list(asset="USD")] == [b.id, a.id]
    assert [p.id for p in h.svc.list(channel="bank-a")] == [a.id]
    assert [p.id for p in h.svc.list(limit=1, after_id=b.id)] == [a.id]


def test_routing_a_payout_refuses_a_destination_channel(h: Harness) -> None:
    """create refuses a payout with a destination channel; routing must refuse it too."""
    p = payout(h)
    h.act(p.id, A.SCREEN)
    h.refuse(Step(p.id, A.ROUTE, channel="bank-a", destination_channel="tron"), "invalid_payment")


def test_a_deposit_settled_and_reversed_in_one_call(h: Harness) -> None:
    d = h.create(PaymentRequest(K.DEPOSIT, "USD", 40_000, channel="card-acq"))
    steps = [Step(d.id, a) for a in (A.SCREEN, A.CLEAR, A.SETTLE, A.REVERSE)]
    out = h.svc.act_many(steps)
    assert [o.state if isinstance(o, Payment) else o.code for o in out] == [
        S.SCREENED,
        S.CLEARED,
        S.SETTLED,
        S.REVERSED,
    ]
    for step in steps:
        h.model_step(h.tracked[d.id], step)
    h.check()
    lit(h, {})
    check_events(h, d.id)
    assert len(h.svc.events(d.id)[-1].entry_ids) == 2
    assert verify(h.store).ok


def test_the_reason_is_kept_with_the_event(h: Harness) -> None:
    h.fund("bank-a", "USD", 1_000_000)
    p = payout(h)
    h.walk(p.id, [A.SCREEN, A.ROUTE, A.APPROVE, A.SUBMIT])
    h.svc.act(Step(p.id, A.FAIL, reason="timeout: no outcome in 24 h"))
    h.model_step(h.tracked[p.id], Step(p.id, A.FAIL))
    h.check()
    last = h.svc.events(p.id)[-1]
    assert (last.action, last.from_state, last.to_state) == (A.FAIL, S.SUBMITTED, S.FAILED)
    assert last.reason == "timeout: no outcome in 24 h"
    # a late outcome after the timeout is refused and changes nothing
    h.refuse(Step(p.id, A.SETTLE), "illegal_transition")
    h.refuse(Step(p.id, A.FAIL), "illegal_transition")


def test_one_key_two_requests_in_one_call(h: Harness) -> None:
    one = PaymentRequest(K.PAYOUT, "USD", 100, channel="bank-a")
    two = PaymentRequest(K.PAYOUT, "USD", 101, channel="bank-a")
    h.cover(two)
    out = h.svc.create_many([(one, "same"), (two, "same"), (one, "same")])
    assert isinstance(out[0], Payment)
    assert isinstance(out[1], FundpoolError)
    assert out[1].code == "idempotency_conflict"
    assert isinstance(out[2], Payment)
    assert out[2].id == out[0].id
    assert [p.id for p in h.svc.list()] == [out[0].id]
