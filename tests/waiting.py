"""Waiting in a test for something another thread, process or clock does: poll until it holds
or a deadline passes, then fail saying what did not happen.

A fixed sleep before an assert is a guess at how fast the machine is, and a busy machine makes
it wrong; a bound is generous, and ends as soon as the condition holds.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from fundpool.runtime import SystemClock

T = TypeVar("T")
POLL_S = 0.02
CLOCK_PASSES_S_MAX = 5.0  # the wall clock moves on in microseconds; the bound is for a stepped one
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def wait_until(condition: Callable[[], T], *, within_s: float, what: str,
               poll_s: float = POLL_S, detail: Callable[[], object] | None = None) -> T:
    """`condition()`'s first true value, asked every `poll_s` seconds; past `within_s`, an
    AssertionError naming `what` (what was waited for), the last value seen and `detail()`
    (a server's log, say)."""
    deadline = time.monotonic() + within_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            message = f"waited {within_s:g} s for {what}; last saw {value!r}"
            raise AssertionError(message if detail is None else f"{message}\n{detail()}")
        time.sleep(poll_s)


def instant_us(text: str) -> int:
    """An ISO-8601 instant with its offset (an entry's `at`) in microseconds since the epoch."""
    return (datetime.fromisoformat(text.replace("Z", "+00:00")) - _EPOCH) // timedelta(
        microseconds=1)


def wait_for_clock_past(instant: str) -> None:
    """Until the wall clock that stamps ledger entries reads later than `instant`: an entry
    written after this carries a later instant than one written at `instant`."""
    after_us = instant_us(instant)
    clock = SystemClock()
    wait_until(lambda: clock.now_us() > after_us, within_s=CLOCK_PASSES_S_MAX, poll_s=0.001,
               what=f"the wall clock to pass {instant}")
