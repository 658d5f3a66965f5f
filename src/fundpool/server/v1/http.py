"""Middleware every request passes first: its id, its log line, and the bound on its body.

- **Request id**: `X-Request-Id` from the caller when it is a sane token (up to 128 of
  `[A-Za-z0-9._:-]`), else a new one; sent back on the response and bound into every log line
  the request causes (structlog contextvars).
- **Access log**: one line per request: method, path, status, duration, caller, request id.
- **Body bound**: a body larger than the bound (by `Content-Length`, or counted as it streams
  in) is 413 `payload_too_large` before any route reads it. CSV uploads have a bound of their
  own (`upload_max_bytes`).
"""

from __future__ import annotations

import os
import random
import re
import time

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fundpool.server.problems import problem

log = structlog.get_logger("fundpool.http")
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
# Request ids need to be unique, not secret: a generator seeded once from the system's, since
# os.urandom on every request stalls the event loop under load (it releases the GIL).
_ids = random.Random(os.urandom(32))


class BodyTooLarge(Exception):
    pass


class RequestContext:
    def __init__(self, app: ASGIApp, *, body_max_bytes: int, upload_max_bytes: int,
                 upload_paths: tuple[str, ...] = (), access_log: bool = True) -> None:
        self.app = app
        self.body_max_bytes = body_max_bytes
        self.upload_max_bytes = upload_max_bytes
        self.upload_paths = upload_paths
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        # The front door (front.py) may have named the request already, then handed it on.
        request_id = scope.get("state", {}).get("request_id") or request_id_of(
            next((v.decode("latin-1") for n, v in scope.get("headers", ())
                  if n == b"x-request-id"), ""))
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        scope.setdefault("state", {})["request_id"] = request_id  # an action's actor names it
        started = time.perf_counter()
        status = {"code": 0}
        path: str = scope["path"]
        bound = self.upload_max_bytes if path in self.upload_paths else self.body_max_bytes

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"],
                                      (b"x-request-id", request_id.encode())]
            await send(message)

        if scope["type"] == "http":
            length = next((v for n, v in scope.get("headers", ()) if n == b"content-length"),
                          None)
            if length is not None and (not length.isdigit() or int(length) > bound):
                await self._too_large(scope, receive, send_with_id, bound)
                self._log(scope, status["code"], started)
                return
            seen = {"bytes": 0}

            async def counted() -> Message:
                message = await receive()
                if message["type"] == "http.request":
                    seen["bytes"] += len(message.get("body", b""))
                    if seen["bytes"] > bound:
                        raise BodyTooLarge()
                return message

            try:
                await self.app(scope, counted, send_with_id)
            except BodyTooLarge:
                if status["code"] == 0:
                    await self._too_large(scope, receive, send_with_id, bound)
        else:
            await self.app(scope, receive, send_with_id)
        self._log(scope, status["code"], started)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send, bound: int) -> None:
        response = problem(413, "payload_too_large", "the request body is too large",
                           f"bodies are at most {bound} bytes here", {"limit_bytes": bound})
        await response(scope, receive, send)

    def _log(self, scope: Scope, status: int, started: float) -> None:
        if self.access_log:
            access_line(scope, status, started)


def request_id_of(given: str) -> str:
    """The caller's `X-Request-Id` when it is a sane token, else a new id."""
    return given if REQUEST_ID.match(given) else f"{_ids.getrandbits(64):016x}"


def access_line(scope: Scope, status: int, started: float, **bound: str) -> None:
    """The access log's line for a request answered with `status`; `bound`: what the request's
    log context would add (the front door binds none)."""
    principal = scope.get("state", {}).get("principal")
    log.info("request", method=scope.get("method", "WS"), path=scope["path"],
             status=status, ms=round((time.perf_counter() - started) * 1000, 2),
             caller=None if principal is None else f"{principal.kind}:{principal.name}",
             **bound)
