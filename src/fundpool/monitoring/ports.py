"""What monitoring needs of the adapters around it, declared here so that it imports none.

- `ProjectionStore`: where projections are kept (a cursor per pool, its cells and series, the
  events rejected), each commit written in one transaction. `stores/projection_sql.py`
  implements it.
- `OutboxReader`: the event log, read in commit order (`pos`) or per pool (`seq`).
  `stores/events_sql.py` implements it on the ledger's own database.
- `ProjectionApplier`: what a bus applies events through. An adapter that carries events
  (`fundpool.bus`) reads each message into an `Item` (`read_message`) and applies them, many
  pools at a time, answered with an `ApplyReport`: what was applied, duplicated or stepped
  over, what is held after a gap, which pools are blocked. `projector.Projector` is the
  applier monitoring provides; an entry point hands the bus a factory of them.

The values these speak in are defined in `records.py` (what the projection store keeps) and
`messages.py` (what applying speaks), and named here too, so that an adapter needs this module
only. Whoever builds a `Monitor` or a `Projector` (`fundpool.compose`) hands it the adapters.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Protocol

from fundpool.events.model import Event
from fundpool.monitoring.messages import ApplyReport, Item, Skipped, read_message
from fundpool.monitoring.records import Cursor, ProjectionWrite, Reject

__all__ = [
    "OUTBOX_READ_MAX",
    "ApplyReport",
    "Cursor",
    "Item",
    "OutboxReader",
    "OutboxRow",
    "ProjectionApplier",
    "ProjectionStore",
    "ProjectionWrite",
    "Reject",
    "Skipped",
    "read_message",
]

OUTBOX_READ_MAX = 10_000  # rows one outbox read returns at most, whatever limit is asked

# An outbox row as stored: (pos, pool, seq, id, type, version, at_us, data), a ledger event's
# data completed with its entry's legs; a relay forwards it without decoding.
OutboxRow = tuple[Any, ...]


class ProjectionStore(Protocol):
    """Projections kept per pool: a `Cursor`, integer cells by (name, key), series buckets by
    (metric, resolution, bucket start), and the events rejected as malformed."""

    def pools(self) -> list[str]:
        """The pools (and the in-process feed's cursor) that have a cursor, in order."""
        ...

    def cursor(self, pool: str) -> Cursor:
        """How far `pool` has got (a zero `Cursor` for a pool never seen)."""
        ...

    def cells(self, pool: str) -> dict[tuple[str, str], int]:
        ...

    def series(
        self, pool: str, *, metric: str | None = None, res: str | None = None,
        since_us: int | None = None, until_us: int | None = None,
    ) -> list[tuple[tuple[str, str, int], int]]:
        """Series buckets of a pool, by (metric, res, bucket start), ordered."""
        ...

    def rejects(self, pool: str) -> list[Reject]:
        ...

    def commit(self, writes: Iterable[ProjectionWrite]) -> None:
        """Write each pool's changes and cursor, all in one transaction."""
        ...

    def reset(self, pool: str | None = None) -> None:
        """Forget projections (all pools, or one) so they are rebuilt from the event log."""
        ...

    def close(self) -> None:
        ...


class OutboxReader(Protocol):
    """Reads of the outbox: every event, in the order of the commits that wrote them."""

    def after(self, pos: int, limit: int = OUTBOX_READ_MAX) -> list[tuple[int, Event]]:
        """Events with a position above `pos`, in order, at most `limit`."""
        ...

    def raw_after(self, pos: int, limit: int = OUTBOX_READ_MAX) -> list[OutboxRow]:
        """Rows with a position above `pos`, in order, at most `limit`, undecoded."""
        ...

    def decode(self, row: Sequence[Any]) -> Event:
        """The event of a row `raw_after` gave; raises the event model's errors (or
        `ValueError` for data that is not JSON) when it cannot be read."""
        ...

    def pool_events(
        self, pool: str, *, after_seq: int = 0, until_us: int | None = None,
        since_us: int | None = None,
    ) -> Iterator[Event]:
        """A pool's events in seq order: those after `after_seq`, at or before `until_us`
        and at or after `since_us` when given."""
        ...

    def heads(self) -> dict[str, int]:
        """The last seq of every pool that has events."""
        ...

    def head(self, pool: str) -> int:
        """The last seq of one pool (0 when it has none)."""
        ...

    def last_pos(self) -> int:
        ...

    def cursor(self, name: str) -> int:
        """How far relay `name` has published (0 when it never has)."""
        ...

    def count_until(self, pool: str, until_us: int) -> int:
        """How many of the pool's events happened at or before `until_us`."""
        ...

    def position_of(self, event_id: str) -> int | None:
        """The outbox position of the event `event_id`, or None."""
        ...


class ProjectionApplier(Protocol):
    """Applies events to stored projections, each once per pool and seq, committing the
    figures with the cursors (docs/adr/0011)."""

    def apply(self, items: Iterable[Item]) -> ApplyReport:
        """Apply what can be applied now, commit it, and report the rest."""
        ...

    def forget(self) -> None:
        """Drop what is held in memory: another process may have moved a pool on."""
        ...
