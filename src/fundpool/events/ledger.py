"""The ledger's events: one `ledger.entry_committed` per journal entry and pool it touches."""

from __future__ import annotations

from collections.abc import Iterable

from fundpool.core.ledger.model import JournalEntry
from fundpool.events.model import SYSTEM_POOL, Event, LedgerEntryCommitted


def pool_of(address: str) -> str | None:
    """The pool an account belongs to (`pool:<id>:…`), or None."""
    if address.startswith("pool:"):
        end = address.find(":", 5)
        return address[5:end] if end > 5 else None
    return None


_POOLS: dict[str, str | None] = {}  # address -> its pool, for the addresses seen most
_POOLS_MAX = 100_000


def entry_events(entries: Iterable[JournalEntry]) -> list[Event]:
    """An event per entry, in the stream of the pool it touches; an entry touching several
    pools has one event in each (`<entry id>:<pool>`), one touching none goes to `_ledger`.

    The events are written without their legs: the legs table holds exactly those balances,
    in the same transaction, and the outbox's readers put them back (stores/events_sql.py).
    Writing them twice cost the ledger about a third of its throughput (docs/benchmarks.md)."""
    events: list[Event] = []
    pool_by_address = _POOLS
    for entry in entries:
        touched: set[str] = set()
        for leg in entry.legs:
            address = leg[1]
            pool = pool_by_address.get(address, "")
            if pool == "":
                pool = pool_of(address)
                if len(pool_by_address) < _POOLS_MAX:
                    pool_by_address[address] = pool
            if pool is not None:
                touched.add(pool)
        data = LedgerEntryCommitted(entry.id, entry.seq, entry.kind.value, ())
        if len(touched) <= 1:
            pool = touched.pop() if touched else SYSTEM_POOL
            events.append(Event(entry.id, LedgerEntryCommitted.TYPE, pool, entry.at_us, data))
        else:
            events.extend(
                Event(f"{entry.id}:{pool}", LedgerEntryCommitted.TYPE, pool, entry.at_us, data)
                for pool in sorted(touched)
            )
    return events
