"""Where a rail's congestion is measured: the one `CongestionMeter` of a process, which the
dispatchers feed with what they submit and the routers read to price it.

The composition root makes it (`CongestionMeter.of(config)`: None when no channel has a
`dynamic_fee` table) and hands the same one to every router and dispatcher of the process,
and to the API, which shows each channel's state. A channel shared by two pools is one rail
whatever pool pays on it, so it is measured once. Without a meter, routing is what it was
before dynamic fees: the rails' quotes alone.

What the meter counts is what a dispatcher handed a rail and the rail took (`taken`, once per
batch sent: its cost on the dispatcher's path is a dictionary lookup and, for a priced
channel, a few integer operations under a lock). A payment counts in the interval it was sent
in (one reported for a time before the channel's current interval counts in the current one).
The arithmetic is channels/congestion.py's: the meter only keeps each channel's
`CongestionState` between calls, and its last quotes. One process measures what it sends:
with several workers, each measures its own engines' sends (the engine of a pool runs in one
worker at a time), and a worker without the engine prices the rails at what it has seen.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping

from fundpool.channels.congestion import (
    CongestionState,
    DynamicFee,
    DynamicFeeQuote,
    advance,
    dynamic_fee_minor,
    initial_state,
    taken,
)
from fundpool.pool.config import ChannelConfig, FundpoolConfig

# The last quote per (channel, risk grade) is kept with the span it holds for: within one
# interval the base fee is fixed, and within one hour so is the window, so the decisions
# after the first in that span cost a dictionary lookup and no lock. Past this many (risk
# grades are few; this bounds a caller's odd ones), the cache starts again.
QUOTES_CACHED_MAX = 4_096
_US_PER_HOUR = 3_600_000_000


class CongestionMeter:
    """Each priced channel's congestion state, fed by `taken` and read by `quote`. Safe to
    share between threads (an engine's and the API's)."""

    def __init__(self, fees: Mapping[str, DynamicFee]) -> None:
        self._fees = dict(fees)
        self._states: dict[str, CongestionState] = {}
        # (channel, risk grade) -> (from_us, until_us, the quote for any time in between)
        self._quotes: dict[tuple[str, str | None], tuple[int, int, DynamicFeeQuote]] = {}
        self._lock = threading.Lock()

    @classmethod
    def of(cls, config: FundpoolConfig | Iterable[ChannelConfig]) -> CongestionMeter | None:
        """A meter over every channel with a `dynamic_fee` table; None when there is none,
        so that a pool without dynamic fees routes exactly as before."""
        channels = config.channels if isinstance(config, FundpoolConfig) else config
        fees = {c.id: c.dynamic_fee for c in channels if c.dynamic_fee is not None}
        return cls(fees) if fees else None

    @property
    def channels(self) -> tuple[str, ...]:
        return tuple(self._fees)

    def prices(self, channel: str) -> bool:
        return channel in self._fees

    def prices_risk(self) -> bool:
        """Whether any channel's fee depends on a payment's risk grade."""
        return any(fee.risk for fee in self._fees.values())

    def config(self, channel: str) -> DynamicFee | None:
        return self._fees.get(channel)

    def taken(self, channel: str, n_items: int, at_us: int) -> None:
        """The rail of `channel` took `n_items` payments at `at_us`."""
        fee = self._fees.get(channel)
        if fee is None:
            return
        with self._lock:
            state = self._states.get(channel) or initial_state(fee, at_us)
            self._states[channel] = taken(state, fee, n_items, at_us)

    def state(self, channel: str, at_us: int) -> CongestionState | None:
        """The channel's state as of `at_us` (None: not priced)."""
        fee = self._fees.get(channel)
        if fee is None:
            return None
        with self._lock:
            return self._current(channel, fee, at_us)

    def _current(self, channel: str, fee: DynamicFee, at_us: int) -> CongestionState:
        state = self._states.get(channel)
        current = initial_state(fee, at_us) if state is None else advance(state, fee, at_us)
        if current is not state:
            self._states[channel] = current
        return current

    def quote(self, channel: str, asset: str, at_us: int,
              risk_grade: str | None = None) -> DynamicFeeQuote | None:
        """What a payment of `asset` on `channel` at `at_us` pays for congestion (None: the
        channel is not priced, or not in that asset)."""
        fee = self._fees.get(channel)
        if fee is None or fee.asset.code != asset:
            return None
        key = (channel, risk_grade)
        kept = self._quotes.get(key)
        if kept is not None and kept[0] <= at_us < kept[1]:
            return kept[2]  # exact: the base fee and the window are those of the span
        with self._lock:
            state = self._current(channel, fee, at_us)
            hour_start_us = at_us - at_us % _US_PER_HOUR
            quote = dynamic_fee_minor(state, fee, at_us, risk_grade)
            if state.interval_start_us <= at_us:  # not a late time, before the state's span
                if len(self._quotes) >= QUOTES_CACHED_MAX:
                    self._quotes.clear()
                self._quotes[key] = (
                    max(state.interval_start_us, hour_start_us),
                    min(state.interval_start_us + fee.interval_us, hour_start_us + _US_PER_HOUR),
                    quote,
                )
            return quote
