"""The ledger engine: commands in, hash-chained journal entries and new balances out.

Pure: no clock, no random numbers, no I/O. The service loads what a batch needs into a
`WorkingSet`, gives the engine the chain head, the batch's timestamp and an id source, applies
each command, and writes what `BatchEngine.finish()` returns in one store transaction.

Each top-level command is applied all or none: its changes go to the working set through an undo
log, and a rejected command (or any member of a rejected linked batch) is rolled back before the
next command runs, so a rejection changes nothing.

The engine is the batch's mechanics (dispatch, undo log, idempotency, the chain) and the posted
transfers and reversals; the rules of pending transfers are in `two_phase.py`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

from fundpool.core.clock import IdSource
from fundpool.core.errors import (
    AccountAlreadyOpen,
    AlreadyReversed,
    AssetAlreadyDefined,
    AssetMismatch,
    BalanceAboveMaximum,
    BalanceOverflow,
    FundpoolError,
    IdempotencyConflict,
    InsufficientFunds,
    LinkedBatchFailed,
    NotReversible,
    UnknownAccount,
    UnknownAsset,
    UnknownTransaction,
    invariant,
)
from fundpool.core.ledger import two_phase
from fundpool.core.ledger.canonical import (
    canonical_bytes,
    canonical_text,
    chain_hash,
    request_hash,
)
from fundpool.core.ledger.model import (
    ZERO_BALANCE,
    Account,
    Balance,
    ChainHead,
    Command,
    CreatePending,
    EntryKind,
    JournalEntry,
    Leg,
    Linked,
    OpenAccount,
    PendingState,
    PendingTransfer,
    Posting,
    PostPending,
    Reverse,
    SimpleCommand,
    Transfer,
    VoidPending,
    check_address,
)
from fundpool.core.money import AMOUNT_MAX_MINOR, Asset

BalanceKey = tuple[str, str]  # (address, asset)
PostingTuple = tuple[str, str, str, int]  # (source, destination, asset, amount_minor)
REVERSIBLE_KINDS = frozenset({EntryKind.TRANSFER, EntryKind.PENDING_POSTED})


class IdempotencyRecord(NamedTuple):
    request_hash: bytes
    seq: int
    entry_id: str


class PostedTransaction(NamedTuple):
    """What a reversal needs of the transaction it undoes."""

    kind: EntryKind
    postings: tuple[PostingTuple, ...]


@dataclass(slots=True)
class WorkingSet:
    """Everything a batch reads and changes. Missing from `accounts` means not open."""

    assets: dict[str, Asset] = field(default_factory=dict)
    accounts: dict[str, Account] = field(default_factory=dict)
    balances: dict[BalanceKey, Balance] = field(default_factory=dict)
    pendings: dict[str, PendingTransfer] = field(default_factory=dict)
    idempotency: dict[str, IdempotencyRecord] = field(default_factory=dict)
    transactions: dict[str, PostedTransaction] = field(default_factory=dict)
    reversed_by: dict[str, str] = field(default_factory=dict)


Status = Literal["applied", "replayed", "unchanged", "rejected"]


class CommandResult(NamedTuple):
    """`applied` made `entry`; `replayed` returns the entry an earlier call with the same
    idempotency key made (`seq`); `unchanged` found the asset or account already as asked;
    `rejected` changed nothing and says why in `error`."""

    status: Status
    entry: JournalEntry | None = None
    seq: int | None = None
    error: FundpoolError | None = None
    members: tuple[CommandResult, ...] = ()

    @property
    def ok(self) -> bool:
        return self.status != "rejected"


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    """What the store writes for a batch, in one transaction."""

    head: ChainHead
    entries: tuple[JournalEntry, ...]
    results: tuple[CommandResult, ...]
    assets: tuple[Asset, ...]
    accounts: tuple[Account, ...]
    balances: dict[BalanceKey, Balance]
    pendings_new: tuple[PendingTransfer, ...]
    pendings_changed: tuple[PendingTransfer, ...]
    idempotency: tuple[tuple[str, IdempotencyRecord], ...]
    reversals: tuple[tuple[str, str], ...]



class BatchEngine:
    """Applies one batch's commands. Use once: construct, `apply` each command, `finish`."""

    def __init__(
        self, working: WorkingSet, head: ChainHead, at_us: int, ids: IdSource
    ) -> None:
        invariant(at_us >= head.at_us, "a batch's time never precedes the chain head's")
        self._w = working
        self._head = head
        self._at_us = at_us
        self._new_id = ids.new_id
        self._entries: list[JournalEntry] = []
        self._results: list[CommandResult] = []
        self._undo: list[tuple[dict[Any, Any], Any, Any]] = []
        self._touched: set[BalanceKey] = set()
        self._pendings_touched: set[str] = set()
        self._pendings_created: set[str] = set()
        self._assets: list[Asset] = []
        self._accounts: list[Account] = []
        self._idempotency: list[tuple[str, IdempotencyRecord]] = []
        self._reversals: list[tuple[str, str]] = []

    # --- public ---------------------------------------------------------------------------

    def apply(self, command: Command) -> CommandResult:
        mark = (
            self._head,
            len(self._entries),
            len(self._assets),
            len(self._accounts),
            len(self._idempotency),
            len(self._reversals),
        )
        self._undo.clear()
        try:
            if isinstance(command, Linked):
                result = self._apply_linked(command)
            else:
                result = self._apply_simple(command)
        except FundpoolError as error:
            self._rollback(mark)
            result = CommandResult("rejected", error=error)
        self._results.append(result)
        return result

    def expire(self, pending: PendingTransfer) -> JournalEntry:
        """Expire a due pending transfer: its reservation is released, in an entry of its own."""
        two_phase.check_due(pending, self._at_us)
        self._undo.clear()
        self._w.pendings[pending.id] = pending
        return self._finish_pending(pending, PendingState.EXPIRED, 0, {}, None)

    def finish(self) -> BatchOutcome:
        pendings = self._w.pendings
        new: list[PendingTransfer] = []
        changed: list[PendingTransfer] = []
        for pending_id in sorted(self._pendings_touched):
            pending = pendings.get(pending_id)
            if pending is None:
                continue  # created by a command that was rolled back
            if pending_id in self._pendings_created:
                new.append(pending)
            elif pending.state is not PendingState.PENDING:
                changed.append(pending)  # still pending: only a rolled-back command touched it
        balances = self._w.balances
        return BatchOutcome(
            head=self._head,
            entries=tuple(self._entries),
            results=tuple(self._results),
            assets=tuple(self._assets),
            accounts=tuple(self._accounts),
            # A key a rolled-back command created is gone again: it was never stored either.
            balances={key: balances[key] for key in self._touched if key in balances},
            pendings_new=tuple(new),
            pendings_changed=tuple(changed),
            idempotency=tuple(self._idempotency),
            reversals=tuple(self._reversals),
        )

    # --- dispatch -------------------------------------------------------------------------

    def _apply_linked(self, command: Linked) -> CommandResult:
        members: list[CommandResult] = []
        for index, member in enumerate(command.commands):
            try:
                members.append(self._apply_simple(member))
            except FundpoolError as error:
                raise LinkedBatchFailed(
                    failed_index=index, failed_code=error.code, failed_detail=str(error)
                ) from error
        return CommandResult("applied", members=tuple(members))

    def _apply_simple(self, command: SimpleCommand) -> CommandResult:
        if isinstance(command, Transfer):
            return self._transfer(command)
        if isinstance(command, CreatePending):
            return self._create_pending(command)
        if isinstance(command, PostPending):
            return self._post_pending(command)
        if isinstance(command, VoidPending):
            return self._void_pending(command)
        if isinstance(command, Reverse):
            return self._reverse(command)
        if isinstance(command, OpenAccount):
            return self._open_account(command.account)
        return self._define_asset(command.asset)

    # --- assets and accounts --------------------------------------------------------------

    def _define_asset(self, asset: Asset) -> CommandResult:
        existing = self._w.assets.get(asset.code)
        if existing is not None:
            if existing == asset:
                return CommandResult("unchanged")
            raise AssetAlreadyDefined(
                asset=asset.code, scale=existing.scale, kind=existing.kind.value
            )
        self._set(self._w.assets, asset.code, asset)
        self._assets.append(asset)
        body: dict[str, object] = {
            "asset": {"code": asset.code, "scale": asset.scale, "kind": asset.kind.value}
        }
        return CommandResult("applied", self._append(EntryKind.ASSET_DEFINED, body, ()))

    def _open_account(self, account: Account) -> CommandResult:
        existing = self._w.accounts.get(account.address)
        if existing is not None:
            if existing == account:
                return CommandResult("unchanged")
            raise AccountAlreadyOpen(address=account.address, existing=existing.body())
        if account.asset is not None and account.asset not in self._w.assets:
            raise UnknownAsset(asset=account.asset, address=account.address)
        self._set(self._w.accounts, account.address, account)
        self._accounts.append(account)
        entry = self._append(EntryKind.ACCOUNT_OPENED, {"account": account.body()}, ())
        return _applied(entry)

    # --- transfers ------------------------------------------------------------------------

    def _transfer(self, command: Transfer) -> CommandResult:
        key = command.idempotency_key
        postings = command.postings
        fingerprint = b""
        if key is not None:
            fingerprint = request_hash(
                {
                    "kind": "transfer",
                    "postings": [p.body() for p in postings],
                    "metadata": dict(command.metadata),
                }
            )
            replay = self._replay(key, fingerprint)
            if replay is not None:
                return replay
        if len(postings) == 1:
            p = postings[0]
            legs = self._move_one(p.source, p.destination, p.asset, p.amount_minor)
        else:
            legs = self._move(
                tuple((p.source, p.destination, p.asset, p.amount_minor) for p in postings)
            )
        entry = self._append_transfer(
            _postings_json(postings), command.metadata, key, None, legs
        )
        self._remember(key, fingerprint, entry)
        return _applied(entry)

    def _reverse(self, command: Reverse) -> CommandResult:
        key = command.idempotency_key
        fingerprint = b""
        if key is not None:
            fingerprint = request_hash(
                {
                    "kind": "reverse",
                    "transaction_id": command.transaction_id,
                    "metadata": dict(command.metadata),
                }
            )
            replay = self._replay(key, fingerprint)
            if replay is not None:
                return replay
        original_id = command.transaction_id
        original = self._w.transactions.get(original_id) or self._posted_in_batch(original_id)
        if original is None:
            raise UnknownTransaction(transaction_id=original_id)
        if original.kind not in REVERSIBLE_KINDS:
            raise NotReversible(transaction_id=original_id, kind=original.kind.value)
        reversed_by = self._w.reversed_by.get(original_id)
        if reversed_by is not None:
            raise AlreadyReversed(transaction_id=original_id, reversed_by=reversed_by)
        undo = tuple((dst, src, asset, amount) for src, dst, asset, amount in original.postings)
        if not undo:
            raise NotReversible(
                "a pending transfer posted for zero moved nothing", transaction_id=original_id
            )
        legs = self._move(undo)
        postings_json = _postings_json(
            [Posting(source, destination, asset, amount) for source, destination, asset, amount
             in undo]
        )
        entry = self._append_transfer(postings_json, command.metadata, key, original_id, legs)
        self._set(self._w.reversed_by, original_id, entry.id)
        self._reversals.append((original_id, entry.id))
        self._remember(key, fingerprint, entry)
        return _applied(entry)

    def _move(self, postings: tuple[PostingTuple, ...]) -> tuple[Leg, ...]:
        """Apply posted movements; check every bound on the net change per account and asset."""
        accounts = self._w.accounts
        deltas: dict[BalanceKey, int] = {}
        for source, destination, asset, amount in postings:
            self._check_leg(source, asset)
            self._check_leg(destination, asset)
            deltas[source, asset] = deltas.get((source, asset), 0) - amount
            deltas[destination, asset] = deltas.get((destination, asset), 0) + amount
        _check_balanced(deltas)
        balances = self._w.balances
        updates: list[tuple[BalanceKey, Balance]] = []
        for balance_key, delta in deltas.items():
            old = balances.get(balance_key, ZERO_BALANCE)
            new = Balance(old.posted + delta, old.pending_out, old.pending_in)
            check_bounds(accounts[balance_key[0]], balance_key[1], old, new, delta)
            updates.append((balance_key, new))
        seq = self._head.seq + 1  # the entry these legs belong to is appended next
        legs: list[Leg] = []
        for balance_key, new in updates:
            self._set_balance(balance_key, new)
            legs.append(Leg(seq, balance_key[0], balance_key[1], *new))
        return tuple(legs)

    def _move_one(
        self, source: str, destination: str, asset: str, amount: int
    ) -> tuple[Leg, ...]:
        """`_move` for the common single posting, with the same checks in fewer steps."""
        accounts = self._w.accounts
        source_account = accounts.get(source)
        destination_account = accounts.get(destination)
        if (
            source_account is None
            or destination_account is None
            or asset not in self._w.assets
            or (source_account.asset is not None and source_account.asset != asset)
            or (destination_account.asset is not None and destination_account.asset != asset)
        ):
            self._check_leg(source, asset)
            self._check_leg(destination, asset)
            invariant(False, "a posting that fails no leg check passes the fast one")
        assert source_account is not None
        assert destination_account is not None
        balances = self._w.balances
        source_key = (source, asset)
        destination_key = (destination, asset)
        source_stored = balances.get(source_key)
        destination_stored = balances.get(destination_key)
        source_old = ZERO_BALANCE if source_stored is None else source_stored
        destination_old = ZERO_BALANCE if destination_stored is None else destination_stored
        source_new = _balance(Balance, (source_old[0] - amount, source_old[1], source_old[2]))
        destination_new = _balance(
            Balance, (destination_old[0] + amount, destination_old[1], destination_old[2])
        )
        floor = source_account.floor_minor
        source_available = source_new[0] - source_new[1]
        if (floor is not None and source_available < floor) or (
            source_available < -AMOUNT_MAX_MINOR
        ):
            check_bounds(source_account, asset, source_old, source_new, -amount)
        if (
            destination_account.max_balance_minor is not None
            or destination_new[0] + destination_new[2] > AMOUNT_MAX_MINOR
        ):
            check_bounds(destination_account, asset, destination_old, destination_new, amount)
        undo = self._undo
        undo.append((balances, source_key, source_stored))
        undo.append((balances, destination_key, destination_stored))
        balances[source_key] = source_new
        balances[destination_key] = destination_new
        touched = self._touched
        touched.add(source_key)
        touched.add(destination_key)
        seq = self._head.seq + 1
        return (
            _leg(Leg, (seq, source, asset, *source_new)),
            _leg(Leg, (seq, destination, asset, *destination_new)),
        )

    def _posted_in_batch(self, entry_id: str) -> PostedTransaction | None:
        """A transaction this batch made, for a reversal in the same batch (rare: a scan)."""
        for entry in reversed(self._entries):
            if entry.id == entry_id:
                body = entry.body
                return PostedTransaction(EntryKind(body["kind"]), body_postings(body))
        return None

    def _check_leg(self, address: str, asset: str) -> None:
        account = self._w.accounts.get(address)
        if account is None:
            check_address(address)  # a malformed address says so, not merely "unknown"
            raise UnknownAccount(address=address)
        if asset not in self._w.assets:
            raise UnknownAsset(asset=asset)
        if account.asset is not None and account.asset != asset:
            raise AssetMismatch(address=address, account_asset=account.asset, asset=asset)

    # --- two-phase transfers (the rules: two_phase.py) -------------------------------------

    def _create_pending(self, command: CreatePending) -> CommandResult:
        key = command.idempotency_key
        fingerprint = b""
        if key is not None:
            fingerprint = two_phase.request_hash_of(command)
            replay = self._replay(key, fingerprint)
            if replay is not None:
                return replay
        posting = command.posting
        self._check_leg(posting.source, posting.asset)
        self._check_leg(posting.destination, posting.asset)
        legs = self._apply_step(two_phase.reserve(self._w.balances, posting))
        expires_at_us = two_phase.expires_at_us(self._at_us, command.timeout_s)
        body = two_phase.created_body(command, expires_at_us)
        entry = self._append(EntryKind.PENDING_CREATED, body, legs)
        self._set_pending(two_phase.created(entry, posting, expires_at_us), created=True)
        self._remember(key, fingerprint, entry)
        return _applied(entry)

    def _post_pending(self, command: PostPending) -> CommandResult:
        key = command.idempotency_key
        fingerprint = b""
        if key is not None:
            fingerprint = two_phase.request_hash_of(command)
            replay = self._replay(key, fingerprint)
            if replay is not None:
                return replay
        pending = two_phase.live_pending(self._w.pendings, command.pending_id, self._at_us)
        posted_minor = two_phase.amount_to_post(pending, command.amount_minor)
        entry = self._finish_pending(
            pending, PendingState.POSTED, posted_minor, command.metadata, key
        )
        self._remember(key, fingerprint, entry)
        return _applied(entry)

    def _void_pending(self, command: VoidPending) -> CommandResult:
        key = command.idempotency_key
        fingerprint = b""
        if key is not None:
            fingerprint = two_phase.request_hash_of(command)
            replay = self._replay(key, fingerprint)
            if replay is not None:
                return replay
        pending = two_phase.live_pending(self._w.pendings, command.pending_id, self._at_us)
        entry = self._finish_pending(pending, PendingState.VOIDED, 0, command.metadata, key)
        self._remember(key, fingerprint, entry)
        return _applied(entry)

    def _finish_pending(
        self,
        pending: PendingTransfer,
        state: PendingState,
        posted_minor: int,
        metadata: Mapping[str, str],
        key: str | None,
    ) -> JournalEntry:
        legs = self._apply_step(two_phase.release(self._w.balances, pending, posted_minor))
        body = two_phase.finished_body(pending, posted_minor, metadata, key)
        entry = self._append(two_phase.FINISHED_KINDS[state], body, legs)
        self._set_pending(two_phase.finished(pending, state, posted_minor, entry.seq))
        return entry

    def _apply_step(self, step: two_phase.Step) -> tuple[Leg, Leg]:
        """Check a two-phase step against both accounts' bounds and set its balances; return
        the legs of the entry appended next."""
        source, destination, asset = step.source, step.destination, step.asset
        accounts = self._w.accounts
        requested = step.requested_minor
        check_bounds(accounts[source], asset, step.source_old, step.source_new, -requested)
        check_bounds(
            accounts[destination], asset, step.destination_old, step.destination_new, requested
        )
        self._set_balance((source, asset), step.source_new)
        self._set_balance((destination, asset), step.destination_new)
        seq = self._head.seq + 1
        return (
            Leg(seq, source, asset, *step.source_new),
            Leg(seq, destination, asset, *step.destination_new),
        )

    def _set_pending(self, pending: PendingTransfer, *, created: bool = False) -> None:
        self._set(self._w.pendings, pending.id, pending)
        self._pendings_touched.add(pending.id)
        if created:
            self._pendings_created.add(pending.id)

    # --- idempotency ----------------------------------------------------------------------

    def _replay(self, key: str, fingerprint: bytes) -> CommandResult | None:
        record = self._w.idempotency.get(key)
        if record is None:
            return None
        if record.request_hash != fingerprint:
            raise IdempotencyConflict(idempotency_key=key, original_entry_id=record.entry_id)
        return CommandResult("replayed", seq=record.seq)

    def _remember(self, key: str | None, fingerprint: bytes, entry: JournalEntry) -> None:
        if key is None:
            return
        record = IdempotencyRecord(fingerprint, entry.seq, entry.id)
        self._set(self._w.idempotency, key, record)
        self._idempotency.append((key, record))

    # --- the chain and the undo log -------------------------------------------------------

    def _append(
        self, kind: EntryKind, body: dict[str, object], legs: tuple[Leg, ...]
    ) -> JournalEntry:
        head = self._head
        seq = head.seq + 1
        entry_id = self._new_id(self._at_us)
        body["kind"] = kind.value
        body["seq"] = seq
        body["id"] = entry_id
        body["at_us"] = self._at_us
        return self._chain(seq, entry_id, kind, canonical_bytes(body), legs)

    def _append_transfer(
        self,
        postings_json: str,
        metadata: Mapping[str, str],
        key: str | None,
        reverses: str | None,
        legs: tuple[Leg, ...],
    ) -> JournalEntry:
        """A transfer's canonical bytes, written out directly: the same bytes `canonical_bytes`
        gives for its body (tests/core/test_canonical.py holds the two equal), without building
        and sorting a dict per transfer. Addresses, asset codes and ids never need escaping: the
        first two passed their grammars when opened and defined, the last is hex."""
        seq = self._head.seq + 1
        entry_id = self._new_id(self._at_us)
        canonical = (
            f'{{"at_us":{self._at_us},"id":"{entry_id}",'
            f'"idempotency_key":{"null" if key is None else _json_string(key)},'
            f'"kind":"transfer","metadata":{_metadata_json(metadata)},'
            f'"postings":{postings_json},'
            f'{"" if reverses is None else f"{_REVERSES}{_json_string(reverses)},"}'
            f'"seq":{seq}}}'
        ).encode()
        return self._chain(seq, entry_id, EntryKind.TRANSFER, canonical, legs)

    def _chain(
        self, seq: int, entry_id: str, kind: EntryKind, canonical: bytes, legs: tuple[Leg, ...]
    ) -> JournalEntry:
        entry_hash = chain_hash(self._head.hash, canonical)
        entry: JournalEntry = _entry(
            JournalEntry, (seq, entry_id, kind, self._at_us, canonical, entry_hash, legs)
        )
        self._entries.append(entry)
        self._head = _head(ChainHead, (seq, entry_hash, self._at_us))
        return entry

    def _set(self, container: dict[Any, Any], key: Any, value: Any) -> None:
        self._undo.append((container, key, container.get(key)))
        container[key] = value

    def _set_balance(self, key: BalanceKey, value: Balance) -> None:
        balances = self._w.balances
        self._undo.append((balances, key, balances.get(key)))
        balances[key] = value
        self._touched.add(key)

    def _rollback(self, mark: tuple[ChainHead, int, int, int, int, int]) -> None:
        head, entries, assets, accounts, idempotency, reversals = mark
        # The containers never hold None, so None in the log means "was absent".
        for container, key, old in reversed(self._undo):
            if old is None:
                container.pop(key, None)
            else:
                container[key] = old
        self._undo.clear()
        del self._entries[entries:]
        del self._assets[assets:]
        del self._accounts[accounts:]
        del self._idempotency[idempotency:]
        del self._reversals[reversals:]
        self._head = head


def _check_balanced(deltas: dict[BalanceKey, int]) -> None:
    per_asset: dict[str, int] = {}
    for (_, asset), delta in deltas.items():
        per_asset[asset] = per_asset.get(asset, 0) + delta
    invariant(
        all(total == 0 for total in per_asset.values()),
        f"a transaction balances per asset: {per_asset}",
    )


def check_bounds(account: Account, asset: str, old: Balance, new: Balance, delta: int) -> None:
    """Reject a change that would break the account's floor, ceiling or the amount range.

    Only a change that lowers the available balance is held to the floor, and only one that
    raises posted + pending-in to the ceiling: a balance already outside a bound (a credit line
    that was drawn before) can still be brought back towards it.
    """
    floor = account.floor_minor
    available = new.posted - new.pending_out
    if floor is not None and available < floor and available < old.posted - old.pending_out:
        raise InsufficientFunds(
            account=account.address,
            asset=asset,
            available_minor=old.posted - old.pending_out,
            requested_minor=-delta if delta < 0 else 0,
            floor_minor=floor,
        )
    ceiling = account.max_balance_minor
    if ceiling is not None:
        gross = new.posted + new.pending_in
        if gross > ceiling and gross > old.posted + old.pending_in:
            raise BalanceAboveMaximum(
                account=account.address,
                asset=asset,
                balance_minor=old.posted + old.pending_in,
                requested_minor=delta if delta > 0 else 0,
                max_balance_minor=ceiling,
            )
    # In range even if every reservation posts: a pending transfer accepted now can always be
    # posted later.
    if (
        new.posted - new.pending_out < -AMOUNT_MAX_MINOR
        or new.posted + new.pending_in > AMOUNT_MAX_MINOR
        or new.pending_out > AMOUNT_MAX_MINOR
        or new.pending_in > AMOUNT_MAX_MINOR
    ):
        raise BalanceOverflow(account=account.address, asset=asset)


def body_postings(body: Mapping[str, Any]) -> tuple[PostingTuple, ...]:
    """The posted movements of a transfer or pending_posted entry's body, for reversal."""
    kind = body["kind"]
    if kind == EntryKind.TRANSFER:
        return tuple(
            (p["source"], p["destination"], p["asset"], int(p["amount_minor"]))
            for p in body["postings"]
        )
    if kind == EntryKind.PENDING_POSTED:
        posted = int(body["posted_minor"])
        if not posted:
            return ()
        p = body["posting"]
        return ((p["source"], p["destination"], p["asset"], posted),)
    return ()


# Building NamedTuples through tuple.__new__ skips their Python-level __new__: the hot path
# makes several per transfer.
_balance: Any = tuple.__new__
_leg: Any = tuple.__new__
_entry: Any = tuple.__new__
_head: Any = tuple.__new__
_json_string = json.JSONEncoder(ensure_ascii=False).encode
_REVERSES = '"reverses":'


def _applied(entry: JournalEntry) -> CommandResult:
    result: CommandResult = _result(CommandResult, ("applied", entry, None, None, ()))
    return result


_result: Any = tuple.__new__


def _metadata_json(metadata: Mapping[str, str]) -> str:
    return canonical_text(metadata) if metadata else "{}"


def _postings_json(postings: Sequence[Posting]) -> str:
    if len(postings) == 1:
        p = postings[0]
        return (
            f'[{{"amount_minor":{p.amount_minor},"asset":"{p.asset}",'
            f'"destination":"{p.destination}","source":"{p.source}"}}]'
        )
    return "[" + ",".join(
        f'{{"amount_minor":{p.amount_minor},"asset":"{p.asset}",'
        f'"destination":"{p.destination}","source":"{p.source}"}}'
        for p in postings
    ) + "]"
