"""Liquidity management of one pool: bands per channel and asset, sweeps, the rebalancing
planner and credit lines (treasury/bands.py, sweeps.py, rebalance.py, credit.py).

**Bands.** Each position (channel, asset) has a minimum, a target and a maximum available
balance: from the treasury file's `[[bands]]`, else from the channel's configured depth (its
low depth as the minimum, its target depth as the target, 1.5 x the target as the maximum: the
levels the channel's health and alerts already use), else none.

**Every rail movement is a payment.** A sweep's move and a plan's transfer is an internal
transfer (or a bridge between an L1 and its L2) created through the payment service, by the
desk's actor, with the idempotency key `<plan or run id>-<n>`; the payment engine screens,
routes, asks approvers where the approval rules say, and carries it. So risk rules, approvals
and the audit log apply to treasury movements exactly as to a cashier's.

**Sweeps** run on a schedule (the desk runner, every `sweep_every_s`) or when asked. A rule is
never run while its previous run has a payment that has not ended (`sweep_pending`), and never
on stale balances: the balances are read in one consistent read just before planning, and a
plan older than `stale_after_s` is refused (`stale_balances`). Moves never take a source below
its band minimum (treasury/sweeps.py).

**Rebalancing plans** are proposed from the live balances and the channels' quotes (each
route's fee from the source channel's fee schedule, its latency from the channel's kind), and
explained. A plan is `proposed`, then approved by another person (`treasury:approve`; never
its proposer) and executed as payments, or executed at once when every transfer is within the
`auto_execute` limit of its asset (the policy's limits), or rejected. Executing re-reads the
balances: a plan whose source no longer holds the transfer above its minimum is `outdated`,
and nothing is sent. A plan `executing` becomes `executed` when every payment has ended.

**Credit lines** (`[[credit_lines]]`): a facility with a limit and an annual rate on a channel.
Each run draws what brings the channel back to its target when it is below its minimum (never
beyond the limit), repays from the surplus above the target, and accrues the interest of each
whole UTC day since the last accrual (exact, the fraction of a minor unit carried to the next
day: treasury/credit.py). In the ledger: `credit:<pool>:<id>:lender` (may go down to minus the
limit: the ledger itself refuses a draw beyond it) -> the channel's available on a draw, back
on a repayment. Interest is simple, on the principal drawn: each day's accrual posts
`credit:<pool>:<id>:interest_due` -> `credit:<pool>:<id>:interest` (the expense), and a
repayment pays the interest due first, then the principal; what is owed is minus the lender's
and the interest-due accounts' balances. Interest due never uses the limit. A draw is money the
lender sends into the pool's account, not a payment the pool makes, so it is a ledger
transaction with the desk's actor (and the desk's trail), as FX conversions are.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from fractions import Fraction
from typing import Any

from fundpool.core.actor import Actor
from fundpool.core.clock import Clock, IdSource
from fundpool.core.errors import FundpoolError
from fundpool.core.ledger.model import Account, Posting
from fundpool.desk.fx import actor_text
from fundpool.desk.ports import DeskAction, DeskObject, DeskStore
from fundpool.ledger.service import Ledger
from fundpool.payments.model import (
    Action,
    Payment,
    PaymentKind,
    PaymentRequest,
    PaymentState,
    Step,
)
from fundpool.payments.service import PaymentService
from fundpool.pool.accounts import PoolState, pool_account
from fundpool.pool.config import ChannelConfig, ChannelKind, FundpoolConfig, PoolConfig
from fundpool.pool.rates import StaticRates
from fundpool.pool.view import pool_view
from fundpool.treasury import bands as bands_
from fundpool.treasury import credit, rebalance, sweeps
from fundpool.treasury.config import InvalidTreasuryConfig, TreasuryConfig

PLAN, SWEEP_RUN, CREDIT = "plan", "sweep_run", "credit"
PROPOSED, EXECUTING, EXECUTED, REJECTED, OUTDATED = (
    "proposed", "executing", "executed", "rejected", "outdated")
NOTHING_TO_MOVE = "nothing_to_move"
# The metadata key of every payment the desk creates (its value: rebalance or sweep).
TREASURY_KEY = "treasury"
RUNNING, DONE = "running", "done"
DAY_US = 86_400_000_000
ACCRUAL_DAYS_MAX = 366  # one run accrues at most a year of missed days
SECOND_US = 1_000_000
# How long money takes to arrive over a channel of each kind, in seconds: the simulated rails'
# measured figures with the engine's batching (sim/treasury.py's lead times), and a bank wire
# the same day. The planner's latency of a route is its source channel's.
LATENCY_S: Mapping[ChannelKind, int] = {
    ChannelKind.INSTANT_CREDIT: 15,
    ChannelKind.CBDC: 10,
    ChannelKind.EVM_L2: 15,
    ChannelKind.STABLECOIN_RAIL: 80,
    ChannelKind.EVM_L1: 330,
    ChannelKind.BOOK: 5,
    ChannelKind.BANK_WIRE: 6 * 3_600,
    ChannelKind.CARD_ACQUIRER: 3 * 86_400,
}
# A card acquirer's account is paid into by captures only: never a source or a destination.
NOT_MANAGED = frozenset({ChannelKind.CARD_ACQUIRER})
SURPLUS_NUM, SURPLUS_DEN = 3, 2  # a band from a depth: its maximum is 1.5 x its target
DONE_STATES = frozenset({PaymentState.SETTLED, PaymentState.REJECTED, PaymentState.CANCELLED,
                         PaymentState.FAILED, PaymentState.RETURNED, PaymentState.REVERSED})


class PlanUnknown(FundpoolError):
    code = "plan_unknown"
    title = "no such rebalancing plan in this pool"


class PlanNotOpen(FundpoolError):
    code = "plan_not_open"
    title = "the plan was approved, rejected or executed already"


class PlanSelfApproval(FundpoolError):
    code = "plan_self_approval"
    title = "a plan is approved by another person than its proposer"


class PlanOutdated(FundpoolError):
    code = "plan_outdated"
    title = "the balances moved since the plan was made: propose a new one"


def lender_account(pool: str, facility: str) -> str:
    return f"credit:{pool}:{facility}:lender"


def interest_account(pool: str, facility: str) -> str:
    """The pool's interest expense on the facility (grows with each day's accrual)."""
    return f"credit:{pool}:{facility}:interest"


def interest_due_account(pool: str, facility: str) -> str:
    """Interest accrued and not paid yet, owed to the lender (minus its balance)."""
    return f"credit:{pool}:{facility}:interest_due"


def _day(at_us: int) -> int:
    return at_us // DAY_US


def _minor_doc(value: int) -> str:
    return str(value)


class LiquidityDesk:
    def __init__(self, ledger: Ledger, store: DeskStore, config: FundpoolConfig,
                 pool: PoolConfig, treasury: TreasuryConfig, payments: PaymentService, *,
                 clock: Clock, ids: IdSource, wake: Callable[[], None] | None = None) -> None:
        self.ledger = ledger
        self.store = store
        self.config = config
        self.pool = pool
        self.treasury = treasury
        self.payments = payments
        self.clock = clock
        self.ids = ids
        self.wake = wake
        self.channels: dict[str, ChannelConfig] = {
            cid: config.channel(cid) for cid in pool.channels}
        self.positions_list = [(cid, code) for cid, c in self.channels.items()
                               for code in c.assets]
        self.bands = self._bands()
        self.rules = sweeps.sweep_rules_from_mapping(list(treasury.sweeps))
        self.facilities = tuple(credit.facilities_from_mapping(list(treasury.credit_lines)))
        self._check()

    # --- configuration ----------------------------------------------------------------------

    def _bands(self) -> dict[tuple[str, str], bands_.Band]:
        found = dict(bands_.bands_from_mapping(list(self.treasury.bands)))
        for cid, code in self.positions_list:
            depth = self.channels[cid].depth_for(code)
            if (cid, code) in found or depth is None or depth.target_minor is None:
                continue
            target = depth.target_minor
            found[(cid, code)] = bands_.Band(cid, code, min(depth.low_minor, target), target,
                                             target * SURPLUS_NUM // SURPLUS_DEN)
        return found

    def _check(self) -> None:
        held = set(self.positions_list)
        where = self.treasury.source
        for (cid, code) in self.bands:
            if (cid, code) not in held:
                raise InvalidTreasuryConfig("a band names a channel and asset the pool does "
                                            "not hold", source=where, channel=cid, asset=code)
        for rule in self.rules:
            for cid in (rule.header, *(p.channel for p in rule.participants)):
                if (cid, rule.asset) not in held:
                    raise InvalidTreasuryConfig("a sweep names a channel that does not hold "
                                                "its asset in this pool", source=where,
                                                rule=rule.id, channel=cid, asset=rule.asset)
        for facility in self.facilities:
            if (facility.channel, facility.asset) not in held:
                raise InvalidTreasuryConfig("a credit line names a channel that does not "
                                            "hold its asset in this pool", source=where,
                                            facility=facility.id)

    # --- balances ---------------------------------------------------------------------------

    def balances(self) -> tuple[dict[tuple[str, str], int], int]:
        """Every position's available balance, in one consistent read, and when it was read."""
        at = self.clock.now_us()
        view = pool_view(self.ledger.store, self.config, self.pool, StaticRates())
        out: dict[tuple[str, str], int] = {}
        for asset_view in view.assets:
            for cid, figures in asset_view.by_channel.items():
                out[(cid, asset_view.asset.code)] = figures.available
        return out, at

    def positions(self) -> list[dict[str, Any]]:
        balances, _ = self.balances()
        out = []
        for cid, code in self.positions_list:
            band = self.bands.get((cid, code))
            balance = balances.get((cid, code), 0)
            out.append({"channel": cid, "asset": code, "kind": self.channels[cid].kind.value,
                        "available_minor": balance, "band": band,
                        "status": None if band is None else str(bands_.band_status(band,
                                                                                   balance)),
                        "managed": self.channels[cid].kind not in NOT_MANAGED})
        return out

    # --- routes ---------------------------------------------------------------------------

    def routes(self) -> list[rebalance.Route]:
        """Every way money can move between two of the pool's channels of one asset: an
        internal transfer (a bridge between an L1 and an L2) on the source's rail, at its
        fee schedule's price and its kind's latency."""
        out = []
        for source, code in self.positions_list:
            s = self.channels[source]
            if s.kind in NOT_MANAGED:
                continue
            fees = s.fee_schedule(code)
            for destination, other in self.positions_list:
                d = self.channels[destination]
                if other != code or destination == source or d.kind in NOT_MANAGED:
                    continue
                # No bound on a route's total: a transfer above the rail's per-payment
                # maximum is sent as several payments (`_pay`).
                out.append(rebalance.Route(source, destination, code, fees.fixed_minor,
                                           Fraction(fees.bps), LATENCY_S[s.kind], None))
        return out

    def _kind(self, source: str, destination: str) -> PaymentKind:
        kinds = {self.channels[source].kind, self.channels[destination].kind}
        return (PaymentKind.BRIDGE if kinds == {ChannelKind.EVM_L1, ChannelKind.EVM_L2}
                else PaymentKind.INTERNAL)

    def parts(self, source: str, destination: str, asset: str, amount_minor: int) -> list[int]:
        """`amount_minor` as the payments that carry it: at most the rail's per-payment
        maximum each (the source's and the destination's), the last one what is left."""
        limits = [self.channels[c].limits_for(asset).max_minor for c in (source, destination)]
        largest = min((m for m in limits if m is not None), default=None)
        if largest is None or amount_minor <= largest:
            return [amount_minor]
        whole, rest = divmod(amount_minor, largest)
        return [largest] * whole + ([rest] if rest else [])

    def fee_of(self, source: str, destination: str, asset: str, amount_minor: int) -> int:
        """What the source's rail charges for the payments that carry `amount_minor` (its fee
        schedule: the planner's per-route model counts one payment)."""
        schedule = self.channels[source].fee_schedule(asset)
        return sum(schedule.outbound_fee(part)
                   for part in self.parts(source, destination, asset, amount_minor))

    def too_small(self, source: str, destination: str, asset: str, amount_minor: int) -> bool:
        """Below what either rail takes in one payment: not worth a transfer."""
        return amount_minor < max(self.channels[c].limits_for(asset).min_minor
                                  for c in (source, destination))

    def _pay(self, key: str, moves: Sequence[tuple[str, str, str, int]], purpose: str,
             actor: Actor | None) -> list[Payment]:
        """Create the internal transfers (or bridges) that carry `moves`, by `actor`, a move
        above a rail's per-payment maximum as several; all or none."""
        split = [(s, d, code, part) for s, d, code, amount in moves
                 for part in self.parts(s, d, code, amount)]
        requests = [(PaymentRequest(self._kind(s, d), code, amount, s, d, None,
                                    f"{purpose}:{key}"[:200],
                                    {TREASURY_KEY: purpose, "treasury_id": key}),
                     f"{key}-{n}") for n, (s, d, code, amount) in enumerate(split)]
        outcomes = self.payments.create_many(requests, actor=actor)
        errors = [o for o in outcomes if isinstance(o, FundpoolError)]
        made = [o for o in outcomes if isinstance(o, Payment)]
        if errors:
            # Nothing half-done: what was made is cancelled before the engine takes it up.
            self.payments.act_many([Step(p.id, Action.CANCEL, reason="a sibling was refused")
                                    for p in made], actor=actor)
            raise errors[0]
        if self.wake is not None:
            self.wake()
        return made

    def _ended(self, payment_ids: Sequence[str]) -> tuple[bool, dict[str, str]]:
        found = self.payments.states(payment_ids)
        states = {pid: found[pid].value if pid in found else "unknown" for pid in payment_ids}
        ended = all(pid not in found or found[pid] in DONE_STATES for pid in payment_ids)
        return ended, states

    # --- rebalancing plans ------------------------------------------------------------------

    def propose(self, *, actor: Actor | None = None) -> DeskObject:
        balances, at = self.balances()
        managed = {k: v for k, v in self.bands.items()
                   if self.channels[k[0]].kind not in NOT_MANAGED}
        scales = {code: self.config.asset(code).scale for _, code in self.positions_list}
        plan = rebalance.plan_rebalance(managed, balances, self.routes(), scales=scales)
        now = self.clock.now_us()
        kept = [t for t in plan.transfers
                if not self.too_small(t.source, t.destination, t.asset, t.amount_minor)]
        dropped = [t for t in plan.transfers if t not in kept]
        body: dict[str, Any] = {
            "balances_at_us": at,
            "transfers": [{"source": t.source, "destination": t.destination, "asset": t.asset,
                           "amount_minor": str(t.amount_minor),
                           "fee_minor": str(self.fee_of(t.source, t.destination, t.asset,
                                                        t.amount_minor)),
                           "latency_s": t.latency_s, "why": t.why,
                           "payments": len(self.parts(t.source, t.destination, t.asset,
                                                      t.amount_minor))} for t in kept],
            "unresolved": [{"channel": u.channel, "asset": u.asset,
                            "shortfall_minor": str(u.shortfall_minor),
                            "excess_minor": str(u.excess_minor), "why": u.why}
                           for u in plan.unresolved],
            "total_fee_minor": {},
            "planner_fee_minor": {code: str(n) for code, n in plan.total_fee_minor.items()},
            "explanation": list(plan.explanation) + [
                f"{t.source} -> {t.destination} {t.asset}: {t.amount_minor} minor units is "
                "below what the rails take in one payment; left out" for t in dropped]}
        for t in body["transfers"]:
            fees = body["total_fee_minor"]
            fees[t["asset"]] = str(int(fees.get(t["asset"], "0")) + int(t["fee_minor"]))
        auto = bool(kept) and all(
            t.amount_minor <= self.treasury.auto_execute_minor.get(t.asset, -1) for t in kept)
        body["auto"] = auto
        # A plan that moves nothing is kept (what was looked at, and why nothing moves), but
        # there is nothing to approve.
        obj = DeskObject(self.pool.id, PLAN, self.ids.new_id(now),
                         PROPOSED if kept else NOTHING_TO_MOVE, now, now, actor, body)
        self.store.add([obj], DeskAction(now, "liquidity.propose", PLAN, obj.id, actor,
                                         {"pool": self.pool.id,
                                          "transfers": len(kept),
                                          "total_fee_minor": body["total_fee_minor"],
                                          "auto": auto}))
        if auto:
            return self._execute(obj, actor, approved_by=None)
        return obj

    def plan(self, plan_id: str) -> DeskObject:
        obj = self.store.get(PLAN, plan_id)
        if obj is None or obj.pool != self.pool.id:
            raise PlanUnknown(plan=plan_id, pool=self.pool.id)
        return self.refresh(obj)

    def plans(self, limit: int = 50) -> list[DeskObject]:
        return [self.refresh(o) for o in self.store.find(self.pool.id, PLAN, None, limit)]

    def approve(self, plan_id: str, *, actor: Actor) -> DeskObject:
        obj = self.plan(plan_id)
        if obj.state != PROPOSED:
            raise PlanNotOpen(plan=plan_id, state=obj.state)
        if obj.actor is not None and obj.actor.who == actor.who:
            raise PlanSelfApproval(plan=plan_id, proposer=obj.actor.who)
        return self._execute(obj, actor, approved_by=actor)

    def reject(self, plan_id: str, *, actor: Actor, note: str = "") -> DeskObject:
        obj = self.plan(plan_id)
        if obj.state != PROPOSED:
            raise PlanNotOpen(plan=plan_id, state=obj.state)
        now = self.clock.now_us()
        done = obj.moved(REJECTED, now, rejected_by=actor.to_dict(), note=note[:2_000])
        if not self.store.move(done, PROPOSED, DeskAction(
                now, "liquidity.reject", PLAN, obj.id, actor, {"pool": self.pool.id,
                                                               "note": note[:2_000]})):
            raise PlanNotOpen(plan=plan_id, state=self.plan(plan_id).state)
        return done

    def _execute(self, obj: DeskObject, actor: Actor | None,
                 approved_by: Actor | None) -> DeskObject:
        now = self.clock.now_us()
        transfers = obj.body["transfers"]
        balances, _ = self.balances()
        # Never on stale balances: each source must still hold its transfers and their fees
        # above its minimum, as the plan assumed.
        need: dict[tuple[str, str], int] = {}
        for t in transfers:
            key = (t["source"], t["asset"])
            need[key] = need.get(key, 0) + int(t["amount_minor"]) + int(t["fee_minor"])
        short = []
        for key, amount in need.items():
            band = self.bands.get(key)
            floor = 0 if band is None else band.min_minor
            if balances.get(key, 0) - amount < floor:
                short.append({"channel": key[0], "asset": key[1],
                              "available_minor": str(balances.get(key, 0)),
                              "needed_minor": str(amount), "minimum_minor": str(floor)})
        if short:
            outdated = obj.moved(OUTDATED, now, short=short)
            self.store.move(outdated, PROPOSED, DeskAction(
                now, "liquidity.outdated", PLAN, obj.id, actor, {"pool": self.pool.id,
                                                                 "short": short}))
            raise PlanOutdated(plan=obj.id, short=short)
        executing = obj.moved(EXECUTING, now, approved_by=(None if approved_by is None
                                                          else approved_by.to_dict()))
        if not self.store.move(executing, PROPOSED, None):
            raise PlanNotOpen(plan=obj.id, state=self.plan(obj.id).state)
        moves = [(t["source"], t["destination"], t["asset"], int(t["amount_minor"]))
                 for t in transfers]
        try:
            made = self._pay(f"plan-{obj.id}", moves, "rebalance", actor)
        except FundpoolError as error:
            failed = executing.moved(OUTDATED, self.clock.now_us(), error=error.to_dict())
            self.store.move(failed, EXECUTING, DeskAction(
                now, "liquidity.refused", PLAN, obj.id, actor,
                {"pool": self.pool.id, "error": error.code}))
            raise
        done = executing.moved(EXECUTING, self.clock.now_us(),
                               payments=[p.id for p in made])
        self.store.move(done, EXECUTING, DeskAction(
            now, "liquidity.execute", PLAN, obj.id, actor,
            {"pool": self.pool.id, "payments": [p.id for p in made],
             "auto": obj.body.get("auto", False)}))
        return done

    def refresh(self, obj: DeskObject) -> DeskObject:
        """A plan or sweep run that was executing, `executed`/`done` once its payments end."""
        if obj.state not in (EXECUTING, RUNNING) or "payments" not in obj.body:
            return obj
        ended, states = self._ended(obj.body["payments"])
        if not ended:
            return obj.moved(obj.state, obj.updated_at_us, payment_states=states)
        now = self.clock.now_us()
        done = obj.moved(EXECUTED if obj.kind == PLAN else DONE, now, payment_states=states)
        self.store.move(done, obj.state, None)
        return done

    # --- sweeps -----------------------------------------------------------------------------

    def sweep_runs(self, limit: int = 50) -> list[DeskObject]:
        return [self.refresh(o) for o in self.store.find(self.pool.id, SWEEP_RUN, None,
                                                        limit)]

    def run_sweeps(self, *, actor: Actor | None = None,
                   rule_ids: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """Run every sweep rule (or those named) once, now: each rule's outcome."""
        running = [self.refresh(o) for o in self.store.find(self.pool.id, SWEEP_RUN,
                                                            [RUNNING], 200)]
        busy = {o.body["rule"] for o in running if o.state == RUNNING}
        out = []
        # One consistent read for every rule: the payments a rule creates take nothing from
        # available before the engine approves them, so a later rule reads the same figures.
        balances, at = self.balances()
        for rule in self.rules:
            if rule_ids is not None and rule.id not in rule_ids:
                continue
            of_asset = {cid: n for (cid, code), n in balances.items() if code == rule.asset}
            try:
                plan = sweeps.plan_sweep(
                    rule, of_asset, bands_.bands_for_asset(self.bands, rule.asset),
                    balances_at_us=at, now_us=self.clock.now_us(),
                    stale_after_us=self.treasury.stale_after_s * SECOND_US,
                    pending=rule.id in busy, scale=self.config.asset(rule.asset).scale)
            except (sweeps.SweepPending, sweeps.StaleBalances) as error:
                out.append({"rule": rule.id, "outcome": error.code, "moves": [],
                            "skipped": []})
                continue
            sweeps.check_sweep(plan, of_asset, bands_.bands_for_asset(self.bands, rule.asset))
            record: dict[str, Any] = {
                "rule": rule.id, "outcome": "swept" if plan.moves else "nothing_to_move",
                "moves": [{"source": m.source, "destination": m.destination,
                           "asset": m.asset, "amount_minor": str(m.amount_minor),
                           "reason": m.reason} for m in plan.moves],
                "skipped": [list(s) for s in plan.skipped]}
            if plan.moves:
                now = self.clock.now_us()
                run_id = self.ids.new_id(now)
                made = self._pay(f"sweep-{run_id}", [(m.source, m.destination, m.asset,
                                                      m.amount_minor) for m in plan.moves],
                                 "sweep", actor)
                record["payments"] = [p.id for p in made]
                record["id"] = run_id
                self.store.add([DeskObject(self.pool.id, SWEEP_RUN, run_id, RUNNING, now, now,
                                           actor, {**record, "balances_at_us": at})],
                               DeskAction(now, "liquidity.sweep", SWEEP_RUN, run_id, actor,
                                          {"pool": self.pool.id, "rule": rule.id,
                                           "payments": record["payments"]}))
            out.append(record)
        return out

    # --- credit lines -----------------------------------------------------------------------

    def _credit_state(self, facility: credit.CreditFacility,
                      actor: Actor | None = None) -> DeskObject:
        key = f"{self.pool.id}:{facility.id}"
        found = self.store.get(CREDIT, key)
        if found is not None:
            return found
        now = self.clock.now_us()
        meta = {"pool": self.pool.id, "facility": facility.id}
        # The principal: down to minus the limit, so the ledger refuses a draw beyond it.
        self.ledger.open_account(Account(lender_account(self.pool.id, facility.id),
                                         asset=facility.asset, allow_negative=True,
                                         min_balance_minor=-facility.limit_minor,
                                         metadata=meta))
        # Interest due is owed besides the principal: it never uses the limit.
        self.ledger.open_account(Account(interest_due_account(self.pool.id, facility.id),
                                         asset=facility.asset, allow_negative=True,
                                         metadata=meta))
        self.ledger.open_account(Account(interest_account(self.pool.id, facility.id),
                                         asset=facility.asset, metadata=meta))
        obj = DeskObject(self.pool.id, CREDIT, key, "open", now, now, None,
                         {"facility": facility.id, "accrued_day": _day(now), "carry": "0",
                          "draws": 0, "repayments": 0, "interest_minor": "0"})
        try:
            self.store.add([obj], DeskAction(now, "credit.open", CREDIT, key, actor,
                                             {"pool": self.pool.id,
                                              "limit_minor": str(facility.limit_minor)}))
        except FundpoolError:  # another process opened it first
            again = self.store.get(CREDIT, key)
            assert again is not None
            return again
        return obj

    def drawn(self, facility: credit.CreditFacility) -> int:
        """The principal drawn: minus the lender account's balance."""
        try:
            return -self.ledger.balance(lender_account(self.pool.id, facility.id),
                                        facility.asset).available
        except FundpoolError:  # not opened yet: never drawn
            return 0

    def interest_due(self, facility: credit.CreditFacility) -> int:
        try:
            return -self.ledger.balance(interest_due_account(self.pool.id, facility.id),
                                        facility.asset).available
        except FundpoolError:
            return 0

    def owed(self, facility: credit.CreditFacility) -> int:
        """Principal drawn plus interest due."""
        return self.drawn(facility) + self.interest_due(facility)

    def credit_lines(self) -> list[dict[str, Any]]:
        out = []
        for facility in self.facilities:
            state = self.store.get(CREDIT, f"{self.pool.id}:{facility.id}")
            out.append({"facility": facility, "owed_minor": self.owed(facility),
                        "drawn_minor": self.drawn(facility),
                        "interest_due_minor": self.interest_due(facility),
                        "interest_minor": int(state.body["interest_minor"]) if state else 0,
                        "accrued_day": state.body["accrued_day"] if state else None})
        return out

    def run_credit(self, *, actor: Actor | None = None) -> list[dict[str, Any]]:
        """Accrue the days passed, then draw or repay, for every credit line."""
        out = []
        for facility in self.facilities:
            state = self._credit_state(facility, actor)
            now = self.clock.now_us()
            record: dict[str, Any] = {"facility": facility.id, "interest_minor": 0,
                                      "drawn_minor": 0, "repaid_minor": 0}
            state = self._accrue(facility, state, now, actor, record)
            balances, _ = self.balances()
            balance = balances.get((facility.channel, facility.asset), 0)
            band = self.bands.get((facility.channel, facility.asset))
            drawn, due = self.drawn(facility), self.interest_due(facility)
            available = pool_account(self.pool.id, facility.asset, facility.channel,
                                     PoolState.AVAILABLE)
            lender = lender_account(self.pool.id, facility.id)
            if band is not None:
                draw = credit.draw_needed(facility, drawn, balance, band)
                # Repaid from the surplus over the target: the interest due first.
                repay = 0 if draw else credit.repay_possible(facility, drawn + due, balance,
                                                             band)
                if draw > 0:
                    n = int(state.body["draws"]) + 1
                    self._post([Posting(lender, available, facility.asset, draw)], state,
                               "draw", n, actor, draws=n)
                    record["drawn_minor"] = draw
                elif repay > 0:
                    n = int(state.body["repayments"]) + 1
                    to_interest = min(repay, due)
                    postings = [Posting(available, interest_due_account(
                        self.pool.id, facility.id), facility.asset, to_interest),
                        Posting(available, lender, facility.asset, repay - to_interest)]
                    self._post([p for p in postings if p.amount_minor > 0], state, "repay", n,
                               actor, repayments=n)
                    record["repaid_minor"] = repay
            record["owed_minor"] = self.owed(facility)
            out.append(record)
        return out

    def _accrue(self, facility: credit.CreditFacility, state: DeskObject, now: int,
                actor: Actor | None, record: dict[str, Any]) -> DeskObject:
        day, today = int(state.body["accrued_day"]), _day(now)
        carry = Fraction(state.body["carry"])
        total = 0
        due_account = interest_due_account(self.pool.id, facility.id)
        for accrued in range(day, min(today, day + ACCRUAL_DAYS_MAX)):
            # Simple interest on the principal drawn (interest due earns none).
            interest, carry = credit.accrue_daily(max(self.drawn(facility), 0),
                                                  facility.annual_rate, facility.day_count,
                                                  carry)
            if interest > 0:
                when = dt.datetime.fromtimestamp(accrued * 86_400, dt.UTC).date().isoformat()
                self.ledger.transfer(
                    [Posting(due_account, interest_account(self.pool.id, facility.id),
                             facility.asset, interest)],
                    metadata={"kind": "credit_interest", "facility": facility.id,
                              "day": when, "actor": actor_text(actor)},
                    idempotency_key=f"credit-{self.pool.id}-{facility.id}-interest-{accrued}")
            total += interest
        if today <= day:
            return state
        moved = state.moved(state.state, now, accrued_day=min(today, day + ACCRUAL_DAYS_MAX),
                            carry=str(carry),
                            interest_minor=str(int(state.body["interest_minor"]) + total))
        self.store.move(moved, state.state, DeskAction(
            now, "credit.accrue", CREDIT, state.id, actor,
            {"pool": self.pool.id, "facility": facility.id, "interest_minor": str(total),
             "days": min(today, day + ACCRUAL_DAYS_MAX) - day}))
        record["interest_minor"] = total
        return moved

    def _post(self, postings: list[Posting], state: DeskObject, what: str, n: int,
              actor: Actor | None, **counts: int) -> None:
        facility = state.body["facility"]
        entry = self.ledger.transfer(
            postings, metadata={"kind": f"credit_{what}", "facility": facility,
                                "actor": actor_text(actor)},
            idempotency_key=f"credit-{self.pool.id}-{facility}-{what}-{n}")
        now = self.clock.now_us()
        self.store.move(state.moved(state.state, now, **counts), state.state, DeskAction(
            now, f"credit.{what}", CREDIT, state.id, actor,
            {"pool": self.pool.id, "facility": facility, "entry_id": entry.id,
             "amount_minor": str(sum(p.amount_minor for p in postings))}))


def band_doc(band: bands_.Band | None) -> dict[str, int] | None:
    if band is None:
        return None
    return {"min": band.min_minor, "target": band.target_minor, "max": band.max_minor}


def days_between(a_us: int, b_us: int) -> int:
    return max(0, _day(b_us) - _day(a_us))


def plan_moves(obj: DeskObject) -> list[Mapping[str, Any]]:
    return list(obj.body.get("transfers", []))
