"""`Ledger.transaction()`: several steps, one commit; an exception undoes all of it."""

from __future__ import annotations

import pytest

from fundpool.core.errors import BatchTooLarge
from fundpool.core.ledger.model import Account, Balance, Posting, Transfer
from fundpool.core.money import Asset, AssetKind
from fundpool.ledger.service import BATCH_COMMANDS_MAX, Ledger
from fundpool.ledger.verify import verify

WORLD, A, B = "world:bank", "user:a", "user:b"


def set_up(ledger: Ledger) -> None:
    ledger.define_asset(Asset("USD", 2, AssetKind.FIAT))
    for address in (WORLD, A, B):
        ledger.open_account(Account(address))


def move(source: str, destination: str, amount: int) -> Transfer:
    return Transfer((Posting(source, destination, "USD", amount),))


def test_a_later_step_sees_an_earlier_one(ledger: Ledger) -> None:
    set_up(ledger)
    before = ledger.head().seq
    with ledger.transaction() as transaction:
        (first,) = transaction.apply([move(WORLD, A, 100)])
        assert first.ok
        # A holds nothing in the store yet; only the first step makes this one possible.
        (second,) = transaction.apply([move(A, B, 60)])
        assert second.ok, second.error
        (third,) = transaction.apply([move(A, B, 50)])
        assert third.error is not None
        assert third.error.code == "insufficient_funds"
    assert ledger.head().seq == before + 2
    assert ledger.balance(A, "USD") == Balance(40, 0, 0)
    assert ledger.balance(B, "USD") == Balance(60, 0, 0)
    assert verify(ledger.store).ok


class Abort(Exception):
    pass


def test_an_exception_in_the_block_undoes_every_step(ledger: Ledger) -> None:
    set_up(ledger)
    ledger.transfer([Posting(WORLD, A, "USD", 10)])
    head = ledger.head()

    def two_steps_then_abort() -> None:
        with ledger.transaction() as transaction:
            transaction.apply([move(WORLD, A, 100)])
            transaction.apply([move(A, B, 70)])
            raise Abort

    with pytest.raises(Abort):
        two_steps_then_abort()
    assert ledger.head() == head
    assert ledger.balance(A, "USD") == Balance(10, 0, 0)
    assert ledger.balance(B, "USD") == Balance(0, 0, 0)
    # the cache the aborted steps changed is not trusted afterwards
    (result,) = ledger.submit([move(A, B, 11)])
    assert result.error is not None
    assert result.error.code == "insufficient_funds"
    assert ledger.submit([move(A, B, 10)])[0].ok
    assert verify(ledger.store).ok


def test_the_batch_bound_counts_every_step(ledger: Ledger) -> None:
    set_up(ledger)
    head = ledger.head()

    def over_the_bound_in_two_steps() -> None:
        with ledger.transaction() as transaction:
            transaction.apply([move(WORLD, A, 1)] * (BATCH_COMMANDS_MAX - 1))
            transaction.apply([move(WORLD, A, 1)] * 2)

    with pytest.raises(BatchTooLarge):
        over_the_bound_in_two_steps()
    assert ledger.head() == head
