"""The connection to NATS that the relay, the consumers and `events status` use, and what
stops their runs from outside."""

from __future__ import annotations

import asyncio
from typing import Protocol
from urllib.parse import urlsplit

import nats
import structlog
from nats.aio.client import Client as NatsClient

from fundpool.core.errors import FundpoolError

log = structlog.get_logger(__name__)

CONNECT_WAIT_S = 3.0


class StopSignal(Protocol):
    """What stops a run from outside: a `threading.Event` (or a multiprocessing one)."""

    def is_set(self) -> bool: ...


class NatsUnavailable(FundpoolError):
    code = "nats_unavailable"
    title = "the NATS server could not be reached"


async def connect_nats(url: str, *, name: str, wait_s: float = CONNECT_WAIT_S) -> NatsClient:
    """A client that reconnects forever once connected; the first connection is given
    `wait_s` seconds, then `NatsUnavailable`."""

    async def on_error(error: Exception) -> None:
        log.warning("nats_error", error=f"{type(error).__name__}: {error}")

    async def on_disconnected() -> None:
        client = connected[0] if connected else None
        if client is None or not (client.is_closed or client.is_draining):
            log.warning("nats_disconnected")

    async def on_reconnected() -> None:
        log.info("nats_reconnected")

    connected: list[NatsClient] = []
    try:
        client = await asyncio.wait_for(
            nats.connect(url, name=name, error_cb=on_error, disconnected_cb=on_disconnected,
                         reconnected_cb=on_reconnected, connect_timeout=2,
                         max_reconnect_attempts=-1, reconnect_time_wait=0.5),
            wait_s,
        )
        connected.append(client)
        return client
    except (TimeoutError, OSError, nats.errors.Error) as error:
        raise NatsUnavailable(url=_redact(url), reason=f"{type(error).__name__}: {error}") \
            from error


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return url.replace(f":{parts.password}@", ":***@")
