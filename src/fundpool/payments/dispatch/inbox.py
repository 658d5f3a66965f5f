"""The outcomes a dispatcher has yet to apply.

What the rails reported (polled at each tick) and the refusals of its own sends wait here
until the transaction that applies them commits: a rail does not report a thing again because
a commit failed. A rail that refuses a submission (closed, too large) refused every payment in
it, so each becomes a `failed` outcome, handled at the next tick like any other failure.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from fundpool.channels.ports import ChannelOutcome, Instruction, OutcomeKind


class Inbox:
    def __init__(self) -> None:
        self._outcomes: list[ChannelOutcome] = []

    def __len__(self) -> int:
        return len(self._outcomes)

    def deliver(self, outcomes: Iterable[ChannelOutcome]) -> None:
        self._outcomes.extend(outcomes)

    def refuse(
        self, channel: str, instructions: Sequence[Instruction], reason: str, now: int
    ) -> None:
        """The rail refused these instructions: each payment failed on it."""
        for instruction in instructions:
            self._outcomes.append(
                ChannelOutcome(
                    f"refused-{instruction.payment_id}-{now}", channel, instruction.payment_id,
                    "", OutcomeKind.FAILED, now, reason,
                )
            )

    def first(self, count: int) -> list[ChannelOutcome]:
        """The oldest `count` outcomes, left in the inbox until `applied`."""
        return self._outcomes[:count]

    def applied(self, count: int) -> None:
        """The oldest `count` outcomes were applied and committed."""
        del self._outcomes[:count]
