"""The traffic simulator: realistic flows through a real pool, on simulated rails.

`Simulation` runs on the payment machinery the composition root builds for it
(`compose.simulation`: the payment service, one `SimulatedRail` per channel of the pool, the
learning router, the dispatcher, as `sim.rails.Dispatching`), funds each channel once with an
opening float, and then, step by step, creates what a wallet or payments company sees in a day
and lets the dispatcher carry it:

- fraud-like patterns (5 % of all traffic, see below); of the rest:
- deposits (40 %): customers paying in on every inbound rail; half the card deposits are paid
  to a merchant, who is credited at once (instant settlement) up to the configured caps;
- payouts (50 %): to a few thousand payees, routed by the router across the rails that
  carry the asset; large ones wait for an approver, and the simulator approves them a few
  seconds later, as a cashier would;
- internal transfers (7 %): sweeps between the pool's own channels of one asset;
- bridge transfers (3 %): ETH from the L1 to the L2 and back;
- the fraud-like patterns are labelled in the payment's metadata (`pattern`) so that the risk
  work can measure what it catches: velocity bursts (one payee, many small payouts within a
  few seconds), structuring (payouts just under the approval threshold), round amounts to
  never-seen payees, and mule flows (a deposit then at once a payout of nearly all of it, to a
  new payee whose account is one of a few collection accounts the mules share: a ring).

Failures, returns, duplicate and out-of-order reports come from the rails' own profiles.

Amounts are drawn as integers of minor units (a decade by weight, then uniformly within it):
no float ever touches an amount. Time is whatever clock the ledger runs on: a `ManualClock`
moved by `step` (as fast as the machine goes, deterministic under the seed), or the wall
clock, scaled (`ScaledClock`), for a live demo.
"""

from __future__ import annotations

import functools
import hashlib
import random
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from fundpool.core.actor import SIMULATED_APPROVER, SIMULATOR, Actor
from fundpool.core.clock import Clock
from fundpool.core.errors import FundpoolError
from fundpool.core.ledger.model import Posting, Transfer
from fundpool.payments.dispatch import Intake, TickReport
from fundpool.payments.instant import MERCHANT_KEY
from fundpool.payments.model import Outcome, Payment, PaymentKind, PaymentRequest, PaymentState
from fundpool.payments.rules import NOT_FOR_PAYOUTS
from fundpool.pool.accounts import PoolState, pool_account, world_account
from fundpool.pool.config import (
    ChannelKind,
    FundpoolConfig,
    InvalidConfig,
    OwnerKind,
    PoolConfig,
)
from fundpool.pool.setup import init_pool
from fundpool.sim.rails import Dispatching
from fundpool.sim.treasury import (
    PURPOSE,
    TREASURY_COUNTERPARTY,
    Treasury,
    opening_float_minor,
)
from fundpool.treasury.config import pool_treasury

PAYEES = 2_000
SIMULATED_PREFIX = "sim-"  # the references (and keys) of the simulator's payments
APPROVAL_DELAY_US = 3_000_000  # a cashier approves large payouts after a few seconds
SWEEP_SHARE = 0.07
BRIDGE_SHARE = 0.03
DEPOSIT_SHARE = 0.40
FRAUD_SHARE = 0.05
MULE_ACCOUNTS = 5  # the collection accounts the mules' payees are paid into
# Typical payment sizes in whole units: (decade exponent, weight) — most payments are small.
DECADES = ((0, 20), (1, 35), (2, 30), (3, 12), (4, 3))
ETH_DECADES = ((-3, 20), (-2, 35), (-1, 30), (0, 12), (1, 3))


def desk_swept(config: FundpoolConfig, pool: PoolConfig) -> frozenset[tuple[str, str]]:
    """(asset, channel) of the rails a sweep rule of the pool's treasury desk keeps funded."""
    sweeps = pool_treasury(config, pool).sweeps
    return frozenset((str(rule["asset"]), str(p["channel"])) for rule in sweeps
                     for p in rule.get("participants", []) if isinstance(p, Mapping))


class Flow(Protocol):
    """Where the simulator's payments go: a `Dispatcher`, or a server's engine."""

    def intake(self, requests: Sequence[tuple[PaymentRequest, str | None]], *,
               actor: Actor | None = None) -> list[Intake]: ...

    def approve(self, payment_ids: Sequence[str], *, actor: Actor | None = None
                ) -> list[Outcome]: ...

    def tick(self) -> TickReport: ...

    def flush_records(self) -> None: ...


class ScaledClock:
    """Wall-clock time run `speed` times faster from the moment it is made: a live demo
    shows a day of rails (a card acquirer's T+2, a wire's hours) in minutes."""

    def __init__(self, speed: float = 1.0, start_us: int | None = None) -> None:
        self._speed = speed
        self._wall0 = time.time_ns() // 1000
        self._start = self._wall0 if start_us is None else start_us

    def now_us(self) -> int:
        return self._start + int((time.time_ns() // 1000 - self._wall0) * self._speed)


@dataclass(slots=True)
class SimulationReport:
    created: Counter[str] = field(default_factory=Counter)  # by kind
    refused: Counter[str] = field(default_factory=Counter)  # by error code
    patterns: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)  # by disposition
    steps: Counter[str] = field(default_factory=Counter)
    batches: int = 0
    failovers: int = 0
    approvals: int = 0
    ticks: int = 0
    stuck: int = 0

    def add_tick(self, tick: TickReport) -> None:
        self.outcomes.update(tick.outcomes)
        self.steps.update(tick.steps)
        self.batches += tick.batches
        self.failovers += tick.failovers
        self.ticks += 1
        self.stuck = tick.stuck


class Simulation:
    """Traffic for the pool of `dispatching`, drawn under `seed`, on `clock`. `run_id` names
    the run (`compose.simulation` takes the clock's time at its start, and names the rails'
    instance by it too): its rail references, outcome ids and idempotency keys then never
    meet an earlier run's on the same store."""

    def __init__(self, dispatching: Dispatching, *, seed: int, clock: Clock,
                 run_id: str, flow: Flow | None = None) -> None:
        config, pool = dispatching.config, dispatching.pool
        self.config = config
        self.pool = pool
        self.service = dispatching.payments
        self.ledger = self.service.ledger
        self.rails = dispatching.rails
        self.router = dispatching.router
        self.dispatcher = dispatching.dispatcher
        # Where its payments go: the dispatcher itself (a run on its own), or a server's
        # payment engine, which takes them up as it takes up the API's (sim/service.py).
        self.flow: Flow = flow if flow is not None else dispatching.dispatcher
        self.clock = clock
        self.run_id = run_id
        self._rng = random.Random(f"fundpool/simulate/{seed}")
        channels = [config.channel(cid) for cid in pool.channels]
        self.report = SimulationReport()
        self._serial = 0
        self._followups: list[tuple[PaymentRequest, str]] = []
        self._awaiting_approval: list[tuple[int, str]] = []
        self._assets = sorted({a for c in channels for a in c.assets})
        self._inbound = {
            asset: [c.id for c in channels if asset in c.assets and c.kind is not ChannelKind.BOOK]
            for asset in self._assets
        }
        self._payout_assets = [
            a for a in self._assets
            if any(a in c.assets and c.kind not in NOT_FOR_PAYOUTS for c in channels)
        ]
        # Assets a customer can pay in (a rail other than the pool's own books carries them).
        self._deposit_assets = [a for a in self._assets if self._inbound[a]]
        if not self._deposit_assets and not self._payout_assets:
            raise InvalidConfig(
                "the pool has no rail that carries a deposit or a payout: nothing to simulate",
                source=config.source, pool=pool.id,
            )
        self._pairs = {
            asset: [c.id for c in channels if asset in c.assets and c.kind is not ChannelKind.BOOK]
            for asset in self._assets
        }
        self._card = [c.id for c in channels if c.kind is ChannelKind.CARD_ACQUIRER]
        self._merchants = [o.id for o in config.owners if o.kind is OwnerKind.MERCHANT]
        self._bridges = [
            (a.id, b.id, asset)
            for a in channels for b in channels for asset in a.assets
            if a.id != b.id and asset in b.assets
            and {a.kind, b.kind} == {ChannelKind.EVM_L1, ChannelKind.EVM_L2}
        ]
        self._scales = {a.code: a.scale for a in config.assets}

    # --- setup ----------------------------------------------------------------------------

    def open_pool(self) -> None:
        """Create the pool's accounts and give every channel its opening float, once (a
        second run on the same ledger finds both done: the transfers carry idempotency
        keys)."""
        init_pool(self.ledger, self.config)
        commands = []
        for cid in self.pool.channels:
            channel = self.config.channel(cid)
            for asset in channel.assets:
                amount = opening_float_minor(channel, asset, self._scales[asset])
                commands.append(Transfer(
                    (Posting(world_account(cid),
                             pool_account(self.pool.id, asset, cid, PoolState.AVAILABLE),
                             asset, amount),),
                    {"purpose": "opening float"},
                    idempotency_key=f"sim-opening-float:{self.pool.id}:{cid}:{asset}",
                ))
        for result in self.ledger.submit(commands):
            if result.error is not None:
                raise result.error

    # --- one step -------------------------------------------------------------------------

    def step(self, count: int) -> TickReport:
        """Create `count` payments (and the approvals now due), then one dispatcher tick."""
        requests: list[tuple[PaymentRequest, str | None]] = list(self._followups)
        self._followups = []
        requests += [self._draw() for _ in range(count)]
        if requests:
            for start in range(0, len(requests), 4_096):
                self._intake(requests[start : start + 4_096])
        self._approve_due()
        tick = self.flow.tick()
        self.report.add_tick(tick)
        return tick

    def _intake(self, requests: Sequence[tuple[PaymentRequest, str | None]]) -> None:
        intakes = self.flow.intake(requests, actor=SIMULATOR)
        for (request, _), intake in zip(requests, intakes, strict=True):
            if request.metadata.get("purpose") == PURPOSE and request.reference:
                self.treasury.taken(request.reference, intake.outcome)  # it follows its own
            if isinstance(intake.outcome, FundpoolError):
                self.report.refused[intake.outcome.code] += 1
                continue
            payment = intake.outcome
            self.report.created[request.kind.value] += 1
            pattern = request.metadata.get("pattern")
            if pattern:
                self.report.patterns[pattern] += 1
            if payment.state is PaymentState.PENDING_APPROVAL:
                due = self.clock.now_us() + APPROVAL_DELAY_US
                self._awaiting_approval.append((due, payment.id))
            for error in intake.errors:
                self.report.refused[error.code] += 1

    def _approve_due(self) -> None:
        now = self.clock.now_us()
        due = [pid for at, pid in self._awaiting_approval if at <= now]
        if not due:
            return
        self._awaiting_approval = [(at, pid) for at, pid in self._awaiting_approval if at > now]
        for outcome in self.flow.approve(due, actor=SIMULATED_APPROVER):
            if isinstance(outcome, Payment):
                self.report.approvals += 1

    # --- drawing flows --------------------------------------------------------------------

    def _amount(self, asset: str, decades: Sequence[tuple[int, int]] | None = None) -> int:
        table = decades or (ETH_DECADES if asset == "ETH" else DECADES)
        exponents = [e for e, _ in table]
        (exponent,) = self._rng.choices(exponents, weights=[w for _, w in table])
        power = exponent + self._scales[asset]
        low = 10 ** max(power, 0)
        return self._rng.randint(low, 10 * low - 1)

    def _fit(self, amount: int, asset: str, *channels: str) -> int:
        """The amount moved into every named channel's limits for the asset (a real payer
        would not send what the rail refuses)."""
        for cid in channels:
            limits = self.config.channel(cid).limits_for(asset)
            amount = max(amount, limits.min_minor)
            if limits.max_minor is not None:
                amount = min(amount, limits.max_minor)
        return amount

    def _key(self, prefix: str) -> str:
        self._serial += 1
        return f"{SIMULATED_PREFIX}{self.run_id}-{prefix}-{self._serial}"

    @functools.cached_property
    def treasury(self) -> Treasury:
        """The simulated treasury team (sim/treasury.py): it reads the rails' balances
        through the ledger and keeps them funded."""
        def available(address: str, asset: str) -> int:
            return self.ledger.balance(address, asset).available

        return Treasury(self.config, self.pool, available, self.service.states,
                        leave=desk_swept(self.config, self.pool))

    def _treasury_request(self) -> tuple[PaymentRequest, str] | None:
        """The treasury's next payment, when it has one: every `CHECK_EVERY_US` of the
        simulation's clock it looks at the rails and queues what they need, and each draw
        takes one from the queue before any customer's traffic."""
        order = self.treasury.next_order(self.clock.now_us())
        if order is None:
            return None
        key = self._key("treasury")
        self.treasury.named(order, key)
        if order.source is None:
            request = PaymentRequest(
                PaymentKind.DEPOSIT, order.asset, order.amount_minor, order.destination,
                counterparty=TREASURY_COUNTERPARTY, reference=key,
                metadata={"purpose": PURPOSE})
        else:
            request = PaymentRequest(order.kind, order.asset, order.amount_minor,
                                     order.source, order.destination, reference=key,
                                     metadata={"purpose": PURPOSE})
        return request, key

    def _draw(self) -> tuple[PaymentRequest, str | None]:
        treasury = self._treasury_request()
        if treasury is not None:
            return treasury
        roll = self._rng.random()
        if roll < FRAUD_SHARE:
            return self._fraud()
        roll = self._rng.random()
        if roll < DEPOSIT_SHARE:
            return self._deposit()
        if roll < DEPOSIT_SHARE + SWEEP_SHARE:
            return self._sweep()
        if roll < DEPOSIT_SHARE + SWEEP_SHARE + BRIDGE_SHARE and self._bridges:
            source, destination, asset = self._rng.choice(self._bridges)
            amount = self._fit(self._amount(asset), asset, source, destination)
            request = PaymentRequest(PaymentKind.BRIDGE, asset, amount, source,
                                     destination, reference=self._key("bridge"))
            return request, request.reference
        return self._payout()

    def _deposit(self, metadata: dict[str, str] | None = None) -> tuple[PaymentRequest, str]:
        if not self._deposit_assets:
            return self._payout()
        asset = self._rng.choice(self._deposit_assets)
        channel = self._rng.choice(self._inbound[asset])
        meta = dict(metadata or {})
        if channel in self._card and self._merchants and self._rng.random() < 0.5:
            meta[MERCHANT_KEY] = self._rng.choice(self._merchants)
        key = self._key("deposit")
        request = PaymentRequest(
            PaymentKind.DEPOSIT, asset, self._fit(self._amount(asset), asset, channel), channel,
            counterparty=f"customer-{self._rng.randrange(PAYEES * 5)}", reference=key,
            metadata=meta,
        )
        return request, key

    def _payout(self, **overrides: object) -> tuple[PaymentRequest, str]:
        if not self._payout_assets:
            return self._deposit()
        asset = str(overrides.get("asset") or self._rng.choice(self._payout_assets))
        amount = overrides.get("amount")
        key = self._key("payout")
        payee = str(overrides.get("payee") or f"payee-{self._rng.randrange(PAYEES)}")
        request = PaymentRequest(
            PaymentKind.PAYOUT, asset,
            amount if isinstance(amount, int) else self._amount(asset),
            counterparty=payee,
            reference=key,
            metadata={k: str(v) for k, v in overrides.items()
                      if k in ("pattern",)},
            # A mule's payee is paid into an account the ring shares.
            destination=self._destination(str(overrides.get("account_of") or payee), asset),
        )
        return request, key

    def _destination(self, payee: str, asset: str) -> str:
        """The payee's account: an address on a chain for ETH (its rails are all EVM chains),
        an account number otherwise. Derived from the payee (no draw), so a payee keeps it."""
        digest = hashlib.sha256(payee.encode()).hexdigest()
        if asset == "ETH":
            return "0x" + digest[:40]
        return f"ACCT-{int(digest[:12], 16) % 10**10:010d}"

    def _sweep(self) -> tuple[PaymentRequest, str]:
        assets = [a for a in self._assets if len(self._pairs[a]) > 1]
        if not assets:
            return self._payout()
        asset = self._rng.choice(assets)
        source, destination = self._rng.sample(self._pairs[asset], 2)
        key = self._key("sweep")
        amount = self._fit(self._amount(asset), asset, source, destination)
        return PaymentRequest(PaymentKind.INTERNAL, asset, amount, source,
                              destination, reference=key), key

    def _fraud(self) -> tuple[PaymentRequest, str]:
        pattern = self._rng.choice(("velocity_burst", "structuring", "round_amount_new_payee",
                                    "mule"))
        if not self._payout_assets or not self._deposit_assets:
            return self._deposit() if self._deposit_assets else self._payout()
        asset = self._rng.choice(self._payout_assets)
        if pattern == "velocity_burst":
            payee = f"payee-burst-{self._rng.randrange(20)}"
            return self._payout(asset=asset, payee=payee, pattern=pattern,
                                amount=self._amount(asset, ((0, 1),)))
        if pattern == "structuring":
            threshold = self.pool.approval_thresholds.get(asset)
            if threshold:
                under = threshold - self._rng.randint(1, max(1, threshold // 50))
                return self._payout(asset=asset, pattern=pattern, amount=under)
        if pattern == "round_amount_new_payee":
            units = self._rng.choice((1_000, 5_000, 9_000, 10_000))
            scale = self._scales[asset]
            amount = units * 10 ** scale if asset != "ETH" else units * 10 ** (scale - 3)
            return self._payout(asset=asset, pattern=pattern, amount=amount,
                                payee=f"new-payee-{self._serial}")
        # a mule: money in, and nearly all of it out at once (in the next step)
        request, key = self._deposit({"pattern": "mule"})
        if request.asset in self._payout_assets:
            self._followups.append(self._payout(
                asset=request.asset, pattern="mule", payee=f"mule-out-{self._serial}",
                account_of=f"mule-collector-{self._serial % MULE_ACCOUNTS}",
                amount=request.amount_minor * 95 // 100 or 1,
            ))
        return request, key

    # --- running --------------------------------------------------------------------------

    def run(
        self,
        *,
        rate_per_s: float,
        duration_s: float,
        step_s: float = 0.1,
        speed: float = 1.0,
        advance: Callable[[float], None] | None = None,
        on_step: Callable[[TickReport], None] | None = None,
    ) -> SimulationReport:
        """Run for `duration_s` seconds at `rate_per_s` payments a second, a step every
        `step_s` seconds. With `advance` (a ManualClock's), the simulator moves time itself
        and runs as fast as it can. Without it, it keeps pace with the clock, sleeping; a
        clock running `speed` times faster than the wall (ScaledClock) is divided back, so
        rate and duration stay in wall seconds while the rails live `speed` times faster."""
        start = self.clock.now_us()
        end = start + int(duration_s * speed * 1_000_000)
        owed = 0.0
        last = start
        while True:
            now = self.clock.now_us()
            if now >= end:
                break
            owed += rate_per_s * (now - last) / speed / 1_000_000
            last = now
            count = int(owed)
            owed -= count
            tick = self.step(count)
            if on_step is not None:
                on_step(tick)
            if advance is not None:
                advance(step_s)
            else:
                spent = (self.clock.now_us() - now) / speed / 1_000_000
                time.sleep(max(0.0, step_s - spent))
        self.flow.flush_records()
        return self.report
