"""Liquidity bands: min <= target <= max in minor units, the status of a balance, the figures
sized from it, and the list-of-tables format (ints only, no unknown fields, no duplicates)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fundpool.treasury.bands import (
    Band,
    InvalidBand,
    band_status,
    bands_for_asset,
    bands_from_mapping,
    excess_minor,
    over_target_minor,
    shortfall_minor,
    spare_minor,
    to_target_minor,
)

USD_A = {"channel": "bank-a", "asset": "USD", "min": 100_000, "target": 500_000,
         "max": 1_000_000}


def test_a_band_reads_from_a_list_of_tables() -> None:
    bands = bands_from_mapping([USD_A, {**USD_A, "asset": "EUR"},
                                {**USD_A, "channel": "bank-b", "min": 0, "target": 0}])
    assert bands[("bank-a", "USD")] == Band("bank-a", "USD", 100_000, 500_000, 1_000_000)
    assert bands[("bank-b", "USD")].target_minor == 0
    assert set(bands_for_asset(bands, "USD")) == {"bank-a", "bank-b"}
    assert bands_for_asset(bands, "EUR") == {"bank-a": bands[("bank-a", "EUR")]}


def test_status_and_the_figures_of_a_balance() -> None:
    band = Band("bank-a", "USD", 100, 500, 1_000)
    assert [band_status(band, b) for b in (0, 99, 100, 500, 1_000, 1_001)] == [
        "below_min", "below_min", "within", "within", "within", "above_max"]
    assert (shortfall_minor(band, 40), to_target_minor(band, 40)) == (60, 460)
    assert (shortfall_minor(band, 700), to_target_minor(band, 700)) == (0, 0)
    assert (excess_minor(band, 1_300), over_target_minor(band, 1_300)) == (300, 800)
    assert (excess_minor(band, 400), over_target_minor(band, 400)) == (0, 0)
    assert spare_minor(band, 350) == 250
    assert spare_minor(band, 50) == 0
    assert spare_minor(None, 50) == 50  # without a band, a position can give down to zero


@given(st.integers(0, 10**6), st.integers(0, 10**6), st.integers(0, 10**6),
       st.integers(0, 3 * 10**6))
def test_the_figures_agree_with_the_status(low: int, mid: int, high: int, balance: int) -> None:
    low, mid, high = sorted((low, mid, high))
    band = Band("c", "USD", low, mid, high)
    status = band_status(band, balance)
    assert (status == "below_min") == (shortfall_minor(band, balance) > 0)
    assert (status == "above_max") == (excess_minor(band, balance) > 0)
    assert balance + to_target_minor(band, balance) - over_target_minor(band, balance) == mid
    assert spare_minor(band, balance) + min(balance, low) == balance


@pytest.mark.parametrize(("change", "field"), [
    ({"min": 600_000}, "bands[0].target"),
    ({"max": 400_000}, "bands[0].max"),
    ({"min": 100_000.0}, "bands[0].min"),
    ({"target": "500000"}, "bands[0].target"),
    ({"max": True}, "bands[0].max"),
    ({"min": -1}, "bands[0].min"),
    ({"colour": "red"}, "bands[0].colour"),
    ({"channel": "Bank A"}, "bands[0].channel"),
    ({"asset": "usd"}, "bands[0].asset"),
])
def test_a_bad_band_is_refused_naming_its_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidBand) as refused:
        bands_from_mapping([{**USD_A, **change}])
    assert refused.value.code == "invalid_band"
    assert refused.value.facts["field"] == field


def test_a_missing_field_duplicates_and_bad_shapes_are_refused() -> None:
    without_max = {k: v for k, v in USD_A.items() if k != "max"}
    with pytest.raises(InvalidBand, match="required") as refused:
        bands_from_mapping([without_max])
    assert refused.value.facts["field"] == "bands[0].max"
    with pytest.raises(InvalidBand, match="one band") as refused:
        bands_from_mapping([USD_A, {**USD_A, "min": 0}])
    assert refused.value.facts == {"field": "bands[1]", "channel": "bank-a", "asset": "USD"}
    for shape in ("bands", {"bank-a": USD_A}, [["bank-a"]]):
        with pytest.raises(InvalidBand):
            bands_from_mapping(shape)


def test_a_band_made_in_code_is_checked_too() -> None:
    with pytest.raises(InvalidBand) as refused:
        Band("bank-a", "USD", 10, 5, 20)
    assert refused.value.facts["field"] == "target_minor"
    assert refused.value.facts["channel"] == "bank-a"
    with pytest.raises(InvalidBand):
        Band("bank-a", "USD", 0, 5, 2.5)  # type: ignore[arg-type]
    assert Band("bank-a", "USD", 0, 0, 0).position == ("bank-a", "USD")
