"""Batches: approved payouts queue per (rail, asset) and go out together.

A queue goes out when it reaches the rail's batch size or its oldest payout has waited the
policy's `batch_age_us`, and only while the rail's cut-off window is open.

**Commit first, then send.** A batch is marked submitted (its funds moved to in transit) and
committed before the rail is called. If the process dies in between, the books say "in
transit" for payments the rail never got: visible, and safe, since no money moved. The other
order (send, then commit) could leave money sent that the books do not show, and a retry
would send it again. A rail that refuses a batch (closed, too large) is turned into a
`failed` outcome per payment (inbox.py). The rail's receipt (its reference and the fee it
charged, kept with the batch's savings) is written at the next tick, in that tick's
transaction.

**Timeouts do not fail payments.** A payment in transit longer than the policy's
`stuck_after_us` is reported as stuck, not failed: failing it and routing it again while the
first rail may still deliver would risk paying twice. Resolving it is a person's call (or a
rail status query, when a rail has one). An adapter that fails without an answer (a timeout,
a dropped connection) leaves its batch `unknown` and its payments in transit, for the same
reason; the other rails' batches still go.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from fundpool.channels.ports import Capabilities, ChannelAdapter, Direction, Instruction
from fundpool.core.clock import Clock, IdSource
from fundpool.core.errors import FundpoolError
from fundpool.payments.dispatch.inbox import Inbox
from fundpool.payments.dispatch.policy import DispatchPolicy
from fundpool.payments.dispatch.report import TickReport
from fundpool.payments.model import Action, Payment, Step
from fundpool.payments.ports import DispatchRecordWrites
from fundpool.payments.records import BatchRecord, RouteRecord
from fundpool.payments.session import PaymentSession
from fundpool.routing.congestion import CongestionMeter


# Not frozen, as payments.model.Payment is not: one is made for every payout on the
# dispatcher's path, and a frozen __init__ costs several times a plain one. Treat as immutable.
@dataclass(slots=True)
class Queued:
    payment_id: str
    attempt: int
    instruction: Instruction
    queued_at_us: int


@dataclass(frozen=True, slots=True)
class Sent:
    """A batch the rail has taken (or refused), to be recorded at the next tick."""

    batch: BatchRecord
    members: tuple[tuple[str, int], ...]  # (payment id, attempt)


Due = tuple[str, str, list[Queued]]  # (channel, asset, payments): one batch for one rail


def instruction_of(payment: Payment, direction: Direction) -> Instruction:
    amount = payment.amount_minor
    return Instruction(payment.id, direction, payment.asset, amount, payment.counterparty,
                       payment.reference, payment.destination)


class Batches:
    """The queues per (rail, asset), what is in transit, and the receipts of sends not yet
    written. `rails` is the dispatcher's own mapping (shared, not copied)."""

    def __init__(
        self,
        rails: Mapping[str, ChannelAdapter],
        capabilities: Mapping[str, Capabilities],
        clock: Clock,
        ids: IdSource,
        policy: DispatchPolicy,
        inbox: Inbox,
        congestion: CongestionMeter | None = None,
    ) -> None:
        self._rails = rails
        self._congestion = congestion  # told what each rail took (routing/congestion.py)
        self._capabilities = capabilities
        self._clock = clock
        self._ids = ids
        self._policy = policy
        self._inbox = inbox
        self._queues: dict[tuple[str, str], deque[Queued]] = {}
        self._queued_ids: set[str] = set()
        self._in_transit: dict[str, tuple[str, int]] = {}  # payment -> (channel, since)
        self._to_record: list[Sent] = []  # until the transaction that writes them commits

    # --- the queues -------------------------------------------------------------------------

    def enqueue(self, payment: Payment, attempt: int, at_us: int) -> None:
        if payment.id in self._queued_ids or payment.channel is None:
            return
        key = (payment.channel, payment.asset)
        self._queues.setdefault(key, deque()).append(
            Queued(payment.id, attempt, instruction_of(payment, Direction.OUTBOUND), at_us)
        )
        self._queued_ids.add(payment.id)

    def is_queued(self, payment_id: str) -> bool:
        return payment_id in self._queued_ids

    def queued(self) -> int:
        return len(self._queued_ids)

    def forget(self) -> None:
        """Drop the queues: the store is the truth, and a rescan rebuilds them from it."""
        self._queues.clear()
        self._queued_ids.clear()

    # --- in transit -------------------------------------------------------------------------

    def in_transit(self, payment: Payment) -> None:
        """A payment the store says is in transit on its channel (since its last change)."""
        if payment.channel is not None:
            self._in_transit.setdefault(payment.id, (payment.channel, payment.updated_at_us))

    def left_transit(self, payment_id: str) -> None:
        self._in_transit.pop(payment_id, None)

    def stuck(self, now: int) -> int:
        limit = self._policy.stuck_after_us
        return sum(1 for _, since in self._in_transit.values() if now - since > limit)

    # --- submitting and sending -----------------------------------------------------------

    def submit_due(self, session: PaymentSession, report: TickReport, limit: int) -> list[Due]:
        """Take due batches off the queues, at most `limit` payments, and mark their
        payments submitted."""
        now = session.at_us
        due: list[Due] = []
        room = limit
        for (channel, asset), queue in self._queues.items():
            caps = self._capabilities.get(channel)
            if caps is None or not queue or not caps.open_at(now):
                continue
            size = max(1, caps.batch_size_max)
            while room > 0 and queue and (
                len(queue) >= size or now - queue[0].queued_at_us >= self._policy.batch_age_us
                or size == 1
            ):
                taken = [queue.popleft() for _ in range(min(size, len(queue), room))]
                room -= len(taken)
                for item in taken:
                    self._queued_ids.discard(item.payment_id)
                due.append((channel, asset, taken))
        if not due:
            return []
        steps = [Step(item.payment_id, Action.SUBMIT) for _, _, items in due for item in items]
        results = iter(session.act(steps))
        sendable: list[Due] = []
        for channel, asset, items in due:
            kept: list[Queued] = []
            for item in items:
                result = next(results)
                if isinstance(result, Payment):
                    kept.append(item)
                    self._in_transit[item.payment_id] = (channel, now)
                # else: cancelled or changed meanwhile; it is no longer ours to send
            if kept:
                sendable.append((channel, asset, kept))
                report.count(report.steps, Action.SUBMIT.value, len(kept))
        return sendable

    def send(self, due: Sequence[Due], report: TickReport) -> None:
        """After the commit: hand each batch to its rail."""
        now = self._clock.now_us()
        for channel, asset, items in due:
            rail = self._rails[channel]
            instructions = [item.instruction for item in items]
            members = tuple((item.payment_id, item.attempt) for item in items)
            amount = sum(i.amount_minor for i in instructions)
            batch_id = self._ids.new_id(now)
            try:
                sent = rail.submit(instructions, now)
            except FundpoolError as error:
                report.refused += len(items)
                self._inbox.refuse(channel, instructions, f"{error.code}: {error.detail}", now)
                self._to_record.append(Sent(
                    BatchRecord(batch_id, channel, asset, None, len(items), amount, 0, 0, 0,
                                min(i.queued_at_us for i in items), now, "refused"),
                    members,
                ))
                continue
            except Exception:  # any adapter failure: this batch only
                # Not a refusal: the rail may or may not have taken the batch (a timeout, a
                # dropped connection). Failing the payments could pay them twice, so they
                # stay in transit, the batch is recorded as `unknown`, and they show as
                # stuck until the rail reports or a person resolves them. The other rails'
                # batches still go.
                report.unknown += len(items)
                self._to_record.append(Sent(
                    BatchRecord(batch_id, channel, asset, None, len(items), amount, 0, 0, 0,
                                min(i.queued_at_us for i in items), now, "unknown"),
                    members,
                ))
                continue
            report.batches += 1
            report.submitted += len(items)
            if self._congestion is not None:
                self._congestion.taken(channel, len(items), now)
            savings = max(0, sent.single_fee_minor - sent.fee_minor)
            self._to_record.append(Sent(
                BatchRecord(batch_id, channel, asset, sent.rail_ref, len(items), amount,
                            sent.fee_minor, sent.single_fee_minor, savings,
                            min(i.queued_at_us for i in items), now, "sent"),
                members,
            ))

    def resend(self, channel: str, payments: Sequence[Payment],
               routes: Mapping[str, Sequence[RouteRecord]], report: TickReport) -> None:
        """Send payments the books have as submitted on `channel` but its rail never took
        (after a restart: Dispatcher.resume), in batches of the rail's size and one asset."""
        caps = self._capabilities.get(channel)
        size = max(1, caps.batch_size_max if caps is not None else 1)
        by_asset: dict[str, list[Queued]] = {}
        for payment in payments:
            attempts = routes.get(payment.id, [])
            attempt = attempts[-1].attempt if attempts else 1
            by_asset.setdefault(payment.asset, []).append(Queued(
                payment.id, attempt, instruction_of(payment, Direction.OUTBOUND),
                payment.updated_at_us))
            self._in_transit.setdefault(payment.id, (channel, payment.updated_at_us))
        due: list[Due] = [(channel, asset, items[start : start + size])
                          for asset, items in by_asset.items()
                          for start in range(0, len(items), size)]
        self.send(due, report)

    # --- receipts ---------------------------------------------------------------------------

    def has_receipts(self) -> bool:
        return bool(self._to_record)

    def write_receipts(self, writes: DispatchRecordWrites) -> None:
        """Write the receipts of earlier sends (`receipts_written` once committed)."""
        if not self._to_record:
            return
        writes.add_batches([sent.batch for sent in self._to_record])
        writes.mark_sent(
            [
                (pid, attempt, sent.batch.id, sent.batch.rail_ref)
                for sent in self._to_record
                for pid, attempt in sent.members
            ]
        )

    def receipts_written(self) -> None:
        self._to_record = []
