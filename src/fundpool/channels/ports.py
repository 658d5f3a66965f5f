"""What fundpool asks of a clearing channel (a rail), whatever it is: a bank, a card acquirer, a
chain, a CBDC, or the pool's own books.

A channel adapter says what it can do (`Capabilities`), prices a payment (`Quote`), takes
instructions one at a time or as a batch (`submit`), and reports what became of each
(`ChannelOutcome`), either when asked (`poll`) or by calling back (`subscribe`).

Amounts and fees are integers of minor units. A quote's latency is whole microseconds; its
success probability is a float, since it is an estimate used for ranking, never an amount.

Outcomes are what a real rail sends, so they are not tidy: the same outcome may come twice
(same `outcome_id`), late, or out of order (a settlement before its clearing notice). The
payment side is what makes them safe (payments/dispatch/outcomes.py); an adapter only reports.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol, runtime_checkable

from fundpool.channels.limits import Limits, declared_limits, limit_breach
from fundpool.pool.config import ChannelConfig, ChannelKind, CutOffWindow


class Direction(StrEnum):
    OUTBOUND = "outbound"  # money leaves the pool on this rail (payout, transfer's first leg)
    INBOUND = "inbound"  # money arrives on this rail (deposit, transfer's second leg)


class OutcomeKind(StrEnum):
    CLEARED = "cleared"  # accepted by the rail / authorised and captured, not yet final
    SETTLED = "settled"  # final: funds delivered (outbound) or received (inbound)
    FAILED = "failed"  # the rail rejected it or it timed out; nothing moved
    RETURNED = "returned"  # it settled (or cleared) and came back


@dataclass(frozen=True, slots=True)
class Capabilities:
    channel: str
    kind: ChannelKind
    assets: frozenset[str]
    min_minor: dict[str, int]  # per asset; missing means 1
    max_minor: dict[str, int | None]  # per asset; None or missing means no upper limit
    batch_size_max: int  # 1 when the rail takes one instruction at a time
    cutoff: tuple[CutOffWindow, ...] = ()  # when the rail accepts work; empty means always
    callbacks: bool = True  # whether it pushes outcomes, or must be polled

    @staticmethod
    def declared(channel: ChannelConfig, *, callbacks: bool) -> Capabilities:
        """What an adapter of `channel` declares: its configuration's assets, limits, batch
        size and cut-off windows."""
        minimum, maximum = declared_limits(channel)
        return Capabilities(channel=channel.id, kind=channel.kind,
                            assets=frozenset(channel.assets), min_minor=minimum,
                            max_minor=maximum, batch_size_max=channel.batch_size,
                            cutoff=channel.cutoff, callbacks=callbacks)

    def limits_for(self, asset: str) -> Limits:
        """The rail's limits for `asset` (channels/limits.py: the configured ones)."""
        return Limits(self.min_minor.get(asset, 1), self.max_minor.get(asset))

    def accepts(self, asset: str, amount_minor: int) -> bool:
        return asset in self.assets and limit_breach(self.limits_for(asset), amount_minor) is None

    def open_at(self, at_us: int) -> bool:
        return not self.cutoff or any(window.contains(at_us) for window in self.cutoff)


# Not frozen, as payments.model.Payment is not: one is made for every payout on the
# dispatcher's path, and a frozen __init__ costs several times a plain one. Treat as immutable.
@dataclass(slots=True)
class Quote:
    channel: str
    asset: str
    amount_minor: int
    fee_minor: int  # what this rail charges to send this one payment now
    latency_us: int  # expected time from submission to settlement
    success_probability: float  # the rail's own estimate, 0..1


# Not frozen, as payments.model.Payment is not: one is made for every payout on the
# dispatcher's path, and a frozen __init__ costs several times a plain one. Treat as immutable.
@dataclass(slots=True)
class Instruction:
    """One payment for a rail to carry."""

    payment_id: str
    direction: Direction
    asset: str
    amount_minor: int
    counterparty: str | None = None
    reference: str | None = None
    destination: str | None = None  # a payout's payee account (IBAN, account number, address)


@dataclass(frozen=True, slots=True)
class Submission:
    """What the rail said when it took instructions: its reference for the batch (or single
    instruction) and what it charges for it as a whole."""

    channel: str
    rail_ref: str
    payment_ids: tuple[str, ...]
    submitted_at_us: int
    fee_minor: int  # the rail's charge for the whole submission
    single_fee_minor: int  # what the same instructions would cost sent one by one


# Not frozen, as payments.model.Payment is not: one is made for every payout on the
# dispatcher's path, and a frozen __init__ costs several times a plain one. Treat as immutable.
@dataclass(slots=True)
class ChannelOutcome:
    outcome_id: str  # stable per outcome: a duplicate delivery repeats it
    channel: str
    payment_id: str
    rail_ref: str
    kind: OutcomeKind
    at_us: int  # when the rail says it happened
    reason: str | None = None
    details: dict[str, str] = field(default_factory=dict)  # e.g. confirmations, tx hash


OutcomeCallback = Callable[[ChannelOutcome], None]


class ChannelAdapter(Protocol):
    @property
    def id(self) -> str: ...

    def capabilities(self) -> Capabilities: ...

    def quote(self, asset: str, amount_minor: int, at_us: int) -> Quote: ...

    def submit(self, instructions: Sequence[Instruction], at_us: int) -> Submission:
        """Take one instruction or a batch (at most `batch_size_max`). Raises a
        `FundpoolError` (`channel_refused`) if the rail refuses the whole submission."""
        ...

    def poll(self, until_us: int) -> list[ChannelOutcome]:
        """Outcomes that have happened by `until_us` and were not delivered before (as far as
        the rail knows: it may still deliver one twice)."""
        ...

    def subscribe(self, callback: OutcomeCallback) -> None:
        """Have outcomes pushed as they happen (as `poll` would deliver them)."""
        ...


@runtime_checkable
class Inquiry(Protocol):
    """A rail that answers a status inquiry (ISO 20022 pacs.028, a chain's receipt lookup):
    which of these payments it has taken. What it knows it reports again, outcomes included,
    as `poll` would (duplicates are safe: the payment side knows every outcome id). The engine
    asks after a restart, so that a payment recorded as sent but never sent (the process died
    between the commit and the send) is sent now, and one the rail has is never sent twice. A
    rail without it is trusted to have what the books say it has: such a payment waits, and
    shows as stuck if it never comes."""

    def inquire(self, payment_ids: Sequence[str], at_us: int) -> set[str]: ...
