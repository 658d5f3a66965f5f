"""The errors the client raises: the server's problem documents as exceptions.

Every `/v1` error is an RFC 9457 problem document with a stable `code` (server/problems.py).
The client raises one exception for it, and that exception is, at once:

- **the domain's own class for the code** when the package defines one, so that
  `except InsufficientFunds:` works on the client as it does in the server; a code that several
  classes share (`idempotency_conflict`: the ledger's and the payments') maps to the one in
  `fundpool.core.errors`, else to the first found (modules in `ERROR_MODULES` order, then the
  class nearest `FundpoolError`);
- **an `ApiError` of the response's status family**, so that a caller may catch by status
  instead:

      status       class              examples of codes
      400, 4xx     BadRequest         invalid_amount, invalid_request (422), malformed_json
      401          Unauthorized       invalid_credentials, unauthenticated, key_revoked
      403          PermissionDenied   forbidden, csrf_failed
      404          NotFound           unknown_account, unknown_payment, not_found (no route)
      409          Conflict           insufficient_funds, idempotency_conflict
      429          RateLimited        too_many_requests (`retry_after`: seconds)
      5xx          ServerError        store_error (503), internal_error (500)
      no answer    Unreachable        unreachable (connection refused, time-out, reset)
      bad answer   InvalidResponse    invalid_response (a body the client cannot read)

  A code without a domain class (`not_found`, `too_many_requests`, `invalid_request`) is an
  instance of its family class only.

Every raised error is a `FundpoolError` with the domain's `code`, `title`, `detail` and `facts`,
plus `status` (None when there was no answer), `request_id` (the response's `X-Request-Id`) and
`retry_after` (seconds, from `Retry-After`, else None). The CLI prints it exactly as a local
error: `error[<code>]: <detail>` and the facts.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Iterator, Mapping
from http import HTTPStatus
from typing import Any, ClassVar, cast

from fundpool.core.errors import FundpoolError

# Where the domain's error classes are defined: imported the first time an error is mapped
# (not at `import fundpool.client`, which stays light). A module another part of the package
# has not written yet is skipped.
ERROR_MODULES = (
    "fundpool.core.errors",
    "fundpool.auth.errors",
    "fundpool.payments.model",
    "fundpool.payments.csv_batch",
    "fundpool.payments.batch_payouts",
    "fundpool.payments.dispatch",
    "fundpool.pool.config",
    "fundpool.pool.rates",
    "fundpool.monitoring.alerting.rules",
    "fundpool.monitoring.alerting.engine",
    "fundpool.monitoring.replay",
    "fundpool.routing.router",
    "fundpool.routing.policy",
    "fundpool.routing.decision",
    "fundpool.channels.simulated",
    "fundpool.events.model",
    "fundpool.server.problems",
    "fundpool.server.v1.problems",
    "fundpool.server.v1.pagination",
    "fundpool.server.v1.idempotency",
    "fundpool.server.v1.security",
    "fundpool.server.v1.context",
    "fundpool.server.v1.payments",
    "fundpool.server.v1.channels",
    "fundpool.server.v1.monitoring",
    "fundpool.risk.policy",
    "fundpool.risk.service",
    "fundpool.risk.screening.lists",
    "fundpool.treasury.fx",
    "fundpool.treasury.split",
    "fundpool.treasury.waterfall",
    "fundpool.treasury.netting",
    "fundpool.treasury.stress",
    "fundpool.treasury.config",
    "fundpool.desk.fx",
    "fundpool.desk.liquidity",
    "fundpool.desk.netting",
)
# A server could answer with any number of codes: classes made for codes without a domain
# class are kept up to this many, then made afresh for each error.
CODE_CLASSES_MAX = 512


class ApiError(FundpoolError):
    """An error the API answered (or failed to answer) with; see the module's docstring."""

    code: ClassVar[str] = "api_error"
    title: ClassVar[str] = "the API refused the request"

    def __init__(
        self,
        detail: str | None = None,
        *,
        status: int | None = None,
        facts: Mapping[str, object] | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        # Facts are set as given: a fact named `detail` must not collide with the argument.
        FundpoolError.__init__(self, detail)
        self.facts = dict(facts or {})
        self.status = status
        self.request_id = request_id
        self.retry_after = retry_after


class BadRequest(ApiError):
    code = "bad_request"
    title = "the request is not valid"


class Unauthorized(ApiError):
    code = "unauthenticated"
    title = "no credentials, or credentials that are unknown, expired or revoked"


class PermissionDenied(ApiError):
    code = "forbidden"
    title = "the caller's roles do not grant this permission"


class NotFound(ApiError):
    code = "not_found"
    title = "no such resource"


class Conflict(ApiError):
    code = "conflict"
    title = "the state does not allow it"


class RateLimited(ApiError):
    """Too many requests for this key; `retry_after` says how many seconds to wait."""

    code = "too_many_requests"
    title = "too many requests for this key"


class ServerError(ApiError):
    code = "server_error"
    title = "the server failed"


class Unreachable(ApiError):
    """No answer: the connection was refused, reset, or timed out (after the retries)."""

    code = "unreachable"
    title = "the server could not be reached"
    retryable: bool = True  # False when sending again cannot help (a malformed URL)


class InvalidResponse(ApiError):
    """An answer the client cannot read: not JSON, or not the shape the route promises."""

    code = "invalid_response"
    title = "the server's answer is not what the API promises"


def family(status: int) -> type[ApiError]:
    """The `ApiError` class of an HTTP status."""
    if status == 401:
        return Unauthorized
    if status == 403:
        return PermissionDenied
    if status == 404:
        return NotFound
    if status == 409:
        return Conflict
    if status == 429:
        return RateLimited
    if status >= 500:
        return ServerError
    if 400 <= status < 500:
        return BadRequest
    return ApiError


# --- the registry: code -> the domain's class ------------------------------------------------


class _Registry:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._domain: dict[str, type[FundpoolError]] | None = None
        self._made: dict[tuple[str, type[ApiError]], type[ApiError]] = {}

    def domain(self) -> Mapping[str, type[FundpoolError]]:
        with self._lock:
            if self._domain is None:
                self._domain = _domain_classes()
            return self._domain

    def error_class(self, code: str, title: str, status_family: type[ApiError]
                    ) -> type[ApiError]:
        domain = self.domain().get(code)
        with self._lock:
            made = self._made.get((code, status_family))
            if made is not None:
                return made
            made = _make_class(code, title, domain, status_family)
            if domain is not None or len(self._made) < CODE_CLASSES_MAX:
                self._made[(code, status_family)] = made
            return made


def _subclasses(cls: type[FundpoolError]) -> Iterator[type[FundpoolError]]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def _domain_classes() -> dict[str, type[FundpoolError]]:
    for name in ERROR_MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as error:
            if error.name != name:
                raise
    rank = {name: index for index, name in enumerate(ERROR_MODULES)}

    def preference(cls: type[FundpoolError]) -> tuple[int, str, int, str]:
        return (rank.get(cls.__module__, len(rank)), cls.__module__, len(cls.__mro__),
                cls.__qualname__)

    client = __name__.rpartition(".")[0]  # the client's own classes map nothing
    found: list[type[FundpoolError]] = [FundpoolError, *(cls for cls in _subclasses(FundpoolError)
                              if cls.__module__ != client
                              and not cls.__module__.startswith(client + "."))]
    by_code: dict[str, type[FundpoolError]] = {}
    for cls in sorted(set(found), key=preference):
        by_code.setdefault(cls.code, cls)
    return by_code


def _camel(code: str) -> str:
    return "".join(part.capitalize() for part in code.split("_") if part) or "ApiError"


def _make_class(code: str, title: str, domain: type[FundpoolError] | None,
                status_family: type[ApiError]) -> type[ApiError]:
    """A class that is both the domain's class for `code` (when there is one) and the status
    family's, with ApiError's constructor (a domain class's own would not take the status)."""
    namespace: dict[str, Any] = {"code": code, "__module__": __name__,
                                 "__init__": ApiError.__init__}
    if domain is None:
        namespace["title"] = title
        return cast(type[ApiError], type(_camel(code), (status_family,), namespace))
    namespace["__doc__"] = domain.__doc__
    return cast(type[ApiError], type(domain.__name__, (domain, status_family), namespace))


_registry = _Registry()


def domain_class(code: str) -> type[FundpoolError] | None:
    """The package's error class for `code`, or None when it has none."""
    return _registry.domain().get(code)


def error_from_problem(
    problem: Mapping[str, Any],
    *,
    status: int | None = None,
    request_id: str | None = None,
    retry_after: float | None = None,
) -> ApiError:
    """The exception for a problem document (a response's body, or a batch item's `error`)."""
    given = problem.get("status")
    status = status if status is not None else given if isinstance(given, int) else None
    phrase = _phrase(status)
    code = problem.get("code")
    if not isinstance(code, str) or not code:
        code = phrase.lower().replace(" ", "_").replace("-", "_") if status else "api_error"
    title = problem.get("title")
    title = title if isinstance(title, str) and title else phrase
    detail = problem.get("detail")
    facts = problem.get("facts")
    if retry_after is None and status == 429 and isinstance(facts, Mapping):
        seconds = facts.get("retry_after_s")
        retry_after = float(seconds) if isinstance(seconds, int | float) else None
    cls = _registry.error_class(code, title, ApiError if status is None else family(status))
    return cls(detail if isinstance(detail, str) and detail else title, status=status,
               facts=facts if isinstance(facts, Mapping) else None, request_id=request_id,
               retry_after=retry_after)


def _phrase(status: int | None) -> str:
    if status is None:
        return "error"
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"HTTP {status}"
