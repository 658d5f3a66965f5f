"""What the reconciliation service needs: its store (stores/reconciliation_sql.py), the
payments' boundary steps (the payment store's `channel_moves`) and the ledger (`Books`: an
adjustment booked through the ledger's own adjustment rules, and a channel's balance at an
instant). The composition root hands them over."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from fundpool.core.actor import Actor
from fundpool.recon.model import Side
from fundpool.reconciliation.model import (
    ActionRecord,
    Expected,
    ExpectedState,
    FileRecord,
    MatchRow,
    Resolution,
    State,
    StateRow,
    StoredLine,
    StoredStatement,
)


class Books(Protocol):
    def book(self, *, source: str, destination: str, asset: str, amount_minor: int,
             reason: str, actor: Actor, idempotency_key: str) -> str:
        """Post one adjustment (ledger/adjustments.py: kind, reason and actor in the entry's
        metadata); the entry's id."""
        ...

    def channel_total(self, pool: str, channel: str, asset: str, at_us: int) -> int:
        """The channel's total (available + locked + in transit + pending settlement) of
        `asset` after every entry made at or before `at_us`."""
        ...


class ReconStore(Protocol):
    # --- imports ---
    def imported(self, pool: str, channel: str, sha256: str) -> FileRecord | None: ...

    def known_statements(self, pool: str, channel: str,
                         keys: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
        """Of these (account, bank statement id), the ones already imported."""
        ...

    def add_file(self, record: FileRecord, statements: Sequence[StoredStatement],
                 lines: Sequence[StoredLine], action: ActionRecord) -> None:
        """All of it in one transaction, or nothing (`duplicate_statement` if another
        import took the same file or statement meanwhile)."""
        ...

    def files(self, pool: str, channel: str | None, limit: int) -> list[FileRecord]: ...

    def statements(self, pool: str, channel: str | None, limit: int) -> list[StoredStatement]:
        """Newest period first."""
        ...

    def statement(self, statement_id: str) -> StoredStatement | None: ...

    def lines(self, statement_id: str) -> list[StoredLine]: ...

    def lines_by_id(self, ids: Sequence[str]) -> dict[str, StoredLine]: ...

    def open_lines(self, pool: str, channel: str) -> list[StoredLine]:
        """Lines with no state yet, or ambiguous or a break."""
        ...

    # --- runs and states ---
    def final_items(self, pool: str, ids: Sequence[str]) -> set[str]: ...

    def open_items(self, pool: str, channel: str) -> list[StateRow]: ...

    def save_run(self, matches: Sequence[MatchRow], states: Sequence[StateRow],
                 expected: Sequence[tuple[str, str, int]], action: ActionRecord) -> None:
        """New matches, the states of every line and item of the run (replacing theirs),
        and (expected id, credit id, at) for expected payments matched, in one
        transaction."""
        ...

    def states(self, pool: str, *, channel: str | None = None, states: Sequence[State] = (),
               side: Side | None = None, limit: int = 1_000) -> list[StateRow]:
        """Oldest first (by the line's or item's date)."""
        ...

    def state_counts(self, pool: str, channel: str | None) -> dict[tuple[str, str, str], int]:
        """(channel, side, state) → how many."""
        ...

    def states_of(self, pool: str, ids: Sequence[tuple[Side, str]]) -> dict[tuple[Side, str],
                                                                           StateRow]: ...

    def states_of_payment(self, payment_id: str) -> list[StateRow]: ...

    def match(self, match_id: str) -> MatchRow | None: ...

    # --- resolutions ---
    def resolve(self, resolution: Resolution, states: Sequence[StateRow],
                match: MatchRow | None, action: ActionRecord) -> None: ...

    def resolutions(self, pool: str, channel: str | None, limit: int) -> list[Resolution]: ...

    def booked(self, pool: str, channel: str, since_us: int, until_us: int) -> list[Resolution]:
        """Resolutions that booked an adjustment, made in [since_us, until_us)."""
        ...

    def booked_for(self, line_ids: Sequence[str]) -> list[Resolution]:
        """Booked resolutions whose target (or matched component) is one of these lines."""
        ...

    # --- expected payments ---
    def add_expected(self, expected: Expected, action: ActionRecord) -> None: ...

    def expected(self, pool: str, *, channel: str | None = None,
                 state: ExpectedState | None = None, limit: int = 1_000) -> list[Expected]: ...

    def cancel_expected(self, expected_id: str, at_us: int, action: ActionRecord) -> bool: ...

    # --- CSV column mappings ---
    def save_mapping(self, name: str, text: str, at_us: int, actor: Actor,
                     action: ActionRecord) -> None: ...

    def mapping(self, name: str) -> str | None: ...

    def mappings(self) -> list[tuple[str, str, int]]: ...

    # --- the audit trail ---
    def actions(self, after_id: int, limit: int) -> list[tuple[int, ActionRecord]]: ...
