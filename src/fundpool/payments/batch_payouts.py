"""Batch payouts from a CSV file: the checked file (payments/csv_batch.py) goes through the
dispatcher's intake, and its progress is the states of the payouts it created.

Valid rows proceed and rows with errors are reported, unless the uploader asks for all or
nothing: then a file with any row error creates nothing (`payout_file_has_errors`), and the
valid file is taken in as one transaction that also refuses everything if any payout cannot
be routed or approved (`intake_refused`). Rows keep their idempotency keys (by reference), so
uploading a file again creates nothing twice.

Once created, the payouts are queued per rail like any other and go out in each rail's
batches, so a file spread over several rails settles on all of them in parallel.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from fundpool.core.actor import Actor
from fundpool.core.errors import FundpoolError
from fundpool.payments.csv_batch import PayoutFile
from fundpool.payments.dispatch import Dispatcher, Intake
from fundpool.payments.model import Payment, PaymentState
from fundpool.payments.service import PaymentService
from fundpool.payments.session import CALL_ITEMS_MAX


class PayoutFileHasErrors(FundpoolError):
    code = "payout_file_has_errors"
    title = "the payout file has rows with errors, and all or nothing was asked for"


@dataclass(frozen=True, slots=True)
class SubmittedRow:
    line: int
    payment_id: str | None
    state: str | None
    error: str | None  # the code of why it was not created, or why it stopped


@dataclass(frozen=True, slots=True)
class PayoutFileResult:
    sha256: str
    rows: tuple[SubmittedRow, ...]  # the valid rows, in file order

    @property
    def payment_ids(self) -> list[str]:
        return [row.payment_id for row in self.rows if row.payment_id is not None]


@dataclass(frozen=True, slots=True)
class Progress:
    total: int
    by_state: dict[str, int]

    @property
    def finished(self) -> int:
        return sum(n for s, n in self.by_state.items() if _final(PaymentState(s)))

    @property
    def done(self) -> bool:
        return self.finished == self.total


def _final(state: PaymentState) -> bool:
    return state.terminal or state is PaymentState.SETTLED


def submit_payout_file(
    dispatcher: Dispatcher,
    payouts: PayoutFile,
    *,
    all_or_nothing: bool = False,
    on_chunk: Callable[[int, int], None] | None = None,
    actor: Actor | None = None,
) -> PayoutFileResult:
    """Create the file's valid payouts, as `actor` (the uploader). `on_chunk(done, total)` is
    told after each chunk."""
    if all_or_nothing and payouts.invalid_count:
        raise PayoutFileHasErrors(
            invalid_rows=payouts.invalid_count,
            first_line=next(row.line for row in payouts.rows if not row.ok),
        )
    rows = [row for row in payouts.rows if row.request is not None]
    requests = [(row.request, row.idempotency_key) for row in rows if row.request is not None]
    intakes: list[Intake] = []
    if all_or_nothing:
        intakes = dispatcher.intake(requests, atomic=True, actor=actor)
        if on_chunk is not None:
            on_chunk(len(requests), len(requests))
    else:
        for start in range(0, len(requests), CALL_ITEMS_MAX):
            intakes += dispatcher.intake(requests[start : start + CALL_ITEMS_MAX], actor=actor)
            if on_chunk is not None:
                on_chunk(len(intakes), len(requests))
    submitted = []
    for row, intake in zip(rows, intakes, strict=True):
        outcome = intake.outcome
        if isinstance(outcome, Payment):
            # A row whose payout was rejected (no rail could take it) stopped there: say why.
            submitted.append(
                SubmittedRow(row.line, outcome.id, outcome.state.value, intake.refusal)
            )
        else:
            submitted.append(SubmittedRow(row.line, None, None, outcome.code))
    return PayoutFileResult(payouts.sha256, tuple(submitted))


def progress(service: PaymentService, payment_ids: Sequence[str]) -> Progress:
    states = service.states(payment_ids)
    return Progress(len(payment_ids), dict(Counter(s.value for s in states.values())))
