"""One writer per ledger among the workers of one machine: the others hand it their commands.

With several workers on PostgreSQL, each worker's group-commit writer (writer.py) used to
commit its own groups, and the ledger's advisory lock made them take turns: two workers
committed twice as many transactions, each half as full, one after the other, and every
transaction found its balance cache stale (the other worker had written). More workers were
slower (docs/adr/0018-api-hot-path-and-workers.md). Here the workers that share a ledger
elect one of them, the *writer worker*, and hand it their commands over a Unix socket; its
writer commits everybody's waiting commands as one group, exactly as it does its own.

- **Election**: an exclusive `flock` on `writer.lock` in a directory named after the ledger's
  database URL, private to this user (0700, checked). The holder listens on `writer.sock`
  beside it. The lock dies with its process, so when the writer worker dies another worker
  takes it at its next write.
- **The hand-off**: a request is its number and its commands; its answer, the same number and
  the command's results, or the error the writer raised. What a side sends in one turn of its
  event loop goes as one frame (one pickled list): a group's answers leave together.
  Pickle is safe here: only this user's processes can reach the socket.
- **Failure**: requests whose answer is lost with the writer worker get `store_error` (503),
  as a database lost in the middle of a commit does; they may or may not have committed, and
  a retry with the same `Idempotency-Key` tells which. A writer worker that is stopping takes
  nothing more: what it is handed then is refused unread (`HandOffRefused`), and the worker
  that handed it writes it itself. Whenever no writer worker can be reached, a worker writes
  itself, as before: the ledger's lock keeps that correct, so the hand-off is a saving, never
  a condition of correctness.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import hashlib
import os
import pickle
import socket
import stat
import struct
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import structlog

from fundpool.core.errors import StoreError
from fundpool.core.ledger.engine import CommandResult
from fundpool.core.ledger.model import Command
from fundpool.server.v1.writer import LedgerWriter

log = structlog.get_logger(__name__)

_HEADER = struct.Struct("!I")  # a frame's bytes: a pickled list of (request number, payload)
_PEER = struct.Struct("3i")  # SO_PEERCRED: pid, uid, gid
FRAME_BYTES_MAX = 256 * 1024 * 1024  # a turn's batches of the largest size, pickled
RECONNECT_S = 1.0  # how often a worker that writes itself tries to find a writer worker again
DRAIN_S = 2.0  # how long a stopping writer worker finishes the commands handed to it


def place_for(db_url: str) -> Path:
    """The directory of the hand-off for the ledger at `db_url`: per user and per database
    (and schema), short enough for a socket's path."""
    digest = hashlib.sha256(db_url.encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"fundpool-{os.getuid()}-{digest}"


def _private(place: Path) -> bool:
    """The directory exists (made now if not), is this user's and nobody else's."""
    with contextlib.suppress(FileExistsError):
        place.mkdir(mode=0o700)
    info = place.lstat()
    return stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid() and \
        stat.S_IMODE(info.st_mode) & 0o077 == 0


class HandOffLost(StoreError):
    """The writer worker went away before answering (it may have committed)."""


class HandOffRefused(StoreError):
    """The writer worker is stopping and took nothing of this request: it was not written."""


class WriterHandOff:
    """This worker's way to the ledger's one writer: its own `writer` while it leads, the
    writer worker's over the socket otherwise, its own again when none can be reached."""

    def __init__(self, writer: LedgerWriter, place: Path) -> None:
        self.writer = writer
        self.place = place
        self._lock_fd: int | None = None
        self._server: asyncio.AbstractServer | None = None
        self._link: _Link | None = None
        self._retry_at = 0.0
        self._electing = False
        self._handed = 0  # commands of other workers in this writer's queue
        self._stopping = False
        self._peers: set[asyncio.StreamWriter] = set()  # the other workers' connections

    @property
    def leading(self) -> bool:
        return self._lock_fd is not None

    async def start(self) -> None:
        if not _private(self.place):
            log.warning("writer_handoff_disabled", place=str(self.place),
                        reason="the directory is not private to this user")
            self._retry_at = float("inf")
            return
        await self._try_lead()

    async def stop(self) -> None:
        self._stopping = True  # what is handed from now on is refused, never half taken
        if self._link is not None:
            self._link.close(None)
            self._link = None
        if self._server is not None:
            self._server.close()
            deadline = time.monotonic() + DRAIN_S
            while self._handed and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            await asyncio.sleep(0)  # the last answers' frame goes out (_Frames)
            for peer in self._peers:
                peer.close()  # the other workers write themselves, or elect another
            self._server = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    async def write(self, commands: Sequence[Command]) -> list[CommandResult]:
        if self._lock_fd is None:
            if self._link is not None and self._link.closed:
                self._link = None
                self._retry_at = 0.0  # the writer worker went away: elect one again now
            if self._link is None and not self._electing and \
                    time.monotonic() >= self._retry_at:
                self._electing = True  # one election at a time (the others write meanwhile)
                try:
                    self._retry_at = time.monotonic() + RECONNECT_S
                    if not await self._try_lead():
                        self._link = await _Link.open(self.place / "writer.sock")
                finally:
                    self._electing = False
        link = self._link
        if link is not None:
            try:
                return await link.call(commands)
            except HandOffRefused:  # the writer worker stops: nothing of this was written
                if self._link is link:  # new requests write here; the link ends on its own
                    self._link = None
                    self._retry_at = time.monotonic() + RECONNECT_S
        return await self.writer.submit_async(commands)

    # --- leading ---------------------------------------------------------------------------

    async def _try_lead(self) -> bool:
        fd = os.open(self.place / "writer.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        path = self.place / "writer.sock"
        try:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()  # a dead writer worker's: nobody listens on it
            self._server = await asyncio.start_unix_server(self._serve, path)
        except OSError as error:  # the lock is given up with its descriptor: none leads
            os.close(fd)
            log.warning("writer_worker_not_listening", place=str(self.place), reason=str(error))
            return False
        self._lock_fd = fd
        log.info("writer_worker", pid=os.getpid())
        return True

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Only this user's processes may hand commands in: the directory says so, and so must
        # the peer (pickle runs what it is given).
        peer = writer.get_extra_info("socket")
        _, uid, _ = _PEER.unpack(peer.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                                 _PEER.size))
        if uid != os.getuid():
            writer.close()
            return
        answers = _Frames(writer)
        self._peers.add(writer)
        try:
            while True:
                handed: list[tuple[int, list[Command]]] = pickle.loads(  # noqa: S301 - above
                    await _read_frame(reader))
                for number, commands in handed:
                    if self._stopping:
                        answers.send((number, HandOffRefused(reason="the writer worker stops")))
                        continue
                    future = self.writer.submit_async(commands)
                    self._handed += 1
                    future.add_done_callback(functools.partial(self._answer, answers, number))
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass  # the other worker went away, or this one stops
        except Exception:  # a frame that is not what a worker sends: that link ends
            log.exception("writer_handoff_bad_frame")
        finally:
            self._peers.discard(writer)
            writer.close()

    def _answer(self, answers: _Frames, number: int,
                future: asyncio.Future[list[CommandResult]]) -> None:
        self._handed -= 1
        if future.cancelled():
            return  # this worker stops: the other's link reports the loss
        answers.send((number, future.exception() or future.result()))


class _Frames:
    """What one side sends: the items of one turn of the event loop go out as one frame, so a
    group's answers (and the requests parsed together) cost one write and one pickle."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self._writer = writer
        self._items: list[tuple[int, object]] = []

    def send(self, item: tuple[int, object]) -> None:
        if not self._items:
            asyncio.get_running_loop().call_soon(self._flush)
        self._items.append(item)

    def _flush(self) -> None:
        items, self._items = self._items, []
        if self._writer.is_closing():
            return
        try:
            payload = pickle.dumps(items)
        except Exception:  # an error that does not pickle: said as a store error
            payload = pickle.dumps([(number, _picklable(value)) for number, value in items])
        self._writer.write(_HEADER.pack(len(payload)) + payload)


def _picklable(value: object) -> object:
    try:
        pickle.dumps(value)
    except Exception as error:
        return StoreError(reason=f"{type(value).__name__}: {error}")
    return value


class _Link:
    """A worker's connection to the writer worker: requests numbered, answered in any order."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writer = writer
        self._requests = _Frames(writer)
        self._waiting: dict[int, asyncio.Future[list[CommandResult]]] = {}
        self._number = 0
        self.closed = False
        self._reading = asyncio.create_task(self._read(reader))

    @classmethod
    async def open(cls, path: Path) -> _Link | None:
        try:
            reader, writer = await asyncio.open_unix_connection(path)
        except OSError:
            return None
        return cls(reader, writer)

    async def call(self, commands: Sequence[Command]) -> list[CommandResult]:
        self._number += 1
        future: asyncio.Future[list[CommandResult]] = \
            asyncio.get_running_loop().create_future()
        self._waiting[self._number] = future
        self._requests.send((self._number, list(commands)))
        return await future

    async def _read(self, reader: asyncio.StreamReader) -> None:
        lost: BaseException | None = HandOffLost(reason="the writer worker went away")
        try:
            while True:
                answers: list[tuple[int, object]] = pickle.loads(  # noqa: S301 - _private
                    await _read_frame(reader))
                for number, outcome in answers:
                    future = self._waiting.pop(number, None)
                    if future is None or future.done():
                        continue
                    if isinstance(outcome, BaseException):
                        future.set_exception(outcome)
                    else:
                        future.set_result(outcome)  # type: ignore[arg-type]
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        except asyncio.CancelledError:
            lost = None
        except Exception:  # an answer that does not read back: the link is lost all the same
            log.exception("writer_handoff_bad_answer")
        self.close(lost)

    def close(self, lost: BaseException | None) -> None:
        """End the link; requests still waiting get `lost` (or are cancelled)."""
        self.closed = True
        self._writer.close()
        for future in self._waiting.values():
            if not future.done():
                if lost is None:
                    future.cancel()
                else:
                    future.set_exception(lost)
        self._waiting.clear()
        if not self._reading.done() and asyncio.current_task() is not self._reading:
            self._reading.cancel()


async def _read_frame(reader: asyncio.StreamReader) -> bytes:
    (size,) = _HEADER.unpack(await reader.readexactly(_HEADER.size))
    if size > FRAME_BYTES_MAX:
        raise ConnectionError(f"a frame of {size} bytes")
    return await reader.readexactly(size)
