"""The payment service: create payments and move them through their life (model.py).

Every call is one unit of work (session.py: one ledger transaction), or several calls share
one in a `session()`: the payments it touches are read under the ledger's writer lock, each
transition's ledger commands are applied as one linked group, and the payments and their
events are written in the same commit as the entries. Outbound approve, submit and settle
steps of one wave are booked as one summed entry per kind (ADR 0008, waves.py). A transition
the ledger refuses (insufficient funds on approve, say) leaves that payment as it was and is
reported as its error; the other items of the call go on. Nothing is ever half done.

The service opens sessions and reads; what a request or a step means is `PaymentRules`'
(rules.py), and the session applies it. Each uses the others' public interface only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from fundpool.core.actor import Actor
from fundpool.core.clock import IdSource
from fundpool.core.errors import FundpoolError
from fundpool.ledger.service import Ledger
from fundpool.payments.model import (
    Outcome,
    Payment,
    PaymentEvent,
    PaymentKind,
    PaymentRequest,
    PaymentState,
    Step,
    UnknownPayment,
)
from fundpool.payments.ports import LIST_LIMIT_MAX, PaymentFilter, PaymentStore
from fundpool.payments.remembered import RememberedPayments
from fundpool.payments.rules import NOT_FOR_PAYOUTS, TEXT_FIELD_LENGTH_MAX, PaymentRules
from fundpool.payments.session import (
    CALL_ITEMS_MAX,
    PLAN_STEPS_MAX,
    PaymentSession,
    check_call_size,
)
from fundpool.pool.config import FundpoolConfig, PoolConfig

# Where these lived before the service was split; callers may import them from here.
__all__ = [
    "CALL_ITEMS_MAX",
    "NOT_FOR_PAYOUTS",
    "PLAN_STEPS_MAX",
    "TEXT_FIELD_LENGTH_MAX",
    "Outcome",
    "PaymentService",
    "PaymentSession",
    "Step",
]


class PaymentService:
    def __init__(
        self,
        ledger: Ledger,
        store: PaymentStore,
        config: FundpoolConfig,
        pool: PoolConfig,
        ids: IdSource,
    ) -> None:
        self._ledger = ledger
        self._store = store
        self._rules = PaymentRules(config, pool, ids)
        self._remembered = RememberedPayments()

    @property
    def pool_id(self) -> str:
        return self._rules.pool_id

    @property
    def ledger(self) -> Ledger:
        return self._ledger

    # --- units of work --------------------------------------------------------------------

    @contextmanager
    def session(self, actor: Actor | None = None) -> Iterator[PaymentSession]:
        """One ledger transaction for several calls: what they change is written once, when
        the block ends without an exception, with the entries they posted. Others (the
        dispatcher's routes and outcomes) write their rows on `session.write_session`.
        `actor` is who acts in it, unless a call or a step names another."""
        with PaymentSession.open(self._ledger, self._store, self._rules, actor,
                                 self._remembered) as session:
            yield session

    def create(self, request: PaymentRequest, *, idempotency_key: str | None = None,
               actor: Actor | None = None) -> Payment:
        (outcome,) = self.create_many([(request, idempotency_key)], actor=actor)
        if isinstance(outcome, FundpoolError):
            raise outcome
        return outcome

    def create_many(
        self, requests: Sequence[tuple[PaymentRequest, str | None]], *,
        actor: Actor | None = None,
    ) -> list[Outcome]:
        """Create payments in state `initiated`, by `actor`. A key seen before with the same
        request returns that payment; with another request it is `idempotency_conflict`."""
        check_call_size(len(requests))
        with self.session(actor) as session:
            return session.create(requests)

    def act(self, step: Step, *, actor: Actor | None = None) -> Payment:
        (outcome,) = self.act_many([step], actor=actor)
        if isinstance(outcome, FundpoolError):
            raise outcome
        return outcome

    def act_many(self, steps: Sequence[Step], *, actor: Actor | None = None) -> list[Outcome]:
        """Apply steps in order, in one ledger transaction; later steps see earlier ones.
        `actor` takes the steps that do not name their own."""
        check_call_size(len(steps))
        with self.session(actor) as session:
            return session.act(steps)

    def create_and_act(
        self,
        requests: Sequence[tuple[PaymentRequest, str | None]],
        plan: Callable[[Payment], Sequence[Step]],
        *,
        actor: Actor | None = None,
    ) -> list[tuple[Outcome, list[Outcome]]]:
        """Create payments and take each new one through the steps `plan` gives for it, in
        one ledger transaction (see PaymentSession.create_and_act)."""
        with self.session(actor) as session:
            return session.create_and_act(requests, plan)

    # --- reads ----------------------------------------------------------------------------

    def get(self, payment_id: str) -> Payment:
        payment = self._store.payment(payment_id)
        if payment is None or payment.pool != self.pool_id:
            raise UnknownPayment(payment_id=payment_id)
        return payment

    def states(self, payment_ids: Sequence[str]) -> dict[str, PaymentState]:
        """Current states, read in bulk (for a batch's progress)."""
        return self._store.states(payment_ids)

    def check(self, request: PaymentRequest, *, idempotency_key: str | None = None,
              actor: Actor | None = None) -> None:
        """Raise what `create` would refuse `request` for (its fields, key, channel, limits,
        fee), creating nothing: for a caller that must do something first and may not leave
        it half done (the desk converts before a converted payout exists)."""
        self._rules.new_payment(request, idempotency_key, self._ledger.clock.now_us(), actor)

    def created_between(self, since_us: int, until_us: int, *, limit: int) -> list[Payment]:
        """The pool's payments created in [since, until), at most `limit` (the desk's flows)."""
        return self._store.created_between(self.pool_id, since_us, until_us, limit=limit)

    def events(self, payment_id: str) -> list[PaymentEvent]:
        self.get(payment_id)
        return self._store.events(payment_id)

    def list(
        self,
        *,
        state: PaymentState | None = None,
        kind: PaymentKind | None = None,
        asset: str | None = None,
        channel: str | None = None,
        limit: int = 100,
        after_id: str | None = None,
    ) -> list[Payment]:
        where = PaymentFilter(self.pool_id, state, kind, asset, channel)
        return self._store.payments(
            where, limit=max(1, min(limit, LIST_LIMIT_MAX)), after_id=after_id
        )
