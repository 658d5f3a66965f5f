"""A full bank day on the ISO 20022 rail, end to end (issue 18, point 6): payouts go through
the real dispatcher and the bank rail as pain.001 files; the simulated bank answers with
pain.002 (a partial acceptance), camt.054 (batched bookings, a return minutes later), charges
per batch and an unannounced credit, and closes its day with a camt.053; the statement inbox
imports it into reconciliation; the day reconciles with only the breaks the bank planted,
and booking them leaves the statement reconciled.

Everything runs on one manual clock, second by second, on real files: nothing is mocked.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

import fundpool.stores
from fundpool import compose
from fundpool.channels.iso_rail import Iso20022Rail
from fundpool.core.actor import Actor
from fundpool.core.clock import ManualClock, Uuid7Ids
from fundpool.core.ledger.model import Posting
from fundpool.ledger.service import Ledger
from fundpool.payments.model import PaymentKind, PaymentRequest, PaymentState
from fundpool.pool.config import BankConfig, load_config
from fundpool.pool.setup import init_pool
from fundpool.recon.model import DAY_US, BreakReason, LineKind, Side
from fundpool.reconciliation.books import LedgerBooks
from fundpool.reconciliation.inbox import StatementInbox
from fundpool.reconciliation.model import State
from fundpool.reconciliation.service import ReconService
from fundpool.sim.bank import BankSettings, BankSimulator, PlantedKind
from fundpool.stores.reconciliation_sql import SqlReconStore
from fundpool.stores.sqlite import SqliteStore

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "pool.toml"
DAY = 1_796_601_600_000_000  # Monday 2026-12-07T00:00:00Z (bank-a is open until 21:00)
HOUR_US = 3_600_000_000
ACCOUNT = "GB33BUKB20201555555555"
PAYOUTS = 60
DAY_S = 600  # the simulated bank's day, compressed
ADMIN = Actor("user", "u-admin", "admin", roles=("admin",))


def bank_config(exchange: Path):  # type: ignore[no-untyped-def]
    config = load_config(EXAMPLE)
    channels = tuple(
        dataclasses.replace(c, adapter="iso20022", bank=BankConfig(
            exchange=exchange, account=ACCOUNT, name="Fundpool Treasury Ltd", simulated=True))
        if c.id == "bank-a" else c for c in config.channels)
    return dataclasses.replace(config, channels=channels)


@pytest.mark.parametrize("seed", [3, 11])
def test_a_bank_day_reconciles_with_only_the_planted_breaks(tmp_path: Path, seed: int) -> None:
    exchange = tmp_path / "banks" / "bank-a"
    config = bank_config(exchange)
    pool = config.pool("main")
    clock = ManualClock(DAY - HOUR_US)  # the float arrives the evening before
    store = SqliteStore(tmp_path / "ledger.sqlite3")
    store.initialise()
    ledger = Ledger(store, clock, Uuid7Ids.seeded(seed))
    init_pool(ledger, config)
    ledger.transfer([Posting("world:bank-a", "pool:main:usd:bank-a:available", "USD",
                             2_000_000_00)], metadata={"test": "the float"})
    clock.set(DAY + 8 * HOUR_US)

    channel = config.channel("bank-a")
    rail = Iso20022Rail(channel, {a.code: a for a in config.assets}, exchange=exchange,
                        instance="t1", clock_us=clock.now_us, notifications_to_statements=False)
    parts = compose.simulated_dispatching(
        ledger, config, pool, clock=clock, ids=Uuid7Ids.seeded(seed + 1), seed=seed,
        instance="day", real_rails={"bank-a": rail})
    books = LedgerBooks(ledger)
    usd = config.asset("USD")
    bank = BankSimulator(
        exchange, account=ACCOUNT, asset=usd,
        opening_minor=books.channel_total("main", "bank-a", "USD", clock.now_us()),
        channel=channel, settings=BankSettings(seed=seed, day_s=DAY_S, reject_rate=0.1,
                                               extra_charge_rate=0.5, return_rate=0.1,
                                               credits_per_day=2))
    recon = ReconService(SqlReconStore(store), fundpool.stores.payment_store(store), books,
                         config, pool, clock, Uuid7Ids.seeded(seed + 2))

    payout_ids: list[str] = []
    for second in range(DAY_S + 120):  # the day, and two minutes for the last answers
        if second < 300 and second % 5 == 0:
            (made,) = parts.dispatcher.intake([(PaymentRequest(
                PaymentKind.PAYOUT, "USD", 1_000_00 + 137 * second, channel="bank-a",
                counterparty=f"Payee {second}", reference=f"salary {second}",
                destination=f"ACCT-{second:06d}"), f"day-{second}")])
            payout_ids.append(made.outcome.id)  # type: ignore[union-attr]
        bank.step(clock.now_us())
        parts.dispatcher.tick()
        clock.advance(seconds=1)
    assert len(payout_ids) == PAYOUTS

    planted = bank.planted()
    states = parts.payments.states(payout_ids)
    rejected = {p.end_to_end_id for p in planted if p.kind is PlantedKind.REJECTED}
    returned = {p.end_to_end_id for p in planted if p.kind is PlantedKind.RETURN}
    # A payout the bank refused never settled on it; one it returned is returned.
    assert rejected
    assert rejected <= {pid.replace("-", "") for pid, s in states.items()
                        if s is not PaymentState.SETTLED}
    assert {pid.replace("-", "") for pid, s in states.items()
            if s is PaymentState.RETURNED} == returned

    (statement_file,) = sorted((exchange / "statements").glob("*.xml"))
    taken = StatementInbox(recon, "bank-a", exchange / "statements").take()
    assert [t.outcome for t in taken] == ["imported"]
    assert (exchange / "statements" / "imported" / statement_file.name).exists()

    # Only the planted breaks: each unannounced credit (the books lack it), and each batch
    # charged more than the fees the books booked (its charge line against its fee items).
    opened = recon.open("bank-a")
    credits = [p for p in planted if p.kind is PlantedKind.UNANNOUNCED_CREDIT]
    extra = {p.payment_info_id for p in planted if p.kind is PlantedKind.EXTRA_CHARGE}
    assert credits
    assert extra
    matched = recon.states("bank-a", states=[State.MATCHED], side=Side.BOOKS)
    settled = [pid for pid, s in states.items() if s in (PaymentState.SETTLED,
                                                          PaymentState.RETURNED)]
    # every payout the bank booked matched its booking (in the batch's one entry)
    assert {r.payment_id for r in matched if r.id.endswith(":out")} == set(settled)
    lines = recon.lines_of([r.id for r in opened if r.side is Side.STATEMENT])
    credit_breaks = sorted(r.amount_minor for r in opened if r.side is Side.STATEMENT
                           and r.reason == BreakReason.NOT_IN_BOOKS.value)
    assert credit_breaks == sorted(p.amount_minor for p in credits)
    charge_breaks = {lines[r.id].line.batch_ref for r in opened if r.side is Side.STATEMENT
                     and lines[r.id].line.kind is LineKind.CHARGE}
    assert charge_breaks == extra
    assert all(r.reason == BreakReason.AMOUNT_DIFFERS.value for r in opened
               if r.side is Side.BOOKS), opened
    assert not [r for r in opened if r.state is State.AMBIGUOUS]

    (check,) = recon.balances("bank-a")
    assert check.opening_difference_minor == 0
    planted_total = (sum(p.amount_minor for p in credits)
                     - 5_00 * len(extra))  # what the bank has that the books lack
    assert check.closing_difference_minor == planted_total

    # Booking each planted break closes the day.
    for row in [r for r in opened if r.side is Side.STATEMENT]:
        current = recon.store.states_of("main", [(Side.STATEMENT, row.id)])
        if current[(Side.STATEMENT, row.id)].state is State.BREAK:
            recon.resolve(Side.STATEMENT, row.id, note="planted by the bank", actor=ADMIN,
                          book=True)
    assert recon.open("bank-a") == []
    (check,) = recon.balances("bank-a")
    assert (check.closing_difference_minor, check.reconciled) == (0, True)
    assert check.statement.closing_at_us is not None
    assert check.statement.closing_at_us < DAY + DAY_US
    store.close()
