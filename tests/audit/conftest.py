"""A ledger store with something in every audit source, written by the code that writes each
(the ledger, the outbox, the credentials store, risk's writes); `approval_actions` as its
writer fills it (an INSERT of a row)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from fundpool import compose
from fundpool.audit.checkpoint import LogKey
from fundpool.audit.service import AuditService
from fundpool.core.actor import Actor
from fundpool.core.clock import ManualClock, Uuid7Ids
from fundpool.core.ledger.model import Account, Posting, Transfer
from fundpool.core.money import Asset, AssetKind
from fundpool.events.model import Event, PaymentTransitioned
from fundpool.ledger.adjustments import checked
from fundpool.ledger.ports import LedgerStore
from fundpool.ledger.service import Ledger
from fundpool.sql import migrate
from fundpool.sql.database import database_of
from fundpool.stores.events_sql import append_events

START_US = 1_767_225_600_000_000
ADA = Actor("user", "u-ada", "ada", ("admin",), session_id="s-1", request_id="req-1")
BOB = Actor("key", "k-bob", "bob's key", ("cashier",), key_id="k-bob")


def payment_event(clock: ManualClock, payment_id: str, action: str, frm: str | None, to: str,
                  actor: Actor | None) -> Event:
    data = PaymentTransitioned(payment_id, "payout", "USD", 12_345, 50, "bank-a", None, action,
                               frm, to, 1, None, clock.now_us(),
                               counterparty="Ada Ltd",
                               actor=None if actor is None else actor.to_dict())
    return Event(f"ev-{payment_id}-{action}", PaymentTransitioned.TYPE, "main", clock.now_us(),
                 data)


def emit(store: LedgerStore, events: list[Event]) -> None:
    db = database_of(store)
    with db.transaction("fundpool.ledger") as tx:
        append_events(tx, events)


def fill(store: LedgerStore, clock: ManualClock, *, payments: int = 3) -> None:
    """Ledger entries (a definition, accounts, an adjustment with its actor and reason),
    payment steps with actors, key and user changes, an approvals action."""
    ledger = Ledger(store, clock, Uuid7Ids.seeded(7))
    ledger.define_asset(Asset("USD", 2, AssetKind.FIAT))
    ledger.open_account(Account("world:bank-a"))
    ledger.open_account(Account("treasury:ops:usd", "USD"))
    command = checked(Transfer((Posting("world:bank-a", "treasury:ops:usd", "USD", 500),), {}),
                      ["treasury:ops:usd"], owned=lambda a: False, may_adjust=True,
                      reason="opening float", actor=ADA)
    ledger.submit([command])
    for i in range(payments):
        clock.advance(microseconds=1_000)
        emit(store, [payment_event(clock, f"p{i}", "create", None, "initiated", BOB),
                     payment_event(clock, f"p{i}", "approve", "initiated", "approved", ADA)])
    auth = compose.auth_store(store)
    auth.add_user("carol", "a-long-password-1", ["viewer"], now_us=clock.now_us(), actor=ADA)
    auth.set_roles("carol", ["auditor"], now_us=clock.now_us() + 1, actor=ADA)
    db = database_of(store)
    migrate.ensure(db, migrate.APPROVALS)
    with db.transaction() as tx:
        tx.execute("INSERT INTO approval_actions (at_us, action, object_kind, object_id, actor, "
                   "details) VALUES (?, ?, ?, ?, ?, ?)",
                   (clock.now_us(), "rules.drafted", "approval_rules", "1",
                    json.dumps(ADA.to_dict()), json.dumps({"after": {"version": 1},
                                                           "note": "two approvers"})))


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START_US)


@pytest.fixture
def audit(store: LedgerStore, clock: ManualClock, tmp_path: Path) -> Iterator[AuditService]:
    service = compose.audit_service(store, key=tmp_path / "keys" / "audit-log.key",
                                    clock=clock)
    yield service
    service.store.close()


@pytest.fixture
def key(audit: AuditService) -> LogKey:
    return audit.key
