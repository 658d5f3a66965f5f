"""The rails' batch fee models: exact integer figures worked out by hand, a batch never dearer
than the same items one by one, and the defaults each kind of channel gets."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fundpool.channels.fees import BankFileFee, EvmGasFee, FlatFee, UtxoFee
from fundpool.channels.profiles import profile_for
from fundpool.pool.config import load_config

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "pool.toml"
GWEI = 10**9


def test_a_bank_file_pays_the_file_charge_once_for_all_its_items() -> None:
    model = BankFileFee(per_file_minor=250, per_item_minor=25)  # 2.50 per file, 0.25 per item
    assert model.single_fee(4) == 1_100  # four files of one item: 4 x (2.50 + 0.25)
    assert model.batch_fee(4) == 350  # one file of four items: 2.50 + 4 x 0.25
    assert model.savings(4) == 750
    assert model.single_fee(1) == model.batch_fee(1) == 275
    assert model.single_fee(0) == model.batch_fee(0) == model.savings(0) == 0
    assert model.uses_batch_form(4)
    assert not model.uses_batch_form(1)


def test_a_utxo_batch_saves_the_overhead_inputs_and_change_of_every_payment_but_one() -> None:
    # P2WPKH: 11 vB overhead, 68 per input, 31 per output; 10 sat/vB.
    model = UtxoFee(11, 68, 31, 1, 10)
    assert model.single_bytes() == 141  # 11 + 68 + 2 x 31
    assert model.single_fee(1) == 1_410
    assert model.single_fee(5) == 7_050
    assert model.batch_bytes(5) == 265  # 11 + 68 + 6 x 31
    assert model.batch_fee(5) == 2_650
    assert model.savings(5) == 4_400

    two_inputs = UtxoFee(11, 68, 31, 2, 1)
    assert two_inputs.single_fee(3) == 627  # 3 x (11 + 136 + 62)
    assert two_inputs.batch_fee(3) == 271  # 11 + 136 + 4 x 31


def test_an_evm_native_batch_only_pays_from_four_transfers_and_is_never_charged_dearer() -> None:
    model = EvmGasFee(21_000, 24_000, 13_000, 40 * GWEI)
    assert model.single_fee(1) == 840_000_000_000_000  # 0.00084 ETH in wei
    # Two: the batch contract would burn 50,000 gas against 42,000: sent one by one.
    assert model.batch_form_fee(2) == 2_000_000_000_000_000
    assert model.single_fee(2) == 1_680_000_000_000_000
    assert model.batch_fee(2) == 1_680_000_000_000_000
    assert model.savings(2) == 0
    assert not model.uses_batch_form(2)
    # Three: 63,000 either way; not cheaper, so not used.
    assert model.batch_form_fee(3) == model.single_fee(3) == 2_520_000_000_000_000
    assert not model.uses_batch_form(3)
    # Four: 76,000 gas against 84,000.
    assert model.batch_fee(4) == 3_040_000_000_000_000
    assert model.single_fee(4) == 3_360_000_000_000_000
    assert model.savings(4) == 320_000_000_000_000
    assert model.uses_batch_form(4)


def test_an_erc20_batch_saves_from_two_transfers_and_one_item_is_always_a_single() -> None:
    model = EvmGasFee(65_000, 24_000, 36_000, 70)  # 70 micro-USDT per gas
    assert model.single_fee(1) == 4_550_000  # 4.55 USDT
    assert model.single_fee(10) == 45_500_000
    assert model.batch_fee(10) == 26_880_000  # (24,000 + 10 x 36,000) x 70
    assert model.savings(10) == 18_620_000
    # The batch form of one item would be cheaper (60,000 gas), but one item is sent alone.
    assert model.batch_form_fee(1) == 4_200_000
    assert model.batch_fee(1) == model.single_fee(1) == 4_550_000
    assert model.savings(1) == 0


def test_a_flat_fee_saves_nothing() -> None:
    model = FlatFee(30)
    assert model.single_fee(7) == model.batch_fee(7) == 210
    assert model.savings(7) == 0
    assert not model.uses_batch_form(7)


@pytest.mark.parametrize("n_items", [-1, True, 1.0, "3", 1_000_001])
def test_a_count_of_items_is_a_small_non_negative_integer(n_items: object) -> None:
    model = FlatFee(1)
    with pytest.raises(ValueError, match="n_items"):
        model.single_fee(n_items)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="n_items"):
        model.batch_fee(n_items)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "build",
    [
        lambda: BankFileFee(-1, 0),
        lambda: UtxoFee(11, 68, 31, 1, True),
        lambda: EvmGasFee(21_000, 0, 0, 1.5),  # type: ignore[arg-type]
        lambda: FlatFee(-30),
    ],
)
def test_a_model_refuses_negative_or_non_integer_figures(build: Callable[[], object]) -> None:
    with pytest.raises(ValueError, match="non-negative integer"):
        build()


figures = st.integers(min_value=0, max_value=10**12)
models = st.one_of(
    st.builds(BankFileFee, figures, figures),
    st.builds(UtxoFee, *(st.integers(0, 10_000) for _ in range(4)), figures),
    st.builds(EvmGasFee, *(st.integers(0, 1_000_000) for _ in range(3)), figures),
    st.builds(FlatFee, figures),
)


@given(model=models, n_items=st.integers(min_value=0, max_value=10_000))
def test_a_batch_is_never_dearer_and_the_savings_are_the_difference(
    model: BankFileFee | UtxoFee | EvmGasFee | FlatFee, n_items: int
) -> None:
    single, batch = model.single_fee(n_items), model.batch_fee(n_items)
    assert 0 <= batch <= single
    assert model.savings(n_items) == single - batch >= 0
    assert single == n_items * model.single_fee(1)
    assert model.batch_fee(1) == model.single_fee(1)
    assert model.batch_fee(0) == 0
    assert batch == (model.batch_form_fee(n_items) if model.uses_batch_form(n_items) else single)


@given(
    model=st.one_of(
        st.builds(BankFileFee, figures, figures),
        st.builds(UtxoFee, *(st.integers(0, 10_000) for _ in range(4)), figures),
    ),
    n_items=st.integers(min_value=1, max_value=10_000),
)
def test_a_bank_file_or_a_utxo_batch_never_needs_the_fallback(
    model: BankFileFee | UtxoFee, n_items: int
) -> None:
    assert model.batch_form_fee(n_items) <= model.single_fee(n_items)


def test_the_defaults_per_kind_on_the_example_pool() -> None:
    config = load_config(EXAMPLE)

    def model(channel: str, asset: str) -> object:
        return profile_for(config.channel(channel), config.assets).fee_models[asset]

    # A bank: 2.50 per file, the channel's 0.25 fixed fee per item.
    assert model("bank-a", "USD") == BankFileFee(250, 25)
    # Ethereum: ETH is the native coin at 40 gwei, which is the example's fee exactly.
    eth = model("eth-l1", "ETH")
    assert eth == EvmGasFee(21_000, 24_000, 13_000, 40 * GWEI)
    assert isinstance(eth, EvmGasFee)
    assert eth.single_fee(1) == config.channel("eth-l1").fee_schedule("ETH").fixed_minor
    # USDT on Ethereum is a token: 65,000 gas at 70 micro-USDT per gas (4.55 USDT).
    assert model("eth-l1", "USDT") == EvmGasFee(65_000, 24_000, 36_000, 70)
    # The L2 at 1.2 gwei effective: 0.0000252 ETH per transfer.
    arbitrum = model("arb-l2", "ETH")
    assert arbitrum == EvmGasFee(21_000, 24_000, 13_000, 1_200_000_000)
    assert isinstance(arbitrum, EvmGasFee)
    assert arbitrum.single_fee(1) == 25_200_000_000_000
    # Tron-style USDT: 65,000 energy at 15 micro-USDT: 0.975 USDT.
    tron = model("tron", "USDT")
    assert tron == EvmGasFee(65_000, 24_000, 36_000, 15)
    assert isinstance(tron, EvmGasFee)
    assert tron.single_fee(1) == 975_000
    # Cards, instant credit, CBDC and the books: the channel's fixed fee per item, no saving.
    assert model("card-acq", "USD") == FlatFee(30)
    assert model("rtp", "USD") == FlatFee(45)
    assert model("ecny-rail", "E-CNY") == FlatFee(0)
    assert model("book", "ETH") == FlatFee(0)
