"""The simulated rails of a pool and the router over them: what the traffic simulator, the
CLI's `payment batch --wait` and the payments benchmark each dispatch on. `Dispatching` is the
dispatcher on them, as the composition root builds it (`compose.dispatching`,
`compose.simulation`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from fundpool.channels.simulated import SimulatedRail
from fundpool.payments.dispatch import Dispatcher
from fundpool.payments.rules import NOT_FOR_PAYOUTS
from fundpool.payments.service import PaymentService
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


@dataclass(frozen=True, slots=True)
class Dispatching:
    """The pool, its payment service and a dispatcher with one simulated rail per channel of
    the pool and the learning router over them. The rails live in this process: what they
    have not reported when it ends, they never will."""

    config: FundpoolConfig
    pool: PoolConfig
    payments: PaymentService
    rails: dict[str, SimulatedRail]
    router: Router
    dispatcher: Dispatcher
