"""What the audit log needs from a store (stores/audit_sql.py implements it)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from fundpool.audit.checkpoint import Checkpoint
from fundpool.audit.merkle import Coordinate
from fundpool.audit.records import AuditRecord, Entry

SYNC_BATCH_MAX = 10_000  # records appended by one collector transaction
SEARCH_LIMIT_MAX = 1_000
# Nodes below this level are stored by their 2^BLOCK_LEVEL-leaf block (a proof's lower half
# is a few neighbouring rows); those at or above it are few and kept in memory by a store.
BLOCK_LEVEL = 10
# Nodes below this level are not stored: a store makes one from its 2, 4 or 8 leaves (one
# read of neighbouring entries), which spares appending seven rows in eight.
STORED_LEVEL_MIN = 4


@dataclass(frozen=True, slots=True)
class Collected:
    """What one collector transaction appended, per source, and the log's size after it."""

    appended: Mapping[str, int]
    size: int
    skipped: tuple[str, ...] = ()  # sources whose table this store does not have

    @property
    def total(self) -> int:
        return sum(self.appended.values())


@dataclass(frozen=True, slots=True)
class Search:
    actor: str | None = None  # an actor's id, name, or kind:id
    object_kind: str | None = None
    object_id: str | None = None
    action: str | None = None
    from_us: int | None = None
    to_us: int | None = None  # inclusive
    after_seq: int | None = None
    limit: int = 100
    filters: dict[str, Any] = field(default_factory=dict)


class AuditStore(Protocol):
    def ensure(self) -> None:
        """Create the tables if the database has none yet, or check their version."""
        ...

    def size(self) -> int: ...

    def append(self, records: Sequence[AuditRecord]) -> int:
        """Append `records` in one transaction (entries, leaves, the completed nodes of level
        >= STORED_LEVEL_MIN); the size."""
        ...

    def collect(self, batch_max: int = SYNC_BATCH_MAX) -> Collected:
        """Read the sources after their cursors and append what they recorded, moving the
        cursors in the same transaction."""
        ...

    def positions(self) -> dict[str, tuple[int, int | None]]:
        """Per source: (the cursor, the source's newest position; None: no such table)."""
        ...

    def entry(self, seq: int) -> Entry | None: ...

    def entries(self, first: int, end: int) -> list[Entry]:
        """The entries with first <= seq < end, in order."""
        ...

    def scan(self, first: int = 0, chunk: int = 50_000) -> Iterator[list[Entry]]:
        """Every entry from `first` in seq order, a chunk at a time (as stored: gaps show)."""
        ...

    def search(self, search: Search) -> list[Entry]: ...

    def seq_at(self, at_us: int) -> int:
        """The number of entries recorded at or before `at_us` (by seq: the first with a
        later time ends it)."""
        ...

    def nodes(self, coordinates: Sequence[Coordinate]) -> dict[Coordinate, bytes]:
        """The hashes of these complete subtrees: level 0 the entries' leaves, levels 1 to
        STORED_LEVEL_MIN - 1 made from them, the others stored."""
        ...

    def level_nodes(self, level: int, first: int, last: int) -> dict[int, bytes]:
        """Stored nodes of `level` (>= STORED_LEVEL_MIN) with first <= index <= last, as
        stored (no cache: what verify compares)."""
        ...

    def lower_nodes(self, first: int, end: int) -> dict[Coordinate, bytes]:
        """Every stored node of level STORED_LEVEL_MIN to BLOCK_LEVEL - 1 whose first leaf is
        in [first, end), as stored."""
        ...

    def duplicates(self, limit: int = 1_000) -> list[tuple[str, str, int, int]]:
        """(source, source_id, first seq, entries) of each key held by more than one entry,
        by first seq, at most `limit`."""
        ...

    def add_checkpoint(self, checkpoint: Checkpoint) -> None: ...

    def checkpoints(self, *, after_size: int | None = None, limit: int | None = None
                    ) -> list[Checkpoint]:
        """Checkpoints by size (then time), from the smallest."""
        ...

    def latest_checkpoint(self) -> Checkpoint | None: ...

    def save_verification(self, at_us: int, size: int, ok: bool, report: str) -> None: ...

    def last_verification(self) -> tuple[int, int, bool, str] | None: ...

    def close(self) -> None: ...
