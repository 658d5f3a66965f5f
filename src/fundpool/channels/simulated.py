"""A simulated rail: a `ChannelAdapter` (channels/ports.py) that behaves like a real one of
its kind (channels/profiles.py), deterministically under a seed.

What becomes of each instruction is drawn when it is submitted, from the rail's own
`random.Random`, in instruction order, and kept in a time-ordered queue until `poll` (or
`deliver`) reaches it. Nothing reads the wall clock or the global random generator: the same
seed, configuration and calls give the same outcomes, byte for byte, so a failing simulation
seed is a bug report. Two generators are kept apart: one draws the fates (fail or not, latency,
return), the other the chaos of delivery (duplicates, reordering, lateness), so that turning a
chaos knob on changes how outcomes arrive but never what they are.

Times of an instruction submitted at t, with L a draw of the profile's lognormal latency:

- fails: `failed` at t + L (on a chain: when the including block's receipt says so);
- otherwise, off chain: `cleared` at t + min(cleared_after, L) if the rail sends that notice,
  `settled` at t + L + settlement_days;
- an inbound capture on a rail that clears inbound at once (a card acquirer): `cleared` at t,
  `settled` at t + settlement_days;
- on a chain one transaction carries the whole submission (a batch contract call), so one L,
  the wait for inclusion, is drawn per submission and all its items share a fake transaction
  hash: `cleared` at the first confirmation, t + L + one block, and `settled` at t + L +
  confirmations x block time (plus settlement_days, 0 by default);
- a settled instruction may come back: `returned` at settlement + return delay.

The `at_us` of an outcome is when the rail says it happened, so cleared <= settled <= returned
always holds in `at_us` (a return comes at the instant of its settlement only if its delay is
0). Delivery is another matter, as with real rails: with the chaos knobs an outcome may be
delivered a second time (same `outcome_id`), late, or a settlement before its clearing notice.

A submission is refused as a whole (`channel_refused`, and nothing is drawn or scheduled)
when it is empty, larger than the channel's batch size, outside its cut-off windows, mixes
assets (a bank file and a batch contract call are in one asset, and so is the submission's fee),
or when one instruction names an asset the channel does not carry, an amount outside its
limits, or a payment id that is already in flight. A payment id is in flight from its
submission until its `settled` or `failed` outcome has been delivered, so a payment that
failed may be submitted again.

The fee of a submission is the rail's fee model for its outbound instructions
(channels/fees.py): in batch, and one by one for comparison. Inbound instructions cost the pool
nothing here; what a rail keeps of a deposit is the channel's fee schedule (`inbound_bps`).

A rail lives in its process unless it is given a journal (channels/rail_journal.py), as a real
rail lives outside it. Each accepted submission, with every outcome drawn for it and when each
copy is due, is then on disk before `submit` returns, and the outcomes the caller has taken
are acknowledged there. A rail that opens the journal again (the next process, after a kill)
carries on: every outcome not acknowledged goes back in its queue (delivered when due, at once
if overdue, again if it had been delivered), the payments in flight stay in flight (refused as
`duplicate_payment_id`, as within one process), and rail references go on counting. By default
a poll acknowledges what earlier polls delivered: a caller that polls again has taken them
(`Acknowledgement.NEXT_POLL`); one that keeps outcomes past its next poll (until a commit)
acknowledges them itself (`Acknowledgement.EXPLICIT`, `acknowledge`). So each outcome is
delivered at least once across crashes, and one acknowledged is never delivered again. A
resumed rail draws from generators seeded with the number of submissions it resumed after:
deterministic, and not the same draws as the first process's. Without a journal, or on an
empty one, nothing changes: the same seed gives the same outcomes, byte for byte.
"""

from __future__ import annotations

import hashlib
import heapq
import math
import os
import random
import zlib
from collections.abc import Iterable, Mapping, Sequence
from enum import StrEnum
from typing import TYPE_CHECKING

from fundpool.channels.fees import FeeModel
from fundpool.channels.ports import (
    Capabilities,
    ChannelAdapter,
    ChannelOutcome,
    Direction,
    Inquiry,
    Instruction,
    OutcomeCallback,
    OutcomeKind,
    Quote,
    Submission,
)
from fundpool.channels.profiles import (
    US_PER_DAY,
    RailProfile,
    assets_by_code,
    default_fee_model,
    profile_for,
)
from fundpool.channels.rail_journal import (
    AcknowledgedRecord,
    JournalOutcome,
    JournalRecord,
    OpenedRecord,
    RailJournal,
    RailJournalMismatch,
    SubmissionRecord,
    read_journal,
)
from fundpool.core.errors import FundpoolError
from fundpool.core.money import Asset
from fundpool.pool.config import ChannelConfig, ChannelKind, InvalidConfig

# A lognormal's tail is unbounded; a rail that takes 100 times its median has timed out anyway.
LATENCY_CAP_FACTOR = 100
SUBSCRIBERS_MAX = 64


class ChannelRefused(FundpoolError):
    code = "channel_refused"
    title = "the channel refused the submission"


class RefusalReason(StrEnum):
    EMPTY = "empty"
    BATCH_TOO_LARGE = "batch_too_large"
    CLOSED = "closed"  # outside every cut-off window
    INVALID_INSTRUCTION = "invalid_instruction"
    UNKNOWN_ASSET = "unknown_asset"
    MIXED_ASSETS = "mixed_assets"
    AMOUNT_OUTSIDE_LIMITS = "amount_outside_limits"
    DUPLICATE_PAYMENT_ID = "duplicate_payment_id"  # in this submission or still in flight


# What real rails of each kind say when they refuse or return a payment (ISO 20022 reason
# codes for banks and instant credit, ISO 8583 response codes and dispute reasons for cards).
_FAILURE_REASONS: dict[ChannelKind, tuple[str, ...]] = {
    ChannelKind.BANK_WIRE: (
        "AC01 incorrect account number", "AC04 closed account number",
        "AG01 transaction forbidden", "RC01 bank identifier incorrect",
    ),
    ChannelKind.INSTANT_CREDIT: (
        "AB05 timeout at creditor agent", "AC01 incorrect account number",
        "AC04 closed account number", "AM02 amount exceeds limit",
    ),
    ChannelKind.CARD_ACQUIRER: (
        "05 do not honour", "51 insufficient funds", "54 expired card",
        "59 suspected fraud",
    ),
    ChannelKind.EVM_L1: ("execution reverted", "out of gas"),
    ChannelKind.EVM_L2: ("execution reverted", "out of gas"),
    ChannelKind.STABLECOIN_RAIL: ("execution reverted", "out of energy"),
    ChannelKind.CBDC: ("wallet limit exceeded", "wallet frozen"),
    ChannelKind.BOOK: ("account closed",),
}
_RETURN_REASONS: dict[ChannelKind, tuple[str, ...]] = {
    ChannelKind.BANK_WIRE: (
        "AC04 closed account number", "MD07 end customer deceased", "AM05 duplication",
    ),
    ChannelKind.INSTANT_CREDIT: ("FRAD fraudulent origin", "DUPL duplicate payment"),
    ChannelKind.CARD_ACQUIRER: (
        "chargeback 10.4 fraud card absent", "chargeback 13.1 merchandise not received",
    ),
    ChannelKind.EVM_L1: ("sent back by the recipient",),
    ChannelKind.EVM_L2: ("sent back by the recipient",),
    ChannelKind.STABLECOIN_RAIL: ("sent back by the recipient",),
    ChannelKind.CBDC: ("reversed by the operator",),
    ChannelKind.BOOK: ("reversed by the operator",),
}

_FINAL = frozenset({OutcomeKind.SETTLED, OutcomeKind.FAILED})


class Acknowledgement(StrEnum):
    """When a journaled rail records that the caller has taken what it delivered."""

    NEXT_POLL = "next_poll"  # the next poll or deliver (the caller came back: it has them)
    EXPLICIT = "explicit"  # only `acknowledge(ids)`: the caller says so once it has committed


class _Scheduled:
    """One outcome waiting for delivery. The outcome object itself is only built when it is
    delivered: a submission of hundreds of instructions stays cheap."""

    __slots__ = ("at_us", "details", "index", "kind", "payment_id", "rail_ref", "reason")

    def __init__(
        self,
        kind: OutcomeKind,
        payment_id: str,
        rail_ref: str,
        index: int,
        at_us: int,
        reason: str | None,
        details: tuple[tuple[str, str], ...],
    ) -> None:
        self.kind = kind
        self.payment_id = payment_id
        self.rail_ref = rail_ref
        self.index = index
        self.at_us = at_us
        self.reason = reason
        self.details = details


_Entry = tuple[int, int, _Scheduled]  # (due, sequence, outcome): the sequence breaks ties
_Due = tuple[int, _Scheduled]  # a copy to queue: (due, outcome), before it has its sequence


def _pick(reasons: tuple[str, ...], draw: float, rate: float) -> str:
    """A reason chosen by the same draw that decided the event (draw < rate), so the choice
    costs no extra draw and the fates of later instructions do not depend on it."""
    return reasons[min(len(reasons) - 1, int(draw / rate * len(reasons)))]


class SimulatedRail:
    """A `ChannelAdapter` for one configured channel, with outcomes drawn from a profile."""

    def __init__(
        self,
        channel: ChannelConfig,
        assets: Mapping[str, Asset] | Iterable[Asset],
        *,
        seed: int,
        profile: RailProfile | None = None,
        instance: str | None = None,
        journal: RailJournal | None = None,
        acknowledgement: Acknowledgement = Acknowledgement.NEXT_POLL,
    ) -> None:
        """`instance` names this rail object among others of the same channel over time (a
        process that starts later, a second run on the same store): it goes into every rail
        reference and so into every outcome id, which must never repeat on a channel. Give
        one whenever earlier runs' outcomes may already be recorded.

        With a `journal` (open, and from then on the rail's to close) the rail resumes what
        the journal holds and records what it does (see the module's docstring)."""
        by_code = assets_by_code(assets)
        self._ref_prefix = channel.id if instance is None else f"{channel.id}-{instance}"
        missing = [code for code in channel.assets if code not in by_code]
        if missing:
            raise InvalidConfig(
                f"assets not defined: {missing}", at=f"channels.{channel.id}.assets"
            )
        self._channel = channel
        self._profile = profile if profile is not None else profile_for(channel, by_code)
        # A given profile may lack models for some assets: those get their kind's default.
        self._fee_models: dict[str, FeeModel] = {
            code: self._profile.fee_models.get(code)
            or default_fee_model(channel.kind, by_code[code], channel.fee_schedule(code))
            for code in channel.assets
        }
        channel_crc = zlib.crc32(channel.id.encode("utf-8"))
        # String seeds are hashed with SHA-512 by `random`, the same in every process.
        generators = f"fundpool/{seed}/{channel_crc}"
        self._capabilities = self._make_capabilities()
        self._queue: list[_Entry] = []
        self._sequence = 0
        self._submissions = 0
        self._in_flight: dict[str, str] = {}  # payment id -> rail ref of its submission
        self._journal = journal
        self._acknowledgement = acknowledgement
        self._unacknowledged: list[str] = []  # delivered, not yet acknowledged in the journal
        if journal is not None:
            self._resume(journal.records)
            if self._submissions:
                # Not the first process's draws again: those fates were dealt already.
                generators = f"{generators}/resumed-after-{self._submissions}"
            journal.append([OpenedRecord(channel.id, instance, os.getpid())])
        self._fates = random.Random(f"{generators}/fates")
        self._chaos = random.Random(f"{generators}/chaos")
        self._subscribers: list[OutcomeCallback] = []
        self._failure_reasons = _FAILURE_REASONS[channel.kind]
        self._return_reasons = _RETURN_REASONS[channel.kind]
        self._latency_cap_us = self._profile.latency_median_us * LATENCY_CAP_FACTOR
        # What every quote repeats, worked out once (the router asks for a quote per payment).
        self._schedules = {code: channel.fee_schedule(code) for code in channel.assets}
        self._expected_latency_us = self._profile.expected_latency_us()
        self._quoted_success_probability = self._profile.quoted_success_probability

    # --- what the rail is ----------------------------------------------------------------------

    @property
    def id(self) -> str:
        return self._channel.id

    @property
    def profile(self) -> RailProfile:
        return self._profile

    def fee_model(self, asset: str) -> FeeModel:
        return self._fee_models[asset]

    def _make_capabilities(self) -> Capabilities:
        return Capabilities.declared(self._channel, callbacks=True)

    def capabilities(self) -> Capabilities:
        return self._make_capabilities()  # a fresh copy: its dicts are the caller's to keep

    def quote(self, asset: str, amount_minor: int, at_us: int) -> Quote:
        """The channel's configured fee, and the profile's expected time to settlement, plus
        the wait for the next cut-off window when the rail is closed at `at_us`."""
        if asset not in self._capabilities.assets:
            raise self._refused(RefusalReason.UNKNOWN_ASSET, asset=asset)
        return Quote(
            self._channel.id,
            asset,
            amount_minor,
            self._schedules[asset].outbound_fee(amount_minor),
            self._wait_until_open_us(at_us) + self._expected_latency_us,
            self._quoted_success_probability,
        )

    def _wait_until_open_us(self, at_us: int) -> int:
        cutoff = self._channel.cutoff
        if not cutoff or self._capabilities.open_at(at_us):
            return 0
        return min(window.next_open_us(at_us) for window in cutoff) - at_us

    # --- taking work ---------------------------------------------------------------------------

    def submit(self, instructions: Sequence[Instruction], at_us: int) -> Submission:
        batch = tuple(instructions)
        asset = self._check(batch, at_us)
        rail_ref = f"{self._ref_prefix}-{self._submissions + 1}"
        copies: list[_Due] = []
        if self._profile.is_chain:
            self._schedule_on_chain(batch, at_us, rail_ref, copies)
        else:
            self._schedule(batch, at_us, rail_ref, copies)
        if self._journal is not None:
            # On disk before anything changes here: if the write fails, the rail took nothing.
            self._journal.append([_submission_record(batch, at_us, rail_ref, copies)])
        self._submissions += 1
        queue = self._queue
        for due, scheduled in copies:
            self._sequence += 1
            heapq.heappush(queue, (due, self._sequence, scheduled))
        for instruction in batch:
            self._in_flight[instruction.payment_id] = rail_ref
        outbound = sum(1 for i in batch if i.direction == Direction.OUTBOUND)
        model = self._fee_models[asset]
        return Submission(
            channel=self.id,
            rail_ref=rail_ref,
            payment_ids=tuple(i.payment_id for i in batch),
            submitted_at_us=at_us,
            fee_minor=model.batch_fee(outbound),
            single_fee_minor=model.single_fee(outbound),
        )

    def _refused(self, reason: RefusalReason, **facts: object) -> ChannelRefused:
        return ChannelRefused(
            f"{self.id} refused the submission: {reason.value}",
            channel=self.id,
            reason=reason.value,
            **facts,
        )

    def _check(self, batch: tuple[Instruction, ...], at_us: int) -> str:
        """The submission's asset, or the reason the whole submission is refused."""
        capabilities = self._capabilities
        if not batch:
            raise self._refused(RefusalReason.EMPTY)
        if len(batch) > capabilities.batch_size_max:
            raise self._refused(
                RefusalReason.BATCH_TOO_LARGE,
                batch_size=len(batch),
                batch_size_max=capabilities.batch_size_max,
            )
        if not capabilities.open_at(at_us):
            raise self._refused(
                RefusalReason.CLOSED,
                at_us=at_us,
                next_open_us=at_us + self._wait_until_open_us(at_us),
            )
        first_asset: str | None = None
        seen: set[str] = set()
        for index, instruction in enumerate(batch):
            if (
                not isinstance(instruction, Instruction)
                or instruction.direction not in (Direction.OUTBOUND, Direction.INBOUND)
                or not isinstance(instruction.payment_id, str)
                or not instruction.payment_id
                or not isinstance(instruction.asset, str)
                or isinstance(instruction.amount_minor, bool)
                or not isinstance(instruction.amount_minor, int)
            ):
                raise self._refused(RefusalReason.INVALID_INSTRUCTION, index=index)
            payment_id, asset = instruction.payment_id, instruction.asset
            if asset not in capabilities.assets:
                raise self._refused(
                    RefusalReason.UNKNOWN_ASSET, payment_id=payment_id, asset=asset,
                    assets=sorted(capabilities.assets),
                )
            if first_asset is None:
                first_asset = asset
            elif asset != first_asset:
                raise self._refused(
                    RefusalReason.MIXED_ASSETS, payment_id=payment_id, asset=asset,
                    submission_asset=first_asset,
                )
            if not capabilities.accepts(asset, instruction.amount_minor):
                raise self._refused(
                    RefusalReason.AMOUNT_OUTSIDE_LIMITS,
                    payment_id=payment_id,
                    asset=asset,
                    amount_minor=instruction.amount_minor,
                    min_minor=capabilities.limits_for(asset).min_minor,
                    max_minor=capabilities.limits_for(asset).max_minor,
                )
            if payment_id in seen or payment_id in self._in_flight:
                raise self._refused(
                    RefusalReason.DUPLICATE_PAYMENT_ID,
                    payment_id=payment_id,
                    in_flight_rail_ref=self._in_flight.get(payment_id),
                )
            seen.add(payment_id)
        return batch[0].asset

    def _latency_us(self) -> int:
        draw = self._profile.latency_median_us * math.exp(
            self._profile.latency_sigma * self._fates.gauss()
        )
        return int(min(draw, self._latency_cap_us))

    def _schedule(
        self, batch: tuple[Instruction, ...], at_us: int, rail_ref: str, copies: list[_Due]
    ) -> None:
        profile = self._profile
        draw = self._fates.random
        failure_rate, return_rate = profile.failure_rate, profile.return_rate
        settlement_us = profile.settlement_days * US_PER_DAY
        clears_inbound_at_once = profile.inbound_clears_at_once
        for index, instruction in enumerate(batch):
            # Always three draws per instruction, in this order, whatever the outcome: the
            # next instruction's fate does not depend on this one's.
            fate = draw()
            latency_us = self._latency_us()
            comeback = draw()
            payment_id = instruction.payment_id
            if fate < failure_rate:
                reason = _pick(self._failure_reasons, fate, failure_rate)
                failed = _Scheduled(
                    OutcomeKind.FAILED, payment_id, rail_ref, index, at_us + latency_us, reason, ()
                )
                self._enqueue(None, failed, None, copies)
                continue
            cleared = None
            if clears_inbound_at_once and instruction.direction == Direction.INBOUND:
                cleared_at_us, settled_at_us = at_us, at_us + settlement_us
                cleared = _Scheduled(
                    OutcomeKind.CLEARED, payment_id, rail_ref, index, cleared_at_us, None, ()
                )
            else:
                settled_at_us = at_us + latency_us + settlement_us
                if profile.sends_cleared:
                    cleared_at_us = at_us + min(profile.cleared_after_us, latency_us)
                    cleared = _Scheduled(
                        OutcomeKind.CLEARED, payment_id, rail_ref, index, cleared_at_us, None, ()
                    )
            settled = _Scheduled(
                OutcomeKind.SETTLED, payment_id, rail_ref, index, settled_at_us, None, ()
            )
            returned = None
            if comeback < return_rate:
                returned = _Scheduled(
                    OutcomeKind.RETURNED, payment_id, rail_ref, index,
                    settled_at_us + profile.return_delay_us,
                    _pick(self._return_reasons, comeback, return_rate), (),
                )
            self._enqueue(cleared, settled, returned, copies)

    def _schedule_on_chain(
        self, batch: tuple[Instruction, ...], at_us: int, rail_ref: str, copies: list[_Due]
    ) -> None:
        profile = self._profile
        draw = self._fates.random
        failure_rate, return_rate = profile.failure_rate, profile.return_rate
        # One transaction for the whole submission: one wait for inclusion, one hash.
        included_at_us = at_us + self._latency_us()
        tx_hash = "0x" + hashlib.sha256(f"{rail_ref}/{at_us}".encode()).hexdigest()
        block_us = profile.block_time_us
        first_block_at_us = included_at_us + min(1, profile.confirmations) * block_us
        settled_at_us = (
            included_at_us
            + profile.confirmations * block_us
            + profile.settlement_days * US_PER_DAY
        )
        tx_details = (("tx_hash", tx_hash),)
        cleared_details = (("tx_hash", tx_hash), ("confirmations", "1"))
        settled_details = (("tx_hash", tx_hash), ("confirmations", str(profile.confirmations)))
        for index, instruction in enumerate(batch):
            fate = draw()
            comeback = draw()
            payment_id = instruction.payment_id
            if fate < failure_rate:
                failed = _Scheduled(
                    OutcomeKind.FAILED, payment_id, rail_ref, index, first_block_at_us,
                    _pick(self._failure_reasons, fate, failure_rate), tx_details,
                )
                self._enqueue(None, failed, None, copies)
                continue
            cleared = None
            if profile.sends_cleared:
                cleared = _Scheduled(
                    OutcomeKind.CLEARED, payment_id, rail_ref, index, first_block_at_us, None,
                    cleared_details,
                )
            settled = _Scheduled(
                OutcomeKind.SETTLED, payment_id, rail_ref, index, settled_at_us, None,
                settled_details,
            )
            returned = None
            if comeback < return_rate:
                returned = _Scheduled(
                    OutcomeKind.RETURNED, payment_id, rail_ref, index,
                    settled_at_us + profile.return_delay_us,
                    _pick(self._return_reasons, comeback, return_rate), tx_details,
                )
            self._enqueue(cleared, settled, returned, copies)

    def _enqueue(
        self,
        cleared: _Scheduled | None,
        final: _Scheduled,
        returned: _Scheduled | None,
        copies: list[_Due],
    ) -> None:
        """Add one instruction's outcomes to the copies to queue, in queueing order, with the
        profile's chaos applied: each may be late or delivered twice, and a clearing notice
        may come after the settlement it precedes. `at_us` stays what the rail says; only
        delivery moves."""
        profile = self._profile
        chaos = self._chaos.random
        late = profile.late_rate
        cleared_due = 0 if cleared is None else cleared.at_us
        final_due = final.at_us
        if late:
            if cleared is not None and chaos() < late:
                cleared_due += profile.late_us
            if chaos() < late:
                final_due += profile.late_us
        ordered: list[tuple[int, _Scheduled]] = [(final_due, final)]
        if cleared is not None:
            if profile.out_of_order_rate and chaos() < profile.out_of_order_rate:
                ordered.append((max(cleared_due, final_due), cleared))  # queued after settled
            else:
                ordered.insert(0, (cleared_due, cleared))
        if returned is not None:
            returned_due = returned.at_us
            if late and chaos() < late:
                returned_due += profile.late_us
            ordered.append((returned_due, returned))
        duplicates = profile.duplicate_rate
        for due, scheduled in ordered:
            copies.append((due, scheduled))
            if duplicates and chaos() < duplicates:
                copies.append((due + profile.duplicate_delay_us, scheduled))

    # --- reporting -----------------------------------------------------------------------------

    def poll(self, until_us: int) -> list[ChannelOutcome]:
        """Every outcome due for delivery by `until_us` and not delivered yet, in order of
        delivery (ties in the order they were queued). Subscribers get them too."""
        return self._deliver(until_us)

    def deliver(self, until_us: int) -> None:
        """As `poll`, for a caller that only listens through `subscribe`."""
        self._deliver(until_us)

    def subscribe(self, callback: OutcomeCallback) -> None:
        if len(self._subscribers) >= SUBSCRIBERS_MAX:
            raise ValueError(f"at most {SUBSCRIBERS_MAX} subscribers per rail")
        self._subscribers.append(callback)

    def pending_count(self) -> int:
        """Deliveries still queued (a duplicate counts as one more)."""
        return len(self._queue)

    def next_due_us(self) -> int | None:
        """When the next delivery is due, or None when nothing is queued."""
        return self._queue[0][0] if self._queue else None

    def _deliver(self, until_us: int) -> list[ChannelOutcome]:
        if self._acknowledgement == Acknowledgement.NEXT_POLL:
            self._acknowledge_delivered()
        queue = self._queue
        entries: list[_Entry] = []
        while queue and queue[0][0] <= until_us:
            entries.append(heapq.heappop(queue))
        outcomes = [self._outcome(scheduled) for _, _, scheduled in entries]
        if self._subscribers:
            for position, outcome in enumerate(outcomes):
                try:
                    for callback in self._subscribers:
                        callback(outcome)
                except BaseException:
                    # Like a rail whose webhook failed: what was not acknowledged is sent
                    # again on the next delivery (a subscriber may see this one twice).
                    for entry in entries[position:]:
                        heapq.heappush(queue, entry)
                    self._land(entries[:position])
                    self._delivered(outcomes[:position])
                    raise
        self._land(entries)
        self._delivered(outcomes)
        return outcomes

    def _delivered(self, outcomes: list[ChannelOutcome]) -> None:
        if outcomes and self._journal is not None:
            self._unacknowledged.extend(outcome.outcome_id for outcome in outcomes)

    def _land(self, entries: list[_Entry]) -> None:
        """A payment leaves flight once its settled or failed outcome has been delivered."""
        for _, _, scheduled in entries:
            self._land_one(scheduled)

    def _land_one(self, scheduled: _Scheduled) -> None:
        in_flight = self._in_flight
        if scheduled.kind in _FINAL and in_flight.get(scheduled.payment_id) == (
            scheduled.rail_ref
        ):
            del in_flight[scheduled.payment_id]

    # --- the journal ---------------------------------------------------------------------------

    def acknowledge(self, outcome_ids: Iterable[str] | None = None) -> None:
        """Record in the journal that the caller has taken these outcomes (all those
        delivered and not yet acknowledged when None): no later process delivers them again.
        Nothing to do without a journal."""
        if self._journal is None:
            return
        if outcome_ids is None:
            self._acknowledge_delivered()
            return
        taken = tuple(outcome_ids)
        if taken:
            self._journal.append([AcknowledgedRecord(taken)])
            done = set(taken)
            self._unacknowledged = [i for i in self._unacknowledged if i not in done]

    def _acknowledge_delivered(self) -> None:
        if self._unacknowledged and self._journal is not None:
            self._journal.append([AcknowledgedRecord(tuple(self._unacknowledged))])
            self._unacknowledged = []

    def inquire(self, payment_ids: Sequence[str], at_us: int) -> set[str]:
        """Which of these payments the rail has taken (a status inquiry, as ISO 20022 pacs.028
        or a chain's receipt lookup): with a journal, every payment any of its holders
        accepted; without one, those in flight. For each it has, every outcome of its latest
        submission that is not waiting in the queue (so it was delivered, perhaps to a
        process that died before it kept it) is queued again, due at `at_us`: the next poll
        reports it again, with its outcome id. Called after a restart, rarely: it reads the
        journal file."""
        asked = set(payment_ids)
        known = {payment_id for payment_id in asked if payment_id in self._in_flight}
        if self._journal is None or not asked:
            return known
        latest: dict[str, SubmissionRecord] = {}
        for record in read_journal(self._journal.path):
            if isinstance(record, SubmissionRecord):
                for instruction in record.instructions:
                    if instruction.payment_id in asked:
                        latest[instruction.payment_id] = record
        queued = {_outcome_id(scheduled) for _, _, scheduled in self._queue}
        for payment_id, record in latest.items():
            known.add(payment_id)
            for o in record.outcomes:
                if o.payment_id == payment_id and o.outcome_id not in queued:
                    self._sequence += 1
                    heapq.heappush(self._queue, (at_us, self._sequence, _scheduled_of(o)))
        return known

    def rail_ref_of(self, payment_id: str) -> str | None:
        """The reference of the submission that holds this payment while it is in flight
        (what a bank answers when asked for a payment by its end-to-end id), else None."""
        return self._in_flight.get(payment_id)

    @property
    def journal(self) -> RailJournal | None:
        return self._journal

    def close(self) -> None:
        """Let go of the journal (its lock), acknowledging nothing more: a clean stop leaves
        what a crash would, and the next rail delivers the last poll's outcomes again (the
        payment side drops them as duplicates). Nothing to do without a journal."""
        if self._journal is not None:
            self._journal.close()

    def _resume(self, records: Sequence[JournalRecord]) -> None:
        """Rebuild what the journal's earlier holders left: the rail reference count, the
        payments in flight, and every copy of every outcome not acknowledged, queued in the
        order it was first queued."""
        waiting: dict[str, tuple[_Scheduled, tuple[int, ...]]] = {}
        in_flight = self._in_flight
        for record in records:
            if isinstance(record, SubmissionRecord):
                self._submissions += 1
                for instruction in record.instructions:
                    in_flight[instruction.payment_id] = record.rail_ref
                for o in record.outcomes:
                    waiting[o.outcome_id] = (_scheduled_of(o), o.due_us)
            elif isinstance(record, AcknowledgedRecord):
                for outcome_id in record.outcome_ids:
                    taken = waiting.pop(outcome_id, None)
                    if taken is not None:
                        self._land_one(taken[0])
            elif record.channel != self._channel.id:
                raise RailJournalMismatch(
                    f"{self._journal.path if self._journal else ''} is the journal of "
                    f"{record.channel!r}, not {self._channel.id!r}",
                    channel=self._channel.id, journal_channel=record.channel,
                )
        queue = self._queue
        for scheduled, due_us in waiting.values():
            for due in due_us:
                self._sequence += 1
                heapq.heappush(queue, (due, self._sequence, scheduled))

    def _outcome(self, scheduled: _Scheduled) -> ChannelOutcome:
        return ChannelOutcome(
            outcome_id=_outcome_id(scheduled),
            channel=self._channel.id,
            payment_id=scheduled.payment_id,
            rail_ref=scheduled.rail_ref,
            kind=scheduled.kind,
            at_us=scheduled.at_us,
            reason=scheduled.reason,
            details=dict(scheduled.details),
        )


def _submission_record(
    batch: tuple[Instruction, ...], at_us: int, rail_ref: str, copies: list[_Due]
) -> SubmissionRecord:
    """The journal's record of a submission: its outcomes in queueing order, with the due
    times of their copies (a duplicate's copies are queued one after the other)."""
    outcomes: list[JournalOutcome] = []
    last: _Scheduled | None = None
    due_us: list[int] = []
    for due, scheduled in copies:
        if scheduled is last:
            due_us.append(due)
            continue
        if last is not None:
            outcomes.append(_journal_outcome(last, due_us))
        last, due_us = scheduled, [due]
    if last is not None:
        outcomes.append(_journal_outcome(last, due_us))
    return SubmissionRecord(rail_ref, at_us, batch, tuple(outcomes))


def _journal_outcome(scheduled: _Scheduled, due_us: list[int]) -> JournalOutcome:
    return JournalOutcome(
        outcome_id=_outcome_id(scheduled),
        payment_id=scheduled.payment_id,
        rail_ref=scheduled.rail_ref,
        index=scheduled.index,
        kind=scheduled.kind,
        at_us=scheduled.at_us,
        reason=scheduled.reason,
        details=scheduled.details,
        due_us=tuple(due_us),
    )


def _scheduled_of(o: JournalOutcome) -> _Scheduled:
    return _Scheduled(o.kind, o.payment_id, o.rail_ref, o.index, o.at_us, o.reason, o.details)


def _outcome_id(scheduled: _Scheduled) -> str:
    return f"{scheduled.rail_ref}/{scheduled.index}/{scheduled.kind.value}"


if TYPE_CHECKING:

    def _is_a_channel_adapter(rail: SimulatedRail) -> ChannelAdapter:
        return rail  # mypy checks here that the rail implements the port exactly

    def _answers_an_inquiry(rail: SimulatedRail) -> Inquiry:
        return rail
