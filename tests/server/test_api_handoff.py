"""The writers' hand-off (server/v1/handoff.py): a worker that does not hold the election hands
its commands to the one that does, whose writer commits them and answers each with its own
results (refusals with their code and facts); when the writer worker goes away, what it had
not answered is `store_error`, and the others write themselves again.

Each side's writer here is on a store of its own, so the journal a transfer lands in says which
writer committed it."""

from __future__ import annotations

import asyncio
import fcntl
import os
import struct
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from fundpool import compose
from fundpool.core.errors import StoreError
from fundpool.core.ledger.canonical import decode_body
from fundpool.core.ledger.model import Account, Posting, Transfer
from fundpool.core.money import Asset, AssetKind
from fundpool.ledger.service import Ledger
from fundpool.runtime import SystemClock, system_ids
from fundpool.server.v1.handoff import WriterHandOff
from fundpool.server.v1.writer import LedgerWriter
from fundpool.stores.sqlite import SqliteStore

WAIT_S = 30.0


def writer_on(path: Path) -> LedgerWriter:
    store = SqliteStore(path)
    store.initialise()
    ledger = Ledger(store, SystemClock(), system_ids())
    ledger.define_asset(Asset("USD", 2, AssetKind.FIAT))
    for name in ("world:w", "customer:a", "customer:b"):
        ledger.open_account(Account(name, asset=None if name.startswith("world") else "USD"))
    return LedgerWriter(ledger, driver_errors=compose.store_errors()).start()


def pay(source: str, destination: str, amount_minor: int, key: str) -> Transfer:
    return Transfer((Posting(source, destination, "USD", amount_minor),), {}, key)


def journal_keys(writer: LedgerWriter) -> list[str | None]:
    return [decode_body(entry.canonical).get("idempotency_key")
            for entry in writer.ledger.store.entries() if entry.kind == "transfer"]


async def started(place: Path, *writers: LedgerWriter) -> list[WriterHandOff]:
    """A worker's hand-off for each writer, started in order: the first leads."""
    handoffs = [WriterHandOff(writer, place) for writer in writers]
    for handoff in handoffs:
        await handoff.start()
    return handoffs


@pytest.fixture
def place(tmp_path: Path) -> Path:
    return tmp_path / "handoff"


def test_a_worker_hands_its_commands_to_the_writer_worker(tmp_path: Path, place: Path) -> None:
    leader_writer, follower_writer = writer_on(tmp_path / "a.db"), writer_on(tmp_path / "b.db")

    async def run() -> None:
        leader, follower = await started(place, leader_writer, follower_writer)
        assert leader.leading
        assert not follower.leading
        funded, refused = await asyncio.gather(
            follower.write([pay("world:w", "customer:a", 500, "k-1")]),
            follower.write([pay("customer:b", "customer:a", 700, "k-2")]))
        assert funded[0].error is None
        assert funded[0].entry is not None
        assert funded[0].entry.body["idempotency_key"] == "k-1"
        error = refused[0].error
        assert error is not None
        assert error.code == "insufficient_funds"
        assert error.facts["account"] == "customer:b"
        (own,) = await leader.write([pay("customer:a", "customer:b", 100, "k-3")])
        assert own.error is None
        # The writer worker stops: the other writes itself, then leads.
        await leader.stop()
        await asyncio.sleep(0.1)  # the other's link reads the end of its connection
        (alone,) = await follower.write([pay("world:w", "customer:b", 5, "k-4")])
        assert alone.error is None
        (after,) = await follower.write([pay("world:w", "customer:b", 6, "k-5")])
        assert after.error is None
        assert follower.leading
        await follower.stop()

    try:
        asyncio.run(run())
    finally:
        leader_writer.stop()
        follower_writer.stop()
    assert journal_keys(leader_writer) == ["k-1", "k-3"]
    assert journal_keys(follower_writer) == ["k-4", "k-5"]


async def _dies(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A writer worker that dies with a request in hand: reads it, closes the connection."""
    await reader.read(1)
    writer.close()


async def _garbles(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A writer worker whose answer does not read back (another release's classes, say)."""
    await reader.read(1)
    writer.write(struct.pack("!I", 5) + b"\x80junk")  # a frame that is no pickle
    await writer.drain()
    await asyncio.sleep(WAIT_S)


@pytest.mark.parametrize("answer", [_dies, _garbles], ids=["dies", "garbles"])
def test_what_the_writer_worker_did_not_answer_is_a_store_error_not_a_hang(
        tmp_path: Path, place: Path,
        answer: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]) -> None:
    follower_writer = writer_on(tmp_path / "b.db")

    async def run() -> None:
        # A writer worker of its own: holds the election and answers as `answer` does.
        place.mkdir(mode=0o700)
        held = os.open(place / "writer.lock", os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        server = await asyncio.start_unix_server(answer, place / "writer.sock")
        follower = WriterHandOff(follower_writer, place)
        await follower.start()
        with pytest.raises(StoreError) as lost:
            await asyncio.wait_for(
                follower.write([pay("world:w", "customer:a", 500, "k-1")]), WAIT_S)
        assert lost.value.code == "store_error"
        server.close()
        os.close(held)
        (retried,) = await follower.write([pay("world:w", "customer:a", 500, "k-1")])
        assert retried.error is None
        await follower.stop()

    try:
        asyncio.run(run())
    finally:
        follower_writer.stop()
    assert journal_keys(follower_writer) == ["k-1"]


def test_a_directory_another_user_could_reach_is_never_used(tmp_path: Path,
                                                            place: Path) -> None:
    place.mkdir(mode=0o755)
    place.chmod(0o755)
    writer = writer_on(tmp_path / "a.db")

    async def run() -> None:
        handoff = WriterHandOff(writer, place)
        await handoff.start()
        assert not handoff.leading
        (result,) = await handoff.write([pay("world:w", "customer:a", 1, "k-1")])
        assert result.error is None
        assert not (place / "writer.sock").exists()
        await handoff.stop()

    try:
        asyncio.run(run())
    finally:
        writer.stop()


def test_a_stopping_writer_worker_refuses_unread_and_the_worker_writes_itself(
        tmp_path: Path, place: Path) -> None:
    leader_writer, follower_writer = writer_on(tmp_path / "a.db"), writer_on(tmp_path / "b.db")

    async def run() -> None:
        leader, follower = await started(place, leader_writer, follower_writer)
        (handed,) = await follower.write([pay("world:w", "customer:a", 500, "k-1")])
        assert handed.error is None
        # The first thing stop() does: from now on nothing handed in is taken.
        leader._stopping = True
        (refused,) = await follower.write([pay("world:w", "customer:a", 600, "k-2")])
        assert refused.error is None
        await leader.stop()
        await follower.stop()

    try:
        asyncio.run(run())
    finally:
        leader_writer.stop()
        follower_writer.stop()
    assert journal_keys(leader_writer) == ["k-1"]
    assert journal_keys(follower_writer) == ["k-2"]  # written once, by the worker itself


def test_a_worker_that_cannot_listen_gives_the_election_up(tmp_path: Path, place: Path) -> None:
    own_writer = writer_on(tmp_path / "a.db")

    async def run() -> None:
        place.mkdir(mode=0o700)
        (place / "writer.sock").mkdir()  # nothing can listen there
        worker = WriterHandOff(own_writer, place)
        await worker.start()
        assert not worker.leading
        (alone,) = await worker.write([pay("world:w", "customer:a", 500, "k-1")])
        assert alone.error is None
        # The lock was given up with its descriptor: another may take it.
        other = os.open(place / "writer.lock", os.O_RDWR)
        try:
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(other)
        await worker.stop()

    try:
        asyncio.run(run())
    finally:
        own_writer.stop()
    assert journal_keys(own_writer) == ["k-1"]
