"""Sanctions screening: names in any script against OpenSanctions and OFAC lists, in the path of a
payment.

- `names`: a name in any script to lowercase ASCII tokens (`tokens`, `normalised`).
- `lists`: OpenSanctions FollowTheMoney JSON and OFAC SDN CSV to `SanctionsList` values,
  refused whole when malformed (`InvalidSanctionsFile`).
- `matcher`: `Screener`, an index over a list's names, and `Hit`, a scored and explained match.
- `synthetic`: invented entries for benchmarks and tests.

docs/adr/0019-sanctions-screening.md says why rapidfuzz and anyascii, and what the screener
costs.
"""

from __future__ import annotations

from fundpool.risk.screening.lists import (
    InvalidSanctionsFile,
    ListEntry,
    SanctionsList,
    load_file,
    parse_ftm,
    parse_sdn,
)
from fundpool.risk.screening.matcher import Hit, InvalidScreeningRequest, Screener
from fundpool.risk.screening.names import normalised, tokens
from fundpool.risk.screening.synthetic import generate

__all__ = [
    "Hit",
    "InvalidSanctionsFile",
    "InvalidScreeningRequest",
    "ListEntry",
    "SanctionsList",
    "Screener",
    "generate",
    "load_file",
    "normalised",
    "parse_ftm",
    "parse_sdn",
    "tokens",
]
