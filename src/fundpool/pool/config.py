"""The fund pool as declared: assets, clearing channels, owners and pools, from a TOML file.

    [[assets]]
    code = "USD"
    scale = 2
    kind = "fiat"

    [[channels]]
    id = "bank-a"
    kind = "bank_wire"
    assets = ["USD"]

    [[owners]]
    id = "m42"
    kind = "merchant"
    name = "Acme Shop"

    [[pools]]
    id = "main"
    reporting_currency = "USD"
    channels = ["bank-a"]
    rates = "rates.toml"        # optional; relative to this file
    rates_url = "http://127.0.0.1:9000/rates"  # optional: a live HTTP source instead
    treasury = "treasury.toml"  # optional: bands, sweeps, credit lines, splits, FX (desk)

A channel carried by the ISO 20022 bank rail (channels/iso_rail.py, docs/bank-rail.md) says
`adapter = "iso20022"` and has a `bank` table; any channel may have a `recon` table:

    [channels.bank]
    exchange = "banks/bank-a"   # the file exchange; relative to the data directory
    account = "GB33BUKB20201555555555"
    bic = "BUKBGB22"            # optional
    name = "Fundpool Treasury Ltd"
    pain001 = "pain.001.001.09" # or "pain.001.001.03"
    simulated = true            # the server runs the bank simulator on the exchange

    [channels.recon]
    amount_tolerance = "0.00"   # in the channel's first asset
    days = 2

Any channel may price congestion (channels/congestion.py: an EIP-1559 style base fee added to
its quotes, docs/pool-configuration.md):

    [channels.dynamic_fee]
    base = "0.50"               # the floor and starting base fee, in the channel's asset
    ceiling = "20.00"           # the most the base fee rises to
    target_per_interval = 200   # payments per interval the rail takes without congestion
    interval_s = 10
    max_change = "0.125"        # the most the base fee moves per interval (a share of it)
    windows = [{ from = 9, to = 17, multiplier = "1.5" }]   # hours of the day, UTC
    risk = { review = "1.2", hold = "1.5" }                 # per risk grade

`load_config` checks every reference (a pool's channel, a channel's asset, the reporting
currency) and says which entry is wrong; a bad file changes nothing.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from fractions import Fraction
from pathlib import Path
from typing import Any, TypeVar

from fundpool.core.errors import FundpoolError
from fundpool.core.money import AMOUNT_MAX_MINOR, Asset, AssetKind
from fundpool.pool.rates import StaticRates

ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}\Z")  # one address segment
CONFIG_FILE_BYTES_MAX = 1_000_000
CONFIG_ENV = "FUNDPOOL_CONFIG"
DEFAULT_CONFIG = "fundpool.toml"


# The rail adapters a channel may name (`adapter = "..."`); the composition root builds them.
# The real rails of later work (chains) are added here as they come.
RAIL_ADAPTERS = ("simulated", "iso20022")
ISO20022_ADAPTER = "iso20022"
# What the bank rail writes (channels/iso20022/pain001.py VERSIONS: a test keeps them equal;
# the pool layer may not import the channels').
PAIN001_VERSIONS = ("pain.001.001.09", "pain.001.001.03")
# Kinds whose payouts are bank credit transfers, the only ones a pain.001 carries.
ISO20022_KINDS = frozenset({"bank_wire", "instant_credit"})
# A rail reference "<channel>-<instance>-<n>" is the pain.001's MsgId, at most 35 characters:
# 16 for the channel leaves 10 for the instance and 8 for the counter.
ISO20022_CHANNEL_ID_CHARS_MAX = 16
ACCOUNT_NUMBER_CHARS_MAX = 34  # ISO 20022's Othr/Id (Max34Text), and an IBAN's longest
_LOOKS_LIKE_IBAN = re.compile(r"[A-Z]{2}[0-9]{2}[A-Z0-9]{1,30}\Z")
_CURRENCY_CODE = re.compile(r"[A-Z]{3}\Z")  # ISO 4217: what an ISO 20022 amount carries
RECON_DAYS_DEFAULT = 2
RECON_DAYS_MAX = 31  # a date window wider than a month matches anything with anything


class InvalidConfig(FundpoolError):
    code = "invalid_config"
    title = "the pool configuration is not valid"


class ChannelKind(StrEnum):
    BANK_WIRE = "bank_wire"
    INSTANT_CREDIT = "instant_credit"
    CARD_ACQUIRER = "card_acquirer"
    EVM_L1 = "evm_l1"
    EVM_L2 = "evm_l2"
    STABLECOIN_RAIL = "stablecoin_rail"
    CBDC = "cbdc"
    BOOK = "book"


class OwnerKind(StrEnum):
    COMPANY = "company"
    MERCHANT = "merchant"


@dataclass(frozen=True, slots=True)
class FeeSchedule:
    """What a channel charges per payment in one asset: fixed + basis points of the amount
    (outbound), and basis points of a deposit (inbound)."""

    fixed_minor: int = 0
    bps: int = 0
    inbound_bps: int = 0

    def outbound_fee(self, amount_minor: int) -> int:
        return self.fixed_minor + _bps_of(amount_minor, self.bps)

    def inbound_fee(self, amount_minor: int) -> int:
        return _bps_of(amount_minor, self.inbound_bps)


def _bps_of(amount_minor: int, bps: int) -> int:
    """amount x bps / 10,000, rounded half to even (docs/adr/0006)."""
    quotient, remainder = divmod(amount_minor * bps, 10_000)
    if 2 * remainder > 10_000 or (2 * remainder == 10_000 and quotient % 2 == 1):
        quotient += 1
    return quotient


BPS_MAX = 10_000
BATCH_SIZE_MAX = 10_000


def _minute(text: str) -> int | None:
    match = re.fullmatch(r"([0-2][0-9]):([0-5][0-9])", text)
    if match is None:
        return None
    minute = int(match[1]) * 60 + int(match[2])
    return minute if minute <= MINUTES_PER_DAY else None


def _days(text: str) -> frozenset[int] | None:
    names = [part.strip() for part in text.lower().split(",")]
    days: set[int] = set()
    for name in names:
        first, _, last = name.partition("-")
        if first not in WEEKDAYS or (last and last not in WEEKDAYS):
            return None
        start = WEEKDAYS.index(first)
        end = WEEKDAYS.index(last) if last else start
        if end < start:
            return None
        days.update(range(start, end + 1))
    return frozenset(days)


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MINUTES_PER_DAY = 1_440
_US_PER_SECOND = 1_000_000
_US_PER_MINUTE = 60_000_000
_US_PER_HOUR = 3_600_000_000
_US_PER_DAY = 86_400_000_000


@dataclass(frozen=True, slots=True)
class CutOffWindow:
    """When a rail takes work: on `days` (0 = Monday), from `open_minute` up to, not
    including, `close_minute` (minutes of the day, UTC)."""

    days: frozenset[int]
    open_minute: int
    close_minute: int

    def contains(self, at_us: int) -> bool:
        day = at_us // _US_PER_DAY
        weekday = (day + 3) % 7  # 1970-01-01 was a Thursday
        minute = (at_us // _US_PER_MINUTE) % MINUTES_PER_DAY
        return weekday in self.days and self.open_minute <= minute < self.close_minute

    def next_open_us(self, at_us: int) -> int:
        """The first instant at or after `at_us` inside this window."""
        if self.contains(at_us):
            return at_us
        day = at_us // _US_PER_DAY
        for ahead in range(8):
            start = (day + ahead) * _US_PER_DAY + self.open_minute * _US_PER_MINUTE
            if start >= at_us and (day + ahead + 3) % 7 in self.days:
                return start
        raise AssertionError("a window with at least one day opens within a week")


@dataclass(frozen=True, slots=True)
class Limits:
    min_minor: int = 1
    max_minor: int | None = None


@dataclass(frozen=True, slots=True)
class Depth:
    """How much of one asset a channel should hold available, in minor units: under
    `low_minor` the rail is low (a treasury tops it up), under `min_minor` it is critical (it
    may soon refuse payouts); `target_minor` is what a top-up brings it back to (None: not
    said). Channel health and the alert rules compare the available balance with them."""

    min_minor: int = 0
    low_minor: int = 0
    target_minor: int | None = None


@dataclass(frozen=True, slots=True)
class BankConfig:
    """The pool's account at a bank and the directory of files exchanged with it, for a
    channel carried by the ISO 20022 bank rail (docs/bank-rail.md)."""

    exchange: Path  # as written: relative to the data directory unless absolute
    account: str  # the compact IBAN (checked), or an account number
    name: str  # the account holder's name, the debtor of every pain.001
    bic: str | None = None  # the bank's BIC (checked), when given
    pain001: str = PAIN001_VERSIONS[0]
    simulated: bool = False  # the server runs the bank simulator on the exchange

    def exchange_dir(self, data_dir: Path) -> Path:
        return self.exchange if self.exchange.is_absolute() else data_dir / self.exchange


@dataclass(frozen=True, slots=True)
class ReconTolerance:
    """How far reconciliation lets a match drift on this channel: amounts by at most
    `amount_tolerance_minor` (in the channel's first asset), dates by at most `days`."""

    amount_tolerance_minor: int = 0
    days: int = RECON_DAYS_DEFAULT


# --- dynamic fees (channels/congestion.py prices them; the values and their checks live here,
# with the rest of a channel's configuration, since the pool layer may not import channels') --

# The risk decision's outcomes a routed payment may have had (risk/policy.py `Outcome`, but
# `block`, which is never routed; a test keeps them equal: the pool layer may not import risk).
RISK_GRADES = ("allow", "review", "hold")
DYNAMIC_FEE_TARGET_MAX = 1_000_000  # payments per interval: far above any rail's rate
DYNAMIC_FEE_INTERVAL_S_MAX = 86_400  # a day: a longer interval measures no congestion
FEE_MULTIPLIER_MAX = Fraction(1_000)  # a window's or a risk grade's; anything above is a typo
FEE_WINDOWS_MAX = 24  # at most one per hour of the day
HOURS_PER_DAY = 24
MAX_CHANGE_DEFAULT = Fraction(1, 8)  # EIP-1559's: 12.5 % per interval at most
# A multiplier is decimal text ("1.5"), parsed exactly: never a float.
_MULTIPLIER_TEXT = re.compile(r"[0-9]{1,6}(?:\.[0-9]{1,9})?\Z")


@dataclass(frozen=True, slots=True)
class FeeWindow:
    """Every day, UTC, from `start_hour_utc` up to (not including) `end_hour_utc`, a
    channel's dynamic fee is multiplied by `multiplier`."""

    start_hour_utc: int
    end_hour_utc: int
    multiplier: Fraction

    def contains(self, at_us: int) -> bool:
        hour = (at_us // _US_PER_HOUR) % HOURS_PER_DAY
        return self.start_hour_utc <= hour < self.end_hour_utc


@dataclass(frozen=True, slots=True)
class DynamicFee:
    """A channel's congestion price (channels/congestion.py): a base fee in minor units of
    `asset` that starts at, and never falls under, `base_fee_minor`, moves by at most
    `max_change` of itself per `interval_s` as the payments the rail took in the interval
    are above or below `target_per_interval`, and never passes `ceiling_minor`. A payment in
    `asset` is quoted that base fee times its window's multiplier (none: 1) times its risk
    grade's (none: 1) on top of the rail's own fee."""

    asset: Asset
    base_fee_minor: int
    ceiling_minor: int
    target_per_interval: int
    interval_s: int
    max_change: Fraction = MAX_CHANGE_DEFAULT
    windows: tuple[FeeWindow, ...] = ()  # in order, none overlapping
    risk: Mapping[str, Fraction] = field(default_factory=dict)  # risk grade -> multiplier

    def __post_init__(self) -> None:
        problem = dynamic_fee_problem(self)
        if problem is not None:
            place, detail = problem
            raise InvalidConfig(detail, at=f"DynamicFee.{place}")
        # A copy: the fee must not change because the caller's dict does.
        object.__setattr__(self, "risk", dict(self.risk))

    @property
    def interval_us(self) -> int:
        return self.interval_s * _US_PER_SECOND

    def window_at(self, at_us: int) -> FeeWindow | None:
        for window in self.windows:
            if window.contains(at_us):
                return window
        return None


def _is_count(value: object, low: int, high: int) -> bool:
    return not isinstance(value, bool) and isinstance(value, int) and low <= value <= high


def _multiplier_problem(value: object) -> str | None:
    if not isinstance(value, Fraction) or not 0 < value <= FEE_MULTIPLIER_MAX:
        return f"must be above 0 and at most {FEE_MULTIPLIER_MAX}"
    return None


def dynamic_fee_problem(fee: DynamicFee) -> tuple[str, str] | None:
    """What is wrong with `fee`, as (its key in the configuration file, why), or None: the one
    check, which the parser reports at the key's place in the file."""
    if not isinstance(fee.asset, Asset):
        return "asset", "asset must be an Asset"
    if not _is_count(fee.base_fee_minor, 0, AMOUNT_MAX_MINOR):
        return "base", "base must be an amount of minor units"
    if not _is_count(fee.ceiling_minor, 0, AMOUNT_MAX_MINOR):
        return "ceiling", "ceiling must be an amount of minor units"
    if fee.ceiling_minor < fee.base_fee_minor:
        return "ceiling", "ceiling is below base"
    if not _is_count(fee.target_per_interval, 1, DYNAMIC_FEE_TARGET_MAX):
        return "target_per_interval", \
            f"target_per_interval must be an integer from 1 to {DYNAMIC_FEE_TARGET_MAX}"
    if not _is_count(fee.interval_s, 1, DYNAMIC_FEE_INTERVAL_S_MAX):
        return "interval_s", \
            f"interval_s must be an integer from 1 to {DYNAMIC_FEE_INTERVAL_S_MAX}"
    if not isinstance(fee.max_change, Fraction) or not 0 < fee.max_change <= 1:
        return "max_change", "max_change must be above 0 and at most 1"
    if not isinstance(fee.windows, tuple) or len(fee.windows) > FEE_WINDOWS_MAX:
        return "windows", f"windows must be a tuple of at most {FEE_WINDOWS_MAX}"
    previous_end = 0
    for i, window in enumerate(fee.windows):
        if not isinstance(window, FeeWindow):
            return f"windows[{i}]", "a window must be a FeeWindow"
        if not _is_count(window.start_hour_utc, 0, HOURS_PER_DAY - 1):
            return f"windows[{i}].from", "from must be an hour from 0 to 23 (UTC)"
        if not _is_count(window.end_hour_utc, 1, HOURS_PER_DAY) \
                or window.end_hour_utc <= window.start_hour_utc:
            return f"windows[{i}].to", \
                "to must be an hour from 1 to 24 (UTC), after from (a window over midnight " \
                "is two windows: to 24 and from 0)"
        if window.start_hour_utc < previous_end:
            return f"windows[{i}]", "windows must be in order and must not overlap"
        problem = _multiplier_problem(window.multiplier)
        if problem is not None:
            return f"windows[{i}].multiplier", f"multiplier {problem}"
        previous_end = window.end_hour_utc
    if not isinstance(fee.risk, Mapping):
        return "risk", "risk must map risk grades to multipliers"
    for grade, multiplier in fee.risk.items():
        if grade not in RISK_GRADES:
            return f"risk.{grade}", f"a risk grade is one of {', '.join(RISK_GRADES)}"
        problem = _multiplier_problem(multiplier)
        if problem is not None:
            return f"risk.{grade}", f"multiplier {problem}"
    return None


@dataclass(frozen=True, slots=True)
class ChannelConfig:
    id: str
    kind: ChannelKind
    assets: tuple[str, ...]
    name: str
    fees: Mapping[str, FeeSchedule] = field(default_factory=dict)
    limits: Mapping[str, Limits] = field(default_factory=dict)
    batch_size: int = 1  # the most instructions the rail takes in one submission
    cutoff: tuple[CutOffWindow, ...] = ()  # empty: the rail is always open
    # Overrides of the simulated rail's profile (channels/profiles.py checks them).
    simulation: Mapping[str, Any] = field(default_factory=dict)
    # Per asset; an asset without an entry has no configured depth.
    depth: Mapping[str, Depth] = field(default_factory=dict)
    # Which adapter carries the channel's payments in the server's engine (RAIL_ADAPTERS).
    adapter: str = "simulated"
    bank: BankConfig | None = None  # given exactly when the adapter is "iso20022"
    recon: ReconTolerance = ReconTolerance()
    dynamic_fee: DynamicFee | None = None  # None: the rail's quotes alone

    def fee_schedule(self, asset: str) -> FeeSchedule:
        return self.fees.get(asset, FeeSchedule())

    def limits_for(self, asset: str) -> Limits:
        return self.limits.get(asset, Limits())

    def depth_for(self, asset: str) -> Depth | None:
        return self.depth.get(asset)


@dataclass(frozen=True, slots=True)
class OwnerConfig:
    id: str
    kind: OwnerKind
    name: str


@dataclass(frozen=True, slots=True)
class InstantSettlement:
    """How much the pool may advance to merchants before their deposits settle, per asset:
    in all (`pool_cap_minor`) and per merchant (`merchant_cap_minor`)."""

    pool_cap_minor: int
    merchant_cap_minor: int


@dataclass(frozen=True, slots=True)
class PoolConfig:
    id: str
    name: str
    reporting_currency: str
    channels: tuple[str, ...]
    rates_path: Path | None
    # A payout of at least this amount (minor units, per asset) needs an approver.
    approval_thresholds: Mapping[str, int] = field(default_factory=dict)
    # Per asset; an asset without an entry has no instant settlement for merchants.
    instant_settlement: Mapping[str, InstantSettlement] = field(default_factory=dict)
    # The desk's file: bands, sweeps, credit lines, split rules, FX (fundpool.treasury.config)
    treasury_path: Path | None = None
    rates_url: str | None = None  # a live rate source (pool/rates.py HttpRates) when set

    def approval_required(self, asset: str, amount_minor: int) -> bool:
        threshold = self.approval_thresholds.get(asset)
        return threshold is not None and amount_minor >= threshold


@dataclass(frozen=True, slots=True)
class FundpoolConfig:
    assets: tuple[Asset, ...]
    channels: tuple[ChannelConfig, ...]
    owners: tuple[OwnerConfig, ...]
    pools: tuple[PoolConfig, ...]
    source: str

    def asset(self, code: str) -> Asset:
        for asset in self.assets:
            if asset.code == code:
                return asset
        raise InvalidConfig("no such asset in the configuration", source=self.source, asset=code)

    def channel(self, channel_id: str) -> ChannelConfig:
        for channel in self.channels:
            if channel.id == channel_id:
                return channel
        raise InvalidConfig(
            "no such channel in the configuration", source=self.source, channel=channel_id
        )

    def assets_of(self, pool: PoolConfig) -> dict[str, Asset]:
        """The assets the pool's channels carry, by code."""
        return {code: self.asset(code) for cid in pool.channels
                for code in self.channel(cid).assets}

    def pool(self, pool_id: str | None = None) -> PoolConfig:
        """The pool named `pool_id`, or the only one when None."""
        if pool_id is None:
            if len(self.pools) != 1:
                raise InvalidConfig(
                    "the configuration has several pools: name one",
                    source=self.source,
                    pools=[p.id for p in self.pools],
                )
            return self.pools[0]
        for pool in self.pools:
            if pool.id == pool_id:
                return pool
        raise InvalidConfig("no such pool in the configuration", source=self.source, pool=pool_id)

    def rates_for(self, pool: PoolConfig) -> StaticRates:
        return StaticRates() if pool.rates_path is None else StaticRates.load(pool.rates_path)


def load_config(path: str | Path) -> FundpoolConfig:
    file = Path(path)
    try:
        if file.stat().st_size > CONFIG_FILE_BYTES_MAX:
            raise InvalidConfig("the configuration file is too large", source=str(file))
        document = tomllib.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise InvalidConfig(str(error), source=str(file)) from error
    return parse_config(document, source=str(file), base_dir=file.parent)


def parse_config(
    document: Mapping[str, Any], *, source: str = "config", base_dir: Path | None = None
) -> FundpoolConfig:
    parser = _Parser(source)
    # Unknown keys first: `[[asset]]` for `[[assets]]` is a typo to name, not a missing table.
    unknown = set(document) - {"assets", "channels", "owners", "pools"}
    if unknown:
        raise InvalidConfig("unknown top-level keys", source=source, keys=sorted(unknown))
    assets = tuple(parser.asset(i, e) for i, e in enumerate(parser.tables(document, "assets")))
    parser.unique("assets", [a.code for a in assets])
    by_code = {a.code: a for a in assets}
    channels = tuple(
        parser.channel(i, e, by_code) for i, e in enumerate(parser.tables(document, "channels"))
    )
    parser.unique("channels", [c.id for c in channels])
    owners = tuple(parser.owner(i, e) for i, e in enumerate(parser.tables(document, "owners", 0)))
    parser.unique("owners", [o.id for o in owners])
    channel_ids = {c.id for c in channels}
    pools = tuple(
        parser.pool(i, e, by_code, channel_ids, base_dir)
        for i, e in enumerate(parser.tables(document, "pools"))
    )
    parser.unique("pools", [p.id for p in pools])
    return FundpoolConfig(assets, channels, owners, pools, source)


E = TypeVar("E", bound=StrEnum)

_TYPE_NAMES = {
    str: "a string",
    int: "an integer",
    list: "a list",
    dict: "a table",
    bool: "true or false",
}


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, detail: str) -> InvalidConfig:
        return InvalidConfig(detail, source=self.source, at=where)

    def tables(
        self, document: Mapping[str, Any], name: str, minimum: int = 1
    ) -> list[Mapping[str, Any]]:
        entries = document.get(name, [])
        if not isinstance(entries, list) or not all(isinstance(e, Mapping) for e in entries):
            raise self.fail(name, f"[[{name}]] must be an array of tables")
        if len(entries) < minimum:
            raise self.fail(name, f"at least {minimum} [[{name}]] entry is needed")
        return entries

    def unique(self, name: str, ids: Sequence[str]) -> None:
        seen: set[str] = set()
        for value in ids:
            if value in seen:
                raise self.fail(name, f"{value!r} is declared twice")
            seen.add(value)

    def field(
        self, entry: Mapping[str, Any], where: str, name: str, kind: type, default: Any = ...
    ) -> Any:
        if name not in entry:
            if default is ...:
                raise self.fail(where, f"{name} is required")
            return default
        value = entry[name]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise self.fail(f"{where}.{name}", f"{name} must be {_TYPE_NAMES[kind]}")
        return value

    def known(self, entry: Mapping[str, Any], where: str, names: set[str]) -> None:
        extra = set(entry) - names
        if extra:
            raise self.fail(where, f"unknown keys {sorted(extra)}")

    def choice(self, entry: Mapping[str, Any], where: str, name: str, kind: type[E]) -> E:
        """A field whose value is one of the enumeration `kind`'s values."""
        value = self.field(entry, where, name, str)
        try:
            return kind(value)
        except ValueError:
            raise self.fail(
                f"{where}.{name}", f"{name} is one of {[k.value for k in kind]}"
            ) from None

    def declared_list(
        self,
        entry: Mapping[str, Any],
        where: str,
        name: str,
        declared: Collection[str],
        what: str,
    ) -> list[str]:
        """A non-empty list of distinct `what`s, each one `declared` in the file."""
        values: list[str] = self.field(entry, where, name, list)
        if not values or not all(isinstance(v, str) for v in values):
            raise self.fail(f"{where}.{name}", f"{name} is a non-empty list of {what}s")
        for value in values:
            if value not in declared:
                raise self.fail(f"{where}.{name}", f"{what} {value!r} is not declared")
        self.unique(f"{where}.{name}", values)
        return values

    def ident(self, entry: Mapping[str, Any], where: str) -> str:
        value: str = self.field(entry, where, "id", str)
        if not ID_PATTERN.match(value):
            raise self.fail(
                f"{where}.id", "ids are 1-64 lower-case letters, digits, '_' or '-'"
            )
        return value

    def asset(self, index: int, entry: Mapping[str, Any]) -> Asset:
        where = f"assets[{index}]"
        self.known(entry, where, {"code", "scale", "kind"})
        code = self.field(entry, where, "code", str)
        scale = self.field(entry, where, "scale", int)
        kind = self.choice(entry, where, "kind", AssetKind)
        try:
            return Asset(code, scale, kind)
        except FundpoolError as error:
            raise self.fail(where, error.detail) from error

    def channel(
        self, index: int, entry: Mapping[str, Any], assets_by_code: Mapping[str, Asset]
    ) -> ChannelConfig:
        where = f"channels[{index}]"
        self.known(
            entry,
            where,
            {"id", "kind", "assets", "name", "fees", "limits", "batch_size", "cutoff",
             "simulation", "depth", "adapter", "bank", "recon", "dynamic_fee"},
        )
        channel_id = self.ident(entry, where)
        kind = self.choice(entry, where, "kind", ChannelKind)
        assets = self.declared_list(entry, where, "assets", assets_by_code, "asset")
        name = self.field(entry, where, "name", str, channel_id)
        fees = self.fees(entry, where, assets, assets_by_code)
        limits = self.limits(entry, where, assets, assets_by_code)
        batch_size = self.field(entry, where, "batch_size", int, 1)
        if not 1 <= batch_size <= BATCH_SIZE_MAX:
            raise self.fail(f"{where}.batch_size", f"batch_size is 1 to {BATCH_SIZE_MAX}")
        cutoff = tuple(
            self.window(f"{where}.cutoff[{i}]", w)
            for i, w in enumerate(self.field(entry, where, "cutoff", list, []))
        )
        simulation = self.field(entry, where, "simulation", dict, {})
        depth = self.depth(entry, where, assets, assets_by_code)
        adapter = self.field(entry, where, "adapter", str, "simulated")
        if adapter not in RAIL_ADAPTERS:
            raise self.fail(f"{where}.adapter", f"adapter is one of {', '.join(RAIL_ADAPTERS)}")
        bank = self.bank(entry, where, channel_id, kind, assets, name, adapter)
        recon = self.recon(entry, where, assets_by_code[assets[0]])
        dynamic_fee = self.dynamic_fee(entry, where, assets, assets_by_code)
        return ChannelConfig(
            channel_id, kind, tuple(assets), name, fees, limits, batch_size, cutoff, simulation,
            depth, adapter, bank, recon, dynamic_fee,
        )

    def dynamic_fee(
        self,
        entry: Mapping[str, Any],
        where: str,
        assets: list[str],
        assets_by_code: Mapping[str, Asset],
    ) -> DynamicFee | None:
        """The `dynamic_fee` table: amounts as decimal text in its asset (the channel's only
        one, or the one `asset` names), multipliers as decimal text; `dynamic_fee_problem`
        checks the whole, named at the key at fault."""
        at = f"{where}.dynamic_fee"
        spec = self.field(entry, where, "dynamic_fee", dict, None)
        if spec is None:
            return None
        self.known(spec, at, {"asset", "base", "ceiling", "target_per_interval", "interval_s",
                              "max_change", "windows", "risk"})
        code = self.field(spec, at, "asset", str, None)
        if code is None:
            if len(assets) > 1:
                raise self.fail(f"{at}.asset", "the channel carries several assets: name the "
                                               "one its dynamic fee is in")
            code = assets[0]
        elif code not in assets:
            raise self.fail(f"{at}.asset", f"the channel does not carry {code!r}")
        asset = assets_by_code[code]
        base = self.amount(spec, at, "base", asset)
        ceiling = self.amount(spec, at, "ceiling", asset)
        if base is None or ceiling is None:
            raise self.fail(at, "base and ceiling are both required (decimal text in "
                                f"{code})")
        windows: list[FeeWindow] = []
        for i, window in enumerate(self.field(spec, at, "windows", list, [])):
            place = f"{at}.windows[{i}]"
            if not isinstance(window, Mapping):
                raise self.fail(place, 'a window is { from = 9, to = 17, multiplier = "1.5" } '
                                       "(hours of the day, UTC)")
            self.known(window, place, {"from", "to", "multiplier"})
            windows.append(FeeWindow(self.field(window, place, "from", int),
                                     self.field(window, place, "to", int),
                                     self.multiplier(window, place, "multiplier")))
        risk = self.field(spec, at, "risk", dict, {})
        target = self.field(spec, at, "target_per_interval", int)
        interval_s = self.field(spec, at, "interval_s", int)
        max_change = self.multiplier(spec, at, "max_change", MAX_CHANGE_DEFAULT)
        multipliers = {grade: self.multiplier(risk, f"{at}.risk", grade) for grade in risk}
        try:
            return DynamicFee(asset, base, ceiling, target, interval_s, max_change,
                              tuple(windows), multipliers)
        except InvalidConfig as error:  # `dynamic_fee_problem` names the key at fault
            place = str(error.facts.get("at", "")).removeprefix("DynamicFee.")
            raise self.fail(f"{at}.{place}", error.detail) from None

    def multiplier(self, spec: Mapping[str, Any], at: str, name: str,
                   default: Fraction | None = None) -> Fraction:
        """Decimal text ("1.5"), exact; a TOML float is refused, as money is."""
        if name not in spec and default is not None:
            return default
        text = self.field(spec, at, name, str)
        if not _MULTIPLIER_TEXT.match(text.strip()):
            raise self.fail(f"{at}.{name}", f'{name} is decimal text such as "1.5"')
        return Fraction(text.strip())

    def bank(
        self,
        entry: Mapping[str, Any],
        where: str,
        channel_id: str,
        kind: ChannelKind,
        assets: list[str],
        channel_name: str,
        adapter: str,
    ) -> BankConfig | None:
        """The `bank` table: needed by the iso20022 adapter, refused elsewhere (a bank
        account the engine would never use is a mistake to name)."""
        at = f"{where}.bank"
        spec = self.field(entry, where, "bank", dict, None)
        if adapter != ISO20022_ADAPTER:
            if spec is not None:
                raise self.fail(at, f'a bank table is for adapter = "{ISO20022_ADAPTER}"')
            return None
        if spec is None:
            raise self.fail(at, f'adapter = "{ISO20022_ADAPTER}" needs a [channels.bank] table: '
                                "exchange, account, name")
        if kind not in ISO20022_KINDS:
            raise self.fail(f"{where}.kind", f"the {ISO20022_ADAPTER} adapter carries bank "
                                             f"credit transfers: kind is one of "
                                             f"{sorted(ISO20022_KINDS)}")
        if len(channel_id) > ISO20022_CHANNEL_ID_CHARS_MAX:
            raise self.fail(f"{where}.id", f"the id of an {ISO20022_ADAPTER} channel is at most "
                                           f"{ISO20022_CHANNEL_ID_CHARS_MAX} characters: it "
                                           "goes into every 35-character message id")
        for code in assets:
            if not _CURRENCY_CODE.match(code):
                raise self.fail(f"{where}.assets", f"{code!r} is not an ISO 4217 currency code, "
                                                   "which a pain.001 amount carries")
        self.known(spec, at, {"exchange", "account", "bic", "name", "pain001", "simulated"})
        exchange = self.field(spec, at, "exchange", str)
        if not exchange.strip():
            raise self.fail(f"{at}.exchange", "exchange is a directory path")
        return BankConfig(
            exchange=Path(exchange),
            account=self.bank_account(spec, at),
            name=self.holder_name(spec, at, channel_name),
            bic=self.bic(spec, at),
            pain001=self.pain001(spec, at),
            simulated=self.field(spec, at, "simulated", bool, False),
        )

    def bank_account(self, spec: Mapping[str, Any], at: str) -> str:
        """A compact IBAN when it looks like one (and it must then be one), else an account
        number as ISO 20022 carries it."""
        account: str = self.field(spec, at, "account", str)
        compact = "".join(account.split()).upper()
        if _LOOKS_LIKE_IBAN.match(compact):
            # schwifty loads here, with a bank table: 50 ms every other command never pays.
            from schwifty import IBAN
            from schwifty.exceptions import SchwiftyException

            try:
                return str(IBAN(compact).compact)
            except SchwiftyException as error:
                raise self.fail(f"{at}.account", f"{account!r} is not a valid IBAN: {error}"
                                ) from None
        other = account.strip()
        if not other or len(other) > ACCOUNT_NUMBER_CHARS_MAX or not other.isprintable():
            raise self.fail(f"{at}.account", "account is an IBAN or an account number of 1 to "
                                             f"{ACCOUNT_NUMBER_CHARS_MAX} printable characters")
        return other

    def holder_name(self, spec: Mapping[str, Any], at: str, default: str) -> str:
        name: str = self.field(spec, at, "name", str, default)
        if not name.strip() or not name.isprintable():
            raise self.fail(f"{at}.name", "name is the account holder's name: printable text")
        return name.strip()

    def bic(self, spec: Mapping[str, Any], at: str) -> str | None:
        text: str | None = self.field(spec, at, "bic", str, None)
        if text is None:
            return None
        from schwifty import BIC
        from schwifty.exceptions import SchwiftyException

        try:
            return str(BIC(text.strip()).compact)
        except SchwiftyException as error:
            raise self.fail(f"{at}.bic", f"{text!r} is not a valid BIC: {error}") from None

    def pain001(self, spec: Mapping[str, Any], at: str) -> str:
        version: str = self.field(spec, at, "pain001", str, PAIN001_VERSIONS[0])
        if version not in PAIN001_VERSIONS:
            raise self.fail(f"{at}.pain001", f"pain001 is one of {', '.join(PAIN001_VERSIONS)}")
        return version

    def recon(self, entry: Mapping[str, Any], where: str, first: Asset) -> ReconTolerance:
        """`{ amount_tolerance, days }`: decimal text in the channel's first asset, and whole
        days; 0 and 2 when not said."""
        at = f"{where}.recon"
        spec = self.field(entry, where, "recon", dict, None)
        if spec is None:
            return ReconTolerance()
        self.known(spec, at, {"amount_tolerance", "days"})
        tolerance = self.amount(spec, at, "amount_tolerance", first)
        days = self.field(spec, at, "days", int, RECON_DAYS_DEFAULT)
        if not 0 <= days <= RECON_DAYS_MAX:
            raise self.fail(f"{at}.days", f"days is 0 to {RECON_DAYS_MAX}")
        return ReconTolerance(0 if tolerance is None else tolerance, days)

    def depth(
        self,
        entry: Mapping[str, Any],
        where: str,
        assets: list[str],
        assets_by_code: Mapping[str, Asset],
    ) -> dict[str, Depth]:
        """Per asset `{ min_depth, low_depth, target_depth }`, decimal text in the asset's
        units; at least one of min_depth and low_depth, min <= low <= target."""
        depths: dict[str, Depth] = {}
        for code, spec in self.field(entry, where, "depth", dict, {}).items():
            at = f"{where}.depth.{code}"
            if code not in assets:
                raise self.fail(at, f"the channel does not carry {code!r}")
            if not isinstance(spec, Mapping):
                raise self.fail(at, "depth is a table: { min_depth, low_depth, target_depth } "
                                    "as decimal text")
            self.known(spec, at, {"min_depth", "low_depth", "target_depth"})
            asset = assets_by_code[code]
            low = self.amount(spec, at, "low_depth", asset)
            minimum = self.amount(spec, at, "min_depth", asset)
            target = self.amount(spec, at, "target_depth", asset)
            if low is None and minimum is None:
                raise self.fail(at, "give min_depth (critical under it), low_depth (low under "
                                    "it) or both")
            minimum = 0 if minimum is None else minimum
            low = minimum if low is None else low
            if low < minimum:
                raise self.fail(at, "low_depth is below min_depth")
            if target is not None and target < low:
                raise self.fail(at, "target_depth is below low_depth")
            depths[code] = Depth(minimum, low, target)
        return depths

    def amount(self, spec: Mapping[str, Any], at: str, name: str, asset: Asset) -> int | None:
        text = self.field(spec, at, name, str, None)
        if text is None:
            return None
        try:
            return asset.parse(text)
        except FundpoolError as error:
            raise self.fail(f"{at}.{name}", str(error)) from error

    def limits(
        self,
        entry: Mapping[str, Any],
        where: str,
        assets: list[str],
        assets_by_code: Mapping[str, Asset],
    ) -> dict[str, Limits]:
        limits: dict[str, Limits] = {}
        for code, spec in self.field(entry, where, "limits", dict, {}).items():
            at = f"{where}.limits.{code}"
            if code not in assets:
                raise self.fail(at, f"the channel does not carry {code!r}")
            if not isinstance(spec, Mapping):
                raise self.fail(at, "limits are a table: { min, max } as decimal text")
            self.known(spec, at, {"min", "max"})
            low = self.amount(spec, at, "min", assets_by_code[code])
            high = self.amount(spec, at, "max", assets_by_code[code])
            low = 1 if low is None or low == 0 else low
            if high is not None and high < low:
                raise self.fail(at, "max is below min")
            limits[code] = Limits(low, high)
        return limits

    def window(self, at: str, spec: object) -> CutOffWindow:
        if not isinstance(spec, Mapping):
            raise self.fail(at, 'a cut-off window is { days = "mon-fri", open = "08:00", '
                            'close = "17:30" } (UTC)')
        self.known(spec, at, {"days", "open", "close"})
        days = _days(self.field(spec, at, "days", str, "mon-sun"))
        opens = _minute(self.field(spec, at, "open", str, "00:00"))
        closes = _minute(self.field(spec, at, "close", str, "24:00"))
        if days is None:
            raise self.fail(f"{at}.days", 'days are a range "mon-fri" or a list "mon,wed,fri"')
        if opens is None or closes is None or opens >= closes:
            raise self.fail(at, "open and close are HH:MM (UTC), open before close")
        return CutOffWindow(days, opens, closes)

    def fees(
        self,
        entry: Mapping[str, Any],
        where: str,
        assets: list[str],
        assets_by_code: Mapping[str, Asset],
    ) -> dict[str, FeeSchedule]:
        table = self.field(entry, where, "fees", dict, {})
        schedules: dict[str, FeeSchedule] = {}
        for code, spec in table.items():
            at = f"{where}.fees.{code}"
            if code not in assets:
                raise self.fail(at, f"the channel does not carry {code!r}")
            if not isinstance(spec, Mapping):
                raise self.fail(at, "a fee schedule is a table: { fixed, bps, inbound_bps }")
            self.known(spec, at, {"fixed", "bps", "inbound_bps"})
            try:
                fixed = assets_by_code[code].parse(self.field(spec, at, "fixed", str, "0"))
            except FundpoolError as error:
                raise self.fail(f"{at}.fixed", str(error)) from error
            bps = self.field(spec, at, "bps", int, 0)
            inbound = self.field(spec, at, "inbound_bps", int, 0)
            if not (0 <= bps <= BPS_MAX and 0 <= inbound <= BPS_MAX):
                raise self.fail(at, f"basis points are 0 to {BPS_MAX}")
            schedules[code] = FeeSchedule(fixed, bps, inbound)
        return schedules

    def owner(self, index: int, entry: Mapping[str, Any]) -> OwnerConfig:
        where = f"owners[{index}]"
        self.known(entry, where, {"id", "kind", "name"})
        owner_id = self.ident(entry, where)
        kind = self.choice(entry, where, "kind", OwnerKind)
        return OwnerConfig(owner_id, kind, self.field(entry, where, "name", str, owner_id))

    def pool(
        self,
        index: int,
        entry: Mapping[str, Any],
        assets_by_code: Mapping[str, Asset],
        channel_ids: set[str],
        base_dir: Path | None,
    ) -> PoolConfig:
        where = f"pools[{index}]"
        self.known(
            entry,
            where,
            {"id", "name", "reporting_currency", "channels", "rates", "rates_url",
             "approval_thresholds", "instant_settlement", "treasury"},
        )
        pool_id = self.ident(entry, where)
        reporting = self.field(entry, where, "reporting_currency", str)
        if reporting not in assets_by_code:
            raise self.fail(
                f"{where}.reporting_currency", f"asset {reporting!r} is not declared"
            )
        channels = self.declared_list(entry, where, "channels", channel_ids, "channel")
        rates = self.field(entry, where, "rates", str, None)
        rates_path = None
        if rates is not None:
            rates_path = Path(rates) if base_dir is None else base_dir / rates
        rates_url = self.field(entry, where, "rates_url", str, None)
        if rates_url is not None and not rates_url.startswith(("http://", "https://")):
            raise self.fail(f"{where}.rates_url", "an http:// or https:// URL")
        treasury = self.field(entry, where, "treasury", str, None)
        treasury_path = None
        if treasury is not None:
            treasury_path = Path(treasury) if base_dir is None else base_dir / treasury
        thresholds: dict[str, int] = {}
        for code, text in self.field(entry, where, "approval_thresholds", dict, {}).items():
            at = f"{where}.approval_thresholds.{code}"
            if code not in assets_by_code or not isinstance(text, str):
                raise self.fail(at, "thresholds are decimal text per declared asset code")
            try:
                thresholds[code] = assets_by_code[code].parse(text)
            except FundpoolError as error:
                raise self.fail(at, str(error)) from error
        instant: dict[str, InstantSettlement] = {}
        for code, spec in self.field(entry, where, "instant_settlement", dict, {}).items():
            at = f"{where}.instant_settlement.{code}"
            if code not in assets_by_code or not isinstance(spec, Mapping):
                raise self.fail(
                    at, "instant settlement is { pool_cap, merchant_cap } per declared asset"
                )
            self.known(spec, at, {"pool_cap", "merchant_cap"})
            pool_cap = self.amount(spec, at, "pool_cap", assets_by_code[code])
            merchant_cap = self.amount(spec, at, "merchant_cap", assets_by_code[code])
            if pool_cap is None or merchant_cap is None:
                raise self.fail(at, "pool_cap and merchant_cap are both required")
            instant[code] = InstantSettlement(pool_cap, min(merchant_cap, pool_cap))
        return PoolConfig(
            pool_id,
            self.field(entry, where, "name", str, pool_id),
            reporting,
            tuple(channels),
            rates_path,
            thresholds,
            instant,
            treasury_path,
            rates_url,
        )
