"""Deposits a rail is told to expect.

A deposit is created and screened at intake; once that commits, its rail is told to expect
it, and the rail's reports clear and settle it (or return it). A rail outside its cut-off
window is told when it opens, as its payouts are sent then: it would refuse the announcement,
and a refused announcement fails the deposit.
"""

from __future__ import annotations

from collections.abc import Mapping

from fundpool.channels.ports import Capabilities, ChannelAdapter, Direction, Instruction
from fundpool.core.clock import Clock
from fundpool.core.errors import FundpoolError
from fundpool.payments.dispatch.batching import instruction_of
from fundpool.payments.dispatch.inbox import Inbox
from fundpool.payments.model import Payment


class Announcements:
    """`rails` is the dispatcher's own mapping (shared, not copied)."""

    def __init__(
        self,
        rails: Mapping[str, ChannelAdapter],
        capabilities: Mapping[str, Capabilities],
        clock: Clock,
        inbox: Inbox,
    ) -> None:
        self._rails = rails
        self._capabilities = capabilities
        self._clock = clock
        self._inbox = inbox
        self._waiting: list[tuple[str, Instruction]] = []

    def expect(self, channel: str, payment: Payment) -> None:
        self._waiting.append((channel, instruction_of(payment, Direction.INBOUND)))

    def send(self) -> None:
        """Tell the open rails which deposits to expect; the others wait."""
        now = self._clock.now_us()
        # One submission per rail and asset: a submission is in one asset (a bank file, a
        # batch contract call), and a rail refuses a mixed one whole.
        by_rail: dict[tuple[str, str], list[Instruction]] = {}
        waiting: list[tuple[str, Instruction]] = []
        for channel, instruction in self._waiting:
            caps = self._capabilities.get(channel)
            if caps is not None and not caps.open_at(now):
                waiting.append((channel, instruction))
            else:
                by_rail.setdefault((channel, instruction.asset), []).append(instruction)
        self._waiting = waiting
        for (channel, _), instructions in by_rail.items():
            rail = self._rails.get(channel)
            if rail is None:
                continue
            size = max(1, self._capabilities[channel].batch_size_max)
            for start in range(0, len(instructions), size):
                part = instructions[start : start + size]
                try:
                    rail.submit(part, now)
                except FundpoolError as error:
                    self._inbox.refuse(channel, part, f"{error.code}: {error.detail}", now)
