"""The front door: the hot path's request answered before the app's middleware stack.

Every request to the app passes FastAPI's own layers (its telemetry check, Starlette's error
middleware, FastAPI's exception telemetry and body-limit wrappers) and then the API's
(`RequestContext`, `Gate`) before the gate hands a single transfer to the hot path
(fastpath.py). For `POST /v1/ledger/transactions` those layers cost about as much CPU as the
transfer itself in the API's profile (docs/adr/0018-api-hot-path-and-workers.md), and none of
them has anything to do for a well-formed transfer from a caller with a checked key. So the
front sits outside that stack and does what the layers would, in one pass over the headers:

- the body bound: a `Content-Length` within `body_max_bytes` (the only way the hot path reads
  a body);
- the caller: `Authorization: Bearer` with a key or session the authenticator has checked
  within its cache time (`Authenticator.cached`), and one token of its rate limit;
- the request id (`X-Request-Id` or a new one), sent back and named in its log lines;
- the access log line, when it is on.

Whatever it cannot settle that cheaply goes down the stack untouched, exactly as before: no
`Content-Length` or too large one, credentials not in the cache or malformed, a cookie, a
caller over its rate (each of those is answered by `RequestContext` or the `Gate`, with the
same refusal as ever). A request the front admitted (key checked, rate charged) but the hot
path does not take (not the ordinary case) goes down the stack marked `admitted`: the request
context keeps its request id, and the gate neither checks it nor charges it again.
"""

from __future__ import annotations

import time

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fundpool.server.v1 import fastpath
from fundpool.server.v1.http import access_line, request_id_of
from fundpool.server.v1.security import ADMITTED, Authenticator, RateLimiter


class Front:
    def __init__(self, app: ASGIApp, api: fastpath.TransferApi, *, authenticator: Authenticator,
                 limiter: RateLimiter, body_max_bytes: int, access_log: bool) -> None:
        self.app = app
        self.api = api
        self.authenticator = authenticator
        self.limiter = limiter
        self.body_max_bytes = body_max_bytes
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not fastpath.takes(scope):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        authorization = length = content_type = idempotency_key = None
        given = ""
        repeated = False  # a header given twice: the stack reads it as the route does
        for name, value in scope["headers"]:
            if name == b"authorization":
                repeated |= authorization is not None
                authorization = value
            elif name == b"content-length":
                repeated |= length is not None
                length = value
            elif name == b"content-type":
                repeated |= content_type is not None
                content_type = value.decode("latin-1")
            elif name == b"idempotency-key":
                repeated |= idempotency_key is not None
                idempotency_key = value.decode("latin-1")
            elif name == b"x-request-id":
                given = value.decode("latin-1")
        if repeated or authorization is None or length is None or not length.isdigit() or \
                int(length) > self.body_max_bytes:
            await self.app(scope, receive, send)
            return
        kind, _, token = authorization.decode("latin-1").partition(" ")
        token = token.strip()
        principal = self.authenticator.cached(token) if kind.lower() == "bearer" else None
        if principal is None or self.limiter.take(f"{principal.kind}:{principal.id}") > 0:
            await self.app(scope, receive, send)  # the gate refuses, or asks the store
            return
        request_id = request_id_of(given)
        state = scope.setdefault("state", {})
        state.update(request_id=request_id, principal=principal, token=token)
        answered = await fastpath.transfer(self.api, principal, scope, receive,
                                           content_type=content_type,
                                           idempotency_key=idempotency_key)
        if not isinstance(answered, Response):
            state[ADMITTED] = True
            await self.app(scope, answered, send)
            return
        await _send(answered, request_id, send)
        if self.access_log:
            access_line(scope, answered.status_code, started, request_id=request_id)


async def _send(response: Response, request_id: str, send: Send) -> None:
    """What `Response.__call__` sends, with the request id the request context would add."""
    start: Message = {"type": "http.response.start", "status": response.status_code,
                      "headers": [*response.raw_headers, (b"x-request-id", request_id.encode())]}
    await send(start)
    await send({"type": "http.response.body", "body": response.body})
