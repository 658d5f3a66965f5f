"""What a payment request and a step mean in a pool, before anything is written: the request
checks, a new payment with its fee, and each step checked and turned into what it posts.

`PaymentRules` reads only the pool's configuration (channels, their limits and fee schedules,
merchants, approval thresholds, instant settlement): no store, no transaction. The unit of
work (session.py) applies what it plans.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import NamedTuple

from fundpool.channels.limits import limit_breach
from fundpool.core.actor import Actor
from fundpool.core.clock import IdSource
from fundpool.core.ledger.model import (
    Command,
    Linked,
    check_idempotency_key,
    check_metadata,
    is_storable_text,
)
from fundpool.core.money import check_amount
from fundpool.payments.destination import check_destination
from fundpool.payments.instant import (
    MERCHANT_KEY,
    SPLIT_KEY,
    advance,
    advanced,
    merchant_commands,
    merchant_of,
    split_commands,
)
from fundpool.payments.model import (
    Action,
    AmountOutsideLimits,
    ApprovalRequired,
    ApproverUnknown,
    FeeExceedsAmount,
    IllegalTransition,
    InvalidPayment,
    Payment,
    PaymentEvent,
    PaymentKind,
    PaymentRequest,
    PaymentState,
    SelfApproval,
    Step,
    next_state,
)
from fundpool.payments.postings import Move, commands_for, outbound_moves, transfer_of
from fundpool.pool.config import ChannelKind, FundpoolConfig, OwnerKind, PoolConfig
from fundpool.treasury.config import SplitConfig, load_treasury
from fundpool.treasury.split import SplitRule

TEXT_FIELD_LENGTH_MAX = 256
# Rails that only move money inside the pool never carry a payout to the outside world.
NOT_FOR_PAYOUTS = frozenset({ChannelKind.BOOK})
# Outbound steps whose moves are summed per wave into one entry per kind (ADR 0008).
AGGREGATED_ACTIONS = frozenset({Action.APPROVE, Action.SUBMIT, Action.SETTLE})
ENGINE_KIND = "engine"  # the payment engine's actor kind (core/actor.py ENGINE)


class PlannedStep(NamedTuple):
    """A checked step waiting for its ledger command's result (`position`: its place in the
    call). A NamedTuple, as `events.model.Event` is: one is made for every step."""

    position: int
    before: Payment
    routed: Payment  # `before` with the channel and fee routing chose (else the same)
    step: Step
    target: PaymentState
    command: Command | None
    fallback: Command | None = None  # applied instead when `command` is refused
    # For outbound approve/submit/settle: the moves, summed with the wave's others into one
    # entry; `command` (one entry for this step alone) is then built only if that is refused.
    moves: tuple[Move, ...] | None = None
    actor: Actor | None = None  # who takes the step (the step's, else its session's)

    def single(self) -> Command | None:
        if self.command is None and self.moves:
            return transfer_of(self.routed, self.step.action, self.moves)
        return self.command

    @property
    def posts(self) -> bool:
        return self.command is not None or bool(self.moves)

    def done(self, at_us: int, entry_ids: tuple[str, ...]) -> tuple[Payment, PaymentEvent]:
        after = self.routed.moved(self.target, at_us)
        event = PaymentEvent(
            after.id, after.version, self.step.action, self.before.state, self.target, at_us,
            entry_ids, self.step.reason, self.actor,
        )
        return after, event


class PaymentRules:
    """The pool's rules for its payments (see the module's docstring)."""

    def __init__(self, config: FundpoolConfig, pool: PoolConfig, ids: IdSource) -> None:
        self._config = config
        self._pool = pool
        self._ids = ids
        self._channels = {c.id: c for c in config.channels if c.id in pool.channels}
        self._merchants = {o.id for o in config.owners if o.kind is OwnerKind.MERCHANT}
        self._assets = frozenset(a for c in self._channels.values() for a in c.assets)
        # Per asset, the rails a payout that names none may go on (`payout_channels`): read
        # for every payout created, from a configuration that does not change.
        self._payout_rails = {
            asset: tuple(c.id for c in self._channels.values()
                         if asset in c.assets and c.kind not in NOT_FOR_PAYOUTS)
            for asset in self._assets
        }

    @property
    def pool_id(self) -> str:
        return self._pool.id

    @functools.cached_property
    def _splits(self) -> Mapping[str, SplitConfig]:
        """The pool's split rules (its treasury file), read on the first split deposit."""
        assets = {code: self._config.asset(code) for code in self._assets}
        return load_treasury(self._pool.treasury_path, assets).splits

    def _split_rule(self, payment: Payment) -> SplitRule | None:
        rule_id = payment.metadata.get(SPLIT_KEY)
        if rule_id is None:
            return None
        found = self._splits.get(rule_id)
        return None if found is None else found.rule

    # --- creation -------------------------------------------------------------------------

    def new_payment(self, request: PaymentRequest, key: str | None, at_us: int,
                    actor: Actor | None = None) -> Payment:
        """A new payment in state `initiated`, checked (its request, its key, the channel's
        limits and fee schedule), created by `actor`; raises the first problem found."""
        self._check_request(request)
        check_idempotency_key(key)
        fee = self._fee(request.kind, request.channel, request.asset, request.amount_minor)
        if not request.kind.inbound and fee > request.amount_minor:
            # Its rail is named, so its fee is known now: refused before anything is made
            # (a routed one is refused at routing, by the rail the router picks).
            raise FeeExceedsAmount(
                f"the fee on {request.channel} ({fee} minor units) exceeds the amount "
                f"({request.amount_minor})", asset=request.asset, channel=request.channel,
                fee_minor=fee, amount_minor=request.amount_minor)
        return Payment(
            self._ids.new_id(at_us), self._pool.id, request.kind, request.asset,
            request.amount_minor, fee, request.channel, request.destination_channel,
            request.counterparty, request.reference, PaymentState.INITIATED,
            not request.kind.inbound
            and self._pool.approval_required(request.asset, request.amount_minor),
            at_us, at_us, key,
            # Only a keyed request can be replayed, so only its body needs a fingerprint.
            b"" if key is None else _request_hash(request),
            dict(request.metadata), 1, request.destination, actor,
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
        if request.asset not in self._assets:
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
        rule_id = request.metadata.get(SPLIT_KEY)
        if rule_id is not None:
            found = self._splits.get(rule_id)
            if merchant is None:
                raise InvalidPayment("only a merchant's deposit is split", split=rule_id)
            if found is None:
                raise InvalidPayment("no such split rule in this pool", split=rule_id,
                                     rules=sorted(self._splits))
            if found.asset != request.asset:
                raise InvalidPayment("the split rule is for another asset", split=rule_id,
                                     rule_asset=found.asset, asset=request.asset)
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
        if request.destination is not None:
            self._check_destination(request)

    def _check_destination(self, request: PaymentRequest) -> None:
        value = request.destination
        if request.kind is not PaymentKind.PAYOUT:
            raise InvalidPayment("only a payout names a destination account or address")
        if (not isinstance(value, str) or not value or len(value) > TEXT_FIELD_LENGTH_MAX
                or not is_storable_text(value) or value != value.strip()):
            raise InvalidPayment(
                f"destination is 1 to {TEXT_FIELD_LENGTH_MAX} characters of text without NUL "
                "characters, unpaired surrogates or surrounding spaces"
            )
        check_destination(value, {self._channels[c].kind
                                  for c in self.payout_channels(request.asset, request.channel)})

    def payout_channels(self, asset: str, channel: str | None) -> tuple[str, ...]:
        """The rails a payout of `asset` may go on: the one it names, else every rail of the
        pool that carries the asset out (not a book rail)."""
        if channel is not None:
            return (channel,)
        return self._payout_rails.get(asset, ())

    def funding_channels(self, payment: Payment) -> tuple[str, ...]:
        """The rails whose `available` balances pay for an outbound payment at creation: a
        payout's are all those that could carry it (routing picks one later, and may fail over
        to another); a transfer's is its source. None for a deposit: it brings money in."""
        if payment.kind.inbound:
            return ()
        if payment.kind.between_channels:
            return () if payment.channel is None else (payment.channel,)
        return self.payout_channels(payment.asset, None)

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
            if limit_breach(limits, amount_minor) is not None:
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

    # --- steps ----------------------------------------------------------------------------

    def plan(
        self, index: int, payment: Payment, step: Step, history: Sequence[PaymentEvent],
        actor: Actor | None = None,
    ) -> PlannedStep:
        """Check a step on `payment` (as it stands, with its `history` where the step needs
        it: `needs_history`) taken by `actor`, and work out what it posts; nothing is applied
        yet."""
        action = step.action
        target = next_state(payment.kind, payment.state, action)
        if target is None or (action is Action.RETURN and payment.kind.between_channels):
            raise IllegalTransition(
                f"a payment in state {payment.state.value} cannot take the action "
                f"{action.value}",
                payment_id=payment.id, state=payment.state.value, action=action.value
            )
        if action is Action.APPROVE and payment.state is PaymentState.PENDING_APPROVAL:
            check_four_eyes(payment, actor)
        before = payment
        if action is Action.ROUTE:
            payment = self._route(payment, step)
        elif (
            step.channel is not None
            or step.destination_channel is not None
            or step.fee_minor is not None
        ):
            raise InvalidPayment("only routing chooses a channel and its fee",
                                 action=action.value)
        if (
            action is Action.APPROVE
            and payment.state is PaymentState.ROUTED
            and payment.approval_required
        ):
            raise ApprovalRequired(payment_id=payment.id)
        if action in AGGREGATED_ACTIONS and not payment.kind.inbound:
            _check_gross(payment)
            moves = outbound_moves(payment, action)
            if moves is not None:
                return PlannedStep(index, before, payment, step, target, None, None, moves,
                                   actor)
        commands = commands_for(payment, action, history)
        fallback: Command | None = None
        owner = merchant_of(payment)
        # A merchant's deposit of an asset with instant settlement in this pool:
        instant = owner is not None and payment.asset in self._pool.instant_settlement
        rule = None if owner is None else self._split_rule(payment)
        if owner is not None and rule is not None and not (instant or advanced(history)):
            # A merchant deposit with a split rule and no instant settlement: its settlement
            # shares the net out (payments/instant.py split_commands).
            special = split_commands(payment, owner, rule, action, history)
            if special is not None:
                commands = special
        elif owner is not None and (instant or advanced(history)):
            # An advanced deposit is settled, returned or reversed as one, even if instant
            # settlement was switched off since its clear.
            special = None if rule is None else split_commands(payment, owner, rule, action,
                                                               history)
            special = special or merchant_commands(payment, owner, action, history)
            if special is not None:
                commands = special
            elif action is Action.CLEAR and instant:
                credit = advance(payment, owner)
                if credit is not None:
                    # With the advance if the caps and the rail's liquidity allow it, else
                    # a plain clear (the merchant is then credited at settlement).
                    fallback = commands[0]
                    commands = (*commands, credit)
        command: Command | None = None
        if commands:
            command = commands[0] if len(commands) == 1 else Linked(commands)
        return PlannedStep(index, before, payment, step, target, command, fallback,
                           actor=actor)

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
        return payment.routed(channel, destination, fee)


def check_four_eyes(payment: Payment, approver: Actor | None) -> None:
    """Approval of a payment that waits for it: a person other than its initiator (compared
    by `who`: kind and id, never a display name), and never the engine. A payment created
    before actors were recorded has no initiator to compare with: any approver may."""
    initiator = payment.initiated_by
    if approver is None:
        if initiator is not None:
            raise ApproverUnknown(payment_id=payment.id)
        return
    if approver.kind == ENGINE_KIND:
        raise ApprovalRequired("the engine never approves a payment that waits for approval",
                               payment_id=payment.id)
    if initiator is not None and initiator.who == approver.who:
        raise SelfApproval(payment_id=payment.id, who=approver.who)


# The actions whose planning may need the payment's history (`needs_history`).
HISTORY_ACTIONS = frozenset({Action.REVERSE, Action.SETTLE, Action.RETURN})


def needs_history(step: Step, payment: Payment | None) -> bool:
    """Whether planning `step` needs the payment's history: a reversal does, and a merchant
    deposit's settle and return depend on whether its clear carried an advance, which its
    history says (whatever the configuration says now)."""
    return step.action is Action.REVERSE or (
        step.action in (Action.SETTLE, Action.RETURN)
        and payment is not None and merchant_of(payment) is not None
    )


def _check_gross(payment: Payment) -> None:
    """Amount and fee together must be an amount: what approve locks and submit moves."""
    check_amount(payment.amount_minor + payment.fee_minor, asset=payment.asset)


def _request_hash(request: PaymentRequest) -> bytes:
    body: dict[str, object] = {
        "kind": request.kind.value,
        "asset": request.asset,
        "amount_minor": request.amount_minor,
        "channel": request.channel,
        "destination_channel": request.destination_channel,
        "counterparty": request.counterparty,
        "reference": request.reference,
        "metadata": dict(request.metadata),
    }
    if request.destination is not None:
        # Only when given: the requests hashed before destinations existed hash the same.
        body["destination"] = request.destination
    return hashlib.sha256(
        json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    ).digest()
