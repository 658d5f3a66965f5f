"""Group commit for the API: the ledger commands of concurrent requests, written together.

Each request hands its command to the `LedgerWriter` and waits for its result. One thread
takes every command waiting, up to `batch_max`, and submits them to the ledger as one batch:
one store transaction, one commit, one fsync for all of them (docs/adr/0012-api.md). A
command's result is its own: a rejected transfer fails alone, as it would have on its own,
and a response is only sent once the batch holding its command has committed.

Under no load a batch is one command and costs what a single submit costs; under load the
batches grow by themselves, and with them the throughput.

A request on the event loop waits through `submit_async`: the thread hands a batch's results
back to each loop in one call (`call_soon_threadsafe`), not one wake-up per request, since the
hand-off cost as much as the transfer's own rows in the API's profile (docs/adr/0018).
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from typing import TypeAlias

import structlog

from fundpool.core.errors import FundpoolError
from fundpool.core.ledger.engine import CommandResult
from fundpool.core.ledger.model import Command
from fundpool.ledger.service import Ledger
from fundpool.server.problems import DriverErrors, store_failure

log = structlog.get_logger(__name__)

BATCH_MAX = 1_024
# A waiter is a thread's future (`submit`) or an event loop's (`submit_async`).
_Waiter: TypeAlias = Future[list[CommandResult]] | asyncio.Future[list[CommandResult]]
_Waiting: TypeAlias = tuple[list[Command], _Waiter]
_Outcome: TypeAlias = tuple[asyncio.Future[list[CommandResult]],
                            list[CommandResult] | BaseException]


class LedgerWriter:
    """`driver_errors`: what the store raises when its database fails (each waiting request
    then gets `store_error`)."""

    def __init__(self, ledger: Ledger, *, driver_errors: DriverErrors,
                 batch_max: int = BATCH_MAX) -> None:
        self.ledger = ledger
        self.driver_errors = driver_errors
        self.batch_max = batch_max
        self._queue: queue.SimpleQueue[_Waiting | None] = queue.SimpleQueue()  # None: stop
        self._thread: threading.Thread | None = None
        self._started = False
        self._lock = threading.Lock()

    def start(self) -> LedgerWriter:
        with self._lock:
            if not self._started:
                # A new thread each time: an app may be started again after a shut-down (a
                # test client's lifespan), and a thread runs only once.
                self._thread = threading.Thread(target=self._run, daemon=True,
                                                name="fundpool-ledger-writer")
                self._thread.start()
                self._started = True
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        with self._lock:
            if not self._started:
                return
            self._started = False
            thread = self._thread
        self._queue.put(None)
        if thread is not None:
            thread.join(timeout_s)

    def submit(self, commands: Sequence[Command]) -> Future[list[CommandResult]]:
        """Queue `commands` (applied in order, in one batch); the future holds their results."""
        future: Future[list[CommandResult]] = Future()
        if not self._started:
            self.start()
        self._queue.put((list(commands), future))
        return future

    def submit_async(self, commands: Sequence[Command]) -> asyncio.Future[list[CommandResult]]:
        """`submit` for a caller on the running event loop: the future is the loop's own."""
        future: asyncio.Future[list[CommandResult]] = asyncio.get_running_loop().create_future()
        if not self._started:
            self.start()
        self._queue.put((list(commands), future))
        return future

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            waiting: list[_Waiting] = [first]
            count = len(first[0])
            stop = False
            while count < self.batch_max:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                waiting.append(item)
                count += len(item[0])
            self._write(waiting)
            if stop:
                return

    def _write(self, waiting: list[_Waiting]) -> None:
        commands = [command for part, _ in waiting for command in part]
        outcomes: list[list[CommandResult] | BaseException]
        try:
            results = self.ledger.submit(commands)
        except BaseException as error:
            failure: BaseException = error
            if isinstance(error, self.driver_errors):
                failure = store_failure(error)
            elif not isinstance(error, FundpoolError):
                log.error("ledger_batch_failed", error=type(error).__name__, exc_info=error)
            outcomes = [failure] * len(waiting)
        else:
            outcomes = []
            start = 0
            for part, _ in waiting:
                outcomes.append(results[start:start + len(part)])
                start += len(part)
        by_loop: dict[asyncio.AbstractEventLoop, list[_Outcome]] = {}
        for (_, future), outcome in zip(waiting, outcomes, strict=True):
            if isinstance(future, asyncio.Future):
                by_loop.setdefault(future.get_loop(), []).append((future, outcome))
            elif isinstance(outcome, BaseException):
                if not future.cancelled():
                    future.set_exception(outcome)
            else:
                future.set_result(outcome)
        for loop, answered in by_loop.items():
            try:
                loop.call_soon_threadsafe(_settle, answered)
            except RuntimeError:  # the loop has closed: nobody waits there any more
                continue


def _settle(answered: list[_Outcome]) -> None:
    """On the loop: each waiting request's results (or its batch's failure)."""
    for future, outcome in answered:
        if future.done():  # the request went away (cancelled)
            continue
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)
