"""The real clock and id source, for entry points (CLI, API, workers).

The core never reads a clock or draws a random number itself; an entry point builds a `Ledger`
with these, and tests or simulations pass a `ManualClock` and seeded ids instead.
"""

from __future__ import annotations

import random
import time

from fundpool.core.clock import Uuid7Ids


class SystemClock:
    """Wall-clock time in microseconds since the Unix epoch, UTC."""

    def now_us(self) -> int:
        return time.time_ns() // 1000


def system_ids() -> Uuid7Ids:
    """UUIDv7 ids whose random bits come from the operating system's generator."""
    return Uuid7Ids(random.SystemRandom())
