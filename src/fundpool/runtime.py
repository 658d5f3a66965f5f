"""The real clock and id source, for entry points (CLI, API, workers).

The core never reads a clock or draws a random number itself; an entry point builds a `Ledger`
with these, and tests or simulations pass a `ManualClock` and seeded ids instead.
"""

from __future__ import annotations

import gc
import os
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


def process_ids() -> Uuid7Ids:
    """UUIDv7 ids from a generator seeded once from the operating system's: as unique as
    `system_ids()` without a system call per id, for a server writing under load. Make one per
    process, after it forks (each API worker does, in its app factory)."""
    return Uuid7Ids(random.Random(os.urandom(32)))


# A batch of 8,192 transfers allocates some 100,000 small objects; with CPython's default
# gen-0 threshold (700) that triggers over a hundred collections per batch, each walking the
# young objects, and the older generations walk the whole balance cache. Measured on the ledger
# benchmark: about 15% of a batch (docs/benchmarks.md). Fewer, larger collections keep the same
# garbage bounded.
GC_THRESHOLDS = (50_000, 20, 100)


def tune_gc() -> None:
    """Set the cyclic garbage collector for a long-running ledger process. Entry points call it
    once at start; a library embedding fundpool keeps its own settings."""
    gc.set_threshold(*GC_THRESHOLDS)
