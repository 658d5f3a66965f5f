"""Who is calling, what they may do, and how fast: one mechanism for every `/v1` route.

- **Authentication** happens before anything else reads the request (the `Gate` middleware):
  `Authorization: Bearer fpk_…` (an API key) or `Bearer fps_…` / the `fundpool_session`
  cookie (a console session). No credentials, or bad ones: 401, whatever the body holds (a
  WebSocket is accepted, then closed with 4401 and the problem's code as the reason). The
  only route open to anonymous callers is `POST /v1/sessions` (log in).
- **Authorization**: every route is declared on a `SecuredRouter` with exactly one permission
  (`openapi_extra=needs(Permission.X)`); the router refuses a route without one, adds the check
  as a dependency and writes the permission into the OpenAPI document as `x-permission`, which
  the tests walk. A caller without it gets 403 `forbidden`.
- **Sessions by cookie** must send `X-CSRF-Token` on anything but GET/HEAD (403 `csrf_failed`).
- **Rate limit**: a token bucket per key or session, shared out evenly between the workers;
  over it, 429 `too_many_requests` with `Retry-After`.

A checked key is trusted for `auth_cache_s` seconds (default 5), so a revocation reaches every
worker within that time; each check otherwise costs a database read.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import Any

import anyio.to_thread
import orjson
from fastapi import APIRouter, Depends, Request, WebSocket
from fastapi.responses import JSONResponse
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from fundpool.auth.errors import Unauthenticated
from fundpool.auth.model import Principal
from fundpool.auth.ports import AuthStore
from fundpool.auth.roles import Permission
from fundpool.core.actor import Actor
from fundpool.core.errors import FundpoolError
from fundpool.runtime import SystemClock
from fundpool.server.problems import DriverErrors, error_problem, problem, store_errors
from fundpool.server.v1 import fastpath

PERMISSION_KEY = "x-permission"
PUBLIC = "public"  # the permission of a route anonymous callers may use (log in)
AUTHENTICATED = "authenticated"  # any caller with valid credentials (who am I, log out)
SESSION_COOKIE = "fundpool_session"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Set in a request's scope state by the front door (front.py) once it has authenticated the
# caller and charged the rate limit itself: the gate lets such a request through untouched.
ADMITTED = "admitted"


class Forbidden(FundpoolError):
    code = "forbidden"
    title = "the caller's roles do not grant this permission"


class CsrfFailed(FundpoolError):
    code = "csrf_failed"
    title = "a session cookie needs the X-CSRF-Token header on this method"


def needs(permission: Permission | str) -> dict[str, Any]:
    """The `openapi_extra` that declares a route's one permission."""
    return {PERMISSION_KEY: str(permission)}


def principal_of(request: Request) -> Principal:
    principal: Principal | None = request.scope.get("state", {}).get("principal")
    if principal is None:
        raise Unauthenticated("this route needs credentials")
    return principal


def actor_of(request: Request) -> Actor:
    """Who is acting in this request, as its action records it: the principal, its roles,
    the session or key it came through, and the request id."""
    return actor_from(principal_of(request), request.scope.get("state", {}).get("request_id"))


def actor_from(principal: Principal, request_id: str | None) -> Actor:
    roles = tuple(sorted(str(role) for role in principal.roles))
    if principal.kind == "user":
        return Actor("user", principal.id, principal.name, roles,
                     session_id=principal.session_id, request_id=request_id)
    return Actor("key", principal.id, principal.name, roles, key_id=principal.id,
                 request_id=request_id)


def _checker(permission: str) -> Callable[[Request], Awaitable[None]]:
    # async: it does no I/O, and a plain function would be run in the thread pool.
    async def check(request: Request) -> None:
        if permission == PUBLIC:
            return
        principal = principal_of(request)
        if permission == AUTHENTICATED:
            return
        if permission not in principal.permissions:
            raise Forbidden(permission=permission,
                            roles=sorted(str(r) for r in principal.roles))
    check.__name__ = f"needs_{permission.replace(':', '_')}"
    return check


class SecuredRouter(APIRouter):
    """An APIRouter whose every route must name one permission."""

    def add_api_route(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        extra = kwargs.get("openapi_extra") or {}
        permission = extra.get(PERMISSION_KEY)
        if not isinstance(permission, str) or not (
            permission in (PUBLIC, AUTHENTICATED) or permission in Permission.__members__.values()
        ):
            raise ValueError(f"route {path} declares no permission (openapi_extra=needs(...))")
        kwargs["dependencies"] = [*(kwargs.get("dependencies") or ()),
                                  Depends(_checker(permission))]
        super().add_api_route(path, endpoint, **kwargs)


# --- credentials -----------------------------------------------------------------------------


@dataclass(slots=True)
class _Cached:
    principal: Principal
    until: float


class Authenticator:
    """Credentials to a `Principal`, with a short cache in front of the store (whose database
    failing, `driver_errors`, is `store_error`)."""

    def __init__(self, store: AuthStore, *, driver_errors: DriverErrors,
                 cache_s: float = 5.0) -> None:
        self.store = store
        self.driver_errors = driver_errors
        self.cache_s = cache_s
        self._clock = SystemClock()
        self._cache: dict[bytes, _Cached] = {}
        self._lock = threading.Lock()

    def cached(self, token: str) -> Principal | None:
        digest = hashlib.sha256(token.encode()).digest()
        with self._lock:
            hit = self._cache.get(digest)
        if hit is None or hit.until < time.monotonic():
            return None
        now_us = self._clock.now_us()
        if hit.principal.expires_at_us is not None and now_us >= hit.principal.expires_at_us:
            return None  # the store says which: expired
        return hit.principal

    def check(self, token: str) -> Principal:
        """Ask the store (a database read); raises AuthenticationFailed."""
        now_us = self._clock.now_us()
        with store_errors(self.driver_errors):
            if token.startswith("fps_"):
                principal = self.store.authenticate_session(token, now_us=now_us)
            else:
                principal = self.store.authenticate_key(token, now_us=now_us)
        if self.cache_s > 0:
            digest = hashlib.sha256(token.encode()).digest()
            with self._lock:
                if len(self._cache) > 100_000:
                    self._cache.clear()
                self._cache[digest] = _Cached(principal, time.monotonic() + self.cache_s)
        return principal

    def forget(self, token: str) -> None:
        with self._lock:
            self._cache.pop(hashlib.sha256(token.encode()).digest(), None)


def credentials(scope: Scope) -> tuple[str | None, bool]:
    """The token a request carries and whether it came in a cookie."""
    authorization = None
    cookie_header = None
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            authorization = value.decode("latin-1")
        elif name == b"cookie":
            cookie_header = value.decode("latin-1")
    if authorization is not None:
        kind, _, token = authorization.partition(" ")
        if kind.lower() != "bearer" or not token.strip():
            raise Unauthenticated("use 'Authorization: Bearer <key or session token>'")
        return token.strip(), False
    if cookie_header:
        cookie: SimpleCookie = SimpleCookie()
        try:
            cookie.load(cookie_header)
        except Exception:
            return None, False
        if SESSION_COOKIE in cookie:
            return cookie[SESSION_COOKIE].value, True
    return None, False


# --- rate limit ------------------------------------------------------------------------------


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float = field(default_factory=time.monotonic)


class RateLimiter:
    """Token buckets per caller: `rate_per_s` sustained, `burst` at once."""

    def __init__(self, rate_per_s: float, burst: int) -> None:
        self.rate_per_s = rate_per_s
        self.burst = max(1.0, float(burst))
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def take(self, caller: str) -> float:
        """0 when the request may go, else the seconds until it could."""
        now = time.monotonic()
        with self._lock:
            bucket = self._buckets.get(caller)
            if bucket is None:
                bucket = self._buckets[caller] = _Bucket(self.burst, now)
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.at) * self.rate_per_s)
            bucket.at = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return 0.0
            return (1.0 - bucket.tokens) / self.rate_per_s


# --- the gate --------------------------------------------------------------------------------


def _is_public(scope: Scope) -> bool:
    path: str = scope["path"]
    if not path.startswith("/v1/") and path != "/v1":
        return True  # operations (/healthz, /readyz, /metrics) and the OpenAPI document
    return scope["type"] == "http" and scope["method"] == "POST" and path == "/v1/sessions"


class Gate:
    """ASGI middleware: authenticate `/v1` requests and apply the rate limit before the route
    reads a byte of the body."""

    def __init__(self, app: ASGIApp, authenticator: Authenticator, limiter: RateLimiter,
                 api: fastpath.TransferApi | None = None) -> None:
        self.app = app
        self.authenticator = authenticator
        self.limiter = limiter
        self.api = api  # with it, single transfers take the hot path (fastpath.py)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or _is_public(scope) or \
                scope.get("state", {}).get(ADMITTED):
            await self.app(scope, receive, send)
            return
        try:
            token, by_cookie = credentials(scope)
            if token is None:
                raise Unauthenticated("this route needs credentials")
            principal = self.authenticator.cached(token)
            if principal is None:
                principal = await anyio.to_thread.run_sync(self.authenticator.check, token)
            if by_cookie and scope["type"] == "http" and scope["method"] not in SAFE_METHODS:
                csrf = next((v.decode("latin-1") for n, v in scope.get("headers", ())
                             if n == CSRF_HEADER.encode()), "")
                if not self.authenticator.store.check_csrf(principal, csrf):
                    raise CsrfFailed()
        except FundpoolError as error:
            await self._refuse(scope, receive, send, error)
            return
        wait_s = self.limiter.take(f"{principal.kind}:{principal.id}")
        if wait_s > 0:
            response = problem(429, "too_many_requests", "too many requests for this key",
                               f"the rate limit is {self.limiter.rate_per_s:g}/s per worker",
                               {"retry_after_s": math.ceil(wait_s)})
            response.headers["Retry-After"] = str(math.ceil(wait_s))
            await self._respond(scope, receive, send, response, close_code=4429)
            return
        scope.setdefault("state", {})["principal"] = principal
        scope["state"]["token"] = token
        if self.api is not None and fastpath.takes(scope):
            answered = await fastpath.transfer(
                self.api, principal, scope, receive,
                content_type=fastpath.header(scope, b"content-type"),
                idempotency_key=fastpath.header(scope, b"idempotency-key"))
            if isinstance(answered, Response):
                await answered(scope, receive, send)
                return
            receive = answered
        await self.app(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send,
                      error: FundpoolError) -> None:
        response = error_problem(error)
        if response.status_code == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="fundpool"'
        status = response.status_code
        await self._respond(scope, receive, send, response,
                            close_code=4401 if status == 401 else 1011 if status >= 500 else 4403)

    async def _respond(self, scope: Scope, receive: Receive, send: Send,
                       response: JSONResponse, *, close_code: int) -> None:
        if scope["type"] == "websocket":
            # The handshake completes, then the socket closes with the code docs/api.md names
            # and the problem's code as the reason. A close before the accept is no close at
            # all: the server denies the upgrade with a bare HTTP 403, whatever the cause.
            refused = orjson.loads(response.body)
            websocket = WebSocket(scope, receive, send)
            await websocket.accept()
            await websocket.close(close_code, close_reason(refused["code"], refused["detail"]))
            return
        await response(scope, receive, send)


CLOSE_REASON_BYTES_MAX = 123  # RFC 6455 5.5: a control frame's payload, less the 2-byte code


def close_reason(code: str, detail: str) -> str:
    """A WebSocket close reason: `code: detail`, cut to what a close frame can carry."""
    reason = f"{code}: {detail}".encode()
    return reason[:CLOSE_REASON_BYTES_MAX].decode(errors="ignore")
