"""The ledger commands each transition of a payment posts (see model.py's table). Pure."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import NamedTuple

from fundpool.core.ledger.model import Posting, Reverse, SimpleCommand, Transfer
from fundpool.payments.model import Action, Payment, PaymentEvent, PaymentState
from fundpool.pool.accounts import PoolState, pool_account, world_account

S = PoolState
RAIL_ACCOUNTS_CACHED_MAX = 1_024  # (pool, asset, channel) sets kept: a pool has a few dozen


class _RailAccounts(NamedTuple):
    """The pool's accounts of one asset on one channel, and the channel's outside world."""

    available: str
    locked: str
    in_transit: str
    fees: str
    world: str


@functools.lru_cache(maxsize=RAIL_ACCOUNTS_CACHED_MAX)
def _rail_accounts(pool: str, asset: str, channel: str) -> _RailAccounts:
    # Every outbound payment's approve, submit and settle name these: made once per rail.
    return _RailAccounts(
        pool_account(pool, asset, channel, S.AVAILABLE),
        pool_account(pool, asset, channel, S.LOCKED),
        pool_account(pool, asset, channel, S.IN_TRANSIT),
        pool_account(pool, asset, channel, S.FEES),
        world_account(channel),
    )


def _account(payment: Payment, state: PoolState, channel: str | None = None) -> str:
    rail = channel or payment.channel
    assert rail is not None, "a payment that moves money has a channel"
    return pool_account(payment.pool, payment.asset, rail, state)


def _transfer(payment: Payment, action: Action, *moves: tuple[str, str, int]) -> Transfer:
    postings = tuple(
        Posting(source, destination, payment.asset, amount)
        for source, destination, amount in moves
        if amount > 0
    )
    return Transfer(postings, {"payment": payment.id, "action": action.value})


Move = tuple[str, str, int]  # source, destination, amount in the payment's asset


def outbound_moves(payment: Payment, action: Action) -> tuple[Move, ...] | None:
    """What approve, submit and settle of an outbound payment move (zero amounts left out),
    as plain tuples: the payment service sums them over a wave into one entry (ADR 0008).
    None for any other action or kind."""
    if payment.kind.inbound or payment.channel is None:
        return None
    accounts = _rail_accounts(payment.pool, payment.asset, payment.channel)
    gross = payment.amount_minor + payment.fee_minor
    if action is Action.APPROVE:
        moves: tuple[Move, ...] = ((accounts.available, accounts.locked, gross),)
    elif action is Action.SUBMIT:
        moves = ((accounts.locked, accounts.in_transit, gross),)
    elif action is Action.SETTLE:
        if payment.kind.between_channels:
            arrival = _account(payment, S.AVAILABLE, payment.destination_channel)
        else:
            arrival = accounts.world
        moves = (
            (accounts.in_transit, arrival, payment.amount_minor),
            (accounts.in_transit, accounts.fees, payment.fee_minor),
        )
    else:
        return None
    return tuple(move for move in moves if move[2] > 0)


def transfer_of(payment: Payment, action: Action, moves: tuple[Move, ...]) -> Transfer:
    return _transfer(payment, action, *moves)


def commands_for(
    payment: Payment, action: Action, events: Sequence[PaymentEvent] = ()
) -> tuple[SimpleCommand, ...]:
    """What `action` posts for `payment` in its current state; () for a state-only change."""
    gross = payment.amount_minor + payment.fee_minor
    state = payment.state
    if payment.kind.inbound:
        world = world_account(payment.channel or "")
        settling = _account(payment, S.PENDING_SETTLEMENT) if payment.channel else ""
        if action is Action.CLEAR:
            return (_transfer(payment, action, (world, settling, payment.amount_minor)),)
        if action is Action.SETTLE:
            return (
                _transfer(
                    payment,
                    action,
                    (settling, _account(payment, S.AVAILABLE),
                     payment.amount_minor - payment.fee_minor),
                    (settling, _account(payment, S.FEES), payment.fee_minor),
                ),
            )
        if action is Action.RETURN:
            return (_transfer(payment, action, (settling, world, payment.amount_minor)),)
        if action is Action.REVERSE:
            posted = {e.action: e.entry_ids for e in events if e.entry_ids}
            return tuple(
                Reverse(entry_id, {"payment": payment.id, "action": action.value})
                for step in (Action.SETTLE, Action.CLEAR)
                for entry_id in posted.get(step, ())
            )
        return ()
    if action is Action.APPROVE:
        return (
            _transfer(
                payment, action, (_account(payment, S.AVAILABLE), _account(payment, S.LOCKED),
                                  gross)
            ),
        )
    if action is Action.SUBMIT:
        return (
            _transfer(
                payment, action, (_account(payment, S.LOCKED), _account(payment, S.IN_TRANSIT),
                                  gross)
            ),
        )
    if action is Action.SETTLE:
        in_transit = _account(payment, S.IN_TRANSIT)
        if payment.kind.between_channels:
            arrival = _account(payment, S.AVAILABLE, payment.destination_channel)
        else:
            arrival = world_account(payment.channel or "")
        return (
            _transfer(
                payment,
                action,
                (in_transit, arrival, payment.amount_minor),
                (in_transit, _account(payment, S.FEES), payment.fee_minor),
            ),
        )
    if action in (Action.FAIL, Action.CANCEL, Action.RETRY) and state is PaymentState.APPROVED:
        return (
            _transfer(
                payment, action, (_account(payment, S.LOCKED), _account(payment, S.AVAILABLE),
                                  gross)
            ),
        )
    if action in (Action.FAIL, Action.RETRY) and state in (
        PaymentState.SUBMITTED, PaymentState.CLEARED
    ):
        return (
            _transfer(
                payment,
                action,
                (_account(payment, S.IN_TRANSIT), _account(payment, S.AVAILABLE), gross),
            ),
        )
    if action is Action.RETURN:
        return (
            _transfer(
                payment,
                action,
                (world_account(payment.channel or ""), _account(payment, S.AVAILABLE),
                 payment.amount_minor),
            ),
        )
    return ()
