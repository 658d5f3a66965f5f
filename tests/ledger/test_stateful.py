"""A rule-based state machine drives a Ledger and checks it against a model kept by the test.

The model knows only the documented rules (double entry, floors, ceilings, the amount range,
two-phase transfers, expiry at the next batch, reversals, idempotency, linked batches) and the
facts the engine returns (entry ids and seqs). After every step the store must agree with it.
"""

from __future__ import annotations

import copy
import dataclasses
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

try:
    from tests.conftest import PG_URL, new_pg_schema, require_postgres
except ModuleNotFoundError:  # tests/ is not a package: pytest put tests/ itself on the path
    from conftest import PG_URL, new_pg_schema, require_postgres  # type: ignore[no-redef]
from fundpool.core.clock import ManualClock, Uuid7Ids
from fundpool.core.ledger.engine import CommandResult
from fundpool.core.ledger.model import (
    Account,
    Balance,
    CreatePending,
    DefineAsset,
    Linked,
    OpenAccount,
    PendingState,
    Posting,
    PostPending,
    Reverse,
    SimpleCommand,
    Transfer,
    VoidPending,
)
from fundpool.core.money import AMOUNT_MAX_MINOR, Asset, AssetKind
from fundpool.ledger.ports import LedgerStore
from fundpool.ledger.service import Ledger
from fundpool.ledger.verify import rebuild, verify
from fundpool.stores.sqlite import SqliteStore

MAX = AMOUNT_MAX_MINOR
US = 1_000_000

USD, ETH = "USD", "ETH"
WORLD = "world:bank-a"
AVAILABLE = "pool:main:usd:bank-a:available"
LOCKED = "pool:main:usd:bank-a:locked"
MERCHANT = "merchant:m1:usd:payable"
MULTI = "pool:main:multi:bank-a"
CREDIT = "credit:c1:usd"
CAPPED = "capped:k1:usd"
WALLET = "pool:main:eth:wallet"
UNKNOWN_ACCOUNT = "pool:nobody:usd"
UNKNOWN_ASSET = "XAU"
UNKNOWN_ID = "00000000-0000-7000-8000-00000000beef"

CREDIT_LINE = -50_000
CAP = 100_000

ACCOUNTS = [
    Account(WORLD),
    Account(AVAILABLE, asset=USD),
    Account(LOCKED, asset=USD),
    Account(MERCHANT, asset=USD),
    Account(MULTI),
    Account(CREDIT, asset=USD, min_balance_minor=CREDIT_LINE),
    Account(CAPPED, asset=USD, max_balance_minor=CAP),
    Account(WALLET, asset=ETH),
]
BY_ADDRESS = {account.address: account for account in ACCOUNTS}
ASSETS = [Asset(USD, 2, AssetKind.FIAT), Asset(ETH, 18, AssetKind.CRYPTO)]
ASSET_CODES = {asset.code for asset in ASSETS}
# Every balance key a command in this machine can touch.
ALL_KEYS = [
    (account.address, asset.code)
    for account in ACCOUNTS
    for asset in ASSETS
    if account.asset in (None, asset.code)
]

# World is listed twice so that a good share of the transfers are funded.
assets = st.sampled_from([USD, USD, ETH])
usd_amounts = st.one_of(st.integers(1, 2_000), st.integers(1, 200_000))
eth_amounts = st.one_of(
    st.integers(1, 10**21),
    st.just(MAX),
    st.integers(MAX - 10**6, MAX),
    st.integers(MAX // 2, MAX),
)
metadata = st.dictionaries(
    st.sampled_from(["ref", "note", "batch"]),
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=8),
    max_size=2,
)


def amounts_for(asset: str) -> st.SearchStrategy[int]:
    return eth_amounts if asset == ETH else usd_amounts


@st.composite
def postings(draw: st.DrawFn, *, allow_unknown: bool = True) -> Posting:
    asset = draw(assets)
    if draw(st.integers(0, 9)) == 0:
        # any account, mostly a mismatch for ETH: single-asset accounts are mostly USD
        pool = [WORLD, *[a.address for a in ACCOUNTS[1:]]]
    else:
        holders = [a.address for a in ACCOUNTS if a.asset in (None, asset)]
        pool = [WORLD, WORLD, WORLD, *holders]
    if allow_unknown and draw(st.integers(0, 30)) == 0:
        pool.append(UNKNOWN_ACCOUNT)
    if allow_unknown and draw(st.integers(0, 40)) == 0:
        asset = UNKNOWN_ASSET
    source = draw(st.sampled_from(pool))
    destination = draw(st.sampled_from([a for a in pool if a != source]))
    amount = draw(amounts_for(asset))
    return Posting(source, destination, asset, amount)


# --- the model ------------------------------------------------------------------------------


@dataclass
class MPending:
    source: str
    destination: str
    asset: str
    amount: int
    expires_at_us: int
    state: PendingState = PendingState.PENDING


@dataclass
class MTransaction:
    """A journal entry the model knows the id of. `postings` are the posted movements of a
    reversible entry; None marks an entry that cannot be reversed."""

    postings: tuple[tuple[str, str, str, int], ...] | None
    reversed: bool = False


@dataclass
class Model:
    balances: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    pendings: dict[str, MPending] = field(default_factory=dict)
    transactions: dict[str, MTransaction] = field(default_factory=dict)
    keys: dict[str, tuple[object, int, str]] = field(default_factory=dict)  # fp, seq, id
    seq: int = 0

    def balance(self, key: tuple[str, str]) -> Balance:
        posted, out, inn = self.balances.get(key, [0, 0, 0])
        return Balance(posted, out, inn)

    def set(self, key: tuple[str, str], balance: Balance) -> None:
        self.balances[key] = [balance.posted, balance.pending_out, balance.pending_in]


class Rejected(Exception):
    def __init__(self, codes: set[str]) -> None:
        super().__init__(codes)
        self.codes = codes


def fingerprint(command: SimpleCommand) -> object:
    """What a retry must repeat to be a replay: the kind and every field of the request."""
    if isinstance(command, Transfer):
        return ("transfer", command.postings, tuple(sorted(command.metadata.items())))
    if isinstance(command, CreatePending):
        return (
            "pending",
            command.posting,
            command.timeout_s,
            tuple(sorted(command.metadata.items())),
        )
    if isinstance(command, PostPending):
        return (
            "post",
            command.pending_id,
            command.amount_minor,
            tuple(sorted(command.metadata.items())),
        )
    if isinstance(command, VoidPending):
        return ("void", command.pending_id, tuple(sorted(command.metadata.items())))
    assert isinstance(command, Reverse)
    return ("reverse", command.transaction_id, tuple(sorted(command.metadata.items())))


def bound_errors(address: str, old: Balance, new: Balance) -> set[str]:
    account = BY_ADDRESS[address]
    errors = set()
    floor = account.min_balance_minor
    if floor is None:
        floor = None if account.allow_negative else 0
    if floor is not None and new.available < floor and new.available < old.available:
        errors.add("insufficient_funds")
    ceiling = account.max_balance_minor
    gross_new, gross_old = new.posted + new.pending_in, old.posted + old.pending_in
    if ceiling is not None and gross_new > ceiling and gross_new > gross_old:
        errors.add("balance_above_maximum")
    # in range even if every reservation posts
    if (
        new.available < -MAX
        or new.posted + new.pending_in > MAX
        or new.pending_out > MAX
        or new.pending_in > MAX
    ):
        errors.add("balance_overflow")
    return errors


def leg_errors(address: str, asset: str) -> set[str]:
    account = BY_ADDRESS.get(address)
    if account is None:
        return {"unknown_account"}
    if asset not in ASSET_CODES:
        return {"unknown_asset"}
    if account.asset is not None and account.asset != asset:
        return {"asset_mismatch"}
    return set()


def check_legs(legs: list[tuple[str, str]]) -> None:
    # The engine stops at the first bad leg in posting order; any of them may be named.
    for address, asset in legs:
        errors = leg_errors(address, asset)
        if errors:
            raise Rejected(errors)


def apply_changes(model: Model, changes: dict[tuple[str, str], Balance]) -> None:
    errors: set[str] = set()
    for (address, _asset), new in changes.items():
        errors |= bound_errors(address, model.balance((address, _asset)), new)
    if errors:
        raise Rejected(errors)
    for key, new in changes.items():
        model.set(key, new)


def move(model: Model, movements: tuple[tuple[str, str, str, int], ...]) -> None:
    check_legs([leg for s, d, a, _ in movements for leg in ((s, a), (d, a))])
    deltas: dict[tuple[str, str], int] = {}
    for source, destination, asset, amount in movements:
        deltas[source, asset] = deltas.get((source, asset), 0) - amount
        deltas[destination, asset] = deltas.get((destination, asset), 0) + amount
    changes = {}
    for key, delta in deltas.items():
        old = model.balance(key)
        changes[key] = old._replace(posted=old.posted + delta)
    apply_changes(model, changes)


@dataclass
class Applied:
    """What the model expects of a command it accepted."""

    replay_seq: int | None = None  # a replay returns the original entry's seq
    seq: int = 0  # the seq the new entry must have
    on_entry: Callable[[str, int], None] | None = None  # learns the new entry's id and seq


def model_apply(model: Model, command: SimpleCommand, now_us: int) -> Applied:
    """Apply one command to `model` (in place) or raise Rejected with the acceptable codes."""
    key = command.idempotency_key
    fp = fingerprint(command)
    if key is not None and key in model.keys:
        original_fp, seq, _ = model.keys[key]
        if original_fp != fp:
            raise Rejected({"idempotency_conflict"})
        return Applied(replay_seq=seq)

    new_tx: MTransaction | None = None
    new_pending: MPending | None = None
    if isinstance(command, Transfer):
        movements = tuple(
            (p.source, p.destination, p.asset, p.amount_minor) for p in command.postings
        )
        move(model, movements)
        new_tx = MTransaction(movements)
    elif isinstance(command, CreatePending):
        p = command.posting
        check_legs([(p.source, p.asset), (p.destination, p.asset)])
        source_old = model.balance((p.source, p.asset))
        destination_old = model.balance((p.destination, p.asset))
        apply_changes(
            model,
            {
                (p.source, p.asset): source_old._replace(
                    pending_out=source_old.pending_out + p.amount_minor
                ),
                (p.destination, p.asset): destination_old._replace(
                    pending_in=destination_old.pending_in + p.amount_minor
                ),
            },
        )
        new_pending = MPending(
            p.source, p.destination, p.asset, p.amount_minor, now_us + command.timeout_s * US
        )
        new_tx = MTransaction(None)
    elif isinstance(command, PostPending | VoidPending):
        pending = model.pendings.get(command.pending_id)
        if pending is None:
            raise Rejected({"unknown_pending"})
        if pending.state is PendingState.EXPIRED:
            raise Rejected({"pending_expired"})
        if pending.state is not PendingState.PENDING:
            raise Rejected({"pending_already_finished"})
        assert pending.expires_at_us > now_us, "the model expires due pendings first"
        posted = 0
        if isinstance(command, PostPending):
            posted = pending.amount if command.amount_minor is None else command.amount_minor
            if posted > pending.amount:
                raise Rejected({"post_exceeds_pending"})
        finish(model, pending, posted)
        pending.state = (
            PendingState.POSTED if isinstance(command, PostPending) else PendingState.VOIDED
        )
        movements = ((pending.source, pending.destination, pending.asset, posted),)
        new_tx = MTransaction(movements if posted else None)
    else:
        original = model.transactions.get(command.transaction_id)
        if original is None:
            raise Rejected({"unknown_transaction"})
        if original.postings is None:
            raise Rejected({"not_reversible"})
        if original.reversed:
            raise Rejected({"already_reversed"})
        undo = tuple((d, s, a, m) for s, d, a, m in original.postings)
        move(model, undo)
        original.reversed = True
        new_tx = MTransaction(undo)

    def on_entry(entry_id: str, seq: int) -> None:
        model.transactions[entry_id] = new_tx
        if new_pending is not None:
            model.pendings[entry_id] = new_pending
        if key is not None:
            model.keys[key] = (fp, seq, entry_id)

    model.seq += 1
    return Applied(seq=model.seq, on_entry=on_entry)


def finish(model: Model, pending: MPending, posted: int) -> None:
    """Release a reservation and move `posted` of it. Raises Rejected only on overflow."""
    source_key = (pending.source, pending.asset)
    destination_key = (pending.destination, pending.asset)
    source_old = model.balance(source_key)
    destination_old = model.balance(destination_key)
    apply_changes(
        model,
        {
            source_key: Balance(
                source_old.posted - posted,
                source_old.pending_out - pending.amount,
                source_old.pending_in,
            ),
            destination_key: Balance(
                destination_old.posted + posted,
                destination_old.pending_out,
                destination_old.pending_in - pending.amount,
            ),
        },
    )


def model_expire(model: Model, now_us: int) -> int:
    due = [
        p
        for p in model.pendings.values()
        if p.state is PendingState.PENDING and p.expires_at_us <= now_us
    ]
    for pending in due:
        finish(model, pending, 0)
        pending.state = PendingState.EXPIRED
        model.seq += 1
    return len(due)


# --- the machine ----------------------------------------------------------------------------


class LedgerMachine(RuleBasedStateMachine):
    """Drives one ledger on a fresh store per example."""

    # Set on a subclass: give every balance key a stored row before the rules run.
    seed_every_balance_row = False

    def __init__(self) -> None:
        super().__init__()
        self.store = self.make_store()
        self.clock = ManualClock()
        self.ledger = Ledger(self.store, self.clock, Uuid7Ids.seeded(11))
        self.model = Model()
        self.steps = 0
        self.key_counter = 0
        # (key, command) of every applied command that carried an idempotency key
        self.keyed: list[tuple[str, SimpleCommand]] = []

    # --- store lifecycle (overridden for PostgreSQL) ------------------------------------

    def make_store(self) -> LedgerStore:
        self.tmp = tempfile.mkdtemp(prefix="fundpool-machine-")
        store = SqliteStore(Path(self.tmp) / "ledger.sqlite3")
        store.initialise()
        return store

    def drop_store(self) -> None:
        self.store.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def teardown(self) -> None:
        try:
            if self.steps:
                self.check_everything(full=True)
        finally:
            self.drop_store()

    # --- helpers ------------------------------------------------------------------------

    def new_key(self) -> str:
        self.key_counter += 1
        return f"k{self.key_counter}"

    def submit(self, commands: list[Any]) -> list[CommandResult]:
        """Submit a batch; check each result against the model, applied in the same order."""
        now = self.clock.now_us()
        model = self.model
        model_expire(model, now)
        results = self.ledger.submit(commands)
        assert len(results) == len(commands)
        for command, result in zip(commands, results, strict=True):
            self.check_result(command, result, now)
        return results

    def check_result(self, command: Any, result: CommandResult, now: int) -> None:
        if isinstance(command, Linked):
            scratch = copy.deepcopy(self.model)
            expected: list[Applied] = []
            failure: set[str] | None = None
            for member in command.commands:
                try:
                    expected.append(model_apply(scratch, member, now))
                except Rejected as rejected:
                    failure = rejected.codes
                    break
            if failure is not None:
                assert result.status == "rejected", (command, result)
                assert result.error is not None
                assert result.error.code == "linked_batch_failed"
                assert result.error.facts["failed_code"] in failure, (failure, result.error)
                return
            assert result.status == "applied", (command, result)
            assert len(result.members) == len(command.commands)
            self.model = scratch
            for member, applied, member_result in zip(
                command.commands, expected, result.members, strict=True
            ):
                self.check_applied(member, applied, member_result)
            return
        scratch = copy.deepcopy(self.model)
        codes: set[str] | None = None
        try:
            applied = model_apply(scratch, command, now)
        except Rejected as rejected:
            codes = rejected.codes
        if codes is not None:
            assert result.status == "rejected", (command, result, codes)
            assert result.error is not None
            assert result.error.code in codes, (command, result.error, codes)
            return
        self.model = scratch
        self.check_applied(command, applied, result)

    def check_applied(
        self, command: SimpleCommand, applied: Applied, result: CommandResult
    ) -> None:
        if applied.replay_seq is not None:
            assert result.status == "replayed", (command, result)
            assert result.seq == applied.replay_seq
            assert result.entry is None
            return
        assert result.status == "applied", (command, result)
        assert result.entry is not None
        assert result.entry.seq == applied.seq
        assert applied.on_entry is not None
        applied.on_entry(result.entry.id, result.entry.seq)
        if command.idempotency_key is not None:
            self.keyed.append((command.idempotency_key, command))

    def pick(self, data: st.DataObject, items: list[Any]) -> Any:
        return items[data.draw(st.integers(0, len(items) - 1))]

    def pick_pending(self, data: st.DataObject) -> str:
        """Mostly a live pending transfer, sometimes a finished or an unknown one."""
        pendings = self.model.pendings
        if not pendings or data.draw(st.integers(0, 9)) == 0:
            return UNKNOWN_ID
        live = sorted(i for i, p in pendings.items() if p.state is PendingState.PENDING)
        if live and data.draw(st.integers(0, 3)):
            return self.pick(data, live)
        return self.pick(data, sorted(pendings))

    def pick_transaction(self, data: st.DataObject) -> str:
        """Mostly a reversible transaction not reversed yet, sometimes any entry or none."""
        transactions = self.model.transactions
        if data.draw(st.integers(0, 9)) == 0:
            return UNKNOWN_ID
        reversible = sorted(
            i for i, t in transactions.items() if t.postings is not None and not t.reversed
        )
        if reversible and data.draw(st.integers(0, 3)):
            return self.pick(data, reversible)
        return self.pick(data, sorted(transactions))

    # --- setup --------------------------------------------------------------------------

    @initialize()
    def open_the_ledger(self) -> None:
        commands: list[Any] = [DefineAsset(asset) for asset in ASSETS]
        commands += [OpenAccount(account) for account in ACCOUNTS]
        results = self.ledger.submit(commands)
        assert all(r.status == "applied" for r in results)
        self.model.seq = len(commands)
        for result in results:
            assert result.entry is not None
            self.model.transactions[result.entry.id] = MTransaction(None)
        if self.seed_every_balance_row:
            seeds: list[Any] = []
            for address, asset in ALL_KEYS:
                if address == WORLD:
                    continue
                seeds.append(Transfer((Posting(WORLD, address, asset, 1),)))
                seeds.append(Transfer((Posting(address, WORLD, asset, 1),)))
            self.submit(seeds)
            stored = self.store.balances()
            assert set(ALL_KEYS) <= set(stored)

    # --- rules --------------------------------------------------------------------------

    @rule(
        posting=postings(),
        meta=metadata,
        keyed=st.booleans(),
    )
    def transfer(self, posting: Posting, meta: dict[str, str], keyed: bool) -> None:
        key = self.new_key() if keyed else None
        self.submit([Transfer((posting,), meta, key)])

    @rule(many=st.lists(postings(), min_size=2, max_size=4), keyed=st.booleans())
    def multi_posting_transfer(self, many: list[Posting], keyed: bool) -> None:
        self.submit([Transfer(tuple(many), {}, self.new_key() if keyed else None)])

    @rule(data=st.data())
    def overdraw_on_purpose(self, data: st.DataObject) -> None:
        source = data.draw(st.sampled_from([AVAILABLE, LOCKED, MERCHANT, CREDIT, CAPPED]))
        destination = data.draw(
            st.sampled_from([a for a in (AVAILABLE, MERCHANT, WORLD) if a != source])
        )
        available = self.model.balance((source, USD)).available
        floor = BY_ADDRESS[source].min_balance_minor or 0
        amount = max(available - floor, 0) + data.draw(st.integers(1, 1_000))
        self.submit([Transfer((Posting(source, destination, USD, amount),))])

    @rule(data=st.data())
    def fill_the_capped_account(self, data: st.DataObject) -> None:
        gross = self.model.balance((CAPPED, USD))
        room = CAP - gross.posted - gross.pending_in
        amount = max(room, 0) + data.draw(st.integers(-5, 5))
        if amount > 0:
            self.submit([Transfer((Posting(WORLD, CAPPED, USD, amount),))])

    @rule(posting=postings(), timeout=st.integers(1, 120), keyed=st.booleans())
    def create_pending(self, posting: Posting, timeout: int, keyed: bool) -> None:
        self.submit([CreatePending(posting, timeout, {}, self.new_key() if keyed else None)])

    @rule(data=st.data(), how=st.sampled_from(["full", "part", "zero", "over", "exact"]))
    def post_pending(self, data: st.DataObject, how: str) -> None:
        pending_id = self.pick_pending(data)
        pending = self.model.pendings.get(pending_id)
        amount_minor = 1 if pending is None else pending.amount
        amount: int | None
        if how == "full":
            amount = None
        elif how == "exact":
            amount = amount_minor
        elif how == "part":
            amount = data.draw(st.integers(0, amount_minor))
        elif how == "zero":
            amount = 0
        else:
            amount = amount_minor + data.draw(st.integers(1, 10))
            if amount > MAX:
                amount = None
        keyed = data.draw(st.booleans())
        self.submit([PostPending(pending_id, amount, {}, self.new_key() if keyed else None)])

    @rule(data=st.data())
    def void_pending(self, data: st.DataObject) -> None:
        pending_id = self.pick_pending(data)
        keyed = data.draw(st.booleans())
        self.submit([VoidPending(pending_id, {}, self.new_key() if keyed else None)])

    @rule(
        data=st.data(),
        then=st.sampled_from(["full", "part", "over", "void", "late", "expire"]),
        timeout=st.integers(1, 120),
    )
    def reserve_then_finish(self, data: st.DataObject, then: str, timeout: int) -> None:
        """A funded reservation, finished right away, later, or after its expiry."""
        asset = data.draw(assets)
        holders = [a.address for a in ACCOUNTS[1:] if a.asset in (None, asset)]
        destination = data.draw(st.sampled_from(holders))
        amount = data.draw(amounts_for(asset))
        source = WORLD
        if asset == USD and data.draw(st.booleans()):
            funded = [
                a
                for a in holders
                if a != destination and self.model.balance((a, USD)).available >= amount
            ]
            if funded:
                source = data.draw(st.sampled_from(funded))
        posting = Posting(source, destination, asset, amount)
        (result,) = self.submit([CreatePending(posting, timeout)])
        if result.entry is None:
            return
        pending_id = result.entry.id
        if then in {"late", "expire"}:
            seconds = timeout + data.draw(st.integers(0, 3)) if then == "expire" else timeout - 1
            self.clock.advance(seconds=seconds)
        if then == "void":
            self.submit([VoidPending(pending_id)])
        elif then == "part":
            self.submit([PostPending(pending_id, data.draw(st.integers(0, amount)))])
        elif then == "over":
            self.submit([PostPending(pending_id, min(amount + 1, MAX))])
        else:
            self.submit([PostPending(pending_id)])

    @rule(seconds=st.one_of(st.integers(0, 5), st.integers(5, 150)), expire=st.booleans())
    def advance_the_clock(self, seconds: int, expire: bool) -> None:
        self.clock.advance(seconds=seconds)
        if expire:
            now = self.clock.now_us()
            expected = model_expire(self.model, now)
            assert self.ledger.expire_due() == expected

    @rule(data=st.data(), twice=st.booleans())
    def reverse(self, data: st.DataObject, twice: bool) -> None:
        transaction_id = self.pick_transaction(data)
        keyed = data.draw(st.booleans())
        self.submit([Reverse(transaction_id, {}, self.new_key() if keyed else None)])
        if twice:
            self.submit([Reverse(transaction_id)])

    @rule(members=st.lists(postings(allow_unknown=False), min_size=1, max_size=3), data=st.data())
    def linked_batch(self, members: list[Posting], data: st.DataObject) -> None:
        commands: list[SimpleCommand] = [Transfer((p,)) for p in members]
        if data.draw(st.booleans()):
            commands.append(CreatePending(data.draw(postings(allow_unknown=False)), 60))
        self.submit([Linked(tuple(commands))])

    @rule(
        members=st.lists(postings(allow_unknown=False), min_size=1, max_size=3),
        bad=st.sampled_from(
            ["unknown_account", "unknown_asset", "overdraw", "unknown_pending", "mismatch"]
        ),
        data=st.data(),
    )
    def linked_batch_with_a_failing_member(
        self, members: list[Posting], bad: str, data: st.DataObject
    ) -> None:
        commands: list[SimpleCommand] = [
            Transfer((p,), {}, self.new_key() if data.draw(st.booleans()) else None)
            for p in members
        ]
        if bad == "unknown_account":
            failing: SimpleCommand = Transfer((Posting(WORLD, UNKNOWN_ACCOUNT, USD, 1),))
        elif bad == "unknown_asset":
            failing = Transfer((Posting(WORLD, MULTI, UNKNOWN_ASSET, 1),))
        elif bad == "mismatch":
            failing = Transfer((Posting(WORLD, WALLET, USD, 1),))
        elif bad == "unknown_pending":
            failing = VoidPending("00000000-0000-7000-8000-00000000dead")
        else:
            failing = Transfer((Posting(MERCHANT, LOCKED, USD, 10**15),))
        commands.insert(data.draw(st.integers(0, len(commands))), failing)
        before_seq = self.store.head().seq
        before = self.store.balances()
        self.submit([Linked(tuple(commands))])
        # a batch of only the linked group: nothing but due expiries may have been written
        expired = self.store.head().seq - before_seq
        if expired == 0:
            assert self.store.balances() == before

    @rule(data=st.data())
    def several_commands_in_one_batch(self, data: st.DataObject) -> None:
        commands: list[Any] = [
            Transfer((p,)) for p in data.draw(st.lists(postings(), min_size=2, max_size=5))
        ]
        if self.model.pendings and data.draw(st.booleans()):
            commands.append(VoidPending(self.pick_pending(data)))
        self.submit(commands)

    @precondition(lambda self: self.keyed)
    @rule(data=st.data(), via_execute=st.booleans())
    def retry_with_the_same_body(self, data: st.DataObject, via_execute: bool) -> None:
        key, command = self.pick(data, self.keyed)
        _, seq, entry_id = self.model.keys[key]
        if via_execute:
            now = self.clock.now_us()
            model_expire(self.model, now)
            recorded = self.ledger.execute(command)
            assert recorded is not None
            assert recorded.replayed
            assert (recorded.seq, recorded.id) == (seq, entry_id)
            assert self.store.head().seq == self.model.seq
        else:
            (result,) = self.submit([command])
            assert result.status == "replayed"

    @precondition(lambda self: self.keyed)
    @rule(data=st.data(), change=st.sampled_from(["metadata", "kind", "amount"]))
    def retry_with_another_body(self, data: st.DataObject, change: str) -> None:
        key, command = self.pick(data, self.keyed)
        other: SimpleCommand
        if change == "metadata":
            other = _with_metadata(command, {"retry": "different"})
        elif change == "kind":
            other = (
                VoidPending("00000000-0000-7000-8000-000000000001", {}, key)
                if not isinstance(command, VoidPending)
                else Reverse("00000000-0000-7000-8000-000000000001", {}, key)
            )
        else:
            other = Transfer((Posting(WORLD, MULTI, USD, 3),), {}, key)
            if isinstance(command, Transfer) and command.postings == other.postings:
                other = Transfer((Posting(WORLD, MULTI, USD, 4),), {}, key)
        before_seq = self.store.head().seq
        before = self.store.balances()
        (result,) = self.submit([other])
        assert result.status == "rejected"
        assert result.error is not None
        assert result.error.code == "idempotency_conflict"
        if self.store.head().seq == before_seq:
            assert self.store.balances() == before

    # --- checks -------------------------------------------------------------------------

    @invariant()
    def agrees_with_the_model(self) -> None:
        if not hasattr(self, "store"):
            return
        self.steps += 1
        self.check_everything(full=True)

    def check_everything(self, *, full: bool) -> None:
        model = self.model
        stored = self.store.balances()
        assert self.store.head().seq == model.seq
        for key in set(stored) | set(model.balances):
            assert stored.get(key, Balance()) == model.balance(key), key
        posted: dict[str, int] = {}
        out: dict[str, int] = {}
        inn: dict[str, int] = {}
        for (address, asset), balance in stored.items():
            posted[asset] = posted.get(asset, 0) + balance.posted
            out[asset] = out.get(asset, 0) + balance.pending_out
            inn[asset] = inn.get(asset, 0) + balance.pending_in
            account = BY_ADDRESS[address]
            assert balance.pending_out >= 0
            assert balance.pending_in >= 0
            assert abs(balance.posted) <= MAX
            # every reservation can post without leaving the representable range
            assert balance.available >= -MAX
            assert balance.posted + balance.pending_in <= MAX
            if account.min_balance_minor is not None:
                assert balance.available >= account.min_balance_minor, (address, balance)
            elif not account.allow_negative:
                assert balance.available >= 0, (address, balance)
            if account.max_balance_minor is not None:
                assert balance.posted + balance.pending_in <= account.max_balance_minor
        assert all(total == 0 for total in posted.values()), posted
        assert out == inn
        pendings = {p.id: p.state for p in self.store.pendings()}
        assert pendings == {pid: p.state for pid, p in model.pendings.items()}
        if full:
            report = verify(self.store)
            assert report.ok, report.problem
            assert report.head_seq == model.seq
            assert rebuild(self.store).differences == ()


def _with_metadata(command: SimpleCommand, meta: dict[str, str]) -> SimpleCommand:
    return dataclasses.replace(command, metadata=meta)  # type: ignore[type-var]


class SeededLedgerMachine(LedgerMachine):
    """The same machine with a stored balance row for every key before the rules run."""

    seed_every_balance_row = True


class PostgresLedgerMachine(LedgerMachine):
    def make_store(self) -> LedgerStore:
        from fundpool.stores.postgres import PostgresStore

        store = PostgresStore(PG_URL, schema=new_pg_schema())
        store.initialise()
        return store

    def drop_store(self) -> None:
        self.store.drop_schema()  # type: ignore[attr-defined]
        self.store.close()


MACHINE_SETTINGS = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.filter_too_much],
    "stateful_step_count": 30,
}


def test_ledger_machine_sqlite() -> None:
    run_state_machine_as_test(
        LedgerMachine, settings=settings(max_examples=60, **MACHINE_SETTINGS)
    )


def test_seeded_ledger_machine_sqlite() -> None:
    run_state_machine_as_test(
        SeededLedgerMachine, settings=settings(max_examples=100, **MACHINE_SETTINGS)
    )


@pytest.mark.postgres
def test_ledger_machine_postgres() -> None:
    require_postgres()
    run_state_machine_as_test(
        PostgresLedgerMachine, settings=settings(max_examples=15, **MACHINE_SETTINGS)
    )
