"""What every `/v1` route may answer besides success, for the OpenAPI document, and the
values the routes parse themselves (times)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import orjson
from fastapi.responses import JSONResponse

from fundpool.core.errors import FundpoolError
from fundpool.ledger.docs import EPOCH, entry_doc
from fundpool.server.problems import PROBLEM_JSON
from fundpool.server.v1.models import Problem

if TYPE_CHECKING:
    from fundpool.core.money import Asset
    from fundpool.ledger.service import Recorded


class InvalidTime(FundpoolError):
    code = "invalid_time"
    title = "the time is not ISO-8601 with a zone, such as 2026-11-24T10:00:00Z"


def parse_instant(text: str) -> int:
    """ISO-8601 with an offset (or Z) to microseconds since the epoch, exactly."""
    try:
        instant = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidTime(value=text) from None
    if instant.tzinfo is None:
        raise InvalidTime("give the time zone, e.g. 2026-11-24T10:00:00Z", value=text)
    return (instant - EPOCH) // timedelta(microseconds=1)


class _OrjsonAnswer(JSONResponse):
    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def json_answer(doc: object, status: int = 200,
                headers: dict[str, str] | None = None) -> JSONResponse:
    """A JSON answer rendered with orjson, as is: for the hot routes, whose document is what
    their response model describes, so FastAPI need not validate it again."""
    return _OrjsonAnswer(doc, status_code=status, headers=headers)


def entry_answer(recorded: Recorded, assets: Mapping[str, Asset]) -> JSONResponse:
    """A recorded entry's answer: 201, or 200 with `Idempotent-Replayed` when its key had
    already recorded it."""
    doc = entry_doc(recorded, assets)
    if recorded.replayed:
        return json_answer(doc, 200, headers={"Idempotent-Replayed": "true"})
    return json_answer(doc, 201)


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "model": Problem,
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}}


PROBLEMS: dict[int | str, dict[str, Any]] = {
    400: _problem("The request was refused: `code` says why (a domain rule, a bad cursor, a "
                  "bad idempotency key)."),
    401: _problem("No credentials, or credentials that are unknown, expired or revoked."),
    403: _problem("The caller's roles do not grant the route's permission (`forbidden`)."),
    404: _problem("No such resource."),
    409: _problem("The state does not allow it (funds, a finished pending transfer, an "
                  "idempotency key used with another request)."),
    413: _problem("The body is larger than the server accepts."),
    422: _problem("The body or a parameter does not match the schema (`invalid_request`)."),
    429: _problem("Too many requests for this key (`Retry-After` says when to retry)."),
    503: _problem("The store is unavailable."),
}
