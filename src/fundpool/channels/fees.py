"""What a rail charges the pool to carry n payments: one by one, or as one batch.

A channel's `FeeSchedule` (pool/config.py) is the price list a payment is quoted at. The models
here are the rail's own cost structure, which is what makes batching worth doing or not: a bank
charges per file and per item, a UTXO chain per byte of transaction, an EVM chain per unit of
gas, and a CBDC, a card scheme or the pool's own books per item whatever the grouping.

Every figure is an integer of minor units of the asset the payments are in (a model belongs to
one asset of one channel), and all arithmetic is integer: USD cents (scale 2), USDT micro-units
(scale 6), ETH wei (scale 18), BTC satoshis (scale 8). A gas or byte price is minor units of
that same asset per gas or per byte, so a token's gas cost is already expressed in the token
(e.g. 70 micro-USDT per gas is 40 gwei at 1,750 USD per ETH).

Each model answers three questions for `n_items` payments:

- `single_fee(n)`: what sending them one at a time costs (n separate files or transactions);
- `batch_fee(n)`: what the rail charges for them as one submission;
- `savings(n)` = single - batch.

The choice about a batch that would cost more: a batch is never dearer than singles. Where the
batch form of a model would cost more (an EVM batch contract's fixed overhead outweighs what it
saves on a handful of native transfers), the rail sends the items one by one, so `batch_fee`
is the smaller of the two and `savings` is never negative. `batch_form_fee(n)` keeps the batch
form's own figure and `uses_batch_form(n)` says which form was charged, so a caller can see
that batching this few did not pay. A submission of one item is always a single.

How the default figures (channels/profiles.py) were chosen:

- **Bank file** (`BankFileFee`): bulk credit transfer pricing as banks publish it, a charge per
  file plus a charge per item: 2.50 per file, and per item the channel's configured fixed fee
  (0.25 for the example's bank-a). One file of n items costs 2.50 + n x 0.25; n files of one
  item cost n x 2.75.
- **UTXO chain** (`UtxoFee`): P2WPKH sizes in virtual bytes (Bitcoin Optech's batching
  figures): 11 bytes of overhead (10.5, rounded up), 68 per input, 31 per output. A single
  payment spends `inputs_per_payment` inputs and has two outputs (payee and change): 141 vB
  with one input. A batch of n spends the same inputs (the wallet keeps UTXOs large enough,
  Optech's assumption) and has n + 1 outputs: 110 + 31 n vB. No default kind is a UTXO chain
  today; a channel selects the model with `simulation.fees.<ASSET>.model = "utxo"`.
- **EVM chain** (`EvmGasFee`): a native transfer is 21,000 gas; an ERC-20 transfer about
  65,000. A batch goes through a disperse-style contract: 24,000 gas of base (the 21,000
  intrinsic cost and the call's entry) plus, per item, 13,000 for a native value transfer
  (a CALL with value, about 12,000, and its calldata) or 36,000 for a token (`transferFrom`
  to an existing holder, about 35,000, and its calldata). Native transfers only pay off in a
  batch from four items; tokens from two. Gas prices: L1 40 gwei (0.00084 ETH for a native
  transfer, the example's figure), L2 1.2 gwei effective (the L1 data charge folded in:
  about 0.000025 ETH per transfer); tokens pay the same gas valued in the token, taken to be a
  1-dollar stablecoin at 1,750 USD per ETH: 70 micro-units per gas on L1, 2 on L2.
- **Stablecoin rail** (Tron-style TRC-20, `EvmGasFee`): 65,000 energy per transfer, the same
  batch shape as an EVM chain, at 15 micro-USDT per unit of energy (0.975 USDT per transfer,
  close to the example's 1 USDT).
- **Flat** (`FlatFee`): card schemes, CBDC wallets and book transfers charge per item, so a
  batch saves nothing; the per-item charge is the channel's configured fixed fee.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

ITEMS_MAX = 1_000_000  # far above any batch size a channel accepts (config: 10,000)


class FeeModel(Protocol):
    def single_fee(self, n_items: int) -> int:
        """Minor units to send `n_items` payments one at a time."""
        ...

    def batch_fee(self, n_items: int) -> int:
        """Minor units to send them as one submission; never above `single_fee`."""
        ...

    def savings(self, n_items: int) -> int:
        """single_fee - batch_fee, never negative."""
        ...


def _check_items(n_items: int) -> int:
    if isinstance(n_items, bool) or not isinstance(n_items, int) or not 0 <= n_items <= ITEMS_MAX:
        raise ValueError(f"n_items must be an integer from 0 to {ITEMS_MAX}, not {n_items!r}")
    return n_items


def _check_parameters(model: object, names: tuple[str, ...]) -> None:
    for name in names:
        value = getattr(model, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{type(model).__name__}.{name} must be a non-negative integer")


class _Batchable:
    """The shared rule: a batch is charged its batch form only when that is cheaper."""

    __slots__ = ()

    def single_fee(self, n_items: int) -> int:
        return _check_items(n_items) * self._one_fee()

    def batch_form_fee(self, n_items: int) -> int:
        """What the batch form itself would cost, even when it is dearer than singles."""
        n_items = _check_items(n_items)
        return 0 if n_items == 0 else self._batch_form(n_items)

    def uses_batch_form(self, n_items: int) -> bool:
        return n_items > 1 and self.batch_form_fee(n_items) < self.single_fee(n_items)

    def batch_fee(self, n_items: int) -> int:
        single = self.single_fee(n_items)
        if n_items <= 1:
            return single
        return min(single, self._batch_form(n_items))

    def savings(self, n_items: int) -> int:
        return self.single_fee(n_items) - self.batch_fee(n_items)

    def _one_fee(self) -> int:
        raise NotImplementedError

    def _batch_form(self, n_items: int) -> int:
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class BankFileFee(_Batchable):
    """A bank's bulk credit transfer: a charge per file and a charge per item in it."""

    per_file_minor: int
    per_item_minor: int

    def __post_init__(self) -> None:
        _check_parameters(self, ("per_file_minor", "per_item_minor"))

    def _one_fee(self) -> int:
        return self.per_file_minor + self.per_item_minor

    def _batch_form(self, n_items: int) -> int:
        return self.per_file_minor + n_items * self.per_item_minor


@dataclass(frozen=True, slots=True)
class UtxoFee(_Batchable):
    """A UTXO chain charges by the byte: one transaction per payment (payee and change
    outputs) against one transaction with an output per payment and one change output."""

    overhead_bytes: int
    input_bytes: int
    output_bytes: int
    inputs_per_payment: int
    rate_minor_per_byte: int

    def __post_init__(self) -> None:
        _check_parameters(
            self,
            ("overhead_bytes", "input_bytes", "output_bytes", "inputs_per_payment",
             "rate_minor_per_byte"),
        )

    def single_bytes(self) -> int:
        return self.overhead_bytes + self.inputs_per_payment * self.input_bytes + (
            2 * self.output_bytes
        )

    def batch_bytes(self, n_items: int) -> int:
        return self.overhead_bytes + self.inputs_per_payment * self.input_bytes + (
            (n_items + 1) * self.output_bytes
        )

    def _one_fee(self) -> int:
        return self.single_bytes() * self.rate_minor_per_byte

    def _batch_form(self, n_items: int) -> int:
        return self.batch_bytes(n_items) * self.rate_minor_per_byte


@dataclass(frozen=True, slots=True)
class EvmGasFee(_Batchable):
    """An EVM chain charges gas: a transfer each, or one call to a batch contract."""

    gas_single: int
    gas_batch_base: int
    gas_batch_per_item: int
    gas_price_minor: int

    def __post_init__(self) -> None:
        _check_parameters(
            self, ("gas_single", "gas_batch_base", "gas_batch_per_item", "gas_price_minor")
        )

    def _one_fee(self) -> int:
        return self.gas_single * self.gas_price_minor

    def _batch_form(self, n_items: int) -> int:
        return (self.gas_batch_base + n_items * self.gas_batch_per_item) * self.gas_price_minor


@dataclass(frozen=True, slots=True)
class FlatFee(_Batchable):
    """The same charge per item however they are grouped: batching saves nothing."""

    per_item_minor: int

    def __post_init__(self) -> None:
        _check_parameters(self, ("per_item_minor",))

    def _one_fee(self) -> int:
        return self.per_item_minor

    def _batch_form(self, n_items: int) -> int:
        return n_items * self.per_item_minor
