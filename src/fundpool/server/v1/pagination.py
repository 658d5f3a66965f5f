"""Cursor pagination: a page, and the opaque cursor of the next one.

    GET /v1/payments?state=settled&limit=50            -> {"data": [...], "next_cursor": "eyJ..."}
    GET /v1/payments?state=settled&limit=50&cursor=eyJ...

A cursor is base64url JSON: where the page ended, the sort and a digest of the filters it was
made under. It is only good for the same list with the same filters and sort: anything else,
or text that is not a cursor at all, is 400 `invalid_cursor`, never a wrong page.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from typing import Annotated, Any, Generic, TypeVar

import orjson
from fastapi import Query
from pydantic import BaseModel, Field

from fundpool.core.errors import FundpoolError

T = TypeVar("T")
CURSOR_MAX_CHARS = 512

LimitQuery = Annotated[int, Query(ge=1, le=1_000, description="Items per page.")]
CursorQuery = Annotated[str | None, Query(max_length=CURSOR_MAX_CHARS,
                                          description="`next_cursor` of the page before.")]


class InvalidCursor(FundpoolError):
    code = "invalid_cursor"
    title = "the cursor is not one this list gave out for these filters and this sort"


class Page(BaseModel, Generic[T]):
    data: list[T]
    next_cursor: str | None = Field(None, description="Pass as `cursor` for the next page; "
                                    "null on the last page.")


def _digest(list_name: str, filters: Mapping[str, object]) -> str:
    canonical = orjson.dumps({"list": list_name, **{k: v for k, v in filters.items()
                                                    if v is not None}},
                             option=orjson.OPT_SORT_KEYS, default=str)
    return hashlib.sha256(canonical).hexdigest()[:16]


def make_cursor(list_name: str, filters: Mapping[str, object], after: Any) -> str:
    body = orjson.dumps({"a": after, "f": _digest(list_name, filters)})
    return base64.urlsafe_b64encode(body).decode().rstrip("=")


def read_cursor(cursor: str | None, list_name: str, filters: Mapping[str, object],
                kind: type | None = None) -> Any:
    """Where the page after `cursor` starts, or None for the first page; with `kind`, the
    position must be of that type (an int is never a bool)."""
    if cursor is None:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        body = orjson.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, UnicodeError, TypeError):
        raise InvalidCursor("the cursor is not valid") from None
    if not isinstance(body, dict) or "a" not in body or "f" not in body:
        raise InvalidCursor("the cursor is not valid")
    if body["f"] != _digest(list_name, filters):
        raise InvalidCursor("the cursor was made for other filters or another sort")
    after = body["a"]
    if kind is not None and (not isinstance(after, kind) or isinstance(after, bool)):
        raise InvalidCursor("the cursor is not valid")
    return after
