"""What one tick of the dispatcher did."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class TickReport:
    at_us: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)  # by disposition
    steps: dict[str, int] = field(default_factory=dict)  # by action applied
    batches: int = 0
    submitted: int = 0
    refused: int = 0
    failovers: int = 0
    unknown: int = 0  # payments in batches whose send failed without the rail's answer
    stuck: int = 0
    queued: int = 0

    def count(self, table: dict[str, int], key: str, n: int = 1) -> None:
        total = table.get(key, 0) + n
        if total:
            table[key] = total
        else:
            table.pop(key, None)
