"""`init_pool` on both stores: it opens exactly what the configuration implies, is idempotent,
adds only what is new when the configuration grows, and applies nothing of a contradiction."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from fundpool.core.clock import ManualClock, Uuid7Ids
from fundpool.core.errors import AccountAlreadyOpen, AssetAlreadyDefined, FundpoolError
from fundpool.core.ledger.model import Account, DefineAsset
from fundpool.core.money import Asset, AssetKind
from fundpool.ledger.service import Ledger
from fundpool.pool.config import FundpoolConfig, load_config, parse_config
from fundpool.pool.setup import InitReport, init_pool, setup_commands

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "pool.toml"
STATES = ("available", "locked", "in_transit", "pending_settlement", "fees")


def example_document() -> dict[str, Any]:
    return tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))


def segment(code: str) -> str:
    return code.lower().replace(".", "_")


def expected_accounts(document: dict[str, Any]) -> dict[str, str | None]:
    """Every account address the document implies, with its asset (None: multi-asset),
    worked out from the raw TOML alone."""
    channel_assets = {c["id"]: c["assets"] for c in document["channels"]}
    expected: dict[str, str | None] = {}
    pool_assets: set[str] = set()
    for pool in document["pools"]:
        for channel in pool["channels"]:
            expected[f"world:{channel}"] = None
            for code in channel_assets[channel]:
                pool_assets.add(code)
                for state in STATES:
                    expected[f"pool:{pool['id']}:{segment(code)}:{channel}:{state}"] = code
    merchants = [o["id"] for o in document.get("owners", []) if o["kind"] == "merchant"]
    for owner in merchants:
        for code in pool_assets:
            expected[f"merchant:{owner}:{segment(code)}:payable"] = code
    for pool in document["pools"]:
        for code in pool.get("instant_settlement", {}):
            base = f"exposure:{pool['id']}:{segment(code)}"
            expected[f"{base}:source"] = code
            expected[f"{base}:total"] = code
            for owner in merchants:
                expected[f"{base}:merchant:{owner}"] = code
    return expected


def expected_assets(document: dict[str, Any]) -> set[Asset]:
    return {Asset(a["code"], a["scale"], AssetKind(a["kind"])) for a in document["assets"]}


def ledger_accounts(ledger: Ledger) -> dict[str, Account]:
    return {a.address: a for a in ledger.store.accounts()}


def test_the_expected_set_is_what_the_example_says() -> None:
    """A hand count of examples/pool.toml, so the independent computation is itself checked."""
    expected = expected_accounts(example_document())
    # bank-a rtp card-acq sepa tron eth-l1 arb-l2 ecny book
    channel_assets = 1 + 1 + 1 + 1 + 1 + 2 + 1 + 1 + 5
    assert len([a for a in expected if a.startswith("pool:")]) == 5 * channel_assets == 70
    assert len([a for a in expected if a.startswith("world:")]) == 9
    assert len([a for a in expected if a.startswith("merchant:")]) == 2 * 5
    assert "pool:main:e-cny:ecny-rail:pending_settlement" in expected
    assert "merchant:m77:eth:payable" in expected
    assert not any(a.startswith("merchant:company") for a in expected)


def test_init_opens_exactly_the_accounts_the_example_implies(ledger: Ledger) -> None:
    document = example_document()
    config = load_config(EXAMPLE)
    report = init_pool(ledger, config)

    expected = expected_accounts(document)
    assert report == InitReport(added=len(expected) + len(document["assets"]), unchanged=0)
    assert report == InitReport(added=98, unchanged=0)
    assert set(ledger.store.assets()) == expected_assets(document)

    accounts = ledger_accounts(ledger)
    assert set(accounts) == set(expected)
    for address, code in expected.items():
        account = accounts[address]
        assert account.asset == code, address
        if address.startswith("world:") or address.endswith(":source"):
            assert account.allow_negative is True, address
        else:
            assert account.allow_negative is False, address
        # The example's instant settlement: USD, pool cap 250,000.00, merchant cap 100,000.00.
        if address.startswith("merchant:") and code == "USD":
            assert account.min_balance_minor == -10_000_000, address  # the merchant cap
        else:
            assert account.min_balance_minor is None, address
        if address == "exposure:main:usd:total":
            assert account.max_balance_minor == 25_000_000
        elif address.startswith("exposure:main:usd:merchant:"):
            assert account.max_balance_minor == 10_000_000, address
        else:
            assert account.max_balance_minor is None, address

    # Metadata says what each account is.
    # structural metadata only: names and kinds live in the configuration
    assert accounts["world:tron"].metadata == {"channel": "tron"}
    assert accounts["pool:main:usdt:eth-l1:in_transit"].metadata == {
        "pool": "main", "channel": "eth-l1", "state": "in_transit",
    }
    assert accounts["merchant:m42:usd:payable"].metadata == {"owner": "m42"}

    # Nothing moved: every balance is zero (or absent).
    assert all(b.posted == b.pending_out == b.pending_in == 0
               for b in ledger.store.balances().values())


def test_init_again_adds_nothing_and_leaves_the_journal_alone(ledger: Ledger) -> None:
    config = load_config(EXAMPLE)
    first = init_pool(ledger, config)
    head = ledger.store.head()
    accounts = ledger_accounts(ledger)
    again = init_pool(ledger, config)
    assert again == InitReport(added=0, unchanged=first.added)
    assert ledger.store.head() == head
    assert ledger_accounts(ledger) == accounts
    # Also through a fresh service on the same store (no cache to lean on).
    fresh = Ledger(ledger.store, ManualClock(), Uuid7Ids.seeded(99))
    assert init_pool(fresh, config) == InitReport(added=0, unchanged=first.added)
    assert ledger.store.head() == head


def test_each_new_entry_is_one_journal_entry(ledger: Ledger) -> None:
    before = ledger.store.head().seq
    report = init_pool(ledger, load_config(EXAMPLE))
    assert ledger.store.head().seq == before + report.added


def conflicting_document() -> dict[str, Any]:
    """The example grown by a new asset and a new channel, but with USD at another scale."""
    document = example_document()
    document["assets"].insert(0, {"code": "GBP", "scale": 2, "kind": "fiat"})
    for entry in document["assets"]:
        if entry["code"] == "USD":
            entry["scale"] = 3
    document["channels"].append({"id": "faster", "kind": "instant_credit", "assets": ["GBP"]})
    document["pools"][0]["channels"].append("faster")
    return document


def test_a_contradiction_raises_and_applies_nothing(ledger: Ledger) -> None:
    init_pool(ledger, load_config(EXAMPLE))
    head = ledger.store.head()
    accounts = ledger_accounts(ledger)
    assets = set(ledger.store.assets())

    document = conflicting_document()
    with pytest.raises(AssetAlreadyDefined) as caught:
        init_pool(ledger, parse_config(document, base_dir=EXAMPLE.parent))
    assert caught.value.code == "asset_already_defined"
    assert caught.value.facts["asset"] == "USD"

    assert ledger.store.head() == head
    assert ledger_accounts(ledger) == accounts
    assert set(ledger.store.assets()) == assets
    assert "GBP" not in {a.code for a in ledger.store.assets()}
    assert "world:faster" not in ledger_accounts(ledger)

    # The ledger still works and the unchanged configuration is still in force.
    assert init_pool(ledger, load_config(EXAMPLE)) == InitReport(0, 98)


def test_a_contradiction_on_a_fresh_ledger_applies_nothing(ledger: Ledger) -> None:
    ledger.define_asset(Asset("ETH", 9, AssetKind.CRYPTO))
    head = ledger.store.head()
    with pytest.raises(AssetAlreadyDefined):
        init_pool(ledger, load_config(EXAMPLE))
    assert ledger.store.head() == head
    assert ledger.store.accounts() == []
    assert [a.code for a in ledger.store.assets()] == ["ETH"]


def test_an_asset_of_another_kind_is_a_contradiction(ledger: Ledger) -> None:
    (result,) = ledger.submit([DefineAsset(Asset("USD", 2, AssetKind.STABLECOIN))])
    assert result.ok
    head = ledger.store.head()
    with pytest.raises(FundpoolError) as caught:
        init_pool(ledger, load_config(EXAMPLE))
    assert caught.value.code == "asset_already_defined"
    assert ledger.store.head() == head


def test_an_account_opened_otherwise_is_a_contradiction(ledger: Ledger) -> None:
    ledger.define_asset(Asset("USD", 2, AssetKind.FIAT))
    ledger.open_account(Account("pool:main:usd:bank-a:available", asset="USD",
                                allow_negative=True))
    head = ledger.store.head()
    with pytest.raises(AccountAlreadyOpen):
        init_pool(ledger, load_config(EXAMPLE))
    assert ledger.store.head() == head
    assert len(ledger.store.accounts()) == 1


def test_a_new_channel_adds_only_its_accounts(ledger: Ledger) -> None:
    document = example_document()
    init_pool(ledger, parse_config(document, base_dir=EXAMPLE.parent))
    before = ledger_accounts(ledger)
    head = ledger.store.head()

    document["channels"].append({"id": "bank-b", "kind": "bank_wire", "assets": ["USD", "EUR"]})
    document["pools"][0]["channels"].append("bank-b")
    report = init_pool(ledger, parse_config(document, base_dir=EXAMPLE.parent))

    after = ledger_accounts(ledger)
    added = set(after) - set(before)
    assert added == set(expected_accounts(document)) - set(before)
    assert added == {"world:bank-b"} | {
        f"pool:main:{code}:bank-b:{state}" for code in ("usd", "eur") for state in STATES
    }
    assert report == InitReport(added=11, unchanged=98)
    assert ledger.store.head().seq == head.seq + 11
    assert all(after[a] == before[a] for a in before)


def test_a_new_channel_with_a_new_asset_adds_merchant_payables(ledger: Ledger) -> None:
    document = example_document()
    init_pool(ledger, parse_config(document, base_dir=EXAMPLE.parent))
    before = ledger_accounts(ledger)

    document["assets"].append({"code": "USDT.TRON", "scale": 6, "kind": "stablecoin"})
    document["channels"].append({"id": "tron2", "kind": "stablecoin_rail",
                                 "assets": ["USDT.TRON"]})
    document["pools"][0]["channels"].append("tron2")
    report = init_pool(ledger, parse_config(document, base_dir=EXAMPLE.parent))

    added = set(ledger_accounts(ledger)) - set(before)
    assert added == set(expected_accounts(document)) - set(before)
    assert added == (
        {"world:tron2", "merchant:m42:usdt_tron:payable", "merchant:m77:usdt_tron:payable"}
        | {f"pool:main:usdt_tron:tron2:{state}" for state in STATES}
    )
    assert report == InitReport(added=1 + len(added), unchanged=98)
    assert Asset("USDT.TRON", 6, AssetKind.STABLECOIN) in ledger.store.assets()


def two_pool_config() -> tuple[dict[str, Any], FundpoolConfig]:
    document = example_document()
    del document["pools"][0]["rates"]
    document["channels"].append({"id": "unused", "kind": "book", "assets": ["EUR"]})
    document["owners"].append({"id": "m99", "kind": "merchant"})
    document["pools"][0]["channels"] = ["bank-a", "sepa"]
    document["pools"].append(
        {"id": "side", "reporting_currency": "EUR", "channels": ["sepa", "tron"]}
    )
    return document, parse_config(document)


def test_two_pools_share_a_world_account_and_unused_channels_open_nothing(
    ledger: Ledger,
) -> None:
    document, config = two_pool_config()
    report = init_pool(ledger, config)
    accounts = ledger_accounts(ledger)
    expected = expected_accounts(document)
    assert set(accounts) == set(expected)
    # world:sepa once; no world or pool account for a channel no pool uses.
    assert "world:sepa" in accounts
    assert not any("unused" in a for a in accounts)
    # USD, EUR, USDT are pool assets; ETH and E-CNY are declared but in no pool.
    assert {a for a in accounts if a.startswith("merchant:m99:")} == {
        "merchant:m99:usd:payable", "merchant:m99:eur:payable", "merchant:m99:usdt:payable",
    }
    assert {a for a in accounts if a.startswith("pool:side:")} == {
        f"pool:side:{code}:{channel}:{state}"
        for code, channel in (("eur", "sepa"), ("usdt", "tron"))
        for state in STATES
    }
    assert report == InitReport(added=5 + len(expected), unchanged=0)


def test_setup_commands_put_assets_first_and_repeat_nothing() -> None:
    _, config = two_pool_config()
    commands = list(setup_commands(config))
    kinds = [type(c).__name__ for c in commands]
    assert kinds[:5] == ["DefineAsset"] * 5
    assert "DefineAsset" not in kinds[5:]
    addresses = [c.account.address for c in commands[5:]]  # type: ignore[union-attr]
    assert len(addresses) == len(set(addresses))


def test_renaming_a_merchant_or_a_channel_kind_does_not_break_init(ledger: Ledger) -> None:
    init_pool(ledger, parse_config(example_document(), base_dir=EXAMPLE.parent))
    head = ledger.head()
    document = example_document()
    document["owners"][1]["name"] = "Acme Shop, renamed"
    document["channels"][0]["kind"] = "instant_credit"
    report = init_pool(ledger, parse_config(document, base_dir=EXAMPLE.parent))
    assert report.added == 0
    assert ledger.head() == head
