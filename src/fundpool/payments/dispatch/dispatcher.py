"""The `Dispatcher`: intake, approvals and the tick, over the parts of this package.

It owns what lives between transactions (the queues, the inbox, the deposits to announce) and
opens the payment sessions: intake in one, an approver's decision in one, a tick in bounded
slices (at most OUTCOMES_PER_TRANSACTION outcomes and SUBMITS_PER_TRANSACTION submits per
ledger transaction, each slice followed by its sends), so a backlog never grows past what one
transaction can take and stops the dispatcher.

What a failed transaction changed in memory (the queues) is dropped, and the next rescan
rebuilds it from the store: approved payments not in a queue are found again (an approver's
call through another process, or a restart), and what is in transit is read back once, so
stuck payments show after a restart too.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

import structlog

from fundpool.channels.ports import ChannelAdapter, ChannelOutcome, Inquiry
from fundpool.core.actor import ENGINE, Actor
from fundpool.core.clock import Clock, IdSource
from fundpool.payments.dispatch.announcements import Announcements
from fundpool.payments.dispatch.batching import Batches, Due
from fundpool.payments.dispatch.inbox import Inbox
from fundpool.payments.dispatch.intake import Intake, take_in, take_up
from fundpool.payments.dispatch.liquidity import Liquidity
from fundpool.payments.dispatch.outcomes import OutcomeHandler
from fundpool.payments.dispatch.policy import (
    DEFAULT_DISPATCH_POLICY,
    OUTCOMES_PER_TRANSACTION,
    SUBMITS_PER_TRANSACTION,
    DispatchPolicy,
)
from fundpool.payments.dispatch.report import TickReport
from fundpool.payments.dispatch.routes import RouteChooser, held_risk_grade
from fundpool.payments.model import (
    Action,
    Outcome,
    Payment,
    PaymentKind,
    PaymentRequest,
    PaymentState,
    Step,
)
from fundpool.payments.ports import (
    ApprovalGate,
    DispatchRecordReads,
    DispatchRecords,
    Screening,
)
from fundpool.payments.records import RouteRecord
from fundpool.payments.service import PaymentService
from fundpool.routing.router import RoutingStrategy

S = PaymentState
log = structlog.get_logger(__name__)

RESCAN_PAGE = 1_000  # payments read per page when looking for approved or in-transit ones
TAKE_UP_MAX = 4_096  # payments taken up in one transaction (one call's bound, CALL_ITEMS_MAX)


class Dispatcher:
    """Routes new payouts, queues approved ones into batches per rail, sends them, and turns
    what the rails report into payment steps. `records` is where it keeps its routes,
    batches and outcomes (a store's implementation of `payments.ports.DispatchRecords`, on
    the same database as `service`'s ledger)."""

    def __init__(
        self,
        service: PaymentService,
        rails: Mapping[str, ChannelAdapter],
        router: RoutingStrategy,
        clock: Clock,
        ids: IdSource,
        *,
        records: DispatchRecords,
        policy: DispatchPolicy = DEFAULT_DISPATCH_POLICY,
        screening: Screening | None = None,
        approvals: ApprovalGate | None = None,
    ) -> None:
        self._service = service
        self._approvals = approvals  # the approval rules (None: the pool's thresholds alone)
        self._screening = screening  # the risk decision at screening (None: every one allowed)
        self._records = records
        self._clock = clock
        self._policy = policy
        self._pool = service.pool_id
        # One mapping shared by the parts below, so a rail swapped in it (a test's failing
        # adapter) is the one every part uses.
        self._rails = dict(rails)
        self._capabilities = {cid: rail.capabilities() for cid, rail in self._rails.items()}
        # Outcomes to apply (refusals, then what the rails reported), kept until the
        # transaction that applies them commits.
        self._inbox = Inbox()
        self._routes = RouteChooser(self._rails, self._capabilities, router)
        # What the rails take feeds the congestion their router prices (routing/congestion.py).
        self._batches = Batches(self._rails, self._capabilities, clock, ids, policy, self._inbox,
                                router.congestion)
        self._announcements = Announcements(self._rails, self._capabilities, clock, self._inbox)
        self._outcomes = OutcomeHandler(self._pool, router, self._routes, self._capabilities,
                                        self._batches, approvals)
        self._last_scan_us: int | None = None
        self._released_scan_us: int | None = None  # when released or routed ones were looked for
        self._in_transit_read = False

    @property
    def reads(self) -> DispatchRecordReads:
        """The dispatcher's records as committed: routes, batches, outcomes."""
        return self._records.reads

    @property
    def records(self) -> DispatchRecords:
        return self._records

    def queued(self) -> int:
        return self._batches.queued()

    # --- intake -----------------------------------------------------------------------------

    def intake(
        self,
        requests: Sequence[tuple[PaymentRequest, str | None]],
        *,
        atomic: bool = False,
        actor: Actor | None = None,
    ) -> list[Intake]:
        """Create payments and take each as far as it goes without a rail: deposits are
        screened (their rail is then told to expect them); payouts and transfers are screened,
        routed and approved (or left pending approval) and queued for their rail. One
        transaction. With `atomic`, any request refused, or any payment that cannot be routed
        or approved, refuses them all (`IntakeRefused`, naming the first) and nothing is
        created. `actor` creates them; the steps that follow are the engine's."""
        # `_screened` twice: inside, so what the risk engine decided is dropped before the
        # writer's lock is let go; outside, for a failure at the commit itself.
        with self._screened(), self._service.session(actor=actor) as session, \
                self._screened():
            at_us = session.at_us
            liquidity = Liquidity(session.transaction, self._pool, self._capabilities)
            intakes, planned = take_in(
                session, self._records.writes(session.write_session), self._routes, liquidity,
                requests, atomic=atomic, screening=self._screening, gate=self._approvals,
            )
        # Once committed, and only what this call created: a replayed request (the same key)
        # is already with its rail or in a queue, and announcing a deposit twice would have
        # the rail refuse it as a duplicate, which fails it.
        for intake in intakes:
            if isinstance(intake.outcome, Payment) and intake.outcome.id in planned:
                planned.discard(intake.outcome.id)  # once, however often its key came
                self._follow(intake.outcome, intake.route, at_us)
        self._announcements.send()
        return intakes

    @contextmanager
    def _screened(self) -> Iterator[None]:
        """Around a transaction that screens: what the risk engine decided in it is dropped
        when it does not commit."""
        try:
            yield
        except BaseException:
            if self._screening is not None:
                self._screening.discard()
            raise

    def _follow(self, payment: Payment, route: RouteRecord | None, at_us: int) -> None:
        """After a commit: queue what is approved, remember deposits to announce."""
        if payment.kind.inbound and payment.state is S.SCREENED and payment.channel:
            self._announcements.expect(payment.channel, payment)
        elif payment.state is S.APPROVED and payment.channel is not None:
            self._batches.enqueue(payment, route.attempt if route else 1, at_us)

    # --- payments created elsewhere -----------------------------------------------------------

    def take_up(self, limit: int = TAKE_UP_MAX) -> list[Intake]:
        """Take payments created through the API, the console, the CLI or a CSV file (state
        `initiated`), released from a hold (`screened`), or routed but not yet approved, as
        far as intake takes a new one: screen, route, approve or ask an approver, and queue.
        One transaction; at most `limit` payments, the rest at the next call. What the
        engine does on every pass."""
        waiting = self._waiting(limit)
        if not waiting:
            return []
        grades = self._held_grades(waiting)
        with self._screened(), self._service.session(actor=ENGINE) as session, \
                self._screened():
            at_us = session.at_us
            # As they stand under the writer's lock: a person or another process may have
            # moved one since it was listed (held it, cancelled it); that one is left alone.
            current = session.payments(p.id for p in waiting)
            still = [current[p.id] for p in waiting
                     if p.id in current and current[p.id].version == p.version]
            # Oldest first: screened (the risk rules' windows), routed and funded in the
            # order they were created.
            still.sort(key=lambda p: (p.created_at_us, p.id))
            liquidity = Liquidity(session.transaction, self._pool, self._capabilities)
            intakes = take_up(session, self._records.writes(session.write_session),
                              self._routes, liquidity, still, self._screening,
                              self._approvals, grades)
        for intake in intakes:
            if isinstance(intake.outcome, Payment):
                self._follow(intake.outcome, intake.route, at_us)
        self._announcements.send()
        return intakes

    def _held_grades(self, payments: Sequence[Payment]) -> dict[str, str]:
        """The risk grades released payments were held with, when a dynamic fee weighs
        them (read from their committed timelines: releases are people's, and few)."""
        if not self._routes.prices_risk:
            return {}
        grades: dict[str, str] = {}
        for payment in payments:
            if payment.state is S.SCREENED:
                grade = held_risk_grade(self._service.events(payment.id))
                if grade is not None:
                    grades[payment.id] = grade
        return grades

    def _waiting(self, limit: int) -> list[Payment]:
        """What waits for the engine, at most `limit`: new payments on every call; outbound
        ones released from a hold or routed but not approved (read by kind, so that deposits
        waiting for their rail are never read) as often as approved ones are looked for (a
        release in this process asks for it at once: `rescan_soon`)."""
        found: list[Payment] = []
        wanted: list[tuple[PaymentState, PaymentKind | None]] = [(S.INITIATED, None)]
        now_us = self._clock.now_us()
        if self._released_scan_us is None or \
                now_us - self._released_scan_us >= self._policy.rescan_us:
            self._released_scan_us = now_us
            wanted += [(state, kind) for state in (S.SCREENED, S.ROUTED)
                       for kind in PaymentKind if not kind.inbound]
        for state, kind in wanted:
            for page in self._pages(state, kind):
                found += [p for p in page if state is not S.ROUTED or not p.approval_required]
                if len(found) >= limit:
                    return found[:limit]
        return found

    def _pages(self, state: PaymentState, kind: PaymentKind | None = None
               ) -> Iterator[list[Payment]]:
        """The pool's payments in `state` (of `kind`), a page of RESCAN_PAGE at a time."""
        after: str | None = None
        while page := self._service.list(state=state, kind=kind, limit=RESCAN_PAGE,
                                         after_id=after):
            yield page
            after = page[-1].id

    # --- approvals made elsewhere (CLI, API, console) ---------------------------------------

    def approve(self, payment_ids: Sequence[str], *, actor: Actor | None = None
                ) -> list[Outcome]:
        """An approver's (`actor`'s) decision: approve, and queue once committed."""
        with self._service.session(actor=actor) as session:
            at_us = session.at_us
            outcomes = session.act([Step(pid, Action.APPROVE) for pid in payment_ids])
            routes = self._records.writes(session.write_session).routes(payment_ids)
        for outcome in outcomes:
            if isinstance(outcome, Payment):
                attempts = routes.get(outcome.id, [])
                self._follow(outcome, attempts[-1] if attempts else None, at_us)
        return outcomes

    def rescan_soon(self) -> None:
        """Look for approved and released payments at the next pass, whenever the last look
        was (an approval, a release or an upload in this process said there are some)."""
        self._last_scan_us = self._released_scan_us = None

    def _rescan(self, now_us: int) -> None:
        """Queue approved payments this process did not approve itself (an approver's call
        through another process, or a restart), at most every `rescan_us`."""
        if self._last_scan_us is not None and now_us - self._last_scan_us < self._policy.rescan_us:
            return
        self._last_scan_us = now_us
        for page in self._pages(S.APPROVED):
            routes = self._records.reads.routes_of(
                [p.id for p in page if not self._batches.is_queued(p.id)]
            )
            for payment in page:
                attempts = routes.get(payment.id, [])
                self._batches.enqueue(payment, attempts[-1].attempt if attempts else 1, now_us)
        # What is in transit, as the store has it, read once when this dispatcher starts (or
        # after a failed tick): after a restart too, a payment a rail never answered for shows
        # as stuck. From then on this dispatcher tracks what it sends itself.
        if self._in_transit_read:
            return
        self._in_transit_read = True
        for state in (S.SUBMITTED, S.CLEARED):
            for page in self._pages(state):
                for payment in page:
                    if not payment.kind.inbound:
                        self._batches.in_transit(payment)

    # --- after a restart --------------------------------------------------------------------

    def resume(self, *, forgetful: frozenset[str] = frozenset()) -> tuple[int, int]:
        """Pick up where the store says things stand, before the first tick: approved
        payments are queued again (the rescan), and every payment in transit is asked of its
        rail. One the rail never got (the process died between the commit that marked it
        submitted and the send) is sent now; a deposit its rail was never told of is announced
        now. Returns how many were asked about, and how many were sent or announced now."""
        now = self._clock.now_us()
        self._rescan(now)
        asked = resent = 0
        waiting: dict[str, list[Payment]] = {}
        for state in (S.SUBMITTED, S.CLEARED, S.SCREENED):
            for page in self._pages(state):
                for payment in page:
                    if payment.channel is not None and (
                        state is not S.SCREENED or payment.kind.inbound
                    ):
                        waiting.setdefault(payment.channel, []).append(payment)
        report = TickReport(at_us=now)
        for channel, payments in waiting.items():
            rail = self._rails.get(channel)
            if not isinstance(rail, Inquiry):
                continue
            if channel in forgetful:
                # A rail that starts with no memory cannot say what it was sent: sending now
                # could pay twice. Its payments stay in transit, shown stuck, for a person.
                log.error("rail_without_memory", channel=channel, in_transit=len(payments))
                continue
            asked += len(payments)
            try:  # one inquiry per rail: it reads what it keeps (its journal) once
                known = rail.inquire([p.id for p in payments], now)
            except Exception as error:  # not answered: nothing is sent, the rail may have it
                log.error("rail_inquiry_failed", channel=channel, error=str(error))
                continue
            unsent = [p for p in payments if p.id not in known]
            # Only what the rail never took can be sent: a cleared one it has forgotten is
            # left in transit (stuck) for a person, never sent again.
            payouts = [p for p in unsent if not p.kind.inbound and p.state is S.SUBMITTED]
            deposits = [p for p in unsent if p.kind.inbound and p.state is S.SCREENED]
            for deposit in deposits:
                self._announcements.expect(channel, deposit)
            resent += len(deposits) + len(payouts)
            if payouts:
                routes = self._records.reads.routes_of([p.id for p in payouts])
                self._batches.resend(channel, payouts, routes, report)
        self._announcements.send()
        self.flush_records()
        return asked, resent

    # --- the tick ---------------------------------------------------------------------------

    def tick(self) -> TickReport:
        """Poll every rail, apply what it reported, fail over what failed, and send what is
        due. Work goes in bounded slices, each one ledger transaction followed by its sends:
        the ledger takes at most BATCH_COMMANDS_MAX commands in one transaction, and a tick
        too large for one must not stop the dispatcher (it would fail the same way on every
        later tick while its inbox grew)."""
        now = self._clock.now_us()
        report = TickReport(at_us=now)
        self._rescan(now)
        for channel, rail in self._rails.items():
            try:
                self._inbox.deliver(rail.poll(now))
            except Exception as error:  # one rail down does not stop the others
                log.error("rail_poll_failed", channel=channel, error=str(error))
        # This tick's outcomes; refusals of its own sends join the inbox behind them and wait
        # for the next tick, as any report arriving now would.
        budget = len(self._inbox)
        while True:
            delivered = self._inbox.first(min(OUTCOMES_PER_TRANSACTION, budget))
            due: list[Due] = []
            try:
                with self._service.session(actor=ENGINE) as session:
                    writes = self._records.writes(session.write_session)
                    self._batches.write_receipts(writes)
                    if delivered:
                        self._outcomes.apply(session, writes, delivered, report)
                    due = self._batches.submit_due(session, report, SUBMITS_PER_TRANSACTION)
            except BaseException:
                # Nothing of this slice was written, but its queues changed in memory
                # (payments taken off to be sent, failovers queued): the store is the truth,
                # and the next tick's rescan rebuilds the queues from it. The outcomes stay
                # in the inbox.
                self._forget_queues()
                raise
            self._inbox.applied(len(delivered))
            self._acknowledge(delivered)
            budget -= len(delivered)
            self._batches.receipts_written()
            self._batches.send(due, report)
            submitted = sum(len(items) for _, _, items in due)
            if budget == 0 and submitted < SUBMITS_PER_TRANSACTION:
                break
            if not delivered and not submitted:
                break  # nothing moved in this slice: what is left waits for the next tick
        self._announcements.send()
        report.queued = self._batches.queued()
        report.stuck = self._batches.stuck(now)
        return report

    def _forget_queues(self) -> None:
        self._batches.forget()
        self._last_scan_us = None
        self._released_scan_us = None
        self._in_transit_read = False

    def _acknowledge(self, applied: Sequence[ChannelOutcome]) -> None:
        """Tell each rail that keeps a record of it which of its outcomes are now committed
        here: it never delivers those again, and after a crash it delivers again whatever was
        not (a refusal of this dispatcher's own is no rail's)."""
        by_channel: dict[str, list[str]] = {}
        for outcome in applied:
            if outcome.rail_ref:
                by_channel.setdefault(outcome.channel, []).append(outcome.outcome_id)
        for channel, ids in by_channel.items():
            acknowledge = getattr(self._rails.get(channel), "acknowledge", None)
            if callable(acknowledge):
                try:
                    acknowledge(ids)
                except Exception as error:  # not recorded: it comes again, as a duplicate
                    log.warning("rail_acknowledge_failed", channel=channel, error=str(error))

    def close(self) -> None:
        """Let go of the rails that hold something (a simulated rail's journal and its lock)."""
        for channel, rail in self._rails.items():
            close = getattr(rail, "close", None)
            if callable(close):
                try:
                    close()
                except Exception as error:
                    log.warning("rail_close_failed", channel=channel, error=str(error))

    def flush_records(self) -> None:
        """Write what the last sends returned, without waiting for the next tick."""
        if self._batches.has_receipts():
            with self._service.session(actor=ENGINE) as session:
                self._batches.write_receipts(self._records.writes(session.write_session))
            self._batches.receipts_written()
