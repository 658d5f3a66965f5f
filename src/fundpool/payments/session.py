"""The payments' unit of work: one ledger transaction in which payments are created and moved.

`PaymentSession.open(ledger, store, rules)` opens the ledger transaction, yields the session,
and when the block ends without an exception writes every payment and event it changed in the
same commit as the ledger entries they posted (and their outbox events); an exception rolls
all of it back. Inside, the session's public calls are all there is:

- `create(requests, actor=)` — new payments (idempotent per key, also across calls of the
  session); a payout or transfer larger than the pool holds available for it is refused
  (`insufficient_funds`, funds.py);
- `act(steps)` — steps applied in order, each payment's commands as one linked group, later
  steps seeing earlier ones (also those of earlier calls in the session);
- `create_and_act(requests, plan)` — both, with a plan per new payment, in waves;
- `payments(ids)` — payments as they stand in the session;
- `transaction`, `write_session`, `at_us` — for other services' rows in the same commit (the
  dispatcher's routes and outcomes).

Every creation and step records its actor: the step's own (`Step.actor`), else the one given
to `create`, else the session's (`PaymentService.session(actor=...)`). Approval of a payment
that waits for it is held to four eyes (rules.check_four_eyes); a second approval by whoever
approved it already is `already_approved_by_you`.

What a request or a step means comes from `PaymentRules` (rules.py); how a wave of steps is
booked on the ledger, from waves.py. A transition the ledger refuses (insufficient funds on
approve, say) leaves that payment as it was and is reported as its error; the other items of
the call go on. Nothing is ever half done.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from fundpool.core.actor import Actor
from fundpool.core.errors import FundpoolError, LinkedBatchFailed, invariant
from fundpool.core.ledger.engine import CommandResult
from fundpool.core.ledger.model import check_idempotency_key
from fundpool.events.model import Event, PaymentTransitioned
from fundpool.ledger.ports import WriteSession
from fundpool.ledger.service import Ledger, LedgerTransaction
from fundpool.payments.funds import AvailableFunds
from fundpool.payments.memo import LastByIdentity
from fundpool.payments.model import (
    Action,
    AlreadyApprovedByYou,
    IllegalTransition,
    InvalidPayment,
    Outcome,
    Payment,
    PaymentEvent,
    PaymentIdempotencyConflict,
    PaymentRequest,
    PaymentState,
    Step,
    UnknownPayment,
)
from fundpool.payments.ports import PaymentStore, PaymentWrites
from fundpool.payments.remembered import RememberedPayments
from fundpool.payments.rules import HISTORY_ACTIONS, PaymentRules, PlannedStep, needs_history
from fundpool.payments.waves import book

ACTOR_DOCS_CACHED_MAX = 1_024  # distinct actors whose event form is kept (a few per request)
CALL_ITEMS_MAX = 4_096  # bounded so one call stays one ledger batch (several commands each)
PLAN_STEPS_MAX = 16  # steps per new payment in create_and_act: each wave is still one batch


class PaymentSession:
    """Payment calls sharing one ledger transaction (see the module's docstring)."""

    def __init__(
        self, rules: PaymentRules, transaction: LedgerTransaction, writes: PaymentWrites,
        actor: Actor | None = None, remembered: RememberedPayments | None = None,
    ) -> None:
        self._rules = rules
        self._actor = actor
        self._transaction = transaction
        self._writes = writes
        self._remembered = remembered
        self._current: dict[str, Payment] = {}
        self._created: dict[str, Payment] = {}
        self._changed: dict[str, Payment] = {}
        self._events: list[PaymentEvent] = []
        self._history: dict[str, list[PaymentEvent]] = {}
        self._history_read: set[str] = set()
        self._keys: dict[str, Payment] = {}  # idempotency keys seen in this session

    @classmethod
    @contextmanager
    def open(
        cls, ledger: Ledger, store: PaymentStore, rules: PaymentRules,
        actor: Actor | None = None, remembered: RememberedPayments | None = None,
    ) -> Iterator[PaymentSession]:
        """One ledger transaction for the block: what the session changed is written once,
        when the block ends without an exception, with the entries it posted. `actor` is who
        acts, unless a call or a step names another. Once committed, the payments it read
        and wrote are `remembered` (remembered.py), if given: the next session takes them
        again where the store still has their version."""
        with ledger.transaction() as transaction:
            session = cls(rules, transaction, store.writes(transaction.session), actor,
                          remembered)
            yield session
            session._save()
        if remembered is not None:
            remembered.keep(session._current.values())

    @property
    def transaction(self) -> LedgerTransaction:
        return self._transaction

    @property
    def write_session(self) -> WriteSession:
        return self._transaction.session

    @property
    def actor(self) -> Actor | None:
        return self._actor

    @property
    def at_us(self) -> int:
        return self._transaction.at_us

    @property
    def created(self) -> Mapping[str, Payment]:
        """The payments this session created, by id (a replayed key's payment is not)."""
        return self._created

    def payments(self, ids: Iterable[str]) -> dict[str, Payment]:
        """The payments as they stand in this session (unknown ids left out)."""
        wanted = set(ids)
        self._load(wanted)
        return {pid: self._current[pid] for pid in wanted if pid in self._current}

    # --- creation -------------------------------------------------------------------------

    def create(self, requests: Sequence[tuple[PaymentRequest, str | None]], *,
               actor: Actor | None = None) -> list[Outcome]:
        """Create payments in state `initiated`, by `actor` (default: the session's). A key
        seen before (stored, or earlier in this session) with the same request returns that
        payment; with another request it is `idempotency_conflict`. A payout or transfer
        larger than the pool holds available for it is `insufficient_funds`."""
        check_call_size(len(requests))
        at_us = self._transaction.at_us
        actor = actor or self._actor
        rules = self._rules
        funds = AvailableFunds(self._transaction, rules.pool_id)
        known = self._keys
        # Only well-formed keys are looked up; a bad one is that item's error below.
        keys = [key for _, key in requests
                if key is not None and key not in known and _valid_key(key)]
        if keys:
            known.update(self._writes.by_idempotency_key(self._rules.pool_id, keys))
        created: list[Payment] = []
        emitted: list[Event] = []
        outcomes: list[Outcome] = []
        for request, key in requests:
            try:
                payment = rules.new_payment(request, key, at_us, actor)
                earlier = known.get(key) if key is not None else None
                if earlier is not None:
                    if earlier.request_hash != payment.request_hash:
                        raise PaymentIdempotencyConflict(
                            idempotency_key=key, payment_id=earlier.id
                        )
                    outcomes.append(earlier)
                    continue
                funds.check(payment, rules.funding_channels(payment))
                if key is not None:
                    known[key] = payment
                created.append(payment)
                event = PaymentEvent(payment.id, 1, Action.CREATE, None,
                                     PaymentState.INITIATED, at_us, actor=actor)
                self._events.append(event)
                emitted.append(transitioned_event(payment, event, None, None))
                outcomes.append(payment)
            except FundpoolError as error:
                outcomes.append(error)
        for payment in created:
            self._created[payment.id] = self._current[payment.id] = payment
        self._transaction.emit(emitted)
        return outcomes

    def create_and_act(
        self,
        requests: Sequence[tuple[PaymentRequest, str | None]],
        plan: Callable[[Payment], Sequence[Step]],
        *,
        actor: Actor | None = None,
    ) -> list[tuple[Outcome, list[Outcome]]]:
        """Create payments and take each new one through the steps `plan` gives for it: what
        a dispatcher does with fresh payments (screen, route, approve) without a store round
        trip per step. A replayed creation (same key, same request) takes no steps. `actor`
        (default: the session's) is the creation's; the steps name their own or take the
        session's. Returns, per request, the creation's outcome and the outcomes of its
        steps."""
        before = set(self._created)
        created_outcomes = self.create(requests, actor=actor)
        plans: list[tuple[int, Sequence[Step]]] = []
        planned_ids: set[str] = set()
        for index, outcome in enumerate(created_outcomes):
            if isinstance(outcome, Payment) and outcome.id in self._created and (
                outcome.id not in before and outcome.id not in planned_ids
            ):
                planned_ids.add(outcome.id)  # a key repeated in this call: planned once
                planned = plan(outcome)
                if len(planned) > PLAN_STEPS_MAX or any(
                    step.payment_id != outcome.id for step in planned
                ):
                    raise InvalidPayment(
                        "a plan is at most PLAN_STEPS_MAX steps, all for its own payment",
                        steps_max=PLAN_STEPS_MAX,
                    )
                plans.append((index, planned))
        # Round by round (every payment's first step, then every second step...): each
        # round is one wave, one engine call, instead of a wave per step.
        steps: list[Step] = []
        owners: list[int] = []
        for round_ in range(max((len(p) for _, p in plans), default=0)):
            for index, planned in plans:
                if round_ < len(planned):
                    steps.append(planned[round_])
                    owners.append(index)
        step_outcomes = self.act(steps) if steps else []
        results: list[tuple[Outcome, list[Outcome]]] = [(o, []) for o in created_outcomes]
        for owner, outcome in zip(owners, step_outcomes, strict=True):
            results[owner][1].append(outcome)
        return results

    # --- transitions ----------------------------------------------------------------------

    def act(self, steps: Sequence[Step]) -> list[Outcome]:
        """Apply steps in order; later steps see earlier ones (also those of earlier calls
        in this session). A wave holds each payment once, so the ledger sees at most one
        command per payment of the session at a time."""
        transaction = self._transaction
        self._load({step.payment_id for step in steps})
        current = self._current
        wanted = {s.payment_id for s in steps
                  if s.action in HISTORY_ACTIONS and needs_history(s, current.get(s.payment_id))}
        history = self._history
        emitted: list[Event] = []
        # Stored events come before this session's: a payment's history is read once, then
        # the session's own events are appended to it as they happen.
        missing = wanted - self._history_read - self._created.keys()
        if missing:
            stored = self._writes.events(missing)
            for pid in missing:
                history[pid] = stored.get(pid, []) + history.get(pid, [])
        self._history_read |= wanted
        outcomes: list[Outcome | None] = [None] * len(steps)
        # Steps are planned in waves in which each payment appears once; a wave's ledger
        # commands are booked together (waves.py).
        wave: list[PlannedStep] = []
        in_wave: set[str] = set()

        at_us = transaction.at_us
        changed, events = self._changed, self._events

        def flush() -> None:
            for planned, result in zip(wave, book(transaction, wave), strict=True):
                entry_ids: tuple[str, ...] = ()
                if result is not None:
                    if result.error is not None:
                        outcomes[planned.position] = _cause(result.error)
                        continue
                    entry_ids = _entry_ids(result)
                after, event = planned.done(at_us, entry_ids)
                pid = after.id
                current[pid] = changed[pid] = after
                if pid in history:
                    history[pid].append(event)
                else:
                    history[pid] = [event]
                events.append(event)
                before = planned.before
                emitted.append(transitioned_event(after, event, before.updated_at_us,
                                                  before.channel))
                outcomes[planned.position] = after
            wave.clear()
            in_wave.clear()

        default_actor = self._actor
        plan = self._rules.plan
        for index, step in enumerate(steps):
            pid = step.payment_id
            if pid in in_wave:
                flush()
            actor = step.actor or default_actor
            try:
                payment = current.get(pid)
                if payment is None:
                    raise UnknownPayment(payment_id=pid)
                wave.append(plan(index, payment, step, history.get(pid, ()), actor))
                in_wave.add(pid)
            except IllegalTransition as error:
                outcomes[index] = self._approved_before(error, step, actor)
            except FundpoolError as error:
                outcomes[index] = error
        flush()
        transaction.emit(emitted)
        done = [outcome for outcome in outcomes if outcome is not None]
        invariant(len(done) == len(steps), "every step has an outcome, in step order")
        return done

    # --- inside -----------------------------------------------------------------------------

    def _approved_before(self, error: IllegalTransition, step: Step, actor: Actor | None
                         ) -> FundpoolError:
        """An approval the payment's state refuses is `already_approved_by_you` when this
        actor approved it before (a double click, a retry without a key): the caller learns
        that their approval stands, not only that the state moved on. The history is read
        only on this path."""
        if step.action is not Action.APPROVE or actor is None:
            return error
        pid = step.payment_id
        if pid not in self._history_read and pid not in self._created:
            stored = self._writes.events({pid}).get(pid, [])
            self._history[pid] = stored + self._history.get(pid, [])
            self._history_read.add(pid)
        for event in self._history.get(pid, []):
            if (event.action is Action.APPROVE and event.actor is not None
                    and event.actor.who == actor.who):
                return AlreadyApprovedByYou(payment_id=pid, who=actor.who,
                                            state=error.facts.get("state"))
        return error

    def _load(self, ids: set[str]) -> None:
        missing = ids - self._current.keys()
        if missing and self._remembered is not None:
            known = self._remembered.get(missing)
            if known:
                stored = self._writes.versions(known)
                for pid, payment in known.items():
                    if stored.get(pid) == payment.version:
                        self._current[pid] = payment
                        missing.discard(pid)
        if missing:
            self._current.update(self._writes.load(missing))

    def _save(self) -> None:
        # A payment created and changed in the same session is inserted in its final state.
        created = [self._current[pid] for pid in self._created]
        changed = [p for pid, p in self._changed.items() if pid not in self._created]
        self._writes.save(created, changed, self._events)


def check_call_size(count: int) -> None:
    if count > CALL_ITEMS_MAX:
        raise InvalidPayment("too many items in one call", items=count,
                             items_max=CALL_ITEMS_MAX)


def _valid_key(key: object) -> bool:
    try:
        check_idempotency_key(key)
    except FundpoolError:
        return False
    return True


def _cause(error: FundpoolError) -> FundpoolError:
    """The member's own error for a refused linked group: what the caller can act on."""
    cause = error.__cause__
    if isinstance(error, LinkedBatchFailed) and isinstance(cause, FundpoolError):
        return cause
    return error


def _entry_ids(result: CommandResult) -> tuple[str, ...]:
    if result.entry is not None:
        return (result.entry.id,)
    return tuple(member.entry.id for member in result.members if member.entry is not None)


@functools.lru_cache(maxsize=ACTOR_DOCS_CACHED_MAX)
def actor_doc(actor: Actor) -> dict[str, Any]:
    """An actor as an outbox event carries it. Cached: a session's events mostly share one
    actor (treat the dict as immutable)."""
    return actor.to_dict()


_event_actor_doc = LastByIdentity(actor_doc)


def transitioned_event(
    after: Payment, event: PaymentEvent, since_us: int | None, previous_channel: str | None
) -> Event:
    """The outbox event of one transition: the payment as it stands after it. (`str()` of a
    state, an action or a kind is its value, as a StrEnum's is, in a third of the time
    `.value` takes: this runs for every step.)"""
    actor = event.actor
    return Event(
        f"{after.id}:{event.seq}",
        PaymentTransitioned.TYPE,
        after.pool,
        event.at_us,
        PaymentTransitioned(
            after.id, str(after.kind), after.asset, after.amount_minor, after.fee_minor,
            after.channel, after.destination_channel, str(event.action),
            None if event.from_state is None else str(event.from_state),
            str(event.to_state), event.seq, since_us, after.created_at_us, event.reason,
            previous_channel, after.counterparty,
            None if actor is None else _event_actor_doc(actor),
        ),
    )
