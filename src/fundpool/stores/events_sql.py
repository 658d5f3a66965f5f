"""The outbox, in both stores: every event, written in the same transaction as the change it
reports (docs/adr/0011-events-and-outbox.md).

`pos` orders all events of the store and `seq` those of one pool; both are assigned here, under
the ledger's writer lock, as the last one plus one, so they follow commit order with no gap and a
reader that has seen `pos` never meets a smaller one later. The outbox is the event log: it is
kept, and replays read it. `event_cursors` holds how far each relay has published.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from fundpool.events.model import (
    Event,
    InvalidEvent,
    LedgerEntryCommitted,
    LegAfter,
    encode_data,
    event_from_parts,
    ledger_data_text,
    loads,
)
from fundpool.monitoring import ports
from fundpool.monitoring.ports import OUTBOX_READ_MAX
from fundpool.sql.database import Database, Transaction
from fundpool.sql.query import Where

COLUMNS = "pos, pool, seq, id, type, version, at_us, data"  # an outbox row (ports.OutboxRow)


def append_events(tx: Transaction, events: Sequence[Event]) -> None:
    """Write `events` to the outbox in the write transaction `tx`, numbering them. Call only
    under the ledger's writer lock, which makes "the last one plus one" safe.

    In a pipelined PostgreSQL transaction the numbers are taken in the insert itself, from one
    array per column: nothing is read first, so the statement waits in the pipeline and goes
    with the commit (docs/adr/0017). Otherwise the last numbers are read first, and the rows
    are copied (a bulk write on PostgreSQL) or inserted (SQLite, in process)."""
    if not events:
        return
    if tx.pipelined:
        counts: dict[str, int] = {}
        columns: tuple[list[Any], ...] = ([], [], [], [], [], [], [])
        pools, ranks, ids, types, versions, times, data = columns
        for event in events:
            counts[event.pool] = rank = counts.get(event.pool, 0) + 1
            pools.append(event.pool)
            ranks.append(rank)
            ids.append(event.id)
            types.append(event.type)
            versions.append(event.version)
            times.append(event.at_us)
            data.append(encode_data(event))
        tx.send(_NUMBERED_INSERT, columns)
        return
    pos = int(tx.one("SELECT coalesce(max(pos), 0) FROM outbox")[0])
    heads: dict[str, int] = {}
    for pool in sorted({e.pool for e in events}):  # one index probe each: max() over (pool, seq)
        heads[pool] = int(tx.one("SELECT coalesce(max(seq), 0) FROM outbox WHERE pool = ?",
                                 (pool,))[0])
    rows = []
    for event in events:
        pos += 1
        heads[event.pool] = seq = heads[event.pool] + 1
        rows.append((pos, event.pool, seq, event.id, event.type, event.version, event.at_us,
                     encode_data(event)))
    if tx.dialect.is_postgres:  # a bulk write: copied, as the ledger's own rows are
        tx.copy(f"outbox ({COLUMNS})", rows, _COPY_TYPES)
        return
    tx.send_many(f"INSERT INTO outbox ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)


_COPY_TYPES = ("int8", "text", "int8", "text", "text", "int4", "int8", "text")


# Each event's position is the last one plus its place among these; its seq is its pool's
# last plus its rank among these events of that pool. MATERIALIZED reads each pool's last once:
# inlined, PostgreSQL ran that read once per row, over the rows being inserted (4.5 s for
# 8,192 events instead of 50 ms).
_NUMBERED_INSERT = f"""
WITH e AS (
    SELECT * FROM unnest(?::text[], ?::int8[], ?::text[], ?::text[], ?::int4[], ?::int8[],
                         ?::text[]) WITH ORDINALITY AS e(pool, rank, id, type, version, at_us,
                                                        data, place)
), last_seq AS MATERIALIZED (
    SELECT p.pool, (SELECT coalesce(max(o.seq), 0) FROM outbox o WHERE o.pool = p.pool) AS seq
    FROM (SELECT DISTINCT pool FROM e) p
), last_pos AS MATERIALIZED (
    SELECT coalesce(max(pos), 0) AS pos FROM outbox
)
INSERT INTO outbox ({COLUMNS})
SELECT last_pos.pos + e.place, e.pool, last_seq.seq + e.rank, e.id, e.type, e.version,
       e.at_us, e.data
FROM e JOIN last_seq ON last_seq.pool = e.pool CROSS JOIN last_pos
"""


def event_from_row(row: Sequence[Any]) -> Event:
    _pos, pool, seq, event_id, kind, version, at_us, data = row
    return event_from_parts(event_id, kind, int(version), pool, int(seq), int(at_us),
                            loads(data))


class OutboxReader:
    """Reads of the outbox through a ledger store's read connection (monitoring's port of
    that name, `monitoring/ports.py`)."""

    def __init__(self, store: Any) -> None:
        self._db: Database = store if isinstance(store, Database) else store.db

    def after(self, pos: int, limit: int = OUTBOX_READ_MAX) -> list[tuple[int, Event]]:
        """Events with a position above `pos`, in order, at most `limit`."""
        return [(int(row[0]), event_from_row(row)) for row in self.raw_after(pos, limit)]

    @staticmethod
    def decode(row: Sequence[Any]) -> Event:
        """The event of a row `raw_after` gave."""
        return event_from_row(row)

    def raw_after(self, pos: int, limit: int = OUTBOX_READ_MAX) -> list[tuple[Any, ...]]:
        """Rows in the outbox's column order, ledger events with their legs (for a relay that
        forwards them without decoding)."""
        return self._with_legs(self._db.rows(
            f"SELECT {COLUMNS} FROM outbox WHERE pos > ? ORDER BY pos LIMIT ?",
            (pos, min(limit, OUTBOX_READ_MAX)),
        ))

    def _with_legs(self, rows: Sequence[Sequence[Any]]) -> list[tuple[Any, ...]]:
        """The rows, each ledger event's data completed with its entry's legs, read from the
        legs table that the same transaction wrote (events/ledger.py)."""
        out = [tuple(row) for row in rows]
        wanted: dict[int, list[int]] = {}  # entry seq -> indexes of its rows
        bodies: dict[int, Any] = {}
        for index, row in enumerate(out):
            if row[4] == LedgerEntryCommitted.TYPE:
                try:
                    body = loads(row[7])
                    entry_seq = int(body["entry_seq"])
                except (InvalidEvent, KeyError, TypeError, ValueError):
                    continue  # left as stored: the reader reports it as malformed
                if body.get("legs"):
                    continue  # written with its legs (before they were left out)
                wanted.setdefault(entry_seq, []).append(index)
                bodies[index] = body
        if not wanted:
            return out
        legs: dict[int, list[LegAfter]] = {}
        for seq, address, asset, posted, pending_out, pending_in in self._db.rows(
            "SELECT seq, address, asset, posted, pending_out, pending_in FROM legs "
            "WHERE seq >= ? AND seq <= ? ORDER BY seq, address, asset",
            (min(wanted), max(wanted)),
        ):
            if int(seq) in wanted:
                legs.setdefault(int(seq), []).append(
                    LegAfter(address, asset, int(posted), int(pending_out), int(pending_in)))
        for entry_seq, indexes in wanted.items():
            for index in indexes:
                body = bodies[index]
                text = ledger_data_text(LedgerEntryCommitted(
                    str(body.get("entry_id")), entry_seq, str(body.get("kind")),
                    tuple(legs.get(entry_seq, ()))))
                out[index] = (*out[index][:7], text)
        return out

    def pool_events(
        self, pool: str, *, after_seq: int = 0, until_us: int | None = None,
        since_us: int | None = None,
    ) -> Iterator[Event]:
        """A pool's events in seq order, streamed in pages: those after `after_seq`, at or
        before `until_us` and at or after `since_us` when given."""
        last = after_seq
        while True:
            where = (Where().eq("pool", pool).add("seq > ?", last)
                     .add_if(until_us, "at_us <= ?").at_least("at_us", since_us))
            rows = self._with_legs(self._db.rows(
                f"SELECT {COLUMNS} FROM outbox{where} ORDER BY seq LIMIT {OUTBOX_READ_MAX}",
                where.params,
            ))
            for row in rows:
                yield event_from_row(row)
            if len(rows) < OUTBOX_READ_MAX:
                return
            last = int(rows[-1][2])

    def heads(self) -> dict[str, int]:
        """The last seq of every pool that has events."""
        return {
            pool: int(seq)
            for pool, seq in self._db.rows("SELECT pool, max(seq) FROM outbox GROUP BY pool")
        }

    def head(self, pool: str) -> int:
        """The last seq of one pool (0 when it has none): one index probe."""
        rows = self._db.rows("SELECT coalesce(max(seq), 0) FROM outbox WHERE pool = ?", (pool,))
        return int(rows[0][0])

    def last_pos(self) -> int:
        row = self._db.rows("SELECT coalesce(max(pos), 0) FROM outbox")
        return int(row[0][0])

    def cursor(self, name: str) -> int:
        rows = self._db.rows("SELECT pos FROM event_cursors WHERE name = ?", (name,))
        return int(rows[0][0]) if rows else 0


    def count_until(self, pool: str, until_us: int) -> int:
        """How many of the pool's events happened at or before `until_us`."""
        rows = self._db.rows("SELECT count(*) FROM outbox WHERE pool = ? AND at_us <= ?",
                             (pool, until_us))
        return int(rows[0][0])

    def position_of(self, event_id: str) -> int | None:
        """The outbox position of the event `event_id`, or None."""
        rows = self._db.rows("SELECT pos FROM outbox WHERE id = ?", (event_id,))
        return int(rows[0][0]) if rows else None


def outbox_reader(store: Any) -> OutboxReader:
    """The outbox of a ledger store, read through the store's own read connection."""
    return OutboxReader(store)


_PORT: type[ports.OutboxReader] = OutboxReader  # mypy checks that it implements the port


# A position only moves forward through the cursor writer; one text for both databases.
_SAVE_CURSOR = ("INSERT INTO event_cursors (name, pos) VALUES (?, ?) ON CONFLICT (name) DO UPDATE "
                "SET pos = excluded.pos")
_ADVANCE_CURSOR = ("INSERT INTO event_cursors (name, pos) VALUES (?, ?) ON CONFLICT (name) "
                   "DO UPDATE SET pos = CASE WHEN excluded.pos > event_cursors.pos "
                   "THEN excluded.pos ELSE event_cursors.pos END")


def save_cursor(tx: Transaction, name: str, pos: int) -> None:
    """Record in a write transaction that relay `name` has published up to `pos` (it may set
    it back, to publish again)."""
    tx.execute(_SAVE_CURSOR, (name, pos))


class CursorWriter:
    """Records a relay's progress on a connection of its own: not the ledger's, so saving
    never waits for the ledger's writer lock while the relay reads the outbox, and never
    holds up a ledger transaction. A position only moves forward here."""

    def __init__(self, store: Any) -> None:
        self._db = Database(store.db.url)

    def save(self, name: str, pos: int) -> None:
        with self._db.lock:
            self._db.connection().execute(self._db.dialect.sql(_ADVANCE_CURSOR), (name, pos))

    def close(self) -> None:
        self._db.close()
