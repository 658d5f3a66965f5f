"""The server store: one PostgreSQL schema per ledger, on psycopg 3.

Writers of one ledger exclude each other with a transaction-scoped advisory lock whose key is
derived from the schema name, so any number of processes may share a ledger and the hash chain
still has one total order. Amounts are NUMERIC(39,0): exact, and wide enough for 2^128 - 1 and
its negation (docs/adr/0001). Text keys use the "C" collation, so rows sort by their bytes as they
do in the SQLite store.

The connection runs in autocommit: a read is one statement and leaves no transaction open; a
write is an explicit transaction. A batch's rows go in with COPY.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager, suppress
from operator import itemgetter
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import errors as pg_errors
from psycopg import sql

from fundpool.core.errors import StoreError, StoreNotInitialised, invariant
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
from fundpool.stores.dispatch_sql import POSTGRES_DISPATCH_SCHEMA
from fundpool.stores.events_sql import POSTGRES_EVENTS_SCHEMA, append_events
from fundpool.stores.postgres_payments import PAYMENTS_SCHEMA
from fundpool.stores.rows import (
    PENDING_COLUMNS,
    account_from_row,
    account_to_row,
    accounts_query,
    asset_from_row,
    history_rows,
    outcome_rows,
    pending_from_row,
    pending_to_row,
    pendings_page_query,
    transaction_from_canonical,
)

SCHEMA_VERSION = 1
DEFAULT_SCHEMA = "fundpool"
LOCK_TIMEOUT = "30s"  # as long as the SQLite store waits for its write lock
CONNECT_TIMEOUT_S = 10
STREAM_CHUNK = 2_000
# A schema name is an identifier we also quote; keeping it plain keeps it easy to type in psql.
SCHEMA_NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}\Z")

TABLES = """
CREATE TABLE IF NOT EXISTS ledger_meta (
    key TEXT COLLATE "C" PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS journal (
    seq BIGINT PRIMARY KEY,
    id TEXT COLLATE "C" NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    at_us BIGINT NOT NULL,
    canonical BYTEA NOT NULL,
    hash BYTEA NOT NULL
);
CREATE TABLE IF NOT EXISTS legs (
    seq BIGINT NOT NULL,
    address TEXT COLLATE "C" NOT NULL,
    asset TEXT COLLATE "C" NOT NULL,
    posted NUMERIC(39, 0) NOT NULL,
    pending_out NUMERIC(39, 0) NOT NULL,
    pending_in NUMERIC(39, 0) NOT NULL,
    PRIMARY KEY (seq, address, asset)
);
CREATE INDEX IF NOT EXISTS legs_by_account ON legs (address, asset, seq);
CREATE TABLE IF NOT EXISTS assets (
    code TEXT COLLATE "C" PRIMARY KEY,
    scale INTEGER NOT NULL,
    kind TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS accounts (
    address TEXT COLLATE "C" PRIMARY KEY,
    asset TEXT COLLATE "C",
    allow_negative BOOLEAN NOT NULL,
    min_balance_minor NUMERIC(39, 0),
    max_balance_minor NUMERIC(39, 0),
    metadata JSONB NOT NULL
);
CREATE TABLE IF NOT EXISTS balances (
    address TEXT COLLATE "C" NOT NULL,
    asset TEXT COLLATE "C" NOT NULL,
    posted NUMERIC(39, 0) NOT NULL,
    pending_out NUMERIC(39, 0) NOT NULL,
    pending_in NUMERIC(39, 0) NOT NULL,
    PRIMARY KEY (address, asset)
) WITH (fillfactor = 85);
CREATE TABLE IF NOT EXISTS pendings (
    id TEXT COLLATE "C" PRIMARY KEY,
    source TEXT COLLATE "C" NOT NULL,
    destination TEXT COLLATE "C" NOT NULL,
    asset TEXT COLLATE "C" NOT NULL,
    amount_minor NUMERIC(39, 0) NOT NULL,
    expires_at_us BIGINT NOT NULL,
    created_seq BIGINT NOT NULL,
    state TEXT NOT NULL,
    posted_amount_minor NUMERIC(39, 0) NOT NULL,
    finished_seq BIGINT
);
CREATE INDEX IF NOT EXISTS pendings_due ON pendings (expires_at_us, id) WHERE state = 'pending';
CREATE TABLE IF NOT EXISTS idempotency (
    key TEXT COLLATE "C" PRIMARY KEY,
    request_hash BYTEA NOT NULL,
    seq BIGINT NOT NULL,
    entry_id TEXT COLLATE "C" NOT NULL
);
CREATE TABLE IF NOT EXISTS reversals (
    original_id TEXT COLLATE "C" PRIMARY KEY,
    reversal_id TEXT COLLATE "C" NOT NULL UNIQUE
);
"""

# Per connection: a batch's new balances are copied here, then merged in one statement.
BALANCES_STAGE = """
CREATE TEMPORARY TABLE IF NOT EXISTS fundpool_balances_in (
    address TEXT COLLATE "C" NOT NULL,
    asset TEXT COLLATE "C" NOT NULL,
    posted NUMERIC(39, 0) NOT NULL,
    pending_out NUMERIC(39, 0) NOT NULL,
    pending_in NUMERIC(39, 0) NOT NULL
)
"""

ENTRY_COLUMNS = "seq, id, kind, at_us, canonical, hash"
JOURNAL_TYPES = ("int8", "text", "text", "int8", "bytea", "bytea")
LEG_COLUMNS = "seq, address, asset, posted, pending_out, pending_in"
LEG_TYPES = ("int8", "text", "text", "numeric", "numeric", "numeric")
BALANCE_COLUMNS = "address, asset, posted, pending_out, pending_in"
BALANCE_TYPES = ("text", "text", "numeric", "numeric", "numeric")
ACCOUNT_COLUMNS = "address, asset, allow_negative, min_balance_minor, max_balance_minor, metadata"
# JSONB as text, parsed by the store: cheaper than the driver's JSON loader, row by row.
ACCOUNT_TEXT_COLUMNS = ACCOUNT_COLUMNS.replace("metadata", "metadata::text")


def lock_key(schema: str) -> int:
    """The advisory lock that serialises the writers of the ledger in `schema`: a signed 64-bit
    number, the same in every process."""
    digest = hashlib.sha256(f"fundpool.ledger:{schema}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def redact(url: str) -> str:
    """`url` without its password, for messages."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "postgresql://?"
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host += f":{parts.port}"
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def _balance(posted: Any, pending_out: Any, pending_in: Any) -> Balance:
    # NUMERIC arrives as Decimal; int() of a Decimal is exact at any size.
    return Balance(int(posted), int(pending_out), int(pending_in))


class PostgresStore:
    """A ledger in the schema `schema` of the PostgreSQL database at `url`."""

    def __init__(self, url: str, schema: str = DEFAULT_SCHEMA) -> None:
        if not SCHEMA_NAME_PATTERN.match(schema):
            raise ValueError(
                f"schema name {schema!r}: use letters, digits and '_', starting with a letter"
            )
        self._url = url
        self.schema = schema
        self._lock_key = lock_key(schema)
        self._lock = threading.RLock()
        self._closed = False
        self._connection = self._connect()

    @property
    def url(self) -> str:
        return self._url

    def _connect(self) -> psycopg.Connection[Any]:
        try:
            connection = psycopg.connect(
                self._url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S
            )
        except psycopg.OperationalError as error:
            raise StoreError(
                "could not connect to PostgreSQL", store=redact(self._url), reason=str(error)
            ) from error
        # pg_temp stays first for relations, so the staging table resolves ahead of the schema.
        connection.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self.schema)))
        # Applies to the advisory lock too: a writer gives up as the SQLite store's does.
        connection.execute(f"SET lock_timeout = '{LOCK_TIMEOUT}'")
        connection.execute(BALANCES_STAGE)
        return connection

    def _conn(self) -> psycopg.Connection[Any]:
        """The connection, opened again if the server dropped it. Call with the lock held."""
        if self._closed:
            raise StoreError("the store is closed", store=redact(self._url))
        if self._connection.broken or self._connection.closed:
            self._connection = self._connect()
        return self._connection

    def _not_initialised(self) -> StoreNotInitialised:
        return StoreNotInitialised(store=redact(self._url), schema=self.schema)

    # --- lifecycle ------------------------------------------------------------------------

    def initialise(self) -> None:
        with self._lock:
            connection = self._conn()
            with connection.transaction():
                # Initialisers and writers of this ledger wait for one another.
                connection.execute("SELECT pg_advisory_xact_lock(%s)", (self._lock_key,))
                connection.execute(
                    sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema))
                )
                connection.execute(TABLES)
                connection.execute(PAYMENTS_SCHEMA)
                connection.execute(POSTGRES_DISPATCH_SCHEMA)
                connection.execute(POSTGRES_EVENTS_SCHEMA)
                connection.execute(
                    "INSERT INTO ledger_meta (key, value) VALUES ('schema_version', %s) "
                    "ON CONFLICT (key) DO NOTHING",
                    (str(SCHEMA_VERSION),),
                )

    def is_initialised(self) -> bool:
        with self._lock:
            row = (
                self._conn()
                .execute(
                    "SELECT EXISTS (SELECT 1 FROM pg_tables "
                    "WHERE schemaname = %s AND tablename = 'journal')",
                    (self.schema,),
                )
                .fetchone()
            )
        return bool(row and row[0])

    def drop_schema(self) -> None:
        """Drop the ledger's schema and everything in it. For tests and throwaway ledgers."""
        with self._lock:
            connection = self._conn()
            with connection.transaction():
                connection.execute("SELECT pg_advisory_xact_lock(%s)", (self._lock_key,))
                connection.execute(
                    sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(self.schema))
                )

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._connection.close()

    @contextmanager
    def write(self) -> Iterator[_PostgresWrite]:
        with self._lock, ExitStack() as stack:
            connection = self._begin_write(stack)
            yield _PostgresWrite(connection, self._read_head(connection))

    def _begin_write(self, stack: ExitStack) -> psycopg.Connection[Any]:
        """Open the transaction on `stack` and take the ledger's lock. Nothing has been done
        yet if that fails, so a connection the server dropped is opened again and tried once
        more; a lock not had within LOCK_TIMEOUT is a StoreError, as it is for SQLite."""
        for attempt in (1, 2):
            connection = self._conn()
            try:
                stack.enter_context(connection.transaction())
                connection.execute("SELECT pg_advisory_xact_lock(%s)", (self._lock_key,))
            except psycopg.OperationalError as error:
                if attempt == 1 and connection.broken:
                    with suppress(psycopg.Error):  # ending what began on the dead connection
                        stack.close()
                    continue
                raise StoreError(
                    "could not begin a write", store=redact(self._url), reason=str(error)
                ) from error
            return connection
        raise AssertionError("unreachable")

    # --- reads ----------------------------------------------------------------------------

    def _read_head(self, connection: psycopg.Connection[Any]) -> ChainHead:
        try:
            row = connection.execute(
                "SELECT seq, hash, at_us FROM journal ORDER BY seq DESC LIMIT 1"
            ).fetchone()
        except pg_errors.UndefinedTable as error:
            raise self._not_initialised() from error
        return GENESIS if row is None else ChainHead(row[0], bytes(row[1]), row[2])

    def _all(self, query: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """One read statement in autocommit. A connection the server dropped since the last
        use is opened again and the read retried once: it changes nothing, so that is safe."""
        with self._lock:
            for attempt in (1, 2):
                connection = self._conn()
                try:
                    return connection.execute(query, params).fetchall()
                except pg_errors.UndefinedTable as error:
                    raise self._not_initialised() from error
                except psycopg.OperationalError:
                    if attempt == 2 or not connection.broken:
                        raise
            raise AssertionError("unreachable")

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Rows of a read, for the other services' tables in this schema."""
        return self._all(sql, params)

    def _one(self, query: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        rows = self._all(query, params)
        return rows[0] if rows else None

    def head(self) -> ChainHead:
        row = self._one("SELECT seq, hash, at_us FROM journal ORDER BY seq DESC LIMIT 1")
        return GENESIS if row is None else ChainHead(row[0], bytes(row[1]), row[2])

    def entry(self, seq: int) -> StoredEntry | None:
        row = self._one(f"SELECT {ENTRY_COLUMNS} FROM journal WHERE seq = %s", (seq,))
        return None if row is None else _entry(row)

    def entry_by_id(self, entry_id: str) -> StoredEntry | None:
        row = self._one(f"SELECT {ENTRY_COLUMNS} FROM journal WHERE id = %s", (entry_id,))
        return None if row is None else _entry(row)

    def entries(self, from_seq: int = 1, to_seq: int | None = None) -> Iterator[StoredEntry]:
        last = to_seq if to_seq is not None else 2**62
        cursor = from_seq
        while cursor <= last:
            rows = self._all(
                f"SELECT {ENTRY_COLUMNS} FROM journal "
                "WHERE seq >= %s AND seq <= %s ORDER BY seq LIMIT %s",
                (cursor, last, STREAM_CHUNK),
            )
            if not rows:
                return
            for row in rows:
                yield _entry(row)
            cursor = rows[-1][0] + 1

    def legs(self, from_seq: int = 1, to_seq: int | None = None) -> Iterator[StoredLeg]:
        last = to_seq if to_seq is not None else 2**62
        columns = LEG_COLUMNS
        order = f"ORDER BY seq, address, asset LIMIT {STREAM_CHUNK}"
        rows = self._all(
            f"SELECT {columns} FROM legs WHERE seq >= %s AND seq <= %s {order}",
            (from_seq, last),
        )
        while rows:
            for seq, address, asset, posted, out, inn in rows:
                yield StoredLeg(seq, address, asset, _balance(posted, out, inn))
            after = rows[-1][:3]
            rows = self._all(
                f"SELECT {columns} FROM legs "
                f"WHERE (seq, address, asset) > (%s, %s, %s) AND seq <= %s {order}",
                (*after, last),
            )

    def assets(self) -> list[Asset]:
        rows = self._all("SELECT code, scale, kind FROM assets ORDER BY code")
        return [asset_from_row(*row) for row in rows]

    def accounts(
        self, prefix: str | None = None, *, asset: str | None = None,
        after: str | None = None, descending: bool = False, limit: int | None = None,
    ) -> list[Account]:
        query, params = accounts_query(
            f"SELECT {ACCOUNT_COLUMNS} FROM accounts", "%s",
            _prefix_range(prefix) if prefix else None, asset, after, descending, limit)
        return [account_from_row(row) for row in self._all(query, params)]

    def balances(self, prefix: str | None = None) -> dict[BalanceKey, Balance]:
        query = f"SELECT {BALANCE_COLUMNS} FROM balances"
        params: tuple[Any, ...] = ()
        if prefix:
            query += " WHERE address >= %s AND address < %s"
            params = _prefix_range(prefix)
        rows = self._all(query + " ORDER BY address, asset", params)
        return {(a, s): _balance(p, o, i) for a, s, p, o, i in rows}

    def pendings(self, state: PendingState | None = None) -> list[PendingTransfer]:
        query = f"SELECT {PENDING_COLUMNS} FROM pendings"
        params: tuple[Any, ...] = ()
        if state is not None:
            query += " WHERE state = %s"
            params = (state.value,)
        rows = self._all(query + " ORDER BY created_seq", params)
        return [pending_from_row(row) for row in rows]

    def pendings_page(self, state: PendingState | None, *, before: str | None,
                      limit: int) -> list[PendingTransfer]:
        query, params = pendings_page_query(PENDING_COLUMNS, "%s", state, before, limit)
        return [pending_from_row(row) for row in self._all(query, params)]

    def pending(self, pending_id: str) -> PendingTransfer | None:
        row = self._one(f"SELECT {PENDING_COLUMNS} FROM pendings WHERE id = %s", (pending_id,))
        return None if row is None else pending_from_row(row)

    def balance_at(self, address: str, asset: str, seq: int) -> Balance:
        row = self._one(
            "SELECT posted, pending_out, pending_in FROM legs "
            "WHERE address = %s AND asset = %s AND seq <= %s ORDER BY seq DESC LIMIT 1",
            (address, asset, seq),
        )
        return Balance() if row is None else _balance(*row)

    def history(
        self, address: str, asset: str | None, limit: int, before_seq: int | None
    ) -> list[tuple[str, HistoryRow]]:
        params: list[Any] = [address]
        where = "address = %s"
        if asset is not None:
            where += " AND asset = %s"
            params.append(asset)
        if before_seq is not None:
            where += " AND seq < %s"
            params.append(before_seq)
        params.append(limit)
        # The page is chosen first; only its rows look up the leg before them.
        query = f"""
            SELECT l.asset, l.seq, j.id, j.kind, j.at_us, l.posted, l.pending_out, l.pending_in,
                   p.posted, p.pending_out, p.pending_in
            FROM (SELECT seq, address, asset, posted, pending_out, pending_in FROM legs
                  WHERE {where} ORDER BY seq DESC, asset LIMIT %s) l
            JOIN journal j ON j.seq = l.seq
            LEFT JOIN LATERAL (
                SELECT posted, pending_out, pending_in FROM legs p
                WHERE p.address = l.address AND p.asset = l.asset AND p.seq < l.seq
                ORDER BY p.seq DESC LIMIT 1
            ) p ON true
            ORDER BY l.seq DESC, l.asset
        """
        return history_rows(self._all(query, params))

    def replace_balances(self, balances: dict[BalanceKey, Balance]) -> None:
        with self.write() as session:
            session.connection.execute("DELETE FROM balances")
            session.copy_rows(
                f"balances ({BALANCE_COLUMNS})",
                [key + balance for key, balance in balances.items()],
                BALANCE_TYPES,
            )


def _prefix_range(prefix: str) -> tuple[str, str]:
    """The addresses that start with `prefix`, as a range the primary key can scan: in the "C"
    collation nothing that starts with it sorts at or above prefix + U+10FFFF (as in SQLite)."""
    return prefix, prefix + "\U0010ffff"


_ACCOUNT_ORDER = itemgetter(1, 2, 0)  # a leg row's (address, asset, seq)


def _parsed_metadata(rows: list[tuple[Any, ...]]) -> Iterator[tuple[Any, ...]]:
    """Account rows with their metadata text parsed, once per distinct text: most accounts of a
    batch share the same few (often `{}`), and `Account` copies what it is given."""
    parsed: dict[str, Any] = {}
    for row in rows:
        text = row[-1]
        metadata = parsed.get(text)
        if metadata is None:
            metadata = parsed[text] = json.loads(text)
        yield (*row[:-1], metadata)


def _entry(row: Sequence[Any]) -> StoredEntry:
    seq, entry_id, kind, at_us, canonical, entry_hash = row
    return StoredEntry(seq, entry_id, kind, at_us, bytes(canonical), bytes(entry_hash))


class _PostgresWrite:
    """One transaction holding the ledger's advisory lock: the only writer until it ends."""

    def __init__(self, connection: psycopg.Connection[Any], head: ChainHead) -> None:
        self.connection = connection
        self._head = head

    @property
    def head(self) -> ChainHead:
        return self._head

    def append_events(self, events: Sequence[Event], *, numbered: bool = False) -> list[Event]:
        return append_events(self.connection, "%s", events, numbered=numbered)

    def _any(self, query: str, values: Iterable[Any]) -> list[tuple[Any, ...]]:
        """Rows of `query`, whose one parameter is `= ANY(%s)` of the values as an array.

        Never a prepared statement: a generic plan would see the array as an opaque parameter
        and, on a sequential scan, test each row against every element in turn; planned with
        the array in hand, PostgreSQL probes an index or a hash of the elements."""
        wanted = list(values)
        if not wanted:
            return []
        return self.connection.execute(query, (wanted,), prepare=False).fetchall()

    def copy_rows(
        self, target: str, rows: Iterable[Sequence[Any]], binary_types: Sequence[str] = ()
    ) -> None:
        """COPY `rows` into `target` ("table (columns)"): as text, or in the binary format when
        the columns' `binary_types` are given (raw bytes for BYTEA instead of hex)."""
        statement = f"COPY {target} FROM STDIN"
        if binary_types:
            statement += " (FORMAT BINARY)"
        with self.connection.cursor() as cursor, cursor.copy(statement) as copy:
            if binary_types:
                copy.set_types(binary_types)
            write_row = copy.write_row
            for row in rows:
                write_row(row)

    def load_assets(self) -> dict[str, Asset]:
        rows = self.connection.execute("SELECT code, scale, kind FROM assets").fetchall()
        return {row[0]: asset_from_row(*row) for row in rows}

    def load_accounts(self, addresses: Iterable[str]) -> dict[str, Account]:
        rows = self._any(
            f"SELECT {ACCOUNT_TEXT_COLUMNS} FROM accounts WHERE address = ANY(%s)", addresses
        )
        return {row[0]: account_from_row(row) for row in _parsed_metadata(rows)}

    def load_balances(self, keys: Iterable[BalanceKey]) -> dict[BalanceKey, Balance]:
        wanted = set(keys)
        rows = self._any(
            f"SELECT {BALANCE_COLUMNS} FROM balances WHERE address = ANY(%s)",
            {address for address, _ in wanted},
        )
        return {(a, s): _balance(p, o, i) for a, s, p, o, i in rows if (a, s) in wanted}

    def load_pendings(self, ids: Iterable[str]) -> dict[str, PendingTransfer]:
        rows = self._any(f"SELECT {PENDING_COLUMNS} FROM pendings WHERE id = ANY(%s)", ids)
        return {row[0]: pending_from_row(row) for row in rows}

    def due_pendings(self, at_us: int, limit: int) -> list[PendingTransfer]:
        rows = self.connection.execute(
            f"SELECT {PENDING_COLUMNS} FROM pendings WHERE state = 'pending' "
            "AND expires_at_us <= %s ORDER BY expires_at_us, id LIMIT %s",
            (at_us, limit),
        ).fetchall()
        return [pending_from_row(row) for row in rows]

    def load_idempotency(self, keys: Iterable[str]) -> dict[str, IdempotencyRecord]:
        rows = self._any(
            "SELECT key, request_hash, seq, entry_id FROM idempotency WHERE key = ANY(%s)", keys
        )
        return {row[0]: IdempotencyRecord(bytes(row[1]), row[2], row[3]) for row in rows}

    def load_transactions(self, ids: Iterable[str]) -> dict[str, PostedTransaction]:
        rows = self._any("SELECT id, kind, canonical FROM journal WHERE id = ANY(%s)", ids)
        return {row[0]: transaction_from_canonical(row[1], bytes(row[2])) for row in rows}

    def load_reversed(self, ids: Iterable[str]) -> dict[str, str]:
        rows = self._any(
            "SELECT original_id, reversal_id FROM reversals WHERE original_id = ANY(%s)", ids
        )
        return {row[0]: row[1] for row in rows}

    def save(self, outcome: BatchOutcome) -> None:
        # Rows come with amounts as Python ints, which the binary format sends as NUMERIC
        # exactly; BYTEA goes as raw bytes rather than hex text.
        journal, legs, balances = outcome_rows(outcome)
        if journal:
            self.copy_rows(f"journal ({ENTRY_COLUMNS})", journal, JOURNAL_TYPES)
        if legs:
            # In account order, consecutive rows land on the same pages of `legs_by_account`
            # instead of all over it; the primary key's new entries are all at its end anyway.
            legs.sort(key=_ACCOUNT_ORDER)
            self.copy_rows(f"legs ({LEG_COLUMNS})", legs, LEG_TYPES)
        if balances:
            balances.sort()  # the same for the primary key of `balances` (keys are unique)
            # The staging table is this connection's own; what an earlier write left is cleared.
            self.connection.execute("TRUNCATE pg_temp.fundpool_balances_in")
            self.copy_rows(
                f"pg_temp.fundpool_balances_in ({BALANCE_COLUMNS})", balances, BALANCE_TYPES
            )
            self.connection.execute(
                f"INSERT INTO balances ({BALANCE_COLUMNS}) SELECT {BALANCE_COLUMNS} "
                "FROM pg_temp.fundpool_balances_in "
                "ON CONFLICT (address, asset) DO UPDATE SET "
                "posted = excluded.posted, pending_out = excluded.pending_out, "
                "pending_in = excluded.pending_in"
            )
        cursor = self.connection.cursor()
        execute_many = cursor.executemany
        if outcome.assets:
            execute_many(
                "INSERT INTO assets (code, scale, kind) VALUES (%s, %s, %s)",
                [(a.code, a.scale, a.kind.value) for a in outcome.assets],
            )
        if outcome.accounts:
            execute_many(
                f"INSERT INTO accounts ({ACCOUNT_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s)",
                [account_to_row(a) for a in outcome.accounts],
            )
        if outcome.pendings_new:
            execute_many(
                f"INSERT INTO pendings ({PENDING_COLUMNS}) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                [pending_to_row(p) for p in outcome.pendings_new],
            )
        if outcome.pendings_changed:
            execute_many(
                "UPDATE pendings SET state = %s, posted_amount_minor = %s, finished_seq = %s "
                "WHERE id = %s AND state = 'pending'",
                [
                    (p.state.value, str(p.posted_amount_minor), p.finished_seq, p.id)
                    for p in outcome.pendings_changed
                ],
            )
            # psycopg adds up the row counts of executemany's statements
            invariant(
                cursor.rowcount == len(outcome.pendings_changed),
                "every finished pending transfer was pending in the store",
            )
        if outcome.idempotency:
            execute_many(
                "INSERT INTO idempotency (key, request_hash, seq, entry_id) "
                "VALUES (%s, %s, %s, %s)",
                [(k, r.request_hash, r.seq, r.entry_id) for k, r in outcome.idempotency],
            )
        if outcome.reversals:
            execute_many(
                "INSERT INTO reversals (original_id, reversal_id) VALUES (%s, %s)",
                list(outcome.reversals),
            )
