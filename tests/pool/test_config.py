"""The pool configuration: the example loads as written, and every bad file is refused with
`invalid_config`, naming where it is wrong."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

import pytest

from fundpool.core.money import Asset, AssetKind
from fundpool.pool.config import (
    ChannelKind,
    InvalidConfig,
    OwnerKind,
    load_config,
    parse_config,
)
from fundpool.pool.rates import StaticRates

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
EXAMPLE = EXAMPLES / "pool.toml"


def base() -> dict[str, Any]:
    """A small valid document: two assets, two channels, two owners, one pool."""
    return {
        "assets": [
            {"code": "USD", "scale": 2, "kind": "fiat"},
            {"code": "ETH", "scale": 18, "kind": "crypto"},
        ],
        "channels": [
            {"id": "bank-a", "kind": "bank_wire", "assets": ["USD"]},
            {"id": "eth-l1", "kind": "evm_l1", "assets": ["ETH"], "name": "Ethereum"},
        ],
        "owners": [
            {"id": "company", "kind": "company"},
            {"id": "m42", "kind": "merchant", "name": "Acme"},
        ],
        "pools": [{"id": "main", "reporting_currency": "USD", "channels": ["bank-a", "eth-l1"]}],
    }


def refused(document: dict[str, Any]) -> InvalidConfig:
    with pytest.raises(InvalidConfig) as caught:
        parse_config(document, source="test.toml")
    error = caught.value
    assert error.code == "invalid_config"
    assert error.to_dict()["code"] == "invalid_config"
    assert error.facts["source"] == "test.toml"
    return error


# --- the example ------------------------------------------------------------------------------


def test_the_example_file_loads_as_written() -> None:
    config = load_config(EXAMPLE)
    raw = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))

    assert config.assets == tuple(
        Asset(a["code"], a["scale"], AssetKind(a["kind"])) for a in raw["assets"]
    )
    assert [a.code for a in config.assets] == ["USD", "EUR", "USDT", "ETH", "E-CNY"]
    assert config.asset("ETH").scale == 18
    assert [(c.id, c.kind, c.assets, c.name) for c in config.channels] == [
        (c["id"], ChannelKind(c["kind"]), tuple(c["assets"]), c["name"]) for c in raw["channels"]
    ]
    assert config.channel("eth-l1").assets == ("USDT", "ETH")
    assert [(o.id, o.kind, o.name) for o in config.owners] == [
        ("company", OwnerKind.COMPANY, "Pool operator"),
        ("m42", OwnerKind.MERCHANT, "Acme Shop"),
        ("m77", OwnerKind.MERCHANT, "Lotus Tea House"),
    ]
    assert len(config.pools) == 1
    pool = config.pool()
    assert pool is config.pool("main")
    assert pool.name == "Main pool"
    assert pool.reporting_currency == "USD"
    assert pool.channels == (
        "bank-a", "rtp", "card-acq", "sepa", "tron", "eth-l1", "arb-l2", "ecny-rail", "book",
    )
    assert config.source == str(EXAMPLE)


def test_the_rates_path_is_relative_to_the_config_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = load_config(EXAMPLE)
    pool = config.pool()
    assert pool.rates_path is not None
    assert pool.rates_path.resolve() == (EXAMPLES / "rates.toml").resolve()
    rates = config.rates_for(pool)
    assert isinstance(rates, StaticRates)
    assert rates.rate("EUR", "USD") is not None

    # Loaded by a relative path from elsewhere, the rates file is still the one beside it.
    monkeypatch.chdir(EXAMPLES.parent)
    relative = load_config(Path("examples") / "pool.toml").pool()
    assert relative.rates_path is not None
    assert relative.rates_path.resolve() == (EXAMPLES / "rates.toml").resolve()

    # Copied elsewhere with its own rates file, the copy reads the rates beside it, not ours.
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "pool.toml").write_bytes(EXAMPLE.read_bytes())
    (tmp_path / "conf" / "rates.toml").write_text('[rates]\n"EUR/USD" = "2"\n', encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    copied = load_config(tmp_path / "conf" / "pool.toml")
    assert copied.rates_for(copied.pool()).rate("EUR", "USD") == 2
    assert copied.rates_for(copied.pool()).rate("ETH", "USD") is None


def test_a_pool_without_rates_has_no_rates_path_and_an_empty_rate_source() -> None:
    config = parse_config(base())
    pool = config.pool()
    assert pool.rates_path is None
    assert pool.name == "main"  # the name defaults to the id
    assert config.channel("bank-a").name == "bank-a"
    assert config.owners[0].name == "company"
    rates = config.rates_for(pool)
    assert rates.rate("ETH", "USD") is None
    assert rates.rate("USD", "USD") == 1


def test_rates_without_a_base_dir_are_taken_as_written() -> None:
    document = base()
    document["pools"][0]["rates"] = "some/rates.toml"
    assert parse_config(document).pool().rates_path == Path("some/rates.toml")
    assert parse_config(document, base_dir=Path("/etc/fp")).pool().rates_path == Path(
        "/etc/fp/some/rates.toml"
    )


def test_owners_are_optional() -> None:
    document = base()
    del document["owners"]
    assert parse_config(document).owners == ()


def test_a_64_character_id_is_accepted() -> None:
    document = base()
    long_id = "a" * 64
    document["channels"][0]["id"] = long_id
    document["pools"][0]["channels"][0] = long_id
    assert parse_config(document).channel(long_id).id == long_id


# --- choosing a pool ----------------------------------------------------------------------------


def two_pools() -> dict[str, Any]:
    document = base()
    document["pools"].append(
        {"id": "side", "reporting_currency": "ETH", "channels": ["eth-l1"]}
    )
    return document


def test_several_pools_and_no_id_is_invalid_config() -> None:
    config = parse_config(two_pools(), source="two.toml")
    with pytest.raises(InvalidConfig) as caught:
        config.pool()
    assert caught.value.code == "invalid_config"
    assert caught.value.facts["pools"] == ["main", "side"]
    assert config.pool("side").reporting_currency == "ETH"
    assert config.pool("main").channels == ("bank-a", "eth-l1")


def test_an_unknown_pool_channel_or_asset_lookup_is_invalid_config() -> None:
    config = parse_config(base())
    with pytest.raises(InvalidConfig):
        config.pool("nope")
    with pytest.raises(InvalidConfig):
        config.channel("nope")
    with pytest.raises(InvalidConfig):
        config.asset("EUR")


# --- refusals, each with its location ------------------------------------------------------------


@pytest.mark.parametrize("section", ["assets", "channels", "pools"])
def test_a_missing_required_section_is_refused(section: str) -> None:
    document = base()
    del document[section]
    assert refused(document).facts["at"] == section


@pytest.mark.parametrize("section", ["assets", "channels", "pools"])
def test_an_empty_required_section_is_refused(section: str) -> None:
    document = base()
    document[section] = []
    assert refused(document).facts["at"] == section


@pytest.mark.parametrize("section", ["assets", "channels", "owners", "pools"])
@pytest.mark.parametrize("value", ["USD", {"code": "USD"}, 3, ["USD"]])
def test_a_section_that_is_not_an_array_of_tables_is_refused(section: str, value: Any) -> None:
    document = base()
    document[section] = value
    assert refused(document).facts["at"] == section


def test_an_unknown_top_level_key_is_refused() -> None:
    document = base()
    document["pool"] = [{"id": "typo"}]
    error = refused(document)
    assert error.facts["keys"] == ["pool"]


@pytest.mark.parametrize(
    ("section", "index"),
    [("assets", 1), ("channels", 0), ("owners", 1), ("pools", 0)],
)
def test_an_unknown_key_in_an_entry_is_refused(section: str, index: int) -> None:
    document = base()
    document[section][index]["colour"] = "red"
    error = refused(document)
    assert error.facts["at"] == f"{section}[{index}]"
    assert "colour" in error.detail


BAD_IDS = ["Bank-A", "bank a", " bank", "a" * 65, "", "-bank", "_bank", "bank.a", "bänk", 7]


@pytest.mark.parametrize("bad", BAD_IDS)
@pytest.mark.parametrize("section", ["channels", "owners", "pools"])
def test_a_bad_id_is_refused(section: str, bad: Any) -> None:
    document = base()
    document[section][0]["id"] = bad
    if section == "channels":  # keep the pool's reference valid so the id itself is at fault
        document["pools"][0]["channels"][0] = bad
    assert refused(document).facts["at"] == f"{section}[0].id"


@pytest.mark.parametrize("section", ["channels", "owners", "pools"])
def test_a_missing_id_is_refused(section: str) -> None:
    document = base()
    del document[section][0]["id"]
    assert refused(document).facts["at"] == f"{section}[0]"


def test_a_duplicate_asset_code_is_refused() -> None:
    document = base()
    document["assets"].append({"code": "USD", "scale": 2, "kind": "fiat"})
    error = refused(document)
    assert error.facts["at"] == "assets"
    assert "'USD'" in error.detail


def test_a_duplicate_asset_code_with_another_scale_is_refused() -> None:
    document = base()
    document["assets"].append({"code": "ETH", "scale": 9, "kind": "crypto"})
    assert refused(document).facts["at"] == "assets"


def test_a_duplicate_channel_id_is_refused() -> None:
    document = base()
    document["channels"].append({"id": "bank-a", "kind": "book", "assets": ["ETH"]})
    error = refused(document)
    assert error.facts["at"] == "channels"
    assert "'bank-a'" in error.detail


def test_a_duplicate_owner_id_is_refused() -> None:
    document = base()
    document["owners"].append({"id": "m42", "kind": "company"})
    error = refused(document)
    assert error.facts["at"] == "owners"
    assert "'m42'" in error.detail


def test_a_duplicate_pool_id_is_refused() -> None:
    document = base()
    document["pools"].append(copy.deepcopy(document["pools"][0]))
    error = refused(document)
    assert error.facts["at"] == "pools"
    assert "'main'" in error.detail


def test_a_channel_listing_an_asset_twice_is_refused() -> None:
    document = base()
    document["channels"][1]["assets"] = ["ETH", "ETH"]
    assert refused(document).facts["at"] == "channels[1].assets"


def test_a_pool_listing_a_channel_twice_is_refused() -> None:
    document = base()
    document["pools"][0]["channels"] = ["bank-a", "bank-a"]
    assert refused(document).facts["at"] == "pools[0].channels"


def test_a_channel_naming_an_undeclared_asset_is_refused() -> None:
    document = base()
    document["channels"][1]["assets"] = ["ETH", "EUR"]
    error = refused(document)
    assert error.facts["at"] == "channels[1].assets"
    assert "'EUR'" in error.detail


def test_a_pool_naming_an_undeclared_channel_is_refused() -> None:
    document = base()
    document["pools"][0]["channels"] = ["bank-a", "sepa"]
    error = refused(document)
    assert error.facts["at"] == "pools[0].channels"
    assert "'sepa'" in error.detail


def test_an_undeclared_reporting_currency_is_refused() -> None:
    document = base()
    document["pools"][0]["reporting_currency"] = "EUR"
    error = refused(document)
    assert error.facts["at"] == "pools[0].reporting_currency"
    assert "'EUR'" in error.detail


def test_an_error_in_a_later_entry_names_that_entry() -> None:
    document = two_pools()
    document["pools"][1]["channels"] = ["eth-l2"]
    assert refused(document).facts["at"] == "pools[1].channels"


@pytest.mark.parametrize(
    ("section", "index", "key", "value"),
    [
        ("channels", 0, "kind", 3),
        ("channels", 0, "kind", True),
        ("channels", 0, "assets", "USD"),
        ("channels", 0, "assets", []),
        ("channels", 0, "assets", [1]),
        ("channels", 0, "name", 5),
        ("owners", 1, "kind", ["merchant"]),
        ("owners", 1, "name", False),
        ("pools", 0, "reporting_currency", 840),
        ("pools", 0, "channels", "bank-a"),
        ("pools", 0, "channels", []),
        ("pools", 0, "channels", [True]),
        ("pools", 0, "rates", 1),
        ("pools", 0, "name", 1.5),
    ],
)
def test_a_value_of_the_wrong_type_is_refused_at_its_key(
    section: str, index: int, key: str, value: Any
) -> None:
    document = base()
    document[section][index][key] = value
    assert refused(document).facts["at"] == f"{section}[{index}].{key}"


@pytest.mark.parametrize(
    ("key", "value"),
    [("scale", "2"), ("scale", True), ("scale", 2.0), ("code", 840), ("kind", 1)],
)
def test_a_wrongly_typed_asset_field_is_refused(key: str, value: Any) -> None:
    document = base()
    document["assets"][1][key] = value
    # The entry is named in any case.
    assert str(refused(document).facts["at"]).startswith("assets[1]")


@pytest.mark.parametrize(
    ("key", "value"),
    [("scale", "2"), ("scale", True), ("code", 840), ("kind", 1)],
)
def test_a_wrongly_typed_asset_field_is_refused_at_its_key(key: str, value: Any) -> None:
    document = base()
    document["assets"][1][key] = value
    error = refused(document)
    assert error.facts["at"] == f"assets[1].{key}"
    assert "invalid_config:" not in error.detail


@pytest.mark.parametrize(
    "asset",
    [
        {"code": "usd", "scale": 2, "kind": "fiat"},
        {"code": "US D", "scale": 2, "kind": "fiat"},
        {"code": "USD", "scale": 19, "kind": "fiat"},
        {"code": "USD", "scale": -1, "kind": "fiat"},
        {"code": "USD", "kind": "fiat"},
        {"scale": 2, "kind": "fiat"},
        {"code": "USD", "scale": 2},
    ],
)
def test_an_invalid_or_incomplete_asset_is_refused(asset: dict[str, Any]) -> None:
    document = base()
    document["assets"][0] = asset
    assert str(refused(document).facts["at"]).startswith("assets[0]")


@pytest.mark.parametrize("key", ["kind", "assets"])
def test_a_channel_missing_a_required_key_is_refused(key: str) -> None:
    document = base()
    del document["channels"][1][key]
    assert refused(document).facts["at"] == "channels[1]"


@pytest.mark.parametrize("key", ["reporting_currency", "channels"])
def test_a_pool_missing_a_required_key_is_refused(key: str) -> None:
    document = base()
    del document["pools"][0][key]
    assert refused(document).facts["at"] == "pools[0]"


def test_a_bad_asset_kind_is_refused() -> None:
    document = base()
    document["assets"][1]["kind"] = "gold"
    assert refused(document).facts["at"] == "assets[1].kind"


@pytest.mark.parametrize("kind", ["swift", "BANK_WIRE", ""])
def test_a_bad_channel_kind_is_refused(kind: str) -> None:
    document = base()
    document["channels"][1]["kind"] = kind
    assert refused(document).facts["at"] == "channels[1].kind"


@pytest.mark.parametrize("kind", ["person", "Merchant", ""])
def test_a_bad_owner_kind_is_refused(kind: str) -> None:
    document = base()
    document["owners"][1]["kind"] = kind
    assert refused(document).facts["at"] == "owners[1].kind"


# --- files ---------------------------------------------------------------------------------------


def example_text() -> str:
    return EXAMPLE.read_text(encoding="utf-8")


def load_refused(path: Path) -> InvalidConfig:
    with pytest.raises(InvalidConfig) as caught:
        load_config(path)
    assert caught.value.code == "invalid_config"
    assert caught.value.facts["source"] == str(path)
    return caught.value


def test_a_malformed_toml_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "pool.toml"
    path.write_text(example_text() + "\n[[assets]\ncode = \n", encoding="utf-8")
    load_refused(path)


def test_a_non_utf8_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "pool.toml"
    path.write_bytes(example_text().replace("Acme Shop", "Acme Caf\u00e9").encode("latin-1"))
    load_refused(path)


def test_a_utf8_file_with_non_ascii_text_loads(tmp_path: Path) -> None:
    path = tmp_path / "pool.toml"
    path.write_bytes(example_text().replace("Acme Shop", "Acme Caf\u00e9").encode("utf-8"))
    assert load_config(path).owners[1].name == "Acme Caf\u00e9"


def test_a_file_over_1_mb_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "pool.toml"
    text = example_text()
    padding = 1_000_001 - len(text.encode("utf-8"))
    path.write_text(text + "#" * (padding - 1) + "\n", encoding="utf-8")
    assert path.stat().st_size == 1_000_001
    load_refused(path)


def test_a_file_of_exactly_1_mb_loads(tmp_path: Path) -> None:
    path = tmp_path / "pool.toml"
    text = example_text()
    padding = 1_000_000 - len(text.encode("utf-8"))
    path.write_text(text + "#" * (padding - 1) + "\n", encoding="utf-8")
    assert path.stat().st_size == 1_000_000
    assert load_config(path).pool().id == "main"


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    load_refused(tmp_path / "absent.toml")


def test_a_directory_is_refused(tmp_path: Path) -> None:
    load_refused(tmp_path)


def test_a_file_with_a_reference_error_names_its_location(tmp_path: Path) -> None:
    path = tmp_path / "pool.toml"
    text = example_text().replace('"ecny-rail", "book"]', '"ecny", "book"]')
    path.write_text(text, encoding="utf-8")
    error = load_refused(path)
    assert error.facts["at"] == "pools[0].channels"


# --- channel fees and approval thresholds (as the example now declares them) ---------------------


def test_the_example_fees_and_thresholds_are_exact_minor_units() -> None:
    config = load_config(EXAMPLE)
    raw = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    scales = {a.code: a.scale for a in config.assets}

    def minor(text: str, code: str) -> int:
        whole, _, decimals = text.partition(".")
        return int(whole) * 10 ** scales[code] + int((decimals or "0").ljust(scales[code], "0"))

    for entry in raw["channels"]:
        channel = config.channel(entry["id"])
        for code, spec in entry.get("fees", {}).items():
            schedule = channel.fee_schedule(code)
            assert schedule.fixed_minor == minor(spec.get("fixed", "0"), code)
            assert schedule.bps == spec.get("bps", 0)
            assert schedule.inbound_bps == spec.get("inbound_bps", 0)
    assert config.channel("eth-l1").fee_schedule("ETH").fixed_minor == 840 * 10**12
    assert config.channel("sepa").fee_schedule("USD").fixed_minor == 0  # not carried: no fee
    pool = config.pool()
    for code, text in raw["pools"][0]["approval_thresholds"].items():
        assert pool.approval_thresholds[code] == minor(text, code)
    assert pool.approval_required("USD", 10_000_00)
    assert not pool.approval_required("USD", 10_000_00 - 1)
    assert pool.approval_required("ETH", 5 * 10**18)
    assert not pool.approval_required("ETH", 5 * 10**18 - 1)
    assert not parse_config(base()).pool().approval_required("USD", 10**30)


def test_fees_round_half_to_even() -> None:
    config = load_config(EXAMPLE)
    card = config.channel("card-acq").fee_schedule("USD")  # 0.30 + 25 bps; 180 bps inbound
    assert card.outbound_fee(100_00) == 30 + 25
    assert card.outbound_fee(0) == 30
    assert card.inbound_fee(12_345) == 222  # 222.21
    one_bp = config.channel("ecny-rail").fee_schedule("E-CNY")
    assert [one_bp.outbound_fee(n) for n in (5_000, 15_000, 25_000, 25_001, 4_999)] == [
        0, 2, 2, 3, 0,
    ]


@pytest.mark.parametrize(
    ("fees", "at"),
    [
        ({"EUR": {"bps": 1}}, "channels[0].fees.EUR"),
        ({"USD": {"bps": 10_001}}, "channels[0].fees.USD"),
        ({"USD": {"bps": -1}}, "channels[0].fees.USD"),
        ({"USD": {"inbound_bps": 10_001}}, "channels[0].fees.USD"),
        ({"USD": {"bps": True}}, "channels[0].fees.USD.bps"),
        ({"USD": {"fixed": "0.001"}}, "channels[0].fees.USD.fixed"),
        ({"USD": {"fixed": "-0.25"}}, "channels[0].fees.USD.fixed"),
        ({"USD": {"fixed": 0.25}}, "channels[0].fees.USD.fixed"),
        ({"USD": {"pct": 1}}, "channels[0].fees.USD"),
        ({"USD": 5}, "channels[0].fees.USD"),
        (5, "channels[0].fees"),
    ],
)
def test_a_bad_fee_schedule_is_refused(fees: Any, at: str) -> None:
    document = base()
    document["channels"][0]["fees"] = fees
    assert refused(document).facts["at"] == at


@pytest.mark.parametrize(
    ("thresholds", "at"),
    [
        ({"GBP": "1"}, "pools[0].approval_thresholds.GBP"),
        ({"USD": 100}, "pools[0].approval_thresholds.USD"),
        ({"USD": "-1"}, "pools[0].approval_thresholds.USD"),
        ({"USD": "1.001"}, "pools[0].approval_thresholds.USD"),
        ("10", "pools[0].approval_thresholds"),
    ],
)
def test_a_bad_approval_threshold_is_refused(thresholds: Any, at: str) -> None:
    document = base()
    document["pools"][0]["approval_thresholds"] = thresholds
    assert refused(document).facts["at"] == at


# --- channel depth ------------------------------------------------------------------------------


def test_depths_are_parsed_exactly_to_minor_units() -> None:
    document = base()
    document["channels"][1]["depth"] = {"ETH": {
        "min_depth": "0.000000000000000001", "low_depth": "1.5", "target_depth": "2"}}
    document["channels"][0]["depth"] = {"USD": {"low_depth": "1000.10"}}
    config = parse_config(document)
    eth = config.channel("eth-l1").depth_for("ETH")
    assert eth is not None
    assert (eth.min_minor, eth.low_minor, eth.target_minor) == (1, 15 * 10**17, 2 * 10**18)
    usd = config.channel("bank-a").depth_for("USD")
    assert usd is not None
    assert (usd.min_minor, usd.low_minor, usd.target_minor) == (0, 100_010, None)
    assert config.channel("eth-l1").depth_for("USD") is None


@pytest.mark.parametrize(("depth", "at", "says"), [
    ({"USD": {"min_depth": "1.005"}}, "channels[0].depth.USD.min_depth", "decimal"),
    ({"USD": {"min_depth": "10.00", "low_depth": "5.00"}}, "channels[0].depth.USD",
     "low_depth is below min_depth"),
    ({"USD": {"low_depth": "10.00", "target_depth": "5.00"}}, "channels[0].depth.USD",
     "target_depth is below low_depth"),
    ({"USD": {"target_depth": "5.00"}}, "channels[0].depth.USD", "min_depth"),
    ({"USD": {"min": "5.00"}}, "channels[0].depth.USD", "unknown keys"),
    ({"ETH": {"min_depth": "1"}}, "channels[0].depth.ETH", "does not carry"),
    ({"USD": "5.00"}, "channels[0].depth.USD", "a table"),
    ({"USD": {"min_depth": 5}}, "channels[0].depth.USD.min_depth", "a string"),
])
def test_a_bad_depth_is_refused_naming_its_place(depth: dict[str, Any], at: str,
                                                 says: str) -> None:
    document = base()
    document["channels"][0]["depth"] = depth
    error = refused(document)
    assert error.facts["at"] == at
    assert says in error.detail


def test_the_example_gives_every_rail_but_the_book_a_depth() -> None:
    config = load_config(EXAMPLE)
    for channel in config.channels:
        for asset in channel.assets:
            depth = channel.depth_for(asset)
            if channel.kind is ChannelKind.BOOK:
                assert depth is None
            else:
                assert depth is not None
                assert 0 < depth.min_minor < depth.low_minor


def test_a_channel_names_its_rail_adapter_simulated_by_default() -> None:
    assert parse_config(base()).channel("bank-a").adapter == "simulated"
    document = base()
    document["channels"][0]["adapter"] = "simulated"
    assert parse_config(document).channel("bank-a").adapter == "simulated"
    document["channels"][0]["adapter"] = "swift-gpi"
    error = refused(document)
    assert "channels[0].adapter" in str(error.facts)
