"""The simulated rails of a pool and the router over them: what the traffic simulator, the
CLI's `payment batch --wait` and the payments benchmark each dispatch on. `Dispatching` is the
dispatcher on them, as the composition root builds it (`compose.dispatching`,
`compose.simulation`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from fundpool.channels.ports import ChannelAdapter
from fundpool.channels.rail_journal import LOCK_WAIT_S, RailJournal
from fundpool.channels.simulated import Acknowledgement, SimulatedRail
from fundpool.payments.dispatch import Dispatcher
from fundpool.payments.rules import NOT_FOR_PAYOUTS
from fundpool.payments.service import PaymentService
from fundpool.pool.config import FundpoolConfig, PoolConfig
from fundpool.routing.congestion import CongestionMeter
from fundpool.routing.router import Router


def simulated_rails(
    config: FundpoolConfig,
    pool: PoolConfig,
    *,
    seed: int,
    instance: str | None = None,
    journal_dir: Path | None = None,
    journal_wait_s: float = LOCK_WAIT_S,
    acknowledgement: Acknowledgement = Acknowledgement.NEXT_POLL,
) -> dict[str, SimulatedRail]:
    """One simulated rail per channel of the pool. `instance` keeps this set's rail
    references apart from any earlier set's on the same store (SimulatedRail).

    With `journal_dir` (the data directory's `rails/`) each rail keeps its journal at
    `<journal_dir>/<pool>/<channel>.jsonl` (channels/rail_journal.py) and outlives this
    process, as a real rail would: the next set opened there resumes it. The pool is in the
    path because a channel shared by two pools is one rail per pool (one engine each). The
    journals are held (locked) until each rail is closed; opening waits up to
    `journal_wait_s` for a previous holder (`rail_journal_locked` after that), and if one
    cannot be opened, those already opened are closed again."""
    if journal_dir is None:
        return {
            cid: SimulatedRail(config.channel(cid), config.assets, seed=seed, instance=instance)
            for cid in pool.channels
        }
    rails: dict[str, SimulatedRail] = {}
    try:
        for cid in pool.channels:
            journal = RailJournal.open(
                journal_dir / pool.id / f"{cid}.jsonl", wait_s=journal_wait_s
            )
            try:
                rails[cid] = SimulatedRail(
                    config.channel(cid), config.assets, seed=seed, instance=instance,
                    journal=journal, acknowledgement=acknowledgement,
                )
            except BaseException:
                journal.close()
                raise
    except BaseException:
        for rail in rails.values():
            rail.close()
        raise
    return rails


def payout_router(
    config: FundpoolConfig, rails: Mapping[str, ChannelAdapter], *, seed: int,
    congestion: CongestionMeter | None = None,
) -> Router:
    """The learning router over the rails a payout can take (a book rail never carries one),
    pricing their congestion with `congestion` (None: their quotes alone)."""
    return Router(
        [rail for cid, rail in rails.items() if config.channel(cid).kind not in NOT_FOR_PAYOUTS],
        seed=seed, congestion=congestion,
    )


@dataclass(frozen=True, slots=True)
class Dispatching:
    """The pool, its payment service and a dispatcher with one simulated rail per channel of
    the pool and the learning router over them. The rails live in this process: what they
    have not reported when it ends, they never will."""

    config: FundpoolConfig
    pool: PoolConfig
    payments: PaymentService
    rails: dict[str, ChannelAdapter]  # simulated, but for channels with a real adapter
    router: Router
    dispatcher: Dispatcher
