"""The payment service: create payments and move them through their life (model.py).

Every call is one ledger transaction (or several calls, in a `session()`): the payments it
touches are read under the ledger's writer lock, each transition's ledger commands are applied
as one linked group, and the payments and their events are written in the same commit as the
entries. Outbound approve, submit and settle steps of one wave are booked as one summed entry
per kind (ADR 0008). A transition the ledger refuses (insufficient funds on approve, say)
leaves that payment as it was and is reported as its error; the other items of the call go
on. Nothing is ever half done.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace

from fundpool.core.clock import IdSource
from fundpool.core.errors import FundpoolError, LinkedBatchFailed, invariant
from fundpool.core.ledger.engine import CommandResult
from fundpool.core.ledger.model import (
    POSTINGS_PER_TRANSACTION_MAX,
    Command,
    Linked,
    Posting,
    Transfer,
    check_idempotency_key,
    check_metadata,
    is_storable_text,
)
from fundpool.core.money import AMOUNT_MAX_MINOR, check_amount
from fundpool.events.model import Event, PaymentTransitioned
from fundpool.ledger.ports import WriteSession
from fundpool.ledger.service import Ledger, LedgerTransaction
from fundpool.payments.instant import (
    MERCHANT_KEY,
    advance,
    advanced,
    merchant_commands,
    merchant_of,
)
from fundpool.payments.model import (
    Action,
    AmountOutsideLimits,
    ApprovalRequired,
    IllegalTransition,
    InvalidPayment,
    Payment,
    PaymentEvent,
    PaymentIdempotencyConflict,
    PaymentKind,
    PaymentRequest,
    PaymentState,
    UnknownPayment,
    next_state,
)
from fundpool.payments.ports import LIST_LIMIT_MAX, PaymentFilter, PaymentStore, PaymentWrites
from fundpool.payments.postings import Move, commands_for, outbound_moves, transfer_of
from fundpool.pool.config import ChannelKind, FundpoolConfig, OwnerKind, PoolConfig

TEXT_FIELD_LENGTH_MAX = 256
# Rails that only move money inside the pool never carry a payout to the outside world.
NOT_FOR_PAYOUTS = frozenset({ChannelKind.BOOK})
CALL_ITEMS_MAX = 4_096  # bounded so one call stays one ledger batch (several commands each)
PLAN_STEPS_MAX = 16  # steps per new payment in create_and_act: each wave is still one batch


@dataclass(frozen=True, slots=True)
class Step:
    """One action on one payment. `channel` (and `destination_channel`) choose the rail when
    routing; `reason` is kept with the event."""

    payment_id: str
    action: Action
    channel: str | None = None
    destination_channel: str | None = None
    reason: str | None = None
    fee_minor: int | None = None  # on ROUTE: the chosen rail's quoted fee (else the schedule's)


Outcome = Payment | FundpoolError


@dataclass(frozen=True, slots=True)
class _Planned:
    """A checked step waiting for its ledger command's result."""

    index: int
    before: Payment
    routed: Payment  # `before` with the channel and fee routing chose (else the same)
    step: Step
    target: PaymentState
    command: Command | None
    fallback: Command | None = None  # applied instead when `command` is refused
    # For outbound approve/submit/settle: the moves, summed with the wave's others into one
    # entry; `command` (one entry for this step alone) is then built only if that is refused.
    moves: tuple[Move, ...] | None = None

    def single(self) -> Command | None:
        if self.command is None and self.moves:
            return transfer_of(self.routed, self.step.action, self.moves)
        return self.command

    @property
    def posts(self) -> bool:
        return self.command is not None or bool(self.moves)

    def done(self, at_us: int, entry_ids: tuple[str, ...]) -> tuple[Payment, PaymentEvent]:
        p = self.routed
        after = Payment(
            p.id, p.pool, p.kind, p.asset, p.amount_minor, p.fee_minor, p.channel,
            p.destination_channel, p.counterparty, p.reference, self.target,
            p.approval_required, p.created_at_us, at_us, p.idempotency_key, p.request_hash,
            p.metadata, p.version + 1,
        )
        event = PaymentEvent(
            p.id, after.version, self.step.action, self.before.state, self.target, at_us,
            entry_ids, self.step.reason,
        )
        return after, event


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
        self._config = config
        self._pool = pool
        self._ids = ids
        self._channels = {c.id: c for c in config.channels if c.id in pool.channels}
        self._merchants = {o.id for o in config.owners if o.kind is OwnerKind.MERCHANT}

    @property
    def pool_id(self) -> str:
        return self._pool.id

    @property
    def ledger(self) -> Ledger:
        return self._ledger

    # --- creation -------------------------------------------------------------------------

    def create(self, request: PaymentRequest, *, idempotency_key: str | None = None) -> Payment:
        (outcome,) = self.create_many([(request, idempotency_key)])
        if isinstance(outcome, FundpoolError):
            raise outcome
        return outcome

    def create_many(
        self, requests: Sequence[tuple[PaymentRequest, str | None]]
    ) -> list[Outcome]:
        """Create payments in state `initiated`. A key seen before with the same request
        returns that payment; with another request it is `idempotency_conflict`."""
        _bound(len(requests))
        with self._ledger.transaction() as transaction:
            writes = self._store.writes(transaction.session)
            outcomes, created, events = self._create_in(writes, requests, transaction.at_us)
            writes.save(created, (), events)
            transaction.emit(created_event(p) for p in created)
        return outcomes

    def _create_in(
        self,
        writes: PaymentWrites,
        requests: Sequence[tuple[PaymentRequest, str | None]],
        at_us: int,
        pending: dict[str, Payment] | None = None,
    ) -> tuple[list[Outcome], list[Payment], list[PaymentEvent]]:
        """`pending` holds the keys created earlier in the same transaction and not yet
        written; it is updated with this call's."""
        # Only well-formed keys are looked up; a bad one is that item's error below.
        known = {} if pending is None else pending
        keys = [key for _, key in requests
                if key is not None and key not in known and _valid_key(key)]
        if keys:
            known.update(writes.by_idempotency_key(self._pool.id, keys))
        created: list[Payment] = []
        events: list[PaymentEvent] = []
        outcomes: list[Outcome] = []
        for request, key in requests:
            try:
                payment = self._new(request, key, at_us)
                earlier = known.get(key) if key is not None else None
                if earlier is not None:
                    if earlier.request_hash != payment.request_hash:
                        raise PaymentIdempotencyConflict(
                            idempotency_key=key, payment_id=earlier.id
                        )
                    outcomes.append(earlier)
                    continue
                if key is not None:
                    known[key] = payment
                created.append(payment)
                events.append(
                    PaymentEvent(payment.id, 1, Action.CREATE, None, PaymentState.INITIATED,
                                 at_us)
                )
                outcomes.append(payment)
            except FundpoolError as error:
                outcomes.append(error)
        return outcomes, created, events

    def _new(self, request: PaymentRequest, key: str | None, at_us: int) -> Payment:
        self._check_request(request)
        check_idempotency_key(key)
        fee = self._fee(request.kind, request.channel, request.asset, request.amount_minor)
        return Payment(
            id=self._ids.new_id(at_us),
            pool=self._pool.id,
            kind=request.kind,
            asset=request.asset,
            amount_minor=request.amount_minor,
            fee_minor=fee,
            channel=request.channel,
            destination_channel=request.destination_channel,
            counterparty=request.counterparty,
            reference=request.reference,
            state=PaymentState.INITIATED,
            approval_required=not request.kind.inbound
            and self._pool.approval_required(request.asset, request.amount_minor),
            created_at_us=at_us,
            updated_at_us=at_us,
            idempotency_key=key,
            # Only a keyed request can be replayed, so only its body needs a fingerprint.
            request_hash=b"" if key is None else _request_hash(request),
            metadata=dict(request.metadata),
            version=1,
        )

    def _check_request(self, request: PaymentRequest) -> None:
        if not isinstance(request.kind, PaymentKind):
            raise InvalidPayment("kind is deposit, payout, internal or bridge")
        check_amount(request.amount_minor, asset=request.asset)
        if request.amount_minor == 0:
            raise InvalidPayment("a payment moves a positive amount", asset=request.asset)
        check_metadata(request.metadata)
        for name in ("counterparty", "reference"):
            value = getattr(request, name)
            if value is not None and (
                not isinstance(value, str)
                or not value
                or len(value) > TEXT_FIELD_LENGTH_MAX
                or not is_storable_text(value)
            ):
                raise InvalidPayment(
                    f"{name} is 1 to {TEXT_FIELD_LENGTH_MAX} characters of text without NUL "
                    "characters or unpaired surrogates"
                )
        if not any(request.asset in c.assets for c in self._channels.values()):
            raise InvalidPayment(
                "no channel of this pool carries the asset", asset=request.asset,
                pool=self._pool.id,
            )
        merchant = request.metadata.get(MERCHANT_KEY)
        if merchant is not None:
            if not request.kind.inbound:
                raise InvalidPayment("only a deposit is paid to a merchant")
            if merchant not in self._merchants:
                raise InvalidPayment("no such merchant", merchant=merchant)
        if request.kind.inbound and request.channel is None:
            raise InvalidPayment("a deposit names the channel it arrives on")
        if request.channel is not None:
            self._channel_for(request.channel, request.asset, request.amount_minor)
            self._carries(request.kind, request.channel)
        if request.kind.between_channels:
            if request.destination_channel is None:
                raise InvalidPayment("an internal or bridge transfer names its destination")
            self._channel_for(request.destination_channel, request.asset, request.amount_minor)
            if request.destination_channel == request.channel:
                raise InvalidPayment("source and destination channel are the same")
        elif request.destination_channel is not None:
            raise InvalidPayment("only internal and bridge transfers have a destination channel")

    def _channel_for(self, channel_id: str, asset: str, amount_minor: int | None = None) -> None:
        channel = self._channels.get(channel_id)
        if channel is None:
            raise InvalidPayment("no such channel in this pool", channel=channel_id,
                                 pool=self._pool.id)
        if asset not in channel.assets:
            raise InvalidPayment("the channel does not carry the asset", channel=channel_id,
                                 asset=asset)
        if amount_minor is not None:
            limits = channel.limits_for(asset)
            if amount_minor < limits.min_minor or (
                limits.max_minor is not None and amount_minor > limits.max_minor
            ):
                raise AmountOutsideLimits(
                    channel=channel_id, asset=asset, amount_minor=amount_minor,
                    min_minor=limits.min_minor, max_minor=limits.max_minor,
                )

    def _carries(self, kind: PaymentKind, channel_id: str) -> None:
        """A book rail moves money between the pool's own accounts: it never pays out to the
        outside world (the dispatcher, the router and payout files rely on this)."""
        if kind is PaymentKind.PAYOUT and self._channels[channel_id].kind in NOT_FOR_PAYOUTS:
            raise InvalidPayment("a book rail carries no payout", channel=channel_id)

    def _fee(self, kind: PaymentKind, channel_id: str | None, asset: str, amount: int) -> int:
        if channel_id is None:
            return 0  # quoted when the payment is routed
        schedule = self._channels[channel_id].fee_schedule(asset)
        return schedule.inbound_fee(amount) if kind.inbound else schedule.outbound_fee(amount)

    # --- transitions ----------------------------------------------------------------------

    def act(self, step: Step) -> Payment:
        (outcome,) = self.act_many([step])
        if isinstance(outcome, FundpoolError):
            raise outcome
        return outcome

    def act_many(self, steps: Sequence[Step]) -> list[Outcome]:
        """Apply steps in order, in one ledger transaction; later steps see earlier ones."""
        _bound(len(steps))
        with self.session() as session:
            return session.act(steps)

    def create_and_act(
        self,
        requests: Sequence[tuple[PaymentRequest, str | None]],
        plan: Callable[[Payment], Sequence[Step]],
    ) -> list[tuple[Outcome, list[Outcome]]]:
        """Create payments and take each new one through the steps `plan` gives for it, in
        one ledger transaction (see PaymentSession.create_and_act)."""
        with self.session() as session:
            return session.create_and_act(requests, plan)

    @contextmanager
    def session(self) -> Iterator[PaymentSession]:
        """One ledger transaction for several calls: what they change is written once, when
        the block ends without an exception, with the entries they posted. Others (the
        dispatcher's routes and outcomes) write their rows on `session.write_session`."""
        with self._ledger.transaction() as transaction:
            session = PaymentSession(self, transaction, self._store.writes(transaction.session))
            yield session
            session.save()

    def _may_have_advance(self, payment: Payment | None) -> bool:
        """A merchant deposit's settle, return and reverse depend on whether its clear
        carried an advance, which its history says (whatever the configuration says now)."""
        return payment is not None and merchant_of(payment) is not None

    def _instant_owner(self, payment: Payment) -> str | None:
        """The merchant of a deposit whose asset has instant settlement in this pool."""
        owner = merchant_of(payment)
        if owner is None or payment.asset not in self._pool.instant_settlement:
            return None
        return owner

    def _plan(
        self, index: int, payment: Payment, step: Step, history: Sequence[PaymentEvent]
    ) -> _Planned:
        """Check a step and work out what it posts; nothing is applied yet."""
        target = next_state(payment.kind, payment.state, step.action)
        if target is None or (
            step.action is Action.RETURN and payment.kind.between_channels
        ):
            raise IllegalTransition(
                payment_id=payment.id, state=payment.state.value, action=step.action.value
            )
        before = payment
        if step.action is Action.ROUTE:
            payment = self._route(payment, step)
        elif (
            step.channel is not None
            or step.destination_channel is not None
            or step.fee_minor is not None
        ):
            raise InvalidPayment("only routing chooses a channel and its fee",
                                 action=step.action.value)
        if (
            step.action is Action.APPROVE
            and payment.state is PaymentState.ROUTED
            and payment.approval_required
        ):
            raise ApprovalRequired(payment_id=payment.id)
        if step.action in _AGGREGATED and not payment.kind.inbound:
            _check_gross(payment)
            moves = outbound_moves(payment, step.action)
            if moves is not None:
                return _Planned(index, before, payment, step, target, None, None, moves)
        commands = commands_for(payment, step.action, history)
        fallback: Command | None = None
        owner = merchant_of(payment)
        instant = self._instant_owner(payment) is not None
        if owner is not None and (instant or advanced(history)):
            # An advanced deposit is settled, returned or reversed as one, even if instant
            # settlement was switched off since its clear.
            special = merchant_commands(payment, owner, step.action, history)
            if special is not None:
                commands = special
            elif step.action is Action.CLEAR and instant:
                credit = advance(payment, owner)
                if credit is not None:
                    # With the advance if the caps and the rail's liquidity allow it, else
                    # a plain clear (the merchant is then credited at settlement).
                    fallback = commands[0]
                    commands = (*commands, credit)
        command: Command | None = None
        if commands:
            command = commands[0] if len(commands) == 1 else Linked(commands)
        return _Planned(index, before, payment, step, target, command, fallback)

    def _route(self, payment: Payment, step: Step) -> Payment:
        channel = step.channel or payment.channel
        if channel is None:
            raise InvalidPayment("routing needs a channel", payment_id=payment.id)
        self._channel_for(channel, payment.asset, payment.amount_minor)
        self._carries(payment.kind, channel)
        if step.destination_channel is not None and not payment.kind.between_channels:
            raise InvalidPayment(
                "only internal and bridge transfers have a destination channel",
                payment_id=payment.id,
            )
        destination = step.destination_channel or payment.destination_channel
        if payment.kind.between_channels:
            if destination is None or destination == channel:
                raise InvalidPayment("a transfer between channels needs two channels")
            self._channel_for(destination, payment.asset, payment.amount_minor)
        fee = step.fee_minor
        if fee is None:
            fee = self._fee(payment.kind, channel, payment.asset, payment.amount_minor)
        else:
            check_amount(fee, asset=payment.asset)
        check_amount(payment.amount_minor + fee, asset=payment.asset)
        return replace(payment, channel=channel, destination_channel=destination, fee_minor=fee)

    # --- reads ----------------------------------------------------------------------------

    def get(self, payment_id: str) -> Payment:
        payment = self._store.payment(payment_id)
        if payment is None or payment.pool != self._pool.id:
            raise UnknownPayment(payment_id=payment_id)
        return payment

    def states(self, payment_ids: Sequence[str]) -> dict[str, PaymentState]:
        """Current states, read in bulk (for a batch's progress)."""
        return self._store.states(payment_ids)

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
        where = PaymentFilter(self._pool.id, state, kind, asset, channel)
        return self._store.payments(
            where, limit=max(1, min(limit, LIST_LIMIT_MAX)), after_id=after_id
        )


AGGREGATE_MIN = 2  # fewer steps of a kind in a wave are booked one entry each
_AGGREGATED = frozenset({Action.APPROVE, Action.SUBMIT, Action.SETTLE})


def _aggregate_chunks(
    action: Action, planned: Sequence[_Planned], indices: Sequence[int]
) -> list[tuple[Transfer, list[int]]]:
    """One transfer per group of steps, its postings summed per (source, destination,
    asset), split where a transfer would exceed the ledger's postings bound."""
    chunks: list[tuple[Transfer, list[int]]] = []
    sums: dict[tuple[str, str, str], int] = {}
    members: list[int] = []

    def close() -> None:
        if members:
            postings = tuple(Posting(s, d, a, n) for (s, d, a), n in sums.items())
            metadata = {"action": action.value, "payments": str(len(members))}
            chunks.append((Transfer(postings, metadata), list(members)))
            sums.clear()
            members.clear()

    for item, index in zip(planned, indices, strict=True):
        asset = item.routed.asset
        moves = item.moves or ()
        keys = [(source, destination, asset) for source, destination, _ in moves]
        if (len(sums) + len(keys) > POSTINGS_PER_TRANSACTION_MAX
                and len(sums.keys() | set(keys)) > POSTINGS_PER_TRANSACTION_MAX) or any(
            sums.get(key, 0) + move[2] > AMOUNT_MAX_MINOR
            for key, move in zip(keys, moves, strict=True)
        ):
            close()
        for key, move in zip(keys, moves, strict=True):
            sums[key] = sums.get(key, 0) + move[2]
        members.append(index)
    close()
    return chunks


def _check_gross(payment: Payment) -> None:
    """Amount and fee together must be an amount: what approve locks and submit moves."""
    check_amount(payment.amount_minor + payment.fee_minor, asset=payment.asset)


def _valid_key(key: object) -> bool:
    try:
        check_idempotency_key(key)
    except FundpoolError:
        return False
    return True


def _bound(count: int) -> None:
    if count > CALL_ITEMS_MAX:
        raise InvalidPayment("too many items in one call", items=count,
                             items_max=CALL_ITEMS_MAX)


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


def _request_hash(request: PaymentRequest) -> bytes:
    body: Mapping[str, object] = {
        "kind": request.kind.value,
        "asset": request.asset,
        "amount_minor": request.amount_minor,
        "channel": request.channel,
        "destination_channel": request.destination_channel,
        "counterparty": request.counterparty,
        "reference": request.reference,
        "metadata": dict(request.metadata),
    }
    return hashlib.sha256(
        json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    ).digest()


class PaymentSession:
    """Payment calls sharing one ledger transaction (PaymentService.session)."""

    def __init__(
        self, service: PaymentService, transaction: LedgerTransaction, writes: PaymentWrites
    ) -> None:
        self._service = service
        self.transaction = transaction
        self._writes = writes
        self.current: dict[str, Payment] = {}
        self.created: dict[str, Payment] = {}
        self.changed: dict[str, Payment] = {}
        self.events: list[PaymentEvent] = []
        self.history: dict[str, list[PaymentEvent]] = {}
        self._history_read: set[str] = set()
        self._keys: dict[str, Payment] = {}  # idempotency keys seen in this session

    @property
    def write_session(self) -> WriteSession:
        return self.transaction.session

    @property
    def at_us(self) -> int:
        return self.transaction.at_us

    def _load(self, ids: set[str]) -> None:
        missing = ids - self.current.keys()
        if missing:
            self.current.update(self._writes.load(missing))

    def payments(self, ids: Iterable[str]) -> dict[str, Payment]:
        """The payments as they stand in this session (unknown ids left out)."""
        wanted = set(ids)
        self._load(wanted)
        return {pid: self.current[pid] for pid in wanted if pid in self.current}

    def create(self, requests: Sequence[tuple[PaymentRequest, str | None]]) -> list[Outcome]:
        _bound(len(requests))
        outcomes, created, events = self._service._create_in(
            self._writes, requests, self.transaction.at_us, self._keys
        )
        for payment in created:
            self.created[payment.id] = self.current[payment.id] = payment
        self.events.extend(events)
        self.transaction.emit(created_event(p) for p in created)
        return outcomes

    def create_and_act(
        self,
        requests: Sequence[tuple[PaymentRequest, str | None]],
        plan: Callable[[Payment], Sequence[Step]],
    ) -> list[tuple[Outcome, list[Outcome]]]:
        """Create payments and take each new one through the steps `plan` gives for it: what
        a dispatcher does with fresh payments (screen, route, approve) without a store round
        trip per step. A replayed creation (same key, same request) takes no steps. Returns,
        per request, the creation's outcome and the outcomes of its steps."""
        before = set(self.created)
        created_outcomes = self.create(requests)
        plans: list[tuple[int, Sequence[Step]]] = []
        planned_ids: set[str] = set()
        for index, outcome in enumerate(created_outcomes):
            if isinstance(outcome, Payment) and outcome.id in self.created and (
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

    def act(self, steps: Sequence[Step]) -> list[Outcome]:
        """Apply steps in order; later steps see earlier ones (also those of earlier calls
        in this session). A wave holds each payment once, so the ledger sees at most one
        command per payment of the session at a time."""
        transaction = self.transaction
        self._load({step.payment_id for step in steps})
        current = self.current
        service = self._service
        needs_history = {
            s.payment_id
            for s in steps
            if s.action is Action.REVERSE
            or (s.action in (Action.SETTLE, Action.RETURN) and service._may_have_advance(
                current.get(s.payment_id)))
        }
        history = self.history
        emitted: list[Event] = []
        # Stored events come before this session's: a payment's history is read once, then
        # the session's own events are appended to it as they happen.
        missing = needs_history - self._history_read - self.created.keys()
        if missing:
            stored = self._writes.events(missing)
            for pid in missing:
                history[pid] = stored.get(pid, []) + history.get(pid, [])
        self._history_read |= needs_history
        outcomes: list[Outcome | None] = [None] * len(steps)
        # Steps are planned in waves in which each payment appears once; a wave's ledger
        # commands go to the engine in one call, in step order, so the result is the same
        # as one call per step, without a load pass per step.
        wave: list[_Planned] = []
        in_wave: set[str] = set()

        def flush() -> None:
            posted: list[tuple[_Planned, CommandResult | None]] = [
                (planned, None) for planned in wave
            ]
            # Outbound steps of one kind in one wave are booked as one entry: their postings
            # summed per (source, destination, asset), as a bank books a payment file (ADR
            # 0008). If that entry is refused, its steps are applied one by one below, so a
            # step that fits still goes through and one that does not gets its own error.
            # Summed entries go first, then the wave's other steps: when a rail's funds are
            # short, which steps of one wave get them may differ from strict step order.
            single: list[int] = []
            groups: dict[Action, list[int]] = {}
            for i, planned in enumerate(wave):
                if not planned.posts:
                    continue
                # Outbound approve/submit/settle: plain moves, never reversed by entry (a
                # deposit's entries may be, so deposits keep one entry per step).
                if planned.moves:
                    groups.setdefault(planned.step.action, []).append(i)
                else:
                    single.append(i)
            for action, members in groups.items():
                if len(members) < AGGREGATE_MIN:
                    single.extend(members)
                    continue
                for chunk in _aggregate_chunks(action, [wave[i] for i in members], members):
                    command, indices = chunk
                    (result,) = transaction.apply([command])
                    if result.error is not None:
                        single.extend(indices)
                        continue
                    for i in indices:
                        posted[i] = (wave[i], result)
            single.sort()
            commands = [wave[i].single() for i in single]
            results = transaction.apply([c for c in commands if c is not None]) if single else []
            for i, result in zip(single, results, strict=True):
                posted[i] = (wave[i], result)
            # A refused command with a fallback (a clear whose merchant advance did not fit)
            # is applied again as its fallback, after the wave, in the wave's order.
            retry = [
                (i, planned.fallback) for i, (planned, result) in enumerate(posted)
                if result is not None and result.error is not None
                and planned.fallback is not None
            ]
            if retry:
                second = transaction.apply([fallback for _, fallback in retry])
                for (i, _), again in zip(retry, second, strict=True):
                    posted[i] = (posted[i][0], again)
            for planned, outcome in posted:
                entry_ids: tuple[str, ...] = ()
                if outcome is not None:
                    if outcome.error is not None:
                        outcomes[planned.index] = _cause(outcome.error)
                        continue
                    entry_ids = _entry_ids(outcome)
                after, event = planned.done(transaction.at_us, entry_ids)
                current[after.id] = self.changed[after.id] = after
                history.setdefault(after.id, []).append(event)
                self.events.append(event)
                emitted.append(transitioned_event(after, event, planned.before.updated_at_us,
                                                  planned.before.channel))
                outcomes[planned.index] = after
            wave.clear()
            in_wave.clear()

        for index, step in enumerate(steps):
            if step.payment_id in in_wave:
                flush()
            try:
                payment = current.get(step.payment_id)
                if payment is None:
                    raise UnknownPayment(payment_id=step.payment_id)
                wave.append(service._plan(index, payment, step, history.get(payment.id, [])))
                in_wave.add(payment.id)
            except FundpoolError as error:
                outcomes[index] = error
        flush()
        transaction.emit(emitted)
        done = [outcome for outcome in outcomes if outcome is not None]
        invariant(len(done) == len(steps), "every step has an outcome, in step order")
        return done

    def save(self) -> None:
        # A payment created and changed in the same session is inserted in its final state.
        created = [self.current[pid] for pid in self.created]
        changed = [p for pid, p in self.changed.items() if pid not in self.created]
        self._writes.save(created, changed, self.events)


def transitioned_event(
    after: Payment, event: PaymentEvent, since_us: int | None, previous_channel: str | None
) -> Event:
    """The outbox event of one transition: the payment as it stands after it."""
    return Event(
        f"{after.id}:{event.seq}",
        PaymentTransitioned.TYPE,
        after.pool,
        event.at_us,
        PaymentTransitioned(
            after.id, after.kind.value, after.asset, after.amount_minor, after.fee_minor,
            after.channel, after.destination_channel, event.action.value,
            None if event.from_state is None else event.from_state.value,
            event.to_state.value, event.seq, since_us, after.created_at_us, event.reason,
            previous_channel, after.counterparty,
        ),
    )


def created_event(payment: Payment) -> Event:
    return transitioned_event(
        payment,
        PaymentEvent(payment.id, 1, Action.CREATE, None, payment.state, payment.created_at_us),
        None,
        None,
    )
