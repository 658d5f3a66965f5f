"""What the treasury desk needs from outside: where its objects and its trail are kept.

The desk keeps every object it works on (an FX quote, a rebalancing plan, a sweep run, a
netting obligation or cycle, a credit line's state) as a `DeskObject`: a kind, an id, a state
that decides what may happen to it next, and a JSON body. A write changes an object and
records its action in one transaction, so the audit log's trail (`desk_actions`, source
`desk`) has every action that changed something and nothing that did not. `move` changes an
object only from the state the caller read: two callers that race to accept one quote, or to
start one sweep rule, cannot both win (stores/desk_sql.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from fundpool.core.actor import Actor
from fundpool.core.errors import FundpoolError

LIST_LIMIT_MAX = 1_000


@dataclass(frozen=True, slots=True)
class DeskObject:
    pool: str
    kind: str  # quote, conversion, plan, sweep_run, obligation, cycle, credit
    id: str
    state: str
    created_at_us: int
    updated_at_us: int
    actor: Actor | None
    body: dict[str, Any] = field(default_factory=dict)

    def moved(self, state: str, at_us: int, **body: Any) -> DeskObject:
        return replace(self, state=state, updated_at_us=at_us, body={**self.body, **body})


@dataclass(frozen=True, slots=True)
class DeskAction:
    """One desk action, for the audit log's trail."""

    at_us: int
    action: str
    object_kind: str
    object_id: str
    actor: Actor | None
    details: dict[str, object]


class DeskConflict(FundpoolError):
    code = "desk_conflict"
    title = "a desk object with this id exists already"


class DeskStore(Protocol):
    def add(self, objects: Sequence[DeskObject], action: DeskAction) -> None:
        """Insert new objects (an id already there is refused: `DeskConflict`)."""
        ...

    def move(self, obj: DeskObject, from_state: str, action: DeskAction | None) -> bool:
        """Write `obj` (its new state and body) if it is still in `from_state`; False when
        another writer moved it first (nothing written)."""
        ...

    def move_many(self, objects: Sequence[DeskObject], from_state: str,
                  action: DeskAction | None) -> int:
        """Write each of `objects` still in `from_state`, in one transaction; how many."""
        ...

    def get(self, kind: str, object_id: str) -> DeskObject | None: ...

    def get_many(self, kind: str, object_ids: Sequence[str]) -> list[DeskObject]:
        """Those of `object_ids` that exist, in one read per chunk (order not kept)."""
        ...

    def find(self, pool: str, kind: str, states: Sequence[str] | None = None,
             limit: int = 100) -> list[DeskObject]:
        """Newest first."""
        ...

    def actions(self, limit: int = 100) -> list[tuple[int, DeskAction]]:
        """The newest actions, newest first (with their ids)."""
        ...
