"""The machinery under `Client` and `AsyncClient`: a request as a value, and its execution.

Each API method is written once (`_api.py`) as a function that builds a `Call`: the method,
path, query, JSON body, idempotency key and the type of the answer. The `endpoint` and `pages`
descriptors turn it into a method of either client: on `Client` it sends the call and returns
the parsed answer, on `AsyncClient` it returns an awaitable of it (or an async iterator of
items for `pages`). Sending is the only part written twice, once per httpx client, around the
shared retry policy below.

Retries: connection failures, time-outs, 502/503/504, 429 (after `Retry-After`) and 409
`idempotency_in_progress` are retried up to `retries` times with exponential backoff and
jitter; any other answer is final. A POST keeps its `Idempotency-Key` across the retries (the
key is drawn when the call is built, once per logical call), so a retry after a lost answer
returns the first result instead of doing it twice.
"""

from __future__ import annotations

import inspect
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from email.utils import parsedate_to_datetime
from typing import Any, Concatenate, Generic, ParamSpec, Self, TypeVar, overload
from urllib.parse import quote

import httpx
from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from fundpool.client.errors import (
    ApiError,
    InvalidResponse,
    Unreachable,
    error_from_problem,
)

T = TypeVar("T")
P = ParamSpec("P")

IDEMPOTENCY_HEADER = "Idempotency-Key"
REQUEST_ID_HEADER = "X-Request-Id"
RETRIES_MAX = 10
BACKOFF_S_DEFAULT = 0.25  # the first retry waits about this long; each next one twice as long
BACKOFF_MAX_S = 8.0
RETRY_AFTER_MAX_S = 60.0  # a longer Retry-After is not waited for: the error is raised
TIMEOUT_S_DEFAULT = 10.0
PAGES_MAX = 100_000  # an iterator that has read this many pages stops: a cursor loop
RETRY_STATUSES = frozenset({502, 503, 504})
RETRY_CODES = frozenset({"idempotency_in_progress", "too_many_requests"})
# Failures after which the request may or may not have reached the server: safe to send again
# (GETs read, POSTs carry their idempotency key). Others (a bad URL) fail at once.
RETRY_TRANSPORT_ERRORS = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


class Page(BaseModel, Generic[T]):
    """One page of a list: `{"data": [...], "next_cursor": str | null}` (the server's
    `pagination.Page`)."""

    data: list[T]
    next_cursor: str | None = Field(None, description="Pass as `cursor` for the next page.")


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    """One logical API call: what to send, and how to read the answer."""

    method: str
    path: str
    result: TypeAdapter[T]
    # A sequence is sent as the parameter repeated (`?state=open&state=claimed`).
    params: Mapping[str, str | int | Sequence[str]] = field(default_factory=dict)
    body: object = None  # sent as JSON
    content: tuple[bytes, str] | None = None  # sent as is: (bytes, media type), e.g. a CSV file
    idempotency_key: str | None = None
    then: Callable[[T], None] | None = None  # runs on the result (log in: use the session)
    accept: str | None = None  # a file of these media types: its bytes are the answer, not JSON

    def with_params(self, **params: str | int | Sequence[str]) -> Call[T]:
        return replace(self, params={**self.params, **params})


_adapters: dict[object, TypeAdapter[Any]] = {}


def adapter(form: type[T]) -> TypeAdapter[T]:
    """The (kept) validator of an answer's type, for models imported when first used."""
    found = _adapters.get(form)
    if found is None:
        found = _adapters[form] = TypeAdapter(form)
    return found


def segment(value: str) -> str:
    """A path segment: an account address keeps its colons, anything else is escaped."""
    return quote(value, safe=":@")


def query(**params: object) -> dict[str, str | int | Sequence[str]]:
    """Query parameters without the ones not given (nor empty lists); a list or tuple is
    sent as the parameter repeated."""
    return {name: value if isinstance(value, int) and not isinstance(value, bool)
            else [str(v) for v in value] if isinstance(value, list | tuple) else str(value)
            for name, value in params.items() if value is not None and value != []
            and value != ()}


def amount_text(amount: object, what: str = "amount") -> str:
    """An amount as exact decimal text. Floats are refused: 0.1 + 0.2 is not 0.3, and a
    treasury amount must be exactly what was meant."""
    if isinstance(amount, float):
        raise TypeError(f"{what} is a float ({amount!r}): give decimal text such as '12.34' "
                        "or a decimal.Decimal, never a float")
    if isinstance(amount, Decimal):
        if not amount.is_finite():
            raise ValueError(f"{what} must be a finite decimal, not {amount}")
        return format(amount, "f")
    if isinstance(amount, str):
        return amount.strip()
    raise TypeError(f"{what} must be decimal text ('12.34') or a decimal.Decimal, not "
                    f"{type(amount).__name__} (an int could be read as minor units)")


def instant_text(at: str | datetime) -> str:
    if isinstance(at, datetime):
        if at.tzinfo is None:
            raise ValueError("give an aware datetime (with a time zone)")
        return at.isoformat()
    return at


# --- answers and retries ---------------------------------------------------------------------


def retry_after_s(response: httpx.Response) -> float | None:
    """`Retry-After` as seconds: a number, or an HTTP date."""
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    now = datetime.now(when.tzinfo)
    return max(0.0, (when - now).total_seconds())


def read(call: Call[T], response: httpx.Response) -> T:
    """The call's result from the response; raises the mapped error for any other answer."""
    request_id = response.headers.get(REQUEST_ID_HEADER)
    if response.is_success:
        try:
            if call.accept is not None:
                payload: object = response.content
            elif response.status_code == 204 or not response.content:
                payload = None
            else:
                payload = response.json()
            result = call.result.validate_python(payload)
        except (ValueError, ValidationError) as error:
            raise InvalidResponse(
                f"the answer to {call.method} {call.path} is not the promised shape",
                status=response.status_code, request_id=request_id,
                facts={"reason": str(error)[:500]}) from None
        if call.then is not None:
            call.then(result)
        return result
    try:
        problem = response.json()
    except ValueError:
        problem = None
    if not isinstance(problem, Mapping):
        text = response.text[:200].strip()
        problem = {"detail": text} if text else {}
    raise error_from_problem(problem, status=response.status_code, request_id=request_id,
                             retry_after=retry_after_s(response))


def unreachable(error: httpx.HTTPError, url: str) -> Unreachable:
    return Unreachable(f"could not reach {url}: {type(error).__name__}: {error}".rstrip(": "),
                       facts={"url": url, "reason": type(error).__name__})


def retry_delay(error: ApiError, attempt: int, retries: int, backoff_s: float) -> float | None:
    """Seconds to wait before sending again after `error` (on try `attempt`, from 0), or None:
    the error is final."""
    if attempt >= retries:
        return None
    retryable = (
        (isinstance(error, Unreachable) and error.retryable)
        or error.status in RETRY_STATUSES
        or error.status == 429
        or error.code in RETRY_CODES
    )
    if not retryable:
        return None
    backoff = min(BACKOFF_MAX_S, backoff_s * 2.0**attempt) * random.uniform(0.5, 1.0)
    if error.retry_after is None:
        return backoff
    if error.retry_after > RETRY_AFTER_MAX_S:
        return None
    return max(backoff, error.retry_after)


def transport_failure(error: httpx.TransportError, url: str) -> Unreachable:
    failure = unreachable(error, url)
    failure.retryable = isinstance(error, RETRY_TRANSPORT_ERRORS)
    return failure


# --- the two runners and the descriptors that bind calls to them ---------------------------


class Runner:
    """What both clients hold: where the server is, the credentials, the retry policy."""

    def __init__(self, url: str, key: str | None, *, timeout: float, retries: int,
                 backoff_s: float) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"the server URL must start with http:// or https://, not {url!r}")
        if not 0 <= retries <= RETRIES_MAX:
            raise ValueError(f"retries must be 0..{RETRIES_MAX}, not {retries}")
        if timeout <= 0 or backoff_s < 0:
            raise ValueError("timeout must be positive and backoff_s not negative")
        self.url = url.rstrip("/")
        self.retries = retries
        self.backoff_s = backoff_s
        self.timeout_s = timeout
        self.key = key
        self._token = key

    def _headers(self, call: Call[Any]) -> dict[str, str]:
        accepted = call.accept or "application/json"
        headers = {"Accept": f"{accepted}, application/problem+json"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        if call.idempotency_key is not None:
            headers[IDEMPOTENCY_HEADER] = call.idempotency_key
        return headers

    def _request_args(self, call: Call[Any]) -> dict[str, Any]:
        args: dict[str, Any] = {"params": dict(call.params) or None,
                                "headers": self._headers(call)}
        if call.content is not None:
            args["content"], args["headers"]["Content-Type"] = call.content
        elif call.body is not None:
            args["json"] = call.body
        return args

    def use_token(self, token: str | None) -> None:
        """Send `token` (an API key or a session token) from now on."""
        self._token = token


class SyncRunner(Runner):
    def _send(self, call: Call[T]) -> T:
        raise NotImplementedError

    def _iterate(self, call: Call[Page[T]]) -> Iterator[T]:
        for _ in range(PAGES_MAX):
            page = self._send(call)
            yield from page.data
            following = next_call(call, page)
            if following is None:
                return
            call = following


class AsyncRunner(Runner):
    async def _send(self, call: Call[T]) -> T:
        raise NotImplementedError

    async def _iterate(self, call: Call[Page[T]]) -> AsyncIterator[T]:
        for _ in range(PAGES_MAX):
            page = await self._send(call)
            for item in page.data:
                yield item
            following = next_call(call, page)
            if following is None:
                return
            call = following


def next_call(call: Call[Page[T]], page: Page[T]) -> Call[Page[T]] | None:
    if page.next_cursor is None:
        return None
    if page.next_cursor == call.params.get("cursor"):
        raise InvalidResponse(f"{call.path} gave the same cursor twice",
                              facts={"cursor": page.next_cursor})
    return call.with_params(cursor=page.next_cursor)


def _named(run: Callable[..., Any], build: Callable[..., Any], name: str) -> Callable[..., Any]:
    """`run` with the name, docstring and parameters of the method it is (help(), an IDE)."""
    run.__name__ = name
    run.__qualname__ = f"{build.__qualname__.rpartition('.')[0]}.{name}".lstrip(".")
    run.__doc__ = build.__doc__
    run.__module__ = build.__module__
    signature = inspect.signature(build)
    run.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=list(signature.parameters.values())[1:],
        return_annotation=inspect.Signature.empty)  # the builder's is Call[T], not the answer
    return run


class endpoint(Generic[P, T]):  # noqa: N801 - used as a decorator, like property
    """A method that builds a `Call[T]`, as a method of a client that sends it."""

    def __init__(self, build: Callable[Concatenate[Any, P], Call[T]]) -> None:
        self.build = build
        self.name = build.__name__
        self.__doc__ = build.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, owner: type) -> Self: ...
    @overload
    def __get__(self, obj: SyncRunner, owner: type) -> Callable[P, T]: ...
    @overload
    def __get__(self, obj: AsyncRunner, owner: type) -> Callable[P, Awaitable[T]]: ...

    def __get__(self, obj: Runner | None, owner: type) -> Any:
        if obj is None:
            return self
        build, send = self.build, obj._send  # type: ignore[attr-defined]

        def run(*args: Any, **kwargs: Any) -> Any:
            # Built now, sent (or awaited) next: an async call's arguments fail at the call,
            # and its idempotency key is drawn once, whatever the retries.
            return send(build(obj, *args, **kwargs))

        return _named(run, build, self.name)


class pages(Generic[P, T]):  # noqa: N801 - used as a decorator, like property
    """A method that builds the `Call` of a list's first page, as an iterator over every item
    of every page (sync or async)."""

    def __init__(self, build: Callable[Concatenate[Any, P], Call[Page[T]]]) -> None:
        self.build = build
        self.name = build.__name__
        self.__doc__ = build.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, owner: type) -> Self: ...
    @overload
    def __get__(self, obj: SyncRunner, owner: type) -> Callable[P, Iterator[T]]: ...
    @overload
    def __get__(self, obj: AsyncRunner, owner: type) -> Callable[P, AsyncIterator[T]]: ...

    def __get__(self, obj: Runner | None, owner: type) -> Any:
        if obj is None:
            return self
        build, iterate = self.build, obj._iterate  # type: ignore[attr-defined]

        def run(*args: Any, **kwargs: Any) -> Any:
            return iterate(build(obj, *args, **kwargs))

        return _named(run, build, self.name)
