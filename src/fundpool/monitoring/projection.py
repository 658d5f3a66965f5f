"""A pool's live figures, folded from its events one at a time (docs/monitoring.md).

The projection is two maps of exact integers, so that two consumers fed the same events hold
the same figures bit for bit, and a replay is the same fold from the start:

- `cells`: (name, key) -> int — balances of the pool's state accounts, payments per state and
  per channel, latency histograms per channel and stage, event counts;
- `series`: (metric, resolution, bucket start) -> int — time series at second, minute and hour
  resolution, written together (the rollup is exact: a minute is the sum, or the last value, of
  its seconds), pruned by event time after a bounded retention.

Everything is driven by the events' own times (`at_us`), never by the consumer's clock. Ratios,
percentiles and turnover are computed when read (monitoring/figures.py), not stored.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from fundpool.events.model import Event, LedgerEntryCommitted, PaymentTransitioned
from fundpool.pool.accounts import PoolAccount, PoolState, parse_pool_account

Cell = tuple[str, str]
SeriesKey = tuple[str, str, int]  # (metric, resolution, bucket start µs)

SECOND_US = 1_000_000
RESOLUTIONS: dict[str, int] = {"s": SECOND_US, "m": 60 * SECOND_US, "h": 3_600 * SECOND_US}
# How long each resolution is kept, measured back from the newest event: 2 hours of seconds,
# 3 days of minutes, 90 days of hours.
RETENTION_US: dict[str, int] = {
    "s": 2 * 3_600 * SECOND_US,
    "m": 3 * 86_400 * SECOND_US,
    "h": 90 * 86_400 * SECOND_US,
}
# Gauges keep the last value of a bucket; every other metric is a counter summed per bucket.
GAUGES = ("total", "available")

# Latency histogram bucket upper bounds in µs: 1 ms … 7 days (a card acquirer settles T+2).
LATENCY_BOUNDS_US: tuple[int, ...] = tuple(
    ms * 1_000 for ms in (
        1, 2, 5, 10, 20, 50, 100, 200, 500,
        1_000, 2_000, 5_000, 10_000, 30_000, 60_000, 120_000, 300_000, 600_000,
        1_800_000, 3_600_000, 7_200_000, 21_600_000, 86_400_000, 172_800_000,
        259_200_000, 604_800_000,
    )
)

PENDING_STATES = frozenset(
    {"initiated", "screened", "held", "routed", "pending_approval"}
)
IN_FLIGHT_STATES = frozenset({"approved", "submitted", "cleared"})
NO_CHANNEL = "-"
AWAITING_APPROVAL = "pending_approval"
# Payments waiting for an approver, by the time they began to wait: +1 in the bucket of their
# entry into pending_approval, -1 in that same bucket when they leave it (the leaving event's
# `since_us` is the entry time). A bucket's value is how many that began to wait then still
# wait, so the oldest wait is the first bucket above 0 (figures.oldest_waiting_since_us), and
# the state stays bounded by the series' retention.
APPROVALS_WAITING = "approvals_waiting"
ACCOUNTS_KEPT_MAX = 4_096  # parsed leg addresses kept per pool projection (then: start again)


_S, _M, _H = RESOLUTIONS["s"], RESOLUTIONS["m"], RESOLUTIONS["h"]


def latency_bucket(latency_us: int) -> int:
    """The index of the histogram bucket `latency_us` falls in (the last one is +Inf)."""
    return bisect_left(LATENCY_BOUNDS_US, latency_us)


@dataclass(slots=True)
class Projection:
    """One pool's figures. `apply` folds the next event; the caller guarantees the order
    (Projector checks `seq`). `changed_*` collect what to write since the last `clear()`.

    A batch is folded with `fold_in` for each event and one `settle` after: the counts that
    nothing reads while events are folded (payments by state, latencies, event counts, and
    the counter series, which are kept per second and rolled up to minutes and hours then)
    are added once per batch rather than once per event."""

    pool: str
    cells: dict[Cell, int] = field(default_factory=dict)
    series: dict[SeriesKey, int] = field(default_factory=dict)
    applied_seq: int = 0
    last_at_us: int = 0
    changed_cells: set[Cell] = field(default_factory=set)
    changed_series: set[SeriesKey] = field(default_factory=set)
    # Per (asset segment, channel), the five state balances as figures, to update totals by
    # difference; rebuilt from `cells` on load.
    _figures: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)
    _assets: dict[str, str] = field(default_factory=dict)  # address segment -> asset code
    # Made once, used for every event: the parsed addresses of the legs seen, and per (asset
    # segment, channel, asset) the cell keys of its state accounts (what `_channel_figures`
    # sums).
    _accounts: dict[str, PoolAccount | None] = field(default_factory=dict)
    _channel_cells: dict[tuple[str, str, str], tuple[tuple[Cell, ...], Cell, Cell]] = field(
        default_factory=dict)
    # Folded in, not settled yet: additions to cells, and to counters by (metric, second).
    _cell_counts: defaultdict[Cell, int] = field(default_factory=lambda: defaultdict(int))
    _second_counts: defaultdict[tuple[str, int], int] = field(
        default_factory=lambda: defaultdict(int))
    # Pruning: per resolution, the oldest bucket start left by the last pass (none: not
    # known), and the earliest time a bucket was written at since; while both are within the
    # retention, no bucket can be old enough to drop and the pass is skipped.
    _oldest_us: dict[str, int] = field(default_factory=dict)
    _earliest_us: int | None = None
    pruned: set[str] = field(default_factory=set)  # resolutions pruned since `clear_changes`

    # --- folding ------------------------------------------------------------------------

    def apply(self, event: Event) -> None:
        self.fold_in(event)
        self.settle()

    def fold_in(self, event: Event) -> None:
        """Fold the next event in; its counts are in `cells` and `series` after `settle`."""
        data = event.data
        at_us = event.at_us
        if type(data) is PaymentTransitioned:
            self._payment(at_us, data)
        elif type(data) is LedgerEntryCommitted:
            self._entry(at_us, data)
        self._cell_counts[("events", event.type)] += 1
        self.applied_seq = event.seq
        if at_us > self.last_at_us:
            self.last_at_us = at_us

    def settle(self) -> None:
        """Add what was folded in to `cells` and `series`."""
        if self._cell_counts:
            cells, changed = self.cells, self.changed_cells
            get, add = cells.get, changed.add
            for cell, delta in self._cell_counts.items():
                cells[cell] = get(cell, 0) + delta
                add(cell)
            self._cell_counts.clear()
        if self._second_counts:
            series, changed_series = self.series, self.changed_series
            sget, sadd = series.get, changed_series.add
            earliest = self._earliest_us
            for (metric, second), delta in self._second_counts.items():
                for key in ((metric, "s", second), (metric, "m", second - second % _M),
                            (metric, "h", second - second % _H)):
                    series[key] = sget(key, 0) + delta
                    sadd(key)
                if earliest is None or second < earliest:
                    earliest = second
            self._earliest_us = earliest
            self._second_counts.clear()

    def _add(self, cell: Cell, delta: int) -> None:
        if delta:
            self.cells[cell] = self.cells.get(cell, 0) + delta
            self.changed_cells.add(cell)

    def _set(self, cell: Cell, value: int) -> None:
        if self.cells.get(cell, 0) != value:
            self.cells[cell] = value
            self.changed_cells.add(cell)

    def _count(self, metric: str, at_us: int, delta: int) -> None:
        """Count `delta` in `at_us`'s buckets, at `settle`."""
        if delta:
            self._second_counts[(metric, at_us - at_us % _S)] += delta

    def _count_now(self, metric: str, at_us: int, delta: int) -> None:
        """Count `delta` in `at_us`'s buckets at once (for a series read while folding)."""
        series, changed = self.series, self.changed_series
        for key in ((metric, "s", at_us - at_us % _S), (metric, "m", at_us - at_us % _M),
                    (metric, "h", at_us - at_us % _H)):
            series[key] = series.get(key, 0) + delta
            changed.add(key)
        self._written_at(at_us)

    def _written_at(self, at_us: int) -> None:
        if self._earliest_us is None or at_us < self._earliest_us:
            self._earliest_us = at_us

    def _uncount(self, metric: str, at_us: int) -> None:
        """One less in `at_us`'s buckets, where one was counted. The finest resolution that
        still keeps `at_us`'s bucket decides: if it holds a count, that bucket and the coarser
        ones lose one together (they were counted together, so the roll-up stays exact); if
        not (a wait that began before this projection saw it), nothing changes, and no count
        goes negative."""
        series, changed = self.series, self.changed_series
        keys = [(metric, "s", at_us - at_us % _S), (metric, "m", at_us - at_us % _M),
                (metric, "h", at_us - at_us % _H)]
        bounds = self.prune_bounds()
        for index, key in enumerate(keys):
            if key[2] < bounds[key[1]]:
                continue  # pruned at this resolution: a coarser one decides
            if series.get(key, 0) > 0:
                for held in keys[index:]:
                    series[held] = series.get(held, 0) - 1
                    changed.add(held)
                self._written_at(at_us)
            return

    def _gauge(self, metric: str, at_us: int, value: int) -> None:
        for res, width in RESOLUTIONS.items():
            key = (metric, res, at_us - at_us % width)
            self.series[key] = value
            self.changed_series.add(key)
        self._written_at(at_us)

    def _entry(self, at_us: int, data: LedgerEntryCommitted) -> None:
        touched: set[tuple[str, str]] = set()
        accounts, cells, changed = self._accounts, self.cells, self.changed_cells
        for leg in data.legs:
            address = leg.address
            parsed = accounts[address] if address in accounts else self._account(address)
            if parsed is None or parsed.pool != self.pool:
                continue
            key = f"{address}|{leg.asset}"
            posted = ("posted", key)
            before = cells.get(posted, 0)
            for cell, value in ((posted, leg.posted), (("pending_out", key), leg.pending_out),
                                (("pending_in", key), leg.pending_in)):
                if cells.get(cell, 0) != value:  # _set, inlined
                    cells[cell] = value
                    changed.add(cell)
            change = leg.posted - before
            if parsed.state is PoolState.FEES:
                self._count(f"fee|{leg.asset}", at_us, change)
            else:
                self._count(f"flow|{parsed.channel}|{leg.asset}", at_us, abs(change))
            touched.add((parsed.asset_segment, parsed.channel))
            if parsed.asset_segment not in self._assets:
                self._asset_of_segment(parsed.asset_segment, leg.asset)
        assets: set[str] = set()
        for segment, channel in touched:
            total, available = self._channel_figures(segment, channel)
            old_total, old_available = self._figures.get((segment, channel), (0, 0))
            self._figures[(segment, channel)] = (total, available)
            asset = self._segment_asset(segment)
            self._add(("total", asset), total - old_total)
            self._add(("available", asset), available - old_available)
            assets.add(asset)
        for asset in sorted(assets):
            self._gauge(f"total|{asset}", at_us, self.cells.get(("total", asset), 0))
            self._gauge(f"available|{asset}", at_us, self.cells.get(("available", asset), 0))

    def _account(self, address: str) -> PoolAccount | None:
        """`parse_pool_account`, kept: a pool has few accounts, and every entry names some."""
        if len(self._accounts) >= ACCOUNTS_KEPT_MAX:
            self._accounts.clear()
        parsed = self._accounts[address] = parse_pool_account(address)
        return parsed

    def _asset_of_segment(self, segment: str, asset: str) -> None:
        if segment not in self._assets:
            self._assets[segment] = asset
            self._set(("asset_of", f"{segment}|{asset}"), 1)

    def _segment_asset(self, segment: str) -> str:
        return self._assets.get(segment, segment)

    def _balance(self, address: str, asset: str) -> tuple[int, int]:
        key = f"{address}|{asset}"
        return self.cells.get(("posted", key), 0), self.cells.get(("pending_out", key), 0)

    def _channel_figures(self, segment: str, channel: str) -> tuple[int, int]:
        """(TOTAL, available) of one asset x channel, as PoolView counts them."""
        asset = self._segment_asset(segment)
        keys = self._channel_cells.get((segment, channel, asset))
        if keys is None:
            prefix = f"pool:{self.pool}:{segment}:{channel}:"
            keys = self._channel_cells[(segment, channel, asset)] = (
                tuple(("posted", f"{prefix}{state.value}|{asset}") for state in (
                    PoolState.AVAILABLE, PoolState.LOCKED, PoolState.IN_TRANSIT,
                    PoolState.PENDING_SETTLEMENT)),
                ("posted", f"{prefix}{PoolState.AVAILABLE.value}|{asset}"),
                ("pending_out", f"{prefix}{PoolState.AVAILABLE.value}|{asset}"),
            )
        get = self.cells.get
        total = 0
        for cell in keys[0]:
            total += get(cell, 0)
        return total, get(keys[1], 0) - get(keys[2], 0)

    def _payment(self, at_us: int, data: PaymentTransitioned) -> None:
        channel = data.channel or NO_CHANNEL
        gross = data.amount_minor
        to_state, from_state, asset = data.to_state, data.from_state, data.asset
        counts = self._cell_counts
        # Counted at `settle`: nothing reads these cells while a batch is folded.
        counts[("payments", to_state)] += 1
        if gross:
            counts[("payments_amount", f"{to_state}|{asset}")] += gross
        counts[("payments_channel", f"{to_state}|{channel}")] += 1
        if from_state is not None:
            counts[("payments", from_state)] -= 1
            if gross:
                counts[("payments_amount", f"{from_state}|{asset}")] -= gross
            counts[("payments_channel",
                    f"{from_state}|{data.previous_channel or NO_CHANNEL}")] -= 1
        # _count, inlined
        self._second_counts[(f"payments|{data.kind}|{to_state}", at_us - at_us % _S)] += 1
        if data.to_state == "settled":
            flow = "inflow" if data.kind == "deposit" else "outflow"
            self._count(f"{flow}|{data.asset}", at_us, gross)
            self._observe(channel, "end_to_end", at_us - data.created_at_us)
        if data.since_us is not None:
            self._observe(channel, data.action, at_us - data.since_us)
        if data.to_state == AWAITING_APPROVAL:
            self._count_now(APPROVALS_WAITING, at_us, 1)  # `_uncount` reads it
        if data.from_state == AWAITING_APPROVAL and data.since_us is not None:
            self._uncount(APPROVALS_WAITING, data.since_us)
            if data.to_state == "approved":
                self._observe_approval(at_us - data.since_us)

    def _observe(self, channel: str, stage: str, latency_us: int) -> None:
        latency_us = max(latency_us, 0)
        key = f"{channel}|{stage}"
        counts = self._cell_counts
        counts[("latency_bucket", f"{key}|{bisect_left(LATENCY_BOUNDS_US, latency_us)}")] += 1
        counts[("latency_count", key)] += 1
        if latency_us:
            counts[("latency_sum_us", key)] += latency_us

    def _observe_approval(self, wait_us: int) -> None:
        """The wait from the request for approval to the approval, in the pool's histogram
        (the latency buckets)."""
        wait_us = max(wait_us, 0)
        counts = self._cell_counts
        for cell, delta in ((("approval_wait_bucket", str(latency_bucket(wait_us))), 1),
                            (("approval_wait_count", "*"), 1),
                            (("approval_wait_sum_us", "*"), wait_us)):
            if delta:
                counts[cell] += delta

    # --- housekeeping ---------------------------------------------------------------------

    def prune_bounds(self) -> dict[str, int]:
        """Per resolution, the first bucket start still kept (older ones are dropped)."""
        return {res: self.last_at_us - RETENTION_US[res] for res in RESOLUTIONS}

    def prune(self) -> None:
        """Drop the buckets older than their retention (`pruned` names the resolutions that
        lost some, for the store to drop them too)."""
        self.settle()
        bounds = self.prune_bounds()
        earliest = self._earliest_us
        if len(self._oldest_us) == len(RESOLUTIONS) and all(
                min(self._oldest_us[res], earliest - earliest % RESOLUTIONS[res]
                    if earliest is not None else self._oldest_us[res]) >= bound
                for res, bound in bounds.items()):
            return  # nothing is old enough to drop
        oldest = dict.fromkeys(RESOLUTIONS, self.last_at_us)
        doomed: list[SeriesKey] = []
        for key in self.series:
            res, start = key[1], key[2]
            if start < bounds[res]:
                doomed.append(key)
            elif start < oldest[res]:
                oldest[res] = start
        for key in doomed:
            del self.series[key]
            self.changed_series.discard(key)
            self.pruned.add(key[1])
        self._oldest_us, self._earliest_us = oldest, None

    def clear_changes(self) -> None:
        self.changed_cells.clear()
        self.changed_series.clear()
        self.pruned.clear()

    def rebuild_index(self) -> None:
        """Recompute what is derived from `cells` (after loading them from a store)."""
        self._figures = {}
        self._assets = {
            key.split("|")[0]: key.split("|")[1] for name, key in self.cells if name == "asset_of"
        }
        segments = set(self._assets)
        channels: set[tuple[str, str]] = set()
        for name, key in self.cells:
            if name in ("posted", "pending_out", "pending_in"):
                parsed = parse_pool_account(key.split("|")[0])
                if parsed is not None and parsed.asset_segment in segments:
                    channels.add((parsed.asset_segment, parsed.channel))
        for segment, channel in channels:
            self._figures[(segment, channel)] = self._channel_figures(segment, channel)

    @classmethod
    def loaded(
        cls, pool: str, cells: Mapping[Cell, int], series: Iterable[tuple[SeriesKey, int]],
        applied_seq: int, last_at_us: int,
    ) -> Projection:
        projection = cls(pool, dict(cells), dict(series), applied_seq, last_at_us)
        projection.rebuild_index()
        return projection


def fold(pool: str, events: Iterable[Event]) -> Projection:
    """The projection of `events` (one pool's, in seq order) from nothing: what a replay is."""
    projection = Projection(pool)
    for event in events:
        projection.fold_in(event)
    projection.prune()
    projection.clear_changes()
    return projection
