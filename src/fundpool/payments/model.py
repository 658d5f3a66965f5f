"""A payment's life: kinds, states, the legal transitions and what each one posts.

Outbound (payout to a payee, internal transfer between the pool's channels, bridge transfer
from one chain to another):

    initiated -> screened -> routed -> [pending_approval] -> approved -> submitted
              -> [cleared] -> settled
    exits: held (review; released back to screened), rejected, cancelled, failed (funds
    released to available), returned (a settled payout comes back)
    retry: a rail that fails an approved, submitted or cleared payment releases its funds and
    sends it back to screened, to be routed again (failover, payments/dispatch/failover.py)

Inbound (deposit):

    initiated -> screened -> cleared -> settled
    exits: held, rejected, failed (never arrived), returned (sent back before settlement),
    reversed (a settled deposit undone: its ledger entries are reversed)

Routing comes before approval, not after as ../shared/DESIGN.md first drew it: approval locks
funds on one channel's `available` account, so the channel has to be known, and the approver
should approve the rail and fee the payment will really use (docs/adr/0007).

Postings (A = amount, F = fee; accounts of the payment's pool, asset and channel):
- approve: available -> locked, A + F
- submit: locked -> in_transit, A + F
- settle a payout: in_transit -> world:channel A; in_transit -> fees F
- settle an internal or bridge transfer: in_transit -> destination channel's available A;
  in_transit -> fees F
- fail after approve: locked -> available; after submit: in_transit -> available (A + F)
- retry: as fail, but the payment goes back to screened instead of ending
- cancel after approve: locked -> available
- return a settled payout: world:channel -> available A (the fee stays earned)
- clear a deposit: world:channel -> pending_settlement A
- settle a deposit: pending_settlement -> available A - F; pending_settlement -> fees F
- return a cleared deposit: pending_settlement -> world:channel A
- reverse a settled deposit: the ledger reverses its settle and clear entries
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from fundpool.core.actor import Actor
from fundpool.core.errors import FundpoolError


class PaymentKind(StrEnum):
    DEPOSIT = "deposit"
    PAYOUT = "payout"
    INTERNAL = "internal"
    BRIDGE = "bridge"

    def __init__(self, value: str) -> None:
        # Plain attributes, set once per member: they are read at every step of every
        # payment, and a property (with the enum's own class lookup inside) costs ten times
        # as much on Python 3.11.
        self.inbound: bool = value == "deposit"
        self.between_channels: bool = value in ("internal", "bridge")


class PaymentState(StrEnum):
    INITIATED = "initiated"
    SCREENED = "screened"
    HELD = "held"
    ROUTED = "routed"
    PENDING_APPROVAL = "pending_approval"
    APPROVED = "approved"
    SUBMITTED = "submitted"
    CLEARED = "cleared"
    SETTLED = "settled"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    FAILED = "failed"
    RETURNED = "returned"
    REVERSED = "reversed"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATES


TERMINAL_STATES = frozenset(
    {
        PaymentState.REJECTED,
        PaymentState.CANCELLED,
        PaymentState.FAILED,
        PaymentState.RETURNED,
        PaymentState.REVERSED,
    }
)


class Action(StrEnum):
    CREATE = "create"  # the first event of every payment: it appears in `initiated`
    SCREEN = "screen"
    HOLD = "hold"
    RELEASE = "release"
    REJECT = "reject"
    ROUTE = "route"
    REQUEST_APPROVAL = "request_approval"
    APPROVE = "approve"
    SUBMIT = "submit"
    CLEAR = "clear"
    SETTLE = "settle"
    FAIL = "fail"
    CANCEL = "cancel"
    RETURN = "return"
    REVERSE = "reverse"
    RETRY = "retry"  # a rail failed it: release the funds and route it again


S = PaymentState
_BEFORE_FUNDS = (S.INITIATED, S.SCREENED, S.HELD, S.ROUTED, S.PENDING_APPROVAL)

# (action, from state) -> to state, per direction. Anything not listed is illegal.
OUTBOUND: Mapping[tuple[Action, PaymentState], PaymentState] = {
    (Action.SCREEN, S.INITIATED): S.SCREENED,
    (Action.HOLD, S.INITIATED): S.HELD,
    (Action.HOLD, S.SCREENED): S.HELD,
    (Action.RELEASE, S.HELD): S.SCREENED,
    **{(Action.REJECT, state): S.REJECTED for state in _BEFORE_FUNDS},
    (Action.ROUTE, S.SCREENED): S.ROUTED,
    (Action.REQUEST_APPROVAL, S.ROUTED): S.PENDING_APPROVAL,
    (Action.APPROVE, S.ROUTED): S.APPROVED,  # only when no approval is required
    (Action.APPROVE, S.PENDING_APPROVAL): S.APPROVED,
    (Action.SUBMIT, S.APPROVED): S.SUBMITTED,
    (Action.CLEAR, S.SUBMITTED): S.CLEARED,
    (Action.SETTLE, S.SUBMITTED): S.SETTLED,
    (Action.SETTLE, S.CLEARED): S.SETTLED,
    (Action.FAIL, S.APPROVED): S.FAILED,
    (Action.FAIL, S.SUBMITTED): S.FAILED,
    (Action.FAIL, S.CLEARED): S.FAILED,
    (Action.RETRY, S.APPROVED): S.SCREENED,
    (Action.RETRY, S.SUBMITTED): S.SCREENED,
    (Action.RETRY, S.CLEARED): S.SCREENED,
    **{(Action.CANCEL, state): S.CANCELLED for state in (*_BEFORE_FUNDS, S.APPROVED)},
    (Action.RETURN, S.SETTLED): S.RETURNED,
}

INBOUND: Mapping[tuple[Action, PaymentState], PaymentState] = {
    (Action.SCREEN, S.INITIATED): S.SCREENED,
    (Action.HOLD, S.INITIATED): S.HELD,
    (Action.HOLD, S.SCREENED): S.HELD,
    (Action.RELEASE, S.HELD): S.SCREENED,
    (Action.REJECT, S.INITIATED): S.REJECTED,
    (Action.REJECT, S.SCREENED): S.REJECTED,
    (Action.REJECT, S.HELD): S.REJECTED,
    (Action.CLEAR, S.SCREENED): S.CLEARED,
    (Action.SETTLE, S.CLEARED): S.SETTLED,
    (Action.FAIL, S.INITIATED): S.FAILED,
    (Action.FAIL, S.SCREENED): S.FAILED,
    (Action.RETURN, S.CLEARED): S.RETURNED,
    (Action.REVERSE, S.SETTLED): S.REVERSED,
}


def next_state(kind: PaymentKind, state: PaymentState, action: Action) -> PaymentState | None:
    return _TRANSITIONS[kind].get((action, state))


_TRANSITIONS = {kind: INBOUND if kind.inbound else OUTBOUND for kind in PaymentKind}


class IllegalTransition(FundpoolError):
    code = "illegal_transition"
    title = "the payment's state does not allow this action"


class UnknownPayment(FundpoolError):
    code = "unknown_payment"
    title = "no such payment"


class InvalidPayment(FundpoolError):
    code = "invalid_payment"
    title = "the payment request is not valid"


class AmountOutsideLimits(InvalidPayment):
    code = "amount_outside_limits"
    title = "the amount is outside the channel's limits"


class PaymentIdempotencyConflict(FundpoolError):
    code = "idempotency_conflict"
    title = "the idempotency key was already used with a different payment request"


class FeeExceedsAmount(InvalidPayment):
    code = "fee_exceeds_amount"
    title = "the payment's fee would exceed its amount"


class ApprovalRequired(FundpoolError):
    code = "approval_required"
    title = "this payment needs an approval before it can be approved"


class SelfApproval(FundpoolError):
    """Four eyes: whoever created a payment that waits for approval never approves it."""

    code = "self_approval"
    title = "the payment's initiator may not approve it"


class AlreadyApprovedByYou(FundpoolError):
    code = "already_approved_by_you"
    title = "you have already approved this payment"


class ApproverUnknown(FundpoolError):
    """An approval with no actor cannot be held to four eyes against a known initiator."""

    code = "approver_unknown"
    title = "an approval of a payment with a known initiator must name its approver"


class DestinationRequired(InvalidPayment):
    code = "destination_required"
    title = "a payout names its destination: the payee's account number, IBAN or address"


class InvalidDestination(InvalidPayment):
    code = "invalid_destination"
    title = "the destination is not a valid account number, IBAN or address for the rail"


@dataclass(frozen=True, slots=True)
class PaymentRequest:
    """What a caller asks for. `channel` is the rail (for internal and bridge transfers, the
    source); it may be left to routing for outbound payments."""

    kind: PaymentKind
    asset: str
    amount_minor: int
    channel: str | None = None
    destination_channel: str | None = None
    counterparty: str | None = None
    reference: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    # A payout's payee account: an account number, an IBAN or a chain address (rules.py
    # checks its form where the rail is known).
    destination: str | None = None


# Payments, their events and steps are made several times for every payout on the
# dispatcher's path (a new value per step). Like the events' payloads (events/model.py) they
# are not `frozen`: a frozen dataclass's __init__ sets each field through
# object.__setattr__, about ten times a plain one's cost (4 µs against 0.3 µs for a payment's
# twenty fields, measured). Treat them as immutable all the same: a change is a new value
# (`routed`, `moved`, `dataclasses.replace`).
@dataclass(slots=True)
class Payment:
    id: str
    pool: str
    kind: PaymentKind
    asset: str
    amount_minor: int
    fee_minor: int
    channel: str | None
    destination_channel: str | None
    counterparty: str | None
    reference: str | None
    state: PaymentState
    approval_required: bool
    created_at_us: int
    updated_at_us: int
    idempotency_key: str | None = None
    request_hash: bytes = b""
    metadata: Mapping[str, str] = field(default_factory=dict)
    version: int = 1  # how many events it has; the next event's seq is version + 1
    destination: str | None = None  # a payout's payee account or address
    initiated_by: Actor | None = None  # its creation's actor (None: created before actors)

    # The two changes a step makes, written out field by field: `dataclasses.replace` costs
    # about three times as much, and a payment changes several times on the dispatcher's path.

    def routed(self, channel: str, destination_channel: str | None, fee_minor: int
               ) -> Payment:
        """This payment on `channel` (and `destination_channel`) for `fee_minor`."""
        return Payment(
            self.id, self.pool, self.kind, self.asset, self.amount_minor, fee_minor, channel,
            destination_channel, self.counterparty, self.reference, self.state,
            self.approval_required, self.created_at_us, self.updated_at_us,
            self.idempotency_key, self.request_hash, self.metadata, self.version,
            self.destination, self.initiated_by,
        )

    def moved(self, state: PaymentState, at_us: int) -> Payment:
        """This payment in `state` after one more event, at `at_us`."""
        return Payment(
            self.id, self.pool, self.kind, self.asset, self.amount_minor, self.fee_minor,
            self.channel, self.destination_channel, self.counterparty, self.reference, state,
            self.approval_required, self.created_at_us, at_us, self.idempotency_key,
            self.request_hash, self.metadata, self.version + 1, self.destination,
            self.initiated_by,
        )


@dataclass(slots=True)
class PaymentEvent:
    """One transition, with the ledger entries it posted (none for most)."""

    payment_id: str
    seq: int
    action: Action
    from_state: PaymentState | None  # None for creation
    to_state: PaymentState
    at_us: int
    entry_ids: tuple[str, ...] = ()
    reason: str | None = None
    actor: Actor | None = None  # who took the step (None: recorded before actors were)


@dataclass(slots=True)
class Step:
    """One action on one payment. `channel` (and `destination_channel`) choose the rail when
    routing; `reason` is kept with the event; `actor` (who takes the step) overrides the
    session's."""

    payment_id: str
    action: Action
    channel: str | None = None
    destination_channel: str | None = None
    reason: str | None = None
    fee_minor: int | None = None  # on ROUTE: the chosen rail's quoted fee (else the schedule's)
    actor: Actor | None = None


# What one item of a call came to: the payment as it now stands, or why not.
Outcome = Payment | FundpoolError
