"""`Client`: the `/v1` API from synchronous code, over `httpx.Client`.

    with Client("http://127.0.0.1:8000", key="fpk_...") as api:
        entry = api.transfer([Posting("world:bank-a", "pool:main:usd:bank-a:available",
                                      "USD", "12.34")])
        for account in api.iter_accounts(prefix="pool:main:"):
            print(account.address)

Every method of `Endpoints` (`_api.py`) is a method here that returns the typed answer.
"""

from __future__ import annotations

import time
from types import TracebackType
from typing import TypeVar

import httpx

from fundpool.client._api import Endpoints
from fundpool.client._core import (
    BACKOFF_S_DEFAULT,
    TIMEOUT_S_DEFAULT,
    Call,
    SyncRunner,
    read,
    retry_delay,
    transport_failure,
)
from fundpool.client.errors import ApiError

T = TypeVar("T")


class Client(SyncRunner, Endpoints):
    """The API at `url`, with `key` (an API key `fpk_...` or a session token `fps_...`).

    `retries`: how many times a call is sent again after a connection failure, 502/503/504,
    429 or `idempotency_in_progress` (with exponential backoff from `backoff_s`).
    `transport`: an httpx transport (tests: a mock, or one that drops answers)."""

    def __init__(self, url: str, key: str | None = None, *, timeout: float = TIMEOUT_S_DEFAULT,
                 retries: int = 3, transport: httpx.BaseTransport | None = None,
                 backoff_s: float = BACKOFF_S_DEFAULT) -> None:
        super().__init__(url, key, timeout=timeout, retries=retries, backoff_s=backoff_s)
        self._http = httpx.Client(base_url=self.url, timeout=timeout, transport=transport)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _send(self, call: Call[T]) -> T:
        attempt = 0
        while True:
            failure: ApiError
            try:
                response = self._http.request(call.method, call.path, **self._request_args(call))
            except httpx.TransportError as error:
                failure = transport_failure(error, self.url)
                cause: BaseException = error
            else:
                try:
                    return read(call, response)
                except ApiError as error:
                    failure, cause = error, error
            delay = retry_delay(failure, attempt, self.retries, self.backoff_s)
            if delay is None:
                if failure is cause:
                    raise failure
                raise failure from cause
            time.sleep(delay)
            attempt += 1

    def __repr__(self) -> str:
        return f"Client({self.url!r})"
