"""A channel's `[channels.dynamic_fee]` table: read exactly (amounts and multipliers as decimal
text, never floats), optional (a channel without one is as before), and refused with
`invalid_config` at the key at fault when it does not hold together."""

from __future__ import annotations

import copy
import tomllib
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from fundpool.core.money import Asset, AssetKind
from fundpool.pool.config import (
    DynamicFee,
    FeeWindow,
    InvalidConfig,
    load_config,
    parse_config,
)
from tests.pool.test_config import base, refused

TABLE = """
[[assets]]
code = "USD"
scale = 2
kind = "fiat"

[[channels]]
id = "rtp"
kind = "instant_credit"
assets = ["USD"]

[channels.dynamic_fee]
base = "0.50"
ceiling = "20.00"
target_per_interval = 200
interval_s = 10
max_change = "0.125"
windows = [{ from = 9, to = 17, multiplier = "1.5" }, { from = 17, to = 24, multiplier = "1.25" }]
risk = { review = "1.2", hold = "2" }

[[pools]]
id = "main"
reporting_currency = "USD"
channels = ["rtp"]
"""


def with_fee(table: dict[str, Any], channel: int = 0) -> dict[str, Any]:
    document = copy.deepcopy(base())
    document["channels"][channel]["dynamic_fee"] = table
    return document


def good() -> dict[str, Any]:
    return {"base": "0.50", "ceiling": "20.00", "target_per_interval": 200, "interval_s": 10}


def test_the_table_is_read_exactly(tmp_path: Path) -> None:
    path = tmp_path / "pool.toml"
    path.write_text(TABLE, encoding="utf-8")
    config = load_config(path)
    assert config.channel("rtp").dynamic_fee == DynamicFee(
        Asset("USD", 2, AssetKind.FIAT), 50, 2_000, 200, 10, Fraction(1, 8),
        (FeeWindow(9, 17, Fraction(3, 2)), FeeWindow(17, 24, Fraction(5, 4))),
        {"review": Fraction(6, 5), "hold": Fraction(2)},
    )
    assert tomllib.loads(TABLE)["channels"][0]["dynamic_fee"]["base"] == "0.50"


def test_it_is_optional_and_max_change_defaults_to_an_eighth() -> None:
    config = parse_config(with_fee(good()))
    fee = config.channel("bank-a").dynamic_fee
    assert fee is not None
    assert (fee.max_change, fee.windows, fee.risk) == (Fraction(1, 8), (), {})
    assert config.channel("eth-l1").dynamic_fee is None
    assert parse_config(base()).channel("bank-a").dynamic_fee is None


def test_a_channel_of_several_assets_names_the_one_its_fee_is_in() -> None:
    document = copy.deepcopy(base())
    document["channels"][1]["assets"] = ["ETH", "USD"]
    document["channels"][1]["dynamic_fee"] = {**good(), "base": "0.001", "ceiling": "0.1"}
    assert refused(document).facts["at"] == "channels[1].dynamic_fee.asset"
    document["channels"][1]["dynamic_fee"]["asset"] = "ETH"
    fee = parse_config(document).channel("eth-l1").dynamic_fee
    assert fee is not None
    assert (fee.asset.code, fee.base_fee_minor) == ("ETH", 10**15)


@pytest.mark.parametrize(("changes", "at"), [
    ({"base": 0.5}, "base"),  # a float: never
    ({"ceiling": 20}, "ceiling"),
    ({"base": "0.505"}, "base"),  # more decimals than USD has
    ({"base": "0.50", "ceiling": "0.49"}, "ceiling"),
    ({"target_per_interval": 0}, "target_per_interval"),
    ({"target_per_interval": 200.0}, "target_per_interval"),
    ({"interval_s": 0}, "interval_s"),
    ({"interval_s": 86_401}, "interval_s"),
    ({"max_change": 0.125}, "max_change"),
    ({"max_change": "0"}, "max_change"),
    ({"max_change": "1.5"}, "max_change"),
    ({"max_change": "-0.1"}, "max_change"),
    ({"max_change": "1e-1"}, "max_change"),
    ({"windows": [{"from": 9, "to": 25, "multiplier": "1.5"}]}, "windows[0].to"),
    ({"windows": [{"from": -1, "to": 5, "multiplier": "1.5"}]}, "windows[0].from"),
    ({"windows": [{"from": 24, "to": 24, "multiplier": "1.5"}]}, "windows[0].from"),
    ({"windows": [{"from": 17, "to": 9, "multiplier": "1.5"}]}, "windows[0].to"),
    ({"windows": [{"from": 9, "to": 17, "multiplier": "1.5"},
                  {"from": 16, "to": 20, "multiplier": "2"}]}, "windows[1]"),
    ({"windows": [{"from": 12, "to": 17, "multiplier": "1.5"},
                  {"from": 9, "to": 11, "multiplier": "2"}]}, "windows[1]"),
    ({"windows": [{"from": 9, "to": 17, "multiplier": "0"}]}, "windows[0].multiplier"),
    ({"windows": [{"from": 9, "to": 17, "multiplier": 1.5}]}, "windows[0].multiplier"),
    ({"windows": [{"from": 9, "to": 17, "multiplier": "1001"}]}, "windows[0].multiplier"),
    ({"windows": [{"from": 9.0, "to": 17, "multiplier": "1.5"}]}, "windows[0].from"),
    ({"windows": [{"from": 9, "multiplier": "1.5"}]}, "windows[0]"),
    ({"windows": [{"from": 9, "to": 17, "multiplier": "1.5", "days": "mon"}]}, "windows[0]"),
    ({"windows": ["9-17"]}, "windows[0]"),
    ({"windows": {"from": 9}}, "windows"),
    ({"risk": {"high": "2"}}, "risk.high"),
    ({"risk": {"block": "2"}}, "risk.block"),
    ({"risk": {"hold": "0"}}, "risk.hold"),
    ({"risk": {"hold": 2}}, "risk.hold"),
    ({"risk": ["hold"]}, "risk"),
    ({"asset": "ETH"}, "asset"),
    ({"surge": "2"}, ""),
])
def test_a_bad_dynamic_fee_is_refused_at_its_key(changes: dict[str, Any], at: str) -> None:
    error = refused(with_fee({**good(), **changes}))
    assert error.facts["at"] == "channels[0].dynamic_fee" + (f".{at}" if at else "")


@pytest.mark.parametrize("missing", ["base", "ceiling", "target_per_interval", "interval_s"])
def test_every_figure_but_max_change_is_required(missing: str) -> None:
    table = good()
    del table[missing]
    assert refused(with_fee(table)).facts["at"].startswith("channels[0].dynamic_fee")


def test_a_dynamic_fee_that_is_not_a_table_is_refused() -> None:
    assert refused(with_fee("0.50")).facts["at"] == "channels[0].dynamic_fee"  # type: ignore[arg-type]


def test_a_window_over_midnight_is_two_windows() -> None:
    fee = parse_config(with_fee({**good(), "windows": [
        {"from": 0, "to": 6, "multiplier": "1.5"},
        {"from": 22, "to": 24, "multiplier": "1.5"}]})).channel("bank-a").dynamic_fee
    assert fee is not None
    hour_us = 3_600_000_000
    assert [fee.window_at(h * hour_us) is not None for h in (0, 5, 6, 21, 22, 23, 24)] == [
        True, True, False, False, True, True, True]


def test_the_error_says_what_is_wrong() -> None:
    error = refused(with_fee({**good(), "ceiling": "0.10"}))
    assert "ceiling is below base" in error.detail
    with pytest.raises(InvalidConfig, match="overlap"):
        parse_config(with_fee({**good(), "windows": [
            {"from": 9, "to": 17, "multiplier": "1.5"},
            {"from": 10, "to": 11, "multiplier": "2"}]}))
