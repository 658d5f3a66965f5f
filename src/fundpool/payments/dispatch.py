"""The dispatcher: payments meet the rails. It routes new payouts, queues approved ones into
batches per rail, sends them, and turns what the rails report into payment steps.

A payout's run:

    intake:  create -> screen -> route (the router picks the rail) -> approve (funds locked),
             or request_approval when the amount needs an approver; all in one transaction
    tick:    queued payouts whose batch is full or old enough -> submit (locked -> in transit),
             committed; THEN the batch goes to the rail (see "commit first" below)
    tick:    outcomes polled from the rails -> clear / settle / return, or on failure either a
             failover (retry: funds released, route again without the rails already tried,
             approve, queue) or, when attempts are used up or no rail is left, fail

A deposit is created and screened at intake, and its rail is told to expect it (when the
rail is open); the rail's reports clear and settle it (or return it).

A payment that names its rail is checked against that rail at intake as a routed one is by
the router: the dispatcher has the rail, the amount is within the rail's own limits, and the
rail holds the amount and its fee. If not, intake rejects it with the reason (`no_rail`,
`below_minimum`, `above_maximum`, `insufficient_liquidity`) rather than lock funds it cannot
have or send it to a rail that would refuse it, and the whole batch it went out in. (A payout
naming a book rail never gets this far: the payment service refuses it at creation.)

Rails are not tidy, and the dispatcher is what makes them safe:
- **Duplicates.** Every outcome is recorded by (channel, outcome id) in the same transaction as
  the steps it caused; one seen before is a `duplicate`: counted in the tick's report, not
  stored again (the table keeps what its first delivery did), and it does nothing.
- **Stale attempts.** An outcome from a rail that is not the payment's current route (an
  attempt that was failed over) is `stale` and does nothing: the attempt's funds were already
  released, so acting on it could release or settle them twice. A `settled` or `returned`
  from such a rail is an `anomaly` instead: money may have left twice, which a person must
  see.
- **Late and out of order.** An outcome the payment is already past (a `cleared` after
  `settled`) is `late`. One that skips ahead implies what it skips: `settled` for a deposit
  still screened clears it first; `returned` for a payout still in transit settles it first.
  A contradiction (`failed` after `settled`) is an `anomaly`: recorded, nothing posted, for a
  person to look at.

So every payment ends in exactly one terminal state, and its funds are never both released
and settled. Property tests drive any sequence of deliveries through this (tests/payments).

Outcomes polled from the rails are kept until the transaction that applies them commits: a
rail does not report a thing twice because a commit failed. What a failed transaction changed
in memory (the queues) is dropped, and the next rescan rebuilds it from the store.

**Commit first, then send.** A batch is marked submitted (its funds moved to in transit) and
committed before the rail is called. If the process dies in between, the books say "in
transit" for payments the rail never got: visible, and safe, since no money moved. The other
order (send, then commit) could leave money sent that the books do not show, and a retry
would send it again. A rail that refuses a batch (closed, too large) is turned into a
`failed` outcome per payment, handled at the next tick like any other failure. The rail's
receipt (its reference and the fee it charged, kept with the batch's savings) is written at
the next tick, in that tick's transaction.

**Timeouts do not fail payments.** A payment in transit longer than its rail's timeout is
reported as stuck (`TickReport.stuck`), not failed: failing it and routing it again while
the first rail may still deliver would risk paying twice. Resolving it is a person's call
(or a rail status query, when a rail has one).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from fundpool.channels.ports import (
    ChannelAdapter,
    ChannelOutcome,
    Direction,
    Instruction,
    OutcomeKind,
)
from fundpool.core.clock import Clock, IdSource
from fundpool.core.errors import FundpoolError, invariant
from fundpool.ledger.service import LedgerTransaction
from fundpool.payments.model import (
    Action,
    Payment,
    PaymentKind,
    PaymentRequest,
    PaymentState,
    next_state,
)
from fundpool.payments.service import (
    CALL_ITEMS_MAX,
    NOT_FOR_PAYOUTS,
    Outcome,
    PaymentService,
    PaymentSession,
    Step,
)
from fundpool.pool.accounts import PoolState, pool_account
from fundpool.routing.decision import Exclusion
from fundpool.routing.router import RoutingStrategy
from fundpool.stores.dispatch_sql import (
    BatchRecord,
    DispatchReads,
    DispatchWrites,
    OutcomeRecord,
    RouteRecord,
    dispatch_records,
)

S = PaymentState
A = Action
K = OutcomeKind

NO_ELIGIBLE_CHANNEL = "no_eligible_channel"
# A tick's work per ledger transaction. An outcome costs at most three ledger commands (a
# failover's retry and approve; a reversal's entries), a submit one: 2,000 of each stays under
# the ledger's BATCH_COMMANDS_MAX (8,192) even when every summed entry falls back to singles.
OUTCOMES_PER_TRANSACTION = 2_000
SUBMITS_PER_TRANSACTION = 2_000
# Why intake rejects a payment that names its rail, beside the router's `Exclusion` codes:
NO_RAIL = "no_rail"  # the pool has the channel, but this dispatcher has no adapter for it


@dataclass(frozen=True, slots=True)
class DispatchPolicy:
    batch_age_us: int = 2_000_000  # a batch goes out when its oldest payment waited this long
    stuck_after_us: int = 3 * 86_400_000_000  # in transit longer is reported as stuck
    rescan_us: int = 5_000_000  # how often approved payments are looked for (human approvals)


DEFAULT_DISPATCH_POLICY = DispatchPolicy()


@dataclass(frozen=True, slots=True)
class _Queued:
    payment_id: str
    attempt: int
    instruction: Instruction
    queued_at_us: int


@dataclass(frozen=True, slots=True)
class _Sent:
    """A batch the rail has taken (or refused), to be recorded at the next tick."""

    batch: BatchRecord
    members: tuple[tuple[str, int], ...]  # (payment id, attempt)


@dataclass(slots=True)
class TickReport:
    at_us: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)  # by disposition
    steps: dict[str, int] = field(default_factory=dict)  # by action applied
    batches: int = 0
    submitted: int = 0
    refused: int = 0
    failovers: int = 0
    unknown: int = 0  # payments in batches whose send failed without the rail's answer
    stuck: int = 0
    queued: int = 0

    def count(self, table: dict[str, int], key: str, n: int = 1) -> None:
        total = table.get(key, 0) + n
        if total:
            table[key] = total
        else:
            table.pop(key, None)


@dataclass(frozen=True, slots=True)
class Intake:
    """What became of one request at intake: the payment as it now stands (or the error), the
    route chosen for it, if any, and why intake rejected it, when it did."""

    outcome: Outcome
    route: RouteRecord | None = None
    errors: tuple[FundpoolError, ...] = ()
    reason: str | None = None  # no_eligible_channel, or why the rail it named cannot carry it

    @property
    def refusal(self) -> str | None:
        """Why this item did not go through, as a stable code; None when it did."""
        if isinstance(self.outcome, FundpoolError):
            return self.outcome.code
        if self.errors:
            return self.errors[0].code
        if self.outcome.state is S.REJECTED:
            return self.reason or NO_ELIGIBLE_CHANNEL
        return None


class IntakeRefused(FundpoolError):
    code = "intake_refused"
    title = "an all-or-nothing intake was refused: one item could not go through"


class Dispatcher:
    def __init__(
        self,
        service: PaymentService,
        rails: Mapping[str, ChannelAdapter],
        router: RoutingStrategy,
        clock: Clock,
        ids: IdSource,
        *,
        policy: DispatchPolicy = DEFAULT_DISPATCH_POLICY,
    ) -> None:
        self._service = service
        self._rails = dict(rails)
        self._router = router
        self._clock = clock
        self._ids = ids
        self._policy = policy
        self._pool = service.pool_id
        self._dialect, self._reads = dispatch_records(service.ledger.store)
        self._capabilities = {cid: rail.capabilities() for cid, rail in self._rails.items()}
        self._queues: dict[tuple[str, str], deque[_Queued]] = {}
        self._queued_ids: set[str] = set()
        self._in_transit: dict[str, tuple[str, int]] = {}  # payment -> (channel, since)
        self._to_record: list[_Sent] = []  # until the transaction that writes them commits
        # Outcomes to apply (refusals, then what the rails reported), kept until the
        # transaction that applies them commits: a rail does not report a thing again because
        # a commit failed.
        self._inbox: list[ChannelOutcome] = []
        self._inbound: list[tuple[str, Instruction]] = []
        self._last_scan_us: int | None = None
        self._in_transit_read = False
        self._new_routes: dict[str, RouteRecord] = {}  # failovers of the current tick

    @property
    def reads(self) -> DispatchReads:
        """The dispatcher's records as committed: routes, batches, outcomes."""
        return self._reads

    # --- intake ---------------------------------------------------------------------------

    def intake(
        self,
        requests: Sequence[tuple[PaymentRequest, str | None]],
        *,
        atomic: bool = False,
    ) -> list[Intake]:
        """Create payments and take each as far as it goes without a rail: deposits are
        screened (their rail is then told to expect them); payouts and transfers are screened,
        routed and approved (or left pending approval) and queued for their rail. One
        transaction. With `atomic`, any request refused, or any payment that cannot be routed
        or approved, refuses them all (`IntakeRefused`, naming the first) and nothing is
        created."""
        routes: dict[str, RouteRecord] = {}
        rejected: dict[str, str] = {}
        planned: set[str] = set()
        with self._service.session() as session:
            at_us = session.at_us
            liquidity = _Liquidity(session.transaction, self._pool, self._capabilities)

            def plan(payment: Payment) -> list[Step]:
                # Called once per payment this call creates (a key repeated in the call is a
                # replay, and is not planned again: PaymentSession.create_and_act).
                planned.add(payment.id)
                steps = [Step(payment.id, A.SCREEN)]
                if payment.kind.inbound:
                    problem, _ = self._named_rail_problem(payment, at_us, liquidity)
                    if problem is not None:
                        rejected[payment.id] = problem
                        steps.append(Step(payment.id, A.REJECT, reason=problem))
                    return steps
                route, fee = self._route(payment, 1, at_us, liquidity, ())
                routes[payment.id] = route
                if route.channel is None:
                    rejected[payment.id] = _route_reason(route)
                return steps + self._after_route(payment, route, fee)

            results: list[tuple[Outcome, list[Outcome]]] = []
            for start in range(0, len(requests), CALL_ITEMS_MAX):
                results += session.create_and_act(requests[start : start + CALL_ITEMS_MAX],
                                                  plan)
            final = session.payments(p.id for p, _ in results if isinstance(p, Payment))
            intakes: list[Intake] = []
            for created, step_outcomes in results:
                if not isinstance(created, Payment):
                    intakes.append(Intake(created))
                    continue
                payment = final.get(created.id, created)
                errors = tuple(o for o in step_outcomes if isinstance(o, FundpoolError))
                intakes.append(Intake(payment, routes.get(payment.id), errors,
                                      rejected.get(payment.id)))
            if atomic:
                for index, intake in enumerate(intakes):
                    problem = intake.refusal
                    if problem is not None:
                        raise IntakeRefused(item=index, reason=problem)  # rolls back
            DispatchWrites(session.write_session, self._dialect).add_routes(list(routes.values()))
        # Once committed, and only what this call created: a replayed request (the same key)
        # is already with its rail or in a queue, and announcing a deposit twice would have
        # the rail refuse it as a duplicate, which fails it.
        for intake in intakes:
            if isinstance(intake.outcome, Payment) and intake.outcome.id in planned:
                planned.discard(intake.outcome.id)  # once, however often its key came
                self._follow(intake.outcome, intake.route, at_us)
        self._send_inbound()
        return intakes

    def _route(
        self,
        payment: Payment,
        attempt: int,
        at_us: int,
        liquidity: _Liquidity,
        tried: Sequence[str],
    ) -> tuple[RouteRecord, int | None]:
        """Choose the rail for an outbound payment's attempt (or take the one it names): the
        route to store, and the chosen rail's quoted fee (None when there is no rail)."""
        if payment.channel is not None and attempt == 1:
            # The caller named the rail: it is used as named, priced by its quote, and not
            # failed over to another (the caller may have reasons the router cannot see).
            # It must still be able to carry the payment now, as a routed rail must: else
            # the payment would lock funds it cannot have, or go to a rail that refuses it
            # (and with it the whole batch it went in).
            problem, fee = self._named_rail_problem(payment, at_us, liquidity)
            decision: dict[str, Any] = {"strategy": "given", "channel": payment.channel}
            if problem is not None:
                decision["reason"] = problem
                return RouteRecord(payment.id, attempt, at_us, None, "given", decision), None
            decision["fee_minor"] = fee
            liquidity.take(payment.asset, payment.channel, payment.amount_minor + fee)
            return (RouteRecord(payment.id, attempt, at_us, payment.channel, "given", decision),
                    fee)
        if payment.kind.between_channels:
            # A transfer between the pool's own channels is not re-routed: its rail is its
            # source channel. After a failure it fails.
            reason = ("a transfer names its source channel" if attempt == 1
                      else "transfers are not re-routed")
            return RouteRecord(payment.id, attempt, at_us, None, "given",
                               {"strategy": "given", "reason": reason}), None
        available = liquidity.for_asset(payment.asset)
        excluded = frozenset(tried) | frozenset(
            cid for cid, caps in self._capabilities.items() if caps.kind in NOT_FOR_PAYOUTS
        )
        routed = self._router.decide(
            payment.id, payment.asset, payment.amount_minor, at_us,
            liquidity=available, exclude=excluded,
        )
        record = RouteRecord(payment.id, attempt, at_us, routed.channel, str(routed.strategy),
                             routed.to_dict())
        if routed.channel is None:
            return record, None
        quoted = routed.candidate(routed.channel).fee_minor
        invariant(quoted is not None, "a chosen rail was quoted")
        liquidity.take(payment.asset, routed.channel, payment.amount_minor + (quoted or 0))
        return record, quoted

    def _named_rail_problem(
        self, payment: Payment, at_us: int, liquidity: _Liquidity
    ) -> tuple[str | None, int]:
        """Why the rail a payment names cannot carry it now (None: it can), and the fee it
        quotes (a deposit's is the channel's schedule, as created). The router's own
        constraints, in its order, where they apply to a named rail; a closed rail is no
        problem here: the payment waits in its queue until it opens."""
        channel = payment.channel or ""
        caps = self._capabilities.get(channel)
        rail = self._rails.get(channel)
        fee = payment.fee_minor
        if caps is None or rail is None:
            return NO_RAIL, fee
        asset, amount = payment.asset, payment.amount_minor
        if asset not in caps.assets:
            return Exclusion.ASSET_NOT_CARRIED.value, fee
        if amount < caps.min_minor.get(asset, 1):
            return Exclusion.BELOW_MINIMUM.value, fee
        upper = caps.max_minor.get(asset)
        if upper is not None and amount > upper:
            return Exclusion.ABOVE_MAXIMUM.value, fee
        if payment.kind.inbound:
            return None, fee
        fee = rail.quote(asset, amount, at_us).fee_minor
        if liquidity.for_asset(asset).get(channel, 0) < amount + fee:
            return Exclusion.INSUFFICIENT_LIQUIDITY.value, fee
        return None, fee

    def _after_route(self, payment: Payment, route: RouteRecord, fee: int | None) -> list[Step]:
        if route.channel is None:
            return [Step(payment.id, A.REJECT, reason=_route_reason(route))]
        steps = [Step(payment.id, A.ROUTE, route.channel, fee_minor=fee)]
        steps.append(
            Step(payment.id, A.REQUEST_APPROVAL if payment.approval_required else A.APPROVE)
        )
        return steps

    def _follow(self, payment: Payment, route: RouteRecord | None, at_us: int) -> None:
        """After a commit: queue what is approved, remember deposits to announce."""
        if payment.kind.inbound and payment.state is S.SCREENED and payment.channel:
            self._inbound.append(
                (payment.channel, _instruction(payment, Direction.INBOUND))
            )
        elif payment.state is S.APPROVED and payment.channel is not None:
            self._enqueue(payment, route.attempt if route else 1, at_us)

    def _enqueue(self, payment: Payment, attempt: int, at_us: int) -> None:
        if payment.id in self._queued_ids or payment.channel is None:
            return
        key = (payment.channel, payment.asset)
        self._queues.setdefault(key, deque()).append(
            _Queued(payment.id, attempt, _instruction(payment, Direction.OUTBOUND), at_us)
        )
        self._queued_ids.add(payment.id)

    def _send_inbound(self) -> None:
        """Tell rails which deposits to expect. A rail outside its cut-off window is told
        when it opens, as its payouts are sent then: it would refuse the announcement, and a
        refused announcement fails the deposit."""
        now = self._clock.now_us()
        # One submission per rail and asset: a submission is in one asset (a bank file, a
        # batch contract call), and a rail refuses a mixed one whole.
        by_rail: dict[tuple[str, str], list[Instruction]] = {}
        waiting: list[tuple[str, Instruction]] = []
        for channel, instruction in self._inbound:
            caps = self._capabilities.get(channel)
            if caps is not None and not caps.open_at(now):
                waiting.append((channel, instruction))
            else:
                by_rail.setdefault((channel, instruction.asset), []).append(instruction)
        self._inbound = waiting
        for (channel, _), instructions in by_rail.items():
            rail = self._rails.get(channel)
            if rail is None:
                continue
            size = max(1, self._capabilities[channel].batch_size_max)
            for start in range(0, len(instructions), size):
                part = instructions[start : start + size]
                try:
                    rail.submit(part, now)
                except FundpoolError as error:
                    self._refuse(channel, part, f"{error.code}: {error.detail}", now)

    # --- approvals made elsewhere (CLI, API, console) -------------------------------------

    def approve(self, payment_ids: Sequence[str]) -> list[Outcome]:
        """An approver's decision: approve, and queue once committed."""
        with self._service.session() as session:
            at_us = session.at_us
            outcomes = session.act([Step(pid, A.APPROVE) for pid in payment_ids])
            routes = DispatchWrites(session.write_session, self._dialect).routes(payment_ids)
        for outcome in outcomes:
            if isinstance(outcome, Payment):
                attempts = routes.get(outcome.id, [])
                self._follow(outcome, attempts[-1] if attempts else None, at_us)
        return outcomes

    def _rescan(self, now_us: int) -> None:
        """Queue approved payments this process did not approve itself (an approver's call
        through another process, or a restart), at most every `rescan_us`."""
        if self._last_scan_us is not None and now_us - self._last_scan_us < self._policy.rescan_us:
            return
        self._last_scan_us = now_us
        after: str | None = None
        while True:
            page = self._service.list(state=S.APPROVED, limit=1_000, after_id=after)
            if not page:
                break
            routes = self._reads.routes_of([p.id for p in page if p.id not in self._queued_ids])
            for payment in page:
                attempts = routes.get(payment.id, [])
                self._enqueue(payment, attempts[-1].attempt if attempts else 1, now_us)
            after = page[-1].id
        # What is in transit, as the store has it, read once when this dispatcher starts (or
        # after a failed tick): after a restart too, a payment a rail never answered for shows
        # as stuck. From then on this dispatcher tracks what it sends itself.
        if self._in_transit_read:
            return
        self._in_transit_read = True
        for state in (S.SUBMITTED, S.CLEARED):
            after = None
            while True:
                page = self._service.list(state=state, limit=1_000, after_id=after)
                if not page:
                    break
                for payment in page:
                    if not payment.kind.inbound and payment.channel is not None:
                        self._in_transit.setdefault(
                            payment.id, (payment.channel, payment.updated_at_us)
                        )
                after = page[-1].id

    # --- the tick -------------------------------------------------------------------------

    def tick(self) -> TickReport:
        """Poll every rail, apply what it reported, fail over what failed, and send what is
        due. Work goes in bounded slices, each one ledger transaction followed by its sends:
        the ledger takes at most BATCH_COMMANDS_MAX commands in one transaction, and a tick
        too large for one must not stop the dispatcher (it would fail the same way on every
        later tick while its inbox grew)."""
        now = self._clock.now_us()
        report = TickReport(at_us=now)
        self._rescan(now)
        for rail in self._rails.values():
            self._inbox.extend(rail.poll(now))
        # This tick's outcomes; refusals of its own sends join the inbox behind them and wait
        # for the next tick, as any report arriving now would.
        budget = len(self._inbox)
        while True:
            delivered = self._inbox[: min(OUTCOMES_PER_TRANSACTION, budget)]
            due: list[tuple[str, str, list[_Queued]]] = []
            try:
                with self._service.session() as session:
                    writes = DispatchWrites(session.write_session, self._dialect)
                    self._record_sent(writes)
                    if delivered:
                        self._apply_outcomes(session, writes, delivered, report)
                    due = self._submit_due(session, report, SUBMITS_PER_TRANSACTION)
            except BaseException:
                # Nothing of this slice was written, but its queues changed in memory
                # (payments taken off to be sent, failovers queued): the store is the truth,
                # and the next tick's rescan rebuilds the queues from it. The outcomes stay
                # in the inbox.
                self._forget_queues()
                raise
            del self._inbox[: len(delivered)]
            budget -= len(delivered)
            self._to_record = []
            self._send(due, report)
            submitted = sum(len(items) for _, _, items in due)
            if budget == 0 and submitted < SUBMITS_PER_TRANSACTION:
                break
            if not delivered and not submitted:
                break  # nothing moved in this slice: what is left waits for the next tick
        self._send_inbound()
        report.queued = len(self._queued_ids)
        report.stuck = self._stuck(now)
        return report

    def _forget_queues(self) -> None:
        self._queues.clear()
        self._queued_ids.clear()
        self._last_scan_us = None
        self._in_transit_read = False

    def _record_sent(self, writes: DispatchWrites) -> None:
        """Write the receipts of earlier sends (cleared by the caller once committed)."""
        if not self._to_record:
            return
        writes.add_batches([sent.batch for sent in self._to_record])
        writes.mark_sent(
            [
                (pid, attempt, sent.batch.id, sent.batch.rail_ref)
                for sent in self._to_record
                for pid, attempt in sent.members
            ]
        )

    def _apply_outcomes(
        self,
        session: PaymentSession,
        writes: DispatchWrites,
        delivered: Sequence[ChannelOutcome],
        report: TickReport,
    ) -> None:
        now = session.at_us
        seen = writes.seen_outcomes((o.channel, o.outcome_id) for o in delivered)
        payments = session.payments({o.payment_id for o in delivered})
        projected: dict[str, PaymentState] = {pid: p.state for pid, p in payments.items()}
        records: list[OutcomeRecord] = []
        steps: list[Step] = []
        owners: list[int] = []  # index into records, per step
        failed: dict[str, int] = {}  # payment -> index of the failure's record
        for outcome in delivered:
            key = (outcome.channel, outcome.outcome_id)
            payment = payments.get(outcome.payment_id)
            disposition: str = "applied"
            actions: tuple[Action, ...] = ()
            detail: str | None = None
            if key in seen:
                disposition = "duplicate"
            elif payment is None or payment.pool != self._pool:
                disposition, detail = "anomaly", "no such payment in this pool"
            elif payment.channel != outcome.channel:
                if outcome.kind in (K.SETTLED, K.RETURNED):
                    # Money moved on a rail the payment is no longer routed to: after a
                    # failover it may have left twice. Nothing is posted; a person decides.
                    disposition = "anomaly"
                    detail = f"{outcome.kind.value} on a rail the payment is not routed to"
                else:
                    disposition = "stale"
            else:
                disposition, actions, detail = _reading(payment.kind, projected[payment.id],
                                                        outcome.kind)
            seen.add(key)
            records.append(
                OutcomeRecord(outcome.outcome_id, outcome.channel, outcome.payment_id,
                              outcome.kind.value, outcome.at_us, now, disposition,
                              detail or outcome.reason)
            )
            report.count(report.outcomes, disposition)
            if payment is None or disposition != "applied":
                continue
            if outcome.kind is K.SETTLED and not payment.kind.inbound:
                self._router.record(outcome.channel, payment.asset, True, outcome.at_us)
            if actions == (A.FAIL,) and not payment.kind.inbound:
                self._router.record(outcome.channel, payment.asset, False, outcome.at_us)
                failed[payment.id] = len(records) - 1
                projected[payment.id] = S.FAILED  # provisional: failover may retry instead
                continue
            for action in actions:
                steps.append(Step(payment.id, action, reason=outcome.reason))
                owners.append(len(records) - 1)
                target = next_state(payment.kind, projected[payment.id], action)
                if target is not None:
                    projected[payment.id] = target
        if steps:
            self._take(steps, owners, session.act(steps), records, report, now)
        if failed:
            # After the other steps, so that the liquidity failover routes by is what this
            # transaction holds now (a merchant's advance at clear, a reversed deposit, have
            # taken from a rail's available).
            steps, owners = self._fail_over(session, writes, payments, failed, report)
            if steps:
                self._take(steps, owners, session.act(steps), records, report, now)
        # A duplicate is counted, not stored again: the table keeps each outcome once, by
        # (channel, outcome id), with what its first delivery did.
        writes.add_outcomes([r for r in records if r.disposition != "duplicate"])

    def _take(
        self,
        steps: Sequence[Step],
        owners: Sequence[int],
        results: Sequence[Outcome],
        records: list[OutcomeRecord],
        report: TickReport,
        now: int,
    ) -> None:
        """What the steps an outcome caused came to: a refused step makes the outcome an
        anomaly (its first refusal is kept, the cause a person needs)."""
        for step, owner, result in zip(steps, owners, results, strict=True):
            if isinstance(result, FundpoolError):
                record = records[owner]
                if record.disposition == "anomaly":
                    continue
                report.count(report.outcomes, record.disposition, -1)
                records[owner] = replace(record, disposition="anomaly",
                                         detail=f"{step.action.value} refused: {result.code}")
                report.count(report.outcomes, "anomaly")
            else:
                report.count(report.steps, step.action.value)
                self._after_step(result, step, now)

    def _fail_over(
        self,
        session: PaymentSession,
        writes: DispatchWrites,
        payments: Mapping[str, Payment],
        failed: Mapping[str, int],
        report: TickReport,
    ) -> tuple[list[Step], list[int]]:
        """A rail failed these payments: route each again without the rails it tried (retry,
        route, approve), or fail it when its attempts are used up or no rail is left. Returns
        the steps, each with the index of the failure's record."""
        steps: list[Step] = []
        owners: list[int] = []
        routes = writes.routes(failed)
        liquidity = _Liquidity(session.transaction, self._pool, self._capabilities)
        max_attempts = int(self._router.policy.max_attempts)
        new_routes: list[RouteRecord] = []
        for pid, owner in failed.items():
            payment = payments[pid]
            attempts = routes.get(pid, [])
            tried = [r.channel for r in attempts if r.channel is not None]
            if payment.channel is not None and payment.channel not in tried:
                tried.append(payment.channel)
            attempt = (attempts[-1].attempt if attempts else 1) + 1
            given = bool(attempts) and attempts[0].strategy == "given"
            route: RouteRecord | None = None
            fee: int | None = None
            if attempt <= max_attempts and not given and not payment.kind.between_channels:
                route, fee = self._route(payment, attempt, session.at_us, liquidity, tried)
            if route is None or route.channel is None:
                if route is not None:
                    new_routes.append(route)
                steps.append(Step(pid, A.FAIL, reason="failed on every rail tried"
                                  if attempt > 1 else None))
                owners.append(owner)
                continue
            new_routes.append(route)
            report.failovers += 1
            retried = Step(pid, A.RETRY, reason=f"failover to {route.channel}")
            for step in (retried, *self._after_route(payment, route, fee)):
                steps.append(step)
                owners.append(owner)
        writes.add_routes(new_routes)
        self._new_routes = {r.payment_id: r for r in new_routes}
        return steps, owners

    def _after_step(self, payment: Outcome, step: Step, now: int) -> None:
        if not isinstance(payment, Payment):
            return
        if payment.state.terminal or payment.state is S.SETTLED:
            self._in_transit.pop(payment.id, None)
        if step.action in (A.APPROVE,) and payment.state is S.APPROVED:
            route = self._new_routes.get(payment.id)
            self._in_transit.pop(payment.id, None)
            self._enqueue(payment, route.attempt if route else 1, now)

    def _submit_due(
        self, session: PaymentSession, report: TickReport, limit: int
    ) -> list[tuple[str, str, list[_Queued]]]:
        """Take due batches off the queues, at most `limit` payments, and mark their
        payments submitted."""
        now = session.at_us
        due: list[tuple[str, str, list[_Queued]]] = []
        room = limit
        for (channel, asset), queue in self._queues.items():
            caps = self._capabilities.get(channel)
            if caps is None or not queue or not caps.open_at(now):
                continue
            size = max(1, caps.batch_size_max)
            while room > 0 and queue and (
                len(queue) >= size or now - queue[0].queued_at_us >= self._policy.batch_age_us
                or size == 1
            ):
                taken = [queue.popleft() for _ in range(min(size, len(queue), room))]
                room -= len(taken)
                for item in taken:
                    self._queued_ids.discard(item.payment_id)
                due.append((channel, asset, taken))
        if not due:
            return []
        steps = [Step(item.payment_id, A.SUBMIT) for _, _, items in due for item in items]
        results = iter(session.act(steps))
        sendable: list[tuple[str, str, list[_Queued]]] = []
        for channel, asset, items in due:
            kept: list[_Queued] = []
            for item in items:
                result = next(results)
                if isinstance(result, Payment):
                    kept.append(item)
                    self._in_transit[item.payment_id] = (channel, now)
                # else: cancelled or changed meanwhile; it is no longer ours to send
            if kept:
                sendable.append((channel, asset, kept))
                report.count(report.steps, A.SUBMIT.value, len(kept))
        return sendable

    def _send(self, due: Sequence[tuple[str, str, list[_Queued]]], report: TickReport) -> None:
        """After the commit: hand each batch to its rail."""
        now = self._clock.now_us()
        for channel, asset, items in due:
            rail = self._rails[channel]
            instructions = [item.instruction for item in items]
            members = tuple((item.payment_id, item.attempt) for item in items)
            amount = sum(i.amount_minor for i in instructions)
            batch_id = self._ids.new_id(now)
            try:
                sent = rail.submit(instructions, now)
            except FundpoolError as error:
                report.refused += len(items)
                self._refuse(channel, instructions, f"{error.code}: {error.detail}", now)
                self._to_record.append(_Sent(
                    BatchRecord(batch_id, channel, asset, None, len(items), amount, 0, 0, 0,
                                min(i.queued_at_us for i in items), now, "refused"),
                    members,
                ))
                continue
            except Exception:  # any adapter failure: this batch only
                # Not a refusal: the rail may or may not have taken the batch (a timeout, a
                # dropped connection). Failing the payments could pay them twice, so they
                # stay in transit, the batch is recorded as `unknown`, and they show as
                # stuck until the rail reports or a person resolves them. The other rails'
                # batches still go.
                report.unknown += len(items)
                self._to_record.append(_Sent(
                    BatchRecord(batch_id, channel, asset, None, len(items), amount, 0, 0, 0,
                                min(i.queued_at_us for i in items), now, "unknown"),
                    members,
                ))
                continue
            report.batches += 1
            report.submitted += len(items)
            savings = max(0, sent.single_fee_minor - sent.fee_minor)
            self._to_record.append(_Sent(
                BatchRecord(batch_id, channel, asset, sent.rail_ref, len(items), amount,
                            sent.fee_minor, sent.single_fee_minor, savings,
                            min(i.queued_at_us for i in items), now, "sent"),
                members,
            ))

    def _refuse(
        self, channel: str, instructions: Sequence[Instruction], reason: str, now: int
    ) -> None:
        for instruction in instructions:
            self._inbox.append(
                ChannelOutcome(
                    f"refused-{instruction.payment_id}-{now}", channel, instruction.payment_id,
                    "", K.FAILED, now, reason,
                )
            )

    def _stuck(self, now: int) -> int:
        limit = self._policy.stuck_after_us
        return sum(1 for _, since in self._in_transit.values() if now - since > limit)

    def queued(self) -> int:
        return len(self._queued_ids)

    def flush_records(self) -> None:
        """Write what the last sends returned, without waiting for the next tick."""
        if self._to_record:
            with self._service.session() as session:
                self._record_sent(DispatchWrites(session.write_session, self._dialect))
            self._to_record = []


class _Liquidity:
    """Available balance per (asset, channel) as this transaction sees it, less what this
    call has already routed there."""

    def __init__(self, transaction: LedgerTransaction, pool: str,
                 capabilities: Mapping[str, Any]) -> None:
        self._transaction = transaction
        self._pool = pool
        self._channels = {
            asset: [cid for cid, caps in capabilities.items() if asset in caps.assets]
            for asset in {a for caps in capabilities.values() for a in caps.assets}
        }
        self._by_asset: dict[str, dict[str, int]] = {}

    def for_asset(self, asset: str) -> dict[str, int]:
        known = self._by_asset.get(asset)
        if known is None:
            channels = self._channels.get(asset, [])
            keys = {cid: (pool_account(self._pool, asset, cid, PoolState.AVAILABLE), asset)
                    for cid in channels}
            balances = self._transaction.balances(keys.values())
            known = {cid: balances[key].available for cid, key in keys.items()}
            self._by_asset[asset] = known
        return known

    def take(self, asset: str, channel: str, amount: int) -> None:
        available = self.for_asset(asset)
        if channel in available:
            available[channel] -= amount


def _instruction(payment: Payment, direction: Direction) -> Instruction:
    amount = payment.amount_minor
    return Instruction(payment.id, direction, payment.asset, amount, payment.counterparty,
                       payment.reference)


def _route_reason(route: RouteRecord) -> str:
    return str(route.decision.get("reason") or NO_ELIGIBLE_CHANNEL)


# What an outcome means for a payment in a given state: (disposition, steps, detail).
_OUT: dict[tuple[OutcomeKind, PaymentState], tuple[str, tuple[Action, ...]]] = {
    (K.CLEARED, S.SUBMITTED): ("applied", (A.CLEAR,)),
    (K.SETTLED, S.SUBMITTED): ("applied", (A.SETTLE,)),
    (K.SETTLED, S.CLEARED): ("applied", (A.SETTLE,)),
    (K.FAILED, S.SUBMITTED): ("applied", (A.FAIL,)),
    (K.FAILED, S.CLEARED): ("applied", (A.FAIL,)),
    (K.RETURNED, S.SETTLED): ("applied", (A.RETURN,)),
    # Skipping ahead implies what was skipped.
    (K.RETURNED, S.SUBMITTED): ("applied", (A.SETTLE, A.RETURN)),
    (K.RETURNED, S.CLEARED): ("applied", (A.SETTLE, A.RETURN)),
    # Already past it.
    (K.CLEARED, S.CLEARED): ("late", ()),
    (K.CLEARED, S.SETTLED): ("late", ()),
    (K.CLEARED, S.RETURNED): ("late", ()),
    (K.CLEARED, S.FAILED): ("late", ()),
    (K.SETTLED, S.SETTLED): ("late", ()),
    (K.SETTLED, S.RETURNED): ("late", ()),
    (K.FAILED, S.FAILED): ("late", ()),
    (K.RETURNED, S.RETURNED): ("late", ()),
}
_IN: dict[tuple[OutcomeKind, PaymentState], tuple[str, tuple[Action, ...]]] = {
    (K.CLEARED, S.SCREENED): ("applied", (A.CLEAR,)),
    (K.SETTLED, S.CLEARED): ("applied", (A.SETTLE,)),
    (K.SETTLED, S.SCREENED): ("applied", (A.CLEAR, A.SETTLE)),
    (K.FAILED, S.SCREENED): ("applied", (A.FAIL,)),
    (K.FAILED, S.INITIATED): ("applied", (A.FAIL,)),
    (K.FAILED, S.CLEARED): ("applied", (A.RETURN,)),
    (K.RETURNED, S.CLEARED): ("applied", (A.RETURN,)),
    (K.RETURNED, S.SCREENED): ("applied", (A.CLEAR, A.RETURN)),
    (K.RETURNED, S.SETTLED): ("applied", (A.REVERSE,)),
    (K.CLEARED, S.CLEARED): ("late", ()),
    (K.CLEARED, S.SETTLED): ("late", ()),
    (K.CLEARED, S.RETURNED): ("late", ()),
    (K.CLEARED, S.REVERSED): ("late", ()),
    (K.CLEARED, S.FAILED): ("late", ()),
    (K.SETTLED, S.SETTLED): ("late", ()),
    (K.SETTLED, S.REVERSED): ("late", ()),
    (K.FAILED, S.FAILED): ("late", ()),
    (K.FAILED, S.RETURNED): ("late", ()),
    (K.RETURNED, S.RETURNED): ("late", ()),
    (K.RETURNED, S.REVERSED): ("late", ()),
}


def _reading(
    kind: PaymentKind, state: PaymentState, outcome: OutcomeKind
) -> tuple[str, tuple[Action, ...], str | None]:
    table = _IN if kind.inbound else _OUT
    found = table.get((outcome, state))
    if found is None:
        return "anomaly", (), f"{outcome.value} while {state.value}"
    if kind.between_channels and found[1] and A.RETURN in found[1]:
        return "anomaly", (), "a transfer between the pool's channels does not come back"
    disposition, actions = found
    return disposition, actions, None
