"""What the pool can pay, read at creation in the creating transaction: a payout (or a transfer
between channels) larger than the `available` balances that could pay it is refused at once
(`insufficient_funds`, with the figures), rather than accepted and left to fail at routing.

Each payment is held to the balances alone, not less the payments created before it and not
yet approved: only approval locks funds, and routing refuses what no rail can pay then. The fee
is left out: it is known only once a rail is chosen.
"""

from __future__ import annotations

from collections.abc import Sequence

from fundpool.core.errors import InsufficientFunds
from fundpool.ledger.service import LedgerTransaction
from fundpool.payments.model import Payment
from fundpool.pool.accounts import PoolState, pool_account


class AvailableFunds:
    """The pool's `available` balances as one transaction sees them, read once per set of
    rails and asset for the life of the object (one creation call)."""

    def __init__(self, transaction: LedgerTransaction, pool: str) -> None:
        self._transaction = transaction
        self._pool = pool
        self._sums: dict[tuple[str, tuple[str, ...]], int] = {}

    def available(self, asset: str, channels: Sequence[str]) -> int:
        key = (asset, tuple(channels))
        known = self._sums.get(key)
        if known is None:
            addresses = [(pool_account(self._pool, asset, channel, PoolState.AVAILABLE), asset)
                         for channel in channels]
            balances = self._transaction.balances(addresses)
            # A pool's available accounts have no credit line (pool/setup.py): their floor is
            # zero, so one never holds less; max() keeps a hand-opened one from subtracting.
            known = sum(max(0, balances[address].available) for address in addresses)
            self._sums[key] = known
        return known

    def check(self, payment: Payment, channels: Sequence[str]) -> None:
        """Refuse `payment` if its amount is more than `channels` hold available."""
        if not channels:
            return
        available = self.available(payment.asset, channels)
        if payment.amount_minor > available:
            raise InsufficientFunds(
                f"the pool holds {available} minor units of {payment.asset} available on "
                f"the rails that could pay this; {payment.amount_minor} were asked for",
                asset=payment.asset, requested_minor=payment.amount_minor,
                available_minor=available, pool=self._pool, channels=list(channels),
            )
