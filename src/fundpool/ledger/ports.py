"""What the ledger service needs of a store. SQLite and PostgreSQL implement it."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

from fundpool.core.ledger.engine import (
    BalanceKey,
    BatchOutcome,
    IdempotencyRecord,
    PostedTransaction,
)
from fundpool.core.ledger.model import (
    Account,
    Balance,
    ChainHead,
    EntryKind,
    PendingState,
    PendingTransfer,
)
from fundpool.core.money import Asset
from fundpool.events.model import Event


@dataclass(frozen=True, slots=True)
class StoredEntry:
    """A journal row as the store holds it; `verify` checks it against its own canonical bytes."""

    seq: int
    id: str
    kind: str
    at_us: int
    canonical: bytes
    hash: bytes


@dataclass(frozen=True, slots=True)
class StoredLeg:
    seq: int
    address: str
    asset: str
    balance: Balance


@dataclass(frozen=True, slots=True)
class HistoryRow:
    """One change to an account's balance in one asset, with the entry that made it."""

    seq: int
    entry_id: str
    kind: EntryKind
    at_us: int
    balance: Balance
    posted_change_minor: int
    pending_out_change_minor: int
    pending_in_change_minor: int


class WriteSession(Protocol):
    """A store transaction that excludes every other writer until it ends."""

    @property
    def head(self) -> ChainHead: ...

    def load_assets(self) -> dict[str, Asset]: ...

    def load_accounts(self, addresses: Iterable[str]) -> dict[str, Account]: ...

    def load_balances(self, keys: Iterable[BalanceKey]) -> dict[BalanceKey, Balance]: ...

    def load_pendings(self, ids: Iterable[str]) -> dict[str, PendingTransfer]: ...

    def due_pendings(self, at_us: int, limit: int) -> list[PendingTransfer]: ...

    def next_expiry_us(self, after_us: int) -> int | None:
        """The earliest expiry of a pending transfer later than `after_us`, or None."""
        ...

    def load_idempotency(self, keys: Iterable[str]) -> dict[str, IdempotencyRecord]: ...

    def load_transactions(self, ids: Iterable[str]) -> dict[str, PostedTransaction]: ...

    def load_reversed(self, ids: Iterable[str]) -> dict[str, str]: ...

    def save(self, outcome: BatchOutcome) -> None: ...

    def append_events(self, events: Sequence[Event]) -> None:
        """Write events to the outbox, numbered per pool in commit order
        (fundpool.stores.events_sql)."""
        ...


class LedgerStore(Protocol):
    """One ledger's durable state. Writes go through `write()`; reads see committed state."""

    def initialise(self) -> None:
        """Create the schema if it is absent. Safe to call on an existing ledger."""
        ...

    def close(self) -> None: ...

    def write(self, *, bulk: bool = False) -> AbstractContextManager[WriteSession]:
        """Begin a write transaction; commit when the block ends, roll back if it raises.
        `bulk` says that it will write many rows (a large batch), so the store may take the
        path that is fastest per row rather than the one with the fewest round trips."""
        ...

    def head(self) -> ChainHead: ...

    def entry(self, seq: int) -> StoredEntry | None: ...

    def entry_by_id(self, entry_id: str) -> StoredEntry | None: ...

    def entries(self, from_seq: int = 1, to_seq: int | None = None) -> Iterator[StoredEntry]:
        """Journal rows in ascending seq order, streamed."""
        ...

    def legs(self, from_seq: int = 1, to_seq: int | None = None) -> Iterator[StoredLeg]:
        """Leg rows in ascending (seq, address, asset) order, streamed."""
        ...

    def assets(self) -> list[Asset]: ...

    def accounts(
        self, prefix: str | None = None, *, asset: str | None = None,
        after: str | None = None, descending: bool = False, limit: int | None = None,
    ) -> list[Account]:
        """Accounts by address (`descending`: the other way), those under `prefix` and of
        `asset` if given, after the address `after` in that order, at most `limit`."""
        ...

    def balances(self, prefix: str | None = None) -> dict[BalanceKey, Balance]: ...

    def pendings(self, state: PendingState | None = None) -> list[PendingTransfer]:
        """In creation order."""
        ...

    def pendings_page(self, state: PendingState | None, *, before: str | None,
                      limit: int) -> list[PendingTransfer]:
        """Newest first by id (ids are time-ordered), those before the id `before`."""
        ...

    def pending(self, pending_id: str) -> PendingTransfer | None: ...

    def balance_at(self, address: str, asset: str, seq: int) -> Balance:
        """The balance as it stood right after entry `seq`."""
        ...

    def history(
        self, address: str, asset: str | None, limit: int, before_seq: int | None
    ) -> list[tuple[str, HistoryRow]]:
        """Newest first: (asset, row) pairs for the account, at most `limit`."""
        ...

    def replace_balances(self, balances: dict[BalanceKey, Balance]) -> None:
        """Overwrite the balance table (repair after `rebuild` found it wrong)."""
        ...
