"""What risk control needs from a store: its tables, read committed or written inside the
payment engine's (or the service's own) ledger transaction, so a decision, the payment step it
caused and the case it opened commit together or not at all."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Protocol

from fundpool.core.actor import Actor
from fundpool.ledger.ports import WriteSession
from fundpool.risk.records import (
    CaseNote,
    CaseRecord,
    Cleared,
    DecisionRecord,
    ListRecord,
    PartyRecord,
    PastPayment,
    PolicyVersion,
    ResponseRecord,
)
from fundpool.risk.rings import Payout

REVISION_KINDS = ("policy", "lists", "cleared", "parties", "limits")


class RiskWrites(Protocol):
    """The risk tables inside one write transaction."""

    def revisions(self) -> dict[str, int]:
        """The revision of each kind (REVISION_KINDS): bumped by every change to it."""
        ...

    def bump(self, kind: str) -> None: ...

    def active_policy(self) -> PolicyVersion | None: ...

    def policy(self, version: int) -> PolicyVersion | None: ...

    def add_policy(self, policy: PolicyVersion) -> None: ...

    def next_policy_version(self) -> int: ...

    def set_policy_state(self, version: int, state: str, at_us: int | None,
                         actor: Actor | None) -> None: ...

    def add_decisions(self, decisions: Sequence[DecisionRecord]) -> None: ...

    def decided(self, payment_ids: Sequence[str]) -> set[str]:
        """Which of these payments have a decision."""
        ...

    def add_cases(self, cases: Sequence[CaseRecord], notes: Sequence[CaseNote]) -> None: ...

    def case(self, case_id: str) -> CaseRecord | None: ...

    def open_case_of(self, payment_id: str) -> CaseRecord | None: ...

    def update_case(self, case: CaseRecord, expected_version: int) -> bool:
        """Write `case` if the stored one is still at `expected_version`."""
        ...

    def add_note(self, note: CaseNote) -> None: ...

    def next_note_seq(self, case_id: str) -> int: ...

    def put_list(self, record: ListRecord, content: bytes) -> None: ...

    def add_cleared(self, cleared: Cleared) -> None: ...

    def put_party(self, party: PartyRecord) -> None: ...

    def add_responses(self, responses: Sequence[ResponseRecord]) -> None: ...

    def end_limit(self, response_id: str, at_us: int, actor: Actor, note: str) -> bool:
        """End a lowered limit now, by `actor` with `note`; False when there is no such
        limit in force."""
        ...

    def rejected_after(self, pool: str, after: tuple[int, str], limit: int
                       ) -> list[tuple[int, str, str, str, int]]:
        """(decided at, case id, payee, asset, amount) of the payouts whose case a risk
        officer rejected after (decided at, case id) `after`, in that order."""
        ...

    def decided_after(self, pool: str, after: tuple[int, str], limit: int
                      ) -> list[PastPayment]:
        """The pool's payments decided after (decision time, payment id) `after`, in that
        order, each with its decision: what other processes decided since."""
        ...


class RiskStore(Protocol):
    def writes(self, session: WriteSession) -> RiskWrites: ...

    def ensure(self) -> None:
        """Create the tables if the database has none yet, or check their version."""
        ...

    # --- reads (committed state) ---

    def revisions(self) -> dict[str, int]: ...

    def active_policy(self) -> PolicyVersion | None: ...

    def policy(self, version: int) -> PolicyVersion | None: ...

    def policies(self) -> list[PolicyVersion]: ...

    def decision(self, payment_id: str) -> DecisionRecord | None: ...

    def decisions(self, payment_ids: Iterable[str]) -> dict[str, DecisionRecord]:
        """The decisions of these payments (those decided), by payment."""
        ...

    def cases(self, *, pool: str | None = None, states: Iterable[str] = (),
              limit: int = 100) -> list[CaseRecord]: ...

    def case(self, case_id: str) -> CaseRecord | None: ...

    def cases_of(self, payment_id: str) -> list[CaseRecord]: ...

    def notes(self, case_id: str) -> list[CaseNote]: ...

    def lists(self) -> list[ListRecord]: ...

    def list_content(self, name: str) -> bytes | None: ...

    def cleared(self) -> list[Cleared]: ...

    def parties(self) -> list[PartyRecord]: ...

    def open_case_counts(self, now_us: int) -> list[tuple[str, str, int, int]]:
        """(pool, kind, open cases, of which past their due time), per pool and kind."""
        ...

    def blocked_since(self, since_us: int) -> list[DecisionRecord]:
        """The decisions that blocked a payment since `since_us`, newest first."""
        ...

    def recent_payouts(self, pool: str, since_us: int, limit: int) -> list[Payout]:
        """The pool's payouts created since `since_us` (newest first, at most `limit`), as
        the ring search sees them."""
        ...

    def active_limits(self, now_us: int) -> list[ResponseRecord]: ...

    def response_alerts(self, since_us: int) -> list[tuple[str, str, str, int]]:
        """(pool, group, severity, times fired) of the alert responses since `since_us`."""
        ...

    def list_hits(self, since_us: int) -> list[tuple[str, str, str, int]]:
        """(pool, counterparty, an entry id, hits) of the known counterparties an updated
        list hit since `since_us`, one row per pool and counterparty."""
        ...

    def counterparties(self) -> list[str]:
        """Every counterparty name the payments name."""
        ...

    def party(self, name: str) -> PartyRecord | None: ...

    def past_payments(self, pool: str, since_us: int) -> Iterator[PastPayment]:
        """The pool's payments created at or after `since_us`, oldest first."""
        ...

    def decided_since(self, pool: str, since_us: int) -> Iterator[PastPayment]:
        """The pool's payments decided at or after `since_us`, in decision order."""
        ...
