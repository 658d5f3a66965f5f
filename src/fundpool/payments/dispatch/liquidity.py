"""What each rail holds for routing, as the current transaction sees it."""

from __future__ import annotations

from collections.abc import Mapping

from fundpool.channels.ports import Capabilities
from fundpool.ledger.service import LedgerTransaction
from fundpool.pool.accounts import PoolState, pool_account


class Liquidity:
    """Available balance per (asset, channel) as this transaction sees it, less what this
    call has already routed there."""

    def __init__(self, transaction: LedgerTransaction, pool: str,
                 capabilities: Mapping[str, Capabilities]) -> None:
        self._transaction = transaction
        self._pool = pool
        self._channels = {
            asset: [cid for cid, caps in capabilities.items() if asset in caps.assets]
            for asset in {a for caps in capabilities.values() for a in caps.assets}
        }
        self._by_asset: dict[str, dict[str, int]] = {}

    def for_asset(self, asset: str) -> dict[str, int]:
        known = self._by_asset.get(asset)
        if known is None:
            channels = self._channels.get(asset, [])
            keys = {cid: (pool_account(self._pool, asset, cid, PoolState.AVAILABLE), asset)
                    for cid in channels}
            balances = self._transaction.balances(keys.values())
            known = {cid: balances[key].available for cid, key in keys.items()}
            self._by_asset[asset] = known
        return known

    def take(self, asset: str, channel: str, amount: int) -> None:
        available = self.for_asset(asset)
        if channel in available:
            available[channel] -= amount
