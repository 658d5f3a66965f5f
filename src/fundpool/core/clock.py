"""Time and identity, injected. The core never reads a clock or draws a random number itself:
the same commands with the same clock and id source give the same journal, byte for byte."""

from __future__ import annotations

import random
from typing import Protocol


class Clock(Protocol):
    def now_us(self) -> int:
        """Microseconds since the Unix epoch, UTC."""
        ...


class IdSource(Protocol):
    def new_id(self, at_us: int) -> str:
        """A fresh time-ordered id for an entry made at `at_us`."""
        ...


class ManualClock:
    """A clock that moves only when told to: for tests, simulation and replay."""

    def __init__(self, start_us: int = 1_767_225_600_000_000) -> None:  # 2026-01-01T00:00Z
        self._now_us = start_us

    def now_us(self) -> int:
        return self._now_us

    def advance(self, *, seconds: float = 0, microseconds: int = 0) -> None:
        # Seconds may be fractional for convenience in tests; the clock itself stays integral.
        self._now_us += int(seconds * 1_000_000) + microseconds

    def set(self, now_us: int) -> None:
        self._now_us = now_us


class Uuid7Ids:
    """UUIDv7 (RFC 9562): 48 bits of milliseconds, then random bits from a seeded generator.

    Ids made within one millisecond stay ordered: the 12-bit `rand_a` field is a counter seeded
    at random at each new millisecond (RFC 9562, method 3), and a counter overflow borrows the
    next millisecond, so ids are strictly increasing for a non-decreasing `at_us`.
    """

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._last_ms = -1
        self._counter = 0

    @classmethod
    def seeded(cls, seed: int) -> Uuid7Ids:
        return cls(random.Random(seed))

    def new_id(self, at_us: int) -> str:
        ms = at_us // 1000
        if ms > self._last_ms:
            self._last_ms = ms
            self._counter = self._rng.getrandbits(11)  # leaves headroom before overflow
        else:
            self._counter += 1
            if self._counter > 0xFFF:
                self._last_ms += 1
                self._counter = 0
        ms = self._last_ms & 0xFFFFFFFFFFFF
        random_bits = self._rng.getrandbits(62)
        # unix_ts_ms (48) | ver 7 (4) | counter (12) | var 0b10 (2) | random (62)
        return "%08x-%04x-%04x-%04x-%012x" % (  # noqa: UP031 (one formatting call, measured)
            ms >> 16,
            ms & 0xFFFF,
            0x7000 | self._counter,
            0x8000 | random_bits >> 48,
            random_bits & 0xFFFFFFFFFFFF,
        )
