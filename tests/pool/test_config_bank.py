"""The `bank` table of a channel on the ISO 20022 bank rail and the `recon` table of any
channel: read to their values as written in TOML, and every mistake refused with
`invalid_config` naming the field."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from fundpool.channels.iso20022 import pain001
from fundpool.pool.config import (
    PAIN001_VERSIONS,
    BankConfig,
    InvalidConfig,
    ReconTolerance,
    parse_config,
)

TOML = '''
[[assets]]
code = "USD"
scale = 2
kind = "fiat"

[[channels]]
id = "bank-a"
kind = "bank_wire"
assets = ["USD"]
adapter = "iso20022"
recon = { amount_tolerance = "0.05", days = 3 }

[channels.bank]
exchange = "banks/bank-a"
account = "GB33 BUKB 2020 1555 5555 55"
bic = "BUKBGB22"
name = "Fundpool Treasury Ltd"
pain001 = "pain.001.001.03"
simulated = true

[[channels]]
id = "rtp"
kind = "instant_credit"
assets = ["USD"]

[[pools]]
id = "main"
reporting_currency = "USD"
channels = ["bank-a", "rtp"]
'''


def document(**bank: Any) -> dict[str, Any]:
    spec = {"exchange": "banks/bank-a", "account": "GB33BUKB20201555555555",
            "name": "Fundpool Treasury Ltd", **bank}
    return {
        "assets": [{"code": "USD", "scale": 2, "kind": "fiat"},
                   {"code": "USDT", "scale": 6, "kind": "stablecoin"}],
        "channels": [{"id": "bank-a", "kind": "bank_wire", "assets": ["USD"],
                      "adapter": "iso20022", "bank": spec}],
        "pools": [{"id": "main", "reporting_currency": "USD", "channels": ["bank-a"]}],
    }


def refused(document: dict[str, Any]) -> str:
    with pytest.raises(InvalidConfig) as caught:
        parse_config(document, source="test.toml")
    assert caught.value.code == "invalid_config"
    return str(caught.value.facts["at"])


def test_the_bank_and_recon_tables_read_as_written() -> None:
    config = parse_config(tomllib.loads(TOML))
    bank_a = config.channel("bank-a")

    assert bank_a.adapter == "iso20022"
    assert bank_a.bank == BankConfig(exchange=Path("banks/bank-a"),
                                     account="GB33BUKB20201555555555",
                                     name="Fundpool Treasury Ltd", bic="BUKBGB22",
                                     pain001="pain.001.001.03", simulated=True)
    assert bank_a.recon == ReconTolerance(amount_tolerance_minor=5, days=3)
    rtp = config.channel("rtp")
    assert (rtp.bank, rtp.recon) == (None, ReconTolerance(0, 2))


def test_the_exchange_is_relative_to_the_data_directory_unless_absolute(tmp_path: Path) -> None:
    bank = parse_config(document()).channel("bank-a").bank
    assert bank is not None
    assert bank.exchange_dir(tmp_path) == tmp_path / "banks/bank-a"
    assert (bank.pain001, bank.bic, bank.simulated) == ("pain.001.001.09", None, False)
    absolute = parse_config(document(exchange=str(tmp_path / "x"))).channel("bank-a").bank
    assert absolute is not None
    assert absolute.exchange_dir(Path("/elsewhere")) == tmp_path / "x"


def test_an_account_number_that_is_not_an_iban_is_taken_as_it_is() -> None:
    bank = parse_config(document(account="12345678")).channel("bank-a").bank
    assert bank is not None
    assert bank.account == "12345678"


def test_the_name_defaults_to_the_channels() -> None:
    spec = document()
    del spec["channels"][0]["bank"]["name"]
    spec["channels"][0]["name"] = "Bank A"
    bank = parse_config(spec).channel("bank-a").bank
    assert bank is not None
    assert bank.name == "Bank A"


@pytest.mark.parametrize(("bank", "at"), [
    ({"account": "GB33BUKB20201555555556"}, "channels[0].bank.account"),  # check digits
    ({"account": "x" * 35}, "channels[0].bank.account"),
    ({"account": ""}, "channels[0].bank.account"),
    ({"bic": "NOTABIC"}, "channels[0].bank.bic"),
    ({"pain001": "pain.001.001.12"}, "channels[0].bank.pain001"),
    ({"exchange": " "}, "channels[0].bank.exchange"),
    ({"simulated": "yes"}, "channels[0].bank.simulated"),
    ({"name": "\n"}, "channels[0].bank.name"),
    ({"swift": "x"}, "channels[0].bank"),
])
def test_a_bad_bank_table_is_refused_naming_the_field(bank: dict[str, Any], at: str) -> None:
    assert refused(document(**bank)) == at


def test_the_bank_table_needs_its_exchange_and_account() -> None:
    for key in ("exchange", "account"):
        spec = document()
        del spec["channels"][0]["bank"][key]
        assert refused(spec) == "channels[0].bank"


def test_the_iso20022_adapter_needs_a_bank_table_and_only_it_takes_one() -> None:
    spec = document()
    del spec["channels"][0]["bank"]
    assert refused(spec) == "channels[0].bank"
    spec = document()
    spec["channels"][0]["adapter"] = "simulated"
    assert refused(spec) == "channels[0].bank"


def test_the_iso20022_adapter_carries_bank_transfers_in_currencies_with_short_ids() -> None:
    spec = document()
    spec["channels"][0]["kind"] = "evm_l1"
    assert refused(spec) == "channels[0].kind"
    spec = document()
    spec["channels"][0]["assets"] = ["USDT"]
    spec["pools"][0]["reporting_currency"] = "USDT"
    assert refused(spec) == "channels[0].assets"
    spec = document()
    spec["channels"][0]["id"] = "a-bank-with-a-long-id"
    spec["pools"][0]["channels"] = ["a-bank-with-a-long-id"]
    assert refused(spec) == "channels[0].id"


@pytest.mark.parametrize(("recon", "at"), [
    ({"amount_tolerance": "0.001"}, "channels[0].recon.amount_tolerance"),  # below a cent
    ({"amount_tolerance": "-1.00"}, "channels[0].recon.amount_tolerance"),
    ({"amount_tolerance": 1}, "channels[0].recon.amount_tolerance"),
    ({"days": -1}, "channels[0].recon.days"),
    ({"days": 32}, "channels[0].recon.days"),
    ({"window": 2}, "channels[0].recon"),
])
def test_a_bad_recon_table_is_refused_naming_the_field(recon: dict[str, Any], at: str) -> None:
    spec = document()
    spec["channels"][0]["recon"] = recon
    assert refused(spec) == at


def test_the_versions_the_config_takes_are_those_the_writer_writes() -> None:
    assert PAIN001_VERSIONS == pain001.VERSIONS
