"""One connection to a database, shared between threads: the only place that opens one.

A `Database` is a SQLite file (WAL, durable commits; docs/adr/0004) or a PostgreSQL schema
(psycopg 3 in autocommit, the schema on the search path). A read is one statement outside any
transaction; `transaction()` is one explicit transaction that excludes the other writers of the
same name: `BEGIN IMMEDIATE` on SQLite (the whole file), a transaction-scoped advisory lock on
PostgreSQL (keyed by the name and the schema), so processes may share a database and a ledger's
hash chain keeps one total order. The SQLite writers of one process also queue on a lock of
the file's (`SQLITE_WRITERS`), so they never wait in SQLite's sleeping busy handler. A
PostgreSQL connection the server dropped is opened again, and a read or the start of a
transaction retried once: nothing had been done yet.

Statements are written with `?` marks; `Dialect.sql` turns them into the driver's.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path
from types import ModuleType
from typing import Any

from fundpool.core.errors import StoreError, StoreNotInitialised
from fundpool.sql.dialect import Dialect, dialect
from fundpool.sql.url import DEFAULT_SCHEMA, DatabaseUrl, parse_url, redact

BUSY_TIMEOUT_S = 30.0
LOCK_TIMEOUT = "30s"  # as long as SQLite waits for its write lock
CONNECT_TIMEOUT_S = 10
PAGE_SIZE_BYTES = 16_384
CACHE_KIB = 65_536
MMAP_BYTES = 256 * 1024 * 1024
WAL_CHECKPOINT_PAGES = 4_000  # 64 MiB of WAL at 16 KiB pages

Connection = Any  # sqlite3.Connection | psycopg.Connection[Any]
# Values matched in one statement on SQLite (its limit on parameters is 32,766).
LOOKUP_CHUNK = 500


def database_of(store: object) -> Database:
    """The database a store keeps its tables in (every SQL store has `db`): for the tables
    that live beside a ledger's on a connection of their own (projections, credentials, kept
    answers). Anything else is a TypeError."""
    db = getattr(store, "db", None)
    if not isinstance(db, Database):
        raise TypeError(f"no database behind {type(store).__name__}")
    return db


def lock_key(name: str) -> int:
    """A signed 64-bit advisory lock key for `name`, the same in every process."""
    digest = hashlib.sha256(name.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class _SqliteWriters:
    """One gate per SQLite file for the writers of this process.

    Two connections of one process that write the same file (the ledger's writer and the
    monitor's projections, say) would otherwise meet in SQLite's busy handler, which sleeps
    1, 2, 5, 10 ms... between tries: a commit that finds another one under way waits for the
    next sleep to end, not for the other commit. Waiting on a lock here, the next writer starts
    the moment the last one ends. Writers of other processes still meet in the busy handler."""

    def __init__(self) -> None:
        self._gates: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    @staticmethod
    def key(path: str) -> str | None:
        """What names the file at `path` (relative to the working directory now); none for an
        in-memory database, which is a file of its own."""
        if path == ":memory:" or path.startswith("file:"):
            return None
        return str(Path(path).resolve())

    def gate(self, key: str) -> threading.Lock:
        with self._guard:
            return self._gates.setdefault(key, threading.Lock())

    def forget(self) -> None:
        """New gates for a forked child: a gate some other thread held at the fork would
        otherwise stay shut in the child for ever."""
        self._gates = {}
        self._guard = threading.Lock()


SQLITE_WRITERS = _SqliteWriters()
os.register_at_fork(after_in_child=SQLITE_WRITERS.forget)


def connect_sqlite(path: str) -> sqlite3.Connection:
    connection = sqlite3.connect(
        path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
    )
    # Larger pages mean fewer, shallower B-tree splits for the ledger's many small rows; it
    # takes effect only when the file is created. Measured with bench: +15% raw write rate.
    connection.execute(f"PRAGMA page_size={PAGE_SIZE_BYTES}")
    # WAL lets readers run beside the writer; FULL makes every commit durable on return.
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=FULL")
    connection.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
    connection.execute(f"PRAGMA mmap_size={MMAP_BYTES}")
    # Checkpoint the WAL into the file less often (in pages): each checkpoint rewrites hot pages
    # once for many commits. Durability is the WAL's fsync at commit, unchanged.
    connection.execute(f"PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_PAGES}")
    return connection


def pg_errors() -> ModuleType:
    """psycopg's errors. The driver loads with the first PostgreSQL database, or when an error
    must be told from its own: a command on a SQLite file that does not fail never loads it."""
    from psycopg import errors

    return errors


def missing_table(error: BaseException) -> bool:
    """Whether a driver's error says a table is not there (a store not initialised)."""
    if isinstance(error, pg_errors().UndefinedTable):
        return True
    return isinstance(error, sqlite3.OperationalError) and "no such table" in str(error)


class _PipelineMode:
    """psycopg's pipeline mode around one PostgreSQL transaction: statements are queued and
    sent together, and the client waits for the server only where it needs an answer (a read,
    a count, the commit). It lasts as long as the transaction (psycopg nests the transaction
    in it), and allows no COPY and no statement of several commands."""

    __slots__ = ("_context", "_pipeline")

    def __init__(self, connection: Connection) -> None:
        self._context = connection.pipeline()
        self._pipeline: Any = None

    def __enter__(self) -> _PipelineMode:
        self._pipeline = self._context.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        pipeline, self._pipeline = self._pipeline, None
        if pipeline is not None:
            self._context.__exit__(*exc)

    @property
    def open(self) -> bool:
        return self._pipeline is not None

    def sync(self) -> None:
        """Send what is queued and wait for every answer (errors are raised here)."""
        self._pipeline.sync()


class Transaction:
    """One open transaction: statements written with `?` marks, run on its connection.

    On PostgreSQL a transaction may run in pipeline mode (`Database.transaction(pipeline=
    True)`). Then `send` and `send_many` only queue their statement: it reaches the server with
    the next statement that needs an answer, or with the commit, and an error it meets is raised
    there. Everything else (`execute`, `rows`, `one`, `many`, `rows_in`) answers as it does
    outside the mode: the client waits for the server."""

    __slots__ = ("_pipeline", "connection", "dialect", "first")

    def __init__(self, connection: Connection, dialect: Dialect,
                 first: list[Any] | None = None, pipeline: _PipelineMode | None = None
                 ) -> None:
        self.connection = connection
        self.dialect = dialect
        self.first = first  # the rows of the statement the transaction began with, if any
        self._pipeline = pipeline

    @property
    def pipelined(self) -> bool:
        """Whether statements sent now are queued (pipeline mode) rather than run at once."""
        return self._pipeline is not None and self._pipeline.open

    def send(self, query: str, params: Sequence[Any] = ()) -> None:
        """Run a statement whose answer nobody reads: queued in pipeline mode."""
        self.connection.execute(self.dialect.sql(query), params)

    def send_many(self, query: str, rows: Sequence[Sequence[Any]]) -> None:
        """`many` without the count: queued in pipeline mode."""
        if not rows:
            return
        if self.dialect.is_postgres:
            with self.connection.cursor() as cursor:
                cursor.executemany(self.dialect.sql(query), rows)
            return
        self.connection.executemany(query, rows)

    def copy(self, target: str, rows: Iterable[Sequence[Any]], types: Sequence[str]) -> None:
        """PostgreSQL's COPY of `rows` into `target` ("table (columns)") in the binary format:
        the fastest way in per row (docs/adr/0014); amounts as Python ints go as NUMERIC
        exactly, BYTEA as raw bytes. Not in pipeline mode, which has no COPY."""
        with self.connection.cursor() as cursor, cursor.copy(
            f"COPY {target} FROM STDIN (FORMAT BINARY)"
        ) as copy:
            copy.set_types(types)
            write_row = copy.write_row
            for row in rows:
                write_row(row)

    def execute(self, query: str, params: Sequence[Any] = ()) -> Any:
        cursor = self.connection.execute(self.dialect.sql(query), params)
        if self.pipelined:
            self._pipeline.sync()  # type: ignore[union-attr]  # its rowcount is known now
        return cursor

    def rows(self, query: str, params: Sequence[Any] = ()) -> list[Any]:
        return list(self.connection.execute(self.dialect.sql(query), params).fetchall())

    def one(self, query: str, params: Sequence[Any] = ()) -> Any:
        return self.connection.execute(self.dialect.sql(query), params).fetchone()

    def rows_in(self, query: str, column: str, values: Iterable[Any], *first: Any
                ) -> list[Any]:
        """Rows of `query`, whose `{match}` matches `column` against `values` (after the
        parameters `first`): one statement with an array on PostgreSQL, never prepared (a
        generic plan would see the array as opaque and test every row against each element;
        planned with it in hand, PostgreSQL probes an index), chunks of marks on SQLite."""
        wanted = list(values)
        if not wanted:
            return []
        dialect = self.dialect
        size = len(wanted) if dialect.is_postgres else LOOKUP_CHUNK
        rows: list[Any] = []
        for start in range(0, len(wanted), size):
            match, params = dialect.in_values(column, wanted[start:start + size])
            text = dialect.sql(query.format(match=match))
            if dialect.is_postgres:
                cursor = self.connection.execute(text, (*first, *params), prepare=False)
            else:
                cursor = self.connection.execute(text, (*first, *params))
            rows.extend(cursor.fetchall())
        return rows

    def many(self, query: str, rows: Sequence[Sequence[Any]]) -> int:
        """Run `query` once per row; the number of rows it changed in all."""
        if not rows:
            return 0
        if self.dialect.is_postgres:
            with self.connection.cursor() as cursor:
                cursor.executemany(self.dialect.sql(query), rows)
                if self.pipelined:
                    self._pipeline.sync()  # type: ignore[union-attr]
                return int(cursor.rowcount)
        return int(self.connection.executemany(query, rows).rowcount)

    def script(self, text: str) -> None:
        """Run several statements (no parameters) inside this transaction. SQLite's
        `executescript` would commit first, so its statements go one by one."""
        if self.dialect.is_postgres:
            self.connection.execute(text)
            return
        for statement in split_statements(text):
            self.connection.execute(statement)


def split_statements(text: str) -> list[str]:
    """The complete statements of a SQLite script, in order."""
    statements: list[str] = []
    pending = ""
    for line in text.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            if pending.strip().strip(";").strip():
                statements.append(pending.strip())
            pending = ""
    if pending.strip():
        statements.append(pending.strip())
    return statements


class Database:
    """A SQLite file or a PostgreSQL schema on one connection, safe to share between threads.

    `create=False` leaves a SQLite file that does not exist uncreated until `create()`: a read
    pointed at the wrong directory says `store_not_initialised`, and leaves no empty file.
    `on_connect` runs on every new connection (session settings, temporary tables)."""

    def __init__(
        self,
        url: str | DatabaseUrl,
        *,
        create: bool = True,
        on_connect: Callable[[Connection], None] | None = None,
    ) -> None:
        self.location = url if isinstance(url, DatabaseUrl) else parse_url(url)
        self.dialect: Dialect = dialect(self.location.kind)
        self.schema = (
            (self.location.schema or DEFAULT_SCHEMA) if self.dialect.is_postgres else None
        )
        self._on_connect = on_connect
        self._lock = threading.RLock()
        self._gate_key = (
            None if self.dialect.is_postgres else SQLITE_WRITERS.key(self.location.target)
        )
        self._closed = False
        self._connection: Connection | None = None
        if self.dialect.is_postgres or create or self._sqlite_exists():
            self._connection = self._connect()

    # --- identity -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return self.location.text

    @property
    def shown(self) -> str:
        """The URL without its password, for messages."""
        return redact(self.url)

    @property
    def is_postgres(self) -> bool:
        return self.dialect.is_postgres

    @property
    def _schema_name(self) -> str:
        return self.schema or DEFAULT_SCHEMA

    @property
    def lock(self) -> threading.RLock:
        """Held around every use of the connection; a store may hold it across several."""
        return self._lock

    def lock_key(self, name: str) -> int:
        return lock_key(f"{name}:{self.schema}" if self.schema else name)

    def not_initialised(self) -> StoreNotInitialised:
        if self.schema is None:
            return StoreNotInitialised(store=self.shown)
        return StoreNotInitialised(store=self.shown, schema=self.schema)

    # --- connections ----------------------------------------------------------------------

    def _sqlite_exists(self) -> bool:
        return self.location.target == ":memory:" or Path(self.location.target).exists()

    def _connect(self) -> Connection:
        if not self.dialect.is_postgres:
            path = self.location.target
            if path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            connection: Connection = connect_sqlite(path)
        else:
            import psycopg
            from psycopg import sql as pg_sql

            try:
                connection = psycopg.connect(
                    self.location.target, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S
                )
            except psycopg.OperationalError as error:
                raise StoreError(
                    "could not connect to PostgreSQL", store=self.shown, reason=str(error)
                ) from error
            # pg_temp stays first for relations, so a temporary table resolves ahead of it.
            connection.execute(
                pg_sql.SQL("SET search_path TO {}").format(pg_sql.Identifier(self._schema_name))
            )
            # Applies to advisory locks too: a writer gives up as SQLite's does.
            connection.execute(f"SET lock_timeout = '{LOCK_TIMEOUT}'")
        if self._on_connect is not None:
            self._on_connect(connection)
        return connection

    def create(self) -> None:
        """Make the database exist: the SQLite file, or the PostgreSQL schema (processes
        starting together take turns, as CREATE SCHEMA would race)."""
        with self._lock:
            if self._connection is None:
                self._connection = self._connect()
            if self.dialect.is_postgres:
                from psycopg import sql as pg_sql

                connection = self.connection()
                with connection.transaction():
                    connection.execute(
                        "SELECT pg_advisory_xact_lock(%s)", (self.lock_key("fundpool.schema"),)
                    )
                    connection.execute(
                        pg_sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(
                            pg_sql.Identifier(self._schema_name)
                        )
                    )

    def exists(self) -> bool:
        """Whether the SQLite file or the PostgreSQL schema is there."""
        if not self.dialect.is_postgres:
            return self._connection is not None
        row = self.rows(
            "SELECT 1 FROM information_schema.schemata WHERE schema_name = ?", (self.schema,)
        )
        return bool(row)

    def connection(self) -> Connection:
        """The connection, opened again if the server dropped it. Call with the lock held."""
        if self._closed:
            raise StoreError("the store is closed", store=self.shown)
        if self._connection is None:
            raise self.not_initialised()
        if self.dialect.is_postgres and (self._connection.broken or self._connection.closed):
            self._connection = self._connect()
        return self._connection

    @property
    def current(self) -> Connection | None:
        """The connection as it is, never opened again: for what must end with it (a session
        advisory lock is lost with its connection, and must not silently come back)."""
        return self._connection

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    def drop_schema(self) -> None:
        """Drop the PostgreSQL schema and everything in it. For tests and throwaway stores."""
        if not self.dialect.is_postgres:
            raise StoreError("drop_schema is for PostgreSQL stores", store=self.shown)
        from psycopg import sql as pg_sql

        with self._lock:
            connection = self.connection()
            with connection.transaction():
                connection.execute(
                    "SELECT pg_advisory_xact_lock(%s)", (self.lock_key("fundpool.schema"),)
                )
                connection.execute(
                    pg_sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(
                        pg_sql.Identifier(self._schema_name)
                    )
                )

    # --- reads ----------------------------------------------------------------------------

    def rows(self, query: str, params: Sequence[Any] = (), *, prepare: bool | None = None
             ) -> list[Any]:
        """The rows of one read in autocommit; a missing table is `store_not_initialised`."""
        text = self.dialect.sql(query)
        with self._lock:
            for attempt in (1, 2):
                connection = self.connection()
                try:
                    if self.dialect.is_postgres:
                        return list(connection.execute(text, params, prepare=prepare).fetchall())
                    return list(connection.execute(text, params).fetchall())
                except (pg_errors().UndefinedTable, sqlite3.OperationalError) as error:
                    if missing_table(error):
                        raise self.not_initialised() from error
                    raise
                except pg_errors().OperationalError:
                    if attempt == 2 or not connection.broken:
                        raise
            raise AssertionError("unreachable")

    def one(self, query: str, params: Sequence[Any] = ()) -> Any:
        rows = self.rows(query, params)
        return rows[0] if rows else None

    def query(self, query: str, params: Sequence[Any] = ()) -> list[Any]:
        """Rows of a read already in the driver's parameter style (`Dialect.mark`)."""
        with self._lock:
            return list(self.connection().execute(query, params).fetchall())

    def has_table(self, name: str) -> bool:
        if self.dialect.is_postgres:
            return bool(self.rows(
                "SELECT 1 FROM pg_tables WHERE schemaname = ? AND tablename = ?",
                (self.schema, name)))
        if self._connection is None:
            return False
        return bool(self.rows(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)))

    # --- writes ---------------------------------------------------------------------------

    @contextmanager
    def transaction(self, lock: str | None = None, *, first: str | None = None,
                    pipeline: bool = False) -> Iterator[Transaction]:
        """One transaction, committed when the block ends and rolled back if it raises.
        `lock` names the writers it excludes on PostgreSQL (SQLite's excludes all). `first` is
        a read (no parameters) run as soon as the lock is held, its rows in `Transaction.first`.

        `pipeline` runs a PostgreSQL transaction in pipeline mode (`Transaction`): the begin,
        the lock and `first` then travel in one round trip, and what is sent with `send` goes
        with the commit in the last, so a small write costs two round trips instead of one per
        statement. Durability is the same: the commit still returns only once it is on disk."""
        with self._lock, ExitStack() as stack:
            connection, rows, mode = self._begin(stack, lock, first, pipeline)
            yield Transaction(connection, self.dialect, rows, mode)

    def _begin(self, stack: ExitStack, lock: str | None, first: str | None, pipeline: bool
               ) -> tuple[Connection, list[Any] | None, _PipelineMode | None]:
        """Open the transaction on `stack`. Nothing has been done yet if that fails, so a
        connection the server dropped is opened again and tried once more; a lock not had
        within the timeout is a StoreError. A failing `first` read raises as it is."""
        if not self.dialect.is_postgres:
            connection = self.connection()
            if self._gate_key is not None:
                gate = SQLITE_WRITERS.gate(self._gate_key)
                if not gate.acquire(timeout=BUSY_TIMEOUT_S):
                    raise StoreError("could not begin a write", store=self.shown,
                                     reason="another writer of this process held the file")
                stack.callback(gate.release)  # after the commit or rollback below
            try:
                connection.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as error:
                raise StoreError("could not begin a write", reason=str(error)) from error
            stack.enter_context(_sqlite_transaction(connection))
            rows = None if first is None else list(connection.execute(first).fetchall())
            return connection, rows, None
        import psycopg

        for attempt in (1, 2):
            connection = self.connection()
            mode: _PipelineMode | None = None
            try:
                if pipeline and psycopg.capabilities.has_pipeline():
                    mode = stack.enter_context(_pipelined_transaction(connection))
                else:
                    stack.enter_context(connection.transaction())
                if lock is not None:
                    connection.execute("SELECT pg_advisory_xact_lock(%s)", (self.lock_key(lock),))
                rows = None if first is None else list(connection.execute(first).fetchall())
                if mode is not None and first is None:
                    mode.sync()  # the lock is held before the block goes on
            except psycopg.OperationalError as error:
                if attempt == 1 and connection.broken:
                    with suppress(psycopg.Error):  # ending what began on the dead connection
                        stack.close()
                    continue
                raise StoreError(
                    "could not begin a write", store=self.shown, reason=str(error)
                ) from error
            return connection, rows, mode
        raise AssertionError("unreachable")


@contextmanager
def _sqlite_transaction(connection: sqlite3.Connection) -> Iterator[None]:
    """Commit a begun SQLite transaction when the block ends; roll it back if it raises."""
    try:
        yield
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    try:
        connection.execute("COMMIT")
    except BaseException:
        if connection.in_transaction:  # a failed COMMIT can leave it open on the connection
            with suppress(sqlite3.Error):
                connection.execute("ROLLBACK")
        raise


@contextmanager
def _pipelined_transaction(connection: Connection) -> Iterator[_PipelineMode]:
    """A PostgreSQL transaction in pipeline mode, begun and ended by hand: psycopg's own
    `transaction()` waits for the server before its BEGIN and again before its COMMIT, which
    makes four round trips of what can be two: the begin with the first read, the writes with
    the commit (leaving the mode sends what is queued and waits for every answer). An error a
    queued statement met is raised there, and the transaction is rolled back: nothing of it
    stays."""
    import psycopg

    try:
        with _PipelineMode(connection) as mode:
            connection.execute("BEGIN")
            yield mode
            connection.execute("COMMIT")
    except BaseException:
        with suppress(psycopg.Error):
            if connection.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                connection.execute("ROLLBACK")
        raise
