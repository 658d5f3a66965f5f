"""The ledger's events: one `ledger.entry_committed` per journal entry and pool it touches."""

from __future__ import annotations

from collections.abc import Iterable

from fundpool.core.ledger.model import JournalEntry
from fundpool.events.model import SYSTEM_POOL, Event, LedgerEntryCommitted, LegAfter


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
    pools has one event in each (`<entry id>:<pool>`), one touching none goes to `_ledger`."""
    events: list[Event] = []
    make = LegAfter._make
    pool_by_address = _POOLS
    for entry in entries:
        legs = tuple(make(leg[1:]) for leg in entry.legs)
        touched: set[str] = set()
        for leg in legs:
            address = leg[0]
            pool = pool_by_address.get(address, "")
            if pool == "":
                pool = pool_of(address)
                if len(pool_by_address) < _POOLS_MAX:
                    pool_by_address[address] = pool
            if pool is not None:
                touched.add(pool)
        pools = sorted(touched)
        data = LedgerEntryCommitted(entry.id, entry.seq, entry.kind.value, legs)
        if len(pools) <= 1:
            pool = pools[0] if pools else SYSTEM_POOL
            events.append(Event(entry.id, LedgerEntryCommitted.TYPE, pool, entry.at_us, data))
        else:
            events.extend(
                Event(f"{entry.id}:{pool}", LedgerEntryCommitted.TYPE, pool, entry.at_us, data)
                for pool in pools
            )
    return events
