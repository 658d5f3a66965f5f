"""Run the same upgrade from several threads at once, each on a connection of its own."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from fundpool.sql.database import Database

T = TypeVar("T")


def at_once(url: str, upgrade: Callable[[Database], T], count: int, timeout_s: float) -> list[T]:
    """What `upgrade` returned in each of `count` threads started together on `url`; fails if
    one raised or did not finish within `timeout_s`."""
    barrier = threading.Barrier(count)
    results: list[T | None] = [None] * count
    failures: list[BaseException] = []

    def run(index: int) -> None:
        db = Database(url)
        try:
            barrier.wait(timeout=timeout_s)
            results[index] = upgrade(db)
        except BaseException as error:  # reported by the test's thread
            failures.append(error)
        finally:
            db.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout_s)
    assert not any(thread.is_alive() for thread in threads), "an upgrade did not finish"
    assert not failures, failures
    return [result for result in results if result is not None]
