"""What the bus names on the NATS server: subjects, streams and durable consumers, and the
streams' configuration (docs/monitoring.md, ADR 0011).

**Subjects.** Every event goes to `fundpool.<pool>.<type>`; another `prefix` gives another
namespace (`<prefix>.<pool>.…`, streams `<PREFIX>_<pool>`).

**Streams.** One per pool: `FUNDPOOL_<pool>` over the subjects `fundpool.<pool>.>`, file
storage, a two-minute duplicate window and no limits (the outbox is the log of record; a stream
can be filled again from it by moving the relay's cursor back). The relay and the consumers
create a missing stream with the same configuration; an existing one is never altered.

**Durables.** A consumer's durable is named `<durable_prefix>_<digest of the projection
store's location>`, so that every process of one projection store shares it and two stores
never take each other's messages.
"""

from __future__ import annotations

import hashlib
import os
import re
from urllib.parse import urlsplit

import nats
import structlog
from nats.js import JetStreamContext
from nats.js.api import StorageType, StreamConfig
from nats.js.errors import NotFoundError

from fundpool.bus.defaults import DEFAULT_PREFIX, DURABLE_PREFIX
from fundpool.sql.url import DEFAULT_SCHEMA, parse_url

log = structlog.get_logger(__name__)

DUPLICATE_WINDOW_S = 120.0

_PREFIX = re.compile(r"[a-z][a-z0-9_-]{0,31}\Z")
_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
_SUBJECT_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


def check_prefix(prefix: str) -> str:
    if not _PREFIX.match(prefix):
        raise ValueError(f"subject prefix {prefix!r}: use [a-z][a-z0-9_-]*, at most 32")
    return prefix


def stream_name(pool: str, prefix: str = DEFAULT_PREFIX) -> str:
    """`FUNDPOOL_<pool>`: the pool's stream (characters a stream name cannot hold become _)."""
    return _NAME_UNSAFE.sub("_", f"{prefix.upper()}_{pool}")


def pool_subjects(pool: str, prefix: str = DEFAULT_PREFIX) -> str:
    return f"{prefix}.{_SUBJECT_UNSAFE.sub('_', pool)}.>"


def event_subject(pool: str, kind: str, prefix: str = DEFAULT_PREFIX) -> str:
    """`fundpool.<pool>.<type>`, e.g. `fundpool.main.payment.transitioned`."""
    return f"{prefix}.{_SUBJECT_UNSAFE.sub('_', pool)}.{_SUBJECT_UNSAFE.sub('_', kind)}"


def projection_location(url: str) -> str:
    """Where a projection store URL points, without credentials: what names its durables."""
    location = parse_url(url)
    if location.is_postgres:
        parts = urlsplit(location.target)
        schema = location.schema or DEFAULT_SCHEMA
        return f"pg:{parts.hostname or ''}:{parts.port or 5432}{parts.path}:{schema}"
    path = location.target
    return f"sqlite:{path if path == ':memory:' else os.path.abspath(path)}"


def durable_name(projection_url: str, durable_prefix: str = DURABLE_PREFIX) -> str:
    """`<prefix>_<10 hex digits of the projection store's location>`: every consumer process
    of one projection store shares it; another store gets its own, and its own copy of the
    stream's messages."""
    digest = hashlib.sha256(projection_location(projection_url).encode()).hexdigest()[:10]
    return _NAME_UNSAFE.sub("_", f"{durable_prefix}_{digest}")


# --- streams -------------------------------------------------------------------------------


async def ensure_stream(js: JetStreamContext, pool: str, prefix: str = DEFAULT_PREFIX,
                        *, max_age_s: float | None = None) -> str:
    """Create the pool's stream when it does not exist yet (any process may: the same
    configuration every time); an existing stream is left as it is. Returns its name."""
    name = stream_name(pool, prefix)
    try:
        await js.stream_info(name)
        return name
    except NotFoundError:
        pass
    config = StreamConfig(
        name=name,
        subjects=[pool_subjects(pool, prefix)],
        storage=StorageType.FILE,
        duplicate_window=DUPLICATE_WINDOW_S,
        max_age=max_age_s,
        description=f"fundpool events of pool {pool}",
    )
    try:
        await js.add_stream(config)
        log.info("nats_stream_created", stream=name, subjects=config.subjects)
    except nats.js.errors.BadRequestError:
        await js.stream_info(name)  # created meanwhile by another process: fine
    return name


async def stream_pools(js: JetStreamContext, prefix: str = DEFAULT_PREFIX) -> list[str]:
    """The pools that have a stream under `prefix`."""
    head = f"{prefix}."
    pools: set[str] = set()
    offset = 0
    while True:
        infos = await js.streams_info(offset)
        for info in infos:
            for subject in info.config.subjects or ():
                if subject.startswith(head) and subject.endswith(".>") \
                        and info.config.name == stream_name(subject[len(head):-2], prefix):
                    pools.add(subject[len(head):-2])
        if len(infos) < 256:  # the server's page size
            return sorted(pools)
        offset += len(infos)
