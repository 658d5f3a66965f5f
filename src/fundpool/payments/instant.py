"""Merchant instant settlement: a deposit paid to a merchant is credited to the merchant at
once, from the pool's own liquidity, while the rail settles it later (a card acquirer at
T+2, say). The pool then carries the risk that the deposit comes back before it settles; that
exposure is counted and capped.

A merchant deposit names its merchant in its metadata (`merchant = <owner id>`). What each
step posts (A = amount, F = inbound fee, N = A - F, the merchant's net):

- clear, with an advance: world -> pending_settlement A (as any deposit), and in the same
  linked group the advance: available -> merchant payable N, and on the exposure memo
  accounts source -> total N and source -> merchant N. The memo accounts' maximum balances
  are the pool's and the merchant's caps, so the ledger itself refuses an advance beyond
  either, atomically with everything else. An advance refused (a cap reached, or too little
  available on the rail's account) leaves a plain clear: the merchant is credited when the
  deposit settles instead.
- settle, after an advance: pending_settlement -> available N and -> fees F (the pool is
  repaid), and the exposure memo goes back (total -> source, merchant -> source, N each).
- settle, without an advance: pending_settlement -> merchant payable N and -> fees F.
- return before settlement, after an advance: pending_settlement -> world A, the advance
  taken back (merchant payable -> available N; the payable may go below zero, up to the
  merchant cap, when the merchant already used it), and the exposure memo goes back.
- reverse (a settled deposit undone), without an advance: its settle and clear entries are
  reversed, as for any deposit.
- reverse, after an advance: one entry with the net effect of undoing the clear, the advance
  and the settlement: merchant payable -> world N and fees -> world F (the payable may go
  below zero, as for a return). Reversing those entries one by one would, on the way, count
  the advance against the caps again and take N from the rail's available (both given back
  by the next reversal), so a pool near its cap, or a rail whose available was paid out, would
  refuse a reversal that in the end moves neither.

Whether a deposit was advanced is read from its clear event: the advance is its own entry in
the clear's linked group, so an advanced clear lists two entries.
"""

from __future__ import annotations

from collections.abc import Sequence

from fundpool.core.ledger.model import Posting, SimpleCommand, Transfer
from fundpool.payments.model import Action, Payment, PaymentEvent
from fundpool.pool.accounts import (
    PoolState,
    commission_account,
    exposure_merchant,
    exposure_source,
    exposure_total,
    merchant_payable,
    pool_account,
    world_account,
)
from fundpool.treasury.split import Share, SplitRule, split

MERCHANT_KEY = "merchant"


def merchant_of(payment: Payment) -> str | None:
    return payment.metadata.get(MERCHANT_KEY) if payment.kind.inbound else None


def advanced(events: Sequence[PaymentEvent]) -> bool:
    """Did this deposit's clear carry an advance?"""
    return any(e.action is Action.CLEAR and len(e.entry_ids) == 2 for e in events)


def _transfer(payment: Payment, action: str, moves: list[tuple[str, str, int]]) -> Transfer:
    return Transfer(
        tuple(Posting(s, d, payment.asset, n) for s, d, n in moves if n > 0),
        {"payment": payment.id, "action": action},
    )


def _exposure(payment: Payment, owner: str, net: int, back: bool) -> list[tuple[str, str, int]]:
    source = exposure_source(payment.pool, payment.asset)
    moves = [
        (source, exposure_total(payment.pool, payment.asset), net),
        (source, exposure_merchant(payment.pool, payment.asset, owner), net),
    ]
    return [(d, s, n) for s, d, n in moves] if back else moves


def advance(payment: Payment, owner: str) -> Transfer | None:
    """The advance posted with a merchant deposit's clear (None when there is nothing to
    advance: the fee takes the whole amount)."""
    net = payment.amount_minor - payment.fee_minor
    if net <= 0:
        return None
    channel = payment.channel or ""
    available = pool_account(payment.pool, payment.asset, channel, PoolState.AVAILABLE)
    moves = [(available, merchant_payable(owner, payment.asset), net)]
    return _transfer(payment, "advance", moves + _exposure(payment, owner, net, back=False))


SPLIT_KEY = "split"  # a merchant deposit's split rule (treasury/split.py), by id


def share_account(payment: Payment, owner: str, share: Share) -> str:
    """Where a split's share is credited: the platform's is the pool's fee income on the
    deposit's channel; a merchant's (the remainder, `merchant`, is the deposit's own) its
    payable; a partner's or agent's `commission:<pool>:<asset>:<role>:<party>`."""
    if share.role == "platform":
        return pool_account(payment.pool, payment.asset, payment.channel or "", PoolState.FEES)
    if share.role == "merchant":
        return merchant_payable(owner if share.party == "merchant" else share.party,
                                payment.asset)
    return commission_account(payment.pool, payment.asset, share.role, share.party)


def _deposit_accounts(payment: Payment, owner: str) -> tuple[str, str, str, str]:
    """A merchant deposit's pending-settlement, available and fee accounts on its channel,
    and the merchant's payable."""
    channel = payment.channel or ""
    return (pool_account(payment.pool, payment.asset, channel, PoolState.PENDING_SETTLEMENT),
            pool_account(payment.pool, payment.asset, channel, PoolState.AVAILABLE),
            pool_account(payment.pool, payment.asset, channel, PoolState.FEES),
            merchant_payable(owner, payment.asset))


def split_commands(payment: Payment, owner: str, rule: SplitRule, action: Action,
                   events: Sequence[PaymentEvent]) -> tuple[SimpleCommand, ...] | None:
    """What settle (and reverse, after an advance) post for a merchant deposit with a split
    rule: the merchant's net (amount less the rail's fee) shared out by the rule, in the same
    transaction as the settlement. After an advance the merchant was credited the whole net
    at clear, so settle also moves the other parties' shares out of its payable."""
    channel = payment.channel or ""
    pending, available, fees, payable = _deposit_accounts(payment, owner)
    net = payment.amount_minor - payment.fee_minor
    was_advanced = advanced(events)
    shares = split(rule, max(net, 0))
    if action is Action.SETTLE:
        if was_advanced:
            moves = [(pending, available, net), (pending, fees, payment.fee_minor)]
            moves += _exposure(payment, owner, net, back=True)
            moves += [(payable, share_account(payment, owner, s), s.amount_minor)
                      for s in shares if share_account(payment, owner, s) != payable]
        else:
            moves = [(pending, share_account(payment, owner, s), s.amount_minor)
                     for s in shares]
            moves.append((pending, fees, payment.fee_minor))
        return (_transfer(payment, action.value, _summed(moves)),)
    if action is Action.REVERSE and was_advanced:
        world = world_account(channel)
        moves = [(share_account(payment, owner, s), world, s.amount_minor) for s in shares]
        moves.append((fees, world, payment.fee_minor))
        return (_transfer(payment, action.value, _summed(moves)),)
    return None


def _summed(moves: list[tuple[str, str, int]]) -> list[tuple[str, str, int]]:
    """One posting per (source, destination): the platform's share and the rail's fee both
    go to the channel's fee account."""
    total: dict[tuple[str, str], int] = {}
    for source, destination, amount in moves:
        total[(source, destination)] = total.get((source, destination), 0) + amount
    return [(s, d, n) for (s, d), n in total.items()]


def merchant_commands(
    payment: Payment, owner: str, action: Action, events: Sequence[PaymentEvent]
) -> tuple[SimpleCommand, ...] | None:
    """What settle and return (and reverse, after an advance) post for a merchant deposit;
    None for the other actions (they post as for any deposit)."""
    channel = payment.channel or ""
    pending, available, fees, payable = _deposit_accounts(payment, owner)
    net = payment.amount_minor - payment.fee_minor
    was_advanced = advanced(events)
    if action is Action.SETTLE:
        if was_advanced:
            moves = [(pending, available, net), (pending, fees, payment.fee_minor)]
            moves += _exposure(payment, owner, net, back=True)
        else:
            moves = [(pending, payable, net), (pending, fees, payment.fee_minor)]
        return (_transfer(payment, action.value, moves),)
    if action is Action.RETURN and was_advanced:
        moves = [(pending, world_account(channel), payment.amount_minor), (payable, available, net)]
        moves += _exposure(payment, owner, net, back=True)
        return (_transfer(payment, action.value, moves),)
    if action is Action.REVERSE and was_advanced:
        world = world_account(channel)
        return (_transfer(payment, action.value, [(payable, world, net),
                                                  (fees, world, payment.fee_minor)]),)
    return None
