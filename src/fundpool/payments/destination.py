"""A payout's destination: the payee's account number, IBAN or chain address, checked for its
form where the rail kind tells what it must be (docs/adr/0015-attribution-and-four-eyes.md).

- On a rail set made only of EVM chains (`evm_l1`, `evm_l2`) the destination is an EVM address:
  `0x` and 40 hex digits. A value that looks like one (`0x…`) is held to that form on any rail,
  and refused where no rail of the set is an EVM chain. Mixed case is accepted as given: its
  EIP-55 checksum needs Keccak-256, which the standard library lacks, and no dependency of
  the project brings it.
- A value that looks like an IBAN (two letters, two digits, then letters and digits) is checked
  by `schwifty` (country, length, check digits, the national BBAN format), on any rail: an
  IBAN-looking value with wrong check digits is a mistyped IBAN, not another account number.
- Anything else (a domestic account number, a Tron address, a wallet id) is taken as text:
  there is no rule to hold it to.
"""

from __future__ import annotations

import re
from collections.abc import Collection

from fundpool.payments.model import InvalidDestination
from fundpool.pool.config import ChannelKind

EVM_KINDS = frozenset({ChannelKind.EVM_L1, ChannelKind.EVM_L2})
EVM_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
EVM_LOOKING = re.compile(r"0[xX]")
# Two letters, two digits, then 11 to 30 letters or digits (spaces allowed in groups of four):
# the shape of every country's IBAN (15 to 34 characters).
IBAN_LOOKING = re.compile(r"[A-Za-z]{2}[0-9]{2}(?: ?[A-Za-z0-9]){11,30}")


def check_destination(value: str, rails: Collection[ChannelKind]) -> None:
    """Raise `invalid_destination` if `value` cannot be a destination on `rails` (the kinds of
    the rails the payout may go on: the one it names, else every one that could carry it)."""
    evm_rails = [kind for kind in rails if kind in EVM_KINDS]
    if EVM_LOOKING.match(value) is not None or (rails and len(evm_rails) == len(rails)):
        if EVM_ADDRESS.fullmatch(value) is None:
            raise InvalidDestination("an EVM address is 0x and 40 hex digits",
                                     destination=value)
        if not evm_rails:
            raise InvalidDestination("an EVM address, but no rail for the payout is an EVM "
                                     "chain", destination=value,
                                     rails=sorted(str(kind) for kind in rails))
        return
    if IBAN_LOOKING.fullmatch(value) is not None:
        _check_iban(value)


def _check_iban(value: str) -> None:
    # Imported here: schwifty loads its country registry (about 0.1 s) on first import, which
    # only a payout to an IBAN needs.
    from schwifty import IBAN
    from schwifty.exceptions import SchwiftyException

    try:
        IBAN(value, validate_bban=True)
    except SchwiftyException as error:
        raise InvalidDestination("the IBAN is not valid", destination=value,
                                 reason=str(error)) from None
