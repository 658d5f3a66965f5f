"""Reconciliation as a treasury team uses it, on both stores: a day of payments on the SEPA
channel, the bank's camt.053 for that day with a charge the books did not book, the import,
the matches and the break, the balance check, booking the difference, the day reconciled;
refusals that change nothing; expected payments; a payment's reconciliation state; the audit
trail of every action.

Everything here is worked by hand: the amounts, which line matches which item and why.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

import fundpool.stores
from fundpool.core.actor import Actor
from fundpool.core.clock import ManualClock, Uuid7Ids
from fundpool.core.errors import FundpoolError
from fundpool.ledger.ports import LedgerStore
from fundpool.ledger.service import Ledger
from fundpool.payments.model import Action, PaymentKind, PaymentRequest
from fundpool.payments.service import PaymentService, Step
from fundpool.pool.config import load_config
from fundpool.pool.setup import init_pool
from fundpool.recon.model import (
    DAY_US,
    Balance,
    LineKind,
    Side,
    Statement,
    StatementLine,
    end_to_end_of,
)
from fundpool.reconciliation.books import LedgerBooks
from fundpool.reconciliation.model import ExpectedState, ResolutionAction, State
from fundpool.reconciliation.service import ReconService
from fundpool.stores.reconciliation_sql import SqlReconStore

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "pool.toml"
CONFIG = load_config(EXAMPLE)
POOL = CONFIG.pool("main")
DAY = 1_796_601_600_000_000  # 2026-12-07T00:00:00Z
HOUR = 3_600_000_000
CASHIER = Actor("user", "u-cashier", "cashier", roles=("cashier",))
ADMIN = Actor("user", "u-admin", "admin", roles=("admin",))
SCALES = {a.code: a.scale for a in CONFIG.assets}


class Day:
    """The pool's books and its reconciliation on one store, on a clock the test moves."""

    def __init__(self, store: LedgerStore) -> None:
        self.clock = ManualClock(DAY + 9 * HOUR)
        self.ledger = Ledger(store, self.clock, Uuid7Ids.seeded(3))
        init_pool(self.ledger, CONFIG)
        self.payments = PaymentService(self.ledger, fundpool.stores.payment_store(store),
                                       CONFIG, POOL, Uuid7Ids.seeded(5))
        self.recon = ReconService(SqlReconStore(store), fundpool.stores.payment_store(store),
                                  LedgerBooks(self.ledger), CONFIG, POOL, self.clock,
                                  Uuid7Ids.seeded(9))

    def step(self, payment_id: str, *actions: Action, channel: str | None = None) -> None:
        for action in actions:
            self.clock.advance(seconds=60)
            self.payments.act(Step(payment_id, action,
                                   channel=channel if action is Action.ROUTE else None))

    def deposit(self, amount_minor: int, reference: str) -> str:
        made = self.payments.create(PaymentRequest(PaymentKind.DEPOSIT, "EUR", amount_minor,
                                                   channel="sepa", counterparty="Acme GmbH",
                                                   reference=reference))
        self.step(made.id, Action.SCREEN, Action.CLEAR, Action.SETTLE)
        return made.id

    def payout(self, amount_minor: int) -> str:
        made = self.payments.create(PaymentRequest(
            PaymentKind.PAYOUT, "EUR", amount_minor, counterparty="Jane Roe",
            reference="salary", destination="DE89370400440532013000"))
        self.step(made.id, Action.SCREEN, Action.ROUTE, Action.APPROVE, Action.SUBMIT,
                  Action.SETTLE, channel="sepa")
        return made.id


@pytest.fixture
def day(store: LedgerStore) -> Day:
    return Day(store)


def line(position: int, amount_minor: int, *, kind: LineKind = LineKind.TRANSFER,
         e2e: str | None = None, reference: str | None = None, at_us: int = DAY,
         counterparty: str | None = None) -> StatementLine:
    return StatementLine(f"S:{position}", amount_minor, "EUR", at_us, at_us, kind=kind,
                         end_to_end_id=None if e2e is None else end_to_end_of(e2e),
                         reference=reference, counterparty=counterparty,
                         bank_ref=f"BANK-{position}")


def camt053(statement_id: str, opening_minor: int, lines: list[StatementLine], *,
            day_us: int = DAY) -> bytes:
    from fundpool.channels.iso20022.camt import write_camt053

    closing = opening_minor + sum(x.amount_minor for x in lines)
    statement = Statement(statement_id, "DE02120300000000202051", "EUR", day_us + 23 * HOUR,
                          tuple(lines), opening=Balance(opening_minor, day_us),
                          closing=Balance(closing, day_us), sequence="1")
    return write_camt053([statement], message_id=f"MSG-{statement_id}",
                         created_at_us=day_us + 23 * HOUR, scales=SCALES)


def test_a_day_with_a_charge_the_books_lack_is_one_break_then_booked_and_reconciled(
        day: Day) -> None:
    deposit = day.deposit(100_00, "INV-1")
    payout = day.payout(30_00)  # sepa's fee: 0.20 EUR, booked with the payout
    statement = camt053("STMT-1", 0, [
        line(1, 100_00, e2e=deposit, counterparty="Acme GmbH"),
        line(2, -30_00, e2e=payout),
        line(3, -20, kind=LineKind.CHARGE),  # the payout's fee, as the bank charged it
        line(4, -2_50, kind=LineKind.CHARGE, reference="ACCOUNT FEE DEC"),  # never booked
    ])
    day.clock.set(DAY + 26 * HOUR)  # the next morning: the statement arrives
    report = day.recon.import_file("sepa", statement, "stmt-1.xml", actor=CASHIER)

    assert (report.file.format, report.file.statements, report.file.lines) == ("camt.053", 1, 4)
    run = report.run
    # deposit, payout and fee matched; the account fee is the one break
    assert (run.lines, run.items, run.matched_lines, run.matched_items) == (4, 3, 3, 3)
    assert (run.ambiguous, run.breaks) == (0, 1)
    (only,) = day.recon.open("sepa")
    assert (only.side, only.state, only.reason, only.amount_minor) == (
        Side.STATEMENT, State.BREAK, "not_in_books", -2_50)
    assert only.age_days(day.clock.now_us()) == 1

    (check,) = day.recon.balances("sepa")
    assert (check.ledger_opening_minor, check.ledger_closing_minor) == (0, 69_80)
    assert check.statement.closing_minor == 67_30
    assert (check.opening_difference_minor, check.closing_difference_minor) == (0, -2_50)
    assert (check.open_lines, check.reconciled) == (1, False)

    # The payment's items say where they stand.
    assert {(r.id.split(":")[1], r.state) for r in day.recon.payment(payout)} == {
        ("out", State.MATCHED), ("fee", State.MATCHED)}

    # Booking the difference: an adjustment from available to fees, with its actor and why.
    resolution = day.recon.resolve(Side.STATEMENT, only.id, note="December account fee",
                                   actor=ADMIN, book=True)
    assert (resolution.action, resolution.amount_minor) == (ResolutionAction.BOOKED, -2_50)
    entry = day.ledger.entry(resolution.entry_id or "")
    assert entry is not None
    assert entry.body["metadata"]["kind"] == "adjustment"
    assert "December account fee" in entry.body["metadata"]["reason"]
    assert '"u-admin"' in entry.body["metadata"]["actor"]
    fees = day.ledger.balance("pool:main:eur:sepa:fees", "EUR").posted
    assert fees == 20 + 2_50
    assert day.recon.open("sepa") == []
    (check,) = day.recon.balances("sepa")
    # booked after the statement's day: it counts at the closing, as the bank booked it
    assert (check.booked_after_minor, check.closing_difference_minor) == (-2_50, 0)
    assert check.reconciled

    # A run after that changes nothing: matched and resolved are final.
    again = day.recon.run("sepa", actor=CASHIER)
    assert (again.lines, again.breaks) == (0, 0)


def test_resolving_with_a_note_keeps_who_and_why_and_refusals_change_nothing(day: Day) -> None:
    day.deposit(10_00, "INV-2")
    statement = camt053("STMT-2", 0, [line(1, -1_00, kind=LineKind.CHARGE)])
    day.recon.import_file("sepa", statement, "stmt-2.xml", actor=CASHIER)
    (brk,) = day.recon.open("sepa", side=Side.STATEMENT)
    (item,) = day.recon.open("sepa", side=Side.BOOKS)  # the deposit: not on this statement
    assert (item.reason, item.amount_minor) == ("not_at_bank", 10_00)

    with pytest.raises(FundpoolError) as blank:
        day.recon.resolve(Side.STATEMENT, brk.id, note="  ", actor=CASHIER)
    assert blank.value.code == "recon_note_required"
    with pytest.raises(FundpoolError) as books_side:
        day.recon.resolve(Side.BOOKS, item.id, note="x", actor=ADMIN, book=True)
    assert books_side.value.code == "recon_nothing_to_book"
    assert len(day.recon.open("sepa")) == 2

    closed = day.recon.resolve(Side.BOOKS, item.id, note="on tomorrow's statement",
                               actor=CASHIER)
    assert (closed.action, closed.actor.name) == (ResolutionAction.NOTE, "cashier")
    with pytest.raises(FundpoolError) as twice:
        day.recon.resolve(Side.BOOKS, item.id, note="again", actor=CASHIER)
    assert twice.value.code == "recon_not_open"
    (kept,) = day.recon.resolutions("sepa")
    assert (kept.note, kept.target) == ("on tomorrow's statement", item.id)


def test_the_same_statement_twice_and_bad_files_are_refused_whole(day: Day) -> None:
    statement = camt053("STMT-3", 0, [line(1, 5_00, reference="X")])
    day.recon.import_file("sepa", statement, "a.xml", actor=CASHIER)
    before = day.recon.store.files(POOL.id, "sepa", 10)

    with pytest.raises(FundpoolError) as same_file:
        day.recon.import_file("sepa", statement, "a-copy.xml", actor=CASHIER)
    assert same_file.value.code == "duplicate_statement"
    # the same statement in another file (another message id): still refused
    other = statement.replace(b"MSG-STMT-3", b"MSG-OTHER")
    with pytest.raises(FundpoolError) as same_statement:
        day.recon.import_file("sepa", other, "b.xml", actor=CASHIER)
    assert same_statement.value.code == "duplicate_statement"
    assert same_statement.value.facts["statement_id"] == "STMT-3"
    for bad, code in ((statement[: len(statement) // 2], "file_refused"),
                      (b"hello", "file_refused"),
                      (b"", "file_refused")):
        with pytest.raises(FundpoolError) as refused:
            day.recon.import_file("sepa", bad, "bad.xml", actor=CASHIER)
        assert refused.value.code == code
        assert refused.value.facts["file"] == "bad.xml"
    # a statement in a currency the channel does not carry
    usd = statement.replace(b'Ccy="EUR"', b'Ccy="USD"').replace(b"<Ccy>EUR</Ccy>",
                                                                 b"<Ccy>USD</Ccy>")
    with pytest.raises(FundpoolError) as wrong_asset:
        day.recon.import_file("sepa", usd, "usd.xml", actor=CASHIER)
    assert wrong_asset.value.code == "file_refused"
    with pytest.raises(FundpoolError) as channel:
        day.recon.import_file("nowhere", statement, "a.xml", actor=CASHIER)
    assert channel.value.code == "unknown_channel"
    assert day.recon.store.files(POOL.id, "sepa", 10) == before


def test_an_expected_payment_is_matched_when_its_credit_arrives(day: Day) -> None:
    expected = day.recon.expect("sepa", asset="EUR", amount_min_minor=49_00,
                                amount_max_minor=51_00, from_us=DAY, until_us=DAY + 3 * DAY_US,
                                reference="INV-77", counterparty="Globex", actor=CASHIER)
    unannounced = line(2, 12_34, reference="INVOICE 9", counterparty="Initech")
    statement = camt053("STMT-4", 0, [line(1, 50_00, reference="INV-77", counterparty="Globex"),
                                      unannounced])
    day.recon.import_file("sepa", statement, "stmt-4.xml", actor=CASHIER)
    (arrived,) = day.recon.expected("sepa")
    assert arrived.id == expected.id
    assert arrived.state is ExpectedState.MATCHED
    assert arrived.credit_id is not None
    assert arrived.credit_id.endswith(":1")
    # Both credits are still breaks (the books have neither): to be identified and booked.
    assert sorted(r.amount_minor for r in day.recon.open("sepa")) == [12_34, 50_00]
    (brk,) = [r for r in day.recon.open("sepa") if r.amount_minor == 12_34]
    booked = day.recon.resolve(Side.STATEMENT, brk.id, note="Initech prepayment",
                               actor=ADMIN, book=True)
    assert booked.amount_minor == 12_34  # from world:sepa to available: money identified
    assert day.ledger.balance("pool:main:eur:sepa:available", "EUR").posted == 12_34

    with pytest.raises(FundpoolError) as bad:
        day.recon.expect("sepa", asset="EUR", amount_min_minor=5, amount_max_minor=1,
                         from_us=DAY, until_us=DAY + 1, reference=None, counterparty=None,
                         actor=CASHIER)
    assert bad.value.code == "invalid_expected_payment"


def test_every_action_is_in_the_trail_with_its_actor(day: Day) -> None:
    statement = camt053("STMT-5", 0, [line(1, -1_00, kind=LineKind.CHARGE)])
    day.recon.import_file("sepa", statement, "stmt-5.xml", actor=CASHIER)
    (brk,) = day.recon.open("sepa")
    day.recon.resolve(Side.STATEMENT, brk.id, note="waived next month", actor=CASHIER)
    actions = [record for _, record in day.recon.store.actions(0, 100)]
    assert [a.action for a in actions] == ["import", "match", "resolve"]
    assert {a.actor.name for a in actions if a.actor is not None} == {"cashier"}
    assert actions[2].details["note"] == "waived next month"


def test_a_store_shared_by_two_services_reads_one_state(day: Day, store: LedgerStore) -> None:
    # another worker's service on the same store
    other = ReconService(SqlReconStore(store), fundpool.stores.payment_store(store),
                         LedgerBooks(day.ledger), CONFIG, POOL, day.clock, Uuid7Ids.seeded(1))
    statement = camt053("STMT-6", 0, [line(1, 7_00, reference="Y")])
    day.recon.import_file("sepa", statement, "stmt-6.xml", actor=CASHIER)
    assert [r.id for r in other.open("sepa")] == [r.id for r in day.recon.open("sepa")]


def test_a_bank_channel_takes_only_its_own_accounts_statements(store: LedgerStore) -> None:
    from fundpool.pool.config import BankConfig

    banked = dataclasses.replace(CONFIG, channels=tuple(
        dataclasses.replace(c, adapter="iso20022", bank=BankConfig(
            exchange=Path("banks/sepa"), account="DE02 1203 0000 0000 2020 51", name="Pool"))
        if c.id == "sepa" else c for c in CONFIG.channels))
    day = Day(store)
    recon = ReconService(SqlReconStore(store), fundpool.stores.payment_store(store),
                         LedgerBooks(day.ledger), banked, banked.pool("main"), day.clock,
                         Uuid7Ids.seeded(4))
    ours = camt053("OURS-1", 0, [line(1, 5_00, reference="A")])
    assert recon.import_file("sepa", ours, "ours.xml", actor=CASHIER).file.statements == 1
    theirs = ours.replace(b"DE02120300000000202051", b"DE89370400440532013000") \
        .replace(b"OURS-1", b"THEIRS-1")
    with pytest.raises(FundpoolError) as refused:
        recon.import_file("sepa", theirs, "theirs.xml", actor=CASHIER)
    assert refused.value.code == "file_refused"
    assert refused.value.facts["found"] == "DE89370400440532013000"
    assert refused.value.facts["place"] == "statement 1"
