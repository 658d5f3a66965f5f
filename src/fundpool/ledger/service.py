"""The ledger service: the unit of work around the pure engine.

`transaction()` is one store write transaction: it expires due pending transfers, then loads
what each step's commands touch, lets the engine apply them, and at the end saves the journal,
legs, balances and the rest together; other services write their own tables in it too.
`submit` is a transaction of one step. A batch is one commit, so throughput comes from batching
(docs/adr/0005), and the chain is extended by the one writer the store lets in at a time.

Between batches the service keeps accounts and balances it has seen. The cache is used only when
the chain head at the start of a write is the head this service itself left, so a write by
another process (or a failed batch) drops it.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

from fundpool.core.clock import Clock, IdSource
from fundpool.core.errors import BatchTooLarge, UnknownAccount, UnknownAsset, invariant
from fundpool.core.ledger.canonical import decode_body
from fundpool.core.ledger.engine import (
    BatchEngine,
    CommandResult,
    WorkingSet,
)
from fundpool.core.ledger.model import (
    ZERO_BALANCE,
    Account,
    Balance,
    ChainHead,
    Command,
    CreatePending,
    DefineAsset,
    JournalEntry,
    Linked,
    OpenAccount,
    PendingTransfer,
    Posting,
    PostPending,
    Reverse,
    SimpleCommand,
    Transfer,
    VoidPending,
    check_address,
)
from fundpool.core.money import Asset
from fundpool.events.ledger import entry_events
from fundpool.events.model import Event
from fundpool.ledger.ports import HistoryRow, LedgerStore, StoredEntry, WriteSession

BATCH_COMMANDS_MAX = 8_192
EXPIRIES_PER_BATCH_MAX = 8_192
# A batch of this many commands is written by the store's bulk path (`LedgerStore.write`).
BULK_COMMANDS_MIN = 256
NO_EXPIRY_US = 2**63  # the expiry horizon when no pending transfer is waiting
CACHE_BALANCES_MAX = 1_000_000
HISTORY_LIMIT_MAX = 1_000

K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True, slots=True)
class Recorded:
    """An entry as a caller sees it after a command: new (`replayed` False) or the original one
    returned for a retried idempotency key."""

    seq: int
    id: str
    kind: str
    at_us: int
    hash: bytes
    body: dict[str, object]
    replayed: bool = False


class Ledger:
    """A ledger on a store, with an injected clock and id source."""

    def __init__(self, store: LedgerStore, clock: Clock, ids: IdSource) -> None:
        self.store = store
        self._clock = clock
        self._ids = ids
        self._cache = WorkingSet()
        self._cache_head: ChainHead | None = None
        # No pending transfer in the store expires before this instant (None: not known). Kept
        # with the cache, so a commit need not look for due expiries when none can be due.
        self._expiry_horizon_us: int | None = None

    # --- writes ---------------------------------------------------------------------------

    def submit(self, commands: Sequence[Command]) -> list[CommandResult]:
        """Apply a batch: each command (a `Linked` group counts as one) all or none, in order,
        committed together. Rejected commands change nothing and say why in their result."""
        with self.transaction(bulk=len(commands) >= BULK_COMMANDS_MIN) as transaction:
            return transaction.apply(commands)

    def expire_due(self) -> int:
        """Expire every pending transfer whose timeout has passed; returns how many."""
        expired = 0
        while True:
            with self.transaction() as transaction:
                done = transaction.expired
            expired += done
            if done < EXPIRIES_PER_BATCH_MAX:
                return expired

    @contextmanager
    def transaction(self, *, bulk: bool = False) -> Iterator[LedgerTransaction]:
        """One store write transaction, the only writer of the ledger while it lasts.

        Inside it, `apply` commands in as many steps as needed (each step sees the one before),
        and other services read and write their own tables through `session` under the same
        lock; everything commits together when the block ends, or nothing does if it raises.
        Pending transfers that are due expire first, as entries of their own. `bulk`: it
        will write a large batch (`LedgerStore.write`)."""
        try:
            with self.store.write(bulk=bulk) as session:
                transaction = self._begin(session)
                yield transaction
                outcome = transaction.engine.finish()
                session.save(outcome)
                # The outbox is written in the same transaction as what its events report.
                session.append_events([*entry_events(outcome.entries), *transaction.emitted])
        except BaseException:
            self._drop_cache()  # the engine changed the cached working set in place
            raise
        self._cache_head = outcome.head
        horizon = transaction.expiry_horizon_us
        if horizon is not None:
            for pending in outcome.pendings_new:
                horizon = min(horizon, pending.expires_at_us)
        self._expiry_horizon_us = horizon
        if len(self._cache.balances) > CACHE_BALANCES_MAX:
            self._drop_cache()

    def _begin(self, session: WriteSession) -> LedgerTransaction:
        head = session.head
        if head != self._cache_head:
            self._drop_cache()
        working = self._cache
        if not working.assets:
            working.assets = session.load_assets()
        # Per-transaction lookups never outlive it: cheap to load, unbounded to keep.
        working.pendings = {}
        working.idempotency = {}
        working.transactions = {}
        working.reversed_by = {}
        at_us = max(self._clock.now_us(), head.at_us)
        horizon = self._expiry_horizon_us
        if horizon is not None and at_us < horizon:
            due: list[PendingTransfer] = []
        else:
            due = session.due_pendings(at_us, EXPIRIES_PER_BATCH_MAX)
            if len(due) >= EXPIRIES_PER_BATCH_MAX:
                horizon = None  # more were due than one transaction expires
            else:  # once these expire, the next one due is the first expiry after now
                later = session.next_expiry_us(at_us)
                horizon = NO_EXPIRY_US if later is None else later
        working.pendings.update({p.id: p for p in due})
        _load(session, working, _Needs.of(()))
        engine = BatchEngine(working, head, at_us, self._ids)
        # Stores may collate text differently; the order of expiry entries must not depend on it.
        for pending in sorted(due, key=lambda p: (p.expires_at_us, p.id)):
            engine.expire(pending)
        return LedgerTransaction(session, engine, working, at_us, len(due), horizon)

    def _drop_cache(self) -> None:
        self._cache = WorkingSet()
        self._cache_head = None
        self._expiry_horizon_us = None

    @property
    def clock(self) -> Clock:
        return self._clock

    # --- one command at a time, raising its error -----------------------------------------

    def execute(self, command: Command) -> Recorded | None:
        """Submit one command alone. Returns its entry (None when an asset or account was
        already as asked, or the last member's entry for a linked batch), or raises its error."""
        (result,) = self.submit([command])
        return self.recorded(result)

    def recorded(self, result: CommandResult) -> Recorded | None:
        if result.error is not None:
            raise result.error
        if result.entry is not None:
            return entry_as_recorded(result.entry)
        if result.seq is not None:
            stored = self.store.entry(result.seq)
            invariant(stored is not None, f"replayed entry {result.seq} is in the journal")
            assert stored is not None
            return recorded_from_stored(stored, replayed=True)
        if result.members:
            return self.recorded(result.members[-1])
        return None

    def _execute_entry(self, command: SimpleCommand) -> Recorded:
        recorded = self.execute(command)
        invariant(recorded is not None, "a money command always records an entry")
        assert recorded is not None
        return recorded

    def define_asset(self, asset: Asset) -> Recorded | None:
        return self.execute(DefineAsset(asset))

    def open_account(self, account: Account) -> Recorded | None:
        return self.execute(OpenAccount(account))

    def transfer(
        self,
        postings: Iterable[Posting],
        *,
        metadata: dict[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> Recorded:
        return self._execute_entry(Transfer(tuple(postings), metadata or {}, idempotency_key))

    def create_pending(
        self,
        posting: Posting,
        *,
        timeout_s: int,
        metadata: dict[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> Recorded:
        return self._execute_entry(
            CreatePending(posting, timeout_s, metadata or {}, idempotency_key)
        )

    def post_pending(
        self,
        pending_id: str,
        amount_minor: int | None = None,
        *,
        metadata: dict[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> Recorded:
        return self._execute_entry(
            PostPending(pending_id, amount_minor, metadata or {}, idempotency_key)
        )

    def void_pending(
        self,
        pending_id: str,
        *,
        metadata: dict[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> Recorded:
        return self._execute_entry(VoidPending(pending_id, metadata or {}, idempotency_key))

    def reverse(
        self,
        transaction_id: str,
        *,
        metadata: dict[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> Recorded:
        return self._execute_entry(Reverse(transaction_id, metadata or {}, idempotency_key))

    # --- reads ----------------------------------------------------------------------------

    def head(self) -> ChainHead:
        return self.store.head()

    def balance(self, address: str, asset: str, *, at_us: int | None = None) -> Balance:
        """The balance now, or as it stood at `at_us` (after every entry made at or before it)."""
        self._check_account(address)
        self._check_asset(asset)
        if at_us is None:
            return self.store.balances(address).get((address, asset), Balance())
        return self.store.balance_at(address, asset, self.seq_at(at_us))

    def seq_at(self, at_us: int) -> int:
        """The last seq committed at or before `at_us` (0 before the first entry)."""
        return seq_at(self.store, at_us)

    def balances(self, address: str) -> dict[str, Balance]:
        self._check_account(address)
        return {
            asset: balance
            for (account, asset), balance in self.store.balances(address).items()
            if account == address
        }

    def history(
        self,
        address: str,
        *,
        asset: str | None = None,
        limit: int = 100,
        before_seq: int | None = None,
    ) -> list[tuple[str, HistoryRow]]:
        """The `limit` newest entries that changed the account (before `before_seq`), newest
        first, with one row per asset each changed. A page always holds whole entries, so
        `before_seq=<last row's seq>` continues where it ended."""
        self._check_account(address)
        limit = max(1, min(limit, HISTORY_LIMIT_MAX))
        if asset is not None:
            self._check_asset(asset)
            codes = [asset]
        else:
            codes = [a.code for a in self.store.assets()]
        # One index range scan per asset; their union holds every leg of the newest entries.
        rows = [
            row for code in codes for row in self.store.history(address, code, limit, before_seq)
        ]
        newest = set(sorted({row.seq for _, row in rows}, reverse=True)[:limit])
        return sorted(
            (pair for pair in rows if pair[1].seq in newest),
            key=lambda pair: (-pair[1].seq, pair[0]),
        )

    def _check_account(self, address: str) -> None:
        find_account(self.store, address)

    def _check_asset(self, code: str) -> None:
        if code not in {a.code for a in self.store.assets()}:
            raise UnknownAsset(asset=code)

    def entry(self, entry_id: str) -> Recorded | None:
        stored = self.store.entry_by_id(entry_id)
        return None if stored is None else recorded_from_stored(stored)

    def pending(self, pending_id: str) -> PendingTransfer | None:
        return self.store.pending(pending_id)


def find_account(store: LedgerStore, address: str) -> Account:
    """The open account at `address`; `unknown_account` if there is none. One index probe:
    an address sorts first among those it prefixes."""
    check_address(address)
    found = store.accounts(address, limit=1)
    if not found or found[0].address != address:
        raise UnknownAccount(address=address)
    return found[0]


def seq_at(store: LedgerStore, at_us: int) -> int:
    """The last seq of `store` committed at or before `at_us` (0 before the first entry).

    `at_us` never decreases along seq (a batch's time is at least the head's), so a binary
    search over seq finds the instant in about log2(entries) lookups, without an index on
    time that every insert would have to maintain."""
    low, high = 0, store.head().seq
    while low < high:
        middle = (low + high + 1) // 2
        stored = store.entry(middle)
        if stored is not None and stored.at_us <= at_us:
            low = middle
        else:
            high = middle - 1
    return low


class LedgerTransaction:
    """What `Ledger.transaction()` yields: apply commands; reach the store through `session`."""

    def __init__(
        self,
        session: WriteSession,
        engine: BatchEngine,
        working: WorkingSet,
        at_us: int,
        expired: int,
        expiry_horizon_us: int | None = None,
    ) -> None:
        self.session = session
        self.engine = engine
        self.at_us = at_us  # the time every entry of this transaction carries
        self.expired = expired  # pending transfers expired when it began
        # Before this transaction's own new pending transfers, none expires earlier.
        self.expiry_horizon_us = expiry_horizon_us
        self._working = working
        self._commands = 0
        self.emitted: list[Event] = []

    def emit(self, events: Iterable[Event]) -> None:
        """Write these events to the outbox when the transaction commits (after the ledger's
        own entry events); they are dropped with everything else if it rolls back."""
        self.emitted.extend(events)

    def apply(self, commands: Sequence[Command]) -> list[CommandResult]:
        self._commands += len(commands)
        if self._commands > BATCH_COMMANDS_MAX:
            raise BatchTooLarge(commands=self._commands, commands_max=BATCH_COMMANDS_MAX)
        _load(self.session, self._working, _Needs.of(commands))
        return [self.engine.apply(command) for command in commands]

    def balances(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], Balance]:
        """(address, asset) balances as they stand in this transaction, its own changes
        included. An account or asset pair never posted to reads as zero."""
        wanted = frozenset(keys)
        _load(self.session, self._working, _Needs(frozenset(), wanted, frozenset(),
                                                  frozenset(), frozenset()))
        balances = self._working.balances
        return {key: balances.get(key, ZERO_BALANCE) for key in wanted}


def _load(session: WriteSession, working: WorkingSet, needs: _Needs) -> None:
    """Bring into `working` what `needs` names and it does not hold yet. What this transaction
    already changed is never overwritten by the stored state."""
    missing_pendings = _missing(needs.pending_ids, working.pendings)
    if missing_pendings:
        working.pendings.update(session.load_pendings(missing_pendings))
    missing_transactions = _missing(needs.transaction_ids, working.transactions)
    if missing_transactions:
        working.transactions.update(session.load_transactions(missing_transactions))
    unreversed = _missing(needs.transaction_ids, working.reversed_by)
    if unreversed:
        working.reversed_by.update(session.load_reversed(unreversed))
    missing_keys = _missing(needs.idempotency_keys, working.idempotency)
    if missing_keys:
        working.idempotency.update(session.load_idempotency(missing_keys))

    keys = set(needs.balance_keys)
    for pending in working.pendings.values():
        keys.update(((pending.source, pending.asset), (pending.destination, pending.asset)))
    for transaction in working.transactions.values():
        for source, destination, asset, _ in transaction.postings:
            keys.update(((source, asset), (destination, asset)))
    addresses = {address for address, _ in keys}
    addresses.update(needs.opened)
    missing_accounts = _missing(addresses, working.accounts)
    if missing_accounts:
        working.accounts.update(session.load_accounts(missing_accounts))
    missing_balances = _missing(keys, working.balances)
    if missing_balances:
        working.balances.update(session.load_balances(missing_balances))


def _missing(wanted: Iterable[K], held: Mapping[K, object]) -> set[K]:
    """The members of `wanted` that `held` lacks, in time of `wanted`'s size. (`set -
    dict.keys()` walks the whole dict: with a warm cache of 10,000 balances that was 1.8 ms
    of every single-transfer commit; docs/benchmarks.md.)"""
    return {key for key in wanted if key not in held}


@dataclass(frozen=True, slots=True)
class _Needs:
    """Which stored state a batch's commands read. The accounts they touch are those of
    `balance_keys`, plus the ones being opened (`opened`)."""

    opened: frozenset[str]
    balance_keys: frozenset[tuple[str, str]]
    pending_ids: frozenset[str]
    transaction_ids: frozenset[str]
    idempotency_keys: frozenset[str]

    @classmethod
    def of(cls, commands: Sequence[Command]) -> _Needs:
        opened: set[str] = set()
        keys: set[tuple[str, str]] = set()
        pending_ids: set[str] = set()
        transaction_ids: set[str] = set()
        idempotency_keys: set[str] = set()
        flat: list[SimpleCommand] = []
        for command in commands:
            if isinstance(command, Linked):
                flat.extend(command.commands)
            else:
                flat.append(command)
        for command in flat:
            if isinstance(command, Transfer):
                for posting in command.postings:
                    keys.add((posting.source, posting.asset))
                    keys.add((posting.destination, posting.asset))
            elif isinstance(command, CreatePending):
                posting = command.posting
                keys.update(((posting.source, posting.asset), (posting.destination, posting.asset)))
            elif isinstance(command, PostPending | VoidPending):
                pending_ids.add(command.pending_id)
            elif isinstance(command, Reverse):
                transaction_ids.add(command.transaction_id)
            elif isinstance(command, OpenAccount):
                opened.add(command.account.address)
            key = getattr(command, "idempotency_key", None)
            if key is not None:
                idempotency_keys.add(key)
        return cls(
            frozenset(opened),
            frozenset(keys),
            frozenset(pending_ids),
            frozenset(transaction_ids),
            frozenset(idempotency_keys),
        )


def recorded_from_stored(stored: StoredEntry, *, replayed: bool = False) -> Recorded:
    return Recorded(
        stored.seq,
        stored.id,
        stored.kind,
        stored.at_us,
        stored.hash,
        decode_body(stored.canonical),
        replayed=replayed,
    )


def entry_as_recorded(entry: JournalEntry) -> Recorded:
    return Recorded(entry.seq, entry.id, entry.kind.value, entry.at_us, entry.hash, entry.body)
