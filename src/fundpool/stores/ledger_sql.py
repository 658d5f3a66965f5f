"""The ledger's store, written once for SQLite and PostgreSQL on the SQL layer (fundpool.sql).

Every statement is one text for both databases. What differs lives in one of two places: the
`Dialect` (parameter marks, list matching, wide amounts) and the three bulk writes of a batch
(journal, legs, balances), which are the ledger's measured hot path: SQLite inserts with
`executemany` (amounts as integers while they fit in 64 bits, as decimal text beyond:
docs/adr/0001); PostgreSQL copies a large batch in its binary format (docs/adr/0014 has the
figures) and sends a small one as one array insert per table, queued in the pipeline that
carries the commit (docs/adr/0017).
`SqliteStore` and `PostgresStore` are those hooks and how each is opened.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any

from fundpool.core.errors import invariant
from fundpool.core.ledger.engine import (
    BalanceKey,
    BatchOutcome,
    IdempotencyRecord,
    PostedTransaction,
)
from fundpool.core.ledger.model import (
    GENESIS,
    Account,
    Balance,
    ChainHead,
    PendingState,
    PendingTransfer,
)
from fundpool.core.money import Asset
from fundpool.events.model import Event
from fundpool.ledger.ports import HistoryRow, StoredEntry, StoredLeg
from fundpool.sql import migrate
from fundpool.sql.database import Database, Transaction, missing_table
from fundpool.sql.query import Where, limit, order_by
from fundpool.stores.events_sql import append_events
from fundpool.stores.rows import (
    PENDING_COLUMNS,
    account_to_row,
    asset_from_row,
    history_rows,
    outcome_rows,
    pending_from_row,
    pending_to_row,
    transaction_from_canonical,
)

STREAM_CHUNK = 2_000
ENTRY_COLUMNS = "seq, id, kind, at_us, canonical, hash"
LEG_COLUMNS = "seq, address, asset, posted, pending_out, pending_in"
BALANCE_COLUMNS = "address, asset, posted, pending_out, pending_in"
# The balances' upsert after their rows (`VALUES …`, or a query on PostgreSQL): one text.
BALANCE_UPSERT = (f"INSERT INTO balances ({BALANCE_COLUMNS}) {{source}} "
                  "ON CONFLICT (address, asset) DO UPDATE SET "
                  "posted = excluded.posted, pending_out = excluded.pending_out, "
                  "pending_in = excluded.pending_in")
# Metadata as text on both (JSONB on PostgreSQL), parsed by the store once per distinct text.
ACCOUNT_COLUMNS = ("address, asset, allow_negative, min_balance_minor, max_balance_minor, "
                   "CAST(metadata AS TEXT)")
ACCOUNT_INSERT_COLUMNS = ACCOUNT_COLUMNS.replace("CAST(metadata AS TEXT)", "metadata")
SEQ_MAX = 2**62
HEAD_SQL = "SELECT seq, hash, at_us FROM journal ORDER BY seq DESC LIMIT 1"


def _head(row: Sequence[Any] | None) -> ChainHead:
    return GENESIS if row is None else ChainHead(row[0], bytes(row[1]), row[2])


def _balance(posted: Any, pending_out: Any, pending_in: Any) -> Balance:
    # SQLite gives an int or decimal text, PostgreSQL's NUMERIC a Decimal: int() of each is exact.
    return Balance(int(posted), int(pending_out), int(pending_in))


def _entry(row: Sequence[Any]) -> StoredEntry:
    seq, entry_id, kind, at_us, canonical, entry_hash = row
    return StoredEntry(seq, entry_id, kind, at_us, bytes(canonical), bytes(entry_hash))


def _accounts(rows: Iterable[Sequence[Any]]) -> list[Account]:
    """Account rows with their metadata text parsed once per distinct text: most accounts share
    the same few (often `{}`), and `Account` copies what it is given."""
    parsed: dict[str, Any] = {}
    accounts: list[Account] = []
    for address, asset, allow_negative, min_minor, max_minor, text in rows:
        metadata = parsed.get(text)
        if metadata is None:
            metadata = parsed[text] = json.loads(text)
        accounts.append(Account(
            address=address, asset=asset, allow_negative=bool(allow_negative),
            min_balance_minor=None if min_minor is None else int(min_minor),
            max_balance_minor=None if max_minor is None else int(max_minor),
            metadata=metadata,
        ))
    return accounts


HISTORY_SQL = """
    SELECT l.asset, l.seq, j.id, j.kind, j.at_us, l.posted, l.pending_out, l.pending_in,
           p.posted, p.pending_out, p.pending_in
    FROM (SELECT seq, address, asset, posted, pending_out, pending_in FROM legs
          {where} ORDER BY seq DESC, asset LIMIT ?) l
    JOIN journal j ON j.seq = l.seq
    LEFT JOIN legs p ON p.address = l.address AND p.asset = l.asset AND p.seq = (
        SELECT q.seq FROM legs q WHERE q.address = l.address AND q.asset = l.asset
        AND q.seq < l.seq ORDER BY q.seq DESC LIMIT 1)
    ORDER BY l.seq DESC, l.asset
"""


class SqlLedgerStore:
    """A ledger in a `Database`. Subclasses open it and write a batch's bulk rows."""

    db: Database

    # --- lifecycle ------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return self.db.url

    def initialise(self) -> None:
        """Create the ledger's tables at the current version, or check that an existing store
        is at it (an older one is `schema_outdated`: `fundpool db upgrade` upgrades it)."""
        migrate.ensure(self.db, migrate.LEDGER)

    def is_initialised(self) -> bool:
        return self.db.exists() and self.db.has_table("journal")

    def close(self) -> None:
        self.db.close()

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """Rows of a read in the driver's parameter style, for the tables beside the ledger."""
        return self.db.query(sql, params)

    @contextmanager
    def write(self, *, bulk: bool = False) -> Iterator[SqlWrite]:
        """The ledger's write transaction, the head read as soon as the lock is held. On
        PostgreSQL, unless `bulk`, it runs in pipeline mode: the begin, the lock and the head
        travel in one round trip, and what it writes goes with the commit in the next. A
        `bulk` write copies its rows instead (docs/adr/0017)."""
        with ExitStack() as stack:
            try:
                tx = stack.enter_context(
                    self.db.transaction(self.write_lock, first=HEAD_SQL, pipeline=not bulk))
            except self.db.dialect.driver_errors as error:
                if missing_table(error):
                    raise self.db.not_initialised() from error
                raise
            yield SqlWrite(tx, _head(tx.first[0] if tx.first else None), self)

    write_lock = "fundpool.ledger"

    # --- the hooks: a batch's bulk rows ---------------------------------------------------

    def insert_journal(self, tx: Transaction, rows: list[tuple[Any, ...]]) -> None:
        raise NotImplementedError

    def insert_legs(self, tx: Transaction, rows: list[tuple[Any, ...]]) -> None:
        raise NotImplementedError

    def upsert_balances(self, tx: Transaction, rows: list[tuple[Any, ...]]) -> None:
        raise NotImplementedError

    # --- reads ----------------------------------------------------------------------------

    def head(self) -> ChainHead:
        return _head(self.db.one(HEAD_SQL))

    def entry(self, seq: int) -> StoredEntry | None:
        row = self.db.one(f"SELECT {ENTRY_COLUMNS} FROM journal WHERE seq = ?", (seq,))
        return None if row is None else _entry(row)

    def entry_by_id(self, entry_id: str) -> StoredEntry | None:
        row = self.db.one(f"SELECT {ENTRY_COLUMNS} FROM journal WHERE id = ?", (entry_id,))
        return None if row is None else _entry(row)

    def entries(self, from_seq: int = 1, to_seq: int | None = None) -> Iterator[StoredEntry]:
        last = to_seq if to_seq is not None else SEQ_MAX
        cursor = from_seq
        while cursor <= last:
            rows = self.db.rows(
                f"SELECT {ENTRY_COLUMNS} FROM journal WHERE seq >= ? AND seq <= ? "
                f"ORDER BY seq LIMIT {STREAM_CHUNK}",
                (cursor, last),
            )
            if not rows:
                return
            for row in rows:
                yield _entry(row)
            cursor = rows[-1][0] + 1

    def legs(self, from_seq: int = 1, to_seq: int | None = None) -> Iterator[StoredLeg]:
        last = to_seq if to_seq is not None else SEQ_MAX
        # Addresses and assets are ASCII: nothing sorts after U+FFFF in either collation.
        after: tuple[Any, ...] = (from_seq - 1, "\uffff", "\uffff")
        while True:
            rows = self.db.rows(
                f"SELECT {LEG_COLUMNS} FROM legs WHERE (seq, address, asset) > (?, ?, ?) "
                f"AND seq <= ? ORDER BY seq, address, asset LIMIT {STREAM_CHUNK}",
                (*after, last),
            )
            if not rows:
                return
            for seq, address, asset, posted, out, inn in rows:
                yield StoredLeg(seq, address, asset, _balance(posted, out, inn))
            after = tuple(rows[-1][:3])

    def assets(self) -> list[Asset]:
        rows = self.db.rows("SELECT code, scale, kind FROM assets ORDER BY code")
        return [asset_from_row(*row) for row in rows]

    def accounts(
        self, prefix: str | None = None, *, asset: str | None = None,
        after: str | None = None, descending: bool = False, limit: int | None = None,
    ) -> list[Account]:
        where = (Where().prefix("address", prefix).eq("asset", asset)
                 .after("address", after, descending=descending))
        rows = self.db.rows(
            f"SELECT {ACCOUNT_COLUMNS} FROM accounts{where}"
            f"{order_by('address', descending=descending)}{_limit(limit)}",
            where.params,
        )
        return _accounts(rows)

    def balances(self, prefix: str | None = None) -> dict[BalanceKey, Balance]:
        where = Where().prefix("address", prefix)
        rows = self.db.rows(
            f"SELECT {BALANCE_COLUMNS} FROM balances{where} ORDER BY address, asset",
            where.params,
        )
        return {(a, s): _balance(p, o, i) for a, s, p, o, i in rows}

    def pendings(self, state: PendingState | None = None) -> list[PendingTransfer]:
        where = Where().eq("state", None if state is None else state.value)
        rows = self.db.rows(
            f"SELECT {PENDING_COLUMNS} FROM pendings{where} ORDER BY created_seq", where.params
        )
        return [pending_from_row(row) for row in rows]

    def pendings_page(self, state: PendingState | None, *, before: str | None,
                      limit: int) -> list[PendingTransfer]:
        where = (Where().eq("state", None if state is None else state.value)
                 .before("id", before))
        rows = self.db.rows(
            f"SELECT {PENDING_COLUMNS} FROM pendings{where} ORDER BY id DESC{_limit(limit)}",
            where.params,
        )
        return [pending_from_row(row) for row in rows]

    def pending(self, pending_id: str) -> PendingTransfer | None:
        row = self.db.one(f"SELECT {PENDING_COLUMNS} FROM pendings WHERE id = ?", (pending_id,))
        return None if row is None else pending_from_row(row)

    def balance_at(self, address: str, asset: str, seq: int) -> Balance:
        row = self.db.one(
            "SELECT posted, pending_out, pending_in FROM legs "
            "WHERE address = ? AND asset = ? AND seq <= ? ORDER BY seq DESC LIMIT 1",
            (address, asset, seq),
        )
        return Balance() if row is None else _balance(*row)

    def history(
        self, address: str, asset: str | None, limit: int, before_seq: int | None
    ) -> list[tuple[str, HistoryRow]]:
        # The page is chosen first; only its rows look up the leg before them.
        where = Where().eq("address", address).eq("asset", asset).before("seq", before_seq)
        rows = self.db.rows(HISTORY_SQL.format(where=where), (*where.params, limit))
        return history_rows(rows)

    def replace_balances(self, balances: dict[BalanceKey, Balance]) -> None:
        with self.write() as session:
            session.tx.execute("DELETE FROM balances")
            self.upsert_balances(session.tx, [key + balance for key, balance in balances.items()])


_limit = limit


class SqlWrite:
    """One write transaction holding the ledger's lock: the only writer until it ends."""

    __slots__ = ("_head", "_store", "tx")

    def __init__(self, tx: Transaction, head: ChainHead, store: SqlLedgerStore) -> None:
        self.tx = tx
        self._head = head
        self._store = store

    @property
    def head(self) -> ChainHead:
        return self._head

    @property
    def connection(self) -> Any:
        """The driver's connection, for the services whose tables live beside the ledger."""
        return self.tx.connection

    @property
    def dialect(self) -> Any:
        return self.tx.dialect

    def append_events(self, events: Sequence[Event]) -> None:
        append_events(self.tx, events)

    def _select_in(self, query: str, column: str, values: Iterable[Any]) -> list[Any]:
        return self.tx.rows_in(query, column, values)

    def load_assets(self) -> dict[str, Asset]:
        rows = self.tx.rows("SELECT code, scale, kind FROM assets")
        return {row[0]: asset_from_row(*row) for row in rows}

    def load_accounts(self, addresses: Iterable[str]) -> dict[str, Account]:
        rows = self._select_in(f"SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE {{match}}",
                               "address", addresses)
        return {account.address: account for account in _accounts(rows)}

    def load_balances(self, keys: Iterable[BalanceKey]) -> dict[BalanceKey, Balance]:
        wanted = set(keys)
        rows = self._select_in(
            f"SELECT {BALANCE_COLUMNS} FROM balances WHERE {{match}}", "address",
            sorted({address for address, _ in wanted}),
        )
        return {(a, s): _balance(p, o, i) for a, s, p, o, i in rows if (a, s) in wanted}

    def load_pendings(self, ids: Iterable[str]) -> dict[str, PendingTransfer]:
        rows = self._select_in(f"SELECT {PENDING_COLUMNS} FROM pendings WHERE {{match}}",
                               "id", ids)
        return {row[0]: pending_from_row(row) for row in rows}

    def due_pendings(self, at_us: int, limit: int) -> list[PendingTransfer]:
        rows = self.tx.rows(
            f"SELECT {PENDING_COLUMNS} FROM pendings WHERE state = 'pending' "
            "AND expires_at_us <= ? ORDER BY expires_at_us, id LIMIT ?",
            (at_us, limit),
        )
        return [pending_from_row(row) for row in rows]

    def next_expiry_us(self, after_us: int) -> int | None:
        row = self.tx.one("SELECT min(expires_at_us) FROM pendings WHERE state = 'pending' "
                          "AND expires_at_us > ?", (after_us,))
        return None if row is None or row[0] is None else int(row[0])

    def load_idempotency(self, keys: Iterable[str]) -> dict[str, IdempotencyRecord]:
        rows = self._select_in(
            "SELECT key, request_hash, seq, entry_id FROM idempotency WHERE {match}", "key", keys
        )
        return {row[0]: IdempotencyRecord(bytes(row[1]), row[2], row[3]) for row in rows}

    def load_transactions(self, ids: Iterable[str]) -> dict[str, PostedTransaction]:
        rows = self._select_in("SELECT id, kind, canonical FROM journal WHERE {match}", "id", ids)
        return {row[0]: transaction_from_canonical(row[1], bytes(row[2])) for row in rows}

    def load_reversed(self, ids: Iterable[str]) -> dict[str, str]:
        rows = self._select_in(
            "SELECT original_id, reversal_id FROM reversals WHERE {match}", "original_id", ids
        )
        return {row[0]: row[1] for row in rows}

    def save(self, outcome: BatchOutcome) -> None:
        store, tx = self._store, self.tx
        journal, legs, balances = outcome_rows(outcome)
        if journal:
            store.insert_journal(tx, journal)
        if legs:
            store.insert_legs(tx, legs)
        if balances:
            store.upsert_balances(tx, balances)
        if outcome.assets:
            tx.send_many("INSERT INTO assets (code, scale, kind) VALUES (?, ?, ?)",
                    [(a.code, a.scale, a.kind.value) for a in outcome.assets])
        if outcome.accounts:
            tx.send_many(
                f"INSERT INTO accounts ({ACCOUNT_INSERT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
                [account_to_row(a) for a in outcome.accounts])
        if outcome.pendings_new:
            tx.send_many(f"INSERT INTO pendings ({PENDING_COLUMNS}) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [pending_to_row(p) for p in outcome.pendings_new])
        if outcome.pendings_changed:
            changed = tx.many(
                "UPDATE pendings SET state = ?, posted_amount_minor = ?, finished_seq = ? "
                "WHERE id = ? AND state = 'pending'",
                [(p.state.value, str(p.posted_amount_minor), p.finished_seq, p.id)
                 for p in outcome.pendings_changed],
            )
            invariant(changed == len(outcome.pendings_changed),
                      "every finished pending transfer was pending in the store")
        if outcome.idempotency:
            tx.send_many("INSERT INTO idempotency (key, request_hash, seq, entry_id) "
                    "VALUES (?, ?, ?, ?)",
                    [(k, r.request_hash, r.seq, r.entry_id) for k, r in outcome.idempotency])
        if outcome.reversals:
            tx.send_many("INSERT INTO reversals (original_id, reversal_id) VALUES (?, ?)",
                    list(outcome.reversals))
