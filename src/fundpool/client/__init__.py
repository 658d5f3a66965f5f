"""The Python client of the fundpool API (`/v1`), sync and async, with typed answers.

    from fundpool.client import Client, Posting, InsufficientFunds

    with Client("http://127.0.0.1:8000", key="fpk_...") as api:
        entry = api.transfer([Posting("world:bank-a", "pool:main:usd:bank-a:available",
                                      "USD", "12.34")])
        print(entry.id, entry.postings[0].amount)         # "12.34": amounts are exact text

Answers are the server's own pydantic models (`fundpool.server.v1.models` and the route
modules). Every POST carries an `Idempotency-Key` (the caller's, or one drawn per call) that its
retries keep; errors are the domain's exception classes (`errors.py`). docs/client.md has more.
"""

from __future__ import annotations

from fundpool.client._api import BatchTransfer, Endpoints, Posting
from fundpool.client._core import Call, Page
from fundpool.client.aio import AsyncClient
from fundpool.client.errors import (
    ApiError,
    BadRequest,
    Conflict,
    InvalidResponse,
    NotFound,
    PermissionDenied,
    RateLimited,
    ServerError,
    Unauthorized,
    Unreachable,
    domain_class,
    error_from_problem,
)
from fundpool.client.sync import Client
from fundpool.core.errors import (
    FundpoolError,
    IdempotencyConflict,
    InsufficientFunds,
    UnknownAccount,
    UnknownAsset,
)

__all__ = [
    "ApiError",
    "AsyncClient",
    "BadRequest",
    "BatchTransfer",
    "Call",
    "Client",
    "Conflict",
    "Endpoints",
    "FundpoolError",
    "IdempotencyConflict",
    "InsufficientFunds",
    "InvalidResponse",
    "NotFound",
    "Page",
    "PermissionDenied",
    "Posting",
    "RateLimited",
    "ServerError",
    "Unauthorized",
    "UnknownAccount",
    "UnknownAsset",
    "Unreachable",
    "domain_class",
    "error_from_problem",
]
