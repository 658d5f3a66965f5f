"""`Idempotency-Key` for the POSTs whose domain has no key of its own.

The ledger's commands and payment creation keep their keys inside the same database transaction
as their effect (the strongest guarantee: a retry after a crash finds the effect or nothing),
so their routes hand the header to the domain. Every other POST (cancel, approve, acknowledge,
key management, log in) goes through this store, with the same semantics as the ledger's:

- the same key with the same request returns the first response again
  (`Idempotent-Replayed: true`), without doing anything;
- the same key with another request is 409 `idempotency_conflict`;
- a request still running under the key is 409 `idempotency_in_progress` (retry later); one
  that has run longer than the store's `IN_PROGRESS_S` (a minute) is taken to have died with
  its worker, and the key is free again;
- responses of errors the caller made (4xx) are kept like successes; a failure of the server
  (5xx) frees the key.

Keys are per caller: two API keys may use the same idempotency key for different requests.
The answers are kept by a `KeptAnswers` (`stores/idempotency_sql.py`), which the composition
root hands to the worker's `Api`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any, Protocol

import orjson
from fastapi import Request
from fastapi.responses import JSONResponse

from fundpool.core.errors import FundpoolError, IdempotencyConflict, InvalidIdempotencyKey
from fundpool.server.problems import STATUS_BY_CODE, error_problem

KEY_MAX_CHARS = 255
HEADER = "Idempotency-Key"


class KeptAnswer(Protocol):
    """What is kept under one (caller, key): the request's hash, `running` or `done`, and the
    answer once done."""

    @property
    def request_hash(self) -> str: ...

    @property
    def state(self) -> str: ...

    @property
    def status(self) -> int | None: ...

    @property
    def body(self) -> str | None: ...


class KeptAnswers(Protocol):
    """Where the answers are kept, one per (caller, key)."""

    def claim(self, caller: str, key: str, digest: str, now_us: int) -> KeptAnswer | None:
        """Take the key for a new request (None), or say what holds it."""
        ...

    def finish(self, caller: str, key: str, status: int, body: bytes) -> None: ...

    def release(self, caller: str, key: str) -> None:
        """Free a key whose request failed (still `running`)."""
        ...

    def keep(self, caller: str, key: str, status: int, body: bytes, now_us: int) -> None:
        """Keep a record under (caller, key) whatever was there: the API's own small records."""
        ...

    def find(self, caller: str, key: str) -> KeptAnswer | None: ...

    def prune(self, before_us: int) -> int:
        """Forget the answers to requests made before `before_us` (not the API's own)."""
        ...


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


def run_idempotent(
    store: KeptAnswers, caller: str, key: str | None, digest: str, now_us: int,
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

    with api.store_errors():
        return run_idempotent(api.idempotency, caller, key,
                              request_hash("POST", request.url.path, body),
                              api.clock.now_us(), respond, kept=kept)
