"""How far JetStream is: per pool, its stream's message count and a durable consumer's backlog
(`fundpool events status --nats`)."""

from __future__ import annotations

from typing import Any

from fundpool.bus.connection import connect_nats
from fundpool.bus.defaults import DEFAULT_PREFIX
from fundpool.bus.subjects import stream_name


async def stream_status(nats_url: str, durable: str, pools: list[str], *,
                        prefix: str = DEFAULT_PREFIX) -> dict[str, dict[str, Any]]:
    """Per pool: the stream's message count and the durable's backlog, when they exist."""
    nc = await connect_nats(nats_url, name="fundpool-status")
    js = nc.jetstream()
    found: dict[str, dict[str, Any]] = {}
    try:
        for pool in pools:
            name = stream_name(pool, prefix)
            entry: dict[str, Any] = {"stream": name, "messages": None, "pending": None,
                                     "ack_pending": None, "redelivered": None}
            try:
                info = await js.stream_info(name)
                entry["messages"] = info.state.messages
                consumer = await js.consumer_info(name, durable)
                entry.update(pending=consumer.num_pending, ack_pending=consumer.num_ack_pending,
                             redelivered=consumer.num_redelivered)
            except Exception as error:  # an absent stream or durable is shown empty
                entry["error"] = type(error).__name__
            found[pool] = entry
    finally:
        await nc.close()
    return found
