"""The hot path: a well-formed single transfer, answered without FastAPI's routing.

`POST /v1/ledger/transactions` is the call integrators make most, and FastAPI's generic
machinery (matching every route in turn, solving dependencies, wrapping the handler) costs more
CPU than the transfer itself (docs/benchmarks.md, "API"). The gate hands such a request here
after authenticating it. If the request is exactly the ordinary case — JSON body valid against
`TransferIn`, a valid `Idempotency-Key` or none, the caller holding `ledger:write`, known assets
and well-formed amounts, and no adjustment: no account of a pool or a merchant, no `reason`, no
`kind: adjustment` in its metadata — it is parsed with the same pydantic model, written through
the same group-commit writer and answered with the same document as the route in ledger.py.
An adjustment always goes to the route, which alone checks `ledger:adjust` and the reason and
records the actor: this path can never be a way around that check.

Anything else goes to FastAPI with the body untouched, so every refusal (422, 403, 400, ...) is
made by the one route and reads the same whichever way the request came. The OpenAPI document
describes the route in ledger.py; tests compare both paths' answers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

import structlog
from pydantic import ValidationError
from starlette.responses import Response
from starlette.types import Message, Receive, Scope

from fundpool.auth.roles import Permission
from fundpool.core.errors import FundpoolError
from fundpool.core.ledger.model import Transfer
from fundpool.ledger.adjustments import ADJUSTMENT, KIND_KEY
from fundpool.pool.ownership import owned_by_service
from fundpool.server.problems import DriverErrors, error_problem, problem, store_failure
from fundpool.server.v1.idempotency import check_key
from fundpool.server.v1.models import TransferIn
from fundpool.server.v1.problems import entry_answer

if TYPE_CHECKING:
    from fundpool.auth.model import Principal
    from fundpool.core.ledger.engine import CommandResult
    from fundpool.core.ledger.model import Command, Posting
    from fundpool.core.money import Asset
    from fundpool.ledger.service import Ledger
    from fundpool.server.v1.models import PostingIn

log = structlog.get_logger(__name__)
PATH = "/v1/ledger/transactions"


class TransferApi(Protocol):
    """What the hot path uses of the worker's `Api` (context.py). Declared here because the
    gate that calls this module is built by context.py, which must not be imported back."""

    @property
    def ledger(self) -> Ledger: ...

    @property
    def driver_errors(self) -> DriverErrors: ...

    def assets(self, *, fresh: bool = False) -> dict[str, Asset]: ...

    def posting(self, body: PostingIn) -> Posting: ...

    async def write(self, commands: Sequence[Command]) -> list[CommandResult]: ...


def takes(scope: Scope) -> bool:
    return bool(scope["type"] == "http" and scope["method"] == "POST" and scope["path"] == PATH)


def header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None


async def transfer(api: TransferApi, principal: Principal, scope: Scope, receive: Receive,
                   *, content_type: str | None, idempotency_key: str | None
                   ) -> Response | Receive:
    """The answer to the request (not yet sent), or a `receive` that gives FastAPI the body
    again (the request is not the ordinary case). `content_type` and `idempotency_key` are
    the request's headers of those names."""
    received: list[Message] = []
    while True:
        message = await receive()
        received.append(message)
        if message["type"] != "http.request":
            return _replay(received, receive)
        if not message.get("more_body", False):
            break
    body = received[0].get("body", b"") if len(received) == 1 else \
        b"".join(m.get("body", b"") for m in received)
    if Permission.LEDGER_WRITE not in principal.permissions or \
            not (content_type or "").startswith("application/json"):
        return _replay(received, receive)
    try:
        request = TransferIn.model_validate_json(body)
        key = check_key(idempotency_key)
        postings = tuple(api.posting(p) for p in request.postings)
    except (ValidationError, FundpoolError):
        return _replay(received, receive)
    if request.reason is not None or request.metadata.get(KIND_KEY) == ADJUSTMENT or any(
            owned_by_service(p.source) or owned_by_service(p.destination) for p in postings):
        return _replay(received, receive)  # an adjustment, or a claim to be one: the route
    try:
        (result,) = await api.write([Transfer(postings, request.metadata, key)])
        if result.error is not None:
            return error_problem(result.error)
        recorded = api.ledger.recorded(result)
        if recorded is None:  # pragma: no cover - a transfer always records an entry
            raise FundpoolError("the transfer recorded no entry")
        return entry_answer(recorded, api.assets())
    except FundpoolError as error:
        return error_problem(error)
    except api.driver_errors as error:
        return error_problem(store_failure(error))
    except Exception as error:
        log.error("unexpected_error", path=PATH, error=type(error).__name__, exc_info=error,
                  request_id=scope.get("state", {}).get("request_id"))
        return problem(500, "internal_error", "the server failed unexpectedly")


def _replay(received: list[Message], receive: Receive) -> Receive:
    """A `receive` that gives again what was read, then what comes next."""
    queue = list(received)

    async def again() -> Message:
        return queue.pop(0) if queue else await receive()

    return again
