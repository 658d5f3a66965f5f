"""A service takes again the payments it last committed (payments/remembered.py) only while
the store holds the same version of each: what another process changed, and what a rolled-back
session changed, are never taken for what is stored. On both stores."""

from __future__ import annotations

from pathlib import Path

import pytest

import fundpool.stores
from fundpool.core.clock import ManualClock, Uuid7Ids
from fundpool.ledger.ports import LedgerStore
from fundpool.ledger.service import Ledger
from fundpool.payments.model import (
    Action,
    IllegalTransition,
    Payment,
    PaymentKind,
    PaymentRequest,
    PaymentState,
    Step,
)
from fundpool.payments.remembered import RememberedPayments
from fundpool.payments.service import PaymentService
from fundpool.pool.config import load_config
from fundpool.pool.setup import init_pool

CONFIG = load_config(Path(__file__).resolve().parents[2] / "examples" / "pool.toml")
POOL = CONFIG.pool("main")
DEPOSIT = PaymentRequest(PaymentKind.DEPOSIT, "USD", 10_000, channel="bank-a")


class Abort(Exception):
    pass


def two_services(store: LedgerStore) -> tuple[PaymentService, PaymentService]:
    """Two services on one store, as two processes have: each with its own ledger and its
    own remembered payments."""
    clock = ManualClock()
    ours = Ledger(store, clock, Uuid7Ids.seeded(1))
    init_pool(ours, CONFIG)
    theirs = Ledger(store, clock, Uuid7Ids.seeded(2))
    payments = fundpool.stores.payment_store(store)
    return (PaymentService(ours, payments, CONFIG, POOL, Uuid7Ids.seeded(3)),
            PaymentService(theirs, payments, CONFIG, POOL, Uuid7Ids.seeded(4)))


def test_a_payment_another_process_changed_is_read_again(store: LedgerStore) -> None:
    ours, theirs = two_services(store)
    payment = ours.create(DEPOSIT)  # remembered by ours as initiated
    theirs.act(Step(payment.id, Action.HOLD))

    released = ours.act(Step(payment.id, Action.RELEASE))  # legal only from held

    assert (released.state, released.version) == (PaymentState.SCREENED, 3)
    assert ours.get(payment.id) == released


def test_what_a_rolled_back_session_changed_is_not_remembered(store: LedgerStore) -> None:
    ours, theirs = two_services(store)
    payment = ours.create(DEPOSIT)

    def screen_then_abort() -> None:
        with ours.session() as session:
            (screened,) = session.act([Step(payment.id, Action.SCREEN)])
            assert isinstance(screened, Payment)
            assert screened.version == 2
            raise Abort

    with pytest.raises(Abort):
        screen_then_abort()
    # Another process takes the same version number to another state: a remembered copy of
    # the rolled-back change would now look current.
    theirs.act(Step(payment.id, Action.HOLD))

    with pytest.raises(IllegalTransition):
        ours.act(Step(payment.id, Action.SCREEN))  # held: screening is not allowed
    assert ours.act(Step(payment.id, Action.RELEASE)).state is PaymentState.SCREENED


def test_the_least_recently_kept_are_forgotten_first() -> None:
    remembered = RememberedPayments(size_max=2)
    a, b, c = (Payment(pid, "main", PaymentKind.DEPOSIT, "USD", 1, 0, "bank-a", None, None,
                       None, PaymentState.INITIATED, False, 0, 0) for pid in "abc")
    remembered.keep([a, b])
    remembered.keep([a])  # kept again: now the most recent
    remembered.keep([c])

    assert remembered.get("abc") == {"a": a, "c": c}
    assert len(remembered) == 2
