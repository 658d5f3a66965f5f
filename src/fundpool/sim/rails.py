"""The simulated rails of a pool and the router over them: what the traffic simulator, the
CLI's `payment batch --wait` and the payments benchmark each dispatch on."""

from __future__ import annotations

from collections.abc import Mapping

from fundpool.channels.simulated import SimulatedRail
from fundpool.payments.rules import NOT_FOR_PAYOUTS
from fundpool.pool.config import FundpoolConfig, PoolConfig
from fundpool.routing.router import Router


def simulated_rails(
    config: FundpoolConfig, pool: PoolConfig, *, seed: int, instance: str | None = None
) -> dict[str, SimulatedRail]:
    """One simulated rail per channel of the pool. `instance` keeps this set's rail
    references apart from any earlier set's on the same store (SimulatedRail)."""
    return {
        cid: SimulatedRail(config.channel(cid), config.assets, seed=seed, instance=instance)
        for cid in pool.channels
    }


def payout_router(
    config: FundpoolConfig, rails: Mapping[str, SimulatedRail], *, seed: int
) -> Router:
    """The learning router over the rails a payout can take (a book rail never carries one)."""
    return Router(
        [rail for cid, rail in rails.items() if config.channel(cid).kind not in NOT_FOR_PAYOUTS],
        seed=seed,
    )
