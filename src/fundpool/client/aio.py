"""`AsyncClient`: the `/v1` API from asyncio (or trio) code, over `httpx.AsyncClient`.

    async with AsyncClient("http://127.0.0.1:8000", key="fpk_...") as api:
        entry = await api.transfer([Posting("world:bank-a", "pool:main:usd:bank-a:available",
                                            "USD", "12.34")])
        async for account in api.iter_accounts(prefix="pool:main:"):
            print(account.address)

The same methods as `Client`, each a coroutine (the `iter_*` ones: async iterators).
"""

from __future__ import annotations

from types import TracebackType
from typing import TypeVar

import anyio
import httpx

from fundpool.client._api import Endpoints
from fundpool.client._core import (
    BACKOFF_S_DEFAULT,
    TIMEOUT_S_DEFAULT,
    AsyncRunner,
    Call,
    read,
    retry_delay,
    transport_failure,
)
from fundpool.client.errors import ApiError

T = TypeVar("T")


class AsyncClient(AsyncRunner, Endpoints):
    """The API at `url`, with `key`; see `Client` for the options. `transport`: an httpx
    async transport (tests: `httpx.ASGITransport(app)` serves an app in-process)."""

    def __init__(self, url: str, key: str | None = None, *, timeout: float = TIMEOUT_S_DEFAULT,
                 retries: int = 3, transport: httpx.AsyncBaseTransport | None = None,
                 backoff_s: float = BACKOFF_S_DEFAULT) -> None:
        super().__init__(url, key, timeout=timeout, retries=retries, backoff_s=backoff_s)
        self._http = httpx.AsyncClient(base_url=self.url, timeout=timeout, transport=transport)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        traceback: TracebackType | None) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _send(self, call: Call[T]) -> T:
        attempt = 0
        while True:
            failure: ApiError
            try:
                response = await self._http.request(call.method, call.path,
                                                    **self._request_args(call))
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
            await anyio.sleep(delay)
            attempt += 1

    def __repr__(self) -> str:
        return f"AsyncClient({self.url!r})"
