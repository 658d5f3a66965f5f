"""What the payment service needs of a store. Payments live in the ledger's database, and
every change to one is written in the same transaction as the ledger entries it posts."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from fundpool.ledger.ports import WriteSession
from fundpool.payments.model import Payment, PaymentEvent, PaymentKind, PaymentState

LIST_LIMIT_MAX = 1_000


@dataclass(frozen=True, slots=True)
class PaymentFilter:
    pool: str
    state: PaymentState | None = None
    kind: PaymentKind | None = None
    asset: str | None = None
    channel: str | None = None


class PaymentWrites(Protocol):
    """Payments inside a ledger write transaction (under the ledger's writer lock)."""

    def load(self, ids: Iterable[str]) -> dict[str, Payment]: ...

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
