"""`Idempotency-Key` for the POSTs whose domain has no key of its own.

The ledger's commands and payment creation keep their keys inside the same database transaction
as their effect (the strongest guarantee: a retry after a crash finds the effect or nothing),
so their routes hand the header to the domain. Every other POST (cancel, approve, acknowledge,
key management, log in) goes through this store, with the same semantics as the ledger's:

- the same key with the same request returns the first response again
  (`Idempotent-Replayed: true`), without doing anything;
- the same key with another request is 409 `idempotency_conflict`;
- a request still running under the key is 409 `idempotency_in_progress` (retry later); one
  that has run longer than `IN_PROGRESS_S` is taken to have died with its worker, and the key
  is free again;
- responses of errors the caller made (4xx) are kept like successes; a failure of the server
  (5xx) frees the key.

Keys are per caller: two API keys may use the same idempotency key for different requests.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import Request
from fastapi.responses import JSONResponse

from fundpool.core.errors import FundpoolError, IdempotencyConflict, InvalidIdempotencyKey
from fundpool.server.problems import STATUS_BY_CODE, error_problem, store_errors

IN_PROGRESS_S = 60
KEY_MAX_CHARS = 255
HEADER = "Idempotency-Key"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_idempotency (
    caller TEXT NOT NULL,
    key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    state TEXT NOT NULL,
    status INTEGER,
    body TEXT,
    started_at_us BIGINT NOT NULL,
    PRIMARY KEY (caller, key)
)
"""


def _lock_key(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


class IdempotencyInProgress(FundpoolError):
    code = "idempotency_in_progress"
    title = "a request with this idempotency key is still running; retry later"


def check_key(key: str | None) -> str | None:
    """The header's key, or None; 400 `invalid_idempotency_key` when it is not 1 to 255
    printable ASCII characters."""
    if key is None:
        return None
    if not 1 <= len(key) <= KEY_MAX_CHARS or not all(33 <= ord(c) <= 126 for c in key):
        raise InvalidIdempotencyKey(
            f"the {HEADER} header must be 1 to {KEY_MAX_CHARS} printable ASCII characters")
    return key


def request_hash(method: str, path: str, body: object) -> str:
    canonical = orjson.dumps({"m": method, "p": path, "b": body}, option=orjson.OPT_SORT_KEYS,
                             default=str)
    return hashlib.sha256(canonical).hexdigest()


@dataclass(frozen=True, slots=True)
class _Found:
    request_hash: str
    state: str
    status: int | None
    body: str | None
    started_at_us: int


class IdempotencyStore:
    """The kept responses, on a connection of their own (SQLite file or PostgreSQL schema)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._pg = url.startswith(("postgresql://", "postgres://"))
        self._lock = threading.Lock()
        self._mark = "%s" if self._pg else "?"
        self._connection: Any = self._connect()
        if self._pg:
            # Workers starting together would race on CREATE TABLE (a unique violation in
            # PostgreSQL's catalogue): they take turns.
            with self._connection.transaction():
                self._connection.execute("SELECT pg_advisory_xact_lock(%s)",
                                         (_lock_key("fundpool.api_idempotency"),))
                self._connection.execute(_SCHEMA)
        else:
            self._connection.execute(_SCHEMA)

    @classmethod
    def beside(cls, ledger_store: Any) -> IdempotencyStore:
        from fundpool.stores.projection_sql import ProjectionStore

        return cls(ProjectionStore.url_beside(ledger_store))

    def _connect(self) -> Any:
        if self._pg:
            from fundpool.stores.projection_sql import connect_postgres

            return connect_postgres(self.url)
        from fundpool.stores.projection_sql import connect_sqlite

        return connect_sqlite(self.url)

    def close(self) -> None:
        self._connection.close()

    def _sql(self, query: str) -> str:
        return query.replace("?", self._mark)

    def claim(self, caller: str, key: str, digest: str, now_us: int) -> _Found | None:
        """Take the key for a new request (None), or say what holds it."""
        with self._lock:
            inserted = self._connection.execute(self._sql(
                "INSERT INTO api_idempotency (caller, key, request_hash, state, started_at_us) "
                "VALUES (?, ?, ?, 'running', ?) ON CONFLICT (caller, key) DO NOTHING"),
                (caller, key, digest, now_us)).rowcount
            if inserted == 1:
                return None
            row = self._connection.execute(self._sql(
                "SELECT request_hash, state, status, body, started_at_us FROM api_idempotency "
                "WHERE caller = ? AND key = ?"), (caller, key)).fetchone()
            if row is None:  # freed in between: try once more
                return self._retake(caller, key, digest, now_us)
            found = _Found(*row)
            if found.state == "running" and now_us - found.started_at_us > IN_PROGRESS_S * 10**6 \
                    and found.request_hash == digest:
                # The request that took the key died with its worker: take it over.
                taken = self._connection.execute(self._sql(
                    "UPDATE api_idempotency SET started_at_us = ? WHERE caller = ? AND key = ? "
                    "AND state = 'running' AND started_at_us = ?"),
                    (now_us, caller, key, found.started_at_us)).rowcount
                if taken == 1:
                    return None
            return found

    def _retake(self, caller: str, key: str, digest: str, now_us: int) -> _Found | None:
        inserted = self._connection.execute(self._sql(
            "INSERT INTO api_idempotency (caller, key, request_hash, state, started_at_us) "
            "VALUES (?, ?, ?, 'running', ?) ON CONFLICT (caller, key) DO NOTHING"),
            (caller, key, digest, now_us)).rowcount
        return None if inserted == 1 else _Found(digest, "running", None, None, now_us)

    def find(self, caller: str, key: str) -> _Found | None:
        with self._lock:
            row = self._connection.execute(self._sql(
                "SELECT request_hash, state, status, body, started_at_us FROM api_idempotency "
                "WHERE caller = ? AND key = ?"), (caller, key)).fetchone()
        return None if row is None else _Found(*row)

    def keep(self, caller: str, key: str, status: int, body: bytes, now_us: int) -> None:
        """Keep a record under (caller, key) whatever was there: for the API's own small
        records (a payout file's payments), never for a caller's idempotency key."""
        with self._lock:
            self._connection.execute(self._sql(
                "INSERT INTO api_idempotency (caller, key, request_hash, state, status, body, "
                "started_at_us) VALUES (?, ?, '', 'done', ?, ?, ?) ON CONFLICT (caller, key) "
                "DO UPDATE SET state = 'done', status = excluded.status, body = excluded.body, "
                "started_at_us = excluded.started_at_us"),
                (caller, key, status, body.decode(), now_us))

    def prune(self, before_us: int, *, keep_prefix: str = "payout-file:") -> int:
        """Forget the answers kept for requests made before `before_us` (a retry that late
        is a new request); the API's own records under `keep_prefix` stay."""
        with self._lock:
            return int(self._connection.execute(self._sql(
                "DELETE FROM api_idempotency WHERE state = 'done' AND started_at_us < ? "
                "AND caller NOT LIKE ?"), (before_us, keep_prefix + "%")).rowcount)

    def finish(self, caller: str, key: str, status: int, body: bytes) -> None:
        with self._lock:
            self._connection.execute(self._sql(
                "UPDATE api_idempotency SET state = 'done', status = ?, body = ? "
                "WHERE caller = ? AND key = ?"), (status, body.decode(), caller, key))

    def release(self, caller: str, key: str) -> None:
        with self._lock:
            self._connection.execute(self._sql(
                "DELETE FROM api_idempotency WHERE caller = ? AND key = ? AND state = 'running'"),
                (caller, key))


def run_idempotent(
    store: IdempotencyStore, caller: str, key: str | None, digest: str, now_us: int,
    run: Callable[[], JSONResponse], *, kept: Callable[[Any], Any] | None = None,
) -> JSONResponse:
    """Run `run` once per (caller, key); see the module's docstring. `kept` turns a
    successful answer's document into what is kept for replays: a secret shown once (a new
    API key's) is never written to this table."""
    key = check_key(key)
    if key is None:
        return run()
    found = store.claim(caller, key, digest, now_us)
    if found is not None:
        if found.request_hash != digest:
            raise IdempotencyConflict(f"the {HEADER} was already used with another request",
                                      idempotency_key=key)
        if found.state != "done" or found.status is None or found.body is None:
            raise IdempotencyInProgress(idempotency_key=key)
        media = "application/problem+json" if found.status >= 400 else "application/json"
        replay = JSONResponse(orjson.loads(found.body), status_code=found.status,
                              media_type=media)
        replay.headers["Idempotent-Replayed"] = "true"
        return replay
    try:
        response = run()
    except FundpoolError as error:
        if STATUS_BY_CODE.get(error.code, 400) >= 500:
            store.release(caller, key)
            raise
        response = error_problem(error)
    except BaseException:
        store.release(caller, key)
        raise
    body = bytes(response.body)
    if kept is not None and response.status_code < 400:
        body = orjson.dumps(kept(orjson.loads(body)))
    store.finish(caller, key, response.status_code, body)
    return response


def idempotent_post(
    request: Request, key: str | None, body: object,
    run: Callable[[], JSONResponse | dict[str, object]], *, status: int = 200,
    kept: Callable[[Any], Any] | None = None,
) -> JSONResponse:
    """A route's POST run once per (caller, `Idempotency-Key`), `body` being what identifies
    the request beside its path: the one way routes use the kept answers. `run` answers a
    response, or a document sent with `status`."""
    api = request.app.state.api
    principal = request.scope.get("state", {}).get("principal")
    caller = "anonymous" if principal is None else f"{principal.kind}:{principal.id}"

    def respond() -> JSONResponse:
        answer = run()
        return answer if isinstance(answer, JSONResponse) else JSONResponse(answer, status)

    with store_errors():
        return run_idempotent(api.idempotency, caller, key,
                              request_hash("POST", request.url.path, body),
                              api.clock.now_us(), respond, kept=kept)
