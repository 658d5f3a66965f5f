"""Reconciliation matching (issue 18): a month of one channel's statement lines against its book
items, a million of each, through `recon.matching.match` (target: < 60 s on 2 cores), beside a
plain hash join on the end-to-end id measured in the same run.

Prints one JSON line per figure:
  {"bench": "recon", "workload": ..., "value": ..., "unit": ..., "baseline": ...,
   "baseline_value": ..., "ratio": ..., ...}

The lines and items are generated from a seed, not timed, in the proportions of a payout and
collection channel (shares of the statement's lines):
- ~88% one line per payment with its end-to-end id (payouts, deposits, returns; 1:1);
- batches of 5 to 20 payouts, each booked as one line naming its batch (half of them listing
  their transactions' end-to-end ids as parts; 1:N), a few booked as two lines (N:M), and a
  CHARGE line per batch for the batch's fee items (1:N);
- payments paid in two parts (two lines, one item: N:1);
- ~2% credits whose only reference is the remittance text of the deposit's announcement;
- ~4% lines that carry no reference at all, matched by amount and date;
- ambiguous pairs (two lines, two items, equal amounts, the same day), lines whose amount
  differs from the payment they name, lines the books lack (bank charges, unannounced
  credits) and items the bank has not shown yet.
Both sides are shuffled: matching must not lean on their order.

Each workload times one `match` call (the process's GC as the entry points set it,
`runtime.tune_gc`, collected before the clock starts); the baseline is the same inputs joined
by a dict of payment id to (non-fee) item and one loop over the lines, the least any matcher
does, timed right after. `exact` is the channel tolerance `0.00` and 2 days (a hash by amount);
`tolerant` is 1.00 and 2 days (sorted amounts and bisection). Memory: the process's resident
peak during the match above what it held before (the inputs), from VmHWM, reset before each
workload through /proc/self/clear_refs (Linux).

Usage: python bench/recon.py [--lines 1000000] [--seed 0]
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import time
from collections.abc import Sequence
from pathlib import Path

from fundpool.recon.matching import match
from fundpool.recon.model import (
    DAY_US,
    BookItem,
    ItemKind,
    LineKind,
    StatementLine,
    Tolerance,
)
from fundpool.runtime import tune_gc

MONTH_START_US = 1_796_601_600_000_000  # 2026-12-07T00:00:00Z
MONTH_DAYS = 30
AMOUNT_MAX_MINOR = 500_000_00  # payments from 0.01 to 500,000.00
BATCH_SIZE_MIN, BATCH_SIZE_MAX = 5, 20
FEE_MINOR = 20
TARGET_S = 60


def rss_peak_mb() -> float | None:
    try:
        with open("/proc/self/status") as status:
            line = next(line for line in status if line.startswith("VmHWM:"))
    except OSError:
        return None
    return int(line.split()[1]) / 1024


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def reset_rss_peak() -> bool:
    clear_refs = Path("/proc/self/clear_refs")
    try:
        clear_refs.write_text("5")  # 5: reset the peak resident set size to the current one
    except OSError:
        return False
    return True


class Month:
    """A seeded month of one channel: its statement lines and its book items."""

    def __init__(self, lines_wanted: int, seed: int) -> None:
        self.rng = random.Random(seed)
        self.lines: list[StatementLine] = []
        self.items: list[BookItem] = []
        self.serial = 0
        self.mix: dict[str, int] = {}
        # shares of units, not of lines: a batch is 2 or 3 lines and 10 to 40 items (a
        # payout and its fee each)
        kinds = (("one_to_one", 0.880), ("batch", 0.002), ("batch_split", 0.0005),
                 ("in_parts", 0.010), ("remittance", 0.020), ("amount_only", 0.040),
                 ("ambiguous", 0.005), ("amount_differs", 0.005), ("not_in_books", 0.025),
                 ("not_at_bank", 0.015))
        names = [name for name, _ in kinds]
        weights = [share for _, share in kinds]
        while len(self.lines) < lines_wanted:
            (kind,) = self.rng.choices(names, weights)
            self.mix[kind] = self.mix.get(kind, 0) + 1
            getattr(self, kind)()
        self.rng.shuffle(self.lines)
        self.rng.shuffle(self.items)

    # --- one unit of each kind ---------------------------------------------------------------

    def _id(self, prefix: str) -> str:
        self.serial += 1
        return f"{prefix}-{self.serial:09d}"

    def _amount(self) -> int:
        return int(self.rng.lognormvariate(10, 1.8)) % AMOUNT_MAX_MINOR + 1

    def _at(self) -> int:
        return MONTH_START_US + self.rng.randrange(MONTH_DAYS * DAY_US)

    def _line(self, amount_minor: int, at_us: int, **fields: object) -> None:
        value_at_us = at_us + self.rng.randrange(2) * DAY_US  # the bank's value date: +0..1 day
        line_id = f"STMT-{(at_us - MONTH_START_US) // DAY_US:02d}:{len(self.lines)}"
        self.lines.append(StatementLine(line_id, amount_minor, "EUR", value_at_us,
                                        value_at_us, **fields))  # type: ignore[arg-type]

    def _item(self, payment_id: str, what: str, amount_minor: int, at_us: int,
              kind: ItemKind, **fields: object) -> None:
        self.items.append(BookItem(f"{payment_id}:{what}", amount_minor, "EUR", at_us, kind,
                                   payment_id=payment_id, **fields))  # type: ignore[arg-type]

    def one_to_one(self) -> None:
        payment_id, amount_minor, at_us = self._id("pay"), self._amount(), self._at()
        draw = self.rng.random()
        if draw < 0.6:
            self._item(payment_id, "out", -amount_minor, at_us, ItemKind.PAYOUT,
                       batch_ref=f"rail-{payment_id}")
            self._line(-amount_minor, at_us, end_to_end_id=payment_id)
        elif draw < 0.98:
            self._item(payment_id, "in", amount_minor, at_us, ItemKind.DEPOSIT,
                       reference=f"INV-{payment_id}")
            self._line(amount_minor, at_us, end_to_end_id=payment_id,
                       reference=f"INV-{payment_id}")
        else:  # a payout and its return: the line of each matches its own item
            self._item(payment_id, "out", -amount_minor, at_us, ItemKind.PAYOUT)
            self._item(payment_id, "return", amount_minor, at_us + DAY_US, ItemKind.RETURN)
            self._line(-amount_minor, at_us, end_to_end_id=payment_id)
            self._line(amount_minor, at_us + DAY_US, end_to_end_id=payment_id,
                       kind=LineKind.RETURN)

    def _batch(self, lines: int) -> None:
        batch_ref, at_us = self._id("batch"), self._at()
        size = self.rng.randint(BATCH_SIZE_MIN, BATCH_SIZE_MAX)
        payments = [(self._id("pay"), self._amount()) for _ in range(size)]
        for payment_id, amount_minor in payments:
            self._item(payment_id, "out", -amount_minor, at_us, ItemKind.PAYOUT,
                       batch_ref=batch_ref)
            self._item(payment_id, "fee", -FEE_MINOR, at_us, ItemKind.FEE, batch_ref=batch_ref)
        total_minor = sum(amount for _, amount in payments)
        if lines == 1:
            parts = tuple(p for p, _ in payments) if self.rng.random() < 0.5 else ()
            self._line(-total_minor, at_us, batch_ref=batch_ref, parts=parts)
        else:  # the bank split it: the lines name the batch, the amounts add up
            first_minor = total_minor // 2
            self._line(-first_minor, at_us, batch_ref=batch_ref)
            self._line(-(total_minor - first_minor), at_us, batch_ref=batch_ref)
        self._line(-FEE_MINOR * size, at_us, batch_ref=batch_ref, kind=LineKind.CHARGE)

    def batch(self) -> None:
        self._batch(1)

    def batch_split(self) -> None:
        self._batch(2)

    def in_parts(self) -> None:
        payment_id, amount_minor, at_us = self._id("pay"), self._amount() + 1, self._at()
        first_minor = amount_minor // 2
        self._item(payment_id, "in", amount_minor, at_us, ItemKind.DEPOSIT)
        self._line(first_minor, at_us, end_to_end_id=payment_id)
        self._line(amount_minor - first_minor, at_us + DAY_US, end_to_end_id=payment_id)

    def remittance(self) -> None:
        payment_id, amount_minor, at_us = self._id("dep"), self._amount(), self._at()
        reference = f"INV {self.serial:08d}"
        self._item(payment_id, "in", amount_minor, at_us, ItemKind.DEPOSIT, reference=reference)
        self._line(amount_minor, at_us, reference=reference.lower().replace(" ", ""),
                   counterparty="Acme GmbH")

    def amount_only(self) -> None:
        payment_id, amount_minor, at_us = self._id("pay"), self._amount(), self._at()
        # 7 figures of cents: amount-only matches are unique in a month, as in life mostly
        amount_minor = amount_minor * 1_000 + self.rng.randrange(1_000)
        self._item(payment_id, "out", -amount_minor, at_us, ItemKind.PAYOUT)
        self._line(-amount_minor, at_us, reference="SEPA PAYMENT")

    def ambiguous(self) -> None:
        amount_minor, at_us = self._amount() * 1_000 + 999, self._at()
        for _ in range(2):
            self._item(self._id("pay"), "out", -amount_minor, at_us, ItemKind.PAYOUT)
            self._line(-amount_minor, at_us)

    def amount_differs(self) -> None:
        payment_id, amount_minor, at_us = self._id("pay"), self._amount(), self._at()
        self._item(payment_id, "out", -amount_minor, at_us, ItemKind.PAYOUT)
        self._line(-amount_minor - 5_00, at_us, end_to_end_id=payment_id)

    def not_in_books(self) -> None:
        if self.rng.random() < 0.5:
            self._line(-self.rng.randrange(1, 50_00), self._at(), kind=LineKind.CHARGE,
                       reference="ACCOUNT FEE")
        else:
            self._line(self._amount() * 1_000 + 7, self._at(), reference="UNKNOWN CREDIT")

    def not_at_bank(self) -> None:
        payment_id = self._id("pay")
        self._item(payment_id, "out", -(self._amount() * 1_000 + 3), self._at(),
                   ItemKind.PAYOUT)


def hash_join(lines: Sequence[StatementLine], items: Sequence[BookItem]) -> int:
    """The baseline: what any matcher does at least, a dict and a loop."""
    by_payment = {item.payment_id: item for item in items
                  if item.payment_id is not None and item.kind is not ItemKind.FEE}
    joined = 0
    for line in lines:
        if line.end_to_end_id is not None:
            item = by_payment.get(line.end_to_end_id)
            if item is not None and item.amount_minor == line.amount_minor:
                joined += 1
    return joined


def emit(workload: str, value: float, unit: str, baseline: str, baseline_value: float,
         **extra: object) -> None:
    print(json.dumps({
        "bench": "recon",
        "workload": workload,
        "value": round(value, 3),
        "unit": unit,
        "baseline": baseline,
        "baseline_value": round(baseline_value, 3),
        "ratio": round(value / baseline_value, 3) if baseline_value else None,
        **extra,
    }), flush=True)


def bench_match(month: Month, name: str, tolerance: Tolerance, generate_s: float) -> None:
    lines, items = month.lines, month.items
    gc.collect()
    held_mb = rss_mb()
    peak_reset = reset_rss_peak()
    started = time.perf_counter()
    result = match(lines, items, tolerance, now_us=MONTH_START_US + MONTH_DAYS * DAY_US)
    match_s = time.perf_counter() - started
    peak_mb = rss_peak_mb() if peak_reset else None
    counts = result.counts
    del result  # the baseline runs without the answer's million values alive
    gc.collect()
    started = time.perf_counter()
    joined = hash_join(lines, items)
    join_s = time.perf_counter() - started
    emit(f"match_{name}", match_s, "s", "hash_join_on_end_to_end_id", join_s,
         lines=len(lines), items=len(items), tolerance_minor=tolerance.amount_minor,
         tolerance_days=tolerance.days, target_s=TARGET_S,
         lines_per_s=round(len(lines) / match_s), hash_join_matched_lines=joined,
         counts=counts, inputs_rss_mb=round(held_mb),
         match_peak_rss_above_inputs_mb=None if peak_mb is None else round(peak_mb - held_mb),
         generate_s=round(generate_s, 1), mix=month.mix)


def main() -> None:
    tune_gc()  # as every fundpool entry point does at start
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=1_000_000, help="statement lines")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    started = time.perf_counter()
    month = Month(args.lines, args.seed)
    generate_s = time.perf_counter() - started
    bench_match(month, "exact", Tolerance(amount_minor=0, days=2), generate_s)
    bench_match(month, "tolerant", Tolerance(amount_minor=1_00, days=2), generate_s)


if __name__ == "__main__":
    main()
