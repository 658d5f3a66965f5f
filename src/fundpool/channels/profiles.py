"""How a simulated rail behaves: its latencies, failures, returns, settlement cycle and fees,
per channel kind, with the overrides a channel's `simulation` table may set.

A profile is what the simulated rail (channels/simulated.py) draws from, so a demo or a load
test sees rails that differ the way real ones do: a bank wire acknowledges a file within
minutes and settles within hours; an instant credit settles in seconds with no notice before;
a card acquirer captures at once and funds T+2; a chain settles after its confirmations.

Latency is lognormal (median and sigma), since processing times are positive and long-tailed.
On a chain the draw is the wait before the block that includes the transaction; settlement
then takes `confirmations` blocks of `block_time_us` each.

The default figures per kind (latency median / sigma; cleared notice; failure; returns; cycle):

| kind            | latency     | cleared    | fail | return (after) | settlement          |
|-----------------|-------------|------------|------|----------------|---------------------|
| bank_wire       | 2 h / 0.9   | yes, 5 min | 2%   | 0.5% (2 days)  | same day            |
| instant_credit  | 2 s / 0.5   | no         | 1%   | 0.1% (5 days)  | same day            |
| card_acquirer   | 3 s / 0.6   | yes, 1 s   | 5%   | 0.5% (30 days) | T+2 (*)             |
| evm_l1          | 9 s / 0.7   | 1st block  | 0.5% | none           | 12 blocks of 12 s   |
| evm_l2          | 0.5 s / 0.5 | 1st block  | 0.3% | none           | 20 blocks of 0.25 s |
| stablecoin_rail | 2 s / 0.5   | 1st block  | 0.5% | none           | 19 blocks of 3 s    |
| cbdc            | 1 s / 0.4   | no         | 0.2% | none           | same day            |
| book            | 2 ms / 0.3  | no         | 0    | none           | same day            |

(*) an inbound capture is cleared on receipt and settled two days later; Tron-style rails are
solid after 19 blocks (two thirds of 27 block producers, plus one).

A rail quotes a success probability of 1 - failure rate unless `success_probability_quoted`
says otherwise: a rail's claim and its real record may differ, and routing has to learn that.
The chaos knobs (`duplicate_rate`, `out_of_order_rate`, `late_rate`) are 0 by default: they are
for tests and simulations that want a rail's messiness on purpose. Fee models per kind are
described in channels/fees.py.

Overrides, in a channel's `simulation` table. Every key must be one of these, with its type,
or the configuration is refused (`invalid_config`, `at = "channels.<id>.simulation.<key>"`):

| key                          | type                                | meaning                  |
|------------------------------|-------------------------------------|--------------------------|
| `latency_median_ms`          | number > 0, milliseconds            | median processing time   |
| `latency_sigma`              | number 0..3                         | lognormal sigma          |
| `sends_cleared`              | true/false                          | a cleared notice first   |
| `cleared_after_ms`           | number >= 0, milliseconds           | time to that notice      |
| `failure_rate`               | number 0..1                         | share that fails         |
| `return_rate`                | number 0..1                         | share of settled returned |
| `return_delay_days`          | number >= 0, days                   | settlement to return     |
| `settlement_days`            | integer 0..30                       | T+N                      |
| `inbound_clears_at_once`     | true/false                          | inbound cleared on receipt |
| `confirmations`              | integer 0..1000                     | blocks until settled     |
| `block_time_ms`              | number > 0, milliseconds            | time per block           |
| `success_probability_quoted` | number 0..1                         | what the rail claims     |
| `duplicate_rate`             | number 0..1                         | outcomes delivered twice |
| `duplicate_delay_ms`         | number >= 0, milliseconds           | gap before the repeat    |
| `out_of_order_rate`          | number 0..1                         | settled before cleared   |
| `late_rate`                  | number 0..1                         | outcomes delivered late  |
| `late_ms`                    | number >= 0, milliseconds           | by how much              |
| `fees`                       | table per asset code (below)        | the rail's fee model     |

Times are whole or fractional milliseconds or days and become whole microseconds (rounded
half to even, exactly). `fees.<ASSET>` sets the fee model of one of the channel's assets:
`model` is one of `bank_file` (`per_file`, `per_item`), `utxo` (`overhead_bytes`,
`input_bytes`, `output_bytes`, `inputs_per_payment`, `fee_rate` per byte), `evm_gas`
(`gas_single`, `gas_batch_base`, `gas_batch_per_item`, `gas_price` per gas) or `flat`
(`per_item`). Money is decimal text in the asset, parsed exactly (`"2.50"` USD, `"0.00007"`
USDT); counts of bytes and gas are integers. Without `model`, the keys given change the default
model's figures; with another model, all of its figures are required.

    simulation = { failure_rate = 0.1, settlement_days = 1,
                   fees = { USD = { per_file = "5.00" } } }
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from fractions import Fraction
from typing import Any

from fundpool.channels.fees import BankFileFee, EvmGasFee, FeeModel, FlatFee, UtxoFee
from fundpool.core.errors import FundpoolError
from fundpool.core.money import Asset, AssetKind
from fundpool.pool.config import ChannelConfig, ChannelKind, FeeSchedule, InvalidConfig

US_PER_MS = 1_000
US_PER_SECOND = 1_000_000
US_PER_DAY = 86_400_000_000
DURATION_US_MAX = 400 * US_PER_DAY  # no rail takes longer than this for anything
LATENCY_SIGMA_MAX = 3.0  # beyond this a lognormal's tail is no longer a latency model
SETTLEMENT_DAYS_MAX = 30
CONFIRMATIONS_MAX = 1_000
FEE_UNITS_MAX = 100_000_000  # bytes or gas per item or per batch

CHAIN_KINDS = frozenset({ChannelKind.EVM_L1, ChannelKind.EVM_L2, ChannelKind.STABLECOIN_RAIL})


@dataclass(frozen=True, slots=True)
class RailProfile:
    """How one simulated rail behaves. Times are whole microseconds; rates are shares 0..1."""

    kind: ChannelKind
    latency_median_us: int
    latency_sigma: float
    sends_cleared: bool  # a `cleared` notice comes before `settled`
    cleared_after_us: int  # from submission to the cleared notice (capped at settlement)
    failure_rate: float
    return_rate: float  # of the settled, the share that comes back
    return_delay_us: int  # from settlement to the return
    settlement_days: int = 0  # T+N: whole days added to settlement
    inbound_clears_at_once: bool = False  # a card capture: cleared on receipt, settled T+N
    confirmations: int = 0  # chains: blocks until settled
    block_time_us: int = 0  # chains: time per block
    success_probability_quoted: float | None = None  # None: 1 - failure_rate
    duplicate_rate: float = 0.0
    duplicate_delay_us: int = 5 * US_PER_SECOND
    out_of_order_rate: float = 0.0
    late_rate: float = 0.0
    late_us: int = 60 * US_PER_SECOND
    # Per asset code; an asset without one gets its kind's default (`default_fee_model`).
    fee_models: Mapping[str, FeeModel] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        for name, check in _FIELD_CHECKS.items():
            problem = check(getattr(self, name))
            if problem is not None:
                raise InvalidConfig(f"{name} {problem}", at=f"RailProfile.{name}")
        if self.kind in CHAIN_KINDS and self.confirmations > 0 and self.block_time_us <= 0:
            raise InvalidConfig("a chain with confirmations needs a block time",
                                at="RailProfile.block_time_us")
        # A copy: the profile must not change because the caller's dict does.
        object.__setattr__(self, "fee_models", dict(self.fee_models))

    @property
    def is_chain(self) -> bool:
        return self.kind in CHAIN_KINDS

    @property
    def quoted_success_probability(self) -> float:
        if self.success_probability_quoted is not None:
            return self.success_probability_quoted
        return 1.0 - self.failure_rate

    @property
    def latency_mean_us(self) -> int:
        """The mean of the lognormal processing time: median x exp(sigma^2 / 2)."""
        return round(self.latency_median_us * math.exp(self.latency_sigma**2 / 2))

    def expected_latency_us(self) -> int:
        """Expected time from submission to settlement of an outbound payment: the processing
        time, plus a chain's confirmations, plus the T+N cycle."""
        chain_us = self.confirmations * self.block_time_us if self.is_chain else 0
        return self.latency_mean_us + chain_us + self.settlement_days * US_PER_DAY


# --- checks shared by the dataclass and the override parser -----------------------------------


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _rate_problem(value: object) -> str | None:
    if not _is_number(value) or not math.isfinite(value) or not 0 <= value <= 1:  # type: ignore[arg-type,operator]
        return "must be a number from 0 to 1"
    return None


def _optional_rate_problem(value: object) -> str | None:
    return None if value is None else _rate_problem(value)


def _count_problem(low: int, high: int) -> Callable[[object], str | None]:
    def problem(value: object) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            return f"must be an integer from {low} to {high}"
        return None

    return problem


def _sigma_problem(value: object) -> str | None:
    if not _is_number(value) or not 0 <= value <= LATENCY_SIGMA_MAX:  # type: ignore[operator]
        return f"must be a number from 0 to {LATENCY_SIGMA_MAX}"
    return None


def _bool_problem(value: object) -> str | None:
    return None if isinstance(value, bool) else "must be true or false"


def _kind_problem(value: object) -> str | None:
    return None if isinstance(value, ChannelKind) else "must be a ChannelKind"


def _fee_models_problem(value: object) -> str | None:
    return None if isinstance(value, Mapping) else "must map asset codes to fee models"


_FIELD_CHECKS: dict[str, Callable[[object], str | None]] = {
    "kind": _kind_problem,
    "latency_median_us": _count_problem(1, DURATION_US_MAX),
    "latency_sigma": _sigma_problem,
    "sends_cleared": _bool_problem,
    "cleared_after_us": _count_problem(0, DURATION_US_MAX),
    "failure_rate": _rate_problem,
    "return_rate": _rate_problem,
    "return_delay_us": _count_problem(0, DURATION_US_MAX),
    "settlement_days": _count_problem(0, SETTLEMENT_DAYS_MAX),
    "inbound_clears_at_once": _bool_problem,
    "confirmations": _count_problem(0, CONFIRMATIONS_MAX),
    "block_time_us": _count_problem(0, DURATION_US_MAX),
    "success_probability_quoted": _optional_rate_problem,
    "duplicate_rate": _rate_problem,
    "duplicate_delay_us": _count_problem(0, DURATION_US_MAX),
    "out_of_order_rate": _rate_problem,
    "late_rate": _rate_problem,
    "late_us": _count_problem(0, DURATION_US_MAX),
    "fee_models": _fee_models_problem,
}
if set(_FIELD_CHECKS) != {f.name for f in fields(RailProfile)}:  # pragma: no cover
    raise AssertionError("every RailProfile field needs a check")


# --- defaults per kind -------------------------------------------------------------------------

DEFAULT_PROFILES: Mapping[ChannelKind, RailProfile] = {
    # A bank's bulk credit transfer: the file is acknowledged within minutes (pain.002), items
    # are booked within hours, a few are rejected (wrong or closed account) and some come back
    # days later (returns, R-transactions).
    ChannelKind.BANK_WIRE: RailProfile(
        ChannelKind.BANK_WIRE,
        latency_median_us=2 * 3_600 * US_PER_SECOND,
        latency_sigma=0.9,
        sends_cleared=True,
        cleared_after_us=300 * US_PER_SECOND,
        failure_rate=0.02,
        return_rate=0.005,
        return_delay_us=2 * US_PER_DAY,
    ),
    # RTP, SEPA Instant: final in seconds, no notice before; a recall is rare and slow.
    ChannelKind.INSTANT_CREDIT: RailProfile(
        ChannelKind.INSTANT_CREDIT,
        latency_median_us=2 * US_PER_SECOND,
        latency_sigma=0.5,
        sends_cleared=False,
        cleared_after_us=0,
        failure_rate=0.01,
        return_rate=0.001,
        return_delay_us=5 * US_PER_DAY,
    ),
    # Authorisation and capture in seconds; the acquirer funds (and debits refunds) in its T+2
    # settlement cycle; declines are common; chargebacks arrive weeks later.
    ChannelKind.CARD_ACQUIRER: RailProfile(
        ChannelKind.CARD_ACQUIRER,
        latency_median_us=3 * US_PER_SECOND,
        latency_sigma=0.6,
        sends_cleared=True,
        cleared_after_us=1 * US_PER_SECOND,
        failure_rate=0.05,
        return_rate=0.005,
        return_delay_us=30 * US_PER_DAY,
        settlement_days=2,
        inbound_clears_at_once=True,
    ),
    # Ethereum: 12-second slots, 12 confirmations; a transfer is never returned by the chain.
    ChannelKind.EVM_L1: RailProfile(
        ChannelKind.EVM_L1,
        latency_median_us=9 * US_PER_SECOND,
        latency_sigma=0.7,
        sends_cleared=True,
        cleared_after_us=0,
        failure_rate=0.005,
        return_rate=0.0,
        return_delay_us=0,
        confirmations=12,
        block_time_us=12 * US_PER_SECOND,
    ),
    # An optimistic rollup: quarter-second blocks from the sequencer.
    ChannelKind.EVM_L2: RailProfile(
        ChannelKind.EVM_L2,
        latency_median_us=500 * US_PER_MS,
        latency_sigma=0.5,
        sends_cleared=True,
        cleared_after_us=0,
        failure_rate=0.003,
        return_rate=0.0,
        return_delay_us=0,
        confirmations=20,
        block_time_us=250 * US_PER_MS,
    ),
    # Tron-style: 3-second blocks, solid after 19 (two thirds of 27 producers, plus one).
    ChannelKind.STABLECOIN_RAIL: RailProfile(
        ChannelKind.STABLECOIN_RAIL,
        latency_median_us=2 * US_PER_SECOND,
        latency_sigma=0.5,
        sends_cleared=True,
        cleared_after_us=0,
        failure_rate=0.005,
        return_rate=0.0,
        return_delay_us=0,
        confirmations=19,
        block_time_us=3 * US_PER_SECOND,
    ),
    # A retail CBDC (e-CNY style): wallet to wallet in about a second, final, rarely refused.
    ChannelKind.CBDC: RailProfile(
        ChannelKind.CBDC,
        latency_median_us=1 * US_PER_SECOND,
        latency_sigma=0.4,
        sends_cleared=False,
        cleared_after_us=0,
        failure_rate=0.002,
        return_rate=0.0,
        return_delay_us=0,
    ),
    # The pool's own books: milliseconds, never refused by the rail itself.
    ChannelKind.BOOK: RailProfile(
        ChannelKind.BOOK,
        latency_median_us=2 * US_PER_MS,
        latency_sigma=0.3,
        sends_cleared=False,
        cleared_after_us=0,
        failure_rate=0.0,
        return_rate=0.0,
        return_delay_us=0,
    ),
}


def default_profile(kind: ChannelKind) -> RailProfile:
    return DEFAULT_PROFILES[ChannelKind(kind)]


def _units(asset: Asset, numerator: int, denominator: int) -> int:
    """numerator / denominator units of `asset` in its minor units, rounded up: a default
    figure too fine for the asset's scale costs one minor unit rather than nothing."""
    unit: int = 10**asset.scale
    return -(-numerator * unit // denominator)


# Gas prices, in units of the asset per gas, as (numerator, denominator): see fees.py.
_NATIVE_GAS_PRICE = {ChannelKind.EVM_L1: (40, 10**9), ChannelKind.EVM_L2: (12, 10**10)}
_TOKEN_GAS_PRICE = {
    ChannelKind.EVM_L1: (7, 10**5),
    ChannelKind.EVM_L2: (2, 10**6),
    ChannelKind.STABLECOIN_RAIL: (15, 10**6),
}
GAS_NATIVE_TRANSFER = 21_000
GAS_TOKEN_TRANSFER = 65_000
GAS_BATCH_BASE = 24_000
GAS_BATCH_PER_NATIVE = 13_000
GAS_BATCH_PER_TOKEN = 36_000


def default_fee_model(kind: ChannelKind, asset: Asset, schedule: FeeSchedule) -> FeeModel:
    """The rail's fee model for one asset by default (the figures are explained in fees.py).
    On an EVM chain an asset of kind crypto is taken to be the chain's native coin and any
    other asset a token; on a stablecoin rail every asset is a token."""
    kind = ChannelKind(kind)
    if kind is ChannelKind.BANK_WIRE:
        return BankFileFee(_units(asset, 5, 2), schedule.fixed_minor)
    if kind in CHAIN_KINDS:
        if kind in _NATIVE_GAS_PRICE and asset.kind is AssetKind.CRYPTO:
            return EvmGasFee(
                GAS_NATIVE_TRANSFER, GAS_BATCH_BASE, GAS_BATCH_PER_NATIVE,
                _units(asset, *_NATIVE_GAS_PRICE[kind]),
            )
        return EvmGasFee(
            GAS_TOKEN_TRANSFER, GAS_BATCH_BASE, GAS_BATCH_PER_TOKEN,
            _units(asset, *_TOKEN_GAS_PRICE[kind]),
        )
    return FlatFee(schedule.fixed_minor)


# --- overrides ---------------------------------------------------------------------------------

Converter = Callable[[object, str], Any]


def _refuse(at: str, detail: str) -> InvalidConfig:
    return InvalidConfig(detail, at=at)


def _checked(check: Callable[[object], str | None]) -> Converter:
    def convert(value: object, at: str) -> object:
        problem = check(value)
        if problem is not None:
            raise _refuse(at, f"{at.rsplit('.', 1)[-1]} {problem}")
        return value

    return convert


def _rate(value: object, at: str) -> float:
    _checked(_rate_problem)(value, at)
    return float(value)  # type: ignore[arg-type]


def _duration(unit_us: int, *, positive: bool) -> Converter:
    """A number of milliseconds or days, as whole microseconds (exact, half to even)."""

    def convert(value: object, at: str) -> int:
        name = at.rsplit(".", 1)[-1]
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(
            value
        ):
            raise _refuse(at, f"{name} must be a number")
        micros = round(Fraction(value) * unit_us)
        low = 1 if positive else 0
        if not low <= micros <= DURATION_US_MAX:
            raise _refuse(
                at, f"{name} must be {'above' if positive else 'at least'} 0 and at most 400 days"
            )
        return micros

    return convert


def _sigma(value: object, at: str) -> float:
    _checked(_sigma_problem)(value, at)
    return float(value)  # type: ignore[arg-type]


_OVERRIDES: dict[str, tuple[str, Converter]] = {
    "latency_median_ms": ("latency_median_us", _duration(US_PER_MS, positive=True)),
    "latency_sigma": ("latency_sigma", _sigma),
    "sends_cleared": ("sends_cleared", _checked(_bool_problem)),
    "cleared_after_ms": ("cleared_after_us", _duration(US_PER_MS, positive=False)),
    "failure_rate": ("failure_rate", _rate),
    "return_rate": ("return_rate", _rate),
    "return_delay_days": ("return_delay_us", _duration(US_PER_DAY, positive=False)),
    "settlement_days": ("settlement_days", _checked(_count_problem(0, SETTLEMENT_DAYS_MAX))),
    "inbound_clears_at_once": ("inbound_clears_at_once", _checked(_bool_problem)),
    "confirmations": ("confirmations", _checked(_count_problem(0, CONFIRMATIONS_MAX))),
    "block_time_ms": ("block_time_us", _duration(US_PER_MS, positive=True)),
    "success_probability_quoted": ("success_probability_quoted", _rate),
    "duplicate_rate": ("duplicate_rate", _rate),
    "duplicate_delay_ms": ("duplicate_delay_us", _duration(US_PER_MS, positive=False)),
    "out_of_order_rate": ("out_of_order_rate", _rate),
    "late_rate": ("late_rate", _rate),
    "late_ms": ("late_us", _duration(US_PER_MS, positive=False)),
}
OVERRIDE_KEYS = (*_OVERRIDES, "fees")

_MONEY = "money"
_COUNT = "count"
# Per model: its name in the override table, and its override keys -> (field, kind of value).
_FEE_MODELS: dict[str, tuple[type, dict[str, tuple[str, str]]]] = {
    "bank_file": (
        BankFileFee,
        {"per_file": ("per_file_minor", _MONEY), "per_item": ("per_item_minor", _MONEY)},
    ),
    "utxo": (
        UtxoFee,
        {
            "overhead_bytes": ("overhead_bytes", _COUNT),
            "input_bytes": ("input_bytes", _COUNT),
            "output_bytes": ("output_bytes", _COUNT),
            "inputs_per_payment": ("inputs_per_payment", _COUNT),
            "fee_rate": ("rate_minor_per_byte", _MONEY),
        },
    ),
    "evm_gas": (
        EvmGasFee,
        {
            "gas_single": ("gas_single", _COUNT),
            "gas_batch_base": ("gas_batch_base", _COUNT),
            "gas_batch_per_item": ("gas_batch_per_item", _COUNT),
            "gas_price": ("gas_price_minor", _MONEY),
        },
    ),
    "flat": (FlatFee, {"per_item": ("per_item_minor", _MONEY)}),
}


def assets_by_code(assets: Mapping[str, Asset] | Iterable[Asset]) -> dict[str, Asset]:
    """Assets keyed by code, from a mapping or from a sequence such as `config.assets`."""
    if isinstance(assets, Mapping):
        return dict(assets)
    return {asset.code: asset for asset in assets}


def profile_for(
    channel: ChannelConfig, assets: Mapping[str, Asset] | Iterable[Asset]
) -> RailProfile:
    """The channel's kind's default profile with its `simulation` overrides applied, and a fee
    model for each of its assets. Raises `InvalidConfig` naming the override that is wrong."""
    by_code = assets_by_code(assets)
    missing = [code for code in channel.assets if code not in by_code]
    if missing:
        raise _refuse(f"channels.{channel.id}.assets", f"assets not defined: {missing}")
    where = f"channels.{channel.id}.simulation"
    overrides = channel.simulation
    if not isinstance(overrides, Mapping):
        raise _refuse(where, "simulation is a table of overrides")
    changes: dict[str, Any] = {}
    for key, value in overrides.items():
        if key == "fees":
            continue
        if key not in _OVERRIDES:
            raise _refuse(
                f"{where}.{key}", f"unknown simulation key {key!r}; known: {list(OVERRIDE_KEYS)}"
            )
        name, convert = _OVERRIDES[key]
        changes[name] = convert(value, f"{where}.{key}")
    models: dict[str, FeeModel] = {
        code: default_fee_model(channel.kind, by_code[code], channel.fee_schedule(code))
        for code in channel.assets
    }
    fee_table = overrides.get("fees", {})
    if not isinstance(fee_table, Mapping):
        raise _refuse(f"{where}.fees", "fees is a table per asset code")
    for code, spec in fee_table.items():
        at = f"{where}.fees.{code}"
        if code not in channel.assets:
            raise _refuse(at, f"the channel does not carry {code!r}")
        models[code] = _fee_override(spec, at, models[code], by_code[code])
    try:
        return replace(default_profile(channel.kind), fee_models=models, **changes)
    except InvalidConfig as error:  # a combination of overrides that does not hold together
        raise _refuse(where, error.detail) from error


def _model_name(model: FeeModel) -> str | None:
    for name, (cls, _) in _FEE_MODELS.items():
        if type(model) is cls:
            return name
    return None


def _fee_override(spec: object, at: str, current: FeeModel, asset: Asset) -> FeeModel:
    if not isinstance(spec, Mapping):
        raise _refuse(at, "a fee model is a table: { model = \"...\", its figures }")
    name = spec.get("model", _model_name(current))
    if not isinstance(name, str) or name not in _FEE_MODELS:
        raise _refuse(f"{at}.model", f"model is one of {list(_FEE_MODELS)}")
    cls, params = _FEE_MODELS[name]
    for key in spec:
        if key != "model" and key not in params:
            raise _refuse(f"{at}.{key}", f"unknown key for model {name!r}; known: {list(params)}")
    values: dict[str, int] = {}
    if type(current) is cls:
        values = {attribute: getattr(current, attribute) for attribute, _ in params.values()}
    for key, (attribute, value_kind) in params.items():
        if key not in spec:
            continue
        value = spec[key]
        if value_kind == _MONEY:
            if not isinstance(value, str):
                raise _refuse(f"{at}.{key}", f"{key} is decimal text in {asset.code}")
            try:
                values[attribute] = asset.parse(value)
            except FundpoolError as error:
                raise _refuse(f"{at}.{key}", str(error)) from error
        else:
            problem = _count_problem(0, FEE_UNITS_MAX)(value)
            if problem is not None:
                raise _refuse(f"{at}.{key}", f"{key} {problem}")
            values[attribute] = value
    absent = [key for key, (attribute, _) in params.items() if attribute not in values]
    if absent:
        raise _refuse(at, f"model {name!r} needs {absent}")
    model: FeeModel = cls(**values)
    return model
