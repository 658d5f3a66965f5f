"""Batch payouts from a CSV file, through the dispatcher onto simulated rails: valid rows are
created and bad rows reported; all or nothing creates nothing when a row is wrong or cannot be
routed; the same file again creates nothing new; progress moves to settled as the rails carry
the payouts, on every rail the file names or routing picks."""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Sequence
from typing import Any

import pytest

from fundpool.channels.simulated import SimulatedRail
from fundpool.core.clock import ManualClock
from fundpool.ledger.ports import LedgerStore
from fundpool.ledger.service import Ledger
from fundpool.ledger.verify import verify
from fundpool.payments.batch_payouts import (
    PayoutFileHasErrors,
    Progress,
    progress,
    submit_payout_file,
)
from fundpool.payments.csv_batch import PayoutFile, parse_payout_csv
from fundpool.payments.dispatch import IntakeRefused
from fundpool.payments.model import PaymentState
from fundpool.pool.config import FundpoolConfig
from tests.payments.test_dispatch import NOW, Wired, config_with, wire

S = PaymentState
HEADER = ("payee", "account", "amount", "asset", "reference", "channel")
IBAN = "DE89370400440532013000"
CALM = {"failure_rate": 0, "return_rate": 0}
# Instant rails that neither fail nor return: what this file tests is the runner, not them.
CONFIG = config_with({c: {"simulation": CALM} for c in ("rtp", "sepa", "ecny-rail", "book")})
TICKS_MAX = 200


def csv_file(*rows: Sequence[str]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(HEADER)
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


GOOD_AND_BAD = csv_file(
    ("Alice", IBAN, "12.50", "USD", "inv-1", "rtp"),  # line 2
    ("Bob", IBAN, "100", "EUR", "inv-2", "sepa"),  # line 3
    ("Chen", "wallet-88", "88.00", "E-CNY", "inv-3", "ecny-rail"),  # line 4
    ("Dora", IBAN, "7.25", "USD", "inv-4", ""),  # line 5: routed
    ("=HYPERLINK(\"x\")", IBAN, "1.00", "USD", "inv-5", ""),  # line 6: a formula
    ("Fay", IBAN, "1.005", "USD", "inv-6", ""),  # line 7: too many decimals
    ("Gus", IBAN, "5.00", "GBP", "inv-7", ""),  # line 8: not an asset of the pool
    ("Eve", IBAN, "20.00", "EUR", "inv-8", ""),  # line 9: routed
)
VALID_LINES = [2, 3, 4, 5, 9]


def parse(data: bytes, config: FundpoolConfig = CONFIG) -> PayoutFile:
    return parse_payout_csv(data, config, config.pool("main"))


def simulated(config: FundpoolConfig, channels: Sequence[str]) -> dict[str, Any]:
    return {c: SimulatedRail(config.channel(c), config.assets, seed=13) for c in channels}


def wired(store: LedgerStore, ledger: Ledger, clock: ManualClock,
          config: FundpoolConfig = CONFIG,
          channels: Sequence[str] = ("rtp", "sepa", "ecny-rail", "book")) -> Wired:
    w = wire(store, ledger, clock, config=config, rails=simulated(config, channels),
             dispatch=NOW)
    for channel, asset in (("rtp", "USD"), ("sepa", "EUR"), ("ecny-rail", "E-CNY")):
        w.fund(channel, asset, 1_000_000)
    return w


def run_until_done(w: Wired, ids: Sequence[str], step_s: float = 1.0) -> list[Progress]:
    """Tick until every payout is settled or finished otherwise; the progress seen."""
    seen = [progress(w.service, ids)]
    for _ in range(TICKS_MAX):
        if seen[-1].done:
            break
        w.tick(seconds=step_s)
        seen.append(progress(w.service, ids))
    assert seen[-1].done, seen[-1]
    return seen


def test_valid_rows_are_created_and_bad_rows_reported(
    store: LedgerStore, ledger: Ledger, clock: ManualClock
) -> None:
    w = wired(store, ledger, clock)
    parsed = parse(GOOD_AND_BAD)
    assert (parsed.valid_count, parsed.invalid_count) == (5, 3)
    report = parsed.report()
    bad = {row["line"]: [e["code"] for e in row["errors"]] for row in report["rows"]  # type: ignore[attr-defined]
           if not row["ok"]}
    assert bad == {6: ["formula_injection"], 7: ["bad_amount"], 8: ["unknown_asset"]}
    chunks: list[tuple[int, int]] = []
    result = submit_payout_file(w.dispatcher, parsed, on_chunk=lambda d, t: chunks.append((d, t)))
    assert chunks == [(5, 5)]
    assert result.sha256 == parsed.sha256
    assert [row.line for row in result.rows] == VALID_LINES
    assert [(row.state, row.error) for row in result.rows] == [("approved", None)] * 5
    payments = [w.get(pid) for pid in result.payment_ids]
    assert [(p.asset, p.amount_minor, p.channel, p.fee_minor, p.counterparty, p.reference)
            for p in payments] == [
        ("USD", 1_250, "rtp", 45, "Alice", "inv-1"),
        ("EUR", 10_000, "sepa", 20, "Bob", "inv-2"),
        ("E-CNY", 8_800, "ecny-rail", 1, "Chen", "inv-3"),  # 1 bps of 88.00, half to even up
        ("USD", 725, "rtp", 45, "Dora", "inv-4"),
        ("EUR", 2_000, "sepa", 20, "Eve", "inv-8"),
    ]
    assert all(p.metadata["account"] for p in payments)
    assert len(w.service.list(limit=100)) == 5
    assert progress(w.service, result.payment_ids) == Progress(5, {"approved": 5})


def test_all_or_nothing_with_a_bad_row_creates_nothing(
    store: LedgerStore, ledger: Ledger, clock: ManualClock
) -> None:
    w = wired(store, ledger, clock)
    head = w.ledger.head()
    with pytest.raises(PayoutFileHasErrors) as caught:
        submit_payout_file(w.dispatcher, parse(GOOD_AND_BAD), all_or_nothing=True)
    assert caught.value.code == "payout_file_has_errors"
    assert caught.value.facts == {"invalid_rows": 3, "first_line": 6}
    assert w.service.list(limit=100) == []
    assert w.ledger.head() == head
    assert w.dispatcher.queued() == 0


UNROUTABLE = csv_file(
    ("Alice", IBAN, "12.50", "USD", "inv-1", "rtp"),
    ("Bob", IBAN, "100", "EUR", "inv-2", ""),
    ("Hal", IBAN, "20000.00", "USD", "inv-3", ""),  # more than the 10,000.00 on rtp
)


def test_all_or_nothing_with_a_row_that_cannot_be_routed_creates_nothing(
    store: LedgerStore, ledger: Ledger, clock: ManualClock
) -> None:
    w = wired(store, ledger, clock)
    # The pool holds enough USD (creation checks the pool's available funds), but on bank-a,
    # a rail this dispatcher has no adapter for: only rtp could carry it, and rtp is short.
    w.fund("bank-a", "USD", 2_000_000)
    head = w.ledger.head()
    parsed = parse(UNROUTABLE)
    assert parsed.invalid_count == 0
    with pytest.raises(IntakeRefused) as caught:
        submit_payout_file(w.dispatcher, parsed, all_or_nothing=True)
    assert caught.value.facts == {"item": 2, "reason": "no_eligible_channel"}
    assert w.service.list(limit=100) == []
    assert w.ledger.head() == head
    assert w.count("payment_routes") == 0
    w.tick()
    assert w.dispatcher.queued() == 0
    # Without all or nothing, the rows that can go do, and the other says why it stopped.
    result = submit_payout_file(w.dispatcher, parsed)
    assert [(row.line, row.state, row.error) for row in result.rows] == [
        (2, "approved", None), (3, "approved", None), (4, "rejected", "no_eligible_channel"),
    ]
    seen = run_until_done(w, result.payment_ids)
    assert seen[-1].by_state == {"settled": 2, "rejected": 1}


def test_the_same_file_again_creates_nothing_new(
    store: LedgerStore, ledger: Ledger, clock: ManualClock
) -> None:
    w = wired(store, ledger, clock)
    first = submit_payout_file(w.dispatcher, parse(GOOD_AND_BAD))
    w.tick()
    balances = w.balances()
    again = submit_payout_file(w.dispatcher, parse(GOOD_AND_BAD))
    assert again.payment_ids == first.payment_ids
    assert [row.state for row in again.rows] == ["submitted"] * 5
    assert w.balances() == balances
    assert len(w.service.list(limit=100)) == 5
    assert w.count("payment_routes") == 5
    assert w.dispatcher.queued() == 0
    # And all or nothing, once everything in it exists, is the same replay.
    clean = csv_file(("Alice", IBAN, "12.50", "USD", "inv-1", "rtp"))
    (row,) = submit_payout_file(w.dispatcher, parse(clean), all_or_nothing=True).rows
    assert row.payment_id == first.payment_ids[0]
    run_until_done(w, first.payment_ids)
    assert w.count("payment_routes") == 5
    assert [o.kind for o in w.outcomes(first.payment_ids[0])] == ["settled"]


def test_progress_moves_to_settled_as_the_rails_carry_the_file(
    store: LedgerStore, ledger: Ledger, clock: ManualClock
) -> None:
    w = wired(store, ledger, clock)
    result = submit_payout_file(w.dispatcher, parse(GOOD_AND_BAD))
    ids = result.payment_ids
    seen = run_until_done(w, ids)
    assert seen[0] == Progress(5, {"approved": 5})
    assert seen[1].by_state == {"submitted": 5}  # every rail took its share at the first tick
    assert seen[-1] == Progress(5, {"settled": 5})
    finished = [p.finished for p in seen]
    assert finished == sorted(finished)
    assert finished[0] == 0
    assert finished[-1] == 5
    assert any(0 < n < 5 for n in finished)  # the rails settle at their own pace
    assert verify(w.store).ok


def test_a_file_spread_over_several_rails_settles_on_each(
    store: LedgerStore, ledger: Ledger, clock: ManualClock
) -> None:
    calm = {"failure_rate": 0, "return_rate": 0, "latency_median_ms": 60_000}
    config = config_with(
        {c: {"simulation": calm} for c in ("rtp", "sepa", "ecny-rail", "book")}
        | {"bank-a": {"batch_size": 4, "simulation": calm},
           "tron": {"simulation": {**calm, "confirmations": 19}}}
    )
    w = wired(store, ledger, clock, config,
              ("rtp", "sepa", "ecny-rail", "bank-a", "tron", "book"))
    w.fund("bank-a", "USD", 1_000_000)
    w.fund("tron", "USDT", 1_000_000_000)
    rows = [
        (f"Payee {i}", IBAN, f"{i + 1}.00", asset, f"ref-{i}", channel)
        for i, (asset, channel) in enumerate(
            [("USD", "bank-a")] * 6 + [("USD", "rtp")] * 3 + [("EUR", "sepa")] * 2
            + [("E-CNY", "")] * 2 + [("USDT", "tron")] * 3
        )
    ]
    result = submit_payout_file(w.dispatcher, parse(csv_file(*rows), config))
    ids = result.payment_ids
    assert len(ids) == 16
    seen = run_until_done(w, ids, step_s=30)
    assert seen[-1] == Progress(16, {"settled": 16})
    settled_on = Counter(w.get(pid).channel for pid in ids)
    assert settled_on == {"bank-a": 6, "rtp": 3, "sepa": 2, "ecny-rail": 2, "tron": 3}
    # bank-a took its six in files of at most four: a full one at once, the rest by age.
    files = w.dispatcher.reads.batches(channel="bank-a")
    assert sorted(b.items for b in files) == [2, 4]
    # Every payout paid its own rail's quoted fee.
    assert {ch: sum(w.get(pid).fee_minor for pid in ids if w.get(pid).channel == ch)
            for ch in settled_on} == {
        "bank-a": 6 * 25,  # 0.25 + 5 bps of 1.00 .. 6.00 (0.0005 .. 0.003: rounds to 0)
        "rtp": 3 * 45, "sepa": 2 * 20,
        "ecny-rail": 0,  # 1 bps of 12.00 and 13.00 rounds to 0
        "tron": 3 * 1_000_000,
    }
    assert verify(w.store).ok
