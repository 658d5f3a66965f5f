"""The last result of a function, kept for the same argument object.

A session's steps and rows mostly share one actor object (the engine, or the caller of the
call), and a frozen dataclass's hash, which a cache lookup needs, is computed in Python field
by field. Comparing identity with the last argument first skips that for all but the first
of a run. Thread-safe without a lock: the pair is replaced, never changed in place.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class LastByIdentity(Generic[K, V]):
    def __init__(self, make: Callable[[K], V]) -> None:
        self._make = make
        self._last: tuple[K, V] | None = None

    def __call__(self, key: K) -> V:
        last = self._last
        if last is not None and last[0] is key:
            return last[1]
        value = self._make(key)
        self._last = (key, value)
        return value
