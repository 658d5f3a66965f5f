"""The port monitoring declares for a bus that applies events to its projections.

An adapter that carries events (`fundpool.bus`) reads each message into an `Item`
(`read_message`) and applies them, many pools at a time, through a `ProjectionApplier`, which
answers with an `ApplyReport`: what was applied, duplicated or stepped over, what is held
after a gap, which pools are blocked. `projector.Projector` is the applier monitoring
provides; an entry point hands the bus a factory of them. The vocabulary of applying is
defined beside the projector and named here too, so that an adapter needs this module only.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from fundpool.monitoring.projector import ApplyReport, Item, Skipped, read_message

__all__ = ["ApplyReport", "Item", "ProjectionApplier", "Skipped", "read_message"]


class ProjectionApplier(Protocol):
    """Applies events to stored projections, each once per pool and seq, committing the
    figures with the cursors (docs/adr/0011)."""

    def apply(self, items: Iterable[Item]) -> ApplyReport:
        """Apply what can be applied now, commit it, and report the rest."""
        ...

    def forget(self) -> None:
        """Drop what is held in memory: another process may have moved a pool on."""
        ...
