"""`verify` and `rebuild`: check a stored ledger against its own journal.

verify walks the journal in seq order and, for each entry: checks that seq follows its
predecessor with no gap, recomputes `sha256(prev_hash || canonical)` and compares it with the
stored hash, checks that the row's columns say what its canonical bytes say, folds the entry into
a replay and compares the stored legs with the replayed balances. At the end it compares the
balance and pending tables with the replay. The first problem found is reported with its entry.

What it cannot see: someone with write access who rewrites the whole chain from some entry on.
Record the head hash it prints somewhere outside the store to close that gap (docs/adr/0003).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass

from fundpool.core.ledger.canonical import chain_hash, decode_body
from fundpool.core.ledger.engine import BalanceKey
from fundpool.core.ledger.model import GENESIS_HASH, Balance
from fundpool.core.ledger.replay import ReplayError, ReplayState
from fundpool.ledger.ports import LedgerStore, StoredEntry, StoredLeg


@dataclass(frozen=True, slots=True)
class Problem:
    seq: int
    entry_id: str | None
    reason: str

    def __str__(self) -> str:
        entry = f" ({self.entry_id})" if self.entry_id else ""
        return f"entry {self.seq}{entry}: {self.reason}"


@dataclass(frozen=True, slots=True)
class VerifyReport:
    ok: bool
    entries: int
    head_seq: int
    head_hash: str
    problem: Problem | None

    def to_dict(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "entries": self.entries,
            "head_seq": self.head_seq,
            "head_hash": self.head_hash,
            "problem": None
            if self.problem is None
            else {
                "seq": self.problem.seq,
                "entry_id": self.problem.entry_id,
                "reason": self.problem.reason,
            },
        }


@dataclass(frozen=True, slots=True)
class BalanceDifference:
    address: str
    asset: str
    stored: Balance | None
    replayed: Balance


@dataclass(frozen=True, slots=True)
class RebuildReport:
    verify: VerifyReport
    balances: dict[BalanceKey, Balance]
    differences: tuple[BalanceDifference, ...]
    written: bool


def replay_journal(
    store: LedgerStore, last_touch: dict[BalanceKey, tuple[int, str]] | None = None
) -> tuple[ReplayState, VerifyReport]:
    """Fold the whole journal, checking the chain and the legs on the way. `last_touch`, when
    given, receives the last entry (seq, id) that changed each balance."""
    state = ReplayState()
    # The last entry that passed every check: its seq and hash move together, never apart.
    # state.seq is not it: the replay has already moved on to an entry whose legs disagree or
    # that cannot be replayed.
    head_seq, prev_hash = 0, GENESIS_HASH
    count = 0
    legs = _legs_by_seq(store.legs())
    pending_legs: tuple[int, list[StoredLeg]] | None = next(legs, None)

    def report(problem: Problem | None) -> tuple[ReplayState, VerifyReport]:
        return state, VerifyReport(
            ok=problem is None,
            entries=count,
            head_seq=head_seq,
            head_hash=prev_hash.hex(),
            problem=problem,
        )

    for stored in store.entries():
        problem = _check_entry(stored, state.seq + 1, prev_hash)
        if problem is not None:
            return report(problem)
        body = decode_body(stored.canonical)
        try:
            changed = state.apply(body)
        except ReplayError as error:
            return report(Problem(stored.seq, stored.id, f"entry cannot be replayed: {error}"))
        stored_legs: list[StoredLeg] = []
        while pending_legs is not None and pending_legs[0] <= stored.seq:
            if pending_legs[0] < stored.seq:
                return report(
                    Problem(pending_legs[0], None, "legs exist for an entry the journal lacks")
                )
            stored_legs = pending_legs[1]
            pending_legs = next(legs, None)
        found = {(leg.address, leg.asset): leg.balance for leg in stored_legs}
        if found != changed:
            return report(Problem(stored.seq, stored.id, _legs_difference(found, changed)))
        if last_touch is not None:
            for key in changed:
                last_touch[key] = (stored.seq, stored.id)
        head_seq, prev_hash = stored.seq, stored.hash
        count += 1
    if pending_legs is not None:
        return report(Problem(pending_legs[0], None, "legs exist past the end of the journal"))
    return report(None)


def verify(store: LedgerStore) -> VerifyReport:
    last_touch: dict[BalanceKey, tuple[int, str]] = {}
    state, report = replay_journal(store, last_touch)
    if not report.ok:
        return report
    stored_balances = store.balances()
    replayed = {key: value for key, value in state.balances.items() if value != Balance()}
    stored_nonzero = {key: value for key, value in stored_balances.items() if value != Balance()}
    if stored_nonzero != replayed:
        key = _first_difference(stored_nonzero, replayed)
        seq, entry_id = last_touch.get(key, (report.head_seq, None))
        return _fail(
            report,
            f"balance table disagrees with the journal for {key[0]} in {key[1]}: stored "
            f"{stored_nonzero.get(key)}, journal {replayed.get(key)} (last changed by this entry)",
            seq,
            entry_id,
        )
    stored_pendings = {p.id: p for p in store.pendings()}
    if stored_pendings != state.pendings:
        ids = sorted(stored_pendings.keys() ^ state.pendings.keys()) or sorted(
            pid for pid in stored_pendings if stored_pendings[pid] != state.pendings.get(pid)
        )
        created = state.pendings.get(ids[0])
        return _fail(
            report,
            f"pending table disagrees with the journal for pending transfer {ids[0]}",
            created.finished_seq or created.created_seq if created else report.head_seq,
            ids[0],
        )
    return report


def rebuild(store: LedgerStore, *, write: bool = False) -> RebuildReport:
    """Rebuild balances from the journal; compare them with the table; rewrite it if asked and
    only if the journal itself verifies."""
    state, report = replay_journal(store)
    stored = store.balances()
    differences = tuple(
        BalanceDifference(address, asset, stored.get((address, asset)), balance)
        for (address, asset), balance in sorted(state.balances.items())
        if stored.get((address, asset), Balance()) != balance
    ) + tuple(
        BalanceDifference(address, asset, balance, Balance())
        for (address, asset), balance in sorted(stored.items())
        if (address, asset) not in state.balances and balance != Balance()
    )
    written = False
    if write and report.ok and differences:
        store.replace_balances(state.balances)
        written = True
    return RebuildReport(report, state.balances, differences, written)


def _check_entry(stored: StoredEntry, expected_seq: int, prev_hash: bytes) -> Problem | None:
    if stored.seq != expected_seq:
        return Problem(
            expected_seq,
            None,
            f"entry is missing: the journal jumps from {expected_seq - 1} to {stored.seq}",
        )
    if chain_hash(prev_hash, stored.canonical) != stored.hash:
        return Problem(
            stored.seq,
            stored.id,
            "hash does not match sha256(previous hash || canonical bytes): "
            "this entry or the one before it was edited, inserted or moved",
        )
    try:
        body = decode_body(stored.canonical)
    except ValueError as error:
        return Problem(stored.seq, stored.id, f"canonical bytes are not an entry: {error}")
    columns = {"seq": stored.seq, "id": stored.id, "kind": stored.kind, "at_us": stored.at_us}
    for name, value in columns.items():
        if body.get(name) != value:
            return Problem(
                stored.seq,
                stored.id,
                f"column {name} ({value!r}) differs from the signed body ({body.get(name)!r})",
            )
    return None


def _legs_by_seq(legs: Iterator[StoredLeg]) -> Iterator[tuple[int, list[StoredLeg]]]:
    for seq, group in itertools.groupby(legs, key=lambda leg: leg.seq):
        yield seq, list(group)


def _legs_difference(found: dict[BalanceKey, Balance], expected: dict[BalanceKey, Balance]) -> str:
    for key in sorted(found.keys() | expected.keys()):
        if found.get(key) != expected.get(key):
            return (
                f"stored leg for {key[0]} in {key[1]} is {found.get(key)}, "
                f"the journal gives {expected.get(key)}"
            )
    return "legs differ"


def _first_difference(
    stored: dict[BalanceKey, Balance], replayed: dict[BalanceKey, Balance]
) -> BalanceKey:
    return next(
        key for key in sorted(stored.keys() | replayed.keys())
        if stored.get(key) != replayed.get(key)
    )


def _fail(report: VerifyReport, reason: str, seq: int, entry_id: str | None) -> VerifyReport:
    return VerifyReport(
        ok=False,
        entries=report.entries,
        head_seq=report.head_seq,
        head_hash=report.head_hash,
        problem=Problem(seq, entry_id, reason),
    )
