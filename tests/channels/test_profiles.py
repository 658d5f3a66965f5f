"""Rail profiles: the defaults per kind, and the `simulation` overrides of a channel, applied
exactly or refused naming the key that is wrong."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import pytest

from fundpool.channels.fees import BankFileFee, EvmGasFee, FlatFee, UtxoFee
from fundpool.channels.profiles import (
    DEFAULT_PROFILES,
    US_PER_DAY,
    US_PER_SECOND,
    RailProfile,
    default_profile,
    profile_for,
)
from fundpool.core.money import Asset, AssetKind
from fundpool.pool.config import (
    ChannelConfig,
    ChannelKind,
    InvalidConfig,
    load_config,
    parse_config,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "pool.toml"
USD = Asset("USD", 2, AssetKind.FIAT)
ASSETS = {"USD": USD, "ETH": Asset("ETH", 18, AssetKind.CRYPTO)}


def bank(simulation: dict[str, Any]) -> ChannelConfig:
    """The bank channel of a small configuration, parsed as a file would be."""
    document = {
        "assets": [
            {"code": "USD", "scale": 2, "kind": "fiat"},
            {"code": "ETH", "scale": 18, "kind": "crypto"},
        ],
        "channels": [
            {"id": "bank-a", "kind": "bank_wire", "assets": ["USD"],
             "fees": {"USD": {"fixed": "0.25"}}, "simulation": simulation},
        ],
        "pools": [{"id": "main", "reporting_currency": "USD", "channels": ["bank-a"]}],
    }
    return parse_config(document).channel("bank-a")


def test_every_kind_has_a_default_profile_that_holds_together() -> None:
    assert set(DEFAULT_PROFILES) == set(ChannelKind)
    for kind, profile in DEFAULT_PROFILES.items():
        assert profile.kind is kind
        assert default_profile(kind) is profile
        assert 0 <= profile.failure_rate < 0.1
        assert 0 <= profile.return_rate < 0.01
        assert profile.quoted_success_probability == 1 - profile.failure_rate
        assert profile.duplicate_rate == profile.out_of_order_rate == profile.late_rate == 0
        assert profile.is_chain == (profile.confirmations > 0)
        assert profile.cleared_after_us < profile.latency_mean_us or not profile.sends_cleared


def test_the_defaults_differ_the_way_real_rails_do() -> None:
    wire = DEFAULT_PROFILES[ChannelKind.BANK_WIRE]
    assert wire.sends_cleared
    assert wire.latency_median_us == 2 * 3_600 * US_PER_SECOND
    assert wire.cleared_after_us == 300 * US_PER_SECOND
    for kind in (ChannelKind.INSTANT_CREDIT, ChannelKind.BOOK, ChannelKind.CBDC):
        assert not DEFAULT_PROFILES[kind].sends_cleared
    assert DEFAULT_PROFILES[ChannelKind.INSTANT_CREDIT].latency_median_us == 2 * US_PER_SECOND
    card = DEFAULT_PROFILES[ChannelKind.CARD_ACQUIRER]
    assert card.settlement_days == 2
    assert card.inbound_clears_at_once
    assert card.return_delay_us == 30 * US_PER_DAY
    chains = {
        ChannelKind.EVM_L1: (12, 12 * US_PER_SECOND),
        ChannelKind.EVM_L2: (20, 250_000),
        ChannelKind.STABLECOIN_RAIL: (19, 3 * US_PER_SECOND),
    }
    for kind, (confirmations, block_time_us) in chains.items():
        profile = DEFAULT_PROFILES[kind]
        assert (profile.confirmations, profile.block_time_us) == (confirmations, block_time_us)
        assert profile.return_rate == 0  # a chain does not send a transfer back by itself
        assert profile.sends_cleared  # at the first confirmation
    assert DEFAULT_PROFILES[ChannelKind.BOOK].failure_rate == 0


def test_the_expected_latency_is_the_lognormal_mean_plus_blocks_and_days() -> None:
    wire = DEFAULT_PROFILES[ChannelKind.BANK_WIRE]
    assert wire.latency_mean_us == round(7_200_000_000 * math.exp(0.9**2 / 2))
    assert wire.expected_latency_us() == wire.latency_mean_us
    eth = DEFAULT_PROFILES[ChannelKind.EVM_L1]
    assert eth.expected_latency_us() == eth.latency_mean_us + 12 * 12 * US_PER_SECOND
    card = DEFAULT_PROFILES[ChannelKind.CARD_ACQUIRER]
    assert card.expected_latency_us() == card.latency_mean_us + 2 * US_PER_DAY


def test_the_example_pool_has_a_profile_for_every_channel() -> None:
    config = load_config(EXAMPLE)
    for channel in config.channels:
        profile = profile_for(channel, config.assets)
        assert profile.kind is channel.kind
        assert set(profile.fee_models) == set(channel.assets)
    # The example's card acquirer says settlement_days = 2 explicitly: the default, kept.
    assert profile_for(config.channel("card-acq"), config.assets).settlement_days == 2


def test_overrides_are_converted_to_the_profiles_units_exactly() -> None:
    profile = profile_for(
        bank(
            {
                "latency_median_ms": 250,
                "latency_sigma": 0,
                "sends_cleared": False,
                "cleared_after_ms": 0.5,
                "failure_rate": 0.25,
                "return_rate": 1,
                "return_delay_days": 1.5,
                "settlement_days": 1,
                "inbound_clears_at_once": True,
                "confirmations": 3,
                "block_time_ms": 100,
                "success_probability_quoted": 0.99,
                "duplicate_rate": 0.1,
                "duplicate_delay_ms": 1_000,
                "out_of_order_rate": 0.2,
                "late_rate": 0.3,
                "late_ms": 60_000,
            }
        ),
        ASSETS,
    )
    assert profile.latency_median_us == 250_000
    assert profile.latency_sigma == 0.0
    assert profile.sends_cleared is False
    assert profile.cleared_after_us == 500
    assert profile.failure_rate == 0.25
    assert profile.return_rate == 1.0
    assert profile.return_delay_us == 129_600_000_000
    assert profile.settlement_days == 1
    assert profile.inbound_clears_at_once is True
    assert (profile.confirmations, profile.block_time_us) == (3, 100_000)
    assert profile.success_probability_quoted == profile.quoted_success_probability == 0.99
    assert profile.duplicate_rate == 0.1
    assert profile.duplicate_delay_us == 1_000_000
    assert profile.out_of_order_rate == 0.2
    assert profile.late_rate == 0.3
    assert profile.late_us == 60 * US_PER_SECOND
    assert not profile.is_chain  # confirmations on a bank are kept but mean nothing


def test_fee_overrides_change_the_default_model_or_replace_it() -> None:
    partial = profile_for(bank({"fees": {"USD": {"per_file": "5.00"}}}), ASSETS)
    assert partial.fee_models["USD"] == BankFileFee(500, 25)  # per_item kept from the default
    flat = profile_for(bank({"fees": {"USD": {"model": "flat", "per_item": "0.10"}}}), ASSETS)
    assert flat.fee_models["USD"] == FlatFee(10)
    utxo = profile_for(
        bank(
            {
                "fees": {
                    "USD": {
                        "model": "utxo", "overhead_bytes": 11, "input_bytes": 68,
                        "output_bytes": 31, "inputs_per_payment": 1, "fee_rate": "0.01",
                    }
                }
            }
        ),
        ASSETS,
    )
    assert utxo.fee_models["USD"] == UtxoFee(11, 68, 31, 1, 1)
    gas = profile_for(
        bank(
            {
                "fees": {
                    "USD": {
                        "model": "evm_gas", "gas_single": 21_000, "gas_batch_base": 0,
                        "gas_batch_per_item": 21_000, "gas_price": "0.01",
                    }
                }
            }
        ),
        ASSETS,
    )
    assert gas.fee_models["USD"] == EvmGasFee(21_000, 0, 21_000, 1)


def test_money_in_an_override_is_parsed_exactly_at_the_assets_scale() -> None:
    config = load_config(EXAMPLE)
    channel = dataclasses.replace(
        config.channel("eth-l1"),
        simulation={
            "fees": {
                "ETH": {"gas_price": "0.000000001000000001"},  # 1 gwei and 1 wei
                "USDT": {"gas_price": "0.000071"},
            }
        },
    )
    profile = profile_for(channel, config.assets)
    eth = profile.fee_models["ETH"]
    assert isinstance(eth, EvmGasFee)
    assert eth.gas_price_minor == 1_000_000_001
    usdt = profile.fee_models["USDT"]
    assert isinstance(usdt, EvmGasFee)
    assert usdt.gas_price_minor == 71


WHERE = "channels.bank-a.simulation"


@pytest.mark.parametrize(
    ("simulation", "at"),
    [
        ({"bogus": 1}, f"{WHERE}.bogus"),
        ({"latency_median_us": 1}, f"{WHERE}.latency_median_us"),  # the unit is ms
        ({"failure_rate": 1.5}, f"{WHERE}.failure_rate"),
        ({"failure_rate": -0.1}, f"{WHERE}.failure_rate"),
        ({"failure_rate": "0.1"}, f"{WHERE}.failure_rate"),
        ({"failure_rate": True}, f"{WHERE}.failure_rate"),
        ({"failure_rate": math.nan}, f"{WHERE}.failure_rate"),
        ({"return_rate": [0.1]}, f"{WHERE}.return_rate"),
        ({"settlement_days": 1.5}, f"{WHERE}.settlement_days"),
        ({"settlement_days": -1}, f"{WHERE}.settlement_days"),
        ({"settlement_days": 31}, f"{WHERE}.settlement_days"),
        ({"latency_median_ms": 0}, f"{WHERE}.latency_median_ms"),
        ({"latency_median_ms": "fast"}, f"{WHERE}.latency_median_ms"),
        ({"latency_median_ms": math.inf}, f"{WHERE}.latency_median_ms"),
        ({"latency_sigma": 4}, f"{WHERE}.latency_sigma"),
        ({"sends_cleared": 1}, f"{WHERE}.sends_cleared"),
        ({"late_ms": -5}, f"{WHERE}.late_ms"),
        ({"return_delay_days": 401}, f"{WHERE}.return_delay_days"),
        ({"block_time_ms": 0}, f"{WHERE}.block_time_ms"),
        ({"confirmations": 1_001}, f"{WHERE}.confirmations"),
        ({"success_probability_quoted": 2}, f"{WHERE}.success_probability_quoted"),
        ({"fees": "cheap"}, f"{WHERE}.fees"),
        ({"fees": {"ETH": {"per_item": "1"}}}, f"{WHERE}.fees.ETH"),
        ({"fees": {"USD": "flat"}}, f"{WHERE}.fees.USD"),
        ({"fees": {"USD": {"per_file": "0.001"}}}, f"{WHERE}.fees.USD.per_file"),
        ({"fees": {"USD": {"per_file": "-1.00"}}}, f"{WHERE}.fees.USD.per_file"),
        ({"fees": {"USD": {"per_file": 5}}}, f"{WHERE}.fees.USD.per_file"),
        ({"fees": {"USD": {"model": "barter"}}}, f"{WHERE}.fees.USD.model"),
        ({"fees": {"USD": {"model": ["flat"]}}}, f"{WHERE}.fees.USD.model"),
        ({"fees": {"USD": {"gas_single": 1}}}, f"{WHERE}.fees.USD.gas_single"),
        ({"fees": {"USD": {"model": "utxo", "overhead_bytes": 11}}}, f"{WHERE}.fees.USD"),
        (
            {"fees": {"USD": {"model": "evm_gas", "gas_single": -1, "gas_batch_base": 0,
                              "gas_batch_per_item": 0, "gas_price": "0.01"}}},
            f"{WHERE}.fees.USD.gas_single",
        ),
    ],
)
def test_a_bad_override_is_refused_naming_where_it_is(
    simulation: dict[str, Any], at: str
) -> None:
    channel = bank(simulation)
    with pytest.raises(InvalidConfig) as caught:
        profile_for(channel, ASSETS)
    assert caught.value.code == "invalid_config"
    assert caught.value.facts["at"] == at


def test_a_channel_whose_assets_are_not_given_is_refused() -> None:
    with pytest.raises(InvalidConfig) as caught:
        profile_for(bank({}), {"ETH": ASSETS["ETH"]})
    assert caught.value.facts["at"] == "channels.bank-a.assets"


def test_a_profile_built_in_code_is_checked_too_and_cannot_change() -> None:
    with pytest.raises(InvalidConfig) as caught:
        dataclasses.replace(DEFAULT_PROFILES[ChannelKind.BOOK], failure_rate=1.01)
    assert caught.value.facts["at"] == "RailProfile.failure_rate"
    with pytest.raises(InvalidConfig) as caught:
        RailProfile(ChannelKind.EVM_L1, 1, 0.0, True, 0, 0.0, 0.0, 0, confirmations=2)
    assert caught.value.facts["at"] == "RailProfile.block_time_us"
    profile = DEFAULT_PROFILES[ChannelKind.BOOK]
    with pytest.raises(dataclasses.FrozenInstanceError):
        profile.failure_rate = 0.5  # type: ignore[misc]
    models = {"USD": FlatFee(1)}
    kept = dataclasses.replace(profile, fee_models=models)
    models["USD"] = FlatFee(2)
    assert kept.fee_models["USD"] == FlatFee(1)
