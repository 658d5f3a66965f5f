"""Worker processes that start a race at the same moment.

Each worker says `ready` on its stdout once it is connected, then waits for a line on its
stdin; the test waits (with a bound) until every worker is ready and then lets them all go.
A start instant on the wall clock ("every process is connected by now + 2 s") guessed how
long starting Python and connecting takes, and on a busy machine the workers could miss it
and run one after another.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Sequence

import pytest

READY = "ready"
# Pasted into a worker's script where it is connected and should wait for the others.
WAIT_FOR_GO = f"print({READY!r}, flush=True)\nsys.stdin.readline()\n"
READY_S_MAX = 60.0


def start_together(workers: Sequence[subprocess.Popen[str]],
                   within_s: float = READY_S_MAX) -> None:
    """Once every worker (started with stdin and stdout pipes, text mode) has said it is ready,
    tell them all to go; a worker that ends or stays silent past `within_s` fails the test."""
    deadline = time.monotonic() + within_s
    for index, worker in enumerate(workers):
        line = _first_line(worker, deadline)
        if line is None:
            for each in workers:
                each.kill()
            pytest.fail(f"worker {index} was not ready within {within_s:g} s")
        if line.strip() != READY:
            _, err = worker.communicate(timeout=within_s)
            for each in workers:
                each.kill()
            pytest.fail(f"worker {index} said {line!r} instead of {READY!r}:\n{err[-2000:]}")
    for worker in workers:
        assert worker.stdin is not None
        worker.stdin.write("go\n")
        worker.stdin.flush()  # left open: communicate() closes it (and fails on a closed one)


def _first_line(worker: subprocess.Popen[str], deadline: float) -> str | None:
    """The worker's next line ('' when it ended), or None when none came by `deadline`."""
    assert worker.stdout is not None
    stdout = worker.stdout
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.append(stdout.readline()), daemon=True)
    reader.start()
    reader.join(max(0.0, deadline - time.monotonic()))
    return lines[0] if lines else None
