"""What the payment service and the dispatcher need of a store. Payments and the dispatcher's
records live in the ledger's database, and every change to one is written in the same
transaction as the ledger entries it posts.

The stores implement these protocols (`stores/payments_sql.py`,
`stores/dispatch_sql.py`); whoever builds a service or a dispatcher hands it the
implementation, so nothing in `payments` imports a store.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from fundpool.ledger.ports import WriteSession
from fundpool.payments.model import Action, Payment, PaymentEvent, PaymentKind, PaymentState
from fundpool.payments.records import BatchRecord, OutcomeRecord, RouteRecord

LIST_LIMIT_MAX = 1_000


@dataclass(frozen=True, slots=True)
class PaymentFilter:
    pool: str
    state: PaymentState | None = None
    kind: PaymentKind | None = None
    asset: str | None = None
    channel: str | None = None


@dataclass(frozen=True, slots=True)
class ChannelMove:
    """One step of a payment that moved money across a channel's boundary, with what
    reconciliation needs to find it on the bank's statement: the rail's reference of the batch
    the payment went in (the latest attempt's)."""

    payment_id: str
    kind: str  # PaymentKind value
    action: str  # Action value: settle, clear or return
    at_us: int
    asset: str
    amount_minor: int
    fee_minor: int
    channel: str | None
    destination_channel: str | None
    reference: str | None
    counterparty: str | None
    rail_ref: str | None


class PaymentWrites(Protocol):
    """Payments inside a ledger write transaction (under the ledger's writer lock)."""

    def load(self, ids: Iterable[str]) -> dict[str, Payment]: ...

    def versions(self, ids: Iterable[str]) -> dict[str, int]:
        """Each stored payment's version (unknown ids left out)."""
        ...

    def by_idempotency_key(self, pool: str, keys: Iterable[str]) -> dict[str, Payment]: ...

    def events(self, ids: Iterable[str]) -> dict[str, list[PaymentEvent]]: ...

    def save(
        self,
        created: Sequence[Payment],
        changed: Sequence[Payment],
        events: Sequence[PaymentEvent],
    ) -> None: ...


class PaymentStore(Protocol):
    def writes(self, session: WriteSession) -> PaymentWrites:
        """The payment tables in the transaction `session` belongs to."""
        ...

    def payment(self, payment_id: str) -> Payment | None: ...

    def events(self, payment_id: str) -> list[PaymentEvent]: ...

    def states(self, ids: Sequence[str]) -> dict[str, PaymentState]: ...

    def state_counts(self, pool: str) -> dict[PaymentState, int]: ...

    def payments(
        self, where: PaymentFilter, *, limit: int, after_id: str | None = None
    ) -> list[Payment]:
        """Newest first (ids are time-ordered), at most `limit`, after `after_id` if given."""
        ...

    def created_between(
        self, pool: str, since_us: int, until_us: int, *, limit: int
    ) -> list[Payment]:
        """Created in [since_us, until_us), oldest first (ties by id), at most `limit`."""
        ...

    def events_of(self, ids: Sequence[str]) -> dict[str, list[PaymentEvent]]:
        """Each payment's timeline, oldest first; unknown ids are left out."""
        ...

    def channel_moves(self, pool: str, channel: str, since_us: int, until_us: int, *,
                      created_since_us: int, limit: int) -> list[ChannelMove]:
        """The steps that moved money across `channel`'s boundary (settle, clear, return) in
        [since_us, until_us), of payments on it (or arriving on it) created at or after
        `created_since_us`; oldest first, at most `limit`."""
        ...


# --- the dispatcher's records (payments/dispatch, ADR 0009) ----------------------------------


class DispatchRecordWrites(Protocol):
    """The dispatcher's records inside a ledger write transaction: a route, an outcome's
    disposition and the payment steps they caused commit together or not at all."""

    def routes(self, payment_ids: Iterable[str]) -> dict[str, list[RouteRecord]]:
        """Every route of these payments, by payment, in attempt order."""
        ...

    def add_routes(self, routes: Sequence[RouteRecord]) -> None: ...

    def mark_sent(self, sent: Sequence[tuple[str, int, str, str | None]]) -> None:
        """(payment id, attempt, batch id, rail ref) for routes whose payment went out."""
        ...

    def add_batches(self, batches: Sequence[BatchRecord]) -> None: ...

    def seen_outcomes(self, keys: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
        """Which (channel, outcome id) pairs were recorded before."""
        ...

    def add_outcomes(self, outcomes: Sequence[OutcomeRecord]) -> None: ...


class DispatchRecordReads(Protocol):
    """The dispatcher's records as committed, for the dispatcher's rescan, the CLI, the API
    and the console."""

    def routes(self, payment_id: str) -> list[RouteRecord]: ...

    def routes_of(self, payment_ids: Sequence[str]) -> dict[str, list[RouteRecord]]:
        """Every route of these payments, by payment, in attempt order."""
        ...

    def outcomes(self, payment_id: str) -> list[OutcomeRecord]: ...

    def batches(self, *, channel: str | None = None, limit: int = 100,
                before: tuple[int, str] | None = None) -> list[BatchRecord]:
        """Batches newest first (by submission, then id); with `before` = (submitted_at_us,
        id) of the last one seen, the ones after it."""
        ...

    def decisions(
        self, *, payment_id: str | None = None, channel: str | None = None, limit: int = 100,
        before: tuple[str, int] | None = None,
    ) -> list[tuple[RouteRecord, str | None, int | None]]:
        """Routing decisions newest payment first, then newest attempt, each with its
        payment's asset and amount; `before` = (payment_id, attempt) of the last one seen."""
        ...

    def savings(
        self, *, since_us: int | None = None
    ) -> dict[tuple[str, str], tuple[int, int, int]]:
        """Per (channel, asset): batches sent (from `since_us` on, if given), fees paid and
        fees saved by batching."""
        ...

    def route_counts(self) -> dict[tuple[str | None, str], int]:
        """Payouts' routes (one per attempt) by (channel, strategy); channel None: no
        eligible rail."""
        ...

    def disposition_counts(self) -> dict[str, int]:
        """Recorded outcomes by disposition (duplicates are counted by ticks, not stored)."""
        ...


class DispatchRecords(Protocol):
    """Where a dispatcher records what it does: the port its builder hands it."""

    @property
    def reads(self) -> DispatchRecordReads: ...

    def writes(self, session: WriteSession) -> DispatchRecordWrites:
        """The dispatcher's tables in the transaction `session` belongs to."""
        ...


# --- the screening step (the risk decision, fundpool.risk) -----------------------------------


class Screening(Protocol):
    """The risk decision at a payment's screening step. The engine asks it for every new
    payment, in the transaction that takes the payment in, before any funds are locked:
    `prepare` (the transaction's view of the active policy and lists), `screen` each payment,
    `record` the decisions (and the cases they open) in the same transaction; `discard` when
    that transaction did not commit. `fundpool.risk.engine.RiskEngine` implements it."""

    def prepare(self, session: WriteSession) -> None: ...

    def screen(self, payment: Payment, at_us: int) -> tuple[Action, str | None]:
        """SCREEN (allow), HOLD (review or hold) or REJECT (block), with the reason."""
        ...

    def record(self, session: WriteSession) -> None: ...

    def discard(self) -> None: ...

    def decided(self, payment_id: str) -> tuple[str, int, int | None] | None:
        """The decision this transaction made of the payment: (outcome, score, policy
        version); None when it was not screened here."""
        ...

    def undecided(self, session: WriteSession, payment_ids: Sequence[str]) -> set[str]:
        """Which of these payments (screened: released from a hold) no decision was ever
        made for: held by hand before the engine screened them. The engine decides them
        before routing them."""
        ...


# --- the approval gate (approval rules, fundpool.approvals) ------------------------------------


class ApprovalGate(Protocol):
    """Whether a routed outbound payment waits for approvers, by the approval rules that were
    active when it was created (and the pool's thresholds, which always apply). The engine asks
    it after routing, in the transaction that routes: `prepare` (that transaction's view of the
    rules, and what risk control decided of `payments` earlier), then `needs_approval` for each.
    `fundpool.approvals.gate.RulesGate` implements it."""

    def prepare(self, session: WriteSession, payments: Sequence[Payment]) -> None: ...

    def needs_approval(self, payment: Payment, risk: tuple[str, int, int | None] | None
                       ) -> bool:
        """`risk`: the decision made of it in this transaction (grade, score, policy
        version), if it was screened here."""
        ...
