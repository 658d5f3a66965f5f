"""The outbox, in both stores: every event, written in the same transaction as the change it
reports (docs/adr/0011-events-and-outbox.md).

`pos` orders all events of the store and `seq` those of one pool; both are assigned here, under
the ledger's writer lock, as the last one plus one, so they follow commit order with no gap and a
reader that has seen `pos` never meets a smaller one later. The outbox is the event log: it is
kept, and replays read it. `event_cursors` holds how far each relay has published.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Protocol

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

SQLITE_EVENTS_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    pos INTEGER PRIMARY KEY,
    pool TEXT NOT NULL,
    seq INTEGER NOT NULL,
    id TEXT NOT NULL UNIQUE,
    type TEXT NOT NULL,
    version INTEGER NOT NULL,
    at_us INTEGER NOT NULL,
    data TEXT NOT NULL,
    UNIQUE (pool, seq)
) STRICT;
CREATE INDEX IF NOT EXISTS outbox_by_pool_time ON outbox (pool, at_us);
CREATE TABLE IF NOT EXISTS event_cursors (
    name TEXT PRIMARY KEY,
    pos INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
"""

POSTGRES_EVENTS_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    pos BIGINT PRIMARY KEY,
    pool TEXT COLLATE "C" NOT NULL,
    seq BIGINT NOT NULL,
    id TEXT COLLATE "C" NOT NULL UNIQUE,
    type TEXT NOT NULL,
    version INTEGER NOT NULL,
    at_us BIGINT NOT NULL,
    data TEXT NOT NULL,
    UNIQUE (pool, seq)
);
CREATE INDEX IF NOT EXISTS outbox_by_pool_time ON outbox (pool, at_us);
CREATE TABLE IF NOT EXISTS event_cursors (
    name TEXT COLLATE "C" PRIMARY KEY,
    pos BIGINT NOT NULL
);
"""

COLUMNS = "pos, pool, seq, id, type, version, at_us, data"
OUTBOX_READ_MAX = 10_000


def append_events(
    connection: Any, mark: str, events: Sequence[Event], *, numbered: bool = False
) -> list[Event]:
    """Write `events` to the outbox on a write transaction's `connection`, numbering them;
    returns them with their `seq` when `numbered` (the ledger does not ask: it costs a tuple
    per event). Call only under the ledger's writer lock."""
    if not events:
        return []
    pools = sorted({e.pool for e in events})
    row = connection.execute("SELECT coalesce(max(pos), 0) FROM outbox").fetchone()
    pos = int(row[0])
    heads: dict[str, int] = {}
    for pool in pools:  # one index probe each: max() over (pool, seq)
        row = connection.execute(
            f"SELECT coalesce(max(seq), 0) FROM outbox WHERE pool = {mark}", (pool,)
        ).fetchone()
        heads[pool] = int(row[0])
    rows = []
    for event in events:
        pos += 1
        heads[event.pool] = seq = heads[event.pool] + 1
        rows.append((pos, event.pool, seq, event.id, event.type, event.version, event.at_us,
                     encode_data(event)))
    cursor = connection.cursor()
    try:
        cursor.executemany(
            f"INSERT INTO outbox ({COLUMNS}) VALUES ({', '.join([mark] * 8)})", rows
        )
    finally:
        cursor.close()
    return [event._replace(seq=row[2]) for event, row in zip(events, rows, strict=True)] \
        if numbered else []


class Queryable(Protocol):
    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Any]: ...


def event_from_row(row: Sequence[Any]) -> Event:
    _pos, pool, seq, event_id, kind, version, at_us, data = row
    return event_from_parts(event_id, kind, int(version), pool, int(seq), int(at_us),
                            loads(data))


class OutboxReader:
    """Reads of the outbox through a store's read connection (`query`)."""

    def __init__(self, store: Queryable, mark: str) -> None:
        self._store = store
        self._mark = mark

    def after(self, pos: int, limit: int = OUTBOX_READ_MAX) -> list[tuple[int, Event]]:
        """Events with a position above `pos`, in order, at most `limit`."""
        return [(int(row[0]), event_from_row(row)) for row in self.raw_after(pos, limit)]

    def raw_after(self, pos: int, limit: int = OUTBOX_READ_MAX) -> list[tuple[Any, ...]]:
        """Rows in the outbox's column order, ledger events with their legs (for a relay that
        forwards them without decoding)."""
        m = self._mark
        return self._with_legs(self._store.query(
            f"SELECT {COLUMNS} FROM outbox WHERE pos > {m} ORDER BY pos LIMIT {m}",
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
        m = self._mark
        for seq, address, asset, posted, pending_out, pending_in in self._store.query(
            f"SELECT seq, address, asset, posted, pending_out, pending_in FROM legs "
            f"WHERE seq >= {m} AND seq <= {m} ORDER BY seq, address, asset",
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
        m = self._mark
        last = after_seq
        while True:
            where = [f"pool = {m}", f"seq > {m}"]
            params: list[Any] = [pool, last]
            if until_us is not None:
                where.append(f"at_us <= {m}")
                params.append(until_us)
            if since_us is not None:
                where.append(f"at_us >= {m}")
                params.append(since_us)
            rows = self._with_legs(self._store.query(
                f"SELECT {COLUMNS} FROM outbox WHERE {' AND '.join(where)} "
                f"ORDER BY seq LIMIT {OUTBOX_READ_MAX}",
                params,
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
            for pool, seq in self._store.query("SELECT pool, max(seq) FROM outbox GROUP BY pool")
        }

    def head(self, pool: str) -> int:
        """The last seq of one pool (0 when it has none): one index probe."""
        rows = self._store.query(
            f"SELECT coalesce(max(seq), 0) FROM outbox WHERE pool = {self._mark}", (pool,)
        )
        return int(rows[0][0])

    def last_pos(self) -> int:
        row = self._store.query("SELECT coalesce(max(pos), 0) FROM outbox")
        return int(row[0][0])

    def cursor(self, name: str) -> int:
        rows = self._store.query(
            f"SELECT pos FROM event_cursors WHERE name = {self._mark}", (name,)
        )
        return int(rows[0][0]) if rows else 0


def outbox_mark(store: Any) -> str:
    """The placeholder of the store's driver: `%s` for PostgreSQL, `?` for SQLite."""
    from fundpool.stores.postgres import PostgresStore

    return "%s" if isinstance(store, PostgresStore) else "?"


def outbox_reader(store: Any) -> OutboxReader:
    """The outbox of a ledger store, read through the store's own read connection."""
    return OutboxReader(store, outbox_mark(store))


def save_cursor(connection: Any, mark: str, name: str, pos: int) -> None:
    """Record on a write transaction that relay `name` has published up to `pos`."""
    connection.execute(
        f"INSERT INTO event_cursors (name, pos) VALUES ({mark}, {mark}) "
        "ON CONFLICT (name) DO UPDATE SET pos = excluded.pos",
        (name, pos),
    )


class CursorWriter:
    """Records a relay's progress on a connection of its own: not the ledger's, so saving
    never waits for the ledger's writer lock while the relay reads the outbox, and never
    holds up a ledger transaction. A position only moves forward here (`save_cursor` on a
    write session sets it back, to publish again)."""

    def __init__(self, store: Any) -> None:
        from fundpool.stores.postgres import PostgresStore
        from fundpool.stores.sqlite import SqliteStore

        if isinstance(store, SqliteStore):
            import sqlite3

            self._connection: Any = sqlite3.connect(
                store.path, isolation_level=None, timeout=30.0, check_same_thread=False)
            self._sql = ("INSERT INTO event_cursors (name, pos) VALUES (?, ?) "
                         "ON CONFLICT (name) DO UPDATE SET pos = max(pos, excluded.pos)")
        elif isinstance(store, PostgresStore):
            import psycopg
            from psycopg import sql

            self._connection = psycopg.connect(store.url, autocommit=True, connect_timeout=10)
            self._connection.execute(
                sql.SQL("SET search_path TO {}").format(sql.Identifier(store.schema)))
            self._sql = ("INSERT INTO event_cursors (name, pos) VALUES (%s, %s) "
                         "ON CONFLICT (name) DO UPDATE SET pos = "
                         "GREATEST(event_cursors.pos, excluded.pos)")
        else:
            raise TypeError(f"no cursor writer for {type(store).__name__}")

    def save(self, name: str, pos: int) -> None:
        self._connection.execute(self._sql, (name, pos))

    def close(self) -> None:
        self._connection.close()
