"""What the projection store keeps: per pool, how far its projection has got (`Cursor`), the
events stepped over as malformed (`Reject`), and what one commit writes (`ProjectionWrite`).

Monitoring defines them; the store that implements `ports.ProjectionStore`
(`stores/projection_sql.py`) reads and writes them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Cursor:
    """How far a pool's projection has got, with what it counted but did not apply."""

    pool: str
    seq: int = 0
    at_us: int = 0
    pos: int = 0  # the outbox position, for the in-process feed
    duplicates: int = 0
    ignored: int = 0
    rejected: int = 0


@dataclass(frozen=True, slots=True)
class Reject:
    pool: str
    seq: int
    event_id: str | None
    code: str
    detail: str


@dataclass(frozen=True, slots=True)
class ProjectionWrite:
    """What one commit writes for one pool."""

    cursor: Cursor
    cells: Sequence[tuple[str, str, int]]
    series: Sequence[tuple[str, str, int, int]]
    prune_before: dict[str, int]  # resolution -> first bucket start kept
    rejects: Sequence[Reject] = ()
