"""The pool's ledger accounts, by name.

For each pool x asset x channel the pool holds five accounts, one per state of its money:
`pool:<pool>:<asset>:<channel>:available|locked|in_transit|pending_settlement|fees`, and each
channel has its outside world, `world:<channel>` (multi-asset, may go negative). A merchant's
claim on the pool is `merchant:<owner>:<asset>:payable`.

Merchant instant settlement (payments/instant.py) counts what the pool has advanced to
merchants on memo accounts `exposure:<pool>:<asset>:total` and
`exposure:<pool>:<asset>:merchant:<owner>`, whose maximum balances are the caps, so the ledger
itself refuses an advance beyond them; both are counted from `exposure:<pool>:<asset>:source`.

An asset code becomes an address segment in lower case with '.' as '_' (`USDT.TRON` ->
`usdt_tron`), since the address grammar has no '.'.
"""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple


class PoolState(StrEnum):
    AVAILABLE = "available"
    LOCKED = "locked"
    IN_TRANSIT = "in_transit"
    PENDING_SETTLEMENT = "pending_settlement"
    FEES = "fees"


# The states TOTAL is made of; fee income is the pool's own revenue and is shown beside it.
TOTAL_STATES = (
    PoolState.AVAILABLE,
    PoolState.LOCKED,
    PoolState.IN_TRANSIT,
    PoolState.PENDING_SETTLEMENT,
)


def asset_segment(asset_code: str) -> str:
    return asset_code.lower().replace(".", "_")


def pool_account(pool: str, asset_code: str, channel: str, state: PoolState) -> str:
    return f"pool:{pool}:{asset_segment(asset_code)}:{channel}:{state.value}"


def world_account(channel: str) -> str:
    return f"world:{channel}"


def merchant_payable(owner: str, asset_code: str) -> str:
    return f"merchant:{owner}:{asset_segment(asset_code)}:payable"


def commission_account(pool: str, asset_code: str, role: str, party: str) -> str:
    """A partner's or agent's commissions from split deposits (treasury/split.py)."""
    return f"commission:{pool}:{asset_segment(asset_code)}:{role}:{party}"


def exposure_source(pool: str, asset_code: str) -> str:
    """The memo account merchant advances are counted from (may go negative)."""
    return f"exposure:{pool}:{asset_segment(asset_code)}:source"


def exposure_total(pool: str, asset_code: str) -> str:
    """Advances outstanding in the pool; its maximum balance is the pool's cap."""
    return f"exposure:{pool}:{asset_segment(asset_code)}:total"


def exposure_merchant(pool: str, asset_code: str, owner: str) -> str:
    """Advances outstanding to one merchant; its maximum balance is the merchant cap."""
    return f"exposure:{pool}:{asset_segment(asset_code)}:merchant:{owner}"


class PoolAccount(NamedTuple):
    pool: str
    asset_segment: str
    channel: str
    state: PoolState


def parse_pool_account(address: str) -> PoolAccount | None:
    """The parts of a pool state account's address, or None for any other address."""
    parts = address.split(":")
    if len(parts) != 5 or parts[0] != "pool":
        return None
    try:
        state = PoolState(parts[4])
    except ValueError:
        return None
    return PoolAccount(parts[1], parts[2], parts[3], state)
