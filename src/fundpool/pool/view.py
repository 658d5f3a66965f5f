"""PoolView: the pool by state, per asset and channel, and in the reporting currency.

Every figure is a sum of ledger balances of the pool's state accounts; nothing is stored twice.

- available = posted - pending out of the `available` accounts: what can be spent now;
- locked = posted - pending out of the `locked` accounts, plus what pending transfers reserve
  on the `available`, `in_transit` and `pending_settlement` accounts (their pending out):
  money promised but not yet moved; each reservation is counted once;
- in transit, pending settlement = posted - pending out of those accounts;
- TOTAL = available + locked + in transit + pending settlement, which is the sum of the four
  accounts' posted balances;
- fee income = posted of the `fees` accounts, beside TOTAL, not in it.

Amounts are minor units of each asset. In the reporting currency, each asset's TOTAL is
converted once (rounded half to even) and shared out to its four states by largest remainder,
so the converted states add up to the converted TOTAL, which is TOTAL x rate; fee income is
converted on its own. An asset with no rate is listed in `missing_rates` and left out of the
reporting totals, never counted as zero silently.

The pool at a past journal seq (`pool_view_at`) is the same function over every pool
account's balance as of that seq (its last leg at or before it): what the live view showed
when that entry was the head.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from fundpool.core.errors import FundpoolError
from fundpool.core.ledger.model import Balance
from fundpool.core.money import Asset
from fundpool.ledger.ports import LedgerStore
from fundpool.pool.accounts import PoolState, asset_segment, parse_pool_account
from fundpool.pool.config import FundpoolConfig, PoolConfig
from fundpool.pool.rates import RateSource, convert_minor, convert_parts

FIGURES = ("available", "locked", "in_transit", "pending_settlement", "fees")


class SeqBeyondHead(FundpoolError):
    code = "seq_beyond_head"
    title = "the journal has no entry with this seq yet"


@dataclass(frozen=True, slots=True)
class Figures:
    """One slice of the pool, in minor units of one asset (or of the reporting currency)."""

    available: int = 0
    locked: int = 0
    in_transit: int = 0
    pending_settlement: int = 0
    fees: int = 0

    @property
    def total(self) -> int:
        return self.available + self.locked + self.in_transit + self.pending_settlement

    def __add__(self, other: Figures) -> Figures:
        return Figures(*(getattr(self, f) + getattr(other, f) for f in FIGURES))

    def as_dict(self) -> dict[str, int]:
        return {**{f: getattr(self, f) for f in FIGURES}, "total": self.total}


def figures_of(balances: Mapping[PoolState, Balance]) -> Figures:
    """The figures of one pool x asset x channel from its five accounts' balances."""

    def get(state: PoolState) -> Balance:
        return balances.get(state, Balance())

    reserved = sum(get(s).pending_out for s in PoolState if s is not PoolState.FEES)
    return Figures(
        available=get(PoolState.AVAILABLE).available,
        locked=get(PoolState.LOCKED).posted - get(PoolState.LOCKED).pending_out + reserved,
        in_transit=get(PoolState.IN_TRANSIT).available,
        pending_settlement=get(PoolState.PENDING_SETTLEMENT).available,
        fees=get(PoolState.FEES).posted,
    )


@dataclass(frozen=True, slots=True)
class AssetView:
    asset: Asset
    by_channel: dict[str, Figures]
    total: Figures
    reporting: Figures | None  # None when no rate to the reporting currency is known


@dataclass(frozen=True, slots=True)
class PoolView:
    pool: str
    reporting_currency: Asset
    assets: tuple[AssetView, ...]
    reporting_total: Figures
    missing_rates: tuple[str, ...] = field(default=())
    as_of_seq: int = 0

    def asset(self, code: str) -> AssetView:
        for view in self.assets:
            if view.asset.code == code:
                return view
        raise KeyError(code)


def pool_view(
    store: LedgerStore | None,
    config: FundpoolConfig,
    pool: PoolConfig,
    rates: RateSource,
    *,
    balances: Mapping[tuple[str, str], Balance] | None = None,
    as_of_seq: int | None = None,
) -> PoolView:
    """The pool now, from the store's balances (or from `balances`, e.g. a replay)."""
    if balances is None:
        if store is None:
            raise ValueError("pool_view needs a store or the balances")
        as_of_seq, balances = _consistent_balances(store, pool.id, as_of_seq)
    by_key = _group(balances.items(), pool.id)
    reporting = config.asset(pool.reporting_currency)
    channels = {c.id: c for c in config.channels}
    asset_codes: list[str] = []
    for channel_id in pool.channels:
        for code in channels[channel_id].assets:
            if code not in asset_codes:
                asset_codes.append(code)
    views: list[AssetView] = []
    reporting_total = Figures()
    missing: list[str] = []
    for code in asset_codes:
        asset = config.asset(code)
        by_channel = {
            channel_id: figures_of(by_key.get((asset_segment(code), channel_id), {}))
            for channel_id in pool.channels
            if code in channels[channel_id].assets
        }
        total = sum(by_channel.values(), Figures())
        rate = rates.rate(code, reporting.code)
        converted = None
        if rate is None:
            missing.append(code)
        else:
            states, _ = convert_parts(
                [getattr(total, f) for f in FIGURES[:4]], asset, reporting, rate
            )
            fees = convert_minor(total.fees, asset, reporting, rate)
            available, locked, in_transit, pending_settlement = states
            converted = Figures(available, locked, in_transit, pending_settlement, fees)
            reporting_total = reporting_total + converted
        views.append(AssetView(asset, by_channel, total, converted))
    return PoolView(
        pool.id, reporting, tuple(views), reporting_total, tuple(missing), as_of_seq or 0
    )


HEAD_READS = 3  # tries at reading the balances between two equal heads


def _consistent_balances(
    store: LedgerStore, pool: str, as_of_seq: int | None
) -> tuple[int, Mapping[tuple[str, str], Balance]]:
    """The pool's balances and the entry they stand at. The head and the balances are two
    reads; a commit between them would show newer balances than the head says. A commit
    moves the head and the balances together, so balances read between two equal heads are
    that head's; after `HEAD_READS` tries under a busy writer, the balances as of the last
    head read are computed from the legs (exact, slower)."""
    if as_of_seq is not None:
        return as_of_seq, store.balances(f"pool:{pool}:")
    seq = store.head().seq
    for _ in range(HEAD_READS):
        balances = store.balances(f"pool:{pool}:")
        after = store.head().seq
        if after == seq:
            return seq, balances
        seq = after
    return seq, balances_at(store, pool, seq)


def pool_view_at(
    store: LedgerStore, config: FundpoolConfig, pool: PoolConfig, rates: RateSource, seq: int
) -> PoolView:
    """The pool as it stood right after journal entry `seq` (0: before the first entry), the
    same figures the live view showed then; `as_of_seq` is `seq`."""
    head_seq = store.head().seq
    if not 0 <= seq <= head_seq:
        raise SeqBeyondHead(seq=seq, head_seq=head_seq)
    return pool_view(store, config, pool, rates, balances=balances_at(store, pool.id, seq),
                     as_of_seq=seq)


def balances_at(store: LedgerStore, pool: str, seq: int) -> dict[tuple[str, str], Balance]:
    """Every non-zero balance of the pool's accounts as of journal `seq`. The accounts are
    today's (an account is never deleted, so every account of the past is among them)."""
    balances: dict[tuple[str, str], Balance] = {}
    if seq == 0:
        return balances
    for address, asset in store.balances(f"pool:{pool}:"):
        balance = store.balance_at(address, asset, seq)
        if balance != Balance():
            balances[(address, asset)] = balance
    return balances


def _group(
    balances: Iterable[tuple[tuple[str, str], Balance]], pool_id: str
) -> dict[tuple[str, str], dict[PoolState, Balance]]:
    grouped: dict[tuple[str, str], dict[PoolState, Balance]] = {}
    for (address, _asset), balance in balances:
        parsed = parse_pool_account(address)
        if parsed is None or parsed.pool != pool_id:
            continue
        grouped.setdefault((parsed.asset_segment, parsed.channel), {})[parsed.state] = balance
    return grouped
